/**
 * The SSH path's logic (issue 19): the ssh argv of a docker host, the private config, where a
 * health URL is probed from, and how a docker command behaves when the connection drops. The
 * connection itself runs against a real sshd in ssh.itg.ts.
 */
import { describe, expect, it } from '@jest/globals'
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { DockerResult, DockerRunOptions } from '../src/docker/runner.js'
import { isLoopbackUrl, probesFromHost, throughForward, urlEndpoint } from '../src/health/probe-origin.js'
import { SshDockerRunner } from '../src/ssh/connections.js'
import { createSshDir, isSshDirPath, privateSshConfig } from '../src/ssh/ssh-dir.js'
import { sshTargetArgs, sshTargetOf } from '../src/ssh/ssh-target.js'

describe('ssh target', () => {
  it('turns an ssh:// docker host into ssh options and a destination after --', () => {
    expect(sshTargetOf('ssh://deploy@web1.example.com:2222')).toEqual({ user: 'deploy', host: 'web1.example.com', port: 2222 })
    expect(sshTargetOf('ssh://web1')).toEqual({ host: 'web1' })
    expect(sshTargetOf('ssh://root@[fd00::5]')).toEqual({ user: 'root', host: 'fd00::5' })
    expect(sshTargetOf('unix:///var/run/docker.sock')).toBeUndefined()
    expect(sshTargetOf('tcp://10.0.0.5:2376')).toBeUndefined()
    expect(sshTargetOf(undefined)).toBeUndefined()
    expect(sshTargetArgs({ user: 'deploy', host: 'web1', port: 2222 })).toEqual({ options: ['-l', 'deploy', '-p', '2222'], destination: ['--', 'web1'] })
  })
})

describe('the private SSH directory', () => {
  it('holds the key (0600), the host keys and a config that uses only them, in a 0700 directory', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'ssh-dir-test-'))
    const dir = createSshDir({ key: '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----', knownHosts: 'web1 ssh-ed25519 AAAA' }, parent)
    expect(isSshDirPath(dir.path)).toBe(true)
    expect(statSync(dir.path).mode & 0o777).toBe(0o700)
    expect(statSync(join(dir.path, 'id')).mode & 0o777).toBe(0o600)
    expect(readFileSync(join(dir.path, 'id'), 'utf8')).toMatch(/-----END OPENSSH PRIVATE KEY-----\n$/)
    expect(readFileSync(join(dir.path, 'known_hosts'), 'utf8')).toBe('web1 ssh-ed25519 AAAA\n')
    expect(dir.configArgs).toEqual(['-F', join(dir.path, 'config')])
    const config = readFileSync(join(dir.path, 'config'), 'utf8')
    expect(config).toContain('StrictHostKeyChecking yes')
    expect(config).toContain(`IdentityFile ${join(dir.path, 'id')}`)
    expect(config).toContain('IdentitiesOnly yes')
    expect(config).toContain(`UserKnownHostsFile ${join(dir.path, 'known_hosts')}`)
    await dir.remove()
    expect(existsSync(dir.path)).toBe(false)
  })

  it('without the inputs uses the runner own ssh set-up: no config, no key written', async () => {
    const dir = createSshDir(undefined, mkdtempSync(join(tmpdir(), 'ssh-dir-test-')))
    expect(dir.configArgs).toEqual([])
    expect(existsSync(join(dir.path, 'id'))).toBe(false)
    await dir.remove()
  })

  it('keeps host key checking on even with a key and no known hosts', () => {
    const config = privateSshConfig('/t', { key: 'k' })
    expect(config).toContain('StrictHostKeyChecking yes')
    expect(config).not.toContain('UserKnownHostsFile')
  })
})

describe('health.from', () => {
  it('knows loopback URLs', () => {
    for (const url of ['http://127.0.0.1:8080/health', 'http://localhost/health', 'http://[::1]:9000/', 'http://127.1.2.3/']) expect(isLoopbackUrl(url)).toBe(true)
    for (const url of ['http://10.0.0.5/health', 'https://web.example.com/health', 'http://[fd00::1]/']) expect(isLoopbackUrl(url)).toBe(false)
  })

  it('probes from the host by default only for a loopback URL on an ssh:// host; the setting wins', () => {
    expect(probesFromHost({}, 'ssh://deploy@web1', 'http://127.0.0.1:8080/health')).toBe(true)
    expect(probesFromHost({}, 'ssh://deploy@web1', 'https://web1.example.com/health')).toBe(false)
    expect(probesFromHost({}, undefined, 'http://127.0.0.1:8080/health')).toBe(false)
    expect(probesFromHost({}, 'unix:///var/run/docker.sock', 'http://127.0.0.1:8080/health')).toBe(false)
    expect(probesFromHost({ from: 'runner' }, 'ssh://web1', 'http://127.0.0.1:8080/health')).toBe(false)
    expect(probesFromHost({ from: 'host' }, 'ssh://web1', 'http://10.0.0.5:8080/health')).toBe(true)
  })

  it('probes a forwarded local port with the Host header the app expects', () => {
    expect(urlEndpoint('http://127.0.0.1:8080/health?x=1')).toEqual({ host: '127.0.0.1', port: 8080 })
    expect(urlEndpoint('http://[::1]/')).toEqual({ host: '::1', port: 80 })
    expect(throughForward('http://127.0.0.1:8080/health?x=1', 41234, { Accept: 'text/plain' })).toEqual({
      url: 'http://127.0.0.1:41234/health?x=1',
      headers: { Accept: 'text/plain', Host: '127.0.0.1:8080' }
    })
    expect(throughForward('http://localhost/health', 41234, { host: 'web.example.com' }).headers).toEqual({ host: 'web.example.com' })
  })
})

describe('a docker command over the SSH connection', () => {
  /** A connection that drops when told, and a docker CLI that fails to connect while it is down. */
  function harness(options: { reopenFails?: boolean } = {}) {
    let up = false
    let dropDuringNext = false
    let opened = 0
    const sent: { argv: string; mutates?: boolean }[] = []
    const connection = {
      dockerHost: 'ssh://deploy@web1',
      cliDockerHost: 'unix:///tmp/e0.sock',
      ensureOpen: async () => {
        if (up) return
        if (opened > 0 && options.reopenFails) throw new Error('could not open an SSH connection to ssh://deploy@web1: Connection refused.')
        opened++
        up = true
      },
      check: async () => up
    }
    const docker = {
      run: async (argv: readonly string[], runOptions: DockerRunOptions = {}): Promise<DockerResult> => {
        sent.push({ argv: argv.join(' '), mutates: runOptions.mutates })
        if (dropDuringNext) {
          dropDuringNext = false
          up = false
        }
        return up ? { exitCode: 0, stdout: 'ok\n', stderr: '' } : { exitCode: 1, stdout: '', stderr: 'Cannot connect to the Docker daemon at unix:///tmp/e0.sock. Is the docker daemon running?\n' }
      }
    }
    const runner = new SshDockerRunner(connection, (dockerHost) => {
      expect(dockerHost).toBe('unix:///tmp/e0.sock')
      return docker
    })
    return { runner, sent, dropDuringNext: () => void (dropDuringNext = true), opened: () => opened }
  }

  it('opens the connection once, at the first command', async () => {
    const { runner, opened } = harness()
    await runner.run(['version'])
    await runner.run(['ps'])
    expect(opened()).toBe(1)
  })

  it('a read that met a dropped connection is sent again once the connection is back', async () => {
    const h = harness()
    await h.runner.run(['version'])
    // The connection drops under the command: docker fails to connect, and ssh says the master is gone.
    h.dropDuringNext()
    const result = await h.runner.run(['container', 'inspect', 'web'])
    expect(result).toMatchObject({ exitCode: 0, stdout: 'ok\n' })
    expect(h.opened()).toBe(2)
    expect(h.sent.map((command) => command.argv)).toEqual(['version', 'container inspect web', 'container inspect web'])
  })

  it('a change that met a dropped connection is not sent twice, and says that its effect is unknown', async () => {
    const h = harness()
    await h.runner.run(['version'])
    h.dropDuringNext()
    const result = await h.runner.run(['container', 'start', 'web'], { mutates: true })
    expect(result.exitCode).toBe(1)
    expect(result.stderr).toMatch(/dropped during this command and was opened again; whether the command took effect is unknown/)
    expect(h.sent.filter((command) => command.argv === 'container start web')).toHaveLength(1)
  })

  it('a host that cannot be reached again fails the command with the reason: unknown, never "nothing"', async () => {
    const h = harness({ reopenFails: true })
    await h.runner.run(['version'])
    h.dropDuringNext()
    const result = await h.runner.run(['container', 'inspect', 'web'])
    expect(result.exitCode).not.toBe(0)
    expect(result.stderr).toMatch(/could not open an SSH connection to ssh:\/\/deploy@web1: Connection refused/)
    // It was sent once, before the drop: not "never sent".
    expect(result.notSent).toBeUndefined()
  })

  it('a connection that cannot be opened at all: the command was never sent, and says so (a lock create took nothing)', async () => {
    const runner = new SshDockerRunner(
      {
        dockerHost: 'ssh://deploy@web1',
        cliDockerHost: 'unix:///tmp/e0.sock',
        ensureOpen: async () => {
          throw new Error('could not open an SSH connection to ssh://deploy@web1: Connection refused.')
        },
        check: async () => false
      },
      () => {
        throw new Error('no docker CLI may run without the connection')
      }
    )
    const result = await runner.run(['container', 'create', '--name', 'web-deploy-lock', 'lock'], { mutates: true })
    expect(result).toMatchObject({ exitCode: 255, notSent: true })
    expect(result.stderr).toMatch(/Connection refused/)
  })
})
