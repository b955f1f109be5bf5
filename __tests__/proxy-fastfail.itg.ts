/**
 * Issue 21, "no request waits seconds for a dead slot", on a real private engine: a proxy deploy
 * of a version that crashes during the watch (test-support/images.ts `crash-later`), under 30
 * keep-alive clients and 10 clients that open a new connection for every request, with HAProxy's
 * connect settings before issue 21 (`timeout connect 5s`, `retries 3`) and after it (`timeout
 * connect 250ms`, `retries 19`), in the same run, interleaved, 3 times each. For each it prints:
 * (a) the user-visible outage (the longest stretch with failed requests, load.ts `outagesOf`),
 * (b) the slowest successful request from the crash on, (c) the failed requests, and the medians.
 *
 * What happens when a slot dies (measured with Debian's HAProxy 2.6 here): the app's port first
 * refuses (the process is gone, its network namespace not yet), so HAProxy retries after
 * min(timeout connect, 1 s); then the container's address disappears from the network and a
 * connect gets no answer at all (no reset), so an attempt lasts `timeout connect`. A request that
 * was sent to the dead slot reaches the old one with its first attempt after the switch back:
 * with 5 s attempts that is up to 1 s + 5 s after the crash, with 250 ms attempts the switch back
 * plus at most 250 ms.
 *
 * Asserted, for both configs: the switch back put users on v1 (every request sent after it was
 * answered by v1), and only requests in flight on the dying slot failed (at most one per client).
 * For the new config only: no successful request took longer than 3 s. Timings are printed, not
 * asserted (this machine is shared).
 *
 * The old config comes from a bundle built from this tree with only `DEFAULT_TIMEOUTS.connectMs`
 * set back to 5 s (which renders `retries 3` again), into .build/ (kept, keyed by the source's
 * hash; FASTFAIL_BASELINE_BUNDLE names another). The new one is DEPLOY_ACTION_BUNDLE or dist/.
 * The slots run with `container.restart: "no"`, so a crashed slot stays dead through the switch
 * back, as one that crashes again at once would (docker would otherwise restart it in ~0.1 s).
 *
 * Network: the engine's user networks come from a free /20 of 10.252.0.0/16 and its containers
 * get `--dns 127.0.0.1`. The test talks to 127.0.0.1 only.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { createHash } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { REPO_ROOT, runAction, type ActionResult } from '../test-support/action-run.js'
import { startEngine, type Engine } from '../test-support/engine.js'
import { start as startFakeGitHub, type FakeGitHub } from '../test-support/fake-github.js'
import { removeContainersAndNetworks } from '../test-support/fixture.js'
import { pushHaproxyImage, type PushedHaproxyImage } from '../test-support/haproxy-image.js'
import { buildAppImage, buildSlowAppImage } from '../test-support/images.js'
import { outagesOf, type LoadFailure, type Outage } from '../test-support/load.js'
import { freePort, httpGet } from '../test-support/net.js'
import { runChecked, sleep } from '../test-support/proc.js'
import { startRegistry, type Registry } from '../test-support/registry.js'

const REPO = 'acme/fastfail'
const APP_PORT = 3000
const HEALTHY_BODY = 'status: green'
/** Seconds the crashing version serves before it exits: past the switch, inside the watch. */
const CRASH_AFTER_SECONDS = 9
const RUNS = 3
const KEEP_ALIVE_CLIENTS = 30
const NEW_CONNECTION_CLIENTS = 10
const CLIENTS = KEEP_ALIVE_CLIENTS + NEW_CONNECTION_CLIENTS
/** The one line of haproxy-config.ts the baseline bundle changes back, and what it was before issue 21. */
const CONNECT_DEFAULT = { now: '  connectMs: 250,', before: '  connectMs: 5_000,' }

type Variant = 'old' | 'new'

let engine: Engine
let registry: Registry
let github: FakeGitHub
let haproxy: PushedHaproxyImage
let baselineBundle: string
const workspaces: string[] = []

/** A /20 of 10.252.0.0/16 that no address or route here uses yet (as proxy-settings.itg.ts does in 10.255). */
function freeAddressPool(): string {
  const used = new Set<number>()
  for (const args of [['-4', '-o', 'addr', 'show'], ['-4', 'route', 'show', 'table', 'all']]) {
    const listing = spawnSync('ip', args, { encoding: 'utf8' }).stdout ?? ''
    for (const match of listing.matchAll(/10\.252\.(\d+)\./g)) used.add(Math.floor(Number(match[1]) / 16))
  }
  const free = Array.from({ length: 16 }, (_, index) => index).filter((block) => !used.has(block))
  const block = free[Math.floor(Math.random() * free.length)]
  if (block === undefined) throw new Error('no free /20 in 10.252.0.0/16 for the engine address pool')
  return `base=10.252.${block * 16}.0/20,size=24`
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((entry) => {
      const path = join(dir, entry)
      return statSync(path).isDirectory() ? filesUnder(path) : [path]
    })
}

/**
 * The main bundle of this tree with the connect settings before issue 21: src/ copied into
 * .build/, `DEFAULT_TIMEOUTS.connectMs` set back to 5 s, bundled with ncc as scripts/build.sh does.
 */
async function buildBaselineBundle(): Promise<string> {
  const given = process.env.FASTFAIL_BASELINE_BUNDLE
  if (given) return given
  const source = join(REPO_ROOT, 'src')
  const configFile = join(source, 'proxy', 'haproxy-config.ts')
  const configText = readFileSync(configFile, 'utf8')
  if (!configText.includes(CONNECT_DEFAULT.now)) throw new Error(`${relative(REPO_ROOT, configFile)} has no line ${JSON.stringify(CONNECT_DEFAULT.now)}: update CONNECT_DEFAULT here`)
  const hash = createHash('sha256')
  for (const file of filesUnder(source)) hash.update(relative(source, file)).update(readFileSync(file))
  const out = join(REPO_ROOT, '.build', `fastfail-baseline-${hash.digest('hex').slice(0, 12)}`)
  const bundle = join(out, 'index.js')
  if (existsSync(bundle)) return bundle
  // A clean clone has no .build/ yet (CI found it).
  mkdirSync(join(REPO_ROOT, '.build'), { recursive: true })
  const tree = mkdtempSync(join(REPO_ROOT, '.build', 'fastfail-baseline-tree-'))
  try {
    cpSync(source, join(tree, 'src'), { recursive: true })
    for (const file of ['tsconfig.json', 'package.json']) cpSync(join(REPO_ROOT, file), join(tree, file))
    writeFileSync(join(tree, 'src', 'proxy', 'haproxy-config.ts'), configText.replace(CONNECT_DEFAULT.now, CONNECT_DEFAULT.before))
    mkdirSync(out, { recursive: true })
    await runChecked(join(REPO_ROOT, 'node_modules', '.bin', 'ncc'), ['build', join(tree, 'src', 'index.ts'), '-o', out, '--target', 'es2022', '--minify', '--quiet'], { cwd: tree })
  } finally {
    await rm(tree, { recursive: true, force: true })
  }
  return bundle
}

beforeAll(async () => {
  engine = await startEngine({ extraDaemonArgs: ['--default-address-pool', freeAddressPool(), '--dns', '127.0.0.1'] })
  registry = await startRegistry(engine)
  github = await startFakeGitHub()
  const options = { port: APP_PORT, healthBody: HEALTHY_BODY }
  const [pushedHaproxy, bundle, v1, v2] = await Promise.all([
    pushHaproxyImage(engine, registry),
    buildBaselineBundle(),
    buildSlowAppImage(engine, 'local/fastfail', 'v1', options),
    // A real listen backlog, like v1's: under this load busy box httpd's 9 would overflow.
    buildAppImage(engine, 'local/fastfail', 'v2-crash', 'crash-later', { ...options, crashAfterSeconds: CRASH_AFTER_SECONDS, listenBacklog: 1024 })
  ])
  haproxy = pushedHaproxy
  baselineBundle = bundle
  for (const [tag, app] of [['v1', v1], ['v2-crash', v2]] as const) {
    const pushed = await registry.push(engine, app.reference, REPO, tag)
    await engine.docker(['image', 'rm', app.reference, pushed.reference])
  }
  await engine.docker(['image', 'rm', haproxy.pushed.reference, haproxy.reference])
}, 300_000)

afterAll(async () => {
  await github?.stop()
  await registry?.stop()
  await removeContainersAndNetworks(engine)
  await engine?.stop()
  await Promise.all(workspaces.map((dir) => rm(dir, { recursive: true, force: true })))
}, 90_000)

interface Site {
  name: string
  variant: Variant
  url: string
  workspace: string
  entry: string | undefined
}

async function site(name: string, variant: Variant): Promise<Site> {
  const port = await freePort()
  const workspace = mkdtempSync(join(tmpdir(), `deploy-action-fastfail-${name}-`))
  workspaces.push(workspace)
  mkdirSync(join(workspace, '.github'))
  const config = [
    `image: ${registry.address}/${REPO}`,
    `name: ${name}`,
    'strategy: proxy',
    'proxy:',
    `  port: ${port}`,
    '  bind: 127.0.0.1',
    `  app-port: ${APP_PORT}`,
    `  image: ${haproxy.pushed.reference}`,
    '  drain: 2s',
    'container:',
    '  init: true',
    '  stop-timeout: 2s',
    // A crashed slot stays dead (see the top of this file); a warning says the slots would not come back after a reboot.
    '  restart: "no"',
    '  env:',
    '    BIND: 0.0.0.0',
    `    PORT: "${APP_PORT}"`,
    'health:',
    `  url: http://127.0.0.1:${port}/health`,
    `  expect-body: "${HEALTHY_BODY}"`,
    '  interval: 250ms',
    '  timeout: 3s',
    '  deadline: 12s',
    '  healthy-threshold: 2',
    `  watch: ${CRASH_AFTER_SECONDS + 15}s`,
    'rollback:',
    '  to: previous',
    ''
  ].join('\n')
  writeFileSync(join(workspace, '.github', 'deploy.yml'), config)
  return { name, variant, url: `http://127.0.0.1:${port}`, workspace, entry: variant === 'old' ? baselineBundle : undefined }
}

function act(target: Site, inputs: Record<string, string>, onStdout?: (chunk: string) => void): Promise<ActionResult> {
  return runAction({
    workspace: target.workspace,
    dockerHost: engine.dockerHost,
    github: { apiUrl: github.url },
    inputs: { 'registry-username': registry.username, 'registry-password': registry.password, ...inputs },
    timeoutMs: 110_000,
    ...(target.entry && { entry: target.entry }),
    ...(onStdout && { onStdout: (chunk: string) => onStdout(chunk) })
  })
}

function transcriptOf(result: ActionResult): string {
  return `exit ${String(result.exitCode)}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`
}

interface Done {
  client: string
  sentAt: number
  endedAt: number
  ok: boolean
  /** The body of a good answer, or the error code or status of a failure. */
  body: string
}

/** One GET on `agent` (a keep-alive connection) or a new connection (`false`). Never rejects. */
function get(url: string, agent: Agent | false): Promise<{ ok: boolean; body: string }> {
  return new Promise((resolve) => {
    const req = request(url, { agent, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        const status = res.statusCode ?? 0
        resolve(status >= 200 && status < 400 ? { ok: true, body: Buffer.concat(chunks).toString('utf8').trim() } : { ok: false, body: `HTTP_${status}` })
      })
      res.on('error', (error: NodeJS.ErrnoException) => resolve({ ok: false, body: error.code ?? 'ERROR' }))
      res.on('aborted', () => resolve({ ok: false, body: 'ECONNRESET' }))
    })
    req.on('timeout', () => req.destroy(Object.assign(new Error('no answer within 20 s'), { code: 'ETIMEDOUT' })))
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ ok: false, body: error.code ?? 'ERROR' }))
    req.end()
  })
}

/**
 * Users of the site until `stop()`: keep-alive clients, each with its own connection, and clients
 * that open a new connection for every request (10 ms apart). Every request is kept, with when it
 * was sent and when it ended. 127.0.0.1 only.
 */
function users(target: Site): { stop: () => Promise<Done[]> } {
  const url = `${target.url}/version`
  if (!url.startsWith('http://127.0.0.1:')) throw new Error(`users: loopback only, got ${url}`)
  const done: Done[] = []
  let stopping = false
  const client = async (name: string, agent: Agent | false, pauseMs: number): Promise<void> => {
    while (!stopping) {
      const sentAt = Date.now()
      const answer = await get(url, agent)
      done.push({ client: name, sentAt, endedAt: Date.now(), ...answer })
      if (pauseMs > 0) await sleep(pauseMs)
    }
    if (agent) agent.destroy()
  }
  const running = [
    ...Array.from({ length: KEEP_ALIVE_CLIENTS }, (_, index) => client(`keep-alive ${index}`, new Agent({ keepAlive: true, maxSockets: 1 }), 0)),
    ...Array.from({ length: NEW_CONNECTION_CLIENTS }, (_, index) => client(`new-connection ${index}`, false, 10))
  ]
  return {
    stop: async () => {
      stopping = true
      await Promise.all(running)
      return done
    }
  }
}

interface Figures {
  variant: Variant
  /** When the crashed slot's container exited (docker's FinishedAt). */
  diedAt: number
  /** When the action said users are back on v1, after the crash (ms). */
  switchBackMs: number
  /** (a) The longest user-visible outage, and all of them. */
  outageMs: number
  outages: Outage[]
  /** (b) The slowest successful request that ended after the crash, and whether it was a new connection. */
  slowestMs: number
  slowest?: Done
  /** Successful requests from the crash on that took longer than 1 s. */
  overOneSecond: number
  /** The slowest successful request sent after the switch back (the restore, a reload), for comparison. */
  slowestLaterMs: number
  /** HAProxy's log lines of requests it retried or redispatched and then answered. */
  retried: string[]
  /** (c) Failed requests, by code. */
  failed: number
  failuresByCode: Record<string, number>
  requests: number
  /** Requests sent after the switch back that were not answered by v1. */
  notV1AfterSwitchBack: Done[]
  v2Answers: number
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

/** Deploys v2-crash to `target` under load; it dies in the watch and the action switches back to v1. */
async function crashRun(target: Site, label: string): Promise<Figures> {
  const load = users(target)
  let switchedBackAt = 0
  let action: ActionResult
  let done: Done[]
  try {
    await sleep(500)
    action = await act(target, { tag: 'v2-crash' }, (chunk) => {
      if (switchedBackAt === 0 && chunk.includes('Rollback · switch back')) switchedBackAt = Date.now()
    })
    await sleep(1_000)
  } finally {
    done = await load.stop()
  }
  if (action.exitCode !== 1 || action.outputs.result !== 'rolled-back' || switchedBackAt === 0) {
    throw new Error(`${label}: expected a switch back after the crash, then rolled-back\n${transcriptOf(action)}`)
  }
  const finished = (await engine.docker(['inspect', '--format', '{{.State.FinishedAt}}', `${target.name}-green`])).trim()
  const diedAt = Date.parse(finished)
  if (!Number.isFinite(diedAt)) throw new Error(`${label}: ${target.name}-green has no FinishedAt (${finished})`)
  // During the switch back: in flight when the app's port closed (a moment before its container
  // exited) or sent after that, up to the switch back. Later requests never reach the dead slot.
  const good = done.filter((entry) => entry.ok && entry.endedAt >= diedAt - 200 && entry.sentAt <= switchedBackAt)
  const afterCrash = done.filter((entry) => entry.ok && entry.endedAt >= diedAt - 200)
  const slowest = good.reduce<Done | undefined>((worst, entry) => (!worst || entry.endedAt - entry.sentAt > worst.endedAt - worst.sentAt ? entry : worst), undefined)
  const failures: LoadFailure[] = done.filter((entry) => !entry.ok).map((entry, index) => ({ at: entry.endedAt, kind: 'fast', code: entry.body, message: entry.body, client: index }))
  const answered = done.filter((entry) => entry.ok).map((entry) => [entry.sentAt, entry.endedAt] as const)
  const outages = outagesOf(failures, answered, Math.max(...done.map((entry) => entry.endedAt)))
  const failuresByCode: Record<string, number> = {}
  for (const failure of failures) failuresByCode[failure.code] = (failuresByCode[failure.code] ?? 0) + 1
  return {
    variant: target.variant,
    diedAt,
    switchBackMs: switchedBackAt - diedAt,
    outageMs: Math.max(0, ...outages.map((outage) => outage.ms)),
    outages,
    slowestMs: slowest ? slowest.endedAt - slowest.sentAt : 0,
    ...(slowest && { slowest }),
    overOneSecond: good.filter((entry) => entry.endedAt - entry.sentAt > 1_000).length,
    slowestLaterMs: Math.max(0, ...afterCrash.filter((entry) => entry.sentAt > switchedBackAt).map((entry) => entry.endedAt - entry.sentAt)),
    retried: (await engine.dockerResult(['logs', '--since', new Date(diedAt - 2_000).toISOString(), `${target.name}-proxy`])).stdout
      .split('\n')
      .filter((line) => / app\/\S+ [\d/-]+ [23]\d\d /.test(line)),
    failed: failures.length,
    failuresByCode,
    requests: done.length,
    notV1AfterSwitchBack: done.filter((entry) => entry.sentAt > switchedBackAt && !(entry.ok && entry.body === 'v1')),
    v2Answers: done.filter((entry) => entry.ok && entry.body === 'v2-crash').length
  }
}

function describeRun(label: string, figures: Figures): string {
  const slowest = figures.slowest ? ` (${figures.slowest.client}, sent ${figures.slowest.sentAt - figures.diedAt} ms after the crash, answered ${figures.slowest.body})` : ''
  return (
    `proxy-fastfail ${label}: switch back ${figures.switchBackMs} ms after the crash; ` +
    `(a) outage ${figures.outageMs} ms [${figures.outages.map((outage) => `${outage.firstFailureAt - figures.diedAt}+${outage.ms} ms, ${outage.failed} failed`).join('; ') || 'none'}]; ` +
    `(b) slowest successful request ${figures.slowestMs} ms${slowest}, ${figures.overOneSecond} took over 1 s (sent after the switch back: slowest ${figures.slowestLaterMs} ms); ` +
    `(c) ${figures.failed} failed ${JSON.stringify(figures.failuresByCode)} of ${figures.requests}; v2 answered ${figures.v2Answers}; ` +
    `HAProxy answered ${figures.retried.length} after retries, e.g. ${figures.retried.slice(0, 3).map((line) => line.replace(/^.*? (app\/)/, '$1').slice(0, 90)).join(' | ')}`
  )
}

describe('strategy: proxy, a version that dies in the watch: no request waits seconds for the dead slot (issue 21)', () => {
  const sites: Partial<Record<Variant, Site>> = {}
  const results: Figures[] = []

  beforeAll(async () => {
    sites.old = await site('ffold', 'old')
    sites.new = await site('ffnew', 'new')
    for (const target of [sites.old, sites.new]) {
      const result = await act(target, { tag: 'v1' })
      if (result.exitCode !== 0) throw new Error(`first deploy of ${target.name}: ${transcriptOf(result)}`)
      expect((await httpGet(`${target.url}/version`)).body).toBe('v1')
    }
  }, 240_000)

  it('each proxy runs the config its bundle renders: 5 s connects before issue 21, 250 ms ones with 19 retries after', async () => {
    const config = async (target: Site): Promise<string[]> =>
      (await engine.docker(['exec', `${target.name}-proxy`, 'cat', '/usr/local/etc/haproxy/haproxy.cfg'])).split('\n').filter((line) => /^ {2}(retries|timeout connect|option redispatch)/.test(line))
    expect(await config(sites.old!)).toEqual(['  option redispatch 1', '  retries 3', '  timeout connect 5s'])
    expect(await config(sites.new!)).toEqual(['  option redispatch 1', '  retries 19', '  timeout connect 250ms'])
  }, 30_000)

  it(`crashes ${RUNS} times per config, interleaved, and prints (a) the outage, (b) the slowest successful request, (c) the failed requests`, async () => {
    for (let run = 0; run < RUNS; run++) {
      const order: Variant[] = run % 2 === 0 ? ['old', 'new'] : ['new', 'old']
      for (const variant of order) {
        const label = `${variant} config, run ${run + 1}`
        const figures = await crashRun(sites[variant]!, label)
        results.push(figures)
        console.log(describeRun(label, figures))
        // Users are back on v1 for good, whichever config: every request sent after the switch back got v1.
        expect(figures.notV1AfterSwitchBack.slice(0, 5)).toEqual([])
        // The version did serve before it died (it crashed after the switch, not before).
        expect(figures.v2Answers).toBeGreaterThan(0)
        // Only requests around the crash failed (none sent after the switch back, above): those in
        // flight on the dying slot, and a keep-alive client's next one on a connection it cut.
        expect(figures.failed).toBeLessThanOrEqual(2 * CLIENTS)
        if (variant === 'new') expect(figures.slowestMs).toBeLessThanOrEqual(3_000)
        expect(await httpGet(`${sites[variant]!.url}/version`).then((response) => response.body)).toBe('v1')
      }
    }
    const summary = (['old', 'new'] as const).map((variant) => {
      const mine = results.filter((figures) => figures.variant === variant)
      return (
        `${variant}: switch back ${median(mine.map((figures) => figures.switchBackMs))} ms after the crash, ` +
        `(a) outage ${median(mine.map((figures) => figures.outageMs))} ms, (b) slowest successful request ${median(mine.map((figures) => figures.slowestMs))} ms ` +
        `[${mine.map((figures) => figures.slowestMs).join(', ')}], (c) failed ${median(mine.map((figures) => figures.failed))} [${mine.map((figures) => figures.failed).join(', ')}]`
      )
    })
    console.log(`proxy-fastfail medians of ${RUNS}: ${summary.join('; ')}`)
  }, 600_000)
})
