import { describe, expect, it } from '@jest/globals'
import { readFileSync } from 'node:fs'
import semver from 'semver'

interface LockedPackage {
  version?: string
  engines?: { node?: string } | string[]
}

const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as {
  engines: { node: string }
  devDependencies: Record<string, string>
  overrides?: Record<string, unknown>
}
const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as { packages: Record<string, LockedPackage> }

/** The first release of each Node major line that `engines.node` admits, e.g. 20.19.0 for `^20.19.0`. */
function lowestAdmitted(range: string): string[] {
  const lowest: string[] = []
  for (let major = 18; major <= 30; major++) {
    for (let minor = 0; minor <= 40; minor++) {
      const version = `${major}.${minor}.0`
      if (semver.satisfies(version, range)) {
        lowest.push(version)
        break
      }
    }
  }
  return lowest
}

describe('package.json engines', () => {
  const admitted = lowestAdmitted(manifest.engines.node)

  it('admits Node 20 (where the tests also run) and Node 24 (what the action runs on, and CI)', () => {
    expect(admitted.map((version) => semver.major(version))).toEqual(expect.arrayContaining([20, 24]))
    // Types of the runtime the action runs on (action.yml: node24).
    expect(semver.minVersion(manifest.devDependencies['@types/node'] ?? '')?.major).toBe(24)
  })

  it('asks no more than every locked package accepts, so npm ci prints no EBADENGINE on any admitted Node', () => {
    const refused = admitted.flatMap((node) =>
      Object.entries(lock.packages).flatMap(([path, locked]) => {
        const wanted = Array.isArray(locked.engines) ? undefined : locked.engines?.node
        return path && wanted && !semver.satisfies(node, wanted) ? [`${path}@${locked.version ?? '?'} wants node ${wanted}, not ${node}`] : []
      })
    )
    expect(refused).toEqual([])
  })

  it('overrides content-type only while @octokit/request uses no more of it than 2.x has', () => {
    // content-type 3 is 2.1 as an ESM-only package with engines node >=22; @octokit/request 10.0.15+
    // asks for ^3. Bundled, both are the same code. Drop the override once the range moves on.
    expect(manifest.overrides).toEqual({ '@octokit/request': { 'content-type': '^2.1.0' } })
    const request = readFileSync('node_modules/@octokit/request/dist-bundle/index.js', 'utf8')
    expect([...request.matchAll(/import\s*\{([^}]*)\}\s*from\s*["']content-type["']/g)].map((match) => match[1]?.trim())).toEqual(['parse'])
    expect(lock.packages['node_modules/@octokit/request/node_modules/content-type']?.version).toMatch(/^2\./)
  })
})
