import type { getOctokit } from '@actions/github'

type Octokit = ReturnType<typeof getOctokit>

/** The fields of a GitHub release that the rollback-target rules read. */
export interface GitHubRelease {
  id: number
  tag_name: string
  draft: boolean
  prerelease: boolean
  /** Null for drafts, which are not published. */
  published_at: string | null
  created_at: string
}

export type DeploymentState = 'error' | 'failure' | 'inactive' | 'in_progress' | 'queued' | 'pending' | 'success'

export interface GitHubDeployment {
  id: number
  ref: string
  environment: string
  created_at: string
  payload: unknown
  description: string | null
}

export interface GitHubDeploymentStatus {
  id: number
  state: DeploymentState
  created_at: string
  environment_url?: string
  log_url?: string
  description?: string | null
}

export interface CreateDeploymentRequest {
  /** Git ref the deployment records: the tag or the commit SHA. */
  ref: string
  environment: string
  payload: Record<string, unknown>
  description?: string
}

export interface CreateDeploymentStatusRequest {
  state: DeploymentState
  environmentUrl?: string
  logUrl?: string
  description?: string
}

/** A workflow run (or one attempt of it), as `command: unlock` asks whether a lock's holder still runs. */
export interface GitHubWorkflowRun {
  /** `queued`, `in_progress`, `completed`, and the other waiting states (`waiting`, `requested`, `pending`). */
  status: string
  /** `success`, `failure`, `cancelled`, …; null until the run completes. */
  conclusion: string | null
  html_url: string
}

/**
 * Why a GitHub API call failed. `reason` separates the cases a warning must tell apart:
 * no token at all, an API that could not be reached (no HTTP answer), and an HTTP error status.
 */
export class GitHubApiError extends Error {
  override readonly name = 'GitHubApiError'

  constructor(
    /** What was being done, e.g. `list releases`. */
    readonly operation: string,
    readonly reason: 'no-token' | 'unreachable' | 'http',
    /** HTTP status of the answer; undefined unless `reason` is `http`. */
    readonly status: number | undefined,
    detail: string,
    options?: { cause?: unknown }
  ) {
    super(`${operation}: ${detail}`, options)
  }

  /** 403 or 404 on a write: the workflow's token lacks the permission (GitHub hides what it won't show). */
  get isPermissionProblem(): boolean {
    return this.reason === 'no-token' || this.status === 403 || this.status === 404
  }
}

export interface GitHubClientOptions {
  /** `github-token`; undefined or empty makes every call fail with reason `no-token`, without network. */
  token: string | undefined
  /** `owner/repo` */
  repository: string
  /** `GITHUB_API_URL`, e.g. `https://api.github.com`. */
  apiUrl: string
  /** Per-request time limit; a silent API must not hold up a deploy or its rollback. */
  timeoutMs?: number
  /** Upper bound for paginated lists, 100 items a page. */
  maxPages?: number
}

/** GitHub's own limit for deployment and status descriptions. */
const DESCRIPTION_LIMIT = 140

/**
 * A small typed wrapper over the REST endpoints the action uses (Releases, Deployments, and the
 * workflow run of a lock's holder for `command: unlock`). Every failure is a `GitHubApiError`
 * carrying the HTTP status, so callers can decide between a fallback and a warning without
 * knowing Octokit's error shapes.
 */
export class GitHubClient {
  /**
   * Octokit is loaded with a dynamic `import()`, started here: a deploy without a token never
   * loads it, and one with a token loads it while the first docker commands run instead of
   * before them (the action's cold start).
   */
  private readonly octokit: Promise<Octokit> | undefined
  private readonly owner: string
  private readonly repo: string
  private readonly maxPages: number

  constructor(options: GitHubClientOptions) {
    const [owner, repo, ...rest] = options.repository.split('/')
    if (!owner || !repo || rest.length > 0) {
      throw new Error(`The repository must read owner/repo, got "${options.repository}".`)
    }
    this.owner = owner
    this.repo = repo
    this.maxPages = options.maxPages ?? 3
    if (options.token) {
      const token = options.token
      const timeoutMs = options.timeoutMs ?? 15_000
      this.octokit = import('@actions/github').then(({ getOctokit }) => {
        const octokit = getOctokit(token, { baseUrl: options.apiUrl.replace(/\/+$/, '') })
        // A hook rather than a per-call option: paginate drops request options on later pages.
        octokit.hook.before('request', requestOptions => {
          requestOptions.request = { ...requestOptions.request, signal: AbortSignal.timeout(timeoutMs) }
        })
        return octokit
      })
      // A load that fails is reported by the first call that needs it, not as an unhandled rejection.
      this.octokit.catch(() => undefined)
    }
  }

  /** True when a token was given; without one every call fails with reason `no-token`. */
  get hasToken(): boolean {
    return this.octokit !== undefined
  }

  /** Releases of the repository, newest created first, at most `maxPages` pages. */
  async listReleases(): Promise<GitHubRelease[]> {
    return this.call('list releases', async octokit => {
      let pages = 0
      const releases = await octokit.paginate(
        octokit.rest.repos.listReleases,
        { owner: this.owner, repo: this.repo, per_page: 100 },
        (response, done) => {
          pages += 1
          if (pages >= this.maxPages) done()
          return response.data
        }
      )
      return releases.map(release => ({
        id: release.id,
        tag_name: release.tag_name,
        draft: release.draft,
        prerelease: release.prerelease,
        published_at: release.published_at,
        created_at: release.created_at
      }))
    })
  }

  /** Creates a Deployment that GitHub will not merge into, gate on checks, or treat as temporary. */
  async createDeployment(request: CreateDeploymentRequest): Promise<GitHubDeployment> {
    return this.call('create deployment', async octokit => {
      const response = await octokit.rest.repos.createDeployment({
        owner: this.owner,
        repo: this.repo,
        ref: request.ref,
        environment: request.environment,
        payload: request.payload,
        description: truncate(request.description),
        auto_merge: false,
        required_contexts: [],
        transient_environment: false,
        production_environment: request.environment === 'production'
      })
      // 202 means GitHub merged the default branch first, which auto_merge: false rules out.
      if (response.status !== 201 || !('id' in response.data)) {
        throw new GitHubApiError('create deployment', 'http', response.status, 'no deployment was created')
      }
      return toDeployment(response.data)
    })
  }

  /**
   * Adds a status. `auto_inactive` is off because the recorder marks earlier deployments
   * inactive itself, and only those that succeeded.
   */
  async createDeploymentStatus(deploymentId: number, request: CreateDeploymentStatusRequest): Promise<GitHubDeploymentStatus> {
    return this.call(`set deployment ${deploymentId} to ${request.state}`, async octokit => {
      const response = await octokit.rest.repos.createDeploymentStatus({
        owner: this.owner,
        repo: this.repo,
        deployment_id: deploymentId,
        state: request.state,
        ...(request.environmentUrl !== undefined && { environment_url: request.environmentUrl }),
        ...(request.logUrl !== undefined && { log_url: request.logUrl }),
        ...(request.description !== undefined && { description: truncate(request.description) }),
        auto_inactive: false
      })
      return toStatus(response.data)
    })
  }

  /** The environment's most recent deployments, newest first (one page of `limit`). */
  async listDeployments(environment: string, limit = 30): Promise<GitHubDeployment[]> {
    return this.call(`list deployments of ${environment}`, async octokit => {
      const response = await octokit.rest.repos.listDeployments({
        owner: this.owner,
        repo: this.repo,
        environment,
        per_page: Math.min(Math.max(limit, 1), 100)
      })
      return response.data.map(toDeployment)
    })
  }

  /** The newest status of a deployment, or undefined when it has none. */
  async latestStatus(deploymentId: number): Promise<GitHubDeploymentStatus | undefined> {
    return this.call(`read the status of deployment ${deploymentId}`, async octokit => {
      // GitHub lists statuses newest first.
      const response = await octokit.rest.repos.listDeploymentStatuses({
        owner: this.owner,
        repo: this.repo,
        deployment_id: deploymentId,
        per_page: 1
      })
      const [latest] = response.data
      return latest ? toStatus(latest) : undefined
    })
  }

  /**
   * A workflow run, or one attempt of it when `attempt` is given (a re-run is a new attempt of the
   * same run, and the run's own status is its newest attempt's). `repository` defaults to this
   * client's. Needs `actions: read`.
   */
  async workflowRun(runId: number, attempt?: number, repository?: string): Promise<GitHubWorkflowRun> {
    const [owner, repo] = repository ? repository.split('/') : [this.owner, this.repo]
    if (!owner || !repo) throw new GitHubApiError('read a workflow run', 'http', undefined, `expected owner/repo, got "${repository ?? ''}"`)
    return this.call(`read workflow run ${runId}${attempt === undefined ? '' : ` attempt ${attempt}`}`, async octokit => {
      const response =
        attempt === undefined
          ? await octokit.rest.actions.getWorkflowRun({ owner, repo, run_id: runId })
          : await octokit.rest.actions.getWorkflowRunAttempt({ owner, repo, run_id: runId, attempt_number: attempt })
      return { status: response.data.status ?? 'unknown', conclusion: response.data.conclusion ?? null, html_url: response.data.html_url }
    })
  }

  private async call<T>(operation: string, body: (octokit: Octokit) => Promise<T>): Promise<T> {
    if (!this.octokit) throw new GitHubApiError(operation, 'no-token', undefined, 'no github-token was given')
    try {
      return await body(await this.octokit)
    } catch (error) {
      throw toApiError(operation, error)
    }
  }
}

/**
 * Octokit reports a network failure as a RequestError with a made-up status 500 and no response,
 * so the response, not the status, tells an HTTP answer from an unreachable API.
 */
function toApiError(operation: string, error: unknown): GitHubApiError {
  if (error instanceof GitHubApiError) return error
  const response = (error as { response?: { status?: unknown; data?: unknown } } | null)?.response
  if (response && typeof response.status === 'number') {
    return new GitHubApiError(operation, 'http', response.status, `HTTP ${response.status} ${messageOf(response.data, error)}`, {
      cause: error
    })
  }
  const detail = error instanceof Error ? error.message : String(error)
  return new GitHubApiError(operation, 'unreachable', undefined, `the GitHub API could not be reached (${detail})`, { cause: error })
}

function messageOf(data: unknown, error: unknown): string {
  if (data && typeof data === 'object' && 'message' in data && typeof data.message === 'string') return data.message
  return error instanceof Error ? error.message : ''
}

function truncate(description: string | undefined): string | undefined {
  if (description === undefined || description.length <= DESCRIPTION_LIMIT) return description
  return `${description.slice(0, DESCRIPTION_LIMIT - 1)}…`
}

function toDeployment(data: {
  id: number
  ref: string
  environment: string
  created_at: string
  payload: unknown
  description?: string | null
}): GitHubDeployment {
  return {
    id: data.id,
    ref: data.ref,
    environment: data.environment,
    created_at: data.created_at,
    payload: data.payload,
    description: data.description ?? null
  }
}

function toStatus(data: {
  id: number
  state: string
  created_at: string
  environment_url?: string
  log_url?: string
  description?: string | null
}): GitHubDeploymentStatus {
  return {
    id: data.id,
    state: data.state as DeploymentState,
    created_at: data.created_at,
    ...(data.environment_url && { environment_url: data.environment_url }),
    ...(data.log_url && { log_url: data.log_url }),
    description: data.description ?? null
  }
}
