/**
 * `strategy: swarm` (issue 6) on a real single-node Swarm: a private engine joined to a private
 * swarm that listens on 127.0.0.1 only, with its own docker_gwbridge (own subnet, own bridge name)
 * and no ingress network; the service uses host networking and serves on a loopback port.
 * The bundled action runs as the runner runs it, pulling from a registry with auth; the GitHub
 * Releases API is the local fake. One service goes through create, a healthy update, an update
 * that Swarm itself rolls back, and an update whose HTTP check fails, re-deployed to the last release.
 * A second one, scaled to 8 replicas by hand, is updated with `swarm.replicas` unset (issue 18).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import type { ActionResult } from '../test-support/action-run.js'
import type { Engine } from '../test-support/engine.js'
import type { FakeGitHub } from '../test-support/fake-github.js'
import {
  initSwarm,
  leaveSwarm,
  makeSite,
  pushAppImages,
  removeGatewayBridge,
  runStep,
  startFixture,
  writeDeployConfig,
  type AppImageSpec,
  type Fixture
} from '../test-support/fixture.js'
import { freePort, httpGet } from '../test-support/net.js'

const REPO = 'acme/web'
const SERVICE = 'web'
const SCALED_SERVICE = 'web-scaled'
/** Distinctive, so the wrong-body image's `not ok` fails `expect-body`. */
const HEALTHY_BODY = 'status: green'

const IMAGES: AppImageSpec[] = [
  { tag: 'v1', behaviour: 'healthy' },
  { tag: 'v2', behaviour: 'healthy' },
  { tag: 'v3-exits', behaviour: 'exits' },
  { tag: 'v3-wrong-body', behaviour: 'wrong-body' }
]

let fixture: Fixture & { github: FakeGitHub }
let engine: Engine
let github: FakeGitHub
let image: string
let port: number
/** The port of the service scaled by hand; each of its tasks listens on a loopback address of its own. */
let scaledPort: number
let workspace: string
/** The bridge this test created for docker_gwbridge, deleted in afterAll if the engine left it. */
let gatewayBridge: string | undefined

beforeAll(async () => {
  fixture = await startFixture({ github: true })
  ;({ engine, github } = fixture)
  gatewayBridge = await initSwarm(engine)
  image = `${fixture.registry.address}/${REPO}`
  await pushAppImages(
    fixture,
    REPO,
    IMAGES.map(({ tag, behaviour }) => ({ tag, behaviour, options: { healthBody: behaviour === 'wrong-body' ? undefined : HEALTHY_BODY } }))
  )
  const site = await makeSite(fixture.dirs, SERVICE)
  ;({ port, workspace } = site)
  scaledPort = await freePort()
  // No `swarm:` settings at all: replicas and the update policy are whatever the service has.
  // With host networking the 8 tasks of one node cannot share one address and port: Swarm's
  // template gives each task its own loopback address (127.0.0.<slot>), which Linux serves without
  // any set-up. A 1 s stop grace period and a 5 s health deadline keep the limit a 1-replica
  // service without an update delay would get at 2 × (1 + 5 + 5) s + 30 s = 52 s.
  writeDeployConfig(
    workspace,
    [
      `image: ${image}`,
      `name: ${SCALED_SERVICE}`,
      'strategy: swarm',
      'container:',
      '  network: host',
      '  init: true',
      '  stop-timeout: 1s',
      '  env:',
      `    PORT: "${scaledPort}"`,
      '    BIND: "127.0.0.{{.Task.Slot}}"',
      '  secrets: [APP_TOKEN]',
      'health:',
      `  url: http://127.0.0.1:${scaledPort}/health`,
      `  expect-body: "${HEALTHY_BODY}"`,
      '  interval: 150ms',
      '  timeout: 1s',
      '  deadline: 5s',
      '  healthy-threshold: 2',
      ''
    ].join('\n'),
    'deploy-scaled.yml'
  )
  writeDeployConfig(
    workspace,
    [
      `image: ${image}`,
      `name: ${SERVICE}`,
      'strategy: swarm',
      'container:',
      '  network: host',
      '  init: true',
      '  stop-timeout: 2s',
      '  env:',
      `    PORT: "${port}"`,
      '  secrets: [APP_TOKEN]',
      '  labels: { team: web }',
      'swarm:',
      '  replicas: 1',
      '  order: stop-first',
      // Swarm watches each new task this long; a task that exits within it triggers the rollback.
      '  monitor: 2s',
      'health:',
      `  url: http://127.0.0.1:${port}/health`,
      `  expect-body: "${HEALTHY_BODY}"`,
      '  interval: 150ms',
      '  timeout: 1s',
      // Swarm reports a rolled-back task as running only some seconds after its container serves
      // (seen: 5.3 s on a loaded 2-core machine), so 5 s made the rollback's verify flaky.
      '  deadline: 12s',
      '  healthy-threshold: 2',
      ''
    ].join('\n')
  )
}, 120_000)

afterAll(async () => {
  if (engine) {
    await engine.dockerResult(['service', 'rm', SERVICE, SCALED_SERVICE]).catch(() => undefined)
    await leaveSwarm(engine)
  }
  await fixture?.stop()
  removeGatewayBridge(gatewayBridge)
}, 90_000)

const APP_TOKEN = 'swarm-secret-value-4711'

function deploy(tag: string, options: { config?: string; timeoutMs?: number } = {}): Promise<ActionResult> {
  return runStep(fixture, { workspace }, { tag, ...(options.config && { config: options.config }) }, { env: { APP_TOKEN }, timeoutMs: options.timeoutMs ?? 120_000 })
}

/** The verdict of a run, with its error annotations, so a failed expectation shows why. */
function outcome(result: ActionResult): { exit: number | null; result?: string; tag?: string; errors: string[] } {
  const errors = result.annotations.filter((annotation) => annotation.level === 'error').map((annotation) => annotation.message)
  return { exit: result.exitCode, result: result.outputs.result, tag: result.outputs.tag, errors }
}

interface ServiceState {
  image: string
  labels: Record<string, string>
  env: string[]
  containerLabels: Record<string, string>
  updateState?: string
}

async function serviceState(): Promise<ServiceState> {
  const [raw] = JSON.parse(await engine.docker(['service', 'inspect', SERVICE])) as {
    Spec: { Labels: Record<string, string>; TaskTemplate: { ContainerSpec: { Image: string; Env: string[]; Labels?: Record<string, string> } } }
    UpdateStatus?: { State: string }
  }[]
  if (!raw) throw new Error('no service')
  const container = raw.Spec.TaskTemplate.ContainerSpec
  return { image: container.Image, labels: raw.Spec.Labels, env: container.Env, containerLabels: container.Labels ?? {}, updateState: raw.UpdateStatus?.State }
}

async function serving(): Promise<string> {
  return (await httpGet(`http://127.0.0.1:${port}/version`)).body
}

describe('strategy: swarm on a single-node swarm', () => {
  it('creates the service on the first deploy', async () => {
    const result = await deploy('v1')
    expect(outcome(result)).toEqual({ exit: 0, result: 'deployed', tag: 'v1', errors: [] })
    expect(await serving()).toBe('v1')
    const service = await serviceState()
    // Swarm resolved the tag to the registry digest: what runs is pinned.
    expect(service.image).toMatch(new RegExp(`^${image}:v1@sha256:[0-9a-f]{64}$`))
    expect(service.labels).toMatchObject({ 'deploy-action.tag': 'v1', 'deploy-action.commit': expect.any(String) })
    expect(service.containerLabels).toEqual({ team: 'web' })
    // The secret reached the task's environment by name, never through argv or the log.
    expect(service.env).toContain(`APP_TOKEN=${APP_TOKEN}`)
    // Only the runner's mask command names it; the runner hides it everywhere else.
    expect(result.stdout.split('\n').filter((line) => !line.startsWith('::add-mask::')).join('\n')).not.toContain(APP_TOKEN)
    // Created, never updated: Swarm has no update status yet.
    expect(service.updateState).toBeUndefined()
  }, 90_000)

  it('updates the image and waits for Swarm to report the update completed', async () => {
    const result = await deploy('v2')
    expect(outcome(result)).toEqual({ exit: 0, result: 'deployed', tag: 'v2', errors: [] })
    expect(result.outputs['previous-tag']).toBe('v1')
    expect(await serving()).toBe('v2')
    const service = await serviceState()
    expect(service.updateState).toBe('completed')
    expect(service.labels['deploy-action.tag']).toBe('v2')
  }, 90_000)

  it('reports an update that Swarm itself rolled back as a failed deploy, with the task errors in the summary', async () => {
    github.setReleases([{ tag: 'v2', publishedAt: '2026-02-01T10:00:00Z' }])
    const result = await deploy('v3-exits')
    expect(outcome(result)).toMatchObject({ exit: 1, result: 'rolled-back', tag: 'v2' })
    const errors = outcome(result).errors.join('\n')
    expect(errors).toContain('Swarm rolled the update back')
    expect(errors).toContain('task: non-zero exit (1)')
    expect(result.summary).toContain('docker service ps --no-trunc (task errors)')
    expect(result.summary).toMatch(/web\.1 [^\n]*:v3-exits: Failed [^\n]*: task: non-zero exit \(1\)/)
    expect(result.summary).toContain('required configuration is missing')
    // Swarm already runs v2 again: the action verifies it rather than deploying it once more.
    expect(result.stdout).toContain('::notice title=Rollback · restore::v2 serves already')
    // Swarm put v2 back (labels included); the action only verified it.
    const service = await serviceState()
    expect(service.updateState).toBe('rollback_completed')
    expect(service.labels['deploy-action.tag']).toBe('v2')
    expect(await serving()).toBe('v2')
  }, 120_000)

  it('re-deploys the last release when the HTTP check fails after Swarm converged', async () => {
    github.setReleases([
      { tag: 'v1', publishedAt: '2026-01-01T10:00:00Z' },
      { tag: 'v2', publishedAt: '2026-02-01T10:00:00Z' }
    ])
    const result = await deploy('v3-wrong-body')
    expect(outcome(result)).toMatchObject({ exit: 1, result: 'rolled-back', tag: 'v2' })
    const errors = outcome(result).errors.join('\n')
    expect(errors).toMatch(/v3-wrong-body failed/)
    expect(result.stdout).toContain('::notice title=Rollback · restore::pulled and started v2')
    expect(result.summary).toContain('v3-wrong-body is unhealthy')
    // Swarm had completed the update; the action then updated the service back to v2.
    const service = await serviceState()
    expect(service.updateState).toBe('completed')
    expect(service.image).toMatch(new RegExp(`^${image}:v2@sha256:`))
    expect(service.labels['deploy-action.tag']).toBe('v2')
    // A redeployed old release does not claim this run's commit.
    expect(service.labels['deploy-action.commit']).toBeUndefined()
    expect(await serving()).toBe('v2')
  }, 120_000)
})

describe('strategy: swarm, a service scaled by hand (issue 18)', () => {
  it('deploys a service scaled to 8 replicas by hand, with swarm.replicas unset, to all 8 tasks', async () => {
    const first = await deploy('v1', { config: '.github/deploy-scaled.yml' })
    expect(outcome(first)).toEqual({ exit: 0, result: 'deployed', tag: 'v1', errors: [] })
    // By hand, as an operator does: 8 replicas (the CLI waits until they run), updated one at a
    // time with 4 s between them. The rollout of 8 tasks then takes over a minute, longer than
    // the 52 s a deadline computed for 1 replica without a delay would allow.
    await engine.docker(['service', 'scale', `${SCALED_SERVICE}=8`], { timeoutMs: 120_000 })
    await engine.docker(['service', 'update', '--detach', '--update-delay', '4s', SCALED_SERVICE])

    const started = Date.now()
    const result = await deploy('v2', { config: '.github/deploy-scaled.yml', timeoutMs: 300_000 })
    const tookMs = Date.now() - started
    expect(outcome(result)).toEqual({ exit: 0, result: 'deployed', tag: 'v2', errors: [] })
    expect(tookMs).toBeGreaterThan(52_000)

    const [raw] = JSON.parse(await engine.docker(['service', 'inspect', SCALED_SERVICE])) as {
      Spec: { Mode: { Replicated?: { Replicas: number } }; Labels: Record<string, string> }
      UpdateStatus?: { State: string }
    }[]
    expect(raw?.Spec.Mode.Replicated?.Replicas).toBe(8)
    expect(raw?.Spec.Labels['deploy-action.tag']).toBe('v2')
    expect(raw?.UpdateStatus?.State).toBe('completed')
    const running = await engine.docker(['service', 'ps', '--filter', 'desired-state=running', '--format', '{{.Image}} {{.CurrentState}}', SCALED_SERVICE])
    expect(running.trim().split('\n').map((line) => /:v2 Running /.test(line))).toEqual(Array(8).fill(true))
    // Every task serves v2, each on its own loopback address.
    for (let slot = 1; slot <= 8; slot++) expect([slot, (await httpGet(`http://127.0.0.${slot}:${scaledPort}/version`)).body]).toEqual([slot, 'v2'])
  }, 420_000)
})
