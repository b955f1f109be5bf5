import type { CreatedObjects } from '../created.js'
import type { Clock } from '../dependencies.js'
import type { DockerClient } from '../docker/client.js'
import type { DeploySettings, StrategyName } from '../settings.js'
import { ProxyStrategy } from './proxy.js'
import { ReplaceStrategy } from './replace.js'
import type { DeployStrategy } from './strategy.js'
import { SwarmStrategy } from './swarm.js'

/** `created`: what this run created on the host, the only objects a restore to nothing may remove. */
type StrategyFactory = (settings: DeploySettings, docker: DockerClient, clock: Clock, created: CreatedObjects, signal?: AbortSignal) => DeployStrategy

/** One entry per `strategy:` value; adding a strategy is adding a file and a line here. */
const factories: Record<StrategyName, StrategyFactory> = {
  replace: (settings, docker, _clock, created) => new ReplaceStrategy(settings, docker, created),
  swarm: (settings, docker, clock, created, signal) => new SwarmStrategy(settings, docker, clock, signal, created),
  proxy: (settings, docker, clock, created, signal) => new ProxyStrategy(settings, docker, clock, signal, created)
}

export function createStrategy(settings: DeploySettings, docker: DockerClient, clock: Clock, created: CreatedObjects, signal?: AbortSignal): DeployStrategy {
  return factories[settings.strategy](settings, docker, clock, created, signal)
}

export type { DeployStrategy }
