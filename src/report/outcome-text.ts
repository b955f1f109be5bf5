/**
 * The words for typed outcomes: headlines, titles and host rows. Logic never reads these strings;
 * it branches on the values in `outcome.ts` and `pipeline.ts`.
 */
import type { Failure, Outcome } from '../outcome.js'
import type { HostStatus } from '../pipeline.js'
import type { DeploySettings, Release } from '../settings.js'
import type { RestoreMethod } from '../strategies/strategy.js'
import { sentence } from './format.js'

/** What the run's final annotation and the summary's headline say. */
export interface OutcomeText {
  title: string
  headline: string
}

export function describeOutcome(outcome: Outcome, settings: DeploySettings, before: Release | undefined): OutcomeText {
  const scope = settings.command === 'rollback' ? 'Rollback' : 'Deploy'
  const env = settings.environment
  const name = settings.name
  switch (outcome.kind) {
    case 'deployed':
      return { title: 'Result', headline: `Deployed ${outcome.release.tag} to ${env}; it is healthy.` }
    case 'rolled-back-on-request':
      return { title: 'Result', headline: `Rolled back ${env} from ${outcome.from?.tag ?? 'nothing'} to ${outcome.release.tag}; it is healthy.` }
    case 'planned':
      return { title: 'Plan', headline: `Dry run: would deploy ${settings.image}:${outcome.release.tag} to ${env}; nothing was changed.` }
    case 'rolled-back': {
      const { release, targetFailed } = outcome.restore
      const cause = failureCause(scope, outcome.failure)
      if (outcome.restore.unchanged) {
        return { title: 'Deploy failed', headline: `${cause}. Nothing that served was touched: ${release.tag} still runs and is healthy.` }
      }
      if (targetFailed) {
        return {
          title: 'Deploy failed, rolled back',
          headline: `${cause}. The rollback to ${targetFailed.tag} failed (${targetFailed.reason}), so ${release.tag}, which ran before, was put back: it runs now and is healthy.`
        }
      }
      return { title: 'Deploy failed, rolled back', headline: `${cause}. Rolled back: ${release.tag} runs now and is healthy.` }
    }
    case 'rollback-failed-restored':
      return {
        title: 'Rollback failed',
        headline: `${failureCause(scope, outcome.failure)}. ${outcome.restore.release.tag}, which ran before, ${outcome.restore.unchanged ? 'still runs' : 'was put back: it runs now'} and is healthy.`
      }
    case 'first-deploy-removed':
      return {
        title: `${scope} failed`,
        headline: `${failureCause(scope, outcome.failure)}. There is nothing to roll back to (first deploy), so ${name} is not running${where(outcome.failure)}.`
      }
    case 'not-restored':
      if (outcome.serving) {
        return {
          title: `${scope} failed`,
          headline: `${failureCause(scope, outcome.failure)}. Users are back on ${outcome.serving.tag}, which served before and still ran. rollback.on-failure is false, so nothing was restored or removed: ${outcome.failure.tag} stays as it is, out of rotation, for inspection.`
        }
      }
      return {
        title: `${scope} failed`,
        // Not "web runs v2": a Swarm update paused part way runs a mix, which the cause spells out.
        headline: `${failureCause(scope, outcome.failure)}. rollback.on-failure is false, so nothing was put back: ${outcome.failure.tag}, which is not healthy, stays as it is for inspection.`
      }
    case 'restore-failed':
      return {
        title: `${scope} failed`,
        headline: `${failureCause(scope, outcome.failure)}. Putting back a known version failed too (${outcome.reasons.join('; ')})${outcome.release ? `; ${outcome.release.tag} serves, but was not shown healthy` : ''}; the post step tries once more to put back what ran before, and says whether it serves.`
      }
    case 'failed-before-switch': {
      const still = !outcome.read ? '' : outcome.running ? `: ${outcome.running.tag} still runs` : ': nothing was running'
      return { title: `${scope} failed`, headline: `${scope} of ${settings.tag || 'the new version'} failed: ${sentence(outcome.reason)} Nothing was changed${still}.` }
    }
    case 'cancelled': {
      const what = `The ${scope.toLowerCase()}${settings.tag ? ` of ${settings.tag}` : ''} was cancelled`
      if (!outcome.touched) {
        return { title: `${scope} cancelled`, headline: `${what} before anything that runs was touched; nothing was changed${before ? ` (${before.tag} still runs)` : ''}.` }
      }
      return {
        title: `${scope} cancelled`,
        headline: `${what} after ${name} was switched and before it was shown healthy; the post step puts back ${before ? before.tag : 'the state before (nothing was running)'} and releases the deploy lock.`
      }
    }
  }
}

function failureCause(scope: string, failure: Failure): string {
  return `${scope} of ${failure.tag} failed${where(failure)}: ${sentence(failure.reason)}`.replace(/\.$/, '')
}

function where(failure: Failure): string {
  return failure.fleet ? ` on ${failure.host}` : ''
}

/** One line for a restore step. */
export function describeRestoreMethod(method: RestoreMethod, name: string, target: Release | undefined): string {
  switch (method) {
    case 'reused-previous':
      return `restarted the kept ${target?.tag ?? 'version'}`
    case 'redeployed':
      return `pulled and started ${target?.tag ?? 'the target'}`
    case 'already-running':
      return `${target?.tag ?? 'it'} serves already`
    case 'removed':
      return `removed what this run started; nothing named ${name} ran before`
    case 'nothing':
      return `nothing was started; nothing named ${name} ran before`
    case 'kept-serving':
      return `what served before this run still held the name ${name} and serves as it was (a run never removes what it did not start)`
  }
}

/** The Outcome column of the summary's host table. */
export function hostStatusText(status: HostStatus, now: Release | undefined): string {
  switch (status) {
    case 'unchanged':
      return 'unchanged'
    case 'switching':
      return 'switching'
    case 'deployed':
      return `deployed ${now?.tag ?? ''}`.trim()
    case 'failed-to-start':
      return 'failed to start'
    case 'unhealthy':
      return 'unhealthy'
    case 'restored':
      return `rolled back to ${now?.tag ?? ''}`.trim()
    case 'removed':
      return 'removed'
    case 'restore-unhealthy':
      return `rollback to ${now?.tag ?? ''} unhealthy`
    case 'restore-failed':
      return 'rollback failed'
  }
}
