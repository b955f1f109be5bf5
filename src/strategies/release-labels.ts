import { Label } from '../constants.js'
import type { DeploySettings, Release } from '../settings.js'

/**
 * The `deploy-action.*` labels that record a release on what runs it (a container, a service).
 * They are how a later run knows what runs, so every strategy writes the same ones.
 */
export function releaseLabels(settings: DeploySettings, release: Release, options: { withCommit: boolean }): Record<string, string> {
  const { run } = settings
  const labels: Record<string, string> = {
    [Label.Tag]: release.tag,
    [Label.Image]: settings.image,
    [Label.Environment]: settings.environment,
    [Label.RunUrl]: run.runUrl,
    [Label.Actor]: run.actor,
    [Label.DeployedAt]: new Date().toISOString()
  }
  if (release.digest) labels[Label.Digest] = release.digest
  // A redeployed old release was not built from this run's commit; do not claim it was.
  if (options.withCommit && run.sha) labels[Label.Commit] = run.sha
  return labels
}

/**
 * The release a container or service holds, from the labels this action wrote; for one started by
 * hand, from its image reference: the tag, else the digest, else the reference itself (a bare
 * `nginx` or a local image id). Whatever runs under the app's name is a version that can be put back.
 */
export function releaseOf(labels: Record<string, string>, imageRef: string): Release {
  const labelled = labels[Label.Tag]
  if (labelled) return { tag: labelled, ...(labels[Label.Digest] && { digest: labels[Label.Digest] }) }
  const [name = '', digest] = imageRef.split('@')
  const tag = tagOfReference(name)
  if (tag) return { tag, ...(digest && { digest }), imageRef }
  if (digest) return { tag: digest, digest, imageRef }
  return { tag: imageRef, imageRef }
}

/** The tag of an image reference without its digest: the part after a colon that follows the last slash. */
export function tagOfReference(reference: string): string | undefined {
  const lastSlash = reference.lastIndexOf('/')
  const colon = reference.indexOf(':', lastSlash + 1)
  return colon === -1 ? undefined : reference.slice(colon + 1)
}
