/**
 * The metrics registry and StreamsMetrics: recording levels, windowed stats over an injected
 * clock, owners, the runtime-level sensors (client, thread, task, store, consumer lag).
 */
import { describe, expect, it } from 'vitest'
import {
  METRIC_CATALOGUE,
  MetricsRegistry,
  StreamsMetrics,
  TASK_SENSORS,
  THREAD_SENSORS,
  findMetrics,
  metricValue,
} from '../../lib/metrics/index.js'
import { NOOP_RECORDER } from '../../topology/engine/metrics.js'
import { resolveStreamsConfig } from '../../lib/app/options.js'
import { StreamsConfigError } from '../../topology/errors.js'

function clock(start = 0): { now: () => number; advance: (ms: number) => void } {
  let t = start
  return { now: () => t, advance: (ms) => void (t += ms) }
}

describe('MetricsRegistry', () => {
  it('a sensor above the recording level is the no-op recorder and registers nothing', () => {
    const r = new MetricsRegistry({ recordingLevel: 'INFO' })
    expect(r.valueSensor(TASK_SENSORS.process, { 'task-id': '0_0' })).toBe(NOOP_RECORDER)
    expect(r.metrics().size).toBe(0)
    r.countSensor(TASK_SENSORS.droppedRecords, { 'task-id': '0_0' })
    expect([...r.metrics().keys()].map((n) => n.name).sort()).toEqual(['dropped-records-rate', 'dropped-records-total'])
  })

  it('rejects an unknown recording level', () => {
    // @ts-expect-error not a level
    expect(() => new MetricsRegistry({ recordingLevel: 'debug' })).toThrow(
      /recordingLevel must be 'INFO' \| 'DEBUG' \| 'TRACE', got "debug"/,
    )
  })

  it('latency avg/max/min and rate are windowed: samples older than numSamples windows are forgotten', () => {
    const c = clock()
    const r = new MetricsRegistry({ recordingLevel: 'DEBUG', clock: c.now, sampleWindowMs: 1000, numSamples: 2 })
    const s = r.valueSensor(THREAD_SENSORS.commit, { 'thread-id': 't' })
    const value = (name: string) => metricValue(r.metrics(), name)
    expect(value('commit-latency-avg')).toBeNaN()
    s.record(10)
    s.record(30)
    expect(value('commit-latency-avg')).toBe(20)
    expect(value('commit-latency-max')).toBe(30)
    c.advance(1000)
    // samples roll when read: this read closes the first sample, which stays in the window
    expect(value('commit-latency-max')).toBe(30)
    s.record(50)
    expect(value('commit-latency-max')).toBe(50)
    expect(value('commit-latency-avg')).toBe(30)
    // 3 commits over 1000 ms (one full sample, no padding needed)
    expect(value('commit-rate')).toBeCloseTo(3, 9)
    c.advance(1000) // closes the second sample; the first is now out of the 2-sample window
    expect(value('commit-latency-max')).toBe(50)
    c.advance(2000)
    expect(value('commit-latency-max')).toBeNaN()
    expect(value('commit-rate')).toBe(0)
    expect(value('commit-total')).toBe(3)
  })

  it('asking twice for a sensor returns the same one; removeOwner drops its metrics', () => {
    const r = new MetricsRegistry()
    const a = r.countSensor(TASK_SENSORS.droppedRecords, { 'task-id': '0_0' }, 'task-0_0')
    expect(r.countSensor(TASK_SENSORS.droppedRecords, { 'task-id': '0_0' }, 'task-0_0')).toBe(a)
    r.countSensor(TASK_SENSORS.droppedRecords, { 'task-id': '0_1' }, 'task-0_1')
    r.removeOwner('task-0_0')
    expect(findMetrics(r.metrics(), 'dropped-records-total').map((m) => m.metricName.tags['task-id'])).toEqual(['0_1'])
  })

  it('metricValue insists on one match', () => {
    const r = new MetricsRegistry()
    r.countSensor(TASK_SENSORS.droppedRecords, { 'task-id': '0_0' })
    r.countSensor(TASK_SENSORS.droppedRecords, { 'task-id': '0_1' })
    expect(() => metricValue(r.metrics(), 'dropped-records-total')).toThrow(/2 metrics named 'dropped-records-total' match/)
    expect(metricValue(r.metrics(), 'dropped-records-total', { 'task-id': '0_1' })).toBe(0)
    expect(metricValue(r.metrics(), 'no-such-metric')).toBeUndefined()
  })
})

describe('StreamsMetrics (the runtime levels)', () => {
  it('client: state, alive-stream-threads, failed-stream-threads with tag client-id', () => {
    const m = new StreamsMetrics({ clientId: 'app-1' })
    let state = 'CREATED'
    const client = m.client({ state: () => state, aliveStreamThreads: () => 1 })
    state = 'RUNNING'
    client.failedStreamThreads.record()
    const all = m.metrics()
    expect(metricValue(all, 'state', { 'client-id': 'app-1' }, 'stream-metrics')).toBe('RUNNING')
    expect(metricValue(all, 'alive-stream-threads')).toBe(1)
    const [failed] = findMetrics(all, 'failed-stream-threads')
    expect(failed!.metricValue()).toBe(1)
    expect(failed!.kind).toBe('counter')
  })

  it('thread: recordProcess counts records for process-rate/-total and per-record latency', () => {
    const c = clock()
    const m = new StreamsMetrics({ clientId: 'app', clock: c.now })
    const t = m.thread('app-StreamThread-1')
    t.recordProcess(100, 50) // 100 records in 50 ms
    t.recordProcess(0, 3) // an idle iteration records nothing
    t.recordProcess(10, 10)
    t.poll.record(4)
    t.taskCreated.record()
    const all = m.metrics()
    const tags = { 'thread-id': 'app-StreamThread-1' }
    expect(metricValue(all, 'process-total', tags, 'stream-thread-metrics')).toBe(110)
    expect(metricValue(all, 'process-latency-max', tags)).toBe(1)
    expect(metricValue(all, 'process-latency-avg', tags)).toBeCloseTo(60 / 110, 9)
    expect(metricValue(all, 'process-records-max', tags)).toBe(100)
    expect(metricValue(all, 'poll-total', tags)).toBe(1)
    expect(metricValue(all, 'task-created-total', tags)).toBe(1)
    t.close()
    expect(m.metrics().size).toBe(0)
  })

  it('task: store sensors tagged leveldb-state-id, KIP-869 restore metrics, close() removes them all', () => {
    const m = new StreamsMetrics({ clientId: 'app', recordingLevel: 'DEBUG' })
    const task = m.task('t1', '1_3')
    let remaining = 500
    task.restoreRemainingRecords(() => remaining)
    task.restore.record(200)
    remaining = 300
    task.store('counts', 'leveldb').put.record(0.2)
    task.store('windows', 'leveldb-window').fetch.record(1.5)
    task.activeBufferCount(() => 7)
    const all = m.metrics()
    expect(metricValue(all, 'restore-total', { 'task-id': '1_3' }, 'stream-task-metrics')).toBe(200)
    expect(metricValue(all, 'restore-remaining-records-total', { 'task-id': '1_3' })).toBe(300)
    // falls while restoring: a gauge despite the -total suffix (a counter would break exporters)
    expect(findMetrics(all, 'restore-remaining-records-total')[0]!.kind).toBe('gauge')
    task.commit.record()
    expect(metricValue(m.metrics(), 'commit-total', { 'task-id': '1_3' }, 'stream-task-metrics')).toBe(1)
    // task-level commit has rate and total only (Kafka Streams' TaskMetrics#commitSensor)
    expect(findMetrics(m.metrics(), 'commit-latency-avg', { 'task-id': '1_3' })).toEqual([])
    expect(metricValue(all, 'active-buffer-count', { 'task-id': '1_3' })).toBe(7)
    expect(metricValue(all, 'put-latency-max', { 'leveldb-state-id': 'counts' }, 'stream-state-metrics')).toBe(0.2)
    const [fetch] = findMetrics(all, 'fetch-rate')
    expect(fetch!.metricName.tags).toEqual({ 'thread-id': 't1', 'task-id': '1_3', 'leveldb-window-state-id': 'windows' })
    // TRACE only
    expect(task.store('counts', 'leveldb').recordE2eLatency).toBe(NOOP_RECORDER)
    task.close()
    expect(m.metrics().size).toBe(0)
  })

  it('consumer lag: records-lag per partition and records-lag-max per client; remove() on revoke', () => {
    const m = new StreamsMetrics({ clientId: 'app-consumer' })
    const lag = m.consumerLag()
    lag.record('in', 0, 40)
    lag.record('in', 1, 7)
    lag.record('in', 0, 12)
    const all = m.metrics()
    const p0 = { 'client-id': 'app-consumer', topic: 'in', partition: '0' }
    expect(metricValue(all, 'records-lag', p0, 'consumer-fetch-manager-metrics')).toBe(12)
    expect(metricValue(all, 'records-lag-max', p0)).toBe(40)
    expect(metricValue(all, 'records-lag-max', { 'client-id': 'app-consumer', topic: 'in', partition: '1' })).toBe(7)
    const clientMax = findMetrics(all, 'records-lag-max').filter((x) => x.metricName.tags.topic === undefined)
    expect(clientMax.map((x) => x.metricValue())).toEqual([40])
    lag.remove('in', 0)
    expect(findMetrics(m.metrics(), 'records-lag').map((x) => x.metricName.tags.partition)).toEqual(['1'])
  })

  it('the catalogue names every metric once per group, with Kafka Streams’ suffixes', () => {
    const keys = METRIC_CATALOGUE.map((e) => `${e.group}/${e.name}`)
    expect(new Set(keys).size).toBe(keys.length)
    for (const k of [
      'stream-thread-metrics/process-rate',
      'stream-thread-metrics/commit-latency-max',
      'stream-thread-metrics/punctuate-total',
      'stream-thread-metrics/task-closed-rate',
      'stream-task-metrics/enforced-processing-total',
      'stream-processor-node-metrics/record-e2e-latency-min',
      'stream-state-metrics/range-latency-avg',
      'stream-state-metrics/suppression-buffer-size-max',
      'consumer-fetch-manager-metrics/records-lag-max',
    ]) {
      expect(keys).toContain(k)
    }
  })
})

describe('metricsRecordingLevel config', () => {
  it("defaults to 'INFO' and rejects other values", () => {
    expect(resolveStreamsConfig({ applicationId: 'a', bootstrapServers: 'localhost:9092' }).metricsRecordingLevel).toBe('INFO')
    expect(
      resolveStreamsConfig({ applicationId: 'a', bootstrapServers: 'localhost:9092', metricsRecordingLevel: 'DEBUG' })
        .metricsRecordingLevel,
    ).toBe('DEBUG')
    // @ts-expect-error lower case is not a level
    const bad = () => resolveStreamsConfig({ applicationId: 'a', bootstrapServers: 'localhost:9092', metricsRecordingLevel: 'debug' })
    expect(bad).toThrow(StreamsConfigError)
    expect(bad).toThrow(`invalid config 'metricsRecordingLevel': expected 'INFO' | 'DEBUG' | 'TRACE', got "debug"`)
  })
})
