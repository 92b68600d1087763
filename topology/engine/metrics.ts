/**
 * What the task engine and the DSL processors record about themselves: the task-, processor-node-
 * and state-level sensors that Kafka Streams records inside `StreamTask`, `SourceNode`/`SinkNode`,
 * `KStreamWindowAggregate` (KIP-825) and `KTableSuppressProcessor`.
 *
 * topology/ stays free of I/O and of lib/: this module only declares the recorders. lib/metrics
 * implements them over its registry (Kafka Streams' metric names, groups and tags, KIP-444 levels);
 * {@link NOOP_TASK_METRICS} is the default when nobody collects metrics.
 *
 * Recorders are called on the hot path: implementations keep them to a few field updates, and a
 * sensor whose recording level is off is a no-op object.
 */

/** Kafka Streams' `metrics.recording.level` (KIP-444): each sensor records at one level. */
export type RecordingLevel = 'INFO' | 'DEBUG' | 'TRACE'

/** Adds to a count (Kafka: a sensor with `-rate` and `-total` stats). */
export interface CountRecorder {
  /** Adds `count` (default 1). */
  record(count?: number): void
}

/** Records one observed value (Kafka: a sensor with `-avg`/`-max`/`-min` stats, maybe `-rate`/`-total`). */
export interface ValueRecorder {
  /** Records `value` (milliseconds for latencies, records or bytes for sizes). */
  record(value: number): void
}

/** The suppression buffer's state-level sensors (`stream-state-metrics`, DEBUG). */
export interface SuppressionBufferMetrics {
  /** `suppression-buffer-size-avg/-max`: bytes buffered, recorded after every change. */
  readonly size: ValueRecorder
  /** `suppression-buffer-count-avg/-max`: records buffered, recorded after every change. */
  readonly count: ValueRecorder
}

/**
 * Sensors of one processor node (`stream-processor-node-metrics`, tags thread-id, task-id,
 * processor-node-id). Implementations create each sensor on first access, so a node shows only
 * the metrics its processor records.
 */
export interface ProcessorNodeMetrics {
  /**
   * `record-e2e-latency-avg/-min/-max` (KIP-613, INFO): wall-clock time minus the record's
   * timestamp when the record reaches this node, milliseconds. Recorded by the engine at source
   * and terminal nodes.
   */
  readonly recordE2eLatency: ValueRecorder
  /** `window-aggregate-final-emit-rate/-total` (KIP-825, DEBUG): final window results emitted. */
  readonly windowAggregateFinalEmit: CountRecorder
  /** `window-aggregate-final-emit-latency-avg/-max` (KIP-825, DEBUG): wall-clock time of one final-results emit, milliseconds. */
  readonly emitFinalLatency: ValueRecorder
  /** `suppression-emit-rate/-total` (DEBUG): records emitted by a suppression buffer. */
  readonly suppressionEmit: CountRecorder
  /** The state-level sensors of the suppression buffer store `storeName`. */
  suppressionBuffer(storeName: string): SuppressionBufferMetrics
}

/**
 * Sensors of one task (`stream-task-metrics`, tags thread-id, task-id) that the engine records.
 * The runtime records the rest (commit, punctuate, enforced processing, buffer counts, restore).
 */
export interface TaskMetrics {
  /** True when DEBUG sensors record: the engine reads the high-resolution clock for `process` only then. */
  readonly debugEnabled: boolean
  /** `process-rate/-total`, `process-latency-avg/-max` (DEBUG): one consumed record processed, its latency in ms. */
  readonly process: ValueRecorder
  /** `dropped-records-rate/-total` (INFO): records dropped on purpose (late, invalid timestamp, null key, handler 'continue'). */
  readonly droppedRecords: CountRecorder
  /** `record-lateness-avg/-max` (DEBUG): stream-time minus the record's timestamp when it is processed, ms (0 if in order). */
  readonly recordLateness: ValueRecorder
  /** The sensors of processor node `processorNodeId`. */
  node(processorNodeId: string): ProcessorNodeMetrics
  /**
   * `hit-ratio-avg/-min/-max` of the record cache of store `storeName` (`stream-record-cache-metrics`,
   * tag record-cache-id, DEBUG): after each point read of the cache, the share of its reads so far
   * that the cache answered.
   */
  recordCache(storeName: string): ValueRecorder
}

/** A recorder that records nothing (a sensor whose level is off, or no metrics at all). */
export const NOOP_RECORDER: CountRecorder & ValueRecorder = Object.freeze({ record(): void {} })

const NOOP_SUPPRESSION: SuppressionBufferMetrics = Object.freeze({ size: NOOP_RECORDER, count: NOOP_RECORDER })

/** Node sensors that record nothing. */
export const NOOP_NODE_METRICS: ProcessorNodeMetrics = Object.freeze({
  recordE2eLatency: NOOP_RECORDER,
  windowAggregateFinalEmit: NOOP_RECORDER,
  emitFinalLatency: NOOP_RECORDER,
  suppressionEmit: NOOP_RECORDER,
  suppressionBuffer: () => NOOP_SUPPRESSION,
})

/** Task sensors that record nothing: the engine's default. */
export const NOOP_TASK_METRICS: TaskMetrics = Object.freeze({
  debugEnabled: false,
  process: NOOP_RECORDER,
  droppedRecords: NOOP_RECORDER,
  recordLateness: NOOP_RECORDER,
  node: () => NOOP_NODE_METRICS,
  recordCache: () => NOOP_RECORDER,
})
