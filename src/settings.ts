/**
 * The one typed settings object. Inputs and the YAML config are parsed and validated once,
 * at the door (see `inputs.ts` and `config/load.ts`); everything downstream reads only this.
 */

/** What the action was asked to do. */
export type Command = 'deploy' | 'rollback' | 'unlock'

/** How a new version replaces the old one. Each has its own file under `strategies/`. */
export type StrategyName = 'replace' | 'swarm' | 'proxy'

/** Where to go back to when the new version fails its health check. */
export type RollbackTarget =
  | { kind: 'last-release' }
  | { kind: 'previous' }
  | { kind: 'tag'; tag: string }

export interface ContainerSettings {
  /** `docker run -p` values, already checked against docker's port grammar. */
  ports: string[]
  /** Plain environment values; they do appear in argv (`-e NAME=value`), so never secrets. */
  env: Record<string, string>
  /** Names of variables whose values come from the action's own environment; passed as `-e NAME` only. */
  secrets: string[]
  volumes: string[]
  network?: string
  restart?: string
  /** Argv that replaces the image's CMD. */
  command?: string[]
  labels: Record<string, string>
  init: boolean
  /** Grace period for `docker stop`; undefined leaves docker's default (10 s). */
  stopTimeoutMs?: number
}

export interface HealthSettings {
  /** HTTP URL to probe; without it only the container's state is checked. May hold `{host}`. */
  url?: string
  expectStatus: number[]
  expectBody?: string
  headers: Record<string, string>
  intervalMs: number
  timeoutMs: number
  deadlineMs: number
  healthyThreshold: number
  /** Keep probing this long after the first healthy verdict; any failure then fails the deploy. */
  watchMs: number
  /**
   * Where `url` is probed from (`health.from`): the runner, or the host itself through the run's
   * SSH connection (`http://127.0.0.1:…` then means the host's loopback). Undefined: the host for
   * a loopback URL on an `ssh://` host, else the runner (see `probesFromHost`).
   */
  from?: 'host' | 'runner'
}

/** `ssh-key` and `ssh-known-hosts`: the run's own SSH identity and host keys (see `src/ssh/`). */
export interface SshSettings {
  /** A private key (a secret), used instead of the runner's own. */
  key?: string
  /** known_hosts lines: the only host keys accepted. */
  knownHosts?: string
}

/** `command: unlock` (see `unlock.ts`). */
export interface UnlockSettings {
  /** `unlock-reason`: recorded with the actor in the annotation and the job summary. Never empty. */
  reason: string
  /** `force-unlock`: release even a lock whose holder shows signs of life, with a warning. */
  force: boolean
}

export interface SwarmSettings {
  replicas?: number
  parallelism?: number
  delayMs?: number
  order?: 'stop-first' | 'start-first'
  monitorMs?: number
}

/** `strategy: proxy`: blue/green slots behind a HAProxy container that publishes `port`. */
export interface ProxySettings {
  /** The host port users connect to. */
  port: number
  /** Host addresses to publish `port` on; empty means all. */
  bind: string[]
  /** The port the app listens on inside its container. */
  appPort: number
  /** The HAProxy image of the proxy container, pinned. */
  image: string
  /** How long the old version may finish its in-flight requests after the switch. */
  drainMs: number
  /** Client and server inactivity timeout of the proxy (`proxy.timeout`). */
  timeoutMs: number
  /** Connections the proxy accepts at once (`proxy.max-connections`). */
  maxConnections: number
}

export interface RegistryCredentials {
  /** Registry host taken from the image reference; undefined means Docker Hub. */
  server?: string
  username: string
  password: string
}

/** Facts about the workflow run, used for labels, Deployments and links. */
export interface RunContext {
  /** `owner/repo` */
  repository: string
  sha: string
  ref: string
  actor: string
  runUrl: string
  apiUrl: string
  workspace: string
}

export interface DeploySettings {
  command: Command
  /** `environments.<name>` of the config, and the GitHub environment name. */
  environment: string
  dryRun: boolean
  /** Repository part of the image reference, without tag or digest. */
  image: string
  /** Tag to deploy. For `command: rollback`, the explicit `rollback-to` or undefined. */
  tag?: string
  /** Container or Swarm service name. */
  name: string
  strategy: StrategyName
  /** Public URL for the summary and the GitHub Deployment. */
  url?: string
  container: ContainerSettings
  health: HealthSettings
  rollback: { onFailure: boolean; to: RollbackTarget }
  hooks: { preDeploy: string[][] }
  lock: { timeoutMs: number }
  /** Present with `command: unlock` only: why the lock is released, and whether signs of life are overridden. */
  unlock?: UnlockSettings
  swarm: SwarmSettings
  /** Present with `strategy: proxy` only. */
  proxy?: ProxySettings
  /** Docker endpoints (`DOCKER_HOST` values). `[undefined]` means the runner's own default engine. */
  hosts: (string | undefined)[]
  /**
   * What `{host}` in health.url becomes, by docker host, for hosts whose config entry gives an
   * `address`; other hosts use the host part of their docker host (127.0.0.1 for unix://).
   */
  hostAddresses?: Record<string, string>
  /** How hosts are switched: `parallel` at a time, after the first host alone when `canary`. */
  rollout: { parallel: number; canary: boolean }
  /** How many of the app's most recently deployed images each host keeps (`retain`). */
  retain: number
  registry?: RegistryCredentials
  githubToken?: string
  /** Present when `ssh-key` or `ssh-known-hosts` is given; without it the runner's own SSH set-up is used. */
  ssh?: SshSettings
  /** Config path relative to the workspace, for annotations; undefined when no file was read. */
  configFile?: string
  run: RunContext
}

/** One deployable version: a tag, and the digest when it is known. */
export interface Release {
  /**
   * The image tag. For a container the action did not start and whose image reference has no tag
   * (`repo@sha256:…`), its digest stands in: it names the version in messages and outputs.
   */
  tag: string
  digest?: string
  /**
   * The exact image reference to start this version from, when it is not `<image>:<tag>`: a
   * container started by hand from another reference is a version like any other.
   */
  imageRef?: string
}

/** True when two releases are the same version: the same tag, and the same digest where both are known. */
export function sameRelease(a: Release | undefined, b: Release | undefined): boolean {
  if (!a || !b) return false
  if (a.tag !== b.tag) return false
  return !a.digest || !b.digest || a.digest === b.digest
}
