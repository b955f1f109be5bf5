import { describe, expect, it } from '@jest/globals'
import { readFileSync } from 'node:fs'
import { quickStartBlocks } from '../test-support/readme-blocks.js'

/** An example workflow without the comment lines at its top, which say where to copy it. */
function withoutHeaderComments(text: string): string {
  const lines = text.split('\n')
  const first = lines.findIndex((line) => !line.startsWith('#'))
  return lines.slice(first).join('\n')
}

describe('the README quick start and examples/workflows are the same files', () => {
  const blocks = quickStartBlocks(readFileSync('README.md', 'utf8'))

  it('deploy.yml is the quick start workflow, line for line', () => {
    expect(withoutHeaderComments(readFileSync('examples/workflows/deploy.yml', 'utf8'))).toBe(blocks.workflow)
  })

  it('rollback.yml is the quick start rollback workflow, line for line', () => {
    expect(withoutHeaderComments(readFileSync('examples/workflows/rollback.yml', 'utf8'))).toBe(blocks.rollback)
  })

  it('the quick start deploys with zero downtime (strategy: proxy); __tests__/quick-start.itg.ts deploys it', () => {
    expect(blocks.config).toMatch(/^strategy: proxy$/m)
  })
})
