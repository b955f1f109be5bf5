/**
 * `strategy: proxy` (issue 11) on a real private engine: the bundled action (dist/index.js) deploys
 * an app behind HAProxy while 40 keep-alive clients and 10 slow requests run through the proxy's
 * loopback port, and every scenario counts what the users saw:
 * - a healthy upgrade, a manual rollback: 0 failed requests;
 * - never-healthy, crashing and wrong-body upgrades: 0 failed requests, and the broken version
 *   answers none of them (result rolled-back, tag = what still serves, exit 1);
 * - a version that dies during the watch window: failures for at most 1.5 s, then the old one;
 * - `docker restart <name>-proxy` comes back serving the live version;
 * - proxy.port already taken on a first deploy: a clear error naming the port, nothing left running.
 *
 * Network: the engine's user networks come from 10.253.0.0/16 and its containers get
 * `--dns 127.0.0.1` (see proxy-groundwork.itg.ts). The test talks to 127.0.0.1 only.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runAction, type ActionResult } from '../test-support/action-run.js'
import { startEngine, type Engine } from '../test-support/engine.js'
import { start as startFakeGitHub, type FakeGitHub } from '../test-support/fake-github.js'
import { removeContainersAndNetworks } from '../test-support/fixture.js'
import { pushHaproxyImage, type PushedHaproxyImage } from '../test-support/haproxy-image.js'
import { buildAppImage, buildSlowAppImage, type AppImage } from '../test-support/images.js'
import { startLoad, type LoadResult } from '../test-support/load.js'
import { freePort, httpGet, waitForHttp } from '../test-support/net.js'
import { sleep } from '../test-support/proc.js'
import { startRegistry, type Registry } from '../test-support/registry.js'

const REPO = 'acme/shop'
const APP_PORT = 3000
const HEALTHY_BODY = 'status: green'
/** Seconds a slow request takes: long enough to be in flight across the switch. */
const SLOW_SECONDS = 6

let engine: Engine
let registry: Registry
let github: FakeGitHub
let haproxy: PushedHaproxyImage
let image: string
const workspaces: string[] = []

beforeAll(async () => {
  engine = await startEngine({ extraDaemonArgs: ['--default-address-pool', 'base=10.253.0.0/16,size=24', '--dns', '127.0.0.1'] })
  registry = await startRegistry(engine)
  github = await startFakeGitHub()
  image = `${registry.address}/${REPO}`
  const options = { port: APP_PORT, healthBody: HEALTHY_BODY }
  const builds: Promise<[string, AppImage]>[] = [
    ...['v1', 'v2', 'v3'].map(async (tag) => [tag, await buildSlowAppImage(engine, 'local/shop', tag, options)] as [string, AppImage]),
    buildAppImage(engine, 'local/shop', 'v4-never-listens', 'never-listens', options).then((built) => ['v4-never-listens', built]),
    buildAppImage(engine, 'local/shop', 'v4-exits', 'exits', options).then((built) => ['v4-exits', built]),
    buildAppImage(engine, 'local/shop', 'v4-wrong-body', 'wrong-body', { port: APP_PORT }).then((built) => ['v4-wrong-body', built])
  ]
  const [pushedHaproxy, ...built] = await Promise.all([pushHaproxyImage(engine, registry), ...builds])
  haproxy = pushedHaproxy
  for (const [tag, app] of built) {
    const pushed = await registry.push(engine, app.reference, REPO, tag)
    await engine.docker(['image', 'rm', app.reference, pushed.reference])
  }
  // The action pulls the proxy image itself, like the app's.
  await engine.docker(['image', 'rm', haproxy.pushed.reference, haproxy.reference])
}, 120_000)

afterAll(async () => {
  await github?.stop()
  await registry?.stop()
  await removeContainersAndNetworks(engine)
  await engine?.stop()
  await Promise.all(workspaces.map((dir) => rm(dir, { recursive: true, force: true })))
}, 90_000)

interface Site {
  name: string
  port: number
  url: string
  workspace: string
}

async function site(name: string, port?: number): Promise<Site> {
  const chosen = port ?? (await freePort())
  const workspace = mkdtempSync(join(tmpdir(), `deploy-action-proxy-${name}-`))
  workspaces.push(workspace)
  mkdirSync(join(workspace, '.github'))
  const config = [
    `image: ${image}`,
    `name: ${name}`,
    'strategy: proxy',
    'proxy:',
    `  port: ${chosen}`,
    '  bind: 127.0.0.1',
    `  app-port: ${APP_PORT}`,
    `  image: ${haproxy.pushed.reference}`,
    '  drain: 10s',
    'container:',
    '  init: true',
    '  stop-timeout: 2s',
    '  env:',
    '    BIND: 0.0.0.0',
    `    PORT: "${APP_PORT}"`,
    `    SLOW_SECONDS: "${SLOW_SECONDS}"`,
    'health:',
    `  url: http://127.0.0.1:${chosen}/health`,
    `  expect-body: "${HEALTHY_BODY}"`,
    '  interval: 250ms',
    '  timeout: 3s',
    '  deadline: 12s',
    '  healthy-threshold: 2',
    '  watch: 5s',
    'rollback:',
    '  to: previous',
    ''
  ].join('\n')
  writeFileSync(join(workspace, '.github', 'deploy.yml'), config)
  return { name, port: chosen, url: `http://127.0.0.1:${chosen}`, workspace }
}

function act(target: Site, inputs: Record<string, string>, onStdout?: (chunk: string) => void): Promise<ActionResult> {
  return runAction({
    workspace: target.workspace,
    dockerHost: engine.dockerHost,
    github: { apiUrl: github.url },
    inputs: { 'registry-username': registry.username, 'registry-password': registry.password, ...inputs },
    // Below the tests' own 120 s: a hung action is killed and its transcript's tail reported.
    timeoutMs: 100_000,
    ...(onStdout && { onStdout: (chunk: string) => onStdout(chunk) })
  })
}

function transcriptOf(result: ActionResult): string {
  return `exit ${String(result.exitCode)}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`
}

/** The bodies users got, by body, with counts. */
function bodies(result: LoadResult): Record<string, number> {
  return Object.fromEntries(Object.entries(result.bodies).map(([body, count]) => [body, count.count]))
}

/** Runs the action under load: 40 keep-alive clients (every 5th a POST) and 10 slow requests. */
async function underLoad(
  target: Site,
  inputs: Record<string, string>,
  options: { onStdout?: (chunk: string, load: ReturnType<typeof startLoad>) => void; label: string }
): Promise<{ action: ActionResult; load: LoadResult; diagnosis: string }> {
  const load = startLoad({
    url: target.url,
    clients: 40,
    postEvery: 5,
    postPath: '/cgi-bin/version',
    slowRequests: 10,
    durationMs: 120_000,
    requestTimeoutMs: 20_000
  })
  let action: ActionResult
  try {
    // Users are on the old version before the deploy begins.
    await sleep(500)
    action = await act(target, inputs, (chunk) => {
      // The slow requests start as the switch step begins: in flight on the old version across the switch.
      if (chunk.includes('Deploy · switch') || chunk.includes('Rollback · switch')) load.startSlow()
      options.onStdout?.(chunk, load)
    })
    load.startSlow()
    await sleep(500)
  } finally {
    await load.stop()
  }
  // PROXY_ITG_TRANSCRIPTS=<dir> keeps each run's whole transcript, for looking into a failure.
  const transcripts = process.env.PROXY_ITG_TRANSCRIPTS
  if (transcripts) writeFileSync(join(transcripts, `${options.label.replace(/\W+/g, '-')}.txt`), transcriptOf(action))
  const result = await load.done
  const proxyLog = result.failed > 0 ? (await engine.dockerResult(['logs', '--tail', '40', `${target.name}-proxy`])).stdout : ''
  console.log(
    `proxy.itg ${options.label}: result=${action.outputs.result} tag=${action.outputs.tag} exit=${String(action.exitCode)}; ` +
      `${result.ok} ok, ${result.failed} failed ${JSON.stringify(result.failuresByCode)}` +
      `${result.failureWindow ? ` over ${result.failureWindow.ms} ms` : ''}; bodies ${JSON.stringify(bodies(result))}; ` +
      `slow: ${result.slow.map((slow) => `${slow.body ?? slow.code ?? slow.status}`).join(', ')}; ` +
      `steps: ${[...action.stdout.matchAll(/^::(?:notice|warning|error) title=([^:]+)::.*?\(([\d.]+ m?s)\)$/gm)].map((match) => `${match[1] ?? ''} ${match[2] ?? ''}`).join(', ')}` +
      (proxyLog ? `\nproxy log:\n${proxyLog}` : '')
  )
  const diagnosis =
    `${options.label}: ${result.failed} failed; first failures (ms after the load began): ` +
    result.failures.slice(0, 10).map((failure) => `${failure.at - result.startedAt} ${failure.kind} ${failure.code} ${failure.message}`).join(' | ') +
    `\nsteps: ${[...action.stdout.matchAll(/^::(?:notice|warning|error) title=([^:]+)::(.*)$/gm)].map((match) => `${match[1] ?? ''}: ${(match[2] ?? '').slice(0, 160)}`).join(' | ')}` +
    (proxyLog ? `\nproxy log (last lines):\n${proxyLog.trim().split('\n').slice(-15).join('\n')}` : '')
  return { action, load: result, diagnosis }
}

/**
 * Runs `assertions`; when one fails, its message carries `diagnosis` (the failed requests, the
 * steps, HAProxy's log of failed requests), which jest repeats in the summary at the end of the
 * run, so a CI log cut in the middle still says why.
 */
function explained(diagnosis: string, assertions: () => void | Promise<void>): Promise<void> {
  return Promise.resolve()
    .then(assertions)
    .catch((error: unknown) => {
      if (error instanceof Error) error.message = `${error.message}\n--- why ---\n${diagnosis}`
      throw error
    })
}

/** Every container of the engine whose name starts with `<name>-`: name → tag label and state. */
async function containersOf(name: string): Promise<Record<string, string>> {
  const listed = await engine.docker(['ps', '-a', '--format', '{{.Names}}\t{{.Label "deploy-action.tag"}}\t{{.State}}'])
  const result: Record<string, string> = {}
  for (const line of listed.split('\n').filter(Boolean)) {
    const [container = '', tag = '', state = ''] = line.split('\t')
    if (container.startsWith(`${name}-`) && !container.endsWith('-deploy-lock')) result[container] = `${tag || '-'} ${state}`
  }
  return result
}

async function version(target: Site): Promise<string> {
  try {
    const response = await httpGet(`${target.url}/version`, { timeoutMs: 2_000 })
    return `${response.status} ${response.body}`
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error)
  }
}

function expectNoFailures(load: LoadResult): void {
  expect(load.failures.slice(0, 5)).toEqual([])
  expect(load.failed).toBe(0)
  expect(load.ok).toBeGreaterThan(200)
  expect(load.slow).toHaveLength(10)
}

describe('strategy: proxy under load', () => {
  let shop: Site

  beforeAll(async () => {
    shop = await site('shop')
  })

  it('first deploy: creates the network, the proxy and slot blue, and serves v1', async () => {
    const result = await act(shop, { tag: 'v1' })
    if (result.exitCode !== 0) throw new Error(transcriptOf(result))
    expect(result.outputs).toMatchObject({ result: 'deployed', tag: 'v1' })
    expect(await version(shop)).toBe('200 v1')
    expect(await containersOf('shop')).toEqual({ 'shop-proxy': '- running', 'shop-blue': 'v1 running' })
    // Only the proxy publishes, on the configured address; the runtime API is not published.
    expect((await engine.docker(['port', 'shop-proxy'])).trim()).toBe(`8080/tcp -> 127.0.0.1:${shop.port}`)
    expect((await engine.docker(['port', 'shop-blue'])).trim()).toBe('')
    const subnet = await engine.docker(['network', 'inspect', '--format', '{{range .IPAM.Config}}{{.Subnet}}{{end}}', 'shop-net'])
    expect(subnet.trim()).toMatch(/^10\.253\.\d+\.0\/24$/)
  }, 120_000)

  it('healthy upgrade v1 → v2: 0 failed requests, slow requests finish on v1, v1 kept stopped', async () => {
    const { action, load, diagnosis } = await underLoad(shop, { tag: 'v2' }, { label: 'healthy upgrade' })
    if (action.exitCode !== 0) throw new Error(transcriptOf(action))
    expect(action.outputs).toMatchObject({ result: 'deployed', tag: 'v2', 'previous-tag': 'v1' })
    await explained(diagnosis, () => expectNoFailures(load))
    expect(load.bodies.v1?.count).toBeGreaterThan(0)
    expect(load.bodies.v2?.count).toBeGreaterThan(0)
    // Started on v1 as the switch step began, finished there through the drain.
    for (const slow of load.slow) expect(slow).toMatchObject({ ok: true, body: 'v1 slow' })
    expect(await containersOf('shop')).toEqual({ 'shop-proxy': '- running', 'shop-green': 'v2 running', 'shop-blue': 'v1 exited' })
  }, 120_000)

  it('command: rollback to v1 reuses the stopped slot: 0 failed requests', async () => {
    const blueId = (await engine.docker(['inspect', '--format', '{{.Id}}', 'shop-blue'])).trim()
    const { action, load, diagnosis } = await underLoad(shop, { command: 'rollback', 'rollback-to': 'v1' }, { label: 'manual rollback' })
    if (action.exitCode !== 0) throw new Error(transcriptOf(action))
    expect(action.outputs).toMatchObject({ result: 'rolled-back', tag: 'v1' })
    await explained(diagnosis, () => expectNoFailures(load))
    expect(load.bodies.v1?.count).toBeGreaterThan(0)
    expect((await engine.docker(['inspect', '--format', '{{.Id}}', 'shop-blue'])).trim()).toBe(blueId)
    expect(await containersOf('shop')).toEqual({ 'shop-proxy': '- running', 'shop-blue': 'v1 running', 'shop-green': 'v2 exited' })
  }, 120_000)

  it.each([
    ['never healthy', 'v4-never-listens', /did not succeed|never|connection refused/],
    ['crashing at start', 'v4-exits', /exited|restart/],
    ['wrong body', 'v4-wrong-body', /body does not contain/]
  ])('a %s upgrade never reaches a user: 0 failed requests, rolled-back, tag v1', async (label, tag, reason) => {
    const { action, load, diagnosis } = await underLoad(shop, { tag }, { label })
    await explained(diagnosis, () => {
      expect(action.exitCode).toBe(1)
      expect(action.outputs).toMatchObject({ result: 'rolled-back', tag: 'v1' })
      expect(action.stdout).toMatch(reason)
      expect(action.stdout).toMatch(/Nothing that served was touched: v1 still runs/)
      expectNoFailures(load)
    })
    // Only v1 answered.
    expect(Object.keys(load.bodies).sort()).toEqual(['v1', 'v1 slow'])
    expect(await containersOf('shop')).toEqual({ 'shop-proxy': '- running', 'shop-blue': 'v1 running', 'shop-green': `${tag} exited` })
  }, 120_000)

  it('a version that dies during the watch is switched back: failures for at most 1.5 s', async () => {
    let killedAt = 0
    const { action, load, diagnosis } = await underLoad(
      shop,
      { tag: 'v3' },
      {
        label: 'dies during the watch',
        onStdout: (chunk) => {
          if (killedAt !== 0 || !chunk.includes('Deploy · verify')) return
          killedAt = -1
          // Inside the 5 s watch: the new version is healthy and serving, then dies.
          void sleep(1_000).then(async () => {
            killedAt = Date.now()
            await engine.docker(['kill', 'shop-green'])
          })
        }
      }
    )
    expect(killedAt).toBeGreaterThan(0)
    expect(action.exitCode).toBe(1)
    expect(action.outputs).toMatchObject({ result: 'rolled-back', tag: 'v1' })
    expect(load.bodies.v3?.count).toBeGreaterThan(0)
    expect(load.bodies.v1!.lastAt).toBeGreaterThan(killedAt)
    const window = load.failureWindow?.ms ?? 0
    const verifyError = action.annotations.find((entry) => entry.level === 'error' && entry.title === 'Deploy · verify')?.message ?? ''
    console.log(
      `proxy.itg dies during the watch: ${load.failed} failed, window ${window} ms, last failure ${load.failureWindow ? load.failureWindow.lastAt - killedAt : 0} ms after the kill; ` +
        `failures at (ms after the kill): ${load.failures.map((failure) => `${failure.at - killedAt} ${failure.code}`).join(', ')}; verify: ${verifyError}; ` +
        `user-visible outages: ${load.outages.map((outage) => `${outage.ms} ms (${outage.failed} failed)`).join(', ') || 'none'}; ` +
        `switch back: ${action.annotations.find((entry) => entry.title === 'Rollback · switch back')?.message ?? ''}; ` +
        `restore: ${action.annotations.find((entry) => entry.title === 'Rollback · restore')?.message ?? ''}`
    )
    await explained(`${diagnosis}\nkilled at ${killedAt - load.startedAt} ms after the load began`, () => {
      expect(window).toBeLessThanOrEqual(1_500)
      for (const failure of load.failures) expect(failure.at).toBeGreaterThanOrEqual(killedAt)
    })
    // Users went back to v1 with one runtime-API batch, before the evidence and the restore.
    expect(action.annotations.find((entry) => entry.title === 'Rollback · switch back')?.message).toMatch(/users are back on v1/)
    expect(await version(shop)).toBe('200 v1')
  }, 120_000)

  it('dry run: plans the slot, the runtime-API batches and the config, and changes nothing', async () => {
    const before = await engine.docker(['ps', '-a', '--format', '{{.Names}} {{.State}} {{.Image}}'])
    const result = await act(shop, { tag: 'v3', 'dry-run': 'true' })
    if (result.exitCode !== 0) throw new Error(transcriptOf(result))
    expect(result.outputs).toMatchObject({ result: 'planned', tag: 'v1' })
    expect(result.summary).toContain('docker container create --name shop-green')
    expect(result.summary).toContain('nc 127.0.0.1 9999 &lt;&lt;&lt; &quot;set server app/green state ready; set server app/blue state drain&quot;')
    expect(result.summary).toContain('docker container cp - shop-proxy:/usr/local/etc/haproxy &lt;&lt;&lt; haproxy.cfg naming green live')
    expect(await engine.docker(['ps', '-a', '--format', '{{.Names}} {{.State}} {{.Image}}'])).toBe(before)
  }, 60_000)

  it('docker restart of the proxy comes back serving the live version', async () => {
    const started = Date.now()
    await engine.docker(['restart', 'shop-proxy'])
    expect((await waitForHttp(`${shop.url}/version`, 20_000, { accept: (response) => response.status === 200 })).body).toBe('v1')
    console.log(`proxy.itg: docker restart shop-proxy until it served again: ${Date.now() - started} ms`)
    for (let index = 0; index < 5; index++) expect(await version(shop)).toBe('200 v1')
  }, 60_000)
})

describe('strategy: proxy, proxy.port already taken on the first deploy', () => {
  let holder: Server | undefined

  afterAll(async () => {
    await new Promise<void>((resolve) => (holder ? holder.close(() => resolve()) : resolve()))
  })

  it('fails with an error naming the port and leaves nothing running', async () => {
    const port = await freePort()
    holder = createServer((socket) => socket.end('taken\n'))
    await new Promise<void>((resolve) => holder!.listen(port, '127.0.0.1', resolve))
    const taken = await site('taken', port)
    const result = await act(taken, { tag: 'v1' })
    expect(result.exitCode).toBe(1)
    expect(result.outputs.result).toBe('failed')
    expect(result.stdout).toContain(`proxy.port ${port} is already in use`)
    expect(await containersOf('taken')).toEqual({})
    const networks = await engine.docker(['network', 'ls', '--format', '{{.Name}}'])
    expect(networks.split('\n')).not.toContain('taken-net')
  }, 120_000)
})
