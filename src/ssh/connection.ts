/**
 * One SSH connection to one `ssh://` docker host, for the whole run.
 *
 * The docker CLI's own `ssh://` support starts a new SSH session and a remote `docker system
 * dial-stdio` for every command: about 0.7 s each on loopback, and a deploy runs dozens. Instead,
 * one ssh master connection (ControlMaster) is opened per host, and the remote engine's socket is
 * forwarded to a local unix socket in the run's private SSH directory; every docker command then
 * talks to that socket at local speed (`DOCKER_HOST=unix://…`). The same connection carries the
 * forwards of `health.from: host` probes.
 *
 * A connection that drops is opened again at the next command. One that cannot be opened again
 * makes that command fail with the reason, so what runs there is unknown, never "nothing". The
 * master dies with the action (`setpriv --pdeathsig` where available) and is stopped by its pid
 * on every path; the post step is the backstop.
 */
import * as core from '@actions/core'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { SshDir } from './ssh-dir.js'
import { sshTargetArgs, type SshTarget } from './ssh-target.js'

/** How long opening the connection may take, authentication included. */
const OPEN_TIMEOUT_MS = 30_000
/** How long one control command (`ssh -O …`, the remote `printenv`) may take. */
const CONTROL_TIMEOUT_MS = 20_000
/** Where the remote engine listens when its sessions have no DOCKER_HOST of their own. */
const DEFAULT_REMOTE_SOCKET = '/var/run/docker.sock'
/** At most this much of ssh's stderr is kept for an error message. */
const MAX_STDERR = 4_000

/** Kills a child when the action dies, even by SIGKILL: no ssh process outlives the step. */
const DIE_WITH_PARENT = existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', '--pdeathsig', 'TERM', '--'] : []

/** Thrown when the SSH connection to a host cannot be opened: the message is ssh's own, with the host. */
export class SshConnectionError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'SshConnectionError'
  }
}

export class SshConnection {
  /** The local end of the forwarded engine socket: `DOCKER_HOST=unix://<this>` for the CLI. */
  readonly engineSocket: string
  private readonly controlPath: string
  private master: ChildProcess | undefined
  private masterStderr = ''
  private opening: Promise<void> | undefined
  private opened = false
  /** Where the remote engine listens, as an ssh forward target (a socket path, or host:port). */
  private remoteEngine: string | undefined
  /** Health forwards, `remote host:port` → local port, set up again after a reconnect. */
  private readonly forwards = new Map<string, number>()

  constructor(
    /** The docker host as the config spells it, for messages. */
    readonly dockerHost: string,
    private readonly target: SshTarget,
    private readonly dir: SshDir,
    index: number
  ) {
    this.engineSocket = join(dir.path, `e${index}.sock`)
    this.controlPath = join(dir.path, `c${index}`)
  }

  /** `DOCKER_HOST` for every docker command to this host. */
  get cliDockerHost(): string {
    return `unix://${this.engineSocket}`
  }

  private get alive(): boolean {
    return this.master !== undefined && this.master.exitCode === null && this.master.signalCode === null
  }

  /** Opens the connection unless it is open; one opening at a time. */
  async ensureOpen(): Promise<void> {
    if (this.alive && !this.opening) return
    this.opening ??= this.open().finally(() => {
      this.opening = undefined
    })
    return this.opening
  }

  /**
   * Whether the connection still works, asked of ssh itself (`-O check`): after a docker command
   * failed to reach the engine, this tells a dropped connection from an engine that is down.
   */
  async check(): Promise<boolean> {
    if (!this.alive) return false
    const result = await this.control(['-O', 'check']).catch(() => undefined)
    return result !== undefined && result.code === 0 && this.alive
  }

  /**
   * A local port on 127.0.0.1 that reaches `host:port` as seen from the remote host (its loopback
   * for 127.0.0.1): for probing `health.url` from the host itself.
   */
  async forwardTcp(host: string, port: number): Promise<number> {
    const remote = `${host.includes(':') ? `[${host}]` : host}:${port}`
    const known = this.forwards.get(remote)
    if (known !== undefined && this.alive) return known
    await this.ensureOpen()
    const local = known ?? (await freeLoopbackPort())
    await this.requireControl(['-O', 'forward', '-L', `127.0.0.1:${local}:${remote}`], `forward 127.0.0.1:${local} to ${remote}`)
    this.forwards.set(remote, local)
    return local
  }

  /** Stops the master by its pid (its forwards end with it) and waits for it to exit. */
  async close(): Promise<void> {
    const master = this.master
    this.master = undefined
    if (!master || master.exitCode !== null || master.signalCode !== null) return
    const exited = new Promise<void>((resolve) => master.once('exit', () => resolve()))
    master.kill('SIGTERM')
    // The grace timer is cancelled once ssh exits: left running, it kept the step alive 3 s longer.
    const grace = new AbortController()
    const gone = await Promise.race([exited.then(() => true), sleep(3_000, undefined, { signal: grace.signal }).then(() => false, () => true)])
    grace.abort()
    if (!gone) {
      master.kill('SIGKILL')
      await exited
    }
  }

  private async open(): Promise<void> {
    if (this.opened) core.warning(`The SSH connection to ${this.dockerHost} dropped; opening it again.`, { title: 'SSH' })
    await this.close()
    // A master that died abruptly (killed, the network gone) leaves its control socket behind; a new
    // master would then refuse to listen there ("already exists, disabling multiplexing"). The path
    // is this connection's own, in the run's private directory.
    rmSync(this.controlPath, { force: true })
    const { options, destination } = sshTargetArgs(this.target)
    const argv = [
      ...DIE_WITH_PARENT,
      'ssh',
      ...this.dir.configArgs,
      '-M',
      '-S',
      this.controlPath,
      '-N',
      '-o',
      'ControlPersist=no',
      '-o',
      'ExitOnForwardFailure=yes',
      '-o',
      'ServerAliveInterval=10',
      '-o',
      'ServerAliveCountMax=3',
      '-o',
      `ConnectTimeout=${Math.round(OPEN_TIMEOUT_MS / 1000)}`,
      // The forwarded engine socket: replace a stale one, and readable by its owner only.
      '-o',
      'StreamLocalBindUnlink=yes',
      '-o',
      'StreamLocalBindMask=0177',
      ...options,
      ...destination
    ]
    this.masterStderr = ''
    const master = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] })
    master.stderr?.on('data', (chunk: Buffer) => {
      if (this.masterStderr.length < MAX_STDERR) this.masterStderr += chunk.toString('utf8')
    })
    master.on('error', (error) => {
      this.masterStderr += `${error.message}\n`
    })
    this.master = master
    // The step may end without `close` (an unexpected error): ssh must not keep node alive, and
    // dies with it (DIE_WITH_PARENT).
    master.unref()
    ;(master.stderr as unknown as { unref?: () => void } | null)?.unref?.()
    try {
      await this.waitForControlSocket(master)
      this.remoteEngine ??= await this.remoteEngineAddress()
      await this.requireControl(['-O', 'forward', '-L', `${this.engineSocket}:${this.remoteEngine}`], `forward the docker engine socket (${this.remoteEngine})`)
      for (const [remote, local] of this.forwards) {
        await this.requireControl(['-O', 'forward', '-L', `127.0.0.1:${local}:${remote}`], `forward 127.0.0.1:${local} to ${remote}`)
      }
    } catch (error) {
      // Half open (no engine forward) is not open: the next command starts over.
      await this.close()
      throw error
    }
    this.opened = true
    core.debug(`ssh: one connection to ${this.dockerHost} (pid ${master.pid ?? '?'}), the engine at ${this.remoteEngine} forwarded to ${this.engineSocket}`)
  }

  /** Waits until the master's control socket answers, or fails with what ssh said. */
  private async waitForControlSocket(master: ChildProcess): Promise<void> {
    const deadline = Date.now() + OPEN_TIMEOUT_MS + 5_000
    for (;;) {
      if (master.exitCode !== null || master.signalCode !== null) throw this.openError()
      if (existsSync(this.controlPath)) {
        const check = await this.control(['-O', 'check']).catch(() => undefined)
        if (check?.code === 0) return
      }
      if (Date.now() > deadline) {
        await this.close()
        throw new SshConnectionError(`could not open an SSH connection to ${this.dockerHost} within ${OPEN_TIMEOUT_MS / 1000} s`)
      }
      await sleep(50)
    }
  }

  private openError(): SshConnectionError {
    const said = this.masterStderr.trim()
    const hint = /host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No .* host key is known/i.test(said)
      ? ` The host key of ${this.target.host} is not one that ssh-known-hosts (or the runner's known_hosts) lists: add the line from \`ssh-keyscan ${this.target.host}\`, checked out of band.`
      : /permission denied/i.test(said)
        ? ' The key was refused: check ssh-key and the user in the docker host.'
        : ''
    return new SshConnectionError(`could not open an SSH connection to ${this.dockerHost}: ${said || 'ssh exited without a message'}.${hint}`)
  }

  /**
   * The remote engine's address as its SSH sessions see it: their DOCKER_HOST (unix:// or tcp://)
   * when they have one, else docker's default socket. Only `printenv`'s own answer "not set" (exit
   * 1, nothing printed) means the default: a read that failed is not "unset", and guessing the
   * default could reach another engine on that host and read it as running nothing of ours.
   */
  private async remoteEngineAddress(): Promise<string> {
    const result = await this.control(['-o', 'ControlMaster=no'], ['printenv', 'DOCKER_HOST']).catch((error: unknown) => ({
      code: 255,
      stdout: '',
      stderr: error instanceof Error ? error.message : String(error)
    }))
    const value = result.stdout.trim()
    if (result.code === 1 && value === '') return DEFAULT_REMOTE_SOCKET
    const unix = result.code === 0 ? /^unix:\/\/(\/\S+)$/.exec(value) : null
    if (unix) return unix[1] as string
    const tcp = result.code === 0 ? /^tcp:\/\/([^\s/]+:\d+)\/?$/.exec(value) : null
    if (tcp) return tcp[1] as string
    const why = result.code === 0 ? `its sessions name DOCKER_HOST=${value}, which is neither unix:// nor tcp://` : `printenv DOCKER_HOST there failed: ${result.stderr.trim() || `exit ${result.code}`}`
    throw new SshConnectionError(`could not tell where the docker engine of ${this.dockerHost} listens (${why})`)
  }

  private async requireControl(args: string[], what: string): Promise<void> {
    const result = await this.control(args)
    if (result.code !== 0) throw new SshConnectionError(`could not ${what} over the SSH connection to ${this.dockerHost}: ${result.stderr.trim() || `ssh exited with ${result.code}`}`)
  }

  /** A command through the master connection: `ssh -S <control> <args> -- host [command]`. */
  private control(args: string[], command: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
    const { options, destination } = sshTargetArgs(this.target)
    const argv = [...this.dir.configArgs, '-S', this.controlPath, ...args, ...options, ...destination, ...command]
    return new Promise((resolve, reject) => {
      const child = spawn('ssh', argv, { stdio: ['ignore', 'pipe', 'pipe'] })
      let stdout = ''
      let stderr = ''
      const timer = setTimeout(() => child.kill('SIGKILL'), CONTROL_TIMEOUT_MS)
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
      child.on('error', (error) => {
        clearTimeout(timer)
        reject(error)
      })
      child.on('close', (code) => {
        clearTimeout(timer)
        resolve({ code: code ?? 255, stdout, stderr })
      })
    })
  }
}

/** A port on 127.0.0.1 that was free a moment ago. */
async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}
