/**
 * `command: unlock` (issue 20) on the in-memory engine: which holders count as alive (a recent
 * renewal, a run GitHub reports in progress, a running hook, a lease that cannot be read) and
 * which as dead; that only the lock read in the same pass is removed, by its id; that a host that
 * cannot be read is left alone; the dry run; what is recorded (holder, actor, reason); and that the
 * post step has nothing to do after an unlock. Also the inputs, and the GitHub client's workflow
 * run read against the local fake API.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { DockerClient } from '../src/docker/client.js'
import type { GitHubApi } from '../src/dependencies.js'
import { GitHubClient, type GitHubWorkflowRun } from '../src/github/client.js'
import type { ActionInputs } from '../src/inputs.js'
import { DeployLock, FleetLock, LEASE_FILE, LOCK_IMAGE, LockLabel } from '../src/lock.js'
import { post } from '../src/post.js'
import { Reporter } from '../src/report/reporter.js'
import { resolveSettings } from '../src/resolve-settings.js'
import type { DeploySettings } from '../src/settings.js'
import { memoryStateStore } from '../src/state.js'
import { holderRunOf, renewalGraceMs, unlock } from '../src/unlock.js'
import { FakeDockerEngine } from '../test-support/fake-docker-engine.js'
import { start as startFakeGitHub, type FakeGitHub } from '../test-support/fake-github.js'
import { testSettings } from '../test-support/settings.js'
import { captureActionStdout } from '../test-support/stdout.js'
import { offlineGitHub, storyDependencies } from '../test-support/story.js'

const stdout = captureActionStdout()

const MINUTE = 60_000
/** The docker host's clock in every test: the lock's times are judged by it. */
const NOW = Date.parse('2024-05-01T10:00:00.000Z')
/** The lease of a one-host deploy with one pre-deploy hook (see `lockLeaseMs`). */
const LEASE_MS = 52 * MINUTE
/** Run 41, attempt 1: the holder in most tests. */
const DEAD_OWNER = '41-1-0123456789ab'
const DEAD_URL = 'https://github.com/acme/web/actions/runs/41'

function engineAtNow(): FakeDockerEngine {
  const engine = new FakeDockerEngine()
  engine.daemonNow = () => NOW
  engine.images.add(LOCK_IMAGE)
  return engine
}

/**
 * A lock as run 41 left it: taken `takenAgoMs` ago (daemon time) with a 52-minute lease, renewed
 * `renewedAgoMs` ago when given (the lease file the holder writes), labels as `DeployLock.acquire` writes them.
 */
function lockOf(engine: FakeDockerEngine, options: { takenAgoMs: number; renewedAgoMs?: number; leaseMs?: number; owner?: string; holder?: string; leaseFile?: string }): string {
  const leaseMs = options.leaseMs ?? LEASE_MS
  const taken = NOW - options.takenAgoMs
  const files = new Map<string, string>()
  if (options.leaseFile !== undefined) files.set(`/${LEASE_FILE}`, options.leaseFile)
  else if (options.renewedAgoMs !== undefined) {
    const renewed = NOW - options.renewedAgoMs
    files.set(`/${LEASE_FILE}`, JSON.stringify({ expires: new Date(renewed + leaseMs).toISOString(), renewed: new Date(renewed).toISOString(), owner: options.owner ?? DEAD_OWNER }))
  }
  return engine.add({
    name: 'web-deploy-lock',
    image: LOCK_IMAGE,
    running: false,
    created: new Date(taken).toISOString(),
    files,
    labels: {
      [LockLabel.Owner]: options.owner ?? DEAD_OWNER,
      [LockLabel.Holder]: options.holder ?? DEAD_URL,
      [LockLabel.Tag]: 'v2',
      [LockLabel.Since]: new Date(taken).toISOString(),
      [LockLabel.Expires]: new Date(taken + leaseMs).toISOString(),
      [LockLabel.LeaseMs]: String(leaseMs)
    }
  }).id
}

function unlockSettings(overrides: Partial<DeploySettings> = {}, force = false): DeploySettings {
  return testSettings({ command: 'unlock', unlock: { reason: 'runner lost during the migration', force }, ...overrides })
}

/** GitHub that answers the holder's run attempt with `run` (or fails with `error`), and records what it was asked. */
function githubWithRun(run: GitHubWorkflowRun | Error): GitHubApi & { asked: unknown[][] } {
  const asked: unknown[][] = []
  return {
    ...offlineGitHub(),
    asked,
    workflowRun: async (...args: unknown[]) => {
      asked.push(args)
      if (run instanceof Error) throw run
      return run
    }
  } as unknown as GitHubApi & { asked: unknown[][] }
}

const outputOf = (name: string): string | undefined => new RegExp(`::set-output name=${name}::(.*)`).exec(stdout.text())?.[1]

async function runUnlock(settings: DeploySettings, engines: Record<string, FakeDockerEngine>, github: GitHubApi = offlineGitHub()) {
  const state = memoryStateStore()
  const results = await unlock(settings, new Reporter(), storyDependencies({ engines, github, state }))
  return { results, state, exitCode: process.exitCode }
}

describe('command: unlock', () => {
  it('releases the lock of a run that stopped renewing, by the id it read, and records the holder, the actor and the reason', async () => {
    const engine = engineAtNow()
    // Taken 20 minutes ago, never renewed: it renews every 17m 20s, so one renewal (and its minute of grace) is missed.
    const id = lockOf(engine, { takenAgoMs: 20 * MINUTE })
    const { results, state, exitCode } = await runUnlock(unlockSettings(), { local: engine })

    expect(results.map((result) => result.status)).toEqual(['released'])
    expect(engine.containers.has('web-deploy-lock')).toBe(false)
    // Read, the daemon's time, the lease file, then removed by the id read: nothing else.
    expect(engine.commands).toEqual([
      'container inspect web-deploy-lock web-hook',
      'system info --format {{json .SystemTime}}',
      `container cp ${id}:/${LEASE_FILE} -`,
      `container rm --force ${id}`
    ])
    expect(outputOf('result')).toBe('unlocked')
    expect(exitCode).toBeUndefined()
    const notice = /::notice title=Unlock::(.*)/.exec(stdout.text())?.[1] ?? ''
    expect(notice).toContain('Released the deploy lock web-deploy-lock on local (held by run https://github.com/acme/web/actions/runs/41, deploying v2, since 2024-05-01T09:40:00.000Z')
    expect(notice).toContain('by octocat, reason: "runner lost during the migration"')
    // Nothing for the post step.
    expect(state.values.size).toBe(0)
  })

  it('refuses while the holder renews: its last renewal is within a renewal period, whatever GitHub says', async () => {
    const engine = engineAtNow()
    lockOf(engine, { takenAgoMs: 40 * MINUTE, renewedAgoMs: 5 * MINUTE })
    const github = githubWithRun({ status: 'completed', conclusion: 'failure', html_url: DEAD_URL })
    const { results, exitCode } = await runUnlock(unlockSettings(), { local: engine }, github)

    expect(results.map((result) => result.status)).toEqual(['refused'])
    expect(results[0]?.alive.join()).toMatch(/it last renewed its lease 5m ago \(it renews every 17m 20s\); it counts as gone if it has not renewed by 2024-05-01T10:13:20\.000Z/)
    expect(engine.containers.get('web-deploy-lock')?.labels[LockLabel.Owner]).toBe(DEAD_OWNER)
    expect(engine.commands.some((command) => command.startsWith('container rm'))).toBe(false)
    // A renewal this recent settles it: GitHub is not asked.
    expect(github.asked).toEqual([])
    expect(outputOf('result')).toBe('failed')
    expect(exitCode).toBe(1)
    expect(stdout.text()).toMatch(/::error title=Unlock::Not released on local: run https:\/\/github.com\/acme\/web\/actions\/runs\/41, deploying v2, .*is alive: it last renewed its lease 5m ago.*force-unlock: true/)
  })

  it('a lock taken a moment ago counts as renewed then', async () => {
    const engine = engineAtNow()
    lockOf(engine, { takenAgoMs: 30_000 })
    const { results } = await runUnlock(unlockSettings(), { local: engine })
    expect(results.map((result) => result.status)).toEqual(['refused'])
    expect(results[0]?.alive.join()).toContain('it last renewed its lease 30s ago')
  })

  it('an overdue renewal: refused while GitHub reports the run attempt in progress, released once it reports it completed', async () => {
    const engine = engineAtNow()
    lockOf(engine, { takenAgoMs: 45 * MINUTE, renewedAgoMs: 25 * MINUTE })
    const running = githubWithRun({ status: 'in_progress', conclusion: null, html_url: DEAD_URL })
    const refused = await runUnlock(unlockSettings(), { local: engine }, running)
    expect(refused.results.map((result) => result.status)).toEqual(['refused'])
    expect(refused.results[0]?.alive.join()).toMatch(/^GitHub reports its run in progress, though it last renewed its lease 25m ago/)
    // Asked about run 41, attempt 1, of the holder's repository.
    expect(running.asked).toEqual([[41, 1, 'acme/web']])
    expect(engine.containers.has('web-deploy-lock')).toBe(true)

    const completed = githubWithRun({ status: 'completed', conclusion: 'cancelled', html_url: DEAD_URL })
    const released = await runUnlock(unlockSettings(), { local: engine }, completed)
    expect(released.results.map((result) => result.status)).toEqual(['released'])
    expect(released.results[0]?.dead).toBe('it last renewed its lease 25m ago (it renews every 17m 20s), and GitHub reports its run completed (cancelled)')
    expect(engine.containers.has('web-deploy-lock')).toBe(false)
  })

  it('an overdue renewal and a GitHub that cannot be asked: unknown is no sign of life, the overdue renewal decides', async () => {
    const engine = engineAtNow()
    lockOf(engine, { takenAgoMs: 45 * MINUTE, renewedAgoMs: 25 * MINUTE })
    const github = githubWithRun(new Error('read workflow run 41 attempt 1: HTTP 403 Resource not accessible by integration'))
    const { results } = await runUnlock(unlockSettings(), { local: engine }, github)
    expect(results.map((result) => result.status)).toEqual(['released'])
    expect(results[0]?.dead).toMatch(/GitHub could not say whether its run still runs \(read workflow run 41 attempt 1: HTTP 403/)
  })

  it('a lease that ran out is released without asking GitHub', async () => {
    const engine = engineAtNow()
    lockOf(engine, { takenAgoMs: 60 * MINUTE })
    const github = githubWithRun({ status: 'in_progress', conclusion: null, html_url: DEAD_URL })
    const { results } = await runUnlock(unlockSettings(), { local: engine }, github)
    expect(results.map((result) => [result.status, result.dead])).toEqual([['released', 'its lease ran out']])
    expect(github.asked).toEqual([])
  })

  it('refuses while a pre-deploy hook container runs there, even for a lease that ran out', async () => {
    const engine = engineAtNow()
    lockOf(engine, { takenAgoMs: 60 * MINUTE })
    engine.add({ name: 'web-hook', image: '127.0.0.1:5999/acme/web:v2', running: true, labels: {} })
    const { results } = await runUnlock(unlockSettings(), { local: engine })
    expect(results.map((result) => result.status)).toEqual(['refused'])
    expect(results[0]?.alive.join()).toContain('its pre-deploy hook container web-hook still runs there')
    expect(engine.containers.has('web-deploy-lock')).toBe(true)
  })

  it('force-unlock releases a live holder’s lock, with a warning that names what it overrode', async () => {
    const engine = engineAtNow()
    const id = lockOf(engine, { takenAgoMs: MINUTE })
    const { results, exitCode } = await runUnlock(unlockSettings({}, true), { local: engine })
    expect(results.map((result) => result.status)).toEqual(['released'])
    expect(engine.commands).toContain(`container rm --force ${id}`)
    expect(exitCode).toBeUndefined()
    expect(outputOf('result')).toBe('unlocked')
    expect(stdout.text()).toMatch(/::warning title=Unlock · local::force-unlock: releasing the deploy lock on local although it last renewed its lease 1m ago/)
    expect(stdout.text()).toMatch(/::notice title=Unlock::.*Forced \(force-unlock\) on local, although it last renewed its lease 1m ago/)
  })

  it('a dry run says what it would release and removes nothing', async () => {
    const engine = engineAtNow()
    lockOf(engine, { takenAgoMs: 20 * MINUTE })
    const { results, exitCode } = await runUnlock(unlockSettings({ dryRun: true }), { local: engine })
    expect(results.map((result) => result.status)).toEqual(['planned'])
    expect(engine.containers.has('web-deploy-lock')).toBe(true)
    expect(engine.commands.some((command) => command.startsWith('container rm'))).toBe(false)
    expect(outputOf('result')).toBe('planned')
    expect(exitCode).toBeUndefined()
    expect(stdout.text()).toMatch(/::notice title=Unlock · dry run::Dry run: would release the deploy lock web-deploy-lock on local \(held by run .*Nothing was changed\./)
  })

  it('nothing held: unlocked, and says so', async () => {
    const engine = engineAtNow()
    const { results } = await runUnlock(unlockSettings(), { local: engine })
    expect(results.map((result) => result.status)).toEqual(['free'])
    expect(outputOf('result')).toBe('unlocked')
    expect(stdout.text()).toMatch(/No deploy lock web-deploy-lock was held on local; nothing to release \(by octocat, reason: "runner lost during the migration"\)/)
  })

  it('every host at once: a host that cannot be read is left alone and reported; the others are released', async () => {
    const web1 = engineAtNow()
    const web2 = engineAtNow()
    lockOf(web1, { takenAgoMs: 20 * MINUTE })
    lockOf(web2, { takenAgoMs: 20 * MINUTE })
    web2.unreachable = true
    const { results, exitCode } = await runUnlock(unlockSettings({ hosts: ['ssh://web1', 'ssh://web2'] }), { 'ssh://web1': web1, 'ssh://web2': web2 })
    expect(results.map((result) => [result.host, result.status])).toEqual([
      ['ssh://web1', 'released'],
      ['ssh://web2', 'unreadable']
    ])
    expect(web1.containers.has('web-deploy-lock')).toBe(false)
    expect(web2.containers.has('web-deploy-lock')).toBe(true)
    expect(outputOf('result')).toBe('failed')
    expect(exitCode).toBe(1)
    expect(stdout.text()).toMatch(/Not released on ssh:\/\/web2: the lock web-deploy-lock could not be read, so it was left alone: .*Cannot connect to the Docker daemon/)
  })

  it('a lease file that cannot be read is no sign of death: refused, unless forced', async () => {
    const engine = engineAtNow()
    lockOf(engine, { takenAgoMs: 20 * MINUTE })
    engine.faultRule = { match: (argv) => argv[0] === 'container' && argv[1] === 'cp', mode: 'before' }
    const { results } = await runUnlock(unlockSettings(), { local: engine })
    expect(results.map((result) => result.status)).toEqual(['refused'])
    expect(results[0]?.alive.join()).toMatch(/^its lease could not be read/)
    expect(engine.containers.has('web-deploy-lock')).toBe(true)
    const forced = await runUnlock(unlockSettings({}, true), { local: engine })
    expect(forced.results.map((result) => result.status)).toEqual(['released'])
    expect(engine.containers.has('web-deploy-lock')).toBe(false)
  })

  it('removes only the lock it read: one a new deploy took in between stays', async () => {
    const engine = engineAtNow()
    const dead = lockOf(engine, { takenAgoMs: 20 * MINUTE })
    let newId = ''
    // While the unlock reads the lease, the dead lock goes and a new deploy takes the name.
    engine.onCommand = (_index, argv) => {
      if (argv[0] === 'container' && argv[1] === 'cp' && !newId) {
        engine.containers.delete('web-deploy-lock')
        newId = lockOf(engine, { takenAgoMs: 0, owner: '43-1-abcdefabcdef', holder: 'https://github.com/acme/web/actions/runs/43' })
      }
    }
    const { results } = await runUnlock(unlockSettings(), { local: engine })
    expect(newId).not.toBe(dead)
    expect(engine.commands).toContain(`container rm --force ${dead}`)
    expect(engine.containers.get('web-deploy-lock')?.id).toBe(newId)
    expect(results.map((result) => result.status)).toEqual(['released'])
  })

  it('a lock of an older version (no lease-ms, never renewed) is released only once GitHub reports its run completed', async () => {
    const engine = engineAtNow()
    engine.add({
      name: 'web-deploy-lock',
      image: LOCK_IMAGE,
      running: false,
      created: new Date(NOW - 20 * MINUTE).toISOString(),
      labels: { [LockLabel.Owner]: DEAD_OWNER, [LockLabel.Holder]: DEAD_URL, [LockLabel.Expires]: new Date(NOW + 10 * MINUTE).toISOString() }
    })
    const unknown = await runUnlock(unlockSettings(), { local: engine })
    expect(unknown.results.map((result) => result.status)).toEqual(['refused'])
    expect(unknown.results[0]?.alive.join()).toContain('its lock tells no renewal (an older version of the action)')
    const completed = await runUnlock(unlockSettings(), { local: engine }, githubWithRun({ status: 'completed', conclusion: 'failure', html_url: DEAD_URL }))
    expect(completed.results.map((result) => result.status)).toEqual(['released'])
  })

  it('leaves nothing for the post step, which then runs no docker command', async () => {
    const engine = engineAtNow()
    lockOf(engine, { takenAgoMs: 20 * MINUTE })
    const state = memoryStateStore()
    const dependencies = storyDependencies({ engines: { local: engine }, state })
    await unlock(unlockSettings(), new Reporter(), dependencies)
    const before = engine.commands.length
    await post(undefined, { state, settings: () => unlockSettings(), dependencies: () => dependencies })
    expect(engine.commands.length).toBe(before)
  })
})

describe('the lease as unlock reads it', () => {
  it('a renewal records when it renewed, by the daemon’s clock; an older lease file tells it as expires minus lease-ms', async () => {
    const engine = engineAtNow()
    const lock = new FleetLock([{ lock: new DeployLock(new DockerClient(engine), 'web'), dockerHost: undefined }], '42-1-aaaaaaaaaaaa')
    engine.daemonNow = () => NOW - 10 * MINUTE
    await lock.acquire({ holder: DEAD_URL, tag: 'v2', leaseMs: 30 * MINUTE, timeoutMs: 0 })
    const reader = new DeployLock(new DockerClient(engine), 'web')
    const holder = await reader.read()
    if (!holder) throw new Error('no lock')
    engine.daemonNow = () => NOW
    expect(await reader.readLease(holder)).toEqual({ now: NOW, expired: false, lastRenewed: NOW - 10 * MINUTE, renewEveryMs: 10 * MINUTE })

    engine.daemonNow = () => NOW - 2 * MINUTE
    const held = new DeployLock(new DockerClient(engine), 'web')
    await held.acquire({ owner: '42-1-aaaaaaaaaaaa', holder: DEAD_URL, tag: 'v2', leaseMs: 30 * MINUTE, timeoutMs: 0 })
    await held.renew(30 * MINUTE)
    engine.daemonNow = () => NOW
    expect((await reader.readLease(holder)).lastRenewed).toBe(NOW - 2 * MINUTE)

    // A lease file of a version before `renewed`: its expiry minus the lease.
    const container = engine.containers.get('web-deploy-lock')
    container?.files?.set(`/${LEASE_FILE}`, JSON.stringify({ expires: new Date(NOW - 3 * MINUTE + 30 * MINUTE).toISOString(), owner: '42-1-aaaaaaaaaaaa' }))
    expect((await reader.readLease(holder)).lastRenewed).toBe(NOW - 3 * MINUTE)
  })

  it('the grace beyond a renewal period is a minute, half a period for short (test) leases', () => {
    expect(renewalGraceMs(17 * MINUTE)).toBe(MINUTE)
    expect(renewalGraceMs(20_000)).toBe(10_000)
  })

  it('finds the holder’s run and attempt in its owner token, and its repository in its run URL', () => {
    expect(holderRunOf({ id: 'x', owner: '41-2-0123456789ab', holder: 'https://github.com/other/app/actions/runs/41' }, 'acme/web')).toEqual({ repository: 'other/app', runId: 41, attempt: 2 })
    // The post step's own lock names no URL: the token still names the run.
    expect(holderRunOf({ id: 'x', owner: '41-1-0123456789ab', holder: 'the post step of an interrupted deploy' }, 'acme/web')).toEqual({ repository: 'acme/web', runId: 41, attempt: 1 })
    expect(holderRunOf({ id: 'x', owner: 'local-1-0123456789ab', holder: 'https://github.com/acme/web/actions/runs/' }, 'acme/web')).toBeUndefined()
    expect(holderRunOf({ id: 'x', owner: 'run-41-a', holder: 'https://github.com/acme/web/actions/runs/41' }, 'acme/web')).toEqual({ repository: 'acme/web', runId: 41 })
  })
})

describe('GitHubClient.workflowRun', () => {
  let github: FakeGitHub
  beforeAll(async () => {
    github = await startFakeGitHub()
  })
  afterAll(async () => {
    await github.stop()
  })

  it('reads a run attempt, or the run, of any repository', async () => {
    github.setWorkflowRun(41, { status: 'in_progress' }, 2)
    github.setWorkflowRun(40, { status: 'completed', conclusion: 'failure' })
    const client = new GitHubClient({ token: 'ghs_test', repository: 'acme/web', apiUrl: github.url })
    await expect(client.workflowRun(41, 2, 'other/app')).resolves.toMatchObject({ status: 'in_progress', conclusion: null })
    await expect(client.workflowRun(40)).resolves.toMatchObject({ status: 'completed', conclusion: 'failure' })
    await expect(client.workflowRun(39)).rejects.toMatchObject({ reason: 'http', status: 404 })
    expect(github.requests.map((request) => request.path)).toEqual(['/repos/other/app/actions/runs/41/attempts/2', '/repos/acme/web/actions/runs/40', '/repos/acme/web/actions/runs/39'])
  })
})

describe('unlock inputs', () => {
  let workspace: string
  beforeAll(() => {
    workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'unlock-inputs-'))
  })
  afterAll(() => fs.rmSync(workspace, { recursive: true, force: true }))

  const inputs = (overrides: Partial<ActionInputs>): ActionInputs => ({
    config: '.github/deploy.yml',
    environment: 'production',
    command: 'deploy',
    tag: '',
    rollbackTo: '',
    image: 'acme/web',
    healthUrl: '',
    registryUsername: '',
    registryPassword: '',
    dockerHost: '',
    githubToken: '',
    sshKey: '',
    sshKnownHosts: '',
    dryRun: false,
    ...overrides
  })
  const env = (): NodeJS.ProcessEnv => ({ GITHUB_WORKSPACE: workspace, GITHUB_SHA: 'abc123', GITHUB_REPOSITORY: 'acme/web', GITHUB_ACTOR: 'octocat', GITHUB_RUN_ID: '42' })
  const errors = (input: Partial<ActionInputs>): string[] => resolveSettings(inputs(input), env()).problems.filter((problem) => problem.severity === 'error').map((problem) => problem.message)

  it('command: unlock needs a reason, kept on one line, and takes force-unlock', () => {
    expect(errors({ command: 'unlock' })).toEqual(['unlock-reason: required with command: unlock; say why the lock is released, e.g. "runner lost during the migration of run 41"'])
    expect(errors({ command: 'unlock', unlockReason: '   ' })).toHaveLength(1)
    const resolved = resolveSettings(inputs({ command: 'unlock', unlockReason: 'runner lost\n  during the hook', forceUnlock: true }), env())
    expect(resolved.settings).toMatchObject({ command: 'unlock', unlock: { reason: 'runner lost during the hook', force: true } })
  })

  it('the unlock inputs apply with command: unlock only, and an unknown command names unlock', () => {
    expect(errors({ unlockReason: 'why' })).toEqual(['unlock-reason: only applies with command: unlock'])
    expect(errors({ command: 'rollback', forceUnlock: true })).toEqual(['force-unlock: only applies with command: unlock'])
    expect(errors({ command: 'release' })).toEqual(['command: expected deploy, rollback or unlock, got "release"'])
    expect(resolveSettings(inputs({}), env()).settings?.unlock).toBeUndefined()
  })
})
