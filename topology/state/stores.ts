/**
 * Store builders (Kafka Streams: `Stores`, `StoreBuilder`): describe a store for
 * `Topology.addStateStore` / `StreamsBuilder.addStateStore` / `KStream.process`. Each builder is
 * immutable and `build()` yields the {@link StoreDef} the runtime and the test driver use.
 *
 * @example
 * ```ts
 * builder.addStateStore(Stores.keyValueStoreBuilder('counts', Serdes.String(), Serdes.Long()).withLoggingDisabled())
 * ```
 */
import { TopologyError } from '../errors.js'
import type { Serde } from '../serde.js'
import type { StoreDef, StoreType } from './types.js'
import { isVersionedBytesStoreSupplier, persistentVersionedKeyValueStore, type VersionedBytesStoreSupplier } from './versioned.js'

/** Default retention of window/session stores built without one: 1 day (Kafka Streams' default). */
export const DEFAULT_RETENTION_MS = 24 * 60 * 60 * 1000

/** An immutable store description (Kafka Streams: `StoreBuilder<S>`). Type parameters are the store's key and value. */
export class StoreBuilder<K, V> {
  /** @internal */
  readonly def: StoreDef
  /** Phantom fields carrying K and V. */
  declare readonly __key?: K
  declare readonly __value?: V

  /** Made by the `Stores.*StoreBuilder` factories; not for applications. */
  constructor(def: StoreDef) {
    this.def = Object.freeze({ ...def })
    Object.freeze(this)
  }
  /** The store's name. */
  get name(): string {
    return this.def.name
  }
  /** Changelog on (the default), with extra topic configs. */
  withLoggingEnabled(logConfig: Readonly<Record<string, string>> = {}): StoreBuilder<K, V> {
    return new StoreBuilder<K, V>({ ...this.def, loggingEnabled: true, logConfig: { ...logConfig } })
  }
  /** No changelog: the store is not restored after a failure. */
  withLoggingDisabled(): StoreBuilder<K, V> {
    return new StoreBuilder<K, V>({ ...this.def, loggingEnabled: false, logConfig: {} })
  }
  withCachingEnabled(): StoreBuilder<K, V> {
    if (this.def.versioned !== undefined)
      throw new TopologyError(`withCachingEnabled: versioned store '${this.def.name}' cannot be cached (as in Kafka Streams)`)
    return new StoreBuilder<K, V>({ ...this.def, cachingEnabled: true })
  }
  withCachingDisabled(): StoreBuilder<K, V> {
    return new StoreBuilder<K, V>({ ...this.def, cachingEnabled: false })
  }
  /** Keep the store in memory only (restored from its changelog on start). */
  inMemory(): StoreBuilder<K, V> {
    return new StoreBuilder<K, V>({ ...this.def, persistent: false })
  }
  /** LevelDB-backed (the default). */
  persistent(): StoreBuilder<K, V> {
    return new StoreBuilder<K, V>({ ...this.def, persistent: true })
  }
  /** Values carry the timestamp of the record that wrote them (`ValueAndTimestamp`). */
  timestamped(): StoreBuilder<K, V> {
    return new StoreBuilder<K, V>({ ...this.def, timestamped: true })
  }
  /** The StoreDef. */
  build(): StoreDef {
    return this.def
  }
}

function checkStoreName(method: string, name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) throw new TopologyError(`${method}: parameter 'name' must be a non-empty string`)
  if (!/^[a-zA-Z0-9._-]+$/.test(name))
    throw new TopologyError(
      `${method}: parameter 'name' '${name}' is illegal; store names may contain only ASCII alphanumerics, '.', '_' and '-'`,
    )
  return name
}

function checkMs(method: string, parameter: string, v: unknown, min = 0): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min)
    throw new TopologyError(`${method}: parameter '${parameter}' must be a number of milliseconds >= ${min}`)
  return v
}

function base(name: string, type: StoreType, keySerde?: Serde<any>, valueSerde?: Serde<any>): StoreDef {
  return {
    name,
    type,
    ...(keySerde !== undefined ? { keySerde } : {}),
    ...(valueSerde !== undefined ? { valueSerde } : {}),
    loggingEnabled: true,
    logConfig: {},
    cachingEnabled: false,
    persistent: true,
  }
}

/** Factory of store builders (Kafka Streams: `Stores`). Caching is off by default, as in Kafka Streams' `Stores`. */
export const Stores = {
  /** A key-value store. Serdes may be undefined (= the application's defaults). */
  keyValueStoreBuilder<K, V>(name: string, keySerde?: Serde<K>, valueSerde?: Serde<V>): StoreBuilder<K, V> {
    return new StoreBuilder<K, V>(base(checkStoreName('Stores.keyValueStoreBuilder', name), 'keyValue', keySerde, valueSerde))
  },
  /** A key-value store whose values are `ValueAndTimestamp<V>`. */
  timestampedKeyValueStoreBuilder<K, V>(name: string, keySerde?: Serde<K>, valueSerde?: Serde<V>): StoreBuilder<K, V> {
    return new StoreBuilder<K, V>({
      ...base(checkStoreName('Stores.timestampedKeyValueStoreBuilder', name), 'keyValue', keySerde, valueSerde),
      timestamped: true,
    })
  },
  /**
   * A window store.
   * @param options.retentionMs how long windows are kept (>= windowSizeMs)
   * @param options.windowSizeMs window size
   * @param options.retainDuplicates keep every put (stream-stream join buffers) @defaultValue false
   */
  windowStoreBuilder<K, V>(
    name: string,
    options: { retentionMs: number; windowSizeMs: number; retainDuplicates?: boolean },
    keySerde?: Serde<K>,
    valueSerde?: Serde<V>,
  ): StoreBuilder<K, V> {
    const m = 'Stores.windowStoreBuilder'
    if (options === null || typeof options !== 'object')
      throw new TopologyError(`${m}: parameter 'options' must be { retentionMs, windowSizeMs }`)
    const retentionMs = checkMs(m, 'retentionMs', options.retentionMs)
    const windowSizeMs = checkMs(m, 'windowSizeMs', options.windowSizeMs, 1)
    if (retentionMs < windowSizeMs)
      throw new TopologyError(`${m}: parameter 'retentionMs' (${retentionMs}) must be >= 'windowSizeMs' (${windowSizeMs})`)
    return new StoreBuilder<K, V>({
      ...base(checkStoreName(m, name), 'window', keySerde, valueSerde),
      retentionMs,
      windowSizeMs,
      retainDuplicates: options.retainDuplicates ?? false,
    })
  },
  /** A session store keeping sessions for `retentionMs`. */
  sessionStoreBuilder<K, V>(
    name: string,
    options: { retentionMs: number },
    keySerde?: Serde<K>,
    valueSerde?: Serde<V>,
  ): StoreBuilder<K, V> {
    const m = 'Stores.sessionStoreBuilder'
    if (options === null || typeof options !== 'object') throw new TopologyError(`${m}: parameter 'options' must be { retentionMs }`)
    return new StoreBuilder<K, V>({
      ...base(checkStoreName(m, name), 'session', keySerde, valueSerde),
      retentionMs: checkMs(m, 'retentionMs', options.retentionMs),
    })
  },
  /**
   * A versioned key-value store on LevelDB keeping `historyRetentionMs` of history (Kafka Streams
   * KIP-889: `Stores.persistentVersionedKeyValueStore`). Give it to `Materialized.as(...)` for a
   * versioned KTable, or to {@link Stores.versionedKeyValueStoreBuilder} for the Processor API.
   * @throws TopologyError for an illegal name or a negative duration
   */
  persistentVersionedKeyValueStore(name: string, historyRetentionMs: number, segmentIntervalMs?: number): VersionedBytesStoreSupplier {
    return persistentVersionedKeyValueStore(name, historyRetentionMs, segmentIntervalMs)
  },
  /** A versioned key-value store for `addStateStore` (Kafka Streams: `Stores.versionedKeyValueStoreBuilder`); caching is not available. */
  versionedKeyValueStoreBuilder<K, V>(
    supplier: VersionedBytesStoreSupplier,
    keySerde?: Serde<K>,
    valueSerde?: Serde<V>,
  ): StoreBuilder<K, V> {
    const m = 'Stores.versionedKeyValueStoreBuilder'
    if (!isVersionedBytesStoreSupplier(supplier))
      throw new TopologyError(`${m}: parameter 'supplier' must come from Stores.persistentVersionedKeyValueStore`)
    return new StoreBuilder<K, V>({
      ...base(checkStoreName(m, supplier.name), 'keyValue', keySerde, valueSerde),
      versioned: { historyRetentionMs: supplier.historyRetentionMs, segmentIntervalMs: supplier.segmentIntervalMs },
    })
  },
} as const
