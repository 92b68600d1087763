/**
 * State store interfaces (Kafka Streams: `org.apache.kafka.streams.state`).
 *
 * Two levels:
 * - typed stores (`KeyValueStore<K, V>`, `WindowStore<K, V>`, `SessionStore<K, V>`) that processors
 *   and users see; implemented in topology/ as a metered/typed layer over
 * - bytes stores (`KeyValueBytesStore`, `WindowBytesStore`, `SessionBytesStore`): Buffer keys and
 *   values, ordered by unsigned byte order of the serialized key. The runtime (lib/) supplies
 *   caching → change-logging → LevelDB implementations; the TopologyTestDriver supplies in-memory
 *   ones. All reads and writes are async; implementations answer from memory whenever they can.
 */
import type { Serde } from '../serde.js'

/** Common store surface (Kafka Streams: `StateStore`). */
export interface StateStore {
  readonly name: string
  /** True for LevelDB-backed stores. */
  readonly persistent: boolean
}

export interface KeyValue<K, V> {
  readonly key: K
  readonly value: V
}

/** A time window `[startMs, endMs)` (session windows and sliding windows are inclusive of end). */
export interface Window {
  readonly startMs: number
  readonly endMs: number
}

/** A key in a window (Kafka Streams: `Windowed<K>`). */
export interface Windowed<K> {
  readonly key: K
  readonly window: Window
}

/** A value with the timestamp of the record that last updated it (Kafka Streams: `ValueAndTimestamp`). */
export interface ValueAndTimestamp<V> {
  readonly value: V
  readonly timestamp: number
}

export interface ReadOnlyKeyValueStore<K, V> extends StateStore {
  get(key: K): Promise<V | undefined>
  /** Entries with `from <= key <= to` in serialized-key byte order; either bound may be omitted. */
  range(from?: K, to?: K): AsyncIterable<KeyValue<K, V>>
  all(): AsyncIterable<KeyValue<K, V>>
  approximateNumEntries(): Promise<number>
}

export interface KeyValueStore<K, V> extends ReadOnlyKeyValueStore<K, V> {
  /** Writes `value`; `null` deletes the key. */
  put(key: K, value: V | null): Promise<void>
  /** Writes only if absent; returns the previous value if present. */
  putIfAbsent(key: K, value: V): Promise<V | undefined>
  putAll(entries: ReadonlyArray<KeyValue<K, V | null>>): Promise<void>
  /** Deletes and returns the old value. */
  delete(key: K): Promise<V | undefined>
}

export interface ReadOnlyWindowStore<K, V> extends StateStore {
  /** Window size in milliseconds (used to build `Windowed` ends). */
  readonly windowSizeMs: number
  fetch(key: K, windowStartMs: number): Promise<V | undefined>
  /** Windows of `key` whose start is in `[timeFrom, timeTo]`, ascending by start (duplicates in insertion order). */
  fetchRange(key: K, timeFrom: number, timeTo: number): AsyncIterable<KeyValue<number, V>>
  /** All keys' windows whose start is in `[timeFrom, timeTo]`. */
  fetchAll(timeFrom: number, timeTo: number): AsyncIterable<KeyValue<Windowed<K>, V>>
  all(): AsyncIterable<KeyValue<Windowed<K>, V>>
}

export interface WindowStore<K, V> extends ReadOnlyWindowStore<K, V> {
  /** Writes the window starting at `windowStartMs`; `null` deletes it (ignored with duplicates). */
  put(key: K, value: V | null, windowStartMs: number): Promise<void>
}

export interface ReadOnlySessionStore<K, AGG> extends StateStore {
  /** Sessions of `key` with `end >= earliestSessionEndTime` and `start <= latestSessionStartTime`, ascending by end. */
  findSessions(key: K, earliestSessionEndTime: number, latestSessionStartTime: number): AsyncIterable<KeyValue<Windowed<K>, AGG>>
  fetchSession(key: K, sessionStartTime: number, sessionEndTime: number): Promise<AGG | undefined>
  /** All sessions of `key`. */
  fetch(key: K): AsyncIterable<KeyValue<Windowed<K>, AGG>>
  all(): AsyncIterable<KeyValue<Windowed<K>, AGG>>
}

export interface SessionStore<K, AGG> extends ReadOnlySessionStore<K, AGG> {
  put(sessionKey: Windowed<K>, aggregate: AGG | null): Promise<void>
  remove(sessionKey: Windowed<K>): Promise<void>
}

// ---------------------------------------------------------------------------------------------
// Bytes stores: what a StoreProvider (runtime or test driver) implements.
// ---------------------------------------------------------------------------------------------

export interface BytesStoreBase {
  readonly name: string
  readonly persistent: boolean
  /** Makes buffered writes durable/visible to lower layers (called by the runtime at commit). */
  flush(): Promise<void>
  close(): Promise<void>
}

export interface KeyValueBytesStore extends BytesStoreBase {
  get(key: Buffer): Promise<Buffer | undefined>
  /** Batched read; implementations serve from memory and fetch misses in one call. */
  getMany(keys: ReadonlyArray<Buffer>): Promise<Array<Buffer | undefined>>
  /** `null` deletes. */
  put(key: Buffer, value: Buffer | null): Promise<void>
  putAll(entries: ReadonlyArray<readonly [Buffer, Buffer | null]>): Promise<void>
  /** Inclusive range in unsigned byte order; omitted bounds are open. */
  range(from?: Buffer, to?: Buffer): AsyncIterable<readonly [Buffer, Buffer]>
  approximateNumEntries(): Promise<number>
}

export interface WindowBytesStore extends BytesStoreBase {
  readonly retentionMs: number
  readonly windowSizeMs: number
  readonly retainDuplicates: boolean
  /**
   * Writes a window. With `retainDuplicates`, every put is appended (a sequence number keeps
   * them apart) and `null` is ignored. Windows whose start is older than
   * `observedStreamTime - retentionMs` are expired: puts to them are ignored and reads skip them.
   */
  put(key: Buffer, windowStartMs: number, value: Buffer | null): Promise<void>
  fetch(key: Buffer, windowStartMs: number): Promise<Buffer | undefined>
  fetchRange(key: Buffer, timeFrom: number, timeTo: number): AsyncIterable<{ readonly windowStartMs: number; readonly value: Buffer }>
  fetchAll(
    timeFrom: number,
    timeTo: number,
  ): AsyncIterable<{ readonly key: Buffer; readonly windowStartMs: number; readonly value: Buffer }>
}

export interface SessionBytesStore extends BytesStoreBase {
  readonly retentionMs: number
  /** `null` removes the session. */
  put(key: Buffer, startMs: number, endMs: number, value: Buffer | null): Promise<void>
  fetchSession(key: Buffer, startMs: number, endMs: number): Promise<Buffer | undefined>
  /** Sessions of `key` (or of all keys when `key` is undefined) with end >= earliestEnd and start <= latestStart, ascending by end. */
  findSessions(
    key: Buffer | undefined,
    earliestSessionEndTime: number,
    latestSessionStartTime: number,
  ): AsyncIterable<{ readonly key: Buffer; readonly startMs: number; readonly endMs: number; readonly value: Buffer }>
}

/** Kinds of store. */
export type StoreType = 'keyValue' | 'window' | 'session'

/**
 * Everything the runtime needs to know to build, log and restore a store (produced by the DSL,
 * `Materialized`, or `Stores.*StoreBuilder` + `addStateStore`).
 */
export interface StoreDef {
  readonly name: string
  readonly type: StoreType
  readonly keySerde?: Serde<any>
  readonly valueSerde?: Serde<any>
  /** Backed by a changelog topic `<applicationId>-<name>-changelog`. @defaultValue true */
  readonly loggingEnabled: boolean
  /** Extra topic configs for the changelog topic. */
  readonly logConfig: Readonly<globalThis.Record<string, string>>
  /** Whether writes are cached and deduplicated until commit. @defaultValue true */
  readonly cachingEnabled: boolean
  /** Window/session stores: how long windows are kept, milliseconds. */
  readonly retentionMs?: number
  /** Window stores: window size, milliseconds. */
  readonly windowSizeMs?: number
  /** Window stores: keep every put (stream-stream join buffers). */
  readonly retainDuplicates?: boolean
  /** Persistent (LevelDB) or in-memory under the runtime. @defaultValue true */
  readonly persistent: boolean
  /**
   * When set, the store's changelog is this existing topic instead of an internal one (a source
   * KTable materialized from its own input topic, Kafka Streams' source-topic optimization).
   */
  readonly sourceChangelogTopic?: string
  /**
   * Values are stored with the timestamp of the record that wrote them (Kafka Streams:
   * `TimestampedKeyValueStore` / `TimestampedWindowStore`): the bytes value is an 8-byte
   * big-endian timestamp followed by the value serde's bytes. DSL tables and aggregates use this.
   * @defaultValue false
   */
  readonly timestamped?: boolean
  /**
   * A versioned key-value store (KIP-889; `type` is `keyValue`): the typed store is a
   * `VersionedKeyValueStore` keeping history for `historyRetentionMs`.
   */
  readonly versioned?: { readonly historyRetentionMs: number; readonly segmentIntervalMs: number }
}

/** Creates the bytes stores of a task (runtime: LevelDB layers; driver: in-memory). */
export interface StoreProvider {
  keyValue(def: StoreDef): KeyValueBytesStore | Promise<KeyValueBytesStore>
  window(def: StoreDef): WindowBytesStore | Promise<WindowBytesStore>
  session(def: StoreDef): SessionBytesStore | Promise<SessionBytesStore>
}
