/**
 * `KStream<K, V>`: an unbounded stream of records (Kafka Streams: `KStream`, `KStreamImpl`).
 *
 * Every method checks its arguments (`TopologyError` naming the parameter), adds a node to the
 * builder's graph named `KSTREAM-<OP>-<counter>` (or the user's `Named`), and returns a NEW
 * handle; nothing mutates `this`. Operations that may change the key (`map`, `flatMap`,
 * `selectKey`, `process`) drop the key serde on purpose and mark the stream as needing a
 * repartition before the next grouping or join.
 */
import { TopologyError } from '../errors.js'
import type { Serde } from '../serde.js'
import type { FixedKeyProcessorSupplier, ProcessorSupplier, TopicNameExtractor } from '../processor/types.js'
import type { InternalTopologyBuilder } from '../internals/internal-topology-builder.js'
import type {
  ConsumedConfig,
  GroupedConfig,
  MaterializedConfig,
  NamedConfig,
  PrintedConfig,
  ProducedConfig,
  RepartitionedConfig,
} from './options.js'
import { checkOptionalName } from './options.js'
import { givenOrGenerate, nameOrGenerate, requireFunction, requireValue, resolveMaterialized, storeDefFrom } from './materialize.js'
import {
  filterSupplier,
  flatMapSupplier,
  flatMapValuesSupplier,
  mapSupplier,
  mapValuesSupplier,
  passThroughSupplier,
  peekSupplier,
  printSupplier,
  selectKeySupplier,
  type KeyValueLike,
} from '../processors/stateless.js'
import { tableSourceSupplier, type TableNodeFlags } from '../processors/table.js'
import { BranchedKStream } from './branched.js'
import { KGroupedStream } from './kgrouped-stream.js'
import { KTable, sourceTableOrigin } from './ktable.js'
import { GlobalKTable } from './global-ktable.js'
import { fixedKeyProcessorSupplier } from '../processors/fixed-key.js'
import type { JoinWindows } from './windows.js'
import {
  buildStreamGlobalTableJoin,
  buildStreamStreamJoin,
  buildStreamTableJoin,
  toJoinerWithKey,
  type AnyValueJoiner,
  type ValueJoiner,
  type ValueJoinerWithKey,
  type JoinedConfig,
  type KeyValueMapper,
  type StreamJoinedConfig,
  type RetractingStreamJoinedConfig,
} from './joins.js'

/** Internal state of a KStream handle. */
export interface KStreamInit<K, V> {
  readonly builder: InternalTopologyBuilder
  readonly name: string
  readonly keySerde?: Serde<K> | undefined
  readonly valueSerde?: Serde<V> | undefined
  readonly sourceNodes: ReadonlySet<string>
  readonly repartitionRequired: boolean
}

/** Options of {@link KStream.process} / {@link KStream.processValues}. */
export interface ProcessOptions extends NamedConfig {
  /** Stores (added with `addStateStore`) the processor may use. */
  readonly stores?: ReadonlyArray<string>
}

/** A stream of key-value records. Create with `StreamsBuilder.stream`. */
export class KStream<K, V> {
  /** @internal */ readonly builder: InternalTopologyBuilder
  /** Name of the node producing this stream. */
  readonly name: string
  /** @internal key serde known for this stream (undefined after a key change). */
  readonly keySerde: Serde<K> | undefined
  /** @internal value serde known for this stream. */
  readonly valueSerde: Serde<V> | undefined
  /** @internal source nodes feeding this stream (co-partitioning). */
  readonly sourceNodes: ReadonlySet<string>
  /** @internal the key may have changed since the last (re)partitioning. */
  readonly repartitionRequired: boolean

  /** Made by `StreamsBuilder.stream` and the DSL; not for applications. */
  constructor(init: KStreamInit<K, V>) {
    this.builder = init.builder
    this.name = init.name
    this.keySerde = init.keySerde
    this.valueSerde = init.valueSerde
    this.sourceNodes = init.sourceNodes
    this.repartitionRequired = init.repartitionRequired
    Object.freeze(this)
  }

  /** @internal a handle on `name` with these properties (others inherited). */
  derive<K2 = K, V2 = V>(name: string, changes: Partial<Omit<KStreamInit<K2, V2>, 'builder' | 'name'>> = {}): KStream<K2, V2> {
    return new KStream<K2, V2>({
      builder: this.builder,
      name,
      keySerde: ('keySerde' in changes ? changes.keySerde : this.keySerde) as Serde<K2> | undefined,
      valueSerde: ('valueSerde' in changes ? changes.valueSerde : this.valueSerde) as Serde<V2> | undefined,
      sourceNodes: changes.sourceNodes ?? this.sourceNodes,
      repartitionRequired: changes.repartitionRequired ?? this.repartitionRequired,
    })
  }

  private addStateless<K2, V2>(
    method: string,
    fn: unknown,
    parameter: string,
    prefix: string,
    named: NamedConfig | undefined,
    supplier: () => ProcessorSupplier<any, any, any, any>,
    changes: Partial<Omit<KStreamInit<K2, V2>, 'builder' | 'name'>>,
  ): KStream<K2, V2> {
    requireFunction(fn, parameter, method)
    const name = nameOrGenerate(this.builder, named, prefix, method)
    this.builder.addProcessor(name, supplier(), [this.name])
    return this.derive<K2, V2>(name, changes)
  }

  /** Keeps records for which `predicate(key, value)` is true (`KSTREAM-FILTER-`). */
  filter(predicate: (key: K, value: V) => boolean, named?: NamedConfig): KStream<K, V> {
    return this.addStateless('filter', predicate, 'predicate', 'KSTREAM-FILTER-', named, () => filterSupplier(predicate, false), {})
  }

  /** Drops records for which `predicate(key, value)` is true (`KSTREAM-FILTER-`). */
  filterNot(predicate: (key: K, value: V) => boolean, named?: NamedConfig): KStream<K, V> {
    return this.addStateless('filterNot', predicate, 'predicate', 'KSTREAM-FILTER-', named, () => filterSupplier(predicate, true), {})
  }

  /**
   * Maps each record to a new key and value (`KSTREAM-MAP-`): return `{ key, value }` or `[key, value]`.
   * The key serde is dropped and a repartition is required before grouping/joining.
   */
  map<KR, VR>(mapper: (key: K, value: V) => KeyValueLike<KR, VR>, named?: NamedConfig): KStream<KR, VR> {
    return this.addStateless<KR, VR>('map', mapper, 'mapper', 'KSTREAM-MAP-', named, () => mapSupplier(mapper), {
      keySerde: undefined,
      valueSerde: undefined,
      repartitionRequired: true,
    })
  }

  /**
   * Maps each value (`KSTREAM-MAPVALUES-`); the mapper gets `(value, key)` and must not change the key.
   * The value serde is dropped.
   */
  mapValues<VR>(mapper: (value: V, key: K) => VR, named?: NamedConfig): KStream<K, VR> {
    return this.addStateless<K, VR>('mapValues', mapper, 'mapper', 'KSTREAM-MAPVALUES-', named, () => mapValuesSupplier(mapper), {
      valueSerde: undefined,
    })
  }

  /** Maps each record to zero or more records (`KSTREAM-FLATMAP-`). Drops both serdes; requires a repartition. */
  flatMap<KR, VR>(mapper: (key: K, value: V) => Iterable<KeyValueLike<KR, VR>>, named?: NamedConfig): KStream<KR, VR> {
    return this.addStateless<KR, VR>('flatMap', mapper, 'mapper', 'KSTREAM-FLATMAP-', named, () => flatMapSupplier(mapper), {
      keySerde: undefined,
      valueSerde: undefined,
      repartitionRequired: true,
    })
  }

  /** Maps each value to zero or more values with the same key (`KSTREAM-FLATMAPVALUES-`); mapper gets `(value, key)`. */
  flatMapValues<VR>(mapper: (value: V, key: K) => Iterable<VR>, named?: NamedConfig): KStream<K, VR> {
    return this.addStateless<K, VR>(
      'flatMapValues',
      mapper,
      'mapper',
      'KSTREAM-FLATMAPVALUES-',
      named,
      () => flatMapValuesSupplier(mapper),
      { valueSerde: undefined },
    )
  }

  /** Sets a new key (`KSTREAM-KEY-SELECT-`). Drops the key serde; requires a repartition. */
  selectKey<KR>(mapper: (key: K, value: V) => KR, named?: NamedConfig): KStream<KR, V> {
    return this.addStateless<KR, V>('selectKey', mapper, 'mapper', 'KSTREAM-KEY-SELECT-', named, () => selectKeySupplier(mapper), {
      keySerde: undefined,
      repartitionRequired: true,
    })
  }

  /** Calls `action` for each record and passes it on unchanged (`KSTREAM-PEEK-`). */
  peek(action: (key: K, value: V) => void, named?: NamedConfig): KStream<K, V> {
    return this.addStateless('peek', action, 'action', 'KSTREAM-PEEK-', named, () => peekSupplier(action, true), {})
  }

  /** Calls `action` for each record; terminal (`KSTREAM-FOREACH-`). */
  foreach(action: (key: K, value: V) => void, named?: NamedConfig): void {
    this.addStateless('foreach', action, 'action', 'KSTREAM-FOREACH-', named, () => peekSupplier(action, false), {})
  }

  /** Prints each record (`KSTREAM-PRINTER-`), for debugging. */
  print(printed: PrintedConfig<K, V> = {}): void {
    requireValue(printed, 'printed', 'print')
    const name = nameOrGenerate(this.builder, printed, 'KSTREAM-PRINTER-', 'print')
    const writer = printed.writer ?? ((line: string) => console.log(line))
    const mapper = printed.mapper ?? ((k: K, v: V) => `${String(k)}, ${String(v)}`)
    this.builder.addProcessor(name, printSupplier(printed.label ?? name, writer, mapper), [this.name])
  }

  /**
   * Splits the stream into branches (Kafka Streams KIP-418 `split()`): each record goes to the
   * first branch whose predicate matches.
   *
   * @example
   * ```ts
   * const branches = stream.split(Named.as('split-'))
   *   .branch((k, v) => v > 0, Branched.as('positive'))
   *   .defaultBranch(Branched.as('other'))
   * branches.get('split-positive')!.to('positives')
   * ```
   */
  split(named?: NamedConfig): BranchedKStream<K, V> {
    const splitterName = nameOrGenerate(this.builder, named, 'KSTREAM-BRANCH-', 'split')
    return BranchedKStream.create(this, splitterName)
  }

  /** Merges `other` into this stream (`KSTREAM-MERGE-`); serdes are dropped. */
  merge(other: KStream<K, V>, named?: NamedConfig): KStream<K, V> {
    if (!(other instanceof KStream)) throw new TopologyError(`merge: parameter 'stream' must be a KStream`)
    if (other.builder !== this.builder) throw new TopologyError(`merge: parameter 'stream' comes from a different StreamsBuilder`)
    const name = nameOrGenerate(this.builder, named, 'KSTREAM-MERGE-', 'merge')
    this.builder.addProcessor(name, passThroughSupplier(), [this.name, other.name])
    return this.derive<K, V>(name, {
      keySerde: undefined,
      valueSerde: undefined,
      sourceNodes: new Set([...this.sourceNodes, ...other.sourceNodes]),
      repartitionRequired: this.repartitionRequired || other.repartitionRequired,
    })
  }

  /**
   * Writes the stream to `topic`, or to the topic `extractor(key, value, context)` returns
   * (`KSTREAM-SINK-`). Serdes default to `produced`, then this stream's, then the app defaults.
   */
  to(topic: string | TopicNameExtractor<K, V>, produced: ProducedConfig<K, V> = {}): void {
    if (typeof topic === 'string') {
      if (topic.length === 0) throw new TopologyError(`to: parameter 'topic' must be a non-empty string or a TopicNameExtractor`)
    } else if (typeof topic !== 'function') {
      throw new TopologyError(`to: parameter 'topic' must be a non-empty string or a TopicNameExtractor`)
    }
    requireValue(produced, 'produced', 'to')
    const name = nameOrGenerate(this.builder, produced, 'KSTREAM-SINK-', 'to')
    const keySerde = produced.keySerde ?? this.keySerde
    const valueSerde = produced.valueSerde ?? this.valueSerde
    this.builder.addSink({
      name,
      topic,
      parents: [this.name],
      ...(keySerde !== undefined ? { keySerde } : {}),
      ...(valueSerde !== undefined ? { valueSerde } : {}),
      ...(produced.partitioner !== undefined ? { partitioner: produced.partitioner } : {}),
    })
  }

  /**
   * Repartitions through an internal topic `<applicationId>-<name>-repartition` (KIP-221), by
   * default named `KSTREAM-REPARTITION-<n>-repartition`.
   */
  repartition(repartitioned: RepartitionedConfig<K, V> = {}): KStream<K, V> {
    requireValue(repartitioned, 'repartitioned', 'repartition')
    const n = repartitioned.numberOfPartitions
    if (n !== undefined && (!Number.isInteger(n) || n < 1))
      throw new TopologyError(`repartition: parameter 'repartitioned.numberOfPartitions' must be a positive integer, got ${String(n)}`)
    const name = checkOptionalName('repartition', repartitioned.name) ?? this.builder.newProcessorName('KSTREAM-REPARTITION-')
    const keySerde = repartitioned.keySerde ?? this.keySerde
    const valueSerde = repartitioned.valueSerde ?? this.valueSerde
    const nodes = this.builder.addRepartition({
      parent: this.name,
      topicPrefix: name,
      ...(keySerde !== undefined ? { keySerde } : {}),
      ...(valueSerde !== undefined ? { valueSerde } : {}),
      ...(repartitioned.partitioner !== undefined ? { partitioner: repartitioned.partitioner } : {}),
      ...(repartitioned.numberOfPartitions !== undefined ? { numPartitions: repartitioned.numberOfPartitions } : {}),
    })
    return this.derive<K, V>(nodes.sourceName, {
      keySerde,
      valueSerde,
      sourceNodes: new Set([nodes.sourceName]),
      repartitionRequired: false,
    })
  }

  /**
   * @internal Repartitions through `<prefix>-repartition` if the key changed upstream (joins,
   * grouping); returns this stream otherwise.
   */
  repartitionIfRequired(prefix: string, keySerde?: Serde<K>, valueSerde?: Serde<V>): KStream<K, V> {
    if (!this.repartitionRequired) return this
    const k = keySerde ?? this.keySerde
    const v = valueSerde ?? this.valueSerde
    const nodes = this.builder.addRepartition({
      parent: this.name,
      topicPrefix: prefix,
      ...(k !== undefined ? { keySerde: k } : {}),
      ...(v !== undefined ? { valueSerde: v } : {}),
    })
    return this.derive<K, V>(nodes.sourceName, {
      keySerde: k,
      valueSerde: v,
      sourceNodes: new Set([nodes.sourceName]),
      repartitionRequired: false,
    })
  }

  /**
   * Turns the stream into a table (`KSTREAM-TOTABLE-`): each record upserts its key; `null`
   * values delete. Repartitions first when the key changed upstream.
   */
  toTable(materialized?: MaterializedConfig<K, V>, named?: NamedConfig): KTable<K, V> {
    const name = nameOrGenerate(this.builder, named, 'KSTREAM-TOTABLE-', 'toTable')
    const m = resolveMaterialized(this.builder, materialized, 'KSTREAM-TOTABLE-', 'toTable')
    const keySerde = m.keySerde ?? this.keySerde
    const valueSerde = m.valueSerde ?? this.valueSerde
    let parent = this.name
    let sourceNodes = this.sourceNodes
    if (this.repartitionRequired) {
      const nodes = this.builder.addRepartition({
        parent: this.name,
        topicPrefix: name,
        ...(keySerde !== undefined ? { keySerde } : {}),
        ...(valueSerde !== undefined ? { valueSerde } : {}),
      })
      parent = nodes.sourceName
      sourceNodes = new Set([nodes.sourceName])
    }
    const flags: TableNodeFlags = { sendOldValues: false, storeName: m.queryable ? m.storeName : undefined }
    this.builder.addProcessor(name, tableSourceSupplier<K, V>(flags), [parent])
    this.builder.addStateStore(storeDefFrom(m, 'keyValue', { keySerde, valueSerde }, {}, { versionedAllowed: true }), {
      lazy: !m.queryable,
      processorNames: [name],
    })
    return new KTable<K, V>({
      builder: this.builder,
      name,
      keySerde,
      valueSerde,
      sourceNodes,
      queryableStoreName: m.queryable ? m.storeName : undefined,
      flags,
      origin: sourceTableOrigin(this.builder, flags, m.storeName),
    })
  }

  /**
   * Runs a Processor API processor on each record (`KSTREAM-PROCESSOR-`). `options.stores` (or
   * trailing store names) connects stores added with `addStateStore`. The output key may differ,
   * so serdes are dropped and a repartition is required before grouping/joining.
   */
  process<KOut, VOut>(
    supplier: ProcessorSupplier<K, V, KOut, VOut>,
    options?: ProcessOptions | string,
    ...stateStoreNames: string[]
  ): KStream<KOut, VOut> {
    return this.doProcess<KOut, VOut>('process', 'KSTREAM-PROCESSOR-', supplier, options, stateStoreNames, {
      keySerde: undefined,
      valueSerde: undefined,
      repartitionRequired: true,
    })
  }

  /**
   * Runs a processor that may change values but not keys (`KSTREAM-PROCESSVALUES-`; Kafka Streams:
   * `FixedKeyProcessor`, KIP-820); keeps the key serde and needs no repartition. Forwarding a
   * record with another key than the input record's fails with `IllegalStateError`.
   */
  processValues<VOut>(
    supplier: FixedKeyProcessorSupplier<K, V, VOut>,
    options?: ProcessOptions | string,
    ...stateStoreNames: string[]
  ): KStream<K, VOut> {
    return this.doProcess<K, VOut>(
      'processValues',
      'KSTREAM-PROCESSVALUES-',
      supplier,
      options,
      stateStoreNames,
      { valueSerde: undefined },
      (s, name) => fixedKeyProcessorSupplier(s as FixedKeyProcessorSupplier<K, V, VOut>, name),
    )
  }

  private doProcess<K2, V2>(
    method: string,
    prefix: string,
    supplier: unknown,
    options: ProcessOptions | string | undefined,
    more: string[],
    changes: Partial<Omit<KStreamInit<K2, V2>, 'builder' | 'name'>>,
    wrap: (supplier: unknown, name: string) => unknown = (s) => s,
  ): KStream<K2, V2> {
    requireFunction(supplier, 'supplier', method)
    const opts: ProcessOptions = typeof options === 'string' ? { stores: [options] } : (options ?? {})
    const stores = [...(opts.stores ?? []), ...more]
    for (const s of stores) {
      if (typeof s !== 'string' || s.length === 0)
        throw new TopologyError(`${method}: parameter 'stateStoreNames' must contain non-empty store names`)
      if (this.builder.storeDef(s) === undefined)
        throw new TopologyError(`${method}: state store '${s}' is not added yet; add it with StreamsBuilder.addStateStore first`)
    }
    const name = nameOrGenerate(this.builder, opts, prefix, method)
    this.builder.addProcessor(
      name,
      wrap(supplier, name) as ProcessorSupplier<any, any, any, any>,
      [this.name],
      stores.filter((s) => !this.builder.isGlobalStore(s)),
    )
    return this.derive<K2, V2>(name, changes)
  }

  /**
   * Windowed inner join with another stream (Kafka Streams: `KStream#join(KStream, ValueJoiner, JoinWindows, StreamJoined)`):
   * records match when their keys are equal and `other.timestamp` is within
   * `[this.timestamp - before, this.timestamp + after]`; the result carries the later timestamp.
   * Both streams are repartitioned if their keys changed upstream and must be co-partitioned.
   * @throws TopologyError naming the parameter (e.g. a missing `windows`)
   */
  join<VO, VR>(
    other: KStream<K, VO>,
    joiner: ValueJoiner<V, VO, VR>,
    windows: JoinWindows,
    streamJoined?: StreamJoinedConfig<K, V, VO>,
  ): KStream<K, VR>
  join<VO, VR>(
    other: KStream<K, VO>,
    joiner: ValueJoinerWithKey<K, V, VO, VR>,
    windows: JoinWindows,
    streamJoined?: StreamJoinedConfig<K, V, VO>,
  ): KStream<K, VR>
  /**
   * Inner join with a table (Kafka Streams: `KStream#join(KTable, ValueJoiner, Joined)`): each
   * stream record is joined with the table's current value for its key; no match = no output.
   */
  join<VT, VR>(table: KTable<K, VT>, joiner: ValueJoiner<V, VT, VR>, joined?: JoinedConfig<K, V, VT>): KStream<K, VR>
  join<VT, VR>(table: KTable<K, VT>, joiner: ValueJoinerWithKey<K, V, VT, VR>, joined?: JoinedConfig<K, V, VT>): KStream<K, VR>
  /**
   * Inner join with a global table (Kafka Streams: `KStream#join(GlobalKTable, KeyValueMapper, ValueJoiner)`):
   * `keySelector(key, value)` picks the table key to look up; no co-partitioning needed.
   */
  join<GK, GV, VR>(
    globalTable: GlobalKTable<GK, GV>,
    keySelector: KeyValueMapper<K, V, GK | null | undefined>,
    joiner: ValueJoiner<V, GV, VR>,
    named?: NamedConfig,
  ): KStream<K, VR>
  join<GK, GV, VR>(
    globalTable: GlobalKTable<GK, GV>,
    keySelector: KeyValueMapper<K, V, GK | null | undefined>,
    joiner: ValueJoinerWithKey<K, V, GV, VR>,
    named?: NamedConfig,
  ): KStream<K, VR>
  join(other: unknown, a: unknown, b?: unknown, c?: unknown): KStream<K, unknown> {
    return this.dispatchJoin('inner', 'join', other, a, b, c)
  }

  /**
   * Windowed left join with another stream: like {@link KStream.join}, and a record of this
   * stream that found no match is emitted once with `null` after its window (plus grace) closed
   * (the default `StreamJoined.withEmitUnmatched('onWindowClose')`; `'eager'` emits it at once).
   * With `'eagerWithRetraction'` the result has retractions (`null` values): see `EmitUnmatched`.
   */
  leftJoin<VO, VR>(
    other: KStream<K, VO>,
    joiner: ValueJoiner<V, VO | null, VR>,
    windows: JoinWindows,
    streamJoined: RetractingStreamJoinedConfig<K, V, VO>,
  ): KStream<K, VR | null>
  leftJoin<VO, VR>(
    other: KStream<K, VO>,
    joiner: ValueJoinerWithKey<K, V, VO | null, VR>,
    windows: JoinWindows,
    streamJoined: RetractingStreamJoinedConfig<K, V, VO>,
  ): KStream<K, VR | null>
  leftJoin<VO, VR>(
    other: KStream<K, VO>,
    joiner: ValueJoiner<V, VO | null, VR>,
    windows: JoinWindows,
    streamJoined?: StreamJoinedConfig<K, V, VO>,
  ): KStream<K, VR>
  leftJoin<VO, VR>(
    other: KStream<K, VO>,
    joiner: ValueJoinerWithKey<K, V, VO | null, VR>,
    windows: JoinWindows,
    streamJoined?: StreamJoinedConfig<K, V, VO>,
  ): KStream<K, VR>
  /** Left join with a table: a stream record without a table value is joined with `null`. */
  leftJoin<VT, VR>(table: KTable<K, VT>, joiner: ValueJoiner<V, VT | null, VR>, joined?: JoinedConfig<K, V, VT>): KStream<K, VR>
  leftJoin<VT, VR>(table: KTable<K, VT>, joiner: ValueJoinerWithKey<K, V, VT | null, VR>, joined?: JoinedConfig<K, V, VT>): KStream<K, VR>
  /** Left join with a global table: no table value (or a null lookup key) joins with `null`. */
  leftJoin<GK, GV, VR>(
    globalTable: GlobalKTable<GK, GV>,
    keySelector: KeyValueMapper<K, V, GK | null | undefined>,
    joiner: ValueJoiner<V, GV | null, VR>,
    named?: NamedConfig,
  ): KStream<K, VR>
  leftJoin<GK, GV, VR>(
    globalTable: GlobalKTable<GK, GV>,
    keySelector: KeyValueMapper<K, V, GK | null | undefined>,
    joiner: ValueJoinerWithKey<K, V, GV | null, VR>,
    named?: NamedConfig,
  ): KStream<K, VR>
  leftJoin(other: unknown, a: unknown, b?: unknown, c?: unknown): KStream<K, unknown> {
    return this.dispatchJoin('left', 'leftJoin', other, a, b, c)
  }

  /**
   * Windowed outer join with another stream: unmatched records of either side are emitted once,
   * with `null` for the missing side, after their window (plus grace) closed (the default
   * `StreamJoined.withEmitUnmatched('onWindowClose')`; `'eager'` emits them at once). With
   * `'eagerWithRetraction'` the result has retractions (`null` values): see `EmitUnmatched`.
   */
  outerJoin<VO, VR>(
    other: KStream<K, VO>,
    joiner: ValueJoiner<V | null, VO | null, VR>,
    windows: JoinWindows,
    streamJoined: RetractingStreamJoinedConfig<K, V, VO>,
  ): KStream<K, VR | null>
  outerJoin<VO, VR>(
    other: KStream<K, VO>,
    joiner: ValueJoinerWithKey<K, V | null, VO | null, VR>,
    windows: JoinWindows,
    streamJoined: RetractingStreamJoinedConfig<K, V, VO>,
  ): KStream<K, VR | null>
  outerJoin<VO, VR>(
    other: KStream<K, VO>,
    joiner: ValueJoiner<V | null, VO | null, VR>,
    windows: JoinWindows,
    streamJoined?: StreamJoinedConfig<K, V, VO>,
  ): KStream<K, VR>
  outerJoin<VO, VR>(
    other: KStream<K, VO>,
    joiner: ValueJoinerWithKey<K, V | null, VO | null, VR>,
    windows: JoinWindows,
    streamJoined?: StreamJoinedConfig<K, V, VO>,
  ): KStream<K, VR>
  outerJoin<VO, VR>(
    other: KStream<K, VO>,
    joiner: AnyValueJoiner<K, V | null, VO | null, VR>,
    windows: JoinWindows,
    streamJoined?: StreamJoinedConfig<K, V, VO>,
  ): KStream<K, VR> {
    if (!(other instanceof KStream))
      throw new TopologyError(`outerJoin: parameter 'otherStream' must be a KStream (outer joins of a stream with a table do not exist)`)
    return buildStreamStreamJoin<K, V, VO, VR>(
      'outer',
      this,
      other,
      toJoinerWithKey(joiner as AnyValueJoiner<K, V | null, VO | null, VR>) as (k: K, l: V | null, r: VO | null) => VR,
      windows,
      streamJoined,
      'outerJoin',
    )
  }

  private dispatchJoin(kind: 'inner' | 'left', method: string, other: unknown, a: unknown, b: unknown, c: unknown): KStream<K, unknown> {
    if (other instanceof KStream) {
      return buildStreamStreamJoin<K, V, unknown, unknown>(
        kind,
        this,
        other as KStream<K, unknown>,
        toJoinerWithKey(a as AnyValueJoiner<K, any, any, unknown>) as (k: K, l: V | null, r: unknown) => unknown,
        b as JoinWindows,
        c as StreamJoinedConfig<K, V, unknown> | undefined,
        method,
      )
    }
    if (other instanceof KTable) {
      return buildStreamTableJoin<K, V, unknown, unknown>(
        kind === 'left',
        this,
        other as KTable<K, unknown>,
        toJoinerWithKey(a as AnyValueJoiner<K, any, any, unknown>) as (k: K, v: V, t: unknown) => unknown,
        b as JoinedConfig<K, V, unknown> | undefined,
        method,
      )
    }
    if (other instanceof GlobalKTable) {
      return buildStreamGlobalTableJoin<K, V, unknown, unknown, unknown>(
        kind === 'left',
        this,
        other as GlobalKTable<unknown, unknown>,
        a as KeyValueMapper<K, V, unknown>,
        toJoinerWithKey(b as AnyValueJoiner<K, any, any, unknown>, 'joiner') as (k: K, v: V, g: unknown) => unknown,
        c as NamedConfig | undefined,
        method,
      )
    }
    throw new TopologyError(`${method}: parameter 'other' must be a KStream, a KTable or a GlobalKTable`)
  }

  /** Groups by the current key (no repartition unless the key changed upstream). */
  groupByKey(grouped: GroupedConfig<K, V> = {}): KGroupedStream<K, V> {
    requireValue(grouped, 'grouped', 'groupByKey')
    return new KGroupedStream<K, V>({
      builder: this.builder,
      name: this.name,
      keySerde: grouped.keySerde ?? this.keySerde,
      valueSerde: grouped.valueSerde ?? this.valueSerde,
      sourceNodes: this.sourceNodes,
      repartitionRequired: this.repartitionRequired,
      groupedName: checkOptionalName('groupByKey', grouped.name),
    })
  }

  /**
   * Groups by a new key (`KSTREAM-KEY-SELECT-`, named after `grouped.name` when given); the
   * following aggregation repartitions through `<name or store>-repartition`. Pass the new key
   * serde in `grouped` (the old one is dropped) or the default key serde is used.
   */
  groupBy<KR>(selector: (key: K, value: V) => KR, grouped: GroupedConfig<KR, V> = {}): KGroupedStream<KR, V> {
    requireFunction(selector, 'keySelector', 'groupBy')
    requireValue(grouped, 'grouped', 'groupBy')
    const groupedName = checkOptionalName('groupBy', grouped.name)
    const name = givenOrGenerate(this.builder, groupedName, 'KSTREAM-KEY-SELECT-')
    this.builder.addProcessor(name, selectKeySupplier(selector), [this.name])
    return new KGroupedStream<KR, V>({
      builder: this.builder,
      name,
      keySerde: grouped.keySerde,
      valueSerde: grouped.valueSerde ?? this.valueSerde,
      sourceNodes: this.sourceNodes,
      repartitionRequired: true,
      groupedName,
    })
  }
}

/** Type of `Consumed` options accepted by `StreamsBuilder.stream`. */
export type StreamConsumed<K, V> = ConsumedConfig<K, V>
