/**
 * The SSH connections of one step: one per `ssh://` docker host, opened at its first docker
 * command, and the docker runner that sends each command through it. Closed, with the private SSH
 * directory, when the step ends (`close`), on every path.
 */
import type { DockerResult, DockerRunner, DockerRunOptions, DockerStream, DockerStreamEnd, DockerStreamOptions } from '../docker/runner.js'
import { SshConnection } from './connection.js'
import type { SshDir } from './ssh-dir.js'
import { sshTargetOf } from './ssh-target.js'

/** docker's words when it could not talk to the engine at all (the forwarded socket, here). */
const UNREACHABLE = /cannot connect to the docker daemon|error during connect|connection reset|broken pipe|unexpected EOF|\bEOF\b/i

export class SshConnections {
  private readonly connections = new Map<string, SshConnection>()

  constructor(readonly dir: SshDir) {}

  /** The connection of an `ssh://` docker host (made on first use); undefined for any other host. */
  connectionFor(dockerHost: string | undefined): SshConnection | undefined {
    const target = sshTargetOf(dockerHost)
    if (!dockerHost || !target) return undefined
    let connection = this.connections.get(dockerHost)
    if (!connection) {
      connection = new SshConnection(dockerHost, target, this.dir, this.connections.size)
      this.connections.set(dockerHost, connection)
    }
    return connection
  }

  /** Closes every connection, then removes the private directory with the key in it. */
  async close(): Promise<void> {
    await Promise.all([...this.connections.values()].map((connection) => connection.close()))
    await this.dir.remove()
  }
}

/**
 * Runs docker commands for one `ssh://` host through its connection: the CLI talks to the
 * forwarded engine socket. When a command could not reach the engine because the connection
 * dropped, the connection is opened again; a read is then sent once more, while a command that
 * changes something is not (it may have taken effect), and its failure says so.
 */
export class SshDockerRunner implements DockerRunner {
  constructor(
    private readonly connection: Pick<SshConnection, 'ensureOpen' | 'check' | 'cliDockerHost' | 'dockerHost'>,
    /** The plain runner for a `DOCKER_HOST` (the private docker config and all). */
    private readonly runnerFor: (dockerHost: string) => DockerRunner
  ) {}

  async run(argv: readonly string[], options: DockerRunOptions = {}): Promise<DockerResult> {
    const unreachable = await this.open()
    if (unreachable) return unreachable
    const runner = this.runnerFor(this.connection.cliDockerHost)
    const result = await runner.run(argv, options)
    if (result.exitCode === 0 || !UNREACHABLE.test(result.stderr) || (await this.connection.check())) return result
    const reopened = await this.open()
    if (reopened) return { ...result, stderr: `${result.stderr.trim()}\n${reopened.stderr}` }
    if (!options.mutates) return runner.run(argv, options)
    return {
      ...result,
      stderr: `${result.stderr.trim()}\n(the SSH connection to ${this.connection.dockerHost} dropped during this command and was opened again; whether the command took effect is unknown)\n`
    }
  }

  /**
   * A streaming read (`docker events`) through the connection, like `run`. Not sent again when the
   * connection drops: the stream just ends, and its caller falls back to reading by commands,
   * which open the connection again.
   */
  stream(argv: readonly string[], options: DockerStreamOptions): DockerStream {
    let inner: DockerStream | undefined
    let stopped = false
    const ended = (async (): Promise<DockerStreamEnd> => {
      const unreachable = await this.open()
      if (unreachable) return { exitCode: unreachable.exitCode, stderr: unreachable.stderr, stopped: false }
      if (stopped || options.signal?.aborted) return { stderr: '', stopped: true }
      const runner = this.runnerFor(this.connection.cliDockerHost)
      if (!runner.stream) return { stderr: 'this docker runner cannot stream', stopped: false }
      inner = runner.stream(argv, options)
      return inner.ended
    })()
    return {
      ended,
      stop: () => {
        stopped = true
        inner?.stop()
      }
    }
  }

  /** Opens the connection if needed; a failure becomes the command's own (docker-like) failure. */
  private async open(): Promise<DockerResult | undefined> {
    try {
      await this.connection.ensureOpen()
      return undefined
    } catch (error) {
      // No connection, so no docker CLI ran: the command was not sent (a lock create took nothing).
      return { exitCode: 255, stdout: '', stderr: `${error instanceof Error ? error.message : String(error)}\n`, notSent: true }
    }
  }
}
