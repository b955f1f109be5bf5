import { describe, expect, it } from '@jest/globals'
import { DockerClient } from '../src/docker/client.js'
import type { DockerResult, DockerRunner, DockerRunOptions } from '../src/docker/runner.js'
import { containerStateProbe } from '../src/health/state-probe.js'

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
