/**
 * Stream-stream windowed joins (Kafka Streams: `KStreamJoinWindow`, `KStreamKStreamJoinLeftSide`,
 * `KStreamKStreamJoinRightSide`, `KStreamImplJoin.TimeTracker`).
 *
 * Per join, one task runs five processors:
 * - `KSTREAM-WINDOWED-…` (one per input) buffers each record of its side in that side's window
 *   store (`retainDuplicates`), after forwarding it;
 * - `KSTREAM-JOINTHIS-…` / `KSTREAM-JOINOTHER-…` (or `…OUTERTHIS/OUTEROTHER…`) look up the other
 *   side's buffer for records in the join window and emit one result per match;
 * - `KSTREAM-MERGE-…` merges both result streams.
 *
 * Semantics (Kafka Streams ≥ 3.1, KIP-633, no spurious left/outer results):
 * - a left record at `t` joins right records in `[t - beforeMs, t + afterMs]` (inclusive); a right
 *   record at `t` joins left records in `[t - afterMs, t + beforeMs]`; a result carries the later
 *   of the two timestamps;
 * - stream-time is the largest timestamp either input has seen (shared by both sides), advanced by
 *   every record, even one then skipped for a null key or value (Kafka Streams does the same);
 * - late records (Kafka Streams' behaviour, the default): a record whose join window plus grace has
 *   closed (left `t + afterMs + graceMs < streamTime`, right `t + beforeMs + graceMs < streamTime`)
 *   is still joined with whatever the other side's buffer retains, and buffered if its own buffer
 *   still retains its time (window stores with retention `before + after + grace`, by their own
 *   stream-time). With `dropLate` (`StreamJoined.withLateRecords('drop')`) late records are dropped
 *   and counted (`context.recordDropped`), neither joined nor buffered;
 * - a left/outer record without a match whose window end `t + after` (its side's) is already
 *   behind stream-time is emitted with `null` AT ONCE (Kafka Streams: "out-of-order record", no
 *   grace involved); otherwise it waits in the shared outer-join store; once stream-time passes its
 *   window's end plus grace, it is emitted with `null` for the other side, in timestamp order, before
 *   the matches of the record that moved stream-time. A record that matches later is removed from
 *   that store, so it is never emitted unmatched from there. Emitted records are deleted: nothing is
 *   emitted twice from the store (a record emitted at once may still match a later record of the
 *   other side, as in Kafka Streams);
 * - records with a `null` value, or a `null` key, are dropped and counted — except that a left
 *   join (left side) or outer join (both sides) emits a `null`-key record at once, joined with
 *   `null` (KIP-962).
 */
import type { Processor, ProcessorContext, ProcessorSupplier, StreamRecord } from '../../processor/types.js'
import { taskIdString } from '../../processor/types.js'
import type { KeyValueStore, WindowStore } from '../../state/types.js'
import type { JoinSide, OuterJoinEntries, OuterJoinKey } from './outer-join-store.js'
import type { LateRecordsTarget } from '../../dsl/late-records.js'
import { JOIN_RETRACTION_HEADERS, type EmitUnmatched } from '../../dsl/emit-unmatched.js'
import { forwardLateRecord } from '../late-records.js'

/** The join window bounds, in milliseconds, as seen from the left side (see `JoinWindows`). */
export interface JoinWindowSpec {
  readonly beforeMs: number
  readonly afterMs: number
  readonly graceMs: number
  /** Drop records arriving after their window plus grace closed (`StreamJoined.withLateRecords('drop')`). @defaultValue false */
  readonly dropLate?: boolean
}

/** Stream-time of one join in one task, shared by its four processors (Kafka Streams: `TimeTracker`). */
export class JoinTimeTracker {
  /** Largest timestamp seen by either side, -1 before any record. */
  streamTime = -1
  /**
   * Smallest timestamp in the outer-join store (+Infinity when empty). -Infinity means unknown
   * (after a restart the store may hold records): the next stream-time advance scans it.
   */
  minTime = Number.NEGATIVE_INFINITY
}

type TrackerRole = 'leftWindow' | 'rightWindow' | 'leftJoin' | 'rightJoin'
const ROLES = 4

/**
 * Hands the same {@link JoinTimeTracker} to the four processors of one join in one task instance
 * (Kafka Streams: `TimeTrackerSupplier`). Each processor claims its role for its task; the first
 * tracker of that task whose role is still free is returned, so two engines running the same task
 * id (two test drivers over one topology) each get their own tracker as long as each initializes
 * its processors before the other's.
 */
export class JoinTimeTrackers {
  private readonly pending = new Map<string, Array<{ tracker: JoinTimeTracker; claimed: Set<TrackerRole> }>>()

  claim(taskId: string, role: TrackerRole): JoinTimeTracker {
    let list = this.pending.get(taskId)
    if (list === undefined) {
      list = []
      this.pending.set(taskId, list)
    }
    let entry = list.find((e) => !e.claimed.has(role))
    if (entry === undefined) {
      entry = { tracker: new JoinTimeTracker(), claimed: new Set() }
      list.push(entry)
    }
    entry.claimed.add(role)
    if (entry.claimed.size === ROLES) {
      list.splice(list.indexOf(entry), 1)
      if (list.length === 0) this.pending.delete(taskId)
    }
    return entry.tracker
  }
}

/** How far after a record's timestamp its join window reaches, for its side. */
function windowAfter(side: JoinSide, w: JoinWindowSpec): number {
  return side === 'left' ? w.afterMs : w.beforeMs
}

/** How far before a record's timestamp its join window reaches, for its side. */
function windowBefore(side: JoinSide, w: JoinWindowSpec): number {
  return side === 'left' ? w.beforeMs : w.afterMs
}

/** True if a record of `side` at `timestamp` arrives after its join window (plus grace) closed. */
export function isLateJoinRecord(side: JoinSide, timestamp: number, w: JoinWindowSpec, streamTime: number): boolean {
  return timestamp + windowAfter(side, w) + w.graceMs < streamTime
}

/** Options of {@link joinWindowProcessorSupplier}. */
export interface JoinWindowProcessorSpec {
  readonly side: JoinSide
  /** This side's window store. */
  readonly storeName: string
  readonly windows: JoinWindowSpec
  readonly trackers: JoinTimeTrackers
}

/**
 * `KSTREAM-WINDOWED-…` (Kafka Streams: `KStreamJoinWindow`): forwards each record to its join
 * processor, then buffers it in this side's window store (unless its key or value is `null`, or it
 * is late under the drop policy). The store itself ignores records older than its retention.
 */
export function joinWindowProcessorSupplier<K, V>(spec: JoinWindowProcessorSpec): ProcessorSupplier<K, V, K, V> {
  return () => new JoinWindowProcessor<K, V>(spec)
}

class JoinWindowProcessor<K, V> implements Processor<K, V, K, V> {
  private ctx!: ProcessorContext<K, V>
  private store!: WindowStore<K, V>
  private tracker!: JoinTimeTracker

  constructor(private readonly spec: JoinWindowProcessorSpec) {}

  init(context: ProcessorContext<K, V>): void {
    this.ctx = context
    this.store = context.getStateStore<WindowStore<K, V>>(this.spec.storeName)
    this.tracker = this.spec.trackers.claim(taskIdString(context.taskId), this.spec.side === 'left' ? 'leftWindow' : 'rightWindow')
  }

  async process(record: StreamRecord<K, V>): Promise<void> {
    const buffer =
      record.key !== null &&
      record.key !== undefined &&
      record.value !== null &&
      record.value !== undefined &&
      !(
        this.spec.windows.dropLate === true &&
        isLateJoinRecord(this.spec.side, record.timestamp, this.spec.windows, this.tracker.streamTime)
      )
    await this.ctx.forward(record)
    if (buffer) await this.store.put(record.key, record.value, record.timestamp)
  }
}

/** Options of {@link streamStreamJoinProcessorSupplier}. */
export interface StreamStreamJoinProcessorSpec<K, VL, VR, VOut> {
  /** The input this processor handles. */
  readonly side: JoinSide
  /** The other side's window store. */
  readonly otherStoreName: string
  /** The shared outer-join store (left and outer joins only). */
  readonly outerStoreName?: string
  /** Left records that never match are emitted (left and outer joins). */
  readonly leftOuter: boolean
  /** Right records that never match are emitted (outer joins). */
  readonly rightOuter: boolean
  readonly windows: JoinWindowSpec
  /** The user's joiner, always called as `(key, leftValue, rightValue)`; `null` marks a missing side. */
  readonly joiner: (key: K, left: VL | null, right: VR | null) => VOut
  readonly trackers: JoinTimeTrackers
  /**
   * When unmatched left/outer records are emitted (see `EmitUnmatched`). `'eager'` runs without an
   * outer-join store; `'onWindowClose'` and `'eagerWithRetraction'` need one. @defaultValue 'onWindowClose'
   */
  readonly emitUnmatched?: EmitUnmatched
  /** Side topic of this side's late records (`StreamJoined.withLateRecords(thisSide, otherSide)`). */
  readonly lateRecords?: LateRecordsTarget
}

/**
 * `KSTREAM-JOINTHIS-…` (side `left`) / `KSTREAM-JOINOTHER-…` (side `right`) and their
 * `OUTERTHIS`/`OUTEROTHER` variants. See the module comment for the semantics.
 */
export function streamStreamJoinProcessorSupplier<K, VL, VR, VOut>(
  spec: StreamStreamJoinProcessorSpec<K, VL, VR, VOut>,
): ProcessorSupplier<K, unknown, K, VOut> {
  return () => new StreamStreamJoinProcessor<K, VL, VR, VOut>(spec)
}

class StreamStreamJoinProcessor<K, VL, VR, VOut> implements Processor<K, unknown, K, VOut> {
  private ctx!: ProcessorContext<K, VOut>
  private otherStore!: WindowStore<K, unknown>
  private outerStore: KeyValueStore<OuterJoinKey<K>, OuterJoinEntries<VL, VR>> | undefined
  private tracker!: JoinTimeTracker
  private readonly side: JoinSide
  private readonly otherSide: JoinSide
  private readonly thisOuter: boolean
  private readonly otherOuter: boolean
  /** `'eagerWithRetraction'`: the outer-join store holds records already emitted with null, to retract. */
  private readonly retract: boolean

  constructor(private readonly spec: StreamStreamJoinProcessorSpec<K, VL, VR, VOut>) {
    this.side = spec.side
    this.retract = spec.emitUnmatched === 'eagerWithRetraction'
    this.otherSide = spec.side === 'left' ? 'right' : 'left'
    this.thisOuter = spec.side === 'left' ? spec.leftOuter : spec.rightOuter
    this.otherOuter = spec.side === 'left' ? spec.rightOuter : spec.leftOuter
  }

  init(context: ProcessorContext<K, VOut>): void {
    this.ctx = context
    this.otherStore = context.getStateStore<WindowStore<K, unknown>>(this.spec.otherStoreName)
    if (this.spec.outerStoreName !== undefined) {
      this.outerStore = context.getStateStore<KeyValueStore<OuterJoinKey<K>, OuterJoinEntries<VL, VR>>>(this.spec.outerStoreName)
    }
    this.tracker = this.spec.trackers.claim(taskIdString(context.taskId), this.side === 'left' ? 'leftJoin' : 'rightJoin')
  }

  /** Calls the joiner with this side's value in its place. */
  private join(key: K, thisValue: unknown, otherValue: unknown): VOut {
    return this.side === 'left'
      ? this.spec.joiner(key, thisValue as VL | null, otherValue as VR | null)
      : this.spec.joiner(key, otherValue as VL | null, thisValue as VR | null)
  }

  async process(record: StreamRecord<K, unknown>): Promise<void> {
    const { key, value, timestamp } = record
    const w = this.spec.windows
    const late = w.dropLate === true && isLateJoinRecord(this.side, timestamp, w, this.tracker.streamTime)
    if (!late) this.tracker.streamTime = Math.max(this.tracker.streamTime, timestamp)
    if (key === null || key === undefined) {
      if (this.thisOuter && value !== null && value !== undefined) {
        // KIP-962: a null-key record can never match; a left/outer join emits it at once.
        await this.ctx.forward({ ...record, value: this.join(key as K, value, null) })
        return
      }
      this.ctx.recordDropped('stream-stream join: record with null key')
      return
    }
    if (value === null || value === undefined) {
      this.ctx.recordDropped('stream-stream join: record with null value')
      return
    }
    if (late) {
      this.ctx.recordDropped('stream-stream join: record arrived after its join window and grace period closed')
      if (this.spec.lateRecords !== undefined) {
        await forwardLateRecord(this.ctx, this.spec.lateRecords, record, {
          windowStartMs: timestamp - windowBefore(this.side, w),
          windowEndMs: timestamp + windowAfter(this.side, w),
          streamTimeMs: this.tracker.streamTime,
          joinSide: this.side === 'left' ? 'this' : 'other',
        })
      }
      return
    }

    if (this.outerStore !== undefined && timestamp === this.tracker.streamTime) {
      await this.emitClosedUnmatched(this.outerStore, record.headers)
    }

    const timeFrom = Math.max(0, timestamp - windowBefore(this.side, w))
    const timeTo = Math.max(0, timestamp + windowAfter(this.side, w))
    const matches: Array<{ readonly key: number; readonly value: unknown }> = []
    for await (const kv of this.otherStore.fetchRange(key, timeFrom, timeTo)) {
      matches.push(kv)
    }

    if (matches.length === 0) {
      if (this.thisOuter) {
        // Kafka Streams (KStreamKStreamJoin): an out-of-order record whose window end is already
        // behind stream-time cannot wait in the outer-join store (its close may never be scanned
        // again): it is emitted with null at once.
        if (this.retract) {
          // Emitted now, kept until matched (then retracted) or until no match can come any more
          // (then forgotten); an out-of-order record too, since late records are dropped here.
          await this.ctx.forward({ ...record, value: this.join(key, value, null) })
          await this.appendUnmatched(this.outerStore!, key, timestamp, value)
        } else if (this.outerStore === undefined || timeTo < this.tracker.streamTime) {
          // 'eager' (no store) emits every unmatched record here.
          await this.ctx.forward({ ...record, value: this.join(key, value, null) })
        } else {
          await this.appendUnmatched(this.outerStore, key, timestamp, value)
        }
      }
      return
    }

    // 'eagerWithRetraction': per timestamp, how many unmatched results of the other side to retract.
    let retractions: Map<number, number> | undefined
    if (this.otherOuter && this.outerStore !== undefined) {
      // The matched records of the other side are matched now: they must never be emitted unmatched.
      let previous: number | undefined
      for (const m of matches) {
        if (m.key === previous) continue
        previous = m.key
        const outerKey: OuterJoinKey<K> = { timestamp: m.key, side: this.otherSide, key }
        const entries = await this.outerStore.get(outerKey)
        if (entries === undefined) continue
        if (this.retract && entries !== null) (retractions ??= new Map()).set(m.key, entries.values.length)
        await this.outerStore.put(outerKey, null)
      }
    }

    for (const m of matches) {
      const timestampOut = Math.max(timestamp, m.key)
      const pending = retractions?.get(m.key)
      if (pending !== undefined && pending > 0) {
        // Each unmatched result of this record is retracted right before its first match.
        retractions!.set(m.key, pending - 1)
        await this.ctx.forward({
          key,
          value: null as VOut,
          timestamp: timestampOut,
          headers: {
            ...record.headers,
            [JOIN_RETRACTION_HEADERS.retraction]: this.otherSide === 'left' ? 'this' : 'other',
            [JOIN_RETRACTION_HEADERS.retractedTimestamp]: String(m.key),
          },
        })
      }
      await this.ctx.forward({
        key,
        value: this.join(key, value, m.value),
        timestamp: timestampOut,
        headers: record.headers,
      })
    }
  }

  /**
   * Stream-time moved without a record (wall-clock idle advance): records of either side whose
   * window plus grace it closes are late from now on, and unmatched left/outer records whose window
   * closed are emitted (without headers: no record caused them).
   */
  async advanceStreamTime(streamTimeMs: number): Promise<void> {
    if (streamTimeMs > this.tracker.streamTime) this.tracker.streamTime = streamTimeMs
    if (this.outerStore !== undefined) await this.emitClosedUnmatched(this.outerStore, {})
  }

  private async appendUnmatched(
    store: KeyValueStore<OuterJoinKey<K>, OuterJoinEntries<VL, VR>>,
    key: K,
    timestamp: number,
    value: unknown,
  ): Promise<void> {
    const outerKey: OuterJoinKey<K> = { timestamp, side: this.side, key }
    const existing = await store.get(outerKey)
    const values = existing === undefined || existing === null ? [value] : [...(existing.values as ReadonlyArray<unknown>), value]
    await store.put(outerKey, { side: this.side, values } as OuterJoinEntries<VL, VR>)
    this.tracker.minTime = Math.min(this.tracker.minTime, timestamp)
  }

  /**
   * Emits, in timestamp order, every unmatched record whose join window plus grace closed before
   * the current stream-time (with `headers`: those of the record that moved stream-time), and
   * deletes it from the outer-join store.
   */
  private async emitClosedUnmatched(
    store: KeyValueStore<OuterJoinKey<K>, OuterJoinEntries<VL, VR>>,
    headers: StreamRecord<K, unknown>['headers'],
  ): Promise<void> {
    const w = this.spec.windows
    const streamTime = this.tracker.streamTime
    // How long after its timestamp an entry stays. Unmatched records wait for their window to
    // close. Retractable ones wait until no record of the other side can match them: one that
    // could (timestamp up to t + after for a left record) is late, and dropped, once stream-time
    // passes its own window end plus grace (t + after + before + grace).
    const keepAfter = (side: JoinSide): number => (this.retract ? w.beforeMs + w.afterMs : windowAfter(side, w))
    // Cheap check first: nothing in the store can be due yet.
    if (this.tracker.minTime + Math.min(keepAfter('left'), keepAfter('right')) + w.graceMs >= streamTime) return

    const due: Array<{ key: OuterJoinKey<K>; entries: OuterJoinEntries<VL, VR> }> = []
    let leftOpen = !this.spec.leftOuter
    let rightOpen = !this.spec.rightOuter
    let minRemaining = Number.POSITIVE_INFINITY
    for await (const kv of store.all()) {
      const k = kv.key
      if (k.timestamp + keepAfter(k.side) + w.graceMs >= streamTime) {
        // Still open; keys are in timestamp order, so every later key of this side is open too.
        if (minRemaining === Number.POSITIVE_INFINITY) minRemaining = k.timestamp
        if (k.side === 'left') leftOpen = true
        else rightOpen = true
        if (leftOpen && rightOpen) break
        continue
      }
      if ((k.side === 'left' && leftOpen) || (k.side === 'right' && rightOpen)) continue
      due.push({ key: k, entries: kv.value })
    }
    this.tracker.minTime = minRemaining

    for (const { key: k, entries } of due) {
      if (this.retract) {
        // Already emitted when it arrived, and no match can come any more: it is final now.
        await store.put(k, null)
        continue
      }
      for (const v of entries.values as ReadonlyArray<unknown>) {
        const out = k.side === 'left' ? this.spec.joiner(k.key, v as VL, null) : this.spec.joiner(k.key, null, v as VR)
        // Kafka Streams forwards them with the headers of the record that moved stream-time.
        await this.ctx.forward({ key: k.key, value: out, timestamp: k.timestamp, headers })
      }
      await store.put(k, null)
    }
  }
}
