import * as core from '@actions/core'
import { RestoreCheckpoint } from './cancellation.js'
import { DeployResult, Phase, State } from './constants.js'
import { getInputs } from './inputs.js'
import { formatDuration } from './config/duration.js'
import { DeployLock, describeHolder, FleetLock, lockLeaseMs } from './lock.js'
import { Pipeline, type Outcome } from './pipeline.js'
import { sentence } from './report/format.js'
import { errorMessage, Reporter } from './report/reporter.js'
import { resolveSettings } from './resolve-settings.js'
import type { DeploySettings, Release } from './settings.js'

/**
 * The deploy story, top to bottom: validate; read what runs; pull; run the hooks; switch and
 * verify; then finish, or roll back. Each step is a call into the module that owns it.
 */
export async function run(signal?: AbortSignal): Promise<void> {
  core.saveState(State.IsPost, 'true')
  core.saveState(State.Phase, Phase.Validating)
  const reporter = new Reporter()

  const settings = await validate(reporter)
  if (!settings) return

  const pipeline = new Pipeline(settings, reporter, signal)
  const checkpoint = new RestoreCheckpoint(settings)
  pipeline.onSwitchStart = (hostIndex) => checkpoint.reach(hostIndex)
  const lock = new FleetLock(pipeline.hosts.map((host, index) => ({ lock: new DeployLock(host.docker, settings.name), dockerHost: settings.hosts[index] })))
  let outcome = await tellTheStory(pipeline, settings, { lock, checkpoint, reporter, signal }).catch(
    (error: unknown): Outcome => ({ result: DeployResult.Failed, headline: `Unexpected error: ${errorMessage(error)}` })
  )
  if (signal?.aborted && checkpoint.lastPhase !== Phase.Done) {
    // Stop here: every docker command would be killed at once. The lock stays held until the
    // post step has put back what ran before, so no other deploy can start in between.
    outcome = cancelledOutcome(settings, pipeline, checkpoint)
  } else {
    const problems = await lock.release()
    if (problems.length > 0) reporter.warning('Deploy · unlock', `Could not release the deploy lock (${problems.join('; ')}); the post step tries again.`)
    else checkpoint.update({ lock: undefined })
    checkpoint.phase(Phase.Done)
  }
  await finish(reporter, pipeline, settings, outcome)
}

/** Cancelled by the runner: what was touched, and what the post step will do about it. */
function cancelledOutcome(settings: DeploySettings, pipeline: Pipeline, checkpoint: RestoreCheckpoint): Outcome {
  const scope = settings.command === 'rollback' ? 'rollback' : 'deploy'
  const before = pipeline.hosts[0]?.before
  const what = `The ${scope}${settings.tag ? ` of ${settings.tag}` : ''} was cancelled`
  if (checkpoint.reached.length === 0) {
    return {
      result: DeployResult.Failed,
      release: before,
      headline: `${what} before anything that runs was touched; nothing was changed${before ? ` (${before.tag} still runs)` : ''}.`
    }
  }
  return {
    result: DeployResult.Failed,
    headline: `${what} after ${settings.name} was switched and before it was shown healthy; the post step puts back ${before ? before.tag : 'the state before (nothing was running)'} and releases the deploy lock.`
  }
}

/** The deploy lock and the saved restore record, which the story keeps up to date. */
interface StoryContext {
  lock: FleetLock
  checkpoint: RestoreCheckpoint
  reporter: Reporter
  signal?: AbortSignal
}

/**
 * Takes the deploy lock on every host, before anything else touches docker, so that a deploy that
 * waited reads what the one it waited for left running. A dry run changes nothing and takes none.
 */
async function takeLock(settings: DeploySettings, tag: string, context: StoryContext): Promise<void> {
  const { lock, checkpoint, reporter, signal } = context
  const title = `${settings.command === 'rollback' ? 'Rollback' : 'Deploy'} · lock`
  if (settings.dryRun) return reporter.skipped(title, 'dry run: no lock taken')
  // Saved before the first create: a cancel may kill the docker client after the daemon created
  // the lock, and the post step must still find and release it (it only removes a lock it owns).
  checkpoint.update({ lock: { owner: lock.owner, hosts: lock.hosts } })
  await reporter.step(
    title,
    async (step) => {
      const results = await lock.acquire({
        holder: settings.run.runUrl,
        tag: tag || '(chosen after the lock)',
        leaseMs: lockLeaseMs(settings),
        timeoutMs: settings.lock.timeoutMs,
        signal,
        onWait: (holder) => core.info(`Waiting up to ${formatDuration(settings.lock.timeoutMs)} (lock.timeout) for the deploy lock, held by ${describeHolder(holder)}`),
        onTakeover: (holder) => step.warn(`Took over an expired deploy lock: ${describeHolder(holder)}.`)
      })
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

async function tellTheStory(pipeline: Pipeline, settings: DeploySettings, context: StoryContext): Promise<Outcome> {
  const { checkpoint, signal } = context
  const scope = settings.command === 'rollback' ? 'Rollback' : 'Deploy'
  let running: Release | undefined
  let release: Release
  let tag = settings.tag ?? ''
  let read = false
  try {
    await takeLock(settings, tag, context)
    checkpoint.phase(Phase.Preparing)
    running = await pipeline.readWhatRuns()
    read = true
    checkpoint.update({ before: pipeline.hosts.map((host) => host.before ?? null) })
    if (settings.command === 'rollback') tag = await pipeline.chooseManualRollbackTarget(running)
    checkpoint.update({ tag })
    await pipeline.login()
    release = await pipeline.pull(tag)
    await pipeline.runHooks(release)
    if (settings.dryRun) return await pipeline.plan(release)
  } catch (error) {
    // Nothing that runs was touched before the switch, so whatever ran still runs.
    return {
      result: DeployResult.Failed,
      release: running,
      headline: `${scope} of ${tag || 'the new version'} failed: ${sentence(errorMessage(error))} Nothing was changed${!read ? '' : running ? `: ${running.tag} still runs` : ': nothing was running'}.`
    }
  }

  const failure = await pipeline.switchAndVerify(release)
  // Cancelled: no rollback now (its docker commands would be killed); the post step restores.
  if (signal?.aborted) return { result: DeployResult.Failed, headline: 'cancelled' }
  if (failure) return pipeline.rollBack(failure, release.tag, scope)

  checkpoint.phase(Phase.Done)
  await pipeline.finalize()
  return settings.command === 'rollback'
    ? { result: DeployResult.RolledBack, release, headline: `Rolled back ${settings.environment} from ${running?.tag ?? 'nothing'} to ${release.tag}; it is healthy.` }
    : { result: DeployResult.Deployed, release, headline: `Deployed ${release.tag} to ${settings.environment}; it is healthy.` }
}

/** Outputs, the final verdict and the job summary, on every path. */
async function finish(reporter: Reporter, pipeline: Pipeline, settings: DeploySettings, outcome: Outcome): Promise<void> {
  const previous = pipeline.hosts[0]?.before
  const now = outcome.release
  reporter.setOutputs({
    result: outcome.result,
    tag: now?.tag,
    previousTag: previous?.tag,
    image: now ? `${settings.image}:${now.tag}${now.digest ? `@${now.digest}` : ''}` : undefined,
    deploymentId: pipeline.deploymentId
  })

  const succeeded =
    outcome.result === DeployResult.Deployed ||
    outcome.result === DeployResult.Planned ||
    (outcome.result === DeployResult.RolledBack && settings.command === 'rollback')
  if (succeeded) reporter.succeed(settings.dryRun ? 'Plan' : 'Result', outcome.headline)
  else reporter.fail(outcome.result === DeployResult.RolledBack ? 'Deploy failed, rolled back' : 'Deploy failed', outcome.headline)

  await reporter.writeSummary({
    headline: outcome.headline,
    ok: succeeded,
    environment: settings.environment,
    image: `${settings.image}:${now?.tag ?? settings.tag ?? ''}`,
    digest: now?.digest,
    url: settings.url,
    before: previous,
    now,
    hosts: pipeline.hosts.length > 1 ? pipeline.hostRows() : undefined,
    transcript: outcome.transcript,
    failedLogs: outcome.failedLogs,
    diagnostics: outcome.diagnostics,
    plan: settings.dryRun ? pipeline.plannedCommands : undefined
  })
}
