/**
 * A real OpenSSH server (Debian's openssh-server) in front of a network-namespace host's private
 * engine, for the SSH tests (issue 19). `startSshd` runs `/usr/sbin/sshd -D -e -f <config>` as a
 * plain process inside the host's network namespace, listening on the namespace's own address,
 * with a fresh host key, a private authorized_keys file and `SetEnv DOCKER_HOST=unix://…`, so that
 * the remote `docker` (e.g. `docker system dial-stdio` of an `ssh://` docker host) reaches that
 * host's private engine and never the machine's own daemon.
 *
 * Nothing here reads or writes ~/.ssh or /etc/ssh: the server has its own config, host key and
 * authorized keys in a private temporary directory, and the client helpers write a private ssh
 * config (`-F`) with its own known_hosts and identity. The one shared path is sshd's privilege
 * separation directory /run/sshd, created when missing (sshd refuses to start without it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import type { NamespaceHost } from './netns.js'
import { descendantPids, dieWithParentPrefix, isAlive, listPids, readCmdline, realProcess, runChecked, signalPid, sleep, sleepSync, waitForExit, waitForPidGone } from './proc.js'

/** Debian's sshd. It must be started by its absolute path: it re-executes itself for each connection. */
export const SSHD = '/usr/sbin/sshd'
/** sshd's privilege separation directory on Debian (compiled in). */
const PRIVSEP_DIR = '/run/sshd'
/** Every server directory starts with this. */
export const SSHD_DIR_PREFIX = 'deploy-action-sshd-'

export interface KeyPair {
  /** The private key file's text (OpenSSH format), e.g. the `ssh-key` input. */
  readonly privateKey: string
  /** The public key line (`ssh-ed25519 AAAA… comment`), e.g. for authorized_keys. */
  readonly publicKey: string
  /** Path of the private key file (the public key is `<path>.pub`). */
  readonly path: string
}

/** `ssh-keygen -t ed25519 -N '' -q -f <dir>/<name>`: a new key pair without passphrase. */
export async function generateKeyPair(dir: string, name = 'id'): Promise<KeyPair> {
  const path = join(dir, name)
  // ssh-keygen asks before overwriting, and its stdin is closed: start from nothing.
  rmSync(path, { force: true })
  rmSync(`${path}.pub`, { force: true })
  await runChecked('ssh-keygen', ['-t', 'ed25519', '-N', '', '-q', '-C', `deploy-action-test-${name}`, '-f', path], { timeoutMs: 15_000 })
  return { privateKey: readFileSync(path, 'utf8'), publicKey: readFileSync(`${path}.pub`, 'utf8').trim(), path }
}

/** How a known_hosts file names a host: `addr`, or `[addr]:port` when the port is not 22. */
export function knownHostsName(address: string, port = 22): string {
  return port === 22 ? address : `[${address}]:${port}`
}

/** A known_hosts line for `address` (and `port`) with the key type and key of `publicKey` (a comment is dropped). */
export function knownHostsLine(address: string, port: number, publicKey: string): string {
  const [type, key] = publicKey.trim().split(/\s+/)
  if (!type || !key) throw new Error(`Not a public key line: ${JSON.stringify(publicKey)}`)
  return `${knownHostsName(address, port)} ${type} ${key}`
}

export interface SshdOptions {
  /** `unix://…` of the host's private engine: becomes DOCKER_HOST of every session (`SetEnv`). */
  dockerHost: string
  /** Public key lines allowed to log in as root. */
  authorizedKeys: string[]
  /** Port on the host's address. Default 22 (the namespace is the host's own: nothing else listens there). */
  port?: number
  /** Give up when sshd has not said it listens within this long. Default 15 s. */
  readyTimeoutMs?: number
}

export interface Sshd {
  /** The address sshd listens on (the namespace host's address). */
  readonly address: string
  readonly port: number
  /** `root@<address>` or `root@<address>:<port>` after `ssh://`: the docker host of this server. */
  readonly dockerHost: string
  /** The line for a known_hosts file: `<addr> ssh-ed25519 AAAA…` (`[addr]:port` when port ≠ 22). */
  readonly knownHostsLine: string
  /** The server's host public key line (`ssh-ed25519 AAAA… comment`). */
  readonly hostPublicKey: string
  /** Pid of the listening sshd (nsenter and setpriv exec, so it is sshd's own). */
  readonly pid: number
  /** The server's private directory (config, host key, authorized_keys). */
  readonly dir: string
  /** What sshd has written to stderr so far (`-e`: its log). */
  log(): string
  /**
   * Pids of the per-connection sshd processes (and what they run) below the listener: one per
   * open SSH connection. They outlive the listener, so `stop()` ends them too.
   */
  sessionPids(): number[]
  /** Kills the sessions and the listener, by pid only, and removes the directory. Idempotent. */
  stop(): Promise<void>
}

function ensurePrivsepDir(): void {
  if (!existsSync(PRIVSEP_DIR)) mkdirSync(PRIVSEP_DIR, { recursive: true, mode: 0o755 })
}

/**
 * Starts sshd inside `host`'s network namespace on `<host.address>:<port>` and resolves once it
 * listens. Root may log in with one of `authorizedKeys` only (no password, no PAM), and each
 * session gets `DOCKER_HOST=<dockerHost>`. Forwarding (TCP and unix sockets) is allowed, as on a
 * stock Debian sshd.
 */
export async function startSshd(host: NamespaceHost, options: SshdOptions): Promise<Sshd> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} is missing: run scripts/install-test-deps.sh (package openssh-server)`)
  ensurePrivsepDir()
  const port = options.port ?? 22
  const dir = mkdtempSync(join(tmpdir(), SSHD_DIR_PREFIX))
  const hostKey = join(dir, 'ssh_host_ed25519_key')
  await runChecked('ssh-keygen', ['-t', 'ed25519', '-N', '', '-q', '-C', `deploy-action-test-host-${host.address}`, '-f', hostKey], { timeoutMs: 15_000 })
  const hostPublicKey = readFileSync(`${hostKey}.pub`, 'utf8').trim()
  const authorizedKeys = join(dir, 'authorized_keys')
  writeFileSync(authorizedKeys, options.authorizedKeys.map((line) => `${line.trim()}\n`).join(''), { mode: 0o600 })
  const config = join(dir, 'sshd_config')
  writeFileSync(
    config,
    [
      '# deploy-action test sshd (test-support/sshd.ts); nothing from /etc/ssh is read',
      `ListenAddress ${host.address}:${port}`,
      `HostKey ${hostKey}`,
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      `AuthorizedKeysFile ${authorizedKeys}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'PidFile none',
      `SetEnv DOCKER_HOST=${options.dockerHost}`,
      // No AcceptEnv: a client's environment never reaches the session.
      'AllowTcpForwarding yes',
      'AllowStreamLocalForwarding yes',
      'X11Forwarding no',
      'PrintMotd no',
      'PrintLastLog no',
      'UseDNS no',
      'LogLevel VERBOSE',
      ''
    ].join('\n'),
    { mode: 0o600 }
  )
  chmodSync(dir, 0o700)

  // nsenter and setpriv exec: the pid held here is sshd's, and the kernel sends it SIGTERM when the test process dies.
  const argv = ['nsenter', `--net=/run/netns/${host.namespace}`, '--', ...dieWithParentPrefix(), SSHD, '-D', '-e', '-f', config]
  const child: ChildProcess = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] })
  child.unref()
  const logChunks: string[] = []
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (chunk: string) => logChunks.push(chunk))
  // Do not keep the test process alive for the server's log pipe.
  ;(child.stderr as unknown as { unref?: () => void } | null)?.unref?.()
  const log = (): string => logChunks.join('')
  const pid = child.pid
  if (pid === undefined) {
    const error = await new Promise<Error>((resolve) => child.once('error', resolve))
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`Could not start sshd (${argv.join(' ')}): ${error.message}`)
  }

  let stopped = false
  const running = (): boolean => child.exitCode === null && child.signalCode === null
  const sessionPids = (): number[] => (running() ? descendantPids(pid) : [])

  /** Last resort at process exit: synchronous. */
  const stopSync = (): void => {
    if (stopped) return
    stopped = true
    for (const session of sessionPids()) signalPid(session, 'SIGKILL')
    if (running()) signalPid(pid, 'SIGKILL')
    sleepSync(50)
    rmSync(dir, { recursive: true, force: true })
  }
  const processHost = realProcess()
  processHost.on('exit', stopSync)

  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    try {
      // Sessions first: they are sshd's children and would outlive it (and keep forwards open).
      const sessions = sessionPids()
      for (const session of sessions) signalPid(session, 'SIGTERM')
      if (running()) {
        signalPid(pid, 'SIGTERM')
        if (!(await waitForExit(child, 5_000))) {
          signalPid(pid, 'SIGKILL')
          await waitForExit(child, 5_000)
        }
      }
      for (const session of sessions) {
        if (!(await waitForPidGone(session, 2_000))) signalPid(session, 'SIGKILL')
      }
      await rm(dir, { recursive: true, force: true })
    } finally {
      processHost.off('exit', stopSync)
    }
  }

  const deadline = Date.now() + (options.readyTimeoutMs ?? 15_000)
  for (;;) {
    if (/Server listening on /.test(log())) break
    if (!running() || Date.now() > deadline) {
      const why = running() ? 'did not say it listens in time' : `exited (${child.exitCode ?? child.signalCode})`
      await stop()
      throw new Error(`sshd in ${host.namespace} ${why}:\n${log()}`)
    }
    await sleep(25)
  }

  return {
    address: host.address,
    port,
    dockerHost: port === 22 ? `root@${host.address}` : `root@${host.address}:${port}`,
    knownHostsLine: knownHostsLine(host.address, port, hostPublicKey),
    hostPublicKey,
    pid,
    dir,
    log,
    sessionPids,
    stop
  }
}

export interface ClientConfigOptions {
  /** Private key file for `IdentityFile`. */
  identityFile: string
  /** Lines of the known_hosts file written beside the config. */
  knownHosts: string[]
  /** Seconds for `ConnectTimeout`. Default 10. */
  connectTimeoutSeconds?: number
}

export interface ClientConfig {
  /** The config file, for `ssh -F <path>`. */
  readonly path: string
  /** The known_hosts file it names. */
  readonly knownHostsFile: string
}

/**
 * Writes `<dir>/ssh_config` and `<dir>/known_hosts`: a client config that uses only the given
 * identity and known hosts, checks host keys strictly, never asks, and never reads or writes the
 * user's ~/.ssh (with `ssh -F`, ~/.ssh/config and /etc/ssh/ssh_config are not read either).
 */
export function writeClientConfig(dir: string, options: ClientConfigOptions): ClientConfig {
  const knownHostsFile = join(dir, 'known_hosts')
  writeFileSync(knownHostsFile, options.knownHosts.map((line) => `${line}\n`).join(''), { mode: 0o600 })
  const path = join(dir, 'ssh_config')
  writeFileSync(
    path,
    [
      'Host *',
      `  IdentityFile ${options.identityFile}`,
      '  IdentitiesOnly yes',
      '  IdentityAgent none',
      `  UserKnownHostsFile ${knownHostsFile}`,
      '  GlobalKnownHostsFile /dev/null',
      '  StrictHostKeyChecking yes',
      '  UpdateHostKeys no',
      '  CheckHostIP no',
      '  BatchMode yes',
      '  PasswordAuthentication no',
      '  KbdInteractiveAuthentication no',
      `  ConnectTimeout ${options.connectTimeoutSeconds ?? 10}`,
      '  ServerAliveInterval 5',
      '  ServerAliveCountMax 3',
      '  LogLevel ERROR',
      ''
    ].join('\n'),
    { mode: 0o600 }
  )
  return { path, knownHostsFile }
}

/**
 * Pids of the `ssh` client processes whose command line mentions `dir` (e.g. the action's private
 * ssh directory under RUNNER_TEMP, which its `-F`, `-i` or forwarded socket path names). sshd's
 * own processes are not `ssh` and are never listed.
 */
export function sshProcessesUnder(dir: string): number[] {
  const self = realProcess().pid
  return listPids().filter((pid) => {
    if (pid === self) return false
    const argv = readCmdline(pid)
    if (!argv || basename(argv[0] ?? '') !== 'ssh') return false
    return argv.some((arg) => arg.includes(dir))
  })
}

/** Every `ssh` client process on the machine (argv[0] named `ssh`), with its argv. */
export function sshProcesses(): { pid: number; argv: string[] }[] {
  const found: { pid: number; argv: string[] }[] = []
  for (const pid of listPids()) {
    const argv = readCmdline(pid)
    if (argv && basename(argv[0] ?? '') === 'ssh') found.push({ pid, argv })
  }
  return found
}

/** The `deploy-action-ssh-*` directories (the action's private ssh directories) directly in `runnerTemp`. */
export function privateSshDirs(runnerTemp: string): string[] {
  const listing = spawnSync('find', [runnerTemp, '-maxdepth', '1', '-name', 'deploy-action-ssh-*'], { encoding: 'utf8' }).stdout ?? ''
  return listing.split('\n').filter(Boolean)
}

/**
 * Files under `root` (recursively) whose content contains `needle`, e.g. the private key's base64
 * body: proof that no copy of a secret is left on disk.
 */
export function filesContaining(root: string, needle: string): string[] {
  if (!existsSync(root)) return []
  const result = spawnSync('grep', ['-rlF', '--', needle, root], { encoding: 'utf8' })
  return (result.stdout ?? '').split('\n').filter(Boolean)
}

/** True while `pid` lives (re-exported for tests that watch ssh processes). */
export { isAlive }
