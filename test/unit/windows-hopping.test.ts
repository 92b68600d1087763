import { describe, expect, it } from 'vitest'
import { Consumed, Materialized, Serdes, StreamsBuilder } from '../../topology/index.js'
import { TopologyTestDriver } from '../../lib/testing/index.js'
import { TimeWindows } from '../../topology/dsl/windows.js'
import { EmitStrategy } from '../../topology/dsl/suppressed.js'
import { timeWindowAggregateSupplier } from '../../topology/processors/windowed/time-window-aggregate.js'
import type { Change } from '../../topology/processors/windowed/types.js'
import type { ValueAndTimestamp, Windowed } from '../../topology/state/types.js'
import { MemoryWindowStore, ProcessorHarness } from './helpers/processor-harness.js'

const concat = (_k: string, v: string, agg: string): string => `${agg}+${v}`

async function hoppingHarness(windows: TimeWindows, emit = EmitStrategy.onWindowUpdate()) {
  const store = new MemoryWindowStore<string, ValueAndTimestamp<string>>('agg', windows.size())
  const h = new ProcessorHarness<string, string, Windowed<string>, Change<string>>(
    timeWindowAggregateSupplier({ windows, storeName: 'agg', emitStrategy: emit, initializer: () => '0', aggregator: concat }),
    new Map([['agg', store]]),
  )
  return { h: await h.init(), store }
}

const fmt = (r: { key: Windowed<string>; value: Change<string>; timestamp: number }) =>
  `${r.key.key}@[${r.key.window.startMs},${r.key.window.endMs}) ${r.value.newValue} t=${r.timestamp}`

describe('TimeWindows.advanceBy (hopping)', () => {
  it('puts a record in size/advance windows aligned to the epoch', () => {
    const w = TimeWindows.ofSizeWithNoGrace(10).advanceBy(5)
    // 12 is in [5,15) and [10,20)
    expect([...w.windowsFor(12).values()]).toEqual([
      { startMs: 5, endMs: 15 },
      { startMs: 10, endMs: 20 },
    ])
    // size 60, advance 20: three windows [40,100), [60,120), [80,140) contain 95
    expect([...TimeWindows.ofSizeWithNoGrace(60).advanceBy(20).windowsFor(95).keys()]).toEqual([40, 60, 80])
  })

  it('never creates windows with negative starts', () => {
    const w = TimeWindows.ofSizeWithNoGrace(10).advanceBy(5)
    expect([...w.windowsFor(3).keys()]).toEqual([0])
    expect([...w.windowsFor(0).keys()]).toEqual([0])
  })

  it('excludes the window end', () => {
    const w = TimeWindows.ofSizeWithNoGrace(10).advanceBy(5)
    // 10 is the end of [0,10): not in it
    expect([...w.windowsFor(10).keys()]).toEqual([5, 10])
  })

  it('rejects an advance larger than the size or not positive', () => {
    expect(() => TimeWindows.ofSizeWithNoGrace(10).advanceBy(11)).toThrow(/advanceMs must be in \(0, sizeMs=10\]/)
    expect(() => TimeWindows.ofSizeWithNoGrace(10).advanceBy(0)).toThrow(/advanceMs must be larger than zero/)
    expect(() => TimeWindows.ofSizeWithNoGrace(10).advanceBy(-1)).toThrow(/advanceMs must not be negative/)
  })

  it('is immutable: advanceBy returns a new object', () => {
    const tumbling = TimeWindows.ofSizeAndGrace(10, 3)
    const hopping = tumbling.advanceBy(5)
    expect(tumbling.advanceMs).toBe(10)
    expect(hopping.advanceMs).toBe(5)
    expect(hopping.gracePeriodMs()).toBe(3)
    expect(Object.isFrozen(hopping)).toBe(true)
  })
})

describe('hopping window aggregation (KStreamWindowAggregateTest.testAggBasic)', () => {
  it('updates every window containing the record, in-order and out-of-order within grace', async () => {
    const { h } = await hoppingHarness(TimeWindows.ofSizeAndGrace(10, 100).advanceBy(5))
    const input: Array<[string, string, number]> = [
      ['A', '1', 0],
      ['B', '2', 1],
      ['C', '3', 2],
      ['D', '4', 3],
      ['A', '1', 4],
      ['A', '1', 5],
      ['B', '2', 6],
      ['D', '4', 7],
      ['B', '2', 8],
      ['C', '3', 9],
      ['A', '1', 10],
      ['B', '2', 11],
      ['D', '4', 12],
      ['B', '2', 13],
      ['C', '3', 14],
      ['B', '1', 3],
      ['B', '2', 2],
      ['B', '3', 9],
    ]
    for (const [k, v, t] of input) await h.process(k, v, t)
    expect(h.drain().map(fmt)).toEqual([
      'A@[0,10) 0+1 t=0',
      'B@[0,10) 0+2 t=1',
      'C@[0,10) 0+3 t=2',
      'D@[0,10) 0+4 t=3',
      'A@[0,10) 0+1+1 t=4',
      'A@[0,10) 0+1+1+1 t=5',
      'A@[5,15) 0+1 t=5',
      'B@[0,10) 0+2+2 t=6',
      'B@[5,15) 0+2 t=6',
      'D@[0,10) 0+4+4 t=7',
      'D@[5,15) 0+4 t=7',
      'B@[0,10) 0+2+2+2 t=8',
      'B@[5,15) 0+2+2 t=8',
      'C@[0,10) 0+3+3 t=9',
      'C@[5,15) 0+3 t=9',
      'A@[5,15) 0+1+1 t=10',
      'A@[10,20) 0+1 t=10',
      'B@[5,15) 0+2+2+2 t=11',
      'B@[10,20) 0+2 t=11',
      'D@[5,15) 0+4+4 t=12',
      'D@[10,20) 0+4 t=12',
      'B@[5,15) 0+2+2+2+2 t=13',
      'B@[10,20) 0+2+2 t=13',
      'C@[5,15) 0+3+3 t=14',
      'C@[10,20) 0+3 t=14',
      // out of order, within grace: timestamps stay the window maximum
      'B@[0,10) 0+2+2+2+1 t=8',
      'B@[0,10) 0+2+2+2+1+2 t=8',
      'B@[0,10) 0+2+2+2+1+2+3 t=9',
      'B@[5,15) 0+2+2+2+2+3 t=13',
    ])
    expect(h.dropped).toEqual([])
  })

  it('forwards the previous aggregate as oldValue', async () => {
    const { h } = await hoppingHarness(TimeWindows.ofSizeWithNoGrace(10).advanceBy(5))
    await h.process('A', 'x', 6)
    await h.process('A', 'y', 7)
    const out = h.drain()
    expect(out.map((r) => [r.key.window.startMs, r.value.newValue, r.value.oldValue])).toEqual([
      [0, '0+x', null],
      [5, '0+x', null],
      [0, '0+x+y', '0+x'],
      [5, '0+x+y', '0+x'],
    ])
  })

  it('drops a record only for the hopping windows that are closed, counting each', async () => {
    // size 10, advance 5, grace 0. Stream-time 15 closes [0,10) and [5,15) (end <= 15).
    const { h } = await hoppingHarness(TimeWindows.ofSizeWithNoGrace(10).advanceBy(5))
    await h.process('A', 'a', 15)
    h.drain()
    // 12 is in [5,15) (closed) and [10,20) (open)
    await h.process('A', 'b', 12)
    expect(h.drain().map(fmt)).toEqual(['A@[10,20) 0+a+b t=15'])
    expect(h.dropped).toEqual(['late'])
  })
})

describe('hopping windows through the TopologyTestDriver', () => {
  const S = Serdes.String()
  it('a record lands in size/advance windows; results and the store agree', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S))
      .groupByKey()
      .windowedBy(TimeWindows.ofSizeAndGrace(60, 100).advanceBy(20))
      .reduce((a, v) => a + v, Materialized.as<string, string>('hops').withValueSerde(S))
      .toStream()
      .map((k, v) => ({ key: `${k.key}[${k.window.startMs},${k.window.endMs})`, value: v }))
      .to('out', { keySerde: S, valueSerde: S })
    const d = new TopologyTestDriver(b.build(), {}, 0)
    const input = d.createInputTopic('in', S, S)
    await input.pipeInput('k', 'a', 95) // windows starting 40, 60, 80
    await input.pipeInput('k', 'b', 10) // windows starting 0 (only: no negative starts)
    await input.pipeInput('k', 'c', 45) // windows starting 0, 20, 40
    expect(
      d
        .createOutputTopic('out', S, S)
        .readRecordsToList()
        .map((r) => [r.key, r.value, r.timestamp]),
    ).toEqual([
      ['k[40,100)', 'a', 95],
      ['k[60,120)', 'a', 95],
      ['k[80,140)', 'a', 95],
      ['k[0,60)', 'b', 10],
      ['k[0,60)', 'bc', 45],
      ['k[20,80)', 'c', 45],
      ['k[40,100)', 'ac', 95],
    ])
    const store = d.getWindowStore<string, string>('hops')
    const all: Array<[number, string]> = []
    for await (const kv of store.fetchRange('k', 0, 200)) all.push([kv.key, kv.value])
    expect(all).toEqual([
      [0, 'bc'],
      [20, 'c'],
      [40, 'ac'],
      [60, 'a'],
      [80, 'a'],
    ])
    await d.close()
  })
})
