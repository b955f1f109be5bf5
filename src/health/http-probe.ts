import { request } from 'undici'
import type { HealthSettings } from '../settings.js'

/** The settings one HTTP probe reads. */
export type HttpProbeSettings = Pick<HealthSettings, 'expectStatus' | 'expectBody' | 'headers' | 'timeoutMs'>

/** The outcome of one HTTP probe. Never an exception: every failure is a result. */
export interface HttpProbeResult {
  ok: boolean
  /** Status code, when an answer arrived. */
  status?: number
  /** From sending the request to reading what was needed of the body, or to giving up. */
  latencyMs: number
  /** Short code when no usable answer arrived: `ECONNREFUSED`, `ECONNRESET`, `TIMEOUT`, `ABORTED`, … */
  error?: string
  /** Why it failed, for a person: `connection refused`, `expected 200`, `body does not contain "ok"`. */
  detail?: string
  /** What failed: no usable answer (`connection`), the status, or the body. */
  failure?: 'connection' | 'status' | 'body'
}

/**
 * A body that failed `expectBody`, as a person reads it in the reason: the start of its first
 * non-empty line, at most 60 characters (a health body that does not match usually says why, e.g.
 * `database unreachable`). The caller quotes it.
 */
export function bodyExcerpt(body: string): string {
  const line = body.split(/\r?\n/).map((text) => text.trim()).find((text) => text !== '') ?? ''
  // Control characters would break the annotation's one-line form.
  const printable = [...line].map((char) => (char < ' ' || char === '\u007f' ? ' ' : char)).join('')
  return printable.length > 60 ? `${printable.slice(0, 60)}…` : printable
}

/** The detail of a body that failed `expectBody`: `body does not contain "ok" (it begins "database unreachable")`. */
export function bodyMismatchDetail(expectBody: string, body: string): string {
  const excerpt = bodyExcerpt(body)
  return `body does not contain ${JSON.stringify(expectBody)} (${excerpt === '' ? 'it is empty' : `it begins ${JSON.stringify(excerpt)}`})`
}

/** The body is searched for `expectBody` within this many bytes; health endpoints are small. */
export const MAX_BODY_BYTES = 64 * 1024

/**
 * Sends one `GET url` and judges the answer: its status must be one of `expectStatus` (any 2xx
 * when the list is empty) and, when `expectBody` is set, the first 64 KiB of the body must contain it.
 *
 * Each probe uses a fresh connection (`reset: true` sends `connection: close`): after a switch a
 * new container owns the port, and a kept-alive socket to the old listener would test the wrong
 * process. Redirects are never followed: a 3xx is judged like any other status.
 * `timeoutMs` bounds the whole probe, connecting included. `signal` cancels it (error `ABORTED`).
 */
export async function probeHttp(url: string, settings: HttpProbeSettings, signal?: AbortSignal): Promise<HttpProbeResult> {
  const started = performance.now()
  const latency = (): number => Math.round(performance.now() - started)
  const timeout = new AbortController()
  const timer = setTimeout(() => timeout.abort(), settings.timeoutMs)
  const combined = signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal
  try {
    if (signal?.aborted) return { ok: false, latencyMs: 0, failure: 'connection', error: 'ABORTED', detail: 'cancelled' }
    const response = await request(url, {
      method: 'GET',
      headers: settings.headers,
      signal: combined,
      headersTimeout: settings.timeoutMs,
      bodyTimeout: settings.timeoutMs,
      reset: true,
      maxRedirections: 0
    })
    const status = response.statusCode
    const accepted = settings.expectStatus.length > 0 ? settings.expectStatus.includes(status) : status >= 200 && status < 300
    if (!accepted || settings.expectBody === undefined) {
      // The connection closes after this request anyway; no need to wait for a body nobody reads.
      discard(response.body)
      if (!accepted) return { ok: false, status, latencyMs: latency(), failure: 'status', detail: `expected ${describeExpected(settings.expectStatus)}` }
      return { ok: true, status, latencyMs: latency() }
    }
    const body = await readPrefix(response.body, MAX_BODY_BYTES)
    if (!body.includes(settings.expectBody)) {
      return { ok: false, status, latencyMs: latency(), failure: 'body', detail: bodyMismatchDetail(settings.expectBody, body) }
    }
    return { ok: true, status, latencyMs: latency() }
  } catch (error) {
    if (signal?.aborted) return { ok: false, latencyMs: latency(), failure: 'connection', error: 'ABORTED', detail: 'cancelled' }
    if (timeout.signal.aborted || isTimeout(error)) {
      return { ok: false, latencyMs: latency(), failure: 'connection', error: 'TIMEOUT', detail: `no answer within ${formatSeconds(settings.timeoutMs)}` }
    }
    return { ok: false, latencyMs: latency(), failure: 'connection', ...describeError(error) }
  } finally {
    clearTimeout(timer)
  }
}

/**
 * A failed probe as the end of a sentence that starts with `GET <url>`: `answered 500 (expected 200)`,
 * `answered 200, but the body does not contain "ok"`, `failed: connection refused (ECONNREFUSED)`.
 */
export function describeProbeFailure(result: HttpProbeResult): string {
  switch (result.failure) {
    case 'status':
      return `answered ${result.status ?? '?'} (${result.detail ?? 'unexpected status'})`
    case 'body':
      return `answered ${result.status ?? '?'}, but the ${result.detail ?? 'body did not match'}`
    default:
      return `failed: ${result.detail ?? 'no answer'}${result.error ? ` (${result.error})` : ''}`
  }
}

/** "200", "200 or 204", "a 2xx status" */
export function describeExpected(expectStatus: readonly number[]): string {
  if (expectStatus.length === 0) return 'a 2xx status'
  if (expectStatus.length === 1) return String(expectStatus[0])
  return `${expectStatus.slice(0, -1).join(', ')} or ${expectStatus[expectStatus.length - 1]}`
}

/** Reads at most `limit` bytes of a body as UTF-8, then drops the rest. */
async function readPrefix(body: Discardable & AsyncIterable<Buffer>, limit: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of body) {
      chunks.push(chunk)
      size += chunk.length
      if (size >= limit) break
    }
  } finally {
    discard(body)
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8')
}

interface Discardable {
  on(event: 'error', listener: (error: Error) => void): unknown
  destroy(): unknown
}

/**
 * Drops a response body without reading it. undici reports destroying an unfinished body as an
 * `error` event (RequestAbortedError); that is expected here, so it is swallowed rather than left
 * to crash the process as an unhandled error.
 */
function discard(body: Discardable): void {
  body.on('error', () => undefined)
  body.destroy()
}

function isTimeout(error: unknown): boolean {
  const code = errorCode(error)
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT'
}

const ERROR_TEXT: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  UND_ERR_SOCKET: 'connection closed before a complete answer',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
  EPIPE: 'connection closed while sending'
}

function describeError(error: unknown): { error: string; detail: string } {
  const code = errorCode(error) ?? 'ERROR'
  const message = error instanceof Error ? error.message : String(error)
  return { error: code, detail: ERROR_TEXT[code] ?? truncate(message, 200) }
}

/** The first `code` on the error or its causes (undici wraps socket errors). */
function errorCode(error: unknown): string | undefined {
  let current: unknown = error
  for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === 'string' && code) return code
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`
}

/** 2000 → "2 s", 250 → "0.25 s" */
export function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(ms < 10_000 ? 2 : 1))} s`
}
