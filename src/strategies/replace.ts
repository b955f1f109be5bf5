import { Label, Suffix } from '../constants.js'
import type { DockerClient } from '../docker/client.js'
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
    // A leftover from an interrupted run would block the name; it never served traffic.
    await this.docker.removeContainer(next)
    await this.createContainer(next, release, { withCommit: true })

    const running = await this.docker.inspectContainer(this.name)
    if (running) {
      await this.makeRoomForPrevious()
      if (running.running || running.restarting) await this.docker.stopContainer(this.name, this.stopSeconds())
      await this.docker.renameContainer(this.name, this.name + Suffix.Previous)
    }
    await this.docker.renameContainer(next, this.name)
    await this.docker.startContainer(this.name)
  }

  stateProbe(): StateProbe {
    return containerStateProbe(this.docker, this.name)
  }

  async finalize(): Promise<void> {
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

    for (const suffix of [Suffix.Previous, Suffix.Older]) {
      const kept = await this.docker.inspectContainer(this.name + suffix)
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

  /** Only one `-previous` can exist: the one before it moves aside until the new version is healthy. */
  private async makeRoomForPrevious(): Promise<void> {
    const previous = await this.docker.inspectContainer(this.name + Suffix.Previous)
    if (!previous) return
    await this.docker.removeContainer(this.name + Suffix.Older)
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
