/**
 * A lost deploy lock stops the run before its next switch (issue "Unknown is not absent", case 6):
 * its lease ran out while renewals failed, or the lock container is gone or another run's. The
 * run puts back only the hosts it switched, and never touches another run's lock.
 */
import { describe, expect, it } from '@jest/globals'
import { Label } from '../src/constants.js'
import { DockerClient } from '../src/docker/client.js'
import { DeployLock, LOCK_IMAGE, LockLabel, LockLostError } from '../src/lock.js'
import { deploy } from '../src/main.js'
import { resultOf, servingRelease } from '../src/outcome.js'
import { Reporter } from '../src/report/reporter.js'
import { memoryStateStore } from '../src/state.js'
import { FakeDockerEngine } from '../test-support/fake-docker-engine.js'
import { testSettings } from '../test-support/settings.js'
import { captureActionStdout } from '../test-support/stdout.js'
import { storyDependencies, virtualClock } from '../test-support/story.js'

const IMAGE = '127.0.0.1:5999/acme/web'

captureActionStdout()

/** An engine where v1 serves, as a deploy left it, and v2 can be pulled. */
function servingV1(): FakeDockerEngine {
  const engine = new FakeDockerEngine()
  engine.add({ name: 'web', image: `${IMAGE}:v1`, running: true, labels: { [Label.Tag]: 'v1' } })
  engine.images.add(`${IMAGE}:v2`)
  return engine
}

/** Another run takes the lock over: ours goes, theirs stands under the same name. */
function takeOver(engine: FakeDockerEngine): void {
  engine.containers.delete('web-deploy-lock')
  engine.images.add(LOCK_IMAGE)
  engine.add({ name: 'web-deploy-lock', image: LOCK_IMAGE, running: false, labels: { [LockLabel.Owner]: 'run-43-a', [LockLabel.Holder]: 'https://github.com/acme/web/actions/runs/43' } })
}

describe('a lost deploy lock', () => {
  it('taken over during the pull: the run stops before the switch, names the host, and changes nothing', async () => {
    const engine = servingV1()
    const serving = engine.containers.get('web')?.id
    engine.onCommand = (_index, argv) => {
      if (argv[0] === 'pull') takeOver(engine)
    }
    const outcome = await deploy(testSettings({ image: IMAGE, tag: 'v2' }), new Reporter(), storyDependencies({ engines: { local: engine }, state: memoryStateStore(), clock: virtualClock() }))

    expect(outcome).toMatchObject({ kind: 'failed-before-switch', stage: 'lock' })
    expect(outcome.kind === 'failed-before-switch' && outcome.reason).toMatch(/^lost the deploy lock on local: another run holds it now: run https:\/\/github.com\/acme\/web\/actions\/runs\/43/)
    expect(resultOf(outcome)).toBe('failed')
    expect(servingRelease(outcome)?.tag).toBe('v1')
    expect(engine.containers.get('web')).toMatchObject({ id: serving, running: true })
    expect(engine.containers.has('web-next')).toBe(false)
    // The other run's lock stays.
    expect(engine.containers.get('web-deploy-lock')?.labels[LockLabel.Owner]).toBe('run-43-a')
  })

  it('taken over on host b while host a was switched: b is never switched, a is put back', async () => {
    const a = servingV1()
    const b = servingV1()
    const bServing = b.containers.get('web')?.id
    a.onCommand = (_index, argv) => {
      // Host a's new version starts: the lease of b is lost before b's turn.
      if (argv.join(' ') === 'container start web') takeOver(b)
    }
    const settings = testSettings({ image: IMAGE, tag: 'v2', hosts: ['ssh://a', 'ssh://b'], rollout: { parallel: 1, canary: false } })
    const outcome = await deploy(settings, new Reporter(), storyDependencies({ engines: { 'ssh://a': a, 'ssh://b': b }, state: memoryStateStore(), clock: virtualClock() }))

    expect(outcome.kind).not.toBe('deployed')
    expect(outcome.kind === 'rolled-back' && outcome.failure.reason).toMatch(/^lost the deploy lock on ssh:\/\/b: another run holds it/)
    expect(a.describe('web').container).toMatchObject({ tag: 'v1', running: true })
    expect(b.containers.get('web')).toMatchObject({ id: bServing, running: true, labels: { [Label.Tag]: 'v1' } })
    expect(b.commands.filter((command) => /^container (create|stop|rename|start)/.test(command) && !command.includes('web-deploy-lock'))).toEqual([])
    expect(b.containers.get('web-deploy-lock')?.labels[LockLabel.Owner]).toBe('run-43-a')
    expect(a.describe('web').lockHeld).toBe(false)
  })

  it('taken over on host b after b was switched: the rollback puts a back and leaves b to the run that holds it now', async () => {
    const a = servingV1()
    const b = servingV1()
    // v2 crashes on a; b's switch has happened by then, and another run took b over meanwhile.
    a.crashingImages.add(`${IMAGE}:v2`)
    b.onCommand = (_index, argv) => {
      if (argv.join(' ') === 'container start web') takeOver(b)
    }
    const settings = testSettings({ image: IMAGE, tag: 'v2', hosts: ['ssh://a', 'ssh://b'], rollout: { parallel: 2, canary: false } })
    const outcome = await deploy(settings, new Reporter(), storyDependencies({ engines: { 'ssh://a': a, 'ssh://b': b }, state: memoryStateStore(), clock: virtualClock() }))
    b.onCommand = undefined

    expect(outcome.kind).toBe('restore-failed')
    expect(outcome.kind === 'restore-failed' && outcome.reasons.join('\n')).toMatch(/^ssh:\/\/b: lost the deploy lock on ssh:\/\/b: another run holds it now: .*nothing more is changed there/m)
    expect(a.describe('web').container).toMatchObject({ tag: 'v1', running: true })
    // b was left as the takeover found it: v2, which this run switched to, and no restore command.
    expect(b.describe('web').container?.tag).toBe('v2')
    const afterTakeover = b.commands.slice(b.commands.indexOf('container start web') + 1)
    expect(afterTakeover.filter((command) => /^container (create|stop|rename|start|rm)/.test(command))).toEqual([])
    expect(b.containers.get('web-deploy-lock')?.labels[LockLabel.Owner]).toBe('run-43-a')
  })
})

/** A lock taken with a 60 s lease on a clock that `pass(ms)` moves on, with the daemon's clock in step. */
async function heldLock(): Promise<{ engine: FakeDockerEngine; clock: { now(): number; sleep(): Promise<void> }; lock: DeployLock; pass(ms: number): void }> {
  const engine = new FakeDockerEngine()
  let now = Date.parse('2026-01-01T00:00:00Z')
  engine.daemonNow = () => now
  const clock = { now: () => now, sleep: async () => undefined }
  const lock = new DeployLock(new DockerClient(engine), 'web')
  await lock.acquire({ owner: 'run-42-a', holder: 'h', tag: 'v2', leaseMs: 60_000, timeoutMs: 0, clock })
  return { engine, clock, lock, pass: (ms) => void (now += ms) }
}

describe('DeployLock.assertHeld', () => {
  it('fails once the lease has run out by what docker confirmed, even while the container still stands', async () => {
    const { engine, clock, lock, pass } = await heldLock()
    await expect(lock.assertHeld(clock)).resolves.toBeUndefined()

    // Renewals fail (the engine is unreachable for them) while time passes beyond the lease.
    engine.unreachable = true
    pass(40_000)
    await expect(lock.renew(60_000, clock)).rejects.toThrow()
    engine.unreachable = false
    pass(21_000)
    const error = await lock.assertHeld(clock).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(LockLostError)
    expect((error as Error).message).toBe('lost the deploy lock on local: its lease ran out while renewals failed, so another deploy may have taken it')
  })

  it('a renewal that docker confirmed extends what the check trusts', async () => {
    const { clock, lock, pass } = await heldLock()
    pass(40_000)
    await lock.renew(60_000, clock)
    pass(50_000)
    await expect(lock.assertHeld(clock)).resolves.toBeUndefined()
  })

  it('a renewal that finds the lock container gone marks the lock lost for good', async () => {
    const engine = new FakeDockerEngine()
    const clock = { now: () => Date.now(), sleep: async () => undefined }
    const lock = new DeployLock(new DockerClient(engine), 'web')
    await lock.acquire({ owner: 'run-42-a', holder: 'h', tag: 'v2', leaseMs: 60_000, timeoutMs: 0, clock })
    engine.containers.delete('web-deploy-lock')
    await expect(lock.renew(60_000, clock)).rejects.toThrow(/No such container/)
    await expect(lock.assertHeld(clock)).rejects.toThrow(/^lost the deploy lock on local: the lock container \w{12} is gone$/)
  })
})
