import { describe, expect, it } from 'vitest'
import { Consumed, Grouped, Materialized, Serdes, StreamsBuilder } from '../../topology/index.js'
import { TopologyTestDriver } from '../../lib/testing/index.js'
import { TimeWindows } from '../../topology/dsl/windows.js'
import { EmitStrategy } from '../../topology/dsl/suppressed.js'
import { timeWindowAggregateSupplier } from '../../topology/processors/windowed/time-window-aggregate.js'
import type { Change } from '../../topology/processors/windowed/types.js'
import type { ValueAndTimestamp, Windowed } from '../../topology/state/types.js'
import { MemoryWindowStore, ProcessorHarness } from './helpers/processor-harness.js'

const MIN = 60_000
/** 2024-01-01 hh:mm UTC in epoch milliseconds (a multiple of 15 minutes at :00/:15/:30/:45). */
const at = (hh: number, mm: number): number => Date.UTC(2024, 0, 1, hh, mm)

async function counter(windows: TimeWindows, emit = EmitStrategy.onWindowUpdate()) {
  const h = new ProcessorHarness<string, string, Windowed<string>, Change<number>>(
    timeWindowAggregateSupplier({
      windows,
      storeName: 'agg',
      emitStrategy: emit,
      initializer: () => 0,
      aggregator: (_k, _v, n: number) => n + 1,
    }),
    new Map([['agg', new MemoryWindowStore<string, ValueAndTimestamp<number>>('agg', windows.size())]]),
  )
  return h.init()
}

describe('grace period', () => {
  it('accepts out-of-order records inside grace', async () => {
    const h = await counter(TimeWindows.ofSizeAndGrace(10, 5))
    await h.process('k', 'v', 2)
    await h.process('k', 'v', 14) // stream-time 14 < 10 + 5: [0,10) still open
    await h.process('k', 'v', 9)
    const out = h.drain()
    expect(out.at(-1)).toMatchObject({
      key: { key: 'k', window: { startMs: 0, endMs: 10 } },
      value: { newValue: 2, oldValue: 1 },
      timestamp: 9,
    })
    expect(h.dropped).toEqual([])
  })

  it('closes a window exactly when windowEnd + grace <= stream-time, and counts the drops', async () => {
    const h = await counter(TimeWindows.ofSizeAndGrace(10, 5))
    await h.process('k', 'v', 2)
    await h.process('k', 'v', 15) // 10 + 5 <= 15: [0,10) closed
    h.drain()
    await h.process('k', 'v', 9)
    await h.process('other', 'v', 0) // closed for every key: stream-time is per task/processor
    expect(h.drain()).toEqual([])
    expect(h.dropped).toEqual(['late', 'late'])
  })

  it('with no grace, a window closes as soon as stream-time reaches its end', async () => {
    const h = await counter(TimeWindows.ofSizeWithNoGrace(10))
    await h.process('k', 'v', 10)
    await h.process('k', 'v', 9)
    expect(h.dropped).toEqual(['late'])
  })

  it("Spark's watermark example: 15-minute windows, 30 minutes grace", async () => {
    const h = await counter(TimeWindows.ofSizeAndGrace(15 * MIN, 30 * MIN))
    await h.process('dog', 'owl', at(10, 2))
    await h.process('dog', 'owl', at(10, 13))
    // 10:40: 10:15 + 30 min = 10:45 > 10:40, so a late 10:14 still counts in 10:00-10:15
    await h.process('dog', 'owl', at(10, 40))
    await h.process('dog', 'owl', at(10, 14))
    expect(h.drain().at(-1)).toMatchObject({
      key: { key: 'dog', window: { startMs: at(10, 0), endMs: at(10, 15) } },
      value: { newValue: 3, oldValue: 2 },
      timestamp: at(10, 14),
    })
    // 10:48 moves stream-time past 10:15 + 30 min: the 10:00-10:15 window is closed
    await h.process('dog', 'owl', at(10, 48))
    h.drain()
    await h.process('dog', 'owl', at(10, 14))
    expect(h.drain()).toEqual([])
    expect(h.dropped).toEqual(['late'])
    // 10:16 falls in 10:15-10:30, which closes only at 11:00: still counted
    await h.process('dog', 'owl', at(10, 16))
    expect(h.drain()).toEqual([
      {
        key: { key: 'dog', window: { startMs: at(10, 15), endMs: at(10, 30) } },
        value: { newValue: 1, oldValue: null },
        timestamp: at(10, 16),
        headers: {},
      },
    ])
    expect(h.dropped).toEqual(['late'])
  })
})

describe('grace through the TopologyTestDriver', () => {
  const S = Serdes.String()
  const L = Serdes.Long()

  it("Spark's watermark example: a record at 10:48 closes 10:00-10:15, so a later 10:14 is dropped (and counted) while 10:16 counts", async () => {
    const b = new StreamsBuilder()
    b.stream('words', Consumed.with(S, S))
      .groupBy((_k: string, word: string) => word, Grouped.with(S, S))
      .windowedBy(TimeWindows.ofSizeAndGrace(15 * MIN, 30 * MIN))
      .count(Materialized.as('word-counts'))
      .toStream()
      .map((w, n) => ({
        key: `${w.key} ${new Date(w.window.startMs).toISOString().slice(11, 16)}-${new Date(w.window.endMs).toISOString().slice(11, 16)}`,
        value: n,
      }))
      .to('counts', { keySerde: S, valueSerde: L })
    const d = new TopologyTestDriver(b.build(), {}, 0)
    const input = d.createInputTopic('words', S, S)
    const out = d.createOutputTopic('counts', S, L)
    await input.pipeInput(null, 'dog', at(10, 7))
    await input.pipeInput(null, 'owl', at(10, 13))
    await input.pipeInput(null, 'dog', at(10, 48)) // stream-time 10:48 = 10:15 + 30 min + 3 min
    await input.pipeInput(null, 'dog', at(10, 14)) // late for 10:00-10:15: dropped
    await input.pipeInput(null, 'dog', at(10, 16)) // 10:15-10:30 closes at 11:00: counted
    expect(out.readRecordsToList().map((r) => [r.key, r.value, r.timestamp])).toEqual([
      ['dog 10:00-10:15', 1, at(10, 7)],
      ['owl 10:00-10:15', 1, at(10, 13)],
      ['dog 10:45-11:00', 1, at(10, 48)],
      ['dog 10:15-10:30', 1, at(10, 16)],
    ])
    expect(d.droppedRecords('late')).toBe(1)
    const store = d.getTimestampedWindowStore<string, number>('word-counts')
    expect(await store.fetch('dog', at(10, 15))).toEqual({ value: 1, timestamp: at(10, 16) })
    expect(await store.fetch('dog', at(10, 45))).toEqual({ value: 1, timestamp: at(10, 48) })
    await d.close()
  })

  it('an out-of-order record inside grace updates its window; the same record beyond grace is dropped and counted', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S)).groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(10, 5)).count(Materialized.as('c'))
    const d = new TopologyTestDriver(b.build(), {}, 0)
    const input = d.createInputTopic('in', S, S)
    await input.pipeInput('k', 'v', 3)
    await input.pipeInput('k', 'v', 14) // [0,10) closes at 15
    await input.pipeInput('k', 'v', 8)
    const store = d.getTimestampedWindowStore<string, number>('c')
    expect(await store.fetch('k', 0)).toEqual({ value: 2, timestamp: 8 })
    await input.pipeInput('k', 'v', 15)
    await input.pipeInput('k', 'v', 9)
    expect(await store.fetch('k', 0)).toEqual({ value: 2, timestamp: 8 })
    expect(d.droppedRecords('late')).toBe(1)
    expect(d.metrics().droppedRecordsByReason).toEqual({ late: 1 })
    await d.close()
  })
})
