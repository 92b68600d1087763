import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { LevelDbBackend, MemoryBackend, type OrderedBytesBackend } from '../../lib/state/backend.js'
import { InMemoryKeyValueBytesStore } from '../../topology/state/memory.js'
import { CacheBudget } from '../../lib/state/cache.js'
import { RuntimeKeyValueStore, RuntimeSessionStore, RuntimeWindowStore } from '../../lib/state/stores.js'
import { decodeWindowChangelogKey, readOrderedLong, writeOrderedLong } from '../../lib/state/keys.js'
import type { RawRecord } from '../../topology/engine/types.js'

const dirs: string[] = []
const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  while (closers.length) await closers.pop()!().catch(() => {})
  while (dirs.length) await rm(dirs.pop()!, { recursive: true, force: true })
})

async function tmp(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'kstreams-state-'))
  dirs.push(d)
  return d
}

async function level(dir?: string): Promise<LevelDbBackend> {
  const b = await LevelDbBackend.open(dir ?? path.join(await tmp(), 'db'))
  closers.push(() => b.close())
  return b
}

const B = (s: string) => Buffer.from(s)
const S = (b: Buffer | undefined) => b?.toString()

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

const backends: Array<[string, () => Promise<OrderedBytesBackend>]> = [
  ['leveldb', () => level()],
  ['memory', async () => new MemoryBackend(new InMemoryKeyValueBytesStore('m'))],
]

describe('order-preserving longs', () => {
  it('sort negative before positive and round-trip', () => {
    const values = [-(2 ** 40), -5, -1, 0, 1, 7, 2 ** 33 + 3, 2 ** 52]
    const bufs = values.map((v) => {
      const b = Buffer.alloc(8)
      writeOrderedLong(b, v, 0)
      return b
    })
    for (let i = 1; i < bufs.length; i++) expect(Buffer.compare(bufs[i - 1]!, bufs[i]!)).toBe(-1)
    expect(bufs.map((b) => readOrderedLong(b, 0))).toEqual(values)
  })
})

describe.each(backends)('key-value store on %s', (_name, mk) => {
  it('reads its own uncommitted writes, deletes, and ranges merge buffer over backend', async () => {
    const kv = new RuntimeKeyValueStore({ name: 'kv', backend: await mk(), mode: 'managed' })
    await kv.putAll([
      [B('a'), B('1')],
      [B('c'), B('3')],
      [B('e'), B('5')],
    ])
    kv.prepareCommit()
    await kv.commitLocal()
    // uncommitted: update c, delete e, add b and d
    await kv.put(B('c'), B('33'))
    await kv.put(B('e'), null)
    await kv.put(B('b'), B('2'))
    await kv.put(B('d'), B('4'))
    expect(S(await kv.get(B('c')))).toBe('33')
    expect(await kv.get(B('e'))).toBeUndefined()
    const all = (await collect(kv.range())).map(([k, v]) => `${k}=${v}`)
    expect(all).toEqual(['a=1', 'b=2', 'c=33', 'd=4'])
    const sub = (await collect(kv.range(B('b'), B('d')))).map(([k, v]) => `${k}=${v}`)
    expect(sub).toEqual(['b=2', 'c=33', 'd=4'])
    expect((await kv.getMany([B('a'), B('b'), B('e'), B('zz')])).map(S)).toEqual(['1', '2', undefined, undefined])
    // abort drops the uncommitted writes
    kv.abort()
    expect((await collect(kv.range())).map(([k, v]) => `${k}=${v}`)).toEqual(['a=1', 'c=3', 'e=5'])
  })

  it('long ranges return every entry (backend reads come in byte-capped chunks)', async () => {
    const kv = new RuntimeKeyValueStore({ name: 'kv', backend: await mk(), mode: 'managed' })
    const n = 5000
    await kv.putAll(Array.from({ length: n }, (_, i) => [B(`key-${String(i).padStart(5, '0')}`), Buffer.alloc(200, 7)] as const))
    kv.prepareCommit()
    await kv.commitLocal()
    await kv.put(B('key-02500x'), B('v'))
    const keys = (await collect(kv.range())).map(([k]) => k.toString())
    expect(keys.length).toBe(n + 1)
    expect(keys[2501]).toBe('key-02500x')
    expect([...keys].sort()).toEqual(keys)
  })

  it('keys that are prefixes of each other keep unsigned byte order', async () => {
    const kv = new RuntimeKeyValueStore({ name: 'kv', backend: await mk(), mode: 'managed' })
    await kv.put(Buffer.from([0x61, 0xff]), B('x'))
    await kv.put(Buffer.from([0x61]), B('y'))
    kv.prepareCommit()
    await kv.commitLocal()
    await kv.put(Buffer.from([0x61, 0x00]), B('z'))
    await kv.put(Buffer.from([0x80]), B('w'))
    const keys = (await collect(kv.range())).map(([k]) => k.toString('hex'))
    expect(keys).toEqual(['61', '6100', '61ff', '80'])
  })
})

describe('key-value store caching', () => {
  it('serves repeated reads from the clean cache and batches misses into one getMany', async () => {
    const backend = await level()
    let single = 0
    let many = 0
    const spy: OrderedBytesBackend = Object.assign(Object.create(backend) as OrderedBytesBackend, {
      get: (k: Buffer) => {
        single++
        return backend.get(k)
      },
      getMany: (ks: ReadonlyArray<Buffer>) => {
        many++
        return backend.getMany(ks)
      },
    })
    const kv = new RuntimeKeyValueStore({ name: 'kv', backend: spy, mode: 'managed' })
    const keys = Array.from({ length: 100 }, (_, i) => B(`k${i}`))
    await kv.putAll(keys.map((k, i) => [k, B(String(i))] as const))
    kv.prepareCommit()
    await kv.commitLocal()
    // committed entries stay cached: no backend read at all
    expect((await kv.getMany(keys)).map(S)).toEqual(keys.map((_, i) => String(i)))
    expect(single + many).toBe(0)
    const fresh = Array.from({ length: 50 }, (_, i) => B(`new${i}`))
    expect((await kv.getMany(fresh)).every((v) => v === undefined)).toBe(true)
    expect(many).toBe(1)
    // absent keys are cached as absent
    await kv.getMany(fresh)
    await kv.get(fresh[0]!)
    expect(many).toBe(1)
    expect(single).toBe(0)
  })

  it('accounts bytes, evicts clean entries and requests a commit when dirty bytes exceed the bound', async () => {
    let requested = 0
    const budget = new CacheBudget(20_000, () => requested++)
    const kv = new RuntimeKeyValueStore({ name: 'kv', backend: await level(), budget, mode: 'managed' })
    for (let i = 0; i < 50; i++) await kv.put(B(`k${i}`), Buffer.alloc(100))
    expect(budget.used).toBeGreaterThan(50 * 100)
    expect(requested).toBe(0)
    kv.prepareCommit()
    await kv.commitLocal()
    const afterCommit = budget.used
    expect(afterCommit).toBeLessThanOrEqual(20_000)
    for (let i = 0; i < 200; i++) await kv.put(B(`d${i}`), Buffer.alloc(100))
    expect(requested).toBe(1)
    // clean entries were evicted first
    kv.prepareCommit()
    await kv.commitLocal()
    budget.resetRequest()
    expect(budget.used).toBeLessThanOrEqual(20_000)
    // the data is all still there (from LevelDB)
    expect((await kv.get(B('k3')))?.length).toBe(100)
    expect((await kv.get(B('d199')))?.length).toBe(100)
  })

  it('autoCommit stores write through on flush and survive reopening', async () => {
    const dir = path.join(await tmp(), 'db')
    const b1 = await LevelDbBackend.open(dir)
    const kv = new RuntimeKeyValueStore({ name: 'kv', backend: b1 })
    await kv.put(B('x'), B('1'))
    await kv.flush()
    await kv.put(B('y'), B('2'))
    await kv.close() // autoCommit close flushes
    const kv2 = new RuntimeKeyValueStore({ name: 'kv', backend: await level(dir) })
    expect((await kv2.getMany([B('x'), B('y')])).map(S)).toEqual(['1', '2'])
    expect(await kv2.approximateNumEntries()).toBe(2)
  })
})

function windowStore(backend: OrderedBytesBackend, opts: { retentionMs?: number; dup?: boolean; seg?: number } = {}) {
  return new RuntimeWindowStore({
    name: 'w',
    backend,
    mode: 'managed',
    retentionMs: opts.retentionMs ?? 1000,
    windowSizeMs: 100,
    retainDuplicates: opts.dup ?? false,
    segmentIntervalMs: opts.seg ?? 100,
  })
}

async function commit(s: { prepareCommit(): unknown; commitLocal(): Promise<unknown> }) {
  s.prepareCommit()
  await s.commitLocal()
}

describe.each(backends)('window store on %s', (_name, mk) => {
  it('fetch, fetchRange across segments with buffered overlay, fetchAll', async () => {
    const w = windowStore(await mk())
    await w.put(B('a'), 0, B('a0'))
    await w.put(B('a'), 100, B('a100'))
    await w.put(B('b'), 100, B('b100'))
    await w.put(B('a'), 250, B('a250'))
    await commit(w)
    await w.put(B('a'), 100, B('a100*')) // overwrite in buffer
    await w.put(B('a'), 0, null) // delete in buffer
    await w.put(B('a'), 300, B('a300'))
    await w.put(B('ab'), 300, B('ab300')) // key sharing a prefix
    expect(S(await w.fetch(B('a'), 100))).toBe('a100*')
    expect(await w.fetch(B('a'), 0)).toBeUndefined()
    const r = await collect(w.fetchRange(B('a'), 0, 1000))
    expect(r.map((e) => `${e.windowStartMs}=${e.value}`)).toEqual(['100=a100*', '250=a250', '300=a300'])
    const r2 = await collect(w.fetchRange(B('a'), 101, 299))
    expect(r2.map((e) => e.windowStartMs)).toEqual([250])
    const all = await collect(w.fetchAll(0, 1000))
    expect(all.map((e) => `${e.key}@${e.windowStartMs}=${e.value}`).sort()).toEqual(
      ['a@100=a100*', 'a@250=a250', 'a@300=a300', 'ab@300=ab300', 'b@100=b100'].sort(),
    )
  })

  it('retains duplicates in insertion order and ignores null puts', async () => {
    const w = windowStore(await mk(), { dup: true })
    await w.put(B('k'), 100, B('1'))
    await w.put(B('k'), 100, B('2'))
    await commit(w)
    await w.put(B('k'), 100, B('3'))
    await w.put(B('k'), 100, null)
    await w.put(B('k'), 50, B('0'))
    const r = await collect(w.fetchRange(B('k'), 0, 200))
    expect(r.map((e) => `${e.windowStartMs}=${e.value}`)).toEqual(['50=0', '100=1', '100=2', '100=3'])
    const logged = w.prepareCommit().map((e) => decodeWindowChangelogKey(e.key).seq)
    expect(new Set(logged).size).toBe(logged.length)
  })

  it('expires windows older than stream-time - retention and drops their segments by range', async () => {
    const backend = await mk()
    const w = windowStore(backend, { retentionMs: 300, seg: 100 })
    for (let t = 0; t <= 500; t += 50) await w.put(B('k'), t, B(String(t)))
    // stream-time 500, retention 300 → windows with start <= 200 are expired (Kafka Streams' rule)
    expect((await collect(w.fetchRange(B('k'), 0, 1000))).map((e) => e.windowStartMs)).toEqual([250, 300, 350, 400, 450, 500])
    expect(await w.fetch(B('k'), 200)).toBeUndefined()
    expect((await w.fetch(B('k'), 250))?.toString()).toBe('250')
    await w.put(B('k'), 100, B('late')) // ignored
    await commit(w)
    // segments 0 and 1 were dropped by one range delete; segment 2 (200, 250) is still live
    let raw = 0
    for await (const chunk of backend.iterate({})) raw += chunk.length
    expect(raw).toBe(7 + 1) // windows 200..500 + the metadata entry
  })
})

describe.each(backends)('session store on %s', (_name, mk) => {
  it('findSessions is a range over end times with start filter, merged with the buffer', async () => {
    const s = new RuntimeSessionStore({ name: 's', backend: await mk(), mode: 'managed', retentionMs: 10_000, segmentIntervalMs: 100 })
    await s.put(B('k'), 0, 50, B('s1'))
    await s.put(B('k'), 120, 180, B('s2'))
    await s.put(B('other'), 0, 500, B('o'))
    await commit(s)
    await s.put(B('k'), 300, 350, B('s3'))
    await s.put(B('k'), 120, 180, null)
    expect((await collect(s.findSessions(B('k'), 0, 1000))).map((x) => `${x.startMs}-${x.endMs}=${x.value}`)).toEqual([
      '0-50=s1',
      '300-350=s3',
    ])
    expect((await collect(s.findSessions(B('k'), 60, 1000))).map((x) => x.startMs)).toEqual([300])
    expect((await collect(s.findSessions(B('k'), 0, 200))).map((x) => x.startMs)).toEqual([0])
    expect(S(await s.fetchSession(B('k'), 0, 50))).toBe('s1')
    expect(await s.fetchSession(B('k'), 120, 180)).toBeUndefined()
    const all = await collect(s.findSessions(undefined, 0, 1000))
    expect(all.map((x) => `${x.key}:${x.startMs}`).sort()).toEqual(['k:0', 'k:300', 'other:0'])
  })
})

describe('restore from changelog records', () => {
  it('rebuilds a window store (incl. duplicates seq) from its changelog form', async () => {
    const src = windowStore(await level(), { dup: true, retentionMs: 10_000 })
    await src.put(B('k'), 100, B('1'))
    await src.put(B('k'), 100, B('2'))
    await src.put(B('j'), 200, B('3'))
    const log = src.prepareCommit()
    const records: RawRecord[] = log.map((e, i) => ({
      topic: 't',
      partition: 0,
      offset: String(i),
      key: e.key,
      value: e.value,
      timestamp: 0,
      headers: {},
    }))
    const dst = windowStore(await level(), { dup: true, retentionMs: 10_000 })
    await dst.restore(records)
    await dst.restore(records) // idempotent replay
    expect((await collect(dst.fetchRange(B('k'), 0, 1000))).map((e) => S(e.value))).toEqual(['1', '2'])
    expect((await collect(dst.fetchAll(0, 1000))).length).toBe(3)
    // a new duplicate after restore does not collide with restored sequence numbers
    await dst.put(B('k'), 100, B('4'))
    expect((await collect(dst.fetchRange(B('k'), 0, 1000))).map((e) => S(e.value))).toEqual(['1', '2', '4'])
  })
})
