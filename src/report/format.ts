/** `850 ms` or `2.4 s`: durations as a person reads them on the job page. */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`
}
