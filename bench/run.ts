/**
 * `npm run bench -- <workload|all> [options]`: kstreams against the raw client (the physical
 * limits W0a–W0d) and Java Kafka Streams 3.9.2, side by side on one broker, in one run.
 *
 * Phases: broker (`ensureKafka()`, or `KAFKA_BROKERS`) → build the Java reference (Maven) →
 * preload every input topic (untimed) → for each case, `runs` fresh processes, each timed from
 * its first input record to the broker's append time of its last output record, each output
 * verified (wrong or incomplete output ⇒ the run does not count) → latency at 50 % of the
 * measured maximum → `bench/results/<date>.{json,md,svg}` and the ratios on the console.
 *
 * Options: see bench/lib/plan.ts. Speed is never asserted anywhere; this only measures.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as hdr from 'hdr-histogram-js'
import type { Admin, Kafka as KafkaClient } from 'kafkajs'
import { ensureKafka, KAFKA_VERSION } from '../scripts/local-kafka.js'
import { mavenRepo, runMaven } from '../scripts/local-common.js'
import {
  KEY_BYTES,
  VALUE_BYTES,
  keyName,
  orderedTs,
  shuffledTs,
  tableTs,
  valueOf,
  w4TableHas,
  W5_RIGHT_OFFSET_MS,
  type DatasetShape,
} from './lib/data.js'
import { fixKafkajs } from '../lib/app/client/kafkajs-internals.js'
import { createTopics, deleteTopics, deleteTopicsWithPrefix, kafkaClient, produceAll, readTopic } from './lib/kafka.js'
import { buildCases, parseOptions, DESCRIPTIONS, type Case, type DatasetName, type Options } from './lib/plan.js'
import { findPid, ProcSampler, Worker, type WorkerMessage } from './lib/proc.js'
import {
  median,
  ratioLines,
  summarize,
  writeReport,
  type BenchReport,
  type CaseResult,
  type LatencyResult,
  type Ratio,
  type RunResult,
} from './lib/report.js'
import { verifierFor, type VerifiedWorkload } from './lib/verify.js'

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url))
const REPO_ROOT = path.resolve(BENCH_DIR, '..')
const REFERENCE_DIR = path.join(BENCH_DIR, 'reference')
const RECORD_BYTES = KEY_BYTES + VALUE_BYTES
/** A run that shows no progress (no first record, no output at all) for this long fails, ms. */
const STALL_MS = 120_000

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

/** An input data set: its shape and the topics preloaded for it. */
interface Dataset {
  name: DatasetName
  shape: DatasetShape
  topics: { in: string; shuffled: string; table: string; right: string }
}

interface Context {
  o: Options
  brokers: string
  kafka: KafkaClient
  admin: Admin
  prefix: string
  tmpDir: string
  logDir: string
  datasets: Record<DatasetName, Dataset>
  broker?: ProcSampler
  javaClasspath?: string
  javaSkip?: string
  kstreamsSkip?: string
}

async function main(): Promise<void> {
  let o: Options
  try {
    o = parseOptions(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`)
    process.exit(2)
  }
  const startedAt = new Date()
  const stamp = startedAt.toISOString().replace(/:/g, '-').replace(/\..*/, '')
  const cases = buildCases(o)
  if (cases.length === 0) throw new Error('nothing to run for these workloads and implementations')
  log(`${cases.length} cases × ${o.runs} run(s) (${o.largeRuns} on the large data set): ${cases.map((c) => c.id).join(', ')}`)

  const local = await ensureKafka({ log })
  const brokers = local.brokers
  // the harness reads outputs back read_committed: with kstreams' fix (the raw workers stay plain kafkajs)
  const kafka = fixKafkajs(kafkaClient(brokers, 'kbench'))
  const admin = kafka.admin()
  await admin.connect()
  const brokerPid = local.pid ?? (process.env.KAFKA_BROKERS ? undefined : findPid('kafka.Kafka'))

  const prefix = `kbench-${Date.now().toString(36)}`
  const outDir = path.resolve(REPO_ROOT, o.outDir)
  const tmpDir = path.join(REPO_ROOT, 'bench', 'results', 'tmp', prefix)
  const logDir = path.join(tmpDir, 'logs')
  await mkdir(logDir, { recursive: true })
  await mkdir(outDir, { recursive: true })
  const baseTs = Date.now() - 2 * 3_600_000
  const dataset = (name: DatasetName, records: number, keys: number): Dataset => ({
    name,
    shape: { records, keys, baseTs },
    topics: {
      in: `${prefix}-${name}-in`,
      shuffled: `${prefix}-${name}-shuffled`,
      table: `${prefix}-${name}-table`,
      right: `${prefix}-${name}-right`,
    },
  })
  const ctx: Context = {
    o,
    brokers,
    kafka,
    admin,
    prefix,
    tmpDir,
    logDir,
    datasets: { small: dataset('small', o.records, o.keys), large: dataset('large', o.largeRecords, o.largeKeys) },
    ...(brokerPid ? { broker: new ProcSampler(brokerPid, 250) } : {}),
  }

  const report: BenchReport = {
    startedAt: startedAt.toISOString(),
    finishedAt: '',
    durationMs: 0,
    machine: machineInfo(),
    config: {
      runs: o.runs,
      largeRuns: o.largeRuns,
      records: o.records,
      keys: o.keys,
      largeRecords: o.largeRecords,
      largeKeys: o.largeKeys,
      partitions: o.partitions,
      commitIntervalMs: o.commitMs,
      cacheBytes: o.cacheBytes,
      metricsLevels: o.metricsLevels.join(','),
      valueBytes: VALUE_BYTES,
      keyBytes: KEY_BYTES,
      brokers,
      kafka: KAFKA_VERSION,
      latency: o.latency.join(','),
      latencySeconds: o.latencySeconds,
      smoke: o.smoke,
    },
    preload: [],
    cases: [],
    latency: [],
    ratios: [],
  }
  const base = path.join(outDir, stamp)
  /** Writes the results; between runs only the JSON (rendering the chart takes a core for a while). */
  const save = async (final = false) => {
    report.finishedAt = new Date().toISOString()
    report.durationMs = Date.now() - startedAt.getTime()
    report.ratios = computeRatios(report.cases)
    if (!final) {
      await writeFile(`${base}.json`, JSON.stringify(report, null, 2) + '\n')
      return undefined
    }
    return writeReport(base, report)
  }

  const cleanup = async () => {
    await deleteTopicsWithPrefix(admin, `${prefix}-`).catch(() => 0)
  }
  process.once('SIGINT', () => {
    log('interrupted: deleting this run’s topics')
    void cleanup().finally(() => process.exit(130))
  })

  try {
    if (cases.some((c) => c.impl === 'java')) await buildJava(ctx)
    if (cases.some((c) => c.impl === 'kstreams')) ctx.kstreamsSkip = await kstreamsAvailability()
    await preload(ctx, cases, report)

    const results = new Map<string, CaseResult>()
    for (const c of cases) {
      const result: CaseResult = {
        id: c.id,
        workload: c.workload,
        impl: c.impl,
        ...(c.guarantee ? { guarantee: c.guarantee } : {}),
        ...(c.commitMs !== undefined ? { commitMs: c.commitMs } : {}),
        ...(c.metricsLevel !== undefined ? { metricsLevel: c.metricsLevel } : {}),
        dataset: c.dataset,
        keys: ctx.datasets[c.dataset].shape.keys,
        label: c.label,
        runs: [],
      }
      report.cases.push(result)
      results.set(c.id, result)
      const skip = c.impl === 'java' ? ctx.javaSkip : c.impl === 'kstreams' ? ctx.kstreamsSkip : undefined
      if (skip) {
        result.skipped = skip
        log(`${c.label}: skipped (${skip})`)
      }
    }
    // Rounds: run r of every case, then run r+1 of every case, so that a change in the machine's
    // background load during the session touches every case alike instead of a few.
    const runsOf = (c: Case) => (c.dataset === 'large' ? o.largeRuns : o.runs)
    const rounds = Math.max(...cases.map(runsOf))
    for (let r = 1; r <= rounds; r++) {
      log(`— round ${r}/${rounds} —`)
      for (const c of cases) {
        const result = results.get(c.id)!
        if (result.skipped || r > runsOf(c)) continue
        const run = await runCase(ctx, c, r).catch((err: unknown): RunResult => ({
          run: r,
          ok: false,
          inputRecords: 0,
          error: (err as Error).message.split('\n')[0]!,
        }))
        result.runs.push(run)
        log(
          `${c.label} (${DESCRIPTIONS[c.workload]}), run ${r}/${runsOf(c)}: ${
            run.ok
              ? `${fmt(run.recordsPerSec!)} records/s, ${run.mbPerSec!.toFixed(1)} MB/s, CPU ${fmt(run.cpuPct ?? 0)} %, RSS ${fmt(run.rssPeakMB ?? 0)} MB`
              : `NOT COUNTED: ${run.error}`
          }`,
        )
        summarize(result)
        if (r === runsOf(c)) await deleteTopicsWithPrefix(admin, `${prefix}-${c.id}-`).catch(() => 0)
        await save()
      }
    }

    for (const c of cases) {
      if (!o.latency.includes(c.workload) || c.dataset !== 'small') continue
      const result = report.cases.find((r) => r.id === c.id)
      const max = result?.median?.recordsPerSec
      if (!result || result.skipped || max === undefined) continue
      const rate = Math.max(100, Math.round(max / 2))
      log(`latency ${c.label} at ${fmt(rate)} records/s for ${o.latencySeconds} s`)
      const l = await runLatency(ctx, c, rate).catch((err: unknown): LatencyResult => ({
        id: c.id,
        label: c.label,
        offeredRate: rate,
        error: (err as Error).message.split('\n')[0]!,
      }))
      report.latency.push(l)
      log(
        l.error ? `  failed: ${l.error}` : `  p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms, p99.9 ${l.p999Ms} ms (${fmt(l.received ?? 0)} outputs)`,
      )
      await save()
    }
  } finally {
    ctx.broker?.stop()
    const files = (await save(true))!
    await cleanup()
    await admin.disconnect().catch(() => {})
    await local.stop()
    process.stderr.write('\n' + ratioLines(report.ratios).join('\n') + '\n\n')
    log(
      `results: ${path.relative(REPO_ROOT, files.json)}, ${path.relative(REPO_ROOT, files.md)}, ${path.relative(REPO_ROOT, files.svg)}, ${path.relative(REPO_ROOT, files.png)}`,
    )
    log(`logs: ${path.relative(REPO_ROOT, logDir)}`)
  }
}

// ---------------------------------------------------------------------------------------------
// Setup

function machineInfo(): Record<string, string | number> {
  const cpus = os.cpus()
  // `java -version` prints on stderr.
  const javaRun = spawnSync('java', ['-version'], { encoding: 'utf8' })
  const javaLine = javaRun.error ? 'n/a' : (javaRun.stderr || javaRun.stdout || 'n/a').split('\n')[0]!
  let commit = 'unknown'
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', 'lib', 'topology'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    }).trim()
    if (dirty) commit += ' + uncommitted changes in lib/ or topology/'
  } catch {
    /* not a checkout */
  }
  return {
    cpus: cpus.length,
    cpu: cpus[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    java: javaLine.replace(/"/g, ''),
    commit,
  }
}

/** Builds bench/reference with Maven unless its classes are newer than its sources. */
async function buildJava(ctx: Context): Promise<void> {
  const classpathFile = path.join(REFERENCE_DIR, 'target', 'classpath.txt')
  const classFile = path.join(REFERENCE_DIR, 'target', 'classes', 'kstreams', 'bench', 'Reference.class')
  const sources = [
    path.join(REFERENCE_DIR, 'pom.xml'),
    path.join(REFERENCE_DIR, 'src', 'main', 'java', 'kstreams', 'bench', 'Reference.java'),
  ]
  const fresh =
    existsSync(classpathFile) && existsSync(classFile) && sources.every((s) => statSync(s).mtimeMs <= statSync(classFile).mtimeMs)
  try {
    if (!fresh) {
      log('building the Java reference (mvn package, Maven Central)…')
      const t = Date.now()
      await runMaven(['package'], REFERENCE_DIR)
      log(`Java reference built in ${((Date.now() - t) / 1000).toFixed(1)} s (local repository ${mavenRepo()})`)
    }
    const deps = (await readFile(classpathFile, 'utf8')).trim()
    ctx.javaClasspath = [path.join(REFERENCE_DIR, 'target', 'classes'), deps].join(path.delimiter)
  } catch (err) {
    ctx.javaSkip = `Java reference unavailable: ${(err as Error).message.split('\n')[0]}`
    log(ctx.javaSkip)
  }
}

/** Undefined when the kstreams runtime can be loaded, else why not. */
async function kstreamsAvailability(): Promise<string | undefined> {
  try {
    // A computed specifier: the runtime may not exist yet while the harness is being built.
    const specifier = '../lib/index.js'
    const lib = (await import(specifier)) as Record<string, unknown>
    for (const name of ['KafkaStreams', 'StreamsBuilder']) {
      if (typeof lib[name] !== 'function') return `runtime not available yet (lib/index.ts exports no ${name})`
    }
    return undefined
  } catch (err) {
    return `runtime not loadable: ${(err as Error).message.split('\n')[0]}`
  }
}

/** Creates and fills every input topic the chosen cases read (untimed). */
async function preload(ctx: Context, cases: Case[], report: BenchReport): Promise<void> {
  const { o } = ctx
  const needs = new Set<string>()
  for (const c of cases) {
    const d = ctx.datasets[c.dataset].topics
    if (c.workload === 'W0d') continue
    if (c.workload === 'W3') needs.add(d.shuffled)
    else needs.add(d.in)
    if (c.workload === 'W4') needs.add(d.table)
    if (c.workload === 'W5') needs.add(d.right)
  }
  if (needs.size === 0) return
  for (const ds of Object.values(ctx.datasets)) {
    const { shape, topics } = ds
    const tableKeys: number[] = []
    for (let j = 0; j < shape.keys; j++) if (w4TableHas(j)) tableKeys.push(j)
    const plans: Array<{ topic: string; count: number; make: (i: number) => { key: string; value: string; timestamp: string } }> = [
      {
        topic: topics.in,
        count: shape.records,
        make: (i) => ({ key: keyName(i % shape.keys), value: valueOf(i, shape.keys), timestamp: String(orderedTs(shape, i)) }),
      },
      {
        topic: topics.shuffled,
        count: shape.records,
        make: (i) => ({ key: keyName(i % shape.keys), value: valueOf(i, shape.keys), timestamp: String(shuffledTs(shape, i)) }),
      },
      {
        topic: topics.table,
        count: tableKeys.length,
        make: (n) => ({ key: keyName(tableKeys[n]!), value: valueOf(tableKeys[n]!, shape.keys), timestamp: String(tableTs(shape)) }),
      },
      {
        topic: topics.right,
        count: shape.records,
        make: (i) => ({
          key: keyName(i % shape.keys),
          value: valueOf(i, shape.keys),
          timestamp: String(orderedTs(shape, i) + W5_RIGHT_OFFSET_MS),
        }),
      },
    ]
    for (const p of plans) {
      if (!needs.has(p.topic)) continue
      await createTopics(ctx.admin, [{ topic: p.topic, partitions: o.partitions }])
      const ms = await produceAll(ctx.kafka, p.topic, p.count, p.make)
      report.preload.push({ topic: p.topic, records: p.count, ms })
      log(`preloaded ${p.topic}: ${fmt(p.count)} records in ${(ms / 1000).toFixed(1)} s (${fmt((p.count * 1000) / ms)} records/s)`)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Workers

interface Topics {
  in: string
  in2?: string
  out: string
}

/** Starts the process that runs case `c` against `topics` as application/group `appId`. */
function spawnWorker(ctx: Context, c: Case, appId: string, topics: Topics, stateDir: string, extra: Record<string, unknown> = {}): Worker {
  const shape = ctx.datasets[c.dataset].shape
  const logFile = path.join(ctx.logDir, `${appId}.log`)
  const label = `${c.label} (${appId})`
  if (c.impl === 'java') {
    const args = [
      '-Xms256m',
      '-Xmx2g',
      '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
      '-Dorg.slf4j.simpleLogger.logFile=System.err',
      '-cp',
      ctx.javaClasspath!,
      'kstreams.bench.Reference',
      `--workload=${c.workload}`,
      `--bootstrap=${ctx.brokers}`,
      `--app-id=${appId}`,
      `--guarantee=${c.guarantee}`,
      `--commit-ms=${c.commitMs ?? ctx.o.commitMs}`,
      `--cache-bytes=${ctx.o.cacheBytes}`,
      `--state-dir=${stateDir}`,
      `--in=${topics.in}`,
      ...(topics.in2 ? [`--in2=${topics.in2}`] : []),
      `--out=${topics.out}`,
    ]
    return Worker.spawn('java', args, logFile, label)
  }
  const file = c.impl === 'raw' ? 'raw.ts' : 'kstreams.ts'
  const args =
    c.impl === 'raw'
      ? {
          workload: c.workload,
          brokers: ctx.brokers,
          inTopic: topics.in,
          outTopic: topics.out,
          groupId: appId,
          partitions: ctx.o.partitions,
          records: shape.records,
          keys: shape.keys,
          commitIntervalMs: c.commitMs ?? ctx.o.commitMs,
          stateDir,
          ...extra,
        }
      : {
          workload: c.workload,
          brokers: ctx.brokers,
          applicationId: appId,
          guarantee: c.guarantee,
          commitIntervalMs: c.commitMs ?? ctx.o.commitMs,
          cacheBytes: ctx.o.cacheBytes,
          metricsRecordingLevel: c.metricsLevel ?? 'INFO',
          stateDir,
          in: topics.in,
          in2: topics.in2,
          out: topics.out,
          ...extra,
        }
  const env = ctx.o.cpuProf ? { ...process.env, KBENCH_CPU_PROFILE: path.join(ctx.logDir, 'profiles', `${appId}.cpuprofile`) } : undefined
  return Worker.spawn(
    process.execPath,
    ['--import', 'tsx', path.join(BENCH_DIR, 'workers', file), JSON.stringify(args)],
    logFile,
    label,
    env,
  )
}

/** Input topics of a case. */
function inputTopics(ctx: Context, c: Case, out: string): Topics {
  const t = ctx.datasets[c.dataset].topics
  switch (c.workload) {
    case 'W3':
      return { in: t.shuffled, out }
    case 'W4':
      return { in: t.in, in2: t.table, out }
    case 'W5':
      return { in: t.in, in2: t.right, out }
    default:
      return { in: t.in, out }
  }
}

/** Input records a run of `c` processes (W5 reads two topics; W4 counts stream records only). */
function inputRecords(ctx: Context, c: Case): number {
  const n = ctx.datasets[c.dataset].shape.records
  return c.workload === 'W5' ? 2 * n : n
}

/** Resource numbers of a finished worker over [from, to]. */
function resources(ctx: Context, w: Worker, from: number, to: number): Partial<RunResult> {
  const stats = w.message('stats')
  const mb = (b: unknown) => (typeof b === 'number' && b > 0 ? b / 2 ** 20 : undefined)
  const out: Partial<RunResult> = {}
  const cpu = w.sampler.cpuPercent(from, to)
  if (cpu !== undefined) out.cpuPct = cpu
  const broker = ctx.broker?.cpuPercent(from, to)
  if (broker !== undefined) out.brokerCpuPct = broker
  const rss = mb(w.sampler.peakRss())
  if (rss !== undefined) out.rssPeakMB = rss
  const heap = mb(stats?.heapPeakBytes)
  if (heap !== undefined) out.heapPeakMB = heap
  if (typeof stats?.eldP99Ms === 'number' && stats.eldP99Ms > 0) out.eldP99Ms = stats.eldP99Ms
  return out
}

function rates(records: number, durationMs: number): Pick<RunResult, 'durationMs' | 'recordsPerSec' | 'mbPerSec'> {
  if (!(durationMs > 0)) throw new Error(`measured duration ${durationMs} ms is not positive`)
  return {
    durationMs,
    recordsPerSec: (records * 1000) / durationMs,
    mbPerSec: (records * RECORD_BYTES) / 1e6 / (durationMs / 1000),
  }
}

// ---------------------------------------------------------------------------------------------
// One measured run

async function runCase(ctx: Context, c: Case, r: number): Promise<RunResult> {
  const appId = `${ctx.prefix}-${c.id}-r${r}`
  const stateDir = path.join(ctx.tmpDir, 'state', appId)
  try {
    if (c.workload === 'W0a' || c.workload === 'W0d') return await runSelfTimed(ctx, c, r, appId, stateDir)
    // W7's runs share one loaded changelog (deleted after the case's last run).
    if (c.workload === 'W7') return await runRestore(ctx, c, r, `${ctx.prefix}-${c.id}-app`, stateDir)
    return await runStreaming(ctx, c, r, appId, stateDir)
  } finally {
    await deleteTopicsWithPrefix(ctx.admin, `${appId}-`).catch(() => 0)
    await rm(stateDir, { recursive: true, force: true }).catch(() => {})
  }
}

/** W0a and W0d time themselves (first record → last record consumed / written). */
async function runSelfTimed(ctx: Context, c: Case, r: number, appId: string, stateDir: string): Promise<RunResult> {
  const shape = ctx.datasets[c.dataset].shape
  const worker = spawnWorker(ctx, c, appId, { in: ctx.datasets[c.dataset].topics.in, out: '' }, stateDir)
  const timeout = ctx.o.timeoutSeconds * 1000
  let first: WorkerMessage
  let done: WorkerMessage
  try {
    first = await worker.waitFor('first', timeout)
    done = await worker.waitFor('done', timeout)
  } finally {
    await worker.stop()
  }
  const base: RunResult = { run: r, ok: false, inputRecords: shape.records }
  if (c.workload === 'W0a' && Number(done.count) !== shape.records) {
    return { ...base, error: `consumed ${String(done.count)} records, expected ${shape.records}` }
  }
  const expectedKeys = Math.min(shape.records, shape.keys)
  if (c.workload === 'W0d' && Number(done.storedKeys) !== expectedKeys) {
    return { ...base, error: `LevelDB holds ${String(done.storedKeys)} keys, expected ${expectedKeys}` }
  }
  return {
    ...base,
    ok: true,
    outputRecords: Number(done.count),
    ...rates(shape.records, done.t! - first.t!),
    ...resources(ctx, worker, first.t!, done.t!),
  }
}

/**
 * Pipes and topologies: timed from the worker's first input record to the LogAppendTime of the
 * last output record, once the output is complete and verified.
 */
async function runStreaming(ctx: Context, c: Case, r: number, appId: string, stateDir: string): Promise<RunResult> {
  const shape = ctx.datasets[c.dataset].shape
  const out = `${appId}-out`
  const t0 = Date.now()
  await createTopics(ctx.admin, [{ topic: out, partitions: ctx.o.partitions, logAppendTime: true }])
  const deadline = Date.now() + ctx.o.timeoutSeconds * 1000
  const t1 = Date.now()
  const worker = spawnWorker(ctx, c, appId, inputTopics(ctx, c, out), stateDir)
  const base: RunResult = { run: r, ok: false, inputRecords: inputRecords(ctx, c) }
  let first: WorkerMessage
  let verifier
  let verdict
  let settled = 0
  let verified = 0
  try {
    first = await worker.waitFor('first', Math.min(STALL_MS, deadline - Date.now()))
    const settleMs = Math.max(1_000, 5 * (c.commitMs ?? ctx.o.commitMs))
    await waitOutputSettled(ctx, worker, out, settleMs, deadline)
    settled = Date.now()
    for (;;) {
      verifier = verifierFor(c.workload as VerifiedWorkload, shape)
      await readTopic(ctx.kafka, out, (rec) => verifier!.add(rec), Math.max(10_000, deadline - Date.now()))
      verdict = verifier.verdict()
      if (verdict.status !== 'incomplete' || Date.now() > deadline) break
      await sleep(1_000)
      await waitOutputSettled(ctx, worker, out, settleMs, deadline)
    }
    verified = Date.now()
  } finally {
    await worker.stop()
  }
  if (verdict.status !== 'ok') return { ...base, outputRecords: verdict.records, error: `${verdict.status} output: ${verdict.message}` }
  const end = verifier.lastTimestamp
  return {
    ...base,
    ok: true,
    outputRecords: verdict.records,
    ...rates(base.inputRecords, end - first.t!),
    ...resources(ctx, worker, first.t!, end),
    // Where the harness's time goes (untimed phases), to size the default matrix.
    phasesMs: { topics: t1 - t0, startup: first.t! - t1, settle: settled - end, verify: verified - settled, stop: Date.now() - verified },
  }
}

/** Waits until the output topic's end offsets stop moving for `settleMs` (and are > 0). */
async function waitOutputSettled(ctx: Context, worker: Worker, topic: string, settleMs: number, deadline: number): Promise<void> {
  let last = -1
  let since = Date.now()
  for (;;) {
    const failed = worker.message('error')
    if (failed) throw new Error(`worker failed: ${String(failed.message).split('\n')[0]}`)
    if (worker.hasExited) throw new Error('worker exited while processing (see its log)')
    const offsets = await ctx.admin.fetchTopicOffsets(topic)
    const sum = offsets.reduce((s, p) => s + Number(p.high), 0)
    if (sum !== last) {
      last = sum
      since = Date.now()
    } else if (sum > 0 && Date.now() - since >= settleMs) return
    if (Date.now() > deadline || (sum === 0 && Date.now() - since > STALL_MS)) throw new Error(`timed out: output stuck at ${sum} records`)
    await sleep(250)
  }
}

/** W7 changelogs loaded so far (one per case), by application id. */
const loadedChangelogs = new Map<string, { changelogRecords: number; expectedKeys: number; error?: string }>()

/** W7's untimed load phase: one instance materialises the input into `w7-store`, then stops. */
async function loadChangelog(
  ctx: Context,
  c: Case,
  appId: string,
  topics: Topics,
  stateDir: string,
  deadline: number,
): Promise<{ changelogRecords: number; expectedKeys: number; error?: string }> {
  const shape = ctx.datasets[c.dataset].shape
  const changelog = `${appId}-w7-store-changelog`
  const started = Date.now()
  const loader = spawnWorker(ctx, c, appId, topics, stateDir, { mode: 'load' })
  try {
    await loader.waitFor('first', Math.min(STALL_MS, deadline - Date.now()))
    // Done when the changelog stopped moving (then checked: it must hold every key).
    await waitOutputSettled(ctx, loader, changelog, Math.max(2_000, 4 * ctx.o.commitMs), deadline)
  } finally {
    await loader.stop()
    await rm(stateDir, { recursive: true, force: true }).catch(() => {})
  }
  let changelogRecords = 0
  const keys = new Set<string>()
  await readTopic(ctx.kafka, changelog, (rec) => {
    changelogRecords++
    keys.add(rec.key?.toString('latin1') ?? '')
  })
  const expectedKeys = Math.min(shape.records, shape.keys)
  log(
    `  loaded ${changelog}: ${fmt(changelogRecords)} records, ${fmt(keys.size)} keys in ${((Date.now() - started) / 1000).toFixed(1)} s (untimed)`,
  )
  if (keys.size !== expectedKeys)
    return { changelogRecords, expectedKeys, error: `changelog holds ${keys.size} keys, expected ${expectedKeys}` }
  return { changelogRecords, expectedKeys }
}

/**
 * W7: a first (untimed, once per case) instance materialises the large data set into a store
 * whose changelog then holds one record per key; each run starts an instance with an empty state
 * directory that restores it. Timed from `start()` to RUNNING (after the assignment); the
 * restored count must equal the changelog's records and the store must hold every key.
 */
async function runRestore(ctx: Context, c: Case, r: number, appId: string, stateDir: string): Promise<RunResult> {
  const deadline = Date.now() + ctx.o.timeoutSeconds * 1000
  const topics = { in: ctx.datasets[c.dataset].topics.in, out: `${appId}-out` }
  let loaded = loadedChangelogs.get(appId)
  if (!loaded) {
    loaded = await loadChangelog(ctx, c, appId, topics, path.join(ctx.tmpDir, 'state', `${appId}-load`), deadline)
    loadedChangelogs.set(appId, loaded)
  }
  const { changelogRecords, expectedKeys } = loaded
  const base: RunResult = { run: r, ok: false, inputRecords: changelogRecords }
  if (loaded.error) return { ...base, error: loaded.error }

  const restorer = spawnWorker(ctx, c, appId, topics, path.join(stateDir, 'restore'), { mode: 'restore' })
  let started: WorkerMessage
  let ready: WorkerMessage
  try {
    started = await restorer.waitFor('starting', deadline - Date.now())
    ready = await restorer.waitFor('ready', deadline - Date.now())
  } finally {
    await restorer.stop()
  }
  const restored = Number(ready.restored)
  if (restored !== changelogRecords) return { ...base, error: `restored ${restored} records, the changelog holds ${changelogRecords}` }
  if (ready.storeError !== undefined) return { ...base, error: `store not readable after restore: ${String(ready.storeError)}` }
  const entries = ready.storeEntries === undefined ? undefined : Number(ready.storeEntries)
  if (entries !== undefined && entries !== expectedKeys)
    return { ...base, error: `store holds ${entries} keys after restore, expected ${expectedKeys}` }
  return {
    ...base,
    ok: true,
    outputRecords: restored,
    ...rates(restored, ready.t! - started.t!),
    ...resources(ctx, restorer, started.t!, ready.t!),
    ...(Number(ready.restoreMs) > 0
      ? { extra: { restorePhaseMs: Number(ready.restoreMs), restorePhaseRecordsPerSec: (restored * 1000) / Number(ready.restoreMs) } }
      : {}),
  }
}

// ---------------------------------------------------------------------------------------------
// Latency at a fixed offered load

async function runLatency(ctx: Context, c: Case, rate: number): Promise<LatencyResult> {
  const appId = `${ctx.prefix}-lat-${c.id}`
  const stateDir = path.join(ctx.tmpDir, 'state', appId)
  const topics = { in: `${appId}-in`, out: `${appId}-out` }
  const warmupMs = 2_000
  const timeout = ctx.o.timeoutSeconds * 1000
  await createTopics(ctx.admin, [
    { topic: topics.in, partitions: ctx.o.partitions },
    { topic: topics.out, partitions: ctx.o.partitions },
  ])
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000, numberOfSignificantValueDigits: 3 })
  const consumer = ctx.kafka.consumer({ groupId: `${appId}-measure`, readUncommitted: false, maxWaitTimeInMs: 100 })
  const worker = spawnWorker(ctx, c, appId, topics, stateDir)
  let loadgen: Worker | undefined
  let received = 0
  let measureFrom = Number.POSITIVE_INFINITY
  try {
    await worker.waitFor('ready', timeout)
    await consumer.connect()
    await consumer.subscribe({ topics: [topics.out], fromBeginning: true })
    await consumer.run({
      eachBatch: async ({ batch }) => {
        const now = Date.now()
        for (const m of batch.messages) {
          const ts = Number(m.timestamp)
          received++
          if (ts >= measureFrom) histogram.recordValue(Math.max(1, now - ts))
        }
      },
    })
    await sleep(1_000)
    loadgen = Worker.spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(BENCH_DIR, 'workers', 'loadgen.ts'),
        JSON.stringify({
          brokers: ctx.brokers,
          topic: topics.in,
          rate,
          durationMs: ctx.o.latencySeconds * 1000 + warmupMs,
          keys: ctx.o.keys,
        }),
      ],
      path.join(ctx.logDir, `${appId}-loadgen.log`),
      'loadgen',
    )
    const started = await loadgen.waitFor('first', 30_000)
    measureFrom = started.t! + warmupMs
    const done = await loadgen.waitFor('done', ctx.o.latencySeconds * 1000 + warmupMs + 60_000)
    // Drain: wait until outputs stop arriving (at most 15 s).
    let last = -1
    for (let i = 0; i < 60 && received !== last; i++) {
      last = received
      await sleep(Math.max(250, 3 * (c.commitMs ?? ctx.o.commitMs)))
    }
    if (histogram.totalCount === 0) throw new Error('no output arrived during the measured window')
    return {
      id: c.id,
      label: c.label,
      offeredRate: rate,
      achievedRate: Number(done.achievedRate),
      received,
      p50Ms: histogram.getValueAtPercentile(50),
      p99Ms: histogram.getValueAtPercentile(99),
      p999Ms: histogram.getValueAtPercentile(99.9),
      maxMs: histogram.maxValue,
    }
  } finally {
    await consumer.disconnect().catch(() => {})
    await loadgen?.kill()
    await worker.stop()
    histogram.destroy()
    await deleteTopics(ctx.admin, [topics.in, topics.out])
    await deleteTopicsWithPrefix(ctx.admin, `${appId}-`).catch(() => 0)
    await rm(stateDir, { recursive: true, force: true }).catch(() => {})
  }
}

// ---------------------------------------------------------------------------------------------
// Ratios

function computeRatios(cases: CaseResult[]): Ratio[] {
  const rps = (id: string) => cases.find((c) => c.id === id)?.median?.recordsPerSec
  const ratio = (name: string, a: number | undefined, b: number | undefined, target?: number, note?: string): Ratio | undefined => {
    if (a === undefined || b === undefined || b === 0) return undefined
    return { name, value: a / b, ...(target !== undefined ? { target } : {}), ...(note ? { note } : {}) }
  }
  const out: Array<Ratio | undefined> = [
    ratio('W1/W0b (kstreams alos)', rps('w1-kstreams-alos'), rps('w0b-raw'), 0.9),
    ratio('W2/W0b (kstreams alos)', rps('w2-kstreams-alos'), rps('w0b-raw'), 0.6),
    ratio('W2/W0b (kstreams alos, large keys)', rps('w2-kstreams-alos-large'), rps('w0b-raw'), 0.6),
    ratio('W0c 100 ms / W0b (raw EOS cost)', rps('w0c-raw-100ms'), rps('w0b-raw')),
    ratio('W0c 1 s / W0b (raw EOS cost)', rps('w0c-raw-1000ms'), rps('w0b-raw')),
  ]
  const workloads = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6']
  for (const w of [...workloads, 'w2@large']) {
    const [id, large] = w.split('@')
    const sfx = large ? '-large' : ''
    const W = `${id!.toUpperCase()}${large ? ' large keys' : ''}`
    out.push(ratio(`${W} EOS/ALOS kstreams`, rps(`${id}-kstreams-eos${sfx}`), rps(`${id}-kstreams-alos${sfx}`), 0.5))
    out.push(ratio(`${W} EOS/ALOS java`, rps(`${id}-java-eos${sfx}`), rps(`${id}-java-alos${sfx}`)))
    out.push(ratio(`${W} kstreams/java alos`, rps(`${id}-kstreams-alos${sfx}`), rps(`${id}-java-alos${sfx}`)))
    out.push(ratio(`${W} kstreams/java eos`, rps(`${id}-kstreams-eos${sfx}`), rps(`${id}-java-eos${sfx}`)))
  }
  // Metrics overhead: the same case at a higher recording level against INFO (the cheapest level;
  // like Kafka Streams, kstreams has no switch that turns metrics off).
  for (const c of cases) {
    if (c.impl !== 'kstreams' || c.metricsLevel === undefined || c.metricsLevel === 'INFO') continue
    const base = c.id.replace(new RegExp(`-${c.metricsLevel.toLowerCase()}$`), '')
    const g = c.guarantee ?? ''
    const W = `${c.workload}${c.dataset === 'large' ? ' large keys' : ''}`
    out.push(ratio(`${W} metrics ${c.metricsLevel}/INFO kstreams ${g}`.trim(), c.median?.recordsPerSec, rps(base)))
  }
  for (const g of ['alos', 'eos']) {
    const restore = rps(`w7-kstreams-${g}-large`)
    if (restore !== undefined) {
      out.push({ name: `W7 restore records/s (${g})`, value: restore, target: 100_000, note: 'start() to RUNNING' })
      const phase = median(
        (cases.find((c) => c.id === `w7-kstreams-${g}-large`)?.runs ?? [])
          .filter((r) => r.ok)
          .map((r) => r.extra?.restorePhaseRecordsPerSec),
      )
      if (phase !== undefined)
        out.push({ name: `W7 restore phase records/s (${g})`, value: phase, note: 'first restore start to last restore end' })
      out.push(ratio(`W7 restore rate / W0d LevelDB writes (${g})`, restore, rps('w0d-raw-large')))
    }
  }
  return out.filter((r): r is Ratio => r !== undefined)
}

main().catch((err: unknown) => {
  process.stderr.write(`[bench] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
})
