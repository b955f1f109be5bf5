/**
 * Small process utilities shared by the harness: running a command from an argv array with a
 * timeout, waiting for a process to end, reading /proc, and unmounting what a private daemon left
 * behind. Nothing here ever goes through a shell.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { readFileSync, readdirSync, rmSync } from 'node:fs'
import { rm } from 'node:fs/promises'

export interface CommandResult {
  exitCode: number
  stdout: string
  stderr: string
}

export interface CommandOptions {
  /** Written to stdin (e.g. a password for `--password-stdin`), then stdin is closed. */
  input?: string | Buffer
  env?: NodeJS.ProcessEnv
  /** SIGKILL the command after this long and reject. Default 60 s. */
  timeoutMs?: number
  cwd?: string
}

/** Runs `file` with `args` (no shell) and collects its output; never rejects on a non-zero exit. */
export function runCommand(file: string, args: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
  const timeoutMs = options.timeoutMs ?? 60_000
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] })
    const stdout: Buffer[] = []
    const stderr: Buffer[] = []
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
    child.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const result = {
        exitCode: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8')
      }
      if (timedOut) {
        reject(new Error(`${file} ${args.join(' ')} did not finish within ${timeoutMs} ms; stderr: ${result.stderr.trim()}`))
      } else resolve(result)
    })
    child.stdin.on('error', () => undefined) // EPIPE when the command does not read stdin
    child.stdin.end(options.input ?? '')
  })
}

/** Like `runCommand` but resolves with stdout and rejects with stderr on a non-zero exit. */
export async function runChecked(file: string, args: readonly string[], options: CommandOptions = {}): Promise<string> {
  const result = await runCommand(file, args, options)
  if (result.exitCode !== 0) {
    throw new Error(`${file} ${args.join(' ')} exited with ${result.exitCode}: ${(result.stderr || result.stdout).trim()}`)
  }
  return result.stdout
}

/**
 * True while `pid` is a live process. A zombie (exited, not yet reaped) counts as gone: the
 * process has stopped doing anything, and in a synchronous exit handler node cannot reap it.
 */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The state letter follows the parenthesised command name, which may itself contain ')'.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return state !== 'Z' && state !== 'X'
  } catch {
    return false
  }
}

/** Resolves true once `child` has exited, or false after `timeoutMs`. */
export function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit)
      resolve(false)
    }, timeoutMs)
    const onExit = (): void => {
      clearTimeout(timer)
      resolve(true)
    }
    child.once('exit', onExit)
  })
}

/** Resolves true once `pid` is gone (for processes that are not our children), false on timeout. */
export async function waitForPidGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (isAlive(pid)) {
    if (Date.now() >= deadline) return false
    await sleep(50)
  }
  return true
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Blocks the thread; only for synchronous exit handlers, where nothing else can run anyway. */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/** Sends `signal` to `pid`, ignoring "no such process". */
export function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error
  }
}

/** The argv of a process from /proc, or undefined when it is gone or unreadable. */
export function readCmdline(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    if (raw === '') return undefined // kernel threads and zombies
    return raw.replace(/\0$/, '').split('\0')
  } catch {
    return undefined
  }
}

/** Parent pid of a process from /proc/PID/stat, or undefined when it is gone. */
export function readParentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(fields[1])
  } catch {
    return undefined
  }
}

/** Every pid in /proc right now. */
export function listPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
}

/**
 * Pids whose argv mentions `marker`. The harness gives each daemon a unique directory name and
 * uses it in every path and namespace it hands the daemon, so a match is a process that daemon
 * started (containerd, its shims) and nothing else on the machine.
 */
export function pidsMentioning(marker: string): number[] {
  const self = process.pid
  return listPids().filter((pid) => pid !== self && (readCmdline(pid)?.some((arg) => arg.includes(marker)) ?? false))
}

/** Mount points at or below `dir` in this mount namespace, deepest first. */
export function mountsUnder(dir: string): string[] {
  let mountinfo: string
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')
  } catch {
    return []
  }
  const prefix = dir.endsWith('/') ? dir : `${dir}/`
  const points = mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined)
    // mountinfo escapes spaces and other bytes as \ooo
    .map((point) => point.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))))
    .filter((point) => point === dir || point.startsWith(prefix))
  return [...new Set(points)].sort((a, b) => b.length - a.length)
}

/** Unmounts everything below `dir` (lazily when busy). Returns the mount points that remain. */
export function unmountAllUnder(dir: string): string[] {
  for (const point of mountsUnder(dir)) {
    const result = spawnSync('umount', [point], { stdio: 'ignore' })
    if (result.status !== 0) spawnSync('umount', ['-l', point], { stdio: 'ignore' })
  }
  return mountsUnder(dir)
}

/** Removes `dir` after unmounting what is below it; retries briefly while the kernel lets go. */
export async function removeTree(dir: string): Promise<void> {
  const remaining = unmountAllUnder(dir)
  if (remaining.length > 0) throw new Error(`Could not unmount ${remaining.join(', ')}`)
  await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 })
}

/** Synchronous `removeTree` for exit handlers. Never throws: there is no one left to tell. */
export function removeTreeSync(dir: string): void {
  try {
    unmountAllUnder(dir)
    rmSync(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 })
  } catch {
    // best effort at process exit
  }
}

/** True when `name` is an executable on PATH. */
export function hasExecutable(name: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name], { stdio: 'ignore' }).status === 0
}

/**
 * Argv prefix that makes the kernel send SIGTERM to the started program when the test process
 * dies, however it dies (util-linux `setpriv --pdeathsig`, which execs, so the pid stays the
 * program's). Empty when setpriv is missing. Start such children from the main thread: the signal
 * follows the thread that spawned them.
 */
export function dieWithParentPrefix(): string[] {
  return hasExecutable('setpriv') ? ['setpriv', '--pdeathsig', 'TERM', '--'] : []
}

/**
 * The real `process`, also inside a Jest test. Jest runs test code in a separate realm with a copy
 * of `process` that has its own event listeners, so `process.on('exit')` there never fires (and
 * Jest wraps `process.getBuiltinModule` to hand out the copy as well). `Buffer` is shared with the
 * host realm, so its constructor is the host's `Function`, whose functions see the host's globals.
 */
export function realProcess(): NodeJS.Process {
  try {
    const HostFunction = (Buffer as unknown as { constructor: FunctionConstructor }).constructor
    const host = new HostFunction('return typeof process === "object" ? process : undefined')() as NodeJS.Process | undefined
    if (host && host.pid === process.pid && typeof host.on === 'function') return host
  } catch {
    // a realm without Function construction (e.g. code generation disallowed): use what we have
  }
  return process
}

/** Pids below `rootPid` in the process tree, parents before children. */
export function descendantPids(rootPid: number): number[] {
  const children = new Map<number, number[]>()
  for (const pid of listPids()) {
    const parent = readParentPid(pid)
    if (parent === undefined) continue
    children.set(parent, [...(children.get(parent) ?? []), pid])
  }
  const found: number[] = []
  const queue = [...(children.get(rootPid) ?? [])]
  while (queue.length > 0) {
    const pid = queue.shift() as number
    found.push(pid)
    queue.push(...(children.get(pid) ?? []))
  }
  return found
}
