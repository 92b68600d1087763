/**
 * Public metric types, shaped like Kafka's `org.apache.kafka.common.MetricName` / `Metric` and
 * `KafkaStreams#metrics()`.
 */
import type { RecordingLevel } from '../../topology/engine/metrics.js'

export type {
  CountRecorder,
  ProcessorNodeMetrics,
  RecordingLevel,
  SuppressionBufferMetrics,
  TaskMetrics,
  ValueRecorder,
} from '../../topology/engine/metrics.js'

/** Kafka Streams' metric groups (the JMX `type=`). */
export type MetricGroup =
  | 'stream-metrics'
  | 'stream-thread-metrics'
  | 'stream-task-metrics'
  | 'stream-processor-node-metrics'
  | 'stream-state-metrics'
  | 'stream-record-cache-metrics'
  | 'consumer-fetch-manager-metrics'

/**
 * A metric's identity (Kafka: `MetricName`): name, group and tags. Two metrics with equal name,
 * group and tags are the same metric; a registry hands out one `MetricName` object per metric, so
 * the objects can also be compared by identity.
 */
export interface MetricName {
  /** e.g. `process-rate` */
  readonly name: string
  readonly group: MetricGroup
  readonly description: string
  /** e.g. `{ 'thread-id': 'app-1-StreamThread-1', 'task-id': '0_1' }` */
  readonly tags: Readonly<Record<string, string>>
}

/** Whether a metric is a monotonic count (exported as a counter) or a gauge. */
export type MetricKind = 'counter' | 'gauge'

/** One metric (Kafka: `Metric`). */
export interface Metric {
  readonly metricName: MetricName
  /** The recording level of the sensor behind it (KIP-444). */
  readonly level: RecordingLevel
  readonly kind: MetricKind
  /**
   * The current value: a number (rates per second, latencies in milliseconds, counts), `NaN` when
   * a windowed stat has no sample (as Kafka), or a string for the client `state`.
   */
  metricValue(): number | string
}

/** Anything with Kafka Streams' `metrics()`: the runtime, the TopologyTestDriver, a registry. */
export interface MetricsSource {
  /** A snapshot of the registered metrics, keyed by their (interned) {@link MetricName}. */
  metrics(): ReadonlyMap<MetricName, Metric>
}

/** Options of a metrics registry. */
export interface MetricsConfig {
  /** Sensors above this level record nothing and register no metrics. @defaultValue 'INFO' */
  readonly recordingLevel?: RecordingLevel
  /**
   * Length of one sample of the windowed stats (rates, avg/max/min), milliseconds (Kafka:
   * `metrics.sample.window.ms`). @defaultValue 30000
   */
  readonly sampleWindowMs?: number
  /** Samples kept (Kafka: `metrics.num.samples`). @defaultValue 2 */
  readonly numSamples?: number
  /** Clock of the windowed stats, milliseconds. @defaultValue `Date.now` */
  readonly clock?: () => number
}
