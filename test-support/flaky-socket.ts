/**
 * A docker connection that drops (issue 16): a unix-socket forwarder in front of an engine's socket.
 * Point the action at it with the `docker-host: unix://<path>` input; every connection accepted is
 * numbered from 1 and forwarded byte for byte to the engine, except the ones selected to be reset.
 *
 * A selected connection is destroyed in one of three ways (`ResetMode`):
 * - `accept`: at once, before a byte is read: the client's first write or read fails (EOF/EPIPE);
 * - `request`: once the client has sent its first bytes, which never reach the engine (ECONNRESET:
 *   the kernel resets a unix stream closed with unread data);
 * - `response`: the client's requests are forwarded; when the engine starts answering the first
 *   request that is not `/_ping` (the CLI pings first), both ends are destroyed. The engine has
 *   then acted, but the client never hears the answer: the outcome of that command is unknown.
 *
 * Connections are selected either by number (`resetRange(k, n)`: connections k..k+n-1) or by
 * what comes next (`resetNext(n)`: the next n connections accepted). `resetNext(n, 'response',
 * { startAt: /^(POST|DELETE) / })` lets the run begin at the first request that matches (say, the
 * first one that changes something): that connection and the n-1 accepted after it are reset.
 * Only a unix socket path that the caller owns is listened on; nothing here opens a network port.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export type ResetMode = 'accept' | 'request' | 'response'

export interface ConnectionRecord {
  /** 1-based number of the connection, in order of acceptance. */
  index: number
  /** Milliseconds since the forwarder started. */
  at: number
  /** How it was reset, or undefined when it was forwarded untouched. */
  reset?: ResetMode
  /** The request lines (`GET /v1.41/containers/json`) seen from the client on this connection. */
  requests: string[]
}

export interface FlakySocket {
  /** Filesystem path of the forwarder's socket. */
  readonly path: string
  /** `unix://<path>`: the value for the action's `docker-host` input or DOCKER_HOST. */
  readonly dockerHost: string
  /** Connections accepted so far. */
  readonly accepted: number
  /** Numbers of the connections that were reset so far. */
  readonly resets: number[]
  /** Every connection accepted so far, in order. */
  readonly connections: readonly ConnectionRecord[]
  /** Resets connections `from`..`from + count - 1` (1-based, counted from the start). */
  resetRange(from: number, count: number, mode?: ResetMode): void
  /**
   * Resets the next `count` connections accepted from now on. With `startAt` (mode `response`
   * only) connections are forwarded until a request line (`POST /v1.41/containers/create?…`)
   * matches it: that connection is the first of the run, and the next `count - 1` accepted follow.
   */
  resetNext(count: number, mode?: ResetMode, options?: { startAt?: RegExp }): void
  /** Forgets every selection not yet used: later connections are forwarded. */
  clearResets(): void
  /** A one-line-per-connection account for assertion messages (resets marked, request lines shown). */
  describe(): string
  /** Stops listening, destroys open connections and removes the socket's directory. Idempotent. */
  close(): Promise<void>
}

export interface FlakySocketOptions {
  /** Directory for the socket; default a fresh one under the OS temp dir, removed by `close()`. */
  dir?: string
  /** Mode for selections that do not name one. Default `accept`. */
  defaultMode?: ResetMode
}

/** Strips `unix://` from a DOCKER_HOST value. */
function socketPathOf(target: string): string {
  return target.startsWith('unix://') ? target.slice('unix://'.length) : target
}

const REQUEST_LINE = /(?:^|\r\n)(GET|HEAD|POST|PUT|DELETE|PATCH) (\S+) HTTP\/1\.[01]\r\n/g

/**
 * Starts a forwarder to `target` (an engine's `dockerHost`, `unix://…`, or a socket path) and
 * resolves once it listens.
 */
export async function startFlakySocket(target: string, options: FlakySocketOptions = {}): Promise<FlakySocket> {
  const upstreamPath = socketPathOf(target)
  const ownDir = options.dir === undefined
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'deploy-action-flaky-'))
  const path = join(dir, 'docker.sock')
  if (path.length > 100) throw new Error(`socket path too long for a unix socket: ${path}`)
  if (existsSync(path)) rmSync(path)
  const defaultMode = options.defaultMode ?? 'accept'
  const startedAt = Date.now()

  const records: ConnectionRecord[] = []
  /** Selected connection numbers → mode. */
  const selected = new Map<number, ResetMode>()
  let pendingNext: { count: number; mode: ResetMode; startAt?: RegExp }[] = []
  const open = new Set<Socket>()

  const modeFor = (index: number): ResetMode | undefined => {
    const byNumber = selected.get(index)
    if (byNumber) {
      selected.delete(index)
      return byNumber
    }
    const next = pendingNext[0]
    // A run that waits for its first request is begun by that request (see `startsRun`).
    if (next && !next.startAt) {
      next.count -= 1
      if (next.count <= 0) pendingNext.shift()
      return next.mode
    }
    return undefined
  }

  // Half-open both ways: `docker exec -i` closes its side after stdin and still reads the output.
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    const record: ConnectionRecord = { index: records.length + 1, at: Date.now() - startedAt, requests: [] }
    records.push(record)
    open.add(client)
    client.on('close', () => open.delete(client))
    client.on('error', () => undefined)
    let mode = modeFor(record.index)
    /** True when one of `lines` begins a run that waits for its first request: then this connection is its first. */
    const startsRun = (lines: string[]): boolean => {
      const next = pendingNext[0]
      if (mode !== undefined || !next?.startAt || !lines.some((line) => next.startAt?.test(line))) return false
      next.count -= 1
      next.startAt = undefined
      if (next.count <= 0) pendingNext.shift()
      mode = 'response'
      return true
    }
    const noteRequests = (chunk: Buffer): string[] => {
      const lines = [...chunk.toString('latin1').matchAll(REQUEST_LINE)].map((match) => `${match[1] ?? ''} ${match[2] ?? ''}`)
      record.requests.push(...lines)
      return lines
    }

    if (mode === 'accept') {
      record.reset = 'accept'
      client.destroy()
      return
    }
    if (mode === 'request') {
      record.reset = 'request'
      client.once('data', (chunk: Buffer) => {
        noteRequests(chunk)
        // Destroyed with the request unread: the peer sees ECONNRESET; the engine never sees it.
        client.destroy()
      })
      return
    }

    const upstream = connect({ path: upstreamPath, allowHalfOpen: true })
    open.add(upstream)
    upstream.on('close', (hadError) => {
      open.delete(upstream)
      // end(), not destroy(): what is still buffered for the client must reach it.
      if (hadError) client.destroy()
      else client.end()
    })
    upstream.on('error', () => client.destroy())
    client.on('close', () => upstream.destroy())
    let armed = false
    client.on('data', (chunk: Buffer) => {
      const lines = noteRequests(chunk)
      startsRun(lines)
      if (mode === 'response' && lines.some((line) => !/ \/(v[\d.]+\/)?_ping$/.test(line))) armed = true
      upstream.write(chunk)
    })
    client.on('end', () => upstream.end())
    upstream.on('data', (chunk: Buffer) => {
      if (mode === 'response' && armed) {
        record.reset = 'response'
        // The engine has acted and begun to answer; the client never gets the answer.
        upstream.destroy()
        client.destroy()
        return
      }
      client.write(chunk)
    })
    upstream.on('end', () => client.end())
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => {
      server.off('error', reject)
      resolve()
    })
  })
  // The test process must not stay alive for the forwarder alone.
  server.unref()

  let closed = false
  return {
    path,
    dockerHost: `unix://${path}`,
    get accepted() {
      return records.length
    },
    get resets() {
      return records.filter((record) => record.reset !== undefined).map((record) => record.index)
    },
    get connections() {
      return records
    },
    resetRange(from, count, mode = defaultMode) {
      for (let index = from; index < from + count; index++) selected.set(index, mode)
    },
    resetNext(count, mode = defaultMode, nextOptions = {}) {
      if (nextOptions.startAt && mode !== 'response') throw new Error('resetNext: startAt needs mode response')
      if (count > 0) pendingNext.push({ count, mode, startAt: nextOptions.startAt })
    },
    clearResets() {
      selected.clear()
      pendingNext = []
    },
    describe() {
      return records
        .map((record) => `#${record.index} +${record.at}ms${record.reset ? ` RESET(${record.reset})` : ''} ${record.requests.slice(0, 4).join(', ')}${record.requests.length > 4 ? ` …(+${record.requests.length - 4})` : ''}`)
        .join('\n')
    },
    async close() {
      if (closed) return
      closed = true
      for (const socket of open) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      if (ownDir) rmSync(dir, { recursive: true, force: true })
      else rmSync(path, { force: true })
    }
  }
}
