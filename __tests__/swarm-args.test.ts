import { describe, expect, it } from '@jest/globals'
import {
  buildServiceCreateArgv,
  buildServiceUpdateArgv,
  goDuration,
  portToPublish,
  restartArgs,
  shellWords,
  volumeToMount,
  type ServiceSpec
} from '../src/docker/service-args.js'
import type { ServiceInfo } from '../src/docker/service-client.js'
import type { ContainerSettings } from '../src/settings.js'

const container: ContainerSettings = {
  ports: ['8080:80', '53:53/udp'],
  env: { NODE_ENV: 'production', A_FIRST: 'x y; $(rm -rf /)' },
  secrets: ['DATABASE_URL'],
  volumes: ['data:/var/lib/app', '/srv/config:/config:ro'],
  network: 'host',
  restart: 'on-failure:3',
  command: ['serve', '--port', '8080'],
  labels: { team: 'web' },
  init: true,
  stopTimeoutMs: 2500
}

const spec: ServiceSpec = {
  name: 'web',
  imageRef: 'registry.example.com/acme/web:v2',
  container,
  swarm: { replicas: 3, parallelism: 1, delayMs: 2000, order: 'stop-first', monitorMs: 1500 },
  labels: { 'deploy-action.tag': 'v2', 'deploy-action.commit': 'abc' },
  failureAction: 'rollback'
}

const running: ServiceInfo = {
  id: 'svc1',
  name: 'web',
  labels: { 'deploy-action.tag': 'v1', 'deploy-action.digest': 'sha256:old', 'com.example.owner': 'ops' },
  image: 'registry.example.com/acme/web:v1@sha256:old',
  env: ['NODE_ENV=staging', 'OLD_FLAG=1', 'DATABASE_URL=postgres://old'],
  containerLabels: { team: 'web', legacy: 'yes' },
  mountTargets: ['/var/lib/app', '/tmp/cache'],
  ports: [
    { protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' },
    { protocol: 'tcp', targetPort: 9000, publishedPort: 9000, publishMode: 'ingress' }
  ],
  args: ['serve', '--port', '8080'],
  replicas: 3,
  global: false,
  rollout: { parallelism: 1, monitorMs: 5000, failureAction: 'pause' },
  updateStatus: { state: 'completed', message: 'update completed', startedAt: '2026-01-01T00:00:00Z' }
}

describe('docker service create argv', () => {
  it('maps every container setting to a service flag, each value its own argument', () => {
    expect(buildServiceCreateArgv(spec)).toEqual([
      'service', 'create', '--detach', '--quiet', '--with-registry-auth', '--name', 'web',
      '--network', 'host', '--init',
      '--env', 'A_FIRST=x y; $(rm -rf /)', '--env', 'NODE_ENV=production',
      '--env', 'DATABASE_URL',
      '--mount', 'type=volume,source=data,target=/var/lib/app',
      '--mount', 'type=bind,source=/srv/config,target=/config,readonly',
      '--publish', '8080:80/tcp', '--publish', '53:53/udp',
      '--container-label', 'team=web',
      '--label', 'deploy-action.commit=abc', '--label', 'deploy-action.tag=v2',
      '--replicas', '3', '--update-parallelism', '1', '--update-delay', '2000ms', '--update-order', 'stop-first', '--update-monitor', '1500ms',
      '--update-failure-action', 'rollback',
      '--stop-grace-period', '2500ms',
      '--restart-condition', 'on-failure', '--restart-max-attempts', '3',
      'registry.example.com/acme/web:v2', 'serve', '--port', '8080'
    ])
  })

  it('always tells Swarm what to do with a failed update, and leaves unset settings to Swarm', () => {
    const minimal: ServiceSpec = {
      name: 'web',
      imageRef: 'acme/web:v1',
      container: { ports: [], env: {}, secrets: [], volumes: [], labels: {}, init: false },
      swarm: {},
      labels: { 'deploy-action.tag': 'v1' },
      failureAction: 'rollback'
    }
    expect(buildServiceCreateArgv(minimal)).toEqual([
      'service', 'create', '--detach', '--quiet', '--with-registry-auth', '--name', 'web',
      '--label', 'deploy-action.tag=v1', '--update-failure-action', 'rollback', 'acme/web:v1'
    ])
    // rollback.on-failure: false: Swarm pauses on a failed task, and the failed version stays for inspection.
    const paused = buildServiceUpdateArgv({ ...minimal, failureAction: 'pause' }, running)
    expect(paused.slice(paused.indexOf('--update-failure-action'), paused.indexOf('--update-failure-action') + 2)).toEqual(['--update-failure-action', 'pause'])
    // Replicas, parallelism, delay, order, monitor and stop grace the config leaves out stay as the service has them.
    expect(paused.filter((word) => /^--(replicas|update-parallelism|update-delay|update-order|update-monitor|stop-grace-period)$/.test(word))).toEqual([])
  })

  it('names secrets only; their values stay out of argv', () => {
    const argv = buildServiceCreateArgv(spec)
    expect(argv).toContain('DATABASE_URL')
    expect(argv.join(' ')).not.toMatch(/DATABASE_URL=/)
  })
})

describe('docker service update argv', () => {
  it('adds what the config lists and removes what the service holds beyond it', () => {
    expect(buildServiceUpdateArgv(spec, running)).toEqual([
      'service', 'update', '--detach', '--quiet', '--with-registry-auth', '--force', '--image', 'registry.example.com/acme/web:v2',
      '--init=true',
      '--env-rm', 'OLD_FLAG',
      '--env-add', 'A_FIRST=x y; $(rm -rf /)', '--env-add', 'NODE_ENV=production', '--env-add', 'DATABASE_URL',
      '--mount-rm', '/tmp/cache',
      '--mount-add', 'type=volume,source=data,target=/var/lib/app',
      '--mount-add', 'type=bind,source=/srv/config,target=/config,readonly',
      '--publish-rm', '9000/tcp',
      '--publish-add', '8080:80/tcp', '--publish-add', '53:53/udp',
      '--container-label-rm', 'legacy',
      '--container-label-add', 'team=web',
      // The digest of v1 must not describe v2; labels the action does not own stay.
      '--label-rm', 'deploy-action.digest',
      '--label-add', 'deploy-action.commit=abc', '--label-add', 'deploy-action.tag=v2',
      '--replicas', '3', '--update-parallelism', '1', '--update-delay', '2000ms', '--update-order', 'stop-first', '--update-monitor', '1500ms',
      '--update-failure-action', 'rollback',
      '--stop-grace-period', '2500ms',
      '--restart-condition', 'on-failure', '--restart-max-attempts', '3',
      'web'
    ])
  })

  it('sets --args only when the command changed, quoted so docker splits it back into the same words', () => {
    expect(buildServiceUpdateArgv(spec, running)).not.toContain('--args')
    const changed = buildServiceUpdateArgv({ ...spec, container: { ...container, command: ['sh', '-c', 'echo "it\'s $HOME" a\\b'] } }, running)
    expect(changed[changed.indexOf('--args') + 1]).toBe('"sh" "-c" "echo \\"it\'s $HOME\\" a\\\\b"')
    const cleared = buildServiceUpdateArgv({ ...spec, container: { ...container, command: undefined } }, running)
    expect(cleared[cleared.indexOf('--args') + 1]).toBe('')
  })

  it('turns --init off explicitly, since an update keeps what it is not told', () => {
    expect(buildServiceUpdateArgv({ ...spec, container: { ...container, init: false } }, running)).toContain('--init=false')
  })
})

describe('service flag values', () => {
  it('maps -v values to --mount values', () => {
    expect(volumeToMount('data:/data')).toBe('type=volume,source=data,target=/data')
    expect(volumeToMount('data:/data:ro,nocopy')).toBe('type=volume,source=data,target=/data,readonly,volume-nocopy')
    expect(volumeToMount('/srv:/srv:rw,rshared,cached')).toBe('type=bind,source=/srv,target=/srv,bind-propagation=rshared,consistency=cached')
    expect(() => volumeToMount('/srv:/srv:z')).toThrow(/"z" of \/srv:\/srv:z has no equivalent/)
  })

  it('maps -p values to --publish values and refuses a bind address, which Swarm cannot express', () => {
    expect(portToPublish('80')).toBe('80/tcp')
    expect(portToPublish('8080:80')).toBe('8080:80/tcp')
    expect(portToPublish('8000-8001:80-81/udp')).toBe('8000-8001:80-81/udp')
    expect(() => portToPublish('127.0.0.1:8080:80')).toThrow(/binds one address/)
    expect(() => portToPublish('[::1]:8080:80')).toThrow(/binds one address/)
  })

  it('maps docker run restart policies to Swarm restart conditions', () => {
    expect(restartArgs('no')).toEqual(['--restart-condition', 'none', '--restart-max-attempts', '0'])
    expect(restartArgs('always')).toEqual(['--restart-condition', 'any', '--restart-max-attempts', '0'])
    expect(restartArgs('unless-stopped')).toEqual(['--restart-condition', 'any', '--restart-max-attempts', '0'])
    expect(restartArgs('on-failure:5')).toEqual(['--restart-condition', 'on-failure', '--restart-max-attempts', '5'])
  })

  it('writes durations and argv the way the docker CLI parses them', () => {
    expect(goDuration(500)).toBe('500ms')
    expect(goDuration(60_000)).toBe('60000ms')
    expect(shellWords(['a b', '"', '\\'])).toBe('"a b" "\\"" "\\\\"')
    expect(shellWords([])).toBe('')
  })
})
