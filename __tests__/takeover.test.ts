/**
 * `replace` → `proxy` (issue 20): the first proxy deploy takes proxy.port over from the app's own
 * `replace` container, on one in-memory host (test-support/takeover-host.ts) with the whole story,
 * main step then post step. What is taken over is proven by the action's labels and the published
 * port, never by the name alone; the new version is checked before the `replace` container is
 * touched; any failure puts it back.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals'
import { resultOf } from '../src/outcome.js'
import { DockerClient } from '../src/docker/client.js'
import { clashes, isReplaceContainerOf, readPortHolder } from '../src/strategies/takeover.js'
import { FakeDockerEngine } from '../test-support/fake-docker-engine.js'
import { runStory } from '../test-support/sweep-story.js'
import { proxySettings, replaceSettings, TAKEOVER_PROXY, TakeoverDockerHost } from '../test-support/takeover-host.js'

const IMAGE = 'registry.test/acme/web'
const HAPROXY = 'haproxy:3.0-alpine'
const PROXY = TAKEOVER_PROXY

let stdout: string[]

beforeEach(() => {
  stdout = []
  jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout.push(String(chunk))
    return true
  })
  delete process.env.GITHUB_STATE
  delete process.env.GITHUB_OUTPUT
  delete process.env.GITHUB_STEP_SUMMARY
})
afterEach(() => {
  jest.restoreAllMocks()
})

/** A host where `strategy: replace` deployed v1 publishing 127.0.0.1:8080. */
async function replaceHost(): Promise<TakeoverDockerHost> {
  const host = new TakeoverDockerHost([HAPROXY, ...['v1', 'v2', 'v2-exits'].map((tag) => `${IMAGE}:${tag}`)])
  const seeded = await runStory(host, replaceSettings('v1'))
  if (seeded.outcome.kind !== 'deployed') throw new Error(`seeding v1 did not deploy: ${seeded.outcome.kind}`)
  expect(host.servingTag()).toBe('v1')
  return host
}

describe('replace → proxy takeover', () => {
  it('starts and checks the slot while the replace container serves, then swaps it for the proxy; the gap is a warning; the replace container goes at the clean-up', async () => {
    const host = await replaceHost()
    const web = host.rest.containers.get('web')
    const proxyCommandsBefore = host.proxy.commands.length
    const restCallsBefore = host.rest.calls.length
    const run = await runStory(host, proxySettings('v2'))
    expect(run.outcome.kind).toBe('deployed')
    expect(run.exitCode).toBe(0)
    expect(host.servingTag()).toBe('v2')
    // What ran before was read from the replace container's labels.
    expect(run.outcome.kind === 'deployed' && run.outcome.release.tag).toBe('v2')
    expect(stdout.join('')).toMatch(/web runs v1/)
    // Only the proxy and the new slot run; the replace container was removed by its id; no check proxy is left.
    expect(host.describe()).toEqual(['web-blue: running v2', 'web-proxy: running'])
    expect(host.rest.calls.slice(restCallsBefore).map((call) => call.argv.join(' '))).toContain(`container rm --force ${web?.id ?? '?'}`)
    // Order: the slot is checked through the check proxy before the replace container is stopped.
    const proxySide = host.proxy.commands.slice(proxyCommandsBefore)
    const restSide = host.rest.calls.slice(restCallsBefore).map((call) => call.argv.join(' '))
    expect(restSide.filter((command) => command.startsWith('container stop'))).toEqual([`container stop ${web?.id ?? '?'}`])
    expect(proxySide.some((command) => command.startsWith('container create --name web-proxy-check --network web-net'))).toBe(true)
    // HAProxy in the check proxy saw the slot healthy through its runtime API (no health.url here: no HTTP probe).
    expect(proxySide.some((command) => command.includes('exec --interactive web-proxy-check nc 127.0.0.1 9999'))).toBe(true)
    expect(proxySide.find((command) => command.includes('--name web-proxy-check'))).not.toContain('--publish')
    // The gap is a warning on the job page.
    const warning = stdout.join('').split('\n').find((line) => line.startsWith('::warning title=Deploy · switch::') && line.includes('took over port')) ?? ''
    expect(warning).toMatch(/web-proxy took over port 8080 on local from web \(strategy replace\): new connections to the port were refused for \d+\.\d\d s/)
    expect(host.proxy.configLive()).toBe('blue')
  })

  it('a new version that fails its check never touches the replace container: v1 serves, nothing of the proxy is left', async () => {
    const host = await replaceHost()
    const restCallsBefore = host.rest.calls.length
    const run = await runStory(host, proxySettings('v2-exits'))
    expect(run.exitCode).toBe(1)
    expect(resultOf(run.outcome)).toBe('rolled-back')
    expect(host.servingTag()).toBe('v1')
    // The slot died before its check proxy could look its name up: named as the slot's failure,
    // not as a check proxy that did not boot (which waits for DNS time-outs on a real host).
    expect(stdout.join('')).toMatch(/web-blue was checked before the switch and no user request reached it: the container web-blue exited with code 1/)
    expect(stdout.join('')).not.toMatch(/did not start with the proxy's config/)
    expect(host.rest.calls.slice(restCallsBefore).some((call) => call.argv[1] === 'stop' || call.argv[1] === 'start')).toBe(false)
    expect(host.describe()).toEqual(['web: running v1'])
    expect(host.proxy.networks.size).toBe(0)
  })

  it('a proxy image that does not boot with the config is named as the check proxy failing, before anything that serves is touched', async () => {
    const host = await replaceHost()
    host.proxy.images.add('haproxy:exits')
    const restCallsBefore = host.rest.calls.length
    const run = await runStory(host, proxySettings('v2', { proxy: { ...TAKEOVER_PROXY, image: 'haproxy:exits' } }))
    expect(run.exitCode).toBe(1)
    expect(host.servingTag()).toBe('v1')
    expect(host.rest.calls.slice(restCallsBefore).some((call) => call.argv[1] === 'stop' || call.argv[1] === 'start')).toBe(false)
    expect(stdout.join('')).toMatch(/the check proxy web-proxy-check \(haproxy:exits\) did not start with the proxy's config: the proxy web-proxy-check did not serve blue within 15 s/)
    expect(host.describe()).toEqual(['web: running v1'])
  })

  it('a failure after the stop puts the replace container back on its port and removes what the run created', async () => {
    const host = await replaceHost()
    host.faultRule = { match: (argv) => argv.join(' ') === 'container start web-proxy', mode: 'before', times: 1 }
    const run = await runStory(host, proxySettings('v2'))
    expect(run.exitCode).toBe(1)
    expect(resultOf(run.outcome)).toBe('rolled-back')
    expect(host.servingTag()).toBe('v1')
    expect(host.describe()).toEqual(['web: running v1'])
    expect(stdout.join('')).toMatch(/could not take proxy\.port 8080 over from web on local: .*web was started again and serves as before/)
  })

  it('the new version dying as the proxy starts is caught before the verdict: the replace container serves again', async () => {
    const host = await replaceHost()
    host.dieOnSwitchTo = 'v2'
    const run = await runStory(host, proxySettings('v2'))
    expect(run.exitCode).toBe(1)
    expect(host.servingTag()).toBe('v1')
    expect(host.describe()).toEqual(['web: running v1'])
  })

  it('a container named like the app that the action did not start is never touched: the deploy stops with a clear error', async () => {
    const host = new TakeoverDockerHost([HAPROXY, `${IMAGE}:v2`])
    host.rest.add({ name: 'web', image: 'nginx:1.27', labels: {}, running: true, ports: ['8080:80'] })
    const run = await runStory(host, proxySettings('v2'))
    expect(run.exitCode).toBe(1)
    expect(stdout.join('')).toMatch(/the container web on local publishes proxy\.port 8080, but the action did not start it for registry\.test\/acme\/web in environment production \(it carries none of the action’s labels\)/)
    expect(host.describe()).toEqual(['web: running'])
    expect(host.rest.containers.get('web')?.running).toBe(true)
    expect(host.proxy.containers.size).toBe(0)
  })

  it('the post step puts the replace container back when the main step was cancelled between the stop and the verdict', async () => {
    const host = await replaceHost()
    const base = host.commandCount
    let stopAt = 0
    host.onCommand = (index, argv) => {
      if (stopAt === 0 && argv[1] === 'stop' && argv[2] === host.rest.containers.get('web')?.id) stopAt = index - base
    }
    await runStory(host, proxySettings('v2'))
    host.onCommand = undefined
    expect(stopAt).toBeGreaterThan(0)
    const again = await replaceHost()
    // Cancelled right after the stop, before the proxy starts.
    const run = await runStory(again, proxySettings('v2'), { cancelAt: stopAt + 1 })
    expect(run.outcome.kind).toBe('cancelled')
    expect(again.servingTag()).toBe('v1')
    expect(again.describe()).toEqual(['web: running v1'])
  })
})

describe('readPortHolder', () => {
  const settings = proxySettings('v2')
  const labels = { 'deploy-action.tag': 'v1', 'deploy-action.image': IMAGE, 'deploy-action.environment': 'production' }

  async function holder(container: Parameters<FakeDockerEngine['add']>[0]): Promise<string> {
    const engine = new FakeDockerEngine()
    engine.add(container)
    return (await readPortHolder(new DockerClient(engine), settings, PROXY)).kind
  }

  it.each([
    ['the app’s replace container on 127.0.0.1:8080', { ports: ['127.0.0.1:8080:3000'] }, 'holder'],
    ['on every address', { ports: ['8080:3000'] }, 'holder'],
    ['on another port', { ports: ['127.0.0.1:9090:3000'] }, 'none'],
    ['on another address', { ports: ['10.0.0.5:8080:3000'] }, 'none'],
    ['with host networking (which port cannot be proven)', { network: 'host' }, 'host-network'],
    ['stopped', { ports: ['8080:3000'], running: false }, 'stopped-holder'],
    ['of another environment', { ports: ['8080:3000'], labels: { ...labels, 'deploy-action.environment': 'staging' } }, 'foreign'],
    ['a slot of the proxy strategy', { ports: ['8080:3000'], labels: { ...labels, 'deploy-action.slot': 'blue' } }, 'foreign']
  ])('%s', async (_label, change, kind) => {
    expect(await holder({ name: 'web', image: `${IMAGE}:v1`, labels, running: true, ...change })).toBe(kind)
  })

  it('no container of that name is none; a read that fails is unknown, never none', async () => {
    const engine = new FakeDockerEngine()
    expect((await readPortHolder(new DockerClient(engine), settings, PROXY)).kind).toBe('none')
    engine.unreachable = true
    await expect(readPortHolder(new DockerClient(engine), settings, PROXY)).rejects.toThrow(/docker container inspect failed: Cannot connect/)
  })

  it('ownership needs the release labels of this image and environment; a clash needs the port on an address the proxy takes', () => {
    expect(isReplaceContainerOf({ labels }, settings)).toBe(true)
    expect(isReplaceContainerOf({ labels: { ...labels, 'deploy-action.image': 'other/web' } }, settings)).toBe(false)
    expect(isReplaceContainerOf({ labels: {} }, settings)).toBe(false)
    expect(clashes([{ ip: '', port: 8080 }], { port: 8080, bind: ['127.0.0.1'] })).toBe(true)
    expect(clashes([{ ip: '127.0.0.1', port: 8080 }], { port: 8080, bind: [] })).toBe(true)
    expect(clashes([{ ip: '127.0.0.2', port: 8080 }], { port: 8080, bind: ['127.0.0.1'] })).toBe(false)
  })
})
