/** Names of the action's outputs, as declared in action.yml. */
export enum Output {
  Result = 'result',
  Tag = 'tag',
  PreviousTag = 'previous-tag',
  Image = 'image',
  DeploymentId = 'deployment-id'
}

/** Values of the `result` output. */
export enum DeployResult {
  Deployed = 'deployed',
  RolledBack = 'rolled-back',
  Failed = 'failed',
  Planned = 'planned'
}

/**
 * Keys saved with `core.saveState` for the post step, which runs in a fresh process and learns
 * from these what the main step left behind.
 */
export enum State {
  /** Set by the main step, so the post step knows it is the post step. */
  IsPost = 'isPost',
  /** Where the deploy was when the main step last saved: see `Phase`. */
  Phase = 'phase',
  /** JSON of what the post step needs to restore: container name, hosts, previous tag. */
  Restore = 'restore'
}

/** Phases of a deploy, saved as they are entered so that an interrupted run can be repaired. */
export enum Phase {
  Validating = 'validating',
  Preparing = 'preparing',
  /** Between stopping the old version and a healthy verdict: an interruption here needs a restore. */
  Switching = 'switching',
  Verifying = 'verifying',
  RollingBack = 'rolling-back',
  Done = 'done'
}

/** Labels this action writes on every container it starts; they are how it knows what runs. */
export const Label = {
  Tag: 'deploy-action.tag',
  Digest: 'deploy-action.digest',
  Image: 'deploy-action.image',
  Commit: 'deploy-action.commit',
  RunUrl: 'deploy-action.run-url',
  Actor: 'deploy-action.actor',
  DeployedAt: 'deploy-action.deployed-at',
  Environment: 'deploy-action.environment'
} as const

/** Suffixes of the containers kept beside the running one. */
export const Suffix = {
  /** What ran before the current deploy: the instant rollback. */
  Previous: '-previous',
  /** The one before that, kept only until the new version is healthy, as a second fast path. */
  Older: '-previous-older',
  /** The new version while it is created, before it takes the real name. */
  Next: '-next'
} as const
