import { describe, expect, it } from 'vitest'
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
const strip = (out: Array<Forwarded<Windowed<string>, Change<number>>>) => out.map(({ key, value, timestamp }) => ({ key, value, timestamp }))

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
    const { h, store } = await sessions(SessionWindows.ofInactivityGapWithNoGrace(10))
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
