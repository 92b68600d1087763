/**
 * The kafkajs implementation of {@link ChangelogReader}: reading changelog (and global-store
 * source) partitions outside the consumer group (Kafka Streams: the restore consumer,
 * `StoreChangelogReader`, `GlobalStateManagerImpl`). The runtime gets it from
 * `StreamsClient.changelogReader()`.
 *
 * ## Why kafkajs' broker `fetch`, not a consumer
 *
 * kafkajs has no manual partition assignment. Of the two workable designs we chose the internal
 * `Cluster`/`Broker` API of kafkajs (pinned at exactly 2.2.4 in package.json; reached only through
 * ./kafkajs-internals.ts, which checks its shape):
 *
 * - the reader issues Fetch requests itself (isolation level READ_COMMITTED) for exactly the
 *   partition and offset it wants, and uses kafkajs' own `Batch` to drop aborted transactional
 *   records (with the read_committed fix of kafkajs-internals.ts) and control markers: no group, no JoinGroup/SyncGroup round trips, no rebalance
 *   delay, no heartbeats, no committed offsets, nothing for the coordinator to clean up; many
 *   partitions read concurrently over the same connections;
 * - the alternative (a consumer in a private never-committed group with a custom assigner that
 *   hands out exactly the requested partitions, then `seek`) costs a group join (seconds) per
 *   restoration, has to be torn down to stop at an end offset, and leaves empty groups behind.
 *
 * The Cluster is created through the `Kafka` instance the app already has (its private
 * cluster factory, so brokers/SSL/SASL/retry settings are exactly the app's).
 *
 * ## End offsets and termination
 *
 * `endOffsets` uses ListOffsets with READ_COMMITTED: the last stable offset (LSO), not the high
 * watermark. Transaction markers take offsets, and an open transaction keeps the LSO below the
 * high watermark, so "the end" is "the position reached (past markers and aborted records) is
 * >= the LSO read at the start", never "the last record's offset + 1 == high watermark". A fetch
 * that returns nothing visible while the position is below the fetch's own LSO (a batch whose
 * records were all compacted away, a tail of aborted data) is retried once with a larger byte
 * limit and then skipped up to the LSO, so a read never spins on an offset no record will fill.
 *
 * ## Not starving the group member
 *
 * The app's consumer heartbeats from the same event loop. Each fetched batch is at most
 * `maxBytesPerPartition` (decode and apply time stays in the milliseconds), and the reader yields
 * to the event loop (`setImmediate`) after every batch.
 */
import { setImmediate as yieldLoop, setTimeout as sleep } from 'node:timers/promises'
import type { Kafka } from 'kafkajs'
import { ProcessorStateError } from '../../../topology/errors.js'
import type { RawRecord } from '../../../topology/engine/types.js'
import type { ChangelogReader } from '../../state/types.js'
import { classifyError } from '../error-policy.js'
import { tpKey } from './types.js'
import {
  decodeFetchedPartition,
  readCommittedCluster,
  READ_COMMITTED,
  type KafkajsCluster,
  type KafkajsPartitionData,
} from './kafkajs-internals.js'

/** Structured logger (same shape as the app runtime's). */
export interface ReaderLogger {
  error(message: string, extra?: Record<string, unknown>): void
  warn(message: string, extra?: Record<string, unknown>): void
  info(message: string, extra?: Record<string, unknown>): void
  debug(message: string, extra?: Record<string, unknown>): void
}

/** Options of {@link createChangelogReader}. */
export interface ChangelogReaderOptions {
  /** The kafkajs client to read with (its brokers, TLS, SASL, retry settings). */
  readonly kafka: Kafka
  /** Byte limit of one fetch per partition (one batch handed to `onBatch`). @defaultValue 2 MiB */
  readonly maxBytesPerPartition?: number
  /** Long-poll wait of a fetch at the end of an unbounded read (standby, global), ms. @defaultValue 500 */
  readonly maxWaitMs?: number
  /** Retries of retriable broker errors (leader moved, connection lost) before failing. @defaultValue 10 */
  readonly maxRetries?: number
  readonly logger?: ReaderLogger
}

/** Reader statistics (for progress logs and benchmarks). */
export interface ChangelogReaderStats {
  fetches: number
  records: number
}

/** Creates a {@link ChangelogReader} over kafkajs' broker Fetch API (see the module comment). */
export function createChangelogReader(options: ChangelogReaderOptions): ChangelogReader & {
  partitionsFor(topic: string): Promise<number[]>
  readonly stats: ChangelogReaderStats
} {
  return new KafkaChangelogReader(options)
}

/** Whether a read is retried: THE error policy's classification (a migration is not retried here). */
function isRetriable(err: unknown): boolean {
  return classifyError(err) === 'retriable'
}

class KafkaChangelogReader implements ChangelogReader {
  private readonly cluster: KafkajsCluster
  private connecting: Promise<void> | undefined
  private readonly knownTopics = new Set<string>()
  private closed = false
  private readonly maxBytes: number
  private readonly maxWaitMs: number
  private readonly maxRetries: number
  private readonly log: ReaderLogger | undefined
  readonly stats: ChangelogReaderStats = { fetches: 0, records: 0 }

  constructor(options: ChangelogReaderOptions) {
    this.cluster = readCommittedCluster(options.kafka)
    this.maxBytes = options.maxBytesPerPartition ?? 2 * 1024 * 1024
    this.maxWaitMs = options.maxWaitMs ?? 500
    this.maxRetries = options.maxRetries ?? 10
    this.log = options.logger
  }

  private async ready(topics: string[]): Promise<void> {
    if (this.closed) throw new ProcessorStateError('Changelog reader is closed')
    if (!this.connecting) this.connecting = this.cluster.connect()
    await this.connecting
    const fresh = topics.filter((t) => !this.knownTopics.has(t))
    if (fresh.length) {
      await this.cluster.addMultipleTargetTopics(fresh)
      for (const t of fresh) this.knownTopics.add(t)
    }
  }

  /** Runs `fn`, retrying retriable broker errors with a metadata refresh and backoff. */
  private async withRetry<T>(what: string, place: { topic?: string; partition?: number }, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn()
      } catch (err) {
        if (this.closed) throw new ProcessorStateError('Changelog reader is closed', { cause: err, place })
        if (!isRetriable(err) || attempt >= this.maxRetries) {
          throw new ProcessorStateError(`${what} failed`, { cause: err, place, retriable: isRetriable(err) })
        }
        this.log?.debug(`${what}: retrying after ${(err as Error).message}`, { ...place, attempt })
        await sleep(Math.min(100 * 2 ** attempt, 2000))
        await this.cluster.refreshMetadata().catch(() => {})
      }
    }
  }

  async partitionsFor(topic: string): Promise<number[]> {
    return this.withRetry('Reading partitions', { topic }, async () => {
      await this.ready([topic])
      const parts = this.cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId)
      if (parts.length === 0) throw Object.assign(new Error(`Topic ${topic} has no partitions (does it exist?)`), { retriable: true })
      return parts.sort((a, b) => a - b)
    })
  }

  private async listOffsets(
    partitions: ReadonlyArray<{ topic: string; partition: number }>,
    fromBeginning: boolean,
  ): Promise<Map<string, string>> {
    const byTopic = new Map<string, number[]>()
    for (const p of partitions) {
      let l = byTopic.get(p.topic)
      if (!l) byTopic.set(p.topic, (l = []))
      l.push(p.partition)
    }
    return this.withRetry(fromBeginning ? 'Reading start offsets' : 'Reading end offsets (read_committed)', {}, async () => {
      await this.ready([...byTopic.keys()])
      const res = await this.cluster.fetchTopicsOffset(
        [...byTopic].map(([topic, ps]) => ({ topic, fromBeginning, partitions: ps.map((partition) => ({ partition })) })),
      )
      const out = new Map<string, string>()
      for (const t of res) for (const p of t.partitions) out.set(tpKey(t.topic, p.partition), p.offset)
      for (const p of partitions) {
        if (!out.has(tpKey(p.topic, p.partition))) {
          throw Object.assign(new Error(`No offset for ${p.topic}-${p.partition} (unknown topic or partition)`), { retriable: true })
        }
      }
      return out
    })
  }

  /** Last stable offsets, keyed by {@link topicPartitionKey}. */
  endOffsets(partitions: ReadonlyArray<{ topic: string; partition: number }>): Promise<Map<string, string>> {
    return this.listOffsets(partitions, false)
  }

  /** Log start offsets, keyed by {@link topicPartitionKey}. */
  startOffsets(partitions: ReadonlyArray<{ topic: string; partition: number }>): Promise<Map<string, string>> {
    return this.listOffsets(partitions, true)
  }

  async read(
    topic: string,
    partition: number,
    fromOffset: string | undefined,
    untilOffset: string | undefined,
    onBatch: (records: ReadonlyArray<RawRecord>, nextOffset: string) => Promise<void>,
    signal?: AbortSignal,
  ): Promise<void> {
    const place = { topic, partition }
    let position =
      fromOffset !== undefined
        ? BigInt(fromOffset)
        : BigInt((await this.startOffsets([{ topic, partition }])).get(tpKey(topic, partition))!)
    const until = untilOffset !== undefined ? BigInt(untilOffset) : undefined
    let partMaxBytes = this.maxBytes
    let emptyRounds = 0
    const fetchAt = (offset: bigint, maxBytes: number, bounded: boolean): Promise<KafkajsPartitionData> =>
      this.withRetry('Fetching changelog records', { ...place }, async () => {
        await this.ready([topic])
        const leaders = this.cluster.findLeaderForPartitions(topic, [partition])
        const nodeId = Object.keys(leaders)[0]
        if (nodeId === undefined) throw Object.assign(new Error(`No leader for ${topic}-${partition}`), { retriable: true })
        const broker = await this.cluster.findBroker({ nodeId })
        this.stats.fetches++
        const resp = await broker.fetch({
          replicaId: -1,
          isolationLevel: READ_COMMITTED,
          maxWaitTime: bounded ? 100 : this.maxWaitMs,
          minBytes: 1,
          maxBytes,
          topics: [{ topic, partitions: [{ partition, fetchOffset: offset.toString(), maxBytes }] }],
        })
        const found = resp.responses.find((r) => r.topicName === topic)?.partitions.find((p) => p.partition === partition)
        if (!found) throw Object.assign(new Error(`Fetch response lacks ${topic}-${partition}`), { retriable: true })
        return found
      })
    // The next fetch is issued before the current batch is applied (network and decoding overlap
    // the LevelDB write); it is used only if it was for the position the batch ends at.
    let prefetch: { offset: bigint; promise: Promise<KafkajsPartitionData> } | undefined
    while (!signal?.aborted && !this.closed) {
      if (until !== undefined && position >= until) return
      const bounded = until !== undefined
      let pd: KafkajsPartitionData
      try {
        if (prefetch && prefetch.offset === position) pd = await prefetch.promise
        else pd = await fetchAt(position, partMaxBytes, bounded)
        prefetch = undefined
      } catch (err) {
        prefetch = undefined
        const cause = (err as { cause?: { type?: string } }).cause
        if (cause?.type === 'OFFSET_OUT_OF_RANGE') {
          const start = BigInt((await this.startOffsets([place])).get(tpKey(topic, partition))!)
          if (position < start) {
            this.log?.warn(`Changelog ${topic}-${partition}: offset ${position} was deleted, continuing at log start ${start}`, {
              ...place,
            })
            position = start
            continue
          }
          throw new ProcessorStateError(`Offset ${position} is beyond the end of the changelog`, {
            cause: err,
            place: { ...place, offset: position.toString() },
          })
        }
        throw err
      }
      if (signal?.aborted || this.closed) return
      const batch = decodeFetchedPartition(topic, position.toString(), pd)
      const within = batch.messagesWithinOffset
      let next = within.length ? BigInt(within[within.length - 1]!.offset) + 1n : position
      let messages = batch.messages
      if (until !== undefined && next > until) {
        messages = messages.filter((m) => BigInt(m.offset) < until)
        next = until
      }
      if (next === position) {
        const lso = BigInt(pd.lastStableOffset)
        const visibleEnd = lso >= 0n ? lso : BigInt(pd.highWatermark)
        if (visibleEnd > position) {
          // Something sits between position and the LSO that decodes to no record.
          emptyRounds++
          if (emptyRounds === 1 && partMaxBytes < 64 * 1024 * 1024) {
            partMaxBytes *= 4
          } else {
            const target = until !== undefined && until < visibleEnd ? until : visibleEnd
            this.log?.warn(`Changelog ${topic}-${partition}: no visible record in [${position}, ${target}), skipping ahead`, { ...place })
            position = target
            emptyRounds = 0
            partMaxBytes = this.maxBytes
            await onBatch([], position.toString())
          }
          continue
        }
        if (bounded) {
          // The end we were asked to reach is not visible (topic truncated or recreated?).
          emptyRounds++
          if (emptyRounds > 20) {
            throw new ProcessorStateError(`Changelog end ${until} is not reachable: the partition's last stable offset is ${visibleEnd}`, {
              place: { ...place, offset: position.toString() },
            })
          }
          await sleep(100)
        }
        continue
      }
      emptyRounds = 0
      partMaxBytes = this.maxBytes
      const records: RawRecord[] = new Array(messages.length)
      for (let i = 0; i < messages.length; i++) {
        const m = messages[i]!
        records[i] = {
          topic,
          partition,
          offset: m.offset,
          key: m.key,
          value: m.value,
          timestamp: Number(m.timestamp),
          headers: m.headers as RawRecord['headers'],
        }
      }
      position = next
      this.stats.records += records.length
      if (until === undefined || position < until) {
        const promise = fetchAt(position, partMaxBytes, bounded)
        promise.catch(() => {}) // awaited (and rethrown) by the next iteration
        prefetch = { offset: position, promise }
      }
      await onBatch(records, position.toString())
      await yieldLoop()
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.connecting) await this.cluster.disconnect().catch(() => {})
  }
}
