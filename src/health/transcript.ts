/**
 * The health check's transcript: one record per HTTP probe and per change of the container's
 * state, kept for the job summary and the failure report.
 */

/** One line of the transcript. */
export interface ProbeRecord {
  /** When the probe started (ISO 8601). */
  at: string
  /** Milliseconds since the health check began. */
  elapsedMs: number
  source: 'http' | 'state'
  ok: boolean
  /** HTTP status, when an answer arrived. */
  status?: number
  /** HTTP probe duration, from sending the request to reading the body (or giving up). */
  latencyMs?: number
  /** Short error code: `ECONNREFUSED`, `ECONNRESET`, `TIMEOUT`, `UND_ERR_SOCKET`, … */
  error?: string
  /** What a person reads: `expected 200`, `connection refused`, `the container exited with code 1`, … */
  detail?: string
}

/**
 * Keeps the first `head` and the last `tail` records and counts the ones in between, so that a
 * long deadline with a short interval cannot grow the report without bound. The start (what went
 * wrong first) and the end (what it looked like when we gave up) are what a reader needs.
 */
export class BoundedTranscript {
  private readonly first: ProbeRecord[] = []
  private readonly last: ProbeRecord[] = []
  private droppedCount = 0

  constructor(
    private readonly head = 20,
    private readonly tail = 80
  ) {}

  add(record: ProbeRecord): void {
    if (this.first.length < this.head) {
      this.first.push(record)
      return
    }
    this.last.push(record)
    if (this.last.length > this.tail) {
      this.last.shift()
      this.droppedCount++
    }
  }

  /** The kept records in order; records `head … head + dropped - 1` are missing between the two parts. */
  records(): ProbeRecord[] {
    return [...this.first, ...this.last]
  }

  /** How many records were left out between the first `head` and the last `tail`. */
  get dropped(): number {
    return this.droppedCount
  }
}

/** Consecutive probes with the same result, shown as one row of the job summary. */
export interface ProbeRun {
  /** The run's first record: its time starts the run, and its result stands for every record. */
  first: ProbeRecord
  /** The run's last record; `first` itself for a run of one. */
  last: ProbeRecord
  /** How many records the run holds, at least 1. */
  count: number
  /** Shortest and longest latency among the run's records that have one; absent when none has. */
  latencyMs?: { min: number; max: number }
}

/**
 * Whether two records show the same result: same source, outcome, HTTP status, error and detail.
 * Time and latency are left out, since they differ on every probe.
 */
export function sameProbeResult(a: ProbeRecord, b: ProbeRecord): boolean {
  return a.source === b.source && a.ok === b.ok && a.status === b.status && a.error === b.error && a.detail === b.detail
}

/**
 * Folds runs of consecutive records with the same result (see `sameProbeResult`) into one
 * `ProbeRun` each, keeping their order. A 60 s deadline probed every 500 ms otherwise fills the
 * summary with 120 identical `connection refused` rows that hide the one that changed. Expects the
 * records in the order they happened; does not sort them.
 */
export function collapseProbeRuns(records: readonly ProbeRecord[]): ProbeRun[] {
  const runs: ProbeRun[] = []
  for (const record of records) {
    const run = runs.at(-1)
    if (run && sameProbeResult(run.last, record)) {
      run.last = record
      run.count++
      run.latencyMs = widen(run.latencyMs, record.latencyMs)
    } else {
      runs.push({ first: record, last: record, count: 1, ...(record.latencyMs !== undefined && { latencyMs: { min: record.latencyMs, max: record.latencyMs } }) })
    }
  }
  return runs
}

function widen(range: ProbeRun['latencyMs'], latencyMs: number | undefined): ProbeRun['latencyMs'] {
  if (latencyMs === undefined) return range
  return range ? { min: Math.min(range.min, latencyMs), max: Math.max(range.max, latencyMs) } : { min: latencyMs, max: latencyMs }
}
