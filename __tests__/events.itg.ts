/**
 * State from `docker events` (issue 21) on a real private engine, through the bundled action:
 * - `strategy: proxy`, a version killed during the watch: the verdict comes from the die event and
 *   the switch-back batch (`docker exec … nc`) is the first docker command after it, with no
 *   `container inspect` in between; the time from the kill to the switch-back batch is printed;
 * - a healthy 1-host `replace` deploy (3 s app start, 5 s watch): how many docker CLI processes it
 *   runs, printed beside the committed bundle's (dist/index.js) count, and that one `docker events`
 *   stream replaced the polled inspects;
 * - after every main and post step, no `docker events` process is left on the machine.
 *
 * Figures are printed, not asserted against a time: the machine is shared with a CI run.
 *
 * Network: the engine's user networks come from 10.252.0.0/16 and its containers get
 * `--dns 127.0.0.1` (as in proxy.itg.ts). The test talks to 127.0.0.1 only.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { basename, resolve } from 'node:path'
import { REPO_ROOT, watchDockerArgv, type ActionControl, type ActionResult, type DockerArgvWatcher } from '../test-support/action-run.js'
import type { FakeGitHub } from '../test-support/fake-github.js'
import type { PushedHaproxyImage } from '../test-support/haproxy-image.js'
import {
  makeSite,
  postStep,
  proxySiteConfig,
  pushAppImages,
  pushProxyImage,
  runStep,
  startFixture,
  transcriptOf,
  writeDeployConfig,
  type Fixture,
  type Site
} from '../test-support/fixture.js'
import { httpGet } from '../test-support/net.js'
import { listPids, readCmdline, sleep } from '../test-support/proc.js'

const REPO = 'acme/events'
const APP_PORT = 3000
const HEALTHY_BODY = 'status: green'

let fixture: Fixture & { github: FakeGitHub }
let engine: Fixture['engine']
let haproxy: PushedHaproxyImage
let image: string

beforeAll(async () => {
  fixture = await startFixture({ github: true, addressPool: 'base=10.252.0.0/16,size=24' })
  engine = fixture.engine
  image = `${fixture.registry.address}/${REPO}`
  const options = { port: APP_PORT, healthBody: HEALTHY_BODY }
  const [pushedHaproxy] = await Promise.all([
    pushProxyImage(fixture),
    pushAppImages(
      fixture,
      REPO,
      [
        ...['v1', 'v2', 'v3'].map((tag) => ({ tag, behaviour: 'healthy' as const, options })),
        ...['s1', 's2', 's3'].map((tag) => ({ tag, behaviour: 'slow-start' as const, options: { ...options, startDelaySeconds: 3 } }))
      ],
      { localRepo: 'local/events', concurrency: 6 }
    )
  ])
  haproxy = pushedHaproxy
}, 180_000)

afterAll(async () => {
  await fixture?.stop()
}, 90_000)

function proxySite(name: string): Promise<Site> {
  return makeSite(fixture.dirs, name, ({ port }) =>
    proxySiteConfig({ image, name, port, appPort: APP_PORT, proxyImage: haproxy.pushed.reference, expectBody: HEALTHY_BODY, watch: '8s' })
  )
}

/** The bench's 1-host deploy: `replace`, host networking, a 3 s app start, a 5 s watch. */
async function replaceSite(name: string): Promise<Site> {
  const site = await makeSite(fixture.dirs, name)
  writeDeployConfig(
    site.workspace,
    [
      `image: ${image}`,
      `name: ${name}`,
      'container:',
      '  network: host',
      '  init: true',
      '  stop-timeout: 2s',
      '  env:',
      `    PORT: "${site.port}"`,
      'health:',
      `  url: http://127.0.0.1:${site.port}/health`,
      `  expect-body: "${HEALTHY_BODY}"`,
      '  interval: 250ms',
      '  timeout: 1s',
      '  deadline: 15s',
      '  healthy-threshold: 2',
      '  watch: 5s',
      'rollback:',
      '  to: previous',
      ''
    ].join('\n')
  )
  return site
}

function act(target: Site, inputs: Record<string, string>, options: { entry?: string; watchDockerArgv?: boolean; onStdout?: (chunk: string, control: ActionControl) => void } = {}): Promise<ActionResult> {
  return runStep(fixture, target, inputs, {
    timeoutMs: 100_000,
    ...(options.entry && { entry: options.entry }),
    ...(options.watchDockerArgv && { watchDockerArgv: true }),
    ...(options.onStdout && { onStdout: options.onStdout })
  })
}

/** The post step of a main run, as the runner starts it. */
function post(target: Site, main: ActionResult, entry?: string): Promise<ActionResult> {
  return postStep(fixture, target, main, {}, { timeoutMs: 100_000, ...(entry && { entry }) })
}

/** `docker events` processes anywhere on the machine that follow a container of `name`. */
function eventStreamsOf(name: string): string[][] {
  return listPids()
    .map((pid) => readCmdline(pid))
    .filter((argv): argv is string[] => argv !== undefined && /^docker$/.test(basename(argv[0] ?? '')) && argv[1] === 'events' && argv.some((arg) => arg.startsWith(`container=${name}`)))
}

describe('docker events: switch back on the event (strategy: proxy)', () => {
  let shop: Site

  beforeAll(async () => {
    shop = await proxySite('evshop')
    const first = await act(shop, { tag: 'v1' })
    if (first.exitCode !== 0) throw new Error(transcriptOf(first))
    await post(shop, first)
  }, 120_000)

  it('a slot killed in the watch: the switch-back batch is the first docker command after the die event, no inspect before it', async () => {
    let killedAt = 0
    let sampler: DockerArgvWatcher | undefined
    const main = await act(shop, { tag: 'v2' }, {
      onStdout: (chunk, control) => {
        // Every 2 ms: the order and timing of the commands after the kill are what this test reads.
        sampler ??= watchDockerArgv(control.pid, { intervalMs: 2 })
        if (killedAt !== 0 || !chunk.includes('Deploy · verify')) return
        killedAt = -1
        // Inside the 8 s watch: healthy and serving, then killed.
        void sleep(2_500).then(async () => {
          killedAt = Date.now()
          await engine.docker(['kill', 'evshop-green'])
        })
      }
    })
    sampler?.stop()
    // The docker CLI itself (no credential helpers), its arguments after the program name.
    const seen = (sampler?.sightings ?? []).filter((entry) => basename(entry.argv[0] ?? '') === 'docker').map((entry) => ({ ...entry, argv: entry.argv.slice(1) }))
    expect(killedAt).toBeGreaterThan(0)
    expect(main.exitCode).toBe(1)
    expect(main.outputs).toMatchObject({ result: 'rolled-back', tag: 'v1' })
    expect(main.annotations.find((entry) => entry.title === 'Rollback · switch back')?.message).toMatch(/users are back on v1/)
    // The die event names the cause; when a watch probe through the proxy saw the crash first (a
    // 502 from the request the kill cut off), the read after the switch back names it instead.
    const headline = main.annotations.find((entry) => entry.title === 'Deploy failed, rolled back')?.message ?? ''
    expect(headline).toMatch(/during the watch/)
    expect(headline).toMatch(/the container evshop-green exited with code 137 \(killed by signal 9\)/)

    // The die event's own time, from the daemon: the crash as docker saw it.
    const dieLine = (await engine.docker(['events', '--since', String(Math.floor(killedAt / 1000) - 1), '--until', String(Math.ceil(Date.now() / 1000)), '--format', '{{json .}}', '--filter', 'container=evshop-green', '--filter', 'event=die'])).trim().split('\n')[0] ?? '{}'
    const diedAt = Number((JSON.parse(dieLine) as { timeNano?: number }).timeNano ?? 0) / 1e6
    const after = seen.filter((entry) => entry.at >= killedAt && entry.argv[0] !== 'events' && entry.argv[0] !== 'kill')
    const first = after[0]
    const switchBackAt = first?.at ?? 0
    console.log(
      `events.itg crash → switch back: ${switchBackAt - killedAt} ms from the kill command to the switch-back batch's process ` +
        `(${diedAt ? `${Math.round(switchBackAt - diedAt)} ms from docker's die event` : 'die event time unknown'}); ` +
        `docker commands after the kill: ${after.slice(0, 6).map((entry) => `+${entry.at - killedAt} ms ${entry.argv.slice(0, 5).join(' ')}`).join(' | ')}`
    )
    // The first command after the kill is the runtime-API batch through the proxy: no inspect, no read first.
    expect(first?.argv.slice(0, 6)).toEqual(['container', 'exec', '--interactive', 'evshop-proxy', 'nc', '127.0.0.1'])
    expect(after.slice(0, after.indexOf(first!)).filter((entry) => entry.argv[1] === 'inspect')).toEqual([])
    expect(eventStreamsOf('evshop')).toEqual([])

    const afterPost = await post(shop, main)
    expect(afterPost.exitCode).toBe(0)
    expect(eventStreamsOf('evshop')).toEqual([])
    expect((await httpGet(`http://127.0.0.1:${shop.port}/version`, { timeoutMs: 2_000 })).body).toBe('v1')
  }, 120_000)
})

describe('docker events: docker CLI processes of a healthy 1-host deploy (strategy: replace)', () => {
  it('one events stream instead of an inspect every 150 ms; none left after the main and post steps', async () => {
    const web = await replaceSite('evweb')
    const seed = await act(web, { tag: 's1' })
    if (seed.exitCode !== 0) throw new Error(transcriptOf(seed))
    await post(web, seed)

    const count = (result: ActionResult): { all: number; inspects: number; events: number } => {
      const commands = result.dockerArgv.map((argv) => argv.slice(1))
      return {
        all: commands.length,
        inspects: commands.filter((argv) => argv[1] === 'inspect' && argv[0] === 'container').length,
        events: commands.filter((argv) => argv[0] === 'events').length
      }
    }
    // The committed bundle, before this change, when it is there to compare with.
    const committed = resolve(REPO_ROOT, 'dist/index.js')
    const before = await act(web, { tag: 's2' }, { entry: committed, watchDockerArgv: true })
    if (before.exitCode !== 0) throw new Error(transcriptOf(before))
    await post(web, before, resolve(REPO_ROOT, 'dist/post/index.js'))

    const now = await act(web, { tag: 's3' }, { watchDockerArgv: true })
    if (now.exitCode !== 0) throw new Error(transcriptOf(now))
    expect(now.outputs).toMatchObject({ result: 'deployed', tag: 's3' })
    expect(eventStreamsOf('evweb')).toEqual([])
    const postNow = await post(web, now)
    expect(postNow.exitCode).toBe(0)
    expect(eventStreamsOf('evweb')).toEqual([])

    const old = count(before)
    const fresh = count(now)
    console.log(
      `events.itg docker CLI processes, healthy 1-host replace deploy (3 s start, 5 s watch): ` +
        `${fresh.all} (${fresh.inspects} container inspect, ${fresh.events} docker events) with this build; ` +
        `${old.all} (${old.inspects} container inspect, ${old.events} docker events) with dist/index.js`
    )
    // The verification follows the container with one stream: no inspect per 150 ms over 8 s.
    expect(fresh.events).toBe(1)
    expect(fresh.inspects).toBeLessThan(10)
  }, 240_000)
})
