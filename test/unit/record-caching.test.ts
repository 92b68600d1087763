/**
 * Record caching (KIP-63): with `Materialized.withCachingEnabled()` (the default) a table or
 * aggregation store forwards only the latest update of each key, when its cache is flushed
 * (commit; the TopologyTestDriver commits after each record, as Kafka Streams' driver does) or
 * evicted; `withCachingDisabled()` and `statestoreCacheMaxBytes: 0` forward every update.
 */
import { describe, expect, it } from 'vitest'
import {
  BufferConfig,
  Consumed,
  Grouped,
  Materialized,
  Produced,
  Serdes,
  StreamsBuilder,
  SessionWindows,
  SlidingWindows,
  Suppressed,
  TimeWindows,
  EmitStrategy,
} from '../../lib/index.js'
import {
  CACHE_ENTRY_OVERHEAD,
  CachingSessionBytesStore,
  CachingWindowBytesStore,
  InMemorySessionBytesStore,
  InMemoryStoreProvider,
  InMemoryWindowBytesStore,
  RecordCache,
  createTaskEngine,
} from '../../lib/internals.js'
import type { CacheHost, TaskEngine } from '../../lib/internals.js'
import type { OutputRecord } from '../../topology/index.js'
import { TopologyTestDriver, type TestRecord, type TopologyTestDriverConfig } from '../../lib/testing/index.js'

const S = Serdes.String()
const L = Serdes.Long()

function driverFor(b: StreamsBuilder, config: TopologyTestDriverConfig = {}): TopologyTestDriver {
  return new TopologyTestDriver(b.build(), { applicationId: 'app', defaultKeySerde: S, defaultValueSerde: S, ...config }, 0)
}

/** Pipes `inputs` (key, value, timestamp) into topic `in` and reads topic `out` (string keys, long values). */
async function pipeThrough(
  b: StreamsBuilder,
  inputs: ReadonlyArray<readonly [string, string, number]>,
  config: TopologyTestDriverConfig = {},
): Promise<Array<TestRecord<string, number>>> {
  const d = driverFor(b, config)
  const input = d.createInputTopic('in', S, S)
  for (const [k, v, ts] of inputs) await input.pipeInput(k, v, ts)
  const out = d.createOutputTopic('out', S, L).readRecordsToList()
  await d.close()
  return out
}

/** Words of each value counted per input key (no repartition: the key does not change). */
function wordCountPerKey(materialized: Materialized<string, number> = Materialized.as('counts')): StreamsBuilder {
  const b = new StreamsBuilder()
  b.stream('in', Consumed.with(S, S))
    .flatMapValues((v) => v.split(' '))
    .groupByKey()
    .count(materialized)
    .toStream()
    .to('out', Produced.with(S, L))
  return b
}

describe('record caching in the TopologyTestDriver (commit after each record)', () => {
  it('caching on (the default): the updates of one key made by one input record are forwarded once, with the latest value', async () => {
    const d = driverFor(wordCountPerKey())
    const input = d.createInputTopic('in', S, S)
    await input.pipeInput('k', 'a b c', 5, { trace: 'first' })
    await input.pipeInput('k', 'd e', 7, { trace: 'second' })
    expect(
      d
        .createOutputTopic('out', S, L)
        .readRecordsToList()
        .map((r) => [r.key, r.value, r.timestamp, String(r.headers.trace)]),
    ).toEqual([
      ['k', 3, 5, 'first'],
      ['k', 5, 7, 'second'],
    ])
    expect(await d.getKeyValueStore<string, number>('counts').get('k')).toBe(5)
    await d.close()
  })

  it('withCachingDisabled(): every update is forwarded', async () => {
    const d = driverFor(wordCountPerKey(Materialized.as<string, number>('counts').withCachingDisabled()))
    const input = d.createInputTopic('in', S, S)
    await input.pipeInput('k', 'a b c', 5)
    await input.pipeInput('k', 'd e', 7)
    expect(d.createOutputTopic('out', S, L).readValuesToList()).toEqual([1, 2, 3, 4, 5])
    await d.close()
  })

  it('statestoreCacheMaxBytes 0 disables caching everywhere, even for stores with caching enabled', async () => {
    const d = driverFor(wordCountPerKey(Materialized.as<string, number>('counts').withCachingEnabled()), { statestoreCacheMaxBytes: 0 })
    const input = d.createInputTopic('in', S, S)
    await input.pipeInput('k', 'a b c', 5)
    expect(d.createOutputTopic('out', S, L).readValuesToList()).toEqual([1, 2, 3])
    await d.close()
  })

  it('rejects a negative statestoreCacheMaxBytes', () => {
    expect(() => driverFor(wordCountPerKey(), { statestoreCacheMaxBytes: -1 })).toThrow(/statestoreCacheMaxBytes/)
  })

  it('forwarded changes carry the old value as of the last flush: a downstream table aggregation stays exact', async () => {
    // count per key, then the sum of all counts (KGroupedTable.reduce subtracts the old value)
    const build = (m: Materialized<string, number>) => {
      const b = new StreamsBuilder()
      b.stream('in', Consumed.with(S, S))
        .flatMapValues((v) => v.split(' '))
        .groupByKey()
        .count(m)
        .groupBy((_k, v) => ['total', v], Grouped.with(S, L))
        .reduce(
          (agg, v) => agg + v,
          (agg, v) => agg - v,
          Materialized.as<string, number>('total').withValueSerde(L),
        )
        .toStream()
        .to('out', Produced.with(S, L))
      return b
    }
    const run = async (m: Materialized<string, number>) => {
      const d = driverFor(build(m))
      const input = d.createInputTopic('in', S, S)
      await input.pipeInput('x', 'a b c', 1)
      await input.pipeInput('y', 'a', 2)
      await input.pipeInput('x', 'd e', 3)
      const out = d.createOutputTopic('out', S, L).readValuesToList()
      const total = await d.getKeyValueStore<string, number>('total').get('total')
      await d.close()
      return { out, total }
    }
    const cached = await run(Materialized.as<string, number>('c'))
    const uncached = await run(Materialized.as<string, number>('c').withCachingDisabled())
    // the count store forwards x=3 (old none), y=1 (old none), x=5 (old 3: subtract 3, add 5)
    expect(cached.out).toEqual([3, 4, 6])
    expect(cached.total).toBe(6)
    expect(uncached.total).toBe(6)
    expect(uncached.out.length).toBeGreaterThan(cached.out.length)
  })

  it('a materialized table source caches too; a delete of a key never flushed is not forwarded', async () => {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S))
      .flatMapValues((v) => v.split(' '))
      .toTable(Materialized.as('t'))
      .toStream()
      .to('out', Produced.with(S, S))
    const d = driverFor(b)
    const input = d.createInputTopic('in', S, S)
    await input.pipeInput('k', 'v1 v2 v3', 1)
    expect(d.createOutputTopic('out', S, S).readValuesToList()).toEqual(['v3'])
    await d.close()
  })

  it('withCachingDisabled() on a materialized filter forwards the tombstone of a key the store never held', async () => {
    const b = new StreamsBuilder()
    b.table('t', Consumed.with(S, L))
      .filter((_k, v) => v % 2 === 1, Materialized.as<string, number>('odd').withCachingDisabled())
      .toStream()
      .to('out', Produced.with(S, L))
    const d = driverFor(b)
    const input = d.createInputTopic('t', S, L)
    await input.pipeInput('a', 1, 1)
    await input.pipeInput('b', 2, 2)
    expect(d.createOutputTopic('out', S, L).readKeyValuesToList()).toEqual([
      { key: 'a', value: 1 },
      { key: 'b', value: null },
    ])
    await d.close()
  })

  it('suppression after a cached count emits the same as without caching', async () => {
    const build = (m: Materialized<string, number>) => {
      const b = new StreamsBuilder()
      b.stream('in', Consumed.with(S, S))
        .flatMapValues((v) => v.split(' '))
        .groupByKey()
        .count(m)
        .suppress(Suppressed.untilTimeLimit<string>(10, BufferConfig.unbounded()))
        .toStream()
        .to('out', Produced.with(S, L))
      return b
    }
    const run = async (m: Materialized<string, number>) => {
      const d = driverFor(build(m))
      const input = d.createInputTopic('in', S, S)
      for (const [k, v, ts] of [
        ['a', 'x y', 0],
        ['b', 'x', 3],
        ['a', 'z', 8],
        ['c', 'x', 11],
        ['a', 'x x x', 12],
        ['d', 'x', 30],
      ] as const)
        await input.pipeInput(k, v, ts)
      const out = d.createOutputTopic('out', S, L).readRecordsToList()
      await d.close()
      return out.map((r) => [r.key, r.value, r.timestamp])
    }
    const cached = await run(Materialized.as('c'))
    expect(cached).toEqual(await run(Materialized.as<string, number>('c').withCachingDisabled()))
    expect(cached).toEqual([
      ['a', 3, 8],
      ['b', 1, 3],
      ['c', 1, 11],
      ['a', 6, 12],
    ])
  })

  it('windowed counts cache too: one update per window and input record, with the latest count; a budget of 0 turns it off', async () => {
    const build = (m: Materialized<string, number>) => {
      const b = new StreamsBuilder()
      b.stream('in', Consumed.with(S, S))
        .flatMapValues((v) => v.split(' '))
        .groupByKey()
        .windowedBy(TimeWindows.ofSizeWithNoGrace(10))
        .count(m)
        .toStream()
        .map((w, v) => [`${w.key}@${w.window.startMs}`, v])
        .to('out', Produced.with(S, L))
      return b
    }
    const run = async (m: Materialized<string, number>, config: TopologyTestDriverConfig = {}) =>
      (
        await pipeThrough(
          build(m),
          [
            ['a', 'x y', 1],
            ['a', 'z', 12],
          ],
          config,
        )
      ).map((r) => ({ key: r.key, value: r.value }))
    expect(await run(Materialized.as('w'))).toEqual([
      { key: 'a@0', value: 2 },
      { key: 'a@10', value: 1 },
    ])
    const everyUpdate = [
      { key: 'a@0', value: 1 },
      { key: 'a@0', value: 2 },
      { key: 'a@10', value: 1 },
    ]
    expect(await run(Materialized.as<string, number>('w').withCachingDisabled())).toEqual(everyUpdate)
    expect(await run(Materialized.as('w'), { statestoreCacheMaxBytes: 0 })).toEqual(everyUpdate)
  })

  it('session counts cache: the merged session is forwarded once per input record, after the tombstone of the session it replaced', async () => {
    const run = async (m: Materialized<string, number>) => {
      const b = new StreamsBuilder()
      b.stream('in', Consumed.with(S, S))
        .flatMapValues((v) => v.split(' '))
        .groupByKey()
        .windowedBy(SessionWindows.ofInactivityGapWithNoGrace(5))
        .count(m)
        .toStream()
        .map((w, v) => [`${w.key}[${w.window.startMs},${w.window.endMs}]`, v])
        .to('out', Produced.with(S, L))
      const out = await pipeThrough(b, [
        ['a', 'x y', 1],
        ['a', 'z', 3],
      ])
      return out.map((r) => [r.key, r.value, r.timestamp])
    }
    expect(await run(Materialized.as('s'))).toEqual([
      ['a[1,1]', 2, 1],
      ['a[1,1]', null, 1],
      ['a[1,3]', 3, 3],
    ])
    expect(await run(Materialized.as<string, number>('s').withCachingDisabled())).toEqual([
      ['a[1,1]', 1, 1],
      ['a[1,1]', 2, 1],
      ['a[1,1]', null, 1],
      ['a[1,3]', 3, 3],
    ])
  })

  it('sliding-window counts cache: the windows one input record updates are forwarded once each, in the order of their last update', async () => {
    const run = async (m: Materialized<string, number>) => {
      const b = new StreamsBuilder()
      b.stream('in', Consumed.with(S, S))
        .flatMapValues((v) => v.split(' '))
        .groupByKey()
        .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(10, 100))
        .count(m)
        .toStream()
        .map((w, v) => [`${w.key}[${w.window.startMs},${w.window.endMs}]`, v])
        .to('out', Produced.with(S, L))
      const out = await pipeThrough(b, [
        ['a', 'x y', 100],
        ['a', 'z', 105],
        ['a', 'u v', 103],
      ])
      return out.map((r) => `${r.key}=${r.value}`)
    }
    const uncached = await run(Materialized.as<string, number>('s').withCachingDisabled())
    // "u v" at 103: u creates the right window [104,114] (z only); v's updates of the three
    // windows holding 103 come last
    expect(await run(Materialized.as('s'))).toEqual([
      'a[90,100]=2',
      'a[101,111]=1',
      'a[95,105]=3',
      'a[104,114]=1',
      'a[101,111]=3',
      'a[95,105]=5',
      'a[93,103]=4',
    ])
    expect(uncached.slice(-7)).toEqual([
      'a[101,111]=2',
      'a[95,105]=4',
      'a[93,103]=3',
      'a[104,114]=1',
      'a[101,111]=3',
      'a[95,105]=5',
      'a[93,103]=4',
    ])
  })

  it('a downstream table aggregation of a cached windowed count gets the old values it subtracts', async () => {
    // windowed count per key, then the sum of all windows' counts (subtracts each old count)
    const run = async (m: Materialized<string, number>) => {
      const b = new StreamsBuilder()
      b.stream('in', Consumed.with(S, S))
        .flatMapValues((v) => v.split(' '))
        .groupByKey()
        .windowedBy(TimeWindows.ofSizeWithNoGrace(10))
        .count(m)
        .groupBy((_w, v) => ['total', v], Grouped.with(S, L))
        .reduce(
          (agg, v) => agg + v,
          (agg, v) => agg - v,
          Materialized.as<string, number>('total').withValueSerde(L),
        )
        .toStream()
        .to('out', Produced.with(S, L))
      const out = await pipeThrough(b, [
        ['x', 'a b c', 1],
        ['y', 'a', 2],
        ['x', 'd e', 3],
        ['x', 'f', 14],
      ])
      return out.map((r) => r.value)
    }
    const cached = await run(Materialized.as('w'))
    const uncached = await run(Materialized.as<string, number>('w').withCachingDisabled())
    expect(cached).toEqual([3, 4, 6, 7])
    expect(uncached.at(-1)).toBe(7)
    expect(uncached.length).toBeGreaterThan(cached.length)
  })

  it('emit-on-window-close aggregations do not cache: their final results are the same either way', async () => {
    const run = async (m: Materialized<string, number>) => {
      const b = new StreamsBuilder()
      b.stream('in', Consumed.with(S, S))
        .flatMapValues((v) => v.split(' '))
        .groupByKey()
        .windowedBy(TimeWindows.ofSizeWithNoGrace(10))
        .emitStrategy(EmitStrategy.onWindowClose())
        .count(m)
        .toStream()
        .map((w, v) => [`${w.key}@${w.window.startMs}`, v])
        .to('out', Produced.with(S, L))
      const out = await pipeThrough(b, [
        ['a', 'x y', 1],
        ['b', 'x', 5],
        ['a', 'z', 12],
        ['a', 'z', 25],
      ])
      return out.map((r) => ({ key: r.key, value: r.value }))
    }
    const cached = await run(Materialized.as('w'))
    expect(cached).toEqual(await run(Materialized.as<string, number>('w').withCachingDisabled()))
    expect(cached).toEqual([
      { key: 'a@0', value: 2 },
      { key: 'b@0', value: 1 },
      { key: 'a@10', value: 1 },
    ])
  })
})

/**
 * The task engine on its own, flushed only when the test says so: what the runtime does between
 * two commits.
 */
describe('record caching in the task engine (flushed at commit or on eviction)', () => {
  async function engineFor(
    b: StreamsBuilder,
    cache: RecordCache,
  ): Promise<{ engine: TaskEngine; out: OutputRecord[]; pipe: (k: string, v: string, ts: number) => Promise<void> }> {
    const def = b.build().resolve('app')
    const out: OutputRecord[] = []
    const engine = createTaskEngine({
      topology: def,
      subtopology: def.subtopologies[0]!,
      taskId: { subtopology: 0, partition: 0 },
      stores: new InMemoryStoreProvider(),
      collector: { send: (r) => void out.push(r) },
      clock: () => 0,
      defaultKeySerde: S,
      defaultValueSerde: S,
      recordCache: cache,
    })
    await engine.init()
    let offset = 0
    const pipe = (k: string, v: string, ts: number) =>
      engine.process({
        topic: 'in',
        partition: 0,
        offset: String(offset++),
        key: Buffer.from(k),
        value: Buffer.from(v),
        timestamp: ts,
        headers: { n: String(offset) },
      })
    return { engine, out, pipe }
  }

  const decoded = (out: OutputRecord[]) =>
    out.map((r) => [r.key!.toString(), Number(r.value!.readBigInt64BE(0)), r.timestamp, String(r.headers.n)])

  function countPerKey(m: Materialized<string, number> = Materialized.as('counts')): StreamsBuilder {
    const b = new StreamsBuilder()
    b.stream('in', Consumed.with(S, S)).groupByKey().count(m).toStream().to('out', Produced.with(S, L))
    return b
  }

  it('forwards nothing until the commit, then the latest value of each key in the order of their latest update', async () => {
    const cache = new RecordCache(10 * 1024 * 1024)
    const { engine, out, pipe } = await engineFor(countPerKey(), cache)
    await pipe('a', 'x', 1)
    await pipe('b', 'x', 2)
    await pipe('a', 'x', 3)
    await pipe('c', 'x', 4)
    await pipe('b', 'x', 5)
    expect(out).toEqual([])
    expect(cache.used).toBeGreaterThan(0)
    await engine.flushCaches!()
    // order of the latest updates: a@3, c@4, b@5; headers of each key's latest write
    expect(decoded(out)).toEqual([
      ['a', 2, 3, '3'],
      ['c', 1, 4, '4'],
      ['b', 2, 5, '5'],
    ])
    expect(cache.used).toBe(0)
    await engine.flushCaches!()
    expect(out.length).toBe(3)
    await engine.close()
  })

  it('reads see the cached value before it is flushed', async () => {
    const { engine, pipe } = await engineFor(countPerKey(), new RecordCache(1 << 20))
    await pipe('a', 'x', 1)
    await pipe('a', 'x', 2)
    const store = engine.getStateStore('counts') as unknown as {
      get(k: string): Promise<{ value: number } | undefined>
      all(): AsyncIterable<{ key: string }>
    }
    expect((await store.get('a'))?.value).toBe(2)
    const keys: string[] = []
    for await (const e of store.all()) keys.push(e.key)
    expect(keys).toEqual(['a'])
    await engine.close()
  })

  it('a tiny cache evicts: the store written to flushes all its entries, oldest update first', async () => {
    // key 1 byte + timestamped long 16 bytes + overhead: room for two entries, not three
    const entry = 1 + 16 + CACHE_ENTRY_OVERHEAD
    const cache = new RecordCache(2 * entry + entry / 2)
    const { engine, out, pipe } = await engineFor(countPerKey(), cache)
    await pipe('a', 'x', 1)
    await pipe('b', 'x', 2)
    await pipe('a', 'x', 3) // replaces a: still two entries
    expect(out).toEqual([])
    await pipe('c', 'x', 4) // third entry: over the budget, the store flushes b, a, c
    expect(decoded(out)).toEqual([
      ['b', 1, 2, '2'],
      ['a', 2, 3, '3'],
      ['c', 1, 4, '4'],
    ])
    expect(cache.used).toBe(0)
    await pipe('a', 'x', 5)
    await engine.flushCaches!()
    expect(decoded(out).slice(3)).toEqual([['a', 3, 5, '5']])
    await engine.close()
  })

  it('a budget of 0 forwards every update at once', async () => {
    const { engine, out, pipe } = await engineFor(countPerKey(), new RecordCache(0))
    await pipe('a', 'x', 1)
    await pipe('a', 'x', 2)
    expect(decoded(out).map((r) => r[1])).toEqual([1, 2])
    await engine.close()
  })

  it('withCachingDisabled() forwards every update at once', async () => {
    const { engine, out, pipe } = await engineFor(
      countPerKey(Materialized.as<string, number>('counts').withCachingDisabled()),
      new RecordCache(1 << 20),
    )
    await pipe('a', 'x', 1)
    await pipe('a', 'x', 2)
    expect(decoded(out).map((r) => r[1])).toEqual([1, 2])
    await engine.close()
  })

  it('a task closed without a commit (dirty close, rewind) drops its cached entries and their share of the budget; re-processing from the last commit gives the output of an uncached task', async () => {
    const cache = new RecordCache(1 << 20)
    // the first incarnation processes two records and is closed dirty (its transaction aborted):
    // its cached entries were never flushed, so its store below holds nothing of them
    const first = await engineFor(countPerKey(), cache)
    await first.pipe('a', 'x', 1)
    await first.pipe('a', 'x', 2)
    expect(cache.used).toBeGreaterThan(0)
    await first.engine.close()
    expect(cache.used).toBe(0)
    await first.engine.flushCaches!()
    expect(first.out).toEqual([])
    // re-created from the last commit, it processes the same records and commits: same counts as
    // a task without caching, and the budget it holds is its own entries only
    const again = await engineFor(countPerKey(), cache)
    const uncached = await engineFor(countPerKey(), new RecordCache(0))
    for (const t of [again, uncached]) {
      await t.pipe('a', 'x', 1)
      await t.pipe('a', 'x', 2)
      await t.pipe('b', 'x', 3)
    }
    expect(cache.used).toBe(2 * (1 + 16 + CACHE_ENTRY_OVERHEAD))
    await again.engine.flushCaches!()
    expect(cache.used).toBe(0)
    const last = (out: OutputRecord[]) => new Map(decoded(out).map((r) => [r[0], r[1]]))
    expect(last(again.out)).toEqual(last(uncached.out))
    expect(last(again.out)).toEqual(
      new Map([
        ['a', 2],
        ['b', 1],
      ]),
    )
    await again.engine.close()
    await uncached.engine.close()
  })

  /** Counts per key in time or session windows; output key `key[start,end]`. */
  function windowedCountPerKey(
    windows: 'hopping' | 'session' | 'final',
    m: Materialized<string, number> = Materialized.as('w'),
  ): StreamsBuilder {
    const b = new StreamsBuilder()
    const grouped = b.stream('in', Consumed.with(S, S)).groupByKey()
    const table =
      windows === 'session'
        ? grouped.windowedBy(SessionWindows.ofInactivityGapWithNoGrace(5)).count(m)
        : windows === 'hopping'
          ? grouped.windowedBy(TimeWindows.ofSizeAndGrace(10, 100).advanceBy(5)).count(m)
          : grouped.windowedBy(TimeWindows.ofSizeWithNoGrace(10)).emitStrategy(EmitStrategy.onWindowClose()).count(m)
    table
      .toStream()
      .map((w, v) => [`${w.key}[${w.window.startMs},${w.window.endMs}]`, v])
      .to('out', Produced.with(S, L))
    return b
  }
  const decodedNullable = (out: OutputRecord[]) =>
    out.map((r) => [r.key!.toString(), r.value === null ? null : Number(r.value.readBigInt64BE(0)), r.timestamp, String(r.headers.n)])

  it('window stores: forwards nothing until the commit, then the latest count of each window in the order of their latest update', async () => {
    const cache = new RecordCache(1 << 20)
    const { engine, out, pipe } = await engineFor(windowedCountPerKey('hopping'), cache)
    await pipe('a', 'x', 7) // windows [0,10) and [5,15)
    await pipe('b', 'x', 3) // [0,10)
    await pipe('a', 'x', 2) // [0,10): out of order, the window keeps the largest timestamp
    expect(out).toEqual([])
    expect(cache.used).toBeGreaterThan(0)
    // reads see the cached counts before the flush
    const store = engine.getStateStore('w') as unknown as {
      fetch(k: string, start: number): Promise<{ value: number } | undefined>
      fetchRange(k: string, from: number, to: number): AsyncIterable<{ key: number; value: { value: number } }>
      all(): AsyncIterable<{ key: { key: string; window: { startMs: number } }; value: { value: number } }>
    }
    expect((await store.fetch('a', 0))?.value).toBe(2)
    const range: string[] = []
    for await (const kv of store.fetchRange('a', 0, 100)) range.push(`${kv.key}=${kv.value.value}`)
    expect(range).toEqual(['0=2', '5=1'])
    const all: string[] = []
    for await (const kv of store.all()) all.push(`${kv.key.key}@${kv.key.window.startMs}=${kv.value.value}`)
    expect(all).toEqual(['a@0=2', 'b@0=1', 'a@5=1'])
    await engine.flushCaches!()
    expect(decodedNullable(out)).toEqual([
      ['a[5,15]', 1, 7, '1'],
      ['b[0,10]', 1, 3, '2'],
      ['a[0,10]', 2, 7, '3'],
    ])
    expect(cache.used).toBe(0)
    await pipe('a', 'x', 8)
    await engine.flushCaches!()
    expect(decodedNullable(out).slice(3)).toEqual([
      ['a[0,10]', 3, 8, '4'],
      ['a[5,15]', 2, 8, '4'],
    ])
    await engine.close()
  })

  it('session stores: a session created and merged between two commits is neither written nor forwarded', async () => {
    const cache = new RecordCache(1 << 20)
    const { engine, out, pipe } = await engineFor(windowedCountPerKey('session'), cache)
    await pipe('a', 'x', 1)
    await engine.flushCaches!()
    expect(decodedNullable(out)).toEqual([['a[1,1]', 1, 1, '1']])
    await pipe('a', 'x', 4) // merges [1,1] into [1,4]
    await pipe('a', 'x', 8) // merges [1,4] into [1,8]
    await pipe('b', 'x', 5)
    const store = engine.getStateStore('w') as unknown as {
      findSessions(
        k: string,
        earliestEnd: number,
        latestStart: number,
      ): AsyncIterable<{ key: { window: { startMs: number; endMs: number } }; value: number }>
      all(): AsyncIterable<{ key: { key: string; window: { startMs: number; endMs: number } }; value: number }>
    }
    const found: string[] = []
    for await (const kv of store.findSessions('a', 0, 100)) found.push(`[${kv.key.window.startMs},${kv.key.window.endMs}]=${kv.value}`)
    // the flushed [1,1] below is hidden by its cached delete
    expect(found).toEqual(['[1,8]=3'])
    const all: string[] = []
    for await (const kv of store.all()) all.push(`${kv.key.key}[${kv.key.window.startMs},${kv.key.window.endMs}]=${kv.value}`)
    expect(all).toEqual(['b[5,5]=1', 'a[1,8]=3'])
    await engine.flushCaches!()
    // the tombstone of the flushed [1,1]; nothing of [1,4]; the latest session of each key
    expect(decodedNullable(out).slice(1)).toEqual([
      ['a[1,1]', null, 1, '2'],
      ['a[1,8]', 3, 8, '3'],
      ['b[5,5]', 1, 5, '4'],
    ])
    await engine.close()
  })

  it('a tiny cache evicts window entries: the window store written to flushes all of them', async () => {
    // key 1 byte + timestamped long 16 bytes + window start 8 bytes + overhead: room for two entries
    const entry = 1 + 16 + 8 + CACHE_ENTRY_OVERHEAD
    const cache = new RecordCache(2 * entry + entry / 2)
    const { engine, out, pipe } = await engineFor(windowedCountPerKey('hopping'), cache)
    await pipe('a', 'x', 7) // two windows
    expect(out).toEqual([])
    await pipe('b', 'x', 3) // third entry: over the budget
    expect(decodedNullable(out).map((r) => r[0])).toEqual(['a[0,10]', 'a[5,15]', 'b[0,10]'])
    expect(cache.used).toBe(0)
    await engine.close()
  })

  it('emit-on-window-close aggregations write through: nothing is cached', async () => {
    const cache = new RecordCache(1 << 20)
    const { engine, out, pipe } = await engineFor(windowedCountPerKey('final'), cache)
    await pipe('a', 'x', 1)
    await pipe('a', 'x', 2)
    expect(cache.used).toBe(0)
    await pipe('a', 'x', 10) // closes [0,10)
    expect(decodedNullable(out)).toEqual([['a[0,10]', 2, 2, '3']])
    await engine.close()
  })

  it('tasks share one budget: a write that overflows it flushes the store written to', async () => {
    const entry = 1 + 16 + CACHE_ENTRY_OVERHEAD
    const cache = new RecordCache(2 * entry + entry / 2)
    const t1 = await engineFor(countPerKey(), cache)
    const t2 = await engineFor(countPerKey(), cache)
    await t1.pipe('a', 'x', 1)
    await t1.pipe('b', 'x', 2)
    await t2.pipe('z', 'x', 3) // over the shared budget: t2's store flushes its one entry
    expect(t1.out).toEqual([])
    expect(decoded(t2.out)).toEqual([['z', 1, 3, '1']])
    await t1.engine.flushCaches!()
    expect(decoded(t1.out).map((r) => r[0])).toEqual(['a', 'b'])
    await t1.engine.close()
    await t2.engine.close()
  })
})

/** The window and session caching layers on their own, over the in-memory bytes stores. */
describe('caching layers of window and session bytes stores', () => {
  const host: CacheHost = {
    recordContext: () => ({ timestamp: 0, headers: {}, metadata: undefined }),
    withRecordContext: (_context, fn) => fn(),
  }
  const B = (s: string) => Buffer.from(s)
  const str = (b: Buffer | null) => (b === null ? null : b.toString())

  function windowLayer(sendOldValues: boolean) {
    const inner = new InMemoryWindowBytesStore('w', 1000, 10, false)
    let fetches = 0
    const fetch = inner.fetch.bind(inner)
    inner.fetch = (k, start) => {
      fetches++
      return fetch(k, start)
    }
    const cache = new RecordCache(1 << 20)
    const layer = new CachingWindowBytesStore(inner, cache, host)
    const flushed: string[] = []
    layer.setFlushListener(async (f) => {
      flushed.push(`${str(f.key)}[${f.window!.startMs},${f.window!.endMs}] ${str(f.newValue)}<-${str(f.oldValue)}`)
    }, sendOldValues)
    return { inner, layer, cache, flushed, fetches: () => fetches }
  }

  it('window layer: old values are read below only when asked for or for deletes; a delete of a window never flushed is dropped', async () => {
    for (const sendOld of [false, true]) {
      const { inner, layer, flushed, fetches } = windowLayer(sendOld)
      await inner.put(B('a'), 0, B('a0'))
      await layer.put(B('a'), 0, B('a0-new'))
      await layer.put(B('b'), 10, B('b10'))
      await layer.put(B('b'), 10, null) // never reached the store below
      await layer.put(B('c'), 20, B('c20'))
      await layer.flushCache()
      expect(flushed).toEqual(sendOld ? ['a[0,10] a0-new<-a0', 'c[20,30] c20<-null'] : ['a[0,10] a0-new<-null', 'c[20,30] c20<-null'])
      // without old values only the delete needs its value below
      expect(fetches()).toBe(sendOld ? 3 : 1)
      expect(str((await inner.fetch(B('a'), 0)) ?? null)).toBe('a0-new')
      expect(await inner.fetch(B('b'), 10)).toBeUndefined()
    }
  })

  it('window layer: fetchRange merges the cached windows over those below, deletes hiding them; fetchAll sorts by start, then key', async () => {
    const { inner, layer } = windowLayer(false)
    for (const [k, start] of [
      ['a', 0],
      ['a', 10],
      ['a', 20],
      ['b', 10],
    ] as const)
      await inner.put(B(k), start, B(`${k}${start}-below`))
    await layer.put(B('a'), 10, null)
    await layer.put(B('a'), 5, B('a5'))
    await layer.put(B('a'), 20, B('a20'))
    await layer.put(B('a'), 40, B('a40')) // later than the stream-time below
    await layer.put(B('b'), 0, B('b0'))
    const range: string[] = []
    for await (const w of layer.fetchRange(B('a'), 0, 100)) range.push(`${w.windowStartMs}=${str(w.value)}`)
    expect(range).toEqual(['0=a0-below', '5=a5', '20=a20', '40=a40'])
    const narrow: string[] = []
    for await (const w of layer.fetchRange(B('a'), 5, 20)) narrow.push(`${w.windowStartMs}=${str(w.value)}`)
    expect(narrow).toEqual(['5=a5', '20=a20'])
    expect(str((await layer.fetch(B('a'), 20)) ?? null)).toBe('a20')
    expect(await layer.fetch(B('a'), 10)).toBeUndefined()
    expect(str((await layer.fetch(B('b'), 10)) ?? null)).toBe('b10-below')
    const all: string[] = []
    for await (const w of layer.fetchAll(0, 100)) all.push(`${str(w.key)}@${w.windowStartMs}=${str(w.value)}`)
    expect(all).toEqual(['a@0=a0-below', 'b@0=b0', 'a@5=a5', 'b@10=b10-below', 'a@20=a20', 'a@40=a40'])
    await layer.flushCache()
    const after: string[] = []
    for await (const w of inner.fetchAll(0, 100)) after.push(`${str(w.key)}@${w.windowStartMs}=${str(w.value)}`)
    expect(after).toEqual(all)
  })

  it('window layer without a flush listener writes through', async () => {
    const inner = new InMemoryWindowBytesStore('w', 1000, 10, false)
    const cache = new RecordCache(1 << 20)
    const layer = new CachingWindowBytesStore(inner, cache, host)
    await layer.put(B('a'), 0, B('x'))
    expect(cache.used).toBe(0)
    expect(str((await inner.fetch(B('a'), 0)) ?? null)).toBe('x')
  })

  it('window layer refuses a store that retains duplicates (join buffers)', () => {
    expect(() => new CachingWindowBytesStore(new InMemoryWindowBytesStore('j', 1000, 10, true), new RecordCache(1), host)).toThrow(
      /retains duplicates/,
    )
  })

  it('session layer: findSessions merges by end, then start; all-key reads sort by end, key, start; flush forwards old values', async () => {
    const inner = new InMemorySessionBytesStore('s', 1000)
    const cache = new RecordCache(1 << 20)
    const layer = new CachingSessionBytesStore(inner, cache, host)
    const flushed: string[] = []
    layer.setFlushListener(async (f) => {
      flushed.push(`${str(f.key)}[${f.window!.startMs},${f.window!.endMs}] ${str(f.newValue)}<-${str(f.oldValue)}`)
    }, true)
    await inner.put(B('a'), 0, 5, B('a0-5'))
    await inner.put(B('a'), 10, 12, B('a10-12'))
    await inner.put(B('b'), 3, 4, B('b3-4'))
    await layer.put(B('a'), 0, 5, null)
    await layer.put(B('a'), 0, 12, B('a0-12'))
    await layer.put(B('a'), 11, 12, B('a11-12'))
    await layer.put(B('b'), 6, 7, B('b6-7'))
    const found: string[] = []
    for await (const s of layer.findSessions(B('a'), 0, 100)) found.push(`[${s.startMs},${s.endMs}]=${str(s.value)}`)
    expect(found).toEqual(['[0,12]=a0-12', '[10,12]=a10-12', '[11,12]=a11-12'])
    const bounded: string[] = []
    for await (const s of layer.findSessions(B('a'), 0, 10)) bounded.push(`[${s.startMs},${s.endMs}]`)
    expect(bounded).toEqual(['[0,12]', '[10,12]'])
    expect(await layer.fetchSession(B('a'), 0, 5)).toBeUndefined()
    const all: string[] = []
    for await (const s of layer.findSessions(undefined, 0, 100)) all.push(`${str(s.key)}[${s.startMs},${s.endMs}]`)
    expect(all).toEqual(['b[3,4]', 'b[6,7]', 'a[0,12]', 'a[10,12]', 'a[11,12]'])
    await layer.flushCache()
    expect(flushed).toEqual(['a[0,5] null<-a0-5', 'a[0,12] a0-12<-null', 'a[11,12] a11-12<-null', 'b[6,7] b6-7<-null'])
    expect(cache.used).toBe(0)
    const below: string[] = []
    for await (const s of inner.findSessions(undefined, 0, 100)) below.push(`${str(s.key)}[${s.startMs},${s.endMs}]`)
    expect(below).toEqual(all)
  })
})
