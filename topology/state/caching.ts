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
import type { KeyValueBytesStore } from './types.js'

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
  /** Writes every cached entry below and hands it to the listener. */
  flushCache(): Promise<void>
}

interface Entry {
  readonly key: Buffer
  readonly value: Buffer | null
  readonly context: CacheRecordContext
  readonly size: number
}

function sizeOf(key: Buffer, value: Buffer | null): number {
  return key.length + (value === null ? 0 : value.length) + CACHE_ENTRY_OVERHEAD
}

/** Whether `store` is a caching layer whose flush listener can be set. */
export function isFlushListenerTarget(store: unknown): store is FlushListenerTarget {
  return typeof (store as Partial<FlushListenerTarget> | null)?.setFlushListener === 'function'
}

/** Key-value caching layer (Kafka Streams: `CachingKeyValueStore` over its `NamedCache`). */
export class CachingKeyValueBytesStore implements KeyValueBytesStore, FlushListenerTarget, FlushableCache {
  readonly name: string
  readonly persistent: boolean
  /** Dirty entries by latin1 key, in the order of their latest write. */
  private dirty = new Map<string, Entry>()
  /** Entries being flushed (still visible to reads until written below). */
  private flushing: Map<string, Entry> | undefined
  private listener: BytesFlushListener | undefined
  private sendOldValues = false

  constructor(
    readonly inner: KeyValueBytesStore,
    private readonly cache: RecordCache,
    private readonly host: CacheHost,
  ) {
    this.name = inner.name
    this.persistent = inner.persistent
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

  private cached(k: string): Entry | undefined {
    return this.dirty.get(k) ?? this.flushing?.get(k)
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    const e = this.cached(key.toString('latin1'))
    if (e !== undefined) return e.value ?? undefined
    return this.inner.get(key)
  }

  async getMany(keys: ReadonlyArray<Buffer>): Promise<Array<Buffer | undefined>> {
    if (this.dirty.size === 0 && this.flushing === undefined) return this.inner.getMany(keys)
    const out = new Array<Buffer | undefined>(keys.length)
    const miss: number[] = []
    for (let i = 0; i < keys.length; i++) {
      const e = this.cached(keys[i]!.toString('latin1'))
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
    const k = key.toString('latin1')
    const old = this.dirty.get(k)
    const e: Entry = { key, value, context: this.host.recordContext(), size: sizeOf(key, value) }
    // delete first: the flush order is the order of the latest write (Kafka Streams' dirty keys)
    if (old !== undefined) this.dirty.delete(k)
    this.dirty.set(k, e)
    if (this.cache.charge(e.size - (old?.size ?? 0))) await this.flushCache()
  }

  async putAll(entries: ReadonlyArray<readonly [Buffer, Buffer | null]>): Promise<void> {
    for (const [k, v] of entries) await this.put(k, v)
  }

  async *range(from?: Buffer, to?: Buffer): AsyncIterable<readonly [Buffer, Buffer]> {
    if (this.dirty.size === 0 && this.flushing === undefined) {
      yield* this.inner.range(from, to)
      return
    }
    // the cached entries within the range, sorted, merged over the store below
    const inRange = (b: Buffer) => (from === undefined || b.compare(from) >= 0) && (to === undefined || b.compare(to) <= 0)
    const merged = new Map<string, Entry>()
    if (this.flushing) for (const [k, e] of this.flushing) if (inRange(e.key)) merged.set(k, e)
    for (const [k, e] of this.dirty) if (inRange(e.key)) merged.set(k, e)
    const cached = [...merged.values()].sort((a, b) => a.key.compare(b.key))
    let i = 0
    for await (const [k, v] of this.inner.range(from, to)) {
      while (i < cached.length && cached[i]!.key.compare(k) < 0) {
        const c = cached[i++]!
        if (c.value !== null) yield [c.key, c.value] as const
      }
      if (i < cached.length && cached[i]!.key.equals(k)) {
        const c = cached[i++]!
        if (c.value !== null) yield [c.key, c.value] as const
        continue
      }
      yield [k, v] as const
    }
    for (; i < cached.length; i++) {
      const c = cached[i]!
      if (c.value !== null) yield [c.key, c.value] as const
    }
  }

  approximateNumEntries(): Promise<number> {
    return this.inner.approximateNumEntries()
  }

  /**
   * Writes the dirty entries below in the order of their latest write and hands each to the
   * listener (Kafka Streams: `CachingKeyValueStore#putAndMaybeForward`). Writes made while it
   * runs (by processors downstream) are cached for the next flush.
   */
  async flushCache(): Promise<void> {
    if (this.dirty.size === 0 || this.flushing !== undefined) return
    const entries = this.dirty
    this.dirty = new Map()
    this.flushing = entries
    try {
      const list = [...entries.values()]
      const needOld = list.filter((e) => this.sendOldValues || e.value === null)
      const olds = new Map<Entry, Buffer | undefined>()
      if (needOld.length > 0) {
        const vals = await this.inner.getMany(needOld.map((e) => e.key))
        for (let i = 0; i < needOld.length; i++) olds.set(needOld[i]!, vals[i])
      }
      for (const e of list) {
        const old = olds.get(e)
        // a key deleted before it ever reached the store below: nothing to write or forward
        if (e.value === null && old === undefined) {
          this.release(e)
          continue
        }
        await this.inner.put(e.key, e.value)
        this.release(e)
        const listener = this.listener!
        const flushed: FlushedBytes = {
          key: e.key,
          newValue: e.value,
          oldValue: this.sendOldValues ? (old ?? null) : null,
          context: e.context,
        }
        await this.host.withRecordContext(e.context, () => listener(flushed))
      }
    } finally {
      // entries left when the listener failed: dropped (the task's uncommitted state goes with it)
      for (const e of entries.values()) this.cache.charge(-e.size)
      this.flushing = undefined
    }
  }

  private release(e: Entry): void {
    const k = e.key.toString('latin1')
    if (this.flushing?.get(k) === e) {
      this.flushing.delete(k)
      this.cache.charge(-e.size)
    }
  }

  /** Flushes the cache to the store below (Kafka Streams: `flush`); the owner of the store below flushes it. */
  async flush(): Promise<void> {
    await this.flushCache()
  }

  /** Drops the cached entries (the owner closes the store below). */
  async close(): Promise<void> {
    for (const e of this.dirty.values()) this.cache.charge(-e.size)
    this.dirty.clear()
  }
}
