/**
 * BENCHMARKS.md from one run: `renderWhole` writes the whole file (a full `npm run bench`: the top
 * table, every figure's section, the notes), `spliceInto` puts the sections of a partial run
 * (`--only`, BENCH_ONLY) into the file as it was, each between its markers. Each figure module
 * gives its own section, charts and top-table rows; this file orders them and adds the header,
 * the top table and the notes on missed targets.
 */
import { coldReport, coldRows, type ColdStartFigures } from './cold.js'
import { crashReport, crashRows, type CrashFigures } from './crash.js'
import { downtimeReport, downtimeRows, type DowntimeFigures } from './downtime.js'
import { fleetReport, fleetRows, type FleetFigures } from './fleet.js'
import { COLD_RUNS, FLEET_RUNS, HEALTH, median, ms, ratio, RUNS, spliceSection, TARGETS, type FigureReport, type Machine, type RunInfo } from './harness.js'
import { overheadReport, overheadRows, type OverheadFigures } from './overhead.js'
import { proxyChangeReport, type ProxyChangeFigures } from './proxy-change.js'
import { proxyReport, proxyRows, type ProxyFigures } from './proxy.js'
import { recoveryReport, recoveryRows, type RecoveryFigures } from './recovery.js'
import { runnerReport, runnerRows, type RunnerFigures } from './runner.js'
import { sshReport, type SshFigures } from './ssh.js'

/** Every figure, in the order a full run measures them; `--only` names them so. */
export const FIGURES = ['cold', 'overhead', 'crash', 'downtime', 'recovery', 'runner', 'fleet', 'proxy', 'proxy-change', 'ssh'] as const
export type FigureName = (typeof FIGURES)[number]

/** What one run measured, figure by figure (a partial run: some of them), and how long each took. */
export interface Results {
  machine: Machine
  totalSeconds: number
  seconds: Partial<Record<FigureName, number>>
  cold?: ColdStartFigures
  overhead?: OverheadFigures
  crash?: CrashFigures
  downtime?: DowntimeFigures
  recovery?: RecoveryFigures
  runner?: RunnerFigures
  fleet?: FleetFigures
  proxy?: ProxyFigures
  'proxy-change'?: ProxyChangeFigures
  ssh?: SshFigures
}

/** The sections of what was measured, in the order of the document (the notes go between runner and proxy). */
export function figureReports(results: Results, run: RunInfo): FigureReport[] {
  const seconds = (name: FigureName): number => results.seconds[name] ?? Number.NaN
  const reports: (FigureReport | undefined)[] = [
    results.overhead && overheadReport(results.overhead, run, seconds('overhead')),
    results.recovery && recoveryReport(results.recovery, run, seconds('recovery')),
    results.crash && crashReport(results.crash, run, seconds('crash')),
    results.downtime && downtimeReport(results.downtime, run, seconds('downtime')),
    results.cold && coldReport(results.cold, run, seconds('cold')),
    results.fleet && fleetReport(results.fleet, run),
    results.runner && runnerReport(results.runner, run, seconds('runner')),
    results.proxy && proxyReport(results.proxy, run),
    results['proxy-change'] && proxyChangeReport(results['proxy-change'], run),
    results.ssh && sshReport(results.ssh, run)
  ]
  return reports.filter((report): report is FigureReport => report !== undefined)
}

/** The charts of what was measured: `bench/NAME.svg` → SVG. */
export function charts(reports: FigureReport[]): Record<string, string> {
  return Object.assign({}, ...reports.map((report) => report.charts)) as Record<string, string>
}

/** BENCHMARKS.md of a full run: every figure from this one run, at this one commit. */
export function renderWhole(results: Results, run: RunInfo): string {
  const { machine, overhead, recovery, crash, downtime, cold, fleet, runner, proxy } = results
  if (!overhead || !recovery || !crash || !downtime || !cold || !fleet || !runner || !proxy || !results['proxy-change'] || !results.ssh) {
    throw new Error('renderWhole: a full run measures every figure')
  }
  const reports = figureReports(results, run)
  const before = reports.filter((report) => report.markers.beforeNotes).map((report) => report.section)
  const after = reports.filter((report) => !report.markers.beforeNotes).map((report) => report.section)
  const rows = [
    ...overheadRows(overhead),
    ...recoveryRows(recovery),
    ...crashRows(crash),
    ...downtimeRows(downtime),
    ...coldRows(cold),
    ...fleetRows(fleet),
    ...runnerRows(runner),
    ...proxyRows(proxy)
  ]
  const top = `# Benchmarks

Written by \`npm run bench\` (\`scripts/bench/\`) on ${machine.date}, at commit ${machine.commit}, measuring
\`${machine.bundle}\` (${(cold.bundleBytes / 1024 / 1024).toFixed(2)} MB, ${machine.bundle === 'dist/index.js' ? 'built by `npm run build`' : 'given by DEPLOY_ACTION_BUNDLE'}). Every figure and chart below comes from
this one run, at this one commit; a section measured alone afterwards (\`npm run bench -- --only NAME\`) says so in its
first line. Do not edit by hand; run it again.

**Machine:** ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB memory, ${machine.kernel}, ${machine.docker}, Node ${machine.node}.
The figures were taken on a **small machine**: the bench's own engines, registries, load clients and
the action share its cores, and nothing stops other work from running beside it, so
absolute times are noisy; compare the ratios, which come from competitors run interleaved, in
alternating order, in the same session. Each figure is the **median of ${RUNS} runs** (cold start: ${COLD_RUNS}; the fleet: ${FLEET_RUNS};
the proxy, proxy-change and ssh sections give their own counts).
The whole bench took ${Math.round(results.totalSeconds)} s.

Everything runs against a private Docker Engine started for the bench, with images pulled from a
local registry on 127.0.0.1 (already present, as in a re-deploy). Health parameters, for the action
and its competitors alike: probe every ${HEALTH.intervalMs} ms, probe timeout ${HEALTH.timeoutMs / 1_000} s,
deadline ${HEALTH.deadlineMs / 1_000} s, ${HEALTH.threshold} success needed. The action runs as the runner runs it
(\`node dist/index.js\` with \`INPUT_*\`/\`GITHUB_*\`), without a GitHub token, so no GitHub API calls are timed.

| Figure | Measured (median) | Target | |
|---|---|---|---|
${rows.join('\n')}

The targets marked issue 21 are that issue's goals, each the median of at least 3 runs against its peer in this
same run: the hand-written script (runner CPU, docker processes), \`replace\` (the proxy rows), one host (the fleet).

![Time to recover from a broken upgrade](bench/recovery.svg)`
  return `${[top, ...before, renderNotes({ overhead, recovery, crash, cold }), ...after].join('\n\n')}\n`
}

/** The sections of a partial run put into `markdown` (BENCHMARKS.md as it was), each in place of its own. */
export function spliceInto(markdown: string, results: Results, run: RunInfo): string {
  return figureReports(results, run).reduce((text, report) => spliceSection(text, report.section, report.markers), markdown)
}

/** A one-line summary per figure measured, for the log. */
export function summaryLines(results: Results): string[] {
  const lines: string[] = []
  const { overhead, recovery, crash, downtime, cold, runner, fleet, proxy } = results
  if (overhead) lines.push(`1. overhead ratio ${ratio(median(overhead.ratios))} (action ${ms(median(overhead.action))}, script ${ms(median(overhead.script))}); target ≤ ${TARGETS.overheadRatio}`)
  if (recovery) lines.push(`2. recovery ${ms(median(recovery.action))} vs Swarm ${ms(median(recovery.swarm))}, ratio ${ratio(median(recovery.ratios))}; target < 1 and ≤ ${ms(HEALTH.deadlineMs + TARGETS.recoveryMarginMs)}`)
  if (crash) lines.push(`3. crash detection ${ms(median(crash.fromStart))} from start`)
  if (downtime) lines.push(`4. downtime: longest gap ${ms(median(downtime.longestGap))}, ${median(downtime.failed)} failed requests; floor ${ms(median(downtime.floor))}`)
  if (cold) lines.push(`5. cold start ${ms(median(cold.action))} (bare node ${ms(median(cold.nodeFloor))}); target ≤ ${TARGETS.coldStartMs} ms; bundle ${(cold.bundleBytes / 1024 / 1024).toFixed(2)} MB; target ≤ 1.5 MB`)
  for (const row of [...(fleet ? fleetRows(fleet) : []), ...(runner ? runnerRows(runner) : []), ...(proxy ? proxyRows(proxy) : [])]) lines.push(row)
  return lines
}

/** Sum of the median durations of the steps whose title starts with one of `prefixes`. */
function stepsTotal(steps: Record<string, number[]>, titles: string[]): number {
  return titles.reduce((total, title) => total + (steps[title] ? median(steps[title]) : 0), 0)
}

/**
 * Why each missed target was missed, computed from this run's own figures, and what was done
 * about the ones whose cause is in the action.
 */
function renderNotes(results: { overhead: OverheadFigures; recovery: RecoveryFigures; crash: CrashFigures; cold: ColdStartFigures }): string {
  const { overhead, recovery, crash, cold } = results
  const notes: string[] = []
  const cli = median(overhead.cliCallMs)
  const commands = median(overhead.dockerCommands)
  const coldMedian = median(cold.action)
  const coldFloor = median(cold.nodeFloor)

  if (!(median(overhead.ratios) <= TARGETS.overheadRatio)) {
    notes.push(
      `- **Overhead (missed).** The action ran a median of ${commands} docker commands per upgrade, the script 3 ` +
        `(plus one busybox wget per probe). Each docker command is a new CLI process; one \`docker container inspect\` ` +
        `costs a median of ${ms(cli)} here, so the ${commands - 3} extra commands come to about ${ms((commands - 3) * cli)}; ` +
        `loading the action in Node takes about ${ms(coldMedian)} (figure 5), and the process needs ` +
        `${ms(median(overhead.exitTailMs))} from its verdict line to its exit (see the end of this note): together most of the gap ` +
        `(${ms(median(overhead.action) - median(overhead.script))}). ` +
        `Each command saved is worth about ${ms(cli)} of CLI time, less than the run-to-run spread of this ratio on ` +
        `this machine, so compare command counts rather than ratios from different sessions. The commands left (figure 7 ` +
        `lists them for its median run) are the safety the action exists for: the lock (create, a check that this run ` +
        `still owns it right before the switch, remove), reading what runs before touching anything, the pull (whose ` +
        `own output gives the registry digest), creating the new container as \`web-next\` before the old one is stopped ` +
        `(a bad option fails while the old version still serves), keeping the old one as \`web-previous\` for an instant ` +
        `rollback (two renames), one \`docker events\` stream begun at the create with one read of the container's state ` +
        `beside the HTTP probe, and the image retention (marking the deployed image, listing the repository's images). ` +
        `The time after the verdict line is V8 optimising undici's WebAssembly HTTP parser (llhttp) on a background ` +
        `thread once the probe has used it: Node waits for that job before it exits (with V8's \`--liftoff-only\` the wait ` +
        `drops to a few ms; undici is loaded by @actions/core anyway, the probe is its only user). ` +
        `A ratio of ${TARGETS.overheadRatio} stays out of reach while each docker command starts a CLI process: the fixes ` +
        `would be talking to the Engine API over its socket (\`docker system dial-stdio\` for ssh hosts) instead of ` +
        `running the CLI, and probing with node:http, whose parser is native, instead of undici.`
    )
  }
  const recoveryTarget = HEALTH.deadlineMs + TARGETS.recoveryMarginMs
  if (!(median(recovery.action) <= recoveryTarget)) {
    const before = stepsTotal(recovery.steps, ['Deploy · current', 'Deploy · pull', 'Deploy · switch'])
    const after = stepsTotal(recovery.steps, ['Rollback · remove failed', 'Rollback · target', 'Rollback · restore'])
    notes.push(
      `- **Time to recover (missed: ${ms(median(recovery.action))} against ${ms(recoveryTarget)}).** The clock starts when the ` +
        `action is spawned. Node needs about ${ms(coldMedian)} to load it; reading what runs, the pull and the switch take ` +
        `${ms(before)} (v1 stops answering ${ms(median(recovery.actionDown))} after the start); then the health check waits its ` +
        `full ${ms(HEALTH.deadlineMs)} deadline, and removing the failed container and restarting \`web-previous\` take ${ms(after)}. ` +
        `The ${median(recovery.dockerCommands)} docker commands of such a run cost about ${ms(cli)} each here. On this loaded 2-core ` +
        `machine that overhead is more than 2 s; it shrinks with the cost of a docker CLI call (see the overhead note). ` +
        `Swarm is ${ratio(1 / median(recovery.ratios))} slower still: it stopped v1 ${ms(median(recovery.swarmDown))} after the update ` +
        `command and only then started the broken task, waited for it to turn unhealthy, and needed several more seconds ` +
        `to schedule the rollback task.`
    )
  }
  if (!(median(crash.fromStart) <= TARGETS.crashDetectionMs)) {
    notes.push(
      `- **Crash detection (missed).** The verdict comes from docker's die event: ${ms(median(crash.fromExit))} from the ` +
        `container's exit. Measured from its start, the figure also holds the app's own time to exit and the load of ` +
        `this shared machine (a docker CLI process costs ${ms(cli)} here).`
    )
  }
  if (!(coldMedian <= TARGETS.coldStartMs)) {
    notes.push(
      `- **Cold start (missed).** Node itself needs ${ms(coldFloor)} here to start and spawn one command (the "bare ` +
        `node" figure); the other ${ms(coldMedian - coldFloor)} are the action loading. A CPU profile of the bundle ` +
        `(\`node --cpu-prof\`, mapped to the sources with ncc's source map) puts most of that in three places: evaluating ` +
        `undici (about 65 ms: @actions/core imports @actions/http-client for its OIDC client, and that imports all of ` +
        `undici, fetch and WebSocket included, before the first line of the action runs), compiling the ESM bundle ` +
        `(about 45 ms), and evaluating zod and js-yaml and reading the config with them (about 60 ms). What the first ` +
        `docker command does not need is no longer in its way: @actions/github and Octokit are loaded with a dynamic ` +
        `\`import()\` into a chunk of their own (so the bundle is ${cold.bundleFiles} files in one directory), started when the ` +
        `deploy begins and evaluated while the first docker commands run, and not at all without a token. Not fixed: ` +
        `undici is loaded by @actions/core's own imports, which the bundle cannot defer without aliasing or patching a ` +
        `dependency, and the config needs js-yaml and zod before anything can run.`
    )
  }
  notes.push(
    `- **Bundle size.** ncc's plain output was 1.95 MB: undici (0.93 MB of source, used by the HTTP probe and by ` +
      `@actions/http-client; one copy, shared by both @actions/http-client versions), zod (0.37 MB), js-yaml and ` +
      `@octokit's endpoint table, with their comments and whitespace. \`npm run build\` now minifies ` +
      `(\`ncc build --minify\`, which keeps function and class names, so error names and stack traces stay readable): ` +
      `${(cold.bundleBytes / 1024 / 1024).toFixed(2)} MB` +
      (cold.bundleFiles > 1 ? `, all ${cold.bundleFiles} files together (Octokit is a chunk of its own that only a GitHub API call loads; see the cold start note).` : '.')
  )
  return `## Notes on the targets\n\n${notes.join('\n')}`
}
