/**
 * A task's input buffers (Kafka Streams: `PartitionGroup` + `RecordQueue`): one FIFO queue per
 * source topic-partition, the choice of the next record to process across them, and what is known
 * about each partition's fetch position and end offset (its lag).
 *
 * Choice: the queue whose head has the smallest timestamp goes first (stream-time synchronisation
 * across co-partitioned inputs, so a join sees both sides in event-time order). The head timestamp
 * is the EXTRACTED timestamp (Kafka Streams: `RecordQueue#headRecordTimestamp`, which runs the
 * source's `TimestampExtractor` on the deserialized head record): the group is given a
 * {@link HeadTimestamp} function, normally `engine.headTimestamp` (TaskEngine), and calls it
 * once per head record (the result is cached until the head changes). Without one, the record's own
 * (producer/broker) timestamp is used.
 *
 * ## When a task with an empty partition may go ahead (KIP-695, `maxTaskIdleMs`)
 * For every EMPTY queue of a task with several input partitions:
 * - its lag (end offset − next offset to fetch) is unknown, or positive: there are records on the
 *   broker we have not fetched yet, so the task waits for them — processing the other partitions
 *   now would move stream-time past records that are merely not fetched yet (a catching-up join
 *   would drop the other side's records as late);
 * - its lag is 0 (fetched up to the end): the task waits `maxTaskIdleMs` (from the moment this was
 *   first seen) for new records to be produced, then processes the other partitions anyway
 *   ("enforced processing"); with `maxTaskIdleMs` 0 it goes ahead at once;
 * - `maxTaskIdleMs` -1 disables all waiting: any buffered record may be processed.
 * The lag comes from the consumer's fetches (high watermark and last offset of each batch, see
 * {@link RecordQueue.onFetched}) and, where those say nothing (an empty partition never returns a
 * batch; an open transaction keeps the high watermark above what read_committed can fetch), from
 * the last stable offset read with ListOffsets ({@link RecordQueue.onEndOffset}).
 */
import type { RawRecord } from '../../topology/engine/types.js'
import type { CountRecorder } from '../metrics/types.js'

/**
 * The event time by which a queue's head record is ordered: its extracted timestamp (Kafka Streams
 * runs the source's `TimestampExtractor` on the head). Pass `engine.headTimestamp.bind(engine)`.
 * Must not throw; an invalid timestamp (negative) should fall back to the record's own timestamp
 * (the engine applies the invalid-timestamp policy when it processes the record).
 */
export type HeadTimestamp = (record: RawRecord) => number

/** A FIFO of raw records with O(1) push/shift (array + head index, compacted lazily), and the partition's fetch position and end. */
export class RecordQueue {
  #items: RawRecord[] = []
  #head = 0
  /** Extracted timestamp of the head record, computed once per head; undefined = not yet. */
  #headTs: number | undefined
  /** Next offset the consumer fetches from this partition, as far as we know; undefined = unknown. */
  position: bigint | undefined
  /** Whether {@link position} comes from a fetch or a seek (not from an assumed auto-reset position). */
  positionFetched = false
  /** Last known end of the partition (a batch's high watermark, or the last stable offset); undefined = unknown. */
  endOffset: bigint | undefined
  /** Wall-clock time (ms) when {@link endOffset} was learned. */
  endKnownAt = 0
  /** Bumped on every change of position or end: an end offset read before a change is stale. */
  version = 0
  /** KIP-695: when an empty queue with zero lag stops holding the task back (ms epoch); undefined while not idling. */
  idleDeadline: number | undefined

  constructor(
    readonly topic: string,
    readonly partition: number,
  ) {}

  get size(): number {
    return this.#items.length - this.#head
  }

  push(records: ReadonlyArray<RawRecord>): void {
    for (const r of records) this.#items.push(r)
  }

  peek(): RawRecord | undefined {
    return this.#head < this.#items.length ? this.#items[this.#head] : undefined
  }

  /**
   * Timestamp of the head record by which the group orders queues: `extract(head)`, computed once
   * per head record, or the record's own timestamp without `extract`. Undefined when empty.
   */
  headTimestamp(extract?: HeadTimestamp): number | undefined {
    const h = this.peek()
    if (h === undefined) return undefined
    if (extract === undefined) return h.timestamp
    return (this.#headTs ??= extract(h))
  }

  /** Up to `n` records from the front, in order (not removed). */
  front(n: number): RawRecord[] {
    return this.#items.slice(this.#head, Math.min(this.#items.length, this.#head + n))
  }

  shift(): RawRecord | undefined {
    if (this.#head >= this.#items.length) return undefined
    this.#headTs = undefined
    const r = this.#items[this.#head]!
    this.#items[this.#head] = undefined as unknown as RawRecord
    this.#head++
    if (this.#head >= this.#items.length) {
      this.#items = []
      this.#head = 0
    } else if (this.#head > 4096 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    return r
  }

  /** Drops every record with an offset below `offset` (used after seeking to committed offsets). */
  dropBefore(offset: bigint): number {
    let dropped = 0
    while (this.size > 0 && BigInt(this.peek()!.offset) < offset) {
      this.shift()
      dropped++
    }
    return dropped
  }

  clear(): void {
    this.#items = []
    this.#head = 0
    this.#headTs = undefined
  }

  /**
   * A fetch returned offsets up to `lastOffset` (control records and aborted records included) and
   * the partition's high watermark `end`: the consumer's next fetch starts at `lastOffset + 1`.
   */
  onFetched(lastOffset: bigint, end: bigint | undefined, now: number): void {
    this.position = lastOffset + 1n
    this.positionFetched = true
    if (end !== undefined) {
      this.endOffset = end
      this.endKnownAt = now
    }
    this.version++
  }

  /**
   * A fetch returned offsets `first..last` of which none is for us (transaction markers, aborted
   * records; kafkajs skips such a batch without calling eachBatch). Applied only when the range
   * reaches from at or below our position to beyond it: those offsets certainly hold nothing to
   * process, whichever fetch they came from.
   * @returns whether the position moved.
   */
  onSkipped(first: bigint, last: bigint, end: bigint | undefined, now: number): boolean {
    if (this.position === undefined || !this.positionFetched || first > this.position || last + 1n <= this.position) return false
    this.position = last + 1n
    if (end !== undefined && end >= this.position) {
      this.endOffset = end
      this.endKnownAt = now
    }
    this.version++
    return true
  }

  /** The consumer seeks to `position` (undefined: unknown, e.g. the auto-reset position); the end is unknown again. */
  onSeek(position: bigint | undefined): void {
    this.position = position
    this.positionFetched = position !== undefined
    this.endOffset = undefined
    this.endKnownAt = 0
    this.version++
  }

  /**
   * The last stable offset read with ListOffsets when the queue's state was `version`; ignored when
   * a fetch or seek happened since (its knowledge is newer). When the position is unknown (no
   * committed offset, nothing fetched) or below the log start `logStart` (retention deleted it: the
   * consumer resets), `resetPosition` (the log start for an `earliest` reset, the end for `latest`)
   * stands in for it.
   * @returns whether it was applied.
   */
  onEndOffset(end: bigint, version: number, now: number, resetPosition?: bigint, logStart?: bigint): boolean {
    if (version !== this.version) return false
    if (resetPosition !== undefined && (this.position === undefined || (logStart !== undefined && this.position < logStart))) {
      this.position = resetPosition
      this.positionFetched = false
    }
    this.endOffset = end
    this.endKnownAt = now
    return true
  }

  /** Records on the broker not fetched yet (≥ 0), or undefined when unknown. */
  fetchedLag(): bigint | undefined {
    if (this.position === undefined || this.endOffset === undefined) return undefined
    return this.endOffset > this.position ? this.endOffset - this.position : 0n
  }
}

/** Why a task with buffered records does not process (see {@link PartitionGroup.blockedBy}). */
export interface Blocker {
  readonly queue: RecordQueue
  /** 'lag': unknown or positive lag (waiting for a fetch); 'idle': zero lag, waiting until `queue.idleDeadline`. */
  readonly reason: 'lag' | 'idle'
}

/** The queues of one task. */
export class PartitionGroup {
  readonly queues: RecordQueue[]
  readonly #byKey = new Map<string, RecordQueue>()
  /**
   * The task's `enforced-processing-rate/-total` sensor (DEBUG): counts each record taken while an
   * empty partition had idled out (Kafka Streams records it where `readyToProcess` goes ahead
   * with empty partitions); undefined: not counted.
   */
  enforcedProcessing: CountRecorder | undefined
  /** Set by {@link blockedBy}: an empty queue stopped holding the task back because its idle time ran out. */
  #idledOut = false

  /**
   * @param maxTaskIdleMs KIP-695 `max.task.idle.ms`: -1 never waits for empty partitions; 0 waits
   *   only while an empty partition has unfetched records (or unknown lag); > 0 also waits that long
   *   for new records on a caught-up empty partition.
   * @param headTimestamp the extracted timestamp of a head record (see {@link HeadTimestamp});
   *   undefined = order by the records' own timestamps
   */
  constructor(
    partitions: ReadonlyArray<{ topic: string; partition: number }>,
    _now: number,
    private readonly maxTaskIdleMs: number,
    private readonly headTimestamp?: HeadTimestamp,
  ) {
    this.queues = partitions.map((p) => new RecordQueue(p.topic, p.partition))
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
   * Whether the next record may be taken now (Kafka Streams `PartitionGroup.readyToProcess`):
   * some queue has records, and every empty queue is known to be fetched to its end and has idled
   * for `maxTaskIdleMs` (see the module comment). Starts an empty caught-up queue's idle period.
   */
  processable(now: number): boolean {
    return this.size > 0 && this.blockedBy(now) === undefined
  }

  /**
   * The first empty queue that holds the task back at `now`, or undefined when none does. Sets
   * (or clears) the queues' idle deadlines as a side effect, like Kafka Streams does.
   */
  blockedBy(now: number): Blocker | undefined {
    this.#idledOut = false
    if (this.queues.length === 1 || this.maxTaskIdleMs < 0) return undefined
    let blocker: Blocker | undefined
    for (const q of this.queues) {
      if (q.size > 0) {
        q.idleDeadline = undefined
        continue
      }
      const lag = q.fetchedLag()
      if (lag === undefined || lag > 0n) {
        q.idleDeadline = undefined
        blocker ??= { queue: q, reason: 'lag' }
        continue
      }
      q.idleDeadline ??= now + this.maxTaskIdleMs
      if (now < q.idleDeadline) blocker ??= { queue: q, reason: 'idle' }
      else this.#idledOut = true
    }
    return blocker
  }

  /** When the task will become processable by idling out (ms epoch): the latest pending idle deadline, or undefined. */
  idleDeadline(): number | undefined {
    let deadline: number | undefined
    for (const q of this.queues) if (q.size === 0 && q.idleDeadline !== undefined) deadline = Math.max(deadline ?? 0, q.idleDeadline)
    return deadline
  }

  /**
   * The records a {@link take} of `max` could return: up to `max` from the front of every queue.
   * The task prepares their deserialization (schema lookups) before taking, so that the head
   * timestamps are extracted from records that can be deserialized.
   */
  candidates(max: number): RawRecord[] {
    if (this.queues.length === 1) return this.queues[0]!.front(max)
    const out: RawRecord[] = []
    for (const q of this.queues) for (const r of q.front(max)) out.push(r)
    return out
  }

  /**
   * Takes up to `max` records in timestamp order (smallest extracted head timestamp first, Kafka
   * Streams' `PartitionGroup#nextRecord`; ties by queue order), stopping when the group stops being
   * processable.
   */
  take(max: number, now: number): RawRecord[] {
    const out: RawRecord[] = []
    if (this.queues.length === 1) {
      const q = this.queues[0]!
      while (out.length < max && q.size > 0) out.push(q.shift()!)
      return out
    }
    let enforced = 0
    while (out.length < max && this.processable(now)) {
      if (this.#idledOut) enforced++
      let best: RecordQueue | undefined
      let bestTs = 0
      for (const q of this.queues) {
        const ts = q.headTimestamp(this.headTimestamp)
        if (ts !== undefined && (!best || ts < bestTs)) {
          best = q
          bestTs = ts
        }
      }
      if (!best) break
      out.push(best.shift()!)
    }
    if (enforced > 0) this.enforcedProcessing?.record(enforced)
    return out
  }
}
