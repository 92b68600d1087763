/**
 * State runtime micro-benchmark (not a test): numbers as ratios to raw classic-level batch writes
 * measured in the same run, on the same disk.
 *
 *   npx tsx bench/state-bench.ts [records=200000] [all|reads|writes] [--reps=2]
 *
 * Measures:
 * 1. raw classic-level: `batch()` of 5,000 puts → records/s (the reference);
 * 2. store write path: 200k puts into a runtime key-value store + prepareCommit + commitLocal;
 * 3. cached reads: getMany over committed keys (clean LRU) and cold (LevelDB getMany);
 * 4. changelog restore: a 200k-record compacted changelog on the local broker restored into a
 *    fresh task (restoreTask → ChangelogReader → restoreBatch) → records/s.
 * 5. (`reads`) window and session stores on the processors' hot paths, at 10k and 100k keys:
 *    stream-stream join buffer fetchRange (hits and misses at random times), a join stream (put +
 *    fetchRange on the other side per record, in time order), window aggregate read + put
 *    (fetchRange of one window, and point fetch), session findSessions + merge; each store variant
 *    of {@link VARIANTS} (range scans = before the key index, index = after) in the same run,
 *    best of `--reps=N` (default 2) alternating runs, as ratios to raw batch writes in wall-clock
 *    and in CPU time (the latter barely moved by other load on the machine).
 * Uses KAFKA_BROKERS or starts/reuses the local broker (scripts/local-kafka.ts) for 4 only.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { ClassicLevel } from 'classic-level'
import kafkajs from 'kafkajs'
import { ensureKafka } from '../scripts/local-kafka.js'
import { LevelDbBackend } from '../lib/state/backend.js'
import { CacheBudget } from '../lib/state/cache.js'
import { RuntimeKeyValueStore, RuntimeSessionStore, RuntimeWindowStore } from '../lib/state/stores.js'
import { createChangelogReader } from '../lib/app/client/kafkajs-changelog-reader.js'
import { restoreTask } from '../lib/state/restore.js'
import { createTaskStateManager } from '../lib/state/task-state-manager.js'
import type { StoreDef } from '../topology/state/types.js'

const N = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 200_000)
const VALUE = Buffer.alloc(64, 0x61)
const key = (i: number) => Buffer.from(`key-${String(i).padStart(9, '0')}`)

function rate(n: number, ms: number): number {
  return Math.round((n / ms) * 1000)
}

/** Wall-clock and process-CPU timer (CPU counts LevelDB's worker threads too; it is far less disturbed by other load on the machine). */
function startClock(): { stop(ops: number): { rate: number; cpuRate: number } } {
  const t = performance.now()
  const c = process.cpuUsage()
  return {
    stop(ops) {
      const wall = performance.now() - t
      const cpu = process.cpuUsage(c)
      return { rate: rate(ops, wall), cpuRate: rate(ops, (cpu.user + cpu.system) / 1000) }
    },
  }
}

async function rawBatchWrites(dir: string, name = 'raw'): Promise<{ rate: number; cpuRate: number }> {
  const db = new ClassicLevel<Buffer, Buffer>(path.join(dir, name), { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  await db.open()
  const clock = startClock()
  for (let i = 0; i < N; i += 5000) {
    const b = db.batch()
    for (let j = i; j < Math.min(N, i + 5000); j++) b.put(key(j), VALUE)
    await b.write()
  }
  const r = clock.stop(N)
  await db.close()
  return r
}

async function storeWrites(dir: string): Promise<{ write: number; warm: number; cold: number }> {
  const kv = new RuntimeKeyValueStore({
    name: 'kv',
    backend: await LevelDbBackend.open(path.join(dir, 'store')),
    mode: 'managed',
    budget: new CacheBudget(256 * 1024 * 1024),
  })
  let t = performance.now()
  for (let i = 0; i < N; i += 5000) {
    for (let j = i; j < Math.min(N, i + 5000); j++) await kv.put(key(j), VALUE)
    kv.prepareCommit()
    await kv.commitLocal()
  }
  const write = rate(N, performance.now() - t)
  const keys = Array.from({ length: N }, (_, i) => key(i))
  t = performance.now()
  for (let i = 0; i < N; i += 1000) await kv.getMany(keys.slice(i, i + 1000))
  const warm = rate(N, performance.now() - t)
  await kv.close()
  const cold = new RuntimeKeyValueStore({
    name: 'kv',
    backend: await LevelDbBackend.open(path.join(dir, 'store')),
    mode: 'managed',
    cachingEnabled: false,
  })
  t = performance.now()
  for (let i = 0; i < N; i += 1000) await cold.getMany(keys.slice(i, i + 1000))
  const coldRate = rate(N, performance.now() - t)
  await cold.close()
  return { write, warm, cold: coldRate }
}

async function restoreRate(dir: string, brokers: string): Promise<{ rate: number; restored: number; fetches: number }> {
  const kafka = new kafkajs.Kafka({ clientId: 'state-bench', brokers: brokers.split(','), logLevel: kafkajs.logLevel.NOTHING })
  const app = `state-bench-${Date.now().toString(36)}`
  const topic = `${app}-kv-changelog`
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({
    topics: [{ topic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }],
    waitForLeaders: true,
  })
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  for (let i = 0; i < N; i += 10_000) {
    await producer.send({
      topic,
      messages: Array.from({ length: Math.min(10_000, N - i) }, (_, j) => ({ key: key(i + j), value: VALUE, partition: 0 })),
    })
  }
  await producer.disconnect()
  const def: StoreDef = { name: 'kv', type: 'keyValue', loggingEnabled: true, logConfig: {}, cachingEnabled: true, persistent: true }
  const sm = createTaskStateManager({
    applicationId: app,
    taskId: '0_0',
    stateDir: dir,
    stores: [def],
    changelogTopicFor: () => topic,
    changelogPartition: 0,
    cacheMaxBytes: 64 * 1024 * 1024,
    exactlyOnce: false,
  })
  await sm.open()
  const reader = createChangelogReader({ kafka })
  const res = await restoreTask(sm, reader)
  const fetches = reader.stats.fetches
  await reader.close()
  await sm.close({ clean: true })
  await admin.deleteTopics({ topics: [topic] }).catch(() => {})
  await admin.disconnect()
  return { rate: rate(res.restored, res.durationMs), restored: res.restored, fetches }
}

// ============================================================================ window/session reads

/** A store of the read benchmarks, opened on its own LevelDB directory. */
interface ReadCase {
  readonly label: string
  /** Operations per second (wall clock). */
  readonly rate: number
  /** Operations per second of process CPU time. */
  readonly cpuRate: number
  /** Operations done. */
  readonly ops: number
  /** Key index state of (one of) the store(s) at the end. */
  readonly stats?: ReturnType<RuntimeWindowStore['keyIndexStats']>
}

const COMMIT_EVERY = 1000
/** Task cache budget of the read benchmarks: Kafka Streams' default `statestore.cache.max.bytes`. */
const BUDGET_BYTES = 10 * 1024 * 1024
/** Deterministic pseudo-random sequence (xorshift32) so both variants see the same operations. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x / 4294967296
  }
}

async function commitStore(s: { prepareCommit(): unknown; commitLocal(): Promise<unknown> }): Promise<void> {
  s.prepareCommit()
  await s.commitLocal()
}

type Variant = Record<string, unknown>

async function openWindow(
  dir: string,
  name: string,
  variant: Variant,
  o: { sizeMs: number; retentionMs: number; duplicates: boolean },
): Promise<RuntimeWindowStore> {
  const s = new RuntimeWindowStore({
    name,
    backend: await LevelDbBackend.open(path.join(dir, name)),
    mode: 'managed',
    budget: new CacheBudget(BUDGET_BYTES),
    windowSizeMs: o.sizeMs,
    retentionMs: o.retentionMs,
    retainDuplicates: o.duplicates,
    ...variant,
  })
  await s.init()
  return s
}

/**
 * Stream-stream join buffer (retainDuplicates, window ±1 s, retention 2 s + 1 min grace): `keys`
 * records written over 60 s of event time and committed; then `lookups` fetchRange(key, t - 1 s,
 * t + 1 s) of the other side's records, half of them hits (a buffered key near its time) and half
 * misses (a key never buffered).
 */
async function joinFetchRange(dir: string, keys: number, lookups: number, variant: Variant, tag: string): Promise<ReadCase[]> {
  const s = await openWindow(dir, `join-${keys}-${tag}`, variant, { sizeMs: 2000, retentionMs: 62_000, duplicates: true })
  const span = 60_000
  const ts = (i: number) => Math.floor((i * span) / keys)
  for (let i = 0; i < keys; i++) {
    await s.put(key(i), ts(i), VALUE)
    if ((i + 1) % 5000 === 0) await commitStore(s)
  }
  await commitStore(s)
  const r = rng(42)
  const out: ReadCase[] = []
  for (const kind of ['hit', 'miss'] as const) {
    let found = 0
    const clock = startClock()
    for (let n = 0; n < lookups; n++) {
      const i = Math.floor(r() * keys)
      const k = kind === 'hit' ? key(i) : key(keys + i)
      for await (const _ of s.fetchRange(k, ts(i) - 1000, ts(i) + 1000)) found++
    }
    out.push({ label: `join fetchRange ${kind}`, ...clock.stop(lookups), ops: lookups, stats: s.keyIndexStats() })
    if (kind === 'hit' ? found < lookups : found > 0) throw new Error(`join ${kind}: found ${found} of ${lookups}`)
  }
  await s.close()
  return out
}

/**
 * Stream-stream join as the processors run it (KStream-KStream join within ±1 s, grace 1 h, the
 * bench's W5 shape): `2 * keys` records in event-time order (1 ms apart), alternating sides, keys
 * uniformly random; per record: fetchRange(key, t - 1 s, t + 1 s) on the other side's buffer, then
 * put into its own — both buffers on one task budget, committing every 1000 records.
 */
async function joinStream(dir: string, keys: number, variant: Variant, tag: string): Promise<ReadCase> {
  const budget = new CacheBudget(BUDGET_BYTES)
  const open = async (side: string) => {
    const s = new RuntimeWindowStore({
      name: `${side}-${keys}-${tag}`,
      backend: await LevelDbBackend.open(path.join(dir, `joinstream-${side}-${keys}-${tag}`)),
      mode: 'managed',
      budget,
      windowSizeMs: 2000,
      retentionMs: 2000 + 3_600_000,
      retainDuplicates: true,
      ...variant,
    })
    await s.init()
    return s
  }
  const sides = [await open('left'), await open('right')] as const
  const r = rng(5)
  const records = 2 * keys
  let matches = 0
  const clock = startClock()
  for (let n = 0; n < records; n++) {
    const own = sides[n & 1]!
    const other = sides[(n & 1) ^ 1]!
    const k = key(Math.floor(r() * keys))
    for await (const _ of other.fetchRange(k, n - 1000, n + 1000)) matches++
    await own.put(k, n, VALUE)
    if ((n + 1) % COMMIT_EVERY === 0) for (const s of sides) await commitStore(s)
  }
  const result = {
    label: `join stream put + fetchRange (${matches} matches)`,
    ...clock.stop(records),
    ops: records,
    stats: sides[0].keyIndexStats(),
  }
  for (const s of sides) await s.close()
  return result
}

/**
 * Window aggregate (tumbling 1 min windows, retention 1 day): `records` records over `keys` keys,
 * event time advancing 10 ms per record; per record the processor's reads and write — read the
 * record's window (`fetchRange(key, start, start)` as time-window-aggregate does, or the point
 * `fetch(key, start)`), then `put` — committing every 1000 records.
 */
async function windowAggregate(
  dir: string,
  keys: number,
  records: number,
  variant: Variant,
  tag: string,
  read: 'fetchRange' | 'fetch',
): Promise<ReadCase> {
  const s = await openWindow(dir, `agg-${read}-${keys}-${tag}`, variant, { sizeMs: 60_000, retentionMs: 86_400_000, duplicates: false })
  const r = rng(7)
  const clock = startClock()
  for (let n = 0; n < records; n++) {
    const k = key(Math.floor(r() * keys))
    const ts = n * 10
    const start = ts - (ts % 60_000)
    let old: Buffer | undefined
    if (read === 'fetch') old = await s.fetch(k, start)
    else for await (const e of s.fetchRange(k, start, start)) old = e.value
    const count = old ? old.readUInt32BE(0) + 1 : 1
    const v = Buffer.alloc(8)
    v.writeUInt32BE(count, 0)
    await s.put(k, start, v)
    if ((n + 1) % COMMIT_EVERY === 0) await commitStore(s)
  }
  const result = { label: `window aggregate ${read} + put`, ...clock.stop(records), ops: records, stats: s.keyIndexStats() }
  await s.close()
  return result
}

/**
 * Session aggregate (gap 5 min, retention 1 day): `records` records over `keys` keys, event time
 * advancing 10 ms per record; per record findSessions(key, t - gap, t + gap), remove the merged
 * sessions, put the merged one — committing every 1000 records.
 */
async function sessionAggregate(dir: string, keys: number, records: number, variant: Variant, tag: string): Promise<ReadCase> {
  const s = new RuntimeSessionStore({
    name: `session-${keys}-${tag}`,
    backend: await LevelDbBackend.open(path.join(dir, `session-${keys}-${tag}`)),
    mode: 'managed',
    budget: new CacheBudget(BUDGET_BYTES),
    retentionMs: 86_400_000,
    ...variant,
  })
  await s.init()
  const gap = 300_000
  const r = rng(11)
  const clock = startClock()
  for (let n = 0; n < records; n++) {
    const k = key(Math.floor(r() * keys))
    const ts = n * 10
    let start = ts
    let end = ts
    let count = 1
    const merged: Array<{ startMs: number; endMs: number }> = []
    for await (const e of s.findSessions(k, ts - gap, ts + gap)) {
      merged.push(e)
      start = Math.min(start, e.startMs)
      end = Math.max(end, e.endMs)
      count += e.value.readUInt32BE(0)
    }
    for (const m of merged) await s.put(k, m.startMs, m.endMs, null)
    const v = Buffer.alloc(8)
    v.writeUInt32BE(count, 0)
    await s.put(k, start, end, v)
    if ((n + 1) % COMMIT_EVERY === 0) await commitStore(s)
  }
  const result = { label: 'session findSessions + merge', ...clock.stop(records), ops: records, stats: s.keyIndexStats() }
  await s.close()
  return result
}

/** Read benchmarks at `keys` keys for one store variant. */
async function readBenches(dir: string, keys: number, variant: Variant, tag: string): Promise<ReadCase[]> {
  const lookups = 20_000
  const records = Math.max(2 * keys, 100_000)
  return [
    ...(await joinFetchRange(dir, keys, lookups, variant, tag)),
    await joinStream(dir, keys, variant, tag),
    await windowAggregate(dir, keys, records, variant, tag, 'fetchRange'),
    await windowAggregate(dir, keys, records, variant, tag, 'fetch'),
    await sessionAggregate(dir, keys, records, variant, tag),
  ]
}

/**
 * The store variants compared by the read benchmarks (label → extra store options): `scan` is
 * the read path before the key index (one LevelDB iterator per live segment and read), `index`
 * the default.
 */
const VARIANTS: ReadonlyArray<readonly [string, Variant]> = [
  ['scan', { keyIndex: false }],
  ['index', {}],
]

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const mode = args.find((a) => a === 'reads' || a === 'writes' || a === 'all') ?? 'all'
  const reps = Number(args.find((a) => a.startsWith('--reps='))?.slice(7) ?? 2)
  const dir = await mkdtemp(path.join(tmpdir(), 'kstreams-state-bench-'))
  try {
    const rawRun = await rawBatchWrites(dir)
    const raw = rawRun.rate
    const lines = [`records: ${N}, value 64 B, key 13 B`, `raw classic-level batch writes (5000/batch): ${raw} rec/s (= 1.00x)`]
    const ratio = (x: number) => `${(x / raw).toFixed(3)}x`
    if (mode !== 'reads') {
      const store = await storeWrites(dir)
      lines.push(
        `store put + commit (one batch per 5000):   ${store.write} rec/s (${ratio(store.write)})`,
        `store getMany, warm (clean LRU):           ${store.warm} keys/s (${ratio(store.warm)})`,
        `store getMany, cold (LevelDB getMany):     ${store.cold} keys/s (${ratio(store.cold)})`,
      )
      const broker = await ensureKafka()
      try {
        const restore = await restoreRate(dir, broker.brokers)
        lines.push(
          `changelog restore (${restore.restored} records, ${restore.fetches} fetches): ${restore.rate} rec/s (${ratio(restore.rate)})`,
        )
      } finally {
        await broker.stop()
      }
    }
    if (mode !== 'writes') {
      // The reference again, best of the runs, in wall-clock and CPU terms.
      let rawBest = rawRun
      for (let i = 1; i < reps; i++) {
        const r = await rawBatchWrites(dir, `raw-${i}`)
        rawBest = { rate: Math.max(rawBest.rate, r.rate), cpuRate: Math.max(rawBest.cpuRate, r.cpuRate) }
      }
      const wallRatio = (x: number) => `${(x / rawBest.rate).toFixed(3)}x`
      const cpuRatio = (x: number) => `${(x / rawBest.cpuRate).toFixed(3)}x`
      lines.push(
        `window/session stores (cache budget ${BUDGET_BYTES / 1024 / 1024} MiB, commit every ${COMMIT_EVERY} records), best of ${reps} alternating runs;`,
        `ratios to raw classic-level batch writes of the same run (best: ${rawBest.rate} rec/s wall, ${rawBest.cpuRate} rec/s of CPU), wall-clock | CPU:`,
      )
      for (const keys of [10_000, 100_000]) {
        const best = new Map<string, ReadCase[]>()
        for (let rep = 0; rep < reps; rep++) {
          const order = rep % 2 === 0 ? VARIANTS : [...VARIANTS].reverse()
          for (const [tag, variant] of order) {
            const cases = await readBenches(dir, keys, variant, `${tag}${rep}`)
            const ref = best.get(VARIANTS[0]![0]) ?? best.get(tag)
            // same operations, same results: e.g. the join's match counts are in the labels
            if (ref)
              cases.forEach((c, i) => {
                if (c.label !== ref[i]!.label) throw new Error(`${tag} disagrees: "${c.label}" vs "${ref[i]!.label}"`)
              })
            const prev = best.get(tag)
            best.set(
              tag,
              prev
                ? prev.map((p, i) => ({
                    ...cases[i]!,
                    rate: Math.max(p.rate, cases[i]!.rate),
                    cpuRate: Math.max(p.cpuRate, cases[i]!.cpuRate),
                  }))
                : cases,
            )
          }
        }
        const first = best.get(VARIANTS[0]![0])!
        for (let i = 0; i < first.length; i++) {
          const cells = VARIANTS.map(([tag]) => {
            const c = best.get(tag)![i]!
            return `${tag} ${wallRatio(c.rate)} | ${cpuRatio(c.cpuRate)}`
          })
          const lastCase = best.get(VARIANTS[VARIANTS.length - 1]![0])![i]!
          const speedup =
            VARIANTS.length > 1
              ? `  after/before ${(lastCase.rate / first[i]!.rate).toFixed(1)}x | ${(lastCase.cpuRate / first[i]!.cpuRate).toFixed(1)}x`
              : ''
          const st = lastCase.stats
          const index = st?.enabled
            ? `  [index: ${st.entries} entries, ${(st.bytes / 1024).toFixed(0)} KiB, covers t >= ${st.coveredFrom}]`
            : ''
          lines.push(`  ${String(keys).padStart(6)} keys  ${first[i]!.label.padEnd(44)} ${cells.join('   ')}${speedup}${index}`)
        }
      }
    }
    process.stdout.write(lines.join('\n') + '\n')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
