/**
 * A task's record collector (Kafka Streams: `RecordCollectorImpl`): buffers the task's output
 * (sink records, changelog records, dead-letter records) and produces it in batches.
 *
 * - `send()` only appends (the hot path never awaits). When the buffer reaches `flushRecords`
 *   records or `flushBytes` bytes, a `sendBatch` is started in the background; batches of one task
 *   are chained, so they reach Kafka in the order they were collected.
 * - `flush()` sends the rest and awaits everything in flight; the commit path calls it.
 * - `pendingBatches` lets the task loop apply backpressure when the producer falls behind.
 * - Produce results give the end offset per topic-partition (`baseOffset + count`); the commit
 *   path reads the changelog partitions' end offsets from {@link endOffsets} for the checkpoint.
 *
 * The actual sending goes through a {@link BatchSender}: the task's idempotent producer
 * (at-least-once) or the task's transactional producer (exactly-once, the first send begins the
 * transaction).
 */
import type { ProduceMessage as Message, SendResult as RecordMetadata, TopicMessages } from './client/types.js'
import type { OutputRecord, RecordCollector } from '../../topology/engine/types.js'

/** Sends one batch; resolves with kafkajs' per-partition results. */
export type BatchSender = (topicMessages: TopicMessages[]) => Promise<RecordMetadata[]>

export interface CollectorOptions {
  readonly taskId: string
  readonly sender: () => BatchSender
  /** Called for a batch that failed; return the records to count as sent (after per-record handling) or rethrow. */
  readonly onSendError: (error: unknown, records: ReadonlyArray<OutputRecord>) => Promise<void>
  /** @defaultValue 2000 */
  readonly flushRecords?: number
  /**
   * Upper bound of one batch's estimated size (keys, values, header keys and values, plus a
   * per-record overhead): a batch is started BEFORE a record would push the buffer over it, so only
   * a single record larger than this makes a larger batch. kafkajs writes all of a batch's records
   * for one partition as one record batch, which the broker refuses over `message.max.bytes`
   * (default 1048588 bytes).
   * @defaultValue 512 KiB
   */
  readonly flushBytes?: number
}

export class TaskRecordCollector implements RecordCollector {
  #buffer: OutputRecord[] = []
  #bytes = 0
  #firstBufferedAt = 0
  #chain: Promise<void> = Promise.resolve()
  #error: unknown
  #pending = 0
  #sentSinceReset = 0
  readonly #end = new Map<string, bigint>()
  readonly #flushRecords: number
  readonly #flushBytes: number

  constructor(private readonly options: CollectorOptions) {
    this.#flushRecords = options.flushRecords ?? 2000
    this.#flushBytes = options.flushBytes ?? 512 * 1024
  }

  send(record: OutputRecord): void {
    // start a batch BEFORE this record would push it over flushBytes: a batch all in one partition
    // (a changelog) over the broker's message.max.bytes is refused (MESSAGE_TOO_LARGE)
    const size = recordSize(record)
    if (this.#buffer.length > 0 && this.#bytes + size > this.#flushBytes) this.#startBatch()
    if (this.#buffer.length === 0) this.#firstBufferedAt = Date.now()
    this.#buffer.push(record)
    this.#bytes += size
    if (this.#buffer.length >= this.#flushRecords || this.#bytes >= this.#flushBytes) this.#startBatch()
  }

  /**
   * Starts a batch when the oldest buffered record has waited `lingerMs` milliseconds (Kafka
   * Streams' producer `linger.ms`), so that at low input rates output does not wait for the buffer
   * to fill or for the next commit (30 s by default under at-least-once). The task loop calls it
   * after every processing round.
   */
  maybeLinger(nowMs: number, lingerMs: number): void {
    if (this.#buffer.length > 0 && nowMs - this.#firstBufferedAt >= lingerMs) this.#startBatch()
  }

  /** Records buffered, not yet handed to the producer. */
  get buffered(): number {
    return this.#buffer.length
  }

  /** Batches handed to the producer and not yet acknowledged. */
  get pendingBatches(): number {
    return this.#pending
  }

  /** Records produced (acknowledged or in flight) since {@link resetCommitState}. */
  get sentSinceCommit(): number {
    return this.#sentSinceReset + this.#buffer.length
  }

  /** The first send error not yet surfaced, if any (the task loop checks it to fail fast). */
  get error(): unknown {
    return this.#error
  }

  #startBatch(): void {
    if (this.#buffer.length === 0) return
    const batch = this.#buffer
    this.#buffer = []
    this.#bytes = 0
    this.#pending++
    this.#sentSinceReset += batch.length
    this.#chain = this.#chain.then(async () => {
      try {
        if (this.#error !== undefined) return
        try {
          const results = await this.options.sender()(toTopicMessages(batch))
          this.#record(batch, results)
        } catch (e) {
          await this.options.onSendError(e, batch)
        }
      } catch (e) {
        if (this.#error === undefined) this.#error = e
      } finally {
        this.#pending--
      }
    })
  }

  #record(batch: ReadonlyArray<OutputRecord>, results: ReadonlyArray<RecordMetadata>): void {
    // count records per explicit partition; kafkajs reports one entry per topic-partition per request
    const counts = new Map<string, number>()
    let implicit = false
    for (const r of batch) {
      if (r.partition === undefined) {
        implicit = true
        continue
      }
      const k = `${r.topic}\u0000${r.partition}`
      counts.set(k, (counts.get(k) ?? 0) + 1)
    }
    for (const res of results) {
      const k = `${res.topicName}\u0000${res.partition}`
      const n = counts.get(k)
      if (n === undefined && implicit) continue // only explicit partitions (changelogs) need exact ends
      if (res.baseOffset === undefined) continue
      const end = BigInt(res.baseOffset) + BigInt(n ?? 0)
      const prev = this.#end.get(k)
      if (prev === undefined || end > prev) this.#end.set(k, end)
    }
  }

  /** Sends everything buffered and waits for every batch in flight. Throws the first send error. */
  async flush(): Promise<void> {
    this.#startBatch()
    await this.#chain
    if (this.#error !== undefined) {
      const e = this.#error
      throw e
    }
  }

  /** Next offset after the records this collector produced to `topic`/`partition` since the last reset. */
  endOffset(topic: string, partition: number): string | undefined {
    return this.#end.get(`${topic}\u0000${partition}`)?.toString()
  }

  /** End offsets of the given topic-partitions (those written to since the last reset). */
  endOffsets(partitions: ReadonlyArray<{ topic: string; partition: number }>): Map<string, string> {
    const out = new Map<string, string>()
    for (const p of partitions) {
      const e = this.endOffset(p.topic, p.partition)
      if (e !== undefined) out.set(p.topic, e)
    }
    return out
  }

  /** Forgets end offsets and the sent count after a commit. */
  resetCommitState(): void {
    this.#end.clear()
    this.#sentSinceReset = 0
  }

  /** Drops everything buffered (abort) and clears a surfaced error. */
  discard(): void {
    this.#buffer = []
    this.#bytes = 0
    this.#error = undefined
    this.#end.clear()
    this.#sentSinceReset = 0
  }
}

/** Estimated bytes of a record in a produce request (record overhead: varints, attributes, deltas). */
function recordSize(record: OutputRecord): number {
  let n = (record.key?.length ?? 0) + (record.value?.length ?? 0) + 64
  const headers = record.headers as Record<string, unknown> | undefined
  if (headers) {
    for (const k in headers) {
      const v = headers[k]
      n += k.length + 8 + (Array.isArray(v) ? v.reduce((m: number, x: unknown) => m + byteLength(x), 0) : byteLength(v))
    }
  }
  return n
}

function byteLength(v: unknown): number {
  if (v === undefined || v === null) return 0
  if (typeof v === 'string') return Buffer.byteLength(v)
  if (v instanceof Uint8Array) return v.length
  return 16
}

/** Groups output records by topic, in order, as kafkajs messages (timestamps as strings). */
export function toTopicMessages(records: ReadonlyArray<OutputRecord>): TopicMessages[] {
  const byTopic = new Map<string, Message[]>()
  for (const r of records) {
    let list = byTopic.get(r.topic)
    if (!list) byTopic.set(r.topic, (list = []))
    const m: Message = { key: r.key, value: r.value, timestamp: String(r.timestamp), headers: r.headers as Message['headers'] }
    if (r.partition !== undefined) m.partition = r.partition
    list.push(m)
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }))
}
