/**
 * The Processor API (Kafka Streams: `org.apache.kafka.streams.processor.api`).
 *
 * A processor receives one {@link StreamRecord} at a time and may forward records to its children,
 * read and write its connected state stores, and schedule punctuators. Every DSL operation is
 * a processor too, so DSL topologies and hand-written ones run the same way, under the real
 * runtime (lib/) and under the `TopologyTestDriver`.
 */
import type { Headers, Serde } from '../serde.js'
import type { StateStore } from '../state/types.js'
import type { ProcessorNodeMetrics } from '../engine/metrics.js'

/**
 * A record flowing through a topology (Kafka Streams: `org.apache.kafka.streams.processor.api.Record`;
 * named `StreamRecord` so that it does not shadow TypeScript's built-in `Record`). Timestamps are
 * epoch milliseconds.
 */
export interface StreamRecord<K, V> {
  readonly key: K
  readonly value: V
  /** Event time, milliseconds since the epoch. */
  readonly timestamp: number
  readonly headers: Headers
}

/** Builds a record; `headers` default to `{}`. */
export function record<K, V>(key: K, value: V, timestamp: number, headers: Headers = {}): StreamRecord<K, V> {
  return { key, value, timestamp, headers }
}

/** Where the record being processed came from. Absent for records created by a punctuator. */
export interface RecordMetadata {
  readonly topic: string
  readonly partition: number
  readonly offset: string
}

/**
 * Task id `<subtopologyId>_<partition>` (Kafka Streams: `TaskId`).
 */
export interface TaskId {
  readonly subtopology: number
  readonly partition: number
}

/** Formats a task id as `<subtopology>_<partition>`. */
export function taskIdString(id: TaskId): string {
  return `${id.subtopology}_${id.partition}`
}

/** Parses `<subtopology>_<partition>`. Throws on malformed input. */
export function parseTaskId(s: string): TaskId {
  const m = /^(\d+)_(\d+)$/.exec(s)
  if (!m) throw new Error(`malformed task id '${s}', expected <subtopology>_<partition>`)
  return { subtopology: Number(m[1]), partition: Number(m[2]) }
}

/** Punctuation time base (Kafka Streams: `PunctuationType`). */
export type PunctuationType = 'STREAM_TIME' | 'WALL_CLOCK_TIME'

/** A scheduled callback; gets the punctuation timestamp in milliseconds. */
export type Punctuator = (timestamp: number) => void | Promise<void>

/** Handle to cancel a scheduled punctuator. */
export interface Cancellable {
  cancel(): void
}

/**
 * What a processor sees of its task (Kafka Streams: `api.ProcessorContext`).
 */
export interface ProcessorContext<KForward = unknown, VForward = unknown> {
  readonly applicationId: string
  readonly taskId: TaskId
  /** Metadata of the input record being processed, or `undefined` inside a punctuator. */
  recordMetadata(): RecordMetadata | undefined
  /** The task's stream-time: the largest timestamp processed so far, or -1 before any record. */
  currentStreamTimeMs(): number
  /** Wall-clock time (the driver's virtual clock under test), in milliseconds. */
  currentSystemTimeMs(): number
  /**
   * Sends a record to all children, or to the named child only. Children run depth-first before
   * this resolves: always `await` it.
   */
  forward<K extends KForward, V extends VForward>(record: StreamRecord<K, V>, childName?: string): Promise<void>
  /** The connected store with this name. Throws `InvalidStateStoreError` if not connected. */
  getStateStore<S extends StateStore = StateStore>(name: string): S
  /**
   * Schedules `callback` every `intervalMs` milliseconds of stream-time or wall-clock time
   * (Kafka Streams: `ProcessorContext#schedule`). After a punctuation the task commits at the next
   * commit interval even if it processed no record, so what the callback forwarded or wrote is
   * committed (and flushed from record caches) then.
   * @throws TopologyError when `intervalMs` is below 1 or `type` is unknown
   */
  schedule(intervalMs: number, type: PunctuationType, callback: Punctuator): Cancellable
  /** Requests a commit as soon as possible. */
  commit(): void
  /** Counts a record dropped on purpose (late, null key, ...): metric `dropped-records`, with a reason. */
  recordDropped(reason: string): void
  /**
   * Optional: the application's default key serde (Kafka Streams: `ProcessorContext#keySerde`), for
   * processors that serialize by themselves (e.g. the suppression buffer). Engines should provide it.
   */
  keySerde?(): Serde<any> | undefined
  /** Optional: the application's default value serde (Kafka Streams: `ProcessorContext#valueSerde`). */
  valueSerde?(): Serde<any> | undefined
  /**
   * Optional: this processor node's sensors (Kafka Streams: `ProcessorContext#metrics`), e.g. the
   * final-emit counts of a windowed aggregation. Engines that collect metrics provide it.
   */
  metrics?(): ProcessorNodeMetrics
}

/**
 * A record processor (Kafka Streams: `api.Processor<KIn, VIn, KOut, VOut>`).
 */
export interface Processor<KIn, VIn, KOut = never, VOut = never> {
  init?(context: ProcessorContext<KOut, VOut>): void | Promise<void>
  process(record: StreamRecord<KIn, VIn>): void | Promise<void>
  /**
   * Optional, beyond Kafka Streams: stream-time moved to `streamTimeMs` without a record (the
   * wall-clock idle advance, config `idleAdvanceMs`). A processor that closes windows on the
   * stream-time it observes (windowed aggregations with `onWindowClose`, `suppress`, left/outer
   * stream-stream joins) treats it like a record with that timestamp: it emits what closed. Called
   * on every processor of the task, parents before children, only with a `streamTimeMs` larger
   * than the task's stream-time before. No record metadata is current during the call.
   */
  advanceStreamTime?(streamTimeMs: number): void | Promise<void>
  close?(): void | Promise<void>
}

/** Creates a fresh processor instance per task (Kafka Streams: `ProcessorSupplier`). */
export type ProcessorSupplier<KIn, VIn, KOut = never, VOut = never> = () => Processor<KIn, VIn, KOut, VOut>

/** A processor that may change values but never keys (Kafka Streams: `FixedKeyProcessor`). */
export interface FixedKeyProcessor<KIn, VIn, VOut = never> extends Processor<KIn, VIn, KIn, VOut> {}
export type FixedKeyProcessorSupplier<KIn, VIn, VOut = never> = () => FixedKeyProcessor<KIn, VIn, VOut>

/** Extracts event time from a consumed record (Kafka Streams: `TimestampExtractor`). */
export interface TimestampExtractor<K = unknown, V = unknown> {
  /**
   * @param record the deserialized record with the broker/producer timestamp
   * @param partitionTime the largest timestamp seen so far on this partition, or -1
   * @returns event time in milliseconds; negative means invalid (handled by the configured policy)
   */
  extract(
    record: { topic: string; partition: number; offset: string; key: K; value: V; timestamp: number; headers: Headers },
    partitionTime: number,
  ): number
}

/** Chooses a sink topic per record (Kafka Streams: `TopicNameExtractor`). */
export type TopicNameExtractor<K, V> = (key: K, value: V, context: { topic?: string; partition?: number; timestamp: number }) => string

/** Chooses an output partition (Kafka Streams: `StreamPartitioner`); `undefined` = default (murmur2 of key bytes). */
export type StreamPartitioner<K, V> = (topic: string, key: K, value: V, numPartitions: number) => number | undefined
