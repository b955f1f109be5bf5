import type { DockerResult, DockerRunner, DockerRunOptions } from '../src/docker/runner.js'

export interface RecordedCall {
  argv: string[]
  options: DockerRunOptions
}

/**
 * A DockerRunner for unit tests: records every argv and answers from a script of canned results,
 * matched by the first argv words. Unmatched commands succeed with empty output.
 */
export class RecordingRunner implements DockerRunner {
  readonly calls: RecordedCall[] = []
  private readonly answers: { prefix: string[]; result: Partial<DockerResult> }[] = []

  /** Answers commands starting with `prefix` (e.g. ['container', 'inspect']) with `result`. */
  answer(prefix: string[], result: Partial<DockerResult>): this {
    this.answers.unshift({ prefix, result })
    return this
  }

  async run(argv: readonly string[], options: DockerRunOptions = {}): Promise<DockerResult> {
    this.calls.push({ argv: [...argv], options })
    const match = this.answers.find(({ prefix }) => prefix.every((word, index) => argv[index] === word))
    return { exitCode: 0, stdout: '', stderr: '', ...match?.result }
  }

  /** The argv of every call, joined by spaces, for compact assertions. */
  get commands(): string[] {
    return this.calls.map((call) => call.argv.join(' '))
  }
}
