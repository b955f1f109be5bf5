import { describe, expect, it } from '@jest/globals'
import type { Slot } from '../src/proxy/haproxy-config.js'
import {
  batch,
  cutSessionsCommands,
  describeServer,
  expectSilentSuccess,
  HaproxyRuntime,
  isHealthy,
  parseShowStat,
  prepareCommands,
  retireCommands,
  RuntimeApiError,
  showStatCommands,
  switchCommands,
  type ServerStat
} from '../src/proxy/runtime-api.js'

/** The header HAProxy 2.6.12 prints for `show stat` (captured from the test image). */
const HEADER =
  '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,'

/** `show stat app 4 -1` right after start: blue live, green's container not created yet (captured). */
const AT_START = [
  HEADER,
  'app,blue,0,0,0,1,,1,59,160,,0,,0,0,0,0,UP,1,1,0,0,0,1,0,,1,3,1,,1,,2,1,,1,L7OK,200,26,0,1,0,0,0,0,,,,1,0,0,,,,,1,,,0,2,1,4,,,,Layer7 check passed,,2,2,3,,,,10.253.2.2:3000,,http,,,,,,,,0,1,0,,,0,,0,2,1,4,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,',
  'app,green,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT (resolution),1,1,0,0,0,1,1,,1,3,2,,0,,2,0,,0,,,,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,',
  '',
  ''
].join('\n')

const COLUMNS = HEADER.slice(2).split(',')

interface FakeServer {
  status: string
  check: string
  lastChk?: string
  scur: number
  qcur?: number
  addr?: string
}

/** One CSV row as HAProxy prints it, from the fields a test cares about. */
function row(backend: string, server: string, fields: FakeServer): string {
  const values: Record<string, string> = {
    pxname: backend,
    svname: server,
    status: fields.status,
    check_status: fields.check,
    last_chk: fields.lastChk ?? '',
    scur: String(fields.scur),
    qcur: String(fields.qcur ?? 0),
    stot: '7',
    addr: fields.addr ?? '',
    lastchg: '3',
    check_code: fields.check === 'L7OK' ? '200' : ''
  }
  return COLUMNS.map((column) => values[column] ?? '').join(',')
}

/**
 * A runtime API that behaves like HAProxy's for the commands the strategy sends: one line, `;`
 * separated, each answer ending in an empty line, errors as text. `evolve` runs before each
 * `show stat` (a poll), to play health checks and drains over time.
 */
class FakeRuntimeApi {
  readonly received: string[] = []
  polls = 0
  constructor(
    readonly servers: Record<string, FakeServer>,
    private readonly evolve: (fake: FakeRuntimeApi) => void = () => undefined
  ) {}

  readonly send = async (commands: string): Promise<string> => {
    this.received.push(commands)
    expect(commands.endsWith('\n')).toBe(true)
    expect(commands.slice(0, -1)).not.toMatch(/\n/)
    return commands
      .trim()
      .split(';')
      .map((command) => this.answer(command.trim()) + '\n')
      .join('')
  }

  private answer(command: string): string {
    let match: RegExpExecArray | null
    if ((match = /^set server app\/(\S+) state (\S+)$/.exec(command))) {
      const server = this.servers[match[1] as string]
      if (!server) return 'No such server.\n'
      const state = match[2]
      if (state === 'ready') server.status = 'UP'
      else if (state === 'drain') server.status = server.status.startsWith('MAINT') ? 'DRAIN 1/2' : 'DRAIN'
      else if (state === 'maint') server.status = 'MAINT'
      else return "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"
      return ''
    }
    if ((match = /^shutdown sessions server app\/(\S+)$/.exec(command))) {
      const server = this.servers[match[1] as string]
      if (!server) return 'No such server.\n'
      server.scur = 0
      return ''
    }
    if (command === 'show stat app 4 -1') {
      this.polls++
      this.evolve(this)
      return [HEADER, ...Object.entries(this.servers).map(([name, server]) => row('app', name, server)), ''].join('\n')
    }
    return 'Unknown command, but maybe one of the following ones is a better match:\n  help\n'
  }
}

/** A clock whose sleeps pass at once. */
function fakeClock(): { now: () => number; sleep: (ms: number) => Promise<void>; slept: number[] } {
  let now = 1_000_000
  const slept: number[] = []
  return {
    slept,
    now: () => now,
    sleep: async (ms) => {
      slept.push(ms)
      now += ms
    }
  }
}

function runtimeFor(fake: FakeRuntimeApi, clock = fakeClock()): HaproxyRuntime {
  return new HaproxyRuntime(fake.send, { sleep: clock.sleep, now: clock.now })
}

function stat(overrides: Partial<ServerStat>): ServerStat {
  return {
    backend: 'app',
    server: 'green',
    status: 'DRAIN',
    state: 'DRAIN',
    settled: true,
    checkStatus: 'L7OK',
    checkInProgress: false,
    checkDescription: '',
    currentSessions: 0,
    queuedRequests: 0,
    totalSessions: 0,
    ...overrides
  }
}

describe('command batches', () => {
  it('switch to a slot in one line: the new one ready first, then the old one drains', () => {
    expect(switchCommands('green')).toBe('set server app/green state ready; set server app/blue state drain\n')
    expect(switchCommands('blue')).toBe('set server app/blue state ready; set server app/green state drain\n')
  })

  it('prepare, cut, retire and show stat', () => {
    expect(prepareCommands('green')).toBe('set server app/green state drain\n')
    expect(cutSessionsCommands('blue')).toBe('shutdown sessions server app/blue\n')
    expect(retireCommands('blue')).toBe('set server app/blue state maint; shutdown sessions server app/blue\n')
    expect(showStatCommands()).toBe('show stat app 4 -1\n')
    expect(switchCommands('green', 'web')).toBe('set server web/green state ready; set server web/blue state drain\n')
  })

  it('refuse anything that would end a command or a line early', () => {
    expect(() => batch(['show info; shutdown sessions server app/blue'])).toThrow(/without ';' or newlines/)
    expect(() => batch(['show info\nshow stat'])).toThrow(/without ';' or newlines/)
    expect(() => batch(['  '])).toThrow(/non-empty/)
    expect(() => switchCommands('purple' as Slot)).toThrow(/unknown slot/)
    expect(() => showStatCommands('app 1; shutdown')).toThrow(/invalid backend/)
  })

  it('treat any text in the answer to a silent command as an error', () => {
    expect(() => expectSilentSuccess('set server app/blue state ready\n', '\n\n')).not.toThrow()
    expect(() => expectSilentSuccess('set server app/x state ready\n', 'No such server.\n\n')).toThrow(RuntimeApiError)
    expect(() => expectSilentSuccess('set server app/x state ready\n', 'No such server.\n\n')).toThrow(
      `HAProxy's runtime API refused "set server app/x state ready": No such server.`
    )
  })
})

describe('parseShowStat', () => {
  it("reads HAProxy 2.6's real output: a live server and one waiting for its name to resolve", () => {
    const [blue, green] = parseShowStat(AT_START)
    expect(blue).toEqual({
      backend: 'app',
      server: 'blue',
      status: 'UP',
      state: 'UP',
      settled: true,
      checkStatus: 'L7OK',
      checkInProgress: false,
      checkCode: 200,
      checkDescription: 'Layer7 check passed',
      currentSessions: 0,
      queuedRequests: 0,
      totalSessions: 1,
      address: '10.253.2.2:3000',
      lastChangeSeconds: 1
    })
    expect(green).toMatchObject({ server: 'green', state: 'MAINT', maintReason: 'resolution', settled: true, checkStatus: '' })
    expect(green?.address).toBeUndefined()
    expect(parseShowStat(AT_START)).toHaveLength(2)
  })

  it.each<[string, Partial<ServerStat>]>([
    ['DRAIN 1/2', { state: 'DRAIN', settled: false }],
    ['DOWN 1/2', { state: 'DOWN', settled: false }],
    ['UP 2/3', { state: 'UP', settled: false }],
    ['DOWN', { state: 'DOWN', settled: true }],
    ['NOLB', { state: 'NOLB', settled: true }],
    ['MAINT (via app/blue)', { state: 'MAINT', maintReason: 'via' }],
    ['no check', { state: 'NO_CHECK', settled: true }],
    ['SOMETHING NEW', { state: 'UNKNOWN' }]
  ])('reads status %s', (status, expected) => {
    const [entry] = parseShowStat([HEADER, row('app', 'green', { status, check: 'L4CON', scur: 0 })].join('\n'))
    expect(entry).toMatchObject({ status, ...expected })
  })

  it('reads a check in progress, failure details, sessions and queue', () => {
    const output = [HEADER, row('app', 'blue', { status: 'DOWN', check: '* L4TOUT', lastChk: 'Connection refused', scur: 4, qcur: 2, addr: '10.253.0.2:3000' })].join('\n')
    expect(parseShowStat(output)[0]).toMatchObject({
      checkStatus: 'L4TOUT',
      checkInProgress: true,
      checkDescription: 'Connection refused',
      currentSessions: 4,
      queuedRequests: 2
    })
  })

  it('finds columns by name and leaves out FRONTEND and BACKEND rows', () => {
    const output = ['# svname,pxname,status,scur,addr', 'FRONTEND,http-in,OPEN,3,', 'blue,app,UP,5,10.253.0.9:80', 'BACKEND,app,UP,5,', ''].join('\n')
    expect(parseShowStat(output)).toEqual([expect.objectContaining({ backend: 'app', server: 'blue', currentSessions: 5, address: '10.253.0.9:80' })])
  })

  it('rejects an answer that is not show stat output', () => {
    expect(() => parseShowStat('Unknown command.\n')).toThrow(RuntimeApiError)
    expect(() => parseShowStat('# pxname,svname\napp,blue\n')).toThrow(/no status column/)
  })
})

describe('isHealthy and describeServer', () => {
  it.each<[string, Partial<ServerStat>, boolean]>([
    ['a settled DRAIN with L7OK', {}, true],
    ['UP with L4OK', { state: 'UP', checkStatus: 'L4OK' }, true],
    ['a check in progress after a good one', { checkInProgress: true }, true],
    ['no health check at all', { state: 'NO_CHECK', checkStatus: '' }, true],
    ['a DRAIN still in transition after leaving MAINT', { settled: false }, false],
    ['DOWN', { state: 'DOWN', checkStatus: 'L7STS' }, false],
    ['MAINT', { state: 'MAINT', checkStatus: '' }, false],
    ['a failed check while still counted up', { checkStatus: 'L4CON' }, false]
  ])('%s: %s', (_, overrides, healthy) => {
    expect(isHealthy(stat(overrides))).toBe(healthy)
  })

  it('describes a server in one line', () => {
    expect(describeServer(stat({ status: 'DOWN', checkStatus: 'L7STS', checkDescription: 'HTTP status check returned code <503>', address: '10.253.0.4:3000' }))).toBe(
      'green DOWN at 10.253.0.4:3000, check L7STS (HTTP status check returned code <503>), 0 in flight'
    )
    expect(describeServer(stat({ status: 'MAINT (resolution)', checkStatus: '' }))).toBe('green MAINT (resolution) at no address yet, 0 in flight')
  })
})

describe('HaproxyRuntime', () => {
  it('switches in exactly one exchange and reports the new live slot', async () => {
    const fake = new FakeRuntimeApi({ blue: { status: 'UP', check: 'L7OK', scur: 3 }, green: { status: 'DRAIN', check: 'L7OK', scur: 0 } })
    const runtime = runtimeFor(fake)
    expect(await runtime.liveSlot()).toBe('blue')
    fake.received.length = 0
    await runtime.switchTo('green')
    expect(fake.received).toEqual(['set server app/green state ready; set server app/blue state drain\n'])
    expect(fake.servers.green?.status).toBe('UP')
    expect(fake.servers.blue).toMatchObject({ status: 'DRAIN', scur: 3 })
    expect(await runtime.liveSlot()).toBe('green')
    await runtime.switchTo('blue')
    expect(await runtime.liveSlot()).toBe('blue')
  })

  it('puts the old slot back to ready when HAProxy refuses the switch, then throws', async () => {
    const answers = ['No such server.\n\n\n', '\n']
    const received: string[] = []
    const runtime = new HaproxyRuntime(async (commands) => {
      received.push(commands)
      return answers.shift() ?? ''
    })
    await expect(runtime.switchTo('green')).rejects.toThrow(RuntimeApiError)
    expect(received).toEqual(['set server app/green state ready; set server app/blue state drain\n', 'set server app/blue state ready\n'])
  })

  it('passes on a send failure (e.g. the proxy container is not running)', async () => {
    const runtime = new HaproxyRuntime(async () => {
      throw new Error('docker exec failed: container shop-proxy is not running')
    })
    await expect(runtime.servers()).rejects.toThrow('is not running')
    await expect(runtime.switchTo('green')).rejects.toThrow('is not running')
  })

  it('has no live slot when neither or both take requests', async () => {
    expect(await runtimeFor(new FakeRuntimeApi({ blue: { status: 'DOWN', check: 'L4CON', scur: 0 }, green: { status: 'MAINT', check: '', scur: 0 } })).liveSlot()).toBeUndefined()
    expect(await runtimeFor(new FakeRuntimeApi({ blue: { status: 'UP', check: 'L7OK', scur: 0 }, green: { status: 'UP', check: 'L7OK', scur: 0 } })).liveSlot()).toBeUndefined()
  })

  it('refuses a proxy whose backend lacks a slot', async () => {
    const runtime = runtimeFor(new FakeRuntimeApi({ blue: { status: 'UP', check: 'L7OK', scur: 0 }, web1: { status: 'UP', check: 'L7OK', scur: 0 } }))
    await expect(runtime.servers()).rejects.toThrow("HAProxy's backend app has no server green; is this proxy's config ours?")
  })

  it("prepares a slot and waits until HAProxy's own check passed at the new container's address", async () => {
    const fake = new FakeRuntimeApi(
      { blue: { status: 'UP', check: 'L7OK', scur: 1 }, green: { status: 'MAINT', check: '', scur: 0, addr: '10.253.0.4:3000' } },
      (api) => {
        const green = api.servers.green as FakeServer
        // Poll 1: just out of MAINT, the stale check result; 2: a good check, old address; 3: re-resolved.
        if (api.polls === 1) Object.assign(green, { check: 'L4CON', lastChk: 'Connection refused' })
        if (api.polls === 2) Object.assign(green, { status: 'DRAIN', check: 'L7OK', lastChk: '' })
        if (api.polls === 3) green.addr = '10.253.0.7:3000'
      }
    )
    const clock = fakeClock()
    const runtime = runtimeFor(fake, clock)
    await runtime.prepare('green')
    expect(fake.servers.green?.status).toBe('DRAIN 1/2')
    const healthy = await runtime.waitUntilHealthy('green', { timeoutMs: 10_000, address: '10.253.0.7' })
    expect(healthy).toMatchObject({ state: 'DRAIN', settled: true, checkStatus: 'L7OK', address: '10.253.0.7:3000' })
    expect(fake.polls).toBe(3)
    expect(clock.slept).toEqual([250, 250])
    expect(fake.received[0]).toBe('set server app/green state drain\n')
  })

  it('says what HAProxy last saw when a slot does not become healthy in time', async () => {
    const fake = new FakeRuntimeApi({
      blue: { status: 'UP', check: 'L7OK', scur: 0 },
      green: { status: 'DOWN', check: 'L7STS', lastChk: 'HTTP status check returned code <503>', scur: 0, addr: '10.253.0.4:3000' }
    })
    await expect(runtimeFor(fake).waitUntilHealthy('green', { timeoutMs: 2_000, intervalMs: 500 })).rejects.toThrow(
      'HAProxy did not see slot green healthy within 2000 ms: green DOWN at 10.253.0.4:3000, check L7STS (HTTP status check returned code <503>), 0 in flight'
    )
    expect(fake.polls).toBe(5)
  })

  it('names the expected address when the slot is healthy at an old one', async () => {
    const fake = new FakeRuntimeApi({ blue: { status: 'UP', check: 'L7OK', scur: 0 }, green: { status: 'DRAIN', check: 'L7OK', scur: 0, addr: '10.253.0.4:3000' } })
    await expect(runtimeFor(fake).waitUntilHealthy('green', { timeoutMs: 500, address: '10.253.0.40' })).rejects.toThrow('(expected address 10.253.0.40)')
  })

  it('waits for the old slot to finish its requests, without cutting them', async () => {
    const fake = new FakeRuntimeApi({ blue: { status: 'DRAIN', check: 'L7OK', scur: 10, qcur: 1 }, green: { status: 'UP', check: 'L7OK', scur: 30 } }, (api) => {
      const blue = api.servers.blue as FakeServer
      blue.qcur = 0
      blue.scur = Math.max(0, blue.scur - 4)
    })
    const clock = fakeClock()
    const result = await runtimeFor(fake, clock).drain('blue', 30_000, 1_000)
    expect(result).toEqual({ drained: true, remainingSessions: 0, waitedMs: 2_000 })
    expect(fake.received.filter((commands) => commands.startsWith('shutdown'))).toEqual([])
  })

  it('cuts what is left when proxy.drain has passed, and stops polling at the deadline', async () => {
    const fake = new FakeRuntimeApi({ blue: { status: 'DRAIN', check: 'L7OK', scur: 2 }, green: { status: 'UP', check: 'L7OK', scur: 30 } })
    const clock = fakeClock()
    const result = await runtimeFor(fake, clock).drain('blue', 1_000, 300)
    expect(result).toEqual({ drained: false, remainingSessions: 2, waitedMs: 1_000 })
    expect(clock.slept).toEqual([300, 300, 300, 100])
    expect(fake.received.at(-1)).toBe('shutdown sessions server app/blue\n')
    expect(fake.servers.blue).toMatchObject({ status: 'DRAIN', scur: 0 })
  })

  it('retires a slot: MAINT and nothing left open', async () => {
    const fake = new FakeRuntimeApi({ blue: { status: 'DRAIN', check: 'L7OK', scur: 1 }, green: { status: 'UP', check: 'L7OK', scur: 0 } })
    await runtimeFor(fake).retire('blue')
    expect(fake.received).toEqual(['set server app/blue state maint; shutdown sessions server app/blue\n'])
    expect(fake.servers.blue).toMatchObject({ status: 'MAINT', scur: 0 })
  })

  it('throws when a silent command is answered with an error', async () => {
    const fake = new FakeRuntimeApi({ blue: { status: 'UP', check: 'L7OK', scur: 0 } })
    await expect(runtimeFor(fake).prepare('green')).rejects.toThrow('refused "set server app/green state drain": No such server.')
    await expect(runtimeFor(fake).cutSessions('green')).rejects.toThrow(RuntimeApiError)
  })
})
