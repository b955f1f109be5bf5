import { GitHubApiError, type GitHubRelease } from './github/client.js'
import { newestReleaseTag, releaseOlderThan } from './github/releases.js'
import type { Release, RollbackTarget } from './settings.js'

/** Where a rollback goes, where that choice came from, and why a fallback was taken. */
export interface ResolvedRollbackTarget {
  tag: string
  source: 'last-release' | 'previous' | 'tag'
  /** The digest that ran before; set only when the target is the previous version. */
  digest?: string
  /** Set when `last-release` fell back to the previous version, or the choice looks wrong. */
  warning?: string
}

export interface RollbackTargetRequest {
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
 * a literal tag; the version that ran before; or the newest stable release other than the failed
 * tag, falling back to the version that ran before (with a warning saying why) when there is no
 * token, the API cannot be reached or refuses, or no other release exists.
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
      let reason: string
      try {
        const tag = newestReleaseTag(await request.releases(), { exclude: failedTag })
        if (tag) return { tag, source: 'last-release' }
        reason = `there is no published release other than ${failedTag}`
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

export interface ManualRollbackRequest {
  /** The `rollback-to` input; empty or undefined means "the release before what runs now". */
  rollbackTo?: string
  /** What runs now; undefined when nothing does. */
  running?: Release
  releases: () => Promise<GitHubRelease[]>
}

/** `command: rollback` could not find a target; the message says what to set. */
export class RollbackTargetError extends Error {
  override readonly name = 'RollbackTargetError'
}

/**
 * Chooses the target of `command: rollback`: `rollback-to` when given, otherwise the newest
 * stable release older than the tag that runs now (the newest release when nothing runs).
 * Throws a `RollbackTargetError` when the releases cannot be read or none qualifies.
 */
export async function resolveManualRollbackTarget(request: ManualRollbackRequest): Promise<ResolvedRollbackTarget> {
  const explicit = request.rollbackTo?.trim()
  if (explicit) return { tag: explicit, source: 'tag' }

  let releases: GitHubRelease[]
  try {
    releases = await request.releases()
  } catch (error) {
    throw new RollbackTargetError(
      `rollback-to is empty and the release to go back to cannot be found: ${describeReleasesFailure(error)}. ` +
        'Set rollback-to to the tag to roll back to.',
      { cause: error }
    )
  }
  const running = request.running?.tag
  const tag = running === undefined ? newestReleaseTag(releases) : releaseOlderThan(releases, running)
  if (tag) return { tag, source: 'last-release' }
  const what = running === undefined ? 'There is no published release' : `There is no published release older than ${running}, which runs now`
  throw new RollbackTargetError(`${what} (drafts and prereleases do not count). Set rollback-to to the tag to roll back to.`)
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
