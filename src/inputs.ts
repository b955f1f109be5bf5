/**
 * The action's inputs, read once. Everything else receives this object (or the settings built from
 * it) instead of calling `core.getInput`, so names are spelled in one place, exactly as in action.yml.
 */
import * as core from '@actions/core'

export interface ActionInputs {
  /** `config`: path of the deploy config, relative to the workspace. */
  config: string
  /** `environment`: selects `environments.<name>`; also the GitHub environment name. */
  environment: string
  /** `command`: `deploy`, `rollback` or `unlock` (validated in resolveSettings). */
  command: string
  /** `tag`: image tag to deploy; empty means derived from the ref or SHA. */
  tag: string
  /** `rollback-to`: with `command: rollback`, the tag to go back to. */
  rollbackTo: string
  /** `image`: overrides `image` of the config. */
  image: string
  /** `health-url`: overrides `health.url`. */
  healthUrl: string
  /** `registry-username` */
  registryUsername: string
  /** `registry-password`: masked as soon as it is read. */
  registryPassword: string
  /** `docker-host`: DOCKER_HOST for every docker command. */
  dockerHost: string
  /** `github-token`: masked as soon as it is read. */
  githubToken: string
  /** `ssh-key`: a private key for `ssh://` hosts; masked (whole and line by line) as soon as it is read. */
  sshKey: string
  /** `ssh-known-hosts`: known_hosts lines for `ssh://` hosts. */
  sshKnownHosts: string
  /** `dry-run` */
  dryRun: boolean
  /** `unlock-reason`: with `command: unlock`, why the lock is released (required there). Absent reads as empty. */
  unlockReason?: string
  /** `force-unlock`: with `command: unlock`, release even a lock whose holder seems alive. Absent reads as false. */
  forceUnlock?: boolean
}

/**
 * Reads every input of action.yml. Secrets are registered with `core.setSecret` before anything
 * else happens, so no later log line can show them.
 *
 * Throws when `dry-run` or `force-unlock` is not a YAML 1.2 boolean: guessing would risk a real
 * deploy when the user asked for a dry run.
 */
export function getInputs(): ActionInputs {
  const registryPassword = core.getInput('registry-password')
  if (registryPassword !== '') core.setSecret(registryPassword)
  const githubToken = core.getInput('github-token')
  if (githubToken !== '') core.setSecret(githubToken)
  const sshKey = core.getInput('ssh-key')
  if (sshKey !== '') {
    core.setSecret(sshKey)
    // The runner masks a multi-line value only as a whole: each line of the key is a secret too.
    for (const line of sshKey.split(/\r?\n/)) if (line.trim().length >= 8 && !/^-----(BEGIN|END) /.test(line.trim())) core.setSecret(line.trim())
  }

  const dryRun = booleanInput('dry-run')

  return {
    config: core.getInput('config'),
    environment: core.getInput('environment'),
    command: core.getInput('command'),
    tag: core.getInput('tag'),
    rollbackTo: core.getInput('rollback-to'),
    image: core.getInput('image'),
    healthUrl: core.getInput('health-url'),
    registryUsername: core.getInput('registry-username'),
    registryPassword,
    dockerHost: core.getInput('docker-host'),
    githubToken,
    sshKey,
    sshKnownHosts: core.getInput('ssh-known-hosts'),
    dryRun,
    unlockReason: core.getInput('unlock-reason'),
    // Unset reads as action.yml's default, false: a forced unlock is only ever asked for in words.
    forceUnlock: core.getInput('force-unlock') === '' ? false : booleanInput('force-unlock')
  }
}

/** A YAML 1.2 boolean input; anything else throws rather than guessing (a guess could deploy for real, or force an unlock). */
function booleanInput(name: string): boolean {
  try {
    return core.getBooleanInput(name)
  } catch {
    throw new Error(`Input ${name}: expected true or false, got ${JSON.stringify(core.getInput(name))}`)
  }
}
