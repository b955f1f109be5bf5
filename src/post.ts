import * as core from '@actions/core'
import { dockerClientFor, runnerDependencies, type Dependencies } from './dependencies.js'
import { getInputs } from './inputs.js'
import { isPrivateConfigPath, privateDockerConfigAt } from './docker/private-config.js'
import { stopLeftoverSsh } from './ssh/leftovers.js'
import { describeHolder, DeployLock } from './lock.js'
import { Pipeline, type HostTarget } from './pipeline.js'
import { errorMessage, Reporter } from './report/reporter.js'
import { resolveSettings } from './resolve-settings.js'
import type { DeploySettings } from './settings.js'
import { needsRestore, Phase, readSavedRun, runnerStateStore, type SavedRun, type StateStore } from './state.js'

/** What the post step talks to; injectable so tests build the same story on an in-memory engine. */
export interface PostOptions {
  /** The settings to restore with; default: resolved again from the same inputs and environment. */
  settings?: () => DeploySettings | undefined
  dependencies?: (settings: DeploySettings | undefined) => Dependencies
  state?: StateStore
}

/**
 * The post step (`post-if: always()`): runs after the main step, also when the job was cancelled.
 *
 * When the main step was interrupted after touching what serves and before a healthy verdict (or
 * during a rollback), every host it reached is put back to what ran there before, through the
 * same restore path as an automatic rollback, and verified; on a first deploy what it started is
 * removed. A version that was shown healthy is never touched. Then a hook container left running
 * is removed and the deploy lock released. Idempotent: it judges what runs by looking.
 */
export async function post(signal?: AbortSignal, options: PostOptions = {}): Promise<void> {
  const saved = readSavedRun(options.state ?? runnerStateStore)
  if (!saved) {
    core.debug('post: the main step saved nothing to repair')
    return
  }
  const reporter = new Reporter()
  // The main step was killed before it removed its private docker config: its login goes now.
  if (isPrivateConfigPath(saved.dockerConfig)) {
    await privateDockerConfigAt(saved.dockerConfig)
      .remove()
      .catch((error: unknown) => reporter.warning('Post · docker config', `Could not remove ${saved.dockerConfig ?? ''}: ${errorMessage(error)}`))
  }
  // The main step was killed before it closed its SSH connections: they and the key go now.
  await stopLeftoverSsh(saved.sshDir).catch((error: unknown) => reporter.warning('Post · SSH', `Could not stop the main step's SSH connections or remove ${saved.sshDir ?? ''}: ${errorMessage(error)}`))
  const restoring = needsRestore(saved)
  const interrupted = saved.phase !== Phase.Done
  if (!restoring && !interrupted && !saved.lock) return

  const resolved = (options.settings ?? settingsFromInputs)()
  const dependencies = options.dependencies?.(resolved) ?? runnerDependencies(resolved, signal)
  try {
    await repair(saved, resolved, dependencies, reporter, { restoring, interrupted })
  } finally {
    // The post step's own private config (it logs in again to pull a version to put back), and its own SSH connections.
    await dependencies.dockerConfig?.remove().catch(() => undefined)
    await dependencies.ssh?.close().catch(() => undefined)
  }
}

async function repair(
  saved: SavedRun,
  resolved: DeploySettings | undefined,
  dependencies: Dependencies,
  reporter: Reporter,
  { restoring, interrupted }: { restoring: boolean; interrupted: boolean }
): Promise<void> {
  // The post step restores what the main step named, whatever the config says now.
  const settings = resolved && { ...resolved, name: saved.name, image: saved.image, strategy: saved.strategy, hosts: saved.hosts.map((host) => host ?? undefined) }
  const pipeline = settings && new Pipeline(settings, reporter, dependencies, undefined, 'Post', saved.created)
  // What ran before on each host, as the main step read it: the restore target and what the clean-up keeps.
  for (const host of pipeline?.hosts ?? []) host.before = saved.before?.[host.index] ?? undefined

  // Before any clean-up: a host whose lock another run holds now (or that is gone) is that run's
  // to change, and this step leaves it alone.
  const notOwned = await hostsNotOwned(saved, dependencies)
  for (const [dockerHost, why] of notOwned) {
    const where = `This run no longer holds the deploy lock of ${saved.name} on ${dockerHost ?? 'local'} (${why}), so the post step changes nothing there: another deploy may be working on it.`
    // A restore that is skipped is reported as failed below, with the rest of the headline.
    if (restoring) reporter.warning('Post · lock', `${where} Check what ${saved.name} runs there.`)
    // Nothing that serves was touched; only a hook container of ours may be left, under a name the other run may use too.
    else if (saved.phase === Phase.Preparing) reporter.warning('Post · lock', `${where} If a container \`${saved.name}-hook\` of this run still runs there, remove it by hand.`)
    else reporter.fail('Post · lock', `${where} Check what ${saved.name} runs there.`)
  }
  const owned = (host: HostTarget): boolean => !notOwned.has(saved.hosts[host.index] ?? null)

  let restored: { ok: boolean; hosts: HostTarget[]; problems: string[] } | undefined
  if (restoring && pipeline) {
    const reached = [...saved.reached].sort((a, b) => b - a).flatMap((index) => pipeline.hosts[index] ?? [])
    const hosts = reached.filter(owned)
    const skipped = reached.filter((host) => !owned(host)).map((host) => `${host.strategy.host}: not put back, since this run no longer holds its deploy lock (${notOwned.get(saved.hosts[host.index] ?? null) ?? ''})`)
    // What ran before may have to be pulled again; a failed login only matters if it does.
    if (hosts.length > 0) await pipeline.login().catch(() => undefined)
    // No watch here: the post step proves the restored version serves, then lets the job end.
    const result = hosts.length > 0 ? await pipeline.putBack(hosts, (host) => host.before, 'Post', { watch: false }) : { problems: [] }
    const problems = [...skipped, ...result.problems]
    restored = { ok: problems.length === 0, hosts, problems }
  }
  // Shown healthy, then cancelled or its clean-up failed: finish the clean-up (a proxy's old slot
  // still running beside the new one) before the lock goes.
  if (saved.phase === Phase.Verified && pipeline && notOwned.size === 0) await pipeline.finalize()
  // A hook cut off by the cancel may still run in the daemon; it must not outlive the lock. Where
  // another run holds the lock now, a hook container under that name may be that run's own.
  const hookGone = interrupted && pipeline && pipeline.hosts[0] && owned(pipeline.hosts[0]) && (saved.phase === Phase.Preparing || restoring) ? await pipeline.removeHookContainer() : true
  // A hook that may still run keeps the lock: its lease runs out on its own if nobody removes it.
  if (hookGone) await releaseLocks(saved, dependencies, reporter, notRestored(saved, pipeline, restored))
  else reporter.warning('Post · unlock', `The deploy lock of ${saved.name} stays held while its pre-deploy hook container may still run; remove \`${saved.name}-hook\` and then \`${saved.name}-deploy-lock\` by hand.`)

  if (!restoring) return
  const headline = restoreHeadline(saved, restored)
  if (restored?.ok) reporter.warning('Post · restored', headline)
  else reporter.fail('Post · restore failed', headline)
  await reporter.writeSummary({
    headline,
    ok: restored?.ok ?? false,
    environment: saved.environment,
    // What runs now, not the tag that was being deployed when the run was interrupted.
    image: `${saved.image}:${pipeline?.primary.now?.tag ?? saved.tag ?? ''}`,
    before: saved.before?.[0] ?? undefined,
    now: pipeline?.primary.now,
    hosts: pipeline && pipeline.hosts.length > 1 ? pipeline.hostRows() : undefined
  })
}

function restoreHeadline(saved: SavedRun, restored: { ok: boolean; problems: string[] } | undefined): string {
  const what = `The ${saved.command}${saved.tag ? ` of ${saved.tag}` : ''} was interrupted while ${saved.phase.replace('-', ' ')}`
  if (!restored) {
    return `${what}, and its settings could not be read again to put back what ran before. Check ${saved.name} by hand: it may run ${saved.tag ?? 'an unverified version'} or nothing.`
  }
  if (!restored.ok) return `${what}, and putting back what ran before failed (${restored.problems.join('; ')}); check ${saved.name} by hand: it may not be serving.`
  const before = saved.before?.[0] ?? undefined
  if (!before) return `${what}. Nothing ran before (first deploy), so what it started was removed; nothing runs now.`
  return `${what}. ${before.tag}, which ran before, runs again and is healthy.`
}

/**
 * The docker hosts where a restore was needed and no known version was put back: the settings
 * could not be read again, or the restore failed there. Their lock stays held, so that the next
 * deploy cannot take the unverified version it finds there for "what ran before".
 */
function notRestored(saved: SavedRun, pipeline: Pipeline | undefined, restored: { hosts: HostTarget[] } | undefined): Set<string | null> {
  if (!needsRestore(saved)) return new Set()
  if (!pipeline || !restored) return new Set(saved.hosts)
  const reached = new Set(saved.reached)
  const putBack = new Set(restored.hosts.filter((host) => host.status === 'restored' || host.status === 'removed').map((host) => host.index))
  return new Set(saved.hosts.filter((_, index) => reached.has(index) && !putBack.has(index)))
}

/**
 * The hosts whose deploy lock the main step took and this run no longer owns, with why: another
 * run's lock stands under the name, or none does. Unreadable counts as not owned: unknown is not
 * "ours". Only the hosts where the post step may change something are read: a restore, the
 * clean-up after a verified version, or the removal of a hook container.
 */
async function hostsNotOwned(saved: SavedRun, dependencies: Dependencies): Promise<Map<string | null, string>> {
  const notOwned = new Map<string | null, string>()
  const lock = saved.lock
  const mayChange = needsRestore(saved) || saved.phase === Phase.Verified || saved.phase === Phase.Preparing
  if (!lock || !mayChange) return notOwned
  await Promise.all(
    lock.hosts.map(async (dockerHost) => {
      const deployLock = new DeployLock(dockerClientFor(dependencies, dockerHost ?? undefined), saved.name)
      try {
        const holder = await deployLock.read()
        if (holder && holder.owner !== lock.owner) notOwned.set(dockerHost, `another run holds it: ${describeHolder(holder)}`)
        if (holder) return
        // Nobody holds it (released by an earlier post step of this run, or removed by hand): taking
        // it again proves no other deploy works there; `releaseLocks` gives it back at the end.
        try {
          await deployLock.acquire({ owner: lock.owner, holder: 'the post step of an interrupted deploy', tag: saved.tag ?? '', leaseMs: POST_LEASE_MS, timeoutMs: 0, clock: dependencies.clock })
        } catch (error) {
          notOwned.set(dockerHost, `the lock ${deployLock.lockName} was gone and could not be taken again: ${errorMessage(error)}`)
        }
      } catch (error) {
        notOwned.set(dockerHost, `it could not be read: ${errorMessage(error)}`)
      }
    })
  )
  return notOwned
}

/** The lease of a lock the post step takes again: its work is one restore and one verify. */
const POST_LEASE_MS = 15 * 60_000

/**
 * Releases the deploy locks the main step still held; a lock another run holds is left alone, and
 * so is the lock of a host in `keep`, where no known version could be put back.
 */
async function releaseLocks(saved: SavedRun, dependencies: Dependencies, reporter: Reporter, keep: Set<string | null>): Promise<void> {
  const lock = saved.lock
  if (!lock || lock.hosts.length === 0) return
  const locks = lock.hosts.map((dockerHost) => ({ dockerHost, deployLock: new DeployLock(dockerClientFor(dependencies, dockerHost ?? undefined), saved.name) }))
  // Every host side by side; each releases only a lock this run owns (read, then removed by id).
  // What happened is told afterwards, in host order.
  const released = await Promise.allSettled(locks.map(({ dockerHost, deployLock }) => (keep.has(dockerHost) ? Promise.resolve(false) : deployLock.release(lock.owner))))
  locks.forEach(({ dockerHost, deployLock }, index) => {
    const result = released[index]
    if (keep.has(dockerHost)) {
      reporter.warning(
        'Post · unlock',
        `The deploy lock ${deployLock.lockName} on ${deployLock.host} stays held: no known version could be put back there, and the next deploy must not take what runs now for what ran before. ` +
          `Check what ${saved.name} runs on ${deployLock.host} and put a good version back (re-run a deploy of it once the lock is gone), then remove the lock with \`docker container rm ${deployLock.lockName}\`. Otherwise it is taken over, with a warning, when its lease runs out.`
      )
    } else if (result?.status === 'rejected') {
      reporter.warning('Post · unlock', `Could not release the deploy lock ${deployLock.lockName} on ${deployLock.host}: ${errorMessage(result.reason)}. Remove it with \`docker container rm ${deployLock.lockName}\` when no deploy runs.`)
    } else if (result?.value) {
      core.info(`Released the deploy lock ${deployLock.lockName} on ${deployLock.host}.`)
    }
  })
}

/** The same inputs and environment as the main step; the problems were already reported there. */
function settingsFromInputs(): DeploySettings | undefined {
  try {
    return resolveSettings(getInputs()).settings
  } catch {
    return undefined
  }
}
