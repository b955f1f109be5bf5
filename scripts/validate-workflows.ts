/**
 * Checks every workflow file and action.yml with GitHub's own parser, `@actions/workflow-parser`
 * (the library behind the Actions language service), plus the few rules the parser does not know
 * but this action relies on.
 *
 * Run it with tsx, not plain node: the parser imports its JSON schema without an import attribute,
 * which plain node rejects.
 *
 *   npx tsx scripts/validate-workflows.ts [repository root]
 *
 * Prints `{ "ok": boolean, "files": [{ "file", "errors" }] }` as JSON and exits 1 when any file
 * has an error. The unit test `__tests__/workflows.test.ts` imports the same functions.
 */
import { convertWorkflowTemplate, NoOperationTraceWriter, parseWorkflow } from '@actions/workflow-parser'
import { convertActionTemplate, parseAction } from '@actions/workflow-parser/actions/index'
import type { TemplateContext } from '@actions/workflow-parser/templates/template-context'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The result for one file: its path (relative to the root) and every error found, empty when valid. */
export interface FileCheck {
  file: string
  errors: string[]
}

/** Folders whose `*.yml` / `*.yaml` files are workflows: the ones that run here, and the copyable examples. */
export const WORKFLOW_FOLDERS = ['.github/workflows', 'examples/workflows'] as const

/** The runtime this action is built for; `runs.using` must name it. */
export const ACTION_RUNTIME = 'node24'

const trace = new NoOperationTraceWriter()

function errorsOf(context: TemplateContext): string[] {
  // Conversion re-reports some parse errors; one line per distinct message is enough.
  return [...new Set(context.errors.getErrors().map((error) => error.message))]
}

/**
 * Parses a workflow the way GitHub does and converts it to the workflow model, which catches what
 * the schema alone cannot (e.g. `needs:` naming a job that does not exist, dependency cycles).
 * Returns the errors, each prefixed with `name (Line: n, Col: m)`; empty when the workflow is valid.
 */
export async function validateWorkflowText(name: string, content: string): Promise<string[]> {
  const parsed = parseWorkflow({ name, content }, trace)
  if (parsed.value) await convertWorkflowTemplate(parsed.context, parsed.value)
  const errors = errorsOf(parsed.context)
  if (!parsed.value && errors.length === 0) errors.push(`${name}: the parser returned nothing (empty file?)`)
  return errors
}

/**
 * Parses an action.yml against the parser's action schema, then checks what this project requires
 * beyond it: a Node runtime of `ACTION_RUNTIME` with a `main` entry, and a description on every
 * input and output (the README and the Marketplace show them).
 */
export function validateActionText(name: string, content: string): string[] {
  const parsed = parseAction({ name, content }, trace)
  const errors = errorsOf(parsed.context)
  if (!parsed.value) return errors.length > 0 ? errors : [`${name}: the parser returned nothing (empty file?)`]
  if (errors.length > 0) return errors

  const action = convertActionTemplate(parsed.context, parsed.value)
  errors.push(...errorsOf(parsed.context))
  if (action.runs.using !== ACTION_RUNTIME) errors.push(`${name}: runs.using is ${action.runs.using}, expected ${ACTION_RUNTIME}`)
  else if (!action.runs.main) errors.push(`${name}: runs.main is missing`)
  for (const input of action.inputs ?? []) {
    if (!input.description?.trim()) errors.push(`${name}: input ${input.id} has no description`)
  }
  for (const output of action.outputs ?? []) {
    if (!output.description?.trim()) errors.push(`${name}: output ${output.id} has no description`)
  }
  return errors
}

/** Paths (absolute) of every workflow file under `WORKFLOW_FOLDERS`, sorted. */
export function workflowFiles(root: string): string[] {
  return WORKFLOW_FOLDERS.flatMap((folder) => {
    const dir = join(root, folder)
    if (!existsSync(dir)) return []
    return readdirSync(dir)
      .filter((file) => /\.ya?ml$/.test(file))
      .sort()
      .map((file) => join(dir, file))
  })
}

/** Validates `action.yml` and every workflow file of the repository at `root`. */
export async function validateRepository(root: string): Promise<FileCheck[]> {
  const checks: FileCheck[] = []
  const actionFile = join(root, 'action.yml')
  checks.push({
    file: 'action.yml',
    errors: existsSync(actionFile) ? validateActionText('action.yml', readFileSync(actionFile, 'utf8')) : ['action.yml does not exist']
  })
  for (const path of workflowFiles(root)) {
    const file = relative(root, path)
    checks.push({ file, errors: await validateWorkflowText(file, readFileSync(path, 'utf8')) })
  }
  return checks
}

// CLI: only when this file is the program, not when a test imports it.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? '.')
  const files = await validateRepository(root)
  const ok = files.every((check) => check.errors.length === 0)
  process.stdout.write(JSON.stringify({ ok, files }, null, 2) + '\n')
  process.exitCode = ok ? 0 : 1
}
