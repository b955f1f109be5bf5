/**
 * Runs the bundled action (`node dist/index.js`) the way the GitHub runner runs a JavaScript
 * action step, and reads back what the runner would: exit code, stdout with its workflow commands
 * (annotations, masks), and the file commands (GITHUB_OUTPUT, GITHUB_STATE, GITHUB_ENV,
 * GITHUB_STEP_SUMMARY).
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { load } from 'js-yaml'
import { descendantPids, listPids, readCmdline, readParentPid, signalPid } from './proc.js'

/** The repository root (this file lives in `test-support/`). */
export const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..')

/** What `${{ github.token }}` becomes in tests. A fake: the API URL points at loopback. */
export const FAKE_GITHUB_TOKEN = 'ghs_deployActionHarnessFakeToken0000'

/**
 * Default GITHUB_API_URL: a loopback port where nothing listens (discard), so an action that
 * calls the API without a test server gets "connection refused" instead of reaching github.com.
 */
export const UNREACHABLE_API_URL = 'http://127.0.0.1:9'

export interface GithubContext {
  repository: string
  sha: string
  ref: string
  runId: string
  runAttempt: string
  runNumber: string
  serverUrl: string
  apiUrl: string
  actor: string
  eventName: string
  workflow: string
  job: string
  /** Written to GITHUB_EVENT_PATH. */
  event: Record<string, unknown>
}

export interface ActionControl {
  /** Pid of the action's node process. */
  readonly pid: number
  /** Sends a signal to the action's node process (as the runner does on cancel: SIGINT, then SIGTERM). */
  signal(signal: NodeJS.Signals): void
}

export interface RunActionOptions {
  /** Inputs by their action.yml name (`dry-run`, `registry-password`, …). */
  inputs?: Record<string, string | number | boolean>
  /** Extra environment for the step (e.g. secrets named in the config). `undefined` removes a variable. */
  env?: Record<string, string | undefined>
  /** GITHUB_WORKSPACE and the working directory of the action. */
  workspace: string
  /** DOCKER_HOST of the runner's environment (the engine the action uses when `docker-host` is empty). */
  dockerHost?: string
  /** `post` runs the post step with `state` as STATE_* variables. Default `main`. */
  phase?: 'main' | 'post'
  /** State saved by the main step (`result.state` of the main run). */
  state?: Record<string, string>
  /** Overrides for the GITHUB_* context. */
  github?: Partial<GithubContext>
  /**
   * DOCKER_CONFIG of the step. Pass the same directory to main and post to model one job's home
   * directory. Default: a fresh directory, removed afterwards, so ~/.docker is never used.
   */
  dockerConfig?: string
  /** Apply action.yml defaults to inputs not given, as the runner does. Default true. */
  applyInputDefaults?: boolean
  /** Sets RUNNER_DEBUG=1, which turns on `core.debug` output. */
  debug?: boolean
  /** Script to run; default from action.yml `runs.main` / `runs.post`. */
  entry?: string
  /** Kill the action (and what it started) after this long and reject. Default 180 s. */
  timeoutMs?: number
  /** Called with each stdout chunk as it arrives; use `control.signal` to interrupt mid-run. */
  onStdout?: (chunk: string, control: ActionControl) => void
  /**
   * Sends `signal` (default SIGINT, as a cancelled runner does) once stdout contains `whenStdout`,
   * or after `afterMs`, whichever is given (and comes first).
   */
  signalAfter?: { signal?: NodeJS.Signals; afterMs?: number; whenStdout?: string | RegExp }
  /** Record the argv of every docker process the action starts (see `watchDockerArgv`). */
  watchDockerArgv?: boolean
}

export interface Annotation {
  level: 'error' | 'warning' | 'notice'
  message: string
  title?: string
  file?: string
  line?: number
  col?: number
  endLine?: number
  endColumn?: number
  /** All properties as given, unescaped. */
  properties: Record<string, string>
}

export interface ActionResult {
  /** Exit code, or null when the process ended by a signal. */
  exitCode: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  outputs: Record<string, string>
  state: Record<string, string>
  /** Variables exported through GITHUB_ENV. */
  exportedEnv: Record<string, string>
  summary: string
  annotations: Annotation[]
  /** Values registered with `::add-mask::`. */
  masks: string[]
  /** With `watchDockerArgv`: argv of each docker process seen, in order of first sighting. */
  dockerArgv: string[][]
  /** The exact environment the action ran with (for debugging a test). */
  env: Record<string, string>
}

/** Environment name of an input, as the runner builds it: spaces become `_`, hyphens stay. */
export function inputVariableName(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`
}

/** Inverse of the runner's escaping of workflow command property values. */
function unescapeProperty(value: string): string {
  return value.replace(/%0D/gi, '\r').replace(/%0A/gi, '\n').replace(/%3A/gi, ':').replace(/%2C/gi, ',').replace(/%25/g, '%')
}

/** Inverse of the runner's escaping of workflow command messages. */
function unescapeData(value: string): string {
  return value.replace(/%0D/gi, '\r').replace(/%0A/gi, '\n').replace(/%3A/gi, ':').replace(/%2C/gi, ',').replace(/%25/g, '%')
}

/** Parses the `::error file=…,line=…::message` (and warning/notice) lines of an action's stdout. */
export function parseAnnotations(stdout: string): Annotation[] {
  const annotations: Annotation[] = []
  for (const rawLine of stdout.split('\n')) {
    const line = rawLine.replace(/\r$/, '')
    const match = /^::(error|warning|notice)(?: ([^]*?))?::([^]*)$/.exec(line)
    if (!match) continue
    const properties: Record<string, string> = {}
    for (const pair of (match[2] ?? '').split(',').filter(Boolean)) {
      const equals = pair.indexOf('=')
      if (equals > 0) properties[pair.slice(0, equals).trim()] = unescapeProperty(pair.slice(equals + 1))
    }
    const number = (key: string): number | undefined => (properties[key] === undefined ? undefined : Number(properties[key]))
    annotations.push({
      level: match[1] as Annotation['level'],
      message: unescapeData(match[3] ?? ''),
      title: properties.title,
      file: properties.file,
      line: number('line'),
      col: number('col'),
      endLine: number('endLine'),
      endColumn: number('endColumn'),
      properties
    })
  }
  return annotations
}

/** Values of `::add-mask::value` lines. */
export function parseMasks(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((line) => /^::add-mask::(.*)$/.exec(line.replace(/\r$/, ''))?.[1])
    .filter((value): value is string => value !== undefined)
    .map(unescapeData)
}

/**
 * Parses a file-command file (GITHUB_OUTPUT, GITHUB_STATE, GITHUB_ENV) in the runner's format:
 * `name<<DELIMITER` / value lines / `DELIMITER`, or `name=value` on one line. Later entries win.
 * Throws on an unterminated multi-line value, as the runner fails the step for it.
 */
export function parseFileCommand(text: string): Record<string, string> {
  const values: Record<string, string> = {}
  const lines = text.split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  for (let index = 0; index < lines.length; index++) {
    const line = (lines[index] as string).replace(/\r$/, '')
    if (line === '') continue
    const heredoc = /^([^=]+?)<<(.+)$/.exec(line)
    const equals = line.indexOf('=')
    if (heredoc && (equals < 0 || line.indexOf('<<') < equals)) {
      const [, name, delimiter] = heredoc as unknown as [string, string, string]
      const valueLines: string[] = []
      for (index++; ; index++) {
        if (index >= lines.length) throw new Error(`Unterminated value for "${name}": delimiter ${delimiter} not found`)
        const valueLine = (lines[index] as string).replace(/\r$/, '')
        if (valueLine === delimiter) break
        valueLines.push(valueLine)
      }
      values[name] = valueLines.join('\n')
    } else if (equals > 0) {
      values[line.slice(0, equals)] = line.slice(equals + 1)
    } else {
      throw new Error(`Invalid file-command line: ${JSON.stringify(line)}`)
    }
  }
  return values
}

interface ActionManifest {
  runs?: { main?: string; post?: string }
  inputs?: Record<string, { default?: unknown }>
}

function readManifest(): ActionManifest {
  return load(readFileSync(join(REPO_ROOT, 'action.yml'), 'utf8')) as ActionManifest
}

/** The runner evaluates expressions in defaults; the only one our action.yml uses is the token. */
function evaluateDefault(value: unknown): string {
  const text = value === undefined || value === null ? '' : String(value)
  return text.replace(/\$\{\{\s*github\.token\s*\}\}/g, FAKE_GITHUB_TOKEN)
}

/** Prefixes the runner owns: a test's own CI environment must not leak into the action under test. */
const RUNNER_OWNED = /^(INPUT_|GITHUB_|RUNNER_|STATE_|ACTIONS_)/
const FOREIGN_DOCKER = new Set(['DOCKER_HOST', 'DOCKER_CONTEXT', 'DOCKER_CONFIG', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH'])

export interface DockerArgvWatcher {
  /** Argv of each docker process seen so far, in order of first sighting (deduplicated by pid). */
  readonly argv: string[][]
  /** The same processes, each with its pid and when it was first seen (ms since the epoch). */
  readonly sightings: { at: number; pid: number; argv: string[] }[]
  /** Takes a last sample, stops sampling and returns everything seen. */
  stop(): string[][]
}

/**
 * Samples `/proc` every `intervalMs` for docker processes (argv[0] named `docker` or `docker-*`,
 * e.g. credential helpers) that descend from `rootPid`, and records their argv. Used to prove
 * that secrets never appear in a command line. A command shorter than the interval can be missed;
 * the docker CLI needs tens of milliseconds just to start, so the default 5 ms catches them.
 */
export function watchDockerArgv(rootPid: number, options: { intervalMs?: number } = {}): DockerArgvWatcher {
  const seen = new Map<string, { at: number; pid: number; argv: string[] }>()
  const sample = (): void => {
    const at = Date.now()
    const parentOf = new Map<number, number>()
    for (const pid of listPids()) {
      const parent = readParentPid(pid)
      if (parent !== undefined) parentOf.set(pid, parent)
    }
    for (const [pid] of parentOf) {
      let ancestor = parentOf.get(pid)
      let depth = 0
      while (ancestor !== undefined && ancestor !== rootPid && ancestor > 1 && depth++ < 64) ancestor = parentOf.get(ancestor)
      if (ancestor !== rootPid) continue
      const argv = readCmdline(pid)
      if (!argv || !/^docker(-|$)/.test(basename(argv[0] ?? ''))) continue
      const key = `${pid}:${argv.join('\0')}`
      if (!seen.has(key)) seen.set(key, { at, pid, argv })
    }
  }
  const timer = setInterval(sample, options.intervalMs ?? 5)
  sample()
  const argvs = (): string[][] => [...seen.values()].map((sighting) => sighting.argv)
  return {
    get argv() {
      return argvs()
    },
    get sightings() {
      return [...seen.values()]
    },
    stop() {
      clearInterval(timer)
      sample()
      return argvs()
    }
  }
}

/** The main or post bundle of a build given by DEPLOY_ACTION_BUNDLE (its main bundle's path). */
function overriddenEntry(mainBundle: string, phase: 'main' | 'post'): string {
  const main = resolve(REPO_ROOT, mainBundle)
  if (phase === 'main') return main
  const post = join(dirname(main), 'post', 'index.js')
  if (!existsSync(post)) throw new Error(`DEPLOY_ACTION_BUNDLE: no post bundle at ${post}; build both with \`bash scripts/build.sh ${relative(REPO_ROOT, dirname(main))}\``)
  return post
}

/**
 * Runs one step of the action, main or post, with the environment and files the GitHub runner
 * provides, and returns what it printed and wrote. Rejects only when the action could not be
 * started or ran past `timeoutMs` (then it and everything it started are killed).
 */
export async function runAction(options: RunActionOptions): Promise<ActionResult> {
  const manifest = readManifest()
  const phase = options.phase ?? 'main'
  // DEPLOY_ACTION_BUNDLE lets a developer test a bundle built elsewhere (`bash scripts/build.sh
  // .build/x`, then DEPLOY_ACTION_BUNDLE=.build/x/index.js) while dist/ is being rebuilt by someone
  // else; its post step is `post/index.js` beside it. CI always runs the committed dist/.
  const bundleOverride = process.env.DEPLOY_ACTION_BUNDLE
  const entry = options.entry ?? (bundleOverride ? overriddenEntry(bundleOverride, phase) : resolve(REPO_ROOT, (phase === 'post' ? manifest.runs?.post : manifest.runs?.main) ?? 'dist/index.js'))

  const files = mkdtempSync(join(tmpdir(), 'deploy-action-run-'))
  const commandFiles = join(files, 'file_commands')
  const runnerTemp = join(files, 'temp')
  mkdirSync(commandFiles)
  mkdirSync(runnerTemp)
  const dockerConfig = options.dockerConfig ?? join(files, 'docker-config')
  mkdirSync(dockerConfig, { recursive: true })
  const paths = {
    output: join(commandFiles, 'set_output'),
    state: join(commandFiles, 'save_state'),
    env: join(commandFiles, 'set_env'),
    path: join(commandFiles, 'add_path'),
    summary: join(commandFiles, 'step_summary'),
    event: join(files, 'event.json')
  }
  for (const path of [paths.output, paths.state, paths.env, paths.path, paths.summary]) writeFileSync(path, '')

  const sha = options.github?.sha ?? '0123456789abcdef0123456789abcdef01234567'
  const github: GithubContext = {
    repository: 'acme/web',
    sha,
    ref: 'refs/heads/main',
    runId: '4242',
    runAttempt: '1',
    runNumber: '17',
    serverUrl: 'https://github.com',
    apiUrl: UNREACHABLE_API_URL,
    actor: 'octocat',
    eventName: 'push',
    workflow: 'deploy',
    job: 'deploy',
    event: {},
    ...options.github
  }
  const [owner = 'acme', repoName = 'web'] = github.repository.split('/')
  const event = Object.keys(github.event).length > 0 ? github.event : { ref: github.ref, after: github.sha, repository: { name: repoName, owner: { login: owner }, full_name: github.repository } }
  writeFileSync(paths.event, JSON.stringify(event))

  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !RUNNER_OWNED.test(name) && !FOREIGN_DOCKER.has(name)) env[name] = value
  }
  Object.assign(env, {
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_WORKSPACE: options.workspace,
    GITHUB_OUTPUT: paths.output,
    GITHUB_STATE: paths.state,
    GITHUB_ENV: paths.env,
    GITHUB_PATH: paths.path,
    GITHUB_STEP_SUMMARY: paths.summary,
    GITHUB_EVENT_PATH: paths.event,
    GITHUB_EVENT_NAME: github.eventName,
    GITHUB_REPOSITORY: github.repository,
    GITHUB_REPOSITORY_OWNER: owner,
    GITHUB_SHA: github.sha,
    GITHUB_REF: github.ref,
    GITHUB_REF_NAME: github.ref.replace(/^refs\/(heads|tags)\//, ''),
    GITHUB_REF_TYPE: github.ref.startsWith('refs/tags/') ? 'tag' : 'branch',
    GITHUB_RUN_ID: github.runId,
    GITHUB_RUN_ATTEMPT: github.runAttempt,
    GITHUB_RUN_NUMBER: github.runNumber,
    GITHUB_SERVER_URL: github.serverUrl,
    GITHUB_API_URL: github.apiUrl,
    GITHUB_GRAPHQL_URL: `${github.apiUrl}/graphql`,
    GITHUB_ACTOR: github.actor,
    GITHUB_WORKFLOW: github.workflow,
    GITHUB_JOB: github.job,
    GITHUB_ACTION: 'deploy',
    GITHUB_ACTION_REPOSITORY: 'acme/deploy-action',
    RUNNER_TEMP: runnerTemp,
    RUNNER_OS: 'Linux',
    RUNNER_ARCH: 'X64',
    RUNNER_NAME: 'harness',
    RUNNER_TOOL_CACHE: join(files, 'tool-cache'),
    DOCKER_CONFIG: dockerConfig
  })
  if (options.debug) env.RUNNER_DEBUG = '1'
  if (options.dockerHost) env.DOCKER_HOST = options.dockerHost

  const inputs: Record<string, string> = {}
  if (options.applyInputDefaults ?? true) {
    for (const [name, spec] of Object.entries(manifest.inputs ?? {})) inputs[name] = evaluateDefault(spec?.default)
  }
  for (const [name, value] of Object.entries(options.inputs ?? {})) inputs[name] = String(value)
  for (const [name, value] of Object.entries(inputs)) env[inputVariableName(name)] = value
  if (phase === 'post') {
    for (const [name, value] of Object.entries(options.state ?? {})) env[`STATE_${name}`] = value
  }
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name]
    else env[name] = value
  }

  const timeoutMs = options.timeoutMs ?? 180_000
  try {
    const child = spawn(process.execPath, [entry], { cwd: options.workspace, env, stdio: ['ignore', 'pipe', 'pipe'] })
    const pid = child.pid
    const watcher = options.watchDockerArgv && pid !== undefined ? watchDockerArgv(pid) : undefined
    const control: ActionControl = {
      pid: pid ?? -1,
      signal: (signal) => {
        if (pid !== undefined && child.exitCode === null && child.signalCode === null) signalPid(pid, signal)
      }
    }
    const stdout: string[] = []
    const stderr: string[] = []
    let signalled = false
    const trigger = options.signalAfter
    const sendTriggerSignal = (): void => {
      if (signalled || !trigger) return
      signalled = true
      control.signal(trigger.signal ?? 'SIGINT')
    }
    const triggerTimer = trigger?.afterMs !== undefined ? setTimeout(sendTriggerSignal, trigger.afterMs) : undefined
    child.stdout.setEncoding('utf8')
    child.stderr.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      stdout.push(chunk)
      if (trigger?.whenStdout !== undefined && !signalled) {
        const all = stdout.join('')
        const hit = typeof trigger.whenStdout === 'string' ? all.includes(trigger.whenStdout) : trigger.whenStdout.test(all)
        if (hit) sendTriggerSignal()
      }
      options.onStdout?.(chunk, control)
    })
    child.stderr.on('data', (chunk: string) => stderr.push(chunk))

    const ended = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }>((resolveEnd, rejectEnd) => {
      let timedOutFlag = false
      const timer = setTimeout(() => {
        // Kill the whole tree the action started (docker CLIs, ssh), deepest first, then the action.
        if (pid !== undefined) {
          for (const descendant of descendantPids(pid).reverse()) signalPid(descendant, 'SIGKILL')
          signalPid(pid, 'SIGKILL')
        }
        timedOutFlag = true
      }, timeoutMs)
      child.on('error', (error) => {
        clearTimeout(timer)
        rejectEnd(error)
      })
      child.on('close', (code, signal) => {
        clearTimeout(timer)
        resolveEnd({ code, signal, timedOut: timedOutFlag })
      })
    })
    if (triggerTimer) clearTimeout(triggerTimer)
    const dockerArgv = watcher?.stop() ?? []
    const out = stdout.join('')
    const err = stderr.join('')
    if (ended.timedOut) {
      throw new Error(
        `The action did not finish within ${timeoutMs} ms and was killed.\n--- stdout (tail) ---\n${out.slice(-4_000)}\n--- stderr (tail) ---\n${err.slice(-2_000)}`
      )
    }

    return {
      exitCode: ended.code,
      signal: ended.signal,
      stdout: out,
      stderr: err,
      outputs: parseFileCommand(readFileSync(paths.output, 'utf8')),
      state: parseFileCommand(readFileSync(paths.state, 'utf8')),
      exportedEnv: parseFileCommand(readFileSync(paths.env, 'utf8')),
      summary: readFileSync(paths.summary, 'utf8'),
      annotations: parseAnnotations(out),
      masks: parseMasks(out),
      dockerArgv,
      env
    }
  } finally {
    await rm(files, { recursive: true, force: true })
  }
}
