/**
 * What this run created on one host, by the id docker returned at create: the only containers,
 * services and networks a run may remove when nothing of its own is to be kept.
 *
 * Why ids and not names: a name says nothing about who made the object. A proxy removed by hand
 * leaves slots whose names a first deploy would also use; a create refused with "name in use"
 * must not be followed by a removal of that name, or the version that served is gone. An id that
 * this run was handed by docker can only be something this run made.
 *
 * The main step saves every id as soon as docker returns it (`RunState.recordCreated`), so the
 * post step, a fresh process, knows them too.
 */
/** What docker object an id names: ids of different kinds are never compared. */
export type CreatedKind = 'container' | 'network' | 'service'

export class CreatedObjects {
  private readonly known: string[]

  constructor(
    initial: readonly string[] = [],
    /** Called with every id as it is recorded: the main step saves it for the post step. */
    private readonly onRecord?: (id: string) => void
  ) {
    this.known = [...initial]
  }

  /** Records an id docker returned for a create of this run (an empty answer records nothing). */
  record(id: string | undefined, kind: CreatedKind = 'container'): void {
    const trimmed = id?.trim()
    if (!trimmed) return
    const entry = kind === 'container' ? trimmed : `${kind}:${trimmed}`
    if (this.known.includes(entry)) return
    this.known.push(entry)
    this.onRecord?.(entry)
  }

  /** True when `id` (full, or the short form docker prints) is one this run created. */
  includes(id: string | undefined, kind: CreatedKind = 'container'): boolean {
    if (!id) return false
    return this.idsOf(kind).some((known) => known === id || (id.length >= 12 && known.length >= 12 && (known.startsWith(id) || id.startsWith(known))))
  }

  /** The ids of one kind, in the order they were created. */
  idsOf(kind: CreatedKind): string[] {
    const prefix = `${kind}:`
    return this.known.flatMap((entry) => (kind === 'container' ? (/^[a-z]+:/.test(entry) ? [] : [entry]) : entry.startsWith(prefix) ? [entry.slice(prefix.length)] : []))
  }

  /** Every recorded entry (`id`, `network:id`, `service:id`), as the saved state keeps them. */
  get ids(): readonly string[] {
    return this.known
  }

  /** How many objects were recorded: a mark to tell what a later step created. */
  get count(): number {
    return this.known.length
  }
}
