/**
 * `Change<V>`: what flows between KTable processors (Kafka Streams: `Change`). A table update
 * carries the new value and, when the downstream asked for it ("send old values"), the value it
 * replaces. `null` is a tombstone (delete) on either side.
 */
import { SerializationError } from '../errors.js'
import type { DefaultingSerde, Serde } from '../serde.js'

/** A table update: new value and the previous value (`null` = absent / tombstone / not sent). */
export interface Change<V> {
  readonly newValue: V | null
  readonly oldValue: V | null
  /**
   * `false` for an out-of-order update of a versioned table (KIP-914): it went into the table's
   * history but did not replace the latest value. Joins and re-groupings ignore such updates.
   * Absent means `true`.
   */
  readonly isLatest?: boolean
}

/** Builds a {@link Change}; `isLatest: false` only for out-of-order versioned updates. */
export function change<V>(newValue: V | null, oldValue: V | null, isLatest = true): Change<V> {
  return isLatest ? { newValue, oldValue } : { newValue, oldValue, isLatest }
}

/**
 * Serde of `Change<V>` for KGroupedTable repartition topics (Kafka Streams: `ChangedSerializer`):
 * `[int32 length of new value or -1][new value bytes][int32 length of old value or -1][old value bytes]`.
 * With `inner` undefined, the default value serde is used (see `DefaultingSerde`).
 */
export function changeSerde<V>(inner: Serde<V> | undefined): DefaultingSerde<Change<V>> {
  const base = changeSerdeOf<V>(() => {
    if (!inner)
      throw new SerializationError('no value serde for a table repartition topic: set Grouped.valueSerde or a default value serde')
    return inner
  })
  return {
    ...base,
    withDefaults: (_k, v) =>
      changeSerdeOf<V>(() => {
        const s = inner ?? (v as Serde<V> | undefined)
        if (!s)
          throw new SerializationError('no value serde for a table repartition topic: set Grouped.valueSerde or a default value serde')
        return s
      }),
  }
}

function changeSerdeOf<V>(serde: () => Serde<V>): Serde<Change<V>> {
  return {
    serialize(topic, data, headers) {
      if (data === null || data === undefined) return null
      const s = serde()
      const n = data.newValue === null ? null : s.serialize(topic, data.newValue, headers)
      const o = data.oldValue === null ? null : s.serialize(topic, data.oldValue, headers)
      const out = Buffer.allocUnsafe(8 + (n?.length ?? 0) + (o?.length ?? 0))
      let off = out.writeInt32BE(n === null ? -1 : n.length, 0)
      if (n) off += n.copy(out, off)
      off = out.writeInt32BE(o === null ? -1 : o.length, off)
      if (o) o.copy(out, off)
      return out
    },
    deserialize(topic, data, headers) {
      if (data === null) return null
      const s = serde()
      if (data.length < 8) throw new SerializationError(`malformed Change: ${data.length} bytes`, { place: { topic } })
      let off = 0
      const nl = data.readInt32BE(off)
      off += 4
      const nb = nl < 0 ? null : data.subarray(off, off + nl)
      off += Math.max(nl, 0)
      const ol = data.readInt32BE(off)
      off += 4
      const ob = ol < 0 ? null : data.subarray(off, off + ol)
      return {
        newValue: nb === null ? null : s.deserialize(topic, nb, headers),
        oldValue: ob === null ? null : s.deserialize(topic, ob, headers),
      }
    },
  }
}
