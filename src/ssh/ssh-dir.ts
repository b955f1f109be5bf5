/**
 * The run's private SSH directory: mode 0700 under RUNNER_TEMP, so only root and the runner's user
 * can read what is in it or reach the sockets forwarded into it. It holds the `ssh-key` (0600),
 * the `ssh-known-hosts` lines, an ssh config that uses only them, and per host the control socket
 * of the one SSH connection and the forwarded engine socket. The runner's `~/.ssh` is never read
 * for keys nor written. Removed when the main step ends, or by the post step when it was killed.
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { SshSettings } from '../settings.js'

/** Every private SSH directory starts with this, so that only such a directory is ever removed by path. */
export const SSH_DIR_PREFIX = 'deploy-action-ssh-'

/**
 * The longest directory path under which `c9`/`e9.sock` still fit a unix socket's 108 bytes with
 * room to spare; a longer RUNNER_TEMP falls back to the system's temp directory.
 */
const MAX_DIR_LENGTH = 90

export interface SshDir {
  readonly path: string
  /** `-F <config>` when the run brings its own key or host keys; empty: the runner's own ssh set-up. */
  readonly configArgs: string[]
  remove(): Promise<void>
}

/**
 * The ssh config of a run with its own key or host keys. Host key checking is always on: a host
 * that is unknown, or whose key differs, fails before anything else is sent.
 */
export function privateSshConfig(dir: string, ssh: SshSettings): string {
  const lines = ['Host *', '  BatchMode yes', '  StrictHostKeyChecking yes', '  UpdateHostKeys no', '  HashKnownHosts no']
  if (ssh.key) lines.push(`  IdentityFile ${join(dir, 'id')}`, '  IdentitiesOnly yes', '  IdentityAgent none')
  if (ssh.knownHosts) lines.push(`  UserKnownHostsFile ${join(dir, 'known_hosts')}`, '  GlobalKnownHostsFile /dev/null')
  return `${lines.join('\n')}\n`
}

/** Makes the directory of one run; with `ssh` set, writes the key, the host keys and the config there. */
export function createSshDir(ssh: SshSettings | undefined, parent = process.env['RUNNER_TEMP'] || tmpdir()): SshDir {
  const base = parent.length + SSH_DIR_PREFIX.length + 7 <= MAX_DIR_LENGTH ? parent : tmpdir()
  const path = mkdtempSync(join(base, SSH_DIR_PREFIX))
  chmodSync(path, 0o700)
  let configArgs: string[] = []
  if (ssh && (ssh.key || ssh.knownHosts)) {
    // ssh refuses a private key file that others can read; a key pasted into a secret often lacks its final newline.
    if (ssh.key) writeFileSync(join(path, 'id'), ssh.key.endsWith('\n') ? ssh.key : `${ssh.key}\n`, { mode: 0o600 })
    if (ssh.knownHosts) writeFileSync(join(path, 'known_hosts'), ssh.knownHosts.endsWith('\n') ? ssh.knownHosts : `${ssh.knownHosts}\n`, { mode: 0o600 })
    writeFileSync(join(path, 'config'), privateSshConfig(path, ssh), { mode: 0o600 })
    configArgs = ['-F', join(path, 'config')]
  }
  return sshDirAt(path, configArgs)
}

/** The handle of an existing directory (the post step's, from the saved state). */
export function sshDirAt(path: string, configArgs: string[] = []): SshDir {
  return { path, configArgs, remove: () => rm(path, { recursive: true, force: true }) }
}

/** Only a directory this module made is ever removed from a path read back from the saved state. */
export function isSshDirPath(path: string | undefined): path is string {
  return typeof path === 'string' && path.split('/').pop()?.startsWith(SSH_DIR_PREFIX) === true
}
