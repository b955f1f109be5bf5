/**
 * Durations in the config are a number with a unit: `500ms`, `2s`, `1m`. Only these three units
 * exist so that a value reads the same to everyone; longer spans are written in minutes.
 */

/** The longest duration any setting accepts. Anything longer is a typo, not a plan. */
export const MAX_DURATION_MS = 24 * 60 * 60 * 1000

/** The wording every duration error starts with, so users see one consistent hint. */
export const DURATION_EXPECTED = 'expected a duration such as 500ms, 2s or 1m'

const UNIT_MS = { ms: 1, s: 1000, m: 60_000 } as const

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m)$/

export interface DurationOptions {
  /** Whether `0s` makes sense for this setting (e.g. `watch: 0s` means "do not watch"). */
  allowZero?: boolean
  /** Upper bound in milliseconds; defaults to 24 hours. */
  maxMs?: number
}

export type DurationResult = { ok: true; ms: number } | { ok: false; expected: string }

/**
 * Parses a duration such as `500ms`, `2s` or `1m` into milliseconds.
 * On failure, `expected` says what a valid value looks like (it starts with "expected").
 */
export function parseDuration(value: unknown, options: DurationOptions = {}): DurationResult {
  const maxMs = options.maxMs ?? MAX_DURATION_MS
  if (typeof value === 'number') {
    // A bare YAML number: the unit is missing, and guessing it would be worse than asking.
    return { ok: false, expected: `${DURATION_EXPECTED} (a number with a unit, e.g. ${value}s)` }
  }
  if (typeof value !== 'string') return { ok: false, expected: DURATION_EXPECTED }
  const text = value.trim()
  if (text.startsWith('-')) return { ok: false, expected: `${DURATION_EXPECTED}, not a negative one` }
  const match = DURATION.exec(text)
  if (!match) {
    if (/^\d+(\.\d+)?$/.test(text)) return { ok: false, expected: `${DURATION_EXPECTED} (the unit is missing)` }
    if (/^\d+(\.\d+)?\s*(h|hr|hours?|d|days?)$/i.test(text)) {
      return { ok: false, expected: `${DURATION_EXPECTED} (units are ms, s and m; write hours as minutes, e.g. 60m)` }
    }
    return { ok: false, expected: DURATION_EXPECTED }
  }
  const amount = Number(match[1])
  const unit = match[2] as keyof typeof UNIT_MS
  const ms = amount * UNIT_MS[unit]
  if (!Number.isSafeInteger(ms)) {
    return Number.isFinite(ms) && ms < maxMs
      ? { ok: false, expected: `${DURATION_EXPECTED} in whole milliseconds` }
      : { ok: false, expected: `${DURATION_EXPECTED} of at most ${formatDuration(maxMs)}` }
  }
  if (ms === 0 && !options.allowZero) return { ok: false, expected: `${DURATION_EXPECTED} greater than zero` }
  if (ms > maxMs) return { ok: false, expected: `${DURATION_EXPECTED} of at most ${formatDuration(maxMs)}` }
  return { ok: true, ms }
}

/** Formats milliseconds in the config's own units, the largest that divides evenly: `90s`, `10m`. */
export function formatDuration(ms: number): string {
  if (ms !== 0 && ms % 60_000 === 0) return `${ms / 60_000}m`
  if (ms % 1000 === 0) return `${ms / 1000}s`
  return `${ms}ms`
}
