/**
 * One run of the fault sweeps on a single in-memory host: the main step with an optional fault
 * or cancel, then the post step in a fresh "process" (a fresh signal, no fault), as the runner does.
 */
import { deploy } from '../src/main.js'
import type { Outcome } from '../src/outcome.js'
import { post } from '../src/post.js'
import { Reporter } from '../src/report/reporter.js'
import type { DeploySettings } from '../src/settings.js'
import { memoryStateStore, type StateStore } from '../src/state.js'
import type { FakeDockerEngine, FaultMode } from './fake-docker-engine.js'
import type { ProxyDockerHost } from './proxy-docker-host.js'
import { storyDependencies, virtualClock } from './story.js'

export type SweptHost = FakeDockerEngine | ProxyDockerHost

export interface SweptRun<H extends SweptHost = FakeDockerEngine> {
  engine: H
  outcome: Outcome
  exitCode: number
}

/** Runs one main step and its post step on `engine`: a fault at, or a cancel before, command `at` of this run. */
export async function runStory<H extends SweptHost>(engine: H, settings: DeploySettings, inject?: { fault?: { at: number; mode: FaultMode }; cancelAt?: number }): Promise<SweptRun<H>> {
  const state: StateStore = memoryStateStore()
  const cancellation = new AbortController()
  const base = engine.commandCount
  if (inject?.fault) engine.fault = { at: base + inject.fault.at, mode: inject.fault.mode }
  const cancelAt = inject?.cancelAt
  if (cancelAt !== undefined) engine.onCommand = (index) => void (index === base + cancelAt && cancellation.abort(new Error('cancelled by SIGINT')))
  process.exitCode = undefined
  const outcome = await deploy(settings, new Reporter(), storyDependencies({ engines: { local: engine }, state, clock: virtualClock(), signal: cancellation.signal }))
  const exitCode = Number(process.exitCode ?? 0)
  process.exitCode = undefined
  // One fault, one cancel per run: the post step is a fresh process with a fresh signal.
  engine.fault = undefined
  engine.onCommand = undefined
  await post(undefined, { state, settings: () => settings, dependencies: () => storyDependencies({ engines: { local: engine }, state, clock: virtualClock() }) })
  process.exitCode = undefined
  return { engine, outcome, exitCode }
}
