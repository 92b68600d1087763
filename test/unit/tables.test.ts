import { describe, expect, it } from 'vitest'
import { Consumed, Grouped, Materialized, Produced, Serdes, StreamsBuilder } from '../../lib/index.js'
import { TopologyTestDriver } from '../../lib/testing/index.js'

const S = Serdes.String()
const I = Serdes.Integer()
const L = Serdes.Long()

function driverFor(builder: StreamsBuilder): TopologyTestDriver {
  return new TopologyTestDriver(builder.build(), { applicationId: 'app', defaultKeySerde: S, defaultValueSerde: S }, 0)
}

describe('KTable', () => {
  it('table() upserts and deletes; toStream shows tombstones as null', async () => {
    const b = new StreamsBuilder()
    b.table('users', Consumed.with(S, S), Materialized.as('users-store')).toStream().to('out', Produced.with(S, S))
    const d = driverFor(b)
    const input = d.createInputTopic('users', S, S)
    await input.pipeInput('alice', 'v1', 10)
    await input.pipeInput('bob', 'v1', 11)
    await input.pipeInput('alice', 'v2', 12)
    await input.pipeInput('bob', null, 13)
    expect(
      d
        .createOutputTopic('out', S, S)
        .readRecordsToList()
        .map((r) => [r.key, r.value, r.timestamp]),
    ).toEqual([
      ['alice', 'v1', 10],
      ['bob', 'v1', 11],
      ['alice', 'v2', 12],
      ['bob', null, 13],
    ])
    const store = d.getKeyValueStore<string, string>('users-store')
    expect(await store.get('alice')).toBe('v2')
    expect(await store.get('bob')).toBeUndefined()
    const ts = d.getTimestampedKeyValueStore<string, string>('users-store')
    expect(await ts.get('alice')).toEqual({ value: 'v2', timestamp: 12 })
    await d.close()
  })

  it('records with a null key are dropped and counted', async () => {
    const b = new StreamsBuilder()
    b.table('t', Consumed.with(S, S)).toStream().to('out', Produced.with(S, S))
    const d = driverFor(b)
    await d.createInputTopic('t', S, S).pipeInput(null, 'x', 1)
    expect(d.createOutputTopic('out', S, S).isEmpty()).toBe(true)
    expect(d.droppedRecords('null-key')).toBe(1)
    expect(d.metrics().droppedRecords).toBe(1)
    await d.close()
  })

  it('filter forwards a tombstone for rows that do not (or no longer) match, as Kafka Streams does', async () => {
    const b = new StreamsBuilder()
    b.table('t', Consumed.with(S, I))
      .filter((_k, v) => v > 5)
      .toStream()
      .to('out', Produced.with(S, I))
    const d = driverFor(b)
    const input = d.createInputTopic('t', S, I)
    await input.pipeInput('a', 10, 1) // passes
    await input.pipeInput('a', 3, 2) // no longer passes: tombstone
    await input.pipeInput('b', 1, 3) // never passed: tombstone (no old values sent downstream of a non-materialized filter)
    await input.pipeInput('a', null, 4) // delete
    expect(d.createOutputTopic('out', S, I).readKeyValuesToList()).toEqual([
      { key: 'a', value: 10 },
      { key: 'a', value: null },
      { key: 'b', value: null },
      { key: 'a', value: null },
    ])
    await d.close()
  })

  it('filterNot and a materialized filter (queryable store keeps only matching rows)', async () => {
    const b = new StreamsBuilder()
    b.table('t', Consumed.with(S, I))
      .filterNot((_k, v) => v % 2 === 0, Materialized.as('odd-store'))
      .toStream()
      .to('out', Produced.with(S, I))
    const d = driverFor(b)
    const input = d.createInputTopic('t', S, I)
    await input.pipeInput('a', 1, 1)
    await input.pipeInput('b', 2, 2)
    await input.pipeInput('a', 4, 3)
    // the filter's store caches (the default): deleting 'b', which was never in the store, is
    // not forwarded (Kafka Streams' CachingKeyValueStore); see record-caching.test.ts for cache-off
    expect(d.createOutputTopic('out', S, I).readKeyValuesToList()).toEqual([
      { key: 'a', value: 1 },
      { key: 'a', value: null },
    ])
    const store = d.getKeyValueStore<string, number>('odd-store')
    expect(await store.get('a')).toBeUndefined()
    expect(await store.get('b')).toBeUndefined()
    await input.pipeInput('c', 7, 4)
    expect(await store.get('c')).toBe(7)
    await d.close()
  })

  it('mapValues maps updates and keeps tombstones', async () => {
    const b = new StreamsBuilder()
    b.table('t', Consumed.with(S, I))
      .mapValues((v, k) => `${k}:${v * 2}`)
      .toStream()
      .to('out', Produced.with(S, S))
    const d = driverFor(b)
    const input = d.createInputTopic('t', S, I)
    await input.pipeInput('a', 1, 1)
    await input.pipeInput('a', null, 2)
    expect(d.createOutputTopic('out', S, S).readKeyValuesToList()).toEqual([
      { key: 'a', value: 'a:2' },
      { key: 'a', value: null },
    ])
    await d.close()
  })

  it('KStream.toTable upserts; a re-keyed stream is repartitioned first', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S))
      .selectKey((_k, v) => v.split(':')[0]!)
      .toTable(Materialized.as<string, string>('latest').withKeySerde(S).withValueSerde(S))
      .toStream()
      .to('out', Produced.with(S, S))
    const d = driverFor(b)
    const input = d.createInputTopic('in', S, S)
    await input.pipeInput('x', 'a:1', 1)
    await input.pipeInput('y', 'a:2', 2)
    await input.pipeInput('z', 'b:1', 3)
    expect(d.createOutputTopic('out', S, S).readKeyValuesToMap()).toEqual(
      new Map([
        ['a', 'a:2'],
        ['b', 'b:1'],
      ]),
    )
    expect([...d.producedTopicNames()].filter((t) => t.endsWith('-repartition'))).toEqual(['app-KSTREAM-TOTABLE-0000000002-repartition'])
    expect(await d.getKeyValueStore<string, string>('latest').get('a')).toBe('a:2')
    await d.close()
  })

  it('groupBy + count moves a row between groups (subtractor on the old group, adder on the new)', async () => {
    const b = new StreamsBuilder()
    // user -> region; count users per region
    b.table('user-regions', Consumed.with(S, S))
      .groupBy((user, region) => ({ key: region, value: user }), Grouped.with(S, S))
      .count(Materialized.as('users-per-region'))
      .toStream()
      .to('counts', Produced.with(S, L))
    const d = driverFor(b)
    const input = d.createInputTopic('user-regions', S, S)
    const out = d.createOutputTopic('counts', S, L)
    await input.pipeInput('alice', 'eu', 1)
    await input.pipeInput('bob', 'eu', 2)
    await input.pipeInput('carol', 'us', 3)
    expect(out.readKeyValuesToList()).toEqual([
      { key: 'eu', value: 1 },
      { key: 'eu', value: 2 },
      { key: 'us', value: 1 },
    ])
    await input.pipeInput('alice', 'us', 4) // moves alice: eu 2 -> 1, us 1 -> 2
    expect(out.readKeyValuesToList()).toEqual([
      { key: 'eu', value: 1 },
      { key: 'us', value: 2 },
    ])
    await input.pipeInput('bob', null, 5) // bob deleted: eu 1 -> 0
    expect(out.readKeyValuesToList()).toEqual([{ key: 'eu', value: 0 }])
    const store = d.getKeyValueStore<string, number>('users-per-region')
    expect(await store.get('us')).toBe(2)
    expect(await store.get('eu')).toBe(0)
    expect([...d.producedTopicNames()].filter((t) => t.endsWith('-repartition'))).toEqual(['app-users-per-region-repartition'])
    await d.close()
  })

  it('KGroupedTable aggregate and reduce with adder and subtractor', async () => {
    const b = new StreamsBuilder()
    const items = b.table('items', Consumed.with(S, I)) // item -> price, category = first letter
    const byCategory = items.groupBy((item, price) => [item[0]!, price] as const, Grouped.with(S, I))
    byCategory
      .aggregate(
        () => ({ total: 0, n: 0 }),
        (_k, price, agg) => ({ total: agg.total + price, n: agg.n + 1 }),
        (_k, price, agg) => ({ total: agg.total - price, n: agg.n - 1 }),
        Materialized.as<string, { total: number; n: number }>('agg').withValueSerde(Serdes.Json()),
      )
      .toStream()
      .mapValues((v) => (v === null ? 'null' : `${v.total}/${v.n}`))
      .to('agg-out', Produced.with(S, S))
    byCategory
      .reduce(
        (a, v) => a + v,
        (a, v) => a - v,
        Materialized.as('sum'),
      )
      .toStream()
      .to('sum-out', Produced.with(S, I))
    const d = driverFor(b)
    const input = d.createInputTopic('items', S, I)
    await input.pipeInput('apple', 3, 1)
    await input.pipeInput('avocado', 5, 2)
    await input.pipeInput('apple', 4, 3) // same group: single Change(4, 3) -> 9 total
    await input.pipeInput('banana', 2, 4)
    expect(d.createOutputTopic('agg-out', S, S).readKeyValuesToList()).toEqual([
      { key: 'a', value: '3/1' },
      { key: 'a', value: '8/2' },
      { key: 'a', value: '9/2' },
      { key: 'b', value: '2/1' },
    ])
    expect(d.createOutputTopic('sum-out', S, I).readKeyValuesToList()).toEqual([
      { key: 'a', value: 3 },
      { key: 'a', value: 8 },
      { key: 'a', value: 9 },
      { key: 'b', value: 2 },
    ])
    await d.close()
  })

  it('a global table is readable by every task through the driver', async () => {
    const b = new StreamsBuilder()
    b.globalTable('countries', Consumed.with(S, S), Materialized.as('countries-store'))
    const d = driverFor(b)
    await d.createInputTopic('countries', S, S).pipeInput('fr', 'France', 1)
    expect(await d.getKeyValueStore<string, string>('countries-store').get('fr')).toBe('France')
    await d.close()
  })
})
