import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DockerClient, fileOfTar } from '../src/docker/client.js'
import { DockerCommandError, ProcessDockerRunner } from '../src/docker/runner.js'
import { buildCreateArgv, buildHookArgv, secretEnvironment } from '../src/docker/run-args.js'
import type { ContainerSettings } from '../src/settings.js'
import { RecordingRunner } from '../test-support/recording-runner.js'

const container: ContainerSettings = {
  ports: ['127.0.0.1:8080:80'],
  env: { NODE_ENV: 'production', A_FIRST: 'x y; $(rm -rf /)' },
  secrets: ['DATABASE_URL'],
  volumes: ['data:/var/lib/app'],
  network: 'host',
  restart: 'unless-stopped',
  command: ['serve', '--port', '8080'],
  labels: { team: 'web' },
  init: true,
  stopTimeoutMs: 2500
}

describe('docker run argv', () => {
  it('builds docker container create with every setting as its own argument', () => {
    expect(
      buildCreateArgv({ name: 'web-next', imageRef: 'registry.example.com/acme/web:v2', container, labels: { 'deploy-action.tag': 'v2' } })
    ).toEqual([
      'container', 'create', '--name', 'web-next',
      '--init', '--network', 'host',
      '--env', 'A_FIRST=x y; $(rm -rf /)', '--env', 'NODE_ENV=production',
      '--env', 'DATABASE_URL',
      '--volume', 'data:/var/lib/app',
      '--restart', 'unless-stopped', '--stop-timeout', '3',
      '--publish', '127.0.0.1:8080:80',
      '--label', 'deploy-action.tag=v2', '--label', 'team=web',
      'registry.example.com/acme/web:v2', 'serve', '--port', '8080'
    ])
  })

  it('starts every container with restart unless-stopped unless container.restart says otherwise, so an app comes back after a reboot', () => {
    const argv = (restart?: string): string[] => buildCreateArgv({ name: 'web', imageRef: 'acme/web:v1', container: { ...container, restart }, labels: {} })
    expect(argv(undefined).join(' ')).toContain('--restart unless-stopped')
    expect(argv('no').join(' ')).toContain('--restart no')
    expect(argv('on-failure:3').join(' ')).toContain('--restart on-failure:3')
  })

  it('passes secrets by name only; their values go to the client environment', () => {
    const argv = buildCreateArgv({ name: 'web', imageRef: 'acme/web:v1', container, labels: {} })
    expect(argv.join(' ')).not.toContain('postgres://')
    expect(secretEnvironment(['DATABASE_URL', 'MISSING'], { DATABASE_URL: 'postgres://u:p@db/app' })).toEqual({ DATABASE_URL: 'postgres://u:p@db/app' })
  })

  it('runs hooks with --rm in the new image, without ports or restart policy', () => {
    expect(buildHookArgv('acme/web:v2', { ...container, command: undefined }, ['bin/migrate', '--yes'], 'web-hook')).toEqual([
      'container', 'run', '--rm', '--name', 'web-hook',
      '--init', '--network', 'host',
      '--env', 'A_FIRST=x y; $(rm -rf /)', '--env', 'NODE_ENV=production', '--env', 'DATABASE_URL',
      '--volume', 'data:/var/lib/app',
      'acme/web:v2', 'bin/migrate', '--yes'
    ])
  })
})

describe('DockerClient', () => {
  it('sends the registry password on stdin, never in argv', async () => {
    const runner = new RecordingRunner()
    await new DockerClient(runner).login('127.0.0.1:5001', 'ci', 's3cret-pass')
    expect(runner.calls).toHaveLength(1)
    expect(runner.calls[0]?.argv).toEqual(['login', '--username', 'ci', '--password-stdin', '127.0.0.1:5001'])
    expect(runner.calls[0]?.options.input).toBe('s3cret-pass')
  })

  it('passes secret values through the child environment', async () => {
    const runner = new RecordingRunner()
    await new DockerClient(runner).createContainer(['container', 'create', '--env', 'TOKEN', 'img:1'], { TOKEN: 'abc' })
    expect(runner.calls[0]?.options.env).toEqual({ TOKEN: 'abc' })
    expect(runner.calls[0]?.argv).not.toContain('abc')
  })

  it("throws with docker's stderr when a command fails", async () => {
    const runner = new RecordingRunner().answer(['pull'], { exitCode: 1, stderr: 'Error response from daemon: manifest unknown\n' })
    const failure = new DockerClient(runner).pull('acme/web:nope')
    await expect(failure).rejects.toBeInstanceOf(DockerCommandError)
    await expect(new DockerClient(runner).pull('acme/web:nope')).rejects.toThrow('docker pull acme/web:nope failed: Error response from daemon: manifest unknown')
  })

  it("pull returns the digest docker printed for the image, as the real CLI prints it without a TTY; none printed, none returned", async () => {
    const digest = `sha256:${'4f'.repeat(32)}`
    // Captured from docker 20.10's CLI pulling from a local registry, layer ids shortened.
    const printed = [
      'v2: Pulling from acme/web',
      '8a49fdb3b6a5: Pulling fs layer',
      '8a49fdb3b6a5: Verifying Checksum',
      '8a49fdb3b6a5: Download complete',
      '8a49fdb3b6a5: Pull complete',
      `Digest: ${digest}`,
      'Status: Downloaded newer image for 127.0.0.1:5001/acme/web:v2',
      '127.0.0.1:5001/acme/web:v2',
      ''
    ].join('\n')
    const runner = new RecordingRunner().answer(['pull'], { exitCode: 0, stdout: printed })
    expect(await new DockerClient(runner).pull('127.0.0.1:5001/acme/web:v2')).toBe(digest)
    expect(runner.calls[0]?.argv).toEqual(['pull', '127.0.0.1:5001/acme/web:v2'])
    const quiet = new RecordingRunner().answer(['pull'], { exitCode: 0, stdout: '127.0.0.1:5001/acme/web:v2\n' })
    expect(await new DockerClient(quiet).pull('127.0.0.1:5001/acme/web:v2')).toBeUndefined()
    // A digest inside another line (a layer id, a reference) is not the pulled image's.
    const other = new RecordingRunner().answer(['pull'], { exitCode: 0, stdout: `127.0.0.1:5001/acme/web@${digest}\n` })
    expect(await new DockerClient(other).pull(`127.0.0.1:5001/acme/web@${digest}`)).toBeUndefined()
  })

  it('in a dry run, skips commands that change state and records them as the plan', async () => {
    const runner = new RecordingRunner().answer(['container', 'inspect'], { exitCode: 1, stderr: 'Error: No such container: web' })
    const docker = new DockerClient(runner, { dryRun: true })
    expect(await docker.inspectContainer('web')).toBeUndefined()
    await docker.pull('acme/web:v2')
    await docker.startContainer('web')
    expect(runner.commands).toEqual(['container inspect web'])
    expect(docker.plannedCommands).toEqual(['docker pull acme/web:v2', 'docker container start web'])
  })

  it('reads state, labels and restart count from docker container inspect', async () => {
    const inspect = [
      {
        Id: 'abc',
        Name: '/web',
        Image: 'sha256:111',
        RestartCount: 2,
        Config: { Image: 'acme/web:v1', Labels: { 'deploy-action.tag': 'v1' } },
        State: { Status: 'running', Running: true, Restarting: false, ExitCode: 0, StartedAt: '2026-01-01T00:00:00Z', Health: { Status: 'healthy' } }
      }
    ]
    const runner = new RecordingRunner().answer(['container', 'inspect'], { stdout: JSON.stringify(inspect) })
    const info = await new DockerClient(runner).inspectContainer('web')
    expect(info).toMatchObject({ name: 'web', image: 'acme/web:v1', running: true, health: 'healthy', restartCount: 2, labels: { 'deploy-action.tag': 'v1' } })
  })

  it('inspects several containers with one command, even when docker exits 1 for the missing ones', async () => {
    const entry = (id: string, name: string, tag: string) => ({
      Id: id,
      Name: `/${name}`,
      Image: 'sha256:111',
      Config: { Image: `acme/web:${tag}`, Labels: { 'deploy-action.tag': tag } },
      State: { Status: 'exited', Running: false, Restarting: false, ExitCode: 0, StartedAt: '' }
    })
    // Docker prints the found ones in one array (here out of order) and a line per missing name.
    const runner = new RecordingRunner().answer(['container', 'inspect'], {
      exitCode: 1,
      stdout: JSON.stringify([entry('bbb', 'web-previous', 'v0'), entry('aaa', 'web', 'v1')]) + '\n',
      stderr: 'Error: No such container: web-next\nError: No such container: web-previous-older\n'
    })
    const found = await new DockerClient(runner).inspectContainers(['web-next', 'web', 'web-previous', 'web-previous-older'])
    expect(runner.commands).toEqual(['container inspect web-next web web-previous web-previous-older'])
    expect(found.map((info) => info && `${info.name}=${info.labels['deploy-action.tag']}`)).toEqual([undefined, 'web=v1', 'web-previous=v0', undefined])
    // A container asked for by id (as docker resolves it) is found under that id.
    const byId = await new DockerClient(new RecordingRunner().answer(['container', 'inspect'], { stdout: JSON.stringify([entry('abcdef', 'other', 'v3')]) })).inspectContainers(['abc'])
    expect(byId[0]?.name).toBe('other')
    expect(await new DockerClient(runner).inspectContainers([])).toEqual([])
  })

  it('throws when an inspect fails for any reason but a missing container, or leaves a name unaccounted for', async () => {
    const unreachable = new RecordingRunner().answer(['container', 'inspect'], {
      exitCode: 1,
      stdout: '[]\n',
      stderr: 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n'
    })
    await expect(new DockerClient(unreachable).inspectContainers(['web', 'web-previous'])).rejects.toThrow(/docker container inspect failed: Cannot connect/)
    await expect(new DockerClient(unreachable).inspectContainer('web')).rejects.toBeInstanceOf(DockerCommandError)
    // One name reported missing, the other neither found nor reported: something else went wrong.
    const partial = new RecordingRunner().answer(['container', 'inspect'], { exitCode: 1, stdout: '[]\n', stderr: 'Error: No such container: web\npermission denied\n' })
    await expect(new DockerClient(partial).inspectContainers(['web', 'web-previous'])).rejects.toThrow(/permission denied/)
    const garbled = new RecordingRunner().answer(['container', 'inspect'], { exitCode: 1, stdout: 'not json', stderr: 'Error: No such container: web' })
    await expect(new DockerClient(garbled).inspectContainers(['web'])).rejects.toBeInstanceOf(DockerCommandError)
  })

  it('reads the registry digest of the repository, and never passes a local image id off as one', async () => {
    const runner = new RecordingRunner().answer(['image', 'inspect'], {
      stdout: '["other/repo@sha256:aaa","127.0.0.1:5001/acme/web@sha256:bbb"]\n'
    })
    const docker = new DockerClient(runner)
    expect(await docker.imageDigest('127.0.0.1:5001/acme/web:v1', '127.0.0.1:5001/acme/web')).toBe('sha256:bbb')
    expect(runner.calls[0]?.argv).toEqual(['image', 'inspect', '--format', '{{json .RepoDigests}}', '127.0.0.1:5001/acme/web:v1'])
    const local = new DockerClient(new RecordingRunner().answer(['image', 'inspect'], { stdout: '[]\n' }))
    expect(await local.imageDigest('acme/web:v1', 'acme/web')).toBeUndefined()
  })

  it('treats a missing container as absent when removing it, and other errors as errors', async () => {
    const missing = new RecordingRunner().answer(['container', 'rm'], { exitCode: 1, stderr: 'Error: No such container: web-next' })
    await expect(new DockerClient(missing).removeContainer('web-next')).resolves.toBe(false)
    await expect(new DockerClient(new RecordingRunner()).removeContainer('web-next')).resolves.toBe(true)
    const broken = new RecordingRunner().answer(['container', 'rm'], { exitCode: 1, stderr: 'Cannot connect to the Docker daemon' })
    await expect(new DockerClient(broken).removeContainer('web')).rejects.toThrow('Cannot connect to the Docker daemon')
  })
})

describe('reading a file out of a container (docker cp <container>:<path> -)', () => {
  // A UTF-8 config line, then bytes that are no UTF-8 at all: decoded as text, each would become
  // U+FFFD and move every offset after it.
  const content = Buffer.concat([Buffer.from('bind :80 # café, naïve\n', 'utf8'), Buffer.from([0x00, 0xff, 0xfe, 0x80, 0xc3, 0x28, 0x0a])])
  let dir: string
  let archive: Buffer

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'file-of-tar-'))
    mkdirSync(join(dir, 'in'))
    // A non-ASCII name makes tar write a pax extended header before the file, as docker cp does
    // for names and times that ustar cannot hold.
    writeFileSync(join(dir, 'in', 'réglages.cfg'), content)
    archive = execFileSync('tar', ['--format=pax', '-cf', '-', '-C', join(dir, 'in'), 'réglages.cfg'])
    const fakeDocker = join(dir, 'docker')
    writeFileSync(join(dir, 'archive.tar'), archive)
    writeFileSync(fakeDocker, `#!/bin/sh\nexec cat '${join(dir, 'archive.tar')}'\n`)
    chmodSync(fakeDocker, 0o755)
  })

  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('extracts the first regular file byte for byte, past a pax header', () => {
    expect(archive.includes(Buffer.from('réglages.cfg', 'utf8'))).toBe(true)
    expect(fileOfTar(archive)).toEqual(content)
  })

  it('finds nothing in an empty archive or one without a regular file', () => {
    expect(fileOfTar(Buffer.alloc(1024))).toBeUndefined()
    expect(fileOfTar(Buffer.alloc(0))).toBeUndefined()
  })

  it('gives the bytes docker printed when a command asks for them, and only then', async () => {
    const runner = new ProcessDockerRunner(undefined, join(dir, 'docker'))
    const binary = await runner.run(['container', 'cp', 'web-proxy:/x', '-'], { binaryStdout: true })
    expect(binary.stdoutBytes).toEqual(archive)
    const text = await runner.run(['container', 'cp', 'web-proxy:/x', '-'])
    expect(text.stdoutBytes).toBeUndefined()
    expect(text.stdout).toBe(archive.toString('utf8'))
  })

  it('readFileFrom asks the runner for bytes and decodes only the extracted file as UTF-8', async () => {
    const utf8 = Buffer.from('global\n  log stdout format raw local0 # déjà vu ✓\n', 'utf8')
    writeFileSync(join(dir, 'in', 'réglages.cfg'), utf8)
    writeFileSync(join(dir, 'archive.tar'), execFileSync('tar', ['--format=pax', '-cf', '-', '-C', join(dir, 'in'), 'réglages.cfg']))
    const docker = new DockerClient(new ProcessDockerRunner(undefined, join(dir, 'docker')))
    expect(await docker.readFileFrom('web-proxy', '/usr/local/etc/haproxy/haproxy.cfg')).toBe(utf8.toString('utf8'))

    const recording = new RecordingRunner()
    await new DockerClient(recording).readFileFrom('web-proxy', '/usr/local/etc/haproxy/haproxy.cfg')
    expect(recording.calls[0]?.options.binaryStdout).toBe(true)
  })
})
