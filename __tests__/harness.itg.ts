/**
 * Proves the integration-test harness itself: the private engine starts and leaves nothing behind,
 * each test image behaves as its name says, the registry enforces auth, and `runAction` reads what
 * the runner would read. Everything runs on this machine; traffic goes to 127.0.0.1 only.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inputVariableName, parseFileCommand, REPO_ROOT, runAction } from '../test-support/action-run.js'
import { startEngine, type Engine } from '../test-support/engine.js'
import { APP_BEHAVIOURS, buildAppImage, type AppBehaviour } from '../test-support/images.js'
import { freePort, httpGet, waitForHttp } from '../test-support/net.js'
import { isAlive, mountsUnder, pidsMentioning, realProcess, sleep, waitForPidGone } from '../test-support/proc.js'
import { startRegistry, type Registry } from '../test-support/registry.js'

let engine: Engine

beforeAll(async () => {
  engine = await startEngine()
}, 40_000)

afterAll(async () => {
  await engine?.stop()
}, 40_000)

/** Asserts that an engine left no process, mount or directory behind. */
function expectGone(stopped: { pid: number; dir: string }): void {
  expect(isAlive(stopped.pid)).toBe(false)
  expect(pidsMentioning(stopped.dir)).toEqual([])
  expect(mountsUnder(stopped.dir)).toEqual([])
  expect(existsSync(stopped.dir)).toBe(false)
}

async function containerState(name: string): Promise<{ running: boolean; exitCode: number; status: string }> {
  const raw = await engine.docker(['container', 'inspect', '--format', '{{json .State}}', name])
  const state = JSON.parse(raw) as { Running: boolean; ExitCode: number; Status: string }
  return { running: state.Running, exitCode: state.ExitCode, status: state.Status }
}

describe('private engine', () => {
  it('answers on its own socket with its own data root, separate from any other daemon', async () => {
    expect(engine.dockerHost).toBe(`unix://${engine.dir}/docker.sock`)
    const rootDir = (await engine.docker(['info', '--format', '{{.DockerRootDir}}'])).trim()
    expect(rootDir).toBe(join(engine.dir, 'data'))
    expect(readFileSync(`/proc/${engine.pid}/cmdline`, 'utf8').split('\0')).toContain('dockerd')
    expect(existsSync(join(engine.dockerConfig, 'config.json'))).toBe(false)
  })

  it('stops with a running container: its pid is gone, nothing stays mounted and its directory is removed', async () => {
    const exitListeners = realProcess().listenerCount('exit')
    const other = await startEngine()
    // On the real process: Jest gives tests a copy of \`process\` whose 'exit' never fires.
    expect(realProcess()).not.toBe(process)
    expect(realProcess().listenerCount('exit')).toBe(exitListeners + 1)
    const image = await buildAppImage(other, 'local/stop-probe', 'v1', 'never-listens')
    // No --init and a long-running container: stop() must still be quick and complete.
    await other.docker(['run', '-d', '--network', 'host', '--name', 'stop-probe', image.reference])
    expect(mountsUnder(other.dir).length).toBeGreaterThan(0)
    const started = Date.now()
    await other.stop()
    expect(Date.now() - started).toBeLessThan(10_000)
    expectGone(other)
    expect(other.running).toBe(false)
    expect(realProcess().listenerCount('exit')).toBe(exitListeners)
    await other.stop() // idempotent
  }, 30_000)

  it('cleans up when the test process exits without calling stop(), and when it is killed', async () => {
    const script = join(mkdtempSync(join(tmpdir(), 'deploy-action-harness-')), 'leaky.mts')
    const engineModule = join(REPO_ROOT, 'test-support', 'engine.ts')
    writeFileSync(
      script,
      `import { startEngine } from ${JSON.stringify(engineModule)}\n` +
        `const engine = await startEngine()\n` +
        `console.log(JSON.stringify({ pid: engine.pid, dir: engine.dir }))\n` +
        `if (process.argv[2] === 'exit') process.exit(0)\n` +
        `setInterval(() => undefined, 1000)\n`
    )
    const startLeaky = (mode: 'exit' | 'hang'): Promise<{ child: ReturnType<typeof spawn>; engine: { pid: number; dir: string } }> =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', script, mode], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
        let out = ''
        let err = ''
        child.stdout?.on('data', (chunk: Buffer) => {
          out += chunk.toString()
          const line = out.split('\n').find((candidate) => candidate.startsWith('{'))
          if (line) resolve({ child, engine: JSON.parse(line) as { pid: number; dir: string } })
        })
        child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()))
        child.on('exit', (code) => {
          if (!out.includes('{')) reject(new Error(`leaky script exited with ${code}: ${err}`))
        })
      })

    try {
      // 1. process.exit() without stop(): the 'exit' handler stops the daemon and removes its directory.
      const exiting = await startLeaky('exit')
      await new Promise((resolve) => exiting.child.once('exit', resolve))
      expectGone(exiting.engine)

      // 2. SIGKILL: no handler can run; the kernel's parent-death signal stops the daemon, and the
      //    next startEngine() sweeps the directory of the dead owner.
      const killed = await startLeaky('hang')
      killed.child.kill('SIGKILL')
      expect(await waitForPidGone(killed.engine.pid, 15_000)).toBe(true)
      const sweeper = await startEngine()
      await sweeper.stop()
      expectGone(killed.engine)
    } finally {
      await rm(join(script, '..'), { recursive: true, force: true })
    }
  }, 60_000)
})

describe('test app images', () => {
  const images = new Map<AppBehaviour, string>()
  beforeAll(async () => {
    await Promise.all(
      APP_BEHAVIOURS.map(async (behaviour) => {
        const image = await buildAppImage(engine, `local/app-${behaviour}`, `v-${behaviour}`, behaviour)
        images.set(behaviour, image.reference)
      })
    )
  }, 30_000)

  /** Starts the image on a free loopback port given with -e PORT (overriding the image's default). */
  async function runApp(behaviour: AppBehaviour, extra: string[] = []): Promise<{ name: string; url: string }> {
    const port = await freePort()
    const name = `app-${behaviour}-${port}`
    const reference = images.get(behaviour) as string
    await engine.docker(['run', '-d', '--name', name, '--network', 'host', '-e', `PORT=${port}`, ...extra, reference])
    return { name, url: `http://127.0.0.1:${port}` }
  }

  it('healthy: serves ok on /health and its tag on /version, and stops at once on SIGTERM without --init', async () => {
    const app = await runApp('healthy')
    const health = await waitForHttp(`${app.url}/health`, 10_000)
    expect(health).toMatchObject({ status: 200, body: 'ok' })
    expect((await httpGet(`${app.url}/version`)).body).toBe('v-healthy')
    const started = Date.now()
    await engine.docker(['stop', '--time', '10', app.name])
    expect(Date.now() - started).toBeLessThan(3_000)
    expect(await containerState(app.name)).toMatchObject({ running: false, exitCode: 0 })
    expect(await engine.docker(['logs', app.name])).toContain('received SIGTERM')
    await expect(httpGet(`${app.url}/health`)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  }, 20_000)

  it('healthy: also serves and stops promptly under --init', async () => {
    const app = await runApp('healthy', ['--init'])
    expect(await waitForHttp(`${app.url}/health`, 10_000)).toMatchObject({ status: 200, body: 'ok' })
    const started = Date.now()
    await engine.docker(['stop', app.name])
    expect(Date.now() - started).toBeLessThan(3_000)
  }, 20_000)

  it('wrong-body: answers 200 with body "not ok"', async () => {
    const app = await runApp('wrong-body')
    expect(await waitForHttp(`${app.url}/health`, 10_000)).toMatchObject({ status: 200, body: 'not ok' })
  }, 20_000)

  it('exits: exits 1 at once with a message on stderr', async () => {
    const started = Date.now()
    const result = await engine.dockerResult(['run', '--rm', '--network', 'host', images.get('exits') as string])
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(result.exitCode).toBe(1)
    expect(result.stderr).toContain('fatal: cannot start v-exits')
  }, 20_000)

  it('never-listens: keeps running while its port refuses connections', async () => {
    const app = await runApp('never-listens')
    await sleep(1_500)
    expect(await containerState(app.name)).toMatchObject({ running: true })
    await expect(httpGet(`${app.url}/health`)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  }, 20_000)

  it('slow-start: refuses connections during START_DELAY, then serves ok', async () => {
    const started = Date.now()
    const app = await runApp('slow-start', ['-e', 'START_DELAY=2'])
    await sleep(500)
    await expect(httpGet(`${app.url}/health`)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    expect(await waitForHttp(`${app.url}/health`, 10_000)).toMatchObject({ status: 200, body: 'ok' })
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000)
  }, 20_000)

  it('crash-later: serves ok, then exits 1 after CRASH_AFTER seconds', async () => {
    const app = await runApp('crash-later', ['-e', 'CRASH_AFTER=2'])
    expect(await waitForHttp(`${app.url}/health`, 10_000)).toMatchObject({ status: 200, body: 'ok' })
    expect(await containerState(app.name)).toMatchObject({ running: true })
    const deadline = Date.now() + 10_000
    let state = await containerState(app.name)
    while (state.running && Date.now() < deadline) {
      await sleep(100)
      state = await containerState(app.name)
    }
    expect(state).toMatchObject({ running: false, exitCode: 1 })
    await expect(httpGet(`${app.url}/health`)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  }, 20_000)
})

describe('registry with basic auth', () => {
  let registry: Registry
  let localImage: string
  const configs: string[] = []
  const tempConfig = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'deploy-action-docker-config-'))
    configs.push(dir)
    return dir
  }

  beforeAll(async () => {
    registry = await startRegistry(engine)
    localImage = (await buildAppImage(engine, 'local/pushed', 'v1', 'healthy')).reference
  }, 30_000)

  afterAll(async () => {
    await registry?.stop()
    await Promise.all(configs.map((dir) => rm(dir, { recursive: true, force: true })))
  })

  it('listens on a free loopback port other than 5000', () => {
    expect(registry.address).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(registry.address).not.toBe('127.0.0.1:5000')
  })

  it('rejects a push without credentials', async () => {
    const reference = `${registry.address}/acme/web:anonymous`
    await engine.docker(['tag', localImage, reference])
    const result = await engine.dockerResult(['push', reference])
    expect(result.exitCode).not.toBe(0)
    expect(result.stderr).toMatch(/no basic auth credentials|unauthorized|authentication required/i)
  }, 30_000)

  it('rejects docker login with a wrong password', async () => {
    const result = await engine.dockerResult(
      ['login', '--username', registry.username, '--password-stdin', registry.address],
      { input: `${registry.password}-wrong`, env: { DOCKER_CONFIG: tempConfig() } }
    )
    expect(result.exitCode).not.toBe(0)
    expect(result.stderr).toMatch(/unauthorized|incorrect username or password/i)
  }, 30_000)

  it('accepts an authenticated push; a pull then needs docker login and gets the same digest', async () => {
    const pushed = await registry.push(engine, localImage, 'acme/web', 'v1')
    expect(pushed.reference).toBe(`${registry.address}/acme/web:v1`)
    expect(pushed.digest).toMatch(/^sha256:[0-9a-f]{64}$/)
    // The engine's own client config stays logged out: push() logged in elsewhere.
    expect(existsSync(join(engine.dockerConfig, 'config.json'))).toBe(false)

    await engine.docker(['image', 'rm', pushed.reference])
    const anonymous = await engine.dockerResult(['pull', pushed.reference])
    expect(anonymous.exitCode).not.toBe(0)

    const loggedIn = tempConfig()
    await registry.login(engine, loggedIn)
    await engine.docker(['pull', pushed.reference], { env: { DOCKER_CONFIG: loggedIn } })
    const repoDigests = await engine.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', pushed.reference])
    expect(JSON.parse(repoDigests)).toContain(`${registry.address}/acme/web@${pushed.digest}`)
  }, 60_000)
})

describe('runAction', () => {
  let workspace: string
  let entry: string

  beforeAll(() => {
    workspace = mkdtempSync(join(tmpdir(), 'deploy-action-workspace-'))
    entry = join(workspace, 'fake-action.mjs')
    // A stand-in for dist/index.js that uses the runner's protocols by hand, so this test proves
    // the harness without depending on the action being built.
    writeFileSync(
      entry,
      `
import { appendFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
const env = process.env
const file = (path, name, value) => appendFileSync(path, name + '<<EOF_1\\n' + value + '\\nEOF_1\\n')
if (env.STATE_phase === 'main') {
  console.log('post sees ' + env.STATE_phase + ' ' + env.STATE_multi.replace('\\n', '|'))
  process.exit(0)
}
console.log(JSON.stringify({ cwd: process.cwd(), dryRun: env['INPUT_DRY-RUN'], config: env.INPUT_CONFIG, token: env['INPUT_GITHUB-TOKEN'], tag: env.INPUT_TAG, sha: env.GITHUB_SHA, secret: env.APP_SECRET }))
console.log('::add-mask::' + env.APP_SECRET)
file(env.GITHUB_OUTPUT, 'result', 'deployed')
file(env.GITHUB_OUTPUT, 'multi', 'line one\\nline two')
appendFileSync(env.GITHUB_OUTPUT, 'tag=v9\\n')
file(env.GITHUB_STATE, 'phase', 'main')
file(env.GITHUB_STATE, 'multi', 'a\\nb')
appendFileSync(env.GITHUB_STEP_SUMMARY, '## Deploy\\n| step | status |\\n')
console.log('::error file=.github/deploy.yml,line=3,col=5,title=Config %3A health::health.interval%3A expected a duration%0Agot "fast" (100%25)')
console.log('::warning title=Rollback::fell back to previous')
console.log('::notice::done')
execFileSync('docker', ['version', '--format', '{{.Server.Version}}'], { stdio: 'ignore' })
if (env.INPUT_COMMAND === 'wait-for-signal') {
  process.on('SIGINT', () => { console.log('cancelled during verify'); process.exit(130) })
  console.log('verifying')
  setInterval(() => undefined, 1000)
}
`
    )
  })

  afterAll(async () => {
    await rm(workspace, { recursive: true, force: true })
  })

  it('names input variables like the runner: uppercased, spaces to _, hyphens kept', () => {
    expect(inputVariableName('dry-run')).toBe('INPUT_DRY-RUN')
    expect(inputVariableName('registry password')).toBe('INPUT_REGISTRY_PASSWORD')
  })

  it('parses heredoc and key=value file commands and refuses an unterminated value', () => {
    expect(parseFileCommand('a<<X\n1\n2\nX\nb=c=d\n')).toEqual({ a: '1\n2', b: 'c=d' })
    expect(() => parseFileCommand('a<<X\n1\n')).toThrow(/Unterminated/)
  })

  it('runs a step with the runner environment and reads outputs, state, summary, annotations, masks and docker argv', async () => {
    const result = await runAction({
      entry,
      workspace,
      dockerHost: engine.dockerHost,
      inputs: { 'dry-run': true, tag: 'v9' },
      env: { APP_SECRET: 's3cr3t-value' },
      watchDockerArgv: true,
      timeoutMs: 30_000
    })
    expect(result.exitCode).toBe(0)
    const seen = JSON.parse(result.stdout.split('\n')[0] as string) as Record<string, string>
    expect(seen).toEqual({
      cwd: workspace,
      dryRun: 'true',
      config: '.github/deploy.yml',
      token: expect.stringMatching(/^ghs_/),
      tag: 'v9',
      sha: expect.stringMatching(/^[0-9a-f]{40}$/),
      secret: 's3cr3t-value'
    })
    expect(result.outputs).toEqual({ result: 'deployed', multi: 'line one\nline two', tag: 'v9' })
    expect(result.state).toEqual({ phase: 'main', multi: 'a\nb' })
    expect(result.summary).toContain('## Deploy')
    expect(result.masks).toEqual(['s3cr3t-value'])
    expect(result.annotations).toEqual([
      expect.objectContaining({
        level: 'error',
        file: '.github/deploy.yml',
        line: 3,
        col: 5,
        title: 'Config : health',
        message: 'health.interval: expected a duration\ngot "fast" (100%)'
      }),
      expect.objectContaining({ level: 'warning', title: 'Rollback', message: 'fell back to previous' }),
      expect.objectContaining({ level: 'notice', message: 'done' })
    ])
    expect(result.dockerArgv).toContainEqual(['docker', 'version', '--format', '{{.Server.Version}}'])

    const post = await runAction({ entry, workspace, phase: 'post', state: result.state, timeoutMs: 30_000 })
    expect(post.exitCode).toBe(0)
    expect(post.stdout).toContain('post sees main a|b')
  }, 30_000)

  it('sends a signal mid-run when stdout shows the step has reached a point', async () => {
    const result = await runAction({
      entry,
      workspace,
      dockerHost: engine.dockerHost,
      inputs: { command: 'wait-for-signal' },
      env: { APP_SECRET: 'x' },
      signalAfter: { signal: 'SIGINT', whenStdout: 'verifying' },
      timeoutMs: 30_000
    })
    expect(result.exitCode).toBe(130)
    expect(result.stdout).toContain('cancelled during verify')
  }, 30_000)

  it('kills a step that runs past its timeout and says so', async () => {
    await expect(
      runAction({ entry, workspace, dockerHost: engine.dockerHost, inputs: { command: 'wait-for-signal' }, env: { APP_SECRET: 'x' }, timeoutMs: 2_000 })
    ).rejects.toThrow(/did not finish within 2000 ms/)
  }, 30_000)
})
