/**
 * Figure 5, cold start and size: from spawning `node <bundle>` with a runner's environment until
 * its first docker command (a fake `docker` first on PATH writes a timestamp), beside bare
 * `node -e` spawning one command; and the size of the bundle's files.
 * Run alone: `npm run bench -- --only cold`.
 */
import { spawn } from 'node:child_process'
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { load } from 'js-yaml'
import { inputVariableName } from '../../test-support/action-run.js'
import { benchMarkers, BUNDLE, COLD_RUNS, list, log, median, ms, now, REPO_ROOT, sectionHeader, TARGETS, verdict, type FigureReport, type Fixture, type RunInfo } from './harness.js'

export const FAKE_DOCKER = `#!/bin/sh
# Records when the action first runs docker, then fails like a missing container.
date +%s%N >> "$BENCH_DOCKER_LOG"
echo "Error response from daemon: No such container: web" >&2
exit 1
`

export interface ColdStartFigures {
  action: number[]
  nodeFloor: number[]
  bundleBytes: number
  bundleFiles: number
}

/** Spawns `argv` with `env`, returns how long until the fake docker first ran; waits for the exit. */
export async function timeToFirstDocker(argv: string[], env: NodeJS.ProcessEnv, logPath: string): Promise<number> {
  writeFileSync(logPath, '')
  const startedAt = now()
  const child = spawn(argv[0] as string, argv.slice(1), { env, stdio: 'ignore' })
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  await new Promise<void>((resolveExit) => child.once('close', () => resolveExit()))
  clearTimeout(timer)
  const first = readFileSync(logPath, 'utf8').split('\n')[0]
  if (!first) throw new Error(`cold start: ${argv.join(' ')} never ran docker`)
  return Number(BigInt(first) / 1000n) / 1_000 - startedAt
}

export async function measureCold(fixture: Fixture): Promise<ColdStartFigures> {
  const dir = join(fixture.scratch, 'cold')
  const bin = join(dir, 'bin')
  mkdirSync(bin, { recursive: true })
  writeFileSync(join(bin, 'docker'), FAKE_DOCKER)
  chmodSync(join(bin, 'docker'), 0o755)
  const logPath = join(dir, 'docker.log')
  const files: Record<string, string> = {}
  for (const name of ['GITHUB_OUTPUT', 'GITHUB_STATE', 'GITHUB_ENV', 'GITHUB_PATH', 'GITHUB_STEP_SUMMARY']) {
    files[name] = join(dir, name.toLowerCase())
    writeFileSync(files[name] as string, '')
  }
  // What the runner gives a step: every input with its default (a token included), the context, the files.
  const manifest = load(readFileSync(join(REPO_ROOT, 'action.yml'), 'utf8')) as { inputs: Record<string, { default?: unknown }> }
  const env: NodeJS.ProcessEnv = {
    PATH: `${bin}:${process.env.PATH ?? ''}`,
    HOME: process.env.HOME,
    BENCH_DOCKER_LOG: logPath,
    GITHUB_ACTIONS: 'true',
    GITHUB_WORKSPACE: fixture.workspace,
    GITHUB_REPOSITORY: 'acme/web',
    GITHUB_SHA: '0123456789abcdef0123456789abcdef01234567',
    GITHUB_REF: 'refs/heads/main',
    GITHUB_API_URL: 'http://127.0.0.1:9',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_RUN_ID: '1',
    GITHUB_ACTOR: 'octocat',
    RUNNER_TEMP: dir,
    ...files
  }
  for (const [name, spec] of Object.entries(manifest.inputs)) {
    env[inputVariableName(name)] = String(spec.default ?? '').replace(/\$\{\{\s*github\.token\s*\}\}/, 'ghs_benchFakeToken')
  }
  env[inputVariableName('tag')] = 'v2'

  const figures: ColdStartFigures = { action: [], nodeFloor: [], bundleBytes: 0, bundleFiles: 0 }
  const floorScript = "require('node:child_process').spawnSync('docker', ['version'])"
  for (let run = 0; run < COLD_RUNS; run++) {
    const action = await timeToFirstDocker([process.execPath, BUNDLE], env, logPath)
    const floor = await timeToFirstDocker([process.execPath, '-e', floorScript], env, logPath)
    figures.action.push(action)
    figures.nodeFloor.push(floor)
    log(`cold start run ${run + 1}/${COLD_RUNS}: action ${ms(action)} to its first docker command; bare node ${ms(floor)} (target ≤ ${ms(TARGETS.coldStartMs)})`)
  }
  const bundleDir = dirname(BUNDLE)
  const scripts = readdirSync(bundleDir).filter((name) => name.endsWith('.js') || name.endsWith('.mjs') || name.endsWith('.cjs'))
  figures.bundleFiles = scripts.length
  figures.bundleBytes = scripts.reduce((total, name) => total + statSync(join(bundleDir, name)).size, 0)
  return figures
}

/** The figure's rows in the top table. */
export function coldRows(cold: ColdStartFigures): string[] {
  const coldMedian = median(cold.action)
  const coldFloor = median(cold.nodeFloor)
  return [
    `| 5. Cold start: \`node dist/index.js\` → first docker command | ${ms(coldMedian)} (bare \`node\` → first spawn: ${ms(coldFloor)}) | ≤ ${ms(TARGETS.coldStartMs)} | ${verdict(coldMedian <= TARGETS.coldStartMs)} |`,
    `| 5. Bundle size | ${(cold.bundleBytes / 1024 / 1024).toFixed(2)} MB (${cold.bundleFiles} file${cold.bundleFiles === 1 ? '' : 's'}) | ≤ 1.5 MB | ${verdict(cold.bundleBytes <= TARGETS.bundleBytes)} |`
  ]
}

export function coldReport(cold: ColdStartFigures, run: RunInfo, seconds: number): FigureReport {
  const markers = benchMarkers('cold')
  const section = `${markers.begin}
## 5. Cold start and size
${run.alone ? `\n${sectionHeader(run, seconds)}\n` : ''}
From spawning \`node ${run.machine.bundle}\` with a runner's environment (every input at its default, a token
included) until its first docker command, recorded by a fake \`docker\` first on \`PATH\` that writes a timestamp.
For scale, bare \`node -e\` spawning one command takes ${ms(median(cold.nodeFloor))} on the same machine: that much of the figure is Node itself.

Runs, action: ${list(cold.action)}. Bare node: ${list(cold.nodeFloor)}.
${markers.end}`
  return { markers, section, charts: {} }
}
