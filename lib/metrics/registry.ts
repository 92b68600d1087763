/**
 * The metrics registry (Kafka: `org.apache.kafka.common.metrics.Metrics` + Streams'
 * `StreamsMetricsImpl`): creates sensors from {@link SensorSpec}s, registers one {@link Metric} per
 * stat under Kafka Streams' name, group and tags, and removes a task's or thread's metrics when
 * it goes away (by owner).
 *
 * Recording levels (KIP-444): a sensor above the configured `recordingLevel` is the shared no-op
 * recorder and registers no metric, so `metrics()` does not list DEBUG metrics at INFO.
 */
import { NOOP_RECORDER } from '../../topology/engine/metrics.js'
import { CountSensor, LastValueSensor, ValueSensor, type SampleConfig } from './sensors.js'
import { statDescription, statKind, statName, type GaugeSpec, type SensorSpec, type Stat } from './names.js'
import type { CountRecorder, Metric, MetricName, MetricsConfig, MetricsSource, RecordingLevel, ValueRecorder } from './types.js'

const LEVEL_RANK: Record<RecordingLevel, number> = { INFO: 0, DEBUG: 1, TRACE: 2 }

/** Checks a `metricsRecordingLevel` value. */
export function isRecordingLevel(v: unknown): v is RecordingLevel {
  return v === 'INFO' || v === 'DEBUG' || v === 'TRACE'
}

interface Entry {
  readonly metric: Metric
  readonly owner: string | undefined
}

/** Canonical key of a metric: group, name and sorted tags. */
function metricKey(group: string, name: string, tags: Readonly<Record<string, string>>): string {
  let key = `${group}\u0000${name}`
  for (const k of Object.keys(tags).sort()) key += `\u0000${k}=${tags[k]}`
  return key
}

/** The registry; one per KafkaStreams instance (or TopologyTestDriver). */
export class MetricsRegistry implements MetricsSource {
  /** The configured `metrics.recording.level`. */
  readonly recordingLevel: RecordingLevel
  private readonly sampleConfig: SampleConfig
  private readonly entries = new Map<string, Entry>()
  /** Sensors by spec + tags, so asking twice returns the same sensor. */
  private readonly sensors = new Map<string, { sensor: CountSensor | ValueSensor; owner: string | undefined }>()

  constructor(config: MetricsConfig = {}) {
    const level = config.recordingLevel ?? 'INFO'
    if (!isRecordingLevel(level))
      throw new TypeError(`metrics: recordingLevel must be 'INFO' | 'DEBUG' | 'TRACE', got ${JSON.stringify(level)}`)
    this.recordingLevel = level
    this.sampleConfig = Object.freeze({
      sampleWindowMs: config.sampleWindowMs ?? 30_000,
      numSamples: Math.max(1, config.numSamples ?? 2),
      clock: config.clock ?? Date.now,
    })
  }

  /** True when sensors of `level` record (Kafka: `Sensor.RecordingLevel#shouldRecord`). */
  shouldRecord(level: RecordingLevel): boolean {
    return LEVEL_RANK[level] <= LEVEL_RANK[this.recordingLevel]
  }

  /**
   * A counting sensor for `spec` with `tags` (`-rate`, `-total`, or a cumulative `count`), or the
   * no-op recorder when its level is off. `owner` groups metrics for {@link removeOwner}.
   */
  countSensor(spec: SensorSpec, tags: Readonly<Record<string, string>>, owner?: string): CountRecorder {
    return this.sensor(spec, tags, owner, 'count') as CountRecorder
  }

  /** A value sensor for `spec` (`-avg`/`-max`/`-min`/latency/rate/total/latest value), or the no-op recorder. */
  valueSensor(spec: SensorSpec, tags: Readonly<Record<string, string>>, owner?: string): ValueRecorder {
    return this.sensor(spec, tags, owner, 'value') as ValueRecorder
  }

  private sensor(
    spec: SensorSpec,
    tags: Readonly<Record<string, string>>,
    owner: string | undefined,
    type: 'count' | 'value',
  ): CountRecorder | ValueRecorder {
    if (!this.shouldRecord(spec.level)) return NOOP_RECORDER
    const key = `${type}\u0000${spec.stats.join(',')}\u0000${metricKey(spec.group, spec.name, tags)}`
    const existing = this.sensors.get(key)
    if (existing) return existing.sensor
    const sensor =
      type === 'count'
        ? new CountSensor(this.sampleConfig)
        : spec.stats.includes('value')
          ? new LastValueSensor(this.sampleConfig)
          : new ValueSensor(this.sampleConfig)
    this.sensors.set(key, { sensor, owner })
    for (const stat of spec.stats) {
      this.register(
        spec.group,
        statName(spec.name, stat),
        statDescription(spec, stat),
        tags,
        spec.level,
        statKind(stat),
        readStat(sensor, stat),
        owner,
      )
    }
    return sensor
  }

  /**
   * Registers a metric whose value is read from `value()` when the metric is read (a gauge such
   * as `alive-stream-threads`). Does nothing when its level is off.
   */
  gauge(spec: GaugeSpec, tags: Readonly<Record<string, string>>, value: () => number | string, owner?: string): void {
    if (!this.shouldRecord(spec.level)) return
    this.register(spec.group, spec.name, spec.description, tags, spec.level, spec.kind ?? 'gauge', value, owner)
  }

  private register(
    group: GaugeSpec['group'],
    name: string,
    description: string,
    tags: Readonly<Record<string, string>>,
    level: RecordingLevel,
    kind: Metric['kind'],
    read: () => number | string,
    owner: string | undefined,
  ): void {
    const metricName: MetricName = Object.freeze({ name, group, description, tags: Object.freeze({ ...tags }) })
    const metric: Metric = Object.freeze({ metricName, level, kind, metricValue: read })
    this.entries.set(metricKey(group, name, tags), { metric, owner })
  }

  /** Removes every metric and sensor registered with `owner` (a closed task, a stopped thread). */
  removeOwner(owner: string): void {
    for (const [k, e] of this.entries) if (e.owner === owner) this.entries.delete(k)
    for (const [k, s] of this.sensors) if (s.owner === owner) this.sensors.delete(k)
  }

  /** A snapshot of all registered metrics (Kafka Streams: `KafkaStreams#metrics()`). */
  metrics(): ReadonlyMap<MetricName, Metric> {
    const out = new Map<MetricName, Metric>()
    for (const { metric } of this.entries.values()) out.set(metric.metricName, metric)
    return out
  }

  /** The metric with exactly this group, name and tags, if registered. */
  metric(group: string, name: string, tags: Readonly<Record<string, string>>): Metric | undefined {
    return this.entries.get(metricKey(group, name, tags))?.metric
  }
}

function readStat(sensor: CountSensor | ValueSensor, stat: Stat): () => number {
  switch (stat) {
    case 'rate':
      return () => sensor.rate()
    case 'total':
    case 'count':
      return () => sensor.total
    case 'avg':
    case 'latency-avg':
      return () => (sensor as ValueSensor).avg()
    case 'max':
    case 'latency-max':
      return () => (sensor as ValueSensor).maxValue()
    case 'min':
      return () => (sensor as ValueSensor).minValue()
    case 'value':
      return () => (sensor as LastValueSensor).last
  }
}

/**
 * Finds metrics by name (and optionally group and a subset of tags) in any {@link MetricsSource}
 * result: `findMetrics(streams.metrics(), 'dropped-records-total', { 'task-id': '0_0' })`.
 */
export function findMetrics(
  metrics: ReadonlyMap<MetricName, Metric>,
  name: string,
  tags: Readonly<Record<string, string>> = {},
  group?: string,
): Metric[] {
  const out: Metric[] = []
  for (const [n, m] of metrics) {
    if (n.name !== name || (group !== undefined && n.group !== group)) continue
    if (Object.entries(tags).every(([k, v]) => n.tags[k] === v)) out.push(m)
  }
  return out
}

/**
 * The value of the single metric matching `name`, `tags` (a subset) and `group`; `undefined` when
 * none matches. Throws when several match (add tags to choose one).
 */
export function metricValue(
  metrics: ReadonlyMap<MetricName, Metric>,
  name: string,
  tags: Readonly<Record<string, string>> = {},
  group?: string,
): number | string | undefined {
  const found = findMetrics(metrics, name, tags, group)
  if (found.length > 1)
    throw new Error(
      `metricValue: ${found.length} metrics named '${name}' match tags ${JSON.stringify(tags)}; add tags (e.g. task-id, processor-node-id) to choose one`,
    )
  return found[0]?.metricValue()
}
