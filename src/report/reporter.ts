import * as core from '@actions/core'
import { DeployResult, Output } from '../constants.js'
import type { ConfigProblem } from '../config/problems.js'
import type { ProbeRecord } from '../health/transcript.js'
import { AnnotationBudget } from './annotations.js'
import { formatDuration } from './format.js'
import { renderSummary, type SummaryReport } from './summary.js'

export type StepStatus = 'ok' | 'warning' | 'failed' | 'skipped'

export interface StepRecord {
  title: string
  status: StepStatus
  durationMs: number
  detail: string
}

/** What a running step can say about itself. */
export interface StepContext {
  /** One line for the summary table and the success notice. */
  detail(text: string): void
  /** A fallback or a degraded path: a warning annotation, and the step shows as a warning. */
  warn(text: string): void
  /** In a quiet step: this run has news (e.g. it had to wait), so it does get its notice. */
  notable(): void
}

export interface StepOptions {
  /**
   * No notice when the step succeeds without news. For steps that run every time and rarely say
   * anything (the deploy lock): a notice each would spend the runner's ten notices on nothing.
   */
  quiet?: boolean
  /**
   * Whether the step's log is a collapsible group. Steps that run side by side (several hosts at
   * once) are not: the runner's groups cannot interleave, so their lines stand in the open.
   */
  grouped?: boolean
}

/** A failure that was already annotated by the step that saw it, so no one annotates it again. */
export class ReportedError extends Error {
  constructor(
    readonly step: string,
    readonly original: unknown
  ) {
    super(errorMessage(original))
    this.name = 'ReportedError'
  }
}

export interface ActionOutputs {
  result: DeployResult
  tag?: string
  previousTag?: string
  image?: string
  deploymentId?: string | number
}

/**
 * Everything the job page shows: log groups, one annotation per step, the job summary and the
 * outputs. Steps are recorded as they run, so the summary is right whichever way the deploy ends.
 */
export class Reporter {
  readonly steps: StepRecord[] = []
  private readonly annotations = new AnnotationBudget()

  /**
   * Runs one step inside a log group titled like `Deploy · pull`. Success: a notice with the
   * duration. Failure: an error annotation with the cause, then a `ReportedError` is thrown.
   */
  async step<T>(title: string, work: (step: StepContext) => Promise<T>, options: StepOptions = {}): Promise<T> {
    const started = Date.now()
    const record: StepRecord = { title, status: 'ok', durationMs: 0, detail: '' }
    this.steps.push(record)
    let announce = !options.quiet
    const context: StepContext = {
      notable: () => {
        announce = true
      },
      detail: (text) => {
        record.detail = text
      },
      warn: (text) => {
        record.status = 'warning'
        record.detail = record.detail ? `${record.detail}; ${text}` : text
        this.annotations.annotate('warning', text, { title })
      }
    }
    const grouped = options.grouped ?? true
    if (grouped) core.startGroup(title)
    else core.info(`▶ ${title}`)
    try {
      const value = await work(context)
      record.durationMs = Date.now() - started
      if (record.status === 'ok' && announce) {
        this.annotations.annotate('notice', `${record.detail || 'done'} (${formatDuration(record.durationMs)})`, { title })
      }
      return value
    } catch (error) {
      record.durationMs = Date.now() - started
      record.status = 'failed'
      record.detail = errorMessage(error)
      if (!(error instanceof ReportedError)) this.annotations.annotate('error', record.detail, { title })
      throw error instanceof ReportedError ? error : new ReportedError(title, error)
    } finally {
      if (grouped) core.endGroup()
    }
  }

  /** Records a step that did not run, so the table shows the whole story. */
  skipped(title: string, reason: string): void {
    this.steps.push({ title, status: 'skipped', durationMs: 0, detail: reason })
  }

  warning(title: string, message: string): void {
    this.annotations.annotate('warning', message, { title })
  }

  /** One annotation for each config or input problem, at its file, line and column. */
  problems(problems: ConfigProblem[]): void {
    for (const problem of problems) {
      this.annotations.annotate(problem.severity, problem.message, {
        title: problem.title,
        file: problem.file,
        startLine: problem.line,
        startColumn: problem.column
      })
    }
  }

  /**
   * The final verdict of a failed run: one error annotation that says what happened and what runs
   * now. Sets the exit code without `core.setFailed`, which would print the same error twice.
   */
  fail(title: string, message: string): void {
    this.annotations.annotate('error', message, { title })
    process.exitCode = 1
  }

  /** The final verdict of a successful run, as one notice. */
  succeed(title: string, message: string): void {
    this.annotations.annotate('notice', message, { title })
  }

  /** Sets every output of the contract; called on every path, with empty strings for unknowns. */
  setOutputs(outputs: ActionOutputs): void {
    core.setOutput(Output.Result, outputs.result)
    core.setOutput(Output.Tag, outputs.tag ?? '')
    core.setOutput(Output.PreviousTag, outputs.previousTag ?? '')
    core.setOutput(Output.Image, outputs.image ?? '')
    core.setOutput(Output.DeploymentId, outputs.deploymentId === undefined ? '' : String(outputs.deploymentId))
  }

  /**
   * Writes the job summary. Never fails the run: outside a runner GITHUB_STEP_SUMMARY is unset and
   * `core.summary.write()` throws, which must not hide the deploy's own outcome.
   */
  async writeSummary(report: Omit<SummaryReport, 'steps'>): Promise<void> {
    this.annotations.flush()
    if (!process.env.GITHUB_STEP_SUMMARY) return
    try {
      await core.summary.addRaw(renderSummary({ ...report, steps: this.steps }), true).write()
    } catch (error) {
      core.info(`Could not write the job summary: ${errorMessage(error)}`)
    }
  }
}

export function errorMessage(error: unknown): string {
  if (error instanceof ReportedError) return error.message
  if (error instanceof Error) return error.message
  return String(error)
}

export type { ProbeRecord }
