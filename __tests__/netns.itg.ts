/**
 * Proves the multi-host part of the harness (issue 6): two private engines, each in its own
 * network namespace, run a container on the same loopback port without conflict, and the test
 * process reaches each namespace's own address over its veth pair. Traffic stays on loopback and
 * on the 10.251.X.0/30 links the harness created.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { buildAppImage } from '../test-support/images.js'
import { freePort, httpGet, waitForHttp } from '../test-support/net.js'
import { startNamespacedEngines, type NamespaceLab } from '../test-support/netns.js'
import { isAlive } from '../test-support/proc.js'

let lab: NamespaceLab

beforeAll(async () => {
  lab = await startNamespacedEngines(2)
}, 60_000)

afterAll(async () => {
  await lab?.stop()
}, 60_000)

describe('engines in network namespaces', () => {
  it('gives each host its own address in a distinct /30 and an engine reachable through its unix socket', async () => {
    const [first, second] = lab.hosts
    expect(first?.address).toMatch(/^10\.251\.\d+\.2$/)
    expect(second?.address).toMatch(/^10\.251\.\d+\.2$/)
    expect(first?.address).not.toBe(second?.address)
    for (const host of lab.hosts) {
      expect((await host.engine.docker(['version', '--format', '{{.Server.Version}}'])).trim()).not.toBe('')
      // The daemon really is inside the namespace: its network namespace differs from ours.
      const inside = spawnSync('ip', ['netns', 'identify', String(host.engine.pid)], { encoding: 'utf8' }).stdout.trim()
      expect(inside).toBe(host.namespace)
    }
  }, 30_000)

  it('runs a container on the same 127.0.0.1 port in each namespace, each serving its own version', async () => {
    const port = await freePort()
    await Promise.all(
      lab.hosts.map(async (host, index) => {
        const image = await buildAppImage(host.engine, 'local/web', `v${index + 1}`, 'healthy')
        await host.engine.docker(['run', '-d', '--init', '--network', 'host', '--name', 'web', '-e', `PORT=${port}`, image.reference])
      })
    )
    for (const [index, host] of lab.hosts.entries()) {
      const url = `http://127.0.0.1:${port}/version`
      // Poll inside the namespace: its loopback is not ours.
      let body = ''
      const deadline = Date.now() + 10_000
      while (body !== `v${index + 1}` && Date.now() < deadline) {
        body = await host.exec(['/bin/busybox', 'wget', '-q', '-O', '-', url]).catch(() => '')
        if (body !== `v${index + 1}`) await new Promise((resolve) => setTimeout(resolve, 100))
      }
      expect(body).toBe(`v${index + 1}`)
    }
    // Nothing of theirs listens on the test process's own loopback.
    await expect(httpGet(`http://127.0.0.1:${port}/version`)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  }, 60_000)

  it("reaches each namespace's own address from the test process", async () => {
    const port = await freePort()
    for (const [index, host] of lab.hosts.entries()) {
      const image = await buildAppImage(host.engine, 'local/public', `p${index + 1}`, 'healthy')
      await host.engine.docker(['run', '-d', '--init', '--network', 'host', '--name', 'public', '-e', `PORT=${port}`, '-e', `BIND=${host.address}`, image.reference])
    }
    for (const [index, host] of lab.hosts.entries()) {
      const response = await waitForHttp(`http://${host.address}:${port}/version`, 10_000, { accept: (r) => r.status === 200 })
      expect(response.body).toBe(`p${index + 1}`)
    }
  }, 60_000)

  it('refuses test traffic to addresses the harness does not own', async () => {
    await expect(httpGet('http://10.251.255.254:80/')).rejects.toThrow(/limited to 127\.0\.0\.0\/8/)
  })

  it('tears down engines, veth pairs and namespaces', async () => {
    const snapshot = lab.hosts.map((host) => ({ pid: host.engine.pid, dir: host.engine.dir, namespace: host.namespace, address: host.address }))
    await lab.stop()
    const namespaces = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout
    const addresses = spawnSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' }).stdout
    for (const host of snapshot) {
      expect(isAlive(host.pid)).toBe(false)
      expect(existsSync(host.dir)).toBe(false)
      expect(namespaces).not.toContain(host.namespace)
      expect(addresses).not.toContain(host.address.replace(/\.2$/, '.1'))
    }
    await expect(httpGet(`http://${snapshot[0]?.address}:80/`)).rejects.toThrow(/limited to/)
  }, 60_000)
})
