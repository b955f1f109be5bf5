/**
 * Hostile input: a corpus of bad configs and inputs, each run through the bundled action exactly
 * as the runner runs it. Every one must be rejected with an error annotation at the right file and
 * line, with `result=failed` and exit 1, before any docker command runs. Two independent tripwires
 * prove "before any docker command": `docker` on PATH is a fake that records every invocation, and
 * DOCKER_HOST points at a socket path that does not exist.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runAction, type ActionResult } from '../test-support/action-run.js'

const CONFIG = '.github/deploy.yml'

/** What a case must produce: an error annotation at this file and line (none for input problems). */
interface Expected {
  file?: string
  line?: number
  /** Matches the annotation's title or message. */
  text: RegExp
}

interface HostileCase {
  name: string
  /** Config text or bytes at .github/deploy.yml; omitted: no config file. */
  config?: string | Buffer
  inputs?: Record<string, string>
  env?: Record<string, string>
  /** Prepares the workspace further (links, files outside it). */
  prepare?: (workspace: string) => void
  expect: Expected
}

/** A valid config; cases replace one line so that the mistake sits on a known line. */
const VALID = [
  'image: 127.0.0.1:5999/acme/web', // 1
  'name: web', // 2
  'container:', // 3
  '  network: host', // 4
  '  env:', // 5
  '    MODE: production', // 6
  'health:', // 7
  '  url: http://127.0.0.1:8080/health', // 8
  '  interval: 1s' // 9
]

/** The valid config with `line` (1-based) replaced by `text` (which may span lines). */
function withLine(line: number, text: string): string {
  const lines = [...VALID]
  lines[line - 1] = text
  return lines.join('\n') + '\n'
}

/** The valid config with `text` appended from line 10 on. */
function plus(text: string): string {
  return [...VALID, text].join('\n') + '\n'
}

const at = (line: number, text: RegExp): Expected => ({ file: CONFIG, line, text })
const input = (text: RegExp): Expected => ({ text })

const billionLaughs = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
for (let level = 1; level < 9; level++) {
  const prev = String.fromCharCode(96 + level)
  const next = String.fromCharCode(97 + level)
  billionLaughs.push(`${next}: &${next} [${Array(10).fill(`*${prev}`).join(',')}]`)
}

const CASES: HostileCase[] = [
  // --- YAML that is not YAML, or too much of it
  { name: 'unclosed flow sequence', config: withLine(2, 'name: [web'), expect: at(3, /YAML syntax/) },
  { name: 'bad indentation', config: withLine(6, '     MODE: production\n   STRAY: x'), expect: at(7, /YAML syntax/) },
  { name: 'tab indentation', config: withLine(4, '\tnetwork: host'), expect: at(4, /YAML syntax/) },
  { name: 'billion laughs alias bomb', config: billionLaughs.join('\n') + '\n', expect: at(2, /alias bomb|YAML aliases|aliases/) },
  { name: 'alias to an undefined anchor', config: withLine(2, 'name: *nowhere'), expect: at(2, /YAML syntax/) },
  { name: 'a 10 MB file', config: plus('# ' + 'x'.repeat(10 * 1024 * 1024)), expect: { file: CONFIG, text: /at most 1048576 bytes/ } },
  { name: 'duplicate top-level key', config: plus('name: api'), expect: at(10, /duplicated mapping key/) },
  { name: 'duplicate nested key', config: withLine(9, '  interval: 1s\n  url: http://127.0.0.1:9090/'), expect: at(10, /duplicated mapping key/) },
  { name: 'two YAML documents', config: plus('---\nname: api'), expect: at(11, /one YAML document/) },
  { name: 'a byte that is not UTF-8', config: Buffer.concat([Buffer.from(VALID.slice(0, 5).join('\n') + '\n    MODE: caf'), Buffer.from([0xe9]), Buffer.from('\n')]), expect: at(6, /expected UTF-8 text, got the byte 0xE9/) },
  { name: 'UTF-16 with a byte order mark', config: Buffer.from('\ufeffimage: acme/web\n', 'utf16le'), expect: at(1, /expected UTF-8 text/) },
  { name: 'a list at the top level', config: '- image: acme/web\n', expect: at(1, /expected a mapping of deploy settings/) },
  { name: 'a scalar at the top level', config: 'acme/web\n', expect: at(1, /expected a mapping of deploy settings/) },

  // --- unknown keys and wrong types
  { name: 'unknown top-level key', config: plus('ports: ["8080:80"]'), expect: at(10, /unknown key; did you mean "container.ports"/) },
  { name: 'misspelt nested key', config: withLine(9, '  intervall: 1s'), expect: at(9, /unknown key; did you mean "interval"/) },
  { name: 'ports as a number', config: withLine(4, '  ports: 8080'), expect: at(4, /container\.ports/) },
  { name: 'expect-status as text', config: plus('  expect-status: "200"'), expect: at(10, /health\.expect-status/) },
  { name: 'init as "yes"', config: withLine(4, '  init: "yes"'), expect: at(4, /container\.init/) },
  { name: 'pre-deploy hooks as one string', config: plus('hooks:\n  pre-deploy: "bin/migrate"'), expect: at(11, /hooks\.pre-deploy/) },
  { name: 'hosts as one string', config: plus('hosts: ssh://deploy@web1'), expect: at(10, /hosts/) },
  { name: 'healthy-threshold negative', config: plus('  healthy-threshold: -1'), expect: at(10, /healthy-threshold/) },
  { name: 'expect-status 700', config: plus('  expect-status: [700]'), expect: at(10, /expect-status/) },

  // --- option injection
  { name: '--privileged as the tag input', inputs: { tag: '--privileged' }, config: withLine(9, '  interval: 1s'), expect: input(/tag: expected an image tag that does not start with "-"/) },
  { name: '-v=/:/host as the name', config: withLine(2, 'name: "-v=/:/host"'), expect: at(2, /name: expected a container name that does not start with "-"/) },
  { name: '--privileged as the image', config: withLine(1, 'image: "--privileged"'), expect: at(1, /image/) },
  { name: '-v=/:/host as the image input', inputs: { image: '-v=/:/host' }, config: withLine(9, '  interval: 1s'), expect: input(/image/) },
  { name: '--privileged as the network', config: withLine(4, '  network: "--privileged"'), expect: at(4, /container\.network/) },
  { name: '-v=/:/host as a volume', config: withLine(4, '  volumes: ["-v=/:/host"]'), expect: at(4, /container\.volumes\[0\]/) },
  { name: '--privileged as a port', config: withLine(4, '  ports: ["--privileged"]'), expect: at(4, /container\.ports\[0\]/) },
  { name: '--privileged as a label key', config: withLine(4, '  labels: { "--privileged": "x" }'), expect: at(4, /container\.labels/) },
  { name: '--privileged as an env name', config: withLine(6, '    "--privileged": x'), expect: at(6, /container\.env/) },
  { name: '--privileged as rollback.to', config: plus('rollback:\n  to: "--privileged"'), expect: at(11, /rollback\.to/) },
  { name: '--password as the registry username', inputs: { 'registry-username': '--password=x', 'registry-password': 'p4ss-word-1' }, config: withLine(9, '  interval: 1s'), expect: input(/registry-username/) },
  { name: '-H=tcp://evil as the docker host', inputs: { 'docker-host': '-H=tcp://evil:2375' }, config: withLine(9, '  interval: 1s'), expect: input(/docker-host/) },
  { name: '--privileged as rollback-to', inputs: { command: 'rollback', 'rollback-to': '--privileged' }, config: withLine(9, '  interval: 1s'), expect: input(/rollback-to/) },
  { name: 'a reserved deploy-action label', config: withLine(4, '  labels: { "deploy-action.tag": "v0" }'), expect: at(4, /deploy-action\./) },

  // --- shell metacharacters and line breaks
  { name: 'name with ;', config: withLine(2, 'name: "web;rm -rf /"'), expect: at(2, /name/) },
  { name: 'image with $( )', config: withLine(1, 'image: "acme/web$(id)"'), expect: at(1, /image/) },
  { name: 'tag with ;', inputs: { tag: 'v1;id' }, config: withLine(9, '  interval: 1s'), expect: input(/tag/) },
  { name: 'tag with a line break', inputs: { tag: 'v1\nv2' }, config: withLine(9, '  interval: 1s'), expect: input(/tag/) },
  { name: 'name with a line break', config: withLine(2, 'name: "web\\nx"'), expect: at(2, /name/) },
  { name: 'env value with a line break', config: withLine(6, '    MODE: "a\\nb"'), expect: at(6, /container\.env\.MODE/) },
  { name: 'label value with a line break', config: withLine(4, '  labels: { team: "a\\rb" }'), expect: at(4, /container\.labels\.team/) },
  { name: 'header value with CRLF injection', config: plus('  headers: { X-Probe: "a\\r\\nHost: evil" }'), expect: at(10, /health\.headers/) },
  { name: 'host with ;', config: plus('hosts: ["ssh://deploy@web1;id"]'), expect: at(10, /hosts\[0\]/) },
  { name: 'volume with a line break', config: withLine(4, '  volumes: ["/data:/data\\n"]'), expect: at(4, /container\.volumes\[0\]/) },
  { name: 'command word with a line break', config: withLine(4, '  command: ["serve", "a\\nb"]'), expect: at(4, /container\.command\[1\]/) },
  { name: 'restart with ;', config: withLine(4, '  restart: "always; reboot"'), expect: at(4, /container\.restart/) },
  { name: 'network with $( )', config: withLine(4, '  network: "host$(id)"'), expect: at(4, /container\.network/) },
  { name: 'health url with a line break', config: withLine(8, '  url: "http://127.0.0.1:8080/\\nhealth"'), expect: at(8, /health\.url/) },
  { name: 'environment input with a line break', inputs: { environment: 'production\nx' }, config: withLine(9, '  interval: 1s'), expect: input(/environment/) },
  { name: 'config path with a line break', inputs: { config: '.github/deploy.yml\n../x' }, expect: input(/config: expected a path without control characters/) },
  { name: 'expression in an env value', config: withLine(6, '    MODE: "${{ secrets.MODE }}"'), expect: at(6, /does not evaluate/) },

  // --- paths outside the workspace
  { name: 'config path ../', inputs: { config: '../outside.yml' }, expect: input(/config: expected a path inside the workspace/) },
  { name: 'config path absolute', inputs: { config: '/etc/passwd' }, expect: input(/config: expected a path inside the workspace/) },
  {
    name: 'config that links outside',
    prepare: (workspace) => {
      writeFileSync(join(workspace, '..', `${workspace.split('/').pop() ?? ''}-outside.yml`), VALID.join('\n'))
      symlinkSync(join(workspace, '..', `${workspace.split('/').pop() ?? ''}-outside.yml`), join(workspace, '.github', 'deploy.yml'))
    },
    expect: input(/is a link to a file outside the workspace/)
  },
  { name: 'explicit config path that does not exist', inputs: { config: 'deploy/missing.yml' }, expect: input(/does not exist/) },

  // --- durations
  { name: 'negative interval', config: withLine(9, '  interval: -5s'), expect: at(9, /not a negative one/) },
  { name: 'absurd deadline', config: plus('  deadline: 100000m'), expect: at(10, /of at most/) },
  { name: 'absurd lock timeout', config: plus('lock:\n  timeout: 99999999999999999999m'), expect: at(11, /lock\.timeout/) },
  { name: 'zero probe timeout', config: plus('  timeout: 0s'), expect: at(10, /greater than zero/) },
  { name: 'interval without a unit', config: withLine(9, '  interval: 5'), expect: at(9, /unit/) },
  { name: 'stop-timeout in hours', config: withLine(4, '  stop-timeout: 2h'), expect: at(4, /write hours as minutes/) },

  // --- ports
  { name: 'host port 0', config: withLine(4, '  ports: ["0:80"]'), expect: at(4, /container\.ports\[0\]/) },
  { name: 'host port 70000', config: withLine(4, '  ports: ["70000:80"]'), expect: at(4, /container\.ports\[0\]/) },
  { name: 'container port 70000', config: withLine(4, '  ports: ["8080:70000"]'), expect: at(4, /container\.ports\[0\]/) },
  { name: 'health url on port 70000', config: withLine(8, '  url: http://127.0.0.1:70000/health'), expect: at(8, /health\.url/) },

  // --- other inputs and secrets
  { name: 'unknown command', inputs: { command: 'destroy' }, config: withLine(9, '  interval: 1s'), expect: input(/command: expected deploy, rollback or unlock/) },
  { name: 'dry-run that is not a boolean', inputs: { 'dry-run': 'maybe' }, config: withLine(9, '  interval: 1s'), expect: input(/dry-run: expected true or false/) },
  { name: 'a secret that is not set', config: withLine(5, '  secrets: [API_TOKEN]\n  env:'), expect: at(5, /API_TOKEN is not set/) },
  { name: 'a secret also written in env', config: withLine(5, '  secrets: [MODE]\n  env:'), env: { MODE: 'from-the-step' }, expect: at(7, /also listed in container\.secrets/) }
]

let root: string
let fakeBin: string
let dockerLog: string

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'deploy-action-hostile-'))
  fakeBin = join(root, 'bin')
  dockerLog = join(root, 'docker-invocations.log')
  mkdirSync(fakeBin)
  // Records that it was called, then fails like an unreachable engine. It never evaluates its
  // arguments: printf's format is fixed and the arguments are data.
  writeFileSync(join(fakeBin, 'docker'), `#!/bin/sh\nprintf '%s\\n' "docker $*" >> '${dockerLog}'\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n`)
  chmodSync(join(fakeBin, 'docker'), 0o755)
})

afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

async function runCase(hostile: HostileCase, index: number): Promise<ActionResult> {
  const workspace = join(root, `case-${index}`)
  mkdirSync(join(workspace, '.github'), { recursive: true })
  if (hostile.config !== undefined) writeFileSync(join(workspace, CONFIG), hostile.config)
  hostile.prepare?.(workspace)
  return runAction({
    workspace,
    dockerHost: `unix://${join(root, 'no-such-dir', 'docker.sock')}`,
    inputs: { tag: 'v1', ...hostile.inputs },
    env: { PATH: `${fakeBin}:${process.env.PATH ?? ''}`, ...hostile.env },
    timeoutMs: 30_000
  })
}

/** Runs the cases a few at a time: each is a node process of about 0.3 s. */
async function runAll(cases: HostileCase[], concurrency: number): Promise<ActionResult[]> {
  const results: ActionResult[] = new Array(cases.length)
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < cases.length) {
        const index = next++
        results[index] = await runCase(cases[index] as HostileCase, index)
      }
    })
  )
  return results
}

describe('hostile input through the bundled action', () => {
  let results: ActionResult[]
  beforeAll(async () => {
    results = await runAll(CASES, 3)
  }, 120_000)

  it('holds at least 50 cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(50)
    expect(new Set(CASES.map((hostile) => hostile.name)).size).toBe(CASES.length)
  })

  it.each(CASES.map((hostile, index) => [hostile.name, index] as const))('%s: rejected at the right place before any docker command', (_name, index) => {
    const hostile = CASES[index] as HostileCase
    const result = results[index] as ActionResult
    const errors = result.annotations.filter((annotation) => annotation.level === 'error')
    const located = errors.filter((annotation) => annotation.file === hostile.expect.file && annotation.line === hostile.expect.line)
    const explain = `errors: ${JSON.stringify(errors.map(({ file, line, title, message }) => ({ file, line, title, message: message.slice(0, 200) })), null, 1)}`
    expect({ located: located.some((annotation) => hostile.expect.text.test(`${annotation.title ?? ''}: ${annotation.message}`)), explain }).toEqual({ located: true, explain })
    expect(result.exitCode).toBe(1)
    expect(result.outputs.result).toBe('failed')
    // The verdict says nothing ran.
    expect(errors.some((annotation) => /No docker command was run; nothing was changed/.test(annotation.message))).toBe(true)
    expect(result.stderr).toBe('')
  })

  it('ran no docker command in any case', () => {
    expect(existsSync(dockerLog) ? readFileSync(dockerLog, 'utf8') : '').toBe('')
  })

  it('the tripwire works: a valid config reaches docker, through the fake', async () => {
    const result = await runCase({ name: 'valid', config: VALID.join('\n') + '\n', expect: input(/./) }, CASES.length)
    expect(result.exitCode).toBe(1)
    expect(readFileSync(dockerLog, 'utf8')).toMatch(/^docker /)
  }, 30_000)

  it('warns at its line about a secret-looking value written into the config, without printing the value', async () => {
    const result = await runCase({ name: 'inline secret', config: withLine(6, '    STRIPE_API_KEY: sk_live_abcdef123456'), inputs: { 'dry-run': 'true' }, expect: input(/./) }, CASES.length + 1)
    const warning = result.annotations.find((annotation) => annotation.level === 'warning' && annotation.line === 6)
    expect(warning).toMatchObject({ file: CONFIG, line: 6, title: 'Secret in container.env.STRIPE_API_KEY?' })
    expect(warning?.message).toMatch(/move it to container\.secrets/)
    expect(warning?.message).not.toContain('sk_live_abcdef123456')
  }, 30_000)
})
