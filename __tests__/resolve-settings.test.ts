import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import type { ActionInputs } from '../src/inputs.js'
import { resolveSettings } from '../src/resolve-settings.js'

let workspace: string
let written: string[]

const BASE_ENV = (): NodeJS.ProcessEnv => ({
  GITHUB_WORKSPACE: workspace,
  GITHUB_REPOSITORY: 'acme/web',
  GITHUB_SHA: '0123456789abcdef0123456789abcdef01234567',
  GITHUB_REF: 'refs/heads/main',
  GITHUB_ACTOR: 'octocat',
  GITHUB_SERVER_URL: 'https://github.com',
  GITHUB_RUN_ID: '42',
  GITHUB_API_URL: 'https://api.github.com'
})

function inputs(overrides: Partial<ActionInputs> = {}): ActionInputs {
  return {
    config: '.github/deploy.yml',
    environment: 'production',
    command: 'deploy',
    tag: '',
    rollbackTo: '',
    image: '',
    healthUrl: '',
    registryUsername: '',
    registryPassword: '',
    dockerHost: '',
    githubToken: '',
    sshKey: '',
    sshKnownHosts: '',
    dryRun: false,
    ...overrides
  }
}

function writeConfig(text: string, file = '.github/deploy.yml'): void {
  fs.mkdirSync(path.dirname(path.join(workspace, file)), { recursive: true })
  fs.writeFileSync(path.join(workspace, file), text)
}

/** Problems as "title: message" lines, for exact assertions. */
const summary = (result: ReturnType<typeof resolveSettings>): string[] => result.problems.map((problem) => `${problem.title}: ${problem.message}`)

beforeAll(() => {
  workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'deploy-resolve-'))
})
afterAll(() => fs.rmSync(workspace, { recursive: true, force: true }))
beforeEach(() => {
  written = []
  jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written.push(String(chunk))
    return true
  })
})
afterEach(() => {
  jest.restoreAllMocks()
  fs.rmSync(path.join(workspace, '.github'), { recursive: true, force: true })
})

describe('inputs alone (no config file)', () => {
  it('builds settings with every default', () => {
    const result = resolveSettings(inputs({ image: 'registry.example.com/acme/web' }), BASE_ENV())
    expect(result.problems).toEqual([])
    expect(result.settings).toEqual({
      command: 'deploy',
      environment: 'production',
      dryRun: false,
      image: 'registry.example.com/acme/web',
      tag: '0123456789abcdef0123456789abcdef01234567',
      name: 'web',
      strategy: 'replace',
      url: undefined,
      container: { ports: [], env: {}, secrets: [], volumes: [], network: undefined, restart: undefined, command: undefined, labels: {}, init: false, stopTimeoutMs: undefined },
      health: { url: undefined, expectStatus: [200], expectBody: undefined, headers: {}, intervalMs: 1000, timeoutMs: 2000, deadlineMs: 60_000, healthyThreshold: 2, watchMs: 0 },
      rollback: { onFailure: true, to: { kind: 'last-release' } },
      hooks: { preDeploy: [] },
      lock: { timeoutMs: 600_000 },
      swarm: { replicas: undefined, parallelism: undefined, delayMs: undefined, order: undefined, monitorMs: undefined },
      hosts: [undefined],
      rollout: { parallel: 1, canary: false },
      retain: 5,
      registry: undefined,
      githubToken: undefined,
      configFile: undefined,
      run: {
        repository: 'acme/web',
        sha: '0123456789abcdef0123456789abcdef01234567',
        ref: 'refs/heads/main',
        actor: 'octocat',
        runUrl: 'https://github.com/acme/web/actions/runs/42',
        apiUrl: 'https://api.github.com',
        workspace
      }
    })
  })

  it('takes the tag name from a tag ref', () => {
    const result = resolveSettings(inputs({ image: 'acme/web' }), { ...BASE_ENV(), GITHUB_REF: 'refs/tags/v1.2.3' })
    expect(result.settings?.tag).toBe('v1.2.3')
  })

  it('prefers the tag input', () => {
    const result = resolveSettings(inputs({ image: 'acme/web', tag: 'v9' }), { ...BASE_ENV(), GITHUB_REF: 'refs/tags/v1.2.3' })
    expect(result.settings?.tag).toBe('v9')
  })

  it('refuses a git tag that is not a docker tag', () => {
    const result = resolveSettings(inputs({ image: 'acme/web' }), { ...BASE_ENV(), GITHUB_REF: 'refs/tags/release/1.0' })
    expect(result.settings).toBeUndefined()
    expect(summary(result)).toEqual([expect.stringMatching(/^Input tag: tag: the tag "release\/1.0" taken from refs\/tags\/release\/1.0 is not a valid image tag/)])
  })

  it('defaults run facts that the runner did not set', () => {
    const result = resolveSettings(inputs({ image: 'acme/web', tag: 'v1' }), { GITHUB_WORKSPACE: workspace })
    expect(result.settings?.run).toMatchObject({ apiUrl: 'https://api.github.com', repository: '', sha: '' })
    const cwd = resolveSettings(inputs({ image: 'acme/web', tag: 'v1' }), {})
    expect(cwd.settings?.run.workspace).toBe(process.cwd())
  })

  it('requires an image', () => {
    const result = resolveSettings(inputs(), BASE_ENV())
    expect(result.settings).toBeUndefined()
    expect(summary(result)).toEqual(['Missing image: image: required; set the image input, or image in .github/deploy.yml'])
  })

  it('refuses every hostile input, each as an input problem without file or line', () => {
    const result = resolveSettings(
      inputs({
        image: 'acme/web:latest',
        tag: '--privileged',
        command: 'destroy',
        healthUrl: 'http://x/\nHost: y',
        dockerHost: 'ssh://-oProxyCommand=id@host',
        registryUsername: 'ci'
      }),
      BASE_ENV()
    )
    expect(result.settings).toBeUndefined()
    expect(result.problems.every((problem) => problem.file === undefined && problem.line === undefined && problem.severity === 'error')).toBe(true)
    expect(result.problems.map((problem) => problem.title)).toEqual([
      'Input command',
      'Input image',
      'Input tag',
      'Input health-url',
      'Input docker-host',
      'Input registry-password'
    ])
    expect(summary(result)).toContain(
      'Input tag: tag: expected an image tag that does not start with "-" (docker would read it as an option), got "--privileged"'
    )
    expect(summary(result)).toContain('Input command: command: expected deploy, rollback or unlock, got "destroy"')
  })

  it('refuses rollback-to with command deploy, and validates it with rollback', () => {
    expect(summary(resolveSettings(inputs({ image: 'acme/web', rollbackTo: 'v1' }), BASE_ENV()))).toEqual([
      'Input rollback-to: rollback-to: only applies with command: rollback'
    ])
    const bad = resolveSettings(inputs({ image: 'acme/web', command: 'rollback', rollbackTo: 'v1;id' }), BASE_ENV())
    expect(bad.problems.map((problem) => problem.title)).toEqual(['Input rollback-to'])
  })

  it('uses rollback-to as the tag of a rollback, or leaves it open', () => {
    expect(resolveSettings(inputs({ image: 'acme/web', command: 'rollback', rollbackTo: 'v1.0.0' }), BASE_ENV()).settings).toMatchObject({ command: 'rollback', tag: 'v1.0.0' })
    const open = resolveSettings(inputs({ image: 'acme/web', command: 'rollback' }), BASE_ENV()).settings
    expect(open?.command).toBe('rollback')
    expect(open?.tag).toBeUndefined()
  })

  it('takes registry credentials only as a pair, with the server from the image', () => {
    const both = resolveSettings(inputs({ image: 'registry.example.com:5000/acme/web', registryUsername: 'ci', registryPassword: 'pw-secret' }), BASE_ENV())
    expect(both.settings?.registry).toEqual({ server: 'registry.example.com:5000', username: 'ci', password: 'pw-secret' })
    const hub = resolveSettings(inputs({ image: 'acme/web', registryUsername: 'ci', registryPassword: 'pw-secret' }), BASE_ENV())
    expect(hub.settings?.registry).toEqual({ server: undefined, username: 'ci', password: 'pw-secret' })
    expect(summary(resolveSettings(inputs({ image: 'acme/web', registryPassword: 'pw-secret' }), BASE_ENV()))).toEqual([
      'Input registry-username: registry-username: is empty, but registry-password is set; give both or neither'
    ])
  })

  it('uses the docker-host input as the one host, and the GitHub token', () => {
    const result = resolveSettings(inputs({ image: 'acme/web', dockerHost: 'unix:///var/run/docker.sock', githubToken: 'ghs_x' }), BASE_ENV())
    expect(result.settings).toMatchObject({ hosts: ['unix:///var/run/docker.sock'], githubToken: 'ghs_x' })
  })

  it('refuses a default name that is not a container name', () => {
    const result = resolveSettings(inputs({ image: 'acme/w' }), BASE_ENV())
    expect(summary(result)).toEqual([expect.stringMatching(/^Invalid name: name: the default name "w", the last part of the image, is not usable/)])
  })

  it('refuses an unknown environment name with control characters', () => {
    expect(resolveSettings(inputs({ image: 'acme/web', environment: 'prod\nuction' }), BASE_ENV()).problems.map((problem) => problem.title)).toEqual(['Input environment'])
  })
})

describe('with a config file', () => {
  const CONFIG = `image: registry.example.com/acme/web
name: web
url: https://web.example.com
container:
  ports: ["8080:80"]
  env: { NODE_ENV: production, PORT: 8080, DEBUG: false }
  secrets: [DATABASE_URL]
  labels: { team: web }
  init: true
  stop-timeout: 10s
health:
  url: http://127.0.0.1:8080/health
  expect-status: [200, 204]
  interval: 500ms
  watch: 1m
rollback:
  to: previous
hooks:
  pre-deploy: [["bin/migrate", "--yes"]]
lock:
  timeout: 30s
swarm:
  replicas: 2
  delay: 5s
  order: start-first
  monitor: 10s
rollout:
  parallel: 2
environments:
  staging:
    name: web-staging
    strategy: swarm
    hosts: ["ssh://deploy@stage1.example.com", "tcp://10.0.0.5:2376"]
    container: { ports: ["8081:80"] }
    health: { url: "http://{host}:8081/health" }
`
  const SECRET_ENV = (): NodeJS.ProcessEnv => ({ ...BASE_ENV(), DATABASE_URL: 'postgres://u:supersecretpw@db/app' })

  it('combines config, environment block and inputs into typed settings', () => {
    writeConfig(CONFIG)
    const result = resolveSettings(inputs({ environment: 'staging', tag: 'v2' }), SECRET_ENV())
    expect(result.problems).toEqual([])
    expect(result.settings).toMatchObject({
      environment: 'staging',
      image: 'registry.example.com/acme/web',
      tag: 'v2',
      name: 'web-staging',
      strategy: 'swarm',
      url: 'https://web.example.com',
      container: { ports: ['8081:80'], env: { NODE_ENV: 'production', PORT: '8080', DEBUG: 'false' }, secrets: ['DATABASE_URL'], labels: { team: 'web' }, init: true, stopTimeoutMs: 10_000 },
      health: { url: 'http://{host}:8081/health', expectStatus: [200, 204], intervalMs: 500, watchMs: 60_000, timeoutMs: 2000 },
      rollback: { onFailure: true, to: { kind: 'previous' } },
      hooks: { preDeploy: [['bin/migrate', '--yes']] },
      lock: { timeoutMs: 30_000 },
      swarm: { replicas: 2, delayMs: 5000, order: 'start-first', monitorMs: 10_000 },
      hosts: ['ssh://deploy@stage1.example.com', 'tcp://10.0.0.5:2376'],
      rollout: { parallel: 2 },
      configFile: '.github/deploy.yml'
    })
  })

  it('lets the image and health-url inputs override the config', () => {
    writeConfig(CONFIG)
    const result = resolveSettings(inputs({ image: 'ghcr.io/acme/other', healthUrl: 'http://127.0.0.1:9999/up' }), SECRET_ENV())
    expect(result.settings).toMatchObject({ image: 'ghcr.io/acme/other', name: 'web', health: { url: 'http://127.0.0.1:9999/up' } })
  })

  it('reads a literal rollback tag', () => {
    writeConfig('image: acme/web\nrollback: { to: v1.0.0, on-failure: false }\n')
    expect(resolveSettings(inputs(), BASE_ENV()).settings?.rollback).toEqual({ onFailure: false, to: { kind: 'tag', tag: 'v1.0.0' } })
  })

  it('masks every container secret and never puts its value into the settings', () => {
    writeConfig(CONFIG)
    const result = resolveSettings(inputs(), SECRET_ENV())
    expect(written.map((line) => line.trim())).toContain('::add-mask::postgres://u:supersecretpw@db/app')
    expect(JSON.stringify(result.settings)).not.toContain('supersecretpw')
  })

  it('masks each line of a multi-line secret too', () => {
    writeConfig('image: acme/web\ncontainer: { secrets: [TLS_KEY] }\n')
    resolveSettings(inputs(), { ...BASE_ENV(), TLS_KEY: '-----BEGIN KEY-----\nAAAABBBBCCCCDDDD\n-----END KEY-----' })
    expect(written.map((line) => line.trim())).toEqual(
      expect.arrayContaining(['::add-mask::AAAABBBBCCCCDDDD', '::add-mask::-----BEGIN KEY-----'])
    )
  })

  it('reports a missing or empty secret at its line in the config', () => {
    writeConfig('image: acme/web\ncontainer:\n  secrets:\n    - DATABASE_URL\n    - API_TOKEN\n')
    const result = resolveSettings(inputs(), { ...BASE_ENV(), API_TOKEN: '' })
    expect(result.settings).toBeUndefined()
    expect(result.problems).toEqual([
      expect.objectContaining({ file: '.github/deploy.yml', line: 4, column: 7, title: 'Missing secret DATABASE_URL', message: expect.stringContaining('DATABASE_URL is not set') }),
      expect.objectContaining({ file: '.github/deploy.yml', line: 5, column: 7, title: 'Missing secret API_TOKEN', message: expect.stringContaining('API_TOKEN is empty') })
    ])
  })

  it('a dry run (a pull request from a fork gets no secrets): missing secrets and a half-given login are warnings', () => {
    writeConfig('image: acme/web\ncontainer:\n  secrets:\n    - DATABASE_URL\n')
    const result = resolveSettings(inputs({ dryRun: true, registryUsername: 'octocat' }), BASE_ENV())
    expect(result.problems).toEqual([
      expect.objectContaining({ line: 4, title: 'Missing secret DATABASE_URL', severity: 'warning', message: expect.stringMatching(/DATABASE_URL is not set.*a dry run starts no container, so it goes on; a real deploy stops here\)$/) }),
      { title: 'Input registry-password', severity: 'warning', message: 'registry-password: is empty, but registry-username is set; the dry run goes on without a registry login (a real deploy stops here)' }
    ])
    expect(result.settings).toMatchObject({ dryRun: true, container: { secrets: ['DATABASE_URL'] } })
    expect(result.settings?.registry).toBeUndefined()
    // The same inputs without dry-run are errors, as before.
    expect(resolveSettings(inputs({ registryUsername: 'octocat' }), BASE_ENV()).problems.map((problem) => problem.severity)).toEqual(['error', 'error'])
  })

  it('command: unlock starts no container: missing secrets are no problem there', () => {
    writeConfig('image: acme/web\ncontainer:\n  secrets:\n    - DATABASE_URL\n')
    const result = resolveSettings(inputs({ command: 'unlock', unlockReason: 'runner lost' }), BASE_ENV())
    expect(result.problems).toEqual([])
    expect(result.settings).toMatchObject({ command: 'unlock', unlock: { reason: 'runner lost', force: false } })
  })

  it('refuses a secret that is also a plain env value', () => {
    writeConfig('image: acme/web\ncontainer:\n  env: { DB: x }\n  secrets: [DB]\n')
    const result = resolveSettings(inputs(), { ...BASE_ENV(), DB: 'value' })
    expect(result.problems).toEqual([expect.objectContaining({ line: 3, column: 10, title: 'Invalid container.env.DB' })])
  })

  it('refuses docker-host together with hosts in the config', () => {
    writeConfig('image: acme/web\nhosts: ["ssh://a@web1"]\n')
    expect(resolveSettings(inputs({ dockerHost: 'ssh://a@web2' }), BASE_ENV()).problems.map((problem) => problem.title)).toEqual(['Input docker-host'])
  })

  it('checks swarm service names, which cannot hold dots', () => {
    writeConfig('image: acme/web\nname: web.blue\nstrategy: swarm\n')
    const result = resolveSettings(inputs(), BASE_ENV())
    expect(result.problems).toEqual([expect.objectContaining({ file: '.github/deploy.yml', line: 2, column: 7, title: 'Invalid name' })])
  })

  it('returns config problems with their lines and no settings', () => {
    writeConfig('image: acme/web\nhealth:\n  interval: fast\n')
    const result = resolveSettings(inputs(), BASE_ENV())
    expect(result.settings).toBeUndefined()
    expect(result.problems).toEqual([
      {
        file: '.github/deploy.yml',
        line: 3,
        column: 13,
        title: 'Invalid health.interval',
        message: 'health.interval: expected a duration such as 500ms, 2s or 1m, got "fast"',
        severity: 'error'
      }
    ])
  })

  it('keeps warnings next to valid settings', () => {
    writeConfig('image: acme/web\ncontainer:\n  env: { API_KEY: abc }\n')
    const result = resolveSettings(inputs(), BASE_ENV())
    expect(result.settings).toBeDefined()
    expect(result.problems).toEqual([expect.objectContaining({ severity: 'warning', line: 3 })])
  })

  it('reads an explicit config path and fails when it is missing', () => {
    writeConfig('image: acme/web\n', '.github/deploy/prod.yml')
    expect(resolveSettings(inputs({ config: '.github/deploy/prod.yml' }), BASE_ENV()).settings?.configFile).toBe('.github/deploy/prod.yml')
    expect(summary(resolveSettings(inputs({ config: 'nope.yml', image: 'acme/web' }), BASE_ENV()))).toEqual([
      'Input config: config: file "nope.yml" does not exist in the workspace'
    ])
    expect(resolveSettings(inputs({ config: '../outside.yml', image: 'acme/web' }), BASE_ENV()).problems.map((problem) => problem.title)).toEqual(['Input config'])
  })
})

describe('SSH inputs and health.from (issue 19)', () => {
  it('carries ssh-key and ssh-known-hosts into the settings, and nothing without them', () => {
    const withSsh = resolveSettings(inputs({ image: 'acme/web', dockerHost: 'ssh://deploy@web1', sshKey: 'KEY', sshKnownHosts: 'web1 ssh-ed25519 AAAA' }), BASE_ENV())
    expect(withSsh.settings?.ssh).toEqual({ key: 'KEY', knownHosts: 'web1 ssh-ed25519 AAAA' })
    expect(resolveSettings(inputs({ image: 'acme/web' }), BASE_ENV()).settings?.ssh).toBeUndefined()
  })

  it('takes health.from, and errors at its line where it cannot work', () => {
    writeConfig(['image: acme/web', 'hosts: [ssh://deploy@web1]', 'health:', '  url: http://127.0.0.1:8080/health', '  from: host', ''].join('\n'))
    expect(resolveSettings(inputs(), BASE_ENV()).settings?.health.from).toBe('host')

    writeConfig(['image: acme/web', 'hosts: [ssh://deploy@web1]', 'health:', '  url: https://web1.example.com/health', '  from: host', ''].join('\n'))
    const https = resolveSettings(inputs(), BASE_ENV())
    expect(summary(https)).toEqual([expect.stringMatching(/^Invalid health\.from: health\.from: host probes through a port forwarded over SSH, where no TLS certificate can match/)])
    expect(https.problems[0]).toMatchObject({ file: '.github/deploy.yml', line: 5 })

    writeConfig(['image: acme/web', 'hosts: [tcp://10.0.0.5:2376]', 'health:', '  url: http://127.0.0.1:8080/health', '  from: host', ''].join('\n'))
    expect(summary(resolveSettings(inputs(), BASE_ENV()))).toEqual([expect.stringMatching(/^Invalid health\.from: health\.from: host needs ssh:\/\/ hosts: tcp:\/\/10\.0\.0\.5:2376 has no SSH connection/)])

    writeConfig(['image: acme/web', 'health:', '  from: sideways', ''].join('\n'))
    expect(summary(resolveSettings(inputs(), BASE_ENV()))).toEqual([expect.stringMatching(/health\.from: expected host or runner/)])
  })
})

describe('swarm: and rollout: blocks that would do nothing', () => {
  const problemsOf = (result: ReturnType<typeof resolveSettings>): string[] =>
    result.problems.map((problem) => `${problem.line ?? '?'}:${problem.column ?? '?'} ${problem.severity} ${problem.message}`)

  it.each(['replace', 'proxy'])('warns at the swarm: key under strategy: %s, and still deploys', (strategy) => {
    const proxy = strategy === 'proxy' ? ['proxy: { port: 8080, app-port: 3000 }'] : []
    writeConfig(['image: acme/web', `strategy: ${strategy}`, ...proxy, 'swarm:', '  replicas: 3', ''].join('\n'))
    const result = resolveSettings(inputs(), BASE_ENV())
    expect(result.settings).toBeDefined()
    expect(problemsOf(result)).toEqual([
      `${3 + proxy.length}:1 warning swarm: has no effect with strategy: ${strategy}; set strategy: swarm, or remove the swarm block`
    ])
    expect(result.problems[0]).toMatchObject({ file: '.github/deploy.yml', title: 'Invalid swarm' })
  })

  it('says nothing about a swarm: block under strategy: swarm', () => {
    writeConfig(['image: acme/web', 'strategy: swarm', 'swarm: { replicas: 3 }', ''].join('\n'))
    expect(resolveSettings(inputs(), BASE_ENV()).problems).toEqual([])
  })

  it.each<[string, string[], Partial<ActionInputs>]>([
    ['no hosts (the runner engine)', [], {}],
    ['the docker-host input', [], { dockerHost: 'ssh://deploy@web1' }],
    ['a one-entry hosts list', ['hosts: [ssh://deploy@web1]'], {}]
  ])('warns at the rollout: key with one host: %s', (_what, hosts, given) => {
    writeConfig(['image: acme/web', ...hosts, 'rollout:', '  parallel: 2', ''].join('\n'))
    const result = resolveSettings(inputs(given), BASE_ENV())
    expect(result.settings).toBeDefined()
    expect(problemsOf(result)).toEqual([
      `${2 + hosts.length}:1 warning rollout: has no effect with one host; it sets how the engines listed in hosts: are switched, so list two or more, or remove the rollout block`
    ])
  })

  it.each(['replace', 'proxy', 'swarm'])('uses rollout: with several hosts under strategy: %s, without a warning', (strategy) => {
    const proxy = strategy === 'proxy' ? ['proxy: { port: 8080, app-port: 3000 }'] : []
    writeConfig(['image: acme/web', `strategy: ${strategy}`, ...proxy, 'hosts: [ssh://deploy@web1, ssh://deploy@web2]', 'rollout: { parallel: 2, canary: true }', ''].join('\n'))
    const result = resolveSettings(inputs(), BASE_ENV())
    expect(result.problems).toEqual([])
    expect(result.settings?.rollout).toEqual({ parallel: 2, canary: true })
  })

  it('points at the environment block that holds the ignored swarm: block', () => {
    writeConfig(['image: acme/web', 'environments:', '  staging:', '    swarm: { replicas: 2 }', ''].join('\n'))
    expect(problemsOf(resolveSettings(inputs({ environment: 'staging' }), BASE_ENV()))).toEqual([
      '4:5 warning swarm: has no effect with strategy: replace; set strategy: swarm, or remove the swarm block'
    ])
  })
})
