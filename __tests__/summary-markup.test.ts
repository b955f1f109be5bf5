/**
 * The job summary cannot be restyled by its content. GitHub renders the summary file as Markdown,
 * and an HTML block there ends at a blank line: text with a blank line in it (hook output, docker
 * stderr, log lines) could end the action's HTML and have the rest rendered as Markdown, e.g. an
 * `![x](https://…)` line as an image. These tests render what the action writes through a
 * CommonMark renderer and look for anything the action did not write itself.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from '@jest/globals'
import { HtmlRenderer, Parser } from 'commonmark'
import type { DockerResult, DockerRunOptions, DockerRunner } from '../src/docker/runner.js'
import type { ProbeRecord } from '../src/health/transcript.js'
import { deploy } from '../src/main.js'
import { describeOutcome } from '../src/report/outcome-text.js'
import { Reporter } from '../src/report/reporter.js'
import { renderSummary, type SummaryReport } from '../src/report/summary.js'
import { FakeDockerEngine } from '../test-support/fake-docker-engine.js'
import { testSettings } from '../test-support/settings.js'
import { captureActionStdout } from '../test-support/stdout.js'
import { storyDependencies, virtualClock } from '../test-support/story.js'

/** Lines that Markdown would turn into elements, or that could end an HTML block early. */
const HOSTILE_LINES = [
  'migrating 3 tables',
  '',
  '![x](https://example.invalid/x.png)',
  '',
  '# heading',
  'Setext heading',
  '===',
  '<script>alert(1)</script>',
  '</pre>',
  '</details>',
  '</td></tr></table>',
  '<!--',
  '   ',
  '\t',
  '| a | b |',
  '| --- | --- |',
  '| 1 | 2 |',
  '',
  '[link](https://example.invalid/l) <https://example.invalid/auto> www.example.invalid https://example.invalid/bare',
  '[ref]: https://example.invalid/ref',
  '',
  '    indented code',
  '```',
  'fenced',
  '```',
  '**bold** _em_ `tick` ~~struck~~',
  '> quote',
  '- item',
  '1. item',
  '---',
  '<div>raw</div>',
  '<img src=x onerror=alert(1)>',
  '&amp; &lt; &#60; \\*not em\\*',
  '',
  ''
]

/** The same lines with each line ending runners and containers produce; CommonMark takes all three. */
const HOSTILE_TEXTS: [string, string][] = [
  ['LF', HOSTILE_LINES.join('\n')],
  ['CRLF', HOSTILE_LINES.join('\r\n')],
  ['CR', HOSTILE_LINES.join('\r')],
  ['leading blank lines', '\n\n  \n' + HOSTILE_LINES.join('\n')]
]

/** A summary with `text` in every place that text reaches: from the outside, or from the config. */
function reportWith(text: string): SummaryReport {
  const probe = (elapsedMs: number, ok: boolean): ProbeRecord => ({
    at: text,
    elapsedMs,
    source: text as ProbeRecord['source'],
    ok,
    status: ok ? 200 : undefined,
    error: text,
    detail: text,
    latencyMs: 3
  })
  return {
    headline: `Deploy of v2 failed: pre-deploy hook 1 (./migrate) exited with code 1: ${text}`,
    ok: false,
    environment: text,
    image: text,
    digest: text,
    url: `https://example.invalid/${text}`,
    before: { tag: text, digest: text, imageRef: text },
    now: { tag: text, digest: text },
    steps: [
      { title: text, status: 'failed', durationMs: 1200, detail: text },
      { title: 'Deploy · switch', status: 'skipped', durationMs: 0, detail: text },
      { title: 'Deploy · lock', status: 'warning', durationMs: 5, detail: text }
    ],
    hosts: [
      { host: text, before: text, now: text, outcome: text },
      { host: 'ssh://web2', outcome: text }
    ],
    // Two results that alternate, so that the probe table has rows that do not fold.
    transcript: [probe(0, false), probe(500, true), probe(1000, false)],
    failedLogs: text,
    diagnostics: text,
    plan: [text, `docker pull ${text}`],
    images: [{ host: text, removed: [text, text], freedBytes: 1234, keptInUse: [text], refused: [text] }]
  }
}

const markdown = new Parser()
const html = new HtmlRenderer()

/** What GitHub would show for the summary file, as CommonMark renders it. */
function renderMarkdown(summaryFile: string): string {
  return html.render(markdown.parse(summaryFile))
}

/**
 * The kinds of the document's top-level blocks. A summary that holds nothing but HTML blocks gives
 * Markdown nothing to work on: not CommonMark's constructs, nor GitHub's extensions (tables,
 * autolinks, strikethrough), which also apply only outside HTML blocks.
 */
function blockKinds(summaryFile: string): string[] {
  const kinds: string[] = []
  for (let block = markdown.parse(summaryFile).firstChild; block; block = block.next) kinds.push(block.type)
  return kinds
}

/** Every tag and comment opener, as written: `<td>`, `</td>`, `<a href="…">`, `<!--`. */
function tagsOf(document: string): string[] {
  return [...document.matchAll(/<\/?[a-zA-Z][^>]*>|<!--/g)].map(([tag]) => tag.toLowerCase())
}

/** A tag's name and the names of its attributes, not their values: `<a href>`, `<details open>`. */
function tagShape(tag: string): string {
  const [, slash = '', name = ''] = /^<(\/?)([a-z][a-z0-9-]*)/.exec(tag) ?? []
  const attributes = [...tag.matchAll(/\s([a-z-]+)(?:="[^"]*")?/g)].map(([, attribute]) => ` ${attribute}`)
  return `<${slash}${name}${attributes.join('')}>`
}

/** Tags in `rendered` beyond those in `written`, and tags of `written` that `rendered` lost. */
function tagDifference(written: string[], rendered: string[]): { added: string[]; lost: string[] } {
  const left = new Map<string, number>()
  for (const tag of written) left.set(tag, (left.get(tag) ?? 0) + 1)
  const added: string[] = []
  for (const tag of rendered) {
    const count = left.get(tag) ?? 0
    if (count === 0) added.push(tag)
    else left.set(tag, count - 1)
  }
  const lost = [...left].flatMap(([tag, count]) => Array<string>(count).fill(tag))
  return { added, lost }
}

/** The text a reader sees, tags taken out and white space folded; entities stay as written. */
function textOf(document: string): string {
  return document
    .replace(/<\/?[a-zA-Z][^>]*>|<!--|-->/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
}

/** Where two texts first differ, with some context, or undefined when they are the same. */
function firstDifference(written: string, rendered: string): { written: string; rendered: string } | undefined {
  if (written === rendered) return undefined
  let at = 0
  while (written[at] === rendered[at]) at++
  return { written: written.slice(Math.max(0, at - 80), at + 80), rendered: rendered.slice(Math.max(0, at - 80), at + 80) }
}

/**
 * "An element the action did not write": a tag in the rendered summary that is not one of the
 * tags in the file the action wrote. The written tags are the action's own, which the harmless
 * twin of the summary confirms: the same tags and attributes, but for the `<br>` that each line
 * break of the text becomes (attribute values differ: the URL holds the text). The rendering must
 * keep every written tag as it was, add none, and keep the text as it was (a link reference
 * definition, for one, would vanish without leaving a tag).
 */
function expectRenderedAsWritten(summaryFile: string, harmlessFile: string): void {
  const written = tagsOf(summaryFile)
  const shapesWithoutBreaks = (tags: string[]): string[] => tags.map(tagShape).filter((tag) => tag !== '<br>')
  expect(tagDifference(shapesWithoutBreaks(tagsOf(harmlessFile)), shapesWithoutBreaks(written))).toEqual({ added: [], lost: [] })

  expect(blockKinds(summaryFile).filter((kind) => kind !== 'html_block')).toEqual([])
  const rendered = renderMarkdown(summaryFile)
  expect(tagDifference(written, tagsOf(rendered))).toEqual({ added: [], lost: [] })
  expect(firstDifference(textOf(summaryFile), textOf(rendered))).toBeUndefined()
}

const summaryDirectory = mkdtempSync(join(tmpdir(), 'summary-markup-'))
// `core.summary` keeps the first path it reads, so every test of this file writes to this one.
const summaryPath = join(summaryDirectory, 'step-summary.md')
afterAll(() => rmSync(summaryDirectory, { recursive: true, force: true }))

const stdout = captureActionStdout()

/** The summary file as the action writes it: through the reporter, into GITHUB_STEP_SUMMARY. */
async function writtenSummary(reporter: Reporter, report: Omit<SummaryReport, 'steps'>): Promise<string> {
  writeFileSync(summaryPath, '')
  process.env.GITHUB_STEP_SUMMARY = summaryPath
  await reporter.writeSummary(report)
  return readFileSync(summaryPath, 'utf8')
}

async function writtenReport(report: SummaryReport): Promise<string> {
  const reporter = new Reporter()
  reporter.steps.push(...report.steps)
  return writtenSummary(reporter, report)
}

describe('the job summary under a Markdown renderer', () => {
  it.each(HOSTILE_TEXTS)('renders as written with hostile text (%s) in every place', async (_, text) => {
    expectRenderedAsWritten(await writtenReport(reportWith(text)), await writtenReport(reportWith('harmless')))
  })

  it.each(HOSTILE_TEXTS)('renders as written on success, with the probe table closed (%s)', async (_, text) => {
    const succeeded = (content: string): SummaryReport => ({ ...reportWith(content), ok: true, failedLogs: undefined, diagnostics: undefined })
    expectRenderedAsWritten(await writtenReport(succeeded(text)), await writtenReport(succeeded('harmless')))
  })

  it('renders as written when it is cut to stay under the size limit', async () => {
    // About 1.5 MB of plan lines full of blank lines and markup, so the cut lands among them.
    const huge = (content: string): SummaryReport => ({ ...reportWith(content), plan: Array.from({ length: 3_000 }, () => content) })
    const summary = await writtenReport(huge(HOSTILE_LINES.join('\n')))
    expect(summary).toContain('summary cut to stay under the 1 MiB limit')
    expect(Buffer.byteLength(summary, 'utf8')).toBeLessThan(1024 * 1024)
    expect(blockKinds(summary).filter((kind) => kind !== 'html_block')).toEqual([])
    const rendered = renderMarkdown(summary)
    expect(tagDifference(tagsOf(summary), tagsOf(rendered))).toEqual({ added: [], lost: [] })
    expect(firstDifference(textOf(summary), textOf(rendered))).toBeUndefined()
  })

  it('turns line breaks outside <pre> into <br>, drops blank lines, and escapes the text', () => {
    const summary = renderSummary({ ...reportWith('harmless'), headline: 'first\r\n\r\n  \n<b>second</b>\rthird\n' })
    expect(summary).toContain('<h2>❌ first<br>&lt;b&gt;second&lt;/b&gt;<br>third</h2>')
  })

  it('keeps the lines of <pre> blocks as they were, escaped', () => {
    const summary = renderSummary({ ...reportWith('harmless'), failedLogs: 'one\n\n<two>\n\n\nthree' })
    expect(summary).toContain('<pre>one\n\n&lt;two&gt;\n\n\nthree</pre>')
  })

  it('ends with a blank line, so that the next step’s Markdown is not taken into its HTML', async () => {
    const summary = await writtenReport(reportWith('harmless'))
    expect(renderMarkdown(summary + '## Tests\n')).toContain('<h2>Tests</h2>')
  })
})

/** The in-memory engine, where the pre-deploy hook prints `output` on stderr and fails. */
class FailingHook implements DockerRunner {
  readonly engine = new FakeDockerEngine()
  constructor(private readonly output: string) {
    this.engine.images.add('127.0.0.1:5999/acme/web:v2')
  }

  async run(argv: readonly string[], options?: DockerRunOptions): Promise<DockerResult> {
    if (argv[0] === 'container' && argv[1] === 'run' && argv.includes('web-hook')) return { exitCode: 1, stdout: '', stderr: this.output }
    return this.engine.run(argv, options)
  }
}

describe('hook output in the job summary (issue 18, case 9)', () => {
  it('shows an ![x](https://…) line after a blank line as text, not as an image', async () => {
    const settings = testSettings({ hooks: { preDeploy: [['./migrate']] } })
    const runner = new FailingHook('migrating 3 tables\n\n![x](https://example.invalid/x.png)\n')
    const reporter = new Reporter()
    const outcome = await deploy(settings, reporter, storyDependencies({ engines: { local: runner }, clock: virtualClock() }))
    expect(outcome).toMatchObject({ kind: 'failed-before-switch', stage: 'hooks' })

    // What `finish` writes for this outcome: the hook's output reaches the headline and the steps table.
    const { headline } = describeOutcome(outcome, settings, undefined)
    const summary = await writtenSummary(reporter, { headline, ok: false, environment: settings.environment, image: `${settings.image}:v2` })
    expect(summary.match(/!\[x\]\(https:\/\/example\.invalid\/x\.png\)/g)).toHaveLength(2)
    expect(stdout.text()).toContain('![x](https://example.invalid/x.png)')

    const rendered = renderMarkdown(summary)
    expect(rendered).not.toMatch(/<img/i)
    expect(rendered.match(/!\[x\]\(https:\/\/example\.invalid\/x\.png\)/g)).toHaveLength(2)
    expect(blockKinds(summary).filter((kind) => kind !== 'html_block')).toEqual([])
  })
})
