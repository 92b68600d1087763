/**
 * In-memory index of the entries a time-segmented store (window or session) holds in its
 * backend, so that the processors' per-record reads — a stream-stream join's
 * `fetchRange(key, t - before, t + after)` on the other side's buffer, a window aggregate's read of
 * the record's windows, a session aggregate's `findSessions(key, …)` — never open a LevelDB
 * iterator (tens to hundreds of µs each): keys that have nothing in a segment are skipped outright
 * (a negative cache), and present entries are read by exact key (clean cache, else LevelDB's
 * synchronous `getSync`, a few µs).
 *
 * Per live segment, a {@link SegmentEntries} maps the 32-bit hash of a record key to the list of
 * `(t1, t2)` pairs present for it — window stores: `(windowStart, seq)`; session stores:
 * `(sessionEnd, sessionStart)` — each tagged with a second, independent 32-bit hash of the key.
 * Keys whose first hashes collide share a list but not their entries (the tags differ), so a
 * delete of one never hides the other's entry; only a collision of both hashes (2^-64 per pair
 * of keys) could. A reader builds exact LevelDB keys from its own record key and the candidates,
 * so a candidate that is not its own, or is gone, is simply absent: the index may list more than
 * the backend holds, never less. Everything lives in typed arrays — about 24 bytes per entry plus
 * 8 per distinct hash — invisible to the GC.
 *
 * Memory is bounded: index bytes are charged to the task's {@link CacheBudget} (up to its index
 * share; dirty and clean entries get the rest). When the share is full, the task's largest index
 * raises its time floor so that its oldest quarter is no longer indexed, and compacts: the index
 * always covers the newest times — where per-record reads near stream-time go — and reads
 * reaching below the floor fall back to range scans. Expired segments are dropped whole. The
 * index is rebuilt on open by one scan of the backend's keys.
 *
 * @internal
 */
import type { CacheBudget } from './cache.js'

import { EMPTY_SEGMENT_BYTES, SegmentEntries } from './segment-entries.js'

export { hashBytes, hashBytes2, SegmentEntries } from './segment-entries.js'

/**
 * The index of one store: {@link SegmentEntries} per segment, the time floor below which it does
 * not index (`coveredFrom`), and the readiness flag (false until built from the backend).
 *
 * Invariant: once `ready`, every backend entry with `t1 >= coveredFrom` is listed. When the
 * budget's index share is full, the index with the most bytes raises its floor so that about a
 * quarter of its entries fall below it (oldest times first — the ones per-record reads near
 * stream-time need least) and compacts; reads reaching below the floor scan the backend.
 */
export class KeyIndex {
  private readonly segments = new Map<number, SegmentEntries>()
  /** Entries with `t1` below this are not indexed. */
  private floor = Number.NEGATIVE_INFINITY
  /** Segments below this id are expired: never indexed again. */
  private segmentFloor = Number.NEGATIVE_INFINITY
  private heldBytes = 0
  /** The index reflects every backend entry with `t1 >= coveredFrom` (built and maintained since). */
  ready = false

  /**
   * @param budget the task's cache budget (the index's bytes count against its index share)
   * @param unique whether `(t1, t2)` pairs are unique per key (false for stores with duplicates,
   *   whose sequence numbers make them unique anyway: adding skips the duplicate check)
   */
  constructor(
    private readonly budget: CacheBudget,
    readonly unique: boolean,
  ) {
    budget.registerIndex(this)
  }

  /** Bytes held by this index. */
  get bytes(): number {
    return this.heldBytes
  }

  /** Smallest `t1` the index covers (-Infinity: all). */
  get coveredFrom(): number {
    return this.floor
  }

  /** Live indexed entries (all segments). */
  get entries(): number {
    let n = 0
    for (const s of this.segments.values()) n += s.size
    return n
  }

  /** Ids of the segments holding indexed entries, ascending. */
  indexedSegments(): number[] {
    return [...this.segments.keys()].sort((a, b) => a - b)
  }

  /** True when reads of entries with `t1 >= lo` can rely on the index. */
  covers(lo: number): boolean {
    return this.ready && lo >= this.floor
  }

  add(segment: number, h: number, h2: number, a: number, b: number): void {
    if (segment < this.segmentFloor || a < this.floor) return
    let s = this.segments.get(segment)
    const growth = s ? s.growthBound() : EMPTY_SEGMENT_BYTES
    if (growth > 0) {
      this.budget.makeIndexRoom(growth, this)
      if (a < this.floor) return // this index made the room by raising its floor above `a`
      s = this.segments.get(segment)
    }
    if (!s) {
      s = new SegmentEntries()
      this.segments.set(segment, s)
      this.account(s.bytes)
    }
    const before = s.bytes
    s.add(h, h2, a, b, this.unique)
    if (s.bytes !== before) this.account(s.bytes - before)
  }

  remove(segment: number, h: number, h2: number, a: number, b: number): void {
    this.segments.get(segment)?.remove(h, h2, a, b)
  }

  /** `(a, b)` may be present in the backend (`true` also when the index does not cover `a`). */
  mayHave(segment: number, h: number, h2: number, a: number, b: number): boolean {
    if (!this.covers(a)) return true
    const s = this.segments.get(segment)
    return s !== undefined && s.has(h, h2, a, b)
  }

  /** Appends the candidate pairs of the key with hashes `h`, `h2` in `segment` with `lo <= t1 <= hi`. */
  collect(segment: number, h: number, h2: number, lo: number, hi: number, out: number[]): void {
    this.segments.get(segment)?.collect(h, h2, lo, hi, out)
  }

  /** Forgets the segments below `segment` (expired and range-deleted). */
  dropBelow(segment: number): void {
    if (segment <= this.segmentFloor) return
    this.segmentFloor = segment
    for (const [id, s] of this.segments) {
      if (id < segment) {
        this.segments.delete(id)
        this.account(-s.bytes)
      }
    }
  }

  /** Empties the index (the backend was cleared); `ready` tells whether it reflects the backend. */
  clear(ready: boolean): void {
    for (const s of this.segments.values()) this.account(-s.bytes)
    this.segments.clear()
    this.floor = Number.NEGATIVE_INFINITY
    this.segmentFloor = Number.NEGATIVE_INFINITY
    this.ready = ready
  }

  /**
   * Raises the floor so that about a quarter of the entries (the oldest `t1`s) are no longer
   * indexed, and compacts the segments; returns the bytes freed (0: nothing to free).
   */
  shrink(): number {
    const n = this.entries
    if (n === 0) return this.dropEmpty()
    const step = Math.max(1, Math.floor(n / 4096))
    const sample: number[] = []
    let i = 0
    let max = Number.NEGATIVE_INFINITY
    for (const s of this.segments.values()) {
      s.forEachTime((t) => {
        if (t > max) max = t
        if (i++ % step === 0) sample.push(t)
      })
    }
    sample.sort((x, y) => x - y)
    const q = sample[Math.floor(sample.length / 4)]!
    // strictly above q: at least the entries at q go, so the floor always moves
    this.raiseFloor(Math.min(q + 1, max + 1))
    return this.lastFreed
  }

  /** Stops indexing everything indexed so far (the share cannot hold even this index's newest part). */
  giveUp(): number {
    let max = this.floor
    for (const s of this.segments.values()) s.forEachTime((t) => void (t > max && (max = t)))
    this.raiseFloor(max === Number.NEGATIVE_INFINITY ? max : max + 1)
    return this.lastFreed + this.dropEmpty()
  }

  close(): void {
    this.clear(false)
    this.budget.unregisterIndex(this)
  }

  private lastFreed = 0

  private raiseFloor(floor: number): void {
    const before = this.heldBytes
    if (floor > this.floor) {
      this.floor = floor
      for (const [id, s] of this.segments) {
        const kept = s.rebuildFrom(floor)
        if (kept) this.segments.set(id, kept)
        else this.segments.delete(id)
        this.account((kept ? kept.bytes : 0) - s.bytes)
      }
    }
    this.lastFreed = before - this.heldBytes
  }

  private dropEmpty(): number {
    let freed = 0
    for (const [id, s] of this.segments) {
      if (s.size === 0) {
        this.segments.delete(id)
        this.account(-s.bytes)
        freed += s.bytes
      }
    }
    return freed
  }

  private account(delta: number): void {
    this.heldBytes += delta
    this.budget.chargeIndex(delta)
  }
}
