import * as core from '@actions/core'
import { readRestoreState, REPAIR_PHASES, type RestoreState } from './cancellation.js'
import { State, Suffix } from './constants.js'
import { DockerClient } from './docker/client.js'
import { ProcessDockerRunner } from './docker/runner.js'
import { verifyHealth } from './health/verify.js'
import { getInputs } from './inputs.js'
import { DeployLock } from './lock.js'
import { hostAddress } from './pipeline.js'
import { errorMessage, Reporter } from './report/reporter.js'
import { resolveSettings } from './resolve-settings.js'
import type { DeploySettings, Release } from './settings.js'
import { createStrategy, type DeployStrategy } from './strategies/index.js'

/** What the post step talks to; injectable so tests can give it a recording docker. */
export interface PostDependencies {
  /** The docker client of one host (undefined: the runner's default engine). */
  docker?: (dockerHost: string | undefined, signal?: AbortSignal) => DockerClient
  /** The settings to restore with; default: resolved again from the same inputs and environment. */
  settings?: () => DeploySettings | undefined
}

/** What happened on one host. */
interface HostRepair {
  host: string
  /** What runs there when the post step ends. */
  now?: Release
  healthy: boolean
  detail: string
}

/**
 * The post step (`post-if: always()`): runs after the main step, also when the job was cancelled.
 *
 * When the main step was interrupted between the switch and a healthy verdict (phase switching,
 * verifying or rolling-back), every host whose switch had begun is put back to what ran before
 * (the kept `<name>-previous`, else that tag again), and verified; on a first deploy the
 * unverified container is removed, so nothing half-started is left. Then the deploy lock is
 * released. Idempotent: it judges what runs by looking, so a second run finds nothing to do.
 * When the main step ended cleanly, it only releases a lock the main step could not.
 */
export async function post(signal?: AbortSignal, dependencies: PostDependencies = {}): Promise<void> {
  const phase = core.getState(State.Phase)
  const saved = readRestoreState()
  const makeDocker = dependencies.docker ?? defaultDocker
  if (!saved) {
    core.debug(`post: the main step ended in phase "${phase || 'none'}" and saved nothing to repair`)
    return
  }
  const reporter = new Reporter()
  const needsRepair = REPAIR_PHASES.includes(phase) && saved.reached.length > 0
  if (!needsRepair) {
    await releaseLocks(saved, makeDocker, signal, reporter)
    core.debug(`post: the main step ended in phase "${phase}"; nothing to repair`)
    return
  }

  const settings = (dependencies.settings ?? settingsFromInputs)()
  const reached = [...saved.reached].sort((a, b) => a - b)
  const repairs: HostRepair[] = []
  if (!settings) {
    reporter.fail(
      'Post · restore',
      `The ${saved.command} of ${saved.tag ?? 'a new version'} was interrupted in phase ${phase}, and its settings could not be read again to restore it. ` +
        `Check ${saved.name} by hand: it may run ${saved.tag ?? 'an unverified version'} or nothing.`
    )
  } else {
    // The post step restores what the main step named, whatever the config says now.
    const restoreSettings: DeploySettings = { ...settings, name: saved.name, image: saved.image, strategy: saved.strategy }
    for (const index of reached) {
      const dockerHost = saved.hosts[index] ?? undefined
      const docker = makeDocker(dockerHost, signal)
      const before = saved.before?.[index] ?? undefined
      repairs.push(await repairHost(reporter, restoreSettings, docker, before, saved, signal))
    }
  }
  await releaseLocks(saved, makeDocker, signal, reporter)

  const ok = settings !== undefined && repairs.every((repair) => repair.healthy)
  const headline = repairHeadline(saved, phase, repairs, ok)
  if (ok) reporter.warning('Post · restored', headline)
  else if (settings) reporter.fail('Post · restore failed', headline)
  await reporter.writeSummary({
    headline,
    ok,
    environment: saved.environment,
    image: `${saved.image}:${saved.tag ?? ''}`,
    before: saved.before?.[0] ?? undefined,
    now: repairs[0]?.now,
    hosts: repairs.length > 1 ? repairs.map((repair, i) => ({ host: repair.host, before: saved.before?.[reached[i] ?? -1]?.tag, now: repair.now?.tag, outcome: repair.detail })) : undefined
  })
}

function repairHeadline(saved: RestoreState, phase: string, repairs: HostRepair[], ok: boolean): string {
  const what = `The ${saved.command}${saved.tag ? ` of ${saved.tag}` : ''} was interrupted while ${phase.replace('-', ' ')}`
  const before = saved.before?.[saved.reached[0] ?? 0] ?? undefined
  if (!ok) {
    const failed = repairs.filter((repair) => !repair.healthy).map((repair) => `${repair.host}: ${repair.detail}`)
    return `${what}, and putting back what ran before failed (${failed.join('; ') || 'no settings'}); check ${saved.name} by hand: it may not be serving.`
  }
  if (!before) return `${what}. Nothing ran before (first deploy), so the unverified ${saved.name} was removed; nothing runs now.`
  return `${what}. ${before.tag}, which ran before, runs again and is healthy.`
}

/** Puts back what ran before on one host, or removes a first deploy's unverified container. */
async function repairHost(
  reporter: Reporter,
  settings: DeploySettings,
  docker: DockerClient,
  before: Release | undefined,
  saved: RestoreState,
  signal: AbortSignal | undefined
): Promise<HostRepair> {
  const strategy = createStrategy(settings, docker)
  const where = saved.hosts.length > 1 ? ` (${strategy.host})` : ''
  const name = settings.name
  let now: Release | undefined
  try {
    const needsVerify = await reporter.step(`Post · restore${where}`, async (step) => {
      // The new container is created as -next first; it never served.
      await docker.removeContainer(name + Suffix.Next)
      await putPreviousBack(docker, name)
      const current = await strategy.current()
      if (before && current?.tag === before.tag && (await isUp(strategy))) {
        step.detail(`${name} runs ${before.tag}, as before the interrupted ${saved.command}`)
        now = current
        return true
      }
      if (current) await strategy.discardFailed()
      if (!before) {
        step.detail(current ? `removed the unverified ${name} (${current.tag}); nothing ran before` : `nothing was started; nothing ran before`)
        return false
      }
      const method = await strategy.restore(before)
      now = before
      step.detail(method === 'reused-previous' ? `restarted the kept ${name}-previous (${before.tag})` : `started ${before.tag} again`)
      return true
    })
    if (!needsVerify || !before) return { host: strategy.host, healthy: true, detail: `removed ${saved.tag ?? 'the new version'}` }

    const url = settings.health.url?.replace('{host}', hostAddress(strategy.host))
    // No watch here: the post step proves the restored version serves, then lets the job end.
    const health = { ...settings.health, watchMs: 0 }
    const verdict = await reporter
      .step(`Post · verify${where}`, async (step) => {
        const result = await verifyHealth({ state: strategy.stateProbe(), http: url ? { url, settings: health } : undefined, settings: health, signal })
        if (!result.healthy) throw new Error(`${before.tag} is unhealthy: ${result.reason}`)
        step.detail(`${before.tag} is healthy${url ? ` at ${url}` : ''}`)
        return result
      })
      .catch((error: unknown) => ({ healthy: false, reason: errorMessage(error) }))
    return { host: strategy.host, now, healthy: verdict.healthy, detail: verdict.healthy ? `restored ${before.tag}` : verdict.reason }
  } catch (error) {
    return { host: strategy.host, now, healthy: false, detail: errorMessage(error) }
  }
}

/**
 * An interruption between moving `-previous` aside and renaming the running container leaves
 * `-previous-older` without a `-previous`; the older one is the instant rollback again.
 */
async function putPreviousBack(docker: DockerClient, name: string): Promise<void> {
  if (await docker.inspectContainer(name + Suffix.Previous)) return
  if (!(await docker.inspectContainer(name + Suffix.Older))) return
  await docker.renameContainer(name + Suffix.Older, name + Suffix.Previous)
}

async function isUp(strategy: DeployStrategy): Promise<boolean> {
  const observation = await strategy.stateProbe().observe()
  return observation.verdict !== 'failed'
}

/** Releases the deploy locks the main step still held; a lock another run holds is left alone. */
async function releaseLocks(
  saved: RestoreState,
  makeDocker: NonNullable<PostDependencies['docker']>,
  signal: AbortSignal | undefined,
  reporter: Reporter
): Promise<void> {
  const lock = saved.lock
  if (!lock || lock.hosts.length === 0) return
  for (const dockerHost of lock.hosts) {
    const deployLock = new DeployLock(makeDocker(dockerHost ?? undefined, signal), saved.name)
    try {
      if (await deployLock.release(lock.owner)) core.info(`Released the deploy lock ${deployLock.lockName} on ${deployLock.host}.`)
    } catch (error) {
      reporter.warning('Post · unlock', `Could not release the deploy lock ${deployLock.lockName} on ${deployLock.host}: ${errorMessage(error)}. Remove it with \`docker container rm ${deployLock.lockName}\` when no deploy runs.`)
    }
  }
}

function defaultDocker(dockerHost: string | undefined, signal?: AbortSignal): DockerClient {
  return new DockerClient(new ProcessDockerRunner(dockerHost), { signal, label: dockerHost ?? 'local' })
}

/** The same inputs and environment as the main step; the problems were already reported there. */
function settingsFromInputs(): DeploySettings | undefined {
  try {
    return resolveSettings(getInputs()).settings
  } catch {
    return undefined
  }
}
