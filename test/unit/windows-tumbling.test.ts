import { describe, expect, expectTypeOf, it } from 'vitest'
import { Consumed, Materialized, Serdes, StreamsBuilder, timeWindowedSerde, type KTable } from '../../topology/index.js'
import { TopologyTestDriver } from '../../lib/testing/index.js'
import { TopologyError } from '../../topology/errors.js'
import { JoinWindows, SessionWindows, SlidingWindows, TimeWindows } from '../../topology/dsl/windows.js'
import { EmitStrategy } from '../../topology/dsl/suppressed.js'
import { timeWindowAggregateSupplier } from '../../topology/processors/windowed/time-window-aggregate.js'
import type { Change } from '../../topology/processors/windowed/types.js'
import type { StateStore, ValueAndTimestamp, Windowed } from '../../topology/state/types.js'
import { MemoryKeyValueStore, MemoryWindowStore, ProcessorHarness } from './helpers/processor-harness.js'

const count = (_k: string, _v: string, agg: number): number => agg + 1

async function countHarness(windows: TimeWindows, emit = EmitStrategy.onWindowUpdate(), stores?: Map<string, StateStore>) {
  const s =
    stores ??
    new Map<string, StateStore>([
      ['agg', new MemoryWindowStore<string, ValueAndTimestamp<number>>('agg', windows.size())],
      ['agg-emit', new MemoryKeyValueStore<string, number>('agg-emit')],
    ])
  const h = new ProcessorHarness<string, string, Windowed<string>, Change<number>>(
    timeWindowAggregateSupplier({
      windows,
      storeName: 'agg',
      emitStrategy: emit,
      initializer: () => 0,
      aggregator: count,
      emitTimeStoreName: emit.type === 'ON_WINDOW_CLOSE' ? 'agg-emit' : undefined,
    }),
    s,
  )
  return { h: await h.init(), stores: s }
}

const fmt = (r: { key: Windowed<string>; value: Change<number>; timestamp: number }) =>
  `${r.key.key}@[${r.key.window.startMs},${r.key.window.endMs}) ${r.value.newValue} t=${r.timestamp}`

describe('TimeWindows (tumbling)', () => {
  it('ofSizeWithNoGrace has no grace and advance == size', () => {
    const w = TimeWindows.ofSizeWithNoGrace(60_000)
    expect(w.size()).toBe(60_000)
    expect(w.gracePeriodMs()).toBe(0)
    expect(w.advanceMs).toBe(60_000)
    expect(w.isTumbling()).toBe(true)
  })

  it('ofSizeAndGrace keeps the explicit grace (no 24h default)', () => {
    expect(TimeWindows.ofSizeAndGrace(1000, 250).gracePeriodMs()).toBe(250)
  })

  it('puts a record in exactly one epoch-aligned window [start, start + size)', () => {
    const w = TimeWindows.ofSizeWithNoGrace(10)
    expect([...w.windowsFor(0).values()]).toEqual([{ startMs: 0, endMs: 10 }])
    expect([...w.windowsFor(9).values()]).toEqual([{ startMs: 0, endMs: 10 }])
    expect([...w.windowsFor(10).values()]).toEqual([{ startMs: 10, endMs: 20 }])
    expect([...w.windowsFor(1234).keys()]).toEqual([1230])
  })

  it('validates its parameters with TopologyError naming the parameter', () => {
    expect(() => TimeWindows.ofSizeWithNoGrace(0)).toThrow(TopologyError)
    expect(() => TimeWindows.ofSizeWithNoGrace(-5)).toThrow(/sizeMs must not be negative, got -5/)
    expect(() => TimeWindows.ofSizeAndGrace(10, -1)).toThrow(/graceMs must not be negative/)
    expect(() => TimeWindows.ofSizeWithNoGrace(1.5)).toThrow(/sizeMs must be a finite integer/)
    expect(() => TimeWindows.ofSizeWithNoGrace(Number.NaN)).toThrow(/sizeMs/)
    expect(() => SlidingWindows.ofTimeDifferenceAndGrace(-1, 0)).toThrow(/timeDifferenceMs must not be negative/)
    expect(() => SlidingWindows.ofTimeDifferenceAndGrace(10, -1)).toThrow(/graceMs/)
    expect(() => SessionWindows.ofInactivityGapWithNoGrace(0)).toThrow(/inactivityGapMs must be larger than zero/)
    expect(() => SessionWindows.ofInactivityGapAndGrace(5, -2)).toThrow(/graceMs/)
    expect(() => JoinWindows.ofTimeDifferenceWithNoGrace(-1)).toThrow(/timeDifferenceMs must not be negative/)
    expect(() => JoinWindows.ofTimeDifferenceWithNoGrace(10).before(-11)).toThrow(/beforeMs \+ afterMs\) must not be negative/)
  })
})

describe('JoinWindows', () => {
  it('is inclusive [t - before, t + after] and supports asymmetric windows', () => {
    const w = JoinWindows.ofTimeDifferenceAndGrace(100, 7)
    expect(w.joinRangeFor(1000)).toEqual({ fromMs: 900, toMs: 1100 })
    const asym = w.before(10).after(50)
    expect(asym.beforeMs).toBe(10)
    expect(asym.afterMs).toBe(50)
    expect(asym.size()).toBe(60)
    expect(asym.gracePeriodMs()).toBe(7)
    expect(asym.joinRangeFor(1000)).toEqual({ fromMs: 990, toMs: 1050 })
    // the other side sees the mirrored range
    expect(asym.joinRangeFor(1000, 'right')).toEqual({ fromMs: 950, toMs: 1010 })
    // negative before is allowed while before + after >= 0
    expect(w.before(-20).joinRangeFor(1000)).toEqual({ fromMs: 1020, toMs: 1100 })
    // the original is unchanged
    expect(w.beforeMs).toBe(100)
  })
})

describe('tumbling window aggregation', () => {
  it('counts per key and window; the result carries the largest timestamp in the window', async () => {
    const { h } = await countHarness(TimeWindows.ofSizeAndGrace(10, 100))
    await h.process('A', 'x', 7)
    await h.process('A', 'x', 3) // out of order: timestamp stays 7
    await h.process('B', 'x', 5)
    await h.process('A', 'x', 10) // end is exclusive: next window
    await h.process('A', 'x', 9)
    expect(h.drain().map(fmt)).toEqual(['A@[0,10) 1 t=7', 'A@[0,10) 2 t=7', 'B@[0,10) 1 t=5', 'A@[10,20) 1 t=10', 'A@[0,10) 3 t=9'])
  })

  it('forwards Change with the old aggregate', async () => {
    const { h } = await countHarness(TimeWindows.ofSizeWithNoGrace(10))
    await h.process('A', 'x', 1)
    await h.process('A', 'x', 2)
    expect(h.drain().map((r) => r.value)).toEqual([
      { newValue: 1, oldValue: null },
      { newValue: 2, oldValue: 1 },
    ])
  })

  it('drops (and counts) records with a null key or value', async () => {
    const { h } = await countHarness(TimeWindows.ofSizeWithNoGrace(10))
    await h.process(null as unknown as string, 'x', 1)
    await h.process('A', null as unknown as string, 1)
    expect(h.drain()).toEqual([])
    expect(h.dropped).toEqual(['null-key', 'null-value'])
  })
})

describe('EmitStrategy.onWindowClose (KIP-825)', () => {
  it('emits nothing while windows are open, then each final result exactly once', async () => {
    const { h } = await countHarness(TimeWindows.ofSizeAndGrace(10, 5), EmitStrategy.onWindowClose())
    await h.process('A', 'x', 1)
    await h.process('A', 'x', 3)
    await h.process('B', 'x', 8)
    await h.process('A', 'x', 12) // stream-time 12: [0,10) closes at 10 + 5 = 15
    await h.process('A', 'x', 14)
    expect(h.drain()).toEqual([])
    await h.process('C', 'x', 15) // 10 + 5 <= 15: [0,10) is closed
    expect(h.drain().map(fmt)).toEqual(['A@[0,10) 2 t=3', 'B@[0,10) 1 t=8'])
    expect(h.forwarded).toEqual([])
    await h.process('C', 'x', 16)
    await h.process('A', 'x', 24) // [10,20) closes at 25
    expect(h.drain()).toEqual([])
    await h.process('A', 'x', 25)
    expect(h.drain().map(fmt)).toEqual(['A@[10,20) 2 t=14', 'C@[10,20) 2 t=16'])
  })

  it('final results have oldValue null', async () => {
    const { h } = await countHarness(TimeWindows.ofSizeWithNoGrace(10), EmitStrategy.onWindowClose())
    await h.process('A', 'x', 1)
    await h.process('A', 'x', 2)
    await h.process('A', 'x', 10)
    expect(h.drain().map((r) => r.value)).toEqual([{ newValue: 2, oldValue: null }])
  })

  it('emits hopping windows in window-start order when stream-time jumps', async () => {
    const { h } = await countHarness(TimeWindows.ofSizeWithNoGrace(10).advanceBy(5), EmitStrategy.onWindowClose())
    await h.process('A', 'x', 7) // [0,10) [5,15)
    await h.process('A', 'x', 12) // [5,15) [10,20)
    await h.process('A', 'x', 40)
    expect(h.drain().map(fmt)).toEqual(['A@[0,10) 1 t=7', 'A@[5,15) 2 t=12', 'A@[10,20) 1 t=12'])
  })

  it('does not emit a final result twice after a restart', async () => {
    const { h, stores } = await countHarness(TimeWindows.ofSizeWithNoGrace(10), EmitStrategy.onWindowClose())
    await h.process('A', 'x', 1)
    await h.process('A', 'x', 11)
    expect(h.drain().map(fmt)).toEqual(['A@[0,10) 1 t=1'])
    const restarted = (await countHarness(TimeWindows.ofSizeWithNoGrace(10), EmitStrategy.onWindowClose(), stores)).h
    await restarted.process('A', 'x', 12)
    expect(restarted.drain()).toEqual([])
    await restarted.process('A', 'x', 20)
    expect(restarted.drain().map(fmt)).toEqual(['A@[10,20) 2 t=12'])
  })
})

describe('windowedBy DSL', () => {
  const input = () => new StreamsBuilder().stream('input', Consumed.with(Serdes.String(), Serdes.String())).groupByKey()

  it('builds KSTREAM-AGGREGATE with a window store named like Kafka Streams', () => {
    const b = new StreamsBuilder()
    b.stream('input', Consumed.with(Serdes.String(), Serdes.String()))
      .groupByKey()
      .windowedBy(TimeWindows.ofSizeWithNoGrace(10))
      .count()
      .toStream()
      .to('output')
    const topology = b.build()
    expect(String(topology.describe())).toBe(
      'Topologies:\n' +
        '   Sub-topology: 0\n' +
        '    Source: KSTREAM-SOURCE-0000000000 (topics: [input])\n' +
        '      --> KSTREAM-AGGREGATE-0000000002\n' +
        '    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000001])\n' +
        '      --> KTABLE-TOSTREAM-0000000003\n' +
        '      <-- KSTREAM-SOURCE-0000000000\n' +
        '    Processor: KTABLE-TOSTREAM-0000000003 (stores: [])\n' +
        '      --> KSTREAM-SINK-0000000004\n' +
        '      <-- KSTREAM-AGGREGATE-0000000002\n' +
        '    Sink: KSTREAM-SINK-0000000004 (topic: output)\n' +
        '      <-- KTABLE-TOSTREAM-0000000003\n' +
        '\n',
    )
    const store = topology.resolve('app').stores.get('KSTREAM-AGGREGATE-STATE-STORE-0000000001')!
    expect(store).toMatchObject({
      type: 'window',
      windowSizeMs: 10,
      retentionMs: 10,
      retainDuplicates: false,
      timestamped: true,
      loggingEnabled: true,
    })
  })

  it('reduce uses KSTREAM-REDUCE; onWindowClose adds the emit-time store', () => {
    const b = new StreamsBuilder()
    b.stream('input', Consumed.with(Serdes.String(), Serdes.String()))
      .groupByKey()
      .windowedBy(TimeWindows.ofSizeAndGrace(10, 5))
      .emitStrategy(EmitStrategy.onWindowClose())
      .reduce((a, v) => a + v, Materialized.as('concat'))
    const def = b.build().resolve('app')
    expect([...def.stores.keys()].sort()).toEqual(['concat', 'concat-emit-time'])
    expect(def.stores.get('concat')).toMatchObject({ retentionMs: 15, windowSizeMs: 10 })
    expect(def.subtopologies[0]!.nodes.map((n) => n.name)).toEqual(['KSTREAM-SOURCE-0000000000', 'KSTREAM-REDUCE-0000000001'])
  })

  it('sizes window, sliding and session stores, and rejects a retention below size + grace', () => {
    const b = new StreamsBuilder()
    const g = b.stream('input', Consumed.with(Serdes.String(), Serdes.String())).groupByKey()
    g.windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(10, 3)).count(Materialized.as('sliding'))
    g.windowedBy(SessionWindows.ofInactivityGapAndGrace(7, 2)).count(Materialized.as('sessions'))
    const stores = b.build().resolve('app').stores
    expect(stores.get('sliding')).toMatchObject({ type: 'window', windowSizeMs: 10, retentionMs: 23 })
    // sessions: gap + grace, as Kafka Streams (onWindowClose keeps one more millisecond, below)
    expect(stores.get('sessions')).toMatchObject({ type: 'session', retentionMs: 9, timestamped: false })
    g.windowedBy(SessionWindows.ofInactivityGapAndGrace(7, 2))
      .emitStrategy(EmitStrategy.onWindowClose())
      .count(Materialized.as('final-sessions'))
    expect(b.build().resolve('app').stores.get('final-sessions')).toMatchObject({ type: 'session', retentionMs: 10 })

    expect(() =>
      input().windowedBy(TimeWindows.ofSizeAndGrace(10, 5)).count(Materialized.as<string, number>('w').withRetention(14)),
    ).toThrow(
      /retention period of the window store w must be no smaller than its window size plus the grace period \(15 ms\); got retentionMs=14/,
    )
    expect(() =>
      input().windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(10, 5)).count(Materialized.as<string, number>('s').withRetention(24)),
    ).toThrow(TopologyError)
    expect(() =>
      input().windowedBy(SessionWindows.ofInactivityGapAndGrace(10, 5)).count(Materialized.as<string, number>('x').withRetention(14)),
    ).toThrow(/inactivity gap plus the grace period/)
    expect(() =>
      input().windowedBy(TimeWindows.ofSizeAndGrace(10, 5)).count(Materialized.as<string, number>('ok').withRetention(15)),
    ).not.toThrow()
  })

  it('rejects invalid arguments', () => {
    expect(() => input().windowedBy({} as TimeWindows)).toThrow(
      /windowedBy: parameter 'windows' must be TimeWindows, SlidingWindows or SessionWindows/,
    )
    expect(() =>
      input()
        .windowedBy(TimeWindows.ofSizeWithNoGrace(5))
        .aggregate(null as unknown as () => number, (_k, _v, a: number) => a),
    ).toThrow(/parameter 'initializer' must be a function/)
    expect(() =>
      input()
        .windowedBy(SessionWindows.ofInactivityGapWithNoGrace(5))
        .aggregate(
          () => 0,
          (_k, _v, a: number) => a,
          undefined as never,
        ),
    ).toThrow(/parameter 'sessionMerger' must be a function/)
    expect(() =>
      input()
        .windowedBy(TimeWindows.ofSizeWithNoGrace(5))
        .emitStrategy({ type: 'SOMETIMES' } as unknown as EmitStrategy),
    ).toThrow(TopologyError)
  })

  it('carries key and value types (type level)', () => {
    const g = input()
    expectTypeOf(g.windowedBy(TimeWindows.ofSizeWithNoGrace(5)).count()).toEqualTypeOf<KTable<Windowed<string>, number>>()
    expectTypeOf(g.windowedBy(SlidingWindows.ofTimeDifferenceWithNoGrace(5)).reduce((a, b) => a + b)).toEqualTypeOf<
      KTable<Windowed<string>, string>
    >()
    expectTypeOf(
      g.windowedBy(SessionWindows.ofInactivityGapWithNoGrace(5)).aggregate(
        () => [] as string[],
        (_k, v, agg) => [...agg, v],
        (_k, a, b) => [...a, ...b],
      ),
    ).toEqualTypeOf<KTable<Windowed<string>, string[]>>()
    // prettier-ignore
    // @ts-expect-error the aggregator must accept the stream's value type (string), not number
    g.windowedBy(TimeWindows.ofSizeWithNoGrace(5)).aggregate(() => 0, (_k: string, v: number, agg: number) => agg + v)
    // prettier-ignore
    // @ts-expect-error the aggregator must return the aggregate type
    g.windowedBy(TimeWindows.ofSizeWithNoGrace(5)).aggregate(() => 0, (_k, v, _agg) => v)
    // prettier-ignore
    // @ts-expect-error session aggregate needs a merger of the aggregate type
    g.windowedBy(SessionWindows.ofInactivityGapWithNoGrace(5)).aggregate(() => 0, (_k, _v, a) => a + 1, (_k, a: string, b: string) => a + b)
    // prettier-ignore
    // @ts-expect-error a reducer combines values of the stream's type
    g.windowedBy(TimeWindows.ofSizeWithNoGrace(5)).reduce((a: number, b: number) => a + b)
  })
})

describe('tumbling windows through the TopologyTestDriver', () => {
  const S = Serdes.String()
  const L = Serdes.Long()

  it('counts per key and window; Windowed keys round-trip through a topic in Kafka Streams format', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S))
      .groupByKey()
      .windowedBy(TimeWindows.ofSizeWithNoGrace(100))
      // keep closed windows queryable for a while (the minimum retention is size + grace)
      .count(Materialized.as<string, number>('counts').withRetention(1000))
      .toStream()
      .to('out', { keySerde: timeWindowedSerde(S, 100), valueSerde: L })
    const d = new TopologyTestDriver(b.build(), {}, 0)
    const input = d.createInputTopic('in', S, S)
    await input.pipeInput('a', 'x', 10)
    await input.pipeInput('b', 'x', 20)
    await input.pipeInput('a', 'x', 99)
    await input.pipeInput('a', 'x', 100) // end is exclusive
    // Kafka Streams' TimeWindowedSerializer layout: key bytes + 8-byte big-endian window start
    const raw = d.takeOutput('out')!
    expect(raw.key).toEqual(Buffer.concat([Buffer.from('a'), Buffer.from([0, 0, 0, 0, 0, 0, 0, 0])]))
    const out = d.createOutputTopic('out', timeWindowedSerde(S, 100), L).readRecordsToList()
    expect(out.map((r) => [r.key, r.value, r.timestamp])).toEqual([
      [{ key: 'b', window: { startMs: 0, endMs: 100 } }, 1, 20],
      [{ key: 'a', window: { startMs: 0, endMs: 100 } }, 2, 99],
      [{ key: 'a', window: { startMs: 100, endMs: 200 } }, 1, 100],
    ])
    const store = d.getWindowStore<string, number>('counts')
    expect(await store.fetch('a', 0)).toBe(2)
    expect(await store.fetch('a', 100)).toBe(1)
    await d.close()
  })

  it('the result table carries a windowed key serde (inner serde from Consumed or the defaults) to its sink', async () => {
    const b = new StreamsBuilder()
    const counts = b.stream<string, string>('in').groupByKey().windowedBy(TimeWindows.ofSizeWithNoGrace(50))
    counts.count().toStream().to('out-default') // key serde: windowed(default String), value serde: Long
    counts
      .reduce((a, v) => a + v)
      .toStream()
      .to('out-reduce') // value serde: the default String
    const d = new TopologyTestDriver(b.build(), { defaultKeySerde: S, defaultValueSerde: S }, 0)
    await d.createInputTopic('in', S, S).pipeInput('k', 'v', 70)
    expect(d.createOutputTopic('out-default', timeWindowedSerde(S, 50), L).readKeyValuesToList()).toEqual([
      { key: { key: 'k', window: { startMs: 50, endMs: 100 } }, value: 1 },
    ])
    expect(d.createOutputTopic('out-reduce', timeWindowedSerde(S, 50), S).readKeyValuesToList()).toEqual([
      { key: { key: 'k', window: { startMs: 50, endMs: 100 } }, value: 'v' },
    ])
    await d.close()
  })

  it('emitStrategy(onWindowClose) writes one final result per window, on stream-time only', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S))
      .groupByKey()
      .windowedBy(TimeWindows.ofSizeAndGrace(10, 5))
      .emitStrategy(EmitStrategy.onWindowClose())
      .aggregate(
        () => '',
        (_k, v, agg) => agg + v,
        Materialized.with<string, string>(S, S),
      )
      .toStream()
      .map((k, v) => ({ key: `${k.key}@${k.window.startMs}`, value: v }))
      .to('out', { keySerde: S, valueSerde: S })
    const d = new TopologyTestDriver(b.build(), {}, 0)
    const input = d.createInputTopic('in', S, S)
    const out = d.createOutputTopic('out', S, S)
    await input.pipeInput('a', '1', 1)
    await input.pipeInput('b', '2', 4)
    await input.pipeInput('a', '3', 12)
    await input.pipeInput('a', '4', 8) // inside grace: [0,10) is open until 15
    await d.advanceWallClockTime(3600_000)
    expect(out.readKeyValuesToList()).toEqual([])
    await input.pipeInput('c', '5', 15)
    expect(out.readRecordsToList().map((r) => [r.key, r.value, r.timestamp])).toEqual([
      ['a@0', '14', 8],
      ['b@0', '2', 4],
    ])
    await input.pipeInput('a', '6', 9) // late: dropped, and no second result for a@0
    await input.pipeInput('c', '7', 24) // [20,30)
    expect(out.readKeyValuesToList()).toEqual([])
    await input.pipeInput('c', '8', 25) // 10 + 10 + 5 <= 25: [10,20) is final
    expect(out.readKeyValuesToList()).toEqual([
      { key: 'a@10', value: '3' },
      { key: 'c@10', value: '5' },
    ])
    expect(d.droppedRecords('late')).toBe(1)
    await d.close()
  })
})
