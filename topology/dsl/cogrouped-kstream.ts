/**
 * Cogrouping (Kafka Streams KIP-150: `CogroupedKStream`, `TimeWindowedCogroupedKStream`,
 * `SessionWindowedCogroupedKStream`, `CogroupedStreamAggregateBuilder`).
 *
 * Several grouped streams with the same key type fold into ONE aggregate per key (or per key and
 * window), each with its own aggregator, kept in ONE shared store. The topology has one aggregate
 * processor per input (`COGROUPKSTREAM-AGGREGATE-<n>`, or `<Named>-cogroup-agg-<i>`) all connected
 * to the store (`COGROUPKSTREAM-AGGREGATE-STATE-STORE-<n>` unless named), and a pass-through merge
 * node (`COGROUPKSTREAM-MERGE-<n>`, or `<Named>-cogroup-merge`) whose output is the result table.
 * A grouped stream whose key changed upstream goes through its own repartition topic first,
 * `<Grouped name or store name>-repartition`, as in Kafka Streams. All inputs of one cogroup are
 * co-partitioned.
 *
 * @example
 * ```ts
 * const clicks = builder.stream('clicks', Consumed.with(Serdes.String(), Serdes.Long())).groupByKey()
 * const views = builder.stream('views', Consumed.with(Serdes.String(), Serdes.String())).groupByKey()
 * const activity: KTable<string, string> = clicks
 *   .cogroup<string>((user, n, agg) => `${agg}c${n}`)
 *   .cogroup(views, (user, page, agg) => `${agg}v:${page}`)
 *   .aggregate(() => '', Materialized.as<string, string>('activity').withValueSerde(Serdes.String()))
 * ```
 */
import { TopologyError } from '../errors.js'
import type { Serde } from '../serde.js'
import type { ProcessorSupplier } from '../processor/types.js'
import type { StoreDef, Windowed } from '../state/types.js'
import type { InternalTopologyBuilder } from '../internals/internal-topology-builder.js'
import type { MaterializedConfig, NamedConfig } from './options.js'
import { requireFunction, resolveMaterialized, storeDefFrom, suffixOrGenerate } from './materialize.js'
import { KTable, storeTableOrigin, type TableOrigin } from './ktable.js'
import type { KGroupedStream } from './kgrouped-stream.js'
import { SessionWindows, SlidingWindows, TimeWindows } from './windows.js'
import { EmitStrategy } from './suppressed.js'
import { streamAggregateSupplier } from '../processors/aggregate.js'
import { passThroughSupplier } from '../processors/stateless.js'
import type { KTableValueGetterSupplier, TableNodeFlags } from '../processors/table.js'
import { registerWindowedNode, sessionStoreValueGetterSupplier, windowStoreValueGetterSupplier } from '../processors/windowed/graph.js'
import { timeWindowAggregateSupplier } from '../processors/windowed/time-window-aggregate.js'
import { slidingWindowAggregateSupplier } from '../processors/windowed/sliding-window-aggregate.js'
import { sessionWindowAggregateSupplier } from '../processors/windowed/session-window-aggregate.js'
import { sessionWindowedSerde, timeWindowedSerde } from '../processors/windowed/windowed-serdes.js'
import type { Aggregator, Initializer, Merger } from '../processors/windowed/types.js'
import { checkLateRecords, type LateRecordsConfig, type LateRecordsTarget } from './late-records.js'

/** Processor-name prefix of the per-input aggregate processors (Kafka Streams: `CogroupedKStreamImpl.AGGREGATE_NAME`). */
export const COGROUP_AGGREGATE_NAME = 'COGROUPKSTREAM-AGGREGATE-'
/** Processor-name prefix of the merge node (Kafka Streams: `CogroupedKStreamImpl.MERGE_NAME`). */
export const COGROUP_MERGE_NAME = 'COGROUPKSTREAM-MERGE-'

/** One input of a cogroup: a grouped stream and the aggregator folding its values. */
interface CogroupPattern<K, VOut> {
  readonly grouped: KGroupedStream<K, any>
  readonly aggregator: Aggregator<K, any, VOut>
}

/**
 * State shared by a cogroup and every handle derived from it (Kafka Streams: the
 * `CogroupedStreamAggregateBuilder` of one `KGroupedStream.cogroup` call): the node each grouped
 * stream's aggregate hangs on once its repartition exists, so a second aggregation of the same
 * cogroup reuses the repartition topic.
 */
interface CogroupShared {
  readonly parents: Map<KGroupedStream<any, any>, { readonly node: string; readonly sourceNodes: ReadonlySet<string> }>
}

/** Which aggregation a cogroup builds. */
type CogroupKind<K, VOut> =
  | { readonly type: 'keyValue' }
  | { readonly type: 'time'; readonly windows: TimeWindows }
  | { readonly type: 'sliding'; readonly windows: SlidingWindows }
  | { readonly type: 'session'; readonly windows: SessionWindows; readonly merger: Merger<K, VOut> }

function checkPatterns<K, VOut>(patterns: ReadonlyArray<CogroupPattern<K, VOut>>): void {
  if (patterns.length === 0) throw new TopologyError('cogroup: no grouped stream to aggregate')
}

/**
 * A cogroup of grouped streams (Kafka Streams: `CogroupedKStream<K, VOut>`, KIP-150). Made by
 * `KGroupedStream.cogroup(aggregator)`; add more inputs with {@link CogroupedKStream.cogroup},
 * then {@link CogroupedKStream.aggregate} or window it with {@link CogroupedKStream.windowedBy}.
 *
 * Unlike Kafka Streams' mutable `CogroupedKStreamImpl`, every call returns a new handle (the
 * handle it was called on keeps its inputs). Cogrouping the same grouped stream twice replaces its
 * aggregator, as in Kafka Streams.
 */
export class CogroupedKStream<K, VOut> {
  /** @internal */ readonly builder: InternalTopologyBuilder
  /** @internal */ readonly patterns: ReadonlyArray<CogroupPattern<K, VOut>>
  /** @internal */ readonly shared: CogroupShared

  /** @internal Made by `KGroupedStream.cogroup`; not for applications. */
  constructor(builder: InternalTopologyBuilder, patterns: ReadonlyArray<CogroupPattern<K, VOut>>, shared?: CogroupShared) {
    this.builder = builder
    this.patterns = patterns
    this.shared = shared ?? { parents: new Map() }
    Object.freeze(this)
  }

  /**
   * Adds `groupedStream`, folded into the shared aggregate with `aggregator(key, value, aggregate)`.
   * Its key type must be this cogroup's; its value type may differ.
   * @throws TopologyError when `groupedStream` is not a KGroupedStream of the same StreamsBuilder or
   *   `aggregator` is not a function
   */
  cogroup<VIn>(groupedStream: KGroupedStream<K, VIn>, aggregator: Aggregator<K, VIn, VOut>): CogroupedKStream<K, VOut> {
    checkGrouped(this.builder, groupedStream, 'cogroup')
    requireFunction(aggregator, 'aggregator', 'cogroup')
    const patterns = this.patterns.filter((p) => p.grouped !== groupedStream)
    patterns.push({ grouped: groupedStream, aggregator })
    return new CogroupedKStream<K, VOut>(this.builder, patterns, this.shared)
  }

  /**
   * Aggregates all inputs per key into a `KTable<K, VOut>`: `initializer()` starts a key's
   * aggregate; each input's aggregator updates it. The result timestamp is the largest input
   * timestamp folded in. Records with a null key or value are dropped and counted.
   *
   * `materialized` names the key-value store (`COGROUPKSTREAM-AGGREGATE-STATE-STORE-<n>` otherwise)
   * and gives its serdes: the key serde defaults to the first grouped stream's (Kafka Streams uses
   * the default key serde), the value serde to the default value serde. `named` names the
   * processors `<name>-cogroup-agg-<i>` and `<name>-cogroup-merge`. (Kafka Streams' argument order
   * is `(initializer, named, materialized)`; here, as in the rest of this DSL, `named` comes last.)
   * @throws TopologyError when `initializer` is not a function or two inputs need a repartition
   *   topic of the same name (give them different `Grouped` names)
   */
  aggregate(initializer: Initializer<VOut>, materialized?: MaterializedConfig<K, VOut>, named?: NamedConfig): KTable<K, VOut> {
    requireFunction(initializer, 'initializer', 'aggregate')
    return buildCogroup<K, VOut, K>(this, { type: 'keyValue' }, initializer, materialized, named, 'aggregate')
  }

  /**
   * Windows the cogroup: `TimeWindows` (tumbling/hopping) and `SlidingWindows` give a
   * {@link TimeWindowedCogroupedKStream}, `SessionWindows` a {@link SessionWindowedCogroupedKStream}.
   * Windowed cogroups always emit on every update (Kafka Streams has no emit strategy for them).
   * @throws TopologyError when `windows` is none of these
   */
  windowedBy(windows: TimeWindows | SlidingWindows): TimeWindowedCogroupedKStream<K, VOut>
  /** Session windows: see above. */
  windowedBy(windows: SessionWindows): SessionWindowedCogroupedKStream<K, VOut>
  windowedBy(
    windows: TimeWindows | SlidingWindows | SessionWindows,
  ): TimeWindowedCogroupedKStream<K, VOut> | SessionWindowedCogroupedKStream<K, VOut> {
    if (windows instanceof TimeWindows || windows instanceof SlidingWindows) return new TimeWindowedCogroupedKStream<K, VOut>(this, windows)
    if (windows instanceof SessionWindows) return new SessionWindowedCogroupedKStream<K, VOut>(this, windows)
    throw new TopologyError(`windowedBy: parameter 'windows' must be TimeWindows, SlidingWindows or SessionWindows`)
  }
}

/**
 * A cogroup windowed by {@link TimeWindows} or {@link SlidingWindows} (Kafka Streams:
 * `TimeWindowedCogroupedKStream`, `TimeWindowedCogroupedKStreamImpl`,
 * `SlidingWindowedCogroupedKStreamImpl`). The result is `KTable<Windowed<K>, VOut>`, updated on
 * every record; windows close at `windowEnd + grace` of each input's observed stream-time, as in
 * the windowed aggregations of one stream.
 */
export class TimeWindowedCogroupedKStream<K, VOut> {
  /** Made by `CogroupedKStream.windowedBy`; not for applications. */
  constructor(
    /** @internal */ readonly cogrouped: CogroupedKStream<K, VOut>,
    /** The windows aggregated over. */
    readonly windows: TimeWindows | SlidingWindows,
    /** @internal */ readonly lateRecords?: LateRecordsConfig<K, unknown>,
  ) {
    Object.freeze(this)
  }

  /**
   * Sends the records every input drops as late (after its window's grace) to a side topic, as
   * `TimeWindowedKStream.withLateRecords` does (a kstreams extension; headers
   * `LATE_RECORD_HEADERS`, the processor header naming the input's aggregate processor). One sink,
   * `produced.name` or `<store name>-late-records`, below every input's aggregate processor. Value
   * serde: `produced`'s, else the inputs' common value serde when they share one, else the
   * application default.
   * @throws TopologyError when `lateRecords` has no topic
   */
  withLateRecords(lateRecords: LateRecordsConfig<K, unknown>): TimeWindowedCogroupedKStream<K, VOut> {
    return new TimeWindowedCogroupedKStream<K, VOut>(this.cogrouped, this.windows, checkLateRecords(lateRecords, 'withLateRecords'))
  }

  /**
   * Aggregates all inputs per key and window: `initializer()` starts a window, each input's
   * aggregator updates it. `materialized` names the window store and gives its serdes (for the plain
   * key `K`, and the aggregate) and retention, which must be at least window size + grace (sliding
   * windows: 2 × time difference + grace).
   * @throws TopologyError when `initializer` is not a function or the retention is too small
   */
  aggregate(initializer: Initializer<VOut>, materialized?: MaterializedConfig<K, VOut>, named?: NamedConfig): KTable<Windowed<K>, VOut> {
    requireFunction(initializer, 'initializer', 'aggregate')
    const kind: CogroupKind<K, VOut> =
      this.windows instanceof TimeWindows ? { type: 'time', windows: this.windows } : { type: 'sliding', windows: this.windows }
    return buildCogroup<K, VOut, Windowed<K>>(this.cogrouped, kind, initializer, materialized, named, 'aggregate', this.lateRecords)
  }
}

/**
 * A cogroup windowed by {@link SessionWindows} (Kafka Streams: `SessionWindowedCogroupedKStream`).
 * Records of all inputs extend and merge the same sessions; the `merger` combines the aggregates
 * of two sessions being merged.
 */
export class SessionWindowedCogroupedKStream<K, VOut> {
  /** Made by `CogroupedKStream.windowedBy`; not for applications. */
  constructor(
    /** @internal */ readonly cogrouped: CogroupedKStream<K, VOut>,
    /** The session windows aggregated over. */
    readonly windows: SessionWindows,
    /** @internal */ readonly lateRecords?: LateRecordsConfig<K, unknown>,
  ) {
    Object.freeze(this)
  }

  /**
   * Sends the records every input drops as late to a side topic; see
   * {@link TimeWindowedCogroupedKStream.withLateRecords}.
   * @throws TopologyError when `lateRecords` has no topic
   */
  withLateRecords(lateRecords: LateRecordsConfig<K, unknown>): SessionWindowedCogroupedKStream<K, VOut> {
    return new SessionWindowedCogroupedKStream<K, VOut>(this.cogrouped, this.windows, checkLateRecords(lateRecords, 'withLateRecords'))
  }

  /**
   * Aggregates all inputs per session: `initializer()` starts a session, each input's aggregator
   * adds a record, `merger(key, agg1, agg2)` combines merged sessions. `materialized` names the
   * session store; its retention must be at least gap + grace.
   * @throws TopologyError when `initializer` or `merger` is not a function or the retention is too small
   */
  aggregate(
    initializer: Initializer<VOut>,
    merger: Merger<K, VOut>,
    materialized?: MaterializedConfig<K, VOut>,
    named?: NamedConfig,
  ): KTable<Windowed<K>, VOut> {
    requireFunction(initializer, 'initializer', 'aggregate')
    requireFunction(merger, 'sessionMerger', 'aggregate')
    return buildCogroup<K, VOut, Windowed<K>>(
      this.cogrouped,
      { type: 'session', windows: this.windows, merger },
      initializer,
      materialized,
      named,
      'aggregate',
      this.lateRecords,
    )
  }
}

/** @internal Throws unless `grouped` is a KGroupedStream of `builder`. */
export function checkGrouped(builder: InternalTopologyBuilder, grouped: unknown, method: string): void {
  const g = grouped as KGroupedStream<any, any> | null | undefined
  if (g === null || typeof g !== 'object' || typeof g.buildAggregate !== 'function')
    throw new TopologyError(`${method}: parameter 'groupedStream' must be a KGroupedStream`)
  if (g.builder !== builder) throw new TopologyError(`${method}: parameter 'groupedStream' comes from a different StreamsBuilder`)
}

/** Store definition, retention rule and result serdes of one cogroup aggregation. */
interface CogroupStore<K, VOut, KR> {
  readonly storeDef: StoreDef
  readonly resultKeySerde: Serde<KR> | undefined
  readonly supplier: (aggregator: Aggregator<K, any, VOut>, lateRecords?: LateRecordsTarget) => ProcessorSupplier<K, any, any, any>
  readonly valueGetter: () => KTableValueGetterSupplier<KR, VOut>
  /** Windowed results: how long after its end a window closes (for `suppress(untilWindowCloses)`). */
  readonly closeAfterEndMs?: number
}

function cogroupStore<K, VOut, KR>(
  kind: CogroupKind<K, VOut>,
  m: ReturnType<typeof resolveMaterialized<K, VOut>>,
  keySerde: Serde<K> | undefined,
  initializer: Initializer<VOut>,
  flags: TableNodeFlags,
  method: string,
): CogroupStore<K, VOut, KR> {
  const valueSerde = m.valueSerde
  const storeName = m.storeName
  const emitStrategy = EmitStrategy.onWindowUpdate()
  const checkRetention = (storeType: string, minRetentionMs: number, rule: string): number => {
    const given = m.config.retentionMs ?? minRetentionMs
    if (given < minRetentionMs)
      throw new TopologyError(
        `${method}: the retention period of the ${storeType} store ${storeName} must be no smaller than ${rule} (${minRetentionMs} ms); got retentionMs=${given}`,
      )
    return given
  }
  switch (kind.type) {
    case 'keyValue':
      return {
        storeDef: storeDefFrom(m, 'keyValue', { keySerde, valueSerde }),
        resultKeySerde: keySerde as Serde<KR> | undefined,
        supplier: (aggregator) => streamAggregateSupplier<K, any, VOut>(flags, initializer, aggregator),
        valueGetter: () => storeTableOrigin<KR, VOut>(flags, storeName).valueGetterSupplier(),
      }
    case 'time':
    case 'sliding': {
      const { windows } = kind
      const sizeMs = kind.type === 'time' ? kind.windows.size() : kind.windows.timeDifference()
      const retentionMs =
        kind.type === 'time'
          ? checkRetention('window', sizeMs + windows.gracePeriodMs(), 'its window size plus the grace period')
          : checkRetention('window', 2 * sizeMs + windows.gracePeriodMs(), '2 * time difference plus the grace period')
      return {
        storeDef: storeDefFrom(m, 'window', { keySerde, valueSerde }, { retentionMs, windowSizeMs: sizeMs, retainDuplicates: false }),
        resultKeySerde: (keySerde === undefined ? undefined : timeWindowedSerde(keySerde, sizeMs)) as Serde<KR> | undefined,
        supplier: (aggregator, lateRecords) => {
          const options = { storeName, emitStrategy, initializer, aggregator, flags, ...(lateRecords ? { lateRecords } : {}) }
          return kind.type === 'time'
            ? timeWindowAggregateSupplier<K, any, VOut>({ windows: kind.windows, ...options })
            : slidingWindowAggregateSupplier<K, any, VOut>({ windows: kind.windows, ...options })
        },
        valueGetter: () => windowStoreValueGetterSupplier<K, VOut>(storeName) as unknown as KTableValueGetterSupplier<KR, VOut>,
        closeAfterEndMs: windows.gracePeriodMs(),
      }
    }
    case 'session': {
      const { windows, merger } = kind
      const retentionMs = checkRetention(
        'session',
        windows.inactivityGap() + windows.gracePeriodMs(),
        'its inactivity gap plus the grace period',
      )
      // Session stores hold plain aggregates (the session end is their timestamp).
      const storeDef: StoreDef = { ...storeDefFrom(m, 'session', { keySerde, valueSerde }, { retentionMs }), timestamped: false }
      return {
        storeDef,
        resultKeySerde: (keySerde === undefined ? undefined : sessionWindowedSerde(keySerde)) as Serde<KR> | undefined,
        supplier: (aggregator, lateRecords) =>
          sessionWindowAggregateSupplier<K, any, VOut>({
            windows,
            storeName,
            emitStrategy,
            initializer,
            aggregator,
            merger,
            flags,
            ...(lateRecords ? { lateRecords } : {}),
          }),
        valueGetter: () => sessionStoreValueGetterSupplier<K, VOut>(storeName) as unknown as KTableValueGetterSupplier<KR, VOut>,
        closeAfterEndMs: windows.inactivityGap() + windows.gracePeriodMs(),
      }
    }
  }
}

/**
 * Wires one cogroup aggregation in Kafka Streams' order (`CogroupedStreamAggregateBuilder.build`):
 * store name, repartitions (three names burned per input that needs one, even when the
 * repartition of an earlier aggregation of this cogroup is reused), one aggregate processor per
 * input, the merge node.
 */
function buildCogroup<K, VOut, KR>(
  cogrouped: CogroupedKStream<K, VOut>,
  kind: CogroupKind<K, VOut>,
  initializer: Initializer<VOut>,
  materialized: MaterializedConfig<K, VOut> | undefined,
  named: NamedConfig | undefined,
  method: string,
  lateRecords?: LateRecordsConfig<K, unknown>,
): KTable<KR, VOut> {
  const { builder, patterns, shared } = cogrouped
  checkPatterns(patterns)
  if (named !== undefined && (named === null || typeof named !== 'object'))
    throw new TopologyError(`${method}: parameter 'named' must be a Named object`)
  const m = resolveMaterialized(builder, materialized, COGROUP_AGGREGATE_NAME, method)
  const keySerde = m.keySerde ?? patterns[0]!.grouped.keySerde
  const flags: TableNodeFlags = { sendOldValues: kind.type !== 'keyValue', storeName: m.storeName }
  const store = cogroupStore<K, VOut, KR>(kind, m, keySerde, initializer, flags, method)

  // Repartitions first, for every input that needs one.
  const topicOwners = new Map<string, KGroupedStream<any, any>>()
  const parents = new Map<KGroupedStream<any, any>, { node: string; sourceNodes: ReadonlySet<string> }>()
  for (const { grouped } of patterns) {
    if (!grouped.repartitionRequired) {
      parents.set(grouped, { node: grouped.name, sourceNodes: grouped.sourceNodes })
      continue
    }
    const prefix = grouped.groupedName ?? m.storeName
    const known = shared.parents.get(grouped)
    if (known !== undefined) {
      // Kafka Streams creates (and drops) the repartition nodes again: the names are burned.
      builder.newProcessorName('KSTREAM-SINK-')
      builder.newProcessorName('KSTREAM-FILTER-')
      builder.newProcessorName('KSTREAM-SOURCE-')
      parents.set(grouped, known)
      continue
    }
    const other = topicOwners.get(prefix)
    if (other !== undefined)
      throw new TopologyError(
        `${method}: two grouped streams of this cogroup need a repartition topic named '${prefix}-repartition'; give them different Grouped names`,
      )
    topicOwners.set(prefix, grouped)
    const nodes = builder.addRepartition({
      parent: grouped.name,
      topicPrefix: prefix,
      ...(grouped.keySerde !== undefined ? { keySerde: grouped.keySerde } : {}),
      ...(grouped.valueSerde !== undefined ? { valueSerde: grouped.valueSerde } : {}),
    })
    const entry = { node: nodes.sourceName, sourceNodes: new Set([nodes.sourceName]) }
    shared.parents.set(grouped, entry)
    parents.set(grouped, entry)
  }
  const sourceNodes = new Set<string>()
  for (const p of parents.values()) for (const s of p.sourceNodes) sourceNodes.add(s)
  builder.copartition(sourceNodes)

  const aggregateNames: string[] = []
  const lateSinkName = lateRecords ? (lateRecords.produced?.name ?? `${m.storeName}-late-records`) : undefined
  patterns.forEach(({ grouped, aggregator }, i) => {
    const name = suffixOrGenerate(builder, named?.name, `-cogroup-agg-${i}`, COGROUP_AGGREGATE_NAME)
    const late = lateSinkName !== undefined ? { sinkName: lateSinkName, processorName: name } : undefined
    builder.addProcessor(name, store.supplier(aggregator, late), [parents.get(grouped)!.node])
    if (i === 0) builder.addStateStore(store.storeDef, { processorNames: [name] })
    else builder.connectProcessorAndStores(name, [store.storeDef.name])
    aggregateNames.push(name)
  })
  const mergeName = suffixOrGenerate(builder, named?.name, '-cogroup-merge', COGROUP_MERGE_NAME)
  builder.addProcessor(mergeName, passThroughSupplier(), aggregateNames)
  if (store.closeAfterEndMs !== undefined) registerWindowedNode(builder, mergeName, store.closeAfterEndMs)
  if (lateRecords !== undefined && lateSinkName !== undefined) {
    // one side-output sink below every input's aggregate processor
    const produced = lateRecords.produced ?? {}
    const valueSerdes = new Set(patterns.map((p) => p.grouped.valueSerde))
    const valueSerde = produced.valueSerde ?? (valueSerdes.size === 1 ? [...valueSerdes][0] : undefined)
    const lateKeySerde = produced.keySerde ?? keySerde
    builder.addSink({
      name: lateSinkName,
      topic: lateRecords.topic,
      parents: aggregateNames,
      sideOutput: true,
      ...(lateKeySerde !== undefined ? { keySerde: lateKeySerde } : {}),
      ...(valueSerde !== undefined ? { valueSerde } : {}),
      ...(produced.partitioner !== undefined ? { partitioner: produced.partitioner } : {}),
    })
  }

  const origin: TableOrigin<KR, VOut> = {
    enableSendingOldValues() {
      flags.sendOldValues = true
      return true
    },
    valueGetterSupplier: store.valueGetter,
  }
  return new KTable<KR, VOut>({
    builder,
    name: mergeName,
    keySerde: store.resultKeySerde,
    valueSerde: m.valueSerde,
    sourceNodes,
    queryableStoreName: m.queryable ? m.storeName : undefined,
    flags,
    origin,
  })
}
