import { describe, expect, expectTypeOf, it } from 'vitest'
import { Serdes } from '../../topology/serde.js'
import { Consumed, Grouped, Materialized, SessionWindows, SlidingWindows, StreamsBuilder, TimeWindows } from '../../topology/index.js'
import { TopologyTestDriver } from '../../lib/testing/index.js'
import { windowedString } from './helpers/windowed.js'
import { StreamsError, TopologyError } from '../../topology/errors.js'
import { BufferConfig, EmitStrategy, Suppressed } from '../../topology/dsl/suppressed.js'
import { decodeBufferEntry, encodeBufferEntry, suppressProcessorSupplier } from '../../topology/processors/suppress.js'
import { sessionWindowedSerde, timeWindowedSerde } from '../../topology/processors/windowed/windowed-serdes.js'
import type { Change } from '../../topology/processors/windowed/types.js'
import type { StateStore, Windowed } from '../../topology/state/types.js'
import { MemoryKeyValueStore, ProcessorHarness } from './helpers/processor-harness.js'

type WK = Windowed<string>
const wk = (key: string, start: number, end: number): WK => ({ key, window: { startMs: start, endMs: end } })

async function windowedSuppress(graceMs: number, stores?: Map<string, StateStore>, bufferConfig = BufferConfig.unbounded()) {
  const s = stores ?? new Map<string, StateStore>([['buf', new MemoryKeyValueStore<Buffer, Buffer>('buf')]])
  const h = new ProcessorHarness<WK, Change<number>, WK, Change<number>>(
    suppressProcessorSupplier<WK, number>({
      processorName: 'KTABLE-SUPPRESS-0000000003',
      storeName: 'buf',
      suppressed: Suppressed.untilWindowCloses<string>(bufferConfig),
      windowGraceMs: graceMs,
      keySerde: timeWindowedSerde(Serdes.String(), 10),
      valueSerde: Serdes.Long(),
    }),
    s,
  )
  return { h: await h.init(), stores: s }
}

const ch = (newValue: number | null, oldValue: number | null): Change<number> => ({ newValue, oldValue })
const fmt = (r: { key: WK; value: Change<number>; timestamp: number }) =>
  `${r.key.key}@[${r.key.window.startMs},${r.key.window.endMs}) ${r.value.newValue}/${r.value.oldValue} t=${r.timestamp}`

describe('Suppressed / BufferConfig', () => {
  it('builds immutable configs', () => {
    const b = BufferConfig.maxRecords(10)
    expect(b.maxRecords).toBe(10)
    expect(b.maxBytes).toBe(Infinity)
    expect(b.bufferFullStrategy).toBe('EMIT')
    const strict = b.withMaxBytes(1000).shutDownWhenFull()
    expect(strict.maxBytes).toBe(1000)
    expect(strict.bufferFullStrategy).toBe('SHUT_DOWN')
    expect(b.bufferFullStrategy).toBe('EMIT')
    expect(BufferConfig.unbounded().isStrict()).toBe(true)
    expect(BufferConfig.maxBytes(5).emitEarlyWhenFull().isStrict()).toBe(false)
    const s = Suppressed.untilTimeLimit<string>(100, BufferConfig.unbounded()).withName('rate-limit')
    expect(s.name).toBe('rate-limit')
    expect(s.timeToWaitMs).toBe(100)
    expect(EmitStrategy.onWindowClose().type).toBe('ON_WINDOW_CLOSE')
    expect(EmitStrategy.onWindowUpdate().type).toBe('ON_WINDOW_UPDATE')
  })

  it('rejects invalid arguments with TopologyError naming the parameter', () => {
    expect(() => BufferConfig.maxRecords(-1)).toThrow(TopologyError)
    expect(() => BufferConfig.maxRecords(-1)).toThrow(/maxRecords must be a non-negative integer/)
    expect(() => BufferConfig.maxBytes(1.5)).toThrow(/maxBytes/)
    expect(() => Suppressed.untilTimeLimit(-5, BufferConfig.unbounded())).toThrow(/timeToWaitMs must be a non-negative integer/)
    expect(() => Suppressed.untilWindowCloses(BufferConfig.maxRecords(3) as unknown as BufferConfig<true>)).toThrow(/must be strict/)
  })

  it('only accepts strict buffers for untilWindowCloses (type level)', () => {
    // @ts-expect-error an eager (emit-early) buffer cannot give final results
    expect(() => Suppressed.untilWindowCloses(BufferConfig.maxRecords(3))).toThrow(TopologyError)
    expectTypeOf(Suppressed.untilWindowCloses<string>(BufferConfig.maxRecords(3).shutDownWhenFull())).toEqualTypeOf<
      Suppressed<Windowed<string>>
    >()
    // @ts-expect-error untilWindowCloses is for windowed keys only
    const notWindowed: Suppressed<string> = Suppressed.untilWindowCloses<string>(BufferConfig.unbounded())
    expect(notWindowed.kind).toBe('untilWindowCloses')
  })
})

describe('suppress(untilWindowCloses)', () => {
  it('emits exactly one final result per window, only when stream-time passes window end + grace', async () => {
    const { h } = await windowedSuppress(5)
    await h.process(wk('A', 0, 10), ch(1, null), 1)
    await h.process(wk('A', 0, 10), ch(2, 1), 3)
    await h.process(wk('B', 0, 10), ch(1, null), 8)
    await h.process(wk('A', 10, 20), ch(1, null), 14) // stream-time 14 < 10 + 5
    expect(h.drain()).toEqual([])
    await h.process(wk('A', 10, 20), ch(2, 1), 15) // 10 + 5 <= 15: [0,10) is final
    expect(h.drain().map(fmt)).toEqual(['A@[0,10) 2/null t=3', 'B@[0,10) 1/null t=8'])
    await h.process(wk('B', 10, 20), ch(1, null), 24)
    expect(h.drain()).toEqual([])
    await h.process(wk('B', 10, 20), ch(2, 1), 25)
    expect(h.drain().map(fmt)).toEqual(['A@[10,20) 2/null t=15', 'B@[10,20) 2/null t=25'])
  })

  it('never emits on wall-clock time', async () => {
    const { h } = await windowedSuppress(0)
    await h.process(wk('A', 0, 10), ch(1, null), 1)
    h.wallClockMs += 24 * 3600_000
    await h.process(wk('A', 0, 10), ch(2, 1), 2)
    expect(h.drain()).toEqual([])
  })

  it('drops tombstones of windows that never emitted (session merges)', async () => {
    // session windows: the DSL passes gap + grace (10 + 0) as the grace of the suppression
    const h = await new ProcessorHarness<WK, Change<number>, WK, Change<number>>(
      suppressProcessorSupplier<WK, number>({
        processorName: 'KTABLE-SUPPRESS-0000000003',
        storeName: 'buf',
        suppressed: Suppressed.untilWindowCloses<string>(BufferConfig.unbounded()),
        windowGraceMs: 10,
        keySerde: sessionWindowedSerde(Serdes.String()),
        valueSerde: Serdes.Long(),
      }),
      new Map([['buf', new MemoryKeyValueStore<Buffer, Buffer>('buf')]]),
    ).init()
    await h.process(wk('A', 0, 0), ch(1, null), 0)
    await h.process(wk('A', 0, 0), ch(null, 1), 0)
    await h.process(wk('A', 0, 5), ch(2, null), 5)
    await h.process(wk('Z', 50, 50), ch(1, null), 50)
    // stream-time 50 - 10: sessions ending at or before 40 are final; [0,0] was merged away
    expect(h.drain().map(fmt)).toEqual(['A@[0,5) 2/null t=5'])
  })

  it('survives a restart: the buffer is rebuilt from its store', async () => {
    const { h, stores } = await windowedSuppress(0)
    await h.process(wk('A', 0, 10), ch(1, null), 1)
    await h.process(wk('B', 0, 10), ch(7, null), 2)
    await h.process(wk('A', 0, 10), ch(2, 1), 3, { trace: 'x' })
    expect((stores.get('buf') as MemoryKeyValueStore<Buffer, Buffer>).map.size).toBe(2)
    const restarted = (await windowedSuppress(0, stores)).h
    await restarted.process(wk('C', 10, 20), ch(1, null), 12)
    const out = restarted.drain()
    expect(out.map(fmt)).toEqual(['A@[0,10) 2/null t=3', 'B@[0,10) 7/null t=2'])
    expect(out[0]!.headers).toEqual({ trace: 'x' })
    // emitted entries are deleted from the store; C is still buffered
    expect((stores.get('buf') as MemoryKeyValueStore<Buffer, Buffer>).map.size).toBe(1)
  })

  it('shuts down (throws) when a strict buffer is full', async () => {
    const { h } = await windowedSuppress(100, undefined, BufferConfig.maxRecords(2).shutDownWhenFull())
    await h.process(wk('A', 0, 10), ch(1, null), 1)
    await h.process(wk('B', 0, 10), ch(1, null), 1)
    await h.process(wk('A', 0, 10), ch(2, 1), 1) // same key: still 2 records
    await expect(h.process(wk('C', 0, 10), ch(1, null), 1)).rejects.toThrow(StreamsError)
    await expect(h.process(wk('D', 0, 10), ch(1, null), 1)).rejects.toThrow(
      /KTABLE-SUPPRESS-0000000003 buffer exceeded its max capacity\. Currently \[4\/2\] records/,
    )
  })
})

describe('suppress(untilTimeLimit)', () => {
  async function rateLimited(timeToWaitMs: number, bufferConfig: BufferConfig = BufferConfig.unbounded()) {
    const h = new ProcessorHarness<string, Change<number>, string, Change<number>>(
      suppressProcessorSupplier<string, number>({
        processorName: 'KTABLE-SUPPRESS-0000000001',
        storeName: 'buf',
        suppressed: Suppressed.untilTimeLimit<string>(timeToWaitMs, bufferConfig),
      }),
      new Map([['buf', new MemoryKeyValueStore<Buffer, Buffer>('buf')]]),
      { keySerde: Serdes.String(), valueSerde: Serdes.Long() }, // the application's default serdes
    )
    return h.init()
  }
  const f = (r: { key: string; value: Change<number>; timestamp: number }) =>
    `${r.key} ${r.value.newValue}/${r.value.oldValue} t=${r.timestamp}`

  it('emits the latest value per key once the time limit (stream-time) since its first update passed', async () => {
    const h = await rateLimited(10)
    await h.process('a', ch(1, null), 0)
    await h.process('a', ch(2, 1), 4)
    await h.process('b', ch(5, null), 6)
    await h.process('a', ch(3, 2), 9) // a's timer started at 0 and does not reset
    expect(h.drain()).toEqual([])
    await h.process('c', ch(1, null), 10) // 0 + 10 <= 10: a is due
    // oldValue is the value downstream saw last (before the first suppressed update)
    expect(h.drain().map(f)).toEqual(['a 3/null t=9'])
    await h.process('a', ch(4, 3), 12) // a starts a new period at 12
    await h.process('c', ch(2, 1), 16) // b (6) is due
    expect(h.drain().map(f)).toEqual(['b 5/null t=6'])
    await h.process('x', ch(1, null), 22) // a (12) and c (10) due, in buffer-time order
    expect(h.drain().map(f)).toEqual(['c 2/null t=16', 'a 4/3 t=12'])
  })

  it('with a zero time limit forwards every update immediately', async () => {
    const h = await rateLimited(0)
    await h.process('a', ch(1, null), 5)
    await h.process('a', ch(2, 1), 5)
    expect(h.drain().map(f)).toEqual(['a 1/null t=5', 'a 2/1 t=5'])
  })

  it('emits the oldest keys early when an eager buffer is full', async () => {
    const h = await rateLimited(1000, BufferConfig.maxRecords(2))
    await h.process('a', ch(1, null), 1)
    await h.process('b', ch(1, null), 2)
    expect(h.drain()).toEqual([])
    await h.process('c', ch(1, null), 3)
    expect(h.drain().map(f)).toEqual(['a 1/null t=1'])
  })

  it('enforces maxBytes', async () => {
    const h = await rateLimited(1000, BufferConfig.maxBytes(120))
    await h.process('a', ch(1, null), 1)
    await h.process('b', ch(1, null), 2)
    expect(h.drain()).toEqual([])
    await h.process('c', ch(1, null), 3)
    // each entry is 8 + 1 (key) + 1 + 8 + 8 + 4 + 4 + 8 + 4 = 46 bytes: 3 entries exceed 120
    expect(h.drain().map(f)).toEqual(['a 1/null t=1'])
  })
})

describe('suppression buffer entry format', () => {
  it('round-trips values, tombstones and headers', () => {
    const e = {
      bufferTime: 10,
      recordTimestamp: 12,
      headers: { a: 'x', b: Buffer.from([1, 2]), c: ['y', 'z'] },
      priorValue: null,
      newValue: Buffer.from('v'),
    }
    const decoded = decodeBufferEntry(Buffer.from('k'), encodeBufferEntry(e))
    expect(decoded).toMatchObject({ bufferTime: 10, recordTimestamp: 12, priorValue: null, newValue: Buffer.from('v') })
    expect(decoded.headers).toEqual({ a: 'x', b: Buffer.from([1, 2]), c: ['y', 'z'] })
  })
})

describe('KTable.suppress topology (SuppressTopologyTest)', () => {
  const ANONYMOUS_FINAL_TOPOLOGY =
    'Topologies:\n' +
    '   Sub-topology: 0\n' +
    '    Source: KSTREAM-SOURCE-0000000000 (topics: [input])\n' +
    '      --> KSTREAM-KEY-SELECT-0000000001\n' +
    '    Processor: KSTREAM-KEY-SELECT-0000000001 (stores: [])\n' +
    '      --> counts-repartition-filter\n' +
    '      <-- KSTREAM-SOURCE-0000000000\n' +
    '    Processor: counts-repartition-filter (stores: [])\n' +
    '      --> counts-repartition-sink\n' +
    '      <-- KSTREAM-KEY-SELECT-0000000001\n' +
    '    Sink: counts-repartition-sink (topic: counts-repartition)\n' +
    '      <-- counts-repartition-filter\n' +
    '\n' +
    '  Sub-topology: 1\n' +
    '    Source: counts-repartition-source (topics: [counts-repartition])\n' +
    '      --> KSTREAM-AGGREGATE-0000000002\n' +
    '    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [counts])\n' +
    '      --> KTABLE-SUPPRESS-0000000006\n' +
    '      <-- counts-repartition-source\n' +
    '    Processor: KTABLE-SUPPRESS-0000000006 (stores: [KTABLE-SUPPRESS-STATE-STORE-0000000007])\n' +
    '      --> KTABLE-TOSTREAM-0000000008\n' +
    '      <-- KSTREAM-AGGREGATE-0000000002\n' +
    '    Processor: KTABLE-TOSTREAM-0000000008 (stores: [])\n' +
    '      --> KSTREAM-MAP-0000000009\n' +
    '      <-- KTABLE-SUPPRESS-0000000006\n' +
    '    Processor: KSTREAM-MAP-0000000009 (stores: [])\n' +
    '      --> KSTREAM-SINK-0000000010\n' +
    '      <-- KTABLE-TOSTREAM-0000000008\n' +
    '    Sink: KSTREAM-SINK-0000000010 (topic: output-suppressed)\n' +
    '      <-- KSTREAM-MAP-0000000009\n' +
    '\n'

  const finalResults = (name?: string) => {
    const b = new StreamsBuilder()
    const s = Suppressed.untilWindowCloses<string>(BufferConfig.unbounded())
    b.stream('input', Consumed.with(Serdes.String(), Serdes.String()))
      .groupBy((k: string) => k, Grouped.with(Serdes.String(), Serdes.String()))
      .windowedBy(SessionWindows.ofInactivityGapAndGrace(5, 5))
      .count(Materialized.as<string, number>('counts').withCachingDisabled())
      .suppress(name === undefined ? s : s.withName(name))
      .toStream()
      .map((k, v) => ({ key: `${k.key}@${k.window.startMs}`, value: v }))
      .to('output-suppressed', { keySerde: Serdes.String(), valueSerde: Serdes.Long() })
    return b.build()
  }

  it('numbers an anonymous final-results suppression like Kafka Streams', () => {
    expect(String(finalResults().describe())).toBe(ANONYMOUS_FINAL_TOPOLOGY)
  })

  it('names the processor and its store <name>-store', () => {
    const expected = ANONYMOUS_FINAL_TOPOLOGY.replaceAll('KTABLE-SUPPRESS-STATE-STORE-0000000007', 'myname-store')
      .replaceAll('KTABLE-SUPPRESS-0000000006', 'myname')
      .replaceAll('KTABLE-TOSTREAM-0000000008', 'KTABLE-TOSTREAM-0000000006')
      .replaceAll('KSTREAM-MAP-0000000009', 'KSTREAM-MAP-0000000007')
      .replaceAll('KSTREAM-SINK-0000000010', 'KSTREAM-SINK-0000000008')
    expect(String(finalResults('myname').describe())).toBe(expected)
  })

  it('numbers an anonymous untilTimeLimit suppression like Kafka Streams', () => {
    const b = new StreamsBuilder()
    b.stream('input', Consumed.with(Serdes.String(), Serdes.String()))
      .groupByKey()
      .count()
      .suppress(Suppressed.untilTimeLimit(1000, BufferConfig.unbounded()))
      .toStream()
      .to('output', { keySerde: Serdes.String(), valueSerde: Serdes.Long() })
    expect(String(b.build().describe())).toBe(
      'Topologies:\n' +
        '   Sub-topology: 0\n' +
        '    Source: KSTREAM-SOURCE-0000000000 (topics: [input])\n' +
        '      --> KSTREAM-AGGREGATE-0000000002\n' +
        '    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000001])\n' +
        '      --> KTABLE-SUPPRESS-0000000003\n' +
        '      <-- KSTREAM-SOURCE-0000000000\n' +
        '    Processor: KTABLE-SUPPRESS-0000000003 (stores: [KTABLE-SUPPRESS-STATE-STORE-0000000004])\n' +
        '      --> KTABLE-TOSTREAM-0000000005\n' +
        '      <-- KSTREAM-AGGREGATE-0000000002\n' +
        '    Processor: KTABLE-TOSTREAM-0000000005 (stores: [])\n' +
        '      --> KSTREAM-SINK-0000000006\n' +
        '      <-- KTABLE-SUPPRESS-0000000003\n' +
        '    Sink: KSTREAM-SINK-0000000006 (topic: output)\n' +
        '      <-- KTABLE-TOSTREAM-0000000005\n' +
        '\n',
    )
  })

  it('rejects untilWindowCloses on a table that is not windowed', () => {
    const b = new StreamsBuilder()
    const counts = b.stream('input', Consumed.with(Serdes.String(), Serdes.String())).groupByKey().count()
    expect(() => counts.suppress(Suppressed.untilWindowCloses(BufferConfig.unbounded()) as unknown as Suppressed<string>)).toThrow(
      TopologyError,
    )
    expect(() => counts.suppress(Suppressed.untilWindowCloses(BufferConfig.unbounded()) as unknown as Suppressed<string>)).toThrow(
      /untilWindowCloses is only defined for windowed computations/,
    )
  })

  it('finds the window grace through stateless table operations', () => {
    const b = new StreamsBuilder()
    const t = b
      .stream('input', Consumed.with(Serdes.String(), Serdes.String()))
      .groupByKey()
      .windowedBy(TimeWindows.ofSizeAndGrace(10, 3))
      .count()
      .filter((_k, v) => v > 1)
      .mapValues((v) => v * 2)
    expect(() => t.suppress(Suppressed.untilWindowCloses(BufferConfig.unbounded()))).not.toThrow()
  })
})

describe('suppress through the TopologyTestDriver (SuppressScenarioTest)', () => {
  const S = Serdes.String()
  const L = Serdes.Long()
  const drain = (d: TopologyTestDriver, topic: string) =>
    d
      .createOutputTopic(topic, S, L)
      .readRecordsToList()
      .map((r) => [r.key, r.value, r.timestamp])

  it('shouldSupportFinalResultsForTimeWindows: one final result per window, late records dropped and counted', async () => {
    const b = new StreamsBuilder()
    const counts = b
      .stream('input', Consumed.with(S, S))
      .groupBy((k: string) => k, Grouped.with(S, S))
      .windowedBy(TimeWindows.ofSizeAndGrace(2, 1))
      .count(Materialized.as<string, number>('counts').withCachingDisabled())
    counts
      .suppress(Suppressed.untilWindowCloses(BufferConfig.unbounded()))
      .toStream()
      .map((k, v) => ({ key: windowedString(k), value: v }))
      .to('output-suppressed', { keySerde: S, valueSerde: L })
    counts
      .toStream()
      .map((k, v) => ({ key: windowedString(k), value: v }))
      .to('output-raw', { keySerde: S, valueSerde: L })
    const d = new TopologyTestDriver(b.build(), {}, 0)
    const input = d.createInputTopic('input', S, S)
    for (const t of [0, 1, 2, 1, 0, 5]) await input.pipeInput('k1', 'v1', t)
    // stream-time 5 closed [0,2) (2 + 1 <= 5) and [2,4) (4 + 1 <= 5): this one is dropped
    await input.pipeInput('k1', 'v1', 0)
    expect(drain(d, 'output-raw')).toEqual([
      ['[k1@0/2]', 1, 0],
      ['[k1@0/2]', 2, 1],
      ['[k1@2/4]', 1, 2],
      ['[k1@0/2]', 3, 1],
      ['[k1@0/2]', 4, 1],
      ['[k1@4/6]', 1, 5],
    ])
    expect(drain(d, 'output-suppressed')).toEqual([
      ['[k1@0/2]', 4, 1],
      ['[k1@2/4]', 1, 2],
    ])
    expect(d.droppedRecords('late')).toBe(1)
    await d.close()
  })

  it('emits nothing on wall-clock time, only when stream-time advances', async () => {
    const b = new StreamsBuilder()
    b.stream('input', Consumed.with(S, S))
      .groupByKey()
      .windowedBy(TimeWindows.ofSizeWithNoGrace(10))
      .count()
      .suppress(Suppressed.untilWindowCloses(BufferConfig.unbounded()))
      .toStream()
      .map((k, v) => ({ key: windowedString(k), value: v }))
      .to('out', { keySerde: S, valueSerde: L })
    const d = new TopologyTestDriver(b.build(), {}, 0)
    const input = d.createInputTopic('input', S, S)
    await input.pipeInput('a', 'x', 1)
    await input.pipeInput('a', 'x', 9)
    await d.advanceWallClockTime(7 * 24 * 3600_000)
    expect(drain(d, 'out')).toEqual([])
    await input.pipeInput('b', 'x', 10) // stream-time reaches the end of [0,10)
    expect(drain(d, 'out')).toEqual([['[a@0/10]', 2, 9]])
    await input.pipeInput('b', 'x', 19)
    await input.pipeInput('a', 'x', 25)
    expect(drain(d, 'out')).toEqual([['[b@10/20]', 2, 19]])
    await d.close()
  })

  it('shouldSupportFinalResultsForSlidingWindows', async () => {
    const b = new StreamsBuilder()
    const counts = b
      .stream('input', Consumed.with(S, S))
      .groupBy((k: string) => k, Grouped.with(S, S))
      .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(5, 15))
      .count(Materialized.as<string, number>('counts').withCachingDisabled().withKeySerde(S))
    counts
      .suppress(Suppressed.untilWindowCloses(BufferConfig.unbounded()))
      .toStream()
      .map((k, v) => ({ key: windowedString(k), value: v }))
      .to('output-suppressed', { keySerde: S, valueSerde: L })
    counts
      .toStream()
      .map((k, v) => ({ key: windowedString(k), value: v }))
      .to('output-raw', { keySerde: S, valueSerde: L })
    const d = new TopologyTestDriver(b.build(), {}, 0)
    const input = d.createInputTopic('input', S, S)
    for (const t of [10, 11, 10, 13, 10, 24]) await input.pipeInput('k1', 'v1', t)
    // [k1@0/5] would need 5 + 15 >= 24: closed, so these are dropped
    await input.pipeInput('k1', 'v1', 5)
    await input.pipeInput('k1', 'v1', 7)
    await input.pipeInput('k1', 'v1', 90)
    const raw = drain(d, 'output-raw') as Array<[string, number, number]>
    raw.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[2] - b[2]))
    expect(raw).toEqual([
      ['[k1@11/16]', 1, 11], // right window of 10, created by 11
      ['[k1@11/16]', 2, 13],
      ['[k1@12/17]', 1, 13], // right window of 11, created by 13
      ['[k1@19/24]', 1, 24],
      ['[k1@5/10]', 1, 10],
      ['[k1@5/10]', 2, 10],
      ['[k1@5/10]', 3, 10],
      ['[k1@5/10]', 4, 10], // 5 and 7 are still inside [5,10], which is open (10 + 15 >= 24)
      ['[k1@5/10]', 5, 10],
      ['[k1@6/11]', 2, 11],
      ['[k1@6/11]', 3, 11],
      ['[k1@6/11]', 4, 11],
      ['[k1@6/11]', 5, 11],
      ['[k1@8/13]', 4, 13],
      ['[k1@8/13]', 5, 13],
      ['[k1@85/90]', 1, 90],
    ])
    expect(drain(d, 'output-suppressed')).toEqual([
      ['[k1@5/10]', 5, 10],
      ['[k1@6/11]', 5, 11],
      ['[k1@8/13]', 5, 13],
      ['[k1@11/16]', 2, 13],
      ['[k1@12/17]', 1, 13],
      ['[k1@19/24]', 1, 24],
    ])
    await d.close()
  })

  it('shouldSupportFinalResultsForSessionWindows: merged-away sessions never reach the output', async () => {
    const b = new StreamsBuilder()
    const counts = b
      .stream('input', Consumed.with(S, S))
      .groupBy((k: string) => k, Grouped.with(S, S))
      .windowedBy(SessionWindows.ofInactivityGapWithNoGrace(5))
      .count(Materialized.as<string, number>('counts').withCachingDisabled())
    counts
      .suppress(Suppressed.untilWindowCloses(BufferConfig.unbounded()))
      .toStream()
      .map((k, v) => ({ key: windowedString(k), value: v }))
      .to('output-suppressed', { keySerde: S, valueSerde: L })
    counts
      .toStream()
      .map((k, v) => ({ key: windowedString(k), value: v }))
      .to('output-raw', { keySerde: S, valueSerde: L })
    const d = new TopologyTestDriver(b.build(), {}, 0)
    const input = d.createInputTopic('input', S, S)
    await input.pipeInput('k1', 'v1', 0)
    await input.pipeInput('k1', 'v1', 5)
    await input.pipeInput('k1', 'v1', 1)
    await input.pipeInput('k2', 'v1', 11)
    await input.pipeInput('k1', 'v1', 5) // session [0,5] closed: 5 + 5 < 11
    await input.pipeInput('k1', 'v1', 30)
    expect(drain(d, 'output-raw')).toEqual([
      ['[k1@0/0]', 1, 0],
      ['[k1@0/0]', null, 0],
      ['[k1@0/5]', 2, 5],
      ['[k1@0/5]', null, 5],
      ['[k1@0/5]', 3, 5],
      ['[k2@11/11]', 1, 11],
      ['[k1@30/30]', 1, 30],
    ])
    expect(drain(d, 'output-suppressed')).toEqual([
      ['[k1@0/5]', 3, 5],
      ['[k2@11/11]', 1, 11],
    ])
    expect(d.droppedRecords('late')).toBe(1)
    await d.close()
  })

  it('shouldSuppressIntermediateEventsWithTimeLimit', async () => {
    const b = new StreamsBuilder()
    const valueCounts = b
      .table('input', Consumed.with(S, S), Materialized.with<string, string>(S, S).withCachingDisabled().withLoggingDisabled())
      .groupBy((k, v) => ({ key: v, value: k }), Grouped.with(S, S))
      .count()
    valueCounts
      .suppress(Suppressed.untilTimeLimit(2, BufferConfig.unbounded()))
      .toStream()
      .to('output-suppressed', { keySerde: S, valueSerde: L })
    valueCounts.toStream().to('output-raw', { keySerde: S, valueSerde: L })
    const d = new TopologyTestDriver(b.build(), {}, 0)
    const input = d.createInputTopic('input', S, S)
    await input.pipeInput('k1', 'v1', 0)
    await input.pipeInput('k1', 'v2', 1)
    await input.pipeInput('k2', 'v1', 2)
    expect(drain(d, 'output-raw')).toEqual([
      ['v1', 1, 0],
      ['v1', 0, 1],
      ['v2', 1, 1],
      ['v1', 1, 2],
    ])
    // v1 was first buffered at 0: 0 + 2 <= 2
    expect(drain(d, 'output-suppressed')).toEqual([['v1', 1, 2]])
    await input.pipeInput('tick', 'tick', 3)
    expect(drain(d, 'output-raw')).toEqual([['tick', 1, 3]])
    expect(drain(d, 'output-suppressed')).toEqual([['v2', 1, 1]])
    await input.pipeInput('tick', 'tock', 4)
    expect(drain(d, 'output-raw')).toEqual([
      ['tick', 0, 4],
      ['tock', 1, 4],
    ])
    // tick was first buffered at 3; stream-time 4 < 3 + 2
    expect(drain(d, 'output-suppressed')).toEqual([])
    await d.close()
  })

  it('keeps the buffer in a logged key-value store registered with the topology', () => {
    const b = new StreamsBuilder()
    b.stream('input', Consumed.with(S, S))
      .groupByKey()
      .windowedBy(TimeWindows.ofSizeWithNoGrace(10))
      .count()
      .suppress(Suppressed.untilWindowCloses(BufferConfig.unbounded()).withName('final'))
    const def = b.build().resolve('app')
    expect(def.stores.get('final-store')).toMatchObject({ type: 'keyValue', loggingEnabled: true, persistent: true })
    expect(def.changelogTopics.map((t) => t.name)).toContain('app-final-store-changelog')
  })
})
