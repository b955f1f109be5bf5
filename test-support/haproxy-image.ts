/**
 * A HAProxy test image made from Debian's `haproxy` package, laid out like the official image, so
 * that tests need no registry outside this machine (see shared/proxy-research.md):
 * - `/usr/local/sbin/haproxy`: Debian's `/usr/sbin/haproxy`, with every library `ldd` lists at the
 *   path it lists, and the loader `/lib64/ld-linux-x86-64.so.2`;
 * - static busybox with its applets (so `sh` and `nc` are there, as in the official alpine images);
 * - config expected at `/usr/local/etc/haproxy/haproxy.cfg` (none shipped; the directory is
 *   root's), user `haproxy` (uid/gid 99, like the official image since 2.4) with home
 *   `/var/lib/haproxy`, which is also the working directory;
 * - `CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]` (what the official
 *   entrypoint runs).
 *
 * Differences from the official image that a user of it must know: `docker import` cannot set
 * `STOPSIGNAL`, so this image stops on SIGTERM (the official one has `STOPSIGNAL SIGUSR1`, a soft
 * stop). Give the proxy container `--stop-signal SIGUSR1` and both behave the same.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import type { Engine } from './engine.js'
import { writeBusyboxRootfs, type AppImage } from './images.js'
import { runChecked } from './proc.js'
import type { PushedImage, Registry } from './registry.js'

/** Where Debian's `haproxy` package installs the binary. */
export const DEBIAN_HAPROXY = '/usr/sbin/haproxy'
/** Where the official image has it (and where this image puts it). */
export const IMAGE_HAPROXY = '/usr/local/sbin/haproxy'
/** Where the official image expects its configuration. */
export const IMAGE_HAPROXY_CONFIG = '/usr/local/etc/haproxy/haproxy.cfg'
/** uid and gid of user `haproxy` in the official image (2.4 and later). */
export const HAPROXY_UID = 99

export interface HaproxyImage extends AppImage {
  /** HAProxy's version as `haproxy -v` prints it, e.g. `2.6.12-1+deb12u4`. */
  version: string
}

export interface PushedHaproxyImage extends HaproxyImage {
  /** `127.0.0.1:PORT/repo:tag` in the test registry. */
  pushed: PushedImage
}

/** The shared libraries `ldd` lists for `binary` (absolute paths, the loader included). */
export function sharedLibraries(binary: string): string[] {
  const result = spawnSync('ldd', [binary], { encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`ldd ${binary} failed: ${result.stderr.trim() || result.stdout.trim()}`)
  const paths = new Set<string>()
  for (const line of result.stdout.split('\n')) {
    // "libssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
    const path = /=>\s*(\/\S+)/.exec(line)?.[1] ?? /^\s*(\/\S+)\s+\(/.exec(line)?.[1]
    if (path) paths.add(path)
    if (/=>\s*not found/.test(line)) throw new Error(`ldd ${binary}: ${line.trim()}`)
  }
  return [...paths]
}

/** `haproxy -v`'s version of the Debian binary on this machine. */
export function debianHaproxyVersion(): string {
  const result = spawnSync(DEBIAN_HAPROXY, ['-v'], { encoding: 'utf8' })
  const version = /HAProxy version (\S+)/.exec(result.stdout ?? '')?.[1]
  if (result.status !== 0 || !version) {
    throw new Error(`${DEBIAN_HAPROXY} -v failed; install haproxy (scripts/install-test-deps.sh): ${result.stderr ?? ''}`)
  }
  return version
}

/**
 * Builds the HAProxy test image as `repo:tag` in `engine` (no registry, no network): Debian's
 * binary, its libraries and loader, and busybox, imported with `docker import`.
 */
export async function buildHaproxyImage(engine: Engine, repo = 'local/haproxy', tag = 'debian-test'): Promise<HaproxyImage> {
  const version = debianHaproxyVersion()
  const work = mkdtempSync(join(tmpdir(), 'deploy-action-haproxy-image-'))
  try {
    const root = join(work, 'root')
    writeBusyboxRootfs(root)
    const place = (source: string, target: string, mode: number): void => {
      mkdirSync(join(root, dirname(target)), { recursive: true })
      copyFileSync(source, join(root, target)) // follows symlinks: the real file lands at the listed path
      chmodSync(join(root, target), mode)
    }
    place(DEBIAN_HAPROXY, IMAGE_HAPROXY, 0o755)
    for (const library of sharedLibraries(DEBIAN_HAPROXY)) place(library, library, 0o755)

    writeFileSync(
      join(root, 'etc/passwd'),
      'root:x:0:0:root:/root:/bin/sh\nhaproxy:x:99:99:haproxy:/var/lib/haproxy:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n'
    )
    writeFileSync(join(root, 'etc/group'), 'root:x:0:\nhaproxy:x:99:\nnogroup:x:65534:\n')
    mkdirSync(join(root, dirname(IMAGE_HAPROXY_CONFIG)), { recursive: true })
    mkdirSync(join(root, 'var/lib/haproxy'), { recursive: true })
    chownSync(join(root, 'var/lib/haproxy'), HAPROXY_UID, HAPROXY_UID)

    const archive = join(work, 'rootfs.tar')
    // Ownership as on disk (root everywhere, haproxy's home its own): the tests run as root.
    await runChecked('tar', ['--numeric-owner', '-C', root, '-cf', archive, '.'])
    const changes = [
      `CMD ["haproxy", "-W", "-db", "-f", "${IMAGE_HAPROXY_CONFIG}"]`,
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      'USER haproxy',
      'WORKDIR /var/lib/haproxy',
      `LABEL org.opencontainers.image.version=${version} deploy-action.test.image=haproxy`
    ]
    const reference = `${repo}:${tag}`
    const id = (await engine.docker(['import', ...changes.flatMap((change) => ['--change', change]), archive, reference])).trim()
    return { reference, id, version }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/**
 * Builds the HAProxy test image in `engine` and pushes it to the test registry as
 * `<registry>/<repo>:<tag>`, so a test can pass that reference as `proxy.image` and let the action
 * pull it like any other image.
 */
export async function pushHaproxyImage(
  engine: Engine,
  registry: Registry,
  repo = 'haproxy',
  tag = 'debian-test'
): Promise<PushedHaproxyImage> {
  const image = await buildHaproxyImage(engine, `local/${repo}`, tag)
  const pushed = await registry.push(engine, image.reference, repo, tag)
  return { ...image, pushed }
}
