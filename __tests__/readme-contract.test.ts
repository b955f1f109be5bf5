import { describe, expect, it } from '@jest/globals'
import { readFileSync } from 'node:fs'
import { load } from 'js-yaml'

interface ActionYaml {
  inputs: Record<string, { default?: string }>
  outputs: Record<string, unknown>
  runs: { using: string; main: string; post?: string }
}

const action = load(readFileSync('action.yml', 'utf8')) as ActionYaml
const readme = readFileSync('README.md', 'utf8')

/** Rows of the markdown table under a `## heading`, as name → the row's remaining cells. */
function tableUnder(heading: string): Map<string, string[]> {
  const section = readme.split(/^## /m).find((part) => part.startsWith(heading + '\n'))
  if (!section) throw new Error(`README has no "## ${heading}" section`)
  const rows = new Map<string, string[]>()
  for (const line of section.split('\n')) {
    const match = /^\| `([a-z-]+)` \|(.*)\|$/.exec(line)
    if (match?.[1]) rows.set(match[1], (match[2] ?? '').split('|').map((cell) => cell.trim()))
  }
  return rows
}

describe('README matches action.yml', () => {
  it('documents exactly the inputs of action.yml, with their defaults', () => {
    const documented = tableUnder('Inputs')
    expect([...documented.keys()].sort()).toEqual(Object.keys(action.inputs).sort())
    for (const [name, input] of Object.entries(action.inputs)) {
      const defaultCell = documented.get(name)?.[0] ?? ''
      const expected = input.default ? `\`${input.default}\`` : 'empty'
      expect(`${name}: ${defaultCell}`).toBe(`${name}: ${expected}`)
    }
  })

  it('documents exactly the outputs of action.yml', () => {
    expect([...tableUnder('Outputs').keys()].sort()).toEqual(Object.keys(action.outputs).sort())
  })

  it('runs on node24 with a post step from the same bundle', () => {
    expect(action.runs).toMatchObject({ using: 'node24', main: 'dist/index.js', post: 'dist/post/index.js' })
  })

  it('gives the demo and test commands', () => {
    expect(readme).toContain('`npm ci && npm run demo`')
    expect(readme).toContain('`npm ci && npm test`')
  })
})
