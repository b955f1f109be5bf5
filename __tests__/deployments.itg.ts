/**
 * Issue 4: the trail a deploy leaves in GitHub Deployments, through the bundled action on a real
 * engine. The local stand-in for the REST API records every request, so each scenario asserts the
 * exact sequence of creates and statuses: a healthy deploy, a rolled-back deploy, a manual rollback,
 * and a token without `deployments: write`.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import type { ActionResult } from '../test-support/action-run.js'
import type { FakeGitHub, RecordedRequest } from '../test-support/fake-github.js'
import { makeSite, pushAppImages, runStep, startFixture, type Fixture, type Site } from '../test-support/fixture.js'
import { httpGet } from '../test-support/net.js'

const REPO = 'acme/web'
const SHA = 'c0ffee0000000000000000000000000000000001'
const URL_OF_APP = 'https://web.example.com'

let fixture: Fixture & { github: FakeGitHub }
let registry: Fixture['registry']
let github: FakeGitHub
let site: Site
let port: number
let digests: Map<string, string>

beforeAll(async () => {
  fixture = await startFixture({ github: true })
  ;({ registry, github } = fixture)
  digests = await pushAppImages(
    fixture,
    REPO,
    [
      { tag: 'v1', behaviour: 'healthy' },
      { tag: 'v2', behaviour: 'healthy' },
      { tag: 'v3-exits', behaviour: 'exits' }
    ],
    { keepLocal: true }
  )
  site = await makeSite(fixture.dirs, 'web', (target) =>
    [
      `image: ${registry.address}/${REPO}`,
      'name: web',
      `url: ${URL_OF_APP}`,
      'container:',
      '  network: host',
      '  init: true',
      '  stop-timeout: 2s',
      `  env: { PORT: "${target.port}" }`,
      'health:',
      `  url: http://127.0.0.1:${target.port}/health`,
      '  interval: 150ms',
      '  deadline: 4s',
      ''
    ].join('\n')
  )
  port = site.port
}, 90_000)

afterAll(async () => {
  await fixture?.stop()
}, 60_000)

function act(inputs: Record<string, string>): Promise<ActionResult> {
  return runStep(fixture, site, inputs, { github: { apiUrl: github.url, sha: SHA }, timeoutMs: 60_000 })
}

/** The requests of one run, as `METHOD path state`, with deployment ids kept (they are sequential). */
function trail(requests: RecordedRequest[]): string[] {
  return requests.map((request) => {
    const state = (request.body as { state?: string } | undefined)?.state
    return `${request.method} ${request.path.replace(`/repos/${REPO}`, '')}${state ? ` ${state}` : ''}`
  })
}

/** Runs `work` and returns the API requests it made. */
async function requestsOf(work: () => Promise<ActionResult>): Promise<{ result: ActionResult; requests: RecordedRequest[] }> {
  const first = github.requests.length
  const result = await work()
  return { result, requests: github.requests.slice(first) }
}

function lastDeploymentId(): number {
  const all = github.deployments()
  return all[all.length - 1]?.id ?? 0
}

describe('GitHub Deployments', () => {
  it('a healthy deploy: a Deployment in_progress then success, with the environment URL and the run URL', async () => {
    const { result, requests } = await requestsOf(() => act({ tag: 'v1' }))
    expect(result.exitCode).toBe(0)
    const id = lastDeploymentId()
    expect(trail(requests)).toEqual([
      'POST /deployments',
      `POST /deployments/${id}/statuses in_progress`,
      `POST /deployments/${id}/statuses success`,
      'GET /deployments'
    ])
    expect(requests[0]?.body).toMatchObject({
      ref: SHA,
      environment: 'production',
      auto_merge: false,
      required_contexts: [],
      payload: { image: `${registry.address}/${REPO}`, tag: 'v1', digest: digests.get('v1') }
    })
    expect(requests[2]?.body).toMatchObject({ state: 'success', environment_url: URL_OF_APP, log_url: expect.stringContaining('/actions/runs/') })
    expect(result.outputs['deployment-id']).toBe(String(id))
  }, 60_000)

  it('a second healthy deploy marks the earlier successful one inactive', async () => {
    const earlier = lastDeploymentId()
    const { result, requests } = await requestsOf(() => act({ tag: 'v2' }))
    expect(result.exitCode).toBe(0)
    const id = lastDeploymentId()
    expect(trail(requests)).toEqual([
      'POST /deployments',
      `POST /deployments/${id}/statuses in_progress`,
      `POST /deployments/${id}/statuses success`,
      'GET /deployments',
      `GET /deployments/${earlier}/statuses`,
      `POST /deployments/${earlier}/statuses inactive`
    ])
    expect(github.deployments().find((deployment) => deployment.id === earlier)?.states).toEqual(['in_progress', 'success', 'inactive'])
  }, 60_000)

  it('a rolled-back deploy: the failed tag gets failure, the rollback its own Deployment with success', async () => {
    github.setReleases([{ tag: 'v2', publishedAt: '2026-02-01T10:00:00Z' }])
    const { result, requests } = await requestsOf(() => act({ tag: 'v3-exits' }))
    expect(result.exitCode).toBe(1)
    expect(result.outputs.result).toBe('rolled-back')
    const created = github.deployments().slice(-2)
    const [failed, rollback] = created
    expect(failed).toMatchObject({ ref: SHA, states: ['in_progress', 'failure'], payload: { tag: 'v3-exits' } })
    expect(rollback).toMatchObject({ ref: 'v2', states: ['in_progress', 'success'], payload: { tag: 'v2' } })
    const writes = trail(requests).filter((line) => line.startsWith('POST') || line === 'GET /releases')
    expect(writes.slice(0, 5)).toEqual([
      'POST /deployments',
      `POST /deployments/${failed?.id}/statuses in_progress`,
      `POST /deployments/${failed?.id}/statuses failure`,
      'GET /releases',
      'POST /deployments'
    ])
    expect(writes).toContain(`POST /deployments/${rollback?.id}/statuses success`)
    // What runs is the rollback's Deployment; the output names it.
    expect(result.outputs['deployment-id']).toBe(String(rollback?.id))
    expect((await httpGet(`http://127.0.0.1:${port}/version`)).body.trim()).toBe('v2')
  }, 60_000)

  it('a manual rollback is a Deployment of the target tag', async () => {
    const { result } = await requestsOf(() => act({ command: 'rollback', 'rollback-to': 'v1' }))
    expect(result.exitCode).toBe(0)
    expect(result.outputs.result).toBe('rolled-back')
    expect(github.deployments().at(-1)).toMatchObject({ ref: 'v1', environment: 'production', states: ['in_progress', 'success'], payload: { tag: 'v1' } })
  }, 60_000)

  it('without deployments: write (403): one warning naming the permission, and the deploy goes on', async () => {
    github.deny403(true)
    try {
      const { result, requests } = await requestsOf(() => act({ tag: 'v2' }))
      expect(result.exitCode).toBe(0)
      expect(result.outputs).toMatchObject({ result: 'deployed', tag: 'v2', 'deployment-id': '' })
      expect(trail(requests)).toEqual(['POST /deployments'])
      const warnings = result.annotations.filter((annotation) => annotation.level === 'warning')
      expect(warnings).toHaveLength(1)
      expect(warnings[0]?.message).toContain('deployments: write')
      expect((await httpGet(`http://127.0.0.1:${port}/version`)).body.trim()).toBe('v2')
    } finally {
      github.deny403(false)
    }
  }, 60_000)
})
