/**
 * Figure 1, overhead: a healthy upgrade (v1 → v2, both images already pulled) by the action
 * against a hand-written shell script doing the same work, interleaved in alternating order.
 * Run alone: `npm run bench -- --only overhead`.
 */
import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { httpGet } from '../../test-support/net.js'
import { runCommand } from '../../test-support/proc.js'
import {
  benchMarkers,
  deploy,
  dockerCommandCount,
  expectResult,
  HEALTH,
  log,
  median,
  ms,
  now,
  ratio,
  resetToV1,
  RUNS,
  sectionHeader,
  stepDurations,
  TARGETS,
  verdict,
  type FigureReport,
  type Fixture,
  type RunInfo
} from './harness.js'

export const UPGRADE_SCRIPT = `#!/bin/sh
# What a person would write without the action: replace the container, poll until it answers.
set -eu
docker stop web >/dev/null
docker rm web >/dev/null
docker run -d --name web --network host --init -e "PORT=$PORT" "$IMAGE" >/dev/null
until busybox wget -q -O /dev/null "http://127.0.0.1:$PORT/health"; do sleep "$INTERVAL"; done
`

export interface OverheadFigures {
  action: number[]
  script: number[]
  ratios: number[]
  steps: Record<string, number[]>
  /** Docker commands the action ran per upgrade (the script runs 3). */
  dockerCommands: number[]
  /** What one `docker container inspect` costs on this machine, measured beside each pair. */
  cliCallMs: number[]
  /** From the action's verdict line (`Result`) to its exit: the time Node takes to finish after the last step. */
  exitTailMs: number[]
}

export async function measureOverhead(fixture: Fixture): Promise<OverheadFigures> {
  const scriptPath = join(fixture.scratch, 'upgrade.sh')
  writeFileSync(scriptPath, UPGRADE_SCRIPT)
  chmodSync(scriptPath, 0o755)
  const figures: OverheadFigures = { action: [], script: [], ratios: [], steps: {}, dockerCommands: [], cliCallMs: [], exitTailMs: [] }

  const byAction = async (): Promise<number> => {
    await resetToV1(fixture)
    const run = await deploy(fixture, 'v2')
    expectResult(run, 'deployed', 'overhead: action upgrade')
    for (const [title, duration] of Object.entries(stepDurations(run.result))) (figures.steps[title] ??= []).push(duration)
    figures.dockerCommands.push(dockerCommandCount(run.result))
    const verdictAt = run.chunks.find((chunk) => chunk.text.includes('::notice title=Result::'))?.at
    figures.exitTailMs.push(verdictAt === undefined ? Number.NaN : run.endedAt - verdictAt)
    return run.endedAt - run.startedAt
  }
  const byScript = async (): Promise<number> => {
    await resetToV1(fixture)
    const env = fixture.engine.env({
      DOCKER_CONFIG: fixture.dockerConfig,
      PORT: String(fixture.port),
      IMAGE: `${fixture.image}:v2`,
      INTERVAL: String(HEALTH.intervalMs / 1_000)
    })
    const startedAt = now()
    const result = await runCommand('sh', [scriptPath], { env, timeoutMs: 120_000 })
    const elapsed = now() - startedAt
    if (result.exitCode !== 0) throw new Error(`overhead: the script failed: ${result.stderr}`)
    const served = await httpGet(`http://127.0.0.1:${fixture.port}/version`)
    if (served.body.trim() !== 'v2') throw new Error(`overhead: the script left ${served.body} serving`)
    return elapsed
  }

  for (let run = 0; run < RUNS; run++) {
    // Alternate who goes first, so a drift in the machine's speed does not favour either.
    let action: number
    let script: number
    if (run % 2 === 0) {
      action = await byAction()
      script = await byScript()
    } else {
      script = await byScript()
      action = await byAction()
    }
    const cliStarted = now()
    await fixture.engine.docker(['container', 'inspect', 'web'])
    figures.cliCallMs.push(now() - cliStarted)
    figures.action.push(action)
    figures.script.push(script)
    figures.ratios.push(action / script)
    log(`overhead run ${run + 1}/${RUNS}: action ${ms(action)}, script ${ms(script)}, ratio ${ratio(action / script)} (target ≤ ${TARGETS.overheadRatio})`)
  }
  return figures
}

/** The figure's row in the top table. */
export function overheadRows(overhead: OverheadFigures): string[] {
  const overheadRatio = median(overhead.ratios)
  return [
    `| 1. Overhead of a healthy upgrade: action ÷ hand-written script | ${ratio(overheadRatio)} (${ms(median(overhead.action))} vs ${ms(median(overhead.script))}) | ≤ ${TARGETS.overheadRatio.toFixed(2)}× | ${verdict(overheadRatio <= TARGETS.overheadRatio)} |`
  ]
}

export function overheadReport(overhead: OverheadFigures, run: RunInfo, seconds: number): FigureReport {
  const markers = benchMarkers('overhead')
  const stepRows = Object.entries(overhead.steps)
    .map(([title, values]) => `| ${title} | ${ms(median(values))} |`)
    .join('\n')
  const section = `${markers.begin}
## 1. Overhead
${run.alone ? `\n${sectionHeader(run, seconds)}\n` : ''}
A healthy upgrade from v1 to v2, both images already pulled. The action runs every step it always
runs (read what runs, \`docker pull\`, create the new container beside the old one, stop, rename,
start, verify state and HTTP, clean up). The competitor is this script, at the same probe interval:

\`\`\`sh
${UPGRADE_SCRIPT.trim()}
\`\`\`

Runs (action / script / ratio): ${overhead.action.map((value, index) => `${ms(value)} / ${ms(overhead.script[index] ?? Number.NaN)} / ${ratio(overhead.ratios[index] ?? Number.NaN)}`).join('; ')}.

The action ran a median of ${median(overhead.dockerCommands)} docker commands per upgrade (the script: 3); one \`docker container inspect\`
costs a median of ${ms(median(overhead.cliCallMs))} on this machine. The script's busybox wget has no timeout (busybox 1.35's
\`wget -T\` crashes); on loopback a refused connection returns at once. Where the action's time goes (median step
durations from its own notices; the rest is Node loading the action, see figure 5, and ${ms(median(overhead.exitTailMs))} from
the action's verdict line to its exit, see the notes):

| Step | Median |
|---|---|
${stepRows}
${markers.end}`
  return { markers, section, charts: {} }
}
