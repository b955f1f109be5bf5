/**
 * The deploy story of issue 3 on a real Docker Engine: the bundled action (dist/index.js, or
 * DEPLOY_ACTION_BUNDLE) runs exactly as the runner runs it, against a private engine, a registry
 * with auth, and a local stand-in for the GitHub Releases/Deployments API. Every scenario asserts
 * what really serves on its loopback port afterwards, the outputs, the exit code, the annotations
 * and the job summary. No mocks: the only fake is the GitHub API, reached through GITHUB_API_URL.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { randomBytes } from 'node:crypto'
import type { ActionResult } from '../test-support/action-run.js'
import type { FakeGitHub, FakeReleaseSpec } from '../test-support/fake-github.js'
import {
  annotation,
  containersNamed,
  expectDeployed,
  makeSite,
  pushAppImages,
  runStep,
  servedAt,
  siteConfig,
  startFixture,
  titles,
  type AppImageSpec,
  type Fixture,
  type Site
} from '../test-support/fixture.js'

/** Repository of the app in the test registry. */
const REPO = 'acme/web'

/**
 * Body of `/health` of every healthy image: distinctive, so that the wrong-body image's `not ok`
 * (which contains `ok`) fails `expect-body`.
 */
const HEALTHY_BODY = 'status: green'

/** Tags pushed to the registry, and how each behaves. */
const IMAGES: AppImageSpec[] = [
  { tag: 'v1', behaviour: 'healthy' },
  { tag: 'v2', behaviour: 'healthy' },
  { tag: 'v3', behaviour: 'healthy' },
  // Only the dry run names v5, so it is never pulled: the dry run can show that it was not.
  { tag: 'v5', behaviour: 'healthy' },
  { tag: 'v4-never-listens', behaviour: 'never-listens' },
  { tag: 'v4-exits', behaviour: 'exits' },
  { tag: 'v4-slow-start', behaviour: 'slow-start', options: { startDelaySeconds: 2 } },
  { tag: 'v4-wrong-body', behaviour: 'wrong-body' }
]

let fixture: Fixture & { github: FakeGitHub }
let engine: Fixture['engine']
let registry: Fixture['registry']
let github: FakeGitHub
let image: string
let digests: Map<string, string>

beforeAll(async () => {
  fixture = await startFixture({ github: true })
  ;({ engine, registry, github } = fixture)
  image = `${registry.address}/${REPO}`
  // Only the registry holds the images afterwards, so every deploy really pulls (and needs its login).
  digests = await pushAppImages(
    fixture,
    REPO,
    IMAGES.map(({ tag, behaviour, options }) => ({ tag, behaviour, options: { healthBody: behaviour === 'wrong-body' ? undefined : HEALTHY_BODY, ...options } }))
  )
}, 90_000)

afterAll(async () => {
  await fixture?.stop()
}, 60_000)

interface SiteOptions {
  deadline?: string
  rollbackTo?: string
  /** Extra YAML lines under `container.env`. */
  env?: Record<string, string>
}

/** A workspace whose deploy config runs `name` on `port` with host networking and fast health checks. */
function site(name: string, options: SiteOptions = {}): Promise<Site> {
  return makeSite(fixture.dirs, name, ({ port }) =>
    siteConfig({ image, name, port, expectBody: HEALTHY_BODY, deadline: options.deadline, rollbackTo: options.rollbackTo ?? 'last-release', env: options.env })
  )
}

/** Runs the action's main step for `site` as the runner would, logged in to the test registry. */
function act(target: Site, inputs: Record<string, string | boolean>, extra: { password?: string; watchDockerArgv?: boolean } = {}): Promise<ActionResult> {
  const password: Record<string, string> = extra.password === undefined ? {} : { 'registry-password': extra.password }
  return runStep(fixture, target, { ...password, ...inputs }, { watchDockerArgv: extra.watchDockerArgv, timeoutMs: 60_000 })
}

const deploy = (target: Site, tag: string): Promise<ActionResult> => act(target, { tag })

/** Asserts a healthy deploy of `tag`, with the action's output in the failure message. */
async function deployOk(target: Site, tag: string): Promise<ActionResult> {
  return expectDeployed(await deploy(target, tag), tag)
}

/** What the app on the site's port says, or the connection error code. */
function serving(target: Site, path: '/version' | '/health' = '/version'): Promise<string> {
  return servedAt(`http://127.0.0.1:${target.port}${path}`)
}

/** The row of the summary's steps table for `title`: status and duration in ms. */
function summaryStep(result: ActionResult, title: string): { status: string; durationMs: number; detail: string } | undefined {
  const escaped = title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const match = new RegExp(`<tr><td>${escaped}</td><td>[^<]*? (\\w+)</td><td>([^<]*)</td><td>([^<]*)</td></tr>`).exec(result.summary)
  if (!match) return undefined
  const duration = match[2] ?? ''
  const ms = /^([\d.]+) ms$/.exec(duration)
  const s = /^([\d.]+) s$/.exec(duration)
  return { status: match[1] ?? '', durationMs: ms ? Number(ms[1]) : s ? Number(s[1]) * 1000 : NaN, detail: match[3] ?? '' }
}

/** Every container of the engine whose name starts with the site's name: name → tag label and state. */
function containersOf(target: Site): Promise<Record<string, { tag: string; state: string }>> {
  return containersNamed(engine, target.name)
}


/**
 * Every container of the engine with its id, image, state, start time and restart count, so that
 * any change at all (created, removed, renamed, stopped, restarted) shows; no relative times.
 */
async function allContainers(): Promise<string> {
  const ids = (await engine.docker(['ps', '-aq', '--no-trunc'])).split('\n').filter(Boolean)
  if (ids.length === 0) return ''
  const format = '{{.Id}} {{.Name}} {{.Config.Image}} {{.State.Status}} {{.State.StartedAt}} {{.RestartCount}} {{index .Config.Labels "deploy-action.tag"}}'
  return engine.docker(['container', 'inspect', '--format', format, ...ids])
}

/** Titles of the rows of the summary's steps table, in order. */
function summaryTitles(result: ActionResult): string[] {
  return [...result.summary.matchAll(/<tr><td>([^<]*)<\/td><td>[^<]*? (?:ok|warning|failed|skipped)<\/td>/g)].map((match) => match[1] ?? '')
}

function expectSummaryBasics(result: ActionResult, steps: string[]): void {
  expect(result.summary).toContain('<h3>Steps</h3>')
  expect(result.summary).toContain('<tr><th>Step</th><th>Status</th><th>Duration</th><th>Detail</th></tr>')
  expect(summaryTitles(result)).toEqual(expect.arrayContaining(steps))
}

/**
 * The runner masks what `::add-mask::` registered, but the action itself must never print a secret:
 * it may appear only in its own `::add-mask::` line, and nowhere in the summary or the outputs.
 */
function expectNeverPrinted(result: ActionResult, secret: string): void {
  expect(result.masks).toContain(secret)
  const unmasked = result.stdout
    .split('\n')
    .filter((line) => !line.startsWith('::add-mask::'))
    .join('\n')
  expect(unmasked).not.toContain(secret)
  expect(result.stderr).not.toContain(secret)
  expect(result.summary).not.toContain(secret)
  expect(JSON.stringify(result.outputs)).not.toContain(secret)
}

function releases(...specs: [tag: string, day: number, extra?: Partial<FakeReleaseSpec>][]): FakeReleaseSpec[] {
  return specs.map(([tag, day, extra]) => ({ tag, publishedAt: `2026-01-${String(day).padStart(2, '0')}T12:00:00Z`, ...extra }))
}

describe('deploy with strategy: replace on a real engine', () => {
  it('first deploy: deployed, no previous tag, the image pinned by its registry digest', async () => {
    const web = await site('first')
    const result = await deploy(web, 'v1')

    expect({ exit: result.exitCode, outputs: result.outputs }).toEqual({
      exit: 0,
      outputs: { result: 'deployed', tag: 'v1', 'previous-tag': '', image: `${image}:v1@${digests.get('v1')}`, 'deployment-id': expect.stringMatching(/^\d+$/) }
    })
    expect(result.outputs.image).toMatch(/@sha256:[0-9a-f]{64}$/)
    expect(await serving(web)).toBe('200 v1')
    expect(await serving(web, '/health')).toBe(`200 ${HEALTHY_BODY}`)
    expect(await containersOf(web)).toEqual({ first: { tag: 'v1', state: 'running' } })

    // One notice per step, titled by scope and step, then the verdict.
    expect(titles(result, 'notice')).toEqual(['Deploy · current', 'Deploy · login', 'Deploy · pull', 'Deploy · switch', 'Deploy · verify', 'Deploy · clean up', 'Result'])
    expect(titles(result, 'error')).toEqual([])
    expect(annotation(result, 'notice', 'Deploy · current')?.message).toMatch(/nothing named first runs yet: first deploy/)
    expect(annotation(result, 'notice', 'Deploy · pull')?.message).toMatch(new RegExp(`pulled ${image.replace(/[.]/g, '\\.')}:v1 \\(sha256:.*\\) \\(\\d`))
    expect(annotation(result, 'notice', 'Deploy · verify')?.message).toMatch(/v1 is healthy at http:\/\/127\.0\.0\.1:\d+\/health after [\d.]+ (ms|s) \([\d.]+ (ms|s)\)$/)
    expect(annotation(result, 'notice', 'Result')?.message).toBe('Deployed v1 to production; it is healthy.')
    expectSummaryBasics(result, ['Deploy · current', 'Deploy · login', 'Deploy · pull', 'Deploy · switch', 'Deploy · verify', 'Deploy · clean up'])
    expect(summaryStep(result, 'Deploy · verify')?.status).toBe('ok')
    expect(result.summary).toContain(`<code>${digests.get('v1')}</code>`)
  }, 60_000)

  it('healthy upgrade: v1 → v3 keeps v1 as <name>-previous; a further upgrade keeps exactly one previous', async () => {
    const web = await site('upgrade')
    await deployOk(web, 'v1')

    const upgrade = await deploy(web, 'v3')
    expect(upgrade.exitCode).toBe(0)
    expect(upgrade.outputs).toMatchObject({ result: 'deployed', tag: 'v3', 'previous-tag': 'v1', image: `${image}:v3@${digests.get('v3')}` })
    expect(await serving(web)).toBe('200 v3')
    expect(await containersOf(web)).toEqual({ upgrade: { tag: 'v3', state: 'running' }, 'upgrade-previous': { tag: 'v1', state: 'exited' } })
    expect(annotation(upgrade, 'notice', 'Deploy · current')?.message).toMatch(/^upgrade runs v1/)
    expect(annotation(upgrade, 'notice', 'Deploy · switch')?.message).toMatch(/^upgrade now runs v3; v1 is kept for a rollback/)
    expect(upgrade.summary).toMatch(/Ran before<\/td><td><code>v1<\/code>/)
    expect(upgrade.summary).toMatch(/Runs now<\/td><td><code>v3<\/code>/)

    const further = await deploy(web, 'v2')
    expect(further.exitCode).toBe(0)
    expect(further.outputs).toMatchObject({ result: 'deployed', tag: 'v2', 'previous-tag': 'v3' })
    expect(await serving(web)).toBe('200 v2')
    // v1 (the older previous) is gone: exactly one previous is kept.
    expect(await containersOf(web)).toEqual({ upgrade: { tag: 'v2', state: 'running' }, 'upgrade-previous': { tag: 'v3', state: 'exited' } })
    expect(annotation(further, 'notice', 'Deploy · clean up')?.message).toMatch(/^kept v3 for a rollback/)
  }, 90_000)

  it('upgrade to an image that never listens: rolled back to the newest stable release other than the failed tag', async () => {
    const web = await site('never', { deadline: '3s' })
    await deployOk(web, 'v1')
    // A draft, the failed tag itself and a prerelease do not count; v2 is the highest stable
    // release below the failed v4. What ran before (v1) is no release here, so it is not preferred,
    // and the rollback has to pull and start v2.
    github.setReleases(
      releases(['v2', 2], ['v3-rc.1', 3, { prerelease: true }], ['v4-never-listens', 4], ['v5', 5, { draft: true }])
    )
    const result = await deploy(web, 'v4-never-listens')

    expect(result.exitCode).toBe(1)
    expect(result.outputs).toMatchObject({ result: 'rolled-back', tag: 'v2', 'previous-tag': 'v1', image: `${image}:v2@${digests.get('v2')}` })
    expect(await serving(web)).toBe('200 v2')
    expect(await containersOf(web)).toEqual({ never: { tag: 'v2', state: 'running' }, 'never-previous': { tag: 'v1', state: 'exited' } })

    const verify = annotation(result, 'error', 'Deploy · verify')
    expect(verify?.message).toMatch(/v4-never-listens is unhealthy: GET http:\/\/127\.0\.0\.1:\d+\/health failed: connection refused \(ECONNREFUSED\) on every probe for 3 ?s/)
    expect(annotation(result, 'notice', 'Rollback · target')?.message).toMatch(/^v2 \(last-release\)/)
    expect(annotation(result, 'notice', 'Rollback · restore')?.message).toMatch(/^pulled and started v2/)
    expect(annotation(result, 'notice', 'Rollback · verify')?.message).toMatch(/^v2 is healthy/)
    expect(annotation(result, 'error', 'Deploy failed, rolled back')?.message).toMatch(/^Deploy of v4-never-listens failed: .*Rolled back: v2 runs now and is healthy\.$/)
    expect(titles(result, 'error')).toEqual(['Deploy · verify', 'Deploy failed, rolled back'])
    expect(github.requests.some((request) => request.method === 'GET' && request.path === '/repos/acme/web/releases')).toBe(true)

    expectSummaryBasics(result, ['Deploy · verify', 'Rollback · target', 'Rollback · restore', 'Rollback · verify'])
    expect(summaryStep(result, 'Deploy · verify')).toMatchObject({ status: 'failed' })
    expect(summaryStep(result, 'Deploy · verify')?.durationMs).toBeGreaterThanOrEqual(2_900)
    expect(result.summary).toMatch(/<summary>Health probes \(\d+\)<\/summary>/)
    expect(result.summary).toContain('connection refused')
    expect(result.summary).toContain('Last log lines of the failed container')
    expect(result.summary).toContain('app: started; this build never opens port')
  }, 90_000)

  it('upgrade to an image that exits at start: detected within 2 s and rolled back to the kept previous container', async () => {
    const web = await site('exits', { deadline: '8s' })
    await deployOk(web, 'v1')
    github.setReleases(releases(['v1', 1], ['v4-exits', 2]))
    const result = await deploy(web, 'v4-exits')

    expect(result.exitCode).toBe(1)
    expect(result.outputs).toMatchObject({ result: 'rolled-back', tag: 'v1', 'previous-tag': 'v1', image: `${image}:v1@${digests.get('v1')}` })
    expect(await serving(web)).toBe('200 v1')
    expect(await containersOf(web)).toEqual({ exits: { tag: 'v1', state: 'running' } })

    // Detected by the container's state, long before the 8 s deadline.
    const verifyRow = summaryStep(result, 'Deploy · verify')
    expect(verifyRow?.status).toBe('failed')
    expect(verifyRow?.durationMs).toBeLessThan(2_000)
    const verify = annotation(result, 'error', 'Deploy · verify')
    expect(verify?.message).toMatch(/v4-exits is unhealthy: the container exits (?:is restarting after it )?exited with code 1 \(([\d.]+) ?s after the health check began\)/)
    const seconds = Number(/\(([\d.]+) ?s after the health check began\)/.exec(verify?.message ?? '')?.[1])
    expect(seconds).toBeLessThan(2)

    // What ran before is a release: it is preferred, and its kept container is reused.
    expect(annotation(result, 'notice', 'Rollback · target')?.message).toMatch(/^v1 \(previous\)/)
    expect(annotation(result, 'notice', 'Rollback · restore')?.message).toMatch(/^restarted the kept v1/)
    expect(annotation(result, 'error', 'Deploy failed, rolled back')?.message).toMatch(/Rolled back: v1 runs now and is healthy\.$/)
    expect(result.summary).toContain('exited with code 1')
    expect(result.summary).toContain('Last log lines of the failed container')
    expect(result.summary).toContain('app: fatal: cannot start v4-exits: required configuration is missing')
  }, 90_000)

  it('slow start inside the deadline: deployed once it answers', async () => {
    const web = await site('slow', { deadline: '8s' })
    const result = await deploy(web, 'v4-slow-start')

    expect(result.exitCode).toBe(0)
    expect(result.outputs).toMatchObject({ result: 'deployed', tag: 'v4-slow-start', 'previous-tag': '' })
    expect(await serving(web)).toBe('200 v4-slow-start')
    expect(titles(result, 'error')).toEqual([])
    // It refused connections for its 2 s warm-up; that counted as starting, not as failure.
    expect(summaryStep(result, 'Deploy · verify')?.durationMs).toBeGreaterThanOrEqual(2_000)
    expect(annotation(result, 'notice', 'Deploy · verify')?.message).toMatch(/^v4-slow-start is healthy/)
  }, 60_000)

  it('wrong health body: fails expect-body and rolls back to what ran before (rollback.to: previous)', async () => {
    const web = await site('body', { deadline: '2s', rollbackTo: 'previous' })
    await deployOk(web, 'v1')
    const requestsBefore = github.requests.length
    const result = await deploy(web, 'v4-wrong-body')

    expect(result.exitCode).toBe(1)
    expect(result.outputs).toMatchObject({ result: 'rolled-back', tag: 'v1', 'previous-tag': 'v1' })
    expect(await serving(web)).toBe('200 v1')
    expect(await serving(web, '/health')).toBe(`200 ${HEALTHY_BODY}`)
    expect(annotation(result, 'error', 'Deploy · verify')?.message).toMatch(new RegExp(`answered 200, but the body does not contain \\\\?"${HEALTHY_BODY}\\\\?"`))
    expect(annotation(result, 'notice', 'Rollback · target')?.message).toMatch(/^v1 \(previous\)/)
    expect(annotation(result, 'notice', 'Rollback · restore')?.message).toMatch(/^restarted the kept v1/)
    // rollback.to: previous never asks for releases.
    expect(github.requests.slice(requestsBefore).filter((request) => request.path.endsWith('/releases'))).toEqual([])
    expect(result.summary).toContain('body does not contain')
    expect(result.summary).toContain('Last log lines of the failed container')
    expect(result.summary).toContain('app: wrong-body v4-wrong-body listening on 127.0.0.1')
  }, 90_000)

  it('manual rollback: without rollback-to goes to the newest release older than what runs; with it, to that tag; both exit 0', async () => {
    const web = await site('manual')
    await deployOk(web, 'v1')
    await deployOk(web, 'v3')
    github.setReleases(releases(['v1', 1], ['v2', 2], ['v3', 3], ['v4-exits', 4, { prerelease: true }]))

    const toOlder = await act(web, { command: 'rollback' })
    expect(toOlder.exitCode).toBe(0)
    expect(toOlder.outputs).toMatchObject({ result: 'rolled-back', tag: 'v2', 'previous-tag': 'v3', image: `${image}:v2@${digests.get('v2')}` })
    expect(await serving(web)).toBe('200 v2')
    expect(annotation(toOlder, 'notice', 'Rollback · target')?.message).toMatch(/^the release before v3: v2/)
    expect(annotation(toOlder, 'notice', 'Result')?.message).toBe('Rolled back production from v3 to v2; it is healthy.')
    expect(titles(toOlder, 'error')).toEqual([])
    expectSummaryBasics(toOlder, ['Rollback · current', 'Rollback · target', 'Rollback · login', 'Rollback · pull', 'Rollback · switch', 'Rollback · verify'])
    expect(titles(toOlder, 'notice')).toEqual(expect.arrayContaining(['Rollback · pull', 'Rollback · switch', 'Rollback · verify', 'Result']))

    const toTag = await act(web, { command: 'rollback', 'rollback-to': 'v1' })
    expect(toTag.exitCode).toBe(0)
    expect(toTag.outputs).toMatchObject({ result: 'rolled-back', tag: 'v1', 'previous-tag': 'v2' })
    expect(await serving(web)).toBe('200 v1')
    expect(annotation(toTag, 'notice', 'Rollback · target')?.message).toMatch(/^rollback-to: v1/)
    expect(titles(toTag, 'error')).toEqual([])
    expect(await containersOf(web)).toEqual({ manual: { tag: 'v1', state: 'running' }, 'manual-previous': { tag: 'v2', state: 'exited' } })
  }, 120_000)

  it('failed first deploy: nothing to roll back to, result failed, and no container is left behind', async () => {
    const web = await site('broken', { deadline: '2s' })
    github.setReleases([])
    const result = await deploy(web, 'v4-never-listens')

    expect(result.exitCode).toBe(1)
    expect(result.outputs).toMatchObject({ result: 'failed', tag: '', 'previous-tag': '' })
    expect(await serving(web)).toBe('ECONNREFUSED')
    expect(await containersOf(web)).toEqual({})
    const verdict = annotation(result, 'error', 'Deploy failed')
    expect(verdict?.message).toMatch(/^Deploy of v4-never-listens failed: .*There is nothing to roll back to \(first deploy\), so broken is not running\.$/)
    expect(annotation(result, 'notice', 'Rollback · target')?.message).toMatch(/^nothing to roll back to/)
    expect(result.summary).toContain('Last log lines of the failed container')
    expect(result.summary).toContain('this build never opens port')
  }, 60_000)

  it('wrong registry password: fails at Deploy · login with docker\'s message, nothing changes, the password is never printed', async () => {
    const web = await site('login')
    await deployOk(web, 'v1')
    const before = await allContainers()
    const wrongPassword = `wrong-${randomBytes(12).toString('hex')}`
    const result = await act(web, { tag: 'v3' }, { password: wrongPassword })

    expect(result.exitCode).toBe(1)
    expect(result.outputs).toMatchObject({ result: 'failed', tag: 'v1', 'previous-tag': 'v1' })
    expect(await serving(web)).toBe('200 v1')
    expect(await allContainers()).toBe(before)
    const login = annotation(result, 'error', 'Deploy · login')
    expect(login?.message).toMatch(/^docker login failed: .*(unauthorized|incorrect username or password)/i)
    expect(titles(result, 'error')).toEqual(['Deploy · login', 'Deploy failed'])
    expect(annotation(result, 'error', 'Deploy failed')?.message).toMatch(/Nothing was changed: v1 still runs\.$/)
    expect(result.summary).toMatch(/<tr><td>Deploy · login<\/td><td>❌ failed<\/td>/)
    expect(summaryStep(result, 'Deploy · pull')).toBeUndefined()

    expectNeverPrinted(result, wrongPassword)
  }, 60_000)

  it('dry run: plans the docker commands, runs only read-only ones and changes nothing', async () => {
    const web = await site('dry')
    await deployOk(web, 'v1')
    github.setReleases(releases(['v1', 1], ['v2', 2]))
    const before = await allContainers()
    const result = await act(web, { tag: 'v5', 'dry-run': true }, { watchDockerArgv: true })

    expect(result.exitCode).toBe(0)
    expect(result.outputs).toMatchObject({ result: 'planned', tag: 'v1', 'previous-tag': 'v1' })
    expect(await allContainers()).toBe(before)
    expect(await serving(web)).toBe('200 v1')
    expect(await engine.dockerResult(['image', 'inspect', `${image}:v5`])).toMatchObject({ exitCode: 1 })

    // The plan: every mutating command, in order, with the password nowhere in it.
    const planned = result.stdout
      .split('\n')
      .map((line) => /^\[dry-run\] would run: (.*)$/.exec(line)?.[1])
      .filter((line): line is string => line !== undefined)
    // The login is no longer planned: a dry run logs in for real (into the run's private docker
    // config on the runner, nothing on the host) to check the tag in the registry (issue 20).
    const expectedPlan = [
      `docker pull ${image}:v5`,
      // No leftover dry-next (the switch's one inspect shows it), so no rm is planned for it.
      expect.stringMatching(new RegExp(`^docker container create --name dry-next .* ${image.replace(/[.]/g, '\\.')}:v5$`)),
      'docker container stop --time 2 dry',
      'docker container rename dry dry-previous',
      'docker container rename dry-next dry',
      'docker container start dry'
    ]
    expect(planned).toEqual(expectedPlan)
    expect(result.summary).toContain('Plan (dry run: nothing was changed)')
    expect(result.summary).toContain(`docker pull ${image}:v5`)
    expectNeverPrinted(result, registry.password)
    expect(annotation(result, 'notice', 'Plan · rollback target')?.message).toMatch(/^a failed deploy would roll back to v1 \(previous\)/)
    expect(annotation(result, 'notice', 'Plan')?.message).toMatch(/^Dry run: would deploy .*:v5 to production; nothing was changed\.$/)

    // Only read-only docker commands ran.
    // `login` writes only the run's private client config; `manifest inspect` asks the registry.
    const readOnly = /^(version|info|(container|image) inspect|(container|image) ls|ps|images|login|--debug manifest inspect)\b/
    const commands = result.dockerArgv.map((argv) => argv.slice(1).join(' '))
    expect(commands.length).toBeGreaterThan(0)
    expect(commands.filter((command) => !readOnly.test(command))).toEqual([])
    // It proved the tag exists: logged in, and asked the registry without pulling (the argv
    // sampling above may miss a command this short, so the steps say it).
    expect(summaryStep(result, 'Deploy · login')).toMatchObject({ status: 'ok', detail: expect.stringContaining('logged in to') })
    expect(summaryStep(result, 'Deploy · tag')).toMatchObject({ status: 'ok' })
  }, 60_000)
})
