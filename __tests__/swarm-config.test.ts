/**
 * Config for issue 6: `hosts:` entries with an explicit address for `{host}`, and container
 * settings that a Swarm service cannot express, reported when the config is read.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import type { ActionInputs } from '../src/inputs.js'
import { hostAddress } from '../src/pipeline.js'
import { resolveSettings } from '../src/resolve-settings.js'

let workspace: string

function inputs(overrides: Partial<ActionInputs> = {}): ActionInputs {
  return {
    config: '.github/deploy.yml',
    environment: 'production',
    command: 'deploy',
    tag: 'v1',
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

function resolve(config: string, overrides: Partial<ActionInputs> = {}): ReturnType<typeof resolveSettings> {
  fs.mkdirSync(path.join(workspace, '.github'), { recursive: true })
  fs.writeFileSync(path.join(workspace, '.github/deploy.yml'), config)
  return resolveSettings(inputs(overrides), { GITHUB_WORKSPACE: workspace, GITHUB_REPOSITORY: 'acme/web' })
}

const messages = (result: ReturnType<typeof resolveSettings>): string[] => result.problems.map((problem) => `${problem.line ?? '-'}:${problem.message}`)

beforeAll(() => {
  workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'deploy-swarm-config-'))
})
afterAll(() => fs.rmSync(workspace, { recursive: true, force: true }))
beforeEach(() => {
  jest.spyOn(process.stdout, 'write').mockImplementation(() => true)
})
afterEach(() => {
  jest.restoreAllMocks()
})

describe('hosts:', () => {
  it('keeps the list-of-strings form', () => {
    const result = resolve('image: acme/web\nhosts: ["ssh://deploy@web1.example.com", "tcp://10.0.0.5:2376"]\n')
    expect(result.problems).toEqual([])
    expect(result.settings?.hosts).toEqual(['ssh://deploy@web1.example.com', 'tcp://10.0.0.5:2376'])
    expect(result.settings).not.toHaveProperty('hostAddresses')
  })

  it('accepts mappings that say what {host} becomes, mixed with strings; IPv6 gets the brackets a URL needs', () => {
    const result = resolve(`image: acme/web
health: { url: "http://{host}:8080/health" }
hosts:
  - ssh://deploy@web1.example.com
  - docker-host: unix:///run/web2/docker.sock
    address: 10.251.7.2
  - { docker-host: "tcp://10.0.0.9:2376", address: "fd00::9" }
`)
    expect(result.problems).toEqual([])
    expect(result.settings?.hosts).toEqual(['ssh://deploy@web1.example.com', 'unix:///run/web2/docker.sock', 'tcp://10.0.0.9:2376'])
    expect(result.settings?.hostAddresses).toEqual({ 'unix:///run/web2/docker.sock': '10.251.7.2', 'tcp://10.0.0.9:2376': '[fd00::9]' })
  })

  it('reports a bad entry at its line, with the same wording as before for strings', () => {
    expect(messages(resolve('image: acme/web\nhosts:\n  - tcp://10.0.0.5\n'))).toEqual([
      '3:hosts[0]: expected a docker host such as ssh://deploy@web1.example.com, tcp://10.0.0.5:2376 or unix:///var/run/docker.sock; tcp:// needs a port, got "tcp://10.0.0.5"'
    ])
    expect(messages(resolve('image: acme/web\nhosts:\n  - docker-host: unix:///run/docker.sock\n    address: "10.0.0.5/24"\n'))).toEqual([
      '4:hosts[0].address: expected a host name or IP address such as web1.internal, 10.0.0.5 or fd00::5, got "10.0.0.5/24"'
    ])
    expect(messages(resolve('image: acme/web\nhosts:\n  - address: 10.0.0.5\n'))[0]).toMatch(/^3:hosts\[0\]/)
  })

  it('refuses the same engine twice, in either form', () => {
    expect(messages(resolve('image: acme/web\nhosts:\n  - unix:///run/docker.sock\n  - { docker-host: "unix:///run/docker.sock", address: 10.0.0.5 }\n'))).toEqual([
      '4:hosts[1]: expected distinct docker hosts; this one is repeated, got a mapping'
    ])
  })

  it('maps a docker host to its address when no address is given', () => {
    expect(hostAddress('ssh://deploy@10.0.0.5:22')).toBe('10.0.0.5')
    expect(hostAddress('tcp://web1.internal:2376')).toBe('web1.internal')
    expect(hostAddress('ssh://[fd00::5]:22')).toBe('[fd00::5]')
    expect(hostAddress('unix:///var/run/docker.sock')).toBe('127.0.0.1')
    expect(hostAddress('local')).toBe('127.0.0.1')
  })
})

describe('strategy: swarm', () => {
  it('reports ports with a bind address and volume options Swarm cannot express, at their lines', () => {
    const result = resolve(`image: acme/web
strategy: swarm
container:
  ports: ["8080:80", "127.0.0.1:9090:90"]
  volumes: ["data:/data", "/srv:/srv:z"]
`)
    expect(messages(result)).toEqual([
      '4:container.ports[1]: 127.0.0.1:9090:90 binds one address; a Swarm service publishes on every address of its nodes. Remove the address for strategy: swarm',
      '5:container.volumes[1]: the option "z" of /srv:/srv:z has no equivalent in a Swarm service\'s --mount; remove it for strategy: swarm'
    ])
  })

  it('allows the same settings with strategy: replace', () => {
    const result = resolve('image: acme/web\ncontainer:\n  ports: ["127.0.0.1:9090:90"]\n  volumes: ["/srv:/srv:z"]\n')
    expect(result.problems).toEqual([])
  })

  it('carries the swarm settings into the typed settings', () => {
    const result = resolve('image: acme/web\nstrategy: swarm\nswarm: { replicas: 2, parallelism: 1, delay: 2s, order: stop-first, monitor: 500ms }\n')
    expect(result.settings?.swarm).toEqual({ replicas: 2, parallelism: 1, delayMs: 2000, order: 'stop-first', monitorMs: 500 })
  })
})
