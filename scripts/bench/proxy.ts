/**
 * Zero downtime (issue 11), `replace` against `proxy` under load (40 keep-alive clients plus slow
 * requests), on an engine of its own: figure 4 (failed requests in a healthy deploy) and figure 2
 * for both (the user-visible outage of a broken upgrade and of a version dying in the watch
 * window), with the slowest successful request while it is switched back (issue 21), all in one
 * run. Writes bench/downtime.svg and bench/recovery-proxy.svg.
 * Run alone: `npm run bench -- --only proxy`.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runAction, type ActionResult } from '../../test-support/action-run.js'
import { startEngine } from '../../test-support/engine.js'
import { pushHaproxyImage } from '../../test-support/haproxy-image.js'
import { buildAppImage, buildSlowAppImage } from '../../test-support/images.js'
import { freePort } from '../../test-support/net.js'
import { sleep } from '../../test-support/proc.js'
import { startRegistry } from '../../test-support/registry.js'
import {
  GOALS,
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
  slowestOk,
  startLatencyProbe,
  verdict,
  type FigureReport,
  type ProxyStrategyName,
  type RunInfo
} from './harness.js'
import { downtimeChart, proxyRecoveryChart } from './plot.js'

export const PROXY_RUNS = Math.max(1, Number(process.env.BENCH_PROXY_RUNS ?? 3) || 3)
const PROXY_BUDGET_MS = Number(process.env.BENCH_PROXY_BUDGET_S ?? 1_200) * 1_000
/** A healthy upgrade; one that never becomes healthy; one killed 300 ms into `Deploy · verify` (in the watch window). */
export type ProxyScenario = 'healthy' | 'broken' | 'dies'
const PROXY_SCENARIOS: readonly ProxyScenario[] = ['healthy', 'broken', 'dies']
const PROXY_TAG: Record<ProxyScenario, string> = { healthy: 'v2', broken: 'v3-never', dies: 'v2' }

export interface ProxyRun {
  failed: number
  slowCut: number
  ok: number
  /** User-visible outage: the outages of load.ts added up (first failure → first good answer to a request sent after it). */
  outageMs: number
  /**
   * The slowest successful request of the latency probe (`startLatencyProbe`) among those sent from
   * the kill of v2 (dies in the watch) or from the start of the action (otherwise) until the action exited.
   */
  slowestOkMs: number
  result: string
}

export interface ProxyFigures {
  runs: Record<ProxyScenario, Record<ProxyStrategyName, ProxyRun[]>>
  seconds: number
}


export async function measureProxy(): Promise<ProxyFigures> {
  const began = now()
  const engine = await startEngine({ extraDaemonArgs: ['--default-address-pool', 'base=10.253.0.0/16,size=24', '--dns', '127.0.0.1'] })
  const registry = await startRegistry(engine)
  const scratch = mkdtempSync(join(tmpdir(), 'deploy-action-bench-proxy-'))
  const stop = async (): Promise<void> => {
    const containers = (await engine.docker(['ps', '-aq'])).split('\n').filter(Boolean)
    if (containers.length > 0) await engine.dockerResult(['rm', '--force', ...containers])
    const networks = (await engine.docker(['network', 'ls', '--quiet', '--filter', 'type=custom'])).split('\n').filter(Boolean)
    if (networks.length > 0) await engine.dockerResult(['network', 'rm', ...networks])
    await registry.stop()
    await engine.stop()
    await rm(scratch, { recursive: true, force: true })
  }
  const repo = 'bench/shop'
  const image = `${registry.address}/${repo}`
  const runs: Record<ProxyScenario, Record<ProxyStrategyName, ProxyRun[]>> = {
    healthy: { replace: [], proxy: [] },
    broken: { replace: [], proxy: [] },
    dies: { replace: [], proxy: [] }
  }
  try {
    const options = { port: PROXY_APP_PORT, healthBody: PROXY_BODY }
    const [haproxy, v1, v2, never] = await Promise.all([
      pushHaproxyImage(engine, registry),
      buildSlowAppImage(engine, 'local/shop', 'v1', options),
      buildSlowAppImage(engine, 'local/shop', 'v2', options),
      buildAppImage(engine, 'local/shop', 'v3-never', 'never-listens', options)
    ])
    for (const [app, tag] of [[v1, 'v1'], [v2, 'v2'], [never, 'v3-never']] as const) await registry.push(engine, app.reference, repo, tag)
    const deadline = began + PROXY_BUDGET_MS
    let serial = 0
    const site = async (strategy: ProxyStrategyName): Promise<{ name: string; url: string; workspace: string }> => {
      serial += 1
      const name = `${strategy}${serial}`
      const port = await freePort()
      const workspace = join(scratch, name)
      mkdirSync(join(workspace, '.github'), { recursive: true })
      writeFileSync(join(workspace, '.github', 'deploy.yml'), proxySiteConfig(image, haproxy.pushed.reference, name, port, strategy))
      return { name, url: `http://127.0.0.1:${port}`, workspace }
    }
    const act = (workspace: string, tag: string, onStdout?: (chunk: string) => void): Promise<ActionResult> =>
      runAction({ workspace, dockerHost: engine.dockerHost, inputs: { tag, 'registry-username': registry.username, 'registry-password': registry.password }, timeoutMs: 90_000, ...(onStdout && { onStdout }) })
    const containersOf = async (name: string): Promise<string[][]> =>
      (await engine.docker(['ps', '-a', '--format', '{{.Names}}\t{{.Image}}']))
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split('\t'))
        .filter(([container = '']) => container === name || container.startsWith(`${name}-`))
    const clean = async (name: string): Promise<void> => {
      const all = (await containersOf(name)).map(([container = '']) => container)
      if (all.length > 0) await engine.dockerResult(['rm', '--force', ...all])
    }
    const measure = async (strategy: ProxyStrategyName, scenario: ProxyScenario, run: number): Promise<void> => {
      const target = await site(strategy)
      const first = await act(target.workspace, 'v1')
      if (first.exitCode !== 0) throw new Error(`${strategy} v1: ${first.stdout}\n${first.stderr}`)
      const load = proxyLoad(target.url)
      const latency = startLatencyProbe(target.url)
      await sleep(500)
      let killed = false
      let killedAt = Number.NaN
      const startedAt = now()
      const action = await act(target.workspace, PROXY_TAG[scenario], (chunk) => {
        if (chunk.includes('Deploy · switch')) load.startSlow()
        if (scenario !== 'dies' || killed || !chunk.includes('Deploy · verify')) return
        killed = true
        void sleep(300).then(async () => {
          killedAt = now()
          for (const [container = '', from = ''] of await containersOf(target.name)) if (from.endsWith(':v2')) await engine.dockerResult(['kill', container])
        })
      })
      const endedAt = now()
      load.startSlow()
      await sleep(1_000)
      await load.stop()
      const result = await load.done
      const records = await latency.stop()
      const slowestOkMs = slowestOk(records, scenario === 'dies' ? killedAt : startedAt, endedAt)
      const expected = scenario === 'healthy' ? 'deployed' : 'rolled-back'
      if (action.outputs.result !== expected) log(`  proxy bench: ${strategy} ${scenario} ended ${action.outputs.result ?? '(no result)'}, expected ${expected}`)
      const measured: ProxyRun = {
        failed: result.failed,
        slowCut: result.slow.filter((slow) => !slow.ok).length,
        ok: result.ok,
        outageMs: result.outages.reduce((sum, outage) => sum + outage.ms, 0),
        slowestOkMs,
        result: action.outputs.result ?? ''
      }
      runs[scenario][strategy].push(measured)
      log(
        `  proxy bench run ${run + 1} ${scenario} ${strategy}: result=${measured.result} exit=${action.exitCode}; ${result.ok} ok, ${result.failed} failed ${JSON.stringify(result.failuresByCode)}, ` +
          `${measured.slowCut}/${result.slow.length} slow cut; outages ${result.outages.map((outage) => `${outage.ms} ms (${outage.failed})`).join(', ') || 'none'}; ` +
          `slowest successful request ${ms(slowestOkMs)} (of ${records.length})`
      )
      await clean(target.name)
    }
    for (let run = 0; run < PROXY_RUNS && now() < deadline; run++) {
      for (const scenario of PROXY_SCENARIOS) {
        // Strategies interleaved, the order flipped every run: neither always runs on a warmer machine.
        const order: ProxyStrategyName[] = run % 2 === 0 ? ['replace', 'proxy'] : ['proxy', 'replace']
        for (const strategy of order) await measure(strategy, scenario, run)
      }
    }
  } finally {
    await stop()
  }
  const seconds = (now() - began) / 1_000
  log(
    `proxy: healthy deploy failed requests replace ${proxyMedian(runs.healthy.replace, 'failed')}, proxy ${proxyMedian(runs.healthy.proxy, 'failed')}; ` +
      `outage broken replace ${ms(proxyMedian(runs.broken.replace, 'outageMs'))}, proxy ${ms(proxyMedian(runs.broken.proxy, 'outageMs'))}; ` +
      `dies in the watch replace ${ms(proxyMedian(runs.dies.replace, 'outageMs'))}, proxy ${ms(proxyMedian(runs.dies.proxy, 'outageMs'))}; ` +
      `slowest successful request in the watch replace ${ms(proxyMedian(runs.dies.replace, 'slowestOkMs'))}, proxy ${ms(proxyMedian(runs.dies.proxy, 'slowestOkMs'))}; ${Math.round(seconds)} s`
  )
  return { runs, seconds }
}

/** Median of one field over the runs of a scenario and strategy (NaN without runs). */
export function proxyMedian(runs: ProxyRun[], key: 'failed' | 'slowCut' | 'ok' | 'outageMs' | 'slowestOkMs'): number {
  return runs.length ? median(runs.map((run) => run[key])) : Number.NaN
}

function proxyRatio(a: number, b: number, format: (value: number) => string = String): string {
  if (!Number.isFinite(a) || !Number.isFinite(b)) return 'n/a'
  if (b === 0) return a === 0 ? 'both 0' : `${format(a)} against 0`
  return ratio(a / b)
}
/** Issue 21's figures of this section in the top table: a v2 that dies in the watch, `proxy` against `replace` in the same run. */
export function proxyRows(figures: ProxyFigures): string[] {
  const { dies } = figures.runs
  const outage = proxyMedian(dies.proxy, 'outageMs')
  const slowest = proxyMedian(dies.proxy, 'slowestOkMs')
  return [
    `| Zero downtime: \`proxy\`, a v2 that dies in the watch: user-visible outage | ${ms(outage)} (\`replace\`: ${ms(proxyMedian(dies.replace, 'outageMs'))}; ${dies.proxy.length} runs) | ≤ ${ms(GOALS.proxyDiesOutageMs)} (issue 21) | ${verdict(outage <= GOALS.proxyDiesOutageMs)} |`,
    `| … the slowest successful request while it is switched back | ${ms(slowest)} (\`replace\`: ${ms(proxyMedian(dies.replace, 'slowestOkMs'))}) | ≤ ${ms(GOALS.proxyDiesSlowestOkMs)} (issue 21) | ${verdict(slowest <= GOALS.proxyDiesSlowestOkMs)} |`
  ]
}

export function proxyReport(figures: ProxyFigures, run: RunInfo): FigureReport {
  const { runs } = figures
  const healthy = runs.healthy
  const rows = (scenario: ProxyScenario): string[] =>
    (['replace', 'proxy'] as const).map(
      (strategy) =>
        `| \`${strategy}\` | ${ms(proxyMedian(runs[scenario][strategy], 'outageMs'))} | ${proxyMedian(runs[scenario][strategy], 'failed')} | ${ms(proxyMedian(runs[scenario][strategy], 'slowestOkMs'))} | ` +
        `${runs[scenario][strategy].map((one) => `${ms(one.outageMs)} / ${one.failed} / ${ms(one.slowestOkMs)} (${one.result})`).join('; ')} |`
    )
  const swarm = run.alone
    ? "Swarm's figure is in figure 2 above (a full run); it is not in this run, so no ratio against it is given."
    : "Swarm's figure is in figure 2 above, from the same run but without a proxy and without this load, so no ratio against it is given."
  const section = [
    '<!-- proxy:begin -->',
    '## Zero downtime: `replace` against `proxy` (issue 11)',
    '',
    `${sectionHeader(run, figures.seconds)} Private engine with a pinned user-network pool (10.253.0.0/16), HAProxy test image from Debian's package, slow app image (\`/slow\` takes ${PROXY_SLOW_SECONDS} s). Load through 127.0.0.1: 40 keep-alive clients plus 10 slow requests started as the switch begins. Both strategies have the same health check (200 ms interval, 6 s deadline) and a 3 s watch; each scenario runs on a fresh site deployed at v1, strategies interleaved and their order flipped every run. Medians of ${healthy.proxy.length} runs.`,
    '',
    '**Figure 4: failed requests during a healthy deploy (v1 → v2).**',
    '',
    '| Strategy | Failed requests (median) | Slow requests cut (median, of 10) | Runs (failed / slow cut) |',
    '|---|---|---|---|',
    ...(['replace', 'proxy'] as const).map((strategy) => `| \`${strategy}\` | ${proxyMedian(healthy[strategy], 'failed')} | ${proxyMedian(healthy[strategy], 'slowCut')} | ${healthy[strategy].map((one) => `${one.failed} / ${one.slowCut}`).join('; ')} |`),
    '',
    `Ratio replace ÷ proxy, failed requests: ${proxyRatio(proxyMedian(healthy.replace, 'failed'), proxyMedian(healthy.proxy, 'failed'))}.`,
    '',
    '![Failed requests in a healthy deploy](bench/downtime.svg)',
    '',
    '**Figure 2 (user-visible recovery), `replace` against `proxy` in the same run.** The outage is what users see: from the first failed request to the first good answer to a request sent after it, added up over the run (load.ts `outages`). A *broken* upgrade never becomes healthy (the scenario of figure 2 above); in *dies in the watch* the new version is healthy, takes traffic, and is killed 300 ms into `Deploy · verify`. ' +
      'The slowest successful request (issue 21) comes from 4 more keep-alive clients beside the load, each sending `GET /version` back to back and timing every request (load.ts keeps no per-request times): the longest one answered 2xx among those sent from the kill of v2 (dies in the watch) or from the start of the action (broken upgrade) until the action exited. A request that waits for a dead slot shows here even when it succeeds in the end.',
    '',
    '| Strategy | Outage (median) | Failed requests (median) | Slowest successful request (median) | Runs (outage / failed / slowest (result)) |',
    '|---|---|---|---|---|',
    '| *broken upgrade* | | | | |',
    ...rows('broken'),
    '| *dies in the watch* | | | | |',
    ...rows('dies'),
    '',
    `Ratio replace ÷ proxy, outage: broken upgrade ${proxyRatio(proxyMedian(runs.broken.replace, 'outageMs'), proxyMedian(runs.broken.proxy, 'outageMs'), ms)}; dies in the watch ${proxyRatio(proxyMedian(runs.dies.replace, 'outageMs'), proxyMedian(runs.dies.proxy, 'outageMs'), ms)}. ${swarm}`,
    '',
    '![User-visible recovery, replace against proxy](bench/recovery-proxy.svg)',
    '<!-- proxy:end -->'
  ].join('\n')
  return {
    markers: { begin: '<!-- proxy:begin -->', end: '<!-- proxy:end -->', beforeNotes: false },
    section,
    charts: {
      'bench/downtime.svg': downtimeChart(proxyMedian(healthy.replace, 'failed'), proxyMedian(healthy.proxy, 'failed'), proxyMedian(healthy.replace, 'slowCut'), proxyMedian(healthy.proxy, 'slowCut')),
      'bench/recovery-proxy.svg': proxyRecoveryChart({
        broken: { replace: proxyMedian(runs.broken.replace, 'outageMs'), proxy: proxyMedian(runs.broken.proxy, 'outageMs') },
        dies: { replace: proxyMedian(runs.dies.replace, 'outageMs'), proxy: proxyMedian(runs.dies.proxy, 'outageMs') }
      })
    }
  }
}
