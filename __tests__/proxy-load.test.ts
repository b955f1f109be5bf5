/**
 * The load generator of test-support/load.ts against a small node:http server on 127.0.0.1.
 */
import { afterEach, describe, expect, it } from '@jest/globals'
import { createServer, type Server } from 'node:http'
import type { Socket } from 'node:net'
import { outagesOf, startLoad, type LoadFailure } from '../test-support/load.js'

interface TestServer {
  url: string
  connections: () => number
  close: () => Promise<void>
  /** While true, fast requests get a 503. */
  failing: boolean
}

let server: Server | undefined

async function startServer(): Promise<TestServer> {
  let connections = 0
  const sockets = new Set<Socket>()
  const state: TestServer = { url: '', connections: () => connections, close: async () => undefined, failing: false }
  server = createServer((req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => (body += chunk.toString()))
    req.on('end', () => {
      if (req.url === '/slow') {
        setTimeout(() => res.end('v1 slow'), 300)
      } else if (req.url === '/reset') {
        req.socket.destroy()
      } else if (state.failing) {
        res.statusCode = 503
        res.end('unavailable')
      } else {
        res.end(req.method === 'POST' ? `v1 post ${body}` : 'v1')
      }
    })
  })
  server.on('connection', (socket: Socket) => {
    connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  state.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
  state.close = () =>
    new Promise((resolve) => {
      for (const socket of sockets) socket.destroy()
      server?.close(() => resolve())
    })
  return state
}

afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
  server = undefined
})

describe('startLoad', () => {
  it('runs keep-alive clients on one connection each plus slow requests, and stops by itself', async () => {
    const target = await startServer()
    const started = Date.now()
    const run = startLoad({ url: target.url, clients: 5, postEvery: 4, slowRequests: 3, slowPath: '/slow', slowDelayMs: 100, durationMs: 800 })
    const result = await run.done
    const elapsed = Date.now() - started
    expect(elapsed).toBeGreaterThanOrEqual(800)
    expect(elapsed).toBeLessThan(3_000)
    expect(result.failed).toBe(0)
    expect(result.failures).toEqual([])
    expect(result.failureWindow).toBeUndefined()
    expect(result.sent).toBeGreaterThan(20)
    expect(result.ok).toBe(result.sent + 3)
    expect(result.bodies.v1?.count).toBeGreaterThan(10)
    expect(result.bodies['v1 post ping=1']?.count).toBeGreaterThan(0)
    expect(result.slow).toHaveLength(3)
    for (const slow of result.slow) {
      expect(slow).toMatchObject({ ok: true, status: 200, body: 'v1 slow' })
      expect(slow.endedAt - slow.startedAt).toBeGreaterThanOrEqual(290)
    }
    // Keep-alive: one connection per client and one per slow request.
    expect(target.connections()).toBe(5 + 3)
  })

  it('honours maxRequests', async () => {
    const target = await startServer()
    const result = await startLoad({ url: target.url, clients: 3, durationMs: 10_000, maxRequests: 30 }).done
    expect(result.sent).toBe(30)
    expect(result.ok).toBe(30)
  })

  it('records every failure with its time and code, and the failure window', async () => {
    const target = await startServer()
    const run = startLoad({ url: target.url, clients: 4, durationMs: 1_000, pauseMs: 5 })
    await new Promise((resolve) => setTimeout(resolve, 300))
    const failFrom = Date.now()
    target.failing = true
    await new Promise((resolve) => setTimeout(resolve, 200))
    target.failing = false
    const failUntil = Date.now()
    const result = await run.done
    expect(result.failed).toBeGreaterThan(0)
    expect(result.failuresByCode).toEqual({ HTTP_503: result.failed })
    expect(result.failureWindow).toBeDefined()
    expect(result.failureWindow!.firstAt).toBeGreaterThanOrEqual(failFrom)
    expect(result.failureWindow!.lastAt).toBeLessThanOrEqual(failUntil + 50)
    expect(result.failureWindow!.ms).toBe(result.failureWindow!.lastAt - result.failureWindow!.firstAt)
    expect(result.failures[0]).toMatchObject({ kind: 'fast', code: 'HTTP_503', message: 'unavailable' })
    expect(result.ok).toBeGreaterThan(0)
    // One outage: it began with the first failure and ended with a good answer after failing stopped.
    expect(result.outages).toHaveLength(1)
    expect(result.outages[0]!.firstFailureAt).toBe(result.failureWindow!.firstAt)
    expect(result.outages[0]!.recoveredAt).toBeGreaterThanOrEqual(failUntil - 5)
    expect(result.outages[0]!.failed).toBe(result.failed)
  })

  describe('outagesOf', () => {
    const failure = (at: number): LoadFailure => ({ at, kind: 'fast', code: 'ECONNRESET', message: '', client: 0 })

    it('ends an outage at the first good answer to a request sent at or after the first failure', () => {
      // A request sent at 90 and answered at 150 (it waited on the old version) proves nothing;
      // the one sent at 120 and answered at 130 ends it.
      const outages = outagesOf([failure(100), failure(110), failure(125)], [[90, 150], [120, 130], [200, 205]], 1_000)
      expect(outages).toEqual([{ firstFailureAt: 100, recoveredAt: 130, ms: 30, failed: 3 }])
    })

    it('starts a new outage for a failure after the recovery, and runs an unrecovered one to the end', () => {
      const outages = outagesOf([failure(100), failure(500), failure(900)], [[105, 110], [600, 640]], 1_000)
      expect(outages).toEqual([
        { firstFailureAt: 100, recoveredAt: 110, ms: 10, failed: 1 },
        { firstFailureAt: 500, recoveredAt: 640, ms: 140, failed: 1 },
        { firstFailureAt: 900, ms: 100, failed: 1 }
      ])
    })

    it('is empty without failures', () => {
      expect(outagesOf([], [[1, 2]], 10)).toEqual([])
    })
  })

  it('counts socket errors and slow requests cut on the way', async () => {
    const target = await startServer()
    const result = await startLoad({ url: target.url, path: '/reset', clients: 2, slowRequests: 2, slowPath: '/reset', slowDelayMs: 0, durationMs: 200 }).done
    expect(result.ok).toBe(0)
    expect(result.failed).toBe(result.sent + 2)
    expect(Object.keys(result.failuresByCode).every((code) => ['ECONNRESET', 'EPIPE', 'ECONNREFUSED'].includes(code))).toBe(true)
    expect(result.slow.every((slow) => !slow.ok && slow.code === 'ECONNRESET')).toBe(true)
  })

  it('starts slow requests on demand, and not at all once stopped', async () => {
    const target = await startServer()
    const run = startLoad({ url: target.url, clients: 1, slowRequests: 2, slowPath: '/slow', durationMs: 5_000 })
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(run.progress().slowInFlight).toBe(0)
    run.startSlow()
    expect(run.progress().slowInFlight).toBe(2)
    run.startSlow() // only once
    const result = await run.stop()
    expect(result.slow).toHaveLength(2)
    expect(result.slow.every((slow) => slow.ok)).toBe(true)

    const never = await startLoad({ url: target.url, clients: 1, slowRequests: 2, durationMs: 5_000 }).stop()
    expect(never.slow).toEqual([])
  })

  it('times out a request that gets no answer', async () => {
    const target = await startServer()
    server?.removeAllListeners('request')
    server?.on('request', () => undefined) // never answers
    const result = await startLoad({ url: target.url, clients: 1, durationMs: 50, requestTimeoutMs: 200 }).done
    expect(result.failuresByCode).toEqual({ ETIMEDOUT: 1 })
    await target.close()
  })

  it('sends to loopback only', () => {
    expect(() => startLoad({ url: 'http://10.0.0.1:80', clients: 1, durationMs: 10 })).toThrow(/only http:\/\/ to 127.0.0.0\/8/)
    expect(() => startLoad({ url: 'http://localhost:80', clients: 1, durationMs: 10 })).toThrow(/127.0.0.0\/8/)
    expect(() => startLoad({ url: 'https://127.0.0.1:80', clients: 1, durationMs: 10 })).toThrow(/127.0.0.0\/8/)
  })
})
