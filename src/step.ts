/**
 * What both entry points share: the runner's cancel signals become an AbortSignal, and an error
 * nobody expected still fails the step with a message.
 */
import * as core from '@actions/core'

/**
 * Runs one step of the action. The runner cancels a step with SIGINT, then SIGTERM 7.5 s later:
 * probes are aborted and no new work starts. The main step's interruption is repaired by the post
 * step; the post step's own is reported, and its lock runs out on its lease.
 */
export async function runStep(step: (signal: AbortSignal) => Promise<unknown>, onCancel: string): Promise<void> {
  const cancellation = new AbortController()
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (!cancellation.signal.aborted) core.warning(`Received ${signal}: stopping; ${onCancel}`, { title: 'Cancelled' })
      cancellation.abort(new Error(`cancelled by ${signal}`))
    })
  }
  try {
    await step(cancellation.signal)
  } catch (error) {
    // Every expected failure is reported by the story itself; this is the last line of defence.
    core.setFailed(`Unexpected error: ${error instanceof Error ? error.message : String(error)}`)
  }
}
