import { describe, expect, it } from '@jest/globals'
import { formatDuration, parseDuration } from '../src/config/duration.js'
import {
  checkDockerHost,
  checkEnvName,
  checkHeaderName,
  checkHeaderValue,
  checkHttpUrl,
  checkImage,
  checkLabelKey,
  checkName,
  checkNetwork,
  checkPortMapping,
  checkRestartPolicy,
  checkServiceName,
  checkTag,
  checkText,
  checkVolume,
  MAX_NAME_LENGTH,
  mountDestination,
  publishedHostPorts,
  registryHost
} from '../src/config/grammar.js'

const valid = (check: (value: string) => string | undefined, values: string[]): void => {
  for (const value of values) expect([value, check(value)]).toEqual([value, undefined])
}
const invalid = (check: (value: string) => string | undefined, values: string[]): void => {
  for (const value of values) expect([value, check(value)]).toEqual([value, expect.stringMatching(/^expected /)])
}

/** Values that must never pass a check whose result reaches docker's argv as a word of its own. */
const HOSTILE = ['--privileged', '-v=/:/host', 'a\nb', 'a\rb', 'a\u0000b', 'a\u202eb', 'x;rm -rf /', '$(id)', '`id`', 'a b', '']

describe('checkTag', () => {
  it('accepts docker tags', () => valid(checkTag, ['v1.2.3', 'latest', '_x', 'a'.repeat(128), '0123456789abcdef0123456789abcdef01234567', 'A-b_c.d']))
  it('rejects hostile and malformed tags', () => invalid(checkTag, [...HOSTILE, '.hidden', 'a'.repeat(129), 'v1/2', 'v1:2', 'tag@sha']))
  it('explains a leading dash', () => expect(checkTag('--privileged')).toMatch(/does not start with "-"/))
})

describe('checkName', () => {
  it('accepts container names', () => valid(checkName, ['web', 'web-staging', 'a1', 'web_1.blue', 'x'.repeat(MAX_NAME_LENGTH)]))
  it('rejects hostile, short and long names', () => invalid(checkName, [...HOSTILE, 'w', '_web', '.web', 'web/1', 'x'.repeat(MAX_NAME_LENGTH + 1)]))
  it('leaves room for the -deploy-lock suffix within 63 characters', () => expect(MAX_NAME_LENGTH + '-deploy-lock'.length).toBe(63))
  it('is stricter for swarm services', () => {
    valid(checkServiceName, ['web', 'web-staging', 'web_1'])
    invalid(checkServiceName, ['web.blue', 'web-', '-web', 'w'])
  })
})

describe('checkImage and registryHost', () => {
  it('accepts repositories', () =>
    valid(checkImage, ['nginx', 'library/nginx', 'acme/web', 'registry.example.com/acme/web', 'localhost:5000/web', 'localhost/web', '127.0.0.1:5000/a/b/c', '[::1]:5000/web', 'Registry.Example.com/web', 'ghcr.io/acme/web-app__x', 'a.b-c']))
  it('rejects tags, digests, upper case paths and hostile values', () =>
    invalid(checkImage, [...HOSTILE, 'nginx:latest', 'acme/web:v1', 'acme/web@sha256:abc', 'acme/Web', 'acme//web', 'acme/-web', 'acme/web-', 'reg.example.com:99999/web', '-reg.example.com/web', 'a'.repeat(256)]))
  it('says to use the tag input when a tag is given', () => expect(checkImage('acme/web:v1')).toMatch(/without a tag/))
  it('finds the registry host, undefined for Docker Hub', () => {
    expect(registryHost('registry.example.com/acme/web')).toBe('registry.example.com')
    expect(registryHost('localhost:5000/web')).toBe('localhost:5000')
    expect(registryHost('ghcr.io/acme/web')).toBe('ghcr.io')
    expect(registryHost('acme/web')).toBeUndefined()
    expect(registryHost('nginx')).toBeUndefined()
    expect(registryHost('docker.io/library/nginx')).toBeUndefined()
    expect(registryHost('index.docker.io/acme/web')).toBeUndefined()
  })
})

describe('checkEnvName, checkLabelKey, checkNetwork, checkRestartPolicy', () => {
  it('env names', () => {
    valid(checkEnvName, ['A', '_x', 'NODE_ENV', 'a1'])
    invalid(checkEnvName, ['1A', 'A-B', 'A B', 'A=B', '', 'A\nB', '-A'])
  })
  it('label keys', () => {
    valid(checkLabelKey, ['team', 'com.example.team', 'a', 'org/x-y'])
    invalid(checkLabelKey, ['-team', 'team.', 'a=b', 'a b', '', 'a\nb'])
  })
  it('networks', () => {
    valid(checkNetwork, ['host', 'bridge', 'my_net-1.a'])
    invalid(checkNetwork, ['--network=host', '', 'a b', 'a/b', 'a\nb'])
  })
  it('restart policies', () => {
    valid(checkRestartPolicy, ['no', 'always', 'unless-stopped', 'on-failure', 'on-failure:3'])
    invalid(checkRestartPolicy, ['never', 'on-failure:0', 'on-failure:-1', 'on-failure:x', 'always\n', '--restart=always'])
  })
})

describe('checkPortMapping', () => {
  it('accepts docker -p forms', () =>
    valid(checkPortMapping, ['80', '8080:80', '127.0.0.1:8080:80', '127.0.0.1::80', '53:53/udp', '9000-9002:9000-9002', '8000-8010:80', '[::1]:8080:80', '1:65535', '80/sctp']))
  it('rejects port 0, port 70000 and malformed mappings', () =>
    invalid(checkPortMapping, [...HOSTILE, '0', '0:80', '8080:0', '70000', '70000:80', '8080:70000', ':80', '8080:80/http', '9000-9002:9000-9001', '9002-9000:80', 'localhost:8080:80', '1.2.3.4:5:6:7', '8080:80:90', '08080:80x', '+80']))
  it('names the bad part', () => expect(checkPortMapping('70000:80')).toMatch(/"70000" is not a port from 1 to 65535/))
})

describe('checkVolume', () => {
  it('accepts named volumes and bind mounts', () =>
    valid(checkVolume, ['data:/var/lib/app', '/srv/data:/data', '/srv/data:/data:ro', 'data:/data:ro,z', '/:/host']))
  it('rejects malformed and hostile volumes', () =>
    invalid(checkVolume, [...HOSTILE, '/data', 'data', 'data:relative', 'd:/x', '../x:/data', '/a/../b:/data', 'data:/data:bogus', '/a,b:/data', '/a:/b:ro:rw', 'data:/x"y']))
  it('rejects the container root as a target, however it is spelled, as docker does', () => {
    invalid(checkVolume, ['data:/', '/srv:/:ro', 'data:/.', 'data://', 'data:/./', 'data:/\\'])
    expect(checkVolume('data:/')).toMatch(/must be a directory below "\/" \(docker refuses to mount over the container's root\)$/)
  })
})

describe('mountDestination', () => {
  it("cleans a container path like Go's path.Clean, which docker compares mount points with", () => {
    expect(mountDestination('/data')).toBe('/data')
    expect(mountDestination('/data/')).toBe('/data')
    expect(mountDestination('/var/./lib//app/.')).toBe('/var/lib/app')
    expect(mountDestination('/a/b/../c')).toBe('/a/c')
    expect(mountDestination('//')).toBe('/')
    expect(mountDestination('/..')).toBe('/')
  })
})

describe('publishedHostPorts', () => {
  it('gives the address, protocol and host port range of a mapping', () => {
    expect(publishedHostPorts('8080:80')).toEqual({ protocol: 'tcp', ports: { from: 8080, to: 8080 } })
    expect(publishedHostPorts('127.0.0.1:8000-8002:8000-8002/udp')).toEqual({ address: '127.0.0.1', protocol: 'udp', ports: { from: 8000, to: 8002 } })
    expect(publishedHostPorts('[::1]:8080:80/sctp')).toEqual({ address: '::1', protocol: 'sctp', ports: { from: 8080, to: 8080 } })
    expect(publishedHostPorts('8000-8000:80')).toEqual({ protocol: 'tcp', ports: { from: 8000, to: 8000 } })
  })
  it('has no host ports where docker picks one', () => {
    expect(publishedHostPorts('80')).toEqual({ protocol: 'tcp' })
    expect(publishedHostPorts('127.0.0.1::80')).toEqual({ address: '127.0.0.1', protocol: 'tcp' })
    expect(publishedHostPorts('8000-8010:80')).toEqual({ protocol: 'tcp' })
  })
  it('is undefined for an invalid mapping', () => {
    for (const value of ['0:80', '8080:80/http', '9000-9002:9000-9001', '']) expect(publishedHostPorts(value)).toBeUndefined()
  })
})

describe('checkDockerHost', () => {
  it('accepts ssh, tcp and unix endpoints', () =>
    valid(checkDockerHost, ['ssh://deploy@web1.example.com', 'ssh://deploy@web1.example.com:2222', 'ssh://web1', 'tcp://10.0.0.5:2376', 'tcp://[::1]:2375', 'unix:///var/run/docker.sock']))
  it('rejects other schemes, option injection and malformed hosts', () =>
    invalid(checkDockerHost, [...HOSTILE, 'http://x:1', 'ssh://-oProxyCommand=id@host', 'ssh://user@-oProxyCommand=id', 'ssh://user@host:0', 'ssh://user@host/path', 'tcp://host', 'tcp://user@host:2375', 'unix://relative.sock', 'ssh://us er@host', 'ssh://user@host:22\n']))
})

describe('URLs, headers and free text', () => {
  it('URLs', () => {
    valid((value) => checkHttpUrl(value, true), ['http://127.0.0.1:8080/health', 'https://{host}:8443/health', 'http://{host}/'])
    invalid((value) => checkHttpUrl(value), ['ftp://x', 'http://{host}/', 'not a url', 'http://a b', 'http://user:pw@host/', 'http://x/\nHost: y', ''])
  })
  it('headers', () => {
    valid(checkHeaderName, ['Host', 'X-Request-Id'])
    invalid(checkHeaderName, ['Bad Header', 'X:Y', '', 'X\nY'])
    expect(checkHeaderValue('web.example.com')).toBeUndefined()
    expect(checkHeaderValue('a\r\nInjected: 1')).toMatch(/^expected/)
  })
  it('free text keeps shell metacharacters (no shell ever sees it) but not line breaks', () => {
    expect(checkText('a;b && $(id) `x` | > < *')).toBeUndefined()
    expect(checkText('--flag=value')).toBeUndefined()
    expect(checkText('line1\nline2')).toMatch(/container.secrets/)
    expect(checkText('x'.repeat(5000))).toMatch(/^expected/)
  })
})

describe('parseDuration', () => {
  it('parses ms, s and m', () => {
    expect(parseDuration('500ms')).toEqual({ ok: true, ms: 500 })
    expect(parseDuration('2s')).toEqual({ ok: true, ms: 2000 })
    expect(parseDuration('1m')).toEqual({ ok: true, ms: 60_000 })
    expect(parseDuration('1.5s')).toEqual({ ok: true, ms: 1500 })
    expect(parseDuration('1440m')).toEqual({ ok: true, ms: 86_400_000 })
    expect(parseDuration('0s', { allowZero: true })).toEqual({ ok: true, ms: 0 })
  })
  it.each([
    ['fast', /^expected a duration such as 500ms, 2s or 1m$/],
    ['-5s', /not a negative one/],
    ['0s', /greater than zero/],
    ['1441m', /at most 24h|at most 1440m/],
    ['99999999999999999999m', /at most/],
    ['1h', /write hours as minutes/],
    ['10', /unit is missing/],
    ['0.5ms', /whole milliseconds/],
    ['2 s', /^expected a duration/],
    ['2S', /^expected a duration/]
  ])('rejects %j', (text, message) => {
    const result = parseDuration(text)
    expect(result.ok).toBe(false)
    if (!result.ok) expect(result.expected).toMatch(message)
  })
  it('asks for a unit when given a bare number', () => {
    const result = parseDuration(5)
    expect(result).toEqual({ ok: false, expected: expect.stringContaining('e.g. 5s') })
  })
  it('formats in the largest unit that divides evenly', () => {
    expect(formatDuration(86_400_000)).toBe('1440m')
    expect(formatDuration(1500)).toBe('1500ms')
    expect(formatDuration(90_000)).toBe('90s')
    expect(formatDuration(0)).toBe('0s')
  })
})
