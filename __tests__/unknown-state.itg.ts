/**
 * Issue 16, "Unknown is not absent", on real engines: what a host runs is a release, nothing of
 * ours, or unknown, and unknown is never read as nothing. Each test drives the bundled action
 * (dist/index.js, or DEPLOY_ACTION_BUNDLE) as the runner runs it and asserts what really serves
 * afterwards, the outputs and what is left on the engine:
 * 1. `strategy: proxy` with `<name>-proxy` removed by hand: the proxy is re-created around the
 *    slots, routing to the one that served; a healthy next version deploys as usual, a broken one
 *    leaves the very container that served before serving through the proxy.
 * 2. A host reboot (the private dockerd stopped and started again, same data root): a Quick-start
 *    config (no `container.restart`) and a proxy deploy both come back serving; the default restart
 *    policy is `unless-stopped`.
 * 3. `rollback.on-failure: false` with the proxy, the new version dying in the watch: users are
 *    switched back, result=failed, tag = the old version, the failed slot is kept out of rotation.
 * 4. A fleet whose first host is new (network-namespace hosts): a failure on the second host leaves
 *    nothing of the app on the first and the old version serving on the second.
 * 5. A docker connection that drops (test-support/flaky-socket.ts): a run of 4 connections reset at
 *    four points of an upgrade, for `replace` and `proxy`: a version serves, the outputs say which,
 *    and the deploy lock is released (by the post step at the latest).
 *
 * Network: test traffic goes to 127.0.0.1 and to the namespace hosts' 10.251.x addresses only. The
 * engines' user networks (the proxy's `<name>-net`) come from a free /20 of 10.254.0.0/16, one per
 * engine, and containers get `--dns 127.0.0.1` (see proxy-groundwork.itg.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { runAction, type ActionResult, type Annotation, type RunActionOptions } from '../test-support/action-run.js'
import { runDocker, startEngine, type Engine } from '../test-support/engine.js'
import type { FakeGitHub } from '../test-support/fake-github.js'
import {
  containerStates,
  freeAddressPool,
  makeSite,
  proxySiteConfig,
  pushAppImages,
  pushProxyImage,
  pushToNamespace,
  removeContainersAndNetworks,
  runStep,
  servedAt,
  siteConfig,
  startFixture,
  startNamespaceFixture,
  userNetworkEngineArgs,
  writeDeployConfig,
  type AppImageSpec,
  type Fixture,
  type NamespaceFixture,
  type Site as FixtureSite
} from '../test-support/fixture.js'
import { startFlakySocket, type ResetMode } from '../test-support/flaky-socket.js'
import type { PushedHaproxyImage } from '../test-support/haproxy-image.js'
import { buildAppImage } from '../test-support/images.js'
import type { NamespaceHost } from '../test-support/netns.js'
import { sleep } from '../test-support/proc.js'

const APP_PORT = 3000

/** Images in the shared registry: `acme/app` is healthy in every version; `acme/broken` has a v1.2.0 that never listens. */
const IMAGES: Record<string, AppImageSpec[]> = {
  'acme/app': [
    { tag: 'v1.0.0', behaviour: 'healthy' },
    { tag: 'v1.1.0', behaviour: 'healthy' },
    { tag: 'v1.2.0', behaviour: 'healthy' }
  ],
  'acme/broken': [
    { tag: 'v1.0.0', behaviour: 'healthy' },
    { tag: 'v1.1.0', behaviour: 'healthy' },
    { tag: 'v1.2.0', behaviour: 'never-listens' }
  ]
}

let fixture: Fixture & { github: FakeGitHub }
let engine: Engine
let registry: Fixture['registry']
let github: FakeGitHub
let haproxy: PushedHaproxyImage
/** A local busybox image for the forwarder's own check (never pushed, never deployed). */
let probeImage: string
const cleanups: (() => Promise<unknown>)[] = []

/**
 * Engine flags for the proxy strategy: a free /20 of 10.254.0.0/16 for its user networks, one per
 * engine, and no DNS forwarding beyond the container.
 */
const proxyEngineArgs = (): string[] => userNetworkEngineArgs(freeAddressPool(254))

beforeAll(async () => {
  fixture = await startFixture({ github: true, addressPool: freeAddressPool(254) })
  ;({ engine, registry, github } = fixture)
  // Only the registry holds the images now, so every deploy really pulls.
  const pushes = Object.entries(IMAGES).map(([repo, images]) =>
    pushAppImages(fixture, repo, images.map((spec) => ({ ...spec, options: { port: APP_PORT } })), { localRepo: `local/${repo}` })
  )
  const [pushedHaproxy, probe] = await Promise.all([pushProxyImage(fixture), buildAppImage(engine, 'local/probe', 'cat', 'healthy'), ...pushes])
  haproxy = pushedHaproxy
  probeImage = probe.reference
}, 180_000)

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined)
  await fixture?.stop()
}, 120_000)

// ---------------------------------------------------------------------------------------------
// Sites: one app (a name, a port, a workspace with its config) on one engine.

interface Site extends FixtureSite {
  /** Where users reach it: the proxy's port, or the app's own port with `network: host`. */
  port: number
  engine: Engine
  strategy: 'replace' | 'proxy'
}

interface ProxySiteOptions {
  repo?: string
  deadline?: string
  watch?: string
  onFailure?: boolean
  /** Leave out `container.restart` (the default) or name a policy. */
  restart?: string
}

async function proxySite(name: string, options: ProxySiteOptions = {}, target: Engine = engine): Promise<Site> {
  const site = await makeSite(fixture.dirs, name, ({ port }) =>
    proxySiteConfig({
      image: `${registry.address}/${options.repo ?? 'acme/app'}`,
      name,
      port,
      appPort: APP_PORT,
      proxyImage: haproxy.pushed.reference,
      drain: '1s',
      container: options.restart ? [`  restart: ${options.restart}`] : [],
      expectBody: 'ok',
      interval: '200ms',
      timeout: '2s',
      deadline: options.deadline ?? '12s',
      watch: options.watch ?? '0s',
      rollback: options.onFailure === undefined ? [] : [`  on-failure: ${String(options.onFailure)}`]
    })
  )
  return { ...site, engine: target, strategy: 'proxy' }
}

/** `strategy: replace` with host networking and fast health checks. */
async function replaceSite(name: string, target: Engine = engine): Promise<Site> {
  const site = await makeSite(fixture.dirs, name, ({ port }) => siteConfig({ image: `${registry.address}/acme/app`, name, port, expectBody: 'ok', deadline: '8s' }))
  return { ...site, engine: target, strategy: 'replace' }
}

/** One step of the action for `target` as the runner runs it, logged in to the test registry. */
function act(target: Site, inputs: Record<string, string>, extra: Partial<RunActionOptions> = {}): Promise<ActionResult> {
  return runStep(fixture, target, inputs, { dockerHost: target.engine.dockerHost, timeoutMs: 100_000, ...extra })
}

async function deployOk(target: Site, tag: string): Promise<ActionResult> {
  const result = await act(target, { tag })
  if (result.exitCode !== 0 || result.outputs.result !== 'deployed') {
    throw new Error(`setup: the deploy of ${tag} to ${target.name} did not succeed\n${await diagnosis(result, [target.engine])}`)
  }
  return result
}

// ---------------------------------------------------------------------------------------------
// What the engine and the users see, and how a failed expectation explains itself.

/** What answers users: `200 <tag>`, or the connection error code. */
function serving(target: Site | { url: string }): Promise<string> {
  return servedAt('url' in target ? target.url : `http://127.0.0.1:${target.port}/version`)
}

/** Polls until `serving` answers `expected` or `timeoutMs` passes; returns the last answer. */
async function servingWithin(target: Site | { url: string }, expected: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs
  let last = await serving(target)
  while (last !== expected && Date.now() < deadline) {
    await sleep(200)
    last = await serving(target)
  }
  return last
}

/** Containers named after the app (the lock included): name → `<tag label or -> <state>`. */
function containersOf(target: Engine, name: string): Promise<Record<string, string>> {
  return containerStates(target, name, { lock: true })
}

/** `docker inspect -f <format> <name>`, or `(none: …)` when it does not exist. */
async function inspect(target: Engine, name: string, format: string): Promise<string> {
  const result = await target.dockerResult(['container', 'inspect', '--format', format, name])
  return result.exitCode === 0 ? result.stdout.trim() : `(none: ${result.stderr.trim()})`
}

function messages(result: ActionResult, level: Annotation['level']): string[] {
  return result.annotations.filter((entry) => entry.level === level).map((entry) => `${entry.title ?? ''}: ${entry.message}`)
}

/** The verdict of a run with its errors and warnings, so that a failed expectation shows why. */
function verdict(result: ActionResult): { exit: number | null; result?: string; tag?: string; previous?: string; errors: string[]; warnings: string[] } {
  return {
    exit: result.exitCode,
    result: result.outputs.result,
    tag: result.outputs.tag,
    previous: result.outputs['previous-tag'],
    errors: messages(result, 'error'),
    warnings: messages(result, 'warning')
  }
}

/** The summary as text (tags out, entities decoded), for matching sentences. */
function summaryText(result: ActionResult): string {
  return result.summary
    .replace(/<[^>]+>/g, ' ')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/[ \t]+/g, ' ')
}

/** Outputs, annotations, stderr's tail and `docker ps -a` of each engine, for an assertion message. */
async function diagnosis(result: ActionResult | undefined, engines: Engine[], extra = ''): Promise<string> {
  const parts: string[] = []
  if (result) {
    parts.push(`exit ${String(result.exitCode)}; outputs ${JSON.stringify(result.outputs)}`)
    parts.push(...result.annotations.map((entry) => `  ${entry.level} ${entry.title ?? ''}: ${entry.message.slice(0, 600)}`))
    if (result.stderr.trim()) parts.push(`stderr (tail): ${result.stderr.trim().slice(-800)}`)
  }
  for (const target of engines) {
    const listing = await target
      .dockerResult(['ps', '-a', '--format', '{{.Names}}\t{{.Image}}\t{{.Label "deploy-action.tag"}}\t{{.Status}}\t{{.ID}}'], { timeoutMs: 15_000 })
      .catch((error: Error) => ({ exitCode: -1, stdout: '', stderr: error.message }))
    parts.push(`docker ps -a (${target.dockerHost}):\n${listing.exitCode === 0 ? listing.stdout.trimEnd() : listing.stderr.trim()}`)
  }
  if (extra) parts.push(extra)
  return parts.join('\n')
}

/** Runs `assertions`; a failure carries `why()` in its message (jest repeats it at the end of the run). */
async function explained(why: () => Promise<string>, assertions: () => void | Promise<void>): Promise<void> {
  try {
    await assertions()
  } catch (error) {
    if (error instanceof Error) error.message = `${error.message}\n--- why ---\n${await why().catch((failure: Error) => `(diagnosis failed: ${failure.message})`)}`
    throw error
  }
}

/** `show servers state app` of the proxy, as server → srv_admin_state bits. */
async function adminStates(target: Site): Promise<Record<string, number>> {
  const output = await target.engine.docker(['exec', '-i', `${target.name}-proxy`, 'nc', '127.0.0.1', '9999'], { input: 'show servers state app\n', timeoutMs: 15_000 })
  const lines = output.split('\n').map((line) => line.trim())
  const header = lines.find((line) => line.startsWith('# be_id'))?.slice(2).split(/\s+/) ?? []
  const nameColumn = header.indexOf('srv_name')
  const adminColumn = header.indexOf('srv_admin_state')
  if (nameColumn < 0 || adminColumn < 0) throw new Error(`unexpected answer to show servers state: ${output.slice(0, 400)}`)
  const states: Record<string, number> = {}
  for (const line of lines.slice(lines.findIndex((entry) => entry.startsWith('# be_id')) + 1)) {
    if (line === '' || line.startsWith('#')) continue
    const fields = line.split(/\s+/)
    states[fields[nameColumn] ?? ''] = Number(fields[adminColumn])
  }
  return states
}

/** HAProxy admin-state bits that keep a server out of rotation: maintenance (forced, inherited, config, resolution) or drain. */
const OUT_OF_ROTATION = 0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x20

// ---------------------------------------------------------------------------------------------

describe('case 1: strategy: proxy after <name>-proxy was removed by hand', () => {
  it('re-creates the proxy around the slots, routing to the one that served, and deploys v1.2.0 as usual', async () => {
    const site = await proxySite('mend')
    await deployOk(site, 'v1.0.0')
    await deployOk(site, 'v1.1.0')
    expect(await containersOf(engine, site.name)).toEqual({ 'mend-proxy': '- running', 'mend-green': 'v1.1.0 running', 'mend-blue': 'v1.0.0 exited' })
    const green = await inspect(engine, 'mend-green', '{{.Id}}')
    await engine.docker(['rm', '--force', 'mend-proxy'])
    expect(await serving(site)).toBe('ECONNREFUSED')

    const result = await act(site, { tag: 'v1.2.0' })

    await explained(
      () => diagnosis(result, [engine]),
      async () => {
        expect({ serving: await serving(site), ...verdict(result) }).toMatchObject({ serving: '200 v1.2.0', exit: 0, result: 'deployed', tag: 'v1.2.0', previous: 'v1.1.0' })
        // As usual: the new version in the idle slot, the one that served before kept stopped, the very same container.
        expect(await containersOf(engine, site.name)).toEqual({ 'mend-proxy': '- running', 'mend-blue': 'v1.2.0 running', 'mend-green': 'v1.1.0 exited' })
        expect(await inspect(engine, 'mend-green', '{{.Id}}')).toBe(green)
        expect(await inspect(engine, 'mend-proxy', '{{.HostConfig.RestartPolicy.Name}}')).toBe('unless-stopped')
      }
    )
  }, 150_000)

  it('with a broken v1.2.0, the container that served v1.1.0 serves it again through a re-created proxy', async () => {
    const site = await proxySite('mendb', { repo: 'acme/broken', deadline: '4s' })
    await deployOk(site, 'v1.0.0')
    await deployOk(site, 'v1.1.0')
    const green = await inspect(engine, 'mendb-green', '{{.Id}}')
    await engine.docker(['rm', '--force', 'mendb-proxy'])

    const result = await act(site, { tag: 'v1.2.0' })

    await explained(
      () => diagnosis(result, [engine]),
      async () => {
        expect({ serving: await serving(site), exit: result.exitCode, tag: result.outputs.tag }).toEqual({ serving: '200 v1.1.0', exit: 1, tag: 'v1.1.0' })
        expect(['rolled-back', 'failed']).toContain(result.outputs.result)
        expect(await inspect(engine, 'mendb-green', '{{.Id}} {{.State.Status}}')).toBe(`${green} running`)
        expect(await inspect(engine, 'mendb-proxy', '{{.State.Status}}')).toBe('running')
      }
    )
  }, 150_000)
})

describe('case 2: a host reboot (dockerd stopped and started again, same data root)', () => {
  let rebooted: Engine

  beforeAll(async () => {
    rebooted = await startEngine({ extraDaemonArgs: proxyEngineArgs() })
  }, 60_000)

  afterAll(async () => {
    await removeContainersAndNetworks(rebooted).catch(() => undefined)
    await rebooted?.stop()
  }, 60_000)

  it('(a) strategy: replace from a Quick-start config without container.restart comes back serving; restart policy unless-stopped', async () => {
    // The README's Quick start, with this test's image, port and health body.
    const quick = await makeSite(fixture.dirs, 'quick', ({ port }) =>
      [
        `image: ${registry.address}/acme/app`,
        'name: quick',
        'url: https://web.example.com',
        'container:',
        '  network: host',
        `  env: { PORT: "${port}" }`,
        '  secrets: [DATABASE_URL]',
        '  init: true',
        'health:',
        `  url: http://127.0.0.1:${port}/health`,
        '  expect-body: ok',
        ''
      ].join('\n')
    )
    const site: Site = { ...quick, engine: rebooted, strategy: 'replace' }
    const result = await act(site, { tag: 'v1.0.0' }, { env: { DATABASE_URL: 'postgres://db.invalid/app' } })
    if (result.outputs.result !== 'deployed') throw new Error(`setup: deploy failed\n${await diagnosis(result, [rebooted])}`)
    expect(await serving(site)).toBe('200 v1.0.0')

    const startedBefore = await inspect(rebooted, 'quick', '{{.State.StartedAt}}')
    await rebooted.restart()

    const answer = await servingWithin(site, '200 v1.0.0', 30_000)
    await explained(
      () => diagnosis(result, [rebooted], `dockerd log (tail):\n${rebooted.log().slice(-1_500)}`),
      async () => {
        expect({ serving: answer, policy: await inspect(rebooted, 'quick', '{{.HostConfig.RestartPolicy.Name}}') }).toEqual({ serving: '200 v1.0.0', policy: 'unless-stopped' })
        const [running, started] = (await inspect(rebooted, 'quick', '{{.State.Running}} {{.State.StartedAt}}')).split(' ')
        expect(running).toBe('true')
        // Started again by the daemon, not left from before.
        expect(started).not.toBe(startedBefore)
      }
    )
  }, 150_000)

  it('(b) strategy: proxy comes back with the proxy and the live slot running, serving the live version', async () => {
    const site = await proxySite('boot', {}, rebooted)
    await deployOk(site, 'v1.0.0')
    await deployOk(site, 'v1.1.0')
    expect(await serving(site)).toBe('200 v1.1.0')

    await rebooted.restart()

    const answer = await servingWithin(site, '200 v1.1.0', 30_000)
    await explained(
      () => diagnosis(undefined, [rebooted], `dockerd log (tail):\n${rebooted.log().slice(-1_500)}`),
      async () => {
        expect(answer).toBe('200 v1.1.0')
        expect(await containersOf(rebooted, 'boot')).toEqual({ 'boot-proxy': '- running', 'boot-green': 'v1.1.0 running', 'boot-blue': 'v1.0.0 exited' })
        for (const name of ['boot-proxy', 'boot-green', 'boot-blue']) {
          expect(`${name}: ${await inspect(rebooted, name, '{{.HostConfig.RestartPolicy.Name}}')}`).toBe(`${name}: unless-stopped`)
        }
        // It keeps serving the live version, not a mix.
        for (let index = 0; index < 5; index++) expect(await serving(site)).toBe('200 v1.1.0')
      }
    )
  }, 150_000)
})

describe('case 3: rollback.on-failure: false with the proxy, the new version dying in the watch', () => {
  it('switches users back to the old version, says result=failed and tag=<old>, and keeps the failed slot out of rotation', async () => {
    const site = await proxySite('keep', { watch: '6s', onFailure: false })
    await deployOk(site, 'v1.0.0')
    const blue = await inspect(engine, 'keep-blue', '{{.Id}}')

    let stdout = ''
    let killed: Promise<void> | undefined
    const result = await act(
      site,
      { tag: 'v1.1.0' },
      {
        onStdout: (chunk) => {
          stdout += chunk
          if (killed || !stdout.includes('::group::Deploy · verify')) return
          // Inside the watch: v1.1.0 is healthy and serving, then dies.
          killed = (async () => {
            await servingWithin(site, '200 v1.1.0', 4_000)
            await sleep(500)
            await engine.docker(['kill', 'keep-green'])
          })()
        }
      }
    )
    await killed

    await explained(
      () => diagnosis(result, [engine], `summary:\n${summaryText(result).slice(0, 3_000)}`),
      async () => {
        expect(killed).toBeDefined()
        expect({ serving: await serving(site), ...verdict(result) }).toMatchObject({ serving: '200 v1.0.0', exit: 1, result: 'failed', tag: 'v1.0.0' })
        // The very container that served before serves again.
        expect(await inspect(engine, 'keep-blue', '{{.Id}} {{.State.Status}}')).toBe(`${blue} running`)
        // The failed version is kept for inspection, and out of rotation.
        expect(await containersOf(engine, site.name)).toEqual({ 'keep-proxy': '- running', 'keep-blue': 'v1.0.0 running', 'keep-green': 'v1.1.0 exited' })
        const states = await adminStates(site)
        expect({ states, greenOut: ((states.green ?? 0) & OUT_OF_ROTATION) !== 0, blueOut: ((states.blue ?? OUT_OF_ROTATION) & OUT_OF_ROTATION) !== 0 }).toMatchObject({
          greenOut: true,
          blueOut: false
        })
        // A restart of the proxy serves the old version too.
        expect(await engine.docker(['exec', 'keep-proxy', 'cat', '/usr/local/etc/haproxy/haproxy.cfg'])).toMatch(/Live slot: blue\./)
        for (let index = 0; index < 5; index++) expect(await serving(site)).toBe('200 v1.0.0')
        // The summary says both.
        const text = summaryText(result)
        expect(text).toMatch(/back on v1\.0\.0/)
        const sentences = text.split(/(?<=[.!?])\s+(?=[A-Z])/)
        const keptForInspection = sentences.filter(
          (sentence) => /v1\.1\.0|keep-green/.test(sentence) && /\b(not|nor|never|nothing was[\w ]*?)\s+removed\b|\bfor inspection\b|\bleft in place\b/i.test(sentence)
        )
        expect(keptForInspection).not.toEqual([])
      }
    )
  }, 150_000)
})

// ---------------------------------------------------------------------------------------------

describe('case 4: a fleet whose first host is new (network-namespace hosts)', () => {
  let lab: NamespaceFixture | undefined
  let registryPort: number
  let fresh: NamespaceHost
  let old: NamespaceHost

  beforeAll(async () => {
    lab = await startNamespaceFixture(2)
    ;[fresh, old] = lab.hosts as [NamespaceHost, NamespaceHost]
    registryPort = lab.registryPort
    const image = `127.0.0.1:${registryPort}/acme/web`
    // v1 healthy on both; v2 healthy on the new host and exits at once on the old one.
    await Promise.all(
      lab.hosts.map(async (host) => {
        for (const [tag, behaviour] of [['v1', 'healthy'], ['v2', host === old ? 'exits' : 'healthy']] as const) {
          await pushToNamespace(host, image, tag, behaviour)
        }
      })
    )
  }, 180_000)

  afterAll(async () => {
    await lab?.stop()
  }, 120_000)

  it('a failure on the old host leaves it serving v1 and nothing of the app on the new host; tag=v1', async () => {
    const { port, workspace } = await makeSite(fixture.dirs, 'fleet')
    const configFor = (hosts: NamespaceHost[]): string =>
      siteConfig({
        image: `127.0.0.1:${registryPort}/acme/web`,
        name: 'web',
        port,
        expectBody: 'ok',
        hosts: hosts.map((host) => ({ dockerHost: host.engine.dockerHost, address: host.address })),
        env: { BIND: '0.0.0.0' }
      })
    const run = (tag: string): Promise<ActionResult> =>
      runAction({ workspace, github: { apiUrl: github.url }, inputs: { tag }, timeoutMs: 120_000 })
    const at = (host: NamespaceHost): { url: string } => ({ url: `http://${host.address}:${port}/version` })

    writeDeployConfig(workspace, configFor([old]))
    const first = await run('v1')
    if (first.outputs.result !== 'deployed') throw new Error(`setup: v1 on the old host failed\n${await diagnosis(first, [old.engine])}`)
    expect(await serving(at(old))).toBe('200 v1')
    const before = await inspect(old.engine, 'web', '{{.Id}}')

    writeDeployConfig(workspace, configFor([fresh, old]))
    const result = await run('v2')

    await explained(
      () => diagnosis(result, [fresh.engine, old.engine], `old host's web was ${before}`),
      async () => {
        expect({ old: await serving(at(old)), fresh: await serving(at(fresh)) }).toEqual({ old: '200 v1', fresh: 'ECONNREFUSED' })
        expect(result.outputs.result).not.toBe('deployed')
        expect({ exit: result.exitCode, tag: result.outputs.tag }).toEqual({ exit: 1, tag: 'v1' })
        // Same or re-created container on the old host, but it runs v1; nothing of the app (lock included) on the new host.
        expect(await inspect(old.engine, 'web', '{{.State.Status}} {{index .Config.Labels "deploy-action.tag"}}')).toMatch(/^running (v1)?$/)
        expect(await containersOf(fresh.engine, 'web')).toEqual({})
      }
    )
  }, 240_000)
})

// ---------------------------------------------------------------------------------------------

/** A request that changes something on the engine (create, start, stop, rename, exec, remove, …). */
const MUTATING = /^(POST|PUT|DELETE) (?!\S*\/(json|wait|attach)\b)/
/**
 * Where in an upgrade the run of reset connections begins: when the action opens step `group`, at
 * once or (with `startAt`) at the first request after it that matches, so that the engine has acted
 * on it but the action never hears the answer.
 */
const POINTS: { label: string; group: string; mode: ResetMode; startAt?: RegExp; skip?: number }[] = [
  { label: 'early, reading what runs', group: 'Deploy · current', mode: 'accept' },
  // The proxy's second read of what runs is which slot HAProxy routes to (runtime API, then the config file).
  { label: 'reading what runs, from its second connection', group: 'Deploy · current', mode: 'response', skip: 1 },
  { label: 'at the switch, from its first change', group: 'Deploy · switch', mode: 'response', startAt: MUTATING },
  { label: 'during verify', group: 'Deploy · verify', mode: 'response' },
  { label: 'during clean-up, from its first change', group: 'Deploy · clean up', mode: 'response', startAt: MUTATING }
]
const RESETS = 4

describe('case 5: a docker connection that drops', () => {
  it('the flaky socket forwards docker commands and resets exactly the selected connections', async () => {
    const flaky = await startFlakySocket(engine.dockerHost)
    cleanups.push(() => flaky.close())
    const env = engine.env({ DOCKER_HOST: flaky.dockerHost })
    const ok = await runDocker(['version', '--format', '{{.Server.Version}}'], env)
    expect(ok).toMatchObject({ exitCode: 0, stdout: expect.stringMatching(/\S/) })
    // run -i: a hijacked, half-closed stream passes both ways.
    const echoed = await runDocker(['run', '--rm', '-i', '--network', 'none', probeImage, 'cat'], env, { input: 'through the forwarder\n' })
    expect(echoed.stdout).toBe('through the forwarder\n')
    const from = flaky.accepted + 1
    flaky.resetRange(from, 2, 'accept')
    const failed = await runDocker(['ps', '-a'], env)
    expect(failed.exitCode).not.toBe(0)
    expect(flaky.resets).toEqual([from, from + 1])
    // The engine acted, but the client never heard: the command's outcome is unknown to it.
    flaky.resetNext(1, 'response')
    const lost = await runDocker(['network', 'create', 'flaky-probe-net'], env)
    expect(lost.exitCode).not.toBe(0)
    expect((await engine.docker(['network', 'ls', '--format', '{{.Name}}'])).split('\n')).toContain('flaky-probe-net')
    await engine.docker(['network', 'rm', 'flaky-probe-net'])
    const after = await runDocker(['ps', '-a'], env)
    expect(after.exitCode).toBe(0)
  }, 60_000)

  const cases = (['replace', 'proxy'] as const).flatMap((strategy) => POINTS.map((point, index) => ({ strategy, point, index })))
  it.each(cases)('$strategy: 4 connections reset $point.label ($point.mode): a version serves, the outputs say which, the lock is released', async ({ strategy, point, index }) => {
    const name = `drop${strategy === 'proxy' ? 'p' : 'r'}${index}`
    const site = strategy === 'proxy' ? await proxySite(name) : await replaceSite(name)
    await deployOk(site, 'v1.0.0')
    // The container that serves v1.0.0: not created by the coming run, so it must not remove it unless v1.1.0 ends healthy.
    const old = await inspect(engine, strategy === 'proxy' ? `${name}-blue` : name, '{{.Id}}')
    const flaky = await startFlakySocket(engine.dockerHost)
    cleanups.push(() => flaky.close())
    // Only through the forwarder: no DOCKER_HOST, so a command that bypassed it would fail.
    const through = (inputs: Record<string, string>, extra: Partial<RunActionOptions> = {}): Promise<ActionResult> =>
      act(site, { 'docker-host': flaky.dockerHost, ...inputs }, { dockerHost: undefined, ...extra })

    let stdout = ''
    let armedAt = 0
    const main = await through(
      { tag: 'v1.1.0' },
      {
        onStdout: (chunk) => {
          stdout += chunk
          if (armedAt === 0 && stdout.includes(`::group::${point.group}`)) {
            armedAt = flaky.accepted + 1 + (point.skip ?? 0)
            if (point.skip) flaky.resetRange(armedAt, RESETS, point.mode)
            else flaky.resetNext(RESETS, point.mode, { startAt: point.startAt })
          }
        }
      }
    )
    const afterMain = await serving(site)
    const lockAfterMain = await inspect(engine, `${name}-deploy-lock`, '{{.State.Status}}')
    flaky.clearResets()
    const post = await through({ tag: 'v1.1.0' }, { phase: 'post', state: main.state })
    const afterPost = await serving(site)

    const why = async (): Promise<string> =>
      `${await diagnosis(main, [engine])}\nserving after main: ${afterMain}; after post: ${afterPost}; lock after main: ${lockAfterMain}\n` +
      `v1.0.0 container before: ${old}\npost: exit ${String(post.exitCode)}\n${post.annotations.map((entry) => `  ${entry.level} ${entry.title ?? ''}: ${entry.message.slice(0, 400)}`).join('\n')}\n` +
      `connections (reset run armed at #${armedAt}):\n${flaky.describe()}`
    console.log(
      `unknown-state.itg ${strategy} ${point.label}: result=${main.outputs.result ?? ''} tag=${main.outputs.tag ?? ''} previous-tag=${main.outputs['previous-tag'] ?? ''} exit=${String(main.exitCode)}; ` +
        `serving ${afterMain} → after post ${afterPost}; lock after main: ${lockAfterMain}; resets #${flaky.resets.join(', #')}: ` +
        flaky.connections.filter((entry) => entry.reset).map((entry) => entry.requests.filter((line) => !line.includes('_ping')).join(' ') || '(ping)').join(' | ') +
        `; errors: ${messages(main, 'error').map((line) => line.slice(0, 200)).join(' | ')}`
    )
    await explained(why, async () => {
      // The point was reached and the connections were really reset.
      expect(armedAt).toBeGreaterThan(0)
      expect(flaky.resets.length).toBeGreaterThanOrEqual(point.mode === 'accept' ? RESETS : 1)
      // A version serves, and the outputs agree with it.
      expect(['200 v1.0.0', '200 v1.1.0']).toContain(afterMain)
      expect(['200 v1.0.0', '200 v1.1.0']).toContain(afterPost)
      if (main.outputs.result === 'deployed') {
        expect({ tag: main.outputs.tag, serving: afterMain }).toEqual({ tag: 'v1.1.0', serving: '200 v1.1.0' })
      } else if (main.outputs.tag) {
        expect(afterMain).toBe(`200 ${main.outputs.tag}`)
        expect(main.exitCode).toBe(1)
      }
      expect(['deployed', 'rolled-back', 'failed']).toContain(main.outputs.result)
      // Whatever it went on to do, it knew what ran before: unknown was never taken for "nothing runs".
      if (main.outputs.result !== 'failed') expect(main.outputs['previous-tag']).toBe('v1.0.0')
      if (main.outputs.result !== 'deployed') expect(await inspect(engine, old, '{{.Id}}')).toBe(old)
      // The deploy lock is gone after the post step at the latest.
      expect(await containersOf(engine, name)).not.toHaveProperty(`${name}-deploy-lock`)
      expect(post.exitCode).toBe(0)
    })
  }, 150_000)
})
