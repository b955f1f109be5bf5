/**
 * The main step's entry point (`runs.main` in action.yml): the deploy story in `main.ts`. The post
 * step has its own entry, `post-index.ts`, so nothing that happens here can make it deploy.
 */
import { stopLeftoverStreams } from './docker/runner.js'
import { run } from './main.js'
import { runStep } from './step.js'

await runStep(run, 'the post step restores a known version if needed.')
// The backstop: a `docker events` child still running would keep this process alive, or outlive it.
stopLeftoverStreams()
