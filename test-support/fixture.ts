/**
 * The set-up the integration tests and the bench share (issue 21, "The bench, as a house"): one
 * place for what every real-engine test file used to write out for itself.
 *
 * - `startFixture()`: a private engine, a registry with auth, optionally the fake GitHub API, and
 *   the temporary directories made for them, all stopped by one `stop()`. With `addressPool`, an
 *   engine for user networks (`strategy: proxy`): `freeAddressPool()`, `removeContainersAndNetworks()`.
 * - `pushAppImages()`: the test app images, built in the engine and pushed to the registry;
 *   `pushProxyImage()`: the test HAProxy, for `proxy.image`.
 * - `startNamespaceFixture()` / `pushToNamespace()`: the same for network-namespace hosts, each
 *   with a registry of its own on its own loopback (fleets).
 * - `makeSite()` / `siteConfig()` / `proxySiteConfig()` / `writeDeployConfig()`: a workspace with a
 *   deploy config (the tests' usual one: host networking, fast health checks; or behind the proxy)
 *   on a free port.
 * - `runStep()` / `postStep()`: one step of the action for a site, as the runner runs it.
 * - Reading the result: `transcriptOf`, `expectResult`, `expectDeployed`, `annotation`, `titles`,
 *   `hostRows`, `stepOrder`; and the engine: `containersNamed`, `containerStates`, `servedAt`,
 *   `servedVersions`.
 * - `initSwarm()` / `leaveSwarm()` / `removeGatewayBridge()`: a single-node swarm that touches
 *   nothing outside the test.
 *
 * Used by __tests__/{deploy,faults,promises,swarm,clean-host,fleet,multi-host,events,targets,
 * unknown-state,deployments,secrets,unlock,takeover,quick-start}.itg.ts and by the bench
 * (scripts/bench/harness.ts, fleet.ts, runner.ts, ssh.ts). What a file's scenarios need and no
 * other file does (its deploy config, its own probes) stays in that file.
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runAction, type ActionResult, type Annotation, type RunActionOptions } from './action-run.js'
import { startEngine, type Engine, type EngineOptions } from './engine.js'
import { start as startFakeGitHub, type FakeGitHub } from './fake-github.js'
import { pushHaproxyImage, type PushedHaproxyImage } from './haproxy-image.js'
import { buildAppImage, type AppBehaviour, type AppImageOptions } from './images.js'
import { startNamespaceRegistry, type NamespaceRegistry } from './namespace-registry.js'
import { freePort, httpGet } from './net.js'
import { startNamespacedEngines, type NamespaceHost, type NamespaceLab } from './netns.js'
import { startRegistry, type Registry } from './registry.js'

// ---------------------------------------------------------------------------------------------
// Temporary directories

/** Temporary directories made for one test file or bench run, removed together at its end. */
export interface TempDirs {
  /** A fresh directory under the OS temp dir, named `<prefix>XXXXXX`. */
  make(prefix: string): string
  /** Removes every directory made so far. */
  remove(): Promise<void>
}

export function tempDirs(): TempDirs {
  const made: string[] = []
  return {
    make(prefix) {
      const dir = mkdtempSync(join(tmpdir(), prefix))
      made.push(dir)
      return dir
    },
    async remove() {
      await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Engine, registry and the fake GitHub API

export interface Fixture {
  engine: Engine
  registry: Registry
  /** The fake GitHub API, when asked for: `runStep` then points the action at it. */
  github?: FakeGitHub
  /** Workspaces and other directories of this fixture's tests: removed by `stop()`. */
  dirs: TempDirs
  /** Stops what was started, in reverse, and removes `dirs`. Idempotent; safe after a failed start of a test. */
  stop(): Promise<void>
}

export interface FixtureOptions {
  /** Start the fake GitHub API too. */
  github?: boolean
  /**
   * An engine for user networks (`strategy: proxy`'s `<name>-net`, a `container.network`): its
   * networks come from this `--default-address-pool` (e.g. from `freeAddressPool()`), so that two
   * engines on this machine never put one subnet on two bridges, and its containers get
   * `--dns 127.0.0.1`, so that nothing forwards DNS beyond them. `stop()` then removes the
   * containers and user networks before it stops the engine (`removeContainersAndNetworks`).
   */
  addressPool?: string
}

/**
 * A private engine (test-support/engine.ts) and a registry with basic auth that it can log in to
 * (test-support/registry.ts), and with `github: true` the local fake of the GitHub API. When a
 * part fails to start, what did start is stopped before the error is thrown, so an `afterAll`
 * that finds no fixture leaves nothing behind.
 */
export async function startFixture(options?: FixtureOptions & { github?: false }): Promise<Fixture>
export async function startFixture(options: FixtureOptions & { github: true }): Promise<Fixture & { github: FakeGitHub }>
export async function startFixture(options: FixtureOptions = {}): Promise<Fixture> {
  const engineOptions: EngineOptions = options.addressPool ? { extraDaemonArgs: userNetworkEngineArgs(options.addressPool) } : {}
  const engine = await startEngine(engineOptions)
  const dirs = tempDirs()
  let registry: Registry | undefined
  let github: FakeGitHub | undefined
  const stopAll = async (): Promise<void> => {
    await github?.stop()
    await registry?.stop()
    try {
      if (options.addressPool) await removeContainersAndNetworks(engine)
    } finally {
      await engine.stop()
      await dirs.remove()
    }
  }
  try {
    registry = await startRegistry(engine)
    if (options.github) github = await startFakeGitHub()
  } catch (error) {
    await stopAll()
    throw error
  }
  let stopping: Promise<void> | undefined
  return { engine, registry, github, dirs, stop: () => (stopping ??= stopAll()) }
}

/** dockerd flags for an engine with user networks: see `FixtureOptions.addressPool`. */
export function userNetworkEngineArgs(addressPool: string): string[] {
  return ['--default-address-pool', addressPool, '--dns', '127.0.0.1']
}

/**
 * The /20 blocks of each `10.N.0.0/16` that `freeAddressPool` handed out in this process: an
 * engine started with one may have no bridge there yet, so `ip` cannot show it as taken.
 */
const handedOut = new Map<number, Set<number>>()

/**
 * A /20 of `10.<secondOctet>.0.0/16` that no address or route here uses yet (and not handed out
 * before in this process), as a `--default-address-pool` value. Each test file that starts such
 * engines has a /16 of its own, so that files that run side by side never pick the same /20.
 */
export function freeAddressPool(secondOctet: number): string {
  const taken = handedOut.get(secondOctet) ?? new Set<number>()
  handedOut.set(secondOctet, taken)
  const used = new Set<number>(taken)
  const inRange = new RegExp(`10\\.${secondOctet}\\.(\\d+)\\.`, 'g')
  for (const args of [['-4', '-o', 'addr', 'show'], ['-4', 'route', 'show', 'table', 'all']]) {
    const listing = spawnSync('ip', args, { encoding: 'utf8' }).stdout ?? ''
    for (const match of listing.matchAll(inRange)) used.add(Math.floor(Number(match[1]) / 16))
  }
  const free = Array.from({ length: 16 }, (_, index) => index).filter((block) => !used.has(block))
  const block = free[Math.floor(Math.random() * free.length)]
  if (block === undefined) throw new Error(`no free /20 in 10.${secondOctet}.0.0/16 for an engine address pool`)
  taken.add(block)
  return `base=10.${secondOctet}.${block * 16}.0/20,size=24`
}

/** Containers first, then the user networks: dockerd would leave their bridges behind when it stops. */
export async function removeContainersAndNetworks(engine: Engine | undefined): Promise<void> {
  if (!engine?.running) return
  const containers = (await engine.docker(['ps', '-aq'])).split('\n').filter(Boolean)
  if (containers.length > 0) await engine.docker(['rm', '--force', ...containers])
  const networks = (await engine.docker(['network', 'ls', '--quiet', '--filter', 'type=custom'])).split('\n').filter(Boolean)
  if (networks.length > 0) await engine.docker(['network', 'rm', ...networks])
}

// ---------------------------------------------------------------------------------------------
// App images

/** One tag of the test app and how it behaves (test-support/images.ts). */
export interface AppImageSpec {
  tag: string
  behaviour: AppBehaviour
  options?: AppImageOptions
}

export interface PushOptions {
  /** The repository the image is built under in the engine before the push. Default `local/web`. */
  localRepo?: string
  /** Builds at once (each is a tar and a `docker import` of a busybox tree). Default 1. */
  concurrency?: number
  /**
   * Keep the built and pushed tags in the engine. The tests remove them, so that only the
   * registry holds the images and every deploy really pulls (and needs its login); the bench
   * keeps them, so that a pull measures the action's step rather than the download.
   */
  keepLocal?: boolean
}

/** Builds each image in the fixture's engine and pushes it to `registry/repo:tag`; resolves with tag → registry digest. */
export async function pushAppImages(
  fixture: Pick<Fixture, 'engine' | 'registry'>,
  repo: string,
  images: readonly AppImageSpec[],
  options: PushOptions = {}
): Promise<Map<string, string>> {
  const { engine, registry } = fixture
  const digests = new Map<string, string>()
  const queue = [...images]
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const built = await buildAppImage(engine, options.localRepo ?? 'local/web', next.tag, next.behaviour, next.options)
      const pushed = await registry.push(engine, built.reference, repo, next.tag)
      digests.set(next.tag, pushed.digest)
      if (!options.keepLocal) await engine.docker(['image', 'rm', built.reference, pushed.reference])
    }
  }
  await Promise.all(Array.from({ length: options.concurrency ?? 1 }, worker))
  return digests
}

/**
 * The test HAProxy (test-support/haproxy-image.ts), pushed to the fixture's registry for
 * `proxy.image`. Only the registry keeps it, so the action pulls (and logs in for) its proxy image
 * as it does on a host.
 */
export async function pushProxyImage(fixture: Pick<Fixture, 'engine' | 'registry'>): Promise<PushedHaproxyImage> {
  const haproxy = await pushHaproxyImage(fixture.engine, fixture.registry)
  await fixture.engine.docker(['image', 'rm', haproxy.pushed.reference, haproxy.reference])
  return haproxy
}

// ---------------------------------------------------------------------------------------------
// Network-namespace hosts, each with its own registry

export interface NamespaceFixture {
  lab: NamespaceLab
  hosts: NamespaceHost[]
  /**
   * The port of every host's registry, on that host's own 127.0.0.1: `127.0.0.1:PORT/repo:tag` is
   * the same string on every host while each pull stays inside its namespace, so one tag can be
   * broken on one host only.
   */
  registryPort: number
  /** Stops the registries, then the engines and namespaces. Idempotent. */
  stop(): Promise<void>
}

/** `count` namespace hosts (test-support/netns.ts), each with a registry without auth on its own loopback. */
export async function startNamespaceFixture(count: number): Promise<NamespaceFixture> {
  const lab = await startNamespacedEngines(count)
  const registries: NamespaceRegistry[] = []
  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await Promise.all(registries.map((registry) => registry.stop()))
      await lab.stop()
    })())
  try {
    // Any port: each namespace has a loopback of its own, and nothing else listens there.
    const registryPort = await freePort()
    for (const host of lab.hosts) registries.push(await startNamespaceRegistry(host, registryPort))
    return { lab, hosts: lab.hosts, registryPort, stop }
  } catch (error) {
    await stop()
    throw error
  }
}

/**
 * Builds `tag` with `behaviour` in the host's engine and pushes it as `image:tag` (`image` being
 * `127.0.0.1:PORT/repo`) to the host's own registry. The built tag is removed; `keepPushed` (the
 * bench) keeps `image:tag` in the engine, as `PushOptions.keepLocal` does.
 */
export async function pushToNamespace(
  host: NamespaceHost,
  image: string,
  tag: string,
  behaviour: AppBehaviour,
  options: { app?: AppImageOptions; keepPushed?: boolean } = {}
): Promise<void> {
  const built = await buildAppImage(host.engine, 'local/web', tag, behaviour, options.app)
  const reference = `${image}:${tag}`
  await host.engine.docker(['tag', built.reference, reference])
  await host.engine.docker(['push', reference])
  await host.engine.docker(['image', 'rm', built.reference, ...(options.keepPushed ? [] : [reference])])
}

// ---------------------------------------------------------------------------------------------
// Sites: a workspace with a deploy config, on a port of its own

/** One app to deploy: its container (or service) name, its port, and the workspace with its config. */
export interface Site {
  name: string
  port: number
  workspace: string
}

/** Writes `text` as the workspace's `.github/<file>` (default `deploy.yml`, what the action reads without a `config` input). */
export function writeDeployConfig(workspace: string, text: string, file = 'deploy.yml'): void {
  mkdirSync(join(workspace, '.github'), { recursive: true })
  writeFileSync(join(workspace, '.github', file), text)
}

/** What `siteConfig` writes; every list of lines is placed as given, indented already. */
export interface SiteConfigOptions {
  image: string
  name: string
  port: number
  /** `health.expect-body`: the body of the app's healthy `/health`. */
  expectBody: string
  /** `health.deadline`. Default `4s`. */
  deadline?: string
  /** `rollback.to`. Default `previous`. */
  rollbackTo?: string
  /**
   * `hosts:` entries. With them the health URL names `{host}`, each entry's address: a unix://
   * engine has no address of its own, and the app listens where `env.BIND` says.
   */
  hosts?: { dockerHost: string; address: string }[]
  /** `container.env` beside `PORT`. */
  env?: Record<string, string>
  /** Top-level lines after `name:`, e.g. `strategy:` or `rollout:`. */
  top?: string[]
  /** Lines at the end of `container:`, e.g. `  volumes:`. */
  container?: string[]
  /** Lines at the end of `health:`, e.g. `  watch: 3s`. */
  health?: string[]
  /** Top-level lines at the end, e.g. `lock:` or `retain:`. */
  tail?: string[]
}

/**
 * The deploy config the tests share: one app with host networking on `port`, stopped within 2 s,
 * probed every 150 ms with a 1 s timeout until two probes in a row answer `expectBody`, so that a
 * healthy deploy takes well under a second and a broken one fails within its `deadline`.
 */
export function siteConfig(options: SiteConfigOptions): string {
  const env = { PORT: String(options.port), ...options.env }
  return [
    `image: ${options.image}`,
    `name: ${options.name}`,
    ...(options.top ?? []),
    ...(options.hosts ? ['hosts:', ...options.hosts.flatMap((host) => [`  - docker-host: ${host.dockerHost}`, `    address: ${host.address}`])] : []),
    'container:',
    '  network: host',
    '  init: true',
    '  stop-timeout: 2s',
    '  env:',
    ...Object.entries(env).map(([key, value]) => `    ${key}: "${value}"`),
    ...(options.container ?? []),
    'health:',
    `  url: http://${options.hosts ? '{host}' : '127.0.0.1'}:${options.port}/health`,
    `  expect-body: "${options.expectBody}"`,
    '  interval: 150ms',
    '  timeout: 1s',
    `  deadline: ${options.deadline ?? '4s'}`,
    '  healthy-threshold: 2',
    ...(options.health ?? []),
    'rollback:',
    `  to: ${options.rollbackTo ?? 'previous'}`,
    ...(options.tail ?? []),
    ''
  ].join('\n')
}

/** What `proxySiteConfig` writes; every list of lines is placed as given, indented already. */
export interface ProxySiteConfigOptions {
  image: string
  name: string
  /** `proxy.port`, on 127.0.0.1: where users (and the health check) reach the app. */
  port: number
  /** `proxy.app-port`: where the app listens in its slot, on all of the slot's addresses (`BIND`). */
  appPort: number
  /** `proxy.image`: the test HAProxy in the registry (`pushProxyImage`). */
  proxyImage: string
  /** `health.expect-body`. */
  expectBody: string
  /** `proxy.drain`. Default `5s`. */
  drain?: string
  /** `health.interval`. Default `250ms`. */
  interval?: string
  /** `health.timeout`. Default `3s`: a probe goes through HAProxy. */
  timeout?: string
  /** `health.deadline`. Default `12s`. */
  deadline?: string
  /** `health.watch`. */
  watch: string
  /** Lines at the end of `container:`, e.g. `  restart: always`. */
  container?: string[]
  /** Lines at the end of `rollback:`, e.g. `  on-failure: false`. */
  rollback?: string[]
}

/**
 * The deploy config of the tests' `strategy: proxy` apps: HAProxy publishes `port` on 127.0.0.1
 * and routes to the live slot's `appPort` on the app's own network (the slot publishes nothing);
 * two probes in a row through the proxy must answer `expectBody`.
 */
export function proxySiteConfig(options: ProxySiteConfigOptions): string {
  return [
    `image: ${options.image}`,
    `name: ${options.name}`,
    'strategy: proxy',
    'proxy:',
    `  port: ${options.port}`,
    '  bind: 127.0.0.1',
    `  app-port: ${options.appPort}`,
    `  image: ${options.proxyImage}`,
    `  drain: ${options.drain ?? '5s'}`,
    'container:',
    '  init: true',
    '  stop-timeout: 2s',
    '  env:',
    '    BIND: 0.0.0.0',
    `    PORT: "${options.appPort}"`,
    ...(options.container ?? []),
    'health:',
    `  url: http://127.0.0.1:${options.port}/health`,
    `  expect-body: "${options.expectBody}"`,
    `  interval: ${options.interval ?? '250ms'}`,
    `  timeout: ${options.timeout ?? '3s'}`,
    `  deadline: ${options.deadline ?? '12s'}`,
    '  healthy-threshold: 2',
    `  watch: ${options.watch}`,
    'rollback:',
    ...(options.rollback ?? []),
    '  to: previous',
    ''
  ].join('\n')
}

/**
 * A fresh workspace in `dirs` for `name`, on `port` (default: a free one), with the deploy
 * config `config` gives for it (none when omitted: the caller writes its own, e.g. with
 * `writeDeployConfig`).
 */
export async function makeSite(dirs: TempDirs, name: string, config?: (site: Site) => string, options: { port?: number } = {}): Promise<Site> {
  const site: Site = { name, port: options.port ?? (await freePort()), workspace: dirs.make(`deploy-action-site-${name}-`) }
  mkdirSync(join(site.workspace, '.github'))
  if (config) writeDeployConfig(site.workspace, config(site))
  return site
}

// ---------------------------------------------------------------------------------------------
// Running the action

/** The inputs that log the action in to `registry`. */
export function registryInputs(registry: Registry): Record<string, string> {
  return { 'registry-username': registry.username, 'registry-password': registry.password }
}

/**
 * One main step of the action for `site` as the runner runs it: against the fixture's engine,
 * logged in to its registry, and with the fake GitHub API when the fixture has one. `inputs` come
 * after the login's (so a test can pass a wrong password); `options` after everything else (so a
 * test can name another engine, or none: `dockerHost: undefined`).
 */
export function runStep(
  fixture: Fixture,
  site: Pick<Site, 'workspace'>,
  inputs: Record<string, string | number | boolean>,
  options: Omit<Partial<RunActionOptions>, 'workspace' | 'inputs'> = {}
): Promise<ActionResult> {
  return runAction({
    workspace: site.workspace,
    dockerHost: fixture.engine.dockerHost,
    ...(fixture.github && { github: { apiUrl: fixture.github.url } }),
    inputs: { ...registryInputs(fixture.registry), ...inputs },
    ...options
  })
}

/** The post step of `main`: the inputs of its main step, and the state it saved. */
export function postStep(
  fixture: Fixture,
  site: Pick<Site, 'workspace'>,
  main: ActionResult,
  inputs: Record<string, string | number | boolean>,
  options: Omit<Partial<RunActionOptions>, 'workspace' | 'inputs' | 'phase' | 'state'> = {}
): Promise<ActionResult> {
  return runStep(fixture, site, inputs, { ...options, phase: 'post', state: main.state })
}

// ---------------------------------------------------------------------------------------------
// Reading a run

/**
 * The action's exit and output, for a failure message. `tail` keeps the last 6,000 characters of
 * stdout and 2,000 of stderr, for runs that print a lot.
 */
export function transcriptOf(result: ActionResult, options: { tail?: boolean } = {}): string {
  const stdout = options.tail ? result.stdout.slice(-6_000) : result.stdout
  const stderr = options.tail ? result.stderr.slice(-2_000) : result.stderr
  const signal = result.signal === null ? '' : ` signal ${result.signal}`
  return `exit ${String(result.exitCode)}${signal}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`
}

/** Throws, with the run's error annotations and the end of its stderr, unless its `result` output is `expected`. */
export function expectResult(result: ActionResult, expected: string, what?: string): void {
  if (result.outputs.result === expected) return
  const errors = result.annotations.filter((entry) => entry.level === 'error').map((entry) => `${entry.title}: ${entry.message}`)
  throw new Error(
    `${what ? `${what}: ` : ''}expected result=${expected}, got ${result.outputs.result ?? '(none)'} (exit ${result.exitCode})\n${errors.join('\n')}\n${result.stderr.slice(-2_000)}`
  )
}

/** Throws with the whole transcript unless the run deployed (exit 0, `result: deployed`); returns it otherwise. */
export function expectDeployed(result: ActionResult, tag: string): ActionResult {
  if (result.exitCode !== 0 || result.outputs.result !== 'deployed') throw new Error(`deploy of ${tag} failed:\n${transcriptOf(result)}`)
  return result
}

/** The first annotation of `level` titled `title`. */
export function annotation(result: ActionResult, level: Annotation['level'], title: string): Annotation | undefined {
  return result.annotations.find((entry) => entry.level === level && entry.title === title)
}

/** Titles of the annotations of one level, in order. */
export function titles(result: ActionResult, level: Annotation['level']): string[] {
  return result.annotations.filter((entry) => entry.level === level).map((entry) => entry.title ?? '')
}

/** The summary's Hosts table as [host, before, now, outcome] rows. */
export function hostRows(summary: string): string[][] {
  const section = /<h3>Hosts<\/h3>\s*<table>([\s\S]*?)<\/table>/.exec(summary)?.[1] ?? ''
  return [...section.matchAll(/<tr>((?:<td>[\s\S]*?<\/td>)+)<\/tr>/g)].map((row) =>
    [...(row[1] ?? '').matchAll(/<td>([\s\S]*?)<\/td>/g)].map((cell) => (cell[1] ?? '').replace(/<[^>]+>/g, ''))
  )
}

/**
 * Step titles in the order they began: log groups (one host at a time) and `▶ title` lines (steps
 * that run side by side on several hosts, which print their title the moment they begin).
 */
export function stepOrder(stdout: string): string[] {
  return [...stdout.matchAll(/^(?:::group::|▶ )(.*)$/gm)].map((match) => match[1] ?? '')
}

// ---------------------------------------------------------------------------------------------
// What the engine runs and what serves

/** Containers named `name` or `name-…` (the deploy lock included): name → `deploy-action.tag` label and state. */
export async function containersNamed(engine: Engine, name: string): Promise<Record<string, { tag: string; state: string }>> {
  const listed = await engine.docker(['ps', '-a', '--format', '{{.Names}}\t{{.Label "deploy-action.tag"}}\t{{.State}}'])
  const result: Record<string, { tag: string; state: string }> = {}
  for (const line of listed.split('\n').filter(Boolean)) {
    const [container = '', tag = '', state = ''] = line.split('\t')
    if (container === name || container.startsWith(`${name}-`)) result[container] = { tag, state }
  }
  return result
}

/**
 * `containersNamed` as `<tag label, or -> <state>`, the shape a `toEqual` over a whole app reads
 * best in; without the deploy lock (which comes and goes with each run) unless `lock: true`.
 */
export async function containerStates(engine: Engine, name: string, options: { lock?: boolean } = {}): Promise<Record<string, string>> {
  const named = Object.entries(await containersNamed(engine, name))
  return Object.fromEntries(
    named.filter(([container]) => options.lock || !container.endsWith('-deploy-lock')).map(([container, { tag, state }]) => [container, `${tag || '-'} ${state}`])
  )
}

/** What answers at `url`: `<status> <body>`, or the connection error's code (e.g. `ECONNREFUSED`), so an assertion can compare either. */
export async function servedAt(url: string): Promise<string> {
  try {
    const response = await httpGet(url, { timeoutMs: 2_000 })
    return `${response.status} ${response.body}`
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error)
  }
}

/** The `/version` body each namespace host serves on `port`, read at its address; `unreachable: …` for one that does not answer. */
export async function servedVersions(hosts: readonly NamespaceHost[], port: number): Promise<string[]> {
  return Promise.all(
    hosts.map((host) =>
      httpGet(`http://${host.address}:${port}/version`).then(
        (response) => response.body,
        (error: Error) => `unreachable: ${error.message}`
      )
    )
  )
}

// ---------------------------------------------------------------------------------------------
// A single-node swarm

/** A /24 in 10.252.0.0/16 that no address or route here uses yet. */
function freeGatewaySubnet(): string {
  const used = new Set<number>()
  for (const args of [['-4', '-o', 'addr', 'show'], ['-4', 'route', 'show', 'table', 'all']]) {
    const listing = spawnSync('ip', args, { encoding: 'utf8' }).stdout ?? ''
    for (const match of listing.matchAll(/10\.252\.(\d+)\./g)) used.add(Number(match[1]))
  }
  const free = Array.from({ length: 254 }, (_, index) => index + 1).filter((octet) => !used.has(octet))
  const octet = free[Math.floor(Math.random() * free.length)]
  if (octet === undefined) throw new Error('no free /24 in 10.252.0.0/16 for docker_gwbridge')
  return `10.252.${octet}.0/24`
}

/**
 * Turns the engine into a single-node swarm that touches nothing outside the test: the gateway
 * bridge gets a subnet and interface name of its own (the default docker_gwbridge name and
 * 172.18.0.0/16 could clash with another engine on this machine), the swarm listens on 127.0.0.1
 * on free ports, and the ingress overlay, which host networking does not need, is removed.
 * Resolves with the bridge's interface name, for `removeGatewayBridge`.
 */
export async function initSwarm(engine: Engine): Promise<string> {
  const bridge = `dagw${randomBytes(4).toString('hex')}`
  await engine.docker([
    'network', 'create',
    '--subnet', freeGatewaySubnet(),
    '--opt', `com.docker.network.bridge.name=${bridge}`,
    '--opt', 'com.docker.network.bridge.enable_icc=false',
    '--opt', 'com.docker.network.bridge.enable_ip_masquerade=false',
    'docker_gwbridge'
  ])
  const listenPort = await freePort()
  const dataPathPort = await freePort()
  await engine.docker([
    'swarm', 'init',
    '--advertise-addr', '127.0.0.1',
    '--listen-addr', `127.0.0.1:${listenPort}`,
    '--data-path-addr', '127.0.0.1',
    '--data-path-port', String(dataPathPort)
  ])
  // `docker network rm ingress` asks for confirmation on stdin.
  await engine.docker(['network', 'rm', 'ingress'], { input: 'y\n' })
  return bridge
}

/** Leaves the swarm and removes docker_gwbridge; errors are ignored, as this runs in tear-down. */
export async function leaveSwarm(engine: Engine): Promise<void> {
  await engine.dockerResult(['swarm', 'leave', '--force'], { timeoutMs: 30_000 }).catch(() => undefined)
  await engine.dockerResult(['network', 'rm', 'docker_gwbridge']).catch(() => undefined)
}

/** dockerd removes the bridge with the network; deletes it only if it was left behind (after the engine stopped). */
export function removeGatewayBridge(bridge: string | undefined): void {
  if (bridge && spawnSync('ip', ['link', 'show', bridge], { stdio: 'ignore' }).status === 0) {
    spawnSync('ip', ['link', 'delete', bridge], { stdio: 'ignore' })
  }
}
