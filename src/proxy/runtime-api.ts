/**
 * HAProxy's runtime API for the proxy strategy: command batches to move traffic between the two
 * slots, and `show stat` parsing to follow health checks and drains.
 *
 * Nothing here knows about docker. Every exchange goes through an injected {@link RuntimeApiSend}
 * that writes one line of commands to the API and resolves with everything it answered; the
 * strategy implements it as `docker exec -i <name>-proxy nc 127.0.0.1 9999` with the line on
 * stdin (the API listens on the proxy container's loopback only; see haproxy-config.ts).
 *
 * Protocol facts this relies on (HAProxy 2.6, checked against a real instance):
 * - without `prompt`, HAProxy reads one line, runs every `;`-separated command in it in order,
 *   answers, and closes the connection; so a line is a batch that is applied without any request
 *   being routed between its commands;
 * - each command's answer ends with an empty line; `set server … state` and
 *   `shutdown sessions server` answer nothing else on success, and an error text otherwise
 *   (`No such server.`); a failing command does not stop the following ones;
 * - `show stat <backend> 4 -1` prints a CSV header (`# pxname,svname,…`) and one row per server.
 *   `status` is e.g. `UP`, `DRAIN`, `MAINT`, `MAINT (resolution)`, `DOWN`, or a transition such
 *   as `DRAIN 1/2` (one more failed check takes it down) or `DOWN 1/2` (one more good check
 *   brings it up). Leaving MAINT sets a server's health to exactly `rise`, so it shows a
 *   transition until a fresh check passes: a settled `DRAIN`/`UP` with a good `check_status`
 *   after `prepare()` means HAProxy itself has seen the slot healthy since.
 */
import { HAPROXY_BACKEND, otherSlot, SLOTS, type Slot } from './haproxy-config.js'

/**
 * Writes `commands` (one line, ending in a newline) to the runtime API and resolves with the whole
 * answer. Rejects when the API cannot be reached (e.g. the proxy container is not running).
 */
export type RuntimeApiSend = (commands: string) => Promise<string>

/** A server's state as `show stat` reports it, first word only. */
export type ServerState = 'UP' | 'DOWN' | 'DRAIN' | 'MAINT' | 'NOLB' | 'NO_CHECK' | 'UNKNOWN'

export interface ServerStat {
  backend: string
  server: string
  /** `status` exactly as HAProxy printed it, e.g. `DRAIN 1/2` or `MAINT (resolution)`. */
  status: string
  state: ServerState
  /** False while a check-driven transition is pending (`UP 1/2`, `DOWN 1/2`). */
  settled: boolean
  /** Why a server is in MAINT beyond the admin's choice: `resolution` (no address yet) or `via` (tracking). */
  maintReason?: 'resolution' | 'via'
  /** Last health-check result, e.g. `L7OK`, `L4CON`, `L7STS`; empty when none (e.g. in MAINT). */
  checkStatus: string
  /** A check is running right now (`* L7OK`); `checkStatus` is then the previous result. */
  checkInProgress: boolean
  /** HTTP status of the last layer-7 check, if any. */
  checkCode?: number
  /** HAProxy's words for the last check, e.g. `Layer7 check passed` or `Connection refused`. */
  checkDescription: string
  /** Requests (streams) on this server right now: what a drain waits for. */
  currentSessions: number
  /** Requests waiting in this server's queue. */
  queuedRequests: number
  totalSessions: number
  /** `ip:port` HAProxy connects to (resolved from the slot's container name); undefined before resolution. */
  address?: string
  /** Seconds since the last state change. */
  lastChangeSeconds?: number
}

/** The runtime API answered with an error, or with something that could not be parsed. */
export class RuntimeApiError extends Error {
  constructor(
    message: string,
    readonly commands: string,
    readonly response: string
  ) {
    super(message)
    this.name = 'RuntimeApiError'
  }
}

/** Check results that mean "healthy" (layer 4 connect, layer 6 TLS, layer 7 HTTP, layer 7 conditionally). */
const HEALTHY_CHECKS = new Set(['L4OK', 'L6OK', 'L7OK', 'L7OKC'])

/** Joins commands into one batch line: HAProxy runs them in order, nothing interleaved. */
export function batch(commands: readonly string[]): string {
  for (const command of commands) {
    if (/[;\r\n]/.test(command) || command.trim() === '') {
      throw new Error(`runtime API command must be one non-empty command without ';' or newlines: ${JSON.stringify(command)}`)
    }
  }
  return `${commands.join('; ')}\n`
}

function serverRef(slot: Slot, backend: string): string {
  if (!SLOTS.includes(slot)) throw new Error(`unknown slot ${JSON.stringify(slot)}`)
  return `${backend}/${slot}`
}

/**
 * The one batch that switches traffic to `to`: it becomes ready first, then the other slot drains
 * (takes no new requests and finishes its in-flight ones). A slot that was live drains without
 * HAProxy's checks, as it ran (`no-check`, see haproxy-config.ts); a candidate that was prepared
 * keeps its checks. Switching back is the same batch for the other slot.
 */
export function switchCommands(to: Slot, backend = HAPROXY_BACKEND): string {
  return batch([`set server ${serverRef(to, backend)} state ready`, `set server ${serverRef(otherSlot(to), backend)} state drain`])
}

/** Takes `slot` out of MAINT into DRAIN: HAProxy health-checks it while it gets no traffic. */
export function prepareCommands(slot: Slot, backend = HAPROXY_BACKEND): string {
  return batch([`set server ${serverRef(slot, backend)} state drain`])
}

/** Cuts whatever is still open on `slot` (e.g. WebSockets) at the end of a drain; it stays in DRAIN. */
export function cutSessionsCommands(slot: Slot, backend = HAPROXY_BACKEND): string {
  return batch([`shutdown sessions server ${serverRef(slot, backend)}`])
}

/**
 * Puts `slot` in MAINT (no traffic, no checks, as the rendered config has the idle slot) and cuts
 * anything still open on it: before its container is stopped.
 */
export function retireCommands(slot: Slot, backend = HAPROXY_BACKEND): string {
  return batch([`set server ${serverRef(slot, backend)} state maint`, `shutdown sessions server ${serverRef(slot, backend)}`])
}

/**
 * Turns HAProxy's own health checks of `slot` on or off. The live slot runs without them: it is
 * the only server that takes requests, so a check that times out on a busy host (three in a row
 * take it DOWN) could only turn slow answers into 503s for everyone, and the deploy watches the
 * new version itself. A slot is checked again before it is switched to (`enable` before `prepare`).
 */
export function healthChecksCommands(slot: Slot, enabled: boolean, backend = HAPROXY_BACKEND): string {
  return batch([`${enabled ? 'enable' : 'disable'} health ${serverRef(slot, backend)}`])
}

/** `show stat` for the servers of one backend only. */
export function showStatCommands(backend = HAPROXY_BACKEND): string {
  if (!/^[A-Za-z0-9_.:-]+$/.test(backend)) throw new Error(`invalid backend name ${JSON.stringify(backend)}`)
  return `show stat ${backend} 4 -1\n`
}

/** `show servers state` for one backend: each server's admin state, which `show stat` folds into one word. */
export function showServersStateCommands(backend = HAPROXY_BACKEND): string {
  if (!/^[A-Za-z0-9_.:-]+$/.test(backend)) throw new Error(`invalid backend name ${JSON.stringify(backend)}`)
  return `show servers state ${backend}\n`
}

/** Admin-state bits of `show servers state` (HAProxy's SRV_ADMF_*). */
const ADMIN_MAINT = 0x01 | 0x02 | 0x20 // forced, inherited, resolution
const ADMIN_DRAIN = 0x08 | 0x10 // forced, inherited

/** One server's line of `show servers state`: what the admin (and the runtime API) decided for it. */
export interface ServerAdminState {
  backend: string
  server: string
  /** The raw `srv_admin_state` bit field. */
  adminState: number
  /** `srv_op_state`: 0 stopped, 1 starting, 2 running, 3 stopping. */
  opState: number
  /** In maintenance (`state maint`, `disabled` in the config and not enabled since, or no address yet). */
  maint: boolean
  /** Draining (`state drain`): checked, but given no new requests. */
  drain: boolean
  /** Ready: the load balancer sends it new requests whenever its checks pass. */
  ready: boolean
}

/** Parses `show servers state` (a version line, a `# be_id be_name …` header, one line per server). */
export function parseServersState(output: string): ServerAdminState[] {
  const lines = output.split('\n').map((line) => line.replace(/\r$/, '').trim())
  const headerLine = lines.find((line) => line.startsWith('# be_id') || line.startsWith('# be_name'))
  if (!headerLine) throw new RuntimeApiError(`unexpected answer to show servers state: ${JSON.stringify(output.slice(0, 300))}`, 'show servers state', output)
  const header = headerLine.slice(2).split(/\s+/)
  const column = (name: string): number => header.indexOf(name)
  for (const name of ['be_name', 'srv_name', 'srv_op_state', 'srv_admin_state']) {
    if (column(name) < 0) throw new RuntimeApiError(`show servers state has no ${name} column`, 'show servers state', output)
  }
  const states: ServerAdminState[] = []
  for (const line of lines.slice(lines.indexOf(headerLine) + 1)) {
    if (line === '' || line.startsWith('#')) continue
    const fields = line.split(/\s+/)
    if (fields.length < header.length - 2) continue
    const adminState = Number(fields[column('srv_admin_state')])
    const opState = Number(fields[column('srv_op_state')])
    if (!Number.isInteger(adminState) || !Number.isInteger(opState)) continue
    const maint = (adminState & ADMIN_MAINT) !== 0
    const drain = !maint && (adminState & ADMIN_DRAIN) !== 0
    states.push({ backend: fields[column('be_name')] ?? '', server: fields[column('srv_name')] ?? '', adminState, opState, maint, drain, ready: !maint && !drain })
  }
  return states
}

/** Both slots as one look sees them: the admin's decision and the checks' view. */
export interface SlotsSnapshot {
  admin: Record<Slot, ServerAdminState>
  stat: Record<Slot, ServerStat>
  /** The one slot that takes new requests (admin ready), or undefined when none or both do. */
  routed?: Slot
}

/** Throws a {@link RuntimeApiError} unless the answer to commands that print nothing on success is empty. */
export function expectSilentSuccess(commands: string, response: string): void {
  if (response.trim() !== '') {
    throw new RuntimeApiError(`HAProxy's runtime API refused "${commands.trim()}": ${response.trim()}`, commands, response)
  }
}

function parseState(status: string): Pick<ServerStat, 'state' | 'settled' | 'maintReason'> {
  const trimmed = status.trim()
  if (/^no check$/i.test(trimmed)) return { state: 'NO_CHECK', settled: true }
  const word = /^[A-Z]+/.exec(trimmed)?.[0] ?? ''
  const state: ServerState = (['UP', 'DOWN', 'DRAIN', 'MAINT', 'NOLB'] as const).find((known) => known === word) ?? 'UNKNOWN'
  const settled = !/\d+\/\d+/.test(trimmed)
  const reason = /\((resolution|via)\b/.exec(trimmed)?.[1] as 'resolution' | 'via' | undefined
  return reason ? { state, settled, maintReason: reason } : { state, settled }
}

function toInt(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined
  const number = Number(value)
  return Number.isFinite(number) ? number : undefined
}

/**
 * Parses `show stat` CSV into one entry per server (FRONTEND and BACKEND rows are left out).
 * Columns are found by the header's names, so other HAProxy versions' extra columns do not matter.
 */
export function parseShowStat(output: string): ServerStat[] {
  const lines = output.split('\n').map((line) => line.replace(/\r$/, ''))
  const headerLine = lines.find((line) => line.startsWith('# '))
  if (!headerLine) throw new RuntimeApiError(`unexpected answer to show stat: ${JSON.stringify(output.slice(0, 300))}`, 'show stat', output)
  const header = headerLine.slice(2).split(',')
  const column = (name: string): number => header.indexOf(name)
  const required = ['pxname', 'svname', 'status', 'scur']
  for (const name of required) {
    if (column(name) < 0) throw new RuntimeApiError(`show stat has no ${name} column`, 'show stat', output)
  }
  const servers: ServerStat[] = []
  for (const line of lines) {
    if (line === '' || line.startsWith('#')) continue
    const fields = line.split(',')
    const field = (name: string): string | undefined => {
      const index = column(name)
      return index < 0 ? undefined : fields[index]
    }
    const server = field('svname') ?? ''
    if (server === 'FRONTEND' || server === 'BACKEND' || server === '') continue
    const status = field('status') ?? ''
    const rawCheck = (field('check_status') ?? '').trim()
    const checkInProgress = rawCheck.startsWith('*')
    const address = field('addr')?.trim()
    const entry: ServerStat = {
      backend: field('pxname') ?? '',
      server,
      status,
      ...parseState(status),
      checkStatus: rawCheck.replace(/^\*\s*/, ''),
      checkInProgress,
      checkDescription: (field('last_chk') || field('check_desc') || '').trim(),
      currentSessions: toInt(field('scur')) ?? 0,
      queuedRequests: toInt(field('qcur')) ?? 0,
      totalSessions: toInt(field('stot')) ?? 0
    }
    const checkCode = toInt(field('check_code'))
    if (checkCode !== undefined) entry.checkCode = checkCode
    // Before resolution HAProxy shows no address, or port only.
    if (address && !address.startsWith(':') && !address.startsWith('-')) entry.address = address
    const lastChange = toInt(field('lastchg'))
    if (lastChange !== undefined) entry.lastChangeSeconds = lastChange
    servers.push(entry)
  }
  return servers
}

/** True when HAProxy has seen `stat`'s server healthy since it last left MAINT. */
export function isHealthy(stat: ServerStat): boolean {
  if (stat.state === 'NO_CHECK') return true
  return (stat.state === 'UP' || stat.state === 'DRAIN') && stat.settled && HEALTHY_CHECKS.has(stat.checkStatus)
}

/** One line on a server, for messages: `green DRAIN 1/2 at 10.253.0.4:3000, check L4CON (Connection refused)`. */
export function describeServer(stat: ServerStat): string {
  const check = stat.checkStatus ? `, check ${stat.checkStatus}${stat.checkDescription ? ` (${stat.checkDescription})` : ''}` : ''
  return `${stat.server} ${stat.status} at ${stat.address ?? 'no address yet'}${check}, ${stat.currentSessions} in flight`
}

export interface DrainResult {
  /** True when the slot had no request in flight or queued before the deadline. */
  drained: boolean
  /** Requests still in flight at the end (0 when drained). */
  remainingSessions: number
  waitedMs: number
}

export interface RuntimeOptions {
  /** Backend holding the slots. Default `app`. */
  backend?: string
  /** Injected for tests. */
  sleep?: (ms: number) => Promise<void>
  /** Injected for tests. */
  now?: () => number
}

export interface WaitOptions {
  /** Give up after this long. */
  timeoutMs: number
  /** Poll interval. Default 250 ms (each poll is one `docker exec`, which takes ~0.2 s by itself). */
  intervalMs?: number
}

/** The runtime API of one app's proxy: slot-level operations on top of an injected `send`. */
export class HaproxyRuntime {
  private readonly backend: string
  private readonly sleep: (ms: number) => Promise<void>
  private readonly now: () => number

  constructor(
    private readonly send: RuntimeApiSend,
    options: RuntimeOptions = {}
  ) {
    this.backend = options.backend ?? HAPROXY_BACKEND
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)))
    this.now = options.now ?? Date.now
  }

  /** Both slots' current stats. Throws when the backend lacks one of them (not our config). */
  async servers(): Promise<Record<Slot, ServerStat>> {
    const commands = showStatCommands(this.backend)
    const response = await this.send(commands)
    const stats = parseShowStat(response).filter((stat) => stat.backend === this.backend)
    const find = (slot: Slot): ServerStat => {
      const stat = stats.find((candidate) => candidate.server === slot)
      if (!stat) {
        throw new RuntimeApiError(`HAProxy's backend ${this.backend} has no server ${slot}; is this proxy's config ours?`, commands, response)
      }
      return stat
    }
    return { blue: find('blue'), green: find('green') }
  }

  /**
   * Admin state and stats of both slots with one exchange (`show servers state; show stat`), and
   * the slot HAProxy routes new requests to: the one the admin made ready, whatever its checks say.
   */
  async snapshot(): Promise<SlotsSnapshot> {
    const commands = `${showServersStateCommands(this.backend).trim()}; ${showStatCommands(this.backend)}`
    const response = await this.send(commands)
    const csvAt = response.search(/^# pxname/m)
    if (csvAt < 0) throw new RuntimeApiError(`unexpected answer to ${commands.trim()}: ${JSON.stringify(response.slice(0, 300))}`, commands, response)
    const admins = parseServersState(response.slice(0, csvAt)).filter((state) => state.backend === this.backend)
    const stats = parseShowStat(response.slice(csvAt)).filter((stat) => stat.backend === this.backend)
    const pick = <T extends { server: string }>(list: T[], slot: Slot): T => {
      const found = list.find((entry) => entry.server === slot)
      if (!found) throw new RuntimeApiError(`HAProxy's backend ${this.backend} has no server ${slot}; is this proxy's config ours?`, commands, response)
      return found
    }
    const admin = { blue: pick(admins, 'blue'), green: pick(admins, 'green') }
    const stat = { blue: pick(stats, 'blue'), green: pick(stats, 'green') }
    const ready = SLOTS.filter((slot) => admin[slot].ready)
    return ready.length === 1 ? { admin, stat, routed: ready[0] } : { admin, stat }
  }

  /** One slot's current stats. */
  async server(slot: Slot): Promise<ServerStat> {
    return (await this.servers())[slot]
  }

  /**
   * The slot that takes new requests: the one that is UP (or NOLB/no check) while the other is
   * not. Undefined when neither or both do (e.g. during a switch, or when the live slot is DOWN).
   */
  async liveSlot(): Promise<Slot | undefined> {
    const servers = await this.servers()
    const serving = SLOTS.filter((slot) => ['UP', 'NOLB', 'NO_CHECK'].includes(servers[slot].state))
    return serving.length === 1 ? serving[0] : undefined
  }

  private async run(commands: string): Promise<void> {
    expectSilentSuccess(commands, await this.send(commands))
  }

  /** MAINT → DRAIN for a new version's slot: HAProxy checks it along its own path, with no user traffic. */
  async prepare(slot: Slot): Promise<void> {
    await this.run(prepareCommands(slot, this.backend))
  }

  /**
   * Waits until HAProxy has seen `slot` healthy since `prepare()` (see {@link isHealthy}) and,
   * when `address` (the slot container's IP) is given, resolved its name to that address:
   * a re-created container may get a new one and DNS is re-read every second. Rejects on timeout
   * with the last state seen, e.g. `green DOWN at 10.253.0.4:3000, check L7STS (HTTP status check returned code <503>)`.
   */
  async waitUntilHealthy(slot: Slot, options: WaitOptions & { address?: string }): Promise<ServerStat> {
    const deadline = this.now() + options.timeoutMs
    for (;;) {
      const stat = await this.server(slot)
      const addressOk = options.address === undefined || stat.address?.startsWith(`${options.address}:`) === true
      if (isHealthy(stat) && addressOk) return stat
      if (this.now() >= deadline) {
        const why = addressOk ? '' : ` (expected address ${options.address})`
        throw new Error(`HAProxy did not see slot ${slot} healthy within ${options.timeoutMs} ms: ${describeServer(stat)}${why}`)
      }
      await this.sleep(options.intervalMs ?? 250)
    }
  }

  /**
   * Switches new requests to `to` in one batch (see {@link switchCommands}). Requests in flight on
   * the other slot finish there. If HAProxy refuses the batch, the other slot is made ready again
   * before this throws, so a failed switch never leaves the app without a server.
   */
  async switchTo(to: Slot): Promise<void> {
    const commands = switchCommands(to, this.backend)
    const response = await this.send(commands)
    try {
      expectSilentSuccess(commands, response)
    } catch (error) {
      await this.send(batch([`set server ${serverRef(otherSlot(to), this.backend)} state ready`])).catch(() => undefined)
      throw error
    }
  }

  /**
   * Waits until `slot` has no request in flight or queued, or until `timeoutMs` (proxy.drain)
   * has passed, whichever comes first. Does not cut anything: see {@link cutSessions}.
   */
  async waitForDrain(slot: Slot, options: WaitOptions): Promise<DrainResult> {
    const started = this.now()
    const deadline = started + options.timeoutMs
    for (;;) {
      const stat = await this.server(slot)
      const remaining = stat.currentSessions + stat.queuedRequests
      if (remaining === 0) return { drained: true, remainingSessions: 0, waitedMs: this.now() - started }
      if (this.now() >= deadline) return { drained: false, remainingSessions: remaining, waitedMs: this.now() - started }
      await this.sleep(Math.min(options.intervalMs ?? 250, Math.max(0, deadline - this.now())))
    }
  }

  /** Cuts what is still open on `slot` (end of the drain window); the slot stays in DRAIN, ready to switch back to. */
  async cutSessions(slot: Slot): Promise<void> {
    await this.run(cutSessionsCommands(slot, this.backend))
  }

  /** HAProxy's health checks of `slot` on or off (see {@link healthChecksCommands}). */
  async setHealthChecks(slot: Slot, enabled: boolean): Promise<void> {
    await this.run(healthChecksCommands(slot, enabled, this.backend))
  }

  /** MAINT and cut: before `slot`'s container is stopped, so HAProxy stops sending it anything, checks included. */
  async retire(slot: Slot): Promise<void> {
    await this.run(retireCommands(slot, this.backend))
  }

  /**
   * Drain as the strategy runs it after a switch: wait up to `drainMs` for `slot` to finish its
   * in-flight requests, then cut whatever is left. The slot stays in DRAIN (health-checked,
   * ready for an instant switch back) until {@link retire}.
   */
  async drain(slot: Slot, drainMs: number, intervalMs?: number): Promise<DrainResult> {
    const result = await this.waitForDrain(slot, { timeoutMs: drainMs, intervalMs })
    if (!result.drained) await this.cutSessions(slot)
    return result
  }
}
