/**
 * `StreamsMetrics`: Kafka Streams' metrics for one client (KafkaStreams instance or
 * TopologyTestDriver), in its four levels client → thread → task → processor node / state store,
 * plus consumer lag. Names, groups, tags and levels: lib/metrics/names.ts.
 *
 * WIRING GUIDE (runtime: lib/app/*; every latency in milliseconds, `performance.now()` deltas)
 *
 * | runtime point | call |
 * |---|---|
 * | KafkaStreams constructor | `this.streamsMetrics = new StreamsMetrics({ clientId, recordingLevel: config.metricsRecordingLevel })` |
 * | same | `this.clientMetrics = streamsMetrics.client({ state: () => this.state, aliveStreamThreads: () => aliveThreadCount })` |
 * | `streams.metrics()` | `return this.streamsMetrics.metrics()` |
 * | a stream thread dies with an error | `clientMetrics.failedStreamThreads.record()` |
 * | StreamThread start / stop | `const tm = streamsMetrics.thread(threadId)` / `tm.close()` |
 * | after each consumer fetch (eachBatch) | `tm.poll.record(fetchMs)`; `tm.pollRecords.record(batch.messages.length)` |
 * | after processing n records in one loop iteration | `tm.recordProcess(n, elapsedMs)` (process-rate/-total count records, process-latency is per record) |
 * | commit of the thread's tasks | `tm.commit.record(commitMs)`; per committed task also `task.commit.record()` (DEBUG, rate/total only, as Kafka) |
 * | wall-clock punctuation that ran | `tm.punctuate.record(ms)`; `task.punctuate.record(ms)` |
 * | task created / closed | `tm.taskCreated.record()` / `tm.taskClosed.record()` |
 * | StreamTask creation | `const task = streamsMetrics.task(threadId, taskIdString(id))`; pass `metrics: task` to `createTaskEngine` (the engine records process, dropped-records, record-lateness, e2e, final emits, suppression) |
 * | same | `task.activeBufferCount(() => partitionGroup.numBuffered())`; `task.activeProcessRatio(() => taskProcessMs / threadProcessMs)` over the last iteration |
 * | task processes with an empty partition after `maxTaskIdleMs` | `task.enforcedProcessing.record()` |
 * | restoration (KIP-869) | `task.restoreRemainingRecords(() => endOffset - position)` at start; `task.restore.record(n)` per applied batch |
 * | standby task (KIP-869) | `const sb = streamsMetrics.standbyTask(threadId, taskId)`; `sb.update.record(n)` per applied changelog batch; `sb.close()` when the standby closes |
 * | metered store layer (lib/state) | `const s = task.store(storeName, 'leveldb' \| 'leveldb-window' \| 'leveldb-session' \| 'in-memory')`; `s.put.record(ms)`, `s.get.record(ms)`, `s.fetch`, `s.range`, `s.all`, `s.prefixScan`, `s.delete`, `s.remove`, `s.putAll`, `s.putIfAbsent`, `s.flush.record(ms)`; `s.recordE2eLatency.record(now - record.timestamp)` (TRACE). Check `task.debugEnabled` before reading the clock. |
 * | StreamTask close | `task.close()` (removes the task's, its nodes' and stores' metrics) |
 * | consumer lag (after each fetched batch is buffered) | `lag.record(batch.topic, batch.partition, Number(batch.offsetLag()))` with `const lag = streamsMetrics.consumerLag()` (kafkajs: high watermark − 1 − last offset of the batch); partition revoked: `lag.remove(topic, partition)`. Under exactly-once check that a trailing transaction marker does not leave the lag at 1 (markers take offsets; Java's consumer reports lag against the last stable offset) |
 *
 * DEBUG sensors are no-ops at INFO (and register no metric); `task.debugEnabled` tells whether
 * measuring a DEBUG latency is worth a clock read.
 */
import {
  CLIENT_GAUGES,
  CLIENT_ID_TAG,
  CLIENT_SENSORS,
  CONSUMER_SENSORS,
  NODE_SENSORS,
  PARTITION_TAG,
  PROCESSOR_NODE_ID_TAG,
  RECORD_CACHE_ID_TAG,
  RECORD_CACHE_SENSORS,
  STATE_SENSORS,
  TASK_GAUGES,
  TASK_ID_TAG,
  TASK_SENSORS,
  THREAD_ID_TAG,
  THREAD_SENSORS,
  TOPIC_TAG,
  storeTypeTag,
  type StoreType,
} from './names.js'
import { MetricsRegistry } from './registry.js'
import type { ValueSensor } from './sensors.js'
import type {
  CountRecorder,
  Metric,
  MetricName,
  MetricsConfig,
  MetricsSource,
  ProcessorNodeMetrics,
  RecordingLevel,
  SuppressionBufferMetrics,
  TaskMetrics,
  ValueRecorder,
} from './types.js'

/** Options of {@link StreamsMetrics}. */
export interface StreamsMetricsOptions extends MetricsConfig {
  /** The `client-id` tag (Kafka Streams: `<applicationId>-<processId>` or the configured client id). */
  readonly clientId: string
}

/** Client-level sensors (`stream-metrics`). */
export interface ClientMetrics {
  /** `failed-stream-threads`: record once per stream thread that died with an error. */
  readonly failedStreamThreads: CountRecorder
}

/** Thread-level sensors (`stream-thread-metrics`, tag thread-id), all INFO. */
export interface ThreadMetrics {
  /** `poll-rate/-total`, `poll-latency-avg/-max`: one consumer fetch and its duration, ms. */
  readonly poll: ValueRecorder
  /** `poll-records-avg/-max`: records returned by one fetch. */
  readonly pollRecords: ValueRecorder
  /** `commit-rate/-total`, `commit-latency-avg/-max`: one commit of the thread's tasks, ms. */
  readonly commit: ValueRecorder
  /** `punctuate-rate/-total`, `punctuate-latency-avg/-max`: one punctuation, ms. */
  readonly punctuate: ValueRecorder
  /** `task-created-rate/-total` */
  readonly taskCreated: CountRecorder
  /** `task-closed-rate/-total` */
  readonly taskClosed: CountRecorder
  /**
   * `process-rate/-total` (records), `process-latency-avg/-max` (ms per record) and
   * `process-records-avg/-max` (records per iteration): `records` processed in `elapsedMs`.
   */
  recordProcess(records: number, elapsedMs: number): void
  /** Removes the thread's metrics. */
  close(): void
}

/** The state-store sensors of one store (`stream-state-metrics`), all DEBUG except `recordE2eLatency` (TRACE). */
export interface StoreMetrics {
  readonly put: ValueRecorder
  readonly putIfAbsent: ValueRecorder
  readonly putAll: ValueRecorder
  readonly get: ValueRecorder
  readonly fetch: ValueRecorder
  readonly range: ValueRecorder
  readonly all: ValueRecorder
  readonly prefixScan: ValueRecorder
  readonly delete: ValueRecorder
  readonly remove: ValueRecorder
  readonly flush: ValueRecorder
  readonly recordE2eLatency: ValueRecorder
}

/** Task sensors: what the engine records ({@link TaskMetrics}) plus what the runtime records. */
export interface RuntimeTaskMetrics extends TaskMetrics {
  /** `commit-rate/-total` (DEBUG): one commit of this task. */
  readonly commit: CountRecorder
  /** `punctuate-rate/-total`, `punctuate-latency-avg/-max` (DEBUG) */
  readonly punctuate: ValueRecorder
  /** `enforced-processing-rate/-total` (DEBUG) */
  readonly enforcedProcessing: CountRecorder
  /** `restore-rate/-total` (KIP-869, INFO): records restored into this active task's stores. */
  readonly restore: CountRecorder
  /** `update-rate/-total` (KIP-869, INFO): records applied to this standby task. */
  readonly update: CountRecorder
  /** Registers `active-buffer-count` (DEBUG), read from `count()`. */
  activeBufferCount(count: () => number): void
  /** Registers `active-process-ratio` (INFO), read from `ratio()` (0..1). */
  activeProcessRatio(ratio: () => number): void
  /** Registers `restore-remaining-records-total` (KIP-869, INFO), read from `remaining()`. */
  restoreRemainingRecords(remaining: () => number): void
  /** The sensors of store `storeName` of type `storeType` (tag `<storeType>-state-id`). */
  store(storeName: string, storeType: StoreType): StoreMetrics
  /** Removes the task's metrics (and its nodes' and stores'). */
  close(): void
}

/** Sensors of a standby task (`stream-task-metrics`, tags thread-id, task-id). */
export interface StandbyTaskMetrics {
  /** `update-rate/-total` (KIP-869, INFO): records applied to this standby's stores from their changelogs. */
  readonly update: CountRecorder
  /** Removes the standby's metrics. */
  close(): void
}

/** Consumer lag per partition (`consumer-fetch-manager-metrics`). */
export interface ConsumerLagMetrics {
  /** Records the lag of `topic`/`partition` (log end offset − position, records). */
  record(topic: string, partition: number, lag: number): void
  /** Removes a revoked partition's metrics. */
  remove(topic: string, partition: number): void
}

/** Defines getters on `target` that create each value on first access and keep it. */
function lazy<T extends object>(factories: { [P in keyof T]: () => T[P] }, target: Partial<T> = {}): T {
  for (const key of Object.keys(factories) as Array<keyof T>) {
    Object.defineProperty(target, key, {
      configurable: true,
      enumerable: true,
      get() {
        const value = factories[key]()
        Object.defineProperty(target, key, { value, enumerable: true })
        return value
      },
    })
  }
  return target as T
}

/** Kafka Streams' metrics of one client. See the wiring guide in this module's comment. */
export class StreamsMetrics implements MetricsSource {
  readonly registry: MetricsRegistry
  readonly clientId: string
  private readonly clientTags: Readonly<Record<string, string>>

  constructor(options: StreamsMetricsOptions) {
    this.registry = new MetricsRegistry(options)
    this.clientId = options.clientId
    this.clientTags = Object.freeze({ [CLIENT_ID_TAG]: options.clientId })
  }

  get recordingLevel(): RecordingLevel {
    return this.registry.recordingLevel
  }

  /** Registers the client-level metrics (`state`, `alive-stream-threads`, `failed-stream-threads`). */
  client(gauges: { state: () => string; aliveStreamThreads: () => number }): ClientMetrics {
    this.registry.gauge(CLIENT_GAUGES.state, this.clientTags, gauges.state, 'client')
    this.registry.gauge(CLIENT_GAUGES.aliveStreamThreads, this.clientTags, gauges.aliveStreamThreads, 'client')
    return { failedStreamThreads: this.registry.countSensor(CLIENT_SENSORS.failedStreamThreads, this.clientTags, 'client') }
  }

  /** The sensors of stream thread `threadId`. */
  thread(threadId: string): ThreadMetrics {
    const r = this.registry
    const tags = { [THREAD_ID_TAG]: threadId }
    const owner = `thread\u0000${threadId}`
    const process = r.valueSensor(THREAD_SENSORS.process, tags, owner)
    const processRecords = r.valueSensor(THREAD_SENSORS.processRecords, tags, owner)
    return {
      poll: r.valueSensor(THREAD_SENSORS.poll, tags, owner),
      pollRecords: r.valueSensor(THREAD_SENSORS.pollRecords, tags, owner),
      commit: r.valueSensor(THREAD_SENSORS.commit, tags, owner),
      punctuate: r.valueSensor(THREAD_SENSORS.punctuate, tags, owner),
      taskCreated: r.countSensor(THREAD_SENSORS.taskCreated, tags, owner),
      taskClosed: r.countSensor(THREAD_SENSORS.taskClosed, tags, owner),
      recordProcess: (records, elapsedMs) => {
        if (records <= 0) return
        ;(process as ValueSensor).recordMany?.(elapsedMs / records, records)
        processRecords.record(records)
      },
      close: () => r.removeOwner(owner),
    }
  }

  /** The sensors of task `taskId` (`<subtopology>_<partition>`) on thread `threadId`. */
  task(threadId: string, taskId: string): RuntimeTaskMetrics {
    const r = this.registry
    const tags = Object.freeze({ [THREAD_ID_TAG]: threadId, [TASK_ID_TAG]: taskId })
    const owner = `task\u0000${threadId}\u0000${taskId}`
    const nodes = new Map<string, ProcessorNodeMetrics>()
    const stores = new Map<string, StoreMetrics>()
    const node = (id: string): ProcessorNodeMetrics => {
      let m = nodes.get(id)
      if (m === undefined) nodes.set(id, (m = this.nodeMetrics(tags, id, owner)))
      return m
    }
    const store = (storeName: string, storeType: StoreType): StoreMetrics => {
      const key = `${storeType}\u0000${storeName}`
      let m = stores.get(key)
      if (m === undefined) stores.set(key, (m = this.storeMetrics(tags, storeName, storeType, owner)))
      return m
    }
    const caches = new Map<string, ValueRecorder>()
    const recordCache = (storeName: string): ValueRecorder => {
      let m = caches.get(storeName)
      if (m === undefined)
        caches.set(storeName, (m = r.valueSensor(RECORD_CACHE_SENSORS.hitRatio, { ...tags, [RECORD_CACHE_ID_TAG]: storeName }, owner)))
      return m
    }
    const base = {
      debugEnabled: r.shouldRecord('DEBUG'),
      node,
      store,
      recordCache,
      activeBufferCount: (count: () => number) => r.gauge(TASK_GAUGES.activeBufferCount, tags, count, owner),
      activeProcessRatio: (ratio: () => number) => r.gauge(TASK_GAUGES.activeProcessRatio, tags, ratio, owner),
      restoreRemainingRecords: (remaining: () => number) => r.gauge(TASK_GAUGES.restoreRemainingRecordsTotal, tags, remaining, owner),
      close: () => {
        r.removeOwner(owner)
        nodes.clear()
        stores.clear()
        caches.clear()
      },
    }
    // process and dropped-records exist from the start (Kafka registers them with the task);
    // the others appear on first use
    const eager = {
      ...base,
      process: r.valueSensor(TASK_SENSORS.process, tags, owner),
      droppedRecords: r.countSensor(TASK_SENSORS.droppedRecords, tags, owner),
    }
    return lazy<Omit<RuntimeTaskMetrics, keyof typeof eager>>(
      {
        recordLateness: () => r.valueSensor(TASK_SENSORS.recordLateness, tags, owner),
        commit: () => r.countSensor(TASK_SENSORS.commit, tags, owner),
        punctuate: () => r.valueSensor(TASK_SENSORS.punctuate, tags, owner),
        enforcedProcessing: () => r.countSensor(TASK_SENSORS.enforcedProcessing, tags, owner),
        restore: () => r.countSensor(TASK_SENSORS.restore, tags, owner),
        update: () => r.countSensor(TASK_SENSORS.update, tags, owner),
      },
      eager as Partial<Omit<RuntimeTaskMetrics, keyof typeof eager>>,
    ) as RuntimeTaskMetrics
  }

  /**
   * The sensors of standby task `taskId` on thread `threadId` (Kafka Streams registers a standby's
   * task metrics with the same tags as an active task's; a task is never both on one thread). Kept
   * apart from {@link task} so that closing a standby never removes the metrics of the active task
   * that replaces it.
   */
  standbyTask(threadId: string, taskId: string): StandbyTaskMetrics {
    const r = this.registry
    const owner = `standby\u0000${threadId}\u0000${taskId}`
    return {
      update: r.countSensor(TASK_SENSORS.update, { [THREAD_ID_TAG]: threadId, [TASK_ID_TAG]: taskId }, owner),
      close: () => r.removeOwner(owner),
    }
  }

  private nodeMetrics(taskTags: Readonly<Record<string, string>>, nodeId: string, owner: string): ProcessorNodeMetrics {
    const r = this.registry
    const tags = { ...taskTags, [PROCESSOR_NODE_ID_TAG]: nodeId }
    const buffers = new Map<string, SuppressionBufferMetrics>()
    return lazy<ProcessorNodeMetrics>({
      recordE2eLatency: () => r.valueSensor(NODE_SENSORS.recordE2eLatency, tags, owner),
      windowAggregateFinalEmit: () => r.countSensor(NODE_SENSORS.windowAggregateFinalEmit, tags, owner),
      emitFinalLatency: () => r.valueSensor(NODE_SENSORS.emitFinalLatency, tags, owner),
      suppressionEmit: () => r.countSensor(NODE_SENSORS.suppressionEmit, tags, owner),
      suppressionBuffer: () => (storeName: string) => {
        let m = buffers.get(storeName)
        if (m === undefined) {
          const storeTags = { ...taskTags, [storeTypeTag('in-memory-suppression')]: storeName }
          m = {
            size: r.valueSensor(STATE_SENSORS.suppressionBufferSize, storeTags, owner),
            count: r.valueSensor(STATE_SENSORS.suppressionBufferCount, storeTags, owner),
          }
          buffers.set(storeName, m)
        }
        return m
      },
    })
  }

  private storeMetrics(taskTags: Readonly<Record<string, string>>, storeName: string, storeType: StoreType, owner: string): StoreMetrics {
    const r = this.registry
    const tags = { ...taskTags, [storeTypeTag(storeType)]: storeName }
    const s = STATE_SENSORS
    const v = (spec: (typeof STATE_SENSORS)[keyof typeof STATE_SENSORS]) => () => r.valueSensor(spec, tags, owner)
    return lazy<StoreMetrics>({
      put: v(s.put),
      putIfAbsent: v(s.putIfAbsent),
      putAll: v(s.putAll),
      get: v(s.get),
      fetch: v(s.fetch),
      range: v(s.range),
      all: v(s.all),
      prefixScan: v(s.prefixScan),
      delete: v(s.delete),
      remove: v(s.remove),
      flush: v(s.flush),
      recordE2eLatency: v(s.recordE2eLatency),
    })
  }

  /** Consumer lag sensors (`records-lag`, `records-lag-avg`, `records-lag-max` per partition; `records-lag-max` per client). */
  consumerLag(): ConsumerLagMetrics {
    const r = this.registry
    const clientMax = r.valueSensor(CONSUMER_SENSORS.clientRecordsLag, this.clientTags, 'consumer')
    const partitions = new Map<string, ValueRecorder>()
    const owner = (topic: string, partition: number): string => `lag\u0000${topic}\u0000${partition}`
    return {
      record: (topic, partition, lag) => {
        const key = `${topic}\u0000${partition}`
        let s = partitions.get(key)
        if (s === undefined) {
          s = r.valueSensor(
            CONSUMER_SENSORS.partitionRecordsLag,
            { ...this.clientTags, [TOPIC_TAG]: topic, [PARTITION_TAG]: String(partition) },
            owner(topic, partition),
          )
          partitions.set(key, s)
        }
        s.record(lag)
        clientMax.record(lag)
      },
      remove: (topic, partition) => {
        partitions.delete(`${topic}\u0000${partition}`)
        r.removeOwner(owner(topic, partition))
      },
    }
  }

  /** A snapshot of all metrics (Kafka Streams: `KafkaStreams#metrics()`). */
  metrics(): ReadonlyMap<MetricName, Metric> {
    return this.registry.metrics()
  }
}
