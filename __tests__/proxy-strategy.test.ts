/**
 * `strategy: proxy` on an in-memory docker host (test-support/fake-proxy-host.ts) with virtual
 * time: what each call creates, how traffic moves (the routing history of the HAProxy stand-in),
 * and that a version failing before the switch is never made ready.
 */
import { beforeEach, describe, expect, it, jest } from '@jest/globals'
import { DockerClient } from '../src/docker/client.js'
import type { DockerRunner } from '../src/docker/runner.js'
import type { DeploySettings, Release } from '../src/settings.js'
import { withStateAfter } from '../src/pipeline.js'
import { ProxyStrategy } from '../src/strategies/proxy.js'
import { SwitchNotStartedError } from '../src/strategies/strategy.js'
import { FakeProxyHost } from '../test-support/fake-proxy-host.js'
import { testSettings } from '../test-support/settings.js'
import { virtualClock } from '../test-support/story.js'

const IMAGE = '127.0.0.1:5999/acme/web'
const HAPROXY = 'haproxy:3.0-alpine'
const TAGS = ['v1', 'v2', 'v3', 'v4-never', 'v4-exits', 'v4-wrong-body']

function settings(overrides: Partial<DeploySettings> = {}): DeploySettings {
  return testSettings({
    strategy: 'proxy',
    container: { ports: [], env: {}, secrets: [], volumes: [], labels: {}, init: true },
    health: { url: 'http://127.0.0.1:8080/health', expectStatus: [200], expectBody: 'status: green', headers: {}, intervalMs: 100, timeoutMs: 500, deadlineMs: 3_000, healthyThreshold: 2, watchMs: 0 },
    proxy: { port: 8080, bind: ['127.0.0.1'], appPort: 3000, image: HAPROXY, drainMs: 5_000, timeoutMs: 60_000, maxConnections: 4096 },
    ...overrides
  })
}

let host: FakeProxyHost

function strategy(options: { dryRun?: boolean; settings?: DeploySettings } = {}): { proxy: ProxyStrategy; docker: DockerClient } {
  const docker = new DockerClient(host, { dryRun: options.dryRun })
  return { proxy: new ProxyStrategy(options.settings ?? settings(), docker, virtualClock()), docker }
}

const release = (tag: string): Release => ({ tag, digest: `sha256:${'d'.repeat(64)}` })

/** A first deploy of v1 and a healthy upgrade to v2, as a run would make them. */
async function deployV1ThenV2(): Promise<void> {
  const first = strategy().proxy
  await first.switchTo(release('v1'))
  await first.finalize()
  const second = strategy().proxy
  await second.switchTo(release('v2'))
  await second.finalize()
}

beforeEach(() => {
  host = new FakeProxyHost([HAPROXY, ...TAGS.map((tag) => `${IMAGE}:${tag}`)])
  jest.spyOn(process.stdout, 'write').mockImplementation(() => true)
})

describe('ProxyStrategy', () => {
  it('first deploy: the network, slot blue and the proxy publishing proxy.port, config naming blue', async () => {
    const { proxy } = strategy()
    expect(await proxy.current()).toBeUndefined()
    await proxy.switchTo(release('v1'))
    expect(host.describe()).toEqual(['web-blue: running v1', 'web-proxy: running'])
    expect(host.networks.get('web-net')).toMatchObject({ 'deploy-action.role': 'network', 'deploy-action.app': 'web' })
    const create = host.commands.find((command) => command.includes('--name web-proxy')) ?? ''
    // Short libc DNS time-outs: HAProxy boots in seconds even when its live slot's name is gone.
    expect(create).toContain('--network web-net --restart unless-stopped --dns-option timeout:1 --dns-option attempts:1 --stop-signal SIGUSR1 --stop-timeout 10 --publish 127.0.0.1:8080:8080')
    expect(host.commands.find((command) => command.includes('--name web-blue'))).not.toContain('--publish')
    expect(host.configLive()).toBe('blue')
    // The only server runs without HAProxy's checks, in the file and so at run time.
    expect(host.containers.get('web-proxy')?.files['haproxy.cfg']).toMatch(/server blue web-blue:3000 init-addr last,libc,none no-check/)
    expect(await proxy.current()).toMatchObject({ tag: 'v1' })
    expect((await proxy.stateProbe().observe()).verdict).toBe('ready')
  })

  it('upgrade: prepares the idle slot, switches in one batch, names it in the config, then retires the old slot', async () => {
    await deployV1ThenV2()
    expect(host.runtimeLines).toEqual(
      expect.arrayContaining(['enable health app/green', 'set server app/green state drain', 'set server app/green state ready; set server app/blue state drain', 'set server app/blue state maint; shutdown sessions server app/blue'])
    )
    const switchAt = host.runtimeLines.indexOf('set server app/green state ready; set server app/blue state drain')
    expect(host.runtimeLines.indexOf('set server app/green state drain')).toBeLessThan(switchAt)
    expect(host.routingHistory).toEqual(['blue=v1', 'green=v2'])
    expect(host.configLive()).toBe('green')
    expect(host.describe()).toEqual(['web-blue: exited v1', 'web-green: running v2', 'web-proxy: running'])
    expect(await strategy().proxy.current()).toMatchObject({ tag: 'v2' })
  })

  it.each([
    ['never healthy', 'v4-never', /connection refused/],
    ['crashing at start', 'v4-exits', /exited/],
    ['wrong body', 'v4-wrong-body', /body does not contain "status: green"/]
  ])('a %s version is never made ready, is stopped, and the restore finds v2 serving', async (_label, tag, reason) => {
    await deployV1ThenV2()
    const { proxy } = strategy()
    const error = await proxy.switchTo(release(tag)).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(SwitchNotStartedError)
    expect((error as Error).message).toMatch(/web-blue was checked before the switch and no user request reached it/)
    expect((error as Error).message).toMatch(reason)
    expect(host.routingHistory).toEqual(['blue=v1', 'green=v2'])
    expect(host.describe()).toContain(`web-blue: exited ${tag}`)
    expect(await proxy.restore(release('v2'))).toBe('already-running')
    expect(host.configLive()).toBe('green')
    expect(await proxy.current()).toMatchObject({ tag: 'v2' })
    expect((await proxy.failureEvidence()).logs).toBe('logs of web-blue')
  })

  it('switches back to the old slot, still running, when the new version fails after the switch', async () => {
    await deployV1ThenV2()
    const { proxy } = strategy()
    await proxy.switchTo(release('v3'))
    expect(host.routingHistory.slice(-1)).toEqual(['blue=v3'])
    const before = host.runtimeLines.length
    expect(await proxy.restore(release('v2'))).toBe('reused-previous')
    // The fast path: one look, then the switch batch; no prepare, no wait.
    expect(host.runtimeLines.slice(before, before + 2)).toEqual([
      'show servers state app; show stat app 4 -1',
      'set server app/green state ready; set server app/blue state drain'
    ])
    expect(host.routingHistory.slice(-1)).toEqual(['green=v2'])
    expect(host.configLive()).toBe('green')
    expect(host.describe()).toEqual(['web-blue: exited v3', 'web-green: running v2', 'web-proxy: running'])
  })

  it('switchBack: one batch puts users back on the draining old slot at once; the restore then finds it serving and stops the failed slot', async () => {
    await deployV1ThenV2()
    const { proxy } = strategy()
    await proxy.switchTo(release('v3'))
    const before = host.runtimeLines.length
    expect(await proxy.switchBack()).toMatchObject({ tag: 'v2' })
    // The switch batch comes first: nothing is looked at through the runtime API before it.
    expect(host.runtimeLines[before]).toBe('set server app/green state ready; set server app/blue state drain')
    expect(host.routingHistory.slice(-1)).toEqual(['green=v2'])
    expect(host.configLive()).toBe('green')
    // The evidence is still the failed version's.
    expect((await proxy.failureEvidence()).logs).toBe('logs of web-blue')
    expect(await proxy.restore(release('v2'))).toBe('already-running')
    expect(host.runtimeLines.slice(before)).toContain('set server app/blue state maint; shutdown sessions server app/blue')
    expect(host.describe()).toEqual(['web-blue: exited v3', 'web-green: running v2', 'web-proxy: running'])
  })

  it('failureEvidence reads the failed slot once: an exit the check could not name (an HTTP probe saw it first) is named', async () => {
    await deployV1ThenV2()
    const { proxy } = strategy()
    await proxy.switchTo(release('v3'))
    expect(await proxy.switchBack()).toMatchObject({ tag: 'v2' })
    // Still running: nothing to add to the check's reason.
    expect((await proxy.failureEvidence()).stateAfter).toBeUndefined()
    const failed = host.find('web-blue')!
    Object.assign(failed, { running: false, status: 'exited', exitCode: 137 })
    const evidence = await proxy.failureEvidence()
    expect(evidence.logs).toBe('logs of web-blue')
    expect(evidence.stateAfter).toBe('the container web-blue exited with code 137 (killed by signal 9)')
    expect(withStateAfter('GET http://127.0.0.1:8080/health answered 502 (expected 200) during the watch, 2.4 s after the workload was declared healthy', evidence.stateAfter)).toBe(
      'GET http://127.0.0.1:8080/health answered 502 (expected 200) during the watch, 2.4 s after the workload was declared healthy; the container web-blue exited with code 137 (killed by signal 9)'
    )
    // A reason that came from docker's die event says it already: nothing twice.
    const fromEvent = 'the container web-blue exited with code 137 (killed by signal 9), during the watch, 2.4 s after the workload was declared healthy'
    expect(withStateAfter(fromEvent, evidence.stateAfter)).toBe(fromEvent)
    // Nor in other words: the event said "killed by signal 9", docker's read says OOMKilled.
    expect(withStateAfter(fromEvent, 'the container web-blue exited with code 137 (killed for lack of memory, OOMKilled)')).toBe(fromEvent)
    // A container that was running but unhealthy, and then exited, is told both.
    expect(withStateAfter('the container web-blue is running but its HEALTHCHECK reports unhealthy, during the watch', evidence.stateAfter)).toBe(
      'the container web-blue is running but its HEALTHCHECK reports unhealthy, during the watch; the container web-blue exited with code 137 (killed by signal 9)'
    )
  })

  it('when neither the runtime API nor the config file says which slot serves, a switch and a restore change nothing', async () => {
    await deployV1ThenV2()
    const before = host.describe()
    // The proxy runs, but docker exec into it and docker cp out of it both fail.
    const blind = {
      run: (argv: readonly string[], options?: Parameters<FakeProxyHost['run']>[1]) =>
        argv[1] === 'exec' || (argv[1] === 'cp' && argv[2] !== '-')
          ? Promise.resolve({ exitCode: 1, stdout: '', stderr: 'Error response from daemon: injected' })
          : host.run(argv, options)
    }
    const proxy = new ProxyStrategy(settings(), new DockerClient(blind), virtualClock())
    await expect(proxy.switchTo(release('v3'))).rejects.toBeInstanceOf(SwitchNotStartedError)
    await expect(proxy.restore(release('v1'))).rejects.toThrow(/cannot tell which slot of web serves/)
    // green (v2) serves and was not taken for the idle slot.
    expect(host.describe()).toEqual(before)
    expect(host.routingHistory.slice(-1)).toEqual(['green=v2'])
  })

  it('switchBack does nothing before a switch or when the old slot no longer runs', async () => {
    await deployV1ThenV2()
    expect(await strategy().proxy.switchBack()).toBeUndefined()
    const { proxy } = strategy()
    await proxy.switchTo(release('v3'))
    await host.run(['container', 'stop', 'web-green'])
    const before = host.runtimeLines.length
    expect(await proxy.switchBack()).toBeUndefined()
    expect(host.runtimeLines.length).toBe(before)
    expect(host.routingHistory.slice(-1)).toEqual(['blue=v3'])
  })

  it('post step after a cancel during the check: the checked slot stops, what served still serves', async () => {
    await deployV1ThenV2()
    // The cancelled run had started v3 in blue and HAProxy was checking it in DRAIN.
    await host.run(['container', 'rm', '--force', 'web-blue'])
    await host.run(['container', 'create', '--name', 'web-blue', '--network', 'web-net', '--label', 'deploy-action.slot=blue', '--label', 'deploy-action.tag=v3', `${IMAGE}:v3`])
    await host.run(['container', 'start', 'web-blue'])
    await host.run(['container', 'exec', '--interactive', 'web-proxy', 'nc', '127.0.0.1', '9999'], { input: 'set server app/blue state drain\n' })
    const post = strategy().proxy
    expect(await post.restore(release('v2'))).toBe('already-running')
    expect(host.routingHistory).toEqual(['blue=v1', 'green=v2'])
    expect(host.describe()).toEqual(['web-blue: exited v3', 'web-green: running v2', 'web-proxy: running'])
    expect(host.configLive()).toBe('green')
    expect((await post.stateProbe().observe()).verdict).toBe('ready')
  })

  it('command: rollback starts the kept slot that holds the target instead of creating it anew', async () => {
    await deployV1ThenV2()
    const creates = host.commands.filter((command) => command.startsWith('container create')).length
    const { proxy } = strategy({ settings: settings({ command: 'rollback' }) })
    await proxy.switchTo(release('v1'))
    await proxy.finalize()
    expect(host.commands.filter((command) => command.startsWith('container create')).length).toBe(creates)
    expect(host.routingHistory.slice(-1)).toEqual(['blue=v1'])
    expect(host.describe()).toEqual(['web-blue: running v1', 'web-green: exited v2', 'web-proxy: running'])
  })

  it('restore to a version no slot holds starts it in the idle slot', async () => {
    await deployV1ThenV2()
    expect(await strategy().proxy.restore(release('v3'))).toBe('redeployed')
    expect(host.routingHistory.slice(-1)).toEqual(['blue=v3'])
    expect(host.describe()).toEqual(['web-blue: running v3', 'web-green: exited v2', 'web-proxy: running'])
  })

  it('unknown is not absent: when neither the runtime API nor the config file can be read, what serves is unknown, and nothing is switched or removed', async () => {
    await deployV1ThenV2()
    // docker answers every command but the two reads of the routing (a proxy that refuses exec, a flaky connection).
    const blind: DockerRunner = {
      run: async (argv, options) =>
        ['exec', 'cp'].includes(argv[1] ?? '') ? { exitCode: 1, stdout: '', stderr: 'error during connect: connection reset by peer' } : host.run(argv, options)
    }
    const proxy = new ProxyStrategy(settings(), new DockerClient(blind), virtualClock())
    await expect(proxy.current()).rejects.toThrow(/cannot tell which slot of web serves on local: the runtime API did not answer: .*connection reset by peer; its config file could not be read: .*connection reset by peer/)
    await expect(proxy.switchTo(release('v3'))).rejects.toBeInstanceOf(SwitchNotStartedError)
    // A restore to nothing removes only what this (fresh) strategy created: nothing.
    expect(await proxy.restore(undefined)).toBe('nothing')
    expect(host.describe()).toEqual(['web-blue: exited v1', 'web-green: running v2', 'web-proxy: running'])
    expect(host.routingHistory).toEqual(['blue=v1', 'green=v2'])
  })

  it('the proxy removed by hand: the slot that served is what runs, and a deploy re-creates the proxy around the slots, then switches as usual', async () => {
    await deployV1ThenV2()
    await host.run(['container', 'rm', '--force', 'web-proxy'])
    expect(await strategy().proxy.current()).toMatchObject({ tag: 'v2' })
    const { proxy } = strategy()
    await proxy.switchTo(release('v3'))
    await proxy.finalize()
    // Nothing of the slots was removed but the idle one's kept v1, which v3 replaced.
    expect(host.describe()).toEqual(['web-blue: running v3', 'web-green: exited v2', 'web-proxy: running'])
    expect(host.configLive()).toBe('blue')
    expect(host.routingHistory.slice(-2)).toEqual(['green=v2', 'blue=v3'])
  })

  it('the proxy removed by hand and the new version fails: the proxy comes back, v2 serves, both slots stay', async () => {
    await deployV1ThenV2()
    await host.run(['container', 'rm', '--force', 'web-proxy'])
    const green = host.containers.get('web-green')?.id
    const { proxy } = strategy()
    await expect(proxy.switchTo(release('v4-exits'))).rejects.toBeInstanceOf(SwitchNotStartedError)
    expect(await proxy.restore(release('v2'))).toBe('already-running')
    expect(host.containers.get('web-green')?.id).toBe(green)
    expect(host.servingTag()).toBe('v2')
    expect(host.configLive()).toBe('green')
  })

  it('with the same settings, a deploy neither rewrites nor reloads the proxy before the check', async () => {
    await deployV1ThenV2()
    // The clean-up after v2 reloaded once, so that HAProxy runs the file (blue idle and checked).
    expect(host.reloads).toEqual(['web-proxy'])
    await strategy().proxy.switchTo(release('v3'))
    expect(host.reloads).toEqual(['web-proxy'])
    expect(host.servingTag()).toBe('v3')
  })

  it('a changed proxy.timeout is applied with a seamless reload before the new slot is checked; the file then says what runs', async () => {
    await deployV1ThenV2()
    const changed = settings({ proxy: { port: 8080, bind: ['127.0.0.1'], appPort: 3000, image: HAPROXY, drainMs: 5_000, timeoutMs: 120_000, maxConnections: 10_000 } })
    const { proxy } = strategy({ settings: changed })
    const before = host.commands.length
    await proxy.switchTo(release('v3'))
    const reload = host.commands.indexOf('container exec web-proxy kill -USR2 1', before)
    const prepare = host.commands.findIndex((command, index) => index > reload && command.startsWith('container exec --interactive web-proxy nc 127.0.0.1 9999'))
    expect(reload).toBeGreaterThan(0)
    expect(prepare).toBeGreaterThan(reload)
    expect(host.runtimeLines.slice(-6)).toContain('set server app/blue state ready; set server app/green state drain')
    await proxy.finalize()
    const file = host.containers.get('web-proxy')?.files['haproxy.cfg'] ?? ''
    expect(file).toMatch(/timeout server 120s/)
    expect(file).toMatch(/maxconn 10000/)
    expect(file).toMatch(/server blue web-blue:3000 init-addr last,libc,none no-check/)
    expect(host.servingTag()).toBe('v3')
  })

  it('proxy.app-port changed: the live slot keeps the port it was started with, the new slot gets the new one', async () => {
    await deployV1ThenV2()
    const changed = settings({ proxy: { port: 8080, bind: ['127.0.0.1'], appPort: 4000, image: HAPROXY, drainMs: 5_000, timeoutMs: 60_000, maxConnections: 4096 } })
    const { proxy } = strategy({ settings: changed })
    await proxy.switchTo(release('v3'))
    const file = host.containers.get('web-proxy')?.files['haproxy.cfg'] ?? ''
    expect(file).toMatch(/server blue web-blue:4000 init-addr last,libc,none no-check/)
    expect(file).toMatch(/server green web-green:3000 init-addr none disabled/)
    expect(host.containers.get('web-blue')?.labels['deploy-action.app-port']).toBe('4000')
    // The slot probe reached the new slot on the new port.
    expect(host.commands).toContain('container exec --interactive web-proxy nc -w 1 web-blue 4000')
  })

  it('HAProxy checks a slot with the health settings: Host and headers, expected status and body', async () => {
    const checked = settings({ health: { url: 'http://127.0.0.1:8080/health', expectStatus: [200], expectBody: 'status: green', headers: { 'X-Probe': 'deploy' }, intervalMs: 500, timeoutMs: 700, deadlineMs: 3_000, healthyThreshold: 2, watchMs: 0 } })
    await strategy({ settings: checked }).proxy.switchTo(release('v1'))
    const file = host.containers.get('web-proxy')?.files['haproxy.cfg'] ?? ''
    expect(file).toContain('http-check send meth GET uri /health ver HTTP/1.1 hdr Host "127.0.0.1:8080" hdr X-Probe "deploy"')
    expect(file).toContain('http-check expect status 200')
    expect(file).toContain('http-check expect string "status: green"')
    expect(file).toContain('timeout check 700ms')
    expect(file).toMatch(/default-server check inter 500ms /)
  })

  it('proxy.image changed: the proxy container is replaced around the slots, with a warning that says how long connections were refused', async () => {
    await deployV1ThenV2()
    host.images.add('haproxy:3.1-alpine')
    const changed = settings({ proxy: { port: 8080, bind: ['127.0.0.1'], appPort: 3000, image: 'haproxy:3.1-alpine', drainMs: 5_000, timeoutMs: 60_000, maxConnections: 4096 } })
    const { proxy } = strategy({ settings: changed })
    const oldProxy = host.containers.get('web-proxy')?.id
    await proxy.switchTo(release('v3'))
    await proxy.finalize()
    expect(host.containers.get('web-proxy')?.image).toBe('haproxy:3.1-alpine')
    expect(host.containers.get('web-proxy')?.id).not.toBe(oldProxy)
    expect(host.describe()).toEqual(['web-blue: running v3', 'web-green: exited v2', 'web-proxy: running'])
    expect(proxy.proxyReplaced?.why).toBe('changed proxy.image from haproxy:3.0-alpine to haproxy:3.1-alpine')
    expect(host.servingTag()).toBe('v3')
    // The next deploy finds the proxy as the settings say: no replacement, no reload.
    const again = strategy({ settings: changed }).proxy
    await again.switchTo(release('v2'))
    expect(again.proxyReplaced).toBeUndefined()
  })

  it('a version that fails in the idle slot names the image of the version it replaced there, for retention to keep', async () => {
    await deployV1ThenV2()
    const { proxy } = strategy()
    await expect(proxy.switchTo(release('v4-exits'))).rejects.toBeInstanceOf(SwitchNotStartedError)
    // The image id the stand-in's inspect reports for web-blue (v1) before v4 took the slot.
    expect(proxy.keptForRollback()).toEqual(['sha256:1'])
    // A healthy deploy keeps the old version in its slot: nothing to add.
    const healthy = strategy().proxy
    expect(healthy.keptForRollback()).toEqual([])
  })

  it('restore of nothing removes the slots, the proxy and the network this run created, by id', async () => {
    const first = strategy().proxy
    await first.switchTo(release('v1'))
    expect(await first.restore(undefined)).toBe('removed')
    expect(host.describe()).toEqual([])
    expect(host.networks.size).toBe(0)
    expect(await strategy().proxy.restore(undefined)).toBe('nothing')
  })

  it('restore of nothing never removes what another run created: the slots, the proxy and the network stay', async () => {
    await deployV1ThenV2()
    expect(await strategy().proxy.restore(undefined)).toBe('nothing')
    expect(host.describe()).toEqual(['web-blue: exited v1', 'web-green: running v2', 'web-proxy: running'])
    expect(host.networks.size).toBe(1)
  })

  it('proxy.port already taken: a clear error naming the port, and nothing of ours left', async () => {
    host.takenPorts.add(8080)
    const error = await strategy().proxy.switchTo(release('v1')).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(SwitchNotStartedError)
    expect((error as Error).message).toMatch(/^proxy\.port 8080 is already in use on 127\.0\.0\.1 on local/)
    expect(host.describe()).toEqual([])
    expect(host.networks.size).toBe(0)
  })

  it('reads what serves from the config file while the proxy is stopped', async () => {
    await deployV1ThenV2()
    await host.run(['container', 'stop', 'web-proxy'])
    expect(await strategy().proxy.current()).toMatchObject({ tag: 'v2' })
  })

  it('dry run: plans the idle slot, the runtime-API batches and the config, and changes nothing', async () => {
    await deployV1ThenV2()
    const state = host.describe()
    const { proxy, docker } = strategy({ dryRun: true })
    await proxy.switchTo(release('v3'))
    expect(host.describe()).toEqual(state)
    expect(docker.plannedCommands).toEqual([
      'docker container rm --force web-blue',
      expect.stringMatching(/^docker container create --name web-blue --init --network web-net --restart unless-stopped /),
      'docker container start web-blue',
      'docker container exec --interactive web-proxy nc 127.0.0.1 9999 <<< "set server app/blue state drain"',
      'docker container exec --interactive web-proxy nc 127.0.0.1 9999 <<< "set server app/blue state ready; set server app/green state drain"',
      expect.stringMatching(/^docker container cp - web-proxy:\/usr\/local\/etc\/haproxy <<< haproxy.cfg naming blue live$/)
    ])
  })
})
