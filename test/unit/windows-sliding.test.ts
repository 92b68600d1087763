import { describe, expect, it } from 'vitest'
import { Consumed, Grouped, Materialized, Serdes, StreamsBuilder, timeWindowedSerde } from '../../topology/index.js'
import { TopologyTestDriver } from '../../lib/testing/index.js'
import { SlidingWindows } from '../../topology/dsl/windows.js'
import { EmitStrategy } from '../../topology/dsl/suppressed.js'
import { slidingWindowAggregateSupplier } from '../../topology/processors/windowed/sliding-window-aggregate.js'
import type { Change } from '../../topology/processors/windowed/types.js'
import type { ValueAndTimestamp, Windowed } from '../../topology/state/types.js'
import { MemoryKeyValueStore, MemoryWindowStore, ProcessorHarness, type Forwarded } from './helpers/processor-harness.js'

async function sliding<VA>(
  windows: SlidingWindows,
  initializer: () => VA,
  aggregator: (k: string, v: string, a: VA) => VA,
  emit = EmitStrategy.onWindowUpdate(),
) {
  const store = new MemoryWindowStore<string, ValueAndTimestamp<VA>>('agg', windows.timeDifference())
  const h = new ProcessorHarness<string, string, Windowed<string>, Change<VA>>(
    slidingWindowAggregateSupplier({ windows, storeName: 'agg', emitStrategy: emit, initializer, aggregator, emitTimeStoreName: 'emit' }),
    new Map<string, any>([
      ['agg', store],
      ['emit', new MemoryKeyValueStore<string, number>('emit')],
    ]),
  )
  return { h: await h.init(), store }
}

const concat = (_k: string, v: string, agg: string): string => `${agg}+${v}`

/** Output grouped by window start as sets of "value@timestamp", as KStreamSlidingWindowAggregateTest gathers it. */
function gather(out: Array<Forwarded<Windowed<string>, Change<string>>>): Record<number, string[]> {
  const m: Record<number, Set<string>> = {}
  for (const r of out) {
    expect(r.key.window.endMs - r.key.window.startMs).toBeGreaterThanOrEqual(0)
    ;(m[r.key.window.startMs] ??= new Set()).add(`${r.value.newValue}@${r.timestamp}`)
  }
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, [...v].sort()]))
}

const sorted = (xs: string[]) => [...xs].sort()

describe('SlidingWindows', () => {
  it('exposes time difference and grace', () => {
    const w = SlidingWindows.ofTimeDifferenceAndGrace(10, 5)
    expect(w.timeDifference()).toBe(10)
    expect(w.gracePeriodMs()).toBe(5)
    expect(SlidingWindows.ofTimeDifferenceWithNoGrace(10).gracePeriodMs()).toBe(0)
  })
})

describe('sliding window aggregation (KStreamSlidingWindowAggregateTest)', () => {
  it('testAggregateSmallInput: left windows per record, right windows only when a later record falls inside', async () => {
    const { h } = await sliding(SlidingWindows.ofTimeDifferenceAndGrace(10, 5), () => '0', concat)
    const input: Array<[string, number]> = [
      ['1', 10],
      ['2', 10],
      ['3', 14],
      ['4', 15],
      ['5', 20],
      ['6', 22],
      ['7', 30],
    ]
    for (const [v, t] of input) await h.process('A', v, t)
    const out = h.drain()
    // every window spans d = 10 with both ends included
    for (const r of out) expect(r.key.window.endMs - r.key.window.startMs).toBe(10)
    expect(gather(out)).toEqual({
      0: sorted(['0+1@10', '0+1+2@10']),
      4: ['0+1+2+3@14'],
      5: ['0+1+2+3+4@15'],
      10: ['0+1+2+3+4+5@20'],
      11: sorted(['0+3@14', '0+3+4@15', '0+3+4+5@20']),
      12: ['0+3+4+5+6@22'],
      15: sorted(['0+4@15', '0+4+5@20', '0+4+5+6@22']),
      16: sorted(['0+5@20', '0+5+6@22']),
      20: ['0+5+6+7@30'],
      21: sorted(['0+6@22', '0+6+7@30']),
      23: ['0+7@30'],
    })
    expect(h.dropped).toEqual([])
  })

  it('testAggregateSmallInput with onWindowClose: only closed windows, once, with final values', async () => {
    const { h } = await sliding(SlidingWindows.ofTimeDifferenceAndGrace(10, 5), () => '0', concat, EmitStrategy.onWindowClose())
    const input: Array<[string, number]> = [
      ['1', 10],
      ['2', 10],
      ['3', 14],
      ['4', 15],
      ['5', 20],
      ['6', 22],
      ['7', 30],
    ]
    for (const [v, t] of input) await h.process('A', v, t)
    // stream-time 30, grace 5: windows with end < 25 are closed (starts <= 14)
    const out = h.drain()
    expect(out.map((r) => r.value.oldValue)).toEqual(out.map(() => null))
    expect(gather(out)).toEqual({
      0: ['0+1+2@10'],
      4: ['0+1+2+3@14'],
      5: ['0+1+2+3+4@15'],
      10: ['0+1+2+3+4+5@20'],
      11: ['0+3+4+5@20'],
      12: ['0+3+4+5+6@22'],
    })
  })

  it('testEarlyRecordsSmallInput: records before d share the window [0, d]', async () => {
    const { h } = await sliding(SlidingWindows.ofTimeDifferenceAndGrace(50, 0), () => '0', concat)
    const input: Array<[string, number]> = [
      ['1', 0],
      ['2', 5],
      ['3', 6],
      ['4', 3],
      ['5', 13],
      ['6', 10],
      ['7', 70],
    ]
    for (const [v, t] of input) await h.process('A', v, t)
    expect(gather(h.drain())).toEqual({
      0: sorted(['0+1@0', '0+1+2@5', '0+1+2+3@6', '0+1+2+3+4@6', '0+1+2+3+4+5@13', '0+1+2+3+4+5+6@13']),
      1: sorted(['0+2@5', '0+2+3@6', '0+2+3+4@6', '0+2+3+4+5@13', '0+2+3+4+5+6@13']),
      4: sorted(['0+2+3@6', '0+2+3+5@13', '0+2+3+5+6@13']),
      6: sorted(['0+3@6', '0+3+5@13', '0+3+5+6@13']),
      7: sorted(['0+5@13', '0+5+6@13']),
      11: ['0+5@13'],
      20: ['0+7@70'],
    })
  })

  it('drops records whose windows are all closed, and counts them', async () => {
    const { h } = await sliding(SlidingWindows.ofTimeDifferenceAndGrace(10, 5), () => '0', concat)
    await h.process('A', '1', 100)
    h.drain()
    // close time 95: a record at 84 has windows ending at most at 94 < 95
    await h.process('A', '2', 84)
    expect(h.drain()).toEqual([])
    expect(h.dropped).toEqual(['late'])
  })

  it('matches a brute-force model of sliding windows on random input', async () => {
    const d = 10
    let seed = 42
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 1000) / 1000
    for (let round = 0; round < 20; round++) {
      const { h, store } = await sliding(
        SlidingWindows.ofTimeDifferenceAndGrace(d, 10_000),
        (): number[] => [],
        (_k, v, agg: number[]) => [...agg, Number(v)].sort((a, b) => a - b),
      )
      const ts: number[] = []
      for (let i = 0; i < 25; i++) {
        const t = Math.floor(rand() * 60)
        ts.push(t)
        await h.process('k', String(t), t)
      }
      // Model: the window [0, d] if any record is at or before d; a left window [t - d, t] per
      // record at t >= d; a right window [t + 1, t + 1 + d] per record with a later record in it.
      const starts = new Set<number>()
      for (const t of ts) {
        if (t <= d) starts.add(0)
        else starts.add(t - d)
        if (ts.some((r) => r > t && r <= t + 1 + d)) starts.add(t + 1)
      }
      const expected = [...starts]
        .sort((a, b) => a - b)
        .map((s) => {
          const inside = ts.filter((t) => t >= s && t <= s + d).sort((a, b) => a - b)
          return { start: s, values: inside, timestamp: Math.max(...inside) }
        })
      const actual: Array<{ start: number; values: number[]; timestamp: number }> = []
      for await (const kv of store.fetchRange('k', 0, 1000))
        actual.push({ start: kv.key, values: kv.value.value, timestamp: kv.value.timestamp })
      expect(actual).toEqual(expected)
    }
  })
})

describe('sliding windows through the TopologyTestDriver', () => {
  const S = Serdes.String()
  it('testAggregateSmallInput via the DSL (aggregate with Materialized serdes)', async () => {
    const b = new StreamsBuilder()
    b.stream('topic', Consumed.with(S, S))
      .groupByKey(Grouped.with(S, S))
      .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(10, 5))
      .aggregate(
        () => '0',
        (_k, v, agg) => `${agg}+${v}`,
        Materialized.as<string, string>('store-name').withValueSerde(S),
      )
      .toStream()
      .map((k, v) => ({ key: `${k.window.startMs}`, value: `${v}` }))
      .to('out', { keySerde: S, valueSerde: S })
    const d = new TopologyTestDriver(b.build(), {}, 0)
    const input = d.createInputTopic('topic', S, S)
    for (const [v, t] of [
      ['1', 10],
      ['2', 10],
      ['3', 14],
      ['4', 15],
      ['5', 20],
      ['6', 22],
      ['7', 30],
    ] as const)
      await input.pipeInput('A', v, t)
    const got: Record<number, string[]> = {}
    for (const r of d.createOutputTopic('out', S, S).readRecordsToList()) (got[Number(r.key)] ??= []).push(`${r.value}@${r.timestamp}`)
    for (const k of Object.keys(got)) got[Number(k)]!.sort()
    expect(got).toEqual({
      0: sorted(['0+1@10', '0+1+2@10']),
      4: ['0+1+2+3@14'],
      5: ['0+1+2+3+4@15'],
      10: ['0+1+2+3+4+5@20'],
      11: sorted(['0+3@14', '0+3+4@15', '0+3+4+5@20']),
      12: ['0+3+4+5+6@22'],
      15: sorted(['0+4@15', '0+4+5@20', '0+4+5+6@22']),
      16: sorted(['0+5@20', '0+5+6@22']),
      20: ['0+5+6+7@30'],
      21: sorted(['0+6@22', '0+6+7@30']),
      23: ['0+7@30'],
    })
    await d.close()
  })

  it('shouldLogAndMeterWhenSkippingExpiredWindowByGrace: late windows are dropped and counted', async () => {
    const b = new StreamsBuilder()
    b.stream('topic', Consumed.with(S, S))
      .groupByKey(Grouped.with(S, S))
      .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(10, 90))
      .aggregate(
        () => '0',
        (_k, v, agg) => `${agg}+${v}`,
        Materialized.with<string, string>(S, S),
      )
      .toStream()
      .to('output', { keySerde: timeWindowedSerde(S, 10), valueSerde: S })
    const d = new TopologyTestDriver(b.build(), {}, 0)
    const input = d.createInputTopic('topic', S, S)
    await input.pipeInput('k', '100', 200)
    // close time is now 200 - 90 = 110: the left windows [t - 10, t] of 100..105 end before it,
    // and no earlier windows exist to give them right windows
    for (const t of [100, 101, 102, 103, 104, 105]) await input.pipeInput('k', String(t - 100), t)
    await input.pipeInput('k', '6', 15) // even its right window [15, 25] is closed
    await input.pipeInput('k', '101', 300)
    await input.pipeInput('k', '102', 400)
    expect(d.droppedRecords('late')).toBe(7)
    expect(
      d
        .createOutputTopic('output', timeWindowedSerde(S, 10), S)
        .readRecordsToList()
        .map((r) => [r.key, r.value, r.timestamp]),
    ).toEqual([
      [{ key: 'k', window: { startMs: 190, endMs: 200 } }, '0+100', 200],
      [{ key: 'k', window: { startMs: 290, endMs: 300 } }, '0+101', 300],
      [{ key: 'k', window: { startMs: 390, endMs: 400 } }, '0+102', 400],
    ])
    await d.close()
  })
})
