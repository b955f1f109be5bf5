/**
 * Several "hosts" on one machine for multi-host tests (issue 6): each host is a network namespace
 * with its own loopback, one veth pair to the test process's namespace, and a private dockerd
 * running inside it (in the machine's mount namespace, so engine.stop() unmounts as usual). The engine's unix socket lives on the filesystem, so the test process (and
 * the action under test) reach it from outside the namespace with `unix://…`.
 *
 * Addressing: host k gets 10.251.X.0/30, X picked unused per run: 10.251.X.1 on the outer veth end
 * (the only address this adds to the test process's namespace, and only a /30 route) and
 * 10.251.X.2 inside the namespace. Test traffic goes to loopback and to these addresses only.
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { startEngine, type Engine, type EngineOptions } from './engine.js'
import { allowTestAddress, disallowTestAddress } from './net.js'
import { isAlive, realProcess, runChecked, runCommand } from './proc.js'

/** Every namespace the harness creates is named `deploy-action-<owner pid>-<random>-<index>`. */
export const NETNS_PREFIX = 'deploy-action-'
const TEST_RANGE_PREFIX = '10.251.'

export interface NamespaceHost {
  /** Network namespace name (`ip netns exec NAME …`). */
  readonly namespace: string
  /** The host's own address inside its namespace (e.g. `10.251.7.2`), reachable from the test process. */
  readonly address: string
  /** The outer veth end's address, in the test process's namespace. */
  readonly peerAddress: string
  /** The private engine running inside the namespace. */
  readonly engine: Engine
  /** Runs argv inside the namespace (e.g. `['/bin/busybox', 'wget', '-qO-', url]`) and resolves with stdout. */
  exec(argv: readonly string[]): Promise<string>
}

export interface NamespaceLab {
  readonly hosts: NamespaceHost[]
  /** Stops every engine, deletes the veth pairs and namespaces. Idempotent. */
  stop(): Promise<void>
}

/** Third octets of 10.251.X.0/24 already used by any address or route here, to stay clear of them. */
function usedThirdOctets(): Set<number> {
  const used = new Set<number>()
  for (const args of [['-4', '-o', 'addr', 'show'], ['-4', 'route', 'show', 'table', 'all']]) {
    const listing = spawnSync('ip', args, { encoding: 'utf8' }).stdout ?? ''
    for (const match of listing.matchAll(/10\.251\.(\d+)\./g)) used.add(Number(match[1]))
  }
  return used
}

function pickThirdOctets(count: number): number[] {
  const used = usedThirdOctets()
  const free = Array.from({ length: 254 }, (_, index) => index + 1).filter((octet) => !used.has(octet))
  if (free.length < count) throw new Error(`Not enough free /30 subnets in ${TEST_RANGE_PREFIX}0.0/16`)
  const start = Math.floor(Math.random() * free.length)
  return Array.from({ length: count }, (_, index) => free[(start + index) % free.length] as number)
}

/** Deletes namespaces left by test processes that died before cleaning up. */
function sweepStaleNamespaces(): void {
  const listing = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? ''
  for (const line of listing.split('\n')) {
    const name = line.split(' ')[0] ?? ''
    const owner = Number(/^deploy-action-(\d+)-/.exec(name)?.[1])
    if (Number.isInteger(owner) && owner > 0 && !isAlive(owner)) spawnSync('ip', ['netns', 'delete', name], { stdio: 'ignore' })
  }
}

/**
 * Creates `count` namespaces, each with a veth pair and a private engine inside, and resolves
 * when every engine answers. On any failure everything created so far is removed.
 */
export async function startNamespacedEngines(count: number, engineOptions: EngineOptions = {}): Promise<NamespaceLab> {
  sweepStaleNamespaces()
  const host = realProcess()
  const run = `${host.pid}-${randomBytes(3).toString('hex')}`
  const octets = pickThirdOctets(count)
  const created: { namespace: string; outerVeth: string; address: string }[] = []
  const hosts: NamespaceHost[] = []
  let stopped = false

  /** Synchronous teardown of the network side, for the exit handler (engines have their own). */
  const removeNetworkSync = (): void => {
    for (const { namespace, outerVeth, address } of created) {
      spawnSync('ip', ['link', 'delete', outerVeth], { stdio: 'ignore' })
      spawnSync('ip', ['netns', 'delete', namespace], { stdio: 'ignore' })
      disallowTestAddress(address)
    }
  }
  const onExit = (): void => {
    if (!stopped) removeNetworkSync()
  }
  host.on('exit', onExit)

  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    try {
      await Promise.all(hosts.map((entry) => entry.engine.stop()))
    } finally {
      // Deleting one veth end deletes the pair; the namespace goes once no process is left in it.
      for (const { namespace, outerVeth, address } of created) {
        await runCommand('ip', ['link', 'delete', outerVeth]).catch(() => undefined)
        await runCommand('ip', ['netns', 'delete', namespace]).catch(() => undefined)
        disallowTestAddress(address)
      }
      host.off('exit', onExit)
    }
  }

  try {
    for (let index = 0; index < count; index++) {
      const octet = octets[index] as number
      const namespace = `${NETNS_PREFIX}${run}-${index}`
      // Interface names are limited to 15 characters.
      const suffix = `${randomBytes(3).toString('hex')}${index}`
      const outerVeth = `dao${suffix}`
      const innerVeth = `dai${suffix}`
      const peerAddress = `${TEST_RANGE_PREFIX}${octet}.1`
      const address = `${TEST_RANGE_PREFIX}${octet}.2`

      await runChecked('ip', ['netns', 'add', namespace])
      created.push({ namespace, outerVeth, address })
      await runChecked('ip', ['link', 'add', outerVeth, 'type', 'veth', 'peer', 'name', innerVeth, 'netns', namespace])
      await runChecked('ip', ['addr', 'add', `${peerAddress}/30`, 'dev', outerVeth])
      await runChecked('ip', ['link', 'set', outerVeth, 'up'])
      await runChecked('ip', ['-n', namespace, 'link', 'set', 'lo', 'up'])
      await runChecked('ip', ['-n', namespace, 'addr', 'add', `${address}/30`, 'dev', innerVeth])
      await runChecked('ip', ['-n', namespace, 'link', 'set', innerVeth, 'up'])
      allowTestAddress(address)

      // nsenter enters only the network namespace and execs dockerd. Not `ip netns exec`: it also
      // mounts a fresh /sys in a private mount namespace, which hides the cgroup v1 mounts under
      // /sys/fs/cgroup, and dockerd then refuses to start ("Devices cgroup isn't mounted").
      const engine = await startEngine({ ...engineOptions, commandPrefix: ['nsenter', `--net=/run/netns/${namespace}`, '--'] })
      hosts.push({
        namespace,
        address,
        peerAddress,
        engine,
        exec: (argv) => runChecked('ip', ['netns', 'exec', namespace, ...argv], { timeoutMs: 30_000 })
      })
    }
  } catch (error) {
    await stop()
    throw error
  }

  return { hosts, stop }
}
