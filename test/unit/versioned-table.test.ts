import { describe, expect, it } from 'vitest'
import {
  Consumed,
  Joined,
  Materialized,
  Serdes,
  Stores,
  StreamsBuilder,
  TopologyError,
  type KTable,
  type StreamRecord,
} from '../../lib/index.js'
import { TopologyTestDriver } from '../../lib/testing/index.js'

/**
 * Versioned KTables (KIP-889/KIP-914) and stream-table joins with a grace period (KIP-923). Facts
 * from Kafka Streams' KStreamKTableJoinTest (grace cases) and
 * KTableKTableForeignKeyJoinIntegrationTest#shouldIgnoreOutOfOrderRecordsIffVersioned.
 */

const S = Serdes.String()
const I = Serdes.Integer()
const versioned = (name: string, historyRetentionMs = 5 * 60_000) =>
  Materialized.as<any, any>(Stores.persistentVersionedKeyValueStore(name, historyRetentionMs))

describe('versioned KTable', () => {
  it('an out-of-order update goes into the history, not the latest value; toStream still shows it (isLatest=false), as Kafka Streams does', async () => {
    const b = new StreamsBuilder()
    b.table('prices', Consumed.with(S, S), versioned('prices')).toStream().to('out')
    const d = new TopologyTestDriver(b.build(), { applicationId: 'v' }, 0)
    const input = d.createInputTopic('prices', S, S)
    await input.pipeInput('k', 'v20', 20)
    await input.pipeInput('k', 'v10', 10) // out of order
    await input.pipeInput('k', 'v30', 30)
    const store = d.getVersionedKeyValueStore<string, string>('prices')
    expect(await store.get('k')).toEqual({ value: 'v30', timestamp: 30 })
    expect(await store.get('k', 15)).toEqual({ value: 'v10', timestamp: 10, validTo: 20 })
    expect(await store.get('k', 25)).toEqual({ value: 'v20', timestamp: 20, validTo: 30 })
    expect(await store.get('k', 5)).toBeNull()
    expect(() => d.getKeyValueStore('prices')).toThrow(/versioned; use getVersionedKeyValueStore/)
    expect(
      d
        .createOutputTopic('out', S, S)
        .readRecordsToList()
        .map((r) => [r.value, r.timestamp]),
    ).toEqual([
      ['v20', 20],
      ['v10', 10],
      ['v30', 30],
    ])
    await d.close()
  })

  it('an update older than the history retention is neither stored nor forwarded', async () => {
    const b = new StreamsBuilder()
    b.table('prices', Consumed.with(S, S), versioned('prices', 100)).toStream().to('out')
    const d = new TopologyTestDriver(b.build(), { applicationId: 'v' }, 0)
    const input = d.createInputTopic('prices', S, S)
    await input.pipeInput('a', 'new', 1000)
    await input.pipeInput('b', 'too-old', 899)
    await input.pipeInput('b', 'just-in', 900)
    expect(d.createOutputTopic('out', S, S).readKeyValuesToList()).toEqual([
      { key: 'a', value: 'new' },
      { key: 'b', value: 'just-in' },
    ])
    await d.close()
  })

  it('table-table join: out-of-order updates of a versioned side change no result', async () => {
    const b = new StreamsBuilder()
    const left = b.table('left', Consumed.with(S, S), versioned('left'))
    const right = b.table('right', Consumed.with(S, S), versioned('right'))
    left
      .join(right, (l: string, r: string) => `${l}+${r}`)
      .toStream()
      .to('out')
    const d = new TopologyTestDriver(b.build(), { applicationId: 'v', defaultKeySerde: S, defaultValueSerde: S }, 0)
    const l = d.createInputTopic('left', S, S)
    const r = d.createInputTopic('right', S, S)
    await r.pipeInput('k', 'r1', 4)
    await l.pipeInput('k', 'l1', 5)
    await l.pipeInput('k', 'l0', 3) // out of order: ignored
    await r.pipeInput('k', 'r0', 1) // out of order: ignored
    await l.pipeInput('k', 'l2', 8)
    expect(d.createOutputTopic('out', S, S).readValuesToList()).toEqual(['l1+r1', 'l2+r1'])
    await d.close()
  })

  it('KTable.groupBy ignores out-of-order updates of a versioned table', async () => {
    const b = new StreamsBuilder()
    b.table('t', Consumed.with(S, S), versioned('t'))
      .groupBy((_k, v) => [v, v])
      .count()
      .toStream()
      .to('out')
    const d = new TopologyTestDriver(b.build(), { applicationId: 'v', defaultKeySerde: S, defaultValueSerde: S }, 0)
    const t = d.createInputTopic('t', S, S)
    await t.pipeInput('k', 'x', 10)
    await t.pipeInput('k', 'y', 5) // out of order: x stays the latest, counts unchanged
    await t.pipeInput('k', 'z', 20)
    expect(d.createOutputTopic('out', S, Serdes.Long()).readKeyValuesToList()).toEqual([
      { key: 'x', value: 1 },
      { key: 'x', value: 0 },
      { key: 'z', value: 1 },
    ])
    await d.close()
  })

  it.each([false, true])(
    'foreign-key join (left versioned: %s) ignores out-of-order left and right updates iff versioned',
    async (isVersioned) => {
      const b = new StreamsBuilder()
      const left = isVersioned ? b.table('left', Consumed.with(S, S), versioned('left')) : b.table('left', Consumed.with(S, S))
      const right = isVersioned ? b.table('right', Consumed.with(S, S), versioned('right')) : b.table('right', Consumed.with(S, S))
      left
        .join(
          right,
          (v: string) => v.split('|')[1],
          (l: string, r: string) => `(${l},${r})`,
        )
        .toStream()
        .to('out')
      const d = new TopologyTestDriver(b.build(), { applicationId: 'v', defaultKeySerde: S, defaultValueSerde: S }, 0)
      const l = d.createInputTopic('left', S, S)
      const r = d.createInputTopic('right', S, S)
      const out = d.createOutputTopic('out', S, S)
      const read = () => new Map(out.readKeyValuesToList().map((kv) => [kv.key, kv.value]))
      const t0 = 1000
      await r.pipeInput('rhs1', 'rhsValue1', t0 + 4)
      await l.pipeInput('lhs1', 'lhsValue1|rhs1', t0 + 3)
      await l.pipeInput('lhs2', 'lhsValue2|rhs1', t0 + 5)
      expect(read()).toEqual(
        new Map([
          ['lhs1', '(lhsValue1|rhs1,rhsValue1)'],
          ['lhs2', '(lhsValue2|rhs1,rhsValue1)'],
        ]),
      )
      await l.pipeInput('lhs2', null, t0 + 6)
      expect(read()).toEqual(new Map([['lhs2', null]]))
      await l.pipeInput('lhs1', 'lhsValue1_ooo|rhs1', t0 + 2)
      await l.pipeInput('lhs2', 'lhsValue2_ooo|rhs1', t0 + 2)
      expect(read()).toEqual(
        isVersioned
          ? new Map()
          : new Map([
              ['lhs1', '(lhsValue1_ooo|rhs1,rhsValue1)'],
              ['lhs2', '(lhsValue2_ooo|rhs1,rhsValue1)'],
            ]),
      )
      await l.pipeInput('lhs1', null, t0 + 2)
      expect(read()).toEqual(isVersioned ? new Map() : new Map([['lhs1', null]]))
      await l.pipeInput('lhs1', 'lhsValue1_new|rhs1', t0 + 8)
      await l.pipeInput('lhs2', 'lhsValue2_new|rhs1', t0 + 8)
      expect(read()).toEqual(
        new Map([
          ['lhs1', '(lhsValue1_new|rhs1,rhsValue1)'],
          ['lhs2', '(lhsValue2_new|rhs1,rhsValue1)'],
        ]),
      )
      await r.pipeInput('rhs1', 'rhsValue1_ooo', t0 + 1)
      expect(read()).toEqual(
        isVersioned
          ? new Map()
          : new Map([
              ['lhs1', '(lhsValue1_new|rhs1,rhsValue1_ooo)'],
              ['lhs2', '(lhsValue2_new|rhs1,rhsValue1_ooo)'],
            ]),
      )
      await d.close()
    },
  )

  it('versioned stores materialize tables only: an aggregation with a versioned Materialized is a TopologyError', () => {
    const b = new StreamsBuilder()
    expect(() => b.stream('s', Consumed.with(S, S)).groupByKey().count(versioned('counts'))).toThrow(
      new TopologyError(
        "store 'counts' is versioned: versioned stores materialize tables (StreamsBuilder.table, KStream.toTable, KTable.filter/filterNot/mapValues and table joins), not aggregations (KIP-914)",
      ),
    )
  })

  it('filter, mapValues, table-table and foreign-key join results materialized as versioned tables keep history', async () => {
    const b = new StreamsBuilder()
    const t = b.table('t', Consumed.with(S, S))
    const r = b.table('r', Consumed.with(S, S))
    t.filter((_k, v) => !v.startsWith('x'), versioned('filtered'))
    t.mapValues((v) => v.toUpperCase(), versioned('upper'))
    t.join(r, (a: string, c: string) => `${a}+${c}`, versioned('joined'))
    t.join(
      r,
      (v: string) => v.split('|')[1],
      (a: string, c: string) => `${a}/${c}`,
      versioned('fk'),
    )
    const d = new TopologyTestDriver(b.build(), { applicationId: 'v', defaultKeySerde: S, defaultValueSerde: S }, 0)
    const ti = d.createInputTopic('t', S, S)
    const ri = d.createInputTopic('r', S, S)
    await ri.pipeInput('k', 'r1', 0)
    await ti.pipeInput('k', 'a|k', 10)
    await ti.pipeInput('k', 'x|k', 20)
    await ti.pipeInput('k', 'b|k', 30)
    const at = async (store: string, asOf: number) =>
      (await d.getVersionedKeyValueStore<string, string>(store).get('k', asOf))?.value ?? null
    expect([await at('filtered', 15), await at('filtered', 25), await at('filtered', 35)]).toEqual(['a|k', null, 'b|k'])
    expect([await at('upper', 15), await at('upper', 25)]).toEqual(['A|K', 'X|K'])
    expect([await at('joined', 15), await at('joined', 35)]).toEqual(['a|k+r1', 'b|k+r1'])
    expect([await at('fk', 15), await at('fk', 25), await at('fk', 35)]).toEqual(['a|k/r1', 'x|k/r1', 'b|k/r1'])
    await d.close()
  })

  it('KStream.toTable with a versioned store', async () => {
    const b = new StreamsBuilder()
    b.stream('s', Consumed.with(S, S)).toTable(versioned('t'))
    const d = new TopologyTestDriver(b.build(), { applicationId: 'v', defaultKeySerde: S, defaultValueSerde: S }, 0)
    const s = d.createInputTopic('s', S, S)
    await s.pipeInput('k', 'b', 20)
    await s.pipeInput('k', 'a', 10)
    expect(await d.getVersionedKeyValueStore<string, string>('t').get('k')).toEqual({ value: 'b', timestamp: 20 })
    expect(await d.getVersionedKeyValueStore<string, string>('t').get('k', 15)).toEqual({ value: 'a', timestamp: 10, validTo: 20 })
    await d.close()
  })
})

describe('stream-table join against a versioned table', () => {
  it('looks the table up as of the stream record timestamp', async () => {
    for (const isVersioned of [true, false]) {
      const b = new StreamsBuilder()
      const table = isVersioned ? b.table('t', Consumed.with(S, S), versioned('t')) : b.table('t', Consumed.with(S, S))
      b.stream('s', Consumed.with(S, S))
        .join(table, (s: string, t: string) => `${s}+${t}`)
        .to('out')
      const d = new TopologyTestDriver(b.build(), { applicationId: 'v', defaultKeySerde: S, defaultValueSerde: S }, 0)
      const t = d.createInputTopic('t', S, S)
      await t.pipeInput('k', 'A', 10)
      await t.pipeInput('k', 'B', 20)
      const s = d.createInputTopic('s', S, S)
      await s.pipeInput('k', 'x', 15)
      await s.pipeInput('k', 'y', 25)
      await s.pipeInput('k', 'z', 5)
      expect(d.createOutputTopic('out', S, S).readValuesToList()).toEqual(isVersioned ? ['x+A', 'y+B'] : ['x+B', 'y+B', 'z+B'])
      await d.close()
    }
  })
})

describe('Joined.withGracePeriod (KStreamKTableJoinTest facts)', () => {
  async function graceJoin(graceMs: number) {
    const b = new StreamsBuilder()
    const table: KTable<number, string> = b.table('tableTopic2', Consumed.with(I, S), versioned('V-grace'))
    const seen: Array<[number, string, number]> = []
    b.stream('streamTopic', Consumed.with(I, S))
      .join(table, (v: string, t: string) => `${v}+${t}`, Joined.with(I, S, S).withName('Grace').withGracePeriod(graceMs))
      .process(() => ({
        process(r: StreamRecord<number, string>) {
          seen.push([r.key, r.value, r.timestamp])
        },
      }))
    const d = new TopologyTestDriver(b.build(), { applicationId: 'v' }, 0)
    const stream = d.createInputTopic('streamTopic', I, S)
    const tableIn = d.createInputTopic('tableTopic2', I, S)
    const pushToStream = async (n: number, prefix: string) => {
      for (let i = 0; i < n; i++) await stream.pipeInput(i, `${prefix}${i}`, i)
    }
    const pushToTable = async (n: number, prefix: string) => {
      for (let i = 0; i < n; i++) await tableIn.pipeInput(i, `${prefix}${i}`, 0)
    }
    const take = () => seen.splice(0)
    return { d, stream, pushToStream, pushToTable, take }
  }

  it('delays the join by the grace period and joins buffered records in timestamp order', async () => {
    const { d, stream, pushToStream, pushToTable, take } = await graceJoin(2)
    await pushToTable(4, 'Y')
    expect(take()).toEqual([])
    await pushToStream(4, 'X')
    expect(take()).toEqual([
      [0, 'X0+Y0', 0],
      [1, 'X1+Y1', 1],
    ])
    await pushToTable(4, 'YY')
    expect(take()).toEqual([])
    await pushToStream(4, 'X')
    expect(take()).toEqual([
      [0, 'X0+YY0', 0],
      [1, 'X1+YY1', 1],
    ])
    await stream.pipeInput(5, 'test', 7)
    expect(take()).toEqual([
      [2, 'X2+YY2', 2],
      [2, 'X2+YY2', 2],
      [3, 'X3+YY3', 3],
      [3, 'X3+YY3', 3],
    ])
    await pushToTable(4, 'YYY')
    expect(take()).toEqual([])
    expect(await d.getKeyValueStore<Buffer, Buffer>('Grace-Buffer').approximateNumEntries()).toBe(2) // 'test'@7 and the buffer's stream-time
    await d.close()
  })

  it('a record older than stream-time minus the grace is joined at once', async () => {
    const { d, pushToStream, pushToTable, take } = await graceJoin(2)
    await pushToTable(4, 'Y')
    await pushToStream(4, 'X')
    expect(take()).toEqual([
      [0, 'X0+Y0', 0],
      [1, 'X1+Y1', 1],
    ])
    await pushToStream(1, 'X')
    expect(take()).toEqual([[0, 'X0+Y0', 0]])
    await d.close()
  })

  it('a table update arriving out of order within the grace is seen by the delayed join', async () => {
    const { d, stream, take } = await graceJoin(10)
    const tableIn = d.createInputTopic('tableTopic2', I, S)
    await tableIn.pipeInput(1, 'late-v1', 100)
    await stream.pipeInput(1, 'a', 105) // buffered
    await tableIn.pipeInput(1, 'v0', 102) // out of order, before the stream record's time
    await stream.pipeInput(2, 'b', 120) // stream-time 120: 'a' is due
    expect(take()).toEqual([[1, 'a+v0', 105]])
    await d.close()
  })

  it('needs a versioned table with a history retention of at least the grace', () => {
    const b = new StreamsBuilder()
    const s = b.stream('topic', Consumed.with(S, S))
    const plain = b.table('topic2', Consumed.with(S, S))
    expect(() => s.join(plain, (a: string, c: string) => a + c, Joined.with(S, S, S).withName('first-join').withGracePeriod(6))).toThrow(
      new TopologyError('join: KTable must be versioned to use a grace period in a stream table join'),
    )
    const b2 = new StreamsBuilder()
    const s2 = b2.stream('topic', Consumed.with(S, S))
    const source = b2.table('topic2', Consumed.with(S, S), versioned('tableB'))
    // the filter inherits the versioned materialization
    expect(() =>
      s2.join(
        source.filter(() => true),
        (a: string, c: string) => a + c,
        Joined.with(S, S, S).withGracePeriod(6),
      ),
    ).not.toThrow()
    expect(() => s2.join(source, (a: string, c: string) => a + c, Joined.with(S, S, S).withGracePeriod(6 * 60_000))).toThrow(
      new TopologyError('join: history retention must be at least grace period (history retention 300000 ms, grace 360000 ms)'),
    )
    expect(() => Joined.with(S, S, S).withGracePeriod(-1)).toThrow(TopologyError)
  })
})
