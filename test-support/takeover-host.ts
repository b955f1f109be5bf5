/**
 * One in-memory docker host for the `replace` → `proxy` takeover (src/strategies/takeover.ts): the
 * app's `replace` containers (`web`, `web-next`, `web-previous`), the lock and the images live on
 * the in-memory engine (fake-docker-engine.ts); the proxy, its check proxy, the slots and the
 * network on the HAProxy stand-in (fake-proxy-host.ts), as in proxy-docker-host.ts. On top:
 *
 * - one port space: a running container of either side that publishes a host port keeps the
 *   other side's containers from starting on it ("port is already allocated");
 * - HAProxy's frontend: `docker exec -i web-proxy nc -w N 127.0.0.1 8080` (the takeover's wait for
 *   the proxy's first answer) answers `200 status: green` when the stand-in routes to a slot that
 *   runs and answers, and is refused otherwise;
 * - `docker container inspect` of names from both sides at once is answered by both, merged.
 *
 * Commands are counted across both sides, and a fault or a cancel can hit the k-th one, as in
 * proxy-docker-host.ts.
 */
import type { DockerResult, DockerRunOptions } from '../src/docker/runner.js'
import type { DeploySettings } from '../src/settings.js'
import { injectedResult, pickFault } from './fake-docker-engine.js'
import { ProxyDockerHost } from './proxy-docker-host.js'
import { testSettings } from './settings.js'

const IMAGE = 'registry.test/acme/web'
export const TAKEOVER_PROXY = { port: 8080, bind: ['127.0.0.1'], appPort: 3000, image: 'haproxy:3.0-alpine', drainMs: 1_000, timeoutMs: 60_000, maxConnections: 4096 }
const HEALTH = { expectStatus: [200], headers: {}, intervalMs: 100, timeoutMs: 500, deadlineMs: 5_000, healthyThreshold: 2, watchMs: 1_000 }

/** `strategy: replace` of `registry.test/acme/web`, publishing `ports` (default 127.0.0.1:8080 → 3000). */
export function replaceSettings(tag: string, ports = ['127.0.0.1:8080:3000'], change: Partial<DeploySettings> = {}): DeploySettings {
  return testSettings({ image: IMAGE, tag, strategy: 'replace', container: { ports, env: {}, secrets: [], volumes: [], labels: {}, init: true }, health: HEALTH, lock: { timeoutMs: 5_000 }, ...change })
}

/** `strategy: proxy` of the same app on proxy.port 8080 (127.0.0.1). */
export function proxySettings(tag: string, change: Partial<DeploySettings> = {}): DeploySettings {
  return testSettings({ image: IMAGE, tag, strategy: 'proxy', container: { ports: [], env: {}, secrets: [], volumes: [], labels: {}, init: true }, health: HEALTH, proxy: TAKEOVER_PROXY, lock: { timeoutMs: 5_000 }, ...change })
}

/** Names the HAProxy stand-in holds: the proxy strategy's containers of app `web`. */
const PROXY_SIDE = /^web-(blue|green|proxy)/

export class TakeoverDockerHost extends ProxyDockerHost {
  private commands = 0

  /** `images`: the references a pull finds (on both sides), the HAProxy image included. */
  constructor(images: string[]) {
    super(images)
    for (const image of images) this.rest.images.add(image)
  }

  override get commandCount(): number {
    return this.commands
  }

  override async run(argv: readonly string[], options: DockerRunOptions = {}): Promise<DockerResult> {
    const index = ++this.commands
    this.onCommand?.(index, argv)
    if (options.signal?.aborted) throw new Error(`docker ${argv[0] ?? ''} was cancelled`)
    const fault = pickFault(index, argv, options, this.fault, this.faultRule)
    if (fault) this.injected.push({ index, argv: [...argv], mode: fault })
    if (fault === 'before') return injectedResult(index, argv)
    const result = await this.route(argv, options)
    return fault ? injectedResult(index, argv) : result
  }

  /** The tag users get on port 8080: through the proxy, or from the `replace` container `web`. */
  servingTag(): string | undefined {
    const web = this.rest.containers.get('web')
    if (web?.running) return web.labels['deploy-action.tag']
    return this.proxy.servingTag()
  }

  /** Every container of app `web` on both sides: `name: state tag`, sorted. */
  describe(): string[] {
    const rest = [...this.rest.containers.values()].filter((c) => c.name === 'web' || c.name.startsWith('web-previous') || c.name === 'web-next').map((c) => `${c.name}: ${c.running ? 'running' : c.started ? 'exited' : 'created'} ${c.labels['deploy-action.tag'] ?? ''}`.trim())
    return [...rest, ...this.proxy.describe()].sort()
  }

  private async route(argv: readonly string[], options: DockerRunOptions): Promise<DockerResult> {
    this.sharePorts()
    const [group, verb] = argv
    if (group === 'container' && verb === 'inspect') return this.inspectBoth(argv, options)
    if (group === 'container' && verb === 'exec' && argv.includes('127.0.0.1') && argv.includes('8080') && argv.includes('-w')) return this.frontend(argv)
    if (group === 'pull') {
      await this.rest.run(argv, options)
      return this.proxy.run(argv, options)
    }
    if (!this.onProxySide(argv)) return this.rest.run(argv, options)
    const result = await this.proxy.run(argv, options)
    // `dieOnSwitchTo`: the new version dies as soon as the proxy routes users to it.
    const booted = group === 'container' && verb === 'start' && result.exitCode === 0 && this.proxy.find(argv[2] ?? '')?.name === 'web-proxy'
    const routed = booted ? this.proxy.routedSlot() : undefined
    if (routed && this.dieOnSwitchTo !== undefined && this.proxy.containers.get(`web-${routed}`)?.labels['deploy-action.tag'] === this.dieOnSwitchTo) {
      await this.proxy.run(['container', 'stop', `web-${routed}`])
    }
    return result
  }

  private onProxySide(argv: readonly string[]): boolean {
    const [group, verb] = argv
    if (group === 'network' || group === 'pull' || (group === 'image' && verb === 'inspect')) return true
    return argv.some((arg) => PROXY_SIDE.test(arg) || this.proxy.holdsId(arg.split(':')[0] ?? ''))
  }

  /** `container inspect` of names on both sides: each side answers for its own, merged as docker would. */
  private async inspectBoth(argv: readonly string[], options: DockerRunOptions): Promise<DockerResult> {
    const names = argv.slice(2).filter((arg) => !arg.startsWith('-'))
    const flags = argv.slice(2).filter((arg) => arg.startsWith('-'))
    const mine = names.filter((name) => PROXY_SIDE.test(name) || this.proxy.holdsId(name))
    const theirs = names.filter((name) => !mine.includes(name))
    const results = await Promise.all([
      mine.length > 0 ? this.proxy.run(['container', 'inspect', ...flags, ...mine], options) : undefined,
      theirs.length > 0 ? this.rest.run(['container', 'inspect', ...flags, ...theirs], options) : undefined
    ])
    const answered = results.filter((result): result is DockerResult => result !== undefined)
    const found = answered.flatMap((result) => JSON.parse(result.stdout.trim() || '[]') as unknown[])
    return {
      exitCode: Math.max(...answered.map((result) => result.exitCode)),
      stdout: `${JSON.stringify(found)}\n`,
      stderr: answered.map((result) => result.stderr.trim()).filter(Boolean).join('\n')
    }
  }

  /** HAProxy's frontend on 8080, asked from inside the proxy container. */
  private frontend(argv: readonly string[]): DockerResult {
    const proxy = this.proxy.find(argv[3] ?? '')
    if (!proxy?.running) return { exitCode: 1, stdout: '', stderr: `Error response from daemon: container ${argv[3] ?? ''} is not running` }
    if (this.proxy.servingTag() === undefined) return { exitCode: 1, stdout: '', stderr: "nc: can't connect to remote host (127.0.0.1): Connection refused" }
    return { exitCode: 0, stdout: 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nstatus: green', stderr: '' }
  }

  /** One port space: what runs on one side keeps the other side's containers off its host ports. */
  private sharePorts(): void {
    this.proxy.takenPorts.clear()
    for (const container of this.rest.containers.values()) {
      if (!container.running) continue
      for (const port of container.ports ?? []) {
        const host = hostPort(port)
        if (host !== undefined) this.proxy.takenPorts.add(host)
      }
    }
    const proxyHolds = [...this.proxy.containers.values()].some((c) => c.running && c.publish.some((spec) => hostPort(spec) === 8080))
    for (const container of this.rest.containers.values()) {
      const wants = (container.ports ?? []).some((spec) => hostPort(spec) === 8080)
      if (wants && proxyHolds) this.rest.failingStarts.add(container.name)
      else this.rest.failingStarts.delete(container.name)
    }
  }
}

/** The host port of a `--publish` value (`[ip:]host:container[/proto]`). */
function hostPort(spec: string): number | undefined {
  const parts = (spec.split('/')[0] ?? '').split(':')
  const port = Number(parts.length >= 2 ? parts[parts.length - 2] : NaN)
  return Number.isInteger(port) && port > 0 ? port : undefined
}
