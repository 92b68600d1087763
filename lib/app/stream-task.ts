/**
 * An active task (Kafka Streams: `StreamTask`): one sub-topology for one partition. It owns
 * - a {@link PartitionGroup} with one record queue per source topic-partition (filled by the
 *   consumer's `eachBatch`, drained by the client's processing loop),
 * - once initialized ({@link StreamTask.initialize}): a {@link TaskEngine} that deserializes and
 *   pushes records through the processors, a {@link TaskStateManager} with the task's stores and
 *   changelogs, a {@link TaskRecordCollector} for its output and the task's producer (transactional
 *   under exactly-once).
 *
 * Lifecycle: `CREATED → RESTORING → RUNNING → CLOSED` (`CLOSED` also from any state on revocation
 * or when the task migrated); `initialize` is the RESTORING → RUNNING transition. Only RUNNING tasks process. Processing is batched: {@link process}
 * takes up to N records in timestamp order, awaits `engine.prepareBatch` once, then processes them
 * one by one; the consumed offset of each partition advances only after its record (and everything
 * it caused) finished, so a failing record's offset is never committed.
 */
import type { RawRecord, SubtopologyDef, TaskEngine } from '../../topology/engine/types.js'
import { IllegalStateError, ProcessingError, StreamsError } from '../../topology/errors.js'
import type { TaskId } from '../../topology/processor/types.js'
import type { RuntimeTaskMetrics } from '../metrics/streams-metrics.js'
import type { TaskStateManager } from '../state/types.js'
import { PartitionGroup } from './partition-group.js'
import { decodeStreamTime, encodeStreamTime } from './runtime/offset-metadata.js'
import type { TaskRecordCollector } from './record-collector.js'
import { tpKey, type TaskProducer, type TopicPartition, type TransactionalProducer } from './client/types.js'

export type { TopicPartition } from './client/types.js'

export type StreamTaskState = 'CREATED' | 'RESTORING' | 'RUNNING' | 'CLOSED'

/** What a task runs with once initialized. */
export interface TaskResources {
  readonly engine: TaskEngine
  readonly stateManager: TaskStateManager
  readonly collector: TaskRecordCollector
  /** The task's idempotent producer, or its transactional producer under exactly-once. */
  readonly producer: TaskProducer
  /** The same producer when transactional (exactly-once), else undefined. */
  readonly transactional: TransactionalProducer | undefined
}

export interface StreamTaskInit {
  readonly id: string
  readonly taskId: TaskId
  readonly subtopology: SubtopologyDef
  readonly partitions: ReadonlyArray<TopicPartition>
  readonly maxTaskIdleMs: number
  readonly now: number
}

export class StreamTask {
  readonly id: string
  readonly taskId: TaskId
  readonly subtopology: SubtopologyDef
  readonly partitions: ReadonlyArray<TopicPartition>
  readonly group: PartitionGroup
  #state: StreamTaskState = 'CREATED'
  #resources: TaskResources | undefined
  /** Resolves when initialization (state open, restore, engine init) finished or failed. */
  initPromise: Promise<void> | undefined
  /** Aborts a running restoration (on revocation or close). */
  readonly abort = new AbortController()
  /** Next offset to commit per partition key (last processed + 1). */
  readonly consumed = new Map<string, bigint>()
  /** Last committed offset per partition key. */
  readonly committed = new Map<string, bigint>()
  /** The stream-time committed with the offsets (their metadata), -1 before any. */
  committedStreamTime = -1
  /** Records below this offset are dropped on enqueue (already processed / before the committed position). */
  readonly floor = new Map<string, bigint>()
  processedSinceCommit = 0
  commitRequested = false
  /**
   * A punctuator ran or stream-time was advanced without a record since the last commit: its store
   * writes (and the cached updates they cause) are committed at the next commit even when the
   * task processed nothing (Kafka Streams sets `commitNeeded` after a punctuation).
   */
  punctuatedSinceCommit = false
  lastWallClockPunctuation = 0
  /** Wall-clock time (ms) records last arrived for this task (or it started running): the idle advance counts from it. */
  lastInputAt: number
  /** Wall-clock time (ms) of the last idle advance. */
  lastIdleAdvanceAt = 0
  /** The task's sensors (task, processor-node and store metrics); undefined without metrics. */
  metrics: RuntimeTaskMetrics | undefined
  /** Milliseconds this task spent in {@link process} during the thread's current loop iteration. */
  iterationProcessMs = 0
  /**
   * `active-process-ratio`: this task's share (0..1) of the time the thread spent processing its
   * tasks, over the last loop iteration that processed anything (Kafka Streams:
   * `StreamTask#recordProcessTimeRatioAndBufferSize`).
   */
  processRatio = 0
  /** Restoration progress (records, summed over its changelogs) while restoring. */
  restoreProgress: { restored: number; remaining: number; total: number } | undefined
  /** Partitions paused because their queue is full. */
  readonly paused = new Set<string>()
  /** True while {@link process} runs (records taken from the queues are in flight). */
  #processing = false
  /** A record failed: the consumed offsets must stay at the last record processed. */
  #failed = false

  constructor(init: StreamTaskInit) {
    this.id = init.id
    this.taskId = init.taskId
    this.subtopology = init.subtopology
    this.partitions = init.partitions
    // Queues are ordered by the head records' extracted timestamps once the engine exists (Kafka
    // Streams' RecordQueue#headRecordTimestamp); before that nothing is taken from them.
    this.group = new PartitionGroup(init.partitions, init.now, init.maxTaskIdleMs, (r) => this.engine?.headTimestamp?.(r) ?? r.timestamp)
    this.lastInputAt = init.now
  }

  static key(topic: string, partition: number): string {
    return tpKey(topic, partition)
  }

  get state(): StreamTaskState {
    return this.#state
  }

  /** CREATED → RESTORING: initialization (producer, offsets, state, restore) started. */
  markRestoring(): void {
    if (this.#state !== 'CREATED') throw new IllegalStateError(`task ${this.id}: RESTORING from ${this.#state}`)
    this.#state = 'RESTORING'
  }

  /** RESTORING → RUNNING with everything the task runs with. */
  initialize(resources: TaskResources): void {
    if (this.#state !== 'RESTORING') throw new IllegalStateError(`task ${this.id}: RUNNING from ${this.#state}`)
    this.#resources = resources
    this.#state = 'RUNNING'
    this.lastInputAt = Date.now()
  }

  /** Any state → CLOSED (the resources, if any, are closed by the owner). */
  markClosed(): void {
    this.#state = 'CLOSED'
  }

  /** The task's resources; undefined until {@link initialize}. */
  get resources(): TaskResources | undefined {
    return this.#resources
  }

  get engine(): TaskEngine | undefined {
    return this.#resources?.engine
  }

  get stateManager(): TaskStateManager | undefined {
    return this.#resources?.stateManager
  }

  get collector(): TaskRecordCollector | undefined {
    return this.#resources?.collector
  }

  /**
   * Appends fetched records to a partition's queue, dropping those below the floor.
   * @returns the queue size after appending, or -1 if the partition is not this task's.
   */
  enqueue(topic: string, partition: number, records: ReadonlyArray<RawRecord>): number {
    const q = this.group.queue(topic, partition)
    if (!q) return -1
    const floor = this.floor.get(StreamTask.key(topic, partition))
    if (floor !== undefined && records.length > 0 && BigInt(records[0]!.offset) < floor) {
      q.push(records.filter((r) => BigInt(r.offset) >= floor))
    } else {
      q.push(records)
    }
    const last = records[records.length - 1]
    if (last) {
      this.floor.set(StreamTask.key(topic, partition), BigInt(last.offset) + 1n)
      this.lastInputAt = Date.now()
    }
    return q.size
  }

  /**
   * Whether the wall-clock idle advance (`idleAdvanceMs`) should move this task's stream-time at
   * `now`: it is RUNNING, nothing is buffered, every input partition is fetched to its end, no
   * record arrived for `idleMs` and the last advance is `idleMs` (at least 100 ms) ago, and it has a
   * stream-time (a record processed, or one restored from the committed offsets): a task that never
   * saw a record has no window to close, and advancing it would make the first records of a replay
   * started on an idle application late. Marks the advance as done when it answers true.
   */
  idleAdvanceDue(now: number, idleMs: number): boolean {
    if (this.#state !== 'RUNNING' || now - this.lastInputAt < idleMs || now - this.lastIdleAdvanceAt < Math.max(idleMs, 100)) return false
    if ((this.engine?.streamTime() ?? -1) < 0) return false
    if (this.group.size > 0) return false
    for (const q of this.group.queues) if (q.fetchedLag() !== 0n) return false
    this.lastIdleAdvanceAt = now
    return true
  }

  /** Whether there is something to process now. */
  processable(now: number): boolean {
    return this.#state === 'RUNNING' && this.group.processable(now)
  }

  /**
   * Processes up to `max` records in timestamp order. Returns the number processed.
   * @throws StreamsError (with task/processor/topic/partition/offset) when a record fails and the
   *   handler says 'fail'; offsets of records processed before it stay consumed.
   */
  async process(max: number, now: number): Promise<number> {
    const engine = this.engine!
    if (this.group.queues.length > 1 && this.group.size > 0) {
      // The choice among queues deserializes head records (extracted timestamps): fetch their
      // writer schemas first, once per batch.
      try {
        await engine.prepareBatch(this.group.candidates(max))
      } catch (e) {
        this.#failed = true
        throw e
      }
    }
    const records = this.group.take(max, now)
    if (records.length === 0) return 0
    this.#processing = true
    let i = 0
    try {
      try {
        await engine.prepareBatch(records)
      } catch (e) {
        this.#failed = true
        throw e
      }
      for (; i < records.length; i++) {
        const r = records[i]!
        await engine.process(r)
        this.consumed.set(StreamTask.key(r.topic, r.partition), BigInt(r.offset) + 1n)
      }
    } catch (e) {
      if (this.#failed) throw e // prepareBatch
      const r = records[i]!
      // put the unprocessed tail back in front of the queues? No: a failing task is closed; the
      // records are re-fetched from the committed offsets by whoever processes the task next.
      this.#failed = true
      this.processedSinceCommit += i
      if (e instanceof StreamsError) throw e
      throw new ProcessingError(`processing failed: ${(e as Error)?.message ?? String(e)}`, {
        cause: e,
        place: { taskId: this.id, topic: r.topic, partition: r.partition, offset: r.offset },
      })
    } finally {
      this.#processing = false
    }
    this.processedSinceCommit += records.length
    this.advanceDrained()
    return records.length
  }

  /**
   * For every drained partition, moves the consumed offset up to the consumer's fetch position: the
   * offsets in between hold nothing to process (transaction markers, aborted transactional records),
   * and committing past them is what lets the group's lag reach 0 on transactionally written inputs
   * (repartition topics under exactly-once), as Kafka Streams does by committing the consumer's
   * position. Only positions learned from fetches and seeks count (never an assumed reset
   * position), never while records are in flight, never after a record failed.
   * @returns whether a consumed offset moved.
   */
  advanceDrained(): boolean {
    if (this.#state !== 'RUNNING' || this.#processing || this.#failed) return false
    let moved = false
    for (const q of this.group.queues) {
      if (q.size > 0 || q.position === undefined || !q.positionFetched) continue
      const k = StreamTask.key(q.topic, q.partition)
      const c = this.consumed.get(k)
      if (c === undefined || q.position > c) {
        this.consumed.set(k, q.position)
        moved = true
      }
    }
    return moved
  }

  /**
   * Offsets to commit: the partitions that advanced since the last commit, or every partition with
   * a position when the task's stream-time moved since (an idle advance moves it without records),
   * each with the stream-time as metadata (runtime/offset-metadata.ts).
   */
  offsetsToCommit(): Array<{ topic: string; partition: number; offset: string; metadata?: string }> {
    const out: Array<{ topic: string; partition: number; offset: string; metadata?: string }> = []
    const streamTime = this.engine?.streamTime() ?? -1
    const timeMoved = streamTime > this.committedStreamTime
    const metadata = streamTime >= 0 ? { metadata: encodeStreamTime(streamTime) } : {}
    for (const p of this.partitions) {
      const k = StreamTask.key(p.topic, p.partition)
      const c = this.consumed.get(k)
      if (c !== undefined && (timeMoved || c !== this.committed.get(k)))
        out.push({ topic: p.topic, partition: p.partition, offset: c.toString(), ...metadata })
    }
    return out
  }

  /** Marks offsets as committed after a successful commit. */
  markCommitted(offsets: ReadonlyArray<{ topic: string; partition: number; offset: string; metadata?: string }>): void {
    for (const o of offsets) {
      this.committed.set(StreamTask.key(o.topic, o.partition), BigInt(o.offset))
      const t = decodeStreamTime(o.metadata)
      if (t !== undefined && t > this.committedStreamTime) this.committedStreamTime = t
    }
    this.processedSinceCommit = 0
    this.commitRequested = false
    this.punctuatedSinceCommit = false
  }

  /** Whether a commit has anything to do for this task. */
  needsCommit(): boolean {
    if (this.#state !== 'RUNNING') return false
    return (
      this.processedSinceCommit > 0 ||
      this.commitRequested ||
      this.punctuatedSinceCommit ||
      (this.collector?.sentSinceCommit ?? 0) > 0 ||
      this.offsetsToCommit().length > 0
    )
  }
}
