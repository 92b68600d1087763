/**
 * Serdes for `Windowed<K>` keys in Kafka Streams' byte formats, so Java services can read windowed
 * results written by kstreams and vice versa (Kafka Streams: `WindowedSerdes`).
 *
 * - time windows (`TimeWindowedSerde`): `<key bytes><window start: int64 BE>`; the end is
 *   `start + windowSizeMs`.
 * - session windows (`SessionWindowedSerde`): `<key bytes><end: int64 BE><start: int64 BE>`.
 */
import { SerializationError } from '../../errors.js'
import { resolveSerde, type DefaultingSerde, type Serde } from '../../serde.js'
import type { Windowed } from '../../state/types.js'

function writeLong(buf: Buffer, value: number, offset: number): void {
  buf.writeBigInt64BE(BigInt(Math.trunc(value)), offset)
}

function readLong(buf: Buffer, offset: number): number {
  return Number(buf.readBigInt64BE(offset))
}

function missingInner(topic: string): never {
  throw new SerializationError('windowed serde has no inner key serde: set one or configure a default key serde', { place: { topic } })
}

/**
 * Serde of `Windowed<K>` for time (tumbling, hopping, sliding) windows.
 * @param inner serde of the plain key; undefined = the application's default key serde (the
 *   result is a `DefaultingSerde` completed by whoever resolves default serdes)
 * @param windowSizeMs size used to rebuild the window end when deserializing (sliding windows: the time difference)
 */
export function timeWindowedSerde<K>(inner: Serde<K> | undefined, windowSizeMs: number): DefaultingSerde<Windowed<K>> {
  if (inner === undefined) {
    return {
      serialize: (topic) => missingInner(topic),
      deserialize: (topic) => missingInner(topic),
      withDefaults: (defaultKeySerde) => timeWindowedSerde<K>(defaultKeySerde, windowSizeMs),
    }
  }
  return {
    withDefaults: (k, v) => timeWindowedSerde<K>(resolveSerde(inner, k, { keySerde: k, valueSerde: v }), windowSizeMs),
    serialize(topic, data, headers) {
      if (data === null || data === undefined) return null
      const keyBytes = inner.serialize(topic, data.key, headers)
      if (keyBytes === null) throw new SerializationError('the key of a Windowed key serialized to null', { place: { topic } })
      const out = Buffer.allocUnsafe(keyBytes.length + 8)
      keyBytes.copy(out, 0)
      writeLong(out, data.window.startMs, keyBytes.length)
      return out
    },
    deserialize(topic, data, headers) {
      if (data === null) return null
      if (data.length < 8)
        throw new SerializationError(`time-windowed key needs at least 8 bytes, got ${data.length}`, { place: { topic } })
      const startMs = readLong(data, data.length - 8)
      const key = inner.deserialize(topic, data.subarray(0, data.length - 8), headers) as K
      return { key, window: Object.freeze({ startMs, endMs: startMs + windowSizeMs }) }
    },
  }
}

/** Serde of `Windowed<K>` for session windows (start and end both stored); `inner` as for {@link timeWindowedSerde}. */
export function sessionWindowedSerde<K>(inner: Serde<K> | undefined): DefaultingSerde<Windowed<K>> {
  if (inner === undefined) {
    return {
      serialize: (topic) => missingInner(topic),
      deserialize: (topic) => missingInner(topic),
      withDefaults: (defaultKeySerde) => sessionWindowedSerde<K>(defaultKeySerde),
    }
  }
  return {
    withDefaults: (k, v) => sessionWindowedSerde<K>(resolveSerde(inner, k, { keySerde: k, valueSerde: v })),
    serialize(topic, data, headers) {
      if (data === null || data === undefined) return null
      const keyBytes = inner.serialize(topic, data.key, headers)
      if (keyBytes === null) throw new SerializationError('the key of a Windowed key serialized to null', { place: { topic } })
      const out = Buffer.allocUnsafe(keyBytes.length + 16)
      keyBytes.copy(out, 0)
      writeLong(out, data.window.endMs, keyBytes.length)
      writeLong(out, data.window.startMs, keyBytes.length + 8)
      return out
    },
    deserialize(topic, data, headers) {
      if (data === null) return null
      if (data.length < 16)
        throw new SerializationError(`session-windowed key needs at least 16 bytes, got ${data.length}`, { place: { topic } })
      const endMs = readLong(data, data.length - 16)
      const startMs = readLong(data, data.length - 8)
      const key = inner.deserialize(topic, data.subarray(0, data.length - 16), headers) as K
      return { key, window: Object.freeze({ startMs, endMs }) }
    },
  }
}

/** Factories of windowed serdes (Kafka Streams: `WindowedSerdes`). */
export const WindowedSerdes = {
  timeWindowedSerdeFrom: timeWindowedSerde,
  sessionWindowedSerdeFrom: sessionWindowedSerde,
} as const
