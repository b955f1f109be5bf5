/**
 * Inputs plus config become the one typed `DeploySettings`, or a list of problems. Nothing
 * downstream reads inputs, the config file or the environment again.
 */
import * as core from '@actions/core'
import { isIP } from 'node:net'
import { loadConfig, type Locator } from './config/load.js'
import { parseDuration } from './config/duration.js'
import {
  checkDockerHost,
  checkHttpUrl,
  checkImage,
  checkName,
  checkServiceName,
  checkTag,
  hasUnsafeCharacters,
  registryHost
} from './config/grammar.js'
import type { ConfigProblem } from './config/problems.js'
import { DEFAULT_PROXY_IMAGE } from './config/schema.js'
import { healthUrlPath, quotedValue, validateUrlPath } from './proxy/haproxy-config.js'
import { swarmSettingProblems } from './docker/service-args.js'
import type { EnvironmentConfig } from './config/schema.js'
import type { ActionInputs } from './inputs.js'
import type { Command, DeploySettings, RollbackTarget, RunContext } from './settings.js'

/** Defaults of every optional setting, in one place. */
export const DEFAULTS = {
  strategy: 'replace',
  expectStatus: [200],
  intervalMs: 1_000,
  timeoutMs: 2_000,
  deadlineMs: 60_000,
  healthyThreshold: 2,
  watchMs: 0,
  rollbackOnFailure: true,
  lockTimeoutMs: 10 * 60_000,
  rolloutParallel: 1,
  retain: 5,
  init: false,
  proxyImage: DEFAULT_PROXY_IMAGE,
  proxyDrainMs: 30_000,
  proxyTimeoutMs: 60_000,
  proxyMaxConnections: 4096
} as const

export interface ResolvedSettings {
  /** Present only when there is no error among the problems. */
  settings?: DeploySettings
  /** Errors and warnings; config problems first (in file order), then input problems. */
  problems: ConfigProblem[]
}

/**
 * Validates the inputs, loads the config, and combines them: inputs override the config, the tag
 * falls back to the ref's tag name or the commit SHA, and every `container.secrets` name must be
 * set in `env` (their values are masked here). Collects every problem instead of stopping at one.
 */
export function resolveSettings(inputs: ActionInputs, env: NodeJS.ProcessEnv = process.env): ResolvedSettings {
  const problems: ConfigProblem[] = []
  const inputProblem = (input: string, message: string): void => {
    problems.push({ title: `Input ${input}`, message: `${input}: ${message}`, severity: 'error' })
  }
  const checkInput = (input: string, value: string, check: (value: string) => string | undefined): void => {
    const expected = check(value)
    if (expected !== undefined) inputProblem(input, `${expected}, got ${JSON.stringify(value)}`)
  }

  const workspace = env['GITHUB_WORKSPACE'] || process.cwd()
  const environment = inputs.environment || 'production'
  if (hasUnsafeCharacters(environment) || environment.length > 255) {
    inputProblem('environment', `expected an environment name of at most 255 characters without control characters, got ${JSON.stringify(environment)}`)
  }
  const loaded = loadConfig({ configPath: inputs.config, environment, workspace })
  problems.push(...loaded.problems)
  const configErrors = loaded.problems.some((problem) => problem.severity === 'error')
  const config: EnvironmentConfig = loaded.config ?? {}
  const locate: Locator = loaded.locate

  /** A problem with a setting of the (merged) config, pointing at where it is written. */
  const configProblem = (keyPath: string[], message: string): void => {
    problems.push({ ...locate(keyPath), title: `Invalid ${keyPath.join('.')}`, message: `${keyPath.join('.')}: ${message}`, severity: 'error' })
  }

  // command; unlock needs a reason, which the summary records with the actor
  const command = inputs.command || 'deploy'
  if (command !== 'deploy' && command !== 'rollback' && command !== 'unlock') inputProblem('command', `expected deploy, rollback or unlock, got ${JSON.stringify(command)}`)
  // One line: it goes into a headline. A multi-line `|` block in the workflow is fine.
  const unlockReason = (inputs.unlockReason ?? '').replace(/\s+/g, ' ').trim()
  if (command === 'unlock') {
    if (unlockReason === '') inputProblem('unlock-reason', 'required with command: unlock; say why the lock is released, e.g. "runner lost during the migration of run 41"')
    else if (hasUnsafeCharacters(unlockReason) || unlockReason.length > 500) inputProblem('unlock-reason', 'expected a reason of at most 500 characters without control characters')
  } else {
    if (unlockReason) inputProblem('unlock-reason', 'only applies with command: unlock')
    if (inputs.forceUnlock) inputProblem('force-unlock', 'only applies with command: unlock')
  }

  // image: the input wins over the config
  let image = inputs.image || config.image
  if (inputs.image) checkInput('image', inputs.image, checkImage)
  if (image === undefined && !configErrors) {
    problems.push({
      ...(loaded.configFile ? { file: loaded.configFile } : {}),
      title: 'Missing image',
      message: loaded.configFile
        ? `image: required; set image in ${loaded.configFile} or the image input`
        : `image: required; set the image input, or image in ${inputs.config || '.github/deploy.yml'}`,
      severity: 'error'
    })
  }
  image ??= ''

  // tag
  let tag: string | undefined
  if (command === 'rollback') {
    tag = inputs.rollbackTo || undefined
    if (inputs.rollbackTo) checkInput('rollback-to', inputs.rollbackTo, checkTag)
  } else {
    if (inputs.rollbackTo) inputProblem('rollback-to', 'only applies with command: rollback')
    tag = defaultTag(inputs.tag, env)
    if (inputs.tag) checkInput('tag', inputs.tag, checkTag)
    else if (tag === undefined) inputProblem('tag', 'expected a tag, and neither GITHUB_REF names a tag nor GITHUB_SHA is set to fall back on')
    else if (checkTag(tag) !== undefined) {
      inputProblem('tag', `the tag ${JSON.stringify(tag)} taken from ${env['GITHUB_REF'] ?? 'GITHUB_SHA'} is not a valid image tag (${checkTag(tag) ?? ''}); set the tag input`)
    }
  }

  // name: defaults to the last path segment of the image
  const strategy = config.strategy ?? DEFAULTS.strategy
  const name = config.name ?? image.split('/').pop() ?? ''
  if (image !== '' && checkImage(image) === undefined && config.name === undefined) {
    const expected = strategy === 'swarm' ? checkServiceName(name) : checkName(name)
    if (expected !== undefined) {
      problems.push({
        ...(loaded.configFile ? { file: loaded.configFile } : {}),
        title: 'Invalid name',
        message: `name: the default name ${JSON.stringify(name)}, the last part of the image, is not usable (${expected}); set name in the config`,
        severity: 'error'
      })
    }
  } else if (config.name !== undefined && strategy === 'swarm') {
    const expected = checkServiceName(name)
    if (expected !== undefined) configProblem(['name'], `${expected}, got ${JSON.stringify(name)}`)
  }

  // health-url: the input wins over the config
  if (inputs.healthUrl) checkInput('health-url', inputs.healthUrl, (value) => checkHttpUrl(value, true))

  // hosts: the config's list, or the one docker-host input, or the runner's own engine
  if (inputs.dockerHost) checkInput('docker-host', inputs.dockerHost, checkDockerHost)
  if (inputs.dockerHost && config.hosts !== undefined) {
    inputProblem('docker-host', 'set either the docker-host input or hosts in the config, not both: which engines to deploy to must not be ambiguous')
  }
  const hosts: (string | undefined)[] = config.hosts?.map((host) => (typeof host === 'string' ? host : host['docker-host'])) ?? [inputs.dockerHost || undefined]
  const hostAddresses = hostAddressesOf(config.hosts)

  // secrets: every name must be set, and its value masked before anything can print it. A dry run
  // starts no container, so a missing one is a warning there: a pull request from a fork gets no secrets.
  const secrets = config.container?.secrets ?? []
  secrets.forEach((secret, index) => {
    const value = env[secret]
    // command: unlock starts no container and reads no secret: a workflow for it needs none.
    if ((value === undefined || value === '') && command !== 'unlock') {
      problems.push({
        ...locate(['container', 'secrets', index]),
        title: `Missing secret ${secret}`,
        message:
          `container.secrets: ${secret} is ${value === undefined ? 'not set' : 'empty'} in the action's environment; add \`env: { ${secret}: \${{ secrets.${secret} }} }\` to the step, and check that the secret exists` +
          (inputs.dryRun ? ' (a dry run starts no container, so it goes on; a real deploy stops here)' : ''),
        severity: inputs.dryRun ? 'warning' : 'error'
      })
    } else if (value) {
      maskSecret(value)
    }
    if (config.container?.env && Object.hasOwn(config.container.env, secret)) {
      problems.push({
        ...locate(['container', 'env', secret], 'key'),
        title: `Invalid container.env.${secret}`,
        message: `container.env.${secret}: is also listed in container.secrets; keep it in one place (secrets for secret values)`,
        severity: 'error'
      })
    }
  })

  // registry credentials: both or neither
  let registry: DeploySettings['registry']
  if (inputs.registryUsername && inputs.registryPassword) {
    if (hasUnsafeCharacters(inputs.registryUsername) || inputs.registryUsername.startsWith('-')) {
      inputProblem('registry-username', 'expected a user name without control characters, not starting with "-"')
    }
    registry = { server: image ? registryHost(image) : undefined, username: inputs.registryUsername, password: inputs.registryPassword }
  } else if (inputs.registryUsername || inputs.registryPassword) {
    const [empty, set] = inputs.registryUsername ? ['registry-password', 'registry-username'] : ['registry-username', 'registry-password']
    // A dry run on a pull request from a fork gets no secrets: it goes on without the login, and
    // the tag check may then be unable to tell (a warning of its own).
    if (inputs.dryRun) {
      problems.push({ title: `Input ${empty}`, message: `${empty}: is empty, but ${set} is set; the dry run goes on without a registry login (a real deploy stops here)`, severity: 'warning' })
    } else {
      inputProblem(empty, `is empty, but ${set} is set; give both or neither`)
    }
  }

  // strategy: swarm cannot express every docker run setting; say so now, not in the middle of a deploy
  if (strategy === 'swarm' && config.container) {
    for (const problem of swarmSettingProblems({ ports: config.container.ports ?? [], volumes: config.container.volumes ?? [] })) {
      const [section, key, index] = problem.keyPath
      const where = `${String(section)}.${String(key)}[${String(index)}]`
      problems.push({ ...locate(problem.keyPath), title: `Invalid ${String(section)}.${String(key)}`, message: `${where}: ${problem.message}`, severity: 'error' })
    }
  }

  // strategy: proxy: the proxy publishes the app; the settings it needs must be there
  problems.push(...proxyProblems(strategy, config, inputs.healthUrl, locate))
  // swarm: and rollout: blocks that this deploy would ignore
  problems.push(...ignoredBlockProblems(strategy, hosts.length, config, locate))

  // health.from: host probes through the SSH connection, which only ssh:// hosts have
  const from = config.health?.from
  const probedUrl = inputs.healthUrl || config.health?.url
  if (from === 'host') {
    const at = (message: string, severity: 'error' | 'warning' = 'error'): void => {
      problems.push({ ...locate(['health', 'from']), title: 'Invalid health.from', message: `health.from: ${message}`, severity })
    }
    if (!probedUrl) at('host has no effect without health.url: only the container state is checked', 'warning')
    else if (/^https:/i.test(probedUrl)) at("host probes through a port forwarded over SSH, where no TLS certificate can match the URL's name: use an http:// URL on the host's loopback, or health.from: runner")
    const tcp = hosts.find((host) => host?.startsWith('tcp://'))
    if (tcp) at(`host needs ssh:// hosts: ${tcp} has no SSH connection to probe through (use runner, or reach that engine over ssh://)`)
  }

  // rollback target
  const to = config.rollback?.to ?? 'last-release'
  const rollbackTarget: RollbackTarget = to === 'last-release' ? { kind: 'last-release' } : to === 'previous' ? { kind: 'previous' } : { kind: 'tag', tag: to }

  const errors = problems.some((problem) => problem.severity === 'error')
  if (errors) return { problems }

  const container = config.container ?? {}
  const health = config.health ?? {}
  const swarm = config.swarm ?? {}
  const settings: DeploySettings = {
    command: command as Command,
    environment,
    dryRun: inputs.dryRun,
    image,
    tag,
    name,
    strategy,
    url: config.url,
    container: {
      ports: container.ports ?? [],
      env: stringValues(container.env),
      secrets,
      volumes: container.volumes ?? [],
      network: container.network,
      restart: container.restart,
      command: container.command,
      labels: stringValues(container.labels),
      init: container.init ?? DEFAULTS.init,
      stopTimeoutMs: durationMs(container['stop-timeout'])
    },
    health: {
      url: inputs.healthUrl || health.url,
      expectStatus: health['expect-status'] ?? [...DEFAULTS.expectStatus],
      expectBody: health['expect-body'],
      headers: health.headers ?? {},
      intervalMs: durationMs(health.interval) ?? DEFAULTS.intervalMs,
      timeoutMs: durationMs(health.timeout) ?? DEFAULTS.timeoutMs,
      deadlineMs: durationMs(health.deadline) ?? DEFAULTS.deadlineMs,
      healthyThreshold: health['healthy-threshold'] ?? DEFAULTS.healthyThreshold,
      watchMs: durationMs(health.watch) ?? DEFAULTS.watchMs,
      ...(health.from && { from: health.from })
    },
    rollback: { onFailure: config.rollback?.['on-failure'] ?? DEFAULTS.rollbackOnFailure, to: rollbackTarget },
    hooks: { preDeploy: config.hooks?.['pre-deploy'] ?? [] },
    lock: { timeoutMs: durationMs(config.lock?.timeout) ?? DEFAULTS.lockTimeoutMs },
    ...(command === 'unlock' && { unlock: { reason: unlockReason, force: inputs.forceUnlock === true } }),
    swarm: {
      replicas: swarm.replicas,
      parallelism: swarm.parallelism,
      delayMs: durationMs(swarm.delay),
      order: swarm.order,
      monitorMs: durationMs(swarm.monitor)
    },
    ...(strategy === 'proxy' && {
      proxy: {
        port: config.proxy?.port ?? 0,
        bind: typeof config.proxy?.bind === 'string' ? [config.proxy.bind] : (config.proxy?.bind ?? []),
        appPort: config.proxy?.['app-port'] ?? 0,
        image: config.proxy?.image ?? DEFAULTS.proxyImage,
        drainMs: durationMs(config.proxy?.drain) ?? DEFAULTS.proxyDrainMs,
        timeoutMs: durationMs(config.proxy?.timeout) ?? DEFAULTS.proxyTimeoutMs,
        maxConnections: config.proxy?.['max-connections'] ?? DEFAULTS.proxyMaxConnections
      }
    }),
    hosts,
    ...(hostAddresses && { hostAddresses }),
    rollout: { parallel: config.rollout?.parallel ?? DEFAULTS.rolloutParallel, canary: config.rollout?.canary ?? false },
    retain: config.retain ?? DEFAULTS.retain,
    registry,
    githubToken: inputs.githubToken || undefined,
    ...((inputs.sshKey || inputs.sshKnownHosts) && { ssh: { ...(inputs.sshKey && { key: inputs.sshKey }), ...(inputs.sshKnownHosts && { knownHosts: inputs.sshKnownHosts }) } }),
    configFile: loaded.configFile,
    run: runContext(env, workspace)
  }
  return { settings, problems }
}

/**
 * Blocks the config may hold that would do nothing for this deploy, each a warning at its key:
 * `swarm:` outside `strategy: swarm`, and `rollout:` with one host (it sets how several hosts are
 * switched, with every strategy; it has nothing to batch on one engine).
 */
function ignoredBlockProblems(strategy: string, hostCount: number, config: EnvironmentConfig, locate: Locator): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  const warn = (key: string, message: string): void => {
    problems.push({ ...locate([key], 'key'), title: `Invalid ${key}`, message: `${key}: ${message}`, severity: 'warning' })
  }
  if (config.swarm !== undefined && strategy !== 'swarm') {
    warn('swarm', `has no effect with strategy: ${strategy}; set strategy: swarm, or remove the swarm block`)
  }
  if (config.rollout !== undefined && hostCount < 2) {
    warn('rollout', 'has no effect with one host; it sets how the engines listed in hosts: are switched, so list two or more, or remove the rollout block')
  }
  return problems
}

/**
 * `strategy: proxy` across settings: `proxy.port` and `proxy.app-port` are required, the app
 * container publishes nothing and joins only the proxy's network, and the health URL's path must
 * be one HAProxy can check. A `proxy:` block under another strategy does nothing: a warning.
 */
function proxyProblems(strategy: string, config: EnvironmentConfig, healthUrlInput: string, locate: Locator): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  const at = (keyPath: (string | number)[], message: string, severity: ConfigProblem['severity'] = 'error', target: 'key' | 'value' = 'value'): void => {
    problems.push({ ...locate(keyPath, target), title: `Invalid ${keyPath.join('.')}`, message: `${keyPath.join('.')}: ${message}`, severity })
  }
  if (strategy !== 'proxy') {
    if (config.proxy !== undefined) at(['proxy'], `has no effect with strategy: ${strategy}; set strategy: proxy, or remove the proxy block`, 'warning', 'key')
    return problems
  }
  for (const key of ['port', 'app-port'] as const) {
    if (config.proxy?.[key] !== undefined) continue
    const where = config.proxy !== undefined ? ['proxy'] : ['strategy']
    problems.push({
      ...locate(where, 'key'),
      title: `Missing proxy.${key}`,
      message:
        key === 'port'
          ? 'proxy.port: required with strategy: proxy; the host port users connect to, e.g. proxy: { port: 8080, app-port: 3000 }'
          : 'proxy.app-port: required with strategy: proxy; the port the app listens on inside its container, e.g. proxy: { port: 8080, app-port: 3000 }',
      severity: 'error'
    })
  }
  if ((config.container?.ports ?? []).length > 0) {
    at(['container', 'ports'], 'must be empty with strategy: proxy; the app publishes nothing, users reach it through the proxy on proxy.port', 'error', 'key')
  }
  if (config.container?.network !== undefined) {
    at(['container', 'network'], 'cannot be set with strategy: proxy; the app joins the network the action creates for it and its proxy', 'error', 'key')
  }
  if (config.container?.restart === 'no') {
    at(['container', 'restart'], 'is no with strategy: proxy; after a reboot the proxy comes back (unless-stopped) but the slots would not, and users would get 503 until the next deploy; leave it unset (unless-stopped)', 'warning')
  }
  const url = healthUrlInput || config.health?.url
  const path = url ? healthUrlPath(url) : undefined
  if (path !== undefined && !isCheckablePath(path)) {
    const message = `the path ${JSON.stringify(path)} cannot be checked by HAProxy (strategy: proxy); use a plain path without quotes, spaces, '$', '#' or '\\'`
    if (healthUrlInput) problems.push({ title: 'Input health-url', message: `health-url: ${message}`, severity: 'error' })
    else at(['health', 'url'], message)
  }
  // HAProxy runs the action's check on each slot: what it cannot express is an error at its line.
  const body = config.health?.['expect-body']
  if (body !== undefined) {
    const problem = haproxyProblem(() => quotedValue(body, 'health.expect-body'))
    if (problem) at(['health', 'expect-body'], `${problem} (strategy: proxy)`)
  }
  for (const [name, value] of Object.entries(config.health?.headers ?? {})) {
    const problem = haproxyProblem(() => quotedValue(value, `health.headers.${name}`))
    if (problem) at(['health', 'headers', name], `${problem} (strategy: proxy)`)
  }
  const port = url ? loopbackPort(url) : undefined
  const proxyPort = config.proxy?.port
  if (port !== undefined && proxyPort !== undefined && port !== proxyPort) {
    const message = `the port ${port} is not proxy.port (${proxyPort}): with strategy: proxy users reach the app through the proxy on proxy.port, so the check of this URL after the switch would fail on every deploy; use http://127.0.0.1:${proxyPort}${path ?? '/'}`
    if (healthUrlInput) problems.push({ title: 'Input health-url', message: `health-url: ${message}`, severity: 'warning' })
    else at(['health', 'url'], message, 'warning')
  }
  return problems
}

/** The message of a value HAProxy's config cannot take, or undefined. */
function haproxyProblem(check: () => unknown): string | undefined {
  try {
    check()
    return undefined
  } catch (error) {
    return error instanceof Error ? error.message.replace(/^health\.[^:]*: /, '') : String(error)
  }
}

/** The port of a health URL on this host's loopback (`127.0.0.1`, `localhost`, `::1`), or undefined for any other host. */
function loopbackPort(url: string): number | undefined {
  try {
    const parsed = new URL(url)
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname)) return undefined
    return Number(parsed.port || (parsed.protocol === 'https:' ? 443 : 80))
  } catch {
    return undefined
  }
}

/**
 * Masks a secret value. The runner masks line by line, so a multi-line value (a key file) also
 * registers each of its longer lines.
 */
function maskSecret(value: string): void {
  core.setSecret(value)
  const lines = value.split(/\r?\n/).map((line) => line.trim())
  if (lines.length > 1) for (const line of lines) if (line.length >= 8) core.setSecret(line)
}

/** `address` of each `hosts:` mapping, by docker host; an IPv6 address in brackets, as a URL needs it. */
function hostAddressesOf(hosts: EnvironmentConfig['hosts']): Record<string, string> | undefined {
  const entries = (hosts ?? []).flatMap((host) =>
    typeof host !== 'string' && host.address !== undefined
      ? [[host['docker-host'], isIP(host.address) === 6 ? `[${host.address}]` : host.address] as const]
      : []
  )
  return entries.length > 0 ? Object.fromEntries(entries) : undefined
}

/** The tag input, else the tag name of a `refs/tags/…` ref, else the commit SHA. */
function defaultTag(input: string, env: NodeJS.ProcessEnv): string | undefined {
  if (input) return input
  const ref = env['GITHUB_REF'] ?? ''
  if (ref.startsWith('refs/tags/') && ref.length > 'refs/tags/'.length) return ref.slice('refs/tags/'.length)
  return env['GITHUB_SHA'] || undefined
}

/** Durations were validated by the schema; this only converts them. */
function durationMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const result = parseDuration(value, { allowZero: true })
  return result.ok ? result.ms : undefined
}

/** YAML numbers and booleans in env and labels become the text docker receives. */
function stringValues(values: Record<string, string | number | boolean> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(values ?? {}).map(([key, value]) => [key, String(value)]))
}

function runContext(env: NodeJS.ProcessEnv, workspace: string): RunContext {
  const repository = env['GITHUB_REPOSITORY'] ?? ''
  const serverUrl = env['GITHUB_SERVER_URL'] || 'https://github.com'
  return {
    repository,
    sha: env['GITHUB_SHA'] ?? '',
    ref: env['GITHUB_REF'] ?? '',
    actor: env['GITHUB_ACTOR'] ?? '',
    runUrl: `${serverUrl}/${repository}/actions/runs/${env['GITHUB_RUN_ID'] ?? ''}`,
    apiUrl: env['GITHUB_API_URL'] || 'https://api.github.com',
    workspace
  }
}

/** Whether HAProxy's `option httpchk` can request `path` (see validateUrlPath). */
function isCheckablePath(path: string): boolean {
  try {
    validateUrlPath(path, 'health path')
    return true
  } catch {
    return false
  }
}
