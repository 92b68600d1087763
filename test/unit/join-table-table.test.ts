import { afterEach, describe, expect, it } from 'vitest'
import { Serdes, StreamsBuilder, TopologyError, type KTable } from '../../topology/index.js'
import { TopologyTestDriver, type TestInputTopic } from '../../lib/testing/index.js'

const S = Serdes.String()
type Kind = 'inner' | 'left' | 'outer'

const drivers: TopologyTestDriver[] = []
afterEach(async () => {
  while (drivers.length) await drivers.pop()!.close()
})

function joinOf(
  kind: Kind,
  l: KTable<string, string>,
  r: KTable<string, string>,
  materialized?: { storeName: string; valueSerde: typeof S },
): KTable<string, string> {
  switch (kind) {
    case 'inner':
      return l.join(r, (a, b) => `${a}+${b}`, materialized)
    case 'left':
      return l.leftJoin(r, (a, b) => `${a}+${b}`, materialized)
    case 'outer':
      return l.outerJoin(r, (a, b) => `${a}+${b}`, materialized)
  }
}

function harness(kind: Kind) {
  const b = new StreamsBuilder()
  const l = b.table<string, string>('left', { keySerde: S, valueSerde: S })
  const r = b.table<string, string>('right', { keySerde: S, valueSerde: S })
  joinOf(kind, l, r, { storeName: 'joined', valueSerde: S }).toStream().to('out', { keySerde: S, valueSerde: S })
  const driver = new TopologyTestDriver(b.build())
  drivers.push(driver)
  const out = driver.createOutputTopic('out', S, S)
  return {
    driver,
    left: driver.createInputTopic('left', S, S) as TestInputTopic<string, string>,
    right: driver.createInputTopic('right', S, S) as TestInputTopic<string, string>,
    read: () => out.readRecordsToList().map((x) => `${x.key}:${x.value}@${x.timestamp}`),
    stored: async (key: string) => (await driver.getTimestampedKeyValueStore<string, string>('joined').get(key)) ?? null,
  }
}

describe('table-table inner join', () => {
  it('emits on updates of either side once both exist, with the later timestamp; a delete emits a tombstone', async () => {
    const h = harness('inner')
    await h.left.pipeInput('a', 'A1', 1)
    expect(h.read()).toEqual([])
    await h.right.pipeInput('a', 'X', 2)
    await h.right.pipeInput('a', 'X2', 3)
    await h.left.pipeInput('a', 'A2', 10)
    await h.right.pipeInput('a', 'X3', 4) // older than the left row: the result carries 10
    expect(h.read()).toEqual(['a:A1+X@2', 'a:A1+X2@3', 'a:A2+X2@10', 'a:A2+X3@10'])
    expect(await h.stored('a')).toEqual({ value: 'A2+X3', timestamp: 10 })

    await h.left.pipeInput('a', null, 11)
    expect(h.read()).toEqual(['a:null@11'])
    expect(await h.stored('a')).toBeNull()
    // the other side alone produces nothing
    await h.right.pipeInput('a', 'X4', 12)
    await h.right.pipeInput('b', 'Y', 12)
    expect(h.read()).toEqual([])
  })
})

describe('table-table left join', () => {
  it('every left row, joined with the right value or null; right-only keys produce nothing', async () => {
    const h = harness('left')
    await h.left.pipeInput('a', 'A', 5)
    await h.right.pipeInput('a', 'X', 3)
    await h.right.pipeInput('a', null, 6)
    await h.right.pipeInput('c', 'Z', 7)
    await h.left.pipeInput('a', null, 8)
    expect(h.read()).toEqual(['a:A+null@5', 'a:A+X@5', 'a:A+null@6', 'a:null@8'])
    expect(await h.stored('a')).toBeNull()
    expect(await h.stored('c')).toBeNull()
  })
})

describe('table-table outer join', () => {
  it('every key of either table; null for the missing side; a tombstone when both are gone', async () => {
    const h = harness('outer')
    await h.right.pipeInput('c', 'Y', 1)
    await h.left.pipeInput('c', 'C', 2)
    await h.right.pipeInput('c', null, 3)
    await h.left.pipeInput('c', null, 4)
    expect(h.read()).toEqual(['c:null+Y@1', 'c:C+Y@2', 'c:C+null@3', 'c:null@4'])
    // deleting a key neither side has emits nothing
    await h.left.pipeInput('d', null, 5)
    expect(h.read()).toEqual([])
  })
})

describe('table-table join old values', () => {
  it('a downstream re-grouping receives the old joined value (counts move between groups)', async () => {
    const b = new StreamsBuilder()
    const users = b.table<string, string>('users', { keySerde: S, valueSerde: S })
    const tiers = b.table<string, string>('tiers', { keySerde: S, valueSerde: S })
    users
      .join(tiers, (country, tier) => `${country}/${tier}`)
      .groupBy((_id, v) => ({ key: v, value: v }), { keySerde: S, valueSerde: S })
      .count()
      .toStream()
      .to('counts', { keySerde: S, valueSerde: Serdes.Long() })
    const d = new TopologyTestDriver(b.build())
    drivers.push(d)
    const u = d.createInputTopic('users', S, S)
    const t = d.createInputTopic('tiers', S, S)
    await u.pipeInput('u1', 'DE', 1)
    await t.pipeInput('u1', 'gold', 1)
    await u.pipeInput('u2', 'DE', 2)
    await t.pipeInput('u2', 'gold', 2)
    await u.pipeInput('u1', 'FR', 3) // u1 moves from DE/gold to FR/gold
    await t.pipeInput('u2', null, 4) // u2 leaves the join
    expect(Object.fromEntries(d.createOutputTopic('counts', S, Serdes.Long()).readKeyValuesToMap())).toEqual({ 'DE/gold': 0, 'FR/gold': 1 })
  })
})

describe('table-table join topology and lookups', () => {
  it('names the merge node first, then JOINTHIS/JOINOTHER, connected to the other side store', () => {
    const b = new StreamsBuilder()
    const l = b.table<string, string>('left')
    const r = b.table<string, string>('right')
    l.join(r, (a, c) => a + c)
      .toStream()
      .to('out')
    const text = b.build().describe().toString()
    expect(text).toContain('Processor: KTABLE-JOINTHIS-0000000007 (stores: [right-STATE-STORE-0000000003])')
    expect(text).toContain('Processor: KTABLE-JOINOTHER-0000000008 (stores: [left-STATE-STORE-0000000000])')
    expect(text).toContain('<-- KTABLE-JOINTHIS-0000000007, KTABLE-JOINOTHER-0000000008')
    expect(text).toContain('Processor: KTABLE-MERGE-0000000006 (stores: [])')
  })

  it('a stream joined with an unmaterialized join result looks up both tables (value getter)', async () => {
    const b = new StreamsBuilder()
    const l = b.table<string, string>('left', { keySerde: S, valueSerde: S })
    const r = b.table<string, string>('right', { keySerde: S, valueSerde: S })
    const joined = l.leftJoin(r, (a, c) => `${a}+${c}`)
    b.stream<string, string>('events', { keySerde: S, valueSerde: S })
      .join(joined, (e, j) => `${e}:${j}`)
      .to('out', { keySerde: S, valueSerde: S })
    const d = new TopologyTestDriver(b.build())
    drivers.push(d)
    await d.createInputTopic('left', S, S).pipeInput('k', 'L', 1)
    const ev = d.createInputTopic('events', S, S)
    await ev.pipeInput('k', 'e1', 2)
    await d.createInputTopic('right', S, S).pipeInput('k', 'R', 3)
    await ev.pipeInput('k', 'e2', 4)
    await ev.pipeInput('nope', 'e3', 5)
    expect(d.createOutputTopic('out', S, S).readKeyValuesToList()).toEqual([
      { key: 'k', value: 'e1:L+null' },
      { key: 'k', value: 'e2:L+R' },
    ])
  })

  it('rejects a table from another builder, naming the parameter', () => {
    const l = new StreamsBuilder().table<string, string>('left')
    const r = new StreamsBuilder().table<string, string>('right')
    expect(() => l.join(r, (a, c) => a + c)).toThrow(TopologyError)
    expect(() => l.join(r, (a, c) => a + c)).toThrow(/'other'/)
  })

  it('types: left join joiner gets a nullable right value, outer join both', () => {
    const b = new StreamsBuilder()
    const l = b.table<string, number>('left')
    const r = b.table<string, boolean>('right')
    const ok: KTable<string, string> = l.outerJoin(r, (n: number | null, f: boolean | null) => `${n}${f}`)
    // @ts-expect-error the right value may be null in a left join
    l.leftJoin(r, (n: number, f: boolean) => `${n}${f}`)
    // @ts-expect-error the right value is a boolean
    l.join(r, (n: number, f: string) => `${n}${f}`)
    expect(ok.name).toMatch(/^KTABLE-MERGE-/)
  })
})
