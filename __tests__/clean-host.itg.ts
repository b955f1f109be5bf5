/**
 * Issue 12 on a real Docker Engine: the action leaves the host as clean as it found it.
 *
 * - Credentials: the registry login never lands in the job's docker config (`DOCKER_CONFIG`) nor
 *   in a credential helper, whether the deploy succeeds, fails, is cancelled or is killed (then
 *   the post step removes it); what was there before, credentials and contexts, is untouched.
 * - Images: each host keeps `retain` images of the app, never one a container uses, and loses a
 *   version that failed verification once the rollback is done; the summary says what was freed.
 * - Hook containers: a cancelled pre-deploy hook is stopped and removed, and the lock is never
 *   released while it runs.
 * - The lock's lease: judged by the daemon's clock (creation + lease-ms, renewals in the lock
 *   container), renewed while a deploy works.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals'
import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DockerClient } from '../src/docker/client.js'
import { ProcessDockerRunner } from '../src/docker/runner.js'
import { DeployLock, FleetLock, LEASE_FILE, LOCK_IMAGE, LockLabel, LockTimeoutError } from '../src/lock.js'
import { singleFileTar } from '../src/proxy/config-archive.js'
import { runAction, type ActionControl, type ActionResult } from '../test-support/action-run.js'
import type { Engine } from '../test-support/engine.js'
import { makeSite, pushAppImages, runStep, siteConfig, startFixture, transcriptOf, type AppImageSpec, type Fixture, type Site } from '../test-support/fixture.js'
import { freePortBelowEphemeralRange, httpGet } from '../test-support/net.js'
import { sleep } from '../test-support/proc.js'
import type { Registry } from '../test-support/registry.js'

const HEALTHY_BODY = 'status: green'
const IMAGES: AppImageSpec[] = [
  { tag: 'v1', behaviour: 'healthy' },
  { tag: 'v2', behaviour: 'healthy' },
  { tag: 'v3', behaviour: 'healthy' },
  { tag: 'v4', behaviour: 'healthy' },
  { tag: 'v5', behaviour: 'healthy' },
  { tag: 'v6-broken', behaviour: 'never-listens' }
]
/** Credentials, hooks and the lease deploy this repository; the retention test has its own. */
const APP_REPO = 'acme/clean'
const RETAIN_REPO = 'acme/retain'

let fixture: Fixture
let engine: Engine
let registry: Registry

jest.setTimeout(180_000)

function tempDir(prefix: string): string {
  return fixture.dirs.make(`clean-host-${prefix}-`)
}

beforeAll(async () => {
  fixture = await startFixture()
  ;({ engine, registry } = fixture)
  for (const repo of [APP_REPO, RETAIN_REPO]) {
    // Built once per repository, with a file of its own: no image and no layer is shared, so
    // the space an image removal frees is its size.
    const images = IMAGES.map(({ tag, behaviour }) => ({ tag, behaviour, options: { healthBody: HEALTHY_BODY, files: { '/www/repository': { content: repo } } } }))
    await pushAppImages(fixture, repo, images, { localRepo: `local/${repo.replace('/', '-')}` })
  }
}, 120_000)

afterAll(async () => {
  await fixture?.stop()
}, 60_000)

async function site(name: string, repo: string, extra: string[] = []): Promise<Site & { image: string }> {
  const image = `${registry.address}/${repo}`
  const config = ({ port }: Site): string => siteConfig({ image, name, port, expectBody: HEALTHY_BODY, tail: extra })
  // Checked free, below the ephemeral range: a random port could be taken (CI saw a first deploy
  // fail at once while another suite ran beside it).
  return { ...(await makeSite(fixture.dirs, name, config, { port: await freePortBelowEphemeralRange() })), image }
}

/** The end of a run's output, for a failure message (these runs print a lot). */
function explain(result: ActionResult): string {
  return transcriptOf(result, { tail: true })
}

/** Private docker config directories the action left in `runnerTemp`. */
function privateConfigsIn(runnerTemp: string): string[] {
  return readdirSync(runnerTemp).filter((entry) => entry.startsWith('deploy-action-docker-config-'))
}

describe('credentials', () => {
  /** The job's docker config as a developer's machine or a long-lived runner has it. */
  let home: string
  let homeConfig: string
  let helperLog: string
  let bin: string
  const contextMeta = (): string[] => readdirSync(join(home, 'contexts', 'meta'))

  beforeAll(async () => {
    home = tempDir('home')
    helperLog = join(tempDir('helper'), 'calls.log')
    writeFileSync(helperLog, '')
    // Credential helpers a desktop would have: each records how it was called and stores nothing.
    bin = tempDir('bin')
    for (const helper of ['desktop', 'pass', 'secretservice']) {
      const script = join(bin, `docker-credential-${helper}`)
      writeFileSync(script, `#!/bin/sh\necho "${helper} $1 $(cat)" >> ${helperLog}\n[ "$1" = list ] && echo '{}' && exit 0\necho "credentials not found in native keychain"\nexit 1\n`)
      chmodSync(script, 0o755)
    }
    // A context that points at the engine, chosen in config.json: the action finds the engine only through it.
    await engine.docker(['--config', home, 'context', 'create', 'deploy-target', '--docker', `host=${engine.dockerHost}`])
    const other = Buffer.from('alice:keep-me').toString('base64')
    writeFileSync(
      join(home, 'config.json'),
      JSON.stringify({ auths: { 'other-registry.example:5000': { auth: other } }, credsStore: 'desktop', credHelpers: { 'gcr.io': 'gcloud' }, currentContext: 'deploy-target' }, null, 2)
    )
    homeConfig = readFileSync(join(home, 'config.json'), 'utf8')
  })

  async function run(target: Site, tag: string, runnerTemp: string, extra: { signalAfter?: { signal: NodeJS.Signals; whenStdout: RegExp }; phase?: 'post'; state?: Record<string, string> } = {}): Promise<ActionResult> {
    return runStep(fixture, target, { tag }, {
      // No DOCKER_HOST: the engine is reached through the job's docker context.
      dockerHost: undefined,
      dockerConfig: home,
      env: { PATH: `${bin}:${process.env.PATH ?? ''}`, RUNNER_TEMP: runnerTemp },
      timeoutMs: 90_000,
      ...extra
    })
  }

  /** Nothing the action wrote stays in the job's config; what was there is as it was. */
  function expectHomeUntouched(): void {
    expect(readFileSync(join(home, 'config.json'), 'utf8')).toBe(homeConfig)
    expect(readdirSync(home).sort()).toEqual(['config.json', 'contexts'])
    expect(contextMeta()).toHaveLength(1)
    const calls = readFileSync(helperLog, 'utf8')
    expect(calls).not.toMatch(/ store /)
    expect(calls).not.toContain(registry.password)
  }

  it('a deploy that succeeds logs in through a private config, reaches the engine through the job’s context, and removes the login', async () => {
    const target = await site('cred-ok', APP_REPO)
    const runnerTemp = tempDir('rt')
    const result = await run(target, 'v1', runnerTemp)
    expect([explain(result), result.exitCode]).toEqual([explain(result), 0])
    // The registry needs the login: the pull worked, so the private config held it.
    expect((await httpGet(`http://127.0.0.1:${target.port}/version`)).body).toBe('v1')
    expectHomeUntouched()
    expect(privateConfigsIn(runnerTemp)).toEqual([])
    expect(JSON.parse(result.state['run'] ?? '{}').dockerConfig).toBeUndefined()
  })

  it('a deploy that fails and rolls back leaves no login behind either', async () => {
    const target = await site('cred-fail', APP_REPO)
    const runnerTemp = tempDir('rt')
    expect((await run(target, 'v1', runnerTemp)).exitCode).toBe(0)
    const result = await run(target, 'v6-broken', runnerTemp)
    expect([explain(result), result.exitCode, result.outputs['result']]).toEqual([explain(result), 1, 'rolled-back'])
    expectHomeUntouched()
    expect(privateConfigsIn(runnerTemp)).toEqual([])
  })

  it('a cancelled deploy removes its login in the main step; the post step restores with a login of its own and removes that too', async () => {
    const target = await site('cred-cancel', APP_REPO)
    const runnerTemp = tempDir('rt')
    expect((await run(target, 'v1', runnerTemp)).exitCode).toBe(0)
    const main = await run(target, 'v2', runnerTemp, { signalAfter: { signal: 'SIGINT', whenStdout: /Deploy · verify/ } })
    expect(main.exitCode).toBe(1)
    expect(privateConfigsIn(runnerTemp)).toEqual([])
    const post = await run(target, 'v2', runnerTemp, { phase: 'post', state: main.state })
    expect([explain(post), post.exitCode]).toEqual([explain(post), 0])
    expect(privateConfigsIn(runnerTemp)).toEqual([])
    expectHomeUntouched()
  })

  it('a killed main step leaves its private config, with the login, only until the post step removes it', async () => {
    const target = await site('cred-kill', APP_REPO)
    const runnerTemp = tempDir('rt')
    expect((await run(target, 'v1', runnerTemp)).exitCode).toBe(0)
    const main = await run(target, 'v2', runnerTemp, { signalAfter: { signal: 'SIGKILL', whenStdout: /Deploy · verify/ } })
    expect(main.signal).toBe('SIGKILL')
    const left = privateConfigsIn(runnerTemp)
    expect(left).toHaveLength(1)
    const saved = JSON.parse(main.state['run'] ?? '{}') as { dockerConfig?: string }
    expect(saved.dockerConfig).toBe(join(runnerTemp, left[0] ?? ''))
    // Where the login went: the private file, never the job's.
    const privateConfig = JSON.parse(readFileSync(join(runnerTemp, left[0] ?? '', 'config.json'), 'utf8')) as { auths: Record<string, unknown>; credsStore?: string }
    expect(Object.keys(privateConfig.auths)).toContain(registry.address)
    expect(privateConfig.credsStore).toBeUndefined()
    expectHomeUntouched()

    const post = await run(target, 'v2', runnerTemp, { phase: 'post', state: main.state })
    expect([explain(post), post.exitCode]).toEqual([explain(post), 0])
    expect(privateConfigsIn(runnerTemp)).toEqual([])
    expectHomeUntouched()
  })

  it('credentials the job already had (docker/login-action before this step) are used and left as they were', async () => {
    const loggedIn = tempDir('home-logged-in')
    await registry.login(engine, loggedIn)
    const before = readFileSync(join(loggedIn, 'config.json'), 'utf8')
    expect(before).toContain(registry.address)
    const target = await site('cred-existing', APP_REPO)
    const runnerTemp = tempDir('rt')
    const result = await runAction({
      workspace: target.workspace,
      dockerHost: engine.dockerHost,
      dockerConfig: loggedIn,
      inputs: { tag: 'v1' },
      env: { RUNNER_TEMP: runnerTemp },
      timeoutMs: 60_000
    })
    expect([explain(result), result.exitCode]).toEqual([explain(result), 0])
    expect(readFileSync(join(loggedIn, 'config.json'), 'utf8')).toBe(before)
    expect(privateConfigsIn(runnerTemp)).toEqual([])
  })
})

describe('images', () => {
  const repositoryImages = async (image: string): Promise<string[]> =>
    (await engine.docker(['image', 'ls', '--format', '{{.Tag}}', image])).split('\n').filter(Boolean).sort()
  const totalSize = async (image: string): Promise<number> => {
    const ids = (await engine.docker(['image', 'ls', '--quiet', '--no-trunc', image])).split('\n').filter(Boolean)
    if (ids.length === 0) return 0
    const sizes = (await engine.docker(['image', 'inspect', '--format', '{{.Size}}', ...ids])).split('\n').filter(Boolean)
    return sizes.reduce((sum, size) => sum + Number(size), 0)
  }

  it('with retain: 2, five deploys leave two images; a failed version goes after its rollback; the summary says what was freed', async () => {
    const target = await site('retained', RETAIN_REPO, ['retain: 2'])
    const counts: number[] = []
    let last: ActionResult | undefined
    let sizeBefore = 0
    for (const tag of ['v1', 'v2', 'v3', 'v4', 'v5']) {
      if (tag === 'v5') sizeBefore = await totalSize(target.image)
      last = await runStep(fixture, target, { tag }, { timeoutMs: 60_000 })
      expect([explain(last), last.exitCode]).toEqual([explain(last), 0])
      counts.push((await repositoryImages(target.image)).length)
    }
    expect(counts).toEqual([1, 2, 2, 2, 2])
    expect(await repositoryImages(target.image)).toEqual(['v4', 'v5'])
    // Running v5, v4 kept as -previous: both images in use, both kept.
    expect((await engine.docker(['container', 'ls', '--all', '--format', '{{.Names}} {{.Image}}'])).split('\n')).toEqual(
      expect.arrayContaining([`retained ${target.image}:v5`, `retained-previous ${target.image}:v4`])
    )
    const freedOnDisk = sizeBefore + (await totalSizeOf(target.image, 'v5')) - (await totalSize(target.image))
    const summary = last?.summary ?? ''
    expect(summary).toContain('<h3>Images</h3>')
    expect(summary).toMatch(/Removed 1 old image, freeing [\d.]+ (MB|kB)\./)
    expect(summary).toContain(`<code>${target.image}:v3</code>`)
    const reported = /freeing ([\d.]+) (MB|kB)/.exec(summary)
    const reportedBytes = Number(reported?.[1]) * (reported?.[2] === 'MB' ? 1e6 : 1e3)
    // The images share no layer here, so what the summary says is what left the disk.
    expect(Math.abs(reportedBytes - freedOnDisk)).toBeLessThan(0.06 * freedOnDisk)
    process.stdout.write(`images: retain 2 after 5 deploys keeps ${(await repositoryImages(target.image)).join(', ')}; the 5th deploy freed ${freedOnDisk} bytes, the summary says ${reported?.[0] ?? '?'}\n`)

    const failed = await runStep(fixture, target, { tag: 'v6-broken' }, { timeoutMs: 60_000 })
    expect([explain(failed), failed.exitCode, failed.outputs['result']]).toEqual([explain(failed), 1, 'rolled-back'])
    expect(await repositoryImages(target.image)).toEqual(['v4', 'v5'])
    expect(failed.summary).toContain(`<code>${target.image}:v6-broken</code>`)
    expect((await httpGet(`http://127.0.0.1:${target.port}/version`)).body).toBe('v5')
  }, 240_000)

  async function totalSizeOf(image: string, tag: string): Promise<number> {
    return Number((await engine.docker(['image', 'inspect', '--format', '{{.Size}}', `${image}:${tag}`])).trim())
  }
})

describe('hook containers', () => {
  it('a cancelled pre-deploy hook is stopped and removed at once, and the lock is released only by the post step, after it', async () => {
    const target = await site('hooked', APP_REPO, ['hooks:', '  pre-deploy: [["/bin/sleep", "300"]]'])
    const samples: { hook: boolean; lock: boolean }[] = []
    let watching = true
    let signalled = false
    let control: ActionControl | undefined
    const watcher = (async () => {
      while (watching) {
        const names = (await engine.dockerResult(['container', 'ls', '--all', '--format', '{{.Names}}'])).stdout.split('\n')
        const sample = { hook: names.includes('hooked-hook'), lock: names.includes('hooked-deploy-lock') }
        samples.push(sample)
        if (sample.hook && !signalled && control) {
          signalled = true
          control.signal('SIGINT')
        }
        await sleep(100)
      }
    })()
    const main = await runStep(fixture, target, { tag: 'v1' }, {
      onStdout: (_chunk, handle) => {
        control = handle
      },
      timeoutMs: 60_000
    })
    const afterMain = await engine.docker(['container', 'ls', '--all', '--format', '{{.Names}}'])
    expect([explain(main), signalled, main.exitCode]).toEqual([explain(main), true, 1])
    // The main step removed the hook container (a `sleep 300` would still run otherwise) and kept the lock.
    expect(afterMain.split('\n')).not.toContain('hooked-hook')
    expect(afterMain.split('\n')).toContain('hooked-deploy-lock')

    const post = await runAction({ workspace: target.workspace, dockerHost: engine.dockerHost, phase: 'post', state: main.state, timeoutMs: 60_000 })
    watching = false
    await watcher
    expect([explain(post), post.exitCode]).toEqual([explain(post), 0])
    const names = (await engine.docker(['container', 'ls', '--all', '--format', '{{.Names}}'])).split('\n')
    expect(names).not.toContain('hooked-hook')
    expect(names).not.toContain('hooked-deploy-lock')
    // At no moment was the hook running without the lock held.
    expect(samples.some((sample) => sample.hook)).toBe(true)
    expect(samples.filter((sample) => sample.hook && !sample.lock)).toEqual([])
  }, 120_000)
})

describe('the lock’s lease, on the daemon’s clock', () => {
  const client = (): DockerClient => new DockerClient(new ProcessDockerRunner(engine.dockerHost, 'docker', engine.dockerConfig), { label: 'engine' })

  async function holdLock(name: string, labels: Record<string, string>): Promise<string> {
    if ((await engine.dockerResult(['image', 'inspect', LOCK_IMAGE])).exitCode !== 0) await engine.docker(['image', 'import', '-', LOCK_IMAGE], { input: Buffer.alloc(1024) })
    const args = ['container', 'create', '--name', `${name}-deploy-lock`, '--network', 'none']
    for (const [key, value] of Object.entries(labels)) args.push('--label', `${key}=${value}`)
    return (await engine.docker([...args, LOCK_IMAGE, 'deploy-action-lock'])).trim()
  }

  it('a lock whose lease ran out by the daemon’s clock is taken over, although its expires label (another runner’s clock) lies in the future', async () => {
    const target = await site('lease-stale', APP_REPO, ['lock:', '  timeout: 20s'])
    await holdLock('lease-stale', {
      [LockLabel.Owner]: 'run-41-dead',
      [LockLabel.Holder]: 'https://github.com/acme/web/actions/runs/41',
      [LockLabel.Expires]: '2099-01-01T00:00:00.000Z',
      [LockLabel.LeaseMs]: '3000'
    })
    const started = Date.now()
    const result = await runStep(fixture, target, { tag: 'v1' }, { timeoutMs: 60_000 })
    expect([explain(result), result.exitCode]).toEqual([explain(result), 0])
    expect(result.annotations.some((annotation) => annotation.level === 'warning' && /Took over an expired deploy lock/.test(annotation.message))).toBe(true)
    expect(Date.now() - started).toBeLessThan(20_000)
  })

  it('a lock renewed in its lease file is not taken over, although its first lease and its expires label have passed', async () => {
    const target = await site('lease-renewed', APP_REPO, ['lock:', '  timeout: 4s'])
    const id = await holdLock('lease-renewed', {
      [LockLabel.Owner]: 'run-41-alive',
      [LockLabel.Holder]: 'https://github.com/acme/web/actions/runs/41',
      [LockLabel.Expires]: '2001-01-01T00:00:00.000Z',
      [LockLabel.LeaseMs]: '1000'
    })
    const daemonNow = await client().daemonTime()
    await engine.docker(['container', 'cp', '-', `${id}:/`], { input: Buffer.from(singleFileTar(LEASE_FILE, JSON.stringify({ expires: new Date(daemonNow + 3_600_000).toISOString() })), 'latin1') })
    await sleep(1_500)
    const result = await runStep(fixture, target, { tag: 'v1' }, { timeoutMs: 60_000 })
    expect([explain(result), result.exitCode]).toEqual([explain(result), 1])
    expect(result.stdout).toMatch(/Another deploy holds the lock lease-renewed-deploy-lock/)
    expect((await engine.docker(['container', 'inspect', '--format', `{{index .Config.Labels "${LockLabel.Owner}"}}`, id])).trim()).toBe('run-41-alive')
  })

  it('a holder that renews keeps its lock past many leases; when it stops, a waiter takes over after one lease', async () => {
    const leaseMs = 3_000
    const holder = new FleetLock([{ lock: new DeployLock(client(), 'lease-live'), dockerHost: undefined }], 'run-50-a')
    await holder.acquire({ holder: 'https://github.com/acme/web/actions/runs/50', tag: 'v1', leaseMs, timeoutMs: 1_000 })
    holder.startRenewing({ leaseMs })
    const waiter = new DeployLock(client(), 'lease-live')
    const started = Date.now()
    const error = await waiter.acquire({ owner: 'run-51-a', holder: 'https://github.com/acme/web/actions/runs/51', tag: 'v2', leaseMs, timeoutMs: 3 * leaseMs, pollMs: 500 }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(LockTimeoutError)
    expect(Date.now() - started).toBeGreaterThanOrEqual(3 * leaseMs)
    // The lease file says until when, by the daemon's clock.
    const lease = JSON.parse((await client().readFileFrom('lease-live-deploy-lock', `/${LEASE_FILE}`)) ?? '{}') as { expires: string; owner: string }
    const daemonNow = await client().daemonTime()
    expect(lease.owner).toBe('run-50-a')
    expect(Date.parse(lease.expires)).toBeGreaterThan(daemonNow)
    expect(Date.parse(lease.expires)).toBeLessThanOrEqual(daemonNow + leaseMs)

    await holder.stopRenewing()
    const takenAt = Date.now()
    const taken = await waiter.acquire({ owner: 'run-51-a', holder: 'https://github.com/acme/web/actions/runs/51', tag: 'v2', leaseMs, timeoutMs: 4 * leaseMs, pollMs: 250 })
    expect(taken.tookOver.map((found) => found.owner)).toEqual(['run-50-a'])
    expect(Date.now() - takenAt).toBeLessThanOrEqual(leaseMs + 1_500)
    process.stdout.write(`lease: a renewing holder kept its lock for ${Date.now() - started - (Date.now() - takenAt)} ms with a ${leaseMs} ms lease; taken over ${Date.now() - takenAt} ms after renewals stopped\n`)
    await waiter.release('run-51-a')
  }, 60_000)
})
