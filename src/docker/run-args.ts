import type { ContainerSettings } from '../settings.js'

/**
 * The restart policy of every container the action starts when `container.restart` is unset. A
 * container the action stops (a kept previous version) stays stopped across a reboot.
 */
export const DEFAULT_RESTART_POLICY = 'unless-stopped'

/** A container to create: the image to run and everything `docker create` needs. */
export interface ContainerSpec {
  name: string
  /** `repository:tag` */
  imageRef: string
  container: ContainerSettings
  /** Labels the action writes (tag, digest, commit, run URL…), merged over the user's labels. */
  labels: Record<string, string>
}

/**
 * Argv for `docker container create`. Every value was validated against docker's grammar when the
 * config was loaded, and each one is passed as the separate argument of its flag, so none of them
 * can turn into an option. Secrets appear only by name (`--env NAME`): docker copies the value from
 * its own environment, which the client fills in (see `secretEnvironment`).
 */
export function buildCreateArgv(spec: ContainerSpec): string[] {
  const { container } = spec
  const argv = ['container', 'create', '--name', spec.name]
  argv.push(...containerOptionArgs(container))
  // Like Kamal and Dokku: an app that was serving comes back after the host reboots.
  argv.push('--restart', container.restart ?? DEFAULT_RESTART_POLICY)
  if (container.stopTimeoutMs !== undefined) argv.push('--stop-timeout', String(Math.ceil(container.stopTimeoutMs / 1000)))
  for (const port of container.ports) argv.push('--publish', port)
  for (const [key, value] of sortedEntries({ ...container.labels, ...spec.labels })) argv.push('--label', `${key}=${value}`)
  argv.push(spec.imageRef)
  if (container.command) argv.push(...container.command)
  return argv
}

/**
 * Argv for a pre-deploy hook: a one-off `docker run --rm` of the new image with the container's
 * environment, secrets, volumes and network, so a migration sees what the service will see.
 */
export function buildHookArgv(imageRef: string, container: ContainerSettings, hook: string[], name: string): string[] {
  return ['container', 'run', '--rm', '--name', name, ...containerOptionArgs(container), imageRef, ...hook]
}

/** Options shared by the service container and its hooks. */
function containerOptionArgs(container: ContainerSettings): string[] {
  const argv: string[] = []
  if (container.init) argv.push('--init')
  if (container.network) argv.push('--network', container.network)
  for (const [key, value] of sortedEntries(container.env)) argv.push('--env', `${key}=${value}`)
  for (const name of container.secrets) argv.push('--env', name)
  for (const volume of container.volumes) argv.push('--volume', volume)
  return argv
}

/**
 * The environment the docker client needs so that `--env NAME` picks up each secret's value.
 * Values are read from the action's environment, where the workflow put them (`env:` of the step).
 */
export function secretEnvironment(names: readonly string[], env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const result: Record<string, string> = {}
  for (const name of names) {
    const value = env[name]
    if (value !== undefined) result[name] = value
  }
  return result
}

function sortedEntries(record: Record<string, string>): [string, string][] {
  return Object.entries(record).sort(([a], [b]) => a.localeCompare(b))
}
