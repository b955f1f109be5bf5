import { describe, expect, it } from '@jest/globals'
import { parseConfigText } from '../src/config/load.js'
import type { ConfigProblem } from '../src/config/problems.js'

const FILE = '.github/deploy.yml'

function parse(text: string, environment = 'production') {
  return parseConfigText(text, { file: FILE, environment })
}

/** Compact form for exact assertions: "line:column message". */
const at = (problem: ConfigProblem): string => `${problem.line ?? '-'}:${problem.column ?? '-'} ${problem.message}`

/** The problems of a config whose only key is `container.<key>`, written as a block list. */
function listProblems(key: 'volumes' | 'ports', items: string[], environment = 'production'): string[] {
  const text = `container:\n  ${key}:\n${items.map((item) => `    - "${item}"\n`).join('')}`
  return parse(text, environment).problems.map(at)
}

const VOLUME_ADVICE = 'docker would refuse to create the container. Give each volume its own container path.'
const PORT_ADVICE = 'docker would create the container but fail to start it (port is already allocated). Give each mapping its own host port, or bind them to different addresses.'

describe('two volumes on one container path', () => {
  it('is one error at the second volume, naming the first', () => {
    const { problems, config } = parse('container:\n  volumes:\n    - va:/data\n    - vb:/data\n')
    expect(config).toBeUndefined()
    expect(problems).toEqual([
      {
        file: FILE,
        line: 4,
        column: 7,
        title: 'Invalid container.volumes[1]',
        message: `container.volumes[1] "vb:/data" mounts on /data, which container.volumes[0] already mounts; ${VOLUME_ADVICE}`,
        severity: 'error'
      }
    ])
  })

  it('compares container paths the way docker does: trailing slashes, "." and doubled slashes do not count', () => {
    expect(listProblems('volumes', ['/srv/x:/data:ro', 'vb:/data/'])).toEqual([
      `4:7 container.volumes[1] "vb:/data/" mounts on /data, which container.volumes[0] already mounts; ${VOLUME_ADVICE}`
    ])
    expect(listProblems('volumes', ['va:/var/./lib//app', 'vb:/var/lib/app/.'])).toEqual([
      `4:7 container.volumes[1] "vb:/var/lib/app/." mounts on /var/lib/app, which container.volumes[0] already mounts; ${VOLUME_ADVICE}`
    ])
  })

  it('reports every further volume on the path against the first one', () => {
    expect(listProblems('volumes', ['va:/data', 'vb:/other', 'vc:/data/', '/srv/d:/data:ro'])).toEqual([
      `5:7 container.volumes[2] "vc:/data/" mounts on /data, which container.volumes[0] already mounts; ${VOLUME_ADVICE}`,
      `6:7 container.volumes[3] "/srv/d:/data:ro" mounts on /data, which container.volumes[0] already mounts; ${VOLUME_ADVICE}`
    ])
  })

  it('accepts distinct paths, nested paths and paths that differ only in case', () => {
    expect(listProblems('volumes', ['va:/data', 'vb:/data2', 'vc:/data/sub', 'vd:/Data', '/srv/data:/srv/data'])).toEqual([])
  })

  it('reports a volume written twice once, as a repeat', () => {
    expect(listProblems('volumes', ['va:/data', 'va:/data'])).toEqual(['4:7 container.volumes[1]: expected distinct volumes; this one is repeated, got "va:/data"'])
  })

  it('leaves an invalid volume to its own error', () => {
    expect(listProblems('volumes', ['va:/data:bogus', 'vb:/data'])).toEqual([
      '3:7 container.volumes[0]: expected a volume such as data:/var/lib/app or /srv/data:/data:ro; unknown option "bogus" (use ro, rw, z, Z, nocopy or a propagation mode), got "va:/data:bogus"'
    ])
  })
})

describe('a volume on the container root', () => {
  it.each([['data:/'], ['/srv/root:/:ro'], ['data:/.'], ['data://']])('rejects %j at its own position', (volume) => {
    expect(listProblems('volumes', ['ok:/data', volume])).toEqual([
      `4:7 container.volumes[1]: expected a volume such as data:/var/lib/app or /srv/data:/data:ro; the container path must be a directory below "/" (docker refuses to mount over the container's root), got ${JSON.stringify(volume)}`
    ])
  })
})

describe('one host port published twice', () => {
  it('is one error at the second mapping, naming the first', () => {
    const { problems, config } = parse('container:\n  ports: ["8080:80", "8080:81"]\n')
    expect(config).toBeUndefined()
    expect(problems).toEqual([
      {
        file: FILE,
        line: 2,
        column: 22,
        title: 'Invalid container.ports[1]',
        message: `container.ports[1] "8080:81" publishes host port 8080/tcp on all addresses, which container.ports[0] already publishes on all addresses; ${PORT_ADVICE}`,
        severity: 'error'
      }
    ])
  })

  it('on the same address', () => {
    expect(listProblems('ports', ['127.0.0.1:8080:80', '127.0.0.1:8080:81'])).toEqual([
      `4:7 container.ports[1] "127.0.0.1:8080:81" publishes host port 8080/tcp on 127.0.0.1, which container.ports[0] already publishes on 127.0.0.1; ${PORT_ADVICE}`
    ])
    expect(listProblems('ports', ['[0:0::1]:8080:80', '[::1]:8080:81'])).toEqual([
      `4:7 container.ports[1] "[::1]:8080:81" publishes host port 8080/tcp on [::1], which container.ports[0] already publishes on [0:0::1]; ${PORT_ADVICE}`
    ])
  })

  it('on all addresses and on one of them, in either order', () => {
    expect(listProblems('ports', ['8080:80', '127.0.0.1:8080:81'])).toEqual([
      `4:7 container.ports[1] "127.0.0.1:8080:81" publishes host port 8080/tcp on 127.0.0.1, which container.ports[0] already publishes on all addresses; ${PORT_ADVICE}`
    ])
    expect(listProblems('ports', ['127.0.0.1:8080:81', '8080:80'])).toEqual([
      `4:7 container.ports[1] "8080:80" publishes host port 8080/tcp on all addresses, which container.ports[0] already publishes on 127.0.0.1; ${PORT_ADVICE}`
    ])
    expect(listProblems('ports', ['[::1]:8080:81', '8080:80'])).toHaveLength(1)
  })

  it('on the unspecified address of a family and an address of that family', () => {
    expect(listProblems('ports', ['0.0.0.0:8080:80', '127.0.0.1:8080:81'])).toEqual([
      `4:7 container.ports[1] "127.0.0.1:8080:81" publishes host port 8080/tcp on 127.0.0.1, which container.ports[0] already publishes on 0.0.0.0; ${PORT_ADVICE}`
    ])
    expect(listProblems('ports', ['[::]:8080:80', '[fd00::5]:8080:81'])).toHaveLength(1)
    expect(listProblems('ports', ['[::ffff:127.0.0.1]:8080:80', '127.0.0.1:8080:81'])).toHaveLength(1)
  })

  it('accepts one port on different addresses, or of different families', () => {
    expect(listProblems('ports', ['127.0.0.1:8080:80', '127.0.0.2:8080:81', '[::1]:8080:82'])).toEqual([])
    expect(listProblems('ports', ['0.0.0.0:8080:80', '[::]:8080:81'])).toEqual([])
    expect(listProblems('ports', ['[::]:8080:80', '127.0.0.1:8080:81'])).toEqual([])
  })

  it('tells protocols apart: tcp and udp on one number do not clash', () => {
    expect(listProblems('ports', ['53:53/udp', '53:53', '53:53/sctp'])).toEqual([])
    expect(listProblems('ports', ['53:53/udp', '53:54/udp'])).toEqual([
      `4:7 container.ports[1] "53:54/udp" publishes host port 53/udp on all addresses, which container.ports[0] already publishes on all addresses; ${PORT_ADVICE}`
    ])
    expect(listProblems('ports', ['8080:80/tcp', '8080:81'])).toHaveLength(1)
  })

  it('expands ranges', () => {
    expect(listProblems('ports', ['8000-8002:8000-8002', '8001:9000'])).toEqual([
      `4:7 container.ports[1] "8001:9000" publishes host port 8001/tcp on all addresses, which container.ports[0] already publishes on all addresses; ${PORT_ADVICE}`
    ])
    expect(listProblems('ports', ['8002:80', '8000-8002:8000-8002'])).toEqual([
      `4:7 container.ports[1] "8000-8002:8000-8002" publishes host port 8002/tcp on all addresses, which container.ports[0] already publishes on all addresses; ${PORT_ADVICE}`
    ])
    expect(listProblems('ports', ['127.0.0.1:8000-8002:8000-8002', '8002-8004:9002-9004'])).toEqual([
      `4:7 container.ports[1] "8002-8004:9002-9004" publishes host port 8002/tcp on all addresses, which container.ports[0] already publishes on 127.0.0.1; ${PORT_ADVICE}`
    ])
    expect(listProblems('ports', ['8000-8002:8000-8002', '8003-8005:8003-8005'])).toEqual([])
  })

  it('leaves ports that docker picks alone: no host port, or a host range for one container port', () => {
    expect(listProblems('ports', ['80', '80/udp', '127.0.0.1::80', '127.0.0.1::81', '8000-8010:80', '8005:81', '8000-8010:82'])).toEqual([])
  })

  it('stays quick on a hostile list of full ranges on thousands of addresses', () => {
    const ports = Array.from({ length: 5000 }, (_, index) => `"127.0.${index >> 8}.${index & 0xff}:1-65535:1-65535"`)
    const started = Date.now()
    const { problems } = parse(`container:\n  ports: [${ports.join(', ')}, "8080:80"]\n`)
    // A guard against a quadratic blow-up (minutes), not a speed target: the machine may be busy.
    expect(Date.now() - started).toBeLessThan(15_000)
    expect(problems).toEqual([])
  })

  it('reports a mapping written twice once, as a repeat', () => {
    expect(listProblems('ports', ['127.0.0.1:8080:80', '127.0.0.1:8080:80'])).toEqual([
      '4:7 container.ports[1]: expected distinct port mappings; this one is repeated, got "127.0.0.1:8080:80"'
    ])
  })
})

describe('clashes and environments', () => {
  const text = `image: acme/web
container:
  ports: ["8080:80"]
  volumes: ["va:/data"]
environments:
  staging:
    container:
      ports: ["8080:81"]
      volumes: ["vb:/data"]
  broken:
    container:
      ports: ["9090:80", "9090:81"]
`

  it('checks what each environment runs: a block list replaces the top-level one, so they never clash', () => {
    const valid = text.replace(/ {2}broken:\n(?: {4}.*\n)*/, '')
    for (const environment of ['staging', 'production']) expect(parse(valid, environment).problems).toEqual([])
    expect(parse(valid, 'staging').config?.container).toEqual({ ports: ['8080:81'], volumes: ['vb:/data'] })
  })

  it('points a clash inside an environment block at its own line, whichever environment is selected', () => {
    for (const environment of ['staging', 'production', 'broken']) {
      const { problems, config } = parse(text, environment)
      expect(config).toBeUndefined()
      expect(problems).toEqual([
        {
          file: FILE,
          line: 12,
          column: 26,
          title: 'Invalid environments.broken.container.ports[1]',
          message: `environments.broken.container.ports[1] "9090:81" publishes host port 9090/tcp on all addresses, which environments.broken.container.ports[0] already publishes on all addresses; ${PORT_ADVICE}`,
          severity: 'error'
        }
      ])
    }
  })

  it('is collected with the other problems of the file, in line order', () => {
    const { problems } = parse('health:\n  interval: fast\ncontainer:\n  volumes: ["va:/x", "vb:/x/"]\n  ports: ["1:1", "1:2"]\nname: -x\n')
    expect(problems.map((problem) => `${problem.line}:${problem.column} ${problem.title}`)).toEqual([
      '2:13 Invalid health.interval',
      '4:22 Invalid container.volumes[1]',
      '5:18 Invalid container.ports[1]',
      '6:7 Invalid name'
    ])
  })
})
