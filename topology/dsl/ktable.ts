/**
 * `KTable<K, V>`: a changelog stream seen as a table (Kafka Streams: `KTable`, `KTableImpl`).
 *
 * Between table processors records carry `Change<V>` (`{ newValue, oldValue }`); `null` is a
 * tombstone. Old values are only sent where a downstream operation needs them (aggregations,
 * joins): such operations call {@link KTable.enableSendingOldValues}, which may force the source
 * table to be materialized, as in Kafka Streams.
 */
import { TopologyError } from '../errors.js'
import type { Serde } from '../serde.js'
import type { ProcessorSupplier } from '../processor/types.js'
import type { InternalTopologyBuilder } from '../internals/internal-topology-builder.js'
import type { GroupedConfig, MaterializedConfig, NamedConfig } from './options.js'
import { checkOptionalName } from './options.js'
import { givenOrGenerate, nameOrGenerate, requireFunction, requireValue, resolveMaterialized, storeDefFrom } from './materialize.js'
import {
  filterValueGetterSupplier,
  mapValuesValueGetterSupplier,
  storeValueGetterSupplier,
  tableFilterSupplier,
  tableMapValuesSupplier,
  tableRepartitionMapSupplier,
  tableToStreamSupplier,
  type KTableValueGetterSupplier,
  type TableNodeFlags,
} from '../processors/table.js'
import type { KeyValueLike } from '../processors/stateless.js'
import { KStream } from './kstream.js'
import { KGroupedTable } from './kgrouped-table.js'
import { buildSuppress, type Suppressed } from './suppressed.js'
import { buildTableTableJoin, type ValueJoiner } from './joins.js'
import { buildForeignKeyJoin, fkJoinOptions, type TableJoinedConfig } from './foreign-key-join.js'

/**
 * How a table node provides old values and lookups; one per table node.
 */
export interface TableOrigin<K, V> {
  /**
   * Makes the node forward old values. With `forceMaterialization`, an unmaterialized source is
   * materialized; returns whether old values will be sent.
   */
  enableSendingOldValues(forceMaterialization: boolean): boolean
  /** Lookups by key (materializes a source table if needed). */
  valueGetterSupplier(): KTableValueGetterSupplier<K, V>
}

/** Origin of a table whose node owns a (possibly lazily materialized) store: sources, `toTable`. */
export function sourceTableOrigin<K, V>(builder: InternalTopologyBuilder, flags: TableNodeFlags, storeName: string): TableOrigin<K, V> {
  const materialize = (): void => {
    builder.materializeStore(storeName)
    flags.storeName = storeName
  }
  return {
    enableSendingOldValues(force) {
      if (!builder.isMaterialized(storeName)) {
        if (!force) return false
        materialize()
      }
      flags.storeName = storeName
      flags.sendOldValues = true
      return true
    },
    valueGetterSupplier() {
      materialize()
      return storeValueGetterSupplier<K, V>(storeName)
    },
  }
}

/** Origin of a table backed by its own always-present store (aggregations). */
export function storeTableOrigin<K, V>(flags: TableNodeFlags, storeName: string): TableOrigin<K, V> {
  return {
    enableSendingOldValues() {
      flags.sendOldValues = true
      return true
    },
    valueGetterSupplier: () => storeValueGetterSupplier<K, V>(storeName),
  }
}

/** Origin of a table computed from a parent (filter, mapValues): own store if materialized, else derived. */
export function derivedTableOrigin<K, V>(
  flags: TableNodeFlags,
  parent: TableOrigin<any, any>,
  derivedGetter: () => KTableValueGetterSupplier<K, V>,
): TableOrigin<K, V> {
  return {
    enableSendingOldValues(force) {
      if (flags.storeName !== undefined) {
        flags.sendOldValues = true
        return true
      }
      if (parent.enableSendingOldValues(force)) flags.sendOldValues = true
      return flags.sendOldValues
    },
    valueGetterSupplier: () => (flags.storeName !== undefined ? storeValueGetterSupplier<K, V>(flags.storeName) : derivedGetter()),
  }
}

/** Internal state of a KTable handle. */
export interface KTableInit<K, V> {
  readonly builder: InternalTopologyBuilder
  readonly name: string
  readonly keySerde?: Serde<K> | undefined
  readonly valueSerde?: Serde<V> | undefined
  readonly sourceNodes: ReadonlySet<string>
  readonly queryableStoreName?: string | undefined
  readonly flags: TableNodeFlags
  readonly origin: TableOrigin<K, V>
}

/** A table: the latest value per key. Create with `StreamsBuilder.table`, `KStream.toTable` or an aggregation. */
export class KTable<K, V> {
  /** @internal */ readonly builder: InternalTopologyBuilder
  /** Name of the node producing this table's changes. */
  readonly name: string
  /** @internal */ readonly keySerde: Serde<K> | undefined
  /** @internal */ readonly valueSerde: Serde<V> | undefined
  /** @internal source nodes feeding this table (co-partitioning). */
  readonly sourceNodes: ReadonlySet<string>
  /** Name of the queryable store, when the table was materialized under a user-given name. */
  readonly queryableStoreName: string | undefined
  /** @internal build-time flags of this node's processor. */
  readonly flags: TableNodeFlags
  /** @internal */ readonly origin: TableOrigin<K, V>

  /** Made by `StreamsBuilder.table` and the DSL; not for applications. */
  constructor(init: KTableInit<K, V>) {
    this.builder = init.builder
    this.name = init.name
    this.keySerde = init.keySerde
    this.valueSerde = init.valueSerde
    this.sourceNodes = init.sourceNodes
    this.queryableStoreName = init.queryableStoreName
    this.flags = init.flags
    this.origin = init.origin
    Object.freeze(this)
  }

  /**
   * @internal Makes this table forward old values (for aggregations, joins). Returns whether it will.
   */
  enableSendingOldValues(forceMaterialization: boolean): boolean {
    return this.origin.enableSendingOldValues(forceMaterialization)
  }

  /**
   * @internal Lookup by key for joins (Kafka Streams: `valueGetterSupplier`). Connect
   * `storeNames()` to the processor that uses the getter.
   */
  valueGetterSupplier(): KTableValueGetterSupplier<K, V> {
    return this.origin.valueGetterSupplier()
  }

  private derivedTable<VR>(
    method: string,
    prefix: string,
    materialized: MaterializedConfig<K, VR> | undefined,
    named: NamedConfig | undefined,
    supplier: (flags: TableNodeFlags) => ProcessorSupplier<any, any, any, any>,
    getter: () => KTableValueGetterSupplier<K, VR>,
    valueSerde: Serde<VR> | undefined,
  ): KTable<K, VR> {
    // Kafka Streams burns a store-name counter BEFORE the processor name when an unnamed Materialized is given.
    let m: ReturnType<typeof resolveMaterialized<K, VR>> | undefined
    if (materialized !== undefined) m = resolveMaterialized(this.builder, materialized, prefix, method)
    const name = nameOrGenerate(this.builder, named, prefix, method)
    const queryable = m !== undefined && m.queryable
    const keySerde = m?.keySerde ?? this.keySerde
    const vSerde = m?.valueSerde ?? valueSerde
    const flags: TableNodeFlags = { sendOldValues: false, storeName: queryable ? m!.storeName : undefined }
    this.builder.addProcessor(name, supplier(flags), [this.name])
    if (queryable)
      this.builder.addStateStore(storeDefFrom(m!, 'keyValue', { keySerde, valueSerde: vSerde }, {}, { versionedAllowed: true }), {
        processorNames: [name],
      })
    return new KTable<K, VR>({
      builder: this.builder,
      name,
      keySerde,
      valueSerde: vSerde,
      sourceNodes: this.sourceNodes,
      queryableStoreName: queryable ? m!.storeName : undefined,
      flags,
      origin: derivedTableOrigin<K, VR>(flags, this.origin, getter),
    })
  }

  /**
   * Keeps rows matching `predicate` (`KTABLE-FILTER-`); a row that stops matching is deleted
   * downstream (a tombstone is forwarded). Materialized under `materialized.storeName` if given.
   */
  filter(predicate: (key: K, value: V) => boolean, materialized?: MaterializedConfig<K, V>, named?: NamedConfig): KTable<K, V> {
    requireFunction(predicate, 'predicate', 'filter')
    return this.derivedTable<V>(
      'filter',
      'KTABLE-FILTER-',
      materialized,
      named,
      (f) => tableFilterSupplier(f, predicate, false),
      () => filterValueGetterSupplier(this.origin.valueGetterSupplier(), predicate, false),
      this.valueSerde,
    )
  }

  /** Drops rows matching `predicate` (`KTABLE-FILTER-`), forwarding tombstones for them. */
  filterNot(predicate: (key: K, value: V) => boolean, materialized?: MaterializedConfig<K, V>, named?: NamedConfig): KTable<K, V> {
    requireFunction(predicate, 'predicate', 'filterNot')
    return this.derivedTable<V>(
      'filterNot',
      'KTABLE-FILTER-',
      materialized,
      named,
      (f) => tableFilterSupplier(f, predicate, true),
      () => filterValueGetterSupplier(this.origin.valueGetterSupplier(), predicate, true),
      this.valueSerde,
    )
  }

  /** Maps each value (`KTABLE-MAPVALUES-`); the mapper gets `(value, key)`; tombstones stay tombstones. */
  mapValues<VR>(mapper: (value: V, key: K) => VR, materialized?: MaterializedConfig<K, VR>, named?: NamedConfig): KTable<K, VR> {
    requireFunction(mapper, 'mapper', 'mapValues')
    return this.derivedTable<VR>(
      'mapValues',
      'KTABLE-MAPVALUES-',
      materialized,
      named,
      (f) => tableMapValuesSupplier(f, mapper),
      () => mapValuesValueGetterSupplier(this.origin.valueGetterSupplier(), mapper),
      undefined,
    )
  }

  /** The table's changes as a stream (`KTABLE-TOSTREAM-`); deletes appear as `null` values. */
  toStream(named?: NamedConfig): KStream<K, V | null> {
    const name = nameOrGenerate(this.builder, named, 'KTABLE-TOSTREAM-', 'toStream')
    this.builder.addProcessor(name, tableToStreamSupplier<K, V>(), [this.name])
    return new KStream<K, V | null>({
      builder: this.builder,
      name,
      keySerde: this.keySerde,
      valueSerde: this.valueSerde as Serde<V | null> | undefined,
      sourceNodes: this.sourceNodes,
      repartitionRequired: false,
    })
  }

  /**
   * Re-groups the table by a new key (`KTABLE-SELECT-`): the following aggregation receives the
   * old value (for the subtractor) and the new value (for the adder). Pass the new key serde in
   * `grouped` (the old one is dropped) or the default key serde is used.
   */
  groupBy<KR, VR>(selector: (key: K, value: V) => KeyValueLike<KR, VR>, grouped: GroupedConfig<KR, VR> = {}): KGroupedTable<KR, VR> {
    requireFunction(selector, 'selector', 'groupBy')
    requireValue(grouped, 'grouped', 'groupBy')
    const groupedName = checkOptionalName('groupBy', grouped.name)
    const name = givenOrGenerate(this.builder, groupedName, 'KTABLE-SELECT-')
    this.enableSendingOldValues(true)
    this.builder.addProcessor(name, tableRepartitionMapSupplier(selector), [this.name])
    return new KGroupedTable<KR, VR>({
      builder: this.builder,
      name,
      keySerde: grouped.keySerde,
      valueSerde: grouped.valueSerde,
      sourceNodes: this.sourceNodes,
      groupedName,
    })
  }

  /**
   * Inner join with another table (Kafka Streams: `KTable#join(KTable, ValueJoiner)`): the result
   * table has a row for every key present in both; updates on either side recompute it, and a
   * delete on either side deletes it. Both tables must be co-partitioned.
   */
  join<VO, VR>(
    other: KTable<K, VO>,
    joiner: ValueJoiner<V, VO, VR>,
    materialized?: MaterializedConfig<K, VR>,
    named?: NamedConfig,
  ): KTable<K, VR>
  /**
   * Foreign-key inner join (Kafka Streams KIP-213: `KTable#join(KTable, Function, ValueJoiner)`):
   * each row of this table joins the row of `other` whose key is `foreignKeyExtractor(value, key)`; the
   * result has this table's key. Rows whose foreign key is null or absent in `other` have no result;
   * a change of either row, a foreign key change or a delete on either side updates or deletes the
   * result. Goes through two internal topics (`...-subscription-registration-topic`,
   * `...-subscription-response-topic`) and a subscription store, so the tables need not be
   * co-partitioned; results computed for a left value that has changed meanwhile are dropped
   * (murmur3-128 hash of the serialized left value). See {@link TableJoined} for partitioners and names.
   */
  join<KO, VO, VR>(
    other: KTable<KO, VO>,
    foreignKeyExtractor: (value: V, key: K) => KO | null | undefined,
    joiner: ValueJoiner<V, VO, VR>,
    tableJoined?: TableJoinedConfig<K, KO>,
    materialized?: MaterializedConfig<K, VR>,
  ): KTable<K, VR>
  /** Foreign-key inner join with a `Materialized` and no `TableJoined` (Kafka Streams' overload). */
  join<KO, VO, VR>(
    other: KTable<KO, VO>,
    foreignKeyExtractor: (value: V, key: K) => KO | null | undefined,
    joiner: ValueJoiner<V, VO, VR>,
    materialized: MaterializedConfig<K, VR>,
  ): KTable<K, VR>
  join(other: KTable<any, any>, a: (...args: any[]) => any, b?: unknown, c?: unknown, d?: unknown): KTable<K, any> {
    if (typeof b === 'function') {
      const [tableJoined, materialized] = fkJoinOptions<K>(c, d)
      return buildForeignKeyJoin(false, this, other, a, b as (l: V, r: unknown) => unknown, tableJoined, materialized, 'join')
    }
    return buildTableTableJoin<K, V, unknown, unknown>(
      'inner',
      this,
      other,
      a,
      b as MaterializedConfig<K, unknown>,
      c as NamedConfig,
      'join',
    )
  }

  /** Left join with another table: every row of this table, joined with the other's value or `null`. */
  leftJoin<VO, VR>(
    other: KTable<K, VO>,
    joiner: ValueJoiner<V, VO | null, VR>,
    materialized?: MaterializedConfig<K, VR>,
    named?: NamedConfig,
  ): KTable<K, VR>
  /**
   * Foreign-key left join (Kafka Streams KIP-213): like the foreign-key {@link KTable.join}, but
   * every row of this table has a result, joined with `null` when its foreign key is null or absent
   * in `other`.
   */
  leftJoin<KO, VO, VR>(
    other: KTable<KO, VO>,
    foreignKeyExtractor: (value: V, key: K) => KO | null | undefined,
    joiner: ValueJoiner<V, VO | null, VR>,
    tableJoined?: TableJoinedConfig<K, KO>,
    materialized?: MaterializedConfig<K, VR>,
  ): KTable<K, VR>
  /** Foreign-key left join with a `Materialized` and no `TableJoined` (Kafka Streams' overload). */
  leftJoin<KO, VO, VR>(
    other: KTable<KO, VO>,
    foreignKeyExtractor: (value: V, key: K) => KO | null | undefined,
    joiner: ValueJoiner<V, VO | null, VR>,
    materialized: MaterializedConfig<K, VR>,
  ): KTable<K, VR>
  leftJoin(other: KTable<any, any>, a: (...args: any[]) => any, b?: unknown, c?: unknown, d?: unknown): KTable<K, any> {
    if (typeof b === 'function') {
      const [tableJoined, materialized] = fkJoinOptions<K>(c, d)
      return buildForeignKeyJoin(true, this, other, a, b as (l: V, r: unknown) => unknown, tableJoined, materialized, 'leftJoin')
    }
    return buildTableTableJoin<K, V, unknown, unknown>(
      'left',
      this,
      other,
      a,
      b as MaterializedConfig<K, unknown>,
      c as NamedConfig,
      'leftJoin',
    )
  }

  /** Outer join with another table: every key of either table, `null` for the missing side. */
  outerJoin<VO, VR>(
    other: KTable<K, VO>,
    joiner: ValueJoiner<V | null, VO | null, VR>,
    materialized?: MaterializedConfig<K, VR>,
    named?: NamedConfig,
  ): KTable<K, VR> {
    return buildTableTableJoin<K, V, VO, VR>('outer', this, other, joiner, materialized, named, 'outerJoin')
  }

  /**
   * Holds back updates (Kafka Streams: `suppress`, KIP-328): `Suppressed.untilWindowCloses(...)`
   * forwards one final result per window once stream-time passes window end + grace (windowed
   * tables only); `Suppressed.untilTimeLimit(ms, ...)` forwards at most one update per key per
   * `ms` of stream-time. Never emits on wall-clock time. Processor `KTABLE-SUPPRESS-<n>` (or the
   * Suppressed's name), buffer store `KTABLE-SUPPRESS-STATE-STORE-<n>` (or `<name>-store`).
   * @throws TopologyError for untilWindowCloses on a table not produced by a windowed aggregation
   */
  suppress(suppressed: Suppressed<K>): KTable<K, V> {
    return buildSuppress<K, V>(this, suppressed)
  }

  /** @internal guards against tables from another builder. */
  checkSameBuilder(other: { builder: InternalTopologyBuilder }, parameter: string, method: string): void {
    if (other.builder !== this.builder) throw new TopologyError(`${method}: parameter '${parameter}' comes from a different StreamsBuilder`)
  }
}
