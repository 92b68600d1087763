/**
 * The contract between the DSL (topology/) and whatever runs it: the real runtime (lib/) and the
 * TopologyTestDriver. `Topology.resolve(applicationId)` yields a {@link TopologyDef} with every
 * internal topic name prefixed by the application id; a `TaskEngine` runs one sub-topology for
 * one partition (one task) given bytes stores and a record collector.
 */
import type { Headers, Serde } from '../serde.js'
import type { ProcessorSupplier, StreamPartitioner, TaskId, TimestampExtractor, TopicNameExtractor } from '../processor/types.js'
import type { BytesStoreBase, StateStore, StoreDef, StoreProvider } from '../state/types.js'
import type { TaskMetrics } from './metrics.js'
import type { RecordCache } from '../state/caching.js'

export interface SourceNodeDef {
  readonly type: 'source'
  readonly name: string
  /** Fully qualified topic names (internal ones already prefixed). */
  readonly topics: ReadonlyArray<string>
  /** Subscribed by pattern instead of names (topics are resolved by the runtime). */
  readonly pattern?: RegExp
  readonly keySerde?: Serde<any>
  readonly valueSerde?: Serde<any>
  readonly timestampExtractor?: TimestampExtractor<any, any>
  readonly offsetReset?: 'earliest' | 'latest'
  readonly children: ReadonlyArray<string>
}

export interface ProcessorNodeDef {
  readonly type: 'processor'
  readonly name: string
  readonly supplier: ProcessorSupplier<any, any, any, any>
  /** Names of the stores this processor may use. */
  readonly stores: ReadonlyArray<string>
  readonly children: ReadonlyArray<string>
}

export interface SinkNodeDef {
  readonly type: 'sink'
  readonly name: string
  /** Fixed topic (internal ones already prefixed) or a per-record extractor. */
  readonly topic: string | TopicNameExtractor<any, any>
  readonly keySerde?: Serde<any>
  readonly valueSerde?: Serde<any>
  readonly partitioner?: StreamPartitioner<any, any>
  /** Receives only records forwarded to it by name, never its parent's plain `forward` (a side output such as late records). */
  readonly sideOutput?: boolean
  readonly children: ReadonlyArray<string>
}

export type NodeDef = SourceNodeDef | ProcessorNodeDef | SinkNodeDef

/** A connected component of the processor graph; runs as one task per input partition. */
export interface SubtopologyDef {
  readonly id: number
  /** Nodes, sources first, each parent before its children. */
  readonly nodes: ReadonlyArray<NodeDef>
  /** All source topics (user and repartition); co-partitioned with each other. */
  readonly sourceTopics: ReadonlyArray<string>
  /** Fixed sink topics. */
  readonly sinkTopics: ReadonlyArray<string>
  /** Store names used by this sub-topology's processors. */
  readonly stores: ReadonlyArray<string>
}

/** An internal topic the application must create before processing. */
export interface InternalTopicDef {
  /** Fully qualified name (`<applicationId>-<name>-repartition` / `-changelog`). */
  readonly name: string
  readonly kind: 'repartition' | 'changelog'
  /** Fixed partition count, or undefined = the partition count of the sub-topology's other sources. */
  readonly numPartitions?: number
  readonly config: Readonly<globalThis.Record<string, string>>
}

/** A global store: one full copy of a topic per instance (GlobalKTable, `addGlobalStore`). */
export interface GlobalStoreDef {
  readonly store: StoreDef
  readonly source: SourceNodeDef
  /** Applies each consumed record to the store (DSL: the table materializer). */
  readonly processor: ProcessorNodeDef
}

/** A resolved topology: what the runtime and the test driver run. */
export interface TopologyDef {
  readonly applicationId: string
  readonly subtopologies: ReadonlyArray<SubtopologyDef>
  readonly stores: ReadonlyMap<string, StoreDef>
  readonly globalStores: ReadonlyArray<GlobalStoreDef>
  /** Repartition topics (with partition counts where fixed). */
  readonly repartitionTopics: ReadonlyArray<InternalTopicDef>
  /** `<applicationId>-<store>-changelog` for every logged store (not for source-topic changelogs). */
  readonly changelogTopics: ReadonlyArray<InternalTopicDef>
  /**
   * Groups of fully qualified source topics that must have equal partition counts (join inputs).
   * Topics of one sub-topology are co-partitioned anyway; this lists the explicit groups.
   */
  readonly copartitionGroups?: ReadonlyArray<ReadonlyArray<string>>
}

/** A consumed record before deserialization. Offsets are decimal strings (kafkajs). */
export interface RawRecord {
  readonly topic: string
  readonly partition: number
  readonly offset: string
  readonly key: Buffer | null
  readonly value: Buffer | null
  /** Broker/producer timestamp, milliseconds. */
  readonly timestamp: number
  readonly headers: Headers
}

/** A serialized output record handed to the runtime for producing. */
export interface OutputRecord {
  readonly topic: string
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly timestamp: number
  readonly headers: Headers
  /** Explicit partition (custom partitioner), else the producer's murmur2 default. */
  readonly partition?: number
}

/** Collects a task's output records until the runtime produces them (at commit or when full). */
export interface RecordCollector {
  send(record: OutputRecord): void
}

/** What to do with a record that failed to deserialize (Kafka Streams: `DeserializationExceptionHandler`). */
export type DeserializationHandlerResponse = 'continue' | 'fail'
export type DeserializationExceptionHandler = (error: Error, record: RawRecord, taskId: TaskId) => DeserializationHandlerResponse

/** What to do when a processor throws (Kafka Streams KIP-1033: `ProcessingExceptionHandler`). */
export type ProcessingExceptionHandler = (
  error: Error,
  place: { taskId: TaskId; processor: string; record?: RawRecord },
) => 'continue' | 'fail'

/** Policy for invalid (negative) extracted timestamps. */
export type InvalidTimestampPolicy = 'fail' | 'log-and-skip'

export interface TaskEngineOptions {
  readonly topology: TopologyDef
  readonly subtopology: SubtopologyDef
  readonly taskId: TaskId
  readonly stores: StoreProvider
  readonly collector: RecordCollector
  /** Wall-clock (virtual under the test driver), milliseconds. */
  readonly clock: () => number
  readonly defaultKeySerde?: Serde<any>
  readonly defaultValueSerde?: Serde<any>
  readonly defaultTimestampExtractor?: TimestampExtractor<any, any>
  /** Partition count of an output topic when known (for custom partitioners). */
  readonly partitionsFor?: (topic: string) => number | undefined
  readonly deserializationExceptionHandler?: DeserializationExceptionHandler
  readonly processingExceptionHandler?: ProcessingExceptionHandler
  readonly invalidTimestampPolicy?: InvalidTimestampPolicy
  /** Called for every record dropped on purpose (late, invalid timestamp, skipped by a handler). */
  readonly onDropped?: (
    reason: string,
    place: { taskId: string; processor?: string; topic?: string; partition?: number; offset?: string },
  ) => void
  /** Called when a processor requests a commit. */
  readonly onCommitRequested?: () => void
  /**
   * The task's sensors (task, processor-node and suppression-buffer metrics), implemented by
   * lib/metrics. @defaultValue `NOOP_TASK_METRICS` (records nothing)
   */
  readonly metrics?: TaskMetrics
  /**
   * Typed global stores by name (GlobalKTable, `addGlobalStore`), readable by every processor of
   * the task through `context.getStateStore`. The global stores are maintained by whoever runs
   * the global store processors (e.g. a TaskEngine built with `globalSubtopologyDef`).
   */
  readonly globalStores?: (name: string) => StateStore | undefined
  /**
   * The record cache budget (KIP-63, Kafka Streams' `statestore.cache.max.bytes`), shared by the
   * tasks of an application instance. Stores with caching enabled (DSL tables and aggregations,
   * windowed and session ones included, by default) then forward only the latest update of each
   * key (window, session), when
   * {@link TaskEngine.flushCaches} runs or the budget overflows. Absent or `maxBytes` 0: no
   * caching, every update is forwarded at once.
   */
  readonly recordCache?: RecordCache
}

/**
 * Runs one task: one sub-topology for one partition (Kafka Streams: the processing half of
 * `StreamTask`). Created by `createTaskEngine(options)` (topology/engine/index.ts). The caller
 * chooses the order of records across partitions; the engine deserializes, extracts timestamps,
 * advances stream-time, pushes each record depth-first through the processors, and runs
 * stream-time punctuators after each record that advanced stream-time.
 */
export interface TaskEngine {
  readonly taskId: TaskId
  /** Creates the stores (through the StoreProvider) and processors, and calls `init` on each. */
  init(): Promise<void>
  /** Awaits the source serdes' `prepareDeserialize` hooks once for a batch about to be processed. */
  prepareBatch(records: ReadonlyArray<RawRecord>): Promise<void>
  /**
   * Processes one consumed record. Resolves when it and everything it caused is processed.
   * Throws `StreamsError` subclasses naming task, processor, topic, partition and offset when a
   * handler says 'fail'.
   */
  process(record: RawRecord): Promise<void>
  /**
   * The timestamp `process` would give `record` (Kafka Streams: `RecordQueue#headRecordTimestamp`):
   * its source's `TimestampExtractor` applied to the deserialized record with the partition's
   * current partition-time; the record's own timestamp when the source has no extractor, when
   * deserialization fails transiently (a retriable error), or when extraction fails or yields a
   * negative timestamp (`process` then applies the handlers and the invalid-timestamp policy);
   * -Infinity when the record cannot be deserialized, so it is taken first and goes to the
   * deserialization exception handler at once. Never throws. The runtime orders a task's input
   * queues by it (`PartitionGroup`); it deserializes the record once more when an extractor is set.
   */
  headTimestamp?(record: RawRecord): number
  /** Stream-time: the largest timestamp processed, -1 before any record. */
  streamTime(): number
  /**
   * The timestamp (ms) of the input record this task is processing now, undefined between records
   * and during punctuation (the store layer's `record-e2e-latency`, KIP-613, measures from it).
   */
  currentRecordTimestamp?(): number | undefined
  /** Runs wall-clock punctuators due at `nowMs`. Returns true if any ran. */
  punctuateWallClock(nowMs: number): Promise<boolean>
  /**
   * Moves stream-time to `streamTimeMs` without a record (the wall-clock idle advance): calls
   * every processor's `advanceStreamTime` (parents before children), then the due stream-time
   * punctuators. Does nothing and returns false when `streamTimeMs` is not beyond stream-time.
   */
  advanceStreamTime(streamTimeMs: number): Promise<boolean>
  /**
   * Flushes the record caches of the task's stores (KIP-63): each cached key's latest value is
   * written to the store below and forwarded downstream (sinks hand it to the collector). The
   * runtime calls it at commit before the stores' `prepareCommit` (so the flushed output and the
   * changelog go into the same transaction), the TopologyTestDriver after each record. Repeats
   * until every cache is empty (a flush may write into a downstream store's cache). Optional for
   * engines without caches.
   */
  flushCaches?(): Promise<void>
  /** Typed store facade by name (interactive queries, the test driver). */
  getStateStore(name: string): StateStore | undefined
  /** The bytes stores this task created, by store name (the runtime flushes/checkpoints them). */
  bytesStores(): ReadonlyMap<string, BytesStoreBase>
  /** Closes processors (not the bytes stores; their owner closes them). */
  close(): Promise<void>
}
