/**
 * Fleets on the in-memory engine: the order of batches, and that a failure in any batch puts back
 * every host switched so far while hosts after it are never touched.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals'
import { deploy } from '../src/main.js'
import type { Outcome } from '../src/outcome.js'
import { rolloutBatches } from '../src/pipeline.js'
import { Reporter } from '../src/report/reporter.js'
import type { DeploySettings } from '../src/settings.js'
import { FakeDockerEngine } from '../test-support/fake-docker-engine.js'
import { testSettings } from '../test-support/settings.js'
import { storyDependencies, virtualClock } from '../test-support/story.js'

const IMAGE = 'registry.test/acme/web'
const HOSTS = ['ssh://h1', 'ssh://h2', 'ssh://h3', 'ssh://h4']

function settings(tag: string, rollout: DeploySettings['rollout']): DeploySettings {
  return testSettings({
    image: IMAGE,
    tag,
    health: { expectStatus: [200], headers: {}, intervalMs: 100, timeoutMs: 500, deadlineMs: 5_000, healthyThreshold: 2, watchMs: 0 },
    lock: { timeoutMs: 5_000 },
    hosts: HOSTS,
    rollout
  })
}

async function run(engines: Record<string, FakeDockerEngine>, deploySettings: DeploySettings): Promise<Outcome> {
  const outcome = await deploy(deploySettings, new Reporter(), storyDependencies({ engines, clock: virtualClock() }))
  process.exitCode = undefined
  return outcome
}

/** Four hosts that all run v1. */
async function fleetOnV1(): Promise<Record<string, FakeDockerEngine>> {
  const engines = Object.fromEntries(HOSTS.map((host) => [host, new FakeDockerEngine()]))
  const outcome = await run(engines, settings('v1', { parallel: 4, canary: false }))
  expect(outcome.kind).toBe('deployed')
  return engines
}

const tagOn = (engine: FakeDockerEngine): string | undefined => (engine.describe('web').serves ? engine.describe('web').container?.tag : undefined)
const creates = (engine: FakeDockerEngine): string[] => engine.commands.filter((command) => command.startsWith('container create --name web-next'))

beforeAll(() => {
  jest.spyOn(process.stdout, 'write').mockImplementation(() => true)
})
afterAll(() => {
  jest.restoreAllMocks()
})

describe('rolloutBatches', () => {
  it('takes parallel hosts at a time, in the listed order', () => {
    expect(rolloutBatches(4, 1, false)).toEqual([[0], [1], [2], [3]])
    expect(rolloutBatches(4, 2, false)).toEqual([[0, 1], [2, 3]])
    expect(rolloutBatches(5, 2, false)).toEqual([[0, 1], [2, 3], [4]])
    expect(rolloutBatches(4, 10, false)).toEqual([[0, 1, 2, 3]])
  })

  it('with canary, switches the first host alone, then the rest in batches', () => {
    expect(rolloutBatches(4, 2, true)).toEqual([[0], [1, 2], [3]])
    expect(rolloutBatches(4, 4, true)).toEqual([[0], [1, 2, 3]])
    // One host is its own canary.
    expect(rolloutBatches(1, 1, true)).toEqual([[0]])
  })
})

describe('a fleet of four hosts', () => {
  it('deploys to all four in one batch with parallel: 4', async () => {
    const engines = await fleetOnV1()
    const outcome = await run(engines, settings('v2', { parallel: 4, canary: false }))
    expect(outcome.kind).toBe('deployed')
    expect(HOSTS.map((host) => tagOn(engines[host] as FakeDockerEngine))).toEqual(['v2', 'v2', 'v2', 'v2'])
  })

  it('with parallel: 2, a failure on host 3 puts all four back on v1, host 4 (in the same batch) too', async () => {
    const engines = await fleetOnV1()
    const third = engines['ssh://h3'] as FakeDockerEngine
    third.crashingImages.add(`${IMAGE}:v2`)
    const fourth = engines['ssh://h4'] as FakeDockerEngine
    const createsBefore = creates(fourth).length

    const outcome = await run(engines, settings('v2', { parallel: 2, canary: false }))

    expect(outcome).toMatchObject({ kind: 'rolled-back', failure: { host: 'ssh://h3', tag: 'v2' }, restore: { release: { tag: 'v1' } } })
    expect(HOSTS.map((host) => tagOn(engines[host] as FakeDockerEngine))).toEqual(['v1', 'v1', 'v1', 'v1'])
    // Host 4 was switched beside host 3, then put back.
    expect(creates(fourth).length).toBe(createsBefore + 1)
  })

  it('with parallel: 1, a failure on host 3 never touches host 4', async () => {
    const engines = await fleetOnV1()
    ;(engines['ssh://h3'] as FakeDockerEngine).crashingImages.add(`${IMAGE}:v2`)
    const outcome = await run(engines, settings('v2', { parallel: 1, canary: false }))
    expect(outcome).toMatchObject({ kind: 'rolled-back', failure: { host: 'ssh://h3' } })
    expect(HOSTS.map((host) => tagOn(engines[host] as FakeDockerEngine))).toEqual(['v1', 'v1', 'v1', 'v1'])
    expect(creates(engines['ssh://h4'] as FakeDockerEngine)).toHaveLength(1)
  })

  it('with canary: true, a failure on the first host touches no other host', async () => {
    const engines = await fleetOnV1()
    const first = engines['ssh://h1'] as FakeDockerEngine
    first.crashingImages.add(`${IMAGE}:v2`)
    const others = HOSTS.slice(1).map((host) => engines[host] as FakeDockerEngine)
    const seeded = others.map((engine) => engine.commandCount)

    const outcome = await run(engines, settings('v2', { parallel: 4, canary: true }))

    expect(outcome).toMatchObject({ kind: 'rolled-back', failure: { host: 'ssh://h1' } })
    expect(HOSTS.map((host) => tagOn(engines[host] as FakeDockerEngine))).toEqual(['v1', 'v1', 'v1', 'v1'])
    // Besides the lock and the pull, nothing was done on hosts 2 to 4: no create, stop or rename.
    others.forEach((engine, index) => {
      const since = engine.commands.slice(seeded[index])
      expect(since.filter((command) => /^container (create|stop|rename|start)/.test(command) && !command.includes('deploy-lock'))).toEqual([])
    })
  })

  it('pulls on every host before any switch: a tag missing on host 4 changes nothing anywhere', async () => {
    const engines = await fleetOnV1()
    ;(engines['ssh://h4'] as FakeDockerEngine).missingInRegistry.add(`${IMAGE}:v2`)
    const outcome = await run(engines, settings('v2', { parallel: 1, canary: false }))
    expect(outcome).toMatchObject({ kind: 'failed-before-switch', stage: 'pull' })
    for (const host of HOSTS) expect(creates(engines[host] as FakeDockerEngine)).toHaveLength(1)
    expect(HOSTS.map((host) => tagOn(engines[host] as FakeDockerEngine))).toEqual(['v1', 'v1', 'v1', 'v1'])
  })
})

describe('a failure in a batch cuts the rest of its verification short', () => {
  it('4 hosts in parallel, host 2 dies during its check: the others stop within one probe interval, recovery starts at once, all four end on v1', async () => {
    const engines = await fleetOnV1()
    const clock = virtualClock()
    const t0 = clock.now()
    // A 30 s watch: before, hosts 1, 3 and 4 verified for 30 s before host 2's rollback could start.
    const health = { expectStatus: [200], headers: {}, intervalMs: 500, timeoutMs: 500, deadlineMs: 60_000, healthyThreshold: 2, watchMs: 30_000 }
    const diesAt = 1_000
    // Every command with its virtual time; `restore`: the removal of the failed v2 container by
    // its id, the first command that puts a host back.
    const timeline: { at: number; host: string; command: string; restore: boolean }[] = []
    for (const [host, engine] of Object.entries(engines)) {
      engine.onCommand = (_index, argv) => {
        const removed = argv[0] === 'container' && argv[1] === 'rm' ? [...engine.containers.values()].find((container) => container.id === argv.at(-1)) : undefined
        timeline.push({ at: clock.now() - t0, host, command: argv.join(' '), restore: removed?.image === `${IMAGE}:v2` })
      }
    }
    // Host 2's new version starts, then dies a second into its check (exit 137).
    const second = engines['ssh://h2'] as FakeDockerEngine
    void clock.sleep(diesAt).then(() => second.crash('web', { exitCode: 137 }))
    const reporter = new Reporter()

    const outcome = await deploy({ ...settings('v2', { parallel: 4, canary: false }), health }, reporter, storyDependencies({ engines, clock }))
    process.exitCode = undefined

    expect(outcome).toMatchObject({ kind: 'rolled-back', failure: { host: 'ssh://h2', tag: 'v2' }, restore: { release: { tag: 'v1' } } })
    expect(HOSTS.map((host) => tagOn(engines[host] as FakeDockerEngine))).toEqual(['v1', 'v1', 'v1', 'v1'])
    // Recovery began within one probe interval of the death: the first restore command (removing
    // the failed v2 container) on any host. It waits for every host of the batch to end its
    // verification, so theirs ended by then too.
    const restoreStarts = timeline.filter(({ restore }) => restore)
    expect(restoreStarts.map(({ host }) => host).sort()).toEqual([...HOSTS].sort())
    const recovery = Math.min(...restoreStarts.map(({ at }) => at))
    expect(recovery).toBeGreaterThanOrEqual(diesAt)
    expect(recovery).toBeLessThanOrEqual(diesAt + health.intervalMs)
    for (const host of ['ssh://h1', 'ssh://h3', 'ssh://h4']) {
      const mine = timeline.filter((entry) => entry.host === host)
      const switched = mine.findIndex(({ command }) => command === 'container start web')
      const restored = mine.findIndex(({ restore }) => restore)
      // Its check ran from the switch until host 2 died, and stopped there: no read of it after.
      const checks = mine.slice(switched + 1, restored)
      expect(checks.length).toBeGreaterThan(0)
      expect(Math.max(...checks.map(({ at }) => at))).toBeLessThanOrEqual(diesAt + health.intervalMs)
      // Not a failure of its own: a warning that says why it was cut short.
      const verify = reporter.steps.find((step) => step.title === `Deploy · verify (${host})`)
      expect(verify).toMatchObject({ status: 'warning', detail: 'v2 was switched in, and its verification cut short: ssh://h2 failed in the same batch' })
    }
    expect(reporter.steps.find((step) => step.title === 'Deploy · verify (ssh://h2)')).toMatchObject({ status: 'failed', detail: expect.stringMatching(/^v2 is unhealthy: .*137/) })
    // The whole deploy took one watch, the restore's: not the deploy's watch on hosts 1, 3, 4 first.
    expect(clock.now() - t0).toBeLessThan(diesAt + health.intervalMs + health.watchMs + health.deadlineMs / 10)
  })
})

describe('restore targets per host', () => {
  /** `hosts: [new, old]`: v1 runs only on the second host; v2 crashes everywhere. */
  async function newAndOld(): Promise<{ engines: Record<string, FakeDockerEngine>; old: FakeDockerEngine; fresh: FakeDockerEngine; servedId?: string }> {
    const fresh = new FakeDockerEngine()
    const old = new FakeDockerEngine()
    const only = await run({ 'ssh://old': old }, { ...settings('v1', { parallel: 1, canary: false }), hosts: ['ssh://old'] })
    expect(only.kind).toBe('deployed')
    for (const engine of [fresh, old]) engine.crashingImages.add(`${IMAGE}:v2`)
    return { engines: { 'ssh://new': fresh, 'ssh://old': old }, old, fresh, servedId: old.containers.get('web')?.id }
  }

  it.each([
    ['rollback.to: previous, one host at a time', { kind: 'previous' } as const, { parallel: 1, canary: false }],
    ['rollback.to: last-release (no releases to read), both at once', { kind: 'last-release' } as const, { parallel: 2, canary: false }],
    ['rollback.to: previous, canary', { kind: 'previous' } as const, { parallel: 2, canary: true }]
  ])('a fleet whose first host is new: the old host goes back to what it ran, the new one loses only what this run created (%s)', async (_name, to, rollout) => {
    const { engines, old, fresh, servedId } = await newAndOld()
    const deploySettings = { ...settings('v2', rollout), hosts: ['ssh://new', 'ssh://old'], rollback: { onFailure: true, to } }
    const outcome = await run(engines, deploySettings)
    expect(outcome.kind).not.toBe('deployed')
    // The new host fails first (v2 crashes): with one host at a time the old host was never touched.
    expect(tagOn(old)).toBe('v1')
    expect(old.describe('web').container?.running).toBe(true)
    if (rollout.parallel === 1 && !rollout.canary) expect(old.containers.get('web')?.id).toBe(servedId)
    expect([...fresh.containers.keys()].filter((name) => name.startsWith('web') && name !== 'web-deploy-lock')).toEqual([])
  })

  it('a fleet whose first host is new, failing on the old host: the old host is back on v1, tag names it', async () => {
    const { engines, old, fresh } = await newAndOld()
    fresh.crashingImages.delete(`${IMAGE}:v2`)
    const outcome = await run(engines, { ...settings('v2', { parallel: 1, canary: false }), hosts: ['ssh://new', 'ssh://old'], rollback: { onFailure: true, to: { kind: 'previous' } } })
    expect(outcome).toMatchObject({ kind: 'rolled-back', restore: { release: { tag: 'v1' } } })
    expect(tagOn(old)).toBe('v1')
    expect([...fresh.containers.keys()].filter((name) => name.startsWith('web') && name !== 'web-deploy-lock')).toEqual([])
  })
})
