/**
 * The post step's backstop for the main step's SSH connections: when the main step was killed
 * before it closed them, its ssh processes are found by the private directory their command line
 * names (the control socket lives there, and no other process names it), stopped by pid, and the
 * directory with the key is removed.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { isSshDirPath, sshDirAt } from './ssh-dir.js'

export async function stopLeftoverSsh(dir: string | undefined): Promise<void> {
  if (!isSshDirPath(dir)) return
  for (const pid of sshProcessesNaming(dir)) {
    try {
      process.kill(pid, 'SIGTERM')
    } catch {
      // Gone meanwhile.
    }
  }
  await sshDirAt(dir).remove()
}

/** Pids of `ssh` processes whose command line names `dir` (Linux /proc; none elsewhere). */
export function sshProcessesNaming(dir: string): number[] {
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return []
  }
  const pids: number[] = []
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0')
      if (/(^|\/)ssh$/.test(argv[0] ?? '') && argv.some((arg) => arg.startsWith(`${dir}/`))) pids.push(Number(entry))
    } catch {
      // A process that ended while we looked.
    }
  }
  return pids
}
