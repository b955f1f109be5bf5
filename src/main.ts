import * as core from '@actions/core'
import { DeployResult, Phase, State } from './constants.js'
import { getInputs } from './inputs.js'
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
  const outcome = await tellTheStory(pipeline, settings).catch(
    (error: unknown): Outcome => ({ result: DeployResult.Failed, headline: `Unexpected error: ${errorMessage(error)}` })
  )
  core.saveState(State.Phase, Phase.Done)
  await finish(reporter, pipeline, settings, outcome)
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

async function tellTheStory(pipeline: Pipeline, settings: DeploySettings): Promise<Outcome> {
  const scope = settings.command === 'rollback' ? 'Rollback' : 'Deploy'
  let running: Release | undefined
  let release: Release
  let tag = settings.tag ?? ''
  try {
    running = await pipeline.readWhatRuns()
    if (settings.command === 'rollback') tag = await pipeline.chooseManualRollbackTarget(running)
    await pipeline.login()
    release = await pipeline.pull(tag)
    await pipeline.runHooks(release)
    if (settings.dryRun) return await pipeline.plan(release)
  } catch (error) {
    // Nothing that runs was touched before the switch, so whatever ran still runs.
    return {
      result: DeployResult.Failed,
      release: running,
      headline: `${scope} of ${tag || 'the new version'} failed: ${sentence(errorMessage(error))} Nothing was changed: ${running ? `${running.tag} still runs` : 'nothing was running'}.`
    }
  }

  const failure = await pipeline.switchAndVerify(release)
  if (failure) return pipeline.rollBack(failure, release.tag, scope)

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
