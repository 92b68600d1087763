/**
 * Runtime bytes stores (Kafka Streams: `RocksDBStore`, `RocksDBWindowStore`,
 * `RocksDBSessionStore` with `CachingKeyValueStore` and `ChangeLoggingKeyValueBytesStore` on
 * top), laid out on an {@link OrderedBytesBackend} (LevelDB, or memory for `persistent: false`).
 *
 * One store = backend + {@link WriteBuffer} (dirty entries) + {@link CleanCache} (LRU of clean
 * entries). The caching and change-logging layers of Kafka Streams are folded into that one
 * write buffer on purpose: under exactly-once the buffer is at the same time the cache's dirty
 * set, the changelog's pending records (`prepareCommit`) and the not-yet-durable local writes
 * (`commitLocal`); three decorators would buffer the same writes three times.
 *
 * Reads: write buffer → clean LRU → backend (LevelDB `getSync`, or one `getMany` for batches).
 * Range reads merge the write buffer over backend iterators (ordering, deletes).
 *
 * Two modes: `managed` (inside a TaskStateManager: `flush()` does nothing, the task's commit
 * protocol moves writes to LevelDB) and `autoCommit` (standalone: `flush()` writes the buffer).
 */
import { IllegalStateError, ProcessorStateError } from '../../topology/errors.js'
import type {
  KeyValueBytesStore,
  SessionBytesStore,
  StoreDef,
  WindowBytesStore,
} from '../../topology/state/types.js'
import type { RawRecord } from '../../topology/engine/types.js'
import type { BackendOp, BackendRange, OrderedBytesBackend } from './backend.js'
import { CacheBudget, CleanCache, mergeScan, WriteBuffer, type OverlayEntry } from './cache.js'
import {
  bkey,
  decodeSessionChangelogKey,
  decodeSessionStoreKey,
  decodeWindowChangelogKey,
  decodeWindowStoreKey,
  prefixUpperBound,
  segmentKeyPrefix,
  segmentPrefix,
  sessionChangelogKey,
  sessionStoreKey,
  windowChangelogKey,
  windowStoreKey,
} from './keys.js'

/** Options shared by the runtime stores. */
export interface RuntimeStoreOptions {
  readonly name: string
  readonly backend: OrderedBytesBackend
  /** Shared byte budget; a private unbounded one when omitted. */
  readonly budget?: CacheBudget
  /** Keep a clean LRU of read entries. @defaultValue true */
  readonly cachingEnabled?: boolean
  /** `managed`: flush() is a no-op (TaskStateManager commits). @defaultValue 'autoCommit' */
  readonly mode?: 'managed' | 'autoCommit'
  /** fsync the LevelDB batch of a commit (so the checkpoint never runs ahead of the data). @defaultValue false */
  readonly syncWrites?: boolean
  /** For error messages. */
  readonly taskId?: string
}

/** A changelog record's key and value as produced from a buffered entry. */
export interface ChangelogEntry {
  readonly key: Buffer
  readonly value: Buffer | null
}

const MIN = Number.MIN_SAFE_INTEGER
/** Metadata key (sorts after every segment prefix in use): stream-time and sequence number. */
const META_KEY = Buffer.from('ffffffffffffffffff', 'hex')

/** Base of the three runtime stores: buffer, cache, commit and restore protocol. */
export abstract class RuntimeStore {
  readonly name: string
  readonly persistent: boolean
  protected readonly backend: OrderedBytesBackend
  protected readonly buffer: WriteBuffer
  protected readonly clean: CleanCache
  protected readonly budget: CacheBudget
  private readonly mode: 'managed' | 'autoCommit'
  private readonly syncWrites: boolean
  protected readonly taskId: string | undefined
  /** Incremented whenever the backend changes, so a slow read never caches a stale value. */
  private epoch = 0
  private closed = false

  constructor(options: RuntimeStoreOptions) {
    this.name = options.name
    this.backend = options.backend
    this.persistent = options.backend.persistent
    this.budget = options.budget ?? new CacheBudget(Number.POSITIVE_INFINITY)
    this.buffer = new WriteBuffer(this.budget)
    this.clean = new CleanCache(this.budget, options.cachingEnabled ?? true)
    this.mode = options.mode ?? 'autoCommit'
    this.syncWrites = options.syncWrites ?? false
    this.taskId = options.taskId
  }

  /** Loads store metadata from the backend (called once after opening). */
  async init(): Promise<void> {}

  /** Number of buffered (uncommitted) entries. */
  get bufferedEntries(): number {
    return this.buffer.size
  }

  protected checkOpen(): void {
    if (this.closed) throw new IllegalStateError(`Store ${this.name} is closed`, { place: this.place() })
  }

  protected place(): { taskId?: string; store: string } {
    return this.taskId !== undefined ? { taskId: this.taskId, store: this.name } : { store: this.name }
  }

  protected wrap(err: unknown, what: string): ProcessorStateError {
    if (err instanceof ProcessorStateError) return err
    return new ProcessorStateError(`${what} failed`, { cause: err, place: this.place() })
  }

  /** Point read through buffer → clean cache → backend. */
  protected async getPoint(k: Buffer): Promise<Buffer | undefined> {
    this.checkOpen()
    const s = bkey(k)
    const e = this.buffer.get(s)
    if (e) return e.value ?? undefined
    const c = this.clean.get(s)
    if (c !== undefined) return c ?? undefined
    const epoch = this.epoch
    let v: Buffer | undefined
    try {
      const r = this.backend.get(k)
      v = r instanceof Promise ? await r : r
    } catch (err) {
      throw this.wrap(err, 'get')
    }
    if (epoch === this.epoch && !this.buffer.get(s)) this.clean.set(s, v ?? null)
    return v
  }

  /** Batched point reads: misses go to the backend in one call. */
  protected async getPoints(keys: ReadonlyArray<Buffer>): Promise<Array<Buffer | undefined>> {
    this.checkOpen()
    const out = new Array<Buffer | undefined>(keys.length)
    const missIdx: number[] = []
    for (let i = 0; i < keys.length; i++) {
      const s = bkey(keys[i]!)
      const e = this.buffer.get(s)
      if (e) {
        out[i] = e.value ?? undefined
        continue
      }
      const c = this.clean.get(s)
      if (c !== undefined) out[i] = c ?? undefined
      else missIdx.push(i)
    }
    if (missIdx.length === 0) return out
    if (missIdx.length === 1) {
      out[missIdx[0]!] = await this.getPoint(keys[missIdx[0]!]!)
      return out
    }
    const epoch = this.epoch
    let vals: Array<Buffer | undefined>
    try {
      vals = await this.backend.getMany(missIdx.map((i) => keys[i]!))
    } catch (err) {
      throw this.wrap(err, 'getMany')
    }
    const cacheable = epoch === this.epoch
    for (let j = 0; j < missIdx.length; j++) {
      const i = missIdx[j]!
      const s = bkey(keys[i]!)
      const e = this.buffer.get(s)
      if (e) {
        out[i] = e.value ?? undefined // written while we were reading
        continue
      }
      out[i] = vals[j]
      if (cacheable) this.clean.set(s, vals[j] ?? null)
    }
    return out
  }

  /** Buffers a write. */
  protected putEntry(k: Buffer, value: Buffer | null, group?: string): void {
    this.checkOpen()
    const s = bkey(k)
    this.clean.delete(s)
    this.buffer.put(s, group !== undefined ? { key: k, value, group } : { key: k, value }, this.clean)
  }

  /** Merged range scan. */
  protected scan(ranges: ReadonlyArray<BackendRange>, overlay: ReadonlyArray<OverlayEntry>): AsyncGenerator<readonly [Buffer, Buffer]> {
    this.checkOpen()
    return mergeScan(this.backend, ranges, overlay)
  }

  // ------------------------------------------------------------------ commit protocol

  /** Step 1: snapshots the dirty entries; returns their changelog form. */
  prepareCommit(): ChangelogEntry[] {
    this.checkOpen()
    return this.buffer.snapshot().map((e) => this.toChangelog(e))
  }

  /** Step 3: writes the snapshot to the backend (one batch), then moves it to the clean cache. */
  async commitLocal(): Promise<number> {
    this.checkOpen()
    const entries = this.buffer.committingEntries()
    if (entries.length === 0) {
      this.buffer.takeCommitting()
      return 0
    }
    const ops: BackendOp[] = entries.map(([, e]) => [e.key, e.value] as const)
    for (const op of this.commitExtraOps(entries)) ops.push(op)
    try {
      await this.backend.write(ops, this.syncWrites)
    } catch (err) {
      throw this.wrap(err, 'commit write')
    }
    this.epoch++
    this.buffer.takeCommitting()
    for (const [s, e] of entries) if (!this.buffer.get(s) && this.cacheOnCommit()) this.clean.set(s, e.value)
    await this.afterBackendWrite()
    return entries.length
  }

  /** Drops uncommitted writes. */
  abort(): void {
    this.buffer.clear()
    this.afterAbort()
  }

  /** Applies changelog records straight to the backend (restore, standby): one batch. */
  async restore(records: ReadonlyArray<RawRecord>): Promise<number> {
    this.checkOpen()
    const ops = this.restoreOps(records)
    for (const op of this.restoreExtraOps()) ops.push(op)
    try {
      await this.backend.write(ops, this.syncWrites)
    } catch (err) {
      throw this.wrap(err, 'restore write')
    }
    this.epoch++
    for (const [k] of ops) this.clean.delete(bkey(k))
    await this.afterBackendWrite()
    return ops.length
  }

  /** Deletes everything in the backend and the caches (before a full restore). */
  async reset(): Promise<void> {
    this.buffer.clear()
    this.clean.clear()
    this.epoch++
    await this.backend.clearRange(undefined, undefined)
    this.afterReset()
  }

  /** BytesStoreBase.flush: standalone stores write their buffer; managed stores do nothing. */
  async flush(): Promise<void> {
    if (this.mode === 'managed' || this.closed) return
    this.prepareCommit()
    await this.commitLocal()
  }

  async close(): Promise<void> {
    if (this.closed) return
    if (this.mode === 'autoCommit') await this.flush()
    this.closed = true
    this.buffer.clear()
    this.clean.close()
    await this.backend.close()
  }

  protected abstract toChangelog(e: OverlayEntry): ChangelogEntry
  protected abstract restoreOps(records: ReadonlyArray<RawRecord>): BackendOp[]
  protected commitExtraOps(_entries: ReadonlyArray<readonly [string, OverlayEntry]>): BackendOp[] {
    return []
  }
  protected restoreExtraOps(): BackendOp[] {
    return []
  }
  protected cacheOnCommit(): boolean {
    return true
  }
  protected async afterBackendWrite(): Promise<void> {}
  protected afterAbort(): void {}
  protected afterReset(): void {}
}

// ============================================================================ key-value

/** Key-value bytes store (Kafka Streams: `RocksDBStore` + caching + change-logging). */
export class RuntimeKeyValueStore extends RuntimeStore implements KeyValueBytesStore {
  get(key: Buffer): Promise<Buffer | undefined> {
    return this.getPoint(key)
  }

  getMany(keys: ReadonlyArray<Buffer>): Promise<Array<Buffer | undefined>> {
    return this.getPoints(keys)
  }

  async put(key: Buffer, value: Buffer | null): Promise<void> {
    this.putEntry(key, value)
  }

  async putAll(entries: ReadonlyArray<readonly [Buffer, Buffer | null]>): Promise<void> {
    for (const [k, v] of entries) this.putEntry(k, v)
  }

  range(from?: Buffer, to?: Buffer): AsyncIterable<readonly [Buffer, Buffer]> {
    const r: BackendRange = { ...(from ? { gte: from } : {}), ...(to ? { lte: to } : {}) }
    if (from && to && Buffer.compare(from, to) > 0) return (async function* () {})()
    return this.scan([r], this.buffer.rangeEntries(r))
  }

  async approximateNumEntries(): Promise<number> {
    return (await this.backend.count()) + this.buffer.size
  }

  protected toChangelog(e: OverlayEntry): ChangelogEntry {
    return { key: e.key, value: e.value }
  }

  protected restoreOps(records: ReadonlyArray<RawRecord>): BackendOp[] {
    const ops: BackendOp[] = []
    for (const r of records) if (r.key) ops.push([r.key, r.value])
    return ops
  }
}

// ============================================================================ segmented

/** Segment interval used when none is given: Kafka Streams' `max(retention / 2, 60 s)`. */
export function defaultSegmentInterval(retentionMs: number): number {
  return Math.max(Math.floor(retentionMs / 2), 60_000)
}

interface SegmentedOptions extends RuntimeStoreOptions {
  readonly retentionMs: number
  /** Width of a time segment, ms. @defaultValue {@link defaultSegmentInterval} */
  readonly segmentIntervalMs?: number
}

/** Shared logic of the time-segmented window and session stores. */
abstract class SegmentedStore extends RuntimeStore {
  readonly retentionMs: number
  readonly segmentIntervalMs: number
  /** Largest time put (window start / session end), including uncommitted puts. */
  protected observedStreamTime = MIN
  /** Largest time written to the backend. */
  protected persistedStreamTime = MIN
  protected seq = 0
  /** Segments below this id are known to be cleared from the backend. */
  private clearedBelow = MIN

  constructor(options: SegmentedOptions) {
    super(options)
    if (!(options.retentionMs >= 0)) {
      throw new ProcessorStateError(`Store ${options.name} needs retentionMs >= 0, got ${options.retentionMs}`)
    }
    this.retentionMs = options.retentionMs
    this.segmentIntervalMs = Math.max(1, options.segmentIntervalMs ?? defaultSegmentInterval(options.retentionMs))
  }

  override async init(): Promise<void> {
    const r = this.backend.get(META_KEY)
    const meta = r instanceof Promise ? await r : r
    if (meta) {
      try {
        const m = JSON.parse(meta.toString('utf8')) as { streamTime: number; seq: number }
        this.observedStreamTime = this.persistedStreamTime = m.streamTime
        this.seq = m.seq >>> 0
      } catch (err) {
        throw new ProcessorStateError(`Store ${this.name} has corrupt metadata`, { cause: err, place: this.place() })
      }
    }
    await this.dropExpiredSegments()
  }

  /** Observed stream-time of the store (largest window start / session end put), -∞ as MIN_SAFE_INTEGER. */
  get streamTime(): number {
    return this.observedStreamTime
  }

  segmentId(t: number): number {
    return Math.floor(t / this.segmentIntervalMs)
  }

  /**
   * Smallest live time, `observedStreamTime - retentionMs + 1` (Kafka Streams' rule, and the
   * in-memory stores' in topology/state/memory.ts): older entries are expired.
   */
  protected minLiveTime(): number {
    return this.observedStreamTime === MIN ? MIN : this.observedStreamTime - this.retentionMs + 1
  }

  protected observe(t: number): void {
    if (t > this.observedStreamTime) this.observedStreamTime = t
  }

  /** Full-segment ranges for segments covering `[lo, hi]`. */
  protected segmentRanges(lo: number, hi: number): BackendRange[] {
    const out: BackendRange[] = []
    for (let s = this.segmentId(lo); s <= this.segmentId(hi); s++) out.push({ gte: segmentPrefix(s), lt: segmentPrefix(s + 1) })
    return out
  }

  protected metaOp(maxTime: number): BackendOp {
    if (maxTime > this.persistedStreamTime) this.persistedStreamTime = maxTime
    return [META_KEY, Buffer.from(JSON.stringify({ streamTime: this.persistedStreamTime, seq: this.seq }))]
  }

  protected override restoreExtraOps(): BackendOp[] {
    return [this.metaOp(this.observedStreamTime)]
  }

  protected override async afterBackendWrite(): Promise<void> {
    await this.dropExpiredSegments()
  }

  protected override afterAbort(): void {
    this.observedStreamTime = this.persistedStreamTime
  }

  protected override afterReset(): void {
    this.observedStreamTime = this.persistedStreamTime = MIN
    this.seq = 0
    this.clearedBelow = MIN
  }

  /** Drops whole segments older than the persisted stream-time's retention with one range delete. */
  private async dropExpiredSegments(): Promise<void> {
    if (this.persistedStreamTime === MIN) return
    const minLiveSegment = this.segmentId(this.persistedStreamTime - this.retentionMs + 1)
    if (minLiveSegment <= this.clearedBelow) return
    try {
      await this.backend.clearRange(undefined, segmentPrefix(minLiveSegment))
    } catch (err) {
      throw this.wrap(err, 'segment cleanup')
    }
    this.clearedBelow = minLiveSegment
    this.dropCleanAfterClear()
  }

  private dropCleanAfterClear(): void {
    // Cleared entries may sit in the clean cache; they are filtered by time on read, but drop
    // the cache's stale bytes for memory's sake only when it is cheap: a full clear.
    if (this.clean.size > 0 && this.clean.size < 10_000) this.clean.clear()
  }
}

// ============================================================================ window

/** Options of a {@link RuntimeWindowStore}. */
export interface WindowStoreOptions extends SegmentedOptions {
  readonly windowSizeMs: number
  readonly retainDuplicates?: boolean
}

/**
 * Window bytes store (Kafka Streams: `RocksDBWindowStore` over `RocksDBSegmentedBytesStore`).
 * LevelDB key `segmentId | keyLen | key | windowStart | seq`; segment = `windowStart / segmentIntervalMs`.
 * Stream-time = the largest window start put; windows with start `<= streamTime - retentionMs`
 * are expired (puts ignored, reads skip them) and whole expired segments are range-deleted.
 */
export class RuntimeWindowStore extends SegmentedStore implements WindowBytesStore {
  readonly windowSizeMs: number
  readonly retainDuplicates: boolean

  constructor(options: WindowStoreOptions) {
    super(options)
    this.windowSizeMs = options.windowSizeMs
    this.retainDuplicates = options.retainDuplicates ?? false
  }

  async put(key: Buffer, windowStartMs: number, value: Buffer | null): Promise<void> {
    this.checkOpen()
    if (windowStartMs < this.minLiveTime()) return
    if (this.retainDuplicates) {
      if (value === null) return
      this.seq = (this.seq + 1) >>> 0
    }
    this.observe(windowStartMs)
    const seq = this.retainDuplicates ? this.seq : 0
    this.putEntry(windowStoreKey(this.segmentId(windowStartMs), key, windowStartMs, seq), value, bkey(key))
  }

  async fetch(key: Buffer, windowStartMs: number): Promise<Buffer | undefined> {
    if (windowStartMs < this.minLiveTime()) return undefined
    if (!this.retainDuplicates) return this.getPoint(windowStoreKey(this.segmentId(windowStartMs), key, windowStartMs, 0))
    for await (const e of this.fetchRange(key, windowStartMs, windowStartMs)) return e.value
    return undefined
  }

  async *fetchRange(key: Buffer, timeFrom: number, timeTo: number): AsyncIterable<{ readonly windowStartMs: number; readonly value: Buffer }> {
    this.checkOpen()
    const lo = Math.max(timeFrom, this.minLiveTime())
    const hi = Math.min(timeTo, this.observedStreamTime)
    if (lo > hi) return
    const ranges: BackendRange[] = []
    for (let s = this.segmentId(lo); s <= this.segmentId(hi); s++) {
      ranges.push({ gte: windowStoreKey(s, key, lo, 0), lte: windowStoreKey(s, key, hi, 0xffffffff) })
    }
    const overlay = this.buffer.groupEntries(bkey(key))
    const klen = key.length
    for await (const [k, v] of this.scan(ranges, overlay)) {
      const start = decodeWindowStoreKey(k).windowStartMs
      if (start < lo || start > hi || k.readUInt32BE(8) !== klen) continue
      if (start < this.minLiveTime()) continue
      yield { windowStartMs: start, value: v }
    }
  }

  async *fetchAll(timeFrom: number, timeTo: number): AsyncIterable<{ readonly key: Buffer; readonly windowStartMs: number; readonly value: Buffer }> {
    this.checkOpen()
    const lo = Math.max(timeFrom, this.minLiveTime())
    const hi = Math.min(timeTo, this.observedStreamTime)
    if (lo > hi) return
    const ranges = this.segmentRanges(lo, hi)
    const overlay = this.buffer.rangeEntries({ gte: ranges[0]!.gte!, lt: ranges[ranges.length - 1]!.lt! })
    for await (const [k, v] of this.scan(ranges, overlay)) {
      const p = decodeWindowStoreKey(k)
      if (p.windowStartMs < lo || p.windowStartMs > hi || p.windowStartMs < this.minLiveTime()) continue
      yield { key: Buffer.from(p.key), windowStartMs: p.windowStartMs, value: v }
    }
  }

  protected override cacheOnCommit(): boolean {
    return !this.retainDuplicates
  }

  protected toChangelog(e: OverlayEntry): ChangelogEntry {
    const p = decodeWindowStoreKey(e.key)
    return { key: windowChangelogKey(p.key, p.windowStartMs, p.seq), value: e.value }
  }

  protected override commitExtraOps(entries: ReadonlyArray<readonly [string, OverlayEntry]>): BackendOp[] {
    let max = MIN
    for (const [, e] of entries) {
      const t = decodeWindowStoreKey(e.key).windowStartMs
      if (t > max) max = t
    }
    return [this.metaOp(max)]
  }

  protected restoreOps(records: ReadonlyArray<RawRecord>): BackendOp[] {
    const ops: BackendOp[] = []
    for (const r of records) {
      if (!r.key) continue
      let p
      try {
        p = decodeWindowChangelogKey(r.key)
      } catch (err) {
        throw new ProcessorStateError(`Malformed window changelog key`, { cause: err, place: { ...this.place(), topic: r.topic, partition: r.partition, offset: r.offset } })
      }
      this.observe(p.windowStartMs)
      if (p.windowStartMs < this.minLiveTime()) continue
      if (this.retainDuplicates && p.seq > this.seq) this.seq = p.seq
      ops.push([windowStoreKey(this.segmentId(p.windowStartMs), Buffer.from(p.key), p.windowStartMs, p.seq), r.value])
    }
    return ops
  }
}

// ============================================================================ session

/**
 * Session bytes store (Kafka Streams: `RocksDBSessionStore`). LevelDB key
 * `segmentId | keyLen | key | end | start`; segment = `end / segmentIntervalMs`, so
 * `findSessions(key, earliestEnd, latestStart)` is one range scan per live segment. Stream-time =
 * largest session end put; sessions with end `<= streamTime - retentionMs` are expired.
 */
export class RuntimeSessionStore extends SegmentedStore implements SessionBytesStore {
  async put(key: Buffer, startMs: number, endMs: number, value: Buffer | null): Promise<void> {
    this.checkOpen()
    if (endMs < this.minLiveTime()) return
    this.observe(endMs)
    this.putEntry(sessionStoreKey(this.segmentId(endMs), key, startMs, endMs), value, bkey(key))
  }

  fetchSession(key: Buffer, startMs: number, endMs: number): Promise<Buffer | undefined> {
    if (endMs < this.minLiveTime()) return Promise.resolve(undefined)
    return this.getPoint(sessionStoreKey(this.segmentId(endMs), key, startMs, endMs))
  }

  async *findSessions(
    key: Buffer | undefined,
    earliestSessionEndTime: number,
    latestSessionStartTime: number,
  ): AsyncIterable<{ readonly key: Buffer; readonly startMs: number; readonly endMs: number; readonly value: Buffer }> {
    this.checkOpen()
    const lo = Math.max(earliestSessionEndTime, this.minLiveTime())
    const hi = this.observedStreamTime
    if (lo > hi) return
    let ranges: BackendRange[]
    let overlay: OverlayEntry[]
    if (key) {
      ranges = []
      for (let s = this.segmentId(lo); s <= this.segmentId(hi); s++) {
        const upper = prefixUpperBound(segmentKeyPrefix(s, key))
        ranges.push({ gte: sessionStoreKey(s, key, MIN, lo), ...(upper ? { lt: upper } : {}) })
      }
      overlay = this.buffer.groupEntries(bkey(key))
    } else {
      ranges = this.segmentRanges(lo, hi)
      overlay = this.buffer.rangeEntries({ gte: ranges[0]!.gte!, lt: ranges[ranges.length - 1]!.lt! })
    }
    for await (const [k, v] of this.scan(ranges, overlay)) {
      const p = decodeSessionStoreKey(k)
      if (p.endMs < lo || p.startMs > latestSessionStartTime || p.endMs < this.minLiveTime()) continue
      if (key && !p.key.equals(key)) continue
      yield { key: Buffer.from(p.key), startMs: p.startMs, endMs: p.endMs, value: v }
    }
  }

  protected toChangelog(e: OverlayEntry): ChangelogEntry {
    const p = decodeSessionStoreKey(e.key)
    return { key: sessionChangelogKey(p.key, p.startMs, p.endMs), value: e.value }
  }

  protected override commitExtraOps(entries: ReadonlyArray<readonly [string, OverlayEntry]>): BackendOp[] {
    let max = MIN
    for (const [, e] of entries) {
      const t = decodeSessionStoreKey(e.key).endMs
      if (t > max) max = t
    }
    return [this.metaOp(max)]
  }

  protected restoreOps(records: ReadonlyArray<RawRecord>): BackendOp[] {
    const ops: BackendOp[] = []
    for (const r of records) {
      if (!r.key) continue
      let p
      try {
        p = decodeSessionChangelogKey(r.key)
      } catch (err) {
        throw new ProcessorStateError(`Malformed session changelog key`, { cause: err, place: { ...this.place(), topic: r.topic, partition: r.partition, offset: r.offset } })
      }
      this.observe(p.endMs)
      if (p.endMs < this.minLiveTime()) continue
      ops.push([sessionStoreKey(this.segmentId(p.endMs), Buffer.from(p.key), p.startMs, p.endMs), r.value])
    }
    return ops
  }
}

/** Builds the runtime store for a {@link StoreDef} on `backend` (caller calls `init()`). */
export function createRuntimeStore(
  def: StoreDef,
  backend: OrderedBytesBackend,
  options: Omit<RuntimeStoreOptions, 'name' | 'backend'> & { segmentIntervalMs?: number } = {},
): RuntimeStore {
  const base = { ...options, name: def.name, backend, cachingEnabled: options.cachingEnabled ?? def.cachingEnabled }
  switch (def.type) {
    case 'keyValue':
      return new RuntimeKeyValueStore(base)
    case 'window':
      if (def.windowSizeMs === undefined || def.retentionMs === undefined) {
        throw new ProcessorStateError(`Window store ${def.name} needs windowSizeMs and retentionMs`, { place: { store: def.name } })
      }
      return new RuntimeWindowStore({
        ...base,
        retentionMs: def.retentionMs,
        windowSizeMs: def.windowSizeMs,
        retainDuplicates: def.retainDuplicates ?? false,
        ...(options.segmentIntervalMs !== undefined ? { segmentIntervalMs: options.segmentIntervalMs } : {}),
      })
    case 'session':
      if (def.retentionMs === undefined) {
        throw new ProcessorStateError(`Session store ${def.name} needs retentionMs`, { place: { store: def.name } })
      }
      return new RuntimeSessionStore({
        ...base,
        retentionMs: def.retentionMs,
        ...(options.segmentIntervalMs !== undefined ? { segmentIntervalMs: options.segmentIntervalMs } : {}),
      })
  }
}
