import { describe, expect, it } from 'vitest'
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
    timeWindowAggregateSupplier({ windows, storeName: 'agg', emitStrategy: emit, initializer: () => 0, aggregator: (_k, _v, n: number) => n + 1 }),
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
    expect(out.at(-1)).toMatchObject({ key: { key: 'k', window: { startMs: 0, endMs: 10 } }, value: { newValue: 2, oldValue: 1 }, timestamp: 9 })
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
