/**
 * Maps a key path such as `['health', 'interval']` to a line and column in the YAML text, so that
 * every config problem can point at the exact spot. Built from js-yaml's event stream, which keeps
 * source offsets that the loaded JavaScript object has lost.
 */
import { EVENT_ID, SCALAR_STYLE, getScalarValue, parseEvents, type Event } from 'js-yaml'

/** A 1-based line and column. */
export interface Position {
  line: number
  column: number
}

interface NodeBase {
  /** Offset in the text; -1 when the node has no text of its own (an empty value). */
  offset: number
}
interface ScalarNode extends NodeBase {
  kind: 'scalar'
  value: string
}
interface SequenceNode extends NodeBase {
  kind: 'sequence'
  items: YamlNode[]
}
interface MappingNode extends NodeBase {
  kind: 'mapping'
  entries: { key: YamlNode; value: YamlNode }[]
}
interface AliasNode extends NodeBase {
  kind: 'alias'
  /** The node the anchor named when the alias appeared; undefined for an unknown anchor. */
  target?: YamlNode
}
type YamlNode = ScalarNode | SequenceNode | MappingNode | AliasNode
type Collection = SequenceNode | MappingNode

/** Which part of a mapping entry to point at. */
export type PositionTarget = 'key' | 'value'

const MERGE_KEY = '<<'

/**
 * Source positions of one YAML document. `locate` always answers with the deepest node it can
 * find along the path, so a problem inside a merged or aliased value still points somewhere useful.
 */
export class YamlPositions {
  private constructor(
    private readonly root: YamlNode | undefined,
    private readonly lineStarts: number[]
  ) {}

  /** Indexes `text`; never throws (text that does not parse gives an index that knows no keys). */
  static parse(text: string): YamlPositions {
    const lineStarts = computeLineStarts(text)
    try {
      return new YamlPositions(buildTree(text, parseEvents(text, {})), lineStarts)
    } catch {
      return new YamlPositions(undefined, lineStarts)
    }
  }

  /** Line and column of a text offset. */
  positionOf(offset: number): Position {
    let low = 0
    let high = this.lineStarts.length - 1
    while (low < high) {
      const middle = (low + high + 1) >> 1
      if ((this.lineStarts[middle] ?? 0) <= offset) low = middle
      else high = middle - 1
    }
    return { line: low + 1, column: offset - (this.lineStarts[low] ?? 0) + 1 }
  }

  /**
   * Position of the value (or, with `target: 'key'`, the key) at `path`. Falls back to the nearest
   * ancestor that exists in the text; undefined only when the document is empty.
   */
  locate(path: readonly PropertyKey[], target: PositionTarget = 'value'): Position | undefined {
    let node = this.root
    let best = node && node.offset >= 0 ? node.offset : undefined
    for (const [index, segment] of path.entries()) {
      const found = node === undefined ? undefined : child(node, segment)
      if (found === undefined) break
      const isLast = index === path.length - 1
      const keyOffset = found.key?.offset ?? -1
      if (isLast && target === 'key' && keyOffset >= 0) return this.positionOf(keyOffset)
      const valueOffset = found.value.offset
      // An empty value (`interval:` with nothing after it) has no offset: point at its key.
      if (valueOffset >= 0) best = valueOffset
      else if (keyOffset >= 0) best = keyOffset
      node = found.value
    }
    return best === undefined ? undefined : this.positionOf(best)
  }
}

function computeLineStarts(text: string): number[] {
  const starts = [0]
  for (let index = 0; index < text.length; index++) {
    const char = text.charCodeAt(index)
    if (char === 0x0a) starts.push(index + 1)
    else if (char === 0x0d && text.charCodeAt(index + 1) !== 0x0a) starts.push(index + 1)
  }
  return starts
}

/** Follows an alias to the node its anchor named; stops on chains that loop. */
function resolveAlias(node: YamlNode): YamlNode | undefined {
  let current: YamlNode | undefined = node
  for (let hops = 0; current?.kind === 'alias' && hops < 100; hops++) current = current.target
  return current?.kind === 'alias' ? undefined : current
}

/** The entry for one path segment under `node`, looking through aliases and `<<` merge keys. */
function child(node: YamlNode, segment: PropertyKey, depth = 0): { key?: YamlNode; value: YamlNode } | undefined {
  const resolved = resolveAlias(node)
  if (resolved === undefined || depth > 20) return undefined
  if (resolved.kind === 'sequence') {
    const item = typeof segment === 'number' ? resolved.items[segment] : undefined
    return item === undefined ? undefined : { value: item }
  }
  if (resolved.kind !== 'mapping') return undefined
  const name = String(segment)
  // The last of duplicate keys wins in YAML loaders that allow them; search from the end.
  for (let index = resolved.entries.length - 1; index >= 0; index--) {
    const entry = resolved.entries[index]
    if (entry?.key.kind === 'scalar' && entry.key.value === name) return entry
  }
  const merge = resolved.entries.find((entry) => entry.key.kind === 'scalar' && entry.key.value === MERGE_KEY)
  if (merge === undefined) return undefined
  const sources = resolveAlias(merge.value)
  const candidates = sources?.kind === 'sequence' ? sources.items : [merge.value]
  for (const source of candidates) {
    const found = child(source, segment, depth + 1)
    if (found !== undefined) return found
  }
  return undefined
}

/** Builds the node tree of the first document from the flat event stream. */
function buildTree(text: string, events: Event[]): YamlNode | undefined {
  const anchors = new Map<string, YamlNode>()
  const stack: Collection[] = []
  let pendingKey: YamlNode | undefined
  const pendingKeys: (YamlNode | undefined)[] = []
  let root: YamlNode | undefined
  let documents = 0

  const attach = (node: YamlNode): void => {
    const parent = stack[stack.length - 1]
    if (parent === undefined) {
      root ??= node
    } else if (parent.kind === 'sequence') {
      parent.items.push(node)
    } else if (pendingKey === undefined) {
      pendingKey = node
    } else {
      parent.entries.push({ key: pendingKey, value: node })
      pendingKey = undefined
    }
  }
  const anchorOf = (event: { anchorStart: number; anchorEnd: number }): string | undefined =>
    event.anchorStart >= 0 ? text.slice(event.anchorStart, event.anchorEnd) : undefined

  for (const event of events) {
    switch (event.type) {
      case EVENT_ID.DOCUMENT:
        documents++
        break
      case EVENT_ID.SCALAR: {
        if (documents > 1) break
        const quoted = event.style === SCALAR_STYLE.SINGLE_QUOTED || event.style === SCALAR_STYLE.DOUBLE_QUOTED
        const offset = event.valueStart < 0 ? -1 : quoted ? event.valueStart - 1 : event.valueStart
        const node: ScalarNode = { kind: 'scalar', offset, value: event.valueStart < 0 ? '' : getScalarValue(text, event) }
        const anchor = anchorOf(event)
        if (anchor !== undefined) anchors.set(anchor, node)
        attach(node)
        break
      }
      case EVENT_ID.ALIAS: {
        if (documents > 1) break
        const name = text.slice(event.anchorStart, event.anchorEnd)
        attach({ kind: 'alias', offset: Math.max(0, event.anchorStart - 1), target: anchors.get(name) })
        break
      }
      case EVENT_ID.SEQUENCE:
      case EVENT_ID.MAPPING: {
        if (documents > 1) break
        const node: Collection =
          event.type === EVENT_ID.SEQUENCE
            ? { kind: 'sequence', offset: event.start, items: [] }
            : { kind: 'mapping', offset: event.start, entries: [] }
        const anchor = anchorOf(event)
        if (anchor !== undefined) anchors.set(anchor, node)
        attach(node)
        pendingKeys.push(pendingKey)
        pendingKey = undefined
        stack.push(node)
        break
      }
      case EVENT_ID.POP:
        if (documents > 1) break
        // A POP closes a collection, or the document itself when the stack is empty.
        if (stack.pop() !== undefined) pendingKey = pendingKeys.pop()
        break
    }
  }
  return root
}
