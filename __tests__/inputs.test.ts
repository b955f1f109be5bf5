import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals'
import * as fs from 'node:fs'
import { load } from 'js-yaml'
import { getInputs } from '../src/inputs.js'

const INPUT_NAMES = [
  'config',
  'environment',
  'command',
  'tag',
  'rollback-to',
  'image',
  'health-url',
  'registry-username',
  'registry-password',
  'docker-host',
  'github-token',
  'ssh-key',
  'ssh-known-hosts',
  'dry-run',
  'unlock-reason',
  'force-unlock'
]

const envName = (input: string): string => `INPUT_${input.toUpperCase()}`

/** Sets the inputs the way the runner does: every input of action.yml, defaults filled in. */
function setInputs(values: Record<string, string>): void {
  const defaults: Record<string, string> = { config: '.github/deploy.yml', environment: 'production', command: 'deploy', 'dry-run': 'false', 'github-token': '', 'force-unlock': 'false' }
  for (const name of INPUT_NAMES) process.env[envName(name)] = values[name] ?? defaults[name] ?? ''
}

let written: string[]
beforeEach(() => {
  written = []
  jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written.push(String(chunk))
    return true
  })
})
afterEach(() => {
  jest.restoreAllMocks()
  for (const name of INPUT_NAMES) delete process.env[envName(name)]
})

describe('getInputs', () => {
  it('reads every input under its exact name', () => {
    setInputs({
      config: 'deploy/prod.yml',
      environment: 'staging',
      command: 'rollback',
      tag: 'v1.2.3',
      'rollback-to': 'v1.2.2',
      image: 'registry.example.com/acme/web',
      'health-url': 'http://127.0.0.1:8080/health',
      'registry-username': 'ci',
      'registry-password': 'p4ssw0rd-value',
      'docker-host': 'ssh://deploy@web1.example.com',
      'github-token': 'ghs_tokenvalue',
      'ssh-key': 'KEY-LINE-ONE',
      'ssh-known-hosts': 'web1 ssh-ed25519 AAAA',
      'dry-run': 'true',
      'unlock-reason': 'runner lost',
      'force-unlock': 'true'
    })
    expect(getInputs()).toEqual({
      config: 'deploy/prod.yml',
      environment: 'staging',
      command: 'rollback',
      tag: 'v1.2.3',
      rollbackTo: 'v1.2.2',
      image: 'registry.example.com/acme/web',
      healthUrl: 'http://127.0.0.1:8080/health',
      registryUsername: 'ci',
      registryPassword: 'p4ssw0rd-value',
      dockerHost: 'ssh://deploy@web1.example.com',
      githubToken: 'ghs_tokenvalue',
      sshKey: 'KEY-LINE-ONE',
      sshKnownHosts: 'web1 ssh-ed25519 AAAA',
      dryRun: true,
      unlockReason: 'runner lost',
      forceUnlock: true
    })
  })

  it('covers exactly the inputs of action.yml', () => {
    const actionYml = fs.readFileSync(new URL('../action.yml', import.meta.url), 'utf8')
    const declared = Object.keys((load(actionYml) as { inputs: Record<string, unknown> }).inputs)
    expect(declared.sort()).toEqual(INPUT_NAMES.slice().sort())
  })

  it('masks the registry password and the GitHub token before returning', () => {
    setInputs({ 'registry-password': 'p4ssw0rd-value', 'github-token': 'ghs_tokenvalue' })
    getInputs()
    const masks = written.filter((line) => line.startsWith('::add-mask::')).map((line) => line.trim())
    expect(masks).toEqual(['::add-mask::p4ssw0rd-value', '::add-mask::ghs_tokenvalue'])
  })

  it('masks the SSH key whole and line by line (the runner masks a line at a time), but not its armour lines', () => {
    const key = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQyNTUxOQAAACBvZXJmbG93\n-----END OPENSSH PRIVATE KEY-----'
    setInputs({ 'ssh-key': key })
    getInputs()
    const masks = written.filter((line) => line.startsWith('::add-mask::'))
    expect(masks).toHaveLength(3)
    expect(masks.map((line) => line.trim()).slice(1)).toEqual(['::add-mask::b3BlbnNzaC1rZXktdjEAAAAA', '::add-mask::QyNTUxOQAAACBvZXJmbG93'])
    expect(masks[0]).toContain('b3BlbnNzaC1rZXktdjEAAAAA')
  })

  it('does not register empty secrets', () => {
    setInputs({})
    getInputs()
    expect(written.filter((line) => line.startsWith('::add-mask::'))).toEqual([])
  })

  it('trims whitespace and reads the dry-run boolean', () => {
    setInputs({ tag: '  v1  ', 'dry-run': 'True' })
    expect(getInputs()).toMatchObject({ tag: 'v1', dryRun: true })
    process.env['INPUT_DRY-RUN'] = 'FALSE'
    expect(getInputs().dryRun).toBe(false)
  })

  it('refuses a dry-run that is not a boolean instead of deploying for real', () => {
    setInputs({ 'dry-run': 'yes please' })
    expect(() => getInputs()).toThrow('Input dry-run: expected true or false, got "yes please"')
  })

  it('refuses a force-unlock that is not a boolean, and reads an unset one as false', () => {
    setInputs({ 'force-unlock': 'please' })
    expect(() => getInputs()).toThrow('Input force-unlock: expected true or false, got "please"')
    setInputs({ 'force-unlock': '' })
    expect(getInputs().forceUnlock).toBe(false)
  })

  it('leaves unset inputs empty', () => {
    setInputs({})
    expect(getInputs()).toMatchObject({ tag: '', image: '', rollbackTo: '', dockerHost: '', registryUsername: '', registryPassword: '', dryRun: false })
  })
})
