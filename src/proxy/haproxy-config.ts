/**
 * The haproxy.cfg of the proxy strategy, rendered from validated values only.
 *
 * Layout (the strategy creates all of this; see the README of issue 11):
 * - the app's user network holds the proxy container `<name>-proxy` and two slot containers,
 *   `<name>-blue` and `<name>-green`, which publish nothing;
 * - HAProxy listens on a fixed port inside its own container, {@link PROXY_LISTEN_PORT} (8080:
 *   above 1024, because the official image runs as user `haproxy` without
 *   CAP_NET_BIND_SERVICE); the proxy container publishes `<proxy.bind>:<proxy.port>` → 8080;
 * - backend `app` has servers `blue` and `green`, addressed by container name and resolved by
 *   docker's embedded DNS (127.0.0.11) at start and again every second at run time, because a
 *   slot container gets a new address each time it is created;
 * - the live slot is enabled and runs without HAProxy's checks (`no-check`: it is the only server,
 *   and on a busy host slow checks would take it DOWN and turn slow answers into 503s for
 *   everyone; the action's own watch covers a new version), the other one `disabled` (MAINT). The
 *   file always says what runs, so a restart or a reload of the proxy comes back exactly as it
 *   was: whatever the action sets through the runtime API, it also writes here;
 * - the check HAProxy runs on a slot before the switch is the action's own health check: the
 *   path, `health.headers` (with `Host`), `health.expect-status`, `health.expect-body`,
 *   `health.timeout` and `health.interval`;
 * - a change is applied with a seamless reload (master-worker: SIGUSR2 to the master), and
 *   `option idle-close-on-response` keeps idle keep-alive connections open through it, so a
 *   reload under load fails no request;
 * - the runtime API listens on the container's loopback only (`127.0.0.1:9999`, level admin) and
 *   is reached with `docker exec -i <name>-proxy nc 127.0.0.1 9999` (runtime-api.ts).
 *
 * Nothing from the deploy config is pasted in unchecked: names must be docker names that are also
 * DNS names, the health path a plain URL path, numbers integers in range. Anything else throws a
 * {@link ProxyConfigError} rather than being escaped, so no value can add a directive.
 */

/** The two slots of an app behind the proxy. */
export type Slot = 'blue' | 'green'
export const SLOTS: readonly Slot[] = ['blue', 'green']

/** The backend holding the two slots; servers are named after the slots. */
export const HAPROXY_BACKEND = 'app'
/** The frontend users connect to. */
export const HAPROXY_FRONTEND = 'http-in'
/** Port HAProxy listens on inside the proxy container (published as `<bind>:<proxy.port>`). */
export const PROXY_LISTEN_PORT = 8080
/** The runtime API: on the proxy container's loopback only, never published. */
export const RUNTIME_API_HOST = '127.0.0.1'
export const RUNTIME_API_PORT = 9999
/** Where the official image (and the test image) expects the configuration. */
export const HAPROXY_CONFIG_PATH = '/usr/local/etc/haproxy/haproxy.cfg'
/** Docker's embedded DNS server, present in every container on a user-defined network. */
export const DOCKER_DNS = '127.0.0.11:53'

export interface HaproxyTimeouts {
  /**
   * One attempt to connect to a slot. Short, because the slots are on the proxy's own docker
   * network and a live one accepts within a millisecond: an attempt that takes longer went to a
   * slot that died (its address is gone, so nothing answers, not even a reset) or was dropped by
   * a full listen queue. Either way the next attempt (see {@link CONNECT_BUDGET_MS}) sends a new
   * SYN, through the load balancer again. Also the connect timeout of HAProxy's checks when
   * shorter than their interval.
   */
  connectMs: number
  /** Client inactivity (per direction). */
  clientMs: number
  /** Server inactivity: must exceed the app's slowest response. */
  serverMs: number
  /** A client has this long to send a complete request head. */
  httpRequestMs: number
  /** An idle keep-alive client connection is kept this long. */
  httpKeepAliveMs: number
  /** A request waits this long for a free connection slot. */
  queueMs: number
  /** Upgraded connections (WebSocket) may be idle this long. */
  tunnelMs: number
  /** One health check may take this long. */
  checkMs: number
}

export const DEFAULT_TIMEOUTS: Readonly<HaproxyTimeouts> = {
  connectMs: 250,
  clientMs: 60_000,
  serverMs: 60_000,
  httpRequestMs: 10_000,
  httpKeepAliveMs: 10_000,
  queueMs: 30_000,
  tunnelMs: 3_600_000,
  checkMs: 3_000
}

/**
 * How long a request may go on trying to connect to a slot before it gets a 503: `retries` is
 * rendered so that all attempts together (`timeout connect` each) last about this long, which is
 * what one 5 s attempt gave before. With `option redispatch 1` every retry goes through the load
 * balancer again, so a request that was sent to a slot that died reaches the other slot with the
 * first attempt after the switch back, at most `timeout connect` later, not 5 s later.
 */
export const CONNECT_BUDGET_MS = 5_000

/** `retries` for a connect timeout: enough attempts to fill {@link CONNECT_BUDGET_MS}, and never fewer than HAProxy's default 3. */
export function connectRetries(connectMs: number): number {
  return Math.max(3, Math.ceil(CONNECT_BUDGET_MS / connectMs) - 1)
}

export interface HaproxyConfigOptions {
  /** The app's name (a docker name). The slot containers are `<name>-blue` and `<name>-green` unless `slotHosts` says otherwise. */
  name: string
  /** proxy.app-port: the port the app listens on inside its container. */
  appPort: number
  /** The slot that serves: enabled here, without checks; the other slot is `disabled`. */
  live: Slot
  /**
   * The port each slot's app listens on, when it differs from `appPort`: a slot keeps the port it
   * was started with, so a change of `proxy.app-port` reaches the new slot only.
   */
  slotPorts?: Partial<Record<Slot, number>>
  /** The HTTP check of a slot beyond its path (`healthPath`): the action's own health settings. */
  check?: HaproxyCheck
  /** Host names of the slot containers on the app network (container names). Default `<name>-<slot>`. */
  slotHosts?: Partial<Record<Slot, string>>
  /**
   * URL path HAProxy checks each slot on (`option httpchk GET <path>`, 2xx/3xx is healthy), e.g.
   * the deploy's health path. Without it, checks only connect (layer 4).
   */
  healthPath?: string
  /**
   * proxy.drain, in ms: on a soft stop of HAProxy (`docker stop`/`restart` with
   * `--stop-signal SIGUSR1`) in-flight requests may finish for this long (`hard-stop-after`).
   * At least 1 s is rendered. Runtime switches drain under runtime-api.ts's control instead.
   */
  drainMs: number
  /** Port HAProxy listens on inside its container. Default {@link PROXY_LISTEN_PORT}. */
  listenPort?: number
  /** Global connection limit. Default 4096 (without one, HAProxy sizes itself from the container's huge fd limit). */
  maxConnections?: number
  /**
   * Health-check interval. Default 2 s (half that while a state change is pending). A check's
   * connect timeout is min(timeout connect, inter): 250 ms by default. Only a slot that takes no
   * user traffic is checked (the live one runs `no-check`), so its listen queue does not overflow;
   * a check whose SYN was lost anyway fails once, and it takes three in a row (`fall 3`) to take
   * a slot DOWN.
   */
  checkIntervalMs?: number
  timeouts?: Partial<HaproxyTimeouts>
}

/** The action's health check, as HAProxy runs it on a slot. */
export interface HaproxyCheck {
  /** The `Host` header: the public URL's host. */
  host?: string
  /** `health.headers` (a `Host` among them wins over `host`). */
  headers?: Record<string, string>
  /** `health.expect-status`; default any 2xx or 3xx. */
  expectStatus?: number[]
  /** `health.expect-body`: a substring the body must contain. */
  expectBody?: string
}

/** A value that cannot go into haproxy.cfg. The message names the setting and says what is allowed. */
export class ProxyConfigError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ProxyConfigError'
  }
}

/** The other slot. */
export function otherSlot(slot: Slot): Slot {
  return slot === 'blue' ? 'green' : 'blue'
}

/** The container name of `slot` for app `name`, e.g. `web-green`. */
export function slotContainerName(name: string, slot: Slot): string {
  return `${validateDockerName(name, 'name')}-${slot}`
}

/** The proxy container's name for app `name`: `<name>-proxy`. */
export function proxyContainerName(name: string): string {
  return `${validateDockerName(name, 'name')}-proxy`
}

const DOCKER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

/** Checks a docker object name (container, network) and returns it; throws otherwise. */
export function validateDockerName(value: string, setting: string): string {
  if (typeof value !== 'string' || !DOCKER_NAME.test(value) || value.length > 128) {
    throw new ProxyConfigError(
      `${setting}: ${JSON.stringify(value)} is not a docker name; expected letters, digits, '_', '.' and '-', starting with a letter or digit, at most 128 characters`
    )
  }
  return value
}

/**
 * Checks a slot host name: a docker container name that docker's DNS can answer for, i.e. also a
 * DNS name (labels of 1 to 63 characters, at most 253 in all). Returns it; throws otherwise.
 */
export function validateSlotHost(value: string, setting: string): string {
  validateDockerName(value, setting)
  const labels = value.split('.')
  if (value.length > 253 || labels.some((label) => label.length === 0 || label.length > 63)) {
    throw new ProxyConfigError(
      `${setting}: ${JSON.stringify(value)} cannot be resolved by docker's DNS; each dot-separated part must have 1 to 63 characters (container names longer than 63 characters do not resolve)`
    )
  }
  return value
}

/** RFC 3986 path and query characters, less those with a meaning in haproxy.cfg (quotes, `$`, `#`, `\`). */
const URL_PATH = /^\/[A-Za-z0-9\-._~!&()*+,;=:@%/?]*$/

/** Checks a URL path such as `/health` or `/up?full=1` and returns it; throws otherwise. */
/**
 * The path and query of a health URL (`{host}` allowed), which HAProxy and the slot probe request
 * at a slot's own address; undefined when the URL cannot be parsed.
 */
export function healthUrlPath(url: string): string | undefined {
  try {
    const parsed = new URL(url.replaceAll('{host}', 'host.invalid'))
    return parsed.pathname + parsed.search
  } catch {
    return undefined
  }
}

export function validateUrlPath(value: string, setting: string): string {
  if (typeof value !== 'string' || !URL_PATH.test(value) || value.length > 1024 || /%(?![0-9A-Fa-f]{2})/.test(value)) {
    throw new ProxyConfigError(
      `${setting}: ${JSON.stringify(value)} is not a plain URL path; expected a path starting with '/', without spaces, quotes, '$', '#' or '\\' (percent-encode them)`
    )
  }
  return value
}

/** An HTTP header name: an RFC 9110 token. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/
/**
 * A value HAProxy reads as one word inside double quotes: printable ASCII without `"`, `\`, `$`
 * (variable expansion) or a control character. Anything else is refused, never escaped.
 */
const QUOTABLE = /^[\x20-\x7e]{1,1024}$/

/** Checks a value that goes into haproxy.cfg inside double quotes and returns it quoted; throws otherwise. */
export function quotedValue(value: string, setting: string): string {
  if (typeof value !== 'string' || !QUOTABLE.test(value) || /["\\$]/.test(value)) {
    throw new ProxyConfigError(`${setting}: ${JSON.stringify(value)} cannot be checked by HAProxy; use printable ASCII without '"', '\\' or '$'`)
  }
  return `"${value}"`
}

/** Checks an HTTP header name and returns it; throws otherwise. */
export function validateHeaderName(value: string, setting: string): string {
  if (typeof value !== 'string' || !HEADER_NAME.test(value)) throw new ProxyConfigError(`${setting}: ${JSON.stringify(value)} is not an HTTP header name`)
  return value
}

/** The `http-check` lines of a slot check: the request with its headers, then what the answer must be. */
function checkLines(path: string, check: HaproxyCheck | undefined): string[] {
  const headers: [string, string][] = []
  const given = Object.entries(check?.headers ?? {})
  if (check?.host !== undefined && !given.some(([name]) => name.toLowerCase() === 'host')) headers.push(['Host', check.host])
  headers.push(...given)
  const send = ['  http-check send meth GET', `uri ${path}`, 'ver HTTP/1.1', ...headers.map(([name, value]) => `hdr ${validateHeaderName(name, 'health.headers')} ${quotedValue(value, `health.headers.${name}`)}`)]
  const statuses = check?.expectStatus?.map((code) => validateInteger(code, 'health.expect-status', 100, 599))
  const expectStatus = statuses && statuses.length > 0 ? (statuses.length === 1 ? `  http-check expect status ${statuses[0]}` : `  http-check expect rstatus ^(${statuses.join('|')})$`) : '  http-check expect status 200-399'
  const lines = ['  option httpchk', send.join(' '), expectStatus]
  if (check?.expectBody !== undefined) lines.push(`  http-check expect string ${quotedValue(check.expectBody, 'health.expect-body')}`)
  return lines
}

function validateInteger(value: number, setting: string, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ProxyConfigError(`${setting}: expected a whole number from ${min} to ${max}, got ${String(value)}`)
  }
  return value
}

const MAX_TIMEOUT_MS = 24 * 60 * 60 * 1000

/** HAProxy time syntax: whole seconds as `Ns`, anything else as `Nms`. */
export function haproxyTime(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}

/**
 * Renders haproxy.cfg for one app. Pure: same options, same text. Throws a
 * {@link ProxyConfigError} for any value that is not plainly valid.
 */
export function renderHaproxyConfig(options: HaproxyConfigOptions): string {
  const name = validateDockerName(options.name, 'name')
  if (options.live !== 'blue' && options.live !== 'green') {
    throw new ProxyConfigError(`live slot: expected "blue" or "green", got ${JSON.stringify(options.live)}`)
  }
  const appPort = validateInteger(options.appPort, 'proxy.app-port', 1, 65_535)
  const listenPort = validateInteger(options.listenPort ?? PROXY_LISTEN_PORT, 'listen port', 1, 65_535)
  if (listenPort === RUNTIME_API_PORT) throw new ProxyConfigError(`listen port: ${listenPort} is the runtime API's port`)
  const drainMs = validateInteger(options.drainMs, 'proxy.drain', 0, MAX_TIMEOUT_MS)
  const maxConnections = validateInteger(options.maxConnections ?? 4096, 'max connections', 1, 1_000_000)
  const checkIntervalMs = validateInteger(options.checkIntervalMs ?? 2_000, 'check interval', 100, 60_000)
  const timeouts: HaproxyTimeouts = { ...DEFAULT_TIMEOUTS }
  for (const key of Object.keys(DEFAULT_TIMEOUTS) as (keyof HaproxyTimeouts)[]) {
    const value = options.timeouts?.[key]
    if (value !== undefined) timeouts[key] = validateInteger(value, `timeout ${key}`, 1, MAX_TIMEOUT_MS)
  }
  const healthPath = options.healthPath === undefined ? undefined : validateUrlPath(options.healthPath, 'health path')
  const hosts: Record<Slot, string> = {
    blue: validateSlotHost(options.slotHosts?.blue ?? `${name}-blue`, 'blue slot host'),
    green: validateSlotHost(options.slotHosts?.green ?? `${name}-green`, 'green slot host')
  }
  const fastIntervalMs = Math.max(100, Math.floor(checkIntervalMs / 2))

  const ports: Record<Slot, number> = {
    blue: validateInteger(options.slotPorts?.blue ?? appPort, 'blue slot port', 1, 65_535),
    green: validateInteger(options.slotPorts?.green ?? appPort, 'green slot port', 1, 65_535)
  }
  const server = (slot: Slot): string => {
    const live = slot === options.live
    // The live slot resolves through libc at start (it exists), so HAProxy serves at once. The idle
    // slot may not exist: libc would then wait for DNS timeouts (seconds) before HAProxy starts, so
    // it starts without an address and the runtime resolver fills it in once the container exists.
    const initAddr = live ? 'last,libc,none' : 'none'
    // The live slot is not checked (see the top of this file); the idle one is, once it leaves MAINT.
    return `  server ${slot} ${hosts[slot]}:${ports[slot]} init-addr ${initAddr}${live ? ' no-check' : ' disabled'}`
  }

  return [
    `# haproxy.cfg for ${name}, rendered by deploy-action (strategy: proxy). Live slot: ${options.live}.`,
    '# This file always says what runs: whatever deploy-action sets through the runtime API it writes',
    '# here too, so a restart or a reload of the proxy changes nothing.',
    'global',
    '  log stdout format raw local0 notice',
    // A reload (SIGUSR2 to the master) starts a new worker from this file without dropping a connection.
    '  master-worker',
    `  stats socket ipv4@${RUNTIME_API_HOST}:${RUNTIME_API_PORT} level admin`,
    '  stats timeout 30s',
    `  maxconn ${maxConnections}`,
    // A soft stop (SIGUSR1) lets in-flight requests finish for at most proxy.drain.
    `  hard-stop-after ${haproxyTime(Math.max(drainMs, 1_000))}`,
    '',
    'defaults',
    '  mode http',
    '  log global',
    '  option httplog',
    // Log failed requests only: every request would flood `docker logs`.
    '  option dontlog-normal',
    '  option log-separate-errors',
    '  option forwardfor',
    // Through a reload, an idle keep-alive connection stays open until its next answer, which
    // closes it: without this, the old worker closes it just as the client sends (a failed request).
    '  option idle-close-on-response',
    // A slot that dies takes its address with it: a connect to it gets no answer at all (no
    // reset), and one made while it was dying is refused and retried after min(timeout connect,
    // 1 s). Short attempts, each one balanced again (`redispatch 1`), reach the other slot within
    // one attempt of the switch back. Only connection failures are retried (the default
    // `retry-on conn-failure`): a request that reached the app is never sent twice.
    '  option redispatch 1',
    `  retries ${connectRetries(timeouts.connectMs)}`,
    `  timeout connect ${haproxyTime(timeouts.connectMs)}`,
    `  timeout client ${haproxyTime(timeouts.clientMs)}`,
    `  timeout server ${haproxyTime(timeouts.serverMs)}`,
    `  timeout http-request ${haproxyTime(timeouts.httpRequestMs)}`,
    `  timeout http-keep-alive ${haproxyTime(timeouts.httpKeepAliveMs)}`,
    `  timeout queue ${haproxyTime(timeouts.queueMs)}`,
    `  timeout tunnel ${haproxyTime(timeouts.tunnelMs)}`,
    `  timeout check ${haproxyTime(timeouts.checkMs)}`,
    '',
    // Docker's embedded DNS: slot containers get a new address whenever they are re-created, so
    // names are resolved again every second. A failed lookup takes a server out only when no
    // valid answer came for 30 s, so a DNS hiccup never takes the live slot down.
    'resolvers docker',
    `  nameserver dns ${DOCKER_DNS}`,
    '  resolve_retries 3',
    '  timeout resolve 1s',
    '  timeout retry 1s',
    '  hold valid 1s',
    '  hold other 30s',
    '  hold refused 30s',
    '  hold nx 30s',
    '  hold timeout 30s',
    '',
    `frontend ${HAPROXY_FRONTEND}`,
    `  bind :${listenPort}`,
    `  default_backend ${HAPROXY_BACKEND}`,
    '',
    `backend ${HAPROXY_BACKEND}`,
    '  balance roundrobin',
    ...(healthPath === undefined ? [] : checkLines(healthPath, options.check)),
    `  default-server check inter ${haproxyTime(checkIntervalMs)} fastinter ${haproxyTime(fastIntervalMs)} downinter ${haproxyTime(checkIntervalMs)} rise 2 fall 3 resolvers docker resolve-prefer ipv4`,
    server('blue'),
    server('green'),
    ''
  ].join('\n')
}
