/**
 * `command: unlock` (issue 20) on a real, private Docker Engine, run as the runner runs the action
 * (the bundle, its inputs and files, signals):
 *
 * 1. A deploy whose runner dies in the middle of its pre-deploy hook (SIGKILL to the action and
 *    every process it started: the runner's machine is gone) leaves its lock behind. While it was
 *    alive, an unlock was refused: it had just taken (and so renewed) its lease, and its hook ran.
 * 2. Once the dead run has missed a renewal, the unlock releases its lock and records the holder,
 *    the actor and the reason; the next deploy then takes the lock at once, without waiting for the
 *    lease to run out. A real lease here is 52 minutes, renewed every 17m 20s, which no test can
 *    wait for: the dead run's lock is replaced by a copy with the same labels (owner token, holder,
 *    tag) and a 45-second lease, renewed every 15 s, so that it has missed its renewal (with its
 *    grace) after 22.5 s and runs out only after 45 s.
 * 3. `force-unlock: true` releases the lock of a live run in the middle of its hook, with a
 *    warning; that run then finds its lock gone before its switch and changes nothing.
 *
 * GitHub's API is unreachable here (`UNREACHABLE_API_URL`), as for a token without `actions:
 * read`: the holder's run state is unknown, and the lease alone decides. Test traffic goes only to
 * 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals'
import { Label } from '../src/constants.js'
import { LOCK_IMAGE, LockLabel } from '../src/lock.js'
import type { ActionControl, ActionResult } from '../test-support/action-run.js'
import { makeSite, pushAppImages, runStep, siteConfig, startFixture, transcriptOf, writeDeployConfig, type Fixture, type Site } from '../test-support/fixture.js'
import { descendantPids, signalPid, sleep } from '../test-support/proc.js'

const HEALTHY_BODY = 'status: green'
const REPO = 'acme/unlock'
const NAME = 'unlockme'
const LOCK = `${NAME}-deploy-lock`
const HOOK = `${NAME}-hook`
const REASON = 'runner lost in the middle of the migration'
/** The stand-in lease of the dead run's lock (see 2. above). */
const SHORT_LEASE_MS = 45_000

let fixture: Fixture
let engine: Fixture['engine']
let site: Site

jest.setTimeout(240_000)

beforeAll(async () => {
  fixture = await startFixture()
  engine = fixture.engine
  await pushAppImages(
    fixture,
    REPO,
    ['v1', 'v2', 'v3'].map((tag) => ({ tag, behaviour: 'healthy' as const, options: { healthBody: HEALTHY_BODY } })),
    { localRepo: 'local/unlock' }
  )
  site = await makeSite(fixture.dirs, NAME, undefined, { port: 20_000 + Math.floor(Math.random() * 20_000) })
}, 120_000)

afterAll(async () => {
  await fixture?.stop()
}, 60_000)

/** The deploy config, with a pre-deploy hook that sleeps `hookSeconds` (none when 0). */
function writeConfig(hookSeconds: number): void {
  writeDeployConfig(
    site.workspace,
    siteConfig({
      image: `${fixture.registry.address}/${REPO}`,
      name: NAME,
      port: site.port,
      expectBody: HEALTHY_BODY,
      deadline: '6s',
      tail: ['lock:', '  timeout: 5s', ...(hookSeconds > 0 ? ['hooks:', `  pre-deploy: [["/bin/sleep", "${hookSeconds}"]]`] : [])]
    })
  )
}

function run(runId: string, inputs: Record<string, string | boolean>, extra: { onStdout?: (chunk: string, control: ActionControl) => void } = {}): Promise<ActionResult> {
  return runStep(fixture, site, inputs, { github: { runId, actor: 'ops-person' }, timeoutMs: 120_000, ...extra })
}

function explain(result: ActionResult): string {
  return `result ${result.outputs.result ?? '(none)'}; ${transcriptOf(result, { tail: true })}`
}

/** The lock's labels and id, or undefined when there is none. */
async function lockNow(): Promise<{ id: string; labels: Record<string, string> } | undefined> {
  const result = await engine.dockerResult(['container', 'inspect', '--format', '{{.Id}} {{json .Config.Labels}}', LOCK])
  if (result.exitCode !== 0) return undefined
  const [id = '', ...json] = result.stdout.trim().split(' ')
  return { id, labels: JSON.parse(json.join(' ')) as Record<string, string> }
}

async function hookRunning(): Promise<boolean> {
  const result = await engine.dockerResult(['container', 'inspect', '--format', '{{.State.Running}}', HOOK])
  return result.exitCode === 0 && result.stdout.trim() === 'true'
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(100)
  }
}

async function runningTag(): Promise<string | undefined> {
  const result = await engine.dockerResult(['container', 'inspect', '--format', `{{index .Config.Labels "${Label.Tag}"}}`, NAME])
  return result.exitCode === 0 ? result.stdout.trim() : undefined
}

/** Starts a deploy of `tag` and resolves once its pre-deploy hook container runs, with the run and its control. */
async function deployIntoHook(runId: string, tag: string): Promise<{ finished: Promise<ActionResult>; control: ActionControl }> {
  let control: ActionControl | undefined
  const finished = run(runId, { tag }, { onStdout: (_chunk, handle) => (control = handle) })
  await waitFor(`the hook container of run ${runId}`, hookRunning, 60_000)
  if (!control) throw new Error('the action printed nothing before its hook ran')
  return { finished, control }
}

const unlockInputs = (extra: Record<string, string | boolean> = {}): Record<string, string | boolean> => ({ command: 'unlock', 'unlock-reason': REASON, ...extra })

describe('command: unlock on a real engine', () => {
  it('refuses while the holder lives; after its runner died and missed a renewal, releases its lock, and the next deploy proceeds at once', async () => {
    writeConfig(0)
    const first = await run('6100', { tag: 'v1' })
    expect([explain(first), first.exitCode]).toEqual([explain(first), 0])

    // 1. A deploy of v2 in the middle of a 10-second hook: alive. The unlock is refused and changes nothing.
    writeConfig(10)
    const holder = await deployIntoHook('6101', 'v2')
    const lockWhileAlive = await lockNow()
    expect(lockWhileAlive?.labels[LockLabel.Owner]).toMatch(/^6101-1-/)
    const refused = await run('6102', unlockInputs())
    expect([explain(refused), refused.exitCode]).toEqual([explain(refused), 1])
    expect(refused.outputs.result).toBe('failed')
    const refusal = refused.annotations.find((annotation) => annotation.level === 'error' && annotation.title === 'Unlock')?.message ?? ''
    expect(refusal).toMatch(/Not released on local: run https:\/\/github\.com\/acme\/web\/actions\/runs\/6101, deploying v2/)
    expect(refusal).toMatch(/its pre-deploy hook container unlockme-hook still runs there/)
    expect(refusal).toMatch(/it last renewed its lease \d+s ago \(it renews every \d+m( \d+s)?\)/)
    expect((await lockNow())?.id).toBe(lockWhileAlive?.id)

    // Its runner dies: the action and every process it started are killed at once.
    for (const pid of descendantPids(holder.control.pid).reverse()) signalPid(pid, 'SIGKILL')
    holder.control.signal('SIGKILL')
    const killed = await holder.finished
    expect(killed.signal).toBe('SIGKILL')
    // Its lock stays, and its hook runs on in the daemon until it ends (its --rm removes it).
    const left = await lockNow()
    expect(left?.id).toBe(lockWhileAlive?.id)
    await waitFor('the dead run’s hook to end', async () => !(await hookRunning()), 30_000)
    expect(await runningTag()).toBe('v1')

    // 2. The dead run's lock, with a lease short enough to miss a renewal within the test (see the top).
    const labels = { ...(left?.labels ?? {}), [LockLabel.LeaseMs]: String(SHORT_LEASE_MS) }
    await engine.docker(['container', 'rm', '--force', left?.id ?? ''])
    const create = ['container', 'create', '--name', LOCK, '--network', 'none']
    for (const [key, value] of Object.entries(labels)) create.push('--label', `${key}=${value}`)
    const copyId = (await engine.docker([...create, LOCK_IMAGE, 'deploy-action-lock'])).trim()
    const copiedAt = Date.now()

    // Not yet: taken (so renewed) a moment ago.
    const tooEarly = await run('6103', unlockInputs())
    expect([explain(tooEarly), tooEarly.exitCode]).toEqual([explain(tooEarly), 1])
    expect((await lockNow())?.id).toBe(copyId)

    // A renewal (every 15 s) and its grace (7.5 s) missed; the lease still has about 20 s.
    await sleep(Math.max(0, copiedAt + 24_000 - Date.now()))
    const released = await run('6104', unlockInputs())
    expect([explain(released), released.exitCode]).toEqual([explain(released), 0])
    expect(released.outputs.result).toBe('unlocked')
    expect(await lockNow()).toBeUndefined()
    expect(Date.now() - copiedAt).toBeLessThan(SHORT_LEASE_MS - 5_000)
    const notice = released.annotations.find((annotation) => annotation.level === 'notice' && annotation.title === 'Unlock')?.message ?? ''
    expect(notice).toContain(`Released the deploy lock ${LOCK} on local (held by run https://github.com/acme/web/actions/runs/6101, deploying v2`)
    expect(notice).toContain(`by ops-person, reason: "${REASON}"`)
    expect(released.summary).toContain('ops-person')
    expect(released.summary).toContain(REASON)
    expect(released.summary).toContain('https://github.com/acme/web/actions/runs/6101')
    // The post step of an unlock has nothing to do.
    expect(released.state).toEqual({})

    // The next deploy takes the lock at once: it neither waits nor takes over an expired lease.
    writeConfig(0)
    const next = await run('6105', { tag: 'v3' })
    expect([explain(next), next.exitCode]).toEqual([explain(next), 0])
    expect(next.stdout).not.toMatch(/Waiting up to|Took over an expired deploy lock/)
    expect(await runningTag()).toBe('v3')
    expect(await lockNow()).toBeUndefined()
  })

  it('force-unlock releases a live run’s lock with a warning; that run then finds its lock gone and changes nothing', async () => {
    const before = await runningTag()
    writeConfig(8)
    const live = await deployIntoHook('6110', 'v2')
    const forced = await run('6111', unlockInputs({ 'force-unlock': true }))
    expect([explain(forced), forced.exitCode]).toEqual([explain(forced), 0])
    expect(forced.outputs.result).toBe('unlocked')
    expect(forced.annotations.some((annotation) => annotation.level === 'warning' && /force-unlock: releasing the deploy lock on local although its pre-deploy hook container unlockme-hook still runs there.*; it last renewed its lease/.test(annotation.message))).toBe(true)
    expect(forced.annotations.find((annotation) => annotation.title === 'Unlock')?.message).toMatch(/Forced \(force-unlock\) on local/)
    expect(await lockNow()).toBeUndefined()

    const after = await live.finished
    expect(after.exitCode).toBe(1)
    expect(after.stdout).toMatch(/lost the deploy lock on local/)
    expect(await runningTag()).toBe(before)
    writeConfig(0)
  })
})
