import { describe, expect, it, jest } from '@jest/globals'
import { GitHubApiError, type GitHubRelease } from '../src/github/client.js'
import { resolveManualRollbackTarget, resolveRollbackTarget, RollbackTargetError } from '../src/rollback-target.js'

let nextId = 1
function release(tag: string, day: number, kind: 'stable' | 'draft' | 'prerelease' = 'stable'): GitHubRelease {
  const at = `2024-02-${String(day).padStart(2, '0')}T00:00:00Z`
  return { id: nextId++, tag_name: tag, draft: kind === 'draft', prerelease: kind === 'prerelease', published_at: kind === 'draft' ? null : at, created_at: at }
}

const RELEASES = [release('v1.0.0', 1), release('v2.0.0', 2), release('v3.0.0', 3), release('v4.0.0-rc.1', 4, 'prerelease')]
const serve = (releases: GitHubRelease[]) => async (): Promise<GitHubRelease[]> => releases
const refuse = (error: unknown) => async (): Promise<GitHubRelease[]> => {
  throw error
}
/** What ran before, when it is no release: the fallback of `last-release`. */
const PREVIOUS = { tag: 'v2.1.0', digest: 'sha256:prev' }
const LAST_RELEASE = { kind: 'last-release' } as const

// v1.0.5 is a backport, published after v1.1.0; by date it looked like the newest release.
const BACKPORT = [release('v1.0.0', 1), release('v1.1.0', 2), release('v1.0.5', 3)]

describe('resolveRollbackTarget', () => {
  it('last-release: the highest stable release below the failed tag', async () => {
    await expect(resolveRollbackTarget({ setting: LAST_RELEASE, failedTag: 'v3.0.0', previous: PREVIOUS, releases: serve(RELEASES) })).resolves.toEqual({
      tag: 'v2.0.0',
      source: 'last-release'
    })
    await expect(resolveRollbackTarget({ setting: LAST_RELEASE, failedTag: 'v9.0.0', previous: PREVIOUS, releases: serve(RELEASES) })).resolves.toEqual({
      tag: 'v3.0.0',
      source: 'last-release'
    })
  })

  it('last-release with releases but no previous version (first deploy) still goes to the release', async () => {
    await expect(resolveRollbackTarget({ setting: LAST_RELEASE, failedTag: 'v3.0.0', releases: serve(RELEASES) })).resolves.toEqual({
      tag: 'v2.0.0',
      source: 'last-release'
    })
  })

  it('last-release goes by version, not publication date: a later backport is not the release before', async () => {
    await expect(resolveRollbackTarget({ setting: LAST_RELEASE, failedTag: 'v1.2.0', releases: serve(BACKPORT) })).resolves.toEqual({
      tag: 'v1.1.0',
      source: 'last-release'
    })
    await expect(resolveRollbackTarget({ setting: LAST_RELEASE, failedTag: 'v1.2.0', previous: { tag: 'sha-0ld' }, releases: serve(BACKPORT) })).resolves.toEqual({
      tag: 'v1.1.0',
      source: 'last-release'
    })
  })

  it('last-release never goes to a higher release than the failed one', async () => {
    const resolved = await resolveRollbackTarget({ setting: LAST_RELEASE, failedTag: 'v1.0.0', previous: PREVIOUS, releases: serve(BACKPORT) })
    expect(resolved).toMatchObject({ tag: 'v2.1.0', source: 'previous', warning: expect.stringMatching(/no stable release older than v1\.0\.0/) })
  })

  it('last-release matches tags with or without v, and answers in the image tags\' form', async () => {
    const releases = serve([release('v1.4.0', 1), release('v1.5.0', 2)])
    // The failed image is tagged without v: the release v1.5.0 is the failed version, and the target is written 1.4.0.
    await expect(resolveRollbackTarget({ setting: LAST_RELEASE, failedTag: '1.5.0', releases })).resolves.toEqual({ tag: '1.4.0', source: 'last-release' })
    await expect(resolveRollbackTarget({ setting: LAST_RELEASE, failedTag: '1.6.0', releases })).resolves.toEqual({ tag: '1.5.0', source: 'last-release' })
    // Any image tag without v (here the previous one, which is no release) makes the target bare.
    await expect(resolveRollbackTarget({ setting: LAST_RELEASE, failedTag: 'v1.6.0', previous: { tag: '1.5.1' }, releases })).resolves.toEqual({
      tag: '1.5.0',
      source: 'last-release'
    })
    // Images tagged with v, releases without: the target takes the v.
    const bare = serve([release('1.4.0', 1), release('1.5.0', 2)])
    await expect(resolveRollbackTarget({ setting: LAST_RELEASE, failedTag: 'v1.6.0', releases: bare })).resolves.toEqual({ tag: 'v1.5.0', source: 'last-release' })
  })

  it('last-release skips drafts and prereleases unless includePrereleases is set', async () => {
    const releases = serve([
      release('v1.0.0', 1),
      release('v1.1.0-rc.1', 2, 'prerelease'),
      release('v1.1.0', 3, 'draft'),
      // Not flagged on GitHub, but a prerelease by its tag.
      release('v1.1.1-beta.1', 4)
    ])
    await expect(resolveRollbackTarget({ setting: LAST_RELEASE, failedTag: 'v1.2.0', releases })).resolves.toEqual({ tag: 'v1.0.0', source: 'last-release' })
    await expect(resolveRollbackTarget({ setting: LAST_RELEASE, failedTag: 'v1.2.0', releases, includePrereleases: true })).resolves.toEqual({
      tag: 'v1.1.1-beta.1',
      source: 'last-release'
    })
    await expect(resolveRollbackTarget({ setting: LAST_RELEASE, failedTag: 'v1.1.1-beta.1', releases, includePrereleases: true })).resolves.toEqual({
      tag: 'v1.1.0-rc.1',
      source: 'last-release'
    })
  })

  it('last-release prefers the version that ran before when it is a release, with its digest', async () => {
    const releases = serve([...BACKPORT, release('v1.2.0', 4)])
    // v1.2.0 is the highest release below v1.3.0, but 1.1.0 (v1.1.0 without v) is what ran.
    await expect(
      resolveRollbackTarget({ setting: LAST_RELEASE, failedTag: 'v1.3.0', previous: { tag: '1.1.0', digest: 'sha256:kept' }, releases })
    ).resolves.toEqual({ tag: '1.1.0', source: 'previous', digest: 'sha256:kept' })
    // A failed downgrade goes back to the higher release that ran.
    await expect(resolveRollbackTarget({ setting: LAST_RELEASE, failedTag: 'v1.0.5', previous: { tag: 'v1.2.0' }, releases })).resolves.toEqual({
      tag: 'v1.2.0',
      source: 'previous'
    })
  })

  it('last-release does not prefer the previous version when it failed, is a prerelease or is no release', async () => {
    const releases = serve([...BACKPORT, release('v1.2.0', 4), release('v1.2.1-rc.1', 5, 'prerelease')])
    const from = (previous: string, failedTag = 'v1.3.0', includePrereleases = false) =>
      resolveRollbackTarget({ setting: LAST_RELEASE, failedTag, previous: { tag: previous, digest: 'sha256:x' }, releases, includePrereleases })
    await expect(from('v1.2.0', '1.2.0')).resolves.toEqual({ tag: '1.1.0', source: 'last-release' })
    await expect(from('v1.2.1-rc.1')).resolves.toEqual({ tag: 'v1.2.0', source: 'last-release' })
    await expect(from('v1.2.1-rc.1', 'v1.3.0', true)).resolves.toEqual({ tag: 'v1.2.1-rc.1', source: 'previous', digest: 'sha256:x' })
    await expect(from('v1.2.7')).resolves.toEqual({ tag: 'v1.2.0', source: 'last-release' })
  })

  it('last-release after a failed tag that is no version goes to the highest release, and says so', async () => {
    const resolved = await resolveRollbackTarget({ setting: LAST_RELEASE, failedTag: 'sha-abc123', previous: { tag: 'sha-0ld' }, releases: serve(BACKPORT) })
    expect(resolved).toMatchObject({ tag: 'v1.1.0', source: 'last-release' })
    expect(resolved?.warning).toMatch(/sha-abc123 is not a semantic version.*highest release, v1\.1\.0\.$/)
    // The previous version's form decides the tag's.
    await expect(resolveRollbackTarget({ setting: LAST_RELEASE, failedTag: 'sha-abc123', previous: { tag: '0.9.0' }, releases: serve(BACKPORT) })).resolves.toMatchObject({
      tag: '1.1.0',
      source: 'last-release'
    })
  })

  it('last-release ignores releases whose tag is no version, and names them when nothing else is left', async () => {
    const withLatest = serve([release('v1.0.0', 1), release('latest', 9)])
    await expect(resolveRollbackTarget({ setting: LAST_RELEASE, failedTag: 'v2.0.0', releases: withLatest })).resolves.toEqual({
      tag: 'v1.0.0',
      source: 'last-release'
    })
    const resolved = await resolveRollbackTarget({ setting: LAST_RELEASE, failedTag: 'v3.0.0', previous: PREVIOUS, releases: serve([release('stable', 1), release('nightly-42', 2)]) })
    expect(resolved).toMatchObject({ tag: 'v2.1.0', source: 'previous' })
    expect(resolved?.warning).toMatch(/no stable release older than v3\.0\.0; releases whose tag is no semantic version \(stable, nightly-42\) are not ordered\./)
  })

  const fallbacks: [string, () => Promise<GitHubRelease[]>, RegExp][] = [
    ['no token', refuse(new GitHubApiError('list releases', 'no-token', undefined, 'no github-token was given')), /no github-token was given/],
    [
      'an unreachable API',
      refuse(new GitHubApiError('list releases', 'unreachable', undefined, 'x', { cause: new Error('connect ECONNREFUSED 127.0.0.1:9') })),
      /could not be reached \(connect ECONNREFUSED 127\.0\.0\.1:9\)/
    ],
    ['an HTTP error', refuse(new GitHubApiError('list releases', 'http', 403, 'HTTP 403')), /answered HTTP 403 \(the token needs permissions: contents: read\)/],
    ['an HTTP 502', refuse(new GitHubApiError('list releases', 'http', 502, 'HTTP 502')), /answered HTTP 502\. /],
    ['an unexpected error', refuse(new Error('boom')), /could not be read \(boom\)/],
    ['no release but the failed one', serve([release('v3.0.0', 3), release('v4.0.0-rc.1', 4, 'prerelease')]), /no stable release older than v3\.0\.0\./],
    ['no release at all', serve([]), /no stable release older than v3\.0\.0\./],
    ['only higher releases', serve([release('v3.5.0', 3)]), /no stable release older than v3\.0\.0\./]
  ]

  it.each(fallbacks)('last-release falls back to the previous version on %s, and says why', async (_, releases, why) => {
    const resolved = await resolveRollbackTarget({ setting: LAST_RELEASE, failedTag: 'v3.0.0', previous: PREVIOUS, releases })
    expect(resolved).toMatchObject({ tag: 'v2.1.0', source: 'previous', digest: 'sha256:prev' })
    expect(resolved?.warning).toMatch(why)
    expect(resolved?.warning).toMatch(/Rolling back to the tag that ran before, v2\.1\.0\.$/)
  })

  it.each(fallbacks)('last-release with nothing before and %s: nothing to roll back to', async (_, releases) => {
    await expect(resolveRollbackTarget({ setting: LAST_RELEASE, failedTag: 'v3.0.0', releases })).resolves.toBeUndefined()
  })

  it('previous: the version that ran before, even with the same tag (a moved tag), and never asks GitHub', async () => {
    const releases = jest.fn(serve(RELEASES))
    await expect(resolveRollbackTarget({ setting: { kind: 'previous' }, failedTag: 'latest', previous: { tag: 'latest', digest: 'sha256:old' }, releases })).resolves.toEqual({
      tag: 'latest',
      source: 'previous',
      digest: 'sha256:old'
    })
    await expect(resolveRollbackTarget({ setting: { kind: 'previous' }, failedTag: 'v3.0.0', releases })).resolves.toBeUndefined()
    expect(releases).not.toHaveBeenCalled()
  })

  it('tag: the literal tag, with a warning when it is the one that failed', async () => {
    const releases = jest.fn(serve(RELEASES))
    await expect(resolveRollbackTarget({ setting: { kind: 'tag', tag: 'v1' }, failedTag: 'v3', releases })).resolves.toEqual({ tag: 'v1', source: 'tag' })
    const same = await resolveRollbackTarget({ setting: { kind: 'tag', tag: 'v3' }, failedTag: 'v3', previous: PREVIOUS, releases })
    expect(same).toMatchObject({ tag: 'v3', source: 'tag', warning: expect.stringContaining('the tag that just failed') })
    expect(releases).not.toHaveBeenCalled()
  })
})

describe('resolveManualRollbackTarget', () => {
  it('uses rollback-to when given, without asking GitHub', async () => {
    const releases = jest.fn(serve(RELEASES))
    await expect(resolveManualRollbackTarget({ rollbackTo: ' v1 ', running: { tag: 'v3.0.0' }, releases })).resolves.toEqual({ tag: 'v1', source: 'tag' })
    expect(releases).not.toHaveBeenCalled()
  })

  it('otherwise goes to the highest release below the one that runs, or the highest when nothing runs', async () => {
    await expect(resolveManualRollbackTarget({ rollbackTo: '', running: { tag: 'v3.0.0' }, releases: serve(RELEASES) })).resolves.toEqual({
      tag: 'v2.0.0',
      source: 'last-release'
    })
    await expect(resolveManualRollbackTarget({ releases: serve(RELEASES) })).resolves.toEqual({ tag: 'v3.0.0', source: 'last-release' })
  })

  it('goes by version, not publication date: a later backport is not the release before', async () => {
    const releases = serve([...BACKPORT, release('v1.2.0', 4)])
    await expect(resolveManualRollbackTarget({ running: { tag: 'v1.2.0' }, releases })).resolves.toEqual({ tag: 'v1.1.0', source: 'last-release' })
    await expect(resolveManualRollbackTarget({ running: { tag: 'v1.1.0' }, releases })).resolves.toEqual({ tag: 'v1.0.5', source: 'last-release' })
  })

  it('reads the running tag with or without v, and answers in its form', async () => {
    await expect(resolveManualRollbackTarget({ running: { tag: '3.0.0' }, releases: serve(RELEASES) })).resolves.toEqual({ tag: '2.0.0', source: 'last-release' })
    await expect(resolveManualRollbackTarget({ running: { tag: '2.5.0' }, releases: serve(RELEASES) })).resolves.toEqual({ tag: '2.0.0', source: 'last-release' })
  })

  it('skips prereleases unless includePrereleases is set', async () => {
    await expect(resolveManualRollbackTarget({ running: { tag: 'v4.0.0' }, releases: serve(RELEASES) })).resolves.toEqual({ tag: 'v3.0.0', source: 'last-release' })
    await expect(resolveManualRollbackTarget({ running: { tag: 'v4.0.0' }, releases: serve(RELEASES), includePrereleases: true })).resolves.toEqual({
      tag: 'v4.0.0-rc.1',
      source: 'last-release'
    })
  })

  it('when what runs is no version, goes to the highest release and says so', async () => {
    const resolved = await resolveManualRollbackTarget({ running: { tag: 'sha-abc' }, releases: serve(RELEASES) })
    expect(resolved).toMatchObject({ tag: 'v3.0.0', source: 'last-release' })
    expect(resolved.warning).toMatch(/sha-abc, which runs now, is not a semantic version.*highest release, v3\.0\.0\.$/)
  })

  it('fails clearly when no release is older than the running one', async () => {
    const attempt = resolveManualRollbackTarget({ running: { tag: 'v1.0.0' }, releases: serve(RELEASES) })
    await expect(attempt).rejects.toThrow(RollbackTargetError)
    await expect(attempt).rejects.toThrow(/no published release older than v1\.0\.0, which runs now.*Set rollback-to/)
    await expect(resolveManualRollbackTarget({ releases: serve([]) })).rejects.toThrow(/There is no published release \(drafts/)
    await expect(resolveManualRollbackTarget({ running: { tag: 'v3.0.0' }, releases: serve([release('stable', 1)]) })).rejects.toThrow(
      /older than v3\.0\.0, which runs now \(drafts and prereleases do not count; releases whose tag is no semantic version \(stable\) are not ordered\)/
    )
    // Short version tags are versions: v1 is the release before v3.0.0.
    await expect(resolveManualRollbackTarget({ running: { tag: 'v3.0.0' }, releases: serve([release('v1', 1)]) })).resolves.toMatchObject({ tag: 'v1' })
  })

  it('rollback-to: previous is a keyword: the version the host keeps from before the one that runs now', async () => {
    const releases = jest.fn(serve(RELEASES))
    await expect(resolveManualRollbackTarget({ rollbackTo: 'previous', running: { tag: 'v3.0.0' }, releases, kept: async () => ({ tag: 'sha-1', digest: 'sha256:1' }) })).resolves.toEqual({
      tag: 'sha-1',
      source: 'previous',
      digest: 'sha256:1'
    })
    expect(releases).not.toHaveBeenCalled()
    await expect(resolveManualRollbackTarget({ rollbackTo: 'previous', running: { tag: 'v3.0.0' }, releases, kept: async () => undefined })).rejects.toThrow(
      /rollback-to is previous, the version that ran before the one that runs now, but the host keeps no version from before v3\.0\.0\. Set rollback-to/
    )
  })

  it('without a release, goes back to what the host keeps from before what runs now, with a warning saying why', async () => {
    const kept = jest.fn(async () => ({ tag: 'sha-1' }))
    await expect(resolveManualRollbackTarget({ running: { tag: 'sha-2' }, releases: serve([]), kept })).resolves.toEqual({
      tag: 'sha-1',
      source: 'previous',
      warning: 'No release to roll back to: there is no published release (drafts and prereleases do not count). Rolling back to sha-1, which ran before sha-2 and is kept on the host.'
    })
    const unreadable = await resolveManualRollbackTarget({ running: { tag: 'sha-2' }, releases: refuse(new GitHubApiError('list releases', 'http', 401, 'HTTP 401')), kept })
    expect(unreadable).toMatchObject({ tag: 'sha-1', source: 'previous', warning: expect.stringMatching(/^No release to roll back to: the releases cannot be read: the Releases API answered HTTP 401/) })
    // A release, when there is one, still wins: the host's copy is not even read.
    kept.mockClear()
    await expect(resolveManualRollbackTarget({ running: { tag: 'v3.0.0' }, releases: serve(RELEASES), kept })).resolves.toMatchObject({ tag: 'v2.0.0' })
    expect(kept).not.toHaveBeenCalled()
  })

  it('keeps the error when the host keeps nothing usable from before: none, the same tag, or unknown', async () => {
    const attempt = (kept: () => Promise<{ tag: string } | undefined>): Promise<unknown> => resolveManualRollbackTarget({ running: { tag: 'sha-2' }, releases: serve([]), kept })
    await expect(attempt(async () => undefined)).rejects.toThrow(/There is no published release \(drafts and prereleases do not count\); the host keeps no version from before sha-2\. Set rollback-to/)
    await expect(attempt(async () => ({ tag: 'sha-2' }))).rejects.toThrow(/the version the host keeps from before sha-2 has the same tag/)
    await expect(attempt(() => Promise.reject(new Error('Cannot connect to the Docker daemon')))).rejects.toThrow(RollbackTargetError)
    await expect(attempt(() => Promise.reject(new Error('Cannot connect to the Docker daemon')))).rejects.toThrow(/what the host keeps from before sha-2 is unknown \(Cannot connect to the Docker daemon\)/)
  })

  it('fails clearly when the releases cannot be read', async () => {
    const attempt = resolveManualRollbackTarget({
      running: { tag: 'v3.0.0' },
      releases: refuse(new GitHubApiError('list releases', 'http', 401, 'HTTP 401'))
    })
    await expect(attempt).rejects.toThrow(RollbackTargetError)
    await expect(attempt).rejects.toThrow(/HTTP 401 \(github-token was refused\).*Set rollback-to/)
  })
})
