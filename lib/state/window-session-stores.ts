/** The runtime window and session bytes stores (Kafka Streams: `RocksDBWindowStore`, `RocksDBSessionStore`). */
import type { SessionBytesStore, WindowBytesStore } from '../../topology/state/types.js'
import type { RawRecord } from '../../topology/engine/types.js'
import type { BackendOp, BackendRange } from './backend.js'
import type { OverlayEntry } from './cache.js'
import { hashBytes, hashBytes2 } from './key-index.js'
import {
  bkey,
  decodeSessionChangelogKey,
  decodeSessionStoreKey,
  decodeWindowChangelogKey,
  decodeWindowStoreKey,
  prefixUpperBound,
  segmentKeyPrefix,
  sessionChangelogKey,
  sessionStoreKey,
  windowChangelogKey,
  windowStoreKey,
} from './keys.js'
import type { ChangelogEntry } from './runtime-store.js'
import { SegmentedStore, type SegmentedOptions } from './segmented-store.js'

const MIN = Number.MIN_SAFE_INTEGER

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
      const p = this.decodeChangelogKey(r, r.key, decodeWindowChangelogKey, 'window')
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
      const p = this.decodeChangelogKey(r, r.key, decodeSessionChangelogKey, 'session')
      this.observe(p.endMs)
      if (p.endMs < this.minLiveTime()) continue
      ops.push([sessionStoreKey(this.segmentId(p.endMs), Buffer.from(p.key), p.startMs, p.endMs), r.value])
    }
    return ops
  }
}
