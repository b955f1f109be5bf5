import { afterEach, beforeEach, describe, expect, it } from '@jest/globals'
import { GitHubApiError, GitHubClient } from '../src/github/client.js'
import { start, type FakeGitHub } from '../test-support/fake-github.js'

let api: FakeGitHub

beforeEach(async () => {
  api = await start()
})

afterEach(async () => {
  await api.stop()
})

function client(options: { token?: string; maxPages?: number; timeoutMs?: number } = {}): GitHubClient {
  return new GitHubClient({
    token: 'token' in options ? options.token : 'ghs_test',
    repository: 'acme/shop',
    apiUrl: api.url,
    ...(options.maxPages !== undefined && { maxPages: options.maxPages }),
    ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs })
  })
}

async function apiError(promise: Promise<unknown>): Promise<GitHubApiError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught
  )
  expect(error).toBeInstanceOf(GitHubApiError)
  return error as GitHubApiError
}

describe('GitHubClient.listReleases', () => {
  it('returns the releases with the fields the rollback rules read, sending the token', async () => {
    api.setReleases([
      { tag: 'v1', publishedAt: '2024-01-01T00:00:00Z' },
      { tag: 'v2-rc', publishedAt: '2024-02-01T00:00:00Z', prerelease: true },
      { tag: 'v3', createdAt: '2024-03-01T00:00:00Z', draft: true }
    ])
    const releases = await client().listReleases()
    expect(releases.map(r => [r.tag_name, r.draft, r.prerelease, r.published_at])).toEqual([
      ['v3', true, false, null],
      ['v2-rc', false, true, '2024-02-01T00:00:00Z'],
      ['v1', false, false, '2024-01-01T00:00:00Z']
    ])
    expect(typeof releases[0]?.id).toBe('number')
    expect(api.requests).toEqual([
      { method: 'GET', path: '/repos/acme/shop/releases', query: { per_page: '100' }, body: undefined, authorized: true, status: 200 }
    ])
  })

  it('follows pagination, but no further than maxPages', async () => {
    const day = (n: number): string => new Date(Date.UTC(2024, 0, 1) + n * 86_400_000).toISOString()
    api.setReleases(Array.from({ length: 250 }, (_, n) => ({ tag: `v${n}`, publishedAt: day(n) })))

    const all = await client({ maxPages: 5 }).listReleases()
    expect(all).toHaveLength(250)
    expect(new Set(all.map(r => r.tag_name)).size).toBe(250)
    expect(api.requests.map(r => r.query.page ?? '1')).toEqual(['1', '2', '3'])

    api.requests.length = 0
    const capped = await client({ maxPages: 2 }).listReleases()
    expect(capped).toHaveLength(200)
    expect(capped[0]?.tag_name).toBe('v249')
    expect(api.requests).toHaveLength(2)
  })

  it('fails with the HTTP status when the API answers an error', async () => {
    api.fail('http-500')
    const error = await apiError(client().listReleases())
    expect(error).toMatchObject({ reason: 'http', status: 500, operation: 'list releases' })
  })

  it('fails with reason unreachable, and no status, when no answer comes', async () => {
    api.fail('unreachable')
    const error = await apiError(client().listReleases())
    expect(error.reason).toBe('unreachable')
    expect(error.status).toBeUndefined()
  })

  it('gives up on a silent API after the request timeout', async () => {
    api.fail('hang')
    const began = Date.now()
    const error = await apiError(client({ timeoutMs: 200 }).listReleases())
    expect(error.reason).toBe('unreachable')
    expect(Date.now() - began).toBeLessThan(5_000)
  })

  it('without a token fails with reason no-token and sends nothing', async () => {
    const tokenless = client({ token: undefined })
    expect(tokenless.hasToken).toBe(false)
    const error = await apiError(tokenless.listReleases())
    expect(error).toMatchObject({ reason: 'no-token', isPermissionProblem: true })
    expect(api.requests).toEqual([])
  })

  it('rejects a repository that is not owner/repo', () => {
    expect(() => new GitHubClient({ token: 't', repository: 'shop', apiUrl: api.url })).toThrow(/owner\/repo/)
  })
})

describe('GitHubClient deployments', () => {
  it('creates a deployment with the fixed options and production_environment from the name', async () => {
    const github = client()
    const production = await github.createDeployment({
      ref: 'v2',
      environment: 'production',
      payload: { image: 'ghcr.io/acme/shop', tag: 'v2', digest: 'sha256:abc' },
      description: 'Deploy ghcr.io/acme/shop:v2'
    })
    const staging = await github.createDeployment({ ref: 'v2', environment: 'staging', payload: {} })
    expect(production).toMatchObject({ ref: 'v2', environment: 'production', payload: { tag: 'v2' } })
    expect(staging.id).toBeGreaterThan(production.id)
    expect(api.requests.map(r => [r.method, r.path, r.body])).toEqual([
      [
        'POST',
        '/repos/acme/shop/deployments',
        {
          ref: 'v2',
          environment: 'production',
          payload: { image: 'ghcr.io/acme/shop', tag: 'v2', digest: 'sha256:abc' },
          description: 'Deploy ghcr.io/acme/shop:v2',
          auto_merge: false,
          required_contexts: [],
          transient_environment: false,
          production_environment: true
        }
      ],
      [
        'POST',
        '/repos/acme/shop/deployments',
        {
          ref: 'v2',
          environment: 'staging',
          payload: {},
          auto_merge: false,
          required_contexts: [],
          transient_environment: false,
          production_environment: false
        }
      ]
    ])
  })

  it('sets statuses with auto_inactive off and reads the latest one back', async () => {
    const github = client()
    const { id } = await github.createDeployment({ ref: 'v2', environment: 'production', payload: {} })
    expect(await github.latestStatus(id)).toBeUndefined()
    await github.createDeploymentStatus(id, { state: 'in_progress' })
    await github.createDeploymentStatus(id, {
      state: 'success',
      environmentUrl: 'https://shop.example',
      logUrl: 'https://github.com/acme/shop/actions/runs/1',
      description: 'x'.repeat(200)
    })
    expect(await github.latestStatus(id)).toMatchObject({
      state: 'success',
      environment_url: 'https://shop.example',
      log_url: 'https://github.com/acme/shop/actions/runs/1'
    })
    const bodies = api.requests.filter(r => r.method === 'POST' && r.path.endsWith('/statuses')).map(r => r.body)
    expect(bodies[0]).toEqual({ state: 'in_progress', auto_inactive: false })
    expect(bodies[1]).toMatchObject({ state: 'success', auto_inactive: false })
    // GitHub refuses descriptions over 140 characters.
    expect((bodies[1] as { description: string }).description).toHaveLength(140)
    expect(api.requests.filter(r => r.method === 'GET').map(r => [r.path, r.query])).toEqual([
      [`/repos/acme/shop/deployments/${id}/statuses`, { per_page: '1' }],
      [`/repos/acme/shop/deployments/${id}/statuses`, { per_page: '1' }]
    ])
  })

  it('lists the deployments of one environment, newest first', async () => {
    const github = client()
    const first = await github.createDeployment({ ref: 'v1', environment: 'production', payload: {} })
    await github.createDeployment({ ref: 'v1', environment: 'staging', payload: {} })
    const second = await github.createDeployment({ ref: 'v2', environment: 'production', payload: {} })
    const listed = await github.listDeployments('production')
    expect(listed.map(d => d.id)).toEqual([second.id, first.id])
    expect(api.requests.at(-1)?.query).toEqual({ environment: 'production', per_page: '30' })
  })

  it('carries the HTTP status of a refusal', async () => {
    api.deny403(true)
    const error = await apiError(client().createDeployment({ ref: 'v2', environment: 'production', payload: {} }))
    expect(error).toMatchObject({ reason: 'http', status: 403, isPermissionProblem: true })
    expect(error.message).toMatch(/Resource not accessible by integration/)
  })

  it('reports a 404 for an unknown deployment as a status, not as unreachable', async () => {
    const error = await apiError(client().createDeploymentStatus(999_999, { state: 'success' }))
    expect(error).toMatchObject({ reason: 'http', status: 404 })
  })
})
