/**
 * The wide fault sweep ("Unknown is not absent"): the whole story, `deploy()` then `post()`, on
 * fleets of in-memory hosts that start from different states, with windows of failing docker
 * commands (a connection that stays down for a moment), cancels, and reads that cannot be answered.
 *
 * Start states of a host: `nothing`; `deployed` (v1 deployed by the action); `hand` (strategy
 * replace: a container `web` started by hand from `:v0-hand`, without the action's labels);
 * `proxy-removed` (strategy proxy: v0 then v1 deployed, so `web-green` runs v1 and `web-blue` keeps
 * v0 stopped, then `docker rm -f web-proxy`). Scenarios: a healthy upgrade to v2; v2 failing on
 * every host (replace: it crashes at start; proxy: it dies once users are switched to it); v2
 * failing on the last host only (the hosts before it took v2 and were healthy).
 *
 * What runs, chosen to stay well under 90 s on two cores (about 30 s of CPU; each host is seeded
 * once per start state and copied for every run; health.watch is 300 ms):
 * - one host, strategies replace and proxy, every start state, healthy and failing,
 *   rollback.on-failure true and false: no fault; the full window sweep (for every k, commands
 *   k…k+n−1 fail, n = 1..4 before they take effect, n = 1 also after they took effect); with
 *   rollback.on-failure true, a cancel before every command, then the post step;
 * - the representative 2-host fleet [nothing, deployed] (issue case 3), both strategies: healthy
 *   and failing on the last host with parallel 1 and 2, failing everywhere with parallel 2, each
 *   with rollback.on-failure true and false: the same full window sweep on each host, and cancels;
 * - every other 2-host start-state combination: no fault for every rollout (parallel 1, parallel
 *   2, canary with parallel 2), scenario, rollback.on-failure and rollback.to (previous,
 *   last-release); one failing command (n = 1, before and after) on each host, parallel 2, v2
 *   failing on the last host;
 * - every 3-host start-state combination: no fault for parallel 1, parallel 2 and canary with
 *   parallel 2, healthy and failing on the last host, rollback.on-failure true and false;
 * - strategy proxy: both reads of the routed slot (runtime API and config file) failing while
 *   every other command answers (always; the first of each; only the runtime API's), on each
 *   deployed host of six fleets.
 * GitHub is offline, so rollback.to last-release falls back to what ran before, as previous does:
 * each host's own version is the one to come back to.
 *
 * Invariants asserted after every run and its post step (see src/outcome.ts and README.md):
 * - no container that served before (a running app container, a slot, the proxy) is removed unless
 *   the outcome is `deployed` (tracked by id), and every host that served before serves after what
 *   it served before, or v2 when the outcome is `deployed`; a host that ran nothing serves nothing
 *   after a restore;
 * - what the run read as running on each host (the saved record) is what ran there; a fault while
 *   reading that left it unknown ends the run `failed-before-switch`, quoting the docker error;
 * - the exit code follows the outcome, the lock is released, no `-next` or `-hook` is left;
 * - strategy proxy: the config file names the slot HAProxy routes to, and exactly one slot runs,
 *   except with rollback.on-failure false, where a failed slot may stay running out of rotation;
 * - the outputs are honest: `tag` names a version that serves; with rollback.on-failure false a
 *   failure is `result=failed`, with `tag` naming what users are on (proxy) or empty (replace).
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals'
import { deploy } from '../src/main.js'
import { resultOf, servingRelease, succeeded, type Outcome } from '../src/outcome.js'
import { post } from '../src/post.js'
import { Reporter } from '../src/report/reporter.js'
import type { DeploySettings } from '../src/settings.js'
import { memoryStateStore, StateKey } from '../src/state.js'
import { FakeDockerEngine, type FaultMode, type FaultRule, type InjectedFault } from '../test-support/fake-docker-engine.js'
import { ProxyDockerHost } from '../test-support/proxy-docker-host.js'
import { testSettings } from '../test-support/settings.js'
import { storyDependencies, virtualClock } from '../test-support/story.js'

const IMAGE = 'registry.test/acme/web'
const HAPROXY = 'haproxy:3.0-alpine'
const WANTED = 'v2'
const TAG_LABEL = 'deploy-action.tag'

type Strategy = 'replace' | 'proxy'
type Start = 'nothing' | 'deployed' | 'hand' | 'proxy-removed'
type Scenario = 'healthy' | 'fails-everywhere' | 'fails-on-last'
type Host = FakeDockerEngine | ProxyDockerHost

interface Case {
  strategy: Strategy
  starts: Start[]
  scenario: Scenario
  rollout: { parallel: number; canary: boolean }
  onFailure: boolean
  rollbackTo: 'previous' | 'last-release'
}

const STARTS: Record<Strategy, Start[]> = { replace: ['nothing', 'deployed', 'hand'], proxy: ['nothing', 'deployed', 'proxy-removed'] }

function caseLabel(c: Case): string {
  const rollout = `parallel ${c.rollout.parallel}${c.rollout.canary ? ' canary' : ''}`
  return `${c.strategy} [${c.starts.join(', ')}] ${c.scenario}, ${rollout}, on-failure ${String(c.onFailure)}, rollback.to ${c.rollbackTo}`
}

/** The docker hosts of a fleet: the runner's own engine for one host, `ssh://hN` for several. */
function hostNames(count: number): (string | undefined)[] {
  return count === 1 ? [undefined] : Array.from({ length: count }, (_, index) => `ssh://h${index + 1}`)
}

function settingsFor(strategy: Strategy, tag: string, change: Partial<DeploySettings> = {}): DeploySettings {
  return testSettings({
    image: IMAGE,
    tag,
    strategy,
    // A short watch: every verify still reads the state more than once, with fewer commands to sweep.
    health: { expectStatus: [200], headers: {}, intervalMs: 100, timeoutMs: 500, deadlineMs: 5_000, healthyThreshold: 2, watchMs: 300 },
    lock: { timeoutMs: 5_000 },
    ...(strategy === 'proxy' && {
      container: { ports: [], env: {}, secrets: [], volumes: [], labels: {}, init: true },
      proxy: { port: 8080, bind: ['127.0.0.1'], appPort: 3000, image: HAPROXY, drainMs: 1_000, timeoutMs: 60_000, maxConnections: 4096 }
    }),
    ...change
  })
}

function caseSettings(c: Case): DeploySettings {
  return settingsFor(c.strategy, WANTED, {
    hosts: hostNames(c.starts.length),
    rollout: c.rollout,
    rollback: { onFailure: c.onFailure, to: { kind: c.rollbackTo } }
  })
}

/** Whether v2 can be shown healthy on host `index`. */
function goodOn(c: Case, index: number): boolean {
  if (c.scenario === 'healthy') return true
  if (c.scenario === 'fails-everywhere') return false
  return index !== c.starts.length - 1
}

// ── building the fleet ───────────────────────────────────────────────────────────────────────

async function seedTags(host: Host, strategy: Strategy, tags: string[]): Promise<void> {
  for (const tag of tags) {
    const outcome = await deploy(settingsFor(strategy, tag), new Reporter(), storyDependencies({ engines: { local: host }, clock: virtualClock() }))
    process.exitCode = undefined
    if (outcome.kind !== 'deployed') throw new Error(`seeding ${tag} did not deploy: ${outcome.kind}`)
  }
}

/**
 * A deep copy of an in-memory host, so that each run starts from the same seeded state without
 * running the seeding stories again: plain data, arrays, maps and sets are copied, instances of
 * the fakes' own classes keep their class, anything else (a function, an AbortSignal kept in a
 * call's options) is shared.
 */
function cloneHost<T extends Host>(host: T): T {
  const ownClasses = new Set<unknown>([FakeDockerEngine, ProxyDockerHost, host instanceof ProxyDockerHost ? host.proxy.constructor : undefined, new FakeDockerEngine().images.constructor])
  const copies = new Map<object, unknown>()
  const copy = (value: unknown): unknown => {
    if (value === null || typeof value !== 'object') return value
    const known = copies.get(value)
    if (known !== undefined) return known
    const prototype = Object.getPrototypeOf(value) as object | null
    const plain = prototype === Object.prototype || prototype === null || Array.isArray(value)
    if (!plain && !ownClasses.has(value.constructor) && !(value instanceof Map) && !(value instanceof Set)) return value
    let out: object
    if (value instanceof Map) out = ownClasses.has(value.constructor) ? new (value.constructor as MapConstructor)() : new Map()
    else if (value instanceof Set) out = ownClasses.has(value.constructor) ? new (value.constructor as SetConstructor)() : new Set()
    else out = Array.isArray(value) ? [] : Object.create(prototype) as object
    copies.set(value, out)
    if (value instanceof Map) for (const [key, entry] of value) Map.prototype.set.call(out, copy(key), copy(entry))
    if (value instanceof Set) for (const entry of value) Set.prototype.add.call(out, copy(entry))
    for (const key of Reflect.ownKeys(value)) {
      const descriptor = Object.getOwnPropertyDescriptor(value, key) as PropertyDescriptor
      if ('value' in descriptor) descriptor.value = copy(descriptor.value)
      Object.defineProperty(out, key, descriptor)
    }
    return out
  }
  return copy(host) as T
}

const seeded = new Map<string, Promise<Host>>()

/** A host in `start` state: seeded once per strategy and state, then copied for every run. */
async function buildHost(strategy: Strategy, start: Start): Promise<Host> {
  const key = `${strategy} ${start}`
  if (!seeded.has(key)) seeded.set(key, seedHost(strategy, start))
  return cloneHost(await (seeded.get(key) as Promise<Host>))
}

async function seedHost(strategy: Strategy, start: Start): Promise<Host> {
  const host: Host = strategy === 'replace' ? new FakeDockerEngine() : new ProxyDockerHost([HAPROXY, `${IMAGE}:v0`, `${IMAGE}:v1`, `${IMAGE}:${WANTED}`])
  if (start === 'deployed') await seedTags(host, strategy, ['v1'])
  if (start === 'hand') {
    if (!(host instanceof FakeDockerEngine)) throw new Error('a hand-started container is a replace start state')
    host.add({ name: 'web', image: `${IMAGE}:v0-hand`, labels: {}, running: true })
  }
  if (start === 'proxy-removed') {
    if (!(host instanceof ProxyDockerHost)) throw new Error('proxy-removed is a proxy start state')
    await seedTags(host, strategy, ['v0', 'v1'])
    // By hand, beside the action: `docker rm -f web-proxy`.
    const removed = await host.proxy.run(['container', 'rm', '--force', 'web-proxy'])
    if (removed.exitCode !== 0) throw new Error(removed.stderr)
  }
  // The seeding's command history is of no use to a run, and every copy would carry it.
  const engine = host instanceof FakeDockerEngine ? host : host.rest
  engine.calls.length = 0
  if (host instanceof ProxyDockerHost) {
    host.proxy.commands.length = 0
    host.proxy.runtimeLines.length = 0
  }
  return host
}

interface Fleet {
  hosts: Host[]
  engines: Record<string, Host>
}

async function buildFleet(c: Case): Promise<Fleet> {
  const hosts: Host[] = []
  for (const start of c.starts) hosts.push(await buildHost(c.strategy, start))
  return fleetOf(c, hosts)
}

/** The hosts as one fleet, v2 failing where the scenario says. */
function fleetOf(c: Case, hosts: Host[]): Fleet {
  hosts.forEach((host, index) => {
    if (goodOn(c, index)) return
    if (host instanceof FakeDockerEngine) host.crashingImages.add(`${IMAGE}:${WANTED}`)
    else host.dieOnSwitchTo = WANTED
  })
  const names = hostNames(hosts.length)
  return { hosts, engines: Object.fromEntries(hosts.map((host, index) => [names[index] ?? 'local', host])) }
}

// ── looking at a host ────────────────────────────────────────────────────────────────────────

interface AppContainer {
  id: string
  name: string
  running: boolean
  tag?: string
}

/** The app's containers on a host (the lock and other apps' containers excepted). */
function appContainers(host: Host): AppContainer[] {
  const all =
    host instanceof FakeDockerEngine
      ? [...host.containers.values()].map((c) => ({ id: c.id, name: c.name, running: c.running, tag: c.labels[TAG_LABEL] ?? c.image.split(':').pop() }))
      : [...host.proxy.containers.values()].map((c) => ({ id: c.id, name: c.name, running: c.running, tag: c.labels[TAG_LABEL] }))
  return all.filter((c) => (c.name === 'web' || c.name.startsWith('web-')) && c.name !== 'web-deploy-lock')
}

/** Every container id on a host, the lock's included. */
function allIds(host: Host): Set<string> {
  const engine = host instanceof FakeDockerEngine ? host : host.rest
  const ids = [...engine.containers.values()].map((c) => c.id)
  if (host instanceof ProxyDockerHost) ids.push(...[...host.proxy.containers.values()].map((c) => c.id))
  return new Set(ids)
}

/**
 * What users get from a host: the tag of a good version that serves. With strategy proxy and no
 * running proxy, `lenient` counts the one running slot as what serves (the state a proxy removed
 * by hand leaves: the app runs, and the deploy is to put a proxy back in front of it).
 */
function servingOn(host: Host, lenient: boolean): string | undefined {
  if (host instanceof FakeDockerEngine) {
    const found = host.describe('web')
    return found.serves ? found.container?.tag : undefined
  }
  if (host.proxy.containers.get('web-proxy')?.running) return host.proxy.servingTag()
  if (!lenient) return undefined
  const running = appContainers(host).filter((c) => c.running && /^web-(blue|green)$/.test(c.name))
  return running.length === 1 ? running[0]?.tag : undefined
}

interface HostSnapshot {
  start: Start
  /** What serves (lenient for a host that started without its proxy). */
  serving?: string
  /** What serves, the proxy counted only when it runs. */
  strictServing?: string
  /** Ids of what served: running app containers, the proxy included. */
  servingIds: AppContainer[]
  ids: Set<string>
  text: string
}

function snapshot(host: Host, start: Start): HostSnapshot {
  const containers = appContainers(host)
  const engine = host instanceof FakeDockerEngine ? host : host.rest
  const lock = engine.describe('web').lockHeld ? ' +lock' : ''
  const shown = containers.map((c) => `${c.name}#${c.id.slice(-3)}: ${c.running ? 'running' : 'stopped'}${c.tag ? ` ${c.tag}` : ''}`).sort()
  const routing = host instanceof ProxyDockerHost ? `; routing ${host.proxy.routingHistory.join(' → ')}; config ${host.proxy.configLive() ?? '-'}` : ''
  return {
    start,
    serving: servingOn(host, start === 'proxy-removed'),
    strictServing: servingOn(host, false),
    servingIds: containers.filter((c) => c.running),
    ids: allIds(host),
    text: `${shown.join(', ') || 'no containers'}${lock}${routing}`
  }
}

// ── one run ──────────────────────────────────────────────────────────────────────────────────

interface Injection {
  /** Commands at … at+count−1 of host `host` (1-based, counted from the run's start) fail. */
  window?: { host: number; at: number; count: number; mode: FaultMode }
  /** The commands `rule` picks on host `host` fail, during the main step only. */
  rule?: { host: number; rule: FaultRule }
  /** The run is cancelled before its `cancelAt`-th docker command, over every host. */
  cancelAt?: number
}

function injectionLabel(inject?: Injection): string {
  if (inject?.window) {
    const { host, at, count, mode } = inject.window
    return `host ${host + 1}: commands ${at}..${at + count - 1} fail ${mode} taking effect`
  }
  if (inject?.rule) return `host ${inject.rule.host + 1}: reads of the routed slot fail${inject.rule.rule.times === undefined ? '' : ` (the first ${inject.rule.rule.times})`}`
  if (inject?.cancelAt !== undefined) return `cancel before command ${inject.cancelAt}`
  return 'no fault'
}

interface Run {
  c: Case
  hosts: Host[]
  outcome: Outcome
  exitCode: number
  before: HostSnapshot[]
  after: HostSnapshot[]
  /** What the main step saved as running on each host (undefined: it did not get that far). */
  read?: (string | undefined)[]
  /** Injected faults on commands sent while what runs was being read. */
  readFaults: InjectedFault[]
}

interface SavedRecord {
  phase?: string
  before?: ({ tag: string } | null)[]
}

let lastRecord: { text?: string; record: SavedRecord } = { record: {} }

function savedRecord(values: Map<string, string>): SavedRecord {
  const text = values.get(StateKey.Run)
  if (text !== lastRecord.text) lastRecord = { text, record: text ? (JSON.parse(text) as SavedRecord) : {} }
  return lastRecord.record
}

/** Lock commands (and their lease renewals) are no reads of what runs. */
function isLockCommand(argv: readonly string[]): boolean {
  return argv.some((arg) => arg.includes('deploy-lock')) || argv[0] === 'system' || (argv[0] === 'image' && argv[1] === 'import')
}

async function runCase(c: Case, inject?: Injection): Promise<Run> {
  const fleet = await buildFleet(c)
  const settings = caseSettings(c)
  const before = fleet.hosts.map((host, index) => snapshot(host, c.starts[index] as Start))
  const state = memoryStateStore()
  const cancellation = new AbortController()
  const bases = fleet.hosts.map((host) => host.commandCount)
  const faultBases = fleet.hosts.map((host) => host.injected.length)
  const readStage = fleet.hosts.map(() => new Set<number>())
  let sent = 0
  fleet.hosts.forEach((host, index) => {
    host.onCommand = (command, argv) => {
      sent++
      if (inject?.cancelAt === sent) cancellation.abort(new Error('cancelled by SIGINT'))
      // Reading what runs: the lock is taken (phase preparing) and nothing was saved as read yet.
      const saved = savedRecord(state.values)
      if (saved.phase === 'preparing' && saved.before === undefined && !isLockCommand(argv)) readStage[index]?.add(command)
    }
  })
  if (inject?.window) {
    const { host, at, count, mode } = inject.window
    const target = fleet.hosts[host] as Host
    target.fault = { at: (bases[host] ?? 0) + at, mode, count }
  }
  if (inject?.rule) (fleet.hosts[inject.rule.host] as Host).faultRule = inject.rule.rule

  process.exitCode = undefined
  const outcome = await deploy(settings, new Reporter(), storyDependencies({ engines: fleet.engines, state, clock: virtualClock(), signal: cancellation.signal }))
  const exitCode = Number(process.exitCode ?? 0)
  process.exitCode = undefined
  // One fault, one cancel per run: the post step is a fresh process with a fresh signal.
  for (const host of fleet.hosts) {
    host.fault = undefined
    host.faultRule = undefined
    host.onCommand = undefined
  }
  const readFaults = fleet.hosts.flatMap((host, index) => host.injected.slice(faultBases[index]).filter((fault) => readStage[index]?.has(fault.index)))
  const saved = savedRecord(state.values)
  await post(undefined, { state, settings: () => settings, dependencies: () => storyDependencies({ engines: fleet.engines, state, clock: virtualClock() }) })
  process.exitCode = undefined
  const after = fleet.hosts.map((host, index) => snapshot(host, c.starts[index] as Start))
  return { c, hosts: fleet.hosts, outcome, exitCode, before, after, read: saved.before?.map((release) => release?.tag), readFaults }
}

/** How many docker commands each host gets in a run without a fault (main and post step). */
async function commandsPerHost(c: Case): Promise<number[]> {
  const fleet = await buildFleet(c)
  const bases = fleet.hosts.map((host) => host.commandCount)
  const state = memoryStateStore()
  const settings = caseSettings(c)
  await deploy(settings, new Reporter(), storyDependencies({ engines: fleet.engines, state, clock: virtualClock() }))
  await post(undefined, { state, settings: () => settings, dependencies: () => storyDependencies({ engines: fleet.engines, state, clock: virtualClock() }) })
  process.exitCode = undefined
  return fleet.hosts.map((host, index) => host.commandCount - (bases[index] ?? 0))
}

// ── the invariants ───────────────────────────────────────────────────────────────────────────

function outcomeText(outcome: Outcome): string {
  const short = (text: string): string => (text.length > 220 ? `${text.slice(0, 220)}…` : text)
  switch (outcome.kind) {
    case 'failed-before-switch':
      return `failed-before-switch (${outcome.stage}: ${short(outcome.reason)})`
    case 'cancelled':
      return `cancelled (touched ${String(outcome.touched)})`
    default:
      return 'failure' in outcome ? `${outcome.kind} (${outcome.failure.host}: ${short(outcome.failure.reason)})` : outcome.kind
  }
}

/** Asserts every promise on one run; throws at the first broken one, with the whole picture. */
function assertPromises(run: Run, label: string): void {
  const { c, outcome, exitCode, before, after } = run
  const result = resultOf(outcome)
  const tag = servingRelease(outcome)?.tag
  const deployed = outcome.kind === 'deployed'
  const notRestored = outcome.kind === 'not-restored'
  const hosts = before.map((was, index) => {
    const now = after[index] as HostSnapshot
    const lost = was.servingIds.filter((container) => !now.ids.has(container.id))
    return { index, was, now, lost, name: `h${index + 1}` }
  })
  const picture = [
    `${caseLabel(c)}; ${label}`,
    `  outcome ${outcomeText(outcome)}; result ${result}; tag ${tag ?? '(empty)'}; exit ${exitCode}; read ${run.read ? run.read.map((t) => t ?? 'nothing').join(', ') : '(not saved)'}`,
    ...hosts.map(({ name, was, now }) => `  ${name} (${was.start}): served ${was.serving ?? 'nothing'} → serves ${now.serving ?? 'nothing'}\n      before: ${was.text}\n      after:  ${now.text}`)
  ].join('\n')
  const promise = (held: boolean, what: string): void => {
    if (!held) throw new Error(`Broken promise: ${what}\n${picture}`)
  }

  // Nothing that served is removed unless the new version was deployed.
  for (const { name, lost } of hosts) {
    promise(deployed || lost.length === 0, `${name}: ${lost.map((l) => `${l.name}#${l.id.slice(-3)} (${l.tag ?? 'no tag'})`).join(', ')} served before and was removed, and the outcome is ${outcome.kind}`)
  }
  // Every host that served before serves after: what it served, or v2 once deployed.
  for (const { name, was, now, index } of hosts) {
    if (deployed) {
      promise(now.strictServing === WANTED, `${name}: outcome deployed, but it serves ${now.strictServing ?? 'nothing'}, not ${WANTED}`)
    } else if (was.serving !== undefined) {
      // With rollback.on-failure false, strategy replace has no old version running beside the
      // failed one to send users back to: what serves is whatever the failure left.
      const optedOut = notRestored && c.strategy === 'replace'
      const ok = now.serving === was.serving || (optedOut && (now.serving === undefined || (now.serving === WANTED && goodOn(c, index))))
      promise(ok, `${name} served ${was.serving} before and serves ${now.serving ?? 'nothing'} after; outcome ${outcome.kind}`)
    } else {
      // A host that ran nothing: after a restore, nothing of this run is left serving there.
      const mayKeep = notRestored || outcome.kind === 'restore-failed'
      promise(now.serving === undefined || (mayKeep && now.serving === WANTED && goodOn(c, index)), `${name} ran nothing before and serves ${now.serving ?? 'nothing'} after; outcome ${outcome.kind}`)
    }
  }
  // What the run read as running is what ran: unknown is never read as nothing.
  if (run.read) {
    for (const { name, was, index } of hosts) {
      promise(run.read[index] === was.serving, `${name} ran ${was.serving ?? 'nothing'}, but the run read it as running ${run.read[index] ?? 'nothing'}`)
    }
  } else if (run.readFaults.length > 0) {
    // A fault while reading what runs left it unknown: stop before any switch, quoting docker.
    const quoted = outcome.kind === 'failed-before-switch' && outcome.reason.includes('injected fault at docker command')
    promise(quoted, `a fault while reading what runs (${run.readFaults.map((f) => `docker ${f.argv.slice(0, 4).join(' ')}`).join('; ')}) must end failed-before-switch quoting the docker error`)
  }
  // The exit code follows the outcome.
  promise(exitCode === (succeeded(outcome) ? 0 : 1), `exit code ${exitCode} for ${outcome.kind}`)
  // The lock is released; nothing half-made is left.
  for (const { name, now } of hosts) {
    promise(!now.text.includes('+lock'), `${name}: the deploy lock is still held`)
    promise(!/web-(next|hook)#/.test(now.text), `${name}: a -next or -hook container is left`)
  }
  // strategy proxy: a restart of the proxy serves what HAProxy routes to, and one slot runs.
  if (c.strategy === 'proxy') {
    for (const { name, index } of hosts) {
      const host = run.hosts[index]
      if (!(host instanceof ProxyDockerHost)) continue
      const proxy = host.proxy
      // A proxy that does not run serves nothing (the serving promises above judge that host); a
      // never-started one may be left where docker created it but its id never reached the run.
      if (!proxy.containers.get('web-proxy')?.running) continue
      promise(proxy.configLive() === proxy.routedSlot(), `${name}: the proxy's config names ${proxy.configLive() ?? 'no slot'}, HAProxy routes to ${proxy.routedSlot() ?? 'no single slot'}`)
      const runningSlots = appContainers(host).filter((container) => container.running && /^web-(blue|green)$/.test(container.name)).length
      if (notRestored) promise(runningSlots <= 2, `${name}: ${runningSlots} slots run`)
      else promise(runningSlots === 1, `${name}: ${runningSlots} slots run, not exactly the one HAProxy routes to`)
    }
  }
  // The outputs tell the truth.
  const servedAfter = new Set(hosts.map(({ now }) => now.serving).filter((served): served is string => served !== undefined))
  if (result === 'rolled-back') promise(tag !== undefined && servedAfter.has(tag), `result rolled-back names ${tag ?? 'nothing'}, but what serves is ${[...servedAfter].join(', ') || 'nothing'}`)
  if (tag !== undefined) promise(servedAfter.has(tag), `the tag output names ${tag}, which serves on no host`)
  if (!c.onFailure && !deployed) {
    // A version that failed its check is kept for inspection, not rolled back: result=failed. (A
    // switch that docker cut off left no such version; putting back what ran is then the honest
    // way out, and the promises above say whether `rolled-back` is true.)
    const failedItsCheck = 'failure' in outcome && outcome.failure.stage === 'health'
    promise(result === 'failed' || !failedItsCheck, `rollback.on-failure false: v2 failed its check, so the run must say result=failed, not ${result}`)
    if (notRestored && c.strategy === 'replace') promise(tag === undefined, `rollback.on-failure false, strategy replace: the tag output must be empty, not ${tag ?? ''}`)
    if (notRestored && c.strategy === 'proxy') {
      const servedBefore = hosts.filter(({ was }) => was.serving !== undefined)
      const usersOn = new Set(hosts.map(({ now }) => now.serving ?? 'nothing'))
      if (servedBefore.length > 0 && usersOn.size === 1 && !usersOn.has('nothing')) {
        promise(tag === [...usersOn][0], `rollback.on-failure false, strategy proxy: users are on ${[...usersOn][0] ?? ''} everywhere, but the tag output says ${tag ?? '(empty)'}`)
      }
    }
  }
}

async function runAndCheck(c: Case, inject?: Injection): Promise<void> {
  assertPromises(await runCase(c, inject), injectionLabel(inject))
}

// ── sweeps ───────────────────────────────────────────────────────────────────────────────────

/** For every host and k: commands k…k+n−1 fail; n = 1..maxWindow before they act, n = 1 also after. */
async function windowSweep(c: Case, maxWindow: number, modesForOne: FaultMode[] = ['before', 'after']): Promise<number> {
  const counts = await commandsPerHost(c)
  let runs = 0
  for (const [host, commands] of counts.entries()) {
    expect(commands).toBeGreaterThan(0)
    for (let count = 1; count <= maxWindow; count++) {
      for (const mode of count === 1 ? modesForOne : (['before'] as const)) {
        for (let at = 1; at <= commands; at++) {
          await runAndCheck(c, { window: { host, at, count, mode } })
          runs++
        }
      }
    }
  }
  return runs
}

async function cancelSweep(c: Case): Promise<void> {
  const total = (await commandsPerHost(c)).reduce((sum, count) => sum + count, 0)
  for (let at = 1; at <= total; at++) await runAndCheck(c, { cancelAt: at })
}

/** Every way to give `count` hosts a start state. */
function combinations(starts: Start[], count: number): Start[][] {
  if (count === 0) return [[]]
  return combinations(starts, count - 1).flatMap((rest) => starts.map((start) => [...rest, start]))
}

const ROLLOUTS = [
  { parallel: 1, canary: false },
  { parallel: 2, canary: false },
  { parallel: 2, canary: true }
]

let restoreWrite: (() => void) | undefined
beforeAll(() => {
  // Annotations and group markers go to stdout; the sweep runs thousands of stories.
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation(() => true)
  restoreWrite = () => spy.mockRestore()
  delete process.env.GITHUB_STATE
  delete process.env.GITHUB_OUTPUT
  delete process.env.GITHUB_STEP_SUMMARY
})
afterAll(() => restoreWrite?.())

/** A fleet of `starts` with the defaults of the sweep: parallel 1, rollback.to previous. */
function fleetCase(strategy: Strategy, starts: Start[], scenario: Scenario, change: Partial<Case> = {}): Case {
  return { strategy, starts, scenario, rollout: { parallel: 1, canary: false }, onFailure: true, rollbackTo: 'previous', ...change }
}

describe('the fakes the sweep relies on', () => {
  it('a window fails commands at … at+count−1, before or after they take effect; the rest answer', async () => {
    for (const mode of ['before', 'after'] as const) {
      const engine = new FakeDockerEngine()
      engine.images.add(`${IMAGE}:v1`)
      engine.fault = { at: 2, mode, count: 3 }
      const exits: number[] = []
      for (const name of ['a', 'b', 'c', 'd', 'e']) exits.push((await engine.run(['container', 'create', '--name', name, `${IMAGE}:v1`])).exitCode)
      expect(exits).toEqual([0, 1, 1, 1, 0])
      expect(engine.injected.map((fault) => fault.index)).toEqual([2, 3, 4])
      expect([...engine.containers.keys()]).toEqual(mode === 'before' ? ['a', 'e'] : ['a', 'b', 'c', 'd', 'e'])
    }
  })

  it('a fault rule fails the commands it picks, at most `times` of them', async () => {
    const engine = new FakeDockerEngine()
    engine.faultRule = { match: (argv) => argv[1] === 'inspect', mode: 'before', times: 1 }
    expect((await engine.run(['container', 'inspect', 'web'])).stderr).toMatch(/^injected fault at docker command 1: docker container inspect web/)
    expect((await engine.run(['container', 'inspect', 'web'])).stderr).toMatch(/No such container/)
  })

  it('the proxy host finds containers by id, records --restart, and a removed proxy takes HAProxy\'s state with it', async () => {
    const host = new ProxyDockerHost([HAPROXY, `${IMAGE}:v1`])
    await seedTags(host, 'proxy', ['v1'])
    const slot = host.proxy.containers.get('web-blue')
    const proxy = host.proxy.containers.get('web-proxy')
    expect(slot?.id).toMatch(/^[0-9a-f]{64}$/)
    const inspected = await host.run(['container', 'inspect', slot?.id ?? ''])
    expect(JSON.parse(inspected.stdout)).toMatchObject([{ Name: '/web-blue', HostConfig: { RestartPolicy: { Name: 'unless-stopped' } } }])
    expect(JSON.parse((await host.run(['container', 'inspect', proxy?.id.slice(0, 12) ?? ''])).stdout)).toMatchObject([{ Name: '/web-proxy' }])
    expect((await host.run(['container', 'rm', '--force', proxy?.id ?? ''])).exitCode).toBe(0)
    expect(host.proxy.routedSlot()).toBeUndefined()
    expect(host.proxy.routingHistory.at(-1)).toBe('none')
    expect((await host.run(['container', 'rm', '--force', slot?.id ?? ''])).exitCode).toBe(0)
    expect(host.proxy.describe()).toEqual([])
    expect((await host.run(['container', 'rm', '--force', slot?.id ?? ''])).stderr).toMatch(/No such container/)
  })
})

describe('the copies of seeded hosts the sweep runs on', () => {
  it.each([
    ['replace', ['deployed', 'hand', 'nothing']],
    ['proxy', ['deployed', 'proxy-removed', 'nothing']]
  ] as const)('%s: a copy behaves as a freshly seeded host, and a run on it leaves the seeded host as it was', async (strategy, starts) => {
    const c = fleetCase(strategy, [...starts], 'fails-on-last')
    const fresh: Host[] = []
    for (const start of starts) fresh.push(await seedHost(strategy, start))
    const copies = await buildFleet(c)
    const seededBefore = await Promise.all(starts.map(async (start) => snapshot(await (seeded.get(`${strategy} ${start}`) as Promise<Host>), start).text))
    expect(copies.hosts.map((host, index) => snapshot(host, starts[index] as Start).text)).toEqual(fresh.map((host, index) => snapshot(host, starts[index] as Start).text))
    const onFresh = await deploy(caseSettings(c), new Reporter(), storyDependencies({ engines: fleetOf(c, fresh).engines, clock: virtualClock() }))
    const onCopies = await deploy(caseSettings(c), new Reporter(), storyDependencies({ engines: copies.engines, clock: virtualClock() }))
    process.exitCode = undefined
    expect(outcomeText(onCopies)).toBe(outcomeText(onFresh))
    expect(copies.hosts.map((host) => host.commandCount)).toEqual(fresh.map((host) => host.commandCount))
    expect(await Promise.all(starts.map(async (start) => snapshot(await (seeded.get(`${strategy} ${start}`) as Promise<Host>), start).text))).toEqual(seededBefore)
  })
})

const ONE_HOST: Case[] = (['replace', 'proxy'] as const).flatMap((strategy) =>
  STARTS[strategy].flatMap((start) =>
    (['healthy', 'fails-everywhere'] as const).flatMap((scenario) => [true, false].map((onFailure) => fleetCase(strategy, [start], scenario, { onFailure })))
  )
)

describe('one host, every start state: no fault, windows of 1 to 4 failing commands, a cancel before each command', () => {
  describe.each(ONE_HOST.map((c) => [caseLabel(c), c] as const))('%s', (_, c) => {
    it('no fault', async () => {
      await runAndCheck(c)
    })
    it('windows of failing commands', async () => {
      await windowSweep(c, 4)
    })
    // A cancel ends in the post step's restore, which rollback.on-failure does not change.
    if (c.onFailure) {
      it('a cancel before each command', async () => {
        await cancelSweep(c)
      })
    }
  })
})

const REPRESENTATIVE: Case[] = (['replace', 'proxy'] as const).flatMap((strategy) =>
  (['healthy', 'fails-on-last', 'fails-everywhere'] as const).flatMap((scenario) =>
    // Failing everywhere with parallel 1 fails on the first host alone, as the one-host sweep does.
    (scenario === 'fails-everywhere' ? [2] : [1, 2]).flatMap((parallel) =>
      [true, false].map((onFailure) => fleetCase(strategy, ['nothing', 'deployed'], scenario, { onFailure, rollout: { parallel, canary: false } }))
    )
  )
)

describe('the representative fleet [nothing, deployed]: windows of 1 to 4 failing commands on each host, a cancel before each command', () => {
  describe.each(REPRESENTATIVE.map((c) => [caseLabel(c), c] as const))('%s', (_, c) => {
    it('windows of failing commands', async () => {
      await windowSweep(c, 4)
    })
    if (c.onFailure) {
      it('a cancel before each command', async () => {
        await cancelSweep(c)
      })
    }
  })
})

describe.each(['replace', 'proxy'] as const)('every 2-host start-state combination, strategy %s', (strategy) => {
  describe.each(combinations(STARTS[strategy], 2).map((starts) => [starts.join(', '), starts] as const))('[%s]', (_, starts) => {
    it.each(
      ROLLOUTS.flatMap((rollout) =>
        (['previous', 'last-release'] as const).map((rollbackTo) => [`parallel ${rollout.parallel}${rollout.canary ? ', canary' : ''}, rollback.to ${rollbackTo}`, rollout, rollbackTo] as const)
      )
    )('no fault, %s: every scenario, rollback.on-failure true and false', async (_, rollout, rollbackTo) => {
      for (const scenario of ['healthy', 'fails-on-last', 'fails-everywhere'] as const) {
        for (const onFailure of [true, false]) await runAndCheck(fleetCase(strategy, starts, scenario, { rollout, onFailure, rollbackTo }))
      }
    })
    // [nothing, deployed] has the full window sweep above.
    if (starts.join() !== 'nothing,deployed') {
      it('one failing command, before or after it took effect, on each host (parallel 2, v2 failing on the last host)', async () => {
        await windowSweep(fleetCase(strategy, starts, 'fails-on-last', { rollout: { parallel: 2, canary: false } }), 1)
      })
    }
  })
})

describe.each(['replace', 'proxy'] as const)('every 3-host start-state combination, strategy %s', (strategy) => {
  describe.each(combinations(STARTS[strategy], 3).map((starts) => [starts.join(', '), starts] as const))('[%s]', (_, starts) => {
    it('no fault: parallel 1, parallel 2, canary; healthy and failing on the last host; rollback.on-failure true and false', async () => {
      for (const [index, rollout] of ROLLOUTS.entries()) {
        for (const scenario of ['healthy', 'fails-on-last'] as const) {
          for (const onFailure of [true, false]) {
            await runAndCheck(fleetCase(strategy, starts, scenario, { rollout, onFailure, rollbackTo: index === 1 ? 'last-release' : 'previous' }))
          }
        }
      }
    })
  })
})

/** `docker exec -i web-proxy nc 127.0.0.1 9999` with a `show …` on stdin, and `docker cp web-proxy:<config> -`. */
const routedSlotRead = (argv: readonly string[], options: { input?: string }): boolean =>
  (argv[0] === 'container' && argv[1] === 'exec' && argv.includes('9999') && /^\s*show /.test(options.input ?? '')) ||
  (argv[0] === 'container' && argv[1] === 'cp' && /^web-proxy:.*haproxy\.cfg$/.test(argv[2] ?? '') && argv[3] === '-')

describe('strategy proxy: both reads of the routed slot fail while every other command answers', () => {
  const fleets: Start[][] = [['deployed'], ['deployed', 'deployed'], ['nothing', 'deployed'], ['deployed', 'nothing'], ['proxy-removed', 'deployed'], ['deployed', 'deployed', 'deployed']]
  describe.each(fleets.map((starts) => [starts.join(', '), starts] as const))('[%s]', (_, starts) => {
    it.each(['healthy', 'fails-on-last'] as const)('%s: unknown is never read as nothing, on any host', async (scenario) => {
      for (const [host, start] of starts.entries()) {
        if (start !== 'deployed') continue
        for (const onFailure of [true, false]) {
          const c = fleetCase('proxy', starts, scenario, { onFailure, rollout: { parallel: 2, canary: false } })
          // Every such read of the main step fails: what runs there cannot be known.
          const always = await runCase(c, { rule: { host, rule: { match: routedSlotRead, mode: 'before' } } })
          assertPromises(always, injectionLabel({ rule: { host, rule: { match: routedSlotRead, mode: 'before' } } }))
          if (always.outcome.kind !== 'failed-before-switch') throw new Error(`${caseLabel(c)}; host ${host + 1}: reads of the routed slot always fail: expected failed-before-switch, got ${outcomeText(always.outcome)}`)
          // The first read of each fails: still unknown when it was needed.
          await runAndCheck(c, { rule: { host, rule: { match: routedSlotRead, mode: 'before', times: 2 } } })
          // Only the runtime API's answer is lost: the config file tells.
          await runAndCheck(c, { rule: { host, rule: { match: routedSlotRead, mode: 'before', times: 1 } } })
        }
      }
    })
  })
})
