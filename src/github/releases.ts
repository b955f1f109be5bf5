import type { GitHubRelease } from './client.js'

/** A release a rollback may go to: published, not a draft, not a prerelease. */
export function isStableRelease(release: GitHubRelease): boolean {
  return !release.draft && !release.prerelease && release.published_at !== null
}

/** Drafts have no publication time; their creation time places them in the order. */
function releaseTime(release: GitHubRelease): number {
  const time = Date.parse(release.published_at ?? release.created_at)
  return Number.isNaN(time) ? 0 : time
}

/** Newest first by publication time; ties by creation time, then id, so the order is total. */
function newestFirst(a: GitHubRelease, b: GitHubRelease): number {
  return releaseTime(b) - releaseTime(a) || Date.parse(b.created_at) - Date.parse(a.created_at) || b.id - a.id
}

/** Stable releases, newest published first. The API's own order is by creation, not publication. */
export function stableReleasesNewestFirst(releases: readonly GitHubRelease[]): GitHubRelease[] {
  return releases.filter(isStableRelease).sort(newestFirst)
}

/**
 * Tag of the newest published, non-draft, non-prerelease release whose tag differs from `exclude`
 * (the tag that just failed), or undefined when there is none.
 */
export function newestReleaseTag(releases: readonly GitHubRelease[], options: { exclude?: string } = {}): string | undefined {
  return stableReleasesNewestFirst(releases).find(release => release.tag_name !== options.exclude)?.tag_name
}

/**
 * Tag of the newest stable release older than `runningTag`: when the running tag is itself a
 * release (of any kind), the next older stable one; otherwise the newest stable release whose tag
 * differs from it, because an unreleased build has no place in the release order.
 */
export function releaseOlderThan(releases: readonly GitHubRelease[], runningTag: string): string | undefined {
  const running = releases.filter(release => release.tag_name === runningTag).sort(newestFirst)[0]
  const candidates = stableReleasesNewestFirst(releases).filter(release => release.tag_name !== runningTag)
  if (!running) return candidates[0]?.tag_name
  return candidates.find(release => newestFirst(running, release) < 0)?.tag_name
}
