import { describe, expect, it } from '@jest/globals'
import fc from 'fast-check'
import {
  CONNECT_BUDGET_MS,
  connectRetries,
  DEFAULT_TIMEOUTS,
  haproxyTime,
  otherSlot,
  PROXY_LISTEN_PORT,
  proxyContainerName,
  ProxyConfigError,
  renderHaproxyConfig,
  RUNTIME_API_PORT,
  slotContainerName,
  validateDockerName,
  validateSlotHost,
  validateUrlPath,
  type HaproxyConfigOptions
} from '../src/proxy/haproxy-config.js'

const BASE: HaproxyConfigOptions = { name: 'shop', appPort: 3000, live: 'blue', healthPath: '/health', drainMs: 30_000 }

/** The config's lines without indentation, comments and blank lines. */
function directives(config: string): string[] {
  return config
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
}

/** Lines of one section (`global`, `backend app`, …) without indentation. */
function section(config: string, header: string): string[] {
  const lines = config.split('\n')
  const start = lines.indexOf(header)
  expect(start).toBeGreaterThanOrEqual(0)
  const body: string[] = []
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith('  ')) break
    body.push(line.trim())
  }
  return body
}

describe('renderHaproxyConfig', () => {
  it('renders the whole config for an app whose blue slot is live', () => {
    expect(renderHaproxyConfig(BASE)).toBe(`# haproxy.cfg for shop, rendered by deploy-action (strategy: proxy). Live slot: blue.
# This file always says what runs: whatever deploy-action sets through the runtime API it writes
# here too, so a restart or a reload of the proxy changes nothing.
global
  log stdout format raw local0 notice
  master-worker
  stats socket ipv4@127.0.0.1:9999 level admin
  stats timeout 30s
  maxconn 4096
  hard-stop-after 30s

defaults
  mode http
  log global
  option httplog
  option dontlog-normal
  option log-separate-errors
  option forwardfor
  option idle-close-on-response
  option redispatch 1
  retries 19
  timeout connect 250ms
  timeout client 60s
  timeout server 60s
  timeout http-request 10s
  timeout http-keep-alive 10s
  timeout queue 30s
  timeout tunnel 3600s
  timeout check 3s

resolvers docker
  nameserver dns 127.0.0.11:53
  resolve_retries 3
  timeout resolve 1s
  timeout retry 1s
  hold valid 1s
  hold other 30s
  hold refused 30s
  hold nx 30s
  hold timeout 30s

frontend http-in
  bind :8080
  default_backend app

backend app
  balance roundrobin
  option httpchk
  http-check send meth GET uri /health ver HTTP/1.1
  http-check expect status 200-399
  default-server check inter 2s fastinter 1s downinter 2s rise 2 fall 3 resolvers docker resolve-prefer ipv4
  server blue shop-blue:3000 init-addr last,libc,none no-check
  server green shop-green:3000 init-addr none disabled
`)
  })

  it('names the live slot: the other one is disabled and starts without an address', () => {
    const green = section(renderHaproxyConfig({ ...BASE, live: 'green' }), 'backend app')
    expect(green).toContain('server blue shop-blue:3000 init-addr none disabled')
    expect(green).toContain('server green shop-green:3000 init-addr last,libc,none no-check')
    expect(renderHaproxyConfig({ ...BASE, live: 'green' })).toContain('Live slot: green.')
  })

  it("checks a slot the way the action does: the Host header and health.headers, the expected status codes and body", () => {
    const backend = section(
      renderHaproxyConfig({ ...BASE, check: { host: 'shop.example.com', headers: { 'X-Probe': 'deploy action', Accept: 'text/plain' }, expectStatus: [200, 204], expectBody: 'status: green' } }),
      'backend app'
    )
    expect(backend.slice(1, 5)).toEqual([
      'option httpchk',
      'http-check send meth GET uri /health ver HTTP/1.1 hdr Host "shop.example.com" hdr X-Probe "deploy action" hdr Accept "text/plain"',
      'http-check expect rstatus ^(200|204)$',
      'http-check expect string "status: green"'
    ])
    // A Host among health.headers wins over the URL's.
    const own = section(renderHaproxyConfig({ ...BASE, check: { host: 'shop.example.com', headers: { host: 'internal' }, expectStatus: [200] } }), 'backend app')
    expect(own).toContain('http-check send meth GET uri /health ver HTTP/1.1 hdr host "internal"')
    expect(own).toContain('http-check expect status 200')
  })

  it('gives each slot the port its app was started with, so a new proxy.app-port reaches only the new slot', () => {
    const backend = section(renderHaproxyConfig({ ...BASE, appPort: 4000, slotPorts: { blue: 3000 } }), 'backend app')
    expect(backend).toContain('server blue shop-blue:3000 init-addr last,libc,none no-check')
    expect(backend).toContain('server green shop-green:4000 init-addr none disabled')
  })

  it.each([
    ['a quote in a header value', { headers: { 'X-A': 'a"b' } }, /health\.headers\.X-A: .* cannot be checked by HAProxy/],
    ['a dollar sign in the body', { expectBody: 'costs $5' }, /health\.expect-body: /],
    ['a newline in the Host', { host: 'a\nb' }, /health\.headers\.Host: /],
    ['a header name with a space', { headers: { 'X A': 'b' } }, /health\.headers: "X A" is not an HTTP header name/]
  ])('refuses a check value HAProxy cannot take as one word: %s', (_name, check, message) => {
    expect(() => renderHaproxyConfig({ ...BASE, check })).toThrow(message)
  })

  it('checks only the TCP connection when no health path is given', () => {
    const backend = section(renderHaproxyConfig({ ...BASE, healthPath: undefined }), 'backend app')
    expect(backend.some((line) => line.startsWith('option httpchk') || line.startsWith('http-check'))).toBe(false)
    expect(backend.find((line) => line.startsWith('default-server'))).toMatch(/^default-server check /)
  })

  it('keeps the runtime API on the loopback and listens on the fixed internal port', () => {
    const config = renderHaproxyConfig(BASE)
    expect(section(config, 'global')).toContain(`stats socket ipv4@127.0.0.1:${RUNTIME_API_PORT} level admin`)
    expect(section(config, 'frontend http-in')).toContain(`bind :${PROXY_LISTEN_PORT}`)
    expect(config.match(/stats socket/g)).toHaveLength(1)
  })

  it('uses the given slot hosts, listen port, limits and timeouts', () => {
    const config = renderHaproxyConfig({
      ...BASE,
      slotHosts: { blue: 'shop_a', green: 'shop.b' },
      listenPort: 8081,
      maxConnections: 20_000,
      checkIntervalMs: 1_500,
      drainMs: 2_500,
      timeouts: { serverMs: 120_000, connectMs: 1_500 }
    })
    expect(section(config, 'backend app')).toEqual(
      expect.arrayContaining(['server blue shop_a:3000 init-addr last,libc,none no-check', 'server green shop.b:3000 init-addr none disabled'])
    )
    expect(section(config, 'frontend http-in')).toContain('bind :8081')
    expect(section(config, 'global')).toEqual(expect.arrayContaining(['maxconn 20000', 'hard-stop-after 2500ms']))
    expect(section(config, 'defaults')).toEqual(expect.arrayContaining(['timeout server 120s', 'timeout connect 1500ms', 'retries 3', 'timeout client 60s']))
    expect(section(config, 'backend app').find((line) => line.startsWith('default-server'))).toContain('inter 1500ms fastinter 750ms downinter 1500ms')
  })

  it('fails over from a dead slot within one short connect attempt, and keeps trying for about 5 s in all (issue 21)', () => {
    const defaults = section(renderHaproxyConfig(BASE), 'defaults')
    // Every retry goes through the load balancer again: after the switch back, the other slot.
    expect(defaults).toEqual(expect.arrayContaining(['option redispatch 1', 'timeout connect 250ms', 'retries 19']))
    // Only connection failures are retried (HAProxy's default): a request that reached an app is never sent twice.
    expect(defaults.some((line) => line.startsWith('retry-on'))).toBe(false)
    // (retries + 1) attempts of `timeout connect` fill CONNECT_BUDGET_MS, never fewer than HAProxy's default 3 retries.
    expect(CONNECT_BUDGET_MS).toBe(5_000)
    expect([250, 300, 1_000, 2_500, 5_000, 10_000].map(connectRetries)).toEqual([19, 16, 4, 3, 3, 3])
    for (const connectMs of [100, 250, 300, 500, 1_000]) expect((connectRetries(connectMs) + 1) * connectMs).toBeGreaterThanOrEqual(CONNECT_BUDGET_MS)
  })

  it('gives a soft stop at least one second, however short proxy.drain is', () => {
    expect(section(renderHaproxyConfig({ ...BASE, drainMs: 0 }), 'global')).toContain('hard-stop-after 1s')
  })

  it('is pure: the same options give the same text', () => {
    expect(renderHaproxyConfig(BASE)).toBe(renderHaproxyConfig({ ...BASE }))
  })

  it.each<[string, Partial<HaproxyConfigOptions>, RegExp]>([
    ['a name with a newline', { name: 'shop\n  stats socket ipv4@0.0.0.0:9999 level admin' }, /^name: .* is not a docker name/],
    ['a name with a space', { name: 'shop web' }, /not a docker name/],
    ['a name starting with a dash', { name: '-shop' }, /not a docker name/],
    ['an empty name', { name: '' }, /not a docker name/],
    ['a slot host with a quote', { slotHosts: { green: 'x"y' } }, /^green slot host: /],
    ['a slot host with a label over 63 characters', { slotHosts: { blue: 'a'.repeat(64) } }, /cannot be resolved by docker's DNS/],
    ['a slot host with an empty label', { slotHosts: { blue: 'a..b' } }, /cannot be resolved/],
    ['a name too long to resolve with its slot suffix', { name: 'n'.repeat(58) }, /^green slot host: .*1 to 63 characters/],
    ['a health path with a space', { healthPath: '/health check' }, /^health path: .* is not a plain URL path/],
    ['a health path with a newline', { healthPath: '/h\nbackend evil' }, /not a plain URL path/],
    ['a health path with a comment sign', { healthPath: '/h#x' }, /not a plain URL path/],
    ['a health path with an environment variable', { healthPath: '/h${HOME}' }, /not a plain URL path/],
    ['a health path with a backslash', { healthPath: '/h\\x' }, /not a plain URL path/],
    ['a health path with a quote', { healthPath: "/h'x" }, /not a plain URL path/],
    ['a relative health path', { healthPath: 'health' }, /not a plain URL path/],
    ['a health path with a broken percent-escape', { healthPath: '/h%zz' }, /not a plain URL path/],
    ['a health path with non-ASCII', { healthPath: '/héalth' }, /not a plain URL path/],
    ['port 0', { appPort: 0 }, /^proxy.app-port: expected a whole number from 1 to 65535, got 0/],
    ['a fractional port', { appPort: 80.5 }, /proxy.app-port/],
    ['a port over 65535', { appPort: 70_000 }, /proxy.app-port/],
    ['the runtime API port as listen port', { listenPort: 9999 }, /runtime API's port/],
    ['a negative drain', { drainMs: -1 }, /^proxy.drain: /],
    ['a NaN timeout', { timeouts: { serverMs: Number.NaN } }, /^timeout serverMs: /],
    ['a zero timeout', { timeouts: { clientMs: 0 } }, /^timeout clientMs: /],
    ['an unknown slot', { live: 'purple' as 'blue' }, /^live slot: expected "blue" or "green"/]
  ])('rejects %s', (_, override, message) => {
    expect(() => renderHaproxyConfig({ ...BASE, ...override })).toThrow(ProxyConfigError)
    expect(() => renderHaproxyConfig({ ...BASE, ...override })).toThrow(message)
  })

  it('never lets a name, host or path add a line or a directive (property)', () => {
    const anything = fc.string({ unit: 'binary', maxLength: 40 })
    const nameLike = fc.oneof(anything, fc.stringMatching(/^[A-Za-z0-9][ -~]{0,20}$/), fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,20}$/))
    const pathLike = fc.oneof(anything, fc.stringMatching(/^\/[ -~]{0,30}$/), fc.stringMatching(/^\/[\s\S]{0,30}$/))
    fc.assert(
      fc.property(nameLike, nameLike, pathLike, (name, host, path) => {
        const options: HaproxyConfigOptions = { ...BASE, name, slotHosts: { green: host }, healthPath: path }
        let config: string
        try {
          config = renderHaproxyConfig(options)
        } catch (error) {
          expect(error).toBeInstanceOf(ProxyConfigError)
          return
        }
        // Accepted values: the structure is exactly that of the base config.
        const expected = directives(renderHaproxyConfig({ ...BASE, name: 'x', slotHosts: { green: 'y' }, healthPath: '/p' }))
        const got = directives(config)
        expect(got).toHaveLength(expected.length)
        got.forEach((line, index) => expect(line.split(' ')[0]).toBe(expected[index]?.split(' ')[0]))
        expect(config).not.toMatch(/["'\\$\r]|[^\x20-\x7e\n]/)
      }),
      { numRuns: 500 }
    )
  })

  it('never lets a check header, Host or body add a line, a directive or an unquoted word (property)', () => {
    const anything = fc.string({ unit: 'binary', maxLength: 40 })
    const printable = fc.stringMatching(/^[ -~]{1,30}$/)
    const value = fc.oneof(anything, printable)
    const headerName = fc.oneof(anything, fc.stringMatching(/^[A-Za-z0-9-]{1,12}$/))
    fc.assert(
      fc.property(value, headerName, value, value, (host, name, headerValue, body) => {
        const check = { host, headers: { [name]: headerValue }, expectBody: body }
        let config: string
        try {
          config = renderHaproxyConfig({ ...BASE, check })
        } catch (error) {
          expect(error).toBeInstanceOf(ProxyConfigError)
          return
        }
        const expected = directives(renderHaproxyConfig({ ...BASE, check: { host: 'h', headers: { N: 'v' }, expectBody: 'b' } }))
        const got = directives(config)
        expect(got).toHaveLength(expected.length)
        got.forEach((line, index) => expect(line.split(' ')[0]).toBe(expected[index]?.split(' ')[0]))
        // Every accepted value sits inside its own pair of double quotes, and nothing else is quoted.
        const send = got.find((line) => line.startsWith('http-check send')) ?? ''
        expect(send.match(/"/g)).toHaveLength(name.toLowerCase() === 'host' ? 2 : 4)
        expect(config).not.toMatch(/[\\$\r]|[^\x20-\x7e\n]/)
      }),
      { numRuns: 500 }
    )
  })
})

describe('validators', () => {
  it('accept docker names, DNS-resolvable hosts and plain URL paths', () => {
    expect(validateDockerName('web_1.prod-eu', 'name')).toBe('web_1.prod-eu')
    expect(validateSlotHost('a'.repeat(63), 'host')).toBe('a'.repeat(63))
    expect(validateUrlPath('/', 'path')).toBe('/')
    expect(validateUrlPath('/up?full=1&x=%2F', 'path')).toBe('/up?full=1&x=%2F')
    expect(validateUrlPath("/a-b_c.d~e!f&g(h)*i+j,k;l=m:n@o", 'path')).toBe("/a-b_c.d~e!f&g(h)*i+j,k;l=m:n@o")
  })

  it('derive the container names of an app', () => {
    expect(slotContainerName('shop', 'blue')).toBe('shop-blue')
    expect(slotContainerName('shop', 'green')).toBe('shop-green')
    expect(proxyContainerName('shop')).toBe('shop-proxy')
    expect(() => proxyContainerName('shop;x')).toThrow(ProxyConfigError)
    expect(otherSlot('blue')).toBe('green')
    expect(otherSlot('green')).toBe('blue')
  })

  it('write HAProxy times in seconds when whole, else in milliseconds', () => {
    expect(haproxyTime(DEFAULT_TIMEOUTS.tunnelMs)).toBe('3600s')
    expect(haproxyTime(1_500)).toBe('1500ms')
    expect(haproxyTime(250)).toBe('250ms')
  })
})
