import { GitHubApiError, type GitHubClient } from './client.js'

/** The part of `GitHubClient` the recorder uses; tests may hand in the real client or a stand-in. */
export type DeploymentsApi = Pick<
  GitHubClient,
  'hasToken' | 'createDeployment' | 'createDeploymentStatus' | 'listDeployments' | 'latestStatus'
>

export interface DeploymentStart {
  /** The tag being deployed (or rolled back to). */
  tag: string
  /** Git ref for the Deployment: the tag or the commit SHA. */
  ref: string
  /** The GitHub environment, the `environment` input. */
  environment: string
  payload: { image: string; tag: string; digest?: string }
  /** Deployment description; defaults to `Deploy image:tag`. */
  description?: string
}

export interface DeploymentFinish {
  /** The config's `url`; recorded only on success, since a failed version serves nothing there. */
  environmentUrl?: string
  /** This run's URL. */
  logUrl?: string
  description?: string
}

export interface DeploymentRecorderOptions {
  client: DeploymentsApi
  /** Receives at most one warning in the recorder's life; the caller's reporter decides how to show it. */
  warn: (message: string) => void
  /** Problems after that one warning, for the debug log. */
  debug?: (message: string) => void
}

const PERMISSION_HINT = 'Add `permissions: deployments: write` to the job (and pass github-token) to record deployments.'

/**
 * Leaves the trail of a deploy in GitHub's Deployments: one Deployment per deployed or
 * rolled-back tag, `in_progress` then `success` or `failure`, and on success the environment's
 * earlier successful deployments become `inactive`.
 *
 * Recording never fails a deploy. Without a token, or when GitHub answers 403/404 (the job lacks
 * `deployments: write`), it warns once naming the permission and stops calling the API; an
 * unreachable API also stops it. Any other API error (a 5xx, a 422) also becomes that one warning,
 * and later calls still try, since such errors may pass.
 */
export class DeploymentRecorder {
  private disabled = false
  private warned = false
  private readonly started = new Map<number, DeploymentStart>()

  constructor(private readonly options: DeploymentRecorderOptions) {}

  /** False once recording has been given up (no token, or no permission). */
  get enabled(): boolean {
    return !this.disabled
  }

  /** Creates the Deployment and its `in_progress` status; returns its id, or undefined when none was created. */
  async start(deployment: DeploymentStart): Promise<number | undefined> {
    if (this.disabled) return undefined
    const { client } = this.options
    if (!client.hasToken) {
      this.disable(`GitHub Deployment not recorded: no github-token was given. ${PERMISSION_HINT}`)
      return undefined
    }
    let id: number
    try {
      const created = await client.createDeployment({
        ref: deployment.ref,
        environment: deployment.environment,
        payload: { ...deployment.payload },
        description: deployment.description ?? `Deploy ${deployment.payload.image}:${deployment.payload.tag}`
      })
      id = created.id
    } catch (error) {
      this.handle(error)
      return undefined
    }
    this.started.set(id, deployment)
    await this.attempt(() => client.createDeploymentStatus(id, { state: 'in_progress', description: `Deploying ${deployment.tag}` }))
    return id
  }

  /**
   * Sets the final status of a Deployment made by `start`. On success, the environment's earlier
   * deployments whose latest status is `success` become `inactive`: only one version runs.
   * Does nothing for an undefined id (none was created).
   */
  async finish(id: number | undefined, state: 'success' | 'failure', details: DeploymentFinish = {}): Promise<void> {
    if (this.disabled || id === undefined) return
    const { client } = this.options
    const deployment = this.started.get(id)
    const tag = deployment?.tag ?? `deployment ${id}`
    const finished = await this.attempt(() =>
      client.createDeploymentStatus(id, {
        state,
        ...(state === 'success' && details.environmentUrl !== undefined && { environmentUrl: details.environmentUrl }),
        ...(details.logUrl !== undefined && { logUrl: details.logUrl }),
        description: details.description ?? (state === 'success' ? `${tag} is live` : `${tag} failed`)
      })
    )
    if (finished && state === 'success' && deployment) {
      await this.attempt(() => this.markEarlierInactive(id, deployment))
    }
  }

  private async markEarlierInactive(id: number, deployment: DeploymentStart): Promise<void> {
    const { client } = this.options
    const earlier = (await client.listDeployments(deployment.environment)).filter(other => other.id < id)
    // One at a time: the list is short, and the request order stays readable in the API's log.
    for (const other of earlier) {
      const latest = await client.latestStatus(other.id)
      if (latest?.state !== 'success') continue
      await client.createDeploymentStatus(other.id, { state: 'inactive', description: `Replaced by ${deployment.tag}` })
    }
  }

  /** Runs one API step; on error reports it and answers false instead of throwing. */
  private async attempt(step: () => Promise<unknown>): Promise<boolean> {
    try {
      await step()
      return true
    } catch (error) {
      this.handle(error)
      return false
    }
  }

  private handle(error: unknown): void {
    if (error instanceof GitHubApiError && error.isPermissionProblem) {
      const answer = error.reason === 'no-token' ? 'no github-token was given' : `GitHub answered HTTP ${error.status} to "${error.operation}"`
      this.disable(`GitHub Deployment not recorded: ${answer}. ${PERMISSION_HINT}`)
      return
    }
    const detail = error instanceof Error ? error.message : String(error)
    if (error instanceof GitHubApiError && error.reason === 'unreachable') {
      // Each further call could wait out the whole request timeout; the run has no time to spare.
      this.disable(`GitHub Deployment not recorded: ${detail}. The deploy goes on.`)
      return
    }
    this.warnOnce(`GitHub Deployment records may be incomplete: ${detail}. The deploy goes on.`)
  }

  private disable(message: string): void {
    this.disabled = true
    this.warnOnce(message)
  }

  private warnOnce(message: string): void {
    if (this.warned) {
      this.options.debug?.(message)
      return
    }
    this.warned = true
    this.options.warn(message)
  }
}
