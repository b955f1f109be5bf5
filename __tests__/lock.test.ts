import { describe, expect, it } from '@jest/globals'
import { DockerClient } from '../src/docker/client.js'
import {
  DeployLock,
  describeHolder,
  FleetLock,
  LOCK_IMAGE,
  LockLabel,
  LEASE_FILE,
  leaseEnd,
  lockLeaseMs,
  lockOwnerToken,
  LockTimeoutError,
  type LockClock,
  type LockHolder
} from '../src/lock.js'
import { FakeDockerEngine } from '../test-support/fake-docker-engine.js'
import { RecordingRunner } from '../test-support/recording-runner.js'

const T0 = Date.parse('2024-05-01T10:00:00.000Z')

/** A clock whose sleeps pass instantly and can act on the world while "waiting". */
function fakeClock(onSleep: (now: number) => void = () => undefined): LockClock & { slept: number[] } {
  let now = T0
  const slept: number[] = []
  return {
    slept,
    now: () => now,
    sleep: async (ms) => {
      slept.push(ms)
      now += ms
      onSleep(now)
    }
  }
}

const base = { holder: 'https://github.com/acme/web/actions/runs/42', tag: 'v2', leaseMs: 30 * 60_000, timeoutMs: 10_000, pollMs: 2_000 }

function holdBy(engine: FakeDockerEngine, owner: string, labels: Record<string, string> = {}): string {
  // The daemon's clock reads T0 when first asked, as the test clock does: they agree here.
  engine.daemonNow = () => T0
  engine.images.add(LOCK_IMAGE)
  return engine.add({
    name: 'web-deploy-lock',
    image: LOCK_IMAGE,
    running: false,
    labels: {
      [LockLabel.Owner]: owner,
      [LockLabel.Holder]: 'https://github.com/acme/web/actions/runs/41',
      [LockLabel.Tag]: 'v1',
      [LockLabel.Since]: new Date(T0 - 60_000).toISOString(),
      [LockLabel.Expires]: new Date(T0 + 60 * 60_000).toISOString(),
      ...labels
    }
  }).id
}

describe('DeployLock', () => {
  it('takes a free lock at once: a never-started container with holder, tag, since and lease expiry', async () => {
    const engine = new FakeDockerEngine()
    const lock = new DeployLock(new DockerClient(engine), 'web')
    const acquired = await lock.acquire({ ...base, owner: 'run-42-a', clock: fakeClock() })

    expect(acquired).toEqual({ waitedMs: 0, waitedFor: undefined, tookOver: [] })
    const container = engine.containers.get('web-deploy-lock')
    expect(container?.running).toBe(false)
    expect(container?.image).toBe(LOCK_IMAGE)
    expect(container?.labels).toEqual({
      [LockLabel.Owner]: 'run-42-a',
      [LockLabel.Holder]: base.holder,
      [LockLabel.Tag]: 'v2',
      [LockLabel.Since]: '2024-05-01T10:00:00.000Z',
      [LockLabel.Expires]: '2024-05-01T10:30:00.000Z',
      [LockLabel.LeaseMs]: '1800000'
    })
    // The empty lock image is imported once, from stdin, and never pulled.
    const imports = engine.calls.filter((call) => call.argv[0] === 'image' && call.argv[1] === 'import')
    expect(imports).toHaveLength(1)
    expect(imports[0]?.options.input).toBe('\0'.repeat(1024))
    expect(engine.commands.some((command) => command.startsWith('pull'))).toBe(false)
    expect(engine.commands.filter((command) => command.startsWith('container start'))).toEqual([])

    await new DeployLock(new DockerClient(engine), 'api').acquire({ ...base, owner: 'x', clock: fakeClock() })
    expect(engine.calls.filter((call) => call.argv[1] === 'import')).toHaveLength(1)
  })

  it('on a host that has the lock image, takes the lock with one docker command and releases it with one', async () => {
    const engine = new FakeDockerEngine()
    engine.images.add(LOCK_IMAGE)
    const lock = new DeployLock(new DockerClient(engine), 'web')
    await lock.acquire({ ...base, owner: 'run-42-a', clock: fakeClock() })
    const id = engine.containers.get('web-deploy-lock')?.id
    expect(engine.commands).toEqual([expect.stringMatching(/^container create --pull never --name web-deploy-lock .* deploy-action-lock:v1 deploy-action-lock$/)])
    await expect(lock.release('run-42-a')).resolves.toBe(true)
    // By the id its own create returned, so no read of the owner is needed.
    expect(engine.commands.slice(1)).toEqual([`container rm --force ${id}`])
    expect(engine.containers.has('web-deploy-lock')).toBe(false)
  })

  it('imports the lock image only once: a create that still finds no image fails with docker’s error', async () => {
    const engine = new FakeDockerEngine()
    // An import that does not stick (e.g. pruned at once): no endless loop.
    const forgetful = { run: async (argv: readonly string[], options?: Parameters<FakeDockerEngine['run']>[1]) => {
      const result = await engine.run(argv, options)
      engine.images.delete(LOCK_IMAGE)
      return result
    } }
    const lock = new DeployLock(new DockerClient(forgetful), 'web')
    await expect(lock.acquire({ ...base, owner: 'run-42-a', clock: fakeClock() })).rejects.toThrow(/No such image: deploy-action-lock:v1/)
    expect(engine.commands.filter((command) => command.startsWith('image import'))).toHaveLength(1)
    // Docker said no container was created: there is nothing to release.
    expect(lock.mayHold).toBe(false)
  })

  it('after its lease ran out and another deploy took the lock over, the release by id leaves the new holder’s lock alone', async () => {
    const engine = new FakeDockerEngine()
    engine.images.add(LOCK_IMAGE)
    const lock = new DeployLock(new DockerClient(engine), 'web')
    await lock.acquire({ ...base, owner: 'run-42-a', clock: fakeClock() })
    engine.containers.delete('web-deploy-lock')
    holdBy(engine, 'run-43-a')
    await expect(lock.release('run-42-a')).resolves.toBe(false)
    expect(engine.containers.get('web-deploy-lock')?.labels[LockLabel.Owner]).toBe('run-43-a')
  })

  it('waits, polling, and fails after the timeout with an error that names the holder', async () => {
    const engine = new FakeDockerEngine()
    holdBy(engine, 'run-41-a')
    const clock = fakeClock()
    const waits: string[] = []
    const lock = new DeployLock(new DockerClient(engine, { label: 'ssh://deploy@web1' }), 'web')

    const error = await lock.acquire({ ...base, owner: 'run-42-a', clock, onWait: (holder) => waits.push(describeHolder(holder)) }).catch((e: unknown) => e)

    expect(error).toBeInstanceOf(LockTimeoutError)
    const message = (error as Error).message
    expect(message).toContain('web-deploy-lock on ssh://deploy@web1')
    expect(message).toContain('run https://github.com/acme/web/actions/runs/41')
    expect(message).toContain('deploying v1')
    expect(message).toContain('since 2024-05-01T09:59:00.000Z')
    expect(message).toContain('Waited 10s (lock.timeout)')
    expect(message).toContain('docker container rm web-deploy-lock')
    expect(clock.slept).toEqual([2_000, 2_000, 2_000, 2_000, 2_000])
    expect(waits).toHaveLength(1)
    // The holder's lock is untouched.
    expect(engine.containers.get('web-deploy-lock')?.labels[LockLabel.Owner]).toBe('run-41-a')
  })

  it('gets the lock as soon as the holder releases it, and says whom it waited for', async () => {
    const engine = new FakeDockerEngine()
    holdBy(engine, 'run-41-a')
    const clock = fakeClock((now) => {
      if (now - T0 >= 4_000) engine.containers.delete('web-deploy-lock')
    })
    const acquired = await new DeployLock(new DockerClient(engine), 'web').acquire({ ...base, owner: 'run-42-a', clock })
    expect(acquired.waitedMs).toBe(4_000)
    expect(acquired.waitedFor?.tag).toBe('v1')
    expect(engine.containers.get('web-deploy-lock')?.labels[LockLabel.Owner]).toBe('run-42-a')
  })

  it('takes over an expired lease, removing the old lock by its id', async () => {
    const engine = new FakeDockerEngine()
    const oldId = holdBy(engine, 'run-41-a', { [LockLabel.Expires]: new Date(T0 - 1).toISOString() })
    const takeovers: string[] = []
    const acquired = await new DeployLock(new DockerClient(engine), 'web').acquire({
      ...base,
      owner: 'run-42-a',
      clock: fakeClock(),
      onTakeover: (holder) => takeovers.push(holder.id)
    })
    expect(takeovers).toEqual([oldId])
    expect(acquired.tookOver.map((holder) => holder.holder)).toEqual(['https://github.com/acme/web/actions/runs/41'])
    expect(engine.commands).toContain(`container rm --force ${oldId}`)
    expect(engine.containers.get('web-deploy-lock')?.labels[LockLabel.Owner]).toBe('run-42-a')
  })

  it('never removes a lock that a third deploy took between our look and our takeover', async () => {
    const engine = new FakeDockerEngine()
    holdBy(engine, 'run-41-a', { [LockLabel.Expires]: new Date(T0 - 1).toISOString() })
    const error = await new DeployLock(new DockerClient(engine), 'web')
      .acquire({
        ...base,
        owner: 'run-42-a',
        timeoutMs: 2_000,
        clock: fakeClock(),
        onTakeover: () => {
          // A third deploy removes the expired lock and takes the name first.
          engine.containers.delete('web-deploy-lock')
          holdBy(engine, 'run-43-a', { [LockLabel.Tag]: 'v3' })
        }
      })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(LockTimeoutError)
    expect((error as Error).message).toContain('deploying v3')
    expect(engine.containers.get('web-deploy-lock')?.labels[LockLabel.Owner]).toBe('run-43-a')
  })

  it('treats a lock without readable labels as held by an unknown holder that never expires', async () => {
    const engine = new FakeDockerEngine()
    engine.images.add(LOCK_IMAGE)
    engine.add({ name: 'web-deploy-lock', image: LOCK_IMAGE, running: false, labels: {} })
    const error = await new DeployLock(new DockerClient(engine), 'web').acquire({ ...base, owner: 'me', timeoutMs: 0, clock: fakeClock() }).catch((e: unknown) => e)
    expect((error as Error).message).toContain('an unknown holder')
  })

  it('is re-entrant for the same owner, and released only by its owner', async () => {
    const engine = new FakeDockerEngine()
    holdBy(engine, 'run-42-a')
    const lock = new DeployLock(new DockerClient(engine), 'web')
    await expect(lock.acquire({ ...base, owner: 'run-42-a', clock: fakeClock() })).resolves.toMatchObject({ waitedMs: 0 })
    await expect(lock.release('run-99-z')).resolves.toBe(false)
    expect(engine.containers.has('web-deploy-lock')).toBe(true)
    await expect(lock.release('run-42-a')).resolves.toBe(true)
    expect(engine.containers.has('web-deploy-lock')).toBe(false)
    await expect(lock.release('run-42-a')).resolves.toBe(false)
  })

  it('stops waiting at once when cancelled', async () => {
    const engine = new FakeDockerEngine()
    holdBy(engine, 'run-41-a')
    const controller = new AbortController()
    const clock = fakeClock(() => controller.abort(new Error('cancelled by SIGINT')))
    await expect(
      new DeployLock(new DockerClient(engine), 'web').acquire({ ...base, owner: 'run-42-a', timeoutMs: 600_000, clock, signal: controller.signal })
    ).rejects.toThrow('cancelled by SIGINT')
    expect(clock.slept).toHaveLength(1)
  })

  it('fails with docker’s own error when the engine cannot be reached', async () => {
    const engine = new FakeDockerEngine()
    engine.images.add(LOCK_IMAGE)
    engine.unreachable = true
    await expect(new DeployLock(new DockerClient(engine), 'web').acquire({ ...base, owner: 'x', clock: fakeClock() })).rejects.toThrow(
      /Cannot connect to the Docker daemon/
    )
  })
})

describe('the lease, on the daemon’s clock', () => {
  /** A lock taken by another run through the real code path, at daemon time `createdAt`. */
  async function heldByAnotherRun(engine: FakeDockerEngine, createdAt: number, leaseMs = base.leaseMs): Promise<DeployLock> {
    engine.daemonNow = () => createdAt
    const other = new DeployLock(new DockerClient(engine), 'web')
    // Its runner's clock is an hour behind the daemon's: its labels say so, the lease does not care.
    await other.acquire({ ...base, leaseMs, owner: 'run-41-a', clock: fakeClock() })
    return other
  }

  it('runs from the daemon’s creation time for lease-ms, whatever the runners’ clocks say', async () => {
    const engine = new FakeDockerEngine()
    const created = T0 + 60 * 60_000
    await heldByAnotherRun(engine, created)
    // The waiter's runner clock is at T0, the daemon 29 minutes after the create: still held.
    engine.daemonNow = () => created + 29 * 60_000
    const waiting = await new DeployLock(new DockerClient(engine), 'web').acquire({ ...base, owner: 'run-42-a', timeoutMs: 0, clock: fakeClock() }).catch((e: unknown) => e)
    expect(waiting).toBeInstanceOf(LockTimeoutError)
    // The labels' expiry (T0 + 30 min by the holder's clock) has long passed by the daemon's: it is not what counts.
    expect(engine.containers.get('web-deploy-lock')?.labels[LockLabel.Owner]).toBe('run-41-a')

    // 31 minutes after the create by the daemon's clock: expired, taken over.
    engine.daemonNow = () => created + 31 * 60_000
    const taken = await new DeployLock(new DockerClient(engine), 'web').acquire({ ...base, owner: 'run-43-a', clock: fakeClock() })
    expect(taken.tookOver.map((holder) => holder.owner)).toEqual(['run-41-a'])
    expect(engine.containers.get('web-deploy-lock')?.labels[LockLabel.Owner]).toBe('run-43-a')
  })

  it('asks the daemon’s time once per wait, and follows it with the waiter’s own clock', async () => {
    const engine = new FakeDockerEngine()
    const created = T0 + 5 * 3_600_000
    await heldByAnotherRun(engine, created, 60_000)
    // The daemon says 50 s after the create; the waiter polls every 2 s: expiry after 10 s of waiting.
    engine.daemonNow = () => created + 50_000
    const clock = fakeClock()
    const acquired = await new DeployLock(new DockerClient(engine), 'web').acquire({ ...base, owner: 'run-42-a', timeoutMs: 60_000, clock })
    expect(acquired.tookOver).toHaveLength(1)
    expect(clock.slept.reduce((sum, ms) => sum + ms, 0)).toBe(10_000)
    expect(engine.commands.filter((command) => command.startsWith('system info'))).toHaveLength(1)
  })

  it('a renewed lease holds past the first one; once renewals stop, it runs out and is taken over', async () => {
    const engine = new FakeDockerEngine()
    const created = T0
    const holder = await heldByAnotherRun(engine, created, 60_000)
    // The holder renews at daemon time +40 s: the lease now ends at +100 s.
    engine.daemonNow = () => created + 40_000
    await expect(holder.renew(60_000)).resolves.toBe(true)
    const lockId = engine.containers.get('web-deploy-lock')?.id ?? ''
    expect(JSON.parse(engine.containers.get('web-deploy-lock')?.files?.get(`/${LEASE_FILE}`) ?? '{}')).toEqual({ expires: new Date(created + 100_000).toISOString(), renewed: new Date(created + 40_000).toISOString(), owner: 'run-41-a' })

    engine.daemonNow = () => created + 90_000
    const waiting = await new DeployLock(new DockerClient(engine), 'web').acquire({ ...base, owner: 'run-42-a', timeoutMs: 0, clock: fakeClock() }).catch((e: unknown) => e)
    expect(waiting).toBeInstanceOf(LockTimeoutError)
    // The lease file was read by the container's id, only because the first lease had passed.
    expect(engine.commands).toContain(`container cp ${lockId}:/${LEASE_FILE} -`)

    engine.daemonNow = () => created + 101_000
    const taken = await new DeployLock(new DockerClient(engine), 'web').acquire({ ...base, owner: 'run-43-a', clock: fakeClock() })
    expect(taken.tookOver).toHaveLength(1)
    // A renewal of the old holder now finds its container gone and writes into nobody else's lock.
    await expect(holder.renew(60_000)).rejects.toThrow(/No such container/)
    expect(engine.containers.get('web-deploy-lock')?.files).toBeUndefined()
  })

  it('the fleet renews every held lock every third of a lease until it stops or releases', async () => {
    const engines = [new FakeDockerEngine(), new FakeDockerEngine()]
    const fleet = new FleetLock(
      engines.map((engine, index) => ({ lock: new DeployLock(new DockerClient(engine, { label: `h${index}` }), 'web'), dockerHost: `h${index}` })),
      'me'
    )
    await fleet.acquire({ ...base, leaseMs: 90_000, clock: fakeClock() })
    // A clock whose sleeps end when the test says so.
    const wakes: (() => void)[] = []
    const sleeps: number[] = []
    const clock: LockClock = {
      now: () => T0,
      sleep: (ms, signal) =>
        new Promise<void>((resolve, reject) => {
          sleeps.push(ms)
          wakes.push(resolve)
          signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true })
        })
    }
    const problems: string[] = []
    fleet.startRenewing({ leaseMs: 90_000, clock, onProblem: (problem) => problems.push(problem) })
    const renewals = (engine: FakeDockerEngine): number => engine.commands.filter((command) => command.startsWith('container cp -')).length
    for (let turn = 1; turn <= 3; turn++) {
      await new Promise((resolve) => setImmediate(resolve))
      wakes.shift()?.()
      await new Promise((resolve) => setImmediate(resolve))
      expect(engines.map(renewals)).toEqual([turn, turn])
    }
    expect(sleeps.slice(0, 3)).toEqual([30_000, 30_000, 30_000])
    // A failed renewal is reported and tried again at the next turn.
    engines[1]!.unreachable = true
    wakes.shift()?.()
    await new Promise((resolve) => setImmediate(resolve))
    expect(problems).toEqual([expect.stringMatching(/^h1: .*Cannot connect/)])
    engines[1]!.unreachable = false
    await fleet.release()
    // Released: no renewal runs any more, and no timer is left behind.
    wakes.shift()?.()
    await new Promise((resolve) => setImmediate(resolve))
    expect(engines.map(renewals)).toEqual([4, 3])
    expect(engines.every((engine) => !engine.containers.has('web-deploy-lock'))).toBe(true)
  })

  it('reads the lease from the labels: creation + lease-ms, else the expires label of an older version', () => {
    expect(leaseEnd({ id: 'x', created: '2024-05-01T10:00:00.000Z', leaseMs: 60_000, expires: '2030-01-01T00:00:00.000Z' })).toBe(Date.parse('2024-05-01T10:01:00.000Z'))
    expect(leaseEnd({ id: 'x', expires: '2024-05-01T10:30:00.000Z' })).toBe(Date.parse('2024-05-01T10:30:00.000Z'))
    expect(leaseEnd({ id: 'x' })).toBeUndefined()
  })
})

describe('FleetLock', () => {
  it('locks hosts in the order of their engine IDs, not their spelling, and releases the ones it took when a later one times out', async () => {
    const engines = { 'ssh://a': new FakeDockerEngine(), 'ssh://b': new FakeDockerEngine() }
    // By name a comes first; by engine ID b does.
    engines['ssh://a'].engineId = 'ZZZZ:ENGINE'
    engines['ssh://b'].engineId = 'AAAA:ENGINE'
    holdBy(engines['ssh://a'], 'someone-else')
    const fleet = new FleetLock(
      (['ssh://a', 'ssh://b'] as const).map((host) => ({ lock: new DeployLock(new DockerClient(engines[host], { label: host }), 'web'), dockerHost: host })),
      'me'
    )
    expect(fleet.hosts).toEqual(['ssh://a', 'ssh://b'])
    await expect(fleet.acquire({ ...base, timeoutMs: 0, clock: fakeClock() })).rejects.toBeInstanceOf(LockTimeoutError)
    // Both engines were asked for their ID first; b was locked first (its first create found no
    // lock image, imported it and created again), then released by the id its create returned
    // when a timed out.
    expect(engines['ssh://a'].commands[0]).toBe('system info --format {{json .ID}}\t{{json .Name}}\t{{json .DockerRootDir}}\t{{json .SystemTime}}')
    expect(engines['ssh://b'].commands.filter((command) => /^(system info|container create|container rm|image import)/.test(command))).toEqual([
      'system info --format {{json .ID}}\t{{json .Name}}\t{{json .DockerRootDir}}\t{{json .SystemTime}}',
      expect.stringMatching(/^container create --pull never --name web-deploy-lock /),
      'image import --message deploy-action lock - deploy-action-lock:v1',
      expect.stringMatching(/^container create --pull never --name web-deploy-lock /),
      expect.stringMatching(/^container rm --force 0+1$/)
    ])
    expect(engines['ssh://b'].containers.has('web-deploy-lock')).toBe(false)
    expect(fleet.heldHosts).toEqual([])
    expect(engines['ssh://a'].containers.get('web-deploy-lock')?.labels[LockLabel.Owner]).toBe('someone-else')
  })

  it('refuses one engine listed twice under two spellings, and leaves no lock behind', async () => {
    const engine = new FakeDockerEngine()
    engine.engineId = 'SAME:ENGINE'
    const fleet = new FleetLock(
      ['ssh://deploy@web1', 'ssh://web1'].map((host) => ({ lock: new DeployLock(new DockerClient(engine, { label: host }), 'web'), dockerHost: host })),
      'me'
    )
    await expect(fleet.acquire({ ...base, clock: fakeClock() })).rejects.toThrow(
      'ssh://deploy@web1 and ssh://web1 are the same docker engine (the deploy lock taken through one is found through the other): list each host once in hosts'
    )
    expect(engine.containers.has('web-deploy-lock')).toBe(false)
    expect(fleet.heldHosts).toEqual([])
  })

  it('locks two engines that share an identity (cloned from one image), ordered by their host strings', async () => {
    const engines = { 'ssh://a': new FakeDockerEngine(), 'ssh://b': new FakeDockerEngine() }
    for (const engine of Object.values(engines)) engine.engineId = 'CLONED:KEY'
    const fleet = new FleetLock(
      (['ssh://b', 'ssh://a'] as const).map((host) => ({ lock: new DeployLock(new DockerClient(engines[host], { label: host }), 'web'), dockerHost: host })),
      'me'
    )
    await fleet.acquire({ ...base, clock: fakeClock() })
    expect(fleet.heldHosts).toEqual(['ssh://b', 'ssh://a'])
  })

  it('renews the locks it holds while it waits for the next one, so they never run out during the wait', async () => {
    const engines = { 'ssh://a': new FakeDockerEngine(), 'ssh://b': new FakeDockerEngine() }
    engines['ssh://a'].engineId = 'AAAA:ENGINE'
    engines['ssh://b'].engineId = 'BBBB:ENGINE'
    let now = T0
    // b is held by another run for 50 minutes: far past a 30-minute lease of a.
    holdBy(engines['ssh://b'], 'someone-else', { [LockLabel.LeaseMs]: String(24 * 3600_000) })
    for (const engine of Object.values(engines)) engine.daemonNow = () => now
    const clock: LockClock = {
      now: () => now,
      sleep: async (ms) => {
        now += ms
        if (now - T0 >= 50 * 60_000) engines['ssh://b'].containers.delete('web-deploy-lock')
      }
    }
    const fleet = new FleetLock(
      (['ssh://a', 'ssh://b'] as const).map((host) => ({ lock: new DeployLock(new DockerClient(engines[host], { label: host }), 'web'), dockerHost: host })),
      'me'
    )
    await fleet.acquire({ ...base, leaseMs: 30 * 60_000, timeoutMs: 3600_000, pollMs: 60_000, clock })
    expect(fleet.heldHosts).toEqual(['ssh://a', 'ssh://b'])
    // a was renewed every third of its lease during the wait: at 10, 20, 30 and 40 minutes.
    const renewals = engines['ssh://a'].commands.filter((command) => command.startsWith('container cp -'))
    expect(renewals).toHaveLength(4)
    // Its lease, judged as a waiting run judges it, never ran out: nobody could take a over.
    await expect(fleet.assertHeld(clock)).resolves.toBeUndefined()
    const other = new DeployLock(new DockerClient(engines['ssh://a'], { label: 'ssh://a' }), 'web')
    await expect(other.acquire({ ...base, owner: 'third-run', timeoutMs: 0, clock })).rejects.toBeInstanceOf(LockTimeoutError)
  })

  it('tries every host at once: a lock taken after the busy host in the engines\' order is given back by its id; one taken before it is kept while waiting', async () => {
    const engines = { 'ssh://a': new FakeDockerEngine(), 'ssh://b': new FakeDockerEngine(), 'ssh://c': new FakeDockerEngine() }
    engines['ssh://a'].engineId = 'AAAA:ENGINE'
    engines['ssh://b'].engineId = 'BBBB:ENGINE'
    engines['ssh://c'].engineId = 'CCCC:ENGINE'
    for (const engine of Object.values(engines)) engine.images.add(LOCK_IMAGE)
    // b, the middle one in the engines' order, is held by another run for 10 s.
    holdBy(engines['ssh://b'], 'someone-else')
    const clock = fakeClock((now) => {
      if (now - T0 >= 10_000) engines['ssh://b'].containers.delete('web-deploy-lock')
    })
    const waits: LockHolder[] = []
    const fleet = new FleetLock(
      (['ssh://c', 'ssh://b', 'ssh://a'] as const).map((host) => ({ lock: new DeployLock(new DockerClient(engines[host], { label: host }), 'web'), dockerHost: host })),
      'me'
    )
    const results = await fleet.acquire({ ...base, timeoutMs: 60_000, clock, onWait: (holder) => waits.push(holder) })
    expect(fleet.heldHosts).toEqual(['ssh://c', 'ssh://b', 'ssh://a'])
    const lockCommands = (engine: FakeDockerEngine): string[] => engine.commands.filter((command) => /^(system info|container (create|rm))/.test(command)).map((command) => command.replace(/ --label .*/, ''))
    // a comes before b: kept, never removed, while the run waited for b.
    expect(lockCommands(engines['ssh://a'])).toEqual([expect.stringMatching(/^system info /), 'container create --pull never --name web-deploy-lock --network none'])
    // c comes after b: given back by the id its create returned, taken again once b was had.
    expect(lockCommands(engines['ssh://c'])).toEqual([
      expect.stringMatching(/^system info /),
      'container create --pull never --name web-deploy-lock --network none',
      expect.stringMatching(/^container rm --force [0-9a-f]+$/),
      'container create --pull never --name web-deploy-lock --network none'
    ])
    // The wait was told once, for b's holder, and in the results in the engines' order.
    expect(waits.map((holder) => holder.owner)).toEqual(['someone-else'])
    expect(results.map((result) => result.waitedFor?.owner)).toEqual([undefined, 'someone-else', undefined])
    expect(Object.values(engines).map((engine) => engine.containers.get('web-deploy-lock')?.labels[LockLabel.Owner])).toEqual(['me', 'me', 'me'])
  })

  it('takes over an expired lease in the first round, with the others taken beside it', async () => {
    const engines = { 'ssh://a': new FakeDockerEngine(), 'ssh://b': new FakeDockerEngine() }
    const deadId = holdBy(engines['ssh://a'], 'dead-run', { [LockLabel.Expires]: new Date(T0 - 1_000).toISOString() })
    engines['ssh://b'].images.add(LOCK_IMAGE)
    const tookOver: string[] = []
    const fleet = new FleetLock(
      (['ssh://a', 'ssh://b'] as const).map((host) => ({ lock: new DeployLock(new DockerClient(engines[host], { label: host }), 'web'), dockerHost: host })),
      'me'
    )
    await fleet.acquire({ ...base, timeoutMs: 0, clock: fakeClock(), onTakeover: (holder) => tookOver.push(holder.id) })
    expect(tookOver).toEqual([deadId])
    expect(engines['ssh://a'].commands).toContain(`container rm --force ${deadId}`)
    expect(fleet.heldHosts).toEqual(['ssh://a', 'ssh://b'])
  })

  it('releases every lock it holds and reports the hosts it could not reach', async () => {
    const a = new FakeDockerEngine()
    const b = new FakeDockerEngine()
    const fleet = new FleetLock(
      [
        { lock: new DeployLock(new DockerClient(a, { label: 'a' }), 'web'), dockerHost: 'a' },
        { lock: new DeployLock(new DockerClient(b, { label: 'b' }), 'web'), dockerHost: undefined }
      ],
      'me'
    )
    await fleet.acquire({ ...base, clock: fakeClock() })
    expect(fleet.heldHosts).toEqual(['a', null])
    b.unreachable = true
    const problems = await fleet.release()
    expect(problems).toEqual([expect.stringMatching(/^b: .*Cannot connect/)])
    expect(a.containers.has('web-deploy-lock')).toBe(false)
    expect(fleet.heldHosts).toEqual([null])
  })
})

describe('a create whose docker client was killed', () => {
  it('may have been carried out by the daemon: the release still finds and removes our lock', async () => {
    const engine = new FakeDockerEngine()
    engine.images.add(LOCK_IMAGE)
    // The daemon creates the container, but the client is killed (cancel) before it answers.
    const dying = {
      run: async (argv: readonly string[], options?: Parameters<FakeDockerEngine['run']>[1]) => {
        const result = await engine.run(argv, options)
        if (argv[0] === 'container' && argv[1] === 'create') throw new Error('docker container was cancelled')
        return result
      }
    }
    const fleet = new FleetLock([{ lock: new DeployLock(new DockerClient(dying), 'web'), dockerHost: undefined }], 'me')
    await expect(fleet.acquire({ ...base, clock: fakeClock() })).rejects.toThrow('was cancelled')
    // The failed acquire already released what it may hold: it read the lock, saw its own token, removed it by id.
    // One host: no engine identity to read (nothing to order), so the create comes first.
    expect(engine.commands[0]).toMatch(/^container create /)
    expect(engine.commands.slice(1)).toEqual(['container inspect web-deploy-lock', expect.stringMatching(/^container rm --force 0+1$/)])
    expect(engine.containers.has('web-deploy-lock')).toBe(false)

    const unreachable = new FakeDockerEngine()
    unreachable.unreachable = true
    const never = new FleetLock([{ lock: new DeployLock(new DockerClient(unreachable), 'web'), dockerHost: undefined }], 'me')
    await expect(never.acquire({ ...base, clock: fakeClock() })).rejects.toThrow(/Cannot connect/)
    // Docker answered that it could not reach the daemon: no container was created, so there is
    // nothing to release and nothing to complain about.
    expect(unreachable.commands).toEqual([expect.stringMatching(/^container create /)])
    await expect(never.release()).resolves.toEqual([])
    expect(unreachable.commands).toHaveLength(1)

    // The SSH connection to the host could not be opened: no docker CLI ran, so the create was
    // never sent. Nothing to look for at the release, and no warning that the post step must retry.
    const sent: string[] = []
    const noSsh = {
      run: async (argv: readonly string[]) => {
        sent.push(argv.join(' '))
        return { exitCode: 255, stdout: '', stderr: 'ssh: connect to host web1 port 22: Connection refused\n', notSent: true }
      }
    }
    const offline = new FleetLock([{ lock: new DeployLock(new DockerClient(noSsh), 'web'), dockerHost: 'ssh://web1' }], 'me')
    await expect(offline.acquire({ ...base, clock: fakeClock() })).rejects.toThrow(/Connection refused/)
    await expect(offline.release()).resolves.toEqual([])
    expect(sent).toEqual([expect.stringMatching(/^container create /)])
  })
})

describe('lock helpers', () => {
  it('creates the lock container with each label as its own argument and detects a name clash', async () => {
    const runner = new RecordingRunner().answer(['container', 'create'], { exitCode: 1, stderr: 'Error response from daemon: Conflict. The container name "/web-deploy-lock" is already in use' })
    const docker = new DockerClient(runner)
    await expect(docker.createLockContainer('web-deploy-lock', LOCK_IMAGE, { 'deploy-action.lock.tag': 'v1; rm -rf /' })).resolves.toBe(false)
    expect(runner.calls[0]?.argv).toEqual([
      'container', 'create', '--pull', 'never', '--name', 'web-deploy-lock', '--network', 'none',
      '--label', 'deploy-action.lock.tag=v1; rm -rf /',
      LOCK_IMAGE, 'deploy-action-lock'
    ])
    const broken = new DockerClient(new RecordingRunner().answer(['container', 'create'], { exitCode: 1, stderr: 'no space left on device' }))
    await expect(broken.createLockContainer('web-deploy-lock', LOCK_IMAGE, {})).rejects.toThrow('no space left on device')
    const created = new DockerClient(new RecordingRunner().answer(['container', 'create'], { stdout: 'abc123\n' }))
    await expect(created.createLockContainer('web-deploy-lock', LOCK_IMAGE, {})).resolves.toBe('abc123')
  })

  it('makes owner tokens unique per run attempt', () => {
    const env = { GITHUB_RUN_ID: '42', GITHUB_RUN_ATTEMPT: '2' }
    const first = lockOwnerToken(env)
    expect(first).toMatch(/^42-2-[0-9a-f]{12}$/)
    expect(lockOwnerToken(env)).not.toBe(first)
  })

  it('leases for an upper bound of a deploy: 15 min, a pull and two health checks per host, 30 min per hook', () => {
    const health = { deadlineMs: 60_000, watchMs: 30_000 }
    expect(lockLeaseMs({ hosts: [undefined], health, hooks: { preDeploy: [] } } as never)).toBe(15 * 60_000 + 5 * 60_000 + 180_000)
    expect(lockLeaseMs({ hosts: ['a', 'b'], health, hooks: { preDeploy: [['migrate']] } } as never)).toBe(15 * 60_000 + 2 * (5 * 60_000 + 180_000) + 30 * 60_000)
  })
})
