/**
 * The deploy lock: one deploy at a time per docker host and `name`.
 *
 * The lock is a container named `<name>-deploy-lock` that is created but never started. Docker
 * checks container names atomically, so of two deploys that create it at once exactly one
 * succeeds; the other waits. Its labels say who holds it (the run URL), which tag that run
 * deploys, since when, and how long its lease is. A lease that ran out belongs to a run that
 * died without cleaning up (the runner machine was lost): it is taken over with a warning.
 *
 * The lease is judged by one clock, the docker daemon's: it runs from the lock container's
 * creation time (which the daemon stamps) for `lease-ms`, and the holder renews it every third of
 * a lease while it works, by writing a later expiry, read from the daemon's clock, into a small
 * file inside the never-started container (`docker cp` works on a created container; labels
 * cannot change). A waiting deploy compares that with the daemon's time, never with its own
 * clock, so two runners whose clocks disagree cannot take a lock that is still held.
 *
 * The container's image is an empty one the action imports itself (`deploy-action-lock:v1`), so
 * the lock can be taken before anything is pulled: a deploy that waited must read what runs only
 * after the run it waited for has finished, or it would roll back to a stale version.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleepFor } from 'node:timers/promises'
import type { ContainerInfo, DockerClient } from './docker/client.js'
import { singleFileTar } from './proxy/config-archive.js'
import { DockerCommandError } from './docker/runner.js'
import { formatDuration } from './config/duration.js'
import type { DeploySettings } from './settings.js'

/** Suffix of the lock container's name. */
export const LOCK_SUFFIX = '-deploy-lock'

/** The empty image every lock container is created from. */
export const LOCK_IMAGE = 'deploy-action-lock:v1'

/** Labels on the lock container. Under `deploy-action.`, which a config cannot write. */
export const LockLabel = {
  /** A token unique to the run attempt that holds the lock; only its owner releases it. */
  Owner: 'deploy-action.lock.owner',
  /** The run URL of the holder, for people. */
  Holder: 'deploy-action.lock.holder',
  Tag: 'deploy-action.lock.tag',
  /** ISO time the lock was taken. */
  Since: 'deploy-action.lock.since',
  /**
   * ISO time the first lease runs out by the holder's clock, for people and for older versions
   * of the action; this version judges by `LeaseMs` and the lease file on the daemon's clock.
   */
  Expires: 'deploy-action.lock.expires',
  /** The lease in ms, from the container's creation (daemon time) or its last renewal. */
  LeaseMs: 'deploy-action.lock.lease-ms'
} as const

/**
 * The file in the lock container that holds the renewed lease:
 * `{"expires":"<ISO>","renewed":"<ISO>","owner":"<token>"}`, both times by the daemon's clock.
 * `renewed` (when the holder last renewed: its last sign of life, which `command: unlock` judges
 * by) is newer than the file; an older holder's file tells it as `expires` minus `lease-ms`.
 */
export const LEASE_FILE = 'deploy-action-lease'

/** How often a waiting deploy looks at the lock again. */
export const LOCK_POLL_MS = 2_000

/** Who holds a lock, read from its labels. */
export interface LockHolder {
  /** Container id: removing by id never removes a newer lock that took the same name. */
  id: string
  owner?: string
  holder?: string
  tag?: string
  since?: string
  expires?: string
  /** When the daemon created the lock container (ISO, daemon time). */
  created?: string
  /** The lease length the holder asked for. */
  leaseMs?: number
}

/** Time source and timer, injectable for tests. */
export interface LockClock {
  now(): number
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}

const systemClock: LockClock = {
  now: () => Date.now(),
  sleep: (ms, signal) => sleepFor(ms, undefined, { signal })
}

export interface AcquireOptions {
  /** This run attempt's token (see `lockOwnerToken`). */
  owner: string
  /** This run's URL, for whoever waits. */
  holder: string
  /** The tag this run deploys, for whoever waits. */
  tag: string
  /** How long the lease lasts from the moment the lock is taken. */
  leaseMs: number
  /** How long to wait for another holder before giving up (`lock.timeout`). */
  timeoutMs: number
  pollMs?: number
  signal?: AbortSignal
  clock?: LockClock
  /** Called once, when the lock is found held by someone else and this deploy starts waiting. */
  onWait?: (holder: LockHolder) => void
  /** Called when an expired lease is removed to take the lock over. */
  onTakeover?: (holder: LockHolder) => void
  /** Called before each wait for the holder: the fleet renews the locks it already holds. */
  whileWaiting?: () => Promise<void>
}

export interface Acquired {
  /** How long this deploy waited for the lock. */
  waitedMs: number
  /** The holder it waited for, if any. */
  waitedFor?: LockHolder
  /** Expired holders whose lock was taken over. */
  tookOver: LockHolder[]
  /** The lock stood already, with this deploy's own owner token: taken by it before, maybe through another host name. */
  foundOwn?: boolean
}

/** What one attempt at a lock came to (`DeployLock.tryAcquire`): taken, or held by another live run. */
export type LockAttempt = { taken: Acquired } | { busy: LockHolder }

/**
 * Thrown before a switch when this run no longer holds a host's lock: its lease ran out while
 * renewals failed, or the lock container is gone or belongs to another run. Switching on would
 * mean two deploys on one host.
 */
export class LockLostError extends Error {
  constructor(
    readonly host: string,
    readonly why: string
  ) {
    super(`lost the deploy lock on ${host}: ${why}`)
    this.name = 'LockLostError'
  }
}

/** Thrown when another deploy still holds the lock after `lock.timeout`. */
export class LockTimeoutError extends Error {
  constructor(
    readonly holder: LockHolder,
    readonly lockName: string,
    readonly host: string,
    timeoutMs: number
  ) {
    super(
      `Another deploy holds the lock ${lockName} on ${host}: ${describeHolder(holder)}. ` +
        `Waited ${formatDuration(timeoutMs)} (lock.timeout). If that run is no longer running, remove the lock with \`docker container rm ${lockName}\` on that host.`
    )
    this.name = 'LockTimeoutError'
  }
}

/** "run https://…/runs/42 deploying v7, since 2024-05-01T10:00:00Z (lease until …)" */
export function describeHolder(holder: LockHolder): string {
  const parts = [holder.holder ? `run ${holder.holder}` : 'an unknown holder (the lock has no deploy-action labels)']
  if (holder.tag) parts.push(`deploying ${holder.tag}`)
  if (holder.since) parts.push(`since ${holder.since}`)
  const text = parts.join(', ')
  return holder.expires ? `${text} (lease until ${holder.expires})` : text
}

/**
 * When the holder's first lease runs out, by the daemon's clock: creation plus `lease-ms`; for a
 * lock of an older version (no `lease-ms`), its `expires` label. Undefined: it never expires.
 */
export function leaseEnd(holder: LockHolder): number | undefined {
  const created = holder.created ? Date.parse(holder.created) : NaN
  if (holder.leaseMs !== undefined && Number.isFinite(created) && created > 0) return created + holder.leaseMs
  const expires = holder.expires ? Date.parse(holder.expires) : NaN
  return Number.isFinite(expires) ? expires : undefined
}

/** The renewed expiry a lease file holds, in ms; undefined when it holds none that can be read. */
function renewedUntil(file: string | undefined): number | undefined {
  return leaseFileTimes(file).expires
}

/** The times a lease file holds, in ms (daemon time); each undefined when absent or unreadable. */
function leaseFileTimes(file: string | undefined): { expires?: number; renewed?: number } {
  if (!file) return {}
  try {
    const parsed = JSON.parse(file) as { expires?: unknown; renewed?: unknown }
    const time = (value: unknown): number | undefined => {
      const ms = typeof value === 'string' ? Date.parse(value) : NaN
      return Number.isFinite(ms) ? ms : undefined
    }
    return { expires: time(parsed.expires), renewed: time(parsed.renewed) }
  } catch {
    return {}
  }
}

/** How often a holder renews a lease of `leaseMs`: every third of it, so one failed renewal still leaves a third. */
export function renewalEveryMs(leaseMs: number): number {
  return Math.max(1_000, Math.floor(leaseMs / 3))
}

/** Who holds a lock, from its container's labels (`docker container inspect`). */
export function holderOf(info: ContainerInfo): LockHolder {
  const labels = info.labels
  const leaseMs = labels[LockLabel.LeaseMs] ? Number(labels[LockLabel.LeaseMs]) : NaN
  return {
    id: info.id,
    owner: labels[LockLabel.Owner],
    holder: labels[LockLabel.Holder],
    tag: labels[LockLabel.Tag],
    since: labels[LockLabel.Since],
    expires: labels[LockLabel.Expires],
    created: info.created || undefined,
    leaseMs: Number.isFinite(leaseMs) ? leaseMs : undefined
  }
}

/** What a lock's lease tells about its holder, read by the daemon's clock (see `DeployLock.readLease`). */
export interface LeaseReading {
  /** The daemon's time when the lease was read. */
  now: number
  /** The lease ran out, renewals included: any deploy would take the lock over. */
  expired: boolean
  /** The holder's last sign of life: its last renewal, or the lock's creation (daemon time). Undefined when unknown. */
  lastRenewed?: number
  /** How often the holder renews (see `renewalEveryMs`); undefined for a lock without `lease-ms` (an older version, which never renews). */
  renewEveryMs?: number
}

/**
 * A token unique to one attempt of one run: the post step of the same attempt finds it in the
 * saved state and releases only a lock it owns.
 */
export function lockOwnerToken(env: NodeJS.ProcessEnv = process.env): string {
  return `${env['GITHUB_RUN_ID'] || 'local'}-${env['GITHUB_RUN_ATTEMPT'] || '1'}-${randomBytes(6).toString('hex')}`
}

/**
 * How long a lease lasts. A lease only matters when its holder died without releasing it (a
 * cancelled run releases it in the post step), so it is an upper bound of a healthy deploy, not
 * an estimate: a takeover while the holder still works would be far worse than a long wait.
 * 15 minutes, plus for every host a pull (the docker command's 5-minute limit) and two health
 * checks (deploy and rollback) with their watch, plus 30 minutes for every pre-deploy hook.
 */
export function lockLeaseMs(settings: Pick<DeploySettings, 'hosts' | 'health' | 'hooks'>): number {
  const perHost = 5 * 60_000 + 2 * (settings.health.deadlineMs + settings.health.watchMs)
  return 15 * 60_000 + settings.hosts.length * perHost + settings.hooks.preDeploy.length * 30 * 60_000
}

/** The lock of one name on one docker host. */
export class DeployLock {
  readonly lockName: string
  private createSent = false
  /** The lock container this deploy holds and its owner token, when known: release removes it by id without reading it first. */
  private held: { id: string; owner: string } | undefined
  /** The daemon's clock minus ours, measured once per lock: expiry is judged by the daemon's time. */
  private daemonOffset: number | undefined
  /**
   * Until when the lease of the lock this deploy holds surely lasts, by our own clock: set when
   * the lock is taken and at each renewal that docker confirmed. Past it, another run may take it.
   */
  private leaseUntil: number | undefined
  /** Set when a renewal found the lock container gone: it cannot come back. */
  private lostBecause: string | undefined
  /** The engine's identity, read once when the lock is about to be taken (see `identity`). */
  private engineId: string | undefined

  constructor(
    private readonly docker: DockerClient,
    name: string
  ) {
    this.lockName = name + LOCK_SUFFIX
  }

  get host(): string {
    return this.docker.hostLabel
  }

  /** The id of the lock container this deploy holds here, if it holds one. */
  get heldId(): string | undefined {
    return this.held?.id
  }

  /**
   * True once a create was sent and no release has looked since: a create whose docker client
   * was killed (cancel, timeout) may still have been carried out by the daemon.
   */
  get mayHold(): boolean {
    return this.createSent
  }

  /**
   * The engine's identity from `docker system info` (see `DockerClient.engineIdentity`): what the
   * fleet orders its locks by, so the order does not depend on how a host is spelled. The same
   * command tells the daemon's clock, which a lease is judged by, so a fleet's later judgement of
   * a lease costs no extra docker command. One host has no order and reads neither until needed.
   */
  async identity(clock: LockClock = systemClock): Promise<string> {
    if (this.engineId === undefined) {
      const before = clock.now()
      const engine = await this.docker.engineIdentity()
      this.daemonOffset ??= engine.time - (before + clock.now()) / 2
      this.engineId = engine.id
    }
    return this.engineId
  }

  /**
   * Whether this deploy holds the lock by what it knows without asking docker: it took it, no
   * renewal found it gone, and its lease has not run out. While that holds, no other deploy can
   * have taken it over (a takeover needs an expired lease), short of a person removing it by hand.
   * For a switch that must not wait for a docker read (switching users back to a slot that works).
   */
  holdsByLease(clock: LockClock = systemClock): boolean {
    return this.held !== undefined && this.lostBecause === undefined && (this.leaseUntil === undefined || clock.now() <= this.leaseUntil)
  }

  /** Who holds the lock now; undefined when nobody does. */
  async read(): Promise<LockHolder | undefined> {
    const info = await this.docker.inspectContainer(this.lockName)
    return info ? holderOf(info) : undefined
  }

  /**
   * The lease of the lock `holder` was read from, by the daemon's clock read now: whether it ran
   * out, and when its holder last renewed it. Two docker commands (the daemon's time, the lease
   * file); throws when either fails: an unread lease is no sign of death.
   */
  async readLease(holder: LockHolder): Promise<LeaseReading> {
    const now = await this.docker.daemonTime()
    const file = leaseFileTimes(await this.docker.readFileFrom(holder.id, `/${LEASE_FILE}`))
    const end = leaseEnd(holder)
    const expired = end !== undefined && end <= now && (file.expires === undefined || file.expires <= now)
    const created = holder.created ? Date.parse(holder.created) : NaN
    const renewed = file.renewed ?? (file.expires !== undefined && holder.leaseMs !== undefined ? file.expires - holder.leaseMs : undefined)
    const signs = [Number.isFinite(created) && created > 0 ? created : undefined, renewed].filter((time): time is number => time !== undefined)
    return {
      now,
      expired,
      ...(signs.length > 0 && { lastRenewed: Math.max(...signs) }),
      ...(holder.leaseMs !== undefined && { renewEveryMs: renewalEveryMs(holder.leaseMs) })
    }
  }

  /**
   * Removes the lock container `holder` was read from, by its id, whoever owns it: for `command:
   * unlock`, which judged that holder dead. A lock taken since under the same name has another id
   * and stays. True when one was removed; false when it was gone already.
   */
  async removeRead(holder: LockHolder): Promise<boolean> {
    return this.docker.removeContainer(holder.id)
  }

  /** The daemon's time now: read once, then followed by our own monotonic clock. */
  private async daemonNow(clock: LockClock): Promise<number> {
    if (this.daemonOffset === undefined) {
      const before = clock.now()
      const daemon = await this.docker.daemonTime()
      // The daemon read its clock somewhere during the command: take the middle.
      this.daemonOffset = daemon - (before + clock.now()) / 2
    }
    return clock.now() + this.daemonOffset
  }

  /**
   * Whether the holder's lease has run out by the daemon's clock, renewals included. The lease
   * file is read only once the first lease has passed: a holder that renews keeps its lock.
   */
  private async expired(holder: LockHolder, clock: LockClock): Promise<boolean> {
    const end = leaseEnd(holder)
    if (end === undefined) return false
    const now = await this.daemonNow(clock)
    if (end > now) return false
    const renewed = renewedUntil(await this.docker.readFileFrom(holder.id, `/${LEASE_FILE}`))
    return renewed === undefined || renewed <= now
  }

  /**
   * Renews the lease of the lock this deploy holds: `leaseMs` from now by the daemon's clock,
   * written into the lock container it created (by id: never into a lock someone else took over).
   * False when it holds none.
   */
  async renew(leaseMs: number, clock: LockClock = systemClock): Promise<boolean> {
    const held = this.held
    if (!held) return false
    const asked = clock.now()
    const now = await this.docker.daemonTime()
    const lease = JSON.stringify({ expires: new Date(now + leaseMs).toISOString(), renewed: new Date(now).toISOString(), owner: held.owner })
    try {
      await this.docker.copyArchiveInto(held.id, '/', singleFileTar(LEASE_FILE, lease), 'the renewed lease')
    } catch (error) {
      if (error instanceof DockerCommandError && /no such container/i.test(error.result.stderr)) this.lostBecause = `the lock container ${held.id.slice(0, 12)} is gone`
      throw error
    }
    this.leaseUntil = asked + leaseMs
    return true
  }

  /** Renews the lease once a third of it has passed since it was taken or last renewed; false when not due. */
  async renewIfDue(leaseMs: number, clock: LockClock = systemClock): Promise<boolean> {
    if (!this.held) return false
    if (this.leaseUntil !== undefined && clock.now() < this.leaseUntil - (2 * leaseMs) / 3) return false
    return this.renew(leaseMs, clock)
  }

  /**
   * Throws `LockLostError` unless this deploy still holds the lock: its lease has not run out by
   * what docker confirmed, and the container under the lock's name is the one it created, with its
   * owner token. A read that fails is no proof of holding it either.
   */
  async assertHeld(clock: LockClock = systemClock): Promise<void> {
    const held = this.held
    if (!held) throw new LockLostError(this.host, 'this run does not hold it')
    if (this.lostBecause) throw new LockLostError(this.host, this.lostBecause)
    if (this.leaseUntil !== undefined && clock.now() > this.leaseUntil) {
      throw new LockLostError(this.host, 'its lease ran out while renewals failed, so another deploy may have taken it')
    }
    let holder: LockHolder | undefined
    try {
      holder = await this.read()
    } catch (error) {
      throw new LockLostError(this.host, `it could not be read (${error instanceof Error ? error.message : String(error)})`)
    }
    if (!holder) throw new LockLostError(this.host, `the lock container ${this.lockName} is gone`)
    if (holder.owner !== held.owner || holder.id !== held.id) throw new LockLostError(this.host, `another run holds it now: ${describeHolder(holder)}`)
  }

  /**
   * Takes the lock, waiting up to `timeoutMs` while someone else holds it, and taking over an
   * expired lease. Throws `LockTimeoutError` naming the holder when the wait runs out, and the
   * signal's reason when cancelled.
   */
  async acquire(options: AcquireOptions): Promise<Acquired> {
    const attempt = await this.take(options, false)
    if ('busy' in attempt) throw new LockTimeoutError(attempt.busy, this.lockName, this.host, options.timeoutMs)
    return attempt.taken
  }

  /**
   * One attempt that never waits: takes the lock when it is free (an expired lease is taken over,
   * as `acquire` does), or says who holds it. The fleet tries every host at once this way, since a
   * run must never wait while it holds locks out of the fleet's order (see `FleetLock.acquire`).
   * Throws on anything else: a read that failed is no sign the lock is free.
   */
  async tryAcquire(options: Omit<AcquireOptions, 'timeoutMs' | 'pollMs' | 'onWait' | 'whileWaiting'>): Promise<LockAttempt> {
    return this.take({ ...options, timeoutMs: 0 }, true)
  }

  private async take(options: AcquireOptions, once: boolean): Promise<LockAttempt> {
    const clock = options.clock ?? systemClock
    const pollMs = options.pollMs ?? LOCK_POLL_MS
    const started = clock.now()
    const tookOver: LockHolder[] = []
    let waitedFor: LockHolder | undefined
    let vanished = 0
    let imported = false

    for (;;) {
      options.signal?.throwIfAborted()
      const now = clock.now()
      const sentBefore = this.createSent
      this.createSent = true
      let created: string | false
      try {
        created = await this.docker.createLockContainer(this.lockName, LOCK_IMAGE, {
          [LockLabel.Owner]: options.owner,
          [LockLabel.Holder]: options.holder,
          [LockLabel.Tag]: options.tag,
          [LockLabel.Since]: new Date(now).toISOString(),
          [LockLabel.Expires]: new Date(now + options.leaseMs).toISOString(),
          [LockLabel.LeaseMs]: String(options.leaseMs)
        })
      } catch (error) {
        // Docker's answer says no container was created: nothing to release for this attempt.
        if (certainlyNotCreated(error)) this.createSent = sentBefore
        // The first deploy on this host: import the empty image once, then create again. Asking
        // first would cost every later deploy a docker command.
        if (imported || !isMissingImage(error)) throw error
        await this.docker.importEmptyImage(LOCK_IMAGE)
        imported = true
        continue
      }
      if (created !== false) {
        this.held = created ? { id: created, owner: options.owner } : undefined
        // The daemon stamped the lease's start at or after `now`: it lasts at least this long.
        this.leaseUntil = now + options.leaseMs
        return { taken: { waitedMs: clock.now() - started, waitedFor, tookOver } }
      }

      const holder = await this.read()
      if (!holder) {
        // Released between our create and our look: try again at once, but never spin.
        if (++vanished < 5) continue
      } else {
        vanished = 0
        // Ours already (a retried step of the same attempt): holding it twice is holding it.
        if (holder.owner === options.owner) {
          this.held = { id: holder.id, owner: options.owner }
          this.leaseUntil = undefined
          return { taken: { waitedMs: clock.now() - started, waitedFor, tookOver, foundOwn: true } }
        }
        if (await this.expired(holder, clock)) {
          options.onTakeover?.(holder)
          tookOver.push(holder)
          // By id: if a third deploy took the name meanwhile, its lock stays.
          await this.docker.removeContainer(holder.id)
          continue
        }
        if (once) return { busy: holder }
        if (!waitedFor) options.onWait?.(holder)
        waitedFor = holder
      }
      const waited = clock.now() - started
      // Taken and released by others five times over: as good as held, for a run that may not wait.
      if (once) return { busy: holder ?? { id: '' } }
      if (waited >= options.timeoutMs) {
        // The configured timeout, not the measured wait: it is the setting a reader may change.
        throw new LockTimeoutError(holder ?? { id: '' }, this.lockName, this.host, options.timeoutMs)
      }
      await options.whileWaiting?.()
      await clock.sleep(Math.min(pollMs, options.timeoutMs - waited), options.signal).catch(() => undefined)
    }
  }

  /**
   * Releases the lock when `owner` holds it; returns whether it did. A lock someone else holds
   * (taken over after our lease ran out) is left alone.
   */
  async release(owner: string): Promise<boolean> {
    if (this.held?.owner === owner) {
      // This deploy's own create (or read) gave the id, so that container is ours: no need to read
      // its owner first. A lock taken over after our lease ran out has another id and stays.
      const removed = await this.docker.removeContainer(this.held.id)
      this.held = undefined
      this.createSent = false
      return removed
    }
    const holder = await this.read()
    if (!holder || holder.owner !== owner) {
      this.createSent = false
      return false
    }
    await this.docker.removeContainer(holder.id)
    this.createSent = false
    return true
  }
}

/** Locks by engine identity, then (engines alike in it: cloned machines) by host string: the order every run waits in. */
function canonicalOrder<T extends { lock: DeployLock; id: string }>(locks: T[]): T[] {
  const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
  return [...locks].sort((a, b) => compare(a.id, b.id) || compare(a.lock.host, b.lock.host))
}

function isMissingImage(error: unknown): boolean {
  return error instanceof DockerCommandError && /no such image/i.test(error.result.stderr)
}

/**
 * A create that failed this way never reached the point of creating: the image is missing, the
 * client could not connect to the daemon, or the SSH connection to the host could not be opened
 * (`notSent`). Any other failure (a client killed mid-request) may have been
 * carried out by the daemon, so the lock is then treated as possibly held.
 */
function certainlyNotCreated(error: unknown): boolean {
  return error instanceof DockerCommandError && (error.result.notSent === true || /no such image|cannot connect to the docker daemon/i.test(error.result.stderr))
}

/** Where the locks of one deploy are, for the post step: docker hosts (null: the default engine). */
export interface HeldLocks {
  owner: string
  hosts: (string | null)[]
}

/**
 * The locks of one deploy across its hosts. All hosts are tried at once first; when another live
 * run holds any of them, the locks taken out of order are given back and the rest are taken one
 * after another in a fixed order, so that two deploys to overlapping host lists cannot each hold
 * one lock and wait for the other's. The order is the engines' identities (`docker system info`),
 * not the host strings: two configs that spell one engine differently (`ssh://deploy@web1`,
 * `ssh://web1`) still agree on it. Every lock is renewed from the moment it is taken, so a lock
 * held while waiting for the next one never runs out.
 */
export class FleetLock {
  readonly owner: string
  private readonly held: DeployLock[] = []
  private renewal: { stop: AbortController; done: Promise<void> } | undefined

  constructor(
    private readonly locks: { lock: DeployLock; dockerHost: string | undefined }[],
    owner = lockOwnerToken()
  ) {
    this.owner = owner
  }

  /** The hosts whose lock this deploy holds now. */
  get heldHosts(): (string | null)[] {
    return this.locks.filter(({ lock }) => this.held.includes(lock)).map(({ dockerHost }) => dockerHost ?? null)
  }

  /** Every docker host of the fleet (null: the default engine): where the post step looks for locks. */
  get hosts(): (string | null)[] {
    return this.locks.map(({ dockerHost }) => dockerHost ?? null)
  }

  /**
   * Takes every host's lock; on failure releases those it may hold and throws.
   *
   * 1. A fleet, every host at once: its engine's identity (the order, needed only if step 2 comes), then
   *    one attempt at its lock that never waits (`DeployLock.tryAcquire`; an expired lease is
   *    taken over). Taken everywhere: done, in the time of one host.
   * 2. Another live run holds some host's lock: the first such host in the engines' order is
   *    where this run waits. Locks it took after that host in the order are given back (removed
   *    by the id their create returned), so that it waits holding only locks that come before;
   *    then it takes the rest one after another in that order, as every run does.
   *
   * No run ever waits holding a lock that comes after the one it waits for (step 1 never waits),
   * so no two runs can wait for each other. While it waits, it renews those it holds every third
   * of a lease (`onRenewProblem` hears of renewals that failed): a wait can last `lock.timeout`,
   * up to a day, far longer than a lease. Once every lock is held, `startRenewing` takes over.
   */
  async acquire(options: Omit<AcquireOptions, 'owner' | 'whileWaiting'> & { onRenewProblem?: (problem: string) => void }): Promise<Acquired[]> {
    const renewHeld = async (): Promise<void> => {
      for (const lock of [...this.held]) {
        await lock.renewIfDue(options.leaseMs, options.clock).catch((error: unknown) => options.onRenewProblem?.(`${lock.host}: ${error instanceof Error ? error.message : String(error)}`))
      }
    }
    try {
      // One host has nothing to give back: its attempt is the wait of step 2 (no attempt made here),
      // and nothing to order, so its engine's identity is not read (one docker command fewer).
      const round = this.locks.length > 1 ? await this.tryEveryHost(options) : this.locks.map(({ lock }) => ({ lock, attempt: undefined }))
      const waitAt = round.findIndex(({ attempt }) => attempt === undefined || 'busy' in attempt)
      const results = round.slice(0, waitAt === -1 ? undefined : waitAt).map(({ attempt }) => (attempt as { taken: Acquired }).taken)
      if (waitAt === -1) return results
      await this.giveBack(round.slice(waitAt + 1).flatMap(({ lock, attempt }) => (attempt && 'taken' in attempt ? [lock] : [])))
      for (const { lock } of round.slice(waitAt)) {
        const acquired = await lock.acquire({ ...options, owner: this.owner, whileWaiting: renewHeld })
        const sameEngine = this.sameEngineError(lock, acquired, this.held)
        if (sameEngine) throw sameEngine
        results.push(acquired)
        this.held.push(lock)
      }
      return results
    } catch (error) {
      await this.release().catch(() => undefined)
      throw error
    }
  }

  /**
   * Step 1 of `acquire`: on every host side by side, the engine's identity, then one attempt at
   * its lock. Every host's work ends before a failure is passed on, so that the release that
   * follows finds every lock a create may have taken. Returns the attempts in the engines' order;
   * the locks taken are held from here on.
   */
  private async tryEveryHost(options: Omit<AcquireOptions, 'owner' | 'whileWaiting'>): Promise<{ lock: DeployLock; attempt: LockAttempt | undefined }[]> {
    const settled = await Promise.allSettled(
      this.locks.map(async ({ lock }) => {
        const id = await lock.identity(options.clock)
        const attempt = await lock.tryAcquire({ ...options, owner: this.owner })
        return { lock, id, attempt }
      })
    )
    const tried = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []))
    const ordered = canonicalOrder(tried)
    this.held.push(...ordered.filter(({ attempt }) => 'taken' in attempt).map(({ lock }) => lock))
    // One engine under two host strings: both creates reached it, one took the lock and the other found it.
    const rank = (lock: DeployLock): number => ordered.findIndex((entry) => entry.lock === lock)
    for (const { lock, attempt } of ordered) {
      if (!('taken' in attempt)) continue
      const sameEngine = this.sameEngineError(lock, attempt.taken, this.held.filter((other) => other !== lock), rank)
      if (sameEngine) throw sameEngine
    }
    const failed = settled.find((result) => result.status === 'rejected')
    if (failed) throw failed.reason
    return ordered
  }

  /**
   * Gives back locks taken in step 1 that come after the host this run must wait for. A lock that
   * cannot be given back ends the attempt: waiting while holding it could keep another run waiting
   * for this one, so the whole acquire fails and releases what it may hold.
   */
  private async giveBack(locks: DeployLock[]): Promise<void> {
    const given = await Promise.allSettled(locks.map((lock) => lock.release(this.owner)))
    locks.forEach((lock, index) => {
      if (given[index]?.status === 'fulfilled') this.held.splice(this.held.indexOf(lock), 1)
    })
    const failed = given.find((result) => result.status === 'rejected')
    if (failed) throw failed.reason
  }

  /**
   * One engine listed under two host strings: the lock found on `lock` already carried this run's
   * owner token, so this run took it through another host name moments ago (the token is new in
   * every run attempt). That engine would get two deploys at once from this very run. `others`:
   * the other locks this run holds; `rank`, when given, puts the two hosts in the engines' order
   * (whichever of two creates sent at once found the other's lock, the message is the same).
   */
  private sameEngineError(lock: DeployLock, acquired: Acquired, others: DeployLock[], rank?: (lock: DeployLock) => number): Error | undefined {
    if (!acquired.foundOwn || others.length === 0) return undefined
    const twin = others.find((other) => other.heldId === lock.heldId)
    const [first, second] = twin && rank && rank(twin) > rank(lock) ? [lock.host, twin.host] : [twin ? twin.host : `one of ${others.map((held) => held.host).join(', ')}`, lock.host]
    return new Error(`${first} and ${second} are the same docker engine (the deploy lock taken through one is found through the other): list each host once in hosts`)
  }

  /**
   * Renews the lease of every lock held, every third of a lease, until `stopRenewing` or
   * `release`: a deploy that works longer than one lease (many hosts, a long deadline, a fallback
   * target) keeps its lock. A renewal that fails is reported and tried again at the next turn.
   */
  startRenewing(options: { leaseMs: number; clock?: LockClock; onProblem?: (problem: string) => void }): void {
    if (this.renewal || this.held.length === 0) return
    const clock = options.clock ?? systemClock
    const stop = new AbortController()
    const everyMs = renewalEveryMs(options.leaseMs)
    const loop = async (): Promise<void> => {
      for (;;) {
        try {
          await clock.sleep(everyMs, stop.signal)
        } catch {
          return
        }
        if (stop.signal.aborted) return
        for (const lock of [...this.held]) {
          try {
            await lock.renew(options.leaseMs, clock)
          } catch (error) {
            options.onProblem?.(`${lock.host}: ${error instanceof Error ? error.message : String(error)}`)
          }
        }
      }
    }
    this.renewal = { stop, done: loop() }
  }

  /**
   * Before a switch: throws `LockLostError` for the first host (in host order) whose lock this
   * deploy no longer holds. Every lock is looked at side by side.
   */
  async assertHeld(clock?: LockClock): Promise<void> {
    const results = await Promise.allSettled(this.locks.map(({ lock }) => lock.assertHeld(clock)))
    const lost = results.find((result) => result.status === 'rejected')
    if (lost) throw lost.reason
  }

  /**
   * Before switching one host (a restore is a switch too): throws `LockLostError` unless this
   * deploy still holds that host's lock. `index` is the host's place in the fleet's host list.
   */
  async assertHeldOn(index: number, clock?: LockClock): Promise<void> {
    const entry = this.locks[index]
    if (entry) await entry.lock.assertHeld(clock)
  }

  /** `DeployLock.holdsByLease` for the host at `index`: no docker command, for switching users back at once. */
  holdsByLease(index: number, clock?: LockClock): boolean {
    return this.locks[index]?.lock.holdsByLease(clock) ?? false
  }

  /** Stops renewing; resolves once no renewal is under way. */
  async stopRenewing(): Promise<void> {
    const renewal = this.renewal
    if (!renewal) return
    this.renewal = undefined
    renewal.stop.abort(new Error('the deploy lock is no longer renewed'))
    await renewal.done
  }

  /**
   * Releases every lock this deploy holds or may hold (see `DeployLock.mayHold`); returns the
   * problems, one per host that failed.
   */
  async release(): Promise<string[]> {
    await this.stopRenewing()
    const releasing = this.locks.filter(({ lock }) => lock.mayHold || this.held.includes(lock)).map(({ lock }) => lock)
    // Side by side: every host's release ends before the problems are told, in host order.
    const released = await Promise.allSettled(releasing.map((lock) => lock.release(this.owner)))
    const problems: string[] = []
    releasing.forEach((lock, index) => {
      const result = released[index]
      if (result?.status === 'rejected') {
        problems.push(`${lock.host}: ${result.reason instanceof Error ? result.reason.message : String(result.reason)}`)
      } else if (this.held.includes(lock)) {
        this.held.splice(this.held.indexOf(lock), 1)
      }
    })
    return problems
  }
}
