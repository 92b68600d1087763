/**
 * Fidelity to Kafka Streams 3.9.2 (issue 13, "Behaviours to match" 1–6, 8, 9): each test pipes
 * exactly the issue's input and expects exactly what Kafka Streams' TopologyTestDriver emits for
 * it (RocksDB and in-memory stores alike).
 */
import { describe, expect, it } from 'vitest'
import {
  BufferConfig,
  Consumed,
  IllegalStateError,
  JoinWindows,
  Materialized,
  Serdes,
  SessionWindows,
  SlidingWindows,
  StreamJoined,
  StreamsBuilder,
  Suppressed,
  type FixedKeyProcessor,
  type KTable,
  type ProcessorContext,
  type RawRecord,
  type Serde,
  type Windowed,
} from '../../topology/index.js'
import { TopologyTestDriver } from '../../lib/testing/index.js'
import { PartitionGroup } from '../../lib/app/partition-group.js'
import { StreamTask } from '../../lib/app/stream-task.js'
import type { TaskRecordCollector } from '../../lib/app/record-collector.js'
import type { TaskProducer } from '../../lib/app/client/types.js'
import type { TaskStateManager } from '../../lib/state/types.js'
import { createTaskEngine } from '../../topology/engine/index.js'
import { InMemoryStoreProvider } from '../../topology/state/memory.js'

const S = Serdes.String()

/** Windowed key as text, `k [start,end]`, so output topics need no windowed serde. */
const wkey = (k: Windowed<string>): string => `${k.key} [${k.window.startMs},${k.window.endMs}]`

/** Writes a windowed table's updates to `out` as `"k [s,e]" → value` (values as strings). */
function toOut<V>(table: KTable<Windowed<string>, V>): void {
  table
    .toStream()
    .map((k, v) => ({ key: wkey(k), value: v === null ? null : String(v) }))
    .to('out', { keySerde: S, valueSerde: S })
}

const read = (d: TopologyTestDriver) =>
  d
    .createOutputTopic('out', S, S)
    .readRecordsToList()
    .map((r) => ({ key: r.key, value: r.value, timestamp: r.timestamp }))

describe('Kafka Streams fidelity (issue 13)', () => {
  it('(1) a join against a suppressed KTable sees what the suppression emitted, not the buffered value', async () => {
    const b = new StreamsBuilder()
    const left = b.table('left', Consumed.with(S, S))
    const right = b.table('right', Consumed.with(S, S)).suppress(Suppressed.untilTimeLimit<string>(10, BufferConfig.unbounded()))
    left
      .join(right, (a, r) => `${a}+${r}`)
      .toStream()
      .to('out', { keySerde: S, valueSerde: S })
    const d = new TopologyTestDriver(b.build(), {}, 0)
    const l = d.createInputTopic('left', S, S)
    const r = d.createInputTopic('right', S, S)
    await r.pipeInput('A', '1', 0)
    await r.pipeInput('tick', 'x', 10) // A=1 is emitted by the suppression
    await r.pipeInput('A', '2', 11) // buffered
    await l.pipeInput('A', 'a', 12)
    expect(read(d)).toEqual([{ key: 'A', value: 'a+1', timestamp: 12 }])
    await d.close()
  })

  it('(1) lookups into a suppressed KTable: a buffered key shows its value from before the buffer (absent: no value), other keys the current value', async () => {
    const b = new StreamsBuilder()
    const left = b.table('left', Consumed.with(S, S))
    const right = b.table('right', Consumed.with(S, S)).suppress(Suppressed.untilTimeLimit<string>(10, BufferConfig.unbounded()))
    left
      .join(right, (a, r) => `${a}+${r}`)
      .toStream()
      .to('out', { keySerde: S, valueSerde: S })
    const d = new TopologyTestDriver(b.build(), {}, 0)
    const l = d.createInputTopic('left', S, S)
    const r = d.createInputTopic('right', S, S)
    await r.pipeInput('A', '1', 0) // buffered; downstream has seen no A yet
    await l.pipeInput('A', 'a', 1)
    expect(read(d)).toEqual([])
    await r.pipeInput('tick', 'x', 10) // A=1 (timestamp 0) emitted: joined with the left table's a
    expect(read(d)).toEqual([{ key: 'A', value: 'a+1', timestamp: 1 }]) // the later of A=1@0 and a@1
    await l.pipeInput('A', 'b', 11) // A not buffered: the parent table's value
    expect(read(d)).toEqual([{ key: 'A', value: 'b+1', timestamp: 11 }])
    await d.close()
  })

  it('(2) sliding windows: a record updating several existing windows forwards them by descending window start', async () => {
    const b = new StreamsBuilder()
    toOut(
      b
        .stream('in', Consumed.with(S, S))
        .groupByKey()
        .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(10, 100))
        .aggregate(
          () => '',
          (_k, v, agg) => agg + v,
          Materialized.with<string, string>(S, S),
        ),
    )
    const d = new TopologyTestDriver(b.build(), {}, 0)
    const input = d.createInputTopic('in', S, S)
    await input.pipeInput('k', 'A', 100)
    await input.pipeInput('k', 'B', 105)
    await input.pipeInput('k', 'C', 106)
    read(d)
    await input.pipeInput('k', 'D', 107)
    expect(read(d)).toEqual([
      { key: 'k [106,116]', value: 'CD', timestamp: 107 },
      { key: 'k [101,111]', value: 'BCD', timestamp: 107 },
      { key: 'k [107,117]', value: 'D', timestamp: 107 },
      { key: 'k [97,107]', value: 'ABCD', timestamp: 107 },
    ])
    await d.close()
  })

  it('(3) suppress(untilWindowCloses) on session windows emits once stream-time reaches end + gap + grace', async () => {
    const b = new StreamsBuilder()
    toOut(
      b
        .stream('in', Consumed.with(S, S))
        .groupByKey()
        .windowedBy(SessionWindows.ofInactivityGapAndGrace(5, 0))
        .count()
        .suppress(Suppressed.untilWindowCloses<string>(BufferConfig.unbounded())),
    )
    const d = new TopologyTestDriver(b.build(), {}, 0)
    const input = d.createInputTopic('in', S, S)
    await input.pipeInput('k', 'v', 0)
    expect(read(d)).toEqual([])
    await input.pipeInput('k2', 'v', 5)
    expect(read(d)).toEqual([{ key: 'k [0,0]', value: '1', timestamp: 0 }])
    await d.close()
  })

  it('(3) suppress(untilWindowCloses) on sliding windows emits once stream-time reaches end + grace (and again for a later update)', async () => {
    const b = new StreamsBuilder()
    toOut(
      b
        .stream('in', Consumed.with(S, S))
        .groupByKey()
        .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(5, 0))
        .count()
        .suppress(Suppressed.untilWindowCloses<string>(BufferConfig.unbounded())),
    )
    const d = new TopologyTestDriver(b.build(), {}, 0)
    const input = d.createInputTopic('in', S, S)
    await input.pipeInput('k', 'v', 10)
    await input.pipeInput('k', 'v', 10)
    await input.pipeInput('k2', 'v', 11)
    expect(read(d)).toEqual([
      { key: 'k [5,10]', value: '1', timestamp: 10 },
      { key: 'k [5,10]', value: '2', timestamp: 10 },
      { key: 'k2 [6,11]', value: '1', timestamp: 11 },
    ])
    await d.close()
  })

  describe('(4) left/outer stream-stream join: an out-of-order record whose window end is behind stream-time', () => {
    async function run(kind: 'outer' | 'left', inputs: Array<['left' | 'right', string, number]>) {
      const b = new StreamsBuilder()
      const l = b.stream('left', Consumed.with(S, S))
      const r = b.stream('right', Consumed.with(S, S))
      const windows = JoinWindows.ofTimeDifferenceAndGrace(10, 100)
      const joined =
        kind === 'outer'
          ? l.outerJoin(r, (a: string | null, c: string | null) => `${a}+${c}`, windows)
          : l.leftJoin(r, (a: string, c: string | null) => `${a}+${c}`, windows)
      joined.to('out', { keySerde: S, valueSerde: S })
      const d = new TopologyTestDriver(b.build(), {}, 0)
      const topics = { left: d.createInputTopic('left', S, S), right: d.createInputTopic('right', S, S) }
      for (const [side, value, ts] of inputs) await topics[side].pipeInput('0', value, ts)
      const out = read(d)
      await d.close()
      return out
    }

    it('outer join: B@150 is emitted with null at once, then joined with Y@155', async () => {
      const out = await run('outer', [
        ['left', 'A', 100],
        ['right', 'X', 200],
        ['left', 'B', 150],
        ['right', 'Y', 155],
      ])
      expect(out).toEqual([
        { key: '0', value: 'B+null', timestamp: 150 },
        { key: '0', value: 'B+Y', timestamp: 155 },
      ])
    })

    it('left join: the same', async () => {
      const out = await run('left', [
        ['right', 'X', 200],
        ['left', 'B', 150],
        ['right', 'Y', 155],
      ])
      expect(out).toEqual([
        { key: '0', value: 'B+null', timestamp: 150 },
        { key: '0', value: 'B+Y', timestamp: 155 },
      ])
    })
  })

  describe('(5) session expiry at exactly the gap', () => {
    async function run(inputs: Array<[string, number]>) {
      const b = new StreamsBuilder()
      toOut(b.stream('in', Consumed.with(S, S)).groupByKey().windowedBy(SessionWindows.ofInactivityGapAndGrace(30, 0)).count())
      const d = new TopologyTestDriver(b.build(), {}, 0)
      const input = d.createInputTopic('in', S, S)
      for (const [k, ts] of inputs) await input.pipeInput(k, 'v', ts)
      const out = read(d)
      await d.close()
      return out
    }

    it('another key moved stream-time to 30: k1@30 starts a new session (the old one expired)', async () => {
      expect(
        await run([
          ['k1', 0],
          ['k2', 30],
          ['k1', 30],
        ]),
      ).toEqual([
        { key: 'k1 [0,0]', value: '1', timestamp: 0 },
        { key: 'k2 [30,30]', value: '1', timestamp: 30 },
        { key: 'k1 [30,30]', value: '1', timestamp: 30 },
      ])
    })

    it('no other key in between: k1@30 merges with [0,0]', async () => {
      expect(
        await run([
          ['k1', 0],
          ['k1', 30],
        ]),
      ).toEqual([
        { key: 'k1 [0,0]', value: '1', timestamp: 0 },
        { key: 'k1 [0,0]', value: null, timestamp: 0 },
        { key: 'k1 [0,30]', value: '2', timestamp: 30 },
      ])
    })
  })

  describe('(6) late stream-stream join records are joined while the other side retains its records', () => {
    async function run(kind: 'inner' | 'left', inputs: Array<['left' | 'right', string, string, number]>, lateRecords?: 'join' | 'drop') {
      const b = new StreamsBuilder()
      const l = b.stream('left', Consumed.with(S, S))
      const r = b.stream('right', Consumed.with(S, S))
      const windows = JoinWindows.ofTimeDifferenceAndGrace(10, 0)
      const sj = lateRecords === undefined ? undefined : StreamJoined.with(S, S, S).withLateRecords(lateRecords)
      const joined =
        kind === 'inner'
          ? l.join(r, (a: string, c: string) => `${a}+${c}`, windows, sj)
          : l.leftJoin(r, (a: string, c: string | null) => `${a}+${c}`, windows, sj)
      joined.to('out', { keySerde: S, valueSerde: S })
      const d = new TopologyTestDriver(b.build(), {}, 0)
      const topics = { left: d.createInputTopic('left', S, S), right: d.createInputTopic('right', S, S) }
      for (const [side, key, value, ts] of inputs) await topics[side].pipeInput(key, value, ts)
      const out = read(d)
      await d.close()
      return out
    }
    // R@104 is late (104 + 10 + 0 < 115) but A@100 is still retained (retention 20 behind 100).
    const innerInput: Array<['left' | 'right', string, string, number]> = [
      ['left', 'k', 'A', 100],
      ['right', 'x', 'Z', 115],
      ['right', 'k', 'R', 104],
    ]
    // A@95 is late (95 + 10 < 115) but R@100 is retained (the right buffer's stream-time 115, retention 20);
    // C@50 is late and has no match: emitted with null at once.
    const leftInput: Array<['left' | 'right', string, string, number]> = [
      ['right', 'k', 'R', 100],
      ['right', 'x', 'Z', 115],
      ['left', 'k', 'A', 95],
      ['left', 'k', 'C', 50],
    ]

    it('inner join (the default, as Kafka Streams)', async () => {
      expect(await run('inner', innerInput)).toEqual([{ key: 'k', value: 'A+R', timestamp: 104 }])
    })

    it('left join (the default, as Kafka Streams)', async () => {
      expect(await run('left', leftInput)).toEqual([
        { key: 'k', value: 'A+R', timestamp: 100 },
        { key: 'k', value: 'C+null', timestamp: 50 },
      ])
    })

    it("StreamJoined.withLateRecords('drop') keeps the old policy: late records are dropped", async () => {
      expect(await run('inner', innerInput, 'drop')).toEqual([])
      expect(await run('left', leftInput, 'drop')).toEqual([])
    })

    it("withLateRecords rejects anything but 'join' and 'drop'", () => {
      expect(() => StreamJoined.with(S, S, S).withLateRecords('keep' as 'drop')).toThrow(
        "StreamJoined.withLateRecords: lateRecords must be 'join' or 'drop', got keep",
      )
    })
  })

  it("(8) a task's next record is chosen by the extracted timestamp of each partition's head", async () => {
    // The value carries the event time; the broker timestamps say the opposite order.
    const b = new StreamsBuilder()
    const byValue = Consumed.with(S, S).withTimestampExtractor({ extract: (r) => Number(r.value) })
    b.stream('a', byValue).merge(b.stream('b', byValue)).to('out', { keySerde: S, valueSerde: S })
    const engine = await taskEngine(b)
    const raw = (topic: string, offset: number, eventTime: number, brokerTime: number): RawRecord => ({
      topic,
      partition: 0,
      offset: String(offset),
      key: Buffer.from('k'),
      value: Buffer.from(String(eventTime)),
      timestamp: brokerTime,
      headers: {},
    })
    let calls = 0
    const counted = new PartitionGroup(
      [
        { topic: 'a', partition: 0 },
        { topic: 'b', partition: 0 },
      ],
      0,
      -1,
      (r) => {
        calls++
        return engine.headTimestamp!(r)
      },
    )
    counted.queue('a', 0)!.push([raw('a', 0, 20, 1), raw('a', 1, 40, 2)])
    counted.queue('b', 0)!.push([raw('b', 0, 10, 1000), raw('b', 1, 30, 2000)])
    expect(counted.take(10, 0).map((r) => `${r.topic}:${r.value!.toString()}`)).toEqual(['b:10', 'a:20', 'b:30', 'a:40'])
    expect(calls).toBe(4) // once per head record
    // An invalid extracted timestamp orders by the broker timestamp (the engine's policy handles it when processed).
    expect(engine.headTimestamp!({ ...raw('a', 2, 0, 77), value: Buffer.from('not a number') })).toBe(77)
    // Without the extractor, the broker timestamps decide.
    const plain = new PartitionGroup(
      [
        { topic: 'a', partition: 0 },
        { topic: 'b', partition: 0 },
      ],
      0,
      -1,
    )
    plain.queue('a', 0)!.push([raw('a', 0, 20, 1), raw('a', 1, 40, 2)])
    plain.queue('b', 0)!.push([raw('b', 0, 10, 1000), raw('b', 1, 30, 2000)])
    expect(plain.take(10, 0).map((r) => `${r.topic}:${r.value!.toString()}`)).toEqual(['a:20', 'a:40', 'b:10', 'b:30'])
  })

  it('(8) a StreamTask takes its records in the order of the extracted timestamps; an undeserializable head goes first', async () => {
    // Values are event times; the broker timestamps say the opposite order. 'bad' cannot be deserialized.
    const numberOrFail: Serde<string> = {
      serialize: (_t, v) => (v === null || v === undefined ? null : Buffer.from(v)),
      deserialize: (_t, d) => {
        if (d === null) return null
        const s = d.toString()
        if (s === 'bad') throw new Error('not a number')
        return s
      },
    }
    const b = new StreamsBuilder()
    const byValue = Consumed.with(S, numberOrFail).withTimestampExtractor({ extract: (r) => Number(r.value) })
    b.stream('a', byValue).merge(b.stream('b', byValue)).to('out', { keySerde: S, valueSerde: S })
    const def = b.build().resolve('fidelity')
    const out: string[] = []
    const handled: string[] = []
    const engine = createTaskEngine({
      topology: def,
      subtopology: def.subtopologies[0]!,
      taskId: { subtopology: def.subtopologies[0]!.id, partition: 0 },
      stores: new InMemoryStoreProvider(),
      collector: { send: (r) => void out.push(r.value!.toString()) },
      clock: () => 0,
      deserializationExceptionHandler: (_e, r) => {
        handled.push(`${r.topic}@${r.offset}`)
        out.push('handled')
        return 'continue'
      },
    })
    await engine.init()
    const task = new StreamTask({
      id: '0_0',
      taskId: { subtopology: 0, partition: 0 },
      subtopology: def.subtopologies[0]!,
      partitions: [
        { topic: 'a', partition: 0 },
        { topic: 'b', partition: 0 },
      ],
      maxTaskIdleMs: -1,
      now: 0,
    })
    task.markRestoring()
    task.initialize({
      engine,
      stateManager: {} as TaskStateManager,
      collector: {} as TaskRecordCollector,
      producer: {} as TaskProducer,
      transactional: undefined,
    })
    const raw = (topic: string, offset: number, value: string, brokerTime: number): RawRecord => ({
      topic,
      partition: 0,
      offset: String(offset),
      key: Buffer.from('k'),
      value: Buffer.from(value),
      timestamp: brokerTime,
      headers: {},
    })
    task.enqueue('a', 0, [raw('a', 0, '20', 1), raw('a', 1, '40', 2)])
    // the bad payload's broker timestamp is the latest of all: it must not hold partition b back
    task.enqueue('b', 0, [raw('b', 0, 'bad', 5000), raw('b', 1, '10', 1000), raw('b', 2, '30', 2000)])
    expect(await task.process(10, 0)).toBe(5)
    expect(out).toEqual(['handled', '10', '20', '30', '40'])
    expect(handled).toEqual(['b@0'])
  })

  it('(9) processValues: a fixed-key processor that forwards another key fails with a clear error', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S))
      .processValues<string>(
        () => {
          let ctx: ProcessorContext<string, string>
          const p: FixedKeyProcessor<string, string, string> = {
            init(c) {
              ctx = c
            },
            async process(r) {
              await ctx.forward({ ...r, value: r.value.toUpperCase() })
              if (r.value === 'rekey') await ctx.forward({ ...r, key: 'other' })
            },
          }
          return p
        },
        { name: 'upper' },
      )
      .to('out', { keySerde: S, valueSerde: S })
    const d = new TopologyTestDriver(b.build(), {}, 0)
    const input = d.createInputTopic('in', S, S)
    await input.pipeInput('k', 'ok', 0)
    expect(read(d)).toEqual([{ key: 'k', value: 'OK', timestamp: 0 }])
    const err = await input.pipeInput('k', 'rekey', 1).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(IllegalStateError)
    expect((err as Error).message).toContain(
      "processValues: processor 'upper' forwarded key 'other' for an input record with key 'k'; a fixed-key processor cannot change the key (Kafka Streams' FixedKeyRecord has no withKey): use process() to change keys",
    )
    await d.close().catch(() => undefined)
  })
})

/** The task engine of `builder`'s only sub-topology, partition 0, with in-memory stores. */
async function taskEngine(builder: StreamsBuilder) {
  const def = builder.build().resolve('fidelity')
  expect(def.subtopologies).toHaveLength(1)
  const engine = createTaskEngine({
    topology: def,
    subtopology: def.subtopologies[0]!,
    taskId: { subtopology: def.subtopologies[0]!.id, partition: 0 },
    stores: new InMemoryStoreProvider(),
    collector: { send: () => undefined },
    clock: () => 0,
  })
  await engine.init()
  return engine
}
