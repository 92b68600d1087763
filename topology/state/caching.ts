/**
 * Record caching (Kafka Streams KIP-63: `ThreadCache`, `NamedCache`, `CachingKeyValueStore`,
 * `CacheFlushListener`).
 *
 * A store whose processor registers a flush listener (DSL tables and aggregations with
 * `Materialized.withCachingEnabled()`, the default) keeps its writes in a per-store cache of dirty
 * entries instead of writing them through: a later write to the same key replaces the earlier one.
 * The entries are written to the store below and handed to the listener (which forwards them
 * downstream as `Change(new, old)`) only when the cache is flushed:
 *
 * - at commit (`TaskEngine.flushCaches()`, called by the runtime before its commit and by the
 *   TopologyTestDriver after each record, as Kafka Streams' driver commits after each record);
 * - on eviction: when the bytes held by all caches sharing a {@link RecordCache} go over its
 *   `maxBytes` after a write, the store written to flushes all its entries (Kafka Streams evicts
 *   the least recently used entry of that store's cache, and evicting a dirty entry flushes the
 *   store's whole dirty set, the evicted entry first).
 *
 * A flush walks the entries in the order of their latest write. Each entry's old value is the
 * value below the cache (the last one flushed); an entry deleting a key that was never flushed is
 * dropped without forwarding anything. The listener sees the record context (timestamp, headers,
 * input record metadata) of the entry's latest write. Reads see cached entries first.
 *
 * Without a listener (e.g. a user store built with caching enabled) writes pass straight through:
 * nothing would be forwarded, and the runtime below already writes each key once per commit.
 *
 * Pure: no I/O; the store below is whatever the StoreProvider supplied.
 */
import type { Headers } from '../serde.js'
import type { RecordMetadata } from '../processor/types.js'
import type { BytesStoreBase, KeyValueBytesStore } from './types.js'
import { NOOP_RECORDER, type ValueRecorder } from '../engine/metrics.js'

/** Bytes charged per cached entry on top of its key and value bytes (record context, map slot). */
export const CACHE_ENTRY_OVERHEAD = 64

/**
 * The byte budget of the record caches of one application instance (Kafka Streams:
 * `statestore.cache.max.bytes`, the `ThreadCache` size). Shared by all tasks the caches belong to.
 */
export class RecordCache {
  private usedBytes = 0
  /**
   * @param maxBytes upper bound of the bytes all caches hold; 0 disables caching (every update is
   *   forwarded at once). Must be a non-negative integer.
   */
  constructor(readonly maxBytes: number) {
    if (typeof maxBytes !== 'number' || !(maxBytes >= 0)) throw new TypeError(`RecordCache: maxBytes must be >= 0, got ${String(maxBytes)}`)
  }
  /** Whether caching is on (`maxBytes > 0`). */
  get enabled(): boolean {
    return this.maxBytes > 0
  }
  /** Bytes held by the caches. */
  get used(): number {
    return this.usedBytes
  }
  /** Adds (or, negative, releases) bytes; returns whether the caches are now over `maxBytes`. */
  charge(delta: number): boolean {
    this.usedBytes += delta
    return this.usedBytes > this.maxBytes
  }
}

/** The context of the write that produced a cached entry (Kafka Streams: `ProcessorRecordContext`). */
export interface CacheRecordContext {
  /** Timestamp of the record being processed when the entry was written. */
  readonly timestamp: number
  readonly headers: Headers
  /** The input record being processed, undefined inside a punctuator. */
  readonly metadata: RecordMetadata | undefined
}

/** What a cache needs of the task running it (the task engine). */
export interface CacheHost {
  /** The context of the write happening now. */
  recordContext(): CacheRecordContext
  /** Runs `fn` with `context` as the current record context (the flush of an entry). */
  withRecordContext(context: CacheRecordContext, fn: () => Promise<void>): Promise<void>
}

/** An entry handed to a bytes flush listener: the new value and (when asked for) the old one. */
export interface FlushedBytes {
  readonly key: Buffer
  /**
   * Window and session stores: the entry's window (window stores: `[start, start + windowSizeMs]`;
   * session stores: the session's `[start, end]`). Undefined for key-value stores.
   */
  readonly window?: { readonly startMs: number; readonly endMs: number }
  /** `null`: the key was deleted. */
  readonly newValue: Buffer | null
  /** The value below the cache before this flush; `null` when absent or not asked for. */
  readonly oldValue: Buffer | null
  readonly context: CacheRecordContext
}

/** Called for each flushed entry, in order, after the entry is written below. */
export type BytesFlushListener = (entry: FlushedBytes) => Promise<void>

/** A store that may forward its flushed entries (the typed facades ask for it). */
export interface FlushListenerTarget {
  /**
   * Registers the listener of flushed entries (Kafka Streams: `CachedStateStore#setFlushListener`).
   * @returns true when the store caches (the listener forwards; the processor must not), false
   *   when it writes through (the processor forwards itself).
   */
  setFlushListener(listener: BytesFlushListener, sendOldValues: boolean): boolean
}

/** A cache that a task flushes at commit. */
export interface FlushableCache {
  /** Number of cached entries. */
  readonly size: number
  /** Writes every cached entry below and hands it to the listener. */
  flushCache(): Promise<void>
}

/** Whether `store` is a caching layer whose flush listener can be set. */
export function isFlushListenerTarget(store: unknown): store is FlushListenerTarget {
  return typeof (store as Partial<FlushListenerTarget> | null)?.setFlushListener === 'function'
}

/** A cached write. `id` identifies the cached slot (key, plus window or session for those stores). */
export interface CachedEntry {
  readonly id: string
  readonly key: Buffer
  /** `null`: a delete. */
  readonly value: Buffer | null
  readonly context: CacheRecordContext
  readonly size: number
}

/** Bytes charged for caching `value` under `key`. */
export function cachedSize(key: Buffer, value: Buffer | null): number {
  return key.length + (value === null ? 0 : value.length) + CACHE_ENTRY_OVERHEAD
}

/**
 * The dirty set of one caching store (Kafka Streams: `NamedCache`) and its flush: the entries in
 * the order of their latest write, charged to the shared {@link RecordCache}. Subclasses say how
 * an entry is read and written below and which window it stands for.
 */
export abstract class CachingLayer<E extends CachedEntry> implements FlushListenerTarget, FlushableCache {
  /** Dirty entries by id, in the order of their latest write. */
  protected dirty = new Map<string, E>()
  /** Entries being flushed (still visible to reads until written below). */
  protected flushing: Map<string, E> | undefined
  /** The listener; undefined: writes pass straight through. */
  protected listener: BytesFlushListener | undefined
  private sendOldValues = false
  private reads = 0
  private hits = 0
  readonly name: string
  readonly persistent: boolean

  /**
   * @param below the store below the cache (its name and persistence are the layer's)
   * @param hitRatio records the share of point reads the cache answered, after each one (`hit-ratio`)
   */
  constructor(
    below: BytesStoreBase,
    protected readonly cache: RecordCache,
    protected readonly host: CacheHost,
    private readonly hitRatio: ValueRecorder = NOOP_RECORDER,
  ) {
    this.name = below.name
    this.persistent = below.persistent
  }

  setFlushListener(listener: BytesFlushListener, sendOldValues: boolean): boolean {
    this.listener = listener
    this.sendOldValues = sendOldValues
    return true
  }

  /** Number of dirty entries (tests, metrics). */
  get size(): number {
    return this.dirty.size + (this.flushing?.size ?? 0)
  }

  /** True when nothing is cached (reads go straight below). */
  protected get empty(): boolean {
    return this.dirty.size === 0 && this.flushing === undefined
  }

  /** The cached entry of `id` (the latest write), if any. */
  protected cached(id: string): E | undefined {
    return this.dirty.get(id) ?? this.flushing?.get(id)
  }

  /** {@link cached} for a point read, counted as a hit or a miss of the cache. */
  protected lookup(id: string): E | undefined {
    const e = this.empty ? undefined : this.cached(id)
    this.reads++
    if (e !== undefined) this.hits++
    this.hitRatio.record(this.hits / this.reads)
    return e
  }

  /** Counts `n` point reads that missed (the cache is empty). */
  protected missed(n: number): void {
    for (let i = 0; i < n; i++) this.hitRatio.record(this.hits / ++this.reads)
  }

  /** The context of the write happening now (for a new entry). */
  protected context(): CacheRecordContext {
    return this.host.recordContext()
  }

  /** Caches a write; when the caches are over their budget, flushes this store. */
  protected async write(e: E): Promise<void> {
    const old = this.dirty.get(e.id)
    // delete first: the flush order is the order of the latest write (Kafka Streams' dirty keys)
    if (old !== undefined) this.dirty.delete(e.id)
    this.dirty.set(e.id, e)
    if (old === undefined && this.flushing?.has(e.id) !== true) this.added(e)
    if (this.cache.charge(e.size - (old?.size ?? 0))) await this.flushCache()
  }

  /** A new id is cached (neither dirty nor being flushed before). */
  protected added(_e: E): void {}
  /** An id left the cache (flushed or dropped, and not written again meanwhile). */
  protected removed(_e: E): void {}

  /** The values below the cache of `entries` (old values), in order. */
  protected abstract readBelow(entries: ReadonlyArray<E>): Promise<Array<Buffer | undefined>>
  /** Writes `e` to the store below. */
  protected abstract writeBelow(e: E): Promise<void>
  /** The window `e` stands for (window and session stores). */
  protected windowOf(_e: E): FlushedBytes['window'] {
    return undefined
  }

  /**
   * Writes the dirty entries below in the order of their latest write and hands each to the
   * listener (Kafka Streams: `putAndMaybeForward` of the caching stores). An entry deleting what
   * never reached the store below is dropped without forwarding. Writes made while it runs (by
   * processors downstream) are cached for the next flush.
   */
  async flushCache(): Promise<void> {
    if (this.dirty.size === 0 || this.flushing !== undefined) return
    const entries = this.dirty
    this.dirty = new Map()
    this.flushing = entries
    try {
      const list = [...entries.values()]
      const needOld = list.filter((e) => this.sendOldValues || e.value === null)
      const olds = new Map<E, Buffer | undefined>()
      if (needOld.length > 0) {
        const vals = await this.readBelow(needOld)
        for (let i = 0; i < needOld.length; i++) olds.set(needOld[i]!, vals[i])
      }
      for (const e of list) {
        const old = olds.get(e)
        // a key deleted before it ever reached the store below: nothing to write or forward
        if (e.value === null && old === undefined) {
          this.release(e)
          continue
        }
        await this.writeBelow(e)
        this.release(e)
        const listener = this.listener!
        const window = this.windowOf(e)
        const flushed: FlushedBytes = {
          key: e.key,
          ...(window !== undefined ? { window } : {}),
          newValue: e.value,
          oldValue: this.sendOldValues ? (old ?? null) : null,
          context: e.context,
        }
        await this.host.withRecordContext(e.context, () => listener(flushed))
      }
    } finally {
      // entries left when the listener failed: dropped (the task's uncommitted state goes with it)
      for (const e of entries.values()) {
        this.cache.charge(-e.size)
        if (!this.dirty.has(e.id)) this.removed(e)
      }
      this.flushing = undefined
    }
  }

  private release(e: E): void {
    if (this.flushing?.get(e.id) === e) {
      this.flushing.delete(e.id)
      this.cache.charge(-e.size)
      if (!this.dirty.has(e.id)) this.removed(e)
    }
  }

  /** Flushes the cache to the store below (Kafka Streams: `flush`); the owner of the store below flushes it. */
  async flush(): Promise<void> {
    await this.flushCache()
  }

  /** Drops the cached entries (the owner closes the store below). */
  async close(): Promise<void> {
    for (const e of this.dirty.values()) {
      this.cache.charge(-e.size)
      if (this.flushing?.has(e.id) !== true) this.removed(e)
    }
    this.dirty.clear()
  }
}

/** Key-value caching layer (Kafka Streams: `CachingKeyValueStore` over its `NamedCache`). */
export class CachingKeyValueBytesStore extends CachingLayer<CachedEntry> implements KeyValueBytesStore {
  constructor(
    readonly inner: KeyValueBytesStore,
    cache: RecordCache,
    host: CacheHost,
    hitRatio?: ValueRecorder,
  ) {
    super(inner, cache, host, hitRatio)
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    const e = this.lookup(key.toString('latin1'))
    if (e !== undefined) return e.value ?? undefined
    return this.inner.get(key)
  }

  async getMany(keys: ReadonlyArray<Buffer>): Promise<Array<Buffer | undefined>> {
    if (this.empty) {
      this.missed(keys.length)
      return this.inner.getMany(keys)
    }
    const out = new Array<Buffer | undefined>(keys.length)
    const miss: number[] = []
    for (let i = 0; i < keys.length; i++) {
      const e = this.lookup(keys[i]!.toString('latin1'))
      if (e !== undefined) out[i] = e.value ?? undefined
      else miss.push(i)
    }
    if (miss.length > 0) {
      const vals = await this.inner.getMany(miss.map((i) => keys[i]!))
      for (let j = 0; j < miss.length; j++) out[miss[j]!] = vals[j]
    }
    return out
  }

  async put(key: Buffer, value: Buffer | null): Promise<void> {
    if (this.listener === undefined) return this.inner.put(key, value)
    return this.write({ id: key.toString('latin1'), key, value, context: this.context(), size: cachedSize(key, value) })
  }

  async putAll(entries: ReadonlyArray<readonly [Buffer, Buffer | null]>): Promise<void> {
    for (const [k, v] of entries) await this.put(k, v)
  }

  async *range(from?: Buffer, to?: Buffer): AsyncIterable<readonly [Buffer, Buffer]> {
    if (this.empty) {
      yield* this.inner.range(from, to)
      return
    }
    // the cached entries within the range, sorted, merged over the store below
    const inRange = (b: Buffer) => (from === undefined || b.compare(from) >= 0) && (to === undefined || b.compare(to) <= 0)
    const merged = new Map<string, CachedEntry>()
    if (this.flushing) for (const [k, e] of this.flushing) if (inRange(e.key)) merged.set(k, e)
    for (const [k, e] of this.dirty) if (inRange(e.key)) merged.set(k, e)
    const cached = [...merged.values()].sort((a, b) => a.key.compare(b.key))
    yield* mergeSorted(
      this.inner.range(from, to),
      cached,
      (kv, c) => kv[0].compare(c.key),
      (c) => [c.key, c.value!] as const,
    )
  }

  approximateNumEntries(): Promise<number> {
    return this.inner.approximateNumEntries()
  }

  protected readBelow(entries: ReadonlyArray<CachedEntry>): Promise<Array<Buffer | undefined>> {
    return this.inner.getMany(entries.map((e) => e.key))
  }

  protected writeBelow(e: CachedEntry): Promise<void> {
    return this.inner.put(e.key, e.value)
  }
}

/**
 * Merges `below` (sorted) with the sorted cached entries `cached`: a cached entry replaces the
 * entry below it compares equal to (`compare(below, cached) === 0`), a cached delete hides it, and
 * the others are interleaved in order (Kafka Streams: `AbstractMergedSortedCacheStoreIterator`).
 */
export async function* mergeSorted<T, E extends { readonly value: Buffer | null }>(
  below: AsyncIterable<T>,
  cached: ReadonlyArray<E>,
  compare: (below: T, cached: E) => number,
  toItem: (cached: E) => T,
): AsyncIterable<T> {
  let i = 0
  for await (const item of below) {
    while (i < cached.length && compare(item, cached[i]!) > 0) {
      const c = cached[i++]!
      if (c.value !== null) yield toItem(c)
    }
    if (i < cached.length && compare(item, cached[i]!) === 0) {
      const c = cached[i++]!
      if (c.value !== null) yield toItem(c)
      continue
    }
    yield item
  }
  for (; i < cached.length; i++) {
    const c = cached[i]!
    if (c.value !== null) yield toItem(c)
  }
}
