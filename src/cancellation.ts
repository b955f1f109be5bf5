/**
 * What the main step leaves for the post step. The runner cancels a step with SIGINT, SIGTERM
 * 7.5 s later and a kill 2.5 s after that, and docker commands already sent keep running in the
 * daemon; so the main step only stops and says where it was, and the post step (a fresh process,
 * `post-if: always()`) repairs. The main step saves the phase (`State.Phase`) as the deploy moves
 * and this record (`State.Restore`) as soon as each fact is known.
 *
 * Nothing secret is saved: names, docker hosts, tags and the lock token. The post step reads the
 * container settings and secrets again from the same inputs and environment.
 */
import * as core from '@actions/core'
import { Phase, State } from './constants.js'
import type { HeldLocks } from './lock.js'
import type { Command, DeploySettings, Release, StrategyName } from './settings.js'

/** The saved record. Bump `version` when its meaning changes: a post step never guesses. */
export interface RestoreState {
  version: 1
  command: Command
  environment: string
  name: string
  image: string
  strategy: StrategyName
  /** Docker hosts in deploy order; null is the runner's default engine. */
  hosts: (string | null)[]
  /** The tag being deployed (or rolled back to, for `command: rollback`), once known. */
  tag?: string
  /** What ran on each host before this run (null: nothing), once read. */
  before?: (Release | null)[]
  /** Indexes of the hosts whose switch has begun: only these can need a restore. */
  reached: number[]
  /** The deploy locks this run holds. */
  lock?: HeldLocks
}

/** Phases in which something that runs may have been touched without a healthy verdict. */
export const REPAIR_PHASES: readonly string[] = [Phase.Switching, Phase.Verifying, Phase.RollingBack]

/**
 * Keeps the restore record current in the main step. Every change is saved at once: the process
 * may be killed at any moment after it.
 */
export class RestoreCheckpoint {
  private readonly state: RestoreState
  /** The last phase saved through `phase()`; pipeline.ts saves the switch phases itself. */
  lastPhase: Phase = Phase.Validating

  constructor(settings: DeploySettings) {
    this.state = {
      version: 1,
      command: settings.command,
      environment: settings.environment,
      name: settings.name,
      image: settings.image,
      strategy: settings.strategy,
      hosts: settings.hosts.map((host) => host ?? null),
      reached: []
    }
  }

  get reached(): readonly number[] {
    return this.state.reached
  }

  /** Saves the phase the deploy enters. */
  phase(phase: Phase): void {
    this.lastPhase = phase
    core.saveState(State.Phase, phase)
  }

  update(change: Partial<Pick<RestoreState, 'tag' | 'before' | 'lock'>>): void {
    Object.assign(this.state, change)
    this.save()
  }

  /** A host's switch begins: from now on the post step must check it. */
  reach(hostIndex: number): void {
    if (!this.state.reached.includes(hostIndex)) this.state.reached.push(hostIndex)
    this.lastPhase = Phase.Switching
    this.save()
  }

  private save(): void {
    core.saveState(State.Restore, JSON.stringify(this.state))
  }
}

/** The record the main step saved, or undefined when there is none or it cannot be trusted. */
export function readRestoreState(text = core.getState(State.Restore)): RestoreState | undefined {
  if (text === '') return undefined
  try {
    const parsed = JSON.parse(text) as Partial<RestoreState>
    if (parsed.version !== 1 || typeof parsed.name !== 'string' || !Array.isArray(parsed.hosts) || !Array.isArray(parsed.reached)) return undefined
    return parsed as RestoreState
  } catch {
    return undefined
  }
}
