import { collapseProbeRuns, type ProbeRecord } from '../health/transcript.js'
import { formatBytes, type ImageCleanup } from '../images.js'
import type { Release } from '../settings.js'
import { formatDuration } from './format.js'
import type { StepRecord } from './reporter.js'

export interface HostRow {
  host: string
  before?: string
  now?: string
  outcome: string
}

export interface SummaryReport {
  /** One sentence: what happened and what runs now. */
  headline: string
  ok: boolean
  environment: string
  image: string
  digest?: string
  url?: string
  before?: Release
  now?: Release
  steps: StepRecord[]
  hosts?: HostRow[]
  /** Health probes of the version that failed, in order. */
  transcript?: ProbeRecord[]
  /** Last log lines of the container that failed. */
  failedLogs?: string
  /** Extra diagnostics, e.g. Swarm task errors. */
  diagnostics?: string
  /** Docker commands a dry run would run. */
  plan?: string[]
  /** Old images removed from each host (`retain`). */
  images?: ImageCleanup[]
}

/** GitHub rejects summaries over 1 MiB; stay well below with room for other steps' summaries. */
const MAX_SUMMARY_BYTES = 900 * 1024
const MAX_LOG_CHARS = 64 * 1024
const MAX_TRANSCRIPT_ROWS = 200

const STATUS_ICON: Record<StepRecord['status'], string> = { ok: '✅', warning: '⚠️', failed: '❌', skipped: '⏭️' }

/** Ends an HTML block: GitHub renders the summary file as Markdown, where a blank line does that. */
const BLOCK_BREAK = '\n\n'
const CUT_NOTE = '<p>(summary cut to stay under the 1 MiB limit; see the job log)</p>'

/**
 * Renders the job summary as HTML (the summary renders HTML tables, not markdown tables). Every
 * value is escaped: tags, log lines and docker errors come from outside and may hold markup.
 *
 * GitHub renders the summary file as Markdown, where an HTML block ends at the first blank line
 * and what follows is Markdown again: hook output with a blank line in the headline once turned
 * the next line, `![x](https://…)`, into an image. So the text cannot restyle the summary:
 * - outside `<pre>`, text holds no line ending: each becomes `<br>`, and blank lines are dropped;
 * - each `<pre>` opens a line after a blank line, which makes it an HTML block of its own that
 *   ends only at a line holding `</pre>`, and the escaped text cannot hold one;
 * - the summary is HTML blocks only, one after another, and ends with a blank line, so that the
 *   next step's Markdown is not taken into its last block.
 */
export function renderSummary(report: SummaryReport): string {
  const sections: string[] = []
  sections.push(`<h2>${report.ok ? '✅' : '❌'} ${escapeInline(report.headline)}</h2>`)

  const facts: [string, string][] = [
    ['Environment', escapeInline(report.environment)],
    // The digest has its own row: repeated here, it made the row too wide to read on the job page.
    ['Image', code(report.digest && report.image.endsWith(`@${report.digest}`) ? report.image.slice(0, -report.digest.length - 1) : report.image)],
    ['Digest', report.digest ? code(report.digest) : '–'],
    ['Ran before', releaseCell(report.before)],
    ['Runs now', releaseCell(report.now)]
  ]
  if (report.url) facts.push(['URL', `<a href="${escapeAttribute(report.url)}">${escapeInline(report.url)}</a>`])
  sections.push(table(['', ''], facts, false))

  if (report.hosts && report.hosts.length > 0) {
    sections.push(
      '<h3>Hosts</h3>\n' +
        table(
          ['Host', 'Before', 'Now', 'Outcome'],
          report.hosts.map((row) => [code(row.host), escapeInline(row.before ?? '–'), escapeInline(row.now ?? '–'), escapeInline(row.outcome)])
        )
    )
  }

  sections.push(
    '<h3>Steps</h3>\n' +
      table(
        ['Step', 'Status', 'Duration', 'Detail'],
        report.steps.map((step) => [
          escapeInline(step.title),
          `${STATUS_ICON[step.status]} ${step.status}`,
          step.status === 'skipped' ? '–' : escapeInline(formatDuration(step.durationMs)),
          escapeInline(step.detail)
        ])
      )
  )

  if (report.images && report.images.length > 0) {
    const freed = report.images.reduce((sum, cleanup) => sum + cleanup.freedBytes, 0)
    const removed = report.images.reduce((sum, cleanup) => sum + cleanup.removed.length, 0)
    sections.push(
      '<h3>Images</h3>\n' +
        `<p>${removed === 0 ? 'No image was removed.' : `Removed ${removed} old image${removed === 1 ? '' : 's'}, freeing ${escapeInline(formatBytes(freed))}.`}</p>\n` +
        table(
          ['Host', 'Removed', 'Freed', 'Kept: a container uses it'],
          report.images.map((cleanup) => [
            code(cleanup.host),
            cleanup.removed.length > 0 ? cleanup.removed.map(code).join(' ') : '–',
            escapeInline(formatBytes(cleanup.freedBytes)),
            cleanup.keptInUse.length > 0 ? cleanup.keptInUse.map(code).join(' ') : '–'
          ])
        )
    )
  }
  if (report.plan && report.plan.length > 0) {
    sections.push('<h3>Plan (dry run: nothing was changed)</h3>' + BLOCK_BREAK + preformatted(report.plan.join('\n')))
  }
  if (report.diagnostics) {
    sections.push('<h3>Diagnostics</h3>' + BLOCK_BREAK + preformatted(clip(report.diagnostics, MAX_LOG_CHARS)))
  }
  if (report.transcript && report.transcript.length > 0) {
    // State reads and HTTP probes run side by side; show them in the order they happened.
    const sorted = [...report.transcript].sort((a, b) => a.elapsedMs - b.elapsedMs)
    // The row limit counts rows, so it applies after the collapse; the note counts probes.
    const rows = collapseProbeRuns(sorted).slice(-MAX_TRANSCRIPT_ROWS)
    const dropped = report.transcript.length - rows.reduce((sum, run) => sum + run.count, 0)
    sections.push(
      `<details${report.ok ? '' : ' open'}><summary>Health probes (${report.transcript.length})</summary>` +
        (dropped > 0 ? `<p>${dropped} earlier probes left out.</p>` : '') +
        table(
          ['Time', 'After', 'Check', 'Result', 'Latency'],
          rows.map((run) => [
            escapeInline(run.first.at),
            escapeInline(durationRange(run.first.elapsedMs, run.last.elapsedMs)),
            escapeInline(run.first.source),
            `${run.first.ok ? '✅' : '❌'} ${escapeInline(probeResult(run.first))}${run.count > 1 ? ` ×${run.count}` : ''}`,
            run.latencyMs ? escapeInline(durationRange(run.latencyMs.min, run.latencyMs.max)) : '–'
          ])
        ) +
        '</details>'
    )
  }
  if (report.failedLogs) {
    // `<details>` opens an HTML block that a blank line would end: the `<pre>` gets a block of its own.
    sections.push(
      '<details open><summary>Last log lines of the failed container</summary>' + BLOCK_BREAK + preformatted(clip(report.failedLogs, MAX_LOG_CHARS)) + BLOCK_BREAK + '</details>'
    )
  }

  return summaryDocument(withinSizeLimit(sections))
}

/**
 * The sections as separate HTML blocks. The leading line break puts `<h2>` at the start of a line
 * even after a step whose summary did not end with one: there it would join that step's paragraph,
 * where Markdown reads the text.
 */
function summaryDocument(sections: string[]): string {
  return '\n' + sections.join(BLOCK_BREAK) + BLOCK_BREAK
}

/**
 * The sections that fit under the size limit, in order, and a note when some did not. Cut between
 * sections, never inside one, so that no `<pre>` or `<details>` is left open.
 */
function withinSizeLimit(sections: string[]): string[] {
  const fits = (kept: string[]): boolean => Buffer.byteLength(summaryDocument(kept), 'utf8') <= MAX_SUMMARY_BYTES
  if (fits(sections)) return sections
  const kept: string[] = []
  for (const section of sections) {
    if (!fits([...kept, section, CUT_NOTE])) break
    kept.push(section)
  }
  return [...kept, CUT_NOTE]
}

function probeResult(probe: ProbeRecord): string {
  const parts: string[] = []
  if (probe.status !== undefined) parts.push(String(probe.status))
  if (probe.error) parts.push(probe.error)
  if (probe.detail) parts.push(probe.detail)
  return parts.join(' · ') || (probe.ok ? 'ok' : 'failed')
}

/** `1.2 s – 4.8 s` for a run whose ends differ once formatted, otherwise the one duration. */
function durationRange(fromMs: number, toMs: number): string {
  const from = formatDuration(fromMs)
  const to = formatDuration(toMs)
  return from === to ? from : `${from} – ${to}`
}

function releaseCell(release: Release | undefined): string {
  if (!release) return '–'
  return code(release.tag) + (release.digest ? ` <sub>${escapeInline(release.digest.slice(0, 19))}</sub>` : '')
}

/** One line: cells hold escaped text without line endings, so no blank line can end the table. */
function table(headers: string[], rows: string[][], withHeader = true): string {
  const head = withHeader ? `<tr>${headers.map((h) => `<th>${escapeInline(h)}</th>`).join('')}</tr>` : ''
  return `<table>${head}${rows.map((row) => `<tr>${row.map((cell) => `<td>${cell}</td>`).join('')}</tr>`).join('')}</table>`
}

function code(text: string): string {
  return `<code>${escapeInline(text)}</code>`
}

/**
 * Text for a place outside `<pre>`: escaped, each line ending (CommonMark counts `\r\n`, `\r` and
 * `\n`) turned into `<br>`, and blank lines dropped. Without a line ending, the text cannot hold the
 * blank line that would end the HTML block around it.
 */
function escapeInline(text: string): string {
  return text
    .split(LINE_ENDING)
    .filter((line) => line.trim() !== '')
    .map(escapeHtml)
    .join('<br>')
}

/** An attribute value: escaped, with line endings as character references, which HTML reads back. */
function escapeAttribute(text: string): string {
  return escapeHtml(text).replace(/\r/g, '&#13;').replace(/\n/g, '&#10;')
}

/**
 * Text in a `<pre>`, its lines as they were, blank ones too: the caller puts it after a blank line,
 * where `<pre>` opens an HTML block that only a line holding `</pre>` ends, and the escaped text
 * holds none.
 */
function preformatted(text: string): string {
  return `<pre>${escapeHtml(text)}</pre>`
}

const LINE_ENDING = /\r\n|\r|\n/

function clip(text: string, max: number): string {
  return text.length <= max ? text : '…' + text.slice(text.length - max)
}

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;')
}
