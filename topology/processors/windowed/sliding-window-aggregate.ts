/**
 * Sliding window aggregation (Kafka Streams: `KStreamSlidingWindowAggregate`, KIP-450).
 *
 * Windows `[start, start + d]` are inclusive of both ends and exist only where records are:
 * - every record at `t` has a LEFT window `[t - d, t]` (records earlier than `d` share the
 *   window `[0, d]`, since window starts are never negative);
 * - a record gets a RIGHT window `[t + 1, t + 1 + d]` only once a later record falls inside it.
 * A new record is added to every existing window containing it, latest window start first (Kafka
 * Streams' reverse iteration), then creates the right window of the previous record when it falls
 * inside it, its left window (seeded with the aggregate of the records already in `[t - d, t)`),
 * and its own right window when later records exist within `d`.
 *
 * A window is closed once `windowEnd + grace < observedStreamTime`; a record whose right window
 * `[t, t + d]` would already be closed is dropped entirely. Every dropped window update is counted
 * with `context.recordDropped('late')`. Emit strategies as for time windows.
 */
import type { ProcessorSupplier, StreamRecord } from '../../processor/types.js'
import type { ValueAndTimestamp, Window, WindowStore, Windowed } from '../../state/types.js'
import type { SlidingWindows } from '../../dsl/windows.js'
import { windowOf as makeWindow } from '../../dsl/windows.js'
import { IllegalStateError } from '../../errors.js'
import { NO_TIMESTAMP } from './emit-tracker.js'
import { WindowAggregateProcessorBase, forwardClosedWindows, type WindowAggregateCommonOptions } from './window-aggregate-base.js'
import type { Aggregator, Change, Initializer } from './types.js'

/** `storeName`: the `WindowStore<K, ValueAndTimestamp<VA>>` (window size = time difference). */
export interface SlidingWindowAggregateOptions<K, V, VA> extends WindowAggregateCommonOptions {
  readonly windows: SlidingWindows
  readonly initializer: Initializer<VA>
  readonly aggregator: Aggregator<K, V, VA>
}

/** Supplier of the sliding window aggregation processor. */
export function slidingWindowAggregateSupplier<K, V, VA>(
  options: SlidingWindowAggregateOptions<K, V, VA>,
): ProcessorSupplier<K, V, Windowed<K>, Change<VA>> {
  return () => new SlidingWindowAggregateProcessor(options)
}

interface StoredWindow<VA> {
  readonly startMs: number
  readonly value: ValueAndTimestamp<VA>
}

class SlidingWindowAggregateProcessor<K, V, VA> extends WindowAggregateProcessorBase<K, V, VA, WindowStore<K, ValueAndTimestamp<VA>>> {
  private readonly d: number

  constructor(private readonly options: SlidingWindowAggregateOptions<K, V, VA>) {
    super(options)
    this.d = options.windows.timeDifferenceMs
  }

  protected async processRecord(record: StreamRecord<K, V>): Promise<void> {
    const t = record.timestamp
    const closeTime = this.observedStreamTime - this.options.windows.gracePeriodMs()

    // The latest window this record can touch is its right window [t, t + d] (end t + d):
    // if even that is closed, the whole record is late.
    if (t + this.d < closeTime) {
      // Reported with the record's own (left) window, which is closed too.
      await this.dropLate(record, makeWindow(Math.max(0, t - this.d), t))
      if (this.emitFinal) await this.maybeEmitFinal(record, closeTime)
      return
    }
    // Final results first (see the time-window aggregation): closed windows cannot change any more.
    if (this.emitFinal) await this.maybeEmitFinal(record, closeTime)
    if (t < this.d) await this.processEarly(record, closeTime)
    else await this.processInOrder(record, closeTime)
  }

  private async fetch(key: K, from: number, to: number): Promise<StoredWindow<VA>[]> {
    const out: StoredWindow<VA>[] = []
    for await (const kv of this.store.fetchRange(key, from, to)) out.push({ startMs: kv.key, value: kv.value })
    return out
  }

  /**
   * A record at `t >= d` (Kafka Streams: `processReverse`, used with every store that iterates
   * backwards, RocksDB and in-memory alike): walks the key's windows starting in `[t - 2d, t + 1]`
   * by DESCENDING start, so the windows containing `t` are updated and forwarded latest first,
   * then creates the missing windows (previous record's right window, `t`'s left and right windows).
   */
  private async processInOrder(record: StreamRecord<K, V>, closeTime: number): Promise<void> {
    const t = record.timestamp
    const d = this.d
    const startTimes = new Set<number>()
    let leftWinAgg: ValueAndTimestamp<VA> | undefined
    let rightWinAgg: ValueAndTimestamp<VA> | undefined
    let leftWinExists = false
    let rightWinExists = false
    let previousRecordTimestamp: number | undefined

    const found = await this.fetch(record.key, Math.max(0, t - 2 * d), t + 1)
    for (let i = found.length - 1; i >= 0; i--) {
      const w = found[i]!
      startTimes.add(w.startMs)
      const endMs = w.startMs + d
      const maxRecordTs = w.value.timestamp
      if (w.startMs === t + 1) {
        rightWinExists = true
      } else if (endMs > t) {
        // Contains t and ends after it; the first one met (largest start) holds exactly the records in (t, t + d].
        rightWinAgg ??= w.value
        await this.updateWindowAndForward(makeWindow(w.startMs, endMs), w.value, record, closeTime)
      } else if (endMs === t) {
        leftWinExists = true
        await this.updateWindowAndForward(makeWindow(w.startMs, endMs), w.value, record, closeTime)
        // The left window already holds a record at t: every window t needs exists already.
        if (maxRecordTs >= t) return
        previousRecordTimestamp = maxRecordTs
      } else {
        // Ends before t: the latest such window holds exactly the records that precede t within d.
        leftWinAgg = w.value
        previousRecordTimestamp = maxRecordTs
        break
      }
    }

    // Right window of the previous record, if t falls inside it and it does not exist yet.
    if (previousRecordTimestamp !== undefined) {
      const prevRightStart = previousRecordTimestamp + 1
      if (!startTimes.has(prevRightStart) && prevRightStart + d >= t) {
        await this.updateWindowAndForward(makeWindow(prevRightStart, prevRightStart + d), undefined, record, closeTime)
      }
    }

    // Left window of this record, seeded with the records within d before it.
    if (!leftWinExists) {
      const seed =
        previousRecordTimestamp !== undefined && t - d <= previousRecordTimestamp && leftWinAgg !== undefined
          ? { value: leftWinAgg.value, timestamp: t }
          : undefined
      await this.updateWindowAndForward(makeWindow(t - d, t), seed, record, closeTime, true)
    }

    // Right window of this record, if later records exist within d.
    if (!rightWinExists && rightWinAgg !== undefined && rightWinAgg.timestamp > t) {
      await this.putWindow(record, makeWindow(t + 1, t + 1 + d), rightWinAgg)
    }
  }

  /**
   * Records with `0 <= t < d` would get a left window with a negative start; they all share the
   * window `[0, d]` instead, and right windows are created as later records arrive.
   */
  private async processEarly(record: StreamRecord<K, V>, closeTime: number): Promise<void> {
    const t = record.timestamp
    const d = this.d
    if (t < 0 || t >= d) throw new IllegalStateError(`early sliding-window record must have 0 <= timestamp < ${d}, got ${t}`)
    let combined: StoredWindow<VA> | undefined
    let rightWinAgg: ValueAndTimestamp<VA> | undefined
    let rightWinExists = false
    let previousRecordTimestamp: number | undefined
    const startTimes = new Set<number>()

    for (const w of await this.fetch(record.key, 0, t + 1)) {
      startTimes.add(w.startMs)
      if (w.startMs === 0) {
        combined = w
        if (w.value.timestamp < t) previousRecordTimestamp = w.value.timestamp
      } else if (w.startMs <= t) {
        rightWinAgg = w.value
        await this.updateWindowAndForward(makeWindow(w.startMs, w.startMs + d), w.value, record, closeTime)
      } else if (w.startMs === t + 1) {
        rightWinExists = true
      } else {
        throw new IllegalStateError(`unexpected sliding window starting at ${w.startMs} for an early record at ${t}`)
      }
    }

    // Without a right-window candidate, the combined window holds only records after t (if its
    // max timestamp is later than t): they form t's right window.
    if (rightWinAgg === undefined && combined !== undefined && combined.value.timestamp > t) {
      rightWinAgg = combined.value
    }
    if (!rightWinExists && rightWinAgg !== undefined && rightWinAgg.timestamp > t) {
      await this.putWindow(record, makeWindow(t + 1, t + 1 + d), rightWinAgg)
    }
    if (previousRecordTimestamp !== undefined && !startTimes.has(previousRecordTimestamp + 1)) {
      const start = previousRecordTimestamp + 1
      await this.updateWindowAndForward(makeWindow(start, start + d), undefined, record, closeTime)
    }
    await this.updateWindowAndForward(makeWindow(0, d), combined?.value, record, closeTime)
  }

  /** Copies an aggregate into a new window (a right window: does not contain the current record). */
  private async putWindow(record: StreamRecord<K, V>, win: Window, value: ValueAndTimestamp<VA>): Promise<void> {
    await this.store.put(record.key, value, win.startMs)
    await this.forwardUpdate({
      key: { key: record.key, window: win },
      value: { newValue: value.value, oldValue: null },
      timestamp: value.timestamp,
      headers: record.headers,
    })
  }

  /**
   * Adds the record to `win`, starting from `existing` (or the initializer when undefined).
   * `created`: the window is new even though `existing` seeds it (forwarded with `oldValue: null`).
   */
  private async updateWindowAndForward(
    win: Window,
    existing: ValueAndTimestamp<VA> | undefined,
    record: StreamRecord<K, V>,
    closeTime: number,
    created = existing === undefined,
  ): Promise<void> {
    if (win.endMs < closeTime) {
      await this.dropLate(record, win)
      return
    }
    const { initializer, aggregator } = this.options
    const oldAgg = existing === undefined ? initializer() : existing.value
    const newAgg = aggregator(record.key, record.value, oldAgg)
    const newTimestamp = existing === undefined ? record.timestamp : Math.max(record.timestamp, existing.timestamp)
    await this.store.put(record.key, { value: newAgg, timestamp: newTimestamp }, win.startMs)
    await this.forwardUpdate({
      key: { key: record.key, window: win },
      value: { newValue: newAgg, oldValue: created ? null : oldAgg },
      timestamp: newTimestamp,
      headers: record.headers,
    })
  }

  protected emitClosed(cause: Pick<StreamRecord<K, V>, 'headers'>): Promise<void> {
    return this.maybeEmitFinal(cause, this.observedStreamTime - this.options.windows.gracePeriodMs())
  }

  private async maybeEmitFinal(record: Pick<StreamRecord<K, V>, 'headers'>, closeTime: number): Promise<void> {
    if (!this.tracker.progressed(closeTime)) return
    const d = this.d
    // Inclusive ends: a window is closed when start + d < closeTime.
    const upper = closeTime - d - 1
    if (upper < 0) return
    const last = this.tracker.lastEmitCloseTime
    const lower = last === NO_TIMESTAMP ? 0 : Math.max(0, last - d)
    if (lower <= upper) await forwardClosedWindows(this.store, this.context, lower, upper, d, record.headers)
    await this.tracker.update(closeTime)
  }
}
