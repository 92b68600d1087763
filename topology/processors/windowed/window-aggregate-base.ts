/**
 * Pieces shared by the time, sliding and session window aggregation processors (Kafka Streams:
 * what `KStreamWindowAggregate`, `KStreamSlidingWindowAggregate` and
 * `KStreamSessionWindowAggregate` have in common): null key/value drops, observed stream-time,
 * the emit-on-window-close tracker, and the final-result emit of a window store.
 * @internal
 */
import type { Processor, ProcessorContext, StreamRecord } from '../../processor/types.js'
import type { Headers } from '../../serde.js'
import type { StateStore, ValueAndTimestamp, Window, WindowStore, Windowed } from '../../state/types.js'
import type { EmitStrategy } from '../../dsl/suppressed.js'
import { windowOf as makeWindow } from '../../dsl/windows.js'
import type { LateRecordsTarget } from '../../dsl/late-records.js'
import { forwardLateRecord } from '../late-records.js'
import { TimestampedTupleForwarder } from '../forwarder.js'
import { EmitCloseTimeTracker, NO_TIMESTAMP } from './emit-tracker.js'
import { LATE_RECORD_DROP_REASON, NULL_KEY_DROP_REASON, NULL_VALUE_DROP_REASON, type Change } from './types.js'

/** Options every windowed aggregation processor has. */
export interface WindowAggregateCommonOptions {
  /** Name of the aggregation's window or session store. */
  readonly storeName: string
  readonly emitStrategy: EmitStrategy
  /**
   * `onWindowClose` only: name of a `KeyValueStore<string, number>` remembering the close time of
   * the last emit (so final results are not emitted twice after a restart).
   */
  readonly emitTimeStoreName?: string
  /** Where late records go besides being counted (`withLateRecords`); absent: only counted. */
  readonly lateRecords?: LateRecordsTarget
  /**
   * The result table's flags, read at `init`: whether a downstream asked for old values, which a
   * caching store then reads below its cache at each flush. Absent: old values are sent.
   */
  readonly flags?: { readonly sendOldValues: boolean }
}

/** Forwards a window's update unless its store caches it (KIP-63). */
interface UpdateForwarder<K, VA> {
  maybeForward(record: StreamRecord<Windowed<K>, Change<VA>>): Promise<void> | undefined
}

/**
 * Base of the windowed aggregation processors: gets the store `S` and (with `onWindowClose`) the
 * emit tracker in `init`, drops and counts records with a null key or value, advances the
 * observed stream-time (the largest timestamp seen), then hands the record to
 * {@link processRecord}.
 */
export abstract class WindowAggregateProcessorBase<K, V, VA, S extends StateStore> implements Processor<K, V, Windowed<K>, Change<VA>> {
  protected context!: ProcessorContext<Windowed<K>, Change<VA>>
  protected store!: S
  protected observedStreamTime = NO_TIMESTAMP
  protected readonly emitFinal: boolean
  protected readonly tracker: EmitCloseTimeTracker
  private readonly storeName: string
  private readonly lateRecords: LateRecordsTarget | undefined
  private readonly flags: { readonly sendOldValues: boolean } | undefined
  private forwarder: UpdateForwarder<K, VA> | undefined

  constructor(common: WindowAggregateCommonOptions) {
    this.storeName = common.storeName
    this.lateRecords = common.lateRecords
    this.flags = common.flags
    this.emitFinal = common.emitStrategy.type === 'ON_WINDOW_CLOSE'
    this.tracker = new EmitCloseTimeTracker(common.emitTimeStoreName, common.storeName)
  }

  async init(context: ProcessorContext<Windowed<K>, Change<VA>>): Promise<void> {
    this.context = context
    this.store = context.getStateStore<S>(this.storeName)
    if (this.emitFinal) await this.tracker.init(context)
    // emit-on-update: with caching on, the store's flush forwards each window's latest value
    else this.forwarder = this.createForwarder(this.flags?.sendOldValues ?? true)
  }

  /** The forwarder of window updates (time and sliding windows: the timestamp of the value). */
  protected createForwarder(sendOldValues: boolean): UpdateForwarder<K, VA> {
    return new TimestampedTupleForwarder<Windowed<K>, VA>(this.store, this.context, sendOldValues)
  }

  /**
   * Forwards a window update at once, unless the aggregation emits on window close (nothing to
   * forward) or the store caches (its flush forwards the window's latest value, KIP-63).
   */
  protected forwardUpdate(record: StreamRecord<Windowed<K>, Change<VA>>): Promise<void> | undefined {
    return this.forwarder?.maybeForward(record)
  }

  async process(record: StreamRecord<K, V>): Promise<void> {
    if (record.key === null || record.key === undefined) {
      this.context.recordDropped(NULL_KEY_DROP_REASON)
      return
    }
    if (record.value === null || record.value === undefined) {
      this.context.recordDropped(NULL_VALUE_DROP_REASON)
      return
    }
    this.observedStreamTime = Math.max(this.observedStreamTime, record.timestamp)
    await this.processRecord(record)
  }

  /**
   * Stream-time moved without a record (wall-clock idle advance): windows it closes are closed
   * (later records for them are late) and, with `onWindowClose`, their final results are emitted
   * (without headers: no record caused them).
   */
  async advanceStreamTime(streamTimeMs: number): Promise<void> {
    if (streamTimeMs <= this.observedStreamTime) return
    this.observedStreamTime = streamTimeMs
    if (this.emitFinal) await this.emitClosed({ headers: {} })
  }

  /**
   * Drops `record` for arriving after `window` closed: counts it (`dropped-records`, reason
   * `late`) and, with late records configured, sends it to the side topic. Called once per
   * window the record missed, as the metric counts.
   */
  protected dropLate(record: StreamRecord<K, V>, window: Window): Promise<void> | undefined {
    this.context.recordDropped(LATE_RECORD_DROP_REASON)
    if (this.lateRecords === undefined) return undefined
    return forwardLateRecord(this.context, this.lateRecords, record, {
      windowStartMs: window.startMs,
      windowEndMs: window.endMs,
      streamTimeMs: this.observedStreamTime,
    })
  }

  /** Processes a record with a key and a value; {@link observedStreamTime} already includes it. */
  protected abstract processRecord(record: StreamRecord<K, V>): Promise<void>

  /** Emits the final results of the windows closed at {@link observedStreamTime} (`onWindowClose` only). */
  protected abstract emitClosed(cause: Pick<StreamRecord<K, V>, 'headers'>): Promise<void>
}

/**
 * Forwards the final result of every window of `store` starting in `[lower, upper]`, in
 * window-start order, as `Change { newValue, oldValue: null }` keyed by the window
 * `[start, start + windowSizeMs]`, with the window's timestamp and the given headers.
 * Records KIP-825's `window-aggregate-final-emit` (windows forwarded) and `window-aggregate-final-emit-latency`
 * (milliseconds this emit took) on the node's sensors.
 */
export async function forwardClosedWindows<K, VA>(
  store: WindowStore<K, ValueAndTimestamp<VA>>,
  context: ProcessorContext<Windowed<K>, Change<VA>>,
  lower: number,
  upper: number,
  windowSizeMs: number,
  headers: Headers,
): Promise<void> {
  const startMs = performance.now()
  const closed: Array<{ key: K; startMs: number; value: ValueAndTimestamp<VA> }> = []
  for await (const kv of store.fetchAll(lower, upper)) {
    closed.push({ key: kv.key.key, startMs: kv.key.window.startMs, value: kv.value })
  }
  closed.sort((a, b) => a.startMs - b.startMs)
  for (const c of closed) {
    await context.forward({
      key: { key: c.key, window: makeWindow(c.startMs, c.startMs + windowSizeMs) },
      value: { newValue: c.value.value, oldValue: null },
      timestamp: c.value.timestamp,
      headers,
    })
  }
  recordFinalEmit(context, closed.length, startMs)
}

/** Records KIP-825's final-emit sensors of the calling node: `count` results emitted in an emit that began at `startMs` (`performance.now()`). */
export function recordFinalEmit(context: ProcessorContext<any, any>, count: number, startMs: number): void {
  const metrics = context.metrics?.()
  if (metrics === undefined) return
  if (count > 0) metrics.windowAggregateFinalEmit.record(count)
  metrics.emitFinalLatency.record(performance.now() - startMs)
}
