/**
 * What the deploy story talks to, passed in rather than built inside it: the docker engine of each
 * host, the GitHub API, the clock and the saved state. The main step, the post step and the tests
 * (an in-memory engine, a fake GitHub, a virtual clock) build the same story from these.
 */
import { setTimeout as sleepFor } from 'node:timers/promises'
import { DockerClient } from './docker/client.js'
import { createPrivateDockerConfig, type PrivateDockerConfig } from './docker/private-config.js'
import { ProcessDockerRunner, type DockerRunner } from './docker/runner.js'
import { SshConnections, SshDockerRunner } from './ssh/connections.js'
import { createSshDir } from './ssh/ssh-dir.js'
import { sshTargetOf } from './ssh/ssh-target.js'
import { GitHubClient } from './github/client.js'
import type { DeploymentsApi } from './github/deployments.js'
import { runnerStateStore, type StateStore } from './state.js'
import type { DeploySettings } from './settings.js'

/** The GitHub endpoints the story uses. */
export type GitHubApi = DeploymentsApi & Pick<GitHubClient, 'listReleases'> & Partial<Pick<GitHubClient, 'workflowRun'>>

/** Time for health checks, Swarm's waits and the lock: virtual in tests, monotonic on a runner. */
export interface Clock {
  now(): number
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}

export const systemClock: Clock = {
  // Monotonic, so a wall-clock step during a deploy cannot stretch or cut a deadline.
  now: () => performance.timeOrigin + performance.now(),
  sleep: (ms, signal) => sleepFor(ms, undefined, { signal })
}

export interface Dependencies {
  /** The docker runner of one host (undefined: the runner's default engine). */
  dockerRunner(dockerHost: string | undefined): DockerRunner
  github: GitHubApi
  clock: Clock
  state: StateStore
  /** Cancellation: SIGINT/SIGTERM from the runner. */
  signal?: AbortSignal
  /** The run's private docker client config, removed when the step ends (none in tests on the in-memory engine). */
  dockerConfig?: PrivateDockerConfig
  /**
   * One SSH connection per `ssh://` host and the private SSH directory, closed and removed when the
   * step ends; none when no host is reached over SSH.
   */
  ssh?: SshConnections
}

/**
 * The real thing: docker CLI processes, the GitHub REST API, the runner's state files. Every docker
 * command uses one private client config (`dockerConfig`, made here unless given), so a login
 * never writes into the runner's own. A dry run logs in too (it checks the tag in the registry), so its
 * config drops the runner's credential store as a deploy's does.
 */
export function runnerDependencies(settings: DeploySettings | undefined, signal?: AbortSignal): Dependencies {
  const config = createPrivateDockerConfig({ login: settings?.registry ? { server: settings.registry.server } : undefined })
  const plain = (dockerHost: string | undefined): DockerRunner => new ProcessDockerRunner(dockerHost, 'docker', config.path)
  const ssh = settings?.hosts.some((host) => sshTargetOf(host)) ? new SshConnections(createSshDir(settings.ssh)) : undefined
  return {
    dockerRunner: (dockerHost) => {
      const connection = ssh?.connectionFor(dockerHost)
      return connection ? new SshDockerRunner(connection, plain) : plain(dockerHost)
    },
    dockerConfig: config,
    ...(ssh && { ssh }),
    github: new GitHubClient({
      token: settings?.githubToken,
      repository: settings?.run.repository || 'unknown/unknown',
      apiUrl: settings?.run.apiUrl ?? 'https://api.github.com'
    }),
    clock: systemClock,
    state: runnerStateStore,
    signal
  }
}

/** The docker client of one host, as every part of the story gets it. */
export function dockerClientFor(dependencies: Dependencies, dockerHost: string | undefined, options: { dryRun?: boolean } = {}): DockerClient {
  return new DockerClient(dependencies.dockerRunner(dockerHost), {
    dryRun: options.dryRun,
    signal: dependencies.signal,
    label: dockerHost ?? 'local'
  })
}
