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
