import * as core from '@actions/core'
import { setTimeout as sleep } from 'node:timers/promises'
import type { DockerClient } from '../docker/client.js'
import { CreatedObjects } from '../created.js'
import { secretEnvironment } from '../docker/run-args.js'
import { buildServiceCreateArgv, buildServiceUpdateArgv, type ServiceSpec } from '../docker/service-args.js'
import { ServiceClient, type ServiceInfo, type TaskInfo, type TaskRow } from '../docker/service-client.js'
import type { StateObservation, StateProbe } from '../health/state-probe.js'
import { sameRelease, type DeploySettings, type Release } from '../settings.js'
import { releaseLabels, releaseOf, tagOfReference } from './release-labels.js'
import { SwitchNotStartedError, type DeployStrategy, type FailureEvidence, type RestoreMethod } from './strategy.js'

/** How many log lines of a failed task the report keeps. */
const FAILED_LOG_LINES = 50
/** At most this many task rows in the report: enough to show a crash loop, not a wall of it. */
const REPORTED_TASKS = 10
/** Swarm's own defaults, for the convergence deadline when the config leaves them unset. */
const SWARM_DEFAULT_MONITOR_MS = 5_000
const SWARM_DEFAULT_STOP_GRACE_MS = 10_000
/** Spacing of the reads while waiting for Swarm, and the least spacing of state-probe reads. */
const POLL_MS = 500

/** Update states after which Swarm does nothing more on its own. */
const UPDATE_FAILED_STATES = new Set(['paused', 'rollback_completed', 'rollback_paused'])
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
 * `strategy: swarm`: the app is a Swarm service on a manager node. The first deploy creates it;
 * later ones update its image, with `--update-failure-action rollback` so that Swarm itself puts
 * the previous spec back when a task fails during the update. `docker service update` returns
 * before that happens (and even with `--detach=false` it exits 0 after a rollback), so the outcome
 * is read from the service's `UpdateStatus`, and the task errors from `docker service ps`.
 *
 * The release is recorded in service labels (`deploy-action.*`). They are part of the spec, so a
 * rollback by Swarm restores them too, and `current()` always names what the tasks run.
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

  async current(): Promise<Release | undefined> {
    const service = await this.services.inspect(this.name)
    if (!service) return undefined
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
    await this.update(service, release, { withCommit: true })
  }

  stateProbe(): StateProbe {
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
   * update back to exactly that release, it is kept as it is. Without a target (nothing ran
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

  /** True when the service holds `target`'s labels (Swarm rolled back to it) and is not mid-update. */
  private alreadyRuns(service: ServiceInfo, target: Release): boolean {
    if (!sameRelease(releaseOf(service.labels, service.image), target)) return false
    // Tasks that are still starting are fine: the verification after the restore waits for them.
    return !(service.updateStatus && ['updating', 'rollback_started'].includes(service.updateStatus.state))
  }

  /** Sends the update and waits for Swarm's verdict on it. */
  private async update(service: ServiceInfo, release: Release, options: { withCommit: boolean }): Promise<void> {
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
    await this.waitForUpdate(release, before)
  }

  /**
   * Waits until Swarm ends the update. `completed` is success; `paused` or a rollback is a failed
   * deploy, with the task errors. A status that began before our update is the last deploy's, not
   * ours (Swarm clears it when it accepts an update, but this does not rely on that).
   */
  private async waitForUpdate(release: Release, previousStartedAt: string | undefined): Promise<void> {
    const deadline = this.clock.now() + this.convergenceDeadlineMs()
    for (;;) {
      const service = await this.services.inspect(this.name)
      if (!service) throw new Error(`the service ${this.name} disappeared during the update`)
      const status = service.updateStatus
      const ours = status && status.startedAt !== previousStartedAt
      if (ours && status.state === 'completed') return
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
        throw new Error(
          `Swarm did not finish the update of ${this.name} within ${Math.round(this.convergenceDeadlineMs() / 1000)} s (update status: ${status?.state ?? 'none yet'})`
        )
      }
      await this.clock.sleep(POLL_MS, this.signal)
    }
  }

  /**
   * After a create: waits until every replica runs. A created service has no UpdateStatus, and
   * Swarm restarts a failing task forever, so the first failed task of the release ends the wait.
   */
  private async waitForTasks(release: Release): Promise<void> {
    const deadline = this.clock.now() + this.convergenceDeadlineMs()
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
      if (running.length >= (service.replicas ?? 1)) return
      if (this.clock.now() >= deadline) {
        this.failureRows = await this.services.processList(this.name)
        throw new Error(`${running.length} of ${service.replicas ?? 1} tasks of ${this.name} run after ${Math.round(this.convergenceDeadlineMs() / 1000)} s`)
      }
      await this.clock.sleep(POLL_MS, this.signal)
    }
  }

  /**
   * How long Swarm may take: for each batch of tasks, stop the old one (grace period), start the
   * new one (the health deadline bounds "starting"), watch it (monitor) and pause (delay); a
   * rollback takes as long again.
   */
  private convergenceDeadlineMs(): number {
    const { swarm, container, health } = this.settings
    const replicas = swarm.replicas ?? 1
    const batches = swarm.parallelism === 0 ? 1 : Math.ceil(replicas / (swarm.parallelism ?? 1))
    const perBatch =
      (container.stopTimeoutMs ?? SWARM_DEFAULT_STOP_GRACE_MS) + health.deadlineMs + (swarm.monitorMs ?? SWARM_DEFAULT_MONITOR_MS) + (swarm.delayMs ?? 0)
    return 2 * batches * perBatch + 30_000
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
      labels: releaseLabels(this.settings, release, options)
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
 * as it has replicas, `starting` while fewer do, `failed` when a task of that image fails (or is
 * rejected) after the probe first looked, which catches a crash even when Swarm has already
 * restarted the task.
 * Reads at most every half second: each look costs two docker commands.
 */
export function serviceStateProbe(services: ServiceClient, name: string, clock: SwarmClock = systemClock): StateProbe {
  let baselineFailed: Set<string> | undefined
  let replicas: number | undefined
  let image = ''
  let last: { at: number; observation: StateObservation } | undefined
  return {
    async observe(signal?: AbortSignal): Promise<StateObservation> {
      signal?.throwIfAborted()
      if (last && clock.now() - last.at < POLL_MS) return last.observation
      if (replicas === undefined) {
        const service = await services.inspect(name)
        if (!service) return { verdict: 'failed', detail: `the service ${name} no longer exists` }
        replicas = service.replicas ?? 1
        image = service.image
      }
      const tasks = await services.tasks(name)
      baselineFailed ??= new Set(tasks.filter((task) => TASK_FAILED_STATES.has(task.state)).map((task) => task.id))
      const observation = describeTasks(name, tasks, replicas, image, baselineFailed)
      last = { at: clock.now(), observation }
      return observation
    }
  }
}

function describeTasks(name: string, tasks: TaskInfo[], replicas: number, image: string, baselineFailed: Set<string>): StateObservation {
  // Only tasks of the version being verified: a task of the version Swarm just rolled away from may
  // still turn from `shutdown` to `failed` or `rejected` while the restored one is checked.
  const newlyFailed = tasks.find((task) => TASK_FAILED_STATES.has(task.state) && !baselineFailed.has(task.id) && task.image === image)
  if (newlyFailed) {
    return { verdict: 'failed', detail: `the task ${newlyFailed.name} of ${name} ${newlyFailed.state}: ${newlyFailed.error || 'no error given'}` }
  }
  const running = tasks.filter((task) => task.desiredState === 'running' && task.state === 'running' && task.image === image).length
  if (running >= replicas) return { verdict: 'ready', detail: `${running} of ${replicas} task${replicas === 1 ? '' : 's'} of ${name} running` }
  const others = tasks.filter((task) => task.desiredState === 'running' && task.state !== 'running').map((task) => task.state)
  return {
    verdict: 'starting',
    detail: `${running} of ${replicas} task${replicas === 1 ? '' : 's'} of ${name} running${others.length > 0 ? ` (others: ${[...new Set(others)].join(', ')})` : ''}`
  }
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
