import { describe, expect, it } from '@jest/globals'
import { collapseProbeRuns, sameProbeResult, type ProbeRecord } from '../src/health/transcript.js'
import { renderSummary, type SummaryReport } from '../src/report/summary.js'

const START = Date.parse('2026-03-01T10:00:00Z')

/** An HTTP probe `elapsedMs` into the check; the result defaults to a refused connection. */
function probe(elapsedMs: number, result: Partial<ProbeRecord> = {}): ProbeRecord {
  return {
    at: new Date(START + elapsedMs).toISOString(),
    elapsedMs,
    source: 'http',
    ok: false,
    error: 'ECONNREFUSED',
    detail: 'connection refused',
    latencyMs: 2,
    ...result
  }
}

const OK_200: Partial<ProbeRecord> = { ok: true, status: 200, error: undefined, detail: undefined }
const HTTP_503: Partial<ProbeRecord> = { status: 503, error: undefined, detail: 'expected 200' }

function report(transcript: ProbeRecord[], ok = false): SummaryReport {
  return { headline: 'Deploy of v2 failed.', ok, environment: 'production', image: 'acme/web', steps: [], transcript }
}

/** The cells of the health-probe table, one array per row, header left out. */
function probeRows(html: string): string[][] {
  const details = /<details[^>]*><summary>Health probes[\s\S]*?<\/details>/.exec(html)?.[0] ?? ''
  return [...details.matchAll(/<tr>(.*?)<\/tr>/g)]
    .map(([, row]) => [...(row ?? '').matchAll(/<td>(.*?)<\/td>/g)].map(([, cell]) => cell ?? ''))
    .filter(cells => cells.length > 0)
}

describe('sameProbeResult', () => {
  it('compares source, outcome, status, error and detail, not time or latency', () => {
    expect(sameProbeResult(probe(0), probe(500, { latencyMs: 90 }))).toBe(true)
    expect(sameProbeResult(probe(0), probe(500, { source: 'state' }))).toBe(false)
    expect(sameProbeResult(probe(0), probe(500, { ok: true }))).toBe(false)
    expect(sameProbeResult(probe(0, HTTP_503), probe(500, { ...HTTP_503, status: 502 }))).toBe(false)
    expect(sameProbeResult(probe(0), probe(500, { error: 'ECONNRESET' }))).toBe(false)
    expect(sameProbeResult(probe(0, HTTP_503), probe(500, { ...HTTP_503, detail: 'expected 204' }))).toBe(false)
  })
})

describe('collapseProbeRuns', () => {
  it('folds consecutive identical results into one run with its count, ends and latency range', () => {
    const records = [probe(0, { latencyMs: 3 }), probe(500, { latencyMs: 1 }), probe(1000, { latencyMs: 7 }), probe(1500, OK_200)]
    const runs = collapseProbeRuns(records)
    expect(runs).toHaveLength(2)
    expect(runs[0]).toEqual({ first: records[0], last: records[2], count: 3, latencyMs: { min: 1, max: 7 } })
    expect(runs[1]).toEqual({ first: records[3], last: records[3], count: 1, latencyMs: { min: 2, max: 2 } })
  })

  it('does not fold identical results that are not consecutive', () => {
    const records = [probe(0), probe(500, HTTP_503), probe(1000)]
    expect(collapseProbeRuns(records).map(run => run.count)).toEqual([1, 1, 1])
  })

  it('leaves the latency out when no record of the run has one, and ignores records without one', () => {
    const state = { source: 'state', ok: true, error: undefined, detail: 'running', latencyMs: undefined } as const
    expect(collapseProbeRuns([probe(0, state), probe(10, state)])).toEqual([expect.not.objectContaining({ latencyMs: expect.anything() })])
    expect(collapseProbeRuns([probe(0, { latencyMs: undefined }), probe(10, { latencyMs: 4 }), probe(20, { latencyMs: undefined })])[0]?.latencyMs).toEqual({
      min: 4,
      max: 4
    })
  })

  it('answers no runs for no records', () => {
    expect(collapseProbeRuns([])).toEqual([])
  })
})

describe('renderSummary: health probes', () => {
  it('shows a run of identical probes as one row with its count and time range', () => {
    const refused = Array.from({ length: 12 }, (_, i) => probe(1200 + i * 327, { latencyMs: 1 + i }))
    const rows = probeRows(renderSummary(report([...refused, probe(5000, OK_200)])))
    expect(rows).toEqual([
      [refused[0]?.at, '1.2 s – 4.8 s', 'http', '❌ ECONNREFUSED · connection refused ×12', '1 ms – 12 ms'],
      [new Date(START + 5000).toISOString(), '5.0 s', 'http', '✅ 200', '2 ms']
    ])
  })

  it('keeps single probes as they were: one duration, no count', () => {
    const rows = probeRows(renderSummary(report([probe(850), probe(1350, HTTP_503), probe(1850)])))
    expect(rows.map(row => row.slice(1))).toEqual([
      ['850 ms', 'http', '❌ ECONNREFUSED · connection refused', '2 ms'],
      ['1.4 s', 'http', '❌ 503 · expected 200', '2 ms'],
      ['1.9 s', 'http', '❌ ECONNREFUSED · connection refused', '2 ms']
    ])
  })

  it('sorts state reads and HTTP probes by time before folding', () => {
    const exited = { source: 'state', ok: false, error: undefined, detail: 'the container exited with code 1', latencyMs: undefined } as const
    const html = renderSummary(report([probe(0), probe(1000), probe(400, exited), probe(500), probe(600)]))
    expect(probeRows(html).map(row => [row[1], row[3]])).toEqual([
      ['0 ms', '❌ ECONNREFUSED · connection refused'],
      ['400 ms', '❌ the container exited with code 1'],
      ['500 ms – 1.0 s', '❌ ECONNREFUSED · connection refused ×3']
    ])
    expect(html).toContain('<summary>Health probes (5)</summary>')
  })

  it('applies the row limit to collapsed rows, and counts the probes left out', () => {
    // 250 alternating results: nothing folds, so 200 rows remain and 50 probes are left out.
    const alternating = Array.from({ length: 250 }, (_, i) => probe(i * 100, i % 2 === 0 ? {} : HTTP_503))
    const cut = renderSummary(report(alternating))
    expect(probeRows(cut)).toHaveLength(200)
    expect(cut).toContain('<p>50 earlier probes left out.</p>')
    expect(probeRows(cut)[0]?.[1]).toBe('5.0 s')

    // 500 probes folding into 2 rows: all of them fit.
    const folded = renderSummary(report([...Array.from({ length: 300 }, (_, i) => probe(i * 100)), ...Array.from({ length: 200 }, (_, i) => probe(30_000 + i * 100, OK_200))]))
    expect(probeRows(folded).map(row => row[3])).toEqual(['❌ ECONNREFUSED · connection refused ×300', '✅ 200 ×200'])
    expect(folded).not.toContain('earlier probes left out')
    expect(folded).toContain('<summary>Health probes (500)</summary>')

    // A run cut by the limit leaves out all of its probes, and the note counts them.
    const longFirstRun = [...Array.from({ length: 40 }, (_, i) => probe(i * 10)), ...Array.from({ length: 200 }, (_, i) => probe(1000 + i * 100, i % 2 === 0 ? OK_200 : HTTP_503))]
    const cutRun = renderSummary(report(longFirstRun))
    expect(probeRows(cutRun)).toHaveLength(200)
    expect(cutRun).toContain('<p>40 earlier probes left out.</p>')
  })

  it('escapes what the probes report', () => {
    const html = renderSummary(report([probe(0, { detail: '<b>boom</b>' }), probe(10, { detail: '<b>boom</b>' })]))
    expect(probeRows(html)[0]?.[3]).toBe('❌ ECONNREFUSED · &lt;b&gt;boom&lt;/b&gt; ×2')
  })

  it('opens the probe table on failure and closes it on success', () => {
    expect(renderSummary(report([probe(0)], false))).toContain('<details open><summary>Health probes (1)</summary>')
    expect(renderSummary(report([probe(0, OK_200)], true))).toContain('<details><summary>Health probes (1)</summary>')
    expect(renderSummary(report([]))).not.toContain('Health probes')
  })
})

describe('the facts table', () => {
  it('shows the image without the digest when the digest has its own row (it made the row too wide to read)', () => {
    const digest = `sha256:${'a'.repeat(64)}`
    const html = renderSummary({ ...report([], true), image: `ghcr.io/acme/web:v2@${digest}`, digest })
    expect(html).toContain('<td>Image</td><td><code>ghcr.io/acme/web:v2</code></td>')
    expect(html).toContain(`<td>Digest</td><td><code>${digest}</code></td>`)
    // Without a digest row, nothing is cut.
    expect(renderSummary({ ...report([], true), image: `ghcr.io/acme/web:v2@${digest}` })).toContain(`<code>ghcr.io/acme/web:v2@${digest}</code>`)
  })
})
