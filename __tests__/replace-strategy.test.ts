import { describe, expect, it } from '@jest/globals'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { Label } from '../src/constants.js'
import { DockerClient } from '../src/docker/client.js'
import type { DockerRunOptions } from '../src/docker/runner.js'
import type { DeploySettings } from '../src/settings.js'
import { ReplaceStrategy } from '../src/strategies/replace.js'
import { SwitchNotStartedError } from '../src/strategies/strategy.js'
import { FakeDockerEngine } from '../test-support/fake-docker-engine.js'
import { testSettings } from '../test-support/settings.js'

const IMAGE = '127.0.0.1:5999/acme/web'

const settings: DeploySettings = testSettings({ image: IMAGE })

const V2 = { tag: 'v2', digest: 'sha256:2222' }

/** A fake engine whose commands take a turn of the event loop, and which logs when each starts and ends. */
class TimedEngine extends FakeDockerEngine {
  readonly events: string[] = []

  override async run(argv: readonly string[], options: DockerRunOptions = {}) {
    const named = argv.indexOf('--name')
    const command = `${argv.slice(0, 2).join(' ')} ${named >= 0 ? argv[named + 1] : argv.at(-1)}`
    this.events.push(`start ${command}`)
    await nextTurn()
    const result = await super.run(argv, options)
    await nextTurn()
    this.events.push(`end ${command}`)
    return result
  }
}

function engineWith(containers: { name: string; tag: string; running: boolean }[]): TimedEngine {
  const engine = new TimedEngine()
  engine.images.add(`${IMAGE}:v2`)
  for (const { name, tag, running } of containers) engine.add({ name, image: `${IMAGE}:${tag}`, running, labels: { [Label.Tag]: tag } })
  return engine
}

/** What each container name holds now: `web=v2 (running)`. */
function state(engine: FakeDockerEngine): string[] {
  return [...engine.containers.values()]
    .map((container) => `${container.name}=${container.labels[Label.Tag] ?? '?'}${container.running ? ' (running)' : ''}`)
    .sort()
}

/** The argv of every command, with the long create shortened to its name. */
/** The stream that follows the new version from its create, by the id docker returned, replaying what docker holds. */
const FOLLOW_NEW = 'events: the created container, by id, --since 1'

function commands(engine: FakeDockerEngine): string[] {
  return engine.commands.map((command) =>
    command
      .replace(/^(container create --name \S+) .*$/, '$1 …')
      .replace(/^events --format \{\{json \.\}\} --filter type=container --filter container=[0-9a-f]{64} (--filter event=\S+ )+--since 1$/, FOLLOW_NEW)
  )
}

describe('ReplaceStrategy.switchTo', () => {
  it('upgrade with nothing kept yet: one inspect for all names, the new container created before the old one is stopped', async () => {
    const engine = engineWith([{ name: 'web', tag: 'v1', running: true }])
    const strategy = new ReplaceStrategy(settings, new DockerClient(engine))
    await strategy.switchTo(V2)

    expect(commands(engine)).toEqual([
      'container inspect web-next web web-previous web-previous-older',
      'container create --name web-next …',
      // Subscribed before the old version stops and the new one starts: a crash at start is an event.
      FOLLOW_NEW,
      'container stop web',
      'container rename web web-previous',
      'container rename web-next web',
      'container start web'
    ])
    expect(engine.commands[2]).toContain(`container=${engine.containers.get('web')?.id ?? 'none'}`)
    expect(state(engine)).toEqual(['web-previous=v1', 'web=v2 (running)'])
    // Nothing was moved aside and the inspect saw no older previous: the clean-up has nothing to do.
    // A probe no health check took over ends with it.
    expect(engine.openStreams).toBe(1)
    await strategy.finalize()
    expect(engine.commands).toHaveLength(7)
    expect(engine.openStreams).toBe(0)
  })

  it('steady state: moves the stopped previous aside while the new container is created, and the clean-up removes it', async () => {
    const engine = engineWith([
      { name: 'web', tag: 'v1', running: true },
      { name: 'web-previous', tag: 'v0', running: false }
    ])
    const strategy = new ReplaceStrategy(settings, new DockerClient(engine))
    await strategy.switchTo(V2)

    expect(commands(engine)).toEqual([
      'container inspect web-next web web-previous web-previous-older',
      'container create --name web-next …',
      'container rename web-previous web-previous-older',
      FOLLOW_NEW,
      'container stop web',
      'container rename web web-previous',
      'container rename web-next web',
      'container start web'
    ])
    // The create and the rename ran at the same time; the running container was touched only after both.
    const events = engine.events
    expect(events.indexOf('start container rename web-previous-older')).toBeLessThan(events.indexOf('end container create web-next'))
    expect(events.indexOf('start container stop web')).toBeGreaterThan(events.indexOf('end container create web-next'))
    expect(events.indexOf('start container stop web')).toBeGreaterThan(events.indexOf('end container rename web-previous-older'))
    expect(state(engine)).toEqual(['web-previous-older=v0', 'web-previous=v1', 'web=v2 (running)'])

    await strategy.finalize()
    expect(engine.commands.at(-1)).toBe('container rm --force web-previous-older')
    expect(state(engine)).toEqual(['web-previous=v1', 'web=v2 (running)'])
  })

  it('a failed create stops the switch before anything that serves is touched, and puts the kept previous back', async () => {
    const engine = engineWith([
      { name: 'web', tag: 'v1', running: true },
      { name: 'web-previous', tag: 'v0', running: false }
    ])
    engine.images.delete(`${IMAGE}:v2`)
    const strategy = new ReplaceStrategy(settings, new DockerClient(engine))

    await expect(strategy.switchTo(V2)).rejects.toThrow(/Unable to find image/)
    expect(commands(engine)).toEqual([
      'container inspect web-next web web-previous web-previous-older',
      'container create --name web-next …',
      'container rename web-previous web-previous-older',
      'container rename web-previous-older web-previous'
    ])
    expect(state(engine)).toEqual(['web-previous=v0', 'web=v1 (running)'])
  })

  it('a container.network this host does not have stops the switch before anything that serves is touched', async () => {
    // docker accepts a missing network at create and refuses it only at start, after the stop.
    const engine = engineWith([{ name: 'web', tag: 'v1', running: true }])
    const known = new Set(['frontend'])
    const run = engine.run.bind(engine)
    engine.run = async (argv, options = {}) => {
      if (argv[0] !== 'network' || argv[1] !== 'inspect') return run(argv, options)
      engine.calls.push({ argv: [...argv], options })
      const name = argv[2] ?? ''
      return known.has(name)
        ? { exitCode: 0, stdout: `[{"Id":"n1","Name":"${name}","Labels":{}}]\n`, stderr: '' }
        : { exitCode: 1, stdout: '[]\n', stderr: `Error response from daemon: network ${name} not found\n` }
    }

    const missing = new ReplaceStrategy({ ...settings, container: { ...settings.container, network: 'backend' } }, new DockerClient(engine))
    const error = await missing.switchTo(V2).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(SwitchNotStartedError)
    expect((error as Error).message).toBe('the network backend (container.network) does not exist on local; create it with `docker network create backend` there, or change container.network')
    expect(commands(engine)).toEqual(['container inspect web-next web web-previous web-previous-older', 'network inspect backend'])
    expect(state(engine)).toEqual(['web=v1 (running)'])

    // A network the host has costs one look, and the switch goes on.
    await new ReplaceStrategy({ ...settings, container: { ...settings.container, network: 'frontend' } }, new DockerClient(engine)).switchTo(V2)
    expect(state(engine)).toEqual(['web-previous=v1', 'web=v2 (running)'])
  })

  it('a leftover -next, a running previous and an older previous: each handled in order, as before', async () => {
    const engine = engineWith([
      { name: 'web', tag: 'v1', running: true },
      { name: 'web-next', tag: 'v9', running: false },
      { name: 'web-previous', tag: 'v0', running: true },
      { name: 'web-previous-older', tag: 'v-1', running: false }
    ])
    const leftover = engine.containers.get('web-next')?.id
    const strategy = new ReplaceStrategy(settings, new DockerClient(engine))
    await strategy.switchTo(V2)

    expect(commands(engine)).toEqual([
      'container inspect web-next web web-previous web-previous-older',
      // By its id: never a container that took the name since the look.
      `container rm --force ${leftover}`,
      'container create --name web-next …',
      'container rm --force web-previous-older',
      'container stop web-previous',
      'container rename web-previous web-previous-older',
      FOLLOW_NEW,
      'container stop web',
      'container rename web web-previous',
      'container rename web-next web',
      'container start web'
    ])
    // Strictly one after another: the create has ended before the older previous is removed.
    expect(engine.events.indexOf('start container rm web-previous-older')).toBeGreaterThan(engine.events.indexOf('end container create web-next'))
    expect(state(engine)).toEqual(['web-previous-older=v0', 'web-previous=v1', 'web=v2 (running)'])
  })

  it('a running container under the -next name is reported, never removed: nothing is touched', async () => {
    const engine = engineWith([
      { name: 'web', tag: 'v1', running: true },
      { name: 'web-next', tag: 'v9', running: true }
    ])
    const error = await new ReplaceStrategy(settings, new DockerClient(engine)).switchTo(V2).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(SwitchNotStartedError)
    expect((error as Error).message).toMatch(/a running container already holds the name web-next on local/)
    expect(state(engine)).toEqual(['web-next=v9 (running)', 'web=v1 (running)'])
  })

  it('first deploy: no stop and no rename of anything that was running', async () => {
    const engine = engineWith([])
    const strategy = new ReplaceStrategy(settings, new DockerClient(engine))
    await strategy.switchTo(V2)
    expect(commands(engine)).toEqual([
      'container inspect web-next web web-previous web-previous-older',
      'container create --name web-next …',
      FOLLOW_NEW,
      'container rename web-next web',
      'container start web'
    ])
    await strategy.finalize()
    expect(engine.commands).toHaveLength(5)
    expect(engine.openStreams).toBe(0)
  })

  it('a clean-up without a switch before it still removes the older previous', async () => {
    const engine = engineWith([{ name: 'web-previous-older', tag: 'v0', running: false }])
    await new ReplaceStrategy(settings, new DockerClient(engine)).finalize()
    expect(engine.commands).toEqual(['container rm --force web-previous-older'])
  })

  it('stops at docker’s own error when the engine cannot be reached, before any change', async () => {
    const engine = engineWith([{ name: 'web', tag: 'v1', running: true }])
    engine.unreachable = true
    await expect(new ReplaceStrategy(settings, new DockerClient(engine)).switchTo(V2)).rejects.toThrow(/Cannot connect to the Docker daemon/)
    expect(engine.commands).toEqual(['container inspect web-next web web-previous web-previous-older'])
  })
})
