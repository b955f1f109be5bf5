/**
 * A private Docker Engine for integration tests: its own dockerd, socket, data root, exec root and
 * client config in a fresh temporary directory. Tests never talk to the machine's own daemon.
 *
 * Recipe (verified on Debian 12 as root, see issue 3): dockerd with --bridge=none and no
 * iptables/NAT changes; containers use `--network host` and listen on 127.0.0.1 ports.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  dieWithParentPrefix,
  isAlive,
  pidsMentioning,
  realProcess,
  removeTree,
  removeTreeSync,
  runCommand,
  signalPid,
  sleep,
  sleepSync,
  waitForExit,
  waitForPidGone,
  type CommandResult
} from './proc.js'

/** Every engine directory starts with this, so stale ones from a killed test run can be found. */
export const ENGINE_DIR_PREFIX = 'deploy-action-engine-'

export interface EngineOptions {
  /** Give up when `docker version` has not answered within this long. Default 30 s. */
  readyTimeoutMs?: number
  /** More dockerd flags, e.g. `['--insecure-registry', '10.251.0.1:5000']`. */
  extraDaemonArgs?: string[]
  /**
   * Argv placed before `dockerd`, e.g. `['ip', 'netns', 'exec', 'ns1']` to run the daemon in a
   * network namespace. Each wrapper must exec dockerd so that the pid we hold is the daemon's.
   */
  commandPrefix?: string[]
  /** Parent of the engine directory. Default: the OS temp dir (or /tmp if that path is too long for a socket). */
  parentDir?: string
}

export interface DockerCallOptions {
  /** Written to docker's stdin, e.g. a password for `docker login --password-stdin`. */
  input?: string | Buffer
  /** Extra environment for the docker CLI (added on top of this engine's DOCKER_HOST/DOCKER_CONFIG). */
  env?: Record<string, string>
  /** Default 120 s. */
  timeoutMs?: number
}

export interface Engine {
  /** The engine's private directory (socket, data, exec root, logs, client config). */
  readonly dir: string
  /** `unix://<dir>/docker.sock`: the value for DOCKER_HOST or the action's `docker-host` input. */
  readonly dockerHost: string
  /** Pid of the dockerd process this harness started (a new one after `restart()`). */
  readonly pid: number
  /**
   * A DOCKER_CONFIG directory private to this engine and never logged in to anything, so the
   * CLI never reads or writes the user's ~/.docker (credential helpers included).
   */
  readonly dockerConfig: string
  /** Environment for a docker CLI that talks to this engine (no inherited DOCKER_* variables). */
  env(extra?: Record<string, string>): NodeJS.ProcessEnv
  /** Runs `docker ...args` against this engine and resolves with stdout; rejects with stderr on failure. */
  docker(args: readonly string[], options?: DockerCallOptions): Promise<string>
  /** Runs `docker ...args` against this engine and resolves with the whole result, whatever the exit code. */
  dockerResult(args: readonly string[], options?: DockerCallOptions): Promise<CommandResult>
  /** The daemon's log so far. */
  log(): string
  /** True until `stop()` has finished. */
  readonly running: boolean
  /**
   * Simulates a host reboot for the daemon: SIGTERM to our dockerd (SIGKILL after 20 s), which stops
   * its containers as a shutdown does, then starts dockerd again with the same argv, data root and
   * socket, and resolves once it answers. Containers are not removed: the daemon restarts those
   * whose restart policy says so. `pid` is the new daemon's afterwards.
   */
  restart(options?: { readyTimeoutMs?: number }): Promise<void>
  /**
   * Removes all containers, stops the daemon (SIGTERM to our pid, SIGKILL after 20 s), kills
   * whatever it left that mentions its private directory, unmounts everything below the
   * directory and removes it. Idempotent; safe to call from `afterAll` after a failed test.
   */
  stop(): Promise<void>
}

/** Variables that would point the docker CLI at some other engine or config. */
const FOREIGN_DOCKER_VARIABLES = ['DOCKER_HOST', 'DOCKER_CONTEXT', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH', 'DOCKER_CONFIG']

/** The process environment without DOCKER_* settings that could reach a daemon other than ours. */
export function cleanDockerEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const name of FOREIGN_DOCKER_VARIABLES) delete env[name]
  return env
}

/** Runs the docker CLI (from PATH) with an argv array; never through a shell. */
export function runDocker(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  options: DockerCallOptions = {}
): Promise<CommandResult> {
  return runCommand('docker', args, {
    env: { ...env, ...options.env },
    input: options.input,
    timeoutMs: options.timeoutMs ?? 120_000
  })
}

function describeFailure(args: readonly string[], result: CommandResult): Error {
  return new Error(`docker ${args.join(' ')} exited with ${result.exitCode}: ${(result.stderr || result.stdout).trim()}`)
}

/** Unix socket paths are limited to 108 bytes; containerd's socket lives deepest, under exec/. */
function chooseParentDir(requested: string | undefined): string {
  const parent = requested ?? tmpdir()
  const deepestSocket = join(parent, `${ENGINE_DIR_PREFIX}XXXXXX`, 'exec', 'containerd', 'containerd-debug.sock')
  return deepestSocket.length < 100 ? parent : '/tmp'
}

/**
 * Cleans up engine directories whose owning test process is gone (e.g. killed with SIGKILL, so no
 * exit handler ran). Only directories with our prefix and a dead owner are touched.
 */
async function sweepStaleEngines(parent: string): Promise<void> {
  let names: string[]
  try {
    names = readdirSync(parent).filter((name) => name.startsWith(ENGINE_DIR_PREFIX))
  } catch {
    return
  }
  for (const name of names) {
    const dir = join(parent, name)
    let owner: number
    try {
      owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8'))
    } catch {
      continue // being created right now, or not ours
    }
    if (!Number.isInteger(owner) || owner <= 0 || isAlive(owner)) continue
    // A daemon still shutting down after its parent-death signal gets a moment to finish cleanly.
    const leftovers = pidsMentioning(dir)
    for (const pid of leftovers) signalPid(pid, 'SIGTERM')
    for (const pid of leftovers) if (!(await waitForPidGone(pid, 10_000))) signalPid(pid, 'SIGKILL')
    for (const pid of leftovers) await waitForPidGone(pid, 5_000)
    await removeTree(dir).catch(() => removeTreeSync(dir))
  }
}

/**
 * Starts a private dockerd in a fresh temporary directory and waits until it answers.
 * Rejects (after cleaning up) when it does not answer within the timeout, with its log.
 */
export async function startEngine(options: EngineOptions = {}): Promise<Engine> {
  const parent = chooseParentDir(options.parentDir)
  await sweepStaleEngines(parent)

  const dir = mkdtempSync(join(parent, ENGINE_DIR_PREFIX))
  const id = dir.slice(dir.lastIndexOf('/') + 1)
  writeFileSync(join(dir, 'owner.pid'), String(realProcess().pid))
  const dockerConfig = join(dir, 'client-config')
  mkdirSync(dockerConfig)
  // An empty daemon config keeps /etc/docker/daemon.json (the machine's daemon settings) out.
  writeFileSync(join(dir, 'daemon.json'), '{}\n')
  const socket = join(dir, 'docker.sock')
  const dockerHost = `unix://${socket}`
  const logPath = join(dir, 'dockerd.log')

  const daemonArgs = [
    '--host', dockerHost,
    '--data-root', join(dir, 'data'),
    '--exec-root', join(dir, 'exec'),
    '--pidfile', join(dir, 'docker.pid'),
    '--config-file', join(dir, 'daemon.json'),
    '--bridge=none',
    '--iptables=false',
    '--ip-masq=false',
    '--ip-forward=false',
    // dockerd 20.10 reuses a running system containerd instead of starting its own; a namespace
    // named after our directory then keeps our containers apart from the machine's.
    '--containerd-namespace', id,
    '--containerd-plugins-namespace', `${id}-plugins`,
    ...(options.extraDaemonArgs ?? [])
  ]
  // A crashed or SIGKILLed test run must not leave a daemon behind: the kernel then sends it SIGTERM.
  const argv = [...(options.commandPrefix ?? []), ...dieWithParentPrefix(), 'dockerd', ...daemonArgs]

  const spawnDaemon = (): ChildProcess => {
    const logFd = openSync(logPath, 'a')
    try {
      const started = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', logFd, logFd], env: cleanDockerEnv() })
      // Do not keep the test process alive for the daemon; the exit handler below still cleans up.
      started.unref()
      return started
    } finally {
      closeSync(logFd)
    }
  }
  let child = spawnDaemon()
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve))
  const firstPid = child.pid
  const log = (): string => {
    try {
      return readFileSync(logPath, 'utf8')
    } catch {
      return ''
    }
  }

  if (firstPid === undefined) {
    const error = await spawnError
    removeTreeSync(dir)
    throw new Error(`Could not start dockerd (${argv.join(' ')}): ${error.message}`)
  }

  let pid: number = firstPid
  let stopped = false
  // Our own child's exit status, rather than kill(pid, 0), so a recycled pid is never signalled.
  const childRunning = (): boolean => child.exitCode === null && child.signalCode === null
  let stopping: Promise<void> | undefined
  const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
    ...cleanDockerEnv(),
    DOCKER_HOST: dockerHost,
    DOCKER_CONFIG: dockerConfig,
    ...extra
  })

  /** Last resort at process exit: synchronous, no event loop. */
  const stopSync = (): void => {
    if (stopped) return
    stopped = true
    if (childRunning()) {
      signalPid(pid, 'SIGTERM')
      // Node cannot reap the child here, so isAlive() treats the zombie as gone.
      const deadline = Date.now() + 15_000
      while (isAlive(pid) && Date.now() < deadline) sleepSync(50)
      if (isAlive(pid)) signalPid(pid, 'SIGKILL')
      sleepSync(100)
    }
    for (const leftover of pidsMentioning(dir)) signalPid(leftover, 'SIGKILL')
    removeTreeSync(dir)
  }
  const host = realProcess()
  host.on('exit', stopSync)

  const stopAsync = async (): Promise<void> => {
    try {
      if (childRunning()) {
        // Killing containers first makes shutdown quick: dockerd would otherwise give each one its
        // stop timeout, and an image whose PID 1 ignores SIGTERM takes the full 10 s.
        const listed = await runDocker(['ps', '-aq'], env(), { timeoutMs: 15_000 }).catch(() => undefined)
        const ids = listed?.exitCode === 0 ? listed.stdout.split('\n').filter(Boolean) : []
        if (ids.length > 0) await runDocker(['rm', '--force', ...ids], env(), { timeoutMs: 30_000 }).catch(() => undefined)
        signalPid(pid, 'SIGTERM')
        if (!(await waitForExit(child, 20_000))) {
          signalPid(pid, 'SIGKILL')
          await waitForExit(child, 5_000)
        }
      }
      // containerd and its shims normally end with the daemon; after a SIGKILL they may not.
      for (const leftover of pidsMentioning(dir)) signalPid(leftover, 'SIGKILL')
      for (const leftover of pidsMentioning(dir)) await waitForPidGone(leftover, 5_000)
      await removeTree(dir)
    } finally {
      stopped = true
      host.off('exit', stopSync)
    }
  }

  const engine: Engine = {
    dir,
    dockerHost,
    get pid() {
      return pid
    },
    dockerConfig,
    env,
    log,
    get running() {
      return !stopped
    },
    async dockerResult(args, callOptions) {
      return runDocker(args, env(), callOptions)
    },
    async docker(args, callOptions) {
      const result = await runDocker(args, env(), callOptions)
      if (result.exitCode !== 0) throw describeFailure(args, result)
      return result.stdout
    },
    stop() {
      if (stopped) return Promise.resolve()
      stopping ??= stopAsync()
      return stopping
    },
    async restart(restartOptions = {}) {
      if (stopped || stopping) throw new Error('restart() after stop()')
      if (childRunning()) {
        signalPid(pid, 'SIGTERM')
        if (!(await waitForExit(child, 20_000))) {
          signalPid(pid, 'SIGKILL')
          await waitForExit(child, 5_000)
        }
      }
      child = spawnDaemon()
      const started = child.pid
      if (started === undefined) {
        const error = await new Promise<Error>((resolve) => child.once('error', resolve))
        throw new Error(`Could not start dockerd again (${argv.join(' ')}): ${error.message}`)
      }
      pid = started
      await waitUntilReady(restartOptions.readyTimeoutMs ?? 30_000)
    }
  }

  /** Resolves once the API of the current daemon answers; rejects with its log when it exited or did not answer in time. */
  const waitUntilReady = async (readyTimeoutMs: number): Promise<void> => {
    const deadline = Date.now() + readyTimeoutMs
    let lastError = ''
    const current = child
    let daemonExited = current.exitCode !== null || current.signalCode !== null
    current.once('exit', () => (daemonExited = true))
    for (;;) {
      if (existsSync(socket)) {
        const probe = await runDocker(['version', '--format', '{{.Server.Version}}'], env(), { timeoutMs: 5_000 }).catch(
          (error: Error) => ({ exitCode: -1, stdout: '', stderr: error.message })
        )
        if (probe.exitCode === 0 && probe.stdout.trim() !== '') return
        lastError = probe.stderr.trim()
      }
      if (daemonExited || Date.now() >= deadline) {
        const why = daemonExited ? `dockerd exited (code ${String(current.exitCode)})` : `dockerd did not answer within ${readyTimeoutMs} ms`
        throw new Error(`${why}; last client error: ${lastError || 'socket not created'}\n--- dockerd log ---\n${log().slice(-6_000)}`)
      }
      await sleep(100)
    }
  }

  // Ready when the API answers. The CLI negotiates the API version, so a newer CLI works too.
  try {
    await waitUntilReady(options.readyTimeoutMs ?? 30_000)
  } catch (error) {
    await engine.stop().catch(() => undefined)
    throw error
  }
  return engine
}
