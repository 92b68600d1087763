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
 * Range reads merge the write buffer over backend iterators (ordering, deletes). The per-key reads
 * of window and session stores — `fetchRange(key, …)`, `findSessions(key, …)`, `fetch`,
 * `fetchSession`, what joins and window/session aggregates call per record — go through the
 * store's key index instead (key-index.ts): the backend entries of that key and time range are
 * known in memory, so absent keys cost nothing and present entries are point reads (clean cache,
 * else a synchronous LevelDB `getSync`), merged with the key's buffered entries; no iterator is
 * opened unless the read reaches below the times the index covers (memory bound).
 *
 * Two modes: `managed` (inside a TaskStateManager: `flush()` does nothing, the task's commit
 * protocol moves writes to LevelDB) and `autoCommit` (standalone: `flush()` writes the buffer).
 *
 * Position: a persistent store keeps its changelog position (the next changelog offset its data
 * reflects) under the reserved key {@link POSITION_KEY}, written in the SAME LevelDB batch as the
 * data it describes (`commitLocal(position)`, `restore(records, position)`). LevelDB applies a
 * batch atomically and recovers its log as a prefix of the batches written, so a machine crash
 * that drops the log's unsynced tail takes the position back together with the data: the store
 * is never behind its recorded position, and restoring from it replays exactly the lost tail.
 */
import { IllegalStateError, ProcessorStateError } from '../../topology/errors.js'
import type { KeyValueBytesStore, SessionBytesStore, StoreDef, WindowBytesStore } from '../../topology/state/types.js'
import type { RawRecord } from '../../topology/engine/types.js'
import type { BackendOp, BackendRange, OrderedBytesBackend } from './backend.js'
import { CacheBudget, CleanCache, mergeScan, WriteBuffer, type OverlayEntry } from './cache.js'
import { hashBytes, hashBytes2, KeyIndex } from './key-index.js'
import {
  bkey,
  decodeSessionChangelogKey,
  decodeSessionStoreKey,
  decodeWindowChangelogKey,
  decodeWindowStoreKey,
  prefixUpperBound,
  readOrderedLong,
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
/** Placeholders of {@link SegmentedStore.indexedRead} while asynchronous backend reads resolve. */
const EMPTY_VALUE = Buffer.alloc(0)
const DELETED: readonly [number, number, Buffer] = [0, 0, EMPTY_VALUE]
/** Metadata key (sorts after every segment prefix in use): stream-time and sequence number. */
const META_KEY = Buffer.from('ffffffffffffffffff', 'hex')

/**
 * Reserved key of a persistent store's position: JSON `{"v":1,"offsets":{...},"clean":bool}`.
 * It sorts after every window/session key layout and their metadata key (segment ids never reach
 * `0xff…`), so segment scans and range deletes never touch it. Key-value stores hold user keys in
 * the same key space: a user key equal to it is rejected (puts and restored records fail with a
 * {@link ProcessorStateError}) and reads and scans never return it.
 */
export const POSITION_KEY = Buffer.concat([META_KEY, Buffer.from('kstreams.position', 'latin1')])

/** True when `k` is {@link POSITION_KEY}. */
export function isPositionKey(k: Buffer): boolean {
  return k.length === POSITION_KEY.length && k[0] === 0xff && k.equals(POSITION_KEY)
}

/** A persistent store's position as stored under {@link POSITION_KEY}. */
export interface StorePosition {
  /**
   * Next changelog offset the store's data reflects, per changelog source: the changelog topic
   * for a task's store, `<topic>:<partition>` for a global store.
   */
  readonly offsets: ReadonlyMap<string, string>
  /**
   * The store was closed in order after its last write (`close()`), not left by a crash. A store
   * that was not closed cleanly has its tables verified at the next open.
   */
  readonly clean: boolean
}

function encodePosition(offsets: ReadonlyMap<string, string>, clean: boolean): Buffer {
  const o: Record<string, string> = {}
  for (const [k, v] of [...offsets].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) o[k] = v
  return Buffer.from(JSON.stringify({ v: 1, offsets: o, clean }), 'utf8')
}

const OFFSET_RE = /^\d+$/

/** Decodes a stored position; undefined when the bytes are not a valid position. */
export function decodePosition(b: Buffer): StorePosition | undefined {
  let p: { v?: unknown; offsets?: unknown; clean?: unknown }
  try {
    p = JSON.parse(b.toString('utf8')) as typeof p
  } catch {
    return undefined
  }
  if (typeof p !== 'object' || p === null || p.v !== 1 || typeof p.offsets !== 'object' || p.offsets === null) return undefined
  const offsets = new Map<string, string>()
  for (const [k, v] of Object.entries(p.offsets as Record<string, unknown>)) {
    if (typeof v !== 'string' || !OFFSET_RE.test(v)) return undefined
    offsets.set(k, v)
  }
  return { offsets, clean: p.clean === true }
}

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
  /** The position in the backend (persistent stores); undefined: none stored. */
  private storedPosition: Map<string, string> | undefined
  /** Whether the stored position carries the clean-close flag. */
  private storedClean = false

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

  /**
   * Reads the position stored in the backend (persistent stores; in-memory stores have none).
   * @returns undefined when no position is stored.
   * @throws ProcessorStateError when the stored position is unreadable (unknown position: the
   *   owner wipes the store), or the backend read fails.
   */
  async readPosition(): Promise<StorePosition | undefined> {
    this.checkOpen()
    this.storedPosition = undefined
    this.storedClean = false
    if (!this.persistent) return undefined
    let raw: Buffer | undefined
    try {
      const r = this.backend.get(POSITION_KEY)
      raw = r instanceof Promise ? await r : r
    } catch (err) {
      throw this.wrap(err, 'position read')
    }
    if (raw === undefined) return undefined
    const p = decodePosition(raw)
    if (!p) throw new ProcessorStateError(`Store ${this.name} has an unreadable position (${raw.length} bytes)`, { place: this.place() })
    this.storedPosition = new Map(p.offsets)
    this.storedClean = p.clean
    return p
  }

  /** The position stored with the data (persistent stores), undefined when none is stored. */
  get position(): ReadonlyMap<string, string> | undefined {
    return this.storedPosition
  }

  /**
   * The position op for moving the stored position by `updates` (merged into the stored
   * offsets), or undefined when nothing changes. A written position is never flagged clean.
   */
  private positionOp(updates: ReadonlyMap<string, string> | undefined): { op: BackendOp; next: Map<string, string> } | undefined {
    if (!this.persistent || updates === undefined) return undefined
    const next = new Map(this.storedPosition ?? [])
    let changed = this.storedPosition === undefined || this.storedClean
    for (const [k, v] of updates) {
      if (next.get(k) !== v) {
        next.set(k, v)
        changed = true
      }
    }
    return changed ? { op: [POSITION_KEY, encodePosition(next, false)], next } : undefined
  }

  private positionWritten(next: Map<string, string>): void {
    this.storedPosition = next
    this.storedClean = false
  }

  /**
   * Moves the stored position by `updates` (one backend write, fsynced when `syncWrites`), with
   * no data: restoration reached an offset past records that changed nothing (markers,
   * compacted gaps), or an owner records where an empty store stands.
   */
  async writePosition(updates: ReadonlyMap<string, string>): Promise<void> {
    this.checkOpen()
    const p = this.positionOp(updates)
    if (!p) return
    try {
      await this.backend.write([p.op], this.syncWrites)
    } catch (err) {
      throw this.wrap(err, 'position write')
    }
    this.positionWritten(p.next)
  }

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

  /**
   * Step 3: writes the snapshot to the backend (one batch), then moves it to the clean cache.
   * @param position persistent stores: the changelog position the data reaches (merged into the
   *   stored position), written in the same atomic batch as the data.
   */
  async commitLocal(position?: ReadonlyMap<string, string>): Promise<number> {
    this.checkOpen()
    const entries = this.buffer.committingEntries()
    const pos = this.positionOp(position)
    if (entries.length === 0 && !pos) {
      this.buffer.takeCommitting()
      return 0
    }
    const ops: BackendOp[] = entries.map(([, e]) => [e.key, e.value] as const)
    if (entries.length) for (const op of this.commitExtraOps(entries)) ops.push(op)
    if (pos) ops.push(pos.op)
    try {
      await this.backend.write(ops, this.syncWrites)
    } catch (err) {
      throw this.wrap(err, 'commit write')
    }
    if (pos) this.positionWritten(pos.next)
    this.wroteToBackend(ops)
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

  /**
   * Applies changelog records straight to the backend (restore, standby): one batch.
   * @param position persistent stores: the changelog position after `records`, written in the
   *   same atomic batch.
   */
  async restore(records: ReadonlyArray<RawRecord>, position?: ReadonlyMap<string, string>): Promise<number> {
    this.checkOpen()
    const ops = this.restoreOps(records)
    for (const op of this.restoreExtraOps()) ops.push(op)
    const pos = this.positionOp(position)
    if (pos) ops.push(pos.op)
    try {
      await this.backend.write(ops, this.syncWrites)
    } catch (err) {
      throw this.wrap(err, 'restore write')
    }
    if (pos) this.positionWritten(pos.next)
    this.wroteToBackend(ops)
    this.epoch++
    for (const [k] of ops) this.clean.delete(bkey(k))
    await this.afterBackendWrite()
    return ops.length
  }

  /**
   * Deletes everything in the backend and the caches (before a full restore). The position is
   * deleted first, in its own (fsynced) write: a crash in the middle of the range delete leaves
   * a store without a position, which its owner wipes again, never a partly cleared store that
   * still claims its old position.
   */
  async reset(): Promise<void> {
    this.beforeReset()
    this.buffer.clear()
    this.clean.clear()
    this.epoch++
    try {
      if (this.persistent) await this.backend.write([[POSITION_KEY, null]], true)
      this.storedPosition = undefined
      this.storedClean = false
      await this.backend.clearRange(undefined, undefined)
    } catch (err) {
      this.resetFailed()
      throw this.wrap(err, 'reset')
    }
    this.afterReset()
  }

  /** BytesStoreBase.flush: standalone stores write their buffer; managed stores do nothing. */
  async flush(): Promise<void> {
    if (this.mode === 'managed' || this.closed) return
    this.prepareCommit()
    await this.commitLocal()
  }

  /**
   * Closes the store. A persistent store with a position flags it clean first (one fsynced
   * write), so the next open can skip verifying its tables; when that write fails the flag is
   * simply missing and the next open verifies. No flag after LevelDB reported corruption, or
   * with `markClean: false` (an owner giving up on a store it could not open).
   */
  async close(options: { markClean?: boolean } = {}): Promise<void> {
    if (this.closed) return
    if (this.mode === 'autoCommit') await this.flush()
    if (
      options.markClean !== false &&
      this.persistent &&
      this.storedPosition !== undefined &&
      !this.storedClean &&
      !this.backend.corrupted
    ) {
      try {
        await this.backend.write([[POSITION_KEY, encodePosition(this.storedPosition, true)]], true)
        this.storedClean = true
      } catch {
        // best effort: without the flag the next open verifies the tables
      }
    }
    this.closed = true
    this.buffer.clear()
    this.clean.close()
    this.afterClose()
    await this.backend.close()
  }

  /**
   * Reads one backend entry by exact key for a range read through the clean cache (and fills it):
   * LevelDB answers synchronously; the caller has already consulted the write buffer.
   */
  protected readClean(k: Buffer): Buffer | undefined | Promise<Buffer | undefined> {
    const s = bkey(k)
    const c = this.clean.get(s)
    if (c !== undefined) return c ?? undefined
    const epoch = this.epoch
    let r: Buffer | undefined | Promise<Buffer | undefined>
    try {
      r = this.backend.get(k)
    } catch (err) {
      throw this.wrap(err, 'get')
    }
    const fill = (v: Buffer | undefined): Buffer | undefined => {
      if (epoch === this.epoch && !this.buffer.get(s)) this.clean.set(s, v ?? null)
      return v
    }
    return r instanceof Promise ? r.then(fill, (err: unknown) => Promise.reject(this.wrap(err, 'get'))) : fill(r)
  }

  /** The buffered value of `k` (undefined: not buffered, or buffered as deleted). */
  protected bufferedValue(k: Buffer): Buffer | undefined {
    this.checkOpen()
    return this.buffer.get(bkey(k))?.value ?? undefined
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
  protected beforeReset(): void {}
  protected afterReset(): void {}
  protected resetFailed(): void {}
  protected afterClose(): void {}
  /** Called synchronously once `ops` are in the backend (commit, restore). */
  protected wroteToBackend(_ops: ReadonlyArray<BackendOp>): void {}
}

// ============================================================================ key-value

/** Key-value bytes store (Kafka Streams: `RocksDBStore` + caching + change-logging). */
export class RuntimeKeyValueStore extends RuntimeStore implements KeyValueBytesStore {
  get(key: Buffer): Promise<Buffer | undefined> {
    if (this.persistent && isPositionKey(key)) return Promise.resolve(undefined)
    return this.getPoint(key)
  }

  getMany(keys: ReadonlyArray<Buffer>): Promise<Array<Buffer | undefined>> {
    if (this.persistent && keys.some(isPositionKey)) {
      return this.getPoints(keys).then((vals) => vals.map((v, i) => (isPositionKey(keys[i]!) ? undefined : v)))
    }
    return this.getPoints(keys)
  }

  private checkKey(key: Buffer): void {
    if (this.persistent && isPositionKey(key)) {
      throw new ProcessorStateError(
        `Key ${key.toString('hex')} is reserved in persistent store ${this.name} (it holds the store's changelog position)`,
        { place: this.place() },
      )
    }
  }

  async put(key: Buffer, value: Buffer | null): Promise<void> {
    this.checkKey(key)
    this.putEntry(key, value)
  }

  async putAll(entries: ReadonlyArray<readonly [Buffer, Buffer | null]>): Promise<void> {
    for (const [k] of entries) this.checkKey(k)
    for (const [k, v] of entries) this.putEntry(k, v)
  }

  range(from?: Buffer, to?: Buffer): AsyncIterable<readonly [Buffer, Buffer]> {
    const r: BackendRange = { ...(from ? { gte: from } : {}), ...(to ? { lte: to } : {}) }
    if (from && to && Buffer.compare(from, to) > 0) return (async function* () {})()
    const it = this.scan([r], this.buffer.rangeEntries(r))
    if (!this.persistent || (to && Buffer.compare(to, POSITION_KEY) < 0) || (from && Buffer.compare(from, POSITION_KEY) > 0)) return it
    return (async function* () {
      for await (const e of it) if (!isPositionKey(e[0])) yield e
    })()
  }

  async approximateNumEntries(): Promise<number> {
    return Math.max(0, (await this.backend.count()) - (this.position !== undefined ? 1 : 0)) + this.buffer.size
  }

  protected toChangelog(e: OverlayEntry): ChangelogEntry {
    return { key: e.key, value: e.value }
  }

  protected restoreOps(records: ReadonlyArray<RawRecord>): BackendOp[] {
    const ops: BackendOp[] = []
    for (const r of records) {
      if (!r.key) continue
      if (this.persistent && isPositionKey(r.key)) {
        throw new ProcessorStateError(`Changelog record with the reserved position key of store ${this.name}`, {
          place: { ...this.place(), topic: r.topic, partition: r.partition, offset: r.offset },
        })
      }
      ops.push([r.key, r.value])
    }
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
  /**
   * Keep an in-memory index of the backend's entries per segment and record key (key-index.ts),
   * so per-key reads skip keys and segments that hold nothing and read present entries by exact
   * key instead of opening range iterators. Bounded by the budget's index share.
   * @defaultValue true
   */
  readonly keyIndex?: boolean
}

/** A candidate entry of an indexed per-key read: `t1`, `t2` and its buffered entry, if any. */
interface IndexedCandidate {
  readonly a: number
  readonly b: number
  readonly o: OverlayEntry | undefined
}

function byTimes(x: IndexedCandidate, y: IndexedCandidate): number {
  return x.a - y.a || x.b - y.b
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
  /** Index of the backend's entries (undefined: disabled). */
  protected readonly index: KeyIndex | undefined
  /** Bytes after the record key in a LevelDB key: 4 (window seq) or 8 (session start). */
  private readonly tailBytes: 4 | 8
  private indexBuild: Promise<void> | undefined
  /** Backend writes made while the index is being built (replayed after the scan). */
  private indexPending: BackendOp[][] | undefined
  /** Backend writes made while a reset clears the backend. */
  private resetPending: BackendOp[][] | undefined

  constructor(options: SegmentedOptions, tailBytes: 4 | 8, uniqueTimes: boolean) {
    super(options)
    if (!(options.retentionMs >= 0)) {
      throw new ProcessorStateError(`Store ${options.name} needs retentionMs >= 0, got ${options.retentionMs}`)
    }
    this.retentionMs = options.retentionMs
    this.segmentIntervalMs = Math.max(1, options.segmentIntervalMs ?? defaultSegmentInterval(options.retentionMs))
    this.tailBytes = tailBytes
    this.index = options.keyIndex === false ? undefined : new KeyIndex(this.budget, uniqueTimes)
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
    try {
      await this.buildIndex()
    } catch (err) {
      throw this.wrap(err, 'key index build')
    }
  }

  // ---------------------------------------------------------------- key index

  /**
   * Builds the key index by one scan of the backend's keys (no values). Writes made meanwhile are
   * logged and replayed afterwards, so the index never misses an entry (it may list an entry
   * that is gone: readers find it absent).
   */
  protected buildIndex(): Promise<void> {
    const idx = this.index
    if (!idx || idx.ready) return Promise.resolve()
    if (this.indexBuild) return this.indexBuild
    const pending: BackendOp[][] = []
    this.indexPending = pending
    idx.clear(false)
    idx.dropBelow(this.clearedBelow)
    const build = (async () => {
      try {
        for await (const keys of this.backend.iterateKeys({ lt: META_KEY }, 5000)) {
          for (const k of keys) this.indexKey(idx, k, true)
        }
        for (const ops of pending) for (const [k, v] of ops) this.indexKey(idx, k, v !== null)
        idx.ready = true
      } finally {
        if (this.indexPending === pending) this.indexPending = undefined
        this.indexBuild = undefined
      }
    })()
    this.indexBuild = build
    return build
  }

  /** Adds or removes the backend entry `k` in the index (ignores non-entry keys such as metadata). */
  private indexKey(idx: KeyIndex, k: Buffer, present: boolean): void {
    if (k.length < 20 + this.tailBytes) return
    const len = k.readUInt32BE(8)
    if (k.length !== 20 + len + this.tailBytes) return
    const seg = readOrderedLong(k, 0)
    const h = hashBytes(k, 12, 12 + len)
    const h2 = hashBytes2(k, 12, 12 + len)
    const a = readOrderedLong(k, 12 + len)
    const b = this.tailBytes === 4 ? k.readUInt32BE(20 + len) : readOrderedLong(k, 20 + len)
    if (present) idx.add(seg, h, h2, a, b)
    else idx.remove(seg, h, h2, a, b)
  }

  protected override wroteToBackend(ops: ReadonlyArray<BackendOp>): void {
    const idx = this.index
    if (!idx) return
    if (this.indexPending) this.indexPending.push(ops as BackendOp[])
    else if (this.resetPending) this.resetPending.push(ops as BackendOp[])
    else if (idx.ready) for (const [k, v] of ops) this.indexKey(idx, k, v !== null)
  }

  /**
   * Whether the index can answer a per-key read of entries with `t1 >= lo`; builds it first when
   * the store was used without `init()` (a failed build leaves reads on range scans).
   */
  protected async indexCovers(lo: number): Promise<boolean> {
    const idx = this.index
    if (!idx) return false
    if (!idx.ready) {
      try {
        await this.buildIndex()
      } catch {
        return false
      }
    }
    return idx.covers(lo)
  }

  /**
   * A per-key read through the index: the candidates of `key` in segments `[first, last]` with
   * `lo <= t1 <= hi` (and `accept(t1, t2)`), merged with the key's buffered entries, ascending by
   * `(t1, t2)` — the LevelDB key order within one record key. Present backend entries are read by
   * exact key (clean cache, then the backend; synchronous on LevelDB).
   */
  protected indexedRead(
    key: Buffer,
    first: number,
    last: number,
    lo: number,
    hi: number,
    accept: ((a: number, b: number) => boolean) | undefined,
    encode: (segment: number, a: number, b: number) => Buffer,
  ): Array<readonly [number, number, Buffer]> | Promise<Array<readonly [number, number, Buffer]>> {
    const idx = this.index!
    const h = hashBytes(key)
    const h2 = hashBytes2(key)
    const found: number[] = []
    for (let s = first; s <= last; s++) idx.collect(s, h, h2, lo, hi, found)
    const overlay = this.buffer.groupEntries(bkey(key))
    if (found.length === 0 && overlay.length === 0) return []
    const cands: IndexedCandidate[] = []
    for (let i = 0; i < found.length; i += 2) {
      const a = found[i]!
      const b = found[i + 1]!
      if (!accept || accept(a, b)) cands.push({ a, b, o: undefined })
    }
    const klen = key.length
    for (const o of overlay) {
      const k = o.key
      const seg = readOrderedLong(k, 0)
      if (seg < first || seg > last) continue
      const a = readOrderedLong(k, 12 + klen)
      const b = this.tailBytes === 4 ? k.readUInt32BE(20 + klen) : readOrderedLong(k, 20 + klen)
      if (a < lo || a > hi || (accept && !accept(a, b))) continue
      cands.push({ a, b, o })
    }
    if (cands.length > 1) cands.sort(byTimes)
    const out: Array<readonly [number, number, Buffer]> = []
    let promised: Array<Promise<unknown>> | undefined
    for (let i = 0; i < cands.length; i++) {
      const c = cands[i]!
      // equal times: one entry (the buffered one wins; foreign or replayed candidates repeat)
      if (i + 1 < cands.length && cands[i + 1]!.a === c.a && cands[i + 1]!.b === c.b) {
        if (c.o) cands[i + 1] = c
        continue
      }
      if (c.o) {
        if (c.o.value) out.push([c.a, c.b, c.o.value])
        continue
      }
      const r = this.readClean(encode(this.segmentId(c.a), c.a, c.b))
      if (r instanceof Promise) {
        const slot = out.length
        out.push([c.a, c.b, EMPTY_VALUE])
        ;(promised ??= []).push(r.then((v) => void (out[slot] = v ? [c.a, c.b, v] : DELETED)))
      } else if (r) out.push([c.a, c.b, r])
    }
    if (!promised) return out
    return Promise.all(promised).then(() => out.filter((e) => e !== DELETED))
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

  /** The time a store key is segmented by (window start; session end). */
  protected abstract timeOfStoreKey(storeKey: Buffer): number

  /** Persists the largest time among the committed entries with the store's metadata. */
  protected override commitExtraOps(entries: ReadonlyArray<readonly [string, OverlayEntry]>): BackendOp[] {
    let max = MIN
    for (const [, e] of entries) {
      const t = this.timeOfStoreKey(e.key)
      if (t > max) max = t
    }
    return [this.metaOp(max)]
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
    const pending = this.resetPending
    this.resetPending = undefined
    // The backend is empty: an empty index reflects it, plus whatever was written during the
    // clear. A build still scanning ends with a superset (its writes are logged as well).
    if (this.index && pending && !this.indexBuild) {
      this.index.clear(true)
      for (const ops of pending) for (const [k, v] of ops) this.indexKey(this.index, k, v !== null)
    }
  }

  protected override beforeReset(): void {
    if (!this.index || this.indexBuild) return
    // writes made while the backend is cleared are logged and replayed onto the emptied index
    this.index.ready = false
    this.resetPending = []
  }

  protected override resetFailed(): void {
    // the index stays not ready: the next per-key read rebuilds it from the backend
    this.resetPending = undefined
  }

  /**
   * The key index's state (diagnostics, tests): whether reads use it, its bytes, live entries,
   * segments holding entries (ascending) and the smallest time it covers (window start / session
   * end; older entries were given up for memory and are read by range scans).
   */
  keyIndexStats(): {
    readonly enabled: boolean
    readonly ready: boolean
    readonly bytes: number
    readonly entries: number
    readonly segments: number[]
    readonly coveredFrom: number
  } {
    const idx = this.index
    if (!idx) return { enabled: false, ready: false, bytes: 0, entries: 0, segments: [], coveredFrom: Number.POSITIVE_INFINITY }
    return {
      enabled: true,
      ready: idx.ready,
      bytes: idx.bytes,
      entries: idx.entries,
      segments: idx.indexedSegments(),
      coveredFrom: idx.coveredFrom,
    }
  }

  protected override afterClose(): void {
    this.index?.close()
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
    this.index?.dropBelow(minLiveSegment)
    // Cleared entries may sit in the clean cache (reads never ask for them): free their bytes,
    // keeping the live segments' entries. One pass over the cache per dropped segment range.
    this.clean.deleteBelow(bkey(segmentPrefix(minLiveSegment)))
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
    super(options, 4, !(options.retainDuplicates ?? false))
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
    if (!this.retainDuplicates) {
      const seg = this.segmentId(windowStartMs)
      const k = windowStoreKey(seg, key, windowStartMs, 0)
      // known absent from the backend: only the write buffer can have it
      if (this.index && !this.index.mayHave(seg, hashBytes(key), hashBytes2(key), windowStartMs, 0)) return this.bufferedValue(k)
      return this.getPoint(k)
    }
    for await (const e of this.fetchRange(key, windowStartMs, windowStartMs)) return e.value
    return undefined
  }

  async *fetchRange(
    key: Buffer,
    timeFrom: number,
    timeTo: number,
  ): AsyncIterable<{ readonly windowStartMs: number; readonly value: Buffer }> {
    this.checkOpen()
    const lo = Math.max(timeFrom, this.minLiveTime())
    const hi = Math.min(timeTo, this.observedStreamTime)
    if (lo > hi) return
    const first = this.segmentId(lo)
    const last = this.segmentId(hi)
    if (this.index && (this.index.ready ? this.index.covers(lo) : await this.indexCovers(lo))) {
      const r = this.indexedRead(key, first, last, lo, hi, undefined, (seg, a, b) => windowStoreKey(seg, key, a, b))
      const entries = r instanceof Promise ? await r : r
      for (const [start, , value] of entries) {
        if (start < this.minLiveTime()) continue
        yield { windowStartMs: start, value }
      }
      return
    }
    const ranges: BackendRange[] = []
    for (let s = first; s <= last; s++) {
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

  async *fetchAll(
    timeFrom: number,
    timeTo: number,
  ): AsyncIterable<{ readonly key: Buffer; readonly windowStartMs: number; readonly value: Buffer }> {
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

  protected toChangelog(e: OverlayEntry): ChangelogEntry {
    const p = decodeWindowStoreKey(e.key)
    return { key: windowChangelogKey(p.key, p.windowStartMs, p.seq), value: e.value }
  }

  protected timeOfStoreKey(storeKey: Buffer): number {
    return decodeWindowStoreKey(storeKey).windowStartMs
  }

  protected restoreOps(records: ReadonlyArray<RawRecord>): BackendOp[] {
    const ops: BackendOp[] = []
    for (const r of records) {
      if (!r.key) continue
      let p
      try {
        p = decodeWindowChangelogKey(r.key)
      } catch (err) {
        throw new ProcessorStateError(`Malformed window changelog key`, {
          cause: err,
          place: { ...this.place(), topic: r.topic, partition: r.partition, offset: r.offset },
        })
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
  constructor(options: SegmentedOptions) {
    super(options, 8, true)
  }

  async put(key: Buffer, startMs: number, endMs: number, value: Buffer | null): Promise<void> {
    this.checkOpen()
    if (endMs < this.minLiveTime()) return
    this.observe(endMs)
    this.putEntry(sessionStoreKey(this.segmentId(endMs), key, startMs, endMs), value, bkey(key))
  }

  fetchSession(key: Buffer, startMs: number, endMs: number): Promise<Buffer | undefined> {
    if (endMs < this.minLiveTime()) return Promise.resolve(undefined)
    const seg = this.segmentId(endMs)
    const k = sessionStoreKey(seg, key, startMs, endMs)
    if (this.index && !this.index.mayHave(seg, hashBytes(key), hashBytes2(key), endMs, startMs))
      return Promise.resolve(this.bufferedValue(k))
    return this.getPoint(k)
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
    const first = this.segmentId(lo)
    const last = this.segmentId(hi)
    if (key && this.index && (this.index.ready ? this.index.covers(lo) : await this.indexCovers(lo))) {
      const accept = (_end: number, start: number) => start <= latestSessionStartTime
      const r = this.indexedRead(key, first, last, lo, Number.POSITIVE_INFINITY, accept, (seg, end, start) =>
        sessionStoreKey(seg, key, start, end),
      )
      const entries = r instanceof Promise ? await r : r
      for (const [endMs, startMs, value] of entries) {
        if (endMs < this.minLiveTime()) continue
        yield { key: Buffer.from(key), startMs, endMs, value }
      }
      return
    }
    let ranges: BackendRange[]
    let overlay: OverlayEntry[]
    if (key) {
      ranges = []
      for (let s = first; s <= last; s++) {
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

  protected timeOfStoreKey(storeKey: Buffer): number {
    return decodeSessionStoreKey(storeKey).endMs
  }

  protected restoreOps(records: ReadonlyArray<RawRecord>): BackendOp[] {
    const ops: BackendOp[] = []
    for (const r of records) {
      if (!r.key) continue
      let p
      try {
        p = decodeSessionChangelogKey(r.key)
      } catch (err) {
        throw new ProcessorStateError(`Malformed session changelog key`, {
          cause: err,
          place: { ...this.place(), topic: r.topic, partition: r.partition, offset: r.offset },
        })
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
