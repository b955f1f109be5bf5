import { Label, Suffix } from '../constants.js'
import type { ContainerInfo, DockerClient } from '../docker/client.js'
import { buildCreateArgv, secretEnvironment } from '../docker/run-args.js'
import { containerStateProbe, type StateProbe } from '../health/state-probe.js'
import type { DeploySettings, Release } from '../settings.js'
import type { DeployStrategy, RestoreMethod } from './strategy.js'

/** How many log lines of a failed container the report keeps. */
const FAILED_LOG_LINES = 50

/**
 * `strategy: replace` on one docker host: stop the running container, keep it as `<name>-previous`
 * (the instant rollback), start the new one as `<name>`.
 *
 * The new container is created under `<name>-next` before anything running is touched, so a bad
 * option, a missing volume driver or a name clash fails while the old version still serves.
 */
export class ReplaceStrategy implements DeployStrategy {
  /**
   * Whether `<name>-previous-older` may exist after the switch; undefined until a switch has
   * looked. Spares the clean-up a command when the switch saw there is none.
   */
  private olderMayExist: boolean | undefined

  constructor(
    private readonly settings: DeploySettings,
    private readonly docker: DockerClient
  ) {}

  get host(): string {
    return this.docker.hostLabel
  }

  private get name(): string {
    return this.settings.name
  }

  async current(): Promise<Release | undefined> {
    const running = await this.docker.inspectContainer(this.name)
    if (!running) return undefined
    return releaseOf(running.labels, running.image)
  }

  async switchTo(release: Release): Promise<void> {
    const next = this.name + Suffix.Next
    const previousName = this.name + Suffix.Previous
    const olderName = this.name + Suffix.Older
    // One look at every name the switch touches: each docker command is a CLI process of its own.
    const [leftover, running, previous, older] = await this.docker.inspectContainers([next, this.name, previousName, olderName])
    // A leftover from an interrupted run would block the name; it never served traffic.
    if (leftover) await this.docker.removeContainer(next)

    if (running && previous && !older && !previous.running && !previous.restarting) {
      // The usual case: moving the stopped previous aside is one rename that touches nothing that
      // serves, so it runs beside the create. A failed create undoes it, as if it had come first.
      const [created, movedAside] = await Promise.allSettled([
        this.createContainer(next, release, { withCommit: true }),
        this.docker.renameContainer(previousName, olderName)
      ])
      if (created.status === 'rejected') {
        if (movedAside.status === 'fulfilled') await this.docker.renameContainer(olderName, previousName).catch(() => undefined)
        throw created.reason
      }
      if (movedAside.status === 'rejected') throw movedAside.reason
    } else {
      await this.createContainer(next, release, { withCommit: true })
      if (running) await this.makeRoomForPrevious(previous, older)
    }
    this.olderMayExist = Boolean((running && previous) || older)

    if (running) {
      if (running.running || running.restarting) await this.docker.stopContainer(this.name, this.stopSeconds())
      await this.docker.renameContainer(this.name, previousName)
    }
    await this.docker.renameContainer(next, this.name)
    await this.docker.startContainer(this.name)
  }

  stateProbe(): StateProbe {
    return containerStateProbe(this.docker, this.name)
  }

  async finalize(): Promise<void> {
    // The switch's inspect showed there is no older previous, and it moved none aside.
    if (this.olderMayExist === false) return
    await this.docker.removeContainer(this.name + Suffix.Older)
  }

  async discardFailed(): Promise<{ logs: string }> {
    const logs = await this.docker.containerLogs(this.name, FAILED_LOG_LINES).catch(() => '')
    await this.docker.removeContainer(this.name)
    await this.docker.removeContainer(this.name + Suffix.Next)
    return { logs }
  }

  async restore(target: Release): Promise<RestoreMethod> {
    await this.docker.removeContainer(this.name)
    const imageRef = `${this.settings.image}:${target.tag}`
    const localDigest = target.digest ?? (await this.docker.imageDigest(imageRef, this.settings.image))

    const suffixes = [Suffix.Previous, Suffix.Older]
    const keptContainers = await this.docker.inspectContainers(suffixes.map((suffix) => this.name + suffix))
    for (const [index, suffix] of suffixes.entries()) {
      const kept = keptContainers[index]
      if (!kept || kept.labels[Label.Tag] !== target.tag) continue
      // The tag may have been re-pushed since; reuse the container only when it is the same image.
      if (localDigest && kept.labels[Label.Digest] && kept.labels[Label.Digest] !== localDigest) continue
      await this.docker.renameContainer(this.name + suffix, this.name)
      await this.docker.startContainer(this.name)
      return 'reused-previous'
    }

    if (!(await this.docker.imageExists(imageRef))) await this.docker.pull(imageRef)
    const digest = await this.docker.imageDigest(imageRef, this.settings.image)
    await this.createContainer(this.name, { tag: target.tag, digest }, { withCommit: false })
    await this.docker.startContainer(this.name)
    return 'redeployed'
  }

  /**
   * Only one `-previous` can exist: the one before it moves aside until the new version is
   * healthy. Reads what the switch's inspect saw, so a missing container costs no command.
   */
  private async makeRoomForPrevious(previous: ContainerInfo | undefined, older: ContainerInfo | undefined): Promise<void> {
    if (!previous) return
    if (older) await this.docker.removeContainer(this.name + Suffix.Older)
    if (previous.running || previous.restarting) await this.docker.stopContainer(this.name + Suffix.Previous, this.stopSeconds())
    await this.docker.renameContainer(this.name + Suffix.Previous, this.name + Suffix.Older)
  }

  private async createContainer(name: string, release: Release, options: { withCommit: boolean }): Promise<void> {
    const { run } = this.settings
    const labels: Record<string, string> = {
      [Label.Tag]: release.tag,
      [Label.Image]: this.settings.image,
      [Label.Environment]: this.settings.environment,
      [Label.RunUrl]: run.runUrl,
      [Label.Actor]: run.actor,
      [Label.DeployedAt]: new Date().toISOString()
    }
    if (release.digest) labels[Label.Digest] = release.digest
    // A redeployed old release was not built from this run's commit; do not claim it was.
    if (options.withCommit && run.sha) labels[Label.Commit] = run.sha
    const argv = buildCreateArgv({
      name,
      imageRef: `${this.settings.image}:${release.tag}`,
      container: this.settings.container,
      labels
    })
    await this.docker.createContainer(argv, secretEnvironment(this.settings.container.secrets))
  }

  private stopSeconds(): number | undefined {
    const ms = this.settings.container.stopTimeoutMs
    return ms === undefined ? undefined : Math.ceil(ms / 1000)
  }
}

/**
 * The release a container holds, from the labels this action wrote; for a container started by
 * hand, the tag of its image reference.
 */
export function releaseOf(labels: Record<string, string>, imageRef: string): Release | undefined {
  const tag = labels[Label.Tag] ?? tagOfReference(imageRef)
  if (!tag) return undefined
  return { tag, digest: labels[Label.Digest] }
}

function tagOfReference(reference: string): string | undefined {
  const withoutDigest = reference.split('@')[0] ?? ''
  const lastSlash = withoutDigest.lastIndexOf('/')
  const colon = withoutDigest.indexOf(':', lastSlash + 1)
  return colon === -1 ? undefined : withoutDigest.slice(colon + 1)
}
