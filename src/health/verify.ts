import { setTimeout as sleepFor } from 'node:timers/promises'
import type { HealthSettings } from '../settings.js'
import { describeProbeFailure, formatSeconds, probeHttp, type HttpProbeResult } from './http-probe.js'
import type { StateObservation, StateProbe } from './state-probe.js'
import { BoundedTranscript, type ProbeRecord } from './transcript.js'

/** Time source and timer; injectable so callers (and tests) can control waiting. */
export interface HealthClock {
  /** Milliseconds since the epoch (only differences are used, so any origin works). */
  now(): number
  /** Waits `ms`, or less when `signal` aborts. May resolve or reject on abort; both are handled. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}

export interface HealthVerdict {
  healthy: boolean
  /** One sentence a person can act on. `cancelled` when the signal aborted. */
  reason: string
  /** Probe records in order; see `transcriptDropped`. */
  transcript: ProbeRecord[]
  /**
   * Records left out between the first 20 and the last 80 of the transcript; absent or 0 when
   * none. Optional so that verdicts made elsewhere (a step that failed before probing) need not say it.
   */
  transcriptDropped?: number
  /** From the start of verification to the verdict. */
  durationMs: number
  /** `start` until the workload first counts as healthy, `watch` afterwards (when `watchMs > 0`). */
  phase: 'start' | 'watch'
}

/** One HTTP probe, judged against the settings (see `probeHttp`); never throws. */
export type HttpProbe = (url: string, settings: HealthSettings, signal?: AbortSignal) => Promise<HttpProbeResult>

export interface VerifyHealthOptions {
  /** The workload's runtime state (a container, a Swarm service). */
  state: StateProbe
  /**
   * HTTP probing; `url` is the resolved URL (`{host}` already replaced). Without it only the state
   * is checked. `probe` replaces the direct request (the proxy strategy probes a slot from inside
   * the proxy container, where the slot's address is reachable).
   */
  http?: { url: string; settings: HealthSettings; probe?: HttpProbe }
  settings: HealthSettings
  signal?: AbortSignal
  clock?: HealthClock
  /** How often a state without events is read, independent of `intervalMs`; see `STATE_POLL_MS`. */
  statePollMs?: number
}

/**
 * Default spacing of state reads (start to start) when the probe has no event stream (Swarm, an
 * engine or connection where `docker events` failed). A crash must be seen within about half a
 * second, not at the next HTTP interval; one `docker container inspect` costs tens of ms, so
 * reading more often than this would mostly burn CPU next to the workload that is starting.
 */
export const STATE_POLL_MS = 150

/** The state could not be read this many times in a row: give up rather than wait for the deadline blind. */
const MAX_CONSECUTIVE_STATE_ERRORS = 3

const systemClock: HealthClock = {
  // Monotonic, so a wall-clock step during a deploy cannot stretch or cut the deadline.
  now: () => performance.timeOrigin + performance.now(),
  sleep: (ms, signal) => sleepFor(ms, undefined, { signal })
}

/**
 * Decides whether a just-started workload is healthy, and keeps a transcript of how it got there.
 *
 * - The state is read once, then again whenever the probe's events say it changed (see
 *   `StateProbe.nextChange`); a probe without events, or whose stream ended, is read every
 *   `statePollMs` (150 ms), independently of HTTP. A `failed` observation ends verification at
 *   once, so a crash is reported as docker reports it (polling: within about half a second). The
 *   probe's stream ends with the verification, whatever ends it.
 * - HTTP probes run every `intervalMs` (start to start). Until healthy, any HTTP failure (refused,
 *   reset, timeout, wrong status or body) only means "still starting" and resets the count of
 *   consecutive successes; `deadlineMs` decides.
 * - Healthy: the latest state is `ready` and the last `healthyThreshold` HTTP probes succeeded.
 *   Without a URL: every state read for `healthyThreshold × intervalMs` since the first `ready` one
 *   was `ready`, so a process that dies right after starting is not declared healthy.
 * - Then, when `watchMs > 0`, probing goes on for `watchMs`; any HTTP failure or a state other
 *   than `ready` fails with phase `watch`.
 * - Aborting `signal` stops at once with `healthy: false` and reason `cancelled`.
 *
 * Never throws for anything the workload does; state read errors are retried, then reported.
 */
export async function verifyHealth(options: VerifyHealthOptions): Promise<HealthVerdict> {
  const { settings, state, http } = options
  const clock = options.clock ?? systemClock
  const statePollMs = options.statePollMs ?? STATE_POLL_MS
  const threshold = Math.max(1, settings.healthyThreshold)
  const shownUrl = http ? displayUrl(http.url) : ''

  const startedAt = clock.now()
  const elapsed = (): number => Math.max(0, Math.round(clock.now() - startedAt))
  const transcript = new BoundedTranscript()
  const stop = new AbortController()
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal
  const sleep = async (ms: number): Promise<void> => {
    if (ms <= 0 || signal.aborted) return
    await clock.sleep(ms, signal).catch(() => undefined)
  }

  let phase: 'start' | 'watch' = 'start'
  let verdict: { healthy: boolean; reason: string; phase: 'start' | 'watch'; durationMs: number } | undefined
  const finish = (healthy: boolean, reason: string): void => {
    if (verdict) return
    verdict = { healthy, reason, phase, durationMs: elapsed() }
    stop.abort()
  }
  const record = (entry: Omit<ProbeRecord, 'at' | 'elapsedMs'>, atMs: number): void => {
    // Anything that completes after the verdict (an aborted probe) is noise, not evidence.
    if (!verdict) transcript.add({ at: new Date(startedAt + atMs).toISOString(), elapsedMs: atMs, ...entry })
  }

  // What the state reads have shown.
  let lastState: StateObservation | undefined
  let lastStateKey: string | undefined
  let lastStateError: string | undefined
  let readySinceMs: number | undefined
  // What the HTTP probes have shown; counted here because the transcript is bounded.
  let consecutiveSuccesses = 0
  let lastSuccessStatus: number | undefined
  const startPhase = { probes: 0, successes: 0, failures: new Set<string>(), last: undefined as string | undefined }
  let healthyAtMs = 0
  let watchTimer: Promise<void> | undefined

  const healthySummary = (): string => {
    const stateText = lastState?.detail ?? 'the workload is ready'
    if (!http) {
      return `the workload was healthy after ${formatSeconds(healthyAtMs)}: ${stateText}, checked for ${formatSeconds(threshold * settings.intervalMs)} (no health URL, so only its state was checked)`
    }
    const probes = threshold === 1 ? 'a probe' : `${threshold} consecutive probes`
    return `the workload was healthy after ${formatSeconds(healthyAtMs)}: GET ${shownUrl} answered ${lastSuccessStatus ?? 'as expected'} on ${probes} and ${stateText}`
  }

  const becomeHealthy = (): void => {
    healthyAtMs = elapsed()
    if (settings.watchMs <= 0) return finish(true, healthySummary())
    phase = 'watch'
    watchTimer = sleep(settings.watchMs).then(() => {
      if (!signal.aborted) finish(true, `${healthySummary()}, and it stayed healthy for the ${formatSeconds(settings.watchMs)} watch`)
    })
  }

  const checkHealthy = (): void => {
    if (verdict || phase !== 'start' || lastState?.verdict !== 'ready') return
    if (http) {
      if (consecutiveSuccesses >= threshold) becomeHealthy()
    } else if (readySinceMs !== undefined && elapsed() - readySinceMs >= threshold * settings.intervalMs) {
      becomeHealthy()
    }
  }

  const sinceHealthy = (): string => `${formatSeconds(elapsed() - healthyAtMs)} after the workload was declared healthy`

  const onState = (observation: StateObservation, atMs: number): void => {
    lastStateError = undefined
    const key = `${observation.verdict}\n${observation.detail}`
    if (key !== lastStateKey) {
      lastStateKey = key
      record({ source: 'state', ok: observation.verdict === 'ready', detail: observation.detail }, atMs)
    }
    lastState = observation
    if (observation.verdict === 'ready') readySinceMs ??= atMs
    else readySinceMs = undefined

    if (observation.verdict === 'failed') {
      if (phase === 'watch') finish(false, `${observation.detail}, during the watch, ${sinceHealthy()}`)
      else finish(false, `${observation.detail} (${formatSeconds(elapsed())} after the health check began)`)
    } else if (phase === 'watch' && observation.verdict !== 'ready') {
      finish(false, `${observation.detail}, during the watch, ${sinceHealthy()}`)
    } else {
      checkHealthy()
    }
  }

  /**
   * After a good read, a probe that follows the workload by events is read again only when it says
   * something changed, or when the "no URL" rule's time in a row is up; otherwise it is polled.
   * True when the next read is due now.
   */
  const waitForChange = async (): Promise<boolean> => {
    if (!state.nextChange || signal.aborted) return false
    const waiting = new AbortController()
    const waitSignal = AbortSignal.any([signal, waiting.signal])
    const waits: Promise<'changed' | 'poll'>[] = [state.nextChange(waitSignal)]
    if (!http && phase === 'start' && lastState?.verdict === 'ready' && readySinceMs !== undefined) {
      const dueInMs = readySinceMs + threshold * settings.intervalMs - elapsed()
      waits.push(clock.sleep(Math.max(0, dueInMs), waitSignal).then(() => 'changed' as const, () => 'poll' as const))
    }
    try {
      return (await Promise.race(waits)) === 'changed'
    } finally {
      waiting.abort()
    }
  }

  const stateLoop = async (): Promise<void> => {
    let consecutiveErrors = 0
    while (!signal.aborted) {
      const atMs = elapsed()
      try {
        const observation = await untilAborted(state.observe(signal), signal)
        if (signal.aborted) break
        consecutiveErrors = 0
        onState(observation, atMs)
      } catch (error) {
        if (signal.aborted) break
        consecutiveErrors++
        const message = error instanceof Error ? error.message : String(error)
        lastStateError = message
        const key = `error\n${message}`
        if (key !== lastStateKey) {
          lastStateKey = key
          record({ source: 'state', ok: false, error: 'UNREADABLE', detail: `could not read the state: ${message}` }, atMs)
        }
        if (consecutiveErrors >= MAX_CONSECUTIVE_STATE_ERRORS) {
          finish(false, `could not read the workload's state ${consecutiveErrors} times in a row: ${message}`)
        }
      }
      // A read that failed is retried after the poll interval, events or not.
      if (consecutiveErrors === 0 && (await waitForChange())) continue
      await sleep(statePollMs - (elapsed() - atMs))
    }
  }

  const httpLoop = async (target: { url: string; settings: HealthSettings; probe?: HttpProbe }): Promise<void> => {
    const probe = target.probe ?? probeHttp
    while (!signal.aborted) {
      const atMs = elapsed()
      const result = await probe(target.url, target.settings, signal)
      if (signal.aborted) break
      record(httpRecord(result), atMs)
      if (result.ok) {
        consecutiveSuccesses++
        lastSuccessStatus = result.status
      } else {
        consecutiveSuccesses = 0
      }
      if (phase === 'start') {
        startPhase.probes++
        if (result.ok) {
          startPhase.successes++
          startPhase.last = `answered ${result.status ?? 'as expected'}`
        } else {
          startPhase.last = describeProbeFailure(result)
          startPhase.failures.add(startPhase.last)
        }
        checkHealthy()
      } else if (!result.ok) {
        finish(false, `GET ${shownUrl} ${describeProbeFailure(result)} during the watch, ${sinceHealthy()}`)
      }
      await sleep(settings.intervalMs - (elapsed() - atMs))
    }
  }

  const deadlineReason = (): string => {
    const deadline = formatSeconds(settings.deadlineMs)
    const stateText = lastStateError
      ? `its state could not be read (${lastStateError})`
      : (lastState?.detail ?? "its state was never read")
    if (!http) {
      if (lastState?.verdict === 'ready' && !lastStateError) {
        return `the workload was not ready for ${formatSeconds(threshold * settings.intervalMs)} in a row within the ${deadline} deadline; ${stateText}`
      }
      return `the workload did not become ready within ${deadline}: ${stateText}`
    }
    const notReady = lastState?.verdict !== 'ready' || lastStateError !== undefined
    if (startPhase.probes === 0) {
      return `GET ${shownUrl} got no answer within ${deadline} (probe timeout ${formatSeconds(settings.timeoutMs)})${notReady ? `; ${stateText}` : ''}`
    }
    if (consecutiveSuccesses >= threshold && notReady) {
      return `GET ${shownUrl} answered as expected, but within ${deadline} the container never became ready: ${stateText}`
    }
    const [onlyFailure] = startPhase.failures
    const text =
      startPhase.successes === 0 && startPhase.failures.size === 1 && onlyFailure
        ? `GET ${shownUrl} ${onlyFailure} on every probe for ${deadline} (${plural(startPhase.probes, 'probe')})`
        : `GET ${shownUrl} did not succeed ${threshold === 1 ? 'once' : `${threshold} times in a row`} within ${deadline}: ` +
          `${startPhase.successes} of ${plural(startPhase.probes, 'probe')} succeeded; the last ${startPhase.last ?? 'failed'}`
    return notReady ? `${text}; meanwhile ${stateText}` : text
  }

  const deadlineTimer = async (): Promise<void> => {
    await sleep(settings.deadlineMs)
    if (!signal.aborted && phase === 'start') finish(false, deadlineReason())
  }

  const onCancel = (): void => finish(false, 'cancelled')
  if (options.signal?.aborted) onCancel()
  options.signal?.addEventListener('abort', onCancel, { once: true })

  // A bug in a loop must end verification with a verdict, not leave it waiting for the deadline.
  const guard = (loop: Promise<void>): Promise<void> =>
    loop.catch((error: unknown) => finish(false, `the health check failed: ${error instanceof Error ? error.message : String(error)}`))
  const loops = [guard(stateLoop()), guard(deadlineTimer())]
  if (http) loops.push(guard(httpLoop(http)))

  try {
    await new Promise<void>((resolve) => {
      if (stop.signal.aborted) resolve()
      else stop.signal.addEventListener('abort', () => resolve(), { once: true })
    })
    // The verdict is in: the probe's event stream ends now, not after the last loop settles.
    state.close?.()
    await Promise.allSettled([...loops, watchTimer])
  } finally {
    state.close?.()
    options.signal?.removeEventListener('abort', onCancel)
  }

  // `finish` ran before `stop` aborted, so the verdict is set here.
  const final = verdict ?? { healthy: false, reason: 'cancelled', phase, durationMs: elapsed() }
  return {
    ...final,
    transcript: transcript.records(),
    transcriptDropped: transcript.dropped
  }
}

function httpRecord(result: HttpProbeResult): Omit<ProbeRecord, 'at' | 'elapsedMs'> {
  const entry: Omit<ProbeRecord, 'at' | 'elapsedMs'> = { source: 'http', ok: result.ok, latencyMs: result.latencyMs }
  if (result.status !== undefined) entry.status = result.status
  if (result.error !== undefined) entry.error = result.error
  if (result.detail !== undefined) entry.detail = result.detail
  return entry
}

/** Settles with `promise`, or rejects as soon as `signal` aborts (a hung `docker inspect` must not delay cancellation). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined)
    return Promise.reject(new Error('aborted'))
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Error('aborted'))
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(error instanceof Error ? error : new Error(String(error)))
      }
    )
  })
}

/** The URL without user:password, which must never reach a log or the summary. */
function displayUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (!parsed.username && !parsed.password) return url
    parsed.username = ''
    parsed.password = ''
    return parsed.toString()
  } catch {
    return url
  }
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`
}
