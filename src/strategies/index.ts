import type { Clock } from '../dependencies.js'
import type { DockerClient } from '../docker/client.js'
import type { DeploySettings, StrategyName } from '../settings.js'
import { ProxyStrategy } from './proxy.js'
import { ReplaceStrategy } from './replace.js'
import type { DeployStrategy } from './strategy.js'
import { SwarmStrategy } from './swarm.js'

type StrategyFactory = (settings: DeploySettings, docker: DockerClient, clock: Clock, signal?: AbortSignal) => DeployStrategy

/** One entry per `strategy:` value; adding a strategy is adding a file and a line here. */
const factories: Record<StrategyName, StrategyFactory> = {
  replace: (settings, docker) => new ReplaceStrategy(settings, docker),
  swarm: (settings, docker, clock, signal) => new SwarmStrategy(settings, docker, clock, signal),
  proxy: (settings, docker, clock, signal) => new ProxyStrategy(settings, docker, clock, signal)
}

export function createStrategy(settings: DeploySettings, docker: DockerClient, clock: Clock, signal?: AbortSignal): DeployStrategy {
  return factories[settings.strategy](settings, docker, clock, signal)
}

export type { DeployStrategy }
