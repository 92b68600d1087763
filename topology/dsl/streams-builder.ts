/**
 * `StreamsBuilder`: entry point of the DSL (Kafka Streams: `StreamsBuilder`, `InternalStreamsBuilder`).
 *
 * @example Word count
 * ```ts
 * const builder = new StreamsBuilder()
 * builder.stream('lines', Consumed.with(Serdes.String(), Serdes.String()))
 *   .flatMapValues((line) => line.toLowerCase().split(/\W+/))
 *   .groupBy((_k, word) => word, Grouped.with(Serdes.String(), Serdes.String()))
 *   .count(Materialized.as('counts-store'))
 *   .toStream()
 *   .to('word-counts', Produced.with(Serdes.String(), Serdes.Long()))
 * const topology = builder.build()
 * ```
 */
import { TopologyError } from '../errors.js'
import type { ProcessorSupplier } from '../processor/types.js'
import { InternalTopologyBuilder } from '../internals/internal-topology-builder.js'
import { Topology, toStoreDef, type StoreDefSource } from '../internals/topology.js'
import type { ConsumedConfig, MaterializedConfig } from './options.js'
import { checkOptionalName } from './options.js'
import { givenOrGenerate, requireFunction, requireValue, resolveMaterialized, storeDefFrom, suffixOrGenerate } from './materialize.js'
import { tableSourceSupplier, type TableNodeFlags } from '../processors/table.js'
import { KStream } from './kstream.js'
import { KTable, sourceTableOrigin } from './ktable.js'
import { GlobalKTable } from './global-ktable.js'

function checkConsumed(consumed: unknown, method: string): void {
  if (consumed === null || typeof consumed !== 'object')
    throw new TopologyError(`${method}: parameter 'consumed' must be a Consumed object`)
}

function checkTopic(topic: unknown, method: string): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0) throw new TopologyError(`${method}: parameter 'topic' must be a non-empty string`)
}

/** Builds a topology with the DSL. One builder = one topology; `build()` returns it. */
export class StreamsBuilder {
  /** @internal the graph. */
  readonly internalBuilder = new InternalTopologyBuilder()
  private readonly topology = new Topology(this.internalBuilder)

  /**
   * A stream of the records of `topics`: one topic, several, or a RegExp subscription
   * (`KSTREAM-SOURCE-`). Throws `TopologyError` if a topic is already read by another source.
   * A RegExp must match a whole topic name. `KafkaStreams` resolves it against the cluster's topics
   * once, at `start()` (excluding `__` topics and the application's internal topics): topics
   * created later are read only after a restart, and `start()` fails with `StreamsConfigError`
   * when nothing matches (Kafka Streams re-evaluates the pattern at each rebalance and waits).
   */
  stream<K = unknown, V = unknown>(topics: string | ReadonlyArray<string> | RegExp, consumed: ConsumedConfig<K, V> = {}): KStream<K, V> {
    checkConsumed(consumed, 'stream')
    if (topics === null || topics === undefined)
      throw new TopologyError(`stream: parameter 'topics' must be a topic name, an array of topic names or a RegExp`)
    const given = checkOptionalName('stream', consumed.name)
    const name = givenOrGenerate(this.internalBuilder, given, 'KSTREAM-SOURCE-')
    const common = {
      name,
      ...(consumed.keySerde !== undefined ? { keySerde: consumed.keySerde } : {}),
      ...(consumed.valueSerde !== undefined ? { valueSerde: consumed.valueSerde } : {}),
      ...(consumed.timestampExtractor !== undefined ? { timestampExtractor: consumed.timestampExtractor } : {}),
      ...(consumed.offsetReset !== undefined ? { offsetReset: consumed.offsetReset } : {}),
    }
    if (topics instanceof RegExp) {
      this.internalBuilder.addSource({ ...common, pattern: topics })
    } else {
      const list = typeof topics === 'string' ? [topics] : [...topics]
      if (list.length === 0) throw new TopologyError(`stream: parameter 'topics' must name at least one topic`)
      for (const t of list) checkTopic(t, 'stream')
      this.internalBuilder.addSource({ ...common, topics: list })
    }
    return new KStream<K, V>({
      builder: this.internalBuilder,
      name,
      keySerde: consumed.keySerde,
      valueSerde: consumed.valueSerde,
      sourceNodes: new Set([name]),
      repartitionRequired: false,
    })
  }

  /**
   * A table of the latest value per key of `topic` (`KSTREAM-SOURCE-` + `KTABLE-SOURCE-`). The
   * store (`materialized.storeName`, else `<topic>-STATE-STORE-<n>`) is created when the table is
   * named or a downstream operation needs it. Null keys are dropped; null values delete.
   */
  table<K = unknown, V = unknown>(
    topic: string,
    consumed: ConsumedConfig<K, V> = {},
    materialized?: MaterializedConfig<K, V>,
  ): KTable<K, V> {
    checkTopic(topic, 'table')
    checkConsumed(consumed, 'table')
    const b = this.internalBuilder
    const m = resolveMaterialized(b, materialized, topic + '-', 'table')
    const given = checkOptionalName('table', consumed.name)
    const sourceName = suffixOrGenerate(b, given, '-source', 'KSTREAM-SOURCE-')
    const tableSourceName = givenOrGenerate(b, given, 'KTABLE-SOURCE-')
    const keySerde = consumed.keySerde ?? m.keySerde
    const valueSerde = consumed.valueSerde ?? m.valueSerde
    b.addSource({
      name: sourceName,
      topics: [topic],
      ...(keySerde !== undefined ? { keySerde } : {}),
      ...(valueSerde !== undefined ? { valueSerde } : {}),
      ...(consumed.timestampExtractor !== undefined ? { timestampExtractor: consumed.timestampExtractor } : {}),
      ...(consumed.offsetReset !== undefined ? { offsetReset: consumed.offsetReset } : {}),
    })
    const flags: TableNodeFlags = { sendOldValues: false, storeName: m.queryable ? m.storeName : undefined }
    b.addProcessor(tableSourceName, tableSourceSupplier<K, V>(flags), [sourceName])
    b.addStateStore(storeDefFrom(m, 'keyValue', { keySerde, valueSerde }, {}, { versionedAllowed: true }), {
      lazy: !m.queryable,
      processorNames: [tableSourceName],
    })
    return new KTable<K, V>({
      builder: b,
      name: tableSourceName,
      keySerde,
      valueSerde,
      sourceNodes: new Set([sourceName]),
      queryableStoreName: m.queryable ? m.storeName : undefined,
      flags,
      origin: sourceTableOrigin<K, V>(b, flags, m.storeName),
    })
  }

  /**
   * A table replicated in full to every instance, read from all partitions of `topic`
   * (global store `materialized.storeName`, else `<topic>-STATE-STORE-<n>`; no changelog).
   */
  globalTable<K = unknown, V = unknown>(
    topic: string,
    consumed: ConsumedConfig<K, V> = {},
    materialized?: MaterializedConfig<K, V>,
  ): GlobalKTable<K, V> {
    checkTopic(topic, 'globalTable')
    checkConsumed(consumed, 'globalTable')
    const b = this.internalBuilder
    const m = resolveMaterialized(b, materialized, topic + '-', 'globalTable')
    const given = checkOptionalName('globalTable', consumed.name)
    const sourceName = suffixOrGenerate(b, given, '-source', 'KSTREAM-SOURCE-')
    const processorName = givenOrGenerate(b, given, 'KTABLE-SOURCE-')
    const keySerde = consumed.keySerde ?? m.keySerde
    const valueSerde = consumed.valueSerde ?? m.valueSerde
    const def = { ...storeDefFrom(m, 'keyValue', { keySerde, valueSerde }), loggingEnabled: false }
    const flags: TableNodeFlags = { sendOldValues: false, storeName: m.storeName }
    b.addGlobalStore(
      def,
      {
        name: sourceName,
        topic,
        ...(keySerde !== undefined ? { keySerde } : {}),
        ...(valueSerde !== undefined ? { valueSerde } : {}),
        ...(consumed.timestampExtractor !== undefined ? { timestampExtractor: consumed.timestampExtractor } : {}),
        ...(consumed.offsetReset !== undefined ? { offsetReset: consumed.offsetReset } : {}),
      },
      processorName,
      tableSourceSupplier<K, V>(flags) as unknown as ProcessorSupplier<K, V, never, never>,
    )
    return new GlobalKTable<K, V>({ builder: b, storeName: m.storeName, keySerde, valueSerde })
  }

  /**
   * Adds a store for Processor API processors (`KStream.process(supplier, { stores: [name] })`).
   * Throws `TopologyError` if the name is already used.
   */
  addStateStore(storeBuilder: StoreDefSource): this {
    requireValue(storeBuilder, 'storeBuilder', 'addStateStore')
    this.internalBuilder.addStateStore(toStoreDef(storeBuilder))
    return this
  }

  /**
   * Adds a global store fed from all partitions of `topic` by `stateUpdateSupplier`'s processor
   * (`KSTREAM-SOURCE-` + `KTABLE-SOURCE-`).
   */
  addGlobalStore<K = unknown, V = unknown>(
    storeBuilder: StoreDefSource,
    topic: string,
    consumed: ConsumedConfig<K, V>,
    stateUpdateSupplier: ProcessorSupplier<K, V, never, never>,
  ): this {
    requireValue(storeBuilder, 'storeBuilder', 'addGlobalStore')
    checkTopic(topic, 'addGlobalStore')
    checkConsumed(consumed, 'addGlobalStore')
    requireFunction(stateUpdateSupplier, 'stateUpdateSupplier', 'addGlobalStore')
    const b = this.internalBuilder
    const given = checkOptionalName('addGlobalStore', consumed.name)
    const sourceName = suffixOrGenerate(b, given, '-source', 'KSTREAM-SOURCE-')
    const processorName = givenOrGenerate(b, given, 'KTABLE-SOURCE-')
    b.addGlobalStore(
      toStoreDef(storeBuilder),
      {
        name: sourceName,
        topic,
        ...(consumed.keySerde !== undefined ? { keySerde: consumed.keySerde } : {}),
        ...(consumed.valueSerde !== undefined ? { valueSerde: consumed.valueSerde } : {}),
        ...(consumed.timestampExtractor !== undefined ? { timestampExtractor: consumed.timestampExtractor } : {}),
        ...(consumed.offsetReset !== undefined ? { offsetReset: consumed.offsetReset } : {}),
      },
      processorName,
      stateUpdateSupplier,
    )
    return this
  }

  /** The topology built so far. Throws `TopologyError` if the graph is inconsistent. */
  build(): Topology {
    this.internalBuilder.validate()
    return this.topology
  }
}
