/**
 * Container settings that are valid one by one but not together, so the schema, which judges
 * each list item alone, cannot see them: two volumes on one container path (docker refuses to
 * create the container: "Duplicate mount point") and one host port published twice (docker creates
 * the container, then cannot start it: "port is already allocated"). With the replace strategy the
 * start comes after the old container was stopped, so this must be caught before anything runs.
 *
 * Each clash is reported once, at the later entry, naming the first entry it clashes with.
 */
import { isIP } from 'node:net'
import { checkVolume, mountDestination, publishedHostPorts } from './grammar.js'

export interface ListClash {
  /** Index of the later entry, where the problem is reported. */
  index: number
  /** Complete message, starting with the entry's key path. */
  message: string
}

/**
 * Volumes that mount on a container path an earlier volume already mounts on. `listPath` is the
 * list's key path as users write it, e.g. `environments.staging.container.volumes`.
 */
export function volumeClashes(volumes: readonly unknown[], listPath: string): ListClash[] {
  const firstByDestination = new Map<string, number>()
  const clashes: ListClash[] = []
  for (const [index, volume] of checkableEntries(volumes)) {
    if (checkVolume(volume) !== undefined) continue
    const destination = mountDestination(volume.split(':')[1] ?? '')
    const first = firstByDestination.get(destination)
    if (first === undefined) {
      firstByDestination.set(destination, index)
      continue
    }
    clashes.push({
      index,
      message: `${listPath}[${index}] ${JSON.stringify(volume)} mounts on ${destination}, which ${listPath}[${first}] already mounts; docker would refuse to create the container. Give each volume its own container path.`
    })
  }
  return clashes
}

/**
 * More host ports than three protocols' worth of full ranges: no real config claims this many,
 * and a hostile one (thousands of `1-65535` ranges) must not make validation slow.
 */
const MAX_PORT_CLAIMS = 262_144

type Bind = { kind: 'all' } | { kind: 'unspecified'; family: 4 | 6 } | { kind: 'address'; family: 4 | 6; key: string }

/**
 * Port mappings that publish a host port (per protocol) on an address where an earlier mapping
 * already publishes it. As in docker's port allocator, an unspecified address (0.0.0.0, ::)
 * takes the port on every address of its family, and a mapping without an address takes it on
 * both families.
 */
export function portClashes(ports: readonly unknown[], listPath: string): ListClash[] {
  // Per "protocol slot" (see conflictSlots), the earliest entry index that holds each port number.
  const earliest = new Map<string, Map<number, number>>()
  const slotMap = (slot: string): Map<number, number> => {
    let map = earliest.get(slot)
    if (map === undefined) earliest.set(slot, (map = new Map()))
    return map
  }
  const where = new Map<number, string>()
  const clashes: ListClash[] = []
  let claims = 0
  for (const [index, port] of checkableEntries(ports)) {
    const published = publishedHostPorts(port)
    if (published?.ports === undefined) continue
    const { from, to } = published.ports
    claims += to - from + 1
    if (claims > MAX_PORT_CLAIMS) break
    const { protocol } = published
    const bind = bindOf(published.address)
    where.set(index, describeAddress(published.address))
    const conflicts = conflictSlots(bind).flatMap((slot) => earliest.get(`${protocol} ${slot}`) ?? [])
    const taken = claimSlots(bind).map((slot) => slotMap(`${protocol} ${slot}`))
    let reported = false
    for (let number = from; number <= to; number++) {
      if (!reported) {
        let first = Infinity
        for (const map of conflicts) first = Math.min(first, map.get(number) ?? Infinity)
        if (first !== Infinity) {
          reported = true
          clashes.push({
            index,
            message: `${listPath}[${index}] ${JSON.stringify(port)} publishes host port ${number}/${protocol} ${where.get(index) ?? ''}, which ${listPath}[${first}] already publishes ${where.get(first) ?? ''}; docker would create the container but fail to start it (port is already allocated). Give each mapping its own host port, or bind them to different addresses.`
          })
        }
      }
      for (const map of taken) if (!map.has(number)) map.set(number, index)
    }
  }
  return clashes
}

/**
 * The string entries with their indexes, without verbatim repeats: the schema reports a repeat as
 * such, and it gets no second error here. (Invalid entries, which have their own schema error, the
 * callers skip.)
 */
function checkableEntries(list: readonly unknown[]): [number, string][] {
  const seen = new Set<string>()
  const entries: [number, string][] = []
  list.forEach((value, index) => {
    if (typeof value !== 'string' || seen.has(value)) return
    seen.add(value)
    entries.push([index, value])
  })
  return entries
}

/** Slots an earlier mapping may hold that this bind cannot share. */
function conflictSlots(bind: Bind): string[] {
  switch (bind.kind) {
    case 'all':
      return ['all', 'any4', 'any6']
    case 'unspecified':
      return ['all', `any${bind.family}`]
    case 'address':
      return ['all', `unspecified${bind.family}`, `@${bind.key}`]
  }
}

/** Slots this bind takes. */
function claimSlots(bind: Bind): string[] {
  switch (bind.kind) {
    case 'all':
      return ['all']
    case 'unspecified':
      return [`unspecified${bind.family}`, `any${bind.family}`]
    case 'address':
      return [`@${bind.key}`, `any${bind.family}`]
  }
}

function bindOf(address: string | undefined): Bind {
  if (address === undefined) return { kind: 'all' }
  if (isIP(address) === 4) return address === '0.0.0.0' ? { kind: 'unspecified', family: 4 } : { kind: 'address', family: 4, key: address }
  const groups = ipv6Groups(address)
  // An IPv4-mapped address (::ffff:a.b.c.d) is the IPv4 address to docker, which unmaps it.
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    const [high = 0, low = 0] = groups.slice(6)
    return bindOf(`${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`)
  }
  if (groups.every((group) => group === 0)) return { kind: 'unspecified', family: 6 }
  const zone = address.includes('%') ? address.slice(address.indexOf('%')) : ''
  return { kind: 'address', family: 6, key: groups.map((group) => group.toString(16)).join(':') + zone }
}

/** The eight 16-bit groups of a valid IPv6 address, so that `0:0::1` and `::1` compare equal. */
function ipv6Groups(address: string): number[] {
  const text = (address.split('%')[0] ?? '')
    .replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_match, a: string, b: string, c: string, d: string) =>
      `${(Number(a) * 256 + Number(b)).toString(16)}:${(Number(c) * 256 + Number(d)).toString(16)}`
    )
  const toGroups = (part: string): number[] => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)))
  const [head = '', tail] = text.split('::')
  if (tail === undefined) return toGroups(head)
  const before = toGroups(head)
  const after = toGroups(tail)
  return [...before, ...Array<number>(8 - before.length - after.length).fill(0), ...after]
}

function describeAddress(address: string | undefined): string {
  if (address === undefined) return 'on all addresses'
  return isIP(address) === 6 ? `on [${address}]` : `on ${address}`
}
