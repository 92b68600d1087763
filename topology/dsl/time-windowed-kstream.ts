/**
 * `TimeWindowedKStream<K, V>`: a grouped stream windowed by {@link TimeWindows} (tumbling or
 * hopping) or {@link SlidingWindows}, ready to aggregate per key and window (Kafka Streams:
 * `TimeWindowedKStream`, `TimeWindowedKStreamImpl`, `SlidingWindowedKStreamImpl`).
 *
 * Results are `KTable<Windowed<K>, VOut>`: one row per key and window, updated on every record
 * (`EmitStrategy.onWindowUpdate()`, the default) or written once when the window closes
 * (`EmitStrategy.onWindowClose()`, KIP-825). A window closes once stream-time reaches
 * `windowEnd + grace`; later records for it are dropped and counted (`dropped-records`, reason
 * `late`). Records with a null key or value are dropped and counted.
 *
 * @example
 * ```ts
 * const counts: KTable<Windowed<string>, number> = builder
 *   .stream('clicks', Consumed.with(Serdes.String(), Serdes.String()))
 *   .groupByKey()
 *   .windowedBy(TimeWindows.ofSizeAndGrace(60_000, 10_000))
 *   .count(Materialized.as('clicks-per-minute'))
 * ```
 */
import { TopologyError } from '../errors.js'
import type { Windowed } from '../state/types.js'
import type { KGroupedStream } from './kgrouped-stream.js'
import type { KTable } from './ktable.js'
import type { MaterializedConfig, NamedConfig } from './options.js'
import { WindowAggregations, type WindowedAggregateCall } from './windowed-common.js'
import { EmitStrategy } from './suppressed.js'
import { checkLateRecords, type LateRecordsConfig } from './late-records.js'
import { SessionWindows, SlidingWindows, TimeWindows } from './windows.js'
import { buildWindowedAggregate } from '../processors/windowed/build.js'
import { windowStoreValueGetterSupplier } from '../processors/windowed/graph.js'
import { timeWindowAggregateSupplier } from '../processors/windowed/time-window-aggregate.js'
import { timeWindowedSerde } from '../processors/windowed/windowed-serdes.js'
import { SlidingWindowedKStream } from './sliding-windowed-kstream.js'
import { SessionWindowedKStream } from './session-windowed-kstream.js'

/**
 * Aggregations over time windows (tumbling, hopping or sliding). Every method returns a new
 * object; `Materialized` names the window store (`KSTREAM-AGGREGATE-STATE-STORE-<n>` otherwise),
 * gives its serdes (for the plain key `K`, and the aggregate) and its retention, which must be at
 * least window size + grace (sliding windows: 2 × time difference + grace).
 */
export interface TimeWindowedKStream<K, V> {
  /** When results are forwarded (KIP-825). @defaultValue `EmitStrategy.onWindowUpdate()` */
  emitStrategy(strategy: EmitStrategy): TimeWindowedKStream<K, V>
  /**
   * Sends the records the aggregation drops as late (arriving after `windowEnd + grace`) to a side
   * topic instead of only counting them: key, value, timestamp and headers unchanged, plus the
   * headers of `LATE_RECORD_HEADERS` (processor, window bounds, stream-time, lateness). One record
   * per window missed (a hopping-window record can miss several), as `dropped-records` counts.
   * Written through the task's record collector, so under exactly-once in the same transaction.
   * A kstreams extension (Kafka Streams only drops and counts).
   * @throws TopologyError when `lateRecords` has no topic
   */
  withLateRecords(lateRecords: LateRecordsConfig<K, V>): TimeWindowedKStream<K, V>
  /** Counts records per key and window (`KSTREAM-AGGREGATE-`). Value serde defaults to Long. */
  count(materialized?: MaterializedConfig<K, number>, named?: NamedConfig): KTable<Windowed<K>, number>
  /** Combines values per key and window with `reducer(aggregate, value)` (`KSTREAM-REDUCE-`). */
  reduce(reducer: (aggregate: V, value: V) => V, materialized?: MaterializedConfig<K, V>, named?: NamedConfig): KTable<Windowed<K>, V>
  /**
   * Folds values per key and window (`KSTREAM-AGGREGATE-`): `initializer()` starts each window,
   * `aggregator(key, value, aggregate)` updates it. Give the aggregate's serde in `materialized`
   * (or the default value serde is used).
   */
  aggregate<VAgg>(
    initializer: () => VAgg,
    aggregator: (key: K, value: V, aggregate: VAgg) => VAgg,
    materialized?: MaterializedConfig<K, VAgg>,
    named?: NamedConfig,
  ): KTable<Windowed<K>, VAgg>
}

/** Tumbling/hopping windowed stream (Kafka Streams: `TimeWindowedKStreamImpl`). */
export class TimeWindowedKStreamImpl<K, V> extends WindowAggregations<K, V> implements TimeWindowedKStream<K, V> {
  /** Made by `KGroupedStream.windowedBy(TimeWindows)`; not for applications. */
  constructor(
    /** @internal */ readonly grouped: KGroupedStream<K, V>,
    readonly windows: TimeWindows,
    readonly strategy: EmitStrategy = EmitStrategy.onWindowUpdate(),
    /** @internal */ readonly lateRecords?: LateRecordsConfig<K, V>,
  ) {
    super()
    Object.freeze(this)
  }

  emitStrategy(strategy: EmitStrategy): TimeWindowedKStream<K, V> {
    checkEmitStrategy(strategy)
    return new TimeWindowedKStreamImpl<K, V>(this.grouped, this.windows, strategy, this.lateRecords)
  }

  withLateRecords(lateRecords: LateRecordsConfig<K, V>): TimeWindowedKStream<K, V> {
    return new TimeWindowedKStreamImpl<K, V>(this.grouped, this.windows, this.strategy, checkLateRecords(lateRecords, 'withLateRecords'))
  }

  protected countBurnsStoreName(): boolean {
    return true
  }

  protected build<VAgg>({ initializer, aggregator, ...call }: WindowedAggregateCall<K, V, VAgg>): KTable<Windowed<K>, VAgg> {
    const windows = this.windows
    const emitStrategy = this.strategy
    return buildWindowedAggregate<K, VAgg>({
      grouped: this.grouped,
      ...call,
      storeType: 'window',
      minRetentionMs: windows.size() + windows.gracePeriodMs(),
      retentionRule: 'its window size plus the grace period',
      windowSizeMs: windows.size(),
      windowedKeySerde: (keySerde) => timeWindowedSerde(keySerde, windows.size()),
      emitStrategy,
      closeAfterEndMs: windows.gracePeriodMs(),
      lateRecords: this.lateRecords,
      supplier: (storeName, emitTimeStoreName, lateRecords, flags) =>
        timeWindowAggregateSupplier<K, V, VAgg>({
          windows,
          storeName,
          emitStrategy,
          initializer,
          aggregator,
          ...(emitTimeStoreName ? { emitTimeStoreName } : {}),
          ...(lateRecords ? { lateRecords } : {}),
          flags,
        }),
      valueGetter: (storeName) => windowStoreValueGetterSupplier<K, VAgg>(storeName),
    })
  }
}

/** Throws `TopologyError` unless `strategy` is an {@link EmitStrategy}. */
export function checkEmitStrategy(strategy: EmitStrategy): void {
  if (strategy === null || typeof strategy !== 'object' || (strategy.type !== 'ON_WINDOW_UPDATE' && strategy.type !== 'ON_WINDOW_CLOSE')) {
    throw new TopologyError(`emitStrategy: parameter 'strategy' must be EmitStrategy.onWindowUpdate() or EmitStrategy.onWindowClose()`)
  }
}

/**
 * `KGroupedStream.windowedBy` (Kafka Streams): time and sliding windows give a
 * {@link TimeWindowedKStream}, session windows a {@link SessionWindowedKStream}.
 * @throws TopologyError when `windows` is none of them
 */
export function windowedBy<K, V>(grouped: KGroupedStream<K, V>, windows: TimeWindows): TimeWindowedKStream<K, V>
export function windowedBy<K, V>(grouped: KGroupedStream<K, V>, windows: SlidingWindows): TimeWindowedKStream<K, V>
export function windowedBy<K, V>(grouped: KGroupedStream<K, V>, windows: SessionWindows): SessionWindowedKStream<K, V>
export function windowedBy<K, V>(
  grouped: KGroupedStream<K, V>,
  windows: TimeWindows | SlidingWindows | SessionWindows,
): TimeWindowedKStream<K, V> | SessionWindowedKStream<K, V>
export function windowedBy<K, V>(
  grouped: KGroupedStream<K, V>,
  windows: TimeWindows | SlidingWindows | SessionWindows,
): TimeWindowedKStream<K, V> | SessionWindowedKStream<K, V> {
  if (windows instanceof TimeWindows) return new TimeWindowedKStreamImpl<K, V>(grouped, windows)
  if (windows instanceof SlidingWindows) return new SlidingWindowedKStream<K, V>(grouped, windows)
  if (windows instanceof SessionWindows) return new SessionWindowedKStream<K, V>(grouped, windows)
  throw new TopologyError(`windowedBy: parameter 'windows' must be TimeWindows, SlidingWindows or SessionWindows`)
}
