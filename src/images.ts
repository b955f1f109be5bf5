/**
 * Image retention: after a healthy deploy or a finished rollback, each host keeps the app's
 * `retain` most recently deployed images and loses the rest, so commit-SHA tags never fill the disk.
 *
 * - "The app's images" are the local images of `settings.image` (the repository), by any tag.
 * - "Most recently deployed" is read from the daemon: every version shown healthy is marked with
 *   `docker image tag ref ref` (its `LastTagTime`); an image never marked counts by its build time.
 * - Never removed: an image that any container on the host uses, running or not (the running
 *   version, the `-previous` kept for a rollback, proxy slots, Swarm tasks), as docker reports it
 *   by image id, not by name; and docker's own refusal (no `--force`) guards the rest.
 * - A version that failed verification is removed once a known version serves again, whatever
 *   its age, unless a container still uses it.
 */
import type { DockerClient, ImageRecord } from './docker/client.js'

/** What one host's clean-up did, for the summary. */
export interface ImageCleanup {
  host: string
  /** References removed (`repo:tag`), newest first. */
  removed: string[]
  /** Bytes of the images docker deleted (each image's size: layers another image shares stay on disk). */
  freedBytes: number
  /** Images kept although beyond `retain` or failed: a container uses them. */
  keptInUse: string[]
  /** References docker refused to remove, with its reason. */
  refused: string[]
}

export interface RetentionInput {
  repository: string
  retain: number
  /** `repo:tag` of the version that serves now (shown healthy): marked as deployed first. */
  serving?: string
  /** `repo:tag` of versions that failed verification in this run. */
  failed: string[]
  /** Image ids kept for a rollback though no container uses them: never removed, like an image in use. */
  keep?: string[]
}

/** A local image of the repository with what retention needs to know. */
export interface RetentionImage {
  id: string
  references: string[]
  /** When it was last deployed (its deploy mark), else when it was built; ms by the daemon's clock. */
  deployedMs: number
  size: number
}

/** The plan for one host: which images go, which stay because a container uses them. */
export interface RetentionPlan {
  remove: RetentionImage[]
  keptInUse: RetentionImage[]
  /** Failed versions' references whose image stays for another reason (another tag within `retain`): untagged only. */
  untag: string[]
}

/**
 * Decides what goes: failed versions first, then everything beyond the `retain` most recently
 * deployed images; never an image in `inUse`. Pure, so the rules are tested without docker.
 */
export function planRetention(images: RetentionImage[], inUse: ReadonlySet<string>, retain: number, failed: readonly string[]): RetentionPlan {
  const failedSet = new Set(failed)
  const isFailedOnly = (image: RetentionImage): boolean => image.references.length > 0 && image.references.every((reference) => failedSet.has(reference))
  // A failed version holds no place among the retained ones.
  const ranked = images.filter((image) => !isFailedOnly(image)).sort((a, b) => b.deployedMs - a.deployedMs || a.id.localeCompare(b.id))
  const kept = new Set(ranked.slice(0, Math.max(0, retain)).map((image) => image.id))
  const remove: RetentionImage[] = []
  const keptInUse: RetentionImage[] = []
  const untag: string[] = []
  for (const image of [...images.filter(isFailedOnly), ...ranked]) {
    if (kept.has(image.id)) {
      // The same image under a good tag is kept; the failed tag alone goes.
      untag.push(...image.references.filter((reference) => failedSet.has(reference)))
      continue
    }
    if (inUse.has(image.id)) keptInUse.push(image)
    else remove.push(image)
  }
  return { remove, keptInUse, untag }
}

/** Marks what serves as deployed, then removes what `planRetention` chose on one host. */
export async function pruneImages(docker: DockerClient, input: RetentionInput): Promise<ImageCleanup> {
  if (input.serving) await docker.markImageDeployed(input.serving)
  const listed = await docker.repositoryImages(input.repository)
  // Within `retain` and no failed tag among them: nothing can go, so no more docker reads (two CLI
  // processes fewer on most deploys). The same answer `planRetention` would give.
  const failed = new Set(input.failed)
  if (listed.size <= input.retain && ![...listed.values()].some((references) => references.some((reference) => failed.has(reference)))) {
    return { host: docker.hostLabel, removed: [], freedBytes: 0, keptInUse: [], refused: [] }
  }
  const records = new Map<string, ImageRecord>((await docker.imageRecords([...listed.keys()])).map((record) => [record.id, record]))
  const images: RetentionImage[] = [...listed].flatMap(([id, references]) => {
    const record = records.get(id)
    // Gone since it was listed: nothing to decide.
    if (!record) return []
    return [{ id, references, deployedMs: Math.max(record.lastTagMs, record.createdMs), size: record.size }]
  })
  const inUse = new Set([...(await docker.imagesInUse()), ...(input.keep ?? [])])
  const plan = planRetention(images, inUse, input.retain, input.failed)
  const references = [...plan.remove.flatMap((image) => image.references), ...plan.untag]
  const result = await docker.removeImages(references)
  const deleted = new Set(result.deleted)
  const gone = new Set([...result.untagged, ...plan.remove.filter((image) => deleted.has(image.id)).flatMap((image) => image.references)])
  return {
    host: docker.hostLabel,
    removed: references.filter((reference) => gone.has(reference)),
    freedBytes: plan.remove.filter((image) => deleted.has(image.id)).reduce((sum, image) => sum + image.size, 0),
    keptInUse: plan.keptInUse.flatMap((image) => image.references),
    refused: result.refused
  }
}

/** `1.9 MB`, `734 kB`: sizes as docker prints them (powers of 1000). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB']
  let value = bytes
  let unit = 0
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000
    unit++
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`
}

/** One line for the step detail. */
export function describeCleanup(cleanup: ImageCleanup, retain: number): string {
  const parts: string[] = []
  if (cleanup.removed.length === 0) parts.push(`kept every image (retain: ${retain})`)
  else parts.push(`removed ${cleanup.removed.length} image${cleanup.removed.length === 1 ? '' : 's'} (${cleanup.removed.join(', ')}), freed ${formatBytes(cleanup.freedBytes)}`)
  if (cleanup.keptInUse.length > 0) parts.push(`kept ${cleanup.keptInUse.join(', ')}: a container uses ${cleanup.keptInUse.length === 1 ? 'it' : 'them'}`)
  if (cleanup.refused.length > 0) parts.push(`docker refused: ${cleanup.refused.join('; ')}`)
  return parts.join('; ')
}
