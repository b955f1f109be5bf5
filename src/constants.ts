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
  Planned = 'planned',
  /** `command: unlock` released the deploy lock on every host where one was held (or none was held). */
  Unlocked = 'unlocked'
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
