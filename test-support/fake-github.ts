/**
 * A local stand-in for the GitHub REST API endpoints the action uses (Releases, Deployments and
 * their statuses, workflow runs), served on 127.0.0.1 and reached through `GITHUB_API_URL`. It
 * answers with the real API's status codes, JSON shapes, ordering and `Link` pagination, and
 * records every request so tests can assert the exact sequence the action sent.
 */
import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/** One request as the fake saw it. */
export interface RecordedRequest {
  method: string
  /** Path without the query string, e.g. `/repos/acme/shop/deployments`. */
  path: string
  query: Record<string, string>
  /** Parsed JSON body; undefined when there was none. */
  body: unknown
  /** Whether an `authorization` header was sent (its value is never recorded). */
  authorized: boolean
  /** Status the fake answered with; 0 when it dropped or never answered the connection. */
  status: number
}

/** A release to serve. Times are ISO strings; a draft is never published. */
export interface FakeReleaseSpec {
  tag: string
  publishedAt?: string
  createdAt?: string
  draft?: boolean
  prerelease?: boolean
}

/** What the fake holds about one deployment, for assertions on the end state. */
export interface FakeDeploymentRecord {
  id: number
  ref: string
  environment: string
  payload: unknown
  description: string | null
  productionEnvironment: boolean
  transientEnvironment: boolean
  /** States in the order they were set, oldest first. */
  states: string[]
}

/**
 * How the whole API misbehaves: `http-500` answers 500 to everything, `unreachable` drops every
 * connection without an answer, `hang` accepts and never answers (for timeouts).
 */
export type FakeFailureMode = 'http-500' | 'unreachable' | 'hang'

export interface FakeGitHub {
  /** Base URL to use as `GITHUB_API_URL`, without a trailing slash. */
  url: string
  /** Every request so far, in arrival order. The array is live. */
  requests: RecordedRequest[]
  /** Replaces the releases served. */
  setReleases(releases: FakeReleaseSpec[]): void
  /** While on, every deployments endpoint answers 403 like a token without `deployments: write`. */
  deny403(on: boolean): void
  /** Makes every endpoint fail in the given way; undefined restores normal answers. */
  fail(mode: FakeFailureMode | undefined): void
  /** Deployments created so far, oldest first, with their states. */
  deployments(): FakeDeploymentRecord[]
  /**
   * Serves a workflow run of any repository (`GET …/actions/runs/{id}`), and with `attempt` one
   * attempt of it (`…/attempts/{n}`); other runs answer 404. A run's own answer is its newest attempt's.
   */
  setWorkflowRun(runId: number, run: { status: string; conclusion?: string | null }, attempt?: number): void
  stop(): Promise<void>
}

const STATES = new Set(['error', 'failure', 'inactive', 'in_progress', 'queued', 'pending', 'success'])
const DOCS = 'https://docs.github.com/rest'

interface ReleaseJson {
  id: number
  tag_name: string
  draft: boolean
  prerelease: boolean
  published_at: string | null
  created_at: string
  [key: string]: unknown
}

interface StatusJson {
  id: number
  state: string
  created_at: string
  [key: string]: unknown
}

interface DeploymentJson {
  id: number
  ref: string
  environment: string
  payload: unknown
  description: string | null
  transient_environment: boolean
  production_environment: boolean
  [key: string]: unknown
}

class HttpAnswer {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {}
  ) {}
}

function error(status: number, message: string, extra: Record<string, unknown> = {}): HttpAnswer {
  return new HttpAnswer(status, { message, documentation_url: DOCS, status: String(status), ...extra })
}

/** Starts the fake on a free port of 127.0.0.1. */
export async function start(): Promise<FakeGitHub> {
  let releases: ReleaseJson[] = []
  const deployments: { json: DeploymentJson; statuses: StatusJson[] }[] = []
  const requests: RecordedRequest[] = []
  let denyDeployments = false
  let failure: FakeFailureMode | undefined
  let nextId = 1
  /** Workflow runs by `<run id>` and `<run id>/<attempt>`. */
  const workflowRuns = new Map<string, { status: string; conclusion: string | null }>()
  const sockets = new Set<Socket>()
  let baseUrl = ''

  const now = (): string => new Date().toISOString()

  function releaseJson(spec: FakeReleaseSpec): ReleaseJson {
    const id = nextId++
    const createdAt = spec.createdAt ?? spec.publishedAt ?? now()
    return {
      url: `${baseUrl}/releases/${id}`,
      id,
      node_id: `RE_${id}`,
      tag_name: spec.tag,
      target_commitish: 'main',
      name: spec.tag,
      body: '',
      draft: spec.draft ?? false,
      prerelease: spec.prerelease ?? false,
      created_at: createdAt,
      published_at: spec.draft ? null : (spec.publishedAt ?? createdAt),
      assets: []
    }
  }

  /** Serves one page of `items` the way GitHub does: `per_page` (max 100), `page`, and a `Link` header. */
  function page(items: unknown[], path: string, query: Record<string, string>): HttpAnswer {
    const perPage = Math.min(Math.max(Number(query.per_page ?? 30) || 30, 1), 100)
    const pageNumber = Math.max(Number(query.page ?? 1) || 1, 1)
    const last = Math.max(Math.ceil(items.length / perPage), 1)
    const headers: Record<string, string> = {}
    const link = (n: number): string => {
      const params = new URLSearchParams({ ...query, per_page: String(perPage), page: String(n) })
      return `${baseUrl}${path}?${params.toString()}`
    }
    if (pageNumber < last) headers.link = `<${link(pageNumber + 1)}>; rel="next", <${link(last)}>; rel="last"`
    return new HttpAnswer(200, items.slice((pageNumber - 1) * perPage, pageNumber * perPage), headers)
  }

  function findDeployment(id: string): { json: DeploymentJson; statuses: StatusJson[] } | undefined {
    return deployments.find(deployment => String(deployment.json.id) === id)
  }

  function addStatus(deployment: { json: DeploymentJson; statuses: StatusJson[] }, fields: Record<string, unknown>): StatusJson {
    const id = nextId++
    const status: StatusJson = {
      url: `${deployment.json.statuses_url as string}/${id}`,
      id,
      node_id: `DES_${id}`,
      state: String(fields.state),
      creator: { login: 'github-actions[bot]' },
      description: typeof fields.description === 'string' ? fields.description : '',
      environment: deployment.json.environment,
      target_url: typeof fields.log_url === 'string' ? fields.log_url : '',
      created_at: now(),
      updated_at: now(),
      deployment_url: deployment.json.url,
      repository_url: deployment.json.repository_url,
      environment_url: typeof fields.environment_url === 'string' ? fields.environment_url : '',
      log_url: typeof fields.log_url === 'string' ? fields.log_url : ''
    }
    deployment.statuses.unshift(status)
    return status
  }

  function route(method: string, path: string, query: Record<string, string>, body: unknown): HttpAnswer {
    const runMatch = /^\/repos\/([^/]+)\/([^/]+)\/actions\/runs\/(\d+)(?:\/attempts\/(\d+))?\/?$/.exec(path)
    if (runMatch) {
      const [, owner, repo, runId, attempt] = runMatch
      const run = method === 'GET' ? workflowRuns.get(attempt === undefined ? String(runId) : `${runId}/${attempt}`) : undefined
      if (!run) return error(404, 'Not Found')
      return new HttpAnswer(200, {
        id: Number(runId),
        run_attempt: Number(attempt ?? 1),
        status: run.status,
        conclusion: run.conclusion,
        html_url: `https://github.com/${owner}/${repo}/actions/runs/${runId}${attempt === undefined ? '' : `/attempts/${attempt}`}`
      })
    }
    const match = /^\/repos\/([^/]+)\/([^/]+)\/(releases|deployments)(?:\/(\d+)(?:\/(statuses))?)?\/?$/.exec(path)
    if (!match) return error(404, 'Not Found')
    const [, owner, repo, collection, deploymentId, statuses] = match
    const repositoryUrl = `${baseUrl}/repos/${owner}/${repo}`

    if (collection === 'releases') {
      if (deploymentId !== undefined || method !== 'GET') return error(404, 'Not Found')
      // GitHub lists releases newest created first.
      const sorted = [...releases].sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at) || b.id - a.id)
      return page(sorted, path, query)
    }

    if (denyDeployments) return error(403, 'Resource not accessible by integration')

    if (deploymentId === undefined) {
      if (method === 'GET') {
        const listed = deployments
          .map(deployment => deployment.json)
          .filter(json => query.environment === undefined || json.environment === query.environment)
          .filter(json => query.ref === undefined || json.ref === query.ref)
          .reverse()
        return page(listed, path, query)
      }
      if (method !== 'POST') return error(404, 'Not Found')
      const fields = (body ?? {}) as Record<string, unknown>
      if (typeof fields.ref !== 'string' || fields.ref === '') {
        return error(422, 'Invalid request.\n\n"ref" wasn\'t supplied.')
      }
      if (fields.required_contexts !== undefined && !Array.isArray(fields.required_contexts)) {
        return error(422, 'Invalid request.\n\nFor \'properties/required_contexts\', it is not an array.')
      }
      const environment = typeof fields.environment === 'string' ? fields.environment : 'production'
      const id = nextId++
      const json: DeploymentJson = {
        url: `${repositoryUrl}/deployments/${id}`,
        id,
        node_id: `DE_${id}`,
        sha: createHash('sha1').update(fields.ref).digest('hex'),
        ref: fields.ref,
        task: typeof fields.task === 'string' ? fields.task : 'deploy',
        payload: fields.payload ?? {},
        original_environment: environment,
        environment,
        description: typeof fields.description === 'string' ? fields.description : null,
        creator: { login: 'github-actions[bot]' },
        created_at: now(),
        updated_at: now(),
        statuses_url: `${repositoryUrl}/deployments/${id}/statuses`,
        repository_url: repositoryUrl,
        transient_environment: fields.transient_environment === true,
        production_environment:
          typeof fields.production_environment === 'boolean' ? fields.production_environment : environment === 'production'
      }
      deployments.push({ json, statuses: [] })
      return new HttpAnswer(201, json)
    }

    const deployment = findDeployment(deploymentId)
    if (!deployment) return error(404, 'Not Found')
    if (statuses === undefined) return method === 'GET' ? new HttpAnswer(200, deployment.json) : error(404, 'Not Found')
    if (method === 'GET') return page(deployment.statuses, path, query)
    if (method !== 'POST') return error(404, 'Not Found')

    const fields = (body ?? {}) as Record<string, unknown>
    if (typeof fields.state !== 'string' || !STATES.has(fields.state)) {
      return error(422, 'Invalid request.\n\nFor \'properties/state\', it is not one of the allowed values.')
    }
    const status = addStatus(deployment, fields)
    // Like GitHub: unless auto_inactive is false, a success makes earlier successful deployments of
    // the same environment inactive, when they are neither transient nor production.
    if (fields.state === 'success' && fields.auto_inactive !== false) {
      for (const other of deployments) {
        const json = other.json
        if (json.id >= deployment.json.id || json.environment !== deployment.json.environment) continue
        if (json.transient_environment || json.production_environment) continue
        if (other.statuses[0]?.state === 'success') addStatus(other, { state: 'inactive' })
      }
    }
    return new HttpAnswer(201, status)
  }

  async function readBody(request: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = []
    for await (const chunk of request) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString('utf8')
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1')
    const query = Object.fromEntries(url.searchParams)
    const text = await readBody(request)
    let body: unknown
    let malformed = false
    if (text !== '') {
      try {
        body = JSON.parse(text)
      } catch {
        body = text
        malformed = true
      }
    }
    const record: RecordedRequest = {
      method: request.method ?? 'GET',
      path: url.pathname,
      query,
      body,
      authorized: typeof request.headers.authorization === 'string' && request.headers.authorization !== '',
      status: 0
    }
    requests.push(record)

    if (failure === 'unreachable') {
      request.socket.destroy()
      return
    }
    if (failure === 'hang') return

    let answer: HttpAnswer
    if (failure === 'http-500') answer = error(500, 'Server Error')
    else if (!record.authorized) answer = error(401, 'Requires authentication')
    else if (malformed) answer = error(400, 'Problems parsing JSON')
    else answer = route(record.method, record.path, query, body)

    record.status = answer.status
    const payload = JSON.stringify(answer.body)
    response.writeHead(answer.status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(payload),
      ...answer.headers
    })
    response.end(payload)
  }

  const server = createServer((request, response) => {
    handle(request, response).catch(cause => {
      response.statusCode = 500
      response.end(JSON.stringify({ message: String(cause) }))
    })
  })
  server.on('connection', socket => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  baseUrl = `http://127.0.0.1:${port}`

  return {
    url: baseUrl,
    requests,
    setReleases(specs) {
      releases = specs.map(releaseJson)
    },
    deny403(on) {
      denyDeployments = on
    },
    fail(mode) {
      failure = mode
    },
    setWorkflowRun(runId, run, attempt) {
      const answer = { status: run.status, conclusion: run.conclusion ?? null }
      workflowRuns.set(attempt === undefined ? String(runId) : `${runId}/${attempt}`, answer)
      if (attempt !== undefined) workflowRuns.set(String(runId), answer)
    },
    deployments() {
      return deployments.map(({ json, statuses }) => ({
        id: json.id,
        ref: json.ref,
        environment: json.environment,
        payload: json.payload,
        description: json.description,
        productionEnvironment: json.production_environment,
        transientEnvironment: json.transient_environment,
        states: statuses.map(status => status.state).reverse()
      }))
    },
    async stop() {
      // Keep-alive and hung connections would hold close() open.
      for (const socket of sockets) socket.destroy()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}
