/**
 * Foreign-key table-table joins (Kafka Streams KIP-213: `KTable#join(KTable, Function, ValueJoiner)`,
 * `leftJoin`, `TableJoined`, `KTableImpl#doJoinOnForeignKey`).
 *
 * Each row of the left table `KTable<K, V>` picks a row of the right table `KTable<KO, VO>` by the
 * foreign key `foreignKeyExtractor(value)`; the result `KTable<K, VR>` has the left table's key. The
 * topology is Kafka Streams' (names as it generates them, `<TableJoined name>-...` when named):
 *
 * ```
 * left table ─ KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-<n> ─ KTABLE-SINK-<n>
 *      ↓ topic  <app>-KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-<n>-topic   (co-partitioned with the right table)
 * KTABLE-SOURCE-<n> ─ KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-<n> (receive; store KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-<n>)
 *                   ─ KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-<n> (join with the right table) ─┐
 * right table ─ KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-<n> (answer all subscribers) ─────────┴ KTABLE-SINK-<n>
 *      ↓ topic  <app>-KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-<n>-topic       (co-partitioned with the left table)
 * KTABLE-SOURCE-<n> ─ KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR-<n> ─ KTABLE-FK-JOIN-OUTPUT-<n>
 * ```
 */
import { TopologyError } from '../errors.js'
import { Serdes } from '../serde.js'
import type { StreamPartitioner } from '../processor/types.js'
import type { MaterializedConfig } from './options.js'
import { Materialized, checkOptionalName } from './options.js'
import { requireFunction, resolveMaterialized, storeDefFrom, suffixOrGenerate } from './materialize.js'
import { KTable, sourceTableOrigin } from './ktable.js'
import { tableSourceSupplier, type TableNodeFlags } from '../processors/table.js'
import {
  foreignTableJoinSupplier,
  responseJoinSupplier,
  subscriptionJoinSupplier,
  subscriptionReceiveSupplier,
  subscriptionSendSupplier,
} from '../processors/fk-join/processors.js'
import { responseWrapperSerde, subscriptionWrapperSerde, type SubscriptionResponseWrapper } from '../processors/fk-join/wrappers.js'

/** Fields of {@link TableJoined}. */
export interface TableJoinedConfig<K, KO> {
  /**
   * Partitioner of the left table's topic (Kafka Streams: `TableJoined.partitioner`): the
   * responses go to the partition it returns for the left key. @defaultValue the partition the left
   * row was read from
   */
  readonly partitioner?: StreamPartitioner<K, null>
  /**
   * Partitioner of the right table's topic (Kafka Streams: `TableJoined.otherPartitioner`): the
   * subscriptions go to the partition it returns for the foreign key. @defaultValue murmur2 of the
   * serialized foreign key, as the producer's default partitioner
   */
  readonly otherPartitioner?: StreamPartitioner<KO, null>
  /** Base name of the join's processors, topics and store (`<name>-subscription-registration-topic`, ...). */
  readonly name?: string
}

/**
 * Options of a foreign-key join (Kafka Streams: `TableJoined<K, KO>`, KIP-775): partitioners of
 * the two tables' topics, when they are not partitioned by the default partitioner, and a name.
 */
export class TableJoined<K, KO> implements TableJoinedConfig<K, KO> {
  readonly partitioner?: StreamPartitioner<K, null>
  readonly otherPartitioner?: StreamPartitioner<KO, null>
  readonly name?: string
  private constructor(c: TableJoinedConfig<K, KO>) {
    if (c.partitioner !== undefined) this.partitioner = c.partitioner
    if (c.otherPartitioner !== undefined) this.otherPartitioner = c.otherPartitioner
    if (c.name !== undefined) this.name = c.name
    Object.freeze(this)
  }
  /** Both partitioners (either may be undefined: the default). */
  static with<K, KO>(partitioner?: StreamPartitioner<K, null>, otherPartitioner?: StreamPartitioner<KO, null>): TableJoined<K, KO> {
    return new TableJoined<K, KO>({ ...(partitioner ? { partitioner } : {}), ...(otherPartitioner ? { otherPartitioner } : {}) })
  }
  /** A name for the join's processors, topics and store. @throws TopologyError for an illegal name */
  static as<K, KO>(name: string): TableJoined<K, KO> {
    return new TableJoined<K, KO>({ name: checkOptionalName('TableJoined.as', name)! })
  }
  withPartitioner(partitioner: StreamPartitioner<K, null>): TableJoined<K, KO> {
    return new TableJoined<K, KO>({ ...this, partitioner })
  }
  withOtherPartitioner(otherPartitioner: StreamPartitioner<KO, null>): TableJoined<K, KO> {
    return new TableJoined<K, KO>({ ...this, otherPartitioner })
  }
  withName(name: string): TableJoined<K, KO> {
    return new TableJoined<K, KO>({ ...this, name: checkOptionalName('TableJoined.withName', name)! })
  }
}

const MATERIALIZED_ONLY_FIELDS = [
  'storeName',
  'keySerde',
  'valueSerde',
  'loggingEnabled',
  'logConfig',
  'cachingEnabled',
  'retentionMs',
  'storeType',
]

/**
 * @internal The `(tableJoined?, materialized?)` of a foreign-key join call whose 4th argument may
 * also be a `Materialized` (Kafka Streams' `join(other, extractor, joiner, materialized)`).
 */
export function fkJoinOptions<K>(
  fourth: unknown,
  fifth: unknown,
): [TableJoinedConfig<K, any> | undefined, MaterializedConfig<K, any> | undefined] {
  if (fifth === undefined && fourth !== null && typeof fourth === 'object' && !(fourth instanceof TableJoined)) {
    if (fourth instanceof Materialized || MATERIALIZED_ONLY_FIELDS.some((f) => f in fourth))
      return [undefined, fourth as MaterializedConfig<K, any>]
  }
  return [fourth as TableJoinedConfig<K, any> | undefined, fifth as MaterializedConfig<K, any> | undefined]
}

const FK_JOIN = 'KTABLE-FK-JOIN-'
const SUBSCRIPTION_REGISTRATION = FK_JOIN + 'SUBSCRIPTION-REGISTRATION-'
const SUBSCRIPTION_RESPONSE = FK_JOIN + 'SUBSCRIPTION-RESPONSE-'
const SUBSCRIPTION_PROCESSOR = FK_JOIN + 'SUBSCRIPTION-PROCESSOR-'
const SUBSCRIPTION_STORE = FK_JOIN + 'SUBSCRIPTION-STATE-STORE-'
const RESPONSE_RESOLVER = FK_JOIN + 'SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR-'
const OUTPUT = FK_JOIN + 'OUTPUT-'
const TOPIC_SUFFIX = '-topic'

/** @internal Builds a foreign-key join of `self` with `other` (see the module comment). */
export function buildForeignKeyJoin<K, V, KO, VO, VR>(
  leftJoin: boolean,
  self: KTable<K, V>,
  other: KTable<KO, VO>,
  foreignKeyExtractor: (value: V, key: K) => KO | null | undefined,
  joiner: (left: V, right: VO | null) => VR,
  tableJoined: TableJoinedConfig<K, KO> | undefined,
  materialized: MaterializedConfig<K, VR> | undefined,
  method: string,
): KTable<K, VR> {
  if (!(other instanceof KTable)) throw new TopologyError(`${method}: parameter 'other' must be a KTable`)
  self.checkSameBuilder(other, 'other', method)
  requireFunction(foreignKeyExtractor, 'foreignKeyExtractor', method)
  requireFunction(joiner, 'joiner', method)
  if (tableJoined !== undefined && (tableJoined === null || typeof tableJoined !== 'object'))
    throw new TopologyError(`${method}: parameter 'tableJoined' must be a TableJoined object`)
  if (materialized !== undefined && (materialized === null || typeof materialized !== 'object'))
    throw new TopologyError(`${method}: parameter 'materialized' must be a Materialized object`)
  const builder = self.builder
  const name = checkOptionalName(method, tableJoined?.name)
  const next = (suffix: string, prefix: string): string => suffixOrGenerate(builder, name, suffix, prefix)

  // Old values let the right side skip nothing and the left side unsubscribe from an old foreign key.
  other.enableSendingOldValues(true)
  self.enableSendingOldValues(true)

  const subscriptionTopic = next('-subscription-registration', SUBSCRIPTION_REGISTRATION) + TOPIC_SUFFIX
  builder.addRepartitionTopic({ name: subscriptionTopic })
  const names = (processorName: string) => ({ processorName, subscriptionTopic })

  const sendName = next('-subscription-registration-processor', SUBSCRIPTION_REGISTRATION)
  builder.addProcessor(
    sendName,
    subscriptionSendSupplier<K, V, KO>({
      ...names(sendName),
      foreignKeyExtractor,
      foreignKeySerde: other.keySerde,
      valueSerde: self.valueSerde,
      leftJoin,
    }),
    [self.name],
  )
  const subscriptionSerde = subscriptionWrapperSerde<K>(self.keySerde)
  const otherPartitioner = tableJoined?.otherPartitioner
  const sinkName = next('-subscription-registration-sink', 'KTABLE-SINK-')
  builder.addSink({
    name: sinkName,
    topic: subscriptionTopic,
    parents: [sendName],
    ...(other.keySerde !== undefined ? { keySerde: other.keySerde } : {}),
    valueSerde: subscriptionSerde,
    ...(otherPartitioner !== undefined
      ? { partitioner: (t: string, k: KO, _v: unknown, n: number) => otherPartitioner(t, k, null, n) }
      : {}),
  })
  const sourceName = next('-subscription-registration-source', 'KTABLE-SOURCE-')
  builder.addSource({
    name: sourceName,
    topics: [subscriptionTopic],
    ...(other.keySerde !== undefined ? { keySerde: other.keySerde } : {}),
    valueSerde: subscriptionSerde,
  })
  // The subscriptions must reach the task that owns the foreign key's row.
  builder.copartition([...other.sourceNodes, sourceName])

  const storeName = next('-subscription-store', SUBSCRIPTION_STORE)
  builder.addStateStore({
    name: storeName,
    type: 'keyValue',
    keySerde: Serdes.Bytes(),
    valueSerde: subscriptionSerde,
    loggingEnabled: true,
    logConfig: {},
    cachingEnabled: false,
    persistent: true,
    timestamped: true,
  })
  const receiveName = next('-subscription-receive', SUBSCRIPTION_PROCESSOR)
  const storeOptions = (processorName: string) => ({
    ...names(processorName),
    storeName,
    foreignKeySerde: other.keySerde,
    primaryKeySerde: self.keySerde,
  })
  builder.addProcessor(receiveName, subscriptionReceiveSupplier<K, KO>(storeOptions(receiveName)), [sourceName], [storeName])

  const foreignGetter = other.valueGetterSupplier()
  const joinForeignName = next('-subscription-join-foreign', SUBSCRIPTION_PROCESSOR)
  builder.addProcessor(joinForeignName, subscriptionJoinSupplier<K, KO, VO>(foreignGetter), [receiveName], foreignGetter.storeNames())

  const foreignTableJoinName = next('-foreign-join-subscription', SUBSCRIPTION_PROCESSOR)
  builder.addProcessor(
    foreignTableJoinName,
    foreignTableJoinSupplier<K, KO, VO>(storeOptions(foreignTableJoinName)),
    [other.name],
    [storeName],
  )

  const responseTopic = next('-subscription-response', SUBSCRIPTION_RESPONSE) + TOPIC_SUFFIX
  builder.addRepartitionTopic({ name: responseTopic })
  const responseSerde = responseWrapperSerde<VO>(other.valueSerde)
  const partitioner = tableJoined?.partitioner
  const responseSinkName = next('-subscription-response-sink', 'KTABLE-SINK-')
  builder.addSink({
    name: responseSinkName,
    topic: responseTopic,
    parents: [joinForeignName, foreignTableJoinName],
    ...(self.keySerde !== undefined ? { keySerde: self.keySerde } : {}),
    valueSerde: responseSerde,
    // Back to the partition of the left row, unless the left table has its own partitioner.
    partitioner:
      partitioner !== undefined
        ? (t: string, k: K, _v: unknown, n: number) => partitioner(t, k, null, n)
        : (_t: string, _k: K, v: SubscriptionResponseWrapper<VO>) =>
            v.primaryPartition === undefined || v.primaryPartition < 0 ? undefined : v.primaryPartition,
  })
  const responseSourceName = next('-subscription-response-source', 'KTABLE-SOURCE-')
  builder.addSource({
    name: responseSourceName,
    topics: [responseTopic],
    ...(self.keySerde !== undefined ? { keySerde: self.keySerde } : {}),
    valueSerde: responseSerde,
  })
  const resultSourceNodes = new Set([...self.sourceNodes, responseSourceName])
  builder.copartition(resultSourceNodes)

  const leftGetter = self.valueGetterSupplier()
  const resolverName = next('-subscription-response-resolver', RESPONSE_RESOLVER)
  builder.addProcessor(
    resolverName,
    responseJoinSupplier<K, V, VO, VR>({
      ...names(resolverName),
      leftValueGetter: leftGetter,
      valueSerde: self.valueSerde,
      joiner,
      leftJoin,
    }),
    [responseSourceName],
    leftGetter.storeNames(),
  )

  const resultName = next('-result', OUTPUT)
  const m = resolveMaterialized<K, VR>(builder, materialized, OUTPUT, method)
  const keySerde = m.keySerde ?? self.keySerde
  const valueSerde = m.valueSerde
  const flags: TableNodeFlags = { sendOldValues: false, storeName: m.queryable ? m.storeName : undefined }
  builder.addProcessor(resultName, tableSourceSupplier<K, VR>(flags), [resolverName])
  builder.addStateStore(storeDefFrom(m, 'keyValue', { keySerde, valueSerde }, {}, { versionedAllowed: true }), {
    lazy: !m.queryable,
    processorNames: [resultName],
  })
  return new KTable<K, VR>({
    builder,
    name: resultName,
    keySerde,
    valueSerde,
    sourceNodes: resultSourceNodes,
    queryableStoreName: m.queryable ? m.storeName : undefined,
    flags,
    origin: sourceTableOrigin<K, VR>(builder, flags, m.storeName),
  })
}
