/**
 * The physical limits, each in its own process:
 * - W0a: kafkajs consume-only (counts records, touches nothing);
 * - W0b: kafkajs consume → produce pipe, at-least-once (produce, await acks, then commit offsets);
 * - W0c: the same pipe in transactions (`sendOffsets` + commit every `commitIntervalMs`);
 * - W0d: classic-level chained-batch writes of the same key/value sizes.
 *
 * Invoked by bench/run.ts as `node --import tsx bench/workers/raw.ts '<json RawArgs>'`.
 */
import path from 'node:path'
import { rm } from 'node:fs/promises'
import type { EachBatchPayload, Transaction } from 'kafkajs'
import { ClassicLevel } from 'classic-level'
import { kafkaClient } from '../lib/kafka.js'
import { emit, onStopRequest } from '../lib/proc.js'
import { WorkerMetrics } from '../lib/worker-metrics.js'
import { keyName, valueOf } from '../lib/data.js'

export interface RawArgs {
  workload: 'W0a' | 'W0b' | 'W0c' | 'W0d'
  brokers: string
  inTopic: string
  outTopic: string
  groupId: string
  partitions: number
  /** W0a/W0d: records to consume / write before `done`. Pipes run until stopped. */
  records: number
  keys: number
  commitIntervalMs: number
  stateDir: string
  /** W0d: puts per batch. */
  batchSize?: number
}

const args = JSON.parse(process.argv[2] ?? '{}') as RawArgs
const metrics = new WorkerMetrics()
let stopping: (() => Promise<void>) | undefined

onStopRequest(() => {
  void (async () => {
    try {
      await metrics.writeProfile().catch(() => {})
      await stopping?.()
    } finally {
      emit({ type: 'stats', ...metrics.stats() })
      process.exit(0)
    }
  })()
})

async function main(): Promise<void> {
  switch (args.workload) {
    case 'W0a':
      return consumeOnly()
    case 'W0b':
      return pipe()
    case 'W0c':
      return transactionalPipe()
    case 'W0d':
      return levelWrites()
  }
}

function consumer(extra: { readUncommitted?: boolean } = {}) {
  const kafka = kafkaClient(args.brokers, args.groupId)
  return {
    kafka,
    consumer: kafka.consumer({ groupId: args.groupId, readUncommitted: extra.readUncommitted ?? false }),
  }
}

async function consumeOnly(): Promise<void> {
  const { consumer: c } = consumer()
  await c.connect()
  stopping = () => c.disconnect()
  await c.subscribe({ topics: [args.inTopic], fromBeginning: true })
  c.on(c.events.GROUP_JOIN, () => emit({ type: 'ready', t: Date.now() }))
  let count = 0
  await c.run({
    autoCommit: false,
    partitionsConsumedConcurrently: args.partitions,
    eachBatch: async ({ batch }) => {
      metrics.first()
      count += batch.messages.length
      if (count >= args.records) emit({ type: 'done', t: Date.now(), count })
    },
  })
}

/** Fetched batches a pipe keeps in flight (being produced) before it stops taking batches. */
const PIPE_IN_FLIGHT = 8
/** Records per produce request (well under the broker's 1 MB `message.max.bytes`). */
const SEND_SLICE = 4_000

/**
 * W0b: the fastest at-least-once pipe kafkajs allows without tricks: each fetched batch is sent
 * without waiting for the previous send (up to {@link PIPE_IN_FLIGHT} in flight), and every
 * `commitIntervalMs` the offsets are committed up to where EVERY earlier send of that partition
 * has been acknowledged (acks=all).
 */
async function pipe(): Promise<void> {
  const { kafka, consumer: c } = consumer()
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await Promise.all([c.connect(), producer.connect()])
  const inFlight = new Set<Promise<void>>()
  const chains = new Map<number, Promise<void>>()
  const acked = new Map<number, bigint>()
  let dirty = false
  const commit = async () => {
    if (!dirty) return
    dirty = false
    const partitions = [...acked].map(([partition, offset]) => ({ topic: args.inTopic, partition, offset: offset.toString() }))
    await c.commitOffsets(partitions)
  }
  const timer = setInterval(() => void commit().catch(() => {}), args.commitIntervalMs)
  stopping = async () => {
    clearInterval(timer)
    await Promise.all(inFlight)
    await commit().catch(() => {})
    await c.disconnect()
    await producer.disconnect()
  }
  await c.subscribe({ topics: [args.inTopic], fromBeginning: true })
  c.on(c.events.GROUP_JOIN, () => emit({ type: 'ready', t: Date.now() }))
  await c.run({
    autoCommit: false,
    partitionsConsumedConcurrently: args.partitions,
    eachBatch: async ({ batch }: EachBatchPayload) => {
      if (batch.messages.length === 0) return
      metrics.first()
      const partition = batch.partition
      const next = BigInt(batch.lastOffset()) + 1n
      // A fetched batch can exceed the broker's 1 MB request limit once re-encoded: send in slices.
      const messages = batch.messages.map((m) => ({ key: m.key, value: m.value, timestamp: m.timestamp }))
      const slices: Array<Promise<unknown>> = []
      for (let i = 0; i < messages.length; i += SEND_SLICE) {
        slices.push(producer.send({ topic: args.outTopic, acks: -1, messages: messages.slice(i, i + SEND_SLICE) }))
      }
      const sent = Promise.all(slices)
      // Acknowledged in partition order: an offset is committable once every earlier send of the
      // partition is acknowledged too.
      const chained = (chains.get(partition) ?? Promise.resolve())
        .then(() => sent)
        .then(() => {
          acked.set(partition, next)
          dirty = true
        })
      chained.catch((err: unknown) => {
        emit({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) })
      })
      chains.set(partition, chained)
      inFlight.add(chained)
      void chained.finally(() => inFlight.delete(chained))
      while (inFlight.size >= PIPE_IN_FLIGHT) await Promise.race(inFlight)
    },
  })
}

async function transactionalPipe(): Promise<void> {
  const { kafka, consumer: c } = consumer({ readUncommitted: false })
  const producer = kafka.producer({
    allowAutoTopicCreation: false,
    transactionalId: `${args.groupId}-tx`,
    idempotent: true,
    maxInFlightRequests: 1,
  })
  await Promise.all([c.connect(), producer.connect()])

  // One transaction at a time; the commit timer and the batch handler take turns on a chain.
  let chain: Promise<void> = Promise.resolve()
  const serial = (fn: () => Promise<void>) => (chain = chain.then(fn, fn))
  let txn: Transaction | undefined
  let txnStarted = 0
  let pending = new Map<number, string>()

  // Sends of the open transaction, awaited before its offsets and commit (kafkajs keeps one
  // request in flight per connection for a transactional producer; not awaiting each send lets
  // the consumer fetch meanwhile).
  let sends: Array<Promise<unknown>> = []
  const commit = async () => {
    if (!txn) return
    await Promise.all(sends)
    sends = []
    const offsets = [...pending].map(([partition, offset]) => ({ partition, offset }))
    if (offsets.length > 0) {
      await txn.sendOffsets({ consumerGroupId: args.groupId, topics: [{ topic: args.inTopic, partitions: offsets }] })
    }
    await txn.commit()
    txn = undefined
    pending = new Map()
  }
  const timer = setInterval(
    () => {
      void serial(async () => {
        if (txn && Date.now() - txnStarted >= args.commitIntervalMs) await commit()
      })
    },
    Math.max(10, Math.floor(args.commitIntervalMs / 4)),
  )

  stopping = async () => {
    clearInterval(timer)
    await c.disconnect()
    await serial(commit)
    await producer.disconnect()
  }
  await c.subscribe({ topics: [args.inTopic], fromBeginning: true })
  c.on(c.events.GROUP_JOIN, () => emit({ type: 'ready', t: Date.now() }))
  await c.run({
    autoCommit: false,
    partitionsConsumedConcurrently: args.partitions,
    eachBatch: async ({ batch, resolveOffset }: EachBatchPayload) => {
      if (batch.messages.length === 0) return
      metrics.first()
      await serial(async () => {
        if (!txn) {
          txn = await producer.transaction()
          txnStarted = Date.now()
        }
        const messages = batch.messages.map((m) => ({ key: m.key, value: m.value, timestamp: m.timestamp }))
        for (let i = 0; i < messages.length; i += SEND_SLICE) {
          const sent = txn.send({ topic: args.outTopic, messages: messages.slice(i, i + SEND_SLICE) })
          sent.catch(() => {}) // surfaced by the Promise.all below / in commit()
          sends.push(sent)
        }
        if (sends.length >= PIPE_IN_FLIGHT) {
          await Promise.all(sends)
          sends = []
        }
        const next = (BigInt(batch.lastOffset()) + 1n).toString()
        pending.set(batch.partition, next)
        if (Date.now() - txnStarted >= args.commitIntervalMs) await commit()
      })
      resolveOffset(batch.lastOffset())
    },
  })
}

async function levelWrites(): Promise<void> {
  const dir = path.join(args.stateDir, 'w0d')
  await rm(dir, { recursive: true, force: true })
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  await db.open()
  stopping = () => db.close()
  const batchSize = args.batchSize ?? 5_000
  // Build the records before timing, like the other workloads' preload.
  const keys = new Array<Buffer>(args.records)
  const values = new Array<Buffer>(args.records)
  for (let i = 0; i < args.records; i++) {
    keys[i] = Buffer.from(keyName(i % args.keys))
    values[i] = Buffer.from(valueOf(i, args.keys))
  }
  emit({ type: 'ready', t: Date.now() })
  metrics.first()
  for (let from = 0; from < args.records; from += batchSize) {
    const batch = db.batch()
    const to = Math.min(args.records, from + batchSize)
    for (let i = from; i < to; i++) batch.put(keys[i]!, values[i]!)
    await batch.write()
  }
  const end = Date.now()
  // Verification (untimed): every distinct key is there.
  let stored = 0
  for await (const _key of db.keys()) stored++
  emit({ type: 'done', t: end, count: args.records, storedKeys: stored })
}

main().catch((err: unknown) => {
  emit({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) })
  process.exit(1)
})
