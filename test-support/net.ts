import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { createServer, isIP } from 'node:net'

/**
 * Test traffic may only go to loopback, or to addresses inside network namespaces that the
 * harness itself created (see `netns.ts`, which registers them here). Everything else is refused
 * before a socket is opened, so a typo in a test can never send traffic to a real host.
 */
const extraAllowedAddresses = new Set<string>()

/** Allows test traffic to one address that the harness owns (a veth end inside a test namespace). */
export function allowTestAddress(address: string): void {
  extraAllowedAddresses.add(address)
}

/** Withdraws an address registered with `allowTestAddress`. */
export function disallowTestAddress(address: string): void {
  extraAllowedAddresses.delete(address)
}

function assertTestAddress(url: URL): void {
  const host = url.hostname
  const loopback = isIP(host) === 4 && host.startsWith('127.')
  if (!loopback && !extraAllowedAddresses.has(host)) {
    throw new Error(`Test traffic is limited to 127.0.0.0/8 and harness-owned namespaces; refusing ${url.href}`)
  }
  if (url.protocol !== 'http:') throw new Error(`Only http: URLs are supported by the harness, got ${url.href}`)
}

/**
 * A TCP port on 127.0.0.1 that nothing listens on right now. The kernel picks it (port 0), so it
 * is never a well-known port such as 5000. Another process could take it before the caller binds
 * it; that window is tiny and acceptable in tests.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer()
      server.unref()
      server.on('error', reject)
      server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
        const address = server.address()
        const chosen = typeof address === 'object' && address ? address.port : 0
        server.close(() => resolve(chosen))
      })
    })
    // 5000 is the registry's conventional port and may be taken by a real registry later.
    if (port !== 5000 && port > 0) return port
  }
}

/**
 * A free 127.0.0.1 port below the kernel's ephemeral range (`ip_local_port_range`), for an app that
 * listens inside another network namespace. `freePort` picks from the ephemeral range, which is
 * also where that namespace's own outgoing connections (sshd forwards, registry pulls) take their
 * local ports, so the app's bind could find its port already taken there (seen in CI: the app
 * exited with code 1 at start). Ports below the range are never handed out automatically.
 */
export async function freePortBelowEphemeralRange(): Promise<number> {
  const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
  const floor = 20_000
  const ceiling = Math.max(floor + 1_000, low ?? 32_768)
  for (;;) {
    const port = floor + Math.floor(Math.random() * (ceiling - floor))
    if (await isFreeOnLoopback(port)) return port
  }
}

function isFreeOnLoopback(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.unref()
    server.on('error', () => resolve(false))
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)))
  })
}

export interface HttpResponse {
  status: number
  body: string
  headers: Record<string, string | string[] | undefined>
}

/**
 * GET one URL on loopback (or a harness namespace address), without retries. Rejects with the
 * socket error (e.g. `ECONNREFUSED` in `error.code`) when nothing answers.
 */
export async function httpGet(url: string, options: { timeoutMs?: number; headers?: Record<string, string> } = {}): Promise<HttpResponse> {
  const parsed = new URL(url)
  assertTestAddress(parsed)
  const timeoutMs = options.timeoutMs ?? 5_000
  return await new Promise((resolve, reject) => {
    // agent: false gives a fresh connection per request, so a server that has just died is
    // never hidden behind a pooled keep-alive socket.
    const req = request(parsed, { method: 'GET', agent: false, headers: options.headers, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('error', reject)
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers })
      )
    })
    req.on('timeout', () => req.destroy(Object.assign(new Error(`GET ${url} timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' })))
    req.on('error', reject)
    req.end()
  })
}

/**
 * Polls `url` until it answers with an HTTP response that `accept` likes (by default: any
 * response at all, whatever the status), and returns that response. Connection errors count as
 * "not up yet". Fails after `timeoutMs` with the last error seen.
 */
export async function waitForHttp(
  url: string,
  timeoutMs: number,
  options: { accept?: (response: HttpResponse) => boolean; intervalMs?: number } = {}
): Promise<HttpResponse> {
  assertTestAddress(new URL(url))
  const deadline = Date.now() + timeoutMs
  const intervalMs = options.intervalMs ?? 100
  let last = 'no attempt'
  for (;;) {
    try {
      const response = await httpGet(url, { timeoutMs: Math.max(200, Math.min(2_000, deadline - Date.now())) })
      if (!options.accept || options.accept(response)) return response
      last = `HTTP ${response.status} ${JSON.stringify(response.body.slice(0, 200))}`
    } catch (error) {
      last = (error as NodeJS.ErrnoException).code ?? String(error)
    }
    if (Date.now() >= deadline) throw new Error(`${url} did not answer as expected within ${timeoutMs} ms (last: ${last})`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}
