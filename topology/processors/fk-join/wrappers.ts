/**
 * What travels between the two sides of a foreign-key join (Kafka Streams KIP-213:
 * `SubscriptionWrapper`, `SubscriptionResponseWrapper`, `CombinedKeySchema`) and its byte layout,
 * which is Kafka Streams' (subscription version 1, response version 0):
 *
 * - subscription: `[version | 0x80 if no hash][instruction][hash: 16 bytes, if any][primary key][primary partition: int32]`
 * - response: `[version | 0x80 if no hash][hash: 16 bytes, if any][foreign value]` (the primary
 *   partition only steers the response sink's partitioner and is not written)
 * - subscription store key: `[foreign key length: int32][foreign key][primary key]`
 *
 * The inner serdes default to the application's defaults ({@link DefaultingSerde}), as Kafka
 * Streams' `WrappingNullableSerde` does.
 * @internal
 */
import { SerializationError } from '../../errors.js'
import type { DefaultingSerde, Headers, Serde } from '../../serde.js'

/** What the subscription receiver does with a subscription (Kafka Streams: `SubscriptionWrapper.Instruction`). */
export const Instruction = {
  /** Unsubscribe (the foreign key changed); send nothing back. */
  DELETE_KEY_NO_PROPAGATE: 0,
  /** Unsubscribe and send back a `null` (the left row was deleted). */
  DELETE_KEY_AND_PROPAGATE: 1,
  /** Subscribe and send back the foreign value, or `null` when there is none. */
  PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE: 2,
  /** Subscribe and send back the foreign value only when there is one. */
  PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE: 3,
} as const
export type Instruction = (typeof Instruction)[keyof typeof Instruction]

/** A left row's subscription to a foreign key. */
export interface SubscriptionWrapper<K> {
  /** Murmur3-128 of the serialized left value (16 bytes); `null` for a deleted row. */
  readonly hash: Buffer | null
  readonly instruction: Instruction
  readonly primaryKey: K
  /** Partition of the left row, where the response must go back to. */
  readonly primaryPartition: number
}

/** The foreign side's answer to a subscription. */
export interface SubscriptionResponseWrapper<VO> {
  /** The hash of the subscription this answers. */
  readonly originalValueHash: Buffer | null
  readonly foreignValue: VO | null
  /** Partition of the left row (not serialized). */
  readonly primaryPartition?: number
}

const SUBSCRIPTION_VERSION = 1
const RESPONSE_VERSION = 0
const NO_HASH = 0x80
/** Pseudo-topic suffixes of the values a foreign-key join serializes itself (Kafka Streams' names). */
export const PK_SUFFIX = '-pk'
export const FK_SUFFIX = '-fk'
export const VALUE_HASH_SUFFIX = '-vh'

function checkHash(hash: Buffer | null, what: string, topic: string): void {
  if (hash !== null && hash.length !== 16)
    throw new SerializationError(`${what}: a value hash has 16 bytes, got ${hash.length}`, { place: { topic } })
}

function missingInner(what: string, role: string): never {
  throw new SerializationError(`${what} needs a ${role} serde: give it to the join's tables (Consumed/Materialized) or configure a default`)
}

/**
 * Serde of {@link SubscriptionWrapper}; `primaryKeySerde` defaults to the default key serde. The
 * primary key is (de)serialized for the pseudo-topic `<topic>-pk` (Kafka Streams: the subscription
 * topic's `-pk` pseudo-topic), which is what registry serdes see.
 */
export function subscriptionWrapperSerde<K>(primaryKeySerde: Serde<K> | undefined): DefaultingSerde<SubscriptionWrapper<K>> {
  const pk = (): Serde<K> => primaryKeySerde ?? missingInner('foreign-key join subscription', 'primary key')
  return {
    serialize(topic: string, data: SubscriptionWrapper<K> | null | undefined): Buffer | null {
      if (data === null || data === undefined) return null
      checkHash(data.hash, 'foreign-key join subscription', topic)
      const key = pk().serialize(topic + PK_SUFFIX, data.primaryKey) ?? Buffer.alloc(0)
      const hashLen = data.hash === null ? 0 : 16
      const out = Buffer.allocUnsafe(2 + hashLen + key.length + 4)
      out[0] = data.hash === null ? SUBSCRIPTION_VERSION | NO_HASH : SUBSCRIPTION_VERSION
      out[1] = data.instruction
      if (data.hash !== null) data.hash.copy(out, 2)
      key.copy(out, 2 + hashLen)
      out.writeInt32BE(data.primaryPartition, 2 + hashLen + key.length)
      return out
    },
    deserialize(topic: string, data: Buffer | null): SubscriptionWrapper<K> | null {
      if (data === null) return null
      const version = data[0]! & 0x7f
      const hasHash = (data[0]! & NO_HASH) === 0
      if (version > SUBSCRIPTION_VERSION || data.length < 2)
        throw new SerializationError(`foreign-key join subscription of unsupported version ${version}`, { place: { topic } })
      const instruction = data[1]! as Instruction
      let at = 2
      const hash = hasHash ? Buffer.from(data.subarray(at, (at += 16))) : null
      const end = version > 0 ? data.length - 4 : data.length
      const primaryKey = pk().deserialize(topic + PK_SUFFIX, data.subarray(at, end)) as K
      const primaryPartition = version > 0 ? data.readInt32BE(end) : -1
      return { hash, instruction, primaryKey, primaryPartition }
    },
    withDefaults(defaultKeySerde) {
      return subscriptionWrapperSerde<K>(primaryKeySerde ?? (defaultKeySerde as Serde<K> | undefined))
    },
  }
}

/** Serde of {@link SubscriptionResponseWrapper}; `foreignValueSerde` defaults to the default value serde. */
export function responseWrapperSerde<VO>(foreignValueSerde: Serde<VO> | undefined): DefaultingSerde<SubscriptionResponseWrapper<VO>> {
  const vo = (): Serde<VO> => foreignValueSerde ?? missingInner('foreign-key join response', 'foreign value')
  return {
    serialize(topic: string, data: SubscriptionResponseWrapper<VO> | null | undefined, headers?: Headers): Buffer | null {
      if (data === null || data === undefined) return null
      checkHash(data.originalValueHash, 'foreign-key join response', topic)
      const value = data.foreignValue === null ? null : vo().serialize(topic, data.foreignValue, headers)
      const hashLen = data.originalValueHash === null ? 0 : 16
      const out = Buffer.allocUnsafe(1 + hashLen + (value?.length ?? 0))
      out[0] = data.originalValueHash === null ? RESPONSE_VERSION | NO_HASH : RESPONSE_VERSION
      if (data.originalValueHash !== null) data.originalValueHash.copy(out, 1)
      if (value !== null) value.copy(out, 1 + hashLen)
      return out
    },
    deserialize(topic: string, data: Buffer | null, headers?: Headers): SubscriptionResponseWrapper<VO> | null {
      if (data === null) return null
      const version = data[0]! & 0x7f
      if (version > RESPONSE_VERSION)
        throw new SerializationError(`foreign-key join response of unsupported version ${version}`, { place: { topic } })
      const hasHash = (data[0]! & NO_HASH) === 0
      const at = hasHash ? 17 : 1
      const originalValueHash = hasHash ? Buffer.from(data.subarray(1, 17)) : null
      const foreignValue = data.length > at ? vo().deserialize(topic, data.subarray(at), headers) : null
      return { originalValueHash, foreignValue }
    },
    async prepareDeserialize(topic: string, payloads: ReadonlyArray<Buffer | null>): Promise<void> {
      const inner = vo()
      if (!inner.prepareDeserialize) return
      const values = payloads.map((p) => {
        if (p === null) return null
        const at = (p[0]! & NO_HASH) === 0 ? 17 : 1
        return p.length > at ? p.subarray(at) : null
      })
      await inner.prepareDeserialize(topic, values)
    },
    async prepareSerialize(topic: string): Promise<void> {
      await vo().prepareSerialize?.(topic)
    },
    withDefaults(_defaultKeySerde, defaultValueSerde) {
      return responseWrapperSerde<VO>(foreignValueSerde ?? (defaultValueSerde as Serde<VO> | undefined))
    },
  }
}

/** The subscription store key: `[fk length][fk][pk]`, so all subscribers of a foreign key are one prefix range. */
export function combinedKey(foreignKey: Buffer, primaryKey: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + foreignKey.length + primaryKey.length)
  out.writeInt32BE(foreignKey.length, 0)
  foreignKey.copy(out, 4)
  primaryKey.copy(out, 4 + foreignKey.length)
  return out
}

/** The prefix of every subscription store key of `foreignKey`. */
export function combinedKeyPrefix(foreignKey: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + foreignKey.length)
  out.writeInt32BE(foreignKey.length, 0)
  foreignKey.copy(out, 4)
  return out
}
