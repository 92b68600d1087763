/**
 * Versioned key-value stores (Kafka Streams KIP-889: `VersionedKeyValueStore`, `VersionedRecord`,
 * `Stores.persistentVersionedKeyValueStore`, `RocksDBVersionedStore`).
 *
 * A versioned store keeps, per key, every value written within its history retention with the
 * timestamp it became valid, so it answers "what was the value of `key` as of time `t`". The
 * store's observed stream-time is the largest timestamp put; history older than
 * `observedStreamTime - historyRetentionMs` is not served (except the latest value of a key, which
 * never expires) and puts older than that are rejected.
 *
 * Layout, over an ordinary key-value bytes store (LevelDB under the runtime, with its changelog and
 * restore; in memory in the TopologyTestDriver): key `0x01 ‖ serialized key` → all versions of the
 * key, ascending by timestamp, `[0x01][per version: int64 timestamp, int32 length or -1 for a
 * tombstone, value bytes]`; key `0x00` → the observed stream-time (int64), written when it
 * advances. Kafka Streams splits history into time segments instead; reads and the retention rules
 * are the same.
 */
import { SerializationError, TopologyError } from '../errors.js'
import type { Serde } from '../serde.js'
import type { KeyValueBytesStore, StateStore } from './types.js'

/** A value with the timestamp it became valid, and the timestamp it stopped being valid when known (Kafka Streams: `VersionedRecord`). */
export interface VersionedRecord<V> {
  /** The value (never null: a delete has no record). */
  readonly value: V
  /** When this version became valid, milliseconds. */
  readonly timestamp: number
  /** When a later version replaced it (KIP-968); undefined for the latest version. */
  readonly validTo?: number
}

/** `put` result: the record put is the latest version of its key (Kafka Streams: `PUT_RETURN_CODE_VALID_TO_UNDEFINED`). */
export const PUT_RETURN_CODE_VALID_TO_UNDEFINED = -1
/** `put` result: the record was older than the history retention and not put (Kafka Streams: `PUT_RETURN_CODE_NOT_PUT`). */
export const PUT_RETURN_CODE_NOT_PUT = Number.MIN_SAFE_INTEGER

/**
 * A key-value store that keeps history (Kafka Streams: `VersionedKeyValueStore<K, V>`, KIP-889).
 * Timestamps are milliseconds.
 */
export interface VersionedKeyValueStore<K, V> extends StateStore {
  /** How long history is kept behind the observed stream-time, milliseconds. */
  readonly historyRetentionMs: number
  /**
   * Adds a version of `key` valid from `timestamp`; `null` is a delete (a tombstone version).
   * @returns the new version's validTo timestamp, {@link PUT_RETURN_CODE_VALID_TO_UNDEFINED} when it
   *   is the latest version, or {@link PUT_RETURN_CODE_NOT_PUT} when `timestamp` is older than
   *   `observedStreamTime - historyRetentionMs`
   */
  put(key: K, value: V | null, timestamp: number): Promise<number>
  /**
   * Deletes `key` as of `timestamp` and returns the version valid then, or `null` (also when
   * `timestamp` is older than the history retention: nothing is deleted then).
   */
  delete(key: K, timestamp: number): Promise<VersionedRecord<V> | null>
  /** The latest version of `key`, or `null` when there is none or it is a delete. */
  get(key: K): Promise<VersionedRecord<V> | null>
  /**
   * The version of `key` valid at `asOfTimestamp` (inclusive), or `null`. Before the history
   * retention only the latest version is served.
   */
  get(key: K, asOfTimestamp: number): Promise<VersionedRecord<V> | null>
}

/** A versioned store description for `Materialized.as` (Kafka Streams: `VersionedBytesStoreSupplier`). */
export interface VersionedBytesStoreSupplier {
  /** The store name (also the name of its changelog, `<applicationId>-<name>-changelog`). */
  readonly name: string
  /** History retention, milliseconds. */
  readonly historyRetentionMs: number
  /** Kafka Streams' segment interval; accepted for compatibility, not used by this layout. */
  readonly segmentIntervalMs: number
}

/** What a {@link StoreDef} says about a versioned store. */
export interface VersionedStoreOptions {
  /** History retention, milliseconds. */
  readonly historyRetentionMs: number
  /** Kafka Streams' segment interval, milliseconds (kept, not used by this layout). */
  readonly segmentIntervalMs: number
}

/** True for a {@link VersionedBytesStoreSupplier}. */
export function isVersionedBytesStoreSupplier(x: unknown): x is VersionedBytesStoreSupplier {
  return (
    x !== null &&
    typeof x === 'object' &&
    typeof (x as VersionedBytesStoreSupplier).name === 'string' &&
    typeof (x as VersionedBytesStoreSupplier).historyRetentionMs === 'number'
  )
}

/** True for a store built from a versioned `StoreDef`. */
export function isVersionedStore(store: unknown): store is VersionedKeyValueStore<unknown, unknown> {
  return store instanceof VersionedKeyValueStoreFacade
}

/**
 * `Stores.persistentVersionedKeyValueStore(name, historyRetentionMs[, segmentIntervalMs])`: a
 * versioned store on LevelDB. The segment interval (default: a third of the history retention, at
 * least 2 s) is only validated and kept, for compatibility.
 * @throws TopologyError for a bad name or a negative duration
 */
export function persistentVersionedKeyValueStore(
  name: string,
  historyRetentionMs: number,
  segmentIntervalMs?: number,
): VersionedBytesStoreSupplier {
  const m = 'Stores.persistentVersionedKeyValueStore'
  if (typeof name !== 'string' || !/^[a-zA-Z0-9._-]+$/.test(name))
    throw new TopologyError(`${m}: parameter 'name' must be a legal store name`)
  if (typeof historyRetentionMs !== 'number' || !Number.isFinite(historyRetentionMs) || historyRetentionMs < 0)
    throw new TopologyError(`${m}: parameter 'historyRetentionMs' must be a number of milliseconds >= 0`)
  const seg = segmentIntervalMs ?? Math.max(Math.floor(historyRetentionMs / 3), 2000)
  if (typeof seg !== 'number' || !Number.isFinite(seg) || seg < 1)
    throw new TopologyError(`${m}: parameter 'segmentIntervalMs' must be a number of milliseconds >= 1`)
  return Object.freeze({ name, historyRetentionMs, segmentIntervalMs: seg })
}

interface Version {
  timestamp: number
  /** null: tombstone */
  value: Buffer | null
}

const META_KEY = Buffer.from([0x00])
const DATA_PREFIX = 0x01
const FORMAT = 0x01
const NO_TIMESTAMP = Number.MIN_SAFE_INTEGER

function encodeVersions(versions: ReadonlyArray<Version>): Buffer {
  let size = 1
  for (const v of versions) size += 12 + (v.value?.length ?? 0)
  const out = Buffer.allocUnsafe(size)
  out[0] = FORMAT
  let at = 1
  for (const v of versions) {
    out.writeBigInt64BE(BigInt(v.timestamp), at)
    out.writeInt32BE(v.value === null ? -1 : v.value.length, at + 8)
    at += 12
    if (v.value !== null) at += v.value.copy(out, at)
  }
  return out
}

function decodeVersions(b: Buffer, store: string): Version[] {
  if (b[0] !== FORMAT) throw new SerializationError(`versioned store '${store}': unknown value format ${b[0]}`, { place: { store } })
  const out: Version[] = []
  let at = 1
  while (at < b.length) {
    const timestamp = Number(b.readBigInt64BE(at))
    const len = b.readInt32BE(at + 8)
    at += 12
    out.push({ timestamp, value: len < 0 ? null : b.subarray(at, at + len) })
    if (len > 0) at += len
  }
  return out
}

/** Typed {@link VersionedKeyValueStore} over a key-value bytes store (see the module comment). */
export class VersionedKeyValueStoreFacade<K, V> implements VersionedKeyValueStore<K, V> {
  readonly name: string
  readonly persistent: boolean
  readonly historyRetentionMs: number
  private observed: number | undefined

  constructor(
    readonly bytes: KeyValueBytesStore,
    options: VersionedStoreOptions,
    private readonly keySerde: Serde<K> | undefined,
    private readonly valueSerde: Serde<V> | undefined,
    private readonly topic: string,
  ) {
    this.name = bytes.name
    this.persistent = bytes.persistent
    this.historyRetentionMs = options.historyRetentionMs
  }

  /** The store's observed stream-time: the largest timestamp put (`Number.MIN_SAFE_INTEGER` before any). */
  async observedStreamTime(): Promise<number> {
    if (this.observed === undefined) {
      const b = await this.bytes.get(META_KEY)
      this.observed = b === undefined ? NO_TIMESTAMP : Number(b.readBigInt64BE(0))
    }
    return this.observed
  }

  private serdeOf<T>(serde: Serde<T> | undefined, what: string): Serde<T> {
    if (!serde)
      throw new SerializationError(
        `no ${what} serde for versioned store '${this.name}': set it on the store (Materialized/Stores) or configure a default ${what} serde`,
        { place: { store: this.name } },
      )
    return serde
  }

  private keyBytes(key: K): Buffer {
    const k = this.serdeOf(this.keySerde, 'key').serialize(this.topic, key)
    if (k === null)
      throw new SerializationError(`versioned store '${this.name}': the key serialized to null`, { place: { store: this.name } })
    const out = Buffer.allocUnsafe(1 + k.length)
    out[0] = DATA_PREFIX
    k.copy(out, 1)
    return out
  }

  private record(v: Version, validTo?: number): VersionedRecord<V> {
    const value = this.serdeOf(this.valueSerde, 'value').deserialize(this.topic, v.value) as V
    return validTo === undefined ? { value, timestamp: v.timestamp } : { value, timestamp: v.timestamp, validTo }
  }

  private async versions(k: Buffer): Promise<Version[]> {
    const b = await this.bytes.get(k)
    return b === undefined ? [] : decodeVersions(b, this.name)
  }

  async put(key: K, value: V | null, timestamp: number): Promise<number> {
    const observed = await this.observedStreamTime()
    if (timestamp < observed - this.historyRetentionMs) return PUT_RETURN_CODE_NOT_PUT
    const k = this.keyBytes(key)
    const bytes = value === null || value === undefined ? null : this.serdeOf(this.valueSerde, 'value').serialize(this.topic, value)
    if (timestamp > observed) {
      this.observed = timestamp
      const t = Buffer.allocUnsafe(8)
      t.writeBigInt64BE(BigInt(timestamp))
      await this.bytes.put(META_KEY, t)
    }
    const versions = await this.versions(k)
    let i = versions.length
    while (i > 0 && versions[i - 1]!.timestamp > timestamp) i--
    if (i > 0 && versions[i - 1]!.timestamp === timestamp) versions[i - 1] = { timestamp, value: bytes }
    else versions.splice(i, 0, { timestamp, value: bytes })
    const at = versions.findIndex((v) => v.timestamp === timestamp)
    const validTo = at + 1 < versions.length ? versions[at + 1]!.timestamp : PUT_RETURN_CODE_VALID_TO_UNDEFINED
    // Versions whose validity ended at or before the retention bound can never be read again.
    const bound = this.observed! - this.historyRetentionMs
    let drop = 0
    while (drop + 1 < versions.length && versions[drop + 1]!.timestamp <= bound) drop++
    const kept = versions.slice(drop)
    const onlyOldTombstone = kept.length === 1 && kept[0]!.value === null && kept[0]!.timestamp <= bound
    await this.bytes.put(k, onlyOldTombstone ? null : encodeVersions(kept))
    return validTo
  }

  async delete(key: K, timestamp: number): Promise<VersionedRecord<V> | null> {
    const observed = await this.observedStreamTime()
    if (timestamp < observed - this.historyRetentionMs) return null
    const before = await this.get(key, timestamp)
    await this.put(key, null, timestamp)
    return before
  }

  get(key: K): Promise<VersionedRecord<V> | null>
  get(key: K, asOfTimestamp: number): Promise<VersionedRecord<V> | null>
  async get(key: K, asOfTimestamp?: number): Promise<VersionedRecord<V> | null> {
    const versions = await this.versions(this.keyBytes(key))
    const latest = versions[versions.length - 1]
    if (asOfTimestamp === undefined) return latest === undefined || latest.value === null ? null : this.record(latest)
    const observed = await this.observedStreamTime()
    if (asOfTimestamp < observed - this.historyRetentionMs) {
      // Past the retention only the latest version is served (it never expires).
      return latest !== undefined && latest.value !== null && latest.timestamp <= asOfTimestamp ? this.record(latest) : null
    }
    for (let i = versions.length - 1; i >= 0; i--) {
      const v = versions[i]!
      if (v.timestamp <= asOfTimestamp)
        return v.value === null ? null : this.record(v, i + 1 < versions.length ? versions[i + 1]!.timestamp : undefined)
    }
    return null
  }
}
