/**
 * When the proxy must change (issue 17): the interruption users see under the load of the proxy
 * figure (40 keep-alive clients plus slow requests), on an engine of its own. Each scenario runs
 * on a fresh site deployed at v1 with `strategy: proxy`; the deploy to v2 changes one setting:
 * `proxy.timeout` (a seamless reload, SIGUSR2 to HAProxy's master) or `proxy.image` (the proxy
 * container is replaced: the old one stops softly, so the gap lasts as long as the longest request
 * in flight plus the new proxy's start), the latter with slow requests in flight and without any.
 * For comparison, `docker restart <name>-proxy` under the same load after a healthy deploy.
 * Scenarios interleaved, their order rotated every run. Writes bench/proxy-change.svg.
 * Run alone: `npm run bench -- --only proxy-change`.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runAction, type ActionResult } from '../../test-support/action-run.js'
import { startEngine } from '../../test-support/engine.js'
import { pushHaproxyImage } from '../../test-support/haproxy-image.js'
import { buildSlowAppImage } from '../../test-support/images.js'
import type { LoadResult } from '../../test-support/load.js'
import { freePort, waitForHttp } from '../../test-support/net.js'
import { sleep } from '../../test-support/proc.js'
import { startRegistry, type Registry } from '../../test-support/registry.js'
import {
  BUNDLE,
  list,
  log,
  median,
  ms,
  now,
  PROXY_APP_PORT,
  PROXY_BODY,
  PROXY_SLOW_SECONDS,
  proxyLoad,
  proxySiteConfig,
  ratio,
  sectionHeader,
  type FigureReport,
  type RunInfo
} from './harness.js'
import { proxyChangeChart } from './plot.js'

export const CHANGE_RUNS = Math.max(1, Number(process.env.BENCH_PROXY_CHANGE_RUNS ?? 3) || 3)
/** No new measurement starts after this long (the setup included); the runs so far are reported. */
const CHANGE_BUDGET_MS = Number(process.env.BENCH_PROXY_CHANGE_BUDGET_S ?? 330) * 1_000
const HAPROXY_CONFIG_IN_IMAGE = '/usr/local/etc/haproxy/haproxy.cfg'

export type ChangeScenario = 'reload' | 'image' | 'image-idle' | 'restart'
const CHANGE_SCENARIOS: readonly ChangeScenario[] = ['reload', 'image', 'image-idle', 'restart']
const CHANGE_LABEL: Record<ChangeScenario, string> = {
  reload: '`proxy.timeout` 60s → 90s: seamless reload',
  image: '`proxy.image` changed, slow requests in flight',
  'image-idle': '`proxy.image` changed, no slow request in flight',
  restart: '`docker restart <name>-proxy` after a deploy (not a deploy)'
}

export interface ChangeRun {
  /** User-visible outage: the outages of load.ts added up. */
  outageMs: number
  failed: number
  ok: number
  slowCut: number
  slowSent: number
  /** Failed requests by code (`ECONNRESET`, `ECONNREFUSED`, …). */
  byCode: Record<string, number>
  /** The gap the action printed (`new connections were refused for [at least] N s`, to 0.1 s); NaN when it printed none. */
  reportedGapMs: number
  /** What happened to the proxy: `reloaded` (same container, new config), `replaced` (new container, new image), `restarted`, or what went wrong. */
  applied: string
  result: string
  /**
   * Where the gap went, in ms after the first failed request (NaN for what did not happen): the old
   * proxy got its stop signal (`kill`), exited (`die`), the new one (or the restarted one) started,
   * and users were served again (the end of the last outage).
   */
  timeline: { kill: number; die: number; start: number; recovered: number; lastFailure: number; codesAfterStart: Record<string, number> }
  /** SYNs the kernel sent again while the load ran (TcpExt TCPSynRetrans in /proc/net/netstat, this network namespace). */
  synRetrans: number
  /** Restart only: how long `docker restart` took, and when the proxy answered 200 again, from the start of the restart. */
  restartMs: number
  servedAgainMs: number
}

/** TCPSynRetrans of this network namespace (/proc/net/netstat): SYNs sent again because no answer came; NaN where unreadable. */
function synRetransmissions(): number {
  try {
    const [names, values] = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((line) => line.startsWith('TcpExt:')).map((line) => line.split(/\s+/))
    const index = names?.indexOf('TCPSynRetrans') ?? -1
    return index > 0 ? Number(values?.[index]) : Number.NaN
  } catch {
    return Number.NaN
  }
}

/** A /20 of 10.253.0.0/16 that no address or route here uses yet: the proxy-change engine's user networks. */
function freeProxyChangePool(): string {
  const used = new Set<number>()
  for (const args of [['-4', '-o', 'addr', 'show'], ['-4', 'route', 'show', 'table', 'all']]) {
    const listing = spawnSync('ip', args, { encoding: 'utf8' }).stdout ?? ''
    for (const match of listing.matchAll(/10\.253\.(\d+)\./g)) used.add(Math.floor(Number(match[1]) / 16))
  }
  const block = Array.from({ length: 16 }, (_, index) => index).find((candidate) => !used.has(candidate))
  if (block === undefined) throw new Error('no free /20 in 10.253.0.0/16 for the proxy-change engine')
  return `base=10.253.${block * 16}.0/20,size=24`
}

export interface ProxyChangeFigures {
  runs: Record<ChangeScenario, ChangeRun[]>
  seconds: number
}

export async function measureProxyChange(): Promise<ProxyChangeFigures> {
  const began = now()
  const pool = freeProxyChangePool()
  log(`proxy-change: ${CHANGE_RUNS} runs of ${CHANGE_SCENARIOS.join(', ')}; user networks from ${pool}`)
  const engine = await startEngine({ extraDaemonArgs: ['--default-address-pool', pool, '--dns', '127.0.0.1'] })
  let registry: Registry | undefined
  const scratch = mkdtempSync(join(tmpdir(), 'deploy-action-bench-proxy-change-'))
  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      if (engine.running) {
        const containers = (await engine.docker(['ps', '-aq'])).split('\n').filter(Boolean)
        if (containers.length > 0) await engine.dockerResult(['rm', '--force', ...containers])
        const networks = (await engine.docker(['network', 'ls', '--quiet', '--filter', 'type=custom'])).split('\n').filter(Boolean)
        if (networks.length > 0) await engine.dockerResult(['network', 'rm', ...networks])
      }
      await registry?.stop()
      await engine.stop()
      await rm(scratch, { recursive: true, force: true })
    })())
  // An interrupted bench still stops its engine and registry.
  const onSignal = (): void => {
    log('proxy-change interrupted: stopping the engine and the registry')
    void stop().finally(() => process.exit(130))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const runs: Record<ChangeScenario, ChangeRun[]> = { reload: [], image: [], 'image-idle': [], restart: [] }
  try {
    registry = await startRegistry(engine)
    const repo = 'bench/shop'
    const image = `${registry.address}/${repo}`
    const options = { port: PROXY_APP_PORT, healthBody: PROXY_BODY }
    const [haproxy, v1, v2] = await Promise.all([
      pushHaproxyImage(engine, registry),
      buildSlowAppImage(engine, 'local/shop', 'v1', options),
      buildSlowAppImage(engine, 'local/shop', 'v2', options)
    ])
    for (const [app, tag] of [[v1, 'v1'], [v2, 'v2']] as const) await registry.push(engine, app.reference, repo, tag)
    // The same HAProxy image under a second tag: a different proxy.image (as proxy-settings.itg.ts does).
    const haproxyFirst = haproxy.pushed.reference
    const haproxySecond = (await registry.push(engine, haproxy.reference, 'haproxy', 'debian-test-2')).reference
    const reg = registry
    const deadline = began + CHANGE_BUDGET_MS
    let serial = 0

    const site = async (scenario: ChangeScenario): Promise<{ name: string; url: string; configure(proxyImage: string, timeout: string): void; workspace: string }> => {
      serial += 1
      const name = `${scenario.replace('-', '')}${serial}`
      const port = await freePort()
      const workspace = join(scratch, name)
      mkdirSync(join(workspace, '.github'), { recursive: true })
      const configure = (proxyImage: string, timeout: string): void =>
        writeFileSync(join(workspace, '.github', 'deploy.yml'), proxySiteConfig(image, proxyImage, name, port, 'proxy', [`  timeout: ${timeout}`]))
      configure(haproxyFirst, '60s')
      return { name, url: `http://127.0.0.1:${port}`, configure, workspace }
    }
    const act = (workspace: string, tag: string, onStdout?: (chunk: string) => void): Promise<ActionResult> =>
      runAction({ workspace, dockerHost: engine.dockerHost, entry: BUNDLE, inputs: { tag, 'registry-username': reg.username, 'registry-password': reg.password }, timeoutMs: 90_000, ...(onStdout && { onStdout }) })
    const deployed = async (workspace: string, tag: string, what: string): Promise<void> => {
      const run = await act(workspace, tag)
      if (run.exitCode !== 0 || run.outputs.result !== 'deployed') throw new Error(`proxy-change ${what}: ${tag} did not deploy (exit ${run.exitCode})\n${run.stdout.slice(-4_000)}\n${run.stderr.slice(-2_000)}`)
    }
    const proxyOf = async (name: string): Promise<{ id: string; image: string }> => {
      const [id = '', proxyImage = ''] = (await engine.docker(['inspect', '--format', '{{.Id}} {{.Config.Image}}', `${name}-proxy`])).trim().split(' ')
      return { id, image: proxyImage }
    }
    const clean = async (name: string): Promise<void> => {
      const all = (await engine.docker(['ps', '-a', '--format', '{{.Names}}'])).split('\n').filter((container) => container === name || container.startsWith(`${name}-`))
      if (all.length > 0) await engine.dockerResult(['rm', '--force', ...all])
      await engine.dockerResult(['network', 'rm', `${name}-net`])
    }

    /** The proxy containers' kill, die and start events since `since`, in ms after the first failure of `result`. */
    const timelineOf = async (name: string, since: number, result: LoadResult): Promise<ChangeRun['timeline']> => {
      const events = await engine.docker(['events', '--since', (since / 1_000).toFixed(3), '--until', (Date.now() / 1_000).toFixed(3), '--filter', 'type=container', '--format', '{{.TimeNano}} {{.Action}} {{.Actor.Attributes.name}}'])
      const origin = result.failures[0]?.at ?? Number.NaN
      const seen = events
        .split('\n')
        .map((line) => line.split(' '))
        .filter(([, , container = '']) => container === `${name}-proxy` || container === `${name}-proxy-old`)
        .map(([nanos = '0', action = '']) => ({ at: Number(BigInt(nanos) / 1_000_000n) - origin, action }))
      const first = (action: string): number => seen.find((event) => event.action === action)?.at ?? Number.NaN
      const last = result.outages[result.outages.length - 1]?.recoveredAt
      const start = seen.filter((event) => event.action === 'start').pop()?.at ?? Number.NaN
      const codesAfterStart: Record<string, number> = {}
      for (const failure of result.failures) if (failure.at - origin > start) codesAfterStart[failure.code] = (codesAfterStart[failure.code] ?? 0) + 1
      const lastFailure = result.failures.length > 0 ? Math.max(...result.failures.map((failure) => failure.at)) - origin : Number.NaN
      return { kill: first('kill'), die: first('die'), start, recovered: last === undefined ? Number.NaN : last - origin, lastFailure, codesAfterStart }
    }

    const measure = async (scenario: ChangeScenario, run: number): Promise<void> => {
      const target = await site(scenario)
      await deployed(target.workspace, 'v1', scenario)
      let measured: ChangeRun
      if (scenario === 'restart') {
        // After a healthy deploy (v1 → v2, no load), the proxy container is restarted under load.
        await deployed(target.workspace, 'v2', scenario)
        const since = Date.now()
        const synBefore = synRetransmissions()
        const load = proxyLoad(target.url)
        let restartMs = Number.NaN
        let servedAgainMs = Number.NaN
        let applied = 'restarted'
        try {
          await sleep(500)
          // Slow requests in flight across the restart, as in proxy-settings.itg.ts: the soft stop waits for them.
          load.startSlow()
          await sleep(300)
          const started = now()
          await engine.docker(['restart', `${target.name}-proxy`])
          restartMs = now() - started
          await waitForHttp(`${target.url}/version`, 20_000, { accept: (response) => response.status === 200 })
            .then(() => (servedAgainMs = now() - started))
            .catch((error: Error) => (applied = `not serving after the restart: ${error.message}`))
          await sleep(1_000)
        } finally {
          await load.stop()
        }
        const result = await load.done
        const synRetrans = synRetransmissions() - synBefore
        measured = {
          outageMs: result.outages.reduce((sum, outage) => sum + outage.ms, 0),
          failed: result.failed,
          ok: result.ok,
          slowCut: result.slow.filter((slow) => !slow.ok).length,
          slowSent: result.slow.length,
          byCode: result.failuresByCode,
          reportedGapMs: Number.NaN,
          applied,
          timeline: await timelineOf(target.name, since, result),
          synRetrans,
          result: 'deployed',
          restartMs,
          servedAgainMs
        }
        log(`  proxy-change run ${run + 1} restart: docker restart ${ms(restartMs)}, served again after ${ms(servedAgainMs)}; by code ${JSON.stringify(result.failuresByCode)}`)
      } else {
        const before = await proxyOf(target.name)
        if (scenario === 'reload') target.configure(haproxyFirst, '90s')
        else target.configure(haproxySecond, '60s')
        const since = Date.now()
        const synBefore = synRetransmissions()
        const load = proxyLoad(target.url, scenario === 'image-idle' ? 0 : 10)
        let action: ActionResult
        try {
          await sleep(500)
          // The slow requests start as the switch does: the proxy is reloaded or replaced inside it.
          action = await act(target.workspace, 'v2', (chunk) => {
            if (chunk.includes('Deploy · switch')) load.startSlow()
          })
          load.startSlow()
          await sleep(1_000)
        } finally {
          await load.stop()
        }
        const result = await load.done
        const synRetrans = synRetransmissions() - synBefore
        const after = await proxyOf(target.name)
        const warning = action.annotations.find((annotation) => annotation.level === 'warning' && /was replaced/.test(annotation.message))
        const gap = /new connections were refused for (?:at least |about )?([\d.]+) s/.exec(warning?.message ?? '')?.[1]
        let applied: string
        if (scenario === 'reload') {
          const config = await engine.docker(['exec', `${target.name}-proxy`, 'cat', HAPROXY_CONFIG_IN_IMAGE]).catch(() => '')
          applied = after.id === before.id && !warning && config.includes('timeout server 90s') ? 'reloaded' : `not a reload (same container: ${after.id === before.id}, replaced: ${Boolean(warning)}, 90s in the file: ${config.includes('timeout server 90s')})`
        } else {
          applied = after.id !== before.id && after.image === haproxySecond && warning ? 'replaced' : `not a replacement (new container: ${after.id !== before.id}, image ${after.image}, warning: ${Boolean(warning)})`
        }
        measured = {
          outageMs: result.outages.reduce((sum, outage) => sum + outage.ms, 0),
          failed: result.failed,
          ok: result.ok,
          slowCut: result.slow.filter((slow) => !slow.ok).length,
          slowSent: result.slow.length,
          byCode: result.failuresByCode,
          reportedGapMs: gap === undefined ? Number.NaN : Math.round(Number(gap) * 1_000),
          applied,
          timeline: await timelineOf(target.name, since, result),
          synRetrans,
          result: action.outputs.result ?? '',
          restartMs: Number.NaN,
          servedAgainMs: Number.NaN
        }
        if (measured.result !== 'deployed') log(`  proxy-change: ${scenario} ended ${measured.result || '(no result)'} (exit ${action.exitCode}), expected deployed`)
        log(`  proxy-change run ${run + 1} ${scenario}: by code ${JSON.stringify(result.failuresByCode)}; slow ${result.slow.map((slow) => `${slow.ok ? 'ok' : 'CUT'} ${slow.endedAt - slow.startedAt} ms`).join(', ') || 'none'}`)
      }
      if (measured.applied !== 'reloaded' && measured.applied !== 'replaced' && measured.applied !== 'restarted') log(`  proxy-change: ${scenario}: ${measured.applied}`)
      runs[scenario].push(measured)
      log(
        `  proxy-change run ${run + 1} ${scenario}: ${measured.applied}, result=${measured.result}; ${measured.ok} ok, ${measured.failed} failed, ` +
          `${measured.slowCut}/${measured.slowSent} slow cut; users saw ${ms(measured.outageMs)}; the action printed ${ms(measured.reportedGapMs)}` +
          (measured.failed > 0 ? `; after the first failure: stop signal ${ms(measured.timeline.kill)}, old proxy exited ${ms(measured.timeline.die)}, started ${ms(measured.timeline.start)}, served again ${ms(measured.timeline.recovered)}, last failure ${ms(measured.timeline.lastFailure)}; failures after the start ${JSON.stringify(measured.timeline.codesAfterStart)}` : '') +
          `; SYN retransmissions ${measured.synRetrans}`
      )
      await clean(target.name)
    }

    measuring: for (let run = 0; run < CHANGE_RUNS; run++) {
      // Interleaved, the order rotated every run: no scenario always runs first on a cooler machine.
      const order = CHANGE_SCENARIOS.map((_, index) => CHANGE_SCENARIOS[(index + run) % CHANGE_SCENARIOS.length] as ChangeScenario)
      for (const scenario of order) {
        if (now() >= deadline) {
          log(`proxy-change: budget of ${Math.round(CHANGE_BUDGET_MS / 1_000)} s reached, reporting the runs so far`)
          break measuring
        }
        await measure(scenario, run)
      }
    }
  } finally {
    await stop()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  const seconds = (now() - began) / 1_000
  log(
    `proxy-change (median outage / failed / printed): ${CHANGE_SCENARIOS.map((scenario) => `${scenario} ${ms(changeMedian(runs[scenario], 'outageMs'))} / ${changeMedian(runs[scenario], 'failed')} / ${ms(changeMedian(runs[scenario], 'reportedGapMs'))}`).join('; ')}; ${Math.round(seconds)} s`
  )
  return { runs, seconds }
}

export function changeMedian(runs: ChangeRun[], key: 'outageMs' | 'failed' | 'reportedGapMs' | 'slowCut' | 'restartMs' | 'servedAgainMs'): number {
  return runs.length ? median(runs.map((run) => run[key])) : Number.NaN
}

/** `a ÷ b`; against a 0 there is no finite ratio, which says so (with what `a` was). */
function changeRatio(a: number, b: number, format: (value: number) => string = String): string {
  if (!Number.isFinite(a) || !Number.isFinite(b)) return 'n/a'
  if (b === 0) return a === 0 ? 'both 0' : `no finite ratio (${format(a)} against 0)`
  return ratio(a / b)
}

export function proxyChangeReport(figures: ProxyChangeFigures, run: RunInfo): FigureReport {
  const { runs } = figures
  const reload = runs.reload
  const outage = (scenario: ChangeScenario): number => changeMedian(runs[scenario], 'outageMs')
  const failed = (scenario: ChangeScenario): number => changeMedian(runs[scenario], 'failed')
  const printed = (scenario: ChangeScenario): string => {
    const value = changeMedian(runs[scenario], 'reportedGapMs')
    return Number.isFinite(value) ? ms(value) : scenario === 'restart' ? '— (not a deploy)' : 'none printed'
  }
  const row = (scenario: ChangeScenario): string => {
    const list = runs[scenario]
      .map((run) => `${ms(run.outageMs)} / ${run.failed}${Number.isFinite(run.reportedGapMs) ? ` / ${ms(run.reportedGapMs)}` : ''}${run.slowCut > 0 ? ` (${run.slowCut} slow cut)` : ''}${['reloaded', 'replaced', 'restarted'].includes(run.applied) ? '' : ` (${run.applied})`}`)
      .join('; ')
    const ratios = scenario === 'reload' ? ['—', '—'] : [changeRatio(outage(scenario), outage('reload'), ms), changeRatio(failed(scenario), failed('reload'))]
    return `| ${CHANGE_LABEL[scenario]} | ${ms(outage(scenario))} | ${failed(scenario)} | ${printed(scenario)} | ${ratios.join(' | ')} | ${list} |`
  }
  const differences = [...runs.image, ...runs['image-idle']].filter((run) => Number.isFinite(run.reportedGapMs)).map((run) => run.reportedGapMs - run.outageMs)
  const codes: Record<string, number> = {}
  for (const run of [...runs.image, ...runs['image-idle'], ...runs.restart]) for (const [code, count] of Object.entries(run.byCode)) codes[code] = (codes[code] ?? 0) + count
  const resets = codes.ECONNRESET ?? 0
  const refusedOrReset = resets + (codes.ECONNREFUSED ?? 0)
  const percent = (part: number, whole: number): string => (whole > 0 ? `${Math.round((100 * part) / whole)} %` : 'n/a')
  // After the old proxy's port is free, do requests fail, or hang until the kernel sends their SYN again (after 1 s)?
  const interrupted = [...runs.image, ...runs['image-idle'], ...runs.restart]
  const printedAfterStart = median([...runs.image, ...runs['image-idle']].map((run) => run.reportedGapMs - (run.timeline.start - run.timeline.kill)))
  const hang = median(interrupted.map((run) => run.timeline.recovered - run.timeline.lastFailure))
  const afterStart = interrupted.reduce((sum, run) => sum + Object.values(run.timeline.codesAfterStart).reduce((a, b) => a + b, 0), 0)
  const synInterrupted = median(interrupted.map((run) => run.synRetrans))
  const synReload = median(reload.map((run) => run.synRetrans))
  const hangNote =
    interrupted.length === 0
      ? ''
      : `Requests fail from about the stop signal until just after the old proxy exits (${afterStart === 0 ? 'none' : afterStart} after the new one starts), and the first answer comes a median of ${ms(hang)} after the last failure: ` +
        (hang >= 800 && hang <= 1_300 && synInterrupted >= 10 && !(synReload >= synInterrupted / 2)
          ? `connection attempts made while the port changed hands got no answer at all and were sent again after TCP's initial 1 s retransmission timeout (the kernel counted a median of ${synInterrupted} SYN retransmissions per replacement or restart${Math.min(...interrupted.map((run) => run.synRetrans)) >= 40 ? ', at least one per client' : ''}; ${synReload} per reload). `
          : `the kernel counted a median of ${synInterrupted} SYN retransmissions per replacement or restart, ${synReload} per reload. `)
  const unexpected = CHANGE_SCENARIOS.flatMap((scenario) => runs[scenario].filter((run) => !['reloaded', 'replaced', 'restarted'].includes(run.applied) || run.result !== 'deployed').map((run) => `${scenario}: ${run.applied}, result ${run.result || 'none'}`))
  const section = [
    '<!-- proxy-change:begin -->',
    '## When the proxy must change: reload, replacement, restart (issue 17)',
    '',
    `${sectionHeader(run, figures.seconds)} ` +
      `The same setup and load as the section above: a private engine (user networks from a free /20 of 10.253.0.0/16), the HAProxy test image from Debian's package, ` +
      `the slow app image (\`/slow\` takes ${PROXY_SLOW_SECONDS} s), 40 keep-alive clients through 127.0.0.1 plus 10 slow requests started as \`Deploy · switch\` begins; ` +
      `\`proxy.drain: 10s\`, health check every 200 ms, 6 s deadline, 3 s watch. Each scenario runs on a fresh site first deployed at v1 (\`proxy.timeout: 60s\`, \`proxy.image\` ` +
      `\`haproxy:debian-test\`), then deployed at v2 under load with one setting changed: \`proxy.timeout: 90s\`, which the action applies with a seamless reload ` +
      `(SIGUSR2 to HAProxy's master: a new worker takes the listeners, the old one finishes what it has); or \`proxy.image\` \`haproxy:debian-test-2\` (the same image under a ` +
      `second tag in the test registry), which replaces the proxy container: the old one stops softly (SIGUSR1) and the published port is free only once its requests in ` +
      `flight have finished, so new connections are refused until the new proxy serves. That one twice: with the 10 slow requests in flight, and with none (40 clients only). ` +
      `For comparison, \`docker restart <name>-proxy\` under the same load (slow requests started 300 ms before it) on a site already upgraded to v2 by a healthy deploy. ` +
      `The outage is what users see: from the first failed request to the first good answer to a request sent after it, added up over the run (load.ts \`outages\`). ` +
      `The printed gap is the action's own warning (\`new connections were refused for at least N s\`, to 0.1 s): from just before it stops the old proxy until the new one's runtime API reports the live slot serving. ` +
      `Scenarios interleaved, their order rotated every run; medians of ${reload.length} runs, ratios against the seamless reload of the same session.`,
    '',
    '| Change | Outage users saw (median) | Failed requests (median) | Gap the action printed (median) | Outage ÷ reload | Failed ÷ reload | Runs (outage / failed / printed) |',
    '|---|---|---|---|---|---|---|',
    ...CHANGE_SCENARIOS.map(row),
    '',
    '**Where the gap went** (median, in ms after the first failed request, from the engine\'s container events; a negative time came before it):',
    '',
    '| Change | Stop signal to the old proxy (`kill`) | Old proxy exited (`die`) | Last failed request | New proxy started (`start`) | Users served again | SYNs sent again (TCPSynRetrans, median) |',
    '|---|---|---|---|---|---|---|',
    ...CHANGE_SCENARIOS.map((scenario) => {
      const at = (key: 'kill' | 'die' | 'start' | 'recovered' | 'lastFailure'): string => (scenario === 'reload' ? '—' : ms(median(runs[scenario].map((run) => run.timeline[key]))))
      return `| ${CHANGE_LABEL[scenario]} | ${at('kill')} | ${at('die')} | ${at('lastFailure')} | ${at('start')} | ${at('recovered')} | ${median(runs[scenario].map((run) => run.synRetrans))} |`
    }),
    '',
    `**What the numbers mean.** The seamless reload costs users nothing${reload.length > 0 && reload.every((run) => run.failed === 0) ? ' (0 failed requests in every run)' : ''}: against a 0 there is no finite ratio, so compare the absolute figures. ` +
      `Replacing the proxy interrupts users for as long as the longest request in flight still runs (the old HAProxy's soft stop waits for it), plus the new proxy's start, plus about a second (below): ` +
      `${ms(outage('image'))} with the ${PROXY_SLOW_SECONDS} s slow requests in flight, ${ms(outage('image-idle'))} with none. ` +
      `Measured as the outage users see, issue 17's goal of at most 1 s is ${outage('image-idle') <= 1_000 ? 'met' : 'missed'} even with nothing in flight ` +
      `(requests failed only for its first ${ms(median(runs['image-idle'].map((run) => run.timeline.lastFailure)))})${outage('image') <= 1_000 ? '' : `, and missed by ${ms(outage('image') - 1_000)} with the slow requests`}. ` +
      `A \`docker restart\` of the proxy is no better: ${ms(outage('restart'))} (the command itself took ${ms(changeMedian(runs.restart, 'restartMs'))}); its soft stop waits for the same slow requests. ` +
      `${hangNote}` +
      (differences.length === 0
        ? ''
        : Math.abs(median(differences)) <= 200
          ? `The action's warning matches what users saw within ${ms(Math.abs(median(differences)))} (printed − seen per run: ${list(differences)}). `
          : median(differences) < 0
            ? `The action's warning says a median of ${ms(-median(differences))} less than users saw (printed − seen per run: ${list(differences)}): its gap runs from the old proxy's stop to the new HAProxy's runtime API reporting the live slot serving, ${ms(printedAfterStart)} after the new container's \`start\`, so it leaves out the wait for the unanswered connection attempts. `
            : `The action's warning says a median of ${ms(median(differences))} more than users saw (printed − seen per run: ${list(differences)}). `) +
      `${percent(resets, refusedOrReset)} of the failures in the replacements and restarts were \`ECONNRESET\`, the rest \`ECONNREFUSED\` (${JSON.stringify(codes)}): docker's userland proxy holds the published port ` +
      `(the engine runs with \`--iptables=false\`), accepts a connection and closes it while nothing in the old container listens; refusals come once that container has stopped. ` +
      `Clients retry a reset at once, so the failed-request counts measure how fast 40 clients retry more than how long users wait: compare the outages. ` +
      `No slow request was cut in the middle of its answer${CHANGE_SCENARIOS.some((scenario) => runs[scenario].some((run) => run.slowCut > 0)) ? ' except where the runs say so' : ''}.` +
      (unexpected.length > 0 ? ` Not as expected: ${unexpected.join('; ')}.` : ''),
    '',
    '![Outage when the proxy must change](bench/proxy-change.svg)',
    '<!-- proxy-change:end -->'
  ].join('\n')
  return {
    markers: { begin: '<!-- proxy-change:begin -->', end: '<!-- proxy-change:end -->', beforeNotes: false },
    section,
    charts: {
      'bench/proxy-change.svg': proxyChangeChart(
        Object.fromEntries(CHANGE_SCENARIOS.map((scenario) => [scenario, { seen: outage(scenario), printed: changeMedian(runs[scenario], 'reportedGapMs') }]))
      )
    }
  }
}
