/**
 * `command: unlock`: releases the deploy lock that a dead run left, on every host of the config,
 * and records who released it and why (the actor and `unlock-reason`) in an annotation and the job
 * summary. It takes no lock of its own and saves nothing, so the post step has nothing to do.
 *
 * When is the holder alive? A lock (see `lock.ts`) tells who holds it (owner token, run URL), and
 * its lease tells, by the daemon's clock, when it was taken and last renewed: a holder at work
 * renews every third of its lease, from the moment it takes the lock until its story ends. A
 * runner that dies (killed in the middle of a pre-deploy hook, its machine lost) stops renewing at
 * once, while GitHub goes on showing its run `in_progress` for minutes, until it notices the runner
 * is gone; and its lease (about 52 minutes with one hook) runs on. So, per host, with `force-unlock`
 * off, the lock is left alone (refused) while any of these holds:
 *
 * 1. a pre-deploy hook container (`<name>-hook`) runs there: a migration still at work must not
 *    get a deploy beside it, whoever started it;
 * 2. the lease has not run out and the holder renewed it (or took the lock) within one renewal
 *    period plus a grace for the renewal's own docker commands: a process of that run is alive;
 * 3. the lease has not run out, the renewal is overdue, and GitHub reports the holder's run attempt
 *    queued or in progress: a run that ended its main step keeps its lock for the post step
 *    without renewing it, and GitHub catches up with a dead runner within minutes;
 * 4. the lease, or the lock itself, could not be read: unknown is not dead.
 *
 * Otherwise the holder is taken for dead and its lock released: its lease ran out (a deploy would
 * take it over anyway), or it stopped renewing and GitHub reports its run completed, or GitHub
 * cannot be asked (no token, no `actions: read`, unreachable): then the overdue renewal alone
 * decides, since a live holder renews whatever GitHub answers. A lock of an older version, which
 * never renews, is released only once its lease ran out or GitHub reports its run completed.
 * `force-unlock: true` releases a lock despite 1–4 (not one that could not be read: its id is
 * unknown), with a warning that names what was overridden.
 *
 * Only the lock container read in this pass is removed, by the id docker returned: a lock taken
 * after the read, by a deploy that started meanwhile, has another id and stays.
 */
import * as core from '@actions/core'
import { DeployResult } from './constants.js'
import { dockerClientFor, type Dependencies, type GitHubApi } from './dependencies.js'
import type { GitHubClient } from './github/client.js'
import { DeployLock, describeHolder, holderOf, type LeaseReading, type LockHolder } from './lock.js'
import { errorMessage, Reporter, type StepContext } from './report/reporter.js'
import type { HostRow } from './report/summary.js'
import type { DeploySettings } from './settings.js'

/** The part of the GitHub API unlock asks: the state of the holder's run attempt. */
export type WorkflowRunsApi = Pick<GitHubClient, 'workflowRun'>

/** What GitHub says of the holder's run attempt. */
export type HolderRun = { kind: 'running'; status: string } | { kind: 'completed'; conclusion: string } | { kind: 'unknown'; why: string }

/** What one host's lock came to. */
export interface HostUnlock {
  host: string
  /** The lock as read; undefined when none was held or it could not be read. */
  holder?: LockHolder
  /** `free`: no lock; `released` (also when removed meanwhile); `planned`: a dry run would release it; `refused`; `unreadable`; `failed`: the removal failed. */
  status: 'free' | 'released' | 'planned' | 'refused' | 'unreadable' | 'failed'
  /** Why it was taken for dead (released, planned). */
  dead?: string
  /** Its signs of life: why it was refused, or what `force-unlock` overrode. */
  alive: string[]
  /** What went wrong (unreadable, failed). */
  problem?: string
}

/**
 * How late a renewal may be, beyond the renewal period, before its holder counts as gone: the
 * renewal's own docker commands, over SSH, for every host of the holder's fleet one after another.
 * A minute; half a period for the short leases only tests use.
 */
export function renewalGraceMs(renewEveryMs: number): number {
  return Math.min(60_000, Math.floor(renewEveryMs / 2))
}

/**
 * The holder's run and attempt: from its owner token (`<run id>-<attempt>-<random>`, see
 * `lockOwnerToken`), and its repository from its run URL, else `repository`. Undefined when the
 * lock names no run (a token made outside a runner).
 */
export function holderRunOf(holder: LockHolder, repository: string): { repository: string; runId: number; attempt?: number } | undefined {
  const url = /\/([^/]+)\/([^/]+)\/actions\/runs\/(\d+)/.exec(holder.holder ?? '')
  const token = /^(\d+)-(\d+)-[0-9a-f]+$/.exec(holder.owner ?? '')
  const runId = Number(token?.[1] ?? url?.[3])
  if (!Number.isSafeInteger(runId) || runId <= 0) return undefined
  return { repository: url ? `${url[1]}/${url[2]}` : repository, runId, ...(token && { attempt: Number(token[2]) }) }
}

/**
 * Releases the deploy lock a dead run left on every host of `settings`, side by side; refuses on a
 * host whose holder shows signs of life unless `force-unlock` (see the rule above). Reports each
 * host, the verdict and the job summary, and sets the `result` output: `unlocked` when no host
 * holds a lock any more (none was held, or every one was released), `planned` for a dry run that
 * could release them all, else `failed`.
 */
export async function unlock(settings: DeploySettings, reporter: Reporter, dependencies: Dependencies): Promise<HostUnlock[]> {
  const force = settings.unlock?.force ?? false
  const runs = holderRuns(dependencies.github, settings.run.repository)
  try {
    const results = await Promise.all(
      settings.hosts.map((dockerHost) =>
        reporter
          .step(`Unlock · ${dockerHost ?? 'local'}`, (step) => unlockHost(settings, dependencies, dockerHost, runs, force, step), { quiet: true, grouped: false })
          // The step's error annotation said it; the result carries it to the verdict.
          .catch((error: unknown) => (error as { original?: { result?: HostUnlock } }).original?.result ?? failedHost(dockerHost, error))
      )
    )
    report(settings, reporter, results)
    await reporter.writeSummary({ headline: headline(settings, results), ok: succeededAll(results), environment: settings.environment, image: settings.image, hosts: results.map(hostRow) })
    return results
  } finally {
    await dependencies.ssh?.close().catch((error: unknown) => reporter.warning('SSH', `Could not close the SSH connections: ${errorMessage(error)}`))
    await dependencies.dockerConfig?.remove().catch((error: unknown) => reporter.warning('Docker config', `Could not remove ${dependencies.dockerConfig?.path ?? ''}: ${errorMessage(error)}`))
  }
}

/** A host that did not end as it should: thrown out of its step so the step shows as failed, with its result. */
class HostNotUnlocked extends Error {
  constructor(readonly result: HostUnlock) {
    super(result.problem ?? `refused: ${result.alive.join('; ')}`)
  }
}

function failedHost(dockerHost: string | undefined, error: unknown): HostUnlock {
  return { host: dockerHost ?? 'local', status: 'failed', alive: [], problem: errorMessage(error) }
}

async function unlockHost(
  settings: DeploySettings,
  dependencies: Dependencies,
  dockerHost: string | undefined,
  runs: (holder: LockHolder) => Promise<HolderRun>,
  force: boolean,
  step: StepContext
): Promise<HostUnlock> {
  const docker = dockerClientFor(dependencies, dockerHost)
  const lock = new DeployLock(docker, settings.name)
  // The pipeline's name for it (`Pipeline.hookContainerName`).
  const hookName = `${settings.name}-hook`
  const host = docker.hostLabel
  let infos
  try {
    // One command for both: the lock, and a hook that may still run beside it.
    infos = await docker.inspectContainers([lock.lockName, hookName])
  } catch (error) {
    throw new HostNotUnlocked({ host, status: 'unreadable', alive: [], problem: `the lock ${lock.lockName} could not be read, so it was left alone: ${errorMessage(error)}` })
  }
  const [lockInfo, hookInfo] = infos
  if (!lockInfo) {
    step.detail(`no deploy lock was held${hookInfo?.running ? `, but the hook container ${hookName} runs` : ''}`)
    if (hookInfo?.running) step.warn(`The pre-deploy hook container ${hookName} runs on ${host} without a deploy lock: a deploy may start beside it.`)
    return { host, status: 'free', alive: [] }
  }
  const holder = holderOf(lockInfo)
  const alive: string[] = []
  if (hookInfo?.running) alive.push(`its pre-deploy hook container ${hookName} still runs there (let it finish, or remove it, first)`)
  const dead = await judgeLease(lock, holder, runs, alive)
  const who = describeHolder(holder)
  core.info(`${host}: ${lock.lockName} is held by ${who}; ${alive.length > 0 ? `alive: ${alive.join('; ')}` : `gone: ${dead ?? ''}`}`)
  if (alive.length > 0 && !force) throw new HostNotUnlocked({ host, holder, status: 'refused', alive })
  if (alive.length > 0) step.warn(`force-unlock: releasing the deploy lock on ${host} although ${alive.join('; ')}. Held by ${who}.`)

  if (settings.dryRun) {
    step.detail(`dry run: would release the lock held by ${who}`)
    return { host, holder, status: 'planned', ...(dead && { dead }), alive }
  }
  try {
    const removed = await lock.removeRead(holder)
    step.notable()
    step.detail(removed ? `released the lock held by ${who}` : `the lock held by ${who} was gone already`)
    return { host, holder, status: 'released', ...(dead && { dead }), alive }
  } catch (error) {
    throw new HostNotUnlocked({ host, holder, status: 'failed', alive, problem: `the lock held by ${who} could not be removed: ${errorMessage(error)}` })
  }
}

/**
 * Judges the holder by its lease and, when its renewal is overdue, by GitHub (rules 2–4 above):
 * pushes its signs of life onto `alive`, and returns why it counts as dead when it has none.
 */
async function judgeLease(lock: DeployLock, holder: LockHolder, runs: (holder: LockHolder) => Promise<HolderRun>, alive: string[]): Promise<string | undefined> {
  let lease: LeaseReading
  try {
    lease = await lock.readLease(holder)
  } catch (error) {
    alive.push(`its lease could not be read (${errorMessage(error)})`)
    return undefined
  }
  if (lease.expired) return 'its lease ran out'
  if (lease.lastRenewed === undefined || lease.renewEveryMs === undefined) {
    // A lock of an older version: it never renews, so only GitHub can tell.
    const run = await runs(holder)
    if (run.kind === 'completed') return `GitHub reports its run completed (${run.conclusion})`
    alive.push(`its lock tells no renewal (an older version of the action) and ${run.kind === 'running' ? `GitHub reports its run ${words(run.status)}` : `GitHub could not say whether its run still runs (${run.why})`}`)
    return undefined
  }
  const age = Math.max(0, lease.now - lease.lastRenewed)
  const limit = lease.renewEveryMs + renewalGraceMs(lease.renewEveryMs)
  const renewed = `it last renewed its lease ${roughly(age)} ago (it renews every ${roughly(lease.renewEveryMs)})`
  if (age <= limit) {
    alive.push(`${renewed}; it counts as gone if it has not renewed by ${new Date(lease.lastRenewed + limit).toISOString()} (the docker host's clock)`)
    return undefined
  }
  const run = await runs(holder)
  if (run.kind === 'running') {
    alive.push(`GitHub reports its run ${words(run.status)}, though ${renewed}: a run keeps its lock unrenewed for its post step, and GitHub marks the run of a lost runner failed within minutes`)
    return undefined
  }
  if (run.kind === 'completed') return `${renewed}, and GitHub reports its run completed (${run.conclusion})`
  return `${renewed}; GitHub could not say whether its run still runs (${run.why})`
}

/** Asks GitHub about each holder's run attempt once, however many hosts it holds. */
function holderRuns(github: GitHubApi, repository: string): (holder: LockHolder) => Promise<HolderRun> {
  const api = workflowRunsOf(github)
  const asked = new Map<string, Promise<HolderRun>>()
  return (holder) => {
    const run = holderRunOf(holder, repository)
    if (!run) return Promise.resolve({ kind: 'unknown', why: 'the lock names no workflow run' })
    if (!api) return Promise.resolve({ kind: 'unknown', why: 'no GitHub API to ask' })
    const key = `${run.repository}#${run.runId}#${run.attempt ?? ''}`
    let answer = asked.get(key)
    if (!answer) {
      answer = api.workflowRun(run.runId, run.attempt, run.repository).then(
        (found): HolderRun => (found.status === 'completed' ? { kind: 'completed', conclusion: found.conclusion ?? 'no conclusion' } : { kind: 'running', status: found.status }),
        (error: unknown): HolderRun => ({ kind: 'unknown', why: errorMessage(error) })
      )
      asked.set(key, answer)
    }
    return answer
  }
}

/** The runner's GitHub client reads workflow runs; a stand-in without them leaves every run unknown. */
function workflowRunsOf(github: GitHubApi): WorkflowRunsApi | undefined {
  const candidate = github as Partial<WorkflowRunsApi>
  return typeof candidate.workflowRun === 'function' ? (candidate as WorkflowRunsApi) : undefined
}

/** Every host ends without a lock (or would, in a dry run). */
function succeededAll(results: HostUnlock[]): boolean {
  return results.every((result) => result.status === 'free' || result.status === 'released' || result.status === 'planned')
}

/** The outputs and the verdict: one notice (or error) naming the holder, the actor and the reason. */
function report(settings: DeploySettings, reporter: Reporter, results: HostUnlock[]): void {
  const ok = succeededAll(results)
  const dryRun = settings.dryRun
  reporter.setOutputs({ result: !ok ? DeployResult.Failed : dryRun ? DeployResult.Planned : DeployResult.Unlocked })
  const title = dryRun ? 'Unlock · dry run' : 'Unlock'
  if (ok) reporter.succeed(title, headline(settings, results))
  else reporter.fail(title, headline(settings, results))
}

/** One paragraph: what was released where, from whom, by whom and why; what was not, and what to do. */
export function headline(settings: DeploySettings, results: HostUnlock[]): string {
  const lockName = `${settings.name}-deploy-lock`
  const by = `by ${settings.run.actor || 'an unknown actor'}, reason: "${settings.unlock?.reason ?? ''}"`
  const parts: string[] = []
  const released = results.filter((result) => result.status === 'released' || result.status === 'planned')
  if (released.length > 0) {
    const verb = settings.dryRun ? 'Dry run: would release' : 'Released'
    const holders = [...new Set(released.map((result) => (result.holder ? describeHolder(result.holder) : 'an unknown holder')))]
    const forced = released.filter((result) => result.alive.length > 0)
    parts.push(
      `${verb} the deploy lock ${lockName} on ${hostList(released)} (held by ${holders.join('; and by ')}) ${by}.` +
        (forced.length > 0 ? ` Forced (force-unlock) on ${hostList(forced)}, although ${forced.map((result) => result.alive.join('; ')).join('; ')}.` : '') +
        (settings.dryRun ? ' Nothing was changed.' : '')
    )
  }
  for (const result of results.filter((result) => result.status === 'refused')) {
    parts.push(
      `Not released on ${result.host}: ${result.holder ? describeHolder(result.holder) : 'its holder'} is alive: ${result.alive.join('; ')}. ` +
        'If you know that run is gone, wait until it counts as gone, or run the unlock again with force-unlock: true.'
    )
  }
  for (const result of results.filter((result) => result.status === 'unreadable' || result.status === 'failed')) {
    parts.push(`Not released on ${result.host}: ${result.problem ?? 'unknown error'}.`)
  }
  const free = results.filter((result) => result.status === 'free')
  if (free.length === results.length) parts.push(`No deploy lock ${lockName} was held on ${hostList(free)}; nothing to release (${by}).`)
  else if (free.length > 0) parts.push(`No lock was held on ${hostList(free)}.`)
  return parts.join(' ')
}

function hostRow(result: HostUnlock): HostRow {
  const outcome: Record<HostUnlock['status'], string> = {
    free: 'no lock was held',
    released: result.alive.length > 0 ? `released by force: ${result.alive.join('; ')}` : `released: ${result.dead ?? ''}`,
    planned: `would be released (dry run): ${result.alive.length > 0 ? `by force: ${result.alive.join('; ')}` : (result.dead ?? '')}`,
    refused: `not released, the holder is alive: ${result.alive.join('; ')}`,
    unreadable: `left alone: ${result.problem ?? ''}`,
    failed: `not released: ${result.problem ?? ''}`
  }
  const held = result.holder ? `held by ${describeHolder(result.holder)}` : undefined
  const free = result.status === 'free' || result.status === 'released'
  return { host: result.host, before: held ?? (result.status === 'free' ? 'free' : undefined), now: free ? 'free' : held, outcome: outcome[result.status] }
}

function hostList(results: HostUnlock[]): string {
  return results.length === 1 ? (results[0]?.host ?? '') : `${results.length} hosts (${results.map((result) => result.host).join(', ')})`
}

/** `in_progress` → `in progress`. */
function words(status: string): string {
  return status.replace(/_/g, ' ')
}

/** `42s`, `17m 20s`, `1h 5m`: an age as a person reads it. */
function roughly(ms: number): string {
  const seconds = Math.round(ms / 1000)
  if (seconds < 60) return `${seconds}s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes}m${seconds % 60 ? ` ${seconds % 60}s` : ''}`
  return `${Math.floor(minutes / 60)}h${minutes % 60 ? ` ${minutes % 60}m` : ''}`
}
