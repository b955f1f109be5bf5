/**
 * One owner at a time (issue 18, cases 1–4), told as whole stories through `deploy()` and
 * `post()` on in-memory engines and one virtual clock. Every run reaches its engines through an
 * owner watch (test-support/owner-watch.ts): a command that changes a host while another run (or
 * nobody) holds its lock is a violation.
 */
import { describe, expect, it } from '@jest/globals'
import { readFileSync } from 'node:fs'
import { Label } from '../src/constants.js'
import type { DockerRunner } from '../src/docker/runner.js'
import { LOCK_IMAGE, LockLabel } from '../src/lock.js'
import { deploy } from '../src/main.js'
import type { Outcome } from '../src/outcome.js'
import { post } from '../src/post.js'
import { Reporter } from '../src/report/reporter.js'
import type { DeploySettings } from '../src/settings.js'
import { memoryStateStore, readSavedRun, type StateStore } from '../src/state.js'
import { FakeDockerEngine } from '../test-support/fake-docker-engine.js'
import { ownerWatch, type OwnerWatch } from '../test-support/owner-watch.js'
import { testSettings } from '../test-support/settings.js'
import { captureActionStdout } from '../test-support/stdout.js'
import { storyDependencies, virtualClock } from '../test-support/story.js'
import type { Clock } from '../src/dependencies.js'

const IMAGE = '127.0.0.1:5999/acme/web'
const MINUTE = 60_000

const stdout = captureActionStdout()

/** An engine where v1 serves, as a deploy left it, v2 and v3 can be pulled, and the daemon's clock is the story's. */
function servingV1(clock: Clock): FakeDockerEngine {
  const engine = new FakeDockerEngine()
  engine.daemonNow = () => clock.now()
  engine.add({ name: 'web', image: `${IMAGE}:v1`, running: true, labels: { [Label.Tag]: 'v1' } })
  engine.images.add(`${IMAGE}:v2`)
  engine.images.add(`${IMAGE}:v3`)
  return engine
}

/** Another run's lock, with a lease that does not run out during the story. */
function heldByAnotherRun(engine: FakeDockerEngine, clock: Clock): void {
  engine.images.add(LOCK_IMAGE)
  engine.add({
    name: 'web-deploy-lock',
    image: LOCK_IMAGE,
    running: false,
    labels: {
      [LockLabel.Owner]: 'run-41-a',
      [LockLabel.Holder]: 'https://github.com/acme/web/actions/runs/41',
      [LockLabel.Expires]: new Date(clock.now() + 24 * 60 * MINUTE).toISOString()
    }
  })
}

const tagOf = (engine: FakeDockerEngine): string | undefined => engine.describe('web').container?.tag

/** One run of the main step, its engines seen through the watch under the host names its config spells. */
async function runDeploy(
  watch: OwnerWatch,
  name: string,
  clock: Clock,
  engines: Record<string, FakeDockerEngine>,
  overrides: Partial<DeploySettings>,
  state: StateStore = memoryStateStore()
): Promise<Outcome> {
  const watched: Record<string, DockerRunner> = Object.fromEntries(Object.entries(engines).map(([host, engine]) => [host, watch.engineFor(name, engine, host, state)]))
  const settings = testSettings({ image: IMAGE, hosts: Object.keys(engines), ...overrides })
  const outcome = await deploy(settings, new Reporter(), storyDependencies({ engines: watched, state, clock }))
  process.exitCode = undefined
  return outcome
}

describe('one owner at a time', () => {
  it('case 1: a run waiting 45 minutes for its second host keeps renewing the first, so a third run waits instead of taking it over', async () => {
    const clock = virtualClock()
    const a = servingV1(clock)
    const b = servingV1(clock)
    // Locks are taken in engine-ID order: a first, then the wait for b while holding a.
    a.engineId = 'AAAA:A'
    b.engineId = 'BBBB:B'
    // Host b is busy with another run for 45 minutes: far longer than the lease of a 2-host run (about 25 min).
    heldByAnotherRun(b, clock)
    void clock.sleep(45 * MINUTE).then(() => b.containers.delete('web-deploy-lock'))
    const watch = ownerWatch()

    const first = runDeploy(watch, 'run 1', clock, { 'ssh://a': a, 'ssh://b': b }, { tag: 'v2', lock: { timeoutMs: 60 * MINUTE } })
    // A minute later, a deploy to host a alone, willing to wait two hours.
    const third = clock.sleep(MINUTE).then(() => runDeploy(watch, 'run 3', clock, { 'ssh://a': a }, { tag: 'v3', lock: { timeoutMs: 120 * MINUTE } }))
    const [firstOutcome, thirdOutcome] = await Promise.all([first, third])

    expect(watch.violations).toEqual([])
    expect(firstOutcome.kind).toBe('deployed')
    expect(thirdOutcome.kind).toBe('deployed')
    // Run 3 got host a only after run 1 had deployed there and let go.
    expect(tagOf(a)).toBe('v3')
    expect(tagOf(b)).toBe('v2')
    expect(a.containers.has('web-deploy-lock')).toBe(false)
    expect(stdout.text()).not.toMatch(/Took over an expired deploy lock/)
  })

  it('case 2: two runs that spell the same two engines differently lock them in one order: one deploys, the other waits, then deploys', async () => {
    const clock = virtualClock()
    const web1 = servingV1(clock)
    const web2 = servingV1(clock)
    const watch = ownerWatch()
    // Sorted as strings, run 1 would take web1 first and run 2 web2 first: each would hold one lock and wait for the other.
    expect(['ssh://deploy@web1', 'ssh://web2'].sort()[0]).toBe('ssh://deploy@web1')
    expect(['ssh://web1', 'ssh://deploy@web2'].sort()[0]).toBe('ssh://deploy@web2')

    const [one, two] = await Promise.all([
      runDeploy(watch, 'run 1', clock, { 'ssh://deploy@web1': web1, 'ssh://web2': web2 }, { tag: 'v2', lock: { timeoutMs: 10 * MINUTE } }),
      runDeploy(watch, 'run 2', clock, { 'ssh://web1': web1, 'ssh://deploy@web2': web2 }, { tag: 'v3', lock: { timeoutMs: 10 * MINUTE } })
    ])

    expect(watch.violations).toEqual([])
    expect([one.kind, two.kind]).toEqual(['deployed', 'deployed'])
    // Whichever went first, the other deployed after it, on both hosts.
    expect(tagOf(web1)).toBe(tagOf(web2))
    expect(stdout.text()).toMatch(/Waiting up to 10m \(lock\.timeout\) for the deploy lock/)
    expect([web1, web2].every((engine) => !engine.containers.has('web-deploy-lock'))).toBe(true)
  })

  it('case 3: a post step that cannot read its settings again keeps the lock, so the next deploy cannot take the unverified v2 for what ran before', async () => {
    const clock = virtualClock()
    const engine = servingV1(clock)
    const state = memoryStateStore()
    const cancel = new AbortController()
    // Cancelled as the new version, renamed into place, starts: phase switching, v2 runs unverified.
    engine.onCommand = (_index, argv) => {
      if (argv.join(' ') === 'container start web') cancel.abort(new Error('cancelled by SIGINT'))
    }
    const settings = testSettings({ image: IMAGE, tag: 'v2' })
    const outcome = await deploy(settings, new Reporter(), storyDependencies({ engines: { local: engine }, state, clock, signal: cancel.signal }))
    process.exitCode = undefined
    engine.onCommand = undefined
    expect(outcome.kind).toBe('cancelled')
    const owner = readSavedRun(state)?.lock?.owner
    expect(owner).toBeDefined()

    const postStart = stdout.text().length
    await post(undefined, { state, settings: () => undefined, dependencies: () => storyDependencies({ engines: { local: engine }, state, clock }) })
    expect(process.exitCode).toBe(1)
    process.exitCode = undefined
    expect(engine.containers.get('web-deploy-lock')?.labels[LockLabel.Owner]).toBe(owner)
    const postText = stdout.text().slice(postStart)
    expect(postText).toMatch(/::error title=Post · restore failed::.*its settings could not be read again/)
    expect(postText).toMatch(/::warning title=Post · unlock::The deploy lock web-deploy-lock on local stays held: no known version could be put back there/)

    // The next deploy waits for that lock and gives up, naming it, rather than reading v2 as "what ran before".
    const next = await runDeploy(ownerWatch(), 'next run', clock, { local: engine }, { tag: 'v3', lock: { timeoutMs: 5_000 } })
    expect(next).toMatchObject({ kind: 'failed-before-switch', stage: 'lock' })
    expect(next.kind === 'failed-before-switch' && next.reason).toMatch(/^Another deploy holds the lock web-deploy-lock on local/)
  })

  it('case 4: the post step has an entry of its own that cannot reach the deploy story', () => {
    const action = readFileSync('action.yml', 'utf8')
    expect(action).toMatch(/^ {2}main: dist\/index\.js$/m)
    expect(action).toMatch(/^ {2}post: dist\/post\/index\.js$/m)
    // The post bundle is built from post-index.ts, which imports the post step and never main.ts,
    // so whatever the saved state says (nothing, after a cancel during start-up), it cannot deploy.
    const entry = readFileSync('src/post-index.ts', 'utf8')
    expect(entry).toMatch(/^import \{ post \} from '\.\/post\.js'$/m)
    const imports = (file: string): string[] => [...readFileSync(file, 'utf8').matchAll(/^import .* from '(\.[^']+)'$/gm)].map((match) => match[1] as string)
    expect(imports('src/post-index.ts')).not.toContain('./main.js')
    expect(imports('src/post.ts')).not.toContain('./main.js')
    expect(imports('src/step.ts')).toEqual([])
  })
})
