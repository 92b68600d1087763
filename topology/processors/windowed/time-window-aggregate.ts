/**
 * Tumbling/hopping window aggregation (Kafka Streams: `KStreamWindowAggregate`).
 *
 * For each record, every window `[start, start + size)` containing its timestamp is updated in a
 * `WindowStore<K, ValueAndTimestamp<VA>>`, unless the window is closed: a window is closed once
 * `windowEnd + grace <= observedStreamTime` (the largest timestamp this processor has seen).
 * Updates to closed windows are dropped and counted with `context.recordDropped('late')`, once per
 * closed window (as Kafka Streams' `dropped-records` sensor does), and with late records
 * configured sent to the side topic once per closed window too.
 *
 * Each window's aggregate carries the largest timestamp of the records in it. With
 * `onWindowUpdate` every update is forwarded as `Change { newValue, oldValue }` keyed by
 * `Windowed<K>`; with `onWindowClose` nothing is forwarded until stream-time closes the window,
 * then its final aggregate is forwarded once (`oldValue: null`), in window-start order.
 */
import type { ProcessorSupplier, StreamRecord } from '../../processor/types.js'
import type { ValueAndTimestamp, WindowStore, Windowed } from '../../state/types.js'
import type { TimeWindows } from '../../dsl/windows.js'
import { NO_TIMESTAMP } from './emit-tracker.js'
import { WindowAggregateProcessorBase, forwardClosedWindows, type WindowAggregateCommonOptions } from './window-aggregate-base.js'
import type { Aggregator, Change, Initializer } from './types.js'

/** `storeName`: the `WindowStore<K, ValueAndTimestamp<VA>>` (window size = `windows.size()`). */
export interface TimeWindowAggregateOptions<K, V, VA> extends WindowAggregateCommonOptions {
  readonly windows: TimeWindows
  readonly initializer: Initializer<VA>
  readonly aggregator: Aggregator<K, V, VA>
}

/** Supplier of the tumbling/hopping window aggregation processor. */
export function timeWindowAggregateSupplier<K, V, VA>(
  options: TimeWindowAggregateOptions<K, V, VA>,
): ProcessorSupplier<K, V, Windowed<K>, Change<VA>> {
  return () => new TimeWindowAggregateProcessor(options)
}

class TimeWindowAggregateProcessor<K, V, VA> extends WindowAggregateProcessorBase<K, V, VA, WindowStore<K, ValueAndTimestamp<VA>>> {
  constructor(private readonly options: TimeWindowAggregateOptions<K, V, VA>) {
    super(options)
  }

  protected async processRecord(record: StreamRecord<K, V>): Promise<void> {
    const { windows, initializer, aggregator } = this.options
    const timestamp = record.timestamp
    const closeTime = this.observedStreamTime - windows.gracePeriodMs()

    // Final results first: the windows closed by this record's stream-time cannot change any more,
    // and reading them before this record's writes keeps them clear of the store's retention.
    if (this.emitFinal) await this.maybeEmitFinal(record, closeTime)

    const matched = windows.windowsFor(timestamp)
    if (matched.size > 0) {
      // One range read for all windows of this record instead of one read per window.
      const starts = [...matched.keys()]
      const existing = new Map<number, ValueAndTimestamp<VA>>()
      for await (const kv of this.store.fetchRange(record.key, starts[0]!, starts[starts.length - 1]!)) {
        existing.set(kv.key, kv.value)
      }
      for (const [start, win] of matched) {
        if (win.endMs <= closeTime) {
          await this.dropLate(record, win)
          continue
        }
        const old = existing.get(start)
        const oldAgg = old === undefined ? null : old.value
        const newTimestamp = old === undefined ? timestamp : Math.max(timestamp, old.timestamp)
        const newAgg = aggregator(record.key, record.value, old === undefined ? initializer() : old.value)
        await this.store.put(record.key, { value: newAgg, timestamp: newTimestamp }, start)
        await this.forwardUpdate({
          key: { key: record.key, window: win },
          value: { newValue: newAgg, oldValue: oldAgg },
          timestamp: newTimestamp,
          headers: record.headers,
        })
      }
    }
  }

  /** Forwards the final result of every window closed since the last emit. */
  protected emitClosed(cause: Pick<StreamRecord<K, V>, 'headers'>): Promise<void> {
    return this.maybeEmitFinal(cause, this.observedStreamTime - this.options.windows.gracePeriodMs())
  }

  private async maybeEmitFinal(record: Pick<StreamRecord<K, V>, 'headers'>, closeTime: number): Promise<void> {
    if (!this.tracker.progressed(closeTime)) return
    const { windows } = this.options
    const size = windows.size()
    // Windows with start <= upper have `start + size <= closeTime`: closed.
    const upper = closeTime - size
    if (upper < 0) return
    const last = this.tracker.lastEmitCloseTime
    const lower = last === NO_TIMESTAMP ? 0 : Math.max(0, last - size + 1)
    // Only read the store when a window start (a multiple of advance) lies in [lower, upper].
    const firstStart = Math.ceil(lower / windows.advanceMs) * windows.advanceMs
    if (firstStart > upper) return
    await forwardClosedWindows(this.store, this.context, lower, upper, size, record.headers)
    await this.tracker.update(closeTime)
  }
}
