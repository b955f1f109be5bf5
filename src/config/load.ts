/**
 * Reads, parses and validates the deploy config, and turns every mistake into a ConfigProblem
 * that points at the exact line and column. All problems are collected, not just the first, so a
 * user fixes the file in one round.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { CORE_SCHEMA, EVENT_ID, YAMLException, load, mergeTag, parseEvents, type Event } from 'js-yaml'
import type { z } from 'zod'
import { ConfigSchema, EnvironmentSchema, type EnvironmentConfig } from './schema.js'
import { hasUnsafeCharacters } from './grammar.js'
import { portClashes, volumeClashes } from './clashes.js'
import { YamlPositions, type PositionTarget } from './positions.js'
import type { ConfigProblem } from './problems.js'

/** The `config` input's default; a missing file there is fine when the inputs describe the deploy. */
export const DEFAULT_CONFIG_PATH = '.github/deploy.yml'

/** Config files larger than this are refused before they are parsed. */
export const MAX_CONFIG_BYTES = 1024 * 1024

/** The loaded document may expand (through aliases) to at most this many values. */
export const MAX_EXPANDED_VALUES = 100_000

/** More aliases than any hand-written config needs; stops alias bombs early. */
const MAX_ALIASES = 200

const YAML_SCHEMA = CORE_SCHEMA.withTags(mergeTag)

export interface LoadConfigOptions {
  /** The `config` input: a path relative to the workspace. Empty means the default path. */
  configPath: string
  /** Selects `environments.<name>`. */
  environment: string
  /** Absolute path of the workspace (GITHUB_WORKSPACE). */
  workspace: string
}

/** Where a problem about a key path of the merged config lies in the file. */
export type Locator = (path: readonly PropertyKey[], target?: PositionTarget) => Pick<ConfigProblem, 'file' | 'line' | 'column'>

export interface LoadedConfig {
  /** The selected environment's view of the config; undefined when no file was read or it has errors. */
  config?: EnvironmentConfig
  /** Config path relative to the workspace, with `/` separators; undefined when no file was read. */
  configFile?: string
  /** Errors and warnings, sorted by line. */
  problems: ConfigProblem[]
  /** Locates a key path of the merged config: in the environment block when it is set there, else at the top level. */
  locate: Locator
}

const noLocation: Locator = () => ({})

/**
 * Finds and reads the config file, then validates it (see `parseConfigBytes`).
 * Never throws for anything a user can put in the repository or the inputs.
 */
export function loadConfig(options: LoadConfigOptions): LoadedConfig {
  const requested = options.configPath.trim() === '' ? DEFAULT_CONFIG_PATH : options.configPath.trim()
  const explicit = path.posix.normalize(requested.replaceAll('\\', '/')) !== DEFAULT_CONFIG_PATH
  const inputProblem = (message: string): LoadedConfig => ({
    problems: [{ title: 'Input config', message: `config: ${message}`, severity: 'error' }],
    locate: noLocation
  })

  if (hasUnsafeCharacters(requested)) return inputProblem('expected a path without control characters or line breaks')
  const workspace = path.resolve(options.workspace)
  const absolute = path.resolve(workspace, requested)
  if (!isInside(workspace, absolute)) {
    return inputProblem(`expected a path inside the workspace, got ${JSON.stringify(requested)}`)
  }
  const configFile = path.relative(workspace, absolute).split(path.sep).join('/')
  const fileProblem = (message: string): LoadedConfig => ({
    configFile,
    problems: [{ file: configFile, title: 'Config file', message: `${configFile}: ${message}`, severity: 'error' }],
    locate: noLocation
  })

  let stats: fs.Stats
  try {
    stats = fs.statSync(absolute)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      if (!explicit) return { problems: [], locate: noLocation }
      return inputProblem(`file ${JSON.stringify(configFile)} does not exist in the workspace`)
    }
    return inputProblem(`cannot read ${JSON.stringify(configFile)}: ${code ?? String(error)}`)
  }
  // A symbolic link could lead out of the workspace; judge where it really points.
  try {
    if (!isInside(fs.realpathSync(workspace), fs.realpathSync(absolute))) {
      return inputProblem(`${JSON.stringify(configFile)} is a link to a file outside the workspace`)
    }
  } catch (error) {
    return inputProblem(`cannot resolve ${JSON.stringify(configFile)}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`)
  }
  if (!stats.isFile()) return fileProblem('expected a regular file')
  if (stats.size > MAX_CONFIG_BYTES) {
    return fileProblem(`the file is ${stats.size} bytes; a config may be at most ${MAX_CONFIG_BYTES} bytes (1 MiB)`)
  }
  let bytes: Buffer
  try {
    bytes = fs.readFileSync(absolute)
  } catch (error) {
    return fileProblem(`cannot read the file: ${(error as NodeJS.ErrnoException).code ?? String(error)}`)
  }
  return parseConfigBytes(bytes, { file: configFile, environment: options.environment })
}

function isInside(directory: string, candidate: string): boolean {
  const relative = path.relative(directory, candidate)
  return relative !== '' && !relative.startsWith(`..${path.sep}`) && relative !== '..' && !path.isAbsolute(relative)
}

export interface ParseConfigOptions {
  /** Config path relative to the workspace, for the problems' `file`. */
  file: string
  environment: string
}

/** Checks size and UTF-8, then validates the text (see `parseConfigText`). */
export function parseConfigBytes(bytes: Uint8Array, options: ParseConfigOptions): LoadedConfig {
  const { file } = options
  if (bytes.length > MAX_CONFIG_BYTES) {
    return {
      configFile: file,
      problems: [{ file, title: 'Config file', message: `${file}: the file is ${bytes.length} bytes; a config may be at most ${MAX_CONFIG_BYTES} bytes (1 MiB)`, severity: 'error' }],
      locate: noLocation
    }
  }
  const invalid = firstInvalidUtf8Offset(bytes)
  if (invalid !== -1) {
    let line = 1
    let lineStart = 0
    for (let index = 0; index < invalid; index++) {
      if (bytes[index] === 0x0a) {
        line++
        lineStart = index + 1
      }
    }
    const byte = (bytes[invalid] ?? 0).toString(16).toUpperCase().padStart(2, '0')
    return {
      configFile: file,
      problems: [
        {
          file,
          line,
          column: invalid - lineStart + 1,
          title: 'Config file encoding',
          message: `${file}: expected UTF-8 text, got the byte 0x${byte} at line ${line}; save the file as UTF-8`,
          severity: 'error'
        }
      ],
      locate: noLocation
    }
  }
  return parseConfigText(new TextDecoder('utf-8').decode(bytes), options)
}

/** Offset of the first byte that is not part of well-formed UTF-8, or -1 when all of it is. */
export function firstInvalidUtf8Offset(bytes: Uint8Array): number {
  let index = 0
  while (index < bytes.length) {
    const first = bytes[index] ?? 0
    if (first < 0x80) {
      index++
      continue
    }
    let length: number
    let min: number
    let max = 0xbf
    if (first >= 0xc2 && first <= 0xdf) {
      length = 2
      min = 0x80
    } else if (first >= 0xe0 && first <= 0xef) {
      length = 3
      // Overlong forms below U+0800, and UTF-16 surrogates (U+D800..U+DFFF), are not UTF-8.
      min = first === 0xe0 ? 0xa0 : 0x80
      if (first === 0xed) max = 0x9f
    } else if (first >= 0xf0 && first <= 0xf4) {
      length = 4
      min = first === 0xf0 ? 0x90 : 0x80
      if (first === 0xf4) max = 0x8f
    } else {
      return index
    }
    for (let offset = 1; offset < length; offset++) {
      const next = bytes[index + offset]
      const low = offset === 1 ? min : 0x80
      const high = offset === 1 ? max : 0xbf
      if (next === undefined || next < low || next > high) return index
    }
    index += length
  }
  return -1
}

/**
 * Parses and validates config text: YAML syntax, one document, no alias bombs, the zod schema
 * (all of it, every environment), then merges `environments.<environment>` over the top level.
 */
export function parseConfigText(source: string, options: ParseConfigOptions): LoadedConfig {
  const { file, environment } = options
  const text = source.startsWith('\ufeff') ? source.slice(1) : source
  const positions = YamlPositions.parse(text)
  let raw: unknown
  const at = (rawPath: readonly PropertyKey[], target: PositionTarget = 'value') => ({ file, ...positions.locate(rawPath, target) })
  const done = (problems: ConfigProblem[], config?: EnvironmentConfig): LoadedConfig => ({
    config: problems.some((problem) => problem.severity === 'error') ? undefined : config,
    configFile: file,
    problems: sortProblems(problems),
    locate: (mergedPath, target) => {
      const inEnvironment = ['environments', environment, ...mergedPath]
      return hasPath(raw, inEnvironment) ? at(inEnvironment, target) : at(mergedPath, target)
    }
  })

  let events: Event[]
  try {
    events = parseEvents(text, { filename: file })
  } catch (error) {
    return done([yamlProblem(error, file)])
  }
  const documentCount = events.filter((event) => event.type === EVENT_ID.DOCUMENT).length
  if (documentCount > 1) {
    return done([{ ...at([]), ...secondDocumentPosition(events, positions), file, title: 'YAML syntax', message: `${file}: expected one YAML document, found ${documentCount} (remove the extra "---")`, severity: 'error' }])
  }
  if (documentCount === 0 || isEmptyDocument(events)) {
    raw = {}
  } else {
    try {
      raw = load(text, { filename: file, schema: YAML_SCHEMA, maxAliases: MAX_ALIASES })
    } catch (error) {
      return done([yamlProblem(error, file)])
    }
  }
  if (raw === null || raw === undefined) raw = {}

  const size = expandedSize(raw)
  if (size !== 'ok') {
    const alias = events.find((event) => event.type === EVENT_ID.ALIAS)
    const position = alias?.type === EVENT_ID.ALIAS ? positions.positionOf(Math.max(0, alias.anchorStart - 1)) : {}
    const message =
      size === 'cycle'
        ? `${file}: an alias refers to the collection that contains it`
        : `${file}: aliases expand the document to more than ${MAX_EXPANDED_VALUES} values (an alias bomb?)`
    return done([{ file, ...position, title: 'YAML aliases', message, severity: 'error' }])
  }

  if (!isPlainObject(raw)) {
    return done([{ ...at([]), title: 'Invalid config', message: `${file}: expected a mapping of deploy settings at the top level, got ${describeValue(raw)}`, severity: 'error' }])
  }

  const problems: ConfigProblem[] = []
  const parsed = ConfigSchema.safeParse(raw)
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(...issueProblems(issue, raw, ConfigSchema, [], at))
  }
  problems.push(...inlineSecretProblems(raw, at))
  problems.push(...containerClashProblems(raw, at))
  problems.push(...environmentSelectionProblems(raw, environment, at))
  if (!parsed.success) return done(problems)

  const { environments, ...topLevel } = parsed.data
  const block = environments?.[environment]
  const merged = block === undefined ? topLevel : deepMerge(topLevel, block)
  const checked = EnvironmentSchema.safeParse(merged)
  if (!checked.success) {
    // Both halves passed on their own, so this is a defect of the merge; still report it, located.
    const located = done([])
    for (const issue of checked.error.issues) {
      problems.push(...issueProblems(issue, merged, EnvironmentSchema, [], (issuePath, target) => located.locate(issuePath, target)))
    }
    return done(problems)
  }
  return done(problems, checked.data)

  function hasPath(value: unknown, keyPath: readonly PropertyKey[]): boolean {
    let current = value
    for (const segment of keyPath) {
      if (!isPlainObject(current) && !Array.isArray(current)) return false
      if (!Object.hasOwn(current, segment as string)) return false
      current = (current as Record<PropertyKey, unknown>)[segment]
    }
    return true
  }
}

function yamlProblem(error: unknown, file: string): ConfigProblem {
  if (error instanceof YAMLException) {
    const mark = error.mark
    return {
      file,
      ...(mark ? { line: mark.line + 1, column: mark.column + 1 } : {}),
      title: 'YAML syntax',
      message: `${file}: ${error.reason || 'invalid YAML'}`,
      severity: 'error'
    }
  }
  // js-yaml documents that any exception may escape it; none may escape the action unexplained.
  return { file, title: 'YAML syntax', message: `${file}: the YAML could not be read: ${error instanceof Error ? error.message : String(error)}`, severity: 'error' }
}

function isEmptyDocument(events: Event[]): boolean {
  const root = events.find((event) => event.type !== EVENT_ID.DOCUMENT)
  return root === undefined || root.type === EVENT_ID.POP || (root.type === EVENT_ID.SCALAR && root.valueStart < 0 && root.tagStart < 0)
}

function secondDocumentPosition(events: Event[], positions: YamlPositions): Partial<ConfigProblem> {
  let documents = 0
  for (const event of events) {
    if (event.type === EVENT_ID.DOCUMENT) documents++
    else if (documents >= 2) {
      const offset = event.type === EVENT_ID.SCALAR ? event.valueStart : 'start' in event ? event.start : -1
      if (offset >= 0) return positions.positionOf(offset)
    }
  }
  return {}
}

/**
 * Counts the values the document expands to, following shared (aliased) subtrees every time they
 * are referenced, but computing each only once. 'cycle' when an alias contains itself.
 */
function expandedSize(root: unknown): 'ok' | 'too-large' | 'cycle' {
  const sizes = new Map<object, number>()
  const active = new Set<object>()
  const sizeOf = (value: unknown): number => {
    if (typeof value !== 'object' || value === null) return 1
    const known = sizes.get(value)
    if (known !== undefined) return known
    if (active.has(value)) throw new CycleFound()
    active.add(value)
    let total = 1
    for (const item of Array.isArray(value) ? value : Object.values(value)) {
      total += sizeOf(item)
      if (total > MAX_EXPANDED_VALUES) break
    }
    active.delete(value)
    sizes.set(value, total)
    return total
  }
  try {
    return sizeOf(root) > MAX_EXPANDED_VALUES ? 'too-large' : 'ok'
  } catch (error) {
    if (error instanceof CycleFound) return 'cycle'
    throw error
  }
}

class CycleFound extends Error {}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const prototype = Object.getPrototypeOf(value) as unknown
  return prototype === Object.prototype || prototype === null
}

/** Objects merge key by key; arrays and scalars of the override replace the base. */
export function deepMerge<T>(base: T, override: unknown): T {
  if (!isPlainObject(base) || !isPlainObject(override)) return override as T
  const result: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(override)) {
    result[key] = Object.hasOwn(result, key) ? deepMerge(result[key], value) : value
  }
  return result as T
}

// ---------------------------------------------------------------------------------------------
// Turning zod issues into messages

type At = (path: readonly PropertyKey[], target?: PositionTarget) => Pick<ConfigProblem, 'file' | 'line' | 'column'>

/** Renders a key path the way users write it: `container.ports[1]`, `environments["my env"].image`. */
export function formatPath(keyPath: readonly PropertyKey[]): string {
  let text = ''
  for (const segment of keyPath) {
    if (typeof segment === 'number') text += `[${segment}]`
    else if (/^[A-Za-z0-9_-]+$/.test(String(segment))) text += text === '' ? String(segment) : `.${String(segment)}`
    else text += `[${JSON.stringify(String(segment))}]`
  }
  return text === '' ? '(top level)' : text
}

/** Shows a found value in a message: strings quoted with invisible characters escaped, collections by kind. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'an empty value'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  if (typeof value === 'string') {
    const shown = value.length > 80 ? `${value.slice(0, 77)}...` : value
    // JSON escapes line breaks and C0 controls; escape the other invisible characters as well.
    return JSON.stringify(shown).replace(/[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`)
  }
  return String(value)
}

function valueAt(root: unknown, keyPath: readonly PropertyKey[]): unknown {
  let current = root
  for (const segment of keyPath) {
    if (typeof current !== 'object' || current === null) return undefined
    current = (current as Record<PropertyKey, unknown>)[segment]
  }
  return current
}

/** Zod's own wording, for the few issues whose schema gave no "expected …" message. */
function expectedText(issue: z.core.$ZodIssue): string {
  if (issue.message.startsWith('expected')) return issue.message
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected}`
    case 'invalid_value':
      return `expected one of ${issue.values.map((value) => String(value)).join(', ')}`
    case 'too_small':
      return `expected at least ${String(issue.minimum)}`
    case 'too_big':
      return `expected at most ${String(issue.maximum)}`
    default:
      return `expected a valid value (${issue.message})`
  }
}

function titleFor(keyPath: readonly PropertyKey[]): string {
  return `Invalid ${formatPath(keyPath)}`
}

function issueProblems(issue: z.core.$ZodIssue, root: unknown, schema: z.core.$ZodType, prefix: readonly PropertyKey[], at: At): ConfigProblem[] {
  const issuePath = [...prefix, ...issue.path]
  if (issue.code === 'unrecognized_keys') {
    const known = objectKeysAt(schema, issue.path)
    return issue.keys.map((key) => {
      const keyPath = [...issuePath, key]
      const suggestion = suggestKey(key, known, schema, issue.path)
      const hint = suggestion !== undefined ? `did you mean "${suggestion}"?` : `expected one of: ${known.join(', ')}`
      return { ...at(keyPath, 'key'), title: `Unknown key ${formatPath(keyPath)}`, message: `${formatPath(keyPath)}: unknown key; ${hint}`, severity: 'error' as const }
    })
  }
  if (issue.code === 'invalid_key') {
    const key = issuePath[issuePath.length - 1]
    const inner = issue.issues[0]
    const expected = inner ? expectedText(inner) : 'expected a valid key'
    return [{ ...at(issuePath, 'key'), title: titleFor(issuePath), message: `${formatPath(issuePath)}: invalid key ${describeValue(String(key))}; ${expected}`, severity: 'error' }]
  }
  const value = valueAt(root, issuePath)
  return [{ ...at(issuePath, 'value'), title: titleFor(issuePath), message: `${formatPath(issuePath)}: ${expectedText(issue)}, got ${describeValue(value)}`, severity: 'error' }]
}

interface SchemaDef {
  type: string
  innerType?: z.core.$ZodType
  shape?: Record<string, z.core.$ZodType>
  valueType?: z.core.$ZodType
  element?: z.core.$ZodType
}

function defOf(schema: z.core.$ZodType): SchemaDef {
  return schema._zod.def as unknown as SchemaDef
}

function unwrap(schema: z.core.$ZodType | undefined): z.core.$ZodType | undefined {
  let current = schema
  for (let hops = 0; current !== undefined && hops < 10; hops++) {
    const def = defOf(current)
    if ((def.type === 'optional' || def.type === 'nullable' || def.type === 'default') && def.innerType) current = def.innerType
    else break
  }
  return current
}

/** The schema of the value at a key path, following objects, records and arrays. */
function schemaAt(schema: z.core.$ZodType, keyPath: readonly PropertyKey[]): z.core.$ZodType | undefined {
  let current: z.core.$ZodType | undefined = unwrap(schema)
  for (const segment of keyPath) {
    if (current === undefined) return undefined
    const def = defOf(current)
    if (def.type === 'object') current = def.shape?.[String(segment)]
    else if (def.type === 'record') current = def.valueType
    else if (def.type === 'array') current = def.element
    else return undefined
    current = unwrap(current)
  }
  return current
}

function objectKeysAt(schema: z.core.$ZodType, keyPath: readonly PropertyKey[]): string[] {
  const target = schemaAt(schema, keyPath)
  const shape = target === undefined ? undefined : defOf(target).shape
  return shape ? Object.keys(shape) : []
}

/** Lower-cased, without `-` and `_`: `stopTimeout`, `stop_timeout` and `Stop-Timeout` are one key. */
function normalizeKey(key: string): string {
  return key.toLowerCase().replace(/[-_]/g, '')
}

/** Optimal string alignment distance: Levenshtein plus swaps of two neighbouring characters. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  const cell = (i: number, j: number): number => rows[i]?.[j] ?? 0
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(cell(i - 1, j) + 1, cell(i, j - 1) + 1, cell(i - 1, j - 1) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, cell(i - 2, j - 2) + 1)
      const row = rows[i]
      if (row) row[j] = best
    }
  }
  return cell(a.length, b.length)
}

/** The closest candidate within a few edits, if any. */
export function closestMatch(word: string, candidates: readonly string[]): string | undefined {
  const normalized = normalizeKey(word)
  const allowed = normalized.length <= 4 ? 1 : normalized.length <= 8 ? 2 : 3
  let best: { candidate: string; distance: number } | undefined
  for (const candidate of candidates) {
    const distance = editDistance(normalized, normalizeKey(candidate))
    if (distance <= allowed && (best === undefined || distance < best.distance)) best = { candidate, distance }
  }
  return best?.candidate
}

/**
 * A did-you-mean for an unknown key: a near miss among its siblings, or the same key one level
 * down (`ports` at the top level belongs in `container.ports`).
 */
function suggestKey(key: string, siblings: readonly string[], schema: z.core.$ZodType, parentPath: readonly PropertyKey[]): string | undefined {
  const same = siblings.find((candidate) => normalizeKey(candidate) === normalizeKey(key))
  if (same !== undefined) return same
  for (const sibling of siblings) {
    const nested = objectKeysAt(schema, [...parentPath, sibling])
    const match = nested.find((candidate) => normalizeKey(candidate) === normalizeKey(key))
    if (match !== undefined) return `${sibling}.${match}`
  }
  return closestMatch(key, siblings)
}

// ---------------------------------------------------------------------------------------------
// Warnings and checks that look at the document as written

/** Words that mark a variable as holding a secret. */
const SECRET_WORDS = new Set(['TOKEN', 'SECRET', 'SECRETS', 'PASSWORD', 'PASSWD', 'PASS', 'PWD', 'KEY', 'APIKEY', 'CREDENTIAL', 'CREDENTIALS', 'PRIVATE'])
/** A last word that says the variable only refers to a secret (a file path, an id, a setting about it). */
const REFERENCE_WORDS = new Set(['FILE', 'PATH', 'DIR', 'NAME', 'ID', 'URL', 'HEADER', 'TTL', 'TIMEOUT', 'LENGTH', 'SIZE', 'EXPIRY', 'ENABLED'])

/** True when an environment variable's name suggests that its value is a secret. */
export function looksLikeSecretName(name: string): boolean {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toUpperCase()
    .split(/[_\W]+/)
    .filter((word) => word !== '')
  const last = words[words.length - 1]
  if (last === undefined || REFERENCE_WORDS.has(last)) return false
  return words.some((word) => SECRET_WORDS.has(word))
}

/** The top level and each `environments.<name>` block, with the key path of each. */
function settingsBlocks(raw: Record<string, unknown>): { path: PropertyKey[]; settings: unknown }[] {
  const blocks: { path: PropertyKey[]; settings: unknown }[] = [{ path: [], settings: raw }]
  const environments = raw['environments']
  if (isPlainObject(environments)) {
    for (const [name, settings] of Object.entries(environments)) blocks.push({ path: ['environments', name], settings })
  }
  return blocks
}

function envBlocks(raw: Record<string, unknown>): { path: PropertyKey[]; env: Record<string, unknown> }[] {
  const blocks: { path: PropertyKey[]; env: Record<string, unknown> }[] = []
  for (const { path: base, settings } of settingsBlocks(raw)) {
    const env = valueAt(settings, ['container', 'env'])
    if (isPlainObject(env)) blocks.push({ path: [...base, 'container', 'env'], env })
  }
  return blocks
}

/**
 * Volumes on one container path and host ports published twice (see `clashes.ts`), in every
 * block, whichever environment is selected, like the schema's checks. An environment's list
 * replaces the top-level one when merged (`deepMerge`), never joins it, so checking each list as
 * written is checking what every environment runs, and points at the list the user must change.
 */
function containerClashProblems(raw: Record<string, unknown>, at: At): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  for (const { path: base } of settingsBlocks(raw)) {
    for (const [key, findClashes] of [['volumes', volumeClashes], ['ports', portClashes]] as const) {
      const listPath = [...base, 'container', key]
      const list = valueAt(raw, listPath)
      if (!Array.isArray(list)) continue
      for (const { index, message } of findClashes(list, formatPath(listPath))) {
        const itemPath = [...listPath, index]
        problems.push({ ...at(itemPath, 'value'), title: titleFor(itemPath), message, severity: 'error' })
      }
    }
  }
  return problems
}

/**
 * Plain `container.env` values land in argv and in the repository: a secret-looking name gets a
 * warning, and a `${{ … }}` expression (which GitHub never evaluates inside this file) an error.
 */
function inlineSecretProblems(raw: Record<string, unknown>, at: At): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  for (const { path: envPath, env } of envBlocks(raw)) {
    for (const [name, value] of Object.entries(env)) {
      const keyPath = [...envPath, name]
      if (typeof value === 'string' && value.includes('${{')) {
        problems.push({
          ...at(keyPath, 'value'),
          title: `Expression in ${formatPath(keyPath)}`,
          message: `${formatPath(keyPath)}: GitHub does not evaluate \${{ }} expressions in this file; list ${name} in container.secrets and set it in the step's env instead`,
          severity: 'error'
        })
      } else if (typeof value === 'string' && value !== '' && looksLikeSecretName(name)) {
        problems.push({
          ...at(keyPath, 'key'),
          title: `Secret in ${formatPath(keyPath)}?`,
          message: `${formatPath(keyPath)}: looks like a secret written into the config, where it is visible in the repository and in docker's argv; move it to container.secrets and pass the value from a GitHub secret`,
          severity: 'warning'
        })
      }
    }
  }
  return problems
}

/** A likely typo in the `environment` input: no block of that name, but one that is close. */
function environmentSelectionProblems(raw: Record<string, unknown>, environment: string, at: At): ConfigProblem[] {
  const environments = raw['environments']
  if (!isPlainObject(environments) || Object.hasOwn(environments, environment)) return []
  const near = closestMatch(environment, Object.keys(environments))
  if (near === undefined) return []
  return [
    {
      ...at(['environments'], 'key'),
      title: 'Input environment',
      message: `environment: no block environments.${environment} in the config, so only the top-level settings apply; did you mean "${near}"?`,
      severity: 'warning'
    }
  ]
}

function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return problems
    .map((problem, index) => ({ problem, index }))
    .sort((a, b) => (a.problem.line ?? 0) - (b.problem.line ?? 0) || (a.problem.column ?? 0) - (b.problem.column ?? 0) || a.index - b.index)
    .map(({ problem }) => problem)
}
