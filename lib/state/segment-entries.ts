/**
 * One segment of a store's key index (key-index.ts): record-key hash → `(t1, t2)` entries in
 * typed arrays, and the two key hashes. @internal
 */
/** Entry-list terminator / "never used" slot. */
const EMPTY = -1
/** Slot whose hash is known but whose list is empty (kept until the next rehash). */
const VACANT = -2
const MIN_SLOTS = 16
const MIN_ENTRIES = 8
/** Bytes per entry: t1, t2 (Float64), second hash, next (32 bits). */
const ENTRY_BYTES = 24
/** Bytes per slot: hash, head (32 bits). */
const SLOT_BYTES = 8
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
  private slotHash: Uint32Array
  private slotHead: Int32Array
  /** Slots not EMPTY (live or VACANT). */
  private slotsUsed = 0
  private t1: Float64Array
  private t2: Float64Array
  private k2: Uint32Array
  private next: Int32Array
  /** High-water mark of entry indexes. */
  private top = 0
  private free = EMPTY
  /** Live entries. */
  size = 0

  /** @param entries initial entry capacity; @param keys expected distinct hashes */
  constructor(entries = MIN_ENTRIES, keys = 0) {
    let slots = MIN_SLOTS
    while ((keys + 1) * 10 > slots * 7) slots *= 2
    this.slotHash = new Uint32Array(slots)
    this.slotHead = new Int32Array(slots).fill(EMPTY)
    const cap = Math.max(MIN_ENTRIES, entries)
    this.t1 = new Float64Array(cap)
    this.t2 = new Float64Array(cap)
    this.k2 = new Uint32Array(cap)
    this.next = new Int32Array(cap)
  }

  /** Bytes one more add may allocate at most (0: it fits in the current arrays). */
  growthBound(): number {
    let g = 0
    if (this.free === EMPTY && this.top === this.t1.length) g += this.t1.length * ENTRY_BYTES
    if ((this.slotsUsed + 1) * 10 > this.slotHash.length * 7) g += this.slotHash.length * SLOT_BYTES
    return g
  }

  /** Calls `f(t1)` for every live entry. */
  forEachTime(f: (t1: number) => void): void {
    for (let i = 0; i < this.slotHead.length; i++) {
      for (let e = this.slotHead[i]!; e >= 0; e = this.next[e]!) f(this.t1[e]!)
    }
  }

  /** A compact copy holding only the entries with `t1 >= floor` (undefined: none left). */
  rebuildFrom(floor: number): SegmentEntries | undefined {
    let keep = 0
    let keys = 0
    for (let i = 0; i < this.slotHead.length; i++) {
      let any = false
      for (let e = this.slotHead[i]!; e >= 0; e = this.next[e]!) {
        if (this.t1[e]! >= floor) {
          keep++
          any = true
        }
      }
      if (any) keys++
    }
    if (keep === 0) return undefined
    const out = new SegmentEntries(keep, keys)
    for (let i = 0; i < this.slotHead.length; i++) {
      const h = this.slotHash[i]!
      for (let e = this.slotHead[i]!; e >= 0; e = this.next[e]!) {
        if (this.t1[e]! >= floor) out.add(h, this.k2[e]!, this.t1[e]!, this.t2[e]!, false)
      }
    }
    return out
  }

  /** Bytes held (array capacities plus overhead). */
  get bytes(): number {
    return (
      this.slotHash.byteLength +
      this.slotHead.byteLength +
      this.t1.byteLength +
      this.t2.byteLength +
      this.k2.byteLength +
      this.next.byteLength +
      SEGMENT_OVERHEAD
    )
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
    for (let e = this.slotHead[this.findSlot(h)]!; e >= 0; e = this.next[e]!)
      if (this.t1[e] === a && this.t2[e] === b && this.k2[e] === h2) return true
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
      const cap = Math.ceil(this.t1.length * 1.5)
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
    while ((live + 1) * 10 > cap * 4) cap *= 2
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

/** Bytes of a new, empty {@link SegmentEntries}. */
export const EMPTY_SEGMENT_BYTES = MIN_SLOTS * SLOT_BYTES + MIN_ENTRIES * ENTRY_BYTES + SEGMENT_OVERHEAD
