import { describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { load } from 'js-yaml'
import { validateActionText, validateRepository, validateWorkflowText, workflowFiles } from '../scripts/validate-workflows.js'

const root = process.cwd()
const actionText = readFileSync('action.yml', 'utf8')
const actionInputs = Object.keys((load(actionText) as { inputs: Record<string, unknown> }).inputs)

interface Step {
  name?: string
  uses?: string
  run?: string
  with?: Record<string, string>
  env?: Record<string, string>
}
interface Job {
  needs?: string | string[]
  environment?: string | { name: string; deployment?: boolean }
  permissions?: Record<string, string>
  concurrency?: { group: string; 'cancel-in-progress': boolean }
  steps: Step[]
}
interface Workflow {
  on: Record<string, unknown>
  concurrency?: { group: string; 'cancel-in-progress': boolean }
  permissions?: Record<string, string>
  jobs: Record<string, Job>
}

function example(name: string): { text: string; workflow: Workflow } {
  const text = readFileSync(join('examples/workflows', name), 'utf8')
  return { text, workflow: load(text) as Workflow }
}

function actionSteps(workflow: Workflow): Step[] {
  return Object.values(workflow.jobs).flatMap((job) => job.steps.filter((step) => step.uses === 'org/deploy-action@v1'))
}

/** A valid workflow to break one piece at a time. */
const validWorkflow = `name: t
on:
  push:
    branches: [main]
permissions: { contents: read, deployments: write }
jobs:
  build:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
  deploy:
    needs: build
    runs-on: ubuntu-24.04
    steps:
      - run: echo \${{ github.sha }}
`

describe('GitHub\'s parser accepts every workflow and action.yml of this repository', () => {
  it('finds the workflows that run here and the examples', () => {
    const files = workflowFiles(root).map((path) => path.slice(root.length + 1))
    expect(files).toEqual(
      expect.arrayContaining([
        '.github/workflows/ci.yml',
        '.github/workflows/release.yml',
        'examples/workflows/deploy.yml',
        'examples/workflows/rollback.yml',
        'examples/workflows/staging-then-production.yml',
        'examples/workflows/remote-ssh.yml'
      ])
    )
  })

  it('reports no error in any file', async () => {
    const checks = await validateRepository(root)
    expect(checks.length).toBeGreaterThanOrEqual(7)
    // Comparing whole objects shows the file and its parser messages when one fails.
    expect(checks).toEqual(checks.map((check) => ({ file: check.file, errors: [] })))
  })
})

describe('the validator rejects broken workflows', () => {
  it('accepts the unbroken reference workflow, so the rejections below are caused by the breakage', async () => {
    expect(await validateWorkflowText('t.yml', validWorkflow)).toEqual([])
  })

  it.each([
    ['a step with both uses and run', validWorkflow.replace('- uses: actions/checkout@v4', '- uses: actions/checkout@v4\n        run: echo both'), "Unexpected value 'run'"],
    ['an unclosed expression', validWorkflow.replace('${{ github.sha }}', '${{ github.sha'), 'The expression is not closed'],
    ['needs naming a job that does not exist', validWorkflow.replace('needs: build', 'needs: buidl'), 'buidl'],
    ['an unknown permission level', validWorkflow.replace('deployments: write', 'deployments: admin'), "Unexpected value 'admin'"],
    ['an unknown top-level key', validWorkflow.replace('name: t', 'name: t\nconcurency: x'), "Unexpected value 'concurency'"],
    ['a job without runs-on', validWorkflow.replace('    runs-on: ubuntu-24.04\n    steps:\n      - uses', '    steps:\n      - uses'), 'runs-on'],
    ['invalid YAML', validWorkflow.replace('branches: [main]', 'branches: [main'), 't.yml']
  ])('%s', async (_what, text, expected) => {
    expect(text).not.toBe(validWorkflow)
    const errors = await validateWorkflowText('t.yml', text)
    expect(errors.join('\n')).toContain(expected)
  })
})

describe('the validator rejects a broken action.yml', () => {
  it('accepts the real one', () => {
    expect(validateActionText('action.yml', actionText)).toEqual([])
  })

  it.each([
    ['an unknown runtime', actionText.replace('using: node24', 'using: node99'), "Unexpected value 'node99'"],
    ['an older runtime than node24', actionText.replace('using: node24', 'using: node20'), 'runs.using is node20, expected node24'],
    ['runs without main', actionText.replace(/^ {2}main: .*\n/m, ''), 'Required property is missing: main'],
    ['an input without description', actionText.replace(/^ {4}description: "Validate, log in .*\n/m, ''), 'input dry-run has no description'],
    ['a misspelt runs key', actionText.replace('  post-if: always()', '  post-iff: always()'), "Unexpected value 'post-iff'"]
  ])('%s', (_what, text, expected) => {
    expect(text).not.toBe(actionText)
    expect(validateActionText('action.yml', text).join('\n')).toContain(expected)
  })
})

describe('action.yml runs the bundle that npm run build writes', () => {
  it('points main and post at their own ncc bundles', () => {
    const build = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts['build'] ?? ''
    const outDir = /^bash scripts\/build\.sh (\S+)$/.exec(build)?.[1]
    expect(outDir).toBe('dist')
    // The script bundles each entry into a scratch directory, then moves it into place, so a failed build keeps dist/.
    const script = readFileSync('scripts/build.sh', 'utf8')
    expect(script).toMatch(/^ncc build src\/index\.ts -o "\$scratch\/main" /m)
    expect(script).toMatch(/^ncc build src\/post-index\.ts -o "\$scratch\/main\/post" /m)
    expect(script).toMatch(/^mv "\$scratch\/main" "\$out"$/m)
    const runs = (load(actionText) as { runs: Record<string, string> }).runs
    expect(runs).toMatchObject({ using: 'node24', main: `${outDir}/index.js`, post: `${outDir}/post/index.js`, 'post-if': 'always()' })
  })
})

describe('the example workflows', () => {
  it('pass only inputs that action.yml declares, and secrets other than the registry password through env', () => {
    for (const name of ['deploy.yml', 'rollback.yml', 'staging-then-production.yml', 'remote-ssh.yml']) {
      const steps = actionSteps(example(name).workflow)
      expect(`${name}: ${steps.length > 0}`).toBe(`${name}: true`)
      for (const step of steps) {
        for (const [input, value] of Object.entries(step.with ?? {})) {
          expect(actionInputs).toContain(input)
          // Secret inputs are masked by the action the moment it reads them; any other secret goes through env.
          if (!['registry-password', 'ssh-key', 'ssh-known-hosts'].includes(input)) expect(`${name} ${input}: ${String(value)}`).not.toContain('secrets.')
        }
        expect(step.env?.['DATABASE_URL']).toBe('${{ secrets.DATABASE_URL }}')
      }
    }
  })

  it('deploy.yml: push to main, one deploy at a time without cancelling, least permissions', () => {
    const { workflow } = example('deploy.yml')
    expect(workflow.on).toEqual({ push: { branches: ['main'] } })
    expect(workflow.concurrency).toEqual({ group: 'deploy-production', 'cancel-in-progress': false })
    // Each job gets its own permissions: the build pushes, the deploy only reads the package.
    expect(workflow.permissions).toEqual({ contents: 'read' })
    expect(workflow.jobs['build']?.permissions).toEqual({ contents: 'read', packages: 'write' })
    expect(workflow.jobs['deploy']?.permissions).toEqual({ contents: 'read', packages: 'read', deployments: 'write' })
    expect(workflow.jobs['deploy']?.environment).toEqual({ name: 'production', deployment: false })
    expect(actionSteps(workflow)).toHaveLength(1)
  })

  it('rollback.yml: workflow_dispatch with rollback-to, passed to command: rollback', () => {
    const { workflow } = example('rollback.yml')
    const dispatch = workflow.on['workflow_dispatch'] as { inputs: Record<string, unknown> }
    expect(Object.keys(dispatch.inputs)).toEqual(['rollback-to'])
    expect(workflow.concurrency).toEqual({ group: 'deploy-production', 'cancel-in-progress': false })
    expect(actionSteps(workflow)[0]?.with).toMatchObject({ command: 'rollback', 'rollback-to': '${{ inputs.rollback-to }}' })
  })

  it('staging-then-production.yml: production needs staging, each job names its environment in both places', () => {
    const { workflow } = example('staging-then-production.yml')
    expect(Object.keys(workflow.jobs)).toEqual(['staging', 'production'])
    expect(workflow.jobs['production']?.needs).toBe('staging')
    for (const name of ['staging', 'production']) {
      const job = workflow.jobs[name]
      const environment = typeof job?.environment === 'string' ? job.environment : job?.environment?.name
      expect(environment).toBe(name)
      expect(job?.steps.find((step) => step.uses === 'org/deploy-action@v1')?.with?.['environment']).toBe(name)
    }
    expect(workflow.jobs['production']?.concurrency).toEqual({ group: 'deploy-production', 'cancel-in-progress': false })
  })

  it('remote-ssh.yml: the key and the pinned host keys as inputs, no key written into ~/.ssh, host key checking on', () => {
    const { text, workflow } = example('remote-ssh.yml')
    expect(text).not.toMatch(/StrictHostKeyChecking\s*=?\s*no/i)
    const steps = Object.values(workflow.jobs)[0]?.steps ?? []
    expect(steps.filter((step) => step.run?.includes('.ssh'))).toEqual([])
    const action = steps.find((step) => step.uses === 'org/deploy-action@v1')
    expect(action?.with).toMatchObject({
      'docker-host': 'ssh://deploy@web1.example.com',
      'ssh-key': '${{ secrets.DEPLOY_SSH_KEY }}',
      'ssh-known-hosts': '${{ secrets.DEPLOY_SSH_KNOWN_HOSTS }}'
    })
    // The README shows the same inputs; keep the two from drifting apart.
    const readme = readFileSync('README.md', 'utf8')
    for (const input of ['docker-host', 'ssh-key', 'ssh-known-hosts']) expect(readme).toContain(`          ${input}: ${String(action?.with?.[input])}\n`)
  })
})

describe('the command-line validator (npx tsx, as CI or a person runs it)', () => {
  function runCli(dir: string): { status: number; result: { ok: boolean; files: { file: string; errors: string[] }[] } } {
    try {
      const stdout = execFileSync('npx', ['tsx', join(root, 'scripts/validate-workflows.ts'), dir], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
      return { status: 0, result: JSON.parse(stdout) }
    } catch (error) {
      const failed = error as { status: number; stdout: string }
      return { status: failed.status, result: JSON.parse(failed.stdout) }
    }
  }

  it('exits 0 with ok: true for this repository, and 1 naming the broken file for a broken copy', () => {
    expect(runCli(root)).toMatchObject({ status: 0, result: { ok: true } })

    const dir = mkdtempSync(join(tmpdir(), 'workflows-'))
    try {
      cpSync('action.yml', join(dir, 'action.yml'))
      mkdirSync(join(dir, '.github/workflows'), { recursive: true })
      writeFileSync(join(dir, '.github/workflows/ok.yml'), validWorkflow)
      writeFileSync(join(dir, '.github/workflows/broken.yml'), validWorkflow.replace('needs: build', 'needs: nope'))
      const { status, result } = runCli(dir)
      expect(status).toBe(1)
      expect(result.ok).toBe(false)
      expect(result.files.filter((file) => file.errors.length > 0).map((file) => file.file)).toEqual(['.github/workflows/broken.yml'])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})

describe('local debugging with @github/local-action', () => {
  it('.env.example sets every input of action.yml as INPUT_<NAME>, and dry-run to true', () => {
    const lines = readFileSync('.env.example', 'utf8').split('\n')
    const variables = new Map(lines.map((line) => /^([A-Z_][A-Z0-9_-]*)=(.*)$/.exec(line)).flatMap((match) => (match?.[1] ? [[match[1], match[2] ?? '']] : [])))
    const inputVariables = [...variables.keys()].filter((name) => name.startsWith('INPUT_'))
    expect(inputVariables.sort()).toEqual(actionInputs.map((input) => `INPUT_${input.toUpperCase()}`).sort())
    expect(variables.get('INPUT_DRY-RUN')).toBe('true')
    for (const name of ['GITHUB_REPOSITORY', 'GITHUB_SHA', 'GITHUB_REF', 'GITHUB_ACTOR', 'GITHUB_RUN_ID', 'GITHUB_STEP_SUMMARY']) expect(variables.has(name)).toBe(true)
  })

  it('npm run local-action runs an entrypoint that exports run(), as local-action requires', () => {
    const script = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts['local-action'] ?? ''
    const entrypoint = /^npx @github\/local-action run \. (\S+) \.env$/.exec(script)?.[1]
    expect(entrypoint).toBe('src/main.ts')
    // local-action imports the entrypoint and calls its run(); src/index.ts runs at import instead.
    expect(readFileSync(entrypoint ?? '', 'utf8')).toMatch(/^export async function run\(/m)
  })
})

describe("this repository's own workflows", () => {
  const workflow = (name: string): Workflow => load(readFileSync(join('.github/workflows', name), 'utf8')) as Workflow
  const own = ['ci.yml', 'check-dist.yml', 'release.yml'].map((name) => ({ name, workflow: workflow(name) }))
  const allSteps = (flow: Workflow): Step[] => Object.values(flow.jobs).flatMap((job) => job.steps)
  const withOf = (step: Step): Record<string, unknown> => (step.with ?? {}) as Record<string, unknown>

  it('build, test and release on Node 24, the runtime of action.yml, with actions that run on node24 too', () => {
    expect(actionText).toMatch(/^\s+using: node24$/m)
    for (const { name, workflow: flow } of own) {
      const setupNode = allSteps(flow).filter((step) => step.uses?.startsWith('actions/setup-node@'))
      expect({ name, count: setupNode.length > 0 }).toEqual({ name, count: true })
      for (const step of setupNode) expect({ name, node: String(withOf(step)['node-version']) }).toEqual({ name, node: '24' })
      // checkout and setup-node v5 are the first majors on node24 (runner 2.327.1 or later).
      for (const step of allSteps(flow).filter((one) => /^actions\/(checkout|setup-node)@/.test(one.uses ?? ''))) {
        expect({ name, uses: step.uses, major: Number(/@v(\d+)/.exec(step.uses ?? '')?.[1]) >= 5 }).toEqual({ name, uses: step.uses, major: true })
      }
    }
  })

  it('ci.yml runs the action from the repository (uses: ./) in a dry run, on a config it writes, and checks that nothing changed', () => {
    const jobs = Object.entries(workflow('ci.yml').jobs).filter(([, job]) => job.steps.some((step) => step.uses === './'))
    expect(jobs.map(([id]) => id)).toEqual(['dry-run'])
    const steps = jobs[0]?.[1].steps ?? []
    const local = steps.filter((step) => step.uses === './')
    expect(local.length).toBeGreaterThanOrEqual(1)
    for (const step of local) {
      const given = withOf(step)
      // Every input it passes is one action.yml declares, and each one is a dry run.
      expect(Object.keys(given).filter((input) => !actionInputs.includes(input))).toEqual([])
      expect(String(given['dry-run'])).toBe('true')
      expect(given['docker-host']).toBe('unix:///var/run/docker.sock')
      // The config it reads is written by an earlier step of the job.
      const config = String(given['config'])
      const writer = steps.findIndex((one) => one.run?.includes(`$GITHUB_WORKSPACE/${config}`))
      expect(writer).toBeGreaterThanOrEqual(0)
      expect(writer).toBeLessThan(steps.indexOf(step))
    }
    // A later step reads the dry run's result and looks for containers and a pulled image.
    const check = steps[steps.length - 1]
    expect(Object.values(check?.env ?? {})).toEqual(expect.arrayContaining(['${{ steps.dry-run.outputs.result }}']))
    expect(check?.run).toContain('docker container ls --all')
    expect(check?.run).toContain('docker image inspect')
  })

  it('release.yml prepares with scripts/release.sh, then publishes: pushes and creates the GitHub Release with gh', () => {
    const flow = workflow('release.yml')
    const steps = allSteps(flow)
    const prepare = steps.findIndex((step) => /^bash scripts\/release\.sh "\$VERSION" -- /.test(step.run ?? ''))
    const publish = steps.findIndex((step) => step.run === 'bash scripts/release.sh publish "$VERSION"')
    expect(prepare).toBeGreaterThanOrEqual(0)
    expect(publish).toBeGreaterThan(prepare)
    expect(steps[publish]?.env?.['GH_TOKEN']).toBe('${{ github.token }}')
    expect(flow.permissions).toEqual({ contents: 'write' })
  })

  it('dependabot keeps npm and the workflow actions up to date weekly, minor and patch updates grouped', () => {
    const config = load(readFileSync('.github/dependabot.yml', 'utf8')) as {
      version: number
      updates: { 'package-ecosystem': string; directory: string; schedule: { interval: string }; groups?: Record<string, { 'update-types'?: string[] }> }[]
    }
    expect(config.version).toBe(2)
    expect(config.updates.map((update) => update['package-ecosystem']).sort()).toEqual(['github-actions', 'npm'])
    for (const update of config.updates) {
      expect(update.schedule.interval).toBe('weekly')
      expect(update.directory).toBe('/')
      expect(Object.values(update.groups ?? {}).map((group) => [...(group['update-types'] ?? [])].sort())).toEqual([['minor', 'patch']])
    }
  })
})
