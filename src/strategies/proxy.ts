import * as core from '@actions/core'
import { Label } from '../constants.js'
import { CreatedObjects } from '../created.js'
import type { Clock } from '../dependencies.js'
import type { ContainerInfo, DockerClient } from '../docker/client.js'
import { buildCreateArgv, secretEnvironment } from '../docker/run-args.js'
import { containerStateProbe, untilStateFails, type ContainerStateProbe, type StateObservation, type StateProbe } from '../health/state-probe.js'
import { STATE_POLL_MS, verifyHealth } from '../health/verify.js'
import { singleFileTar } from '../proxy/config-archive.js'
import {
  healthUrlPath,
  HAPROXY_CONFIG_PATH,
  otherSlot,
  PROXY_LISTEN_PORT,
  proxyContainerName,
  renderHaproxyConfig,
  RUNTIME_API_HOST,
  RUNTIME_API_PORT,
  slotContainerName,
  SLOTS,
  type Slot
} from '../proxy/haproxy-config.js'
import { HaproxyRuntime, isHealthy, type SlotsSnapshot } from '../proxy/runtime-api.js'
import { probeSlot, slotRequest } from '../proxy/slot-probe.js'
import { sameRelease, type DeploySettings, type ProxySettings, type Release } from '../settings.js'
import { failedContainerEvidence, failedContainerLogs } from './container-evidence.js'
import { releaseLabels, releaseOf } from './release-labels.js'
import { SwitchNotStartedError, type DeployStrategy, type FailureEvidence, type RestoreMethod } from './strategy.js'
import { checkProxyName, foreignHolderMessage, hostNetworkMessage, mixedStateMessage, readPortHolder, takeoverWarning, type NamedContainer, type PortHolder } from './takeover.js'

/** One exchange with the runtime API through `docker exec` may take this long. */
const RUNTIME_API_TIMEOUT_MS = 15_000
/** Labels that mark what the proxy strategy created beside the app's slots. */
const ROLE_LABEL = 'deploy-action.role'
const APP_LABEL = 'deploy-action.app'
const SLOT_LABEL = 'deploy-action.slot'
/** The port a slot's app listens on, as it was started: a later change of proxy.app-port reaches only new slots. */
const APP_PORT_LABEL = 'deploy-action.app-port'
/** What the proxy container was created with (image, port, bind): a change needs a new container. */
const PROXY_SPEC_LABEL = 'deploy-action.proxy-spec'
/** The line of the rendered config that names the live slot (see haproxy-config.ts). */
const LIVE_SLOT_LINE = /Live slot: (blue|green)\./
/**
 * After the app answers its health check itself, HAProxy needs `rise` (2) good checks of its own
 * before it calls the slot healthy: 2 s apart, 1 s apart while a change is pending.
 */
const HAPROXY_RISE_MS = 10_000
/** How long a reloaded HAProxy may take before its new worker answers with the live slot. */
const RELOAD_TIMEOUT_MS = 15_000
/**
 * HAProxy looks the live slot's name up through libc when it starts. Docker's embedded DNS answers
 * container names at once, but passes a name it does not know (a slot container that is gone) on
 * to the host's resolvers, and where those cannot be reached libc's defaults (5 s, two attempts,
 * A and AAAA) kept HAProxy from booting for 20.5 s, measured on a host without outside DNS; with
 * these it booted in 2.5 s. Constants, never from the config.
 */
const PROXY_DNS_OPTIONS = ['--dns-option', 'timeout:1', '--dns-option', 'attempts:1']

/** One look at what the proxy strategy keeps on a host. */
interface Look {
  /** The proxy that serves or will: `<name>-proxy`, or the one moved aside by a replacement that was cut off. */
  proxy?: ContainerInfo
  slots: Record<Slot, ContainerInfo | undefined>
  /** `<name>-proxy-old`: left by a proxy replacement that was cut off. */
  aside?: ContainerInfo
  /** The new `<name>-proxy` of a replacement that was cut off before it served. */
  replacing?: ContainerInfo
}

interface Names {
  proxy: string
  network: string
  slots: Record<Slot, string>
}

/**
 * `strategy: proxy` on one docker host: blue/green behind HAProxy.
 *
 * A user network `<name>-net` holds the proxy container `<name>-proxy` (the only thing that
 * publishes a port: `proxy.port`) and two slot containers `<name>-blue` and `<name>-green`. A
 * deploy starts the new version in the idle slot, checks its state and its health at its own
 * address (from inside the proxy container) while HAProxy health-checks it in DRAIN, then switches
 * new requests to it in one runtime-API batch. The old slot keeps running in DRAIN during the
 * verify and watch window, so a switch back is one more batch; `finalize` lets it finish its
 * in-flight requests for what remains of `proxy.drain`, then stops it and keeps it for the next
 * rollback. After every switch the config inside the proxy names the live slot, so a restart of
 * the proxy (or of the host) serves it.
 */
export class ProxyStrategy implements DeployStrategy {
  /** The slot this run made live (or found live in a restore). */
  private serving: Slot | undefined
  /** The slot switched away from, draining until `finalize`. */
  private retiring: Slot | undefined
  /** When the switch happened, for what remains of `proxy.drain`. */
  private switchedAt = 0
  /** The slot of a version that failed before the switch, for its logs. */
  private failedSlot: Slot | undefined
  /** The image id of the version the idle slot kept for a rollback before this run started the new one there. */
  private overwritten: string | undefined
  /** Set when this run replaced the proxy container: why, and how long new connections were refused. */
  proxyReplaced: { why: string; gapMs: number } | undefined
  /** Set when this run took proxy.port over from the app's `replace` container (see takeover.ts): from which, and the gap. */
  takeover: { from: string; gapMs: number; measured: boolean; release: string } | undefined
  /** The `replace` container this run is taking over: kept, stopped, until the clean-up removes it by id. */
  private takenFrom: NamedContainer | undefined
  /** The `replace` container a restore put back on the port: what serves now. */
  private putBackHolder: string | undefined
  /** The container the runtime API and the slot probe go through: the proxy, or the check proxy of a takeover. */
  private proxyTarget: string | undefined
  /** The app's `replace` container with host networking: named when the proxy cannot bind its port. */
  private hostNetworkHolder: NamedContainer | undefined
  /** The probe of the last check after a switch, which follows the old slot too (see `switchBack`). */
  private watched: { probe: ContainerStateProbe; serving: Slot; retiring: Slot | undefined } | undefined
  /** The runtime API's last look at both slots, taken by `readRouting`. */
  private lastSnapshot: SlotsSnapshot | undefined
  private readonly runtime: HaproxyRuntime
  /** The app port of each slot container, as its label says (read at each look, set at each start). */
  private readonly slotPorts: Partial<Record<Slot, number>> = {}

  constructor(
    private readonly settings: DeploySettings,
    private readonly docker: DockerClient,
    private readonly clock: Clock,
    private readonly signal?: AbortSignal,
    /** What this run created here: the only slots, proxy and network a restore to nothing removes. */
    private readonly created: CreatedObjects = new CreatedObjects()
  ) {
    this.runtime = new HaproxyRuntime((commands) => this.sendToRuntimeApi(commands), {
      sleep: (ms) => this.clock.sleep(ms, this.signal).catch(() => undefined),
      now: () => this.clock.now()
    })
  }

  get host(): string {
    return this.docker.hostLabel
  }

  private get proxy(): ProxySettings {
    const proxy = this.settings.proxy
    if (!proxy) throw new Error('strategy: proxy needs the proxy settings (proxy.port and proxy.app-port)')
    return proxy
  }

  private get names(): Names {
    const name = this.settings.name
    return {
      proxy: proxyContainerName(name),
      network: `${name}-net`,
      slots: { blue: slotContainerName(name, 'blue'), green: slotContainerName(name, 'green') }
    }
  }

  /**
   * What serves here, as one of three answers: a release, undefined for "nothing of ours" (docker
   * answered, and no slot or proxy of this app exists), or a thrown error when docker did not
   * answer or the proxy cannot say which slot it routes to. Unknown is never read as nothing.
   * With the proxy gone and its slots still there, the slot that served is the release.
   */
  async current(): Promise<Release | undefined> {
    const look = await this.look()
    if (!look.proxy) {
      const served = servedSlotWithoutProxy(look.slots)
      // The app's own `replace` container on proxy.port is what users reach: it is what runs.
      const held = await this.portHolder()
      if (held.kind === 'holder') {
        if (served) throw new Error(mixedStateMessage(held.container, this.settings, this.proxy, this.host))
        return held.container.release
      }
      const info = served && look.slots[served]
      return info ? releaseOf(info.labels, info.image) : undefined
    }
    if (!look.slots.blue && !look.slots.green) return undefined
    const routing = await this.readRouting(look.proxy)
    if (!routing.slot) {
      if (routing.problems.length > 0) throw new Error(`cannot tell which slot of ${this.settings.name} serves on ${this.host}: ${routing.problems.join('; ')}`)
      return undefined
    }
    const info = look.slots[routing.slot]
    return info ? releaseOf(info.labels, info.image) : undefined
  }

  async switchTo(release: Release): Promise<void> {
    if (this.docker.dryRun) return this.planSwitch(release)
    let look: Look
    try {
      look = await this.look()
      await this.healReplacement(look)
      await this.dropUnstartedProxy(look)
    } catch (error) {
      throw new SwitchNotStartedError(error)
    }
    let live: Slot
    let holder: PortHolder | undefined
    try {
      if (!look.proxy && !servedSlotWithoutProxy(look.slots)) {
        // A first deploy here: what holds proxy.port decides between a first deploy and a takeover.
        holder = await this.portHolder()
        if (holder.kind === 'foreign') throw new Error(foreignHolderMessage(holder.container, this.settings, this.proxy, this.host))
        if (holder.kind !== 'holder') return await this.firstDeploy(release, { withCommit: true }, look.slots)
      }
    } catch (error) {
      throw error instanceof SwitchNotStartedError ? error : new SwitchNotStartedError(error)
    }
    if (holder?.kind === 'holder') return this.takeOver(release, holder.container, look.slots, holder.check)
    try {
      if (!look.proxy) {
        const served = servedSlotWithoutProxy(look.slots) as Slot
        // The proxy was removed (by hand, or lost) while a slot still holds what served: the proxy
        // comes back around the slots, routing to that slot, and the deploy goes on as usual.
        live = await this.recreateProxy(served, look)
      } else {
        if (!look.proxy.running) await this.docker.startContainer(this.names.proxy)
        live = await this.liveSlot(look)
        // A new image, port or bind needs a new proxy container: never ignored in silence.
        const change = this.proxyChange(look.proxy)
        if (change) await this.replaceProxy(live, look.proxy, change)
      }
    } catch (error) {
      throw error instanceof SwitchNotStartedError ? error : new SwitchNotStartedError(error)
    }
    const idle = otherSlot(live)
    const kept = look.slots[idle]
    if (this.settings.command === 'rollback' && (await this.holds(kept, release).catch(() => false))) {
      // command: rollback to the version kept in the idle slot: start it again rather than anew.
      try {
        if (!kept?.running) await this.docker.startContainer(this.names.slots[idle])
      } catch (error) {
        this.failedSlot = idle
        throw new SwitchNotStartedError(error)
      }
    } else {
      // The idle slot's version was kept for a rollback: its image stays (see `keptForRollback`).
      if (kept) this.overwritten = kept.imageId
      await this.startInSlot(idle, release, kept, { withCommit: true })
    }
    await this.checkBeforeSwitch(idle, { prepare: true, applyLive: live })
    await this.switchTraffic(idle)
  }

  stateProbe(): StateProbe {
    // A takeover undone: the `replace` container serves on the port again.
    if (this.putBackHolder) return containerStateProbe(this.docker, this.putBackHolder)
    if (this.serving) {
      // The old slot rides on the same event stream: a switch back then needs no read first.
      const retiring = this.retiring
      const probe = containerStateProbe(this.docker, this.names.slots[this.serving], { companions: retiring ? [this.names.slots[retiring]] : [] })
      this.watched = { probe, serving: this.serving, retiring }
      return probe
    }
    // A post step's restore found what serves; otherwise ask the proxy once.
    let probe: StateProbe | undefined
    return {
      observe: async (signal?: AbortSignal): Promise<StateObservation> => {
        if (!probe) {
          const { proxy } = await this.look()
          const slot = proxy ? (await this.readRouting(proxy)).slot : undefined
          if (!slot) return { verdict: 'failed', detail: `the proxy ${this.names.proxy} routes to no slot` }
          probe = containerStateProbe(this.docker, this.names.slots[slot])
        }
        return probe.observe(signal)
      },
      nextChange: (signal: AbortSignal) => probe?.nextChange?.(signal) ?? Promise.resolve('poll' as const),
      close: () => probe?.close?.()
    }
  }

  async finalize(): Promise<void> {
    if (this.docker.dryRun) return
    // The new version was shown healthy through the proxy: the `replace` container it took the port from goes, by its id.
    if (this.takenFrom) {
      await this.docker.removeContainer(this.takenFrom.id)
      this.takenFrom = undefined
    }
    const old = this.retiring
    if (old) {
      await this.retireSlot(old, Math.max(0, this.proxy.drainMs - (this.clock.now() - this.switchedAt)))
      this.retiring = undefined
      // The old slot was live when the running worker started, so it has no check configured
      // (`no-check`): a reload from the file, which has it idle and checked, makes HAProxy run
      // exactly what the file says, and the next deploy can check it without reloading first.
      if (this.serving) await this.reload(this.serving)
      return
    }
    // A fresh process (the post step finishing a clean-up that was cut off): a slot still running
    // beside the one HAProxy routes to is the old version; it finishes its requests and stops.
    const { proxy, slots } = await this.look()
    const live = proxy?.running ? (await this.readRouting(proxy)).slot : undefined
    if (!live || !slots[live]?.running) return
    if (slots[otherSlot(live)]?.running) await this.retireSlot(otherSlot(live), this.proxy.drainMs)
    // The post step finishing a takeover's clean-up: the `replace` container it kept, stopped, goes.
    if (!this.serving) {
      const held = await this.portHolder()
      if (held.kind === 'stopped-holder') await this.docker.removeContainer(held.container.id)
    }
  }

  /**
   * The new version failed after the switch (it died or turned unhealthy in the verify or watch
   * window): the old slot is still running in DRAIN, so one runtime-API batch puts users back on
   * it. Requests HAProxy holds for the failed slot are redispatched to it on their next retry;
   * the restore that follows drains and stops the failed slot.
   *
   * That the old slot still runs comes from the check's event stream, which followed it too: then
   * the switch-back batch is the first docker command after the failure was seen. When the stream
   * cannot tell (it was polled, it ended, or the failure came from an HTTP probe before any event
   * arrived), the old slot is read first: unknown is not running.
   */
  async switchBack(): Promise<Release | undefined> {
    const old = this.retiring
    if (!old || !this.serving || this.docker.dryRun) return undefined
    const watched = this.watched?.serving === this.serving && this.watched.retiring === old ? this.watched.probe : undefined
    const info = watched?.knownRunning(this.names.slots[old]) ?? (await this.docker.inspectContainer(this.names.slots[old]))
    if (!info?.running) return undefined
    const failed = this.serving
    await this.switchTraffic(old)
    // Its logs are the evidence; the restore drains and stops it.
    this.failedSlot = failed
    return releaseOf(info.labels, info.image)
  }

  /**
   * A new version took the idle slot, where the version kept for a rollback was: when the new one
   * failed, no container holds that version any more, yet it is still what a rollback would put
   * back. Its image must survive `retain`.
   */
  keptForRollback(): string[] {
    return this.overwritten ? [this.overwritten] : []
  }

  async failureEvidence(): Promise<FailureEvidence> {
    const slot = this.failedSlot ?? this.serving
    // After the switch back: the failed slot's logs and state, read side by side.
    return slot ? failedContainerEvidence(this.docker, this.names.slots[slot]) : { logs: '' }
  }

  /** A new version that failed its check in the idle slot was kept (stopped) for its logs: they say why. */
  async evidenceBeforeSwitch(): Promise<FailureEvidence> {
    return { logs: this.failedSlot ? await failedContainerLogs(this.docker, this.names.slots[this.failedSlot]) : '' }
  }

  async restore(target: Release | undefined): Promise<RestoreMethod> {
    const look = await this.look()
    const undo = await this.takeoverToUndo(look, target)
    if (undo) return this.undoTakeover(look, undo, target)
    if (!target) return this.removeCreated(look)
    await this.healReplacement(look)
    await this.dropUnstartedProxy(look)
    let live: Slot
    if (!look.proxy) {
      const served = servedSlotWithoutProxy(look.slots)
      if (!served) {
        // Nothing of ours is left but leftovers that never started: start over as on a first deploy.
        await this.firstDeploy(target, { withCommit: false }, look.slots)
        return 'redeployed'
      }
      // The proxy is gone and a slot still holds what served: the proxy comes back around it.
      live = await this.recreateProxy(served, look)
    } else {
      if (!look.proxy.running) await this.docker.startContainer(this.names.proxy)
      live = await this.liveSlot(look)
    }
    const idle = otherSlot(live)

    if (await this.holds(look.slots[live], target)) {
      if (!look.slots[live]?.running) await this.docker.startContainer(this.names.slots[live])
      this.serving = live
      // Whatever ran beside it stops taking anything: a new version checked but never switched
      // to, or one switched away from by switchBack (dead or not, HAProxy may still hold requests
      // for it that its next retry sends to the live slot).
      if (look.slots[idle]?.running || this.retiring === idle) await this.retireSlot(idle, this.proxy.drainMs)
      this.retiring = undefined
      await this.applyConfig(live)
      return 'already-running'
    }

    let method: RestoreMethod = 'reused-previous'
    if (await this.holds(look.slots[idle], target)) {
      if (!look.slots[idle]?.running) await this.docker.startContainer(this.names.slots[idle])
    } else {
      method = 'redeployed'
      const imageRef = target.imageRef ?? `${this.settings.image}:${target.tag}`
      if (!(await this.docker.imageExists(imageRef))) await this.docker.pull(imageRef)
      const digest = target.digest ?? (target.imageRef ? undefined : await this.docker.imageDigest(imageRef, this.settings.image))
      await this.startInSlot(idle, { ...target, ...(digest && { digest }) }, look.slots[idle], { withCommit: false })
    }
    // A kept slot that still runs and that HAProxy saw healthy a moment ago: switch back at once.
    const fast = method === 'reused-previous' && look.slots[idle]?.running === true ? { snapshot: this.lastSnapshot, info: look.slots[idle] } : undefined
    await this.checkBeforeSwitch(idle, { prepare: true, applyLive: live, ...(fast && { fast }) })
    await this.switchTraffic(idle)
    // The version switched away from failed or was not wanted: it finishes what it has in flight, then stops.
    await this.retireSlot(live, this.proxy.drainMs)
    this.retiring = undefined
    return method
  }

  // ---------------------------------------------------------------------------------------------

  /** The proxy and both slot containers, with one `docker container inspect`. */
  private async look(): Promise<Look> {
    const names = this.names
    const [proxy, blue, green, aside] = await this.docker.inspectContainers([names.proxy, names.slots.blue, names.slots.green, this.asideName])
    for (const [slot, info] of [['blue', blue], ['green', green]] as const) {
      const port = Number(info?.labels[APP_PORT_LABEL])
      if (Number.isInteger(port) && port > 0) this.slotPorts[slot] = port
      else delete this.slotPorts[slot]
    }
    // A proxy replacement cut off before the new proxy served: the one moved aside is what serves.
    if (aside && !proxy?.running) return { proxy: aside, slots: { blue, green }, aside, replacing: proxy }
    return { proxy, slots: { blue, green }, ...(aside && { aside }) }
  }

  /** Where `replaceProxy` moves the old proxy while the new one is made. */
  private get asideName(): string {
    return `${this.names.proxy}-old`
  }

  /**
   * Finishes or undoes a proxy replacement that was cut off (a cancel, a docker error): when the
   * new proxy runs, the old one moved aside goes; otherwise the new one, which never served, goes
   * and the old one takes its name back and runs. Before a switch or a restore changes anything.
   */
  private async healReplacement(look: Look): Promise<void> {
    const { aside } = look
    if (!aside) return
    if (!look.replacing && look.proxy && look.proxy.id !== aside.id && look.proxy.running) {
      if (aside.running) await this.docker.stopContainer(aside.id)
      await this.docker.removeContainer(aside.id)
      delete look.aside
      return
    }
    if (look.replacing) await this.docker.removeContainer(look.replacing.id)
    await this.docker.renameContainer(aside.id, this.names.proxy)
    if (!aside.running) await this.docker.startContainer(this.names.proxy)
    look.proxy = await this.docker.inspectContainer(this.names.proxy)
    delete look.aside
    delete look.replacing
  }

  /**
   * A proxy container that was created and never started (a create or its config copy cut off)
   * never served, and may hold no config at all: it is removed by id, and the proxy is then made
   * again around the slots like a proxy that is gone. Read as it is, it would make the serving
   * slot unknown and block every deploy and restore.
   */
  private async dropUnstartedProxy(look: Look): Promise<void> {
    const proxy = look.proxy
    if (!proxy || proxy.running || look.aside || !neverStarted(proxy)) return
    await this.docker.removeContainer(proxy.id)
    delete look.proxy
  }

  /**
   * The slot that serves, for a switch or a restore. When neither the runtime API nor the config
   * file can tell and a slot container exists, it throws: guessing could take the serving slot for
   * the idle one and remove it. Only with no slot container at all is blue the one to use.
   */
  private async liveSlot(look: Look): Promise<Slot> {
    const routing = look.proxy ? await this.readRouting(look.proxy) : { problems: [] }
    if (routing.slot) return routing.slot
    if (look.slots.blue || look.slots.green) {
      const why = routing.problems.length > 0 ? routing.problems.join('; ') : `neither the runtime API nor the config file in ${this.names.proxy} names a live slot`
      throw new Error(`cannot tell which slot of ${this.settings.name} serves on ${this.host} (${why}); nothing was changed`)
    }
    return 'blue'
  }

  /**
   * The slot the proxy routes new requests to: the runtime API's word while the proxy runs (the
   * slot HAProxy has ready), else the slot its config file names (what it serves once started).
   * `problems` holds the reads that failed: with no slot and a problem, the answer is unknown,
   * never "nothing" (a failed read is not an empty one).
   */
  private async readRouting(proxy: ContainerInfo): Promise<{ slot?: Slot; problems: string[] }> {
    const problems: string[] = []
    // The runtime API is reached by the proxy's name; a proxy moved aside is read from its file.
    if (proxy.running && proxy.name === this.names.proxy) {
      try {
        const snapshot = await this.runtime.snapshot()
        this.lastSnapshot = snapshot
        if (snapshot.routed) return { slot: snapshot.routed, problems }
      } catch (error) {
        this.lastSnapshot = undefined
        problems.push(`the runtime API did not answer: ${errorText(error)}`)
      }
    }
    try {
      const config = await this.docker.readFileFrom(proxy.name || this.names.proxy, HAPROXY_CONFIG_PATH)
      const named = config && LIVE_SLOT_LINE.exec(config)?.[1]
      if (named === 'blue' || named === 'green') return { slot: named, problems }
    } catch (error) {
      problems.push(`its config file could not be read: ${errorText(error)}`)
    }
    return { problems }
  }

  /**
   * Brings the proxy back around slots that outlived it: the network when it is missing, the
   * proxy with a config that routes to `live` (the slot that served), started, and `live`
   * started if it was stopped. Returns `live`. Nothing of the slots is removed.
   */
  private async recreateProxy(live: Slot, look: Look): Promise<Slot> {
    const names = this.names
    core.warning(`The proxy ${names.proxy} is missing on ${this.host} while ${names.slots[live]} holds what served; creating the proxy again around the slots, routing to ${names.slots[live]}.`)
    if (!(await this.docker.inspectNetwork(names.network))) this.created.record(await this.docker.createNetwork(names.network, this.ownLabels('network')), 'network')
    await this.createProxy(live)
    if (!look.slots[live]?.running) await this.docker.startContainer(names.slots[live])
    try {
      await this.docker.startContainer(names.proxy)
    } catch (error) {
      throw new Error(this.describeProxyStartFailure(error), { cause: error })
    }
    return live
  }

  /**
   * The first deploy on this host: the network, the new version in slot blue, the proxy with a
   * config that names blue, started; then the same checks as any switch. A failure removes what
   * this call created and throws `SwitchNotStartedError`: nothing served before, nothing does now.
   */
  private async firstDeploy(release: Release, options: { withCommit: boolean }, slots: Record<Slot, ContainerInfo | undefined>): Promise<void> {
    const names = this.names
    const mark = this.created.count
    try {
      if (!(await this.docker.inspectNetwork(names.network))) this.created.record(await this.docker.createNetwork(names.network, this.ownLabels('network')), 'network')
      // A slot container that never started (a create cut off earlier) never served: it may go.
      await this.startInSlot('blue', release, slots.blue, options)
      await this.createProxy('blue')
      try {
        await this.docker.startContainer(names.proxy)
      } catch (error) {
        throw new Error(this.describeProxyStartFailure(error), { cause: error })
      }
      await this.checkBeforeSwitch('blue', { prepare: false })
      // The file started blue as the live slot, without checks (`no-check`): nothing to turn off.
      this.serving = 'blue'
    } catch (error) {
      this.failedSlot = 'blue'
      // Only what this call created, by the ids docker returned: a name in use belongs to someone else.
      await this.removeCreatedSince(mark).catch(() => undefined)
      throw error instanceof SwitchNotStartedError ? error : new SwitchNotStartedError(error)
    }
  }

  /** Creates (does not start) the proxy container with its config naming `live`. */
  private async createProxy(live: Slot): Promise<void> {
    const { proxy } = this
    const names = this.names
    if (!(await this.docker.imageExists(proxy.image))) await this.docker.pull(proxy.image)
    const argv = ['container', 'create', '--name', names.proxy, '--network', names.network, '--restart', 'unless-stopped', ...PROXY_DNS_OPTIONS]
    // HAProxy's soft stop: in-flight requests finish (for at most proxy.drain) when the proxy stops.
    argv.push('--stop-signal', 'SIGUSR1', '--stop-timeout', String(Math.ceil(proxy.drainMs / 1000) + 5))
    const binds = proxy.bind.length > 0 ? proxy.bind : [undefined]
    for (const bind of binds) {
      const address = bind === undefined ? '' : bind.includes(':') ? `[${bind}]:` : `${bind}:`
      argv.push('--publish', `${address}${proxy.port}:${PROXY_LISTEN_PORT}`)
    }
    for (const [key, value] of Object.entries({ ...this.ownLabels('proxy'), [PROXY_SPEC_LABEL]: this.proxySpec() })) argv.push('--label', `${key}=${value}`)
    argv.push(proxy.image)
    this.created.record(await this.docker.createContainer(argv, {}))
    await this.writeConfig(live)
  }

  private describeProxyStartFailure(error: unknown): string {
    const message = error instanceof Error ? error.message : String(error)
    const where = this.proxy.bind.length > 0 ? ` on ${this.proxy.bind.join(', ')}` : ''
    if (/address already in use|port is already allocated|bind/i.test(message)) {
      if (this.hostNetworkHolder) return `proxy.port ${this.proxy.port} is already in use${where} on ${this.host}: the proxy ${this.names.proxy} could not publish it. ${hostNetworkMessage(this.hostNetworkHolder, this.proxy, this.host)} (${message})`
      return `proxy.port ${this.proxy.port} is already in use${where} on ${this.host}: the proxy ${this.names.proxy} could not publish it. Stop what listens there (e.g. the app's container from another strategy), or choose another proxy.port. (${message})`
    }
    return `the proxy ${this.names.proxy} did not start: ${message}`
  }

  /**
   * Creates and starts `release` in `slot` on the app network, publishing nothing, after removing
   * what the slot held (the version kept from before the last deploy, or a leftover). Throws
   * `SwitchNotStartedError`: nothing routes to the idle slot.
   */
  private async startInSlot(slot: Slot, release: Release, existing: ContainerInfo | undefined, options: { withCommit: boolean }): Promise<void> {
    const name = this.names.slots[slot]
    try {
      if (existing) {
        // The idle slot: the version kept from before the last deploy, or a leftover; never the
        // slot that serves (the caller chose it as the one the proxy does not route to).
        if (existing.running) await this.runtime.retire(slot).catch(() => undefined)
        await this.docker.removeContainer(existing.id)
      }
      const { container } = this.settings
      const argv = buildCreateArgv({
        name,
        imageRef: release.imageRef ?? `${this.settings.image}:${release.tag}`,
        container: { ...container, ports: [], network: this.names.network },
        labels: { ...releaseLabels(this.settings, release, options), [SLOT_LABEL]: slot, [APP_LABEL]: this.settings.name, [APP_PORT_LABEL]: String(this.proxy.appPort) }
      })
      this.created.record(await this.docker.createContainer(argv, secretEnvironment(container.secrets)))
      this.slotPorts[slot] = this.proxy.appPort
      await this.docker.startContainer(name)
    } catch (error) {
      this.failedSlot = slot
      throw new SwitchNotStartedError(error)
    }
  }

  /**
   * Before any user request reaches `slot`: its container runs, its health URL's path answers as
   * `health` expects at its own address, and HAProxy, checking it in DRAIN, calls it healthy at
   * the address docker gave it. Within `health.deadline`. Otherwise the slot is taken out and its
   * container stopped (kept for its logs), and `SwitchNotStartedError` says why.
   */
  private async checkBeforeSwitch(slot: Slot, options: { prepare: boolean; applyLive?: Slot; fast?: { snapshot?: SlotsSnapshot; info?: ContainerInfo } }): Promise<void> {
    const name = this.names.slots[slot]
    const started = this.clock.now()
    try {
      // The proxy runs what the settings say (check, timeouts, limits, ports) before it checks the slot.
      if (options.applyLive && (await this.applyConfig(options.applyLive))) options = { ...options, fast: undefined }
      const { snapshot, info } = options.fast ?? {}
      if (snapshot && info?.running && this.seenHealthy(snapshot, slot, info)) return
      if (options.prepare) {
        await this.enableChecks(slot)
        await this.runtime.prepare(slot)
      }
      const health = { ...this.settings.health, watchMs: 0 }
      const path = this.healthPath()
      const verdict = await verifyHealth({
        state: containerStateProbe(this.docker, name),
        http: path === undefined ? undefined : { url: `http://${name}:${this.proxy.appPort}${path}`, settings: health, probe: this.slotProbe(slot, path) },
        settings: health,
        signal: this.signal,
        clock: this.clock
      })
      if (!verdict.healthy) throw new Error(verdict.reason)
      const checked = await this.docker.inspectContainer(name)
      const address = checked?.networks?.[this.names.network] || undefined
      const remaining = Math.max(HAPROXY_RISE_MS, this.settings.health.deadlineMs - (this.clock.now() - started))
      await this.runtime.waitUntilHealthy(slot, { timeoutMs: remaining, intervalMs: 250, ...(address && { address }) })
    } catch (error) {
      throw await this.slotCheckFailed(slot, error)
    }
  }

  /** A slot that failed its check before the switch: taken out and stopped (kept for its logs); the error says why. */
  private async slotCheckFailed(slot: Slot, error: unknown): Promise<SwitchNotStartedError> {
    const name = this.names.slots[slot]
    this.failedSlot = slot
    await this.runtime.retire(slot).catch(() => undefined)
    await this.docker.stopContainer(name, this.stopSeconds()).catch(() => undefined)
    return new SwitchNotStartedError(new Error(`${name} was checked before the switch and no user request reached it: ${errorText(error)}`, { cause: error }))
  }

  private seenHealthy(snapshot: SlotsSnapshot, slot: Slot, info: ContainerInfo): boolean {
    const stat = snapshot.stat[slot]
    const address = info.networks?.[this.names.network]
    return snapshot.admin[slot].drain && isHealthy(stat) && (!address || stat.address?.startsWith(`${address}:`) === true)
  }

  /** Switches new requests to `to` in one batch and rewrites the config to name it. */
  private async switchTraffic(to: Slot): Promise<void> {
    await this.runtime.switchTo(to)
    this.serving = to
    this.retiring = otherSlot(to)
    this.switchedAt = this.clock.now()
    // The only server that takes requests now: no check of HAProxy's may take it DOWN (see runtime-api.ts).
    await this.disableChecks(to)
    await this.writeConfig(to)
  }

  /**
   * Lets `slot` finish its in-flight requests for up to `drainMs`, then takes it out (MAINT, open
   * connections cut) and stops its container, which is kept for the next rollback.
   */
  private async retireSlot(slot: Slot, drainMs: number): Promise<void> {
    // Also when its container died: requests HAProxy still holds for it (connecting, retrying)
    // are redispatched to the live slot within the drain; cutting them now would fail them.
    const stat = await this.runtime.server(slot).catch(() => undefined)
    if (stat && stat.state !== 'MAINT') await this.runtime.drain(slot, drainMs, 250)
    await this.runtime.retire(slot)
    await this.docker.stopContainer(this.names.slots[slot], this.stopSeconds()).catch((error: unknown) => {
      // A slot that held nothing (removed by hand) has nothing to stop.
      if (!/no such container/i.test(error instanceof Error ? error.message : String(error))) throw error
    })
  }

  // ── replace → proxy (see takeover.ts) ───────────────────────────────────────────────────────

  /** What holds proxy.port here (see `PortHolder`); remembers a host-network `replace` container for the error. */
  private async portHolder(): Promise<PortHolder> {
    const held = await readPortHolder(this.docker, this.settings, this.proxy)
    this.hostNetworkHolder = held.kind === 'host-network' ? held.container : undefined
    return held
  }

  /**
   * Takes proxy.port over from the app's own `replace` container `from`. While `from` still
   * serves: the network, the new version in slot blue, checked through a check proxy (the proxy
   * image with the proxy's own config, on the app network, publishing nothing), and the proxy
   * created. Then `from` is stopped, the proxy started on the freed port, and the gap measured up
   * to the proxy's first good answer on its port. A failure before the stop changes nothing of
   * what serves (`SwitchNotStartedError`); after it, `from` is started again and what this call
   * created goes, by the ids docker returned. `from` is kept, stopped, until `finalize`.
   */
  private async takeOver(release: Release, from: NamedContainer, slots: Record<Slot, ContainerInfo | undefined>, leftoverCheck: NamedContainer | undefined): Promise<void> {
    const names = this.names
    const mark = this.created.count
    this.takenFrom = from
    try {
      // A check proxy left by a run that was cut off publishes nothing: it never served.
      if (leftoverCheck) await this.docker.removeContainer(leftoverCheck.id)
      if (!(await this.docker.inspectNetwork(names.network))) this.created.record(await this.docker.createNetwork(names.network, this.ownLabels('network')), 'network')
      // Slot blue never served (no slot ever started here): a leftover in it may go.
      await this.startInSlot('blue', release, slots.blue, { withCommit: true })
      await this.checkThroughCheckProxy('blue')
      await this.createProxy('blue')
    } catch (error) {
      this.failedSlot = 'blue'
      await this.removeCreatedSince(mark).catch(() => undefined)
      throw error instanceof SwitchNotStartedError ? error : new SwitchNotStartedError(error)
    }
    const stoppedAt = this.clock.now()
    let measured: boolean
    try {
      await this.docker.stopContainer(from.id, this.stopSeconds())
      try {
        await this.docker.startContainer(names.proxy)
      } catch (error) {
        throw new Error(this.describeProxyStartFailure(error), { cause: error })
      }
      await this.waitUntilServing('blue')
      measured = await this.waitForFirstAnswer()
    } catch (error) {
      this.failedSlot = 'blue'
      const back = await this.putBackTakenFrom(from, mark)
      throw new Error(`${names.proxy} could not take proxy.port ${this.proxy.port} over from ${from.name} on ${this.host}: ${errorText(error)}; ${back}`, { cause: error })
    }
    const gapMs = Math.round(this.clock.now() - stoppedAt)
    this.serving = 'blue'
    this.takeover = { from: from.name, gapMs, measured, release: release.tag }
  }

  /** The warnings a switch leaves for its step (and so for the annotations and the summary): a takeover's gap. */
  switchWarnings(): { annotation: string; detail: string }[] {
    const taken = this.takeover
    if (!taken) return []
    return [
      {
        annotation: takeoverWarning({ from: taken.from, release: taken.release, proxy: this.names.proxy, port: this.proxy.port, host: this.host, gapMs: taken.gapMs, measured: taken.measured }),
        detail: `port ${this.proxy.port} taken over from ${taken.from} (strategy replace): new connections were refused for ${(taken.gapMs / 1000).toFixed(2)} s`
      }
    ]
  }

  /**
   * Checks `slot` before anything that serves is touched, through a check proxy: the proxy image
   * with the proxy's own config (`slot` live), on the app network, publishing nothing. The same
   * checks as a first deploy's (state, the health path at the slot's own address, HAProxy's view),
   * and it proves the proxy image boots with this config. Removed, by its id, once it has checked.
   */
  private async checkThroughCheckProxy(slot: Slot): Promise<void> {
    const { proxy } = this
    const name = checkProxyName(this.settings.name)
    if (!(await this.docker.imageExists(proxy.image))) await this.docker.pull(proxy.image)
    const argv = ['container', 'create', '--name', name, '--network', this.names.network, ...PROXY_DNS_OPTIONS]
    for (const [key, value] of Object.entries({ ...this.ownLabels('proxy'), [ROLE_LABEL]: 'proxy-check' })) argv.push('--label', `${key}=${value}`)
    argv.push(proxy.image)
    const id = await this.docker.createContainer(argv, {})
    this.created.record(id)
    const directory = HAPROXY_CONFIG_PATH.slice(0, HAPROXY_CONFIG_PATH.lastIndexOf('/'))
    await this.docker.copyArchiveInto(name, directory, singleFileTar('haproxy.cfg', this.renderConfig(slot)), `haproxy.cfg naming ${slot} live`)
    await this.docker.startContainer(name)
    this.proxyTarget = name
    try {
      await this.waitUntilCheckProxyServes(slot, name)
      await this.checkBeforeSwitch(slot, { prepare: false })
    } finally {
      this.proxyTarget = undefined
    }
    await this.docker.removeContainer(id.trim() || name)
  }

  /**
   * Waits until the check proxy `name` serves `slot`, while following the slot's own state. HAProxy
   * looks the live slot's name up when it starts, and a container that is gone has no name: the
   * proxy then boots only after the lookup gives up, and says no more than that the slot is not
   * served. So a slot that dies meanwhile fails the check at once, as the slot's own failure.
   */
  private async waitUntilCheckProxyServes(slot: Slot, name: string): Promise<void> {
    const done = new AbortController()
    const signal = this.signal ? AbortSignal.any([done.signal, this.signal]) : done.signal
    const slotState = containerStateProbe(this.docker, this.names.slots[slot])
    const serving = this.waitUntilServing(slot, signal).then(
      () => undefined,
      (error: unknown) => {
        throw new SwitchNotStartedError(new Error(`the check proxy ${name} (${this.proxy.image}) did not start with the proxy's config: ${errorText(error)}`, { cause: error }))
      }
    )
    // Whichever ends first decides; the other one stops at the abort, before the slot is taken out.
    serving.catch(() => undefined)
    let slotFailure: StateObservation | undefined
    try {
      slotFailure = await Promise.race([serving, untilStateFails(slotState, { signal, clock: this.clock, pollMs: STATE_POLL_MS })])
    } finally {
      done.abort()
      slotState.close()
    }
    if (slotFailure) throw await this.slotCheckFailed(slot, new Error(slotFailure.detail))
  }

  /**
   * The gap's end: the proxy's first good answer on its port, asked from inside it (the health
   * path through HAProxy's frontend, as users reach it). False when there is no health URL to ask:
   * then the gap ends when HAProxy serves the slot.
   */
  private async waitForFirstAnswer(): Promise<boolean> {
    const path = this.healthPath()
    if (path === undefined) return false
    const health = this.settings.health
    const request = slotRequest(path, this.healthHost(), health.headers)
    const exchange = (input: string, timeoutMs: number): Promise<string> =>
      this.docker.execIn(this.names.proxy, ['nc', '-w', String(Math.max(1, Math.ceil(timeoutMs / 1000))), '127.0.0.1', String(PROXY_LISTEN_PORT)], { input, timeoutMs: timeoutMs + 5_000 })
    const deadline = this.clock.now() + Math.max(RELOAD_TIMEOUT_MS, health.deadlineMs)
    for (;;) {
      const answer = await probeSlot(exchange, request, health, this.signal)
      if (answer.ok) return true
      if (this.clock.now() >= deadline || this.signal?.aborted) {
        throw new Error(`the proxy ${this.names.proxy} gave no good answer on its port within ${Math.max(RELOAD_TIMEOUT_MS, health.deadlineMs) / 1000} s of its start (${answer.detail ?? answer.error ?? 'no answer'})`)
      }
      await this.clock.sleep(50, this.signal)
    }
  }

  /** After a failed takeover stopped `from`: what this call created goes (the proxy first, freeing the port), and `from` starts again. */
  private async putBackTakenFrom(from: NamedContainer, mark: number): Promise<string> {
    try {
      await this.removeCreatedSince(mark)
      await this.docker.startContainer(from.id)
      this.serving = undefined
      this.putBackHolder = from.id
      return `${from.name} was started again and serves as before`
    } catch (error) {
      return `putting ${from.name} back failed too (${errorText(error)}); the restore tries again`
    }
  }

  /**
   * The takeover a restore must undo, if any: the app's `replace` container on proxy.port, that
   * this run took over (or, in the post step, that held the target: what ran before), while the
   * proxy is missing or is one this run created (or one never started). Undefined otherwise.
   */
  private async takeoverToUndo(look: Look, target: Release | undefined): Promise<PortHolder | undefined> {
    const proxy = look.proxy
    if (proxy && !this.created.includes(proxy.id) && !(neverStarted(proxy) && !look.aside)) return undefined
    if (!this.takenFrom && !target) return undefined
    const held = await this.portHolder()
    if (held.kind !== 'holder' && held.kind !== 'stopped-holder') return undefined
    const container = held.container
    return this.takenFrom?.id === container.id || (target !== undefined && sameRelease(container.release, target)) ? held : undefined
  }

  /**
   * Puts the `replace` container back on its port: the proxy this run made goes first (by id,
   * freeing the port), the check proxy too, the container starts again, and then the slots and the
   * network this run created go. It serves whatever the target: it is what served before the run.
   */
  private async undoTakeover(look: Look, held: PortHolder, target: Release | undefined): Promise<RestoreMethod> {
    if (held.kind === 'none') return 'nothing'
    const { container } = held
    if (look.proxy) await this.docker.removeContainer(look.proxy.id)
    if (held.check) await this.docker.removeContainer(held.check.id)
    if (!container.running) await this.docker.startContainer(container.id)
    for (const slot of SLOTS) {
      const info = look.slots[slot]
      if (info && (this.created.includes(info.id) || neverStarted(info))) await this.docker.removeContainer(info.id)
    }
    await this.removeNetworkIfCreated(this.created)
    this.serving = undefined
    this.retiring = undefined
    this.putBackHolder = container.id
    core.info(`${container.name} (strategy replace) serves on proxy.port ${this.proxy.port} on ${this.host} again; what this run created for the proxy was removed.`)
    if (target && sameRelease(container.release, target)) return container.running ? 'already-running' : 'reused-previous'
    return 'kept-serving'
  }

  /**
   * The whole haproxy.cfg for `live`, from the settings alone: the one source of truth of what
   * the proxy runs (which slot serves, which is checked and how, the timeouts and the limits).
   */
  private renderConfig(live: Slot): string {
    const path = this.healthPath()
    const { health } = this.settings
    return renderHaproxyConfig({
      name: this.settings.name,
      appPort: this.proxy.appPort,
      live,
      slotPorts: { ...this.slotPorts },
      drainMs: this.proxy.drainMs,
      maxConnections: this.proxy.maxConnections,
      // HAProxy checks no faster than every 100 ms, and no slower than once a minute.
      checkIntervalMs: Math.min(60_000, Math.max(100, health.intervalMs)),
      timeouts: { clientMs: this.proxy.timeoutMs, serverMs: this.proxy.timeoutMs, checkMs: health.timeoutMs },
      ...(path !== undefined && {
        healthPath: path,
        check: { host: this.healthHost(), headers: health.headers, expectStatus: health.expectStatus, ...(health.expectBody !== undefined && { expectBody: health.expectBody }) }
      })
    })
  }

  /** Puts haproxy.cfg naming `live` into the proxy container (created or running); HAProxy reads it at its next start or reload. */
  private async writeConfig(live: Slot): Promise<void> {
    const directory = HAPROXY_CONFIG_PATH.slice(0, HAPROXY_CONFIG_PATH.lastIndexOf('/'))
    await this.docker.copyArchiveInto(this.names.proxy, directory, singleFileTar('haproxy.cfg', this.renderConfig(live)), `haproxy.cfg naming ${live} live`)
  }

  /**
   * Makes the running proxy run what the settings say, with `live` serving: when the file in the
   * proxy differs from the rendered config, writes it and reloads HAProxy seamlessly (SIGUSR2 to
   * the master: a new worker takes the listeners; the old one finishes what it has in flight),
   * then waits until the new worker answers with `live` ready. A reload resets the runtime state
   * to the file, which is why the file always says what runs. Returns whether it reloaded.
   */
  private async applyConfig(live: Slot): Promise<boolean> {
    const wanted = this.renderConfig(live)
    const running = await this.docker.readFileFrom(this.names.proxy, HAPROXY_CONFIG_PATH)
    if (running === wanted) return false
    await this.reload(live)
    return true
  }

  /**
   * Turns HAProxy's checks of the candidate `slot` on. A slot that was live when the running
   * worker started has no check configured (`no-check`), and HAProxy refuses to enable one: then
   * the worker is reloaded from the rendered config, in which `slot` is the idle, checked one.
   */
  private async enableChecks(slot: Slot): Promise<void> {
    try {
      await this.runtime.setHealthChecks(slot, true)
    } catch (error) {
      if (!/not configured/i.test(errorText(error))) throw error
      await this.reload(otherSlot(slot))
      await this.runtime.setHealthChecks(slot, true)
    }
  }

  /** Turns HAProxy's checks of `slot` off; a slot started with `no-check` has none, which is the same. */
  private async disableChecks(slot: Slot): Promise<void> {
    try {
      await this.runtime.setHealthChecks(slot, false)
    } catch (error) {
      if (!/not configured/i.test(errorText(error))) throw error
    }
  }

  /** Writes the rendered config with `live` serving and reloads HAProxy seamlessly; waits for the new worker. */
  private async reload(live: Slot): Promise<void> {
    await this.writeConfig(live)
    await this.docker.signalMainProcess(this.names.proxy, 'USR2')
    await this.waitUntilServing(live)
    core.info(`The proxy ${this.names.proxy} on ${this.host} was reloaded with the config the settings give (seamless reload).`)
  }

  /** Waits until the proxy's (new) worker answers with `live` out of MAINT: it serves. */
  private async waitUntilServing(live: Slot, signal = this.signal): Promise<void> {
    const deadline = this.clock.now() + RELOAD_TIMEOUT_MS
    let last = 'the runtime API did not answer'
    for (;;) {
      try {
        const servers = await this.runtime.servers()
        // The new worker booted from the file: the live slot is out of MAINT (its address resolved).
        if (servers[live].state !== 'MAINT') return
        last = `${live} is ${servers[live].status}`
      } catch (error) {
        last = errorText(error)
      }
      if (this.clock.now() >= deadline) throw new Error(`the proxy ${this.proxyTarget ?? this.names.proxy} did not serve ${live} within ${RELOAD_TIMEOUT_MS / 1000} s of its (re)start (${last})`)
      await this.clock.sleep(100, signal)
    }
  }

  /** What a proxy container is created with; a change of any part needs a new container. */
  private proxySpec(): string {
    return JSON.stringify({ image: this.proxy.image, port: this.proxy.port, bind: [...this.proxy.bind].sort() })
  }

  /** Why the proxy container must be replaced, or undefined when it runs with what the settings say. */
  private proxyChange(proxy: ContainerInfo): string | undefined {
    const label = proxy.labels[PROXY_SPEC_LABEL]
    if (label === undefined) return proxy.image === this.proxy.image ? undefined : `proxy.image changed from ${proxy.image} to ${this.proxy.image}`
    if (label === this.proxySpec()) return undefined
    let was: { image?: string; port?: number; bind?: string[] } = {}
    try {
      was = JSON.parse(label) as typeof was
    } catch {
      return 'the proxy container has an unreadable spec label'
    }
    const changes: string[] = []
    if (was.image !== this.proxy.image) changes.push(`proxy.image from ${was.image ?? '?'} to ${this.proxy.image}`)
    if (was.port !== this.proxy.port) changes.push(`proxy.port from ${was.port ?? '?'} to ${this.proxy.port}`)
    if (JSON.stringify(was.bind ?? []) !== JSON.stringify([...this.proxy.bind].sort())) changes.push(`proxy.bind from ${(was.bind ?? []).join(', ') || 'all addresses'} to ${this.proxy.bind.join(', ') || 'all addresses'}`)
    return changes.length > 0 ? `changed ${changes.join(', ')}` : undefined
  }

  /**
   * Replaces the proxy container (a new image, port or bind), keeping the slots: the old proxy is
   * moved aside, the new one created with a config that routes to `live`, the old one stopped
   * softly (its in-flight requests finish, for at most proxy.drain) so the port is free, and the
   * new one started. New connections are refused in between: that gap is measured and reported.
   * If the new proxy cannot start, the old one comes back.
   */
  private async replaceProxy(live: Slot, old: ContainerInfo, why: string): Promise<void> {
    const names = this.names
    const aside = this.asideName
    await this.docker.renameContainer(names.proxy, aside)
    const mark = this.created.count
    let stoppedAt: number | undefined
    try {
      await this.createProxy(live)
      stoppedAt = this.clock.now()
      await this.docker.stopContainer(old.id)
      await this.docker.startContainer(names.proxy)
      // Connections are refused until the new HAProxy answers, not merely until docker started it.
      await this.waitUntilServing(live)
    } catch (error) {
      // Back to the proxy that served: only what this call created goes.
      await this.removeCreatedSince(mark).catch(() => undefined)
      await this.docker.renameContainer(aside, names.proxy).catch(() => undefined)
      if (stoppedAt !== undefined) await this.docker.startContainer(names.proxy).catch(() => undefined)
      throw new Error(`the proxy ${names.proxy} could not be replaced (${why}): ${errorText(error)}; the old proxy serves again`, { cause: error })
    }
    const gapMs = Math.round(this.clock.now() - stoppedAt)
    this.proxyReplaced = { why, gapMs }
    await this.docker.removeContainer(old.id)
    core.warning(
      `The proxy ${names.proxy} on ${this.host} was replaced (${why}): new connections were refused for at least ${(gapMs / 1000).toFixed(1)} s, while the old proxy finished its in-flight requests (at most proxy.drain) and the new one started. The slots were kept.`,
      { title: 'Deploy · proxy' }
    )
  }

  /**
   * Nothing ran before on this host: removes what this run created, by the ids docker returned
   * (slots, proxy, network), and slot containers that never started. Anything else of that name
   * was not made by this run and may serve: it stays.
   */
  private async removeCreated(look: Look): Promise<RestoreMethod> {
    const ours = (info: ContainerInfo | undefined): info is ContainerInfo => info !== undefined && (this.created.includes(info.id) || neverStarted(info))
    let removed = false
    for (const info of [...SLOTS.map((slot) => look.slots[slot]), look.proxy].filter(ours)) removed = (await this.docker.removeContainer(info.id)) || removed
    return (await this.removeNetworkIfCreated(this.created)) || removed ? 'removed' : 'nothing'
  }

  /** Removes what this run created after `mark` (see `CreatedObjects.count`): containers by id, newest first, then the network. */
  private async removeCreatedSince(mark: number): Promise<void> {
    const since = new CreatedObjects(this.created.ids.slice(mark))
    for (const id of since.idsOf('container').reverse()) await this.docker.removeContainer(id)
    await this.removeNetworkIfCreated(since)
  }

  /** Removes `<name>-net` when `ledger` holds its id (never a network someone else made under that name). */
  private async removeNetworkIfCreated(ledger: CreatedObjects): Promise<boolean> {
    if (ledger.idsOf('network').length === 0) return false
    const network = await this.docker.inspectNetwork(this.names.network)
    if (!network || !ledger.includes(network.id, 'network')) return false
    await this.docker.removeNetwork(this.names.network)
    return true
  }

  /**
   * Whether `info` holds exactly `target`. A target known by its tag only (a release) is compared
   * by the local image's digest, since the tag may have been re-pushed since.
   */
  private async holds(info: ContainerInfo | undefined, target: Release): Promise<boolean> {
    if (!info) return false
    const held = releaseOf(info.labels, info.image)
    if (held.tag !== target.tag) return false
    let wanted = target
    if (!target.digest && held.digest && !target.imageRef) {
      const local = await this.docker.imageDigest(`${this.settings.image}:${target.tag}`, this.settings.image)
      wanted = { ...target, ...(local && { digest: local }) }
    }
    return sameRelease(held, wanted)
  }

  /** The path of health.url, checked on each slot; undefined without a health URL. */
  private healthPath(): string | undefined {
    const url = this.settings.health.url
    return url ? healthUrlPath(url) : undefined
  }

  /** The Host header of a slot probe: the public URL's. */
  private healthHost(): string {
    const url = this.settings.health.url ?? ''
    try {
      return new URL(url.replaceAll('{host}', 'localhost')).host
    } catch {
      return 'localhost'
    }
  }

  private slotProbe(slot: Slot, path: string) {
    const request = slotRequest(path, this.healthHost(), this.settings.health.headers)
    const exchange = (input: string, timeoutMs: number): Promise<string> =>
      this.docker.execIn(this.proxyTarget ?? this.names.proxy, ['nc', '-w', String(Math.max(1, Math.ceil(timeoutMs / 1000))), this.names.slots[slot], String(this.proxy.appPort)], {
        input,
        timeoutMs: timeoutMs + 5_000
      })
    return (_url: string, settings: DeploySettings['health'], signal?: AbortSignal) => probeSlot(exchange, request, settings, signal)
  }

  /** One runtime-API exchange through the docker connection; commands that change state are only planned in a dry run. */
  private async sendToRuntimeApi(commands: string): Promise<string> {
    const reads = /^\s*show /.test(commands)
    return this.docker.execIn(this.proxyTarget ?? this.names.proxy, ['nc', RUNTIME_API_HOST, String(RUNTIME_API_PORT)], {
      input: commands,
      timeoutMs: RUNTIME_API_TIMEOUT_MS,
      mutates: !reads,
      plannedInput: JSON.stringify(commands.trim())
    })
  }

  /** Dry run: plans the commands of a switch without waiting for anything. */
  private async planSwitch(release: Release): Promise<void> {
    const look = await this.look()
    const names = this.names
    if (!look.proxy) {
      if (!(await this.docker.inspectNetwork(names.network))) await this.docker.createNetwork(names.network, this.ownLabels('network'))
      await this.startInSlot('blue', release, undefined, { withCommit: true })
      await this.createProxy('blue')
      // A takeover stops the app's `replace` container on proxy.port just before the proxy starts.
      const held = await this.portHolder()
      if (held.kind === 'holder') await this.docker.stopContainer(held.container.id, this.stopSeconds())
      await this.docker.startContainer(names.proxy)
      return
    }
    const live = (await this.readRouting(look.proxy)).slot ?? 'blue'
    const idle = otherSlot(live)
    if (look.slots[idle]) await this.docker.removeContainer(names.slots[idle])
    await this.startInSlot(idle, release, undefined, { withCommit: true })
    await this.runtime.prepare(idle)
    await this.runtime.switchTo(idle)
    await this.writeConfig(idle)
  }

  private ownLabels(role: 'proxy' | 'network'): Record<string, string> {
    return { [ROLE_LABEL]: role, [APP_LABEL]: this.settings.name, [Label.Environment]: this.settings.environment }
  }

  private stopSeconds(): number | undefined {
    const ms = this.settings.container.stopTimeoutMs
    return ms === undefined ? undefined : Math.ceil(ms / 1000)
  }
}

/**
 * With the proxy gone, the slot that served: of the slot containers that ever started, a running
 * one before a stopped one, then the newest by its release label (deployed-at), then by start
 * time. Undefined when no slot ever started: then nothing of ours served.
 */
export function servedSlotWithoutProxy(slots: Record<Slot, ContainerInfo | undefined>): Slot | undefined {
  const candidates = SLOTS.filter((slot) => {
    const info = slots[slot]
    return info !== undefined && !neverStarted(info)
  })
  const rank = (slot: Slot): [number, number, number] => {
    const info = slots[slot] as ContainerInfo
    return [info.running || info.restarting ? 1 : 0, Date.parse(info.labels[Label.DeployedAt] ?? '') || 0, Date.parse(info.startedAt) || 0]
  }
  return candidates.sort((a, b) => {
    const [x, y] = [rank(a), rank(b)]
    return y[0] - x[0] || y[1] - x[1] || y[2] - x[2]
  })[0]
}

/** A container docker created and never started (a create cut off, a first deploy's leftover): it never served. */
function neverStarted(info: ContainerInfo): boolean {
  return info.status === 'created' && !info.running
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
