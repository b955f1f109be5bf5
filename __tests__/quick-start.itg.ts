/**
 * The README's `## Quick start`, deployed as written, so the README and the code stay in sync.
 *
 * At test time this reads README.md and takes the yaml blocks of its Quick start section:
 * - the deploy config (`.github/deploy.yml`), changed only where a test engine forces it
 *   (`FORCED` below, with why; the test proves nothing else differs), written to the workspace;
 * - the deploy workflow: its build step's `tags:` and the action step's `tag:` must agree, and
 *   the action step's `with:` and `env:` become the action's inputs and environment, with the
 *   `${{ … }}` expressions the runner would evaluate (github.sha a fake commit SHA pushed to the
 *   test registry as the image tag, github.actor / secrets.GITHUB_TOKEN the registry's test
 *   credentials, secrets.DATABASE_URL a secret value).
 * Then the bundled action deploys two commits on a private engine: both deploy, the proxy serves
 * each one's version on proxy.port, the containers are named as the README says (web-proxy,
 * web-blue, web-green, network web-net), no secret is printed, and each post step exits 0.
 *
 * Network: the engine's user networks come from a free /20 of 10.255.0.0/16 (as
 * proxy-settings.itg.ts) and its containers get `--dns 127.0.0.1`. The test talks to 127.0.0.1
 * only (registry, fake GitHub API, proxy.port).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { dump, load } from 'js-yaml'
import { FAKE_GITHUB_TOKEN, REPO_ROOT, runAction, type ActionResult } from '../test-support/action-run.js'
import type { FakeGitHub } from '../test-support/fake-github.js'
import {
  containerStates,
  freeAddressPool,
  makeSite,
  pushAppImages,
  pushProxyImage,
  startFixture,
  transcriptOf,
  writeDeployConfig,
  type Fixture
} from '../test-support/fixture.js'
import { httpGet } from '../test-support/net.js'
import { quickStartBlocks } from '../test-support/readme-blocks.js'

type Yaml = Record<string, unknown>

interface WorkflowStep {
  uses?: string
  with?: Record<string, unknown>
  env?: Record<string, unknown>
}

interface Workflow {
  jobs: Record<string, { steps?: WorkflowStep[] }>
}

const blocks = quickStartBlocks(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8'))
const readmeConfig = load(blocks.config) as Yaml
const workflow = load(blocks.workflow) as Workflow

/**
 * Everything this test changes in the README's config, and why a test engine forces it. Nothing
 * else may differ (asserted below), so a key the README adds later cannot be overridden unnoticed.
 * - `image`: ghcr.io is out of reach (no internet here); the test registry's repository instead,
 *   whose last path segment is `web` like the README's, so the names stay web-proxy, web-blue.
 * - `proxy.port`: 8080 may be taken on this machine; a free port.
 * - `proxy.image`: the default haproxy:3.0-alpine cannot be pulled here; HAProxy from Debian's
 *   package (haproxy-image.ts), pushed to the test registry. The README sets no proxy.image, so
 *   this one is added, not replaced.
 * - `health.url`: its port only, which must follow proxy.port (the README: "health.url is the
 *   public address"; the action warns when its port is not proxy.port). Host and path stay.
 */
const FORCED = ['health.url', 'image', 'proxy.image', 'proxy.port'] as const
/** Of `FORCED`, the keys the README's config does not set. */
const ADDED = ['proxy.image']

const DATABASE_URL = `postgres://web:${randomBytes(12).toString('hex')}@db.internal/web`

let fixture: Fixture & { github: FakeGitHub }
let engine: Fixture['engine']
let registry: Fixture['registry']
let github: FakeGitHub
let workspace: string
let port: number
/** The config as written to the workspace. */
let deployedConfig: Yaml
/** Two fake commits, each pushed as `<image>:<sha>`. */
const SHAS = [fakeSha(), fakeSha()] as const
/**
 * A third commit whose app answers /health with 200 and a body without `ok` (`expect-body` is a
 * substring: the image's default `not ok` would pass): its deploy must be rolled back.
 */
const BROKEN_SHA = fakeSha()
/** Set to a directory to keep each step's job summary there, for a person to render and read. */
const KEEP_SUMMARIES = process.env['QUICK_START_SUMMARIES']

function fakeSha(): string {
  return randomBytes(20).toString('hex')
}

function isMapping(value: unknown): value is Yaml {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Dotted paths of every leaf (scalar or list) where `a` and `b` differ, keys present in one only included. */
function changedPaths(a: unknown, b: unknown, prefix = ''): string[] {
  if (isMapping(a) && isMapping(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])]
    return keys.flatMap((key) => changedPaths(a[key], b[key], prefix ? `${prefix}.${key}` : key)).sort()
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix]
}

function hasPath(value: unknown, path: string): boolean {
  let current = value
  for (const key of path.split('.')) {
    if (!isMapping(current) || !(key in current)) return false
    current = current[key]
  }
  return true
}

function setPath(target: Yaml, path: string, value: unknown): void {
  const keys = path.split('.')
  let current = target
  for (const key of keys.slice(0, -1)) {
    const next = current[key]
    if (!isMapping(next)) throw new Error(`the README's config has no mapping at ${key} (setting ${path})`)
    current = next
  }
  current[keys[keys.length - 1] as string] = value
}

/** The README's config with exactly the `FORCED` keys set to this test's values. */
function forcedConfig(forced: Record<(typeof FORCED)[number], unknown>): Yaml {
  // A JSON round trip rather than structuredClone, whose objects come from outside jest's realm
  // and which js-yaml's dump then refuses; the config is plain data.
  const config = JSON.parse(JSON.stringify(readmeConfig)) as Yaml
  for (const key of FORCED) setPath(config, key, forced[key])
  return config
}

/** The one step of a workflow job that uses an action whose name matches `uses`. */
function stepOf(job: string, uses: RegExp): WorkflowStep {
  const steps = (workflow.jobs[job]?.steps ?? []).filter((step) => uses.test(step.uses ?? ''))
  if (steps.length !== 1) throw new Error(`the README's workflow: expected one ${String(uses)} step in job ${job}, found ${steps.length}`)
  return steps[0] as WorkflowStep
}

const buildStep = stepOf('build', /^docker\/build-push-action@/)
const deployStep = stepOf('deploy', /(^|\/)deploy-action@/)

/**
 * Evaluates the `${{ … }}` expressions of a `with:`/`env:` value as the runner would, for the
 * contexts this test knows; any other expression fails the test (the README grew one the test
 * does not model).
 */
function evaluate(value: unknown, context: Record<string, string>): string {
  return String(value).replace(/\$\{\{\s*(.*?)\s*\}\}/g, (_match, expression: string) => {
    const result = context[expression]
    if (result === undefined) throw new Error(`the README's workflow uses \${{ ${expression} }}, which this test does not model`)
    return result
  })
}

function evaluateAll(values: Record<string, unknown> | undefined, context: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(values ?? {}).map(([name, value]) => [name, evaluate(value, context)]))
}

/** What the runner makes of the deploy step for commit `sha`: its inputs, its env and the github context. */
function stepFor(sha: string): { inputs: Record<string, string>; env: Record<string, string>; github: { sha: string; actor: string; apiUrl: string } } {
  const context = {
    'github.sha': sha,
    'github.actor': registry.username,
    'secrets.GITHUB_TOKEN': registry.password,
    'secrets.DATABASE_URL': DATABASE_URL
  }
  return {
    inputs: evaluateAll(deployStep.with, context),
    env: evaluateAll(deployStep.env, context),
    github: { sha, actor: registry.username, apiUrl: github.url }
  }
}

async function runStep(sha: string, phase: 'main' | 'post', state?: Record<string, string>): Promise<ActionResult> {
  const step = stepFor(sha)
  const result = await runAction({
    workspace,
    dockerHost: engine.dockerHost,
    github: step.github,
    inputs: step.inputs,
    env: step.env,
    phase,
    ...(state && { state }),
    timeoutMs: 150_000
  })
  if (KEEP_SUMMARIES) {
    mkdirSync(KEEP_SUMMARIES, { recursive: true })
    writeFileSync(join(KEEP_SUMMARIES, `${String(++keptSummaries).padStart(2, '0')}-${sha.slice(0, 7)}-${phase}.md`), result.summary)
  }
  return result
}
let keptSummaries = 0

/** Every value that must never be printed. */
function secrets(): string[] {
  return [DATABASE_URL, registry.password, FAKE_GITHUB_TOKEN]
}

function expectNoSecrets(result: ActionResult): void {
  const printed = result.stdout
    .split('\n')
    .filter((line) => !line.startsWith('::add-mask::'))
    .join('\n')
  for (const secret of secrets()) {
    expect(printed).not.toContain(secret)
    expect(result.stderr).not.toContain(secret)
    expect(result.summary).not.toContain(secret)
    expect(JSON.stringify(result.outputs)).not.toContain(secret)
    expect(JSON.stringify(result.state)).not.toContain(secret)
  }
}

/** Containers named `web-…` (the deploy lock aside): name → tag label and state. */
async function webContainers(): Promise<Record<string, string>> {
  return Object.fromEntries(Object.entries(await containerStates(engine, 'web')).filter(([container]) => container.startsWith('web-')))
}

/** What answers on proxy.port at `path`: as `servedAt` (fixture.ts), with the 3 s timeout this test has always given it. */
async function served(path: string): Promise<string> {
  try {
    const response = await httpGet(`http://127.0.0.1:${port}${path}`, { timeoutMs: 3_000 })
    return `${response.status} ${response.body}`
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error)
  }
}

beforeAll(async () => {
  fixture = await startFixture({ github: true, addressPool: freeAddressPool(255) })
  ;({ engine, registry, github } = fixture)
  const site = await makeSite(fixture.dirs, 'quick-start')
  ;({ port, workspace } = site)
  const repository = 'acme/web'
  // The app listens on $BIND:$PORT, BIND 127.0.0.1 by default; inside a proxy slot it must listen
  // on all addresses of its container (proxy.app-port "on 0.0.0.0"). An image property, not a
  // config change: PORT comes from the README's container.env.
  const commits = [...SHAS.map((sha) => ({ sha, behaviour: 'healthy' as const })), { sha: BROKEN_SHA, behaviour: 'wrong-body' as const }]
  const images = commits.map(({ sha, behaviour }) => ({ tag: sha, behaviour, options: { changes: ['ENV BIND=0.0.0.0'], ...(behaviour === 'wrong-body' && { healthBody: 'database unreachable' }) } }))
  // The action pulls every image itself, the proxy's included.
  const [haproxy] = await Promise.all([pushProxyImage(fixture), pushAppImages(fixture, repository, images, { concurrency: images.length })])

  const healthUrl = new URL(String((readmeConfig.health as Yaml | undefined)?.url))
  healthUrl.port = String(port)
  deployedConfig = forcedConfig({
    image: `${registry.address}/${repository}`,
    'proxy.port': port,
    'proxy.image': haproxy.pushed.reference,
    'health.url': healthUrl.href
  })
  writeDeployConfig(workspace, dump(deployedConfig))
}, 180_000)

afterAll(async () => {
  await fixture?.stop()
}, 90_000)

describe("the README's Quick start", () => {
  it('has a config for strategy: proxy whose image the workflow builds as <image>:${{ github.sha }} and deploys as tag ${{ github.sha }}', () => {
    expect(readmeConfig.strategy).toBe('proxy')
    expect(buildStep.with?.tags).toBe(`${String(readmeConfig.image)}:\${{ github.sha }}`)
    expect(buildStep.with?.push).toBe(true)
    expect(deployStep.with?.tag).toBe('${{ github.sha }}')
    // Every name under container.secrets reaches the step through its env.
    const secretNames = ((readmeConfig.container as Yaml | undefined)?.secrets ?? []) as string[]
    expect(secretNames).toEqual(['DATABASE_URL'])
    for (const name of secretNames) expect(deployStep.env?.[name]).toBe(`\${{ secrets.${name} }}`)
  })

  it('is deployed with only the keys a test engine forces changed', () => {
    // The README sets each forced key, except those listed as added.
    for (const key of FORCED) expect(`${key}: ${String(hasPath(readmeConfig, key))}`).toBe(`${key}: ${String(!ADDED.includes(key))}`)
    // What the action reads, parsed back from the workspace: the README's config but for FORCED.
    const written = load(readFileSync(join(workspace, '.github', 'deploy.yml'), 'utf8'))
    expect(written).toEqual(deployedConfig)
    expect(changedPaths(readmeConfig, written)).toEqual([...FORCED].sort())
    // health.url keeps the README's host and path; only its port follows proxy.port.
    const readmeUrl = new URL(String((readmeConfig.health as Yaml).url))
    const writtenUrl = new URL(String(((written as Yaml).health as Yaml).url))
    const parts = (url: URL): string[] => [url.protocol, url.hostname, url.pathname, url.search]
    expect(parts(writtenUrl)).toEqual(parts(readmeUrl))
    expect(readmeUrl.port).toBe(String((readmeConfig.proxy as Yaml).port))
    expect(writtenUrl.port).toBe(String(port))
    // The image's last path segment is the README's, so the container names are too.
    expect(String(deployedConfig.image).split('/').pop()).toBe(String(readmeConfig.image).split('/').pop())
  })

  describe('deploys two commits on a private engine', () => {
    const runs: { main: ActionResult; post: ActionResult }[] = []

    it('first commit: web-net, web-proxy and web-blue, serving its tag through the proxy; post step exits 0', async () => {
      const sha = SHAS[0]
      const main = await runStep(sha, 'main')
      if (main.exitCode !== 0) throw new Error(transcriptOf(main))
      expect(main.outputs).toMatchObject({ result: 'deployed', tag: sha })
      expect(main.outputs.image).toContain(`${String(deployedConfig.image)}:${sha}`)
      expect(await served('/version')).toBe(`200 ${sha}`)
      expect(await served(new URL(String((deployedConfig.health as Yaml).url)).pathname)).toBe(`200 ${String((readmeConfig.health as Yaml)['expect-body'])}`)
      expect(await webContainers()).toEqual({ 'web-proxy': '- running', 'web-blue': `${sha} running` })
      const networks = (await engine.docker(['network', 'ls', '--format', '{{.Name}}'])).split('\n')
      expect(networks).toContain('web-net')
      // The README's container settings reached the slot: env, the secret by name, init; it publishes nothing.
      const env = JSON.parse(await engine.docker(['container', 'inspect', '--format', '{{json .Config.Env}}', 'web-blue'])) as string[]
      expect(env).toContain('PORT=3000')
      expect(env).toContain(`DATABASE_URL=${DATABASE_URL}`)
      expect((await engine.docker(['container', 'inspect', '--format', '{{.HostConfig.Init}}', 'web-blue'])).trim()).toBe('true')
      expect((await engine.docker(['port', 'web-blue'])).trim()).toBe('')
      expect(await engine.docker(['port', 'web-proxy'])).toContain(`:${port}`)
      // The README's url reaches the summary and the GitHub Deployment.
      expect(main.summary).toContain(String(readmeConfig.url))
      const statuses = github.requests.filter((request) => request.method === 'POST' && /\/deployments\/\d+\/statuses$/.test(request.path))
      expect(statuses.map((request) => (request.body as { environment_url?: string }).environment_url)).toContain(String(readmeConfig.url))

      const post = await runStep(sha, 'post', main.state)
      if (post.exitCode !== 0) throw new Error(transcriptOf(post))
      runs.push({ main, post })
    }, 200_000)

    it('second commit: web-green serves its tag through the proxy, web-blue kept stopped; post step exits 0', async () => {
      expect(runs).toHaveLength(1)
      const sha = SHAS[1]
      const main = await runStep(sha, 'main')
      if (main.exitCode !== 0) throw new Error(transcriptOf(main))
      expect(main.outputs).toMatchObject({ result: 'deployed', tag: sha, 'previous-tag': SHAS[0] })
      expect(await served('/version')).toBe(`200 ${sha}`)
      expect(await webContainers()).toEqual({ 'web-proxy': '- running', 'web-green': `${sha} running`, 'web-blue': `${SHAS[0]} exited` })

      const post = await runStep(sha, 'post', main.state)
      if (post.exitCode !== 0) throw new Error(transcriptOf(post))
      runs.push({ main, post })
    }, 200_000)

    it('a third, broken commit (wrong health body) never reaches users: rolled back, the second commit serves; post step exits 0', async () => {
      expect(runs).toHaveLength(2)
      const main = await runStep(BROKEN_SHA, 'main')
      expect([main.exitCode, main.outputs.result, main.outputs.tag]).toEqual([1, 'rolled-back', SHAS[1]])
      expect(await served('/version')).toBe(`200 ${SHAS[1]}`)
      const errors = main.annotations.filter((annotation) => annotation.level === 'error').map((annotation) => annotation.message)
      expect(errors.join('\n')).toContain(SHAS[1])
      expect(main.summary).toContain(BROKEN_SHA)
      const post = await runStep(BROKEN_SHA, 'post', main.state)
      if (post.exitCode !== 0) throw new Error(transcriptOf(post))
      expect(await served('/version')).toBe(`200 ${SHAS[1]}`)
      runs.push({ main, post })
    }, 200_000)

    it('prints no secret: not in the logs, summary, outputs or state of any step, nor sent to the GitHub API', () => {
      expect(runs).toHaveLength(3)
      for (const { main, post } of runs) {
        // The secrets were masked, so the runner would have hidden them anyway.
        for (const secret of secrets()) expect(main.masks).toContain(secret)
        expectNoSecrets(main)
        expectNoSecrets(post)
      }
      const sent = JSON.stringify(github.requests)
      for (const secret of secrets()) expect(sent).not.toContain(secret)
    })

    it('warns about nothing in the README config', () => {
      expect(runs).toHaveLength(3)
      for (const { main } of runs.slice(0, 2)) expect(main.annotations.filter((annotation) => annotation.level !== 'notice')).toEqual([])
    })
  })
})
