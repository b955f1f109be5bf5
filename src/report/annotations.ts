import * as core from '@actions/core'

export type AnnotationLevel = 'error' | 'warning' | 'notice'

/** The runner shows at most 10 annotations of each type per step; more are silently dropped. */
const RUNNER_LIMIT_PER_TYPE = 10

/**
 * Emits annotations within the runner's limit. The first nine of each type pass through; the rest
 * are held back, and `flush()` spends the tenth on either the one held back or a line that says how
 * many were left out, so a reader learns that more exist instead of silently missing them.
 */
export class AnnotationBudget {
  private readonly emitted: Record<AnnotationLevel, number> = { error: 0, warning: 0, notice: 0 }
  private readonly heldBack: Record<AnnotationLevel, { message: string; properties: core.AnnotationProperties }[]> = {
    error: [],
    warning: [],
    notice: []
  }

  annotate(level: AnnotationLevel, message: string, properties: core.AnnotationProperties = {}): void {
    if (this.emitted[level] < RUNNER_LIMIT_PER_TYPE - 1) {
      this.emitted[level]++
      emit(level, message, properties)
    } else {
      this.heldBack[level].push({ message, properties })
    }
  }

  /** Spends the last annotation of each type; call once, when the step ends. */
  flush(): void {
    for (const level of ['error', 'warning', 'notice'] as const) {
      const held = this.heldBack[level]
      if (held.length === 1 && held[0]) {
        emit(level, held[0].message, held[0].properties)
      } else if (held.length > 1) {
        emit(level, `${held.length} more ${level}s were left out (the runner shows at most ${RUNNER_LIMIT_PER_TYPE}); see the job log.`, {
          title: held[0]?.properties.title ?? 'More annotations'
        })
        // Still print them into the log, as plain lines, so nothing is lost.
        for (const { message, properties } of held) {
          const where = properties.file ? `${properties.file}:${properties.startLine ?? ''}:${properties.startColumn ?? ''} ` : ''
          core.info(`${level}: ${where}${properties.title ? properties.title + ': ' : ''}${message}`)
        }
      }
      this.emitted[level] += Math.min(held.length, 1)
      held.length = 0
    }
  }
}

function emit(level: AnnotationLevel, message: string, properties: core.AnnotationProperties): void {
  if (level === 'error') core.error(message, properties)
  else if (level === 'warning') core.warning(message, properties)
  else core.notice(message, properties)
}
