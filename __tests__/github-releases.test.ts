import { describe, expect, it } from '@jest/globals'
import type { GitHubRelease } from '../src/github/client.js'
import { findRelease, highestRelease, parseVersionTag, releaseBelow, rollbackCandidates, sameVersion } from '../src/github/releases.js'

let nextId = 1

/** A release as the API returns it; `published` is a day of January 2024, undefined for a draft. */
function release(tag: string, published: number | undefined, kind: 'stable' | 'draft' | 'prerelease' = 'stable'): GitHubRelease {
  const day = (n: number): string => `2024-01-${String(n).padStart(2, '0')}T12:00:00Z`
  return {
    id: nextId++,
    tag_name: tag,
    draft: kind === 'draft',
    prerelease: kind === 'prerelease',
    published_at: kind === 'draft' || published === undefined ? null : day(published),
    // Created long before publication, in the opposite order, so creation order never decides.
    created_at: day(30 - (published ?? 0))
  }
}

const tags = (releases: readonly GitHubRelease[]): string[] => releases.map(r => r.tag_name)

// v1.0.5 is a backport, published after v1.1.0: by date it would look like the newest.
const BACKPORT = [release('v1.0.0', 1), release('v1.1.0', 2), release('v1.2.0', 3), release('v1.0.5', 4)]

describe('parseVersionTag and sameVersion', () => {
  it('read tags with or without a leading v as the same version', () => {
    expect(parseVersionTag('v1.5.0')?.version).toBe('1.5.0')
    expect(parseVersionTag('1.5.0')?.version).toBe('1.5.0')
    expect(sameVersion('1.5.0', 'v1.5.0')).toBe(true)
    expect(sameVersion('v1.5.0', 'v1.5.1')).toBe(false)
  })

  it('read short release tags as versions: v1 is 1.0.0, 1.2 is 1.2.0, v4-rc1 a prerelease of 4.0.0', () => {
    expect(parseVersionTag('v1')?.version).toBe('1.0.0')
    expect(parseVersionTag('1.2')?.version).toBe('1.2.0')
    expect(parseVersionTag('v4-rc1')?.version).toBe('4.0.0-rc1')
    expect(sameVersion('v1', '1.0.0')).toBe(true)
  })

  it('refuse tags that are no version instead of coercing them', () => {
    for (const tag of ['latest', 'sha-1234abc', 'v01', '1.2.3.4', 'nightly-42', 'v', '']) expect(parseVersionTag(tag)).toBeNull()
    expect(sameVersion('latest', 'latest')).toBe(false)
  })
})

describe('rollbackCandidates', () => {
  it('orders by version, highest first, not by publication date nor API order', () => {
    expect(tags(rollbackCandidates(BACKPORT).map(c => c.release))).toEqual(['v1.2.0', 'v1.1.0', 'v1.0.5', 'v1.0.0'])
    expect(tags(rollbackCandidates([...BACKPORT].reverse()).map(c => c.release))).toEqual(['v1.2.0', 'v1.1.0', 'v1.0.5', 'v1.0.0'])
  })

  it('leaves out drafts, prereleases (flagged or by tag) and tags that are no version', () => {
    const releases = [
      release('v1.0.0', 1),
      release('v1.1.0-rc.1', 2, 'prerelease'),
      release('v1.1.0-beta.1', 3),
      release('v1.1.0', undefined, 'draft'),
      release('latest', 9),
      release('stable', 8)
    ]
    expect(tags(rollbackCandidates(releases).map(c => c.release))).toEqual(['v1.0.0'])
    expect(tags(rollbackCandidates(releases, { includePrereleases: true }).map(c => c.release))).toEqual(['v1.1.0-rc.1', 'v1.1.0-beta.1', 'v1.0.0'])
  })

  it('orders equal versions by publication, then id', () => {
    const early = release('1.5.0', 1)
    const late = release('v1.5.0', 2)
    expect(tags(rollbackCandidates([early, late]).map(c => c.release))).toEqual(['v1.5.0', '1.5.0'])
    expect(tags(rollbackCandidates([late, early]).map(c => c.release))).toEqual(['v1.5.0', '1.5.0'])
    const a = release('v2.0.0', 5)
    const b = release('2.0.0', 5)
    expect(tags(rollbackCandidates([a, b]).map(c => c.release))).toEqual(['2.0.0', 'v2.0.0'])
  })
})

describe('highestRelease', () => {
  it('picks the highest version, whatever was published last', () => {
    expect(highestRelease(BACKPORT)?.tag_name).toBe('v1.2.0')
  })

  it('skips the excluded version, with or without v', () => {
    expect(highestRelease(BACKPORT, { exclude: 'v1.2.0' })?.tag_name).toBe('v1.1.0')
    expect(highestRelease(BACKPORT, { exclude: '1.2.0' })?.tag_name).toBe('v1.1.0')
  })

  it('answers undefined when no release qualifies', () => {
    expect(highestRelease([])).toBeUndefined()
    expect(highestRelease([release('v1.0.0', 1)], { exclude: 'v1.0.0' })).toBeUndefined()
    expect(highestRelease([release('v1.0.0-rc.1', 1, 'prerelease'), release('v2.0.0', undefined, 'draft'), release('stable', 3)])).toBeUndefined()
  })
})

describe('releaseBelow', () => {
  it('gives the highest release strictly below the tag: the backport does not count as newer', () => {
    expect(releaseBelow(BACKPORT, 'v1.2.0')?.tag_name).toBe('v1.1.0')
    expect(releaseBelow(BACKPORT, 'v1.1.0')?.tag_name).toBe('v1.0.5')
    expect(releaseBelow(BACKPORT, 'v1.3.0')?.tag_name).toBe('v1.2.0')
  })

  it('reads the tag with or without v, released or not', () => {
    expect(releaseBelow(BACKPORT, '1.2.0')?.tag_name).toBe('v1.1.0')
    expect(releaseBelow(BACKPORT, '1.1.7')?.tag_name).toBe('v1.1.0')
  })

  it('places a prerelease tag below its release, and lets prereleases qualify only when asked', () => {
    const releases = [...BACKPORT, release('v1.3.0-rc.1', 5, 'prerelease'), release('v1.3.0-rc.2', 6, 'prerelease')]
    expect(releaseBelow(releases, 'v1.2.0-rc.1')?.tag_name).toBe('v1.1.0')
    expect(releaseBelow(releases, 'v1.3.0-rc.2')?.tag_name).toBe('v1.2.0')
    expect(releaseBelow(releases, 'v1.3.0-rc.2', { includePrereleases: true })?.tag_name).toBe('v1.3.0-rc.1')
  })

  it('answers undefined for a tag that is no version, or when nothing is lower', () => {
    expect(releaseBelow(BACKPORT, 'sha-1234abc')).toBeUndefined()
    expect(releaseBelow(BACKPORT, 'v1.0.0')).toBeUndefined()
    expect(releaseBelow([], 'v1.0.0')).toBeUndefined()
  })
})

describe('findRelease', () => {
  it('finds the release of a tag with or without v, among qualifying releases only', () => {
    const releases = [...BACKPORT, release('v1.3.0-rc.1', 5, 'prerelease'), release('v1.4.0', undefined, 'draft')]
    expect(findRelease(releases, '1.1.0')?.tag_name).toBe('v1.1.0')
    expect(findRelease(releases, 'v1.1.0')?.tag_name).toBe('v1.1.0')
    expect(findRelease(releases, 'v1.1.1')).toBeUndefined()
    expect(findRelease(releases, 'v1.3.0-rc.1')).toBeUndefined()
    expect(findRelease(releases, 'v1.3.0-rc.1', { includePrereleases: true })?.tag_name).toBe('v1.3.0-rc.1')
    expect(findRelease(releases, 'v1.4.0')).toBeUndefined()
    expect(findRelease(releases, 'sha-abc')).toBeUndefined()
  })
})
