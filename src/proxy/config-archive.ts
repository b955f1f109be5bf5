/**
 * A one-file tar archive, for `docker cp - <container>:<dir>` with the archive on stdin: how the
 * strategy puts haproxy.cfg into the proxy container through docker commands only (so it works the
 * same over `ssh://`). `docker cp` also works on a created but not yet started container, so the
 * proxy never starts without its config, and on a running one before `docker restart`.
 *
 * The archive is returned as a string because `DockerRunOptions.input` is one: the header is
 * ASCII with NUL padding and the content must be ASCII (haproxy-config.ts only renders ASCII), so
 * every character is exactly one byte on stdin.
 */

const BLOCK = 512

function octal(value: number, width: number): string {
  // width - 1 digits and a NUL, as POSIX ustar numeric fields are written.
  const digits = value.toString(8)
  if (digits.length > width - 1) throw new Error(`tar field overflow: ${value} does not fit in ${width - 1} octal digits`)
  return digits.padStart(width - 1, '0') + '\0'
}

function field(text: string, width: number): string {
  if (text.length > width) throw new Error(`tar field overflow: ${JSON.stringify(text)} is longer than ${width}`)
  return text.padEnd(width, '\0')
}

export interface ArchiveOptions {
  /** Permission bits. Default 0o644 (readable by the image's non-root user, e.g. uid 99 `haproxy`). */
  mode?: number
  /** Modification time, seconds since the epoch. Default 0, so the same content gives the same archive. */
  mtimeSeconds?: number
}

/**
 * A POSIX ustar archive holding one regular file `fileName` (a plain name, no directories) with
 * `content` (ASCII only), owned by root.
 */
export function singleFileTar(fileName: string, content: string, options: ArchiveOptions = {}): string {
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(fileName) || fileName === '.' || fileName === '..') {
    throw new Error(`tar entry name must be a plain file name, got ${JSON.stringify(fileName)}`)
  }
  // eslint-disable-next-line no-control-regex
  if (!/^[\x00-\x7f]*$/.test(content)) throw new Error('tar content must be ASCII: one character per byte on stdin')
  const mode = options.mode ?? 0o644
  const header = [
    field(fileName, 100),
    octal(mode, 8),
    octal(0, 8), // uid
    octal(0, 8), // gid
    octal(content.length, 12),
    octal(options.mtimeSeconds ?? 0, 12),
    '        ', // checksum, counted as spaces while computing it
    '0', // regular file
    field('', 100), // link name
    'ustar\0',
    '00',
    field('root', 32),
    field('root', 32),
    octal(0, 8), // devmajor
    octal(0, 8), // devminor
    field('', 155), // prefix
    field('', 12)
  ].join('')
  let sum = 0
  for (let index = 0; index < header.length; index++) sum += header.charCodeAt(index)
  const checksum = sum.toString(8).padStart(6, '0') + '\0 '
  const withChecksum = header.slice(0, 148) + checksum + header.slice(156)
  const padding = '\0'.repeat((BLOCK - (content.length % BLOCK)) % BLOCK)
  // Two zero blocks end the archive.
  return withChecksum + content + padding + '\0'.repeat(2 * BLOCK)
}
