/**
 * The shared "outer join" store of left/outer stream-stream joins (Kafka Streams ≥ 3.1, KIP-633 /
 * KAFKA-10847: `TimestampedKeyAndJoinSide` → `LeftOrRightValue` in a list-value store).
 *
 * It holds the records that have not matched (yet). Keys are ordered by timestamp first, so a scan
 * from the start visits records in timestamp order and can stop at the first one whose window is
 * still open. A key holds every record with the same timestamp, side and join key (the value is a
 * list, in arrival order).
 *
 * Serialized key: `[timestamp: int64 BE][side: 0 = right, 1 = left][join key bytes]`, so records
 * of equal timestamp come right side first, as in Kafka Streams.
 * Serialized value: `[side: 0 | 1][count: uint32 BE]` then per entry `[length: int32 BE][value bytes]`.
 */
import { SerializationError } from '../../errors.js'
import type { DefaultingSerde, Serde } from '../../serde.js'

/** Which input of the join a record came from. */
export type JoinSide = 'left' | 'right'

/** Key of the outer-join store. */
export interface OuterJoinKey<K> {
  readonly timestamp: number
  readonly side: JoinSide
  readonly key: K
}

function missing(what: string, topic: string): never {
  throw new SerializationError(`outer-join store: no ${what} serde (give one with StreamJoined.with(...) or configure a default)`, {
    place: { topic },
  })
}

/** Serde of {@link OuterJoinKey}; wraps the join key's serde (or the default key serde). */
export function outerJoinKeySerde<K>(keySerde: Serde<K> | undefined): DefaultingSerde<OuterJoinKey<K>> {
  return {
    withDefaults: (defaultKeySerde) => outerJoinKeySerde<K>(keySerde ?? defaultKeySerde),
    serialize(topic, data) {
      if (data === null || data === undefined) return null
      const inner = keySerde ?? missing('key', topic)
      const keyBytes = inner.serialize(topic, data.key)
      if (keyBytes === null) throw new SerializationError('outer-join store: join key serialized to null', { place: { topic } })
      const out = Buffer.allocUnsafe(9 + keyBytes.length)
      out.writeBigInt64BE(BigInt(data.timestamp), 0)
      out.writeUInt8(data.side === 'left' ? 1 : 0, 8)
      keyBytes.copy(out, 9)
      return out
    },
    deserialize(topic, data) {
      if (data === null) return null
      if (data.length < 9) throw new SerializationError(`outer-join store: key of ${data.length} bytes is too short`, { place: { topic } })
      const inner = keySerde ?? missing('key', topic)
      const key = inner.deserialize(topic, data.subarray(9)) as K
      return { timestamp: Number(data.readBigInt64BE(0)), side: data.readUInt8(8) === 1 ? 'left' : 'right', key }
    },
  }
}

/**
 * Serde of the value lists; wraps this side's and the other side's value serdes (or the default
 * value serde).
 */
export function outerJoinValuesSerde<V, VO>(
  valueSerde: Serde<V> | undefined,
  otherValueSerde: Serde<VO> | undefined,
): DefaultingSerde<OuterJoinEntries<V, VO>> {
  return {
    withDefaults: (_defaultKeySerde, defaultValueSerde) =>
      outerJoinValuesSerde<V, VO>(valueSerde ?? defaultValueSerde, otherValueSerde ?? defaultValueSerde),
    serialize(topic, data) {
      if (data === null || data === undefined) return null
      const serde: Serde<unknown> =
        (data.side === 'left' ? valueSerde : otherValueSerde) ?? missing(data.side === 'left' ? 'value' : 'other value', topic)
      const parts: Buffer[] = []
      const head = Buffer.allocUnsafe(5)
      head.writeUInt8(data.side === 'left' ? 0 : 1, 0)
      head.writeUInt32BE(data.values.length, 1)
      parts.push(head)
      for (const v of data.values) {
        const b = serde.serialize(topic, v)
        const len = Buffer.allocUnsafe(4)
        len.writeInt32BE(b === null ? -1 : b.length, 0)
        parts.push(len)
        if (b !== null) parts.push(b)
      }
      return Buffer.concat(parts)
    },
    deserialize(topic, data) {
      if (data === null) return null
      if (data.length < 5)
        throw new SerializationError(`outer-join store: value of ${data.length} bytes is too short`, { place: { topic } })
      const side: JoinSide = data.readUInt8(0) === 0 ? 'left' : 'right'
      const serde: Serde<unknown> =
        (side === 'left' ? valueSerde : otherValueSerde) ?? missing(side === 'left' ? 'value' : 'other value', topic)
      const n = data.readUInt32BE(1)
      const values: unknown[] = []
      let pos = 5
      for (let i = 0; i < n; i++) {
        if (pos + 4 > data.length) throw new SerializationError('outer-join store: truncated value list', { place: { topic } })
        const len = data.readInt32BE(pos)
        pos += 4
        if (len < 0) {
          values.push(null)
        } else {
          if (pos + len > data.length) throw new SerializationError('outer-join store: truncated value list', { place: { topic } })
          values.push(serde.deserialize(topic, data.subarray(pos, pos + len)))
          pos += len
        }
      }
      return side === 'left' ? { side, values: values as V[] } : { side, values: values as VO[] }
    },
  }
}

/** The value of an outer-join store key: the unmatched values of one side, in arrival order. */
export type OuterJoinEntries<V, VO> =
  { readonly side: 'left'; readonly values: ReadonlyArray<V> } | { readonly side: 'right'; readonly values: ReadonlyArray<VO> }
