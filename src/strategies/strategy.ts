import type { StateProbe } from '../health/state-probe.js'
import type { Release } from '../settings.js'

/**
 * How a restore brought a host back: `reused-previous` restarted the kept previous version,
 * `redeployed` started the target anew, `already-running` found it serving (an orchestrator such
 * as Swarm had put it back, or the switch never touched it) and left it as it was, `removed` took
 * away what this run started where nothing ran before, `nothing` found nothing to remove, and
 * `kept-serving` found what served before the run still holding the name (the switch was cut off
 * before the new version took it) and left it serving, since a run never removes what it did not
 * create.
 */
export type RestoreMethod = 'reused-previous' | 'redeployed' | 'already-running' | 'removed' | 'nothing' | 'kept-serving'

/**
 * Thrown by `switchTo` when it failed before touching what serves (docker refused to create the
 * new container, or the Swarm update was refused): the version that ran still serves as it did.
 */
export class SwitchNotStartedError extends Error {
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause })
    this.name = 'SwitchNotStartedError'
  }
}

/** What a failed version left for the report. */
export interface FailureEvidence {
  logs: string
  diagnostics?: string
  /**
   * What the failed container's own state showed once the failure was handled ("the container
   * web exited with code 137 …"), when the check's reason may not say it: the reason came from an
   * HTTP probe that saw the crash before docker's event did.
   */
  stateAfter?: string
}

/**
 * The contract every deploy strategy fulfils for one docker host. The story is told through these
 * calls only; a new strategy is a new file that implements them, not a new `if`.
 *
 * `restore` is the one way to put a host back. Automatic rollback, `command: rollback`'s fallback
 * and the post step all call it, so a fix to how a host comes back is made once.
 */
export interface DeployStrategy {
  /** Where this strategy deploys, for messages and the summary (`local`, `ssh://…`). */
  readonly host: string

  /**
   * What serves now: read from the labels the action wrote, or, for something the action did not
   * start (a container started by hand), from its image reference. Undefined when nothing does.
   */
  current(): Promise<Release | undefined>

  /**
   * Replaces what serves with `release`, keeping what ran before for an instant rollback. Throws
   * `SwitchNotStartedError` when it failed before touching what serves, any other error after.
   */
  switchTo(release: Release): Promise<void>

  /** Observes the switched-in version's own state (running, restarts, HEALTHCHECK) for verification. */
  stateProbe(): StateProbe

  /** After a healthy verdict: drop what is kept beyond the one previous version. */
  finalize(): Promise<void>

  /**
   * After a failure that came after the switch, before anything else (evidence, the choice of a
   * rollback target, the restore): when what served before still runs and can take users back in
   * one command, routes them to it now and returns its release. Undefined when this strategy
   * cannot (replace and Swarm stopped the old version) or nothing is there to go back to.
   * `restore` then finds that release serving, or moves on to another target from there.
   */
  switchBack?(): Promise<Release | undefined>

  /**
   * Image ids of versions kept for a rollback that no container holds any more (the proxy's idle
   * slot, taken by a version that then failed): image retention never removes them.
   */
  keptForRollback?(): string[]

  /**
   * Warnings the last switch leaves for its step (a proxy takeover's gap): the annotation in full,
   * and a short form for the step's detail in the summary's steps table.
   */
  switchWarnings?(): { annotation: string; detail: string }[]

  /** After a failure: the failed version's last log lines and diagnostics of this run, for the report. Changes nothing. */
  failureEvidence(): Promise<FailureEvidence>

  /**
   * After a failure before the switch (nothing that served was touched): the new version's last
   * log lines, where it ran apart from what serves (the proxy's idle slot). Strategies whose new
   * version never ran apart leave it out: their logs now would be the old version's.
   */
  evidenceBeforeSwitch?(): Promise<FailureEvidence>

  /**
   * Makes `target` serve on this host: keeps it when it serves already, else reuses a kept
   * container holding exactly that release, else starts it anew. `undefined` means nothing ran
   * before: what this action started is removed. Leftovers that never served (`-next`) go too.
   */
  restore(target: Release | undefined): Promise<RestoreMethod>
}
