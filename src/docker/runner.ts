import * as core from '@actions/core'
import { spawn } from 'node:child_process'

/** What one docker invocation returned. */
export interface DockerResult {
  exitCode: number
  stdout: string
  stderr: string
  /**
   * The bytes docker wrote on stdout, when the command asked for them with `binaryStdout`. A
   * runner that only has text (a test fake) leaves it out; `stdout` is always set.
   */
  stdoutBytes?: Buffer
  /**
   * True when the command certainly never reached the engine: the SSH connection to its host could
   * not be opened, so no docker CLI ran. A plain failure says nothing of the kind: the daemon may
   * have acted before the CLI failed.
   */
  notSent?: boolean
}

export interface DockerRunOptions {
  /** Written to docker's stdin, e.g. the registry password for `--password-stdin`. */
  input?: string
  /**
   * Extra variables for the docker client's environment. Used for secrets: `docker run -e NAME`
   * copies NAME's value from the client's environment, so the value never enters argv.
   */
  env?: Record<string, string>
  /** Kill docker after this long. Each caller chooses; see `DEFAULT_TIMEOUT_MS`. */
  timeoutMs?: number
  /** Cancellation (SIGINT/SIGTERM from the runner). */
  signal?: AbortSignal
  /**
   * Changes state on the host: skipped and only printed in a dry run, and never sent twice by a
   * runner that retries (it may have taken effect).
   */
  mutates?: boolean
  /**
   * Also return stdout as bytes (`DockerResult.stdoutBytes`), for output that is not UTF-8 text,
   * such as the tar archive that `docker cp <container>:<path> -` prints.
   */
  binaryStdout?: boolean
}

export interface DockerStreamOptions {
  /** Each line docker prints on stdout, without its newline, as it comes. */
  onLine: (line: string) => void
  /** Extra variables for the docker client's environment (as for `run`). */
  env?: Record<string, string>
  /** Ends the command, as `stop()` does (the verification it serves ended, or the run was cancelled). */
  signal?: AbortSignal
}

/** How a streaming command ended. */
export interface DockerStreamEnd {
  /** The exit code; undefined when docker never ran or was killed. */
  exitCode?: number
  /** Docker's stderr, or why it could not be started. */
  stderr: string
  /** True when it ended because it was told to (`stop()` or the signal), not by itself. */
  stopped: boolean
}

/** A long-running docker command (`docker events`): its lines go to `onLine` until it ends. */
export interface DockerStream {
  /** Settles once the process is gone, whatever ended it; never rejects. */
  readonly ended: Promise<DockerStreamEnd>
  /** Kills the process. Safe to call more than once, and after it ended. */
  stop(): void
}

/**
 * The single way a docker process is started. Tests replace it with a recorder to assert argv.
 * `argv` excludes the `docker` executable itself.
 */
export interface DockerRunner {
  run(argv: readonly string[], options?: DockerRunOptions): Promise<DockerResult>
  /**
   * Starts a command that runs until it is stopped and prints as it goes (`docker events`). Only
   * reads are streamed. Optional: a runner without it (a test fake) makes its callers poll instead.
   */
  stream?(argv: readonly string[], options: DockerStreamOptions): DockerStream
}

export const DEFAULT_TIMEOUT_MS = 5 * 60_000

/** How to stop each streaming docker process that has not ended yet (see `stopLeftoverStreams`). */
const liveStreams = new Set<() => void>()

/**
 * Kills every streaming docker process still running; returns how many there were. Each owner
 * stops its own stream; this is the backstop at the end of a step, since a `docker events` child
 * left running would keep the step's process alive, or outlive it on a self-hosted runner.
 */
export function stopLeftoverStreams(): number {
  const left = [...liveStreams]
  for (const stop of left) stop()
  liveStreams.clear()
  if (left.length > 0) core.debug(`stopped ${left.length} docker stream(s) still running at the end of the step`)
  return left.length
}

/** Thrown when docker exits non-zero; carries docker's stderr so the report can show the cause. */
export class DockerCommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly result: DockerResult
  ) {
    const reason = result.stderr.trim() || result.stdout.trim() || `exit code ${result.exitCode}`
    super(`docker ${argv[0] ?? ''}${argv[1] && !argv[1].startsWith('-') ? ' ' + argv[1] : ''} failed: ${reason}`)
    this.name = 'DockerCommandError'
  }
}

/**
 * Runs the real docker CLI as a child process with an argv array (never a shell).
 *
 * Why node:child_process rather than @actions/exec: a deploy must be able to give up on a hung
 * `docker pull` over SSH and to stop when the runner cancels the job. @actions/exec has neither a
 * timeout nor a way to kill its child, so this runner owns the process and kills it itself.
 */
export class ProcessDockerRunner implements DockerRunner {
  constructor(
    /** `DOCKER_HOST` for every command; undefined keeps the runner's default engine. */
    private readonly dockerHost: string | undefined,
    private readonly executable = 'docker',
    /** `DOCKER_CONFIG` for every command: the run's private client config (see `private-config.ts`). */
    private readonly dockerConfig?: string
  ) {}

  private environment(extra: Record<string, string> | undefined): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, ...extra }
    if (this.dockerHost) env.DOCKER_HOST = this.dockerHost
    if (this.dockerConfig) env.DOCKER_CONFIG = this.dockerConfig
    return env
  }

  run(argv: readonly string[], options: DockerRunOptions = {}): Promise<DockerResult> {
    const env = this.environment(options.env)
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS

    return new Promise((resolve, reject) => {
      const child = spawn(this.executable, argv, { env, stdio: ['pipe', 'pipe', 'pipe'] })
      const stdout: Buffer[] = []
      const stderr: Buffer[] = []
      let failure: Error | undefined
      const kill = (reason: Error): void => {
        failure ??= reason
        child.kill('SIGKILL')
      }
      const timer = setTimeout(
        () => kill(new Error(`docker ${argv[0] ?? ''} did not finish within ${Math.round(timeoutMs / 1000)} s and was stopped`)),
        timeoutMs
      )
      const onAbort = (): void => kill(new Error(`docker ${argv[0] ?? ''} was cancelled`))
      options.signal?.addEventListener('abort', onAbort, { once: true })
      if (options.signal?.aborted) onAbort()

      child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
      child.on('error', (error: NodeJS.ErrnoException) => {
        failure ??=
          error.code === 'ENOENT'
            ? new Error(`The docker CLI was not found on PATH (${this.executable}). Install docker on the runner before this step.`)
            : error
      })
      child.on('close', (code) => {
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
        if (failure) return reject(failure)
        const stdoutBytes = Buffer.concat(stdout)
        resolve({
          exitCode: code ?? 1,
          stdout: stdoutBytes.toString('utf8'),
          stderr: Buffer.concat(stderr).toString('utf8'),
          ...(options.binaryStdout && { stdoutBytes })
        })
      })
      // EPIPE when docker exits before reading stdin is not an error of ours.
      child.stdin.on('error', () => undefined)
      child.stdin.end(options.input ?? '')
    })
  }

  /**
   * Starts `docker <argv>` and hands each stdout line to `onLine` until the process ends, by
   * itself (an engine that refused it, a dropped connection) or by `stop()` or the signal, which
   * kill it. No timeout: the caller owns its lifetime and must stop it.
   */
  stream(argv: readonly string[], options: DockerStreamOptions): DockerStream {
    let stopped = false
    let kill = (): void => undefined
    const stop = (): void => {
      stopped = true
      kill()
    }
    liveStreams.add(stop)
    const ended = new Promise<DockerStreamEnd>((resolve) => {
      if (options.signal?.aborted) {
        liveStreams.delete(stop)
        return resolve({ stderr: '', stopped: true })
      }
      const child = spawn(this.executable, argv, { env: this.environment(options.env), stdio: ['ignore', 'pipe', 'pipe'] })
      kill = () => void child.kill('SIGKILL')
      options.signal?.addEventListener('abort', stop, { once: true })
      let pending = ''
      let stderr = ''
      let spawnError: string | undefined
      child.stdout.setEncoding('utf8')
      child.stdout.on('data', (chunk: string) => {
        const lines = (pending + chunk).split('\n')
        pending = lines.pop() ?? ''
        for (const line of lines) if (line.trim()) options.onLine(line)
      })
      child.stderr.setEncoding('utf8')
      // Bounded: a stream that complains forever must not grow without end.
      child.stderr.on('data', (chunk: string) => void (stderr = (stderr + chunk).slice(-8_192)))
      child.on('error', (error: NodeJS.ErrnoException) => {
        spawnError ??=
          error.code === 'ENOENT' ? `The docker CLI was not found on PATH (${this.executable}). Install docker on the runner before this step.` : error.message
      })
      child.on('close', (code) => {
        liveStreams.delete(stop)
        options.signal?.removeEventListener('abort', stop)
        kill = () => undefined
        resolve({ ...(code !== null && { exitCode: code }), stderr: spawnError ?? stderr, stopped })
      })
    })
    return { ended, stop }
  }
}

