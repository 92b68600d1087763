/**
 * `npm run chaos`: the fault matrix — scenario × guarantee × N runs — against clusters this
 * program starts and stops itself (never the shared broker on 9092 / registry on 8081), and a
 * table of the results.
 *
 * ```
 * npm run chaos                                   # every scenario, both guarantees, 3 runs
 * npm run chaos -- --scenarios freeze-20,freeze-60 --guarantees exactly_once --runs 1
 * npm run chaos -- --scenarios issue-16 --supervise --runs 3
 * ```
 * Options: `--scenarios a,b` (default: all), `--guarantees exactly_once,at_least_once` (also
 * `exactly_once_v2`), `--runs N`
 * (3), `--supervise` (restart dead instances, as issue 16's operator did; the pass criterion runs
 * without), `--code worktree|HEAD|<commit>` (the runtime under test: the working tree, default, or a
 * committed version, see test/chaos/snapshot.ts), `--port P` (private single broker, default 29092),
 * `--cluster-port P` (node 1 of the private 3-node cluster, default 29292), `--netns-port P` (the
 * broker of the partition scenario, default 29492), `--registry-port P` (the private schema registry
 * of the registry scenario, default 28081), `--out DIR` (default
 * `.cache/chaos/<time>`: one folder per run with every instance's timestamped log, run.log and
 * result.json; `summary.json` and `table.txt` at the top).
 *
 * Columns: deaths = instance exits + clients in ERROR (pass: 0); anomalies = lost / duplicated
 * records, wrong aggregates (exactness problems) and transactions left open; catch-up = seconds
 * from the fault's end until the group lag was at most one second of input; input gaps = runs whose
 * input log lacks records the input producer had acknowledged (a client or cluster fault; the
 * outputs are judged against the input as it is in the log).
 * Exit code 0 when every run passed.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { startLocalCluster } from '../../scripts/local-cluster.js'
import { startPrivateBroker, type Cluster } from './cluster.js'
import { liveInstances, ROOT } from './instances.js'
import type { LocalRegistry } from '../../scripts/local-registry.js'
import { runRegistryFreeze, startPrivateRegistry } from './registry-scenario.js'
import { codeVersion, type CodeVersion } from './snapshot.js'
import { selfCheck } from './verify.js'
import { runOnce, type Guarantee, type RunOptions, type RunResult, type ScenarioFn } from './scenario.js'
import { createNetns, removeBrokerIp, startNetnsBroker } from './netns.js'
import { clusterFreeze, coordinatorKills, diskFull, issue16, partitionOne, rollingRestart } from './scenarios.js'
import { mountSmallDisk } from './tmpfs.js'

/** How a scenario gets its cluster and which run options it changes. */
interface ScenarioDef {
  readonly fn?: ScenarioFn
  /**
   * `single`: one private broker (scripts/local-kafka.ts); `three`: a private 3-node cluster
   * (scripts/local-cluster.ts); `netns`: one private broker reachable from network namespaces
   * (test/chaos/netns.ts).
   */
  readonly cluster: 'single' | 'three' | 'netns'
  readonly options?: Partial<RunOptions>
  /** A scenario with its own app and verdict (the registry freeze); replaces `fn` and runOnce. */
  readonly custom?: (
    cluster: Cluster,
    run: number,
    options: { guarantee: Guarantee; logDir: string; code: CodeVersion; supervise: boolean },
  ) => Promise<RunResult>
  /** Per run: what the scenario needs outside Kafka (a namespace, a small disk), and its teardown. */
  readonly prepare?: () => Promise<{ fn: ScenarioFn; options: Partial<RunOptions>; teardown(): Promise<void> }>
}

/** The private schema registry's port (`--registry-port`). */
let registryPort = 28081

const SCENARIOS: Record<string, ScenarioDef> = {
  'issue-16': { fn: issue16, cluster: 'single' },
  'freeze-20': { fn: clusterFreeze(20), cluster: 'single' },
  'freeze-60': { fn: clusterFreeze(60), cluster: 'single' },
  'rolling-restart': { fn: rollingRestart, cluster: 'three', options: { replicationFactor: 3 } },
  'coordinator-kill': { fn: coordinatorKills, cluster: 'three', options: { replicationFactor: 3 } },
  'registry-freeze': {
    cluster: 'single',
    custom: async (cluster, run, options) => {
      registry ??= await startPrivateRegistry(registryPort, (m) => process.stderr.write(`[chaos registry] ${m}\n`))
      return runRegistryFreeze(cluster, registry, run, options)
    },
  },
  partition: {
    cluster: 'netns',
    prepare: async () => {
      const ns = await createNetns(1)
      return {
        fn: partitionOne(ns),
        options: { instanceOptions: (i) => (i === 0 ? { prefix: ns.prefix } : {}) },
        teardown: () => ns.remove(),
      }
    },
  },
  'disk-full': {
    cluster: 'single',
    prepare: async () => {
      const disk = await mountSmallDisk(32)
      return {
        fn: diskFull(disk),
        options: { instanceOptions: (i) => (i === 0 ? { stateDir: disk.dir } : {}) },
        teardown: () => disk.remove(),
      }
    },
  },
}

/** The private registry of the registry scenario, started on first use. */
let registry: LocalRegistry | undefined

const fmtS = (ms: number | undefined): string => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)}`)

/** The matrix table: one row per scenario × guarantee. */
export function table(results: ReadonlyArray<RunResult>): string {
  const rows: string[][] = [
    [
      'scenario',
      'guarantee',
      'runs',
      'pass',
      'deaths',
      'lost',
      'dup',
      'wrong-agg/problems',
      'open-txn',
      'catch-up s (per run)',
      'input gaps',
      'harness errors',
    ],
  ]
  const keys = [...new Set(results.map((r) => `${r.scenario}\u0000${r.guarantee}`))]
  for (const k of keys) {
    const [scenario, guarantee] = k.split('\u0000') as [string, string]
    const rs = results.filter((r) => r.scenario === scenario && r.guarantee === guarantee)
    const sum = (f: (r: RunResult) => number) => rs.reduce((n, r) => n + f(r), 0)
    rows.push([
      scenario,
      guarantee,
      String(rs.length),
      String(rs.filter((r) => r.pass).length),
      String(sum((r) => r.deaths.length)),
      String(sum((r) => r.verdict?.lost ?? 0)),
      String(sum((r) => r.verdict?.duplicated ?? 0)),
      String(sum((r) => r.verdict?.problems.length ?? 0)),
      String(sum((r) => r.verdict?.openTransactions.length ?? 0)),
      rs.map((r) => fmtS(r.catchUpMs)).join(' '),
      String(rs.filter((r) => (r.verdict?.inputProblems?.length ?? 0) > 0).length),
      String(rs.filter((r) => r.error !== undefined).length),
    ])
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  const line = (r: string[]) => r.map((x, c) => x.padEnd(widths[c]!)).join(' | ')
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.slice(1).map(line)].join('\n')
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenarios: { type: 'string' },
      guarantees: { type: 'string', default: 'exactly_once,at_least_once' },
      runs: { type: 'string', default: '3' },
      supervise: { type: 'boolean', default: false },
      port: { type: 'string', default: '29092' },
      'cluster-port': { type: 'string', default: '29292' },
      'netns-port': { type: 'string', default: '29492' },
      'registry-port': { type: 'string', default: '28081' },
      out: { type: 'string' },
      code: { type: 'string', default: 'worktree' },
    },
  })
  const names = values.scenarios ? values.scenarios.split(',') : Object.keys(SCENARIOS)
  for (const n of names) if (!SCENARIOS[n]) throw new Error(`unknown scenario ${n}; known: ${Object.keys(SCENARIOS).join(', ')}`)
  const guarantees = values.guarantees!.split(',') as Guarantee[]
  for (const g of guarantees)
    if (!['exactly_once', 'exactly_once_v2', 'at_least_once'].includes(g))
      throw new Error(`unknown guarantee ${g}; known: exactly_once, exactly_once_v2, at_least_once`)
  const runs = Number(values.runs)
  registryPort = Number(values['registry-port'])
  const out = path.resolve(values.out ?? path.join(ROOT, '.cache/chaos', new Date().toISOString().replace(/[:.]/g, '-')))
  await mkdir(out, { recursive: true })
  process.stderr.write(`[chaos] logs in ${out}\n`)
  const broken = selfCheck()
  if (broken.length) throw new Error(`the verifier's negative control failed: ${broken.join('; ')}`)
  const code = await codeVersion(values.code!)
  process.stderr.write(`[chaos] runtime under test: ${code.id}\n`)
  const results: RunResult[] = []
  let single: Cluster | undefined
  let three: Cluster | undefined
  let netns: Cluster | undefined
  const stopClusters = async (keep?: ScenarioDef['cluster']) => {
    if (keep !== 'single') await single?.stop()
    if (keep !== 'three') await three?.stop()
    if (keep !== 'netns') {
      await netns?.stop()
      if (netns) await removeBrokerIp()
    }
    if (keep !== 'single') single = undefined
    if (keep !== 'three') three = undefined
    if (keep !== 'netns') netns = undefined
  }
  const stopAll = async () => {
    await Promise.all([...liveInstances].map((i) => i.dispose()))
    await stopClusters()
    await registry?.stop()
    registry = undefined
  }
  const log = (m: string) => process.stderr.write(`[chaos cluster] ${m}\n`)
  /** One cluster of each kind at a time (2 cores): the other kind is stopped first. */
  const clusterFor = async (kind: ScenarioDef['cluster']): Promise<Cluster> => {
    await stopClusters(kind)
    if (kind === 'single') return (single ??= await startPrivateBroker({ port: Number(values.port), log }))
    if (kind === 'netns') return (netns ??= await startNetnsBroker(Number(values['netns-port']), log))
    return (three ??= await startLocalCluster({ size: 3, basePort: Number(values['cluster-port']), log }))
  }
  process.once('SIGINT', () => void stopAll().finally(() => process.exit(130)))
  try {
    for (const name of names) {
      const def = SCENARIOS[name]!
      for (const guarantee of guarantees) {
        for (let run = 1; run <= runs; run++) {
          const cluster = await clusterFor(def.cluster)
          const logDir = path.join(out, `${name}-${guarantee}-${run}`)
          const prepared = def.prepare ? await def.prepare() : undefined
          const r = def.custom
            ? await def.custom(cluster, run, { guarantee, logDir, code, supervise: values.supervise! })
            : await runOnce(name, prepared?.fn ?? def.fn!, cluster, run, {
                guarantee,
                supervise: values.supervise,
                logDir,
                code,
                ...def.options,
                ...prepared?.options,
              }).finally(() => prepared?.teardown())
          results.push(r)
          process.stderr.write(
            `[chaos] ${name} ${guarantee} #${run}: ${r.pass ? 'PASS' : 'FAIL'} deaths=${r.deaths.length} lost=${r.verdict?.lost ?? '?'} dup=${r.verdict?.duplicated ?? '?'} problems=${r.verdict?.problems.length ?? '?'} open=${r.verdict?.openTransactions.length ?? '?'} catch-up=${fmtS(r.catchUpMs)}s${r.error ? ` error: ${r.error}` : ''}\n`,
          )
          await writeFile(path.join(out, 'summary.json'), JSON.stringify(results, null, 2))
        }
      }
    }
  } finally {
    await stopAll()
  }
  const t = table(results)
  await writeFile(path.join(out, 'table.txt'), t + '\n')
  process.stdout.write(t + '\n')
  process.exitCode = results.every((r) => r.pass) ? 0 : 1
}

main().catch((e: unknown) => {
  process.stderr.write(`[chaos] ${(e as Error).stack ?? String(e)}\n`)
  process.exit(2)
})
