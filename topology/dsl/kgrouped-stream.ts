/**
 * `KGroupedStream<K, V>`: a stream grouped by key, ready to aggregate (Kafka Streams:
 * `KGroupedStream`, `KGroupedStreamImpl`, `GroupedStreamAggregateBuilder`).
 *
 * If the key changed upstream, the aggregation first goes through a repartition topic named
 * `<Grouped name or store name>-repartition` (sink `KSTREAM-SINK-`, pass-through
 * `KSTREAM-FILTER-`, source `KSTREAM-SOURCE-`), exactly as Kafka Streams names it.
 */
import type { Serde } from '../serde.js'
import { Serdes } from '../serde.js'
import type { ProcessorSupplier } from '../processor/types.js'
import type { StoreDef } from '../state/types.js'
import type { InternalTopologyBuilder } from '../internals/internal-topology-builder.js'
import type { MaterializedConfig, NamedConfig } from './options.js'
import { nameOrGenerate, requireFunction, resolveMaterialized, storeDefFrom } from './materialize.js'
import { streamAggregateSupplier, streamReduceSupplier } from '../processors/aggregate.js'
import type { TableNodeFlags } from '../processors/table.js'
import type { Change } from '../processors/change.js'
import { KTable, storeTableOrigin } from './ktable.js'
import type { SessionWindows, SlidingWindows, TimeWindows } from './windows.js'
import { windowedBy, type TimeWindowedKStream } from './time-windowed-kstream.js'
import type { SessionWindowedKStream } from './session-windowed-kstream.js'
import { CogroupedKStream } from './cogrouped-kstream.js'
import type { Aggregator } from '../processors/windowed/types.js'

/** Internal state of a KGroupedStream handle. */
export interface KGroupedStreamInit<K, V> {
  readonly builder: InternalTopologyBuilder
  /** Node whose output is grouped. */
  readonly name: string
  readonly keySerde?: Serde<K> | undefined
  readonly valueSerde?: Serde<V> | undefined
  readonly sourceNodes: ReadonlySet<string>
  readonly repartitionRequired: boolean
  /** `Grouped.name`: base name of the repartition topic. */
  readonly groupedName?: string | undefined
}

/** What {@link KGroupedStream.buildAggregate} needs: names already generated in Kafka Streams' order. */
export interface GroupedAggregateSpec<KR, VAgg> {
  /** The aggregate processor name (generated AFTER the store name, as Kafka Streams does). */
  readonly functionName: string
  /** The result store (registered and connected by `buildAggregate`). */
  readonly storeDef: StoreDef
  /** Whether the user named the store. */
  readonly queryable: boolean
  /** Builds the processor from the node's flags (`storeName` is set to the store). */
  readonly supplier: (flags: TableNodeFlags) => ProcessorSupplier<any, any, KR, Change<VAgg>>
  /** Serdes of the result table. */
  readonly keySerde?: Serde<KR> | undefined
  readonly valueSerde?: Serde<VAgg> | undefined
}

/** A grouped stream. Create with `KStream.groupByKey` / `KStream.groupBy`. */
export class KGroupedStream<K, V> {
  /** @internal */ readonly builder: InternalTopologyBuilder
  /** @internal */ readonly name: string
  /** @internal */ readonly keySerde: Serde<K> | undefined
  /** @internal */ readonly valueSerde: Serde<V> | undefined
  /** @internal */ readonly sourceNodes: ReadonlySet<string>
  /** @internal */ readonly repartitionRequired: boolean
  /** @internal */ readonly groupedName: string | undefined

  /** Made by `KStream.groupByKey` / `groupBy`; not for applications. */
  constructor(init: KGroupedStreamInit<K, V>) {
    this.builder = init.builder
    this.name = init.name
    this.keySerde = init.keySerde
    this.valueSerde = init.valueSerde
    this.sourceNodes = init.sourceNodes
    this.repartitionRequired = init.repartitionRequired
    this.groupedName = init.groupedName
    Object.freeze(this)
  }

  /**
   * @internal Wires an aggregation (also used by windowed aggregations): repartition if
   * required (topic `<groupedName or store name>-repartition`), then the aggregate processor with
   * its store. Returns the result table.
   */
  buildAggregate<KR, VAgg>(spec: GroupedAggregateSpec<KR, VAgg>): KTable<KR, VAgg> {
    let parent = this.name
    let sourceNodes = this.sourceNodes
    if (this.repartitionRequired) {
      const nodes = this.builder.addRepartition({
        parent: this.name,
        topicPrefix: this.groupedName ?? spec.storeDef.name,
        ...(this.keySerde !== undefined ? { keySerde: this.keySerde } : {}),
        ...(this.valueSerde !== undefined ? { valueSerde: this.valueSerde } : {}),
      })
      parent = nodes.sourceName
      sourceNodes = new Set([nodes.sourceName])
    }
    const flags: TableNodeFlags = { sendOldValues: false, storeName: spec.storeDef.name }
    this.builder.addProcessor(spec.functionName, spec.supplier(flags), [parent])
    this.builder.addStateStore(spec.storeDef, { processorNames: [spec.functionName] })
    return new KTable<KR, VAgg>({
      builder: this.builder,
      name: spec.functionName,
      keySerde: spec.keySerde,
      valueSerde: spec.valueSerde,
      sourceNodes,
      queryableStoreName: spec.queryable ? spec.storeDef.name : undefined,
      flags,
      origin: storeTableOrigin<KR, VAgg>(flags, spec.storeDef.name),
    })
  }

  private doAggregate<VAgg>(
    method: string,
    prefix: string,
    materialized: MaterializedConfig<K, VAgg> | undefined,
    named: NamedConfig | undefined,
    defaultValueSerde: Serde<VAgg> | undefined,
    supplier: (flags: TableNodeFlags) => ProcessorSupplier<any, any, K, Change<VAgg>>,
  ): KTable<K, VAgg> {
    const m = resolveMaterialized(this.builder, materialized, prefix, method)
    const functionName = nameOrGenerate(this.builder, named, prefix, method)
    const keySerde = m.keySerde ?? this.keySerde
    const valueSerde = m.valueSerde ?? defaultValueSerde
    return this.buildAggregate<K, VAgg>({
      functionName,
      storeDef: storeDefFrom(m, 'keyValue', { keySerde, valueSerde }),
      queryable: m.queryable,
      supplier,
      keySerde,
      valueSerde,
    })
  }

  /**
   * Windows the grouped stream for windowed aggregations (Kafka Streams: `windowedBy`):
   * `TimeWindows` (tumbling/hopping) and `SlidingWindows` give a {@link TimeWindowedKStream},
   * `SessionWindows` a {@link SessionWindowedKStream}. Results are `KTable<Windowed<K>, VOut>`.
   * @throws TopologyError when `windows` is not one of these
   */
  windowedBy(windows: TimeWindows | SlidingWindows): TimeWindowedKStream<K, V>
  windowedBy(windows: SessionWindows): SessionWindowedKStream<K, V>
  windowedBy(windows: TimeWindows | SlidingWindows | SessionWindows): TimeWindowedKStream<K, V> | SessionWindowedKStream<K, V> {
    return windowedBy<K, V>(this, windows)
  }

  /**
   * Counts records per key (`KSTREAM-AGGREGATE-`, store `KSTREAM-AGGREGATE-STATE-STORE-<n>`
   * unless named). Records with a null key or value are dropped and counted. Value serde: Long.
   */
  count(materialized?: MaterializedConfig<K, number>, named?: NamedConfig): KTable<K, number> {
    // Kafka Streams burns one extra store name for count(Materialized) without a store name (compatibility).
    if (materialized !== undefined && materialized !== null && typeof materialized === 'object' && materialized.storeName === undefined)
      this.builder.newStoreName('KSTREAM-AGGREGATE-')
    return this.doAggregate<number>('count', 'KSTREAM-AGGREGATE-', materialized, named, Serdes.Long(), (f) =>
      streamAggregateSupplier<K, V, number>(
        f,
        () => 0,
        (_k, _v, agg) => agg + 1,
      ),
    )
  }

  /** Combines values per key with `reducer(aggregate, value)` (`KSTREAM-REDUCE-`). */
  reduce(reducer: (aggregate: V, value: V) => V, materialized?: MaterializedConfig<K, V>, named?: NamedConfig): KTable<K, V> {
    requireFunction(reducer, 'reducer', 'reduce')
    return this.doAggregate<V>('reduce', 'KSTREAM-REDUCE-', materialized, named, this.valueSerde, (f) =>
      streamReduceSupplier<K, V>(f, reducer),
    )
  }

  /**
   * Folds values per key into an aggregate (`KSTREAM-AGGREGATE-`): `initializer()` starts it,
   * `aggregator(key, value, aggregate)` updates it. Pass the aggregate's serde in `materialized`
   * (or the default value serde is used).
   */
  aggregate<VAgg>(
    initializer: () => VAgg,
    aggregator: (key: K, value: V, aggregate: VAgg) => VAgg,
    materialized?: MaterializedConfig<K, VAgg>,
    named?: NamedConfig,
  ): KTable<K, VAgg> {
    requireFunction(initializer, 'initializer', 'aggregate')
    requireFunction(aggregator, 'aggregator', 'aggregate')
    return this.doAggregate<VAgg>('aggregate', 'KSTREAM-AGGREGATE-', materialized, named, undefined, (f) =>
      streamAggregateSupplier<K, V, VAgg>(f, initializer, aggregator),
    )
  }

  /**
   * Starts a cogroup (Kafka Streams KIP-150): this grouped stream, folded with
   * `aggregator(key, value, aggregate)`, is the first input of a {@link CogroupedKStream}; add more
   * grouped streams with `.cogroup(other, aggregator)`, then `.aggregate(initializer)` (or window it).
   * All inputs share one aggregate per key and one store.
   * @throws TopologyError when `aggregator` is not a function
   */
  cogroup<VOut>(aggregator: Aggregator<K, V, VOut>): CogroupedKStream<K, VOut> {
    requireFunction(aggregator, 'aggregator', 'cogroup')
    return new CogroupedKStream<K, VOut>(this.builder, [{ grouped: this, aggregator }])
  }
}
