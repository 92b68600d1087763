/**
 * Kafka Streams' task and processor-node metrics through the TopologyTestDriver, asserted as
 * Kafka Streams' own tests do (KStreamWindowAggregateTest, SuppressScenarioTest, StreamTaskTest).
 */
import { describe, expect, it } from 'vitest'
import { Consumed, Grouped, Materialized, Serdes, StreamsBuilder, type Topology } from '../../topology/index.js'
import { TimeWindows } from '../../topology/dsl/windows.js'
import { BufferConfig, EmitStrategy, Suppressed } from '../../topology/dsl/suppressed.js'
import { TopologyTestDriver, findMetrics, metricValue, type RecordingLevel } from '../../lib/testing/index.js'

const S = Serdes.String()
const L = Serdes.Long()
const TASK = { 'thread-id': 'topology-test-driver', 'task-id': '0_0' }

/** Windowed count, 2 ms windows with 1 ms grace, optionally emitting final results only. */
function windowedCount(emit?: EmitStrategy): Topology {
  const b = new StreamsBuilder()
  const windowed = b.stream('in', Consumed.with(S, S)).groupByKey(Grouped.with(S, S)).windowedBy(TimeWindows.ofSizeAndGrace(2, 1))
  ;(emit ? windowed.emitStrategy(emit) : windowed)
    .count(Materialized.as<string, number>('counts').withCachingDisabled())
    .toStream()
    .map((w, n) => ({ key: `${w.key}@${w.window.startMs}`, value: n }))
    .to('out', { keySerde: S, valueSerde: L })
  return b.build()
}

async function run(topology: Topology, level: RecordingLevel, timestamps: number[], wallClockMs = 0): Promise<TopologyTestDriver> {
  const d = new TopologyTestDriver(topology, { metricsRecordingLevel: level }, wallClockMs)
  const input = d.createInputTopic('in', S, S)
  for (const t of timestamps) await input.pipeInput('k', 'v', t)
  return d
}

describe('TopologyTestDriver.metrics()', () => {
  it('dropped-records-total/-rate count late records of a windowed aggregation (task level, INFO)', async () => {
    // stream-time 5 closes [0,2) (2 + 1 <= 5) and [2,4): the record at 0 is late
    const d = await run(windowedCount(), 'INFO', [0, 1, 2, 5, 0])
    const m = d.metrics()
    expect(metricValue(m, 'dropped-records-total', TASK, 'stream-task-metrics')).toBe(1)
    // virtual clock never advanced: Kafka's rate pads the window to one full sample (30 s)
    expect(metricValue(m, 'dropped-records-rate', TASK, 'stream-task-metrics')).toBeCloseTo(1 / 30, 6)
    const [metric] = findMetrics(m, 'dropped-records-total')
    expect(metric!.metricName).toEqual({
      name: 'dropped-records-total',
      group: 'stream-task-metrics',
      description: 'The total number of records dropped within this task',
      tags: TASK,
    })
    expect(metric!.level).toBe('INFO')
    // the older counters by reason are still there
    expect(m.droppedRecords).toBe(1)
    expect(m.droppedRecordsByReason).toEqual({ late: 1 })
    await d.close()
  })

  it('record-lateness-max/-avg: stream-time minus the record timestamp, 0 for in-order records (DEBUG)', async () => {
    const d = await run(windowedCount(), 'DEBUG', [3, 14, 8, 15, 9])
    const m = d.metrics()
    // lateness: 0, 0, 14-8=6, 0, 15-9=6
    expect(metricValue(m, 'record-lateness-max', TASK)).toBe(6)
    expect(metricValue(m, 'record-lateness-avg', TASK)).toBeCloseTo(12 / 5, 9)
    await d.close()
  })

  it('process-total counts the records a task processed; process-latency is measured (DEBUG)', async () => {
    const d = await run(windowedCount(), 'DEBUG', [0, 1, 2, 3, 4, 5, 6])
    const m = d.metrics()
    expect(metricValue(m, 'process-total', TASK, 'stream-task-metrics')).toBe(7)
    expect(metricValue(m, 'process-rate', TASK, 'stream-task-metrics')).toBeCloseTo(7 / 30, 6)
    const maxLatency = metricValue(m, 'process-latency-max', TASK) as number
    expect(maxLatency).toBeGreaterThanOrEqual(0)
    expect(maxLatency).toBeLessThan(1000)
    await d.close()
  })

  it('DEBUG-only metrics are absent at INFO (KIP-444), INFO ones present', async () => {
    const d = await run(windowedCount(EmitStrategy.onWindowClose()), 'INFO', [0, 1, 5, 0])
    const names = new Set([...d.metrics().keys()].map((n) => n.name))
    for (const debugOnly of [
      'record-lateness-max',
      'process-total',
      'process-latency-avg',
      'window-aggregate-final-emit-total',
      'window-aggregate-final-emit-latency-max',
    ]) {
      expect(names.has(debugOnly), debugOnly).toBe(false)
    }
    for (const info of [
      'dropped-records-total',
      'dropped-records-rate',
      'record-e2e-latency-avg',
      'record-e2e-latency-min',
      'record-e2e-latency-max',
    ]) {
      expect(names.has(info), info).toBe(true)
    }
    expect(d.recordingLevel).toBe('INFO')
    await d.close()
  })

  it('window-aggregate-final-emit-total counts final results of emitStrategy(onWindowClose) (KIP-825, DEBUG)', async () => {
    const d = await run(windowedCount(EmitStrategy.onWindowClose()), 'DEBUG', [0, 1, 2, 1, 0, 5])
    const out = d.createOutputTopic('out', S, L).readKeyValuesToList()
    expect(out).toEqual([
      { key: 'k@0', value: 4 },
      { key: 'k@2', value: 1 },
    ])
    const m = d.metrics()
    const [emit] = findMetrics(m, 'window-aggregate-final-emit-total')
    expect(emit!.metricName.group).toBe('stream-processor-node-metrics')
    expect(emit!.metricName.tags).toMatchObject({ ...TASK, 'processor-node-id': expect.stringMatching(/^KSTREAM-AGGREGATE-\d{10}$/) })
    expect(emit!.metricValue()).toBe(2)
    expect(Number.isFinite(metricValue(m, 'window-aggregate-final-emit-latency-max'))).toBe(true)
    await d.close()
  })

  it('suppress(untilWindowCloses): suppression-emit-total (node) and suppression-buffer-count/-size (store), DEBUG', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S))
      .groupByKey(Grouped.with(S, S))
      .windowedBy(TimeWindows.ofSizeAndGrace(2, 1))
      .count(Materialized.as<string, number>('counts').withCachingDisabled())
      .suppress(Suppressed.untilWindowCloses(BufferConfig.unbounded()))
      .toStream()
      .map((w, n) => ({ key: `${w.key}@${w.window.startMs}`, value: n }))
      .to('out', { keySerde: S, valueSerde: L })
    const d = await run(b.build(), 'DEBUG', [0, 1, 2, 1, 0, 5])
    expect(d.createOutputTopic('out', S, L).readKeyValuesToList()).toEqual([
      { key: 'k@0', value: 4 },
      { key: 'k@2', value: 1 },
    ])
    const m = d.metrics()
    expect(metricValue(m, 'suppression-emit-total', TASK, 'stream-processor-node-metrics')).toBe(2)
    const [count] = findMetrics(m, 'suppression-buffer-count-max', TASK, 'stream-state-metrics')
    expect(Object.keys(count!.metricName.tags)).toEqual(['thread-id', 'task-id', 'in-memory-suppression-state-id'])
    // buffered windows after each record: 1, 1, 2, 2, 2, then 5 evicts both and buffers [4,6)
    expect(count!.metricValue()).toBe(2)
    expect(metricValue(m, 'suppression-buffer-size-max', TASK, 'stream-state-metrics')).toBeGreaterThan(0)
    await d.close()
  })

  it('record-e2e-latency at source and terminal nodes: wall-clock minus record timestamp (KIP-613, INFO)', async () => {
    const d = await run(windowedCount(), 'INFO', [4_000, 7_000], 10_000)
    const m = d.metrics()
    const source = { ...TASK, 'processor-node-id': 'KSTREAM-SOURCE-0000000000' }
    expect(metricValue(m, 'record-e2e-latency-max', source)).toBe(6_000)
    expect(metricValue(m, 'record-e2e-latency-min', source)).toBe(3_000)
    expect(metricValue(m, 'record-e2e-latency-avg', source)).toBe(4_500)
    const nodes = findMetrics(m, 'record-e2e-latency-max', TASK).map((x) => x.metricName.tags['processor-node-id'])
    // the source and the sink (the only terminal node); not the aggregate or the map in between
    expect(nodes).toHaveLength(2)
    expect(nodes).toEqual(expect.arrayContaining(['KSTREAM-SOURCE-0000000000', expect.stringMatching(/^KSTREAM-SINK-/)]))
    await d.close()
  })

  it('hit-ratio-avg/-min/-max of a record cache (DEBUG): after each point read, the share of reads the cache answered', async () => {
    // one input record counts three words of one key: the first read misses, the next two hit
    // the entry the first update left in the cache (the driver flushes after each record)
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S))
      .flatMapValues((v) => v.split(' '))
      .groupByKey(Grouped.with(S, S))
      .count(Materialized.as<string, number>('counts'))
      .toStream()
      .to('out', { keySerde: S, valueSerde: L })
    const cache = { ...TASK, 'record-cache-id': 'counts' }
    for (const level of ['DEBUG', 'INFO'] as const) {
      const d = new TopologyTestDriver(b.build(), { metricsRecordingLevel: level }, 0)
      await d.createInputTopic('in', S, S).pipeInput('k', 'a b c', 0)
      const m = d.metrics()
      if (level === 'INFO') {
        expect([...m.keys()].filter((n) => n.group === 'stream-record-cache-metrics')).toEqual([])
      } else {
        // ratios recorded: 0/1, 1/2, 2/3
        expect(metricValue(m, 'hit-ratio-min', cache, 'stream-record-cache-metrics')).toBe(0)
        expect(metricValue(m, 'hit-ratio-max', cache, 'stream-record-cache-metrics')).toBeCloseTo(2 / 3, 9)
        expect(metricValue(m, 'hit-ratio-avg', cache, 'stream-record-cache-metrics')).toBeCloseTo((0 + 1 / 2 + 2 / 3) / 3, 9)
      }
      await d.close()
    }
  })

  it('rates follow the virtual wall clock', async () => {
    const d = new TopologyTestDriver(windowedCount(), { metricsRecordingLevel: 'DEBUG' }, 0)
    const input = d.createInputTopic('in', S, S)
    for (let i = 0; i < 30; i++) await input.pipeInput('k', 'v', i)
    await d.advanceWallClockTime(30_000)
    // one full 30 s sample holding 30 records, a new empty one: 30 records / 30 s
    expect(metricValue(d.metrics(), 'process-rate', TASK, 'stream-task-metrics')).toBeCloseTo(1, 6)
    await d.close()
  })
})
