/**
 * Several hosts (issue 6): two private engines, each in its own network namespace with its own
 * loopback and address, as the two entries of `hosts:`. The bundled action deploys the same port
 * to both, one host after the other; `{host}` in health.url becomes each namespace's address,
 * given by the `address` of a `hosts:` mapping because a unix:// socket has no address of its own.
 *
 * Each namespace also runs its own registry on its own 127.0.0.1, so the image reference
 * `127.0.0.1:PORT/acme/web` is the same string on both hosts while every pull stays inside its
 * namespace. That also lets one tag differ per host: host 2's v2 is broken, which is how the
 * test makes the second host fail. Test traffic goes only to loopback and the namespaces' addresses.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { runAction, type ActionResult } from '../test-support/action-run.js'
import {
  hostRows,
  makeSite,
  pushToNamespace,
  servedVersions as servedBy,
  siteConfig,
  startNamespaceFixture,
  stepOrder,
  tempDirs,
  type NamespaceFixture,
  type Site
} from '../test-support/fixture.js'
import type { AppBehaviour } from '../test-support/images.js'
import type { NamespaceHost } from '../test-support/netns.js'

const REPO = 'acme/web'
const NAME = 'web'
const HEALTHY_BODY = 'status: green'

let lab: NamespaceFixture
let registryPort: number
let appPort: number
let workspace: string
const dirs = tempDirs()

/** Builds `tag` with `behaviour` in the host's engine and pushes it to the host's own registry. */
function publish(host: NamespaceHost, tag: string, behaviour: AppBehaviour): Promise<void> {
  return pushToNamespace(host, `127.0.0.1:${registryPort}/${REPO}`, tag, behaviour, { app: { healthBody: behaviour === 'healthy' ? HEALTHY_BODY : undefined } })
}

beforeAll(async () => {
  lab = await startNamespaceFixture(2)
  registryPort = lab.registryPort
  const [first, second] = lab.hosts as [NamespaceHost, NamespaceHost]
  await Promise.all([
    publish(first, 'v1', 'healthy'),
    publish(second, 'v1', 'healthy'),
    publish(first, 'v2', 'healthy'),
    // The same tag, broken on the second host only.
    publish(second, 'v2', 'wrong-body')
  ])

  const config = ({ port }: Site): string =>
    siteConfig({
      image: `127.0.0.1:${registryPort}/${REPO}`,
      name: NAME,
      port,
      expectBody: HEALTHY_BODY,
      hosts: lab.hosts.map((host) => ({ dockerHost: host.engine.dockerHost, address: host.address })),
      // Inside its namespace the app must answer on the namespace's address, not only its loopback.
      env: { BIND: '0.0.0.0' }
    })
  ;({ port: appPort, workspace } = await makeSite(dirs, NAME, config))
}, 120_000)

afterAll(async () => {
  await lab?.stop()
  await dirs.remove()
}, 90_000)

function deploy(tag: string): Promise<ActionResult> {
  return runAction({ workspace, inputs: { tag }, timeoutMs: 120_000 })
}

/** What each host serves on the app port, read from the test process at the namespace's address. */
function servedVersions(): Promise<string[]> {
  return servedBy(lab.hosts, appPort)
}

describe('two hosts in two network namespaces', () => {
  it('deploys to both, one after the other, each checked at its own address', async () => {
    const result = await deploy('v1')
    expect({ exit: result.exitCode, result: result.outputs.result }).toEqual({ exit: 0, result: 'deployed' })
    expect(await servedVersions()).toEqual(['v1', 'v1'])
    const [first, second] = lab.hosts as [NamespaceHost, NamespaceHost]
    // {host} became each namespace's address.
    expect(result.stdout).toContain(`at http://${first.address}:${appPort}/health`)
    expect(result.stdout).toContain(`at http://${second.address}:${appPort}/health`)
    expect(hostRows(result.summary)).toEqual([
      [first.engine.dockerHost, '–', 'v1', 'deployed v1'],
      [second.engine.dockerHost, '–', 'v1', 'deployed v1']
    ])
    // Host 1 is switched and verified before host 2 is touched.
    const order = stepOrder(result.stdout).filter((title) => /switch|verify/.test(title))
    expect(order).toEqual([
      `Deploy · switch (${first.engine.dockerHost})`,
      `Deploy · verify (${first.engine.dockerHost})`,
      `Deploy · switch (${second.engine.dockerHost})`,
      `Deploy · verify (${second.engine.dockerHost})`
    ])
  }, 120_000)

  it('rolls back the first host too when the second fails, so the fleet stays on one version', async () => {
    const result = await deploy('v2')
    expect(result.exitCode).toBe(1)
    expect(result.outputs.result).toBe('rolled-back')
    expect(result.outputs.tag).toBe('v1')
    const [first, second] = lab.hosts as [NamespaceHost, NamespaceHost]
    const errors = result.annotations.filter((annotation) => annotation.level === 'error').map((annotation) => annotation.message)
    expect(errors.join('\n')).toContain(`Deploy of v2 failed on ${second.engine.dockerHost}`)
    // Host 1 was healthy on v2 before host 2 was tried; then both went back to v1.
    const order = stepOrder(result.stdout).filter((title) => /switch|verify|restore/.test(title))
    expect(order.slice(0, 4)).toEqual([
      `Deploy · switch (${first.engine.dockerHost})`,
      `Deploy · verify (${first.engine.dockerHost})`,
      `Deploy · switch (${second.engine.dockerHost})`,
      `Deploy · verify (${second.engine.dockerHost})`
    ])
    // Both hosts are put back side by side, the failed one first.
    expect(order[4]).toBe(`Rollback · restore (${second.engine.dockerHost})`)
    expect([...order.slice(4)].sort()).toEqual(
      [
        `Rollback · restore (${second.engine.dockerHost})`,
        `Rollback · verify (${second.engine.dockerHost})`,
        `Rollback · restore (${first.engine.dockerHost})`,
        `Rollback · verify (${first.engine.dockerHost})`
      ].sort()
    )
    // On each host its restore comes before its verify.
    for (const host of [first, second]) {
      expect(order.indexOf(`Rollback · restore (${host.engine.dockerHost})`)).toBeLessThan(order.indexOf(`Rollback · verify (${host.engine.dockerHost})`))
    }
    expect(hostRows(result.summary)).toEqual([
      [first.engine.dockerHost, 'v1', 'v1', 'rolled back to v1'],
      [second.engine.dockerHost, 'v1', 'v1', 'rolled back to v1']
    ])
    expect(await servedVersions()).toEqual(['v1', 'v1'])
  }, 120_000)
})
