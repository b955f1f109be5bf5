/**
 * Moving a host from `strategy: replace` to `strategy: proxy`: the first proxy deploy finds the
 * app's own `replace` container holding the port the proxy must publish, and takes it over.
 *
 * This module reads and judges that container; `proxy.ts` runs the takeover itself:
 * 1. the new version starts in slot blue (publishing nothing) and is checked there, through a
 *    check proxy `<name>-proxy-check` (the proxy image on the app network, publishing nothing),
 *    while the `replace` container still serves: a version that fails here changes nothing;
 * 2. the proxy `<name>-proxy` is created, the `replace` container stopped, the proxy started on
 *    the freed port: new connections are refused from the stop until the proxy's first good
 *    answer (the gap, measured and reported);
 * 3. the `replace` container is kept, stopped, under its name until the new version is shown
 *    healthy through the proxy, then removed by its id at the clean-up. Any failure before that
 *    puts it back on its port (the proxy and what the run created go, by their ids).
 *
 * Ownership is proven from `docker container inspect` only: the action's release labels for this
 * `image` and `environment` (never the name alone), and a published port binding that clashes
 * with `proxy.port` on the proxy's addresses. A container with host networking publishes nothing
 * docker can show, so which port it listens on cannot be proven: it is never stopped on a guess.
 */
import { Label } from '../constants.js'
import type { DockerClient } from '../docker/client.js'
import { DockerCommandError } from '../docker/runner.js'
import type { DeploySettings, ProxySettings, Release } from '../settings.js'
import { releaseOf } from './release-labels.js'

/** Labels the proxy strategy writes on its own containers: a container with one is no `replace` container. */
const PROXY_ROLE_LABELS = ['deploy-action.role', 'deploy-action.slot'] as const

/** The container named `<name>`, as the takeover reads it. */
export interface NamedContainer {
  id: string
  name: string
  image: string
  labels: Record<string, string>
  running: boolean
  /** Created and never started: it never served. */
  neverStarted: boolean
  /** `HostConfig.NetworkMode`. */
  networkMode: string
  /** Published host bindings (`HostConfig.PortBindings`): `{ ip, port }` of each tcp binding. */
  bindings: { ip: string; port: number }[]
  release: Release
}

/**
 * What holds `proxy.port` for a first proxy deploy, as one of these answers:
 * - `none`: no container named `<name>`, or one that publishes no binding that clashes with the
 *   proxy's (and no `replace` container of ours with host networking);
 * - `holder`: the app's own `replace` container, running, publishing the port: it is taken over;
 * - `stopped-holder`: the same, not running (a takeover cut off, or stopped by hand): it serves nothing;
 * - `host-network`: the app's own `replace` container with host networking: which port it listens
 *   on cannot be proven from docker, so it is never stopped; named when the proxy cannot bind;
 * - `foreign`: a container under that name that the action did not start for this image and
 *   environment, publishing the port: it is never touched, and the deploy stops before any change.
 * A read that fails throws: unknown is not absent.
 */
export type PortHolder =
  | { kind: 'none'; check?: NamedContainer }
  | { kind: 'holder' | 'stopped-holder' | 'host-network' | 'foreign'; container: NamedContainer; check?: NamedContainer }

/** The name of the check proxy: the proxy image on the app network, publishing nothing. */
export function checkProxyName(name: string): string {
  return `${name}-proxy-check`
}

/**
 * Reads `<name>` and the check proxy `<name>-proxy-check` with one `docker container inspect`,
 * and says whether `<name>` holds the proxy's port (see `PortHolder`). Throws when docker did not
 * answer, or answered what cannot be read.
 */
export async function readPortHolder(docker: DockerClient, settings: DeploySettings, proxy: ProxySettings): Promise<PortHolder> {
  const [named, check] = await inspectRaw(docker, [settings.name, checkProxyName(settings.name)])
  const checker = check && isCheckProxy(check, settings.name) ? check : undefined
  const extra = checker ? { check: checker } : {}
  if (!named) return { kind: 'none', ...extra }
  const ours = isReplaceContainerOf(named, settings)
  if (ours && named.networkMode === 'host') return named.running ? { kind: 'host-network', container: named, ...extra } : { kind: 'none', ...extra }
  if (!clashes(named.bindings, proxy)) return { kind: 'none', ...extra }
  if (!ours) return named.running ? { kind: 'foreign', container: named, ...extra } : { kind: 'none', ...extra }
  return { kind: named.running ? 'holder' : 'stopped-holder', container: named, ...extra }
}

/**
 * True when the labels say the action's `replace` strategy started `info` for this app: a release
 * label, the same `image` and `environment`, and none of the proxy strategy's own labels.
 */
export function isReplaceContainerOf(info: Pick<NamedContainer, 'labels'>, settings: Pick<DeploySettings, 'image' | 'environment'>): boolean {
  const { labels } = info
  if (!labels[Label.Tag] || labels[Label.Image] !== settings.image || labels[Label.Environment] !== settings.environment) return false
  return PROXY_ROLE_LABELS.every((label) => labels[label] === undefined)
}

/** True when one of `bindings` takes `proxy.port` on an address the proxy publishes on. */
export function clashes(bindings: readonly { ip: string; port: number }[], proxy: Pick<ProxySettings, 'port' | 'bind'>): boolean {
  const any = (ip: string): boolean => ip === '' || ip === '0.0.0.0' || ip === '::'
  const wanted = proxy.bind.length > 0 ? proxy.bind : ['']
  return bindings.some((binding) => binding.port === proxy.port && wanted.some((ip) => any(ip) || any(binding.ip) || ip === binding.ip))
}

/** Why a `foreign` holder stops the deploy, and what to do. */
export function foreignHolderMessage(container: NamedContainer, settings: DeploySettings, proxy: ProxySettings, host: string): string {
  const said = container.labels[Label.Tag]
    ? `its labels name image ${container.labels[Label.Image] ?? '?'} in environment ${container.labels[Label.Environment] ?? '?'}`
    : 'it carries none of the action\u2019s labels'
  return (
    `the container ${container.name} on ${host} publishes proxy.port ${proxy.port}, but the action did not start it for ${settings.image} in environment ${settings.environment} (${said}), ` +
    `so it is left as it is and nothing was changed. Stop it (\`docker stop ${container.name}\`) and deploy again, or choose another proxy.port.`
  )
}

/** Why a proxy that could not bind its port while the app's host-network `replace` container runs was not helped. */
export function hostNetworkMessage(container: NamedContainer, proxy: ProxySettings, host: string): string {
  return (
    `${container.name} on ${host} (strategy replace, container.network: host) may be what listens on proxy.port ${proxy.port}: with host networking docker shows no published port, ` +
    `so the action cannot prove it holds the port and does not stop it. Stop it (\`docker stop ${container.name}\`; it is kept, \`docker start ${container.name}\` puts it back) and deploy again; the users get no answer in between.`
  )
}

/** Why a host with both a `replace` container on the port and proxy slots without a proxy cannot be read. */
export function mixedStateMessage(container: NamedContainer, settings: DeploySettings, proxy: ProxySettings, host: string): string {
  return (
    `cannot tell what serves ${settings.name} on ${host}: ${container.name} (strategy replace) runs on proxy.port ${proxy.port} while slots of an earlier proxy deploy exist without their proxy; nothing was changed. ` +
    `Remove the slots (\`docker rm ${settings.name}-blue ${settings.name}-green\`) to let the next deploy take ${container.name} over, or stop ${container.name} to let the slots serve again.`
  )
}

/** The warning of a takeover: what happened and how long new connections were refused. */
export function takeoverWarning(options: { from: string; release: string; proxy: string; port: number; host: string; gapMs: number; measured: boolean }): string {
  const seconds = (options.gapMs / 1000).toFixed(2)
  const until = options.measured ? 'the proxy\u2019s first good answer through it' : 'HAProxy serving the new slot'
  return (
    `${options.proxy} took over port ${options.port} on ${options.host} from ${options.from} (strategy replace): new connections to the port were refused for ${seconds} s, ` +
    `from the stop of ${options.from} to ${until}. ${options.from} is kept, stopped, until ${options.release} is shown healthy, then removed; later deploys switch without a gap.`
  )
}

/** True for a check proxy of `name` left by an earlier run: it publishes nothing, so it never served. */
function isCheckProxy(info: NamedContainer, name: string): boolean {
  return info.labels['deploy-action.role'] === 'proxy-check' && info.labels['deploy-action.app'] === name
}

const NO_SUCH = /no such (container|object)|not found/i

/** `docker container inspect` of `names`, read as the takeover needs it; undefined where there is no such container. */
async function inspectRaw(docker: DockerClient, names: string[]): Promise<(NamedContainer | undefined)[]> {
  const argv = ['container', 'inspect', ...names]
  const result = await docker.exec(argv, { allowFailure: true, timeoutMs: 30_000 })
  let found: RawInspect[]
  try {
    found = (JSON.parse(result.stdout.trim() || '[]') as RawInspect[] | null) ?? []
    if (!Array.isArray(found)) throw new Error('not a list')
  } catch {
    throw new DockerCommandError(argv, result)
  }
  if (result.exitCode !== 0) {
    const missing = result.stderr.split('\n').filter((line) => NO_SUCH.test(line)).length
    if (missing === 0 || found.length + missing < names.length) throw new DockerCommandError(argv, result)
  }
  return names.map((name) => {
    const raw = found.find((entry) => entry.Name === `/${name}`)
    return raw && namedContainer(raw)
  })
}

function namedContainer(raw: RawInspect): NamedContainer {
  const labels = raw.Config?.Labels ?? {}
  const image = raw.Config?.Image ?? ''
  const bindings: { ip: string; port: number }[] = []
  for (const [containerPort, hosts] of Object.entries(raw.HostConfig?.PortBindings ?? {})) {
    if (!containerPort.endsWith('/tcp')) continue
    for (const binding of hosts ?? []) {
      const port = Number(binding?.HostPort)
      if (Number.isInteger(port) && port > 0) bindings.push({ ip: binding?.HostIp ?? '', port })
    }
  }
  return {
    id: raw.Id,
    name: raw.Name.replace(/^\//, ''),
    image,
    labels,
    running: raw.State?.Running === true || raw.State?.Restarting === true,
    neverStarted: raw.State?.Status === 'created',
    networkMode: raw.HostConfig?.NetworkMode ?? '',
    bindings,
    release: releaseOf(labels, image)
  }
}

/** The fields of `docker container inspect` read here. */
interface RawInspect {
  Id: string
  Name: string
  Config?: { Image?: string; Labels?: Record<string, string> | null }
  HostConfig?: { NetworkMode?: string; PortBindings?: Record<string, ({ HostIp?: string; HostPort?: string } | null)[] | null> | null }
  State?: { Status?: string; Running?: boolean; Restarting?: boolean }
}
