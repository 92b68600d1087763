/**
 * In-memory bytes stores (Kafka Streams: `InMemoryKeyValueStore`, `InMemoryWindowStore`,
 * `InMemorySessionStore`), used by the TopologyTestDriver and, for `persistent: false` stores, by
 * the runtime under its caching/logging layers.
 *
 * Keys are ordered by unsigned byte order: keys are held as `latin1` strings, whose UTF-16 code
 * units are the bytes, so JavaScript string order is unsigned byte order.
 */
import type { KeyValueBytesStore, SessionBytesStore, StoreDef, StoreProvider, WindowBytesStore } from './types.js'

function k2s(b: Buffer): string {
  return b.toString('latin1')
}
function s2k(s: string): Buffer {
  return Buffer.from(s, 'latin1')
}
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** Sorted-on-demand key index. */
class SortedKeys {
  private sorted: string[] | undefined
  constructor(private readonly map: Map<string, unknown>) {}
  invalidate(): void {
    this.sorted = undefined
  }
  get(): string[] {
    if (!this.sorted) this.sorted = [...this.map.keys()].sort(cmp)
    return this.sorted
  }
}

/** Index of the first element of the sorted `arr` not before `probe` under `compare` (binary search). */
function lowerBoundBy<T, P>(arr: readonly T[], probe: P, compare: (a: T, b: P) => number): number {
  let lo = 0
  let hi = arr.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (compare(arr[mid]!, probe) < 0) lo = mid + 1
    else hi = mid
  }
  return lo
}

function lowerBound(arr: string[], x: string): number {
  return lowerBoundBy(arr, x, cmp)
}

abstract class MemoryBase {
  readonly persistent = false
  protected open = true
  constructor(readonly name: string) {}
  async flush(): Promise<void> {}
  async close(): Promise<void> {
    this.open = false
  }
}

/** In-memory key-value bytes store. */
export class InMemoryKeyValueBytesStore extends MemoryBase implements KeyValueBytesStore {
  private readonly map = new Map<string, Buffer>()
  private readonly keys = new SortedKeys(this.map)

  async get(key: Buffer): Promise<Buffer | undefined> {
    return this.map.get(k2s(key))
  }
  async getMany(keys: ReadonlyArray<Buffer>): Promise<Array<Buffer | undefined>> {
    return keys.map((k) => this.map.get(k2s(k)))
  }
  async put(key: Buffer, value: Buffer | null): Promise<void> {
    this.putSync(key, value)
  }
  private putSync(key: Buffer, value: Buffer | null): void {
    const s = k2s(key)
    if (value === null) {
      if (this.map.delete(s)) this.keys.invalidate()
    } else {
      if (!this.map.has(s)) this.keys.invalidate()
      this.map.set(s, Buffer.from(value))
    }
  }
  async putAll(entries: ReadonlyArray<readonly [Buffer, Buffer | null]>): Promise<void> {
    for (const [k, v] of entries) this.putSync(k, v)
  }
  async *range(from?: Buffer, to?: Buffer): AsyncIterable<readonly [Buffer, Buffer]> {
    const keys = this.keys.get()
    const f = from === undefined ? undefined : k2s(from)
    const t = to === undefined ? undefined : k2s(to)
    const snapshot: Array<readonly [Buffer, Buffer]> = []
    for (let i = f === undefined ? 0 : lowerBound(keys, f); i < keys.length; i++) {
      const k = keys[i]!
      if (t !== undefined && k > t) break
      const v = this.map.get(k)
      if (v !== undefined) snapshot.push([s2k(k), v])
    }
    yield* snapshot
  }
  async approximateNumEntries(): Promise<number> {
    return this.map.size
  }
}

interface WindowEntry {
  readonly key: string
  readonly start: number
  readonly seq: number
  value: Buffer
}

/** In-memory window bytes store with retention and optional duplicates. */
export class InMemoryWindowBytesStore extends MemoryBase implements WindowBytesStore {
  /** By window start, then key, then sequence. */
  private entries: WindowEntry[] = []
  private seq = 0
  private observedStreamTime = Number.MIN_SAFE_INTEGER
  constructor(
    name: string,
    readonly retentionMs: number,
    readonly windowSizeMs: number,
    readonly retainDuplicates: boolean,
  ) {
    super(name)
  }

  private minLiveStart(): number {
    return this.observedStreamTime - this.retentionMs + 1
  }

  private expire(): void {
    const min = this.minLiveStart()
    let n = 0
    while (n < this.entries.length && this.entries[n]!.start < min) n++
    if (n > 0) this.entries.splice(0, n)
  }

  private compare(a: { start: number; key: string; seq: number }, b: { start: number; key: string; seq: number }): number {
    return a.start - b.start || cmp(a.key, b.key) || a.seq - b.seq
  }

  private indexOf(probe: { start: number; key: string; seq: number }): number {
    return lowerBoundBy(this.entries, probe, this.compare)
  }

  async put(key: Buffer, windowStartMs: number, value: Buffer | null): Promise<void> {
    if (windowStartMs > this.observedStreamTime) this.observedStreamTime = windowStartMs
    this.expire()
    if (windowStartMs < this.minLiveStart()) return
    const k = k2s(key)
    if (this.retainDuplicates) {
      if (value === null) return
      const e: WindowEntry = { key: k, start: windowStartMs, seq: this.seq++, value: Buffer.from(value) }
      this.entries.splice(this.indexOf(e), 0, e)
      return
    }
    const i = this.indexOf({ start: windowStartMs, key: k, seq: -1 })
    const existing = this.entries[i]
    const found = existing !== undefined && existing.start === windowStartMs && existing.key === k
    if (value === null) {
      if (found) this.entries.splice(i, 1)
    } else if (found) {
      existing.value = Buffer.from(value)
    } else {
      this.entries.splice(i, 0, { key: k, start: windowStartMs, seq: 0, value: Buffer.from(value) })
    }
  }

  async fetch(key: Buffer, windowStartMs: number): Promise<Buffer | undefined> {
    if (windowStartMs < this.minLiveStart()) return undefined
    const k = k2s(key)
    const i = this.indexOf({ start: windowStartMs, key: k, seq: -1 })
    const e = this.entries[i]
    return e !== undefined && e.start === windowStartMs && e.key === k ? e.value : undefined
  }

  async *fetchRange(
    key: Buffer,
    timeFrom: number,
    timeTo: number,
  ): AsyncIterable<{ readonly windowStartMs: number; readonly value: Buffer }> {
    const k = k2s(key)
    const from = Math.max(timeFrom, this.minLiveStart())
    const out: Array<{ windowStartMs: number; value: Buffer }> = []
    for (let i = this.indexOf({ start: from, key: '', seq: -1 }); i < this.entries.length; i++) {
      const e = this.entries[i]!
      if (e.start > timeTo) break
      if (e.key === k) out.push({ windowStartMs: e.start, value: e.value })
    }
    yield* out
  }

  async *fetchAll(
    timeFrom: number,
    timeTo: number,
  ): AsyncIterable<{ readonly key: Buffer; readonly windowStartMs: number; readonly value: Buffer }> {
    const from = Math.max(timeFrom, this.minLiveStart())
    const out: Array<{ key: Buffer; windowStartMs: number; value: Buffer }> = []
    for (let i = this.indexOf({ start: from, key: '', seq: -1 }); i < this.entries.length; i++) {
      const e = this.entries[i]!
      if (e.start > timeTo) break
      out.push({ key: s2k(e.key), windowStartMs: e.start, value: e.value })
    }
    yield* out
  }
}

interface SessionEntry {
  readonly key: string
  readonly start: number
  readonly end: number
  value: Buffer
}

/** In-memory session bytes store. */
export class InMemorySessionBytesStore extends MemoryBase implements SessionBytesStore {
  /** By end, then key, then start. */
  private entries: SessionEntry[] = []
  private observedStreamTime = Number.MIN_SAFE_INTEGER
  constructor(
    name: string,
    readonly retentionMs: number,
  ) {
    super(name)
  }

  private minLiveEnd(): number {
    return this.observedStreamTime - this.retentionMs + 1
  }

  private compare(a: { end: number; key: string; start: number }, b: { end: number; key: string; start: number }): number {
    return a.end - b.end || cmp(a.key, b.key) || a.start - b.start
  }

  private indexOf(probe: { end: number; key: string; start: number }): number {
    return lowerBoundBy(this.entries, probe, this.compare)
  }

  async put(key: Buffer, startMs: number, endMs: number, value: Buffer | null): Promise<void> {
    if (endMs > this.observedStreamTime) this.observedStreamTime = endMs
    const min = this.minLiveEnd()
    let n = 0
    while (n < this.entries.length && this.entries[n]!.end < min) n++
    if (n > 0) this.entries.splice(0, n)
    const k = k2s(key)
    const i = this.indexOf({ end: endMs, key: k, start: startMs })
    const e = this.entries[i]
    const found = e !== undefined && e.end === endMs && e.key === k && e.start === startMs
    if (value === null) {
      if (found) this.entries.splice(i, 1)
      return
    }
    if (endMs < min) return
    if (found) e.value = Buffer.from(value)
    else this.entries.splice(i, 0, { key: k, start: startMs, end: endMs, value: Buffer.from(value) })
  }

  async fetchSession(key: Buffer, startMs: number, endMs: number): Promise<Buffer | undefined> {
    if (endMs < this.minLiveEnd()) return undefined
    const k = k2s(key)
    const i = this.indexOf({ end: endMs, key: k, start: startMs })
    const e = this.entries[i]
    return e !== undefined && e.end === endMs && e.key === k && e.start === startMs ? e.value : undefined
  }

  async *findSessions(
    key: Buffer | undefined,
    earliestSessionEndTime: number,
    latestSessionStartTime: number,
  ): AsyncIterable<{ readonly key: Buffer; readonly startMs: number; readonly endMs: number; readonly value: Buffer }> {
    const k = key === undefined ? undefined : k2s(key)
    const from = Math.max(earliestSessionEndTime, this.minLiveEnd())
    const out: Array<{ key: Buffer; startMs: number; endMs: number; value: Buffer }> = []
    for (let i = this.indexOf({ end: from, key: '', start: Number.MIN_SAFE_INTEGER }); i < this.entries.length; i++) {
      const e = this.entries[i]!
      if (k !== undefined && e.key !== k) continue
      if (e.start > latestSessionStartTime) continue
      out.push({ key: s2k(e.key), startMs: e.start, endMs: e.end, value: e.value })
    }
    yield* out
  }
}

/** A {@link StoreProvider} creating in-memory bytes stores (the test driver's provider). */
export class InMemoryStoreProvider implements StoreProvider {
  keyValue(def: StoreDef): KeyValueBytesStore {
    return new InMemoryKeyValueBytesStore(def.name)
  }
  window(def: StoreDef): WindowBytesStore {
    return new InMemoryWindowBytesStore(
      def.name,
      def.retentionMs ?? 24 * 60 * 60 * 1000,
      def.windowSizeMs ?? 0,
      def.retainDuplicates ?? false,
    )
  }
  session(def: StoreDef): SessionBytesStore {
    return new InMemorySessionBytesStore(def.name, def.retentionMs ?? 24 * 60 * 60 * 1000)
  }
}
