import { afterEach, describe, expect, expectTypeOf, it } from 'vitest'
import {
  JOIN_RETRACTION_HEADERS as R,
  JoinWindows,
  Serdes,
  StreamJoined,
  StreamsBuilder,
  TopologyError,
  type EmitUnmatched,
  type KStream,
} from '../../topology/index.js'
import { TopologyTestDriver, type TestRecord } from '../../lib/testing/index.js'
import type { KeyValueStore } from '../../topology/state/types.js'

const S = Serdes.String()
const drivers: TopologyTestDriver[] = []
afterEach(async () => {
  while (drivers.length) await drivers.pop()!.close()
})

/** Output as `key:value@ts`, retractions as `key:RETRACT(side@retractedTs)@ts`. */
function show(r: TestRecord<string, string>): string {
  if (r.value === null) return `${r.key}:RETRACT(${r.headers[R.retraction]}@${r.headers[R.retractedTimestamp]})@${r.timestamp}`
  return `${r.key}:${r.value}@${r.timestamp}`
}

function harness(kind: 'left' | 'outer', policy: EmitUnmatched, windows = JoinWindows.ofTimeDifferenceAndGrace(10, 5)) {
  const b = new StreamsBuilder()
  const l = b.stream<string, string>('left', { keySerde: S, valueSerde: S })
  const r = b.stream<string, string>('right', { keySerde: S, valueSerde: S })
  const sj = StreamJoined.with(S, S, S).withStoreName('j').withEmitUnmatched(policy)
  const joined: KStream<string, string | null> =
    kind === 'left'
      ? l.leftJoin(r, (a: string, c: string | null) => `${a}+${c}`, windows, sj)
      : l.outerJoin(r, (a: string | null, c: string | null) => `${a}+${c}`, windows, sj)
  joined.to('out', { keySerde: S, valueSerde: S })
  const driver = new TopologyTestDriver(b.build())
  drivers.push(driver)
  const out = driver.createOutputTopic('out', S, S)
  const sharedStore = kind === 'left' ? 'j-left-shared-join-store' : 'j-outer-shared-join-store'
  return {
    driver,
    left: driver.createInputTopic('left', S, S),
    right: driver.createInputTopic('right', S, S),
    read: () => out.readRecordsToList().map(show),
    /** Entries (keys) in the shared outer-join store, or undefined when there is none. */
    async sharedEntries(): Promise<number | undefined> {
      const store = driver.getStateStore(sharedStore) as KeyValueStore<unknown, unknown> | undefined
      if (store === undefined) return undefined
      let n = 0
      for await (const _ of store.all()) n++
      return n
    },
  }
}

describe('emitUnmatched: onWindowClose (the default, Kafka Streams ≥ 3.1)', () => {
  it('left join: A waits; matched records never produce A+null; unmatched ones come when the window closes', async () => {
    const h = harness('left', 'onWindowClose')
    await h.left.pipeInput('k', 'A', 100)
    expect(h.read()).toEqual([])
    await h.right.pipeInput('k', 'B', 105)
    expect(h.read()).toEqual(['k:A+B@105'])
    await h.left.pipeInput('x', 'C', 110)
    await h.left.pipeInput('y', 'D', 126) // C's window closes at 110 + 10 + 5 = 125 < 126
    expect(h.read()).toEqual(['x:C+null@110'])
    expect(await h.sharedEntries()).toBe(1) // D
  })
})

describe("emitUnmatched: 'eager' (Kafka Streams before 3.1)", () => {
  it('left join: A+null at once, then A+B when the match comes, never A+null again; no shared store', async () => {
    const h = harness('left', 'eager')
    await h.left.pipeInput('k', 'A', 100)
    expect(h.read()).toEqual(['k:A+null@100'])
    await h.right.pipeInput('k', 'B', 105)
    await h.right.pipeInput('k', 'B2', 108)
    expect(h.read()).toEqual(['k:A+B@105', 'k:A+B2@108'])
    await h.left.pipeInput('z', 'Z', 500) // closes every window
    expect(h.read()).toEqual(['z:Z+null@500'])
    expect(await h.sharedEntries()).toBeUndefined()
  })

  it('outer join: either side unmatched is emitted at once; a left record that matches on arrival gives only the match', async () => {
    const h = harness('outer', 'eager')
    await h.right.pipeInput('k', 'B', 100)
    expect(h.read()).toEqual(['k:null+B@100'])
    await h.left.pipeInput('k', 'A', 103)
    expect(h.read()).toEqual(['k:A+B@103'])
    // out of order (stream-time 103): still emitted at once
    await h.left.pipeInput('m', 'M', 95)
    expect(h.read()).toEqual(['m:M+null@95'])
  })
})

describe("emitUnmatched: 'eagerWithRetraction'", () => {
  it('left join: A+null at once; the first match brings a retraction (tombstone with headers) then A+B; later matches only A+B', async () => {
    const h = harness('left', 'eagerWithRetraction')
    await h.left.pipeInput('k', 'A', 100)
    expect(h.read()).toEqual(['k:A+null@100'])
    await h.right.pipeInput('k', 'B', 105)
    expect(h.read()).toEqual(['k:RETRACT(this@100)@105', 'k:A+B@105'])
    await h.right.pipeInput('k', 'B2', 108)
    expect(h.read()).toEqual(['k:A+B2@108'])
    expect(await h.sharedEntries()).toBe(0)
  })

  it('outer join: both sides retracted; two unmatched records with the same key and time get one retraction each', async () => {
    const h = harness('outer', 'eagerWithRetraction')
    await h.right.pipeInput('k', 'B1', 100)
    await h.right.pipeInput('k', 'B2', 100)
    expect(h.read()).toEqual(['k:null+B1@100', 'k:null+B2@100'])
    await h.left.pipeInput('k', 'A', 104)
    expect(h.read()).toEqual(['k:RETRACT(other@100)@104', 'k:A+B1@104', 'k:RETRACT(other@100)@104', 'k:A+B2@104'])
    await h.left.pipeInput('q', 'Q', 110)
    expect(h.read()).toEqual(['q:Q+null@110'])
    await h.right.pipeInput('q', 'P', 112)
    expect(h.read()).toEqual(['q:RETRACT(this@110)@112', 'q:Q+P@112'])
  })

  it('out-of-order records: one whose window already closed is emitted at once and still retracted when a (non-late) match comes', async () => {
    const h = harness('left', 'eagerWithRetraction')
    await h.left.pipeInput('s', 'S', 200) // stream-time 200
    h.read()
    // A@185: window [175, 195] ends before 200, but 185 + 10 + 5 = 200 is not before stream-time: not late
    await h.left.pipeInput('k', 'A', 185)
    expect(h.read()).toEqual(['k:A+null@185'])
    // B@194: 194 + 10 + 5 = 209 >= 200, not late; joins A (194 within [175, 195])
    await h.right.pipeInput('k', 'B', 194)
    expect(h.read()).toEqual(['k:RETRACT(this@185)@194', 'k:A+B@194'])
  })

  it('late records are dropped and counted (lateRecords drop is implied), so no match can skip its retraction', async () => {
    const h = harness('left', 'eagerWithRetraction')
    await h.left.pipeInput('k', 'A', 100)
    await h.left.pipeInput('s', 'S', 130) // stream-time 130
    expect(h.read()).toEqual(['k:A+null@100', 's:S+null@130'])
    // B@104 would match A, but 104 + 10 + 5 = 119 < 130: late
    await h.right.pipeInput('k', 'B', 104)
    expect(h.read()).toEqual([])
    expect(h.driver.droppedRecords()).toBe(1)
  })

  it('the shared store is bounded: entries leave when matched or when no match can come (t + before + after + grace), with nothing emitted', async () => {
    const h = harness('left', 'eagerWithRetraction')
    for (let i = 0; i < 50; i++) await h.left.pipeInput(`k${i}`, `A${i}`, 1000 + i * 10)
    expect(h.read()).toHaveLength(50)
    // entries whose t + 25 >= stream-time (1490) are still kept: t >= 1465, i.e. 1470, 1480, 1490
    expect(await h.sharedEntries()).toBe(3)
    await h.left.pipeInput('end', 'E', 5000)
    expect(h.read()).toEqual(['end:E+null@5000'])
    expect(await h.sharedEntries()).toBe(1)
  })

  it('onWindowClose drains the shared store too; eager keeps none', async () => {
    const h = harness('outer', 'onWindowClose')
    for (let i = 0; i < 20; i++) await h.right.pipeInput(`k${i}`, `B${i}`, 1000 + i * 10)
    await h.left.pipeInput('end', 'E', 5000)
    expect(h.read()).toHaveLength(20)
    expect(await h.sharedEntries()).toBe(1)
    const e = harness('outer', 'eager')
    for (let i = 0; i < 20; i++) await e.right.pipeInput(`k${i}`, `B${i}`, 1000 + i * 10)
    expect(e.read()).toHaveLength(20)
    expect(await e.sharedEntries()).toBeUndefined()
  })
})

describe('emitUnmatched: options and types', () => {
  it("retractions are in the result type: KStream<K, VR | null> with 'eagerWithRetraction' only", () => {
    const b = new StreamsBuilder()
    const l = b.stream<string, string>('l')
    const r = b.stream<string, number>('r')
    const w = JoinWindows.ofTimeDifferenceWithNoGrace(10)
    const retracting = StreamJoined.with<string, string, number>().withEmitUnmatched('eagerWithRetraction').withName('j1')
    expectTypeOf(l.leftJoin(r, (a: string, n: number | null) => a.length + (n ?? 0), w, retracting)).toEqualTypeOf<
      KStream<string, number | null>
    >()
    expectTypeOf(
      l.outerJoin(r, (a: string | null, n: number | null) => `${a}${n}`, w, { emitUnmatched: 'eagerWithRetraction' }),
    ).toEqualTypeOf<KStream<string, string | null>>()
    const eager = StreamJoined.with<string, string, number>().withEmitUnmatched('eager')
    expectTypeOf(l.leftJoin(r, (a: string, n: number | null) => a.length + (n ?? 0), w, eager)).toEqualTypeOf<KStream<string, number>>()
  })

  it('rejects unknown policies and lateRecords join with retractions', () => {
    // @ts-expect-error not a policy
    expect(() => StreamJoined.with(S, S, S).withEmitUnmatched('sometimes')).toThrow(TopologyError)
    const b = new StreamsBuilder()
    const l = b.stream<string, string>('l')
    const r = b.stream<string, string>('r')
    const sj = StreamJoined.with(S, S, S).withLateRecords('join').withEmitUnmatched('eagerWithRetraction')
    expect(() => l.leftJoin(r, (a: string, c: string | null) => a + c, JoinWindows.ofTimeDifferenceWithNoGrace(10), sj)).toThrow(
      "leftJoin: emitUnmatched 'eagerWithRetraction' drops late records; lateRecords 'join' cannot be used with it",
    )
  })
})
