/**
 * The version a host keeps from before the one that serves now: what `command: rollback` (and
 * `rollback-to: previous`) goes back to when no release can be the target. Read from the
 * containers each strategy keeps, by their names and the labels this action wrote.
 */
import { Suffix } from '../constants.js'
import type { DockerClient } from '../docker/client.js'
import { slotContainerName, SLOTS } from '../proxy/haproxy-config.js'
import { sameRelease, type DeploySettings, type Release, type StrategyName } from '../settings.js'
import { releaseOf } from './release-labels.js'

/**
 * Reads what one strategy keeps; undefined when it keeps nothing, a thrown error when docker did
 * not answer or what is kept cannot be told apart from a version that failed (unknown is not none).
 */
type KeptReader = (settings: DeploySettings, docker: DockerClient, serving: Release | undefined) => Promise<Release | undefined>

const readers: Record<StrategyName, KeptReader> = {
  // `<name>-previous` only ever holds a version that served: a restore never moves a failed one there.
  replace: async (settings, docker) => {
    const previous = await docker.inspectContainer(settings.name + Suffix.Previous)
    return previous && releaseOf(previous.labels, previous.image)
  },
  // The idle slot holds what served before, unless a version that then failed took it: that one
  // was created after the live slot's (by the daemon's clock), and is never a rollback target.
  proxy: async (settings, docker, serving) => {
    if (!serving) return undefined
    const slots = (await docker.inspectContainers(SLOTS.map((slot) => slotContainerName(settings.name, slot)))).filter((info) => info !== undefined)
    const live = slots.find((info) => sameRelease(releaseOf(info.labels, info.image), serving))
    const idle = slots.find((info) => info !== live)
    if (!live || !idle) return undefined
    if (!live.created || !idle.created) throw new Error(`docker did not tell when ${idle.name} was created`)
    if (Date.parse(idle.created) > Date.parse(live.created)) return undefined
    return releaseOf(idle.labels, idle.image)
  },
  // Swarm keeps only the spec before its last update, which after a rollback is the version that failed.
  swarm: () => Promise.reject(new Error('strategy: swarm keeps only the spec before its last update, which may be a version that failed'))
}

/** What the host keeps from before `serving` (what runs there now), by the deploy's strategy. */
export async function keptRelease(settings: DeploySettings, docker: DockerClient, serving: Release | undefined): Promise<Release | undefined> {
  const kept = await readers[settings.strategy](settings, docker, serving)
  // A rollback pulls `<image>:<tag>`: a container started by hand from another image is no such version.
  if (kept?.imageRef && kept.imageRef !== `${settings.image}:${kept.tag}`) throw new Error(`it runs ${kept.imageRef}, not an image of ${settings.image}`)
  return kept
}
