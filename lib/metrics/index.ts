/**
 * Metrics: Kafka Streams' metric names, groups, tags and recording levels (KIP-444), a registry
 * with cheap sensors, and exporters to OpenTelemetry and Prometheus. The runtime wiring is
 * described at the top of ./streams-metrics.ts.
 */
export type { Metric, MetricGroup, MetricKind, MetricName, MetricsConfig, MetricsSource, RecordingLevel } from './types.js'
export type { CountRecorder, ProcessorNodeMetrics, SuppressionBufferMetrics, TaskMetrics, ValueRecorder } from './types.js'
export * from './names.js'
export { MetricsRegistry, findMetrics, isRecordingLevel, metricValue } from './registry.js'
export {
  StreamsMetrics,
  type ClientMetrics,
  type ConsumerLagMetrics,
  type RuntimeTaskMetrics,
  type StoreMetrics,
  type StreamsMetricsOptions,
  type ThreadMetrics,
} from './streams-metrics.js'
export {
  exportedAttributes,
  exportedMetricName,
  registerOpenTelemetry,
  type OpenTelemetryExportOptions,
  type OpenTelemetryRegistration,
} from './opentelemetry.js'
export { createPrometheusScraper, type PrometheusScraper, type PrometheusScraperOptions } from './prometheus.js'
