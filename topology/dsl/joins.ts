/**
 * Join options and joiner types (Kafka Streams: `Joined`, `StreamJoined`, `ValueJoiner`,
 * `ValueJoinerWithKey`, `KeyValueMapper`).
 *
 * Generic parameters follow Kafka Streams: `K` is the (shared) key, `V` the value of the stream
 * or table the join is called on ("this", the left side), `VO` the value of the other (right)
 * side, `VR` the joiner's result.
 *
 * All option objects are immutable: every `with*` returns a new object.
 */
import { TopologyError } from '../errors.js'
import type { Serde } from '../serde.js'

// ---------------------------------------------------------------------------------------------
// Joiner types
// ---------------------------------------------------------------------------------------------

/**
 * Computes a join result from the two joined values (Kafka Streams: `ValueJoiner<V1, V2, VR>`).
 *
 * For a left join the second argument is `null` when nothing matched; for an outer join either
 * argument may be `null` (never both). The DSL's method signatures put `| null` into `V1`/`V2`
 * where that can happen, so the compiler makes you handle it.
 */
export type ValueJoiner<V1, V2, VR> = (value1: V1, value2: V2) => VR

const WITH_KEY: unique symbol = Symbol.for('kstreams.ValueJoinerWithKey')

/**
 * A joiner that also sees the (read-only) join key (Kafka Streams: `ValueJoinerWithKey<K, V1, V2, VR>`,
 * KIP-149). Create one with {@link withKey}; a plain function is always treated as a
 * {@link ValueJoiner}. For a left/outer join of a record with a `null` key (KIP-962), `readOnlyKey`
 * is `null`.
 */
export interface ValueJoinerWithKey<K, V1, V2, VR> {
  (readOnlyKey: K, value1: V1, value2: V2): VR
  readonly [WITH_KEY]: true
}

/**
 * Marks a three-argument function as a {@link ValueJoinerWithKey}.
 *
 * @example
 * ```ts
 * clicks.join(impressions, withKey((adId, click, imp) => ({ adId, click, imp })), JoinWindows.ofTimeDifferenceWithNoGrace(60_000))
 * ```
 */
export function withKey<K, V1, V2, VR>(joiner: (readOnlyKey: K, value1: V1, value2: V2) => VR): ValueJoinerWithKey<K, V1, V2, VR> {
  if (typeof joiner !== 'function') throw new TopologyError('withKey: joiner must be a function')
  const fn = ((k: K, v1: V1, v2: V2) => joiner(k, v1, v2)) as ValueJoinerWithKey<K, V1, V2, VR>
  Object.defineProperty(fn, WITH_KEY, { value: true })
  return fn
}

/** Either kind of joiner. */
export type AnyValueJoiner<K, V1, V2, VR> = ValueJoiner<V1, V2, VR> | ValueJoinerWithKey<K, V1, V2, VR>

/** True if `joiner` was made by {@link withKey}. */
export function isValueJoinerWithKey<K, V1, V2, VR>(joiner: AnyValueJoiner<K, V1, V2, VR>): joiner is ValueJoinerWithKey<K, V1, V2, VR> {
  return typeof joiner === 'function' && (joiner as { [WITH_KEY]?: unknown })[WITH_KEY] === true
}

/**
 * Normalizes either joiner kind to `(key, v1, v2) => VR` (Kafka Streams: `toValueJoinerWithKey`).
 * @throws TopologyError naming `parameter` when `joiner` is not a function
 */
export function toJoinerWithKey<K, V1, V2, VR>(joiner: AnyValueJoiner<K, V1, V2, VR>, parameter = 'joiner'): (key: K, v1: V1, v2: V2) => VR {
  if (typeof joiner !== 'function') throw new TopologyError(`${parameter} must be a function (ValueJoiner or withKey(...))`)
  if (isValueJoinerWithKey(joiner)) return joiner
  const plain = joiner as ValueJoiner<V1, V2, VR>
  return (_key, v1, v2) => plain(v1, v2)
}

/** Swaps the value arguments of a joiner (Kafka Streams: `AbstractStream#reverseJoinerWithKey`). */
export function reverseJoiner<K, V1, V2, VR>(joiner: (key: K, v1: V1, v2: V2) => VR): (key: K, v2: V2, v1: V1) => VR {
  return (key, v2, v1) => joiner(key, v1, v2)
}

/**
 * Maps a stream record to the key to look up in a `GlobalKTable` (Kafka Streams: `KeyValueMapper`
 * as used by `KStream#join(GlobalKTable, KeyValueMapper, ValueJoiner)`). Returning `null` or
 * `undefined` means "no lookup": the record is dropped by an inner join and joined with `null` by a
 * left join.
 */
export type KeyValueMapper<K, V, R> = (key: K, value: V) => R

// ---------------------------------------------------------------------------------------------
// Joined (stream-table and table-table joins)
// ---------------------------------------------------------------------------------------------

/** Fields of {@link Joined}; every one optional. */
export interface JoinedConfig<K, V, VO> {
  /** Serde of the join key (used when the stream must be repartitioned). */
  readonly keySerde?: Serde<K>
  /** Serde of the stream's values (used when the stream must be repartitioned). */
  readonly valueSerde?: Serde<V>
  /** Serde of the table's values. */
  readonly otherValueSerde?: Serde<VO>
  /** Base name of the join processor (and of a repartition topic, if one is needed). */
  readonly name?: string
}

/**
 * Options of a stream-table join (Kafka Streams: `Joined<K, V, VO>`): serdes used to repartition
 * the stream side when its key was changed upstream, and a processor name.
 *
 * @example
 * ```ts
 * orders.join(customers, (o, c) => ({ ...o, customer: c }), Joined.with(Serdes.String(), orderSerde, customerSerde).withName('enrich'))
 * ```
 */
export class Joined<K, V, VO> implements JoinedConfig<K, V, VO> {
  readonly keySerde?: Serde<K>
  readonly valueSerde?: Serde<V>
  readonly otherValueSerde?: Serde<VO>
  readonly name?: string

  private constructor(config: JoinedConfig<K, V, VO>) {
    if (config.keySerde !== undefined) this.keySerde = config.keySerde
    if (config.valueSerde !== undefined) this.valueSerde = config.valueSerde
    if (config.otherValueSerde !== undefined) this.otherValueSerde = config.otherValueSerde
    if (config.name !== undefined) this.name = config.name
    Object.freeze(this)
  }

  /** Serdes for key, this side's value and the other side's value; any may be `undefined` (= default). */
  static with<K, V, VO>(keySerde?: Serde<K>, valueSerde?: Serde<V>, otherValueSerde?: Serde<VO>): Joined<K, V, VO> {
    return new Joined<K, V, VO>({ keySerde, valueSerde, otherValueSerde })
  }

  /**
   * Names the join processor (Kafka Streams: `Joined.as`).
   * @throws TopologyError naming `name` when empty
   */
  static as<K, V, VO>(name: string): Joined<K, V, VO> {
    return new Joined<K, V, VO>({ name: checkName('Joined.as', 'name', name) })
  }

  /** Only a key serde. */
  static keySerde<K, V, VO>(keySerde: Serde<K>): Joined<K, V, VO> {
    return new Joined<K, V, VO>({ keySerde })
  }

  /** Only this side's value serde. */
  static valueSerde<K, V, VO>(valueSerde: Serde<V>): Joined<K, V, VO> {
    return new Joined<K, V, VO>({ valueSerde })
  }

  /** Only the other side's value serde. */
  static otherValueSerde<K, V, VO>(otherValueSerde: Serde<VO>): Joined<K, V, VO> {
    return new Joined<K, V, VO>({ otherValueSerde })
  }

  withKeySerde(keySerde: Serde<K>): Joined<K, V, VO> {
    return new Joined<K, V, VO>({ ...this.config(), keySerde })
  }

  withValueSerde(valueSerde: Serde<V>): Joined<K, V, VO> {
    return new Joined<K, V, VO>({ ...this.config(), valueSerde })
  }

  withOtherValueSerde(otherValueSerde: Serde<VO>): Joined<K, V, VO> {
    return new Joined<K, V, VO>({ ...this.config(), otherValueSerde })
  }

  /** @throws TopologyError naming `name` when empty */
  withName(name: string): Joined<K, V, VO> {
    return new Joined<K, V, VO>({ ...this.config(), name: checkName('Joined.withName', 'name', name) })
  }

  private config(): JoinedConfig<K, V, VO> {
    return { keySerde: this.keySerde, valueSerde: this.valueSerde, otherValueSerde: this.otherValueSerde, name: this.name }
  }
}

// ---------------------------------------------------------------------------------------------
// StreamJoined (stream-stream joins)
// ---------------------------------------------------------------------------------------------

/** Fields of {@link StreamJoined}; every one optional. */
export interface StreamJoinedConfig<K, V, VO> {
  /** Serde of the key (join buffers, repartition topics). */
  readonly keySerde?: Serde<K>
  /** Serde of this (left) side's values. */
  readonly valueSerde?: Serde<V>
  /** Serde of the other (right) side's values. */
  readonly otherValueSerde?: Serde<VO>
  /** Base name of the processors (`<name>-this-join`, `<name>-other-join`, `<name>-merge`, ...). */
  readonly name?: string
  /** Base name of the stores (`<storeName>-this-join-store`, `<storeName>-other-join-store`, ...). */
  readonly storeName?: string
  /** Whether the join buffers are backed by changelog topics. @defaultValue true */
  readonly loggingEnabled?: boolean
  /** Extra topic configs of the changelog topics. */
  readonly logConfig?: Readonly<globalThis.Record<string, string>>
}

/**
 * Options of a stream-stream join (Kafka Streams: `StreamJoined<K, V1, V2>`, KIP-479): serdes of the
 * two join buffers, processor and store names, changelog settings.
 *
 * @example
 * ```ts
 * StreamJoined.with(Serdes.String(), impressionSerde, clickSerde).withStoreName('ad-join').withLoggingDisabled()
 * ```
 */
export class StreamJoined<K, V, VO> implements StreamJoinedConfig<K, V, VO> {
  readonly keySerde?: Serde<K>
  readonly valueSerde?: Serde<V>
  readonly otherValueSerde?: Serde<VO>
  readonly name?: string
  readonly storeName?: string
  readonly loggingEnabled: boolean
  readonly logConfig: Readonly<globalThis.Record<string, string>>

  private constructor(config: StreamJoinedConfig<K, V, VO>) {
    if (config.keySerde !== undefined) this.keySerde = config.keySerde
    if (config.valueSerde !== undefined) this.valueSerde = config.valueSerde
    if (config.otherValueSerde !== undefined) this.otherValueSerde = config.otherValueSerde
    if (config.name !== undefined) this.name = config.name
    if (config.storeName !== undefined) this.storeName = config.storeName
    this.loggingEnabled = config.loggingEnabled ?? true
    this.logConfig = Object.freeze({ ...(config.logConfig ?? {}) })
    Object.freeze(this)
  }

  /** Serdes for key, this side's value and the other side's value; any may be `undefined` (= default). */
  static with<K, V, VO>(keySerde?: Serde<K>, valueSerde?: Serde<V>, otherValueSerde?: Serde<VO>): StreamJoined<K, V, VO> {
    return new StreamJoined<K, V, VO>({ keySerde, valueSerde, otherValueSerde })
  }

  /**
   * Base name of the join's stores (Kafka Streams: `StreamJoined.as(storeName)`).
   * @throws TopologyError naming `storeName` when empty
   */
  static as<K, V, VO>(storeName: string): StreamJoined<K, V, VO> {
    return new StreamJoined<K, V, VO>({ storeName: checkName('StreamJoined.as', 'storeName', storeName) })
  }

  withKeySerde(keySerde: Serde<K>): StreamJoined<K, V, VO> {
    return new StreamJoined<K, V, VO>({ ...this.config(), keySerde })
  }

  withValueSerde(valueSerde: Serde<V>): StreamJoined<K, V, VO> {
    return new StreamJoined<K, V, VO>({ ...this.config(), valueSerde })
  }

  withOtherValueSerde(otherValueSerde: Serde<VO>): StreamJoined<K, V, VO> {
    return new StreamJoined<K, V, VO>({ ...this.config(), otherValueSerde })
  }

  /**
   * Base name of the join's processors.
   * @throws TopologyError naming `name` when empty
   */
  withName(name: string): StreamJoined<K, V, VO> {
    return new StreamJoined<K, V, VO>({ ...this.config(), name: checkName('StreamJoined.withName', 'name', name) })
  }

  /**
   * Base name of the join's stores (and so of their changelog topics).
   * @throws TopologyError naming `storeName` when empty
   */
  withStoreName(storeName: string): StreamJoined<K, V, VO> {
    return new StreamJoined<K, V, VO>({ ...this.config(), storeName: checkName('StreamJoined.withStoreName', 'storeName', storeName) })
  }

  /** Backs the join buffers with changelog topics (the default), with extra topic configs. */
  withLoggingEnabled(logConfig: Readonly<globalThis.Record<string, string>> = {}): StreamJoined<K, V, VO> {
    return new StreamJoined<K, V, VO>({ ...this.config(), loggingEnabled: true, logConfig })
  }

  /** No changelog topics for the join buffers: after a failover the buffers start empty. */
  withLoggingDisabled(): StreamJoined<K, V, VO> {
    return new StreamJoined<K, V, VO>({ ...this.config(), loggingEnabled: false, logConfig: {} })
  }

  private config(): StreamJoinedConfig<K, V, VO> {
    return {
      keySerde: this.keySerde,
      valueSerde: this.valueSerde,
      otherValueSerde: this.otherValueSerde,
      name: this.name,
      storeName: this.storeName,
      loggingEnabled: this.loggingEnabled,
      logConfig: this.logConfig,
    }
  }
}

function checkName(where: string, parameter: string, name: string): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new TopologyError(`${where}: ${parameter} must be a non-empty string`)
  }
  if (!/^[a-zA-Z0-9._-]+$/.test(name)) {
    throw new TopologyError(`${where}: ${parameter} '${name}' may contain only ASCII letters, digits, '.', '_' and '-'`)
  }
  return name
}
