import { GitHubApiError, type GitHubRelease } from './github/client.js'
import { findRelease, highestRelease, parseVersionTag, releaseBelow, sameVersion, type ReleaseOrderOptions } from './github/releases.js'
import type { Release, RollbackTarget } from './settings.js'

/** Where a rollback goes, where that choice came from, and why a fallback was taken. */
export interface ResolvedRollbackTarget {
  /** The image tag to deploy, in the image tags' `v` convention (see `imageTagForm`). */
  tag: string
  /**
   * `previous`: the version that ran before, with its digest, so the rollback can restart the
   * kept container; `last-release`: a release read from GitHub; `tag`: a tag named by the user.
   */
  source: 'last-release' | 'previous' | 'tag'
  /** The digest that ran before; set only when the target is the previous version. */
  digest?: string
  /** Set when `last-release` fell back to the previous version, or the choice looks wrong. */
  warning?: string
}

export interface RollbackTargetRequest extends ReleaseOrderOptions {
  /** `rollback.to` of the config. */
  setting: RollbackTarget
  /** The tag whose deploy just failed. */
  failedTag: string
  /** What ran before the deploy; undefined on a first deploy. */
  previous?: Release
  /** Loads the repository's releases; called only for `last-release`. */
  releases: () => Promise<GitHubRelease[]>
}

/**
 * Chooses the automatic rollback target after a failed deploy, by `rollback.to`:
 * - `tag`: that tag, with a warning when it is the one that failed.
 * - `previous`: the version that ran before, with its digest.
 * - `last-release`, in this order:
 *   1. the version that ran before (source `previous`, with its digest, so the kept container is
 *      reused) when its tag names a qualifying release, with or without `v`, and is not the failed
 *      version, even when a higher release below the failed one exists: it is known to have run;
 *   2. when the failed tag is a semantic version, the qualifying release with the highest version
 *      strictly lower than it, by semver, never by publication date;
 *   3. when it is not (a commit SHA, `latest`), the qualifying release with the highest version,
 *      with a warning, since nothing tells which release came before such a tag.
 *   Qualifying: published, not a draft, tagged with a semantic version, and not a prerelease
 *   unless `includePrereleases`. The tag returned for 2 and 3 follows the image tags' `v`
 *   convention (see `imageTagForm`), judged from the failed and previous tags. When none
 *   qualifies, or there is no token, or the API cannot be reached or refuses, it falls back to the
 *   version that ran before with a warning saying why.
 * Undefined when there is nothing to go back to (a first deploy without a usable release).
 */
export async function resolveRollbackTarget(request: RollbackTargetRequest): Promise<ResolvedRollbackTarget | undefined> {
  const { setting, failedTag, previous } = request
  switch (setting.kind) {
    case 'tag':
      return {
        tag: setting.tag,
        source: 'tag',
        ...(setting.tag === failedTag && {
          warning: `rollback.to names ${setting.tag}, the tag that just failed; rolling back to it as configured.`
        })
      }
    case 'previous':
      return previous ? fromPrevious(previous) : undefined
    case 'last-release': {
      const options: ReleaseOrderOptions = { includePrereleases: request.includePrereleases === true }
      let reason: string
      try {
        const releases = await request.releases()
        if (previous && !sameVersion(previous.tag, failedTag) && findRelease(releases, previous.tag, options)) return fromPrevious(previous)
        const imageTags = [failedTag, previous?.tag]
        if (parseVersionTag(failedTag)) {
          const below = releaseBelow(releases, failedTag, options)
          if (below) return { tag: imageTagForm(below.tag_name, imageTags), source: 'last-release' }
          reason = `there is no ${releaseKind(options)} older than ${failedTag}${unversionedNote(releases)}`
        } else {
          const highest = highestRelease(releases, options)
          if (highest) {
            const tag = imageTagForm(highest.tag_name, imageTags)
            return {
              tag,
              source: 'last-release',
              warning: `${failedTag} is not a semantic version, so there is no telling which release came before it; rolling back to the highest release, ${tag}.`
            }
          }
          reason = `there is no ${releaseKind(options)} tagged with a semantic version${unversionedNote(releases)}`
        }
      } catch (error) {
        reason = describeReleasesFailure(error)
      }
      if (!previous) return undefined
      return {
        ...fromPrevious(previous),
        warning: `No last release to roll back to: ${reason}. Rolling back to the tag that ran before, ${previous.tag}.`
      }
    }
  }
}

export interface ManualRollbackRequest extends ReleaseOrderOptions {
  /**
   * The `rollback-to` input: a tag; `previous` (as in `rollback.to`), the version kept on the host
   * from before the one that runs now; empty or undefined, the release before what runs now.
   */
  rollbackTo?: string
  /** What runs now; undefined when nothing does. */
  running?: Release
  releases: () => Promise<GitHubRelease[]>
  /**
   * The version the host keeps from before the one that runs now (replace's `<name>-previous`,
   * the proxy's idle slot); undefined when it keeps none. Throws when it cannot be read. Asked
   * only for `previous`, or when no release can be the target.
   */
  kept?: () => Promise<Release | undefined>
}

/** `command: rollback` could not find a target; the message says what to set. */
export class RollbackTargetError extends Error {
  override readonly name = 'RollbackTargetError'
}

/**
 * Chooses the target of `command: rollback`:
 * - `rollback-to: previous`: the version the host keeps from before the one that runs now, as
 *   `rollback.to: previous` is a keyword too;
 * - another `rollback-to`: that tag;
 * - empty: the qualifying release (as for `resolveRollbackTarget`) with the highest version
 *   strictly lower than the tag that runs now, by semver; the highest release when nothing runs;
 *   and the highest release with a warning when what runs is not a semantic version. The tag
 *   follows the running tag's `v` convention (see `imageTagForm`). When the releases cannot be
 *   read or none qualifies, the version the host keeps from before the one that runs now, with a
 *   warning saying why (a new project has no releases, but its host keeps the previous version).
 * Throws a `RollbackTargetError` when none of these gives a target.
 */
export async function resolveManualRollbackTarget(request: ManualRollbackRequest): Promise<ResolvedRollbackTarget> {
  const explicit = request.rollbackTo?.trim()
  const running = request.running?.tag
  if (explicit === 'previous') {
    const kept = await keptBefore(request)
    if (kept.release) return fromPrevious(kept.release)
    throw new RollbackTargetError(`rollback-to is previous, the version that ran before the one that runs now, but ${kept.problem}. Set rollback-to to the tag to roll back to.`)
  }
  if (explicit) return { tag: explicit, source: 'tag' }

  let releases: GitHubRelease[]
  try {
    releases = await request.releases()
  } catch (error) {
    const reason = describeReleasesFailure(error)
    const kept = await keptBefore(request)
    if (kept.release) return keptWithWarning(kept.release, `the releases cannot be read: ${reason}`, running)
    throw new RollbackTargetError(
      `rollback-to is empty and the release to go back to cannot be found: ${reason}${keptNote(kept)}. ` + 'Set rollback-to to the tag to roll back to.',
      { cause: error }
    )
  }
  const options: ReleaseOrderOptions = { includePrereleases: request.includePrereleases === true }
  const versioned = running !== undefined && parseVersionTag(running) !== null
  const chosen = versioned ? releaseBelow(releases, running, options) : highestRelease(releases, options)
  if (chosen) {
    const tag = imageTagForm(chosen.tag_name, [running])
    if (running === undefined || versioned) return { tag, source: 'last-release' }
    return {
      tag,
      source: 'last-release',
      warning: `${running}, which runs now, is not a semantic version, so there is no telling which release came before it; rolling back to the highest release, ${tag}.`
    }
  }
  const excluded = options.includePrereleases ? 'drafts do not count' : 'drafts and prereleases do not count'
  const none = versioned ? `there is no published release older than ${running}` : 'there is no published release'
  const kept = await keptBefore(request)
  if (kept.release) return keptWithWarning(kept.release, `${none} (${excluded}${unversionedNote(releases)})`, running)
  const what = versioned ? `There is no published release older than ${running}, which runs now` : 'There is no published release'
  throw new RollbackTargetError(`${what} (${excluded}${unversionedNote(releases)})${keptNote(kept)}. Set rollback-to to the tag to roll back to.`)
}

/**
 * The version kept from before the one that runs now, or why there is none. A version that is
 * the one running (by tag) is no rollback: rolling back to it would pull the same tag again.
 * Unknown is not absent: a read that failed says so, it never counts as "none kept".
 */
async function keptBefore(request: ManualRollbackRequest): Promise<{ release: Release; problem?: undefined } | { release?: undefined; problem: string }> {
  const running = request.running?.tag
  const now = running ?? 'what runs now'
  if (!request.kept) return { problem: `the host keeps no version from before ${now}` }
  let kept: Release | undefined
  try {
    kept = await request.kept()
  } catch (error) {
    return { problem: `what the host keeps from before ${now} is unknown (${error instanceof Error ? error.message : String(error)})` }
  }
  if (!kept) return { problem: `the host keeps no version from before ${now}` }
  if (kept.tag === running) return { problem: `the version the host keeps from before ${now} has the same tag` }
  return { release: kept }
}

function keptWithWarning(kept: Release, why: string, running: string | undefined): ResolvedRollbackTarget {
  return {
    ...fromPrevious(kept),
    warning: `No release to roll back to: ${why}. Rolling back to ${kept.tag}, which ran before ${running ?? 'what runs now'} and is kept on the host.`
  }
}

/** For an error: why the version kept on the host could not stand in, when one was asked for. */
function keptNote(kept: { problem?: string }): string {
  return kept.problem ? `; ${kept.problem}` : ''
}

/**
 * Writes a release's tag the way the image tags are written. Release tags and image tags often
 * differ by a leading `v` (release `v1.5.0`, image `my/app:1.5.0`), and the rollback pulls an image,
 * so the image convention wins. It is read from `imageTags` (the failed, previous or running tags),
 * counting only those that are semantic versions:
 * - none of them is a version: the release tag as published, since nothing shows another form;
 * - any of them lacks the `v`: the version without `v` (`v1.5.0` gives `1.5.0`);
 * - all of them have it: the version with `v` (`1.5.0` gives `v1.5.0`).
 * A mixed history resolves to the bare form because the previous and failed images are known to
 * exist under their tags, and one of them proves that bare tags are pushed.
 */
export function imageTagForm(releaseTag: string, imageTags: readonly (string | undefined)[]): string {
  const versions = imageTags.filter((tag): tag is string => tag !== undefined && parseVersionTag(tag) !== null).map(tag => tag.trim())
  if (versions.length === 0) return releaseTag
  const bare = releaseTag.trim().replace(/^v/, '')
  return versions.every(tag => tag.startsWith('v')) ? `v${bare}` : bare
}

function releaseKind(options: ReleaseOrderOptions): string {
  return options.includePrereleases ? 'published release' : 'stable release'
}

/**
 * Names a few releases left out for their tags, since a repository tagged `v1`, `v2` would
 * otherwise wonder why none of its releases counts.
 */
function unversionedNote(releases: readonly GitHubRelease[]): string {
  const tags = releases.filter(release => !release.draft && parseVersionTag(release.tag_name) === null).map(release => release.tag_name)
  if (tags.length === 0) return ''
  return `; releases whose tag is no semantic version (${tags.slice(0, 3).join(', ')}${tags.length > 3 ? ', …' : ''}) are not ordered`
}

function fromPrevious(previous: Release): ResolvedRollbackTarget {
  return { tag: previous.tag, source: 'previous', ...(previous.digest !== undefined && { digest: previous.digest }) }
}

/** Says in words why the releases could not be read, for a warning or an error. */
function describeReleasesFailure(error: unknown): string {
  if (error instanceof GitHubApiError) {
    switch (error.reason) {
      case 'no-token':
        return 'no github-token was given to read the releases'
      case 'unreachable':
        return `the GitHub API could not be reached (${causeMessage(error)})`
      case 'http':
        return `the Releases API answered HTTP ${error.status}${httpHint(error.status)}`
    }
  }
  return `the releases could not be read (${error instanceof Error ? error.message : String(error)})`
}

function httpHint(status: number | undefined): string {
  if (status === 401) return ' (github-token was refused)'
  if (status === 403 || status === 404) return ' (the token needs permissions: contents: read)'
  return ''
}

function causeMessage(error: GitHubApiError): string {
  const cause = error.cause
  return cause instanceof Error ? cause.message : error.message
}
