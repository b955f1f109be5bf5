/**
 * One thing wrong with the inputs or the config file. Another module turns a list of these into
 * `::error file=…,line=…,col=…,title=…::message` annotations, so every field is already meant for
 * the user: `file` relative to the workspace, `line` and `column` 1-based.
 */
export interface ConfigProblem {
  /** Config path relative to the workspace; absent for problems with action inputs. */
  file?: string
  /** 1-based line of the offending key or value. */
  line?: number
  /** 1-based column of the offending key or value. */
  column?: number
  /** Short headline, e.g. `Invalid health.interval` or `Input tag`. */
  title: string
  /** Names the key path, what was expected and what was found. */
  message: string
  severity: 'error' | 'warning'
}

/** True when any problem is an error (warnings alone do not stop a deploy). */
export function hasErrors(problems: readonly ConfigProblem[]): boolean {
  return problems.some((problem) => problem.severity === 'error')
}
