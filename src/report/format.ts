/** `850 ms` or `2.4 s`: durations as a person reads them on the job page. */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`
}

/** Ends `text` with a full stop unless it already ends a sentence, so messages never read `?.`. */
export function sentence(text: string): string {
  const trimmed = text.trim()
  return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`
}
