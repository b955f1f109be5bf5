/**
 * Figure 4, downtime of a healthy replace deploy: a loopback prober (every 10 ms, a fresh
 * connection each time) while the action upgrades v1 to v2, beside the floor of stop-then-start:
 * how long a created container takes from `docker start` to its first answer.
 * Run alone: `npm run bench -- --only downtime`.
 */
import { freePort, httpGet } from '../../test-support/net.js'
import { sleep } from '../../test-support/proc.js'
import {
  benchMarkers,
  deploy,
  downtime,
  expectResult,
  list,
  log,
  median,
  ms,
  now,
  PROBE_EVERY_MS,
  resetToV1,
  RUNS,
  sectionHeader,
  startProber,
  type FigureReport,
  type Fixture,
  type RunInfo
} from './harness.js'

export interface DowntimeFigures {
  failed: number[]
  longestGap: number[]
  floor: number[]
  probes: number[]
}

/** How long a created container takes from `docker start` to answering: the floor for stop-then-start. */
export async function startToServe(fixture: Fixture): Promise<number> {
  const port = await freePort()
  const name = 'bench-floor'
  await fixture.engine.docker(['rm', '--force', name]).catch(() => undefined)
  await fixture.engine.docker(['create', '--name', name, '--network', 'host', '--init', '-e', `PORT=${port}`, `${fixture.image}:v2`])
  try {
    const startedAt = now()
    await fixture.engine.docker(['start', name])
    for (;;) {
      try {
        const response = await httpGet(`http://127.0.0.1:${port}/health`, { timeoutMs: 1_000 })
        if (response.status === 200) return now() - startedAt
      } catch {
        // not listening yet
      }
      if (now() - startedAt > 30_000) throw new Error('floor: the container did not serve within 30 s')
      await sleep(PROBE_EVERY_MS)
    }
  } finally {
    await fixture.engine.docker(['rm', '--force', name])
  }
}

export async function measureDowntime(fixture: Fixture): Promise<DowntimeFigures> {
  const figures: DowntimeFigures = { failed: [], longestGap: [], floor: [], probes: [] }
  for (let run = 0; run < RUNS; run++) {
    await resetToV1(fixture)
    const prober = startProber(`http://127.0.0.1:${fixture.port}/health`)
    await sleep(100)
    const deployed = await deploy(fixture, 'v2')
    await sleep(100)
    const records = await prober.stop()
    expectResult(deployed, 'deployed', 'downtime')
    const measured = downtime(records, deployed.startedAt, deployed.endedAt)
    const floor = await startToServe(fixture)
    figures.failed.push(measured.failed)
    figures.longestGap.push(measured.longestGapMs)
    figures.probes.push(measured.probes)
    figures.floor.push(floor)
    log(`downtime run ${run + 1}/${RUNS}: ${measured.failed} of ${measured.probes} probes failed, longest gap ${ms(measured.longestGapMs)}; a new container serves ${ms(floor)} after docker start`)
  }
  return figures
}

/** The figure's row in the top table. */
export function downtimeRows(figures: DowntimeFigures): string[] {
  return [
    `| 4. Downtime of a healthy replace deploy: longest gap | ${ms(median(figures.longestGap))}, ${median(figures.failed)} failed requests | floor: a new container serves ${ms(median(figures.floor))} after \`docker start\` | — |`
  ]
}

export function downtimeReport(figures: DowntimeFigures, run: RunInfo, seconds: number): FigureReport {
  const markers = benchMarkers('downtime')
  const section = `${markers.begin}
## 4. Downtime during a healthy replace deploy
${run.alone ? `\n${sectionHeader(run, seconds)}\n` : ''}
v1 serves; the action upgrades to v2 while a loopback prober sends \`GET /health\` every ${PROBE_EVERY_MS} ms on a fresh
connection. \`strategy: replace\` stops the old container before it starts the new one (both bind the
same host port), so some downtime is inherent; its floor is the time a created container takes from
\`docker start\` to its first answer, measured right after each deploy.

Runs: failed requests ${list(figures.failed, String)} (of ${list(figures.probes, String)} probes); longest gap ${list(figures.longestGap)}; floor ${list(figures.floor)}.
${markers.end}`
  return { markers, section, charts: {} }
}
