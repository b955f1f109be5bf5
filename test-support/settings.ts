/**
 * One DeploySettings for in-process tests, as `resolveSettings` would build it from a small
 * config, with fast health checks; each test overrides what it is about.
 */
import type { DeploySettings } from '../src/settings.js'

export function testSettings(overrides: Partial<DeploySettings> = {}): DeploySettings {
  return {
    command: 'deploy',
    environment: 'production',
    dryRun: false,
    image: '127.0.0.1:5999/acme/web',
    tag: 'v2',
    name: 'web',
    strategy: 'replace',
    container: { ports: [], env: {}, secrets: [], volumes: [], labels: {}, init: true, network: 'host' },
    health: { expectStatus: [200], headers: {}, intervalMs: 20, timeoutMs: 200, deadlineMs: 2_000, healthyThreshold: 1, watchMs: 0 },
    rollback: { onFailure: true, to: { kind: 'previous' } },
    hooks: { preDeploy: [] },
    lock: { timeoutMs: 1_000 },
    swarm: {},
    hosts: [undefined],
    rollout: { parallel: 1, canary: false },
    retain: 5,
    run: { repository: 'acme/web', sha: 'abc', ref: 'refs/heads/main', actor: 'octocat', runUrl: 'https://github.com/acme/web/actions/runs/42', apiUrl: 'http://127.0.0.1:9', workspace: '/tmp' },
    ...overrides
  }
}
