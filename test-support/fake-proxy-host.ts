/**
 * An in-memory docker host for unit tests of `strategy: proxy`: containers, user networks, images,
 * `docker cp` in and out of the proxy, and `docker exec -i <proxy> nc …` answered by a small
 * HAProxy stand-in (runtime API: `show servers state`, `show stat`, `set server … state`,
 * `enable/disable health`, `shutdown sessions`) and by the slots themselves (HTTP over `nc`).
 *
 * Containers are found by name or by the id `container create` printed (a full id, or a prefix of
 * at least 12 characters); ids look like docker's (64 hex digits). Removing the proxy container
 * takes HAProxy's runtime state with it: a new proxy starts from its config file, and without one
 * it exits at once, as HAProxy does.
 *
 * Only the commands the proxy strategy sends are understood; anything else fails loudly. Each
 * image's behaviour is chosen by its tag: `*never*` never listens, `*exits*` exits at start,
 * `*wrong-body*` answers `/health` with `not ok`, anything else is healthy.
 */
import { createHash } from 'node:crypto'
import type { DockerResult, DockerRunner, DockerRunOptions } from '../src/docker/runner.js'
import { singleFileTar } from '../src/proxy/config-archive.js'

type Admin = 'ready' | 'drain' | 'maint'

interface FakeContainer {
  id: string
  name: string
  image: string
  labels: Record<string, string>
  network?: string
  publish: string[]
  running: boolean
  status: 'created' | 'running' | 'exited'
  exitCode: number
  ip?: string
  files: Record<string, string>
  /** `--restart` as given at create. */
  restart?: string
  /** When it was created and last started (ISO, a logical clock one second a step). */
  created?: string
  startedAt?: string
}

const VALUE_FLAGS = new Set(['--name', '--network', '--env', '--label', '--publish', '--restart', '--stop-timeout', '--stop-signal', '--volume', '--pull', '--dns-option'])

/** The live slot that the config file in `container` (a proxy or a check proxy) names. */
function liveSlotInConfig(container: FakeContainer | undefined): string | undefined {
  return /Live slot: (\w+)\./.exec(container?.files['haproxy.cfg'] ?? '')?.[1]
}

export class FakeProxyHost implements DockerRunner {
  readonly containers = new Map<string, FakeContainer>()
  readonly networks = new Map<string, Record<string, string>>()
  readonly images = new Set<string>()
  /** Host ports something else listens on. */
  readonly takenPorts = new Set<number>()
  /** Every runtime-API line, in order. */
  readonly runtimeLines: string[] = []
  /** Each time the routed (admin-ready) slots changed: which were ready. */
  readonly routingHistory: string[] = []
  readonly commands: string[] = []
  /** The containers reloaded with `kill --signal USR2`, in order. */
  readonly reloads: string[] = []
  private admin: Record<string, Admin> = {}
  private checks: Record<string, boolean> = {}
  /** Servers the running worker started with `no-check`: their checks cannot be turned on. */
  private noCheck: Record<string, boolean> = {}
  private nextId = 1
  private tick = 0

  constructor(images: string[] = []) {
    for (const image of images) this.images.add(image)
  }

  async run(argv: readonly string[], options: DockerRunOptions = {}): Promise<DockerResult> {
    this.commands.push(argv.join(' '))
    const [group, verb, ...rest] = argv
    if (group === 'container' && verb === 'inspect') return this.inspect(rest)
    if (group === 'container' && verb === 'create') return this.create(rest)
    if (group === 'container' && verb === 'start') return this.start(rest[0] ?? '')
    if (group === 'container' && verb === 'stop') return this.stop(rest[rest.length - 1] ?? '')
    if (group === 'container' && verb === 'rm') return this.remove(rest.filter((arg) => !arg.startsWith('-')))
    if (group === 'container' && verb === 'logs') return ok(`logs of ${rest[rest.length - 1] ?? ''}`)
    if (group === 'container' && verb === 'exec' && rest[1] === 'kill') return this.kill(['--signal', (rest[2] ?? '').replace(/^-/, ''), rest[0] ?? ''])
    if (group === 'container' && verb === 'exec') return this.exec(rest, options.input ?? '')
    if (group === 'container' && verb === 'cp') return this.copy(rest, options.input ?? '')
    if (group === 'container' && verb === 'rename') return this.rename(rest[0] ?? '', rest[1] ?? '')
    if (group === 'network') return this.network(verb ?? '', rest)
    if (group === 'image' && verb === 'inspect') {
      const reference = rest[rest.length - 1] ?? ''
      if (!this.images.has(reference)) return fail(`Error: No such image: ${reference}`)
      return ok(rest.includes('{{json .RepoDigests}}') ? JSON.stringify([`${reference.split(':')[0] ?? ''}@sha256:${'d'.repeat(64)}`]) : 'sha256:1')
    }
    if (group === 'pull') {
      this.images.add(argv[argv.length - 1] ?? '')
      return ok('')
    }
    return fail(`fake proxy host: unsupported command docker ${argv.join(' ')}`)
  }

  /** True when `ref` is the id (or an id prefix of 12 or more characters) of one of its containers. */
  holdsId(ref: string): boolean {
    return this.byId(ref) !== undefined
  }

  /** The container of this name, or of this id (full, or a prefix of 12 or more characters). */
  find(ref: string): FakeContainer | undefined {
    return this.containers.get(ref) ?? this.byId(ref)
  }

  private byId(ref: string): FakeContainer | undefined {
    if (!/^[0-9a-f]{12,64}$/.test(ref)) return undefined
    return [...this.containers.values()].find((c) => c.id === ref || c.id.startsWith(ref))
  }

  private stamp(): string {
    return new Date(Date.UTC(2026, 0, 1) + ++this.tick * 1000).toISOString()
  }

  /** The live slot the proxy's config file names. */
  configLive(): string | undefined {
    return liveSlotInConfig(this.containers.get(this.proxyName()))
  }

  /**
   * What users get now: the tag of the one slot HAProxy routes to, when the proxy runs and that
   * slot's container runs and answers; undefined otherwise (nothing, or two slots, take requests).
   */
  servingTag(): string | undefined {
    if (!this.containers.get(this.proxyName())?.running) return undefined
    const ready = ['blue', 'green'].filter((slot) => this.admin[slot] === 'ready')
    if (ready.length !== 1) return undefined
    const slot = ready[0] as string
    return this.up(slot) ? this.slotContainer(slot)?.labels['deploy-action.tag'] : undefined
  }

  /** The slot HAProxy routes to (admin state ready), when exactly one is. */
  routedSlot(): string | undefined {
    const ready = ['blue', 'green'].filter((slot) => this.admin[slot] === 'ready')
    return ready.length === 1 ? ready[0] : undefined
  }

  /** `name: status` of every container, sorted. */
  describe(): string[] {
    return [...this.containers.values()].map((c) => `${c.name}: ${c.status}${c.labels['deploy-action.tag'] ? ` ${c.labels['deploy-action.tag']}` : ''}`).sort()
  }

  private proxyName(): string {
    return [...this.containers.keys()].find((name) => name.endsWith('-proxy')) ?? ''
  }

  private inspect(names: string[]): DockerResult {
    const found = names.map((name) => this.find(name))
    const json = found.flatMap((c) =>
      c
        ? [
            {
              Id: c.id,
              Name: `/${c.name}`,
              Image: 'sha256:1',
              Created: c.created ?? '2026-01-01T00:00:00Z',
              RestartCount: 0,
              HostConfig: { RestartPolicy: { Name: c.restart ?? 'no' } },
              NetworkSettings: { Networks: c.network ? { [c.network]: { IPAddress: c.running ? (c.ip ?? '') : '' } } : {} },
              Config: { Image: c.image, Labels: c.labels },
              State: { Status: c.status, Running: c.running, Restarting: false, ExitCode: c.exitCode, StartedAt: c.startedAt ?? '0001-01-01T00:00:00Z' }
            }
          ]
        : []
    )
    const missing = names.filter((_, index) => !found[index])
    return { exitCode: missing.length > 0 ? 1 : 0, stdout: JSON.stringify(json), stderr: missing.map((name) => `Error: No such container: ${name}`).join('\n') }
  }

  private create(args: string[]): DockerResult {
    // 64 hex digits like docker's, distinct in their first 12 (the short form).
    const id = createHash('sha256').update(`fake proxy host container ${this.nextId++}`).digest('hex')
    const container: FakeContainer = { id, name: '', image: '', labels: {}, publish: [], running: false, status: 'created', exitCode: 0, files: {}, created: this.stamp() }
    for (let index = 0; index < args.length; index++) {
      const arg = args[index] ?? ''
      if (VALUE_FLAGS.has(arg)) {
        const value = args[++index] ?? ''
        if (arg === '--name') container.name = value
        if (arg === '--network') container.network = value
        if (arg === '--publish') container.publish.push(value)
        if (arg === '--restart') container.restart = value
        if (arg === '--label') container.labels[value.slice(0, value.indexOf('='))] = value.slice(value.indexOf('=') + 1)
      } else if (!arg.startsWith('--')) {
        container.image = arg
        break
      }
    }
    if (this.containers.has(container.name)) return fail(`Error: Conflict. The container name "/${container.name}" is already in use`)
    if (container.network && !this.networks.has(container.network)) return fail(`Error: network ${container.network} not found`)
    if (!this.images.has(container.image)) return fail(`Unable to find image '${container.image}' locally`)
    this.containers.set(container.name, container)
    return ok(container.id)
  }

  private start(ref: string): DockerResult {
    const c = this.find(ref)
    if (!c) return fail(`Error: No such container: ${ref}`)
    const name = c.name
    for (const publish of c.publish) {
      const port = Number(publish.split(':').slice(-2)[0])
      if (this.takenPorts.has(port)) {
        return fail(`Error response from daemon: driver failed programming external connectivity on endpoint ${name}: listen tcp4 127.0.0.1:${port}: bind: address already in use`)
      }
    }
    // HAProxy without its config file exits at once ("cannot open configuration file").
    if (c.image.includes('exits') || (name === this.proxyName() && c.files['haproxy.cfg'] === undefined)) {
      Object.assign(c, { running: false, status: 'exited', exitCode: 1, startedAt: this.stamp() })
      return ok('')
    }
    Object.assign(c, { running: true, status: 'running', exitCode: 0, ip: `10.253.0.${this.nextId++}`, startedAt: this.stamp() })
    if (name === this.proxyName()) this.bootHaproxy()
    return ok('')
  }

  /** `exec <proxy> kill -USR2 1`: HAProxy's seamless reload; the new worker runs what the file says. */
  private kill(args: string[]): DockerResult {
    const [flag, signal, ref = ''] = args
    if (flag !== '--signal' || signal !== 'USR2') return fail(`unsupported kill ${args.join(' ')}`)
    const c = this.find(ref)
    if (!c) return fail(`Error: No such container: ${ref}`)
    if (!c.running) return fail(`Error response from daemon: cannot kill container: ${ref}: container ${c.id} is not running`)
    this.reloads.push(c.name)
    if (c.name === this.proxyName()) this.bootHaproxy()
    return ok('')
  }

  private rename(from: string, to: string): DockerResult {
    const c = this.find(from)
    if (!c) return fail(`Error: No such container: ${from}`)
    if (this.containers.has(to)) return fail(`Error response from daemon: Conflict. The container name "/${to}" is already in use`)
    const wasProxy = c.name === this.proxyName()
    this.containers.delete(c.name)
    c.name = to
    this.containers.set(to, c)
    // A proxy moved aside keeps serving in a real engine; this stand-in follows the one named <name>-proxy.
    if (wasProxy && c.name !== this.proxyName()) this.noteRouting()
    return ok('')
  }

  private stop(ref: string): DockerResult {
    const c = this.find(ref)
    if (!c) return fail(`Error: No such container: ${ref}`)
    Object.assign(c, { running: false, status: 'exited' })
    return ok('')
  }

  private remove(refs: string[]): DockerResult {
    const errors: string[] = []
    for (const ref of refs) {
      const c = this.find(ref)
      if (!c) {
        errors.push(`Error: No such container: ${ref}`)
        continue
      }
      // Only a running proxy has HAProxy's runtime state (one created and never started has none).
      const wasProxy = c.name === this.proxyName() && c.running
      this.containers.delete(c.name)
      if (wasProxy) {
        // HAProxy's runtime state goes with its container; a new proxy boots from its config file.
        this.admin = {}
        this.checks = {}
        this.noteRouting()
      }
    }
    return errors.length > 0 ? fail(errors.join('\n')) : ok('')
  }

  private network(verb: string, args: string[]): DockerResult {
    const name = args[args.length - 1] ?? ''
    if (verb === 'inspect') return this.networks.has(name) ? ok(JSON.stringify([{ Id: 'n1', Name: name, Labels: this.networks.get(name) }])) : fail(`Error: No such network: ${name}`)
    if (verb === 'create') {
      const labels: Record<string, string> = {}
      args.forEach((arg, index) => {
        const value = args[index + 1] ?? ''
        if (arg === '--label') labels[value.slice(0, value.indexOf('='))] = value.slice(value.indexOf('=') + 1)
      })
      this.networks.set(name, labels)
      return ok('n1')
    }
    if (verb === 'rm') {
      if ([...this.containers.values()].some((c) => c.network === name)) return fail(`Error: network ${name} has active endpoints`)
      return this.networks.delete(name) ? ok('') : fail(`Error: No such network: ${name}`)
    }
    return fail(`unsupported network ${verb}`)
  }

  private copy(args: string[], input: string): DockerResult {
    if (args[0] === '-') {
      const [name = ''] = (args[1] ?? '').split(':')
      const c = this.find(name)
      if (!c) return fail(`Error: No such container: ${name}`)
      const size = parseInt(input.slice(124, 136).replace(/\0/g, '').trim(), 8)
      c.files[input.slice(0, 100).replace(/\0+$/, '')] = input.slice(512, 512 + size)
      return ok('')
    }
    const [name = ''] = (args[0] ?? '').split(':')
    const file = this.find(name)?.files['haproxy.cfg']
    if (file === undefined) return fail(`Error: No such container:path: ${args[0] ?? ''}`)
    return ok(singleFileTar('haproxy.cfg', file))
  }

  private exec(args: string[], input: string): DockerResult {
    const [flag, name = '', command, ...rest] = args
    if (flag !== '--interactive' || command !== 'nc') return fail(`unsupported exec ${args.join(' ')}`)
    const proxy = this.find(name)
    if (!proxy?.running) return fail(`Error response from daemon: container ${name} is not running`)
    if (rest[0] === '127.0.0.1' && rest[1] === '9999') {
      // HAProxy resolves its live slot's name when it boots; a slot container that is gone has no
      // name, and the lookup waits for DNS time-outs: until then nothing listens (as measured on a
      // host without outside DNS). Modelled for the check proxy, whose live slot is the new version.
      if (proxy.labels['deploy-action.role'] === 'proxy-check' && !this.liveSlotOf(proxy)?.running) return fail(`nc: can't connect to remote host (127.0.0.1): Connection refused`)
      return ok(this.runtimeApi(input))
    }
    // nc -w N <slot container> <port>
    const target = this.containers.get(rest[2] ?? '')
    if (!target?.running) return fail(`nc: bad address '${rest[2] ?? ''}'`)
    if (target.image.includes('never')) return fail(`nc: can't connect to remote host (${target.ip ?? ''}): Connection refused`)
    const body = target.image.includes('wrong-body') ? 'not ok' : 'status: green'
    return ok(`HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n${body}`)
  }

  /** The slot container that `proxy`'s config file names live. */
  private liveSlotOf(proxy: FakeContainer): FakeContainer | undefined {
    const live = liveSlotInConfig(proxy)
    return live === undefined ? undefined : this.slotContainer(live)
  }

  /** At start (or a reload) HAProxy reads the config: the live slot ready and unchecked (`no-check`), the other in MAINT. */
  private bootHaproxy(): void {
    const live = this.configLive() ?? 'blue'
    const file = this.containers.get(this.proxyName())?.files['haproxy.cfg'] ?? ''
    this.admin = { blue: live === 'blue' ? 'ready' : 'maint', green: live === 'green' ? 'ready' : 'maint' }
    this.noCheck = { blue: /server blue .* no-check/.test(file), green: /server green .* no-check/.test(file) }
    this.checks = { blue: !this.noCheck.blue, green: !this.noCheck.green }
    this.noteRouting()
  }

  private slotContainer(slot: string): FakeContainer | undefined {
    return [...this.containers.values()].find((c) => c.labels['deploy-action.slot'] === slot)
  }

  private runtimeApi(input: string): string {
    this.runtimeLines.push(input.trim())
    const answers: string[] = []
    for (const command of input.trim().split(/;\s*/)) {
      const set = /^set server app\/(blue|green) state (ready|drain|maint)$/.exec(command)
      const health = /^(enable|disable) health app\/(blue|green)$/.exec(command)
      if (set?.[1] && set[2]) {
        this.admin[set[1]] = set[2] as Admin
        answers.push('\n')
      } else if (health?.[1] && health[2]) {
        // A server started with `no-check` has no check to turn on, as HAProxy answers.
        if (this.noCheck[health[2]]) {
          answers.push('Health check was not configured.\n\n')
          continue
        }
        this.checks[health[2]] = health[1] === 'enable'
        answers.push('\n')
      } else if (/^shutdown sessions server app\/(blue|green)$/.test(command)) {
        answers.push('\n')
      } else if (command === 'show servers state app') {
        const line = (slot: string, id: number): string => {
          const admin = this.admin[slot] === 'maint' ? 1 : this.admin[slot] === 'drain' ? 8 : 0
          return `3 app ${id} ${slot} ${this.slotContainer(slot)?.ip ?? '-'} ${this.up(slot) ? 2 : 0} ${admin} 1 1 1 6 3 4 6 0 0 0 - 3000 - 0 0 - - 0`
        }
        answers.push(`1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight\n${line('blue', 1)}\n${line('green', 2)}\n\n`)
      } else if (command === 'show stat app 4 -1') {
        const row = (slot: string): string => {
          const up = this.up(slot)
          const status = this.admin[slot] === 'maint' ? 'MAINT' : !this.checks[slot] ? 'no check' : !up ? 'DOWN' : this.admin[slot] === 'drain' ? 'DRAIN' : 'UP'
          const check = this.admin[slot] === 'maint' || !this.checks[slot] ? '' : up ? 'L7OK' : 'L4CON'
          const c = this.slotContainer(slot)
          return `app,${slot},0,0,${status},${check},${c?.running ? `${c.ip ?? ''}:3000` : ''}`
        }
        answers.push(`# pxname,svname,qcur,scur,status,check_status,addr\n${row('blue')}\n${row('green')}\n\n`)
      } else {
        answers.push('Unknown command.\n')
      }
    }
    this.noteRouting()
    return answers.join('')
  }

  /** HAProxy's checks of `slot` pass: its container runs and answers on its port. */
  private up(slot: string): boolean {
    const c = this.slotContainer(slot)
    return Boolean(c?.running && !c.image.includes('never'))
  }

  private noteRouting(): void {
    const ready = ['blue', 'green'].filter((slot) => this.admin[slot] === 'ready').map((slot) => `${slot}=${this.slotContainer(slot)?.labels['deploy-action.tag'] ?? '?'}`)
    const entry = ready.join(',') || 'none'
    if (this.routingHistory[this.routingHistory.length - 1] !== entry) this.routingHistory.push(entry)
  }
}

function ok(stdout: string): DockerResult {
  return { exitCode: 0, stdout, stderr: '' }
}

function fail(stderr: string): DockerResult {
  return { exitCode: 1, stdout: '', stderr }
}
