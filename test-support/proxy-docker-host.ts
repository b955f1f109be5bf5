/**
 * One in-memory docker host for whole-story tests of `strategy: proxy`: the app's slots, the
 * proxy and the network live on the HAProxy stand-in (fake-proxy-host.ts); what the story sends
 * around the strategy (the deploy lock, image retention) goes to the in-memory engine
 * (fake-docker-engine.ts). Commands are counted across both, so a fault sweep can fail the k-th
 * docker command of a run (or a window of them, or those a predicate picks), before or after it
 * took effect, or cancel before it. The proxy, the slots and the network are found by name or by
 * the id docker returned at create.
 */
import type { DockerResult, DockerRunner, DockerRunOptions } from '../src/docker/runner.js'
import { FakeDockerEngine, injectedResult, pickFault, type FaultRule, type FaultWindow, type InjectedFault } from './fake-docker-engine.js'
import { FakeProxyHost } from './fake-proxy-host.js'

export class ProxyDockerHost implements DockerRunner {
  readonly proxy: FakeProxyHost
  readonly rest = new FakeDockerEngine()
  /** Docker refuses to create the new slot's container (`web-green`). */
  refuseCreate = false
  /**
   * The container of this tag dies right after traffic is switched to it, every time: by the
   * runtime API, or by the proxy starting with a config that routes to it (a first deploy).
   */
  dieOnSwitchTo: string | undefined
  /** The `at`-th command fails (with `count`, that many from the `at`-th on); see fake-docker-engine.ts. */
  fault?: FaultWindow
  /** Fails the commands a predicate picks. */
  faultRule?: FaultRule
  /** Every command that got an injected fault, in order. */
  readonly injected: InjectedFault[] = []
  onCommand?: (index: number, argv: readonly string[]) => void
  private count = 0

  /** `images`: the references a pull finds, the HAProxy image included. */
  constructor(images: string[]) {
    this.proxy = new FakeProxyHost(images)
  }

  get commandCount(): number {
    return this.count
  }

  async run(argv: readonly string[], options: DockerRunOptions = {}): Promise<DockerResult> {
    const index = ++this.count
    this.onCommand?.(index, argv)
    if (options.signal?.aborted) throw new Error(`docker ${argv[0] ?? ''} was cancelled`)
    const fault = pickFault(index, argv, options, this.fault, this.faultRule)
    if (fault) this.injected.push({ index, argv: [...argv], mode: fault })
    if (fault === 'before') return injectedResult(index, argv)
    const result = await this.execute(argv, options)
    return fault ? injectedResult(index, argv) : result
  }

  private async execute(argv: readonly string[], options: DockerRunOptions): Promise<DockerResult> {
    if (this.refuseCreate && argv[0] === 'container' && argv[1] === 'create' && argv.includes('web-green')) {
      return { exitCode: 125, stdout: '', stderr: 'Error response from daemon: invalid mount config' }
    }
    if (!this.handledByProxyHost(argv)) return this.rest.run(argv, options)
    const result = await this.proxy.run(argv, options)
    const booted = argv[0] === 'container' && argv[1] === 'start' && result.exitCode === 0 && this.proxy.find(argv[2] ?? '')?.name === 'web-proxy'
    const readied = /set server app\/(blue|green) state ready/.exec(options.input ?? '')?.[1] ?? (booted ? this.proxy.routedSlot() : undefined)
    if (readied && this.dieOnSwitchTo !== undefined && this.proxy.containers.get(`web-${readied}`)?.labels['deploy-action.tag'] === this.dieOnSwitchTo) {
      await this.proxy.run(['container', 'stop', `web-${readied}`])
    }
    return result
  }

  /** The proxy, the slots and the network, by name or id; pulls and image lookups. The lock goes by its name or id. */
  private handledByProxyHost(argv: readonly string[]): boolean {
    const [group, verb] = argv
    if (group === 'network' || group === 'pull' || (group === 'image' && verb === 'inspect')) return true
    return argv.some((arg) => /^web-(blue|green|proxy)(:|$)/.test(arg) || this.proxy.holdsId(arg.split(':')[0] ?? ''))
  }
}
