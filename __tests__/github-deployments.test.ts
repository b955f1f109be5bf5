import { afterEach, beforeEach, describe, expect, it } from '@jest/globals'
import { GitHubClient } from '../src/github/client.js'
import { DeploymentRecorder, type DeploymentStart } from '../src/github/deployments.js'
import { start, type FakeGitHub, type RecordedRequest } from '../test-support/fake-github.js'

let api: FakeGitHub

beforeEach(async () => {
  api = await start()
})

afterEach(async () => {
  await api.stop()
})

const RUN_URL = 'https://github.com/acme/shop/actions/runs/42'
const SITE = 'https://shop.example'
const BASE = '/repos/acme/shop/deployments'

function recorder(token: string | undefined): { recorder: DeploymentRecorder; warnings: string[]; debug: string[] } {
  const warnings: string[] = []
  const debug: string[] = []
  const client = new GitHubClient({ token, repository: 'acme/shop', apiUrl: api.url, timeoutMs: 2_000 })
  return {
    recorder: new DeploymentRecorder({ client, warn: message => warnings.push(message), debug: message => debug.push(message) }),
    warnings,
    debug
  }
}

function deployment(tag: string, environment = 'production'): DeploymentStart {
  return { tag, ref: tag, environment, payload: { image: 'ghcr.io/acme/shop', tag, digest: `sha256:${tag}` } }
}

/** The request log in a form a reader can check line by line: method, path, and the status state. */
function sequence(requests: RecordedRequest[]): string[] {
  return requests.map(request => {
    const state = (request.body as { state?: string } | undefined)?.state
    return `${request.method} ${request.path}${state ? ` ${state}` : ''}`
  })
}

/** Deploys `tag` through the recorder with the given outcome, as the pipeline would. */
async function deploy(target: DeploymentRecorder, tag: string, outcome: 'success' | 'failure'): Promise<number | undefined> {
  const id = await target.start(deployment(tag))
  await target.finish(id, outcome, { environmentUrl: SITE, logUrl: RUN_URL })
  return id
}

describe('DeploymentRecorder', () => {
  it('records a healthy deploy and makes only the earlier successful deployment inactive', async () => {
    const { recorder: record, warnings } = recorder('ghs_test')
    const v1 = await deploy(record, 'v1', 'success')
    const v15 = await deploy(record, 'v1.5', 'failure')
    api.requests.length = 0

    const v2 = await record.start(deployment('v2'))
    await record.finish(v2, 'success', { environmentUrl: SITE, logUrl: RUN_URL })

    expect(sequence(api.requests)).toEqual([
      `POST ${BASE}`,
      `POST ${BASE}/${v2}/statuses in_progress`,
      `POST ${BASE}/${v2}/statuses success`,
      `GET ${BASE}`,
      `GET ${BASE}/${v15}/statuses`,
      `GET ${BASE}/${v1}/statuses`,
      `POST ${BASE}/${v1}/statuses inactive`
    ])
    expect(api.requests[0]?.body).toEqual({
      ref: 'v2',
      environment: 'production',
      payload: { image: 'ghcr.io/acme/shop', tag: 'v2', digest: 'sha256:v2' },
      description: 'Deploy ghcr.io/acme/shop:v2',
      auto_merge: false,
      required_contexts: [],
      transient_environment: false,
      production_environment: true
    })
    expect(api.requests[2]?.body).toEqual({
      state: 'success',
      environment_url: SITE,
      log_url: RUN_URL,
      description: 'v2 is live',
      auto_inactive: false
    })
    expect(api.requests[3]?.query).toMatchObject({ environment: 'production' })
    expect(api.deployments().map(d => [d.ref, d.states])).toEqual([
      ['v1', ['in_progress', 'success', 'inactive']],
      ['v1.5', ['in_progress', 'failure']],
      ['v2', ['in_progress', 'success']]
    ])
    expect(warnings).toEqual([])
  })

  it('records a failed deploy without a site URL and leaves the running version active', async () => {
    const { recorder: record, warnings } = recorder('ghs_test')
    const v1 = await deploy(record, 'v1', 'success')
    api.requests.length = 0

    const v2 = await deploy(record, 'v2', 'failure')

    expect(sequence(api.requests)).toEqual([`POST ${BASE}`, `POST ${BASE}/${v2}/statuses in_progress`, `POST ${BASE}/${v2}/statuses failure`])
    expect(api.requests[2]?.body).toEqual({ state: 'failure', log_url: RUN_URL, description: 'v2 failed', auto_inactive: false })
    expect(api.deployments().find(d => d.id === v1)?.states).toEqual(['in_progress', 'success'])
    expect(warnings).toEqual([])
  })

  it('records a rolled-back deploy as two deployments: the failure, then the rollback target', async () => {
    const { recorder: record } = recorder('ghs_test')
    const v1 = await deploy(record, 'v1', 'success')
    api.requests.length = 0

    const v2 = await deploy(record, 'v2', 'failure')
    const back = await deploy(record, 'v1', 'success')

    expect(sequence(api.requests)).toEqual([
      `POST ${BASE}`,
      `POST ${BASE}/${v2}/statuses in_progress`,
      `POST ${BASE}/${v2}/statuses failure`,
      `POST ${BASE}`,
      `POST ${BASE}/${back}/statuses in_progress`,
      `POST ${BASE}/${back}/statuses success`,
      `GET ${BASE}`,
      `GET ${BASE}/${v2}/statuses`,
      `GET ${BASE}/${v1}/statuses`,
      `POST ${BASE}/${v1}/statuses inactive`
    ])
  })

  it('on a 403 warns once, naming the permission, and stops calling the API', async () => {
    api.deny403(true)
    const { recorder: record, warnings } = recorder('ghs_test')

    const failed = await deploy(record, 'v2', 'failure')
    const rollback = await deploy(record, 'v1', 'success')

    expect(failed).toBeUndefined()
    expect(rollback).toBeUndefined()
    expect(record.enabled).toBe(false)
    expect(sequence(api.requests)).toEqual([`POST ${BASE}`])
    expect(api.requests[0]?.status).toBe(403)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/HTTP 403/)
    expect(warnings[0]).toContain('permissions: deployments: write')
  })

  it('without a token warns once, naming the permission, and sends nothing', async () => {
    const { recorder: record, warnings } = recorder(undefined)
    expect(await deploy(record, 'v2', 'success')).toBeUndefined()
    expect(await deploy(record, 'v3', 'success')).toBeUndefined()
    expect(api.requests).toEqual([])
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/no github-token/)
    expect(warnings[0]).toContain('permissions: deployments: write')
  })

  it('degrades server errors to a single warning and keeps trying', async () => {
    const { recorder: record, warnings, debug } = recorder('ghs_test')
    const v1 = await record.start(deployment('v1'))
    api.fail('http-500')
    await record.finish(v1, 'success', { logUrl: RUN_URL })
    expect(await record.start(deployment('v2'))).toBeUndefined()
    api.fail(undefined)
    const v3 = await record.start(deployment('v3'))

    expect(v3).toEqual(expect.any(Number))
    expect(record.enabled).toBe(true)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/HTTP 500/)
    expect(debug).toHaveLength(1)
  })

  it('stops after one warning when the API cannot be reached', async () => {
    api.fail('unreachable')
    const { recorder: record, warnings } = recorder('ghs_test')
    expect(await deploy(record, 'v2', 'failure')).toBeUndefined()
    expect(await deploy(record, 'v1', 'success')).toBeUndefined()
    expect(record.enabled).toBe(false)
    expect(api.requests).toHaveLength(1)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/could not be reached/)
  })

  it('ignores finish for a deployment that was never created', async () => {
    const { recorder: record, warnings } = recorder('ghs_test')
    await record.finish(undefined, 'success', { logUrl: RUN_URL })
    expect(api.requests).toEqual([])
    expect(warnings).toEqual([])
  })
})
