/**
 * A real image registry with basic auth for integration tests: Debian's `docker-registry`
 * (distribution 2.x) as a host process on 127.0.0.1 at a free port, storage and htpasswd file in
 * a temporary directory. Private engines accept plain HTTP for 127.0.0.0/8 without extra flags.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runDocker, type Engine } from './engine.js'
import { freePort, waitForHttp } from './net.js'
import { dieWithParentPrefix, realProcess, removeTree, removeTreeSync, runChecked, signalPid, waitForExit } from './proc.js'

export interface PushedImage {
  /** `127.0.0.1:PORT/repo:tag` */
  reference: string
  /** Registry manifest digest (`sha256:…`) reported by the push. */
  digest: string
}

export interface Registry {
  /** `127.0.0.1:PORT`: the registry part of image references. */
  readonly address: string
  readonly username: string
  /** Random per registry. Tests pass it to the action as `registry-password` (stdin only). */
  readonly password: string
  /**
   * Tags `localRef` in `engine` as `address/repo:tag` and pushes it, logged in through a
   * throw-away DOCKER_CONFIG: the engine's own client config stays logged out, so tests can
   * still prove that the action logs in by itself.
   */
  push(engine: Engine, localRef: string, repo: string, tag: string): Promise<PushedImage>
  /**
   * Logs in to this registry with `docker login --password-stdin` against `engine`, storing the
   * credentials in `dockerConfig` (a directory the caller owns, never ~/.docker).
   */
  login(engine: Engine, dockerConfig: string): Promise<void>
  /** The registry's log so far. */
  log(): string
  /** Stops the registry process (only the pid started here) and removes its storage. Idempotent. */
  stop(): Promise<void>
}

/**
 * Starts a registry requiring basic auth and resolves once it answers on `/v2/`. When `engine` is
 * given, also checks that this engine can log in to it (into a throw-away client config), so a
 * broken set-up fails here with a clear message rather than later inside a test.
 */
export async function startRegistry(engine?: Engine, options: { username?: string; readyTimeoutMs?: number } = {}): Promise<Registry> {
  const dir = mkdtempSync(join(tmpdir(), 'deploy-action-registry-'))
  const port = await freePort()
  const address = `127.0.0.1:${port}`
  const username = options.username ?? 'deployer'
  const password = randomBytes(18).toString('base64url')

  // -i reads the password from stdin: even a test password stays out of the process list.
  await runChecked('htpasswd', ['-B', '-i', '-c', join(dir, 'htpasswd'), username], { input: `${password}\n` })
  mkdirSync(join(dir, 'storage'))
  const config = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'storage')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${address}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
    'auth:',
    '  htpasswd:',
    '    realm: deploy-action-test',
    `    path: ${join(dir, 'htpasswd')}`,
    ''
  ].join('\n')
  writeFileSync(join(dir, 'config.yml'), config)

  const logPath = join(dir, 'registry.log')
  const logFd = openSync(logPath, 'a')
  let child: ChildProcess
  try {
    const argv = [...dieWithParentPrefix(), 'docker-registry', 'serve', join(dir, 'config.yml')]
    child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', logFd, logFd] })
  } finally {
    closeSync(logFd)
  }
  child.unref()
  const spawnFailed = new Promise<Error>((resolve) => child.once('error', resolve))
  const log = (): string => {
    try {
      return readFileSync(logPath, 'utf8')
    } catch {
      return ''
    }
  }
  const childRunning = (): boolean => child.exitCode === null && child.signalCode === null

  let stopped = false
  let stopping: Promise<void> | undefined
  const stopSync = (): void => {
    if (stopped) return
    stopped = true
    if (child.pid !== undefined && childRunning()) signalPid(child.pid, 'SIGKILL')
    removeTreeSync(dir)
  }
  const host = realProcess()
  host.on('exit', stopSync)
  const stop = (): Promise<void> => {
    if (stopped) return Promise.resolve()
    stopping ??= (async () => {
      try {
        if (child.pid !== undefined && childRunning()) {
          signalPid(child.pid, 'SIGTERM')
          if (!(await waitForExit(child, 5_000))) {
            signalPid(child.pid, 'SIGKILL')
            await waitForExit(child, 5_000)
          }
        }
        await removeTree(dir)
      } finally {
        stopped = true
        host.off('exit', stopSync)
      }
    })()
    return stopping
  }

  try {
    // Any HTTP answer means it is up; with auth configured /v2/ answers 401 to anonymous callers.
    const ready = await Promise.race([
      waitForHttp(`http://${address}/v2/`, options.readyTimeoutMs ?? 15_000),
      spawnFailed.then((error) => Promise.reject(error))
    ])
    if (ready.status !== 401) throw new Error(`expected 401 from an auth-protected /v2/, got ${ready.status}`)
  } catch (error) {
    const registryLog = log()
    await stop()
    throw new Error(`docker-registry did not start on ${address}: ${(error as Error).message}\n--- registry log ---\n${registryLog.slice(-4_000)}`)
  }

  const login = async (engine: Engine, dockerConfig: string): Promise<void> => {
    const result = await runDocker(['login', '--username', username, '--password-stdin', address], engine.env({ DOCKER_CONFIG: dockerConfig }), {
      input: password,
      timeoutMs: 30_000
    })
    if (result.exitCode !== 0) throw new Error(`docker login ${address} failed: ${result.stderr.trim()}`)
  }

  const push = async (engine: Engine, localRef: string, repo: string, tag: string): Promise<PushedImage> => {
    const reference = `${address}/${repo}:${tag}`
    const pusherConfig = mkdtempSync(join(dir, 'pusher-config-'))
    try {
      await login(engine, pusherConfig)
      await engine.docker(['tag', localRef, reference])
      const result = await runDocker(['push', reference], engine.env({ DOCKER_CONFIG: pusherConfig }), { timeoutMs: 120_000 })
      if (result.exitCode !== 0) throw new Error(`docker push ${reference} failed: ${(result.stderr || result.stdout).trim()}`)
      const digest = /digest: (sha256:[0-9a-f]{64})/.exec(result.stdout)?.[1]
      if (!digest) throw new Error(`docker push ${reference} printed no digest:\n${result.stdout}`)
      return { reference, digest }
    } finally {
      await removeTree(pusherConfig)
    }
  }

  if (engine) {
    const probeConfig = mkdtempSync(join(dir, 'probe-config-'))
    try {
      await login(engine, probeConfig)
    } catch (error) {
      await stop()
      throw error
    } finally {
      await removeTree(probeConfig).catch(() => undefined)
    }
  }

  return {
    address,
    username,
    password,
    push,
    login,
    log,
    stop
  }
}
