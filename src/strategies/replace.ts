import { Suffix } from '../constants.js'
import { CreatedObjects } from '../created.js'
import type { ContainerInfo, DockerClient } from '../docker/client.js'
import { buildCreateArgv, secretEnvironment } from '../docker/run-args.js'
import { containerStateProbe, type ContainerStateProbe, type StateProbe } from '../health/state-probe.js'
import { sameRelease, type DeploySettings, type Release } from '../settings.js'
import { failedContainerEvidence } from './container-evidence.js'
import { releaseLabels, releaseOf } from './release-labels.js'
import { SwitchNotStartedError, type DeployStrategy, type FailureEvidence, type RestoreMethod } from './strategy.js'

/** Networks every engine has; only other names need a look before the switch. */
const BUILT_IN_NETWORKS = new Set(['host', 'bridge', 'none', 'default'])

/**
 * `strategy: replace` on one docker host: stop the running container, keep it as `<name>-previous`
 * (the instant rollback), start the new one as `<name>`.
 *
 * The new container is created under `<name>-next` before anything running is touched, so a bad
 * option or a name clash fails while the old version still serves; a missing network, which docker
 * only refuses at start, is looked for first.
 */
export class ReplaceStrategy implements DeployStrategy {
  /**
   * Whether `<name>-previous-older` may exist after the switch; undefined until a switch has
   * looked. Spares the clean-up a command when the switch saw there is none.
   */
  private olderMayExist: boolean | undefined
  /** The new version's state probe, following it since its create, until the health check takes it. */
  private switchProbe: ContainerStateProbe | undefined

  constructor(
    private readonly settings: DeploySettings,
    private readonly docker: DockerClient,
    /** What this run created here: the only app container a restore may remove. */
    private readonly created: CreatedObjects = new CreatedObjects()
  ) {}

  get host(): string {
    return this.docker.hostLabel
  }

  private get name(): string {
    return this.settings.name
  }

  private get names(): { next: string; live: string; previous: string; older: string } {
    return { next: this.name + Suffix.Next, live: this.name, previous: this.name + Suffix.Previous, older: this.name + Suffix.Older }
  }

  async current(): Promise<Release | undefined> {
    const running = await this.docker.inspectContainer(this.name)
    return running && releaseOf(running.labels, running.image)
  }

  async switchTo(release: Release): Promise<void> {
    const names = this.names
    // One look at every name the switch touches: each docker command is a CLI process of its own.
    const [leftover, running, previous, older] = await this.docker.inspectContainers([names.next, names.live, names.previous, names.older])
    try {
      // Docker accepts a missing network at create and refuses it only at start, after the old
      // version was stopped: look first, while nothing that serves has been touched.
      await this.requireNetwork()
      // A leftover from an interrupted run would block the name; created and never started, it
      // never served traffic. One that runs is not ours to judge: the conflict is reported.
      if (leftover?.running || leftover?.restarting) {
        throw new Error(`a running container already holds the name ${names.next} on ${this.host}; the action only creates it, never starts it under that name, so it was left as it is: remove or rename it, then deploy again`)
      }
      if (leftover) await this.docker.removeContainer(leftover.id)
      let createdId: string
      if (running && previous && !older && !previous.running && !previous.restarting) {
        // The usual case: moving the stopped previous aside is one rename that touches nothing that
        // serves, so it runs beside the create. A failed create undoes it, as if it had come first.
        const [created, movedAside] = await Promise.allSettled([
          this.createContainer(names.next, release, { withCommit: true }),
          this.docker.renameContainer(names.previous, names.older)
        ])
        if (created.status === 'rejected') {
          if (movedAside.status === 'fulfilled') await this.docker.renameContainer(names.older, names.previous).catch(() => undefined)
          throw created.reason
        }
        if (movedAside.status === 'rejected') throw movedAside.reason
        createdId = created.value
      } else {
        createdId = await this.createContainer(names.next, release, { withCommit: true })
        if (running) await this.makeRoomForPrevious(previous, older)
      }
      this.followNewVersion(createdId)
    } catch (error) {
      this.dropSwitchProbe()
      // Nothing that serves was touched; the restore path removes `-next` and heals the names.
      throw new SwitchNotStartedError(error)
    }
    this.olderMayExist = Boolean((running && previous) || older)

    try {
      if (running) {
        if (running.running || running.restarting) await this.docker.stopContainer(names.live, this.stopSeconds())
        await this.docker.renameContainer(names.live, names.previous)
      }
      await this.docker.renameContainer(names.next, names.live)
      await this.docker.startContainer(names.live)
    } catch (error) {
      this.dropSwitchProbe()
      throw error
    }
  }

  /** The health check of the new version follows what the switch began to follow at its create. */
  stateProbe(): StateProbe {
    const probe = this.switchProbe ?? containerStateProbe(this.docker, this.name)
    this.switchProbe = undefined
    return probe
  }

  /**
   * The new version's state is followed from its create, while the old one still serves and is
   * stopped: the event stream is subscribed before the new process starts, so a crash at start is
   * known from docker's `die` event at once, not after a first read (a CLI process) that begins
   * only once the start returned. The health check takes the probe over and closes it.
   */
  private followNewVersion(id: string): void {
    if (this.docker.dryRun) return
    this.dropSwitchProbe()
    const probe = containerStateProbe(this.docker, this.name)
    probe.followFromCreation(id)
    this.switchProbe = probe
  }

  /** A probe no health check took over (the switch failed, or a restore or clean-up came first) ends here. */
  private dropSwitchProbe(): void {
    this.switchProbe?.close()
    this.switchProbe = undefined
  }

  async finalize(): Promise<void> {
    this.dropSwitchProbe()
    // The switch's inspect showed there is no older previous, and it moved none aside.
    if (this.olderMayExist === false) return
    await this.docker.removeContainer(this.names.older)
  }

  async failureEvidence(): Promise<FailureEvidence> {
    return failedContainerEvidence(this.docker, this.name)
  }

  async restore(target: Release | undefined): Promise<RestoreMethod> {
    this.dropSwitchProbe()
    const names = this.names
    const [next, live, previous, older] = await this.docker.inspectContainers([names.next, names.live, names.previous, names.older])
    // The new version while it was created: it never started, so it never served.
    if (next && !next.running && !next.restarting) await this.docker.removeContainer(next.id)

    if (live) {
      if (target && sameRelease(releaseOf(live.labels, live.image), target)) {
        // The switch never got to it, or was interrupted while it was stopped: start it again.
        if (!live.running) await this.docker.startContainer(names.live)
        await this.healKeptNames(previous, older)
        return 'already-running'
      }
      if (!this.created.includes(live.id)) {
        // Not started by this run, so it is what served before (the switch was cut off before the
        // new version took the name): it is never removed. It serves again as it is.
        if (!live.running) await this.docker.startContainer(names.live)
        await this.healKeptNames(previous, older)
        return 'kept-serving'
      }
      await this.docker.removeContainer(live.id)
    }

    const kept = await this.keptHolding(target, [
      [names.previous, previous],
      [names.older, older]
    ])
    if (kept) {
      await this.docker.renameContainer(kept, names.live)
      await this.docker.startContainer(names.live)
      await this.healKeptNames(kept === names.previous ? undefined : previous, kept === names.older ? undefined : older)
      return 'reused-previous'
    }
    await this.healKeptNames(previous, older)
    if (!target) return live ? 'removed' : 'nothing'

    const imageRef = target.imageRef ?? `${this.settings.image}:${target.tag}`
    if (!(await this.docker.imageExists(imageRef))) await this.docker.pull(imageRef)
    const digest = target.digest ?? (target.imageRef ? undefined : await this.docker.imageDigest(imageRef, this.settings.image))
    await this.createContainer(names.live, { ...target, ...(digest && { digest }) }, { withCommit: false })
    await this.docker.startContainer(names.live)
    return 'redeployed'
  }

  /**
   * The kept container that holds exactly `target`. A target known by its tag only (a release)
   * is compared by the local image's digest, since the tag may have been re-pushed since.
   */
  private async keptHolding(target: Release | undefined, kept: [string, ContainerInfo | undefined][]): Promise<string | undefined> {
    if (!target) return undefined
    let wanted = target
    for (const [name, info] of kept) {
      if (!info) continue
      const holds = releaseOf(info.labels, info.image)
      if (holds.tag !== target.tag) continue
      if (!wanted.digest && holds.digest && !target.imageRef) {
        const local = await this.docker.imageDigest(`${this.settings.image}:${target.tag}`, this.settings.image)
        wanted = { ...target, ...(local && { digest: local }) }
      }
      if (sameRelease(holds, wanted)) return name
    }
    return undefined
  }

  /**
   * An interruption between moving `-previous` aside and renaming the running container, or a
   * restore that took `-previous`, leaves `-previous-older` without a `-previous`: the older one
   * is the instant rollback again.
   */
  private async healKeptNames(previous: ContainerInfo | undefined, older: ContainerInfo | undefined): Promise<void> {
    if (previous || !older) return
    await this.docker.renameContainer(this.names.older, this.names.previous)
  }

  /**
   * Only one `-previous` can exist: the one before it moves aside until the new version is
   * healthy. Reads what the switch's inspect saw, so a missing container costs no command.
   */
  private async makeRoomForPrevious(previous: ContainerInfo | undefined, older: ContainerInfo | undefined): Promise<void> {
    if (!previous) return
    if (older) await this.docker.removeContainer(this.names.older)
    if (previous.running || previous.restarting) await this.docker.stopContainer(this.names.previous, this.stopSeconds())
    await this.docker.renameContainer(this.names.previous, this.names.older)
  }

  /** Throws, naming the network, when `container.network` is a user network this host does not have. */
  private async requireNetwork(): Promise<void> {
    const network = this.settings.container.network
    if (!network || BUILT_IN_NETWORKS.has(network) || network.startsWith('container:')) return
    if (await this.docker.inspectNetwork(network)) return
    throw new Error(`the network ${network} (container.network) does not exist on ${this.host}; create it with \`docker network create ${network}\` there, or change container.network`)
  }

  /** Creates the app container and records it as this run's; returns the id docker returned. */
  private async createContainer(name: string, release: Release, options: { withCommit: boolean }): Promise<string> {
    const argv = buildCreateArgv({
      name,
      imageRef: release.imageRef ?? `${this.settings.image}:${release.tag}`,
      container: this.settings.container,
      labels: releaseLabels(this.settings, release, options)
    })
    const id = await this.docker.createContainer(argv, secretEnvironment(this.settings.container.secrets))
    this.created.record(id)
    return id
  }

  private stopSeconds(): number | undefined {
    const ms = this.settings.container.stopTimeoutMs
    return ms === undefined ? undefined : Math.ceil(ms / 1000)
  }
}
