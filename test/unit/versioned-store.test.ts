import { describe, expect, it } from 'vitest'
import {
  Consumed,
  Materialized,
  StreamsBuilder,
  type ProcessorContext,
  type StreamRecord,
  PUT_RETURN_CODE_NOT_PUT as NOT_PUT,
  PUT_RETURN_CODE_VALID_TO_UNDEFINED as LATEST,
  Serdes,
  Stores,
  TopologyError,
  type VersionedKeyValueStore,
} from '../../lib/index.js'
import { TopologyTestDriver } from '../../lib/testing/index.js'
import { InMemoryKeyValueBytesStore } from '../../topology/state/memory.js'
import { VersionedKeyValueStoreFacade } from '../../topology/state/versioned.js'

/**
 * Versioned key-value store semantics (KIP-889). The cases are the facts of Kafka Streams'
 * RocksDBVersionedStoreTest (history retention 300 000 ms, segment interval 100 000 ms, base
 * timestamp 10); our layout has no segments, so the segment-boundary cases check the same reads.
 */

const HISTORY_RETENTION = 300_000
const SI = HISTORY_RETENTION / 3
const BASE = 10
const S = Serdes.String()

function store(historyRetentionMs = HISTORY_RETENTION): VersionedKeyValueStore<string, string> {
  return new VersionedKeyValueStoreFacade<string, string>(
    new InMemoryKeyValueBytesStore('versioned'),
    { historyRetentionMs, segmentIntervalMs: SI },
    S,
    S,
    'app-versioned-changelog',
  )
}

type Op =
  | ['put', string, string | null, number, number]
  | ['get', string, string | null, number?]
  | ['asOf', string, number, string | null, number?, number?]

/** Runs puts (with their expected return codes) and reads (value, timestamp, validTo) in order. */
async function run(s: VersionedKeyValueStore<string, string>, ops: Op[]): Promise<void> {
  for (const op of ops) {
    if (op[0] === 'put') {
      const [, k, v, ts, code] = op
      expect(await s.put(k, v, ts), `put(${k}, ${v}, ${ts})`).toBe(code)
    } else if (op[0] === 'get') {
      const [, k, v, ts] = op
      expect(await s.get(k), `get(${k})`).toEqual(v === null ? null : { value: v, timestamp: ts })
    } else {
      const [, k, asOf, v, ts, validTo] = op
      const expected =
        v === null ? null : validTo === undefined || validTo === LATEST ? { value: v, timestamp: ts } : { value: v, timestamp: ts, validTo }
      expect(await s.get(k, asOf), `get(${k}, ${asOf})`).toEqual(expected)
    }
  }
}

describe('versioned key-value store (RocksDBVersionedStoreTest facts)', () => {
  it('put latest', () =>
    run(store(), [
      ['put', 'k', 'v', BASE, LATEST],
      ['put', 'k', 'v2', BASE + 1, LATEST],
      ['get', 'k', 'v2', BASE + 1],
      ['asOf', 'k', BASE, 'v', BASE, BASE + 1],
      ['asOf', 'k', BASE + 1, 'v2', BASE + 1],
      ['asOf', 'k', BASE + 2, 'v2', BASE + 1],
    ]))

  it('put null as latest', () =>
    run(store(), [
      ['put', 'k', null, BASE, LATEST],
      ['put', 'k', null, BASE + 1, LATEST],
      ['get', 'k', null],
      ['asOf', 'k', BASE, null],
      ['asOf', 'k', BASE + 1, null],
      ['asOf', 'k', BASE + 2, null],
    ]))

  it('put older with a non-null latest', () =>
    run(store(), [
      ['put', 'k', 'v', BASE, LATEST],
      ['put', 'k', 'v2', BASE - 2, BASE],
      ['put', 'k', 'v1', BASE - 1, BASE],
      ['put', 'k', 'v4', BASE - 4, BASE - 2],
      ['get', 'k', 'v', BASE],
      ['asOf', 'k', BASE, 'v', BASE],
      ['asOf', 'k', BASE - 1, 'v1', BASE - 1, BASE],
      ['asOf', 'k', BASE - 2, 'v2', BASE - 2, BASE - 1],
      ['asOf', 'k', BASE - 3, 'v4', BASE - 4, BASE - 2],
    ]))

  it('put older with a null latest', () =>
    run(store(), [
      ['put', 'k', null, BASE, LATEST],
      ['put', 'k', 'v2', BASE - 2, BASE],
      ['put', 'k', 'v1', BASE - 1, BASE],
      ['put', 'k', 'v4', BASE - 4, BASE - 2],
      ['get', 'k', null],
      ['asOf', 'k', BASE, null],
      ['asOf', 'k', BASE - 1, 'v1', BASE - 1, BASE],
      ['asOf', 'k', BASE - 2, 'v2', BASE - 2, BASE - 1],
      ['asOf', 'k', BASE - 3, 'v4', BASE - 4, BASE - 2],
    ]))

  it('put older nulls with a non-null latest', () =>
    run(store(), [
      ['put', 'k', 'v', BASE, LATEST],
      ['put', 'k', null, BASE - 2, BASE],
      ['put', 'k', null, BASE - 1, BASE],
      ['put', 'k', null, BASE - 4, BASE - 2],
      ['put', 'k', 'v5', BASE - 5, BASE - 4],
      ['put', 'k', 'v3', BASE - 3, BASE - 2],
      ['put', 'k', null, BASE - 6, BASE - 5],
      ['get', 'k', 'v', BASE],
      ['asOf', 'k', BASE, 'v', BASE],
      ['asOf', 'k', BASE - 1, null],
      ['asOf', 'k', BASE - 2, null],
      ['asOf', 'k', BASE - 3, 'v3', BASE - 3, BASE - 2],
      ['asOf', 'k', BASE - 4, null],
      ['asOf', 'k', BASE - 5, 'v5', BASE - 5, BASE - 4],
      ['asOf', 'k', BASE - 6, null],
    ]))

  it('a put at an existing timestamp replaces that version', () =>
    run(store(), [
      ['put', 'k', 'to_be_replaced', BASE, LATEST],
      ['put', 'k', 'b', BASE, LATEST],
      ['get', 'k', 'b', BASE],
      ['asOf', 'k', BASE, 'b', BASE],
      ['asOf', 'k', BASE - 1, null],
      ['put', 'k', null, BASE, LATEST],
      ['get', 'k', null],
      ['asOf', 'k', BASE, null],
      ['put', 'k', null, BASE, LATEST],
      ['get', 'k', null],
      ['put', 'k', 'b', BASE, LATEST],
      ['get', 'k', 'b', BASE],
      ['asOf', 'k', BASE - 1, null],
    ]))

  it('repeated timestamps across what Kafka Streams keeps in separate segments', () =>
    run(store(), [
      ['put', 'k', 'to_be_replaced', SI + 20, LATEST],
      ['put', 'k', null, SI - 10, SI + 20],
      ['put', 'k', 'to_be_replaced', SI - 10, SI + 20],
      ['put', 'k', null, SI - 10, SI + 20],
      ['put', 'k', 'to_be_replaced', SI - 1, SI + 20],
      ['put', 'k', 'to_be_replaced', SI + 1, SI + 20],
      ['put', 'k', null, SI - 1, SI + 1],
      ['put', 'k', null, SI + 1, SI + 20],
      ['put', 'k', null, SI + 10, SI + 20],
      ['put', 'k', null, SI + 5, SI + 10],
      ['put', 'k', 'vp5', SI + 5, SI + 10],
      ['put', 'k', 'to_be_replaced', SI - 5, SI - 1],
      ['put', 'k', 'vn5', SI - 5, SI - 1],
      ['put', 'k', null, SI + 20, LATEST],
      ['put', 'k', null, SI + 20, LATEST],
      ['put', 'k', 'vn6', SI - 6, SI - 5],
      ['get', 'k', null],
      ['asOf', 'k', SI + 30, null],
      ['asOf', 'k', SI + 15, null],
      ['asOf', 'k', SI + 6, 'vp5', SI + 5, SI + 10],
      ['asOf', 'k', SI + 2, null],
      ['asOf', 'k', SI, null],
      ['asOf', 'k', SI - 1, null],
      ['asOf', 'k', SI - 5, 'vn5', SI - 5, SI - 1],
      ['asOf', 'k', SI - 6, 'vn6', SI - 6, SI - 5],
      ['asOf', 'k', SI - 8, null],
    ]))

  it('a non-latest tombstone keeps its validTo', () =>
    run(store(), [
      ['put', 'k', 'vp30', SI + 30, LATEST],
      ['put', 'k', null, SI - 10, SI + 30],
      ['put', 'k', 'vn5', SI - 5, SI + 30],
      ['put', 'k', 'vn1', SI - 1, SI + 30],
      ['put', 'k', null, SI - 2, SI - 1],
      ['get', 'k', 'vp30', SI + 30],
      ['asOf', 'k', SI + 10, 'vn1', SI - 1, SI + 30],
      ['asOf', 'k', SI - 1, 'vn1', SI - 1, SI + 30],
      ['asOf', 'k', SI - 2, null],
      ['asOf', 'k', SI - 5, 'vn5', SI - 5, SI - 2],
      ['asOf', 'k', SI - 10, null],
    ]))

  it('delete returns the version valid at the delete time and puts a tombstone', async () => {
    const s = store()
    await run(s, [
      ['put', 'k', 'vp20', SI + 20, LATEST],
      ['put', 'k', 'vp10', SI + 10, SI + 20],
      ['put', 'k', 'vn10', SI - 10, SI + 10],
      ['put', 'k', 'vn2', SI - 2, SI + 10],
    ])
    expect(await s.delete('k', SI - 5)).toEqual({ value: 'vn10', timestamp: SI - 10, validTo: SI - 2 })
    expect(await s.delete('k', SI + 10)).toEqual({ value: 'vp10', timestamp: SI + 10, validTo: SI + 20 })
    expect(await s.delete('k', SI + 10)).toBeNull()
    expect(await s.delete('k', SI + 25)).toEqual({ value: 'vp20', timestamp: SI + 20 })
    expect(await s.get('k')).toBeNull()
  })

  it('a put older than the history retention is not put', () =>
    run(store(), [
      ['put', 'k', 'v', HISTORY_RETENTION + 10, LATEST],
      ['put', 'k1', 'v1', 10, LATEST],
      ['get', 'k1', 'v1', 10],
      ['put', 'k2', 'v2', 9, NOT_PUT],
      ['get', 'k2', null],
    ]))

  it('a delete older than the history retention does nothing and returns null', async () => {
    const s = store()
    await run(s, [
      ['put', 'k1', 'v1', 1, LATEST],
      ['put', 'k2', 'v2', 1, LATEST],
      ['put', 'kother', 'vother', HISTORY_RETENTION + 10, LATEST],
    ])
    expect(await s.delete('k1', 10)).toEqual({ value: 'v1', timestamp: 1 })
    expect(await s.get('k1')).toBeNull()
    expect(await s.delete('k2', 9)).toBeNull()
    expect(await s.get('k2')).toEqual({ value: 'v2', timestamp: 1 })
  })

  it('history beyond the retention is not served, but the latest version never expires', async () => {
    await run(store(), [
      ['put', 'k', 'v_old', 0, LATEST],
      ['put', 'k', 'v', SI - 10, LATEST],
      ['asOf', 'k', SI - 11, 'v_old', 0, SI - 10],
      ['put', 'ko', 'vo', HISTORY_RETENTION + SI - 11, LATEST],
      ['asOf', 'k', SI - 11, 'v_old', 0, SI - 10],
      ['put', 'ko', 'vo2', HISTORY_RETENTION + SI - 10, LATEST],
      ['asOf', 'k', SI - 11, null],
    ])
    await run(store(), [
      ['put', 'k', 'v', 1, LATEST],
      ['put', 'ko', 'vo_old', 1, LATEST],
      ['put', 'ko', 'vo_new', HISTORY_RETENTION + 12, LATEST],
      ['asOf', 'k', 10, 'v', 1],
      ['asOf', 'ko', 10, null],
    ])
  })

  it('zero history retention', async () => {
    const s = store(0)
    await run(s, [
      ['put', 'k', 'v', BASE, LATEST],
      ['get', 'k', 'v', BASE],
      ['asOf', 'k', BASE, 'v', BASE],
      ['asOf', 'k', BASE + 1, 'v', BASE],
      ['put', 'k', 'updated', BASE, LATEST],
      ['get', 'k', 'updated', BASE],
      ['put', 'k', 'v2', BASE + 2, LATEST],
      ['asOf', 'k', BASE + 2, 'v2', BASE + 2],
      ['asOf', 'k', BASE + 1, null],
    ])
    await s.delete('k', BASE + 3)
    await run(s, [
      ['get', 'k', null],
      ['put', 'k2', 'v', BASE + 2, NOT_PUT],
    ])
  })

  it('keeps the observed stream-time in the store, so a new facade over the same bytes applies the same retention', async () => {
    const bytes = new InMemoryKeyValueBytesStore('versioned')
    const mk = () => new VersionedKeyValueStoreFacade<string, string>(bytes, { historyRetentionMs: 100, segmentIntervalMs: 50 }, S, S, 't')
    await mk().put('k', 'v', 1000)
    const reopened = mk()
    expect(await reopened.put('k2', 'old', 899)).toBe(NOT_PUT)
    expect(await reopened.put('k2', 'ok', 900)).toBe(LATEST)
  })

  it('prunes versions that can no longer be read', async () => {
    const bytes = new InMemoryKeyValueBytesStore('versioned')
    const s = new VersionedKeyValueStoreFacade<string, string>(bytes, { historyRetentionMs: 10, segmentIntervalMs: 5 }, S, S, 't')
    for (let t = 0; t < 1000; t += 5) await s.put('k', `v${t}`, t)
    const blob = (await bytes.get(Buffer.concat([Buffer.from([1]), Buffer.from('k')])))!
    expect(blob.length).toBeLessThan(100) // a handful of versions, not 200
    expect(await s.get('k', 990)).toEqual({ value: 'v990', timestamp: 990, validTo: 995 })
    expect(await s.get('k', 985)).toEqual({ value: 'v985', timestamp: 985, validTo: 990 })
  })
})

describe('Stores.persistentVersionedKeyValueStore / versionedKeyValueStoreBuilder / Materialized.as', () => {
  it('builds a versioned StoreDef without caching; Materialized.as takes the supplier', () => {
    const supplier = Stores.persistentVersionedKeyValueStore('prices', 60_000)
    expect(supplier).toEqual({ name: 'prices', historyRetentionMs: 60_000, segmentIntervalMs: 20_000 })
    const def = Stores.versionedKeyValueStoreBuilder(supplier, S, S).build()
    expect(def.versioned).toEqual({ historyRetentionMs: 60_000, segmentIntervalMs: 20_000 })
    expect(def.cachingEnabled).toBe(false)
    expect(() => Stores.versionedKeyValueStoreBuilder(supplier, S, S).withCachingEnabled()).toThrow(TopologyError)
    const m = Materialized.as<string, string>(supplier)
    expect(m.storeName).toBe('prices')
    expect(m.versioned).toEqual({ historyRetentionMs: 60_000, segmentIntervalMs: 20_000 })
    expect(() => Stores.persistentVersionedKeyValueStore('x', -1)).toThrow(TopologyError)
  })
})

describe('Processor API with a versioned store (VersionedKeyValueStoreIntegrationTest-style)', () => {
  it('a processor puts every record at its timestamp and answers "key@asOf" lookups', async () => {
    const b = new StreamsBuilder()
    b.addStateStore(Stores.versionedKeyValueStoreBuilder(Stores.persistentVersionedKeyValueStore('versions', HISTORY_RETENTION), S, S))
    b.stream('in', Consumed.with(S, S))
      .process<string, string>(
        () => {
          let ctx!: ProcessorContext<string, string>
          let store!: VersionedKeyValueStore<string, string>
          return {
            init(c) {
              ctx = c
              store = c.getStateStore<VersionedKeyValueStore<string, string>>('versions')
            },
            async process(r: StreamRecord<string, string>) {
              if (r.value.startsWith('?')) {
                const found = await store.get(r.key, Number(r.value.slice(1)))
                await ctx.forward({ ...r, value: found === null ? 'none' : `${found.value}@${found.timestamp}` })
              } else {
                const code = await store.put(r.key, r.value === '-' ? null : r.value, r.timestamp)
                await ctx.forward({ ...r, value: `put:${code}` })
              }
            },
          }
        },
        { stores: ['versions'] },
      )
      .to('out', { keySerde: S, valueSerde: S })
    const d = new TopologyTestDriver(b.build(), { applicationId: 'papi' }, 0)
    const input = d.createInputTopic('in', S, S)
    await input.pipeInput('k', 'a', 100)
    await input.pipeInput('k', 'b', 200)
    await input.pipeInput('k', 'early', 50)
    await input.pipeInput('k', '-', 300)
    for (const asOf of [40, 60, 150, 250, 350]) await input.pipeInput('k', `?${asOf}`, 400)
    expect(d.createOutputTopic('out', S, S).readValuesToList()).toEqual([
      'put:-1',
      'put:-1',
      'put:100',
      'put:-1',
      'none',
      'early@50',
      'a@100',
      'b@200',
      'none',
    ])
    expect(await d.getVersionedKeyValueStore<string, string>('versions').get('k', 150)).toEqual({
      value: 'a',
      timestamp: 100,
      validTo: 200,
    })
    await d.close()
  })
})
