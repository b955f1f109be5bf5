/**
 * The zod schema of the deploy config file (`.github/deploy.yml`). It is the single source for
 * validation and for the committed JSON Schema `deploy.schema.json` that editors use.
 *
 * Every error message of a field starts with "expected …"; the loader prefixes the key path and
 * appends the value it found, e.g. `health.interval: expected a duration such as 500ms, 2s or 1m, got "fast"`.
 * Objects are strict: an unknown key is an error (with a did-you-mean suggestion from the loader).
 */
import { z } from 'zod'
import { DURATION_EXPECTED, parseDuration, type DurationOptions } from './duration.js'
import {
  checkDockerHost,
  checkEnvName,
  checkHeaderName,
  checkHeaderValue,
  checkHostAddress,
  checkHttpUrl,
  checkBindAddress,
  checkImage,
  checkImageReference,
  checkLabelKey,
  checkName,
  checkNetwork,
  checkPortMapping,
  checkRestartPolicy,
  checkTag,
  checkText,
  checkVolume
} from './grammar.js'

type Check = (value: string) => string | undefined

/** A string validated by one of the grammar checks; `expected` also covers values of the wrong type. */
function grammarString(check: Check, expected: string, pattern?: string) {
  const schema = z.string({ error: expected }).superRefine((value, ctx) => {
    const problem = check(value)
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem })
  })
  // The pattern only informs editors (JSON Schema); the check above is what the action enforces.
  return pattern === undefined ? schema : schema.meta({ pattern })
}

const ENV_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$'

/** Free text that reaches argv inside one argument. YAML numbers and booleans are taken as text. */
function textValue(what: string) {
  return z
    .union([z.string(), z.number(), z.boolean()], { error: `expected ${what} (a string, number or boolean)` })
    .superRefine((value, ctx) => {
      const problem = typeof value === 'string' ? checkText(value, what) : undefined
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem })
    })
}

const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m)$'

function duration(description: string, options: DurationOptions = {}) {
  return z
    .string({
      error: (issue) =>
        typeof issue.input === 'number' ? `${DURATION_EXPECTED} (a number with a unit, e.g. ${issue.input}s)` : DURATION_EXPECTED
    })
    .superRefine((value, ctx) => {
      const result = parseDuration(value, options)
      if (!result.ok) ctx.addIssue({ code: 'custom', message: result.expected })
    })
    .meta({ description, pattern: DURATION_PATTERN, examples: ['500ms', '2s', '1m'] })
}

function wholeNumber(min: number, max: number) {
  const expected = `expected a whole number from ${min} to ${max}`
  return z
    .number({ error: expected })
    .int({ error: expected })
    .min(min, { error: expected })
    .max(max, { error: expected })
}

/** A list whose items must be distinct; a repeat is reported at its own position. */
function uniqueList<T extends z.ZodType>(item: T, what: string) {
  return z.array(item, { error: `expected a list of ${what}` }).superRefine((values, ctx) => {
    const seen = new Set<unknown>()
    values.forEach((value, index) => {
      if (seen.has(value)) ctx.addIssue({ code: 'custom', message: `expected distinct ${what}; this one is repeated`, path: [index] })
      seen.add(value)
    })
  })
}

function mapping<K extends z.ZodType<string>, V extends z.ZodType>(key: K, value: V, what: string) {
  return z.record(key, value, { error: `expected a mapping of ${what}` })
}

const tag = grammarString(checkTag, 'expected an image tag', '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$')

export const ContainerSchema = z
  .strictObject(
    {
      ports: uniqueList(grammarString(checkPortMapping, 'expected a port mapping such as "8080:80"'), 'port mappings')
        .describe('Published ports in `docker run -p` syntax: [ip:][hostPort:]containerPort[/tcp|udp|sctp].')
        .meta({ examples: [['8080:80'], ['127.0.0.1:8080:80', '53:53/udp']] })
        .optional(),
      env: mapping(grammarString(checkEnvName, 'expected a variable name', ENV_NAME_PATTERN), textValue('a value'), 'variable names to values')
        .describe('Plain environment variables. They appear in argv (`-e NAME=value`), so never put secrets here: use `secrets`.')
        .optional(),
      secrets: uniqueList(grammarString(checkEnvName, 'expected a variable name', ENV_NAME_PATTERN), 'variable names')
        .describe("Names of variables whose values come from the action's environment (e.g. `env: { DATABASE_URL: ${{ secrets.DATABASE_URL }} }`). Masked, and passed as `-e NAME` so the value never appears in argv.")
        .optional(),
      volumes: uniqueList(grammarString(checkVolume, 'expected a volume such as "data:/var/lib/app"'), 'volumes')
        .describe('Volumes in `docker run -v` syntax: name-or-/abs/host/path:/abs/container/path[:ro|rw|z|Z|…].')
        .optional(),
      network: grammarString(checkNetwork, 'expected a network name').describe('Network to attach, e.g. `host` or a user-defined network.').optional(),
      restart: grammarString(checkRestartPolicy, 'expected a restart policy', '^(no|always|unless-stopped|on-failure(:[1-9][0-9]{0,3})?)$')
        .describe('Restart policy: no, always, unless-stopped or on-failure[:N].')
        .meta({ examples: ['unless-stopped', 'on-failure:3'] })
        .optional(),
      command: z
        .array(grammarString((value) => checkText(value, 'an argument'), 'expected an argument (a string)'), {
          error: 'expected a list of arguments such as ["serve", "--port", "8080"]'
        })
        .min(1, { error: 'expected a non-empty list of arguments' })
        .describe("Argv that replaces the image's CMD, e.g. [\"serve\", \"--port\", \"8080\"]. No shell is involved.")
        .optional(),
      labels: mapping(grammarString(checkLabelKey, 'expected a label key'), textValue('a label value'), 'label keys to values')
        .describe('Extra container labels.')
        .optional(),
      init: z.boolean({ error: 'expected true or false' }).describe('Run an init process as PID 1 (`--init`).').optional(),
      'stop-timeout': duration('Grace period for stopping the old container before it is killed; docker default 10s.', { allowZero: true }).optional()
    },
    { error: 'expected a mapping of container settings' }
  )
  .describe('How the container runs.')

export const HealthSchema = z
  .strictObject(
    {
      url: grammarString((value) => checkHttpUrl(value, true), 'expected an http:// or https:// URL')
        .describe("HTTP URL to probe. `{host}` stands for each deploy host's address. Without it, only the container's state is checked.")
        .meta({ examples: ['http://127.0.0.1:8080/health'] })
        .optional(),
      'expect-status': uniqueList(wholeNumber(100, 599), 'HTTP status codes')
        .min(1, { error: 'expected at least one HTTP status code' })
        .describe('Accepted HTTP status codes; default [200].')
        .optional(),
      'expect-body': z
        .string({ error: 'expected text the response body must contain' })
        .min(1, { error: 'expected non-empty text the response body must contain' })
        .max(4096, { error: 'expected at most 4096 characters' })
        .describe('Substring the response body must contain.')
        .optional(),
      headers: mapping(grammarString(checkHeaderName, 'expected an HTTP header name'), grammarString(checkHeaderValue, 'expected a header value (a string)'), 'header names to values')
        .describe('Extra request headers for the probe, e.g. { Host: web.example.com }.')
        .optional(),
      interval: duration('Pause between probes; default 1s.').optional(),
      timeout: duration('Timeout of one probe; default 2s.').optional(),
      deadline: duration('Give up when the new version is not healthy after this long; default 60s.').optional(),
      'healthy-threshold': wholeNumber(1, 100).describe('Consecutive successful probes needed; default 2.').optional(),
      watch: duration('Keep probing this long after the first healthy verdict; any failure then fails the deploy. Default 0s.', {
        allowZero: true
      }).optional(),
      from: z
        .enum(['host', 'runner'], { error: 'expected host or runner' })
        .describe(
          'Where url is probed from: the runner, or the host itself through the run\'s SSH connection (so http://127.0.0.1:… is the host\'s loopback). Default: host for a loopback URL on an ssh:// host, else runner.'
        )
        .optional()
    },
    { error: 'expected a mapping of health check settings' }
  )
  .describe('How the new version is judged healthy.')

export const RollbackSchema = z
  .strictObject(
    {
      'on-failure': z.boolean({ error: 'expected true or false' }).describe('Re-deploy the rollback target when the new version fails its check; default true.').optional(),
      to: z
        .union([z.enum(['last-release', 'previous']), tag], {
          error: 'expected last-release, previous or an image tag'
        })
        .describe('Where to go back to: last-release (newest GitHub Release older than the failed one), previous (what ran before), or a literal tag. Default last-release.')
        .optional()
    },
    { error: 'expected a mapping of rollback settings' }
  )
  .describe('What happens when the new version fails.')

export const HooksSchema = z
  .strictObject(
    {
      'pre-deploy': z
        .array(
          z
            .array(grammarString((value) => checkText(value, 'an argument'), 'expected an argument (a string)'), {
              error: 'expected an argv list such as ["bin/migrate"]'
            })
            .min(1, { error: 'expected a non-empty argv list such as ["bin/migrate"]' }),
          { error: 'expected a list of argv lists such as [["bin/migrate"]]' }
        )
        .describe('Commands (argv lists) run in the new image before the switch, e.g. [["bin/migrate"]]. A failing hook stops the deploy.')
        .optional()
    },
    { error: 'expected a mapping of hooks' }
  )
  .describe('Commands run around the deploy.')

export const LockSchema = z
  .strictObject(
    {
      timeout: duration('How long to wait for another deploy of the same name and host to finish; default 10m.', {
        allowZero: true
      }).optional()
    },
    { error: 'expected a mapping of lock settings' }
  )
  .describe('The deploy lock: one deploy at a time per host and name.')

export const SwarmSchema = z
  .strictObject(
    {
      replicas: wholeNumber(1, 1000).describe('Number of tasks (`--replicas`).').optional(),
      parallelism: wholeNumber(0, 1000).describe('Tasks updated at once (`--update-parallelism`); 0 updates all at once.').optional(),
      delay: duration('Pause between updating batches of tasks (`--update-delay`).', { allowZero: true }).optional(),
      order: z
        .enum(['stop-first', 'start-first'], { error: 'expected stop-first or start-first' })
        .describe('`--update-order`. start-first cannot work with host networking on one fixed port.')
        .optional(),
      monitor: duration('How long Swarm watches each updated task for failure (`--update-monitor`).', { allowZero: true }).optional()
    },
    { error: 'expected a mapping of swarm settings' }
  )
  .describe('Settings for strategy: swarm.')

export const RolloutSchema = z
  .strictObject(
    {
      parallel: wholeNumber(1, 100).describe('Hosts switched and verified at once with several hosts; default 1.').optional(),
      canary: z.boolean({ error: 'expected true or false' }).describe('Switch and verify the first host alone before the others; default false.').optional()
    },
    { error: 'expected a mapping of rollout settings' }
  )
  .describe('How a deploy proceeds across several hosts.')

/** The default of `proxy.image`: the official HAProxy image of an LTS branch, alpine flavour (busybox `nc` included). */
export const DEFAULT_PROXY_IMAGE = 'haproxy:3.0-alpine'

const bindAddress = grammarString(checkBindAddress, 'expected an IP address such as 127.0.0.1')

export const ProxySchema = z
  .strictObject(
    {
      port: wholeNumber(1, 65535).describe('The host port users connect to; the proxy container publishes it. Required with strategy: proxy.').optional(),
      bind: z
        .union([bindAddress, uniqueList(bindAddress, 'IP addresses').min(1, { error: 'expected at least one IP address' })], {
          error: 'expected an IP address such as 127.0.0.1, or a list of them'
        })
        .describe('Host address(es) to publish proxy.port on, a string or a list; default all addresses.')
        .meta({ examples: ['127.0.0.1', ['10.0.0.5', '::1']] })
        .optional(),
      'app-port': wholeNumber(1, 65535).describe('The port the app listens on inside its container (on 0.0.0.0). Required with strategy: proxy.').optional(),
      image: grammarString(checkImageReference, 'expected an image reference with a tag such as haproxy:3.0-alpine')
        .describe(`HAProxy image of the proxy container, pinned by tag or digest; default ${DEFAULT_PROXY_IMAGE}. Any image laid out like the official one (config at /usr/local/etc/haproxy/haproxy.cfg, busybox nc).`)
        .optional(),
      drain: duration('How long the old version may finish its in-flight requests after the switch; default 30s.', { allowZero: true }).optional(),
      timeout: duration('How long the proxy waits on an idle client or app connection (HAProxy timeout client and server): longer than the slowest response; default 60s.').optional(),
      'max-connections': wholeNumber(1, 1_000_000).describe('Connections the proxy accepts at once (HAProxy maxconn); default 4096.').optional()
    },
    { error: 'expected a mapping of proxy settings' }
  )
  .describe('Settings for strategy: proxy (blue/green behind HAProxy).')

const dockerHost = grammarString(checkDockerHost, 'expected a docker host such as ssh://deploy@web1.example.com', '^(ssh|tcp|unix)://')

/**
 * One docker host: its `DOCKER_HOST` value, or a mapping that also says what `{host}` in
 * health.url becomes there (needed for unix:// sockets, or when the engine's name is not the
 * address the app answers on).
 */
export const HostSchema = z.union(
  [
    dockerHost,
    z.strictObject(
      {
        'docker-host': dockerHost.describe('The engine: ssh://user@host[:port], tcp://host:port or unix:///path.'),
        address: grammarString(checkHostAddress, 'expected a host name or IP address such as 10.0.0.5')
          .describe('What {host} in health.url becomes for this host. Default: the host of docker-host, or 127.0.0.1 for unix://.')
          .optional()
      },
      { error: 'expected a docker host, or a mapping with docker-host and address' }
    )
  ],
  { error: 'expected a docker host such as ssh://deploy@web1.example.com, or a mapping with docker-host and address' }
)

export const HostsSchema = z
  .array(HostSchema, { error: 'expected a list of docker hosts' })
  .min(1, { error: 'expected at least one docker host' })
  .superRefine((hosts, ctx) => {
    const seen = new Set<string>()
    hosts.forEach((host, index) => {
      const endpoint = typeof host === 'string' ? host : host['docker-host']
      if (seen.has(endpoint)) ctx.addIssue({ code: 'custom', message: 'expected distinct docker hosts; this one is repeated', path: [index] })
      seen.add(endpoint)
    })
  })
  .describe(
    'Docker engines to deploy to, one after the other: ssh://user@host[:port], tcp://host:port or unix:///path, or { docker-host, address } to say what {host} in health.url becomes there. Default: the `docker-host` input, or the runner\'s own engine.'
  )

/** All keys of the config except `environments`; also the shape of one `environments.<name>` block. */
export const EnvironmentSchema = z.strictObject(
  {
    image: grammarString(checkImage, 'expected an image repository such as registry.example.com/acme/web')
      .describe('Image repository without tag, e.g. registry.example.com/acme/web. Required here or as the `image` input.')
      .optional(),
    name: grammarString(checkName, 'expected a container name', '^[a-zA-Z0-9][a-zA-Z0-9_.-]+$')
      .describe('Container or Swarm service name; default: the last path segment of image.')
      .optional(),
    strategy: z
      .enum(['replace', 'swarm', 'proxy'], { error: 'expected replace, swarm or proxy' })
      .describe('replace (one container per host), swarm (a Swarm service) or proxy (blue/green behind HAProxy, zero downtime); default replace.')
      .optional(),
    url: grammarString((value) => checkHttpUrl(value), 'expected an http:// or https:// URL')
      .describe('Public URL of the deployed app, shown in the summary and on the GitHub Deployment.')
      .optional(),
    container: ContainerSchema.optional(),
    health: HealthSchema.optional(),
    rollback: RollbackSchema.optional(),
    hooks: HooksSchema.optional(),
    lock: LockSchema.optional(),
    swarm: SwarmSchema.optional(),
    proxy: ProxySchema.optional(),
    hosts: HostsSchema.optional(),
    rollout: RolloutSchema.optional(),
    retain: wholeNumber(1, 100)
      .describe("How many of the app's most recently deployed images each host keeps; older ones are removed after a successful deploy or rollback. Default 5.")
      .optional()
  },
  { error: 'expected a mapping of deploy settings' }
)

/** The whole config file. */
export const ConfigSchema = EnvironmentSchema.extend({
  environments: mapping(
    grammarString((value) => checkText(value, 'an environment name'), 'expected an environment name'),
    EnvironmentSchema,
    'environment names to settings'
  )
    .describe('Per-environment settings, deep-merged over the top level when the `environment` input selects them.')
    .optional()
}).meta({
  title: 'deploy-action configuration',
  description: 'Config of the deploy-action GitHub Action (.github/deploy.yml).'
})

/** One environment's view of the config: the top level with its `environments.<name>` merged in. */
export type EnvironmentConfig = z.infer<typeof EnvironmentSchema>
/** The config file as written. */
export type ConfigFile = z.infer<typeof ConfigSchema>

/** The JSON Schema of the config, exactly as committed in `deploy.schema.json` (with a final newline). */
export function configJsonSchemaText(): string {
  return `${JSON.stringify(z.toJSONSchema(ConfigSchema), null, 2)}\n`
}
