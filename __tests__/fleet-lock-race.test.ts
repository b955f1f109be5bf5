/**
 * Runs racing for one fleet's deploy locks (issue 21): `FleetLock.acquire` tries every host at
 * once, and on a conflict gives back what it took after the first busy host in the engines' order
 * and waits in that order. Told on in-memory engines and one virtual clock, with every docker
 * command of every run delayed by a seeded random time, so that each seed is another
 * interleaving of the same start.
 *
 * Invariants, for every seed:
 * - never two owners of one host at once: a run that holds its locks finds each lock container
 *   carrying its own token, from the moment acquire returns until it releases, and no other run
 *   holds that engine meanwhile (checked at every turn of its work, through renewals);
 * - no deadlock: every run gets every lock within its `lock.timeout`, one after the other;
 * - a run that gave up (a create or remove failing) leaves no lock of its own on any engine.
 *
 * Then whole stories (`deploy()` and `post()`) with the owner watch (test-support/owner-watch.ts).
 */
import { describe, expect, it } from '@jest/globals'
import { Label } from '../src/constants.js'
import type { Clock } from '../src/dependencies.js'
import { DockerClient } from '../src/docker/client.js'
import type { DockerResult, DockerRunner, DockerRunOptions } from '../src/docker/runner.js'
import { DeployLock, FleetLock, LOCK_IMAGE, LockLabel, LockTimeoutError } from '../src/lock.js'
import { deploy } from '../src/main.js'
import type { Outcome } from '../src/outcome.js'
import { post } from '../src/post.js'
import { Reporter } from '../src/report/reporter.js'
import { memoryStateStore } from '../src/state.js'
import { FakeDockerEngine, injectedResult } from '../test-support/fake-docker-engine.js'
import { ownerWatch } from '../test-support/owner-watch.js'
import { testSettings } from '../test-support/settings.js'
import { captureActionStdout } from '../test-support/stdout.js'
import { storyDependencies, virtualClock } from '../test-support/story.js'

const SECOND = 1_000
const MINUTE = 60_000
const LOCK = 'web-deploy-lock'

captureActionStdout()

/** A small seeded generator (mulberry32): the same seed, the same interleaving. */
function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

function shuffled<T>(items: T[], next: () => number): T[] {
  const copy = [...items]
  for (let index = copy.length - 1; index > 0; index--) {
    const other = Math.floor(next() * (index + 1))
    ;[copy[index], copy[other]] = [copy[other] as T, copy[index] as T]
  }
  return copy
}

/** The engine as one run reaches it: each command waits a random 0–300 ms of virtual time first; `fault` may answer instead. */
function jittered(engine: DockerRunner, clock: Clock, next: () => number, fault?: (argv: readonly string[]) => DockerResult | undefined): DockerRunner {
  return {
    run: async (argv: readonly string[], options?: DockerRunOptions): Promise<DockerResult> => {
      await clock.sleep(Math.floor(next() * 300))
      return fault?.(argv) ?? engine.run(argv, options)
    }
  }
}

/** How one run spells each engine: by index, so that two runs reach one engine under two names. */
function spelling(run: number, engine: number): string {
  return ['ssh://deploy@web', 'ssh://web', 'tcp://web'][run % 3] + `${engine + 1}`
}

/** A fault for one run: its `at`-th create or remove of the lock fails, before or after the daemon acted. */
interface LockFault {
  run: number
  command: 'create' | 'rm'
  at: number
  after: boolean
}

interface Scenario {
  seed: number
  runs: number
  hosts: number
  /** An expired lock of a dead run stands on the first engine: the racers take it over. */
  deadHolder?: boolean
  fault?: LockFault
}

interface RaceReport {
  violations: string[]
  /** Per run: acquired (with when) or the error it gave up with. */
  results: ({ from: number; to: number; released: number } | { error: unknown })[]
  engines: FakeDockerEngine[]
  owners: string[]
  endedAt: number
  /** The steps of acquire a fault hit. */
  hits: ('create' | 'give-back' | 'takeover')[]
}

const WORK_MS = 60 * SECOND
const LEASE_MS = 90 * SECOND
const TIMEOUT_MS = 10 * MINUTE

async function race(scenario: Scenario): Promise<RaceReport> {
  const next = random(scenario.seed)
  const clock = virtualClock()
  const started = clock.now()
  const engines = Array.from({ length: scenario.hosts }, (_, index) => {
    const engine = new FakeDockerEngine()
    engine.engineId = `ENGINE-${String.fromCharCode(65 + Math.floor(next() * 26))}${index}`
    engine.daemonNow = () => clock.now()
    return engine
  })
  if (scenario.deadHolder) {
    const engine = engines[0] as FakeDockerEngine
    engine.images.add(LOCK_IMAGE)
    engine.add({ name: LOCK, image: LOCK_IMAGE, running: false, labels: { [LockLabel.Owner]: 'dead-run', [LockLabel.LeaseMs]: '1000' }, created: new Date(clock.now() - MINUTE).toISOString() })
  }
  const violations: string[] = []
  /** Which run works on each engine now. */
  const occupant = new Map<FakeDockerEngine, number>()
  const owners = Array.from({ length: scenario.runs }, (_, run) => `run-${run}`)
  const hits: RaceReport['hits'] = []

  const runOne = async (run: number): Promise<RaceReport['results'][number]> => {
    // Each run lists all engines, or all but one, in its own order and spelling.
    const count = scenario.hosts > 2 && next() < 0.3 ? scenario.hosts - 1 : scenario.hosts
    const mine = shuffled(engines.map((_, index) => index), next).slice(0, count)
    const counts = { create: 0, rm: 0 }
    let acquiring = false
    const faultOn =
      (engine: FakeDockerEngine) =>
      (argv: readonly string[]): DockerResult | undefined => {
        const injected = scenario.fault
        if (!acquiring || !injected || injected.run !== run || !(argv[0] === 'container' && argv[1] === injected.command)) return undefined
        if (++counts[injected.command] !== injected.at) return undefined
        // Which step it hit: a remove of a lock of this run's own is a give-back, another's a takeover.
        const owner = [...engine.containers.values()].find((container) => container.id === argv.at(-1))?.labels[LockLabel.Owner]
        hits.push(injected.command === 'create' ? 'create' : owner === owners[run] ? 'give-back' : 'takeover')
        return injectedResult(counts[injected.command], argv)
      }
    const locks = mine.map((index) => {
      const engine = engines[index] as FakeDockerEngine
      const fault = faultOn(engine)
      const runner = jittered(engine, clock, next, scenario.fault?.after ? undefined : fault)
      // After it acted: the engine carried the command out, and the client reports a failure.
      const afterFault: DockerRunner = scenario.fault?.after
        ? { run: async (argv, options) => ((result) => fault(argv) ?? result)(await runner.run(argv, options)) }
        : runner
      return { lock: new DeployLock(new DockerClient(afterFault, { label: spelling(run, index) }), 'web'), dockerHost: spelling(run, index) }
    })
    const fleet = new FleetLock(locks, owners[run])
    // Runs start within a second of each other.
    await clock.sleep(Math.floor(next() * SECOND))
    const from = clock.now()
    acquiring = true
    try {
      await fleet.acquire({ holder: `https://github.com/acme/web/actions/runs/${run}`, tag: `v${run}`, leaseMs: LEASE_MS, timeoutMs: TIMEOUT_MS, clock })
    } catch (error) {
      return { error }
    } finally {
      acquiring = false
    }
    const to = clock.now()
    fleet.startRenewing({ leaseMs: LEASE_MS, clock })
    const held = mine.map((index) => engines[index] as FakeDockerEngine)
    const look = (when: string): void => {
      for (const engine of held) {
        const holder = engine.containers.get(LOCK)?.labels[LockLabel.Owner]
        if (holder !== owners[run]) violations.push(`run ${run} ${when}: the lock on ${engine.engineId} is ${holder ? `held by ${holder}` : 'free'}`)
      }
    }
    for (const engine of held) {
      const other = occupant.get(engine)
      if (other !== undefined) violations.push(`run ${run} holds ${engine.engineId} while run ${other} works there`)
      occupant.set(engine, run)
    }
    look('once acquired')
    // The work: a minute, looked at every 10 s, through two renewals of a 90 s lease.
    for (let elapsed = 0; elapsed < WORK_MS; elapsed += 10 * SECOND) {
      await clock.sleep(10 * SECOND)
      look(`after ${(elapsed + 10 * SECOND) / SECOND} s of work`)
    }
    for (const engine of held) occupant.delete(engine)
    const problems = await fleet.release()
    if (problems.length > 0) violations.push(`run ${run} could not release: ${problems.join('; ')}`)
    return { from, to, released: clock.now() }
  }

  const results = await Promise.all(owners.map((_, run) => runOne(run)))
  return { violations, results, engines, owners, endedAt: clock.now() - started, hits }
}

function describeScenario(scenario: Scenario): string {
  const fault = scenario.fault ? `, run ${scenario.fault.run}'s ${scenario.fault.command} #${scenario.fault.at} fails ${scenario.fault.after ? 'after' : 'before'} it acts` : ''
  return `seed ${scenario.seed}: ${scenario.runs} runs, ${scenario.hosts} hosts${scenario.deadHolder ? ', an expired lock on one' : ''}${fault}`
}

function assertRace(report: RaceReport, scenario: Scenario): void {
  const label = describeScenario(scenario)
  const fail = (what: string): never => {
    throw new Error(`${label}: ${what}`)
  }
  if (report.violations.length > 0) fail(`\n${report.violations.join('\n')}`)
  report.results.forEach((result, run) => {
    if ('error' in result) {
      // Only the run with a fault may give up, never for want of time (that would be a deadlock).
      if (scenario.fault?.run !== run) fail(`run ${run} gave up: ${String(result.error)}`)
      if (result.error instanceof LockTimeoutError) fail(`run ${run} timed out: ${result.error.message}`)
      // It leaves no lock of its own anywhere.
      for (const engine of report.engines) {
        if (engine.containers.get(LOCK)?.labels[LockLabel.Owner] === report.owners[run]) fail(`run ${run} gave up and left its lock on ${engine.engineId}`)
      }
      return
    }
    if (result.to - result.from > TIMEOUT_MS) fail(`run ${run} waited ${result.to - result.from} ms, past its lock.timeout`)
  })
  // No lock is left, but the dead run's where nobody took it over.
  for (const engine of report.engines) {
    const left = engine.containers.get(LOCK)?.labels[LockLabel.Owner]
    if (left && left !== 'dead-run') fail(`a lock of ${left} is left on ${engine.engineId}`)
  }
  // One after the other, never idle: the runs took at most their work plus a few polls of hand-over each.
  if (report.endedAt > scenario.runs * (WORK_MS + 15 * SECOND) + SECOND) fail(`the race took ${report.endedAt} ms: runs waited while nobody worked`)
}

describe('runs racing for one fleet', () => {
  const scenarios: Scenario[] = []
  for (let seed = 1; seed <= 60; seed++) scenarios.push({ seed, runs: 2 + (seed % 2), hosts: 2 + (seed % 3), deadHolder: seed % 5 === 0 })

  it.each(scenarios.map((scenario) => [describeScenario(scenario), scenario] as const))('%s: one owner per host, no deadlock, every run done in turn', async (_name, scenario) => {
    assertRace(await race(scenario), scenario)
  })

  it('two runs starting together on 4 hosts, no jitter between their creates: one takes all at once, the other waits and then takes all', async () => {
    // Seeds where both runs started within one poll: both tried every host in the same round.
    const reports = await Promise.all([11, 22, 33, 44].map((seed) => race({ seed, runs: 2, hosts: 4 })))
    for (const [index, report] of reports.entries()) {
      assertRace(report, { seed: [11, 22, 33, 44][index] as number, runs: 2, hosts: 4 })
      const spans = report.results.map((result) => result as { from: number; to: number; released: number }).sort((a, b) => a.to - b.to)
      // The second got its locks only after the first released them, within a poll and a bit.
      expect(spans[1]!.to).toBeGreaterThanOrEqual(spans[0]!.released)
      expect(spans[1]!.to - spans[0]!.released).toBeLessThanOrEqual(5 * SECOND)
    }
  })

  const faults: Scenario[] = []
  for (let seed = 101; seed <= 148; seed++) {
    const command = seed % 2 === 0 ? 'create' : 'rm'
    faults.push({ seed, runs: 2 + (seed % 2), hosts: 2 + (seed % 3), deadHolder: command === 'rm' && seed % 4 === 1, fault: { run: seed % 2, command, at: 1 + (seed % 3), after: seed % 3 === 0 } })
  }
  it.each(faults.map((scenario) => [describeScenario(scenario), scenario] as const))('%s: the run that gave up leaves no lock, the others deploy in turn', async (_name, scenario) => {
    assertRace(await race(scenario), scenario)
  })

  it('a remove failing as a lock is given back (before or after it acted): that run gives up and leaves no lock, the others deploy in turn', async () => {
    const hit: string[] = []
    for (let seed = 201; seed <= 400 && hit.length < 6; seed++) {
      const scenario: Scenario = { seed, runs: 2 + (seed % 2), hosts: 2 + (seed % 3), fault: { run: seed % 2, command: 'rm', at: 1, after: seed % 4 < 2 } }
      const report = await race(scenario)
      assertRace(report, scenario)
      if (report.hits.includes('give-back')) hit.push(describeScenario(scenario))
    }
    // Contention in the first round is common enough that several seeds give a lock back.
    expect(hit.length).toBe(6)
  })
})

describe('one engine listed twice, racing', () => {
  it.each([1, 2, 3, 4, 5, 6])('seed %i: both creates go out at once; whichever wins, the same error, no lock left, the other run unharmed', async (seed) => {
    const next = random(seed)
    const clock = virtualClock()
    const web1 = new FakeDockerEngine()
    const web2 = new FakeDockerEngine()
    web1.engineId = 'AAAA:WEB1'
    web2.engineId = 'BBBB:WEB2'
    for (const engine of [web1, web2]) engine.daemonNow = () => clock.now()
    const twice = new FleetLock(
      [
        { lock: new DeployLock(new DockerClient(jittered(web1, clock, next), { label: 'ssh://web1' }), 'web'), dockerHost: 'ssh://web1' },
        { lock: new DeployLock(new DockerClient(jittered(web2, clock, next), { label: 'ssh://web2' }), 'web'), dockerHost: 'ssh://web2' },
        { lock: new DeployLock(new DockerClient(jittered(web1, clock, next), { label: 'ssh://deploy@web1' }), 'web'), dockerHost: 'ssh://deploy@web1' }
      ],
      'twice'
    )
    const other = new FleetLock(
      [web2, web1].map((engine, index) => ({ lock: new DeployLock(new DockerClient(jittered(engine, clock, next), { label: `tcp://${index}` }), 'web'), dockerHost: `tcp://${index}` })),
      'other'
    )
    const options = { holder: 'https://github.com/acme/web/actions/runs/1', tag: 'v2', leaseMs: LEASE_MS, timeoutMs: TIMEOUT_MS, clock }
    // The other run holds both for a minute, then lets go.
    const work = async (): Promise<(string | undefined)[]> => {
      await other.acquire(options)
      const owners = [web1, web2].map((engine) => engine.containers.get(LOCK)?.labels[LockLabel.Owner])
      await clock.sleep(MINUTE)
      await other.release()
      return owners
    }
    const [refused, fine] = await Promise.allSettled([twice.acquire(options), work()])
    expect(refused.status).toBe('rejected')
    expect((refused as PromiseRejectedResult).reason).toEqual(
      new Error('ssh://deploy@web1 and ssh://web1 are the same docker engine (the deploy lock taken through one is found through the other): list each host once in hosts')
    )
    expect(fine).toEqual({ status: 'fulfilled', value: ['other', 'other'] })
    expect([web1, web2].every((engine) => !engine.containers.has(LOCK))).toBe(true)
  })
})

describe('whole stories racing, seen through the owner watch', () => {
  const IMAGE = '127.0.0.1:5999/acme/web'

  function servingV1(clock: Clock, id: string): FakeDockerEngine {
    const engine = new FakeDockerEngine()
    engine.engineId = id
    engine.daemonNow = () => clock.now()
    engine.add({ name: 'web', image: `${IMAGE}:v1`, running: true, labels: { [Label.Tag]: 'v1' } })
    for (const tag of ['v2', 'v3', 'v4']) engine.images.add(`${IMAGE}:${tag}`)
    return engine
  }

  it.each([1, 2, 3, 4, 5, 6, 7, 8])('seed %i: two or three deploys (and their post steps) to 2–4 hosts spelled differently: each deploys in turn, one owner per host', async (seed) => {
    const next = random(seed)
    const clock = virtualClock()
    const hosts = 2 + (seed % 3)
    const runs = 2 + (seed % 2)
    const engines = Array.from({ length: hosts }, (_, index) => servingV1(clock, `ENGINE-${Math.floor(next() * 1000)}-${index}`))
    const watch = ownerWatch()
    const outcomes = await Promise.all(
      Array.from({ length: runs }, async (_, run): Promise<Outcome> => {
        const state = memoryStateStore()
        const order = shuffled(engines.map((_, index) => index), next)
        // The watch looks at the lock when the command reaches the engine, after its delay.
        const runners = (): Record<string, DockerRunner> =>
          Object.fromEntries(order.map((index) => [spelling(run, index), jittered(watch.engineFor(`run ${run}`, engines[index] as FakeDockerEngine, spelling(run, index), state), clock, next)]))
        const settings = testSettings({
          image: IMAGE,
          tag: `v${run + 2}`,
          hosts: order.map((index) => spelling(run, index)),
          rollout: { parallel: hosts, canary: false },
          health: { expectStatus: [200], headers: {}, intervalMs: 100, timeoutMs: 500, deadlineMs: 5_000, healthyThreshold: 2, watchMs: 2_000 },
          lock: { timeoutMs: 10 * MINUTE }
        })
        await clock.sleep(Math.floor(next() * SECOND))
        const outcome = await deploy(settings, new Reporter(), storyDependencies({ engines: runners(), state, clock }))
        await post(undefined, { state, settings: () => settings, dependencies: () => storyDependencies({ engines: runners(), state, clock }) })
        return outcome
      })
    )
    process.exitCode = undefined
    expect(watch.violations).toEqual([])
    expect(outcomes.map((outcome) => outcome.kind)).toEqual(Array.from({ length: runs }, () => 'deployed'))
    // The fleet ends on one version, the last run's to get the locks, with no lock left.
    const tags = engines.map((engine) => engine.describe('web').container?.tag)
    expect(new Set(tags).size).toBe(1)
    expect(engines.every((engine) => !engine.containers.has(LOCK))).toBe(true)
  })
})
