import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals'
import { DockerClient, parseContainerEvent } from '../src/docker/client.js'
import type { DockerResult, DockerRunner, DockerRunOptions } from '../src/docker/runner.js'
import { containerStateProbe, untilStateFails, type StateObservation, type StateProbe } from '../src/health/state-probe.js'
import { verifyHealth } from '../src/health/verify.js'
import type { DeploySettings, HealthSettings } from '../src/settings.js'
import { FakeDockerEngine } from '../test-support/fake-docker-engine.js'
import { testSettings } from '../test-support/settings.js'
import { virtualClock } from '../test-support/story.js'
import { runStory } from '../test-support/sweep-story.js'

/** Answers each docker call with the next scripted result and records its argv. */
class ScriptedRunner implements DockerRunner {
  readonly calls: string[][] = []
  constructor(private readonly script: DockerResult[]) {}

  async run(argv: readonly string[], _options?: DockerRunOptions): Promise<DockerResult> {
    this.calls.push([...argv])
    const next = this.script.shift()
    if (!next) throw new Error(`unexpected docker call: ${argv.join(' ')}`)
    return next
  }
}

interface StateFields {
  Status?: string
  Running?: boolean
  Restarting?: boolean
  ExitCode?: number
  Error?: string
  OOMKilled?: boolean
  Health?: { Status: string }
}

/** `docker container inspect` output for one container, with the given state. */
function inspectJson(state: StateFields, restartCount = 0): DockerResult {
  const running = state.Running ?? (state.Status ?? 'running') === 'running'
  const document = [
    {
      Id: 'f00dfeed',
      Name: '/web',
      Image: 'sha256:abc',
      RestartCount: restartCount,
      Config: { Image: 'registry.test/web:v2', Labels: {} },
      State: {
        Status: 'running',
        Running: running,
        Restarting: false,
        ExitCode: 0,
        Error: '',
        OOMKilled: false,
        StartedAt: '2024-05-01T10:00:00.000000000Z',
        ...state
      }
    }
  ]
  return { exitCode: 0, stdout: JSON.stringify(document), stderr: '' }
}

// `docker container inspect` has no --type flag (that belongs to `docker inspect`).
const INSPECT_ARGV = ['container', 'inspect', 'web']

async function observeAll(script: DockerResult[]): Promise<{ observations: Awaited<ReturnType<ReturnType<typeof containerStateProbe>['observe']>>[]; runner: ScriptedRunner }> {
  const runner = new ScriptedRunner([...script])
  const probe = containerStateProbe(new DockerClient(runner), 'web')
  const observations = []
  for (let i = 0; i < script.length; i++) observations.push(await probe.observe())
  return { observations, runner }
}

describe('containerStateProbe', () => {
  it('reads the container with docker container inspect and calls a running container ready', async () => {
    const { observations, runner } = await observeAll([inspectJson({})])
    expect(runner.calls).toEqual([INSPECT_ARGV])
    expect(observations).toEqual([{ verdict: 'ready', detail: 'the container web is running' }])
  })

  it('waits for a HEALTHCHECK: starting, then healthy', async () => {
    const { observations } = await observeAll([inspectJson({ Health: { Status: 'starting' } }), inspectJson({ Health: { Status: 'healthy' } })])
    expect(observations.map((o) => o.verdict)).toEqual(['starting', 'ready'])
    expect(observations[0]?.detail).toContain('HEALTHCHECK still reports starting')
    expect(observations[1]?.detail).toContain('HEALTHCHECK reports healthy')
  })

  it('fails on an unhealthy HEALTHCHECK', async () => {
    const { observations } = await observeAll([inspectJson({ Health: { Status: 'unhealthy' } })])
    expect(observations[0]).toEqual({ verdict: 'failed', detail: 'the container web is running but its HEALTHCHECK reports unhealthy' })
  })

  it('fails when the container exited, naming the exit code and docker error', async () => {
    const { observations } = await observeAll([inspectJson({ Status: 'exited', ExitCode: 1, Error: 'boom: no config file' })])
    expect(observations[0]).toEqual({ verdict: 'failed', detail: 'the container web exited with code 1: boom: no config file' })
  })

  it('says when the kernel killed it for lack of memory', async () => {
    const { observations } = await observeAll([inspectJson({ Status: 'exited', ExitCode: 137, OOMKilled: true })])
    expect(observations[0]?.verdict).toBe('failed')
    expect(observations[0]?.detail).toBe('the container web exited with code 137 (killed for lack of memory, OOMKilled)')
  })

  it('names the signal of a killed process', async () => {
    const { observations } = await observeAll([inspectJson({ Status: 'exited', ExitCode: 139 })])
    expect(observations[0]?.detail).toBe('the container web exited with code 139 (killed by signal 11)')
  })

  it('fails a container that could not start (port already allocated) with docker\'s error', async () => {
    const error = 'driver failed programming external connectivity on endpoint web: Bind for 0.0.0.0:8080 failed: port is already allocated'
    const { observations } = await observeAll([inspectJson({ Status: 'created', ExitCode: 128, Error: error })])
    expect(observations[0]).toEqual({ verdict: 'failed', detail: `the container web was created but did not start: ${error}` })
  })

  it('fails a dead container', async () => {
    const { observations } = await observeAll([inspectJson({ Status: 'dead', ExitCode: 2 })])
    expect(observations[0]).toEqual({ verdict: 'failed', detail: 'the container web died with code 2' })
  })

  it('fails a restarting container', async () => {
    const { observations } = await observeAll([inspectJson({ Status: 'restarting', Running: true, Restarting: true, ExitCode: 3 }, 1)])
    expect(observations[0]).toEqual({ verdict: 'failed', detail: 'the container web is restarting after it exited with code 3' })
  })

  it('fails when the restart count grew since the first observation, even if it runs again', async () => {
    const { observations } = await observeAll([inspectJson({}, 2), inspectJson({}, 2), inspectJson({ ExitCode: 1 }, 3)])
    expect(observations.map((o) => o.verdict)).toEqual(['ready', 'ready', 'failed'])
    expect(observations[2]?.detail).toBe('the container web restarted 1 time during the health check; it last exited with code 1')
  })

  it('fails when the container is gone', async () => {
    const { observations } = await observeAll([{ exitCode: 1, stdout: '[]', stderr: 'Error: No such container: web\n' }])
    expect(observations[0]).toEqual({ verdict: 'failed', detail: 'the container web no longer exists' })
  })

  it('throws when docker itself fails, so the caller can retry', async () => {
    const runner = new ScriptedRunner([{ exitCode: 1, stdout: '', stderr: 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock' }])
    const probe = containerStateProbe(new DockerClient(runner), 'web')
    await expect(probe.observe()).rejects.toThrow('Cannot connect to the Docker daemon')
    expect(runner.calls).toEqual([INSPECT_ARGV])
  })
})

// ---------------------------------------------------------------------------------------------
// Following a container by `docker events` (issue 21), on the in-memory engine and a virtual clock.

/** A running container `web` (and `web-blue`, the companion) on the in-memory engine. */
function engineWithWeb(): FakeDockerEngine {
  const engine = new FakeDockerEngine()
  engine.add({ name: 'web', image: 'registry.test/web:v2', labels: { 'deploy-action.tag': 'v2' }, running: true, startedAt: '2026-01-01T00:00:01.000Z' })
  engine.add({ name: 'web-blue', image: 'registry.test/web:v1', labels: { 'deploy-action.tag': 'v1' }, running: true, startedAt: '2026-01-01T00:00:00.000Z' })
  return engine
}

const stateOnly = (change: Partial<HealthSettings> = {}): HealthSettings => ({
  expectStatus: [200],
  headers: {},
  intervalMs: 100,
  timeoutMs: 500,
  deadlineMs: 5_000,
  healthyThreshold: 2,
  watchMs: 10_000,
  ...change
})

const inspects = (engine: FakeDockerEngine): string[] => engine.commands.filter((command) => command.startsWith('container inspect'))
const events = (engine: FakeDockerEngine): string[] => engine.commands.filter((command) => command.startsWith('events'))

/** Runs verifyHealth on `web` with the virtual clock; `during` runs once the event stream is open. */
async function verifyWeb(engine: FakeDockerEngine, options: { settings?: HealthSettings; during?: () => void; signal?: AbortSignal } = {}) {
  const probe = containerStateProbe(new DockerClient(engine), 'web', { companions: ['web-blue'] })
  const clock = virtualClock()
  let streamsSeen = 0
  engine.onCommand = (_index, argv) => {
    if (argv[0] !== 'events') return
    streamsSeen++
    // After the stream is subscribed and the first verdict steps have run.
    if (options.during) void clock.sleep(1_000).then(options.during)
  }
  const verdict = await verifyHealth({ state: probe, settings: options.settings ?? stateOnly(), clock, ...(options.signal && { signal: options.signal }) })
  engine.onCommand = undefined
  return { verdict, probe, streamsSeen }
}

describe('containerStateProbe with docker events', () => {
  it('reads once, then follows one filtered docker events stream, and ends it with the verification', async () => {
    const engine = engineWithWeb()
    const { verdict } = await verifyWeb(engine)
    expect(verdict).toMatchObject({ healthy: true, phase: 'watch' })
    // One read of the container and its companion, one stream, nothing polled over the 10 s watch.
    expect(inspects(engine)).toEqual(['container inspect web web-blue'])
    const web = engine.containers.get('web')?.id ?? ''
    const blue = engine.containers.get('web-blue')?.id ?? ''
    expect(engine.calls.find((call) => call.argv[0] === 'events')?.argv).toEqual([
      'events', '--format', '{{json .}}', '--filter', 'type=container',
      '--filter', 'container=web', '--filter', 'container=web-blue', '--filter', `container=${web}`, '--filter', `container=${blue}`,
      '--filter', 'event=die', '--filter', 'event=oom', '--filter', 'event=kill', '--filter', 'event=pause',
      '--filter', 'event=restart', '--filter', 'event=destroy', '--filter', 'event=rename', '--filter', 'event=health_status',
      '--since', '2026-01-01T00:00:01.000Z'
    ])
    expect(engine.openStreams).toBe(0)
  })

  it('a crash in the watch is the verdict at once, from the die event, with no read after it', async () => {
    const engine = engineWithWeb()
    let commandsAtCrash = 0
    const { verdict, probe } = await verifyWeb(engine, {
      during: () => {
        commandsAtCrash = engine.commandCount
        engine.crash('web', { exitCode: 139 })
      }
    })
    expect(verdict).toMatchObject({ healthy: false, phase: 'watch' })
    expect(verdict.reason).toMatch(/^the container web exited with code 139 \(killed by signal 11\), during the watch, /)
    expect(engine.commandCount).toBe(commandsAtCrash)
    expect(engine.openStreams).toBe(0)
    // The companion ran at the read and the stream said nothing of it: known to run, no read needed.
    expect(probe.knownRunning('web-blue')).toMatchObject({ name: 'web-blue', labels: { 'deploy-action.tag': 'v1' } })
  })

  it('says OOMKilled when an oom event came before the die, as docker inspect would', async () => {
    const engine = engineWithWeb()
    const { verdict } = await verifyWeb(engine, { during: () => engine.crash('web', { oomKilled: true }) })
    expect(verdict.reason).toMatch(/^the container web exited with code 137 \(killed for lack of memory, OOMKilled\), during the watch/)
    // The same words as a read of the exited container gives.
    expect(await containerStateProbe(new DockerClient(engine), 'web').observe()).toEqual({
      verdict: 'failed',
      detail: 'the container web exited with code 137 (killed for lack of memory, OOMKilled)'
    })
  })

  it('follows the HEALTHCHECK by its health_status events: starting, healthy, then unhealthy fails', async () => {
    const engine = engineWithWeb()
    engine.setHealth('web', 'starting')
    const clock = virtualClock()
    const probe = containerStateProbe(new DockerClient(engine), 'web')
    engine.onCommand = (_index, argv) => {
      if (argv[0] !== 'events') return
      void clock.sleep(500).then(() => engine.setHealth('web', 'healthy'))
      void clock.sleep(2_000).then(() => engine.setHealth('web', 'unhealthy'))
    }
    const verdict = await verifyHealth({ state: probe, settings: stateOnly(), clock })
    expect(verdict).toMatchObject({ healthy: false, phase: 'watch' })
    expect(verdict.reason).toMatch(/^the container web is running but its HEALTHCHECK reports unhealthy, during the watch/)
    expect(verdict.transcript.map((record) => record.detail)).toEqual([
      'the container web is running; its HEALTHCHECK still reports starting',
      'the container web is running and its HEALTHCHECK reports healthy',
      'the container web is running but its HEALTHCHECK reports unhealthy'
    ])
    expect(inspects(engine)).toEqual(['container inspect web'])
    expect(engine.openStreams).toBe(0)
  })

  it('a fault on the events command falls back to polling, which still sees the crash', async () => {
    const engine = engineWithWeb()
    engine.faultRule = { match: (argv) => argv[0] === 'events', mode: 'before' }
    const clock = virtualClock()
    engine.onCommand = (index) => {
      if (index === 6) engine.crash('web', { exitCode: 1 })
    }
    const verdict = await verifyHealth({ state: containerStateProbe(new DockerClient(engine), 'web'), settings: stateOnly(), clock })
    expect(engine.injected.map((fault) => fault.argv[0])).toEqual(['events'])
    expect(verdict).toMatchObject({ healthy: false })
    expect(verdict.reason).toMatch(/^the container web exited with code 1/)
    // Polled every 150 ms from the first read on.
    expect(inspects(engine).length).toBeGreaterThanOrEqual(4)
    expect(events(engine)).toHaveLength(1)
  })

  it('a stream that ends by itself is not taken for "nothing happened": the state is read again and polled', async () => {
    const engine = engineWithWeb()
    const clock = virtualClock()
    // The stream drops after 1 s (an SSH drop, docker's EOF), and then the container dies unseen by any event.
    const client = new DockerClient({
      run: (argv, options) => engine.run(argv, options),
      stream: (argv, options) => {
        const inner = engine.stream(argv, options)
        const dropped = clock.sleep(1_000).then(() => {
          inner.stop()
          engine.crash('web', { exitCode: 3 })
          return { exitCode: 1, stderr: 'unexpected EOF\n', stopped: false }
        })
        return { ended: Promise.race([inner.ended, dropped]), stop: inner.stop }
      }
    })
    const probe = containerStateProbe(client, 'web', { companions: ['web-blue'] })
    const verdict = await verifyHealth({ state: probe, settings: stateOnly(), clock })
    expect(verdict.reason).toMatch(/^the container web exited with code 3, during the watch/)
    expect(inspects(engine).length).toBeGreaterThanOrEqual(2)
    // What the stream did not see of the companion is unknown, not "still running".
    expect(probe.knownRunning('web-blue')).toBeUndefined()
    expect(engine.openStreams).toBe(0)
  })

  it('an event that needs detail (a rename, a restart) makes the next look read the container again', async () => {
    const engine = engineWithWeb()
    const probe = containerStateProbe(new DockerClient(engine), 'web')
    const ready = await probe.observe(new AbortController().signal)
    expect(ready.verdict).toBe('ready')
    const change = probe.nextChange?.(new AbortController().signal)
    await engine.run(['container', 'rename', 'web', 'web-old'])
    await expect(change).resolves.toBe('changed')
    expect(await probe.observe()).toEqual({ verdict: 'failed', detail: 'the container web no longer exists' })
    expect(inspects(engine)).toEqual(['container inspect web', 'container inspect web'])
    probe.close?.()
    expect(engine.openStreams).toBe(0)
  })

  it('ends the stream on cancel and at the deadline', async () => {
    const cancelled = engineWithWeb()
    const controller = new AbortController()
    const run = verifyWeb(cancelled, { signal: controller.signal, during: () => controller.abort() })
    expect((await run).verdict).toMatchObject({ healthy: false, reason: 'cancelled' })
    expect(cancelled.openStreams).toBe(0)

    const late = engineWithWeb()
    late.setHealth('web', 'starting')
    const { verdict } = await verifyWeb(late, { settings: stateOnly({ deadlineMs: 3_000 }) })
    expect(verdict.reason).toBe('the workload did not become ready within 3 s: the container web is running; its HEALTHCHECK still reports starting')
    expect(late.openStreams).toBe(0)
    expect(inspects(late)).toHaveLength(1)
  })

  it('starts no stream without a signal to end it, and none for a container already failed', async () => {
    const engine = engineWithWeb()
    await containerStateProbe(new DockerClient(engine), 'web').observe()
    engine.crash('web')
    await containerStateProbe(new DockerClient(engine), 'web').observe(new AbortController().signal)
    expect(events(engine)).toEqual([])
  })

  it('matches events by id or exact name: docker filters a container name as a prefix', async () => {
    const engine = engineWithWeb()
    engine.add({ name: 'web-proxy', image: 'haproxy:3', labels: {}, running: true })
    const { verdict } = await verifyWeb(engine, { during: () => engine.crash('web-proxy') })
    expect(verdict).toMatchObject({ healthy: true })
  })

  it('a stream from the create: a die while the first read is under way is the verdict without waiting for the read', async () => {
    const engine = engineWithWeb()
    let release = (): void => undefined
    const slowInspect = {
      run: (argv: readonly string[], options?: DockerRunOptions) =>
        argv[1] === 'inspect' ? new Promise<DockerResult>((resolve) => (release = () => void engine.run(argv, options).then(resolve))) : engine.run(argv, options),
      stream: engine.stream.bind(engine)
    }
    const probe = containerStateProbe(new DockerClient(slowInspect), 'web')
    probe.followFromCreation(engine.containers.get('web')?.id ?? '')
    const observing = probe.observe(new AbortController().signal)
    engine.crash('web', { exitCode: 3 })
    // The read has not answered yet: the die event alone gave the verdict.
    expect(await observing).toEqual({ verdict: 'failed', detail: 'the container web exited with code 3' })
    release()
    probe.close()
    expect(engine.openStreams).toBe(0)
  })

  it('a stream from the create that ends before the first read is started again by that read, from the container\'s start', async () => {
    const engine = engineWithWeb()
    let first = true
    const dropsFirstStream = {
      run: engine.run.bind(engine),
      stream: (argv: readonly string[], options: Parameters<FakeDockerEngine['stream']>[1]) => {
        const stream = engine.stream(argv, options)
        if (first) {
          first = false
          stream.stop()
        }
        return stream
      }
    }
    const probe = containerStateProbe(new DockerClient(dropsFirstStream), 'web')
    probe.followFromCreation(engine.containers.get('web')?.id ?? '')
    await new Promise((resolve) => setImmediate(resolve))
    const controller = new AbortController()
    expect(await probe.observe(controller.signal)).toMatchObject({ verdict: 'ready' })
    expect(events(engine)).toHaveLength(2)
    expect(events(engine)[1]).toMatch(/--since 2026-01-01T00:00:01.000Z$/)
    // Followed again: a crash is seen from its event, with no read.
    const reads = inspects(engine).length
    engine.crash('web', { exitCode: 4 })
    expect(await probe.nextChange?.(controller.signal)).toBe('changed')
    expect(await probe.observe(controller.signal)).toEqual({ verdict: 'failed', detail: 'the container web exited with code 4' })
    expect(inspects(engine)).toHaveLength(reads)
    probe.close()
    expect(engine.openStreams).toBe(0)
  })

  it('parses docker events lines, and leaves out what is not a container event', () => {
    const line = JSON.stringify({
      status: 'health_status: unhealthy',
      id: 'abc',
      Type: 'container',
      Action: 'health_status: unhealthy',
      Actor: { ID: 'abc', Attributes: { name: 'web', image: 'x' } },
      scope: 'local',
      time: 1,
      timeNano: 1000
    })
    expect(parseContainerEvent(line)).toEqual({ action: 'health_status', detail: 'unhealthy', id: 'abc', name: 'web', attributes: { name: 'web', image: 'x' }, timeNano: 1000 })
    expect(parseContainerEvent('{"Type":"network","Action":"connect","Actor":{"ID":"n"}}')).toBeUndefined()
    expect(parseContainerEvent('not json')).toBeUndefined()
  })

  it('never lets a name or a since value become an option', () => {
    const docker = new DockerClient(new FakeDockerEngine())
    expect(() => docker.containerEvents(['--privileged'], { onEvent: () => undefined })).toThrow('not a docker object name')
    expect(() => docker.containerEvents(['web'], { since: '--until=1', onEvent: () => undefined })).toThrow('not a docker timestamp')
    expect(() => docker.containerEvents([], { onEvent: () => undefined })).toThrow('at least one container')
  })
})

describe('the deploy story with docker events (replace, in memory)', () => {
  const settings = (tag: string): DeploySettings =>
    testSettings({
      image: 'registry.test/acme/web',
      tag,
      health: { expectStatus: [200], headers: {}, intervalMs: 100, timeoutMs: 500, deadlineMs: 5_000, healthyThreshold: 2, watchMs: 1_000 }
    })
  let restoreWrite: (() => void) | undefined
  beforeAll(() => {
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation(() => true)
    restoreWrite = () => spy.mockRestore()
  })
  afterAll(() => restoreWrite?.())

  async function seeded(): Promise<FakeDockerEngine> {
    const engine = new FakeDockerEngine()
    expect((await runStory(engine, settings('v1'))).outcome.kind).toBe('deployed')
    return engine
  }

  it('verifies with one stream and no polled inspect, and leaves no stream open after the main and post steps', async () => {
    const engine = await seeded()
    const base = engine.commands.length
    const run = await runStory(engine, settings('v2'))
    expect(run.outcome.kind).toBe('deployed')
    // One stream, subscribed after the create and before the start; from the start on, one read.
    const commands = engine.commands.slice(base)
    const start = commands.lastIndexOf('container start web')
    const streams = commands.flatMap((command, index) => (command.startsWith('events ') ? [index] : []))
    expect(streams).toHaveLength(1)
    expect(streams[0]).toBeGreaterThan(commands.findIndex((command) => command.startsWith('container create --name web-next')))
    expect(streams[0]).toBeLessThan(start)
    expect(commands.slice(start + 1).filter((command) => command === 'container inspect web')).toHaveLength(1)
    expect(engine.openStreams).toBe(0)
  })

  it('a version that dies at start: the verdict comes from the die event of the stream begun at its create, with no read', async () => {
    const engine = await seeded()
    engine.images.add('registry.test/acme/web:v2')
    engine.crashingImages.add('registry.test/acme/web:v2')
    const base = engine.commands.length
    const run = await runStory(engine, settings('v2'))
    expect(run.outcome.kind).toBe('rolled-back')
    expect(run.outcome.kind === 'rolled-back' && run.outcome.failure.reason).toMatch(/^the container web exited with code 1 \(/)
    const commands = engine.commands.slice(base)
    const start = commands.indexOf('container start web')
    // The health check sent nothing: what comes next is the evidence for the report.
    expect(commands[start + 1]).toMatch(/^container logs /)
    expect(engine.describe('web')).toMatchObject({ container: { tag: 'v1', running: true }, serves: true })
    expect(engine.openStreams).toBe(0)
  })

  it.each(['before', 'after'] as const)('a fault on both events commands (%s): polling takes over, and the deploy ends as without it', async (mode) => {
    const engine = await seeded()
    // The stream from the create, then the one the first read starts again.
    engine.faultRule = { match: (argv) => argv[0] === 'events', mode, times: 2 }
    const base = engine.commands.length
    const run = await runStory(engine, settings('v2'))
    expect(engine.injected.map((fault) => fault.argv[0])).toEqual(['events', 'events'])
    expect(run.outcome.kind).toBe('deployed')
    expect(engine.commands.slice(base).filter((command) => command === 'container inspect web').length).toBeGreaterThan(5)
    expect(engine.openStreams).toBe(0)
  })

  it.each(['before', 'after'] as const)('a fault on the stream from the create (%s): the first read starts it again, and nothing is polled', async (mode) => {
    const engine = await seeded()
    engine.faultRule = { match: (argv) => argv[0] === 'events', mode, times: 1 }
    const base = engine.commands.length
    const run = await runStory(engine, settings('v2'))
    expect(engine.injected.map((fault) => fault.argv[0])).toEqual(['events'])
    expect(run.outcome.kind).toBe('deployed')
    const commands = engine.commands.slice(base)
    expect(commands.filter((command) => command.startsWith('events '))).toHaveLength(2)
    expect(commands.slice(commands.indexOf('container start web') + 1).filter((command) => command === 'container inspect web')).toHaveLength(1)
    expect(engine.openStreams).toBe(0)
  })

  it('a switch docker cut off after the old version stopped: the reason is docker\'s error, not the stopped old container\'s exit', async () => {
    const engine = await seeded()
    engine.faultRule = { match: (argv) => argv[0] === 'container' && argv[1] === 'rename' && argv[2] === 'web', mode: 'before', times: 1 }
    const run = await runStory(engine, settings('v2'))
    expect(run.outcome.kind).toBe('rolled-back')
    const reason = run.outcome.kind === 'rolled-back' ? run.outcome.failure.reason : ''
    expect(reason).toMatch(/injected fault at docker command \d+: docker container rename web web-previous/)
    expect(reason).not.toMatch(/the container web exited/)
    expect(engine.openStreams).toBe(0)
  })

  it('a crash during the watch, seen by its die event, rolls back to v1', async () => {
    const engine = await seeded()
    let crashed = false
    engine.onCommand = (_index, argv) => {
      if (argv[0] !== 'events' || crashed) return
      crashed = true
      setImmediate(() => engine.crash('web', { exitCode: 2 }))
    }
    const run = await runStory(engine, settings('v2'))
    expect(run.outcome.kind).toBe('rolled-back')
    expect(run.outcome.kind === 'rolled-back' && run.outcome.failure.reason).toMatch(/^the container web exited with code 2, during the watch/)
    expect(engine.describe('web')).toMatchObject({ container: { tag: 'v1', running: true }, serves: true })
    expect(engine.openStreams).toBe(0)
  })
})

describe('untilStateFails', () => {
  /** A polled probe that answers `looks` in order (an Error is a read that failed), then the last one again. */
  function scripted(looks: (StateObservation | Error)[]): StateProbe & { reads: number } {
    const probe = {
      reads: 0,
      observe: async (): Promise<StateObservation> => {
        const look = looks[Math.min(probe.reads++, looks.length - 1)] as StateObservation | Error
        if (look instanceof Error) throw look
        return look
      }
    }
    return probe
  }

  it('resolves with the first failed look; a read that fails is no verdict and is read again', async () => {
    const probe = scripted([{ verdict: 'starting', detail: 'starting' }, new Error('docker unreachable'), { verdict: 'ready', detail: 'runs' }, { verdict: 'failed', detail: 'the container web exited with code 1' }])
    const seen = await untilStateFails(probe, { signal: new AbortController().signal, clock: virtualClock(), pollMs: 150 })
    expect(seen).toEqual({ verdict: 'failed', detail: 'the container web exited with code 1' })
    expect(probe.reads).toBe(4)
  })

  it('resolves undefined once its signal aborts, while the state stays good', async () => {
    const probe = scripted([{ verdict: 'ready', detail: 'runs' }])
    const done = new AbortController()
    const clock = virtualClock()
    const waiting = untilStateFails(probe, { signal: done.signal, clock, pollMs: 150 })
    await clock.sleep(1_000)
    done.abort()
    await expect(waiting).resolves.toBeUndefined()
    expect(probe.reads).toBeGreaterThan(3)
  })
})
