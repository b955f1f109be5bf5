/**
 * Faults on a real engine (issue 5): the bundled action meets an unreachable registry, a missing
 * tag, a missing engine, a port someone else holds, a rollback target that cannot be pulled, a
 * cancel during verify (then the post step), two deploys at once, a stale deploy lock, and a
 * version that crashes while watched. Each scenario asserts what serves afterwards, what
 * containers are left, the outputs and the exit code.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import type { ActionResult, RunActionOptions } from '../test-support/action-run.js'
import type { Engine } from '../test-support/engine.js'
import {
  annotation,
  containersNamed,
  expectDeployed,
  makeSite,
  postStep,
  pushAppImages,
  runStep,
  servedAt,
  siteConfig,
  startFixture,
  transcriptOf,
  type AppImageSpec,
  type Fixture,
  type Site
} from '../test-support/fixture.js'
import { freePort, httpGet } from '../test-support/net.js'

const REPO = 'acme/web'
const IMAGES: AppImageSpec[] = [
  { tag: 'v1', behaviour: 'healthy' },
  { tag: 'v2', behaviour: 'healthy' },
  { tag: 'v3', behaviour: 'healthy' },
  { tag: 'v4-exits', behaviour: 'exits' },
  { tag: 'v4-slow', behaviour: 'slow-start', options: { startDelaySeconds: 60 } },
  { tag: 'v4-crash', behaviour: 'crash-later', options: { crashAfterSeconds: 1 } }
]

let fixture: Fixture
let engine: Engine
let image: string

beforeAll(async () => {
  fixture = await startFixture()
  engine = fixture.engine
  image = `${fixture.registry.address}/${REPO}`
  await pushAppImages(fixture, REPO, IMAGES)
}, 90_000)

afterAll(async () => {
  await fixture?.stop()
}, 60_000)

interface SiteOptions {
  deadline?: string
  watch?: string
  rollbackTo?: string
  lockTimeout?: string
  port?: number
}

/** A workspace whose config runs `name` on a loopback port with fast health checks. */
function site(name: string, options: SiteOptions = {}): Promise<Site> {
  const config = ({ port }: Site): string =>
    siteConfig({
      image,
      name,
      port,
      expectBody: 'ok',
      deadline: options.deadline,
      rollbackTo: options.rollbackTo,
      health: options.watch ? [`  watch: ${options.watch}`] : [],
      tail: options.lockTimeout ? ['lock:', `  timeout: ${options.lockTimeout}`] : []
    })
  return makeSite(fixture.dirs, name, config, { port: options.port })
}

const deploy = (target: Site, tag: string, extra: Partial<RunActionOptions> = {}, inputs: Record<string, string> = {}): Promise<ActionResult> =>
  runStep(fixture, target, { tag, ...inputs }, { timeoutMs: 60_000, ...extra })

/** The post step of `main` for this site: same inputs as its main step. */
const postOf = (target: Site, main: ActionResult, tag: string): Promise<ActionResult> => postStep(fixture, target, main, { tag }, { timeoutMs: 60_000 })

async function deployOk(target: Site, tag: string): Promise<ActionResult> {
  return expectDeployed(await deploy(target, tag), tag)
}

/** What answers on the site's port: `200 <tag>`, or the connection error code. */
function serving(target: Site): Promise<string> {
  return servedAt(`http://127.0.0.1:${target.port}/version`)
}

/** Containers named after the site (the deploy lock included): name → tag label and state. */
function containersOf(target: Site): Promise<Record<string, { tag: string; state: string }>> {
  return containersNamed(engine, target.name)
}

/** Every container with everything that would show a change, for before/after comparisons. */
async function snapshot(target: Site): Promise<string> {
  const ids = (await engine.docker(['ps', '-aq', '--no-trunc', '--filter', `name=${target.name}`])).split('\n').filter(Boolean)
  if (ids.length === 0) return ''
  return engine.docker(['container', 'inspect', '--format', '{{.Id}} {{.Name}} {{.State.Status}} {{.State.StartedAt}} {{.RestartCount}}', ...ids])
}

/** Holds `<name>-deploy-lock` by hand, as another run would: the lock image and labels of the action. */
async function holdLock(target: Site, labels: Record<string, string>): Promise<void> {
  const present = await engine.dockerResult(['image', 'inspect', 'deploy-action-lock:v1'])
  if (present.exitCode !== 0) await engine.docker(['image', 'import', '-', 'deploy-action-lock:v1'], { input: Buffer.alloc(1024) })
  await engine.docker(['container', 'create', '--name', `${target.name}-deploy-lock`, '--network', 'none', ...Object.entries(labels).flatMap(([key, value]) => ['--label', `${key}=${value}`]), 'deploy-action-lock:v1', 'x'])
}

describe('faults before the switch leave the running version alone', () => {
  it('registry unreachable: failed, exit 1, v1 still serves, nothing left behind', async () => {
    const web = await site('regdown')
    await deployOk(web, 'v1')
    const before = await snapshot(web)
    const deadRegistry = `127.0.0.1:${await freePort()}`

    const result = await deploy(web, 'v2', {}, { image: `${deadRegistry}/${REPO}` })

    expect(result.exitCode).toBe(1)
    expect(result.outputs).toMatchObject({ result: 'failed', tag: 'v1', 'previous-tag': 'v1' })
    const failed = result.annotations.find((entry) => entry.level === 'error' && /^Deploy · (login|pull)$/.test(entry.title ?? ''))
    expect(failed?.message).toMatch(/connection refused|connect: /i)
    expect(annotation(result, 'error', 'Deploy failed')?.message).toMatch(/Nothing was changed: v1 still runs\.$/)
    expect(await serving(web)).toBe('200 v1')
    expect(await snapshot(web)).toBe(before)
  }, 60_000)

  it('image tag missing: failed at the pull, exit 1, v1 still serves', async () => {
    const web = await site('notag')
    await deployOk(web, 'v1')
    const before = await snapshot(web)

    const result = await deploy(web, 'v9-never-pushed')

    expect(result.exitCode).toBe(1)
    expect(result.outputs).toMatchObject({ result: 'failed', tag: 'v1', 'previous-tag': 'v1' })
    expect(annotation(result, 'error', 'Deploy · pull')?.message).toMatch(/not found|manifest unknown/i)
    expect(await serving(web)).toBe('200 v1')
    expect(await snapshot(web)).toBe(before)
  }, 60_000)

  it('docker daemon unreachable before the deploy: failed at once with docker’s reason, nothing claimed', async () => {
    const web = await site('nodaemon')
    const started = Date.now()
    const result = await deploy(web, 'v1', {}, { 'docker-host': `unix://${join(web.workspace, 'no-such.sock')}` })

    expect(Date.now() - started).toBeLessThan(10_000)
    expect(result.exitCode).toBe(1)
    expect(result.outputs).toMatchObject({ result: 'failed', tag: '', 'previous-tag': '' })
    const verdict = annotation(result, 'error', 'Deploy failed')?.message ?? ''
    expect(verdict).toMatch(/Cannot connect to the Docker daemon/)
    // It could not even read what runs, so it must not claim that nothing was running.
    expect(verdict).not.toMatch(/nothing was running/)
    expect(verdict).toMatch(/Nothing was changed\.$/)
  }, 30_000)
})

describe('faults after the switch', () => {
  let squatter: Server | undefined
  afterAll(async () => {
    await new Promise((resolve) => (squatter ? squatter.close(resolve) : resolve(undefined)))
  })

  it('host port already taken by another process: the first deploy fails, nothing half-started is left, the other process keeps its port', async () => {
    const port = await freePort()
    // Answers like a healthy app would, so only the container's own state can tell the truth.
    squatter = createServer((_request, response) => response.end('ok'))
    await new Promise<void>((resolve) => squatter?.listen(port, '127.0.0.1', resolve))
    const web = await site('squat', { port, deadline: '5s' })

    const result = await deploy(web, 'v1')

    expect(result.exitCode).toBe(1)
    expect(result.outputs).toMatchObject({ result: 'failed', tag: '', 'previous-tag': '' })
    expect(annotation(result, 'error', 'Deploy · verify')?.message).toMatch(/v1 is unhealthy: the container squat (?:is restarting after it )?exited with code 1/)
    expect(annotation(result, 'error', 'Deploy failed')?.message).toMatch(/nothing to roll back to \(first deploy\), so squat is not running/)
    expect(result.summary).toMatch(/Address in use|bind/i)
    expect(await containersOf(web)).toEqual({})
    expect((await httpGet(`http://127.0.0.1:${port}/health`)).body).toBe('ok')
  }, 60_000)

  it('rollback target image missing: falls back to the kept previous version, which serves', async () => {
    const web = await site('notarget', { rollbackTo: 'v0-gone' })
    await deployOk(web, 'v1')

    const result = await deploy(web, 'v4-exits')

    expect(result.exitCode).toBe(1)
    expect(result.outputs).toMatchObject({ result: 'rolled-back', tag: 'v1', 'previous-tag': 'v1' })
    expect(annotation(result, 'warning', 'Rollback · target')?.message).toMatch(/The rollback to v0-gone failed \(.*(not found|manifest unknown).*\); putting back v1, which ran before\./i)
    expect(annotation(result, 'error', 'Deploy failed, rolled back')?.message).toMatch(/so v1, which ran before, was put back: it runs now and is healthy\.$/)
    expect(await serving(web)).toBe('200 v1')
    expect(await containersOf(web)).toEqual({ notarget: { tag: 'v1', state: 'running' } })
  }, 60_000)

  it('a version that crashes during watch is rolled back; the job fails', async () => {
    const web = await site('crash', { watch: '3s', deadline: '5s' })
    await deployOk(web, 'v1')

    const result = await deploy(web, 'v4-crash')

    expect(result.exitCode).toBe(1)
    expect(result.outputs).toMatchObject({ result: 'rolled-back', tag: 'v1', 'previous-tag': 'v1' })
    expect(annotation(result, 'error', 'Deploy · verify')?.message).toMatch(/v4-crash is unhealthy: .*(exited with code 1|connection refused)/)
    expect(result.summary).toContain('crashed after 1 s (simulated)')
    expect(await serving(web)).toBe('200 v1')
    expect(await containersOf(web)).toEqual({ crash: { tag: 'v1', state: 'running' } })
  }, 60_000)
})

describe('cancellation', () => {
  it('SIGINT during verify: the main step stops at once and keeps the lock; the post step restores v1, verifies it and unlocks; a second post changes nothing', async () => {
    const web = await site('cancel', { deadline: '50s' })
    await deployOk(web, 'v1')

    let signalledAt = 0
    const main = await deploy(web, 'v4-slow', {
      onStdout: (_chunk, control) => {
        if (signalledAt === 0 && /::group::Deploy · verify/.test(_chunk)) {
          signalledAt = Date.now()
          control.signal('SIGINT')
        }
      }
    })
    const stoppedAfterMs = Date.now() - signalledAt

    expect(signalledAt).toBeGreaterThan(0)
    // The runner sends SIGTERM after 7.5 s; the main step must be gone well before.
    expect(stoppedAfterMs).toBeLessThan(3_000)
    expect(main.exitCode).toBe(1)
    expect(main.outputs).toMatchObject({ result: 'failed', tag: '', 'previous-tag': 'v1' })
    expect(annotation(main, 'warning', 'Cancelled')?.message).toMatch(/Received SIGINT/)
    expect(annotation(main, 'error', 'Deploy · verify')?.message).toBe('cancelled before v4-slow was shown healthy')
    expect(annotation(main, 'error', 'Deploy cancelled')?.message).toBe(
      'The deploy of v4-slow was cancelled after cancel was switched and before it was shown healthy; the post step puts back v1 and releases the deploy lock.'
    )
    // No rollback was attempted by the main step.
    expect(main.annotations.filter((entry) => (entry.title ?? '').startsWith('Rollback'))).toEqual([])
    const saved = JSON.parse(main.state.run ?? '{}') as { phase?: string; tag?: string; before?: { tag: string }[]; reached?: number[]; lock?: { hosts: unknown[] } }
    expect(saved).toMatchObject({ phase: 'switching', tag: 'v4-slow', before: [{ tag: 'v1' }], reached: [0], lock: { hosts: [null] } })
    expect(await containersOf(web)).toMatchObject({ cancel: { tag: 'v4-slow', state: 'running' }, 'cancel-previous': { tag: 'v1' }, 'cancel-deploy-lock': { state: 'created' } })

    const post = await postOf(web, main, 'v4-slow')

    expect(post.exitCode).toBe(0)
    expect(annotation(post, 'notice', 'Post · restore')?.message).toMatch(/^restarted the kept v1/)
    expect(annotation(post, 'notice', 'Post · verify')?.message).toMatch(/^v1 is healthy/)
    expect(annotation(post, 'warning', 'Post · restored')?.message).toBe('The deploy of v4-slow was interrupted while switching. v1, which ran before, runs again and is healthy.')
    expect(post.summary).toContain('v1, which ran before, runs again and is healthy.')
    expect(await serving(web)).toBe('200 v1')
    expect(await containersOf(web)).toEqual({ cancel: { tag: 'v1', state: 'running' } })

    const before = await snapshot(web)
    const again = await postOf(web, main, 'v4-slow')
    expect(again.exitCode).toBe(0)
    expect(annotation(again, 'notice', 'Post · restore')?.message).toMatch(/^v1 serves already/)
    expect(await snapshot(web)).toBe(before)
    expect(await serving(web)).toBe('200 v1')
  }, 90_000)
})

describe('deploy lock', () => {
  it('two deploys started together: one waits for the other, then reads what it left', async () => {
    const web = await site('twice')
    await deployOk(web, 'v1')

    const [first, second] = await Promise.all([
      deploy(web, 'v2', { github: { runId: '5001' } }),
      deploy(web, 'v3', { github: { runId: '5002' } })
    ])

    expect([first.exitCode, second.exitCode]).toEqual([0, 0])
    const results = [first, second]
    const waiter = results.find((result) => result.stdout.includes('Waiting up to'))
    const holder = results.find((result) => result !== waiter)
    if (!waiter || !holder) throw new Error(`neither deploy waited:\n${transcriptOf(first)}\n${transcriptOf(second)}`)
    const holderTag = holder.outputs.tag
    const waiterTag = waiter.outputs.tag
    // The one that waited names the run it waited for, and read what that run left running.
    expect(waiter.stdout).toMatch(new RegExp(`held by run https://github.com/acme/web/actions/runs/${holder === first ? '5001' : '5002'}, deploying ${holderTag}`))
    expect(annotation(waiter, 'notice', 'Deploy · lock')?.message).toMatch(/^waited \d+s for run https:\/\/github\.com\/acme\/web\/actions\/runs\/\d+/)
    expect(holder.outputs['previous-tag']).toBe('v1')
    expect(waiter.outputs['previous-tag']).toBe(holderTag)
    expect(await serving(web)).toBe(`200 ${waiterTag}`)
    expect(await containersOf(web)).toEqual({ twice: { tag: waiterTag, state: 'running' }, 'twice-previous': { tag: holderTag, state: 'exited' } })
  }, 90_000)

  it('a lock held longer than lock.timeout: fails naming the holder, changes nothing, leaves the lock to its holder', async () => {
    const web = await site('held', { lockTimeout: '2s' })
    await deployOk(web, 'v1')
    await holdLock(web, {
      'deploy-action.lock.owner': '999-1-abcdef',
      'deploy-action.lock.holder': 'https://github.com/acme/web/actions/runs/999',
      'deploy-action.lock.tag': 'v7',
      'deploy-action.lock.since': '2030-01-01T10:00:00.000Z',
      'deploy-action.lock.expires': '2999-01-01T10:00:00.000Z'
    })
    const before = await snapshot(web)

    const started = Date.now()
    const result = await deploy(web, 'v2')

    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000)
    expect(result.exitCode).toBe(1)
    expect(result.outputs).toMatchObject({ result: 'failed', tag: '', 'previous-tag': '' })
    expect(annotation(result, 'error', 'Deploy failed')?.message).toMatch(
      /Another deploy holds the lock held-deploy-lock on .*: run https:\/\/github\.com\/acme\/web\/actions\/runs\/999, deploying v7, since 2030-01-01T10:00:00\.000Z \(lease until 2999-01-01T10:00:00\.000Z\)\. Waited 2s \(lock\.timeout\)/
    )
    expect(result.summary).toMatch(/Deploy · lock<\/td><td>❌ failed/)
    expect(await serving(web)).toBe('200 v1')
    expect(await snapshot(web)).toBe(before)

    // The post step of this run leaves another run's lock alone.
    const post = await postOf(web, result, 'v2')
    expect(post.exitCode).toBe(0)
    expect(await snapshot(web)).toBe(before)
  }, 60_000)

  it('an expired lease is taken over with a warning, and released when the deploy ends', async () => {
    const web = await site('stale')
    await deployOk(web, 'v1')
    await holdLock(web, {
      'deploy-action.lock.owner': '998-1-abcdef',
      'deploy-action.lock.holder': 'https://github.com/acme/web/actions/runs/998',
      'deploy-action.lock.tag': 'v6',
      'deploy-action.lock.since': '2020-01-01T10:00:00.000Z',
      'deploy-action.lock.expires': '2020-01-01T10:40:00.000Z'
    })

    const result = await deploy(web, 'v2')

    expect(result.exitCode).toBe(0)
    expect(result.outputs).toMatchObject({ result: 'deployed', tag: 'v2', 'previous-tag': 'v1' })
    expect(annotation(result, 'warning', 'Deploy · lock')?.message).toBe(
      'Took over an expired deploy lock: run https://github.com/acme/web/actions/runs/998, deploying v6, since 2020-01-01T10:00:00.000Z (lease until 2020-01-01T10:40:00.000Z).'
    )
    expect(await serving(web)).toBe('200 v2')
    expect(await containersOf(web)).toEqual({ stale: { tag: 'v2', state: 'running' }, 'stale-previous': { tag: 'v1', state: 'exited' } })
  }, 60_000)
})

/**
 * The fault sweep of `fault-sweep.test.ts`, on the real engine, for the replace strategy: the run
 * is cancelled (SIGINT, as the runner does) as each step begins, then the post step runs. Whatever
 * the step, a good version serves afterwards, the outputs do not claim more than is true, and no
 * `-next` or lock container is left.
 */
describe('cancel at every step boundary, then the post step', () => {
  const upgrades = [
    { name: 'healthy', tag: 'v2', good: true, steps: ['Deploy · lock', 'Deploy · current', 'Deploy · login', 'Deploy · pull', 'Deploy · switch', 'Deploy · verify', 'Deploy · clean up'] },
    {
      name: 'failed',
      tag: 'v4-exits',
      good: false,
      steps: ['Deploy · lock', 'Deploy · current', 'Deploy · pull', 'Deploy · switch', 'Deploy · verify', 'Rollback · target', 'Rollback · restore', 'Rollback · verify']
    }
  ]
  for (const upgrade of upgrades) {
    it(`a ${upgrade.name} upgrade (${upgrade.tag}) keeps its promises when cancelled as any step begins`, async () => {
      for (const [index, step] of upgrade.steps.entries()) {
        const web = await site(`edge-${upgrade.name}-${index}`)
        await deployOk(web, 'v1')
        let signalled = false
        const main = await deploy(web, upgrade.tag, {
          onStdout: (chunk, control) => {
            if (!signalled && chunk.includes(`::group::${step}`)) {
              signalled = true
              control.signal('SIGINT')
            }
          }
        })
        const post = await postOf(web, main, upgrade.tag)
        const context = `cancel at "${step}": main ${transcriptOf(main)}\npost ${transcriptOf(post)}`
        const now = await serving(web)
        expect([context, signalled]).toEqual([context, true])
        // A good version serves: v1, or the new one only when it is healthy.
        expect([context, now === '200 v1' || (upgrade.good && now === `200 ${upgrade.tag}`)]).toEqual([context, true])
        // The outputs claim nothing that is not so.
        if (main.outputs.result === 'deployed') expect([context, now]).toEqual([context, `200 ${upgrade.tag}`])
        if (main.outputs.result === 'rolled-back') expect([context, now]).toEqual([context, `200 ${main.outputs.tag}`])
        expect([context, main.exitCode]).toEqual([context, main.outputs.result === 'deployed' ? 0 : 1])
        expect([context, post.exitCode]).toEqual([context, 0])
        const left = Object.keys(await containersOf(web)).filter((name) => name.endsWith('-next') || name.endsWith('-deploy-lock') || name.endsWith('-hook'))
        expect([context, left]).toEqual([context, []])
      }
    }, 240_000)
  }
})

