/**
 * Exports kstreams' metrics through the OpenTelemetry Metrics API: one observable instrument per
 * Kafka Streams metric, registered on a `Meter` the user brings (the user's SDK and exporter
 * decide where the data goes: OTLP, Prometheus, console...). `@opentelemetry/api` is an optional
 * peer dependency and is only imported for types here: this module calls the Meter it is given.
 *
 * Naming: `kafka_streams_<level>_<metric>` with `-` → `_` (`stream-thread-metrics` /
 * `process-rate` → `kafka_streams_thread_process_rate`); the consumer's lag is
 * `kafka_consumer_fetch_manager_records_lag[_max|_avg]`. Tags become attributes with `-` → `_`
 * (`thread-id` → `thread_id`). `-total` and cumulative counts are observable counters, everything
 * else observable gauges; metrics in ms carry unit `ms`. The client `state` (a string) is observed
 * as 1 with attribute `state` (`kafka_streams_client_state{state="RUNNING"} 1`). Windowed stats
 * without samples (`NaN`) are not observed.
 *
 * @example
 * ```ts
 * import { metrics } from '@opentelemetry/api'
 * const handle = registerOpenTelemetry(metrics.getMeter('my-service'), streams)
 * // ... on shutdown: handle.unregister()
 * ```
 */
import type { Attributes, BatchObservableResult, Meter, Observable } from '@opentelemetry/api'
import { METRIC_CATALOGUE, type CatalogueEntry } from './names.js'
import type { MetricGroup, MetricsSource, RecordingLevel } from './types.js'

const GROUP_PREFIX: Record<MetricGroup, string> = {
  'stream-metrics': 'kafka_streams_client_',
  'stream-thread-metrics': 'kafka_streams_thread_',
  'stream-task-metrics': 'kafka_streams_task_',
  'stream-processor-node-metrics': 'kafka_streams_processor_node_',
  'stream-state-metrics': 'kafka_streams_state_',
  'stream-record-cache-metrics': 'kafka_streams_record_cache_',
  'consumer-fetch-manager-metrics': 'kafka_consumer_fetch_manager_',
}

/** The exported name of a metric: `('stream-thread-metrics', 'process-rate')` → `kafka_streams_thread_process_rate`. */
export function exportedMetricName(group: MetricGroup, name: string): string {
  return GROUP_PREFIX[group] + name.replace(/-/g, '_')
}

/** Tags as attributes/labels: `-` → `_` in keys (`thread-id` → `thread_id`). */
export function exportedAttributes(tags: Readonly<Record<string, string>>): Attributes {
  const out: Attributes = {}
  for (const [k, v] of Object.entries(tags)) out[k.replace(/-/g, '_')] = v
  return out
}

/** Options of {@link registerOpenTelemetry}. */
export interface OpenTelemetryExportOptions {
  /**
   * Declare instruments up to this level only (metrics above the source's recording level never
   * have data). @defaultValue the source's `recordingLevel` if it has one, else 'TRACE'
   */
  readonly recordingLevel?: RecordingLevel
}

/** Handle returned by {@link registerOpenTelemetry}. */
export interface OpenTelemetryRegistration {
  /** Stops observing (removes the batch callback from the meter). */
  unregister(): void
}

const RANK: Record<RecordingLevel, number> = { INFO: 0, DEBUG: 1, TRACE: 2 }

function unitOf(entry: CatalogueEntry): string | undefined {
  return /latency|lateness/.test(entry.name) ? 'ms' : undefined
}

/**
 * Registers one observable instrument per Kafka Streams metric on `meter`; each collection reads
 * `source.metrics()` once and observes every metric with its tags as attributes.
 * @param meter a Meter from the user's MeterProvider (`@opentelemetry/api` `metrics.getMeter(...)`)
 * @param source the KafkaStreams instance, a TopologyTestDriver or a `StreamsMetrics`
 */
export function registerOpenTelemetry(
  meter: Meter,
  source: MetricsSource & { readonly recordingLevel?: RecordingLevel },
  options: OpenTelemetryExportOptions = {},
): OpenTelemetryRegistration {
  const level = options.recordingLevel ?? source.recordingLevel ?? 'TRACE'
  const instruments = new Map<string, Observable>()
  for (const entry of METRIC_CATALOGUE) {
    if (RANK[entry.level] > RANK[level]) continue
    const unit = unitOf(entry)
    const opts = { description: entry.description, ...(unit !== undefined ? { unit } : {}) }
    const name = exportedMetricName(entry.group, entry.name)
    instruments.set(
      `${entry.group}\u0000${entry.name}`,
      entry.kind === 'counter' ? meter.createObservableCounter(name, opts) : meter.createObservableGauge(name, opts),
    )
  }
  const callback = (result: BatchObservableResult): void => {
    for (const [metricName, metric] of source.metrics()) {
      const instrument = instruments.get(`${metricName.group}\u0000${metricName.name}`)
      if (instrument === undefined) continue
      const value = metric.metricValue()
      const attributes = exportedAttributes(metricName.tags)
      if (typeof value === 'string') result.observe(instrument, 1, { ...attributes, state: value })
      else if (Number.isFinite(value)) result.observe(instrument, value, attributes)
    }
  }
  const observables = [...instruments.values()]
  meter.addBatchObservableCallback(callback, observables)
  return { unregister: () => meter.removeBatchObservableCallback(callback, observables) }
}
