/**
 * `strategy: proxy` with `hosts:`: a proxy per host, and the same all-or-nothing rule as the other
 * strategies, told through the whole story (`deploy`) on in-memory hosts (proxy-docker-host.ts).
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals'
import { deploy } from '../src/main.js'
import type { Outcome } from '../src/outcome.js'
import { Reporter } from '../src/report/reporter.js'
import type { DeploySettings } from '../src/settings.js'
import { ProxyDockerHost } from '../test-support/proxy-docker-host.js'
import { testSettings } from '../test-support/settings.js'
import { storyDependencies, virtualClock } from '../test-support/story.js'

const IMAGE = '127.0.0.1:5999/acme/web'
const HAPROXY = 'haproxy:3.0-alpine'
const HOSTS = ['ssh://h1', 'ssh://h2', 'ssh://h3']

function settings(tag: string, overrides: Partial<DeploySettings> = {}): DeploySettings {
  return testSettings({
    image: IMAGE,
    tag,
    strategy: 'proxy',
    container: { ports: [], env: {}, secrets: [], volumes: [], labels: {}, init: true },
    // No URL: the story's verify would probe 127.0.0.1:8080 for real. The slots' state is checked.
    health: { expectStatus: [200], headers: {}, intervalMs: 100, timeoutMs: 500, deadlineMs: 3_000, healthyThreshold: 2, watchMs: 0 },
    proxy: { port: 8080, bind: ['127.0.0.1'], appPort: 3000, image: HAPROXY, drainMs: 1_000, timeoutMs: 60_000, maxConnections: 4096 },
    lock: { timeoutMs: 5_000 },
    hosts: HOSTS,
    rollout: { parallel: 3, canary: false },
    ...overrides
  })
}

async function run(hosts: Record<string, ProxyDockerHost>, deploySettings: DeploySettings): Promise<Outcome> {
  const outcome = await deploy(deploySettings, new Reporter(), storyDependencies({ engines: hosts, clock: virtualClock() }))
  process.exitCode = undefined
  return outcome
}

function hostOf(hosts: Record<string, ProxyDockerHost>, host: string): ProxyDockerHost {
  const found = hosts[host]
  if (!found) throw new Error(`no test host ${host}`)
  return found
}

/** The tag of the slot each host's proxy routes to. */
function routed(hosts: Record<string, ProxyDockerHost>): string[] {
  return HOSTS.map((host) => (hosts[host] as ProxyDockerHost).proxy.routingHistory.at(-1)?.split('=')[1] ?? '-')
}

async function fleetOnV1(): Promise<Record<string, ProxyDockerHost>> {
  const hosts = Object.fromEntries(HOSTS.map((host) => [host, new ProxyDockerHost([HAPROXY, `${IMAGE}:v1`, `${IMAGE}:v2`])]))
  const outcome = await run(hosts, settings('v1'))
  expect(outcome.kind).toBe('deployed')
  return hosts
}

beforeAll(() => {
  jest.spyOn(process.stdout, 'write').mockImplementation(() => true)
})
afterAll(() => {
  jest.restoreAllMocks()
})

describe('strategy: proxy on three hosts', () => {
  it('a first deploy gives each host its own proxy and slot; an upgrade switches every host', async () => {
    const hosts = await fleetOnV1()
    for (const host of HOSTS) expect(hostOf(hosts, host).proxy.describe()).toEqual(['web-blue: running v1', 'web-proxy: running'])
    const outcome = await run(hosts, settings('v2'))
    expect(outcome.kind).toBe('deployed')
    expect(routed(hosts)).toEqual(['v2', 'v2', 'v2'])
    for (const host of HOSTS) expect(hostOf(hosts, host).proxy.configLive()).toBe('green')
  })

  it('docker refuses the new slot on host 3 (parallel: 1): hosts 1 and 2, already switched, go back to v1', async () => {
    const hosts = await fleetOnV1()
    hostOf(hosts, 'ssh://h3').refuseCreate = true
    const outcome = await run(hosts, settings('v2', { rollout: { parallel: 1, canary: false } }))
    expect(outcome.kind).toBe('rolled-back')
    expect(routed(hosts)).toEqual(['v1', 'v1', 'v1'])
    // Hosts 1 and 2 served v2 before going back; host 3 never routed anywhere but v1.
    expect(hostOf(hosts, 'ssh://h1').proxy.routingHistory).toEqual(['blue=v1', 'green=v2', 'blue=v1'])
    expect(hostOf(hosts, 'ssh://h3').proxy.routingHistory).toEqual(['blue=v1'])
    for (const host of HOSTS) expect(hostOf(hosts, host).proxy.configLive()).toBe('blue')
  })

  it('the new version dies on host 2 after the switch (parallel: 3): every host switches back at once, then is restored', async () => {
    const hosts = await fleetOnV1()
    hostOf(hosts, 'ssh://h2').dieOnSwitchTo = 'v2'
    const reporter = new Reporter()
    const outcome = await deploy(settings('v2'), reporter, storyDependencies({ engines: hosts, clock: virtualClock() }))
    process.exitCode = undefined
    expect(outcome.kind).toBe('rolled-back')
    expect(routed(hosts)).toEqual(['v1', 'v1', 'v1'])
    // One switch-back step per switched host, before any restore step.
    const titles = reporter.steps.map((step) => step.title)
    const switchBacks = titles.filter((title) => title.startsWith('Rollback · switch back'))
    expect(switchBacks).toHaveLength(3)
    expect(titles.findIndex((title) => title.startsWith('Rollback · restore'))).toBeGreaterThan(Math.max(...switchBacks.map((title) => titles.indexOf(title))))
    for (const step of reporter.steps.filter((entry) => entry.title.startsWith('Rollback · switch back'))) expect(step.detail).toMatch(/users are back on v1/)
    for (const host of HOSTS) expect(hostOf(hosts, host).proxy.describe()).toEqual(['web-blue: running v1', 'web-green: exited v2', 'web-proxy: running'])
  })
})
