import { afterEach, describe, expect, it } from '@jest/globals'
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createPrivateDockerConfig, isPrivateConfigPath, privateConfigJson, credentialsHost, userDockerConfigDir } from '../src/docker/private-config.js'

const dirs: string[] = []
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'private-config-test-'))
  dirs.push(dir)
  return dir
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
})

const USER_CONFIG = {
  auths: { 'ghcr.io': { auth: 'Z2hjcjp0b2tlbg==' }, 'https://registry.example.com/v1/': { auth: 'b2xkOm9sZA==' } },
  credsStore: 'desktop',
  credHelpers: { 'registry.example.com': 'ecr-login', 'gcr.io': 'gcloud' },
  currentContext: 'prod',
  psFormat: 'table {{.ID}}'
}

describe('privateConfigJson', () => {
  it('drops what the login to one registry would use, and keeps every other registry, helper and setting', () => {
    expect(privateConfigJson(USER_CONFIG, { server: 'registry.example.com' })).toEqual({
      auths: { 'ghcr.io': { auth: 'Z2hjcjp0b2tlbg==' } },
      credHelpers: { 'gcr.io': 'gcloud', 'registry.example.com': '' },
      currentContext: 'prod',
      psFormat: 'table {{.ID}}'
    })
  })

  it('keeps the config as it is when the run logs in to nothing', () => {
    expect(privateConfigJson(USER_CONFIG, undefined)).toEqual(USER_CONFIG)
  })

  it('treats every spelling of Docker Hub as one registry', () => {
    const config = privateConfigJson({ auths: { 'https://index.docker.io/v1/': { auth: 'x' }, 'docker.io': { auth: 'y' }, 'quay.io': { auth: 'z' } } }, {})
    expect(config).toEqual({ auths: { 'quay.io': { auth: 'z' } }, credHelpers: { 'https://index.docker.io/v1/': '' } })
    expect(credentialsHost('https://127.0.0.1:5000/v2/')).toBe('127.0.0.1:5000')
    expect(credentialsHost('REGISTRY-1.docker.io')).toBe('docker.io')
  })
})

describe('createPrivateDockerConfig', () => {
  it('copies the user config without the login’s registry, links contexts and certificates, and removes only its own directory', async () => {
    const user = tempDir()
    writeFileSync(join(user, 'config.json'), JSON.stringify(USER_CONFIG))
    mkdirSync(join(user, 'contexts', 'meta', 'abc'), { recursive: true })
    writeFileSync(join(user, 'contexts', 'meta', 'abc', 'meta.json'), '{"Name":"prod"}')
    writeFileSync(join(user, 'ca.pem'), 'CA')
    const before = readFileSync(join(user, 'config.json'), 'utf8')

    const config = createPrivateDockerConfig({ userDir: user, parent: tempDir(), login: { server: 'registry.example.com' } })
    expect(isPrivateConfigPath(config.path)).toBe(true)
    expect(statSync(config.path).mode & 0o777).toBe(0o700)
    expect(statSync(join(config.path, 'config.json')).mode & 0o777).toBe(0o600)
    const copied = JSON.parse(readFileSync(join(config.path, 'config.json'), 'utf8')) as Record<string, unknown>
    expect(copied['credsStore']).toBeUndefined()
    expect(copied['currentContext']).toBe('prod')
    expect(lstatSync(join(config.path, 'contexts')).isSymbolicLink()).toBe(true)
    expect(readFileSync(join(config.path, 'contexts', 'meta', 'abc', 'meta.json'), 'utf8')).toBe('{"Name":"prod"}')
    expect(readFileSync(join(config.path, 'ca.pem'), 'utf8')).toBe('CA')

    // What a login writes into the private copy stays there.
    writeFileSync(join(config.path, 'config.json'), JSON.stringify({ ...copied, auths: { 'registry.example.com': { auth: 'c2VjcmV0' } } }))
    await config.remove()
    await config.remove()
    expect(existsSync(config.path)).toBe(false)
    expect(readFileSync(join(user, 'config.json'), 'utf8')).toBe(before)
    expect(readFileSync(join(user, 'contexts', 'meta', 'abc', 'meta.json'), 'utf8')).toBe('{"Name":"prod"}')
    expect(existsSync(join(user, 'ca.pem'))).toBe(true)
  })

  it('starts from an empty config when the user has none, or an unreadable one', () => {
    const missing = createPrivateDockerConfig({ userDir: join(tempDir(), 'nothing'), parent: tempDir(), login: { server: '127.0.0.1:5000' } })
    expect(JSON.parse(readFileSync(join(missing.path, 'config.json'), 'utf8'))).toEqual({ auths: {}, credHelpers: { '127.0.0.1:5000': '' } })
    const broken = tempDir()
    writeFileSync(join(broken, 'config.json'), '{ not json')
    const fromBroken = createPrivateDockerConfig({ userDir: broken, parent: tempDir() })
    expect(JSON.parse(readFileSync(join(fromBroken.path, 'config.json'), 'utf8'))).toEqual({})
  })

  it('finds the job’s config in DOCKER_CONFIG, else in ~/.docker, and never removes a path it did not make', () => {
    expect(userDockerConfigDir({ DOCKER_CONFIG: '/etc/docker-cfg' })).toBe('/etc/docker-cfg')
    expect(userDockerConfigDir({})).toMatch(/\.docker$/)
    expect(isPrivateConfigPath('/home/runner/.docker')).toBe(false)
    expect(isPrivateConfigPath(undefined)).toBe(false)
    expect(isPrivateConfigPath('/tmp/deploy-action-docker-config-abc123')).toBe(true)
  })
})
