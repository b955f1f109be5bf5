/**
 * A docker client config private to one run, so that `docker login` never writes the registry
 * password into the runner's own config (`$DOCKER_CONFIG`, else `~/.docker`) or its credential
 * store, where it would outlive the job.
 *
 * The private directory (mode 0700, under RUNNER_TEMP) holds a copy of the user's `config.json`
 * without what the login is about to write: the stored credentials of that one registry, its
 * `credHelpers` entry and the global `credsStore`, so the password lands only in the private file.
 * Everything else in the user's directory (`contexts/`, TLS certificates, `cli-plugins/`) is
 * linked, so `docker context` and `DOCKER_TLS_VERIFY` users still reach their engines. Every
 * docker command of the run uses this directory (`DOCKER_CONFIG`); it is removed when the main
 * step ends, or by the post step when the main step was killed. The user's files are only read.
 */
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { DOCKER_HUB_HOSTS } from '../config/grammar.js'

/** Every private config directory starts with this, so a leftover can be recognised. */
const PRIVATE_CONFIG_PREFIX = 'deploy-action-docker-config-'

/** The key `docker login` without a server (Docker Hub) stores its credentials under. */
const DOCKER_HUB_KEY = 'https://index.docker.io/v1/'

export interface PrivateDockerConfig {
  /** The directory: the value of `DOCKER_CONFIG` for every docker command of the run. */
  readonly path: string
  /** Removes the directory and the credentials in it; the user's linked files stay. Idempotent. */
  remove(): Promise<void>
}

/** The docker config directory of the job: `$DOCKER_CONFIG`, else `~/.docker`. */
export function userDockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env['DOCKER_CONFIG'] || join(homedir(), '.docker')
}

/** The host part of a registry key (`https://127.0.0.1:5000/v1/` gives `127.0.0.1:5000`), Docker Hub's spellings as one. */
export function credentialsHost(key: string): string {
  const host = key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase()
  return DOCKER_HUB_HOSTS.has(host) ? 'docker.io' : host
}

/**
 * The user's config as the private copy starts: unchanged when nothing is logged in to, else
 * without the credentials, credential helper and global credential store that the login to
 * `server` (undefined: Docker Hub) would use. An explicit empty helper for that registry keeps
 * the CLI from choosing a default store of its own (`pass`, `secretservice`) for an empty config.
 */
export function privateConfigJson(user: Record<string, unknown>, login: { server?: string } | undefined): Record<string, unknown> {
  const config: Record<string, unknown> = { ...user }
  if (!login) return config
  const host = credentialsHost(login.server ?? DOCKER_HUB_KEY)
  const without = (entries: unknown): Record<string, unknown> =>
    Object.fromEntries(Object.entries(isObject(entries) ? entries : {}).filter(([key]) => credentialsHost(key) !== host))
  delete config['credsStore']
  config['auths'] = without(config['auths'])
  config['credHelpers'] = { ...without(config['credHelpers']), [login.server ?? DOCKER_HUB_KEY]: '' }
  return config
}

/**
 * Makes the private directory for one run. `login` names the registry the run logs in to; without
 * it the user's config is copied as it is (stored credentials and helpers keep working for pulls).
 */
export function createPrivateDockerConfig(options: { login?: { server?: string }; userDir?: string; parent?: string } = {}): PrivateDockerConfig {
  const userDir = resolve(options.userDir ?? userDockerConfigDir())
  const parent = options.parent ?? (process.env['RUNNER_TEMP'] || tmpdir())
  const path = mkdtempSync(join(parent, PRIVATE_CONFIG_PREFIX))
  chmodSync(path, 0o700)
  let user: Record<string, unknown> = {}
  const userFile = join(userDir, 'config.json')
  if (existsSync(userFile)) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(userFile, 'utf8'))
      if (isObject(parsed)) user = parsed
    } catch {
      // An unreadable config is one docker itself would refuse: start from an empty one.
    }
  }
  writeFileSync(join(path, 'config.json'), `${JSON.stringify(privateConfigJson(user, options.login), null, 2)}\n`, { mode: 0o600 })
  if (existsSync(userDir)) {
    for (const entry of readdirSync(userDir)) {
      if (entry === 'config.json' || entry.startsWith('config.json.')) continue
      try {
        symlinkSync(join(userDir, entry), join(path, entry))
      } catch {
        // A name that cannot be linked is one this run's commands do not need.
      }
    }
  }
  return privateDockerConfigAt(path)
}

/** The handle of an existing private directory (the post step's, from the saved state). */
export function privateDockerConfigAt(path: string): PrivateDockerConfig {
  return {
    path,
    // fs.rm removes a symbolic link, never what it points to: the user's contexts stay.
    remove: () => rm(path, { recursive: true, force: true })
  }
}

/** Only a directory this module made is ever removed from a path read back from the saved state. */
export function isPrivateConfigPath(path: string | undefined): path is string {
  return typeof path === 'string' && path.split('/').pop()?.startsWith(PRIVATE_CONFIG_PREFIX) === true
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
