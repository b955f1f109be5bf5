/**
 * The post step's entry point (`runs.post` in action.yml, `post-if: always()`): only repairs what
 * the main step left (see `post.ts`). A bundle of its own, so that a main step cancelled before it
 * saved anything can never turn its post step into a second deploy: with nothing saved, the post
 * step has nothing to do.
 */
import { post } from './post.js'
import { stopLeftoverStreams } from './docker/runner.js'
import { runStep } from './step.js'

await runStep(post, 'what the main step left may still need repair; check the deploy lock and what runs.')
// The backstop: a `docker events` child still running would keep this process alive, or outlive it.
stopLeftoverStreams()
