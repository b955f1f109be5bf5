/**
 * The yaml code blocks of the README's `## Quick start` section, for tests that keep the README and
 * the code in sync. Pure: takes the README's text, reads no file.
 */

export interface QuickStartBlocks {
  /** The first yaml block: the deploy config (`.github/deploy.yml`). */
  config: string
  /** The second: the build-and-deploy workflow (`.github/workflows/deploy.yml`). */
  workflow: string
  /** The third: the manual rollback workflow (`.github/workflows/rollback.yml`). */
  rollback: string
}

const SECTION = 'Quick start'

/**
 * Finds the `## Quick start` section (up to the next level-2 heading, `### …` belong to it) and
 * returns the contents of its first three ```yaml (or ```yml) fenced blocks, in order, each
 * without its fences and ending with a newline. A `## …` line inside a fenced block is code, not
 * a heading. Throws when the section is missing or holds fewer than three yaml blocks.
 */
export function quickStartBlocks(readmeText: string): QuickStartBlocks {
  const lines = readmeText.replace(/\r\n?/g, '\n').split('\n')
  const blocks: string[] = []
  let inSection = false
  let found = false
  /** The open fence (its marker characters), or undefined outside a fenced block. */
  let fence: string | undefined
  let current: string[] | undefined
  for (const line of lines) {
    if (fence !== undefined) {
      // A closing fence: the same character, at least as long, nothing but spaces after it.
      const closing = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(line)?.[1]
      if (closing !== undefined && closing[0] === fence[0] && closing.length >= fence.length) {
        if (current) blocks.push(current.map((text) => `${text}\n`).join(''))
        fence = undefined
        current = undefined
      } else {
        current?.push(line)
      }
      continue
    }
    const heading = /^##\s+(.*?)\s*#*\s*$/.exec(line)
    if (heading && !line.startsWith('###')) {
      if (inSection) break
      inSection = heading[1] === SECTION
      found ||= inSection
      continue
    }
    const opening = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)/.exec(line)
    if (opening) {
      fence = opening[1] as string
      const info = (opening[2] ?? '').toLowerCase()
      current = inSection && (info === 'yaml' || info === 'yml') ? [] : undefined
    }
  }
  if (!found) throw new Error(`README has no "## ${SECTION}" section`)
  const [config, workflow, rollback] = blocks
  if (config === undefined || workflow === undefined || rollback === undefined) {
    throw new Error(`"## ${SECTION}" has ${blocks.length} yaml block(s); expected the deploy config, the deploy workflow and the rollback workflow`)
  }
  return { config, workflow, rollback }
}
