import * as core from '@actions/core'
import { DeployResult, Phase, State } from './constants.js'
import { DockerClient } from './docker/client.js'
import { buildHookArgv, secretEnvironment } from './docker/run-args.js'
import { ProcessDockerRunner } from './docker/runner.js'
import { GitHubClient, type GitHubRelease } from './github/client.js'
import { DeploymentRecorder } from './github/deployments.js'
import type { ProbeRecord } from './health/transcript.js'
import { verifyHealth, type HealthVerdict } from './health/verify.js'
import { formatDuration, sentence } from './report/format.js'
import type { Reporter } from './report/reporter.js'
import type { HostRow } from './report/summary.js'
import { resolveManualRollbackTarget, resolveRollbackTarget, type ResolvedRollbackTarget } from './rollback-target.js'
import type { DeploySettings, Release } from './settings.js'
import { createStrategy, type DeployStrategy } from './strategies/index.js'

/** One docker host of the deploy, with what ran there before and what runs there now. */
interface HostTarget {
  strategy: DeployStrategy
  docker: DockerClient
  before?: Release
  now?: Release
  outcome: string
}

/** What the report needs to know when the story ends, whichever way it ends. */
export interface Outcome {
  result: DeployResult
  headline: string
  release?: Release
  transcript?: ProbeRecord[]
  failedLogs?: string
  diagnostics?: string
}

/** Why a version was judged unhealthy, kept for the report. */
interface Failure {
  host: HostTarget
  reason: string
  transcript: ProbeRecord[]
  logs?: string
}

/**
 * The steps of a deploy, each one a method that `main.ts` calls in order. The pipeline owns the
 * docker hosts, the strategy for each, and the GitHub client; every step reports itself.
 */
export class Pipeline {
  readonly hosts: HostTarget[]
  private readonly github: GitHubClient
  private readonly deployments: DeploymentRecorder
  private releasesCache?: Promise<GitHubRelease[]>
  /** The last GitHub Deployment created: the one that describes what runs when the run ends. */
  deploymentId?: number
  /** Called as each host's switch begins (by index), so the saved state names the hosts to check after a cancel. */
  onSwitchStart?: (hostIndex: number) => void

  constructor(
    readonly settings: DeploySettings,
    private readonly reporter: Reporter,
    private readonly signal?: AbortSignal
  ) {
    this.hosts = settings.hosts.map((dockerHost) => {
      const docker = new DockerClient(new ProcessDockerRunner(dockerHost), {
        dryRun: settings.dryRun,
        signal,
        label: dockerHost ?? 'local'
      })
      return { docker, strategy: createStrategy(settings, docker), outcome: 'unchanged' }
    })
    this.github = new GitHubClient({ token: settings.githubToken, repository: settings.run.repository || 'unknown/unknown', apiUrl: settings.run.apiUrl })
    this.deployments = new DeploymentRecorder({
      client: this.github,
      warn: (message) => reporter.warning('GitHub Deployment', message),
      debug: (message) => core.debug(message)
    })
  }

  /** The primary host: where hooks run and whose previous version decides the rollback target. */
  private get primary(): HostTarget {
    const first = this.hosts[0]
    if (!first) throw new Error('No docker host to deploy to')
    return first
  }

  /** `Deploy`, or `Rollback` for `command: rollback`: the first word of every step title. */
  private get scope(): 'Deploy' | 'Rollback' {
    return this.settings.command === 'rollback' ? 'Rollback' : 'Deploy'
  }

  /** Step title, with the host when there are several. */
  private title(scope: string, step: string, host?: HostTarget): string {
    return this.hosts.length > 1 && host ? `${scope} · ${step} (${host.strategy.host})` : `${scope} · ${step}`
  }

  /** Reads what runs on every host from the labels this action wrote. */
  async readWhatRuns(): Promise<Release | undefined> {
    for (const host of this.hosts) {
      await this.reporter.step(this.title(this.scope, 'current', host), async (step) => {
        host.before = await host.strategy.current()
        host.now = host.before
        step.detail(host.before ? `${this.settings.name} runs ${host.before.tag}` : `nothing named ${this.settings.name} runs yet: first deploy`)
      })
    }
    const tags = new Set(this.hosts.map((host) => host.before?.tag ?? ''))
    if (tags.size > 1) this.reporter.warning(`${this.scope} · current`, `The hosts run different versions: ${[...tags].map((t) => t || 'none').join(', ')}.`)
    return this.primary.before
  }

  /** `command: rollback`: the `rollback-to` input, or the newest release older than what runs now. */
  async chooseManualRollbackTarget(running: Release | undefined): Promise<string> {
    return this.reporter.step('Rollback · target', async (step) => {
      const target = await resolveManualRollbackTarget({
        rollbackTo: this.settings.tag,
        running,
        releases: () => this.releases()
      })
      step.detail(target.source === 'tag' ? `rollback-to: ${target.tag}` : `newest release older than ${running?.tag ?? 'nothing'}: ${target.tag}`)
      return target.tag
    })
  }

  /** Logs in once: the docker client sends its stored credentials to whichever engine pulls. */
  async login(): Promise<void> {
    const registry = this.settings.registry
    if (!registry) return this.reporter.skipped(`${this.scope} · login`, 'no registry credentials given')
    await this.reporter.step(`${this.scope} · login`, async (step) => {
      await this.primary.docker.login(registry.server, registry.username, registry.password)
      step.detail(`logged in to ${registry.server ?? 'Docker Hub'} as ${registry.username}`)
    })
  }

  /** Pulls `image:tag` on every host before anything that runs is touched. */
  async pull(tag: string): Promise<Release> {
    const imageRef = `${this.settings.image}:${tag}`
    let digest: string | undefined
    for (const host of this.hosts) {
      await this.reporter.step(this.title(this.scope, 'pull', host), async (step) => {
        await host.docker.pull(imageRef)
        digest = (await host.docker.imageDigest(imageRef, this.settings.image)) ?? digest
        step.detail(`pulled ${imageRef}${digest ? ` (${digest.slice(0, 19)})` : ''}`)
      })
    }
    return { tag, digest }
  }

  /** Runs each pre-deploy hook in the new image, once, on the primary host; the first failure aborts. */
  async runHooks(release: Release): Promise<void> {
    const hooks = this.settings.hooks.preDeploy
    if (hooks.length === 0) return this.reporter.skipped(`${this.scope} · hooks`, 'no pre-deploy hooks')
    const imageRef = `${this.settings.image}:${release.tag}`
    await this.reporter.step(`${this.scope} · hooks`, async (step) => {
      for (const [index, hook] of hooks.entries()) {
        const argv = buildHookArgv(imageRef, this.settings.container, hook, `${this.settings.name}-hook`)
        const result = await this.primary.docker.runToCompletion(argv, secretEnvironment(this.settings.container.secrets), 30 * 60_000)
        if (result.exitCode !== 0) {
          const output = (result.stderr || result.stdout).trim().split('\n').slice(-5).join('\n')
          throw new Error(`pre-deploy hook ${index + 1} (${hook.join(' ')}) exited with code ${result.exitCode}${output ? `: ${output}` : ''}`)
        }
      }
      step.detail(`${hooks.length} hook${hooks.length === 1 ? '' : 's'} passed`)
    })
  }

  /**
   * Switches host after host, each verified before the next. Returns the first failure, after
   * which no further host is touched; undefined when every host is healthy.
   */
  async switchAndVerify(release: Release): Promise<Failure | undefined> {
    const deployment = await this.startDeployment(release, this.deployRef(release.tag))
    const failure = await this.switchAndVerifyEachHost(release)
    await this.finishDeployment(deployment, failure ? 'failure' : 'success')
    return failure
  }

  private async switchAndVerifyEachHost(release: Release): Promise<Failure | undefined> {
    for (const [index, host] of this.hosts.entries()) {
      // Cancelled: start no further switch; the post step repairs the hosts already switched.
      if (this.signal?.aborted) return { host, reason: 'cancelled before the switch', transcript: [] }
      core.saveState(State.Phase, Phase.Switching)
      this.onSwitchStart?.(index)
      try {
        await this.reporter.step(this.title(this.scope, 'switch', host), async (step) => {
          host.outcome = 'switching'
          await host.strategy.switchTo(release)
          host.now = release
          step.detail(`${this.settings.name} now runs ${release.tag}${host.before ? `; ${host.before.tag} kept as ${this.settings.name}-previous` : ''}`)
        })
      } catch (error) {
        host.outcome = 'failed to start'
        return { host, reason: errorText(error), transcript: [] }
      }
      core.saveState(State.Phase, Phase.Verifying)
      const verdict = await this.verify(this.scope, host, release)
      if (!verdict.healthy) {
        host.outcome = 'unhealthy'
        return { host, reason: verdict.reason, transcript: verdict.transcript }
      }
      host.outcome = `deployed ${release.tag}`
    }
    return undefined
  }

  /**
   * Health-checks what was just started on one host, as its own step. A health check that cannot
   * even run (docker unreachable) is an unhealthy verdict too: the version was not shown healthy.
   */
  private async verify(scope: string, host: HostTarget, release: Release): Promise<HealthVerdict> {
    const url = this.healthUrl(host)
    let verdict: HealthVerdict | undefined
    await this.reporter
      .step(this.title(scope, 'verify', host), async (step) => {
        verdict = await verifyHealth({
          state: host.strategy.stateProbe(),
          http: url ? { url, settings: this.settings.health } : undefined,
          settings: this.settings.health,
          signal: this.signal
        })
        if (!verdict.healthy && this.signal?.aborted) throw new Error(`cancelled before ${release.tag} was shown healthy`)
        if (!verdict.healthy) throw new Error(`${release.tag} is unhealthy: ${verdict.reason}`)
        step.detail(`${release.tag} is healthy${url ? ` at ${url}` : ''} after ${formatDuration(verdict.durationMs)}`)
      })
      .catch((error: unknown) => {
        verdict ??= { healthy: false, reason: errorText(error), transcript: [], durationMs: 0, phase: 'start' }
      })
    return verdict ?? { healthy: false, reason: 'the health check did not run', transcript: [], durationMs: 0, phase: 'start' }
  }

  /** After every host is healthy: keep exactly one previous version on each. */
  async finalize(): Promise<void> {
    for (const host of this.hosts) {
      await this.reporter.step(this.title(this.scope, 'clean up', host), async (step) => {
        await host.strategy.finalize()
        step.detail(`kept ${host.before ? `${this.settings.name}-previous (${host.before.tag})` : 'no previous version'}`)
      })
    }
  }

  /**
   * After a failure: keeps the failed version's logs, then puts the rollback target back on the
   * failed host and on every host already switched, so the fleet never stays on mixed versions.
   * Returns what the report says; the job fails whatever the rollback's outcome.
   */
  async rollBack(failure: Failure, failedTag: string, scope: 'Deploy' | 'Rollback'): Promise<Outcome> {
    core.saveState(State.Phase, Phase.RollingBack)
    const discarded = await this.reporter
      .step(this.title('Rollback', 'remove failed', failure.host), async (step) => {
        const kept = await failure.host.strategy.discardFailed()
        step.detail(`removed ${this.settings.name} (${failedTag}), kept its last log lines for the report`)
        return kept
      })
      .catch(() => ({ logs: '', diagnostics: undefined }))
    const evidence = { transcript: failure.transcript, failedLogs: discarded.logs, diagnostics: discarded.diagnostics }
    const where = this.hosts.length > 1 ? ` on ${failure.host.strategy.host}` : ''
    const cause = `${scope} of ${failedTag} failed${where}: ${sentence(failure.reason)}`.replace(/\.$/, '')

    if (!this.settings.rollback.onFailure) {
      return { result: DeployResult.Failed, headline: `${cause}. rollback.on-failure is false, so nothing was restored.`, ...evidence }
    }

    let target: ResolvedRollbackTarget | undefined
    try {
      target = await this.reporter.step('Rollback · target', async (step) => {
        const chosen =
          scope === 'Rollback'
            ? this.primary.before && { tag: this.primary.before.tag, digest: this.primary.before.digest, source: 'previous' as const }
            : await resolveRollbackTarget({
                setting: this.settings.rollback.to,
                failedTag,
                previous: this.primary.before,
                releases: () => this.releases()
              })
        if (chosen?.warning) step.warn(chosen.warning)
        step.detail(chosen ? `${chosen.tag} (${chosen.source})` : 'nothing to roll back to')
        return chosen
      })
    } catch {
      target = undefined
    }
    if (!target) {
      return {
        result: DeployResult.Failed,
        headline: `${cause}. There is nothing to roll back to (first deploy), so ${this.settings.name} is not running${where}.`,
        ...evidence
      }
    }

    const affected = this.hosts.slice(0, this.hosts.indexOf(failure.host) + 1).reverse()
    const unhealthy: string[] = []
    const release: Release = { tag: target.tag, digest: target.digest }
    // The rollback is a deployment of its own, so the environment's history shows what really runs.
    const deployment = await this.startDeployment(release, target.tag)
    for (const host of affected) {
      const restored = await this.restoreHost(host, target)
      if (!restored.healthy) unhealthy.push(`${host.strategy.host}: ${restored.reason}`)
    }
    await this.finishDeployment(deployment, unhealthy.length > 0 ? 'failure' : 'success')
    if (this.primary.now?.tag === release.tag) release.digest ??= this.primary.now.digest
    const fallback = this.primary.before
    if (unhealthy.length > 0 && fallback && fallback.tag !== target.tag && !this.signal?.aborted) {
      // The target could not be put back (a release whose image was never pushed, or was deleted);
      // what ran before is still kept as -previous, and serving it beats serving nothing.
      const targetFailed = `The rollback to ${target.tag} failed (${unhealthy.join('; ')})`
      this.reporter.warning('Rollback · target', `${targetFailed}; putting back ${fallback.tag}, which ran before.`)
      const retry = await this.startDeployment(fallback, fallback.tag)
      const stillUnhealthy: string[] = []
      for (const host of affected) {
        const restored = await this.restoreHost(host, host.before ?? fallback)
        if (!restored.healthy) stillUnhealthy.push(`${host.strategy.host}: ${restored.reason}`)
      }
      await this.finishDeployment(retry, stillUnhealthy.length > 0 ? 'failure' : 'success')
      if (stillUnhealthy.length === 0) {
        return {
          result: DeployResult.RolledBack,
          release: this.primary.now ?? fallback,
          headline: `${cause}. ${targetFailed}, so ${fallback.tag}, which ran before, was put back: it runs now and is healthy.`,
          ...evidence
        }
      }
      unhealthy.push(...stillUnhealthy)
    }
    if (unhealthy.length > 0) {
      return {
        result: DeployResult.Failed,
        release,
        headline: `${cause}. The rollback to ${target.tag} failed too (${unhealthy.join('; ')}); check the service by hand: it may not be serving.`,
        ...evidence
      }
    }
    return {
      result: DeployResult.RolledBack,
      release,
      headline: `${cause}. Rolled back: ${target.tag} runs now and is healthy.`,
      ...evidence
    }
  }

  /** Puts `target` back on one host and verifies it. */
  private async restoreHost(host: HostTarget, target: Release): Promise<{ healthy: boolean; reason: string }> {
    try {
      await this.reporter.step(this.title('Rollback', 'restore', host), async (step) => {
        if (host.now?.tag !== target.tag || host.outcome !== `deployed ${target.tag}`) {
          const method = await host.strategy.restore(target)
          step.detail(
            method === 'reused-previous'
              ? `restarted the kept ${this.settings.name}-previous (${target.tag})`
              : method === 'already-running'
                ? `${target.tag} runs already: Swarm put it back by itself`
                : `pulled and started ${target.tag}`
          )
        }
      })
      const verdict = await this.verify('Rollback', host, target)
      // A release target is known by its tag only; what was restored carries its registry digest
      // in the labels this action wrote, and the outputs and summary should show it.
      const restored = await host.strategy.current().catch(() => undefined)
      host.now = restored?.tag === target.tag ? restored : target
      host.outcome = verdict.healthy ? `rolled back to ${target.tag}` : `rollback to ${target.tag} unhealthy`
      return { healthy: verdict.healthy, reason: verdict.reason }
    } catch (error) {
      host.outcome = `rollback to ${target.tag} failed`
      host.now = undefined
      return { healthy: false, reason: errorText(error) }
    }
  }

  /** Dry run: says what would happen, including where a failure would roll back to. */
  async plan(release: Release): Promise<Outcome> {
    for (const host of this.hosts) await host.strategy.switchTo(release)
    await this.reporter.step('Plan · rollback target', async (step) => {
      const target = await resolveRollbackTarget({
        setting: this.settings.rollback.to,
        failedTag: release.tag,
        previous: this.primary.before,
        releases: () => this.releases()
      })
      if (target?.warning) step.warn(target.warning)
      step.detail(target ? `a failed deploy would roll back to ${target.tag} (${target.source})` : 'a failed deploy would have nothing to roll back to')
    })
    return {
      result: DeployResult.Planned,
      release: this.primary.before,
      headline: `Dry run: would deploy ${this.settings.image}:${release.tag} to ${this.settings.environment}; nothing was changed.`
    }
  }

  /** Every docker command a dry run skipped, in order, across hosts. */
  get plannedCommands(): string[] {
    return this.hosts.flatMap((host) => host.docker.plannedCommands.map((line) => (this.hosts.length > 1 ? `[${host.strategy.host}] ${line}` : line)))
  }

  hostRows(): HostRow[] {
    return this.hosts.map((host) => ({ host: host.strategy.host, before: host.before?.tag, now: host.now?.tag, outcome: host.outcome }))
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
    this.releasesCache ??= this.github.listReleases()
    return this.releasesCache
  }

  private healthUrl(host: HostTarget): string | undefined {
    const url = this.settings.health.url
    if (!url) return undefined
    // A `hosts:` entry may name the address explicitly: a unix:// socket has none of its own.
    const address = this.settings.hostAddresses?.[host.strategy.host] ?? hostAddress(host.strategy.host)
    return url.replaceAll('{host}', address)
  }
}

/** The address part of a docker host (`ssh://deploy@10.0.0.5:22` gives `10.0.0.5`); local is 127.0.0.1. */
export function hostAddress(dockerHost: string): string {
  const match = /^(?:ssh|tcp):\/\/(?:[^@/]+@)?(\[[^\]]+\]|[^:/]+)/.exec(dockerHost)
  return match?.[1] ?? '127.0.0.1'
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

