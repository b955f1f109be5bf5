/**
 * `npm run bench`: measures the action side by side with what it replaces, on private Docker
 * Engines (test-support/engine.ts), and writes BENCHMARKS.md and the charts in bench/.
 *
 * Without arguments it measures every figure in one run and writes the whole of BENCHMARKS.md and
 * every chart from that run, naming the commit and the bundle it measured at the top:
 *
 * - overhead.ts      1. a healthy upgrade by the action against a hand-written shell script;
 * - recovery.ts      2. time to recover from a broken upgrade, against Swarm's own rollback;
 * - crash.ts         3. crash detection, from the container's start to the failure verdict;
 * - downtime.ts      4. downtime of a healthy replace deploy, beside the time a container takes to serve;
 * - cold.ts          5. cold start (node to the first docker command) and the bundle's size;
 * - fleet.ts         6. 1, 2 and 4 hosts, serial against parallel, on network-namespace hosts;
 * - runner.ts        7. runner CPU and docker CLI processes of a 1-host deploy, against the script;
 * - proxy.ts         zero downtime, `replace` against `proxy` under load (issue 11);
 * - proxy-change.ts  the interruption when the proxy must change (issue 17);
 * - ssh.ts           an `ssh://` host, a new SSH session per command against one connection (issue 19).
 *
 * harness.ts holds what they share (parameters, timing and medians, the fixture, the action run,
 * CPU from /proc, machine facts, the load); plot.ts draws the charts; report.ts writes the file.
 *
 * `--only a,b` (e.g. `npm run bench -- --only fleet,proxy`) measures just those figures, at full
 * strength, and writes their sections (each between its markers; the first line of each says it
 * was measured alone) and their charts into the committed files, leaving the rest as it was.
 * BENCH_ONLY=a,b (development only) does the same with fewer runs (BENCH_RUNS, default 2) into a
 * copy of BENCHMARKS.md under .build/bench-preview/. The raw figures go to .build/bench-NAME.json
 * (a preview: .build/bench-preview/). Nothing here asserts timings: figures are printed next to their
 * targets. Everything a figure starts (engines, registries, swarm, probers, namespaces, sshd) is
 * stopped when it ends. Environment: see harness.ts and each figure module.
 */
import { copyFileSync, existsSync, readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { measureCold } from './cold.js'
import { measureCrash } from './crash.js'
import { measureDowntime } from './downtime.js'
import { measureFleet } from './fleet.js'
import { BUNDLE, describeMachine, FLEET_RUNS, log, now, PREVIEW, REPO_ROOT, RUNS, setUp, writeOut, type Fixture, type RunInfo } from './harness.js'
import { measureOverhead } from './overhead.js'
import { measureProxyChange } from './proxy-change.js'
import { measureProxy } from './proxy.js'
import { measureRecovery } from './recovery.js'
import { charts, FIGURES, figureReports, renderWhole, spliceInto, summaryLines, type FigureName, type Results } from './report.js'
import { measureRunner } from './runner.js'
import { measureSsh } from './ssh.js'

/** Figures measured on the shared fixture (one engine and registry); the others start engines of their own. */
const ON_FIXTURE: Record<FigureName, boolean> = {
  cold: true,
  overhead: true,
  crash: true,
  downtime: true,
  recovery: true,
  runner: true,
  fleet: true,
  proxy: false,
  'proxy-change': false,
  ssh: false
}

function figureNames(value: string, where: string): Set<FigureName> {
  const names = value.split(',').filter(Boolean)
  const unknown = names.filter((name) => !(FIGURES as readonly string[]).includes(name))
  if (names.length === 0 || unknown.length > 0) throw new Error(`${where} takes figures among ${FIGURES.join(', ')}, got "${value}"`)
  return new Set(names as FigureName[])
}

/** The figures named by `--only a,b` or `--only=a,b`. */
function onlyArgument(argv: string[]): Set<FigureName> | undefined {
  const index = argv.findIndex((arg) => arg === '--only' || arg.startsWith('--only='))
  if (index < 0) return undefined
  const flag = argv[index] ?? ''
  return figureNames(flag.startsWith('--only=') ? flag.slice('--only='.length) : (argv[index + 1] ?? ''), '--only')
}

async function main(): Promise<void> {
  const only = onlyArgument(process.argv.slice(2))
  const selected = PREVIEW ? figureNames([...PREVIEW].join(','), 'BENCH_ONLY') : only
  const wanted = (name: FigureName): boolean => !selected || selected.has(name)
  const command = PREVIEW ? `BENCH_ONLY=${[...PREVIEW].join(',')} npm run bench` : only ? `npm run bench -- --only ${[...only].join(',')}` : 'npm run bench'
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} does not exist: run npm run build first`)
  const began = now()
  log(`bundle ${BUNDLE}; ${RUNS} runs per figure (fleet: ${FLEET_RUNS}); ${selected ? `only ${[...selected].join(', ')}` : 'every figure'}; machine has ${cpus().length} cores`)

  const results: Partial<Results> & { seconds: Results['seconds'] } = { seconds: {} }
  const timed = async <T>(name: FigureName, measure: () => Promise<T>): Promise<T> => {
    const started = now()
    const figures = await measure()
    results.seconds[name] = (now() - started) / 1_000
    return figures
  }

  if (FIGURES.some((name) => ON_FIXTURE[name] && wanted(name))) {
    const fixture: Fixture = await setUp()
    const stopAll = (): Promise<void> => fixture.stop()
    // An interrupted bench still stops its engine, registry and swarm bridge.
    let interrupted = false
    const onSignal = (): void => {
      if (interrupted) return
      interrupted = true
      log('interrupted: stopping the engine and the registry')
      void fixture.engine
        .dockerResult(['swarm', 'leave', '--force'])
        .finally(() => fixture.engine.dockerResult(['network', 'rm', 'docker_gwbridge']))
        .finally(() => stopAll())
        .finally(() => process.exit(130))
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    try {
      results.machine = await describeMachine(fixture.engine)
      log(`machine: ${results.machine.cores} cores, ${results.machine.memoryGiB} GiB, ${results.machine.kernel}, ${results.machine.docker}`)
      if (wanted('cold')) results.cold = await timed('cold', () => measureCold(fixture))
      if (wanted('overhead')) results.overhead = await timed('overhead', () => measureOverhead(fixture))
      if (wanted('crash')) results.crash = await timed('crash', () => measureCrash(fixture))
      if (wanted('downtime')) results.downtime = await timed('downtime', () => measureDowntime(fixture))
      if (wanted('recovery')) results.recovery = await timed('recovery', () => measureRecovery(fixture))
      if (wanted('runner')) results.runner = await timed('runner', () => measureRunner(fixture))
      if (wanted('fleet')) results.fleet = await timed('fleet', () => measureFleet(fixture.scratch))
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      await stopAll()
    }
  }
  results.machine ??= await describeMachine()
  // The proxy and ssh figures run on engines of their own.
  if (wanted('proxy')) results.proxy = await timed('proxy', () => measureProxy())
  if (wanted('proxy-change')) results['proxy-change'] = await timed('proxy-change', () => measureProxyChange())
  if (wanted('ssh')) results.ssh = await timed('ssh', () => measureSsh())
  const complete: Results = { ...results, machine: results.machine, totalSeconds: (now() - began) / 1_000 }

  // A preview writes under .build/ (ignored), never the committed files.
  const outputDir = PREVIEW ? join(REPO_ROOT, '.build', 'bench-preview') : REPO_ROOT
  const markdownPath = join(outputDir, 'BENCHMARKS.md')
  const run: RunInfo = { machine: complete.machine, alone: selected !== undefined, command }
  const reports = figureReports(complete, run)
  if (selected) {
    // `--only`: these sections in place, the others as they were measured.
    if (PREVIEW) {
      writeOut(markdownPath, '')
      copyFileSync(join(REPO_ROOT, 'BENCHMARKS.md'), markdownPath)
    }
    writeOut(markdownPath, spliceInto(readFileSync(markdownPath, 'utf8'), complete, run))
  } else {
    writeOut(markdownPath, renderWhole(complete, run))
  }
  const written = charts(reports)
  for (const [path, svg] of Object.entries(written)) writeOut(join(outputDir, path), svg)
  // The raw runs, for a closer look (under .build/, which git ignores).
  const rawDir = PREVIEW ? outputDir : join(REPO_ROOT, '.build')
  for (const name of FIGURES) {
    if (complete[name] !== undefined) writeOut(join(rawDir, `bench-${name}.json`), JSON.stringify({ machine: complete.machine, seconds: complete.seconds[name], figures: complete[name] }, null, 2))
  }

  log('summary (median; target):')
  for (const line of summaryLines(complete)) log(`  ${line}`)
  log(
    `wrote ${selected ? `the sections of ${[...selected].join(', ')} into ` : ''}${markdownPath}` +
      `${Object.keys(written).length > 0 ? ` and ${Object.keys(written).join(', ')}` : ''} in ${Math.round(complete.totalSeconds)} s`
  )
}

// Importable (e.g. to redraw a chart from a module) without running the bench.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main()
