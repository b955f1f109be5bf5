import { describe, expect, it } from '@jest/globals'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { singleFileTar } from '../src/proxy/config-archive.js'
import { renderHaproxyConfig } from '../src/proxy/haproxy-config.js'

const CONFIG = renderHaproxyConfig({ name: 'shop', appPort: 3000, live: 'green', healthPath: '/health', drainMs: 30_000 })

describe('singleFileTar', () => {
  it('is a ustar archive of whole 512-byte blocks with a valid header checksum', () => {
    const archive = Buffer.from(singleFileTar('haproxy.cfg', CONFIG), 'latin1')
    expect(archive.length % 512).toBe(0)
    expect(archive.length).toBe(512 + Math.ceil(CONFIG.length / 512) * 512 + 1024)
    expect(archive.subarray(257, 263).toString('latin1')).toBe('ustar\0')
    const stored = parseInt(archive.subarray(148, 154).toString('latin1'), 8)
    let sum = 0
    for (let index = 0; index < 512; index++) sum += index >= 148 && index < 156 ? 32 : (archive[index] as number)
    expect(stored).toBe(sum)
    expect(archive.subarray(archive.length - 1024).every((byte) => byte === 0)).toBe(true)
  })

  it('extracts with tar to the same file, mode 0644, owned by root', () => {
    const dir = mkdtempSync(join(tmpdir(), 'deploy-action-tar-'))
    try {
      // Exactly what docker cp reads on stdin: the string written as one byte per character.
      const result = spawnSync('tar', ['-x', '--no-same-owner', '-C', dir], { input: singleFileTar('haproxy.cfg', CONFIG) })
      expect(result.status).toBe(0)
      expect(readFileSync(join(dir, 'haproxy.cfg'), 'utf8')).toBe(CONFIG)
      expect(statSync(join(dir, 'haproxy.cfg')).mode & 0o777).toBe(0o644)
      const listing = spawnSync('tar', ['-tv', '--numeric-owner'], { input: singleFileTar('haproxy.cfg', CONFIG), encoding: 'utf8' })
      expect(listing.stdout).toMatch(/^-rw-r--r-- 0\/0 +\d+ 1970-01-01 00:00 haproxy\.cfg$/m)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('is deterministic and pads content of exactly one block with no extra block', () => {
    expect(singleFileTar('a.cfg', 'x')).toBe(singleFileTar('a.cfg', 'x'))
    expect(singleFileTar('a.cfg', 'y'.repeat(512))).toHaveLength(512 * 4)
    expect(singleFileTar('a.cfg', '')).toHaveLength(512 * 3)
    expect(singleFileTar('a.cfg', 'x', { mode: 0o600, mtimeSeconds: 1_700_000_000 }).slice(100, 108)).toBe('0000600\0')
  })

  it.each([
    ['a path', '../haproxy.cfg'],
    ['a directory', 'etc/haproxy.cfg'],
    ['dot-dot', '..'],
    ['an empty name', ''],
    ['a name over 100 characters', 'a'.repeat(101)]
  ])('refuses %s as the entry name', (_, name) => {
    expect(() => singleFileTar(name, 'x')).toThrow(/plain file name/)
  })

  it('refuses content that is not ASCII', () => {
    expect(() => singleFileTar('haproxy.cfg', 'café')).toThrow(/ASCII/)
  })
})
