import { describe, expect, it } from '@jest/globals'
import type { GitHubRelease } from '../src/github/client.js'
import { newestReleaseTag, releaseOlderThan, stableReleasesNewestFirst } from '../src/github/releases.js'

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

describe('newestReleaseTag', () => {
  it('picks the newest by publication time, whatever order the API gave', () => {
    const releases = [release('v1', 1), release('v3', 3), release('v2', 2)]
    expect(newestReleaseTag(releases)).toBe('v3')
    expect(newestReleaseTag([...releases].reverse())).toBe('v3')
  })

  it('skips drafts, prereleases and the excluded tag', () => {
    const releases = [release('v1', 1), release('v2', 2), release('v3-rc', 3, 'prerelease'), release('v4', undefined, 'draft')]
    expect(newestReleaseTag(releases)).toBe('v2')
    expect(newestReleaseTag(releases, { exclude: 'v2' })).toBe('v1')
  })

  it('answers undefined when no release qualifies', () => {
    expect(newestReleaseTag([])).toBeUndefined()
    expect(newestReleaseTag([release('v1', 1)], { exclude: 'v1' })).toBeUndefined()
    expect(newestReleaseTag([release('v1-rc', 1, 'prerelease'), release('v2', undefined, 'draft')])).toBeUndefined()
  })

  it('orders releases published at the same moment by creation, then id', () => {
    const a = { ...release('a', 5), created_at: '2024-01-01T00:00:00Z' }
    const b = { ...release('b', 5), created_at: '2024-01-02T00:00:00Z' }
    expect(stableReleasesNewestFirst([a, b]).map(r => r.tag_name)).toEqual(['b', 'a'])
    expect(stableReleasesNewestFirst([b, a]).map(r => r.tag_name)).toEqual(['b', 'a'])
  })
})

describe('releaseOlderThan', () => {
  const releases = [release('v1', 1), release('v2', 2), release('v3', 3), release('v4-rc', 4, 'prerelease'), release('v5', 5)]

  it('when the running tag is a release, gives the next older stable one', () => {
    expect(releaseOlderThan(releases, 'v3')).toBe('v2')
    expect(releaseOlderThan(releases, 'v5')).toBe('v3')
    expect(releaseOlderThan(releases, 'v2')).toBe('v1')
  })

  it('when the running tag is a prerelease, gives the stable release published before it', () => {
    expect(releaseOlderThan(releases, 'v4-rc')).toBe('v3')
  })

  it('when the running tag is no release, gives the newest stable release', () => {
    expect(releaseOlderThan(releases, 'sha-1234abc')).toBe('v5')
  })

  it('answers undefined when the running tag is the oldest release', () => {
    expect(releaseOlderThan(releases, 'v1')).toBeUndefined()
    expect(releaseOlderThan([release('v1', 1)], 'v1')).toBeUndefined()
    expect(releaseOlderThan([], 'v1')).toBeUndefined()
  })
})
