import * as core from '@actions/core'
import { formatDuration } from './config/duration.js'
import { DeployResult } from './constants.js'
import { runnerDependencies, type Dependencies } from './dependencies.js'
import { getInputs } from './inputs.js'
import { describeHolder, lockLeaseMs, type FleetLock } from './lock.js'
import { resultOf, servingRelease, succeeded, type Outcome } from './outcome.js'
import { Pipeline } from './pipeline.js'
import { describeOutcome } from './report/outcome-text.js'
import { errorMessage, Reporter } from './report/reporter.js'
import { resolveSettings } from './resolve-settings.js'
import type { DeploySettings, Release } from './settings.js'
import { Phase, RunState } from './state.js'
import { unlock } from './unlock.js'

/**
 * The deploy story, top to bottom: validate; lock; read what runs; pull; run the hooks; switch and
 * verify; then finish, or put a known version back. Each step is a call into the module that owns
 * it. `dependencies` are the docker engines, GitHub and the clock: the runner's unless a test
 * passes its own. Returns the outcome (undefined when the inputs were invalid, and for `command:
 * unlock`, which is no deploy: see `unlock.ts`).
 */
export async function run(signal?: AbortSignal): Promise<Outcome | undefined> {
  const reporter = new Reporter()
  const settings = await validate(reporter)
  if (!settings) return undefined
  // No deploy: it releases the lock a dead run left, and saves nothing for the post step.
  if (settings.command === 'unlock') {
    await unlock(settings, reporter, runnerDependencies(settings, signal))
    return undefined
  }
  return deploy(settings, reporter, runnerDependencies(settings, signal))
}

/**
 * The story once the settings are valid, with its dependencies passed in: the runner's in `run`,
 * an in-memory engine, a fake GitHub and a virtual clock in the fault sweep.
 */
export async function deploy(settings: DeploySettings, reporter: Reporter, dependencies: Dependencies): Promise<Outcome> {
  const state = new RunState(settings, dependencies.state)
  // Saved before any docker command: if this step is killed, the post step removes the login, the
  // SSH key and the SSH connections.
  if (dependencies.dockerConfig) state.update({ dockerConfig: dependencies.dockerConfig.path })
  if (dependencies.ssh) state.update({ sshDir: dependencies.ssh.dir.path })
  const pipeline = new Pipeline(settings, reporter, dependencies, state)
  const lock = pipeline.fleetLock()
  let outcome = await tellTheStory(pipeline, lock, state, reporter).catch(
    (error: unknown): Outcome => ({ kind: 'failed-before-switch', stage: 'unexpected', reason: `Unexpected error: ${errorMessage(error)}`, read: false })
  )
  // The story is over: a lock kept for the post step keeps the lease it has (a third of it was left at least).
  await lock.stopRenewing()
  if (dependencies.signal?.aborted) {
    // Stop here: every docker command would be killed at once. The lock stays held until the post
    // step has put back what ran before, so no other deploy can start in between. A version shown
    // healthy stays: the post step then only releases the lock.
    if (state.phase !== Phase.Verified) outcome = { kind: 'cancelled', touched: state.reached.length > 0, running: pipeline.primary.before }
  } else if (pipeline.hookContainerLeft) {
    // A pre-deploy hook (a migration) may still run: no other deploy may start beside it. The
    // post step removes it, then releases the lock.
    state.enter(Phase.Preparing)
  } else if (pipeline.cleanupLeft) {
    // The new version serves and is healthy, but the clean-up after it failed (the old proxy slot
    // may still run beside it). The post step finishes it under the lock, then releases the lock:
    // without the lock, another deploy's new version could be taken for the leftover.
    state.enter(Phase.Verified)
  } else if (outcome.kind === 'restore-failed') {
    // A docker error in the middle of a rollback can pass: the post step, a fresh process,
    // tries once more to put back what ran before. It holds the lock until then.
    state.enter(Phase.RollingBack)
  } else {
    // Under the lock, so no other deploy pulls while images go.
    await pipeline.pruneImages(outcome)
    const problems = await lock.release()
    if (problems.length > 0) reporter.warning(`${settings.command === 'rollback' ? 'Rollback' : 'Deploy'} · unlock`, `Could not release the deploy lock (${problems.join('; ')}); the post step tries again.`)
    else state.update({ lock: undefined })
    state.enter(Phase.Done)
  }
  await finish(reporter, pipeline, settings, outcome)
  await removeDockerConfig(dependencies, state, reporter)
  await closeSsh(dependencies, state, reporter)
  return outcome
}

/** The SSH connections end and the private key goes with the step, on every path. */
async function closeSsh(dependencies: Dependencies, state: RunState, reporter: Reporter): Promise<void> {
  if (!dependencies.ssh) return
  try {
    await dependencies.ssh.close()
    state.update({ sshDir: undefined })
  } catch (error) {
    reporter.warning('SSH', `Could not close the SSH connections or remove ${dependencies.ssh.dir.path}: ${errorMessage(error)}; the post step tries again.`)
  }
}

/** The run's private docker config holds the registry login: it goes when the step ends, on every path. */
async function removeDockerConfig(dependencies: Dependencies, state: RunState, reporter: Reporter): Promise<void> {
  if (!dependencies.dockerConfig) return
  try {
    await dependencies.dockerConfig.remove()
    state.update({ dockerConfig: undefined })
  } catch (error) {
    reporter.warning('Docker config', `Could not remove the run's private docker config ${dependencies.dockerConfig.path}: ${errorMessage(error)}; the post step tries again.`)
  }
}

async function tellTheStory(pipeline: Pipeline, lock: FleetLock, state: RunState, reporter: Reporter): Promise<Outcome> {
  const { settings } = pipeline
  let running: Release | undefined
  let release: Release
  let read = false
  let stage = 'lock'
  try {
    await takeLock(pipeline, lock, state, reporter)
    state.enter(Phase.Preparing)
    stage = 'current'
    running = await pipeline.readWhatRuns()
    read = true
    state.update({ before: pipeline.hosts.map((host) => host.before ?? null) })
    const tag = settings.command === 'rollback' ? await pipeline.chooseManualRollbackTarget(running) : (settings.tag ?? '')
    state.update({ tag })
    stage = 'pull'
    await pipeline.login()
    release = await pipeline.pull(tag)
    stage = 'hooks'
    await pipeline.runHooks(release)
    if (settings.dryRun) return await pipeline.plan(release)
    // Hooks and pulls can take long: the lease may have run out, or another run taken the lock.
    stage = 'lock'
    await lock.assertHeld(pipeline.clock)
  } catch (error) {
    // Nothing that serves was touched before the switch, so whatever ran still runs.
    return { kind: 'failed-before-switch', stage, reason: errorMessage(error), running, read }
  }

  const failure = await pipeline.switchAndVerify(release)
  if (!failure) {
    await pipeline.finalize()
    return settings.command === 'rollback' ? { kind: 'rolled-back-on-request', release, from: running } : { kind: 'deployed', release }
  }
  // Cancelled: no rollback now (its docker commands would be killed); the post step restores.
  if (pipeline.signal?.aborted) return { kind: 'cancelled', touched: true, running }
  return pipeline.recover(failure)
}

/**
 * Takes the deploy lock on every host, before anything else touches docker, so that a deploy that
 * waited reads what the one it waited for left running. A dry run changes nothing and takes none.
 */
async function takeLock(pipeline: Pipeline, lock: FleetLock, state: RunState, reporter: Reporter): Promise<void> {
  const { settings } = pipeline
  const title = `${settings.command === 'rollback' ? 'Rollback' : 'Deploy'} · lock`
  if (settings.dryRun) return reporter.skipped(title, 'dry run: no lock taken')
  // Saved before the first create: a cancel may kill the docker client after the daemon created
  // the lock, and the post step must still find and release it (it only removes a lock it owns).
  state.update({ lock: { owner: lock.owner, hosts: lock.hosts } })
  const onRenewProblem = (problem: string): void => reporter.warning(title, `Could not renew the deploy lock's lease (${problem}); it is tried again in a third of the lease.`)
  await reporter.step(
    title,
    async (step) => {
      const results = await lock.acquire({
        holder: settings.run.runUrl,
        tag: settings.tag || '(chosen after the lock)',
        leaseMs: lockLeaseMs(settings),
        timeoutMs: settings.lock.timeoutMs,
        signal: pipeline.signal,
        clock: pipeline.clock,
        onWait: (holder) => core.info(`Waiting up to ${formatDuration(settings.lock.timeoutMs)} (lock.timeout) for the deploy lock, held by ${describeHolder(holder)}`),
        onTakeover: (holder) => step.warn(`Took over an expired deploy lock: ${describeHolder(holder)}.`),
        onRenewProblem
      })
      lock.startRenewing({ leaseMs: lockLeaseMs(settings), clock: pipeline.clock, onProblem: onRenewProblem })
      const waited = results.find((result) => result.waitedFor)
      if (waited?.waitedFor) {
        step.notable()
        step.detail(`waited ${formatDuration(Math.round(waited.waitedMs / 1000) * 1000)} for ${describeHolder(waited.waitedFor)}`)
      } else {
        step.detail(`${settings.name} is locked for this run${lock.heldHosts.length > 1 ? ` on ${lock.heldHosts.length} hosts` : ''}`)
      }
    },
    { quiet: true }
  )
}

/** Inputs and config become one settings object, or error annotations at their lines and nothing runs. */
async function validate(reporter: Reporter): Promise<DeploySettings | undefined> {
  let resolved: ReturnType<typeof resolveSettings>
  try {
    resolved = resolveSettings(getInputs())
  } catch (error) {
    // An input that cannot be read at all (e.g. dry-run: "yes please") is an input problem too.
    resolved = { problems: [{ severity: 'error', title: 'Invalid input', message: errorMessage(error) }] }
  }
  const { settings, problems } = resolved
  reporter.problems(problems)
  if (settings && !problems.some((problem) => problem.severity === 'error')) return settings

  const errors = problems.filter((problem) => problem.severity === 'error').length
  reporter.fail(
    'Invalid configuration',
    `${errors} problem${errors === 1 ? '' : 's'} in the inputs or the deploy config (see the annotations above). No docker command was run; nothing was changed.`
  )
  reporter.setOutputs({ result: DeployResult.Failed })
  await reporter.writeSummary({ headline: 'Invalid configuration: nothing was deployed', ok: false, environment: '', image: '' })
  return undefined
}

/** Outputs, the final verdict and the job summary, on every path. */
async function finish(reporter: Reporter, pipeline: Pipeline, settings: DeploySettings, outcome: Outcome): Promise<void> {
  const previous = pipeline.primary.before
  const now = servingRelease(outcome)
  const text = describeOutcome(outcome, settings, previous)
  reporter.setOutputs({
    result: resultOf(outcome),
    tag: now?.tag,
    previousTag: previous?.tag,
    image: now ? imageReference(settings, now) : undefined,
    deploymentId: pipeline.deploymentId
  })
  const ok = succeeded(outcome)
  if (ok) reporter.succeed(text.title, text.headline)
  else reporter.fail(text.title, text.headline)

  const failure = 'failure' in outcome ? outcome.failure : undefined
  await reporter.writeSummary({
    headline: text.headline,
    ok,
    environment: settings.environment,
    image: now ? imageReference(settings, now) : `${settings.image}:${settings.tag ?? ''}`,
    digest: now?.digest,
    url: settings.url,
    before: previous,
    now,
    hosts: pipeline.hosts.length > 1 ? pipeline.hostRows() : undefined,
    transcript: failure?.transcript,
    failedLogs: failure?.logs,
    diagnostics: failure?.diagnostics,
    plan: settings.dryRun ? pipeline.plannedCommands : undefined,
    images: pipeline.imageCleanup.length > 0 ? pipeline.imageCleanup : undefined
  })
}

/** `image:tag@digest`, or the exact reference of a version the action did not start. */
export function imageReference(settings: DeploySettings, release: Release): string {
  if (release.imageRef) return release.imageRef
  return `${settings.image}:${release.tag}${release.digest ? `@${release.digest}` : ''}`
}
