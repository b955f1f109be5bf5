import { describe, expect, it } from '@jest/globals'
import { DockerClient } from '../src/docker/client.js'
import { describeCleanup, formatBytes, planRetention, pruneImages, type RetentionImage } from '../src/images.js'
import { deploy } from '../src/main.js'
import { post } from '../src/post.js'
import { Reporter } from '../src/report/reporter.js'
import { renderSummary } from '../src/report/summary.js'
import type { DeploySettings } from '../src/settings.js'
import { memoryStateStore } from '../src/state.js'
import { FakeDockerEngine } from '../test-support/fake-docker-engine.js'
import { testSettings } from '../test-support/settings.js'
import { captureActionStdout } from '../test-support/stdout.js'
import { storyDependencies, virtualClock } from '../test-support/story.js'

const IMAGE = '127.0.0.1:5999/acme/web'

function image(tag: string, deployedMs: number, id = `sha256:${tag}`): RetentionImage {
  return { id, references: [`${IMAGE}:${tag}`], deployedMs, size: 1_000_000 }
}

describe('planRetention', () => {
  const images = [image('v1', 1), image('v2', 2), image('v3', 3), image('v4', 4), image('v5', 5)]

  it('keeps the `retain` most recently deployed and removes the rest, oldest last', () => {
    const plan = planRetention(images, new Set(), 2, [])
    expect(plan.remove.map((found) => found.references[0])).toEqual([`${IMAGE}:v3`, `${IMAGE}:v2`, `${IMAGE}:v1`])
    expect(plan.keptInUse).toEqual([])
  })

  it('never removes an image a container uses, by id, however old', () => {
    const plan = planRetention(images, new Set(['sha256:v1']), 2, [])
    expect(plan.remove.map((found) => found.id)).toEqual(['sha256:v3', 'sha256:v2'])
    expect(plan.keptInUse.map((found) => found.id)).toEqual(['sha256:v1'])
  })

  it('ranks by the deploy mark, not by the tag: an old release deployed again stays', () => {
    const plan = planRetention([...images.slice(1), image('v1', 9)], new Set(), 2, [])
    expect(plan.remove.map((found) => found.id)).toEqual(['sha256:v4', 'sha256:v3', 'sha256:v2'])
  })

  it('removes a failed version however new, and it holds no place among the retained', () => {
    const plan = planRetention([...images, image('v6', 6)], new Set(), 2, [`${IMAGE}:v6`])
    expect(plan.remove.map((found) => found.id)).toEqual(['sha256:v6', 'sha256:v3', 'sha256:v2', 'sha256:v1'])
  })

  it('only untags a failed tag whose image is retained under a good tag', () => {
    const shared = { id: 'sha256:same', references: [`${IMAGE}:v5`, `${IMAGE}:v6`], deployedMs: 5, size: 1 }
    const plan = planRetention([...images.slice(0, 4), shared], new Set(), 2, [`${IMAGE}:v6`])
    expect(plan.untag).toEqual([`${IMAGE}:v6`])
    expect(plan.remove.map((found) => found.id)).not.toContain('sha256:same')
  })

  it('keeps a failed version a container still uses (a Swarm task, a proxy slot)', () => {
    const plan = planRetention([...images, image('v6', 6)], new Set(['sha256:v6']), 5, [`${IMAGE}:v6`])
    expect(plan.remove).toEqual([])
    expect(plan.keptInUse.map((found) => found.id)).toEqual(['sha256:v6'])
  })

  it('formats sizes as docker does and says what it did', () => {
    expect(formatBytes(999)).toBe('999 B')
    expect(formatBytes(1_986_000)).toBe('2.0 MB')
    expect(formatBytes(23_400_000)).toBe('23 MB')
    expect(describeCleanup({ host: 'local', removed: [`${IMAGE}:v1`], freedBytes: 2_000_000, keptInUse: [`${IMAGE}:v0`], refused: [] }, 2)).toBe(
      `removed 1 image (${IMAGE}:v1), freed 2.0 MB; kept ${IMAGE}:v0: a container uses it`
    )
  })
})

describe('pruneImages on the in-memory engine', () => {
  it('marks what serves, removes what is beyond retain, and leaves the images of other repositories and of containers', async () => {
    const engine = new FakeDockerEngine()
    for (const tag of ['v1', 'v2', 'v3', 'v4']) engine.images.add(`${IMAGE}:${tag}`)
    engine.images.add('postgres:16')
    engine.add({ name: 'web-previous', image: `${IMAGE}:v1`, running: false, labels: {} })
    const cleanup = await pruneImages(new DockerClient(engine), { repository: IMAGE, retain: 1, serving: `${IMAGE}:v2`, failed: [] })
    expect(cleanup.removed).toEqual([`${IMAGE}:v4`, `${IMAGE}:v3`])
    expect(cleanup.freedBytes).toBe(2 * 7_800_000)
    expect(cleanup.keptInUse).toEqual([`${IMAGE}:v1`])
    expect([...engine.images].sort()).toEqual([`${IMAGE}:v1`, `${IMAGE}:v2`, 'postgres:16'])
    // No --force: docker's own refusal is the second guard.
    expect(engine.calls.find((call) => call.argv[1] === 'rm' && call.argv[0] === 'image')?.argv).toEqual(['image', 'rm', `${IMAGE}:v4`, `${IMAGE}:v3`])
  })
})

describe('pruneImages within retain', () => {
  it('reads no more than the list when nothing can go: two docker commands, the mark and the list', async () => {
    const engine = new FakeDockerEngine()
    for (const tag of ['v1', 'v2']) engine.images.add(`${IMAGE}:${tag}`)
    const cleanup = await pruneImages(new DockerClient(engine), { repository: IMAGE, retain: 2, serving: `${IMAGE}:v2`, failed: [] })
    expect(cleanup).toEqual({ host: 'local', removed: [], freedBytes: 0, keptInUse: [], refused: [] })
    expect(engine.calls.map((call) => call.argv.slice(0, 2).join(' '))).toEqual(['image tag', 'image ls'])
    // A failed tag among them still goes through the whole plan (it is untagged or removed).
    engine.images.add(`${IMAGE}:v3`)
    const withFailed = await pruneImages(new DockerClient(engine), { repository: IMAGE, retain: 5, serving: `${IMAGE}:v2`, failed: [`${IMAGE}:v3`] })
    expect(withFailed.removed).toEqual([`${IMAGE}:v3`])
  })
})

describe('the version kept for a rollback', () => {
  it('is never removed by retain, though no container holds it any more (the proxy idle slot taken by a version that failed)', async () => {
    const engine = new FakeDockerEngine()
    for (const tag of ['v0', 'v1', 'v2']) engine.images.add(`${IMAGE}:${tag}`)
    engine.add({ name: 'web-green', image: `${IMAGE}:v1`, running: true, labels: {} })
    engine.add({ name: 'web-blue', image: `${IMAGE}:v2`, running: false, labels: {} })
    const kept = engine.images.idOf(`${IMAGE}:v0`)
    const cleanup = await pruneImages(new DockerClient(engine), { repository: IMAGE, retain: 1, serving: `${IMAGE}:v1`, failed: [`${IMAGE}:v2`], keep: [kept] })
    expect(cleanup.removed).toEqual([])
    expect(cleanup.keptInUse.sort()).toEqual([`${IMAGE}:v0`, `${IMAGE}:v2`])
    expect([...engine.images].filter((ref) => ref.startsWith(IMAGE)).sort()).toEqual([`${IMAGE}:v0`, `${IMAGE}:v1`, `${IMAGE}:v2`])
    // Without it, retain: 1 takes it.
    const bare = await pruneImages(new DockerClient(engine), { repository: IMAGE, retain: 1, serving: `${IMAGE}:v1`, failed: [] })
    expect(bare.removed).toEqual([`${IMAGE}:v0`])
  })
})

describe('the deploy story keeps `retain` images on each host', () => {
  const stdout = captureActionStdout()

  async function run(engine: FakeDockerEngine, settings: DeploySettings): Promise<{ kind: string; summary: string }> {
    const state = memoryStateStore()
    const reporter = new Reporter()
    const outcome = await deploy(settings, reporter, storyDependencies({ engines: { local: engine }, state, clock: virtualClock() }))
    await post(undefined, { state, settings: () => settings, dependencies: () => storyDependencies({ engines: { local: engine }, state, clock: virtualClock() }) })
    const steps = reporter.steps
    return { kind: outcome.kind, summary: renderSummary({ headline: '', ok: true, environment: 'production', image: IMAGE, steps }) + steps.map((step) => step.detail).join('\n') }
  }

  const appImages = (engine: FakeDockerEngine): string[] => [...engine.images].filter((ref) => ref.startsWith(`${IMAGE}:`)).sort()

  it('after six deploys with retain: 2, the running and the previous version are the only images left', async () => {
    const engine = new FakeDockerEngine()
    for (const tag of ['v1', 'v2', 'v3', 'v4', 'v5', 'v6']) {
      const result = await run(engine, testSettings({ image: IMAGE, tag, retain: 2 }))
      expect(result.kind).toBe('deployed')
    }
    expect(appImages(engine)).toEqual([`${IMAGE}:v5`, `${IMAGE}:v6`])
    expect(engine.describe('web').container?.tag).toBe('v6')
  })

  it('removes the failed version once the rollback is done, and keeps the one rolled back to', async () => {
    const engine = new FakeDockerEngine()
    engine.crashingImages.add(`${IMAGE}:v3`)
    for (const tag of ['v1', 'v2']) await run(engine, testSettings({ image: IMAGE, tag, retain: 5 }))
    const result = await run(engine, testSettings({ image: IMAGE, tag: 'v3', retain: 5 }))
    expect(result.kind).toBe('rolled-back')
    expect(appImages(engine)).toEqual([`${IMAGE}:v1`, `${IMAGE}:v2`])
    expect(result.summary).toContain(`removed 1 image (${IMAGE}:v3)`)
  })

  it('with retain: 1 still keeps the -previous image a rollback needs, because a container uses it', async () => {
    const engine = new FakeDockerEngine()
    for (const tag of ['v1', 'v2', 'v3']) await run(engine, testSettings({ image: IMAGE, tag, retain: 1 }))
    expect(appImages(engine)).toEqual([`${IMAGE}:v2`, `${IMAGE}:v3`])
  })

  it('a clean-up that docker fails is a warning: the deploy still succeeds', async () => {
    const engine = new FakeDockerEngine()
    for (const tag of ['v1', 'v2']) await run(engine, testSettings({ image: IMAGE, tag, retain: 1 }))
    const original = engine.run.bind(engine)
    engine.run = async (argv, options) => (argv[0] === 'image' && argv[1] === 'ls' ? { exitCode: 1, stdout: '', stderr: 'Error response from daemon: disk I/O error' } : original(argv, options))
    const result = await run(engine, testSettings({ image: IMAGE, tag: 'v3', retain: 1 }))
    expect(result.kind).toBe('deployed')
    expect(process.exitCode ?? 0).toBe(0)
    expect(stdout.text()).toMatch(/::warning title=Deploy · images::Could not remove old images/)
  })
})
