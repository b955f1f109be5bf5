/**
 * Issue 10, "Why": eight configs of a new user that broke the README's promises ("never
 * half-deployed", an honest outcome) on a real engine. One test per numbered case, each driving
 * the bundled action (dist/index.js, or DEPLOY_ACTION_BUNDLE) as the runner runs it, against a
 * private engine, a registry with auth and the local fake of the GitHub API, and asserting what
 * really serves afterwards, the outputs, the exit code and the annotations. Each of these tests
 * fails on the code before the redesign (84dc062) and passes after it: run it with
 * DEPLOY_ACTION_BUNDLE pointing at that commit's dist/index.js to see each promise broken.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { spawnSync } from 'node:child_process'
import { chmodSync, writeFileSync } from 'node:fs'
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { delimiter, join } from 'node:path'
import type { ActionControl, ActionResult, Annotation, RunActionOptions } from '../test-support/action-run.js'
import { startEngine, type Engine } from '../test-support/engine.js'
import type { FakeGitHub, FakeReleaseSpec } from '../test-support/fake-github.js'
import {
  annotation,
  containersNamed,
  expectDeployed,
  initSwarm,
  leaveSwarm,
  makeSite,
  postStep,
  pushAppImages,
  removeGatewayBridge,
  runStep,
  servedAt,
  siteConfig,
  startFixture,
  titles,
  transcriptOf,
  writeDeployConfig,
  type AppImageSpec,
  type Fixture
} from '../test-support/fixture.js'
import type { Registry } from '../test-support/registry.js'

const REPO = 'acme/web'
const CONFIG = '.github/deploy.yml'

/** Tags pushed to the registry, and how each behaves. */
const IMAGES: AppImageSpec[] = [
  { tag: 'v1', behaviour: 'healthy' },
  { tag: 'v2', behaviour: 'healthy' },
  { tag: 'v3', behaviour: 'healthy' },
  { tag: 'v4-exits', behaviour: 'exits' },
  // Never healthy within any deadline here: a cancel during its verify is certain to come first.
  { tag: 'v4-slow', behaviour: 'slow-start', options: { startDelaySeconds: 120 } },
  // Case 8: releases v1.0.0, v1.1.0 and the later backport v1.0.5; a build that is no release.
  { tag: 'v1.0.5', behaviour: 'healthy' },
  { tag: 'v1.1.0', behaviour: 'healthy' },
  { tag: 'v1.2.0', behaviour: 'exits' },
  { tag: 'main-7f3c2a1', behaviour: 'healthy' },
  // Case 8: image tags without the release's `v`.
  { tag: '1.5.0', behaviour: 'healthy' },
  { tag: '1.6.0', behaviour: 'exits' }
]


let fixture: Fixture & { github: FakeGitHub }
let engine: Engine
let registry: Registry
let github: FakeGitHub
let image: string
let digests: Map<string, string>
/** What is not a directory of the fixture's and must be stopped before it: the holding proxies. */
const cleanups: (() => Promise<unknown>)[] = []

beforeAll(async () => {
  fixture = await startFixture({ github: true })
  ;({ engine, registry, github } = fixture)
  image = `${registry.address}/${REPO}`
  // Two at a time; only the registry holds the images afterwards, so every deploy really pulls.
  digests = await pushAppImages(fixture, REPO, IMAGES, { concurrency: 2 })
}, 120_000)

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined)
  await fixture?.stop()
}, 90_000)

/** One app: its container (or service) name, port, health address, workspace and engine. */
interface Site {
  name: string
  port: number
  /** Where the app listens and is probed: 127.0.0.1 unless a `hosts:` entry names another address. */
  address: string
  workspace: string
  engine: Engine
}

interface SiteOptions {
  deadline?: string
  rollbackTo?: string
  volumes?: string[]
  /** A single `hosts:` entry for the engine, with this `address`; the app listens only there. */
  hostAddress?: string
  strategy?: 'replace' | 'swarm'
  /** The engine to deploy to; default the shared one. */
  engine?: Engine
}

/** The deploy config of a site: host networking, fast health checks. */
function configOf(target: Site, options: SiteOptions): string {
  const hostAddress = options.hostAddress
  return siteConfig({
    image,
    name: target.name,
    port: target.port,
    expectBody: 'ok',
    deadline: options.deadline,
    rollbackTo: options.rollbackTo,
    top: options.strategy === 'swarm' ? ['strategy: swarm', 'swarm:', '  replicas: 1', '  order: stop-first', '  monitor: 2s'] : [],
    // The app listens only at the hosts: entry's address, so {host} must become it.
    ...(hostAddress && { hosts: [{ dockerHost: target.engine.dockerHost, address: hostAddress }], env: { BIND: hostAddress } }),
    container: options.volumes ? ['  volumes:', ...options.volumes.map((volume) => `    - ${volume}`)] : []
  })
}

async function site(name: string, options: SiteOptions = {}): Promise<Site> {
  const { port, workspace } = await makeSite(fixture.dirs, name)
  const target: Site = { name, port, address: options.hostAddress ?? '127.0.0.1', workspace, engine: options.engine ?? engine }
  configure(target, options)
  return target
}

/** Rewrites the site's config, as a user who edits it between two deploys. */
function configure(target: Site, options: SiteOptions): void {
  writeDeployConfig(target.workspace, configOf(target, options))
}

/** One step of the action for `target` as the runner runs it (on the site's engine), logged in to the test registry. */
const act = (target: Site, inputs: Record<string, string>, extra: Partial<RunActionOptions> = {}): Promise<ActionResult> =>
  runStep(fixture, target, inputs, { dockerHost: target.engine.dockerHost, timeoutMs: 90_000, ...extra })

const deploy = (target: Site, tag: string, extra: Partial<RunActionOptions> = {}): Promise<ActionResult> => act(target, { tag }, extra)

/** The post step of a main run: same inputs, the state it saved. */
const postOf = (target: Site, main: ActionResult, inputs: Record<string, string>): Promise<ActionResult> =>
  postStep(fixture, target, main, inputs, { dockerHost: target.engine.dockerHost, timeoutMs: 90_000 })

async function deployOk(target: Site, tag: string): Promise<ActionResult> {
  return expectDeployed(await deploy(target, tag), tag)
}

/** What answers on the site's address and port: `200 <tag>`, or the connection error code. */
function serving(target: Site, address = target.address): Promise<string> {
  return servedAt(`http://${address}:${target.port}/version`)
}

/** Containers named after the site (the deploy lock included): name → tag label and state. */
function containersOf(target: Site): Promise<Record<string, { tag: string; state: string }>> {
  return containersNamed(target.engine, target.name)
}

/** Id, image, state and start time of one container, so that any replacement or restart shows. */
async function identity(target: Site, name = target.name): Promise<string> {
  return (await target.engine.docker(['container', 'inspect', '--format', '{{.Id}} {{.Config.Image}} {{.Image}} {{.State.Status}} {{.State.StartedAt}}', name])).trim()
}

/** The verdict of a run with its errors and warnings, so that a failed expectation shows why. */
function verdict(result: ActionResult): { exit: number | null; result?: string; tag?: string; errors: string[]; warnings: string[] } {
  const messages = (level: Annotation['level']): string[] => result.annotations.filter((entry) => entry.level === level).map((entry) => `${entry.title ?? ''}: ${entry.message}`)
  return { exit: result.exitCode, result: result.outputs.result, tag: result.outputs.tag, errors: messages('error'), warnings: messages('warning') }
}

/** Nothing this action uses only while it runs is left: no `-next`, hook or lock container. */
async function expectNoLeftovers(target: Site): Promise<void> {
  const names = Object.keys(await containersOf(target))
  expect(names.filter((name) => [`${target.name}-next`, `${target.name}-hook`, `${target.name}-deploy-lock`].includes(name))).toEqual([])
}

function releases(...specs: [tag: string, day: number][]): FakeReleaseSpec[] {
  return specs.map(([tag, day]) => ({ tag, publishedAt: `2026-01-${String(day).padStart(2, '0')}T12:00:00Z` }))
}

/** Signals the action once `::group::<title>` appears on its stdout, and remembers when. */
function signalAtGroup(title: string): { options: Partial<RunActionOptions>; signalled: () => boolean } {
  let sent = false
  return {
    options: {
      onStdout: (chunk, control) => {
        if (!sent && chunk.includes(`::group::${title}`)) {
          sent = true
          control.signal('SIGINT')
        }
      }
    },
    signalled: () => sent
  }
}

/**
 * A pass-through proxy in front of the fake GitHub that holds the `success` Deployment status
 * back: when one arrives it calls `onHeld`, waits `holdMs` and only then forwards it. The window
 * between the healthy verdict and the end of the Deployment writes is then as long as we like.
 */
async function startHoldingProxy(upstream: string, holdMs: number): Promise<{ url: string; held: number; onHeld?: () => void; stop(): Promise<void> }> {
  const target = new URL(upstream)
  const state: { url: string; held: number; onHeld?: () => void; stop(): Promise<void> } = { url: '', held: 0, stop: async () => undefined }
  const server: Server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = []
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk))
    incoming.on('end', () => {
      const body = Buffer.concat(chunks)
      let hold = false
      if (incoming.method === 'POST' && /\/deployments\/\d+\/statuses$/.test(new URL(incoming.url ?? '/', 'http://x').pathname)) {
        try {
          hold = (JSON.parse(body.toString('utf8')) as { state?: string }).state === 'success'
        } catch {
          hold = false
        }
      }
      const forward = (): void => {
        const headers: IncomingHttpHeaders = { ...incoming.headers, host: target.host }
        const upstreamRequest = request(
          { host: target.hostname, port: target.port, method: incoming.method, path: incoming.url, headers },
          (answer) => {
            outgoing.writeHead(answer.statusCode ?? 502, answer.headers)
            answer.pipe(outgoing)
          }
        )
        upstreamRequest.on('error', () => outgoing.destroy())
        upstreamRequest.end(body)
      }
      if (!hold) return forward()
      state.held++
      state.onHeld?.()
      setTimeout(forward, holdMs)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  state.stop = () => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  }
  return state
}

/** A directory with a `docker` that fails `container rm --force <name>` and runs the real docker otherwise. */
function dockerShimFailingRemovalOf(name: string): string {
  const realDocker = (process.env.PATH ?? '')
    .split(delimiter)
    .map((dir) => join(dir, 'docker'))
    .find((path) => spawnSync('test', ['-x', path]).status === 0)
  if (!realDocker) throw new Error('no docker on PATH')
  const dir = fixture.dirs.make('deploy-action-docker-shim-')
  writeFileSync(
    join(dir, 'docker'),
    [
      '#!/bin/sh',
      `if [ "$1" = container ] && [ "$2" = rm ] && [ "$3" = --force ] && [ "$4" = '${name}' ] && [ "$#" -eq 4 ]; then`,
      `  echo 'Error response from daemon: cannot remove container "/${name}": simulated: device or resource busy' >&2`,
      '  exit 1',
      'fi',
      `exec '${realDocker}' "$@"`,
      ''
    ].join('\n')
  )
  chmodSync(join(dir, 'docker'), 0o755)
  return dir
}

describe('issue 10: the promises hold on a real engine', () => {
  it('case 1: a create that docker rejects leaves the old version serving, with honest outputs; two volumes on one path are rejected by validation', async () => {
    const web = await site('reject')
    await deployOk(web, 'v1')
    const before = await identity(web)

    // Something docker refuses at create time that validation lets through: a propagation mode on
    // a named volume ("invalid mount config for type volume: field BindOptions must not be
    // specified"). A network missing on the host would not do: docker 28 creates the container and
    // refuses only its start, after the old one was stopped.
    configure(web, { volumes: ['va:/data:rshared'] })
    const result = await deploy(web, 'v2')

    expect({ serving: await serving(web), ...verdict(result) }).toMatchObject({ serving: '200 v1', exit: 1, result: 'rolled-back', tag: 'v1' })
    expect(result.outputs).toMatchObject({ 'previous-tag': 'v1', image: `${image}:v1@${digests.get('v1')}` })
    expect(annotation(result, 'error', 'Deploy · switch')?.message).toMatch(/^docker container create failed: .*invalid mount config for type "volume"/)
    expect(annotation(result, 'error', 'Deploy failed')?.message).toMatch(/Nothing that served was touched: v1 still runs and is healthy\.$/)
    // The very container that served before: not removed, rebuilt or restarted.
    expect(await identity(web)).toBe(before)
    expect(await containersOf(web)).toEqual({ reject: { tag: 'v1', state: 'running' } })
    await expectNoLeftovers(web)

    // Two volumes on one container path: docker would refuse the create; validation now does first.
    configure(web, { volumes: ['va:/data', 'vb:/data'] })
    const invalid = await act(web, { tag: 'v2' }, { watchDockerArgv: true })
    const vbLine = configOf(web, { volumes: ['va:/data', 'vb:/data'] }).split('\n').indexOf('    - vb:/data') + 1

    expect(verdict(invalid)).toMatchObject({ exit: 1, result: 'failed' })
    expect(invalid.annotations.filter((entry) => entry.level === 'error' && entry.file === CONFIG && entry.line === vbLine)).toEqual([
      expect.objectContaining({ message: expect.stringMatching(/container\.volumes\[1\] "vb:\/data" mounts on \/data, which container\.volumes\[0\] already mounts/) })
    ])
    expect(invalid.dockerArgv).toEqual([])
    expect(await identity(web)).toBe(before)
    expect(await serving(web)).toBe('200 v1')
  }, 90_000)

  it('case 2: a manual rollback to a tag that fails its health check exits 1, and what it left serves again', async () => {
    const web = await site('manual')
    await deployOk(web, 'v1')
    await deployOk(web, 'v2')

    const result = await act(web, { command: 'rollback', 'rollback-to': 'v4-exits' })

    expect(verdict(result)).toMatchObject({ exit: 1, result: 'failed', tag: 'v2' })
    expect(result.outputs).toMatchObject({ 'previous-tag': 'v2', image: `${image}:v2@${digests.get('v2')}` })
    expect(annotation(result, 'error', 'Rollback · verify')?.message).toMatch(/^v4-exits is unhealthy: the container manual (?:is restarting after it )?exited with code 1/)
    expect(annotation(result, 'notice', 'Rollback · restore')?.message).toMatch(/^restarted the kept v2/)
    expect(annotation(result, 'error', 'Rollback failed')?.message).toMatch(/^Rollback of v4-exits failed: .*v2, which ran before, was put back: it runs now and is healthy\.$/)
    expect(titles(result, 'notice')).not.toContain('Result')
    expect(await serving(web)).toBe('200 v2')
    expect(await containersOf(web)).toEqual({ manual: { tag: 'v2', state: 'running' }, 'manual-previous': { tag: 'v1', state: 'exited' } })
    await expectNoLeftovers(web)
  }, 90_000)

  it('case 3: a container started by hand under the app name is kept and put back when the first deploy fails', async () => {
    const web = await site('byhand')
    const digest = digests.get('v1') as string
    const reference = `${image}@${digest}`
    const clientConfig = fixture.dirs.make('deploy-action-promises-login-')
    await registry.login(engine, clientConfig)
    await engine.docker(['pull', '--quiet', reference], { env: { DOCKER_CONFIG: clientConfig } })
    // By hand: image by digest, no labels of this action.
    await engine.docker(['run', '-d', '--name', web.name, '--network', 'host', '--init', '-e', `PORT=${web.port}`, reference])
    const byHand = await identity(web)
    for (let tries = 0; tries < 50 && (await serving(web)) !== '200 v1'; tries++) await new Promise((resolve) => setTimeout(resolve, 100))
    expect(await serving(web)).toBe('200 v1')

    const result = await deploy(web, 'v4-exits')

    expect({ serving: await serving(web), ...verdict(result) }).toMatchObject({ serving: '200 v1', exit: 1, result: 'rolled-back', tag: digest })
    expect(result.outputs).toMatchObject({ 'previous-tag': digest, image: reference })
    expect(annotation(result, 'notice', 'Deploy · current')?.message).toMatch(new RegExp(`^byhand runs ${digest}`))
    expect(annotation(result, 'notice', 'Rollback · restore')?.message).toMatch(/^restarted the kept/)
    // The very container started by hand runs again, on the same image.
    const [id, configImage, imageId, state] = (await identity(web)).split(' ')
    expect([id, configImage, imageId, state]).toEqual([...byHand.split(' ').slice(0, 3), 'running'])
    expect(configImage).toBe(reference)
    // Still without labels of this action, and nothing else under its name.
    expect(await containersOf(web)).toEqual({ byhand: { tag: '', state: 'running' } })
    await expectNoLeftovers(web)
  }, 90_000)

  it('case 4: a cancel after the healthy verdict, while the Deployment status is written, keeps the healthy new version', async () => {
    const proxy = await startHoldingProxy(github.url, 2_000)
    cleanups.push(() => proxy.stop())
    const web = await site('late')
    await deployOk(web, 'v1')

    let control: ActionControl | undefined
    let signalledAfterVerdict = false
    let stdoutAtSignal = ''
    let stdout = ''
    proxy.onHeld = () => {
      stdoutAtSignal = stdout
      signalledAfterVerdict = /::notice title=Deploy · verify::v2 is healthy/.test(stdout)
      control?.signal('SIGINT')
    }
    const main = await deploy(web, 'v2', {
      github: { apiUrl: proxy.url },
      onStdout: (chunk, given) => {
        control = given
        stdout += chunk
      }
    })

    expect(proxy.held).toBe(1)
    expect({ signalledAfterVerdict, stdoutAtSignal: stdoutAtSignal.slice(-300) }).toMatchObject({ signalledAfterVerdict: true })
    expect(annotation(main, 'warning', 'Cancelled')?.message).toMatch(/Received SIGINT/)
    expect(await serving(web)).toBe('200 v2')
    const deployed = await identity(web)
    // The cancelled main step leaves the lock to the post step.
    expect(await containersOf(web)).toHaveProperty('late-deploy-lock')

    const post = await postOf(web, main, { tag: 'v2' })

    expect(await serving(web)).toBe('200 v2')
    // Not removed, replaced or restarted by the post step.
    expect(await identity(web)).toBe(deployed)
    expect(verdict(post)).toMatchObject({ exit: 0, errors: [] })
    expect(post.annotations.filter((entry) => (entry.title ?? '').startsWith('Post · restore'))).toEqual([])
    expect(await containersOf(web)).toEqual({ late: { tag: 'v2', state: 'running' }, 'late-previous': { tag: 'v1', state: 'exited' } })
    await expectNoLeftovers(web)
    // The main step's outputs tell the truth: v2 was shown healthy and serves.
    expect(verdict(main)).toMatchObject({ result: 'deployed', tag: 'v2' })
  }, 90_000)

  it('case 5: an error while removing -previous-older after a healthy deploy is a warning; the deploy succeeds with its outputs, and the post step finishes the clean-up', async () => {
    const web = await site('cleanup')
    await deployOk(web, 'v1')
    await deployOk(web, 'v2')
    const shim = dockerShimFailingRemovalOf(`${web.name}-previous-older`)

    const result = await deploy(web, 'v3', { env: { PATH: `${shim}${delimiter}${process.env.PATH ?? ''}` } })

    expect(verdict(result)).toMatchObject({ exit: 0, result: 'deployed', tag: 'v3', errors: [] })
    expect(result.outputs).toMatchObject({ 'previous-tag': 'v2', image: `${image}:v3@${digests.get('v3')}`, 'deployment-id': expect.stringMatching(/^\d+$/) })
    expect(result.annotations.filter((entry) => entry.level === 'warning')).toEqual([
      expect.objectContaining({ title: 'Deploy · clean up', message: expect.stringMatching(/simulated: device or resource busy.*cleanup runs and is healthy/) })
    ])
    expect(annotation(result, 'notice', 'Result')?.message).toBe('Deployed v3 to production; it is healthy.')
    expect(await serving(web)).toBe('200 v3')
    // The shim did fail the removal: the older previous is still there, and the lock stays held
    // for the post step, so that no other deploy starts before the clean-up is done.
    expect(await containersOf(web)).toEqual({
      cleanup: { tag: 'v3', state: 'running' },
      'cleanup-previous': { tag: 'v2', state: 'exited' },
      'cleanup-previous-older': { tag: 'v1', state: 'exited' },
      'cleanup-deploy-lock': { tag: '', state: expect.any(String) }
    })

    const post = await postOf(web, result, { tag: 'v3' })
    if (post.exitCode !== 0) throw new Error(transcriptOf(post))
    expect(post.annotations).toContainEqual(expect.objectContaining({ level: 'notice', title: 'Post · clean up', message: expect.stringMatching(/kept v2 for a rollback/) }))
    expect(await serving(web)).toBe('200 v3')
    expect(await containersOf(web)).toEqual({
      cleanup: { tag: 'v3', state: 'running' },
      'cleanup-previous': { tag: 'v2', state: 'exited' }
    })
    await expectNoLeftovers(web)
  }, 90_000)

  describe('case 6: Swarm', () => {
    let swarmEngine: Engine | undefined
    let gatewayBridge: string | undefined

    afterAll(async () => {
      if (swarmEngine) {
        await leaveSwarm(swarmEngine)
        await swarmEngine.stop()
      }
      removeGatewayBridge(gatewayBridge)
    }, 90_000)

    it('case 6: the post step after a cancelled first Swarm deploy removes the service and says so truthfully', async () => {
      swarmEngine = await startEngine()
      gatewayBridge = await initSwarm(swarmEngine)
      const web = await site('swarmweb', { strategy: 'swarm', engine: swarmEngine, deadline: '20s' })

      const cancel = signalAtGroup('Deploy · verify')
      const main = await deploy(web, 'v4-slow', cancel.options)

      expect(cancel.signalled()).toBe(true)
      expect(verdict(main)).toMatchObject({ exit: 1, result: 'failed', tag: '' })
      expect((await swarmEngine.docker(['service', 'ls', '--format', '{{.Name}}'])).split('\n')).toContain(web.name)

      const post = await postOf(web, main, { tag: 'v4-slow' })

      // What the post step says is what the engine shows: no service.
      expect((await swarmEngine.docker(['service', 'ls', '--format', '{{.Name}}'])).split('\n').filter(Boolean)).toEqual([])
      expect(verdict(post)).toMatchObject({ exit: 0, errors: [] })
      expect(annotation(post, 'notice', 'Post · restore')?.message).toMatch(/^removed what this run started; nothing named swarmweb ran before/)
      expect(annotation(post, 'warning', 'Post · restored')?.message).toBe(
        'The deploy of v4-slow was interrupted while switching. Nothing ran before (first deploy), so what it started was removed; nothing runs now.'
      )
      expect(await containersOf(web)).not.toHaveProperty(`${web.name}-deploy-lock`)
    }, 150_000)
  })

  it('case 7: the post step checks the restored version at the address of its hosts: entry', async () => {
    // The app listens on 127.0.0.2 only; the hosts: entry names that address for {host}.
    const web = await site('addr', { hostAddress: '127.0.0.2', deadline: '10s' })
    await deployOk(web, 'v1')
    expect(await serving(web)).toBe('200 v1')
    expect(await serving(web, '127.0.0.1')).toBe('ECONNREFUSED')

    const cancel = signalAtGroup('Deploy · verify')
    const main = await deploy(web, 'v4-slow', cancel.options)
    expect(cancel.signalled()).toBe(true)
    expect(verdict(main)).toMatchObject({ exit: 1, result: 'failed' })

    const post = await postOf(web, main, { tag: 'v4-slow' })

    const url = `http://127.0.0.2:${web.port}/health`
    expect(verdict(post)).toMatchObject({ exit: 0, errors: [] })
    expect(annotation(post, 'notice', 'Post · verify')?.message).toMatch(new RegExp(`^v1 is healthy at ${url.replace(/[.]/g, '\\.')} `))
    expect(post.stdout).not.toContain(`http://127.0.0.1:${web.port}`)
    expect(annotation(post, 'warning', 'Post · restored')?.message).toBe('The deploy of v4-slow was interrupted while switching. v1, which ran before, runs again and is healthy.')
    expect(await serving(web)).toBe('200 v1')
    expect(await containersOf(web)).toEqual({ addr: { tag: 'v1', state: 'running' } })
  }, 90_000)

  it('case 8: the rollback target is the release before the failed version by semver, not the newest by date; 1.5.0 is release v1.5.0', async () => {
    // v1.0.5 is a backport, published after v1.1.0.
    github.setReleases(releases(['v1.0.0', 1], ['v1.1.0', 2], ['v1.0.5', 3]))
    const web = await site('semver', { rollbackTo: 'last-release' })
    // What runs before is no release, so only the version order can decide.
    await deployOk(web, 'main-7f3c2a1')

    const result = await deploy(web, 'v1.2.0')

    expect(verdict(result)).toMatchObject({ exit: 1, result: 'rolled-back', tag: 'v1.1.0', warnings: [] })
    expect(annotation(result, 'notice', 'Rollback · target')?.message).toMatch(/^v1\.1\.0 \(last-release\)/)
    expect(annotation(result, 'notice', 'Rollback · restore')?.message).toMatch(/^pulled and started v1\.1\.0/)
    expect(await serving(web)).toBe('200 v1.1.0')

    // As the issue tells it: v1.1.0 runs, v1.2.0 fails, and it goes back to v1.1.0, not to v1.0.5.
    const again = await deploy(web, 'v1.2.0')
    expect(verdict(again)).toMatchObject({ exit: 1, result: 'rolled-back', tag: 'v1.1.0', warnings: [] })
    expect(annotation(again, 'notice', 'Rollback · target')?.message).toMatch(/^v1\.1\.0 \(previous\)/)
    expect(await serving(web)).toBe('200 v1.1.0')

    // Image tags without the release's `v`: 1.5.0 runs and is release v1.5.0, so it is what
    // ran before and a release, and is preferred over the backport v1.4.1 published later.
    github.setReleases(releases(['v1.4.0', 4], ['v1.5.0', 5], ['v1.4.1', 6]))
    const bare = await site('bare', { rollbackTo: 'last-release' })
    await deployOk(bare, '1.5.0')

    const bareResult = await deploy(bare, '1.6.0')

    expect(verdict(bareResult)).toMatchObject({ exit: 1, result: 'rolled-back', tag: '1.5.0', warnings: [] })
    expect(annotation(bareResult, 'notice', 'Rollback · target')?.message).toMatch(/^1\.5\.0 \(previous\)/)
    expect(annotation(bareResult, 'notice', 'Rollback · restore')?.message).toMatch(/^restarted the kept 1\.5\.0/)
    expect(await serving(bare)).toBe('200 1.5.0')
  }, 120_000)
})
