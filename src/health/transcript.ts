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
