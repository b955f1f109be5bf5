/**
 * The fault sweep on Swarm services as they are found (issue 18): a service scaled by hand to
 * several replicas (the config leaves `swarm.replicas` out), an upgrade whose rollback Swarm
 * pauses part way, and a service scaled to 0. As in `fault-sweep.test.ts`: the whole story, main
 * step then post step, with the k-th docker command failing (before or after it took effect) for
 * every k, and with a cancel before the k-th command; after each run the invariants of
 * `src/outcome.ts` are asserted on the engine, plus Swarm's own: every task of the service runs
 * the version that serves, and the replica count stays what the service had.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals'
import { resultOf, servingRelease, succeeded } from '../src/outcome.js'
import type { DeploySettings } from '../src/settings.js'
import { FakeDockerEngine, type FakeTask } from '../test-support/fake-docker-engine.js'
import { testSettings } from '../test-support/settings.js'
import { runStory, type SweptRun as Run } from '../test-support/sweep-story.js'

const IMAGE = 'registry.test/acme/web'

/** `swarm: {}`: replicas and the update settings are the service's own. */
function settingsFor(change: Partial<DeploySettings> = {}): DeploySettings {
  return testSettings({
    image: IMAGE,
    strategy: 'swarm',
    health: { expectStatus: [200], headers: {}, intervalMs: 100, timeoutMs: 500, deadlineMs: 5_000, healthyThreshold: 2, watchMs: 1_000 },
    lock: { timeoutMs: 5_000 },
    swarm: {},
    ...change
  })
}

interface Scenario {
  name: string
  /** Builds the engine as the runs before this one, and a person, left it. */
  seed(): Promise<FakeDockerEngine>
  settings: DeploySettings
  /** The replicas the service has, and keeps: the config never names them. */
  replicas: number
  before: string
  wanted: string
  /** Whether `wanted` can be shown healthy. */
  wantedIsGood: boolean
  /** `docker service update` commands of the run without a fault: the switch, and a restore Swarm's own rollback did not make needless. */
  updates: number
  /** Jest's limit for one sweep, when the default 5 s is too short for its many long waits. */
  sweepTimeoutMs?: number
}

/** Deploys `tags` in turn, then scales the service by hand, as `docker service scale web=N` does. */
async function seeded(tags: string[], replicas: number, crashing: string[] = [], swarmLag = 0): Promise<FakeDockerEngine> {
  const engine = new FakeDockerEngine()
  for (const tag of crashing) engine.crashingImages.add(`${IMAGE}:${tag}`)
  for (const tag of tags) {
    const run = await runStory(engine, settingsFor({ tag }))
    if (run.outcome.kind !== 'deployed') throw new Error(`seeding ${tag} did not deploy: ${run.outcome.kind}`)
  }
  const scaled = await engine.run(['service', 'update', '--detach', '--replicas', String(replicas), 'web'])
  if (scaled.exitCode !== 0) throw new Error(scaled.stderr)
  engine.swarmLag = swarmLag
  return engine
}

function tagOf(task: FakeTask): string {
  return task.image.split('@')[0]?.split(':').pop() ?? ''
}

/**
 * v2 runs on two tasks and fails on its third start, so Swarm rolls the update back; the first
 * start of v1 in that rollback fails too, and Swarm pauses its rollback with v2 still on a task.
 */
function pausingTheRollback(engine: FakeDockerEngine): FakeDockerEngine {
  let v2Starts = 0
  let v1FailedOnce = false
  engine.taskStartFails = (task) => {
    if (tagOf(task) === 'v2') return ++v2Starts === 3
    if (tagOf(task) === 'v1' && v2Starts >= 3 && !v1FailedOnce) return (v1FailedOnce = true)
    return false
  }
  return engine
}

const scenarios: Scenario[] = [
  {
    name: 'a healthy upgrade of a service scaled to 3 by hand',
    seed: () => seeded(['v1'], 3),
    settings: settingsFor({ tag: 'v2' }),
    replicas: 3,
    before: 'v1',
    wanted: 'v2',
    wantedIsGood: true,
    updates: 1
  },
  {
    // Each step of Swarm's work takes 20 looks (10 s at the action's polling): 8 batches take
    // 90 s, longer than a 1-replica service's 70 s, so faults land in the middle of a long wait.
    name: 'a slow, healthy upgrade of a service scaled to 8 by hand',
    seed: () => seeded(['v1'], 8, [], 20),
    settings: settingsFor({ tag: 'v2' }),
    replicas: 8,
    before: 'v1',
    wanted: 'v2',
    wantedIsGood: true,
    updates: 1,
    sweepTimeoutMs: 300_000
  },
  {
    name: 'a failed upgrade of a service scaled to 3 by hand (Swarm rolls back)',
    seed: () => seeded(['v1'], 3, ['v2']),
    settings: settingsFor({ tag: 'v2' }),
    replicas: 3,
    before: 'v1',
    wanted: 'v2',
    wantedIsGood: false,
    updates: 1
  },
  {
    name: 'a manual rollback of a service scaled to 3 by hand',
    seed: () => seeded(['v1', 'v2'], 3),
    settings: settingsFor({ command: 'rollback', tag: 'v1' }),
    replicas: 3,
    before: 'v2',
    wanted: 'v1',
    wantedIsGood: true,
    updates: 1
  },
  {
    name: 'an upgrade whose rollback Swarm pauses part way',
    seed: async () => pausingTheRollback(await seeded(['v1'], 3)),
    settings: settingsFor({ tag: 'v2' }),
    replicas: 3,
    before: 'v1',
    wanted: 'v2',
    wantedIsGood: false,
    updates: 2
  },
  {
    name: 'an upgrade of a service scaled to 0 (refused)',
    seed: () => seeded(['v1'], 0),
    settings: settingsFor({ tag: 'v2' }),
    replicas: 0,
    before: 'v1',
    wanted: 'v2',
    wantedIsGood: false,
    updates: 0
  }
]

/** What serves on the engine: the tag, when a good version serves at all. */
function serving(engine: FakeDockerEngine): string | undefined {
  const found = engine.describe('web')
  return found.serves ? found.service?.tag : undefined
}

/** The tags of the tasks Swarm runs now. */
function runningTags(engine: FakeDockerEngine): string[] {
  return engine.tasks.filter((task) => task.desiredState === 'running' && task.state === 'running').map(tagOf)
}

/** The invariants of `src/outcome.ts`, and Swarm's, after the main step and the post step. */
function assertInvariants(engine: FakeDockerEngine, run: Run, scenario: Scenario, label: string): void {
  const { outcome, exitCode } = run
  const found = engine.describe('web')
  const now = serving(engine)
  const tasks = runningTags(engine)
  const context = `${label}: outcome ${outcome.kind}, serving ${now ?? 'nothing'}, update ${found.service?.updateState ?? 'none'}, tasks ${tasks.join(',')}`
  // A good version serves: what served before, or the new one once shown healthy.
  expect([context, now === scenario.before || (now === scenario.wanted && scenario.wantedIsGood)]).toEqual([context, true])
  const result = resultOf(outcome)
  if (result === 'deployed') expect([context, now]).toEqual([context, scenario.wanted])
  if (result === 'rolled-back') expect([context, now]).toEqual([context, servingRelease(outcome)?.tag])
  if (scenario.settings.command === 'rollback' && exitCode === 0) expect([context, now]).toEqual([context, scenario.wanted])
  // The exit code follows the outcome.
  expect([context, exitCode]).toEqual([context, succeeded(outcome) ? 0 : 1])
  // Every task runs what serves (none of a version that failed is left), and the service keeps its replica count.
  expect([context, tasks]).toEqual([context, Array(scenario.replicas).fill(now)])
  expect([context, found.service?.replicas]).toEqual([context, scenario.replicas])
  // The lock is released.
  expect([context, found.lockHeld]).toEqual([context, false])
}

let restoreWrite: (() => void) | undefined
beforeAll(() => {
  // Annotations and group markers go to stdout; the sweep runs hundreds of stories.
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation(() => true)
  restoreWrite = () => spy.mockRestore()
  delete process.env.GITHUB_STATE
  delete process.env.GITHUB_OUTPUT
  delete process.env.GITHUB_STEP_SUMMARY
})
afterAll(() => restoreWrite?.())

describe.each(scenarios)('fault sweep, strategy swarm: $name', (scenario) => {
  it('ends as it should without a fault', async () => {
    const engine = await scenario.seed()
    const base = engine.commandCount
    const run = await runStory(engine, scenario.settings)
    assertInvariants(engine, run, scenario, 'no fault')
    expect(serving(engine)).toBe(scenario.wantedIsGood ? scenario.wanted : scenario.before)
    expect(run.exitCode).toBe(scenario.wantedIsGood ? 0 : 1)
    expect(engine.commands.slice(base).filter((command) => command.startsWith('service update'))).toHaveLength(scenario.updates)
  })

  it('keeps every promise when the k-th docker command fails, for every k, before or after it took effect', async () => {
    const clean = await scenario.seed()
    const base = clean.commandCount
    await runStory(clean, scenario.settings)
    const commands = clean.commandCount - base
    // Not vacuous: even the refused upgrade reads the service, and takes and gives back the lock.
    expect(commands).toBeGreaterThanOrEqual(3)
    for (const mode of ['before', 'after'] as const) {
      for (let k = 1; k <= commands; k++) {
        const engine = await scenario.seed()
        const run = await runStory(engine, scenario.settings, { fault: { at: k, mode } })
        assertInvariants(engine, run, scenario, `fault ${mode} command ${k} of ${commands}`)
      }
    }
  }, scenario.sweepTimeoutMs)

  it('keeps every promise when cancelled before the k-th docker command, for every k, then the post step runs', async () => {
    const clean = await scenario.seed()
    const base = clean.commandCount
    await runStory(clean, scenario.settings)
    const commands = clean.commandCount - base
    // Not vacuous: even the refused upgrade reads the service, and takes and gives back the lock.
    expect(commands).toBeGreaterThanOrEqual(3)
    for (let k = 1; k <= commands; k++) {
      const engine = await scenario.seed()
      const run = await runStory(engine, scenario.settings, { cancelAt: k })
      assertInvariants(engine, run, scenario, `cancel before command ${k} of ${commands}`)
    }
  }, scenario.sweepTimeoutMs)
})
