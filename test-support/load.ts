/**
 * A bounded HTTP load generator for zero-downtime tests: `clients` keep-alive clients, each with
 * its own persistent connection (a node:http Agent with keepAlive and one socket) sending one
 * request after another, plus `slowRequests` slow requests started together after `slowDelayMs`
 * or when the test calls `startSlow()` (e.g. once the new version is ready to switch to).
 * Traffic goes to 127.0.0.0/8 only. It stops by itself after `durationMs` or `maxRequests`,
 * whichever comes first, waits at most `requestTimeoutMs` for what is still in flight, and reports
 * every failure with its time, so a test can compute the failure window around a switch.
 */
import { Agent, request, type IncomingMessage } from 'node:http'
import { isIP } from 'node:net'

export interface LoadOptions {
  /** Base URL, e.g. `http://127.0.0.1:34567`: loopback only. */
  url: string
  /** Path the keep-alive clients request. Default `/version`. */
  path?: string
  /** Keep-alive clients sending back to back. */
  clients: number
  /** Every `postEvery`-th request of a client is a small POST instead of a GET (0: never). Default 0. */
  postEvery?: number
  /** Path the POSTs go to. Default `path`. */
  postPath?: string
  /** Slow requests, all started together `slowDelayMs` after the start. Default 0. */
  slowRequests?: number
  /** Path of a slow request. Default `/cgi-bin/slow`. */
  slowPath?: string
  /**
   * When the slow requests start, after the start of the run. Default: when `startSlow()` is
   * called (never, if it is not).
   */
  slowDelayMs?: number
  /** Clients stop sending new requests after this long. */
  durationMs: number
  /** Clients stop once this many fast requests were sent in all. Default 1,000,000. */
  maxRequests?: number
  /** A request that has not completed after this long fails with `ETIMEDOUT`. Default 10 s. */
  requestTimeoutMs?: number
  /** Pause between two requests of a client. Default 0. */
  pauseMs?: number
}

export interface LoadFailure {
  /** `Date.now()` when the failure was seen. */
  at: number
  kind: 'fast' | 'slow'
  /** `ECONNRESET`, `ECONNREFUSED`, `ETIMEDOUT`, `HTTP_503`, … */
  code: string
  message: string
  client: number
}

export interface BodyCount {
  count: number
  /** When the first and the last answer with this body arrived. */
  firstAt: number
  lastAt: number
  /** When the first and the last request answered with this body were sent. */
  firstStartedAt: number
  lastStartedAt: number
}

export interface SlowResult {
  startedAt: number
  endedAt: number
  ok: boolean
  status?: number
  body?: string
  code?: string
}

/**
 * One stretch of time in which users got failures: from the first failed request to the first
 * successful answer to a fast request sent at or after it (an answer to a request sent earlier,
 * e.g. one that waited on the old version, proves nothing about what new requests get).
 */
export interface Outage {
  firstFailureAt: number
  /** When the first answer that ends it arrived; undefined when none came before the run ended. */
  recoveredAt?: number
  /** recoveredAt − firstFailureAt, or until the run ended when it never recovered. */
  ms: number
  /** Failures seen from firstFailureAt up to recoveredAt. */
  failed: number
}

export interface LoadResult {
  startedAt: number
  endedAt: number
  /** Fast and slow requests with a 2xx/3xx answer. */
  ok: number
  /** Fast and slow requests that failed (socket error, timeout, or status ≥ 400). */
  failed: number
  /** Every failure in the order seen. */
  failures: LoadFailure[]
  /** Failures counted by code. */
  failuresByCode: Record<string, number>
  /** First and last failure time, and the span between them (0 when none or one). */
  failureWindow?: { firstAt: number; lastAt: number; ms: number }
  /** The user-visible outages, in time order (see {@link Outage}); empty when nothing failed. */
  outages: Outage[]
  /** Successful answers counted by body (first 64 characters), with when each was first and last seen. */
  bodies: Record<string, BodyCount>
  /** One entry per slow request, in start order. */
  slow: SlowResult[]
  /** Fast requests sent. */
  sent: number
}

export interface LoadRun {
  /** Resolves once every client stopped and every request ended. */
  readonly done: Promise<LoadResult>
  /** Counts so far, while it runs. */
  progress(): { ok: number; failed: number; sent: number; slowInFlight: number; failuresByCode: Record<string, number> }
  /** Starts the slow requests now, unless they have started already or the run is stopping. */
  startSlow(): void
  /** Stops sending now and resolves like `done`. */
  stop(): Promise<LoadResult>
}

function assertLoopback(url: URL): void {
  if (url.protocol !== 'http:' || isIP(url.hostname) !== 4 || !url.hostname.startsWith('127.')) {
    throw new Error(`load generator: only http:// to 127.0.0.0/8 is allowed, got ${url.href}`)
  }
}

interface Answer {
  status: number
  body: string
}

function send(url: URL, agent: Agent | false, method: 'GET' | 'POST', timeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = method === 'POST' ? 'ping=1' : undefined
    const req = request(
      url,
      {
        method,
        agent,
        timeout: timeoutMs,
        headers: payload ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(payload) } : undefined
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('error', reject)
        res.on('aborted', () => reject(Object.assign(new Error('response aborted'), { code: 'ECONNRESET' })))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
      }
    )
    const timer = setTimeout(() => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })), timeoutMs)
    req.on('close', () => clearTimeout(timer))
    req.on('timeout', () => req.destroy(Object.assign(new Error(`socket idle for ${timeoutMs} ms`), { code: 'ETIMEDOUT' })))
    req.on('error', reject)
    req.end(payload)
  })
}

/** Starts the load at once and returns a handle; the run ends by itself (see {@link LoadOptions}). */
export function startLoad(options: LoadOptions): LoadRun {
  const base = new URL(options.url)
  assertLoopback(base)
  const fastUrl = new URL(options.path ?? '/version', base)
  const postUrl = new URL(options.postPath ?? options.path ?? '/version', base)
  const slowUrl = new URL(options.slowPath ?? '/cgi-bin/slow', base)
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000
  const maxRequests = options.maxRequests ?? 1_000_000
  const startedAt = Date.now()
  const stopAt = startedAt + options.durationMs

  let stopping = false
  let sent = 0
  let ok = 0
  let failed = 0
  let slowInFlight = 0
  const failures: LoadFailure[] = []
  const bodies: Record<string, BodyCount> = {}
  const slow: SlowResult[] = []
  // Every good answer to a fast request, as [sentAt, answeredAt]: what ends an outage.
  const answered: [number, number][] = []

  const recordOk = (answer: Answer, sentAt: number, kind: LoadFailure['kind']): void => {
    ok++
    if (kind === 'fast') answered.push([sentAt, Date.now()])
    const key = answer.body.trim().slice(0, 64)
    const now = Date.now()
    const entry = bodies[key]
    if (entry) {
      entry.count++
      entry.lastAt = Math.max(entry.lastAt, now)
      entry.firstStartedAt = Math.min(entry.firstStartedAt, sentAt)
      entry.lastStartedAt = Math.max(entry.lastStartedAt, sentAt)
    } else if (Object.keys(bodies).length < 100) {
      bodies[key] = { count: 1, firstAt: now, lastAt: now, firstStartedAt: sentAt, lastStartedAt: sentAt }
    }
  }
  const recordFailure = (kind: LoadFailure['kind'], client: number, code: string, message: string): void => {
    failed++
    failures.push({ at: Date.now(), kind, code, message: message.slice(0, 200), client })
  }
  const classify = (answer: Answer): string | undefined => (answer.status >= 200 && answer.status < 400 ? undefined : `HTTP_${answer.status}`)

  const agents: Agent[] = []
  const client = async (index: number): Promise<void> => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    agents.push(agent)
    let own = 0
    while (!stopping && Date.now() < stopAt && sent < maxRequests) {
      sent++
      own++
      const method = options.postEvery && own % options.postEvery === 0 ? 'POST' : 'GET'
      const sentAt = Date.now()
      try {
        const answer = await send(method === 'POST' ? postUrl : fastUrl, agent, method, requestTimeoutMs)
        const code = classify(answer)
        if (code) recordFailure('fast', index, code, answer.body)
        else recordOk(answer, sentAt, 'fast')
      } catch (error) {
        const err = error as NodeJS.ErrnoException
        recordFailure('fast', index, err.code ?? 'ERROR', err.message)
      }
      if (options.pauseMs) await new Promise((resolve) => setTimeout(resolve, options.pauseMs))
    }
  }

  const slowOne = async (index: number): Promise<void> => {
    const entry: SlowResult = { startedAt: Date.now(), endedAt: 0, ok: false }
    slow.push(entry)
    slowInFlight++
    try {
      const answer = await send(slowUrl, false, 'GET', requestTimeoutMs)
      entry.status = answer.status
      entry.body = answer.body.trim().slice(0, 64)
      const code = classify(answer)
      if (code) {
        entry.code = code
        recordFailure('slow', index, code, answer.body)
      } else {
        entry.ok = true
        recordOk(answer, entry.startedAt, 'slow')
      }
    } catch (error) {
      const err = error as NodeJS.ErrnoException
      entry.code = err.code ?? 'ERROR'
      recordFailure('slow', index, entry.code, err.message)
    } finally {
      entry.endedAt = Date.now()
      slowInFlight--
    }
  }

  const slowCount = options.slowRequests ?? 0
  let slowStarted = false
  let slowSettled: () => void = () => undefined
  const slowDone = new Promise<void>((resolve) => (slowSettled = resolve))
  let slowTimer: NodeJS.Timeout | undefined
  const startSlow = (): void => {
    if (slowStarted) return
    slowStarted = true
    if (slowTimer) clearTimeout(slowTimer)
    if (stopping || slowCount === 0) return slowSettled()
    void Promise.all(Array.from({ length: slowCount }, (_, index) => slowOne(index))).then(() => slowSettled())
  }
  if (slowCount === 0) startSlow()
  else if (options.slowDelayMs !== undefined) slowTimer = setTimeout(startSlow, options.slowDelayMs)
  const countByCode = (): Record<string, number> => {
    const counts: Record<string, number> = {}
    for (const failure of failures) counts[failure.code] = (counts[failure.code] ?? 0) + 1
    return counts
  }

  const clientsDone = Promise.all(Array.from({ length: options.clients }, (_, index) => client(index))).then(() => {
    // Slow requests that never started will not: the run is over.
    if (!slowStarted) {
      stopping = true
      startSlow()
    }
  })
  const done = Promise.all([clientsDone, slowDone]).then((): LoadResult => {
    for (const agent of agents) agent.destroy()
    const endedAt = Date.now()
    const result: LoadResult = { startedAt, endedAt, ok, failed, failures, failuresByCode: countByCode(), outages: outagesOf(failures, answered, endedAt), bodies, slow, sent }
    const first = failures[0]
    const last = failures[failures.length - 1]
    if (first && last) result.failureWindow = { firstAt: first.at, lastAt: last.at, ms: last.at - first.at }
    return result
  })

  return {
    done,
    progress: () => ({ ok, failed, sent, slowInFlight, failuresByCode: countByCode() }),
    startSlow,
    stop: () => {
      stopping = true
      if (!slowStarted) startSlow()
      return done
    }
  }
}

/**
 * Groups failures into outages: each starts at a failure not yet covered and ends at the first
 * good answer to a request sent at or after that failure. Exported for its unit test.
 */
export function outagesOf(failures: readonly LoadFailure[], answered: readonly (readonly [number, number])[], endedAt: number): Outage[] {
  const failedAt = failures.map((failure) => failure.at).sort((a, b) => a - b)
  const bySent = [...answered].sort((a, b) => a[0] - b[0])
  // earliestFrom[i]: the earliest answer among requests sent at or after bySent[i]'s send time.
  const earliestFrom = new Array<number>(bySent.length + 1).fill(Number.POSITIVE_INFINITY)
  for (let i = bySent.length - 1; i >= 0; i--) earliestFrom[i] = Math.min(earliestFrom[i + 1] ?? Number.POSITIVE_INFINITY, bySent[i]?.[1] ?? Number.POSITIVE_INFINITY)
  const firstSentAtOrAfter = (at: number): number => {
    let low = 0
    let high = bySent.length
    while (low < high) {
      const mid = (low + high) >> 1
      if ((bySent[mid]?.[0] ?? 0) < at) low = mid + 1
      else high = mid
    }
    return low
  }
  const outages: Outage[] = []
  let index = 0
  while (index < failedAt.length) {
    const firstFailureAt = failedAt[index] as number
    const recovered = earliestFrom[firstSentAtOrAfter(firstFailureAt)] ?? Number.POSITIVE_INFINITY
    let failedInside = 0
    while (index < failedAt.length && (failedAt[index] as number) <= recovered) {
      failedInside++
      index++
    }
    outages.push(
      Number.isFinite(recovered)
        ? { firstFailureAt, recoveredAt: recovered, ms: recovered - firstFailureAt, failed: failedInside }
        : { firstFailureAt, ms: endedAt - firstFailureAt, failed: failedInside }
    )
  }
  return outages
}
