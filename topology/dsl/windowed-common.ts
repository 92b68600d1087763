/**
 * Plumbing shared by the windowed DSL classes ({@link TimeWindowedKStreamImpl},
 * `SlidingWindowedKStream`, `SessionWindowedKStream`): argument checks and the method name,
 * processor-name prefix, default value serde, initializer and aggregator of `count`, `reduce` and
 * `aggregate` (Kafka Streams: the bodies of `TimeWindowedKStreamImpl.count/reduce/aggregate`).
 */
import { Serdes, type Serde } from '../serde.js'
import type { Windowed } from '../state/types.js'
import type { KTable } from './ktable.js'
import type { KGroupedStream } from './kgrouped-stream.js'
import type { MaterializedConfig, NamedConfig } from './options.js'
import { requireFunction } from './materialize.js'
import { reduceAsAggregate } from '../processors/windowed/build.js'

/** What a windowed `count`/`reduce`/`aggregate` call contributes to `buildWindowedAggregate`. */
export interface WindowedAggregateCall<K, V, VAgg> {
  readonly method: 'count' | 'reduce' | 'aggregate'
  readonly prefix: 'KSTREAM-AGGREGATE-' | 'KSTREAM-REDUCE-'
  readonly materialized: MaterializedConfig<K, VAgg> | undefined
  readonly named: NamedConfig | undefined
  /** Value serde when Materialized has none (count: Long; reduce: the grouped value serde). */
  readonly defaultValueSerde: Serde<VAgg> | undefined
  readonly initializer: () => VAgg
  readonly aggregator: (key: K, value: V, aggregate: VAgg) => VAgg
}

/**
 * `count`: counts records (`KSTREAM-AGGREGATE-`, value serde Long). With `burnStoreName`, a
 * `Materialized` without a store name uses up one store name first, as Kafka Streams does
 * (topology compatibility).
 */
export function windowedCountCall<K, V>(
  grouped: KGroupedStream<K, V>,
  materialized: MaterializedConfig<K, number> | undefined,
  named: NamedConfig | undefined,
  burnStoreName: boolean,
): WindowedAggregateCall<K, V, number> {
  if (
    burnStoreName &&
    materialized !== undefined &&
    materialized !== null &&
    typeof materialized === 'object' &&
    materialized.storeName === undefined
  ) {
    grouped.builder.newStoreName('KSTREAM-AGGREGATE-')
  }
  return {
    method: 'count',
    prefix: 'KSTREAM-AGGREGATE-',
    materialized,
    named,
    defaultValueSerde: Serdes.Long(),
    initializer: () => 0,
    aggregator: (_k, _v, n) => n + 1,
  }
}

/** `reduce`: checks `reducer` and turns it into an initializer/aggregator pair (`KSTREAM-REDUCE-`). */
export function windowedReduceCall<K, V>(
  grouped: KGroupedStream<K, V>,
  reducer: (aggregate: V, value: V) => V,
  materialized: MaterializedConfig<K, V> | undefined,
  named: NamedConfig | undefined,
): WindowedAggregateCall<K, V, V> {
  requireFunction(reducer, 'reducer', 'reduce')
  const { initializer, aggregator } = reduceAsAggregate<K, V>(reducer)
  return {
    method: 'reduce',
    prefix: 'KSTREAM-REDUCE-',
    materialized,
    named,
    defaultValueSerde: grouped.valueSerde,
    initializer,
    aggregator,
  }
}

/** `aggregate`: checks `initializer` and `aggregator` (`KSTREAM-AGGREGATE-`, no default value serde). */
export function windowedAggregateCall<K, V, VAgg>(
  initializer: () => VAgg,
  aggregator: (key: K, value: V, aggregate: VAgg) => VAgg,
  materialized: MaterializedConfig<K, VAgg> | undefined,
  named: NamedConfig | undefined,
): WindowedAggregateCall<K, V, VAgg> {
  requireFunction(initializer, 'initializer', 'aggregate')
  requireFunction(aggregator, 'aggregator', 'aggregate')
  return { method: 'aggregate', prefix: 'KSTREAM-AGGREGATE-', materialized, named, defaultValueSerde: undefined, initializer, aggregator }
}

/**
 * `count`, `reduce` and `aggregate` of the time and sliding windowed streams (the
 * `TimeWindowedKStream` methods); subclasses build the aggregation for their windows.
 */
export abstract class WindowAggregations<K, V> {
  /** @internal */
  abstract readonly grouped: KGroupedStream<K, V>

  /** Whether `count(Materialized)` without a store name uses up one store name first (see {@link windowedCountCall}). */
  protected abstract countBurnsStoreName(): boolean

  /** Builds the windowed aggregation of one `count`/`reduce`/`aggregate` call. */
  protected abstract build<VAgg>(call: WindowedAggregateCall<K, V, VAgg>): KTable<Windowed<K>, VAgg>

  count(materialized?: MaterializedConfig<K, number>, named?: NamedConfig): KTable<Windowed<K>, number> {
    return this.build(windowedCountCall<K, V>(this.grouped, materialized, named, this.countBurnsStoreName()))
  }

  reduce(reducer: (aggregate: V, value: V) => V, materialized?: MaterializedConfig<K, V>, named?: NamedConfig): KTable<Windowed<K>, V> {
    return this.build(windowedReduceCall(this.grouped, reducer, materialized, named))
  }

  aggregate<VAgg>(
    initializer: () => VAgg,
    aggregator: (key: K, value: V, aggregate: VAgg) => VAgg,
    materialized?: MaterializedConfig<K, VAgg>,
    named?: NamedConfig,
  ): KTable<Windowed<K>, VAgg> {
    return this.build(windowedAggregateCall(initializer, aggregator, materialized, named))
  }
}
