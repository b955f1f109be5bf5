import * as core from '@actions/core'
import { setTimeout as sleep } from 'node:timers/promises'
import type { DockerClient } from '../docker/client.js'
import { CreatedObjects } from '../created.js'
import { secretEnvironment } from '../docker/run-args.js'
import { buildServiceCreateArgv, buildServiceUpdateArgv, type ServiceSpec } from '../docker/service-args.js'
import { ServiceClient, type ServiceInfo, type TaskInfo, type TaskRow } from '../docker/service-client.js'
import type { StateObservation, StateProbe } from '../health/state-probe.js'
import { sameRelease, type DeploySettings, type Release } from '../settings.js'
import { FAILED_LOG_LINES } from './container-evidence.js'
import { releaseLabels, releaseOf, tagOfReference } from './release-labels.js'
import { SwitchNotStartedError, type DeployStrategy, type FailureEvidence, type RestoreMethod } from './strategy.js'

/** At most this many task rows in the report: enough to show a crash loop, not a wall of it. */
const REPORTED_TASKS = 10
/** Swarm's own defaults, for the convergence deadline when neither the config nor the service sets them. */
const SWARM_DEFAULT_PARALLELISM = 1
const SWARM_DEFAULT_MONITOR_MS = 5_000
const SWARM_DEFAULT_STOP_GRACE_MS = 10_000
/** Spacing of the reads while waiting for Swarm, and the least spacing of state-probe reads. */
const POLL_MS = 500

/** Update states after which Swarm does nothing more on its own. */
const UPDATE_FAILED_STATES = new Set(['paused', 'rollback_completed', 'rollback_paused'])
/**
 * Update states that Swarm left unfinished: it stopped part way, and the tasks may run a mix of
 * the spec and what ran before it, whatever the labels say.
 */
const UPDATE_PAUSED_STATES = new Set(['paused', 'rollback_paused'])
/** Update states after which Swarm holds every task to the spec: none at all (never updated), or done. */
const UPDATE_SETTLED_STATES = new Set(['completed', 'rollback_completed'])
/** Desired states of a task Swarm wants to run now (`ready`: created, about to be started). */
const LIVE_DESIRED_STATES = new Set(['running', 'ready'])
/** Task states a task never leaves, and that mean it did not do its job. */
const TASK_FAILED_STATES = new Set(['failed', 'rejected', 'orphaned'])

/** Timing of the waits; injectable so unit tests need not wait. */
export interface SwarmClock {
  now(): number
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}

const systemClock: SwarmClock = {
  now: () => performance.timeOrigin + performance.now(),
  sleep: (ms, signal) => sleep(ms, undefined, { signal })
}

/**
 * How Swarm rolls one update out: the config's setting where it has one, else the service's own,
 * else Swarm's default. `tasks` is how many tasks the updated spec runs.
 */
interface Rollout {
  tasks: number
  parallelism: number
  delayMs: number
  monitorMs: number
  stopGraceMs: number
}

/**
 * `strategy: swarm`: the app is a Swarm service on a manager node. The first deploy creates it;
 * later ones update its image, with `--update-failure-action rollback` so that Swarm itself puts
 * the previous spec back when a task fails during the update (`pause` with `rollback.on-failure:
 * false`, which keeps the failed version). `docker service update` returns before that happens
 * (and even with `--detach=false` it exits 0 after a rollback), so the outcome is read from the
 * service's `UpdateStatus`, and the task errors from `docker service ps`.
 *
 * The service is read as it is: what the config leaves out (replicas, parallelism, delay, monitor,
 * stop grace period) stays as the service has it, so the wait for Swarm and the verification
 * count the tasks the service really runs, one per eligible node for a global service.
 *
 * The release is recorded in service labels (`deploy-action.*`). They are part of the spec, so a
 * rollback by Swarm restores them too, and `current()` names what the spec runs. Only a settled
 * update status says that every task runs it: `paused` and `rollback_paused` leave a mix.
 */
export class SwarmStrategy implements DeployStrategy {
  private readonly services: ServiceClient
  /** The release this run switched to, to find its tasks and logs after a failure. */
  private switched?: Release
  /** Why the last switch failed, kept for the report. */
  private failureRows: TaskRow[] = []
  private warnedStartFirst = false

  constructor(
    private readonly settings: DeploySettings,
    private readonly docker: DockerClient,
    private readonly clock: SwarmClock = systemClock,
    private readonly signal?: AbortSignal,
    /** What this run created here: a restore to nothing removes only a service this run created. */
    private readonly created: CreatedObjects = new CreatedObjects()
  ) {
    this.services = new ServiceClient(docker)
  }

  get host(): string {
    return this.docker.hostLabel
  }

  private get name(): string {
    return this.settings.name
  }

  /** Throws for a service scaled to 0 that the config does not scale up: see `refuseScaledToZero`. */
  async current(): Promise<Release | undefined> {
    const service = await this.services.inspect(this.name)
    if (!service) return undefined
    this.refuseScaledToZero(service)
    return releaseOf(service.labels, service.image)
  }

  async switchTo(release: Release): Promise<void> {
    this.warnAboutStartFirst()
    this.switched = release
    this.failureRows = []
    const service = await this.services.inspect(this.name).catch((error: unknown) => {
      throw new SwitchNotStartedError(error)
    })
    if (!service) {
      this.created.record(await this.services.create(buildServiceCreateArgv(this.spec(release, { withCommit: true })), this.secretEnv()), 'service')
      if (!this.settings.dryRun) await this.waitForTasks(release)
      return
    }
    // Scaled to 0 since `current()` looked: still refused, and nothing was sent.
    try {
      this.refuseScaledToZero(service)
    } catch (error) {
      throw new SwitchNotStartedError(error)
    }
    await this.update(service, release, { withCommit: true, switching: true })
  }

  stateProbe(): StateProbe {
    // Polled, not followed by `docker events`: the engine of a manager sees the container events of
    // its own node only, so on a multi-node swarm a task that dies elsewhere sends it nothing, and
    // the task states (`docker service ps`) are the one view of every node.
    return serviceStateProbe(this.services, this.name, this.clock)
  }

  /** Swarm keeps the previous spec itself (`docker service rollback`); there is nothing else to drop. */
  async finalize(): Promise<void> {}

  /**
   * The failed tasks' errors (`docker service ps --no-trunc`) and last log lines, of this run's
   * release only: a task that failed in an earlier deploy is not this run's diagnosis.
   */
  async failureEvidence(): Promise<FailureEvidence> {
    const rows = this.failureRows.length > 0 ? this.failureRows : await this.services.processList(this.name).catch(() => [])
    const tag = this.switched?.tag
    const diagnostics = describeTaskRows(rows.filter((row) => tag === undefined || imageTag(row.image) === tag))
    const logs = await this.failedLogs().catch(() => '')
    return { logs, ...(diagnostics && { diagnostics }) }
  }

  /**
   * Re-deploys `target` with `docker service update --image`. When Swarm already rolled the
   * update back to exactly that release and finished, it is kept as it is. A paused update or a
   * paused rollback is not finished, whatever the labels say: the forced update with the target's
   * spec replaces every task, so the tasks Swarm left on the failed version go too. (Not `docker
   * service update --rollback`: after Swarm's own rollback the service has no previous spec, and
   * after a paused update the previous spec need not be the target.) Without a target (nothing ran
   * before this run) the service this run created is removed: the deploy lock kept anyone else
   * from creating it meanwhile.
   */
  async restore(target: Release | undefined): Promise<RestoreMethod> {
    const service = await this.services.inspect(this.name)
    if (!target) {
      if (!service) return 'nothing'
      // Only the service this run created, by its id: one of that name that this run did not
      // create (the read before the switch failed, or someone else made it) may serve.
      if (!this.created.includes(service.id, 'service')) {
        throw new Error(`the service ${this.name} on ${this.host} was not created by this run (id ${service.id.slice(0, 12)}), so it is left as it is; check what it runs`)
      }
      await this.services.remove(service.id)
      return 'removed'
    }
    if (!service) {
      this.created.record(await this.services.create(buildServiceCreateArgv(this.spec(target, { withCommit: false })), this.secretEnv()), 'service')
      if (!this.settings.dryRun) await this.waitForTasks(target)
      return 'redeployed'
    }
    if (this.alreadyRuns(service, target)) return 'already-running'
    await this.update(service, target, { withCommit: false })
    return 'redeployed'
  }

  /**
   * True when the service holds `target`'s labels (Swarm rolled back to it) and Swarm is done with
   * it: not mid-update, and not paused part way, where some tasks may still run another version.
   */
  private alreadyRuns(service: ServiceInfo, target: Release): boolean {
    if (!sameRelease(releaseOf(service.labels, service.image), target)) return false
    // Tasks that are still starting are fine: the verification after the restore waits for them.
    return service.updateStatus === undefined || UPDATE_SETTLED_STATES.has(service.updateStatus.state)
  }

  /**
   * A replicated service at 0 replicas, which the config does not scale up (`swarm.replicas`
   * unset), runs no task: Swarm never sets an UpdateStatus for its updates, and no task could show
   * a new version healthy. Such a deploy is refused before anything changes, rather than counted
   * as applied without a check: `deployed` promises a version that was shown healthy.
   */
  private refuseScaledToZero(service: ServiceInfo): void {
    if (service.global || service.replicas !== 0 || this.settings.swarm.replicas !== undefined) return
    throw new Error(
      `the service ${this.name} on ${this.host} is scaled to 0 replicas, so no task could show a new version healthy. Scale it up (docker service scale ${this.name}=N) or set swarm.replicas, then deploy again`
    )
  }

  /**
   * Sends the update and waits for Swarm's verdict on it. `switching`: the update of a deploy's
   * switch, which with `rollback.on-failure: false` leaves a paused update to the verification.
   */
  private async update(service: ServiceInfo, release: Release, options: { withCommit: boolean; switching?: boolean }): Promise<void> {
    const before = service.updateStatus?.startedAt
    try {
      await this.services.update(buildServiceUpdateArgv(this.spec(release, options), service), this.secretEnv())
    } catch (error) {
      // Refused, or the client was cut off after Swarm accepted it: only a second look tells.
      const after = await this.services.inspect(this.name).catch(() => undefined)
      const unchanged = after !== undefined && after.image === service.image && sameRelease(releaseOf(after.labels, after.image), releaseOf(service.labels, service.image))
      throw unchanged ? new SwitchNotStartedError(error) : error
    }
    if (this.settings.dryRun) return
    // Scaled up from 0 (`swarm.replicas`): no task is out of date, so Swarm sets no UpdateStatus
    // and only starts the new tasks, as after a create.
    if (!service.global && service.replicas === 0 && this.settings.swarm.replicas !== undefined) return this.waitForTasks(release, service)
    await this.waitForUpdate(release, service, before, options.switching === true)
  }

  /**
   * Waits until Swarm ends the update. `completed` is success; `paused` or a rollback is a failed
   * deploy, with the task errors. A status that began before our update is the last deploy's, not
   * ours (Swarm clears it when it accepts an update, but this does not rely on that).
   *
   * With `rollback.on-failure: false` the switch asked Swarm to pause on a failed task: a paused
   * update is then Swarm doing what it was told. The switch returns, and the verification reports
   * the failed version and what runs (`serviceStateProbe`), so nothing is put back.
   */
  private async waitForUpdate(release: Release, previous: ServiceInfo, previousStartedAt: string | undefined, switching: boolean): Promise<void> {
    const rollout = await this.rolloutOfUpdate(previous)
    // Swarm sets no UpdateStatus for a spec without tasks (only a restore gets here with one):
    // there is nothing to wait for, and the verification says that no task runs.
    if (rollout.tasks === 0) return
    const limitMs = this.convergenceDeadlineMs(rollout)
    const deadline = this.clock.now() + limitMs
    for (;;) {
      const service = await this.services.inspect(this.name)
      if (!service) throw new Error(`the service ${this.name} disappeared during the update`)
      const status = service.updateStatus
      const ours = status && status.startedAt !== previousStartedAt
      if (ours && status.state === 'completed') return
      if (ours && status.state === 'paused' && switching && !this.settings.rollback.onFailure) return
      if (ours && UPDATE_FAILED_STATES.has(status.state)) {
        this.failureRows = await this.services.processList(this.name)
        const rolledBack = status.state.startsWith('rollback')
        const errors = taskErrorSummary(this.failureRows, release.tag)
        throw new Error(
          `Swarm ${rolledBack ? `rolled the update back (${status.state.replace('_', ' ')})` : 'paused the update'}: ${status.message || 'no message'}` +
            (errors ? `; task errors: ${errors}` : '')
        )
      }
      if (this.clock.now() >= deadline) {
        this.failureRows = await this.services.processList(this.name)
        throw new Error(`Swarm did not finish the update of ${this.name} within ${Math.round(limitMs / 1000)} s (update status: ${status?.state ?? 'none yet'})`)
      }
      await this.clock.sleep(POLL_MS, this.signal)
    }
  }

  /**
   * After a create (or a scale-up from 0): waits until every replica runs. A created service has
   * no UpdateStatus, and Swarm restarts a failing task forever, so the first failed task of the
   * release ends the wait.
   */
  private async waitForTasks(release: Release, previous?: ServiceInfo): Promise<void> {
    const limitMs = this.convergenceDeadlineMs(this.rollout(previous, this.settings.swarm.replicas ?? 1))
    const deadline = this.clock.now() + limitMs
    for (;;) {
      const service = await this.services.inspect(this.name)
      if (!service) throw new Error(`the service ${this.name} disappeared while it started`)
      const tasks = await this.services.tasks(this.name)
      const failed = tasks.find((task) => TASK_FAILED_STATES.has(task.state) && task.image === service.image)
      if (failed) {
        this.failureRows = await this.services.processList(this.name)
        throw new Error(`a task of ${this.name} (${release.tag}) ${failed.state}: ${failed.error || 'no error given'}`)
      }
      const running = tasks.filter((task) => task.desiredState === 'running' && task.state === 'running')
      const wanted = desiredTaskCount(service, tasks)
      if (running.length >= wanted) return
      if (this.clock.now() >= deadline) {
        this.failureRows = await this.services.processList(this.name)
        throw new Error(`${running.length} of ${wanted} tasks of ${this.name} run after ${Math.round(limitMs / 1000)} s`)
      }
      await this.clock.sleep(POLL_MS, this.signal)
    }
  }

  /**
   * How long Swarm may take: for each batch of tasks, stop the old one (grace period), start the
   * new one (the health deadline bounds "starting"), watch it (monitor) and pause (delay); a
   * rollback takes as long again.
   */
  private convergenceDeadlineMs(rollout: Rollout): number {
    const batches = rollout.parallelism === 0 ? 1 : Math.ceil(rollout.tasks / rollout.parallelism)
    const perBatch = rollout.stopGraceMs + this.settings.health.deadlineMs + rollout.monitorMs + rollout.delayMs
    return 2 * Math.max(1, batches) * perBatch + 30_000
  }

  /**
   * The rollout of an update just sent to `previous`: the config overrides what the service had.
   * A replicated service keeps its replica count unless `swarm.replicas` sets one; a global one
   * runs a task on each eligible node, which only its tasks tell.
   */
  private async rolloutOfUpdate(previous: ServiceInfo): Promise<Rollout> {
    if (!previous.global) return this.rollout(previous, this.settings.swarm.replicas ?? previous.replicas ?? 1)
    return this.rollout(previous, Math.max(1, liveNodes(await this.services.tasks(this.name)).size))
  }

  /** The config's setting where it has one, else the service's own, else Swarm's default. */
  private rollout(service: ServiceInfo | undefined, tasks: number): Rollout {
    const { swarm, container } = this.settings
    const own = service?.rollout ?? {}
    return {
      tasks,
      parallelism: swarm.parallelism ?? own.parallelism ?? SWARM_DEFAULT_PARALLELISM,
      delayMs: swarm.delayMs ?? own.delayMs ?? 0,
      monitorMs: swarm.monitorMs ?? own.monitorMs ?? SWARM_DEFAULT_MONITOR_MS,
      stopGraceMs: container.stopTimeoutMs ?? own.stopGraceMs ?? SWARM_DEFAULT_STOP_GRACE_MS
    }
  }

  /** The last log lines of the newest task that ran the failed release, or of the whole service. */
  private async failedLogs(): Promise<string> {
    const tasks = await this.services.tasks(this.name)
    const tag = this.switched?.tag
    const ofRelease = tasks.filter((candidate) => tag !== undefined && imageTag(candidate.image) === tag)
    // A replacement task that Swarm shut down before it started has no container and no output.
    const task =
      ofRelease.find((candidate) => TASK_FAILED_STATES.has(candidate.state) && candidate.containerId) ??
      ofRelease.find((candidate) => candidate.containerId) ??
      ofRelease[0]
    // The container's own log when it is on this node: `docker service logs` of a task that has
    // just exited often comes back empty, as it streams through the log broker of the swarm.
    let logs = task?.containerId ? await this.docker.containerLogs(task.containerId, FAILED_LOG_LINES) : ''
    if (!logs || /no such container/i.test(logs)) logs = await this.services.logs(task?.id ?? this.name, FAILED_LOG_LINES)
    return logs.split('\n').slice(-FAILED_LOG_LINES).join('\n')
  }

  private spec(release: Release, options: { withCommit: boolean }): ServiceSpec {
    return {
      name: this.name,
      imageRef: release.imageRef ?? `${this.settings.image}:${release.tag}`,
      container: this.settings.container,
      swarm: this.settings.swarm,
      labels: releaseLabels(this.settings, release, options),
      failureAction: this.settings.rollback.onFailure ? 'rollback' : 'pause'
    }
  }

  private secretEnv(): Record<string, string> {
    return secretEnvironment(this.settings.container.secrets)
  }

  /**
   * start-first starts the new task while the old one still runs. With host networking both want
   * the same port: the new task cannot bind it, and a health check on the port reaches the old task.
   */
  private warnAboutStartFirst(): void {
    if (this.warnedStartFirst || this.settings.swarm.order !== 'start-first' || this.settings.container.network !== 'host') return
    this.warnedStartFirst = true
    core.warning(
      'swarm.order is start-first with container.network host: the new task starts while the old one still holds the port, so it cannot bind it and the health check reaches the old task. Use stop-first, or an overlay network with published ports.',
      { title: 'Deploy · swarm' }
    )
  }
}

/**
 * A StateProbe for a service's tasks: `ready` when as many tasks run the service's current image
 * as it has replicas (for a global service: when every node Swarm runs a task on runs one of that
 * image), `starting` while fewer do, `failed` when a task of that image fails (or is rejected)
 * after the probe first looked, which catches a crash even when Swarm has already restarted the
 * task. Also `failed`, at the first look, when Swarm paused the update or its rollback part way
 * (the tasks run a mix; the detail says what runs), or when the service runs no task at all.
 * Reads at most every half second: each look costs two docker commands.
 */
export function serviceStateProbe(services: ServiceClient, name: string, clock: SwarmClock = systemClock): StateProbe {
  let baselineFailed: Set<string> | undefined
  let service: ServiceInfo | undefined
  let last: { at: number; observation: StateObservation } | undefined
  return {
    async observe(signal?: AbortSignal): Promise<StateObservation> {
      signal?.throwIfAborted()
      if (last && clock.now() - last.at < POLL_MS) return last.observation
      const firstLook = service === undefined
      if (!service) {
        service = await services.inspect(name)
        if (!service) return { verdict: 'failed', detail: `the service ${name} no longer exists` }
      }
      const tasks = await services.tasks(name)
      baselineFailed ??= new Set(tasks.filter((task) => TASK_FAILED_STATES.has(task.state)).map((task) => task.id))
      const observation = (firstLook && unfinishedUpdate(service, tasks)) || describeTasks(name, tasks, service, baselineFailed)
      last = { at: clock.now(), observation }
      return observation
    }
  }
}

/** A paused update or rollback, as a failed verdict that says what the tasks run. */
function unfinishedUpdate(service: ServiceInfo, tasks: TaskInfo[]): StateObservation | undefined {
  const status = service.updateStatus
  if (!status || !UPDATE_PAUSED_STATES.has(status.state)) return undefined
  const what = status.state === 'paused' ? 'the update' : 'its rollback'
  return { verdict: 'failed', detail: `Swarm paused ${what} of ${service.name} part way (${status.message || 'no message'}); ${whatRuns(tasks)}` }
}

function describeTasks(name: string, tasks: TaskInfo[], service: ServiceInfo, baselineFailed: Set<string>): StateObservation {
  const { image } = service
  // Only tasks of the version being verified: a task of the version Swarm just rolled away from may
  // still turn from `shutdown` to `failed` or `rejected` while the restored one is checked.
  const newlyFailed = tasks.find((task) => TASK_FAILED_STATES.has(task.state) && !baselineFailed.has(task.id) && task.image === image)
  if (newlyFailed) {
    return { verdict: 'failed', detail: `the task ${newlyFailed.name} of ${name} ${newlyFailed.state}: ${newlyFailed.error || 'no error given'}` }
  }
  const wanted = desiredTaskCount(service, tasks)
  if (wanted === 0) return { verdict: 'failed', detail: `the service ${name} is scaled to 0 replicas: no task runs that could be shown healthy` }
  const runningTasks = tasks.filter((task) => task.desiredState === 'running' && task.state === 'running' && task.image === image)
  // A global service: every node with a task must run one of this image; one node's task is not the service.
  const running = service.global ? [...liveNodes(tasks)].filter((node) => runningTasks.some((task) => nodeOf(task) === node)).length : runningTasks.length
  const counted = `${running} of ${wanted} task${wanted === 1 ? '' : 's'} of ${name} running${service.global ? ' (one per node)' : ''}`
  if (running >= wanted) return { verdict: 'ready', detail: counted }
  const others = tasks.filter((task) => task.desiredState === 'running' && task.state !== 'running').map((task) => task.state)
  return { verdict: 'starting', detail: `${counted}${others.length > 0 ? ` (others: ${[...new Set(others)].join(', ')})` : ''}` }
}

/**
 * How many tasks the service runs when all is well: its replicas, or for a global service one per
 * node that Swarm runs a task on (at least one: a global service without a task has not started).
 */
function desiredTaskCount(service: ServiceInfo, tasks: TaskInfo[]): number {
  if (service.global) return Math.max(1, liveNodes(tasks).size)
  return service.replicas ?? 1
}

/** The nodes on which Swarm wants a task of the service to run now. */
function liveNodes(tasks: TaskInfo[]): Set<string> {
  return new Set(tasks.filter((task) => LIVE_DESIRED_STATES.has(task.desiredState)).map(nodeOf))
}

/** A task's node; a task not yet placed stands for a node of its own. */
function nodeOf(task: TaskInfo): string {
  return task.nodeId || `unplaced:${task.id}`
}

/** `2 tasks run v1, 1 runs v2`: the running tasks by version. */
function whatRuns(tasks: TaskInfo[]): string {
  const byTag = new Map<string, number>()
  for (const task of tasks) {
    if (task.desiredState !== 'running' || task.state !== 'running') continue
    const tag = imageTag(task.image) ?? withoutDigest(task.image)
    byTag.set(tag, (byTag.get(tag) ?? 0) + 1)
  }
  if (byTag.size === 0) return 'no task runs'
  const phrases = [...byTag].map(([tag, count], index) => {
    const verb = index === 0 ? (count === 1 ? 'task runs' : 'tasks run') : count === 1 ? 'runs' : 'run'
    return `${count} ${verb} ${tag}`
  })
  return phrases.join(', ')
}

/** `web.1 127.0.0.1:5000/acme/web:v2: Failed 3 seconds ago: task: non-zero exit (1)`, one task a line. */
export function describeTaskRows(rows: TaskRow[]): string {
  const withErrors = rows.filter((row) => row.error !== '')
  const shown = (withErrors.length > 0 ? withErrors : rows).slice(0, REPORTED_TASKS)
  if (shown.length === 0) return ''
  const lines = shown.map((row) => `${row.name} ${withoutDigest(row.image)}: ${row.currentState}${row.error ? `: ${row.error}` : ''}`)
  const more = (withErrors.length > 0 ? withErrors : rows).length - shown.length
  return `docker service ps --no-trunc (task errors):\n${lines.join('\n')}${more > 0 ? `\n… and ${more} more` : ''}`
}

/** The distinct errors of the tasks that ran `tag`, for one sentence. */
function taskErrorSummary(rows: TaskRow[], tag: string): string {
  const errors = rows.filter((row) => row.error !== '' && imageTag(row.image) === tag).map((row) => `${row.name}: ${row.error}`)
  return [...new Set(errors)].slice(0, 3).join('; ')
}

function withoutDigest(image: string): string {
  return image.split('@')[0] ?? image
}

function imageTag(image: string): string | undefined {
  return tagOfReference(image.split('@')[0] ?? image)
}
