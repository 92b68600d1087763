/**
 * The time-segmented base of the runtime window and session stores (Kafka Streams:
 * `RocksDBSegmentedBytesStore`): segments, retention, stream-time metadata and the key-index reads.
 */
import type { RawRecord } from '../../topology/engine/types.js'
import { ProcessorStateError } from '../../topology/errors.js'
import type { BackendOp, BackendRange } from './backend.js'
import type { OverlayEntry } from './cache.js'
import { hashBytes, hashBytes2, KeyIndex } from './key-index.js'
import { bkey, readOrderedLong, segmentPrefix } from './keys.js'
import { META_KEY } from './store-position.js'
import { RuntimeStore, type RuntimeStoreOptions } from './runtime-store.js'

const MIN = Number.MIN_SAFE_INTEGER
/** Placeholders of {@link SegmentedStore.indexedRead} while asynchronous backend reads resolve. */
const EMPTY_VALUE = Buffer.alloc(0)
const DELETED: readonly [number, number, Buffer] = [0, 0, EMPTY_VALUE]

/** Segment interval used when none is given: Kafka Streams' `max(retention / 2, 60 s)`. */
export function defaultSegmentInterval(retentionMs: number): number {
  return Math.max(Math.floor(retentionMs / 2), 60_000)
}

export interface SegmentedOptions extends RuntimeStoreOptions {
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
export abstract class SegmentedStore extends RuntimeStore {
  /**
   * Decodes one changelog record's key during restore; a key that does not decode is a
   * ProcessorStateError naming the store and the record's topic, partition and offset.
   */
  protected decodeChangelogKey<T>(r: RawRecord, key: Buffer, decode: (key: Buffer) => T, kind: string): T {
    try {
      return decode(key)
    } catch (err) {
      throw new ProcessorStateError(`Malformed ${kind} changelog key`, {
        cause: err,
        place: { ...this.place(), topic: r.topic, partition: r.partition, offset: r.offset },
      })
    }
  }

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
