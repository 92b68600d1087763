/**
 * The in-memory half of a runtime store (Kafka Streams: `ThreadCache` + `CachingKeyValueStore`,
 * with the write-buffering role that `ChangeLoggingKeyValueBytesStore` and the EOS
 * transaction buffer play there):
 *
 * - {@link WriteBuffer}: the dirty entries written since the last commit (and, between
 *   `prepareCommit` and `commitLocal`, the snapshot being committed). Dirty entries reach LevelDB
 *   only at `commitLocal`, so under exactly-once local state never holds the effects of an
 *   aborted transaction. Reads see them first.
 * - {@link CleanCache}: an LRU of entries known to match the backend (including "absent"), so
 *   hot keys never touch LevelDB.
 * - {@link CacheBudget}: the byte budget shared by all stores of a task (`cacheMaxBytes`). Clean
 *   entries are evicted when over it; when dirty entries alone exceed it a commit is requested.
 *
 * @internal
 */
import { lowerBound, upperBound, type BackendRange } from './backend.js'

export { mergeScan } from './merge-scan.js'

/** Bytes of bookkeeping charged per cached entry on top of key and value bytes. */
export const ENTRY_OVERHEAD = 64

/** A buffered write: backend key, value (`null` = delete) and an optional grouping key. */
export interface OverlayEntry {
  readonly key: Buffer
  readonly value: Buffer | null
  /** Grouping (the record key of a window/session entry, latin1) for per-key lookups. */
  readonly group?: string
}

function entrySize(e: OverlayEntry): number {
  return e.key.length + (e.value ? e.value.length : 0) + ENTRY_OVERHEAD
}

/** Default index share of a finite budget: half of it, at least this many bytes. */
export const MIN_INDEX_BYTES = 2 * 1024 * 1024

/** What the budget needs of a store's key index (see key-index.ts). */
export interface IndexMember {
  /** Bytes held. */
  readonly bytes: number
  /** Frees about a quarter of its bytes (oldest times first); returns the bytes freed (0: none). */
  shrink(): number
  /** Frees everything it holds; returns the bytes freed. */
  giveUp(): number
}

/**
 * Byte budget shared by the caches of one task: dirty (buffered) entries, clean LRU entries and
 * the key indexes of window/session stores. The indexes may hold up to `indexMaxBytes`; dirty and
 * clean entries get the rest (`maxBytes - index bytes`, at least `maxBytes / 2`): clean entries
 * are evicted beyond it, and when dirty entries alone exceed it a commit is requested.
 */
export class CacheBudget {
  private usedBytes = 0
  private indexUsed = 0
  private requested = false
  private readonly members = new Set<CleanCache>()
  private readonly indexes = new Set<IndexMember>()
  /** Bytes the key indexes may hold. @defaultValue max(maxBytes / 2, 2 MiB), unbounded for an infinite budget */
  readonly indexMaxBytes: number

  constructor(
    readonly maxBytes: number,
    private readonly onCommitNeeded?: () => void,
    indexMaxBytes?: number,
  ) {
    this.indexMaxBytes =
      indexMaxBytes ?? (Number.isFinite(maxBytes) ? Math.max(Math.floor(maxBytes / 2), MIN_INDEX_BYTES) : Number.POSITIVE_INFINITY)
  }

  /** Bytes of dirty and clean entries. */
  get used(): number {
    return this.usedBytes
  }

  /** Bytes of the key indexes. */
  get indexBytes(): number {
    return this.indexUsed
  }

  /**
   * Bytes dirty and clean entries may use: `maxBytes` less what the indexes hold, but at least
   * half of `maxBytes` (an index share above that — the 2 MiB floor of a small budget — never
   * makes commits more frequent).
   */
  private get entryLimit(): number {
    return this.maxBytes - Math.min(this.indexUsed, Math.floor(this.maxBytes / 2))
  }

  register(cache: CleanCache): void {
    this.members.add(cache)
  }

  unregister(cache: CleanCache): void {
    this.members.delete(cache)
  }

  registerIndex(index: IndexMember): void {
    this.indexes.add(index)
  }

  unregisterIndex(index: IndexMember): void {
    this.indexes.delete(index)
  }

  /** Adds (or with a negative delta, releases) bytes, then enforces the bound. */
  charge(delta: number, preferEvictFrom?: CleanCache): void {
    this.usedBytes += delta
    if (delta > 0 && this.usedBytes > this.entryLimit) this.enforce(preferEvictFrom)
  }

  /** Index bytes (allocated or, with a negative delta, released); clean entries make room. */
  chargeIndex(delta: number): void {
    this.indexUsed += delta
    if (delta > 0 && this.usedBytes > this.entryLimit) this.enforce()
  }

  /**
   * Makes room for `bytes` more index bytes within `indexMaxBytes`: the index holding the most
   * bytes shrinks (its oldest quarter), repeatedly; when nothing can shrink, the requester gives
   * up what it holds.
   */
  makeIndexRoom(bytes: number, requester: IndexMember): void {
    let guard = 64
    while (this.indexUsed + bytes > this.indexMaxBytes && guard-- > 0) {
      let largest: IndexMember | undefined
      for (const i of this.indexes) if (i.bytes > 0 && (!largest || i.bytes > largest.bytes)) largest = i
      if (!largest || largest.shrink() <= 0) break
    }
    if (this.indexUsed + bytes > this.indexMaxBytes) requester.giveUp()
  }

  /**
   * Evicts clean entries down to 1/16 below the limit (in one pass: a Map-based LRU evicting one
   * entry per insert would rescan the Map's deleted slots every time), then requests a commit when
   * dirty entries alone are over the limit.
   */
  private enforce(prefer?: CleanCache): void {
    const limit = this.entryLimit
    const target = limit - Math.floor(limit / 16)
    const enough = () => this.usedBytes <= target
    if (prefer) prefer.evictUntil(enough)
    for (const c of this.members) {
      if (enough()) break
      if (c !== prefer) c.evictUntil(enough)
    }
    if (this.usedBytes > limit && !this.requested) {
      this.requested = true
      this.onCommitNeeded?.()
    }
  }

  /** Called after a commit: a new over-budget condition requests a commit again. */
  resetRequest(): void {
    this.requested = false
  }
}

/** LRU of entries that match the backend; `null` = known absent. */
export class CleanCache {
  private readonly map = new Map<string, Buffer | null>()
  private bytes = 0

  constructor(
    private readonly budget: CacheBudget,
    readonly enabled: boolean,
  ) {
    budget.register(this)
  }

  get size(): number {
    return this.map.size
  }

  /** `undefined` = not cached; `null` = cached as absent. Refreshes recency. */
  get(k: string): Buffer | null | undefined {
    const v = this.map.get(k)
    if (v === undefined) return undefined
    this.map.delete(k)
    this.map.set(k, v)
    return v
  }

  set(k: string, value: Buffer | null): void {
    if (!this.enabled) return
    const old = this.map.get(k)
    let delta = value ? value.length : 0
    if (old !== undefined) {
      delta -= old ? old.length : 0
      this.map.delete(k)
    } else {
      delta += k.length + ENTRY_OVERHEAD
    }
    this.map.set(k, value)
    this.bytes += delta
    this.budget.charge(delta, this)
  }

  delete(k: string): void {
    const old = this.map.get(k)
    if (old === undefined) return
    this.map.delete(k)
    const size = k.length + ENTRY_OVERHEAD + (old ? old.length : 0)
    this.bytes -= size
    this.budget.charge(-size)
  }

  /** Deletes every entry whose key sorts before `bound` (latin1 order = unsigned byte order). */
  deleteBelow(bound: string): void {
    for (const k of [...this.map.keys()]) if (k < bound) this.delete(k)
  }

  /** Evicts least recently used entries until `done()` or empty. */
  evictUntil(done: () => boolean): void {
    for (const [k, v] of this.map) {
      if (done()) return
      this.map.delete(k)
      const size = k.length + ENTRY_OVERHEAD + (v ? v.length : 0)
      this.bytes -= size
      this.budget.charge(-size)
    }
  }

  clear(): void {
    this.budget.charge(-this.bytes)
    this.bytes = 0
    this.map.clear()
  }

  close(): void {
    this.clear()
    this.budget.unregister(this)
  }
}

/** A map of overlay entries with a lazily sorted key index and a per-group index. */
class EntryMap {
  readonly map = new Map<string, OverlayEntry>()
  readonly groups = new Map<string, Set<string>>()
  private sorted: string[] | null = []
  bytes = 0

  get(k: string): OverlayEntry | undefined {
    return this.map.get(k)
  }

  /** Sets an entry; returns the byte delta. */
  set(k: string, e: OverlayEntry): number {
    const old = this.map.get(k)
    let delta = entrySize(e)
    if (old) delta -= entrySize(old)
    else {
      this.sorted = null
      if (e.group !== undefined) {
        let g = this.groups.get(e.group)
        if (!g) this.groups.set(e.group, (g = new Set()))
        g.add(k)
      }
    }
    this.map.set(k, e)
    this.bytes += delta
    return delta
  }

  sortedKeys(): string[] {
    if (!this.sorted) this.sorted = [...this.map.keys()].sort()
    return this.sorted
  }

  /** Sorted keys within the range (latin1 bounds). */
  keysIn(gte?: string, lt?: string, lte?: string): string[] {
    const keys = this.sortedKeys()
    const lo = gte !== undefined ? lowerBound(keys, gte) : 0
    let hi = keys.length
    if (lt !== undefined) hi = Math.min(hi, lowerBound(keys, lt))
    if (lte !== undefined) hi = Math.min(hi, upperBound(keys, lte))
    return lo >= hi ? [] : keys.slice(lo, hi)
  }
}

/**
 * Dirty entries since the last commit, plus the snapshot being committed. Reads consult `dirty`
 * first, then `committing`.
 */
export class WriteBuffer {
  private dirty = new EntryMap()
  private committing: EntryMap | null = null

  constructor(private readonly budget: CacheBudget) {}

  /** Number of buffered entries (dirty + committing). */
  get size(): number {
    return this.dirty.map.size + (this.committing ? this.committing.map.size : 0)
  }

  get isEmpty(): boolean {
    return this.dirty.map.size === 0 && (!this.committing || this.committing.map.size === 0)
  }

  get(k: string): OverlayEntry | undefined {
    return this.dirty.get(k) ?? this.committing?.get(k)
  }

  put(k: string, e: OverlayEntry, evictFrom?: CleanCache): void {
    this.budget.charge(this.dirty.set(k, e), evictFrom)
  }

  /** Entries of `group` (dirty over committing), in key order. */
  groupEntries(group: string): OverlayEntry[] {
    const d = this.dirty.groups.get(group)
    const c = this.committing?.groups.get(group)
    if (!d && !c) return []
    const keys = new Set<string>()
    if (d) for (const k of d) keys.add(k)
    if (c) for (const k of c) keys.add(k)
    const sorted = [...keys].sort()
    return sorted.map((k) => this.get(k)!)
  }

  /** Entries within a range (dirty over committing), sorted by key. */
  rangeEntries(range: BackendRange): OverlayEntry[] {
    const gte = range.gte?.toString('latin1')
    const lt = range.lt?.toString('latin1')
    const lte = range.lte?.toString('latin1')
    const d = this.dirty.keysIn(gte, lt, lte)
    const c = this.committing ? this.committing.keysIn(gte, lt, lte) : []
    if (c.length === 0) return d.map((k) => this.dirty.get(k)!)
    const out: OverlayEntry[] = []
    let i = 0
    let j = 0
    while (i < d.length || j < c.length) {
      if (j >= c.length || (i < d.length && d[i]! < c[j]!)) out.push(this.dirty.get(d[i++]!)!)
      else if (i >= d.length || c[j]! < d[i]!) out.push(this.committing!.get(c[j++]!)!)
      else {
        out.push(this.dirty.get(d[i++]!)!)
        j++
      }
    }
    return out
  }

  /**
   * Moves the dirty entries into the committing snapshot (merging into an existing one when a
   * previous commit did not complete) and returns the snapshot's entries.
   */
  snapshot(): ReadonlyArray<OverlayEntry> {
    if (!this.committing) {
      this.committing = this.dirty
    } else {
      for (const [k, e] of this.dirty.map) this.budget.charge(this.committing.set(k, e))
      this.budget.charge(-this.dirty.bytes)
    }
    this.dirty = new EntryMap()
    return [...this.committing.map.values()]
  }

  /** The committing snapshot's entries (still visible to reads until {@link takeCommitting}). */
  committingEntries(): Array<[string, OverlayEntry]> {
    return this.committing ? [...this.committing.map] : []
  }

  /** Takes the committing snapshot (after it was written to the backend). */
  takeCommitting(): Array<[string, OverlayEntry]> {
    const c = this.committing
    this.committing = null
    if (!c) return []
    this.budget.charge(-c.bytes)
    return [...c.map]
  }

  /** Drops everything buffered. */
  clear(): void {
    this.budget.charge(-this.dirty.bytes - (this.committing ? this.committing.bytes : 0))
    this.dirty = new EntryMap()
    this.committing = null
  }
}
