/**
 * A registry without auth on a network namespace's own loopback: each namespace host pulls
 * `127.0.0.1:PORT/acme/web:TAG` from its own registry, so one image reference can name a different
 * image on each host (which is how the fleet tests break one host only), and every pull stays
 * inside its namespace.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { NamespaceHost } from './netns.js'
import { dieWithParentPrefix, signalPid, sleep, waitForExit } from './proc.js'

export interface NamespaceRegistry {
  stop(): Promise<void>
}

/** Starts Debian's `docker-registry` inside `host`'s namespace on 127.0.0.1:`port`, once it answers. */
export async function startNamespaceRegistry(host: NamespaceHost, port: number): Promise<NamespaceRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'deploy-action-ns-registry-'))
  mkdirSync(join(dir, 'storage'))
  writeFileSync(
    join(dir, 'config.yml'),
    ['version: 0.1', 'log:', '  level: warn', 'storage:', '  filesystem:', `    rootdirectory: ${join(dir, 'storage')}`, 'http:', `  addr: 127.0.0.1:${port}`, ''].join('\n')
  )
  // nsenter execs, so the pid held here is the registry's: it is stopped by that pid alone.
  const argv = ['nsenter', `--net=/run/netns/${host.namespace}`, '--', ...dieWithParentPrefix(), 'docker-registry', 'serve', join(dir, 'config.yml')]
  const child: ChildProcess = spawn(argv[0] as string, argv.slice(1), { stdio: 'ignore' })
  child.unref()
  const stop = async (): Promise<void> => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      signalPid(child.pid, 'SIGTERM')
      if (!(await waitForExit(child, 5_000))) signalPid(child.pid, 'SIGKILL')
    }
    await rm(dir, { recursive: true, force: true })
  }
  const deadline = Date.now() + 15_000
  for (;;) {
    const answer = await host.exec(['/bin/busybox', 'wget', '-q', '-O', '-', `http://127.0.0.1:${port}/v2/`]).catch(() => undefined)
    if (answer !== undefined) return { stop }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`the registry in ${host.namespace} did not answer on 127.0.0.1:${port}`)
    }
    await sleep(100)
  }
}
