/**
 * Remote hosts over real SSH (issue 19). Each network-namespace host runs Debian's sshd on its own
 * address in front of its private engine (test-support/sshd.ts), with `SetEnv DOCKER_HOST=unix://…`
 * so that the remote `docker` reaches that engine.
 *
 * First the harness itself, with the plain ssh client and a private config (`ssh -F`): a session
 * sees the engine's DOCKER_HOST, `ssh://` with the docker CLI works, a forward of the engine socket
 * answers like a local engine, and a wrong host key is refused.
 *
 * Test traffic goes only to the namespaces' addresses and to loopback; ~/.ssh is never used.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { runAction, type ActionResult, type RunActionOptions } from '../test-support/action-run.js'
import { cleanDockerEnv } from '../test-support/engine.js'
import { buildAppImage, type AppBehaviour } from '../test-support/images.js'
import { freePort, freePortBelowEphemeralRange, httpGet } from '../test-support/net.js'
import { startNamespaceRegistry, type NamespaceRegistry } from '../test-support/namespace-registry.js'
import { startNamespacedEngines, type NamespaceHost, type NamespaceLab } from '../test-support/netns.js'
import { readCmdline, runCommand, signalPid, sleep, waitForExit } from '../test-support/proc.js'
import {
  filesContaining,
  generateKeyPair,
  knownHostsLine,
  privateSshDirs,
  sshProcessesUnder,
  startSshd,
  writeClientConfig,
  type KeyPair,
  type Sshd
} from '../test-support/sshd.js'

describe('sshd in a namespace host', () => {
  let lab: NamespaceLab
  let host: NamespaceHost
  let sshd: Sshd
  let dir: string
  let clientKey: KeyPair
  let config: string
  const started: ChildProcess[] = []

  beforeAll(async () => {
    lab = await startNamespacedEngines(1)
    host = lab.hosts[0] as NamespaceHost
    // Short: a forwarded unix socket's path must fit in sun_path (108 bytes).
    dir = mkdtempSync(join(tmpdir(), 'da-ssh-'))
    clientKey = await generateKeyPair(dir)
    sshd = await startSshd(host, { dockerHost: host.engine.dockerHost, authorizedKeys: [clientKey.publicKey] })
    config = writeClientConfig(dir, { identityFile: clientKey.path, knownHosts: [sshd.knownHostsLine] }).path
  }, 120_000)

  afterAll(async () => {
    for (const child of started) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        signalPid(child.pid, 'SIGTERM')
        await waitForExit(child, 5_000)
      }
    }
    await sshd?.stop()
    await lab?.stop()
    if (dir) await rm(dir, { recursive: true, force: true })
  }, 90_000)

  it('gives a session the engine as DOCKER_HOST (SetEnv), and logs in with the key only', async () => {
    const result = await runCommand('ssh', ['-F', config, `root@${sshd.address}`, 'printenv', 'DOCKER_HOST'], { timeoutMs: 30_000 })
    expect({ exit: result.exitCode, stderr: result.stderr }).toEqual({ exit: 0, stderr: '' })
    expect(result.stdout.trim()).toBe(host.engine.dockerHost)
    // The known_hosts line names the address alone on port 22.
    expect(sshd.knownHostsLine).toMatch(new RegExp(`^${sshd.address.replace(/\./g, '\\.')} ssh-ed25519 AAAA\\S+$`))

    // Another key is not authorized.
    const stranger = await generateKeyPair(dir, 'stranger')
    const strangerConfigDir = join(dir, 'stranger-client')
    mkdirSync(strangerConfigDir)
    const strangerConfig = writeClientConfig(strangerConfigDir, { identityFile: stranger.path, knownHosts: [sshd.knownHostsLine] }).path
    const refused = await runCommand('ssh', ['-F', strangerConfig, `root@${sshd.address}`, 'true'], { timeoutMs: 30_000 })
    expect(refused.exitCode).toBe(255)
    expect(refused.stderr).toContain('Permission denied (publickey)')
  }, 60_000)

  it('serves the docker CLI over ssh:// (the CLI runs the first ssh on PATH: a wrapper adds -F)', async () => {
    const bin = join(dir, 'bin')
    mkdirSync(bin)
    writeFileSync(join(bin, 'ssh'), `#!/bin/sh\nexec /usr/bin/ssh -F ${config} "$@"\n`)
    chmodSync(join(bin, 'ssh'), 0o755)
    const dockerConfig = join(dir, 'docker-config')
    mkdirSync(dockerConfig)
    const env = { ...cleanDockerEnv(), PATH: `${bin}:${process.env.PATH ?? ''}`, DOCKER_HOST: `ssh://${sshd.dockerHost}`, DOCKER_CONFIG: dockerConfig }
    const remote = await runCommand('docker', ['info', '--format', '{{.ID}} {{.DockerRootDir}}'], { env, timeoutMs: 60_000 })
    expect({ exit: remote.exitCode, stderr: remote.stderr }).toEqual({ exit: 0, stderr: '' })
    // The very engine of that host (its data root is in the engine's private directory).
    const local = await host.engine.docker(['info', '--format', '{{.ID}} {{.DockerRootDir}}'])
    expect(remote.stdout.trim()).toBe(local.trim())
    expect(remote.stdout).toContain(host.engine.dir)
  }, 90_000)

  it('forwards the engine socket with ssh -L, which answers like a local engine', async () => {
    const socket = join(dir, 'docker.sock')
    const engineSocket = host.engine.dockerHost.replace(/^unix:\/\//, '')
    const child = spawn(
      'ssh',
      ['-F', config, '-N', '-o', 'ExitOnForwardFailure=yes', '-o', 'StreamLocalBindUnlink=yes', '-o', 'StreamLocalBindMask=0177', '-L', `${socket}:${engineSocket}`, `root@${sshd.address}`],
      { stdio: ['ignore', 'ignore', 'pipe'] }
    )
    started.push(child)
    let stderr = ''
    child.stderr?.setEncoding('utf8')
    child.stderr?.on('data', (chunk: string) => (stderr += chunk))
    const deadline = Date.now() + 20_000
    while (!existsSync(socket)) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`ssh -L did not open ${socket}: ${stderr}`)
      await sleep(25)
    }
    // The ssh process is found by the directory its command line names.
    expect(sshProcessesUnder(dir)).toEqual([child.pid])
    expect(sshd.sessionPids().length).toBeGreaterThan(0)

    const env = { ...cleanDockerEnv(), DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: host.engine.dockerConfig }
    const began = Date.now()
    const version = await runCommand('docker', ['version', '--format', '{{.Server.Version}}'], { env, timeoutMs: 30_000 })
    const elapsed = Date.now() - began
    expect({ exit: version.exitCode, stderr: version.stderr }).toEqual({ exit: 0, stderr: '' })
    expect(version.stdout.trim()).toBe((await host.engine.docker(['version', '--format', '{{.Server.Version}}'])).trim())
    const ids = await Promise.all([
      runCommand('docker', ['info', '--format', '{{.ID}}'], { env, timeoutMs: 30_000 }).then((result) => result.stdout.trim()),
      host.engine.docker(['info', '--format', '{{.ID}}']).then((out) => out.trim())
    ])
    expect(ids[0]).toBe(ids[1])
    process.stdout.write(`docker version through the forward: ${elapsed} ms\n`)

    signalPid(child.pid as number, 'SIGTERM')
    expect(await waitForExit(child, 5_000)).toBe(true)
    expect(sshProcessesUnder(dir)).toEqual([])
  }, 90_000)

  it('refuses a wrong host key: "Host key verification failed"', async () => {
    const impostor = await generateKeyPair(dir, 'impostor')
    const wrongDir = join(dir, 'wrong-client')
    mkdirSync(wrongDir)
    const wrongConfig = writeClientConfig(wrongDir, { identityFile: clientKey.path, knownHosts: [knownHostsLine(sshd.address, 22, impostor.publicKey)] }).path
    const result = await runCommand('ssh', ['-F', wrongConfig, `root@${sshd.address}`, 'true'], { timeoutMs: 30_000 })
    expect(result.exitCode).toBe(255)
    expect(result.stderr).toContain('Host key verification failed')

    // An unknown host (empty known_hosts) is refused as well: checking is strict, nothing is learnt.
    const unknownDir = join(dir, 'unknown-client')
    mkdirSync(unknownDir)
    const unknownConfig = writeClientConfig(unknownDir, { identityFile: clientKey.path, knownHosts: [] })
    const unknown = await runCommand('ssh', ['-F', unknownConfig.path, `root@${sshd.address}`, 'true'], { timeoutMs: 30_000 })
    expect(unknown.exitCode).toBe(255)
    expect(unknown.stderr).toContain('Host key verification failed')
  }, 60_000)
})

/*
 * The action over ssh:// (issue 19's proof). One namespace host runs sshd in front of its private
 * engine and a registry on its own loopback (so `127.0.0.1:PORT/acme/web` pulls stay inside it).
 * Every run gets its own RUNNER_TEMP, so what the action leaves there (its private ssh directory,
 * the key) and the ssh processes it started (found by that directory in their command line) can
 * be checked after the main step and after the post step. The key is given only through the
 * `ssh-key` input and the host key only through `ssh-known-hosts`.
 */
describe('the action over ssh:// with the ssh-key and ssh-known-hosts inputs', () => {
  const REPO = 'acme/web'
  const HEALTHY_BODY = 'status: green'
  /** START_DELAY of the slow-starting v4, in seconds: the health check runs this long at least. */
  const SLOW_START_SECONDS = 4

  let lab: NamespaceLab
  let host: NamespaceHost
  let sshd: Sshd
  let registry: NamespaceRegistry
  let registryPort: number
  let clientKey: KeyPair
  let impostorKey: KeyPair
  let strangerHostKey: KeyPair
  let keysDir: string
  const tempDirs: string[] = []
  /** The pw_dir of this user: ssh's `~`, whatever HOME says. Its .ssh must be as it was. */
  const sshHome = join(userInfo().homedir, '.ssh')
  let sshHomeBefore: string

  /** Builds `tag` with `behaviour` in the host's engine and pushes it to the host's own registry. */
  async function publish(tag: string, behaviour: AppBehaviour, options: { startDelaySeconds?: number } = {}): Promise<void> {
    const built = await buildAppImage(host.engine, 'local/web', tag, behaviour, { healthBody: behaviour === 'wrong-body' ? undefined : HEALTHY_BODY, ...options })
    const reference = `127.0.0.1:${registryPort}/${REPO}:${tag}`
    await host.engine.docker(['tag', built.reference, reference])
    await host.engine.docker(['push', reference])
    await host.engine.docker(['image', 'rm', built.reference, reference])
  }

  function tempDir(prefix: string): string {
    // Short: the action's forwarded sockets live under RUNNER_TEMP (108 bytes for a socket path).
    const dir = mkdtempSync(join(tmpdir(), `da-${prefix}-`))
    tempDirs.push(dir)
    return dir
  }

  /** A listing of ~/.ssh (or "absent"), to prove the action never writes there. */
  function describeSshHome(): string {
    return existsSync(sshHome) ? `present: ${readdirSync(sshHome).sort().join(',')}` : 'absent'
  }

  beforeAll(async () => {
    sshHomeBefore = describeSshHome()
    lab = await startNamespacedEngines(1)
    host = lab.hosts[0] as NamespaceHost
    registryPort = await freePort()
    registry = await startNamespaceRegistry(host, registryPort)
    keysDir = tempDir('keys')
    clientKey = await generateKeyPair(keysDir)
    impostorKey = await generateKeyPair(keysDir, 'impostor')
    strangerHostKey = await generateKeyPair(keysDir, 'stranger-host')
    sshd = await startSshd(host, { dockerHost: host.engine.dockerHost, authorizedKeys: [clientKey.publicKey] })
    await Promise.all([
      publish('v1', 'healthy'),
      publish('v2', 'healthy'),
      publish('v3', 'wrong-body'),
      publish('v4', 'slow-start', { startDelaySeconds: SLOW_START_SECONDS })
    ])
  }, 180_000)

  afterAll(async () => {
    await registry?.stop()
    await sshd?.stop()
    await lab?.stop()
    for (const dir of tempDirs) await rm(dir, { recursive: true, force: true })
  }, 90_000)

  interface Site {
    name: string
    port: number
    workspace: string
  }

  interface SiteOptions {
    /** Where the app listens inside the host: its loopback only, or every address. */
    bind: '127.0.0.1' | '0.0.0.0'
    /** health.url, `{port}` replaced by the site's port. */
    url: string
    from?: 'host' | 'runner'
    /** `hosts:` as a `{ docker-host, address }` mapping, or the plain `ssh://` string. Default mapping. */
    hostsForm?: 'mapping' | 'plain'
    deadline?: string
  }

  async function writeSite(name: string, options: SiteOptions): Promise<Site> {
    // The app listens inside the host's namespace (network: host there), next to its own ssh traffic.
    const port = await freePortBelowEphemeralRange()
    const workspace = tempDir(`ws-${name}`)
    mkdirSync(join(workspace, '.github'))
    const dockerHost = `ssh://${sshd.dockerHost}`
    writeFileSync(
      join(workspace, '.github', 'deploy.yml'),
      [
        `image: 127.0.0.1:${registryPort}/${REPO}`,
        `name: ${name}`,
        'hosts:',
        ...((options.hostsForm ?? 'mapping') === 'mapping' ? [`  - docker-host: ${dockerHost}`, `    address: ${sshd.address}`] : [`  - ${dockerHost}`]),
        'container:',
        '  network: host',
        '  init: true',
        '  stop-timeout: 2s',
        '  env:',
        `    PORT: "${port}"`,
        `    BIND: "${options.bind}"`,
        'health:',
        `  url: ${options.url.replace('{port}', String(port))}`,
        ...(options.from ? [`  from: ${options.from}`] : []),
        `  expect-body: "${HEALTHY_BODY}"`,
        '  interval: 150ms',
        '  timeout: 1s',
        `  deadline: ${options.deadline ?? '4s'}`,
        '  healthy-threshold: 2',
        'rollback:',
        '  to: previous',
        ''
      ].join('\n')
    )
    return { name, port, workspace }
  }

  interface RunOptions {
    knownHosts?: string
    phase?: 'post'
    state?: Record<string, string>
    onStdout?: RunActionOptions['onStdout']
    signalAfter?: RunActionOptions['signalAfter']
  }

  function run(target: Site, tag: string, runnerTemp: string, options: RunOptions = {}): Promise<ActionResult> {
    return runAction({
      workspace: target.workspace,
      inputs: { tag, 'ssh-key': clientKey.privateKey, 'ssh-known-hosts': options.knownHosts ?? `${sshd.knownHostsLine}\n` },
      env: { RUNNER_TEMP: runnerTemp },
      timeoutMs: 120_000,
      ...(options.phase && { phase: options.phase, state: options.state }),
      ...(options.onStdout && { onStdout: options.onStdout }),
      ...(options.signalAfter && { signalAfter: options.signalAfter })
    })
  }

  /** The action's log, annotations and outputs, for a failed expectation's message. */
  function explain(result: ActionResult): string {
    return `exit ${result.exitCode} ${result.signal ?? ''}, outputs ${JSON.stringify(result.outputs)}\n--- stdout (tail) ---\n${result.stdout.slice(-6_000)}\n--- stderr (tail) ---\n${result.stderr.slice(-2_000)}`
  }

  /** The base64 lines of the private key: none may be found in a file, nor printed. */
  function keyLines(): string[] {
    return clientKey.privateKey.split('\n').filter((line) => line.length >= 16 && !line.startsWith('-----'))
  }

  /**
   * What the main or post step must leave behind: no private ssh directory, no copy of the key,
   * no ssh process naming RUNNER_TEMP, no server-side session, and ~/.ssh as it was.
   */
  async function expectNothingLeft(runnerTemp: string): Promise<void> {
    // An ssh the action stopped may take a moment to be reaped; a process that stays is a leak.
    const deadline = Date.now() + 3_000
    while (sshProcessesUnder(runnerTemp).length > 0 && Date.now() < deadline) await sleep(50)
    expect(sshProcessesUnder(runnerTemp).map((pid) => readCmdline(pid)?.join(' '))).toEqual([])
    expect(privateSshDirs(runnerTemp)).toEqual([])
    for (const line of keyLines()) expect(filesContaining(runnerTemp, line)).toEqual([])
    while (sshd.sessionPids().length > 0 && Date.now() < deadline) await sleep(50)
    expect(sshd.sessionPids()).toEqual([])
    expect(describeSshHome()).toBe(sshHomeBefore)
  }

  /** What serves on the host, asked of the engine directly: the running containers of `name` with their image tag. */
  async function runningOf(name: string): Promise<string[]> {
    const listed = await host.engine.docker(['ps', '--filter', `name=^${name}`, '--format', '{{.Names}} {{.Image}}'])
    return listed
      .split('\n')
      .filter(Boolean)
      .filter((line) => !line.startsWith(`${name}-deploy-lock `))
      .map((line) => line.replace(`127.0.0.1:${registryPort}/${REPO}:`, ''))
      .sort()
  }

  /** GET on the host's own loopback, from inside its namespace (busybox wget; its `-T` segfaults in Debian 12's busybox-static). */
  async function fromInsideHost(port: number, path: string): Promise<string> {
    return host.exec(['/bin/busybox', 'wget', '-q', '-O', '-', `http://127.0.0.1:${port}${path}`]).catch((error: Error) => `unreachable: ${error.message.split('\n')[0]}`)
  }

  /** GET from the runner (the test process). */
  async function fromRunner(url: string): Promise<string> {
    return httpGet(url, { timeoutMs: 3_000 }).then(
      (response) => response.body,
      (error: NodeJS.ErrnoException) => `unreachable: ${error.code ?? error.message}`
    )
  }

  /** Everything on the engine that a deploy could create or change. */
  async function engineSnapshot(): Promise<string> {
    const parts = await Promise.all([
      host.engine.docker(['ps', '-a', '--no-trunc', '--format', '{{.ID}} {{.Names}} {{.Image}} {{.State}}']),
      host.engine.docker(['images', '-a', '--no-trunc', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}']),
      host.engine.docker(['volume', 'ls', '-q']),
      host.engine.docker(['network', 'ls', '-q'])
    ])
    return parts.map((part) => part.split('\n').sort().join('\n')).join('\n---\n')
  }

  it('a healthy deploy, then a failed one rolled back; nothing left after the main and the post step', async () => {
    const target = await writeSite('sshweb', { bind: '0.0.0.0', url: 'http://{host}:{port}/health' })
    const runnerTemp = tempDir('rt')

    const first = await run(target, 'v1', runnerTemp)
    expect([first.exitCode, first.outputs['result']]).toEqual([0, 'deployed'])
    expect(await fromRunner(`http://${sshd.address}:${target.port}/version`)).toBe('v1')
    expect(await runningOf(target.name)).toEqual([`${target.name} v1`])
    // The key is masked (the runner hides every `::add-mask::` value): no line of it is printed otherwise.
    const printed = `${first.stdout}\n${first.stderr}`.split('\n').filter((line) => !line.startsWith('::add-mask::')).join('\n')
    for (const line of keyLines()) expect(printed).not.toContain(line)
    await expectNothingLeft(runnerTemp)
    const firstPost = await run(target, 'v1', runnerTemp, { phase: 'post', state: first.state })
    expect([explain(firstPost), firstPost.exitCode]).toEqual([explain(firstPost), 0])
    await expectNothingLeft(runnerTemp)

    // v3 answers /health with the wrong body: the deploy fails and v1 serves again.
    const failed = await run(target, 'v3', runnerTemp)
    expect([explain(failed), failed.exitCode, failed.outputs['result'], failed.outputs['tag']]).toEqual([explain(failed), 1, 'rolled-back', 'v1'])
    expect(await fromRunner(`http://${sshd.address}:${target.port}/version`)).toBe('v1')
    expect(await runningOf(target.name)).toEqual([`${target.name} v1`])
    await expectNothingLeft(runnerTemp)
    const failedPost = await run(target, 'v3', runnerTemp, { phase: 'post', state: failed.state })
    expect([explain(failedPost), failedPost.exitCode]).toEqual([explain(failedPost), 0])
    expect(await runningOf(target.name)).toEqual([`${target.name} v1`])
    await expectNothingLeft(runnerTemp)
  }, 180_000)

  it('a wrong host key, or a host missing from ssh-known-hosts, fails before any change with an error naming the host', async () => {
    const target = await writeSite('sshwrong', { bind: '0.0.0.0', url: 'http://{host}:{port}/health' })
    const cases = {
      'wrong key': knownHostsLine(sshd.address, sshd.port, impostorKey.publicKey),
      'unknown host': knownHostsLine('10.251.255.254', 22, strangerHostKey.publicKey)
    }
    for (const [story, knownHosts] of Object.entries(cases)) {
      const runnerTemp = tempDir('rt')
      const before = await engineSnapshot()
      const result = await run(target, 'v1', runnerTemp, { knownHosts })
      expect([story, result.exitCode]).toEqual([story, 1])
      const errors = result.annotations.filter((annotation) => annotation.level === 'error').map((annotation) => annotation.message)
      expect([story, errors.join('\n')]).toEqual([story, expect.stringContaining(sshd.address)])
      expect([story, errors.join('\n')]).toEqual([story, expect.stringMatching(/host key/i)])
      // Nothing was created, pulled or changed on the engine (not even the deploy lock).
      expect([story, await engineSnapshot()]).toEqual([story, before])
      expect(await runningOf(target.name)).toEqual([])
      await expectNothingLeft(runnerTemp)
      const post = await run(target, 'v1', runnerTemp, { phase: 'post', state: result.state, knownHosts })
      expect([story, explain(post), post.exitCode]).toEqual([story, explain(post), 0])
      expect([story, await engineSnapshot()]).toEqual([story, before])
      await expectNothingLeft(runnerTemp)
    }
  }, 180_000)

  it('an app bound to the host’s 127.0.0.1 is checked from the host itself (health.from: host, and by default)', async () => {
    const target = await writeSite('sshlocal', { bind: '127.0.0.1', url: 'http://127.0.0.1:{port}/health', from: 'host', hostsForm: 'plain' })
    const runnerTemp = tempDir('rt')
    const result = await run(target, 'v1', runnerTemp)
    expect([explain(result), result.exitCode, result.outputs['result']]).toEqual([explain(result), 0, 'deployed'])
    // It serves on the host's loopback only: inside the host it answers, from the runner it does not.
    expect(await fromInsideHost(target.port, '/version')).toBe('v1')
    expect(await fromRunner(`http://${sshd.address}:${target.port}/version`)).toMatch(/^unreachable: ECONNREFUSED/)
    expect(await fromRunner(`http://127.0.0.1:${target.port}/version`)).toMatch(/^unreachable: ECONNREFUSED/)
    expect(await runningOf(target.name)).toEqual([`${target.name} v1`])
    await expectNothingLeft(runnerTemp)
    const post = await run(target, 'v1', runnerTemp, { phase: 'post', state: result.state })
    expect([explain(post), post.exitCode]).toEqual([explain(post), 0])
    await expectNothingLeft(runnerTemp)

    // Without health.from: a loopback URL on an ssh:// host is probed from the host too.
    const config = join(target.workspace, '.github', 'deploy.yml')
    writeFileSync(config, readFileSync(config, 'utf8').replace(/^ {2}from: host\n/m, ''))
    expect(readFileSync(config, 'utf8')).not.toContain('from:')
    const defaultTemp = tempDir('rt')
    const second = await run(target, 'v2', defaultTemp)
    expect([explain(second), second.exitCode, second.outputs['result']]).toEqual([explain(second), 0, 'deployed'])
    expect(await fromInsideHost(target.port, '/version')).toBe('v2')
    await expectNothingLeft(defaultTemp)
  }, 180_000)

  it('in contrast, the same loopback URL probed from the runner (health.from: runner) fails: the runner’s loopback has no app', async () => {
    const target = await writeSite('sshrunner', { bind: '127.0.0.1', url: 'http://127.0.0.1:{port}/health', from: 'host' })
    const runnerTemp = tempDir('rt')
    const first = await run(target, 'v1', runnerTemp)
    expect([explain(first), first.exitCode]).toEqual([explain(first), 0])
    writeFileSync(join(target.workspace, '.github', 'deploy.yml'), readFileSync(join(target.workspace, '.github', 'deploy.yml'), 'utf8').replace(/^ {2}from: host$/m, '  from: runner'))
    const fromTheRunner = await run(target, 'v2', runnerTemp)
    // The runner's own 127.0.0.1 has no app on that port: v2 fails, and v1, put back, cannot be shown healthy either.
    expect([explain(fromTheRunner), fromTheRunner.exitCode, fromTheRunner.outputs['result']]).toEqual([explain(fromTheRunner), 1, 'failed'])
    const errors = fromTheRunner.annotations.filter((annotation) => annotation.level === 'error').map((annotation) => annotation.message)
    expect(errors.join('\n')).toContain(`GET http://127.0.0.1:${target.port}/health failed: connection refused`)
    expect(await fromRunner(`http://127.0.0.1:${target.port}/version`)).toMatch(/^unreachable: ECONNREFUSED/)
    // On the host, v1 is back and serves.
    expect(await runningOf(target.name)).toEqual([`${target.name} v1`])
    expect(await fromInsideHost(target.port, '/version')).toBe('v1')
    await expectNothingLeft(runnerTemp)
  }, 180_000)

  it('a main step killed mid-deploy leaves its ssh directory only until the post step; its ssh dies with it', async () => {
    const target = await writeSite('sshkill', { bind: '0.0.0.0', url: 'http://{host}:{port}/health', deadline: '15s' })
    const runnerTemp = tempDir('rt')
    expect((await run(target, 'v1', runnerTemp)).exitCode).toBe(0)
    const main = await run(target, 'v4', runnerTemp, { signalAfter: { signal: 'SIGKILL', whenStdout: /Deploy · verify/ } })
    expect(main.signal).toBe('SIGKILL')
    // setpriv --pdeathsig: the kernel ends the action's ssh when the action dies.
    const deadline = Date.now() + 5_000
    while (sshProcessesUnder(runnerTemp).length > 0 && Date.now() < deadline) await sleep(50)
    expect(sshProcessesUnder(runnerTemp)).toEqual([])
    // The key is still on disk, in the private directory only, until the post step.
    const left = privateSshDirs(runnerTemp)
    expect(left).toHaveLength(1)
    expect((statSync(left[0] as string).mode & 0o777).toString(8)).toBe('700')
    const post = await run(target, 'v4', runnerTemp, { phase: 'post', state: main.state })
    expect([explain(post), post.exitCode]).toEqual([explain(post), 0])
    await expectNothingLeft(runnerTemp)
    // A version serves afterwards, as the engine tells.
    const running = await runningOf(target.name)
    expect(running).toHaveLength(1)
    const servedTag = (running[0] ?? '').split(' ')[1] ?? ''
    expect(await waitForBody(`http://${sshd.address}:${target.port}/version`, servedTag)).toBe(servedTag)
  }, 180_000)

  /** Polls until `url` answers `body` (a slow-starting version needs a few seconds), else the last answer. */
  async function waitForBody(url: string, body: string, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs
    let last = ''
    do {
      last = await fromRunner(url)
      if (last === body) return last
      await sleep(200)
    } while (Date.now() < deadline)
    return last
  }

  describe.each([
    ['from the runner', { bind: '0.0.0.0', url: 'http://{host}:{port}/health' }],
    ['from the host', { bind: '127.0.0.1', url: 'http://127.0.0.1:{port}/health', from: 'host' }]
  ] as const)('a dropped SSH connection during the health check (%s)', (label, siteOptions) => {
    it('is opened again, or the host is unknown; a version serves afterwards, and no ssh is left', async () => {
      const name = label === 'from the runner' ? 'sshdroprun' : 'sshdrophost'
      const target = await writeSite(name, { ...siteOptions, deadline: '20s' })
      const runnerTemp = tempDir('rt')
      expect((await run(target, 'v1', runnerTemp)).exitCode).toBe(0)

      // Every ssh master (`-M`) the action runs, sampled while it runs.
      const masters = new Set<number>()
      const sampler = setInterval(() => {
        for (const pid of sshProcessesUnder(runnerTemp)) if (readCmdline(pid)?.includes('-M')) masters.add(pid)
      }, 20)
      let killed: number[] = []
      let killTimer: NodeJS.Timeout | undefined
      let printed = ''
      const result = await run(target, 'v4', runnerTemp, {
        onStdout: (chunk) => {
          printed += chunk
          if (killTimer || !/Deploy · verify/.test(printed)) return
          // In the middle of the check: v4 needs SLOW_START_SECONDS before it answers.
          killTimer = setTimeout(() => {
            killed = sshProcessesUnder(runnerTemp).filter((pid) => readCmdline(pid)?.includes('-M'))
            for (const pid of killed) signalPid(pid, 'SIGKILL')
          }, 1_000)
        }
      }).finally(() => {
        clearInterval(sampler)
        if (killTimer) clearTimeout(killTimer)
      })
      expect(killed).toHaveLength(1)
      const annotations = result.annotations.map((annotation) => `${annotation.level}: ${annotation.message}`)
      process.stdout.write(
        `dropped connection (${label}): exit ${result.exitCode}, result ${result.outputs['result']}, tag ${result.outputs['tag']}, masters seen ${masters.size}\n  ${annotations.join('\n  ')}\n`
      )
      // Probed from the runner, the verify phase only reads through the connection: a read that met
      // the drop is sent again once it is open again, so the deploy must go on. From the host, the
      // probes' own forward drops too; the host may then be judged unknown and put back.
      if (label === 'from the runner') expect([explain(result), result.exitCode]).toEqual([explain(result), 0])
      if (result.exitCode === 0) {
        // Opened again: the deploy went on and v4 serves, and every step after the drop reached the host.
        expect(result.outputs['result']).toBe('deployed')
        expect(masters.size).toBeGreaterThanOrEqual(2)
        expect(annotations.join('\n')).toMatch(/dropped/i)
        expect(annotations.filter((line) => /could not open an SSH connection|could not release|lost the deploy lock/i.test(line))).toEqual([])
      } else {
        expect([explain(result), result.exitCode]).toEqual([explain(result), 1])
      }
      await expectNothingLeft(runnerTemp)
      const post = await run(target, 'v4', runnerTemp, { phase: 'post', state: result.state })
      expect([explain(post), post.exitCode]).toEqual([explain(post), 0])
      await expectNothingLeft(runnerTemp)

      // Whatever the run decided, one version runs and serves, as the engine itself tells, and no lock is left.
      expect(await host.engine.docker(['ps', '-a', '--filter', `name=^${name}-deploy-lock$`, '--format', '{{.Names}}'])).toBe('')
      const running = await runningOf(name)
      expect(running).toHaveLength(1)
      const servedTag = (running[0] ?? '').split(' ')[1] ?? ''
      expect(['v1', 'v4']).toContain(servedTag)
      if (result.exitCode === 0) expect(servedTag).toBe('v4')
      const served = siteOptions.bind === '0.0.0.0' ? await waitForBody(`http://${sshd.address}:${target.port}/version`, servedTag) : await fromInsideHost(target.port, '/version')
      expect(served).toBe(servedTag)
    }, 180_000)
  })
})
