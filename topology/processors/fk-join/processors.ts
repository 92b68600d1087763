/**
 * The processors of a foreign-key table-table join (Kafka Streams KIP-213:
 * `SubscriptionSendProcessorSupplier`, `SubscriptionReceiveProcessorSupplier`,
 * `SubscriptionJoinProcessorSupplier`, `ForeignTableJoinProcessorSupplier`,
 * `ResponseJoinProcessorSupplier`).
 *
 * Left side: every change of a left row sends a subscription, keyed by its foreign key, through the
 * subscription topic (an unsubscription to the old foreign key first when it changed). Right side:
 * the receiver keeps subscriptions in a store keyed `[fk][pk]` and answers each with the current
 * foreign value; every change of a foreign row answers all its subscribers (a prefix scan). Answers
 * travel back through the response topic, to the partition of the left row. Left side again: the
 * resolver joins an answer only if it was computed for the left value still current there: every
 * subscription carries the murmur3-128 hash of the serialized left value, and an answer whose hash
 * differs from the hash of the current left value is stale and dropped.
 * @internal
 */
import { StreamsConfigError } from '../../errors.js'
import { resolveSerde, type Serde } from '../../serde.js'
import type { Processor, ProcessorContext, ProcessorSupplier, StreamRecord } from '../../processor/types.js'
import type { KeyValueStore, ValueAndTimestamp } from '../../state/types.js'
import { valueAndTimestamp } from '../../state/typed.js'
import { change, type Change } from '../change.js'
import { OUT_OF_ORDER_VERSIONED_DROP_REASON, type KTableValueGetter, type KTableValueGetterSupplier } from '../table.js'
import { murmur3Hash128Bytes } from './murmur3.js'
import {
  FK_SUFFIX,
  Instruction,
  PK_SUFFIX,
  VALUE_HASH_SUFFIX,
  combinedKey,
  combinedKeyPrefix,
  type SubscriptionResponseWrapper,
  type SubscriptionWrapper,
} from './wrappers.js'

/** Reason given to `recordDropped` for a left row whose foreign key is null (inner join). */
export const NULL_FOREIGN_KEY_DROP_REASON = 'null-foreign-key'
/** Reason given to `recordDropped` for a response computed for a left value that is no longer current. */
export const STALE_RESPONSE_DROP_REASON = 'stale-subscription-response'

/** Key of a received subscription: the foreign key (null: left join without foreign key) and the primary key. */
export interface CombinedKey<KO, K> {
  readonly foreignKey: KO | null
  readonly primaryKey: K
}

/** What every processor of one join shares: names for errors and pseudo-topics. */
export interface FkJoinNames {
  /** The processor using these options (error messages). */
  readonly processorName: string
  /** The subscription topic's raw name (`...-subscription-registration-topic`), for pseudo-topics. */
  readonly subscriptionTopic: string
}

/** Resolves `given` against the application's default key (`role` key) or value serde; throws when none. */
function serdeOf<T>(
  context: ProcessorContext<any, any>,
  given: Serde<T> | undefined,
  role: 'key' | 'value',
  what: string,
  processor: string,
): Serde<T> {
  const defaults = { keySerde: context.keySerde?.(), valueSerde: context.valueSerde?.() }
  const serde = resolveSerde(given, role === 'key' ? defaults.keySerde : defaults.valueSerde, defaults)
  if (serde === undefined)
    throw new StreamsConfigError(
      `foreign-key join needs a serde for the ${what}: give it to the join's tables (Consumed/Materialized) or configure a default ${role} serde`,
      {
        place: { processor },
      },
    )
  return serde
}

function pseudoTopic(context: ProcessorContext<any, any>, names: FkJoinNames, suffix: string): string {
  return `${context.applicationId}-${names.subscriptionTopic}${suffix}`
}

function isNullish(v: unknown): v is null | undefined {
  return v === null || v === undefined
}

function sameBytes(a: Buffer | null, b: Buffer | null): boolean {
  if (a === null || b === null) return a === b
  return a.equals(b)
}

// ---------------------------------------------------------------------------------------------
// Left side: send subscriptions
// ---------------------------------------------------------------------------------------------

export interface SubscriptionSendOptions<K, V, KO> extends FkJoinNames {
  /** The foreign key of a left row (`value`, then its `key`: Kafka Streams 4.0's KIP-1104 extractor also sees the key). */
  readonly foreignKeyExtractor: (value: V, key: K) => KO | null | undefined
  /** Key serde of the foreign table (to compare old and new foreign keys by their bytes). */
  readonly foreignKeySerde: Serde<KO> | undefined
  /** Value serde of the left table (the hashed bytes). */
  readonly valueSerde: Serde<V> | undefined
  readonly leftJoin: boolean
}

/** Sends a subscription per left change (Kafka Streams: `SubscriptionSendProcessorSupplier`). */
export function subscriptionSendSupplier<K, V, KO>(
  options: SubscriptionSendOptions<K, V, KO>,
): ProcessorSupplier<K, Change<V>, KO | null, SubscriptionWrapper<K>> {
  return () => new SubscriptionSendProcessor<K, V, KO>(options)
}

class SubscriptionSendProcessor<K, V, KO> implements Processor<K, Change<V>, KO | null, SubscriptionWrapper<K>> {
  private context!: ProcessorContext<KO | null, SubscriptionWrapper<K>>
  private fkSerde!: Serde<KO>
  private valueSerde!: Serde<V>
  private fkTopic = ''
  private vhTopic = ''

  constructor(private readonly options: SubscriptionSendOptions<K, V, KO>) {}

  async init(context: ProcessorContext<KO | null, SubscriptionWrapper<K>>): Promise<void> {
    this.context = context
    const { processorName } = this.options
    this.fkSerde = serdeOf(context, this.options.foreignKeySerde, 'key', 'foreign key', processorName)
    this.valueSerde = serdeOf(context, this.options.valueSerde, 'value', 'left table values', processorName)
    this.fkTopic = pseudoTopic(context, this.options, FK_SUFFIX)
    this.vhTopic = pseudoTopic(context, this.options, VALUE_HASH_SUFFIX)
    await this.fkSerde.prepareSerialize?.(this.fkTopic)
    await this.valueSerde.prepareSerialize?.(this.vhTopic)
  }

  async process(record: StreamRecord<K, Change<V>>): Promise<void> {
    const { newValue, oldValue } = record.value
    if (record.value.isLatest === false) {
      // Versioned left table (KIP-914): an out-of-order update changes no join result.
      this.context.recordDropped(OUT_OF_ORDER_VERSIONED_DROP_REASON)
      return
    }
    const extract = (v: V): KO | null => {
      const fk = this.options.foreignKeyExtractor(v, record.key)
      return fk === undefined ? null : fk
    }
    let hash: Buffer | null | undefined
    const send = (foreignKey: KO | null, instruction: Instruction): Promise<void> => {
      if (hash === undefined)
        hash = newValue === null ? null : murmur3Hash128Bytes(this.valueSerde.serialize(this.vhTopic, newValue) ?? Buffer.alloc(0))
      const partition = this.context.recordMetadata()?.partition ?? this.context.taskId.partition
      const value: SubscriptionWrapper<K> = { hash, instruction, primaryKey: record.key, primaryPartition: partition }
      return this.context.forward({ key: foreignKey, value, timestamp: record.timestamp, headers: record.headers })
    }
    const differ = (a: KO | null, b: KO | null): boolean =>
      !sameBytes(this.fkSerde.serialize(this.fkTopic, a), this.fkSerde.serialize(this.fkTopic, b))

    const oldFk = oldValue === null ? null : extract(oldValue)
    // The instructions are Kafka Streams' after KAFKA-18713, KAFKA-16394 and KAFKA-16407 (4.1):
    // an old subscription is deleted without an answer whenever a new subscription answers, so two
    // answers from two right-side tasks never race.
    if (this.options.leftJoin) {
      if (oldValue === null && newValue === null) return // deleting an absent row
      const newFk = newValue === null ? null : extract(newValue)
      if (oldFk !== null && differ(newFk, oldFk)) await send(oldFk, Instruction.DELETE_KEY_NO_PROPAGATE)
      // Always answered, also for a null foreign key or a delete (the receiver answers those at
      // once), so every left change yields a left-join result.
      await send(newFk, Instruction.PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE)
      return
    }
    if (newValue === null) {
      if (oldFk !== null) await send(oldFk, Instruction.DELETE_KEY_AND_PROPAGATE)
      return
    }
    const newFk = extract(newValue)
    if (newFk === null) {
      this.droppedNullForeignKey()
      // Unset the previous result, if any.
      if (oldFk !== null) await send(oldFk, Instruction.DELETE_KEY_AND_PROPAGATE)
      return
    }
    if (oldFk === null) return send(newFk, Instruction.PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE) // insert
    if (differ(newFk, oldFk)) {
      // Another foreign key: unsubscribe from the old one silently; the new one answers null when
      // it has no row, to retract the previous result.
      await send(oldFk, Instruction.DELETE_KEY_NO_PROPAGATE)
      await send(newFk, Instruction.PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE)
    } else {
      // Same foreign key: if it has no row, the old value did not join either.
      await send(newFk, Instruction.PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE)
    }
  }

  private droppedNullForeignKey(): void {
    this.context.recordDropped(NULL_FOREIGN_KEY_DROP_REASON)
  }
}

// ---------------------------------------------------------------------------------------------
// Right side: receive subscriptions, join them, answer foreign changes
// ---------------------------------------------------------------------------------------------

export interface SubscriptionStoreOptions<K, KO> extends FkJoinNames {
  /** The subscription store: `KeyValueStore<Buffer, ValueAndTimestamp<SubscriptionWrapper<K>>>`. */
  readonly storeName: string
  readonly foreignKeySerde: Serde<KO> | undefined
  /** Key serde of the left table. */
  readonly primaryKeySerde: Serde<K> | undefined
}

type SubscriptionStore<K> = KeyValueStore<Buffer, ValueAndTimestamp<SubscriptionWrapper<K>>>

/** Stores or deletes a subscription and forwards it with the previous one (Kafka Streams: `SubscriptionReceiveProcessorSupplier`). */
export function subscriptionReceiveSupplier<K, KO>(
  options: SubscriptionStoreOptions<K, KO>,
): ProcessorSupplier<KO | null, SubscriptionWrapper<K>, CombinedKey<KO, K>, Change<ValueAndTimestamp<SubscriptionWrapper<K>>>> {
  return () => {
    let context!: ProcessorContext<CombinedKey<KO, K>, Change<ValueAndTimestamp<SubscriptionWrapper<K>>>>
    let store!: SubscriptionStore<K>
    let fkSerde!: Serde<KO>
    let pkSerde!: Serde<K>
    let fkTopic = ''
    let pkTopic = ''
    return {
      async init(c) {
        context = c
        store = c.getStateStore<SubscriptionStore<K>>(options.storeName)
        fkSerde = serdeOf(c, options.foreignKeySerde, 'key', 'foreign key', options.processorName)
        pkSerde = serdeOf(c, options.primaryKeySerde, 'key', 'left table keys', options.processorName)
        fkTopic = pseudoTopic(c, options, FK_SUFFIX)
        pkTopic = pseudoTopic(c, options, PK_SUFFIX)
        await fkSerde.prepareSerialize?.(fkTopic)
        await pkSerde.prepareSerialize?.(pkTopic)
      },
      async process(record) {
        const wrapper = record.value
        if (isNullish(wrapper)) return
        const newValue = valueAndTimestamp(wrapper, record.timestamp)
        if (isNullish(record.key)) {
          // A left-join row without foreign key: answered at once, never stored.
          if (wrapper.instruction !== Instruction.PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE) {
            context.recordDropped(NULL_FOREIGN_KEY_DROP_REASON)
            return
          }
          return context.forward({
            key: { foreignKey: null, primaryKey: wrapper.primaryKey },
            value: change(newValue, null),
            timestamp: record.timestamp,
            headers: record.headers,
          })
        }
        const key = combinedKey(
          fkSerde.serialize(fkTopic, record.key) ?? Buffer.alloc(0),
          pkSerde.serialize(pkTopic, wrapper.primaryKey) ?? Buffer.alloc(0),
        )
        const old = (await store.get(key)) ?? null
        if (wrapper.instruction === Instruction.DELETE_KEY_AND_PROPAGATE || wrapper.instruction === Instruction.DELETE_KEY_NO_PROPAGATE)
          await store.delete(key)
        else await store.put(key, newValue)
        return context.forward({
          key: { foreignKey: record.key, primaryKey: wrapper.primaryKey },
          value: change(newValue, old),
          timestamp: record.timestamp,
          headers: record.headers,
        })
      },
    }
  }
}

/**
 * Answers a received subscription with the foreign row's current value (Kafka Streams:
 * `SubscriptionJoinProcessorSupplier`); the answer's timestamp is the larger of the two rows'.
 */
export function subscriptionJoinSupplier<K, KO, VO>(
  foreignValueGetter: KTableValueGetterSupplier<KO, VO>,
): ProcessorSupplier<CombinedKey<KO, K>, Change<ValueAndTimestamp<SubscriptionWrapper<K>>>, K, SubscriptionResponseWrapper<VO>> {
  return () => {
    let context!: ProcessorContext<K, SubscriptionResponseWrapper<VO>>
    let getter!: KTableValueGetter<KO, VO>
    return {
      init(c) {
        context = c
        getter = foreignValueGetter.get()
        getter.init(c)
      },
      async process(record) {
        const subscription = record.value.newValue
        if (subscription === null) return
        const { value: wrapper, timestamp } = subscription
        const foreign = record.key.foreignKey === null ? null : await getter.get(record.key.foreignKey)
        const resultTimestamp = foreign === null ? timestamp : Math.max(timestamp, foreign.timestamp)
        const answer = (foreignValue: VO | null): Promise<void> =>
          context.forward({
            key: record.key.primaryKey,
            value: { originalValueHash: wrapper.hash, foreignValue, primaryPartition: wrapper.primaryPartition },
            timestamp: resultTimestamp,
            headers: record.headers,
          })
        switch (wrapper.instruction) {
          case Instruction.DELETE_KEY_AND_PROPAGATE:
            return answer(null)
          case Instruction.PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE:
            return answer(foreign === null ? null : foreign.value)
          case Instruction.PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE:
            if (foreign !== null) return answer(foreign.value)
            return
          case Instruction.DELETE_KEY_NO_PROPAGATE:
            return
        }
      },
    }
  }
}

/** Answers every subscriber of a foreign row when that row changes (Kafka Streams: `ForeignTableJoinProcessorSupplier`). */
export function foreignTableJoinSupplier<K, KO, VO>(
  options: SubscriptionStoreOptions<K, KO>,
): ProcessorSupplier<KO, Change<VO>, K, SubscriptionResponseWrapper<VO>> {
  return () => {
    let context!: ProcessorContext<K, SubscriptionResponseWrapper<VO>>
    let store!: SubscriptionStore<K>
    let fkSerde!: Serde<KO>
    let fkTopic = ''
    return {
      async init(c) {
        context = c
        store = c.getStateStore<SubscriptionStore<K>>(options.storeName)
        fkSerde = serdeOf(c, options.foreignKeySerde, 'key', 'foreign key', options.processorName)
        fkTopic = pseudoTopic(c, options, FK_SUFFIX)
        await fkSerde.prepareSerialize?.(fkTopic)
      },
      async process(record) {
        if (isNullish(record.key)) {
          context.recordDropped('null-key')
          return
        }
        if (record.value.isLatest === false) {
          context.recordDropped(OUT_OF_ORDER_VERSIONED_DROP_REASON)
          return
        }
        const prefix = combinedKeyPrefix(fkSerde.serialize(fkTopic, record.key) ?? Buffer.alloc(0))
        const subscribers: SubscriptionWrapper<K>[] = []
        for await (const kv of store.range(prefix, prefixEnd(prefix))) {
          if (kv.key.length >= prefix.length && kv.key.subarray(0, prefix.length).equals(prefix)) subscribers.push(kv.value.value)
        }
        for (const s of subscribers) {
          await context.forward({
            key: s.primaryKey,
            value: { originalValueHash: s.hash, foreignValue: record.value.newValue, primaryPartition: s.primaryPartition },
            timestamp: record.timestamp,
            headers: record.headers,
          })
        }
      },
    }
  }
}

/** The smallest key greater than every key starting with `prefix` (inclusive range end; Kafka Streams: `Bytes.increment`). */
function prefixEnd(prefix: Buffer): Buffer | undefined {
  const out = Buffer.from(prefix)
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i]! < 0xff) {
      out[i]!++
      return out.subarray(0, i + 1)
    }
  }
  return undefined // all 0xff: no upper bound
}

// ---------------------------------------------------------------------------------------------
// Left side again: resolve responses
// ---------------------------------------------------------------------------------------------

export interface ResponseJoinOptions<K, V, VO, VR> extends FkJoinNames {
  readonly leftValueGetter: KTableValueGetterSupplier<K, V>
  /** Value serde of the left table (must hash as the sender did). */
  readonly valueSerde: Serde<V> | undefined
  readonly joiner: (left: V, right: VO | null) => VR
  readonly leftJoin: boolean
}

/**
 * Joins a response with the current left row if the response was computed for it, else drops it
 * as stale (Kafka Streams: `ResponseJoinProcessorSupplier`). Forwards the join result, or `null`
 * (a delete) when there is no result.
 */
export function responseJoinSupplier<K, V, VO, VR>(
  options: ResponseJoinOptions<K, V, VO, VR>,
): ProcessorSupplier<K, SubscriptionResponseWrapper<VO>, K, VR | null> {
  return () => {
    let context!: ProcessorContext<K, VR | null>
    let getter!: KTableValueGetter<K, V>
    let valueSerde!: Serde<V>
    let vhTopic = ''
    return {
      async init(c) {
        context = c
        getter = options.leftValueGetter.get()
        getter.init(c)
        valueSerde = serdeOf(c, options.valueSerde, 'value', 'left table values', options.processorName)
        vhTopic = pseudoTopic(c, options, VALUE_HASH_SUFFIX)
        await valueSerde.prepareSerialize?.(vhTopic)
      },
      async process(record) {
        const response = record.value
        if (isNullish(response)) return
        const current = await getter.get(record.key)
        const currentHash = current === null ? null : murmur3Hash128Bytes(valueSerde.serialize(vhTopic, current.value) ?? Buffer.alloc(0))
        if (!sameBytes(response.originalValueHash, currentHash)) {
          context.recordDropped(STALE_RESPONSE_DROP_REASON)
          return
        }
        const result =
          response.foreignValue === null && (!options.leftJoin || current === null)
            ? null
            : options.joiner(current === null ? (null as V) : current.value, response.foreignValue)
        return context.forward({ key: record.key, value: result, timestamp: record.timestamp, headers: record.headers })
      },
    }
  }
}
