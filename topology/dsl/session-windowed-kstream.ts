/**
 * `SessionWindowedKStream<K, V>`: a grouped stream windowed by {@link SessionWindows} (Kafka
 * Streams: `SessionWindowedKStream`, `SessionWindowedKStreamImpl`).
 *
 * Sessions `[first, last]` (both ends included) grow while records of a key arrive within the
 * inactivity gap; a record bridging two sessions merges them (the `Merger` combines their
 * aggregates). The result table gets a tombstone for every session a merge replaces, then the
 * merged session; result timestamps are session ends. A session closes once stream-time passes
 * `end + gap + grace`; later records for it are dropped and counted.
 */
import type { Windowed } from '../state/types.js'
import type { KGroupedStream } from './kgrouped-stream.js'
import type { KTable } from './ktable.js'
import type { MaterializedConfig, NamedConfig } from './options.js'
import { requireFunction } from './materialize.js'
import { windowedAggregateCall, windowedCountCall, windowedReduceCall, type WindowedAggregateCall } from './windowed-common.js'
import { EmitStrategy } from './suppressed.js'
import { checkLateRecords, type LateRecordsConfig } from './late-records.js'
import type { SessionWindows } from './windows.js'
import { checkEmitStrategy } from './time-windowed-kstream.js'
import { buildWindowedAggregate } from '../processors/windowed/build.js'
import { sessionStoreValueGetterSupplier } from '../processors/windowed/graph.js'
import { sessionWindowAggregateSupplier } from '../processors/windowed/session-window-aggregate.js'
import { sessionWindowedSerde } from '../processors/windowed/windowed-serdes.js'
import type { Merger } from '../processors/windowed/types.js'

/**
 * Aggregations over session windows. `Materialized` names the session store
 * (`KSTREAM-AGGREGATE-STATE-STORE-<n>` otherwise); its retention must be at least gap + grace.
 */
export class SessionWindowedKStream<K, V> {
  /** Made by `KGroupedStream.windowedBy(SessionWindows)`; not for applications. */
  constructor(
    /** @internal */ readonly grouped: KGroupedStream<K, V>,
    readonly windows: SessionWindows,
    readonly strategy: EmitStrategy = EmitStrategy.onWindowUpdate(),
    /** @internal */ readonly lateRecords?: LateRecordsConfig<K, V>,
  ) {
    Object.freeze(this)
  }

  /** When results are forwarded (KIP-825). @defaultValue `EmitStrategy.onWindowUpdate()` */
  emitStrategy(strategy: EmitStrategy): SessionWindowedKStream<K, V> {
    checkEmitStrategy(strategy)
    return new SessionWindowedKStream<K, V>(this.grouped, this.windows, strategy, this.lateRecords)
  }

  /**
   * Sends the records the aggregation drops as late (their session, merged with its neighbours,
   * would end before `stream-time - gap - grace`) to a side topic: key, value, timestamp and
   * headers unchanged, plus the headers of `LATE_RECORD_HEADERS`, the window being that session.
   * See `TimeWindowedKStream.withLateRecords`.
   * @throws TopologyError when `lateRecords` has no topic
   */
  withLateRecords(lateRecords: LateRecordsConfig<K, V>): SessionWindowedKStream<K, V> {
    return new SessionWindowedKStream<K, V>(this.grouped, this.windows, this.strategy, checkLateRecords(lateRecords, 'withLateRecords'))
  }

  /** Counts records per session (`KSTREAM-AGGREGATE-`). Value serde defaults to Long. */
  count(materialized?: MaterializedConfig<K, number>, named?: NamedConfig): KTable<Windowed<K>, number> {
    return this.build(windowedCountCall<K, V>(this.grouped, materialized, named, true), (_k, a, b) => a + b)
  }

  /** Combines values per session with `reducer(aggregate, value)` (`KSTREAM-REDUCE-`); merged sessions are reduced too. */
  reduce(reducer: (aggregate: V, value: V) => V, materialized?: MaterializedConfig<K, V>, named?: NamedConfig): KTable<Windowed<K>, V> {
    const call = windowedReduceCall(this.grouped, reducer, materialized, named)
    return this.build(call, (k, a, b) => call.aggregator(k, b, a))
  }

  /**
   * Folds values per session (`KSTREAM-AGGREGATE-`): `initializer()` starts a session,
   * `aggregator(key, value, aggregate)` adds a record, `merger(key, agg1, agg2)` combines two
   * sessions being merged.
   */
  aggregate<VAgg>(
    initializer: () => VAgg,
    aggregator: (key: K, value: V, aggregate: VAgg) => VAgg,
    merger: Merger<K, VAgg>,
    materialized?: MaterializedConfig<K, VAgg>,
    named?: NamedConfig,
  ): KTable<Windowed<K>, VAgg> {
    const call = windowedAggregateCall(initializer, aggregator, materialized, named)
    requireFunction(merger, 'sessionMerger', 'aggregate')
    return this.build(call, merger)
  }

  private build<VAgg>(
    { initializer, aggregator, ...call }: WindowedAggregateCall<K, V, VAgg>,
    merger: Merger<K, VAgg>,
  ): KTable<Windowed<K>, VAgg> {
    const windows = this.windows
    const emitStrategy = this.strategy
    return buildWindowedAggregate<K, VAgg>({
      grouped: this.grouped,
      ...call,
      storeType: 'session',
      minRetentionMs: windows.inactivityGap() + windows.gracePeriodMs(),
      retentionRule: 'its inactivity gap plus the grace period',
      // Kafka Streams' session stores: with onWindowUpdate the store expires a session once
      // `end <= stream-time - retention`, so a record exactly `gap` after a session starts a new one
      // when the store's stream-time has reached it. The time-ordered store of onWindowClose keeps
      // `end == stream-time - retention` too (AbstractDualSchemaRocksDBSegmentedBytesStore
      // #getActualFrom): one more millisecond, so a session is still there when it is emitted.
      ...(emitStrategy.type === 'ON_WINDOW_CLOSE'
        ? { effectiveMinRetentionMs: windows.inactivityGap() + windows.gracePeriodMs() + 1 }
        : {}),
      windowedKeySerde: (keySerde) => sessionWindowedSerde(keySerde),
      emitStrategy,
      // What suppress(untilWindowCloses) waits after a session's end: gap + grace (Kafka Streams'
      // GraphGraceSearchUtil); its buffer emits once `end <= stream-time - gap - grace`.
      closeAfterEndMs: windows.inactivityGap() + windows.gracePeriodMs(),
      lateRecords: this.lateRecords,
      supplier: (storeName, emitTimeStoreName, lateRecords, flags) =>
        sessionWindowAggregateSupplier<K, V, VAgg>({
          windows,
          storeName,
          emitStrategy,
          initializer,
          aggregator,
          merger,
          ...(emitTimeStoreName ? { emitTimeStoreName } : {}),
          ...(lateRecords ? { lateRecords } : {}),
          flags,
        }),
      valueGetter: (storeName) => sessionStoreValueGetterSupplier<K, VAgg>(storeName),
    })
  }
}
