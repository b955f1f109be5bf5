import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { configJsonSchemaText } from '../src/config/schema.js'
import {
  closestMatch,
  deepMerge,
  editDistance,
  firstInvalidUtf8Offset,
  loadConfig,
  looksLikeSecretName,
  MAX_CONFIG_BYTES,
  parseConfigBytes,
  parseConfigText
} from '../src/config/load.js'
import { YamlPositions } from '../src/config/positions.js'
import type { ConfigProblem } from '../src/config/problems.js'

const FILE = '.github/deploy.yml'

function parse(text: string, environment = 'production') {
  return parseConfigText(text, { file: FILE, environment })
}

/** The one problem a text produces (fails when there are more or fewer). */
function onlyProblem(text: string, environment = 'production'): ConfigProblem {
  const { problems, config } = parse(text, environment)
  expect(problems).toHaveLength(1)
  expect(config).toBeUndefined()
  return problems[0] as ConfigProblem
}

/** Compact form for exact assertions: "line:column message". */
const at = (problem: ConfigProblem): string => `${problem.line ?? '-'}:${problem.column ?? '-'} ${problem.message}`

const FULL_EXAMPLE = `image: registry.example.com/acme/web   # required here or as input
name: web
strategy: replace
url: https://web.example.com
container:
  ports: ["8080:80"]
  env: { NODE_ENV: production, PORT: 8080, DEBUG: false }
  secrets: [DATABASE_URL]
  volumes: ["data:/var/lib/app"]
  network: host
  restart: unless-stopped
  command: ["serve", "--port", "8080"]
  labels: { team: web }
  init: true
  stop-timeout: 10s
health:
  url: http://127.0.0.1:8080/health
  expect-status: [200]
  expect-body: ok
  headers: { Host: web.example.com }
  interval: 1s
  timeout: 2s
  deadline: 60s
  healthy-threshold: 2
  watch: 0s
rollback:
  on-failure: true
  to: last-release
hooks:
  pre-deploy: [["bin/migrate"]]
lock:
  timeout: 10m
swarm:
  replicas: 3
  parallelism: 1
  delay: 5s
  order: stop-first
  monitor: 30s
hosts: ["ssh://deploy@web1.example.com", "ssh://deploy@web2.example.com:2222"]
rollout:
  parallel: 1
environments:
  staging:
    name: web-staging
    container: { ports: ["8081:80"] }
    health: { url: http://127.0.0.1:8081/health }
`

describe('valid configs', () => {
  it('accepts the full example of the contract, every key', () => {
    const { problems, config } = parse(FULL_EXAMPLE)
    expect(problems).toEqual([])
    expect(config).toMatchObject({
      image: 'registry.example.com/acme/web',
      name: 'web',
      container: { ports: ['8080:80'], env: { NODE_ENV: 'production', PORT: 8080, DEBUG: false }, init: true, 'stop-timeout': '10s' },
      health: { interval: '1s', 'healthy-threshold': 2 },
      lock: { timeout: '10m' },
      swarm: { replicas: 3, order: 'stop-first' },
      hosts: ['ssh://deploy@web1.example.com', 'ssh://deploy@web2.example.com:2222'],
      rollout: { parallel: 1 }
    })
    expect(config).not.toHaveProperty('environments')
  })

  it('treats an empty or comment-only file as an empty config', () => {
    for (const text of ['', '# nothing yet\n', '---\n', '\ufeff']) {
      expect(parse(text)).toMatchObject({ problems: [], config: {} })
    }
  })

  it('accepts anchors and merge keys', () => {
    const { problems, config } = parse('health: &h\n  interval: 1s\nenvironments:\n  staging:\n    health:\n      <<: *h\n      timeout: 3s\n', 'staging')
    expect(problems).toEqual([])
    expect(config?.health).toEqual({ interval: '1s', timeout: '3s' })
  })

  it('keeps shell metacharacters in free text verbatim (they only ever become one argv word)', () => {
    const { problems, config } = parse(`container:\n  env: { MOTD: "a; rm -rf / && $(id) \`x\` | y" }\n  command: ["sh", "-c", "echo $HOME; exit 1"]\n`)
    expect(problems).toEqual([])
    expect(config?.container?.env?.['MOTD']).toBe('a; rm -rf / && $(id) `x` | y')
    expect(config?.container?.command).toEqual(['sh', '-c', 'echo $HOME; exit 1'])
  })
})

describe('environment merge', () => {
  const text = `image: acme/web
name: web
container:
  ports: ["8080:80", "8443:443"]
  env: { NODE_ENV: production, LOG: info }
health:
  url: http://127.0.0.1:8080/health
  interval: 1s
environments:
  staging:
    name: web-staging
    container:
      ports: ["8081:80"]
      env: { NODE_ENV: staging }
    health: { interval: 2s }
  broken:
    health: { interval: soon }
`

  it('deep-merges the selected block: objects merge, arrays and scalars replace', () => {
    const { config } = parse(text.replace(/ {2}broken:\n.*\n/, ''), 'staging')
    expect(config).toEqual({
      image: 'acme/web',
      name: 'web-staging',
      container: { ports: ['8081:80'], env: { NODE_ENV: 'staging', LOG: 'info' } },
      health: { url: 'http://127.0.0.1:8080/health', interval: '2s' }
    })
  })

  it('uses the top level alone when no block matches', () => {
    const { config } = parse(text.replace(/ {2}broken:\n.*\n/, ''), 'production')
    expect(config?.name).toBe('web')
    expect(config?.container?.ports).toEqual(['8080:80', '8443:443'])
  })

  it('points a problem inside an environment block at its own line, whichever environment is selected', () => {
    for (const environment of ['staging', 'production', 'broken']) {
      expect(at(onlyProblem(text, environment))).toBe(
        '17:25 environments.broken.health.interval: expected a duration such as 500ms, 2s or 1m, got "soon"'
      )
    }
  })

  it('locates merged keys in the environment block when set there, else at the top level', () => {
    const { locate } = parse(text.replace(/ {2}broken:\n.*\n/, ''), 'staging')
    expect(locate(['name'])).toEqual({ file: FILE, line: 11, column: 11 })
    expect(locate(['image'])).toEqual({ file: FILE, line: 1, column: 8 })
    expect(locate(['container', 'env', 'LOG'], 'key')).toEqual({ file: FILE, line: 5, column: 32 })
  })

  it('rejects an environment block that holds environments', () => {
    expect(at(onlyProblem('environments:\n  staging:\n    environments: {}\n'))).toBe(
      '3:5 environments.staging.environments: unknown key; expected one of: image, name, strategy, url, container, health, rollback, hooks, lock, swarm, proxy, hosts, rollout, retain'
    )
  })

  it('warns when the environment input looks like a typo of a block name', () => {
    const { problems, config } = parse('image: acme/web\nenvironments:\n  staging: { name: web-staging }\n', 'stagign')
    expect(config).toEqual({ image: 'acme/web' })
    expect(problems).toEqual([
      expect.objectContaining({ severity: 'warning', line: 2, column: 1, title: 'Input environment', message: expect.stringContaining('did you mean "staging"?') })
    ])
  })

  it('deepMerge does not merge into arrays or across types', () => {
    expect(deepMerge({ a: [1, 2], b: { c: 1, d: 2 }, e: 1 }, { a: [3], b: { d: 3 }, e: { f: 1 } })).toEqual({ a: [3], b: { c: 1, d: 3 }, e: { f: 1 } })
  })
})

describe('every error kind, with its line and column', () => {
  it.each([
    // [description, text, expected "line:column message"]
    ['bad duration', 'health:\n  interval: fast\n', '2:13 health.interval: expected a duration such as 500ms, 2s or 1m, got "fast"'],
    ['bare number duration', 'health:\n  timeout: 5\n', '2:12 health.timeout: expected a duration such as 500ms, 2s or 1m (a number with a unit, e.g. 5s), got 5'],
    ['negative duration', 'health:\n  deadline: -5s\n', '2:13 health.deadline: expected a duration such as 500ms, 2s or 1m, not a negative one, got "-5s"'],
    ['absurd duration', 'lock:\n  timeout: 100000m\n', '2:12 lock.timeout: expected a duration such as 500ms, 2s or 1m of at most 1440m, got "100000m"'],
    ['zero interval', 'health: { interval: 0s }\n', '1:21 health.interval: expected a duration such as 500ms, 2s or 1m greater than zero, got "0s"'],
    ['wrong type', 'container:\n  init: "yes"\n', '2:9 container.init: expected true or false, got "yes"'],
    ['mapping expected', 'health: [1, 2]\n', '1:9 health: expected a mapping of health check settings, got a list'],
    ['empty value', 'image:\n', '1:1 image: expected an image repository such as registry.example.com/acme/web, got an empty value'],
    ['enum', 'strategy: kubernetes\n', '1:11 strategy: expected replace, swarm or proxy, got "kubernetes"'],
    ['status code range', 'health:\n  expect-status: [200, 99]\n', '2:24 health.expect-status[1]: expected a whole number from 100 to 599, got 99'],
    ['empty status list', 'health:\n  expect-status: []\n', '2:18 health.expect-status: expected at least one HTTP status code, got a list'],
    ['fraction', 'health: { healthy-threshold: 1.5 }\n', '1:30 health.healthy-threshold: expected a whole number from 1 to 100, got 1.5'],
    ['repeated port', 'container:\n  ports:\n    - "8080:80"\n    - "8080:80"\n', '4:7 container.ports[1]: expected distinct port mappings; this one is repeated, got "8080:80"'],
    ['port 0', 'container:\n  ports: ["0:80"]\n', '2:11 container.ports[0]: expected a port mapping such as 8080:80, 127.0.0.1:8080:80 or 53:53/udp (ports 1-65535); "0" is not a port from 1 to 65535 or a range of them, got "0:80"'],
    ['port 70000', 'container:\n  ports: ["70000"]\n', '2:11 container.ports[0]: expected a port mapping such as 8080:80, 127.0.0.1:8080:80 or 53:53/udp (ports 1-65535); "70000" is not a port from 1 to 65535 or a range of them, got "70000"'],
    ['env name', 'container:\n  env:\n    1BAD: x\n', '3:5 container.env.1BAD: invalid key "1BAD"; expected a variable name: letters, digits and _, not starting with a digit'],
    ['secret name', 'container:\n  secrets: [DB-URL]\n', '2:13 container.secrets[0]: expected a variable name: letters, digits and _, not starting with a digit, got "DB-URL"'],
    ['tag with option injection', 'rollback:\n  to: --privileged\n', '2:7 rollback.to: expected an image tag that does not start with "-" (docker would read it as an option), got "--privileged"'],
    ['name with option injection', 'name: -v=/:/host\n', '1:7 name: expected a container name that does not start with "-" (docker would read it as an option), got "-v=/:/host"'],
    ['image with tag', 'image: acme/web:latest\n', '1:8 image: expected an image repository such as registry.example.com/acme/web, without a tag (set the tag with the `tag` input), got "acme/web:latest"'],
    ['newline in name', 'name: "web\\nrm"\n', '1:7 name: expected a container name without control characters or line breaks, got "web\\nrm"'],
    ['shell in image', 'image: "acme/web;id"\n', '1:8 image: expected an image repository such as registry.example.com/acme/web: lower-case path components of letters, digits and single . _ or - separators, got "acme/web;id"'],
    ['newline in env value', 'container:\n  env: { A: "x\\ny" }\n', '2:13 container.env.A: expected a value without control characters or line breaks (for multi-line values use container.secrets), got "x\\ny"'],
    ['header injection', 'health:\n  headers: { X-A: "1\\r\\nHost: evil" }\n', '2:19 health.headers.X-A: expected a header value without control characters or line breaks (for multi-line values use container.secrets), got "1\\r\\nHost: evil"'],
    ['volume', 'container:\n  volumes: ["data"]\n', '2:13 container.volumes[0]: expected a volume such as data:/var/lib/app or /srv/data:/data:ro, got "data"'],
    ['restart', 'container: { restart: sometimes }\n', '1:23 container.restart: expected a restart policy: no, always, unless-stopped or on-failure[:N] (N from 1 to 9999), got "sometimes"'],
    ['docker host', 'hosts: ["ssh://-oProxyCommand=id@web1"]\n', '1:9 hosts[0]: expected a docker host such as ssh://deploy@web1.example.com, tcp://10.0.0.5:2376 or unix:///var/run/docker.sock; "-oProxyCommand=id" is not a valid user name, got "ssh://-oProxyCommand=id@web1"'],
    ['swarm order', 'swarm:\n  order: random\n', '2:10 swarm.order: expected stop-first or start-first, got "random"'],
    ['rollout parallel', 'rollout: { parallel: 0 }\n', '1:22 rollout.parallel: expected a whole number from 1 to 100, got 0'],
    ['hook argv', 'hooks:\n  pre-deploy: ["bin/migrate"]\n', '2:16 hooks.pre-deploy[0]: expected an argv list such as ["bin/migrate"], got "bin/migrate"'],
    ['url', 'url: ftp://example.com\n', '1:6 url: expected an http:// or https:// URL, got "ftp://example.com"'],
    ['expression in env', 'container:\n  env:\n    TOKEN_X: ${{ secrets.X }}\n', '3:14 container.env.TOKEN_X: GitHub does not evaluate ${{ }} expressions in this file; list TOKEN_X in container.secrets and set it in the step\'s env instead'],
    ['top level list', '- image: x\n', `1:1 ${FILE}: expected a mapping of deploy settings at the top level, got a list`],
    ['top level scalar', 'just text\n', `1:1 ${FILE}: expected a mapping of deploy settings at the top level, got "just text"`],
    ['syntax', 'image: acme/web\n  name: web\n', `2:7 ${FILE}: bad indentation of a mapping entry`],
    ['unclosed flow', 'container: { ports: ["80"\n', `2:1 ${FILE}: deficient indentation`],
    ['tab indentation', 'health:\n\tinterval: 1s\n', `2:1 ${FILE}: tab characters must not be used in indentation`],
    ['duplicate key', 'image: acme/web\nname: a\nname: b\n', `3:1 ${FILE}: duplicated mapping key`],
    ['nested duplicate key', 'health:\n  interval: 1s\n  interval: 2s\n', `3:3 ${FILE}: duplicated mapping key`],
    ['unknown tag', 'image: !!binary aGVsbG8=\n', `1:8 ${FILE}: unknown scalar tag !<tag:yaml.org,2002:binary>`],
    ['two documents', 'image: a/b\n---\nimage: c/d\n', `3:1 ${FILE}: expected one YAML document, found 2 (remove the extra "---")`],
    ['control character', 'image: "a\u0007"\n', `1:10 ${FILE}: expected valid JSON character`],
    ['complex key', '? [a, b]\n: c\n', `1:1 ${FILE}: object-based map does not support complex keys`]
  ])('%s', (_description, text, expected) => {
    expect(at(onlyProblem(text))).toBe(expected)
  })

  it('gives every problem the file, a title and error severity', () => {
    const problem = onlyProblem('health:\n  interval: fast\n')
    expect(problem).toEqual({ file: FILE, line: 2, column: 13, title: 'Invalid health.interval', message: expect.any(String), severity: 'error' })
  })

  it('collects all problems of a file, in line order', () => {
    const { problems } = parse('name: -x\nhealth:\n  interval: fast\n  timeout: -1s\ncontainer:\n  ports: ["0"]\n  bogus: 1\nimage: "UPPER/Case:tag"\n')
    expect(problems.map((problem) => `${problem.line}:${problem.column} ${problem.title}`)).toEqual([
      '1:7 Invalid name',
      '3:13 Invalid health.interval',
      '4:12 Invalid health.timeout',
      '6:11 Invalid container.ports[0]',
      '7:3 Unknown key container.bogus',
      '8:8 Invalid image'
    ])
  })
})

describe('unknown keys', () => {
  it.each([
    ['helth: {}\n', '1:1 helth: unknown key; did you mean "health"?'],
    ['health:\n  intreval: 1s\n', '2:3 health.intreval: unknown key; did you mean "interval"?'],
    ['container:\n  stopTimeout: 5s\n', '2:3 container.stopTimeout: unknown key; did you mean "stop-timeout"?'],
    ['health:\n  expect_status: [200]\n', '2:3 health.expect_status: unknown key; did you mean "expect-status"?'],
    ['ports: ["80:80"]\n', '1:1 ports: unknown key; did you mean "container.ports"?'],
    ['Image: acme/web\n', '1:1 Image: unknown key; did you mean "image"?'],
    ['rollback:\n  onfailure: true\n', '2:3 rollback.onfailure: unknown key; did you mean "on-failure"?'],
    ['swarm: { replica: 2 }\n', '1:10 swarm.replica: unknown key; did you mean "replicas"?'],
    ['lock: { wait: 5m }\n', '1:9 lock.wait: unknown key; expected one of: timeout']
  ])('%j', (text, expected) => {
    const problem = onlyProblem(text)
    expect(at(problem)).toBe(expected)
    expect(problem.title).toMatch(/^Unknown key /)
  })

  it('points at each unknown key in an environment block', () => {
    const { problems } = parse('environments:\n  staging:\n    helth: {}\n    container:\n      portz: []\n')
    expect(problems.map(at)).toEqual([
      '3:5 environments.staging.helth: unknown key; did you mean "health"?',
      '5:7 environments.staging.container.portz: unknown key; did you mean "ports"?'
    ])
  })

  it('edit distance counts swaps as one edit', () => {
    expect(editDistance('interval', 'intreval')).toBe(1)
    expect(editDistance('health', 'helth')).toBe(1)
    expect(editDistance('', 'abc')).toBe(3)
    expect(closestMatch('zzzzzz', ['image', 'name'])).toBeUndefined()
  })
})

describe('inline secrets', () => {
  it('warns at the key of a secret-looking plain env value, and keeps the config', () => {
    const { problems, config } = parse('container:\n  env:\n    NODE_ENV: production\n    API_TOKEN: abc123\n')
    expect(config?.container?.env).toEqual({ NODE_ENV: 'production', API_TOKEN: 'abc123' })
    expect(problems).toEqual([
      {
        file: FILE,
        line: 4,
        column: 5,
        title: 'Secret in container.env.API_TOKEN?',
        message: expect.stringContaining('move it to container.secrets'),
        severity: 'warning'
      }
    ])
  })

  it('warns in environment blocks too', () => {
    const { problems } = parse('environments:\n  staging:\n    container:\n      env: { dbPassword: hunter2 }\n')
    expect(problems.map((problem) => `${problem.line}:${problem.column} ${problem.severity}`)).toEqual(['4:14 warning'])
  })

  it('recognises secret-looking names', () => {
    for (const name of ['API_TOKEN', 'SECRET', 'DB_PASSWORD', 'awsSecretAccessKey', 'STRIPE_KEY', 'PRIVATE_KEY', 'GH_PAT_PASS']) expect([name, looksLikeSecretName(name)]).toEqual([name, true])
    for (const name of ['NODE_ENV', 'KEYBOARD', 'TOKEN_FILE', 'SECRET_PATH', 'API_KEY_ID', 'MONKEY', 'PORT']) expect([name, looksLikeSecretName(name)]).toEqual([name, false])
  })
})

describe('hostile documents', () => {
  it('rejects an alias bomb quickly, at the first alias', () => {
    const levels = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for (let level = 1; level < 9; level++) {
      const previous = String.fromCharCode(96 + level)
      const name = String.fromCharCode(97 + level)
      levels.push(`${name}: &${name} [${Array(10).fill(`*${previous}`).join(',')}]`)
    }
    const started = Date.now()
    const problem = onlyProblem(`${levels.join('\n')}\n`)
    expect(Date.now() - started).toBeLessThan(2000)
    expect(problem).toMatchObject({ line: 2, column: 8, title: 'YAML aliases', message: expect.stringContaining('alias bomb') })
  })

  it('rejects a self-referencing alias', () => {
    expect(at(onlyProblem('image: &a [*a]\n'))).toBe(`1:12 ${FILE}: an alias refers to the collection that contains it`)
  })

  it('rejects too many aliases', () => {
    const text = `x: &x 1\nlist: [${Array(300).fill('*x').join(', ')}]\n`
    expect(onlyProblem(text).message).toMatch(/maxAliases/)
  })

  it('rejects deep nesting', () => {
    expect(onlyProblem(`${'['.repeat(1000)}${']'.repeat(1000)}\n`).title).toBe('YAML syntax')
  })

  it('does not let __proto__ keys pollute prototypes', () => {
    const problem = onlyProblem('__proto__: { polluted: true }\n')
    expect(problem.message).toMatch(/^__proto__: unknown key/)
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined()
  })

  it('refuses non-UTF-8 bytes, pointing at the first bad byte', () => {
    const bytes = Buffer.concat([Buffer.from('image: acme/web\nname: w'), Buffer.from([0xff, 0xfe]), Buffer.from('b\n')])
    const { problems, config } = parseConfigBytes(bytes, { file: FILE, environment: 'production' })
    expect(config).toBeUndefined()
    expect(problems).toEqual([
      { file: FILE, line: 2, column: 8, title: 'Config file encoding', message: `${FILE}: expected UTF-8 text, got the byte 0xFF at line 2; save the file as UTF-8`, severity: 'error' }
    ])
  })

  it('finds invalid UTF-8: overlong forms, surrogates, truncation; accepts valid multi-byte text', () => {
    expect(firstInvalidUtf8Offset(Buffer.from('héllo ✓ 😀', 'utf8'))).toBe(-1)
    expect(firstInvalidUtf8Offset(Buffer.from([0x41, 0xc0, 0x80]))).toBe(1)
    expect(firstInvalidUtf8Offset(Buffer.from([0xed, 0xa0, 0x80]))).toBe(0)
    expect(firstInvalidUtf8Offset(Buffer.from([0x41, 0x42, 0xe2, 0x9c]))).toBe(2)
    expect(firstInvalidUtf8Offset(Buffer.from([0xf4, 0x90, 0x80, 0x80]))).toBe(0)
  })

  it('refuses an oversized document before parsing it', () => {
    const bytes = Buffer.alloc(MAX_CONFIG_BYTES + 1, 0x61)
    expect(parseConfigBytes(bytes, { file: FILE, environment: 'production' }).problems).toEqual([
      expect.objectContaining({ title: 'Config file', message: expect.stringContaining('at most 1048576 bytes (1 MiB)') })
    ])
  })
})

describe('loadConfig (files in the workspace)', () => {
  let workspace: string
  let outside: string
  const load = (configPath: string, environment = 'production') => loadConfig({ configPath, environment, workspace })

  beforeAll(() => {
    workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'deploy-config-ws-'))
    outside = fs.mkdtempSync(path.join(os.tmpdir(), 'deploy-config-out-'))
    fs.mkdirSync(path.join(workspace, '.github'))
    fs.mkdirSync(path.join(workspace, 'deploy'))
    fs.writeFileSync(path.join(workspace, 'deploy', 'ok.yml'), 'image: acme/web\nhealth:\n  interval: fast\n')
    fs.writeFileSync(path.join(workspace, 'deploy', 'big.yml'), Buffer.alloc(10 * 1024 * 1024, 0x23))
    fs.writeFileSync(path.join(workspace, 'deploy', 'latin1.yml'), Buffer.from([0x6e, 0x61, 0x6d, 0x65, 0x3a, 0x20, 0xe9, 0x0a]))
    fs.writeFileSync(path.join(outside, 'secret.yml'), 'image: acme/web\n')
    fs.symlinkSync(path.join(outside, 'secret.yml'), path.join(workspace, 'deploy', 'link.yml'))
  })
  afterAll(() => {
    fs.rmSync(workspace, { recursive: true, force: true })
    fs.rmSync(outside, { recursive: true, force: true })
  })

  it('is fine with a missing file at the default path', () => {
    for (const configPath of ['.github/deploy.yml', '', './.github/deploy.yml']) {
      const loaded = load(configPath)
      expect(loaded.problems).toEqual([])
      expect(loaded.config).toBeUndefined()
      expect(loaded.configFile).toBeUndefined()
    }
  })

  it('is an error when an explicitly given file is missing', () => {
    expect(load('deploy/missing.yml').problems).toEqual([
      { title: 'Input config', message: 'config: file "deploy/missing.yml" does not exist in the workspace', severity: 'error' }
    ])
  })

  it('reads a file relative to the workspace, with the relative path in every problem', () => {
    const { problems, configFile } = load('deploy/ok.yml')
    expect(configFile).toBe('deploy/ok.yml')
    expect(problems).toEqual([expect.objectContaining({ file: 'deploy/ok.yml', line: 3, column: 13 })])
  })

  it.each(['../secret.yml', '../../etc/passwd', '/etc/passwd', 'deploy/../../x.yml', '.'])('refuses %j outside the workspace', (configPath) => {
    const { problems } = load(configPath)
    expect(problems).toHaveLength(1)
    expect(problems[0]?.title).toBe('Input config')
    expect(problems[0]?.message).toMatch(/^config: expected a path inside the workspace|is a link|expected a regular file/)
  })

  it('refuses a symbolic link that leads out of the workspace', () => {
    expect(load('deploy/link.yml').problems[0]?.message).toBe('config: "deploy/link.yml" is a link to a file outside the workspace')
  })

  it('refuses a directory', () => {
    expect(load('deploy').problems[0]?.message).toBe('deploy: expected a regular file')
  })

  it('refuses a 10 MB file without reading it', () => {
    expect(load('deploy/big.yml').problems).toEqual([
      { file: 'deploy/big.yml', title: 'Config file', message: 'deploy/big.yml: the file is 10485760 bytes; a config may be at most 1048576 bytes (1 MiB)', severity: 'error' }
    ])
  })

  it('refuses a Latin-1 file', () => {
    expect(load('deploy/latin1.yml').problems[0]).toMatchObject({ file: 'deploy/latin1.yml', line: 1, column: 7, title: 'Config file encoding' })
  })

  it('refuses control characters in the path', () => {
    // Surrounding whitespace is trimmed, like every input.
    expect(load('deploy/ok.yml\n').problems.map((problem) => problem.title)).toEqual(['Invalid health.interval'])
    expect(load('deploy/o\u0000k.yml').problems[0]?.title).toBe('Input config')
  })
})

describe('YamlPositions', () => {
  const text = 'a:\n  b: "quoted"\n  c: [1, {d: x}]\n  e:\nf: &anchor\n  g: 1\nh: *anchor\n'
  const positions = YamlPositions.parse(text)

  it('points at values and keys', () => {
    expect(positions.locate(['a', 'b'])).toEqual({ line: 2, column: 6 })
    expect(positions.locate(['a', 'b'], 'key')).toEqual({ line: 2, column: 3 })
    expect(positions.locate(['a', 'c', 1, 'd'])).toEqual({ line: 3, column: 14 })
    expect(positions.locate(['a', 'c', 1, 'd'], 'key')).toEqual({ line: 3, column: 11 })
  })

  it('points an empty value at its key', () => {
    expect(positions.locate(['a', 'e'])).toEqual({ line: 4, column: 3 })
  })

  it('follows aliases, and falls back to the nearest ancestor', () => {
    expect(positions.locate(['h', 'g'])).toEqual({ line: 6, column: 6 })
    expect(positions.locate(['a', 'missing', 'deeper'])).toEqual({ line: 2, column: 3 })
    expect(positions.locate([])).toEqual({ line: 1, column: 1 })
  })

  it('never throws on text that does not parse', () => {
    expect(YamlPositions.parse('a: [').locate(['a'])).toBeUndefined()
  })

  it('handles CRLF line ends', () => {
    expect(YamlPositions.parse('a: 1\r\nb: 2\r\n').locate(['b'])).toEqual({ line: 2, column: 4 })
  })
})

describe('deploy.schema.json', () => {
  it('is the committed output of the zod schema (run `npm run schema` after changing it)', () => {
    const committed = fs.readFileSync(new URL('../deploy.schema.json', import.meta.url), 'utf8')
    expect(committed).toBe(configJsonSchemaText())
  })

  it('documents and restricts the keys', () => {
    const schema = JSON.parse(configJsonSchemaText()) as {
      additionalProperties: boolean
      properties: Record<string, { description?: string; properties?: Record<string, { description?: string }> }>
    }
    expect(schema.additionalProperties).toBe(false)
    expect(Object.keys(schema.properties)).toEqual(['image', 'name', 'strategy', 'url', 'container', 'health', 'rollback', 'hooks', 'lock', 'swarm', 'proxy', 'hosts', 'rollout', 'retain', 'environments'])
    expect(schema.properties['health']?.properties?.['interval']?.description).toMatch(/default 1s/)
  })
})
