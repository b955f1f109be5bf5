/** `ssh://[user@]host[:port]` as the parts ssh takes, each its own argument (validated by the config grammar). */
export interface SshTarget {
  user?: string
  host: string
  port?: number
}

/** The parts of an `ssh://` docker host; undefined for any other kind of docker host. */
export function sshTargetOf(dockerHost: string | undefined): SshTarget | undefined {
  const match = dockerHost ? /^ssh:\/\/(?:([^@/]+)@)?(\[[^\]]+\]|[^:/@]+)(?::(\d+))?\/?$/.exec(dockerHost) : null
  if (!match) return undefined
  const host = (match[2] as string).replace(/^\[(.*)\]$/, '$1')
  return { ...(match[1] && { user: match[1] }), host, ...(match[3] && { port: Number(match[3]) }) }
}

/**
 * ssh's arguments for the target: options first, `--` before the destination, so no part of a
 * host string can ever be read as an option.
 */
export function sshTargetArgs(target: SshTarget): { options: string[]; destination: string[] } {
  const options: string[] = []
  if (target.user) options.push('-l', target.user)
  if (target.port) options.push('-p', String(target.port))
  return { options, destination: ['--', target.host] }
}
