import { afterEach, describe, expect, it } from '@jest/globals'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleepFor } from 'node:timers/promises'
import { bodyExcerpt, bodyMismatchDetail, MAX_BODY_BYTES, probeHttp, type HttpProbeSettings } from '../src/health/http-probe.js'
import type { StateObservation, StateProbe } from '../src/health/state-probe.js'
import { BoundedTranscript, type ProbeRecord } from '../src/health/transcript.js'
import { verifyHealth, type HealthClock } from '../src/health/verify.js'
import type { HealthSettings } from '../src/settings.js'

// ---------------------------------------------------------------------------------------------
// A real HTTP server on 127.0.0.1 whose behaviour the test changes while probes run.

type Handler = (request: IncomingMessage, response: ServerResponse, index: number) => void

class TestServer {
  readonly requests: IncomingMessage[] = []
  connections = 0
  handler: Handler = (_req, res) => res.end('ok')
  private server: Server | undefined

  constructor(public port = 0) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/health`
  }

  async listen(): Promise<this> {
    const server = createServer((req, res) => {
      this.requests.push(req)
      this.handler(req, res, this.requests.length - 1)
    })
    server.on('connection', () => this.connections++)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host: '127.0.0.1', port: this.port }, () => resolve())
    })
    this.port = (server.address() as AddressInfo).port
    this.server = server
    return this
  }

  /** Stops listening and drops open connections, so later probes are refused. */
  async close(): Promise<void> {
    const server = this.server
    this.server = undefined
    if (!server) return
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

const servers: TestServer[] = []
async function startServer(handler?: Handler): Promise<TestServer> {
  const server = new TestServer()
  if (handler) server.handler = handler
  servers.push(server)
  return server.listen()
}

/** A port on 127.0.0.1 where nothing listens (the server was closed), kept for a later listen. */
async function closedServer(): Promise<TestServer> {
  const server = await startServer()
  await server.close()
  return server
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()))
})

// ---------------------------------------------------------------------------------------------
// A scripted StateProbe: each observe() returns the next observation; the last one repeats.

class ScriptedState implements StateProbe {
  calls = 0
  constructor(
    private readonly script: (StateObservation | Error)[],
    private readonly onObserve?: (call: number) => void
  ) {}

  async observe(): Promise<StateObservation> {
    const index = Math.min(this.calls, this.script.length - 1)
    this.calls++
    this.onObserve?.(this.calls)
    const next = this.script[index]
    if (!next) throw new Error('empty script')
    if (next instanceof Error) throw next
    return next
  }
}

const READY: StateObservation = { verdict: 'ready', detail: 'the container web is running' }
const STARTING: StateObservation = { verdict: 'starting', detail: 'the container web is running; its HEALTHCHECK still reports starting' }
const alwaysReady = (): ScriptedState => new ScriptedState([READY])

function healthSettings(overrides: Partial<HealthSettings> = {}): HealthSettings {
  return {
    expectStatus: [200],
    headers: {},
    intervalMs: 20,
    timeoutMs: 2_000,
    deadlineMs: 5_000,
    healthyThreshold: 1,
    watchMs: 0,
    ...overrides
  }
}

/**
 * The real clock, except that a sleep of exactly `gatedMs` (the deadline or the watch) lasts until
 * the test calls `expire()`. Tests then end the deadline after a known number of probes instead
 * of hoping that enough probes fit into a few real milliseconds on a loaded machine.
 */
function gatedClock(gatedMs: number): { clock: HealthClock; expire(): void } {
  let expire = (): void => undefined
  const gate = new Promise<void>((resolve) => (expire = resolve))
  return {
    expire: () => expire(),
    clock: {
      now: () => Date.now(),
      sleep: (ms, signal) =>
        ms === gatedMs
          ? Promise.race([gate, new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true }))])
          : sleepFor(ms, undefined, { signal }).catch(() => undefined)
    }
  }
}

const http = (records: ProbeRecord[]): ProbeRecord[] => records.filter((record) => record.source === 'http')
const stateRecords = (records: ProbeRecord[]): ProbeRecord[] => records.filter((record) => record.source === 'state')

// ---------------------------------------------------------------------------------------------

describe('probeHttp', () => {
  const probeSettings = (overrides: Partial<HttpProbeSettings> = {}): HttpProbeSettings => ({
    expectStatus: [200],
    headers: {},
    // Generous, so a loaded machine cannot turn a success into a timeout; timeout tests set their own.
    timeoutMs: 5_000,
    ...overrides
  })

  it('accepts an expected status, sends the configured headers, and closes the connection', async () => {
    const server = await startServer((_req, res) => res.end('ok'))
    const result = await probeHttp(server.url, probeSettings({ headers: { 'x-probe': 'deploy', authorization: 'Bearer t0ken' } }))
    expect(result).toEqual({ ok: true, status: 200, latencyMs: expect.any(Number) })
    const [request] = server.requests
    expect(request?.method).toBe('GET')
    expect(request?.url).toBe('/health')
    expect(request?.headers['x-probe']).toBe('deploy')
    expect(request?.headers.authorization).toBe('Bearer t0ken')
    expect(request?.headers.connection).toBe('close')
  })

  it('opens a new connection for every probe', async () => {
    const server = await startServer((_req, res) => res.end('ok'))
    for (let i = 0; i < 3; i++) expect((await probeHttp(server.url, probeSettings())).ok).toBe(true)
    expect(server.requests).toHaveLength(3)
    expect(server.connections).toBe(3)
  })

  it('rejects an unexpected status and says what was expected', async () => {
    const server = await startServer((_req, res) => {
      res.statusCode = 503
      res.end('busy')
    })
    expect(await probeHttp(server.url, probeSettings({ expectStatus: [200, 204] }))).toEqual({
      ok: false,
      status: 503,
      latencyMs: expect.any(Number),
      failure: 'status',
      detail: 'expected 200 or 204'
    })
  })

  it('accepts any listed status', async () => {
    const server = await startServer((_req, res) => {
      res.statusCode = 204
      res.end()
    })
    expect((await probeHttp(server.url, probeSettings({ expectStatus: [200, 204] }))).ok).toBe(true)
  })

  it('does not follow redirects', async () => {
    const server = await startServer((req, res) => {
      if (req.url === '/health') {
        res.writeHead(302, { location: '/elsewhere' })
        res.end()
      } else res.end('ok')
    })
    const result = await probeHttp(server.url, probeSettings())
    expect(result).toMatchObject({ ok: false, status: 302, failure: 'status' })
    expect(server.requests.map((r) => r.url)).toEqual(['/health'])
  })

  it('checks the body for the expected substring', async () => {
    const server = await startServer((_req, res) => res.end('{"status":"starting"}'))
    expect(await probeHttp(server.url, probeSettings({ expectBody: '"status":"ok"' }))).toEqual({
      ok: false,
      status: 200,
      latencyMs: expect.any(Number),
      failure: 'body',
      detail: 'body does not contain "\\"status\\":\\"ok\\"" (it begins "{\\"status\\":\\"starting\\"}")'
    })
    server.handler = (_req, res) => res.end('{"status":"ok"}')
    expect((await probeHttp(server.url, probeSettings({ expectBody: '"status":"ok"' }))).ok).toBe(true)
  })

  it('searches only the first 64 KiB of the body', async () => {
    const padding = 'x'.repeat(MAX_BODY_BYTES)
    const server = await startServer((req, res) => res.end(req.url === '/health' ? `${padding}MARKER` : `MARKER${padding}${padding}`))
    expect(await probeHttp(server.url, probeSettings({ expectBody: 'MARKER' }))).toMatchObject({ ok: false, failure: 'body' })
    expect(await probeHttp(`http://127.0.0.1:${server.port}/early`, probeSettings({ expectBody: 'MARKER' }))).toMatchObject({ ok: true })
  })

  it('reports connection refused as a result, not an exception', async () => {
    const server = await closedServer()
    expect(await probeHttp(server.url, probeSettings())).toEqual({
      ok: false,
      latencyMs: expect.any(Number),
      failure: 'connection',
      error: 'ECONNREFUSED',
      detail: 'connection refused'
    })
  })

  it('reports a connection dropped without an answer', async () => {
    const server = await startServer((req) => req.socket.destroy())
    const result = await probeHttp(server.url, probeSettings())
    expect(result.ok).toBe(false)
    expect(result.failure).toBe('connection')
    expect(['ECONNRESET', 'UND_ERR_SOCKET']).toContain(result.error)
  })

  it('times out when the headers are late', async () => {
    const server = await startServer((_req, res) => {
      setTimeout(() => res.end('late'), 1_000).unref()
    })
    expect(await probeHttp(server.url, probeSettings({ timeoutMs: 60 }))).toEqual({
      ok: false,
      latencyMs: expect.any(Number),
      failure: 'connection',
      error: 'TIMEOUT',
      detail: 'no answer within 0.06 s'
    })
  })

  it('times out when the body is late', async () => {
    const server = await startServer((_req, res) => {
      res.writeHead(200)
      res.write('partial')
      setTimeout(() => res.end('ok'), 1_000).unref()
    })
    expect(await probeHttp(server.url, probeSettings({ timeoutMs: 60, expectBody: 'ok' }))).toMatchObject({ ok: false, error: 'TIMEOUT' })
  })

  it('stops when cancelled', async () => {
    const server = await startServer(() => undefined)
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 30)
    expect(await probeHttp(server.url, probeSettings({ timeoutMs: 5_000 }), controller.signal)).toMatchObject({ ok: false, error: 'ABORTED' })
  })
})

describe('BoundedTranscript', () => {
  it('keeps the first 20 and the last 80 records and counts the rest', () => {
    const transcript = new BoundedTranscript()
    for (let i = 0; i < 150; i++) transcript.add({ at: '', elapsedMs: i, source: 'http', ok: true })
    const kept = transcript.records().map((record) => record.elapsedMs)
    expect(kept).toHaveLength(100)
    expect(kept.slice(0, 20)).toEqual([...Array(20).keys()])
    expect(kept.slice(20)).toEqual([...Array(80).keys()].map((i) => i + 70))
    expect(transcript.dropped).toBe(50)
  })

  it('drops nothing below its capacity', () => {
    const transcript = new BoundedTranscript()
    for (let i = 0; i < 100; i++) transcript.add({ at: '', elapsedMs: i, source: 'http', ok: true })
    expect(transcript.records()).toHaveLength(100)
    expect(transcript.dropped).toBe(0)
  })
})

describe('verifyHealth with HTTP', () => {
  it('treats refused, then 503, as still starting, and is healthy at the first 200', async () => {
    const server = await closedServer()
    server.handler = (_req, res, index) => {
      res.statusCode = index < 3 ? 503 : 200
      res.end('ok')
    }
    // Open the port a little later, so the first probes are refused.
    const opening = new Promise<void>((resolve) => setTimeout(() => void server.listen().then(() => resolve()), 80))
    const verdict = await verifyHealth({ state: alwaysReady(), http: { url: server.url, settings: healthSettings() }, settings: healthSettings() })
    await opening

    expect(verdict.healthy).toBe(true)
    expect(verdict.phase).toBe('start')
    const probes = http(verdict.transcript)
    const outcomes = probes.map((record) => record.error ?? record.status)
    expect(outcomes[0]).toBe('ECONNREFUSED')
    expect(outcomes.slice(-4)).toEqual([503, 503, 503, 200])
    expect(new Set(outcomes)).toEqual(new Set(['ECONNREFUSED', 503, 200]))
    expect(probes.at(-1)).toMatchObject({ ok: true, status: 200, latencyMs: expect.any(Number) })
    expect(verdict.reason).toMatch(
      new RegExp(`^the workload was healthy after [\\d.]+ s: GET ${escape(server.url)} answered 200 on a probe and the container web is running$`)
    )
    expect(verdict.transcriptDropped).toBe(0)
  })

  it('needs healthyThreshold consecutive successes; a failure resets the count', async () => {
    const sequence = [200, 500, 200, 200, 500, 200, 200, 200, 200, 200]
    const server = await startServer((_req, res, index) => {
      res.statusCode = sequence[index] ?? 200
      res.end()
    })
    const settings = healthSettings({ healthyThreshold: 3 })
    const verdict = await verifyHealth({ state: alwaysReady(), http: { url: server.url, settings }, settings })
    expect(verdict.healthy).toBe(true)
    expect(http(verdict.transcript).map((record) => record.status)).toEqual([200, 500, 200, 200, 500, 200, 200, 200])
    expect(verdict.reason).toContain(`answered 200 on 3 consecutive probes`)
  })

  it('fails at the deadline when every probe answers the wrong status, saying so in one sentence', async () => {
    const deadline = gatedClock(150)
    // The fifth request ends the deadline and is left unanswered: exactly four probes complete.
    const server = await startServer((_req, res, index) => {
      if (index === 4) return deadline.expire()
      res.statusCode = 500
      res.end()
    })
    const settings = healthSettings({ deadlineMs: 150 })
    const verdict = await verifyHealth({ state: alwaysReady(), http: { url: server.url, settings }, settings, clock: deadline.clock })
    expect(verdict.healthy).toBe(false)
    expect(verdict.phase).toBe('start')
    const probes = http(verdict.transcript)
    expect(probes.map((record) => [record.ok, record.status, record.detail])).toEqual(Array(4).fill([false, 500, 'expected 200']))
    expect(verdict.reason).toBe(`GET ${server.url} answered 500 (expected 200) on every probe for 0.15 s (4 probes)`)
  })

  it('fails on a wrong body', async () => {
    const deadline = gatedClock(120)
    const server = await startServer((_req, res, index) => {
      if (index === 3) return deadline.expire()
      res.end('{"status":"degraded"}')
    })
    const settings = healthSettings({ deadlineMs: 120, expectBody: 'healthy' })
    const verdict = await verifyHealth({ state: alwaysReady(), http: { url: server.url, settings }, settings, clock: deadline.clock })
    expect(verdict.healthy).toBe(false)
    expect(verdict.reason).toBe(`GET ${server.url} answered 200, but the body does not contain "healthy" (it begins "{\\"status\\":\\"degraded\\"}") on every probe for 0.12 s (3 probes)`)
    expect(http(verdict.transcript).map((record) => [record.ok, record.status])).toEqual(Array(3).fill([false, 200]))
  })

  it('counts a response slower than the probe timeout as a failure and keeps probing', async () => {
    const deadline = gatedClock(250)
    // Answers far too late; the third request to arrive ends the deadline.
    const server = await startServer((_req, res, index) => {
      if (index === 2) return deadline.expire()
      setTimeout(() => res.end('ok'), 2_000).unref()
    })
    const settings = healthSettings({ deadlineMs: 250, timeoutMs: 40 })
    const verdict = await verifyHealth({ state: alwaysReady(), http: { url: server.url, settings }, settings, clock: deadline.clock })
    expect(verdict.healthy).toBe(false)
    const probes = http(verdict.transcript)
    // Probes run one after another, so two finished before the third was sent. On a loaded machine
    // a probe can time out before the server even reads its request, so there may be more.
    expect(probes.length).toBeGreaterThanOrEqual(2)
    expect(probes.map((record) => [record.ok, record.error, record.detail])).toEqual(Array(probes.length).fill([false, 'TIMEOUT', 'no answer within 0.04 s']))
    expect(verdict.reason).toBe(`GET ${server.url} failed: no answer within 0.04 s (TIMEOUT) on every probe for 0.25 s (${probes.length} probes)`)
  })

  it('describes a mix of failures by counts and the last failure', async () => {
    const deadline = gatedClock(200)
    const server = await startServer((_req, res, index) => {
      if (index === 6) return deadline.expire()
      res.statusCode = index % 2 === 0 ? 200 : 502
      res.end()
    })
    const settings = healthSettings({ deadlineMs: 200, healthyThreshold: 2 })
    const verdict = await verifyHealth({ state: alwaysReady(), http: { url: server.url, settings }, settings, clock: deadline.clock })
    expect(verdict.healthy).toBe(false)
    expect(http(verdict.transcript).map((record) => record.status)).toEqual([200, 502, 200, 502, 200, 502])
    expect(verdict.reason).toBe(`GET ${server.url} did not succeed 2 times in a row within 0.2 s: 3 of 6 probes succeeded; the last answered 502 (expected 200)`)
  })

  it('is not healthy while the HEALTHCHECK still says starting, even when HTTP answers', async () => {
    const deadline = gatedClock(150)
    const server = await startServer((_req, res, index) => {
      if (index === 2) return deadline.expire()
      res.end('ok')
    })
    const settings = healthSettings({ deadlineMs: 150 })
    const verdict = await verifyHealth({ state: new ScriptedState([STARTING]), http: { url: server.url, settings }, settings, clock: deadline.clock })
    expect(verdict.healthy).toBe(false)
    expect(http(verdict.transcript).map((record) => record.status)).toEqual([200, 200])
    expect(verdict.reason).toBe(
      `GET ${server.url} answered as expected, but within 0.15 s the container never became ready: the container web is running; its HEALTHCHECK still reports starting`
    )
  })

  it('becomes healthy once the state turns ready', async () => {
    const server = await startServer((_req, res) => res.end('ok'))
    const settings = healthSettings()
    const state = new ScriptedState([STARTING, STARTING, STARTING, READY])
    const verdict = await verifyHealth({ state, http: { url: server.url, settings }, settings, statePollMs: 10 })
    expect(verdict.healthy).toBe(true)
    // State records only when the observation changes, not for every poll.
    expect(stateRecords(verdict.transcript).map((record) => [record.ok, record.detail])).toEqual([
      [false, STARTING.detail],
      [true, READY.detail]
    ])
    expect(state.calls).toBeGreaterThanOrEqual(4)
  })

  it('reports a crash as soon as the state says so, long before the deadline', async () => {
    const server = await closedServer()
    const crashed: StateObservation = { verdict: 'failed', detail: 'the container web exited with code 1: listen tcp :8080: bind: address already in use' }
    const settings = healthSettings({ deadlineMs: 30_000, intervalMs: 10_000 })
    const state = new ScriptedState([READY, READY, crashed])
    const verdict = await verifyHealth({ state, http: { url: server.url, settings }, settings, statePollMs: 20 })
    expect(verdict.healthy).toBe(false)
    expect(verdict.phase).toBe('start')
    expect(verdict.reason).toMatch(/^the container web exited with code 1: listen tcp :8080: bind: address already in use \(\d+(\.\d+)? s after the health check began\)$/)
    expect(verdict.durationMs).toBeLessThan(2_000)
    // One HTTP probe (the first, refused) ran; the next would only be due after 10 s.
    expect(http(verdict.transcript).map((record) => record.error)).toEqual(['ECONNREFUSED'])
    expect(stateRecords(verdict.transcript).map((record) => record.detail)).toEqual([READY.detail, crashed.detail])
    expect(state.calls).toBe(3)
  })

  it('keeps probing during the watch and passes when nothing fails', async () => {
    const watchEnd = gatedClock(150)
    // Healthy at the first probe; the watch ends when the fifth request arrives.
    const server = await startServer((_req, res, index) => {
      if (index === 4) return watchEnd.expire()
      res.end('ok')
    })
    const settings = healthSettings({ watchMs: 150 })
    const verdict = await verifyHealth({ state: alwaysReady(), http: { url: server.url, settings }, settings, clock: watchEnd.clock })
    expect(verdict.healthy).toBe(true)
    expect(verdict.phase).toBe('watch')
    expect(http(verdict.transcript).map((record) => record.ok)).toEqual([true, true, true, true])
    expect(verdict.reason).toMatch(/, and it stayed healthy for the 0\.15 s watch$/)
  })

  it('fails during the watch when the server goes down after being healthy', async () => {
    const server = await startServer()
    server.handler = (_req, res, index) => {
      // Go down once the fourth answer has been handed to the kernel.
      if (index === 3) res.on('finish', () => void server.close())
      res.end('ok')
    }
    const settings = healthSettings({ watchMs: 5_000, deadlineMs: 1_000 })
    const verdict = await verifyHealth({ state: alwaysReady(), http: { url: server.url, settings }, settings })
    expect(verdict.healthy).toBe(false)
    expect(verdict.phase).toBe('watch')
    const probes = http(verdict.transcript)
    expect(probes.slice(0, 4).every((record) => record.ok)).toBe(true)
    expect(probes.at(-1)).toMatchObject({ ok: false, error: 'ECONNREFUSED' })
    expect(probes).toHaveLength(5)
    expect(verdict.reason).toMatch(
      new RegExp(`^GET ${escape(server.url)} failed: connection refused \\(ECONNREFUSED\\) during the watch, \\d+(\\.\\d+)? s after the workload was declared healthy$`)
    )
  })

  it('fails during the watch when the container state stops being ready', async () => {
    const server = await startServer((_req, res) => res.end('ok'))
    const exited: StateObservation = { verdict: 'failed', detail: 'the container web exited with code 137 (killed for lack of memory, OOMKilled)' }
    const settings = healthSettings({ watchMs: 5_000, intervalMs: 10 })
    const state = new ScriptedState([READY, READY, READY, READY, READY, READY, READY, READY, exited])
    const verdict = await verifyHealth({ state, http: { url: server.url, settings }, settings, statePollMs: 15 })
    expect(state.calls).toBe(9)
    expect(http(verdict.transcript)[0]).toMatchObject({ ok: true, status: 200 })
    expect(stateRecords(verdict.transcript).map((record) => record.detail)).toEqual([READY.detail, exited.detail])
    expect(verdict.healthy).toBe(false)
    expect(verdict.phase).toBe('watch')
    expect(verdict.reason).toMatch(/^the container web exited with code 137 \(killed for lack of memory, OOMKilled\), during the watch, [\d.]+ s after the workload was declared healthy$/)
    expect(verdict.durationMs).toBeLessThan(5_000)
  })

  it('stops promptly when cancelled and says "cancelled"', async () => {
    const server = await closedServer()
    const controller = new AbortController()
    const settings = healthSettings({ deadlineMs: 30_000 })
    const state = new ScriptedState([STARTING], (call) => {
      if (call === 3) controller.abort()
    })
    const verdict = await verifyHealth({ state, http: { url: server.url, settings }, settings, signal: controller.signal, statePollMs: 10 })
    expect(verdict).toMatchObject({ healthy: false, reason: 'cancelled', phase: 'start' })
    expect(verdict.durationMs).toBeLessThan(5_000)
    expect(state.calls).toBe(3)
  })

  it('does not probe at all when already cancelled', async () => {
    const server = await startServer()
    const state = alwaysReady()
    const settings = healthSettings()
    const verdict = await verifyHealth({ state, http: { url: server.url, settings }, settings, signal: AbortSignal.abort() })
    expect(verdict).toMatchObject({ healthy: false, reason: 'cancelled', transcript: [] })
    expect(state.calls).toBe(0)
    expect(server.requests).toHaveLength(0)
  })

  it('never shows credentials from the URL in the reason', async () => {
    const server = await startServer((_req, res) => {
      res.statusCode = 401
      res.end()
    })
    const url = `http://probe:s3cret@127.0.0.1:${server.port}/health`
    const settings = healthSettings({ deadlineMs: 80 })
    const verdict = await verifyHealth({ state: alwaysReady(), http: { url, settings }, settings })
    expect(verdict.healthy).toBe(false)
    expect(verdict.reason).not.toContain('s3cret')
    expect(JSON.stringify(verdict.transcript)).not.toContain('s3cret')
    expect(verdict.reason).toContain(`GET http://127.0.0.1:${server.port}/health`)
  })
})

describe('verifyHealth without HTTP', () => {
  it('is healthy once the state stayed ready for healthyThreshold × intervalMs', async () => {
    const state = new ScriptedState([STARTING, READY])
    const settings = healthSettings({ intervalMs: 60, healthyThreshold: 2 })
    const verdict = await verifyHealth({ state, settings, statePollMs: 10 })
    expect(verdict.healthy).toBe(true)
    // Ready from the second read on; the verdict waited 2 × 60 ms of ready reads after it.
    const readySince = stateRecords(verdict.transcript)[1]
    expect(readySince).toMatchObject({ ok: true, detail: READY.detail })
    expect(verdict.durationMs - (readySince?.elapsedMs ?? Infinity)).toBeGreaterThanOrEqual(120)
    expect(state.calls).toBeGreaterThan(3)
    expect(verdict.reason).toMatch(/^the workload was healthy after [\d.]+ s: the container web is running, checked for 0\.12 s \(no health URL, so only its state was checked\)$/)
    expect(stateRecords(verdict.transcript)).toHaveLength(2)
  })

  it('does not call a process that dies right after starting healthy', async () => {
    const exited: StateObservation = { verdict: 'failed', detail: 'the container web exited with code 2' }
    const state = new ScriptedState([READY, READY, exited])
    const settings = healthSettings({ intervalMs: 1_000, healthyThreshold: 1 })
    const verdict = await verifyHealth({ state, settings, statePollMs: 10 })
    expect(verdict.healthy).toBe(false)
    expect(verdict.reason).toMatch(/^the container web exited with code 2 \(/)
  })

  it('fails at the deadline while the state never becomes ready', async () => {
    const settings = healthSettings({ deadlineMs: 100 })
    const verdict = await verifyHealth({ state: new ScriptedState([STARTING]), settings, statePollMs: 10 })
    expect(verdict.healthy).toBe(false)
    expect(verdict.reason).toBe(`the workload did not become ready within 0.1 s: ${STARTING.detail}`)
  })

  it('retries a state read that fails once, and gives up after three in a row', async () => {
    const hiccup = new ScriptedState([new Error('docker: EOF'), READY])
    const settings = healthSettings({ intervalMs: 10 })
    expect((await verifyHealth({ state: hiccup, settings, statePollMs: 5 })).healthy).toBe(true)

    const broken = new ScriptedState([new Error('Cannot connect to the Docker daemon')])
    const verdict = await verifyHealth({ state: broken, settings: healthSettings({ deadlineMs: 10_000 }), statePollMs: 5 })
    expect(verdict.healthy).toBe(false)
    expect(verdict.reason).toBe("could not read the workload's state 3 times in a row: Cannot connect to the Docker daemon")
    expect(stateRecords(verdict.transcript)).toEqual([
      expect.objectContaining({ ok: false, error: 'UNREADABLE', detail: 'could not read the state: Cannot connect to the Docker daemon' })
    ])
  })

  it('bounds the transcript of a long run and says how many records it left out', async () => {
    const script: StateObservation[] = [...Array(130).keys()].map((i) => ({ verdict: 'starting', detail: `step ${i}` }))
    script.push({ verdict: 'failed', detail: 'gave up' })
    const verdict = await verifyHealth({ state: new ScriptedState(script), settings: healthSettings({ deadlineMs: 30_000 }), statePollMs: 1 })
    expect(verdict.healthy).toBe(false)
    expect(verdict.transcript).toHaveLength(100)
    expect(verdict.transcriptDropped).toBe(31)
    expect(verdict.transcript[0]?.detail).toBe('step 0')
    expect(verdict.transcript[19]?.detail).toBe('step 19')
    expect(verdict.transcript[20]?.detail).toBe('step 51')
    expect(verdict.transcript.at(-1)?.detail).toBe('gave up')
  })
})

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}

describe('bodyExcerpt: the start of a body that failed expect-body, for the reason', () => {
  it('takes the first non-empty line, without control characters, cut at 60 characters', () => {
    expect(bodyExcerpt('\n\n  database unreachable  \nstack…')).toBe('database unreachable')
    expect(bodyExcerpt('a\u0007b')).toBe('a b')
    expect(bodyExcerpt('x'.repeat(70))).toBe(`${'x'.repeat(60)}…`)
    expect(bodyMismatchDetail('ok', '')).toBe('body does not contain "ok" (it is empty)')
  })
})

// ---------------------------------------------------------------------------------------------
// A probe that follows the workload by events (StateProbe.nextChange, issue 21).

/** A probe with events: observe() returns `current`; `change()` wakes the verification. */
class EventedState implements StateProbe {
  calls = 0
  closed = 0
  current: StateObservation = READY
  /** `poll` from now on: the stream ended. */
  lost = false
  private wake: ((result: 'changed' | 'poll') => void) | undefined

  async observe(): Promise<StateObservation> {
    this.calls++
    return this.current
  }

  nextChange(signal: AbortSignal): Promise<'changed' | 'poll'> {
    if (this.lost) return Promise.resolve('poll')
    return new Promise((resolve) => {
      this.wake = resolve
      signal.addEventListener('abort', () => resolve('poll'), { once: true })
    })
  }

  change(to: StateObservation): void {
    this.current = to
    this.wake?.('changed')
  }

  close(): void {
    this.closed++
  }
}

describe('verifyHealth with a probe that follows events', () => {
  it('reads the state once and again only on a change; a crash in the watch is the verdict at once', async () => {
    const server = await startServer((_req, res) => res.end('ok'))
    const settings = healthSettings({ watchMs: 30_000, intervalMs: 50 })
    const state = new EventedState()
    setTimeout(() => state.change({ verdict: 'failed', detail: 'the container web exited with code 1' }), 300)
    const verdict = await verifyHealth({ state, http: { url: server.url, settings }, settings, statePollMs: 5 })
    expect(verdict).toMatchObject({ healthy: false, phase: 'watch' })
    expect(verdict.reason).toMatch(/^the container web exited with code 1, during the watch/)
    // Not one read per 5 ms poll: the first, and the one the change asked for.
    expect(state.calls).toBe(2)
    expect(state.closed).toBeGreaterThanOrEqual(1)
  })

  it('without a health URL, is healthy after healthyThreshold × intervalMs of ready with no further event', async () => {
    const state = new EventedState()
    const settings = healthSettings({ intervalMs: 60, healthyThreshold: 2 })
    const verdict = await verifyHealth({ state, settings, statePollMs: 5 })
    expect(verdict.healthy).toBe(true)
    expect(verdict.durationMs).toBeGreaterThanOrEqual(120)
    expect(state.calls).toBe(2)
  })

  it('polls again at statePollMs once the probe says its stream is gone', async () => {
    const state = new EventedState()
    state.lost = true
    const settings = healthSettings({ intervalMs: 60, healthyThreshold: 2 })
    const verdict = await verifyHealth({ state, settings, statePollMs: 5 })
    expect(verdict.healthy).toBe(true)
    expect(state.calls).toBeGreaterThan(3)
  })

  it('closes the probe when cancelled', async () => {
    const controller = new AbortController()
    const state = new EventedState()
    state.current = STARTING
    setTimeout(() => controller.abort(), 50)
    const verdict = await verifyHealth({ state, settings: healthSettings({ deadlineMs: 30_000 }), signal: controller.signal, statePollMs: 5 })
    expect(verdict.reason).toBe('cancelled')
    expect(state.calls).toBe(1)
    expect(state.closed).toBeGreaterThanOrEqual(1)
  })
})
