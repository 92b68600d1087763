/**
 * Interactive-query views (lib/app/interactive-queries.ts): two TopologyTestDrivers stand for two
 * tasks of one instance (each holds the keys of its partition); the composite view over their
 * stores must merge ranges in key order, scan prefixes, iterate backwards, and take its kind from
 * the store definition (KafkaStreams.store before start).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { Consumed, KafkaStreams, Materialized, Serdes, StreamsBuilder, TimeWindows } from '../../lib/index.js'
import type { QueryableKeyValueStore, QueryableSessionStore, QueryableWindowStore, StateStore } from '../../lib/index.js'
import { compositeStore, mergeByKeyBytes } from '../../lib/app/interactive-queries.js'
import { InvalidStateStoreError } from '../../topology/errors.js'
import { TopologyTestDriver } from '../../lib/testing/index.js'

function countTopology() {
  const b = new StreamsBuilder()
  const words = b.stream('words', Consumed.with(Serdes.String(), Serdes.String()))
  words.groupByKey().count(Materialized.as<string, number>('counts').withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()))
  words
    .groupByKey()
    .windowedBy(TimeWindows.ofSizeWithNoGrace(1000))
    .count(Materialized.as<string, number>('windowed').withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()).withRetention(60_000))
  return b.build()
}

const drivers: TopologyTestDriver[] = []
afterEach(async () => {
  while (drivers.length) await drivers.pop()!.close()
})

/** A driver ("task") that counted `words` (each at its timestamp). */
async function task(words: Array<[string, number]>): Promise<TopologyTestDriver> {
  const d = new TopologyTestDriver(countTopology(), { applicationId: 'iq' })
  drivers.push(d)
  const input = d.createInputTopic('words', Serdes.String(), Serdes.String())
  for (const [w, ts] of words) await input.pipeInput(w, w, ts)
  await d.ready()
  return d
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

function kvView(tasks: TopologyTestDriver[]): QueryableKeyValueStore<string, number> {
  return compositeStore({ name: 'counts', type: 'keyValue', keySerde: Serdes.String(), unwrapTimestamps: true }, () =>
    tasks.map((t) => t.getStateStore('counts')!),
  ) as QueryableKeyValueStore<string, number>
}

describe('composite key-value view', () => {
  it('merges range/all across tasks in key order and counts every entry', async () => {
    const a = await task([
      ['apple', 1],
      ['cherry', 2],
      ['apple', 3],
      ['melon', 4],
    ])
    const b = await task([
      ['banana', 1],
      ['apricot', 2],
      ['zucchini', 3],
    ])
    const view = kvView([a, b])
    const all = await collect(view.all())
    expect(all).toEqual([
      { key: 'apple', value: 2 },
      { key: 'apricot', value: 1 },
      { key: 'banana', value: 1 },
      { key: 'cherry', value: 1 },
      { key: 'melon', value: 1 },
      { key: 'zucchini', value: 1 },
    ])
    expect((await collect(view.range('apricot', 'cherry'))).map((e) => e.key)).toEqual(['apricot', 'banana', 'cherry'])
    expect(await view.get('zucchini')).toBe(1)
    expect(await view.get('nope')).toBeUndefined()
    expect(await view.approximateNumEntries()).toBe(6)
  })

  it('prefixScan finds the keys with the serialized prefix in every task, in order', async () => {
    const view = kvView([
      await task([
        ['apple', 1],
        ['banana', 1],
        ['ap', 1],
      ]),
      await task([
        ['apricot', 1],
        ['a', 1],
        ['aq', 1],
      ]),
    ])
    expect((await collect(view.prefixScan('ap', Serdes.String()))).map((e) => e.key)).toEqual(['ap', 'apple', 'apricot'])
    expect(await collect(view.prefixScan('x', Serdes.String()))).toEqual([])
  })

  it('reverseRange and reverseAll give the merged order backwards', async () => {
    const view = kvView([
      await task([
        ['b', 1],
        ['d', 1],
      ]),
      await task([
        ['a', 1],
        ['c', 1],
      ]),
    ])
    expect((await collect(view.reverseAll())).map((e) => e.key)).toEqual(['d', 'c', 'b', 'a'])
    expect((await collect(view.reverseRange('b', 'c'))).map((e) => e.key)).toEqual(['c', 'b'])
  })

  it('throws InvalidStateStoreError when no task holds the store', async () => {
    const view = kvView([])
    await expect(view.get('a')).rejects.toThrow(InvalidStateStoreError)
    expect(() => view.all()).toThrow(/store 'counts' is not available on this instance/)
  })
})

describe('composite window view', () => {
  it('fetches a key forwards and backwards, and merges fetchAll by key', async () => {
    const a = await task([
      ['k', 100],
      ['k', 1100],
      ['k', 2100],
      ['m', 2200],
    ])
    const b = await task([['c', 1500]])
    const view = compositeStore(
      { name: 'windowed', type: 'window', keySerde: Serdes.String(), unwrapTimestamps: true, windowSizeMs: 1000 },
      () => [a, b].map((t) => t.getStateStore('windowed')!),
    ) as QueryableWindowStore<string, number>
    expect(await collect(view.fetchRange('k', 0, 5000))).toEqual([
      { key: 0, value: 1 },
      { key: 1000, value: 1 },
      { key: 2000, value: 1 },
    ])
    expect((await collect(view.backwardFetch('k', 0, 1000))).map((e) => e.key)).toEqual([1000, 0])
    // tasks concatenated (as Kafka Streams), each in its store's order
    const all = (await collect(view.fetchAll(0, 5000))).map((e) => `${e.key.key}@${e.key.window.startMs}`)
    expect(all).toEqual(['k@0', 'k@1000', 'k@2000', 'm@2000', 'c@1000'])
    const back = (await collect(view.backwardFetchAll(0, 5000))).map((e) => `${e.key.key}@${e.key.window.startMs}`)
    expect(back).toEqual([...all].reverse())
  })
})

describe('mergeByKeyBytes', () => {
  it('orders by bytes, not by string comparison of the decoded keys', async () => {
    async function* of(xs: number[]) {
      yield* xs
    }
    // big-endian int bytes: 1 < 256 although '256' < '1' ... as strings '1' < '256'; use 2 vs 10
    const key = (n: number) => {
      const b = Buffer.alloc(4)
      b.writeInt32BE(n)
      return b
    }
    expect(await collect(mergeByKeyBytes([of([2, 300]), of([10, 20])], key))).toEqual([2, 10, 20, 300])
  })
})

describe('KafkaStreams.store before start', () => {
  const streams = () => new KafkaStreams(countTopology(), { applicationId: 'iq-unit', bootstrapServers: '127.0.0.1:1' })

  it('has the methods of the store kind in the topology, not of whatever task answers first', () => {
    const s = streams()
    const win = s.store<QueryableWindowStore<string, number>>('windowed')
    expect(typeof win.fetchRange).toBe('function')
    expect(typeof win.backwardFetch).toBe('function')
    expect(win.windowSizeMs).toBe(1000)
    const kv = s.store<QueryableKeyValueStore<string, number>>('counts')
    expect(typeof kv.prefixScan).toBe('function')
    expect((kv as unknown as Partial<QueryableSessionStore<string, number>>).findSessions).toBeUndefined()
    // not RUNNING: no local task holds it yet
    expect(() => kv.all()).toThrow(InvalidStateStoreError)
  })

  it('rejects a store name the topology does not have', () => {
    const s = streams()
    expect(() => s.store<StateStore>('nope')).toThrow(InvalidStateStoreError)
    expect(() => s.store<StateStore>('nope')).toThrow("the topology has no state store named 'nope'")
    expect(() => s.queryMetadataForKey('nope', 'k', Serdes.String())).toThrow(InvalidStateStoreError)
    expect(() => s.streamsMetadataForStore('nope')).toThrow(InvalidStateStoreError)
  })

  it('answers queryMetadataForKey with an unknown host and partition before the first assignment', () => {
    const m = streams().queryMetadataForKey('counts', 'apple', Serdes.String())
    expect(m).toEqual({ activeHost: undefined, standbyHosts: [], partition: -1, taskId: undefined })
  })
})
