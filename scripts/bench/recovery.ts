/**
 * Figure 2, time to recover from a broken upgrade: the action's rollback against Swarm's own
 * `--update-failure-action rollback` (a single-node swarm on the same engine), same images, same
 * health parameters, interleaved in alternating order. Writes bench/recovery.svg.
 * Run alone: `npm run bench -- --only recovery`.
 */
import { existsSync, readdirSync } from 'node:fs'
import type { Engine } from '../../test-support/engine.js'
import { freePort, httpGet } from '../../test-support/net.js'
import { runCommand, sleep } from '../../test-support/proc.js'
import {
  benchMarkers,
  deploy,
  dockerCommandCount,
  expectResult,
  HEALTH,
  list,
  log,
  median,
  ms,
  now,
  outage,
  PROBE_EVERY_MS,
  ratio,
  removeAllContainers,
  resetToV1,
  RUNS,
  sectionHeader,
  SERVICE,
  startProber,
  stepDurations,
  SWARM_RETRIES,
  TARGETS,
  verdict,
  type FigureReport,
  type Fixture,
  type RunInfo
} from './harness.js'
import { recoveryChart } from './plot.js'

export interface Swarm {
  port: number
  stop(): Promise<void>
}

/**
 * Turns the private engine into a single-node swarm on loopback. Swarm wants a docker_gwbridge
 * and an ingress network; we create the bridge ourselves on a free subnet with our own interface
 * name (so it cannot collide with anything on the machine), and remove ingress (services use the
 * host network). `stop()` leaves the swarm and deletes the bridge interface.
 */
export async function startSwarm(engine: Engine): Promise<Swarm> {
  const routes = (await runCommand('ip', ['-4', 'route', 'show'])).stdout
  const links = new Set(existsSync('/sys/class/net') ? readdirSync('/sys/class/net') : [])
  let octet = 0
  for (let candidate = 0; candidate < 256; candidate++) {
    if (!routes.includes(`10.253.${candidate}.`) && !links.has(`dabench${candidate}`)) {
      octet = candidate
      break
    }
  }
  const bridge = `dabench${octet}`
  const stop = async (): Promise<void> => {
    const services = (await engine.dockerResult(['service', 'ls', '-q'])).stdout.split('\n').filter(Boolean)
    if (services.length > 0) await engine.dockerResult(['service', 'rm', ...services])
    await engine.dockerResult(['swarm', 'leave', '--force'])
    await removeAllContainers(engine).catch(() => undefined)
    await engine.dockerResult(['network', 'rm', 'docker_gwbridge'])
    if (existsSync(`/sys/class/net/${bridge}`)) await runCommand('ip', ['link', 'delete', bridge])
  }
  try {
    await engine.docker([
      'network', 'create', '--driver', 'bridge', '--subnet', `10.253.${octet}.0/24`,
      '--opt', `com.docker.network.bridge.name=${bridge}`,
      '--opt', 'com.docker.network.bridge.enable_icc=false',
      '--opt', 'com.docker.network.bridge.enable_ip_masquerade=false',
      'docker_gwbridge'
    ])
    const listenPort = await freePort()
    await engine.docker(['swarm', 'init', '--advertise-addr', '127.0.0.1', '--listen-addr', `127.0.0.1:${listenPort}`, '--data-path-addr', '127.0.0.1'])
    await engine.docker(['network', 'rm', 'ingress'], { input: 'y\n' })
    return { port: await freePort(), stop }
  } catch (error) {
    await stop().catch(() => undefined)
    throw error
  }
}

export async function swarmServiceState(engine: Engine): Promise<string> {
  return (await engine.docker(['service', 'inspect', '--format', '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}', SERVICE])).trim()
}

/** One Swarm run: create the service at v1, update it to the broken image, wait for its rollback. */
export async function swarmRecovery(fixture: Fixture, swarm: Swarm, figures: RecoveryFigures): Promise<number> {
  const { engine } = fixture
  const url = `http://127.0.0.1:${swarm.port}`
  const health = [
    // No `wget -T`: busybox 1.35's wget crashes with it; --health-timeout bounds the probe instead.
    '--health-cmd', `wget -q -O /dev/null ${url}/health || exit 1`,
    '--health-interval', `${HEALTH.intervalMs}ms`,
    '--health-timeout', `${HEALTH.timeoutMs}ms`,
    '--health-retries', String(SWARM_RETRIES),
    '--health-start-period', '0s'
  ]
  await engine.docker([
    'service', 'create', '--detach=false', '--quiet', '--name', SERVICE, '--network', 'host', '--init',
    '--env', `PORT=${swarm.port}`, ...health,
    '--update-order', 'stop-first', '--update-failure-action', 'rollback', '--update-monitor', `${HEALTH.deadlineMs + 1_000}ms`,
    '--rollback-order', 'stop-first', '--no-resolve-image', `${fixture.image}:v1`
  ], { timeoutMs: 120_000 })
  try {
    const first = await httpGet(`${url}/version`)
    if (first.body.trim() !== 'v1') throw new Error(`swarm: v1 should serve, got ${first.body}`)
    const prober = startProber(`${url}/version`)
    await sleep(50)
    const t0 = now()
    await engine.docker(['service', 'update', '--detach', '--no-resolve-image', '--image', `${fixture.image}:broken`, SERVICE])
    const deadline = t0 + 120_000
    let state = ''
    while (now() < deadline) {
      state = await swarmServiceState(engine)
      if (Number.isFinite(outage(prober.records, t0, 'v1').back) && state === 'rollback_completed') break
      if (/paused/.test(state)) break
      await sleep(250)
    }
    const seen = outage(await prober.stop(), t0, 'v1')
    if (state !== 'rollback_completed') log(`swarm: update status ended as "${state}"`)
    figures.swarmDown.push(seen.down)
    return seen.back
  } finally {
    await engine.docker(['service', 'rm', SERVICE])
    // The task's container goes away asynchronously; the next run must not find it.
    for (let wait = 0; wait < 100; wait++) {
      const left = (await engine.docker(['ps', '-aq', '--filter', `label=com.docker.swarm.service.name=${SERVICE}`])).trim()
      if (!left) break
      await sleep(200)
    }
  }
}

export async function actionRecovery(fixture: Fixture, figures: RecoveryFigures): Promise<number> {
  await resetToV1(fixture)
  const prober = startProber(`http://127.0.0.1:${fixture.port}/version`)
  await sleep(50)
  const run = await deploy(fixture, 'broken')
  await prober.stop()
  expectResult(run, 'rolled-back', 'recovery: action')
  for (const [title, duration] of Object.entries(stepDurations(run.result))) (figures.steps[title] ??= []).push(duration)
  figures.dockerCommands.push(dockerCommandCount(run.result))
  const seen = outage(prober.records, run.startedAt, 'v1')
  figures.actionDown.push(seen.down)
  return seen.back
}

export interface RecoveryFigures {
  action: number[]
  swarm: number[]
  ratios: number[]
  /** The action's successful steps (the failed verify has no duration: it is the deadline). */
  steps: Record<string, number[]>
  dockerCommands: number[]
  /** From the start until v1 stopped answering. */
  actionDown: number[]
  swarmDown: number[]
}

export async function measureRecovery(fixture: Fixture): Promise<RecoveryFigures> {
  const figures: RecoveryFigures = { action: [], swarm: [], ratios: [], steps: {}, dockerCommands: [], actionDown: [], swarmDown: [] }
  const swarm = await startSwarm(fixture.engine)
  try {
    for (let run = 0; run < RUNS; run++) {
      let action: number
      let swarmTime: number
      if (run % 2 === 0) {
        action = await actionRecovery(fixture, figures)
        await removeAllContainers(fixture.engine)
        swarmTime = await swarmRecovery(fixture, swarm, figures)
      } else {
        swarmTime = await swarmRecovery(fixture, swarm, figures)
        action = await actionRecovery(fixture, figures)
        await removeAllContainers(fixture.engine)
      }
      figures.action.push(action)
      figures.swarm.push(swarmTime)
      figures.ratios.push(action / swarmTime)
      log(
        `recovery run ${run + 1}/${RUNS}: action ${ms(action)}, swarm ${ms(swarmTime)}, ratio ${ratio(action / swarmTime)} ` +
          `(target < 1 and ≤ ${ms(HEALTH.deadlineMs + TARGETS.recoveryMarginMs)})`
      )
    }
  } finally {
    await swarm.stop()
  }
  return figures
}

/** The figure's rows in the top table. */
export function recoveryRows(recovery: RecoveryFigures): string[] {
  const recoveryAction = median(recovery.action)
  const recoverySwarm = median(recovery.swarm)
  const recoveryRatio = median(recovery.ratios)
  const recoveryTarget = HEALTH.deadlineMs + TARGETS.recoveryMarginMs
  return [
    `| 2. Time to recover from a broken upgrade: action | ${ms(recoveryAction)} | ≤ deadline + 2 s = ${ms(recoveryTarget)} | ${verdict(recoveryAction <= recoveryTarget)} |`,
    `| 2. … action ÷ Swarm \`--update-failure-action rollback\` | ${ratio(recoveryRatio)} (Swarm: ${ms(recoverySwarm)}) | < 1× | ${verdict(recoveryRatio < 1)} |`
  ]
}

export function recoveryReport(recovery: RecoveryFigures, run: RunInfo, seconds: number): FigureReport {
  const markers = benchMarkers('recovery')
  const section = `${markers.begin}
## 2. Time to recover from a broken upgrade
${run.alone ? `\n${sectionHeader(run, seconds)}\n` : ''}
v1 serves; the upgrade is to an image that keeps running but never opens its port. Measured from
the start of the upgrade until a loopback prober (every ${PROBE_EVERY_MS} ms) gets v1's \`/version\` again.
The action fails the health check at its ${HEALTH.deadlineMs / 1_000} s deadline and restarts the kept
\`web-previous\` container. Swarm: a single-node swarm on the same engine, a service on the host
network with \`--health-cmd\` (busybox wget), \`--health-interval ${HEALTH.intervalMs}ms --health-timeout ${HEALTH.timeoutMs}ms --health-retries ${SWARM_RETRIES}\`,
\`--update-order stop-first --update-failure-action rollback --update-monitor ${(HEALTH.deadlineMs + 1_000) / 1_000}s\`, and \`--no-resolve-image\`
(Swarm does not even ask the registry, the action does pull).

Runs, action: ${list(recovery.action)}. Swarm: ${list(recovery.swarm)}. Ratios: ${list(recovery.ratios, ratio)}.
v1 stopped answering after: action ${list(recovery.actionDown)}; Swarm ${list(recovery.swarmDown)}.

The action's steps in these runs (median; the failed \`Deploy · verify\` is the ${HEALTH.deadlineMs / 1_000} s deadline):

| Step | Median |
|---|---|
${Object.entries(recovery.steps).map(([title, values]) => `| ${title} | ${ms(median(values))} |`).join('\n')}
${markers.end}`
  return { markers, section, charts: { 'bench/recovery.svg': recoveryChart(recovery, RUNS) } }
}
