/**
 * `KGroupedTable<K, V>`: a re-grouped table, ready to aggregate with an adder and a subtractor
 * (Kafka Streams: `KGroupedTable`, `KGroupedTableImpl`).
 *
 * The aggregation always goes through a repartition topic `<Grouped name or store name>-repartition`
 * carrying `Change<V>` (old and new value), sink `KSTREAM-SINK-`, source `KSTREAM-SOURCE-`, then
 * `KTABLE-AGGREGATE-` / `KTABLE-REDUCE-`. An update that moves a row from group A to group B
 * subtracts the old value from A and adds the new value to B.
 */
import type { Serde } from '../serde.js'
import { Serdes } from '../serde.js'
import type { ProcessorSupplier } from '../processor/types.js'
import type { InternalTopologyBuilder } from '../internals/internal-topology-builder.js'
import type { MaterializedConfig, NamedConfig } from './options.js'
import { givenOrGenerate, requireFunction, resolveMaterialized, storeDefFrom, suffixOrGenerate } from './materialize.js'
import { checkOptionalName } from './options.js'
import { tableAggregateSupplier, tableReduceSupplier } from '../processors/aggregate.js'
import { changeSerde, type Change } from '../processors/change.js'
import type { TableNodeFlags } from '../processors/table.js'
import { KTable, storeTableOrigin } from './ktable.js'

/** Internal state of a KGroupedTable handle. */
export interface KGroupedTableInit<K, V> {
  readonly builder: InternalTopologyBuilder
  readonly name: string
  readonly keySerde?: Serde<K> | undefined
  readonly valueSerde?: Serde<V> | undefined
  readonly sourceNodes: ReadonlySet<string>
  readonly groupedName?: string | undefined
}

/** A re-grouped table. Create with `KTable.groupBy`. */
export class KGroupedTable<K, V> {
  /** @internal */ readonly builder: InternalTopologyBuilder
  /** @internal */ readonly name: string
  /** @internal */ readonly keySerde: Serde<K> | undefined
  /** @internal */ readonly valueSerde: Serde<V> | undefined
  /** @internal */ readonly sourceNodes: ReadonlySet<string>
  /** @internal */ readonly groupedName: string | undefined

  /** Made by `KTable.groupBy`; not for applications. */
  constructor(init: KGroupedTableInit<K, V>) {
    this.builder = init.builder
    this.name = init.name
    this.keySerde = init.keySerde
    this.valueSerde = init.valueSerde
    this.sourceNodes = init.sourceNodes
    this.groupedName = init.groupedName
    Object.freeze(this)
  }

  private doAggregate<VAgg>(
    method: string,
    prefix: string,
    materialized: MaterializedConfig<K, VAgg> | undefined,
    named: NamedConfig | undefined,
    defaultValueSerde: Serde<VAgg> | undefined,
    supplier: (flags: TableNodeFlags) => ProcessorSupplier<K, Change<V>, K, Change<VAgg>>,
  ): KTable<K, VAgg> {
    const m = resolveMaterialized(this.builder, materialized, prefix, method)
    const givenName = checkOptionalName(method, named?.name)
    const sinkName = suffixOrGenerate(this.builder, givenName, '-sink', 'KSTREAM-SINK-')
    const sourceName = suffixOrGenerate(this.builder, givenName, '-source', 'KSTREAM-SOURCE-')
    const functionName = givenOrGenerate(this.builder, givenName, prefix)
    const valueChangeSerde = changeSerde<V>(this.valueSerde)
    const nodes = this.builder.addRepartition({
      parent: this.name,
      topicPrefix: this.groupedName ?? m.storeName,
      withFilter: false,
      sinkName,
      sourceName,
      ...(this.keySerde !== undefined ? { keySerde: this.keySerde } : {}),
      valueSerde: valueChangeSerde,
    })
    const keySerde = m.keySerde ?? this.keySerde
    const valueSerde = m.valueSerde ?? defaultValueSerde
    const storeDef = storeDefFrom(m, 'keyValue', { keySerde, valueSerde })
    const flags: TableNodeFlags = { sendOldValues: false, storeName: storeDef.name }
    this.builder.addProcessor(functionName, supplier(flags), [nodes.sourceName])
    this.builder.addStateStore(storeDef, { processorNames: [functionName] })
    return new KTable<K, VAgg>({
      builder: this.builder,
      name: functionName,
      keySerde,
      valueSerde,
      sourceNodes: new Set([nodes.sourceName]),
      queryableStoreName: m.queryable ? storeDef.name : undefined,
      flags,
      origin: storeTableOrigin<K, VAgg>(flags, storeDef.name),
    })
  }

  /** Counts rows per group (`KTABLE-AGGREGATE-`); a row leaving the group decrements it. */
  count(materialized?: MaterializedConfig<K, number>, named?: NamedConfig): KTable<K, number> {
    return this.doAggregate<number>('count', 'KTABLE-AGGREGATE-', materialized, named, Serdes.Long(), (f) =>
      tableAggregateSupplier<K, V, number>(
        f,
        () => 0,
        (_k, _v, agg) => agg + 1,
        (_k, _v, agg) => agg - 1,
      ),
    )
  }

  /** Reduces rows per group (`KTABLE-REDUCE-`): `adder(agg, new)` for rows joining, `subtractor(agg, old)` for rows leaving. */
  reduce(
    adder: (aggregate: V, value: V) => V,
    subtractor: (aggregate: V, value: V) => V,
    materialized?: MaterializedConfig<K, V>,
    named?: NamedConfig,
  ): KTable<K, V> {
    requireFunction(adder, 'adder', 'reduce')
    requireFunction(subtractor, 'subtractor', 'reduce')
    return this.doAggregate<V>('reduce', 'KTABLE-REDUCE-', materialized, named, this.valueSerde, (f) =>
      tableReduceSupplier<K, V>(f, adder, subtractor),
    )
  }

  /**
   * Aggregates rows per group (`KTABLE-AGGREGATE-`): `initializer()` starts a group,
   * `adder(key, value, agg)` adds a row's new value, `subtractor(key, value, agg)` removes its old value.
   */
  aggregate<VAgg>(
    initializer: () => VAgg,
    adder: (key: K, value: V, aggregate: VAgg) => VAgg,
    subtractor: (key: K, value: V, aggregate: VAgg) => VAgg,
    materialized?: MaterializedConfig<K, VAgg>,
    named?: NamedConfig,
  ): KTable<K, VAgg> {
    requireFunction(initializer, 'initializer', 'aggregate')
    requireFunction(adder, 'adder', 'aggregate')
    requireFunction(subtractor, 'subtractor', 'aggregate')
    return this.doAggregate<VAgg>('aggregate', 'KTABLE-AGGREGATE-', materialized, named, undefined, (f) =>
      tableAggregateSupplier<K, V, VAgg>(f, initializer, adder, subtractor),
    )
  }
}
