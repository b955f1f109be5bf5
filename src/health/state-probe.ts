import type { ContainerInfo, DockerClient } from '../docker/client.js'

/** What one look at the workload's runtime state says. */
export type StateObservation = {
  /** `ready`: running (and healthy, when it has a HEALTHCHECK); `starting`: not yet; `failed`: it will not get better. */
  verdict: 'ready' | 'starting' | 'failed'
  /** One sentence for the transcript and, on failure, the verdict's reason. */
  detail: string
}

/**
 * Reads the runtime state of a just-started workload. Kept to one method so that each deploy
 * strategy (a plain container here, a Swarm service later) can supply its own. It may throw when
 * the state cannot be read (docker unreachable); `verifyHealth` retries a few times before giving up.
 */
export interface StateProbe {
  observe(signal?: AbortSignal): Promise<StateObservation>
}

/**
 * A StateProbe for one container, read with `docker container inspect`.
 *
 * Failed when the container is gone, exited or dead (with its exit code, docker's own error such
 * as a port already in use, and OOMKilled), paused, restarting, or when its restart count grew
 * since the first observation: with a restart policy a crashing process may be running again by
 * the time we look, and only the counter shows it crashed. `starting` while its HEALTHCHECK says
 * so, failed on `unhealthy`, and ready when running (and `healthy` if it has a HEALTHCHECK).
 */
export function containerStateProbe(docker: DockerClient, containerName: string): StateProbe {
  let baselineRestartCount: number | undefined
  return {
    async observe(signal?: AbortSignal): Promise<StateObservation> {
      signal?.throwIfAborted()
      const info = await docker.inspectContainer(containerName)
      if (!info) return { verdict: 'failed', detail: `the container ${containerName} no longer exists` }
      baselineRestartCount ??= info.restartCount
      return describeContainerState(info, baselineRestartCount)
    }
  }
}

function describeContainerState(info: ContainerInfo, baselineRestartCount: number): StateObservation {
  const name = info.name
  if (info.restarting) {
    return { verdict: 'failed', detail: `the container ${name} is restarting after it ${exitDescription(info)}` }
  }
  if (info.restartCount > baselineRestartCount) {
    const times = info.restartCount - baselineRestartCount
    return {
      verdict: 'failed',
      detail: `the container ${name} restarted ${times} time${times === 1 ? '' : 's'} during the health check; it last ${exitDescription(info)}`
    }
  }
  if (!info.running || info.status === 'exited' || info.status === 'dead') {
    if (info.status === 'created') {
      return { verdict: 'failed', detail: `the container ${name} was created but did not start${info.error ? `: ${info.error}` : ''}` }
    }
    return { verdict: 'failed', detail: `the container ${name} ${exitDescription(info)}` }
  }
  if (info.status === 'paused') return { verdict: 'failed', detail: `the container ${name} is paused` }
  switch (info.health) {
    case 'starting':
      return { verdict: 'starting', detail: `the container ${name} is running; its HEALTHCHECK still reports starting` }
    case 'unhealthy':
      return { verdict: 'failed', detail: `the container ${name} is running but its HEALTHCHECK reports unhealthy` }
    case 'healthy':
      return { verdict: 'ready', detail: `the container ${name} is running and its HEALTHCHECK reports healthy` }
    default:
      return { verdict: 'ready', detail: `the container ${name} is running` }
  }
}

/** "exited with code 137 (killed for lack of memory, OOMKilled): <docker's error>" */
function exitDescription(info: ContainerInfo): string {
  const verb = info.status === 'dead' ? 'died' : 'exited'
  let text = `${verb} with code ${info.exitCode}`
  if (info.oomKilled) text += ' (killed for lack of memory, OOMKilled)'
  else if (info.exitCode > 128 && info.exitCode < 160) text += ` (killed by signal ${info.exitCode - 128})`
  if (info.error) text += `: ${info.error}`
  return text
}
