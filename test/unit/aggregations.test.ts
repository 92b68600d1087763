import { describe, expect, it } from 'vitest'
import { Consumed, Grouped, Materialized, Named, Produced, SerializationError, Serdes, StreamsBuilder } from '../../lib/index.js'
import { TopologyTestDriver } from '../../lib/testing/index.js'

const S = Serdes.String()
const I = Serdes.Integer()
const L = Serdes.Long()

describe('KGroupedStream aggregations', () => {
  it('count by key; result timestamp is the largest input timestamp', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S)).groupByKey().count(Materialized.as('counts')).toStream().to('out', Produced.with(S, L))
    const d = new TopologyTestDriver(b.build(), { applicationId: 'app' }, 0)
    const input = d.createInputTopic('in', S, S)
    await input.pipeInput('a', 'x', 100)
    await input.pipeInput('b', 'x', 50)
    await input.pipeInput('a', 'y', 80) // out of order: timestamp stays 100
    await input.pipeInput('a', 'z', 120)
    expect(
      d
        .createOutputTopic('out', S, L)
        .readRecordsToList()
        .map((r) => [r.key, r.value, r.timestamp]),
    ).toEqual([
      ['a', 1, 100],
      ['b', 1, 50],
      ['a', 2, 100],
      ['a', 3, 120],
    ])
    expect(await d.getKeyValueStore<string, number>('counts').get('a')).toBe(3)
    expect(await d.getTimestampedKeyValueStore<string, number>('counts').get('a')).toEqual({ value: 3, timestamp: 120 })
    expect(d.producedTopicNames()).toEqual(new Set(['out'])) // no key change, no repartition
    await d.close()
  })

  it('word count: re-keying before count goes through the repartition topic named after the store', async () => {
    const b = new StreamsBuilder()
    b.stream('lines', Consumed.with(S, S))
      .flatMapValues((line) =>
        line
          .toLowerCase()
          .split(/\W+/)
          .filter((w) => w.length > 0),
      )
      .groupBy((_k, word) => word, Grouped.with(S, S))
      .count(Materialized.as('counts-store'))
      .toStream()
      .to('word-counts', Produced.with(S, L))
    const d = new TopologyTestDriver(b.build(), { applicationId: 'wordcount' }, 0)
    const input = d.createInputTopic('lines', S, S)
    await input.pipeInput(null, 'Hello Kafka Streams', 1)
    await input.pipeInput(null, 'hello world', 2)
    expect(d.createOutputTopic('word-counts', S, L).readKeyValuesToMap()).toEqual(
      new Map([
        ['hello', 2],
        ['kafka', 1],
        ['streams', 1],
        ['world', 1],
      ]),
    )
    expect(d.producedTopicNames()).toEqual(new Set(['wordcount-counts-store-repartition', 'word-counts']))
    await d.close()
  })

  it('unnamed store: repartition topic KSTREAM-AGGREGATE-STATE-STORE-<n>-repartition; Grouped name wins when given', async () => {
    const b = new StreamsBuilder()
    const s = b.stream('in', Consumed.with(S, S))
    s.selectKey((_k, v) => v)
      .groupByKey(Grouped.with(S, S))
      .count()
      .toStream()
      .to('out1', Produced.with(S, L))
    s.selectKey((_k, v) => v.toUpperCase())
      .groupByKey(Grouped.as<string, string>('by-upper').withKeySerde(S).withValueSerde(S))
      .count()
      .toStream()
      .to('out2', Produced.with(S, L))
    const d = new TopologyTestDriver(b.build(), { applicationId: 'app' }, 0)
    await d.createInputTopic('in', S, S).pipeInput('k', 'v', 1)
    // source 0, key-select 1, store 2, aggregate 3, sink 4, filter 5, source 6, ...
    expect([...d.producedTopicNames()].filter((t) => t.endsWith('-repartition')).sort()).toEqual([
      'app-KSTREAM-AGGREGATE-STATE-STORE-0000000002-repartition',
      'app-by-upper-repartition',
    ])
    expect(d.createOutputTopic('out1', S, L).readKeyValue()).toEqual({ key: 'v', value: 1 })
    expect(d.createOutputTopic('out2', S, L).readKeyValue()).toEqual({ key: 'V', value: 1 })
    await d.close()
  })

  it('after a key change the key serde is dropped: without Grouped serdes nor defaults the repartition sink fails', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S))
      .selectKey((_k, v) => v.length)
      .groupByKey()
      .count()
      .toStream()
      .to('out', Produced.with(I, L))
    const d = new TopologyTestDriver(b.build(), { applicationId: 'app' }, 0)
    const err = await d
      .createInputTopic('in', S, S)
      .pipeInput('k', 'abc', 1)
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(err).toBeInstanceOf(SerializationError)
    expect((err as Error).message).toContain(
      "no key serde for sink 'KSTREAM-SINK-0000000004' (topic 'app-KSTREAM-AGGREGATE-STATE-STORE-0000000002-repartition')",
    )
    await d.close()
  })

  it('reduce combines values; null keys and null values are dropped and counted', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, I))
      .groupByKey()
      .reduce((agg, v) => Math.max(agg, v), Materialized.as('max'), Named.as('max-reducer'))
      .toStream()
      .to('out', Produced.with(S, I))
    const d = new TopologyTestDriver(b.build(), { applicationId: 'app' }, 0)
    const input = d.createInputTopic('in', S, I)
    await input.pipeInput('a', 3, 1)
    await input.pipeInput('a', 1, 2)
    await input.pipeInput('a', 7, 3)
    await input.pipeInput(null, 9, 4)
    await input.pipeInput('a', null, 5)
    expect(d.createOutputTopic('out', S, I).readValuesToList()).toEqual([3, 3, 7])
    expect(d.droppedRecords('null-key')).toBe(1)
    expect(d.droppedRecords('null-value')).toBe(1)
    await d.close()
  })

  it('aggregate folds values into a typed aggregate with its own serde', async () => {
    interface Stats {
      count: number
      sum: number
    }
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, I))
      .groupByKey()
      .aggregate<Stats>(
        () => ({ count: 0, sum: 0 }),
        (_k, v, agg) => ({ count: agg.count + 1, sum: agg.sum + v }),
        Materialized.as<string, Stats>('stats').withValueSerde(Serdes.Json<Stats>()),
      )
      .mapValues((s) => s.sum / s.count)
      .toStream()
      .to('avg', Produced.with(S, Serdes.Double()))
    const d = new TopologyTestDriver(b.build(), { applicationId: 'app' }, 0)
    const input = d.createInputTopic('in', S, I)
    await input.pipeKeyValueList([
      ['x', 2],
      ['x', 4],
      ['y', 10],
    ])
    expect(d.createOutputTopic('avg', S, Serdes.Double()).readKeyValuesToList()).toEqual([
      { key: 'x', value: 2 },
      { key: 'x', value: 3 },
      { key: 'y', value: 10 },
    ])
    expect(await d.getKeyValueStore<string, Stats>('stats').get('x')).toEqual({ count: 2, sum: 6 })
    await d.close()
  })

  it('an aggregation result can be joined into further table operations (filter on the aggregate)', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S))
      .groupByKey()
      .count()
      .filter((_k, n) => n >= 2)
      .toStream()
      .to('frequent', Produced.with(S, L))
    const d = new TopologyTestDriver(b.build(), { applicationId: 'app', defaultKeySerde: S }, 0)
    const input = d.createInputTopic('in', S, S)
    await input.pipeInput('a', '1', 1)
    await input.pipeInput('a', '2', 2)
    await input.pipeInput('b', '1', 3)
    // the filter's old values are not requested, so non-matching updates forward tombstones
    expect(d.createOutputTopic('frequent', S, L).readKeyValuesToList()).toEqual([
      { key: 'a', value: null },
      { key: 'a', value: 2 },
      { key: 'b', value: null },
    ])
    await d.close()
  })
})
