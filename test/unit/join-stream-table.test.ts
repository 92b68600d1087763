import { afterEach, describe, expect, it } from 'vitest'
import { Serdes, StreamsBuilder, TopologyError, type KStream } from '../../topology/index.js'
import { Joined } from '../../topology/index.js'
import { TopologyTestDriver, type TestInputTopic, type TestOutputTopic } from '../../lib/testing/index.js'

const S = Serdes.String()

const drivers: TopologyTestDriver[] = []
afterEach(async () => {
  while (drivers.length) await drivers.pop()!.close()
})

interface Harness {
  driver: TopologyTestDriver
  stream: TestInputTopic<string, string>
  table: TestInputTopic<string, string>
  out: TestOutputTopic<string, string>
  read(): string[]
}

function harness(leftJoin: boolean): Harness {
  const b = new StreamsBuilder()
  const s = b.stream<string, string>('orders', { keySerde: S, valueSerde: S })
  const t = b.table<string, string>('customers', { keySerde: S, valueSerde: S })
  const joined: KStream<string, string> = leftJoin
    ? s.leftJoin(t, (o: string, c: string | null) => `${o}/${c}`, Joined.with(S, S, S))
    : s.join(t, (o: string, c: string) => `${o}/${c}`, Joined.with(S, S, S))
  joined.to('out', { keySerde: S, valueSerde: S })
  const driver = new TopologyTestDriver(b.build())
  drivers.push(driver)
  const out = driver.createOutputTopic('out', S, S)
  return {
    driver,
    stream: driver.createInputTopic('orders', S, S),
    table: driver.createInputTopic('customers', S, S),
    out,
    read: () => out.readRecordsToList().map((x) => `${x.key}:${x.value}@${x.timestamp}`),
  }
}

describe('stream-table inner join', () => {
  it('joins each stream record with the current table value; table updates emit nothing', async () => {
    const h = harness(false)
    await h.stream.pipeInput('c1', 'o1', 5) // no table row yet: no output
    await h.table.pipeInput('c1', 'Ann', 10)
    await h.table.pipeInput('c2', 'Bob', 11)
    expect(h.read()).toEqual([])
    await h.stream.pipeInput('c1', 'o2', 3) // keeps the stream record's timestamp, even older than the row
    await h.table.pipeInput('c1', 'Ann2', 20)
    await h.stream.pipeInput('c1', 'o3', 30)
    await h.stream.pipeInput('c2', 'o4', 31)
    expect(h.read()).toEqual(['c1:o2/Ann@3', 'c1:o3/Ann2@30', 'c2:o4/Bob@31'])
  })

  it('a table tombstone deletes the row: later stream records find nothing', async () => {
    const h = harness(false)
    await h.table.pipeInput('c1', 'Ann', 1)
    await h.table.pipeInput('c1', null, 2)
    await h.stream.pipeInput('c1', 'o1', 3)
    expect(h.read()).toEqual([])
    expect(await h.driver.getTimestampedKeyValueStore<string, string>('customers-STATE-STORE-0000000001').get('c1')).toBeUndefined()
  })

  it('drops and counts stream records with a null key or a null value', async () => {
    const h = harness(false)
    await h.table.pipeInput('c1', 'Ann', 1)
    await h.stream.pipeInput(null, 'o1', 2)
    await h.stream.pipeInput('c1', null, 3)
    expect(h.read()).toEqual([])
    expect(h.driver.droppedRecords()).toBe(2)
  })

  it('materializes the source table (its store is connected to the join processor)', () => {
    const b = new StreamsBuilder()
    const s = b.stream<string, string>('orders')
    const t = b.table<string, string>('customers')
    s.join(t, (o: string, c: string) => o + c).to('out')
    const text = b.build().describe().toString()
    expect(text).toContain('Processor: KSTREAM-JOIN-0000000004 (stores: [customers-STATE-STORE-0000000001])')
    expect(text).toContain('Processor: KTABLE-SOURCE-0000000003 (stores: [customers-STATE-STORE-0000000001])')
  })

  it('repartitions the stream when its key changed upstream (Joined serdes)', async () => {
    const b = new StreamsBuilder()
    const s = b.stream<string, string>('orders', { keySerde: S, valueSerde: S }).selectKey((_k, v) => v.split(':')[0]!)
    const t = b.table<string, string>('customers', { keySerde: S, valueSerde: S })
    s.join(t, (o: string, c: string) => `${o}/${c}`, Joined.with(S, S, S).withName('enrich')).to('out', { keySerde: S, valueSerde: S })
    const topo = b.build()
    expect(topo.resolve('app').repartitionTopics.map((x) => x.name)).toEqual(['app-enrich-repartition'])
    expect(topo.describe().toString()).toContain('Processor: enrich (stores: [customers-STATE-STORE-0000000002])')
    const d = new TopologyTestDriver(topo, { applicationId: 'app' })
    drivers.push(d)
    await d.createInputTopic('customers', S, S).pipeInput('c1', 'Ann', 1)
    await d.createInputTopic('orders', S, S).pipeInput('order-9', 'c1:o9', 2)
    expect(d.createOutputTopic('out', S, S).readKeyValuesToList()).toEqual([{ key: 'c1', value: 'c1:o9/Ann' }])
  })

  it('rejects a non-table argument, naming the parameter', () => {
    const b = new StreamsBuilder()
    const s = b.stream<string, string>('orders')
    expect(() => (s.join as any)({}, (a: string) => a)).toThrow(TopologyError)
    expect(() => (s.join as any)({}, (a: string) => a)).toThrow(/other/)
    const t = b.table<string, string>('customers')
    expect(() => (s.join as any)(t, 42)).toThrow(/joiner/)
  })
})

describe('stream-table left join', () => {
  it('joins with null when the table has no row, or after a tombstone', async () => {
    const h = harness(true)
    await h.stream.pipeInput('c1', 'o1', 5)
    await h.table.pipeInput('c1', 'Ann', 6)
    await h.stream.pipeInput('c1', 'o2', 7)
    await h.table.pipeInput('c1', null, 8)
    await h.stream.pipeInput('c1', 'o3', 9)
    expect(h.read()).toEqual(['c1:o1/null@5', 'c1:o2/Ann@7', 'c1:o3/null@9'])
  })

  it('joins a null-key stream record with null (KIP-962) and drops a null value', async () => {
    const h = harness(true)
    await h.stream.pipeInput(null, 'o1', 5)
    await h.stream.pipeInput('c1', null, 6)
    expect(h.read()).toEqual(['null:o1/null@5'])
    expect(h.driver.droppedRecords()).toBe(1)
  })

  it('types: the joiner must accept null for the table value', () => {
    const b = new StreamsBuilder()
    const s = b.stream<string, number>('orders')
    const t = b.table<string, boolean>('customers')
    const ok: KStream<string, string> = s.leftJoin(t, (n: number, f: boolean | null) => `${n}${f}`)
    // @ts-expect-error the table value may be null in a left join
    s.leftJoin(t, (n: number, f: boolean) => `${n}${f}`)
    // @ts-expect-error the table value is a boolean, not a string
    s.join(t, (n: number, f: string) => `${n}${f}`)
    expect(ok.name).toBe('KSTREAM-LEFTJOIN-0000000004')
  })
})
