import * as core from '@actions/core'
import { CreatedObjects } from './created.js'
import { dockerClientFor, type Clock, type Dependencies } from './dependencies.js'
import { DockerClient } from './docker/client.js'
import { buildHookArgv, secretEnvironment } from './docker/run-args.js'
import type { GitHubRelease } from './github/client.js'
import { DeploymentRecorder } from './github/deployments.js'
import { probesFromHost, throughForward, urlEndpoint } from './health/probe-origin.js'
import { verifyHealth, type HealthVerdict } from './health/verify.js'
import { describeCleanup, pruneImages, type ImageCleanup } from './images.js'
import { DeployLock, FleetLock } from './lock.js'
import type { Failure, Outcome } from './outcome.js'
import { describeRestoreMethod, hostStatusText } from './report/outcome-text.js'
import { formatDuration } from './report/format.js'
import type { Reporter } from './report/reporter.js'
import type { HostRow } from './report/summary.js'
import { resolveManualRollbackTarget, resolveRollbackTarget, type ResolvedRollbackTarget } from './rollback-target.js'
import { sameRelease, type DeploySettings, type HealthSettings, type Release } from './settings.js'
import { Phase, type RunState } from './state.js'
import { createStrategy, type DeployStrategy } from './strategies/index.js'
import { keptRelease } from './strategies/kept-release.js'
import { SwitchNotStartedError, type FailureEvidence } from './strategies/strategy.js'

/** Where one host stands, as typed values; `report/outcome-text.ts` says it in words. */
export type HostStatus =
  | 'unchanged'
  | 'switching'
  | 'deployed'
  | 'failed-to-start'
  | 'unhealthy'
  | 'restored'
  | 'removed'
  | 'restore-unhealthy'
  | 'restore-failed'

/** One docker host of the deploy, with what ran there before and what runs there now. */
export interface HostTarget {
  index: number
  strategy: DeployStrategy
  docker: DockerClient
  before?: Release
  now?: Release
  status: HostStatus
}

/** A rollback target and where it came from: `previous` means each host's own previous version. */
interface RollbackChoice {
  release: Release
  source: 'last-release' | 'previous' | 'tag'
}

/** `Deploy`, `Rollback` or `Post`: the first word of every step title. */
export type Scope = 'Deploy' | 'Rollback' | 'Post'

/** What putting a version back on some hosts came to. */
interface PutBackResult {
  /** One entry per host that does not serve its target healthily: `host: reason`. */
  problems: string[]
}

/**
 * The steps of a deploy, each a method that `main.ts` (and `post.ts`) calls in order. The pipeline
 * owns the hosts, the strategy for each and the GitHub Deployments; every step reports itself.
 * Its docker engines, GitHub client, clock and saved state are passed in (`Dependencies`).
 */
export class Pipeline {
  readonly hosts: HostTarget[]
  private readonly deployments: DeploymentRecorder
  private releasesCache?: Promise<GitHubRelease[]>
  /** The last GitHub Deployment created: the one that describes what runs when the run ends. */
  deploymentId?: number
  /** True when a hook container may still run (its removal failed): the lock must not be released. */
  hookContainerLeft = false
  /** The last `finalize` left something on a host (a docker error): the post step finishes it. */
  cleanupLeft = false
  /** The run's deploy lock, once `fleetLock` made it. */
  private lock?: FleetLock
  /** What `pruneImages` removed on each host, for the summary. */
  readonly imageCleanup: ImageCleanup[] = []

  constructor(
    readonly settings: DeploySettings,
    private readonly reporter: Reporter,
    private readonly dependencies: Dependencies,
    /** The saved record; the post step, which only reads it, passes none. */
    private readonly state?: RunState,
    private readonly scope: Scope = settings.command === 'rollback' ? 'Rollback' : 'Deploy',
    /** The post step: the ids the main step saved of what it created on each host. */
    savedCreated: readonly (readonly string[])[] = []
  ) {
    this.hosts = settings.hosts.map((dockerHost, index) => {
      const docker = dockerClientFor(dependencies, dockerHost, { dryRun: settings.dryRun })
      const created = new CreatedObjects(savedCreated[index] ?? [], (id) => state?.recordCreated(index, id))
      return { index, docker, strategy: createStrategy(settings, docker, dependencies.clock, created, dependencies.signal), status: 'unchanged' }
    })
    this.deployments = new DeploymentRecorder({
      client: dependencies.github,
      warn: (message) => reporter.warning('GitHub Deployment', message),
      debug: (message) => core.debug(message)
    })
  }

  /** The primary host: where hooks run and whose previous version decides the rollback target. */
  get primary(): HostTarget {
    const first = this.hosts[0]
    if (!first) throw new Error('No docker host to deploy to')
    return first
  }

  get signal(): AbortSignal | undefined {
    return this.dependencies.signal
  }

  /** The clock of the health checks, waits and the lock's lease renewal. */
  get clock(): Clock {
    return this.dependencies.clock
  }

  /** Step title, with the host when there are several. */
  private title(scope: string, step: string, host?: HostTarget): string {
    return this.hosts.length > 1 && host ? `${scope} · ${step} (${host.strategy.host})` : `${scope} · ${step}`
  }

  /** The deploy lock of every host, taken in one fixed order; each later batch of a rollout checks it is still held. */
  fleetLock(): FleetLock {
    this.lock = new FleetLock(this.hosts.map((host) => ({ lock: new DeployLock(host.docker, this.settings.name), dockerHost: this.settings.hosts[host.index] })))
    return this.lock
  }

  /** Reads what runs on every host: the labels this action wrote, or the image of a container started by hand. */
  async readWhatRuns(): Promise<Release | undefined> {
    await this.onEachHost((host, grouped) =>
      this.reporter.step(
        this.title(this.scope, 'current', host),
        async (step) => {
          host.before = await host.strategy.current()
          host.now = host.before
          step.detail(host.before ? `${this.settings.name} runs ${host.before.tag}` : `nothing named ${this.settings.name} runs yet: first deploy`)
        },
        { grouped }
      )
    )
    const tags = new Set(this.hosts.map((host) => host.before?.tag ?? ''))
    if (tags.size > 1) this.reporter.warning(`${this.scope} · current`, `The hosts run different versions: ${[...tags].map((t) => t || 'none').join(', ')}.`)
    return this.primary.before
  }

  /** `command: rollback`: the `rollback-to` input, or the release before what runs now. */
  async chooseManualRollbackTarget(running: Release | undefined): Promise<string> {
    return this.reporter.step('Rollback · target', async (step) => {
      const target = await resolveManualRollbackTarget({
        rollbackTo: this.settings.tag,
        running,
        releases: () => this.releases(),
        kept: () => keptRelease(this.settings, this.primary.docker, running)
      })
      if (target.warning) step.warn(target.warning)
      const detail: Record<ResolvedRollbackTarget['source'], string> = {
        tag: `rollback-to: ${target.tag}`,
        'last-release': `the release before ${running?.tag ?? 'nothing'}: ${target.tag}`,
        previous: `${target.tag}, which ran before ${running?.tag ?? 'what runs now'} and is kept on the host`
      }
      step.detail(detail[target.source])
      return target.tag
    })
  }

  /**
   * Logs in once: the docker client sends its stored credentials to whichever engine pulls, and
   * to the registry checks of the rollback target and of a dry run's tag. A dry run logs in too:
   * the login writes only the run's private docker config on the runner and changes no host.
   */
  async login(): Promise<void> {
    const registry = this.settings.registry
    if (!registry) return this.reporter.skipped(`${this.scope} · login`, 'no registry credentials given')
    await this.reporter.step(`${this.scope} · login`, async (step) => {
      await this.runnerSideDocker.login(registry.server, registry.username, registry.password)
      step.detail(`logged in to ${registry.server ?? 'Docker Hub'} as ${registry.username}${this.settings.dryRun ? ' (dry run: for the tag check, nothing is pulled)' : ''}`)
    })
  }

  /**
   * The primary host's docker client for what the CLI does on the runner itself (the login, the
   * registry checks): the same in a dry run, since those change no host and prove the settings.
   */
  private get runnerSideDocker(): DockerClient {
    if (!this.settings.dryRun) return this.primary.docker
    const dockerHost = this.settings.hosts[this.primary.index]
    return new DockerClient(this.dependencies.dockerRunner(dockerHost), { signal: this.signal, label: this.primary.docker.hostLabel })
  }

  /**
   * Dry run: proves that the registry holds `image:tag`, without pulling (`docker manifest
   * inspect` on the runner, with the run's login). Absent fails the run, nothing changed; a
   * registry that cannot say (no credentials, unreachable) is a warning.
   */
  private async checkTagExists(imageRef: string): Promise<void> {
    await this.reporter.step(`${this.scope} · tag`, async (step) => {
      const found = await this.runnerSideDocker.registryHasImage(imageRef)
      if (found.answer === 'absent') {
        throw new Error(`${imageRef} is not in the registry (docker manifest inspect: manifest unknown); push that tag, or deploy a tag that exists`)
      }
      if (found.answer === 'unknown') {
        const credentials = this.settings.registry ? '' : ' No registry credentials were given, so the dry run did not log in.'
        step.warn(`Could not tell whether the registry holds ${imageRef}: ${found.reason}.${credentials} A real deploy pulls it, and fails with nothing changed if it is missing.`)
        return
      }
      step.detail(`${imageRef} is in the registry (docker manifest inspect; nothing was pulled)`)
    })
  }

  /**
   * Pulls `image:tag` on every host at once, before anything that serves is touched, so that a
   * missing tag or a registry problem fails with nothing changed. Every pull ends before a failure
   * is reported: none is left running in the background.
   */
  async pull(tag: string): Promise<Release> {
    const imageRef = `${this.settings.image}:${tag}`
    if (this.settings.dryRun) await this.checkTagExists(imageRef)
    const digests = await this.onEachHost((host, grouped) =>
      this.reporter.step(
        this.title(this.scope, 'pull', host),
        async (step) => {
          const digest = (await host.docker.pull(imageRef)) ?? (await host.docker.imageDigest(imageRef, this.settings.image))
          step.detail(`pulled ${imageRef}${digest ? ` (${digest.slice(0, 19)})` : ''}`)
          return digest
        },
        { grouped }
      )
    )
    return { tag, digest: digests.find((digest) => digest !== undefined) }
  }

  /** Runs each pre-deploy hook in the new image, once, on the primary host; the first failure aborts. */
  async runHooks(release: Release): Promise<void> {
    const hooks = this.settings.hooks.preDeploy
    if (hooks.length === 0) return this.reporter.skipped(`${this.scope} · hooks`, 'no pre-deploy hooks')
    const imageRef = `${this.settings.image}:${release.tag}`
    await this.reporter.step(`${this.scope} · hooks`, async (step) => {
      for (const [index, hook] of hooks.entries()) {
        const argv = buildHookArgv(imageRef, this.settings.container, hook, this.hookContainerName)
        let result
        try {
          result = await this.primary.docker.runToCompletion(argv, secretEnvironment(this.settings.container.secrets), 30 * 60_000)
        } catch (error) {
          // The client was stopped (a time-out, a cancel): the container runs on in the daemon.
          await this.removeHookContainer()
          throw error
        }
        if (result.exitCode !== 0) {
          const output = (result.stderr || result.stdout).trim().split('\n').slice(-5).join('\n')
          throw new Error(`pre-deploy hook ${index + 1} (${hook.join(' ')}) exited with code ${result.exitCode}${output ? `: ${output}` : ''}`)
        }
      }
      step.detail(`${hooks.length} hook${hooks.length === 1 ? '' : 's'} passed`)
    })
  }

  private get hookContainerName(): string {
    return `${this.settings.name}-hook`
  }

  /**
   * Removes a hook container a stopped client left running; no hook container is ever left behind.
   * Sent without the run's cancel signal: after a cancel this one command must still reach docker,
   * or a migration would go on running. Returns false when the container may still run: then the
   * deploy lock must stay held (`hookContainerLeft`) until the post step has removed it.
   */
  async removeHookContainer(): Promise<boolean> {
    if (this.settings.hooks.preDeploy.length === 0) return true
    const dockerHost = this.settings.hosts[this.primary.index]
    const docker = new DockerClient(this.dependencies.dockerRunner(dockerHost), { label: this.primary.docker.hostLabel })
    try {
      await docker.removeContainer(this.hookContainerName)
      this.hookContainerLeft = false
      return true
    } catch (error) {
      this.hookContainerLeft = true
      this.reporter.warning(
        `${this.scope} · hooks`,
        `Could not remove the hook container ${this.hookContainerName}: ${errorText(error)}. The deploy lock stays held until it is removed (the post step tries again).`
      )
      return false
    }
  }

  /**
   * Switches host after host, each verified before the next. Returns the first failure, after
   * which no further host is touched; undefined when every host is healthy. The healthy verdict
   * is saved before anything else happens, so a late cancel never takes a healthy version away.
   */
  async switchAndVerify(release: Release): Promise<Failure | undefined> {
    const deployment = await this.startDeployment(release, this.deployRef(release.tag))
    const failure = await this.switchAndVerifyEachHost(release)
    if (!failure) this.state?.enter(Phase.Verified)
    await this.finishDeployment(deployment, failure ? 'failure' : 'success')
    return failure
  }

  /**
   * `rollout.parallel` hosts at a time (the first alone with `rollout.canary`), each batch switched
   * and verified side by side; the next batch starts only when the whole batch is healthy.
   */
  private async switchAndVerifyEachHost(release: Release): Promise<Failure | undefined> {
    for (const [turn, batch] of rolloutBatches(this.hosts.length, this.settings.rollout.parallel, this.settings.rollout.canary).entries()) {
      const hosts = batch.map((index) => this.hosts[index] as HostTarget)
      // Cancelled: start no further switch; the post step puts back the hosts already switched.
      if (this.signal?.aborted) return this.failure(hosts[0] as HostTarget, release, 'cancelled before the switch', 'start')
      // The story checked the lock before the first batch; a later one may come after a lease ran out.
      if (turn > 0) {
        const lost = (await Promise.all(hosts.map((host) => this.lockLostOn(host)))).find((why) => why !== undefined)
        if (lost) {
          this.reporter.warning(this.title(this.scope, 'lock'), `${lost}. No further host is switched; the hosts this run switched are put back.`)
          return this.failure(hosts[0] as HostTarget, release, lost, 'lock')
        }
      }
      // The first failure cuts the rest of the batch's verification short (a switch under way
      // finishes its docker commands first), so that recovery starts at once, not after the
      // others' deadline and watch. The hosts cut short are switched and unverified: recovery
      // puts them back with the rest.
      const cutShort = new AbortController()
      let first: Failure | undefined
      await Promise.all(
        hosts.map(async (host) => {
          const failure = await this.switchAndVerifyHost(host, release, { grouped: hosts.length === 1, batch: cutShort.signal })
          if (!failure || first) return
          first = failure
          cutShort.abort(new Error(`${failure.host} failed`))
        })
      )
      if (first) return first
    }
    return undefined
  }

  /**
   * Switches one host and verifies it. `batch` aborts when another host of the same batch failed:
   * then a verification under way stops, and the host, switched but unverified, reports no
   * failure of its own (its status stays `switching`, so recovery puts it back).
   */
  private async switchAndVerifyHost(host: HostTarget, release: Release, options: { grouped: boolean; batch?: AbortSignal }): Promise<Failure | undefined> {
    this.state?.reach(host.index)
    host.status = 'switching'
    try {
      await this.reporter.step(
        this.title(this.scope, 'switch', host),
        async (step) => {
          await host.strategy.switchTo(release)
          host.now = release
          const warnings = host.strategy.switchWarnings?.() ?? []
          for (const warning of warnings) step.warn(warning.annotation)
          step.detail(`${this.settings.name} now runs ${release.tag}${host.before ? `; ${host.before.tag} is kept for a rollback` : ''}${warnings.map((warning) => `; ${warning.detail}`).join('')}`)
        },
        options
      )
    } catch (error) {
      host.status = 'failed-to-start'
      const untouched = causeOf(error) instanceof SwitchNotStartedError
      return this.failure(host, release, errorText(error), 'start', untouched)
    }
    const verdict = await this.verify(this.scope, host, release, { watch: true, grouped: options.grouped, cutShortBy: options.batch })
    if (verdict.cutShort) return undefined
    if (!verdict.healthy) {
      host.status = 'unhealthy'
      return { ...this.failure(host, release, verdict.reason, 'health'), transcript: verdict.transcript }
    }
    host.status = 'deployed'
    return undefined
  }

  private failure(host: HostTarget, release: Release, reason: string, stage: Failure['stage'], untouched = false): Failure {
    return { host: host.strategy.host, fleet: this.hosts.length > 1, tag: release.tag, reason, stage, transcript: [], hostIndex: host.index, untouched }
  }

  /**
   * Health-checks what was just started on one host, as its own step. A health check that cannot
   * even run (docker unreachable) is an unhealthy verdict too: the version was not shown healthy.
   * `cutShortBy` aborts when another host of the batch failed: the check stops, and the verdict
   * says `cutShort` (no verdict on this host's own version, and no failure of its own).
   */
  private async verify(
    scope: string,
    host: HostTarget,
    release: Release,
    options: { watch: boolean; grouped: boolean; cutShortBy?: AbortSignal }
  ): Promise<HealthVerdict & { cutShort?: boolean }> {
    const url = healthUrl(this.settings, host.strategy.host)
    const settings = options.watch ? this.settings.health : { ...this.settings.health, watchMs: 0 }
    const cutShortBy = options.cutShortBy
    const signal = cutShortBy && this.signal ? AbortSignal.any([this.signal, cutShortBy]) : (cutShortBy ?? this.signal)
    let verdict: (HealthVerdict & { cutShort?: boolean }) | undefined
    await this.reporter
      .step(this.title(scope, 'verify', host), async (step) => {
        // Taken first, and closed however this ends: it may already follow the new version (replace).
        const state = host.strategy.stateProbe()
        try {
          const http = url ? await this.probeRoute(host, url, settings) : undefined
          verdict = await verifyHealth({ state, http, settings, signal, clock: this.dependencies.clock })
        } finally {
          state.close?.()
        }
        if (!verdict.healthy && this.signal?.aborted) throw new Error(`cancelled before ${release.tag} was shown healthy`)
        // Cut short before a verdict of its own (a failure found first stays this host's failure).
        if (!verdict.healthy && cutShortBy?.aborted && verdict.reason === 'cancelled') {
          const why = cutShortBy.reason instanceof Error ? cutShortBy.reason.message : 'another host of the batch failed'
          verdict = { ...verdict, cutShort: true, reason: `verification cut short: ${why}` }
          step.warn(`${release.tag} was switched in, and its verification cut short: ${why} in the same batch`)
          return
        }
        if (!verdict.healthy) throw new Error(`${release.tag} is unhealthy: ${verdict.reason}`)
        step.detail(`${release.tag} is healthy${url ? ` at ${url}` : ''} after ${formatDuration(verdict.durationMs)}`)
      }, { grouped: options.grouped })
      .catch((error: unknown) => {
        verdict ??= { healthy: false, reason: errorText(error), transcript: [], durationMs: 0, phase: 'start' }
      })
    return verdict ?? { healthy: false, reason: 'the health check did not run', transcript: [], durationMs: 0, phase: 'start' }
  }

  /**
   * How the runner reaches `url` for one host: directly, or from the host itself through a port
   * forwarded over the run's SSH connection (`health.from`, see `probe-origin.ts`).
   */
  private async probeRoute(host: HostTarget, url: string, settings: HealthSettings): Promise<{ url: string; settings: HealthSettings }> {
    const dockerHost = this.settings.hosts[host.index]
    const connection = probesFromHost(settings, dockerHost, url) ? this.dependencies.ssh?.connectionFor(dockerHost) : undefined
    if (!connection) return { url, settings }
    const endpoint = urlEndpoint(url)
    const forwarded = throughForward(url, await connection.forwardTcp(endpoint.host, endpoint.port), settings.headers)
    core.debug(`health: ${url} is probed from ${host.strategy.host} through 127.0.0.1 port ${new URL(forwarded.url).port}`)
    return { url: forwarded.url, settings: { ...settings, headers: forwarded.headers } }
  }

  /**
   * After every host is healthy: keep exactly one previous version on each. The new version
   * serves and was shown healthy, so a clean-up problem is a warning, never a failed deploy.
   */
  async finalize(): Promise<void> {
    this.cleanupLeft = false
    await this.onEachHost((host, grouped) =>
      this.reporter.step(
        this.title(this.scope, 'clean up', host),
        async (step) => {
          try {
            await host.strategy.finalize()
            step.detail(`kept ${host.before ? `${host.before.tag} for a rollback` : 'no previous version'}`)
          } catch (error) {
            this.cleanupLeft = true
            const retry = this.scope === 'Post' ? 'the next deploy tries again' : 'the post step tries again'
            step.warn(`Could not clean up what ran before (${errorText(error)}). ${this.settings.name} runs and is healthy; ${retry}.`)
          }
        },
        { grouped }
      )
    )
  }


  /**
   * Runs one step's work on every host side by side: a fleet's look, pull, clean-up and image
   * pruning take the time of one host. Every host's work ends before a failure is passed on, so
   * none is left running in the background. Steps run side by side are not log groups.
   */
  private async onEachHost<T>(work: (host: HostTarget, grouped: boolean) => Promise<T>): Promise<T[]> {
    const grouped = this.hosts.length === 1
    const results = await Promise.allSettled(this.hosts.map((host) => work(host, grouped)))
    const failed = results.find((result) => result.status === 'rejected')
    if (failed) throw failed.reason
    return results.map((result) => (result as PromiseFulfilledResult<T>).value)
  }

  /**
   * After a healthy deploy or a finished rollback: each host keeps the app's `retain` most recently
   * deployed images and loses the rest, and the images of versions that failed verification (see
   * `images.ts`). What serves was shown healthy, so a problem here is a warning only.
   */
  async pruneImages(outcome: Outcome): Promise<void> {
    const failed = 'failure' in outcome && outcome.kind !== 'not-restored' && outcome.kind !== 'restore-failed' ? outcome.failure.tag : undefined
    if (!['deployed', 'rolled-back-on-request', 'rolled-back', 'rollback-failed-restored', 'first-deploy-removed'].includes(outcome.kind)) return
    await this.onEachHost((host, grouped) =>
      this.reporter.step(
        this.title(this.scope, 'images', host),
        async (step) => {
          try {
            const serving = host.now && !host.now.imageRef && host.status !== 'restore-unhealthy' ? `${this.settings.image}:${host.now.tag}` : undefined
            const cleanup = await pruneImages(host.docker, {
              repository: this.settings.image,
              retain: this.settings.retain,
              serving,
              failed: failed ? [`${this.settings.image}:${failed}`] : [],
              keep: host.strategy.keptForRollback?.() ?? []
            })
            this.imageCleanup.push(cleanup)
            step.detail(describeCleanup(cleanup, this.settings.retain))
          } catch (error) {
            step.warn(`Could not remove old images of ${this.settings.image}: ${errorText(error)}. What serves is not affected; the next deploy tries again.`)
          }
        },
        { quiet: true, grouped }
      )
    )
  }

  /**
   * After a failure: keeps the evidence, then puts a known version back on the failed host and on
   * every host already switched, so the fleet never stays on mixed or unverified versions.
   *
   * - Nothing that serves was touched (docker refused the new container on the first host): the
   *   version that ran is checked where it is.
   * - `command: rollback`: what ran before the rollback goes back.
   * - Otherwise `rollback.to` chooses; when that target cannot be put back, what ran before does.
   */
  async recover(failure: Failure): Promise<Outcome> {
    this.state?.enter(Phase.RollingBack)
    const failedHost = this.hosts[failure.hostIndex] ?? this.primary
    let switchedBack = new Map<HostTarget, Release | undefined>()
    if (!failure.untouched && failure.stage !== 'lock') {
      switchedBack = await this.switchBackAtOnce()
      const evidence: FailureEvidence = await failedHost.strategy.failureEvidence().catch(() => ({ logs: '' }))
      failure.logs = evidence.logs
      if (evidence.diagnostics) failure.diagnostics = evidence.diagnostics
      // Only a version that ran and failed its check: after a switch docker cut off, the container
      // under the name may be the old version, which the switch itself stopped.
      if (failure.stage === 'health') failure.reason = withStateAfter(failure.reason, evidence.stateAfter)
    } else if (failure.untouched && failedHost.strategy.evidenceBeforeSwitch) {
      failure.logs = (await failedHost.strategy.evidenceBeforeSwitch().catch(() => ({ logs: '' }))).logs
    }
    // Every host whose switch began, the failed one first: the fleet never stays on mixed versions.
    const affected = this.hosts.filter((host) => host.status !== 'unchanged').sort((a, b) => (a === failedHost ? -1 : b === failedHost ? 1 : b.index - a.index))
    const nothingSwitched = failure.untouched && affected.length === 1
    const ranBefore = (host: HostTarget): Release | undefined => host.before

    // `rollback.on-failure: false` keeps a version that failed its check, for inspection. A switch
    // that docker cut off (stage `start`) left no such version, only a half-made host: it is put back.
    if (!this.settings.rollback.onFailure && !nothingSwitched && failure.stage === 'health') return this.keepForInspection(failure, affected, switchedBack)

    if (this.settings.command === 'rollback' || nothingSwitched) {
      const result = await this.putBack(affected, ranBefore, 'Rollback')
      const release = this.servingNow()
      if (result.problems.length > 0) return { kind: 'restore-failed', failure, reasons: result.problems, ...(release && { release }) }
      if (!release) return { kind: 'first-deploy-removed', failure }
      return this.settings.command === 'rollback'
        ? { kind: 'rollback-failed-restored', failure, restore: { release, unchanged: nothingSwitched } }
        : { kind: 'rolled-back', failure, restore: { release, unchanged: nothingSwitched } }
    }

    // Each host goes back to the rollback target, or, when there is none, to what it ran itself;
    // a host that ran nothing before loses only what this run created there.
    const choice = await this.chooseRollbackTarget(failure.tag)
    // Hosts where the target's image is known to be missing go straight to what they ran before.
    const missing = await this.hostsMissingTarget(choice, affected)
    const targetOf = (host: HostTarget): Release | undefined => (host.before === undefined ? undefined : missing.hosts.has(host) ? host.before : this.targetFor(host, choice))
    // The rollback is a deployment of its own, so the environment's history shows what really runs.
    const recorded = missing.instead ?? choice?.release
    const deployment = recorded ? await this.startDeployment(recorded, recorded.tag) : undefined
    const first = await this.putBack(affected, targetOf, 'Rollback')
    if (recorded) await this.finishDeployment(deployment, first.problems.length > 0 ? 'failure' : 'success')
    // A release or a tag that is the same for every host; "what ran before" is each host's own.
    const target = choice?.source === 'previous' ? undefined : choice?.release
    if (first.problems.length === 0) {
      const release = this.servingNow()
      if (!release) return { kind: 'first-deploy-removed', failure }
      return { kind: 'rolled-back', failure, restore: { release, ...(target && missing.reason && { targetFailed: { tag: target.tag, reason: missing.reason } }) } }
    }

    // The target could not be put back on some hosts (a release whose image was never pushed, or
    // was deleted): there, what ran before is still kept, and serving it beats serving nothing.
    const missed = affected.filter((host) => (host.status === 'restore-failed' || host.status === 'restore-unhealthy') && host.before !== undefined && !sameRelease(host.before, targetOf(host)))
    if (!target || missed.length === 0 || this.signal?.aborted) return { kind: 'restore-failed', failure, reasons: first.problems, ...(this.servingNow() && { release: this.servingNow() }) }
    const targetFailed = { tag: target.tag, reason: first.problems.join('; ') }
    const fallback = missed[0]?.before as Release
    const sameBefore = missed.every((host) => sameRelease(host.before, fallback))
    const where = this.hosts.length > 1 ? ` on ${missed.map((host) => host.strategy.host).join(', ')}` : ''
    this.reporter.warning('Rollback · target', `The rollback to ${target.tag} failed (${targetFailed.reason}); putting back ${sameBefore ? `${fallback.tag}, which ran before` : 'what each host ran before'}${where}.`)
    const retry = await this.startDeployment(fallback, fallback.tag)
    const second = await this.putBack(missed, ranBefore, 'Rollback')
    await this.finishDeployment(retry, second.problems.length > 0 ? 'failure' : 'success')
    const release = this.servingNow()
    if (second.problems.length > 0 || !release) return { kind: 'restore-failed', failure, reasons: [...first.problems, ...second.problems], ...(release && { release }) }
    return { kind: 'rolled-back', failure, restore: { release, targetFailed } }
  }

  /**
   * Before the restore: a target that is another version than what a host ran before (a release,
   * a tag) must exist to be put back. Where the registry says it does not hold the image and the
   * host has no copy either, the host goes straight to what it ran before: a pull that cannot
   * succeed would only keep users waiting. Unknown is not absent: any other answer (no
   * credentials, an unreachable registry) leaves the restore as it was, which tries the pull.
   * `instead` is what every such host goes back to when they all do, for the Deployment.
   */
  private async hostsMissingTarget(choice: RollbackChoice | undefined, affected: HostTarget[]): Promise<{ hosts: Set<HostTarget>; reason?: string; instead?: Release }> {
    const none = { hosts: new Set<HostTarget>() }
    if (!choice || choice.source === 'previous' || choice.release.imageRef || this.signal?.aborted) return none
    const needing = affected.filter((host) => host.before !== undefined && !sameRelease(host.before, this.targetFor(host, choice)))
    if (needing.length === 0) return none
    const imageRef = `${this.settings.image}:${choice.release.tag}`
    const found = await this.primary.docker.registryHasImage(imageRef).catch((error: unknown) => ({ answer: 'unknown' as const, reason: errorText(error) }))
    if (found.answer === 'unknown') core.info(`Could not tell whether the registry holds ${imageRef} (${found.reason}); the restore tries to pull it.`)
    if (found.answer !== 'absent') return none
    // A copy on the host serves as well as the registry's: the restore uses it without pulling.
    const local = await Promise.all(needing.map((host) => host.docker.imageExists(imageRef)))
    const hosts = new Set(needing.filter((_, index) => !local[index]))
    if (hosts.size === 0) return none
    const back = [...hosts].map((host) => host.before as Release)
    const same = back.every((release) => sameRelease(release, back[0]))
    const where = this.hosts.length > 1 ? ` on ${[...hosts].map((host) => host.strategy.host).join(', ')}` : ''
    const reason = `${imageRef} is not in the registry (docker manifest inspect: manifest unknown), so no pull was tried`
    // Worded as the fallback after a failed restore below: the same event, found out sooner.
    this.reporter.warning('Rollback · target', `The rollback to ${choice.release.tag} failed (${reason}); putting back ${same ? `${back[0]?.tag ?? ''}, which ran before` : 'what each host ran before'}${where}.`)
    return { hosts, reason, ...(hosts.size === needing.length && same && { instead: back[0] }) }
  }

  /**
   * `rollback.on-failure: false` after a version failed its check: nothing is restored, and the
   * failed version stays for inspection. But users are put back where what served still runs and
   * one command takes them there (the proxy's old slot): where that switch back failed (a docker
   * error), the restore does it instead. A host whose switch docker cut off in the middle is put
   * back too: it holds nothing to inspect. `serving` names what users are on when every host agrees.
   */
  private async keepForInspection(failure: Failure, affected: HostTarget[], switchedBack: Map<HostTarget, Release | undefined>): Promise<Outcome> {
    const stranded = affected.filter((host) => host.status === 'failed-to-start' || (host.strategy.switchBack !== undefined && switchedBack.get(host) === undefined))
    if (stranded.length > 0) {
      const result = await this.putBack(stranded, (host) => host.before, 'Rollback')
      if (result.problems.length > 0) return { kind: 'restore-failed', failure, reasons: result.problems, ...(this.servingNow() && { release: this.servingNow() }) }
    }
    const usersOn = this.hosts.map((host) => (host.status === 'unchanged' ? host.before : switchedBack.get(host) ?? (stranded.includes(host) ? host.now : undefined)))
    const first = usersOn[0]
    const agreed = first && usersOn.every((release) => sameRelease(release, first)) && this.hosts.some((host) => host.strategy.switchBack) ? first : undefined
    return { kind: 'not-restored', failure, ...(agreed && { serving: agreed }) }
  }

  /**
   * The rollback target of one host that ran something before: `rollback.to: previous` (or no
   * target at all) means what that host itself ran; a release or a tag is the same for all.
   */
  private targetFor(host: HostTarget, target: RollbackChoice | undefined): Release | undefined {
    // "What ran before" (chosen, or the fallback of last-release) is each host's own.
    if (!target || target.source === 'previous') return host.before
    return sameRelease(target.release, host.before) ? host.before : target.release
  }

  /**
   * What serves after a restore, for the outcome and the `tag` output: the release the restored
   * hosts agree on, the first host's first. Undefined when no host serves anything of ours.
   */
  private servingNow(): Release | undefined {
    // A failed version (`unhealthy`, `failed-to-start`) or a restore that did not finish serves nothing known.
    const serves: HostStatus[] = ['unchanged', 'deployed', 'restored', 'restore-unhealthy']
    return this.hosts.find((host) => host.now !== undefined && serves.includes(host.status))?.now
  }

  /**
   * Users first: on every switched host whose strategy can put them back on what served before in
   * one command (the proxy's draining slot), do it before the evidence, the rollback target and
   * the restore, which take seconds. Where it cannot, or it fails, the restore does the work.
   */
  private async switchBackAtOnce(): Promise<Map<HostTarget, Release | undefined>> {
    // Only where the lease says the lock is still ours: asking docker first would delay users, and
    // a host whose lock may be lost is left to `putBack`, which checks with docker and leaves it.
    const switched = this.hosts.filter((host) => host.status !== 'unchanged' && host.strategy.switchBack && (!this.lock || this.lock.holdsByLease(host.index, this.clock)))
    const back = await Promise.all(
      switched.map((host) =>
        this.reporter.step(
          this.title('Rollback', 'switch back', host),
          async (step) => {
            try {
              const release = await host.strategy.switchBack?.()
              step.detail(release ? `users are back on ${release.tag}, which served before and was still running` : 'nothing to switch back to at once; the restore puts a version back')
              if (release) host.now = release
              return release
            } catch (error) {
              step.warn(`could not switch back at once (${errorText(error)}); the restore puts a version back`)
              return undefined
            }
          },
          { grouped: switched.length === 1 }
        )
      )
    )
    return new Map(switched.map((host, index) => [host, back[index]]))
  }

  /**
   * `rollback.to` for a failed deploy: a tag, a release, or what ran before (`source: previous`,
   * which means each host's own previous version). Undefined when there is nothing to go back to.
   */
  private async chooseRollbackTarget(failedTag: string): Promise<RollbackChoice | undefined> {
    try {
      return await this.reporter.step('Rollback · target', async (step) => {
        const chosen = await resolveRollbackTarget({
          setting: this.settings.rollback.to,
          failedTag,
          previous: this.firstBefore,
          releases: () => this.releases()
        })
        if (chosen?.warning) step.warn(chosen.warning)
        step.detail(chosen ? `${chosen.tag} (${chosen.source})${chosen.source === 'previous' && this.hosts.length > 1 ? ': each host goes back to what it ran itself' : ''}` : 'nothing to roll back to')
        if (!chosen) return undefined
        if (chosen.source === 'previous') return { release: this.firstBefore ?? { tag: chosen.tag }, source: 'previous' as const }
        return { release: { tag: chosen.tag, ...(chosen.digest && { digest: chosen.digest }) }, source: chosen.source }
      })
    } catch {
      // The choice could not be made (the step reported why): each host's own previous version is the safe target.
      return undefined
    }
  }

  /** What ran before on the first host that ran anything: a fleet whose first host is new still has a previous version. */
  private get firstBefore(): Release | undefined {
    return this.hosts.find((host) => host.before !== undefined)?.before
  }

  /**
   * The one restore path: makes each host serve its target (`undefined`: remove what this run
   * started, nothing ran before), then shows it healthy. Automatic rollback, the fallback of
   * `command: rollback` and the post step all come through here.
   */
  async putBack(hosts: HostTarget[], targetOf: (host: HostTarget) => Release | undefined, scope: Scope, options: { watch: boolean } = { watch: true }): Promise<PutBackResult> {
    for (const host of hosts) this.state?.reach(host.index)
    // Side by side: a fleet comes back in the time of one host.
    const grouped = hosts.length === 1
    const problems = await Promise.all(hosts.map((host) => this.putBackHost(host, targetOf(host), scope, { watch: options.watch, grouped })))
    return { problems: problems.filter((problem): problem is string => problem !== undefined) }
  }

  /** One host of `putBack`; returns what went wrong there, if anything. */
  private async putBackHost(host: HostTarget, target: Release | undefined, scope: Scope, options: { watch: boolean; grouped: boolean }): Promise<string | undefined> {
    try {
      await this.reporter.step(
        this.title(scope, 'restore', host),
        async (step) => {
          // Another deploy may be working there now: putting our version back would undo its work.
          const lost = await this.lockLostOn(host)
          if (lost) throw new Error(`${lost}; nothing more is changed there (another deploy may be working there): check what ${this.settings.name} runs there`)
          const method = await host.strategy.restore(target)
          step.detail(describeRestoreMethod(method, this.settings.name, target))
        },
        { grouped: options.grouped }
      )
    } catch (error) {
      host.status = 'restore-failed'
      host.now = undefined
      return `${host.strategy.host}: ${errorText(error)}`
    }
    if (!target) {
      host.status = 'removed'
      host.now = undefined
      return undefined
    }
    const verdict = await this.verify(scope, host, target, options)
    // A release target is known by its tag only; what was restored carries its registry digest
    // in the labels this action wrote, and the outputs and summary should show it.
    const restored = await host.strategy.current().catch(() => undefined)
    // A restore that kept what served before (it may differ from the target) says so in `now`.
    host.now = restored && (sameRelease(restored, target) || restored.tag !== target.tag) ? restored : target
    host.status = verdict.healthy ? 'restored' : 'restore-unhealthy'
    return verdict.healthy ? undefined : `${host.strategy.host}: ${verdict.reason}`
  }

  /**
   * Why this run may no longer change `host` (the main step's lock there is lost), or undefined when
   * it still holds it. The post step checks its hosts itself, before anything (see `post.ts`).
   */
  private async lockLostOn(host: HostTarget): Promise<string | undefined> {
    if (!this.lock || this.settings.dryRun) return undefined
    return this.lock.assertHeldOn(host.index, this.clock).then(
      () => undefined,
      (error: unknown) => errorText(error)
    )
  }

  /** Dry run: says what would happen, including where a failure would roll back to. */
  async plan(release: Release): Promise<Outcome> {
    for (const host of this.hosts) await host.strategy.switchTo(release)
    await this.reporter.step('Plan · rollback target', async (step) => {
      const target = await resolveRollbackTarget({
        setting: this.settings.rollback.to,
        failedTag: release.tag,
        previous: this.firstBefore,
        releases: () => this.releases()
      })
      if (target?.warning) step.warn(target.warning)
      step.detail(target ? `a failed deploy would roll back to ${target.tag} (${target.source})` : 'a failed deploy would have nothing to roll back to')
    })
    return { kind: 'planned', release, running: this.primary.before }
  }

  /** Every docker command a dry run skipped, in order, across hosts. */
  get plannedCommands(): string[] {
    return this.hosts.flatMap((host) => host.docker.plannedCommands.map((line) => (this.hosts.length > 1 ? `[${host.strategy.host}] ${line}` : line)))
  }

  hostRows(): HostRow[] {
    return this.hosts.map((host) => ({ host: host.strategy.host, before: host.before?.tag, now: host.now?.tag, outcome: hostStatusText(host.status, host.now) }))
  }

  /**
   * The git ref of a deploy's GitHub Deployment: the tag when this run was triggered by that git
   * tag, otherwise the commit SHA (an image tag is not necessarily a git ref, and GitHub answers
   * 422 to a ref it does not know).
   */
  private deployRef(tag: string): string {
    // command: rollback deploys an older release: its tag names that code, this run's commit does not.
    if (this.settings.command === 'rollback') return tag
    return this.settings.run.ref === `refs/tags/${tag}` || !this.settings.run.sha ? tag : this.settings.run.sha
  }

  private async startDeployment(release: Release, ref: string): Promise<number | undefined> {
    if (this.settings.dryRun) return undefined
    const id = await this.deployments.start({
      tag: release.tag,
      ref,
      environment: this.settings.environment,
      payload: { image: this.settings.image, tag: release.tag, ...(release.digest && { digest: release.digest }) }
    })
    if (id !== undefined) this.deploymentId = id
    return id
  }

  private async finishDeployment(id: number | undefined, state: 'success' | 'failure'): Promise<void> {
    await this.deployments.finish(id, state, { environmentUrl: this.settings.url, logUrl: this.settings.run.runUrl })
  }

  /** Releases are read at most once a run, and only when a rollback target needs them. */
  private releases(): Promise<GitHubRelease[]> {
    this.releasesCache ??= this.dependencies.github.listReleases()
    return this.releasesCache
  }
}

/**
 * The order in which hosts are switched: batches of `parallel` host indexes, after the first host
 * alone when `canary` is set.
 */
export function rolloutBatches(count: number, parallel: number, canary: boolean): number[][] {
  const rest = Array.from({ length: count }, (_, index) => index)
  const batches: number[][] = []
  if (canary && rest.length > 1) batches.push(rest.splice(0, 1))
  const size = Math.max(1, parallel)
  while (rest.length > 0) batches.push(rest.splice(0, size))
  return batches
}

/** The health URL of one host: `{host}` becomes the address its `hosts:` entry names, or its docker host's. */
export function healthUrl(settings: DeploySettings, dockerHost: string): string | undefined {
  const url = settings.health.url
  if (!url) return undefined
  // A `hosts:` entry may name the address explicitly: a unix:// socket has none of its own.
  const address = settings.hostAddresses?.[dockerHost] ?? hostAddress(dockerHost)
  return url.replaceAll('{host}', address)
}

/** The address part of a docker host (`ssh://deploy@10.0.0.5:22` gives `10.0.0.5`); local is 127.0.0.1. */
export function hostAddress(dockerHost: string): string {
  const match = /^(?:ssh|tcp):\/\/(?:[^@/]+@)?(\[[^\]]+\]|[^:/]+)/.exec(dockerHost)
  return match?.[1] ?? '127.0.0.1'
}

/**
 * The check's reason, with what the failed container's state showed afterwards when the reason
 * does not say it already (an HTTP probe saw the crash before docker's event did).
 */
export function withStateAfter(reason: string, stateAfter: string | undefined): string {
  if (!stateAfter || reason.includes(stateAfter)) return reason
  // An end the reason names already (docker's die event said it) is not told twice in other words.
  const name = /^the container (\S+) /.exec(stateAfter)?.[1]
  const ended = name && new RegExp(`the container ${name.replace(/[.]/g, '\\.')} (exited|died|is restarting|restarted|was created)`)
  if (ended && ended.test(reason)) return reason
  return `${reason}; ${stateAfter}`
}

/** The error a reported step wrapped. */
function causeOf(error: unknown): unknown {
  return error && typeof error === 'object' && 'original' in error ? (error as { original: unknown }).original : error
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
