/**
 * A grouped stream windowed by {@link SlidingWindows} (Kafka Streams: `SlidingWindowedKStreamImpl`,
 * KIP-450). It has the {@link TimeWindowedKStream} interface; windows are `[start, start + d]`
 * with both ends included, and only windows containing records exist. The window store keeps
 * at least `2 × timeDifference + grace` (records need the windows of the previous ones).
 */
import type { Windowed } from '../state/types.js'
import type { KGroupedStream } from './kgrouped-stream.js'
import type { KTable } from './ktable.js'
import { WindowAggregations, type WindowedAggregateCall } from './windowed-common.js'
import { EmitStrategy } from './suppressed.js'
import { checkLateRecords, type LateRecordsConfig } from './late-records.js'
import type { SlidingWindows } from './windows.js'
import type { TimeWindowedKStream } from './time-windowed-kstream.js'
import { checkEmitStrategy } from './time-windowed-kstream.js'
import { buildWindowedAggregate } from '../processors/windowed/build.js'
import { windowStoreValueGetterSupplier } from '../processors/windowed/graph.js'
import { slidingWindowAggregateSupplier } from '../processors/windowed/sliding-window-aggregate.js'
import { timeWindowedSerde } from '../processors/windowed/windowed-serdes.js'

/** Sliding-windowed stream; see {@link TimeWindowedKStream} for the methods. */
export class SlidingWindowedKStream<K, V> extends WindowAggregations<K, V> implements TimeWindowedKStream<K, V> {
  /** Made by `KGroupedStream.windowedBy(SlidingWindows)`; not for applications. */
  constructor(
    /** @internal */ readonly grouped: KGroupedStream<K, V>,
    readonly windows: SlidingWindows,
    readonly strategy: EmitStrategy = EmitStrategy.onWindowUpdate(),
    /** @internal */ readonly lateRecords?: LateRecordsConfig<K, V>,
  ) {
    super()
    Object.freeze(this)
  }

  emitStrategy(strategy: EmitStrategy): TimeWindowedKStream<K, V> {
    checkEmitStrategy(strategy)
    return new SlidingWindowedKStream<K, V>(this.grouped, this.windows, strategy, this.lateRecords)
  }

  withLateRecords(lateRecords: LateRecordsConfig<K, V>): TimeWindowedKStream<K, V> {
    return new SlidingWindowedKStream<K, V>(this.grouped, this.windows, this.strategy, checkLateRecords(lateRecords, 'withLateRecords'))
  }

  /** Kafka Streams' sliding windows do not burn a store name in `count(Materialized)`. */
  protected countBurnsStoreName(): boolean {
    return false
  }

  protected build<VAgg>({ initializer, aggregator, ...call }: WindowedAggregateCall<K, V, VAgg>): KTable<Windowed<K>, VAgg> {
    const windows = this.windows
    const emitStrategy = this.strategy
    const d = windows.timeDifference()
    return buildWindowedAggregate<K, VAgg>({
      grouped: this.grouped,
      ...call,
      storeType: 'window',
      minRetentionMs: 2 * d + windows.gracePeriodMs(),
      retentionRule: '2 * time difference plus the grace period',
      windowSizeMs: d,
      windowedKeySerde: (keySerde) => timeWindowedSerde(keySerde, d),
      emitStrategy,
      // What suppress(untilWindowCloses) waits after a window's end: the grace, as Kafka Streams'
      // GraphGraceSearchUtil says. Its buffer emits once `end <= stream-time - grace`, one ms before
      // the aggregation stops updating the inclusive window, so a late update is emitted again
      // (Kafka Streams does the same).
      closeAfterEndMs: windows.gracePeriodMs(),
      lateRecords: this.lateRecords,
      supplier: (storeName, emitTimeStoreName, lateRecords, flags) =>
        slidingWindowAggregateSupplier<K, V, VAgg>({
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
