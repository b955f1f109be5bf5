import * as core from '@actions/core'
import type { Clock } from '../dependencies.js'
import type { ContainerEvent, ContainerInfo, DockerClient } from '../docker/client.js'
import type { DockerStream } from '../docker/runner.js'

/** What one look at the workload's runtime state says. */
export type StateObservation = {
  /** `ready`: running (and healthy, when it has a HEALTHCHECK); `starting`: not yet; `failed`: it will not get better. */
  verdict: 'ready' | 'starting' | 'failed'
  /** One sentence for the transcript and, on failure, the verdict's reason. */
  detail: string
}

/**
 * Reads the runtime state of a just-started workload. `observe` is all a deploy strategy must
 * supply (a plain container, a Swarm service); it may throw when the state cannot be read (docker
 * unreachable), and `verifyHealth` retries a few times before giving up. A probe that follows the
 * workload by events adds `nextChange` and `close`; one without them is polled.
 */
export interface StateProbe {
  observe(signal?: AbortSignal): Promise<StateObservation>
  /**
   * Resolves `changed` when the state may have changed since the last `observe` (observe again
   * now), or `poll` when the probe has no live event source (any more), so the caller reads again
   * after its poll interval. Also resolves (`poll`) when `signal` aborts; never rejects.
   */
  nextChange?(signal: AbortSignal): Promise<'changed' | 'poll'>
  /** Ends what the probe keeps running for `nextChange` (its event stream). Safe to call twice. */
  close?(): void
}

/** A StateProbe for one container, which can also tell what its event stream saw of others. */
export interface ContainerStateProbe extends StateProbe {
  /**
   * A companion (see `containerStateProbe`) that is known to run: it ran at the first read, and the
   * event stream, which delivered events from before then until the probe was closed, said
   * nothing of it since. Undefined when that is not known: then it must be read.
   */
  knownRunning(name: string): ContainerInfo | undefined
  /**
   * Starts the event stream before the container starts, right after docker created it (`id`, as
   * create returned it): then a process that dies at once is known from its `die` event the moment
   * docker reports it, without waiting for a first read. The owner must `close` the probe on every
   * path (the health check closes it when it ends).
   */
  followFromCreation(id: string): void
  close(): void
}

/**
 * A StateProbe for one container: `docker container inspect` once, then, while `observe` is
 * given a signal (a verification that ends), one `docker events` stream filtered to the container
 * (and its companions) until that signal aborts or `close` is called. Or the stream begins
 * earlier, at the container's create (`followFromCreation`), and lasts until `close`.
 *
 * Failed when the container is gone, exited or dead (with its exit code, docker's own error such
 * as a port already in use, and OOMKilled), paused, restarting, or when its restart count grew
 * since the first observation: with a restart policy a crashing process may be running again by
 * the time we look, and only the counter shows it crashed. `starting` while its HEALTHCHECK says
 * so, failed on `unhealthy`, and ready when running (and `healthy` if it has a HEALTHCHECK).
 *
 * With the stream, no command runs until an event says something changed, and most events say
 * enough by themselves: a `die` gives the exit code (OOMKilled when an `oom` came before it, as
 * docker's own flag), `health_status` the new status, `pause` and `destroy` what happened. So a
 * crash is a verdict the moment docker reports it, with no read in between (the proxy's switch
 * back is then the first docker command). `restart`, `rename` and anything unexpected make the
 * next `observe` read the container again. When the stream cannot start or ends by itself (an
 * engine without it, a dropped SSH connection), the next `observe` reads and the caller polls:
 * what the probe last saw is never taken for what is.
 *
 * `companions` are followed on the same stream for `knownRunning` (the proxy's old slot).
 */
export function containerStateProbe(docker: DockerClient, containerName: string, options: { companions?: readonly string[] } = {}): ContainerStateProbe {
  return new ContainerProbe(docker, containerName, options.companions ?? [])
}

class ContainerProbe implements ContainerStateProbe {
  private baselineRestartCount: number | undefined
  /** The last read, with what events said since (a HEALTHCHECK status). */
  private info: ContainerInfo | undefined
  /** A failure an event showed: it will not get better. */
  private final: StateObservation | undefined
  /** The next `observe` must read: nothing read yet, an event that needs detail, or no live stream. */
  private stale = true
  /** Counts events that need a read, so that one coming during a read is not lost. */
  private generation = 0
  /** Something happened since the last `observe`. */
  private changed = false
  /** An `oom` came for the container: docker's OOMKilled flag of its next exit. */
  private oomSeen = false
  private stream: DockerStream | undefined
  /** The stream runs and has not ended by itself. */
  private streaming = false
  /** The stream ended by itself, or could not start: nothing it did not say can be trusted. */
  private lost = false
  /** An event arrived: the stream was subscribed, so it delivered every event up to that one. */
  private delivered = false
  private closed = false
  private readonly companionInfo = new Map<string, ContainerInfo>()
  private readonly waiters = new Set<(result: 'changed' | 'poll') => void>()
  /** The container's id from its create, when the stream began before any read (`followFromCreation`). */
  private createdId: string | undefined
  /** The first read (with the companions) has been made. */
  private readOnce = false
  /** Resolves when an event has given a final verdict: a read in flight need not be waited for. */
  private finalSeen: (observation: StateObservation) => void = () => undefined
  private readonly finalReached = new Promise<StateObservation>((resolve) => (this.finalSeen = resolve))

  constructor(
    private readonly docker: DockerClient,
    private readonly containerName: string,
    private readonly companions: readonly string[]
  ) {}

  async observe(signal?: AbortSignal): Promise<StateObservation> {
    signal?.throwIfAborted()
    this.changed = false
    if (this.final) return this.final
    if (!this.stale && this.streaming && this.info && this.baselineRestartCount !== undefined) {
      return describeContainerState(this.info, this.baselineRestartCount)
    }
    const generation = this.generation
    const first = !this.readOnce
    const names = first ? [this.containerName, ...this.companions.filter((name) => name !== this.containerName)] : [this.containerName]
    const reading = this.docker.inspectContainers(names)
    // A stream that began at the create may give the verdict (a die) while the read is under way.
    const read = this.stream ? await Promise.race([reading, this.finalReached]) : await reading
    if (!Array.isArray(read)) {
      reading.catch(() => undefined)
      return read
    }
    const [info, ...others] = read
    this.readOnce = true
    if (first) {
      others.forEach((other, index) => {
        const name = names[index + 1] as string
        if (other?.running) this.companionInfo.set(name, other)
      })
    }
    // An event that needs a read came during this one: read again at the next look.
    this.stale = generation !== this.generation || !this.streaming
    if (this.final) return this.final
    if (!info) {
      this.info = undefined
      return { verdict: 'failed', detail: `the container ${this.containerName} no longer exists` }
    }
    this.info = info
    this.baselineRestartCount ??= info.restartCount
    const observation = describeContainerState(info, this.baselineRestartCount)
    if (observation.verdict !== 'failed' && signal && !this.stream && !this.closed) this.follow(info, signal)
    return observation
  }

  nextChange(signal: AbortSignal): Promise<'changed' | 'poll'> {
    if (this.changed) return Promise.resolve('changed')
    if (!this.streaming || signal.aborted) return Promise.resolve('poll')
    return new Promise((resolve) => {
      const done = (result: 'changed' | 'poll'): void => {
        this.waiters.delete(done)
        signal.removeEventListener('abort', onAbort)
        resolve(result)
      }
      const onAbort = (): void => done('poll')
      this.waiters.add(done)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  close(): void {
    this.closed = true
    this.streaming = false
    this.stream?.stop()
    this.wake('poll')
  }

  knownRunning(name: string): ContainerInfo | undefined {
    if (this.lost || !this.delivered) return undefined
    return this.companionInfo.get(name)
  }

  /** Starts the one event stream, for as long as `signal` (the verification) lasts. */
  private follow(info: ContainerInfo, signal: AbortSignal): void {
    const ids = [info.id, ...this.companions.map((name) => this.companionInfo.get(name)?.id)].filter((id): id is string => Boolean(id))
    const filter = [...new Set([this.containerName, ...this.companions, ...ids])]
    // Events since the container's last start: none between the read above and the stream's start is missed.
    const since = /^\d{4}-/.test(info.startedAt) && !info.startedAt.startsWith('0001-') ? info.startedAt : undefined
    if (!this.attach(filter, since, signal)) this.lost = true
    else this.stale = false
  }

  followFromCreation(id: string): void {
    if (this.stream || this.closed) return
    this.createdId = id
    // By id only: the name changes at the switch (`web-next` becomes `web`), the id does not, and
    // no other container ever had it. `--since 1` replays what docker still holds of it (its
    // rename, a `die` before the stream was subscribed); the first read stays the safety net.
    this.attach([id], '1', undefined, { fromCreation: true })
  }

  /** Starts the one event stream; false when there is none (a runner that cannot stream). */
  private attach(filter: string[], since: string | undefined, signal: AbortSignal | undefined, options: { fromCreation?: boolean } = {}): boolean {
    let stream: DockerStream | undefined
    try {
      stream = this.docker.containerEvents(filter, { ...(since && { since }), ...(signal && { signal }), onEvent: (event) => this.onEvent(event) })
    } catch (error) {
      core.debug(`health: no event stream for ${this.containerName} (${error instanceof Error ? error.message : String(error)}); polling`)
    }
    if (!stream) return false
    this.stream = stream
    this.streaming = true
    void stream.ended.then((end) => {
      this.streaming = false
      // Only the end of the verification ends it on purpose; anything else is a lost stream.
      if (this.closed || signal?.aborted) return
      if (options.fromCreation && !this.readOnce && this.stream === stream) {
        // Lost during the switch (an SSH drop while the old version stopped), before any read:
        // the first read starts the stream again, from the container's start, as without it.
        core.debug(`health: the event stream for ${this.containerName} from its create ended (${end.stderr.trim() || `exit code ${end.exitCode ?? 'none'}`}); the first read starts it again`)
        this.stream = undefined
        return
      }
      core.debug(`health: the event stream for ${this.containerName} ended (${end.stderr.trim() || `exit code ${end.exitCode ?? 'none'}`}); polling`)
      this.lost = true
      this.stale = true
      this.changed = true
      this.wake()
    })
    return true
  }

  private onEvent(event: ContainerEvent): void {
    if (this.closed) return
    this.delivered = true
    const info = this.info
    // Docker matches a container filter as a prefix (`web` also brings `web-proxy`): match exactly.
    const isTarget = (info !== undefined && event.id === info.id) || event.id === this.createdId || event.name === this.containerName
    if (!isTarget) {
      for (const [name, companion] of this.companionInfo) {
        // Only a HEALTHCHECK or an OOM in a process that lives on leaves it known to run.
        if ((event.id === companion.id || event.name === name) && event.action !== 'health_status' && event.action !== 'oom') this.companionInfo.delete(name)
      }
      return
    }
    const name = this.containerName
    switch (event.action) {
      case 'health_status':
        if (info && (event.detail === 'starting' || event.detail === 'healthy' || event.detail === 'unhealthy')) this.info = { ...info, health: event.detail }
        else this.needsRead()
        break
      case 'oom':
        this.oomSeen = true
        break
      case 'kill':
        // A signal is sent; whether the process ends is told by the `die` that follows, if any.
        return
      case 'die': {
        const exitCode = Number.parseInt(event.attributes.exitCode ?? '', 10)
        if (!Number.isFinite(exitCode) || (!info && event.id !== this.createdId)) {
          this.needsRead()
          break
        }
        // Before the first read (a stream from the create), a die is a crash all the same: the
        // container was created by this run and started once, so no restart count can explain it.
        const known = info ?? notYetRead(event.id, name)
        const exited: ContainerInfo = { ...known, running: false, restarting: false, status: 'exited', exitCode, oomKilled: this.oomSeen, error: '' }
        this.final = describeContainerState(exited, this.baselineRestartCount ?? known.restartCount)
        break
      }
      case 'pause':
        this.final = { verdict: 'failed', detail: `the container ${name} is paused` }
        break
      case 'rename':
        // The switch's own rename (`web-next` to `web`) of the container followed since its create:
        // the name now holds what the probe follows, so there is nothing to read again.
        if (event.name === name && event.id === this.createdId) return
        this.needsRead()
        break
      case 'destroy':
        this.final = { verdict: 'failed', detail: `the container ${name} no longer exists` }
        break
      default:
        // `restart` (the count), anything new: read it.
        this.needsRead()
    }
    if (this.final) this.finalSeen(this.final)
    this.changed = true
    this.wake()
  }

  private needsRead(): void {
    this.generation++
    this.stale = true
  }

  private wake(result: 'changed' | 'poll' = 'changed'): void {
    for (const waiter of [...this.waiters]) waiter(result)
  }
}

/**
 * Follows `probe` until it says `failed`, and resolves with that observation; resolves undefined
 * once `signal` aborts. For waiting on something else (a proxy to boot) while the workload may
 * die: a read that fails (docker unreachable) is no verdict, so it looks again after `pollMs`,
 * and between looks it waits for the probe's next event when it has a stream. Never rejects.
 */
export async function untilStateFails(probe: StateProbe, options: { signal: AbortSignal; clock: Clock; pollMs: number }): Promise<StateObservation | undefined> {
  const { signal, clock, pollMs } = options
  while (!signal.aborted) {
    try {
      const seen = await probe.observe(signal)
      if (seen.verdict === 'failed') return seen
    } catch {
      // Unknown is not failed: look again.
    }
    const next = probe.nextChange ? await probe.nextChange(signal) : 'poll'
    if (next === 'poll') await clock.sleep(pollMs, signal).catch(() => undefined)
  }
  return undefined
}

/**
 * What a container's state says after its check failed, read once for the report: an exit, a
 * restart loop or an unhealthy HEALTHCHECK, in the probe's own words; undefined when it runs well
 * or is gone. An HTTP probe can see a crash a few ms before docker's `die` event reaches the
 * stream, and then this read names the cause the probe could not.
 */
export function describeStateAfterFailure(info: ContainerInfo | undefined): string | undefined {
  if (!info) return undefined
  const observation = describeContainerState(info, info.restartCount)
  return observation.verdict === 'failed' ? observation.detail : undefined
}

/** What is known of a container from its create alone: its id and name, nothing read yet. */
function notYetRead(id: string, name: string): ContainerInfo {
  return { id, name, image: '', imageId: '', labels: {}, status: 'created', running: false, restarting: false, exitCode: 0, error: '', oomKilled: false, startedAt: '', created: '', restartCount: 0 }
}

function describeContainerState(info: ContainerInfo, baselineRestartCount: number): StateObservation {
  const name = info.name
  if (info.restarting) {
    return { verdict: 'failed', detail: `the container ${name} is restarting after it ${exitDescription(info)}` }
  }
  if (info.restartCount > baselineRestartCount) {
    const times = info.restartCount - baselineRestartCount
    return {
      verdict: 'failed',
      detail: `the container ${name} restarted ${times} time${times === 1 ? '' : 's'} during the health check; it last ${exitDescription(info)}`
    }
  }
  if (!info.running || info.status === 'exited' || info.status === 'dead') {
    if (info.status === 'created') {
      return { verdict: 'failed', detail: `the container ${name} was created but did not start${info.error ? `: ${info.error}` : ''}` }
    }
    return { verdict: 'failed', detail: `the container ${name} ${exitDescription(info)}` }
  }
  if (info.status === 'paused') return { verdict: 'failed', detail: `the container ${name} is paused` }
  switch (info.health) {
    case 'starting':
      return { verdict: 'starting', detail: `the container ${name} is running; its HEALTHCHECK still reports starting` }
    case 'unhealthy':
      return { verdict: 'failed', detail: `the container ${name} is running but its HEALTHCHECK reports unhealthy` }
    case 'healthy':
      return { verdict: 'ready', detail: `the container ${name} is running and its HEALTHCHECK reports healthy` }
    default:
      return { verdict: 'ready', detail: `the container ${name} is running` }
  }
}

/** "exited with code 137 (killed for lack of memory, OOMKilled): <docker's error>" */
function exitDescription(info: ContainerInfo): string {
  const verb = info.status === 'dead' ? 'died' : 'exited'
  let text = `${verb} with code ${info.exitCode}`
  if (info.oomKilled) text += ' (killed for lack of memory, OOMKilled)'
  else if (info.exitCode > 128 && info.exitCode < 160) text += ` (killed by signal ${info.exitCode - 128})`
  if (info.error) text += `: ${info.error}`
  return text
}
