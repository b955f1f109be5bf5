/**
 * Test images built without any registry access: a root filesystem holding the static busybox
 * from the host (package busybox-static) with links for its applets, a small /app/run script that
 * plays one behaviour, and a /www directory for busybox httpd, imported with `docker import`.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { REPO_ROOT } from './action-run.js'
import type { Engine } from './engine.js'
import { runChecked } from './proc.js'

/** Where busybox-static installs its binary on Debian. */
export const BUSYBOX = '/bin/busybox'

/**
 * How the app in the image behaves. Every behaviour listens (if at all) on $BIND:$PORT, by default
 * 127.0.0.1, which with `--network host` is the host's loopback. Only inside a harness network
 * namespace (netns.ts) should a test set `-e BIND=0.0.0.0`, to serve on the namespace's address.
 * - `healthy`: serves `/health` (body `ok`) and `/version` (body: the tag).
 * - `never-listens`: keeps running but never opens its port.
 * - `exits`: prints a fatal message on stderr and exits 1 at once.
 * - `slow-start`: sleeps `$START_DELAY` seconds, then serves like `healthy`.
 * - `wrong-body`: serves `/health` with body `not ok` (status 200).
 * - `crash-later`: serves like `healthy`, then exits 1 after `$CRASH_AFTER` seconds.
 */
export type AppBehaviour = 'healthy' | 'never-listens' | 'exits' | 'slow-start' | 'wrong-body' | 'crash-later'

export const APP_BEHAVIOURS: readonly AppBehaviour[] = ['healthy', 'never-listens', 'exits', 'slow-start', 'wrong-body', 'crash-later']

export interface AppImageOptions {
  /** Default `PORT` baked into the image (`ENV PORT=…`); `docker run -e PORT=…` overrides it. Default 8080. */
  port?: number
  /** `slow-start`: seconds before it listens (`ENV START_DELAY`, overridable). Default 3. */
  startDelaySeconds?: number
  /** `crash-later`: seconds it serves before exiting 1 (`ENV CRASH_AFTER`, overridable). Default 3. */
  crashAfterSeconds?: number
  /**
   * Body of `/health`. Default `ok`, or `not ok` for `wrong-body`. Note that `not ok` contains
   * `ok`: a substring check for `ok` alone cannot tell the two apart.
   */
  healthBody?: string
  /** Extra files in the image, path (absolute, inside the image) to content; made executable when `executable`. */
  files?: Record<string, { content: string; executable?: boolean }>
  /** Extra `docker import --change` lines, e.g. `LABEL team=web`. */
  changes?: string[]
  /**
   * Serve through tcp-listen.c with this listen backlog instead of `httpd -f`, whose backlog of 9
   * overflows under a load test (see tcp-listen.c). Default: `httpd -f`.
   */
  listenBacklog?: number
}

export interface AppImage {
  /** `repo:tag` as tagged in the engine. */
  reference: string
  /** Local image id (`sha256:…`). */
  id: string
}

/**
 * The shell script that plays a behaviour. It stays PID 1 (or PID 2 under `--init`) and traps
 * SIGTERM/SIGINT, so `docker stop` ends it at once even without `--init` (busybox httpd as PID 1
 * would ignore SIGTERM and make every stop take the full timeout).
 */
function appScript(behaviour: AppBehaviour): string {
  const prelude = `#!/bin/sh
# deploy-action test image, behaviour: ${behaviour}
pids=''
shutdown() {
  echo "app: received SIG$1, shutting down"
  [ -n "$pids" ] && kill $pids 2>/dev/null
  exit 0
}
trap 'shutdown TERM' TERM
trap 'shutdown INT' INT
serve() {
  if [ -n "$LISTEN_BACKLOG" ] && [ -x /bin/tcp-listen ]; then
    tcp-listen "$BIND" "$PORT" "$LISTEN_BACKLOG" /bin/busybox httpd -i -h /www &
  else
    httpd -f -p "$BIND:$PORT" -h /www &
  fi
  httpd_pid=$!
  pids="$pids $httpd_pid"
  echo "app: ${behaviour} $APP_VERSION listening on $BIND:$PORT"
}
# 'wait' returns early when a trapped signal arrives, so the trap runs without delay.
pause() {
  sleep "$1" &
  sleep_pid=$!
  pids="$pids $sleep_pid"
  wait $sleep_pid
}
serve_until_httpd_exits() {
  wait $httpd_pid
  status=$?
  echo "app: httpd exited with status $status" >&2
  exit $status
}
`
  const body: Record<AppBehaviour, string> = {
    healthy: 'serve\nserve_until_httpd_exits\n',
    'wrong-body': 'serve\nserve_until_httpd_exits\n',
    'never-listens': 'echo "app: started; this build never opens port $PORT"\nwhile :; do pause 3600; done\n',
    exits: 'echo "app: fatal: cannot start $APP_VERSION: required configuration is missing" >&2\nexit 1\n',
    'slow-start': 'echo "app: warming up for $START_DELAY s"\npause "$START_DELAY"\nserve\nserve_until_httpd_exits\n',
    'crash-later':
      'serve\npause "$CRASH_AFTER"\nkill $httpd_pid 2>/dev/null\necho "app: crashed after $CRASH_AFTER s (simulated)" >&2\nexit 1\n'
  }
  return prelude + body[behaviour]
}

function writeFile(root: string, path: string, content: string, executable = false): void {
  const target = join(root, path)
  mkdirSync(dirname(target), { recursive: true })
  writeFileSync(target, content)
  if (executable) chmodSync(target, 0o755)
}

/** A root filesystem with busybox and a link for each applet, at their usual paths. */
function writeBusyboxRoot(root: string): void {
  const list = spawnSync(BUSYBOX, ['--list-full'], { encoding: 'utf8' })
  if (list.status !== 0) throw new Error(`${BUSYBOX} --list-full failed; install busybox-static (scripts/install-test-deps.sh)`)
  mkdirSync(join(root, 'bin'), { recursive: true })
  copyFileSync(BUSYBOX, join(root, 'bin/busybox'))
  chmodSync(join(root, 'bin/busybox'), 0o755)
  for (const applet of list.stdout.split('\n').filter(Boolean)) {
    if (applet === 'bin/busybox') continue
    mkdirSync(join(root, dirname(applet)), { recursive: true })
    symlinkSync('/bin/busybox', join(root, applet))
  }
  mkdirSync(join(root, 'tmp'), { mode: 0o1777 })
  chmodSync(join(root, 'tmp'), 0o1777)
  writeFile(root, 'etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n')
  writeFile(root, 'etc/group', 'root:x:0:\nnogroup:x:65534:\n')
}

/**
 * Builds `repo:tag` in `engine` with the given behaviour and returns its reference and id.
 * The image needs no registry and no network; run it with `--network host` and, ideally,
 * `--init`. `/version` answers with `tag`.
 */
export async function buildAppImage(
  engine: Engine,
  repo: string,
  tag: string,
  behaviour: AppBehaviour,
  options: AppImageOptions = {}
): Promise<AppImage> {
  const work = mkdtempSync(join(tmpdir(), 'deploy-action-image-'))
  try {
    const root = join(work, 'root')
    writeBusyboxRoot(root)
    writeFile(root, 'app/run', appScript(behaviour), true)
    const healthBody = options.healthBody ?? (behaviour === 'wrong-body' ? 'not ok' : 'ok')
    writeFile(root, 'www/health', healthBody)
    writeFile(root, 'www/version', tag)
    writeFile(root, 'www/index.html', `<p>deploy-action test app ${tag} (${behaviour})</p>\n`)
    for (const [path, file] of Object.entries(options.files ?? {})) writeFile(root, path.replace(/^\/+/, ''), file.content, file.executable)
    if (options.listenBacklog !== undefined) copyFileSync(await tcpListenBinary(), join(root, 'bin/tcp-listen'))

    const archive = join(work, 'rootfs.tar')
    await runChecked('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', root, '-cf', archive, '.'])

    const changes = [
      `ENV PORT=${options.port ?? 8080}`,
      'ENV BIND=127.0.0.1',
      `ENV APP_VERSION=${tag}`,
      `ENV START_DELAY=${options.startDelaySeconds ?? 3}`,
      `ENV CRASH_AFTER=${options.crashAfterSeconds ?? 3}`,
      ...(options.listenBacklog !== undefined ? [`ENV LISTEN_BACKLOG=${options.listenBacklog}`] : []),
      `LABEL org.opencontainers.image.version=${tag} deploy-action.test.behaviour=${behaviour}`,
      'CMD ["/app/run"]',
      ...(options.changes ?? [])
    ]
    const reference = `${repo}:${tag}`
    const args = ['import', ...changes.flatMap((change) => ['--change', change]), archive, reference]
    const id = (await engine.docker(args)).trim()
    return { reference, id }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

let tcpListen: Promise<string> | undefined

/** tcp-listen.c, built statically once per process (gcc and libc6-dev: scripts/install-test-deps.sh). */
function tcpListenBinary(): Promise<string> {
  tcpListen ??= (async () => {
    const directory = mkdtempSync(join(tmpdir(), 'deploy-action-tcp-listen-'))
    const binary = join(directory, 'tcp-listen')
    await runChecked('gcc', ['-static', '-O2', '-o', binary, join(REPO_ROOT, 'test-support', 'tcp-listen.c')])
    chmodSync(binary, 0o755)
    return binary
  })()
  return tcpListen
}

/**
 * Writes the busybox root filesystem that every test image here is made of (static busybox at
 * /bin/busybox with a link per applet, /tmp, a minimal /etc/passwd and /etc/group) into `root`.
 * For other image builders, e.g. the HAProxy test image in haproxy-image.ts.
 */
export function writeBusyboxRootfs(root: string): void {
  writeBusyboxRoot(root)
}

export interface SlowAppImageOptions extends AppImageOptions {
  /** Default seconds `/cgi-bin/slow` takes (`ENV SLOW_SECONDS`, overridable per container). Default 3. */
  slowSeconds?: number
}

/**
 * A `healthy` app image (same `/health`, `/version`, `$BIND:$PORT`, prompt SIGTERM) that also
 * serves slow requests: `GET /cgi-bin/slow` answers after `$SLOW_SECONDS` seconds (or after the
 * number of seconds in the query string, `/cgi-bin/slow?1`) with body `<tag> slow`, so a load test
 * can tell which version finished each slow request. `GET` or `POST /cgi-bin/version` answers
 * `<tag>` (busybox httpd serves POST only through CGI). busybox httpd runs each CGI in a child
 * process, so slow requests do not hold up other requests. For a user network run it with
 * `-e BIND=0.0.0.0`.
 */
export async function buildSlowAppImage(engine: Engine, repo: string, tag: string, options: SlowAppImageOptions = {}): Promise<AppImage> {
  const cgi = `#!/bin/sh
# deploy-action test image: a request that takes a while, for drain tests
seconds="$SLOW_SECONDS"
case "$QUERY_STRING" in
  ''|*[!0-9]*) ;;
  *) seconds="$QUERY_STRING" ;;
esac
sleep "$seconds"
printf 'Content-Type: text/plain\\r\\n\\r\\n%s slow' "$APP_VERSION"
`
  // busybox httpd answers POST only through CGI (501 for a static file).
  const version = `#!/bin/sh
# deploy-action test image: the version, for GET and POST
[ -n "$CONTENT_LENGTH" ] && head -c "$CONTENT_LENGTH" >/dev/null
printf 'Content-Type: text/plain\\r\\n\\r\\n%s' "$APP_VERSION"
`
  return buildAppImage(engine, repo, tag, 'healthy', {
    // It takes the load tests' traffic: a real server's backlog, not busybox httpd's 9.
    listenBacklog: 1024,
    ...options,
    // More files (e.g. a CGI health check) beside the slow and version CGIs; a same path wins over them.
    files: { '/www/cgi-bin/slow': { content: cgi, executable: true }, '/www/cgi-bin/version': { content: version, executable: true }, ...options.files },
    changes: [`ENV SLOW_SECONDS=${options.slowSeconds ?? 3}`, ...(options.changes ?? [])]
  })
}
