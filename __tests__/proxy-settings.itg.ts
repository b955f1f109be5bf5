/**
 * `strategy: proxy` follows its settings, on a real private engine and under load (40 keep-alive
 * clients, every 5th request a POST, plus slow requests in flight across the change), with the
 * bundled action (dist/index.js, or DEPLOY_ACTION_BUNDLE):
 * - a new `proxy.app-port` reaches the new slot only (each slot keeps the port it was started
 *   with): 0 failed requests, and a `docker restart` of the proxy afterwards still serves v2;
 * - HAProxy's own check of a slot sends `health.headers` (a Host allowlist app deploys);
 * - a new `proxy.image` replaces the proxy container around the slots: the gap users see is
 *   measured and printed, in-flight slow requests finish, and the run warns with the gap;
 * - a new `proxy.timeout` only reloads HAProxy (seamless, master-worker SIGUSR2): 0 failed requests;
 * - `docker restart <name>-proxy` under load after a deploy: the live version serves, and HAProxy's
 *   runtime state (`show servers state`, `show stat`) matches the file (live no-check, other MAINT).
 *
 * Network: the engine's user networks come from a free /20 of 10.255.0.0/16 and its containers
 * get `--dns 127.0.0.1`. The test talks to 127.0.0.1 only.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runAction, type ActionResult } from '../test-support/action-run.js'
import { startEngine, type Engine } from '../test-support/engine.js'
import { start as startFakeGitHub, type FakeGitHub } from '../test-support/fake-github.js'
import { removeContainersAndNetworks } from '../test-support/fixture.js'
import { pushHaproxyImage, type PushedHaproxyImage } from '../test-support/haproxy-image.js'
import { buildSlowAppImage } from '../test-support/images.js'
import { startLoad, type LoadResult } from '../test-support/load.js'
import { freePort, httpGet, waitForHttp } from '../test-support/net.js'
import { sleep } from '../test-support/proc.js'
import { startRegistry, type Registry } from '../test-support/registry.js'

const REPO = 'acme/shop'
const HOST_REPO = 'acme/hostcheck'
const HEALTHY_BODY = 'status: green'
const ALLOWED_HOST = 'shop.example.com'
/** proxy.drain of the sites here: a slow request in flight across a change finishes within it. */
const DRAIN_MS = 10_000
/** Seconds a slow request takes: in flight across the change, done well within proxy.drain (10 s). */
const SLOW_SECONDS = 5
const SLOW_REQUESTS = 5
const CONFIG_PATH = '/usr/local/etc/haproxy/haproxy.cfg'

let engine: Engine
let registry: Registry
let github: FakeGitHub
let haproxy: PushedHaproxyImage
/** The same HAProxy image under a second tag: a different proxy.image. */
let haproxySecond: string
const workspaces: string[] = []

/** A /20 of 10.255.0.0/16 that no address or route here uses yet (as unknown-state.itg.ts does in 10.254). */
function freeAddressPool(): string {
  const used = new Set<number>()
  for (const args of [['-4', '-o', 'addr', 'show'], ['-4', 'route', 'show', 'table', 'all']]) {
    const listing = spawnSync('ip', args, { encoding: 'utf8' }).stdout ?? ''
    for (const match of listing.matchAll(/10\.255\.(\d+)\./g)) used.add(Math.floor(Number(match[1]) / 16))
  }
  const free = Array.from({ length: 16 }, (_, index) => index).filter((block) => !used.has(block))
  const block = free[Math.floor(Math.random() * free.length)]
  if (block === undefined) throw new Error('no free /20 in 10.255.0.0/16 for the engine address pool')
  return `base=10.255.${block * 16}.0/20,size=24`
}

/**
 * `/cgi-bin/health` of the Host allowlist app: healthy only for `Host: $ALLOWED_HOST`, 421 for
 * any other host (busybox httpd passes every request header to a CGI as HTTP_*, and sends a CGI's
 * own status line as it is).
 */
const HOST_CHECK_CGI = `#!/bin/sh
# deploy-action test image: healthy only for the allowed Host header
if [ "$HTTP_HOST" = "$ALLOWED_HOST" ]; then
  printf 'Content-Type: text/plain\\r\\n\\r\\n${HEALTHY_BODY}'
else
  printf 'HTTP/1.1 421 Misdirected Request\\r\\nContent-Type: text/plain\\r\\nConnection: close\\r\\n\\r\\nhost "%s" is not served here' "$HTTP_HOST"
fi
`

beforeAll(async () => {
  engine = await startEngine({ extraDaemonArgs: ['--default-address-pool', freeAddressPool(), '--dns', '127.0.0.1'] })
  registry = await startRegistry(engine)
  github = await startFakeGitHub()
  const options = { healthBody: HEALTHY_BODY, slowSeconds: SLOW_SECONDS }
  const hostOptions = { ...options, files: { '/www/cgi-bin/health': { content: HOST_CHECK_CGI, executable: true } }, changes: [`ENV ALLOWED_HOST=${ALLOWED_HOST}`] }
  const builds = [
    ...['v1', 'v2'].map(async (tag) => ({ repo: REPO, tag, app: await buildSlowAppImage(engine, 'local/shop', tag, options) })),
    ...['v1', 'v2'].map(async (tag) => ({ repo: HOST_REPO, tag, app: await buildSlowAppImage(engine, 'local/hostcheck', tag, hostOptions) }))
  ]
  const [pushedHaproxy, ...built] = await Promise.all([pushHaproxyImage(engine, registry), ...builds])
  haproxy = pushedHaproxy
  haproxySecond = (await registry.push(engine, haproxy.reference, 'haproxy', 'debian-test-2')).reference
  for (const { repo, tag, app } of built) {
    const pushed = await registry.push(engine, app.reference, repo, tag)
    await engine.docker(['image', 'rm', app.reference, pushed.reference])
  }
  // The action pulls the proxy images itself, like the app's.
  await engine.docker(['image', 'rm', haproxy.pushed.reference, haproxySecond, haproxy.reference])
}, 120_000)

afterAll(async () => {
  await github?.stop()
  await registry?.stop()
  await removeContainersAndNetworks(engine)
  await engine?.stop()
  await Promise.all(workspaces.map((dir) => rm(dir, { recursive: true, force: true })))
}, 90_000)

interface SiteSettings {
  repo: string
  appPort: number
  proxyImage: string
  /** proxy.timeout, e.g. `90s`; default: not set. */
  timeout?: string
  healthPath: string
  healthHeaders?: Record<string, string>
}

interface Site {
  name: string
  port: number
  url: string
  workspace: string
  settings: SiteSettings
  /** Rewrites .github/deploy.yml with `changes` applied. */
  configure(changes: Partial<SiteSettings>): void
}

async function site(name: string, settings: Partial<SiteSettings> = {}): Promise<Site> {
  const port = await freePort()
  const workspace = mkdtempSync(join(tmpdir(), `deploy-action-proxy-settings-${name}-`))
  workspaces.push(workspace)
  mkdirSync(join(workspace, '.github'))
  const target: Site = {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    workspace,
    settings: { repo: REPO, appPort: 3000, proxyImage: haproxy.pushed.reference, healthPath: '/health', ...settings },
    configure(changes) {
      Object.assign(target.settings, changes)
      const s = target.settings
      const config = [
        `image: ${registry.address}/${s.repo}`,
        `name: ${name}`,
        'strategy: proxy',
        'proxy:',
        `  port: ${port}`,
        '  bind: 127.0.0.1',
        `  app-port: ${s.appPort}`,
        `  image: ${s.proxyImage}`,
        '  drain: 10s',
        ...(s.timeout ? [`  timeout: ${s.timeout}`] : []),
        'container:',
        '  init: true',
        '  stop-timeout: 2s',
        '  env:',
        '    BIND: 0.0.0.0',
        `    PORT: "${s.appPort}"`,
        `    SLOW_SECONDS: "${SLOW_SECONDS}"`,
        'health:',
        `  url: http://127.0.0.1:${port}${s.healthPath}`,
        ...(s.healthHeaders ? ['  headers:', ...Object.entries(s.healthHeaders).map(([key, value]) => `    ${key}: ${value}`)] : []),
        `  expect-body: "${HEALTHY_BODY}"`,
        '  interval: 250ms',
        '  timeout: 3s',
        '  deadline: 15s',
        '  healthy-threshold: 2',
        '  watch: 3s',
        'rollback:',
        '  to: previous',
        ''
      ].join('\n')
      writeFileSync(join(workspace, '.github', 'deploy.yml'), config)
    }
  }
  target.configure({})
  return target
}

function act(target: Site, inputs: Record<string, string>, onStdout?: (chunk: string) => void): Promise<ActionResult> {
  return runAction({
    workspace: target.workspace,
    dockerHost: engine.dockerHost,
    github: { apiUrl: github.url },
    inputs: { 'registry-username': registry.username, 'registry-password': registry.password, ...inputs },
    timeoutMs: 100_000,
    ...(onStdout && { onStdout: (chunk: string) => onStdout(chunk) })
  })
}

function transcriptOf(result: ActionResult): string {
  return `exit ${String(result.exitCode)}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`
}

/** A first deploy (no load): the proxy and slot blue with `tag`. */
async function deployFirst(target: Site, tag: string): Promise<void> {
  const result = await act(target, { tag })
  if (result.exitCode !== 0 || result.outputs.result !== 'deployed') throw new Error(`first deploy of ${target.name} ${tag} failed\n${transcriptOf(result)}`)
  expect(await version(target)).toBe(`200 ${tag}`)
}

async function proxyLog(target: Site, tail = 40): Promise<string> {
  const result = await engine.dockerResult(['logs', '--tail', String(tail), `${target.name}-proxy`])
  return `${result.stdout}${result.stderr}`
}

interface LoadedRun {
  action: ActionResult
  load: LoadResult
  diagnosis: string
}

/** Runs the action under load: 40 keep-alive clients (every 5th a POST) and `slowRequests` slow requests started as the switch step begins. */
async function underLoad(target: Site, inputs: Record<string, string>, label: string, slowRequests = SLOW_REQUESTS): Promise<LoadedRun> {
  const load = startLoad({
    url: target.url,
    clients: 40,
    postEvery: 5,
    postPath: '/cgi-bin/version',
    slowRequests,
    durationMs: 120_000,
    requestTimeoutMs: 20_000
  })
  let action: ActionResult
  try {
    await sleep(500)
    action = await act(target, inputs, (chunk) => {
      if (chunk.includes('Deploy · switch')) load.startSlow()
    })
    load.startSlow()
    await sleep(500)
  } finally {
    await load.stop()
  }
  const result = await load.done
  return { action, load: result, diagnosis: await diagnose(target, label, action, result) }
}

async function diagnose(target: Site, label: string, action: ActionResult | undefined, result: LoadResult): Promise<string> {
  const log = result.failed > 0 ? await proxyLog(target) : ''
  return (
    `${label}: ${result.ok} ok, ${result.failed} failed ${JSON.stringify(result.failuresByCode)}; first failures (ms after the load began): ` +
    result.failures.slice(0, 10).map((failure) => `${failure.at - result.startedAt} ${failure.kind} ${failure.code} ${failure.message}`).join(' | ') +
    `\nslow: ${result.slow.map((slow) => `${slow.startedAt - result.startedAt}..${slow.endedAt - result.startedAt} ${slow.body ?? slow.code ?? String(slow.status)}`).join(', ')}` +
    (action
      ? `\naction: exit ${String(action.exitCode)} outputs ${JSON.stringify(action.outputs)}\nsteps: ${action.annotations.map((entry) => `${entry.level} ${entry.title ?? ''}: ${entry.message.slice(0, 300)}`).join(' | ')}`
      : '') +
    (log ? `\nproxy log (last lines):\n${log.trim().split('\n').slice(-20).join('\n')}` : '')
  )
}

/** Runs `assertions`; a failure's message carries `diagnosis`. */
function explained(diagnosis: string, assertions: () => void | Promise<void>): Promise<void> {
  return Promise.resolve()
    .then(assertions)
    .catch((error: unknown) => {
      if (error instanceof Error) error.message = `${error.message}\n--- why ---\n${diagnosis}`
      throw error
    })
}

function expectNoFailures(load: LoadResult): void {
  expect(load.failures.slice(0, 5)).toEqual([])
  expect(load.failed).toBe(0)
  expect(load.ok).toBeGreaterThan(200)
  expect(load.slow).toHaveLength(SLOW_REQUESTS)
}

async function version(target: Site): Promise<string> {
  try {
    const response = await httpGet(`${target.url}/version`, { timeoutMs: 2_000 })
    return `${response.status} ${response.body}`
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error)
  }
}

/** Every container whose name starts with `<name>-`: name → tag label and state. */
async function containersOf(name: string): Promise<Record<string, string>> {
  const listed = await engine.docker(['ps', '-a', '--format', '{{.Names}}\t{{.Label "deploy-action.tag"}}\t{{.State}}'])
  const result: Record<string, string> = {}
  for (const line of listed.split('\n').filter(Boolean)) {
    const [container = '', tag = '', state = ''] = line.split('\t')
    if (container.startsWith(`${name}-`) && !container.endsWith('-deploy-lock')) result[container] = `${tag || '-'} ${state}`
  }
  return result
}

async function inspect(container: string, format: string): Promise<string> {
  return (await engine.docker(['inspect', '--format', format, container])).trim()
}

async function configIn(target: Site): Promise<string> {
  return engine.docker(['exec', `${target.name}-proxy`, 'cat', CONFIG_PATH])
}

async function runtimeApi(target: Site, command: string): Promise<string> {
  return engine.docker(['exec', '-i', `${target.name}-proxy`, 'nc', '127.0.0.1', '9999'], { input: `${command}\n`, timeoutMs: 15_000 })
}

function steps(action: ActionResult): string {
  return action.annotations.map((entry) => `${entry.title ?? entry.level} ${/\(([\d.]+ m?s)\)$/.exec(entry.message)?.[1] ?? ''}`.trim()).join(', ')
}

function summary(label: string, action: ActionResult, load: LoadResult): string {
  return (
    `proxy-settings.itg ${label}: result=${action.outputs.result} tag=${action.outputs.tag} exit=${String(action.exitCode)}; ` +
    `${load.ok} ok, ${load.failed} failed ${JSON.stringify(load.failuresByCode)}; ` +
    `bodies ${JSON.stringify(Object.fromEntries(Object.entries(load.bodies).map(([body, count]) => [body, count.count])))}; ` +
    `slow: ${load.slow.map((slow) => slow.body ?? slow.code ?? String(slow.status)).join(', ')}; steps: ${steps(action)}`
  )
}

describe('strategy: proxy follows its settings, under load', () => {
  it('a new proxy.app-port reaches the new slot only: 0 failed requests; a restart of the proxy still serves v2', async () => {
    const ports = await site('ports', { appPort: 3000 })
    await deployFirst(ports, 'v1')
    ports.configure({ appPort: 4000 })
    const { action, load, diagnosis } = await underLoad(ports, { tag: 'v2' }, 'app-port 3000 → 4000')
    console.log(summary('app-port 3000 → 4000', action, load))
    const config = await configIn(ports)
    await explained(`${diagnosis}\n--- haproxy.cfg ---\n${config}\n--- transcript ---\n${transcriptOf(action).slice(-6_000)}`, async () => {
      expect(action.exitCode).toBe(0)
      expect(action.outputs).toMatchObject({ result: 'deployed', tag: 'v2', 'previous-tag': 'v1' })
      expectNoFailures(load)
      expect(load.bodies.v2?.count).toBeGreaterThan(0)
      // Each slot keeps the port it was started with.
      expect(config).toMatch(/^ {2}server blue ports-blue:3000 .*disabled$/m)
      expect(config).toMatch(/^ {2}server green ports-green:4000 .*no-check$/m)
      expect(await inspect('ports-green', '{{index .Config.Labels "deploy-action.app-port"}}')).toBe('4000')
      expect(await inspect('ports-blue', '{{index .Config.Labels "deploy-action.app-port"}}')).toBe('3000')
    })

    const started = Date.now()
    await engine.docker(['restart', 'ports-proxy'])
    const back = await waitForHttp(`${ports.url}/version`, 20_000, { accept: (response) => response.status === 200 }).catch((error: Error) => error)
    const restartDiagnosis = `after docker restart ports-proxy (${Date.now() - started} ms):\n${await proxyLog(ports, 30)}\n--- haproxy.cfg ---\n${await configIn(ports).catch(String)}`
    await explained(restartDiagnosis, async () => {
      expect(back).not.toBeInstanceOf(Error)
      expect((back as { body: string }).body).toBe('v2')
      for (let index = 0; index < 5; index++) expect(await version(ports)).toBe('200 v2')
    })
  }, 120_000)

  it('HAProxy checks a slot with health.headers: a Host allowlist app deploys, hdr Host in haproxy.cfg', async () => {
    const shop = await site('hostcheck', { repo: HOST_REPO, healthPath: '/cgi-bin/health', healthHeaders: { Host: ALLOWED_HOST } })
    await deployFirst(shop, 'v1')
    // The app really refuses other hosts: through the proxy without the header, 421.
    const refused = await httpGet(`${shop.url}/cgi-bin/health`, { timeoutMs: 5_000 })
    expect(`${refused.status} ${refused.body}`).toMatch(/^421 host "127\.0\.0\.1:\d+" is not served here/)
    const allowed = await httpGet(`${shop.url}/cgi-bin/health`, { timeoutMs: 5_000, headers: { Host: ALLOWED_HOST } })
    expect(`${allowed.status} ${allowed.body}`).toBe(`200 ${HEALTHY_BODY}`)

    const { action, load, diagnosis } = await underLoad(shop, { tag: 'v2' }, 'Host allowlist')
    console.log(summary('Host allowlist', action, load))
    const config = await configIn(shop)
    await explained(`${diagnosis}\n--- haproxy.cfg ---\n${config}\n--- transcript ---\n${transcriptOf(action).slice(-6_000)}`, () => {
      expect(action.exitCode).toBe(0)
      expect(action.outputs).toMatchObject({ result: 'deployed', tag: 'v2', 'previous-tag': 'v1' })
      expectNoFailures(load)
      expect(config).toContain(`hdr Host "${ALLOWED_HOST}"`)
      expect(config).toMatch(/^ {2}http-check send meth GET uri \/cgi-bin\/health ver HTTP\/1\.1 hdr Host "shop\.example\.com"$/m)
      expect(config).toContain(`http-check expect string "${HEALTHY_BODY}"`)
    })
  }, 120_000)

  /**
   * Changes proxy.image of `swap` and deploys `tag` under load; prints the gap users saw and the
   * failed requests. Issue 17's goal is at most 1 s of refused connections with no request cut in
   * its answer; with stop-then-start on one published port the gap lasts as long as the longest
   * request in flight (at most proxy.drain) plus the new proxy's start, so that goal is not met and
   * is printed, not asserted. Asserted: no request is cut, the gap stays within that bound, and
   * the warning tells the gap as users saw it.
   */
  async function changeProxyImage(swap: Site, proxyImage: string, tag: string, previous: string, slowRequests: number, label: string): Promise<void> {
    const oldProxy = await inspect(`${swap.name}-proxy`, '{{.Id}}')
    // The slot that serves when the proxy is replaced: its container must outlive the replacement.
    const live = (await inspect(`${swap.name}-blue`, '{{.State.Running}}')) === 'true' ? 'blue' : 'green'
    const kept = await inspect(`${swap.name}-${live}`, '{{.Id}}')
    swap.configure({ proxyImage })
    const since = Date.now()
    const { action, load, diagnosis } = await underLoad(swap, { tag }, label, slowRequests)
    console.log(summary(label, action, load))
    // Where the gap went: the proxies' container events, in ms after the first failed request.
    const events = await engine.docker(['events', '--since', (since / 1000).toFixed(3), '--until', (Date.now() / 1000).toFixed(3), '--filter', 'type=container', '--format', '{{.TimeNano}} {{.Action}} {{.Actor.Attributes.name}}'])
    const origin = load.failures[0]?.at ?? since
    const timeline = events
      .split('\n')
      .filter((line) => line.includes(`${swap.name}-proxy`) && !/exec_|top|attach|copy|archive/.test(line))
      .map((line) => {
        const [nanos = '0', ...rest] = line.split(' ')
        return `${Math.round(Number(BigInt(nanos) / 1_000_000n) - origin)} ${rest.join(' ')}`
      })
      .join(', ')
    const warning = action.annotations.find((entry) => entry.level === 'warning' && /was replaced/.test(entry.message))
    const reportedGapMs = Math.round(Number(/new connections were refused for at least ([\d.]+) s/.exec(warning?.message ?? '')?.[1] ?? NaN) * 1000)
    const outageMs = load.outages.reduce((sum, outage) => sum + outage.ms, 0)
    console.log(
      `${label}: gap ${outageMs} ms, failed ${load.failed} requests (of ${load.ok + load.failed}) ` +
        `[action reported ${reportedGapMs} ms; failure window ${load.failureWindow?.ms ?? 0} ms; outages ${load.outages.map((outage) => `${outage.ms} ms/${outage.failed}`).join(', ') || 'none'}; ` +
        `by code ${JSON.stringify(load.failuresByCode)}; slow ${load.slow.map((slow) => `${slow.ok ? 'ok' : 'FAILED'} ${slow.body ?? slow.code ?? ''} ${slow.endedAt - slow.startedAt} ms`).join(', ') || 'none'}]` +
        `\n  proxy container events, ms after the first failure (last failure at ${load.failureWindow?.ms ?? 0}, recovered at ${load.outages.length > 0 ? (load.outages[load.outages.length - 1]?.recoveredAt ?? 0) - origin : 0}): ${timeline}`
    )
    const slowCut = load.slow.filter((slow) => !slow.ok)
    await explained(`${diagnosis}\n--- transcript ---\n${transcriptOf(action).slice(-6_000)}`, async () => {
      expect(action.exitCode).toBe(0)
      expect(action.outputs).toMatchObject({ result: 'deployed', tag, 'previous-tag': previous })
      // The proxy runs the new image; a new container, the old one gone.
      expect(await inspect(`${swap.name}-proxy`, '{{.Config.Image}}')).toBe(proxyImage)
      expect(await inspect(`${swap.name}-proxy`, '{{.Id}}')).not.toBe(oldProxy)
      // The slots were kept: the one that served across the replacement is the same container (now kept stopped for a rollback).
      expect(await inspect(`${swap.name}-${live}`, '{{.Id}}')).toBe(kept)
      expect(Object.keys(await containersOf(swap.name)).sort()).toEqual([`${swap.name}-blue`, `${swap.name}-green`, `${swap.name}-proxy`])
      expect(warning?.message).toMatch(/proxy\.image/)
      expect(warning?.message).toMatch(/The slots were kept/)
      expect(Number.isFinite(reportedGapMs)).toBe(true)
      expect(await version(swap)).toBe(`200 ${tag}`)
      // No request was cut in the middle of its answer: every slow one in flight across the change finished.
      expect(slowCut).toEqual([])
      expect(load.slow).toHaveLength(slowRequests)
      // The bound the design gives, and the warning telling the gap as users saw it (both at once, so one failure shows both).
      const problems = [
        ...(outageMs > DRAIN_MS + 3_000 ? [`users saw ${outageMs} ms of failed connections (bound: proxy.drain ${DRAIN_MS} ms + 3 s to start)`] : []),
        // The action times the gap from inside the proxy (until the new HAProxy answers there): a lower
        // bound, never above what users saw, and not far below it (docker's port forwarding comes after).
        ...(reportedGapMs > outageMs + 500 || reportedGapMs < outageMs - 1_000 ? [`the warning says at least ${reportedGapMs} ms, users saw ${outageMs} ms`] : [])
      ]
      expect(problems).toEqual([])
      console.log(`${label}: ${outageMs <= 1_000 ? 'met' : 'did not meet'} issue 17's goal of at most 1 s of refused connections (${outageMs} ms)`)
    })
  }

  describe('a new proxy.image replaces the proxy around the slots, warning with the gap', () => {
    let swap: Site

    beforeAll(async () => {
      swap = await site('imgswap')
      await deployFirst(swap, 'v1')
    }, 60_000)

    it('with slow requests in flight: they finish; the gap lasts as long as they do, and the warning says it', async () => {
      await changeProxyImage(swap, haproxySecond, 'v2', 'v1', SLOW_REQUESTS, 'proxy image change')
      expect(await containersOf('imgswap')).toEqual({ 'imgswap-proxy': '- running', 'imgswap-green': 'v2 running', 'imgswap-blue': 'v1 exited' })
    }, 120_000)

    it('without a slow request in flight: the gap is the new proxy start, and the warning says it', async () => {
      // Needs the first change to have happened: the proxy now runs the second tag.
      expect(await inspect('imgswap-proxy', '{{.Config.Image}}')).toBe(haproxySecond)
      await changeProxyImage(swap, haproxy.pushed.reference, 'v1', 'v2', 0, 'proxy image change (no slow request in flight)')
    }, 120_000)
  })

  it('a new proxy.timeout only reloads HAProxy (seamless): 0 failed requests, timeout server 90s in the file', async () => {
    const reload = await site('reload')
    await deployFirst(reload, 'v1')
    const proxyId = await inspect('reload-proxy', '{{.Id}}')
    const before = await configIn(reload)
    expect(before).toContain('timeout server 60s')
    reload.configure({ timeout: '90s' })
    const { action, load, diagnosis } = await underLoad(reload, { tag: 'v2' }, 'proxy.timeout 90s (reload)')
    console.log(summary('proxy.timeout 90s (reload)', action, load))
    const config = await configIn(reload)
    const log = await proxyLog(reload, 200)
    await explained(`${diagnosis}\n--- proxy log ---\n${log.trim().split('\n').slice(-20).join('\n')}\n--- transcript ---\n${transcriptOf(action).slice(-6_000)}`, async () => {
      expect(action.exitCode).toBe(0)
      expect(action.outputs).toMatchObject({ result: 'deployed', tag: 'v2', 'previous-tag': 'v1' })
      expectNoFailures(load)
      expect(config).toContain('timeout server 90s')
      expect(config).toContain('timeout client 90s')
      // Reloaded, not replaced: the same container; two seamless reloads, each with a new worker: the
      // setting before the new slot is checked, then the clean-up's, so HAProxy runs the file exactly.
      expect(await inspect('reload-proxy', '{{.Id}}')).toBe(proxyId)
      expect(action.stdout).toMatch(/was reloaded with the config the settings give/)
      expect(action.stdout).not.toMatch(/was replaced/)
      expect(log.match(/Reloading HAProxy/g)).toHaveLength(2)
      expect(log).toMatch(/Reloading HAProxy[\s\S]*Loading success/)
    })
  }, 120_000)

  it('docker restart of the proxy under load after a deploy: the live version serves, runtime state matches the file', async () => {
    const restart = await site('restart')
    await deployFirst(restart, 'v1')
    const upgrade = await act(restart, { tag: 'v2' })
    if (upgrade.exitCode !== 0) throw new Error(transcriptOf(upgrade))
    expect(upgrade.outputs).toMatchObject({ result: 'deployed', tag: 'v2' })

    const load = startLoad({
      url: restart.url,
      clients: 40,
      postEvery: 5,
      postPath: '/cgi-bin/version',
      slowRequests: SLOW_REQUESTS,
      durationMs: 60_000,
      requestTimeoutMs: 20_000
    })
    let restartMs = 0
    let servedAgainMs = 0
    try {
      await sleep(1_000)
      load.startSlow()
      await sleep(300)
      const started = Date.now()
      await engine.docker(['restart', 'restart-proxy'])
      restartMs = Date.now() - started
      await waitForHttp(`${restart.url}/version`, 20_000, { accept: (response) => response.status === 200 })
      servedAgainMs = Date.now() - started
      await sleep(2_000)
    } finally {
      await load.stop()
    }
    const result = await load.done
    console.log(
      `proxy restart under load: failed ${result.failed} requests (of ${result.ok + result.failed}); docker restart took ${restartMs} ms, served again after ${servedAgainMs} ms; ` +
        `outages ${result.outages.map((outage) => `${outage.ms} ms/${outage.failed}`).join(', ') || 'none'}; by code ${JSON.stringify(result.failuresByCode)}; ` +
        `slow ${result.slow.map((slow) => `${slow.ok ? 'ok' : 'FAILED'} ${slow.body ?? slow.code ?? ''}`).join(', ')}`
    )

    const config = await configIn(restart)
    const state = await runtimeApi(restart, 'show servers state app')
    const stat = await runtimeApi(restart, 'show stat')
    const diagnosis = `${await diagnose(restart, 'restart under load', undefined, result)}\n--- haproxy.cfg ---\n${config}\n--- show servers state app ---\n${state}\n--- show stat ---\n${stat}`
    await explained(diagnosis, async () => {
      for (let index = 0; index < 5; index++) expect(await version(restart)).toBe('200 v2')
      // The file: green (v2) live without checks, blue disabled.
      expect(config).toMatch(/Live slot: green\./)
      expect(config).toMatch(/^ {2}server green restart-green:3000 .*no-check$/m)
      expect(config).toMatch(/^ {2}server blue restart-blue:3000 .*disabled$/m)
      // show servers state: be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state …
      const servers = Object.fromEntries(
        state
          .split('\n')
          .filter((line) => /^\d+ app \d+ /.test(line))
          .map((line) => line.split(' '))
          .map((fields) => [fields[3] ?? '', { opState: Number(fields[5]), adminState: Number(fields[6]) }])
      )
      // green RUNNING (2) and not in maintenance; blue in maintenance (config MAINT 0x04 at least).
      expect(servers.green).toEqual({ opState: 2, adminState: 0 })
      expect(servers.blue?.adminState ?? 0).toBeGreaterThan(0)
      // show stat: the live server "no check", the other MAINT.
      const status = (server: string): string | undefined => stat.split('\n').find((line) => line.startsWith(`app,${server},`))?.split(',')[17]
      expect(status('green')).toBe('no check')
      expect(status('blue')).toMatch(/^MAINT/)
    })
  }, 120_000)
})
