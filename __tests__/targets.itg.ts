/**
 * Issue 20 on a real engine and a real registry with basic auth, through the bundled action:
 * a rollback release without an image goes straight to what ran before (no pull of it is tried);
 * a dry run proves the tag exists without pulling, fails with nothing changed when it does not,
 * and only warns about missing secrets; `command: rollback` without releases goes back to what
 * the host keeps from before the version that runs now.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import type { ActionResult } from '../test-support/action-run.js'
import type { FakeGitHub } from '../test-support/fake-github.js'
import { annotation, expectDeployed, makeSite, pushAppImages, runStep, servedAt, startFixture, type AppImageSpec, type Fixture, type Site } from '../test-support/fixture.js'

const REPO = 'acme/web'
const IMAGES: AppImageSpec[] = [
  { tag: 'sha-aaa', behaviour: 'healthy' },
  { tag: 'sha-bbb', behaviour: 'healthy' },
  { tag: 'sha-ccc-exits', behaviour: 'exits' }
]

let fixture: Fixture & { github: FakeGitHub }
let engine: Fixture['engine']
let registry: Fixture['registry']
let github: FakeGitHub
let image: string

beforeAll(async () => {
  fixture = await startFixture({ github: true })
  ;({ engine, registry, github } = fixture)
  image = `${registry.address}/${REPO}`
  // The engine holds nothing the action did not pull itself.
  await pushAppImages(fixture, REPO, IMAGES)
}, 90_000)

afterAll(async () => {
  await fixture?.stop()
}, 60_000)

function site(name: string, extra: string[] = []): Promise<Site> {
  return makeSite(fixture.dirs, name, ({ port }) =>
    [
      `image: ${image}`,
      `name: ${name}`,
      'container:',
      '  network: host',
      '  init: true',
      '  stop-timeout: 2s',
      `  env: { PORT: "${port}" }`,
      ...extra,
      'health:',
      `  url: http://127.0.0.1:${port}/health`,
      '  interval: 150ms',
      '  deadline: 4s',
      ''
    ].join('\n')
  )
}

/** Runs the action with RUNNER_DEBUG, so stdout lists every docker command it ran (`##[debug]docker …`). */
function act(target: Site, inputs: Record<string, string>, env: Record<string, string | undefined> = {}): Promise<ActionResult> {
  return runStep(fixture, target, inputs, { env, debug: true, timeoutMs: 60_000 })
}

async function deployOk(target: Site, tag: string): Promise<void> {
  expectDeployed(await act(target, { tag }), tag)
}

/** The docker commands the action ran, from its debug lines. */
function dockerCommands(result: ActionResult): string[] {
  return result.stdout
    .split('\n')
    .map((line) => /^::debug::docker (.*)$/.exec(line.trim())?.[1])
    .filter((line): line is string => line !== undefined)
}

/** What the app on the site's port says, or the connection error code. */
function serving(target: Site): Promise<string> {
  return servedAt(`http://127.0.0.1:${target.port}/version`)
}

/** Every container of the site with what would show a change. */
async function snapshot(target: Site): Promise<string> {
  const ids = (await engine.docker(['ps', '-aq', '--no-trunc', '--filter', `name=${target.name}`])).split('\n').filter(Boolean)
  if (ids.length === 0) return ''
  return engine.docker(['container', 'inspect', '--format', '{{.Id}} {{.Name}} {{.State.Status}} {{.State.StartedAt}} {{.RestartCount}}', ...ids])
}

describe('a rollback release without an image', () => {
  it('goes straight to what ran before, says so, and never tries to pull it', async () => {
    const web = await site('norelimg')
    github.setReleases([{ tag: 'v1.0.0', publishedAt: '2026-01-01T10:00:00Z' }])
    await deployOk(web, 'sha-aaa')

    const result = await act(web, { tag: 'sha-ccc-exits' })

    expect(result.exitCode).toBe(1)
    expect(result.outputs).toMatchObject({ result: 'rolled-back', tag: 'sha-aaa', 'previous-tag': 'sha-aaa' })
    const warning = annotation(result, 'warning', 'Rollback · target')
    expect(result.annotations.filter((entry) => entry.title === 'Rollback · target').map((entry) => entry.message).join('\n')).toMatch(
      /The rollback to v1\.0\.0 failed \(127\.0\.0\.1:\d+\/acme\/web:v1\.0\.0 is not in the registry \(docker manifest inspect: manifest unknown\), so no pull was tried\); putting back sha-aaa, which ran before\./
    )
    expect(warning).toBeDefined()
    expect(annotation(result, 'error', 'Deploy failed, rolled back')?.message).toMatch(/The rollback to v1\.0\.0 failed \(.*not in the registry.*\), so sha-aaa, which ran before, was put back: it runs now and is healthy\.$/)
    expect(result.summary).toContain('v1.0.0 is not in the registry')
    const commands = dockerCommands(result)
    expect(commands).toContain(`--debug manifest inspect --insecure ${image}:v1.0.0`)
    expect(commands.filter((command) => command.startsWith('pull'))).toEqual([`pull ${image}:sha-ccc-exits`])
    expect(await serving(web)).toBe('200 sha-aaa')
  }, 90_000)
})

describe('a dry run proves the tag exists, without pulling', () => {
  it('a tag the registry has: planned, logged in, nothing pulled', async () => {
    const web = await site('dryok')
    // No release: the plan's rollback target (nothing ran before) needs no warning of its own.
    github.setReleases([])
    const result = await act(web, { tag: 'sha-bbb', 'dry-run': 'true' })
    expect(result.exitCode).toBe(0)
    expect(result.outputs.result).toBe('planned')
    const commands = dockerCommands(result)
    expect(commands).toContain(`login --username ${registry.username} --password-stdin ${registry.address}`)
    expect(commands).toContain(`--debug manifest inspect --insecure ${image}:sha-bbb`)
    expect(commands.some((command) => command.startsWith('pull'))).toBe(false)
    expect((await engine.dockerResult(['image', 'inspect', `${image}:sha-bbb`])).exitCode).not.toBe(0)
    expect(result.annotations.filter((entry) => entry.level !== 'notice')).toEqual([])
  }, 60_000)

  it('a missing tag: a clear error, exit 1, result failed, nothing changed on the engine', async () => {
    const web = await site('drymiss')
    await deployOk(web, 'sha-aaa')
    const before = await snapshot(web)

    const result = await act(web, { tag: 'sha-nope', 'dry-run': 'true' })

    expect(result.exitCode).toBe(1)
    expect(result.outputs.result).toBe('failed')
    expect(annotation(result, 'error', 'Deploy · tag')?.message).toMatch(new RegExp(`${image.replace(/[.]/g, '\\.')}:sha-nope is not in the registry \\(docker manifest inspect: manifest unknown\\)`))
    expect(await snapshot(web)).toBe(before)
    expect(await serving(web)).toBe('200 sha-aaa')
  }, 60_000)

  it('missing secrets (a pull request from a fork): warnings, the tag check cannot tell, exit 0', async () => {
    const web = await site('drysecret', ['  secrets: [DATABASE_URL]'])
    const result = await act(web, { tag: 'sha-bbb', 'dry-run': 'true', 'registry-password': '' }, { DATABASE_URL: undefined })
    expect(result.exitCode).toBe(0)
    expect(result.outputs.result).toBe('planned')
    const warnings = result.annotations.filter((entry) => entry.level === 'warning')
    expect(warnings.map((entry) => entry.title)).toEqual(expect.arrayContaining(['Missing secret DATABASE_URL', 'Input registry-password', 'Deploy · tag']))
    expect(annotation(result, 'warning', 'Deploy · tag')?.message).toMatch(/Could not tell whether the registry holds .*:sha-bbb: .*no basic auth credentials.*No registry credentials were given/)
    expect(result.annotations.filter((entry) => entry.level === 'error')).toEqual([])
    expect(dockerCommands(result).some((command) => command.startsWith('login'))).toBe(false)
  }, 60_000)
})

describe('command: rollback with rollback-to empty and no releases', () => {
  it('goes back to what the host keeps from before the version that runs now, with a warning', async () => {
    const web = await site('norel')
    github.setReleases([])
    await deployOk(web, 'sha-aaa')
    await deployOk(web, 'sha-bbb')

    const result = await act(web, { command: 'rollback' })

    expect(result.exitCode).toBe(0)
    expect(result.outputs).toMatchObject({ result: 'rolled-back', tag: 'sha-aaa', 'previous-tag': 'sha-bbb' })
    expect(annotation(result, 'warning', 'Rollback · target')?.message).toMatch(
      /^No release to roll back to: there is no published release \(drafts and prereleases do not count\)\. Rolling back to sha-aaa, which ran before sha-bbb and is kept on the host\.$/
    )
    expect(await serving(web)).toBe('200 sha-aaa')
  }, 90_000)

  it('rollback-to: previous means the same, releases or not', async () => {
    const web = await site('prevkw')
    github.setReleases([{ tag: 'v1.0.0', publishedAt: '2026-01-01T10:00:00Z' }])
    await deployOk(web, 'sha-aaa')
    await deployOk(web, 'sha-bbb')

    const result = await act(web, { command: 'rollback', 'rollback-to': 'previous' })

    expect(result.exitCode).toBe(0)
    expect(result.outputs).toMatchObject({ result: 'rolled-back', tag: 'sha-aaa' })
    expect(dockerCommands(result)).not.toContain(`pull ${image}:previous`)
    expect(await serving(web)).toBe('200 sha-aaa')
  }, 90_000)
})
