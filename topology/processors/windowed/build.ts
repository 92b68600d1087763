/**
 * Wiring shared by the windowed DSL classes (Kafka Streams: `GroupedStreamAggregateBuilder` +
 * `WindowStoreMaterializer` / `SlidingWindowStoreMaterializer` / `SessionStoreMaterializer`):
 * resolve the store and processor names in Kafka Streams' order, check the retention, register the
 * store(s), wire the aggregate behind the (optional) repartition, and return the windowed table.
 * @internal
 */
import { TopologyError } from '../../errors.js'
import { Serdes, type Serde } from '../../serde.js'
import type { ProcessorSupplier } from '../../processor/types.js'
import type { StoreDef, Windowed } from '../../state/types.js'
import type { KGroupedStream } from '../../dsl/kgrouped-stream.js'
import { KTable } from '../../dsl/ktable.js'
import { nameOrGenerate, resolveMaterialized, storeDefFrom } from '../../dsl/materialize.js'
import type { MaterializedConfig, NamedConfig } from '../../dsl/options.js'
import type { EmitStrategy } from '../../dsl/suppressed.js'
import type { KTableValueGetterSupplier, TableNodeFlags } from '../table.js'
import type { Change } from './types.js'
import { registerWindowedNode } from './graph.js'
import { addLateRecordsSink, lateRecordsTarget, type LateRecordsConfig, type LateRecordsTarget } from '../../dsl/late-records.js'

/** Suffix of the small store remembering the last emit of an `onWindowClose` aggregation. */
export const EMIT_TIME_STORE_SUFFIX = '-emit-time'

export interface WindowedAggregateSpec<K, VAgg> {
  readonly grouped: KGroupedStream<K, any>
  readonly method: string
  readonly prefix: string
  readonly materialized: MaterializedConfig<K, VAgg> | undefined
  readonly named: NamedConfig | undefined
  /** Value serde when Materialized has none (count: Long; reduce: the grouped value serde). */
  readonly defaultValueSerde: Serde<VAgg> | undefined
  readonly storeType: 'window' | 'session'
  /** Smallest allowed retention, and how it is computed (for the error message). */
  readonly minRetentionMs: number
  readonly retentionRule: string
  /**
   * Retention actually used when the given (or minimum) one is smaller. Session aggregations with
   * `onWindowClose` keep one more millisecond (Kafka Streams' time-ordered session store keeps
   * `end == observed - retention`), so a session is still in the store when it closes
   * (`end < observed - gap - grace`) and is emitted.
   */
  readonly effectiveMinRetentionMs?: number
  /** Window stores: window size (sliding: the time difference). */
  readonly windowSizeMs?: number
  readonly windowedKeySerde: (keySerde: Serde<K> | undefined) => Serde<Windowed<K>>
  readonly emitStrategy: EmitStrategy
  /** How long after its end a window closes (grace; sessions: gap + grace). */
  readonly closeAfterEndMs: number
  /** Side topic of the records dropped as late (`withLateRecords`); sink below the aggregate processor. */
  readonly lateRecords?: LateRecordsConfig<K, any> | undefined
  /** `flags`: the result table's (whether a downstream asked for old values). */
  readonly supplier: (
    storeName: string,
    emitTimeStoreName: string | undefined,
    lateRecords: LateRecordsTarget | undefined,
    flags: TableNodeFlags,
  ) => ProcessorSupplier<K, any, Windowed<K>, Change<VAgg>>
  readonly valueGetter: (storeName: string) => KTableValueGetterSupplier<Windowed<K>, VAgg>
}

/** Builds a windowed aggregation and returns its `KTable<Windowed<K>, VAgg>`. */
export function buildWindowedAggregate<K, VAgg>(spec: WindowedAggregateSpec<K, VAgg>): KTable<Windowed<K>, VAgg> {
  const { grouped, method } = spec
  const builder = grouped.builder
  const m = resolveMaterialized(builder, spec.materialized, spec.prefix, method)
  const functionName = nameOrGenerate(builder, spec.named, spec.prefix, method)
  const keySerde = m.keySerde ?? grouped.keySerde
  const valueSerde = m.valueSerde ?? spec.defaultValueSerde
  const givenRetentionMs = m.config.retentionMs ?? spec.minRetentionMs
  if (givenRetentionMs < spec.minRetentionMs) {
    throw new TopologyError(
      `${method}: the retention period of the ${spec.storeType} store ${m.storeName} must be no smaller than ${spec.retentionRule} (${spec.minRetentionMs} ms); got retentionMs=${givenRetentionMs}`,
    )
  }
  const retentionMs = Math.max(givenRetentionMs, spec.effectiveMinRetentionMs ?? 0)
  const base = storeDefFrom(
    m,
    spec.storeType,
    { keySerde, valueSerde },
    {
      retentionMs,
      ...(spec.windowSizeMs !== undefined ? { windowSizeMs: spec.windowSizeMs, retainDuplicates: false } : {}),
    },
  )
  // Session stores hold plain aggregates (the session end is their timestamp).
  const storeDef: StoreDef = spec.storeType === 'session' ? { ...base, timestamped: false } : base
  const emitTimeStoreName = spec.emitStrategy.type === 'ON_WINDOW_CLOSE' ? m.storeName + EMIT_TIME_STORE_SUFFIX : undefined

  const windowedKeySerde = spec.windowedKeySerde(keySerde)
  const lateTarget = spec.lateRecords !== undefined ? lateRecordsTarget(functionName, spec.lateRecords, method) : undefined
  const table = grouped.buildAggregate<Windowed<K>, VAgg>({
    functionName,
    storeDef,
    queryable: m.queryable,
    supplier: (flags) => spec.supplier(storeDef.name, emitTimeStoreName, lateTarget, flags),
    keySerde: windowedKeySerde,
    valueSerde,
  })
  if (emitTimeStoreName !== undefined) {
    builder.addStateStore(
      {
        name: emitTimeStoreName,
        type: 'keyValue',
        keySerde: Serdes.String(),
        valueSerde: Serdes.Long(),
        loggingEnabled: storeDef.loggingEnabled,
        logConfig: storeDef.logConfig,
        cachingEnabled: false,
        persistent: storeDef.persistent,
        timestamped: false,
      },
      { processorNames: [functionName] },
    )
  }
  if (lateTarget !== undefined) addLateRecordsSink(builder, lateTarget, spec.lateRecords!, { keySerde, valueSerde: grouped.valueSerde })
  registerWindowedNode(builder, functionName, spec.closeAfterEndMs)
  const flags = table.flags
  return new KTable<Windowed<K>, VAgg>({
    builder,
    name: table.name,
    keySerde: table.keySerde,
    valueSerde: table.valueSerde,
    sourceNodes: table.sourceNodes,
    queryableStoreName: table.queryableStoreName,
    flags,
    origin: {
      enableSendingOldValues() {
        // Windowed aggregations always forward old values.
        flags.sendOldValues = true
        return true
      },
      valueGetterSupplier: () => spec.valueGetter(storeDef.name),
    },
  })
}

/** Reduce as an aggregation whose initial aggregate is "none": the first value starts it. */
export function reduceAsAggregate<K, V>(
  reducer: (aggregate: V, value: V) => V,
): {
  initializer: () => V
  aggregator: (key: K, value: V, aggregate: V) => V
} {
  return {
    initializer: () => null as unknown as V,
    aggregator: (_key, value, aggregate) => (aggregate === null || aggregate === undefined ? value : reducer(aggregate, value)),
  }
}
