import * as core from '@actions/core'
import { DockerCommandError, type DockerResult, type DockerRunner, type DockerRunOptions } from './runner.js'

/** The part of `docker container inspect` that the deploy reads. */
export interface ContainerInfo {
  id: string
  name: string
  /** Image reference the container was created from, as given to `docker run`. */
  image: string
  /** Local image id (`sha256:…`). */
  imageId: string
  labels: Record<string, string>
  status: string
  running: boolean
  restarting: boolean
  exitCode: number
  /** Docker's own error when the container could not start (e.g. port already in use). */
  error: string
  oomKilled: boolean
  startedAt: string
  /** `starting`, `healthy` or `unhealthy` when the image defines a HEALTHCHECK. */
  health?: string
  restartCount: number
}

interface ExecOptions extends DockerRunOptions {
  /** Changes state on the host: skipped and only printed in a dry run. */
  mutates?: boolean
  /** Return the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean
}

const NO_SUCH = /no such (container|object|image|service)|not found/i

/**
 * The one door to docker. Every docker command of the action is a method here, built as an argv
 * array and sent through one `exec` path, so that dry runs, secrets, timeouts and error messages
 * are handled in one place, and tests can assert the exact argv through a recording runner.
 */
export class DockerClient {
  /** Commands a dry run would have run, in order, for the plan. */
  readonly plannedCommands: string[] = []

  constructor(
    private readonly runner: DockerRunner,
    private readonly options: { dryRun?: boolean; signal?: AbortSignal; label?: string } = {}
  ) {}

  /** Host label for messages (`ssh://…`, or `local`). */
  get hostLabel(): string {
    return this.options.label ?? 'local'
  }

  async exec(argv: string[], options: ExecOptions = {}): Promise<DockerResult> {
    if (options.mutates && this.options.dryRun) {
      const line = `docker ${argv.join(' ')}`
      this.plannedCommands.push(line)
      core.info(`[dry-run] would run: ${line}`)
      return { exitCode: 0, stdout: '', stderr: '' }
    }
    core.debug(`docker ${argv.join(' ')}`)
    const result = await this.runner.run(argv, { signal: this.options.signal, ...options })
    if (result.exitCode !== 0 && !options.allowFailure) throw new DockerCommandError(argv, result)
    return result
  }

  /** Server version; fails with docker's own message when the engine cannot be reached. */
  async serverVersion(): Promise<string> {
    const result = await this.exec(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 30_000 })
    return result.stdout.trim()
  }

  /** Logs in with the password on stdin, so it never appears in argv or the process list. */
  async login(server: string | undefined, username: string, password: string): Promise<void> {
    const argv = ['login', '--username', username, '--password-stdin']
    if (server) argv.push(server)
    await this.exec(argv, { input: password, mutates: true, timeoutMs: 60_000 })
  }

  async pull(reference: string): Promise<void> {
    await this.exec(['pull', '--quiet', reference], { mutates: true })
  }

  /** True when the image is present locally. */
  async imageExists(reference: string): Promise<boolean> {
    const result = await this.exec(['image', 'inspect', '--format', '{{.Id}}', reference], {
      allowFailure: true,
      timeoutMs: 30_000
    })
    return result.exitCode === 0
  }

  /**
   * The registry digest (`sha256:…`) of a local image for the given repository: what
   * `repository@digest` pulls. Undefined for an image that never came from that registry; its
   * local id is not a digest and must not be printed as one.
   */
  async imageDigest(reference: string, repository: string): Promise<string | undefined> {
    const result = await this.exec(['image', 'inspect', '--format', '{{json .RepoDigests}}', reference], {
      allowFailure: true,
      timeoutMs: 30_000
    })
    if (result.exitCode !== 0) return undefined
    const repoDigests = JSON.parse(result.stdout.trim() || '[]') as string[] | null
    const match = (repoDigests ?? []).find((entry) => entry.startsWith(`${repository}@`))
    return match?.slice(repository.length + 1)
  }

  /** The container's state and labels, or undefined when there is no such container. */
  async inspectContainer(name: string): Promise<ContainerInfo | undefined> {
    const [info] = await this.inspectContainers([name])
    return info
  }

  /**
   * Several containers with one `docker container inspect a b c`: one CLI process instead of one
   * per name. The result lines up with `names`; undefined where there is no such container.
   *
   * Docker prints the containers it found as one JSON array and exits 1 when any name is missing,
   * with one "No such container" line per missing name on stderr. That exit is read as "absent";
   * any other error (an unreachable daemon, a denied socket) throws, as for a single inspect.
   */
  async inspectContainers(names: readonly string[]): Promise<(ContainerInfo | undefined)[]> {
    if (names.length === 0) return []
    const argv = ['container', 'inspect', ...names]
    const result = await this.exec(argv, { allowFailure: true, timeoutMs: 30_000 })
    let found: DockerInspect[]
    try {
      found = (JSON.parse(result.stdout.trim() || '[]') as DockerInspect[] | null) ?? []
    } catch (error) {
      if (result.exitCode !== 0) throw new DockerCommandError(argv, result)
      throw error
    }
    if (result.exitCode !== 0) {
      // Every name must be accounted for, found or reported missing: anything else is a real error.
      const missing = result.stderr.split('\n').filter((line) => NO_SUCH.test(line)).length
      if (missing === 0 || found.length + missing < names.length) throw new DockerCommandError(argv, result)
    }
    // Matched the way docker resolves a reference: a full id, a name, then an id prefix.
    return names.map((name) => {
      const raw =
        found.find((entry) => entry.Id === name) ??
        found.find((entry) => entry.Name === `/${name}`) ??
        found.find((entry) => entry.Id.startsWith(name))
      return raw && containerInfo(raw)
    })
  }

  /** Creates (does not start) a container from a prepared argv (see `run-args.ts`); returns its id. */
  async createContainer(createArgv: string[], secretEnv: Record<string, string>): Promise<string> {
    const result = await this.exec(createArgv, { env: secretEnv, mutates: true, timeoutMs: 60_000 })
    return result.stdout.trim()
  }

  /** Runs a one-off container to completion (pre-deploy hooks); returns its result without throwing. */
  async runToCompletion(runArgv: string[], secretEnv: Record<string, string>, timeoutMs: number): Promise<DockerResult> {
    return this.exec(runArgv, { env: secretEnv, mutates: true, allowFailure: true, timeoutMs })
  }

  async stopContainer(name: string, timeoutSeconds?: number): Promise<void> {
    const argv = ['container', 'stop']
    if (timeoutSeconds !== undefined) argv.push('--time', String(timeoutSeconds))
    argv.push(name)
    await this.exec(argv, { mutates: true })
  }

  async startContainer(name: string): Promise<void> {
    await this.exec(['container', 'start', name], { mutates: true })
  }

  async renameContainer(from: string, to: string): Promise<void> {
    await this.exec(['container', 'rename', from, to], { mutates: true })
  }

  /** Removes a container, running or not; a missing container is not an error. True when one was removed. */
  async removeContainer(name: string): Promise<boolean> {
    const result = await this.exec(['container', 'rm', '--force', name], { mutates: true, allowFailure: true })
    if (result.exitCode !== 0 && !NO_SUCH.test(result.stderr)) throw new DockerCommandError(['container', 'rm', name], result)
    return result.exitCode === 0
  }

  /**
   * Imports an image with an empty filesystem (an empty tar archive on stdin): the never-started
   * lock container needs some image, and this one is present on every host without a registry.
   */
  async importEmptyImage(reference: string): Promise<void> {
    // An empty tar archive is two 512-byte blocks of zeros.
    await this.exec(['image', 'import', '--message', 'deploy-action lock', '-', reference], { input: '\0'.repeat(1024), mutates: true, timeoutMs: 60_000 })
  }

  /**
   * Creates a container that is never started, as a lock, and returns its id. Docker refuses a
   * second container of the same name atomically, so false means another holder has it.
   * `--pull never`: a missing lock image fails at once with "No such image" (the caller imports
   * it) instead of the CLI asking a registry for it.
   */
  async createLockContainer(name: string, image: string, labels: Record<string, string>): Promise<string | false> {
    const argv = ['container', 'create', '--pull', 'never', '--name', name, '--network', 'none']
    for (const [key, value] of Object.entries(labels)) argv.push('--label', `${key}=${value}`)
    argv.push(image, 'deploy-action-lock')
    const result = await this.exec(argv, { mutates: true, allowFailure: true, timeoutMs: 60_000 })
    if (result.exitCode === 0) return result.stdout.trim()
    if (/conflict|already in use/i.test(result.stderr)) return false
    throw new DockerCommandError(argv, result)
  }

  /** The last lines of a container's output (stdout and stderr interleaved by docker). */
  async containerLogs(name: string, tail: number): Promise<string> {
    const result = await this.exec(['container', 'logs', '--tail', String(tail), name], {
      allowFailure: true,
      timeoutMs: 30_000
    })
    return (result.stdout + result.stderr).trimEnd()
  }
}

function containerInfo(raw: DockerInspect): ContainerInfo {
  return {
    id: raw.Id,
    name: raw.Name.replace(/^\//, ''),
    image: raw.Config.Image,
    imageId: raw.Image,
    labels: raw.Config.Labels ?? {},
    status: raw.State.Status,
    running: raw.State.Running,
    restarting: raw.State.Restarting,
    exitCode: raw.State.ExitCode,
    error: raw.State.Error ?? '',
    oomKilled: raw.State.OOMKilled ?? false,
    startedAt: raw.State.StartedAt,
    health: raw.State.Health?.Status,
    restartCount: raw.RestartCount ?? 0
  }
}

/** Raw shape of `docker container inspect`, only the fields read above. */
interface DockerInspect {
  Id: string
  Name: string
  Image: string
  RestartCount?: number
  Config: { Image: string; Labels?: Record<string, string> | null }
  State: {
    Status: string
    Running: boolean
    Restarting: boolean
    ExitCode: number
    Error?: string
    OOMKilled?: boolean
    StartedAt: string
    Health?: { Status: string }
  }
}
