import { describe, expect, it } from 'vitest'
import { Consumed, Materialized, Serdes, StreamsBuilder, sessionWindowedSerde } from '../../topology/index.js'
import { TopologyTestDriver } from '../../lib/testing/index.js'
import { SessionWindows } from '../../topology/dsl/windows.js'
import { EmitStrategy } from '../../topology/dsl/suppressed.js'
import { sessionWindowAggregateSupplier } from '../../topology/processors/windowed/session-window-aggregate.js'
import type { Change } from '../../topology/processors/windowed/types.js'
import type { Windowed } from '../../topology/state/types.js'
import { MemoryKeyValueStore, MemorySessionStore, ProcessorHarness, type Forwarded } from './helpers/processor-harness.js'

const GAP_MS = 5 * 60 * 1000

async function sessions(windows: SessionWindows, emit = EmitStrategy.onWindowUpdate()) {
  const store = new MemorySessionStore<string, number>('sessions')
  const h = new ProcessorHarness<string, string, Windowed<string>, Change<number>>(
    sessionWindowAggregateSupplier({
      windows,
      storeName: 'sessions',
      emitStrategy: emit,
      initializer: () => 0,
      aggregator: (_k, _v, agg) => agg + 1,
      merger: (_k, a, b) => a + b,
      emitTimeStoreName: 'emit',
    }),
    new Map<string, any>([
      ['sessions', store],
      ['emit', new MemoryKeyValueStore<string, number>('emit')],
    ]),
  )
  return { h: await h.init(), store }
}

const kvt = (key: string, start: number, end: number, newValue: number | null, oldValue: number | null, timestamp: number) => ({
  key: { key, window: { startMs: start, endMs: end } },
  value: { newValue, oldValue },
  timestamp,
})
const strip = (out: Array<Forwarded<Windowed<string>, Change<number>>>) =>
  out.map(({ key, value, timestamp }) => ({ key, value, timestamp }))

describe('SessionWindows', () => {
  it('exposes gap and grace', () => {
    const w = SessionWindows.ofInactivityGapAndGrace(100, 7)
    expect(w.inactivityGap()).toBe(100)
    expect(w.gracePeriodMs()).toBe(7)
    expect(SessionWindows.ofInactivityGapWithNoGrace(100).gracePeriodMs()).toBe(0)
  })
})

describe('session window aggregation (KStreamSessionWindowAggregateProcessorTest)', () => {
  it('creates one session for records within the gap; results carry the session end as timestamp', async () => {
    const { h, store } = await sessions(SessionWindows.ofInactivityGapWithNoGrace(GAP_MS))
    await h.process('john', 'first', 0)
    await h.process('john', 'second', 500)
    expect(await store.fetchSession('john', 0, 500)).toBe(2)
    expect(await store.fetchSession('john', 0, 0)).toBeUndefined()
    expect(strip(h.drain())).toEqual([
      kvt('john', 0, 0, 1, null, 0),
      // extending a session replaces it: tombstone for [0,0] with its old value, then [0,500]
      kvt('john', 0, 0, null, 1, 0),
      kvt('john', 0, 500, 2, null, 500),
    ])
  })

  it('keeps separate sessions for records further apart than the gap', async () => {
    const { h, store } = await sessions(SessionWindows.ofInactivityGapWithNoGrace(GAP_MS))
    await h.process('john', 'first', 0)
    await h.process('john', 'second', GAP_MS + 1)
    expect(await store.fetchSession('john', 0, 0)).toBe(1)
    expect(await store.fetchSession('john', GAP_MS + 1, GAP_MS + 1)).toBe(1)
    expect(h.drain()).toHaveLength(2)
  })

  it('updates a session in place when a record has the same time (no tombstone)', async () => {
    const { h } = await sessions(SessionWindows.ofInactivityGapWithNoGrace(GAP_MS))
    await h.process('mel', 'first', 0)
    await h.process('mel', 'second', 0)
    expect(strip(h.drain())).toEqual([kvt('mel', 0, 0, 1, null, 0), kvt('mel', 0, 0, 2, null, 0)])
  })

  it('a record bridging two sessions merges them: a tombstone for each, then the merged session', async () => {
    // grace 20 keeps [0,0] open (0 + 10 + 20 >= 21)
    const { h, store } = await sessions(SessionWindows.ofInactivityGapAndGrace(10, 20))
    await h.process('k', 'a', 0)
    await h.process('k', 'b', 20)
    await h.process('k', 'c', 21)
    h.drain()
    // 10 is within 10 of [0,0] and of [20,21]
    await h.process('k', 'd', 10)
    expect(strip(h.drain())).toEqual([kvt('k', 0, 0, null, 1, 0), kvt('k', 20, 21, null, 2, 21), kvt('k', 0, 21, 4, null, 21)])
    const all = []
    for await (const s of store.all()) all.push(s)
    expect(all).toEqual([{ key: { key: 'k', window: { startMs: 0, endMs: 21 } }, value: 4 }])
  })

  it('shouldHandleMultipleSessionsAndMerging', async () => {
    const { h } = await sessions(SessionWindows.ofInactivityGapWithNoGrace(GAP_MS))
    await h.process('a', '1', 0)
    await h.process('b', '1', 0)
    await h.process('c', '1', 0)
    await h.process('d', '1', 0)
    await h.process('d', '2', GAP_MS / 2)
    await h.process('a', '2', GAP_MS + 1)
    await h.process('b', '2', GAP_MS + 1)
    await h.process('a', '3', GAP_MS + 1 + GAP_MS / 2)
    await h.process('c', '3', GAP_MS + 1 + GAP_MS / 2)
    expect(strip(h.drain())).toEqual([
      kvt('a', 0, 0, 1, null, 0),
      kvt('b', 0, 0, 1, null, 0),
      kvt('c', 0, 0, 1, null, 0),
      kvt('d', 0, 0, 1, null, 0),
      kvt('d', 0, 0, null, 1, 0),
      kvt('d', 0, GAP_MS / 2, 2, null, GAP_MS / 2),
      kvt('a', GAP_MS + 1, GAP_MS + 1, 1, null, GAP_MS + 1),
      kvt('b', GAP_MS + 1, GAP_MS + 1, 1, null, GAP_MS + 1),
      kvt('a', GAP_MS + 1, GAP_MS + 1, null, 1, GAP_MS + 1),
      kvt('a', GAP_MS + 1, GAP_MS + 1 + GAP_MS / 2, 2, null, GAP_MS + 1 + GAP_MS / 2),
      kvt('c', GAP_MS + 1 + GAP_MS / 2, GAP_MS + 1 + GAP_MS / 2, 1, null, GAP_MS + 1 + GAP_MS / 2),
    ])
  })

  it('shouldHandleMultipleSessionsAndMerging with onWindowClose: only closed sessions, once', async () => {
    const { h } = await sessions(SessionWindows.ofInactivityGapWithNoGrace(GAP_MS), EmitStrategy.onWindowClose())
    await h.process('a', '1', 0)
    await h.process('b', '1', 0)
    await h.process('c', '1', 0)
    await h.process('d', '1', 0)
    await h.process('d', '2', GAP_MS / 2)
    await h.process('a', '2', GAP_MS + 1)
    await h.process('b', '2', GAP_MS + 1)
    await h.process('a', '3', GAP_MS + 1 + GAP_MS / 2)
    await h.process('c', '3', GAP_MS + 1 + GAP_MS / 2)
    // close time = stream-time - gap = 1 + GAP/2: sessions ending before it are final
    expect(strip(h.drain())).toEqual([
      kvt('a', 0, 0, 1, null, 0),
      kvt('b', 0, 0, 1, null, 0),
      kvt('c', 0, 0, 1, null, 0),
      kvt('d', 0, GAP_MS / 2, 2, null, GAP_MS / 2),
    ])
    await h.process('z', 'x', GAP_MS + 2 + GAP_MS / 2) // close time advances by 1: nothing new closes
    expect(h.drain()).toEqual([])
  })

  it('drops and counts a late record with zero grace (session end + gap < stream-time)', async () => {
    const { h } = await sessions(SessionWindows.ofInactivityGapAndGrace(10, 0))
    await h.process('dummy', 'dummy', 0)
    await h.process('OnTime1', '1', 0)
    await h.process('dummy', 'dummy', 11)
    expect(h.dropped).toEqual([])
    await h.process('Late1', '1', 0)
    expect(h.dropped).toEqual(['late'])
  })

  it('accepts a record at the edge of grace and drops it one millisecond later', async () => {
    const { h } = await sessions(SessionWindows.ofInactivityGapAndGrace(10, 1))
    await h.process('dummy', 'dummy', 0)
    await h.process('OnTime1', '1', 0)
    await h.process('dummy', 'dummy', 11)
    await h.process('OnTime2', '1', 0)
    expect(h.dropped).toEqual([])
    await h.process('dummy', 'dummy', 12)
    h.drain()
    await h.process('Late1', '1', 0)
    expect(h.drain()).toEqual([])
    expect(h.dropped).toEqual(['late'])
  })
})

describe('session windows through the TopologyTestDriver', () => {
  const S = Serdes.String()
  const L = Serdes.Long()

  it('a bridging record merges sessions: tombstones for the replaced sessions, then the merged one', async () => {
    const b = new StreamsBuilder()
    b.stream('clicks', Consumed.with(S, S))
      .groupByKey()
      .windowedBy(SessionWindows.ofInactivityGapAndGrace(10, 20))
      .aggregate(
        (): string[] => [],
        (_k, page, pages) => [...pages, page],
        (_k, a, b2) => [...a, ...b2].sort(),
        Materialized.as<string, string[]>('sessions').withValueSerde(Serdes.Json<string[]>()),
      )
      .toStream()
      .to('out', { keySerde: sessionWindowedSerde(S), valueSerde: Serdes.Json<string[] | null>() })
    const d = new TopologyTestDriver(b.build(), {}, 0)
    const input = d.createInputTopic('clicks', S, S)
    await input.pipeInput('u', 'home', 0)
    await input.pipeInput('u', 'cart', 18) // more than 10 after [0,0]: a new session
    await input.pipeInput('u', 'help', 9) // within 10 of [0,0] and of [18,18]; [0,0] is open until 0 + 10 + 20
    const out = d.createOutputTopic('out', sessionWindowedSerde(S), Serdes.Json<string[] | null>()).readRecordsToList()
    expect(out.map((r) => [r.key, r.value, r.timestamp])).toEqual([
      [{ key: 'u', window: { startMs: 0, endMs: 0 } }, ['home'], 0],
      [{ key: 'u', window: { startMs: 18, endMs: 18 } }, ['cart'], 18],
      [{ key: 'u', window: { startMs: 0, endMs: 0 } }, null, 0],
      [{ key: 'u', window: { startMs: 18, endMs: 18 } }, null, 18],
      [{ key: 'u', window: { startMs: 0, endMs: 18 } }, ['cart', 'home', 'help'], 18],
    ])
    const store = d.getSessionStore<string, string[]>('sessions')
    const sessions = []
    for await (const s of store.fetch('u')) sessions.push(s)
    expect(sessions).toEqual([{ key: { key: 'u', window: { startMs: 0, endMs: 18 } }, value: ['cart', 'home', 'help'] }])
    await d.close()
  })

  it('count with onWindowClose emits each session once it is closed', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S))
      .groupByKey()
      .windowedBy(SessionWindows.ofInactivityGapAndGrace(5, 2))
      .emitStrategy(EmitStrategy.onWindowClose())
      .count()
      .toStream()
      .map((k, v) => ({ key: `${k.key}@${k.window.startMs}/${k.window.endMs}`, value: v }))
      .to('out', { keySerde: S, valueSerde: L })
    const d = new TopologyTestDriver(b.build(), {}, 0)
    const input = d.createInputTopic('in', S, S)
    const out = d.createOutputTopic('out', S, L)
    await input.pipeInput('a', 'x', 0)
    await input.pipeInput('a', 'x', 4)
    await input.pipeInput('b', 'x', 6)
    await input.pipeInput('b', 'x', 11) // close time 11 - 2 - 5 = 4: [0,4] needs end < 4
    expect(out.readKeyValuesToList()).toEqual([])
    await input.pipeInput('b', 'x', 12) // close time 5: a@[0,4] is final
    expect(out.readRecordsToList().map((r) => [r.key, r.value, r.timestamp])).toEqual([['a@0/4', 2, 4]])
    await input.pipeInput('a', 'x', 40)
    expect(out.readKeyValuesToList()).toEqual([{ key: 'b@6/12', value: 3 }])
    await d.close()
  })
})

describe('closed sessions are final', () => {
  it('a record near a closed session starts a new session instead of merging into it', async () => {
    const { h } = await sessions(SessionWindows.ofInactivityGapWithNoGrace(10))
    await h.process('u', 'a', 0)
    await h.process('u', 'b', 18) // closes [0,0]: 0 + 10 < 18
    h.drain()
    await h.process('u', 'c', 9) // within the gap of [0,0], but [0,0] is closed; [9,9] merges with [18,18]
    expect(strip(h.drain())).toEqual([kvt('u', 18, 18, null, 1, 18), kvt('u', 9, 18, 2, null, 18)])
    expect(h.dropped).toEqual([])
  })
})
