/**
 * `strategy: proxy` in the config: the proxy block, its defaults, and the settings that cannot go
 * with it, each reported at its line.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { checkBindAddress, checkImageReference } from '../src/config/grammar.js'
import { DEFAULT_PROXY_IMAGE } from '../src/config/schema.js'
import type { ActionInputs } from '../src/inputs.js'
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

function resolve(text: string, overrides: Partial<ActionInputs> = {}): ReturnType<typeof resolveSettings> {
  fs.mkdirSync(path.join(workspace, '.github'), { recursive: true })
  fs.writeFileSync(path.join(workspace, '.github/deploy.yml'), text)
  return resolveSettings(inputs(overrides), { GITHUB_WORKSPACE: workspace, GITHUB_REPOSITORY: 'acme/web', GITHUB_SHA: 'abc' })
}

/** Problems as "line:column severity message". */
const problems = (result: ReturnType<typeof resolveSettings>): string[] =>
  result.problems.map((problem) => `${problem.line ?? '-'}:${problem.column ?? '-'} ${problem.severity} ${problem.message}`)

beforeAll(() => {
  workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'deploy-proxy-config-'))
})
afterAll(() => fs.rmSync(workspace, { recursive: true, force: true }))
beforeEach(() => {
  jest.spyOn(process.stdout, 'write').mockImplementation(() => true)
})

describe('strategy: proxy', () => {
  it('reads the proxy block with its defaults', () => {
    const result = resolve('image: acme/web\nstrategy: proxy\nproxy:\n  port: 8080\n  app-port: 3000\nhealth:\n  url: http://127.0.0.1:8080/health\n')
    expect(problems(result)).toEqual([])
    expect(result.settings?.strategy).toBe('proxy')
    expect(result.settings?.proxy).toEqual({ port: 8080, bind: [], appPort: 3000, image: DEFAULT_PROXY_IMAGE, drainMs: 30_000, timeoutMs: 60_000, maxConnections: 4096 })
    expect(DEFAULT_PROXY_IMAGE).toMatch(/^haproxy:\d+\.\d+-alpine$/)
  })

  it('takes bind as a string or a list, an image pinned by tag or digest, and a drain', () => {
    const one = resolve('image: acme/web\nstrategy: proxy\nproxy: { port: 80, app-port: 3000, bind: 127.0.0.1, drain: 5s, image: "registry.example.com/ops/haproxy:3.0" }\n')
    expect(one.settings?.proxy).toEqual({ port: 80, bind: ['127.0.0.1'], appPort: 3000, image: 'registry.example.com/ops/haproxy:3.0', drainMs: 5_000, timeoutMs: 60_000, maxConnections: 4096 })
    const list = resolve(`image: acme/web\nstrategy: proxy\nproxy: { port: 80, app-port: 3000, bind: [10.0.0.5, "::1"], image: "haproxy@sha256:${'a'.repeat(64)}" }\n`)
    expect(list.settings?.proxy?.bind).toEqual(['10.0.0.5', '::1'])
  })

  it('has no settings block for the other strategies', () => {
    expect(resolve('image: acme/web\n').settings?.proxy).toBeUndefined()
  })

  it('requires proxy.port and proxy.app-port, at the proxy block or at strategy', () => {
    expect(problems(resolve('image: acme/web\nstrategy: proxy\n'))).toEqual([
      expect.stringMatching(/^2:1 error proxy\.port: required with strategy: proxy/),
      expect.stringMatching(/^2:1 error proxy\.app-port: required with strategy: proxy/)
    ])
    expect(problems(resolve('image: acme/web\nstrategy: proxy\nproxy:\n  port: 8080\n'))).toEqual([expect.stringMatching(/^3:1 error proxy\.app-port: required/)])
  })

  it('rejects container.ports and container.network at their lines', () => {
    const result = resolve('image: acme/web\nstrategy: proxy\nproxy: { port: 8080, app-port: 3000 }\ncontainer:\n  ports: ["8080:3000"]\n  network: backend\n')
    expect(problems(result)).toEqual([
      '5:3 error container.ports: must be empty with strategy: proxy; the app publishes nothing, users reach it through the proxy on proxy.port',
      '6:3 error container.network: cannot be set with strategy: proxy; the app joins the network the action creates for it and its proxy'
    ])
    expect(result.settings).toBeUndefined()
  })

  it('points at the environment block that sets what cannot go with the proxy', () => {
    const result = resolve('image: acme/web\nstrategy: proxy\nproxy: { port: 8080, app-port: 3000 }\nenvironments:\n  production:\n    container:\n      network: backend\n')
    expect(problems(result)).toEqual([expect.stringMatching(/^7:7 error container\.network: cannot be set with strategy: proxy/)])
  })

  it('rejects a health URL whose path HAProxy cannot check', () => {
    const result = resolve(`image: acme/web\nstrategy: proxy\nproxy: { port: 8080, app-port: 3000 }\nhealth:\n  url: "http://127.0.0.1:8080/he'alth"\n`)
    expect(problems(result)).toEqual([expect.stringMatching(/^5:8 error health\.url: the path "\/he'alth" cannot be checked by HAProxy/)])
  })

  it('warns at its line when container.restart is no: after a reboot the proxy comes back, its slots would not', () => {
    const result = resolve('image: acme/web\nstrategy: proxy\nproxy: { port: 8080, app-port: 3000 }\ncontainer:\n  restart: "no"\n')
    expect(problems(result)).toEqual([expect.stringMatching(/^5:12 warning container\.restart: is no with strategy: proxy; after a reboot the proxy comes back \(unless-stopped\) but the slots would not/)])
    expect(result.settings).toBeDefined()
  })

  it('warns at its line when health.url is on the loopback but not on proxy.port', () => {
    const result = resolve('image: acme/web\nstrategy: proxy\nproxy: { port: 8080, app-port: 3000 }\nhealth:\n  url: http://127.0.0.1:3000/health\n')
    expect(problems(result)).toEqual([expect.stringMatching(/^5:8 warning health\.url: the port 3000 is not proxy\.port \(8080\).*use http:\/\/127\.0\.0\.1:8080\/health$/)])
    expect(problems(resolve('image: acme/web\nstrategy: proxy\nproxy: { port: 8080, app-port: 3000 }\nhealth:\n  url: http://127.0.0.1:8080/health\n'))).toEqual([])
    // Another host (a load balancer in front) is not judged.
    expect(problems(resolve('image: acme/web\nstrategy: proxy\nproxy: { port: 8080, app-port: 3000 }\nhealth:\n  url: https://web.example.com/health\n'))).toEqual([])
  })

  it('rejects at its line a header value or body HAProxy cannot check', () => {
    const result = resolve('image: acme/web\nstrategy: proxy\nproxy: { port: 8080, app-port: 3000 }\nhealth:\n  url: http://127.0.0.1:8080/health\n  expect-body: costs $5\n  headers:\n    X-Token: \'a"b\'\n')
    expect(problems(result)).toEqual([
      expect.stringMatching(/^6:16 error health\.expect-body: .*cannot be checked by HAProxy.*\(strategy: proxy\)$/),
      expect.stringMatching(/^8:14 error health\.headers\.X-Token: .*cannot be checked by HAProxy.*\(strategy: proxy\)$/)
    ])
  })

  it('warns about a proxy block under another strategy', () => {
    const result = resolve('image: acme/web\nproxy:\n  port: 8080\n')
    expect(problems(result)).toEqual(['2:1 warning proxy: has no effect with strategy: replace; set strategy: proxy, or remove the proxy block'])
    expect(result.settings).toBeDefined()
  })

  it('reports bad values with the schema\'s words', () => {
    const result = resolve('image: acme/web\nstrategy: proxy\nproxy:\n  port: 70000\n  app-port: 3000\n  bind: localhost\n  image: haproxy\n  drain: soon\n  admin: true\n')
    expect(problems(result)).toEqual([
      '4:9 error proxy.port: expected a whole number from 1 to 65535, got 70000',
      expect.stringMatching(/^6:9 error proxy\.bind: expected an IP address/),
      expect.stringMatching(/^7:10 error proxy\.image: expected an image reference with a tag such as haproxy:3\.0-alpine; pin a tag or a digest/),
      expect.stringMatching(/^8:10 error proxy\.drain: expected a duration/),
      expect.stringMatching(/^9:3 error proxy\.admin: unknown key/)
    ])
  })
})

describe('grammar of the proxy values', () => {
  it.each([
    ['haproxy:3.0-alpine', undefined],
    ['registry.example.com:5000/ops/haproxy:2.8', undefined],
    [`haproxy:3.0@sha256:${'0'.repeat(64)}`, undefined],
    ['haproxy', 'pin'],
    ['haproxy:', 'not a tag'],
    ['-v:1', 'start with'],
    ['Haproxy:1', 'not an image repository'],
    ['haproxy@sha256:abc', 'digest']
  ])('image reference %s', (value, problem) => {
    const result = checkImageReference(value)
    if (problem === undefined) expect(result).toBeUndefined()
    else expect(result).toContain(problem)
  })

  it.each([['127.0.0.1'], ['0.0.0.0'], ['::1']])('bind address %s', (value) => expect(checkBindAddress(value)).toBeUndefined())
  it.each([['localhost'], ['-p'], ['']])('not a bind address: %s', (value) => expect(checkBindAddress(value)).toBeDefined())
})
