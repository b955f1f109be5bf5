/**
 * Secrets on a real engine: the registry password, every `container.secrets` value and the GitHub
 * token are masked before anything can print them, and never appear in a docker command line
 * (sampled from /proc while the deploy runs), the logs (debug included), annotations, summary,
 * outputs, saved state, or any label the action writes (the deploy lock's included). They do reach
 * the container and the pre-deploy hook, through the docker client's environment.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { FAKE_GITHUB_TOKEN, type ActionResult } from '../test-support/action-run.js'
import { makeSite, pushAppImages, runStep, startFixture, type Fixture, type Site } from '../test-support/fixture.js'
import { httpGet } from '../test-support/net.js'

const API_TOKEN = 'tok_9f2c41d7e8b3a6055c1e'
/** A multi-line secret (a key file): each of its lines must be masked on its own too. */
const DB_PASSWORD = 'first-line-of-a-key-Xq81\nsecond-line-of-a-key-Zr27'

let fixture: Fixture
let engine: Fixture['engine']
let registry: Fixture['registry']
let site: Site
let port: number
let image: string

beforeAll(async () => {
  fixture = await startFixture()
  ;({ engine, registry } = fixture)
  image = `${registry.address}/acme/web`
  await pushAppImages(fixture, 'acme/web', [
    { tag: 'v1', behaviour: 'healthy' },
    { tag: 'v2', behaviour: 'healthy' }
  ])
  site = await makeSite(fixture.dirs, 'vault', (target) =>
    [
      `image: ${image}`,
      'name: vault',
      'container:',
      '  network: host',
      '  init: true',
      '  stop-timeout: 2s',
      `  env: { PORT: "${target.port}" }`,
      '  secrets: [API_TOKEN, DB_PASSWORD]',
      'hooks:',
      // The hook sees the secret's value through its environment; the argv only names it.
      '  pre-deploy: [["sh", "-c", "test -n \\"$API_TOKEN\\" && test -n \\"$DB_PASSWORD\\""]]',
      'health:',
      `  url: http://127.0.0.1:${target.port}/health`,
      '  interval: 150ms',
      '  deadline: 5s',
      'rollback:',
      '  to: previous',
      ''
    ].join('\n')
  )
  port = site.port
}, 90_000)

afterAll(async () => {
  await fixture?.stop()
}, 60_000)

/** Every value that must never be printed, with the lines of the multi-line one. */
function secrets(): string[] {
  return [registry.password, API_TOKEN, DB_PASSWORD, ...DB_PASSWORD.split('\n'), FAKE_GITHUB_TOKEN]
}

/** Labels of every container of the engine, as JSON. */
async function allLabels(): Promise<string> {
  const ids = (await engine.docker(['ps', '-aq'])).split('\n').filter(Boolean)
  return ids.length === 0 ? '' : engine.docker(['container', 'inspect', '--format', '{{.Name}} {{json .Config.Labels}}', ...ids])
}

async function deploy(tag: string): Promise<{ result: ActionResult; lockLabels: string }> {
  let lockLabels: Promise<string> | undefined
  const result = await runStep(fixture, site, { tag }, {
    env: { API_TOKEN, DB_PASSWORD },
    watchDockerArgv: true,
    debug: true,
    timeoutMs: 60_000,
    onStdout: (chunk) => {
      // The lock is held from the first step on: read its labels while it exists.
      if (!lockLabels && chunk.includes('::group::Deploy · current')) {
        lockLabels = engine.docker(['container', 'inspect', '--format', '{{json .Config.Labels}}', 'vault-deploy-lock'])
      }
    }
  })
  if (result.exitCode !== 0) throw new Error(`deploy of ${tag} failed:\n${result.stdout}\n${result.stderr}`)
  return { result, lockLabels: (await lockLabels) ?? '' }
}

describe('secrets never leave the places they belong', () => {
  let runs: { result: ActionResult; lockLabels: string }[]
  beforeAll(async () => {
    runs = [await deploy('v1'), await deploy('v2')]
  }, 120_000)

  it('registers every secret, and each line of a multi-line one, as a mask before printing anything else', () => {
    for (const { result } of runs) {
      for (const secret of secrets()) expect(result.masks).toContain(secret)
      // The masks come first: nothing is printed before the last of them but other masks.
      const lines = result.stdout.split('\n')
      const lastMask = lines.map((line) => line.startsWith('::add-mask::')).lastIndexOf(true)
      expect(lines.slice(0, lastMask).filter((line) => !line.startsWith('::add-mask::'))).toEqual([])
    }
  })

  it('never puts a secret in the argv of a docker process, while the sampler saw the commands that use them', () => {
    for (const { result } of runs) {
      const argv = result.dockerArgv
      // The sampler works: it saw the login (password on stdin), the hook and the create (secrets by name).
      expect(argv).toContainEqual(['docker', 'login', '--username', registry.username, '--password-stdin', registry.address])
      expect(argv.some((command) => command[1] === 'container' && command[2] === 'run' && command.includes('API_TOKEN'))).toBe(true)
      expect(argv.some((command) => command[1] === 'container' && command[2] === 'create' && command.includes('DB_PASSWORD'))).toBe(true)
      const flat = argv.map((command) => command.join('\0')).join('\n')
      for (const secret of secrets()) expect(flat).not.toContain(secret)
    }
  })

  it('never prints a secret: logs (with debug on), annotations, summary, outputs, saved state', () => {
    for (const { result } of runs) {
      const unmasked = result.stdout
        .split('\n')
        .filter((line) => !line.startsWith('::add-mask::'))
        .join('\n')
      expect(result.stdout).toContain('::debug::docker container create')
      for (const secret of secrets()) {
        expect(unmasked).not.toContain(secret)
        expect(result.stderr).not.toContain(secret)
        expect(JSON.stringify(result.annotations)).not.toContain(secret)
        expect(result.summary).not.toContain(secret)
        expect(JSON.stringify(result.outputs)).not.toContain(secret)
        expect(JSON.stringify(result.state)).not.toContain(secret)
      }
    }
  })

  it('writes no secret into any label: the service, its previous version and the deploy lock', async () => {
    const labels = await allLabels()
    expect(labels).toContain('/vault {')
    expect(labels).toContain('/vault-previous {')
    for (const { lockLabels } of runs) expect(lockLabels).toContain('"deploy-action.lock.holder":"https://github.com/acme/web/actions/runs/')
    for (const secret of secrets()) {
      expect(labels).not.toContain(secret)
      for (const { lockLabels } of runs) expect(lockLabels).not.toContain(secret)
    }
  })

  it('still delivers the secrets to the container, through its environment', async () => {
    const env = JSON.parse(await engine.docker(['container', 'inspect', '--format', '{{json .Config.Env}}', 'vault'])) as string[]
    expect(env).toContain(`API_TOKEN=${API_TOKEN}`)
    expect(env).toContain(`DB_PASSWORD=${DB_PASSWORD}`)
    expect((await httpGet(`http://127.0.0.1:${port}/version`)).body).toBe('v2')
  })
})
