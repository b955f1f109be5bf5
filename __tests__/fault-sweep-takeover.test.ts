/**
 * The fault sweep of the `replace` → `proxy` takeover (issue 20): a host where `strategy: replace`
 * deployed v1, publishing 127.0.0.1:8080, then a `strategy: proxy` deploy on the same port (see
 * src/strategies/takeover.ts), on one in-memory host (test-support/takeover-host.ts). For every k
 * the k-th docker command fails, before it takes effect and after; separately the run is
 * cancelled before the k-th command; the post step runs after each, as on a runner.
 *
 * Scenarios: a healthy takeover; a new version that fails its check (nothing may be stopped); a
 * new version that dies as soon as the proxy routes to it (after the stop: the `replace`
 * container must come back).
 *
 * After every run and its post step: a good version serves on the port (v1 from the `replace`
 * container, or v2 through the proxy once shown healthy), the outcome and exit code say which,
 * the lock is released, no check proxy or `-next` is left; with v1 serving nothing of the proxy
 * strategy runs; with v2 deployed the `replace` container is gone and the proxy's file names the
 * slot it routes to.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals'
import { resultOf, servingRelease, succeeded } from '../src/outcome.js'
import { runStory, type SweptRun } from '../test-support/sweep-story.js'
import { proxySettings, replaceSettings, TakeoverDockerHost } from '../test-support/takeover-host.js'

const IMAGE = 'registry.test/acme/web'
const HAPROXY = 'haproxy:3.0-alpine'

interface Scenario {
  name: string
  wanted: string
  wantedIsGood: boolean
  diesAfterSwitch?: boolean
}

const scenarios: Scenario[] = [
  { name: 'a healthy takeover', wanted: 'v2', wantedIsGood: true },
  { name: 'a takeover whose new version fails its check', wanted: 'v2-exits', wantedIsGood: false },
  { name: 'a takeover whose new version dies as the proxy routes to it', wanted: 'v2', wantedIsGood: false, diesAfterSwitch: true }
]

async function seeded(scenario: Scenario): Promise<TakeoverDockerHost> {
  const host = new TakeoverDockerHost([HAPROXY, ...['v1', 'v2', 'v2-exits'].map((tag) => `${IMAGE}:${tag}`)])
  const run = await runStory(host, replaceSettings('v1'))
  if (run.outcome.kind !== 'deployed') throw new Error(`seeding v1 did not deploy: ${run.outcome.kind}`)
  if (scenario.diesAfterSwitch) host.dieOnSwitchTo = scenario.wanted
  return host
}

function assertInvariants(run: SweptRun<TakeoverDockerHost>, scenario: Scenario, label: string): void {
  const { engine: host, outcome, exitCode } = run
  const now = host.servingTag()
  const containers = host.describe()
  const context = `${label}: outcome ${outcome.kind}, serving ${now ?? 'nothing'}, containers ${containers.join(', ')}, routing ${host.proxy.routingHistory.join(' → ')}`
  // A good version serves: v1 from the replace container, or the new one once shown healthy.
  expect([context, now === 'v1' || (now === scenario.wanted && scenario.wantedIsGood)]).toEqual([context, true])
  const result = resultOf(outcome)
  if (result === 'deployed') expect([context, now]).toEqual([context, scenario.wanted])
  if (result === 'rolled-back') expect([context, now]).toEqual([context, servingRelease(outcome)?.tag])
  expect([context, exitCode]).toEqual([context, succeeded(outcome) ? 0 : 1])
  // The lock is released; no check proxy or -next is left.
  expect([context, host.rest.describe('web').lockHeld]).toEqual([context, false])
  expect([context, containers.filter((line) => /^web-(proxy-check|next):/.test(line))]).toEqual([context, []])
  if (now === 'v1') {
    // The replace container serves: nothing of the proxy strategy runs beside it.
    expect([context, containers.filter((line) => /^web-(blue|green|proxy)\S*: running/.test(line))]).toEqual([context, []])
  } else {
    // The proxy serves: the replace container is gone, the file names the routed slot, one slot runs.
    expect([context, containers.filter((line) => line.startsWith('web:'))]).toEqual([context, []])
    expect([context, host.proxy.configLive()]).toEqual([context, host.proxy.routedSlot()])
    expect([context, containers.filter((line) => /^web-(blue|green): running/.test(line)).length]).toEqual([context, 1])
  }
}

let restoreWrite: (() => void) | undefined
beforeAll(() => {
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation(() => true)
  restoreWrite = () => spy.mockRestore()
  delete process.env.GITHUB_STATE
  delete process.env.GITHUB_OUTPUT
  delete process.env.GITHUB_STEP_SUMMARY
})
afterAll(() => restoreWrite?.())

describe('fault sweep, replace → proxy takeover', () => {
  describe.each(scenarios)('$name', (scenario) => {
    it('ends as it should without a fault', async () => {
      const host = await seeded(scenario)
      const run = await runStory(host, proxySettings(scenario.wanted))
      assertInvariants(run, scenario, 'no fault')
      expect(host.servingTag()).toBe(scenario.wantedIsGood ? scenario.wanted : 'v1')
      expect(run.exitCode).toBe(scenario.wantedIsGood ? 0 : 1)
    })

    it('keeps every promise when the k-th docker command fails, for every k, before or after it took effect', async () => {
      const clean = await seeded(scenario)
      const base = clean.commandCount
      await runStory(clean, proxySettings(scenario.wanted))
      const commands = clean.commandCount - base
      expect(commands).toBeGreaterThan(10)
      for (const mode of ['before', 'after'] as const) {
        for (let k = 1; k <= commands; k++) {
          const host = await seeded(scenario)
          const run = await runStory(host, proxySettings(scenario.wanted), { fault: { at: k, mode } })
          assertInvariants(run, scenario, `fault ${mode} command ${k} of ${commands}`)
        }
      }
    })

    it('keeps every promise when cancelled before the k-th docker command, for every k, then the post step runs', async () => {
      const clean = await seeded(scenario)
      const base = clean.commandCount
      await runStory(clean, proxySettings(scenario.wanted))
      const commands = clean.commandCount - base
      for (let k = 1; k <= commands; k++) {
        const host = await seeded(scenario)
        const run = await runStory(host, proxySettings(scenario.wanted), { cancelAt: k })
        assertInvariants(run, scenario, `cancel before command ${k} of ${commands}`)
      }
    })
  })
})
