/**
 * The Docker daemon goes away in the middle of a deploy: a private engine, started here, is
 * stopped (SIGTERM to its dockerd, whose pid this file owns) while the new version is verified.
 * The action must end promptly and say the truth: not deployed, not rolled back, and what to check.
 * Its own file: the engine does not survive the test.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runAction, type ActionResult, type RunActionOptions } from '../test-support/action-run.js'
import { startEngine, type Engine } from '../test-support/engine.js'
import { buildAppImage } from '../test-support/images.js'
import { freePort, httpGet } from '../test-support/net.js'
import { signalPid } from '../test-support/proc.js'
import { startRegistry, type Registry } from '../test-support/registry.js'

let engine: Engine
let registry: Registry
let workspace: string
let port: number

beforeAll(async () => {
  engine = await startEngine()
  registry = await startRegistry(engine)
  for (const [tag, behaviour] of [['v1', 'healthy'], ['v2-slow', 'slow-start']] as const) {
    const built = await buildAppImage(engine, 'local/web', tag, behaviour, { startDelaySeconds: 60 })
    const pushed = await registry.push(engine, built.reference, 'acme/web', tag)
    await engine.docker(['image', 'rm', built.reference, pushed.reference])
  }
  port = await freePort()
  workspace = mkdtempSync(join(tmpdir(), 'deploy-action-daemon-'))
  mkdirSync(join(workspace, '.github'))
  writeFileSync(
    join(workspace, '.github', 'deploy.yml'),
    [
      `image: ${registry.address}/acme/web`,
      'name: web',
      'container: { network: host, init: true, stop-timeout: 1s, env: { PORT: "' + String(port) + '" } }',
      `health: { url: "http://127.0.0.1:${port}/health", interval: 150ms, deadline: 30s }`,
      'rollback: { to: previous }',
      ''
    ].join('\n')
  )
}, 90_000)

afterAll(async () => {
  await registry?.stop()
  await engine?.stop()
  if (workspace) await rm(workspace, { recursive: true, force: true })
}, 60_000)

function step(inputs: Record<string, string>, extra: Partial<RunActionOptions> = {}): Promise<ActionResult> {
  return runAction({
    workspace,
    dockerHost: engine.dockerHost,
    inputs: { 'registry-username': registry.username, 'registry-password': registry.password, ...inputs },
    timeoutMs: 90_000,
    ...extra
  })
}

describe('docker daemon unreachable during the deploy', () => {
  it('ends promptly with result=failed and says to check by hand; the next deploy fails before doing anything', async () => {
    const first = await step({ tag: 'v1' })
    expect(first.outputs.result).toBe('deployed')
    expect((await httpGet(`http://127.0.0.1:${port}/version`)).body).toBe('v1')

    let stoppedAt = 0
    const result = await step(
      { tag: 'v2-slow' },
      {
        onStdout: (chunk) => {
          if (stoppedAt === 0 && chunk.includes('::group::Deploy · verify')) {
            stoppedAt = Date.now()
            signalPid(engine.pid, 'SIGTERM')
          }
        }
      }
    )
    const endedAfterMs = Date.now() - stoppedAt

    expect(stoppedAt).toBeGreaterThan(0)
    // Well before the 30 s health deadline: a state that cannot be read is given up on.
    expect(endedAfterMs).toBeLessThan(20_000)
    expect(result.exitCode).toBe(1)
    expect(result.outputs).toMatchObject({ result: 'failed', 'previous-tag': 'v1' })
    const verdict = result.annotations.find((entry) => entry.level === 'error' && entry.title === 'Deploy failed')?.message ?? ''
    expect(verdict).toMatch(/^Deploy of v2-slow failed: [\s\S]*Putting back a known version failed too [\s\S]*the post step tries once more to put back what ran before, and says whether it serves\.$/)
    expect(verdict).toMatch(/Cannot connect to the Docker daemon|connection refused|no such file/i)
    // The lock is kept for the post step's second try, not released now.
    expect(result.annotations.find((entry) => entry.title === 'Deploy · unlock')).toBeUndefined()
    // The daemon stopped its containers on the way down: nothing serves, as the verdict warned.
    await expect(httpGet(`http://127.0.0.1:${port}/version`, { timeoutMs: 1_000 })).rejects.toMatchObject({ code: 'ECONNREFUSED' })

    // The post step cannot reach the engine either: its second try fails, and it says so (exit 1).
    // No known version was put back, so it keeps the lock (issue 18) and says how to release it.
    const post = await step({ tag: 'v2-slow' }, { phase: 'post', state: result.state })
    expect(post.exitCode).toBe(1)
    expect(post.annotations.find((entry) => entry.title === 'Post · restore failed')?.message).toMatch(/putting back what ran before failed [\s\S]*check web by hand: it may not be serving\.$/)
    expect(post.annotations.find((entry) => entry.title === 'Post · unlock')?.message).toMatch(
      /^The deploy lock web-deploy-lock on local stays held: no known version could be put back there[\s\S]*docker container rm web-deploy-lock/
    )

    // Unreachable before the deploy: it fails at the first docker command and changes nothing.
    const next = await step({ tag: 'v1' })
    expect(next.exitCode).toBe(1)
    expect(next.outputs).toMatchObject({ result: 'failed', tag: '', 'previous-tag': '' })
    expect(next.annotations.find((entry) => entry.title === 'Deploy failed')?.message).toMatch(/Cannot connect to the Docker daemon.*Nothing was changed\.$/)
  }, 120_000)
})
