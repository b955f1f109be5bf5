/**
 * For in-process runs of the story: captures what the action writes to stdout (annotations,
 * groups, outputs without GITHUB_OUTPUT), keeps runner files out of the way and resets the exit
 * code after each test. Call once in a describe block (or at the top of a file).
 */
import { afterEach, beforeEach, jest } from '@jest/globals'

export function captureActionStdout(): { text(): string } {
  let chunks: string[] = []
  beforeEach(() => {
    chunks = []
    jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      chunks.push(String(chunk))
      return true
    })
    delete process.env.GITHUB_STATE
    delete process.env.GITHUB_STEP_SUMMARY
  })
  afterEach(() => {
    jest.restoreAllMocks()
    process.exitCode = undefined
  })
  return { text: () => chunks.join('') }
}
