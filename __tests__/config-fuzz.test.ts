import { describe, expect, it } from '@jest/globals'
import fc from 'fast-check'
import { dump } from 'js-yaml'
import { parseConfigBytes, parseConfigText, type LoadedConfig } from '../src/config/load.js'
import { ConfigSchema } from '../src/config/schema.js'

const FILE = '.github/deploy.yml'
const MergedSchema = ConfigSchema.omit({ environments: true })

/** Every outcome must be settings or clean problems: an error has a title, a message and, when placed, a real line. */
function expectClean(result: LoadedConfig, text?: string): void {
  const errors = result.problems.filter((problem) => problem.severity === 'error')
  if (errors.length === 0) expect(MergedSchema.safeParse(result.config).success).toBe(true)
  else expect(result.config).toBeUndefined()
  const lines = text === undefined ? Infinity : text.split(/\r\n|\r|\n/).length
  for (const problem of result.problems) {
    expect(problem.file).toBe(FILE)
    expect(problem.title.length).toBeGreaterThan(0)
    expect(problem.message.length).toBeGreaterThan(0)
    expect(problem.message).not.toMatch(/\n/)
    if (problem.line !== undefined) {
      expect(problem.line).toBeGreaterThanOrEqual(1)
      expect(problem.line).toBeLessThanOrEqual(lines + 1)
      expect(problem.column).toBeGreaterThanOrEqual(1)
    }
  }
}

const KEYS = ['image', 'name', 'strategy', 'url', 'container', 'health', 'rollback', 'hooks', 'lock', 'swarm', 'hosts', 'rollout', 'environments', 'ports', 'env', 'secrets', 'interval', 'timeout', 'to', 'staging', '<<', '__proto__']
const TOKENS = [...KEYS, ':', ': ', '\n', '\n  ', '- ', '[', ']', '{', '}', ',', '&a ', '*a', '"', "'", '#', '---', '|', '>', '!!str ', '!!binary ', '? ', '\t', '%YAML 1.2\n', '-v=/:/host', '--privileged', '$(id)', '`id`', '0', '70000', '-5s', '2s', '1h', 'true', 'null', '~', '\u0000', '\u202e', '\ufeff']

const yamlish = fc.array(fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 6 })), { maxLength: 60 }).map((parts) => parts.join(''))

const scalar = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.constantFrom('8080:80', '0', '70000', '-5s', 'fast', '500ms', 'acme/web', 'v1.2.3', '--privileged', 'a\nb', 'last-release', 'swarm', 'ssh://x@y', '${{ secrets.X }}'),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null)
)
/** Object trees shaped like configs: real keys at every level, arbitrary values and a few stray keys. */
const tree = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small' }, scalar, fc.array(tie('node'), { maxLength: 4 }), tie('object')),
  object: fc.dictionary(fc.oneof(fc.constantFrom(...KEYS, 'expect-status', 'stop-timeout', 'API_TOKEN'), fc.string({ maxLength: 8 })), tie('node'), { maxKeys: 6 })
})).object

describe('loader fuzzing', () => {
  it('turns random YAML-ish text into settings or clean problems, never an exception', () => {
    fc.assert(
      fc.property(yamlish, fc.constantFrom('production', 'staging'), (text, environment) => {
        expectClean(parseConfigText(text, { file: FILE, environment }), text)
      }),
      { numRuns: 1000 }
    )
  })

  it('handles random object trees written as YAML', () => {
    fc.assert(
      fc.property(tree, fc.constantFrom('production', 'staging'), (value, environment) => {
        const text = dump(value)
        expectClean(parseConfigText(text, { file: FILE, environment }), text)
      }),
      { numRuns: 500 }
    )
  })

  it('handles random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        expectClean(parseConfigBytes(bytes, { file: FILE, environment: 'production' }))
      }),
      { numRuns: 1000 }
    )
  })
})
