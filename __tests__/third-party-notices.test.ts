import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { bundledPackageDirectories, bundledPackages, packageDirectoryOf, renderNotices, type WebpackStats } from '../scripts/third-party-notices.js'

const run = promisify(execFile)

describe('scripts/third-party-notices.ts on a made-up tree', () => {
  let root: string
  const loaders = '/repo/node_modules/@vercel/ncc/dist/ncc/loaders/empty-loader.js!/repo/node_modules/@vercel/ncc/dist/ncc/loaders/relocate-loader.js??ruleSet[1].rules[0].use[0]!'

  function pkg(dir: string, manifest: object, files: Record<string, string> = {}): string {
    const path = join(root, dir)
    mkdirSync(path, { recursive: true })
    writeFileSync(join(path, 'package.json'), JSON.stringify(manifest))
    for (const [name, text] of Object.entries(files)) writeFileSync(join(path, name), text)
    return path
  }

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'notices-'))
    pkg('node_modules/@acme/core', { name: '@acme/core', version: '2.0.0', license: 'MIT' }, { 'LICENSE.md': 'MIT text of acme\r\n' })
    pkg('node_modules/@acme/core/node_modules/@acme/http', { name: '@acme/http', version: '1.0.0', license: 'MIT' }, { LICENSE: 'old http licence' })
    pkg('node_modules/@acme/http', { name: '@acme/http', version: '4.0.1', license: 'MIT' }, { LICENSE: 'new http licence' })
    pkg('node_modules/bare', { name: 'bare', version: '0.1.0', license: 'ISC' })
    pkg('node_modules/noticed', { name: 'noticed', version: '3.0.0', license: 'Apache-2.0' }, { LICENSE: 'Apache text', NOTICE: 'Copyright Noticed', 'README.md': 'not a licence' })
    // A package.json without a name deeper in a package (ESM packages ship dist/esm/package.json).
    mkdirSync(join(root, 'node_modules/noticed/dist/esm'), { recursive: true })
    writeFileSync(join(root, 'node_modules/noticed/dist/esm/package.json'), '{"type":"module"}')
  })

  afterAll(() => rmSync(root, { recursive: true, force: true }))

  it('finds the innermost package of a path, and none for the project itself', () => {
    expect(packageDirectoryOf('/r/node_modules/@a/b/node_modules/c/lib/x.js')).toBe('/r/node_modules/@a/b/node_modules/c')
    expect(packageDirectoryOf('/r/node_modules/@a/b/index.js')).toBe('/r/node_modules/@a/b')
    expect(packageDirectoryOf('/r/src/main.ts')).toBeUndefined()
  })

  it('lists every package with a module in any bundle: behind loaders, concatenated, nested, one per version', () => {
    const main: WebpackStats = {
      modules: [
        { identifier: `${loaders}${root}/src/index.ts` },
        { identifier: 'external node-commonjs "node:fs"' },
        {
          identifier: `${loaders}${root}/node_modules/@acme/core/index.js`,
          modules: [
            { identifier: `javascript/esm|${loaders}${root}/node_modules/@acme/core/lib/a.js` },
            { identifier: `javascript/esm|${loaders}${root}/node_modules/@acme/core/node_modules/@acme/http/index.js` }
          ]
        },
        { identifier: `${loaders}${root}/node_modules/noticed/dist/esm/index.js` }
      ]
    }
    const post: WebpackStats = { modules: [{ identifier: `${loaders}${root}/node_modules/@acme/http/index.js` }, { identifier: `${loaders}${root}/node_modules/bare/index.js` }] }

    expect(bundledPackageDirectories([main, post]).map((dir) => dir.slice(root.length))).toEqual([
      '/node_modules/@acme/core',
      '/node_modules/@acme/core/node_modules/@acme/http',
      '/node_modules/@acme/http',
      '/node_modules/bare',
      '/node_modules/noticed'
    ])
    const packages = bundledPackages([main, post])
    expect(packages.map((found) => `${found.name} ${found.version} ${found.license} [${found.files.map((file) => file.name).join(', ')}]`)).toEqual([
      '@acme/core 2.0.0 MIT [LICENSE.md]',
      '@acme/http 1.0.0 MIT [LICENSE]',
      '@acme/http 4.0.1 MIT [LICENSE]',
      'bare 0.1.0 ISC []',
      'noticed 3.0.0 Apache-2.0 [LICENSE, NOTICE]'
    ])

    const text = renderNotices(packages)
    expect(text).toContain('the 5 npm packages below')
    expect(text).toContain('@acme/core 2.0.0\nLicense: MIT\n\nMIT text of acme\n')
    expect(text).toContain('bare 0.1.0\nLicense: ISC\n\nThis package ships no licence file; its package.json declares the licence: ISC.')
    expect(text).toContain('noticed 3.0.0\nLicense: Apache-2.0\n\nLICENSE:\n\nApache text\n\nNOTICE:\n\nCopyright Noticed')
    expect(text).not.toContain('not a licence')
    expect(text).not.toContain(root)
  })
})

/**
 * The packages that webpack put into a bundle, read from ncc's stats without the script's help:
 * every absolute path in the stats that lies in a node_modules package, but ncc's own loaders.
 */
function packagesInStats(statsText: string): Set<string> {
  const found = new Set<string>()
  for (const [, text] of statsText.matchAll(/"((?:[^"\\]|\\.)*\/node_modules\/(?:[^"\\]|\\.)*)"/g)) {
    for (const part of (text ?? '').split(/[!|]/)) {
      const at = part.lastIndexOf('/node_modules/')
      if (at < 0 || !part.startsWith('/')) continue
      const rest = part.slice(at + '/node_modules/'.length).split('/')
      const name = rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1] ?? ''}` : (rest[0] ?? '')
      if (name === '@vercel/ncc') continue
      const manifest = JSON.parse(readFileSync(join(part.slice(0, at), 'node_modules', name, 'package.json'), 'utf8')) as { version: string }
      found.add(`${name} ${manifest.version}`)
    }
  }
  return found
}

describe('dist/licenses.txt', () => {
  let scratch: string
  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'notices-build-'))
  })
  afterAll(() => rmSync(scratch, { recursive: true, force: true }))

  it('names every package, at its version, that ncc bundles into dist/index.js and dist/post/index.js', async () => {
    // The same entries as scripts/build.sh, unminified: the same modules, a little faster.
    const ncc = resolve('node_modules/.bin/ncc')
    await Promise.all(
      [
        ['src/index.ts', 'main'],
        ['src/post-index.ts', 'post']
      ].map(([entry = '', out]) =>
        run(ncc, ['build', entry, '-o', join(scratch, `${out}`), '--stats-out', join(scratch, `${out}.stats.json`), '--target', 'es2022', '--quiet'], {
          maxBuffer: 64 * 1024 * 1024
        })
      )
    )
    const bundled = new Set([...packagesInStats(readFileSync(join(scratch, 'main.stats.json'), 'utf8')), ...packagesInStats(readFileSync(join(scratch, 'post.stats.json'), 'utf8'))])
    for (const name of ['@actions/core', '@actions/github', 'js-yaml', 'semver', 'undici', 'zod', '@octokit/core']) {
      expect([...bundled].some((id) => id.startsWith(`${name} `))).toBe(true)
    }

    const headings = new Set(readFileSync('dist/licenses.txt', 'utf8').split('\n'))
    const missing = [...bundled].filter((id) => !headings.has(id)).sort()
    // When this fails: `npm run build` writes dist/licenses.txt from what ncc bundles; commit it.
    expect(missing).toEqual([])
  }, 300_000)
})
