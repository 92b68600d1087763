/**
 * Internal helpers turning DSL options into store definitions (Kafka Streams:
 * `MaterializedInternal`, `KeyValueStoreMaterializer`), used by the DSL classes.
 * @internal
 */
import { TopologyError } from '../errors.js'
import type { Serde } from '../serde.js'
import type { StoreDef, StoreType } from '../state/types.js'
import type { InternalTopologyBuilder } from '../internals/internal-topology-builder.js'
import type { MaterializedConfig, NamedConfig } from './options.js'
import { checkOptionalName } from './options.js'

/** A resolved Materialized: the store name (generated when not given) and whether the user named it. */
export interface ResolvedMaterialized<K, V> {
  readonly storeName: string
  /** The user named the store (Kafka Streams: queryable store name). */
  readonly queryable: boolean
  readonly keySerde?: Serde<K>
  readonly valueSerde?: Serde<V>
  readonly config: MaterializedConfig<K, V>
}

/**
 * Resolves `materialized`, generating `<generatedPrefix>STATE-STORE-<n>` when unnamed (this burns a
 * counter value, exactly where Kafka Streams' `MaterializedInternal` does).
 */
export function resolveMaterialized<K, V>(
  builder: InternalTopologyBuilder,
  materialized: MaterializedConfig<K, V> | undefined,
  generatedPrefix: string,
  method: string,
): ResolvedMaterialized<K, V> {
  if (materialized !== undefined && (materialized === null || typeof materialized !== 'object')) {
    throw new TopologyError(`${method}: parameter 'materialized' must be a Materialized object`)
  }
  const m = materialized ?? {}
  const given = checkOptionalName(method, m.storeName)
  const storeName = given ?? builder.newStoreName(generatedPrefix)
  return {
    storeName,
    queryable: given !== undefined,
    config: m,
    ...(m.keySerde !== undefined ? { keySerde: m.keySerde } : {}),
    ...(m.valueSerde !== undefined ? { valueSerde: m.valueSerde } : {}),
  }
}

/** A StoreDef for a DSL store from resolved Materialized options (timestamped values, as DSL stores are). */
export function storeDefFrom(
  m: ResolvedMaterialized<any, any>,
  type: StoreType,
  serdes: { keySerde?: Serde<any> | undefined; valueSerde?: Serde<any> | undefined },
  extra: Partial<Pick<StoreDef, 'retentionMs' | 'windowSizeMs' | 'retainDuplicates'>> = {},
  options: { readonly versionedAllowed?: boolean } = {},
): StoreDef {
  if (m.config.versioned !== undefined && !options.versionedAllowed)
    throw new TopologyError(
      `store '${m.storeName}' is versioned: versioned stores materialize tables (StreamsBuilder.table, KStream.toTable, KTable.filter/filterNot/mapValues and table joins), not aggregations (KIP-914)`,
    )
  const keySerde = m.keySerde ?? serdes.keySerde
  const valueSerde = m.valueSerde ?? serdes.valueSerde
  return {
    name: m.storeName,
    type,
    ...(keySerde !== undefined ? { keySerde } : {}),
    ...(valueSerde !== undefined ? { valueSerde } : {}),
    loggingEnabled: m.config.loggingEnabled ?? true,
    logConfig: { ...(m.config.logConfig ?? {}) },
    cachingEnabled: m.config.versioned === undefined && (m.config.cachingEnabled ?? true),
    persistent: m.config.storeType !== 'inMemory',
    timestamped: m.config.versioned === undefined,
    ...(m.config.versioned !== undefined ? { versioned: m.config.versioned } : {}),
    ...extra,
  }
}

/**
 * Processor name: the user's `named.name`, or the next generated `prefix` name. Like Kafka
 * Streams' `NamedInternal.orElseGenerateWithPrefix`, a counter value is burned either way.
 */
export function nameOrGenerate(builder: InternalTopologyBuilder, named: NamedConfig | undefined, prefix: string, method: string): string {
  if (named !== undefined && (named === null || typeof named !== 'object'))
    throw new TopologyError(`${method}: parameter 'named' must be a Named object`)
  const given = checkOptionalName(method, named?.name)
  const generated = builder.newProcessorName(prefix)
  return given ?? generated
}

/** Like {@link nameOrGenerate} with a plain optional name (Grouped name etc.). */
export function givenOrGenerate(builder: InternalTopologyBuilder, given: string | undefined, prefix: string): string {
  const generated = builder.newProcessorName(prefix)
  return given ?? generated
}

/** `name + suffix` when named, else a generated name; burns a counter value either way (Kafka Streams: `suffixWithOrElseGet`). */
export function suffixOrGenerate(builder: InternalTopologyBuilder, given: string | undefined, suffix: string, prefix: string): string {
  const generated = builder.newProcessorName(prefix)
  return given !== undefined ? given + suffix : generated
}

/** Throws `TopologyError` naming `parameter` unless `fn` is a function. */
export function requireFunction(fn: unknown, parameter: string, method: string): void {
  if (typeof fn !== 'function') throw new TopologyError(`${method}: parameter '${parameter}' must be a function`)
}

/** Throws `TopologyError` naming `parameter` when `value` is null/undefined. */
export function requireValue(value: unknown, parameter: string, method: string): void {
  if (value === null || value === undefined) throw new TopologyError(`${method}: parameter '${parameter}' must not be null or undefined`)
}
