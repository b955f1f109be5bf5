/**
 * The action's entry point, for both the main step and the post step (`runs.post` in action.yml
 * points at the same bundle). The main step saves `isPost`, so a non-empty state means post.
 */
import * as core from '@actions/core'
import { run } from './main.js'
import { post } from './post.js'
import { isPostStep } from './state.js'

// The runner cancels a step with SIGINT, then SIGTERM 7.5 s later. Abort probes and stop starting
// new work; the post step repairs whatever the interruption left half done.
const cancellation = new AbortController()
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (!cancellation.signal.aborted) core.warning(`Received ${signal}: stopping; the post step restores a known version if needed.`, { title: 'Cancelled' })
    cancellation.abort(new Error(`cancelled by ${signal}`))
  })
}

try {
  if (isPostStep()) await post(cancellation.signal)
  else await run(cancellation.signal)
} catch (error) {
  // Every expected failure is reported by the story itself; this is the last line of defence.
  core.setFailed(`Unexpected error: ${error instanceof Error ? error.message : String(error)}`)
}
