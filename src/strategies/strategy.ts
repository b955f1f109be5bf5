import type { StateProbe } from '../health/state-probe.js'
import type { Release } from '../settings.js'

/**
 * How a restore brought the target back: `reused-previous` restarted the kept previous version,
 * `redeployed` started the target anew, `already-running` found it running (an orchestrator such
 * as Swarm had put it back by itself) and left it as it was.
 */
export type RestoreMethod = 'reused-previous' | 'redeployed' | 'already-running'

/**
 * The contract every deploy strategy fulfils for one docker host. `main.ts` tells the deploy story
 * through these calls only; a new strategy is a new file that implements them, not a new `if`.
 */
export interface DeployStrategy {
  /** Where this strategy deploys, for messages and the summary (`local`, `ssh://…`). */
  readonly host: string

  /** What runs now, read from the labels the action wrote; undefined when nothing runs yet. */
  current(): Promise<Release | undefined>

  /**
   * Replaces what runs with `release`, keeping what ran before for an instant rollback. Throws when
   * the new version cannot be started; what ran before is then still kept and can be restored.
   */
  switchTo(release: Release): Promise<void>

  /** Observes the switched-in version's own state (running, restarts, HEALTHCHECK) for verification. */
  stateProbe(): StateProbe

  /** After a healthy verdict: drop what is kept beyond the one previous version. */
  finalize(): Promise<void>

  /** After an unhealthy verdict: capture the failed version's last log lines, then remove it. */
  discardFailed(): Promise<{ logs: string; diagnostics?: string }>

  /** Brings `target` back, reusing the kept previous version when it holds that exact release. */
  restore(target: Release): Promise<RestoreMethod>
}
