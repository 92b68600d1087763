/**
 * Command line and the benchmark matrix: which workloads run on which implementation, guarantee
 * and data set, and how big everything is.
 *
 * ```
 * npm run bench -- <workload|all>[,<workload>...] [options]
 *   workloads: W0a W0b W0c W0d W1 W2 W3 W4 W5 W6 W7, W0 (= all W0x), all
 *   --runs N             measured runs per case (default 3)
 *   --large-runs N       measured runs per case on the 1M-key data set (default 1)
 *   --records N          records of the 10k-key data set (default 100000)
 *   --keys N             distinct keys of that data set (default 10000)
 *   --large-records N    records of the 1M-key data set (default 1000000; 0 = skip it)
 *   --large-keys N       distinct keys of the large data set (default 1000000)
 *   --partitions N       input partitions (default 4)
 *   --commit-ms N        commit interval of W1-W6 for kstreams and Java (default 100)
 *   --cache-bytes N      state store cache for kstreams and Java (default 10485760)
 *   --metrics-level LIST kstreams `metricsRecordingLevel` per case: INFO, DEBUG, TRACE (default INFO);
 *                        several levels run every kstreams case once per level (ids of non-INFO
 *                        cases end in -debug / -trace) and add "metrics DEBUG/INFO" ratios
 *   --impl LIST          raw,kstreams,java (default all three)
 *   --guarantee LIST     alos,eos (default both)
 *   --latency LIST       workloads measured for latency, or none (default W0b,W1,W2)
 *   --latency-seconds N  measured seconds per latency run (default 10)
 *   --timeout-seconds N  per run (default 600)
 *   --cpu-prof           V8 CPU profile of each Node worker's measured phase, next to the logs
 *   --smoke              tiny sizes, 1 run, results in bench/results/tmp/ (harness check)
 *   --out DIR            results folder (default bench/results)
 * ```
 */

export type WorkloadId = 'W0a' | 'W0b' | 'W0c' | 'W0d' | 'W1' | 'W2' | 'W3' | 'W4' | 'W5' | 'W6' | 'W7'
export type Impl = 'raw' | 'kstreams' | 'java'
export type Guarantee = 'alos' | 'eos'
export type DatasetName = 'small' | 'large'
/** kstreams' `metricsRecordingLevel` (Kafka Streams' `metrics.recording.level`). */
export type MetricsLevel = 'INFO' | 'DEBUG' | 'TRACE'

export const ALL_WORKLOADS: readonly WorkloadId[] = ['W0a', 'W0b', 'W0c', 'W0d', 'W1', 'W2', 'W3', 'W4', 'W5', 'W6', 'W7']

export const DESCRIPTIONS: Record<WorkloadId, string> = {
  W0a: 'kafkajs consume-only',
  W0b: 'kafkajs consume→produce pipe (at-least-once)',
  W0c: 'kafkajs pipe in transactions (sendOffsets)',
  W0d: 'classic-level batch writes',
  W1: 'stateless filter + mapValues → sink',
  W2: 'count per key (store + changelog)',
  W3: '1-min tumbling count, grace, shuffled input',
  W4: 'stream-table join (table preloaded)',
  W5: 'stream-stream join within 1 s',
  W6: 'selectKey → repartition → count',
  W7: 'restore a changelog (time to RUNNING)',
}

export interface Options {
  workloads: WorkloadId[]
  runs: number
  largeRuns: number
  records: number
  keys: number
  largeRecords: number
  largeKeys: number
  partitions: number
  commitMs: number
  cacheBytes: number
  /** `metricsRecordingLevel` of the kstreams cases, each level a case of its own. */
  metricsLevels: MetricsLevel[]
  impls: Impl[]
  guarantees: Guarantee[]
  latency: WorkloadId[]
  latencySeconds: number
  timeoutSeconds: number
  smoke: boolean
  cpuProf: boolean
  outDir: string
}

/** One row of the matrix. */
export interface Case {
  id: string
  workload: WorkloadId
  impl: Impl
  guarantee?: Guarantee
  /** Commit interval, ms (W0b/W0c and W1-W6). */
  commitMs?: number
  /** kstreams only: `metricsRecordingLevel` of the worker. */
  metricsLevel?: MetricsLevel
  dataset: DatasetName
  label: string
}

const USAGE = 'usage: npm run bench -- <W0a|W0b|W0c|W0d|W1..W7|W0|all>[,...] [--runs N] [--records N] [--smoke] ... (see bench/lib/plan.ts)'

function positiveInt(name: string, raw: string | undefined, min = 1): number {
  const n = Number(raw)
  if (raw === undefined || !Number.isInteger(n) || n < min)
    throw new Error(`--${name} needs an integer ≥ ${min}, got ${JSON.stringify(raw)}`)
  return n
}

function list<T extends string>(name: string, raw: string | undefined, allowed: readonly T[]): T[] {
  const items = (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  for (const item of items)
    if (!allowed.includes(item as T)) throw new Error(`--${name}: unknown ${JSON.stringify(item)} (allowed: ${allowed.join(', ')})`)
  return items as T[]
}

function workloadList(raw: string): WorkloadId[] {
  const out = new Set<WorkloadId>()
  for (const item of raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const upper = item.toUpperCase()
    if (upper === 'ALL') ALL_WORKLOADS.forEach((w) => out.add(w))
    else if (upper === 'W0') ALL_WORKLOADS.filter((w) => w.startsWith('W0')).forEach((w) => out.add(w))
    else {
      const found = ALL_WORKLOADS.find((w) => w.toUpperCase() === upper)
      if (!found) throw new Error(`unknown workload ${JSON.stringify(item)}\n${USAGE}`)
      out.add(found)
    }
  }
  return ALL_WORKLOADS.filter((w) => out.has(w))
}

/** Parses the command line. @throws Error with the usage on bad input. */
export function parseOptions(argv: string[]): Options {
  const positional: string[] = []
  const flags = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--smoke' || a === '--cpu-prof' || a === '--help' || a === '-h') flags.set(a.replace(/^-+/, ''), 'true')
    else if (a.startsWith('--')) {
      const eq = a.indexOf('=')
      if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1))
      else flags.set(a.slice(2), argv[++i] ?? '')
    } else positional.push(a)
  }
  if (flags.has('help') || flags.has('h') || positional.length === 0) throw new Error(USAGE)
  const smoke = flags.has('smoke')
  const get = (name: string, fallback: number, min = 1) => (flags.has(name) ? positiveInt(name, flags.get(name), min) : fallback)
  const options: Options = {
    workloads: workloadList(positional.join(',')),
    smoke,
    cpuProf: flags.has('cpu-prof'),
    runs: get('runs', smoke ? 1 : 3),
    largeRuns: get('large-runs', 1),
    records: get('records', smoke ? 4_000 : 100_000),
    keys: get('keys', smoke ? 500 : 10_000),
    largeRecords: get('large-records', smoke ? 6_000 : 1_000_000, 0),
    largeKeys: get('large-keys', smoke ? 3_000 : 1_000_000),
    partitions: get('partitions', 4),
    commitMs: get('commit-ms', 100),
    cacheBytes: get('cache-bytes', 10 * 1024 * 1024, 0),
    metricsLevels: flags.has('metrics-level')
      ? list('metrics-level', flags.get('metrics-level')?.toUpperCase(), ['INFO', 'DEBUG', 'TRACE'] as const)
      : ['INFO'],
    impls: flags.has('impl') ? list('impl', flags.get('impl'), ['raw', 'kstreams', 'java'] as const) : ['raw', 'kstreams', 'java'],
    guarantees: flags.has('guarantee') ? list('guarantee', flags.get('guarantee'), ['alos', 'eos'] as const) : ['alos', 'eos'],
    latency:
      flags.get('latency') === 'none'
        ? []
        : flags.has('latency')
          ? workloadList(flags.get('latency')!)
          : (['W0b', 'W1', 'W2'] as WorkloadId[]),
    latencySeconds: get('latency-seconds', smoke ? 3 : 10),
    timeoutSeconds: get('timeout-seconds', smoke ? 120 : 600),
    outDir: flags.get('out') ?? (smoke ? 'bench/results/tmp' : 'bench/results'),
  }
  if (options.metricsLevels.length === 0) throw new Error('--metrics-level needs at least one of INFO, DEBUG, TRACE')
  for (const w of options.latency) {
    if (!['W0b', 'W1', 'W2', 'W3', 'W6'].includes(w)) throw new Error(`--latency: ${w} is not supported (W0b, W1, W2, W3, W6)`)
  }
  return options
}

/** The matrix for the chosen workloads, in run order. */
export function buildCases(o: Options): Case[] {
  const cases: Case[] = []
  const add = (c: Omit<Case, 'id' | 'label'>) => {
    const id = [
      c.workload,
      c.impl,
      c.guarantee,
      c.commitMs !== undefined && c.workload === 'W0c' ? `${c.commitMs}ms` : undefined,
      c.dataset === 'large' ? 'large' : undefined,
      c.metricsLevel !== undefined && c.metricsLevel !== 'INFO' ? c.metricsLevel : undefined,
    ]
      .filter(Boolean)
      .join('-')
      .toLowerCase()
    const label = [
      c.workload,
      c.impl,
      c.guarantee,
      c.workload === 'W0c' ? `commit ${c.commitMs} ms` : undefined,
      c.dataset === 'large' ? `${o.largeKeys.toLocaleString('en-US')} keys` : undefined,
      c.metricsLevel !== undefined && o.metricsLevels.join() !== 'INFO' ? `metrics ${c.metricsLevel}` : undefined,
    ]
      .filter(Boolean)
      .join(' · ')
    cases.push({ ...c, id, label })
  }
  const raw = o.impls.includes('raw')
  const large = o.largeRecords > 0
  for (const w of o.workloads) {
    switch (w) {
      case 'W0a':
      case 'W0b':
        // The client's cost does not depend on how many distinct keys there are: small data set only.
        if (raw) add({ workload: w, impl: 'raw', dataset: 'small', commitMs: w === 'W0b' ? o.commitMs : undefined })
        break
      case 'W0c':
        if (raw) for (const ms of [100, 1000]) add({ workload: w, impl: 'raw', dataset: 'small', commitMs: ms })
        break
      case 'W0d':
        if (raw) {
          add({ workload: w, impl: 'raw', dataset: 'small' })
          if (large) add({ workload: w, impl: 'raw', dataset: 'large' })
        }
        break
      case 'W7':
        if (o.impls.includes('kstreams') && large)
          for (const g of o.guarantees)
            for (const m of o.metricsLevels) add({ workload: w, impl: 'kstreams', guarantee: g, dataset: 'large', metricsLevel: m })
        break
      default:
        for (const impl of ['kstreams', 'java'] as const) {
          if (!o.impls.includes(impl)) continue
          // Java keeps its default recording level (INFO); kstreams runs once per chosen level.
          const levels = impl === 'kstreams' ? o.metricsLevels : [undefined]
          for (const g of o.guarantees) {
            for (const m of levels) {
              const metricsLevel = m !== undefined ? { metricsLevel: m } : {}
              add({ workload: w, impl, guarantee: g, dataset: 'small', commitMs: o.commitMs, ...metricsLevel })
              if (w === 'W2' && large) add({ workload: w, impl, guarantee: g, dataset: 'large', commitMs: o.commitMs, ...metricsLevel })
            }
          }
        }
    }
  }
  return cases
}
