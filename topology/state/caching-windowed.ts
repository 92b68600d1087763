/**
 * Record caching of window and session stores (Kafka Streams KIP-63: `CachingWindowStore`,
 * `CachingSessionStore`). Same contract as the key-value layer in `caching.ts`: with a flush
 * listener registered (windowed aggregations emitting on every update), writes stay in the
 * store's cache, a later write to the same window (key and window start) or session (key, start
 * and end) replaces the earlier one, and the latest value of each is written below and handed to
 * the listener at commit or eviction, in the order of the latest writes. Without a listener
 * (emit-on-window-close aggregations, join buffers, user stores) writes pass straight through.
 *
 * Reads merge the cached entries over the store below: a key's windows (sessions) come in the
 * order the store below gives them (window start; session end, then start), and all-key reads made
 * while entries are cached come by window start (session end), then key. As in Kafka Streams,
 * cached entries are not subject to the retention of the store below until they are flushed.
 *
 * Pure: no I/O; the store below is whatever the StoreProvider supplied.
 */
import type { SessionBytesStore, WindowBytesStore } from './types.js'
import type { ValueRecorder } from '../engine/metrics.js'
import { CachingLayer, cachedSize, mergeSorted, type CacheHost, type CachedEntry, type FlushedBytes, type RecordCache } from './caching.js'

interface WindowEntry extends CachedEntry {
  /** Latin1 form of the key (the per-key index). */
  readonly keyStr: string
  readonly startMs: number
}

interface SessionEntry extends WindowEntry {
  readonly endMs: number
}

/** Ids of the cached entries, per key (a key's windows are read per record). */
class KeyIndex {
  private readonly byKey = new Map<string, Set<string>>()
  add(keyStr: string, id: string): void {
    let ids = this.byKey.get(keyStr)
    if (ids === undefined) this.byKey.set(keyStr, (ids = new Set()))
    ids.add(id)
  }
  remove(keyStr: string, id: string): void {
    const ids = this.byKey.get(keyStr)
    if (ids === undefined) return
    ids.delete(id)
    if (ids.size === 0) this.byKey.delete(keyStr)
  }
  get(keyStr: string): ReadonlySet<string> | undefined {
    return this.byKey.get(keyStr)
  }
}

/** Shared part of the window and session caching layers: the per-key index and its reads. */
abstract class WindowedCachingLayer<E extends WindowEntry> extends CachingLayer<E> {
  private readonly index = new KeyIndex()

  protected override added(e: E): void {
    this.index.add(e.keyStr, e.id)
  }
  protected override removed(e: E): void {
    this.index.remove(e.keyStr, e.id)
  }

  /** The cached entries of `key` accepted by `accept` (latest write of each), unsorted. */
  protected cachedOf(key: Buffer, accept: (e: E) => boolean): E[] {
    const ids = this.empty ? undefined : this.index.get(key.toString('latin1'))
    if (ids === undefined) return []
    const out: E[] = []
    for (const id of ids) {
      const e = this.cached(id)
      if (e !== undefined && accept(e)) out.push(e)
    }
    return out
  }

  /** Every cached entry accepted by `accept` (latest write of each). */
  protected allCached(accept: (e: E) => boolean): E[] {
    const seen = new Map<string, E>()
    if (this.flushing) for (const [id, e] of this.flushing) if (accept(e)) seen.set(id, e)
    for (const [id, e] of this.dirty) if (accept(e)) seen.set(id, e)
    return [...seen.values()]
  }
}

/** Window caching layer (Kafka Streams: `CachingWindowStore`). Not for stores retaining duplicates. */
export class CachingWindowBytesStore extends WindowedCachingLayer<WindowEntry> implements WindowBytesStore {
  readonly retentionMs: number
  readonly windowSizeMs: number
  readonly retainDuplicates = false

  constructor(
    readonly inner: WindowBytesStore,
    cache: RecordCache,
    host: CacheHost,
    hitRatio?: ValueRecorder,
  ) {
    super(inner, cache, host, hitRatio)
    if (inner.retainDuplicates) throw new TypeError(`CachingWindowBytesStore: store '${inner.name}' retains duplicates and cannot cache`)
    this.retentionMs = inner.retentionMs
    this.windowSizeMs = inner.windowSizeMs
  }

  async put(key: Buffer, windowStartMs: number, value: Buffer | null): Promise<void> {
    if (this.listener === undefined) return this.inner.put(key, windowStartMs, value)
    const keyStr = key.toString('latin1')
    return this.write({
      id: `${windowStartMs}|${keyStr}`,
      key,
      keyStr,
      startMs: windowStartMs,
      value,
      context: this.context(),
      size: cachedSize(key, value) + 8,
    })
  }

  async fetch(key: Buffer, windowStartMs: number): Promise<Buffer | undefined> {
    const e = this.lookup(`${windowStartMs}|${key.toString('latin1')}`)
    if (e !== undefined) return e.value ?? undefined
    return this.inner.fetch(key, windowStartMs)
  }

  fetchRange(key: Buffer, timeFrom: number, timeTo: number): AsyncIterable<{ readonly windowStartMs: number; readonly value: Buffer }> {
    const below = this.inner.fetchRange(key, timeFrom, timeTo)
    const cached = this.cachedOf(key, (e) => e.startMs >= timeFrom && e.startMs <= timeTo)
    if (cached.length === 0) return below
    cached.sort((a, b) => a.startMs - b.startMs)
    return mergeSorted(
      below,
      cached,
      (w, c) => w.windowStartMs - c.startMs,
      (c) => ({ windowStartMs: c.startMs, value: c.value! }),
    )
  }

  async *fetchAll(
    timeFrom: number,
    timeTo: number,
  ): AsyncIterable<{ readonly key: Buffer; readonly windowStartMs: number; readonly value: Buffer }> {
    const cached = this.empty ? [] : this.allCached((e) => e.startMs >= timeFrom && e.startMs <= timeTo)
    if (cached.length === 0) {
      yield* this.inner.fetchAll(timeFrom, timeTo)
      return
    }
    const merged = new Map<string, { key: Buffer; windowStartMs: number; value: Buffer | null }>()
    for await (const w of this.inner.fetchAll(timeFrom, timeTo)) merged.set(`${w.windowStartMs}|${w.key.toString('latin1')}`, w)
    for (const c of cached) merged.set(c.id, { key: c.key, windowStartMs: c.startMs, value: c.value })
    const out = [...merged.values()].filter((w) => w.value !== null)
    out.sort((a, b) => a.windowStartMs - b.windowStartMs || a.key.compare(b.key))
    for (const w of out) yield { key: w.key, windowStartMs: w.windowStartMs, value: w.value! }
  }

  protected readBelow(entries: ReadonlyArray<WindowEntry>): Promise<Array<Buffer | undefined>> {
    return Promise.all(entries.map((e) => this.inner.fetch(e.key, e.startMs)))
  }

  protected writeBelow(e: WindowEntry): Promise<void> {
    return this.inner.put(e.key, e.startMs, e.value)
  }

  protected override windowOf(e: WindowEntry): FlushedBytes['window'] {
    return { startMs: e.startMs, endMs: e.startMs + this.windowSizeMs }
  }
}

/** Session caching layer (Kafka Streams: `CachingSessionStore`). */
export class CachingSessionBytesStore extends WindowedCachingLayer<SessionEntry> implements SessionBytesStore {
  readonly retentionMs: number

  constructor(
    readonly inner: SessionBytesStore,
    cache: RecordCache,
    host: CacheHost,
    hitRatio?: ValueRecorder,
  ) {
    super(inner, cache, host, hitRatio)
    this.retentionMs = inner.retentionMs
  }

  async put(key: Buffer, startMs: number, endMs: number, value: Buffer | null): Promise<void> {
    if (this.listener === undefined) return this.inner.put(key, startMs, endMs, value)
    const keyStr = key.toString('latin1')
    return this.write({
      id: `${endMs}|${startMs}|${keyStr}`,
      key,
      keyStr,
      startMs,
      endMs,
      value,
      context: this.context(),
      size: cachedSize(key, value) + 16,
    })
  }

  async fetchSession(key: Buffer, startMs: number, endMs: number): Promise<Buffer | undefined> {
    const e = this.lookup(`${endMs}|${startMs}|${key.toString('latin1')}`)
    if (e !== undefined) return e.value ?? undefined
    return this.inner.fetchSession(key, startMs, endMs)
  }

  async *findSessions(
    key: Buffer | undefined,
    earliestSessionEndTime: number,
    latestSessionStartTime: number,
  ): AsyncIterable<{ readonly key: Buffer; readonly startMs: number; readonly endMs: number; readonly value: Buffer }> {
    const accept = (e: SessionEntry) => e.endMs >= earliestSessionEndTime && e.startMs <= latestSessionStartTime
    const below = this.inner.findSessions(key, earliestSessionEndTime, latestSessionStartTime)
    if (key !== undefined) {
      const cached = this.cachedOf(key, accept)
      if (cached.length === 0) {
        yield* below
        return
      }
      cached.sort((a, b) => a.endMs - b.endMs || a.startMs - b.startMs)
      yield* mergeSorted(
        below,
        cached,
        (s, c) => s.endMs - c.endMs || s.startMs - c.startMs,
        (c) => ({ key: c.key, startMs: c.startMs, endMs: c.endMs, value: c.value! }),
      )
      return
    }
    const cached = this.empty ? [] : this.allCached(accept)
    if (cached.length === 0) {
      yield* below
      return
    }
    const merged = new Map<string, { key: Buffer; startMs: number; endMs: number; value: Buffer | null }>()
    for await (const s of below) merged.set(`${s.endMs}|${s.startMs}|${s.key.toString('latin1')}`, s)
    for (const c of cached) merged.set(c.id, { key: c.key, startMs: c.startMs, endMs: c.endMs, value: c.value })
    const out = [...merged.values()].filter((s) => s.value !== null)
    out.sort((a, b) => a.endMs - b.endMs || a.key.compare(b.key) || a.startMs - b.startMs)
    for (const s of out) yield { key: s.key, startMs: s.startMs, endMs: s.endMs, value: s.value! }
  }

  protected readBelow(entries: ReadonlyArray<SessionEntry>): Promise<Array<Buffer | undefined>> {
    return Promise.all(entries.map((e) => this.inner.fetchSession(e.key, e.startMs, e.endMs)))
  }

  protected writeBelow(e: SessionEntry): Promise<void> {
    return this.inner.put(e.key, e.startMs, e.endMs, e.value)
  }

  protected override windowOf(e: SessionEntry): FlushedBytes['window'] {
    return { startMs: e.startMs, endMs: e.endMs }
  }
}
