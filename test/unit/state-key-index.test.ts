/**
 * The key index of the window and session stores (lib/state/key-index.ts): its data structure,
 * its memory bound, and — above all — that per-key reads through it return exactly what the range
 * scans return (a differential test against `keyIndex: false` stores), across dirty overlays,
 * duplicates, deletes, aborts, expiry, restarts and restores, without opening LevelDB iterators.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { LevelDbBackend, MemoryBackend, type OrderedBytesBackend } from '../../lib/state/backend.js'
import { CacheBudget } from '../../lib/state/cache.js'
import { hashBytes, hashBytes2, KeyIndex, SegmentEntries } from '../../lib/state/key-index.js'
import { RuntimeSessionStore, RuntimeWindowStore } from '../../lib/state/stores.js'
import { InMemoryKeyValueBytesStore } from '../../topology/state/memory.js'
import type { OutputRecord, RawRecord } from '../../topology/engine/types.js'
import type { StoreDef } from '../../topology/state/types.js'
import { createTaskStateManager } from '../../lib/state/task-state-manager.js'

const dirs: string[] = []
const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  while (closers.length) await closers.pop()!().catch(() => {})
  while (dirs.length) await rm(dirs.pop()!, { recursive: true, force: true })
})

async function tmpDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'kstreams-key-index-'))
  dirs.push(d)
  return d
}

async function level(dir?: string): Promise<LevelDbBackend> {
  const b = await LevelDbBackend.open(dir ?? path.join(await tmpDir(), 'db'))
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

async function commit(s: { prepareCommit(): unknown; commitLocal(): Promise<unknown> }): Promise<void> {
  s.prepareCommit()
  await s.commitLocal()
}

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number): (n: number) => number {
  let a = seed >>> 0
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n)
  }
}

/** A backend that counts range scans and point reads. */
function counting(backend: OrderedBytesBackend): { backend: OrderedBytesBackend; iterators: () => number; gets: () => number } {
  let iterators = 0
  let gets = 0
  const spy = Object.assign(Object.create(backend) as OrderedBytesBackend, {
    iterate: (range: Parameters<OrderedBytesBackend['iterate']>[0], chunk?: number) => {
      iterators++
      return backend.iterate(range, chunk)
    },
    get: (k: Buffer) => {
      gets++
      return backend.get(k)
    },
  })
  return { backend: spy, iterators: () => iterators, gets: () => gets }
}

let colliding: [Buffer, Buffer] | undefined
/** Two record keys with the same 32-bit slot hash (birthday search over short keys). */
function collidingKeys(): [Buffer, Buffer] {
  if (colliding) return colliding
  const seen = new Map<number, number>()
  const keyOf = (i: number) => {
    const b = Buffer.alloc(8)
    b.writeUInt32BE(i, 0)
    b.writeUInt32BE(Math.imul(i, 0x9e3779b1) >>> 0, 4)
    return b
  }
  for (let i = 0; i < 10_000_000; i++) {
    const h = hashBytes(keyOf(i))
    const other = seen.get(h)
    if (other !== undefined) return (colliding = [keyOf(other), keyOf(i)])
    seen.set(h, i)
  }
  throw new Error('no 32-bit hash collision found')
}

describe('SegmentEntries', () => {
  it(
    'matches a reference multimap under random adds and removes (colliding hashes, growth, rehash, free list)',
    { timeout: 30_000 },
    () => {
      const r = rng(1)
      const seg = new SegmentEntries()
      // keys: 300 slot hashes, each shared by two keys told apart by their second hash
      const model = new Map<string, Array<[number, number]>>()
      const id = (h: number, h2: number) => `${h}/${h2}`
      for (let step = 0; step < 8000; step++) {
        const h = (r(300) * 0x01000193) >>> 0
        const h2 = r(2)
        const a = r(40)
        const b = r(3)
        const list = model.get(id(h, h2)) ?? []
        if (r(3) === 0) {
          const removed = seg.remove(h, h2, a, b)
          const kept = list.filter(([x, y]) => x !== a || y !== b)
          expect(removed).toBe(list.length - kept.length)
          model.set(id(h, h2), kept)
        } else {
          const added = seg.add(h, h2, a, b, true)
          const present = list.some(([x, y]) => x === a && y === b)
          expect(added).toBe(!present)
          if (!present) model.set(id(h, h2), [...list, [a, b]])
        }
        if (step % 2000 === 1999) {
          let size = 0
          let missing = 0
          for (const [key, pairs] of model) {
            const [h, h2] = key.split('/').map(Number) as [number, number]
            size += pairs.length
            const out: number[] = []
            seg.collect(h, h2, 5, 30, out)
            const got: Array<[number, number]> = []
            for (let i = 0; i < out.length; i += 2) got.push([out[i]!, out[i + 1]!])
            const want = pairs.filter(([x]) => x >= 5 && x <= 30)
            expect(got.sort()).toEqual(want.sort())
            for (const [x, y] of pairs) if (!seg.has(h, h2, x, y)) missing++
          }
          expect(missing).toBe(0)
          expect(seg.size).toBe(size)
        }
      }
    },
  )

  it('non-unique adds keep repeats, and remove drops all of them but not another key’s', () => {
    const seg = new SegmentEntries()
    seg.add(7, 1, 1, 1, false)
    seg.add(7, 1, 1, 1, false)
    seg.add(7, 2, 1, 1, false)
    const out: number[] = []
    seg.collect(7, 1, 0, 10, out)
    expect(out).toEqual([1, 1, 1, 1])
    expect(seg.remove(7, 1, 1, 1)).toBe(2)
    expect(seg.has(7, 1, 1, 1)).toBe(false)
    expect(seg.has(7, 2, 1, 1)).toBe(true)
    expect(seg.size).toBe(1)
  })

  it('hashes a sub-range like the same bytes on their own', () => {
    const whole = B('xxkeyyy')
    expect(hashBytes(whole, 2, 5)).toBe(hashBytes(B('key')))
    expect(hashBytes2(whole, 2, 5)).toBe(hashBytes2(B('key')))
    expect(hashBytes(B('a'))).not.toBe(hashBytes(B('b')))
    const [k1, k2] = collidingKeys()
    expect(hashBytes2(k1)).not.toBe(hashBytes2(k2))
  })
})

describe('KeyIndex memory bound', () => {
  it('keeps the newest times within the index share (oldest quarter first), exactly', () => {
    const budget = new CacheBudget(1_000_000, undefined, 40_000)
    const idx = new KeyIndex(budget, true)
    idx.ready = true
    const segOf = (t: number) => Math.floor(t / 300)
    for (let t = 0; t < 3000; t++) idx.add(segOf(t), t, 0, t, 0)
    expect(budget.indexBytes).toBeLessThanOrEqual(40_000)
    expect(budget.indexBytes).toBe(idx.bytes)
    const from = idx.coveredFrom
    expect(from).toBeGreaterThan(0)
    expect(from).toBeLessThan(2999)
    let listed = 0
    let wrong = 0
    for (let t = 0; t < 3000; t++) {
      if (t >= from) {
        if (!idx.covers(t) || !idx.mayHave(segOf(t), t, 0, t, 0)) wrong++
        if (idx.mayHave(segOf(t), t, 0, t, 1) || idx.mayHave(segOf(t), t, 1, t, 0)) wrong++
        listed++
      } else if (idx.covers(t) || !idx.mayHave(segOf(t), t, 0, t, 0)) wrong++
    }
    expect(wrong).toBe(0)
    expect(idx.entries).toBe(listed)
    expect(Math.min(...idx.indexedSegments())).toBe(segOf(from))

    // a second index on the same budget: the larger one shrinks to make room
    const idx2 = new KeyIndex(budget, true)
    idx2.ready = true
    const bytesBefore = idx.bytes
    for (let t = 0; t < 500; t++) idx2.add(0, t, 0, t, 0)
    expect(idx.coveredFrom).toBeGreaterThan(from)
    expect(idx.bytes).toBeLessThan(bytesBefore)
    expect(idx2.entries).toBeGreaterThan(0)
    expect(idx2.mayHave(0, 499, 0, 499, 0)).toBe(true)
    expect(budget.indexBytes).toBeLessThanOrEqual(40_000)
    expect(budget.indexBytes).toBe(idx.bytes + idx2.bytes)

    // expiry frees the bytes of dropped segments
    idx.dropBelow(100)
    idx2.dropBelow(100)
    expect(idx.indexedSegments()).toEqual([])
    expect(budget.indexBytes).toBe(0)
    idx.close()
    idx2.close()
  })

  it('index bytes shrink the room of clean entries (evicted) within the same budget', async () => {
    const budget = new CacheBudget(200_000, undefined, 150_000)
    const w = new RuntimeWindowStore({
      name: 'w',
      backend: await level(),
      budget,
      mode: 'managed',
      retentionMs: 1_000_000,
      windowSizeMs: 10,
      segmentIntervalMs: 1_000_000,
    })
    await w.init()
    for (let i = 0; i < 2000; i++) await w.put(B(`k${i}`), i, Buffer.alloc(100, 1))
    await commit(w)
    const indexBytes = budget.indexBytes
    expect(indexBytes).toBeGreaterThan(50_000)
    expect(indexBytes).toBeLessThanOrEqual(150_000)
    expect(budget.used).toBeGreaterThan(0)
    expect(budget.used).toBeLessThanOrEqual(200_000 - indexBytes)
    // every entry is still readable (from LevelDB when not cached)
    for (let i = 0; i < 2000; i += 37) expect((await w.fetch(B(`k${i}`), i))?.length).toBe(100)
  })
})

// --------------------------------------------------------------------------- differential

type Backends = Array<[string, () => Promise<OrderedBytesBackend>, boolean]>
const backends: Backends = [
  ['leveldb', () => level(), true],
  ['memory', async () => new MemoryBackend(new InMemoryKeyValueBytesStore('m')), false],
]

const KEYS = [B('a'), B('ab'), B('b'), Buffer.from([0x61, 0xff]), B('zz')]

interface Pair<T> {
  readonly indexed: T
  readonly scanned: T
}

describe.each(backends)('window store reads through the index equal range scans on %s', (_name, mk, persistent) => {
  const variants: Array<[boolean, number | undefined]> = [
    [false, undefined],
    [true, undefined],
    [false, 2500], // an index share this small keeps only the newest times: reads mix index and scans
    [true, 2500],
  ]
  for (const [dup, share] of variants) {
    const what = `(retainDuplicates: ${dup}${share ? `, index share ${share} B` : ''})`
    it(
      `random puts, deletes, commits, aborts, expiry${persistent ? ', restarts' : ''} and restores ${what}`,
      { timeout: 60_000 },
      async () => {
        const r = rng((dup ? 11 : 12) + (share ?? 0))
        const budget = () => new CacheBudget(share ? 100_000 : Number.POSITIVE_INFINITY, undefined, share)
        const opts = { mode: 'managed' as const, retentionMs: 300, windowSizeMs: 20, segmentIntervalMs: 50, retainDuplicates: dup }
        const dirsOf = { indexed: path.join(await tmpDir(), 'i'), scanned: path.join(await tmpDir(), 's') }
        const open = async (which: 'indexed' | 'scanned'): Promise<RuntimeWindowStore> => {
          const backend = persistent ? await LevelDbBackend.open(dirsOf[which]) : await mk()
          const s = new RuntimeWindowStore({ ...opts, name: which, backend, budget: budget(), keyIndex: which === 'indexed' })
          await s.init()
          return s
        }
        let p: Pair<RuntimeWindowStore> = { indexed: await open('indexed'), scanned: await open('scanned') }
        closers.push(
          () => p.indexed.close(),
          () => p.scanned.close(),
        )
        let time = 0
        let reads = 0
        let nonEmpty = 0
        let partial = 0
        for (let step = 0; step < 1500; step++) {
          const op = r(100)
          const key = KEYS[r(KEYS.length)]!
          if (op < 45) {
            if (r(4) === 0) time += r(40)
            const t = Math.max(0, time - 320 + r(420))
            const value = r(8) === 0 ? null : B(`v${step}`)
            await p.indexed.put(key, t, value)
            await p.scanned.put(key, t, value)
          } else if (op < 75) {
            const from = Math.max(0, time - 350 + r(400))
            const to = from + r(200)
            const a = (await collect(p.indexed.fetchRange(key, from, to))).map((e) => `${e.windowStartMs}=${e.value}`)
            const b = (await collect(p.scanned.fetchRange(key, from, to))).map((e) => `${e.windowStartMs}=${e.value}`)
            expect(a).toEqual(b)
            reads++
            if (a.length) nonEmpty++
            if (p.indexed.keyIndexStats().coveredFrom > Number.NEGATIVE_INFINITY) partial++
          } else if (op < 82) {
            const t = Math.max(0, time - 320 + r(420))
            expect(S(await p.indexed.fetch(key, t))).toBe(S(await p.scanned.fetch(key, t)))
          } else if (op < 92) {
            await commit(p.indexed)
            await commit(p.scanned)
          } else if (op < 95) {
            p.indexed.abort()
            p.scanned.abort()
          } else if (op < 97) {
            const all = async (s: RuntimeWindowStore) =>
              (await collect(s.fetchAll(0, time + 1000))).map((e) => `${e.key.toString('hex')}@${e.windowStartMs}=${e.value}`)
            expect(await all(p.indexed)).toEqual(await all(p.scanned))
          } else if (persistent) {
            // restart: uncommitted writes are lost in both; the index is rebuilt from LevelDB
            await p.indexed.close()
            await p.scanned.close()
            p = { indexed: await open('indexed'), scanned: await open('scanned') }
            expect(p.indexed.keyIndexStats().ready).toBe(true)
          }
        }
        expect(reads).toBeGreaterThan(300)
        expect(nonEmpty).toBeGreaterThan(50)
        // the small share really did leave older times to range scans
        if (share) expect(partial).toBeGreaterThan(100)
        else expect(partial).toBe(0)

        // restore: the committed changelog of the indexed store, replayed into fresh stores
        await commit(p.indexed)
        await commit(p.scanned)
        const log = await changelogOf(p.indexed, time)
        const fresh: Pair<RuntimeWindowStore> = {
          indexed: new RuntimeWindowStore({ ...opts, name: 'ri', backend: await mk(), keyIndex: true }),
          scanned: new RuntimeWindowStore({ ...opts, name: 'rs', backend: await mk(), keyIndex: false }),
        }
        closers.push(
          () => fresh.indexed.close(),
          () => fresh.scanned.close(),
        )
        await fresh.indexed.init()
        await fresh.scanned.init()
        await fresh.indexed.restore(log)
        await fresh.scanned.restore(log)
        for (const key of KEYS) {
          const a = (await collect(fresh.indexed.fetchRange(key, 0, time + 1000))).map((e) => `${e.windowStartMs}=${e.value}`)
          const b = (await collect(fresh.scanned.fetchRange(key, 0, time + 1000))).map((e) => `${e.windowStartMs}=${e.value}`)
          expect(a).toEqual(b)
          const c = (await collect(p.indexed.fetchRange(key, 0, time + 1000))).map((e) => e.value.toString())
          expect(a.map((x) => x.split('=')[1])).toEqual(c)
        }
      },
    )
  }
})

/** Changelog records of everything live in `s` (fresh sequence numbers for duplicates). */
async function changelogOf(s: RuntimeWindowStore, time: number): Promise<RawRecord[]> {
  const out: RawRecord[] = []
  let seq = 0
  for (const key of KEYS) {
    for await (const e of s.fetchRange(key, 0, time + 1000)) {
      const k = Buffer.alloc(key.length + 12)
      key.copy(k, 0)
      k.writeBigInt64BE(BigInt(e.windowStartMs), key.length)
      k.writeUInt32BE(s.retainDuplicates ? ++seq : 0, key.length + 8)
      out.push({ topic: 't', partition: 0, offset: String(out.length), key: k, value: e.value, timestamp: 0, headers: {} })
    }
  }
  return out
}

describe.each(backends)('session store reads through the index equal range scans on %s', (_name, mk, persistent) => {
  it.each([undefined, 2500])(
    `random merges, removes, commits, aborts, expiry${persistent ? ' and restarts' : ''} (index share %s)`,
    { timeout: 60_000 },
    async (share) => {
      const r = rng(21 + (share ?? 0))
      const budget = () => new CacheBudget(share ? 100_000 : Number.POSITIVE_INFINITY, undefined, share)
      const opts = { mode: 'managed' as const, retentionMs: 400, segmentIntervalMs: 60 }
      const dirsOf = { indexed: path.join(await tmpDir(), 'i'), scanned: path.join(await tmpDir(), 's') }
      const open = async (which: 'indexed' | 'scanned'): Promise<RuntimeSessionStore> => {
        const backend = persistent ? await LevelDbBackend.open(dirsOf[which]) : await mk()
        const s = new RuntimeSessionStore({ ...opts, name: which, backend, budget: budget(), keyIndex: which === 'indexed' })
        await s.init()
        return s
      }
      let p: Pair<RuntimeSessionStore> = { indexed: await open('indexed'), scanned: await open('scanned') }
      closers.push(
        () => p.indexed.close(),
        () => p.scanned.close(),
      )
      const gap = 30
      let time = 0
      let merges = 0
      let partial = 0
      for (let step = 0; step < 1500; step++) {
        const op = r(100)
        const key = KEYS[r(KEYS.length)]!
        if (op < 50) {
          // a session-aggregate record: find overlapping sessions in both, merge, remove, put
          if (r(3) === 0) time += r(25)
          const t = Math.max(0, time - 100 + r(120))
          const a = await collect(p.indexed.findSessions(key, t - gap, t + gap))
          const b = await collect(p.scanned.findSessions(key, t - gap, t + gap))
          expect(a.map((x) => `${x.key}:${x.startMs}-${x.endMs}=${x.value}`)).toEqual(
            b.map((x) => `${x.key}:${x.startMs}-${x.endMs}=${x.value}`),
          )
          let start = t
          let end = t
          for (const x of a) {
            start = Math.min(start, x.startMs)
            end = Math.max(end, x.endMs)
          }
          if (a.length) merges++
          if (p.indexed.keyIndexStats().coveredFrom > Number.NEGATIVE_INFINITY) partial++
          for (const s of [p.indexed, p.scanned]) {
            for (const x of a) await s.put(key, x.startMs, x.endMs, null)
            await s.put(key, start, end, B(`s${step}`))
          }
        } else if (op < 70) {
          const earliest = Math.max(0, time - 450 + r(500))
          const latest = earliest + r(300) - 100
          const a = await collect(p.indexed.findSessions(key, earliest, latest))
          const b = await collect(p.scanned.findSessions(key, earliest, latest))
          expect(a.map((x) => `${x.startMs}-${x.endMs}=${x.value}`)).toEqual(b.map((x) => `${x.startMs}-${x.endMs}=${x.value}`))
          const all = async (s: RuntimeSessionStore) =>
            (await collect(s.findSessions(undefined, earliest, latest))).map(
              (x) => `${x.key.toString('hex')}:${x.startMs}-${x.endMs}=${x.value}`,
            )
          expect(await all(p.indexed)).toEqual(await all(p.scanned))
        } else if (op < 78) {
          const sessions = await collect(p.scanned.findSessions(key, 0, time + 1000))
          const pick = sessions.length ? sessions[r(sessions.length)]! : { startMs: time, endMs: time + 1 }
          const start = pick.startMs + (r(4) === 0 ? 1 : 0)
          expect(S(await p.indexed.fetchSession(key, start, pick.endMs))).toBe(S(await p.scanned.fetchSession(key, start, pick.endMs)))
        } else if (op < 90) {
          await commit(p.indexed)
          await commit(p.scanned)
        } else if (op < 94) {
          p.indexed.abort()
          p.scanned.abort()
        } else if (persistent && op < 96) {
          await p.indexed.close()
          await p.scanned.close()
          p = { indexed: await open('indexed'), scanned: await open('scanned') }
        }
      }
      expect(merges).toBeGreaterThan(100)
      if (share) expect(partial).toBeGreaterThan(100)
      else expect(partial).toBe(0)
    },
  )
})

// --------------------------------------------------------------------------- properties

describe('per-key reads through the index', () => {
  it('open no LevelDB iterator: misses read nothing, hits read by exact key', async () => {
    const c = counting(await level())
    const w = new RuntimeWindowStore({
      name: 'w',
      backend: c.backend,
      mode: 'managed',
      retentionMs: 10_000,
      windowSizeMs: 100,
      segmentIntervalMs: 1000,
      retainDuplicates: true,
    })
    await w.init()
    for (let i = 0; i < 50; i++) await w.put(B(`k${i}`), i * 100, B(`v${i}`))
    await commit(w)
    const it0 = c.iterators()
    const g0 = c.gets()
    for (let i = 0; i < 50; i++) expect(await collect(w.fetchRange(B(`miss${i}`), 0, 5000))).toEqual([])
    expect(c.gets()).toBe(g0)
    for (let i = 0; i < 50; i++)
      expect((await collect(w.fetchRange(B(`k${i}`), i * 100 - 50, i * 100 + 50))).map((e) => S(e.value))).toEqual([`v${i}`])
    expect(c.iterators()).toBe(it0)

    const sc = counting(await level())
    const s = new RuntimeSessionStore({ name: 's', backend: sc.backend, mode: 'managed', retentionMs: 10_000, segmentIntervalMs: 1000 })
    await s.init()
    await s.put(B('k'), 10, 20, B('x'))
    await s.put(B('k'), 1500, 1600, B('y'))
    await commit(s)
    const sit = sc.iterators()
    expect((await collect(s.findSessions(B('k'), 0, 100))).map((x) => S(x.value))).toEqual(['x'])
    expect((await collect(s.findSessions(B('k'), 0, 5000))).map((x) => S(x.value))).toEqual(['x', 'y'])
    expect(await collect(s.findSessions(B('nope'), 0, 5000))).toEqual([])
    expect(sc.iterators()).toBe(sit)
  })

  it('window fetch of a window the index does not list never reads LevelDB, yet sees the buffer', async () => {
    const c = counting(await level())
    const w = new RuntimeWindowStore({
      name: 'w',
      backend: c.backend,
      mode: 'managed',
      retentionMs: 10_000,
      windowSizeMs: 100,
      segmentIntervalMs: 1000,
    })
    await w.init()
    await w.put(B('k'), 100, B('1'))
    await commit(w)
    const g0 = c.gets()
    expect(await w.fetch(B('k'), 200)).toBeUndefined()
    expect(await w.fetch(B('j'), 100)).toBeUndefined()
    expect(c.gets()).toBe(g0)
    await w.put(B('k'), 200, B('2'))
    expect(S(await w.fetch(B('k'), 200))).toBe('2')
    expect(S(await w.fetch(B('k'), 100))).toBe('1')
  })

  it('keys with the same hash never see each other’s windows or sessions', async () => {
    const [k1, k2] = collidingKeys()
    expect(hashBytes(k1)).toBe(hashBytes(k2))
    expect(k1.equals(k2)).toBe(false)
    for (const dup of [false, true]) {
      const w = new RuntimeWindowStore({
        name: 'w',
        backend: await level(),
        mode: 'managed',
        retentionMs: 10_000,
        windowSizeMs: 100,
        segmentIntervalMs: 1000,
        retainDuplicates: dup,
      })
      await w.init()
      await w.put(k1, 100, B('one'))
      await w.put(k2, 100, B('two'))
      await w.put(k2, 300, B('two-300'))
      await commit(w)
      expect((await collect(w.fetchRange(k1, 0, 1000))).map((e) => `${e.windowStartMs}=${e.value}`)).toEqual(['100=one'])
      expect((await collect(w.fetchRange(k2, 0, 1000))).map((e) => `${e.windowStartMs}=${e.value}`)).toEqual(['100=two', '300=two-300'])
      expect(S(await w.fetch(k1, 100))).toBe('one')
      expect(await w.fetch(k1, 300)).toBeUndefined()
      await w.close()
    }
    const s = new RuntimeSessionStore({ name: 's', backend: await level(), mode: 'managed', retentionMs: 10_000, segmentIntervalMs: 1000 })
    await s.init()
    await s.put(k1, 10, 20, B('one'))
    await s.put(k2, 10, 20, B('two'))
    await commit(s)
    expect((await collect(s.findSessions(k1, 0, 100))).map((x) => `${x.key.toString('hex')}=${x.value}`)).toEqual([
      `${k1.toString('hex')}=one`,
    ])
    expect((await collect(s.findSessions(k2, 0, 100))).map((x) => `${x.key.toString('hex')}=${x.value}`)).toEqual([
      `${k2.toString('hex')}=two`,
    ])
    await s.put(k2, 10, 20, null)
    await commit(s)
    expect(S(await s.fetchSession(k1, 10, 20))).toBe('one')
    expect(await s.fetchSession(k2, 10, 20)).toBeUndefined()
  })

  it('is rebuilt on restart from one key scan and follows restores', async () => {
    const dir = path.join(await tmpDir(), 'w')
    const opts = { name: 'w', mode: 'managed' as const, retentionMs: 10_000, windowSizeMs: 100, segmentIntervalMs: 1000 }
    const w1 = new RuntimeWindowStore({ ...opts, backend: await LevelDbBackend.open(dir) })
    await w1.init()
    for (let i = 0; i < 30; i++) await w1.put(B(`k${i % 3}`), i * 200, B(`v${i}`))
    await commit(w1)
    await w1.put(B('k0'), 0, null)
    await commit(w1)
    await w1.put(B('lost'), 5000, B('uncommitted'))
    const log = w1.prepareCommit()
    w1.abort()
    await w1.close()

    const c = counting(await level(dir))
    const w2 = new RuntimeWindowStore({ ...opts, backend: c.backend })
    await w2.init()
    const stats = w2.keyIndexStats()
    expect(stats.ready).toBe(true)
    expect(stats.entries).toBe(29)
    expect(stats.segments).toEqual([0, 1, 2, 3, 4, 5])
    const it0 = c.iterators()
    expect((await collect(w2.fetchRange(B('k0'), 0, 1000))).map((e) => S(e.value))).toEqual(['v3'])
    expect((await collect(w2.fetchRange(B('k1'), 0, 10_000))).length).toBe(10)
    expect(await collect(w2.fetchRange(B('lost'), 0, 10_000))).toEqual([])
    // the aborted record arrives by restore (changelog replay): the index follows
    await w2.restore(
      log.map((e, i) => ({ topic: 't', partition: 0, offset: String(i), key: e.key, value: e.value, timestamp: 0, headers: {} })),
    )
    expect((await collect(w2.fetchRange(B('lost'), 0, 10_000))).map((e) => S(e.value))).toEqual(['uncommitted'])
    expect(c.iterators()).toBe(it0)
    // reset empties it; restoring again refills it
    await w2.reset()
    expect(w2.keyIndexStats()).toMatchObject({ ready: true, entries: 0, segments: [] })
    expect(await collect(w2.fetchRange(B('k1'), 0, 10_000))).toEqual([])
  })

  it('forgets expired segments, and keeps reading the live ones', async () => {
    const w = new RuntimeWindowStore({
      name: 'w',
      backend: await level(),
      mode: 'managed',
      retentionMs: 300,
      windowSizeMs: 10,
      segmentIntervalMs: 100,
    })
    await w.init()
    for (let t = 0; t <= 400; t += 50) await w.put(B('k'), t, B(String(t)))
    await commit(w)
    // stream-time 400, retention 300: windows with start <= 100 are expired; segment 1 holds 150 (live)
    expect(w.keyIndexStats().segments).toEqual([1, 2, 3, 4])
    expect((await collect(w.fetchRange(B('k'), 0, 1000))).map((e) => e.windowStartMs)).toEqual([150, 200, 250, 300, 350, 400])
    await w.put(B('k'), 900, B('900'))
    await commit(w)
    expect(w.keyIndexStats().segments).toEqual([9])
    expect(w.keyIndexStats().entries).toBe(1)
    expect((await collect(w.fetchRange(B('k'), 0, 1000))).map((e) => e.windowStartMs)).toEqual([900])
  })

  it('is built lazily when init() was not called', async () => {
    const c = counting(await level())
    const w = new RuntimeWindowStore({
      name: 'w',
      backend: c.backend,
      mode: 'managed',
      retentionMs: 100_000,
      windowSizeMs: 100,
      segmentIntervalMs: 1000,
    })
    await w.put(B('k'), 100, B('1'))
    await commit(w)
    expect(w.keyIndexStats().ready).toBe(false)
    expect((await collect(w.fetchRange(B('k'), 0, 1000))).map((e) => S(e.value))).toEqual(['1'])
    expect(w.keyIndexStats()).toMatchObject({ ready: true, entries: 1 })
    const it0 = c.iterators()
    expect((await collect(w.fetchRange(B('k'), 0, 1000))).map((e) => S(e.value))).toEqual(['1'])
    expect(c.iterators()).toBe(it0)
  })

  it('does not miss writes committed while the open-time build scans', async () => {
    const dir = path.join(await tmpDir(), 'w')
    const opts = { name: 'w', mode: 'managed' as const, retentionMs: 100_000, windowSizeMs: 100, segmentIntervalMs: 1000 }
    const w1 = new RuntimeWindowStore({ ...opts, backend: await LevelDbBackend.open(dir) })
    await w1.init()
    for (let i = 0; i < 20_000; i++) await w1.put(B(`k${i % 100}`), i, B(`v${i}`))
    await commit(w1)
    await w1.close()
    // a backend whose key scan is slow, so that a commit lands in the middle of it
    const inner = await level(dir)
    let scanning = false
    const slow = Object.assign(Object.create(inner) as OrderedBytesBackend, {
      iterateKeys: async function* (range: Parameters<OrderedBytesBackend['iterateKeys']>[0]) {
        scanning = true
        try {
          for await (const chunk of inner.iterateKeys(range, 1000)) {
            await new Promise((r) => setTimeout(r, 5))
            yield chunk
          }
        } finally {
          scanning = false
        }
      },
    })
    const w2 = new RuntimeWindowStore({ ...opts, backend: slow })
    const opening = w2.init()
    while (!scanning) await new Promise((r) => setTimeout(r, 1))
    await w2.put(B('new'), 19_999, B('during'))
    await w2.put(B('k7'), 7, null)
    await commit(w2)
    expect(scanning).toBe(true)
    await opening
    expect(w2.keyIndexStats().ready).toBe(true)
    expect((await collect(w2.fetchRange(B('new'), 0, 100_000))).map((e) => S(e.value))).toEqual(['during'])
    const k7 = await collect(w2.fetchRange(B('k7'), 0, 100_000))
    expect(k7.length).toBe(199)
    expect(k7[0]!.windowStartMs).toBe(107)
    // the deleted window is not listed any more (removal replayed after the scan)
    expect(w2.keyIndexStats().entries).toBe(20_000)
  })

  it('reads reaching below the covered time fall back to range scans and stay correct', async () => {
    const budget = new CacheBudget(10_000_000, undefined, 8_000)
    const c = counting(await level())
    const w = new RuntimeWindowStore({
      name: 'w',
      backend: c.backend,
      budget,
      mode: 'managed',
      retentionMs: 100_000,
      windowSizeMs: 10,
      segmentIntervalMs: 1000,
    })
    await w.init()
    for (let seg = 0; seg < 6; seg++) {
      for (let i = 0; i < 60; i++) await w.put(B(`k${i}`), seg * 1000 + i, B(`${seg}/${i}`))
      await commit(w)
    }
    const stats = w.keyIndexStats()
    expect(stats.coveredFrom).toBeGreaterThan(0)
    expect(stats.bytes).toBeLessThanOrEqual(8_000)
    const it0 = c.iterators()
    const got = (await collect(w.fetchRange(B('k5'), 0, 10_000))).map((e) => S(e.value))
    expect(got).toEqual(['0/5', '1/5', '2/5', '3/5', '4/5', '5/5'])
    expect(c.iterators()).toBeGreaterThan(it0)
    // reads within the covered times are answered without an iterator
    const it1 = c.iterators()
    const expected = [0, 1, 2, 3, 4, 5].filter((seg) => seg * 1000 + 59 >= stats.coveredFrom).map((seg) => `${seg}/59`)
    expect(expected.length).toBeGreaterThan(0)
    expect((await collect(w.fetchRange(B('k59'), stats.coveredFrom, 10_000))).map((e) => S(e.value))).toEqual(expected)
    expect(await collect(w.fetchRange(B('nope'), stats.coveredFrom, 10_000))).toEqual([])
    expect(c.iterators()).toBe(it1)
  })
})

describe('through the TaskStateManager', () => {
  it('window and session stores restored from their changelogs, then reopened, read through the index', async () => {
    const stateDir = await tmpDir()
    const win: StoreDef = {
      name: 'win',
      type: 'window',
      loggingEnabled: true,
      logConfig: {},
      cachingEnabled: true,
      persistent: true,
      retentionMs: 60_000,
      windowSizeMs: 1000,
      retainDuplicates: true,
    }
    const ses: StoreDef = {
      name: 'ses',
      type: 'session',
      loggingEnabled: true,
      logConfig: {},
      cachingEnabled: true,
      persistent: true,
      retentionMs: 60_000,
    }
    const manager = (taskId: string) =>
      createTaskStateManager({
        applicationId: 'app',
        taskId,
        stateDir,
        stores: [win, ses],
        changelogTopicFor: (s) => `app-${s.name}-changelog`,
        changelogPartition: 0,
        cacheMaxBytes: 1 << 20,
        exactlyOnce: false,
        lockWaitMs: 0,
        keyIndexMaxBytes: 1 << 20,
      })
    // the source task writes and logs
    const src = manager('0_0')
    await src.open()
    const w = await src.provider.window(win)
    const s = await src.provider.session(ses)
    for (let i = 0; i < 300; i++) await w.put(B(`k${i % 30}`), 1000 + i * 10, B(`w${i}`))
    for (let i = 0; i < 30; i++) await s.put(B(`k${i}`), 100 * i, 100 * i + 50, B(`s${i}`))
    const log: OutputRecord[] = []
    await src.prepareCommit({ send: (r: OutputRecord) => void log.push(r) })
    await src.commitLocal(
      new Map([
        ['app-win-changelog', '300'],
        ['app-ses-changelog', '30'],
      ]),
    )
    await src.close({ clean: true })
    const consumed = (topic: string): RawRecord[] =>
      log
        .filter((r) => r.topic === topic)
        .map((r, i) => ({ topic, partition: 0, offset: String(i), key: r.key, value: r.value, timestamp: r.timestamp, headers: {} }))

    // another task restores them from the changelog records
    const dst = manager('0_1')
    await dst.open()
    await dst.restoreBatch('app-win-changelog', consumed('app-win-changelog'))
    await dst.restoreBatch('app-ses-changelog', consumed('app-ses-changelog'))
    await dst.markRestored('app-win-changelog', String(consumed('app-win-changelog').length))
    await dst.markRestored('app-ses-changelog', String(consumed('app-ses-changelog').length))
    const check = async (m: typeof dst) => {
      const rw = m.store('win') as RuntimeWindowStore
      const rs = m.store('ses') as RuntimeSessionStore
      expect(rw.keyIndexStats()).toMatchObject({ ready: true, entries: 300 })
      expect(rs.keyIndexStats()).toMatchObject({ ready: true, entries: 30 })
      const k7 = (await collect(rw.fetchRange(B('k7'), 0, 10_000))).map((e) => S(e.value))
      expect(k7).toEqual(Array.from({ length: 10 }, (_, j) => `w${7 + 30 * j}`))
      expect((await collect(rs.findSessions(B('k7'), 0, 10_000))).map((x) => `${x.startMs}-${x.endMs}=${x.value}`)).toEqual(['700-750=s7'])
      expect(await collect(rw.fetchRange(B('none'), 0, 10_000))).toEqual([])
    }
    await check(dst)
    await dst.close({ clean: true })
    // and after a restart the index is rebuilt from LevelDB
    const again = manager('0_1')
    await again.open()
    await check(again)
    await again.close({ clean: true })
  })
})

describe('CacheBudget with key indexes', () => {
  it('index bytes take at most half of a small budget from dirty entries: no extra commit requests', () => {
    let requested = 0
    const budget = new CacheBudget(100_000, () => requested++)
    expect(budget.indexMaxBytes).toBe(2 * 1024 * 1024)
    budget.chargeIndex(1_500_000) // an index far larger than the whole budget
    budget.charge(49_000) // dirty entries within half of the budget
    expect(requested).toBe(0)
    budget.charge(2_000) // beyond half: a commit is requested
    expect(requested).toBe(1)
  })
})
