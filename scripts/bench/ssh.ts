/**
 * An `ssh://` host (issue 19): a new SSH session per docker command (the docker CLI's own
 * `ssh://`, the way before commit db0f847) against one SSH connection for the whole run (an
 * `ssh -L` forward of the remote engine's socket, the way since). One network-namespace host with
 * a private engine, a registry on its own loopback and Debian's sshd in front of the engine
 * (`SetEnv DOCKER_HOST=unix://…`, test-support/sshd.ts). Traffic: the namespace's address and
 * loopback. The old bundle (commit 00439d8) is built from a temporary git worktree into .build/
 * when missing (BENCH_SSH_OLD_BUNDLE to give another; BENCH_SSH_RUNS, default 3, and
 * BENCH_SSH_LATENCY_RUNS, default 15). Run alone: `npm run bench -- --only ssh`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { runAction } from '../../test-support/action-run.js'
import { cleanDockerEnv } from '../../test-support/engine.js'
import { pushToNamespace, startNamespaceFixture, type NamespaceFixture } from '../../test-support/fixture.js'
import { freePort, httpGet } from '../../test-support/net.js'
import type { NamespaceHost } from '../../test-support/netns.js'
import { runCommand, signalPid, sleep, waitForExit } from '../../test-support/proc.js'
import { generateKeyPair, startSshd, writeClientConfig } from '../../test-support/sshd.js'
import {
  benchDeployConfig,
  BUNDLE,
  childrenCpuMs,
  expectResult,
  HEALTH,
  list,
  log,
  median,
  ms,
  now,
  ratio,
  reapedChildrenCpuMs,
  REPO,
  REPO_ROOT,
  sectionHeader,
  summaryStepTimes,
  type FigureReport,
  type RunInfo
} from './harness.js'

/** The commit before one SSH connection per host (db0f847): its bundle is the new-session-per-command way. */
const SSH_OLD_COMMIT = process.env.BENCH_SSH_OLD_COMMIT || '00439d8'
/** That commit's main bundle; built from a temporary git worktree when missing. */
const SSH_OLD_BUNDLE = resolve(REPO_ROOT, process.env.BENCH_SSH_OLD_BUNDLE || `.build/ssh-old-${SSH_OLD_COMMIT}/index.js`)
/** Timed calls per way and command (at least 10). */
const SSH_LATENCY_RUNS = Math.max(10, Number(process.env.BENCH_SSH_LATENCY_RUNS ?? 15) || 15)
/** Timed deploys per bundle (at least 3), interleaved. */
const SSH_DEPLOY_RUNS = Math.max(3, Number(process.env.BENCH_SSH_RUNS ?? 3) || 3)
/** The bench's health check, with a deadline that a state read taking a second over SSH cannot miss. */
const SSH_HEALTH = { ...HEALTH, deadlineMs: 20_000 }
const SSH_PROBE_CONTAINER = 'ssh-bench-probe'

type SshWay = 'session' | 'mux' | 'forward' | 'local'
const SSH_WAYS: readonly SshWay[] = ['session', 'mux', 'forward', 'local']
const SSH_WAY_LABEL: Record<SshWay, string> = {
  session: '`DOCKER_HOST=ssh://root@<host>`: a new SSH session per command (before db0f847)',
  mux: '`ssh://` over an SSH ControlMaster opened beforehand',
  forward: 'one `ssh -N -L <socket>:<engine socket>` forward, `DOCKER_HOST=unix://<socket>` (since db0f847)',
  local: "the engine's own socket, no SSH (the floor)"
}
type SshCommand = 'version' | 'inspect'
const SSH_COMMANDS: Record<SshCommand, string[]> = {
  version: ['version', '--format', '{{.Server.Version}}'],
  inspect: ['container', 'inspect', SSH_PROBE_CONTAINER]
}
type SshBundle = 'old' | 'new'

interface SshLatency {
  ms: Record<SshWay, Record<SshCommand, number[]>>
  /** sshd logins (`Accepted publickey` in its log) per call, by way. */
  logins: Record<SshWay, number[]>
}

interface SshDeployRun {
  wallMs: number
  /** From the spawn to the action's `Result` line (its verdict). */
  untilResultMs: number
  /** From the `Result` line to the exit of the action's process. */
  tailMs: number
  /** New bundle: from its first docker command to its debug line saying the one connection is open (NaN for the old one). */
  connectMs: number
  /** CPU of the action's node process and everything it ran (docker CLIs, ssh): the runner's. */
  cpuMs: number
  /** CPU of the sshd sessions on the host and what they ran (e.g. `docker system dial-stdio`). */
  hostCpuMs: number
  dockerCommands: number
  inspects: number
  /** sshd logins during the deploy: SSH connections the deploy opened. */
  logins: number
  /** sshd session processes still there 5 s after the action exited. */
  sessionsLeft: number
  steps: Record<string, number>
}

export interface SshFigures {
  latency: SshLatency
  deploys: Record<SshBundle, SshDeployRun[]>
  /** Who went first in each deploy round. */
  order: SshBundle[][]
  load: number[]
  server: string
  client: string
  address: string
  /** What a HOME with .ssh/id_ed25519 and known_hosts did for a plain `ssh` (the old README's set-up without touching the real ~/.ssh). */
  homeCheck: string
  homeUsed: boolean
  seconds: number
}


/** Builds the bundle of SSH_OLD_COMMIT into SSH_OLD_BUNDLE's directory from a temporary worktree (removed after). */
async function ensureOldSshBundle(): Promise<void> {
  if (existsSync(SSH_OLD_BUNDLE)) return
  if (process.env.BENCH_SSH_OLD_BUNDLE) throw new Error(`BENCH_SSH_OLD_BUNDLE: ${SSH_OLD_BUNDLE} does not exist`)
  const worktree = join(tmpdir(), `deploy-action-bench-old-${process.pid}`)
  log(`ssh: building the bundle of ${SSH_OLD_COMMIT} (the way before db0f847) into ${dirname(SSH_OLD_BUNDLE)}`)
  const git = async (args: string[]): Promise<void> => {
    const result = await runCommand('git', args, { cwd: REPO_ROOT, timeoutMs: 60_000 })
    if (result.exitCode !== 0) throw new Error(`git ${args.join(' ')}: ${result.stderr.trim()}`)
  }
  await git(['worktree', 'add', '--detach', worktree, SSH_OLD_COMMIT])
  try {
    spawnSync('ln', ['-s', join(REPO_ROOT, 'node_modules'), join(worktree, 'node_modules')])
    const env = { ...process.env, PATH: `${join(REPO_ROOT, 'node_modules', '.bin')}:${process.env.PATH ?? ''}` }
    const built = await runCommand('bash', ['scripts/build.sh', dirname(SSH_OLD_BUNDLE)], { cwd: worktree, env, timeoutMs: 300_000 })
    if (built.exitCode !== 0) throw new Error(`building ${SSH_OLD_COMMIT}: ${built.stderr.trim()}`)
  } finally {
    await git(['worktree', 'remove', '--force', worktree]).catch(() => undefined)
  }
}

export async function measureSsh(): Promise<SshFigures> {
  const began = now()
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} does not exist: build it first`)
  await ensureOldSshBundle()
  log(`ssh: ${SSH_LATENCY_RUNS} calls per way and command, ${SSH_DEPLOY_RUNS} deploys per bundle; new ${BUNDLE}, old ${SSH_OLD_BUNDLE} (${SSH_OLD_COMMIT})`)
  // Short: forwarded and control sockets live here (108 bytes for a socket path).
  const scratch = mkdtempSync(join(tmpdir(), 'da-sshb-'))
  /** The namespace host with its registry. */
  let lab: NamespaceFixture | undefined
  let sshd: Awaited<ReturnType<typeof startSshd>> | undefined
  const children: ChildProcess[] = []
  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      for (const child of children) {
        if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
          signalPid(child.pid, 'SIGTERM')
          if (!(await waitForExit(child, 5_000))) signalPid(child.pid, 'SIGKILL')
        }
      }
      await sshd?.stop()
      await lab?.stop()
      await rm(scratch, { recursive: true, force: true })
    })())
  const onSignal = (): void => {
    log('ssh interrupted: stopping ssh, sshd, the registry and the namespace host')
    void stop().finally(() => process.exit(130))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  let figures: SshFigures
  try {
    lab = await startNamespaceFixture(1)
    const host = lab.hosts[0] as NamespaceHost
    const engineSocket = host.engine.dockerHost.replace(/^unix:\/\//, '')
    const image = `127.0.0.1:${lab.registryPort}/${REPO}`
    for (const tag of ['v1', 'v2']) await pushToNamespace(host, image, tag, 'healthy', { keepPushed: true })
    await host.engine.docker(['create', '--name', SSH_PROBE_CONTAINER, `${image}:v1`])

    const key = await generateKeyPair(scratch, 'id')
    sshd = await startSshd(host, { dockerHost: host.engine.dockerHost, authorizedKeys: [key.publicKey] })
    const server = sshd
    const clientDir = join(scratch, 'client')
    mkdirSync(clientDir, { mode: 0o700 })
    const config = writeClientConfig(clientDir, { identityFile: key.path, knownHosts: [server.knownHostsLine] }).path
    const target = `root@${server.address}`
    const logins = (): number => (server.log().match(/Accepted publickey/g) ?? []).length

    // The docker CLI's ssh:// runs the first `ssh` on PATH: a wrapper there gives it the key and the host key (`-F`).
    const sessionBin = join(scratch, 'bin-session')
    const muxBin = join(scratch, 'bin-mux')
    const control = join(scratch, 'mux.ctl')
    for (const [dir, extra] of [[sessionBin, ''], [muxBin, ` -S ${control} -o ControlMaster=no`]] as const) {
      mkdirSync(dir)
      writeFileSync(join(dir, 'ssh'), `#!/bin/sh\nexec /usr/bin/ssh -F ${config}${extra} "$@"\n`)
      chmodSync(join(dir, 'ssh'), 0o755)
    }

    // The old README's set-up was the runner's ~/.ssh. A HOME of its own with .ssh/id_ed25519 and
    // known_hosts would keep the real one untouched, if ssh read ~ from HOME: ask it.
    const home = join(scratch, 'home')
    mkdirSync(join(home, '.ssh'), { recursive: true, mode: 0o700 })
    writeFileSync(join(home, '.ssh', 'id_ed25519'), key.privateKey, { mode: 0o600 })
    writeFileSync(join(home, '.ssh', 'known_hosts'), `${server.knownHostsLine}\n`, { mode: 0o600 })
    // `ssh -G` prints the settings it would use and connects nowhere: no real ~/.ssh is read for a login.
    const resolved = await runCommand('ssh', ['-G', target], { env: { ...process.env, HOME: home }, timeoutMs: 30_000 })
    const knownHostsFiles = /^userknownhostsfile (.*)$/m.exec(resolved.stdout)?.[1] ?? '(none)'
    const homeUsed = knownHostsFiles.split(' ').some((file) => file.startsWith(home))
    const homeCheck = homeUsed
      ? `\`ssh -G\` with such a HOME names \`${knownHostsFiles}\`: HOME is used`
      : `\`ssh -G\` with such a HOME still names \`${knownHostsFiles}\`, not the HOME's`
    log(`ssh: a HOME with .ssh/id_ed25519 and known_hosts: ${homeCheck}`)

    const startSsh = async (args: string[], ready: string): Promise<void> => {
      const child = spawn('ssh', ['-F', config, ...args, target], { stdio: ['ignore', 'ignore', 'pipe'] })
      children.push(child)
      let stderr = ''
      child.stderr?.setEncoding('utf8')
      child.stderr?.on('data', (chunk: string) => (stderr += chunk))
      const deadline = now() + 20_000
      while (!existsSync(ready)) {
        if (child.exitCode !== null || now() > deadline) throw new Error(`ssh ${args.join(' ')} did not open ${ready}: ${stderr}`)
        await sleep(25)
      }
    }
    const forwardSocket = join(scratch, 'e.sock')
    await startSsh(['-N', '-o', 'ExitOnForwardFailure=yes', '-o', 'StreamLocalBindUnlink=yes', '-o', 'StreamLocalBindMask=0177', '-L', `${forwardSocket}:${engineSocket}`], forwardSocket)
    await startSsh(['-M', '-S', control, '-N', '-o', 'ControlPersist=no'], control)

    const dockerConfig = join(scratch, 'docker-config')
    mkdirSync(dockerConfig)
    const base = { ...cleanDockerEnv(), DOCKER_CONFIG: dockerConfig }
    const envs: Record<SshWay, NodeJS.ProcessEnv> = {
      session: { ...base, DOCKER_HOST: `ssh://${target}`, PATH: `${sessionBin}:${process.env.PATH ?? ''}` },
      mux: { ...base, DOCKER_HOST: `ssh://${target}`, PATH: `${muxBin}:${process.env.PATH ?? ''}` },
      forward: { ...base, DOCKER_HOST: `unix://${forwardSocket}` },
      local: { ...base, DOCKER_HOST: host.engine.dockerHost }
    }
    const serverVersion = (await host.engine.docker(['version', '--format', '{{.Server.Version}}'])).trim()
    const clientVersion = (await host.engine.docker(['version', '--format', '{{.Client.Version}}'])).trim()
    const call = async (way: SshWay, command: SshCommand): Promise<{ ms: number; logins: number }> => {
      const before = logins()
      const startedAt = now()
      const result = await runCommand('docker', SSH_COMMANDS[command], { env: envs[way], timeoutMs: 60_000 })
      const elapsed = now() - startedAt
      const expected = command === 'version' ? result.stdout.trim() === serverVersion : result.stdout.includes(`"/${SSH_PROBE_CONTAINER}"`)
      if (result.exitCode !== 0 || !expected) throw new Error(`ssh: docker ${SSH_COMMANDS[command].join(' ')} (${way}) exited ${result.exitCode}: ${result.stderr.trim()}`)
      // sshd logs the login as it accepts it, and its log pipe may lag a moment.
      await sleep(way === 'session' || way === 'mux' ? 50 : 0)
      return { ms: elapsed, logins: logins() - before }
    }

    // 1. One docker command, each way, interleaved (the order rotated every round), after one untimed call each.
    const latency: SshLatency = {
      ms: { session: { version: [], inspect: [] }, mux: { version: [], inspect: [] }, forward: { version: [], inspect: [] }, local: { version: [], inspect: [] } },
      logins: { session: [], mux: [], forward: [], local: [] }
    }
    for (const way of SSH_WAYS) await call(way, 'version')
    for (let round = 0; round < SSH_LATENCY_RUNS; round++) {
      const order = SSH_WAYS.map((_, index) => SSH_WAYS[(index + round) % SSH_WAYS.length] as SshWay)
      for (const way of order) {
        for (const command of ['version', 'inspect'] as const) {
          const measured = await call(way, command)
          latency.ms[way][command].push(measured.ms)
          latency.logins[way].push(measured.logins)
        }
      }
    }
    log(`ssh latency (median version / inspect): ${SSH_WAYS.map((way) => `${way} ${ms(median(latency.ms[way].version))} / ${ms(median(latency.ms[way].inspect))}`).join('; ')}`)
    // The deploys run with no ssh of the bench's own: only the action's.
    for (const child of children.splice(0)) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        signalPid(child.pid, 'SIGTERM')
        if (!(await waitForExit(child, 5_000))) signalPid(child.pid, 'SIGKILL')
      }
    }

    // 2. Whole deploys: the new bundle with the ssh-key / ssh-known-hosts inputs, the old one with the
    // key given to the docker CLI's ssh through the wrapper first on PATH (as the runner's ~/.ssh would).
    const sites = {} as Record<SshBundle, { workspace: string; port: number; name: string; tag: string }>
    for (const bundle of ['old', 'new'] as const) {
      const name = `web${bundle}`
      const port = await freePort()
      const workspace = join(scratch, `site-${bundle}`)
      mkdirSync(join(workspace, '.github'), { recursive: true })
      writeFileSync(join(workspace, '.github', 'deploy.yml'), benchDeployConfig({ image, name, port, health: SSH_HEALTH, namespaced: true }))
      sites[bundle] = { workspace, port, name, tag: '' }
    }
    const deployWith = async (bundle: SshBundle): Promise<SshDeployRun> => {
      const site = sites[bundle]
      const tag = site.tag === 'v1' ? 'v2' : 'v1'
      const cpuBefore = childrenCpuMs()
      const hostCpuBefore = reapedChildrenCpuMs(server.pid)
      const loginsBefore = logins()
      const chunks: { at: number; text: string }[] = []
      const startedAt = now()
      const result = await runAction({
        workspace: site.workspace,
        entry: bundle === 'new' ? BUNDLE : SSH_OLD_BUNDLE,
        inputs: {
          tag,
          'github-token': '',
          'docker-host': `ssh://${target}`,
          ...(bundle === 'new' ? { 'ssh-key': key.privateKey, 'ssh-known-hosts': server.knownHostsLine } : {})
        },
        ...(bundle === 'old' ? { env: { PATH: `${sessionBin}:${process.env.PATH ?? ''}` } } : {}),
        // Debug output names every docker command.
        debug: true,
        timeoutMs: 600_000,
        onStdout: (text) => chunks.push({ at: now(), text })
      })
      const wallMs = now() - startedAt
      const firstAt = (needle: string): number => chunks.find((chunk) => chunk.text.includes(needle))?.at ?? Number.NaN
      const cpuMs = childrenCpuMs() - cpuBefore
      expectResult({ result, startedAt, endedAt: now(), chunks: [] }, 'deployed', `ssh: the ${bundle} bundle, ${tag}`)
      site.tag = tag
      const served = await httpGet(`http://${server.address}:${site.port}/version`)
      if (served.body.trim() !== tag) throw new Error(`ssh: ${server.address} serves ${served.body} after the ${bundle} bundle deployed ${tag}`)
      // The sessions end once their client has gone: their CPU counts when sshd has reaped them.
      const deadline = now() + 5_000
      while (server.sessionPids().length > 0 && now() < deadline) await sleep(50)
      await sleep(50)
      const commands = result.stdout.split('\n').filter((line) => line.startsWith('::debug::docker '))
      return {
        wallMs,
        untilResultMs: firstAt('title=Result::') - startedAt,
        tailMs: startedAt + wallMs - firstAt('title=Result::'),
        connectMs: firstAt('::debug::ssh: one connection') - firstAt('::debug::docker '),
        cpuMs,
        hostCpuMs: reapedChildrenCpuMs(server.pid) - hostCpuBefore,
        dockerCommands: commands.length,
        inspects: commands.filter((line) => line.startsWith('::debug::docker container inspect')).length,
        logins: logins() - loginsBefore,
        sessionsLeft: server.sessionPids().length,
        steps: summaryStepTimes(result).steps
      }
    }
    // Warm-up: two deploys each, so every timed run is an upgrade with a kept previous version.
    for (const bundle of ['new', 'old'] as const) {
      for (let index = 0; index < 2; index++) {
        const warm = await deployWith(bundle)
        log(`ssh warm-up, ${bundle}: ${ms(warm.wallMs)}, ${warm.dockerCommands} docker commands, ${warm.logins} SSH logins`)
      }
    }
    const deploys: Record<SshBundle, SshDeployRun[]> = { old: [], new: [] }
    const order: SshBundle[][] = []
    const load: number[] = []
    for (let round = 0; round < SSH_DEPLOY_RUNS; round++) {
      load.push(loadavg()[0] ?? Number.NaN)
      const first: SshBundle[] = round % 2 === 0 ? ['old', 'new'] : ['new', 'old']
      order.push(first)
      for (const bundle of first) deploys[bundle].push(await deployWith(bundle))
      const old = deploys.old.at(-1) as SshDeployRun
      const fresh = deploys.new.at(-1) as SshDeployRun
      log(
        `ssh deploy ${round + 1}/${SSH_DEPLOY_RUNS} (${first.join(' first, ')}): old ${ms(old.wallMs)} (result at ${ms(old.untilResultMs)}; ${old.dockerCommands} commands, ${old.logins} logins), ` +
          `new ${ms(fresh.wallMs)} (result at ${ms(fresh.untilResultMs)}; ${fresh.dockerCommands} commands, ${fresh.logins} logins), old ÷ new ${ratio(old.wallMs / fresh.wallMs)}`
      )
    }
    figures = { latency, deploys, order, load, server: serverVersion, client: clientVersion, address: server.address, homeCheck, homeUsed, seconds: 0 }
  } finally {
    await stop()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  figures.seconds = (now() - began) / 1_000
  const lat = (way: SshWay): number => median(figures.latency.ms[way].inspect)
  const wall = (bundle: SshBundle): number => median(figures.deploys[bundle].map((run) => run.wallMs))
  log(`ssh: inspect ${SSH_WAYS.map((way) => `${way} ${ms(lat(way))}`).join(', ')}; deploy old ${ms(wall('old'))}, new ${ms(wall('new'))}; ${Math.round(figures.seconds)} s`)
  return figures
}

export function sshReport(figures: SshFigures, run: RunInfo): FigureReport {
  const { latency, deploys } = figures
  const lat = (way: SshWay, command: SshCommand): number => median(latency.ms[way][command])
  const per = (bundle: SshBundle, key: Exclude<keyof SshDeployRun, 'steps'>): number => median(deploys[bundle].map((run) => run[key]))
  const roundRatios = deploys.old.map((run, index) => run.wallMs / (deploys.new[index]?.wallMs ?? Number.NaN))
  const resultRatios = deploys.old.map((run, index) => run.untilResultMs / (deploys.new[index]?.untilResultMs ?? Number.NaN))
  const perLogin = median(latency.logins.session)
  const latencyRow = (way: SshWay): string =>
    `| ${SSH_WAY_LABEL[way]} | ${ms(lat(way, 'version'))} | ${ms(lat(way, 'inspect'))} | ${ratio(lat(way, 'version') / lat('forward', 'version'))} | ${ratio(lat(way, 'inspect') / lat('forward', 'inspect'))} | ${median(latency.logins[way])} |`
  const deployRow = (bundle: SshBundle): string => {
    const other: SshBundle = bundle === 'old' ? 'new' : 'old'
    const ratios = bundle === 'old' ? roundRatios : roundRatios.map((value) => 1 / value)
    const label =
      bundle === 'old'
        ? `\`${SSH_OLD_BUNDLE.slice(REPO_ROOT.length + 1)}\` (${SSH_OLD_COMMIT}): a new SSH session per docker command`
        : `\`${BUNDLE.slice(REPO_ROOT.length + 1)}\` (${process.env.DEPLOY_ACTION_BUNDLE_COMMIT || 'HEAD'}): one SSH connection`
    const untilResult = bundle === 'old' ? resultRatios : resultRatios.map((value) => 1 / value)
    return `| ${label} | ${ms(per(bundle, 'wallMs'))} | ${ratio(median(ratios))} (÷ ${other}) | ${ms(per(bundle, 'untilResultMs'))} | ${ratio(median(untilResult))} | ${ms(per(bundle, 'tailMs'))} | ${per(bundle, 'dockerCommands')} (${per(bundle, 'inspects')} \`container inspect\`) | ${per(bundle, 'logins')} | ${ms(per(bundle, 'cpuMs'))} | ${ms(per(bundle, 'hostCpuMs'))} | ${list(deploys[bundle].map((run) => run.wallMs))} |`
  }
  const titles = [...new Set([...deploys.old, ...deploys.new].flatMap((run) => Object.keys(run.steps)))]
  const step = (bundle: SshBundle, title: string): number => median(deploys[bundle].map((run) => run.steps[title] ?? Number.NaN))
  const saved = per('old', 'wallMs') - per('new', 'wallMs')
  const perCommand = lat('session', 'inspect') - lat('forward', 'inspect')
  const left = [...deploys.old, ...deploys.new].map((run) => run.sessionsLeft)
  const section = [
    '<!-- ssh:begin -->',
    '## An `ssh://` host: a new SSH session per command against one connection (issue 19)',
    '',
    `${sectionHeader(run, figures.seconds)} One network-namespace host (\`test-support/netns.ts\`, address ${figures.address}) with a private Docker Engine ${figures.server} ` +
      `(client ${figures.client}), a registry on its own loopback, and Debian's OpenSSH sshd on its address, port 22, in front of that engine (\`SetEnv DOCKER_HOST=unix://<engine socket>\` in its config, \`test-support/sshd.ts\`); ` +
      `client and server are on this one machine, so every SSH connection is over a veth pair with no network delay: over a real network each new session costs its round trips on top. ` +
      `The client key and the host key are given to \`ssh\` through a private config (\`ssh -F\`): for the docker CLI's own \`ssh://\`, which runs the first \`ssh\` on \`PATH\`, through a wrapper script there (\`exec /usr/bin/ssh -F <config> "$@"\`). ` +
      `A HOME of its own with \`.ssh/id_ed25519\` and \`known_hosts\` (the old README's set-up without writing the real \`~/.ssh\`) ` +
      (figures.homeUsed ? `would work (${figures.homeCheck}), but the wrapper was used.` : `does not work: OpenSSH takes \`~\` from the password database, not from HOME (${figures.homeCheck}).`),
    '',
    `**One docker command** (\`docker version --format {{.Server.Version}}\`, and \`docker container inspect\` of a stopped container), wall time of the CLI process from spawn to exit; ` +
      `the ways interleaved, their order rotated every round, after one untimed call each; medians of ${SSH_LATENCY_RUNS}. SSH logins are sshd's \`Accepted publickey\` lines per command.`,
    '',
    '| How the docker CLI reaches the engine | `docker version` (median) | `container inspect` (median) | version ÷ forward | inspect ÷ forward | SSH logins per command |',
    '|---|---|---|---|---|---|',
    ...SSH_WAYS.map(latencyRow),
    '',
    `Runs (version; inspect): ${SSH_WAYS.map((way) => `${way}: ${list(latency.ms[way].version)}; ${list(latency.ms[way].inspect)}`).join('. ')}.`,
    '',
    `**A whole deploy** of a healthy upgrade (v1 ↔ v2 of the small busybox app image, already on the host; \`docker-host: ssh://root@${figures.address}\`, the app on the host network, ` +
      `health checked from the runner at \`http://{host}:PORT/health\`, every ${SSH_HEALTH.intervalMs} ms, 1 success needed, deadline ${ms(SSH_HEALTH.deadlineMs)}), by the bundled action as the runner runs it, without a GitHub token. ` +
      `The new bundle gets the key and the host key through its inputs \`ssh-key\` and \`ssh-known-hosts\`, opens one SSH connection (ControlMaster) and forwards the remote engine socket to a local one; the old bundle (built from ${SSH_OLD_COMMIT}, the commit before db0f847) ` +
      `leaves \`ssh://\` to the docker CLI, with the key through the \`ssh\` wrapper on its \`PATH\`. Each bundle deploys its own container (two names, two ports) on the same host; two untimed deploys each first, ` +
      `so that every timed one is an upgrade with a kept previous version. Interleaved, who goes first alternating; medians of ${SSH_DEPLOY_RUNS}, the ratio is the median of each round's own ratio. ` +
      `"Until its result line" runs from the spawn to the action's \`Result\` line (its verdict, printed once every step has ended), "result line → exit" from there to the exit of its process. ` +
      `Docker commands are the action's own debug lines; SSH logins are sshd's; runner CPU is the action's node process and everything it ran (from \`/proc/self/stat\` of the bench); ` +
      `host CPU is what sshd's finished sessions used, the remote \`docker system dial-stdio\` processes included (\`cutime + cstime\` of the listening sshd). Load average (1 min) at the start of each round: ${figures.load.map((value) => value.toFixed(1)).join(', ')}.`,
    '',
    '| Bundle | Deploy (median) | Ratio | Until its result line | Ratio | Result line → exit | Docker commands | SSH logins | Runner CPU | Host CPU in SSH sessions | Runs |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    deployRow('old'),
    deployRow('new'),
    '',
    'Where the time goes (median per step, from the job summary):',
    '',
    '| Step | new session per command | one connection |',
    '|---|---|---|',
    ...titles.map((title) => `| ${title} | ${ms(step('old', title))} | ${ms(step('new', title))} |`),
    '',
    `**What the numbers mean.** A new SSH session costs ${ms(perCommand)} more per \`container inspect\` than the forward here (${ratio(lat('session', 'inspect') / lat('forward', 'inspect'))}), ` +
      `with ${perLogin} SSH login${perLogin === 1 ? '' : 's'} per command; ` +
      `multiplexing over a ControlMaster saves the handshake but not the remote \`docker system dial-stdio\` (a docker CLI process started on the host for every command): ${ms(lat('mux', 'inspect'))}. ` +
      `Through the one forward a command takes ${ratio(lat('forward', 'inspect') / lat('local', 'inspect'))} the time it takes on the engine's own socket. ` +
      `A deploy ran a median of ${per('old', 'dockerCommands')} docker commands the old way and ${per('new', 'dockerCommands')} the new way, and opened ${per('old', 'logins')} SSH connections against ${per('new', 'logins')}: ` +
      `one connection saved ${ms(saved)} per deploy (old ÷ new ${ratio(median(roundRatios))}), and ${ms(per('old', 'untilResultMs') - per('new', 'untilResultMs'))} up to the result line (${ratio(median(resultRatios))}): every step that talks to the host is faster. ` +
      `Opening the connection (from the first docker command to the debug line saying it is open: the login, the remote \`printenv DOCKER_HOST\` and the forward) took a median of ${ms(per('new', 'connectMs'))}, about one command the old way, once per run. ` +
      (per('new', 'tailMs') - per('old', 'tailMs') > 1_000
        ? `But the new bundle's process exits a median of ${ms(per('new', 'tailMs'))} after its result line, the old one's ${ms(per('old', 'tailMs'))}: without that wait a deploy would take about ${ms(per('new', 'wallMs') - per('new', 'tailMs') + per('old', 'tailMs'))}. `
        : '') +
      `This health check passes at its first probe, so a deploy runs few \`container inspect\` state reads; one that waits for a slow app reads the state every 150 ms, and the old way each read takes the time of a new session. ` +
      `sshd sessions left 5 s after each deploy: ${left.every((value) => value === 0) ? 'none' : list(left, String)}.`,
    '<!-- ssh:end -->'
  ].join('\n')
  return { markers: { begin: '<!-- ssh:begin -->', end: '<!-- ssh:end -->', beforeNotes: false }, section, charts: {} }
}
