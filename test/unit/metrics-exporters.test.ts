/**
 * Exporters: OpenTelemetry observable instruments read by the real @opentelemetry/sdk-metrics (in-
 * memory exporter), and Prometheus text from the OpenTelemetry Prometheus exporter, parsed back.
 */
import { afterEach, describe, expect, it } from 'vitest'
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type DataPoint,
} from '@opentelemetry/sdk-metrics'
import { Consumed, Grouped, Materialized, Serdes, StreamsBuilder } from '../../topology/index.js'
import { TimeWindows } from '../../topology/dsl/windows.js'
import { TopologyTestDriver } from '../../lib/testing/index.js'
import { StreamsMetrics, createPrometheusScraper, exportedMetricName, registerOpenTelemetry } from '../../lib/metrics/index.js'

const S = Serdes.String()
const L = Serdes.Long()
const teardown: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const f of teardown.splice(0).reverse()) await f()
})

/** A driver that processed 5 records, one of them late (dropped). */
async function driverWithData(): Promise<TopologyTestDriver> {
  const b = new StreamsBuilder()
  b.stream('in', Consumed.with(S, S))
    .groupByKey(Grouped.with(S, S))
    .windowedBy(TimeWindows.ofSizeAndGrace(2, 1))
    .count(Materialized.as<string, number>('counts'))
    .toStream()
    .map((w, n) => ({ key: w.key, value: n }))
    .to('out', { keySerde: S, valueSerde: L })
  const d = new TopologyTestDriver(b.build(), { metricsRecordingLevel: 'DEBUG' }, 10_000)
  teardown.push(() => d.close())
  const input = d.createInputTopic('in', S, S)
  for (const t of [0, 1, 2, 5, 0]) await input.pipeInput('k', 'v', t)
  return d
}

describe('OpenTelemetry (@opentelemetry/sdk-metrics as the user would run it)', () => {
  it('exports counters and gauges with Kafka Streams names mapped to kafka_streams_<level>_<name> and tags as attributes', async () => {
    const d = await driverWithData()
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })
    const provider = new MeterProvider({ readers: [reader] })
    teardown.push(() => provider.shutdown())
    let reads = 0
    const counted = { recordingLevel: d.recordingLevel, metrics: () => (reads++, d.metrics()) }
    const registration = registerOpenTelemetry(provider.getMeter('kstreams-test'), counted)
    await reader.forceFlush()
    expect(reads).toBe(1) // one read of all metrics per collection
    const metrics = exporter
      .getMetrics()
      .at(-1)!
      .scopeMetrics.flatMap((s) => s.metrics)
    const byName = new Map(metrics.map((m) => [m.descriptor.name, m]))

    const dropped = byName.get('kafka_streams_task_dropped_records_total')!
    expect(dropped.descriptor.description).toBe('The total number of records dropped within this task')
    expect(dropped.dataPointType).toBe(3 /* SUM */)
    expect((dropped as { isMonotonic?: boolean }).isMonotonic).toBe(true)
    expect(dropped.dataPoints.map((p: DataPoint<unknown>) => [p.attributes, p.value])).toEqual([
      [{ thread_id: 'topology-test-driver', task_id: '0_0' }, 1],
    ])

    const lateness = byName.get('kafka_streams_task_record_lateness_max')!
    expect(lateness.descriptor.unit).toBe('ms')
    expect(lateness.dataPoints[0]!.value).toBe(5) // stream-time 5, late record at 0

    const e2e = byName.get('kafka_streams_processor_node_record_e2e_latency_max')!
    const source = e2e.dataPoints.find((p: DataPoint<unknown>) => p.attributes.processor_node_id === 'KSTREAM-SOURCE-0000000000')
    expect(source?.value).toBe(10_000) // wall clock 10 000 − timestamp 0

    // DEBUG instruments declared; TRACE ones are not (the driver records at DEBUG)
    expect(byName.has('kafka_streams_task_process_total')).toBe(true)
    expect([...byName.keys()].some((n) => n === 'kafka_streams_state_record_e2e_latency_avg')).toBe(false)

    registration.unregister()
    await reader.forceFlush()
    expect(reads).toBe(1)
  })

  it('observes the client state as 1 with a state attribute and skips NaN stats', async () => {
    const m = new StreamsMetrics({ clientId: 'app-1' })
    m.client({ state: () => 'REBALANCING', aliveStreamThreads: () => 2 })
    m.thread('app-1-StreamThread-1') // commit-latency-avg has no sample yet: NaN
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })
    const provider = new MeterProvider({ readers: [reader] })
    teardown.push(() => provider.shutdown())
    registerOpenTelemetry(provider.getMeter('kstreams-test'), m)
    await reader.forceFlush()
    const metrics = exporter
      .getMetrics()
      .at(-1)!
      .scopeMetrics.flatMap((s) => s.metrics)
    const state = metrics.find((x) => x.descriptor.name === 'kafka_streams_client_state')!
    expect(state.dataPoints.map((p: DataPoint<unknown>) => [p.attributes, p.value])).toEqual([
      [{ client_id: 'app-1', state: 'REBALANCING' }, 1],
    ])
    expect(metrics.find((x) => x.descriptor.name === 'kafka_streams_thread_commit_latency_avg')?.dataPoints ?? []).toEqual([])
    expect(metrics.find((x) => x.descriptor.name === 'kafka_streams_thread_commit_total')!.dataPoints[0]!.value).toBe(0)
  })

  it('names map per group', () => {
    expect(exportedMetricName('stream-thread-metrics', 'process-rate')).toBe('kafka_streams_thread_process_rate')
    expect(exportedMetricName('stream-processor-node-metrics', 'window-aggregate-final-emit-total')).toBe(
      'kafka_streams_processor_node_window_aggregate_final_emit_total',
    )
    expect(exportedMetricName('consumer-fetch-manager-metrics', 'records-lag-max')).toBe('kafka_consumer_fetch_manager_records_lag_max')
  })
})

/** Parses Prometheus text format 0.0.4: HELP/TYPE per family, samples `name{labels} value`. */
function parsePrometheus(text: string): {
  types: Map<string, string>
  help: Map<string, string>
  samples: Array<{ name: string; labels: Record<string, string>; value: number }>
} {
  const types = new Map<string, string>()
  const help = new Map<string, string>()
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = []
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    let m = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line)
    if (m) {
      ;(m[1] === 'HELP' ? help : types).set(m[2]!, m[3]!)
      continue
    }
    if (line.startsWith('#')) continue
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!
    samples.push({ name: m[1]!, labels, value: m[3] === 'NaN' ? NaN : Number(m[3]) })
  }
  return { types, help, samples }
}

describe('Prometheus text (OpenTelemetry Prometheus exporter)', () => {
  it('a scrape parses as Prometheus text with the named series, types, help and labels', async () => {
    const d = await driverWithData()
    const scraper = await createPrometheusScraper(d)
    teardown.push(() => scraper.shutdown())
    expect(scraper.contentType).toBe('text/plain; version=0.0.4; charset=utf-8')
    const { types, help, samples } = parsePrometheus(await scraper.scrape())
    const task = { thread_id: 'topology-test-driver', task_id: '0_0' }

    expect(types.get('kafka_streams_task_dropped_records_total')).toBe('counter')
    expect(help.get('kafka_streams_task_dropped_records_total')).toBe('The total number of records dropped within this task')
    expect(samples.filter((s) => s.name === 'kafka_streams_task_dropped_records_total')).toEqual([
      { name: 'kafka_streams_task_dropped_records_total', labels: task, value: 1 },
    ])
    expect(samples.find((s) => s.name === 'kafka_streams_task_process_total')).toEqual({
      name: 'kafka_streams_task_process_total',
      labels: task,
      value: 5,
    })
    expect(types.get('kafka_streams_task_process_rate')).toBe('gauge')
    expect(samples.find((s) => s.name === 'kafka_streams_task_record_lateness_max')?.value).toBe(5)
    // no OpenTelemetry scope labels or target_info unless asked for
    expect(samples.some((s) => s.name === 'target_info' || 'otel_scope_name' in s.labels)).toBe(false)

    // a later scrape sees new values
    await d.createInputTopic('in', S, S).pipeInput('k', 'v', 1)
    const again = parsePrometheus(await scraper.scrape())
    expect(again.samples.find((s) => s.name === 'kafka_streams_task_dropped_records_total')?.value).toBe(2)
    expect(again.samples.find((s) => s.name === 'kafka_streams_task_process_total')?.value).toBe(6)
  })
})
