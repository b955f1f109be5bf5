import { DockerClient } from './client.js'
import { DockerCommandError } from './runner.js'

/** A port of a service's endpoint, as `docker service inspect` shows it. */
export interface ServicePort {
  protocol: string
  targetPort: number
  publishedPort?: number
  publishMode?: string
}

/** Swarm's record of the last update: absent before the first `docker service update`. */
export interface UpdateStatus {
  /** `updating`, `paused`, `completed`, `rollback_started`, `rollback_paused` or `rollback_completed`. */
  state: string
  message: string
  startedAt: string
}

/**
 * How Swarm rolls an update out, as the service's spec holds it (`UpdateConfig`, and the
 * container's stop grace period). Each field is undefined when the spec leaves it out, which
 * means Swarm's default.
 */
export interface RolloutConfig {
  /** Tasks updated at once; 0 is all at once. */
  parallelism?: number
  delayMs?: number
  /** How long Swarm watches each new task for failure; 0 or unset means Swarm's default (5 s). */
  monitorMs?: number
  /** `pause`, `continue` or `rollback`. */
  failureAction?: string
  stopGraceMs?: number
}

/** The part of `docker service inspect` that the swarm strategy reads. */
export interface ServiceInfo {
  id: string
  name: string
  /** Service labels: where the action records the release (`deploy-action.*`). */
  labels: Record<string, string>
  /** Image of the task template, as Swarm resolved it (`repo:tag@sha256:…` when a registry answered). */
  image: string
  env: string[]
  containerLabels: Record<string, string>
  mountTargets: string[]
  ports: ServicePort[]
  args: string[]
  /** Desired tasks of a replicated service; undefined for a global one. */
  replicas?: number
  /** A global service runs one task on every eligible node; how many that is, only its tasks tell. */
  global: boolean
  rollout: RolloutConfig
  updateStatus?: UpdateStatus
}

/** One task of a service, from `docker inspect --type task`. */
export interface TaskInfo {
  id: string
  /** `web.1`: service name and slot, as `docker service ps` names it. */
  name: string
  /** `running` or `shutdown`: what Swarm wants this task to be. */
  desiredState: string
  /** What it is: `new` … `starting`, `running`, `complete`, `shutdown`, `failed`, `rejected`, `orphaned`… */
  state: string
  /** Swarm's error for a failed or rejected task, e.g. `task: non-zero exit (1)`. */
  error: string
  image: string
  /** When the task entered its current state. */
  timestamp: string
  /** The task's container, on whichever node runs it; empty before it was created. */
  containerId: string
  /** The node Swarm put the task on; empty before it was scheduled. */
  nodeId: string
}

/** One row of `docker service ps --no-trunc`, for the report. */
export interface TaskRow {
  name: string
  image: string
  desiredState: string
  currentState: string
  error: string
}

const NO_SUCH_SERVICE = /no such (service|task)|not found/i

/**
 * The Swarm service commands. Each one goes through `DockerClient.exec`, the one door to docker,
 * so dry runs, secrets (`env` of the docker client, never argv), timeouts and error messages work
 * exactly as for containers.
 */
export class ServiceClient {
  constructor(private readonly docker: DockerClient) {}

  /** The service's spec and update status, or undefined when there is no such service. */
  async inspect(name: string): Promise<ServiceInfo | undefined> {
    const argv = ['service', 'inspect', name]
    const result = await this.docker.exec(argv, { allowFailure: true, timeoutMs: 30_000 })
    if (result.exitCode !== 0) {
      if (NO_SUCH_SERVICE.test(result.stderr)) return undefined
      throw new DockerCommandError(argv, result)
    }
    const [raw] = JSON.parse(result.stdout || '[]') as RawService[]
    return raw ? serviceInfoOf(raw) : undefined
  }

  /** `docker service create` from a prepared argv (see `service-args.ts`); secrets come from `secretEnv`. Returns the id docker printed. */
  async create(createArgv: string[], secretEnv: Record<string, string>): Promise<string> {
    const result = await this.docker.exec(createArgv, { env: secretEnv, mutates: true, timeoutMs: 120_000 })
    return result.stdout.trim().split('\n').pop()?.trim() ?? ''
  }

  /** `docker service update` from a prepared argv; returns once Swarm accepted it (`--detach`). */
  async update(updateArgv: string[], secretEnv: Record<string, string>): Promise<void> {
    await this.docker.exec(updateArgv, { env: secretEnv, mutates: true, timeoutMs: 120_000 })
  }

  /** Removes the service; a missing service is not an error. */
  async remove(name: string): Promise<void> {
    const argv = ['service', 'rm', name]
    const result = await this.docker.exec(argv, { mutates: true, allowFailure: true, timeoutMs: 60_000 })
    if (result.exitCode !== 0 && !NO_SUCH_SERVICE.test(result.stderr)) throw new DockerCommandError(argv, result)
  }

  /** Every task Swarm still remembers for the service (the history limit applies), newest first. */
  async tasks(name: string): Promise<TaskInfo[]> {
    const listed = await this.docker.exec(['service', 'ps', '--no-trunc', '--quiet', name], { timeoutMs: 30_000 })
    const ids = listed.stdout.split('\n').map((line) => line.trim()).filter(Boolean)
    if (ids.length === 0) return []
    const argv = ['inspect', '--type', 'task', ...ids]
    const result = await this.docker.exec(argv, { allowFailure: true, timeoutMs: 30_000 })
    // A task pruned between the two commands makes inspect fail for that id only; it still prints the others.
    if (result.exitCode !== 0 && !result.stdout.trim().startsWith('[')) throw new DockerCommandError(argv, result)
    const raw = JSON.parse(result.stdout) as RawTask[]
    return raw
      .map((task) => ({
        id: task.ID,
        name: `${name}.${task.Slot ?? task.NodeID ?? '?'}`,
        desiredState: task.DesiredState ?? '',
        state: task.Status?.State ?? '',
        error: task.Status?.Err ?? '',
        image: task.Spec?.ContainerSpec?.Image ?? '',
        timestamp: task.Status?.Timestamp ?? '',
        containerId: task.Status?.ContainerStatus?.ContainerID ?? '',
        nodeId: task.NodeID ?? ''
      }))
      // Parsed, not compared as text: Go trims trailing zeros of the fraction (`02.1Z` is after `02.14Z` as text).
      .sort((a, b) => (Date.parse(b.timestamp) || 0) - (Date.parse(a.timestamp) || 0))
  }

  /** `docker service ps --no-trunc`, row by row, for the report: it names each task's error in full. */
  async processList(name: string): Promise<TaskRow[]> {
    const result = await this.docker.exec(['service', 'ps', '--no-trunc', '--format', '{{json .}}', name], {
      allowFailure: true,
      timeoutMs: 30_000
    })
    if (result.exitCode !== 0) return []
    return result.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as RawTaskRow)
      .map((row) => ({
        name: (row.Name ?? '').replace(/^\\_\s*/, '').trim(),
        image: row.Image ?? '',
        desiredState: row.DesiredState ?? '',
        currentState: row.CurrentState ?? '',
        error: (row.Error ?? '').replace(/^"|"$/g, '')
      }))
  }

  /** The last lines of one task's (or the whole service's) output. */
  async logs(serviceOrTask: string, tail: number): Promise<string> {
    const result = await this.docker.exec(['service', 'logs', '--no-trunc', '--tail', String(tail), serviceOrTask], {
      allowFailure: true,
      timeoutMs: 30_000
    })
    return (result.stdout + result.stderr).trimEnd()
  }
}

/** Raw shape of `docker service inspect`, only the fields read here. */
interface RawService {
  ID: string
  Spec: {
    Name: string
    Labels?: Record<string, string> | null
    TaskTemplate?: {
      ContainerSpec?: {
        Image?: string
        Env?: string[] | null
        Labels?: Record<string, string> | null
        Mounts?: { Target?: string }[] | null
        Args?: string[] | null
        /** Nanoseconds. */
        StopGracePeriod?: number
      }
    }
    Mode?: { Replicated?: { Replicas?: number }; Global?: object }
    /** Durations in nanoseconds; Swarm omits zero ones. */
    UpdateConfig?: { Parallelism?: number; Delay?: number; Monitor?: number; FailureAction?: string }
    EndpointSpec?: { Ports?: { Protocol?: string; TargetPort?: number; PublishedPort?: number; PublishMode?: string }[] | null }
  }
  UpdateStatus?: { State?: string; Message?: string; StartedAt?: string }
}

interface RawTask {
  ID: string
  Slot?: number
  NodeID?: string
  DesiredState?: string
  Status?: { State?: string; Err?: string; Timestamp?: string; ContainerStatus?: { ContainerID?: string } }
  Spec?: { ContainerSpec?: { Image?: string } }
}

interface RawTaskRow {
  Name?: string
  Image?: string
  DesiredState?: string
  CurrentState?: string
  Error?: string
}

function serviceInfoOf(raw: RawService): ServiceInfo {
  const container = raw.Spec.TaskTemplate?.ContainerSpec ?? {}
  const status = raw.UpdateStatus
  return {
    id: raw.ID,
    name: raw.Spec.Name,
    labels: raw.Spec.Labels ?? {},
    image: container.Image ?? '',
    env: container.Env ?? [],
    containerLabels: container.Labels ?? {},
    mountTargets: (container.Mounts ?? []).map((mount) => mount.Target ?? '').filter(Boolean),
    ports: (raw.Spec.EndpointSpec?.Ports ?? []).map((port) => ({
      protocol: port.Protocol ?? 'tcp',
      targetPort: port.TargetPort ?? 0,
      publishedPort: port.PublishedPort,
      publishMode: port.PublishMode
    })),
    args: container.Args ?? [],
    replicas: raw.Spec.Mode?.Replicated ? (raw.Spec.Mode.Replicated.Replicas ?? 1) : undefined,
    global: raw.Spec.Mode?.Global !== undefined,
    rollout: rolloutOf(raw.Spec),
    // Absent until the first update: a service that was only ever created has no update status.
    updateStatus: status?.State ? { state: status.State, message: status.Message ?? '', startedAt: status.StartedAt ?? '' } : undefined
  }
}

/** The spec's rollout settings; a spec without an UpdateConfig leaves every one to Swarm's defaults. */
function rolloutOf(spec: RawService['Spec']): RolloutConfig {
  const update = spec.UpdateConfig
  const grace = spec.TaskTemplate?.ContainerSpec?.StopGracePeriod
  const ms = (nanoseconds: number | undefined): number | undefined => (nanoseconds === undefined ? undefined : nanoseconds / 1e6)
  return {
    ...(update && { parallelism: update.Parallelism ?? 0 }),
    ...(update?.Delay !== undefined && { delayMs: ms(update.Delay) }),
    ...(update?.Monitor !== undefined && { monitorMs: ms(update.Monitor) }),
    ...(update?.FailureAction !== undefined && { failureAction: update.FailureAction }),
    ...(grace !== undefined && { stopGraceMs: ms(grace) })
  }
}
