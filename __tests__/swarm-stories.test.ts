/**
 * Swarm is read as it is (issue 18, cases 5 to 8): the whole deploy story, main step and post
 * step, on the in-memory engine's Swarm, with a service as a person or Swarm itself left it:
 * scaled by hand, with a rollback that Swarm paused, with `rollback.on-failure: false`, and
 * scaled to 0.
 */
import { describe, expect, it } from '@jest/globals'
import type { Clock } from '../src/dependencies.js'
import { deploy } from '../src/main.js'
import { resultOf, servingRelease, succeeded, type Outcome } from '../src/outcome.js'
import { post } from '../src/post.js'
import { describeOutcome } from '../src/report/outcome-text.js'
import { Reporter } from '../src/report/reporter.js'
import type { DeploySettings } from '../src/settings.js'
import { memoryStateStore } from '../src/state.js'
import { FakeDockerEngine, type FakeTask } from '../test-support/fake-docker-engine.js'
import { testSettings } from '../test-support/settings.js'
import { captureActionStdout } from '../test-support/stdout.js'
import { storyDependencies, virtualClock } from '../test-support/story.js'

const IMAGE = 'registry.test/acme/web'

const stdout = captureActionStdout()

function swarmSettings(change: Partial<DeploySettings> = {}): DeploySettings {
  // `swarm: {}`: the config leaves replicas and the update settings to the service.
  return testSettings({ image: IMAGE, strategy: 'swarm', tag: 'v2', ...change })
}

/** An engine whose service `web` runs v1 on `replicas` tasks, as a deploy and then `docker service scale` left it. */
function servingV1(replicas: number): FakeDockerEngine {
  const engine = new FakeDockerEngine()
  engine.addService({ name: 'web', image: `${IMAGE}:v1`, labels: { 'deploy-action.tag': 'v1' }, replicas })
  return engine
}

interface Story {
  outcome: Outcome
  exitCode: number
  headline: string
  /** Virtual time the main step took. */
  tookMs: number
}

/** The main step and then its post step, as the runner runs them. */
async function runStory(engine: FakeDockerEngine, settings: DeploySettings): Promise<Story> {
  const state = memoryStateStore()
  const clock: Clock = virtualClock()
  const start = clock.now()
  process.exitCode = undefined
  const outcome = await deploy(settings, new Reporter(), storyDependencies({ engines: { local: engine }, state, clock }))
  const tookMs = clock.now() - start
  const exitCode = Number(process.exitCode ?? 0)
  await post(undefined, { state, settings: () => settings, dependencies: () => storyDependencies({ engines: { local: engine }, state, clock: virtualClock() }) })
  process.exitCode = undefined
  return { outcome, exitCode, headline: describeOutcome(outcome, settings, undefined).headline, tookMs }
}

/** The tags of the tasks Swarm runs now, sorted. */
function runningTags(engine: FakeDockerEngine): string[] {
  return engine.tasks
    .filter((task) => task.desiredState === 'running' && task.state === 'running')
    .map((task) => task.image.split('@')[0]?.split(':').pop() ?? '')
    .sort()
}

function updates(engine: FakeDockerEngine): string[] {
  return engine.commands.filter((command) => command.startsWith('service update'))
}

function tagOf(task: FakeTask): string {
  return task.image.split('@')[0]?.split(':').pop() ?? ''
}

describe('Swarm, read as it is', () => {
  it('case 5: a service scaled to 20 replicas by hand gets the time its slow, healthy rollout needs', async () => {
    const engine = servingV1(20)
    // Each step of Swarm's work (one task a batch: its service default) takes 14 looks, 7 s at the
    // action's polling: 20 batches take about 2.5 minutes, far beyond the 64 s of a 1-replica service.
    engine.swarmLag = 14
    const story = await runStory(engine, swarmSettings())

    expect([story.outcome.kind, story.headline]).toEqual(['deployed', 'Deployed v2 to production; it is healthy.'])
    expect(story.exitCode).toBe(0)
    expect(story.tookMs).toBeGreaterThan(64_000)
    expect(runningTags(engine)).toEqual(Array(20).fill('v2'))
    // The config left the replicas to the service: they were not sent, and stay as they were.
    expect(updates(engine)).toHaveLength(1)
    expect(updates(engine)[0]).not.toContain('--replicas')
    expect(engine.describe('web')).toMatchObject({ service: { replicas: 20, runningTasks: 20 }, serves: true, lockHeld: false })
  })

  it('case 6: a rollback that Swarm paused is not "already running": the restore drives every task to what ran before', async () => {
    const engine = servingV1(3)
    // v2 runs on two tasks, and its third fails: Swarm rolls back; then v1's first task of the
    // rollback fails once, and Swarm pauses its rollback with a v2 task still running.
    let v2Starts = 0
    let v1FailedOnce = false
    engine.taskStartFails = (task) => {
      if (tagOf(task) === 'v2') return ++v2Starts === 3
      if (tagOf(task) === 'v1' && v2Starts >= 3 && !v1FailedOnce) return (v1FailedOnce = true)
      return false
    }
    const story = await runStory(engine, swarmSettings())

    expect(story.outcome.kind).toBe('rolled-back')
    expect(story.headline).toContain('Swarm rolled the update back (rollback paused)')
    expect(story.headline).toContain('Rolled back: v1 runs now and is healthy.')
    expect(servingRelease(story.outcome)?.tag).toBe('v1')
    // The restore sent a forced update with v1's spec, and every task runs v1: none of v2 is left.
    expect(updates(engine)).toHaveLength(2)
    expect(updates(engine)[1]).toMatch(/--force --image registry\.test\/acme\/web:v1 /)
    expect(runningTags(engine)).toEqual(['v1', 'v1', 'v1'])
    expect(engine.describe('web')).toMatchObject({ service: { tag: 'v1', updateState: 'completed' }, serves: true, lockHeld: false })
  })

  describe('case 7: rollback.on-failure and what Swarm does with a failed task', () => {
    it('with on-failure false, Swarm pauses the update, nothing is put back, and the run says what runs', async () => {
      const engine = servingV1(3)
      engine.crashingImages.add(`${IMAGE}:v2`)
      const story = await runStory(engine, swarmSettings({ rollback: { onFailure: false, to: { kind: 'previous' } } }))

      expect(updates(engine)).toHaveLength(1)
      expect(updates(engine)[0]).toContain('--update-failure-action pause')
      expect(story.outcome).toMatchObject({ kind: 'not-restored', failure: { stage: 'health', tag: 'v2' } })
      expect(resultOf(story.outcome)).toBe('failed')
      expect(story.exitCode).toBe(1)
      // Swarm stopped after the first task: two tasks still run v1, none runs v2.
      expect(story.headline).toMatch(
        /^Deploy of v2 failed: Swarm paused the update of web part way \(update paused due to failure or early termination of task \w+\); 2 tasks run v1 \(0 s after the health check began\)\. rollback\.on-failure is false, so nothing was put back: v2, which is not healthy, stays as it is for inspection\.$/
      )
      expect(servingRelease(story.outcome)).toBeUndefined()
      expect(runningTags(engine)).toEqual(['v1', 'v1'])
      expect(engine.describe('web')).toMatchObject({ service: { tag: 'v2', updateState: 'paused' }, lockHeld: false })
    })

    it('with on-failure true, Swarm rolls back by itself, and the run says so and names what serves', async () => {
      const engine = servingV1(3)
      engine.crashingImages.add(`${IMAGE}:v2`)
      const story = await runStory(engine, swarmSettings())

      expect(updates(engine)).toHaveLength(1)
      expect(updates(engine)[0]).toContain('--update-failure-action rollback')
      expect(story.outcome.kind).toBe('rolled-back')
      expect(story.headline).toMatch(/^Deploy of v2 failed: Swarm rolled the update back \(rollback completed\).*Rolled back: v1 runs now and is healthy\.$/)
      expect(servingRelease(story.outcome)?.tag).toBe('v1')
      expect(stdout.text()).toContain('::notice title=Rollback · restore::v1 serves already')
      expect(runningTags(engine)).toEqual(['v1', 'v1', 'v1'])
    })
  })

  describe('case 8: a service scaled to 0', () => {
    it('is refused before anything changes, with an error that says why and what to do, at once', async () => {
      const engine = servingV1(0)
      const story = await runStory(engine, swarmSettings())

      expect(story.outcome).toMatchObject({ kind: 'failed-before-switch', stage: 'current' })
      expect(story.headline).toMatch(
        /^Deploy of v2 failed: the service web on local is scaled to 0 replicas, so no task could show a new version healthy\. Scale it up \(docker service scale web=N\) or set swarm\.replicas, then deploy again\. Nothing was changed\.$/
      )
      expect(succeeded(story.outcome)).toBe(false)
      expect(story.exitCode).toBe(1)
      // No wait for an UpdateStatus that Swarm never sets, and nothing sent.
      expect(story.tookMs).toBeLessThan(5_000)
      expect(updates(engine)).toEqual([])
      expect(engine.describe('web')).toMatchObject({ service: { tag: 'v1', replicas: 0 }, lockHeld: false })
    })

    it('deploys when swarm.replicas scales it up, and verifies those tasks', async () => {
      const engine = servingV1(0)
      const story = await runStory(engine, swarmSettings({ swarm: { replicas: 2 } }))

      expect(story.outcome.kind).toBe('deployed')
      expect(updates(engine)[0]).toContain('--replicas 2')
      expect(runningTags(engine)).toEqual(['v2', 'v2'])
    })
  })
})
