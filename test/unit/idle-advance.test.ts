import { describe, expect, it } from 'vitest'
import {
  BufferConfig,
  EmitStrategy,
  JoinWindows,
  Materialized,
  Produced,
  Serdes,
  SessionWindows,
  StreamJoined,
  StreamsBuilder,
  Suppressed,
  TimeWindows,
  WindowedSerdes,
} from '../../lib/index.js'
import { TopologyTestDriver, type TopologyTestDriverConfig } from '../../lib/testing/index.js'

/**
 * Wall-clock idle advance (`idleAdvanceMs` / `idleAdvanceDelayMs`, beyond Kafka Streams): with no
 * input for `idleAdvanceMs` of the driver's virtual wall clock, `advanceWallClockTime` moves
 * stream-time to the wall clock minus the delay, so final results come without a later record.
 */

const S = Serdes.String()
const L = Serdes.Long()
const T0 = 1_000_000

function driver(b: StreamsBuilder, config: TopologyTestDriverConfig): TopologyTestDriver {
  return new TopologyTestDriver(b.build(), { applicationId: 'idle', defaultKeySerde: S, defaultValueSerde: S, ...config }, T0)
}

function windowedCounts(emit: 'close' | 'suppress'): StreamsBuilder {
  const b = new StreamsBuilder()
  const windowed = b.stream<string, string>('in').groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(1000, 500))
  const counts =
    emit === 'close'
      ? windowed.emitStrategy(EmitStrategy.onWindowClose()).count(Materialized.with(S, L))
      : windowed.count(Materialized.with(S, L)).suppress(Suppressed.untilWindowCloses(BufferConfig.unbounded()))
  counts.toStream().to('out', Produced.with(WindowedSerdes.timeWindowedSerdeFrom(S, 1000), L))
  return b
}

describe('idle advance: windowed aggregations', () => {
  it('leaves a task without stream-time alone: a replay started on an idle application is not late', async () => {
    const d = driver(windowedCounts('close'), { idleAdvanceMs: 1000 })
    const input = d.createInputTopic('in', S, S)
    const out = d.createOutputTopic('out', WindowedSerdes.timeWindowedSerdeFrom(S, 1000), L)
    // idle before any record: stream-time stays unknown
    await d.advanceWallClockTime(10_000_000)
    // a record hours behind the wall clock counts; the idle advance then closes its window
    await input.pipeInput('a', 'x', T0)
    expect(d.metrics().droppedRecords).toBe(0)
    await d.advanceWallClockTime(1000)
    expect(out.readRecordsToList().map((r) => [r.key!.key, r.key!.window.startMs, r.value])).toEqual([['a', T0, 1]])
    await d.close()
  })

  for (const emit of ['close', 'suppress'] as const) {
    it(`emits the last window's final count once idle (${emit === 'close' ? 'onWindowClose' : 'suppress(untilWindowCloses)'})`, async () => {
      const d = driver(windowedCounts(emit), { idleAdvanceMs: 2000, idleAdvanceDelayMs: 100 })
      const input = d.createInputTopic('in', S, S)
      const out = d.createOutputTopic('out', WindowedSerdes.timeWindowedSerdeFrom(S, 1000), L)
      await input.pipeInput('a', 'x', T0 - 300)
      await input.pipeInput('a', 'y', T0 - 200)
      expect(out.isEmpty()).toBe(true)
      // not idle long enough: nothing moves
      await d.advanceWallClockTime(1999)
      expect(out.isEmpty()).toBe(true)
      // idle for 2000 ms: stream-time = T0 + 2000 - 100, beyond window end 1_000_000 + grace 500
      await d.advanceWallClockTime(1)
      const rows = out.readRecordsToList().map((r) => [r.key!.key, r.key!.window.startMs, r.value, r.timestamp])
      expect(rows).toEqual([['a', T0 - 1000, 2, T0 - 200]])
      // further advances emit nothing twice
      await d.advanceWallClockTime(5000)
      expect(out.isEmpty()).toBe(true)
      // a record behind the advanced stream-time is late and dropped
      await input.pipeInput('a', 'z', T0 + 100)
      await d.advanceWallClockTime(10_000)
      expect(out.isEmpty()).toBe(true)
      expect(d.metrics().droppedRecords).toBe(1)
      await d.close()
    })
  }

  it('keeps the window open while the delay covers it', async () => {
    const d = driver(windowedCounts('close'), { idleAdvanceMs: 1000, idleAdvanceDelayMs: 5000 })
    const input = d.createInputTopic('in', S, S)
    const out = d.createOutputTopic('out', WindowedSerdes.timeWindowedSerdeFrom(S, 1000), L)
    await input.pipeInput('a', 'x', T0 + 100)
    // stream-time = T0 + 2000 - 5000: behind the window [T0, T0 + 1000) + grace
    await d.advanceWallClockTime(2000)
    expect(out.isEmpty()).toBe(true)
    // a record still on time joins the window
    await input.pipeInput('a', 'y', T0 + 900)
    await d.advanceWallClockTime(6000) // stream-time T0 + 8000 - 5000 = T0 + 3000
    expect(out.readKeyValuesToList().map((kv) => [kv.key!.window.startMs, kv.value])).toEqual([[T0, 2]])
    await d.close()
  })

  it('is off by default: stream-time does not follow the wall clock', async () => {
    const d = driver(windowedCounts('close'), {})
    const input = d.createInputTopic('in', S, S)
    const out = d.createOutputTopic('out', WindowedSerdes.timeWindowedSerdeFrom(S, 1000), L)
    await input.pipeInput('a', 'x', T0 - 300)
    await d.advanceWallClockTime(3_600_000)
    expect(out.isEmpty()).toBe(true)
    await d.close()
  })

  it('closes session windows', async () => {
    const b = new StreamsBuilder()
    b.stream<string, string>('in')
      .groupByKey()
      .windowedBy(SessionWindows.ofInactivityGapAndGrace(1000, 0))
      .emitStrategy(EmitStrategy.onWindowClose())
      .count(Materialized.with(S, L))
      .toStream()
      .to('out', Produced.with(WindowedSerdes.sessionWindowedSerdeFrom(S), L))
    const d = driver(b, { idleAdvanceMs: 500 })
    const input = d.createInputTopic('in', S, S)
    const out = d.createOutputTopic('out', WindowedSerdes.sessionWindowedSerdeFrom(S), L)
    await input.pipeInput('k', 'a', T0 - 5000)
    await input.pipeInput('k', 'b', T0 - 4500)
    await d.advanceWallClockTime(500)
    expect(out.readKeyValuesToList().map((kv) => [kv.key!.window.startMs, kv.key!.window.endMs, kv.value])).toEqual([
      [T0 - 5000, T0 - 4500, 2],
    ])
    await d.close()
  })

  it('validates the options', () => {
    expect(() => driver(windowedCounts('close'), { idleAdvanceMs: -2 })).toThrow(/idleAdvanceMs must be an integer >= -1/)
    expect(() => driver(windowedCounts('close'), { idleAdvanceDelayMs: -1 })).toThrow(/idleAdvanceDelayMs must be an integer >= 0/)
  })
})

describe('idle advance: stream-stream joins', () => {
  function join(kind: 'left' | 'outer'): StreamsBuilder {
    const b = new StreamsBuilder()
    const left = b.stream<string, string>('left')
    const right = b.stream<string, string>('right')
    const windows = JoinWindows.ofTimeDifferenceAndGrace(1000, 200)
    const joined =
      kind === 'left'
        ? left.leftJoin(right, (l: string, r: string | null) => `${l}+${r}`, windows, StreamJoined.with(S, S, S))
        : left.outerJoin(right, (l: string | null, r: string | null) => `${l}+${r}`, windows, StreamJoined.with(S, S, S))
    joined.to('out', Produced.with(S, S))
    return b
  }

  it('emits the unmatched left row once idle (left join)', async () => {
    const d = driver(join('left'), { idleAdvanceMs: 1000 })
    const l = d.createInputTopic('left', S, S)
    const out = d.createOutputTopic('out', S, S)
    await l.pipeInput('k', 'A', T0 - 5000)
    expect(out.isEmpty()).toBe(true)
    await d.advanceWallClockTime(1000)
    expect(out.readRecordsToList().map((r) => [r.key, r.value, r.timestamp])).toEqual([['k', 'A+null', T0 - 5000]])
    await d.advanceWallClockTime(1000)
    expect(out.isEmpty()).toBe(true)
    await d.close()
  })

  it('emits unmatched rows of both sides once idle (outer join), matched rows never', async () => {
    const d = driver(join('outer'), { idleAdvanceMs: 1000 })
    const l = d.createInputTopic('left', S, S)
    const r = d.createInputTopic('right', S, S)
    const out = d.createOutputTopic('out', S, S)
    await l.pipeInput('a', 'A', T0 - 9000)
    await r.pipeInput('b', 'B', T0 - 8900)
    await l.pipeInput('c', 'C', T0 - 8800)
    await r.pipeInput('c', 'D', T0 - 8700)
    expect(out.readKeyValuesToList()).toEqual([{ key: 'c', value: 'C+D' }])
    await d.advanceWallClockTime(1000)
    expect(out.readKeyValuesToList()).toEqual([
      { key: 'a', value: 'A+null' },
      { key: 'b', value: 'null+B' },
    ])
    await d.close()
  })

  it('stream-time punctuators see the advanced stream-time', async () => {
    const b = new StreamsBuilder()
    const seen: number[] = []
    b.stream<string, string>('in').process(() => ({
      init(ctx) {
        ctx.schedule(1000, 'STREAM_TIME', (t) => void seen.push(t))
      },
      process() {},
    }))
    const d = driver(b, { idleAdvanceMs: 100 })
    const input = d.createInputTopic('in', S, S)
    await input.pipeInput('k', 'v', T0 - 10_000)
    await d.advanceWallClockTime(100)
    expect(seen).toEqual([T0 - 10_000, T0 + 100])
    await d.close()
  })
})
