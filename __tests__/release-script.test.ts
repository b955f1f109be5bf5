import { afterEach, beforeEach, describe, expect, it } from '@jest/globals'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

// scripts/release.sh runs against a scratch repository whose `npm run build` copies src.txt to
// dist/index.js and whose tests are a command line the test chooses; nothing here has a remote,
// so a push would fail the script.
const script = resolve('scripts/release.sh')
const gitIdentity = {
  GIT_AUTHOR_NAME: 'Release Test',
  GIT_AUTHOR_EMAIL: 'release@example.invalid',
  GIT_COMMITTER_NAME: 'Release Test',
  GIT_COMMITTER_EMAIL: 'release@example.invalid'
}
const changelog = '# Changelog\n\n## Unreleased\n\n- Deploys containers.\n- Rolls back.\n\n## v1.1.0 - 2024-01-01\n\n- Older.\n'

let repo: string

function git(...args: string[]): string {
  return execFileSync('git', args, { cwd: repo, encoding: 'utf8', env: { ...process.env, ...gitIdentity } }).trim()
}

function write(path: string, text: string): void {
  mkdirSync(join(repo, path, '..'), { recursive: true })
  writeFileSync(join(repo, path), text)
}

function release(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return releaseWith({}, ...args)
}

function releaseWith(env: NodeJS.ProcessEnv, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync('bash', [script, ...args], { cwd: repo, encoding: 'utf8', env: { ...process.env, ...gitIdentity, ...env } })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

/** Commit, tags and changelog: what a refused release must leave exactly as it was. */
function snapshot(): string {
  return [git('rev-parse', 'HEAD'), git('tag', '--list'), readFileSync(join(repo, 'CHANGELOG.md'), 'utf8')].join('\n')
}

beforeEach(() => {
  repo = mkdtempSync(join(tmpdir(), 'release-'))
  git('init', '--quiet', '-b', 'main')
  write('package.json', JSON.stringify({ name: 'scratch', private: true, scripts: { build: 'node build.mjs', test: 'node -e ""' } }))
  write('build.mjs', "import { mkdirSync, copyFileSync } from 'node:fs'\nmkdirSync('dist', { recursive: true })\ncopyFileSync('src.txt', 'dist/index.js')\n")
  write('src.txt', 'one\n')
  write('dist/index.js', 'one\n')
  write('CHANGELOG.md', changelog)
  git('add', '.')
  git('commit', '--quiet', '-m', 'initial')
  git('tag', 'v1.1.0')
})

afterEach(() => {
  rmSync(repo, { recursive: true, force: true })
})

describe('scripts/release.sh', () => {
  it('moves the Unreleased entries under the version, commits, tags vX.Y.Z, moves vX, and prints the pushes', () => {
    const result = release('v1.2.0')
    expect(result.stderr).not.toContain('release:')
    expect(result.status).toBe(0)

    const today = new Date().toISOString().slice(0, 10)
    expect(readFileSync(join(repo, 'CHANGELOG.md'), 'utf8')).toBe(
      `# Changelog\n\n## Unreleased\n\n## v1.2.0 - ${today}\n\n- Deploys containers.\n- Rolls back.\n\n## v1.1.0 - 2024-01-01\n\n- Older.\n`
    )
    expect(git('log', '-1', '--format=%s')).toBe('Release v1.2.0')
    expect(git('show', '--name-only', '--format=', 'HEAD')).toBe('CHANGELOG.md')
    const head = git('rev-parse', 'HEAD')
    expect(git('rev-parse', 'v1.2.0^{commit}')).toBe(head)
    expect(git('rev-parse', 'v1^{commit}')).toBe(head)
    expect(git('status', '--porcelain')).toBe('')
    expect(result.stdout).toContain('Nothing was pushed')
    expect(result.stdout).toContain('git push origin refs/tags/v1.2.0')
    expect(result.stdout).toContain('git push --force origin refs/tags/v1')
  })

  it('moves the major tag again on the next release', () => {
    expect(release('v1.2.0').status).toBe(0)
    const first = git('rev-parse', 'HEAD')
    write('CHANGELOG.md', readFileSync(join(repo, 'CHANGELOG.md'), 'utf8').replace('## Unreleased\n', '## Unreleased\n\n- Fixed a thing.\n'))
    git('commit', '--quiet', '-am', 'fix')
    expect(release('v1.2.1').status).toBe(0)
    expect(git('rev-parse', 'v1^{commit}')).not.toBe(first)
    expect(git('rev-parse', 'v1^{commit}')).toBe(git('rev-parse', 'HEAD'))
    expect(git('rev-parse', 'v1.2.0^{commit}')).toBe(first)
  })

  it.each<[string, () => string[], string]>([
    ['a version that is not vX.Y.Z', () => ['1.2.0'], 'usage: scripts/release.sh vX.Y.Z'],
    ['a tag that exists', () => ['v1.1.0'], 'tag v1.1.0 exists already'],
    [
      'a version older than an existing release of the same major',
      () => {
        git('tag', 'v1.3.0')
        return ['v1.2.0']
      },
      'v1.3.0 is newer than v1.2.0'
    ],
    [
      'an uncommitted change',
      () => {
        write('src.txt', 'changed\n')
        return ['v1.2.0']
      },
      'the working tree is not clean'
    ],
    [
      'an untracked file',
      () => {
        write('notes.txt', 'x\n')
        return ['v1.2.0']
      },
      'the working tree is not clean'
    ],
    [
      'a branch other than main',
      () => {
        git('switch', '--quiet', '-c', 'feature')
        return ['v1.2.0']
      },
      "releases are made from main, not 'feature'"
    ],
    [
      'dist/ older than the sources',
      () => {
        write('src.txt', 'two\n')
        git('commit', '--quiet', '-am', 'change src without rebuilding')
        return ['v1.2.0']
      },
      'npm run build changed dist/'
    ],
    [
      'nothing under Unreleased',
      () => {
        write('CHANGELOG.md', '# Changelog\n\n## Unreleased\n\n## v1.1.0 - 2024-01-01\n\n- Older.\n')
        git('commit', '--quiet', '-am', 'empty unreleased')
        return ['v1.2.0']
      },
      "CHANGELOG.md has nothing under '## Unreleased'"
    ],
    ['failing tests', () => ['v1.2.0', '--', 'false'], 'the tests failed'],
    [
      'a failing npm test (the default test command)',
      () => {
        write('package.json', JSON.stringify({ name: 'scratch', private: true, scripts: { build: 'node build.mjs', test: 'node -e "process.exit(3)"' } }))
        git('commit', '--quiet', '-am', 'failing tests')
        return ['v1.2.0']
      },
      'the tests failed'
    ]
  ])('refuses %s and changes nothing', (_what, arrange, message) => {
    const args = arrange()
    const before = snapshot()
    const result = release(...args)
    expect(result.stderr).toContain(`release: ${message}`)
    expect(result.status).toBe(1)
    expect(snapshot()).toBe(before)
  })
})

describe('scripts/release.sh: the first release, v1.0.0, from a prepared section', () => {
  const today = new Date().toISOString().slice(0, 10)
  const prepared = (heading: string): string =>
    `# Changelog\n\n## Unreleased\n\n${heading}\n\n### Added\n\n- Deploys containers.\n- Rolls back.\n\n## v0.9.0 - 2026-01-01\n\n- Older.\n`

  beforeEach(() => {
    // A project that never released v1: only a 0.x tag.
    git('tag', '--delete', 'v1.1.0')
    git('tag', 'v0.9.0')
  })

  it('dates the prepared "## v1.0.0" section, commits, tags v1.0.0 and creates v1', () => {
    write('CHANGELOG.md', prepared('## v1.0.0'))
    git('commit', '--quiet', '-am', 'changelog for 1.0.0')
    const result = release('v1.0.0')
    expect(result.stderr).not.toContain('release:')
    expect(result.status).toBe(0)
    expect(readFileSync(join(repo, 'CHANGELOG.md'), 'utf8')).toBe(prepared(`## v1.0.0 - ${today}`))
    expect(git('log', '-1', '--format=%s')).toBe('Release v1.0.0')
    const head = git('rev-parse', 'HEAD')
    expect(git('rev-parse', 'v1.0.0^{commit}')).toBe(head)
    expect(git('rev-parse', 'v1^{commit}')).toBe(head)
    expect(git('cat-file', '-t', 'v1.0.0')).toBe('tag')
    expect(result.stdout).toContain('scripts/release.sh publish v1.0.0')
  })

  it('tags the commit as it is when the prepared section already carries the date of the release', () => {
    write('CHANGELOG.md', prepared(`## v1.0.0 - ${today}`))
    git('commit', '--quiet', '-am', 'changelog for 1.0.0')
    const before = git('rev-parse', 'HEAD')
    expect(release('v1.0.0').status).toBe(0)
    expect(git('rev-parse', 'HEAD')).toBe(before)
    expect(git('rev-parse', 'v1.0.0^{commit}')).toBe(before)
    expect(git('rev-parse', 'v1^{commit}')).toBe(before)
  })

  it('refuses entries under both "## Unreleased" and the prepared section, and changes nothing', () => {
    write('CHANGELOG.md', prepared('## v1.0.0 - 2026-12-02').replace('## Unreleased\n', '## Unreleased\n\n- Also this.\n'))
    git('commit', '--quiet', '-am', 'both')
    const before = snapshot()
    const result = release('v1.0.0')
    expect(result.stderr).toContain("release: CHANGELOG.md has entries under both '## Unreleased' and '## v1.0.0'")
    expect(result.status).toBe(1)
    expect(snapshot()).toBe(before)
  })

  describe('publish', () => {
    let remote: string
    let bin: string
    let ghLog: string

    beforeEach(() => {
      remote = mkdtempSync(join(tmpdir(), 'release-remote-'))
      execFileSync('git', ['init', '--quiet', '--bare', '-b', 'main', remote])
      git('remote', 'add', 'origin', remote)
      git('push', '--quiet', 'origin', 'main', 'refs/tags/v0.9.0')
      // A stand-in for the GitHub CLI: records its arguments and the notes file it was given.
      bin = mkdtempSync(join(tmpdir(), 'release-bin-'))
      ghLog = join(bin, 'gh.log')
      writeFileSync(
        join(bin, 'gh'),
        `#!/usr/bin/env bash\nprintf '%s\\n' "$*" >>'${ghLog}'\nwhile [[ $# -gt 0 ]]; do if [[ "$1" == --notes-file ]]; then cat "$2" >>'${ghLog}'; fi; shift; done\n`,
        { mode: 0o755 }
      )
    })

    afterEach(() => {
      rmSync(remote, { recursive: true, force: true })
      rmSync(bin, { recursive: true, force: true })
    })

    const publish = (version: string): ReturnType<typeof release> => releaseWith({ PATH: `${bin}:${process.env.PATH ?? ''}` }, 'publish', version)
    const remoteRef = (ref: string): string => execFileSync('git', ['rev-parse', ref], { cwd: remote, encoding: 'utf8' }).trim()

    it('pushes main and both tags, then creates the GitHub Release with the CHANGELOG section as its notes', () => {
      write('CHANGELOG.md', prepared('## v1.0.0 - 2026-12-02'))
      git('commit', '--quiet', '-am', 'changelog for 1.0.0')
      expect(release('v1.0.0').status).toBe(0)
      const released = git('rev-parse', 'v1.0.0^{commit}')

      const result = publish('v1.0.0')
      expect(result.stderr).not.toContain('release:')
      expect(result.status).toBe(0)
      expect(remoteRef('refs/heads/main')).toBe(released)
      expect(remoteRef('refs/tags/v1.0.0^{commit}')).toBe(released)
      expect(remoteRef('refs/tags/v1^{commit}')).toBe(released)
      const [command, ...notes] = readFileSync(ghLog, 'utf8').split('\n')
      expect(command).toMatch(/^release create v1\.0\.0 --verify-tag --title v1\.0\.0 --notes-file \S+$/)
      expect(notes.join('\n')).toBe('### Added\n\n- Deploys containers.\n- Rolls back.\n')
    })

    it('moves v1 on the remote with the next release', () => {
      write('CHANGELOG.md', prepared('## v1.0.0 - 2026-12-02'))
      git('commit', '--quiet', '-am', 'changelog for 1.0.0')
      expect(release('v1.0.0').status).toBe(0)
      expect(publish('v1.0.0').status).toBe(0)
      write('CHANGELOG.md', readFileSync(join(repo, 'CHANGELOG.md'), 'utf8').replace('## Unreleased\n', '## Unreleased\n\n- Fixed a thing.\n'))
      git('commit', '--quiet', '-am', 'fix')
      expect(release('v1.0.1').status).toBe(0)
      expect(publish('v1.0.1').status).toBe(0)
      expect(remoteRef('refs/tags/v1^{commit}')).toBe(git('rev-parse', 'v1.0.1^{commit}'))
      expect(remoteRef('refs/tags/v1.0.0^{commit}')).toBe(git('rev-parse', 'v1.0.0^{commit}'))
      expect(readFileSync(ghLog, 'utf8')).toContain('release create v1.0.1 --verify-tag --title v1.0.1 --notes-file')
      expect(readFileSync(ghLog, 'utf8')).toContain('\n- Fixed a thing.\n')
    })

    it.each<[string, () => void, string]>([
      ['a version that was not prepared', () => undefined, 'tag v1.0.0 does not exist; prepare the release first'],
      [
        'a major tag that points elsewhere',
        () => {
          write('CHANGELOG.md', prepared('## v1.0.0 - 2026-12-02'))
          git('commit', '--quiet', '-am', 'changelog for 1.0.0')
          git('tag', '-a', 'v1.0.0', '-m', 'by hand')
          git('tag', 'v1', 'v0.9.0')
        },
        'v1 does not point at v1.0.0'
      ],
      [
        'a CHANGELOG without the section',
        () => {
          git('tag', '-a', 'v1.0.0', '-m', 'by hand')
          git('tag', 'v1', 'v1.0.0^{commit}')
        },
        "CHANGELOG.md at v1.0.0 has no '## v1.0.0' section"
      ]
    ])('refuses %s and pushes nothing', (_what, arrange, message) => {
      arrange()
      const result = publish('v1.0.0')
      expect(result.stderr).toContain(`release: ${message}`)
      expect(result.status).toBe(1)
      expect(execFileSync('git', ['tag', '--list'], { cwd: remote, encoding: 'utf8' }).trim()).toBe('v0.9.0')
      expect(() => readFileSync(ghLog)).toThrow()
    })
  })
})
