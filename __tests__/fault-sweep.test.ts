/**
 * The fault sweep: the whole deploy story (main step, then post step, as the runner runs them)
 * on the in-memory engine, with the k-th docker command failing, for every k, and separately
 * with a cancel before the k-th command. After each run the invariants of `src/outcome.ts` are
 * asserted on the engine's state and on what the run reported.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals'
import { resultOf, servingRelease, succeeded } from '../src/outcome.js'
import type { DeploySettings, StrategyName } from '../src/settings.js'
import { FakeDockerEngine } from '../test-support/fake-docker-engine.js'
import { ProxyDockerHost } from '../test-support/proxy-docker-host.js'
import { testSettings } from '../test-support/settings.js'
import { runStory, type SweptRun as Run } from '../test-support/sweep-story.js'

const IMAGE = 'registry.test/acme/web'

function settingsFor(strategy: StrategyName, change: Partial<DeploySettings> = {}): DeploySettings {
  return testSettings({
    image: IMAGE,
    strategy,
    health: { expectStatus: [200], headers: {}, intervalMs: 100, timeoutMs: 500, deadlineMs: 5_000, healthyThreshold: 2, watchMs: 1_000 },
    lock: { timeoutMs: 5_000 },
    swarm: { replicas: 1 },
    ...change
  })
}

/** An in-memory docker host a sweep can fail or cancel at its k-th command. */
interface Scenario {
  name: string
  /** Builds the engine as the runs before this one left it. */
  seed(strategy: StrategyName): Promise<FakeDockerEngine>
  settings(strategy: StrategyName): DeploySettings
  /** The version that served before the run, and the one the run tries to make serve. */
  before: string
  wanted: string
  /** Whether `wanted` can be shown healthy. */
  wantedIsGood: boolean
}

async function seeded(strategy: StrategyName, tags: string[], crashing: string[] = []): Promise<FakeDockerEngine> {
  const engine = new FakeDockerEngine()
  for (const tag of crashing) engine.crashingImages.add(`${IMAGE}:${tag}`)
  for (const tag of tags) {
    const run = await runStory(engine, settingsFor(strategy, { tag }))
    if (run.outcome.kind !== 'deployed') throw new Error(`seeding ${tag} did not deploy: ${run.outcome.kind}`)
  }
  return engine
}

const scenarios: Scenario[] = [
  {
    name: 'a healthy upgrade',
    seed: (strategy) => seeded(strategy, ['v1']),
    settings: (strategy) => settingsFor(strategy, { tag: 'v2' }),
    before: 'v1',
    wanted: 'v2',
    wantedIsGood: true
  },
  {
    name: 'a failed upgrade',
    seed: (strategy) => seeded(strategy, ['v1'], ['v2']),
    settings: (strategy) => settingsFor(strategy, { tag: 'v2' }),
    before: 'v1',
    wanted: 'v2',
    wantedIsGood: false
  },
  {
    name: 'a manual rollback',
    seed: (strategy) => seeded(strategy, ['v1', 'v2']),
    settings: (strategy) => settingsFor(strategy, { command: 'rollback', tag: 'v1' }),
    before: 'v2',
    wanted: 'v1',
    wantedIsGood: true
  }
]

/** What serves on the engine: the tag, when a good version serves at all. */
function serving(engine: FakeDockerEngine): string | undefined {
  const found = engine.describe('web')
  if (!found.serves) return undefined
  return found.service?.tag ?? found.container?.tag
}

/** The invariants of `src/outcome.ts`, after the main step and the post step. */
function assertInvariants(run: Run, scenario: Scenario, settings: DeploySettings, label: string): void {
  const { engine, outcome, exitCode } = run
  const found = engine.describe('web')
  const now = serving(engine)
  const context = `${label}: outcome ${outcome.kind}, serving ${now ?? 'nothing'}, containers ${[...engine.containers.keys()].join(',')}`
  // A good version serves: what served before, or the new one once shown healthy.
  expect([context, now === scenario.before || (now === scenario.wanted && scenario.wantedIsGood)]).toEqual([context, true])
  const result = resultOf(outcome)
  if (result === 'deployed') expect([context, now]).toEqual([context, scenario.wanted])
  if (result === 'rolled-back') expect([context, now]).toEqual([context, servingRelease(outcome)?.tag])
  if (settings.command === 'rollback' && exitCode === 0) expect([context, now]).toEqual([context, scenario.wanted])
  // The exit code follows the outcome.
  expect([context, exitCode]).toEqual([context, succeeded(outcome) ? 0 : 1])
  // The lock is released; nothing half-made is left.
  expect([context, found.lockHeld]).toEqual([context, false])
  expect([context, found.kept.filter((name) => name === 'web-next' || name === 'web-hook')]).toEqual([context, []])
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

describe.each(['replace', 'swarm'] as const)('fault sweep, strategy %s', (strategy) => {
  describe.each(scenarios)('$name', (scenario) => {
    it('ends as it should without a fault', async () => {
      const engine = await scenario.seed(strategy)
      const settings = scenario.settings(strategy)
      const run = await runStory(engine, settings)
      assertInvariants(run, scenario, settings, 'no fault')
      expect(serving(engine)).toBe(scenario.wantedIsGood ? scenario.wanted : scenario.before)
      expect(run.exitCode).toBe(scenario.wantedIsGood ? 0 : 1)
    })

    it('keeps every promise when the k-th docker command fails, for every k, before or after it took effect', async () => {
      const clean = await scenario.seed(strategy)
      const base = clean.commandCount
      await runStory(clean, scenario.settings(strategy))
      const commands = clean.commandCount - base
      expect(commands).toBeGreaterThan(5)
      for (const mode of ['before', 'after'] as const) {
        for (let k = 1; k <= commands; k++) {
          const engine = await scenario.seed(strategy)
          const settings = scenario.settings(strategy)
          const run = await runStory(engine, settings, { fault: { at: k, mode } })
          assertInvariants(run, scenario, settings, `fault ${mode} command ${k} of ${commands}`)
        }
      }
    })

    it('keeps every promise when cancelled before the k-th docker command, for every k, then the post step runs', async () => {
      const clean = await scenario.seed(strategy)
      const base = clean.commandCount
      await runStory(clean, scenario.settings(strategy))
      const commands = clean.commandCount - base
      expect(commands).toBeGreaterThan(5)
      for (let k = 1; k <= commands; k++) {
        const engine = await scenario.seed(strategy)
        const settings = scenario.settings(strategy)
        const run = await runStory(engine, settings, { cancelAt: k })
        assertInvariants(run, scenario, settings, `cancel before command ${k} of ${commands}`)
      }
    })
  })
})

// ---------------------------------------------------------------------------------------------
// strategy: proxy, on the HAProxy stand-in (proxy-docker-host.ts). What serves is what HAProxy
// routes to; the config file in the proxy must name that slot, so a restart of the proxy serves it.

const HAPROXY = 'haproxy:3.0-alpine'
const NEW_HAPROXY = 'haproxy:3.1-alpine'

function proxySettings(change: Partial<DeploySettings> = {}): DeploySettings {
  return testSettings({
    image: IMAGE,
    strategy: 'proxy',
    container: { ports: [], env: {}, secrets: [], volumes: [], labels: {}, init: true },
    health: { expectStatus: [200], headers: {}, intervalMs: 100, timeoutMs: 500, deadlineMs: 5_000, healthyThreshold: 2, watchMs: 1_000 },
    proxy: { port: 8080, bind: ['127.0.0.1'], appPort: 3000, image: HAPROXY, drainMs: 1_000, timeoutMs: 60_000, maxConnections: 4096 },
    lock: { timeoutMs: 5_000 },
    ...change
  })
}

interface ProxyScenario {
  name: string
  /** The tags deployed before the run, in order. */
  seed: string[]
  settings: DeploySettings
  before: string
  wanted: string
  wantedIsGood: boolean
  /** The wanted version dies once traffic is switched to it (a failure in the watch window). */
  diesAfterSwitch?: boolean
}

const proxyScenarios: ProxyScenario[] = [
  { name: 'a healthy upgrade', seed: ['v1'], settings: proxySettings({ tag: 'v2' }), before: 'v1', wanted: 'v2', wantedIsGood: true },
  { name: 'an upgrade that fails before the switch', seed: ['v1'], settings: proxySettings({ tag: 'v2-exits' }), before: 'v1', wanted: 'v2-exits', wantedIsGood: false },
  { name: 'an upgrade that dies after the switch', seed: ['v1'], settings: proxySettings({ tag: 'v2' }), before: 'v1', wanted: 'v2', wantedIsGood: false, diesAfterSwitch: true },
  { name: 'a manual rollback', seed: ['v1', 'v2'], settings: proxySettings({ command: 'rollback', tag: 'v1' }), before: 'v2', wanted: 'v1', wantedIsGood: true },
  // The proxy follows its settings: a changed timeout is a seamless reload, a changed image a new proxy container.
  {
    name: 'a healthy upgrade that reloads the proxy (proxy.timeout changed)',
    seed: ['v1'],
    settings: proxySettings({ tag: 'v2', proxy: { port: 8080, bind: ['127.0.0.1'], appPort: 3000, image: HAPROXY, drainMs: 1_000, timeoutMs: 90_000, maxConnections: 4096 } }),
    before: 'v1',
    wanted: 'v2',
    wantedIsGood: true
  },
  {
    name: 'a healthy upgrade that replaces the proxy (proxy.image changed)',
    seed: ['v1'],
    settings: proxySettings({ tag: 'v2', proxy: { port: 8080, bind: ['127.0.0.1'], appPort: 3000, image: NEW_HAPROXY, drainMs: 1_000, timeoutMs: 60_000, maxConnections: 4096 } }),
    before: 'v1',
    wanted: 'v2',
    wantedIsGood: true
  },
  {
    name: 'a failed upgrade that reloaded the proxy first (proxy.timeout changed)',
    seed: ['v1'],
    settings: proxySettings({ tag: 'v2-exits', proxy: { port: 8080, bind: ['127.0.0.1'], appPort: 3000, image: HAPROXY, drainMs: 1_000, timeoutMs: 90_000, maxConnections: 4096 } }),
    before: 'v1',
    wanted: 'v2-exits',
    wantedIsGood: false
  }
]

async function proxySeeded(scenario: ProxyScenario): Promise<ProxyDockerHost> {
  const host = new ProxyDockerHost([HAPROXY, NEW_HAPROXY, `${IMAGE}:v1`, `${IMAGE}:v2`, `${IMAGE}:v2-exits`])
  for (const tag of scenario.seed) {
    const run = await runStory(host, proxySettings({ tag }))
    if (run.outcome.kind !== 'deployed') throw new Error(`seeding ${tag} did not deploy: ${run.outcome.kind}`)
  }
  if (scenario.diesAfterSwitch) host.dieOnSwitchTo = scenario.wanted
  return host
}

function assertProxyInvariants(run: Run<ProxyDockerHost>, scenario: ProxyScenario, label: string): void {
  const { engine: host, outcome, exitCode } = run
  const now = host.proxy.servingTag()
  const context = `${label}: outcome ${outcome.kind}, serving ${now ?? 'nothing'}, containers ${host.proxy.describe().join(', ')}, routing ${host.proxy.routingHistory.join(' → ')}`
  // A good version serves: what served before, or the new one once shown healthy.
  expect([context, now === scenario.before || (now === scenario.wanted && scenario.wantedIsGood)]).toEqual([context, true])
  const result = resultOf(outcome)
  if (result === 'deployed') expect([context, now]).toEqual([context, scenario.wanted])
  if (result === 'rolled-back') expect([context, now]).toEqual([context, servingRelease(outcome)?.tag])
  if (scenario.settings.command === 'rollback' && exitCode === 0) expect([context, now]).toEqual([context, scenario.wanted])
  expect([context, exitCode]).toEqual([context, succeeded(outcome) ? 0 : 1])
  // A restart of the proxy serves what HAProxy routes to now.
  expect([context, host.proxy.configLive()]).toEqual([context, host.proxy.routedSlot()])
  // The lock is released; nothing half-made is left: the one running slot is the one users get.
  expect([context, host.rest.describe('web').lockHeld]).toEqual([context, false])
  const runningSlots = host.proxy.describe().filter((line) => /^web-(blue|green): running/.test(line))
  expect([context, runningSlots.length]).toEqual([context, 1])
}

describe('fault sweep, strategy proxy', () => {
  describe.each(proxyScenarios)('$name', (scenario) => {
    it('ends as it should without a fault', async () => {
      const host = await proxySeeded(scenario)
      const run = await runStory(host, scenario.settings)
      assertProxyInvariants(run, scenario, 'no fault')
      expect(host.proxy.servingTag()).toBe(scenario.wantedIsGood ? scenario.wanted : scenario.before)
      expect(run.exitCode).toBe(scenario.wantedIsGood ? 0 : 1)
    })

    it('keeps every promise when the k-th docker command fails, for every k, before or after it took effect', async () => {
      const clean = await proxySeeded(scenario)
      const base = clean.commandCount
      await runStory(clean, scenario.settings)
      const commands = clean.commandCount - base
      expect(commands).toBeGreaterThan(5)
      for (const mode of ['before', 'after'] as const) {
        for (let k = 1; k <= commands; k++) {
          const host = await proxySeeded(scenario)
          const run = await runStory(host, scenario.settings, { fault: { at: k, mode } })
          assertProxyInvariants(run, scenario, `fault ${mode} command ${k} of ${commands}`)
        }
      }
    })

    it('keeps every promise when cancelled before the k-th docker command, for every k, then the post step runs', async () => {
      const clean = await proxySeeded(scenario)
      const base = clean.commandCount
      await runStory(clean, scenario.settings)
      const commands = clean.commandCount - base
      expect(commands).toBeGreaterThan(5)
      for (let k = 1; k <= commands; k++) {
        const host = await proxySeeded(scenario)
        const run = await runStory(host, scenario.settings, { cancelAt: k })
        assertProxyInvariants(run, scenario, `cancel before command ${k} of ${commands}`)
      }
    })
  })
})
