/**
 * Docker's own grammar for every value that ends up in a docker command, as validators.
 *
 * Each `check…` function returns undefined for a valid value, or a sentence starting with
 * "expected …" that says what a valid value looks like. The config loader prefixes it with the key
 * path and appends what was found, so messages read like
 * `name: expected a name of letters, digits, _ . -, got "-v=/:/host"`.
 *
 * Beyond docker's grammar, two rules hold everywhere a value can reach argv: nothing starts with
 * `-` (docker would read it as an option), and nothing holds control characters or line breaks
 * (they would corrupt logs and annotations, and never belong in these values).
 */
import { isIP } from 'node:net'

/** Longest container or service name; leaves room for the `-deploy-lock` and `-previous` suffixes within 63. */
export const MAX_NAME_LENGTH = 63 - '-deploy-lock'.length

/** Suffixes the action appends to `name` for its own containers. */
export const NAME_SUFFIXES = ['-previous', '-deploy-lock'] as const

/**
 * C0 and C1 control characters, line and paragraph separators, and the bidirectional overrides
 * that make text display differently from what it is ("Trojan Source").
 */
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/

/** Docker Hub's own names; an image there has no registry host to log in to. */
/** Docker Hub's host names: an image or a login there names no registry of its own. */
export const DOCKER_HUB_HOSTS: ReadonlySet<string> = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io'])

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/
const LABEL_KEY = /^[a-zA-Z0-9](?:[a-zA-Z0-9._/-]*[a-zA-Z0-9])?$/
const NETWORK = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const SSH_USER = /^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$/
const VOLUME_OPTIONS = new Set([
  'ro', 'rw', 'z', 'Z', 'nocopy', 'consistent', 'cached', 'delegated',
  'shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate'
])
const PORT_PROTOCOLS = new Set(['tcp', 'udp', 'sctp'])
const MAX_IMAGE_LENGTH = 255
const MAX_TEXT_LENGTH = 4096

/** True when the text holds control characters, line breaks or bidirectional overrides. */
export function hasUnsafeCharacters(value: string): boolean {
  return UNSAFE_CHARACTERS.test(value)
}

/**
 * The rules shared by every value that becomes (part of) a docker argument: not empty, no control
 * characters, and no leading `-`. Returns the "expected …" sentence, or undefined when they hold.
 */
export function checkArgumentSafety(value: string, what: string): string | undefined {
  if (value.length === 0) return `expected ${what}, not an empty string`
  if (hasUnsafeCharacters(value)) return `expected ${what} without control characters or line breaks`
  if (value.startsWith('-')) return `expected ${what} that does not start with "-" (docker would read it as an option)`
  return undefined
}

/**
 * Free text that reaches argv as part of one argument (env values, labels, command words):
 * anything printable goes, because no shell ever sees it.
 */
export function checkText(value: string, what = 'text'): string | undefined {
  if (hasUnsafeCharacters(value)) {
    return `expected ${what} without control characters or line breaks (for multi-line values use container.secrets)`
  }
  if (value.length > MAX_TEXT_LENGTH) return `expected ${what} of at most ${MAX_TEXT_LENGTH} characters`
  return undefined
}

/** Image tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`. */
export function checkTag(value: string): string | undefined {
  const what = 'an image tag'
  const unsafe = checkArgumentSafety(value, what)
  if (unsafe) return unsafe
  if (value.length > 128) return `expected ${what} of at most 128 characters`
  if (!TAG.test(value)) return `expected ${what}: letters, digits, _ . and -, not starting with . or -`
  return undefined
}

/** Container or Swarm service name: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, short enough for the action's suffixes. */
export function checkName(value: string): string | undefined {
  const what = 'a container name'
  const unsafe = checkArgumentSafety(value, what)
  if (unsafe) return unsafe
  if (!NAME.test(value)) return `expected ${what}: at least 2 of letters, digits, _ . and -, starting with a letter or digit`
  if (value.length > MAX_NAME_LENGTH) {
    return `expected ${what} of at most ${MAX_NAME_LENGTH} characters (the action adds ${NAME_SUFFIXES.join(' and ')})`
  }
  return undefined
}

/**
 * Swarm service names are DNS labels (swarmkit: `[a-zA-Z0-9](?:[-_]*[a-zA-Z0-9]+)*`, 63 at most),
 * stricter than container names: no dots, and no separator at either end.
 */
export function checkServiceName(value: string): string | undefined {
  const container = checkName(value)
  if (container) return container.replace('a container name', 'a service name')
  if (!/^[a-zA-Z0-9](?:[-_]*[a-zA-Z0-9]+)*$/.test(value)) {
    return 'expected a service name: letters, digits, _ and -, starting and ending with a letter or digit (no dots with strategy swarm)'
  }
  return undefined
}

/** Environment variable name: `[A-Za-z_][A-Za-z0-9_]*`. */
export function checkEnvName(value: string): string | undefined {
  if (!ENV_NAME.test(value)) return 'expected a variable name: letters, digits and _, not starting with a digit'
  if (value.length > 255) return 'expected a variable name of at most 255 characters'
  return undefined
}

/** Docker label key, e.g. `team` or `com.example.team`. */
/** Prefix of the labels in `constants.ts#Label`. */
const RESERVED_LABEL_PREFIX = 'deploy-action.'

export function checkLabelKey(value: string): string | undefined {
  const what = 'a label key'
  const unsafe = checkArgumentSafety(value, what)
  if (unsafe) return unsafe
  if (value.length > 255 || !LABEL_KEY.test(value)) {
    return `expected ${what}: letters, digits, . _ / and -, starting and ending with a letter or digit`
  }
  // The action reads its own labels to learn what runs and what to roll back to; a config must
  // not be able to forge them.
  if (value.startsWith(RESERVED_LABEL_PREFIX)) {
    return `expected a label key outside ${RESERVED_LABEL_PREFIX}*, which deploy-action writes itself`
  }
  return undefined
}

/** Restart policy: `no`, `always`, `unless-stopped` or `on-failure[:N]`. */
export function checkRestartPolicy(value: string): string | undefined {
  if (/^(no|always|unless-stopped|on-failure(:[1-9][0-9]{0,3})?)$/.test(value)) return undefined
  return 'expected a restart policy: no, always, unless-stopped or on-failure[:N] (N from 1 to 9999)'
}

/** Network name, e.g. `host`, `bridge` or a user-defined network. */
export function checkNetwork(value: string): string | undefined {
  const what = 'a network name'
  const unsafe = checkArgumentSafety(value, what)
  if (unsafe) return unsafe
  if (value.length > 255 || !NETWORK.test(value)) return `expected ${what}: letters, digits, _ . and -, starting with a letter or digit`
  return undefined
}

/** HTTP header name (an RFC 9110 token). */
export function checkHeaderName(value: string): string | undefined {
  return HEADER_NAME.test(value) ? undefined : 'expected an HTTP header name: letters, digits and !#$%&\'*+.^_`|~-'
}

/** HTTP header value: printable text, never a line break (that would inject headers). */
export function checkHeaderValue(value: string): string | undefined {
  return checkText(value, 'a header value')
}

interface SplitImage {
  /** Registry host[:port] when the first component names one. */
  domain?: string
  /** Repository path below the registry. */
  path: string
}

/**
 * Splits an image reference the way docker's reference package does: the first path component is
 * a registry host only when it holds `.` or `:`, is `localhost`, or has upper-case letters.
 */
function splitImage(value: string): SplitImage {
  const slash = value.indexOf('/')
  if (slash === -1) return { path: value }
  const first = value.slice(0, slash)
  if (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first) return { path: value }
  return { domain: first, path: value.slice(slash + 1) }
}

function checkRegistryHost(domain: string): boolean {
  let host = domain
  let port: string | undefined
  const ipv6 = /^\[([0-9a-fA-F:]+)\](?::(\d+))?$/.exec(domain)
  if (ipv6) {
    if (isIP(ipv6[1] ?? '') !== 6) return false
    port = ipv6[2]
  } else {
    const colon = domain.lastIndexOf(':')
    if (colon !== -1) {
      host = domain.slice(0, colon)
      port = domain.slice(colon + 1)
    }
    if (!host.split('.').every((component) => DOMAIN_COMPONENT.test(component))) return false
  }
  return port === undefined || checkPortNumber(port)
}

/**
 * Image repository reference without tag or digest, e.g. `registry.example.com:5000/acme/web`
 * or `nginx`. The tag is a separate setting so that the action controls what runs.
 */
export function checkImage(value: string): string | undefined {
  const what = 'an image repository such as registry.example.com/acme/web'
  const unsafe = checkArgumentSafety(value, what)
  if (unsafe) return unsafe
  if (value.includes('@')) return `expected ${what}, without a digest (the action pins digests itself)`
  const { domain, path } = splitImage(value)
  if (path.includes(':')) return `expected ${what}, without a tag (set the tag with the \`tag\` input)`
  if (value.length > MAX_IMAGE_LENGTH) return `expected ${what} of at most ${MAX_IMAGE_LENGTH} characters`
  if (domain !== undefined && !checkRegistryHost(domain)) return `expected ${what}; "${domain}" is not a valid registry host[:port]`
  const components = path.split('/')
  if (!components.every((component) => PATH_COMPONENT.test(component))) {
    return `expected ${what}: lower-case path components of letters, digits and single . _ or - separators`
  }
  return undefined
}

/** Registry host of an image reference (`registry.example.com:5000`), undefined for Docker Hub. */
export function registryHost(image: string): string | undefined {
  const { domain } = splitImage(image)
  if (domain === undefined || DOCKER_HUB_HOSTS.has(domain)) return undefined
  return domain
}

function checkPortNumber(text: string): boolean {
  if (!/^[0-9]{1,5}$/.test(text)) return false
  const port = Number(text)
  return port >= 1 && port <= 65535
}

/** A port or a range `8000-8010`; returns its size, or undefined when invalid. */
function portRangeSize(text: string): number | undefined {
  const [low, high, extra] = text.split('-')
  if (extra !== undefined || low === undefined || !checkPortNumber(low)) return undefined
  if (high === undefined) return 1
  if (!checkPortNumber(high) || Number(high) < Number(low)) return undefined
  return Number(high) - Number(low) + 1
}

/**
 * `docker run -p` mapping: `[ip:][hostPort[-range]:]containerPort[-range][/tcp|udp|sctp]`,
 * ports 1 to 65535. IPv6 addresses go in brackets: `[::1]:8080:80`.
 */
export function checkPortMapping(value: string): string | undefined {
  const what = 'a port mapping such as 8080:80, 127.0.0.1:8080:80 or 53:53/udp (ports 1-65535)'
  const unsafe = checkArgumentSafety(value, what)
  if (unsafe) return unsafe
  let rest = value
  const slash = rest.lastIndexOf('/')
  if (slash !== -1) {
    if (!PORT_PROTOCOLS.has(rest.slice(slash + 1))) return `expected ${what}; the protocol must be tcp, udp or sctp`
    rest = rest.slice(0, slash)
  }
  let ip: string | undefined
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']:')
    if (close === -1) return `expected ${what}`
    ip = rest.slice(1, close)
    if (isIP(ip) !== 6) return `expected ${what}; "${ip}" is not an IPv6 address`
    rest = rest.slice(close + 2)
  }
  const parts = rest.split(':')
  if (parts.length === 3 && ip === undefined) {
    ip = parts.shift()
    if (isIP(ip ?? '') !== 4) return `expected ${what}; "${ip ?? ''}" is not an IPv4 address`
  }
  if (parts.length > 2 || (ip !== undefined && parts.length !== 2)) return `expected ${what}`
  const containerPart = parts.pop() ?? ''
  const hostPart = parts.pop()
  const containerSize = portRangeSize(containerPart)
  if (containerSize === undefined) return `expected ${what}; "${containerPart}" is not a port from 1 to 65535 or a range of them`
  // `127.0.0.1::80` lets docker pick the host port; only allowed after an address, as in docker.
  if (hostPart === undefined || (hostPart === '' && ip !== undefined)) return undefined
  const hostSize = portRangeSize(hostPart)
  if (hostSize === undefined) return `expected ${what}; "${hostPart}" is not a port from 1 to 65535 or a range of them`
  if (containerSize > 1 && hostSize !== containerSize) return `expected ${what}; host and container ranges must be the same size`
  return undefined
}

function checkAbsolutePath(path: string): boolean {
  // Commas and quotes would split a `--mount` CSV field when the swarm strategy maps volumes.
  return path.startsWith('/') && !/[:,"]/.test(path) && !path.split('/').includes('..')
}

/**
 * `docker run -v` volume: `name-or-/abs/host/path:/abs/container/path[:options]`, where options
 * are a comma-separated list of ro, rw, z, Z, nocopy and the propagation modes.
 */
export function checkVolume(value: string): string | undefined {
  const what = 'a volume such as data:/var/lib/app or /srv/data:/data:ro'
  const unsafe = checkArgumentSafety(value, what)
  if (unsafe) return unsafe
  const [source = '', target = '', options, extra] = value.split(':')
  if (extra !== undefined || target === '') return `expected ${what}`
  if (source.startsWith('/')) {
    if (!checkAbsolutePath(source)) return `expected ${what}; "${source}" must be an absolute path without "..", commas or quotes`
  } else if (!NAME.test(source)) {
    return `expected ${what}; "${source}" is neither a volume name nor an absolute path`
  }
  if (!checkAbsolutePath(target)) return `expected ${what}; "${target}" must be an absolute path without "..", commas or quotes`
  // Docker reads \ as / here before it cleans the path, and refuses a mount that would hide the image's root.
  if (mountDestination(target.replaceAll('\\', '/')) === '/') {
    return `expected ${what}; the container path must be a directory below "/" (docker refuses to mount over the container's root)`
  }
  if (options !== undefined) {
    const unknown = options.split(',').find((option) => !VOLUME_OPTIONS.has(option))
    if (unknown !== undefined) return `expected ${what}; unknown option "${unknown}" (use ro, rw, z, Z, nocopy or a propagation mode)`
  }
  return undefined
}

/**
 * An absolute container path the way docker compares mount points (Go's `path.Clean`): `/data/`,
 * `/data/.` and `//data` are all `/data`.
 */
export function mountDestination(target: string): string {
  const parts: string[] = []
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') parts.pop()
    else parts.push(part)
  }
  return `/${parts.join('/')}`
}

/** What one `docker run -p` mapping claims on the host. */
export interface HostPorts {
  /** The bind address as written, without brackets; absent when docker binds every address. */
  address?: string
  protocol: string
  /**
   * The host ports it takes, `from` to `to`; absent when docker picks one (no host port, or a
   * host range for one container port).
   */
  ports?: { from: number; to: number }
}

/** The host side of a valid port mapping; undefined for an invalid one. */
export function publishedHostPorts(value: string): HostPorts | undefined {
  if (checkPortMapping(value) !== undefined) return undefined
  let rest = value
  let protocol = 'tcp'
  const slash = rest.lastIndexOf('/')
  if (slash !== -1) {
    protocol = rest.slice(slash + 1)
    rest = rest.slice(0, slash)
  }
  let address: string | undefined
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']:')
    address = rest.slice(1, close)
    rest = rest.slice(close + 2)
  }
  const parts = rest.split(':')
  if (parts.length === 3) address = parts.shift()
  const containerPart = parts.pop() ?? ''
  const hostPart = parts.pop()
  const picked: HostPorts = address === undefined ? { protocol } : { address, protocol }
  if (hostPart === undefined || hostPart === '') return picked
  const [from = 0, to = from] = hostPart.split('-').map(Number)
  // `8000-8010:80` asks docker for any one free port of the range, so no single port is taken for sure.
  if (to !== from && !containerPart.includes('-')) return picked
  return { ...picked, ports: { from, to } }
}

/**
 * A Docker endpoint for `DOCKER_HOST`: `ssh://[user@]host[:port]`, `tcp://host:port` or
 * `unix:///path/to/docker.sock`.
 */
export function checkDockerHost(value: string): string | undefined {
  const what = 'a docker host such as ssh://deploy@web1.example.com, tcp://10.0.0.5:2376 or unix:///var/run/docker.sock'
  const unsafe = checkArgumentSafety(value, what)
  if (unsafe) return unsafe
  if (value.startsWith('unix://')) {
    const path = value.slice('unix://'.length)
    return path.startsWith('/') && !/[\s?#]/.test(path) ? undefined : `expected ${what}; unix:// needs an absolute socket path`
  }
  const match = /^(ssh|tcp):\/\/(?:([^@/]*)@)?(\[[0-9a-fA-F:]+\]|[^:/@[\]]+)(?::([^/]*))?$/.exec(value)
  if (!match) return `expected ${what}`
  const [, scheme, user, host = '', port] = match
  if (scheme === 'tcp' && user !== undefined) return `expected ${what}; tcp:// takes no user`
  if (user !== undefined && !SSH_USER.test(user)) return `expected ${what}; "${user}" is not a valid user name`
  const bareHost = host.startsWith('[') ? host.slice(1, -1) : host
  const hostValid = host.startsWith('[')
    ? isIP(bareHost) === 6
    : isIP(bareHost) === 4 || bareHost.split('.').every((component) => DOMAIN_COMPONENT.test(component))
  if (!hostValid) return `expected ${what}; "${host}" is not a host name or address`
  if (port !== undefined && !checkPortNumber(port)) return `expected ${what}; "${port}" is not a port from 1 to 65535`
  if (scheme === 'tcp' && port === undefined) return `expected ${what}; tcp:// needs a port`
  return undefined
}

/**
 * What `{host}` in health.url becomes for one docker host: a host name or an IPv4 or IPv6 address
 * (without brackets), e.g. `web1.internal`, `10.0.0.5` or `fd00::5`.
 */
export function checkHostAddress(value: string): string | undefined {
  const what = 'a host name or IP address such as web1.internal, 10.0.0.5 or fd00::5'
  if (isIP(value) !== 0) return undefined
  if (value.length > 253 || !value.split('.').every((component) => DOMAIN_COMPONENT.test(component))) return `expected ${what}`
  return undefined
}

/**
 * An http(s) URL. `{host}` may stand for each deploy host's address (health checks across hosts).
 */
export function checkHttpUrl(value: string, allowHostPlaceholder = false): string | undefined {
  const what = allowHostPlaceholder ? 'an http:// or https:// URL (may contain {host})' : 'an http:// or https:// URL'
  if (hasUnsafeCharacters(value) || /\s/.test(value)) return `expected ${what} without spaces, control characters or line breaks`
  if (!allowHostPlaceholder && value.includes('{host}')) return `expected ${what}; {host} is only replaced in health.url`
  const candidate = allowHostPlaceholder ? value.replaceAll('{host}', 'host.invalid') : value
  let url: URL
  try {
    url = new URL(candidate)
  } catch {
    return `expected ${what}`
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `expected ${what}`
  if (url.username || url.password) return `expected ${what} without credentials (use health.headers)`
  return undefined
}

/**
 * An image reference with a tag or a digest, e.g. `haproxy:3.0-alpine` or
 * `registry.example.com/ops/haproxy:3.0@sha256:…` (`proxy.image`): a repository as `checkImage`
 * accepts it, then `:tag`, `@sha256:<64 hex>`, or both.
 */
export function checkImageReference(value: string): string | undefined {
  const what = 'an image reference with a tag such as haproxy:3.0-alpine'
  const unsafe = checkArgumentSafety(value, what)
  if (unsafe) return unsafe
  const [named = '', digest, ...rest] = value.split('@')
  if (rest.length > 0 || (digest !== undefined && !/^sha256:[0-9a-f]{64}$/.test(digest))) return `expected ${what}; a digest must be sha256: and 64 hex digits`
  const slash = named.lastIndexOf('/')
  const colon = named.indexOf(':', slash + 1)
  const repository = colon === -1 ? named : named.slice(0, colon)
  const tag = colon === -1 ? undefined : named.slice(colon + 1)
  if (tag === undefined && digest === undefined) return `expected ${what}; pin a tag or a digest, so every host runs the same proxy`
  if (checkImage(repository) !== undefined) return `expected ${what}; "${repository}" is not an image repository`
  if (tag !== undefined && checkTag(tag) !== undefined) return `expected ${what}; "${tag}" is not a tag`
  return undefined
}

/** A host address to publish a port on (`proxy.bind`): an IPv4 or IPv6 address, without brackets. */
export function checkBindAddress(value: string): string | undefined {
  if (isIP(value) === 0) return 'expected an IP address such as 127.0.0.1, 0.0.0.0 or ::1'
  return undefined
}
