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
  Suppressed,
  TimeWindows,
} from '../../lib/index.js'
import { CACHE_ENTRY_OVERHEAD, InMemoryStoreProvider, RecordCache, createTaskEngine } from '../../lib/internals.js'
import type { TaskEngine } from '../../lib/internals.js'
import type { OutputRecord } from '../../topology/index.js'
import { TopologyTestDriver, type TopologyTestDriverConfig } from '../../lib/testing/index.js'

const S = Serdes.String()
const L = Serdes.Long()

function driverFor(b: StreamsBuilder, config: TopologyTestDriverConfig = {}): TopologyTestDriver {
  return new TopologyTestDriver(b.build(), { applicationId: 'app', defaultKeySerde: S, defaultValueSerde: S, ...config }, 0)
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

  it('windowed counts (window stores do not cache) are unchanged', async () => {
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
    const run = async (m: Materialized<string, number>) => {
      const d = driverFor(build(m))
      const input = d.createInputTopic('in', S, S)
      await input.pipeInput('a', 'x y', 1)
      await input.pipeInput('a', 'z', 12)
      const out = d.createOutputTopic('out', S, L).readKeyValuesToList()
      await d.close()
      return out
    }
    const cached = await run(Materialized.as('w'))
    expect(cached).toEqual(await run(Materialized.as<string, number>('w').withCachingDisabled()))
    expect(cached).toEqual([
      { key: 'a@0', value: 1 },
      { key: 'a@0', value: 2 },
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
