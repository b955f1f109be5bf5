/**
 * Writes the third-party notices of the bundles: every npm package whose code ncc put into
 * dist/index.js or dist/post/index.js, with its version, the licence its package.json declares and
 * the licence text it ships.
 *
 *   npx tsx scripts/third-party-notices.ts <out-file> <webpack-stats.json>...
 *
 * scripts/build.sh runs it with the stats that `ncc build --stats-out` wrote for each entry, so the
 * list is what webpack bundled, nothing more and nothing less. It replaces ncc's `--license`, whose
 * bundled license-webpack-plugin names only a few of the packages of these bundles (two, when this
 * was written: every package here declares a licence and ships its text, so that is not why).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The part of webpack's stats JSON read here: modules, and the modules concatenated into each. */
export interface StatsModule {
  identifier?: string
  modules?: StatsModule[]
}

export interface WebpackStats {
  modules?: StatsModule[]
}

/** One bundled package, as its notice shows it. */
export interface BundledPackage {
  name: string
  version: string
  /** The `license` field of its package.json, or a note that it has none. */
  license: string
  /** Its licence files (LICENSE, LICENCE, COPYING, NOTICE…), each with its text; empty when it ships none. */
  files: { name: string; text: string }[]
}

const LICENCE_FILE = /^(licen[cs]e|copying|notice)([.-].*)?$/i

/**
 * The directory of the npm package that holds `resource` (the innermost `node_modules/<name>` or
 * `node_modules/@scope/<name>` of its path), or undefined for a file of the project itself.
 */
export function packageDirectoryOf(resource: string): string | undefined {
  const match = /^(.*\/node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(resource)
  return match?.[1]
}

/**
 * The file a webpack module identifier names: ncc prefixes each with its loaders
 * (`…/relocate-loader.js??ruleSet[1]…!/path/file.js`) and concatenated ESM modules with their type
 * (`javascript/esm|…`). Externals (`external node-commonjs "fs"`) name no file.
 */
function resourceOf(identifier: string): string | undefined {
  const resource = identifier.slice(identifier.lastIndexOf('!') + 1).replace(/^javascript\/[a-z]+\|/, '')
  return resource.startsWith('/') ? resource : undefined
}

/** Every package directory with a module in the bundles the stats describe, sorted. */
export function bundledPackageDirectories(stats: readonly WebpackStats[]): string[] {
  const directories = new Set<string>()
  const visit = (modules: readonly StatsModule[] | undefined): void => {
    for (const module of modules ?? []) {
      const resource = module.identifier ? resourceOf(module.identifier) : undefined
      const directory = resource ? packageDirectoryOf(resource) : undefined
      if (directory) directories.add(directory)
      visit(module.modules)
    }
  }
  for (const one of stats) visit(one.modules)
  return [...directories].sort()
}

/** Name, version, declared licence and licence files of the package in `directory`. */
export function readPackage(directory: string): BundledPackage {
  const manifest = JSON.parse(readFileSync(join(directory, 'package.json'), 'utf8')) as {
    name?: string
    version?: string
    license?: string | { type?: string }
    licenses?: { type?: string }[]
  }
  if (!manifest.name || !manifest.version) throw new Error(`${directory}/package.json has no name or version`)
  const declared =
    typeof manifest.license === 'string' ? manifest.license : (manifest.license?.type ?? manifest.licenses?.map((licence) => licence.type).join(' OR '))
  const files = readdirSync(directory, { withFileTypes: true })
    .filter((entry) => entry.isFile() && LICENCE_FILE.test(entry.name))
    .map((entry) => entry.name)
    .sort()
    .map((name) => ({ name, text: readFileSync(join(directory, name), 'utf8').replace(/\r\n/g, '\n').trimEnd() }))
  return { name: manifest.name, version: manifest.version, license: declared || 'none declared in its package.json', files }
}

/** The packages of the bundles, one per name and version, sorted by name then version. */
export function bundledPackages(stats: readonly WebpackStats[]): BundledPackage[] {
  const byId = new Map<string, BundledPackage>()
  for (const directory of bundledPackageDirectories(stats)) {
    const found = readPackage(directory)
    byId.set(`${found.name}@${found.version}`, found)
  }
  return [...byId.values()].sort((a, b) => (a.name === b.name ? a.version.localeCompare(b.version, 'en', { numeric: true }) : a.name < b.name ? -1 : 1))
}

const RULE = '-'.repeat(80)

/** The notices file: a header, then one section per package headed `<name> <version>`. */
export function renderNotices(packages: readonly BundledPackage[]): string {
  const sections = packages.map((found) => {
    const texts = found.files.length
      ? found.files.map((file) => (found.files.length > 1 ? `${file.name}:\n\n${file.text}` : file.text)).join('\n\n')
      : `This package ships no licence file; its package.json declares the licence: ${found.license}.`
    return [RULE, `${found.name} ${found.version}`, `License: ${found.license}`, '', texts].join('\n')
  })
  return [
    'Third-party software bundled into dist/index.js and dist/post/index.js',
    '',
    `This action includes code from the ${packages.length} npm packages below. Each is listed with its`,
    'version, the licence its package.json declares, and the licence text it ships.',
    'Generated by scripts/third-party-notices.ts from what ncc bundled; do not edit.',
    '',
    ...sections,
    ''
  ].join('\n')
}

// CLI: only when this file is the program, not when a test imports it.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [out, ...statsFiles] = process.argv.slice(2)
  if (!out || statsFiles.length === 0) {
    process.stderr.write('usage: tsx scripts/third-party-notices.ts <out-file> <webpack-stats.json>...\n')
    process.exit(2)
  }
  const stats = statsFiles.map((file) => {
    if (!existsSync(file)) throw new Error(`${file} does not exist; ncc build --stats-out writes it`)
    return JSON.parse(readFileSync(file, 'utf8')) as WebpackStats
  })
  const packages = bundledPackages(stats)
  if (packages.length === 0) throw new Error(`no npm package found in ${statsFiles.join(', ')}; is this webpack stats JSON?`)
  writeFileSync(out, renderNotices(packages))
}
