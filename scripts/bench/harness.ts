/**
 * The bench's shared harness: parameters, timing and medians, the loopback prober, the fixture
 * (a private Docker Engine, a registry, the app images, a workspace with the deploy config: built
 * on test-support/fixture.ts, the set-up the integration tests use too), the action run, CPU time
 * from /proc, machine facts, the load of the proxy figures, a counter of docker CLI processes, and
 * the header and markers of each figure's section of BENCHMARKS.md.
 * Every figure module (`overhead.ts`, `recovery.ts`, …) builds on this; `index.ts` runs them.
 *
 * Environment: BENCH_RUNS (default 5, at least 5) runs per figure; BENCH_FLEET_RUNS (default 3,
 * at least 3) for the fleet figure; DEPLOY_ACTION_BUNDLE to measure a bundle other than
 * dist/index.js, and DEPLOY_ACTION_BUNDLE_COMMIT to name the commit it was built from (default:
 * HEAD). BENCH_ONLY=a,b (development only) runs just those figures, BENCH_RUNS may go below 5
 * (default 2), and writes into a copy of BENCHMARKS.md under .build/bench-preview/.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, release, totalmem } from 'node:os'
import { Agent, request as httpRequest } from 'node:http'
import { delimiter, dirname, join, resolve } from 'node:path'
import { REPO_ROOT, runAction, type ActionResult } from '../../test-support/action-run.js'
import type { Engine } from '../../test-support/engine.js'
import { expectResult as expectRunResult, makeSite, pushAppImages, startFixture, type Fixture as BaseFixture } from '../../test-support/fixture.js'
import { httpGet } from '../../test-support/net.js'
import { runCommand, sleep } from '../../test-support/proc.js'
import { startLoad } from '../../test-support/load.js'

export { REPO_ROOT }

// ---------------------------------------------------------------------------------------------
// Parameters

/** Development only: BENCH_ONLY=cold,overhead runs just those (BENCH_RUNS may go below 5) and writes a preview to .build/bench-preview/. */
export const PREVIEW = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').filter(Boolean)) : undefined
export const RUNS = PREVIEW ? Number(process.env.BENCH_RUNS ?? 2) || 2 : Math.max(5, Number(process.env.BENCH_RUNS ?? 5) || 5)
/** Cold starts are cheap and noisy: more of them. */
export const COLD_RUNS = PREVIEW ? RUNS : Math.max(9, RUNS)
/** Each fleet run deploys to up to 4 hosts and waits for a slow start: fewer of them, but at least 3. */
export const FLEET_RUNS = PREVIEW ? RUNS : Math.max(3, Number(process.env.BENCH_FLEET_RUNS ?? 3) || 3)

/** Health parameters shared by the action and its competitors. */
export const HEALTH = { intervalMs: 200, timeoutMs: 1_000, deadlineMs: 2_000, threshold: 1 }
/** Swarm counts failed probes, not time: this many failures at HEALTH.intervalMs is the action's deadline. */
export const SWARM_RETRIES = HEALTH.deadlineMs / HEALTH.intervalMs
export const PROBE_EVERY_MS = 10
export const TARGETS = { overheadRatio: 1.1, recoveryMarginMs: 2_000, crashDetectionMs: 1_000, coldStartMs: 150, bundleBytes: 1.5 * 1024 * 1024 }
/**
 * Issue 21's goals: benchmark figures, each the median of at least 3 runs against its peer in the
 * same run (see the top table of BENCHMARKS.md).
 */
export const GOALS = {
  /** `proxy`, a v2 that dies in the watch: the user-visible outage. */
  proxyDiesOutageMs: 500,
  /** … and the slowest successful request while it is switched back. */
  proxyDiesSlowestOkMs: 1_500,
  /** Runner CPU (the action's process and everything it ran) per 1-host deploy, app starting in 3 s. */
  runnerCpuMs: 1_500,
  /** docker CLI processes per 1-host deploy, app starting in 3 s. */
  dockerProcesses: 15,
  /** 4 hosts with `parallel: 4` against 1 host (issue 13's bound, kept by issue 21). */
  fleetParallelBound: 1.3,
  /** Crash detection, from the container's start (issue 21: keep). */
  crashDetectionMs: 50
}

/** Seconds the app of the fleet and runner figures takes to serve (a slow-start image), so each health check takes a while, as a real app's does. */
export const FLEET_START_DELAY_S = 3
/** The health check of a slow-start app: the bench's, with a deadline that leaves room for the slow start. */
export const FLEET_HEALTH = { ...HEALTH, deadlineMs: FLEET_START_DELAY_S * 1_000 + 10_000 }

export const BUNDLE = resolve(REPO_ROOT, process.env.DEPLOY_ACTION_BUNDLE ?? 'dist/index.js')
/** The bundle as BENCHMARKS.md names it: relative to the repository when inside it. */
export const BUNDLE_LABEL = BUNDLE.startsWith(`${REPO_ROOT}/`) ? BUNDLE.slice(REPO_ROOT.length + 1) : BUNDLE
export const REPO = 'bench/web'
export const SERVICE = 'bench-web'

/** Wall-clock milliseconds with sub-millisecond resolution (docker events report wall time too). */
export const now = (): number => performance.timeOrigin + performance.now()


export function median(values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

export function ms(value: number): string {
  if (!Number.isFinite(value)) return 'n/a'
  return value < 1_000 ? `${Math.round(value)} ms` : `${(value / 1_000).toFixed(2)} s`
}

export function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : 'n/a'
}

export function list(values: number[], format: (value: number) => string = ms): string {
  return values.map(format).join(', ')
}

export function verdict(met: boolean): string {
  return met ? 'met' : '**missed**'
}

export function log(line: string): void {
  process.stdout.write(`[bench] ${line}\n`)
}

// ---------------------------------------------------------------------------------------------
// A loopback prober: GET every PROBE_EVERY_MS (start to start), fresh connection each time.

export interface ProbeRecord {
  /** When the request started. */
  at: number
  /** When the answer (or the error) came. */
  doneAt: number
  ok: boolean
  body: string
}

export interface Prober {
  readonly records: ProbeRecord[]
  stop(): Promise<ProbeRecord[]>
}

export function startProber(url: string): Prober {
  const records: ProbeRecord[] = []
  let stopped = false
  const loop = (async () => {
    while (!stopped) {
      const at = now()
      try {
        const response = await httpGet(url, { timeoutMs: 1_000 })
        records.push({ at, doneAt: now(), ok: response.status === 200, body: response.body.trim() })
      } catch {
        records.push({ at, doneAt: now(), ok: false, body: '' })
      }
      const wait = PROBE_EVERY_MS - (now() - at)
      if (wait > 0) await sleep(wait)
    }
  })()
  return {
    records,
    async stop() {
      stopped = true
      await loop
      return records
    }
  }
}

/**
 * From `t0`: when `body` first stopped answering (`down`), and when it answered again (`back`);
 * NaN for what never happened.
 */
export function outage(records: ProbeRecord[], t0: number, body: string): { down: number; back: number } {
  const serves = (record: ProbeRecord): boolean => record.ok && record.body === body
  const after = records.filter((record) => record.at >= t0)
  const first = after.findIndex((record) => !serves(record))
  if (first < 0) return { down: Number.NaN, back: Number.NaN }
  const back = after.slice(first).find(serves)
  return { down: (after[first] as ProbeRecord).at - t0, back: back ? back.doneAt - t0 : Number.NaN }
}

/** Failed requests and the longest time between two successful answers, within [from, to]. */
export function downtime(records: ProbeRecord[], from: number, to: number): { failed: number; longestGapMs: number; probes: number } {
  const window = records.filter((record) => record.at >= from && record.at <= to)
  const lastBefore = [...records].reverse().find((record) => record.at < from && record.ok)
  let previousOk = lastBefore?.doneAt ?? from
  let longestGapMs = 0
  for (const record of window) {
    if (!record.ok) continue
    longestGapMs = Math.max(longestGapMs, record.doneAt - previousOk)
    previousOk = record.doneAt
  }
  return { failed: window.filter((record) => !record.ok).length, longestGapMs, probes: window.length }
}

// ---------------------------------------------------------------------------------------------
// Fixture: engine, registry, images, a workspace with the deploy config (test-support/fixture.ts)

/** The tests' fixture (engine, registry, `stop()`), with the bench's images, site and login. */
export interface Fixture extends BaseFixture {
  /** Registry repository of the images, e.g. 127.0.0.1:PORT/bench/web. */
  image: string
  port: number
  workspace: string
  /** A DOCKER_CONFIG logged in to the registry, shared by the action and the script (no login step measured). */
  dockerConfig: string
  /** A directory for the figures' own files; removed by `stop()`. */
  scratch: string
}

/** Health settings of a bench site (see `HEALTH`). */
export interface BenchHealth {
  intervalMs: number
  timeoutMs: number
  deadlineMs: number
  threshold: number
}

/**
 * The deploy config of a bench site: the busybox app on the host network, probed with `health`,
 * rolling back to the previous version. `namespaced`: the app runs in a network-namespace host,
 * so it binds 0.0.0.0 (it must answer on the namespace's address), is checked from the runner at
 * `{host}` and stops within 2 s; with `fleet`, on those hosts, `parallel` at a time.
 */
export function benchDeployConfig(options: {
  image: string
  name?: string
  port: number
  health: BenchHealth
  namespaced?: boolean
  fleet?: { hosts: { dockerHost: string; address: string }[]; parallel: number }
}): string {
  const { image, port, health, namespaced = false, fleet } = options
  return [
    `image: ${image}`,
    `name: ${options.name ?? 'web'}`,
    ...(fleet
      ? ['hosts:', ...fleet.hosts.flatMap((host) => [`  - docker-host: ${host.dockerHost}`, `    address: ${host.address}`]), 'rollout:', `  parallel: ${fleet.parallel}`]
      : []),
    'container:',
    '  network: host',
    '  init: true',
    ...(namespaced ? ['  stop-timeout: 2s'] : []),
    '  env:',
    `    PORT: "${port}"`,
    ...(namespaced ? ['    BIND: "0.0.0.0"'] : []),
    'health:',
    `  url: http://${namespaced ? '{host}' : '127.0.0.1'}:${port}/health`,
    `  interval: ${health.intervalMs}ms`,
    `  timeout: ${health.timeoutMs}ms`,
    `  deadline: ${health.deadlineMs}ms`,
    `  healthy-threshold: ${health.threshold}`,
    'rollback:',
    '  to: previous',
    ''
  ].join('\n')
}

export async function setUp(): Promise<Fixture> {
  const base = await startFixture()
  try {
    const { engine, registry } = base
    const scratch = base.dirs.make('deploy-action-bench-')
    // Kept in the engine too (`keepLocal`): a pull then measures the action's step, not the download.
    await pushAppImages(
      base,
      REPO,
      [
        { tag: 'v1', behaviour: 'healthy' },
        { tag: 'v2', behaviour: 'healthy' },
        { tag: 'broken', behaviour: 'never-listens' },
        { tag: 'crashing', behaviour: 'exits' }
      ],
      { localRepo: REPO, keepLocal: true }
    )
    const image = `${registry.address}/${REPO}`
    const { port, workspace } = await makeSite(base.dirs, 'web', (site) => benchDeployConfig({ image, port: site.port, health: HEALTH }))
    const dockerConfig = join(scratch, 'docker-config')
    mkdirSync(dockerConfig)
    await registry.login(engine, dockerConfig)
    return { ...base, image, port, workspace, dockerConfig, scratch }
  } catch (error) {
    await base.stop()
    throw error
  }
}

export async function removeAllContainers(engine: Engine): Promise<void> {
  const ids = (await engine.docker(['ps', '-aq'])).split('\n').filter(Boolean)
  if (ids.length > 0) await engine.docker(['rm', '--force', ...ids])
}

export interface TimedAction {
  result: ActionResult
  startedAt: number
  endedAt: number
  /** Each stdout chunk with the time it arrived. */
  chunks: { at: number; text: string }[]
}

/** Runs the bundled action for `tag` (deploy), timing it from just before the spawn to its exit. */
export async function deploy(fixture: Fixture, tag: string): Promise<TimedAction> {
  const chunks: { at: number; text: string }[] = []
  const startedAt = now()
  const result = await runAction({
    workspace: fixture.workspace,
    dockerHost: fixture.engine.dockerHost,
    dockerConfig: fixture.dockerConfig,
    // No token: GitHub Deployments are network calls to api.github.com, not part of the comparison.
    inputs: { tag, 'github-token': '' },
    entry: BUNDLE,
    // Debug output names every docker command (`::debug::docker …`), which the report counts.
    debug: true,
    timeoutMs: 120_000,
    onStdout: (text) => chunks.push({ at: now(), text })
  })
  return { result, startedAt, endedAt: now(), chunks }
}

/** Throws, naming `what`, with the run's errors, unless the run's `result` output is `expected`. */
export function expectResult(run: TimedAction, expected: string, what: string): void {
  expectRunResult(run.result, expected, what)
}

/** Every run starts from the same state: only v1 runs, deployed by the action (so it has its labels). */
export async function resetToV1(fixture: Fixture): Promise<void> {
  await removeAllContainers(fixture.engine)
  expectResult(await deploy(fixture, 'v1'), 'deployed', 'reset to v1')
}

/** How many docker commands the action ran, from its debug output. */
export function dockerCommandCount(result: ActionResult): number {
  return result.stdout.split('\n').filter((line) => line.startsWith('::debug::docker ')).length
}

/** `Deploy · pull` → duration in ms, from the step notices (`… (120 ms)`, `… (1.2 s)`). */
export function stepDurations(result: ActionResult): Record<string, number> {
  const durations: Record<string, number> = {}
  for (const annotation of result.annotations) {
    const match = /\((\d+(?:\.\d+)?) (ms|s)\)$/.exec(annotation.message)
    if (annotation.level !== 'notice' || !annotation.title || !match) continue
    durations[annotation.title] = Number(match[1]) * (match[2] === 's' ? 1_000 : 1)
  }
  return durations
}

/** A run's step times by step (host suffix dropped), and which steps ran side by side (`▶ title` in the log rather than a group). */
export interface StepTimes {
  /**
   * Time per step (title without its host), from the job summary: summed over the hosts for a step
   * that goes host after host, the slowest host for one that runs side by side (`sideBySide`).
   */
  steps: Record<string, number>
  sideBySide: string[]
}

/** A run's step times by step (host suffix dropped), and which steps ran side by side (`▶ title` in the log rather than a group). */
export function summaryStepTimes(result: ActionResult): StepTimes {
  const table = /<h3>Steps<\/h3>\s*<table>([\s\S]*?)<\/table>/.exec(result.summary)?.[1] ?? ''
  const sideBySide = new Set([...result.stdout.matchAll(/^▶ (.*?)(?: \(.*\))?$/gm)].map((match) => match[1] ?? ''))
  const steps: Record<string, number> = {}
  for (const row of table.matchAll(/<tr>((?:<td>[\s\S]*?<\/td>)+)<\/tr>/g)) {
    const cells = [...(row[1] ?? '').matchAll(/<td>([\s\S]*?)<\/td>/g)].map((cell) => (cell[1] ?? '').replace(/<[^>]+>/g, '').trim())
    const title = (cells[0] ?? '').replace(/ \(.*\)$/, '')
    const duration = /^(\d+(?:\.\d+)?) (ms|s)$/.exec(cells[2] ?? '')
    if (!title || !duration) continue
    const value = Number(duration[1]) * (duration[2] === 's' ? 1_000 : 1)
    steps[title] = sideBySide.has(title) ? Math.max(steps[title] ?? 0, value) : (steps[title] ?? 0) + value
  }
  return { steps, sideBySide: [...sideBySide] }
}

/** Per-round ratios of one series to another (same index = same round). */
export function pairwise(numerators: { wallMs: number }[], denominators: { wallMs: number }[]): number[] {
  return numerators.map((run, index) => run.wallMs / (denominators[index]?.wallMs ?? Number.NaN))
}

// ---------------------------------------------------------------------------------------------
// CPU time from /proc, and docker CLI processes

/** Clock ticks per second of /proc/self/stat's CPU times. */
export const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100

/** CPU time of the children this process has waited for (the action and, through it, its docker CLIs). */
export function childrenCpuMs(): number {
  // Fields after the command name (which may hold spaces): state is field 3, cutime and cstime 16 and 17.
  const stat = readFileSync('/proc/self/stat', 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ((Number(fields[13]) + Number(fields[14])) * 1_000) / CLOCK_TICKS
}

/** `cutime + cstime` of `pid` (its reaped children's CPU, e.g. sshd's finished sessions), in ms. */
export function reapedChildrenCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(fields[13]) + Number(fields[14])) * 1_000) / CLOCK_TICKS
  } catch {
    return Number.NaN
  }
}

/** Counts the docker CLI processes of a run: a `docker` wrapper first on PATH logs each call, then execs the real CLI. */
export interface DockerCallCounter {
  /** For the action (`runAction`'s `env`) or a script: PATH with the wrapper first, and where it logs. */
  readonly env: Record<string, string>
  /** The real docker CLI the wrapper runs. */
  readonly realDocker: string
  /** Empties the log: call before each run. */
  reset(): void
  /** The arguments of each docker process since the last reset, in order. */
  calls(): string[]
}

/** Each call is one line that starts with this marker (an argument may hold a newline, a marker at a line's start it will not). */
const CALL_MARKER = '@@docker '

export function dockerCallCounter(dir: string): DockerCallCounter {
  const bin = join(dir, 'bin')
  mkdirSync(bin, { recursive: true })
  const logPath = join(dir, 'docker-calls.log')
  const found = spawnSync('sh', ['-c', 'command -v docker'], { encoding: 'utf8', env: process.env }).stdout?.trim()
  if (!found || found.startsWith(bin)) throw new Error('dockerCallCounter: no docker CLI on PATH')
  writeFileSync(
    join(bin, 'docker'),
    [
      '#!/bin/sh',
      '# Counts docker CLI processes: one line per call, then the real CLI in its place (exec: no process added).',
      `printf '${CALL_MARKER}%s\\n' "$*" >> "$BENCH_DOCKER_CALLS"`,
      `exec ${found} "$@"`,
      ''
    ].join('\n')
  )
  chmodSync(join(bin, 'docker'), 0o755)
  writeFileSync(logPath, '')
  return {
    env: { PATH: `${bin}${delimiter}${process.env.PATH ?? ''}`, BENCH_DOCKER_CALLS: logPath },
    realDocker: found,
    reset: () => writeFileSync(logPath, ''),
    calls: () =>
      readFileSync(logPath, 'utf8')
        .split('\n')
        .filter((line) => line.startsWith(CALL_MARKER))
        .map((line) => line.slice(CALL_MARKER.length))
  }
}

// ---------------------------------------------------------------------------------------------
// Machine facts

export interface Machine {
  cores: number
  cpu: string
  memoryGiB: number
  kernel: string
  docker: string
  node: string
  date: string
  /** The commit the bench ran on, and the bundle it measured. */
  commit: string
  bundle: string
}

/** The machine, the commit and the bundle; `engine` names the Docker Engine's version (without one, only the client's). */
export async function describeMachine(engine?: Engine): Promise<Machine> {
  const client = engine
    ? (await engine.docker(['version', '--format', '{{.Client.Version}}'])).trim()
    : (await runCommand('docker', ['version', '--format', '{{.Client.Version}}'])).stdout.trim() || 'unknown'
  const server = engine ? (await engine.docker(['version', '--format', '{{.Server.Version}}'])).trim() : undefined
  return {
    cores: cpus().length,
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    kernel: `Linux ${release()}`,
    docker: server ? `Docker Engine ${server} (client ${client})` : `docker client ${client}`,
    node: process.version,
    commit: process.env.DEPLOY_ACTION_BUNDLE_COMMIT || (await runCommand('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT })).stdout.trim() || 'unknown',
    bundle: BUNDLE_LABEL,
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC'
  }
}


// ---------------------------------------------------------------------------------------------
// Load of the proxy figures (proxy, proxy-change)

export const PROXY_APP_PORT = 3000
export const PROXY_BODY = 'status: green'
export const PROXY_SLOW_SECONDS = 3

export type ProxyStrategyName = 'replace' | 'proxy'

/** The load of the proxy sections: 40 keep-alive clients, plus `slowRequests` slow ones started by `startSlow()`. */
export function proxyLoad(url: string, slowRequests = 10): ReturnType<typeof startLoad> {
  return startLoad({ url, clients: 40, slowRequests, durationMs: 60_000, maxRequests: 400_000, requestTimeoutMs: 10_000 })
}

/** `proxyLines` go into the `proxy:` block after `drain` (e.g. `  timeout: 90s`). */
export function proxySiteConfig(image: string, haproxyRef: string, name: string, port: number, strategy: ProxyStrategyName, proxyLines: string[] = []): string {
  // The same health check and watch for both: the scenario that kills the new version does so inside the watch.
  const common = ['health:', `  url: http://127.0.0.1:${port}/health`, `  expect-body: "${PROXY_BODY}"`, '  interval: 200ms', '  timeout: 3s', '  deadline: 6s', '  healthy-threshold: 1', '  watch: 3s']
  if (strategy === 'replace') {
    return [`image: ${image}`, `name: ${name}`, 'container:', '  network: host', '  init: true', '  stop-timeout: 2s', '  env:', '    BIND: 127.0.0.1', `    PORT: "${port}"`, `    SLOW_SECONDS: "${PROXY_SLOW_SECONDS}"`, ...common, 'rollback:', '  to: previous', ''].join('\n')
  }
  return [
    `image: ${image}`, `name: ${name}`, 'strategy: proxy', 'proxy:', `  port: ${port}`, '  bind: 127.0.0.1', `  app-port: ${PROXY_APP_PORT}`, `  image: ${haproxyRef}`, '  drain: 10s', ...proxyLines,
    'container:', '  init: true', '  stop-timeout: 2s', '  env:', '    BIND: 0.0.0.0', `    PORT: "${PROXY_APP_PORT}"`, `    SLOW_SECONDS: "${PROXY_SLOW_SECONDS}"`,
    ...common, 'rollback:', '  to: previous', ''
  ].join('\n')
}

/** One request of a {@link LatencyProbe}: when it was sent, when its answer (or error) came, and whether it was a 2xx/3xx. */
export interface LatencyRecord {
  sentAt: number
  doneAt: number
  ok: boolean
}

export interface LatencyProbe {
  /** Stops sending, waits for what is in flight, and returns every request. */
  stop(): Promise<LatencyRecord[]>
}

/**
 * `clients` keep-alive clients beside the load, each sending `GET /version` back to back on its
 * own connection, recording how long every request took: test-support/load.ts keeps no
 * per-request times, so the slowest successful request is measured here. Loopback only.
 */
export function startLatencyProbe(url: string, clients = 4, requestTimeoutMs = 10_000): LatencyProbe {
  const target = new URL('/version', url)
  if (target.protocol !== 'http:' || !target.hostname.startsWith('127.')) throw new Error(`latency probe: only http:// to 127.0.0.0/8, got ${url}`)
  const records: LatencyRecord[] = []
  let stopping = false
  const agents: Agent[] = []
  const one = (agent: Agent): Promise<boolean> =>
    new Promise((resolveOne) => {
      const req = httpRequest(target, { agent, timeout: requestTimeoutMs }, (res) => {
        res.resume()
        res.on('end', () => resolveOne((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400))
        res.on('error', () => resolveOne(false))
        res.on('aborted', () => resolveOne(false))
      })
      const timer = setTimeout(() => req.destroy(new Error('timed out')), requestTimeoutMs)
      req.on('close', () => clearTimeout(timer))
      req.on('timeout', () => req.destroy(new Error('idle')))
      req.on('error', () => resolveOne(false))
      req.end()
    })
  const client = async (): Promise<void> => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    agents.push(agent)
    while (!stopping) {
      const sentAt = now()
      const ok = await one(agent)
      records.push({ sentAt, doneAt: now(), ok })
      // A refused connection returns at once: do not spin on it.
      if (!ok) await sleep(5)
    }
  }
  const running = Promise.all(Array.from({ length: clients }, () => client()))
  return {
    async stop() {
      stopping = true
      await running
      for (const agent of agents) agent.destroy()
      return records
    }
  }
}

/** The longest successful request among those sent within [from, to]; 0 when none was slower, NaN when none succeeded. */
export function slowestOk(records: LatencyRecord[], from: number, to: number): number {
  const inside = records.filter((record) => record.ok && record.sentAt >= from && record.sentAt <= to)
  return inside.length === 0 ? Number.NaN : Math.max(...inside.map((record) => record.doneAt - record.sentAt))
}

// ---------------------------------------------------------------------------------------------
// How a run is reported: sections of BENCHMARKS.md, each between its markers

/** What this run measured and how it was started: every section's header line names it. */
export interface RunInfo {
  machine: Machine
  /** True when only some figures ran (`--only`, BENCH_ONLY): their sections are written into the file as it was. */
  alone: boolean
  /** How the run was started, e.g. `npm run bench -- --only proxy`. */
  command: string
}

/**
 * The first line of a section: in a full run the section comes from the run named at the top of
 * BENCHMARKS.md; with `--only`, it says that it was measured alone, when, at which commit and of
 * which bundle.
 */
export function sectionHeader(run: RunInfo, seconds: number): string {
  return run.alone
    ? `Measured by \`${run.command}\` on ${run.machine.date}, at commit ${run.machine.commit}, measuring \`${run.machine.bundle}\` (${Math.round(seconds)} s): ` +
        'this section alone; the other sections are from the run named at the top unless their first line says otherwise.'
    : `Measured by \`npm run bench\` in the run named at the top (${Math.round(seconds)} s of it).`
}

/** A section's markers in BENCHMARKS.md, and where it goes in a file that has none yet. */
export interface SectionMarkers {
  begin: string
  end: string
  /** Before "## Notes on the targets" (true) or at the end of the file (false). */
  beforeNotes: boolean
}

/** The markers of a figure's section: `<!-- bench:name -->` … `<!-- /bench:name -->`. */
export function benchMarkers(name: string, beforeNotes = true): SectionMarkers {
  return { begin: `<!-- bench:${name} -->`, end: `<!-- /bench:${name} -->`, beforeNotes }
}

/** Puts `section` (markers included) into `markdown` in place of the one there, or where such a section goes when there is none. */
export function spliceSection(markdown: string, section: string, markers: SectionMarkers): string {
  const text = section.trimEnd()
  const begin = markdown.indexOf(markers.begin)
  const end = markdown.indexOf(markers.end, begin)
  if (begin >= 0 && end > begin) return markdown.slice(0, begin) + text + markdown.slice(end + markers.end.length)
  const notes = markdown.indexOf('\n## Notes on the targets')
  if (!markers.beforeNotes || notes < 0) return `${markdown.trimEnd()}\n\n${text}\n`
  return `${markdown.slice(0, notes)}\n${text}\n${markdown.slice(notes)}`
}

/** What a figure module gives the report: its section (markers included) and its charts (`bench/NAME.svg` → SVG). */
export interface FigureReport {
  markers: SectionMarkers
  section: string
  charts: Record<string, string>
}

/** Writes `text` to `path`, making its directory. */
export function writeOut(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, text)
}
