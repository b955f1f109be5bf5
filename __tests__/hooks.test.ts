/**
 * A pre-deploy hook that runs past its time or is cancelled: its container is stopped and removed,
 * and the deploy lock is never released while it may still run.
 */
import { describe, expect, it } from '@jest/globals'
import type { DockerResult, DockerRunner, DockerRunOptions } from '../src/docker/runner.js'
import { deploy } from '../src/main.js'
import { post } from '../src/post.js'
import { Reporter } from '../src/report/reporter.js'
import { memoryStateStore, Phase, readSavedRun } from '../src/state.js'
import { FakeDockerEngine } from '../test-support/fake-docker-engine.js'
import { testSettings } from '../test-support/settings.js'
import { captureActionStdout } from '../test-support/stdout.js'
import { storyDependencies, virtualClock } from '../test-support/story.js'

const settings = testSettings({ hooks: { preDeploy: [['./migrate']] } })

/**
 * The in-memory engine, where the hook's `docker run` starts the container and then the client
 * stops answering (a time-out or a cancel kills it): the container runs on in the daemon.
 */
class HangingHook implements DockerRunner {
  /** Each `container rm` of the hook fails while this is set. */
  removalFails = false
  constructor(
    readonly engine: FakeDockerEngine,
    private readonly onHookStarted: () => Error
  ) {}

  async run(argv: readonly string[], options?: DockerRunOptions): Promise<DockerResult> {
    if (argv[0] === 'container' && argv[1] === 'run' && argv.includes('web-hook')) {
      this.engine.add({ name: 'web-hook', image: `${settings.image}:v2`, running: true, labels: {} })
      throw this.onHookStarted()
    }
    if (this.removalFails && argv[0] === 'container' && argv[1] === 'rm' && argv.includes('web-hook')) {
      return { exitCode: 1, stdout: '', stderr: 'Error response from daemon: cannot remove container "/web-hook": could not kill: tried to kill container, but did not receive an exit event' }
    }
    return this.engine.run(argv, options)
  }
}

const stdout = captureActionStdout()

function seeded(): FakeDockerEngine {
  const engine = new FakeDockerEngine()
  engine.images.add(`${settings.image}:v2`)
  return engine
}

describe('a pre-deploy hook past its time', () => {
  it('is removed by the main step, then the lock is released', async () => {
    const engine = seeded()
    const runner = new HangingHook(engine, () => new Error('docker container did not finish within 1800 s and was stopped'))
    const state = memoryStateStore()
    const outcome = await deploy(settings, new Reporter(), storyDependencies({ engines: { local: runner }, state, clock: virtualClock() }))
    expect(outcome).toMatchObject({ kind: 'failed-before-switch', stage: 'hooks' })
    expect(engine.containers.has('web-hook')).toBe(false)
    expect(engine.describe('web').lockHeld).toBe(false)
    // The hook container went before the lock did.
    const rm = engine.commands.findIndex((command) => command === 'container rm --force web-hook')
    const unlock = engine.commands.findIndex((command) => /^container rm --force [0-9a-f]{64}$/.test(command))
    expect(rm).toBeGreaterThan(-1)
    expect(unlock).toBeGreaterThan(rm)
  })

  it('keeps the lock when the hook container cannot be removed; the post step removes it, then unlocks', async () => {
    const engine = seeded()
    const runner = new HangingHook(engine, () => new Error('docker container did not finish within 1800 s and was stopped'))
    runner.removalFails = true
    const state = memoryStateStore()
    await deploy(settings, new Reporter(), storyDependencies({ engines: { local: runner }, state, clock: virtualClock() }))
    expect(engine.containers.get('web-hook')?.running).toBe(true)
    expect(engine.describe('web').lockHeld).toBe(true)
    expect(readSavedRun(state)?.phase).toBe(Phase.Preparing)
    expect(stdout.text()).toMatch(/The deploy lock stays held until it is removed/)

    // The post step cannot remove it either: the lock still stays.
    await post(undefined, { state, settings: () => settings, dependencies: () => storyDependencies({ engines: { local: runner }, state }) })
    expect(engine.describe('web').lockHeld).toBe(true)
    expect(stdout.text()).toMatch(/stays held while its pre-deploy hook container may still run/)

    // Once it can: hook container gone, then the lock released.
    runner.removalFails = false
    await post(undefined, { state, settings: () => settings, dependencies: () => storyDependencies({ engines: { local: runner }, state }) })
    expect(engine.containers.has('web-hook')).toBe(false)
    expect(engine.describe('web').lockHeld).toBe(false)
  })
})

describe('a cancelled pre-deploy hook', () => {
  it('is removed at once by the main step although every other command is cancelled, and the lock waits for the post step', async () => {
    const engine = seeded()
    const cancel = new AbortController()
    const runner = new HangingHook(engine, () => {
      cancel.abort(new Error('cancelled by SIGINT'))
      return new Error('docker container was cancelled')
    })
    const state = memoryStateStore()
    const outcome = await deploy(settings, new Reporter(), storyDependencies({ engines: { local: runner }, state, clock: virtualClock(), signal: cancel.signal }))
    expect(outcome.kind).toBe('cancelled')
    expect(engine.containers.has('web-hook')).toBe(false)
    // Cancelled before the switch: the post step releases the lock.
    expect(engine.describe('web').lockHeld).toBe(true)
    await post(undefined, { state, settings: () => settings, dependencies: () => storyDependencies({ engines: { local: runner }, state }) })
    expect(engine.describe('web').lockHeld).toBe(false)
  })
})
