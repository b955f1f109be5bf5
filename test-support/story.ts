/**
 * Builds the deploy story's dependencies for in-process tests: in-memory engines per docker host,
 * a GitHub stand-in, a virtual clock (waits take no time) and an in-memory saved state shared by
 * the main step and the post step.
 */
import type { Clock, Dependencies, GitHubApi } from '../src/dependencies.js'
import { GitHubApiError, type GitHubRelease } from '../src/github/client.js'
import type { DockerRunner } from '../src/docker/runner.js'
import { memoryStateStore, type StateStore } from '../src/state.js'

/**
 * Virtual time for the in-memory engine: a sleep returns without waiting, but in order of wake-up
 * time, and only once everything else has settled. Each wake-up runs from `setImmediate`, after
 * the microtasks of the in-memory docker commands, so a 5 s deadline timer cannot fire before a
 * state read that "takes no time" has finished, just as on a real clock.
 */
export function virtualClock(start = 1_700_000_000_000): Clock {
  let now = start
  let sequence = 0
  const timers: { at: number; order: number; wake: () => void }[] = []
  let scheduled = false
  const tick = (): void => {
    scheduled = false
    timers.sort((a, b) => a.at - b.at || a.order - b.order)
    const next = timers.shift()
    if (!next) return
    now = Math.max(now, next.at)
    next.wake()
    schedule()
  }
  const schedule = (): void => {
    if (scheduled || timers.length === 0) return
    scheduled = true
    setImmediate(tick)
  }
  return {
    now: () => now,
    sleep: (ms, signal) =>
      new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason as Error)
        const onAbort = (): void => {
          const index = timers.indexOf(timer)
          if (index !== -1) timers.splice(index, 1)
          reject(signal?.reason as Error)
        }
        // The listener goes when the timer wakes: a long story sleeps thousands of times on one signal.
        const timer = {
          at: now + Math.max(0, ms),
          order: sequence++,
          wake: () => {
            signal?.removeEventListener('abort', onAbort)
            resolve()
          }
        }
        timers.push(timer)
        signal?.addEventListener('abort', onAbort, { once: true })
        schedule()
      })
  }
}

/** GitHub without a token: Deployments are skipped with one warning, releases cannot be read. */
export function offlineGitHub(releases?: GitHubRelease[]): GitHubApi {
  const noToken = (): never => {
    throw new GitHubApiError('call the GitHub API', 'no-token', undefined, 'no github-token was given')
  }
  return {
    hasToken: false,
    createDeployment: async () => noToken(),
    createDeploymentStatus: async () => noToken(),
    listDeployments: async () => noToken(),
    latestStatus: async () => noToken(),
    listReleases: async () => (releases ? releases : noToken())
  } as unknown as GitHubApi
}

export interface StoryOptions {
  /** The engine for each docker host (`local` for the default engine). */
  engines: Record<string, DockerRunner>
  github?: GitHubApi
  clock?: Clock
  state?: StateStore
  signal?: AbortSignal
}

export function storyDependencies(options: StoryOptions): Dependencies {
  return {
    dockerRunner: (dockerHost) => {
      const engine = options.engines[dockerHost ?? 'local']
      if (!engine) throw new Error(`no test engine for ${dockerHost ?? 'local'}`)
      return engine
    },
    github: options.github ?? offlineGitHub(),
    clock: options.clock ?? virtualClock(),
    state: options.state ?? memoryStateStore(),
    signal: options.signal
  }
}
