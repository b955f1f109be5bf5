import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals'
import { DockerClient } from '../src/docker/client.js'
import type { DockerResult, DockerRunner, DockerRunOptions } from '../src/docker/runner.js'
import { ServiceClient } from '../src/docker/service-client.js'
import type { DeploySettings } from '../src/settings.js'
import { describeTaskRows, serviceStateProbe, SwarmStrategy, type SwarmClock } from '../src/strategies/swarm.js'

/** What the fake swarm does with the next `docker service update`. */
type UpdateOutcome = 'completed' | 'rollback' | 'pause' | 'never'

interface FakeTask {
  id: string
  slot: number
  desired: 'running' | 'shutdown'
  state: string
  err?: string
  image: string
  at: number
  /** The node it runs on (global services); one node otherwise. */
  node?: string
}

interface FakeService {
  name: string
  labels: Record<string, string>
  image: string
  previous?: { labels: Record<string, string>; image: string }
  replicas: number
  /** One task per node instead of `replicas`. */
  global?: boolean
  /** The spec's UpdateConfig and stop grace period as Swarm shows them (nanoseconds). */
  updateConfig?: { Parallelism: number; Delay?: number; Monitor?: number; FailureAction: string }
  stopGracePeriod?: number
  updateStatus?: { State: string; Message: string; StartedAt: string }
}

/**
 * A single-node Swarm in memory, answering the docker commands the strategy sends. Updates reach
 * their outcome after `pollsUntilDone` inspects, so the strategy's waiting is exercised.
 */
class FakeSwarm implements DockerRunner {
  readonly calls: { argv: string[]; options: DockerRunOptions }[] = []
  services = new Map<string, FakeService>()
  tasks: FakeTask[] = []
  nextUpdate: UpdateOutcome = 'completed'
  /** A created service's first task fails (exits) instead of running. */
  createFails = false
  pollsUntilDone = 2
  /** Leave the last update's status in place until the new update starts (Swarm clears it; the strategy must not rely on that). */
  keepStaleStatus = false
  private pending?: { service: FakeService; outcome: UpdateOutcome; polls: number }
  private clock = 0
  private ids = 0

  async run(argv: readonly string[], options: DockerRunOptions = {}): Promise<DockerResult> {
    this.calls.push({ argv: [...argv], options })
    const [a, b] = argv
    const ok = (stdout = ''): DockerResult => ({ exitCode: 0, stdout, stderr: '' })
    const name = argv[argv.length - 1] as string
    if (a === 'service' && b === 'inspect') {
      this.advance()
      const service = this.services.get(name)
      if (!service) return { exitCode: 1, stdout: '[]', stderr: `Error: no such service: ${name}` }
      return ok(JSON.stringify([this.raw(service)]))
    }
    if (a === 'service' && b === 'create') {
      const labels = labelsOf(argv, '--label')
      const image = argv[argv.indexOf('rollback') + 1] === '--stop-grace-period' ? '' : imageOfCreate(argv)
      const service: FakeService = { name: valueOf(argv, '--name') as string, labels, image, replicas: Number(valueOf(argv, '--replicas') ?? 1) }
      this.services.set(service.name, service)
      this.startTask(service, this.createFails ? 'failed' : 'running', this.createFails ? 'task: non-zero exit (1)' : undefined)
      // `--quiet` prints the new service's id.
      return ok(`id-${service.name}\n`)
    }
    if (a === 'service' && b === 'update') {
      const service = this.services.get(name) as FakeService
      service.previous = { labels: service.labels, image: service.image }
      const labels = { ...service.labels }
      for (const key of valuesOf(argv, '--label-rm')) delete labels[key]
      Object.assign(labels, labelsOf(argv, '--label-add'))
      service.labels = labels
      service.image = valueOf(argv, '--image') as string
      if (!this.keepStaleStatus) service.updateStatus = undefined
      this.pending = { service, outcome: this.nextUpdate, polls: 0 }
      return ok()
    }
    if (a === 'service' && b === 'rm') {
      this.services.delete(name)
      return ok()
    }
    if (a === 'service' && b === 'ps' && argv.includes('--quiet')) {
      return ok(this.tasks.map((task) => task.id).join('\n') + '\n')
    }
    if (a === 'service' && b === 'ps') {
      const rows = [...this.tasks].reverse().map((task) => JSON.stringify({ Name: `${name}.${task.slot}`, Image: task.image, DesiredState: task.desired, CurrentState: `${task.state} 1 second ago`, Error: task.err ?? '' }))
      return ok(rows.join('\n') + '\n')
    }
    if (a === 'inspect' && b === '--type') {
      const wanted = new Set(argv.slice(3))
      const raw = this.tasks
        .filter((task) => wanted.has(task.id))
        .map((task) => ({ ID: task.id, ...(task.node ? { NodeID: task.node } : { Slot: task.slot, NodeID: 'node1' }), DesiredState: task.desired, Status: { State: task.state, Err: task.err, Timestamp: new Date(task.at * 1000).toISOString(), ContainerStatus: { ContainerID: `container-of-${task.id}` } }, Spec: { ContainerSpec: { Image: task.image } } }))
      return ok(JSON.stringify(raw))
    }
    if (a === 'service' && b === 'logs') return ok(`app: log of ${name}\n`)
    if (a === 'container' && b === 'logs') return ok(`app: fatal: cannot start (${name})\n`)
    return ok()
  }

  /** Moves a pending update one poll closer to its outcome. */
  private advance(): void {
    const pending = this.pending
    if (!pending) return
    const { service } = pending
    pending.polls++
    if (this.keepStaleStatus && pending.polls === 1) return
    if (pending.polls === (this.keepStaleStatus ? 2 : 1)) {
      service.updateStatus = { State: 'updating', Message: 'update in progress', StartedAt: `2026-01-01T00:00:0${this.clock}Z` }
      return
    }
    if (pending.polls < this.pollsUntilDone || pending.outcome === 'never') return
    this.pending = undefined
    for (const task of this.tasks) if (task.desired === 'running') Object.assign(task, { desired: 'shutdown', state: 'shutdown' })
    if (pending.outcome === 'completed') {
      this.startTask(service, 'running')
      service.updateStatus = { ...service.updateStatus!, State: 'completed', Message: 'update completed' }
    } else if (pending.outcome === 'pause') {
      // `--update-failure-action pause`: the failed task's slot is left as it is, the spec stays.
      this.startTask(service, 'failed', 'task: non-zero exit (1)', 'shutdown')
      service.updateStatus = { ...service.updateStatus!, State: 'paused', Message: 'update paused due to failure or early termination of task' }
    } else {
      this.startTask(service, 'failed', 'task: non-zero exit (1)', 'shutdown')
      const previous = service.previous!
      service.labels = previous.labels
      service.image = previous.image
      this.startTask(service, 'running')
      service.updateStatus = { ...service.updateStatus!, State: 'rollback_completed', Message: 'rollback completed' }
    }
  }

  startTask(service: FakeService, state: string, err?: string, desired: 'running' | 'shutdown' = 'running'): FakeTask {
    const task: FakeTask = { id: `task${++this.ids}`, slot: 1, desired, state, err, image: service.image, at: ++this.clock }
    this.tasks.push(task)
    return task
  }

  private raw(service: FakeService): unknown {
    return {
      ID: `id-${service.name}`,
      Spec: {
        Name: service.name,
        Labels: service.labels,
        TaskTemplate: { ContainerSpec: { Image: service.image, Env: [], ...(service.stopGracePeriod !== undefined && { StopGracePeriod: service.stopGracePeriod }) } },
        Mode: service.global ? { Global: {} } : { Replicated: { Replicas: service.replicas } },
        ...(service.updateConfig && { UpdateConfig: service.updateConfig })
      },
      ...(service.updateStatus && { UpdateStatus: service.updateStatus })
    }
  }

  commands(prefix: string): string[][] {
    return this.calls.map((call) => call.argv).filter((argv) => argv.join(' ').startsWith(prefix))
  }
}

function valueOf(argv: readonly string[], flag: string): string | undefined {
  const index = argv.indexOf(flag)
  return index === -1 ? undefined : argv[index + 1]
}

function valuesOf(argv: readonly string[], flag: string): string[] {
  return argv.flatMap((word, index) => (word === flag ? [argv[index + 1] as string] : []))
}

function labelsOf(argv: readonly string[], flag: string): Record<string, string> {
  return Object.fromEntries(valuesOf(argv, flag).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]))
}

/** The image of a create argv: the first word after the last flag value. */
function imageOfCreate(argv: readonly string[]): string {
  return argv.find((word) => word.startsWith('registry.example.com/acme/web:')) as string
}

const instantClock: SwarmClock = { now: () => Date.now(), sleep: async () => undefined }

function settings(overrides: Partial<DeploySettings> = {}): DeploySettings {
  return {
    command: 'deploy',
    environment: 'production',
    dryRun: false,
    image: 'registry.example.com/acme/web',
    tag: 'v2',
    name: 'web',
    strategy: 'swarm',
    container: { ports: [], env: { PORT: '8080' }, secrets: ['DATABASE_URL'], volumes: [], network: 'host', labels: {}, init: true },
    health: { expectStatus: [200], headers: {}, intervalMs: 100, timeoutMs: 100, deadlineMs: 1000, healthyThreshold: 1, watchMs: 0 },
    rollback: { onFailure: true, to: { kind: 'previous' } },
    hooks: { preDeploy: [] },
    lock: { timeoutMs: 1000 },
    swarm: { monitorMs: 1000 },
    hosts: [undefined],
    rollout: { parallel: 1, canary: false },
    retain: 5,
    run: { repository: 'acme/web', sha: 'abc123', ref: 'refs/heads/main', actor: 'octocat', runUrl: 'https://github.com/acme/web/actions/runs/1', apiUrl: '', workspace: '/tmp' },
    ...overrides
  }
}

let swarm: FakeSwarm
let stdout: string[]
beforeEach(() => {
  swarm = new FakeSwarm()
  stdout = []
  process.env.DATABASE_URL = 'postgres://u:supersecret@db/app'
  jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout.push(String(chunk))
    return true
  })
})
afterEach(() => {
  jest.restoreAllMocks()
  delete process.env.DATABASE_URL
})

function strategy(overrides: Partial<DeploySettings> = {}): SwarmStrategy {
  return new SwarmStrategy(settings(overrides), new DockerClient(swarm), instantClock)
}

describe('SwarmStrategy', () => {
  it('reads what runs from the service labels, and nothing when there is no service', async () => {
    const deploy = strategy()
    expect(await deploy.current()).toBeUndefined()
    swarm.services.set('web', { name: 'web', labels: { 'deploy-action.tag': 'v1', 'deploy-action.digest': 'sha256:aa' }, image: 'registry.example.com/acme/web:v1@sha256:aa', replicas: 1 })
    expect(await deploy.current()).toEqual({ tag: 'v1', digest: 'sha256:aa' })
  })

  it('creates the service on the first deploy, passing secrets through the client environment, and waits for its task', async () => {
    await strategy().switchTo({ tag: 'v2', digest: 'sha256:bb' })
    const [create] = swarm.commands('service create')
    expect(create).toEqual(expect.arrayContaining(['--with-registry-auth', '--network', 'host', '--init', '--env', 'DATABASE_URL', '--update-failure-action', 'rollback']))
    expect(create).toEqual(expect.arrayContaining(['--label', 'deploy-action.tag=v2', '--label', 'deploy-action.digest=sha256:bb', '--label', 'deploy-action.commit=abc123']))
    expect(create?.join(' ')).not.toContain('supersecret')
    const createCall = swarm.calls.find((call) => call.argv[1] === 'create')
    expect(createCall?.options.env).toEqual({ DATABASE_URL: 'postgres://u:supersecret@db/app' })
    // It looked at the tasks before returning.
    expect(swarm.commands('inspect --type task').length).toBeGreaterThan(0)
  })

  it('fails a first deploy whose task fails, and removes the service it created', async () => {
    swarm.createFails = true
    const deploy = strategy()
    await expect(deploy.switchTo({ tag: 'v2' })).rejects.toThrow('a task of web (v2) failed: task: non-zero exit (1)')
    const discarded = await deploy.failureEvidence()
    expect(discarded.diagnostics).toContain('web.1 registry.example.com/acme/web:v2: failed 1 second ago: task: non-zero exit (1)')
    // The failed task's own container log, read on the node that ran it.
    expect(discarded.logs).toMatch(/^app: fatal: cannot start \(container-of-task\d+\)$/)
    expect(swarm.commands('service rm')).toEqual([])
    // Nothing ran before: the restore path removes the service this run created.
    expect(await deploy.restore(undefined)).toBe('removed')
    expect(swarm.commands('service rm')).toHaveLength(1)
  })

  it('a restore to nothing never removes a service this run did not create', async () => {
    swarm.createFails = true
    await expect(strategy().switchTo({ tag: 'v2' })).rejects.toThrow()
    // A fresh strategy did not create the service (the post step of another attempt, a service made by hand).
    await expect(strategy().restore(undefined)).rejects.toThrow(/was not created by this run/)
    expect(swarm.commands('service rm')).toEqual([])
  })

  it('updates the image with --force and returns once Swarm reports the update completed', async () => {
    await strategy().switchTo({ tag: 'v1' })
    await strategy().switchTo({ tag: 'v2' })
    const [update] = swarm.commands('service update')
    expect(update?.slice(0, 8)).toEqual(['service', 'update', '--detach', '--quiet', '--with-registry-auth', '--force', '--image', 'registry.example.com/acme/web:v2'])
    expect(update).toEqual(expect.arrayContaining(['--env-add', 'DATABASE_URL', '--label-add', 'deploy-action.tag=v2']))
    expect(swarm.services.get('web')?.updateStatus?.State).toBe('completed')
    expect(await strategy().current()).toMatchObject({ tag: 'v2' })
  })

  it('does not take the previous deploy’s "completed" for the outcome of this one', async () => {
    await strategy().switchTo({ tag: 'v1' })
    await strategy().switchTo({ tag: 'v2' })
    const stale = swarm.services.get('web')?.updateStatus
    expect(stale?.State).toBe('completed')
    swarm.keepStaleStatus = true
    swarm.pollsUntilDone = 4
    swarm.nextUpdate = 'rollback'
    // The stale "completed" is still there at the first look; only v3's own outcome counts.
    await expect(strategy().switchTo({ tag: 'v3' })).rejects.toThrow(/rolled the update back/)
    expect(swarm.services.get('web')?.updateStatus?.StartedAt).not.toBe(stale?.StartedAt)
  })

  it('reports an update that Swarm rolled back as a failed switch, with the task errors', async () => {
    await strategy().switchTo({ tag: 'v1' })
    swarm.nextUpdate = 'rollback'
    const deploy = strategy()
    await expect(deploy.switchTo({ tag: 'v2' })).rejects.toThrow(
      'Swarm rolled the update back (rollback completed): rollback completed; task errors: web.1: task: non-zero exit (1)'
    )
    // Swarm put v1 back, labels included, so what runs is named correctly.
    expect(await deploy.current()).toMatchObject({ tag: 'v1' })
    const discarded = await deploy.failureEvidence()
    expect(discarded.diagnostics).toMatch(/^docker service ps --no-trunc \(task errors\):\nweb\.1 registry\.example\.com\/acme\/web:v2: failed 1 second ago: task: non-zero exit \(1\)$/)
    // The service stays: Swarm already runs v1 on it.
    expect(swarm.commands('service rm')).toEqual([])
    // Restoring v1, which Swarm already put back, changes nothing.
    expect(await deploy.restore({ tag: 'v1' })).toBe('already-running')
    expect(swarm.commands('service update')).toHaveLength(1)
  })

  it('gives up on an update that never ends, at a deadline derived from the swarm settings', async () => {
    await strategy().switchTo({ tag: 'v1' })
    swarm.nextUpdate = 'never'
    let now = 0
    const clock: SwarmClock = { now: () => now, sleep: async (ms) => void (now += ms) }
    const deploy = new SwarmStrategy(settings(), new DockerClient(swarm), clock)
    // 2 × (10 s grace + 1 s health deadline + 1 s monitor) + 30 s
    await expect(deploy.switchTo({ tag: 'v2' })).rejects.toThrow('Swarm did not finish the update of web within 54 s (update status: updating)')
  })

  it('takes the replicas and update settings the config leaves out from the service, for the deadline', async () => {
    // Scaled to 20 by hand, with its own update policy: 10 batches of 27 s, and as long again for a rollback.
    swarm.services.set('web', {
      name: 'web',
      labels: { 'deploy-action.tag': 'v1' },
      image: 'registry.example.com/acme/web:v1',
      replicas: 20,
      updateConfig: { Parallelism: 2, Delay: 3e9, Monitor: 8e9, FailureAction: 'rollback' },
      stopGracePeriod: 15e9
    })
    swarm.nextUpdate = 'never'
    let now = 0
    const clock: SwarmClock = { now: () => now, sleep: async (ms) => void (now += ms) }
    const fromService = new SwarmStrategy(settings({ swarm: {} }), new DockerClient(swarm), clock)
    // 2 × 10 × (15 s grace + 1 s health deadline + 8 s monitor + 3 s delay) + 30 s
    await expect(fromService.switchTo({ tag: 'v2' })).rejects.toThrow('Swarm did not finish the update of web within 570 s')
    // What the config sets overrides the service: all at once, 1 s monitor.
    const overridden = new SwarmStrategy(settings({ swarm: { parallelism: 0, monitorMs: 1000 } }), new DockerClient(swarm), clock)
    await expect(overridden.switchTo({ tag: 'v3' })).rejects.toThrow('within 70 s')
    // The update sent no replica count: the service keeps its 20.
    expect(swarm.commands('service update').some((argv) => argv.includes('--replicas'))).toBe(false)
  })

  it('counts a global service’s tasks, one per node, for the deadline', async () => {
    const service: FakeService = { name: 'web', labels: { 'deploy-action.tag': 'v1' }, image: 'registry.example.com/acme/web:v1', replicas: 0, global: true }
    swarm.services.set('web', service)
    for (const node of ['a', 'b', 'c']) swarm.startTask(service, 'running').node = node
    swarm.nextUpdate = 'never'
    let now = 0
    const clock: SwarmClock = { now: () => now, sleep: async (ms) => void (now += ms) }
    // 2 × 3 batches × (10 s grace + 1 s health deadline + 5 s monitor) + 30 s, not the 62 s of one task.
    await expect(new SwarmStrategy(settings({ swarm: {} }), new DockerClient(swarm), clock).switchTo({ tag: 'v2' })).rejects.toThrow('within 126 s')
  })

  it('drives a paused rollback or a paused update to the target, even when the labels already name it', async () => {
    for (const state of ['rollback_paused', 'paused']) {
      swarm = new FakeSwarm()
      swarm.services.set('web', {
        name: 'web',
        labels: { 'deploy-action.tag': 'v1' },
        image: 'registry.example.com/acme/web:v1',
        replicas: 3,
        updateStatus: { State: state, Message: `${state.replace('_', ' ')} due to failure or early termination of task task9`, StartedAt: '2025-12-31T23:00:00Z' }
      })
      expect([state, await strategy().restore({ tag: 'v1' })]).toEqual([state, 'redeployed'])
      const [update] = swarm.commands('service update')
      expect(update?.slice(0, 8)).toEqual(['service', 'update', '--detach', '--quiet', '--with-registry-auth', '--force', '--image', 'registry.example.com/acme/web:v1'])
      expect(swarm.services.get('web')?.updateStatus?.State).toBe('completed')
    }
    // Finished (Swarm's rollback completed): left as it is.
    swarm = new FakeSwarm()
    swarm.services.set('web', {
      name: 'web',
      labels: { 'deploy-action.tag': 'v1' },
      image: 'registry.example.com/acme/web:v1',
      replicas: 3,
      updateStatus: { State: 'rollback_completed', Message: 'rollback completed', StartedAt: '2026-01-01T00:00:00Z' }
    })
    expect(await strategy().restore({ tag: 'v1' })).toBe('already-running')
    expect(swarm.commands('service update')).toEqual([])
  })

  it('with rollback.on-failure false asks Swarm to pause, and passes rollback otherwise', async () => {
    await strategy().switchTo({ tag: 'v1' })
    await strategy({ rollback: { onFailure: false, to: { kind: 'previous' } } }).switchTo({ tag: 'v2' })
    await strategy().switchTo({ tag: 'v3' })
    expect(swarm.commands('service update').map((argv) => argv[argv.indexOf('--update-failure-action') + 1])).toEqual(['pause', 'rollback'])
  })

  it('with rollback.on-failure false leaves a paused switch to the verification, but a paused restore fails', async () => {
    const keep = { rollback: { onFailure: false, to: { kind: 'previous' as const } } }
    await strategy(keep).switchTo({ tag: 'v1' })
    swarm.nextUpdate = 'pause'
    // Swarm did what it was told: the switch returns, and the probe reports the failed version.
    await strategy(keep).switchTo({ tag: 'v2' })
    expect((await strategy(keep).stateProbe().observe()).verdict).toBe('failed')
    // A restore must put its target back: Swarm pausing it is a failure.
    await expect(strategy(keep).restore({ tag: 'v1' })).rejects.toThrow(/^Swarm paused the update/)
  })

  it('refuses a service scaled to 0 that the config does not scale up, before anything is sent', async () => {
    swarm.services.set('web', { name: 'web', labels: { 'deploy-action.tag': 'v1' }, image: 'registry.example.com/acme/web:v1', replicas: 0 })
    await expect(strategy({ swarm: {} }).current()).rejects.toThrow(
      'the service web on local is scaled to 0 replicas, so no task could show a new version healthy. Scale it up (docker service scale web=N) or set swarm.replicas, then deploy again'
    )
    await expect(strategy({ swarm: {} }).switchTo({ tag: 'v2' })).rejects.toMatchObject({ name: 'SwitchNotStartedError' })
    expect(swarm.commands('service update')).toEqual([])
    // swarm.replicas scales it up: then there is something to deploy and verify.
    expect(await strategy({ swarm: { replicas: 2 } }).current()).toMatchObject({ tag: 'v1' })
  })

  it('re-deploys the target with service update --image, without claiming this run’s commit', async () => {
    await strategy().switchTo({ tag: 'v1' })
    await strategy().switchTo({ tag: 'v2' })
    expect(await strategy().restore({ tag: 'v1', digest: 'sha256:11' })).toBe('redeployed')
    const restore = swarm.commands('service update').at(-1)
    expect(restore).toEqual(expect.arrayContaining(['--image', 'registry.example.com/acme/web:v1', '--label-rm', 'deploy-action.commit', '--label-add', 'deploy-action.digest=sha256:11']))
    expect(await strategy().current()).toEqual({ tag: 'v1', digest: 'sha256:11' })
  })

  it('in a dry run only prints the service command and does not wait for Swarm', async () => {
    const dry = new DockerClient(swarm, { dryRun: true })
    const deploy = new SwarmStrategy(settings({ dryRun: true }), dry, instantClock)
    await deploy.switchTo({ tag: 'v2' })
    expect(swarm.commands('service create')).toEqual([])
    expect(dry.plannedCommands[0]).toMatch(/^docker service create --detach --quiet --with-registry-auth --name web /)
    expect(swarm.commands('inspect --type task')).toEqual([])
  })

  it('warns once that start-first cannot work with host networking on one port', async () => {
    const deploy = strategy({ swarm: { order: 'start-first' } })
    await deploy.switchTo({ tag: 'v1' })
    await deploy.switchTo({ tag: 'v2' })
    const warnings = stdout.filter((line) => line.startsWith('::warning'))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain('start-first')
    stdout.length = 0
    await strategy({ swarm: { order: 'start-first' }, container: { ...settings().container, network: undefined } }).switchTo({ tag: 'v3' })
    expect(stdout.filter((line) => line.startsWith('::warning'))).toEqual([])
  })
})

describe('serviceStateProbe', () => {
  it('is starting until every replica runs the current image, then ready, and fails on a task failing afterwards', async () => {
    const service: FakeService = { name: 'web', labels: {}, image: 'registry.example.com/acme/web:v2', replicas: 2 }
    swarm.services.set('web', service)
    const old = swarm.startTask(service, 'failed', 'task: non-zero exit (1)', 'shutdown')
    const first = swarm.startTask(service, 'running')
    const second = swarm.startTask(service, 'starting')
    let now = 0
    const probe = serviceStateProbe(new ServiceClient(new DockerClient(swarm)), 'web', { now: () => now, sleep: async () => undefined })

    expect(await probe.observe()).toEqual({ verdict: 'starting', detail: '1 of 2 tasks of web running (others: starting)' })
    second.state = 'running'
    // Reads are spaced: within half a second the last observation is reused.
    expect((await probe.observe()).verdict).toBe('starting')
    now += 600
    expect(await probe.observe()).toEqual({ verdict: 'ready', detail: '2 of 2 tasks of web running' })
    // The failure from before the probe began does not count; a new one does, even after a restart.
    expect(old.state).toBe('failed')
    // A task of another image (the version rolled away from) failing late is not this version's failure.
    swarm.startTask({ ...service, image: 'registry.example.com/acme/web:v3' }, 'rejected', 'No such image', 'shutdown')
    now += 600
    expect((await probe.observe()).verdict).toBe('ready')
    Object.assign(first, { desired: 'shutdown', state: 'failed', err: 'task: non-zero exit (137)' })
    swarm.startTask(service, 'running')
    now += 600
    expect(await probe.observe()).toEqual({ verdict: 'failed', detail: 'the task web.1 of web failed: task: non-zero exit (137)' })
  })

  it('counts a global service ready only when every node runs a task of its image', async () => {
    const service: FakeService = { name: 'web', labels: {}, image: 'registry.example.com/acme/web:v2', replicas: 0, global: true }
    swarm.services.set('web', service)
    swarm.startTask({ ...service, image: 'registry.example.com/acme/web:v1' }, 'shutdown', undefined, 'shutdown').node = 'c'
    swarm.startTask(service, 'running').node = 'a'
    swarm.startTask(service, 'running').node = 'b'
    const starting = swarm.startTask(service, 'starting')
    starting.node = 'c'
    let now = 0
    const probe = serviceStateProbe(new ServiceClient(new DockerClient(swarm)), 'web', { now: () => now, sleep: async () => undefined })
    // One running task is not the service: node c's task has not started yet.
    expect(await probe.observe()).toEqual({ verdict: 'starting', detail: '2 of 3 tasks of web running (one per node) (others: starting)' })
    starting.state = 'running'
    now += 600
    expect(await probe.observe()).toEqual({ verdict: 'ready', detail: '3 of 3 tasks of web running (one per node)' })
  })

  it('fails at once on an update Swarm paused part way, saying what the tasks run', async () => {
    const service: FakeService = {
      name: 'web',
      labels: {},
      image: 'registry.example.com/acme/web:v2',
      replicas: 3,
      updateStatus: { State: 'paused', Message: 'update paused due to failure or early termination of task task1', StartedAt: '2026-01-01T00:00:00Z' }
    }
    swarm.services.set('web', service)
    swarm.startTask(service, 'failed', 'task: non-zero exit (1)', 'shutdown')
    swarm.startTask({ ...service, image: 'registry.example.com/acme/web:v1@sha256:aa' }, 'running')
    swarm.startTask({ ...service, image: 'registry.example.com/acme/web:v1@sha256:aa' }, 'running')
    const probe = serviceStateProbe(new ServiceClient(new DockerClient(swarm)), 'web', instantClock)
    expect(await probe.observe()).toEqual({
      verdict: 'failed',
      detail: 'Swarm paused the update of web part way (update paused due to failure or early termination of task task1); 2 tasks run v1'
    })
  })

  it('fails for a service scaled to 0: no task runs that could be shown healthy', async () => {
    swarm.services.set('web', { name: 'web', labels: {}, image: 'registry.example.com/acme/web:v2', replicas: 0 })
    const probe = serviceStateProbe(new ServiceClient(new DockerClient(swarm)), 'web', instantClock)
    expect(await probe.observe()).toEqual({ verdict: 'failed', detail: 'the service web is scaled to 0 replicas: no task runs that could be shown healthy' })
  })

  it('fails when the service is gone', async () => {
    const probe = serviceStateProbe(new ServiceClient(new DockerClient(swarm)), 'web', instantClock)
    expect(await probe.observe()).toEqual({ verdict: 'failed', detail: 'the service web no longer exists' })
  })
})

describe('describeTaskRows', () => {
  it('shows the tasks with errors, at most ten, or all tasks when none has one', () => {
    const rows = Array.from({ length: 12 }, (_, index) => ({ name: `web.${index + 1}`, image: 'acme/web:v2@sha256:ff', desiredState: 'Shutdown', currentState: 'Failed 2 seconds ago', error: 'task: non-zero exit (1)' }))
    const text = describeTaskRows(rows)
    expect(text.split('\n')).toHaveLength(12)
    expect(text).toContain('web.1 acme/web:v2: Failed 2 seconds ago: task: non-zero exit (1)')
    expect(text).toMatch(/… and 2 more$/)
    expect(describeTaskRows([{ name: 'web.1', image: 'acme/web:v2', desiredState: 'Running', currentState: 'Running 1 second ago', error: '' }])).toBe(
      'docker service ps --no-trunc (task errors):\nweb.1 acme/web:v2: Running 1 second ago'
    )
    expect(describeTaskRows([])).toBe('')
  })
})
