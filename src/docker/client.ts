import * as core from '@actions/core'
import { DockerCommandError, type DockerResult, type DockerRunner, type DockerRunOptions, type DockerStream } from './runner.js'

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
  /** When docker created it, by the daemon's clock (ISO); empty when unknown. */
  created: string
  /** `starting`, `healthy` or `unhealthy` when the image defines a HEALTHCHECK. */
  health?: string
  restartCount: number
  /** IPv4 address on each network the container is attached to (empty while it is not running). */
  networks?: Record<string, string>
}

/** One event of `docker events` about a container (see `containerEvents`). */
export interface ContainerEvent {
  /** `die`, `oom`, `kill`, `health_status`…: docker's action up to a colon. */
  action: string
  /** What docker's action says after its colon: `healthy` for `health_status: healthy`. */
  detail?: string
  /** The container's full id. */
  id: string
  /** The container's name when the event says it. */
  name?: string
  /** The event's attributes: `exitCode` of a `die`, `signal` of a `kill`, the labels… */
  attributes: Record<string, string>
  /** The daemon's time of the event, in ns since the epoch (0 when not given). */
  timeNano: number
}

/**
 * What a health check follows with `containerEvents`: a process that ended (`die`; `oom` comes
 * before the `die` of a process the kernel killed; `kill` before the `die` of a signalled one),
 * `pause`, `restart` (`docker restart`), `destroy`, `rename`, and each change of a HEALTHCHECK's
 * status (`health_status: healthy`; docker matches the bare `health_status` as a prefix).
 */
export const CONTAINER_EVENT_ACTIONS = ['die', 'oom', 'kill', 'pause', 'restart', 'destroy', 'rename', 'health_status'] as const

/** A `--since` value: a docker timestamp as inspect prints it (RFC 3339), or seconds since the epoch. */
const EVENT_TIMESTAMP = /^(?:\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})|\d{1,12}(?:\.\d{1,9})?)$/

/** The part of `docker network inspect` that the proxy strategy reads. */
export interface NetworkInfo {
  id: string
  name: string
  labels: Record<string, string>
}

interface ExecOptions extends DockerRunOptions {
  /** Return the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean
  /** What a dry run's plan shows for the input on stdin (the input itself may be binary). */
  plannedInput?: string
}

/** Docker object names the action passes by itself (networks, containers of the proxy strategy). */
const OBJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/

/** Throws unless `name` is a plain docker object name, so it can never be read as an option. */
function objectName(name: string): string {
  if (!OBJECT_NAME.test(name)) throw new Error(`not a docker object name: ${JSON.stringify(name)}`)
  return name
}

/** What a registry said about one image reference (see `registryHasImage`). */
export type RegistryImageAnswer = { answer: 'present' } | { answer: 'absent' } | { answer: 'unknown'; reason: string }

/** The line `docker pull` prints (without `--quiet`) once it has the manifest: `Digest: sha256:…`. */
const PULLED_DIGEST = /^Digest: (sha256:[0-9a-f]{64})\s*$/m

/** `[registry/]repo:tag` starting with a letter or digit, so it can never be read as an option. */
const IMAGE_REFERENCE = /^[A-Za-z0-9][A-Za-z0-9._/:-]*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/
/** A reference whose registry is on the loopback: `127.x.x.x[:port]/`, `localhost[:port]/`, `[::1][:port]/`. */
const LOOPBACK_REGISTRY = /^(?:127(?:\.\d{1,3}){3}|localhost|\[::1\])(?::\d+)?\//

const NO_SUCH = /no such (container|object|image|service)|not found/i
/** Older engines say "No such network" where newer ones say "network … not found". */
const NO_SUCH_NETWORK = /no such network/i

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

  /** True in a dry run: commands that change state are only planned. */
  get dryRun(): boolean {
    return this.options.dryRun === true
  }

  /** Host label for messages (`ssh://…`, or `local`). */
  get hostLabel(): string {
    return this.options.label ?? 'local'
  }

  async exec(argv: string[], options: ExecOptions = {}): Promise<DockerResult> {
    if (options.mutates && this.options.dryRun) {
      const line = `docker ${argv.join(' ')}${options.plannedInput ? ` <<< ${options.plannedInput}` : ''}`
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

  /**
   * The daemon's clock, in ms since the epoch: the one clock every runner that deploys to this host
   * agrees on (the deploy lock's lease is judged by it, never by a runner's own clock).
   */
  async daemonTime(): Promise<number> {
    const argv = ['system', 'info', '--format', '{{json .SystemTime}}']
    const result = await this.exec(argv, { timeoutMs: 30_000 })
    const ms = Date.parse(JSON.parse(result.stdout.trim() || 'null') as string)
    if (!Number.isFinite(ms)) throw new Error(`docker system info did not tell the daemon's time: ${JSON.stringify(result.stdout.trim().slice(0, 100))}`)
    return ms
  }

  /**
   * What names the engine whatever the docker host string says (`ssh://deploy@web1` and
   * `ssh://web1` are one engine), and its clock, in one command. The deploy lock orders hosts by
   * the identity, so two runs that spell a fleet differently still lock it in the same order. The
   * engine's ID alone is not unique: before Engine 23 it comes from `/etc/docker/key.json`, which
   * machines cloned from one image (and engines sharing one /etc) have in common; the machine's
   * name and the engine's data root tell most of those apart.
   */
  async engineIdentity(): Promise<{ id: string; time: number }> {
    const result = await this.exec(['system', 'info', '--format', '{{json .ID}}\t{{json .Name}}\t{{json .DockerRootDir}}\t{{json .SystemTime}}'], { timeoutMs: 30_000 })
    const [idText = '', nameText = '', rootText = '', timeText = ''] = result.stdout.trim().split('\t')
    const id = parseJsonString(idText)
    const time = Date.parse(parseJsonString(timeText) ?? '')
    if (!id || !Number.isFinite(time)) throw new Error(`docker system info did not tell the engine's ID and time: ${JSON.stringify(result.stdout.trim().slice(0, 120))}`)
    return { id: [id, parseJsonString(nameText) ?? '', parseJsonString(rootText) ?? ''].join(' '), time }
  }

  /** Logs in with the password on stdin, so it never appears in argv or the process list. */
  async login(server: string | undefined, username: string, password: string): Promise<void> {
    const argv = ['login', '--username', username, '--password-stdin']
    if (server) argv.push(server)
    await this.exec(argv, { input: password, mutates: true, timeoutMs: 60_000 })
  }

  /**
   * Pulls `reference` and returns the registry digest docker printed for it (its `Digest:` line):
   * the same digest `image inspect` lists in RepoDigests for that repository, read here without a
   * second docker command. Undefined when docker printed none (a CLI that words it otherwise): the
   * caller then asks `imageDigest`.
   */
  async pull(reference: string): Promise<string | undefined> {
    const result = await this.exec(['pull', reference], { mutates: true })
    return PULLED_DIGEST.exec(result.stdout)?.[1]
  }

  /**
   * Whether the registry holds `reference` (`repo:tag`), asked with `docker manifest inspect`: it
   * runs in the CLI on the runner (also for an `ssh://` host), with the run's docker config and
   * so its login, and pulls nothing. Unknown is not absent: only a registry that answered
   * "manifest unknown" (or "name unknown") for every endpoint is `absent`. The CLI prints "no
   * such manifest" as well for a refused login and for a plain-HTTP registry it skipped, so the
   * answer is read from its `--debug` lines; anything else (no credentials, a timeout, a refused
   * connection) is `unknown`, with why. `--insecure` only for a registry on the loopback, which
   * docker's daemon also reaches over plain HTTP by default (127.0.0.0/8); never for another,
   * where it would send the login over unverified TLS.
   */
  async registryHasImage(reference: string): Promise<RegistryImageAnswer> {
    if (!IMAGE_REFERENCE.test(reference)) throw new Error(`not an image reference: ${JSON.stringify(reference)}`)
    const argv = ['--debug', 'manifest', 'inspect', ...(LOOPBACK_REGISTRY.test(reference) ? ['--insecure'] : []), reference]
    let result: DockerResult
    try {
      result = await this.exec(argv, { allowFailure: true, timeoutMs: 30_000 })
    } catch (error) {
      return { answer: 'unknown', reason: error instanceof Error ? error.message : String(error) }
    }
    if (result.exitCode === 0) return { answer: 'present' }
    const lines = result.stderr.split('\n').map((line) => line.trim()).filter(Boolean)
    const last = lines.at(-1) ?? `exit code ${result.exitCode}`
    // Each endpoint the CLI tried and gave up on leaves one such line; all must be a definite "no".
    const errors = lines.filter((line) => /level=debug/.test(line) && /continuing on error|skipping/i.test(line))
    const definite = errors.length > 0 && errors.every((line) => /continuing on error \(errcode\.Errors\) (manifest|name) unknown/i.test(line) && !/not continuing/i.test(line))
    if (definite && /^no such manifest: /i.test(last)) return { answer: 'absent' }
    const why = errors.map((line) => /msg="(?:not )?continuing on error \([^)]*\) (.*)"$/.exec(line)?.[1]).find((text) => text && !/(manifest|name) unknown/i.test(text))
    return { answer: 'unknown', reason: (why ?? last).replace(/\\"/g, '"') }
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

  /**
   * Sends a signal to a running container's main process (PID 1) from inside it, e.g. `USR2`:
   * HAProxy's seamless reload. Not `docker kill --signal`: docker marks any container it signals
   * that way as stopped by hand, and `--restart unless-stopped` then no longer brings it back after
   * a reboot (moby#41302). Needs `kill` in the image (busybox has it).
   */
  async signalMainProcess(name: string, signal: 'USR1' | 'USR2' | 'HUP'): Promise<void> {
    await this.exec(['container', 'exec', objectName(name), 'kill', `-${signal}`, '1'], { mutates: true, timeoutMs: 30_000 })
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

  /** A network's id, name and labels, or undefined when there is none of that name. */
  async inspectNetwork(name: string): Promise<NetworkInfo | undefined> {
    const argv = ['network', 'inspect', objectName(name)]
    const result = await this.exec(argv, { allowFailure: true, timeoutMs: 30_000 })
    if (result.exitCode !== 0) {
      if (NO_SUCH.test(result.stderr) || NO_SUCH_NETWORK.test(result.stderr)) return undefined
      throw new DockerCommandError(argv, result)
    }
    const [raw] = (JSON.parse(result.stdout.trim() || '[]') as { Id: string; Name: string; Labels?: Record<string, string> | null }[] | null) ?? []
    return raw && { id: raw.Id, name: raw.Name, labels: raw.Labels ?? {} }
  }

  /** Creates a user-defined bridge network with labels; returns its id. */
  async createNetwork(name: string, labels: Record<string, string>): Promise<string> {
    const argv = ['network', 'create', '--driver', 'bridge']
    for (const [key, value] of Object.entries(labels)) argv.push('--label', `${key}=${value}`)
    argv.push(objectName(name))
    const result = await this.exec(argv, { mutates: true, timeoutMs: 60_000 })
    return result.stdout.trim()
  }

  /** Removes a network; a missing network is not an error. */
  async removeNetwork(name: string): Promise<void> {
    const argv = ['network', 'rm', objectName(name)]
    const result = await this.exec(argv, { mutates: true, allowFailure: true, timeoutMs: 60_000 })
    if (result.exitCode !== 0 && !NO_SUCH.test(result.stderr) && !NO_SUCH_NETWORK.test(result.stderr)) throw new DockerCommandError(argv, result)
  }

  /**
   * Runs `command` in a running container with `input` on its stdin (`docker exec -i`) and returns
   * what it printed on stdout; throws on a non-zero exit. `mutates` marks a command that changes
   * state (a dry run only plans it, showing `plannedInput`).
   */
  async execIn(container: string, command: string[], options: { input: string; timeoutMs: number; mutates?: boolean; plannedInput?: string }): Promise<string> {
    const argv = ['container', 'exec', '--interactive', objectName(container), ...command]
    const result = await this.exec(argv, { input: options.input, timeoutMs: options.timeoutMs, mutates: options.mutates, plannedInput: options.plannedInput })
    return result.stdout
  }

  /**
   * Copies a tar archive (on stdin) into `directory` of a container, created or running
   * (`docker cp - <container>:<directory>`). The archive is a string of single-byte characters.
   */
  async copyArchiveInto(container: string, directory: string, archive: string, plannedInput = 'a tar archive'): Promise<void> {
    if (!directory.startsWith('/')) throw new Error(`expected an absolute directory, got ${JSON.stringify(directory)}`)
    await this.exec(['container', 'cp', '-', `${objectName(container)}:${directory}`], { input: archive, mutates: true, timeoutMs: 60_000, plannedInput })
  }

  /**
   * The content of one text file of a container, running or stopped (`docker cp <container>:<path> -`
   * prints a tar archive). Undefined when the container or the file does not exist.
   */
  async readFileFrom(container: string, path: string): Promise<string | undefined> {
    const argv = ['container', 'cp', `${objectName(container)}:${path}`, '-']
    const result = await this.exec(argv, { allowFailure: true, timeoutMs: 30_000, binaryStdout: true })
    if (result.exitCode !== 0) {
      if (NO_SUCH.test(result.stderr) || /could not find the file/i.test(result.stderr)) return undefined
      throw new DockerCommandError(argv, result)
    }
    // The archive as bytes: its text decoded as UTF-8 would shift every offset after a
    // multi-byte character. A runner that has only text (a test fake) gives an ASCII archive.
    return fileOfTar(result.stdoutBytes ?? Buffer.from(result.stdout, 'utf8'))?.toString('utf8')
  }

  /**
   * Records that an image was deployed now, by the daemon's clock: tagging a reference with
   * itself sets the image's `Metadata.LastTagTime` (a pull does not), which `imageRecords` reads.
   */
  async markImageDeployed(reference: string): Promise<void> {
    await this.exec(['image', 'tag', reference, reference], { mutates: true, timeoutMs: 30_000 })
  }

  /** The local images of one repository: their ids with every reference (`repo:tag`, or `repo@digest` without a tag). */
  async repositoryImages(repository: string): Promise<Map<string, string[]>> {
    const result = await this.exec(['image', 'ls', '--no-trunc', '--format', '{{.ID}}\t{{.Repository}}\t{{.Tag}}\t{{.Digest}}', repository], { timeoutMs: 60_000 })
    const images = new Map<string, string[]>()
    for (const line of result.stdout.split('\n').filter(Boolean)) {
      const [id = '', repo = '', tag = '', digest = ''] = line.split('\t')
      const reference = tag && tag !== '<none>' ? `${repo}:${tag}` : digest && digest !== '<none>' ? `${repo}@${digest}` : undefined
      if (!id || repo !== repository || !reference) continue
      images.set(id, [...(images.get(id) ?? []), reference])
    }
    return images
  }

  /** Size, build time and last deploy mark (see `markImageDeployed`) of local images, by id. */
  async imageRecords(ids: readonly string[]): Promise<ImageRecord[]> {
    if (ids.length === 0) return []
    const format = '{"id":{{json .Id}},"created":{{json .Created}},"lastTagTime":{{json .Metadata.LastTagTime}},"size":{{json .Size}}}'
    const argv = ['image', 'inspect', '--format', format, ...ids]
    const result = await this.exec(argv, { allowFailure: true, timeoutMs: 60_000 })
    // An image removed since it was listed is simply not there any more.
    if (result.exitCode !== 0 && result.stderr.split('\n').some((line) => line.trim() && !NO_SUCH.test(line))) throw new DockerCommandError(argv, result)
    return result.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const raw = JSON.parse(line) as { id: string; created?: string; lastTagTime?: string | null; size?: number }
        return { id: raw.id, createdMs: dateMs(raw.created), lastTagMs: dateMs(raw.lastTagTime ?? undefined), size: raw.size ?? 0 }
      })
  }

  /**
   * The image ids of every container on the host, running or not (kept `-previous` versions,
   * proxy slots, Swarm tasks, containers of other apps): the images that must never be removed.
   */
  async imagesInUse(): Promise<Set<string>> {
    const listed = await this.exec(['container', 'ls', '--all', '--quiet', '--no-trunc'], { timeoutMs: 60_000 })
    const ids = listed.stdout.split('\n').map((line) => line.trim()).filter(Boolean)
    if (ids.length === 0) return new Set()
    const argv = ['container', 'inspect', '--format', '{{.Image}}', ...ids]
    const result = await this.exec(argv, { allowFailure: true, timeoutMs: 60_000 })
    // A container removed since it was listed uses nothing; any other error leaves the answer unknown.
    if (result.exitCode !== 0 && result.stderr.split('\n').some((line) => line.trim() && !NO_SUCH.test(line))) throw new DockerCommandError(argv, result)
    return new Set(result.stdout.split('\n').map((line) => line.trim()).filter(Boolean))
  }

  /**
   * Removes image references without `--force`, so docker itself refuses an image that a container
   * uses. Returns what docker untagged and deleted, and each reference it refused with its reason.
   */
  async removeImages(references: readonly string[]): Promise<{ untagged: string[]; deleted: string[]; refused: string[] }> {
    if (references.length === 0) return { untagged: [], deleted: [], refused: [] }
    const result = await this.exec(['image', 'rm', ...references], { mutates: true, allowFailure: true, timeoutMs: 120_000 })
    const lines = (text: string, prefix: RegExp): string[] =>
      text
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => prefix.test(line))
        .map((line) => line.replace(prefix, '').trim())
    return { untagged: lines(result.stdout, /^Untagged:/), deleted: lines(result.stdout, /^Deleted:/), refused: result.stderr.split('\n').map((line) => line.trim()).filter(Boolean) }
  }

  /**
   * Follows `containers` (names or ids) with one `docker events` process, filtered to them and to
   * `CONTAINER_EVENT_ACTIONS`, until the stream is stopped, `signal` aborts or the run is
   * cancelled; each event goes to `onEvent`, in the daemon's order. Docker matches a container
   * filter as a prefix (`web` also gets `web-proxy`'s events), so callers match the id or name
   * themselves. `since` (the daemon's time, e.g. a container's StartedAt) replays the events
   * docker still holds from then on, so none is missed between a read and the stream's start.
   * Undefined when the runner cannot stream (the caller reads by commands instead).
   */
  containerEvents(containers: readonly string[], options: { since?: string; signal?: AbortSignal; onEvent: (event: ContainerEvent) => void }): DockerStream | undefined {
    if (!this.runner.stream) return undefined
    // Without a container filter docker would send the events of every container on the host.
    if (containers.length === 0) throw new Error('containerEvents needs at least one container')
    const argv = ['events', '--format', '{{json .}}', '--filter', 'type=container']
    for (const container of containers) argv.push('--filter', `container=${objectName(container)}`)
    for (const action of CONTAINER_EVENT_ACTIONS) argv.push('--filter', `event=${action}`)
    if (options.since !== undefined) {
      if (!EVENT_TIMESTAMP.test(options.since)) throw new Error(`not a docker timestamp: ${JSON.stringify(options.since)}`)
      argv.push('--since', options.since)
    }
    core.debug(`docker ${argv.join(' ')}`)
    const signals = [this.options.signal, options.signal].filter((signal): signal is AbortSignal => signal !== undefined)
    return this.runner.stream(argv, {
      signal: signals.length > 1 ? AbortSignal.any(signals) : signals[0],
      onLine: (line) => {
        const event = parseContainerEvent(line)
        if (event) options.onEvent(event)
      }
    })
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
    created: raw.Created ?? '',
    health: raw.State.Health?.Status,
    restartCount: raw.RestartCount ?? 0,
    networks: Object.fromEntries(Object.entries(raw.NetworkSettings?.Networks ?? {}).map(([network, settings]) => [network, settings?.IPAddress ?? '']))
  }
}

/**
 * The bytes of the first regular file of a tar archive (as `docker cp … -` prints it), read as
 * bytes so that any content, UTF-8 or binary, comes out exactly as it went in.
 */
export function fileOfTar(archive: Buffer): Buffer | undefined {
  let offset = 0
  while (offset + 512 <= archive.length) {
    const header = archive.subarray(offset, offset + 512)
    if (header.every((byte) => byte === 0)) return undefined
    const size = parseInt(header.toString('latin1', 124, 136).replace(/[\0 ]+$/, '').trim() || '0', 8)
    if (!Number.isSafeInteger(size)) return undefined
    const type = header.toString('latin1', 156, 157)
    const start = offset + 512
    if (type === '0' || type === '\0') return Buffer.from(archive.subarray(start, start + size))
    offset = start + Math.ceil(size / 512) * 512
  }
  return undefined
}

/** One local image as `imageRecords` reads it; times in ms since the epoch by the daemon's clock, 0 when unset. */
export interface ImageRecord {
  id: string
  createdMs: number
  lastTagMs: number
  /** Bytes, shared layers included. */
  size: number
}

/** A docker timestamp in ms; 0 for none or Go's zero time (`0001-01-01T00:00:00Z`). */
function dateMs(text: string | undefined): number {
  const ms = text ? Date.parse(text) : NaN
  return Number.isFinite(ms) && ms > 0 ? ms : 0
}

/** Raw shape of `docker container inspect`, only the fields read above. */
interface DockerInspect {
  Id: string
  Name: string
  Image: string
  Created?: string
  RestartCount?: number
  NetworkSettings?: { Networks?: Record<string, { IPAddress?: string } | null> | null }
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

/** One line of `docker events --format '{{json .}}'`; undefined for anything but a container event. */
export function parseContainerEvent(line: string): ContainerEvent | undefined {
  let raw: { Type?: string; Action?: string; status?: string; id?: string; Actor?: { ID?: string; Attributes?: Record<string, string> | null }; timeNano?: number }
  try {
    raw = JSON.parse(line) as typeof raw
  } catch {
    return undefined
  }
  if (!raw || typeof raw !== 'object' || (raw.Type !== undefined && raw.Type !== 'container')) return undefined
  const fullAction = raw.Action ?? raw.status ?? ''
  const id = raw.Actor?.ID ?? raw.id ?? ''
  if (!fullAction || !id) return undefined
  const colon = fullAction.indexOf(':')
  const attributes = raw.Actor?.Attributes ?? {}
  return {
    action: colon === -1 ? fullAction : fullAction.slice(0, colon),
    ...(colon !== -1 && { detail: fullAction.slice(colon + 1).trim() }),
    id,
    ...(attributes.name !== undefined && { name: attributes.name }),
    attributes,
    timeNano: typeof raw.timeNano === 'number' ? raw.timeNano : 0
  }
}

/** A JSON string as `{{json …}}` prints it; undefined for anything else. */
function parseJsonString(text: string): string | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'string' ? value : undefined
  } catch {
    return undefined
  }
}
