/**
 * One owner at a time (issue 18, "Real engine"): two private engines, each in its own network
 * namespace (test-support/netns.ts) with its own registry on its own 127.0.0.1, as in
 * multi-host.itg.ts.
 *
 * 1. Two runs for the same 2-host fleet start at the same moment, each from its own workspace (two
 *    jobs). Their `hosts:` name the same two unix sockets with different strings, chosen so that,
 *    sorted as strings, the two runs would lock the hosts in opposite orders: the old deadlock, where
 *    each held one lock and waited for the other until lock.timeout. While they run, a sampler lists
 *    every container of the app's name on both engines (lock included) every ~150 ms, and the test
 *    judges from those samples: one run deploys while the other waits, no run acts on a host whose
 *    lock the other holds, and nobody ever holds one lock each before a run held both.
 * 2. The post step, started with full deploy inputs and an empty saved state (a cancel while the
 *    main step was still loading), runs no docker command at all and leaves nothing behind.
 *
 * Test traffic goes only to loopback and to the namespaces' 10.251.x addresses.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { runAction, type ActionResult } from '../test-support/action-run.js'
import { buildAppImage } from '../test-support/images.js'
import { freePort, httpGet } from '../test-support/net.js'
import { startNamespacedEngines, type NamespaceHost, type NamespaceLab } from '../test-support/netns.js'
import { startNamespaceRegistry, type NamespaceRegistry } from '../test-support/namespace-registry.js'
import { sleep } from '../test-support/proc.js'
import { Label } from '../src/constants.js'
import { LOCK_SUFFIX, LockLabel } from '../src/lock.js'

const REPO = 'acme/web'
const NAME = 'web'
const HEALTHY_BODY = 'status: green'
/** Long enough for the waiting run to wait out the other's deploy, short enough that a deadlock fails well within the test's time. */
const LOCK_TIMEOUT = '3m'
/** Pause between two sample rounds (each round is one `docker ps` per engine, side by side). */
const SAMPLE_PAUSE_MS = 150

/** The two racing runs: their run ids (in the lock's owner token and the containers' run-url label) and tags. */
const RUNS = {
  run1: { runId: '5101', tag: 'v2' },
  run2: { runId: '5102', tag: 'v3' }
} as const
type RunName = keyof typeof RUNS
const RUN_NAMES = Object.keys(RUNS) as RunName[]
/** The set-up run that deploys v1 before the race. */
const SETUP_RUN_ID = '5100'

const labs: NamespaceLab[] = []
/** Host A sorts before host B by their plain socket paths. */
let hostA: NamespaceHost
let hostB: NamespaceHost
let registryPort: number
let appPort: number
const registries: NamespaceRegistry[] = []
const workspaces: string[] = []

/** Builds a healthy `tag` in the host's engine and pushes it to the host's own registry. */
async function publish(host: NamespaceHost, tag: string): Promise<void> {
  const built = await buildAppImage(host.engine, 'local/web', tag, 'healthy', { healthBody: HEALTHY_BODY })
  const reference = `${imageRepository()}:${tag}`
  await host.engine.docker(['tag', built.reference, reference])
  await host.engine.docker(['push', reference])
  await host.engine.docker(['image', 'rm', built.reference, reference])
}

function imageRepository(): string {
  return `127.0.0.1:${registryPort}/${REPO}`
}

/** The socket path of a host's engine (`unix://<path>`). */
function socketPath(host: NamespaceHost): string {
  return host.engine.dockerHost.slice('unix://'.length)
}

/**
 * Four spellings of the two sockets, all different strings. Run 1 lists [A, B], run 2 lists [B, A],
 * and sorted as strings each run keeps its own order: run 1 would lock A first, run 2 B first.
 */
function spellings(): { run1: [string, string]; run2: [string, string] } {
  const a = socketPath(hostA)
  const b = socketPath(hostB)
  // Whatever the engines' random directory names, a path behind a leading `/.` sorts before one
  // that starts `/tmp`, by code point and by localeCompare alike.
  return {
    // A behind a leading `/.`, B as it is.
    run1: [`unix:///.${a}`, `unix://${b}`],
    // B behind a leading `/.` and with a `/./` before the socket's name, A with a doubled slash.
    run2: [`unix:///.${dirname(b)}/./docker.sock`, `unix://${dirname(a)}//docker.sock`]
  }
}

/** A workspace whose deploy config deploys NAME to `hosts` (in that order, with their addresses). */
function workspaceFor(label: string, name: string, hosts: [string, NamespaceHost][]): string {
  const workspace = mkdtempSync(join(tmpdir(), `deploy-action-itg-owner-${label}-`))
  workspaces.push(workspace)
  mkdirSync(join(workspace, '.github'))
  writeFileSync(
    join(workspace, '.github', 'deploy.yml'),
    [
      `image: ${imageRepository()}`,
      `name: ${name}`,
      'hosts:',
      ...hosts.flatMap(([dockerHost, host]) => [`  - docker-host: ${dockerHost}`, `    address: ${host.address}`]),
      'container:',
      '  network: host',
      '  init: true',
      '  stop-timeout: 2s',
      '  env:',
      `    PORT: "${appPort}"`,
      // Inside its namespace the app must answer on the namespace's address, not only its loopback.
      '    BIND: "0.0.0.0"',
      'health:',
      `  url: http://{host}:${appPort}/health`,
      `  expect-body: "${HEALTHY_BODY}"`,
      '  interval: 150ms',
      '  timeout: 1s',
      '  deadline: 10s',
      '  healthy-threshold: 2',
      'rollback:',
      '  to: previous',
      'lock:',
      `  timeout: ${LOCK_TIMEOUT}`,
      ''
    ].join('\n')
  )
  return workspace
}

/** Fails with the action's own errors when a run did not end as expected. */
function expectResult(result: ActionResult, expected: string, label: string): void {
  if (result.outputs.result === expected) return
  const errors = result.annotations.filter((annotation) => annotation.level === 'error').map((annotation) => `${annotation.title ?? ''}: ${annotation.message}`)
  throw new Error(`${label}: expected result=${expected}, got ${result.outputs.result ?? '(none)'} (exit ${result.exitCode})\n${errors.join('\n')}\n${result.stderr.slice(-2_000)}`)
}

/** A run's result and errors in one line, for the log. */
function describeRun(result: ActionResult): string {
  const errors = result.annotations.filter((annotation) => annotation.level === 'error').map((annotation) => `${annotation.title ?? ''}: ${annotation.message}`)
  return `exit ${String(result.exitCode)}, result ${result.outputs.result ?? '(none)'}${errors.length > 0 ? `; ${errors.join(' / ')}` : ''}`
}

/** One container of the app's name (lock excluded) as one sample saw it. */
interface SeenContainer {
  name: string
  tag: string
  /** The run whose run-url label it carries (RunName, or the raw run URL of another run, e.g. the set-up). */
  run: string
}

/** What one `docker ps` on one engine saw: the lock's owner (RunName, or the raw token of another) and the app's containers. */
interface HostSample {
  lock: string | undefined
  containers: SeenContainer[]
}

interface Round {
  /** ms since the race started, when the round began. */
  at: number
  /** [host A, host B]; undefined where `docker ps` failed. */
  hosts: [HostSample | undefined, HostSample | undefined]
}

const FORMAT = ['{{.Names}}', '{{.Image}}', `{{.Label "${LockLabel.Owner}"}}`, `{{.Label "${Label.RunUrl}"}}`].join('\t')

function runOfToken(token: string): string {
  return RUN_NAMES.find((run) => token.startsWith(`${RUNS[run].runId}-`)) ?? token
}

function runOfUrl(url: string): string {
  return RUN_NAMES.find((run) => url.endsWith(`/actions/runs/${RUNS[run].runId}`)) ?? url
}

function tagOf(image: string): string {
  const colon = image.lastIndexOf(':')
  return colon > image.lastIndexOf('/') ? image.slice(colon + 1) : image
}

/** Every container of `name` (and its lock) on one engine, from one `docker ps` (one list of the daemon's). */
async function sampleHost(host: NamespaceHost, name: string): Promise<HostSample | undefined> {
  const result = await host.engine.dockerResult(['ps', '-a', '--no-trunc', '--filter', `name=${name}`, '--format', FORMAT], { timeoutMs: 10_000 })
  if (result.exitCode !== 0) return undefined
  const sample: HostSample = { lock: undefined, containers: [] }
  for (const line of result.stdout.split('\n').filter(Boolean)) {
    const [container = '', image = '', owner = '', runUrl = ''] = line.split('\t')
    if (container === `${name}${LOCK_SUFFIX}`) sample.lock = runOfToken(owner)
    else if (container === name || container.startsWith(`${name}-`)) sample.containers.push({ name: container, tag: tagOf(image), run: runOfUrl(runUrl) })
  }
  return sample
}

/** Samples both engines every SAMPLE_PAUSE_MS until stopped; `stop` takes one last round. */
function startSampler(name: string): { rounds: Round[]; stop(): Promise<Round[]> } {
  const rounds: Round[] = []
  const started = performance.now()
  let stopped = false
  const round = async (): Promise<void> => {
    const at = Math.round(performance.now() - started)
    const hosts = await Promise.all([sampleHost(hostA, name), sampleHost(hostB, name)])
    rounds.push({ at, hosts })
  }
  const loop = (async () => {
    while (!stopped) {
      await round()
      await sleep(SAMPLE_PAUSE_MS)
    }
  })()
  return {
    rounds,
    async stop() {
      stopped = true
      await loop
      await round()
      return rounds
    }
  }
}

/** The rounds as a short story: only the rounds where a lock changed hands, for failure messages. */
function lockStory(rounds: Round[]): string {
  const lines: string[] = []
  let last = ''
  for (const round of rounds) {
    const now = round.hosts.map((sample) => (sample ? (sample.lock ?? '-') : '?')).join(' | ')
    if (now !== last) lines.push(`  ${String(round.at).padStart(6)} ms  A: ${now.replace(' | ', '  B: ')}`)
    last = now
  }
  return lines.join('\n')
}

/**
 * (c) Nobody holds one lock each unless one of the two had held both before (it is releasing): two
 * runs that each hold one host and wait for the other is the deadlock. Every owner seen is one of
 * the two runs.
 */
function crossHoldings(rounds: Round[]): string[] {
  const problems: string[] = []
  const heldBoth = new Set<string>()
  // Consecutive rounds with the same problem become one line with its first and last time.
  let open: { text: string; from: number; to: number; count: number } | undefined
  const close = (): void => {
    if (open) problems.push(`${open.from}–${open.to} ms (${open.count} samples): ${open.text}`)
    open = undefined
  }
  for (const round of rounds) {
    const [a, b] = round.hosts.map((sample) => sample?.lock)
    const found: string[] = []
    for (const owner of [a, b]) if (owner !== undefined && !RUN_NAMES.includes(owner as RunName)) found.push(`a lock owned by ${owner}, neither racing run`)
    if (a !== undefined && a === b) heldBoth.add(a)
    else if (a !== undefined && b !== undefined && !heldBoth.has(a) && !heldBoth.has(b)) found.push(`${a} holds the lock on A while ${b} holds it on B, and neither had held both`)
    const text = found.join('; ')
    if (open && open.text !== text) close()
    if (!text) continue
    if (open) Object.assign(open, { to: round.at, count: open.count + 1 })
    else open = { text, from: round.at, to: round.at, count: 1 }
  }
  close()
  return problems
}

/**
 * (e) Per host, each run first changes the app there (its first container appears) only while it
 * holds the lock on both hosts, and the run that deployed second only after the first run's lock on
 * that host was gone for good.
 */
function actsWithoutLock(rounds: Round[], first: RunName, second: RunName): string[] {
  const problems: string[] = []
  for (const [index, label] of ['A', 'B'].entries()) {
    const sampleOf = (round: Round): HostSample | undefined => round.hosts[index]
    const firstTouch = (run: RunName): number => rounds.findIndex((round) => sampleOf(round)?.containers.some((container) => container.run === run) ?? false)
    for (const run of [first, second]) {
      const touch = firstTouch(run)
      if (touch < 0) {
        problems.push(`${run} never made a container on ${label}`)
        continue
      }
      const round = rounds[touch] as Round
      const locks = round.hosts.map((sample) => sample?.lock)
      if (locks.some((owner) => owner !== run)) problems.push(`${round.at} ms: ${run}'s first container on ${label} appeared while the locks were A: ${locks[0] ?? '-'}, B: ${locks[1] ?? '-'}`)
    }
    const secondTouch = firstTouch(second)
    const firstLocks = rounds.flatMap((round, at) => (sampleOf(round)?.lock === first ? [at] : []))
    if (firstLocks.length === 0) problems.push(`${first}'s lock on ${label} was never seen`)
    const lastFirstLock = Math.max(...firstLocks)
    if (secondTouch >= 0 && lastFirstLock >= secondTouch) {
      problems.push(`${second} made its first container on ${label} at ${(rounds[secondTouch] as Round).at} ms, but ${first}'s lock was still there at ${(rounds[lastFirstLock] as Round).at} ms`)
    }
  }
  return problems
}

/** The tags the container named NAME carried on one host, in order, repeats and absences left out. */
function liveTags(rounds: Round[], index: 0 | 1): string[] {
  const tags: string[] = []
  for (const round of rounds) {
    const live = round.hosts[index]?.containers.find((container) => container.name === NAME)
    if (live && tags[tags.length - 1] !== live.tag) tags.push(live.tag)
  }
  return tags
}

async function servedVersions(port: number): Promise<string[]> {
  return Promise.all(
    [hostA, hostB].map((host) =>
      httpGet(`http://${host.address}:${port}/version`).then(
        (response) => response.body,
        (error: Error) => `unreachable: ${error.message}`
      )
    )
  )
}

beforeAll(async () => {
  // The engines share the machine's /etc/docker/key.json, so before Engine 23 they report one engine
  // ID, like machines cloned from one image: the action tells them apart by their data roots.
  labs.push(await startNamespacedEngines(2))
  const [one, two] = labs.flatMap((lab) => lab.hosts) as [NamespaceHost, NamespaceHost]
  ;[hostA, hostB] = socketPath(one) < socketPath(two) ? [one, two] : [two, one]
  // Any port: each namespace has a loopback of its own, and nothing else listens there.
  registryPort = await freePort()
  appPort = await freePort()
  for (const host of [one, two]) registries.push(await startNamespaceRegistry(host, registryPort))
  // v4 is only for the post step's test: it must never be pulled.
  await Promise.all(
    [one, two].map(async (host) => {
      for (const tag of ['v1', 'v2', 'v3', 'v4']) await publish(host, tag)
    })
  )
}, 300_000)

afterAll(async () => {
  await Promise.all(registries.map((registry) => registry.stop()))
  for (const lab of labs) await lab.stop()
  await Promise.all(workspaces.map((workspace) => rm(workspace, { recursive: true, force: true })))
}, 120_000)

describe('one owner at a time, on two engines in two network namespaces', () => {
  it('two runs for a 2-host fleet, started at once with their hosts spelled differently: one deploys, the other waits, then deploys', async () => {
    const spelled = spellings()
    // The premise: four different strings, each reaching the engine it stands for, and sorted as
    // strings run 1 takes A first while run 2 takes B first (the old code sorted by localeCompare).
    expect(new Set([...spelled.run1, ...spelled.run2]).size).toBe(4)
    for (const compare of [(x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0), (x: string, y: string) => x.localeCompare(y)]) {
      expect([...spelled.run1].sort(compare)).toEqual(spelled.run1)
      expect([...spelled.run2].sort(compare)).toEqual(spelled.run2)
    }
    // What the action orders its locks by: the engines share one ID (one key.json), not their data roots.
    const engineId = async (host: NamespaceHost, dockerHost: string): Promise<string> =>
      (await host.engine.docker(['system', 'info', '--format', '{{.ID}} {{.Name}} {{.DockerRootDir}}'], { env: { DOCKER_HOST: dockerHost } })).trim()
    const idA = await engineId(hostA, hostA.engine.dockerHost)
    const idB = await engineId(hostB, hostB.engine.dockerHost)
    expect(idA).not.toBe(idB)
    expect(await Promise.all([engineId(hostA, spelled.run1[0]), engineId(hostB, spelled.run1[1]), engineId(hostB, spelled.run2[0]), engineId(hostA, spelled.run2[1])])).toEqual([
      idA,
      idB,
      idB,
      idA
    ])

    const workspace1 = workspaceFor('run1', NAME, [
      [spelled.run1[0], hostA],
      [spelled.run1[1], hostB]
    ])
    const workspace2 = workspaceFor('run2', NAME, [
      [spelled.run2[0], hostB],
      [spelled.run2[1], hostA]
    ])
    expectResult(await runAction({ workspace: workspace1, inputs: { tag: 'v1' }, github: { runId: SETUP_RUN_ID }, timeoutMs: 120_000 }), 'deployed', 'set-up run')
    expect(await servedVersions(appPort)).toEqual(['v1', 'v1'])

    const sampler = startSampler(NAME)
    // Let the sampler see the start: v1 everywhere, no lock.
    await sleep(300)
    const race = (run: RunName, workspace: string): Promise<ActionResult> =>
      runAction({ workspace, inputs: { tag: RUNS[run].tag }, github: { runId: RUNS[run].runId }, timeoutMs: 300_000 })
    const startedAt = performance.now()
    let results: [ActionResult, ActionResult]
    try {
      results = await Promise.all([race('run1', workspace1), race('run2', workspace2)])
    } finally {
      await sampler.stop()
    }
    const raceMs = Math.round(performance.now() - startedAt)
    const rounds = sampler.rounds
    const byRun: Record<RunName, ActionResult> = { run1: results[0], run2: results[1] }
    const story = lockStory(rounds)
    const gaps = rounds.slice(1).map((round, index) => round.at - (rounds[index] as Round).at)
    process.stdout.write(
      `one-owner.itg race: ${raceMs} ms, ${rounds.length} sample rounds (largest gap ${Math.max(...gaps)} ms, ` +
        `${rounds.filter((round) => round.hosts.includes(undefined)).length} with a failed docker ps); locks over time:\n${story}\n` +
        RUN_NAMES.map((run) => `  ${run}: ${describeRun(byRun[run])}\n`).join('')
    )

    // (c) No deadlock shape in any sample: judged first, as it is what the old code broke.
    expect({ crossHoldings: crossHoldings(rounds), story }).toEqual({ crossHoldings: [], story })
    // (a) Both runs deployed.
    for (const run of RUN_NAMES) expectResult(byRun[run], 'deployed', run)
    // (b) Exactly one of them waited, and it says for whom.
    const waited = RUN_NAMES.filter((run) => byRun[run].stdout.includes('Waiting up to'))
    expect(waited).toHaveLength(1)
    const second = waited[0] as RunName
    const first = RUN_NAMES.find((run) => run !== second) as RunName
    expect(byRun[second].stdout).toMatch(
      new RegExp(`Waiting up to ${LOCK_TIMEOUT} \\(lock\\.timeout\\) for the deploy lock, held by run \\S*/actions/runs/${RUNS[first].runId}, deploying ${RUNS[first].tag}`)
    )
    expect(byRun[second].summary).toMatch(new RegExp(`waited \\d+\\S* for run \\S*/actions/runs/${RUNS[first].runId}`))
    // The run that waited read what the first one left: v1 → first's tag → second's tag.
    expect(byRun[first].outputs['previous-tag']).toBe('v1')
    expect(byRun[second].outputs['previous-tag']).toBe(RUNS[first].tag)
    // The sampler saw each run hold both locks at once (so the checks below had something to see).
    for (const run of RUN_NAMES) expect(rounds.some((round) => round.hosts.every((sample) => sample?.lock === run))).toBe(true)
    expect(Math.max(...gaps)).toBeLessThan(2_000)
    // (e) Each run changed a host only holding both locks; the second only once the first's lock there was gone.
    expect(actsWithoutLock(rounds, first, second)).toEqual([])
    // (d) What ran under the name on each host, in order, and what both serve now.
    expect([liveTags(rounds, 0), liveTags(rounds, 1)]).toEqual([
      ['v1', RUNS[first].tag, RUNS[second].tag],
      ['v1', RUNS[first].tag, RUNS[second].tag]
    ])
    expect(await servedVersions(appPort)).toEqual([RUNS[second].tag, RUNS[second].tag])
    // Both locks are gone.
    for (const host of [hostA, hostB]) expect((await sampleHost(host, NAME))?.lock).toBeUndefined()
  }, 480_000)

  it('the post step, with full deploy inputs and nothing saved by the main step, runs no docker command and deploys nothing', async () => {
    const name = 'quiet'
    const workspace = workspaceFor('post', name, [
      [hostA.engine.dockerHost, hostA],
      [hostB.engine.dockerHost, hostB]
    ])
    const inspectV4 = (host: NamespaceHost): Promise<number> => host.engine.dockerResult(['image', 'inspect', `${imageRepository()}:v4`]).then((result) => result.exitCode)
    // v4 was pushed and removed locally: a deploy would have to pull it.
    expect(await Promise.all([inspectV4(hostA), inspectV4(hostB)])).toEqual([1, 1])

    // As if SIGINT came while the main step was loading: no STATE_* at all.
    const result = await runAction({ workspace, phase: 'post', state: {}, inputs: { tag: 'v4' }, debug: true, watchDockerArgv: true, timeoutMs: 120_000 })
    expect({ exit: result.exitCode, signal: result.signal }).toEqual({ exit: 0, signal: null })
    // Debug output was on, and the post step took the nothing-saved path.
    expect(result.stdout).toContain('::debug::post: the main step saved nothing to repair')
    // No docker command, by the action's own account and by the process table.
    expect(result.stdout.split('\n').filter((line) => line.startsWith('::debug::docker '))).toEqual([])
    expect(result.dockerArgv).toEqual([])
    expect(result.annotations.filter((annotation) => annotation.level === 'error')).toEqual([])
    expect(result.outputs.result).toBeUndefined()

    for (const host of [hostA, hostB]) {
      expect(await sampleHost(host, name)).toEqual({ lock: undefined, containers: [] })
      expect((await host.engine.docker(['network', 'ls', '--filter', `name=${name}`, '--format', '{{.Name}}'])).trim()).toBe('')
      // Not a swarm manager: no service can have been made either.
      expect((await host.engine.docker(['system', 'info', '--format', '{{.Swarm.LocalNodeState}}'])).trim()).toBe('inactive')
    }
    expect(await Promise.all([inspectV4(hostA), inspectV4(hostB)])).toEqual([1, 1])
  }, 180_000)
})
