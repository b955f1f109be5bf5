/**
 * How a run ends, as typed values. Logic branches on `kind`; `report/outcome-text.ts` turns an
 * outcome into the sentences a person reads, and `resultOf`/`succeeded` into the contract.
 *
 * The invariants these values are held to (checked by the fault sweeps in
 * `__tests__/fault-sweep.test.ts` and `fault-sweep-wide.test.ts` after every injected failure,
 * window of failures and cancel):
 * - When the run and its post step end, a good version serves: what served before the run, or the
 *   new version once it was shown healthy. If a good version served before, the action never
 *   leaves nothing serving.
 * - `deployed` only if the new version serves and was shown healthy on every host.
 * - `rolled-back` only if the version named in `tag` serves and was shown healthy on every host
 *   it was put back on.
 * - `command: rollback` exits 0 only if its target serves and was shown healthy.
 * - A problem after the healthy verdict (clean-up, Deployment statuses) is a warning only.
 * - The deploy lock is released, and no `-next`, hook or lock container is left behind. With
 *   `strategy: proxy` the one slot that runs is the one HAProxy routes to, and the proxy's config
 *   file names it. A clean-up cut off after the healthy verdict is finished by the post step.
 * - Unknown is not absent: what a host runs is a release, nothing of ours (docker answered, and
 *   nothing of this app exists), or unknown (docker did not answer, or not readably). Unknown is
 *   never read as nothing; a host whose state is unknown is not switched.
 * - Nothing that served before the run is removed unless the outcome is `deployed`: a run removes
 *   only what it created, by the id docker returned at create (`created.ts`), and every host
 *   that served before serves after. Each host is restored to its own target.
 * - `tag` (`servingRelease`) names what serves whenever the run knows it.
 * - A run that lost its deploy lock switches no further host; the post step changes nothing on a
 *   host whose lock it no longer owns.
 */
import type { ProbeRecord } from './health/transcript.js'
import { DeployResult } from './constants.js'
import type { Release } from './settings.js'

/** Why a new version was judged bad, and the evidence kept for the report. */
export interface Failure {
  /** The docker host it failed on (a label: `local`, `ssh://…`), and its index in deploy order. */
  host: string
  hostIndex: number
  /** True when it failed before touching what served on that host (docker refused the new container). */
  untouched: boolean
  /** Whether several hosts take part, so sentences name the host. */
  fleet: boolean
  /** The tag that failed. */
  tag: string
  /** One sentence a person can act on. */
  reason: string
  /**
   * `start`: it never ran (create or start refused); `health`: it ran and was not healthy; `lock`:
   * the run lost its deploy lock before a later batch of hosts, which was not touched.
   */
  stage: 'start' | 'health' | 'lock'
  transcript: ProbeRecord[]
  logs?: string
  diagnostics?: string
}

/** Where a restore went, for the report. */
export interface RestoreReport {
  /** What serves now on the restored hosts; undefined when nothing does (a first deploy removed). */
  release?: Release
  /** A rollback target that could not be put back before `release` was, with why. */
  targetFailed?: { tag: string; reason: string }
  /** Nothing that served was touched (docker refused the new version on the only host reached). */
  unchanged?: boolean
}

export type Outcome =
  /** The new version serves on every host and was shown healthy. */
  | { kind: 'deployed'; release: Release }
  /** `command: rollback`: its target serves and was shown healthy. */
  | { kind: 'rolled-back-on-request'; release: Release; from?: Release }
  /** A deploy failed, and `restore.release` serves again and was shown healthy. */
  | { kind: 'rolled-back'; failure: Failure; restore: RestoreReport & { release: Release } }
  /** `command: rollback` failed, and what ran before serves again and was shown healthy. */
  | { kind: 'rollback-failed-restored'; failure: Failure; restore: RestoreReport & { release: Release } }
  /** A first deploy failed: what it started was removed; nothing ran before, nothing runs now. */
  | { kind: 'first-deploy-removed'; failure: Failure }
  /**
   * A failure, and `rollback.on-failure` is false: nothing was restored. Where users could be put
   * back in one command on what still ran (the proxy's old slot), they were: `serving` names it,
   * and the failed version keeps running out of rotation for inspection.
   */
  | { kind: 'not-restored'; failure: Failure; serving?: Release }
  /** A failure, and putting back a good version failed too: it may not be serving. */
  | { kind: 'restore-failed'; failure: Failure; reasons: string[]; release?: Release }
  /** A failure before anything that serves was touched (lock, pull, hooks): what ran still runs. */
  | { kind: 'failed-before-switch'; stage: string; reason: string; running?: Release; read: boolean }
  /** Cancelled; `touched` says whether the post step has something to put back. */
  | { kind: 'cancelled'; touched: boolean; running?: Release }
  /** A dry run. */
  | { kind: 'planned'; release: Release; running?: Release }

/** The `result` output of an outcome. */
export function resultOf(outcome: Outcome): DeployResult {
  switch (outcome.kind) {
    case 'deployed':
      return DeployResult.Deployed
    case 'rolled-back':
    case 'rolled-back-on-request':
      return DeployResult.RolledBack
    case 'planned':
      return DeployResult.Planned
    default:
      return DeployResult.Failed
  }
}

/** Whether the step succeeds (exit 0). A deploy that had to roll back fails the job. */
export function succeeded(outcome: Outcome): boolean {
  return outcome.kind === 'deployed' || outcome.kind === 'rolled-back-on-request' || outcome.kind === 'planned'
}

/** What serves when the run ends, as far as this run knows: the `tag` output. */
export function servingRelease(outcome: Outcome): Release | undefined {
  switch (outcome.kind) {
    case 'deployed':
    case 'rolled-back-on-request':
      return outcome.release
    case 'rolled-back':
    case 'rollback-failed-restored':
      return outcome.restore.release
    case 'failed-before-switch':
    case 'planned':
      return outcome.running
    case 'cancelled':
      // Switched and not yet shown healthy: what serves is for the post step to say.
      return outcome.touched ? undefined : outcome.running
    case 'restore-failed':
      return outcome.release
    case 'not-restored':
      return outcome.serving
    default:
      return undefined
  }
}
