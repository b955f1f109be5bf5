/**
 * `npm run demo`: the action's whole story on this machine, in under a minute, with nothing to set up.
 *
 * Starts a private Docker Engine, a registry with auth and a local stand-in for the GitHub API
 * (the same harness the integration tests use), builds a few tiny busybox images, then runs the
 * bundled action (dist/index.js) four times exactly as a GitHub runner would:
 *
 *   1. deploy v1 (first deploy);
 *   2. deploy a broken v2, which exits at start: detected and rolled back to v1 automatically;
 *   3. deploy v3, the fix;
 *   4. `command: rollback` (what a workflow_dispatch would run): back to the release before v3.
 *
 * For each run it prints what the job page would show: log groups as indented sections, the
 * annotations, the outputs and the job summary as plain text, then what really answers on the
 * app's port. Everything it started is stopped and removed at the end, also on Ctrl-C or an error.
 *
 *   npm run demo                        # installs machine packages if missing, builds dist/, runs this
 *   npx tsx scripts/demo.ts             # only this script, with the dist/ that is there
 *   DEPLOY_ACTION_BUNDLE=.build/x/index.js npx tsx scripts/demo.ts   # another bundle
 *
 * Needs root (it starts dockerd). It never touches the machine's own Docker daemon, and all its
 * traffic stays on 127.0.0.1.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runAction, type ActionResult } from '../test-support/action-run.js'
import { startEngine, type Engine } from '../test-support/engine.js'
import { start as startFakeGitHub, type FakeGitHub, type FakeReleaseSpec } from '../test-support/fake-github.js'
import { buildAppImage, type AppBehaviour } from '../test-support/images.js'
import { freePort, httpGet } from '../test-support/net.js'
import { startRegistry, type Registry } from '../test-support/registry.js'

const REPO = 'acme/web'
const NAME = 'web'

const useColour = process.stdout.isTTY === true && !process.env.NO_COLOR
const paint = (code: string) => (text: string) => (useColour ? `\x1b[${code}m${text}\x1b[0m` : text)
const bold = paint('1')
const dim = paint('2')
const red = paint('31')
const yellow = paint('33')
const green = paint('32')
const cyan = paint('36')

/** Everything the demo started, stopped in reverse order by `cleanUp`. */
const started: { name: string; stop: () => Promise<unknown> }[] = []
let cleaning: Promise<void> | undefined

/** Stops everything the demo started, once, whatever happened before. */
function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    for (const { name, stop } of started.reverse()) {
      try {
        await stop()
      } catch (error) {
        console.error(`demo: could not stop ${name}: ${error instanceof Error ? error.message : String(error)}`)
      }
    }
  })()
  return cleaning
}

/** Set by Ctrl-C (or SIGTERM/SIGHUP): no further run starts and nothing more is printed. */
let interrupted: NodeJS.Signals | undefined

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (interrupted) return // a second Ctrl-C must not cut the clean-up short
    interrupted = signal
    console.log(`\n${yellow(`demo: ${signal}: stopping and cleaning up…`)}`)
    // The action (same process group) got the signal too and stops by itself; then everything goes.
    void cleanUp().finally(() => {
      console.log(dim('Stopped the engine, the registry and the GitHub API stand-in, and removed their files.'))
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1))
    })
  })
}

function banner(text: string): void {
  const line = '═'.repeat(Math.max(60, text.length + 4))
  console.log(`\n${bold(line)}\n${bold(`  ${text}`)}\n${bold(line)}`)
}

function section(text: string): void {
  console.log(`\n${cyan(`── ${text} `)}${cyan('─'.repeat(Math.max(3, 64 - text.length)))}`)
}

/** Undoes the runner's escaping of workflow command data (`%0A`, `%3A`, …). */
function unescapeCommand(value: string): string {
  return value.replace(/%0D/gi, '\r').replace(/%0A/gi, '\n').replace(/%3A/gi, ':').replace(/%2C/gi, ',').replace(/%25/g, '%')
}

/**
 * The job log as the runner shows it: `::group::` as a section with its lines indented, each
 * annotation as `level [title] message`, masked values as `***`, and the commands the runner
 * consumes itself (`::add-mask::`, `::debug::`) left out.
 */
function renderLog(result: ActionResult): string[] {
  const masks = result.masks.filter((value) => value.length > 0).sort((a, b) => b.length - a.length)
  const mask = (text: string): string => masks.reduce((out, value) => out.split(value).join('***'), text)
  const lines: string[] = []
  let indent = ''
  for (const raw of result.stdout.split('\n')) {
    const line = raw.replace(/\r$/, '')
    if (line === '' || line.startsWith('::add-mask::') || line.startsWith('::debug::')) continue
    const group = /^::group::(.*)$/.exec(line)
    if (group) {
      lines.push(`▸ ${bold(mask(group[1] ?? ''))}`)
      indent = '    '
      continue
    }
    if (line === '::endgroup::') {
      indent = ''
      continue
    }
    const command = /^::(error|warning|notice)(?: ([^]*?))?::([^]*)$/.exec(line)
    if (command) {
      const level = command[1] as 'error' | 'warning' | 'notice'
      const title = /(?:^|,)title=([^,]*)/.exec(command[2] ?? '')?.[1]
      const colour = level === 'error' ? red : level === 'warning' ? yellow : green
      const message = mask(unescapeCommand(command[3] ?? '')).split('\n').join(`\n${indent}    `)
      lines.push(`${indent}${colour(level)} ${title ? `[${unescapeCommand(title)}] ` : ''}${message}`)
      continue
    }
    lines.push(`${indent}${mask(line)}`)
  }
  for (const line of result.stderr.split('\n').filter(Boolean)) lines.push(`${dim('stderr:')} ${mask(line)}`)
  return lines
}

const ENTITIES: Record<string, string> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" }

/** Text of an HTML fragment: tags removed, entities decoded. */
function htmlText(html: string): string {
  return html.replace(/<[^>]*>/g, '').replace(/&(amp|lt|gt|quot|#39);/g, (entity) => ENTITIES[entity] ?? entity)
}

/**
 * Columns a terminal gives `text`: the summary's status emoji take two, the emoji variation
 * selector none, everything else one (good enough for the summary's own text).
 */
function displayWidth(text: string): number {
  let width = 0
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0
    if (code === 0xfe0f) continue
    width += code >= 0x1f000 || (code >= 0x2300 && code <= 0x27bf) ? 2 : 1
  }
  return width
}

/** Lays a table out in aligned columns; long tables keep their head and tail. */
function renderTable(tableHtml: string, maxRows = 14): string[] {
  const rows = [...tableHtml.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((row) =>
    [...(row[1] ?? '').matchAll(/<t[hd]>([\s\S]*?)<\/t[hd]>/g)].map((cell) => htmlText(cell[1] ?? '').replace(/\s+/g, ' ').trim())
  )
  const header = /<th>/.test(tableHtml) && !/<th><\/th>/.test(tableHtml) ? rows.shift() : undefined
  let body = rows
  let skipped = 0
  if (body.length > maxRows) {
    skipped = body.length - maxRows
    body = [...body.slice(0, 4), ...body.slice(body.length - (maxRows - 4))]
  }
  const all = header ? [header, ...body] : body
  const widths = all.reduce<number[]>((w, row) => row.map((cell, i) => Math.min(48, Math.max(w[i] ?? 0, displayWidth(cell)))), [])
  const format = (row: string[]): string =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat(Math.max(0, (widths[i] ?? 0) - displayWidth(cell)))))
      .join('  ')
      .trimEnd()
  const out: string[] = []
  if (header) out.push(bold(format(header)))
  body.forEach((row, index) => {
    if (skipped > 0 && index === 4) out.push(dim(`… ${skipped} more rows …`))
    out.push(format(row))
  })
  return out
}

/** The job summary (HTML) as plain text: headline, facts, steps table, plan, probes and log lines. */
function renderSummary(html: string): string[] {
  const out: string[] = []
  const tokens = html.split(/(<h[23]>[\s\S]*?<\/h[23]>|<table>[\s\S]*?<\/table>|<pre>[\s\S]*?<\/pre>|<summary>[\s\S]*?<\/summary>|<p>[\s\S]*?<\/p>)/)
  for (const token of tokens) {
    if (token.startsWith('<h2>')) out.push(bold(htmlText(token)))
    else if (token.startsWith('<h3>') || token.startsWith('<summary>')) out.push('', bold(htmlText(token)))
    else if (token.startsWith('<table>')) out.push(...renderTable(token))
    else if (token.startsWith('<pre>')) out.push(...htmlText(token).split('\n').slice(-12).map((line) => `  ${line}`))
    else if (token.startsWith('<p>')) out.push(htmlText(token))
  }
  return out
}

function printRun(result: ActionResult): void {
  section('job log')
  for (const line of renderLog(result)) console.log(`  ${line}`)
  section('outputs')
  for (const name of ['result', 'tag', 'previous-tag', 'image', 'deployment-id']) console.log(`  ${name.padEnd(14)}${result.outputs[name] ?? ''}`)
  section('job summary')
  for (const line of renderSummary(result.summary)) console.log(`  ${line}`)
  const code = result.exitCode ?? `signal ${String(result.signal)}`
  section(`step ${result.exitCode === 0 ? green('succeeded') : red('failed')} (exit code ${code})`)
}

async function whatServes(port: number): Promise<string> {
  try {
    const response = await httpGet(`http://127.0.0.1:${port}/version`, { timeoutMs: 2_000 })
    return `${response.status} ${response.body}`
  } catch (error) {
    return `nothing (${(error as NodeJS.ErrnoException).code ?? String(error)})`
  }
}

async function main(): Promise<void> {
  const begun = Date.now()
  if (process.getuid?.() !== 0) {
    console.warn(yellow('demo: not running as root; starting dockerd will most likely fail.'))
  }

  banner('deploy-action demo: a private Docker Engine, a registry with auth, the bundled action')
  console.log(dim('Starting a private dockerd, a registry on 127.0.0.1 and a local GitHub API stand-in…'))
  const engine: Engine = await startEngine()
  started.push({ name: 'the Docker Engine', stop: () => engine.stop() })
  const registry: Registry = await startRegistry(engine)
  started.push({ name: 'the registry', stop: () => registry.stop() })
  const github: FakeGitHub = await startFakeGitHub()
  started.push({ name: 'the GitHub API stand-in', stop: () => github.stop() })
  const workspace = mkdtempSync(join(tmpdir(), 'deploy-action-demo-'))
  started.push({ name: 'the workspace', stop: () => rm(workspace, { recursive: true, force: true }) })

  console.log(`  engine    ${engine.dockerHost}`)
  console.log(`  registry  ${registry.address} (user ${registry.username}, random password)`)
  console.log(`  GitHub    ${github.url}`)

  const images: [string, AppBehaviour, string][] = [
    ['v1', 'healthy', 'serves /health and /version'],
    ['v2', 'exits', 'broken: exits at start with "required configuration is missing"'],
    ['v3', 'healthy', 'the fix']
  ]
  console.log(dim('Building tiny busybox images and pushing them to the registry…'))
  for (const [tag, behaviour, what] of images) {
    const built = await buildAppImage(engine, 'local/demo-web', tag, behaviour)
    const pushed = await registry.push(engine, built.reference, REPO, tag)
    // Only the registry holds them now, so the action really logs in and pulls.
    await engine.docker(['image', 'rm', built.reference, pushed.reference])
    console.log(`  ${pushed.reference}  ${dim(what)}`)
  }

  const port = await freePort()
  const image = `${registry.address}/${REPO}`
  const config = [
    `image: ${image}`,
    `name: ${NAME}`,
    'container:',
    '  network: host',
    '  init: true',
    '  stop-timeout: 2s',
    `  env: { PORT: "${port}" }`,
    'health:',
    `  url: http://127.0.0.1:${port}/health`,
    '  interval: 200ms',
    '  deadline: 8s',
    'rollback:',
    '  to: last-release',
    ''
  ].join('\n')
  mkdirSync(join(workspace, '.github'))
  writeFileSync(join(workspace, '.github', 'deploy.yml'), config)
  console.log(`\n${bold('.github/deploy.yml')}\n${config.replace(/^/gm, '  ').trimEnd()}`)

  const run = async (title: string, inputs: Record<string, string>, releases: FakeReleaseSpec[]): Promise<void> => {
    if (interrupted) return
    banner(title)
    github.setReleases(releases)
    const shown = Object.entries(inputs).map(([key, value]) => `${key}: ${value}`)
    console.log(dim(`with: ${[...shown, `registry-username: ${registry.username}`, 'registry-password: ${{ secrets.REGISTRY_PASSWORD }}'].join(', ')}`))
    console.log(dim(`GitHub releases: ${releases.map((release) => release.tag).join(', ') || 'none'}`))
    const result = await runAction({
      workspace,
      dockerHost: engine.dockerHost,
      github: { apiUrl: github.url },
      inputs: { 'registry-username': registry.username, 'registry-password': registry.password, ...inputs },
      timeoutMs: 90_000
    })
    if (interrupted) return
    printRun(result)
    console.log(`  ${bold(`GET http://127.0.0.1:${port}/version`)} → ${await whatServes(port)}`)
  }

  const release = (tag: string, day: number): FakeReleaseSpec => ({ tag, publishedAt: `2026-01-0${day}T12:00:00Z` })
  await run('1. Deploy v1: the first deploy', { tag: 'v1' }, [release('v1', 1)])
  await run('2. Deploy v2, which is broken: detected at once and rolled back to the last release', { tag: 'v2' }, [release('v1', 1)])
  await run('3. Deploy v3, the fix', { tag: 'v3' }, [release('v1', 1), release('v3', 3)])
  await run('4. Manual rollback (workflow_dispatch, command: rollback, rollback-to empty)', { command: 'rollback' }, [
    release('v1', 1),
    release('v3', 3)
  ])

  if (interrupted) return
  banner(`Done in ${((Date.now() - begun) / 1000).toFixed(0)} s; cleaning up`)
}

let exitCode = 0
try {
  await main()
} catch (error) {
  // After Ctrl-C a failure is only the interruption showing; the signal handler says what happened.
  if (!interrupted) console.error(red(`demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`))
  exitCode = 1
} finally {
  await cleanUp()
}
// After a signal, its handler prints the last line and exits with 128 + the signal number.
if (!interrupted) {
  console.log(dim('Stopped the engine, the registry and the GitHub API stand-in, and removed their files.'))
  process.exit(exitCode)
}
