/**
 * DSL option objects (Kafka Streams: `Consumed`, `Produced`, `Grouped`, `Materialized`, `Named`,
 * `Repartitioned`, `Printed`).
 *
 * Every DSL method takes the plain `*Config` interface, so both styles work:
 * `Consumed.with(Serdes.String(), Serdes.Long())` and `{ keySerde: Serdes.String(), valueSerde: Serdes.Long() }`.
 * The classes are immutable: every `with*` returns a new object. Type parameters `K`, `V` are
 * carried through, so a `Materialized<string, number>` cannot be passed where a
 * `Materialized<string, Order>` is expected.
 */
import { TopologyError } from '../errors.js'
import type { Serde } from '../serde.js'
import type { StreamPartitioner, TimestampExtractor } from '../processor/types.js'
import { isVersionedBytesStoreSupplier, type VersionedBytesStoreSupplier, type VersionedStoreOptions } from '../state/versioned.js'

/**
 * A {@link StreamPartitioner} accepted bivariantly in its value type, so that `Produced<K, V>`
 * fits a stream of `V | null` (e.g. `KTable.toStream()`, whose tombstones the serdes pass through).
 */
export type PartitionerOption<K, V> = {
  bivarianceHack(topic: string, key: K, value: V, numPartitions: number): number | undefined
}['bivarianceHack']

function checkName(method: string, name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) throw new TopologyError(`${method}: parameter 'name' must be a non-empty string`)
  if (name.length > 249 || !/^[a-zA-Z0-9._-]+$/.test(name)) {
    throw new TopologyError(
      `${method}: parameter 'name' '${name}' is illegal; names may contain only ASCII alphanumerics, '.', '_' and '-', at most 249 characters`,
    )
  }
  return name
}

function strip<T extends object>(o: T): T {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v
  return out as T
}

/** Validates an optional user-supplied processor/topic/store name. */
export function checkOptionalName(method: string, name: string | undefined): string | undefined {
  return name === undefined ? undefined : checkName(method, name)
}

// ---------------------------------------------------------------------------------------------
// Named
// ---------------------------------------------------------------------------------------------

/** Fields of {@link Named}. */
export interface NamedConfig {
  /** Processor name replacing the generated `PREFIX-0000000007`. */
  readonly name?: string
}

/** Names a processor (Kafka Streams: `Named`). */
export class Named implements NamedConfig {
  readonly name?: string
  private constructor(name?: string) {
    if (name !== undefined) this.name = name
    Object.freeze(this)
  }
  /** @throws TopologyError for an empty or illegal name */
  static as(name: string): Named {
    return new Named(checkName('Named.as', name))
  }
}

// ---------------------------------------------------------------------------------------------
// Consumed
// ---------------------------------------------------------------------------------------------

/** Fields of {@link Consumed}. */
export interface ConsumedConfig<K, V> {
  readonly keySerde?: Serde<K>
  readonly valueSerde?: Serde<V>
  /** Event time of each record. @defaultValue the record's timestamp */
  readonly timestampExtractor?: TimestampExtractor<K, V>
  /** Where to start without a committed offset. @defaultValue the app's `autoOffsetReset` */
  readonly offsetReset?: 'earliest' | 'latest'
  /** Source processor name. */
  readonly name?: string
}

/** How a topic is read (Kafka Streams: `Consumed<K, V>`). */
export class Consumed<K, V> implements ConsumedConfig<K, V> {
  readonly keySerde?: Serde<K>
  readonly valueSerde?: Serde<V>
  readonly timestampExtractor?: TimestampExtractor<K, V>
  readonly offsetReset?: 'earliest' | 'latest'
  readonly name?: string
  private constructor(c: ConsumedConfig<K, V>) {
    Object.assign(this, strip(c))
    Object.freeze(this)
  }
  /** Serdes (either may be undefined = the app's default serde). */
  static with<K, V>(
    keySerde?: Serde<K>,
    valueSerde?: Serde<V>,
    timestampExtractor?: TimestampExtractor<K, V>,
    offsetReset?: 'earliest' | 'latest',
  ): Consumed<K, V> {
    return new Consumed<K, V>({ keySerde, valueSerde, timestampExtractor, offsetReset })
  }
  /** Names the source processor. */
  static as<K, V>(name: string): Consumed<K, V> {
    return new Consumed<K, V>({ name: checkName('Consumed.as', name) })
  }
  static withTimestampExtractor<K, V>(extractor: TimestampExtractor<K, V>): Consumed<K, V> {
    return new Consumed<K, V>({ timestampExtractor: extractor })
  }
  static withOffsetResetPolicy<K, V>(policy: 'earliest' | 'latest'): Consumed<K, V> {
    return new Consumed<K, V>({ offsetReset: policy })
  }
  withKeySerde<K2>(keySerde: Serde<K2>): Consumed<K2, V> {
    return new Consumed<K2, V>({ ...(this as ConsumedConfig<any, V>), keySerde })
  }
  withValueSerde<V2>(valueSerde: Serde<V2>): Consumed<K, V2> {
    return new Consumed<K, V2>({ ...(this as ConsumedConfig<K, any>), valueSerde })
  }
  withTimestampExtractor(timestampExtractor: TimestampExtractor<K, V>): Consumed<K, V> {
    return new Consumed<K, V>({ ...this, timestampExtractor })
  }
  withOffsetResetPolicy(offsetReset: 'earliest' | 'latest'): Consumed<K, V> {
    return new Consumed<K, V>({ ...this, offsetReset })
  }
  withName(name: string): Consumed<K, V> {
    return new Consumed<K, V>({ ...this, name: checkName('Consumed.withName', name) })
  }
}

// ---------------------------------------------------------------------------------------------
// Produced
// ---------------------------------------------------------------------------------------------

/** Fields of {@link Produced}. */
export interface ProducedConfig<K, V> {
  readonly keySerde?: Serde<K>
  readonly valueSerde?: Serde<V>
  /** Output partition per record. @defaultValue murmur2 of the serialized key */
  readonly partitioner?: PartitionerOption<K, V>
  /** Sink processor name. */
  readonly name?: string
}

/** How records are written (Kafka Streams: `Produced<K, V>`). */
export class Produced<K, V> implements ProducedConfig<K, V> {
  readonly keySerde?: Serde<K>
  readonly valueSerde?: Serde<V>
  readonly partitioner?: PartitionerOption<K, V>
  readonly name?: string
  private constructor(c: ProducedConfig<K, V>) {
    Object.assign(this, strip(c))
    Object.freeze(this)
  }
  static with<K, V>(keySerde?: Serde<K>, valueSerde?: Serde<V>, partitioner?: StreamPartitioner<K, V>): Produced<K, V> {
    return new Produced<K, V>({ keySerde, valueSerde, partitioner })
  }
  static as<K, V>(name: string): Produced<K, V> {
    return new Produced<K, V>({ name: checkName('Produced.as', name) })
  }
  static keySerde<K, V>(keySerde: Serde<K>): Produced<K, V> {
    return new Produced<K, V>({ keySerde })
  }
  static valueSerde<K, V>(valueSerde: Serde<V>): Produced<K, V> {
    return new Produced<K, V>({ valueSerde })
  }
  static streamPartitioner<K, V>(partitioner: StreamPartitioner<K, V>): Produced<K, V> {
    return new Produced<K, V>({ partitioner })
  }
  withKeySerde(keySerde: Serde<K>): Produced<K, V> {
    return new Produced<K, V>({ ...this, keySerde })
  }
  withValueSerde(valueSerde: Serde<V>): Produced<K, V> {
    return new Produced<K, V>({ ...this, valueSerde })
  }
  withStreamPartitioner(partitioner: StreamPartitioner<K, V>): Produced<K, V> {
    return new Produced<K, V>({ ...this, partitioner })
  }
  withName(name: string): Produced<K, V> {
    return new Produced<K, V>({ ...this, name: checkName('Produced.withName', name) })
  }
}

// ---------------------------------------------------------------------------------------------
// Grouped
// ---------------------------------------------------------------------------------------------

/** Fields of {@link Grouped}. */
export interface GroupedConfig<K, V> {
  /** Serde of the grouping key (needed again after a key change: the old serde is dropped). */
  readonly keySerde?: Serde<K>
  readonly valueSerde?: Serde<V>
  /** Base name of the repartition topic (`<name>-repartition`) and its processors. */
  readonly name?: string
}

/** How a stream is grouped (Kafka Streams: `Grouped<K, V>`). */
export class Grouped<K, V> implements GroupedConfig<K, V> {
  readonly keySerde?: Serde<K>
  readonly valueSerde?: Serde<V>
  readonly name?: string
  private constructor(c: GroupedConfig<K, V>) {
    Object.assign(this, strip(c))
    Object.freeze(this)
  }
  static with<K, V>(keySerde?: Serde<K>, valueSerde?: Serde<V>): Grouped<K, V> {
    return new Grouped<K, V>({ keySerde, valueSerde })
  }
  static as<K, V>(name: string): Grouped<K, V> {
    return new Grouped<K, V>({ name: checkName('Grouped.as', name) })
  }
  static keySerde<K, V>(keySerde: Serde<K>): Grouped<K, V> {
    return new Grouped<K, V>({ keySerde })
  }
  static valueSerde<K, V>(valueSerde: Serde<V>): Grouped<K, V> {
    return new Grouped<K, V>({ valueSerde })
  }
  withKeySerde(keySerde: Serde<K>): Grouped<K, V> {
    return new Grouped<K, V>({ ...this, keySerde })
  }
  withValueSerde(valueSerde: Serde<V>): Grouped<K, V> {
    return new Grouped<K, V>({ ...this, valueSerde })
  }
  withName(name: string): Grouped<K, V> {
    return new Grouped<K, V>({ ...this, name: checkName('Grouped.withName', name) })
  }
}

// ---------------------------------------------------------------------------------------------
// Repartitioned
// ---------------------------------------------------------------------------------------------

/** Fields of {@link Repartitioned}. */
export interface RepartitionedConfig<K, V> {
  readonly keySerde?: Serde<K>
  readonly valueSerde?: Serde<V>
  /** Base name of the repartition topic. @defaultValue generated `KSTREAM-REPARTITION-0000000004` */
  readonly name?: string
  /** Partition count of the repartition topic. @defaultValue as the upstream source topics */
  readonly numberOfPartitions?: number
  readonly partitioner?: PartitionerOption<K, V>
}

/** An explicit repartition (Kafka Streams: `Repartitioned<K, V>`, KIP-221). */
export class Repartitioned<K, V> implements RepartitionedConfig<K, V> {
  readonly keySerde?: Serde<K>
  readonly valueSerde?: Serde<V>
  readonly name?: string
  readonly numberOfPartitions?: number
  readonly partitioner?: PartitionerOption<K, V>
  private constructor(c: RepartitionedConfig<K, V>) {
    Object.assign(this, strip(c))
    Object.freeze(this)
  }
  static with<K, V>(keySerde?: Serde<K>, valueSerde?: Serde<V>): Repartitioned<K, V> {
    return new Repartitioned<K, V>({ keySerde, valueSerde })
  }
  static as<K, V>(name: string): Repartitioned<K, V> {
    return new Repartitioned<K, V>({ name: checkName('Repartitioned.as', name) })
  }
  static numberOfPartitions<K, V>(n: number): Repartitioned<K, V> {
    return new Repartitioned<K, V>({ numberOfPartitions: n })
  }
  static streamPartitioner<K, V>(partitioner: StreamPartitioner<K, V>): Repartitioned<K, V> {
    return new Repartitioned<K, V>({ partitioner })
  }
  withKeySerde(keySerde: Serde<K>): Repartitioned<K, V> {
    return new Repartitioned<K, V>({ ...this, keySerde })
  }
  withValueSerde(valueSerde: Serde<V>): Repartitioned<K, V> {
    return new Repartitioned<K, V>({ ...this, valueSerde })
  }
  withName(name: string): Repartitioned<K, V> {
    return new Repartitioned<K, V>({ ...this, name: checkName('Repartitioned.withName', name) })
  }
  withNumberOfPartitions(numberOfPartitions: number): Repartitioned<K, V> {
    return new Repartitioned<K, V>({ ...this, numberOfPartitions })
  }
  withStreamPartitioner(partitioner: StreamPartitioner<K, V>): Repartitioned<K, V> {
    return new Repartitioned<K, V>({ ...this, partitioner })
  }
}

// ---------------------------------------------------------------------------------------------
// Materialized
// ---------------------------------------------------------------------------------------------

/** Fields of {@link Materialized}. */
export interface MaterializedConfig<K, V> {
  /** Store name; also makes the store queryable. @defaultValue generated `...-STATE-STORE-0000000005` */
  readonly storeName?: string
  readonly keySerde?: Serde<K>
  readonly valueSerde?: Serde<V>
  /** Changelog topic. @defaultValue true */
  readonly loggingEnabled?: boolean
  /** Extra changelog topic configs. */
  readonly logConfig?: Readonly<Record<string, string>>
  /** Cache writes until commit. @defaultValue true */
  readonly cachingEnabled?: boolean
  /** Window/session stores: retention in milliseconds. @defaultValue window size + grace (at least 1 day) */
  readonly retentionMs?: number
  /** 'persistent' (LevelDB) or 'inMemory'. @defaultValue 'persistent' */
  readonly storeType?: 'persistent' | 'inMemory'
  /**
   * A versioned store (KIP-889), set by `Materialized.as(Stores.persistentVersionedKeyValueStore(...))`:
   * tables keep history and serve lookups as of a timestamp; caching does not apply.
   */
  readonly versioned?: VersionedStoreOptions
}

/** How a table/aggregate is stored (Kafka Streams: `Materialized<K, V, S>`). */
export class Materialized<K, V> implements MaterializedConfig<K, V> {
  readonly storeName?: string
  readonly keySerde?: Serde<K>
  readonly valueSerde?: Serde<V>
  readonly loggingEnabled?: boolean
  readonly logConfig?: Readonly<Record<string, string>>
  readonly cachingEnabled?: boolean
  readonly retentionMs?: number
  readonly storeType?: 'persistent' | 'inMemory'
  /** Set by `Materialized.as(versionedStoreSupplier)`: a versioned store (KIP-889). */
  readonly versioned?: VersionedStoreOptions
  private constructor(c: MaterializedConfig<K, V>) {
    Object.assign(this, strip(c))
    Object.freeze(this)
  }
  /**
   * A named (queryable) store; with a versioned store supplier
   * (`Stores.persistentVersionedKeyValueStore(name, historyRetentionMs)`), a versioned table (KIP-889).
   */
  static as<K, V>(storeNameOrSupplier: string | VersionedBytesStoreSupplier): Materialized<K, V> {
    if (isVersionedBytesStoreSupplier(storeNameOrSupplier)) {
      const { name, historyRetentionMs, segmentIntervalMs } = storeNameOrSupplier
      return new Materialized<K, V>({ storeName: checkName('Materialized.as', name), versioned: { historyRetentionMs, segmentIntervalMs } })
    }
    return new Materialized<K, V>({ storeName: checkName('Materialized.as', storeNameOrSupplier) })
  }
  /** Serdes only (store name generated). */
  static with<K, V>(keySerde?: Serde<K>, valueSerde?: Serde<V>): Materialized<K, V> {
    return new Materialized<K, V>({ keySerde, valueSerde })
  }
  withKeySerde(keySerde: Serde<K>): Materialized<K, V> {
    return new Materialized<K, V>({ ...this, keySerde })
  }
  withValueSerde(valueSerde: Serde<V>): Materialized<K, V> {
    return new Materialized<K, V>({ ...this, valueSerde })
  }
  withLoggingEnabled(logConfig: Readonly<Record<string, string>> = {}): Materialized<K, V> {
    return new Materialized<K, V>({ ...this, loggingEnabled: true, logConfig })
  }
  withLoggingDisabled(): Materialized<K, V> {
    return new Materialized<K, V>({ ...this, loggingEnabled: false })
  }
  withCachingEnabled(): Materialized<K, V> {
    return new Materialized<K, V>({ ...this, cachingEnabled: true })
  }
  withCachingDisabled(): Materialized<K, V> {
    return new Materialized<K, V>({ ...this, cachingEnabled: false })
  }
  /** Window/session stores: retention, milliseconds (must be >= window size + grace). */
  withRetention(retentionMs: number): Materialized<K, V> {
    if (!Number.isFinite(retentionMs) || retentionMs < 0)
      throw new TopologyError(`Materialized.withRetention: parameter 'retentionMs' must be a non-negative number of milliseconds`)
    return new Materialized<K, V>({ ...this, retentionMs })
  }
  withStoreType(storeType: 'persistent' | 'inMemory'): Materialized<K, V> {
    return new Materialized<K, V>({ ...this, storeType })
  }
}

// ---------------------------------------------------------------------------------------------
// Printed
// ---------------------------------------------------------------------------------------------

/** Fields of {@link Printed}. */
export interface PrintedConfig<K, V> {
  /** Where lines go. @defaultValue `console.log` */
  readonly writer?: (line: string) => void
  /** Prefix `[label]: `. @defaultValue the processor name */
  readonly label?: string
  /** Formats one record. @defaultValue `${key}, ${value}` */
  readonly mapper?: (key: K, value: V) => string
  readonly name?: string
}

/** Prints records (Kafka Streams: `Printed`), for debugging. */
export class Printed<K, V> implements PrintedConfig<K, V> {
  readonly writer?: (line: string) => void
  readonly label?: string
  readonly mapper?: (key: K, value: V) => string
  readonly name?: string
  private constructor(c: PrintedConfig<K, V>) {
    Object.assign(this, strip(c))
    Object.freeze(this)
  }
  static toSysOut<K, V>(): Printed<K, V> {
    return new Printed<K, V>({})
  }
  static toWriter<K, V>(writer: (line: string) => void): Printed<K, V> {
    return new Printed<K, V>({ writer })
  }
  withLabel(label: string): Printed<K, V> {
    return new Printed<K, V>({ ...this, label })
  }
  withKeyValueMapper(mapper: (key: K, value: V) => string): Printed<K, V> {
    return new Printed<K, V>({ ...this, mapper })
  }
  withName(name: string): Printed<K, V> {
    return new Printed<K, V>({ ...this, name: checkName('Printed.withName', name) })
  }
}
