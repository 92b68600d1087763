import { afterEach, describe, expect, it } from 'vitest'
import { JoinWindows, Serdes, StreamsBuilder, TopologyError, type KStream } from '../../topology/index.js'
import { StreamJoined, withKey } from '../../topology/index.js'
import { TopologyTestDriver, type TestInputTopic, type TestOutputTopic } from '../../lib/testing/index.js'

const S = Serdes.String()
type Kind = 'inner' | 'left' | 'outer'

const drivers: TopologyTestDriver[] = []
afterEach(async () => {
  while (drivers.length) await drivers.pop()!.close()
})

interface Harness {
  driver: TopologyTestDriver
  left: TestInputTopic<string, string>
  right: TestInputTopic<string, string>
  out: TestOutputTopic<string, string>
  /** Output as `key:value@timestamp`, consumed. */
  read(): string[]
}

function joinOf(
  kind: Kind,
  l: KStream<string, string>,
  r: KStream<string, string>,
  windows: JoinWindows,
  sj = StreamJoined.with(S, S, S),
): KStream<string, string> {
  switch (kind) {
    case 'inner':
      return l.join(r, (a: string, b: string) => `${a}+${b}`, windows, sj)
    case 'left':
      return l.leftJoin(r, (a: string, b: string | null) => `${a}+${b}`, windows, sj)
    case 'outer':
      return l.outerJoin(r, (a: string | null, b: string | null) => `${a}+${b}`, windows, sj)
  }
}

function harness(kind: Kind, windows: JoinWindows, sj?: StreamJoined<string, string, string>): Harness {
  const b = new StreamsBuilder()
  const l = b.stream<string, string>('left', { keySerde: S, valueSerde: S })
  const r = b.stream<string, string>('right', { keySerde: S, valueSerde: S })
  joinOf(kind, l, r, windows, sj).to('out', { keySerde: S, valueSerde: S })
  const driver = new TopologyTestDriver(b.build())
  drivers.push(driver)
  const out = driver.createOutputTopic('out', S, S)
  return {
    driver,
    left: driver.createInputTopic('left', S, S),
    right: driver.createInputTopic('right', S, S),
    out,
    read: () => out.readRecordsToList().map((x) => `${x.key}:${x.value}@${x.timestamp}`),
  }
}

describe('stream-stream inner join', () => {
  it('window edges are inclusive on both sides: matches at t - before and t + after, not at t + after + 1', async () => {
    const h = harness('inner', JoinWindows.ofTimeDifferenceWithNoGrace(10))
    await h.left.pipeInput('k', 'A', 100)
    await h.right.pipeInput('k', 'lo', 90) // t - before
    await h.right.pipeInput('k', 'hi', 110) // t + after
    await h.right.pipeInput('k', 'out', 111) // t + after + 1
    // result timestamp = the later of the two
    expect(h.read()).toEqual(['k:A+lo@100', 'k:A+hi@110'])

    // the same seen from a left record: right x@200 joins left records in [190, 210]
    await h.right.pipeInput('x', 'r', 200)
    await h.left.pipeInput('x', 'L190', 190)
    await h.left.pipeInput('x', 'L210', 210)
    await h.left.pipeInput('x', 'L211', 211)
    expect(h.read()).toEqual(['x:L190+r@200', 'x:L210+r@210'])
  })

  it('asymmetric windows: before(0) joins only right records at or after the left record', async () => {
    const h = harness('inner', JoinWindows.ofTimeDifferenceWithNoGrace(10).before(0))
    await h.left.pipeInput('k', 'A', 100)
    await h.right.pipeInput('k', 'early', 99)
    await h.right.pipeInput('k', 'same', 100)
    await h.right.pipeInput('k', 'late', 110)
    expect(h.read()).toEqual(['k:A+same@100', 'k:A+late@110'])
  })

  it('duplicates on both sides produce the full cross product', async () => {
    const h = harness('inner', JoinWindows.ofTimeDifferenceWithNoGrace(100))
    await h.left.pipeInput('k', 'A1', 0)
    await h.left.pipeInput('k', 'A2', 0)
    await h.right.pipeInput('k', 'a1', 0)
    await h.right.pipeInput('k', 'a2', 5)
    await h.left.pipeInput('k', 'A3', 7)
    expect(h.read()).toEqual(['k:A1+a1@0', 'k:A2+a1@0', 'k:A1+a2@5', 'k:A2+a2@5', 'k:A3+a1@7', 'k:A3+a2@7'])
  })

  it('only equal keys join', async () => {
    const h = harness('inner', JoinWindows.ofTimeDifferenceWithNoGrace(100))
    await h.left.pipeInput('a', 'A', 0)
    await h.right.pipeInput('b', 'b', 0)
    expect(h.read()).toEqual([])
  })

  it('by default (Kafka Streams) joins records later than their window plus grace while the other side retains its records', async () => {
    const h = harness('inner', JoinWindows.ofTimeDifferenceAndGrace(10, 5))
    await h.left.pipeInput('k', 'A', 100)
    await h.left.pipeInput('other', 'B', 120) // stream-time 120
    await h.right.pipeInput('k', 'late', 104) // window closed at 119, A@100 retained (left buffer keeps >= 96)
    expect(h.read()).toEqual(['k:A+late@104'])
    await h.right.pipeInput('k', 'ok', 105)
    expect(h.read()).toEqual(['k:A+ok@105'])
    await h.right.pipeInput('j', 'r', 110)
    await h.left.pipeInput('j', 'lateLeft', 104) // late, joined with r@110 and buffered
    expect(h.read()).toEqual(['j:lateLeft+r@110'])
    await h.right.pipeInput('j', 'r2', 108)
    expect(h.read()).toEqual(['j:lateLeft+r2@108'])
    expect(h.driver.droppedRecords()).toBe(0)
  })

  it("with lateRecords 'drop', drops and counts records later than their window plus grace; accepts them within grace", async () => {
    const h = harness('inner', JoinWindows.ofTimeDifferenceAndGrace(10, 5), StreamJoined.with(S, S, S).withLateRecords('drop'))
    await h.left.pipeInput('k', 'A', 100)
    await h.left.pipeInput('other', 'B', 120) // stream-time 120
    // right record at 104: its window [94, 114] plus grace closed at 119 < 120: late
    await h.right.pipeInput('k', 'late', 104)
    expect(h.read()).toEqual([])
    expect(h.driver.droppedRecords()).toBe(1)
    // right record at 105: closes at 120, not before: accepted and joined with A
    await h.right.pipeInput('k', 'ok', 105)
    expect(h.read()).toEqual(['k:A+ok@105'])
    // a late left record: window [t-10, t+10] + 5 closes before 120 when t < 105
    await h.right.pipeInput('j', 'r', 110)
    await h.left.pipeInput('j', 'lateLeft', 104) // would match r@110, but 104 + 10 + 5 < 120
    expect(h.read()).toEqual([])
    expect(h.driver.droppedRecords()).toBe(2)
    // the dropped record was not buffered either: a later right record does not find it
    await h.right.pipeInput('j', 'r2', 108)
    expect(h.read()).toEqual([])
  })

  it('drops and counts records with a null key or a null value', async () => {
    const h = harness('inner', JoinWindows.ofTimeDifferenceWithNoGrace(10))
    await h.left.pipeInput(null, 'A', 0)
    await h.left.pipeInput('k', null, 0)
    await h.right.pipeInput('k', 'a', 0)
    expect(h.read()).toEqual([])
    expect(h.driver.droppedRecords()).toBe(2)
  })

  it('passes the key to a ValueJoinerWithKey', async () => {
    const b = new StreamsBuilder()
    const l = b.stream<string, number>('left', { keySerde: S, valueSerde: Serdes.Integer() })
    const r = b.stream<string, number>('right', { keySerde: S, valueSerde: Serdes.Integer() })
    l.join(
      r,
      withKey((k: string, a: number, c: number) => `${k}=${a + c}`),
      JoinWindows.ofTimeDifferenceWithNoGrace(10),
    ).to('out', { keySerde: S, valueSerde: S })
    const d = new TopologyTestDriver(b.build())
    drivers.push(d)
    await d.createInputTopic('left', S, Serdes.Integer()).pipeInput('k', 2, 0)
    await d.createInputTopic('right', S, Serdes.Integer()).pipeInput('k', 3, 1)
    expect(d.createOutputTopic('out', S, S).readKeyValuesToList()).toEqual([{ key: 'k', value: 'k=5' }])
  })
})

describe('stream-stream left join', () => {
  it('emits an unmatched left record once, after its window plus grace closed, with its own timestamp', async () => {
    const h = harness('left', JoinWindows.ofTimeDifferenceAndGrace(10, 5))
    await h.left.pipeInput('k', 'A', 100)
    await h.left.pipeInput('x', 'X', 115) // stream-time 115 = 100 + 10 + 5: not passed yet
    expect(h.read()).toEqual([])
    await h.left.pipeInput('y', 'Y', 116) // passes 115
    expect(h.read()).toEqual(['k:A+null@100'])
    await h.left.pipeInput('z', 'Z', 500)
    // X and Y are emitted now; A is not emitted a second time
    expect(h.read()).toEqual(['x:X+null@115', 'y:Y+null@116'])
    await h.right.pipeInput('z', 'late-for-A', 1000)
    expect(h.read()).toEqual(['z:Z+null@500'])
  })

  it('never emits a matched record as unmatched', async () => {
    const h = harness('left', JoinWindows.ofTimeDifferenceWithNoGrace(10))
    await h.left.pipeInput('k', 'A', 100)
    await h.right.pipeInput('k', 'a', 108) // matches A later
    expect(h.read()).toEqual(['k:A+a@108'])
    await h.left.pipeInput('other', 'B', 1000)
    await h.left.pipeInput('other2', 'C', 2000)
    expect(h.read()).toEqual(['other:B+null@1000'])
  })

  it('emits unmatched records in timestamp order, before the matches of the record that moved stream-time', async () => {
    const h = harness('left', JoinWindows.ofTimeDifferenceWithNoGrace(10))
    await h.left.pipeInput('k1', 'X', 10)
    await h.left.pipeInput('k3', 'V', 15)
    await h.left.pipeInput('k2', 'Y', 6) // out of order, still within its window (6 + 10 >= 15)
    await h.left.pipeInput('k4', 'W', 16)
    expect(h.read()).toEqual([])
    // stream-time 26: Y (closes 16), X (20) and V (25) are due; W (26) is not
    await h.right.pipeInput('k4', 'w', 26)
    expect(h.read()).toEqual(['k2:Y+null@6', 'k1:X+null@10', 'k3:V+null@15', 'k4:W+w@26'])
  })

  it('never emits unmatched right records', async () => {
    const h = harness('left', JoinWindows.ofTimeDifferenceWithNoGrace(10))
    await h.right.pipeInput('k', 'a', 0)
    await h.left.pipeInput('other', 'B', 100)
    await h.left.pipeInput('other', 'C', 1000)
    expect(h.read()).toEqual(['other:B+null@100'])
  })

  it('duplicates: every unmatched duplicate is emitted; matched duplicates produce the cross product', async () => {
    const h = harness('left', JoinWindows.ofTimeDifferenceAndGrace(100, 10))
    await h.left.pipeInput('a', 'A0', 0)
    await h.left.pipeInput('a', 'A1', 0)
    await h.left.pipeInput('b', 'B0', 200)
    await h.left.pipeInput('b', 'B1', 200)
    expect(h.read()).toEqual(['a:A0+null@0', 'a:A1+null@0'])
    await h.right.pipeInput('b', 'b0', 201)
    await h.right.pipeInput('b', 'b1', 201)
    expect(h.read()).toEqual(['b:B0+b0@201', 'b:B1+b0@201', 'b:B0+b1@201', 'b:B1+b1@201'])
    await h.left.pipeInput('c', 'C', 1000)
    expect(h.read()).toEqual([])
  })

  it('a null-key left record is joined with null at once (KIP-962); a null-key right record is dropped', async () => {
    const h = harness('left', JoinWindows.ofTimeDifferenceWithNoGrace(10))
    await h.left.pipeInput(null, 'A', 5)
    expect(h.read()).toEqual(['null:A+null@5'])
    await h.right.pipeInput(null, 'a', 5)
    expect(h.read()).toEqual([])
    expect(h.driver.droppedRecords()).toBe(1)
  })

  it('by default (Kafka Streams) a late record without a match is emitted with null at once', async () => {
    const h = harness('left', JoinWindows.ofTimeDifferenceWithNoGrace(10))
    await h.left.pipeInput('k', 'A', 100)
    await h.left.pipeInput('k', 'late', 50)
    expect(h.read()).toEqual(['k:late+null@50'])
    await h.left.pipeInput('x', 'X', 1000)
    expect(h.read()).toEqual(['k:A+null@100'])
    expect(h.driver.droppedRecords()).toBe(0)
  })

  it('emits an unmatched record with the headers of the record that moved stream-time past its window (Kafka Streams)', async () => {
    const h = harness('left', JoinWindows.ofTimeDifferenceWithNoGrace(10))
    await h.left.pipeInput('k', 'A', 100, { origin: 'a' })
    await h.right.pipeInput('x', 'X', 111, { origin: 'x' })
    expect(h.out.readRecordsToList().map((r) => [r.value, r.timestamp, r.headers])).toEqual([['A+null', 100, { origin: 'x' }]])
  })

  it("with lateRecords 'drop', a record dropped as late is never emitted unmatched", async () => {
    const h = harness('left', JoinWindows.ofTimeDifferenceWithNoGrace(10), StreamJoined.with(S, S, S).withLateRecords('drop'))
    await h.left.pipeInput('k', 'A', 100)
    await h.left.pipeInput('k', 'late', 50)
    await h.left.pipeInput('x', 'X', 1000)
    expect(h.read()).toEqual(['k:A+null@100'])
    expect(h.driver.droppedRecords()).toBe(1)
  })
})

describe('stream-stream outer join', () => {
  it('emits unmatched records of both sides once, in timestamp order (right before left at equal times)', async () => {
    // Kafka Streams' KStreamKStreamOuterJoinTest#testOuterJoinDuplicates, with strings
    const h = harness('outer', JoinWindows.ofTimeDifferenceAndGrace(100, 10))
    await h.left.pipeInput('0', 'A0', 0)
    await h.left.pipeInput('0', 'A0-0', 0)
    await h.right.pipeInput('1', '11', 0)
    await h.right.pipeInput('1', '12', 0)
    await h.right.pipeInput('1', '10', 111)
    await h.right.pipeInput('3', '100', 211)
    expect(h.read()).toEqual(['1:null+11@0', '1:null+12@0', '0:A0+null@0', '0:A0-0+null@0'])

    await h.left.pipeInput('2', 'A2', 200)
    await h.left.pipeInput('2', 'A2-0', 200)
    await h.right.pipeInput('2', '13', 201)
    await h.right.pipeInput('2', '14', 201)
    expect(h.read()).toEqual(['2:A2+13@201', '2:A2-0+13@201', '2:A2+14@201', '2:A2-0+14@201'])

    await h.right.pipeInput('3', '100', 1500)
    expect(h.read()).toEqual(['1:null+10@111', '3:null+100@211'])
  })

  it('asymmetric windows close each side at its own bound (left: t + after + grace, right: t + before + grace)', async () => {
    // Kafka Streams' KStreamKStreamOuterJoinTest#testEmitAllNonJoinedResultsForAsymmetricWindow
    const h = harness('outer', JoinWindows.ofTimeDifferenceWithNoGrace(5).after(20))
    await h.left.pipeInput('0', 'A0', 29)
    await h.left.pipeInput('1', 'A1', 30)
    await h.right.pipeInput('2', '12', 31)
    await h.right.pipeInput('3', '13', 36)
    expect(h.read()).toEqual([])
    await h.right.pipeInput('4', '14', 37)
    expect(h.read()).toEqual(['2:null+12@31'])
    await h.right.pipeInput('5', '15', 50)
    expect(h.read()).toEqual(['0:A0+null@29', '3:null+13@36', '4:null+14@37'])
  })

  it('a right record matched by a later left record is not emitted unmatched', async () => {
    const h = harness('outer', JoinWindows.ofTimeDifferenceWithNoGrace(10))
    await h.right.pipeInput('k', 'a', 100)
    await h.left.pipeInput('k', 'A', 105)
    await h.left.pipeInput('z', 'Z', 1000)
    expect(h.read()).toEqual(['k:A+a@105'])
  })

  it('null-key records of either side are joined with null at once (KIP-962)', async () => {
    const h = harness('outer', JoinWindows.ofTimeDifferenceWithNoGrace(10))
    await h.left.pipeInput(null, 'A', 1)
    await h.right.pipeInput(null, 'b', 2)
    expect(h.read()).toEqual(['null:A+null@1', 'null:null+b@2'])
  })
})

describe('stream-stream join topology', () => {
  it('names processors and stores as Kafka Streams does', () => {
    const b = new StreamsBuilder()
    const l = b.stream<string, string>('left', { keySerde: S, valueSerde: S })
    const r = b.stream<string, string>('right', { keySerde: S, valueSerde: S })
    l.leftJoin(r, (a: string, c: string | null) => `${a}+${c}`, JoinWindows.ofTimeDifferenceWithNoGrace(10)).to('out')
    const text = b.build().describe().toString()
    expect(text).toContain('Processor: KSTREAM-WINDOWED-0000000002 (stores: [KSTREAM-JOINTHIS-0000000004-store])')
    expect(text).toContain('Processor: KSTREAM-WINDOWED-0000000003 (stores: [KSTREAM-OUTEROTHER-0000000005-store])')
    expect(text).toMatch(
      /Processor: KSTREAM-JOINTHIS-0000000004 \(stores: \[(KSTREAM-OUTEROTHER-0000000005-store, KSTREAM-OUTERSHARED-0000000004-store|KSTREAM-OUTERSHARED-0000000004-store, KSTREAM-OUTEROTHER-0000000005-store)\]\)/,
    )
    expect(text).toContain('<-- KSTREAM-JOINTHIS-0000000004, KSTREAM-OUTEROTHER-0000000005')
    expect(text).toContain('Processor: KSTREAM-MERGE-0000000006 (stores: [])')
  })

  it('names from StreamJoined.withName / withStoreName', () => {
    const b = new StreamsBuilder()
    const l = b.stream<string, string>('left', { keySerde: S, valueSerde: S })
    const r = b.stream<string, string>('right', { keySerde: S, valueSerde: S })
    l.outerJoin(
      r,
      (a: string | null, c: string | null) => `${a}+${c}`,
      JoinWindows.ofTimeDifferenceWithNoGrace(10),
      StreamJoined.with(S, S, S).withName('j').withStoreName('st'),
    ).to('out')
    const topo = b.build()
    const text = topo.describe().toString()
    for (const n of ['j-this-windowed', 'j-other-windowed', 'j-outer-this-join', 'j-outer-other-join', 'j-merge'])
      expect(text).toContain(`Processor: ${n} `)
    const stores = [...topo.resolve('app').stores.keys()].sort()
    expect(stores).toEqual(['st-outer-other-join-store', 'st-outer-shared-join-store', 'st-outer-this-join-store'])
    const w = topo.resolve('app').stores.get('st-outer-this-join-store')!
    expect(w).toMatchObject({ type: 'window', retainDuplicates: true, windowSizeMs: 20 })
  })

  it('join buffers and the outer-join store fall back to the default serdes', async () => {
    const b = new StreamsBuilder()
    const l = b.stream<string, string>('left')
    const r = b.stream<string, string>('right')
    l.outerJoin(r, (a, c) => `${a}+${c}`, JoinWindows.ofTimeDifferenceWithNoGrace(10)).to('out')
    const d = new TopologyTestDriver(b.build(), { defaultKeySerde: S, defaultValueSerde: S })
    drivers.push(d)
    await d.createInputTopic('left', S, S).pipeInput('k', 'A', 0)
    await d.createInputTopic('right', S, S).pipeInput('j', 'b', 5)
    await d.createInputTopic('left', S, S).pipeInput('z', 'Z', 100)
    expect(d.createOutputTopic('out', S, S).readKeyValuesToList()).toEqual([
      { key: 'k', value: 'A+null' },
      { key: 'j', value: 'null+b' },
    ])
    const outer = d.getKeyValueStore<{ timestamp: number; side: string; key: string }, { side: string; values: string[] }>(
      'KSTREAM-OUTERSHARED-0000000004-store',
    )
    const left: unknown[] = []
    for await (const e of outer.all()) left.push([e.key, e.value])
    expect(left).toEqual([
      [
        { timestamp: 100, side: 'left', key: 'z' },
        { side: 'left', values: ['Z'] },
      ],
    ])
  })

  it('withLoggingDisabled: no changelog topics', () => {
    const b = new StreamsBuilder()
    const l = b.stream<string, string>('left', { keySerde: S, valueSerde: S })
    const r = b.stream<string, string>('right', { keySerde: S, valueSerde: S })
    l.join(
      r,
      (a: string, c: string) => a + c,
      JoinWindows.ofTimeDifferenceWithNoGrace(10),
      StreamJoined.with(S, S, S).withLoggingDisabled(),
    ).to('out')
    expect(b.build().resolve('app').changelogTopics).toEqual([])
  })

  it('repartitions a side whose key changed upstream and co-partitions both inputs', async () => {
    const b = new StreamsBuilder()
    const l = b.stream<string, string>('left', { keySerde: S, valueSerde: S }).selectKey((_k, v) => v.split(':')[0]!)
    const r = b.stream<string, string>('right', { keySerde: S, valueSerde: S })
    l.join(r, (a: string, c: string) => `${a}+${c}`, JoinWindows.ofTimeDifferenceWithNoGrace(10), StreamJoined.with(S, S, S)).to('out', {
      keySerde: S,
      valueSerde: S,
    })
    const topo = b.build()
    const def = topo.resolve('app')
    expect(def.repartitionTopics.map((t) => t.name)).toEqual(['app-KSTREAM-KEY-SELECT-0000000001-repartition'])
    const d = new TopologyTestDriver(topo, { applicationId: 'app' })
    drivers.push(d)
    await d.createInputTopic('left', S, S).pipeInput('ignored', 'k:A', 10)
    await d.createInputTopic('right', S, S).pipeInput('k', 'a', 12)
    expect(d.createOutputTopic('out', S, S).readKeyValuesToList()).toEqual([{ key: 'k', value: 'k:A+a' }])
  })

  it('rejects a join without windows, naming the parameter', () => {
    const b = new StreamsBuilder()
    const l = b.stream<string, string>('left')
    const r = b.stream<string, string>('right')
    expect(() => (l.join as any)(r, (a: string, c: string) => a + c)).toThrow(TopologyError)
    expect(() => (l.join as any)(r, (a: string, c: string) => a + c)).toThrow(/windows/)
    expect(() => (l.join as any)(r, 'not a function', JoinWindows.ofTimeDifferenceWithNoGrace(1))).toThrow(/joiner/)
  })
})

describe('stream-stream join types', () => {
  it('flows value types into the joiner and the result', () => {
    const b = new StreamsBuilder()
    const l = b.stream<string, number>('left')
    const r = b.stream<string, boolean>('right')
    const w = JoinWindows.ofTimeDifferenceWithNoGrace(1)
    const inner: KStream<string, string> = l.join(r, (n: number, f: boolean) => `${n}${f}`, w)
    const left: KStream<string, string> = l.leftJoin(r, (n: number, f: boolean | null) => `${n}${f}`, w)
    const outer: KStream<string, string> = l.outerJoin(r, (n: number | null, f: boolean | null) => `${n}${f}`, w)
    // inferred: parameters get the stream types (with null where a side may be missing), the result the joiner's
    const inferred: KStream<string, { n: number; f: boolean | null }> = l.leftJoin(r, (n, f) => ({ n, f }), w)
    const keyed: KStream<string, string> = l.join(
      r,
      withKey((k: string, n: number, f: boolean) => `${k}${n}${f}`),
      w,
    )
    // @ts-expect-error inferred left value is a number
    l.join(r, (n, f) => n.toUpperCase() + f, w)
    // @ts-expect-error the right value is a boolean, not a string
    l.join(r, (n: number, s: string) => `${n}${s}`, w)
    // @ts-expect-error a left join's joiner must accept null for the right value
    l.leftJoin(r, (n: number, f: boolean) => `${n}${f}`, w)
    // @ts-expect-error an outer join's joiner must accept null for the left value
    l.outerJoin(r, (n: number, f: boolean | null) => `${n}${f}`, w)
    expect([inner, left, outer, inferred, keyed].every((s) => typeof s.name === 'string')).toBe(true)
  })
})
