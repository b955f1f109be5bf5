/**
 * Figure 7 (issue 21), the runner's share of a 1-host deploy: the CPU time of the action's process
 * tree and the docker CLI processes it starts, for the upgrade of an app that serves 3 s after it
 * starts (as in the fleet figure, so the health check runs a while, as a real app's does), against
 * the hand-written script of figure 1 doing the same upgrade, interleaved in alternating order.
 * Run alone: `npm run bench -- --only runner`.
 *
 * CPU: `cutime + cstime` of the bench process (/proc/self/stat) before and after each run. The
 * action's node process (or the script's shell) is the bench's child; once it has exited and been
 * waited for, its user and system time and that of every child it waited for (the docker CLIs, the
 * script's busybox wget and sleep) are in those fields. Nothing else of the bench ends during a run.
 *
 * docker CLI processes: a `docker` wrapper first on PATH (harness.ts `dockerCallCounter`) logs
 * every call and execs the real CLI, for the action and the script alike; the action spawns
 * `docker` from PATH with its own environment. The wrapper's shell start-up (a few ms, once per
 * docker process) is in both CPU figures.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runAction, type ActionResult } from '../../test-support/action-run.js'
import { pushAppImages } from '../../test-support/fixture.js'
import { httpGet } from '../../test-support/net.js'
import { runCommand } from '../../test-support/proc.js'
import {
  benchDeployConfig,
  benchMarkers,
  BUNDLE,
  childrenCpuMs,
  dockerCallCounter,
  expectResult,
  FLEET_HEALTH,
  FLEET_START_DELAY_S,
  GOALS,
  list,
  log,
  median,
  ms,
  now,
  ratio,
  removeAllContainers,
  REPO,
  RUNS,
  sectionHeader,
  verdict,
  type FigureReport,
  type Fixture,
  type RunInfo
} from './harness.js'
import { UPGRADE_SCRIPT } from './overhead.js'

export interface RunnerRun {
  wallMs: number
  /** User + system CPU of the process and every child it waited for. */
  cpuMs: number
  /** docker CLI processes started. */
  dockerProcesses: number
  /** Of those, `docker container inspect` / `docker inspect`. */
  inspects: number
}

export interface RunnerFigures {
  action: RunnerRun[]
  script: RunnerRun[]
  /** Per round, the action's CPU ÷ the script's. */
  cpuRatios: number[]
  /** The docker subcommands of the action's median run (by count), e.g. `container inspect: 24`. */
  commands: Record<string, number>
}

/** `container inspect`, `image ls`, … : the subcommand of a docker call (its first two words without options). */
function subcommand(call: string): string {
  const words = call.split(' ').filter((word) => word && !word.startsWith('-'))
  const first = words[0] ?? ''
  return ['container', 'image', 'network', 'volume', 'system', 'service', 'swarm', 'context', 'buildx'].includes(first) ? `${first} ${words[1] ?? ''}`.trim() : first
}

export async function measureRunner(fixture: Fixture): Promise<RunnerFigures> {
  const { engine } = fixture
  const app = { startDelaySeconds: FLEET_START_DELAY_S }
  await pushAppImages(fixture, REPO, [{ tag: 's1', behaviour: 'slow-start', options: app }, { tag: 's2', behaviour: 'slow-start', options: app }], { localRepo: REPO, keepLocal: true })
  const dir = join(fixture.scratch, 'runner')
  const workspace = join(dir, 'workspace')
  mkdirSync(join(workspace, '.github'), { recursive: true })
  writeFileSync(join(workspace, '.github', 'deploy.yml'), benchDeployConfig({ image: fixture.image, port: fixture.port, health: FLEET_HEALTH }))
  const scriptPath = join(dir, 'upgrade.sh')
  writeFileSync(scriptPath, UPGRADE_SCRIPT)
  chmodSync(scriptPath, 0o755)
  const counter = dockerCallCounter(dir)
  log(`runner: docker CLI processes counted by a wrapper first on PATH (real CLI ${counter.realDocker})`)

  const act = (tag: string, env?: Record<string, string>): Promise<ActionResult> =>
    runAction({
      workspace,
      dockerHost: engine.dockerHost,
      dockerConfig: fixture.dockerConfig,
      // No token: no GitHub API calls. No debug output either, as on a runner by default.
      inputs: { tag, 'github-token': '' },
      entry: BUNDLE,
      timeoutMs: 120_000,
      ...(env && { env })
    })
  const serves = async (tag: string, what: string): Promise<void> => {
    const served = await httpGet(`http://127.0.0.1:${fixture.port}/version`)
    if (served.body.trim() !== tag) throw new Error(`runner: ${what} left ${served.body} serving, not ${tag}`)
  }
  /** Every run starts from the same state: only s1 runs, deployed by the action (so it has its labels). */
  const reset = async (): Promise<void> => {
    await removeAllContainers(engine)
    const result = await act('s1')
    expectResult({ result, startedAt: 0, endedAt: 0, chunks: [] }, 'deployed', 'runner: reset to s1')
  }
  const counted = (started: number, cpuBefore: number): RunnerRun => {
    const calls = counter.calls()
    return {
      wallMs: now() - started,
      cpuMs: childrenCpuMs() - cpuBefore,
      dockerProcesses: calls.length,
      inspects: calls.filter((call) => /^(container )?inspect$/.test(subcommand(call))).length
    }
  }
  const calls: string[][] = []
  const byAction = async (): Promise<RunnerRun> => {
    await reset()
    counter.reset()
    const cpuBefore = childrenCpuMs()
    const started = now()
    const result = await act('s2', counter.env)
    const measured = counted(started, cpuBefore)
    calls.push(counter.calls())
    expectResult({ result, startedAt: started, endedAt: now(), chunks: [] }, 'deployed', 'runner: action upgrade')
    await serves('s2', 'the action')
    return measured
  }
  const byScript = async (): Promise<RunnerRun> => {
    await reset()
    counter.reset()
    const env = engine.env({
      DOCKER_CONFIG: fixture.dockerConfig,
      PORT: String(fixture.port),
      IMAGE: `${fixture.image}:s2`,
      INTERVAL: String(FLEET_HEALTH.intervalMs / 1_000),
      ...counter.env
    })
    const cpuBefore = childrenCpuMs()
    const started = now()
    const result = await runCommand('sh', [scriptPath], { env, timeoutMs: 120_000 })
    const measured = counted(started, cpuBefore)
    if (result.exitCode !== 0) throw new Error(`runner: the script failed: ${result.stderr}`)
    await serves('s2', 'the script')
    return measured
  }

  const figures: RunnerFigures = { action: [], script: [], cpuRatios: [], commands: {} }
  for (let run = 0; run < RUNS; run++) {
    // Alternate who goes first, so a drift in the machine's speed does not favour either.
    let action: RunnerRun
    let script: RunnerRun
    if (run % 2 === 0) {
      action = await byAction()
      script = await byScript()
    } else {
      script = await byScript()
      action = await byAction()
    }
    figures.action.push(action)
    figures.script.push(script)
    figures.cpuRatios.push(action.cpuMs / script.cpuMs)
    log(
      `runner run ${run + 1}/${RUNS}: action ${ms(action.wallMs)}, CPU ${ms(action.cpuMs)}, ${action.dockerProcesses} docker processes (${action.inspects} inspect); ` +
        `script ${ms(script.wallMs)}, CPU ${ms(script.cpuMs)}, ${script.dockerProcesses} docker processes (goals: CPU ≤ ${ms(GOALS.runnerCpuMs)}, ≤ ${GOALS.dockerProcesses} processes)`
    )
  }
  await removeAllContainers(engine)
  // The subcommands of the run with the median count of processes.
  const middle = [...calls].sort((a, b) => a.length - b.length)[Math.floor(calls.length / 2)] ?? []
  for (const call of middle) figures.commands[subcommand(call)] = (figures.commands[subcommand(call)] ?? 0) + 1
  return figures
}

/** Issue 21's figures of this section in the top table. */
export function runnerRows(runner: RunnerFigures): string[] {
  const cpu = median(runner.action.map((run) => run.cpuMs))
  const processes = median(runner.action.map((run) => run.dockerProcesses))
  return [
    `| 7. Runner CPU per 1-host deploy (app starts in ${FLEET_START_DELAY_S} s): action | ${ms(cpu)} (hand-written script: ${ms(median(runner.script.map((run) => run.cpuMs)))}; action ÷ script ${ratio(median(runner.cpuRatios))}) | ≤ ${ms(GOALS.runnerCpuMs)} (issue 21) | ${verdict(cpu <= GOALS.runnerCpuMs)} |`,
    `| 7. docker CLI processes per 1-host deploy (same runs) | ${processes}, ${median(runner.action.map((run) => run.inspects))} of them \`inspect\` (script: ${median(runner.script.map((run) => run.dockerProcesses))}) | ≤ ${GOALS.dockerProcesses} (issue 21) | ${verdict(processes <= GOALS.dockerProcesses)} |`
  ]
}

export function runnerReport(runner: RunnerFigures, run: RunInfo, seconds: number): FigureReport {
  const markers = benchMarkers('runner')
  const pick = (runs: RunnerRun[], key: keyof RunnerRun): number => median(runs.map((one) => one[key]))
  const row = (label: string, runs: RunnerRun[]): string =>
    `| ${label} | ${ms(pick(runs, 'cpuMs'))} | ${pick(runs, 'dockerProcesses')} | ${pick(runs, 'inspects')} | ${ms(pick(runs, 'wallMs'))} | ${list(runs.map((one) => one.cpuMs))} |`
  const commands = Object.entries(runner.commands)
    .sort((a, b) => b[1] - a[1])
    .map(([name, count]) => `\`${name}\` ${count}`)
    .join(', ')
  const section = `${markers.begin}
## 7. The runner's share of a 1-host deploy (issue 21)
${run.alone ? `\n${sectionHeader(run, seconds)}\n` : ''}
The upgrade of figure 1 on the bench's engine, but of an app that serves ${FLEET_START_DELAY_S} s after it starts (as in figure 6),
so the health check runs a while, as a real app's does: health every ${FLEET_HEALTH.intervalMs} ms, deadline ${FLEET_HEALTH.deadlineMs / 1_000} s. The competitor is
figure 1's script, polling at the same interval. Each run starts from the old version alone, deployed by the action;
action and script interleaved in alternating order; medians of ${runner.action.length} runs. The action runs without debug output,
as on a runner by default.

Runner CPU is the user and system time of the action's node process (or the script's shell) and of every process it
waited for (its docker CLIs; the script's busybox wget and sleep), from \`cutime\` and \`cstime\` in the bench's own
\`/proc/self/stat\` before and after each run. docker CLI processes are counted by a \`docker\` wrapper first on \`PATH\`
that logs each call and \`exec\`s the real CLI (its shell start-up is in both CPU figures).

| | Runner CPU (median) | docker CLI processes | of which \`inspect\` | Wall time | Runs, CPU |
|---|---|---|---|---|---|
${row('action', runner.action)}
${row('hand-written script', runner.script)}

Action ÷ script, CPU, per round: ${list(runner.cpuRatios, ratio)}. The action's docker commands in its median run: ${commands || 'none'}.
${markers.end}`
  return { markers, section, charts: {} }
}
