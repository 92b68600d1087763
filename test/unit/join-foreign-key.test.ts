import { describe, expect, it } from 'vitest'
import {
  Consumed,
  Materialized,
  Serdes,
  StreamsBuilder,
  TableJoined,
  TopologyError,
  type KTable,
  type MaterializedConfig,
} from '../../lib/index.js'
import { TopologyTestDriver } from '../../lib/testing/index.js'
import { murmur3Hash128 } from '../../topology/processors/fk-join/murmur3.js'

/**
 * Foreign-key table-table joins (KIP-213). The scenarios and expected outputs are the facts of
 * Kafka Streams' KTableKTableForeignKeyJoinIntegrationTest (run there with the
 * TopologyTestDriver, caching disabled), KTableKTableForeignKeyJoinScenarioTest and Murmur3Test.
 */

const S = Serdes.String()
const joiner = (l: string, r: string | null): string => `(${l},${String(r)})`
const extractor = (v: string): string => v.split('|')[1]!

interface Case {
  leftJoin: boolean
  materialized: boolean
  rejoin: boolean
}
const cases: Case[] = []
for (const leftJoin of [false, true])
  for (const materialized of [false, true]) for (const rejoin of [false, true]) cases.push({ leftJoin, materialized, rejoin })
const label = (c: Case): string =>
  `${c.leftJoin ? 'left' : 'inner'} join${c.materialized ? ', materialized' : ''}${c.rejoin ? ', rejoined' : ''}`

interface Harness {
  d: TopologyTestDriver
  left: (k: string, v: string | null, t: number) => Promise<void>
  right: (k: string, v: string | null, t: number) => Promise<void>
  /** Output records since the last call, as a map (last value per key), like readKeyValuesToMap. */
  output: () => Map<string, string | null>
  rejoinOutput: () => Map<string, string | null>
  store: () => Promise<Map<string, string>>
  close: () => Promise<void>
}

async function harness(c: Case, fk: (v: string) => string | null = extractor): Promise<Harness> {
  const b = new StreamsBuilder()
  const left = b.table('left_table', Consumed.with(S, S))
  const right = b.table('right_table', Consumed.with(S, S))
  const materialized: MaterializedConfig<string, string> = c.materialized
    ? Materialized.as<string, string>('store').withValueSerde(S).withCachingDisabled()
    : Materialized.with<string, string>(undefined, S).withCachingDisabled()
  const fkJoin: KTable<string, string> = c.leftJoin
    ? left.leftJoin(right, fk, joiner, materialized)
    : left.join(right, fk, (l: string, r: string) => joiner(l, r), materialized)
  fkJoin.toStream().to('output')
  if (c.rejoin) {
    const rejoiner = (a: string | null, l: string | null): string => `rejoin(${String(a)},${String(l)})`
    const rejoined = c.leftJoin ? fkJoin.leftJoin(left, rejoiner) : fkJoin.join(left, rejoiner)
    rejoined.toStream().to('rejoin-output')
  }
  const d = new TopologyTestDriver(b.build(), { applicationId: 'fk', defaultKeySerde: S, defaultValueSerde: S }, 0)
  await d.ready()
  const l = d.createInputTopic('left_table', S, S)
  const r = d.createInputTopic('right_table', S, S)
  const read = (topic: string) => () => {
    const m = new Map<string, string | null>()
    for (const kv of d.createOutputTopic(topic, S, S).readKeyValuesToList()) m.set(kv.key as string, kv.value)
    return m
  }
  return {
    d,
    left: (k, v, t) => l.pipeInput(k, v, t),
    right: (k, v, t) => r.pipeInput(k, v, t),
    output: read('output'),
    rejoinOutput: read('rejoin-output'),
    store: async () => {
      const m = new Map<string, string>()
      for await (const kv of d.getKeyValueStore<string, string>('store').all()) m.set(kv.key, kv.value)
      return m
    },
    close: () => d.close(),
  }
}

const map = (...entries: Array<[string, string | null]>): Map<string, string | null> => new Map(entries)

describe.each(cases)('foreign-key join: $leftJoin/$materialized/$rejoin', (c) => {
  const t0 = 1_000

  it(`${label(c)}: join from the left, then delete a left row`, async () => {
    const h = await harness(c)
    await h.right('rhs1', 'rhsValue1', t0)
    await h.right('rhs2', 'rhsValue2', t0 + 1)
    await h.right('rhs3', 'rhsValue3', t0 + 2) // never referenced
    expect(h.output()).toEqual(map())
    if (c.materialized) expect(await h.store()).toEqual(new Map())

    await h.left('lhs1', 'lhsValue1|rhs1', t0 + 3)
    await h.left('lhs2', 'lhsValue2|rhs2', t0 + 4)
    const expected = map(['lhs1', '(lhsValue1|rhs1,rhsValue1)'], ['lhs2', '(lhsValue2|rhs2,rhsValue2)'])
    expect(h.output()).toEqual(expected)
    if (c.rejoin)
      expect(h.rejoinOutput()).toEqual(
        map(['lhs1', 'rejoin((lhsValue1|rhs1,rhsValue1),lhsValue1|rhs1)'], ['lhs2', 'rejoin((lhsValue2|rhs2,rhsValue2),lhsValue2|rhs2)']),
      )
    if (c.materialized) expect(await h.store()).toEqual(expected)

    await h.left('lhs3', 'lhsValue3|rhs1', t0 + 5) // another reference to an existing foreign key
    expect(h.output()).toEqual(map(['lhs3', '(lhsValue3|rhs1,rhsValue1)']))
    if (c.rejoin) expect(h.rejoinOutput()).toEqual(map(['lhs3', 'rejoin((lhsValue3|rhs1,rhsValue1),lhsValue3|rhs1)']))

    await h.left('lhs1', null, t0 + 6)
    expect(h.output()).toEqual(map(['lhs1', null]))
    if (c.rejoin) expect(h.rejoinOutput()).toEqual(map(['lhs1', null]))
    if (c.materialized)
      expect(await h.store()).toEqual(
        new Map([
          ['lhs2', '(lhsValue2|rhs2,rhsValue2)'],
          ['lhs3', '(lhsValue3|rhs1,rhsValue1)'],
        ]),
      )
    await h.close()
  })

  it(`${label(c)}: join from the right, then delete a right row`, async () => {
    const h = await harness(c)
    await h.left('lhs1', 'lhsValue1|rhs1', t0)
    await h.left('lhs2', 'lhsValue2|rhs2', t0 + 1)
    await h.left('lhs3', 'lhsValue3|rhs1', t0 + 2)
    expect(h.output()).toEqual(
      c.leftJoin ? map(['lhs1', '(lhsValue1|rhs1,null)'], ['lhs2', '(lhsValue2|rhs2,null)'], ['lhs3', '(lhsValue3|rhs1,null)']) : map(),
    )

    await h.right('rhs1', 'rhsValue1', t0 + 3)
    expect(h.output()).toEqual(map(['lhs1', '(lhsValue1|rhs1,rhsValue1)'], ['lhs3', '(lhsValue3|rhs1,rhsValue1)']))
    await h.right('rhs2', 'rhsValue2', t0 + 4)
    expect(h.output()).toEqual(map(['lhs2', '(lhsValue2|rhs2,rhsValue2)']))
    await h.right('rhs3', 'rhsValue3', t0 + 5) // unreferenced
    expect(h.output()).toEqual(map())
    if (c.materialized)
      expect(await h.store()).toEqual(
        new Map([
          ['lhs1', '(lhsValue1|rhs1,rhsValue1)'],
          ['lhs2', '(lhsValue2|rhs2,rhsValue2)'],
          ['lhs3', '(lhsValue3|rhs1,rhsValue1)'],
        ]),
      )

    await h.right('rhs1', null, t0 + 6) // every subscriber of rhs1 is updated
    expect(h.output()).toEqual(
      map(['lhs1', c.leftJoin ? '(lhsValue1|rhs1,null)' : null], ['lhs3', c.leftJoin ? '(lhsValue3|rhs1,null)' : null]),
    )
    if (c.materialized)
      expect(await h.store()).toEqual(
        c.leftJoin
          ? new Map([
              ['lhs1', '(lhsValue1|rhs1,null)'],
              ['lhs2', '(lhsValue2|rhs2,rhsValue2)'],
              ['lhs3', '(lhsValue3|rhs1,null)'],
            ])
          : new Map([['lhs2', '(lhsValue2|rhs2,rhsValue2)']]),
      )
    await h.close()
  })

  it(`${label(c)}: deleting a non-joining row emits a tombstone; deleting it again emits nothing`, async () => {
    const h = await harness(c)
    await h.left('lhs1', 'lhsValue1|rhs1', t0)
    expect(h.output()).toEqual(c.leftJoin ? map(['lhs1', '(lhsValue1|rhs1,null)']) : map())
    await h.left('lhs1', null, t0 + 1)
    expect(h.output()).toEqual(map(['lhs1', null]))
    if (c.materialized) expect(await h.store()).toEqual(new Map())
    await h.left('lhs1', null, t0 + 2)
    expect(h.output()).toEqual(map())
    await h.close()
  })

  it(`${label(c)}: deleting a row that never existed emits nothing`, async () => {
    const h = await harness(c)
    await h.left('lhs1', null, t0)
    expect(h.output()).toEqual(map())
    await h.close()
  })

  it(`${label(c)}: moving between foreign keys that do not exist, then to one that does`, async () => {
    const h = await harness(c)
    await h.left('lhs1', 'lhsValue1|rhs1', t0)
    expect(h.output()).toEqual(c.leftJoin ? map(['lhs1', '(lhsValue1|rhs1,null)']) : map())
    await h.left('lhs1', 'lhsValue1|rhs2', t0 + 1) // inner join: an unnecessary (but unavoidable) tombstone
    expect(h.output()).toEqual(map(['lhs1', c.leftJoin ? '(lhsValue1|rhs2,null)' : null]))
    await h.left('lhs1', 'lhsValue1|rhs3', t0 + 2)
    expect(h.output()).toEqual(map(['lhs1', c.leftJoin ? '(lhsValue1|rhs3,null)' : null]))
    await h.right('rhs1', 'rhsValue1', t0 + 3) // rhs1 is not referenced any more
    expect(h.output()).toEqual(map())
    await h.left('lhs1', 'lhsValue1|rhs1', t0 + 4)
    expect(h.output()).toEqual(map(['lhs1', '(lhsValue1|rhs1,rhsValue1)']))
    await h.left('lhs1', 'lhsValue1|rhs2', t0 + 5)
    expect(h.output()).toEqual(map(['lhs1', c.leftJoin ? '(lhsValue1|rhs2,null)' : null]))
    if (c.materialized) expect(await h.store()).toEqual(c.leftJoin ? new Map([['lhs1', '(lhsValue1|rhs2,null)']]) : new Map())
    await h.close()
  })

  it(`${label(c)}: a changed foreign key unsubscribes from the old one`, async () => {
    const h = await harness(c)
    await h.right('rhs1', 'rhsValue1', t0)
    await h.right('rhs2', 'rhsValue2', t0 + 1)
    await h.left('lhs1', 'lhsValue1|rhs1', t0 + 2)
    expect(h.output()).toEqual(map(['lhs1', '(lhsValue1|rhs1,rhsValue1)']))
    const subscriptions = h.d.getKeyValueStore<Buffer, unknown>('KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-0000000010')
    const key = (fk: string, pk: string): Buffer => Buffer.concat([Buffer.from([0, 0, 0, fk.length]), Buffer.from(fk), Buffer.from(pk)])
    expect(await subscriptions.get(key('rhs1', 'lhs1'))).toBeDefined()
    await h.left('lhs1', 'lhsValue1|rhs2', t0 + 3)
    expect(h.output()).toEqual(map(['lhs1', '(lhsValue1|rhs2,rhsValue2)']))
    expect(await subscriptions.get(key('rhs1', 'lhs1'))).toBeUndefined()
    expect(await subscriptions.get(key('rhs2', 'lhs1'))).toBeDefined()
    await h.right('rhs1', 'rhsValue1Delta', t0 + 4) // the old foreign key changes: nothing
    expect(h.output()).toEqual(map())
    if (c.materialized) expect(await h.store()).toEqual(new Map([['lhs1', '(lhsValue1|rhs2,rhsValue2)']]))
    await h.close()
  })
})

describe('foreign-key left join: null foreign keys', () => {
  it('a null foreign key emits the left row joined with null', async () => {
    const h = await harness({ leftJoin: true, materialized: true, rejoin: false }, () => null)
    await h.left('lhs1', 'lhsValue1|rhs1', 0)
    expect(h.output()).toEqual(map(['lhs1', '(lhsValue1|rhs1,null)']))
    expect(await h.store()).toEqual(new Map([['lhs1', '(lhsValue1|rhs1,null)']]))
    await h.close()
  })

  it('a foreign key becoming null unsubscribes and emits the row joined with null', async () => {
    const fk = (v: string): string | null => (v.split('|')[1] === 'returnNull' ? null : v.split('|')[1]!)
    const h = await harness({ leftJoin: true, materialized: true, rejoin: false }, fk)
    const subscriptionStoreKey = Buffer.concat([Buffer.from([0, 0, 0, 4]), Buffer.from('rhs1'), Buffer.from('lhs1')])
    const subscriptions = h.d.getKeyValueStore<Buffer, unknown>('KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-0000000010')
    await h.left('lhs1', 'lhsValue1|rhs1', 0)
    expect(h.output()).toEqual(map(['lhs1', '(lhsValue1|rhs1,null)']))
    expect(await subscriptions.get(subscriptionStoreKey)).toBeDefined()
    await h.left('lhs1', 'lhsValue1|returnNull', 0)
    expect(h.output()).toEqual(map(['lhs1', '(lhsValue1|returnNull,null)']))
    expect(await subscriptions.get(subscriptionStoreKey)).toBeUndefined()
    await h.close()
  })

  it('inner join: a null foreign key is dropped and counted', async () => {
    const h = await harness({ leftJoin: false, materialized: false, rejoin: false }, () => null)
    await h.left('lhs1', 'lhsValue1|rhs1', 0)
    expect(h.output()).toEqual(map())
    await h.close()
  })
})

describe('foreign-key join: one result per change (KAFKA-18713, KAFKA-16394, KAFKA-16407)', () => {
  it('left join: a foreign-key change yields exactly one result, from the new key', async () => {
    const h = await harness({ leftJoin: true, materialized: false, rejoin: false })
    await h.right('rhs1', 'rhsValue1', 0)
    await h.right('rhs2', 'rhsValue2', 0)
    await h.left('lhs1', 'lhsValue1|rhs1', 1)
    await h.left('lhs1', 'lhsValue1|rhs2', 2)
    await h.left('lhs1', null, 3)
    expect(h.d.createOutputTopic('output', S, S).readKeyValuesToList()).toEqual([
      { key: 'lhs1', value: '(lhsValue1|rhs1,rhsValue1)' },
      { key: 'lhs1', value: '(lhsValue1|rhs2,rhsValue2)' },
      { key: 'lhs1', value: null },
    ])
    await h.close()
  })

  it('inner join: a foreign key becoming null retracts the result; one coming back from null joins again', async () => {
    const fk = (v: string): string | null => (v.split('|')[1] === 'none' ? null : v.split('|')[1]!)
    const h = await harness({ leftJoin: false, materialized: false, rejoin: false }, fk)
    await h.right('rhs1', 'rhsValue1', 0)
    await h.left('lhs1', 'lhsValue1|rhs1', 1)
    await h.left('lhs1', 'lhsValue1|none', 2)
    await h.left('lhs1', 'lhsValue1|rhs1', 3)
    await h.left('lhs1', 'lhsValue2|rhs1', 4) // same foreign key
    expect(h.d.createOutputTopic('output', S, S).readKeyValuesToList()).toEqual([
      { key: 'lhs1', value: '(lhsValue1|rhs1,rhsValue1)' },
      { key: 'lhs1', value: null },
      { key: 'lhs1', value: '(lhsValue1|rhs1,rhsValue1)' },
      { key: 'lhs1', value: '(lhsValue2|rhs1,rhsValue1)' },
    ])
    await h.close()
  })
})

describe('foreign-key join: topology', () => {
  it('names processors, topics and stores as Kafka Streams does; both sides are co-partitioned with their topics', () => {
    const b = new StreamsBuilder()
    const left = b.table('left_table', Consumed.with(S, S))
    const right = b.table('right_table', Consumed.with(S, S))
    left
      .join(right, extractor, (l: string, r: string) => joiner(l, r))
      .toStream()
      .to('output')
    const text = b.build().describe().toString()
    for (const line of [
      '    Processor: KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000007 (stores: [])\n      --> KTABLE-SINK-0000000008\n',
      '    Sink: KTABLE-SINK-0000000008 (topic: KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic)\n',
      '    Source: KTABLE-SOURCE-0000000009 (topics: [KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic])\n      --> KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000011\n',
      '    Processor: KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000011 (stores: [KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-0000000010])\n',
      '    Processor: KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000012 (stores: [right_table-STATE-STORE-0000000003])\n',
      '    Processor: KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000013 (stores: [KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-0000000010])\n',
      '    Sink: KTABLE-SINK-0000000015 (topic: KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000014-topic)\n',
      '    Source: KTABLE-SOURCE-0000000016 (topics: [KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000014-topic])\n      --> KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR-0000000017\n',
      '    Processor: KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR-0000000017 (stores: [left_table-STATE-STORE-0000000000])\n      --> KTABLE-FK-JOIN-OUTPUT-0000000018\n',
    ])
      expect(text).toContain(line)
    const def = b.build().resolve('app')
    expect(def.repartitionTopics.map((t) => t.name).sort()).toEqual([
      'app-KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic',
      'app-KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000014-topic',
    ])
    expect(def.copartitionGroups?.map((g) => [...g].sort())).toEqual(
      expect.arrayContaining([
        ['app-KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic', 'right_table'],
        ['app-KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000014-topic', 'left_table'],
      ]),
    )
    // the left table and the responses form one sub-topology, the right table and the subscriptions another
    expect(def.subtopologies.map((s) => [...s.sourceTopics].sort())).toEqual([
      ['app-KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000014-topic', 'left_table'],
      ['app-KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic', 'right_table'],
    ])
  })

  it('describes a foreign-key join of two tables from streams exactly as Kafka Streams (KStreamImplTest)', () => {
    const b = new StreamsBuilder()
    const left = b.stream('input1', Consumed.with(S, S)).toTable()
    const right = b.stream('input2', Consumed.with(S, S)).toTable()
    left
      .join(right, extractor, (l: string, r: string) => joiner(l, r))
      .toStream()
      .to('output')
    expect(b.build().describe().toString()).toBe(
      [
        'Topologies:',
        '   Sub-topology: 0',
        '    Source: KTABLE-SOURCE-0000000016 (topics: [KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000014-topic])',
        '      --> KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR-0000000017',
        '    Source: KSTREAM-SOURCE-0000000000 (topics: [input1])',
        '      --> KSTREAM-TOTABLE-0000000001',
        '    Processor: KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR-0000000017 (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000002])',
        '      --> KTABLE-FK-JOIN-OUTPUT-0000000018',
        '      <-- KTABLE-SOURCE-0000000016',
        '    Processor: KSTREAM-TOTABLE-0000000001 (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000002])',
        '      --> KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000007',
        '      <-- KSTREAM-SOURCE-0000000000',
        '    Processor: KTABLE-FK-JOIN-OUTPUT-0000000018 (stores: [])',
        '      --> KTABLE-TOSTREAM-0000000020',
        '      <-- KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR-0000000017',
        '    Processor: KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000007 (stores: [])',
        '      --> KTABLE-SINK-0000000008',
        '      <-- KSTREAM-TOTABLE-0000000001',
        '    Processor: KTABLE-TOSTREAM-0000000020 (stores: [])',
        '      --> KSTREAM-SINK-0000000021',
        '      <-- KTABLE-FK-JOIN-OUTPUT-0000000018',
        '    Sink: KSTREAM-SINK-0000000021 (topic: output)',
        '      <-- KTABLE-TOSTREAM-0000000020',
        '    Sink: KTABLE-SINK-0000000008 (topic: KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic)',
        '      <-- KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000007',
        '',
        '  Sub-topology: 1',
        '    Source: KSTREAM-SOURCE-0000000003 (topics: [input2])',
        '      --> KSTREAM-TOTABLE-0000000004',
        '    Source: KTABLE-SOURCE-0000000009 (topics: [KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic])',
        '      --> KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000011',
        '    Processor: KSTREAM-TOTABLE-0000000004 (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000005])',
        '      --> KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000013',
        '      <-- KSTREAM-SOURCE-0000000003',
        '    Processor: KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000011 (stores: [KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-0000000010])',
        '      --> KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000012',
        '      <-- KTABLE-SOURCE-0000000009',
        '    Processor: KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000012 (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000005])',
        '      --> KTABLE-SINK-0000000015',
        '      <-- KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000011',
        '    Processor: KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000013 (stores: [KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-0000000010])',
        '      --> KTABLE-SINK-0000000015',
        '      <-- KSTREAM-TOTABLE-0000000004',
        '    Sink: KTABLE-SINK-0000000015 (topic: KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000014-topic)',
        '      <-- KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000012, KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000013',
        '',
        '',
      ].join('\n'),
    )
  })

  it('TableJoined.as names everything <name>-...', () => {
    const b = new StreamsBuilder()
    const left = b.table('left_table', Consumed.with(S, S))
    const right = b.table('right_table', Consumed.with(S, S))
    left.leftJoin(right, extractor, joiner, TableJoined.as('fk')).toStream().to('output')
    const text = b.build().describe().toString()
    for (const name of [
      'Processor: fk-subscription-registration-processor',
      'Sink: fk-subscription-registration-sink (topic: fk-subscription-registration-topic)',
      'Source: fk-subscription-registration-source (topics: [fk-subscription-registration-topic])',
      'Processor: fk-subscription-receive (stores: [fk-subscription-store])',
      'Processor: fk-subscription-join-foreign',
      'Processor: fk-foreign-join-subscription (stores: [fk-subscription-store])',
      'Sink: fk-subscription-response-sink (topic: fk-subscription-response-topic)',
      'Source: fk-subscription-response-source (topics: [fk-subscription-response-topic])',
      'Processor: fk-subscription-response-resolver',
      'Processor: fk-result',
    ])
      expect(text).toContain(name)
  })

  it('rejects bad arguments with TopologyError naming the parameter', () => {
    const b = new StreamsBuilder()
    const left = b.table('l', Consumed.with(S, S))
    const right = b.table('r', Consumed.with(S, S))
    // @ts-expect-error not a function
    expect(() => left.join(right, extractor, 'x')).toThrow(TopologyError)
    expect(() => left.join(right, extractor, joiner, null as never)).toThrow(
      new TopologyError("join: parameter 'tableJoined' must be a TableJoined object"),
    )
    const other = new StreamsBuilder().table('r', Consumed.with(S, S))
    expect(() => left.leftJoin(other, extractor, joiner)).toThrow(
      new TopologyError("leftJoin: parameter 'other' comes from a different StreamsBuilder"),
    )
    expect(() => TableJoined.as('bad name')).toThrow(TopologyError)
  })
})

describe('foreign-key join: stale responses and partitioners', () => {
  it('a response computed for a left value that changed meanwhile is dropped (value hash), so only the current value joins', async () => {
    const b = new StreamsBuilder()
    // one input record updates the left row twice before any response comes back
    const left = b
      .stream('left_updates', Consumed.with(S, S))
      .flatMapValues((v) => v.split(','))
      .toTable(Materialized.with(S, S))
    const right = b.table('right_table', Consumed.with(S, S))
    const seen: string[] = []
    left
      .join(right, extractor, (l: string, r: string) => {
        seen.push(l)
        return joiner(l, r)
      })
      .toStream()
      .to('output')
    const d = new TopologyTestDriver(b.build(), { applicationId: 'fk', defaultKeySerde: S, defaultValueSerde: S }, 0)
    await d.createInputTopic('right_table', S, S).pipeInput('rhs1', 'rhsValue1', 0)
    await d.createInputTopic('left_updates', S, S).pipeInput('lhs1', 'v1|rhs1,v2|rhs1', 1)
    const out = d.createOutputTopic('output', S, S).readKeyValuesToList()
    expect(out).toEqual([{ key: 'lhs1', value: '(v2|rhs1,rhsValue1)' }])
    expect(seen).toEqual(['v2|rhs1']) // the response for v1 never reached the joiner
    await d.close()
  })

  it('TableJoined partitioners see the typed keys of both sides', async () => {
    const b = new StreamsBuilder()
    const left = b.table('left_table', Consumed.with(S, S))
    const right = b.table('right_table', Consumed.with(S, S))
    const calls: string[] = []
    left
      .join(
        right,
        extractor,
        (l: string, r: string) => joiner(l, r),
        TableJoined.with<string, string>(
          (_t, k, _v, n) => {
            calls.push(`left:${k}/${n}`)
            return 0
          },
          (_t, k, _v, n) => {
            calls.push(`right:${k}/${n}`)
            return 0
          },
        ),
      )
      .toStream()
      .to('output')
    const d = new TopologyTestDriver(b.build(), { applicationId: 'fk', defaultKeySerde: S, defaultValueSerde: S }, 0)
    await d.createInputTopic('right_table', S, S).pipeInput('rhs1', 'rhsValue1', 0)
    await d.createInputTopic('left_table', S, S).pipeInput('lhs1', 'lhsValue1|rhs1', 1)
    expect(calls).toEqual(['right:rhs1/1', 'left:lhs1/1'])
    expect(d.createOutputTopic('output', S, S).readKeyValuesToList()).toEqual([{ key: 'lhs1', value: '(lhsValue1|rhs1,rhsValue1)' }])
    await d.close()
  })

  it('the extractor also gets the left key (KIP-1104)', async () => {
    const b = new StreamsBuilder()
    const left = b.table('left_table', Consumed.with(S, S))
    const right = b.table('right_table', Consumed.with(S, S))
    left
      .join(
        right,
        (_v: string, k: string) => `rhs${k.slice(3)}`,
        (l: string, r: string) => joiner(l, r),
      )
      .toStream()
      .to('output')
    const d = new TopologyTestDriver(b.build(), { applicationId: 'fk', defaultKeySerde: S, defaultValueSerde: S }, 0)
    await d.createInputTopic('right_table', S, S).pipeInput('rhs7', 'seven', 0)
    await d.createInputTopic('left_table', S, S).pipeInput('lhs7', 'x', 1)
    expect(d.createOutputTopic('output', S, S).readKeyValuesToList()).toEqual([{ key: 'lhs7', value: '(x,seven)' }])
    await d.close()
  })

  it('the result timestamp is the larger of the two rows', async () => {
    const h = await harness({ leftJoin: false, materialized: false, rejoin: false })
    await h.right('rhs1', 'r', 50)
    await h.left('lhs1', 'l|rhs1', 10)
    await h.right('rhs1', 'r2', 30) // a foreign change takes its own timestamp
    const out = h.d.createOutputTopic('output', S, S).readRecordsToList()
    expect(out.map((r) => [r.value, r.timestamp])).toEqual([
      ['(l|rhs1,r)', 50],
      ['(l|rhs1,r2)', 30],
    ])
    await h.close()
  })
})

describe('murmur3 x64 128 (Kafka Streams Murmur3Test vectors, seed 123)', () => {
  it.each([
    ['21', 5857341059704281894n, -5288187638297930763n],
    ['foobar', -351361463397418609n, 8959716011862540668n],
    ['a-little-bit-long-string', 8836256500583638442n, -198172363548498523n],
    ['a-little-bit-longer-string', 1838346159335108511n, 8794688210320490705n],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -4024021876037397259n, -1482317706335141238n],
    ['abc', 1489494923063836066n, -5440978547625122829n],
  ])('%s', (input, h1, h2) => {
    const [a, b] = murmur3Hash128(Buffer.from(input), 123)
    expect([BigInt.asIntN(64, a), BigInt.asIntN(64, b)]).toEqual([h1, h2])
  })
})
