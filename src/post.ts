import * as core from '@actions/core'
import { Phase, State } from './constants.js'

/**
 * The post step (`post-if: always()`): runs after the main step, also when the job was cancelled.
 * When the main step ended cleanly there is nothing to do.
 */
export async function post(): Promise<void> {
  const phase = core.getState(State.Phase)
  if (phase === Phase.Done || phase === '' || phase === Phase.Validating) {
    core.debug(`post: the main step ended in phase "${phase}"; nothing to repair`)
    return
  }
  core.warning(`The main step was interrupted in phase "${phase}".`, { title: 'Post · repair' })
}
