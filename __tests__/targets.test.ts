/**
 * Issue 20: rollback targets that exist, and a dry run that proves something. The registry check
 * (`docker manifest inspect`, read from the CLI's debug lines), the rollback that goes straight to
 * what ran before when the target's image is missing, the dry run's tag check, and what the host
 * keeps from before the version that runs now.
 */
import { describe, expect, it } from '@jest/globals'
import { Label } from '../src/constants.js'
import { DockerClient } from '../src/docker/client.js'
import { deploy } from '../src/main.js'
import { describeOutcome } from '../src/report/outcome-text.js'
import { Reporter } from '../src/report/reporter.js'
import type { DeploySettings } from '../src/settings.js'
import { keptRelease } from '../src/strategies/kept-release.js'
import { FakeDockerEngine } from '../test-support/fake-docker-engine.js'
import { RecordingRunner } from '../test-support/recording-runner.js'
import { testSettings } from '../test-support/settings.js'
import { captureActionStdout } from '../test-support/stdout.js'
import { storyDependencies } from '../test-support/story.js'

const IMAGE = '127.0.0.1:5999/acme/web'
const stdout = captureActionStdout()

/** What docker 20.10 and 28 print (captured against docker-registry 2.8 with htpasswd auth). */
const DEBUG = (message: string): string => `time="2026-12-02T22:14:26Z" level=debug msg="${message}"`
const STDERR = {
  absent: [DEBUG('continuing on error (errcode.Errors) manifest unknown: manifest unknown'), DEBUG('continuing on error (errcode.Errors) manifest unknown: manifest unknown'), `no such manifest: ${IMAGE}:v0`].join('\n'),
  refusedLogin: [DEBUG('continuing on error (errcode.Errors) unauthorized: authentication required'), `no such manifest: ${IMAGE}:v1`].join('\n'),
  plainHttpSkipped: [DEBUG('skipping non-tls registry endpoint: http://127.0.0.1:5999'), `no such manifest: ${IMAGE}:v1`].join('\n'),
  noCredentials: [DEBUG('not continuing on error (*url.Error) Get \\"http://127.0.0.1:5999/v2/acme/web/manifests/v1\\": no basic auth credentials'), `Get "http://127.0.0.1:5999/v2/acme/web/manifests/v1": no basic auth credentials`].join('\n'),
  unreachable: 'failed to configure transport: error pinging v2 registry: Get "https://127.0.0.1:9/v2/": dial tcp 127.0.0.1:9: connect: connection refused'
}

describe('DockerClient.registryHasImage', () => {
  it('asks with docker manifest inspect, --insecure only for a registry on the loopback', async () => {
    const runner = new RecordingRunner().answer(['--debug', 'manifest'], { exitCode: 0, stdout: '{"schemaVersion": 2}' })
    const docker = new DockerClient(runner)
    await expect(docker.registryHasImage(`${IMAGE}:v1`)).resolves.toEqual({ answer: 'present' })
    await expect(docker.registryHasImage('ghcr.io/acme/web:v1')).resolves.toEqual({ answer: 'present' })
    await expect(docker.registryHasImage('localhost:5000/web:v1')).resolves.toEqual({ answer: 'present' })
    expect(runner.commands).toEqual([
      `--debug manifest inspect --insecure ${IMAGE}:v1`,
      '--debug manifest inspect ghcr.io/acme/web:v1',
      '--debug manifest inspect --insecure localhost:5000/web:v1'
    ])
  })

  it('is absent only when every endpoint answered manifest unknown; no such manifest alone is not enough', async () => {
    const answer = async (stderr: string): Promise<unknown> => new DockerClient(new RecordingRunner().answer(['--debug'], { exitCode: 1, stderr })).registryHasImage(`${IMAGE}:v1`)
    await expect(answer(STDERR.absent)).resolves.toEqual({ answer: 'absent' })
    await expect(answer(STDERR.refusedLogin)).resolves.toEqual({ answer: 'unknown', reason: 'unauthorized: authentication required' })
    await expect(answer(STDERR.plainHttpSkipped)).resolves.toMatchObject({ answer: 'unknown' })
    await expect(answer(STDERR.noCredentials)).resolves.toEqual({ answer: 'unknown', reason: 'Get "http://127.0.0.1:5999/v2/acme/web/manifests/v1": no basic auth credentials' })
    await expect(answer(STDERR.unreachable)).resolves.toEqual({ answer: 'unknown', reason: STDERR.unreachable })
    await expect(answer(`no such manifest: ${IMAGE}:v1`)).resolves.toMatchObject({ answer: 'unknown' })
  })

  it('a docker CLI that was stopped (time-out) is unknown too', async () => {
    const docker = new DockerClient({ run: () => Promise.reject(new Error('docker --debug did not finish within 30 s and was stopped')) })
    await expect(docker.registryHasImage(`${IMAGE}:v1`)).resolves.toEqual({ answer: 'unknown', reason: 'docker --debug did not finish within 30 s and was stopped' })
  })

  it('never sends what could be read as an option', async () => {
    const runner = new RecordingRunner()
    for (const reference of ['-x', '--insecure', `${IMAGE}`, `${IMAGE}:-v1`, `${IMAGE}:v1 --debug`, '']) {
      await expect(new DockerClient(runner).registryHasImage(reference)).rejects.toThrow(/not an image reference/)
    }
    expect(runner.calls).toEqual([])
  })
})

function engineWith(options: { running?: string; previous?: string; local?: string[] } = {}): FakeDockerEngine {
  const engine = new FakeDockerEngine()
  for (const tag of ['v2', ...(options.local ?? [])]) engine.images.add(`${IMAGE}:${tag}`)
  const labelled = (tag: string): Record<string, string> => ({ [Label.Tag]: tag, [Label.Image]: IMAGE })
  if (options.running) engine.add({ name: 'web', image: `${IMAGE}:${options.running}`, running: true, labels: labelled(options.running) })
  if (options.previous) engine.add({ name: 'web-previous', image: `${IMAGE}:${options.previous}`, running: false, labels: labelled(options.previous) })
  return engine
}

async function run(settings: DeploySettings, engine: FakeDockerEngine): Promise<Awaited<ReturnType<typeof deploy>>> {
  return deploy(settings, new Reporter(), storyDependencies({ engines: { local: engine } }))
}

describe('a failed deploy whose rollback target has no image', () => {
  const failing = (to: DeploySettings['rollback']['to']): DeploySettings => testSettings({ tag: 'v2', rollback: { onFailure: true, to } })

  it('goes straight to what ran before, without a pull of the target, and says so', async () => {
    const engine = engineWith({ running: 'v1' })
    engine.crashingImages.add(`${IMAGE}:v2`)
    engine.missingInRegistry.add(`${IMAGE}:v0-gone`)
    const settings = failing({ kind: 'tag', tag: 'v0-gone' })
    const outcome = await run(settings, engine)
    expect(outcome).toMatchObject({ kind: 'rolled-back', restore: { release: { tag: 'v1' }, targetFailed: { tag: 'v0-gone' } } })
    expect(engine.commands).toContain(`--debug manifest inspect --insecure ${IMAGE}:v0-gone`)
    expect(engine.commands.filter((command) => command.startsWith('pull'))).toEqual([`pull ${IMAGE}:v2`])
    expect(engine.describe('web')).toMatchObject({ container: { tag: 'v1', running: true }, serves: true })
    expect(stdout.text()).toMatch(/::warning title=Rollback · target::The rollback to v0-gone failed \(127\.0\.0\.1:5999\/acme\/web:v0-gone is not in the registry \(docker manifest inspect: manifest unknown\), so no pull was tried\); putting back v1, which ran before\./)
    const text = describeOutcome(outcome, settings, { tag: 'v1' })
    expect(text.headline).toMatch(/The rollback to v0-gone failed \(.*is not in the registry.*\), so v1, which ran before, was put back: it runs now and is healthy\.$/)
  })

  it('a registry that cannot say is not absent: the restore tries the pull as before', async () => {
    const engine = engineWith({ running: 'v1' })
    engine.crashingImages.add(`${IMAGE}:v2`)
    engine.missingInRegistry.add(`${IMAGE}:v0-gone`)
    engine.registryUnreachable = true
    const outcome = await run(failing({ kind: 'tag', tag: 'v0-gone' }), engine)
    expect(outcome).toMatchObject({ kind: 'rolled-back', restore: { release: { tag: 'v1' }, targetFailed: { tag: 'v0-gone' } } })
    expect(engine.commands).toContain(`pull ${IMAGE}:v0-gone`)
  })

  it('a target only the host still has is put back from that copy', async () => {
    const engine = engineWith({ running: 'v1', local: ['v0'] })
    engine.crashingImages.add(`${IMAGE}:v2`)
    engine.missingInRegistry.add(`${IMAGE}:v0`)
    const outcome = await run(failing({ kind: 'tag', tag: 'v0' }), engine)
    expect(outcome).toMatchObject({ kind: 'rolled-back', restore: { release: { tag: 'v0' } } })
    expect(outcome.kind === 'rolled-back' && outcome.restore.targetFailed).toBeFalsy()
    expect(engine.describe('web')).toMatchObject({ container: { tag: 'v0', running: true } })
  })

  it('what ran before is never checked: it is kept on the host', async () => {
    const engine = engineWith({ running: 'v1' })
    engine.crashingImages.add(`${IMAGE}:v2`)
    await run(failing({ kind: 'previous' }), engine)
    expect(engine.commands.filter((command) => command.includes('manifest'))).toEqual([])
  })
})

describe('a dry run checks the tag in the registry, without pulling', () => {
  const dry = (overrides: Partial<DeploySettings> = {}): DeploySettings => testSettings({ dryRun: true, tag: 'v2', ...overrides })

  it('a tag the registry has: planned, after a real login into the run’s docker config', async () => {
    const engine = engineWith({ running: 'v1' })
    const outcome = await run(dry({ registry: { server: '127.0.0.1:5999', username: 'ci', password: 'pw' } }), engine)
    expect(outcome).toMatchObject({ kind: 'planned' })
    expect(engine.commands).toContain('login --username ci --password-stdin 127.0.0.1:5999')
    expect(engine.commands).toContain(`--debug manifest inspect --insecure ${IMAGE}:v2`)
    expect(engine.commands.some((command) => command.startsWith('pull'))).toBe(false)
  })

  it('a missing tag: failed, with a clear reason, and nothing changed', async () => {
    const engine = engineWith({ running: 'v1' })
    engine.missingInRegistry.add(`${IMAGE}:v9`)
    const before = JSON.stringify(engine.describe('web'))
    const outcome = await run(dry({ tag: 'v9' }), engine)
    expect(outcome).toMatchObject({ kind: 'failed-before-switch', stage: 'pull', reason: expect.stringContaining(`${IMAGE}:v9 is not in the registry`) })
    expect(JSON.stringify(engine.describe('web'))).toBe(before)
    expect(engine.commands.filter((command) => /^(pull|container (create|rm|rename|start|stop)|login)/.test(command))).toEqual([])
  })

  it('a registry that cannot say: a warning, and the plan goes on', async () => {
    const engine = engineWith({ running: 'v1' })
    engine.registryUnreachable = true
    const outcome = await run(dry(), engine)
    expect(outcome).toMatchObject({ kind: 'planned' })
    expect(stdout.text()).toMatch(/::warning title=Deploy · tag::Could not tell whether the registry holds 127\.0\.0\.1:5999\/acme\/web:v2: .*connection refused\. No registry credentials were given/)
  })
})

describe('command: rollback without a release', () => {
  const rollback = (rollbackTo?: string): DeploySettings => testSettings({ command: 'rollback', tag: rollbackTo })

  it('goes back to the version the host keeps from before the one that runs now, with a warning', async () => {
    const engine = engineWith({ running: 'v2', previous: 'v1' })
    engine.images.add(`${IMAGE}:v1`)
    const outcome = await run(rollback(), engine)
    expect(outcome).toMatchObject({ kind: 'rolled-back-on-request', release: { tag: 'v1' }, from: { tag: 'v2' } })
    expect(stdout.text()).toMatch(/::warning title=Rollback · target::No release to roll back to: the releases cannot be read: no github-token was given.*Rolling back to v1, which ran before v2 and is kept on the host\./)
  })

  it('rollback-to: previous is the same keyword as rollback.to: previous, releases or not', async () => {
    const engine = engineWith({ running: 'v2', previous: 'v1' })
    engine.images.add(`${IMAGE}:v1`)
    const outcome = await run(rollback('previous'), engine)
    expect(outcome).toMatchObject({ kind: 'rolled-back-on-request', release: { tag: 'v1' } })
    expect(engine.commands).not.toContain(`pull ${IMAGE}:previous`)
  })

  it('keeps the error when the host keeps nothing from before', async () => {
    const engine = engineWith({ running: 'v2' })
    const outcome = await run(rollback(), engine)
    expect(outcome).toMatchObject({ kind: 'failed-before-switch', reason: expect.stringMatching(/cannot be found: no github-token was given.*; the host keeps no version from before v2\. Set rollback-to/) })
    expect(engine.describe('web')).toMatchObject({ container: { tag: 'v2', running: true } })
  })
})

describe('keptRelease', () => {
  const labelled = (tag: string): Record<string, string> => ({ [Label.Tag]: tag, [Label.Image]: IMAGE })

  it('proxy: the idle slot, unless a version created after the live one (one that failed) took it', async () => {
    const settings = testSettings({ strategy: 'proxy' })
    const engine = new FakeDockerEngine()
    let now = Date.UTC(2026, 0, 1)
    engine.daemonNow = () => now
    const older = (name: string, tag: string, running: boolean): void => {
      now += 60_000
      engine.add({ name, image: `${IMAGE}:${tag}`, running, labels: labelled(tag), created: new Date(now).toISOString() })
    }
    older('web-green', 'v1', false)
    older('web-blue', 'v2', true)
    await expect(keptRelease(settings, new DockerClient(engine), { tag: 'v2' })).resolves.toMatchObject({ tag: 'v1' })
    older('web-green', 'v3-failed', false)
    await expect(keptRelease(settings, new DockerClient(engine), { tag: 'v2' })).resolves.toBeUndefined()
  })

  it('replace: <name>-previous; a docker error is thrown, never read as none', async () => {
    const engine = engineWith({ running: 'v2', previous: 'v1' })
    await expect(keptRelease(testSettings(), new DockerClient(engine), { tag: 'v2' })).resolves.toMatchObject({ tag: 'v1' })
    engine.unreachable = true
    await expect(keptRelease(testSettings(), new DockerClient(engine), { tag: 'v2' })).rejects.toThrow(/Cannot connect/)
  })
})
