import { compare, parse, type SemVer } from 'semver'
import type { GitHubRelease } from './client.js'

/**
 * Which releases a rollback may go to. Drafts never qualify: they are not published, and the
 * image they name may never have been pushed.
 */
export interface ReleaseOrderOptions {
  /**
   * Let prereleases qualify: releases marked as such on GitHub and tags with a semver prerelease
   * part (`v1.2.0-rc.1`). Off by default, so a rollback lands on a release meant for production.
   */
  includePrereleases?: boolean
}

/** A release that may be rolled back to, with its tag read as a version. */
export interface VersionedRelease {
  release: GitHubRelease
  version: SemVer
}

/**
 * Reads an image or release tag as a semantic version, with or without a leading `v`
 * (`1.5.0` and `v1.5.0` are the same version); null for anything else (`latest`, a commit SHA).
 * Short versions (`v1`, `v1.2`, `v4-rc1`) are common release tags and read as `1.0.0`, `1.2.0`
 * and `4.0.0-rc1`; nothing looser is coerced: coercion would read `sha-1234abc` as 1234.0.0 and
 * put it above every real release.
 */
export function parseVersionTag(tag: string): SemVer | null {
  const text = tag.trim()
  const full = parse(text)
  if (full) return full
  const short = /^v?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(-[0-9A-Za-z.-]+)?$/.exec(text)
  if (!short) return null
  return parse(`${short[1]}.${short[2] ?? '0'}.0${short[3] ?? ''}`)
}

/** Whether two tags name the same semantic version (`1.5.0` ≡ `v1.5.0`); false when either is no version. */
export function sameVersion(a: string, b: string): boolean {
  const left = parseVersionTag(a)
  const right = parseVersionTag(b)
  return left !== null && right !== null && compare(left, right) === 0
}

function releaseTime(release: GitHubRelease): number {
  const time = Date.parse(release.published_at ?? release.created_at)
  return Number.isNaN(time) ? 0 : time
}

/**
 * Highest version first. Equal versions (`v1.5.0` and `1.5.0` both released) fall back to the
 * latest publication, then the highest id, so the order is total whatever order the API gave.
 */
function highestFirst(a: VersionedRelease, b: VersionedRelease): number {
  return compare(b.version, a.version) || releaseTime(b.release) - releaseTime(a.release) || b.release.id - a.release.id
}

/**
 * The releases a rollback may go to, highest version first. Releases whose tag is not a semantic
 * version are left out: there is no telling where `latest` or `nightly-42` sits among versions,
 * and ordering them by date is what sent rollbacks to backports (a v1.0.5 published after v1.1.0
 * is not the release before v1.2.0).
 */
export function rollbackCandidates(releases: readonly GitHubRelease[], options: ReleaseOrderOptions = {}): VersionedRelease[] {
  const candidates: VersionedRelease[] = []
  for (const release of releases) {
    if (release.draft || release.published_at === null) continue
    const version = parseVersionTag(release.tag_name)
    if (!version) continue
    if (!options.includePrereleases && (release.prerelease || version.prerelease.length > 0)) continue
    candidates.push({ release, version })
  }
  return candidates.sort(highestFirst)
}

/**
 * The qualifying release with the highest version, skipping the version of `exclude` (the tag
 * that just failed, with or without `v`); undefined when none qualifies.
 */
export function highestRelease(
  releases: readonly GitHubRelease[],
  options: ReleaseOrderOptions & { exclude?: string } = {}
): GitHubRelease | undefined {
  const { exclude } = options
  return rollbackCandidates(releases, options).find(({ release }) => exclude === undefined || !sameVersion(release.tag_name, exclude))?.release
}

/**
 * The qualifying release with the highest version strictly lower than `tag`'s (read with or
 * without `v`), whether or not `tag` is itself a release: a backport published later does not
 * count as newer. Undefined when `tag` is no semantic version (use `highestRelease` then) or no
 * qualifying release is lower.
 */
export function releaseBelow(releases: readonly GitHubRelease[], tag: string, options: ReleaseOrderOptions = {}): GitHubRelease | undefined {
  const ceiling = parseVersionTag(tag)
  if (!ceiling) return undefined
  return rollbackCandidates(releases, options).find(({ version }) => compare(version, ceiling) < 0)?.release
}

/**
 * The qualifying release whose version is `tag`'s (`1.5.0` finds `v1.5.0`); undefined when `tag`
 * is no semantic version or names no qualifying release.
 */
export function findRelease(releases: readonly GitHubRelease[], tag: string, options: ReleaseOrderOptions = {}): GitHubRelease | undefined {
  const wanted = parseVersionTag(tag)
  if (!wanted) return undefined
  return rollbackCandidates(releases, options).find(({ version }) => compare(version, wanted) === 0)?.release
}
