/**
 * Kafka Streams' metric names, groups, tags and recording levels, as documented in "Monitoring
 * Kafka Streams" (kafka.apache.org/documentation/streams, docs.confluent.io streams/monitoring),
 * KIP-444 (levels, names), KIP-613 (end-to-end latency), KIP-825 (emit-final), KIP-869 (restore).
 *
 * A {@link SensorSpec} is one Kafka sensor: a base name plus the stats it exposes, each stat one
 * metric named `<base>-<stat>` (`process` + `latency-avg` → `process-latency-avg`).
 * A {@link GaugeSpec} is a metric whose value is read from the runtime when the metric is read.
 */
import type { MetricGroup, MetricKind, RecordingLevel } from './types.js'

// ---------------------------------------------------------------------------------------------
// Groups and tags
// ---------------------------------------------------------------------------------------------

export const CLIENT_GROUP = 'stream-metrics' satisfies MetricGroup
export const THREAD_GROUP = 'stream-thread-metrics' satisfies MetricGroup
export const TASK_GROUP = 'stream-task-metrics' satisfies MetricGroup
export const PROCESSOR_NODE_GROUP = 'stream-processor-node-metrics' satisfies MetricGroup
export const STATE_GROUP = 'stream-state-metrics' satisfies MetricGroup
export const RECORD_CACHE_GROUP = 'stream-record-cache-metrics' satisfies MetricGroup
/** The consumer's group (kafkajs has no metrics; the runtime feeds lag from its own offsets). */
export const CONSUMER_FETCH_GROUP = 'consumer-fetch-manager-metrics' satisfies MetricGroup

export const CLIENT_ID_TAG = 'client-id'
export const THREAD_ID_TAG = 'thread-id'
export const TASK_ID_TAG = 'task-id'
export const PROCESSOR_NODE_ID_TAG = 'processor-node-id'
export const RECORD_CACHE_ID_TAG = 'record-cache-id'
export const TOPIC_TAG = 'topic'
export const PARTITION_TAG = 'partition'

/**
 * Store types, used in the state-level tag `<store-type>-state-id` (Kafka: `rocksdb-state-id`,
 * `rocksdb-window-state-id`, `in-memory-state-id`, ...). Our persistent stores are LevelDB, so
 * their tag is `leveldb-state-id` / `leveldb-window-state-id` / `leveldb-session-state-id` where
 * Kafka Streams says `rocksdb-...`; a dashboard written for Kafka Streams swaps that one word.
 * The suppression buffer keeps Kafka's `in-memory-suppression-state-id` (its index is in memory;
 * its changes are logged like Kafka's).
 */
export type StoreType =
  'leveldb' | 'leveldb-window' | 'leveldb-session' | 'in-memory' | 'in-memory-window' | 'in-memory-session' | 'in-memory-suppression'

/** The state-level tag key of a store type: `leveldb` → `leveldb-state-id`. */
export function storeTypeTag(storeType: StoreType): string {
  return `${storeType}-state-id`
}

// ---------------------------------------------------------------------------------------------
// Specs
// ---------------------------------------------------------------------------------------------

/**
 * One stat of a sensor. `latency-*` are milliseconds. `value` is the latest recorded value and
 * `count` a cumulative count, both named by the base name alone (`records-lag`,
 * `failed-stream-threads`).
 */
export type Stat = 'rate' | 'total' | 'avg' | 'max' | 'min' | 'latency-avg' | 'latency-max' | 'value' | 'count'

/** A Kafka Streams sensor: base name, group, recording level, stats. */
export interface SensorSpec {
  readonly group: MetricGroup
  readonly name: string
  readonly level: RecordingLevel
  readonly stats: ReadonlyArray<Stat>
  /** What one recording counts, plural ("records processed"): rate/total descriptions. */
  readonly counts?: string
  /** What a recorded value is ("end-to-end latency of a record, in ms"): avg/max/min descriptions. */
  readonly measures?: string
}

/** A metric read from the runtime at read time (a number, or a string for `state`). */
export interface GaugeSpec {
  readonly group: MetricGroup
  readonly name: string
  readonly level: RecordingLevel
  readonly description: string
  /** @defaultValue 'gauge' */
  readonly kind?: MetricKind
}

/** The metric name of one stat of a sensor. */
export function statName(base: string, stat: Stat): string {
  return stat === 'value' || stat === 'count' ? base : `${base}-${stat}`
}

/** The description Kafka gives that stat (same wording pattern). */
export function statDescription(spec: SensorSpec, stat: Stat): string {
  const counts = spec.counts ?? `${spec.name} calls`
  const measures = spec.measures ?? spec.name
  switch (stat) {
    case 'rate':
      return `The average number of ${counts} per second`
    case 'total':
    case 'count':
      return `The total number of ${counts}`
    case 'latency-avg':
      return `The average execution time in ms for ${spec.name}`
    case 'latency-max':
      return `The maximum execution time in ms for ${spec.name}`
    case 'avg':
      return `The average ${measures}`
    case 'max':
      return `The maximum ${measures}`
    case 'min':
      return `The minimum ${measures}`
    case 'value':
      return `The latest ${measures}`
  }
}

/** `-total` and cumulative counts are monotonic counters; everything else is a gauge. */
export function statKind(stat: Stat): MetricKind {
  return stat === 'total' || stat === 'count' ? 'counter' : 'gauge'
}

const LATENCY_RATE_TOTAL: ReadonlyArray<Stat> = ['rate', 'total', 'latency-avg', 'latency-max']
const RATE_TOTAL: ReadonlyArray<Stat> = ['rate', 'total']
const STORE_OP: ReadonlyArray<Stat> = ['rate', 'latency-avg', 'latency-max']

function sensor(
  group: MetricGroup,
  name: string,
  level: RecordingLevel,
  stats: ReadonlyArray<Stat>,
  text: { counts?: string; measures?: string } = {},
): SensorSpec {
  return Object.freeze({ group, name, level, stats, ...text })
}

// client: stream-metrics, tags client-id (all INFO)

/** Client-level gauges (`stream-metrics`, tag client-id). */
export const CLIENT_GAUGES = Object.freeze({
  state: { group: CLIENT_GROUP, name: 'state', level: 'INFO', description: 'The state of the Kafka Streams client' },
  aliveStreamThreads: {
    group: CLIENT_GROUP,
    name: 'alive-stream-threads',
    level: 'INFO',
    description: 'The current number of alive stream threads that are running or participating in rebalance',
  },
} satisfies Record<string, GaugeSpec>)

/** Client-level sensors (`stream-metrics`, tag client-id). */
export const CLIENT_SENSORS = Object.freeze({
  failedStreamThreads: sensor(CLIENT_GROUP, 'failed-stream-threads', 'INFO', ['count'], {
    counts: 'failed stream threads since the start of the Kafka Streams client',
  }),
})

// thread: stream-thread-metrics, tags thread-id (all INFO)

/** Thread-level sensors (`stream-thread-metrics`, tag thread-id). All INFO. */
export const THREAD_SENSORS = Object.freeze({
  process: sensor(THREAD_GROUP, 'process', 'INFO', LATENCY_RATE_TOTAL, { counts: 'records processed' }),
  processRecords: sensor(THREAD_GROUP, 'process-records', 'INFO', ['avg', 'max'], {
    measures: 'number of records processed within an iteration',
  }),
  poll: sensor(THREAD_GROUP, 'poll', 'INFO', LATENCY_RATE_TOTAL, { counts: 'consumer poll calls' }),
  pollRecords: sensor(THREAD_GROUP, 'poll-records', 'INFO', ['avg', 'max'], {
    measures: 'number of records polled from the consumer within an iteration',
  }),
  commit: sensor(THREAD_GROUP, 'commit', 'INFO', LATENCY_RATE_TOTAL, { counts: 'commit calls' }),
  punctuate: sensor(THREAD_GROUP, 'punctuate', 'INFO', LATENCY_RATE_TOTAL, { counts: 'punctuate calls' }),
  taskCreated: sensor(THREAD_GROUP, 'task-created', 'INFO', RATE_TOTAL, { counts: 'newly created tasks' }),
  taskClosed: sensor(THREAD_GROUP, 'task-closed', 'INFO', RATE_TOTAL, { counts: 'closed tasks' }),
})

// task: stream-task-metrics, tags thread-id, task-id

/** Task-level sensors (`stream-task-metrics`, tags thread-id, task-id). */
export const TASK_SENSORS = Object.freeze({
  process: sensor(TASK_GROUP, 'process', 'DEBUG', LATENCY_RATE_TOTAL, { counts: 'records processed by this task' }),
  droppedRecords: sensor(TASK_GROUP, 'dropped-records', 'INFO', RATE_TOTAL, { counts: 'records dropped within this task' }),
  recordLateness: sensor(TASK_GROUP, 'record-lateness', 'DEBUG', ['avg', 'max'], {
    measures: 'observed lateness of records in ms (stream-time minus record timestamp)',
  }),
  enforcedProcessing: sensor(TASK_GROUP, 'enforced-processing', 'DEBUG', RATE_TOTAL, {
    counts: 'enforced processings (a task processed while some of its partitions had no data, after max.task.idle.ms)',
  }),
  /** Rate and total only at task level (Kafka Streams' `TaskMetrics#commitSensor`). */
  commit: sensor(TASK_GROUP, 'commit', 'DEBUG', RATE_TOTAL, { counts: 'commit calls of this task' }),
  punctuate: sensor(TASK_GROUP, 'punctuate', 'DEBUG', LATENCY_RATE_TOTAL, { counts: 'punctuate calls of this task' }),
  /** KIP-869: records restored for an active task. */
  restore: sensor(TASK_GROUP, 'restore', 'INFO', RATE_TOTAL, { counts: 'records restored' }),
  /** KIP-869: records applied to a standby task. */
  update: sensor(TASK_GROUP, 'update', 'INFO', RATE_TOTAL, { counts: 'records updated on a standby task' }),
})

/** Task-level gauges (`stream-task-metrics`, tags thread-id, task-id). */
export const TASK_GAUGES = Object.freeze({
  activeBufferCount: {
    group: TASK_GROUP,
    name: 'active-buffer-count',
    level: 'DEBUG',
    description: 'The count of buffered records that are polled from the consumer and not yet processed by this active task',
  },
  activeProcessRatio: {
    group: TASK_GROUP,
    name: 'active-process-ratio',
    level: 'INFO',
    description: 'The fraction of time the thread spent on processing this task among all assigned active tasks',
  },
  /**
   * KIP-869. A gauge despite its `-total` suffix: it falls as restoration proceeds (exporting it
   * as a counter breaks Prometheus/Micrometer, which reject a decreasing counter).
   */
  restoreRemainingRecordsTotal: {
    group: TASK_GROUP,
    name: 'restore-remaining-records-total',
    level: 'INFO',
    description: 'The number of records remaining to be restored',
  },
} satisfies Record<string, GaugeSpec>)

// processor node: stream-processor-node-metrics, tags thread-id, task-id, processor-node-id

/** Processor-node sensors (`stream-processor-node-metrics`, tags thread-id, task-id, processor-node-id). */
export const NODE_SENSORS = Object.freeze({
  /** KIP-613: at source and terminal nodes, INFO. */
  recordE2eLatency: sensor(PROCESSOR_NODE_GROUP, 'record-e2e-latency', 'INFO', ['avg', 'min', 'max'], {
    measures: 'end-to-end latency of a record in ms (wall-clock time minus record timestamp)',
  }),
  /** KIP-825 */
  windowAggregateFinalEmit: sensor(PROCESSOR_NODE_GROUP, 'window-aggregate-final-emit', 'DEBUG', RATE_TOTAL, {
    counts: 'final window results emitted (emit on window close)',
  }),
  /**
   * KIP-825. Kafka Streams' `ProcessorNodeMetrics` names it `window-aggregate-final-emit` +
   * `-latency` (so `window-aggregate-final-emit-latency-avg/-max`), not `emit-final-latency-*`.
   */
  emitFinalLatency: sensor(PROCESSOR_NODE_GROUP, 'window-aggregate-final-emit-latency', 'DEBUG', ['avg', 'max'], {
    measures: 'execution time in ms of calls to emit final (the results of closed windows)',
  }),
  suppressionEmit: sensor(PROCESSOR_NODE_GROUP, 'suppression-emit', 'DEBUG', RATE_TOTAL, {
    counts: 'records emitted from the suppression buffer',
  }),
})

// state store: stream-state-metrics, tags thread-id, task-id, <store-type>-state-id

/** State-store sensors (`stream-state-metrics`, tags thread-id, task-id, `<store-type>-state-id`). */
export const STATE_SENSORS = Object.freeze({
  put: sensor(STATE_GROUP, 'put', 'DEBUG', STORE_OP, { counts: 'put calls' }),
  putIfAbsent: sensor(STATE_GROUP, 'put-if-absent', 'DEBUG', STORE_OP, { counts: 'put-if-absent calls' }),
  putAll: sensor(STATE_GROUP, 'put-all', 'DEBUG', STORE_OP, { counts: 'put-all calls' }),
  get: sensor(STATE_GROUP, 'get', 'DEBUG', STORE_OP, { counts: 'get calls' }),
  fetch: sensor(STATE_GROUP, 'fetch', 'DEBUG', STORE_OP, { counts: 'fetch calls' }),
  range: sensor(STATE_GROUP, 'range', 'DEBUG', STORE_OP, { counts: 'range calls' }),
  all: sensor(STATE_GROUP, 'all', 'DEBUG', STORE_OP, { counts: 'all calls' }),
  prefixScan: sensor(STATE_GROUP, 'prefix-scan', 'DEBUG', STORE_OP, { counts: 'prefix-scan calls' }),
  delete: sensor(STATE_GROUP, 'delete', 'DEBUG', STORE_OP, { counts: 'delete calls' }),
  remove: sensor(STATE_GROUP, 'remove', 'DEBUG', STORE_OP, { counts: 'remove calls' }),
  flush: sensor(STATE_GROUP, 'flush', 'DEBUG', STORE_OP, { counts: 'flush calls' }),
  /** KIP-613: records reaching the store, TRACE. */
  recordE2eLatency: sensor(STATE_GROUP, 'record-e2e-latency', 'TRACE', ['avg', 'min', 'max'], {
    measures: 'end-to-end latency of a record in ms when it is written to the store',
  }),
  suppressionBufferSize: sensor(STATE_GROUP, 'suppression-buffer-size', 'DEBUG', ['avg', 'max'], {
    measures: 'size of buffered data in bytes',
  }),
  suppressionBufferCount: sensor(STATE_GROUP, 'suppression-buffer-count', 'DEBUG', ['avg', 'max'], {
    measures: 'number of records buffered',
  }),
})

// record cache: stream-record-cache-metrics, tags thread-id, task-id, record-cache-id

/**
 * Record-cache sensors (KIP-63; `stream-record-cache-metrics`, tags thread-id, task-id,
 * record-cache-id = the store's name). A hit is a point read answered by the cache's unflushed
 * entries; Kafka Streams' cache also keeps flushed entries, which our stores cache below it.
 */
export const RECORD_CACHE_SENSORS = Object.freeze({
  hitRatio: sensor(RECORD_CACHE_GROUP, 'hit-ratio', 'DEBUG', ['avg', 'min', 'max'], {
    measures: 'cache hit ratio, the share of cache read hits in all cache reads',
  }),
})

// consumer lag: consumer-fetch-manager-metrics, tags client-id, topic, partition

/** Consumer lag (`consumer-fetch-manager-metrics`); per partition with topic/partition tags, `recordsLagMax` also per client. INFO. */
export const CONSUMER_SENSORS = Object.freeze({
  /** `records-lag` (latest), `records-lag-avg`, `records-lag-max`, tags client-id, topic, partition. */
  partitionRecordsLag: sensor(CONSUMER_FETCH_GROUP, 'records-lag', 'INFO', ['value', 'avg', 'max'], {
    measures: 'lag of the partition in records (log end offset minus position)',
  }),
  /** `records-lag-max`, tag client-id: the maximum lag in records of any partition. */
  clientRecordsLag: sensor(CONSUMER_FETCH_GROUP, 'records-lag', 'INFO', ['max'], {
    measures: 'lag in records of any partition in this window',
  }),
})

/** One metric of the catalogue: what exporters declare up front. */
export interface CatalogueEntry {
  readonly group: MetricGroup
  readonly name: string
  readonly level: RecordingLevel
  readonly kind: MetricKind
  readonly description: string
}

function expand(): ReadonlyArray<CatalogueEntry> {
  const out = new Map<string, CatalogueEntry>()
  const add = (e: CatalogueEntry): void => {
    if (!out.has(`${e.group}\u0000${e.name}`)) out.set(`${e.group}\u0000${e.name}`, Object.freeze(e))
  }
  for (const table of [
    CLIENT_SENSORS,
    THREAD_SENSORS,
    TASK_SENSORS,
    NODE_SENSORS,
    STATE_SENSORS,
    RECORD_CACHE_SENSORS,
    CONSUMER_SENSORS,
  ] as ReadonlyArray<Record<string, SensorSpec>>) {
    for (const spec of Object.values(table)) {
      for (const stat of spec.stats)
        add({
          group: spec.group,
          name: statName(spec.name, stat),
          level: spec.level,
          kind: statKind(stat),
          description: statDescription(spec, stat),
        })
    }
  }
  for (const table of [CLIENT_GAUGES, TASK_GAUGES] as ReadonlyArray<Record<string, GaugeSpec>>) {
    for (const g of Object.values(table))
      add({ group: g.group, name: g.name, level: g.level, kind: g.kind ?? 'gauge', description: g.description })
  }
  return Object.freeze([...out.values()])
}

/** Every metric kstreams can register, by group and name (tags vary): exporters declare these. */
export const METRIC_CATALOGUE: ReadonlyArray<CatalogueEntry> = expand()
