/**
 * A task's input buffers (Kafka Streams: `PartitionGroup` + `RecordQueue`): one FIFO queue per
 * source topic-partition, and the choice of the next record to process across them.
 *
 * Choice: the queue whose head has the smallest timestamp goes first (stream-time synchronisation
 * across co-partitioned inputs, so a join sees both sides in event-time order). When some queue is
 * empty, the task is not "processable" unless `maxTaskIdleMs` has passed since that queue went
 * empty (then the others go ahead) — or `maxTaskIdleMs` is 0 (never wait). The head timestamp is
 * the record's own timestamp (producer/broker time): custom timestamp extractors run later, inside
 * the engine.
 */
import type { RawRecord } from '../../topology/engine/types.js'

/** A FIFO of raw records with O(1) push/shift (array + head index, compacted lazily). */
export class RecordQueue {
  #items: RawRecord[] = []
  #head = 0
  /** Wall-clock time (ms) when the queue last became empty; undefined while it has records. */
  emptySince: number | undefined

  constructor(readonly topic: string, readonly partition: number, now: number) {
    this.emptySince = now
  }

  get size(): number {
    return this.#items.length - this.#head
  }

  push(records: ReadonlyArray<RawRecord>): void {
    if (records.length === 0) return
    for (const r of records) this.#items.push(r)
    this.emptySince = undefined
  }

  peek(): RawRecord | undefined {
    return this.#head < this.#items.length ? this.#items[this.#head] : undefined
  }

  shift(now: number): RawRecord | undefined {
    if (this.#head >= this.#items.length) return undefined
    const r = this.#items[this.#head]!
    this.#items[this.#head] = undefined as unknown as RawRecord
    this.#head++
    if (this.#head >= this.#items.length) {
      this.#items = []
      this.#head = 0
      this.emptySince = now
    } else if (this.#head > 4096 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    return r
  }

  /** Drops every record with an offset below `offset` (used after seeking to committed offsets). */
  dropBefore(offset: bigint, now: number): number {
    let dropped = 0
    while (this.size > 0 && BigInt(this.peek()!.offset) < offset) {
      this.shift(now)
      dropped++
    }
    return dropped
  }

  clear(now: number): void {
    this.#items = []
    this.#head = 0
    this.emptySince = now
  }
}

/** The queues of one task. */
export class PartitionGroup {
  readonly queues: RecordQueue[]
  readonly #byKey = new Map<string, RecordQueue>()

  constructor(partitions: ReadonlyArray<{ topic: string; partition: number }>, now: number, private readonly maxTaskIdleMs: number) {
    this.queues = partitions.map((p) => new RecordQueue(p.topic, p.partition, now))
    for (const q of this.queues) this.#byKey.set(`${q.topic}:${q.partition}`, q)
  }

  queue(topic: string, partition: number): RecordQueue | undefined {
    return this.#byKey.get(`${topic}:${partition}`)
  }

  /** Total buffered records. */
  get size(): number {
    let n = 0
    for (const q of this.queues) n += q.size
    return n
  }

  /**
   * Whether the next record may be taken now: every queue has data, or the empty ones have been
   * empty for at least `maxTaskIdleMs` (0 = don't wait), and at least one queue has data.
   */
  processable(now: number): boolean {
    let any = false
    let blocked = false
    for (const q of this.queues) {
      if (q.size > 0) any = true
      else if (this.maxTaskIdleMs > 0 && q.emptySince !== undefined && now - q.emptySince < this.maxTaskIdleMs) blocked = true
    }
    return any && !blocked
  }

  /** When the task will become processable by idling out (ms epoch), or undefined. */
  idleDeadline(): number | undefined {
    if (this.maxTaskIdleMs <= 0) return undefined
    let deadline: number | undefined
    let any = false
    for (const q of this.queues) {
      if (q.size > 0) any = true
      else if (q.emptySince !== undefined) deadline = Math.max(deadline ?? 0, q.emptySince + this.maxTaskIdleMs)
    }
    return any ? deadline : undefined
  }

  /**
   * Takes up to `max` records in timestamp order (smallest head first; ties by queue order), stopping
   * when the group stops being processable.
   */
  take(max: number, now: number): RawRecord[] {
    const out: RawRecord[] = []
    if (this.queues.length === 1) {
      const q = this.queues[0]!
      while (out.length < max && q.size > 0) out.push(q.shift(now)!)
      return out
    }
    while (out.length < max && this.processable(now)) {
      let best: RecordQueue | undefined
      for (const q of this.queues) {
        const h = q.peek()
        if (h && (!best || h.timestamp < best.peek()!.timestamp)) best = q
      }
      if (!best) break
      out.push(best.shift(now)!)
    }
    return out
  }
}
