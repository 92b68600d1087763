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
 *
 * Over ~400 lines on purpose: one class holding one protocol (buffer → changelog → backend, and
 * restore) whose steps share private state; the position encoding is in store-position.ts.
 */
import { IllegalStateError, ProcessorStateError } from '../../topology/errors.js'
import type { RawRecord } from '../../topology/engine/types.js'
import type { BackendOp, BackendRange, OrderedBytesBackend } from './backend.js'
import { CacheBudget, CleanCache, mergeScan, WriteBuffer, type OverlayEntry } from './cache.js'
import { bkey } from './keys.js'
import { POSITION_KEY, decodePosition, encodePosition, type StorePosition } from './store-position.js'

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
