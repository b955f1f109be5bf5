import { describe, expect, it, jest } from '@jest/globals'
import { GitHubApiError, type GitHubRelease } from '../src/github/client.js'
import { resolveManualRollbackTarget, resolveRollbackTarget, RollbackTargetError } from '../src/rollback-target.js'

let nextId = 1
function release(tag: string, day: number, kind: 'stable' | 'draft' | 'prerelease' = 'stable'): GitHubRelease {
  const at = `2024-02-${String(day).padStart(2, '0')}T00:00:00Z`
  return { id: nextId++, tag_name: tag, draft: kind === 'draft', prerelease: kind === 'prerelease', published_at: kind === 'draft' ? null : at, created_at: at }
}

const RELEASES = [release('v1', 1), release('v2', 2), release('v3', 3), release('v4-rc', 4, 'prerelease')]
const serve = (releases: GitHubRelease[]) => async (): Promise<GitHubRelease[]> => releases
const refuse = (error: unknown) => async (): Promise<GitHubRelease[]> => {
  throw error
}
const PREVIOUS = { tag: 'v2', digest: 'sha256:prev' }

describe('resolveRollbackTarget', () => {
  it('last-release: the newest stable release other than the failed tag', async () => {
    await expect(resolveRollbackTarget({ setting: { kind: 'last-release' }, failedTag: 'v3', previous: PREVIOUS, releases: serve(RELEASES) })).resolves.toEqual({
      tag: 'v2',
      source: 'last-release'
    })
    await expect(resolveRollbackTarget({ setting: { kind: 'last-release' }, failedTag: 'v9', previous: PREVIOUS, releases: serve(RELEASES) })).resolves.toEqual({
      tag: 'v3',
      source: 'last-release'
    })
  })

  it('last-release with releases but no previous version (first deploy) still goes to the release', async () => {
    await expect(resolveRollbackTarget({ setting: { kind: 'last-release' }, failedTag: 'v3', releases: serve(RELEASES) })).resolves.toEqual({
      tag: 'v2',
      source: 'last-release'
    })
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
    ['no release but the failed one', serve([release('v3', 3), release('v4-rc', 4, 'prerelease')]), /no published release other than v3/],
    ['no release at all', serve([]), /no published release other than v3/]
  ]

  it.each(fallbacks)('last-release falls back to the previous version on %s, and says why', async (_, releases, why) => {
    const resolved = await resolveRollbackTarget({ setting: { kind: 'last-release' }, failedTag: 'v3', previous: PREVIOUS, releases })
    expect(resolved).toMatchObject({ tag: 'v2', source: 'previous', digest: 'sha256:prev' })
    expect(resolved?.warning).toMatch(why)
    expect(resolved?.warning).toMatch(/Rolling back to the tag that ran before, v2\.$/)
  })

  it.each(fallbacks)('last-release with nothing before and %s: nothing to roll back to', async (_, releases) => {
    await expect(resolveRollbackTarget({ setting: { kind: 'last-release' }, failedTag: 'v3', releases })).resolves.toBeUndefined()
  })

  it('previous: the version that ran before, even with the same tag (a moved tag), and never asks GitHub', async () => {
    const releases = jest.fn(serve(RELEASES))
    await expect(resolveRollbackTarget({ setting: { kind: 'previous' }, failedTag: 'latest', previous: { tag: 'latest', digest: 'sha256:old' }, releases })).resolves.toEqual({
      tag: 'latest',
      source: 'previous',
      digest: 'sha256:old'
    })
    await expect(resolveRollbackTarget({ setting: { kind: 'previous' }, failedTag: 'v3', releases })).resolves.toBeUndefined()
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
    await expect(resolveManualRollbackTarget({ rollbackTo: ' v1 ', running: { tag: 'v3' }, releases })).resolves.toEqual({ tag: 'v1', source: 'tag' })
    expect(releases).not.toHaveBeenCalled()
  })

  it('otherwise goes to the release before the one that runs', async () => {
    await expect(resolveManualRollbackTarget({ rollbackTo: '', running: { tag: 'v3' }, releases: serve(RELEASES) })).resolves.toEqual({
      tag: 'v2',
      source: 'last-release'
    })
    await expect(resolveManualRollbackTarget({ running: { tag: 'sha-abc' }, releases: serve(RELEASES) })).resolves.toEqual({ tag: 'v3', source: 'last-release' })
    await expect(resolveManualRollbackTarget({ releases: serve(RELEASES) })).resolves.toEqual({ tag: 'v3', source: 'last-release' })
  })

  it('fails clearly when no release is older than the running one', async () => {
    const attempt = resolveManualRollbackTarget({ running: { tag: 'v1' }, releases: serve(RELEASES) })
    await expect(attempt).rejects.toThrow(RollbackTargetError)
    await expect(attempt).rejects.toThrow(/no published release older than v1, which runs now.*Set rollback-to/)
    await expect(resolveManualRollbackTarget({ releases: serve([]) })).rejects.toThrow(/There is no published release \(drafts/)
  })

  it('fails clearly when the releases cannot be read', async () => {
    const attempt = resolveManualRollbackTarget({
      running: { tag: 'v3' },
      releases: refuse(new GitHubApiError('list releases', 'http', 401, 'HTTP 401'))
    })
    await expect(attempt).rejects.toThrow(RollbackTargetError)
    await expect(attempt).rejects.toThrow(/HTTP 401 \(github-token was refused\).*Set rollback-to/)
  })
})
