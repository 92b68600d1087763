/**
 * The metered store layer (lib/state/metered.ts): Kafka Streams' state-level sensors per store
 * operation at DEBUG, tagged `<store-type>-state-id`, and no wrapping at INFO.
 */
import { describe, expect, it } from 'vitest'
import { meteredStoreProvider } from '../../lib/state/metered.js'
import { StreamsMetrics } from '../../lib/metrics/streams-metrics.js'
import { findMetrics, metricValue } from '../../lib/metrics/registry.js'
import { InMemoryStoreProvider } from '../../topology/state/memory.js'
import { createTaskEngine, type TaskEngine } from '../../lib/internals.js'
import { Consumed, Materialized, Serdes, StreamsBuilder } from '../../lib/index.js'
import type { StoreDef } from '../../topology/state/types.js'

const B = (s: string) => Buffer.from(s)
const def = (name: string, type: StoreDef['type'], persistent = true): StoreDef => ({
  name,
  type,
  loggingEnabled: true,
  logConfig: {},
  cachingEnabled: false,
  persistent,
  retentionMs: 60_000,
  windowSizeMs: 1_000,
})
async function drain<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

describe('metered store layer', () => {
  it('records put/get/delete/put-all/range/flush of a key-value store, fetch of window and session stores, remove of a session', async () => {
    const metrics = new StreamsMetrics({ clientId: 'c', recordingLevel: 'DEBUG', clock: () => 5_000 })
    const task = metrics.task('t1', '0_0')
    const p = meteredStoreProvider(new InMemoryStoreProvider(), task)
    const kv = await p.keyValue(def('counts', 'keyValue'))
    await kv.put(B('a'), B('1'))
    await kv.put(B('b'), B('2'))
    await kv.put(B('a'), null)
    await kv.putAll([[B('c'), B('3')]])
    expect((await kv.get(B('b')))?.toString()).toBe('2')
    expect((await drain(kv.range())).map(([k]) => k.toString())).toEqual(['b', 'c'])
    await kv.flush()
    expect(kv.name).toBe('counts')
    const v = (name: string, tags: Record<string, string>) => metricValue(metrics.metrics(), name, tags)
    // Kafka's store sensors have rate and latency only; on a frozen clock a rate is count / window,
    // so counts compare as rates: one call's rate is the unit
    await kv.get(B('zz'))
    const one = Number(v('get-rate', { 'leveldb-state-id': 'counts' })) / 2
    expect(one).toBeGreaterThan(0)
    const n = (name: string, tags: Record<string, string>) => Number(v(name.replace(/-total$/, '-rate'), tags)) / one
    const kvTag = { 'task-id': '0_0', 'leveldb-state-id': 'counts' }
    expect(n('put-total', kvTag)).toBe(2)
    expect(n('delete-total', kvTag)).toBe(1)
    expect(n('put-all-total', kvTag)).toBe(1)
    expect(n('range-total', kvTag)).toBe(1)
    expect(n('flush-total', kvTag)).toBe(1)
    expect(v('put-latency-max', kvTag)).toBeGreaterThanOrEqual(0)

    const w = await p.window(def('win', 'window', false))
    await w.put(B('k'), 0, B('x'))
    await w.put(B('k'), 1_000, B('y'))
    expect(await drain(w.fetchRange(B('k'), 0, 1_000))).toHaveLength(2)
    expect((await w.fetch(B('k'), 0))?.toString()).toBe('x')
    const wTag = { 'in-memory-window-state-id': 'win' }
    expect(n('put-total', wTag)).toBe(2)
    expect(n('fetch-total', wTag)).toBe(2)

    const s = await p.session(def('sess', 'session'))
    await s.put(B('k'), 0, 10, B('s'))
    expect(await drain(s.findSessions(B('k'), 0, 10))).toHaveLength(1)
    await s.put(B('k'), 0, 10, null)
    const sTag = { 'leveldb-session-state-id': 'sess' }
    expect(n('put-total', sTag)).toBe(1)
    expect(n('remove-total', sTag)).toBe(1)
    expect(n('fetch-total', sTag)).toBe(1)
    // a broken-off iteration is timed too
    await kv.put(B('d'), B('4'))
    for await (const _ of kv.range()) break
    expect(n('range-total', kvTag)).toBe(2)
  })

  it('registers no state-level metric at INFO (the runtime does not wrap the stores then)', () => {
    const metrics = new StreamsMetrics({ clientId: 'c', recordingLevel: 'INFO' })
    const task = metrics.task('t1', '0_0')
    expect(task.debugEnabled).toBe(false)
    task.store('counts', 'leveldb').put.record(1)
    expect(findMetrics(metrics.metrics(), 'put-total')).toEqual([])
  })

  it('records record-e2e-latency (TRACE) at each write from the current input record, nothing outside processing or at DEBUG', async () => {
    const wrote = async (level: 'DEBUG' | 'TRACE', ts: number | undefined) => {
      const metrics = new StreamsMetrics({ clientId: 'c', recordingLevel: level })
      const task = metrics.task('t1', '0_0')
      const p = meteredStoreProvider(new InMemoryStoreProvider(), task, () => ts)
      const kv = await p.keyValue(def('counts', 'keyValue'))
      const w = await p.window(def('win', 'window'))
      await kv.put(B('a'), B('1'))
      await w.put(B('a'), 0, B('1'))
      return (name: string, tag: Record<string, string>) => metricValue(metrics.metrics(), name, tag)
    }
    const before = Date.now()
    const trace = await wrote('TRACE', before - 5_000)
    const after = Date.now()
    const tags: Array<Record<string, string>> = [{ 'leveldb-state-id': 'counts' }, { 'leveldb-window-state-id': 'win' }]
    for (const tag of tags) {
      const max = Number(trace('record-e2e-latency-max', tag))
      expect(max).toBeGreaterThanOrEqual(5_000)
      expect(max).toBeLessThanOrEqual(after - before + 5_000)
    }
    // between records (a punctuator's write): nothing recorded
    const none = await wrote('TRACE', undefined)
    expect(Number(none('record-e2e-latency-max', { 'leveldb-state-id': 'counts' })) > 0).toBe(false)
    // at DEBUG the sensor records nothing either (its level is TRACE)
    const debug = await wrote('DEBUG', before - 5_000)
    expect(Number(debug('record-e2e-latency-max', { 'leveldb-state-id': 'counts' })) > 0).toBe(false)
  })

  it("the task engine answers the current input record's timestamp while it processes it, so a store write inside measures from it", async () => {
    const S = Serdes.String()
    const b = new StreamsBuilder()
    // caching off: with the record cache (KIP-63) the write reaches the store at the flush (commit)
    b.stream('in', Consumed.with(S, S)).groupByKey().count(Materialized.as<string, number>('counts').withCachingDisabled())
    const topology = b.build().resolve('app')
    const metrics = new StreamsMetrics({ clientId: 'c', recordingLevel: 'TRACE' })
    const task = metrics.task('t1', '0_0')
    const ref: { engine?: TaskEngine } = {}
    const engine = createTaskEngine({
      topology,
      subtopology: topology.subtopologies[0]!,
      taskId: { subtopology: 0, partition: 0 },
      stores: meteredStoreProvider(new InMemoryStoreProvider(), task, () => ref.engine?.currentRecordTimestamp?.()),
      collector: { send: () => undefined },
      clock: Date.now,
      defaultKeySerde: S,
      defaultValueSerde: S,
    })
    ref.engine = engine
    await engine.init()
    const ts = Date.now() - 7_000
    await engine.process({ topic: 'in', partition: 0, offset: '0', key: B('a'), value: B('x'), timestamp: ts, headers: {} })
    expect(engine.currentRecordTimestamp?.()).toBeUndefined()
    const stores = findMetrics(metrics.metrics(), 'record-e2e-latency-max', {}, 'stream-state-metrics')
    expect(stores).toHaveLength(1)
    expect(Number(stores[0]!.metricValue())).toBeGreaterThanOrEqual(7_000)
  })
})
