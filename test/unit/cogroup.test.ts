import { describe, expect, it } from 'vitest'
import {
  BufferConfig,
  Consumed,
  Grouped,
  Materialized,
  Named,
  Produced,
  Serdes,
  SessionWindows,
  SlidingWindows,
  StreamsBuilder,
  Suppressed,
  TimeWindows,
  TopologyError,
  WindowedSerdes,
  type KGroupedStream,
  type Windowed,
} from '../../lib/index.js'
import { TopologyTestDriver } from '../../lib/testing/index.js'
import { windowedString } from './helpers/windowed.js'

/**
 * Cogroup (KIP-150). Inputs and expected outputs are the facts of Kafka Streams'
 * CogroupedKStreamImplTest, TimeWindowedCogroupedKStreamImplTest,
 * SlidingWindowedCogroupedKStreamImplTest and SessionWindowedCogroupedKStreamImplTest.
 */

const S = Serdes.String()
const I = Serdes.Integer()
const concat = (_k: string, v: string, agg: string): string => agg + v
const adder = (_k: string, v: string, agg: string): string => `${agg}+${v}`
const remover = (_k: string, v: string, agg: string): string => `${agg}-${v}`
const init0 = (): string => '0'

type Row = [string, string | number | null, number]

async function withDriver(b: StreamsBuilder, fn: (d: TopologyTestDriver) => Promise<void>): Promise<void> {
  const d = new TopologyTestDriver(b.build(), { applicationId: 'cogroup', defaultKeySerde: S, defaultValueSerde: S }, 0)
  try {
    await fn(d)
  } finally {
    await d.close()
  }
}

function rows(d: TopologyTestDriver, valueSerde = S): Row[] {
  return d
    .createOutputTopic('output', S, valueSerde as typeof S)
    .readRecordsToList()
    .map((r) => [r.key as string, r.value as string | number | null, r.timestamp])
}

function windowedRows(d: TopologyTestDriver, keySerde: ReturnType<typeof WindowedSerdes.timeWindowedSerdeFrom<string>>): Row[] {
  return d
    .createOutputTopic('output', keySerde, S)
    .readRecordsToList()
    .map((r) => [(r.key as Windowed<string>).key, r.value, r.timestamp])
}

function twoStreams(b: StreamsBuilder): [KGroupedStream<string, string>, KGroupedStream<string, string>] {
  return [b.stream('one', Consumed.with(S, S)).groupByKey(), b.stream('two', Consumed.with(S, S)).groupByKey()]
}

describe('CogroupedKStream: topology', () => {
  it('names processors <name>-cogroup-agg-<i> and <name>-cogroup-merge from Named; one shared store', () => {
    const b = new StreamsBuilder()
    const [one, two] = twoStreams(b)
    one
      .cogroup(concat)
      .cogroup(two, concat)
      .aggregate(() => '', Materialized.as('store'), Named.as('test'))
      .toStream()
      .to('output')
    expect(b.build().describe().toString()).toBe(
      [
        'Topologies:',
        '   Sub-topology: 0',
        '    Source: KSTREAM-SOURCE-0000000000 (topics: [one])',
        '      --> test-cogroup-agg-0',
        '    Source: KSTREAM-SOURCE-0000000001 (topics: [two])',
        '      --> test-cogroup-agg-1',
        '    Processor: test-cogroup-agg-0 (stores: [store])',
        '      --> test-cogroup-merge',
        '      <-- KSTREAM-SOURCE-0000000000',
        '    Processor: test-cogroup-agg-1 (stores: [store])',
        '      --> test-cogroup-merge',
        '      <-- KSTREAM-SOURCE-0000000001',
        '    Processor: test-cogroup-merge (stores: [])',
        '      --> KTABLE-TOSTREAM-0000000005',
        '      <-- test-cogroup-agg-0, test-cogroup-agg-1',
        '    Processor: KTABLE-TOSTREAM-0000000005 (stores: [])',
        '      --> KSTREAM-SINK-0000000006',
        '      <-- test-cogroup-merge',
        '    Sink: KSTREAM-SINK-0000000006 (topic: output)',
        '      <-- KTABLE-TOSTREAM-0000000005',
        '',
        '',
      ].join('\n'),
    )
  })

  it('a re-keyed input goes through <Grouped name>-repartition; generated names follow Kafka Streams counters', () => {
    const b = new StreamsBuilder()
    const s1 = b.stream('one', Consumed.with(S, S))
    const s2 = b.stream('two', Consumed.with(S, S))
    const one = s1.map((k, v) => [v, k] as [string, string]).groupByKey(Grouped.as('repartition-test'))
    const two = s2.groupByKey()
    one
      .cogroup(concat)
      .cogroup(two, concat)
      .aggregate(() => '')
      .toStream()
      .to('output')
    expect(b.build().describe().toString()).toBe(
      [
        'Topologies:',
        '   Sub-topology: 0',
        '    Source: KSTREAM-SOURCE-0000000000 (topics: [one])',
        '      --> KSTREAM-MAP-0000000002',
        '    Processor: KSTREAM-MAP-0000000002 (stores: [])',
        '      --> repartition-test-repartition-filter',
        '      <-- KSTREAM-SOURCE-0000000000',
        '    Processor: repartition-test-repartition-filter (stores: [])',
        '      --> repartition-test-repartition-sink',
        '      <-- KSTREAM-MAP-0000000002',
        '    Sink: repartition-test-repartition-sink (topic: repartition-test-repartition)',
        '      <-- repartition-test-repartition-filter',
        '',
        '  Sub-topology: 1',
        '    Source: KSTREAM-SOURCE-0000000001 (topics: [two])',
        '      --> COGROUPKSTREAM-AGGREGATE-0000000008',
        '    Source: repartition-test-repartition-source (topics: [repartition-test-repartition])',
        '      --> COGROUPKSTREAM-AGGREGATE-0000000007',
        '    Processor: COGROUPKSTREAM-AGGREGATE-0000000007 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003])',
        '      --> COGROUPKSTREAM-MERGE-0000000009',
        '      <-- repartition-test-repartition-source',
        '    Processor: COGROUPKSTREAM-AGGREGATE-0000000008 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003])',
        '      --> COGROUPKSTREAM-MERGE-0000000009',
        '      <-- KSTREAM-SOURCE-0000000001',
        '    Processor: COGROUPKSTREAM-MERGE-0000000009 (stores: [])',
        '      --> KTABLE-TOSTREAM-0000000010',
        '      <-- COGROUPKSTREAM-AGGREGATE-0000000007, COGROUPKSTREAM-AGGREGATE-0000000008',
        '    Processor: KTABLE-TOSTREAM-0000000010 (stores: [])',
        '      --> KSTREAM-SINK-0000000011',
        '      <-- COGROUPKSTREAM-MERGE-0000000009',
        '    Sink: KSTREAM-SINK-0000000011 (topic: output)',
        '      <-- KTABLE-TOSTREAM-0000000010',
        '',
        '',
      ].join('\n'),
    )
  })

  it('without a Grouped name the repartition topic is named after the store', () => {
    const b = new StreamsBuilder()
    const s1 = b.stream('one', Consumed.with(S, S))
    const s2 = b.stream('two', Consumed.with(S, S))
    const one = s1.map((k, v) => [v, k] as [string, string]).groupByKey()
    const two = s2.groupByKey()
    one
      .cogroup(concat)
      .cogroup(two, concat)
      .aggregate(() => '', Materialized.as('store'), Named.as('test'))
      .toStream()
      .to('output')
    const text = b.build().describe().toString()
    expect(text).toContain('    Sink: store-repartition-sink (topic: store-repartition)\n')
    expect(text).toContain('    Source: store-repartition-source (topics: [store-repartition])\n      --> test-cogroup-agg-0\n')
    expect(text).toContain('    Source: KSTREAM-SOURCE-0000000001 (topics: [two])\n      --> test-cogroup-agg-1\n')
    expect(text).toContain('    Processor: KTABLE-TOSTREAM-0000000009 (stores: [])')
  })

  it('aggregating one cogroup twice reuses its repartition topic (names are still used up)', () => {
    const b = new StreamsBuilder()
    const one = b
      .stream('one', Consumed.with(S, S))
      .map((k, v) => [v, k] as [string, string])
      .groupByKey(Grouped.as('foo'))
    const cogrouped = one.cogroup(concat)
    cogrouped.aggregate(() => '')
    cogrouped.aggregate(() => '')
    expect(b.build().describe().toString()).toBe(
      [
        'Topologies:',
        '   Sub-topology: 0',
        '    Source: KSTREAM-SOURCE-0000000000 (topics: [one])',
        '      --> KSTREAM-MAP-0000000001',
        '    Processor: KSTREAM-MAP-0000000001 (stores: [])',
        '      --> foo-repartition-filter',
        '      <-- KSTREAM-SOURCE-0000000000',
        '    Processor: foo-repartition-filter (stores: [])',
        '      --> foo-repartition-sink',
        '      <-- KSTREAM-MAP-0000000001',
        '    Sink: foo-repartition-sink (topic: foo-repartition)',
        '      <-- foo-repartition-filter',
        '',
        '  Sub-topology: 1',
        '    Source: foo-repartition-source (topics: [foo-repartition])',
        '      --> COGROUPKSTREAM-AGGREGATE-0000000006, COGROUPKSTREAM-AGGREGATE-0000000012',
        '    Processor: COGROUPKSTREAM-AGGREGATE-0000000006 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000002])',
        '      --> COGROUPKSTREAM-MERGE-0000000007',
        '      <-- foo-repartition-source',
        '    Processor: COGROUPKSTREAM-AGGREGATE-0000000012 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000008])',
        '      --> COGROUPKSTREAM-MERGE-0000000013',
        '      <-- foo-repartition-source',
        '    Processor: COGROUPKSTREAM-MERGE-0000000007 (stores: [])',
        '      --> none',
        '      <-- COGROUPKSTREAM-AGGREGATE-0000000006',
        '    Processor: COGROUPKSTREAM-MERGE-0000000013 (stores: [])',
        '      --> none',
        '      <-- COGROUPKSTREAM-AGGREGATE-0000000012',
        '',
        '',
      ].join('\n'),
    )
  })

  it('two separate cogroups of the same re-keyed stream get one repartition topic each, named after their stores', () => {
    const b = new StreamsBuilder()
    const s1 = b.stream('one', Consumed.with(S, S))
    const s2 = b.stream('two', Consumed.with(S, S))
    const one = s1.map((k, v) => [v, k] as [string, string]).groupByKey()
    const two = s2.groupByKey()
    one
      .cogroup(concat)
      .cogroup(two, concat)
      .aggregate(() => '')
    one
      .cogroup(concat)
      .cogroup(two, concat)
      .aggregate(() => '')
    const text = b.build().describe().toString()
    expect(text).toContain('(topic: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition)')
    expect(text).toContain('(topic: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000010-repartition)')
    expect(text).toContain('Processor: COGROUPKSTREAM-AGGREGATE-0000000014 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000010])')
    expect(text).toContain('Processor: COGROUPKSTREAM-MERGE-0000000016 (stores: [])')
  })

  it('rejects bad arguments with TopologyError naming the parameter', () => {
    const b = new StreamsBuilder()
    const [one, two] = twoStreams(b)
    const c = one.cogroup(concat)
    // @ts-expect-error null is not a KGroupedStream
    expect(() => c.cogroup(null, concat)).toThrow(new TopologyError("cogroup: parameter 'groupedStream' must be a KGroupedStream"))
    // @ts-expect-error null is not an aggregator
    expect(() => c.cogroup(two, null)).toThrow(new TopologyError("cogroup: parameter 'aggregator' must be a function"))
    // @ts-expect-error null is not an aggregator
    expect(() => one.cogroup(null)).toThrow(new TopologyError("cogroup: parameter 'aggregator' must be a function"))
    // @ts-expect-error null is not an initializer
    expect(() => c.aggregate(null)).toThrow(new TopologyError("aggregate: parameter 'initializer' must be a function"))
    // @ts-expect-error not windows
    expect(() => c.windowedBy(null)).toThrow(TopologyError)
    // @ts-expect-error null is not a merger
    expect(() => c.windowedBy(SessionWindows.ofInactivityGapWithNoGrace(1)).aggregate(init0, null)).toThrow(
      new TopologyError("aggregate: parameter 'sessionMerger' must be a function"),
    )
    const other = new StreamsBuilder().stream('x', Consumed.with(S, S)).groupByKey()
    expect(() => c.cogroup(other, concat)).toThrow(
      new TopologyError("cogroup: parameter 'groupedStream' comes from a different StreamsBuilder"),
    )
    expect(() => c.windowedBy(TimeWindows.ofSizeWithNoGrace(10)).aggregate(init0, Materialized.with(S, S).withRetention(5))).toThrow(
      /retention period of the window store COGROUPKSTREAM-AGGREGATE-STATE-STORE-\d+ must be no smaller than its window size plus the grace period \(10 ms\)/,
    )
  })

  it('two unnamed re-keyed inputs would share one repartition topic: a clear error asks for Grouped names', () => {
    const b = new StreamsBuilder()
    const a = b
      .stream('one', Consumed.with(S, S))
      .selectKey((_k, v) => v)
      .groupByKey()
    const c = b
      .stream('two', Consumed.with(S, S))
      .selectKey((_k, v) => v)
      .groupByKey()
    expect(() =>
      a
        .cogroup(concat)
        .cogroup(c, concat)
        .aggregate(() => '', Materialized.as('agg')),
    ).toThrow(
      new TopologyError(
        "aggregate: two grouped streams of this cogroup need a repartition topic named 'agg-repartition'; give them different Grouped names",
      ),
    )
  })

  it('handles are immutable: cogroup returns a new handle and leaves the old one with its inputs', () => {
    const b = new StreamsBuilder()
    const [one, two] = twoStreams(b)
    const first = one.cogroup(concat)
    const both = first.cogroup(two, concat)
    expect(first.patterns).toHaveLength(1)
    expect(both.patterns).toHaveLength(2)
    expect(both.cogroup(two, adder).patterns).toHaveLength(2) // the same input again replaces its aggregator
  })
})

describe('CogroupedKStream: aggregate', () => {
  it('a single stream aggregates like KGroupedStream.aggregate', async () => {
    const b = new StreamsBuilder()
    const [one] = twoStreams(b)
    one
      .cogroup(concat)
      .aggregate(() => '')
      .toStream()
      .to('output')
    await withDriver(b, async (d) => {
      const input = d.createInputTopic('one', S, S)
      await input.pipeInput('k1', 'A', 0)
      await input.pipeInput('k2', 'B', 0)
      await input.pipeInput('k2', null, 0) // null values are dropped
      await input.pipeInput('k2', 'B', 0)
      await input.pipeInput('k1', 'A', 0)
      expect(rows(d)).toEqual([
        ['k1', 'A', 0],
        ['k2', 'B', 0],
        ['k2', 'BB', 0],
        ['k1', 'AA', 0],
      ])
    })
  })

  it('two streams with distinct keys: the result timestamp is the largest folded in', async () => {
    const b = new StreamsBuilder()
    const [one, two] = twoStreams(b)
    one
      .cogroup(concat)
      .cogroup(two, concat)
      .aggregate(() => '')
      .toStream()
      .to('output')
    await withDriver(b, async (d) => {
      const i1 = d.createInputTopic('one', S, S)
      const i2 = d.createInputTopic('two', S, S)
      for (const t of [0, 1, 10, 100]) await i1.pipeInput('k1', 'A', t)
      for (const t of [100, 200, 1, 500, 500, 100]) await i2.pipeInput('k2', 'B', t)
      expect(rows(d)).toEqual([
        ['k1', 'A', 0],
        ['k1', 'AA', 1],
        ['k1', 'AAA', 10],
        ['k1', 'AAAA', 100],
        ['k2', 'B', 100],
        ['k2', 'BB', 200],
        ['k2', 'BBB', 200],
        ['k2', 'BBBB', 500],
        ['k2', 'BBBBB', 500],
        ['k2', 'BBBBBB', 500],
      ])
    })
  })

  it('three streams with shared keys fold into one aggregate per key', async () => {
    const b = new StreamsBuilder()
    const [one, two] = twoStreams(b)
    const three = b.stream('three', Consumed.with(S, S)).groupByKey()
    one
      .cogroup(concat)
      .cogroup(two, concat)
      .cogroup(three, concat)
      .aggregate(() => '')
      .toStream()
      .to('output')
    await withDriver(b, async (d) => {
      const i1 = d.createInputTopic('one', S, S)
      const i2 = d.createInputTopic('two', S, S)
      const i3 = d.createInputTopic('three', S, S)
      await i1.pipeInput('k1', 'A', 0)
      await i1.pipeInput('k2', 'A', 1)
      await i1.pipeInput('k1', 'A', 10)
      await i1.pipeInput('k2', 'A', 100)
      await i2.pipeInput('k2', 'B', 100)
      await i2.pipeInput('k2', 'B', 200)
      await i2.pipeInput('k1', 'B', 1)
      await i2.pipeInput('k2', 'B', 500)
      await i3.pipeInput('k1', 'B', 500)
      await i3.pipeInput('k2', 'B', 500)
      await i3.pipeInput('k3', 'B', 500)
      await i3.pipeInput('k2', 'B', 100)
      expect(rows(d)).toEqual([
        ['k1', 'A', 0],
        ['k2', 'A', 1],
        ['k1', 'AA', 10],
        ['k2', 'AA', 100],
        ['k2', 'AAB', 100],
        ['k2', 'AABB', 200],
        ['k1', 'AAB', 10],
        ['k2', 'AABBB', 500],
        ['k1', 'AABB', 500],
        ['k2', 'AABBBB', 500],
        ['k3', 'B', 500],
        ['k2', 'AABBBBB', 500],
      ])
    })
  })

  it('inputs of different value types, each with its own aggregator, into an Integer aggregate', async () => {
    const b = new StreamsBuilder()
    const one = b.stream('one', Consumed.with(S, S)).groupByKey()
    const two = b.stream('two', Consumed.with(S, I)).groupByKey()
    one
      .cogroup<number>((_k, v, agg) => agg + Number.parseInt(v, 10))
      .cogroup(two, (_k, v, agg) => agg + v)
      .aggregate(() => 0, Materialized.as<string, number>('store1').withValueSerde(I))
      .toStream()
      .to('output', Produced.with(S, I))
    await withDriver(b, async (d) => {
      const i1 = d.createInputTopic('one', S, S)
      const i2 = d.createInputTopic('two', S, I)
      await i1.pipeInput('k1', '1', 0)
      await i1.pipeInput('k2', '1', 1)
      await i1.pipeInput('k1', '1', 10)
      await i1.pipeInput('k2', '1', 100)
      await i2.pipeInput('k2', 2, 100)
      await i2.pipeInput('k2', 2, 200)
      await i2.pipeInput('k1', 2, 1)
      await i2.pipeInput('k2', 2, 500)
      await i2.pipeInput('k1', 2, 500)
      await i2.pipeInput('k2', 3, 500)
      await i2.pipeInput('k3', 2, 500)
      await i2.pipeInput('k2', 2, 100)
      expect(rows(d, I as never)).toEqual([
        ['k1', 1, 0],
        ['k2', 1, 1],
        ['k1', 2, 10],
        ['k2', 2, 100],
        ['k2', 4, 100],
        ['k2', 6, 200],
        ['k1', 4, 10],
        ['k2', 8, 500],
        ['k1', 6, 500],
        ['k2', 11, 500],
        ['k3', 2, 500],
        ['k2', 13, 500],
      ])
      expect(await d.getKeyValueStore<string, number>('store1').get('k2')).toBe(13)
    })
  })

  it('mixed aggregators per input on the same key', async () => {
    const b = new StreamsBuilder()
    const [one, two] = twoStreams(b)
    one
      .cogroup(remover)
      .cogroup(two, adder)
      .aggregate(init0, Materialized.as<string, string>('store1').withValueSerde(S))
      .toStream()
      .to('output')
    await withDriver(b, async (d) => {
      const i1 = d.createInputTopic('one', S, S)
      const i2 = d.createInputTopic('two', S, S)
      await i1.pipeInput('k1', '1', 0)
      await i1.pipeInput('k2', '1', 1)
      await i1.pipeInput('k1', '1', 10)
      await i1.pipeInput('k2', '1', 100)
      await i2.pipeInput('k1', '2', 500)
      await i2.pipeInput('k2', '2', 500)
      await i2.pipeInput('k1', '2', 500)
      await i2.pipeInput('k2', '2', 100)
      expect(rows(d)).toEqual([
        ['k1', '0-1', 0],
        ['k2', '0-1', 1],
        ['k1', '0-1-1', 10],
        ['k2', '0-1-1', 100],
        ['k1', '0-1-1+2', 500],
        ['k2', '0-1-1+2', 500],
        ['k1', '0-1-1+2+2', 500],
        ['k2', '0-1-1+2+2', 500],
      ])
    })
  })

  it('a cogrouped table joins with another table (old values and value getter of the shared store)', async () => {
    const b = new StreamsBuilder()
    const [one, two] = twoStreams(b)
    const table1 = one
      .cogroup(concat)
      .cogroup(two, concat)
      .aggregate(() => '', Materialized.as('store'), Named.as('name'))
    const table2 = b.table('three', Consumed.with(S, S))
    table1
      .join(table2, (a, c) => `${a}+${c}`, Materialized.with(S, S))
      .toStream()
      .to('output')
    await withDriver(b, async (d) => {
      await d.createInputTopic('one', S, S).pipeInput('k1', 'A', 5)
      await d.createInputTopic('two', S, S).pipeInput('k2', 'B', 6)
      expect(rows(d)).toEqual([])
      const i3 = d.createInputTopic('three', S, S)
      await i3.pipeInput('k1', 'C', 0)
      await i3.pipeInput('k2', 'D', 10)
      expect(rows(d)).toEqual([
        ['k1', 'A+C', 5],
        ['k2', 'B+D', 10],
      ])
    })
  })

  it('a re-keyed input is repartitioned and aggregated with the others (driver runs both sub-topologies)', async () => {
    const b = new StreamsBuilder()
    const one = b
      .stream('one', Consumed.with(S, S))
      .map((k, v) => [v, k] as [string, string])
      .groupByKey(Grouped.with(S, S))
    const two = b.stream('two', Consumed.with(S, S)).groupByKey()
    one
      .cogroup(concat)
      .cogroup(two, (_k, v, agg) => agg + v.toLowerCase())
      .aggregate(() => '', Materialized.as('agg'))
      .toStream()
      .to('output')
    await withDriver(b, async (d) => {
      await d.createInputTopic('one', S, S).pipeInput('a', 'K', 1) // re-keyed to K with value a
      await d.createInputTopic('two', S, S).pipeInput('K', 'B', 2)
      await d.createInputTopic('one', S, S).pipeInput('c', 'K', 3)
      expect(rows(d)).toEqual([
        ['K', 'a', 1],
        ['K', 'ab', 2],
        ['K', 'abc', 3],
      ])
      expect(d.producedTopicNames()).toEqual(new Set(['cogroup-agg-repartition', 'output']))
    })
  })
})

describe('TimeWindowedCogroupedKStream', () => {
  const windowed = WindowedSerdes.timeWindowedSerdeFrom(S, 500)

  function setup(): { b: StreamsBuilder; one: KGroupedStream<string, string>; two: KGroupedStream<string, string> } {
    const b = new StreamsBuilder()
    const [one, two] = twoStreams(b)
    return { b, one, two }
  }

  it('Named names the processors; the store is COGROUPKSTREAM-AGGREGATE-STATE-STORE-<n>', () => {
    const { b, one } = setup()
    one.cogroup(adder).windowedBy(TimeWindows.ofSizeWithNoGrace(500)).aggregate(init0, undefined, Named.as('foo'))
    const text = b.build().describe().toString()
    expect(text).toContain('    Processor: foo-cogroup-agg-0 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000002])\n')
    expect(text).toContain('    Processor: foo-cogroup-merge (stores: [])\n      --> none\n      <-- foo-cogroup-agg-0\n')
  })

  it('two inputs with their own aggregators update the same windows', async () => {
    const { b, one, two } = setup()
    one
      .cogroup(adder)
      .cogroup(two, remover)
      .windowedBy(TimeWindows.ofSizeWithNoGrace(500))
      .aggregate(init0, Materialized.with(S, S))
      .toStream()
      .to('output', Produced.with(windowed, S))
    await withDriver(b, async (d) => {
      const i1 = d.createInputTopic('one', S, S)
      const i2 = d.createInputTopic('two', S, S)
      await i1.pipeInput('k1', 'A', 0)
      await i1.pipeInput('k2', 'A', 0)
      await i1.pipeInput('k2', 'A', 1)
      await i1.pipeInput('k1', 'A', 2)
      await i2.pipeInput('k1', 'B', 3)
      await i2.pipeInput('k2', 'B', 3)
      await i2.pipeInput('k2', 'B', 501)
      await i2.pipeInput('k1', 'B', 501)
      expect(windowedRows(d, windowed)).toEqual([
        ['k1', '0+A', 0],
        ['k2', '0+A', 0],
        ['k2', '0+A+A', 1],
        ['k1', '0+A+A', 2],
        ['k1', '0+A+A-B', 3],
        ['k2', '0+A+A-B', 3],
        ['k2', '0-B', 501],
        ['k1', '0-B', 501],
      ])
    })
  })

  it('hopping windows: each record updates every window containing it', async () => {
    const { b, one } = setup()
    one
      .cogroup(adder)
      .windowedBy(TimeWindows.ofSizeWithNoGrace(500).advanceBy(200))
      .aggregate(init0, Materialized.with(S, S))
      .toStream()
      .to('output', Produced.with(windowed, S))
    await withDriver(b, async (d) => {
      const i1 = d.createInputTopic('one', S, S)
      await i1.pipeInput('k1', 'A', 0)
      await i1.pipeInput('k2', 'A', 0)
      await i1.pipeInput('k1', 'B', 250)
      await i1.pipeInput('k2', 'B', 250)
      await i1.pipeInput('k2', 'A', 500)
      await i1.pipeInput('k1', 'A', 500)
      expect(windowedRows(d, windowed)).toEqual([
        ['k1', '0+A', 0],
        ['k2', '0+A', 0],
        ['k1', '0+A+B', 250],
        ['k1', '0+B', 250],
        ['k2', '0+A+B', 250],
        ['k2', '0+B', 250],
        ['k2', '0+B+A', 500],
        ['k2', '0+A', 500],
        ['k1', '0+B+A', 500],
        ['k1', '0+A', 500],
      ])
    })
  })

  it('suppress(untilWindowCloses) finds the grace through the merge node', async () => {
    const { b, one, two } = setup()
    one
      .cogroup(adder)
      .cogroup(two, remover)
      .windowedBy(TimeWindows.ofSizeAndGrace(10, 5))
      .aggregate(init0, Materialized.with(S, S))
      .suppress(Suppressed.untilWindowCloses(BufferConfig.unbounded()))
      .toStream()
      .to('output', Produced.with(WindowedSerdes.timeWindowedSerdeFrom(S, 10), S))
    await withDriver(b, async (d) => {
      await d.createInputTopic('one', S, S).pipeInput('k', 'A', 1)
      await d.createInputTopic('two', S, S).pipeInput('k', 'B', 2)
      await d.createInputTopic('one', S, S).pipeInput('x', 'C', 14) // 10 + 5 > 14: still open
      expect(windowedRows(d, WindowedSerdes.timeWindowedSerdeFrom(S, 10))).toEqual([])
      await d.createInputTopic('one', S, S).pipeInput('x', 'D', 15)
      expect(windowedRows(d, WindowedSerdes.timeWindowedSerdeFrom(S, 10))).toEqual([['k', '0+A-B', 2]])
    })
  })
})

describe('sliding-windowed cogroup', () => {
  it('records of both inputs create and update the same sliding windows', async () => {
    const b = new StreamsBuilder()
    const [one, two] = twoStreams(b)
    const windowed = WindowedSerdes.timeWindowedSerdeFrom(S, 500)
    one
      .cogroup(adder)
      .cogroup(two, remover)
      .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(500, 2000))
      .aggregate(init0, Materialized.with(S, S))
      .toStream()
      .to('output', Produced.with(windowed, S))
    await withDriver(b, async (d) => {
      const i1 = d.createInputTopic('one', S, S)
      const i2 = d.createInputTopic('two', S, S)
      await i1.pipeInput('k1', 'A', 500)
      await i2.pipeInput('k1', 'B', 750)
      await i1.pipeInput('k1', 'A', 1000)
      expect(
        d
          .createOutputTopic('output', windowed, S)
          .readRecordsToList()
          .map((r) => [windowedString(r.key as Windowed<string>), r.value, r.timestamp]),
      ).toEqual([
        ['[k1@0/500]', '0+A', 500],
        ['[k1@501/1001]', '0-B', 750],
        ['[k1@250/750]', '0+A-B', 750],
        ['[k1@501/1001]', '0-B+A', 1000],
        ['[k1@751/1251]', '0+A', 1000],
        ['[k1@500/1000]', '0+A-B+A', 1000],
      ])
    })
  })
})

describe('sliding-windowed cogroup (one input)', () => {
  it('overlapping sliding windows: left and right windows as Kafka Streams forwards them', async () => {
    const b = new StreamsBuilder()
    const [one] = twoStreams(b)
    const windowed = WindowedSerdes.timeWindowedSerdeFrom(S, 500)
    one
      .cogroup(adder)
      .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(500, 2000))
      .aggregate(init0, Materialized.with(S, S))
      .toStream()
      .to('output', Produced.with(windowed, S))
    await withDriver(b, async (d) => {
      const i1 = d.createInputTopic('one', S, S)
      await i1.pipeInput('k1', 'A', 500)
      await i1.pipeInput('k2', 'A', 500)
      await i1.pipeInput('k1', 'B', 750)
      await i1.pipeInput('k2', 'B', 750)
      await i1.pipeInput('k2', 'A', 1000)
      await i1.pipeInput('k1', 'A', 1000)
      expect(windowedRows(d, windowed)).toEqual([
        ['k1', '0+A', 500],
        ['k2', '0+A', 500],
        ['k1', '0+B', 750],
        ['k1', '0+A+B', 750],
        ['k2', '0+B', 750],
        ['k2', '0+A+B', 750],
        ['k2', '0+B+A', 1000],
        ['k2', '0+A', 1000],
        ['k2', '0+A+B+A', 1000],
        ['k1', '0+B+A', 1000],
        ['k1', '0+A', 1000],
        ['k1', '0+A+B+A', 1000],
      ])
    })
  })
})

describe('SessionWindowedCogroupedKStream', () => {
  const merger = (_k: string, a: string, c: string): string => `${a}+${c}`
  const sessionSerde = WindowedSerdes.sessionWindowedSerdeFrom(S)

  it('sessions of one input: a record at the same time updates its session in place; a record past the gap starts a new one', async () => {
    const b = new StreamsBuilder()
    const [one] = twoStreams(b)
    one
      .cogroup(adder)
      .windowedBy(SessionWindows.ofInactivityGapWithNoGrace(500))
      .aggregate(init0, merger, Materialized.with(S, S))
      .toStream()
      .to('output', Produced.with(sessionSerde, S))
    await withDriver(b, async (d) => {
      const i1 = d.createInputTopic('one', S, S)
      await i1.pipeInput('k1', 'A', 0)
      await i1.pipeInput('k1', 'A', 0)
      await i1.pipeInput('k2', 'B', 599)
      await i1.pipeInput('k1', 'B', 607)
      expect(windowedRows(d, sessionSerde as never)).toEqual([
        ['k1', '0+A', 0],
        ['k1', '0+0+A+A', 0], // same session [0,0]: replaced in place, no tombstone
        ['k2', '0+B', 599],
        ['k1', '0+B', 607],
      ])
    })
  })

  it('records of both inputs extend and merge the same sessions', async () => {
    const b = new StreamsBuilder()
    const [one, two] = twoStreams(b)
    one
      .cogroup(adder)
      .cogroup(two, remover)
      .windowedBy(SessionWindows.ofInactivityGapAndGrace(100, 24 * 3600_000))
      .aggregate(init0, merger, Materialized.with(S, S))
      .toStream()
      .to('output', Produced.with(sessionSerde, S))
    await withDriver(b, async (d) => {
      const i1 = d.createInputTopic('one', S, S)
      const i2 = d.createInputTopic('two', S, S)
      await i1.pipeInput('k1', 'A', 0)
      await i1.pipeInput('k2', 'A', 0)
      await i1.pipeInput('k2', 'A', 1)
      await i1.pipeInput('k1', 'A', 2)
      await i2.pipeInput('k1', 'B', 3)
      await i2.pipeInput('k2', 'B', 3)
      await i2.pipeInput('k2', 'B', 444)
      await i2.pipeInput('k1', 'B', 444)
      expect(windowedRows(d, sessionSerde as never)).toEqual([
        ['k1', '0+A', 0],
        ['k2', '0+A', 0],
        ['k2', null, 0],
        ['k2', '0+0+A+A', 1],
        ['k1', null, 0],
        ['k1', '0+0+A+A', 2],
        ['k1', null, 2],
        ['k1', '0+0+0+A+A-B', 3],
        ['k2', null, 1],
        ['k2', '0+0+0+A+A-B', 3],
        ['k2', '0-B', 444],
        ['k1', '0-B', 444],
      ])
    })
  })
})
