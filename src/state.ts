/**
 * The one module that writes and reads what the main step leaves for the post step.
 *
 * The runner cancels a step with SIGINT, SIGTERM 7.5 s later and a kill 2.5 s after that, and
 * docker commands already sent keep running in the daemon; so the main step only stops and says
 * where it was, and the post step (a fresh process, `post-if: always()`) puts back what served.
 * The record is saved whole, as soon as each fact is known: the process may be killed at any moment.
 *
 * Nothing secret is saved: names, docker hosts, tags and the lock token. The post step reads the
 * container settings and secrets again from the same inputs and environment.
 */
import * as core from '@actions/core'
import type { HeldLocks } from './lock.js'
import type { Command, DeploySettings, Release, StrategyName } from './settings.js'

/** Keys given to `core.saveState`. */
export enum StateKey {
  /** JSON of `SavedRun`. */
  Run = 'run'
}

/** Phases of a run, saved as they are entered. */
export enum Phase {
  Validating = 'validating',
  /** Lock, read what runs, pull, hooks: nothing that serves has been touched. */
  Preparing = 'preparing',
  /** A host's switch has begun and no healthy verdict covers it: a cancel here needs a restore. */
  Switching = 'switching',
  /** Every host was shown healthy: from here on nothing may take the new version away. */
  Verified = 'verified',
  /** Putting back a known version after a failure: a cancel here needs a restore too. */
  RollingBack = 'rolling-back',
  /** The main step ended its story (lock released or handed to the post step to release). */
  Done = 'done'
}

/** Phases in which what serves may have been touched without a healthy verdict. */
const RESTORE_PHASES: readonly Phase[] = [Phase.Switching, Phase.RollingBack]

/** The saved record. Bump `version` when its meaning changes: a post step never guesses. */
export interface SavedRun {
  version: 2
  phase: Phase
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
  /** Indexes of the hosts whose switch (or restore) has begun: only these can need a restore. */
  reached: number[]
  /** The deploy locks this run may hold. */
  lock?: HeldLocks
  /**
   * Ids of the containers, services and networks this run created, per host index: the only
   * objects a restore to "nothing ran before" may remove (see `created.ts`).
   */
  created?: string[][]
  /**
   * The main step's private docker client config directory (it holds the registry login, so the
   * post step removes it when the main step could not). A path, not a secret.
   */
  dockerConfig?: string
  /**
   * The main step's private SSH directory (it holds the `ssh-key`, and names the ssh processes of
   * the run's connections): the post step stops those and removes it when the main step could not.
   */
  sshDir?: string
}

/** Where the record lives: `core.saveState`/`getState` on a runner, a map in tests. */
export interface StateStore {
  save(key: StateKey, value: string): void
  get(key: StateKey): string
}

export const runnerStateStore: StateStore = {
  save: (key, value) => core.saveState(key, value),
  get: (key) => core.getState(key)
}

/** An in-memory store, shared by a test's main step and its post step. */
export function memoryStateStore(): StateStore & { values: Map<string, string> } {
  const values = new Map<string, string>()
  return { values, save: (key, value) => void values.set(key, value), get: (key) => values.get(key) ?? '' }
}

/** Keeps the saved record current in the main step. */
export class RunState {
  private readonly record: SavedRun

  constructor(
    settings: DeploySettings,
    private readonly store: StateStore = runnerStateStore
  ) {
    this.record = {
      version: 2,
      phase: Phase.Validating,
      command: settings.command,
      environment: settings.environment,
      name: settings.name,
      image: settings.image,
      strategy: settings.strategy,
      hosts: settings.hosts.map((host) => host ?? null),
      reached: []
    }
  }

  get phase(): Phase {
    return this.record.phase
  }

  get reached(): readonly number[] {
    return this.record.reached
  }

  enter(phase: Phase): void {
    this.record.phase = phase
    this.save()
  }

  update(change: Partial<Pick<SavedRun, 'tag' | 'before' | 'lock' | 'dockerConfig' | 'sshDir'>>): void {
    Object.assign(this.record, change)
    this.save()
  }

  /** Docker returned `id` for a create of this run on host `hostIndex`: saved at once, for the post step. */
  recordCreated(hostIndex: number, id: string): void {
    const created = (this.record.created ??= [])
    while (created.length <= hostIndex) created.push([])
    const ids = created[hostIndex] as string[]
    if (!ids.includes(id)) ids.push(id)
    this.save()
  }

  /** A host's switch begins: from now on the post step must check it. */
  reach(hostIndex: number): void {
    if (!this.record.reached.includes(hostIndex)) this.record.reached.push(hostIndex)
    if (this.record.phase !== Phase.RollingBack) this.record.phase = Phase.Switching
    this.save()
  }

  private save(): void {
    this.store.save(StateKey.Run, JSON.stringify(this.record))
  }
}

/** The record the main step saved, or undefined when there is none or it cannot be trusted. */
export function readSavedRun(store: StateStore = runnerStateStore): SavedRun | undefined {
  const text = store.get(StateKey.Run)
  if (text === '') return undefined
  try {
    const parsed = JSON.parse(text) as Partial<SavedRun>
    if (parsed.version !== 2 || typeof parsed.name !== 'string' || !Array.isArray(parsed.hosts) || !Array.isArray(parsed.reached)) return undefined
    return parsed as SavedRun
  } catch {
    return undefined
  }
}

/** The main step was interrupted after touching what serves and before a healthy verdict or a finished rollback. */
export function needsRestore(saved: SavedRun): boolean {
  return RESTORE_PHASES.includes(saved.phase) && saved.reached.length > 0
}
