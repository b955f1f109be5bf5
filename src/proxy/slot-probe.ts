/**
 * The health check of a slot before the switch, at its own address, from inside the proxy
 * container: `docker exec -i <name>-proxy nc -w <s> <slot container> <app-port>` with a plain
 * HTTP/1.0 request on stdin. The slot publishes nothing and its address is on the app's network
 * only, so the proxy container, which is on that network and has busybox `nc` (the runtime API
 * needs it too), is the one place that reaches it on every kind of docker host, `ssh://` included.
 *
 * The answer is judged like `probeHttp` judges one: status in `expect-status`, body containing
 * `expect-body`. Nothing here touches docker; the strategy passes the exchange in.
 */
import { bodyMismatchDetail, type HttpProbeResult } from '../health/http-probe.js'
import { describeExpected, formatSeconds, MAX_BODY_BYTES } from '../health/http-probe.js'
import type { HealthSettings } from '../settings.js'

/** Sends `request` to the slot and resolves with the raw answer; rejects when the exchange failed. */
export type SlotExchange = (request: string, timeoutMs: number) => Promise<string>

/**
 * `GET <path> HTTP/1.0` with the configured headers, `Host` (unless configured) and
 * `Connection: close`: the app closes the connection after answering, so `nc` ends.
 */
export function slotRequest(path: string, host: string, headers: Record<string, string>): string {
  if (!/^\/[^\s]*$/.test(path)) throw new Error(`not a request path: ${JSON.stringify(path)}`)
  const lines = [`GET ${path} HTTP/1.0`]
  const names = new Set(Object.keys(headers).map((name) => name.toLowerCase()))
  if (!names.has('host')) lines.push(`Host: ${host}`)
  for (const [name, value] of Object.entries(headers)) {
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw new Error(`header ${JSON.stringify(name)} holds a line break`)
    if (name.toLowerCase() === 'connection') continue
    lines.push(`${name}: ${value}`)
  }
  if (!names.has('user-agent')) lines.push('User-Agent: deploy-action')
  lines.push('Connection: close', '', '')
  return lines.join('\r\n')
}

export interface ParsedAnswer {
  status: number
  body: string
}

/** Reads a raw HTTP/1.x answer: the status line, the headers, the body (de-chunked when chunked). */
export function parseHttpAnswer(raw: string): ParsedAnswer | undefined {
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(raw)
  if (!status) return undefined
  const headEnd = raw.indexOf('\r\n\r\n')
  const head = headEnd < 0 ? raw : raw.slice(0, headEnd)
  let body = headEnd < 0 ? '' : raw.slice(headEnd + 4)
  if (/^transfer-encoding:\s*chunked\s*$/im.test(head)) body = dechunk(body)
  return { status: Number(status[1]), body: body.slice(0, MAX_BODY_BYTES) }
}

function dechunk(body: string): string {
  let out = ''
  let rest = body
  for (;;) {
    const lineEnd = rest.indexOf('\r\n')
    if (lineEnd < 0) return out
    const size = parseInt(rest.slice(0, lineEnd).split(';')[0] ?? '', 16)
    if (!Number.isFinite(size) || size <= 0) return out
    out += rest.slice(lineEnd + 2, lineEnd + 2 + size)
    rest = rest.slice(lineEnd + 2 + size + 2)
  }
}

/** What a failed exchange (nc's or docker's error text) says, as a probe error code and detail. */
function connectionFailure(message: string): Pick<HttpProbeResult, 'error' | 'detail'> {
  if (/refused/i.test(message)) return { error: 'ECONNREFUSED', detail: 'connection refused' }
  if (/timed? ?out|did not finish within/i.test(message)) return { error: 'TIMEOUT', detail: 'no answer in time' }
  if (/bad address|unknown host|name|resolve/i.test(message)) return { error: 'ENOTFOUND', detail: 'the slot container has no address (it is not running)' }
  if (/unreachable|no route/i.test(message)) return { error: 'EHOSTUNREACH', detail: 'host unreachable' }
  const last = message.trim().split('\n').pop() ?? ''
  return { error: 'ECONNFAILED', detail: last.slice(0, 200) || 'no answer' }
}

/** One probe of a slot through `exchange`, judged against the health settings. Never throws. */
export async function probeSlot(exchange: SlotExchange, request: string, settings: HealthSettings, signal?: AbortSignal): Promise<HttpProbeResult> {
  const started = performance.now()
  const latency = (): number => Math.round(performance.now() - started)
  if (signal?.aborted) return { ok: false, latencyMs: 0, failure: 'connection', error: 'ABORTED', detail: 'cancelled' }
  let raw: string
  try {
    raw = await exchange(request, settings.timeoutMs)
  } catch (error) {
    if (signal?.aborted) return { ok: false, latencyMs: latency(), failure: 'connection', error: 'ABORTED', detail: 'cancelled' }
    return { ok: false, latencyMs: latency(), failure: 'connection', ...connectionFailure(error instanceof Error ? error.message : String(error)) }
  }
  const answer = parseHttpAnswer(raw)
  if (!answer) {
    return raw.trim() === ''
      ? { ok: false, latencyMs: latency(), failure: 'connection', error: 'ECONNRESET', detail: `the connection closed without an answer within ${formatSeconds(settings.timeoutMs)}` }
      : { ok: false, latencyMs: latency(), failure: 'connection', error: 'EPROTO', detail: 'the answer is not HTTP/1.x' }
  }
  const { status, body } = answer
  const accepted = settings.expectStatus.length > 0 ? settings.expectStatus.includes(status) : status >= 200 && status < 300
  if (!accepted) return { ok: false, status, latencyMs: latency(), failure: 'status', detail: `expected ${describeExpected(settings.expectStatus)}` }
  if (settings.expectBody !== undefined && !body.includes(settings.expectBody)) {
    return { ok: false, status, latencyMs: latency(), failure: 'body', detail: bodyMismatchDetail(settings.expectBody, body) }
  }
  return { ok: true, status, latencyMs: latency() }
}
