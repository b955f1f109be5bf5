/**
 * The in-memory docker engine, driven through the action's real clients (DockerClient,
 * ServiceClient) and strategies: what a fault sweep of the deploy story relies on.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals'
import { Label } from '../src/constants.js'
import { DockerClient } from '../src/docker/client.js'
import { buildCreateArgv } from '../src/docker/run-args.js'
import type { DockerResult, DockerRunner, DockerRunOptions } from '../src/docker/runner.js'
import { ServiceClient } from '../src/docker/service-client.js'
import type { ContainerSettings, DeploySettings, Release } from '../src/settings.js'
import { ReplaceStrategy } from '../src/strategies/replace.js'
import { SwarmStrategy } from '../src/strategies/swarm.js'
import { FakeDockerEngine } from '../test-support/fake-docker-engine.js'

const IMAGE = '127.0.0.1:5999/acme/web'
const V1: Release = { tag: 'v1' }
const V2: Release = { tag: 'v2' }
const SECRET = 'fake-engine-secret-4711'

const container: ContainerSettings = { ports: [], env: { PORT: '8080' }, secrets: ['APP_TOKEN'], volumes: ['data:/data'], labels: { team: 'web' }, init: true, network: 'host' }

function settings(strategy: 'replace' | 'swarm'): DeploySettings {
  return {
    command: 'deploy',
    environment: 'production',
    dryRun: false,
    image: IMAGE,
    tag: 'v2',
    name: 'web',
    strategy,
    container,
    health: { expectStatus: [200], headers: {}, intervalMs: 20, timeoutMs: 200, deadlineMs: 2_000, healthyThreshold: 1, watchMs: 0 },
    rollback: { onFailure: true, to: { kind: 'previous' } },
    hooks: { preDeploy: [] },
    lock: { timeoutMs: 1_000 },
    swarm: { replicas: 2, monitorMs: 1_000 },
    hosts: [undefined],
    rollout: { parallel: 1, canary: false },
    retain: 5,
    run: { repository: 'acme/web', sha: 'abc', ref: 'refs/heads/main', actor: 'octocat', runUrl: 'https://github.com/acme/web/actions/runs/42', apiUrl: 'http://127.0.0.1:9', workspace: '/tmp' }
  }
}

/** Waits take no time: each sleep moves the clock on. */
function instantClock(): { now(): number; sleep(ms: number): Promise<void> } {
  let now = 1_700_000_000_000
  return {
    now: () => now,
    sleep: async (ms) => {
      now += ms
    }
  }
}

function swarm(engine: DockerRunner): { strategy: SwarmStrategy; services: ServiceClient; docker: DockerClient } {
  const docker = new DockerClient(engine)
  return { strategy: new SwarmStrategy(settings('swarm'), docker, instantClock()), services: new ServiceClient(docker), docker }
}

function replace(engine: FakeDockerEngine, signal?: AbortSignal): { strategy: ReplaceStrategy; docker: DockerClient } {
  const docker = new DockerClient(engine, { signal })
  return { strategy: new ReplaceStrategy(settings('replace'), docker), docker }
}

/** An engine where v1 runs as `web` (with v0 kept as `web-previous`) and v2 was pulled. */
function replaceEngine(): FakeDockerEngine {
  const engine = new FakeDockerEngine()
  engine.images.add(`${IMAGE}:v2`)
  engine.add({ name: 'web-previous', image: `${IMAGE}:v0`, running: false, labels: { [Label.Tag]: 'v0' } })
  engine.add({ name: 'web', image: `${IMAGE}:v1`, running: true, labels: { [Label.Tag]: 'v1' } })
  return engine
}

async function settled(promise: Promise<unknown>): Promise<Error | undefined> {
  return promise.then(
    () => undefined,
    (error: unknown) => error as Error
  )
}

beforeEach(() => {
  process.env.APP_TOKEN = SECRET
  // @actions/core writes `::debug::` lines for every docker command.
  jest.spyOn(process.stdout, 'write').mockImplementation(() => true)
})
afterEach(() => {
  jest.restoreAllMocks()
  delete process.env.APP_TOKEN
})

describe('FakeDockerEngine: Swarm services', () => {
  it('creates a service whose tasks run, then updates it to a good image: completed, with a fresh StartedAt each time', async () => {
    const engine = new FakeDockerEngine()
    const { strategy, services } = swarm(engine)

    await strategy.switchTo(V1)
    expect(await strategy.current()).toMatchObject({ tag: 'v1' })
    const created = await services.inspect('web')
    expect(created).toMatchObject({ image: `${IMAGE}:v1`, replicas: 2, containerLabels: { team: 'web' }, mountTargets: ['/data'] })
    // Created, never updated: no update status yet. The secret reached the spec by name only.
    expect(created?.updateStatus).toBeUndefined()
    expect(created?.env).toEqual(expect.arrayContaining(['PORT=8080', `APP_TOKEN=${SECRET}`]))
    expect(engine.commands.join('\n')).not.toContain(SECRET)
    expect(engine.describe('web')).toMatchObject({ service: { tag: 'v1', runningTasks: 2, replicas: 2 }, serves: true })

    await strategy.switchTo(V2)
    const first = await services.inspect('web')
    expect(first).toMatchObject({ image: `${IMAGE}:v2`, labels: { [Label.Tag]: 'v2' }, updateStatus: { state: 'completed', message: 'update completed' } })
    await strategy.switchTo({ tag: 'v3' })
    const second = await services.inspect('web')
    expect(second?.updateStatus?.state).toBe('completed')
    expect(Date.parse(second?.updateStatus?.startedAt ?? '')).toBeGreaterThan(Date.parse(first?.updateStatus?.startedAt ?? ''))

    // New tasks run, the old ones were shut down; every task has a container on the node.
    const tasks = await services.tasks('web')
    expect(tasks.filter((task) => task.state === 'running').map((task) => `${task.name} ${task.image}`).sort()).toEqual([`web.1 ${IMAGE}:v3`, `web.2 ${IMAGE}:v3`])
    expect(tasks.filter((task) => task.image !== `${IMAGE}:v3`).every((task) => task.desiredState === 'shutdown' && task.state === 'shutdown')).toBe(true)
    expect(tasks.every((task) => engine.containers.get(`${task.name}.${task.id}`)?.id === task.containerId)).toBe(true)
    expect(engine.describe('web')).toMatchObject({ service: { tag: 'v3', runningTasks: 2 }, serves: true, kept: [] })
  })

  it('an update to a crashing image: Swarm rolls spec and labels back, switchTo throws its verdict, current() names the old release', async () => {
    const engine = new FakeDockerEngine()
    const { strategy, services } = swarm(engine)
    await strategy.switchTo(V1)
    engine.crashingImages.add(`${IMAGE}:v2`)

    await expect(strategy.switchTo(V2)).rejects.toThrow(
      'Swarm rolled the update back (rollback completed): rollback completed; task errors: web.1: task: non-zero exit (1)'
    )

    expect(await strategy.current()).toMatchObject({ tag: 'v1' })
    const service = await services.inspect('web')
    expect(service).toMatchObject({ image: `${IMAGE}:v1`, labels: { [Label.Tag]: 'v1' }, updateStatus: { state: 'rollback_completed', message: 'rollback completed' } })
    const tasks = await services.tasks('web')
    expect(tasks.filter((task) => task.state === 'failed')).toEqual([
      expect.objectContaining({ name: 'web.1', image: `${IMAGE}:v2`, desiredState: 'shutdown', error: 'task: non-zero exit (1)' })
    ])
    expect(engine.describe('web')).toMatchObject({ service: { tag: 'v1', runningTasks: 2, failedTasks: 1, updateState: 'rollback_completed' }, serves: true })
    // The failed task's container exited with code 1 and says why.
    const failed = tasks.find((task) => task.state === 'failed')
    expect(engine.containers.get(`web.1.${failed?.id}`)).toMatchObject({ running: false, exitCode: 1 })
    expect(await new DockerClient(engine).containerLogs(failed?.containerId ?? '', 50)).toContain('required configuration is missing')
    // What the report shows: the newest task of each slot first, older ones indented as docker does.
    const rows = (await engine.run(['service', 'ps', '--no-trunc', '--format', '{{.Name}} {{.Image}} {{.DesiredState}} {{.Error}}', 'web'])).stdout.split('\n')
    expect(rows.slice(0, 3)).toEqual([`web.1 ${IMAGE}:v1 Running `, `\\_ web.1 ${IMAGE}:v2 Shutdown "task: non-zero exit (1)"`, `\\_ web.1 ${IMAGE}:v1 Shutdown `])
    // Swarm put v1 back by itself: a restore finds it running.
    await expect(strategy.restore(V1)).resolves.toBe('already-running')
  })

  it('with swarmLag, an update goes through updating, rollback_started (Swarm’s long message) and rollback_completed', async () => {
    const engine = new FakeDockerEngine()
    engine.swarmLag = 1
    const seen: { state?: string; message?: string; image?: string }[] = []
    const watching: DockerRunner = {
      run: async (argv: readonly string[], options?: DockerRunOptions): Promise<DockerResult> => {
        const result = await engine.run(argv, options)
        if (argv[0] === 'service' && argv[1] === 'inspect' && result.exitCode === 0) {
          const [raw] = JSON.parse(result.stdout) as { UpdateStatus?: { State: string; Message: string }; Spec: { TaskTemplate: { ContainerSpec: { Image: string } } } }[]
          seen.push({ state: raw?.UpdateStatus?.State, message: raw?.UpdateStatus?.Message, image: raw?.Spec.TaskTemplate.ContainerSpec.Image })
        }
        return result
      }
    }
    const { strategy } = swarm(watching)
    await strategy.switchTo(V1)
    engine.crashingImages.add(`${IMAGE}:v2`)
    seen.length = 0

    await expect(strategy.switchTo(V2)).rejects.toThrow(/^Swarm rolled the update back \(rollback completed\)/)
    const states = seen.map((entry) => entry.state).filter((state, index, all) => index === 0 || state !== all[index - 1])
    expect(states).toEqual([undefined, 'updating', 'rollback_started', 'rollback_completed'])
    expect(seen.find((entry) => entry.state === 'rollback_started')).toEqual({
      state: 'rollback_started',
      message: expect.stringMatching(/^update rolled back due to failure or early termination of task t\w{24}$/),
      image: `${IMAGE}:v1`
    })
    expect(engine.describe('web')).toMatchObject({ service: { tag: 'v1', runningTasks: 2 }, serves: true })
  })

  it('a service created with a crashing image keeps failing: several failed tasks, none running; service rm takes it all away', async () => {
    const engine = new FakeDockerEngine()
    engine.crashingImages.add(`${IMAGE}:v1`)
    const { strategy, services } = swarm(engine)

    await expect(strategy.switchTo(V1)).rejects.toThrow('a task of web (v1) failed: task: non-zero exit (1)')
    const before = engine.describe('web').service?.failedTasks ?? 0
    const tasks = await services.tasks('web')
    expect(tasks.filter((task) => task.state === 'running')).toEqual([])
    expect(tasks.filter((task) => task.state === 'failed').length).toBeGreaterThan(before)
    expect(before).toBeGreaterThanOrEqual(4)
    expect(engine.describe('web')).toMatchObject({ service: { tag: 'v1', runningTasks: 0, crashing: true }, serves: false })

    await services.remove('web')
    expect(engine.describe('web').service).toBeUndefined()
    expect(engine.tasks).toEqual([])
    expect([...engine.containers.keys()].filter((name) => name.startsWith('web.'))).toEqual([])
    expect(await services.inspect('web')).toBeUndefined()
  })

  it('Swarm pins the image to the registry digest when the registry has one', async () => {
    const engine = new FakeDockerEngine()
    engine.registryDigests.set(`${IMAGE}:v1`, `sha256:${'1'.repeat(64)}`)
    const { strategy, services } = swarm(engine)
    await strategy.switchTo(V1)
    expect((await services.inspect('web'))?.image).toBe(`${IMAGE}:v1@sha256:${'1'.repeat(64)}`)
    expect(await strategy.current()).toMatchObject({ tag: 'v1' })
    expect(engine.describe('web')).toMatchObject({ service: { runningTasks: 2 }, serves: true })
  })
})

describe('FakeDockerEngine: containers', () => {
  it('replace to a crashing image: the start succeeds, the container is then seen exited with code 1', async () => {
    const engine = replaceEngine()
    engine.crashingImages.add(`${IMAGE}:v2`)
    const { strategy, docker } = replace(engine)

    await strategy.switchTo(V2)
    expect(await docker.inspectContainer('web')).toMatchObject({ status: 'exited', running: false, exitCode: 1, labels: { [Label.Tag]: 'v2' } })
    await expect(strategy.stateProbe().observe()).resolves.toMatchObject({ verdict: 'failed', detail: 'the container web exited with code 1' })
    expect(await docker.containerLogs('web', 50)).toContain('required configuration is missing')
    expect(engine.describe('web')).toMatchObject({ container: { tag: 'v2', crashing: true, running: false }, kept: ['web-previous', 'web-previous-older'], serves: false })

    await expect(strategy.restore(V1)).resolves.toBe('reused-previous')
    expect(engine.describe('web')).toMatchObject({ container: { tag: 'v1', running: true, crashing: false }, serves: true })
  })

  it('rejects two volumes on one container path, as docker does, and creates nothing', async () => {
    const engine = new FakeDockerEngine()
    engine.images.add(`${IMAGE}:v1`)
    const argv = buildCreateArgv({ name: 'web', imageRef: `${IMAGE}:v1`, container: { ...container, volumes: ['data:/data', '/srv/data:/data/:ro'] }, labels: {} })
    await expect(new DockerClient(engine).createContainer(argv, {})).rejects.toThrow('docker container create failed: Error response from daemon: Duplicate mount point: /data')
    expect(engine.containers.has('web')).toBe(false)
  })

  it('a host port published by another running container: start fails with docker’s error, the container stays created', async () => {
    const engine = new FakeDockerEngine()
    engine.images.add(`${IMAGE}:v1`)
    const docker = new DockerClient(engine)
    const published = { ...container, network: undefined, ports: ['8080:80'] }
    for (const name of ['a', 'b']) await docker.createContainer(buildCreateArgv({ name, imageRef: `${IMAGE}:v1`, container: published, labels: {} }), {})
    await docker.startContainer('a')
    await expect(docker.startContainer('b')).rejects.toThrow(/Bind for 0\.0\.0\.0:8080 failed: port is already allocated$/)
    expect(await docker.inspectContainer('b')).toMatchObject({ status: 'created', running: false, exitCode: 128, error: expect.stringContaining('port is already allocated') })
    // Once the holder stopped, the port is free again.
    await docker.stopContainer('a')
    await docker.startContainer('b')
    expect(engine.describe('b').container).toMatchObject({ running: true })
  })

  it('with network host, published ports are discarded (with docker’s warning) and never clash', async () => {
    const engine = new FakeDockerEngine()
    engine.images.add(`${IMAGE}:v1`)
    const created = await engine.run(buildCreateArgv({ name: 'a', imageRef: `${IMAGE}:v1`, container: { ...container, ports: ['8080:80'] }, labels: {} }))
    expect(created).toMatchObject({ exitCode: 0, stderr: 'WARNING: Published ports are discarded when using host network mode\n' })
    expect(engine.containers.get('a')?.ports).toEqual([])
  })

  it('refuses a flag it does not know, as the CLI does', async () => {
    const engine = new FakeDockerEngine()
    await expect(engine.run(['container', 'create', '--name', 'x', '--bogus', 'image'])).resolves.toEqual({
      exitCode: 125,
      stdout: '',
      stderr: "unknown flag: --bogus\nSee 'docker container create --help'.\n"
    })
  })
})

describe('FakeDockerEngine: images', () => {
  it('lists a repository’s images newest first as JSON lines, and refuses to remove one a container uses', async () => {
    const engine = new FakeDockerEngine()
    for (const tag of ['v1', 'v2', 'v3']) engine.images.add(`${IMAGE}:${tag}`)
    engine.images.add('other/app:v9')
    engine.add({ name: 'web', image: `${IMAGE}:v1`, running: false, labels: {} })

    const listed = await engine.run(['image', 'ls', '--format', '{{json .}}', IMAGE])
    const rows = listed.stdout.trim().split('\n').map((line) => JSON.parse(line) as { Repository: string; Tag: string; ID: string })
    expect(rows.map((row) => `${row.Repository}:${row.Tag}`)).toEqual([`${IMAGE}:v3`, `${IMAGE}:v2`, `${IMAGE}:v1`])
    expect(rows[0]?.ID).toMatch(/^[0-9a-f]{12}$/)
    const filtered = await engine.run(['image', 'ls', '--filter', `reference=${IMAGE}:v*`, '--format', '{{.Tag}}'])
    expect(filtered.stdout).toBe('v3\nv2\nv1\n')

    const refused = await engine.run(['image', 'rm', `${IMAGE}:v1`])
    expect(refused.exitCode).toBe(1)
    expect(refused.stderr).toMatch(
      new RegExp(`^Error response from daemon: conflict: unable to remove repository reference "${IMAGE}:v1" \\(must force\\) - container [0-9a-f]{12} is using its referenced image [0-9a-f]{12}\\n$`)
    )
    expect(engine.images.has(`${IMAGE}:v1`)).toBe(true)

    const removed = await engine.run(['image', 'rm', `${IMAGE}:v2`])
    expect(removed).toMatchObject({ exitCode: 0, stdout: expect.stringMatching(/^Untagged: .*:v2\nDeleted: sha256:[0-9a-f]{64}\n$/) })
    expect(engine.images.has(`${IMAGE}:v2`)).toBe(false)
    await expect(new DockerClient(engine).imageExists(`${IMAGE}:v2`)).resolves.toBe(false)
  })
})

describe('FakeDockerEngine: fault injection', () => {
  it('before: the k-th command fails with no effect', async () => {
    const engine = replaceEngine()
    engine.fault = { at: 2, mode: 'before' }
    const error = await settled(replace(engine).strategy.switchTo(V2))
    expect(error?.message).toMatch(/^docker container create failed: injected fault at docker command 2: docker container create --name web-next /)
    expect(engine.containers.has('web-next')).toBe(false)
    expect(engine.commandCount).toBe(engine.calls.length)
    expect(engine.describe('web')).toMatchObject({ container: { tag: 'v1', running: true }, serves: true })
  })

  it('after: the k-th command takes effect, then fails like a CLI killed after the daemon acted', async () => {
    const engine = replaceEngine()
    engine.fault = { at: 2, mode: 'after' }
    const error = await settled(replace(engine).strategy.switchTo(V2))
    expect(error?.message).toContain('injected fault at docker command 2: docker container create --name web-next')
    expect(engine.containers.get('web-next')).toMatchObject({ running: false, labels: { [Label.Tag]: 'v2' } })
  })

  it('onCommand sees each command first: aborting the signal there cancels that command, which then has no effect', async () => {
    const engine = replaceEngine()
    const controller = new AbortController()
    const seen: string[] = []
    engine.onCommand = (index, argv) => {
      seen.push(`${index} ${argv.slice(0, 2).join(' ')}`)
      if (argv[1] === 'stop') controller.abort()
    }
    const error = await settled(replace(engine, controller.signal).strategy.switchTo(V2))
    expect(error?.message).toBe('docker container was cancelled')
    // The 4th is the stream that follows the new container from its create; the failed switch ends it.
    expect(seen).toEqual(['1 container inspect', '2 container create', '3 container rename', '4 events --format', '5 container stop'])
    expect(engine.commandCount).toBe(5)
    expect(engine.openStreams).toBe(0)
    expect(engine.containers.get('web')).toMatchObject({ running: true, labels: { [Label.Tag]: 'v1' } })
  })

  it('a sweep of the replace switch: for every k and mode, either v2 serves or a restore brings v1 back', async () => {
    const clean = replaceEngine()
    await replace(clean).strategy.switchTo(V2)
    const total = clean.commandCount
    expect(total).toBeGreaterThan(4)

    for (let at = 1; at <= total; at++) {
      for (const mode of ['before', 'after'] as const) {
        const engine = replaceEngine()
        engine.fault = { at, mode }
        const { strategy } = replace(engine)
        const error = await settled(strategy.switchTo(V2))
        engine.fault = undefined
        const where = `fault ${mode} command ${at}`
        if (!error) {
          expect({ where, ...engine.describe('web') }).toMatchObject({ where, container: { tag: 'v2', running: true }, serves: true })
          continue
        }
        await expect(strategy.restore(V1)).resolves.toEqual(expect.any(String))
        expect({ where, ...engine.describe('web') }).toMatchObject({ where, container: { tag: 'v1', running: true }, serves: true })
      }
    }
  })

  it('a sweep of a Swarm update to a crashing image: whatever command fails, a good version keeps serving', async () => {
    const prepared = (): FakeDockerEngine => {
      const engine = new FakeDockerEngine()
      engine.addService({ name: 'web', image: `${IMAGE}:v1`, labels: { [Label.Tag]: 'v1' }, replicas: 2 })
      engine.crashingImages.add(`${IMAGE}:v2`)
      return engine
    }
    const clean = prepared()
    await expect(swarm(clean).strategy.switchTo(V2)).rejects.toThrow(/rolled the update back/)
    const total = clean.commandCount

    for (let at = 1; at <= total; at++) {
      for (const mode of ['before', 'after'] as const) {
        const engine = prepared()
        engine.fault = { at, mode }
        const error = await settled(swarm(engine).strategy.switchTo(V2))
        expect({ at, mode, failed: error !== undefined }).toEqual({ at, mode, failed: true })
        expect({ at, mode, ...engine.describe('web') }).toMatchObject({ at, mode, service: { tag: 'v1', runningTasks: 2 }, serves: true })
      }
    }
  })
})
