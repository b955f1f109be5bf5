/**
 * What a failed container leaves for the report: its last log lines and, read beside them, what
 * its state showed once the failure was handled. Shared by the strategies whose workload is a
 * plain container (`replace`, `proxy`'s slots). Changes nothing.
 */
import type { DockerClient } from '../docker/client.js'
import { describeStateAfterFailure } from '../health/state-probe.js'
import type { FailureEvidence } from './strategy.js'

/** How many of a failed version's last log lines the report keeps. */
export const FAILED_LOG_LINES = 50

/** The container's last log lines; empty when it is gone or they cannot be read. */
export async function failedContainerLogs(docker: DockerClient, name: string): Promise<string> {
  const logs = await docker.containerLogs(name, FAILED_LOG_LINES).catch(() => '')
  // docker's own "No such container" is no line of the app's.
  return /^Error.*no such container/i.test(logs) ? '' : logs
}

/**
 * The logs, and the container's state in the probe's words when it ended badly (`stateAfter`):
 * an HTTP probe can see a crash before docker's `die` event does, and then this read names it.
 * A state that cannot be read adds nothing: it only words the report.
 */
export async function failedContainerEvidence(docker: DockerClient, name: string): Promise<FailureEvidence> {
  const [logs, info] = await Promise.all([failedContainerLogs(docker, name), docker.inspectContainer(name).catch(() => undefined)])
  const stateAfter = describeStateAfterFailure(info)
  return { logs, ...(stateAfter && { stateAfter }) }
}
