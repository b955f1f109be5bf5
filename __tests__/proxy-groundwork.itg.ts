/**
 * Groundwork for `strategy: proxy` (issue 11), on a private engine: a user network with two app
 * slots and a HAProxy container, the config rendered by src/proxy/haproxy-config.ts and put in
 * with `docker cp` of a tar stream, and a v1 → v2 switch through the runtime API over
 * `docker exec -i … nc 127.0.0.1 9999` while 40 keep-alive clients and 10 slow (3 s) requests
 * run. Then the config is rewritten to name the live slot and the proxy restarted.
 *
 * Network: the engine's user networks come from 10.253.0.0/16, and its containers get
 * `--dns 127.0.0.1`, so docker's embedded DNS forwards names it does not know (the idle slot,
 * before its container exists) to the container's own loopback, never to the machine's resolver.
 * The test process talks to 127.0.0.1 only; the proxy reaches the slots on the user network.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mkdtempSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { singleFileTar } from '../src/proxy/config-archive.js'
import {
  HAPROXY_CONFIG_PATH,
  PROXY_LISTEN_PORT,
  proxyContainerName,
  renderHaproxyConfig,
  slotContainerName,
  type Slot
} from '../src/proxy/haproxy-config.js'
import { HaproxyRuntime, type RuntimeApiSend } from '../src/proxy/runtime-api.js'
import { startEngine, type Engine } from '../test-support/engine.js'
import { pushHaproxyImage, type PushedHaproxyImage } from '../test-support/haproxy-image.js'
import { buildSlowAppImage, type AppImage } from '../test-support/images.js'
import { startLoad } from '../test-support/load.js'
import { freePort, httpGet, waitForHttp } from '../test-support/net.js'
import { sleep } from '../test-support/proc.js'
import { startRegistry, type Registry } from '../test-support/registry.js'

const APP = 'shop'
const NETWORK = `${APP}-net`
const APP_PORT = 3000
const DRAIN_MS = 10_000
const PROXY = proxyContainerName(APP)

let engine: Engine
let registry: Registry
let haproxy: PushedHaproxyImage
let v1: AppImage
let v2: AppImage

beforeAll(async () => {
  engine = await startEngine({ extraDaemonArgs: ['--default-address-pool', 'base=10.253.0.0/16,size=24', '--dns', '127.0.0.1'] })
  registry = await startRegistry(engine)
  ;[haproxy, v1, v2] = await Promise.all([
    pushHaproxyImage(engine, registry),
    buildSlowAppImage(engine, 'local/shop', 'v1'),
    buildSlowAppImage(engine, 'local/shop', 'v2')
  ])
}, 60_000)

afterAll(async () => {
  await registry?.stop()
  if (engine?.running) await removeUserNetworks(engine)
  await engine?.stop()
}, 60_000)

/**
 * dockerd keeps a user network's bridge (`br-…`, with its 10.253.x.1/24 address and route) when
 * it stops, because networks outlive a daemon restart; the engine's data directory is then gone
 * and nothing would ever remove it. So the containers go first, then the networks.
 */
async function removeUserNetworks(target: Engine): Promise<void> {
  const containers = (await target.docker(['ps', '-aq'])).split('\n').filter(Boolean)
  if (containers.length > 0) await target.docker(['rm', '--force', ...containers])
  const networks = (await target.docker(['network', 'ls', '--quiet', '--filter', 'type=custom'])).split('\n').filter(Boolean)
  if (networks.length > 0) await target.docker(['network', 'rm', ...networks])
}

/** The runtime API as the strategy will reach it: through the docker connection, nothing published. */
const send: RuntimeApiSend = (commands) => engine.docker(['exec', '-i', PROXY, 'nc', '127.0.0.1', '9999'], { input: commands, timeoutMs: 15_000 })

/** Puts haproxy.cfg naming `live` into the proxy container (created or running) with `docker cp -`. */
async function writeProxyConfig(live: Slot): Promise<string> {
  const config = renderHaproxyConfig({ name: APP, appPort: APP_PORT, live, healthPath: '/health', drainMs: DRAIN_MS })
  const directory = HAPROXY_CONFIG_PATH.slice(0, HAPROXY_CONFIG_PATH.lastIndexOf('/'))
  await engine.docker(['cp', '-', `${PROXY}:${directory}`], { input: singleFileTar('haproxy.cfg', config) })
  return config
}

async function runSlot(slot: Slot, image: AppImage): Promise<string> {
  const name = slotContainerName(APP, slot)
  await engine.docker(['run', '-d', '--name', name, '--network', NETWORK, '-e', 'BIND=0.0.0.0', '-e', `PORT=${APP_PORT}`, image.reference])
  return (await engine.docker(['inspect', '--format', `{{(index .NetworkSettings.Networks "${NETWORK}").IPAddress}}`, name])).trim()
}

describe('proxy groundwork: HAProxy in front of two slots, switched through its runtime API', () => {
  it('pulls the HAProxy test image from the test registry, laid out like the official one', async () => {
    const pullConfig = mkdtempSync(join(tmpdir(), 'deploy-action-pull-config-'))
    try {
      await engine.docker(['image', 'rm', haproxy.pushed.reference, haproxy.reference])
      await registry.login(engine, pullConfig)
      await engine.docker(['pull', haproxy.pushed.reference], { env: { DOCKER_CONFIG: pullConfig } })
    } finally {
      await rm(pullConfig, { recursive: true, force: true })
    }
    const config = JSON.parse(await engine.docker(['image', 'inspect', '--format', '{{json .Config}}', haproxy.pushed.reference])) as {
      Cmd: string[]
      User: string
    }
    expect(config.Cmd).toEqual(['haproxy', '-W', '-db', '-f', HAPROXY_CONFIG_PATH])
    expect(config.User).toBe('haproxy')
    const probe = await engine.docker(['run', '--rm', '--network', 'none', haproxy.pushed.reference, 'sh', '-c', 'id -u; which haproxy nc; haproxy -v'])
    expect(probe).toContain('99\n/usr/local/sbin/haproxy\n/usr/bin/nc\n')
    expect(probe).toContain(`HAProxy version ${haproxy.version}`)
  }, 60_000)

  it('switches v1 → v2 under 40 keep-alive clients and 10 slow requests with 0 failures, then restarts into v2', async () => {
    await engine.docker(['network', 'create', NETWORK])
    const subnet = await engine.docker(['network', 'inspect', '--format', '{{range .IPAM.Config}}{{.Subnet}}{{end}}', NETWORK])
    expect(subnet.trim()).toMatch(/^10\.253\.\d+\.0\/24$/)

    const blueAddress = await runSlot('blue', v1)
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    // The strategy's recipe: create, put the config in, start. SIGUSR1 is HAProxy's soft stop (the
    // official image's STOPSIGNAL; this test image cannot carry one); give it proxy.drain to finish.
    await engine.docker([
      'create', '--name', PROXY, '--network', NETWORK,
      '--publish', `127.0.0.1:${port}:${PROXY_LISTEN_PORT}`,
      '--stop-signal', 'SIGUSR1', '--stop-timeout', String(DRAIN_MS / 1000 + 5),
      haproxy.pushed.reference
    ])
    await writeProxyConfig('blue')
    const proxyStarted = Date.now()
    await engine.docker(['start', PROXY])
    // The green slot does not exist yet: HAProxy must start anyway, and at once.
    expect((await waitForHttp(`${url}/version`, 10_000, { accept: (response) => response.status === 200 })).body).toBe('v1')
    const startupMs = Date.now() - proxyStarted
    expect(startupMs).toBeLessThan(5_000)
    // Only the app port is published; the runtime API is on the container's loopback.
    expect((await engine.docker(['port', PROXY])).trim()).toBe(`${PROXY_LISTEN_PORT}/tcp -> 127.0.0.1:${port}`)

    const runtime = new HaproxyRuntime(send)
    const before = await runtime.servers()
    // The live slot runs without HAProxy's checks (`no-check` in the file): it is the only server.
    expect(before.blue).toMatchObject({ state: 'NO_CHECK', address: `${blueAddress}:${APP_PORT}` })
    expect(before.green).toMatchObject({ state: 'MAINT' })
    expect(await runtime.liveSlot()).toBe('blue')

    const load = startLoad({ url, clients: 40, postEvery: 5, postPath: '/cgi-bin/version', slowRequests: 10, durationMs: 30_000, requestTimeoutMs: 15_000 })
    const timeline: Record<string, number> = { loadStarted: Date.now() }
    try {
      // A deploy: start v2 in the idle slot while users are on v1, let HAProxy check it with no traffic.
      const greenAddress = await runSlot('green', v2)
      timeline.greenStarted = Date.now()
      await runtime.prepare('green')
      const green = await runtime.waitUntilHealthy('green', { timeoutMs: 20_000, address: greenAddress })
      expect(green).toMatchObject({ state: 'DRAIN', settled: true, checkStatus: 'L7OK', currentSessions: 0 })
      timeline.greenHealthy = Date.now()

      // All slow requests are in flight on blue before the switch.
      load.startSlow()
      timeline.slowStarted = Date.now()
      const slowDeadline = Date.now() + 10_000
      while (load.progress().slowInFlight < 10 || (await runtime.server('blue')).currentSessions < 10) {
        if (Date.now() > slowDeadline) throw new Error(`slow requests not in flight on blue: ${JSON.stringify(load.progress())}`)
        await sleep(100)
      }

      timeline.switchStarted = Date.now()
      await runtime.switchTo('green')
      timeline.switched = Date.now()
      const switched = await runtime.servers()
      expect(switched.green.state).toBe('UP')
      expect(switched.blue.state).toBe('DRAIN')
      expect(switched.blue.currentSessions).toBeGreaterThanOrEqual(10)
      expect(await runtime.liveSlot()).toBe('green')

      const drain = await runtime.drain('blue', DRAIN_MS, 100)
      timeline.drained = Date.now()
      expect(drain).toMatchObject({ drained: true, remainingSessions: 0 })
      expect(load.progress().slowInFlight).toBe(0)

      // Users keep going on v2 for a moment, then the old slot is retired and its container stopped (kept).
      await sleep(1_000)
      await runtime.retire('blue')
      await engine.docker(['stop', slotContainerName(APP, 'blue')])
      await sleep(500)
    } finally {
      timeline.loadStopping = Date.now()
      const result = await load.stop()
      if (result.failed > 0) console.log(`proxy logs:\n${(await engine.dockerResult(['logs', '--tail', '60', PROXY])).stderr}`)
      const rel = (at: number): number => at - timeline.loadStarted!
      console.log(
      `proxy groundwork: ${result.ok} ok, ${result.failed} failed (${JSON.stringify(result.failuresByCode)}), ` +
        `${result.sent} fast requests sent, bodies ${JSON.stringify(Object.fromEntries(Object.entries(result.bodies).map(([body, count]) => [body, count.count])))}; ` +
        `timeline (ms from load start): ${JSON.stringify(Object.fromEntries(Object.entries(timeline).map(([key, at]) => [key, rel(at)])))}; ` +
        `slow: ${result.slow.map((slow) => `${slow.body ?? slow.code} ${slow.endedAt - slow.startedAt}ms`).join(', ')}; proxy start ${startupMs} ms; ` +
        `first failures: ${JSON.stringify(result.failures.slice(0, 3))}`
      )
    }
    const result = await load.done

    expect(result.failures).toEqual([])
    expect(result.failed).toBe(0)
    expect(result.ok).toBeGreaterThan(200)
    // Every slow request started on v1 and finished there, through the drain.
    expect(result.slow).toHaveLength(10)
    for (const slow of result.slow) expect(slow).toMatchObject({ ok: true, status: 200, body: 'v1 slow' })
    expect(Math.min(...result.slow.map((slow) => slow.endedAt))).toBeGreaterThan(timeline.switched!)
    // Traffic moved: v2 never answered before the switch began, and no request sent after it got v1.
    const servedV1 = result.bodies.v1
    const servedV2 = result.bodies.v2
    expect(servedV1?.count).toBeGreaterThan(0)
    expect(servedV2?.count).toBeGreaterThan(0)
    expect(servedV2!.firstAt).toBeGreaterThanOrEqual(timeline.switchStarted!)
    expect(servedV1!.lastStartedAt).toBeLessThanOrEqual(timeline.switched!)

    // Runtime changes are not persisted: the config must name the live slot before a restart.
    const config = await writeProxyConfig('green')
    expect(await engine.docker(['exec', PROXY, 'cat', HAPROXY_CONFIG_PATH])).toBe(config)
    const restartStarted = Date.now()
    await engine.docker(['restart', PROXY])
    expect((await waitForHttp(`${url}/version`, 15_000, { accept: (response) => response.status === 200 })).body).toBe('v2')
    console.log(`proxy groundwork: docker restart ${PROXY} until it served again: ${Date.now() - restartStarted} ms`)
    const after = await runtime.servers()
    expect(after.green).toMatchObject({ state: 'NO_CHECK' })
    expect(after.blue).toMatchObject({ state: 'MAINT' })
    for (let index = 0; index < 5; index++) expect((await httpGet(`${url}/version`)).body).toBe('v2')
  }, 90_000)

  it('switches back at once when the watch fails, with 0 failed requests', async () => {
    // Continues from the previous test: green (v2) live, blue (v1) stopped and in MAINT.
    const port = Number(/:(\d+)$/.exec((await engine.docker(['port', PROXY, `${PROXY_LISTEN_PORT}/tcp`])).trim())?.[1])
    const url = `http://127.0.0.1:${port}`
    const runtime = new HaproxyRuntime(send)
    expect(await runtime.liveSlot()).toBe('green')

    const load = startLoad({ url, clients: 40, postEvery: 5, postPath: '/cgi-bin/version', durationMs: 30_000, requestTimeoutMs: 15_000 })
    const timeline: Record<string, number> = { loadStarted: Date.now() }
    try {
      await engine.docker(['start', slotContainerName(APP, 'blue')])
      const blueAddress = (await engine.docker(['inspect', '--format', `{{(index .NetworkSettings.Networks "${NETWORK}").IPAddress}}`, slotContainerName(APP, 'blue')])).trim()
      await runtime.prepare('blue')
      await runtime.waitUntilHealthy('blue', { timeoutMs: 20_000, address: blueAddress })
      timeline.blueHealthy = Date.now()
      timeline.switchStarted = Date.now()
      await runtime.switchTo('blue')
      timeline.switched = Date.now()
      await sleep(1_000)
      // The watch saw the new version fail: green never stopped draining, so it takes over at once.
      timeline.switchBackStarted = Date.now()
      await runtime.switchTo('green')
      timeline.switchedBack = Date.now()
      expect(await runtime.liveSlot()).toBe('green')
      expect((await runtime.drain('blue', DRAIN_MS, 100)).drained).toBe(true)
      await sleep(500)
      await runtime.retire('blue')
    } finally {
      const result = await load.stop()
      const rel = (at: number): number => at - timeline.loadStarted!
      console.log(
        `proxy groundwork, switch back: ${result.ok} ok, ${result.failed} failed (${JSON.stringify(result.failuresByCode)}), ` +
          `bodies ${JSON.stringify(Object.fromEntries(Object.entries(result.bodies).map(([body, count]) => [body, count.count])))}; ` +
          `switch back took ${timeline.switchedBack! - timeline.switchBackStarted!} ms; ` +
          `timeline (ms from load start): ${JSON.stringify(Object.fromEntries(Object.entries(timeline).map(([key, at]) => [key, rel(at)])))}`
      )
    }
    const result = await load.done
    expect(result.failures).toEqual([])
    expect(result.bodies.v1?.count).toBeGreaterThan(0)
    expect(result.bodies.v1!.firstAt).toBeGreaterThanOrEqual(timeline.switchStarted!)
    expect(result.bodies.v1!.lastStartedAt).toBeLessThanOrEqual(timeline.switchedBack!)
    expect(result.bodies.v2!.lastAt).toBeGreaterThan(timeline.switchedBack!)
    // One `docker exec` round trip: ~0.5 s here, up to ~2 s when the machine is busy.
    expect(timeline.switchedBack! - timeline.switchBackStarted!).toBeLessThan(5_000)
  }, 60_000)
})
