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

/**
 * The single way a docker process is started. Tests replace it with a recorder to assert argv.
 * `argv` excludes the `docker` executable itself.
 */
export interface DockerRunner {
  run(argv: readonly string[], options?: DockerRunOptions): Promise<DockerResult>
}

export const DEFAULT_TIMEOUT_MS = 5 * 60_000

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

  run(argv: readonly string[], options: DockerRunOptions = {}): Promise<DockerResult> {
    const env: NodeJS.ProcessEnv = { ...process.env, ...options.env }
    if (this.dockerHost) env.DOCKER_HOST = this.dockerHost
    if (this.dockerConfig) env.DOCKER_CONFIG = this.dockerConfig
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
}
