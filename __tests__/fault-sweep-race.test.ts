/**
 * The fault sweep, two runs at once (issue 18): two deploys race for the same 2-host fleet, which
 * their configs spell differently, while a third run holds one host for half an hour, far past a
 * lease, on the virtual clock. One of the racers gets a fault at each of its docker commands in
 * turn (or is cancelled before it), and each run's post step follows its main step.
 *
 * Invariants, for every fault and cancel:
 * - two runs never both hold, or act on, one host: every command that changes a host comes from
 *   the run that holds its lock at that moment (test-support/owner-watch.ts);
 * - the run without a fault deploys;
 * - each host ends serving a version that was deployed and runs, and no lock is left behind.
 */
import { describe, expect, it } from '@jest/globals'
import { Label } from '../src/constants.js'
import type { Clock } from '../src/dependencies.js'
import type { DockerResult, DockerRunner } from '../src/docker/runner.js'
import { LOCK_IMAGE, LockLabel } from '../src/lock.js'
import { deploy } from '../src/main.js'
import type { Outcome } from '../src/outcome.js'
import { post } from '../src/post.js'
import { Reporter } from '../src/report/reporter.js'
import { memoryStateStore } from '../src/state.js'
import { FakeDockerEngine, injectedResult } from '../test-support/fake-docker-engine.js'
import { ownerWatch, type OwnerWatch } from '../test-support/owner-watch.js'
import { testSettings } from '../test-support/settings.js'
import { captureActionStdout } from '../test-support/stdout.js'
import { storyDependencies, virtualClock } from '../test-support/story.js'

const IMAGE = '127.0.0.1:5999/acme/web'
const MINUTE = 60_000
/** How long a third run holds host web2 before the racers may have it: beyond a 2-host lease (about 25 min). */
const OTHER_RUN_HOLDS_MS = 30 * MINUTE

captureActionStdout()

interface Racer {
  name: string
  tag: string
  /** Host names as this run's config spells them, in its order, and the engine each one reaches. */
  hosts: [string, 'web1' | 'web2'][]
}

const RACERS: [Racer, Racer] = [
  { name: 'run 1', tag: 'v2', hosts: [['ssh://deploy@web1', 'web1'], ['ssh://web2', 'web2']] },
  { name: 'run 2', tag: 'v3', hosts: [['ssh://web2.example', 'web2'], ['ssh://web1.example', 'web1']] }
]

type Injection = { faultAt: number } | { cancelAt: number } | undefined

interface RaceResult {
  outcomes: Outcome[]
  engines: Record<'web1' | 'web2', FakeDockerEngine>
  watch: OwnerWatch
  /** Commands the first racer sent, main and post step, in order. */
  sent: string[]
}

function servingV1(clock: Clock): FakeDockerEngine {
  const engine = new FakeDockerEngine()
  engine.daemonNow = () => clock.now()
  engine.add({ name: 'web', image: `${IMAGE}:v1`, running: true, labels: { [Label.Tag]: 'v1' } })
  for (const tag of ['v2', 'v3']) engine.images.add(`${IMAGE}:${tag}`)
  return engine
}

async function race(injection: Injection): Promise<RaceResult> {
  const clock = virtualClock()
  const engines = { web1: servingV1(clock), web2: servingV1(clock) }
  // Both runs lock web1 first (by engine ID), then wait for web2 while holding web1.
  engines.web1.engineId = 'AAAA:WEB1'
  engines.web2.engineId = 'BBBB:WEB2'
  engines.web2.images.add(LOCK_IMAGE)
  engines.web2.add({
    name: 'web-deploy-lock',
    image: LOCK_IMAGE,
    running: false,
    labels: { [LockLabel.Owner]: 'run-41-a', [LockLabel.Holder]: 'https://github.com/acme/web/actions/runs/41', [LockLabel.Expires]: new Date(clock.now() + 24 * 60 * MINUTE).toISOString() }
  })
  void clock.sleep(OTHER_RUN_HOLDS_MS).then(() => engines.web2.containers.delete('web-deploy-lock'))
  const watch = ownerWatch()
  const sent: string[] = []
  const cancellation = new AbortController()

  const runOne = async (racer: Racer, index: number): Promise<Outcome> => {
    const state = memoryStateStore()
    const first = index === 0
    const beforeCommand = (argv: readonly string[]): DockerResult | undefined => {
      if (!first) return undefined
      sent.push(argv.join(' '))
      const at = sent.length
      if (injection && 'cancelAt' in injection && injection.cancelAt === at) cancellation.abort(new Error('cancelled by SIGINT'))
      if (injection && 'faultAt' in injection && injection.faultAt === at) return injectedResult(at, argv)
      return undefined
    }
    const runners = (): Record<string, DockerRunner> => Object.fromEntries(racer.hosts.map(([host, engine]) => [host, watch.engineFor(racer.name, engines[engine], host, state, beforeCommand)]))
    const settings = testSettings({ image: IMAGE, tag: racer.tag, hosts: racer.hosts.map(([host]) => host), lock: { timeoutMs: 60 * MINUTE } })
    const outcome = await deploy(settings, new Reporter(), storyDependencies({ engines: runners(), state, clock, ...(first && { signal: cancellation.signal }) }))
    // The post step: a fresh process with a fresh signal, on the same clock.
    await post(undefined, { state, settings: () => settings, dependencies: () => storyDependencies({ engines: runners(), state, clock }) })
    return outcome
  }
  const outcomes = await Promise.all(RACERS.map((racer, index) => runOne(racer, index)))
  process.exitCode = undefined
  return { outcomes, engines, watch, sent }
}

function assertInvariants({ outcomes, engines, watch }: RaceResult, label: string): void {
  const broken = (what: string): Error => new Error(`${label}: ${what}; outcomes ${outcomes.map((outcome) => outcome.kind).join(', ')}`)
  if (watch.violations.length > 0) throw broken(`two runs acted on one host:\n${watch.violations.join('\n')}`)
  if (outcomes[1]?.kind !== 'deployed') throw broken(`run 2 (no fault) ended ${outcomes[1]?.kind}`)
  for (const [name, engine] of Object.entries(engines)) {
    const container = engine.describe('web').container
    if (!container?.running || !['v1', 'v2', 'v3'].includes(container.tag ?? '')) throw broken(`${name} serves ${container?.tag ?? 'nothing'} (running: ${String(container?.running)})`)
    if (engine.containers.has('web-deploy-lock')) throw broken(`${name}: a deploy lock is left, held by ${engine.containers.get('web-deploy-lock')?.labels[LockLabel.Owner] ?? '?'}`)
  }
}

describe('two runs racing for a 2-host fleet, spelled differently, with a 30-minute wait for one host', () => {
  it('without a fault: both deploy, one after the other, and never both act on one host', async () => {
    const result = await race(undefined)
    assertInvariants(result, 'no fault')
    expect(result.outcomes.map((outcome) => outcome.kind)).toEqual(['deployed', 'deployed'])
    // Run 1 waited for the third run's lock on web2 (a poll every 2 s for 30 minutes) and renewed web1's meanwhile.
    expect(result.sent.filter((command) => command.startsWith('container cp - ')).length).toBeGreaterThanOrEqual(2)
  })

  it('a fault at each docker command of the first run, and a cancel before each', async () => {
    const { sent } = await race(undefined)
    const positions = distinctSteps(sent)
    // About 40 steps of some 1,850 commands, most of them the 30-minute lock wait.
    expect(positions.length).toBeGreaterThan(30)
    for (const at of positions) {
      assertInvariants(await race({ faultAt: at }), `fault at command ${at} (\`docker ${sent[at - 1] ?? ''}\`) of run 1`)
      assertInvariants(await race({ cancelAt: at }), `cancel before command ${at} (\`docker ${sent[at - 1] ?? ''}\`) of run 1`)
    }
  }, 600_000)
})

/**
 * The positions (1-based) worth a fault: every command, except the repeats of a wait. A lock wait
 * polls 900 times in 30 minutes (create, then read the holder); the first two rounds of any such
 * loop are kept, the rest are the same step again.
 */
function distinctSteps(sent: string[]): number[] {
  const step = (command: string): string => command.split(' ').filter((word) => !word.startsWith('deploy-action.lock.since=') && !word.startsWith('deploy-action.lock.expires=')).join(' ')
  const positions: number[] = []
  const seen = new Map<string, number>()
  sent.forEach((command, index) => {
    const key = step(command)
    const times = seen.get(key) ?? 0
    seen.set(key, times + 1)
    if (times < 2) positions.push(index + 1)
  })
  return positions
}
