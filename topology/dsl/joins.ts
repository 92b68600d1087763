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
import { Serdes, type Serde } from '../serde.js'
import type { StoreDef } from '../state/types.js'
import type { InternalTopologyBuilder } from '../internals/internal-topology-builder.js'
import { passThroughSupplier } from '../processors/stateless.js'
import type { JoinWindows } from './windows.js'
import type { MaterializedConfig, NamedConfig } from './options.js'
import { addLateRecordsSink, checkLateRecords, lateRecordsTarget, type LateRecordsConfig } from './late-records.js'
import type { EmitUnmatched } from './emit-unmatched.js'
export { JOIN_RETRACTION_HEADERS, type EmitUnmatched } from './emit-unmatched.js'
import { nameOrGenerate, resolveMaterialized, storeDefFrom } from './materialize.js'
import type { KStream } from './kstream.js'
import { KTable, type TableOrigin } from './ktable.js'
import { storeValueGetterSupplier, type KTableValueGetterSupplier, type TableNodeFlags } from '../processors/table.js'
import { outerJoinKeySerde, outerJoinValuesSerde } from '../processors/joins/outer-join-store.js'
import {
  JoinTimeTrackers,
  joinWindowProcessorSupplier,
  streamStreamJoinProcessorSupplier,
  type JoinWindowSpec,
} from '../processors/joins/stream-stream.js'
import { streamTableJoinProcessorSupplier } from '../processors/joins/stream-table.js'
import {
  tableJoinMergeSupplier,
  tableTableJoinProcessorSupplier,
  tableTableJoinValueGetterSupplier,
  type TableJoinMergeFlags,
} from '../processors/joins/table-table.js'

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

/**
 * A joiner that also sees the (read-only) join key (Kafka Streams: `ValueJoinerWithKey<K, V1, V2, VR>`,
 * KIP-149). Create one with {@link withKey}; a plain function is always treated as a
 * {@link ValueJoiner}. (It is an object, not a function, so that a plain joiner's parameters are
 * still inferred from the join's types.) For a left/outer join of a record with a `null` key
 * (KIP-962), `readOnlyKey` is `null`.
 */
export interface ValueJoinerWithKey<K, V1, V2, VR> {
  readonly kind: 'ValueJoinerWithKey'
  readonly apply: (readOnlyKey: K, value1: V1, value2: V2) => VR
}

/**
 * Wraps a three-argument function as a {@link ValueJoinerWithKey}.
 *
 * @example
 * ```ts
 * clicks.join(impressions, withKey((adId, click, imp) => ({ adId, click, imp })), JoinWindows.ofTimeDifferenceWithNoGrace(60_000))
 * ```
 * @throws TopologyError when `joiner` is not a function
 */
export function withKey<K, V1, V2, VR>(joiner: (readOnlyKey: K, value1: V1, value2: V2) => VR): ValueJoinerWithKey<K, V1, V2, VR> {
  if (typeof joiner !== 'function') throw new TopologyError("withKey: parameter 'joiner' must be a function")
  return Object.freeze({ kind: 'ValueJoinerWithKey' as const, apply: joiner })
}

/** Either kind of joiner. */
export type AnyValueJoiner<K, V1, V2, VR> = ValueJoiner<V1, V2, VR> | ValueJoinerWithKey<K, V1, V2, VR>

/** True if `joiner` was made by {@link withKey}. */
export function isValueJoinerWithKey<K, V1, V2, VR>(joiner: AnyValueJoiner<K, V1, V2, VR>): joiner is ValueJoinerWithKey<K, V1, V2, VR> {
  return (
    typeof joiner === 'object' &&
    joiner !== null &&
    (joiner as ValueJoinerWithKey<K, V1, V2, VR>).kind === 'ValueJoinerWithKey' &&
    typeof (joiner as ValueJoinerWithKey<K, V1, V2, VR>).apply === 'function'
  )
}

/**
 * Normalizes either joiner kind to `(key, v1, v2) => VR` (Kafka Streams: `toValueJoinerWithKey`).
 * @throws TopologyError naming `parameter` when `joiner` is neither a function nor made by {@link withKey}
 */
export function toJoinerWithKey<K, V1, V2, VR>(
  joiner: AnyValueJoiner<K, V1, V2, VR>,
  parameter = 'joiner',
): (key: K, v1: V1, v2: V2) => VR {
  if (isValueJoinerWithKey(joiner)) return joiner.apply
  if (typeof joiner !== 'function') throw new TopologyError(`parameter '${parameter}' must be a function (ValueJoiner) or withKey(...)`)
  const plain = joiner
  return (_key, v1, v2) => plain(v1, v2)
}

/** Swaps the value arguments of a joiner (Kafka Streams: `AbstractStream#reverseJoinerWithKey`). */
export function reverseJoiner<K, V1, V2, VR>(joiner: (key: K, v1: V1, v2: V2) => VR): (key: K, v2: V2, v1: V1) => VR {
  return (key, v2, v1) => joiner(key, v1, v2)
}

/**
 * Maps a stream record to the key to look up in a `GlobalKTable` (Kafka Streams: `KeyValueMapper`
 * as used by `KStream#join(GlobalKTable, KeyValueMapper, ValueJoiner)`). A record whose mapped key
 * is `null`/`undefined` is dropped and counted, by inner and left joins alike (as in Kafka Streams);
 * only a left join's record with a `null` stream key is still joined (KIP-962).
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
  /**
   * Grace period of the stream side, milliseconds (KIP-923): see {@link Joined.withGracePeriod}.
   * @defaultValue none (each stream record is joined when it arrives)
   */
  readonly gracePeriodMs?: number
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
  readonly gracePeriodMs?: number

  private constructor(config: JoinedConfig<K, V, VO>) {
    if (config.keySerde !== undefined) this.keySerde = config.keySerde
    if (config.valueSerde !== undefined) this.valueSerde = config.valueSerde
    if (config.otherValueSerde !== undefined) this.otherValueSerde = config.otherValueSerde
    if (config.name !== undefined) this.name = config.name
    if (config.gracePeriodMs !== undefined) this.gracePeriodMs = config.gracePeriodMs
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

  /**
   * Delays the stream side by `gracePeriodMs` of stream-time (Kafka Streams KIP-923): stream
   * records wait in a buffer store (`<join processor>-Buffer`) and are joined in timestamp order
   * once stream-time has passed them by the grace, each with the table's value as of its own
   * timestamp, so table updates arriving out of order within the grace are seen. Records already
   * older than stream-time minus the grace are joined at once. The table must be versioned
   * (`Materialized.as(Stores.persistentVersionedKeyValueStore(...))`) with a history retention of
   * at least the grace.
   * @throws TopologyError for a negative or non-finite grace
   */
  withGracePeriod(gracePeriodMs: number): Joined<K, V, VO> {
    if (typeof gracePeriodMs !== 'number' || !Number.isFinite(gracePeriodMs) || gracePeriodMs < 0)
      throw new TopologyError(`Joined.withGracePeriod: parameter 'gracePeriodMs' must be a number of milliseconds >= 0`)
    return new Joined<K, V, VO>({ ...this.config(), gracePeriodMs })
  }

  private config(): JoinedConfig<K, V, VO> {
    return {
      keySerde: this.keySerde,
      valueSerde: this.valueSerde,
      otherValueSerde: this.otherValueSerde,
      name: this.name,
      ...(this.gracePeriodMs !== undefined ? { gracePeriodMs: this.gracePeriodMs } : {}),
    }
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
  /**
   * What happens to a record that arrives after its join window plus grace closed:
   * - `'join'` (Kafka Streams' behaviour): it is still joined with the other side's records as long
   *   as the other side's buffer retains them (retention `before + after + grace`, by that buffer's
   *   own stream-time), and a left/outer record without a match is emitted with `null` at once;
   * - `'drop'`: it is dropped and counted (`dropped-records`), neither joined nor buffered, so a
   *   left/outer join never emits a match after the record's `null` result.
   * @defaultValue 'join'
   */
  readonly lateRecords?: 'join' | 'drop'
  /**
   * Side topics for the records of each side dropped as late (a kstreams extension): see
   * {@link StreamJoined.withLateRecords}. Requires the `'drop'` policy (the default when set).
   */
  readonly lateRecordsTo?: StreamJoinedLateRecords<K, V, VO>
  /**
   * When a left/outer join emits a record without a match (see {@link EmitUnmatched}).
   * @defaultValue 'onWindowClose'
   */
  readonly emitUnmatched?: EmitUnmatched
}

/** The side topics of {@link StreamJoinedConfig.lateRecordsTo}; a side without one only counts its late records. */
export interface StreamJoinedLateRecords<K, V, VO> {
  /** Late records of this stream (the one the join is called on). */
  readonly thisSide?: LateRecordsConfig<K, V>
  /** Late records of the other stream. */
  readonly otherSide?: LateRecordsConfig<K, VO>
}

/**
 * A stream-stream join config whose left/outer results include retractions (`null` values):
 * what {@link StreamJoined.withEmitUnmatched}`('eagerWithRetraction')` returns. Joins given one
 * return `KStream<K, VR | null>`.
 */
export type RetractingStreamJoinedConfig<K, V, VO> = StreamJoinedConfig<K, V, VO> & { readonly emitUnmatched: 'eagerWithRetraction' }

/**
 * Options of a stream-stream join (Kafka Streams: `StreamJoined<K, V1, V2>`, KIP-479): serdes of the
 * two join buffers, processor and store names, changelog settings.
 *
 * @example
 * ```ts
 * StreamJoined.with(Serdes.String(), impressionSerde, clickSerde).withStoreName('ad-join').withLoggingDisabled()
 * ```
 */
export class StreamJoined<K, V, VO, E extends EmitUnmatched = EmitUnmatched> implements StreamJoinedConfig<K, V, VO> {
  readonly keySerde?: Serde<K>
  readonly valueSerde?: Serde<V>
  readonly otherValueSerde?: Serde<VO>
  readonly name?: string
  readonly storeName?: string
  readonly loggingEnabled: boolean
  readonly logConfig: Readonly<globalThis.Record<string, string>>
  readonly lateRecords?: 'join' | 'drop'
  readonly lateRecordsTo?: StreamJoinedLateRecords<K, V, VO>
  /** The emission policy; typed as the one literal chosen by {@link withEmitUnmatched}, so joins know their result type. */
  readonly emitUnmatched: EmitUnmatched extends E ? EmitUnmatched | undefined : E

  private constructor(config: StreamJoinedConfig<K, V, VO>) {
    if (config.keySerde !== undefined) this.keySerde = config.keySerde
    if (config.valueSerde !== undefined) this.valueSerde = config.valueSerde
    if (config.otherValueSerde !== undefined) this.otherValueSerde = config.otherValueSerde
    if (config.name !== undefined) this.name = config.name
    if (config.storeName !== undefined) this.storeName = config.storeName
    this.loggingEnabled = config.loggingEnabled ?? true
    this.logConfig = Object.freeze({ ...(config.logConfig ?? {}) })
    if (config.lateRecords !== undefined) this.lateRecords = config.lateRecords
    if (config.lateRecordsTo !== undefined) this.lateRecordsTo = config.lateRecordsTo
    this.emitUnmatched = config.emitUnmatched as EmitUnmatched extends E ? EmitUnmatched | undefined : E
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

  withKeySerde(keySerde: Serde<K>): StreamJoined<K, V, VO, E> {
    return new StreamJoined<K, V, VO, E>({ ...this.config(), keySerde })
  }

  withValueSerde(valueSerde: Serde<V>): StreamJoined<K, V, VO, E> {
    return new StreamJoined<K, V, VO, E>({ ...this.config(), valueSerde })
  }

  withOtherValueSerde(otherValueSerde: Serde<VO>): StreamJoined<K, V, VO, E> {
    return new StreamJoined<K, V, VO, E>({ ...this.config(), otherValueSerde })
  }

  /**
   * Base name of the join's processors.
   * @throws TopologyError naming `name` when empty
   */
  withName(name: string): StreamJoined<K, V, VO, E> {
    return new StreamJoined<K, V, VO, E>({ ...this.config(), name: checkName('StreamJoined.withName', 'name', name) })
  }

  /**
   * Base name of the join's stores (and so of their changelog topics).
   * @throws TopologyError naming `storeName` when empty
   */
  withStoreName(storeName: string): StreamJoined<K, V, VO, E> {
    return new StreamJoined<K, V, VO, E>({ ...this.config(), storeName: checkName('StreamJoined.withStoreName', 'storeName', storeName) })
  }

  /** Backs the join buffers with changelog topics (the default), with extra topic configs. */
  withLoggingEnabled(logConfig: Readonly<globalThis.Record<string, string>> = {}): StreamJoined<K, V, VO, E> {
    return new StreamJoined<K, V, VO, E>({ ...this.config(), loggingEnabled: true, logConfig })
  }

  /** No changelog topics for the join buffers: after a failover the buffers start empty. */
  withLoggingDisabled(): StreamJoined<K, V, VO, E> {
    return new StreamJoined<K, V, VO, E>({ ...this.config(), loggingEnabled: false, logConfig: {} })
  }

  /**
   * What happens to records arriving after their join window plus grace closed (see
   * {@link StreamJoinedConfig.lateRecords}): `'join'` (the default, as Kafka Streams) or `'drop'`.
   * A kstreams extension; Kafka Streams has no such option.
   * @throws TopologyError naming `lateRecords` when neither
   */
  withLateRecords(lateRecords: 'join' | 'drop'): StreamJoined<K, V, VO, E>
  /**
   * Drops late records (the `'drop'` policy) and sends them to side topics: `thisSide` gets the
   * late records of this stream, `otherSide` those of the other stream (`null`/omitted: that
   * side's late records are only counted). A record is late when its join window plus grace has
   * closed: a record of this stream at `t` when `t + after + grace < stream-time`, of the other
   * stream when `t + before + grace < stream-time`. It keeps its key, value, timestamp and
   * headers and gets the headers of `LATE_RECORD_HEADERS`: processor (the side's join processor),
   * window (its join window `[t - before, t + after]` as seen from its side), stream-time,
   * lateness and `kstreams.late.join-side` (`this` / `other`). Sent through the task's record
   * collector: under exactly-once in the same transaction. Still counted in `dropped-records`.
   * @throws TopologyError when a side has no topic
   */
  withLateRecords(thisSide: LateRecordsConfig<K, V> | null, otherSide?: LateRecordsConfig<K, VO> | null): StreamJoined<K, V, VO, E>
  withLateRecords(
    policyOrThisSide: 'join' | 'drop' | LateRecordsConfig<K, V> | null,
    otherSide?: LateRecordsConfig<K, VO> | null,
  ): StreamJoined<K, V, VO, E> {
    const method = 'StreamJoined.withLateRecords'
    if (typeof policyOrThisSide === 'string' || policyOrThisSide === undefined) {
      const { lateRecordsTo: _dropped, ...rest } = this.config()
      return new StreamJoined<K, V, VO, E>({ ...rest, lateRecords: checkLateRecordsPolicy(method, policyOrThisSide) })
    }
    const lateRecordsTo: StreamJoinedLateRecords<K, V, VO> = {
      ...(policyOrThisSide !== null ? { thisSide: checkLateRecords(policyOrThisSide, method) } : {}),
      ...(otherSide !== null && otherSide !== undefined ? { otherSide: checkLateRecords(otherSide, method) } : {}),
    }
    return new StreamJoined<K, V, VO, E>({ ...this.config(), lateRecords: 'drop', lateRecordsTo })
  }

  /**
   * When a left/outer join emits records without a match: `'onWindowClose'` (the default, Kafka
   * Streams ≥ 3.1, KIP-633), `'eager'` (Kafka Streams < 3.1) or `'eagerWithRetraction'`; see
   * {@link EmitUnmatched} for the exact semantics and the retraction's shape. A kstreams option.
   * @throws TopologyError naming `emitUnmatched` for any other value
   */
  withEmitUnmatched<E2 extends EmitUnmatched>(emitUnmatched: E2): StreamJoined<K, V, VO, E2> {
    return new StreamJoined<K, V, VO, E2>({
      ...this.config(),
      emitUnmatched: checkEmitUnmatched('StreamJoined.withEmitUnmatched', emitUnmatched),
    })
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
      ...(this.lateRecords !== undefined ? { lateRecords: this.lateRecords } : {}),
      ...(this.lateRecordsTo !== undefined ? { lateRecordsTo: this.lateRecordsTo } : {}),
      ...(this.emitUnmatched !== undefined ? { emitUnmatched: this.emitUnmatched } : {}),
    }
  }
}

function checkLateRecordsPolicy(where: string, value: unknown): 'join' | 'drop' {
  if (value !== 'join' && value !== 'drop') throw new TopologyError(`${where}: lateRecords must be 'join' or 'drop', got ${String(value)}`)
  return value
}

function checkEmitUnmatched<E extends EmitUnmatched>(where: string, value: E): E {
  if (value !== 'onWindowClose' && value !== 'eager' && value !== 'eagerWithRetraction')
    throw new TopologyError(`${where}: emitUnmatched must be 'onWindowClose', 'eager' or 'eagerWithRetraction', got ${String(value)}`)
  return value
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

// ---------------------------------------------------------------------------------------------
// Builders: what KStream/KTable join methods delegate to (Kafka Streams: `KStreamImpl#doJoin`,
// `KStreamImplJoin#join`, `KStreamImpl#doStreamTableJoin`, `KStreamImpl#globalTableJoin`,
// `KTableImpl#doJoin`).
// ---------------------------------------------------------------------------------------------

/** The three join kinds. */
export type JoinKind = 'inner' | 'left' | 'outer'

function requireObject(value: unknown, parameter: string, method: string): void {
  if (value === null || value === undefined || typeof value !== 'object') {
    throw new TopologyError(`${method}: parameter '${parameter}' must be an object`)
  }
}

function checkSameBuilder(
  a: { builder: InternalTopologyBuilder },
  b: { builder?: InternalTopologyBuilder },
  parameter: string,
  method: string,
): void {
  if (b.builder !== a.builder) throw new TopologyError(`${method}: parameter '${parameter}' comes from a different StreamsBuilder`)
}

/**
 * Builds a windowed stream-stream join (`KStream#join/leftJoin/outerJoin(KStream, ...)`).
 *
 * Adds, named as Kafka Streams names them: a repartition per side whose key changed upstream
 * (`<left.name>-repartition` / `<name>-left-repartition`), `KSTREAM-WINDOWED-` ×2,
 * `KSTREAM-JOINTHIS-`/`KSTREAM-OUTERTHIS-`, `KSTREAM-JOINOTHER-`/`KSTREAM-OUTEROTHER-`,
 * `KSTREAM-MERGE-`; window stores `<JOINTHIS name>-store` and `<JOINOTHER name>-store` (or
 * `<storeName>-this-join-store`, `<storeName>-other-join-store`; `outer-` prefixed for outer
 * sides) with retention `before + after + grace` (+1 with `lateRecords: 'drop'`), and for left/outer joins the shared store
 * `KSTREAM-OUTERSHARED-<n>-store` (or `<storeName>-left-shared-join-store` /
 * `<storeName>-outer-shared-join-store`). Both inputs are co-partitioned.
 *
 * @param joiner normalized to `(key, left, right)`; `null` marks a missing side
 * @throws TopologyError naming the parameter when `other`, `joiner` or `windows` is invalid
 */
export function buildStreamStreamJoin<K, V, VO, VR>(
  kind: JoinKind,
  self: KStream<K, V>,
  other: KStream<K, VO>,
  joiner: (key: K, left: V | null, right: VO | null) => VR,
  windows: JoinWindows,
  streamJoined: StreamJoinedConfig<K, V, VO> | undefined,
  method: string,
): KStream<K, VR> {
  requireObject(other, 'otherStream', method)
  checkSameBuilder(self, other, 'otherStream', method)
  if (typeof joiner !== 'function') throw new TopologyError(`${method}: parameter 'joiner' must be a function`)
  if (windows === null || windows === undefined || typeof windows !== 'object' || typeof (windows as JoinWindows).beforeMs !== 'number') {
    throw new TopologyError(`${method}: parameter 'windows' must be a JoinWindows (a stream-stream join needs a join window)`)
  }
  if (streamJoined !== undefined) requireObject(streamJoined, 'streamJoined', method)
  const sj: StreamJoinedConfig<K, V, VO> = streamJoined ?? {}
  const name = sj.name === undefined ? undefined : checkName(method, 'streamJoined.name', sj.name)
  const storeName = sj.storeName === undefined ? undefined : checkName(method, 'streamJoined.storeName', sj.storeName)
  const builder = self.builder
  const leftOuter = kind !== 'inner'
  const rightOuter = kind === 'outer'

  let left = self
  let right = other
  if (left.repartitionRequired)
    left = left.repartitionIfRequired(name !== undefined ? `${name}-left` : left.name, sj.keySerde, sj.valueSerde)
  if (right.repartitionRequired)
    right = right.repartitionIfRequired(name !== undefined ? `${name}-right` : right.name, sj.keySerde, sj.otherValueSerde)
  builder.copartition([...left.sourceNodes, ...right.sourceNodes])

  const keySerde = sj.keySerde ?? left.keySerde ?? right.keySerde
  const valueSerde = sj.valueSerde ?? left.valueSerde
  const otherValueSerde = sj.otherValueSerde ?? right.valueSerde

  const thisSuffix = rightOuter ? '-outer-this-join' : '-this-join'
  const otherSuffix = leftOuter ? '-outer-other-join' : '-other-join'
  // Named or not, Kafka Streams burns a counter value for each of these (NamedInternal.suffixWithOrElseGet).
  const thisWindowedGenerated = builder.newProcessorName('KSTREAM-WINDOWED-')
  const otherWindowedGenerated = builder.newProcessorName('KSTREAM-WINDOWED-')
  const thisWindowedName = name !== undefined ? `${name}-this-windowed` : thisWindowedGenerated
  const otherWindowedName = name !== undefined ? `${name}-other-windowed` : otherWindowedGenerated
  const thisPrefix = rightOuter ? 'KSTREAM-OUTERTHIS-' : 'KSTREAM-JOINTHIS-'
  const otherPrefix = leftOuter ? 'KSTREAM-OUTEROTHER-' : 'KSTREAM-JOINOTHER-'
  const joinThisGenerated = builder.newProcessorName(thisPrefix)
  const joinOtherGenerated = builder.newProcessorName(otherPrefix)
  const joinThisName = name !== undefined ? name + thisSuffix : joinThisGenerated
  const joinOtherName = name !== undefined ? name + otherSuffix : joinOtherGenerated
  const mergeGenerated = builder.newProcessorName('KSTREAM-MERGE-')
  const mergeName = name !== undefined ? `${name}-merge` : mergeGenerated

  const thisStoreName = (storeName !== undefined ? storeName + thisSuffix : joinThisGenerated) + '-store'
  const otherStoreName = (storeName !== undefined ? storeName + otherSuffix : joinOtherGenerated) + '-store'
  const emitUnmatched: EmitUnmatched =
    sj.emitUnmatched === undefined || sj.emitUnmatched === null ? 'onWindowClose' : checkEmitUnmatched(method, sj.emitUnmatched)
  // 'eager' emits unmatched records at once and keeps nothing; the other policies keep them in the
  // shared store (until their window closes, or until retracted).
  const outerStoreName =
    !leftOuter || emitUnmatched === 'eager'
      ? undefined
      : (storeName !== undefined
          ? storeName + (rightOuter ? '-outer-shared-join' : '-left-shared-join')
          : 'KSTREAM-OUTERSHARED-' + joinThisGenerated.substring(thisPrefix.length)) + '-store'
  if (thisStoreName === otherStoreName) throw new TopologyError(`${method}: both join stores would be named '${thisStoreName}'`)

  const latePolicy = sj.lateRecords === undefined ? undefined : checkLateRecordsPolicy(method, sj.lateRecords)
  const lateTo = sj.lateRecordsTo
  if (lateTo !== undefined) {
    requireObject(lateTo, 'streamJoined.lateRecordsTo', method)
    if (latePolicy === 'join')
      throw new TopologyError(`${method}: late records sent to a side topic are not joined; lateRecords must be 'drop' with lateRecordsTo`)
  }
  // Retractions need every possible match to find the retractable record: a late record (joined
  // under 'join' while the other buffer still holds its match) could come after it was forgotten.
  if (emitUnmatched === 'eagerWithRetraction' && latePolicy === 'join' && leftOuter)
    throw new TopologyError(`${method}: emitUnmatched 'eagerWithRetraction' drops late records; lateRecords 'join' cannot be used with it`)
  const thisLate = lateTo?.thisSide !== undefined ? lateRecordsTarget(joinThisName, lateTo.thisSide, method) : undefined
  const otherLate = lateTo?.otherSide !== undefined ? lateRecordsTarget(joinOtherName, lateTo.otherSide, method) : undefined
  const dropLate = latePolicy === 'drop' || lateTo !== undefined || (emitUnmatched === 'eagerWithRetraction' && leftOuter)
  const w: JoinWindowSpec = { beforeMs: windows.beforeMs, afterMs: windows.afterMs, graceMs: windows.graceMs, dropLate }
  const sizeMs = windows.beforeMs + windows.afterMs
  const logging = { loggingEnabled: sj.loggingEnabled ?? true, logConfig: { ...(sj.logConfig ?? {}) } }
  const windowStore = (storeName: string, valueSerdeOf: Serde<any> | undefined): StoreDef => ({
    name: storeName,
    type: 'window',
    ...(keySerde !== undefined ? { keySerde } : {}),
    ...(valueSerdeOf !== undefined ? { valueSerde: valueSerdeOf } : {}),
    ...logging,
    cachingEnabled: false,
    persistent: true,
    // Kafka Streams' retention. With the drop policy +1: a record exactly `before + after + grace`
    // older than stream-time is not late yet, so its match must still be there.
    retentionMs: sizeMs + windows.graceMs + (dropLate ? 1 : 0),
    windowSizeMs: sizeMs,
    retainDuplicates: true,
  })

  const trackers = new JoinTimeTrackers()
  builder.addProcessor(
    thisWindowedName,
    joinWindowProcessorSupplier<K, V>({ side: 'left', storeName: thisStoreName, windows: w, trackers }),
    [left.name],
  )
  builder.addProcessor(
    otherWindowedName,
    joinWindowProcessorSupplier<K, VO>({ side: 'right', storeName: otherStoreName, windows: w, trackers }),
    [right.name],
  )
  builder.addStateStore(windowStore(thisStoreName, valueSerde), { processorNames: [thisWindowedName] })
  builder.addStateStore(windowStore(otherStoreName, otherValueSerde), { processorNames: [otherWindowedName] })
  if (outerStoreName !== undefined) {
    builder.addStateStore({
      name: outerStoreName,
      type: 'keyValue',
      keySerde: outerJoinKeySerde<K>(keySerde),
      valueSerde: outerJoinValuesSerde<V, VO>(valueSerde, otherValueSerde),
      ...logging,
      cachingEnabled: true,
      persistent: true,
    })
  }
  const common = {
    leftOuter,
    rightOuter,
    windows: w,
    joiner,
    trackers,
    emitUnmatched,
    ...(outerStoreName !== undefined ? { outerStoreName } : {}),
  }
  builder.addProcessor(
    joinThisName,
    streamStreamJoinProcessorSupplier<K, V, VO, VR>({
      ...common,
      side: 'left',
      otherStoreName,
      ...(thisLate ? { lateRecords: thisLate } : {}),
    }),
    [thisWindowedName],
    [otherStoreName, ...(outerStoreName !== undefined ? [outerStoreName] : [])],
  )
  builder.addProcessor(
    joinOtherName,
    streamStreamJoinProcessorSupplier<K, V, VO, VR>({
      ...common,
      side: 'right',
      otherStoreName: thisStoreName,
      ...(otherLate ? { lateRecords: otherLate } : {}),
    }),
    [otherWindowedName],
    [thisStoreName, ...(outerStoreName !== undefined ? [outerStoreName] : [])],
  )
  if (thisLate !== undefined) addLateRecordsSink(builder, thisLate, lateTo!.thisSide!, { keySerde, valueSerde })
  if (otherLate !== undefined) addLateRecordsSink(builder, otherLate, lateTo!.otherSide!, { keySerde, valueSerde: otherValueSerde })
  builder.addProcessor(mergeName, passThroughSupplier(), [joinThisName, joinOtherName])

  return left.derive<K, VR>(mergeName, {
    keySerde: sj.keySerde ?? left.keySerde,
    valueSerde: undefined,
    sourceNodes: new Set([...left.sourceNodes, ...right.sourceNodes]),
    repartitionRequired: false,
  })
}

/**
 * Builds a stream-table join (`KStream#join/leftJoin(KTable, ...)`): `KSTREAM-JOIN-` /
 * `KSTREAM-LEFTJOIN-` (or `joined.name`), connected to the table's store(s); the table is
 * materialized if it was not. Repartitions the stream first when its key changed upstream
 * (`<stream name>-repartition` or `<joined.name>-repartition`). Stream and table are co-partitioned.
 */
export function buildStreamTableJoin<K, V, VT, VR>(
  leftJoin: boolean,
  self: KStream<K, V>,
  table: KTable<K, VT>,
  joiner: (key: K, value: V, tableValue: VT | null) => VR,
  joined: JoinedConfig<K, V, VT> | undefined,
  method: string,
): KStream<K, VR> {
  requireObject(table, 'table', method)
  checkSameBuilder(self, table, 'table', method)
  if (typeof joiner !== 'function') throw new TopologyError(`${method}: parameter 'joiner' must be a function`)
  if (joined !== undefined) requireObject(joined, 'joined', method)
  const j: JoinedConfig<K, V, VT> = joined ?? {}
  const name = j.name === undefined ? undefined : checkName(method, 'joined.name', j.name)
  const builder = self.builder

  const stream = self.repartitionRequired ? self.repartitionIfRequired(name ?? self.name, j.keySerde, j.valueSerde) : self
  const sourceNodes = new Set([...stream.sourceNodes, ...table.sourceNodes])
  builder.copartition(sourceNodes)
  const processorName = name ?? builder.newProcessorName(leftJoin ? 'KSTREAM-LEFTJOIN-' : 'KSTREAM-JOIN-')
  const getter = table.valueGetterSupplier()
  const grace = j.gracePeriodMs === undefined ? undefined : streamTableGrace(builder, getter.storeNames(), j, stream, processorName, method)
  builder.addProcessor(
    processorName,
    streamTableJoinProcessorSupplier<K, V, K, VT, VR>({
      valueGetter: getter,
      keyMapper: (k) => k,
      joiner,
      leftJoin,
      kind: 'stream-table',
      ...(grace !== undefined ? { grace } : {}),
    }),
    [stream.name],
    [...getter.storeNames(), ...(grace !== undefined ? [grace.bufferStoreName] : [])],
  )
  return stream.derive<K, VR>(processorName, {
    keySerde: j.keySerde ?? stream.keySerde,
    valueSerde: undefined,
    sourceNodes,
    repartitionRequired: false,
  })
}

/**
 * `Joined.withGracePeriod` (KIP-923): checks that the table is versioned with a history retention of
 * at least the grace (Kafka Streams: `KStreamImpl#doStreamTableJoin`, `StreamTableJoinNode`) and
 * registers the buffer store `<processor>-Buffer`.
 */
function streamTableGrace<K, V>(
  builder: InternalTopologyBuilder,
  tableStores: ReadonlyArray<string>,
  joined: JoinedConfig<K, V, unknown>,
  stream: KStream<K, V>,
  processorName: string,
  method: string,
) {
  const gracePeriodMs = joined.gracePeriodMs!
  const versioned = tableStores.map((s) => builder.storeDef(s)?.versioned).find((v) => v !== undefined)
  if (versioned === undefined) throw new TopologyError(`${method}: KTable must be versioned to use a grace period in a stream table join`)
  if (gracePeriodMs > versioned.historyRetentionMs)
    throw new TopologyError(
      `${method}: history retention must be at least grace period (history retention ${versioned.historyRetentionMs} ms, grace ${gracePeriodMs} ms)`,
    )
  const bufferStoreName = processorName + '-Buffer'
  builder.addStateStore({
    name: bufferStoreName,
    type: 'keyValue',
    keySerde: Serdes.Bytes(),
    valueSerde: Serdes.Bytes(),
    loggingEnabled: true,
    logConfig: {},
    cachingEnabled: false,
    persistent: true,
  })
  return {
    gracePeriodMs,
    bufferStoreName,
    keySerde: joined.keySerde ?? stream.keySerde,
    valueSerde: joined.valueSerde ?? stream.valueSerde,
    processorName,
  }
}

/** What a stream-GlobalKTable join needs of a GlobalKTable. */
export interface GlobalTableJoinSide<GK, GV> {
  readonly builder?: InternalTopologyBuilder
  /** Lookups in the global store (no store connection is needed: global stores are readable everywhere). */
  valueGetterSupplier(): KTableValueGetterSupplier<GK, GV>
}

/**
 * Builds a stream-GlobalKTable join (`KStream#join/leftJoin(GlobalKTable, keySelector, joiner)`):
 * one processor (`KSTREAM-LEFTJOIN-` for both kinds, as Kafka Streams names it, or `named.name`).
 * No repartition and no co-partitioning: the global table has every partition of its topic.
 */
export function buildStreamGlobalTableJoin<K, V, GK, GV, VR>(
  leftJoin: boolean,
  self: KStream<K, V>,
  globalTable: GlobalTableJoinSide<GK, GV>,
  keySelector: KeyValueMapper<K, V, GK | null | undefined>,
  joiner: (key: K, value: V, globalValue: GV | null) => VR,
  named: { readonly name?: string } | undefined,
  method: string,
): KStream<K, VR> {
  requireObject(globalTable, 'globalTable', method)
  if (globalTable.builder !== undefined) checkSameBuilder(self, globalTable, 'globalTable', method)
  if (typeof keySelector !== 'function') throw new TopologyError(`${method}: parameter 'keySelector' must be a function`)
  if (typeof joiner !== 'function') throw new TopologyError(`${method}: parameter 'joiner' must be a function`)
  if (named !== undefined) requireObject(named, 'named', method)
  const builder = self.builder
  const name = named?.name === undefined ? builder.newProcessorName('KSTREAM-LEFTJOIN-') : checkName(method, 'named.name', named.name)
  builder.addProcessor(
    name,
    streamTableJoinProcessorSupplier<K, V, GK, GV, VR>({
      valueGetter: globalTable.valueGetterSupplier(),
      keyMapper: keySelector,
      joiner,
      leftJoin,
      kind: 'stream-globalTable',
    }),
    [self.name],
  )
  return self.derive<K, VR>(name, { valueSerde: undefined })
}

/**
 * Builds a table-table join (`KTable#join/leftJoin/outerJoin(KTable, ...)`): `KTABLE-MERGE-`
 * (named first, as Kafka Streams does), `KTABLE-JOINTHIS-`, `KTABLE-JOINOTHER-` (or
 * `<name>`, `<name>-join-this`, `<name>-join-other`). Both tables are materialized (value
 * getters); the result is materialized when `materialized` is given. Left joins make the left
 * table send old values, outer joins both (Kafka Streams does the same).
 */
export function buildTableTableJoin<K, V, VO, VR>(
  kind: JoinKind,
  self: KTable<K, V>,
  other: KTable<K, VO>,
  joiner: (left: V | null, right: VO | null) => VR,
  materialized: MaterializedConfig<K, VR> | undefined,
  named: NamedConfig | undefined,
  method: string,
): KTable<K, VR> {
  requireObject(other, 'other', method)
  checkSameBuilder(self, other, 'other', method)
  if (typeof joiner !== 'function') throw new TopologyError(`${method}: parameter 'joiner' must be a function`)
  const builder = self.builder
  const m = materialized !== undefined ? resolveMaterialized<K, VR>(builder, materialized, 'KTABLE-MERGE-', method) : undefined
  const mergeName = nameOrGenerate(builder, named, 'KTABLE-MERGE-', method)
  const sourceNodes = new Set([...self.sourceNodes, ...other.sourceNodes])
  builder.copartition(sourceNodes)
  if (kind !== 'inner') self.enableSendingOldValues(true)
  if (kind === 'outer') other.enableSendingOldValues(true)

  const givenName = named?.name
  const joinThisName = givenName !== undefined ? `${givenName}-join-this` : builder.newProcessorName('KTABLE-JOINTHIS-')
  const joinOtherName = givenName !== undefined ? `${givenName}-join-other` : builder.newProcessorName('KTABLE-JOINOTHER-')
  const leftGetter = self.valueGetterSupplier()
  const rightGetter = other.valueGetterSupplier()
  const joinFlags = { sendOldValues: false }
  builder.addProcessor(
    joinThisName,
    tableTableJoinProcessorSupplier<K, V, VO, VR>({ kind, side: 'left', otherValueGetter: rightGetter, joiner, flags: joinFlags }),
    [self.name],
    rightGetter.storeNames(),
  )
  builder.addProcessor(
    joinOtherName,
    tableTableJoinProcessorSupplier<K, V, VO, VR>({ kind, side: 'right', otherValueGetter: leftGetter, joiner, flags: joinFlags }),
    [other.name],
    leftGetter.storeNames(),
  )
  const keySerde = m?.keySerde ?? self.keySerde
  const valueSerde = m?.valueSerde
  const mergeFlags: TableJoinMergeFlags = { sendOldValues: false, storeName: m?.storeName }
  builder.addProcessor(mergeName, tableJoinMergeSupplier<K, VR>(mergeFlags), [joinThisName, joinOtherName])
  if (m !== undefined)
    builder.addStateStore(storeDefFrom(m, 'keyValue', { keySerde, valueSerde }, {}, { versionedAllowed: true }), {
      processorNames: [mergeName],
    })

  const flags: TableNodeFlags = { sendOldValues: false, storeName: m?.storeName }
  const joinGetter = tableTableJoinValueGetterSupplier<K, V, VO, VR>(kind, leftGetter, rightGetter, joiner)
  const origin: TableOrigin<K, VR> = {
    enableSendingOldValues() {
      // Old join results need old values from both inputs (Kafka Streams: KTableKTableJoinMerger#enableSendingOldValues).
      self.enableSendingOldValues(true)
      other.enableSendingOldValues(true)
      joinFlags.sendOldValues = true
      mergeFlags.sendOldValues = true
      flags.sendOldValues = true
      return true
    },
    valueGetterSupplier: () => (m !== undefined ? storeValueGetterSupplier<K, VR>(m.storeName) : joinGetter),
  }
  return new KTable<K, VR>({
    builder,
    name: mergeName,
    keySerde,
    valueSerde,
    sourceNodes,
    queryableStoreName: m?.queryable ? m.storeName : undefined,
    flags,
    origin,
  })
}
