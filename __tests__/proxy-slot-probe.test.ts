/**
 * Pieces of `strategy: proxy` that need no engine: the slot health probe over `nc` (request, answer
 * parsing, verdicts) and `show servers state`, which tells which slot HAProxy routes to.
 */
import { describe, expect, it } from '@jest/globals'
import { HaproxyRuntime, healthChecksCommands, parseServersState, showServersStateCommands } from '../src/proxy/runtime-api.js'
import { parseHttpAnswer, probeSlot, slotRequest } from '../src/proxy/slot-probe.js'
import type { HealthSettings } from '../src/settings.js'

const HEALTH: HealthSettings = {
  url: 'http://127.0.0.1:8080/health',
  expectStatus: [200],
  expectBody: 'status: green',
  headers: {},
  intervalMs: 250,
  timeoutMs: 1_000,
  deadlineMs: 5_000,
  healthyThreshold: 2,
  watchMs: 0
}

/** `show servers state app` as HAProxy 2.6.12 prints it: blue ready and up, green disabled in the config (captured). */
const STATE_HEADER =
  '# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port'
const stateLine = (slot: string, op: number, admin: number): string => `3 app ${slot === 'blue' ? 1 : 2} ${slot} 10.253.0.${slot === 'blue' ? 2 : 3} ${op} ${admin} 1 1 1 6 3 4 6 0 0 0 shop-${slot} 3000 - 0 0 - - 0`
const servers = (blue: [number, number], green: [number, number]): string => ['1', STATE_HEADER, stateLine('blue', ...blue), stateLine('green', ...green), '', ''].join('\n')

const STAT_HEADER = '# pxname,svname,qcur,scur,status,check_status,addr'
const stat = (blue: string, green: string): string => [STAT_HEADER, `app,blue,0,0,${blue},L7OK,10.253.0.2:3000`, `app,green,0,0,${green},L7OK,10.253.0.3:3000`, '', ''].join('\n')

describe('slot probe', () => {
  it('sends a plain HTTP/1.0 GET with Host, the configured headers and Connection: close', () => {
    expect(slotRequest('/health?full=1', '127.0.0.1:8080', { 'X-Probe': 'deploy' })).toBe(
      'GET /health?full=1 HTTP/1.0\r\nHost: 127.0.0.1:8080\r\nX-Probe: deploy\r\nUser-Agent: deploy-action\r\nConnection: close\r\n\r\n'
    )
    expect(slotRequest('/up', 'x', { host: 'web.example.com', Connection: 'keep-alive' })).toBe(
      'GET /up HTTP/1.0\r\nhost: web.example.com\r\nUser-Agent: deploy-action\r\nConnection: close\r\n\r\n'
    )
    expect(() => slotRequest('/a b', 'x', {})).toThrow('not a request path')
    expect(() => slotRequest('/', 'x', { 'X-A': 'a\r\nX-B: b' })).toThrow('line break')
  })

  it('parses answers, chunked ones included', () => {
    expect(parseHttpAnswer('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nstatus: green')).toEqual({ status: 200, body: 'status: green' })
    expect(parseHttpAnswer('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nstatus:\r\n6\r\n green\r\n0\r\n\r\n')).toEqual({ status: 200, body: 'status: green' })
    expect(parseHttpAnswer('SSH-2.0-OpenSSH')).toBeUndefined()
  })

  it.each([
    ['HTTP/1.0 200 OK\r\n\r\nstatus: green', { ok: true, status: 200 }],
    ['HTTP/1.0 503 Service Unavailable\r\n\r\nstatus: green', { ok: false, status: 503, failure: 'status', detail: 'expected 200' }],
    ['HTTP/1.0 200 OK\r\n\r\nnot ok', { ok: false, status: 200, failure: 'body', detail: 'body does not contain "status: green" (it begins "not ok")' }],
    ['', { ok: false, failure: 'connection', error: 'ECONNRESET' }],
    ['garbage', { ok: false, failure: 'connection', error: 'EPROTO' }]
  ])('judges the answer %j', async (answer, expected) => {
    expect(await probeSlot(async () => answer, 'GET / HTTP/1.0\r\n\r\n', HEALTH)).toMatchObject(expected)
  })

  it.each([
    ['nc: can\'t connect to remote host (10.253.0.3): Connection refused', 'ECONNREFUSED'],
    ['nc: bad address \'shop-green\'', 'ENOTFOUND'],
    ['docker container did not finish within 6 s and was stopped', 'TIMEOUT']
  ])('reads a failed exchange: %s', async (message, code) => {
    const result = await probeSlot(async () => Promise.reject(new Error(message)), 'GET / HTTP/1.0\r\n\r\n', HEALTH)
    expect(result).toMatchObject({ ok: false, failure: 'connection', error: code })
  })
})

describe('show servers state', () => {
  it('reads each slot\'s admin state: ready, drain or maint', () => {
    const states = parseServersState(servers([2, 0], [0, 5]))
    expect(states.map(({ server, ready, drain, maint }) => ({ server, ready, drain, maint }))).toEqual([
      { server: 'blue', ready: true, drain: false, maint: false },
      { server: 'green', ready: false, drain: false, maint: true }
    ])
    // Enabled after `disabled` in the config: the config bit (4) stays, the server is ready.
    expect(parseServersState(servers([2, 8], [2, 4]))).toMatchObject([{ drain: true, ready: false }, { ready: true, maint: false }])
    expect(() => parseServersState('Unknown command')).toThrow('unexpected answer')
    expect(showServersStateCommands()).toBe('show servers state app\n')
  })

  it('takes one exchange for both views, and routes to the one ready slot, even when its checks fail', async () => {
    const sent: string[] = []
    const runtime = new HaproxyRuntime(async (commands) => {
      sent.push(commands)
      return `${servers([2, 8], [0, 4])}${stat('DRAIN', 'DOWN')}`
    })
    const snapshot = await runtime.snapshot()
    expect(sent).toEqual(['show servers state app; show stat app 4 -1\n'])
    expect(snapshot.routed).toBe('green')
    expect(snapshot.stat.green.state).toBe('DOWN')
    expect(snapshot.admin.blue.drain).toBe(true)
  })

  it('turns a slot\'s health checks off once it is the only server, and on before it is checked again', async () => {
    expect(healthChecksCommands('green', false)).toBe('disable health app/green\n')
    expect(healthChecksCommands('blue', true)).toBe('enable health app/blue\n')
    const refused = new HaproxyRuntime(async () => 'No such server.\n')
    await expect(refused.setHealthChecks('blue', false)).rejects.toThrow('refused "disable health app/blue": No such server.')
  })

  it('routes to no slot while both or neither are ready', async () => {
    const both = new HaproxyRuntime(async () => `${servers([2, 0], [2, 0])}${stat('UP', 'UP')}`)
    expect((await both.snapshot()).routed).toBeUndefined()
    const none = new HaproxyRuntime(async () => `${servers([2, 8], [0, 1])}${stat('DRAIN', 'MAINT')}`)
    expect((await none.snapshot()).routed).toBeUndefined()
  })
})
