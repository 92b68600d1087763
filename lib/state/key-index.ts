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
 * share). When the share is full, the oldest indexed segment (of this store, then of the task's
 * other stores) stops being indexed; reads of an unindexed segment fall back to a range scan
 * until the segment expires. The index is rebuilt on open by one scan of the backend's keys.
 *
 * @internal
 */
import type { CacheBudget } from './cache.js'

/** Entry-list terminator / "never used" slot. */
const EMPTY = -1
/** Slot whose hash is known but whose list is empty (kept until the next rehash). */
const VACANT = -2
const MIN_SLOTS = 16
const MIN_ENTRIES = 8
/** Bookkeeping bytes of one segment's object and arrays beyond their elements. */
const SEGMENT_OVERHEAD = 400

/** 32-bit hash (FNV-1a, then murmur3's finalizer) of `b[start, end)`: the index's slot hash. */
export function hashBytes(b: Uint8Array, start = 0, end = b.length): number {
  let h = 0x811c9dc5
  for (let i = start; i < end; i++) {
    h ^= b[i]!
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/**
 * A second, differently built 32-bit hash of `b[start, end)` (multiply-rotate over the bytes and
 * the length), stored with each entry: entries of keys whose {@link hashBytes} collide stay
 * apart, so a delete of one key never removes another key's entry.
 */
export function hashBytes2(b: Uint8Array, start = 0, end = b.length): number {
  let h = 0x9747b28c ^ (end - start)
  for (let i = start; i < end; i++) {
    h = Math.imul(h ^ b[i]!, 0x5bd1e995)
    h = (h << 13) | (h >>> 19)
  }
  h ^= h >>> 15
  h = Math.imul(h, 0x2c1b3c6d)
  h ^= h >>> 12
  h = Math.imul(h, 0x297a2d39)
  h ^= h >>> 15
  return h >>> 0
}

/**
 * One segment's entries: an open-addressing table of key hashes (linear probing) whose slots head
 * singly linked lists of `(t1, t2)` entries in parallel typed arrays, with a free list.
 */
export class SegmentEntries {
  private slotHash = new Uint32Array(MIN_SLOTS)
  private slotHead = new Int32Array(MIN_SLOTS).fill(EMPTY)
  /** Slots not EMPTY (live or VACANT). */
  private slotsUsed = 0
  private t1 = new Float64Array(MIN_ENTRIES)
  private t2 = new Float64Array(MIN_ENTRIES)
  private k2 = new Uint32Array(MIN_ENTRIES)
  private next = new Int32Array(MIN_ENTRIES)
  /** High-water mark of entry indexes. */
  private top = 0
  private free = EMPTY
  /** Live entries. */
  size = 0

  /** Bytes held (array capacities plus overhead). */
  get bytes(): number {
    return this.slotHash.byteLength + this.slotHead.byteLength + this.t1.byteLength + this.t2.byteLength + this.k2.byteLength + this.next.byteLength + SEGMENT_OVERHEAD
  }

  private findSlot(h: number): number {
    const mask = this.slotHash.length - 1
    let i = h & mask
    for (;;) {
      const head = this.slotHead[i]!
      if (head === EMPTY || this.slotHash[i] === h) return i
      i = (i + 1) & mask
    }
  }

  /**
   * Adds `(a, b)` of the key with hashes `h`, `h2`. With `unique`, an equal entry already present
   * is not added again (returns false).
   */
  add(h: number, h2: number, a: number, b: number, unique: boolean): boolean {
    let slot = this.findSlot(h)
    let head = this.slotHead[slot]!
    if (unique && head >= 0) {
      for (let e = head; e !== EMPTY; e = this.next[e]!) if (this.t1[e] === a && this.t2[e] === b && this.k2[e] === h2) return false
    }
    if (head === EMPTY) {
      if ((this.slotsUsed + 1) * 10 > this.slotHash.length * 7) {
        this.rehash()
        slot = this.findSlot(h)
        head = this.slotHead[slot]!
      }
      if (head === EMPTY) {
        this.slotsUsed++
        this.slotHash[slot] = h
      }
    }
    const e = this.allocEntry()
    this.t1[e] = a
    this.t2[e] = b
    this.k2[e] = h2
    this.next[e] = head >= 0 ? head : EMPTY
    this.slotHead[slot] = e
    this.size++
    return true
  }

  /** Removes every `(a, b)` of the key with hashes `h`, `h2`; returns how many. */
  remove(h: number, h2: number, a: number, b: number): number {
    const slot = this.findSlot(h)
    let e = this.slotHead[slot]!
    let prev = EMPTY
    let removed = 0
    while (e >= 0) {
      const n = this.next[e]!
      if (this.t1[e] === a && this.t2[e] === b && this.k2[e] === h2) {
        if (prev === EMPTY) this.slotHead[slot] = n === EMPTY ? VACANT : n
        else this.next[prev] = n
        this.next[e] = this.free
        this.free = e
        this.size--
        removed++
      } else {
        prev = e
      }
      e = n
    }
    return removed
  }

  /** True when `(a, b)` of the key with hashes `h`, `h2` is listed. */
  has(h: number, h2: number, a: number, b: number): boolean {
    for (let e = this.slotHead[this.findSlot(h)]!; e >= 0; e = this.next[e]!) if (this.t1[e] === a && this.t2[e] === b && this.k2[e] === h2) return true
    return false
  }

  /** Appends `a, b` to `out` for every entry of the key with hashes `h`, `h2` with `lo <= a <= hi`. */
  collect(h: number, h2: number, lo: number, hi: number, out: number[]): void {
    for (let e = this.slotHead[this.findSlot(h)]!; e >= 0; e = this.next[e]!) {
      const a = this.t1[e]!
      if (a >= lo && a <= hi && this.k2[e] === h2) out.push(a, this.t2[e]!)
    }
  }

  private allocEntry(): number {
    if (this.free !== EMPTY) {
      const e = this.free
      this.free = this.next[e]!
      return e
    }
    if (this.top === this.t1.length) {
      const cap = this.t1.length * 2
      const t1 = new Float64Array(cap)
      t1.set(this.t1)
      const t2 = new Float64Array(cap)
      t2.set(this.t2)
      const k2 = new Uint32Array(cap)
      k2.set(this.k2)
      this.k2 = k2
      const next = new Int32Array(cap)
      next.set(this.next)
      this.t1 = t1
      this.t2 = t2
      this.next = next
    }
    return this.top++
  }

  /** Rebuilds the slot table without VACANT slots, growing it when live slots need room. */
  private rehash(): void {
    const oldHash = this.slotHash
    const oldHead = this.slotHead
    let live = 0
    for (let i = 0; i < oldHead.length; i++) if (oldHead[i]! >= 0) live++
    let cap = MIN_SLOTS
    while ((live + 1) * 10 > cap * 5) cap *= 2
    this.slotHash = new Uint32Array(cap)
    this.slotHead = new Int32Array(cap).fill(EMPTY)
    this.slotsUsed = live
    const mask = cap - 1
    for (let i = 0; i < oldHead.length; i++) {
      const head = oldHead[i]!
      if (head < 0) continue
      const h = oldHash[i]!
      let j = h & mask
      while (this.slotHead[j] !== EMPTY) j = (j + 1) & mask
      this.slotHash[j] = h
      this.slotHead[j] = head
    }
  }
}

/**
 * The index of one store: {@link SegmentEntries} per indexed segment, the set of segments that are
 * not indexed (given up for memory), and the readiness flag (false until built from the backend).
 */
export class KeyIndex {
  private readonly segments = new Map<number, SegmentEntries>()
  /** Segments whose entries are not (all) indexed: reads must scan them. */
  private readonly unindexed = new Set<number>()
  /** Segments below this id are expired: never indexed again. */
  private floor = Number.MIN_SAFE_INTEGER
  private heldBytes = 0
  /** The index reflects every backend entry (built and maintained since). */
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

  /** Live indexed entries (all segments). */
  get entries(): number {
    let n = 0
    for (const s of this.segments.values()) n += s.size
    return n
  }

  /** Ids of the indexed segments, ascending. */
  indexedSegments(): number[] {
    return [...this.segments.keys()].sort((a, b) => a - b)
  }

  /** Ids of the segments given up for memory (reads scan them), ascending. */
  unindexedSegments(): number[] {
    return [...this.unindexed].sort((a, b) => a - b)
  }

  /** True when reads of `segment` can rely on the index. */
  covers(segment: number): boolean {
    return this.ready && !this.unindexed.has(segment)
  }

  add(segment: number, h: number, h2: number, a: number, b: number): void {
    if (segment < this.floor || this.unindexed.has(segment)) return
    let s = this.segments.get(segment)
    if (!s) {
      s = new SegmentEntries()
      this.segments.set(segment, s)
      this.charge(s.bytes, segment)
      if (this.segments.get(segment) !== s) return // given up at once
    }
    const before = s.bytes
    s.add(h, h2, a, b, this.unique)
    const delta = s.bytes - before
    if (delta !== 0) this.charge(delta, segment)
  }

  remove(segment: number, h: number, h2: number, a: number, b: number): void {
    this.segments.get(segment)?.remove(h, h2, a, b)
  }

  /** `(a, b)` may be present in the backend (`true` also when the segment is not indexed). */
  mayHave(segment: number, h: number, h2: number, a: number, b: number): boolean {
    if (!this.covers(segment)) return true
    const s = this.segments.get(segment)
    return s !== undefined && s.has(h, h2, a, b)
  }

  /** Appends the candidate pairs of the key with hashes `h`, `h2` in `segment` with `lo <= t1 <= hi`. */
  collect(segment: number, h: number, h2: number, lo: number, hi: number, out: number[]): void {
    this.segments.get(segment)?.collect(h, h2, lo, hi, out)
  }

  /** Forgets the segments below `segment` (expired and range-deleted). */
  dropBelow(segment: number): void {
    if (segment <= this.floor) return
    this.floor = segment
    for (const [id, s] of this.segments) {
      if (id < segment) {
        this.segments.delete(id)
        this.release(s.bytes)
      }
    }
    for (const id of this.unindexed) if (id < segment) this.unindexed.delete(id)
  }

  /** Empties the index (the backend was cleared); `ready` tells whether it reflects the backend. */
  clear(ready: boolean): void {
    for (const s of this.segments.values()) this.release(s.bytes)
    this.segments.clear()
    this.unindexed.clear()
    this.floor = Number.MIN_SAFE_INTEGER
    this.ready = ready
  }

  /**
   * Gives up the oldest indexed segment other than `except` (it becomes unindexed); returns the
   * bytes freed (0: nothing to give up).
   */
  evictOldest(except?: number): number {
    let oldest: number | undefined
    for (const id of this.segments.keys()) if (id !== except && (oldest === undefined || id < oldest)) oldest = id
    return oldest === undefined ? 0 : this.giveUp(oldest)
  }

  /** Stops indexing `segment`; returns the bytes freed. */
  giveUp(segment: number): number {
    this.unindexed.add(segment)
    const s = this.segments.get(segment)
    if (!s) return 0
    this.segments.delete(segment)
    this.release(s.bytes)
    return s.bytes
  }

  close(): void {
    this.clear(false)
    this.budget.unregisterIndex(this)
  }

  private charge(delta: number, growing: number): void {
    this.heldBytes += delta
    this.budget.chargeIndex(delta, this, growing)
  }

  private release(bytes: number): void {
    this.heldBytes -= bytes
    this.budget.chargeIndex(-bytes)
  }
}
