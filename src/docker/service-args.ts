/**
 * Argv for `docker service create` and `docker service update`: the container settings of the
 * config mapped to Swarm's service flags. Every value was validated against docker's grammar when
 * the config was loaded and goes into its own argument, so none of them can turn into an option.
 * Secrets appear only by name (`--env NAME`, `--env-add NAME`): the docker CLI copies the value
 * from its own environment, exactly as `docker run -e NAME` does, so values never reach argv.
 */
import type { ContainerSettings, SwarmSettings } from '../settings.js'
import type { ServiceInfo, ServicePort } from './service-client.js'

/** A service to create or update: the image to run and everything the flags need. */
export interface ServiceSpec {
  name: string
  /** `repository:tag` */
  imageRef: string
  container: ContainerSettings
  swarm: SwarmSettings
  /** Service labels the action writes (`deploy-action.*`: tag, digest, commit…). */
  labels: Record<string, string>
  /**
   * What Swarm does when a task fails during the update: `rollback` puts the previous spec back
   * (`rollback.on-failure: true`); `pause` stops the update where it is, so the failed version
   * stays for inspection (`rollback.on-failure: false`).
   */
  failureAction: 'rollback' | 'pause'
}

/** Labels on the service that this action owns; others are left alone on update. */
const OWN_LABEL_PREFIX = 'deploy-action.'

/**
 * Argv for `docker service create`. `--detach` returns as soon as Swarm accepted the service; the
 * strategy then watches the tasks itself, with its own deadline, instead of the CLI's progress
 * display, which never returns for a task that keeps failing.
 */
export function buildServiceCreateArgv(spec: ServiceSpec): string[] {
  const { container } = spec
  const argv = ['service', 'create', '--detach', '--quiet', '--with-registry-auth', '--name', spec.name]
  if (container.network) argv.push('--network', container.network)
  if (container.init) argv.push('--init')
  for (const [key, value] of sortedEntries(container.env)) argv.push('--env', `${key}=${value}`)
  for (const name of container.secrets) argv.push('--env', name)
  for (const volume of container.volumes) argv.push('--mount', volumeToMount(volume))
  for (const port of container.ports) argv.push('--publish', portToPublish(port))
  for (const [key, value] of sortedEntries(container.labels)) argv.push('--container-label', `${key}=${value}`)
  for (const [key, value] of sortedEntries(spec.labels)) argv.push('--label', `${key}=${value}`)
  argv.push(...commonServiceArgs(spec))
  argv.push(spec.imageRef)
  // On create, the words after the image become the task's Args (docker run's CMD override).
  if (container.command) argv.push(...container.command)
  return argv
}

/**
 * Argv for `docker service update`, which changes a spec by adding and removing entries: what the
 * config lists is added (replacing an entry with the same key, target or port), and what the
 * running spec holds beyond that is removed, so the service ends up exactly as configured.
 * `--force` makes Swarm replace every task even when only a label changed: without it such an
 * update never starts, Swarm leaves no UpdateStatus, and the deploy could not learn its outcome.
 * The network is set at create only: changing it needs `--network-rm`/`--network-add` by hand.
 */
export function buildServiceUpdateArgv(spec: ServiceSpec, current: ServiceInfo): string[] {
  const { container } = spec
  const argv = ['service', 'update', '--detach', '--quiet', '--with-registry-auth', '--force', '--image', spec.imageRef]
  argv.push(`--init=${container.init ? 'true' : 'false'}`)

  const wantedEnv = new Set([...Object.keys(container.env), ...container.secrets])
  for (const key of unique(current.env.map((entry) => entry.split('=')[0] ?? ''))) {
    if (key && !wantedEnv.has(key)) argv.push('--env-rm', key)
  }
  for (const [key, value] of sortedEntries(container.env)) argv.push('--env-add', `${key}=${value}`)
  for (const name of container.secrets) argv.push('--env-add', name)

  const wantedTargets = new Set(container.volumes.map((volume) => volumeParts(volume).target))
  for (const target of current.mountTargets) if (!wantedTargets.has(target)) argv.push('--mount-rm', target)
  for (const volume of container.volumes) argv.push('--mount-add', volumeToMount(volume))

  const wantedPorts = new Set(container.ports.map((port) => portKey(parsePort(port))))
  for (const port of current.ports) {
    if (!wantedPorts.has(portKey(port))) argv.push('--publish-rm', `${port.targetPort}/${port.protocol}`)
  }
  for (const port of container.ports) argv.push('--publish-add', portToPublish(port))

  for (const key of Object.keys(current.containerLabels).sort()) {
    if (!Object.hasOwn(container.labels, key)) argv.push('--container-label-rm', key)
  }
  for (const [key, value] of sortedEntries(container.labels)) argv.push('--container-label-add', `${key}=${value}`)

  // Only the action's own labels: a release label of the previous deploy (e.g. its commit) must
  // not stay behind to describe a release it does not belong to.
  for (const key of Object.keys(current.labels).sort()) {
    if (key.startsWith(OWN_LABEL_PREFIX) && !Object.hasOwn(spec.labels, key)) argv.push('--label-rm', key)
  }
  for (const [key, value] of sortedEntries(spec.labels)) argv.push('--label-add', `${key}=${value}`)

  const wantedArgs = container.command ?? []
  if (!sameList(wantedArgs, current.args)) argv.push('--args', shellWords(wantedArgs))

  argv.push(...commonServiceArgs(spec))
  argv.push(spec.name)
  return argv
}

/** Flags that read the same on create and update: replicas, update policy, stop grace, restart. */
function commonServiceArgs(spec: ServiceSpec): string[] {
  const { swarm, container } = spec
  const argv: string[] = []
  if (swarm.replicas !== undefined) argv.push('--replicas', String(swarm.replicas))
  if (swarm.parallelism !== undefined) argv.push('--update-parallelism', String(swarm.parallelism))
  if (swarm.delayMs !== undefined) argv.push('--update-delay', goDuration(swarm.delayMs))
  if (swarm.order !== undefined) argv.push('--update-order', swarm.order)
  if (swarm.monitorMs !== undefined) argv.push('--update-monitor', goDuration(swarm.monitorMs))
  // Always explicit: the action reads the outcome from UpdateStatus, so it must know what Swarm
  // does on a failed task, whatever an earlier update or a person left in the spec.
  argv.push('--update-failure-action', spec.failureAction)
  if (container.stopTimeoutMs !== undefined) argv.push('--stop-grace-period', goDuration(container.stopTimeoutMs))
  if (container.restart) argv.push(...restartArgs(container.restart))
  return argv
}

/** A duration in Go's syntax, which every Swarm duration flag parses. */
export function goDuration(ms: number): string {
  return `${Math.round(ms)}ms`
}

/**
 * `docker run --restart` mapped to Swarm's restart policy: `no` is `none`, `always` and
 * `unless-stopped` are `any` (Swarm has no "stopped by hand"), `on-failure:N` keeps its N.
 */
export function restartArgs(restart: string): string[] {
  const [policy, attempts] = restart.split(':')
  const condition = policy === 'no' ? 'none' : policy === 'on-failure' ? 'on-failure' : 'any'
  return ['--restart-condition', condition, '--restart-max-attempts', attempts ?? '0']
}

interface VolumeParts {
  source: string
  target: string
  options: string[]
}

function volumeParts(volume: string): VolumeParts {
  const [source = '', target = '', options] = volume.split(':')
  return { source, target, options: options ? options.split(',') : [] }
}

const PROPAGATION = new Set(['shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate'])
const CONSISTENCY = new Set(['consistent', 'cached', 'delegated'])

/**
 * A `docker run -v` value (`data:/var/lib/app`, `/srv/data:/data:ro`) as a `--mount` value:
 * an absolute source is a bind mount, a name is a volume. Paths and names were validated without
 * commas or quotes, so they cannot add fields to the comma-separated mount spec.
 * Throws for `z`/`Z`: Swarm's `--mount` has no SELinux relabelling.
 */
export function volumeToMount(volume: string): string {
  const { source, target, options } = volumeParts(volume)
  const bind = source.startsWith('/')
  const fields = [`type=${bind ? 'bind' : 'volume'}`, `source=${source}`, `target=${target}`]
  for (const option of options) {
    if (option === 'ro') fields.push('readonly')
    else if (option === 'rw') continue
    else if (option === 'nocopy' && !bind) fields.push('volume-nocopy')
    else if (PROPAGATION.has(option) && bind) fields.push(`bind-propagation=${option}`)
    else if (CONSISTENCY.has(option)) fields.push(`consistency=${option}`)
    else throw new Error(`container.volumes: the option "${option}" of ${volume} has no equivalent in a Swarm service's --mount; remove it for strategy: swarm`)
  }
  return fields.join(',')
}

interface PortParts {
  published?: string
  target: string
  protocol: string
}

function parsePort(port: string): PortParts {
  const slash = port.lastIndexOf('/')
  const protocol = slash === -1 ? 'tcp' : port.slice(slash + 1)
  const rest = slash === -1 ? port : port.slice(0, slash)
  // An address (`127.0.0.1:8080:80`, `[::1]:8080:80`) was checked by the grammar; Swarm has no field for it.
  if (rest.startsWith('[') || rest.split(':').length === 3) {
    throw new Error(`container.ports: ${port} binds one address; a Swarm service publishes on every address of its nodes. Remove the address for strategy: swarm`)
  }
  const parts = rest.split(':')
  return parts.length === 2 ? { published: parts[0], target: parts[1] ?? '', protocol } : { target: parts[0] ?? '', protocol }
}

function portKey(port: PortParts | ServicePort): string {
  if ('targetPort' in port) return `${port.publishedPort ?? ''}:${port.targetPort}/${port.protocol}`
  return `${port.published ?? ''}:${port.target}/${port.protocol}`
}

/**
 * Container settings that a Swarm service cannot express, as config problems: checked when the
 * config is read, so a deploy never gets as far as a half-built `docker service` command.
 */
export function swarmSettingProblems(container: Pick<ContainerSettings, 'ports' | 'volumes'>): { keyPath: (string | number)[]; message: string }[] {
  const problems: { keyPath: (string | number)[]; message: string }[] = []
  const check = (keyPath: (string | number)[], convert: () => unknown): void => {
    try {
      convert()
    } catch (error) {
      problems.push({ keyPath, message: (error as Error).message.replace(/^container\.\w+: /, '') })
    }
  }
  container.ports.forEach((port, index) => check(['container', 'ports', index], () => portToPublish(port)))
  container.volumes.forEach((volume, index) => check(['container', 'volumes', index], () => volumeToMount(volume)))
  return problems
}

/** A `docker run -p` value in the short `--publish` syntax Swarm accepts (`8080:80/udp`). */
export function portToPublish(port: string): string {
  const { published, target, protocol } = parsePort(port)
  return `${published ? `${published}:` : ''}${target}/${protocol}`
}

/**
 * Argv as one `--args` value. `docker service update --args` splits its value into words like a
 * shell would (no expansion), so each word is double-quoted with `\` and `"` escaped.
 */
export function shellWords(argv: readonly string[]): string {
  return argv.map((word) => `"${word.replace(/[\\"]/g, (char) => `\\${char}`)}"`).join(' ')
}

function sortedEntries(record: Record<string, string>): [string, string][] {
  return Object.entries(record).sort(([a], [b]) => a.localeCompare(b))
}

function unique(values: string[]): string[] {
  return [...new Set(values)]
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index])
}
