/**
 * State runtime micro-benchmark (not a test): numbers as ratios to raw classic-level batch writes
 * measured in the same run, on the same disk.
 *
 *   npx tsx bench/state-bench.ts [records=200000]
 *
 * Measures:
 * 1. raw classic-level: `batch()` of 5,000 puts → records/s (the reference);
 * 2. store write path: 200k puts into a runtime key-value store + prepareCommit + commitLocal;
 * 3. cached reads: getMany over committed keys (clean LRU) and cold (LevelDB getMany);
 * 4. changelog restore: a 200k-record compacted changelog on the local broker restored into a
 *    fresh task (restoreTask → ChangelogReader → restoreBatch) → records/s.
 * Uses KAFKA_BROKERS or starts/reuses the local broker (scripts/local-kafka.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { ClassicLevel } from 'classic-level'
import kafkajs from 'kafkajs'
import { ensureKafka } from '../scripts/local-kafka.js'
import { LevelDbBackend } from '../lib/state/backend.js'
import { CacheBudget } from '../lib/state/cache.js'
import { RuntimeKeyValueStore } from '../lib/state/stores.js'
import { createChangelogReader } from '../lib/state/changelog-reader.js'
import { restoreTask } from '../lib/state/restore.js'
import { createTaskStateManager } from '../lib/state/task-state-manager.js'
import type { StoreDef } from '../topology/state/types.js'

const N = Number(process.argv[2] ?? 200_000)
const VALUE = Buffer.alloc(64, 0x61)
const key = (i: number) => Buffer.from(`key-${String(i).padStart(9, '0')}`)

function rate(n: number, ms: number): number {
  return Math.round((n / ms) * 1000)
}

async function rawBatchWrites(dir: string): Promise<number> {
  const db = new ClassicLevel<Buffer, Buffer>(path.join(dir, 'raw'), { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  await db.open()
  const t = performance.now()
  for (let i = 0; i < N; i += 5000) {
    const b = db.batch()
    for (let j = i; j < Math.min(N, i + 5000); j++) b.put(key(j), VALUE)
    await b.write()
  }
  const r = rate(N, performance.now() - t)
  await db.close()
  return r
}

async function storeWrites(dir: string): Promise<{ write: number; warm: number; cold: number }> {
  const kv = new RuntimeKeyValueStore({ name: 'kv', backend: await LevelDbBackend.open(path.join(dir, 'store')), mode: 'managed', budget: new CacheBudget(256 * 1024 * 1024) })
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
  const cold = new RuntimeKeyValueStore({ name: 'kv', backend: await LevelDbBackend.open(path.join(dir, 'store')), mode: 'managed', cachingEnabled: false })
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
  await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }], waitForLeaders: true })
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  for (let i = 0; i < N; i += 10_000) {
    await producer.send({ topic, messages: Array.from({ length: Math.min(10_000, N - i) }, (_, j) => ({ key: key(i + j), value: VALUE, partition: 0 })) })
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

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'kstreams-state-bench-'))
  try {
    const raw = await rawBatchWrites(dir)
    const store = await storeWrites(dir)
    const broker = await ensureKafka()
    let restore: { rate: number; restored: number; fetches: number } | undefined
    try {
      restore = await restoreRate(dir, broker.brokers)
    } finally {
      await broker.stop()
    }
    const lines = [
      `records: ${N}, value 64 B, key 13 B`,
      `raw classic-level batch writes (5000/batch): ${raw} rec/s (= 1.00x)`,
      `store put + commit (one batch per 5000):   ${store.write} rec/s (${(store.write / raw).toFixed(2)}x)`,
      `store getMany, warm (clean LRU):           ${store.warm} keys/s (${(store.warm / raw).toFixed(2)}x)`,
      `store getMany, cold (LevelDB getMany):     ${store.cold} keys/s (${(store.cold / raw).toFixed(2)}x)`,
      `changelog restore (${restore.restored} records, ${restore.fetches} fetches): ${restore.rate} rec/s (${(restore.rate / raw).toFixed(2)}x)`,
    ]
    process.stdout.write(lines.join('\n') + '\n')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
