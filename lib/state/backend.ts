/**
 * Ordered bytes backends: the bottom layer of every runtime store. A backend is a sorted map of
 * Buffer keys to Buffer values (unsigned byte order) with batched writes and range deletes.
 * Two implementations: {@link LevelDbBackend} (classic-level, one database per store per task)
 * and {@link MemoryBackend} (over an in-memory `KeyValueBytesStore`, for `persistent: false`
 * stores). Key-value, window and session stores are all laid out on a backend (see keys.ts).
 *
 * @internal
 */
import { ClassicLevel } from 'classic-level'
import { ProcessorStateError } from '../../topology/errors.js'
import type { KeyValueBytesStore } from '../../topology/state/types.js'

/** Range bounds: `gte`/`lt` as in LevelDB; omitted bounds are open. */
export interface BackendRange {
  readonly gte?: Buffer
  readonly lt?: Buffer
  readonly lte?: Buffer
}

/** One write: `null` value deletes. */
export type BackendOp = readonly [key: Buffer, value: Buffer | null]

export interface OrderedBytesBackend {
  readonly persistent: boolean
  /** Whether an operation has failed with a LevelDB corruption error (see {@link isCorruptionError}). */
  readonly corrupted?: boolean
  /** Point read; LevelDB answers synchronously (no event-loop hop), memory may return a promise. */
  get(key: Buffer): Buffer | undefined | Promise<Buffer | undefined>
  /** Batched point reads (one LevelDB call). */
  getMany(keys: ReadonlyArray<Buffer>): Promise<Array<Buffer | undefined>>
  /** Ascending scan of a range, in chunks of at most `chunk` entries. */
  iterate(range: BackendRange, chunk?: number): AsyncGenerator<ReadonlyArray<readonly [Buffer, Buffer]>>
  /** Ascending scan of the keys of a range (no values read), in chunks of at most `chunk` keys. */
  iterateKeys(range: BackendRange, chunk?: number): AsyncGenerator<ReadonlyArray<Buffer>>
  /** Writes all ops atomically (LevelDB: one batch). `sync` = fsync before resolving. */
  write(ops: ReadonlyArray<BackendOp>, sync?: boolean): Promise<void>
  /** Deletes every key in `[gte, lt)`. */
  clearRange(gte: Buffer | undefined, lt: Buffer | undefined): Promise<void>
  count(): Promise<number>
  close(): Promise<void>
}

/**
 * True when `err`, or an error in its `cause` chain, carries classic-level's `LEVEL_LOCKED` code:
 * another process (or a task of this one being closed) still holds the store's LOCK file.
 * classic-level reports it as `LEVEL_DATABASE_NOT_OPEN` with a `LEVEL_LOCKED` cause.
 */
export function isLockError(err: unknown): boolean {
  return hasLevelCode(err, 'LEVEL_LOCKED')
}

/**
 * True when `err`, or an error in its `cause` chain, carries classic-level's `LEVEL_CORRUPTION`
 * code: LevelDB found a damaged or missing table, log or manifest file (a bad block, a bad magic
 * number, "missing files" at open). Classified by `code` only, never by message text.
 */
export function isCorruptionError(err: unknown): boolean {
  return hasLevelCode(err, 'LEVEL_CORRUPTION')
}

/** Whether `err` or an error in its `cause` chain (at most 8 deep) carries the classic-level `code`. */
function hasLevelCode(err: unknown, code: string): boolean {
  let e = err as { code?: unknown; cause?: unknown } | undefined
  for (let depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    if (e.code === code) return true
    e = e.cause as { code?: unknown; cause?: unknown } | undefined
  }
  return false
}

/** Options of {@link LevelDbBackend.open}. */
export interface LevelDbBackendOptions {
  /** For error messages. */
  readonly place?: { taskId?: string; store?: string }
  /**
   * Called (once per backend) when an operation fails with a LevelDB corruption error
   * ({@link isCorruptionError}), before the error is rethrown: the owner records that the store
   * must be wiped and restored from its changelog.
   */
  readonly onCorruption?: (error: unknown) => void
}

/** classic-level database with Buffer keys and values. */
export class LevelDbBackend implements OrderedBytesBackend {
  readonly persistent = true
  private closed = false
  private corruptionReported = false
  /** An operation failed with a LevelDB corruption error. */
  corrupted = false

  private constructor(
    readonly location: string,
    private readonly db: ClassicLevel<Buffer, Buffer>,
    private readonly onCorruption: ((error: unknown) => void) | undefined,
  ) {}

  /**
   * Opens (creating if missing) the database at `location`.
   * @param options place for error messages and the corruption callback; a plain place object is
   *   accepted as well.
   * @throws ProcessorStateError, retriable, when another process or instance holds its LOCK;
   *   not retriable for other LevelDB failures (corruption — the cause chain carries
   *   `LEVEL_CORRUPTION`, see {@link isCorruptionError} — or I/O).
   */
  static async open(location: string, options: LevelDbBackendOptions | { taskId?: string; store?: string } = {}): Promise<LevelDbBackend> {
    const o: LevelDbBackendOptions =
      'place' in options || 'onCorruption' in options
        ? (options as LevelDbBackendOptions)
        : { place: options as { taskId?: string; store?: string } }
    const place = o.place ?? {}
    const db = new ClassicLevel<Buffer, Buffer>(location, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
    try {
      await db.open({ createIfMissing: true })
    } catch (err) {
      if (isLockError(err)) {
        throw new ProcessorStateError(
          `State directory ${location} is locked: another instance (or another task manager in this process) still has this store open; retry once it has closed`,
          { cause: err, retriable: true, place },
        )
      }
      throw new ProcessorStateError(`Failed to open LevelDB store at ${location}`, { cause: err, place })
    }
    return new LevelDbBackend(location, db, o.onCorruption)
  }

  /** Reports a corruption error to the owner (once), then returns it for rethrowing. */
  private failed(err: unknown): unknown {
    if (!isCorruptionError(err)) return err
    this.corrupted = true
    if (!this.corruptionReported && this.onCorruption) {
      this.corruptionReported = true
      this.onCorruption(err)
    }
    return err
  }

  get(key: Buffer): Buffer | undefined {
    try {
      return this.db.getSync(key)
    } catch (err) {
      throw this.failed(err)
    }
  }

  getMany(keys: ReadonlyArray<Buffer>): Promise<Array<Buffer | undefined>> {
    return this.db.getMany(keys as Buffer[]).catch((err: unknown) => Promise.reject(this.failed(err)))
  }

  async *iterate(range: BackendRange, chunk = 1000): AsyncGenerator<ReadonlyArray<readonly [Buffer, Buffer]>> {
    const opts: { gte?: Buffer; lt?: Buffer; lte?: Buffer } = {}
    if (range.gte) opts.gte = range.gte
    if (range.lt) opts.lt = range.lt
    if (range.lte) opts.lte = range.lte
    const it = this.db.iterator(opts)
    try {
      // nextv may return fewer entries than asked (classic-level caps a read by bytes): only an
      // empty result means the end.
      for (;;) {
        let entries: Array<[Buffer, Buffer]>
        try {
          entries = await it.nextv(chunk)
        } catch (err) {
          throw this.failed(err)
        }
        if (entries.length === 0) return
        yield entries
      }
    } finally {
      await it.close()
    }
  }

  async *iterateKeys(range: BackendRange, chunk = 5000): AsyncGenerator<ReadonlyArray<Buffer>> {
    const opts: { gte?: Buffer; lt?: Buffer; lte?: Buffer } = {}
    if (range.gte) opts.gte = range.gte
    if (range.lt) opts.lt = range.lt
    if (range.lte) opts.lte = range.lte
    const it = this.db.keys(opts)
    try {
      for (;;) {
        let keys: Buffer[]
        try {
          keys = await it.nextv(chunk)
        } catch (err) {
          throw this.failed(err)
        }
        if (keys.length === 0) return
        yield keys
      }
    } finally {
      await it.close()
    }
  }

  async write(ops: ReadonlyArray<BackendOp>, sync = false): Promise<void> {
    if (ops.length === 0) return
    const batch = this.db.batch()
    for (const [k, v] of ops) {
      if (v === null) batch.del(k)
      else batch.put(k, v)
    }
    try {
      await batch.write(sync ? ({ sync: true } as object) : {})
    } catch (err) {
      throw this.failed(err)
    }
  }

  async clearRange(gte: Buffer | undefined, lt: Buffer | undefined): Promise<void> {
    const opts: { gte?: Buffer; lt?: Buffer } = {}
    if (gte) opts.gte = gte
    if (lt) opts.lt = lt
    try {
      await this.db.clear(opts)
    } catch (err) {
      throw this.failed(err)
    }
  }

  async count(): Promise<number> {
    let n = 0
    for await (const ks of this.iterateKeys({}, 5000)) n += ks.length
    return n
  }

  /**
   * Reads every entry once (keys and values), so LevelDB decodes every data block of every table:
   * a damaged table surfaces here as a corruption error instead of later, in the middle of
   * processing. Costs one full scan (about 2.5 s per million entries on this machine kind).
   * @throws the LevelDB error (the corruption callback has been called for a corruption).
   */
  async verify(): Promise<number> {
    let n = 0
    for await (const entries of this.iterate({}, 5000)) n += entries.length
    return n
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.db.close()
  }
}

/** A backend over an in-memory `KeyValueBytesStore` (topology's `InMemoryKeyValueBytesStore`). */
export class MemoryBackend implements OrderedBytesBackend {
  readonly persistent = false
  constructor(private readonly store: KeyValueBytesStore) {}

  get(key: Buffer): Promise<Buffer | undefined> {
    return this.store.get(key)
  }

  getMany(keys: ReadonlyArray<Buffer>): Promise<Array<Buffer | undefined>> {
    return this.store.getMany(keys)
  }

  async *iterate(range: BackendRange, chunk = 1000): AsyncGenerator<ReadonlyArray<readonly [Buffer, Buffer]>> {
    let out: Array<readonly [Buffer, Buffer]> = []
    for await (const e of this.store.range(range.gte, range.lte)) {
      if (range.lt && Buffer.compare(e[0], range.lt) >= 0) break
      out.push(e)
      if (out.length >= chunk) {
        yield out
        out = []
      }
    }
    if (out.length) yield out
  }

  async *iterateKeys(range: BackendRange, chunk = 5000): AsyncGenerator<ReadonlyArray<Buffer>> {
    for await (const entries of this.iterate(range, chunk)) yield entries.map((e) => e[0])
  }

  write(ops: ReadonlyArray<BackendOp>): Promise<void> {
    return ops.length ? this.store.putAll(ops) : Promise.resolve()
  }

  async clearRange(gte: Buffer | undefined, lt: Buffer | undefined): Promise<void> {
    const dels: BackendOp[] = []
    for await (const chunk of this.iterate({ gte, lt })) for (const [k] of chunk) dels.push([k, null])
    await this.write(dels)
  }

  count(): Promise<number> {
    return this.store.approximateNumEntries()
  }

  close(): Promise<void> {
    return this.store.close()
  }
}

/** First index `i` with `arr[i] >= x` in a sorted string array. */
export function lowerBound(arr: ReadonlyArray<string>, x: string): number {
  let lo = 0
  let hi = arr.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (arr[mid]! < x) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** First index `i` with `arr[i] > x` in a sorted string array. */
export function upperBound(arr: ReadonlyArray<string>, x: string): number {
  let lo = 0
  let hi = arr.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (arr[mid]! <= x) lo = mid + 1
    else hi = mid
  }
  return lo
}
