/**
 * Figure 6, fleets: for 1, 2 and 4 hosts, the same upgrade with `rollout.parallel: 1` (serial)
 * and with `parallel:` = hosts, interleaved in alternating order, on network-namespace hosts
 * (test-support/netns.ts), each with its own engine and registry. Writes bench/fleet.svg.
 * Run alone: `npm run bench -- --only fleet`.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { runAction } from '../../test-support/action-run.js'
import { pushToNamespace, startNamespaceFixture } from '../../test-support/fixture.js'
import { freePort, httpGet } from '../../test-support/net.js'
import {
  benchDeployConfig,
  BUNDLE,
  childrenCpuMs,
  expectResult,
  FLEET_HEALTH,
  FLEET_RUNS,
  FLEET_START_DELAY_S,
  GOALS,
  list,
  log,
  median,
  ms,
  now,
  pairwise,
  ratio,
  REPO,
  summaryStepTimes,
  verdict,
  type FigureReport,
  type Machine,
  type RunInfo
} from './harness.js'
import { fleetChart } from './plot.js'

/** Host counts of the fleet figure; the largest is how many namespace hosts are started. */
export const FLEET_SIZES = [1, 2, 4] as const

export interface FleetRun {
  wallMs: number
  /** CPU time of the action's node process and every docker CLI it ran: what the runner spends. */
  cpuMs: number
  dockerCommands: number
  /** Of those, `docker container inspect` of the app (the state reads of the health check, and the switch's look). */
  inspects: number
  /** Time per step, and which steps ran side by side (see `StepTimes`). */
  steps: Record<string, number>
  sideBySide: string[]
}

export interface FleetFigures {
  runs: number
  bySize: { hosts: number; serial: FleetRun[]; parallel: FleetRun[] }[]
  /** Load average (1 min) before each round: how busy the shared machine was. */
  load: number[]
  seconds: number
}

/**
 * For 1, 2 and 4 hosts, the same upgrade (s1 ↔ s2, an app that serves FLEET_START_DELAY_S after it
 * starts) with `rollout.parallel: 1` and with `parallel:` = hosts, interleaved in alternating order.
 * Each host is a network namespace with its own engine and its own registry on its own 127.0.0.1,
 * so every pull stays inside its namespace; the health URL is each namespace's address.
 */
export async function measureFleet(scratch: string): Promise<FleetFigures> {
  const began = now()
  const lab = await startNamespaceFixture(Math.max(...FLEET_SIZES))
  try {
    const image = `127.0.0.1:${lab.registryPort}/${REPO}`
    log(`fleet: ${lab.hosts.length} namespace hosts at ${lab.hosts.map((host) => host.address).join(', ')}; building the images`)
    await Promise.all(
      lab.hosts.map(async (host) => {
        // Kept in the engine too (`keepPushed`), as the harness's fixture keeps its images.
        for (const tag of ['s1', 's2']) await pushToNamespace(host, image, tag, 'slow-start', { app: { startDelaySeconds: FLEET_START_DELAY_S }, keepPushed: true })
      })
    )

    const sizes = await Promise.all(
      FLEET_SIZES.map(async (count) => {
        const hosts = lab.hosts.slice(0, count)
        const port = await freePort()
        const name = `fleet${count}`
        const workspace = (mode: 'serial' | 'parallel'): string => {
          const dir = join(scratch, `fleet-${count}-${mode}`)
          mkdirSync(join(dir, '.github'), { recursive: true })
          writeFileSync(join(dir, '.github', 'deploy.yml'), benchDeployConfig({ image, name, port, health: FLEET_HEALTH, namespaced: true, fleet: { hosts: hosts.map((host) => ({ dockerHost: host.engine.dockerHost, address: host.address })), parallel: mode === 'serial' ? 1 : count } }))
          return dir
        }
        return { count, hosts, port, serial: workspace('serial'), parallel: workspace('parallel'), tag: 's1', figures: { hosts: count, serial: [] as FleetRun[], parallel: [] as FleetRun[] } }
      })
    )

    const fleetDeploy = async (size: (typeof sizes)[number], mode: 'serial' | 'parallel'): Promise<FleetRun> => {
      const tag = size.tag === 's1' ? 's2' : 's1'
      const cpuBefore = childrenCpuMs()
      const startedAt = now()
      const result = await runAction({
        workspace: size[mode],
        // No token: no GitHub API calls are timed. Debug output names every docker command.
        inputs: { tag, 'github-token': '' },
        entry: BUNDLE,
        debug: true,
        timeoutMs: 180_000
      })
      const wallMs = now() - startedAt
      const cpuMs = childrenCpuMs() - cpuBefore
      expectResult({ result, startedAt, endedAt: now(), chunks: [] }, 'deployed', `fleet: ${size.count} host(s), ${mode}, ${tag}`)
      size.tag = tag
      for (const host of size.hosts) {
        const served = await httpGet(`http://${host.address}:${size.port}/version`)
        if (served.body.trim() !== tag) throw new Error(`fleet: ${host.address} serves ${served.body} after the deploy of ${tag}`)
      }
      const commands = result.stdout.split('\n').filter((line) => line.startsWith('::debug::docker '))
      return {
        wallMs,
        cpuMs,
        dockerCommands: commands.length,
        inspects: commands.filter((line) => line.startsWith('::debug::docker container inspect')).length,
        ...summaryStepTimes(result)
      }
    }

    // Warm-up: two deploys each, so every timed run is an upgrade with a kept previous version, as in steady use.
    for (const size of sizes) {
      await fleetDeploy(size, 'parallel')
      await fleetDeploy(size, 'parallel')
    }
    const load: number[] = []
    for (let run = 0; run < FLEET_RUNS; run++) {
      load.push(loadavg()[0] ?? Number.NaN)
      for (const [index, size] of sizes.entries()) {
        // Alternate who goes first, so a drift in the machine's speed does not favour either.
        const order: ('serial' | 'parallel')[] = (run + index) % 2 === 0 ? ['serial', 'parallel'] : ['parallel', 'serial']
        for (const mode of order) size.figures[mode].push(await fleetDeploy(size, mode))
        const serial = size.figures.serial.at(-1) as FleetRun
        const parallel = size.figures.parallel.at(-1) as FleetRun
        log(
          `fleet run ${run + 1}/${FLEET_RUNS}, ${size.count} host${size.count === 1 ? '' : 's'}: serial ${ms(serial.wallMs)}, parallel ${ms(parallel.wallMs)}, ` +
            `ratio ${ratio(serial.wallMs / parallel.wallMs)}; runner CPU ${ms(serial.cpuMs)} / ${ms(parallel.cpuMs)}`
        )
      }
    }
    return { runs: FLEET_RUNS, bySize: sizes.map((size) => size.figures), load, seconds: (now() - began) / 1_000 }
  } finally {
    await lab.stop()
  }
}

const FLEET_BEGIN = '<!-- bench:fleet -->'
const FLEET_END = '<!-- /bench:fleet -->'


/** The fleet figure's own section of BENCHMARKS.md, markers included. */
function renderFleetSection(fleet: FleetFigures, machine: Machine, alone: boolean, command: string): string {
  const one = fleet.bySize.find((size) => size.hosts === 1)
  const medianOf = (runs: FleetRun[], pick: (run: FleetRun) => number): number => median(runs.map(pick))
  const rows = fleet.bySize.map((size) => {
    const speedUp = median(pairwise(size.serial, size.parallel))
    const parallelScale = one ? median(pairwise(size.parallel, one.parallel)) : Number.NaN
    const serialScale = one ? median(pairwise(size.serial, one.serial)) : Number.NaN
    return (
      `| ${size.hosts} | ${ms(medianOf(size.serial, (run) => run.wallMs))} | ${ms(medianOf(size.parallel, (run) => run.wallMs))} | ` +
      `${ratio(speedUp)} | ${ratio(serialScale)} | ${ratio(parallelScale)} |`
    )
  })
  const runnerRows = fleet.bySize.map(
    (size) =>
      `| ${size.hosts} | ${medianOf(size.serial, (run) => run.dockerCommands)} / ${medianOf(size.parallel, (run) => run.dockerCommands)} | ` +
      `${medianOf(size.serial, (run) => run.inspects)} / ${medianOf(size.parallel, (run) => run.inspects)} | ` +
      `${ms(medianOf(size.serial, (run) => run.cpuMs))} / ${ms(medianOf(size.parallel, (run) => run.cpuMs))} |`
  )
  const runs = fleet.bySize
    .map(
      (size) =>
        `${size.hosts} host${size.hosts === 1 ? '' : 's'}: ` +
        size.serial.map((run, index) => `${ms(run.wallMs)} / ${ms(size.parallel[index]?.wallMs ?? Number.NaN)}`).join(', ')
    )
    .join('; ')
  const four = fleet.bySize.find((size) => size.hosts === 4)
  const fourScale = four && one ? median(pairwise(four.parallel, one.parallel)) : Number.NaN
  const fourSpeedUp = four ? median(pairwise(four.serial, four.parallel)) : Number.NaN
  const perCommand = four ? medianOf(four.parallel, (run) => run.cpuMs / Math.max(1, run.dockerCommands)) : Number.NaN
  // Step by step, parallel setting: the median time of each step per host count.
  const kinds = [...new Set(fleet.bySize.flatMap((size) => size.parallel.flatMap((run) => Object.keys(run.steps))))]
  const stepMedian = (size: FleetFigures['bySize'][number] | undefined, kind: string): number =>
    size ? median(size.parallel.map((run) => run.steps[kind] ?? 0)) : Number.NaN
  const restMedian = (size: FleetFigures['bySize'][number]): number =>
    median(size.parallel.map((run) => run.wallMs - Object.values(run.steps).reduce((total, value) => total + value, 0)))
  const sideBySide = new Set((four ?? fleet.bySize.at(-1))?.parallel.flatMap((run) => run.sideBySide) ?? [])
  const stepRows = [
    ...kinds.map((kind) => `| ${kind} | ${fleet.bySize.map((size) => ms(stepMedian(size, kind))).join(' | ')} | ${sideBySide.has(kind) ? 'side by side' : 'host after host'} |`),
    `| the rest | ${fleet.bySize.map((size) => ms(restMedian(size))).join(' | ')} | |`
  ]
  const added = (kind: string): number => stepMedian(four, kind) - stepMedian(one, kind)
  const serialKinds = kinds.filter((kind) => !sideBySide.has(kind) && added(kind) > 50)
  const serialAdded = serialKinds.reduce((total, kind) => total + added(kind), 0)
  const parallelAdded = kinds.filter((kind) => sideBySide.has(kind) && !/verify/.test(kind)).reduce((total, kind) => total + Math.max(0, added(kind)), 0)
  const how = alone ? `\`${command}\` (this section alone; the other sections are from the run named at the top unless their first line says otherwise)` : '`npm run bench`'

  return `${FLEET_BEGIN}
## 6. Fleets: 1, 2 and 4 hosts, serial against parallel

Measured by ${how} on ${machine.date}, at commit ${machine.commit}, measuring \`${machine.bundle}\`
(${machine.cores} cores, ${machine.docker}, Node ${machine.node}): **median of ${fleet.runs} runs** per configuration, serial and
parallel interleaved in alternating order, ${Math.round(fleet.seconds)} s in all. The machine was shared: its load average (1 min)
at the start of each round was ${list(fleet.load, (value) => value.toFixed(1))}.

Each host is a network namespace with a private Docker Engine and a registry on its own loopback
(\`test-support/netns.ts\`), all on this one machine; \`{host}\` in the health URL is each namespace's address.
Every run is the same upgrade between two builds of an app that serves ${FLEET_START_DELAY_S} s after it starts (a health
check that takes a while, as a real app's does; images already pulled), deployed with \`rollout.parallel: 1\`
(serial: host after host, each verified before the next) and with \`rollout.parallel:\` set to the number of
hosts (every host switched and verified side by side). Health: probe every ${FLEET_HEALTH.intervalMs} ms, ${FLEET_HEALTH.threshold} success needed.
With 1 host both settings are the same deploy: that row shows the noise.

| Hosts | serial (\`parallel: 1\`) | parallel (\`parallel:\` = hosts) | serial ÷ parallel | serial ÷ 1 host | parallel ÷ 1 host |
|---|---|---|---|---|---|
${rows.join('\n')}

Ratios are medians of each round's own ratios (the runs compared ran back to back). "÷ 1 host" compares with
the 1-host deploy of the same setting in the same round.

![Deploy to 1, 2 and 4 hosts, serial against parallel](bench/fleet.svg)

On the runner (the action's node process and every docker CLI it ran; CPU time from \`/proc\`), median per deploy:

| Hosts | docker commands, serial / parallel | of which \`container inspect\` | runner CPU, serial / parallel |
|---|---|---|---|
${runnerRows.join('\n')}

Runs (serial / parallel): ${runs}.

Where the time goes, with \`parallel:\` = hosts (median per step, from the job summary; a step that goes host
after host is summed over the hosts, one that runs side by side counts its slowest host; "the rest" is Node
loading the action, the unlock and the exit):

| Step | ${fleet.bySize.map((size) => `${size.hosts} host${size.hosts === 1 ? '' : 's'}`).join(' | ')} | with several hosts |
|${fleet.bySize.map(() => '---|').join('')}---|---|
${stepRows.join('\n')}

With 4 hosts, \`parallel: 4\` was ${ratio(fourSpeedUp)} faster than serial and took ${ratio(fourScale)} the time of one host
(issue 13 asks for at most ${GOALS.fleetParallelBound.toFixed(1)}×; \`__tests__/fleet.itg.ts\` asserts it with an app that starts in 30 s, where
the health check dominates). What four hosts add does not grow with the health check: the steps that still go
host after host (${serialKinds.join(', ') || 'none'}: ${ms(serialAdded)} more than with one host here), and the side-by-side
pulls and switches (${ms(parallelAdded)} more), which share this machine's ${machine.cores} cores with four engines, their
registries and every docker CLI of the deploy. The runner's CPU grows with the hosts either way: each docker command is a
CLI process (about ${ms(perCommand)} of runner CPU per command here, Node's own share included), and the health check
follows each host's containers with one \`docker events\` stream (before issue 21 it read the state with one every 150 ms).
${FLEET_END}`
}

/** The fleet figure's row in the top table. */
function fleetSummaryRow(fleet: FleetFigures): string {
  const one = fleet.bySize.find((size) => size.hosts === 1)
  const four = fleet.bySize.find((size) => size.hosts === 4)
  const scale = one && four ? median(pairwise(four.parallel, one.parallel)) : Number.NaN
  const speedUp = four ? median(pairwise(four.serial, four.parallel)) : Number.NaN
  return (
    `| 6. Fleet of 4 hosts, \`parallel: 4\` ÷ 1 host (app starts in ${FLEET_START_DELAY_S} s) | ${ratio(scale)} (serial ÷ parallel: ${ratio(speedUp)}) | ` +
    `≤ ${GOALS.fleetParallelBound.toFixed(2)}× (issues 13, 21) | ${verdict(scale <= GOALS.fleetParallelBound)} |`
  )
}


/** The figure's row in the top table (issue 13's bound, which issue 21 keeps as its goal). */
export function fleetRows(fleet: FleetFigures): string[] {
  return [fleetSummaryRow(fleet)]
}

export function fleetReport(fleet: FleetFigures, run: RunInfo): FigureReport {
  return {
    markers: { begin: FLEET_BEGIN, end: FLEET_END, beforeNotes: true },
    section: renderFleetSection(fleet, run.machine, run.alone, run.command),
    charts: { 'bench/fleet.svg': fleetChart(fleet) }
  }
}
