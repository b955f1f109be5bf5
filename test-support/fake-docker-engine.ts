/**
 * A DockerRunner that plays a docker engine (and a single-node Swarm) in memory, so that the whole
 * deploy story can run in-process against it: fast (no real sleeping, a logical clock), no root,
 * no daemon.
 *
 * It models images, containers (names, labels, running or exited, published ports, mounts), Swarm
 * services with their spec, previous spec, update status and tasks, and it answers the docker
 * commands the action sends in the shapes the real CLI prints them. On top of that:
 *
 * - fault injection: `fault` makes the k-th command fail (or `count` commands from the k-th on: a
 *   connection that stays down for a moment), before or after it took effect; `faultRule` fails
 *   the commands a predicate picks (e.g. every read of the proxy's routed slot); `injected` lists
 *   each command that got a fault; `onCommand` sees every command before it runs (e.g. to cancel
 *   a deploy at the k-th command);
 * - workloads that crash at boot (`crashingImages`), starts that fail (`failingStarts`), images a
 *   registry does not have (`missingInRegistry`), an unreachable daemon (`unreachable`);
 * - `describe(name)`: the state a fault sweep asserts its invariants on.
 *
 * - `docker events` (`stream`): container events (start, kill, die, oom, stop, destroy, rename,
 *   pause, health_status) as the state of a container changes, filtered like docker (a container
 *   filter matches an id or name prefix), replayed from `--since`, until the stream is stopped; a
 *   fault on the events command ends its stream at once. `crash` and `setHealth` change a running
 *   container's state from outside (the workload dies, its HEALTHCHECK turns), as time would.
 *
 * Flags it does not know make a command fail with docker's `unknown flag` (exit 125), as the CLI
 * does: a new flag in the action's argv builders must be added here, not silently ignored.
 */
import { createHash } from 'node:crypto'
import { posix } from 'node:path'
import { Label } from '../src/constants.js'
import type { DockerResult, DockerRunner, DockerRunOptions, DockerStream, DockerStreamEnd, DockerStreamOptions } from '../src/docker/runner.js'
import { LOCK_SUFFIX, LockLabel } from '../src/lock.js'
import { singleFileTar } from '../src/proxy/config-archive.js'

export interface FakeContainer {
  id: string
  name: string
  /** The image reference it was created from, as given (`repo:tag`, or `repo:tag@sha256:…` for a Swarm task). */
  image: string
  labels: Record<string, string>
  running: boolean
  exitCode: number
  /** Started at least once: a stopped container is `exited`, one never started is `created`. */
  started?: boolean
  /** Docker's error for a start that failed (State.Error), e.g. a port already allocated. */
  error?: string
  /** Local image id (`sha256:…`) at create time. */
  imageId?: string
  env?: string[]
  /** Container paths of its mounts (`--volume`, `--mount`). */
  mounts?: string[]
  /** `--publish` values; ignored by docker with `--network host`. */
  ports?: string[]
  network?: string
  restart?: string
  /** Argv after the image (the CMD override). */
  command?: string[]
  startedAt?: string
  finishedAt?: string
  /** Set on the container of a Swarm task: the task's id. */
  taskId?: string
  /** When the daemon created it (ISO, `daemonNow`). */
  created?: string
  /** Files written with `docker cp -` (path → content). */
  files?: Map<string, string>
  /** The HEALTHCHECK's status (`starting`, `healthy`, `unhealthy`) when it has one (`setHealth`). */
  health?: string
  /** The kernel killed it for lack of memory (`crash` with `oomKilled`). */
  oomKilled?: boolean
}

/** One container event as docker prints it (the fields the fake fills in). */
interface FakeEvent {
  status: string
  id: string
  from: string
  Type: string
  Action: string
  Actor: { ID: string; Attributes: Record<string, string> }
  scope: string
  time: number
  timeNano: number
}

/** One open `docker events` stream. */
interface EventSubscriber {
  filters: [string, string][]
  onLine: (line: string) => void
  close: () => void
}

/** A Swarm service as `docker service inspect` shows it (only the fields the fake models). */
export interface FakeService {
  ID: string
  Version: { Index: number }
  CreatedAt: string
  UpdatedAt: string
  Spec: FakeServiceSpec
  PreviousSpec?: FakeServiceSpec
  UpdateStatus?: { State: string; StartedAt: string; CompletedAt?: string; Message: string }
}

export interface FakeServiceSpec {
  Name: string
  /** Service labels: where the action records the release. */
  Labels: Record<string, string>
  TaskTemplate: {
    ContainerSpec: {
      Image: string
      Labels: Record<string, string>
      Args: string[]
      Env: string[]
      Init?: boolean
      Mounts: { Type: string; Source: string; Target: string; ReadOnly?: boolean }[]
      StopGracePeriod?: number
    }
    RestartPolicy: { Condition: string; MaxAttempts: number }
    ForceUpdate: number
    Networks?: { Target: string }[]
  }
  Mode: { Replicated: { Replicas: number } } | { Global: Record<string, never> }
  UpdateConfig: { Parallelism: number; Delay?: number; FailureAction: string; Monitor: number; MaxFailureRatio: number; Order: string }
  EndpointSpec: { Mode: string; Ports: { Protocol: string; TargetPort: number; PublishedPort?: number; PublishMode: string }[] }
}

export interface FakeTask {
  id: string
  serviceId: string
  serviceName: string
  slot: number
  /** The spec image when the task was made (with `@sha256:…` when Swarm pinned it). */
  image: string
  /** `running`, `ready` or `shutdown`: what Swarm wants this task to be. */
  desiredState: string
  /** `ready`, `starting`, `running`, `shutdown`, `failed`, `rejected`… */
  state: string
  /** `task: non-zero exit (1)` for a failed task. */
  error: string
  /** Empty until the task got a container. */
  containerId: string
  /** Logical times (see `now`). */
  createdAt: number
  timestamp: number
  /** The task template it was made from: a task is out of date when the spec's differs. */
  template: string
}

/** What `describe(name)` finds under one app name: the facts a fault sweep's invariants need. */
export interface EngineDescription {
  /** The container named exactly `name` (strategy `replace`). */
  container?: { tag?: string; image: string; running: boolean; status: string; exitCode: number; crashing: boolean }
  /** Other containers named `<name>-…` (`-previous`, `-previous-older`, `-next`), the lock excepted; sorted. */
  kept: string[]
  /** Tag label of each kept container, by name. */
  keptTags: Record<string, string | undefined>
  /** The service named `name` (strategy `swarm`). */
  service?: {
    tag?: string
    image: string
    replicas: number
    /** Tasks that run the current spec's image (desired and actual state `running`). */
    runningTasks: number
    failedTasks: number
    crashing: boolean
    updateState?: string
  }
  /** `<name>-deploy-lock` exists. */
  lockHeld: boolean
  lockOwner?: string
  /**
   * A good version serves: the service has at least `replicas` running tasks of its spec image and
   * that image does not crash, or (without a service) the container `name` runs an image that does not crash.
   */
  serves: boolean
}

export type FaultMode = 'before' | 'after'

/**
 * A window of failing commands: the `at`-th command (1-based, over every `run`) and the
 * `count - 1` after it (default 1: that command alone) fail with exit code 1.
 */
export interface FaultWindow {
  at: number
  mode: FaultMode
  count?: number
}

/** Fails the commands `match` picks, each `mode`; at most `times` of them when given. */
export interface FaultRule {
  match: (argv: readonly string[], options: DockerRunOptions) => boolean
  mode: FaultMode
  times?: number
}

/** A command that got an injected fault. */
export interface InjectedFault {
  index: number
  argv: string[]
  mode: FaultMode
}

/**
 * The fault for command `index`, if any: the window's, else the rule's (which then counts one use).
 * Shared by the in-memory hosts, so every one fails the same way.
 */
export function pickFault(
  index: number,
  argv: readonly string[],
  options: DockerRunOptions,
  window: FaultWindow | undefined,
  rule: FaultRule | undefined
): FaultMode | undefined {
  if (window && index >= window.at && index < window.at + Math.max(1, window.count ?? 1)) return window.mode
  if (rule && (rule.times === undefined || rule.times > 0) && rule.match(argv, options)) {
    if (rule.times !== undefined) rule.times--
    return rule.mode
  }
  return undefined
}

/** What a failed docker CLI prints: the command, so that an error quoting it can be recognised. */
export function injectedResult(index: number, argv: readonly string[]): DockerResult {
  return { exitCode: 1, stdout: '', stderr: `injected fault at docker command ${index}: docker ${argv.join(' ')}\n` }
}

const NODE_ID = 'fakenode0000000000000000001'
const EPOCH = Date.UTC(2026, 0, 1)
const CRASH_LOG = 'app: fatal: cannot start: required configuration is missing'

export class FakeDockerEngine implements DockerRunner {
  /** Local image references. Adding one makes it present, with an id and a creation order. */
  readonly images = new ImageStore()
  readonly containers = new Map<string, FakeContainer>()
  readonly services = new Map<string, FakeService>()
  readonly tasks: FakeTask[] = []
  readonly calls: { argv: string[]; options: DockerRunOptions }[] = []
  /** Names whose `container start` fails, e.g. a port already taken. */
  readonly failingStarts = new Set<string>()
  /** Images whose pull fails, and which `docker manifest inspect` says the registry does not have. */
  readonly missingInRegistry = new Set<string>()
  /**
   * Set to make `docker manifest inspect`, which the CLI sends from the runner to the registry
   * itself, fail as a refused connection does: the registry's answer is unknown.
   */
  registryUnreachable = false
  /**
   * Image references whose process exits with code 1 right after it starts: a started container
   * is seen as exited, a Swarm task fails (`task: non-zero exit (1)`).
   */
  readonly crashingImages = new Set<string>()
  /**
   * The digest a registry holds for a reference (`repo:tag` → `sha256:…`): a pulled image then
   * has it in RepoDigests, and Swarm pins a service's image to it (`repo:tag@sha256:…`).
   */
  readonly registryDigests = new Map<string, string>()
  /** Set to make every command fail as if the daemon were unreachable. */
  unreachable = false
  /**
   * Makes the `at`-th command (1-based, over every `run`) fail with exit code 1, and with `count`
   * the `count - 1` after it too: `before` without any effect, `after` once it took effect (the CLI
   * killed after the daemon acted).
   */
  fault?: FaultWindow
  /** Fails the commands a predicate picks (after `fault`, which wins for the commands it covers). */
  faultRule?: FaultRule
  /** Every command that got an injected fault, in order. */
  readonly injected: InjectedFault[] = []
  /** Called with each command before it runs, e.g. to abort the deploy's signal at the k-th. */
  onCommand?: (index: number, argv: readonly string[]) => void
  /**
   * How many looks at a service (inspect, ps, logs, task inspect) each step of Swarm's work takes.
   * 0: an update or create settles within its own command. n > 0: an update goes through
   * `updating`, then `completed`, or `rollback_started` and `rollback_completed`, n looks apart.
   */
  swarmLag = 0
  /** Swarm's task history retention per slot (its default is 5). */
  taskHistoryLimit = 5
  /**
   * Asked once at each start of a Swarm task, beside `crashingImages`: true makes that one start
   * fail (`task: non-zero exit (1)`), e.g. a version that fails now and then.
   */
  taskStartFails?: (task: FakeTask) => boolean
  /** The daemon's clock (`docker system info`'s SystemTime, containers' Created), in ms. */
  daemonNow: () => number = () => Date.now()
  /** The engine's ID (`docker system info`'s ID): one engine reached under two host names shares it. */
  engineId = `FAKE:${Math.random().toString(36).slice(2, 10).toUpperCase()}`

  private nextId = 1
  private nextObjectId = 1
  private count = 0
  private readonly subscribers = new Set<EventSubscriber>()
  /** The last container events, for `--since` (docker keeps the last 256 in memory). */
  private readonly eventLog: { at: number; event: FakeEvent }[] = []
  private clock = 0
  private readonly pending = new Map<string, { steps: (() => void)[]; looks: number }>()

  /** Adds a container directly, as a previous deploy (or a person) would have left it. */
  add(container: Omit<FakeContainer, 'id' | 'exitCode'> & { exitCode?: number }): FakeContainer {
    this.images.add(stripDigest(container.image))
    const created: FakeContainer = {
      id: this.newId(),
      exitCode: 0,
      started: container.running,
      imageId: this.images.idOf(stripDigest(container.image)),
      ...container
    }
    this.containers.set(created.name, created)
    return created
  }

  /** Adds a service whose tasks run, as a previous deploy would have left it. */
  addService(options: { name: string; image: string; labels?: Record<string, string>; replicas?: number }): FakeService {
    const argv = ['service', 'create', '--detach', '--quiet', '--name', options.name, '--replicas', String(options.replicas ?? 1)]
    for (const [key, value] of Object.entries(options.labels ?? {})) argv.push('--label', `${key}=${value}`)
    argv.push(options.image)
    const result = this.execute(argv, {})
    if (result.exitCode !== 0) throw new Error(result.stderr)
    return this.services.get(options.name) as FakeService
  }

  get commands(): string[] {
    return this.calls.map((call) => call.argv.join(' '))
  }

  /** How many commands were run so far (the index the last one had). */
  get commandCount(): number {
    return this.count
  }

  /** Logical time: every change of state moves it one second on. */
  get now(): number {
    return this.clock
  }

  /** True for an image reference (with or without digest) whose workload crashes at boot. */
  crashes(image: string): boolean {
    return this.crashingImages.has(image) || this.crashingImages.has(stripDigest(image))
  }

  describe(name: string): EngineDescription {
    const live = this.containers.get(name)
    const lock = this.containers.get(name + LOCK_SUFFIX)
    const keptNames = [...this.containers.keys()].filter((other) => other.startsWith(`${name}-`) && other !== name + LOCK_SUFFIX).sort()
    const container = live && {
      tag: releaseTag(live.labels, live.image),
      image: live.image,
      running: live.running,
      status: statusOf(live),
      exitCode: live.exitCode,
      crashing: this.crashes(live.image)
    }
    const found = this.services.get(name)
    let service: EngineDescription['service']
    if (found) {
      const image = found.Spec.TaskTemplate.ContainerSpec.Image
      const tasks = this.tasks.filter((task) => task.serviceId === found.ID)
      service = {
        tag: releaseTag(found.Spec.Labels, image),
        image,
        replicas: replicasOf(found.Spec),
        runningTasks: tasks.filter((task) => task.desiredState === 'running' && task.state === 'running' && task.image === image).length,
        failedTasks: tasks.filter((task) => task.state === 'failed' || task.state === 'rejected').length,
        crashing: this.crashes(image),
        updateState: found.UpdateStatus?.State
      }
    }
    const containerServes = Boolean(container?.running && !container.crashing)
    const serviceServes = Boolean(service && !service.crashing && service.runningTasks >= service.replicas)
    return {
      ...(container && { container }),
      kept: keptNames,
      keptTags: Object.fromEntries(keptNames.map((kept) => [kept, this.containers.get(kept)?.labels[Label.Tag]])),
      ...(service && { service }),
      lockHeld: lock !== undefined,
      ...(lock?.labels[LockLabel.Owner] && { lockOwner: lock.labels[LockLabel.Owner] }),
      serves: service ? serviceServes : containerServes
    }
  }

  /** How many `docker events` streams are open now: 0 once every verification has ended. */
  get openStreams(): number {
    return this.subscribers.size
  }

  /**
   * The workload of a running container dies now (`exitCode`, by default 1), or the kernel kills
   * it for lack of memory (`oomKilled`: an `oom` event, then `die` with 137), as happens with time.
   */
  crash(name: string, options: { exitCode?: number; oomKilled?: boolean } = {}): void {
    const container = this.containers.get(name)
    if (!container?.running) throw new Error(`no running container ${name} to crash`)
    if (options.oomKilled) this.emit('oom', container)
    container.running = false
    container.exitCode = options.oomKilled ? 137 : (options.exitCode ?? 1)
    container.oomKilled = options.oomKilled === true
    container.finishedAt = this.stamp()
    this.emit('die', container, { exitCode: String(container.exitCode) })
  }

  /** A container's HEALTHCHECK reports `status` from now on. */
  setHealth(name: string, status: 'starting' | 'healthy' | 'unhealthy'): void {
    const container = this.containers.get(name)
    if (!container) throw new Error(`no container ${name}`)
    container.health = status
    this.emit(`health_status: ${status}`, container)
  }

  /**
   * `docker events`: a stream counted as one command (a fault or a cancel at its index ends it at
   * once, as a CLI that failed to start would), then each matching event as one JSON line.
   */
  stream(argv: readonly string[], options: DockerStreamOptions): DockerStream {
    this.calls.push({ argv: [...argv], options: { ...(options.signal && { signal: options.signal }) } })
    const index = ++this.count
    this.onCommand?.(index, argv)
    const endedNow = (end: DockerStreamEnd): DockerStream => ({ ended: Promise.resolve(end), stop: () => undefined })
    if (options.signal?.aborted) return endedNow({ stderr: '', stopped: true })
    if (this.unreachable) return endedNow({ exitCode: 1, stderr: 'Cannot connect to the Docker daemon at unix:///nowhere.sock. Is the docker daemon running?\n', stopped: false })
    const fault = pickFault(index, argv, { signal: options.signal }, this.fault, this.faultRule)
    if (fault) {
      this.injected.push({ index, argv: [...argv], mode: fault })
      return endedNow({ ...injectedResult(index, argv), stopped: false })
    }
    if (argv[0] !== 'events' && !(argv[0] === 'system' && argv[1] === 'events')) {
      return endedNow({ exitCode: 1, stderr: `the in-memory engine streams only docker events, not docker ${argv.join(' ')}\n`, stopped: false })
    }
    const parsed = parseArgs(argv.slice(argv[0] === 'events' ? 1 : 2), EVENTS, 'events')
    if (isResult(parsed)) return endedNow({ exitCode: parsed.exitCode, stderr: parsed.stderr, stopped: false })
    const since = value(parsed, 'since')
    const sinceMs = since === undefined ? undefined : /^\d+(\.\d+)?$/.test(since) ? Number(since) * 1000 : Date.parse(since)
    if (sinceMs !== undefined && !Number.isFinite(sinceMs)) return endedNow({ exitCode: 1, stderr: `invalid value for "since": ${since}\n`, stopped: false })
    let finish: (end: DockerStreamEnd) => void = () => undefined
    const ended = new Promise<DockerStreamEnd>((resolve) => (finish = resolve))
    const subscriber: EventSubscriber = {
      filters: values(parsed, 'filter').map(splitPair),
      onLine: options.onLine,
      close: () => {
        if (!this.subscribers.delete(subscriber)) return
        options.signal?.removeEventListener('abort', subscriber.close)
        finish({ stderr: '', stopped: true })
      }
    }
    this.subscribers.add(subscriber)
    options.signal?.addEventListener('abort', subscriber.close, { once: true })
    if (sinceMs !== undefined) {
      for (const logged of this.eventLog) if (logged.at >= sinceMs && eventMatches(subscriber.filters, logged.event)) subscriber.onLine(JSON.stringify(logged.event))
    }
    return { ended, stop: subscriber.close }
  }

  /** A container event, as `docker events --format '{{json .}}'` prints it, to every stream whose filters match. */
  private emit(action: string, container: FakeContainer, attributes: Record<string, string> = {}): void {
    const at = EPOCH + this.clock * 1000
    const event: FakeEvent = {
      status: action,
      id: container.id,
      from: container.image,
      Type: 'container',
      Action: action,
      Actor: { ID: container.id, Attributes: { ...container.labels, image: container.image, name: container.name, ...attributes } },
      scope: 'local',
      time: Math.floor(at / 1000),
      timeNano: at * 1_000_000
    }
    this.eventLog.push({ at, event })
    if (this.eventLog.length > 256) this.eventLog.shift()
    for (const subscriber of [...this.subscribers]) if (eventMatches(subscriber.filters, event)) subscriber.onLine(JSON.stringify(event))
  }

  async run(argv: readonly string[], options: DockerRunOptions = {}): Promise<DockerResult> {
    this.calls.push({ argv: [...argv], options })
    const index = ++this.count
    this.onCommand?.(index, argv)
    if (options.signal?.aborted) throw new Error(`docker ${argv[0] ?? ''} was cancelled`)
    if (this.unreachable) return fail('Cannot connect to the Docker daemon at unix:///nowhere.sock. Is the docker daemon running?')
    const fault = pickFault(index, argv, options, this.fault, this.faultRule)
    if (fault) this.injected.push({ index, argv: [...argv], mode: fault })
    if (fault === 'before') return injectedResult(index, argv)
    const result = this.execute(argv, options)
    return fault ? injectedResult(index, argv) : result
  }

  private execute(argv: readonly string[], options: DockerRunOptions): DockerResult {
    const [group = '', verb = '', ...rest] = argv
    switch (group) {
      case 'container':
        return this.container(verb, rest, options)
      case 'image':
        return this.image(verb, rest)
      case 'service':
        return this.service(verb, rest, options)
      case 'inspect':
        return this.inspectObjects(argv.slice(1))
      case 'pull':
        return this.pull(argv.slice(1))
      case '--debug':
        // The CLI's global debug flag: only `manifest inspect` is sent with it.
        return verb === 'manifest' ? this.manifest(rest) : fail(`unknown command: ${verb}`)
      case 'manifest':
        return this.manifest(argv.slice(1))
      case 'version':
        return ok('27.5.1\n')
      case 'system':
      case 'info': {
        if (group === 'system' && verb !== 'info') return ok()
        const format = value(parseArgs(group === 'system' ? rest : argv.slice(1), SYSTEM_INFO, 'system info') as Parsed, 'format')
        return ok(`${render(format ?? '{{json .}}', { ID: this.engineId, SystemTime: new Date(this.daemonNow()).toISOString() })}\n`)
      }
      case 'login':
        return ok('Login Succeeded\n')
      // The CLI's short forms of the commands above.
      case 'run':
      case 'create':
      case 'start':
      case 'stop':
      case 'rm':
      case 'rename':
      case 'logs':
      case 'ps':
        return this.container(group, argv.slice(1), options)
      case 'rmi':
        return this.image('rm', argv.slice(1))
      case 'images':
        return this.image('ls', argv.slice(1))
      default:
        return ok()
    }
  }

  // ── containers ────────────────────────────────────────────────────────────────────────────

  private container(verb: string, words: string[], options: DockerRunOptions): DockerResult {
    switch (verb) {
      case 'create':
        return this.createContainer(words, options, 'create')
      case 'run':
        return this.createContainer(words, options, 'run')
      case 'inspect': {
        const parsed = parseArgs(words, CONTAINER_INSPECT, 'container inspect')
        if (isResult(parsed)) return parsed
        // Like docker: the found ones as one array, a line on stderr and exit 1 for each missing one.
        const found = parsed.args.map((ref) => this.byNameOrId(ref))
        const missing = parsed.args.filter((_, index) => !found[index]).map((ref) => `Error: No such container: ${ref}\n`)
        const objects = found.filter((container) => container !== undefined).map((container) => this.containerJson(container))
        const format = value(parsed, 'format')
        const stdout = format === undefined ? `${JSON.stringify(objects)}\n` : objects.map((object) => `${render(format, object)}\n`).join('')
        return { exitCode: missing.length > 0 ? 1 : 0, stdout, stderr: missing.join('') }
      }
      case 'rm': {
        const parsed = parseArgs(words, CONTAINER_RM, 'container rm')
        if (isResult(parsed)) return parsed
        const errors: string[] = []
        let stdout = ''
        for (const ref of parsed.args) {
          const container = this.byNameOrId(ref)
          if (!container) errors.push(`Error response from daemon: No such container: ${ref}`)
          else if (container.running && !flag(parsed, 'force')) {
            errors.push(`Error response from daemon: cannot remove container "/${container.name}": container is running: stop the container before removing or force remove`)
          } else {
            if (container.running) {
              container.running = false
              container.exitCode = 137
              this.emit('kill', container, { signal: '9' })
              this.emit('die', container, { exitCode: '137' })
            }
            this.containers.delete(container.name)
            this.emit('destroy', container)
            stdout += `${ref}\n`
          }
        }
        return { exitCode: errors.length > 0 ? 1 : 0, stdout, stderr: errors.map((line) => `${line}\n`).join('') }
      }
      case 'rename': {
        const parsed = parseArgs(words, NO_FLAGS, 'container rename')
        if (isResult(parsed)) return parsed
        const [from = '', to = ''] = parsed.args
        const container = this.byNameOrId(from)
        if (!container) return fail(`Error response from daemon: No such container: ${from}`)
        const clash = this.containers.get(to)
        if (clash) {
          return fail(`Error response from daemon: Conflict. The container name "/${to}" is already in use by container "${clash.id}". You have to remove (or rename) that container to be able to reuse that name.`)
        }
        this.containers.delete(container.name)
        const oldName = container.name
        container.name = to
        this.containers.set(to, container)
        this.emit('rename', container, { oldName: `/${oldName}` })
        return ok()
      }
      case 'start': {
        const parsed = parseArgs(words, CONTAINER_START, 'container start')
        if (isResult(parsed)) return parsed
        for (const ref of parsed.args) {
          const container = this.byNameOrId(ref)
          if (!container) return fail(`Error response from daemon: No such container: ${ref}`)
          const result = this.startContainer(container)
          if (result.exitCode !== 0) return result
        }
        return ok(parsed.args.map((ref) => `${ref}\n`).join(''))
      }
      case 'stop': {
        const parsed = parseArgs(words, CONTAINER_STOP, 'container stop')
        if (isResult(parsed)) return parsed
        for (const ref of parsed.args) {
          const container = this.byNameOrId(ref)
          if (!container) return fail(`Error response from daemon: No such container: ${ref}`)
          if (container.running) {
            container.running = false
            container.finishedAt = this.stamp()
            this.emit('kill', container, { signal: '15' })
            this.emit('die', container, { exitCode: String(container.exitCode) })
            this.emit('stop', container)
          }
        }
        return ok(parsed.args.map((ref) => `${ref}\n`).join(''))
      }
      case 'cp':
        return this.copy(words, options)
      case 'logs': {
        const parsed = parseArgs(words, CONTAINER_LOGS, 'container logs')
        if (isResult(parsed)) return parsed
        const ref = parsed.args[0] ?? ''
        const container = this.byNameOrId(ref)
        if (!container) return fail(`Error response from daemon: No such container: ${ref}`)
        if (!container.started) return ok()
        // A crashed workload wrote its last words to stderr.
        return this.crashes(container.image) ? { exitCode: 0, stdout: '', stderr: `${CRASH_LOG}\n` } : ok('app: log line\n')
      }
      case 'ls':
      case 'ps':
        return this.listContainers(words)
      default:
        return ok()
    }
  }

  private createContainer(words: string[], options: DockerRunOptions, command: 'create' | 'run'): DockerResult {
    const parsed = parseArgs(words, CONTAINER_CREATE, `container ${command}`, { stopAtPositional: true })
    if (isResult(parsed)) return parsed
    const [image = '', ...commandArgs] = parsed.args
    if (!image) return usage(`"docker container ${command}" requires at least 1 argument.`, `container ${command}`)
    const pull = value(parsed, 'pull') ?? 'missing'
    if (pull === 'always' || (command === 'run' && pull === 'missing' && !this.images.has(image))) {
      if (this.missingInRegistry.has(image)) return fail(`Error response from daemon: manifest for ${image} not found: manifest unknown`)
      this.images.add(image)
    }
    // With `--pull never` docker fails at once; otherwise the CLI would ask a registry.
    if (!this.images.has(image)) return fail(pull === 'never' ? `Error response from daemon: No such image: ${image}` : `Unable to find image '${image}' locally`)
    const name = value(parsed, 'name') ?? `fake_container_${this.nextId}`
    const clash = this.containers.get(name)
    if (clash) {
      return fail(`Error response from daemon: Conflict. The container name "/${name}" is already in use by container "${clash.id}". You have to remove (or rename) that container to be able to reuse that name.`)
    }
    const mounts = [...values(parsed, 'volume').map(volumeTarget), ...values(parsed, 'mount').map(mountTarget)].map(cleanPath)
    const duplicate = mounts.find((target, index) => mounts.indexOf(target) !== index)
    if (duplicate !== undefined) return fail(`Error response from daemon: Duplicate mount point: ${duplicate}`)

    const network = value(parsed, 'network')
    let ports = values(parsed, 'publish')
    let stderr = ''
    if (network === 'host' && ports.length > 0) {
      stderr = 'WARNING: Published ports are discarded when using host network mode\n'
      ports = []
    }
    const labels: Record<string, string> = {}
    for (const label of values(parsed, 'label')) {
      const [key, labelValue] = splitPair(label)
      labels[key] = labelValue
    }
    const container: FakeContainer = {
      id: this.newId(),
      created: new Date(this.daemonNow()).toISOString(),
      name,
      image,
      imageId: this.images.idOf(image),
      labels,
      running: false,
      exitCode: 0,
      started: false,
      env: values(parsed, 'env').flatMap((entry) => clientEnv(entry, options, { keepUnset: false })),
      mounts,
      ports,
      ...(network !== undefined && { network }),
      ...(value(parsed, 'restart') !== undefined && { restart: value(parsed, 'restart') }),
      command: commandArgs
    }
    this.containers.set(name, container)
    if (command === 'create') return { exitCode: 0, stdout: `${container.id}\n`, stderr }

    const started = this.startContainer(container)
    if (started.exitCode !== 0) return { ...started, exitCode: 125 }
    if (flag(parsed, 'detach')) return { exitCode: 0, stdout: `${container.id}\n`, stderr }
    // In the foreground: the process ran to its end (a hook, a migration).
    const crashed = this.crashes(image)
    if (!crashed && container.running) {
      container.running = false
      container.finishedAt = this.stamp()
    }
    if (flag(parsed, 'rm')) this.containers.delete(name)
    return crashed ? { exitCode: 1, stdout: '', stderr: `${stderr}${CRASH_LOG}\n` } : { exitCode: 0, stdout: '', stderr }
  }

  private startContainer(container: FakeContainer): DockerResult {
    if (container.running) return ok()
    if (this.failingStarts.has(container.name)) {
      container.exitCode = 128
      return fail('Error response from daemon: driver failed programming external connectivity: address already in use')
    }
    for (const port of container.ports ?? []) {
      const wanted = hostBinding(port)
      if (!wanted) continue
      const holder = [...this.containers.values()].find(
        (other) => other !== container && other.running && (other.ports ?? []).some((taken) => bindingsClash(wanted, hostBinding(taken)))
      )
      if (holder) {
        const error = `driver failed programming external connectivity on endpoint ${container.name} (${container.id}): Bind for ${wanted.ip.includes(':') ? `[${wanted.ip}]` : wanted.ip}:${wanted.port} failed: port is already allocated`
        container.exitCode = 128
        container.error = error
        return fail(`Error response from daemon: ${error}`)
      }
    }
    container.started = true
    container.error = ''
    container.oomKilled = false
    container.startedAt = this.stamp()
    this.emit('start', container)
    if (this.crashes(container.image)) {
      // The process exits during boot: docker has already seen it go by the time anyone looks.
      container.running = false
      container.exitCode = 1
      container.finishedAt = this.stamp()
      this.emit('die', container, { exitCode: '1' })
    } else {
      container.running = true
      container.exitCode = 0
    }
    return ok()
  }

  /** `docker cp - <container>:<dir>` (a tar archive on stdin) and `docker cp <container>:<path> -` (a tar archive on stdout). */
  private copy(words: string[], options: DockerRunOptions): DockerResult {
    const [from = '', to = ''] = words
    const target = from === '-' ? to : from
    const colon = target.indexOf(':')
    const container = colon > 0 ? this.byNameOrId(target.slice(0, colon)) : undefined
    if (!container) return fail(`Error response from daemon: No such container: ${target.slice(0, Math.max(colon, 0))}`)
    const path = target.slice(colon + 1)
    if (from === '-') {
      const archive = options.input ?? ''
      const size = parseInt(archive.slice(124, 136).replace(/\0/g, '').trim() || '0', 8)
      const name = archive.slice(0, 100).replace(/\0+$/, '')
      container.files ??= new Map()
      container.files.set(posix.join(path, name), archive.slice(512, 512 + size))
      return ok()
    }
    const content = container.files?.get(posix.normalize(path))
    if (content === undefined) return fail(`Error response from daemon: Could not find the file ${path} in container ${container.name}`)
    return ok(singleFileTar(posix.basename(path), content))
  }

  private listContainers(words: string[]): DockerResult {
    const parsed = parseArgs(words, CONTAINER_LS, 'container ls')
    if (isResult(parsed)) return parsed
    const filters = values(parsed, 'filter').map(splitPair)
    const rows = [...this.containers.values()]
      .filter((container) => flag(parsed, 'all') || container.running)
      .filter((container) =>
        filters.every(([key, wanted]) => {
          if (key === 'name') return container.name.includes(wanted.replace(/^\^|\$$/g, ''))
          if (key === 'label') {
            const [labelKey, labelValue] = wanted.includes('=') ? splitPair(wanted) : [wanted, undefined]
            return labelKey in container.labels && (labelValue === undefined || container.labels[labelKey] === labelValue)
          }
          if (key === 'status') return statusOf(container) === wanted
          if (key === 'ancestor') return container.image === wanted
          return true
        })
      )
      .map((container) => ({
        ID: flag(parsed, 'no-trunc') ? container.id : container.id.slice(0, 12),
        Names: container.name,
        Image: container.image,
        State: statusOf(container),
        Status: container.running ? 'Up 1 second' : container.started ? `Exited (${container.exitCode}) 1 second ago` : 'Created',
        Labels: Object.entries(container.labels)
          .map(([key, labelValue]) => `${key}=${labelValue}`)
          .join(',')
      }))
    if (flag(parsed, 'quiet')) return ok(rows.map((row) => `${row.ID}\n`).join(''))
    const format = value(parsed, 'format') ?? '{{.ID}}\t{{.Image}}\t{{.Status}}\t{{.Names}}'
    return ok(rows.map((row) => `${render(format, row)}\n`).join(''))
  }

  private containerJson(container: FakeContainer): unknown {
    return {
      Id: container.id,
      Name: `/${container.name}`,
      Created: container.created ?? new Date(EPOCH).toISOString(),
      Image: container.imageId ?? this.images.idOf(stripDigest(container.image)),
      RestartCount: 0,
      Config: { Image: container.image, Labels: container.labels, Env: container.env ?? [], Cmd: container.command ?? null },
      HostConfig: {
        NetworkMode: container.network ?? 'bridge',
        RestartPolicy: { Name: container.restart ?? 'no' },
        PortBindings: portBindings(container.ports ?? [])
      },
      Mounts: (container.mounts ?? []).map((target) => ({ Destination: target })),
      State: {
        Status: statusOf(container),
        Running: container.running,
        Paused: false,
        Restarting: false,
        OOMKilled: container.oomKilled ?? false,
        Dead: false,
        ExitCode: container.exitCode,
        Error: container.error ?? '',
        StartedAt: container.startedAt ?? (container.started ? '2024-01-01T00:00:00Z' : '0001-01-01T00:00:00Z'),
        FinishedAt: container.finishedAt ?? '0001-01-01T00:00:00Z',
        ...(container.health !== undefined && { Health: { Status: container.health } })
      }
    }
  }

  private byNameOrId(ref: string): FakeContainer | undefined {
    if (!ref) return undefined
    return (
      this.containers.get(ref) ??
      [...this.containers.values()].find((container) => container.id === ref) ??
      [...this.containers.values()].find((container) => container.id.startsWith(ref))
    )
  }

  private newId(): string {
    return (this.nextId++).toString(16).padStart(64, '0')
  }

  // ── images ────────────────────────────────────────────────────────────────────────────────

  private image(verb: string, words: string[]): DockerResult {
    switch (verb) {
      case 'inspect': {
        const parsed = parseArgs(words, IMAGE_INSPECT, 'image inspect')
        if (isResult(parsed)) return parsed
        const format = value(parsed, 'format')
        const errors: string[] = []
        const objects: unknown[] = []
        for (const ref of parsed.args) {
          const found = this.images.resolve(ref)
          if (!found) errors.push(`Error: No such image: ${ref}\n`)
          else objects.push(this.imageJson(found))
        }
        const stdout = format === undefined ? `${JSON.stringify(objects)}\n` : objects.map((object) => `${render(format, object)}\n`).join('')
        return { exitCode: errors.length > 0 ? 1 : 0, stdout, stderr: errors.join('') }
      }
      case 'import': {
        const parsed = parseArgs(words, IMAGE_IMPORT, 'image import')
        if (isResult(parsed)) return parsed
        const ref = parsed.args[1] ?? ''
        this.images.add(ref)
        return ok(`${this.images.idOf(ref)}\n`)
      }
      case 'tag': {
        const parsed = parseArgs(words, NO_FLAGS, 'image tag')
        if (isResult(parsed)) return parsed
        const [source = '', target = ''] = parsed.args
        const found = this.images.resolve(source)
        if (!found) return fail(`Error response from daemon: No such image: ${source}`)
        this.images.tag(found, target)
        return ok()
      }
      case 'ls':
      case 'list':
        return this.listImages(words)
      case 'rm':
      case 'remove':
        return this.removeImages(words)
      default:
        return ok()
    }
  }

  private pull(words: string[]): DockerResult {
    const parsed = parseArgs(words, PULL, 'pull')
    if (isResult(parsed)) return parsed
    const ref = parsed.args[0] ?? ''
    if (this.missingInRegistry.has(ref)) return fail(`Error response from daemon: manifest for ${ref} not found: manifest unknown`)
    this.images.add(ref)
    if (flag(parsed, 'quiet')) return ok(`${ref}\n`)
    // As the real CLI prints it without a TTY: the digest line only for an image the registry names by one.
    const digest = this.registryDigests.get(ref)
    const [repository, tag] = [repositoryOf(ref), ref.slice(repositoryOf(ref).length + 1)]
    return ok(`${tag}: Pulling from ${repository.split('/').slice(1).join('/')}\n${digest ? `Digest: ${digest}\n` : ''}Status: Downloaded newer image for ${ref}\n${ref}\n`)
  }

  /**
   * `docker manifest inspect [--insecure] ref`: asks the registry, never the daemon. The fake's
   * registry holds every reference but `missingInRegistry`; the stderr is the CLI's, with the
   * `--debug` line of each endpoint it tried.
   */
  private manifest(words: string[]): DockerResult {
    const [verb = '', ...rest] = words
    if (verb !== 'inspect') return fail(`docker manifest ${verb}: unknown command`)
    const parsed = parseArgs(rest, MANIFEST_INSPECT, 'manifest inspect')
    if (isResult(parsed)) return parsed
    const ref = parsed.args[0] ?? ''
    if (parsed.args.length !== 1 || ref.startsWith('-')) return fail('invalid reference format')
    const host = ref.split('/')[0] ?? ''
    if (this.registryUnreachable) return fail(`failed to configure transport: error pinging v2 registry: Get "https://${host}/v2/": dial tcp ${host}: connect: connection refused`)
    if (this.missingInRegistry.has(ref)) {
      const line = 'time="2026-01-01T00:00:00Z" level=debug msg="continuing on error (errcode.Errors) manifest unknown: manifest unknown"\n'
      return fail(`${line}${line}no such manifest: ${ref}`)
    }
    const digest = this.registryDigests.get(ref) ?? `sha256:${createHash('sha256').update(ref).digest('hex')}`
    return ok(`${JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', config: { digest } }, null, '\t')}\n`)
  }

  private imageJson(ref: string): Record<string, unknown> {
    const digest = this.registryDigests.get(ref)
    return {
      Id: this.images.idOf(ref),
      RepoTags: this.images.refsOf(this.images.idOf(ref)),
      RepoDigests: digest ? [`${repositoryOf(ref)}@${digest}`] : [],
      Created: iso(this.images.orderOf(ref)),
      // `image tag` (also of a reference onto itself) moves the order, as it sets LastTagTime.
      Metadata: { LastTagTime: iso(this.images.orderOf(ref)) },
      Size: 7_800_000
    }
  }

  private listImages(words: string[]): DockerResult {
    const parsed = parseArgs(words, IMAGE_LS, 'image ls')
    if (isResult(parsed)) return parsed
    const noTrunc = flag(parsed, 'no-trunc')
    const patterns = [...parsed.args, ...values(parsed, 'filter').flatMap((filter) => (filter.startsWith('reference=') ? [filter.slice('reference='.length)] : []))]
    if (values(parsed, 'filter').some((filter) => filter === 'dangling=true')) return ok()
    const rows = [...this.images]
      .filter((ref) => patterns.every((pattern) => referenceMatches(pattern, ref)))
      .sort((a, b) => this.images.orderOf(b) - this.images.orderOf(a))
      .map((ref) => {
        const id = this.images.idOf(ref)
        const digest = this.registryDigests.get(ref)
        return {
          Containers: 'N/A',
          CreatedAt: iso(this.images.orderOf(ref)).replace('T', ' ').replace(/\.\d+Z$/, ' +0000 UTC'),
          CreatedSince: `${ago(this.clock - this.images.orderOf(ref))}`,
          Digest: digest ?? '<none>',
          ID: noTrunc ? id : id.slice('sha256:'.length, 'sha256:'.length + 12),
          Repository: repositoryOf(ref),
          SharedSize: 'N/A',
          Size: '7.8MB',
          Tag: tagOf(ref) ?? 'latest',
          UniqueSize: 'N/A',
          VirtualSize: '7.8MB'
        }
      })
    if (flag(parsed, 'quiet')) return ok(rows.map((row) => `${row.ID}\n`).join(''))
    const format = value(parsed, 'format') ?? '{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}'
    return ok(rows.map((row) => `${render(format, row)}\n`).join(''))
  }

  private removeImages(words: string[]): DockerResult {
    const parsed = parseArgs(words, IMAGE_RM, 'image rm')
    if (isResult(parsed)) return parsed
    const force = flag(parsed, 'force')
    const errors: string[] = []
    let stdout = ''
    for (const ref of parsed.args) {
      const found = this.images.resolve(ref)
      if (!found) {
        errors.push(`Error response from daemon: No such image: ${ref}`)
        continue
      }
      const id = this.images.idOf(found)
      const byId = !this.images.has(ref) && !this.images.has(`${ref}:latest`)
      const tags = this.images.refsOf(id)
      const users = [...this.containers.values()].filter((container) => (container.imageId ?? this.images.idOf(stripDigest(container.image))) === id)
      const runningUser = users.find((container) => container.running)
      if (byId && tags.length > 1 && !force) {
        errors.push(`Error response from daemon: conflict: unable to delete ${shortId(id)} (must be forced) - image is referenced in multiple repositories`)
        continue
      }
      if (byId && runningUser) {
        errors.push(`Error response from daemon: conflict: unable to delete ${shortId(id)} (cannot be forced) - image is being used by running container ${runningUser.id.slice(0, 12)}`)
        continue
      }
      const lastTag = byId || tags.length === 1
      const user = users[0]
      if (lastTag && user && !force) {
        const what = byId ? `delete ${shortId(id)}` : `remove repository reference "${ref}"`
        errors.push(`Error response from daemon: conflict: unable to ${what} (must force) - container ${user.id.slice(0, 12)} is using its referenced image ${shortId(id)}`)
        continue
      }
      for (const tag of byId ? tags : [found]) {
        this.images.delete(tag)
        stdout += `Untagged: ${tag}\n`
      }
      // A forced untag of an image a container uses leaves the image itself (dangling).
      if (lastTag && users.length === 0) stdout += `Deleted: ${id}\n`
    }
    return { exitCode: errors.length > 0 ? 1 : 0, stdout, stderr: errors.map((line) => `${line}\n`).join('') }
  }

  // ── generic inspect ───────────────────────────────────────────────────────────────────────

  private inspectObjects(words: string[]): DockerResult {
    const parsed = parseArgs(words, INSPECT, 'inspect')
    if (isResult(parsed)) return parsed
    const type = value(parsed, 'type')
    const format = value(parsed, 'format')
    if (type === 'container') return this.container('inspect', words.filter((word, index) => word !== '--type' && words[index - 1] !== '--type'), {})
    const objects: unknown[] = []
    const errors: string[] = []
    const looked = new Set<FakeService>()
    for (const ref of parsed.args) {
      const task = type === undefined || type === 'task' ? this.tasks.find((candidate) => candidate.id === ref) : undefined
      if (task) {
        const service = this.services.get(task.serviceName)
        if (service && !looked.has(service)) {
          looked.add(service)
          this.look(service, false)
        }
        objects.push(this.taskJson(task))
        continue
      }
      const container = type === undefined ? this.byNameOrId(ref) : undefined
      if (container) {
        objects.push(this.containerJson(container))
        continue
      }
      errors.push(`Error: No such ${type ?? 'object'}: ${ref}\n`)
    }
    const stdout = format === undefined ? `${JSON.stringify(objects)}\n` : objects.map((object) => `${render(format, object)}\n`).join('')
    return { exitCode: errors.length > 0 ? 1 : 0, stdout, stderr: errors.join('') }
  }

  // ── Swarm services ────────────────────────────────────────────────────────────────────────

  private service(verb: string, words: string[], options: DockerRunOptions): DockerResult {
    switch (verb) {
      case 'create':
        return this.createService(words, options)
      case 'update':
        return this.updateService(words, options)
      case 'inspect':
        return this.inspectServices(words)
      case 'ps':
        return this.listTasks(words)
      case 'rm':
      case 'remove': {
        const parsed = parseArgs(words, NO_FLAGS, 'service rm')
        if (isResult(parsed)) return parsed
        const errors: string[] = []
        let stdout = ''
        for (const ref of parsed.args) {
          const service = this.findService(ref)
          if (!service) {
            errors.push(`Error: No such service: ${ref}`)
            continue
          }
          this.services.delete(service.Spec.Name)
          this.pending.delete(service.ID)
          for (const task of this.tasks.filter((candidate) => candidate.serviceId === service.ID)) this.dropTask(task)
          stdout += `${ref}\n`
        }
        return { exitCode: errors.length > 0 ? 1 : 0, stdout, stderr: errors.map((line) => `${line}\n`).join('') }
      }
      case 'logs':
        return this.serviceLogs(words)
      case 'ls':
      case 'list': {
        const parsed = parseArgs(words, SERVICE_LS, 'service ls')
        if (isResult(parsed)) return parsed
        const rows = [...this.services.values()].map((service) => {
          const running = this.tasks.filter((task) => task.serviceId === service.ID && task.desiredState === 'running' && task.state === 'running').length
          return { ID: service.ID.slice(0, 12), Name: service.Spec.Name, Mode: 'replicated', Replicas: `${running}/${replicasOf(service.Spec)}`, Image: service.Spec.TaskTemplate.ContainerSpec.Image }
        })
        if (flag(parsed, 'quiet')) return ok(rows.map((row) => `${row.ID}\n`).join(''))
        const format = value(parsed, 'format') ?? '{{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}'
        return ok(rows.map((row) => `${render(format, row)}\n`).join(''))
      }
      default:
        return ok()
    }
  }

  private createService(words: string[], options: DockerRunOptions): DockerResult {
    const parsed = parseArgs(words, SERVICE_CREATE, 'service create', { stopAtPositional: true })
    if (isResult(parsed)) return parsed
    const [image = '', ...args] = parsed.args
    const name = value(parsed, 'name') ?? ''
    if (!image) return usage('"docker service create" requires at least 1 argument.', 'service create')
    if (this.services.has(name)) return fail(`Error response from daemon: rpc error: code = AlreadyExists desc = name conflicts with an existing object: service ${name} already exists`)
    const mounts = values(parsed, 'mount').map(parseMount)
    const problem = mountProblem(mounts)
    if (problem) return fail(problem)
    const spec: FakeServiceSpec = {
      Name: name,
      Labels: pairs(values(parsed, 'label')),
      TaskTemplate: {
        ContainerSpec: {
          Image: this.resolveServiceImage(image, flag(parsed, 'no-resolve-image')),
          Labels: pairs(values(parsed, 'container-label')),
          Args: args,
          Env: values(parsed, 'env').flatMap((entry) => clientEnv(entry, options, { keepUnset: true })),
          ...(parsed.flags.some((entry) => entry.name === 'init') && { Init: flag(parsed, 'init') }),
          Mounts: mounts
        },
        RestartPolicy: { Condition: 'any', MaxAttempts: 0 },
        ForceUpdate: 0,
        ...(value(parsed, 'network') !== undefined && { Networks: [{ Target: value(parsed, 'network') as string }] })
      },
      Mode: value(parsed, 'mode') === 'global' ? { Global: {} } : { Replicated: { Replicas: Number(value(parsed, 'replicas') ?? 1) } },
      UpdateConfig: { Parallelism: 1, FailureAction: 'pause', Monitor: 5e9, MaxFailureRatio: 0, Order: 'stop-first' },
      EndpointSpec: { Mode: 'vip', Ports: [] }
    }
    applyCommonServiceFlags(spec, parsed)
    for (const port of values(parsed, 'publish')) addPort(spec, port)
    const stamp = this.stamp()
    const service: FakeService = { ID: this.newObjectId('s'), Version: { Index: 1 }, CreatedAt: stamp, UpdatedAt: stamp, Spec: spec }
    this.services.set(name, service)
    this.reconcileSlots(service)
    this.settle(service)
    return ok(`${service.ID}\n`)
  }

  private updateService(words: string[], options: DockerRunOptions): DockerResult {
    const parsed = parseArgs(words, SERVICE_UPDATE, 'service update')
    if (isResult(parsed)) return parsed
    const ref = parsed.args[parsed.args.length - 1] ?? ''
    if (parsed.args.length !== 1) return usage('"docker service update" requires exactly 1 argument.', 'service update')
    const service = this.findService(ref)
    if (!service) return fail(`Error: No such service: ${ref}`)

    if (flag(parsed, 'rollback')) {
      if (!service.PreviousSpec) return fail(`Error response from daemon: rpc error: code = FailedPrecondition desc = service ${service.ID} does not have a previous spec`)
      const current = service.Spec
      service.Spec = service.PreviousSpec
      service.PreviousSpec = current
      service.UpdateStatus = { State: 'rollback_started', StartedAt: this.stamp(), Message: 'manually requested rollback' }
      this.touch(service)
      this.queue(service, () => this.nextBatch(service))
      this.settle(service)
      return ok(`${ref}\n`)
    }

    const spec: FakeServiceSpec = structuredClone(service.Spec)
    const container = spec.TaskTemplate.ContainerSpec
    const image = value(parsed, 'image')
    if (image !== undefined) container.Image = this.resolveServiceImage(image, flag(parsed, 'no-resolve-image'))
    if (parsed.flags.some((entry) => entry.name === 'init')) container.Init = flag(parsed, 'init')
    for (const key of values(parsed, 'env-rm')) container.Env = container.Env.filter((entry) => splitPair(entry)[0] !== key)
    for (const entry of values(parsed, 'env-add').flatMap((added) => clientEnv(added, options, { keepUnset: true }))) {
      const key = splitPair(entry)[0]
      container.Env = [...container.Env.filter((existing) => splitPair(existing)[0] !== key), entry]
    }
    for (const target of values(parsed, 'mount-rm')) container.Mounts = container.Mounts.filter((mount) => mount.Target !== target)
    for (const added of values(parsed, 'mount-add').map(parseMount)) {
      container.Mounts = [...container.Mounts.filter((mount) => mount.Target !== added.Target), added]
    }
    for (const removed of values(parsed, 'publish-rm')) {
      const [target = '', protocol = 'tcp'] = removed.split(':').pop()?.split('/') ?? []
      spec.EndpointSpec.Ports = spec.EndpointSpec.Ports.filter((port) => !(String(port.TargetPort) === target && port.Protocol === protocol))
    }
    for (const added of values(parsed, 'publish-add')) addPort(spec, added)
    for (const key of values(parsed, 'container-label-rm')) delete container.Labels[key]
    Object.assign(container.Labels, pairs(values(parsed, 'container-label-add')))
    for (const key of values(parsed, 'label-rm')) delete spec.Labels[key]
    Object.assign(spec.Labels, pairs(values(parsed, 'label-add')))
    const args = value(parsed, 'args')
    if (args !== undefined) container.Args = shellSplit(args)
    applyCommonServiceFlags(spec, parsed)
    if (flag(parsed, 'force')) spec.TaskTemplate.ForceUpdate++

    // As Swarm's control API: the old spec becomes the previous one and the update status is
    // cleared; the updater sets it again only if some task is out of date.
    service.PreviousSpec = service.Spec
    service.Spec = spec
    delete service.UpdateStatus
    this.touch(service)
    this.pending.delete(service.ID)
    this.reconcileSlots(service)
    if (this.slotsOf(service).some((slot) => this.isDirty(service, slot))) {
      this.queue(service, () => {
        service.UpdateStatus ??= { State: 'updating', StartedAt: this.stamp(), Message: 'update in progress' }
        this.nextBatch(service)
      })
    }
    this.settle(service)
    return ok(`${ref}\n`)
  }

  private inspectServices(words: string[]): DockerResult {
    const parsed = parseArgs(words, SERVICE_INSPECT, 'service inspect')
    if (isResult(parsed)) return parsed
    const objects: unknown[] = []
    const errors: string[] = []
    for (const ref of parsed.args) {
      const service = this.findService(ref)
      if (!service) {
        errors.push(`Error: no such service: ${ref}\n`)
        continue
      }
      this.look(service, false)
      objects.push(this.serviceJson(service))
    }
    const format = value(parsed, 'format')
    const stdout = format === undefined ? `${JSON.stringify(objects, null, 4)}\n` : objects.map((object) => `${render(format, object)}\n`).join('')
    return { exitCode: errors.length > 0 ? 1 : 0, stdout, stderr: errors.join('') }
  }

  private listTasks(words: string[]): DockerResult {
    const parsed = parseArgs(words, SERVICE_PS, 'service ps')
    if (isResult(parsed)) return parsed
    const noTrunc = flag(parsed, 'no-trunc')
    const filters = values(parsed, 'filter').map(splitPair)
    const rows: Record<string, string>[] = []
    const ids: string[] = []
    for (const ref of parsed.args) {
      const service = this.findService(ref)
      if (!service) return fail(`no such service: ${ref}`)
      this.look(service, true)
      const tasks = this.tasks
        .filter((task) => task.serviceId === service.ID)
        .filter((task) => filters.every(([key, wanted]) => (key === 'desired-state' ? task.desiredState === wanted : key === 'id' ? task.id.startsWith(wanted) : true)))
        // As `docker service ps`: by slot, the newest task of each slot first.
        .sort((a, b) => a.slot - b.slot || b.createdAt - a.createdAt)
      let previousSlot: number | undefined
      for (const task of tasks) {
        const name = `${service.Spec.Name}.${task.slot}`
        const error = noTrunc || task.error.length <= 30 ? task.error : `${task.error.slice(0, 29)}…`
        rows.push({
          ID: noTrunc ? task.id : task.id.slice(0, 12),
          Name: previousSlot === task.slot ? `\\_ ${name}` : name,
          Image: noTrunc ? task.image : stripDigest(task.image),
          Node: 'fakenode',
          DesiredState: title(task.desiredState),
          CurrentState: `${title(task.state)} ${ago(this.clock - task.timestamp)}`,
          Error: error ? `"${error}"` : '',
          Ports: ''
        })
        ids.push(noTrunc ? task.id : task.id.slice(0, 12))
        previousSlot = task.slot
      }
    }
    if (flag(parsed, 'quiet')) return ok(ids.map((id) => `${id}\n`).join(''))
    const format = value(parsed, 'format') ?? '{{.ID}}\t{{.Name}}\t{{.Image}}\t{{.Node}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}\t{{.Ports}}'
    return ok(rows.map((row) => `${render(format, row)}\n`).join(''))
  }

  private serviceLogs(words: string[]): DockerResult {
    const parsed = parseArgs(words, SERVICE_LOGS, 'service logs')
    if (isResult(parsed)) return parsed
    const ref = parsed.args[0] ?? ''
    const service = this.findService(ref)
    const task = service ? undefined : this.tasks.find((candidate) => candidate.id === ref || candidate.id.startsWith(ref))
    if (!service && !task) return fail(`Error: No such service or task: ${ref}`)
    const owner = service ?? this.services.get(task?.serviceName ?? '')
    if (owner) this.look(owner, false)
    const tasks = task ? [task] : this.tasks.filter((candidate) => candidate.serviceId === service?.ID)
    const lines = tasks
      .filter((candidate) => candidate.containerId)
      .sort((a, b) => a.createdAt - b.createdAt)
      .map((candidate) => `${candidate.serviceName}.${candidate.slot}.${candidate.id}@fakenode    | ${this.crashes(candidate.image) ? CRASH_LOG : 'app: log line'}`)
    const tail = value(parsed, 'tail')
    const shown = tail === undefined || tail === 'all' ? lines : lines.slice(-Number(tail))
    return ok(shown.map((line) => `${line}\n`).join(''))
  }

  private serviceJson(service: FakeService): unknown {
    const ports = service.Spec.EndpointSpec.Ports
    return {
      ID: service.ID,
      Version: service.Version,
      CreatedAt: service.CreatedAt,
      UpdatedAt: service.UpdatedAt,
      Spec: service.Spec,
      ...(service.PreviousSpec && { PreviousSpec: service.PreviousSpec }),
      Endpoint: {
        Spec: service.Spec.EndpointSpec,
        ...(ports.length > 0 && { Ports: ports.map((port, index) => ({ ...port, PublishedPort: port.PublishedPort ?? 30000 + index })) })
      },
      ...(service.UpdateStatus && { UpdateStatus: service.UpdateStatus })
    }
  }

  private taskJson(task: FakeTask): unknown {
    const container = task.containerId ? [...this.containers.values()].find((candidate) => candidate.id === task.containerId) : undefined
    return {
      ID: task.id,
      Version: { Index: task.timestamp },
      CreatedAt: iso(task.createdAt),
      UpdatedAt: iso(task.timestamp),
      Labels: {},
      Spec: { ContainerSpec: { Image: task.image }, ForceUpdate: 0 },
      ServiceID: task.serviceId,
      Slot: task.slot,
      NodeID: NODE_ID,
      Status: {
        Timestamp: iso(task.timestamp),
        State: task.state,
        Message: task.state === 'failed' || task.state === 'rejected' ? 'started' : task.state,
        ...(task.error && { Err: task.error }),
        ...(task.containerId && { ContainerStatus: { ContainerID: task.containerId, PID: container?.running ? 4242 : 0, ExitCode: container?.exitCode ?? 0 } }),
        PortStatus: {}
      },
      DesiredState: task.desiredState
    }
  }

  private findService(ref: string): FakeService | undefined {
    if (!ref) return undefined
    return this.services.get(ref) ?? [...this.services.values()].find((service) => service.ID === ref || service.ID.startsWith(ref))
  }

  /** `repo:tag@sha256:…` when the registry has a digest for it (Swarm pins what runs), else as given. */
  private resolveServiceImage(ref: string, noResolve: boolean): string {
    if (noResolve || ref.includes('@')) return ref
    const digest = this.registryDigests.get(ref)
    return digest ? `${ref}@${digest}` : ref
  }

  // Swarm's work after a create or an update is a queue of steps per service. With `swarmLag` 0 it
  // runs to its end within the command; otherwise every `swarmLag`-th look at the service runs one.

  private queue(service: FakeService, step: () => void): void {
    const entry = this.pending.get(service.ID) ?? { steps: [], looks: 0 }
    entry.steps.push(step)
    this.pending.set(service.ID, entry)
  }

  private settle(service: FakeService): void {
    if (this.swarmLag > 0) return
    const entry = this.pending.get(service.ID)
    for (let guard = 0; entry && entry.steps.length > 0 && guard < 1_000; guard++) entry.steps.shift()?.()
  }

  /** One look at a service: moves Swarm's work on; a look at the tasks also lets a crash loop go round once more. */
  private look(service: FakeService, atTasks: boolean): void {
    const entry = this.pending.get(service.ID)
    if (this.swarmLag > 0 && entry && entry.steps.length > 0) {
      if (++entry.looks < this.swarmLag) return
      entry.looks = 0
      entry.steps.shift()?.()
      return
    }
    if (atTasks) this.crashLoop(service)
  }

  private slotsOf(service: FakeService): number[] {
    return Array.from({ length: replicasOf(service.Spec) }, (_, index) => index + 1)
  }

  private liveTask(service: FakeService, slot: number): FakeTask | undefined {
    return this.tasks
      .filter((task) => task.serviceId === service.ID && task.slot === slot && task.desiredState !== 'shutdown')
      .sort((a, b) => b.createdAt - a.createdAt)[0]
  }

  private isDirty(service: FakeService, slot: number): boolean {
    return this.liveTask(service, slot)?.template !== JSON.stringify(service.Spec.TaskTemplate)
  }

  /** Scale: tasks of slots beyond the replicas go; a slot without any task gets one. */
  private reconcileSlots(service: FakeService): void {
    const replicas = replicasOf(service.Spec)
    for (const task of this.tasks.filter((candidate) => candidate.serviceId === service.ID && candidate.slot > replicas)) this.dropTask(task)
    const fresh = this.slotsOf(service)
      .filter((slot) => !this.tasks.some((task) => task.serviceId === service.ID && task.slot === slot))
      .map((slot) => this.newTask(service, slot, 'starting'))
    if (fresh.length === 0) return
    this.queue(service, () => {
      for (const task of fresh) {
        if (!this.tasks.includes(task) || task.desiredState === 'shutdown') continue
        if (this.taskFails(task)) {
          this.failTask(task)
          this.restartSlot(service, task.slot)
        } else this.runTask(task)
      }
    })
  }

  /** The next batch of out-of-date slots (`--update-parallelism`; 0 is all at once), or the end of the update. */
  private nextBatch(service: FakeService): void {
    const dirty = this.slotsOf(service).filter((slot) => this.isDirty(service, slot))
    if (dirty.length === 0) return this.completeUpdate(service)
    const { Parallelism, Order } = service.Spec.UpdateConfig
    const batch = dirty.slice(0, Parallelism === 0 ? dirty.length : Math.max(1, Parallelism))
    const startFirst = Order === 'start-first'
    const started = batch.map((slot) => {
      if (!startFirst) this.shutDownSlot(service, slot)
      return this.newTask(service, slot, 'starting')
    })
    this.queue(service, () => {
      let failed: FakeTask | undefined
      for (const task of started) {
        if (this.taskFails(task)) {
          this.failTask(task)
          failed ??= task
        } else {
          this.runTask(task)
          if (startFirst) this.shutDownSlot(service, task.slot, task)
        }
      }
      if (failed) this.updateFailed(service, failed)
      else this.nextBatch(service)
    })
  }

  /** Swarm's updater on a failed task, with its messages (swarmkit's updater.go). */
  private updateFailed(service: FakeService, failed: FakeTask): void {
    const status = service.UpdateStatus
    const action = service.Spec.UpdateConfig.FailureAction
    this.touch(service)
    if (status?.State === 'rollback_started') {
      // Never roll back a rollback.
      service.UpdateStatus = { ...status, State: 'rollback_paused', Message: `rollback paused due to failure or early termination of task ${failed.id}` }
      this.restartSlot(service, failed.slot)
      return
    }
    if (action === 'rollback' && service.PreviousSpec) {
      service.UpdateStatus = { State: 'rollback_started', StartedAt: status?.StartedAt ?? this.stamp(), Message: `update rolled back due to failure or early termination of task ${failed.id}` }
      service.Spec = service.PreviousSpec
      delete service.PreviousSpec
      this.queue(service, () => this.nextBatch(service))
      return
    }
    if (action === 'continue') {
      this.restartSlot(service, failed.slot)
      this.nextBatch(service)
      return
    }
    service.UpdateStatus = { State: 'paused', StartedAt: status?.StartedAt ?? this.stamp(), Message: `update paused due to failure or early termination of task ${failed.id}` }
    this.restartSlot(service, failed.slot)
  }

  private completeUpdate(service: FakeService): void {
    const status = service.UpdateStatus
    // The service was updated again since this update began: nothing to complete.
    if (!status) return
    const rolledBack = status.State === 'rollback_started'
    service.UpdateStatus = {
      ...status,
      State: rolledBack ? 'rollback_completed' : 'completed',
      CompletedAt: this.stamp(),
      Message: rolledBack ? 'rollback completed' : 'update completed'
    }
    this.touch(service)
  }

  /** A crash-looping slot goes round once more: its waiting task starts and fails, and Swarm makes the next one. */
  private crashLoop(service: FakeService): void {
    for (const slot of this.slotsOf(service)) {
      const live = this.liveTask(service, slot)
      if (!live || (live.state !== 'ready' && live.state !== 'starting')) continue
      if (this.taskFails(live)) {
        this.failTask(live)
        this.restartSlot(service, slot)
      } else this.runTask(live)
    }
  }

  /** The restart policy's replacement for a failed task: `ready`, started on the next look. */
  private restartSlot(service: FakeService, slot: number): void {
    const { Condition, MaxAttempts } = service.Spec.TaskTemplate.RestartPolicy
    if (Condition === 'none') return
    const attempts = this.tasks.filter((task) => task.serviceId === service.ID && task.slot === slot && (task.state === 'failed' || task.state === 'rejected')).length
    if (MaxAttempts > 0 && attempts > MaxAttempts) return
    this.newTask(service, slot, 'ready')
  }

  private newTask(service: FakeService, slot: number, state: 'starting' | 'ready'): FakeTask {
    const at = this.tick()
    const task: FakeTask = {
      id: this.newObjectId('t'),
      serviceId: service.ID,
      serviceName: service.Spec.Name,
      slot,
      image: service.Spec.TaskTemplate.ContainerSpec.Image,
      desiredState: 'running',
      state,
      error: '',
      containerId: '',
      createdAt: at,
      timestamp: at,
      template: JSON.stringify(service.Spec.TaskTemplate)
    }
    this.tasks.push(task)
    if (state === 'starting' && !this.imageUnavailable(task.image)) this.taskContainer(service, task)
    this.pruneHistory(service, slot)
    return task
  }

  private taskContainer(service: FakeService, task: FakeTask): FakeContainer {
    const existing = task.containerId ? [...this.containers.values()].find((container) => container.id === task.containerId) : undefined
    if (existing) return existing
    // The node pulls what it does not have.
    this.images.add(stripDigest(task.image))
    const spec = service.Spec.TaskTemplate.ContainerSpec
    const container = this.add({
      name: `${service.Spec.Name}.${task.slot}.${task.id}`,
      image: task.image,
      labels: {
        ...spec.Labels,
        'com.docker.swarm.node.id': NODE_ID,
        'com.docker.swarm.service.id': service.ID,
        'com.docker.swarm.service.name': service.Spec.Name,
        'com.docker.swarm.task.id': task.id,
        'com.docker.swarm.task.name': `${service.Spec.Name}.${task.slot}.${task.id}`
      },
      running: false,
      env: [...spec.Env],
      mounts: spec.Mounts.map((mount) => mount.Target),
      command: [...spec.Args],
      taskId: task.id
    })
    task.containerId = container.id
    return container
  }

  private runTask(task: FakeTask): void {
    const service = this.services.get(task.serviceName)
    if (!service) return
    const container = this.taskContainer(service, task)
    this.startContainer(container)
    this.setTaskState(task, 'running')
  }

  private failTask(task: FakeTask): void {
    const service = this.services.get(task.serviceName)
    task.desiredState = 'shutdown'
    if (this.imageUnavailable(task.image)) {
      task.error = `No such image: ${task.image}`
      this.setTaskState(task, 'rejected')
      return
    }
    if (service) this.startContainer(this.taskContainer(service, task))
    task.error = 'task: non-zero exit (1)'
    this.setTaskState(task, 'failed')
  }

  /** Shuts the slot's live task down (all but `keep`). */
  private shutDownSlot(service: FakeService, slot: number, keep?: FakeTask): void {
    for (const task of this.tasks.filter((candidate) => candidate.serviceId === service.ID && candidate.slot === slot && candidate.desiredState !== 'shutdown' && candidate !== keep)) {
      task.desiredState = 'shutdown'
      const container = [...this.containers.values()].find((candidate) => candidate.id === task.containerId)
      if (container?.running) {
        container.running = false
        container.finishedAt = this.stamp()
      }
      if (task.state !== 'failed' && task.state !== 'rejected') this.setTaskState(task, 'shutdown')
    }
  }

  private setTaskState(task: FakeTask, state: string): void {
    task.state = state
    task.timestamp = this.tick()
  }

  /** Swarm's task history retention: the oldest tasks of a slot beyond the limit go, with their containers. */
  private pruneHistory(service: FakeService, slot: number): void {
    const ofSlot = this.tasks.filter((task) => task.serviceId === service.ID && task.slot === slot).sort((a, b) => b.createdAt - a.createdAt)
    for (const task of ofSlot.slice(Math.max(1, this.taskHistoryLimit))) if (task.desiredState === 'shutdown') this.dropTask(task)
  }

  private dropTask(task: FakeTask): void {
    this.tasks.splice(this.tasks.indexOf(task), 1)
    const container = [...this.containers.values()].find((candidate) => candidate.id === task.containerId)
    if (container) this.containers.delete(container.name)
  }

  private taskFails(task: FakeTask): boolean {
    return this.crashes(task.image) || this.imageUnavailable(task.image) || this.taskStartFails?.(task) === true
  }

  private imageUnavailable(image: string): boolean {
    const ref = stripDigest(image)
    return !this.images.has(ref) && this.missingInRegistry.has(ref)
  }

  private touch(service: FakeService): void {
    service.Version.Index++
    service.UpdatedAt = this.stamp()
  }

  private newObjectId(prefix: string): string {
    return `${prefix}${(this.nextObjectId++).toString(36).padStart(24, '0')}`
  }

  private tick(): number {
    return ++this.clock
  }

  private stamp(): string {
    return iso(this.tick())
  }
}

/**
 * The local images: a set of references (`repo:tag`), each with an image id and the order in which
 * it arrived (its "created" time, for `image ls`). References made with `image tag` share an id.
 */
export class ImageStore extends Set<string> {
  private readonly meta = new Map<string, { id: string; order: number }>()
  private arrivals = 0

  override add(ref: string): this {
    // Set's constructor calls add before the fields exist; nothing is passed to it here.
    if (this.meta && !this.meta.has(ref)) this.meta.set(ref, { id: `sha256:${createHash('sha256').update(ref).digest('hex')}`, order: ++this.arrivals })
    return super.add(ref)
  }

  override delete(ref: string): boolean {
    this.meta.delete(ref)
    return super.delete(ref)
  }

  override clear(): void {
    this.meta.clear()
    super.clear()
  }

  /** The image id of a reference (a made-up one for a reference that is not present). */
  idOf(ref: string): string {
    return this.meta.get(ref)?.id ?? `sha256:${createHash('sha256').update(ref).digest('hex')}`
  }

  orderOf(ref: string): number {
    return this.meta.get(ref)?.order ?? 0
  }

  /** Every reference of an image id. */
  refsOf(id: string): string[] {
    return [...this].filter((ref) => this.idOf(ref) === id)
  }

  /** `docker image tag`: `target` names the same image as `source`. */
  tag(source: string, target: string): void {
    super.add(target)
    this.meta.set(target, { id: this.idOf(source), order: ++this.arrivals })
  }

  /** The reference a name, `name:latest`, a full id or an id prefix (12+ hex digits) stands for. */
  resolve(ref: string): string | undefined {
    if (this.has(ref)) return ref
    if (this.has(`${ref}:latest`)) return `${ref}:latest`
    const hex = ref.replace(/^sha256:/, '')
    if (!/^[0-9a-f]{12,64}$/.test(hex)) return undefined
    return [...this].find((candidate) => this.idOf(candidate).slice('sha256:'.length).startsWith(hex))
  }
}

// ── argv parsing ────────────────────────────────────────────────────────────────────────────

interface FlagSpec {
  /** Canonical name by `--long` and `-s` spelling. */
  names: Map<string, string>
  takesValue: Set<string>
}

interface Parsed {
  flags: { name: string; value: string }[]
  args: string[]
}

/** `spec('name network|net', 'init rm|…')`: value-taking flags, then boolean ones; `long|s` adds a short spelling. */
function spec(valueFlags: string, booleanFlags: string): FlagSpec {
  const names = new Map<string, string>()
  const takesValue = new Set<string>()
  const addAll = (list: string, withValue: boolean): void => {
    for (const entry of list.split(/\s+/).filter(Boolean)) {
      const [long = '', ...aliases] = entry.split('|')
      names.set(`--${long}`, long)
      for (const alias of aliases) names.set(alias.length === 1 ? `-${alias}` : `--${alias}`, long)
      if (withValue) takesValue.add(long)
    }
  }
  addAll(valueFlags, true)
  addAll(booleanFlags, false)
  return { names, takesValue }
}

const NO_FLAGS = spec('', '')
/** Every flag `run-args.ts` emits (and more of `docker container create`): a missing one is an `unknown flag`. */
const CONTAINER_CREATE = spec(
  'name network|net env|e env-file volume|v mount restart stop-timeout stop-signal publish|p label|l label-file pull entrypoint user|u workdir|w ' +
    'hostname memory|m cpus log-driver log-opt health-cmd health-interval health-timeout health-retries health-start-period platform add-host dns ' +
    'cap-add cap-drop ulimit tmpfs device network-alias ip shm-size pid ipc security-opt group-add cidfile gpus runtime expose link cpu-shares|c',
  'init rm detach|d interactive|i tty|t read-only privileged publish-all|P no-healthcheck oom-kill-disable quiet|q sig-proxy'
)
const CONTAINER_INSPECT = spec('format|f', 'size|s')
const CONTAINER_RM = spec('', 'force|f volumes|v link|l')
const CONTAINER_START = spec('detach-keys', 'attach|a interactive|i')
const CONTAINER_STOP = spec('time|t signal|s', '')
const CONTAINER_LOGS = spec('tail|n since until', 'follow|f timestamps|t details')
const CONTAINER_LS = spec('filter|f format last|n', 'all|a no-trunc quiet|q size|s latest|l')
const IMAGE_INSPECT = spec('format|f platform', '')
const SYSTEM_INFO = spec('format|f', '')
const EVENTS = spec('filter|f format since until', '')
const IMAGE_IMPORT = spec('message|m change|c platform', '')
const IMAGE_LS = spec('filter|f format', 'all|a digests no-trunc quiet|q tree')
const IMAGE_RM = spec('platform', 'force|f no-prune')
const PULL = spec('platform', 'quiet|q all-tags|a disable-content-trust')
const MANIFEST_INSPECT = spec('', 'insecure verbose|v')
const INSPECT = spec('type format|f', 'size|s')
/** Every flag `service-args.ts` emits for `docker service create` (and more). */
const SERVICE_CREATE = spec(
  'name network env|e mount publish|p container-label label|l replicas mode update-parallelism update-delay update-order update-monitor ' +
    'update-failure-action update-max-failure-ratio rollback-parallelism rollback-delay rollback-order rollback-monitor rollback-failure-action ' +
    'rollback-max-failure-ratio stop-grace-period stop-signal restart-condition restart-max-attempts restart-delay restart-window constraint ' +
    'placement-pref hostname user|u workdir|w entrypoint health-cmd health-interval health-timeout health-retries health-start-period ' +
    'limit-cpu limit-memory reserve-cpu reserve-memory secret config endpoint-mode log-driver log-opt dns host',
  'detach|d quiet|q with-registry-auth init no-resolve-image no-healthcheck read-only tty|t'
)
/** Every flag `service-args.ts` emits for `docker service update` (and more). */
const SERVICE_UPDATE = spec(
  'image env-add env-rm mount-add mount-rm publish-add publish-rm container-label-add container-label-rm label-add label-rm args replicas ' +
    'update-parallelism update-delay update-order update-monitor update-failure-action update-max-failure-ratio rollback-parallelism ' +
    'rollback-delay rollback-order rollback-monitor rollback-failure-action rollback-max-failure-ratio stop-grace-period stop-signal ' +
    'restart-condition restart-max-attempts restart-delay restart-window network-add network-rm constraint-add constraint-rm ' +
    'secret-add secret-rm health-cmd limit-cpu limit-memory user|u workdir|w entrypoint',
  'detach|d quiet|q with-registry-auth force init rollback no-resolve-image read-only tty|t'
)
const SERVICE_INSPECT = spec('format|f', 'pretty')
const SERVICE_PS = spec('filter|f format', 'no-trunc quiet|q no-resolve')
const SERVICE_LOGS = spec('tail|n since', 'no-trunc follow|f timestamps|t raw details no-task-ids no-resolve')
const SERVICE_LS = spec('filter|f format', 'quiet|q')

/**
 * Parses argv like the CLI's flag parser: `--flag value`, `--flag=value`, `-s value`, booleans
 * with an optional `=false`; `--` ends the flags. With `stopAtPositional` (create, run) the first
 * positional word (the image) ends them too, as the words after it belong to the container.
 */
function parseArgs(words: readonly string[], flagSpec: FlagSpec, command: string, options: { stopAtPositional?: boolean } = {}): Parsed | DockerResult {
  const parsed: Parsed = { flags: [], args: [] }
  for (let index = 0; index < words.length; index++) {
    const word = words[index] as string
    if (word === '--') {
      parsed.args.push(...words.slice(index + 1))
      break
    }
    if (!word.startsWith('-') || word === '-') {
      if (options.stopAtPositional) {
        parsed.args.push(...words.slice(index))
        break
      }
      parsed.args.push(word)
      continue
    }
    const equals = word.indexOf('=')
    const spelled = equals === -1 ? word : word.slice(0, equals)
    const name = flagSpec.names.get(spelled)
    if (name === undefined) return usage(`unknown ${spelled.startsWith('--') ? 'flag' : 'shorthand flag'}: ${spelled}`, command)
    if (flagSpec.takesValue.has(name)) {
      if (equals !== -1) parsed.flags.push({ name, value: word.slice(equals + 1) })
      else {
        const next = words[index + 1]
        if (next === undefined) return usage(`flag needs an argument: ${spelled}`, command)
        parsed.flags.push({ name, value: next })
        index++
      }
    } else parsed.flags.push({ name, value: equals === -1 ? 'true' : word.slice(equals + 1) })
  }
  return parsed
}

function isResult(parsed: Parsed | DockerResult): parsed is DockerResult {
  return 'exitCode' in parsed
}

function value(parsed: Parsed, name: string): string | undefined {
  return parsed.flags.filter((entry) => entry.name === name).pop()?.value
}

function values(parsed: Parsed, name: string): string[] {
  return parsed.flags.filter((entry) => entry.name === name).map((entry) => entry.value)
}

function flag(parsed: Parsed, name: string): boolean {
  const found = value(parsed, name)
  return found !== undefined && found !== 'false'
}

function usage(message: string, command: string): DockerResult {
  return { exitCode: 125, stdout: '', stderr: `${message}\nSee 'docker ${command} --help'.\n` }
}

// ── Swarm spec helpers ──────────────────────────────────────────────────────────────────────

function applyCommonServiceFlags(target: FakeServiceSpec, parsed: Parsed): void {
  const replicas = value(parsed, 'replicas')
  if (replicas !== undefined && 'Replicated' in target.Mode) target.Mode = { Replicated: { Replicas: Number(replicas) } }
  const update = target.UpdateConfig
  const parallelism = value(parsed, 'update-parallelism')
  if (parallelism !== undefined) update.Parallelism = Number(parallelism)
  const delay = value(parsed, 'update-delay')
  if (delay !== undefined) update.Delay = goDurationNs(delay)
  const order = value(parsed, 'update-order')
  if (order !== undefined) update.Order = order
  const monitor = value(parsed, 'update-monitor')
  if (monitor !== undefined) update.Monitor = goDurationNs(monitor)
  const action = value(parsed, 'update-failure-action')
  if (action !== undefined) update.FailureAction = action
  const ratio = value(parsed, 'update-max-failure-ratio')
  if (ratio !== undefined) update.MaxFailureRatio = Number(ratio)
  const grace = value(parsed, 'stop-grace-period')
  if (grace !== undefined) target.TaskTemplate.ContainerSpec.StopGracePeriod = goDurationNs(grace)
  const condition = value(parsed, 'restart-condition')
  if (condition !== undefined) target.TaskTemplate.RestartPolicy.Condition = condition
  const attempts = value(parsed, 'restart-max-attempts')
  if (attempts !== undefined) target.TaskTemplate.RestartPolicy.MaxAttempts = Number(attempts)
}

/** `--publish 8080:80/tcp`, `80/udp`, or the long form `published=8080,target=80,mode=host`. */
function addPort(target: FakeServiceSpec, publish: string): void {
  let port: FakeServiceSpec['EndpointSpec']['Ports'][number]
  if (publish.includes('=')) {
    const fields = Object.fromEntries(publish.split(',').map(splitPair))
    port = {
      Protocol: fields.protocol ?? 'tcp',
      TargetPort: Number(fields.target),
      ...(fields.published && { PublishedPort: Number(fields.published) }),
      PublishMode: fields.mode ?? 'ingress'
    }
  } else {
    const [ports = '', protocol = 'tcp'] = publish.split('/')
    const parts = ports.split(':')
    const published = parts.length === 2 ? parts[0] : undefined
    port = { Protocol: protocol, TargetPort: Number(parts[parts.length - 1]), ...(published && { PublishedPort: Number(published) }), PublishMode: 'ingress' }
  }
  target.EndpointSpec.Ports = [
    ...target.EndpointSpec.Ports.filter(
      (existing) =>
        !(existing.TargetPort === port.TargetPort && existing.Protocol === port.Protocol && existing.PublishedPort === port.PublishedPort) &&
        !(port.PublishedPort !== undefined && existing.PublishedPort === port.PublishedPort && existing.Protocol === port.Protocol)
    ),
    port
  ]
}

/** A `--mount` value: `type=volume,source=data,target=/data,readonly`. */
function parseMount(mount: string): FakeServiceSpec['TaskTemplate']['ContainerSpec']['Mounts'][number] {
  const fields = new Map(mount.split(',').map(splitPair))
  const readOnly = fields.has('readonly') || fields.has('ro') ? fields.get('readonly') ?? fields.get('ro') : undefined
  return {
    Type: fields.get('type') ?? 'volume',
    Source: fields.get('source') ?? fields.get('src') ?? '',
    Target: cleanPath(fields.get('target') ?? fields.get('destination') ?? fields.get('dst') ?? ''),
    ...(readOnly !== undefined && readOnly !== 'false' && readOnly !== '0' && { ReadOnly: true })
  }
}

function mountProblem(mounts: { Target: string }[]): string | undefined {
  const targets = mounts.map((mount) => mount.Target)
  const duplicate = targets.find((target, index) => targets.indexOf(target) !== index)
  return duplicate === undefined ? undefined : `Error response from daemon: rpc error: code = InvalidArgument desc = ContainerSpec: duplicate mount point: ${duplicate}`
}

function replicasOf(serviceSpec: FakeServiceSpec): number {
  return 'Replicated' in serviceSpec.Mode ? serviceSpec.Mode.Replicated.Replicas : 1
}

/** Go's duration syntax (`1500ms`, `2s`, `1m30s`) in nanoseconds, as Swarm stores durations. */
function goDurationNs(duration: string): number {
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 }
  let total = 0
  for (const [, amount = '0', unit = 's'] of duration.matchAll(/([\d.]+)(ns|us|µs|ms|s|m|h)/g)) total += Number(amount) * (units[unit] ?? 1e9)
  return Math.round(total)
}

/**
 * The words of a `--args` value as the CLI splits them (shell-like, no expansion): quotes group,
 * a backslash escapes the next character outside single quotes.
 */
function shellSplit(text: string): string[] {
  const words: string[] = []
  let word = ''
  let inWord = false
  let quote: '"' | "'" | undefined
  for (let index = 0; index < text.length; index++) {
    const char = text[index] as string
    if (quote) {
      if (char === quote) quote = undefined
      else if (char === '\\' && quote === '"' && index + 1 < text.length) word += text[++index]
      else word += char
    } else if (char === '"' || char === "'") {
      quote = char
      inWord = true
    } else if (char === '\\' && index + 1 < text.length) {
      word += text[++index]
      inWord = true
    } else if (/\s/.test(char)) {
      if (inWord) words.push(word)
      word = ''
      inWord = false
    } else {
      word += char
      inWord = true
    }
  }
  if (inWord) words.push(word)
  return words
}

// ── small helpers ───────────────────────────────────────────────────────────────────────────

function ok(stdout = ''): DockerResult {
  return { exitCode: 0, stdout, stderr: '' }
}

function fail(stderr: string): DockerResult {
  return { exitCode: 1, stdout: '', stderr: `${stderr}\n` }
}

function statusOf(container: FakeContainer): string {
  if (container.running) return 'running'
  if (container.started) return 'exited'
  if (container.error) return 'created'
  return container.exitCode === 0 ? 'created' : 'exited'
}

/**
 * Whether a container event passes `docker events` filters: values of one key are alternatives,
 * keys must all match. `container` matches an id or name exactly or as a prefix, as docker's does;
 * an `event` filter on `health_status` matches `health_status: healthy` too.
 */
function eventMatches(filters: [string, string][], event: FakeEvent): boolean {
  const byKey = new Map<string, string[]>()
  for (const [key, wanted] of filters) byKey.set(key, [...(byKey.get(key) ?? []), wanted])
  for (const [key, wanted] of byKey) {
    const name = event.Actor.Attributes.name ?? ''
    const matches = wanted.some((value) => {
      if (key === 'type') return value === event.Type
      if (key === 'container') return event.Actor.ID.startsWith(value) || name.startsWith(value)
      if (key === 'event') return event.Action === value || event.Action.startsWith(`${value}:`)
      if (key === 'label') {
        const [labelKey, labelValue] = value.includes('=') ? splitPair(value) : [value, undefined]
        return labelKey in event.Actor.Attributes && (labelValue === undefined || event.Actor.Attributes[labelKey] === labelValue)
      }
      return false
    })
    if (!matches) return false
  }
  return true
}

/** `KEY=value` as [KEY, value]; a bare KEY has the empty value. */
function splitPair(entry: string): [string, string] {
  const equals = entry.indexOf('=')
  return equals === -1 ? [entry, ''] : [entry.slice(0, equals), entry.slice(equals + 1)]
}

function pairs(entries: string[]): Record<string, string> {
  return Object.fromEntries(entries.map(splitPair))
}

/**
 * `--env NAME=value` as is; `--env NAME` takes NAME's value from the CLI's environment (the
 * runner's `env`, then this process's). Unset: docker run drops it, a service keeps the bare name.
 */
function clientEnv(entry: string, options: DockerRunOptions, how: { keepUnset: boolean }): string[] {
  if (entry.includes('=')) return [entry]
  const found = options.env?.[entry] ?? process.env[entry]
  if (found !== undefined) return [`${entry}=${found}`]
  return how.keepUnset ? [entry] : []
}

/** The container path of a `--volume` value (`src:/dst[:opts]`, or an anonymous `/dst`). */
function volumeTarget(volume: string): string {
  const parts = volume.split(':')
  return parts.length === 1 ? (parts[0] ?? '') : (parts[1] ?? '')
}

function mountTarget(mount: string): string {
  return parseMount(mount).Target
}

function cleanPath(path: string): string {
  const normal = posix.normalize(path)
  return normal.length > 1 ? normal.replace(/\/$/, '') : normal
}

interface Binding {
  ip: string
  port: string
  protocol: string
}

/** The host side of a `--publish` value; undefined for `80` (docker picks a free host port). */
function hostBinding(publish: string): Binding | undefined {
  let rest = publish
  let protocol = 'tcp'
  const slash = rest.lastIndexOf('/')
  if (slash !== -1) {
    protocol = rest.slice(slash + 1)
    rest = rest.slice(0, slash)
  }
  let ip = ''
  if (rest.startsWith('[')) {
    const end = rest.indexOf(']')
    ip = rest.slice(1, end)
    rest = rest.slice(end + 2)
    const [port = ''] = rest.split(':')
    return port ? { ip, port, protocol } : undefined
  }
  const parts = rest.split(':')
  if (parts.length === 3) ip = parts[0] ?? ''
  const port = parts.length >= 2 ? (parts[parts.length - 2] ?? '') : ''
  return port ? { ip: ip || '0.0.0.0', port, protocol } : undefined
}

/** `HostConfig.PortBindings` as docker shows it: `{ "3000/tcp": [{ "HostIp": "", "HostPort": "8080" }] }`. */
function portBindings(publish: readonly string[]): Record<string, { HostIp: string; HostPort: string }[]> {
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {}
  for (const spec of publish) {
    const [address = '', protocol = 'tcp'] = spec.split('/')
    const key = `${address.split(':').pop() ?? ''}/${protocol}`
    const binding = hostBinding(spec)
    ;(bindings[key] ??= []).push({ HostIp: binding && binding.ip !== '0.0.0.0' ? binding.ip : '', HostPort: binding?.port ?? '' })
  }
  return bindings
}

function bindingsClash(a: Binding, b: Binding | undefined): boolean {
  if (!b || a.port !== b.port || a.protocol !== b.protocol) return false
  const any = (ip: string): boolean => ip === '0.0.0.0' || ip === '::' || ip === ''
  return a.ip === b.ip || any(a.ip) || any(b.ip)
}

function stripDigest(ref: string): string {
  return ref.split('@')[0] ?? ref
}

/** The repository of a reference: without its tag (the colon after the last slash) and digest. */
function repositoryOf(ref: string): string {
  const name = stripDigest(ref)
  const colon = name.indexOf(':', name.lastIndexOf('/') + 1)
  return colon === -1 ? name : name.slice(0, colon)
}

function tagOf(ref: string): string | undefined {
  const name = stripDigest(ref)
  const colon = name.indexOf(':', name.lastIndexOf('/') + 1)
  return colon === -1 ? undefined : name.slice(colon + 1)
}

function releaseTag(labels: Record<string, string>, image: string): string | undefined {
  return labels[Label.Tag] ?? tagOf(image)
}

/** `docker image ls REPOSITORY[:TAG]` and `reference=` filters: path-style globs (`*` stops at `/`). */
function referenceMatches(pattern: string, ref: string): boolean {
  const glob = (text: string): RegExp =>
    new RegExp(`^${text.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`)
  const hasTag = tagOf(pattern) !== undefined
  return hasTag ? glob(pattern).test(ref) : glob(pattern).test(repositoryOf(ref))
}

function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12)
}

function title(state: string): string {
  return state.charAt(0).toUpperCase() + state.slice(1)
}

function iso(tick: number): string {
  return new Date(EPOCH + tick * 1000).toISOString()
}

function ago(seconds: number): string {
  if (seconds < 1) return 'Less than a second ago'
  if (seconds === 1) return '1 second ago'
  if (seconds < 60) return `${seconds} seconds ago`
  return seconds < 120 ? 'About a minute ago' : `${Math.floor(seconds / 60)} minutes ago`
}

/**
 * A Go template as the CLI's `--format` uses them, for the forms the action and tests need:
 * `{{json .}}`, `{{json .A.B}}`, `{{.A.B}}`; anything else is left as written. `\t` and `\n` in
 * the format become tabs and newlines, as docker does.
 */
function render(template: string, data: unknown): string {
  return template
    .replace(/\\t/g, '\t')
    .replace(/\\n/g, '\n')
    .replace(/\{\{\s*(json\s+)?\.([\w.]*)\s*\}\}/g, (_, json: string | undefined, path: string) => {
      const found = path === '' ? data : path.split('.').reduce<unknown>((object, key) => (object && typeof object === 'object' ? (object as Record<string, unknown>)[key] : undefined), data)
      return json ? JSON.stringify(found ?? null) : goString(found)
    })
}

function goString(found: unknown): string {
  if (found === undefined) return '<no value>'
  if (found === null) return '<nil>'
  if (Array.isArray(found)) return `[${found.map(goString).join(' ')}]`
  if (typeof found === 'object') {
    return `map[${Object.entries(found as Record<string, unknown>)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, entry]) => `${key}:${goString(entry)}`)
      .join(' ')}]`
  }
  return String(found)
}
