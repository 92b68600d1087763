/**
 * Serdes: conversion between typed values and Kafka's bytes (Kafka Streams: `Serde`, `Serdes`).
 *
 * `null` always passes through as `null` (a tombstone). The built-in number serdes use Kafka's
 * big-endian encodings so Java services can read our topics.
 */
import { SerializationError } from './errors.js'

/** Kafka record headers (the kafkajs shape). */
export type Headers = Record<string, Buffer | string | (Buffer | string)[] | undefined>

/**
 * A serializer/deserializer pair for values of type `T`.
 *
 * Both directions are synchronous so the per-record hot path never awaits. Serdes that need I/O
 * (a schema registry) implement the optional `prepare*` hooks, which the runtime awaits once per
 * batch before the batch is (de)serialized.
 */
export interface Serde<T> {
  /** Encodes `data` for `topic`. `null`/`undefined` → `null`. Throws on unencodable data. */
  serialize(topic: string, data: T | null | undefined, headers?: Headers): Buffer | null
  /** Decodes bytes read from `topic`. `null` → `null`. Throws on malformed bytes. */
  deserialize(topic: string, data: Buffer | null, headers?: Headers): T | null
  /** Optional: awaited before a batch of raw payloads from `topic` is deserialized (e.g. fetch writer schemas by id). */
  prepareDeserialize?(topic: string, payloads: ReadonlyArray<Buffer | null>): Promise<void>
  /** Optional: awaited once before the first `serialize` for `topic` (e.g. register the schema). */
  prepareSerialize?(topic: string): Promise<void>
}

/** Builds a serde from two plain functions (null handling is added). */
export function serdeFrom<T>(serialize: (data: T, topic: string) => Buffer, deserialize: (data: Buffer, topic: string) => T): Serde<T> {
  return {
    serialize: (topic, data) => (data === null || data === undefined ? null : serialize(data, topic)),
    deserialize: (topic, data) => (data === null ? null : deserialize(data, topic)),
  }
}

function fixedWidth(name: string, width: number, buf: Buffer, topic: string): void {
  if (buf.length !== width) {
    throw new SerializationError(`${name} serde expects ${width} bytes but got ${buf.length}`, { place: { topic } })
  }
}

const stringSerde: Serde<string> = serdeFrom<string>(
  (s) => Buffer.from(s, 'utf8'),
  (b) => b.toString('utf8'),
)

const bytesSerde: Serde<Buffer> = serdeFrom<Buffer>(
  (b) => b,
  (b) => b,
)

const intSerde: Serde<number> = serdeFrom<number>(
  (n) => {
    const b = Buffer.allocUnsafe(4)
    b.writeInt32BE(n)
    return b
  },
  (b, topic) => {
    fixedWidth('Integer', 4, b, topic)
    return b.readInt32BE(0)
  },
)

const longSerde: Serde<number> = serdeFrom<number>(
  (n) => {
    const b = Buffer.allocUnsafe(8)
    b.writeBigInt64BE(BigInt(Math.trunc(n)))
    return b
  },
  (b, topic) => {
    fixedWidth('Long', 8, b, topic)
    return Number(b.readBigInt64BE(0))
  },
)

const bigintSerde: Serde<bigint> = serdeFrom<bigint>(
  (n) => {
    const b = Buffer.allocUnsafe(8)
    b.writeBigInt64BE(n)
    return b
  },
  (b, topic) => {
    fixedWidth('Long', 8, b, topic)
    return b.readBigInt64BE(0)
  },
)

const doubleSerde: Serde<number> = serdeFrom<number>(
  (n) => {
    const b = Buffer.allocUnsafe(8)
    b.writeDoubleBE(n)
    return b
  },
  (b, topic) => {
    fixedWidth('Double', 8, b, topic)
    return b.readDoubleBE(0)
  },
)

function jsonSerde<T = unknown>(): Serde<T> {
  return serdeFrom<T>(
    (v) => Buffer.from(JSON.stringify(v), 'utf8'),
    (b) => JSON.parse(b.toString('utf8')) as T,
  )
}

/** Factory of the built-in serdes (Kafka Streams: `Serdes`). */
export const Serdes = {
  /** UTF-8 strings. */
  String: (): Serde<string> => stringSerde,
  /** Raw bytes, unchanged. */
  Bytes: (): Serde<Buffer> => bytesSerde,
  /** 32-bit big-endian signed integer (Kafka's IntegerSerializer). */
  Integer: (): Serde<number> => intSerde,
  /** 64-bit big-endian signed integer as a JS number (Kafka's LongSerializer); exact up to 2^53. */
  Long: (): Serde<number> => longSerde,
  /** 64-bit big-endian signed integer as a bigint (Kafka's LongSerializer). */
  BigInt: (): Serde<bigint> => bigintSerde,
  /** 64-bit IEEE-754 big-endian (Kafka's DoubleSerializer). */
  Double: (): Serde<number> => doubleSerde,
  /** UTF-8 JSON. The type parameter is not checked at run time. */
  Json: <T = unknown>(): Serde<T> => jsonSerde<T>(),
  /** A serde from two functions. */
  from: serdeFrom,
} as const

/**
 * A serde composed of other serdes, some of which may be left unset so that the application's
 * default serdes apply (Kafka Streams: `WrappingNullableSerde#setIfUnset`). Examples: the
 * stream-stream outer-join store's key serde wraps the join key's serde; a table repartition
 * topic's `Change` serde wraps the value serde. Whoever resolves default serdes (the task engine,
 * for store, source and sink serdes) must call {@link resolveSerde}, which replaces such a serde by
 * `withDefaults(defaultKeySerde, defaultValueSerde)`; used unresolved, it throws a
 * `SerializationError` when a wrapped serde is missing.
 */
export interface DefaultingSerde<T> extends Serde<T> {
  /** A copy whose unset inner serdes are taken from the defaults (key serde for keys, value serde for values). */
  withDefaults(defaultKeySerde: Serde<any> | undefined, defaultValueSerde: Serde<any> | undefined): Serde<T>
}

/** True if `serde` is a {@link DefaultingSerde} (has a `withDefaults` method). */
export function isDefaultingSerde<T>(serde: Serde<T> | undefined): serde is DefaultingSerde<T> {
  return serde !== undefined && serde !== null && typeof (serde as Partial<DefaultingSerde<T>>).withDefaults === 'function'
}

/**
 * Resolves a declared serde against the application's defaults: a {@link DefaultingSerde} is
 * completed with the defaults, a missing serde becomes `fallback` (the default serde for its role),
 * any other serde is returned as is.
 */
export function resolveSerde<T>(
  serde: Serde<T> | undefined,
  fallback: Serde<any> | undefined,
  defaults: { readonly keySerde?: Serde<any>; readonly valueSerde?: Serde<any> },
): Serde<T> | undefined {
  if (serde === undefined) return fallback
  return isDefaultingSerde(serde) ? serde.withDefaults(defaults.keySerde, defaults.valueSerde) : serde
}
