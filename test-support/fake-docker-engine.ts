/**
 * A DockerRunner that plays a tiny docker engine in memory: images, and containers with names,
 * labels and a running flag. Enough for unit tests of the deploy lock and the post step's
 * repair, which depend on what docker answers to create (name clashes), inspect, rename and rm.
 */
import type { DockerResult, DockerRunner, DockerRunOptions } from '../src/docker/runner.js'

export interface FakeContainer {
  id: string
  name: string
  image: string
  labels: Record<string, string>
  running: boolean
  exitCode: number
}

/** Flags of `docker container create` that take a value. */
const VALUE_FLAGS = new Set(['--name', '--network', '--label', '--env', '--volume', '--restart', '--stop-timeout', '--publish', '--pull'])

export class FakeDockerEngine implements DockerRunner {
  readonly images = new Set<string>()
  readonly containers = new Map<string, FakeContainer>()
  readonly calls: { argv: string[]; options: DockerRunOptions }[] = []
  /** Names whose `container start` fails, e.g. a port already taken. */
  readonly failingStarts = new Set<string>()
  /** Images whose pull fails. */
  readonly missingInRegistry = new Set<string>()
  /** Set to make every command fail as if the daemon were unreachable. */
  unreachable = false
  private nextId = 1

  /** Adds a container directly, as a previous deploy (or a person) would have left it. */
  add(container: Omit<FakeContainer, 'id' | 'exitCode'> & { exitCode?: number }): FakeContainer {
    const created: FakeContainer = { id: this.newId(), exitCode: 0, ...container }
    this.containers.set(created.name, created)
    this.images.add(created.image)
    return created
  }

  get commands(): string[] {
    return this.calls.map((call) => call.argv.join(' '))
  }

  private newId(): string {
    return (this.nextId++).toString(16).padStart(64, '0')
  }

  private byNameOrId(ref: string): FakeContainer | undefined {
    return this.containers.get(ref) ?? [...this.containers.values()].find((container) => container.id === ref)
  }

  async run(argv: readonly string[], options: DockerRunOptions = {}): Promise<DockerResult> {
    this.calls.push({ argv: [...argv], options })
    if (options.signal?.aborted) throw new Error(`docker ${argv[0] ?? ''} was cancelled`)
    if (this.unreachable) return fail('Cannot connect to the Docker daemon at unix:///nowhere.sock. Is the docker daemon running?')
    const [group, verb, ...rest] = argv
    const ok = (stdout = ''): DockerResult => ({ exitCode: 0, stdout, stderr: '' })

    if (group === 'image' && verb === 'inspect') {
      const ref = rest[rest.length - 1] ?? ''
      if (!this.images.has(ref)) return fail(`Error: No such image: ${ref}`)
      return ok(rest.includes('{{json .RepoDigests}}') ? '[]\n' : 'sha256:fake\n')
    }
    if (group === 'image' && verb === 'import') {
      this.images.add(rest[rest.length - 1] ?? '')
      return ok('sha256:imported\n')
    }
    if (group === 'pull') {
      const ref = rest[rest.length - 1] ?? verb ?? ''
      if (this.missingInRegistry.has(ref)) return fail(`Error response from daemon: manifest for ${ref} not found: manifest unknown`)
      this.images.add(ref)
      return ok()
    }
    if (group !== 'container') return ok()

    switch (verb) {
      case 'create': {
        let name = ''
        let pull = 'missing'
        const labels: Record<string, string> = {}
        let index = 0
        while (index < rest.length && (rest[index] ?? '').startsWith('--')) {
          const flag = rest[index] as string
          const value = rest[index + 1] ?? ''
          if (!VALUE_FLAGS.has(flag)) {
            index++
            continue
          }
          if (flag === '--name') name = value
          if (flag === '--pull') pull = value
          if (flag === '--label') {
            const equals = value.indexOf('=')
            labels[value.slice(0, equals)] = value.slice(equals + 1)
          }
          index += 2
        }
        const image = rest[index] ?? ''
        // With `--pull never` docker fails at once; otherwise the CLI would ask a registry.
        if (!this.images.has(image)) return fail(pull === 'never' ? `Error response from daemon: No such image: ${image}` : `Unable to find image '${image}' locally`)
        const clash = this.containers.get(name)
        if (clash) return fail(`Error response from daemon: Conflict. The container name "/${name}" is already in use by container "${clash.id}".`)
        const container: FakeContainer = { id: this.newId(), name, image, labels, running: false, exitCode: 0 }
        this.containers.set(name, container)
        return ok(`${container.id}\n`)
      }
      case 'inspect': {
        // Like docker: the found ones as one array, a line on stderr and exit 1 for each missing one.
        const refs = rest.filter((word) => !word.startsWith('--'))
        const found = refs.map((ref) => this.byNameOrId(ref))
        const missing = refs.filter((_, index) => !found[index]).map((ref) => `Error: No such container: ${ref}\n`)
        const stdout = JSON.stringify(found.filter((container) => container !== undefined).map(inspectJson))
        return { exitCode: missing.length > 0 ? 1 : 0, stdout: `${stdout}\n`, stderr: missing.join('') }
      }
      case 'rm': {
        const container = this.byNameOrId(rest[rest.length - 1] ?? '')
        if (container) this.containers.delete(container.name)
        return container ? ok() : fail(`Error response from daemon: No such container: ${rest[rest.length - 1] ?? ''}`)
      }
      case 'rename': {
        const [from = '', to = ''] = rest
        const container = this.byNameOrId(from)
        if (!container) return fail(`Error response from daemon: No such container: ${from}`)
        if (this.containers.has(to)) return fail(`Error response from daemon: Conflict. The container name "/${to}" is already in use`)
        this.containers.delete(container.name)
        container.name = to
        this.containers.set(to, container)
        return ok()
      }
      case 'start': {
        const container = this.byNameOrId(rest[rest.length - 1] ?? '')
        if (!container) return fail('Error response from daemon: No such container')
        if (this.failingStarts.has(container.name)) {
          container.exitCode = 128
          return fail('Error response from daemon: driver failed programming external connectivity: address already in use')
        }
        container.running = true
        return ok()
      }
      case 'stop': {
        const container = this.byNameOrId(rest[rest.length - 1] ?? '')
        if (container) container.running = false
        return container ? ok() : fail('Error response from daemon: No such container')
      }
      case 'logs':
        return ok('app: log line\n')
      default:
        return ok()
    }
  }
}

function fail(stderr: string): DockerResult {
  return { exitCode: 1, stdout: '', stderr: `${stderr}\n` }
}

function inspectJson(container: FakeContainer): unknown {
  return {
    Id: container.id,
    Name: `/${container.name}`,
    Image: 'sha256:image',
    RestartCount: 0,
    Config: { Image: container.image, Labels: container.labels },
    State: {
      Status: container.running ? 'running' : container.exitCode === 0 ? 'created' : 'exited',
      Running: container.running,
      Restarting: false,
      ExitCode: container.exitCode,
      StartedAt: '2024-01-01T00:00:00Z'
    }
  }
}
