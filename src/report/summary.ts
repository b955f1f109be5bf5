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

/**
 * Renders the job summary as HTML (the summary renders HTML tables, not markdown tables). Every
 * value is escaped: tags, log lines and docker errors come from outside and may hold markup.
 */
export function renderSummary(report: SummaryReport): string {
  const parts: string[] = []
  parts.push(`<h2>${report.ok ? '✅' : '❌'} ${escapeHtml(report.headline)}</h2>`)

  const facts: [string, string][] = [
    ['Environment', escapeHtml(report.environment)],
    ['Image', code(report.image)],
    ['Digest', report.digest ? code(report.digest) : '–'],
    ['Ran before', releaseCell(report.before)],
    ['Runs now', releaseCell(report.now)]
  ]
  if (report.url) facts.push(['URL', `<a href="${escapeHtml(report.url)}">${escapeHtml(report.url)}</a>`])
  parts.push(table(['', ''], facts, false))

  if (report.hosts && report.hosts.length > 0) {
    parts.push('<h3>Hosts</h3>')
    parts.push(
      table(
        ['Host', 'Before', 'Now', 'Outcome'],
        report.hosts.map((row) => [code(row.host), escapeHtml(row.before ?? '–'), escapeHtml(row.now ?? '–'), escapeHtml(row.outcome)])
      )
    )
  }

  parts.push('<h3>Steps</h3>')
  parts.push(
    table(
      ['Step', 'Status', 'Duration', 'Detail'],
      report.steps.map((step) => [
        escapeHtml(step.title),
        `${STATUS_ICON[step.status]} ${step.status}`,
        step.status === 'skipped' ? '–' : escapeHtml(formatDuration(step.durationMs)),
        escapeHtml(step.detail)
      ])
    )
  )

  if (report.images && report.images.length > 0) {
    const freed = report.images.reduce((sum, cleanup) => sum + cleanup.freedBytes, 0)
    const removed = report.images.reduce((sum, cleanup) => sum + cleanup.removed.length, 0)
    parts.push(`<h3>Images</h3>`)
    parts.push(`<p>${removed === 0 ? 'No image was removed.' : `Removed ${removed} old image${removed === 1 ? '' : 's'}, freeing ${escapeHtml(formatBytes(freed))}.`}</p>`)
    parts.push(
      table(
        ['Host', 'Removed', 'Freed', 'Kept: a container uses it'],
        report.images.map((cleanup) => [
          code(cleanup.host),
          cleanup.removed.length > 0 ? cleanup.removed.map(code).join(' ') : '–',
          escapeHtml(formatBytes(cleanup.freedBytes)),
          cleanup.keptInUse.length > 0 ? cleanup.keptInUse.map(code).join(' ') : '–'
        ])
      )
    )
  }
  if (report.plan && report.plan.length > 0) {
    parts.push('<h3>Plan (dry run: nothing was changed)</h3>')
    parts.push(`<pre>${escapeHtml(report.plan.join('\n'))}</pre>`)
  }
  if (report.diagnostics) {
    parts.push('<h3>Diagnostics</h3>')
    parts.push(`<pre>${escapeHtml(clip(report.diagnostics, MAX_LOG_CHARS))}</pre>`)
  }
  if (report.transcript && report.transcript.length > 0) {
    // State reads and HTTP probes run side by side; show them in the order they happened.
    const sorted = [...report.transcript].sort((a, b) => a.elapsedMs - b.elapsedMs)
    // The row limit counts rows, so it applies after the collapse; the note counts probes.
    const rows = collapseProbeRuns(sorted).slice(-MAX_TRANSCRIPT_ROWS)
    const dropped = report.transcript.length - rows.reduce((sum, run) => sum + run.count, 0)
    parts.push(
      `<details${report.ok ? '' : ' open'}><summary>Health probes (${report.transcript.length})</summary>` +
        (dropped > 0 ? `<p>${dropped} earlier probes left out.</p>` : '') +
        table(
          ['Time', 'After', 'Check', 'Result', 'Latency'],
          rows.map((run) => [
            escapeHtml(run.first.at),
            escapeHtml(durationRange(run.first.elapsedMs, run.last.elapsedMs)),
            escapeHtml(run.first.source),
            `${run.first.ok ? '✅' : '❌'} ${escapeHtml(probeResult(run.first))}${run.count > 1 ? ` ×${run.count}` : ''}`,
            run.latencyMs ? escapeHtml(durationRange(run.latencyMs.min, run.latencyMs.max)) : '–'
          ])
        ) +
        '</details>'
    )
  }
  if (report.failedLogs) {
    parts.push(
      `<details open><summary>Last log lines of the failed container</summary><pre>${escapeHtml(clip(report.failedLogs, MAX_LOG_CHARS))}</pre></details>`
    )
  }

  const html = parts.join('\n')
  if (Buffer.byteLength(html, 'utf8') <= MAX_SUMMARY_BYTES) return html
  return html.slice(0, MAX_SUMMARY_BYTES / 2) + '\n<p>(summary cut to stay under the 1 MiB limit; see the job log)</p>'
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
  return code(release.tag) + (release.digest ? ` <sub>${escapeHtml(release.digest.slice(0, 19))}</sub>` : '')
}

function table(headers: string[], rows: string[][], withHeader = true): string {
  const head = withHeader ? `<tr>${headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>` : ''
  return `<table>${head}${rows.map((row) => `<tr>${row.map((cell) => `<td>${cell}</td>`).join('')}</tr>`).join('')}</table>`
}

function code(text: string): string {
  return `<code>${escapeHtml(text)}</code>`
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : '…' + text.slice(text.length - max)
}

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;')
}
