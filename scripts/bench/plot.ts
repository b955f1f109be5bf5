/**
 * The bench's charts: hand-written SVG (no plotting library), one function per chart, each
 * drawing from the medians and single runs a figure module measured. `bench/*.svg`, linked from
 * BENCHMARKS.md.
 */
import { FLEET_HEALTH, FLEET_START_DELAY_S, HEALTH, median, ms, pairwise, ratio, SWARM_RETRIES, TARGETS, type ProxyStrategyName } from './harness.js'

/** What the fleet chart needs of the fleet figure: per host count, each run's wall time, serial and parallel. */
export interface FleetChartData {
  runs: number
  bySize: { hosts: number; serial: { wallMs: number }[]; parallel: { wallMs: number }[] }[]
}

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/** A hand-written horizontal bar chart: median per competitor, each run as a dot, the target as a line. */
export function recoveryChart(recovery: { action: number[]; swarm: number[] }, runs: number): string {
  const target = HEALTH.deadlineMs + TARGETS.recoveryMarginMs
  const rows = [
    { label: 'deploy-action', values: recovery.action, colour: '#2f7d32' },
    { label: 'Swarm rollback', values: recovery.swarm, colour: '#9e9e9e' }
  ]
  const maxMs = Math.max(target, ...rows.flatMap((row) => row.values.filter(Number.isFinite))) * 1.1
  const step = maxMs > 20_000 ? 5_000 : maxMs > 8_000 ? 2_000 : 1_000
  const left = 130
  const width = 440
  const x = (value: number): number => left + (value / maxMs) * width
  const barTop = (index: number): number => 40 + index * 44
  const parts: string[] = []
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="620" height="200" viewBox="0 0 620 200" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<title>Time to recover from a broken upgrade (median of ${runs} runs, lower is better)</title>`,
    `<rect width="620" height="200" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">Time to recover from a broken upgrade (median of ${runs} runs; lower is better)</text>`
  )
  for (let tick = 0; tick <= maxMs; tick += step) {
    parts.push(
      `<line x1="${x(tick).toFixed(1)}" y1="32" x2="${x(tick).toFixed(1)}" y2="128" stroke="#e0e0e0"/>`,
      `<text x="${x(tick).toFixed(1)}" y="144" text-anchor="middle" fill="#555">${tick / 1_000} s</text>`
    )
  }
  rows.forEach((row, index) => {
    const top = barTop(index)
    const middle = median(row.values)
    // The value goes right of the slowest run, so neither the dots nor the target line cross it.
    const labelAt = Math.max(x(middle), ...row.values.filter(Number.isFinite).map(x), x(target)) + 8
    parts.push(`<text x="${left - 8}" y="${top + 19}" text-anchor="end">${escapeXml(row.label)}</text>`)
    if (Number.isFinite(middle)) {
      parts.push(
        `<rect x="${left}" y="${top + 4}" width="${(x(middle) - left).toFixed(1)}" height="24" fill="${row.colour}"/>`,
        `<text x="${labelAt.toFixed(1)}" y="${top + 20}" font-weight="bold">${escapeXml(ms(middle))}</text>`
      )
    }
    for (const value of row.values.filter(Number.isFinite)) {
      parts.push(`<circle cx="${x(value).toFixed(1)}" cy="${top + 16}" r="2.5" fill="#000" fill-opacity="0.55"/>`)
    }
  })
  parts.push(
    `<line x1="${x(target).toFixed(1)}" y1="30" x2="${x(target).toFixed(1)}" y2="130" stroke="#c62828" stroke-width="1.5" stroke-dasharray="5,3"/>`,
    `<text x="${(x(target) + 4).toFixed(1)}" y="40" fill="#c62828">target ${target / 1_000} s</text>`,
    `<text x="10" y="170" fill="#555">From the start of the upgrade until the previous version answers again. Dots: single runs.</text>`,
    `<text x="10" y="186" fill="#555">Health: interval ${HEALTH.intervalMs} ms, timeout ${HEALTH.timeoutMs / 1_000} s, deadline ${HEALTH.deadlineMs / 1_000} s (Swarm: ${SWARM_RETRIES} retries).</text>`,
    `</svg>`,
    ''
  )
  return parts.join('\n')
}

/** The fleet figure as grouped bars: per host count, serial and parallel medians, each run as a dot. */
export function fleetChart(fleet: FleetChartData): string {
  const all = fleet.bySize.flatMap((size) => [...size.serial, ...size.parallel].map((run) => run.wallMs))
  const maxMs = Math.max(1_000, ...all.filter(Number.isFinite)) * 1.3
  const step = maxMs > 40_000 ? 10_000 : maxMs > 16_000 ? 5_000 : maxMs > 8_000 ? 2_000 : 1_000
  const left = 150
  const width = 440
  const x = (value: number): number => left + (value / maxMs) * width
  const groupHeight = 64
  const barHeight = 22
  const top = 40
  const bottom = top + fleet.bySize.length * groupHeight
  const height = bottom + 88
  const parts: string[] = []
  const title = `Deploy to 1, 2 and 4 hosts (median of ${fleet.runs} runs; lower is better)`
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="620" height="${height}" viewBox="0 0 620 ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="620" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${escapeXml(title)}</text>`
  )
  for (let tick = 0; tick <= maxMs; tick += step) {
    parts.push(
      `<line x1="${x(tick).toFixed(1)}" y1="${top - 8}" x2="${x(tick).toFixed(1)}" y2="${bottom}" stroke="#e0e0e0"/>`,
      `<text x="${x(tick).toFixed(1)}" y="${bottom + 16}" text-anchor="middle" fill="#555">${tick / 1_000} s</text>`
    )
  }
  fleet.bySize.forEach((size, group) => {
    const groupTop = top + group * groupHeight
    const speedUp = median(pairwise(size.serial, size.parallel))
    parts.push(`<text x="10" y="${groupTop + barHeight + 6}" font-weight="bold">${size.hosts} host${size.hosts === 1 ? '' : 's'}</text>`)
    ;[
      { label: 'serial', values: size.serial.map((run) => run.wallMs), colour: '#9e9e9e', note: '' },
      { label: 'parallel', values: size.parallel.map((run) => run.wallMs), colour: '#2f7d32', note: size.hosts > 1 ? ` (${ratio(speedUp)} faster)` : '' }
    ].forEach((row, index) => {
      const barTop = groupTop + index * (barHeight + 4)
      const middle = median(row.values)
      const labelAt = Math.max(x(middle), ...row.values.filter(Number.isFinite).map(x)) + 8
      parts.push(`<text x="${left - 8}" y="${barTop + 15}" text-anchor="end">${row.label}</text>`)
      if (Number.isFinite(middle)) {
        parts.push(
          `<rect x="${left}" y="${barTop}" width="${(x(middle) - left).toFixed(1)}" height="${barHeight}" fill="${row.colour}"/>`,
          `<text x="${labelAt.toFixed(1)}" y="${barTop + 15}"><tspan font-weight="bold">${escapeXml(ms(middle))}</tspan>${escapeXml(row.note)}</text>`
        )
      }
      for (const value of row.values.filter(Number.isFinite)) {
        parts.push(`<circle cx="${x(value).toFixed(1)}" cy="${barTop + barHeight / 2}" r="2.5" fill="#000" fill-opacity="0.55"/>`)
      }
    })
  })
  const notes = [
    'The action\'s wall time for one upgrade; serial: rollout.parallel 1, parallel: = hosts. Dots: single runs.',
    'Each host: a network namespace with its own engine and registry, all on one machine.',
    `The app serves ${FLEET_START_DELAY_S} s after it starts; health: probe every ${FLEET_HEALTH.intervalMs} ms, ${FLEET_HEALTH.threshold} success needed.`
  ]
  notes.forEach((line, index) => parts.push(`<text x="10" y="${bottom + 40 + index * 16}" fill="#555">${escapeXml(line)}</text>`))
  parts.push(`</svg>`, '')
  return parts.join('\n')
}

/** Figure 2's proxy chart: the median user-visible outage per scenario, replace against proxy. */
export function proxyRecoveryChart(outage: Record<'broken' | 'dies', Record<ProxyStrategyName, number>>): string {
  const max = Math.max(1, ...Object.values(outage).flatMap((pair) => Object.values(pair).filter(Number.isFinite)))
  const bar = (y: number, label: string, value: number, colour: string): string => {
    const width = Number.isFinite(value) ? Math.max(1, (value / max) * 380) : 0
    return `<text x="150" y="${y + 14}">${label}</text><rect x="210" y="${y}" width="${width}" height="18" fill="${colour}"/><text x="${218 + width}" y="${y + 14}">${ms(value)}</text>`
  }
  const group = (y: number, title: string, pair: Record<ProxyStrategyName, number>): string =>
    `<text x="10" y="${y + 24}" font-weight="bold">${title}</text>${bar(y, 'replace', pair.replace, '#c0392b')}${bar(y + 24, 'proxy', pair.proxy, '#2f7d32')}`
  return [
    '<svg xmlns="http://www.w3.org/2000/svg" width="720" height="150" viewBox="0 0 720 150" font-family="Helvetica, Arial, sans-serif" font-size="12">',
    '<text x="10" y="18" font-weight="bold">User-visible outage (median): first failed request → first good answer after it</text>',
    group(35, 'broken upgrade', outage.broken),
    group(95, 'dies in the watch', outage.dies),
    '</svg>',
    ''
  ].join('\n')
}

export function downtimeChart(replaceFailed: number, proxyFailed: number, replaceCut: number, proxyCut: number): string {
  const max = Math.max(1, replaceFailed, proxyFailed)
  const bar = (y: number, label: string, value: number, cut: number): string =>
    `<text x="10" y="${y + 14}">${label}</text><rect x="110" y="${y}" width="${Math.max(1, (value / max) * 400)}" height="20" fill="#c0392b"/>` +
    `<text x="${120 + (value / max) * 400}" y="${y + 14}">${Number.isNaN(value) ? 'not measured' : `${value} failed, ${cut}/10 slow cut`}</text>`
  return [
    '<svg xmlns="http://www.w3.org/2000/svg" width="720" height="110" viewBox="0 0 720 110" font-family="Helvetica, Arial, sans-serif" font-size="12">',
    '<text x="10" y="18" font-weight="bold">Failed requests during a healthy deploy (median)</text>',
    bar(35, 'replace', replaceFailed, replaceCut),
    bar(70, 'proxy', proxyFailed, proxyCut),
    '</svg>',
    ''
  ].join('\n')
}

/**
 * The proxy-change chart: per scenario (in the order of `figures`), the median outage users saw and
 * the gap the action printed.
 */
export function proxyChangeChart(figures: Record<string, { seen: number; printed: number }>): string {
  const scenarios = Object.keys(figures)
  const max = Math.max(1, ...Object.values(figures).flatMap(({ seen, printed }) => [seen, printed].filter(Number.isFinite)))
  const bar = (y: number, label: string, value: number, colour: string): string => {
    const width = Number.isFinite(value) ? Math.max(1, Math.round((value / max) * 320)) : 0
    return `<text x="270" y="${y + 13}">${label}</text><rect x="340" y="${y}" width="${width}" height="16" fill="${colour}"/><text x="${348 + width}" y="${y + 13}">${Number.isFinite(value) ? ms(value) : '—'}</text>`
  }
  const titles: Record<string, string> = {
    reload: 'proxy.timeout: reload',
    image: 'proxy.image, slow requests in flight',
    'image-idle': 'proxy.image, none in flight',
    restart: 'docker restart (not a deploy)'
  }
  const groups = scenarios.map((scenario, index) => {
    const y = 35 + index * 48
    const figure = figures[scenario] ?? { seen: Number.NaN, printed: Number.NaN }
    return `<text x="10" y="${y + 22}" font-weight="bold">${titles[scenario] ?? scenario}</text>${bar(y, 'users saw', figure.seen, '#c0392b')}${bar(y + 20, 'printed', figure.printed, '#7f8c8d')}`
  })
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="760" height="${45 + scenarios.length * 48}" viewBox="0 0 760 ${45 + scenarios.length * 48}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    '<text x="10" y="18" font-weight="bold">When the proxy must change: outage users saw and the gap the action printed (median)</text>',
    ...groups,
    '</svg>',
    ''
  ].join('\n')
}
