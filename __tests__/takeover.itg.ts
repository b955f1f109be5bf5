/**
 * `replace` → `proxy` (issue 20) on a real private engine: the bundled action deploys v1 with
 * `strategy: replace` publishing 127.0.0.1:<port>, then v2 with `strategy: proxy` on the same port
 * while 40 keep-alive clients (every 5th a POST) run against it. The first proxy deploy takes the
 * port over from the `replace` container (src/strategies/takeover.ts):
 * - it succeeds, the gap is measured by the action and named in a warning, and the test prints it
 *   beside the requests that failed during the takeover (3 runs, for the median);
 * - afterwards only the proxy and the v2 slot run; the `replace` container is gone;
 * - a v2 that fails its check stops nothing: v1 (`replace`) serves throughout, and nothing of the
 *   proxy is left.
 *
 * Network: the engine's user networks come from 10.253.0.0/16 (as in proxy.itg.ts), the
 * `replace` containers' too (`container.network`: the engine has no default bridge); the test
 * talks to 127.0.0.1 only.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import type { ActionResult } from '../test-support/action-run.js'
import type { FakeGitHub } from '../test-support/fake-github.js'
import {
  containerStates,
  makeSite,
  proxySiteConfig,
  pushAppImages,
  pushProxyImage,
  runStep,
  servedAt,
  startFixture,
  transcriptOf,
  writeDeployConfig,
  type Fixture,
  type Site as FixtureSite
} from '../test-support/fixture.js'
import type { PushedHaproxyImage } from '../test-support/haproxy-image.js'
import { buildSlowAppImage } from '../test-support/images.js'
import { startLoad, type LoadResult } from '../test-support/load.js'
import { sleep } from '../test-support/proc.js'

const REPO = 'acme/shop'
const APP_PORT = 3000
const HEALTHY_BODY = 'status: green'
/** The user network of the `replace` containers (its subnet comes from the engine's pinned pool). */
const REPLACE_NETWORK = 'replace-net'

let fixture: Fixture & { github: FakeGitHub }
let engine: Fixture['engine']
let haproxy: PushedHaproxyImage
let image: string
/** The gap each healthy takeover reported, with the requests that failed during it. */
const measured: { gapMs: number; failed: number; windowMs: number }[] = []

beforeAll(async () => {
  fixture = await startFixture({ github: true, addressPool: 'base=10.253.0.0/16,size=24' })
  engine = fixture.engine
  image = `${fixture.registry.address}/${REPO}`
  const options = { port: APP_PORT, healthBody: HEALTHY_BODY }
  const slow = ['v1', 'v2'].map(async (tag) => {
    const app = await buildSlowAppImage(engine, 'local/shop', tag, options)
    const pushed = await fixture.registry.push(engine, app.reference, REPO, tag)
    await engine.docker(['image', 'rm', app.reference, pushed.reference])
  })
  const [pushedHaproxy] = await Promise.all([
    pushProxyImage(fixture),
    pushAppImages(fixture, REPO, [{ tag: 'v2-exits', behaviour: 'exits', options }], { localRepo: 'local/shop' }),
    ...slow
  ])
  haproxy = pushedHaproxy
  // The engine has no default bridge (--bridge=none): the `replace` container publishes its port from a user network.
  await engine.docker(['network', 'create', REPLACE_NETWORK])
}, 120_000)

afterAll(async () => {
  if (measured.length > 0) {
    const gaps = measured.map((entry) => entry.gapMs).sort((a, b) => a - b)
    console.log(`takeover.itg: gaps ${gaps.map((gap) => `${gap} ms`).join(', ')}; median ${gaps[Math.floor(gaps.length / 2)] ?? 0} ms; failed requests ${measured.map((entry) => entry.failed).join(', ')}`)
  }
  await fixture?.stop()
}, 90_000)

interface Site extends FixtureSite {
  url: string
}

async function site(name: string): Promise<Site> {
  const made = await makeSite(fixture.dirs, name)
  return { ...made, url: `http://127.0.0.1:${made.port}` }
}

/** The deploy config of `target` for `strategy`: the same app, image, port and health check. */
function writeConfig(target: Site, strategy: 'replace' | 'proxy'): void {
  if (strategy === 'proxy') {
    const config = proxySiteConfig({ image, name: target.name, port: target.port, appPort: APP_PORT, proxyImage: haproxy.pushed.reference, expectBody: HEALTHY_BODY, watch: '2s' })
    writeDeployConfig(target.workspace, config)
    return
  }
  const lines = [
    `image: ${image}`,
    `name: ${target.name}`,
    'strategy: replace',
    'container:',
    '  init: true',
    '  stop-timeout: 2s',
    `  ports: ["127.0.0.1:${target.port}:${APP_PORT}"]`,
    `  network: ${REPLACE_NETWORK}`,
    '  env:',
    '    BIND: 0.0.0.0',
    `    PORT: "${APP_PORT}"`,
    'health:',
    `  url: http://127.0.0.1:${target.port}/health`,
    `  expect-body: "${HEALTHY_BODY}"`,
    '  interval: 250ms',
    '  timeout: 3s',
    '  deadline: 12s',
    '  healthy-threshold: 2',
    '  watch: 2s',
    'rollback:',
    '  to: previous',
    ''
  ]
  writeDeployConfig(target.workspace, lines.join('\n'))
}

function act(target: Site, inputs: Record<string, string>): Promise<ActionResult> {
  return runStep(fixture, target, inputs, { timeoutMs: 100_000 })
}

/** Every container of the app: `<name>` and `<name>-*` (not the lock), name → tag label and state. */
function containersOf(name: string): Promise<Record<string, string>> {
  return containerStates(engine, name)
}

function version(target: Site): Promise<string> {
  return servedAt(`${target.url}/version`)
}

/** v1 with `strategy: replace` on the site's port. */
async function deployReplaceV1(target: Site): Promise<void> {
  writeConfig(target, 'replace')
  const result = await act(target, { tag: 'v1' })
  if (result.exitCode !== 0) throw new Error(transcriptOf(result))
  expect(await version(target)).toBe('200 v1')
  expect(await containersOf(target.name)).toEqual({ [target.name]: 'v1 running' })
}

/** `inputs` with `strategy: proxy` under 40 keep-alive clients. */
async function proxyDeployUnderLoad(target: Site, inputs: Record<string, string>): Promise<{ action: ActionResult; load: LoadResult }> {
  writeConfig(target, 'proxy')
  const load = startLoad({ url: target.url, clients: 40, postEvery: 5, postPath: '/cgi-bin/version', durationMs: 120_000, requestTimeoutMs: 20_000 })
  let action: ActionResult
  try {
    await sleep(500)
    action = await act(target, inputs)
    await sleep(500)
  } finally {
    await load.stop()
  }
  return { action, load: await load.done }
}

describe('replace → proxy: the first proxy deploy takes the port over', () => {
  it.each([1, 2, 3])('run %i: succeeds with the gap measured and named in a warning; only the proxy and the v2 slot run after', async (run) => {
    const target = await site(`shop${run}`)
    await deployReplaceV1(target)
    const { action, load } = await proxyDeployUnderLoad(target, { tag: 'v2' })
    if (action.exitCode !== 0) throw new Error(transcriptOf(action))
    expect(action.outputs).toMatchObject({ result: 'deployed', tag: 'v2', 'previous-tag': 'v1' })
    const warning = action.annotations.find((entry) => entry.level === 'warning' && entry.title === 'Deploy · switch' && entry.message.includes('took over port'))?.message ?? ''
    const gap = /refused for ([\d.]+) s/.exec(warning)
    expect(warning).toMatch(new RegExp(`${target.name}-proxy took over port ${target.port} on local from ${target.name} \\(strategy replace\\)`))
    expect(gap).not.toBeNull()
    const gapMs = Math.round(Number(gap?.[1]) * 1000)
    // The summary's steps table carries the same warning (its detail is HTML-escaped).
    expect(action.summary).toContain(`refused for ${gap?.[1] ?? '?'} s`)
    measured.push({ gapMs, failed: load.failed, windowMs: load.failureWindow?.ms ?? 0 })
    console.log(
      `takeover.itg run ${run}: gap ${gapMs} ms (the action's measure); ${load.ok} ok, ${load.failed} failed ${JSON.stringify(load.failuresByCode)}` +
        `${load.failureWindow ? ` over ${load.failureWindow.ms} ms` : ''}; outages ${load.outages.map((outage) => `${outage.ms} ms (${outage.failed} failed)`).join(', ') || 'none'}; ` +
        `bodies ${JSON.stringify(Object.fromEntries(Object.entries(load.bodies).map(([body, count]) => [body, count.count])))}`
    )
    // Users were on v1 before and on v2 after; what failed failed inside the takeover's window.
    expect(load.bodies.v1?.count).toBeGreaterThan(0)
    expect(load.bodies.v2?.count).toBeGreaterThan(0)
    expect(load.bodies.v2!.lastAt).toBeGreaterThan(load.bodies.v1!.lastAt)
    expect(await version(target)).toBe('200 v2')
    expect(await containersOf(target.name)).toEqual({ [`${target.name}-proxy`]: '- running', [`${target.name}-blue`]: 'v2 running' })
    expect((await engine.docker(['port', `${target.name}-proxy`])).trim()).toBe(`8080/tcp -> 127.0.0.1:${target.port}`)
  }, 180_000)

  it('a v2 that fails its check stops nothing: v1 (replace) serves throughout, nothing of the proxy is left', async () => {
    const target = await site('failing')
    await deployReplaceV1(target)
    const startedBefore = (await engine.docker(['inspect', '--format', '{{.Id}} {{.State.StartedAt}}', target.name])).trim()
    const { action, load } = await proxyDeployUnderLoad(target, { tag: 'v2-exits' })
    expect(action.exitCode).toBe(1)
    expect(action.outputs).toMatchObject({ result: 'rolled-back', tag: 'v1' })
    expect(action.stdout).toMatch(/was checked before the switch and no user request reached it/)
    expect(action.annotations.some((entry) => entry.message.includes('took over port'))).toBe(false)
    // Never stopped: the same container, started once; every request was answered by v1.
    expect((await engine.docker(['inspect', '--format', '{{.Id}} {{.State.StartedAt}}', target.name])).trim()).toBe(startedBefore)
    expect(load.failures.slice(0, 5)).toEqual([])
    expect(load.failed).toBe(0)
    expect(Object.keys(load.bodies)).toEqual(['v1'])
    expect(await version(target)).toBe('200 v1')
    expect(await containersOf(target.name)).toEqual({ [target.name]: 'v1 running' })
    const networks = await engine.docker(['network', 'ls', '--format', '{{.Name}}'])
    expect(networks.split('\n')).not.toContain(`${target.name}-net`)
  }, 180_000)
})
