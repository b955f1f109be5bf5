/**
 * "One owner at a time", checked at every docker command: each run reaches an in-memory engine
 * through its own watcher, and every command that changes something other than the deploy lock
 * itself must come from the run whose owner token the lock container carries at that moment.
 * Two runs that both act on one host show up as a violation naming the command.
 */
import type { DockerRunner, DockerRunOptions, DockerResult } from '../src/docker/runner.js'
import { LOCK_IMAGE, LockLabel } from '../src/lock.js'
import { readSavedRun, type StateStore } from '../src/state.js'
import type { FakeDockerEngine } from './fake-docker-engine.js'

/** Commands that only read: they may run without the lock (a waiting run reads the lock's holder). */
const READS = [
  /^(container )?(inspect|ls|ps|logs|top|stats|port)\b/,
  /^(image|network|service|volume|node) (inspect|ls|ps|logs)\b/,
  /^(system info|info|version|images)\b/,
  // `docker cp NAME:/path -` copies out of a container: a read of the proxy's config file.
  /^container cp [^-]\S*:\S+ -$/
]

export interface OwnerWatch {
  /** Every command that changed a host while its lock belonged to someone else (or nobody). */
  readonly violations: string[]
  /**
   * The engine as the run `run` sees it, for `storyDependencies({ engines })`. `beforeCommand` sees
   * each of this run's commands first; a result it returns is answered instead (a fault).
   */
  engineFor(run: string, engine: FakeDockerEngine, host: string, state: StateStore, beforeCommand?: (argv: readonly string[]) => DockerResult | undefined): DockerRunner
}

export function ownerWatch(lockName = 'web-deploy-lock'): OwnerWatch {
  const violations: string[] = []
  return {
    violations,
    engineFor: (run, engine, host, state, beforeCommand) => ({
      run: async (argv: readonly string[], options?: DockerRunOptions): Promise<DockerResult> => {
        const answered = beforeCommand?.(argv)
        if (answered) return answered
        const command = argv.join(' ')
        if (!READS.some((read) => read.test(command)) && !touchesOnlyTheLock(engine, argv, lockName)) {
          const owner = readSavedRun(state)?.lock?.owner
          const holder = engine.containers.get(lockName)?.labels[LockLabel.Owner]
          if (!owner || holder !== owner) violations.push(`${run} on ${host}: \`docker ${command}\` while the lock is ${holder ? `held by ${holder}` : 'free'}`)
        }
        return engine.run(argv, options)
      }
    })
  }
}

/** Taking, renewing and releasing the lock (by name or by the id of a lock container), and importing its image. */
function touchesOnlyTheLock(engine: FakeDockerEngine, argv: readonly string[], lockName: string): boolean {
  if (argv[0] === 'image' && argv[1] === 'import') return true
  const lockIds = [...engine.containers.values()].filter((container) => container.image === LOCK_IMAGE).map((container) => container.id)
  return argv.some((arg) => arg === lockName || lockIds.some((id) => arg === id || arg.startsWith(`${id}:`)))
}
