/**
 * Typed store facades over bytes stores (Kafka Streams: the `Metered*Store` layer that applies
 * serdes): what processors get from `context.getStateStore(name)`.
 *
 * Keys and values are (de)serialized with the StoreDef's serdes (or the application defaults),
 * using the changelog topic name `<applicationId>-<store>-changelog` as the serde's topic, as
 * Kafka Streams does. Timestamped stores (`StoreDef.timestamped`) keep
 * `ValueAndTimestamp<V>` as `[int64 BE timestamp][value bytes]`.
 */
import { SerializationError } from '../errors.js'
import { resolveSerde, type Headers, type Serde } from '../serde.js'
import type {
  KeyValue,
  KeyValueBytesStore,
  KeyValueStore,
  SessionBytesStore,
  SessionStore,
  StateStore,
  StoreDef,
  ValueAndTimestamp,
  WindowBytesStore,
  WindowStore,
  Windowed,
  BytesStoreBase,
} from './types.js'
import { VersionedKeyValueStoreFacade } from './versioned.js'
import { isFlushListenerTarget, type CacheRecordContext } from './caching.js'

/** A key-value store of values with timestamps (Kafka Streams: `TimestampedKeyValueStore`). DSL tables and aggregates use it. */
export interface TimestampedKeyValueStore<K, V> extends KeyValueStore<K, ValueAndTimestamp<V>> {}

/** A window store of values with timestamps (Kafka Streams: `TimestampedWindowStore`). */
export interface TimestampedWindowStore<K, V> extends WindowStore<K, ValueAndTimestamp<V>> {}

/** Builds a {@link ValueAndTimestamp}; `null`/`undefined` value → `null` (Kafka Streams: `ValueAndTimestamp.make`). */
export function valueAndTimestamp<V>(value: V | null | undefined, timestamp: number): ValueAndTimestamp<V> | null {
  return value === null || value === undefined ? null : { value, timestamp }
}

/**
 * An entry flushed from a store's record cache (KIP-63), deserialized: what the store's flush
 * listener forwards downstream (Kafka Streams: the `Record<K, Change<V>>` a `CacheFlushListener`
 * gets).
 */
export interface FlushedEntry<K, V> {
  readonly key: K
  /** `null`: the key was deleted. */
  readonly newValue: V | null
  /** The value before this flush, when old values were asked for; else `null`. */
  readonly oldValue: V | null
  /** Timestamp of the record whose write is flushed (the latest write of the key). */
  readonly timestamp: number
  /** Headers of that record. */
  readonly headers: Headers
  /** @internal the write's record context */
  readonly context: CacheRecordContext
}

/** Listener of flushed entries (Kafka Streams: `CacheFlushListener`). */
export type FlushListener<K, V> = (entry: FlushedEntry<K, V>) => Promise<void>

/** Smallest/largest times used for open time ranges. */
const MIN_TIME = Number.MIN_SAFE_INTEGER
const MAX_TIME = Number.MAX_SAFE_INTEGER

/** Serde environment of a typed store. */
export interface TypedStoreContext {
  readonly applicationId: string
  readonly defaultKeySerde?: Serde<any>
  readonly defaultValueSerde?: Serde<any>
}

/** Changelog topic name of a store (used as the serde topic). */
export function changelogTopicFor(applicationId: string, storeName: string): string {
  return `${applicationId}-${storeName}-changelog`
}

interface Codec<T> {
  encode(v: T): Buffer
  decode(b: Buffer): T
}

/** Encodes `value`, or gives null (a tombstone / delete) for null or undefined. */
function encodeOrTombstone<T>(codec: Codec<T>, value: T | null | undefined): Buffer | null {
  return value === null || value === undefined ? null : codec.encode(value)
}

/** Decodes `bytes`, or gives undefined when the store had nothing. */
function decodeIfPresent<T>(codec: Codec<T>, bytes: Buffer | undefined): T | undefined {
  return bytes === undefined ? undefined : codec.decode(bytes)
}

function serdeCodec<T>(serde: Serde<T> | undefined, topic: string, what: string, store: string): Codec<T> {
  const get = (): Serde<T> => {
    if (!serde)
      throw new SerializationError(
        `no ${what} serde for store '${store}': set it on the store (Materialized/Stores) or configure a default ${what} serde`,
        { place: { store } },
      )
    return serde
  }
  return {
    encode(v) {
      let b: Buffer | null
      try {
        b = get().serialize(topic, v)
      } catch (e) {
        if (e instanceof SerializationError) throw e
        throw new SerializationError(`failed to serialize ${what} for store '${store}'`, { cause: e, place: { store } })
      }
      if (b === null)
        throw new SerializationError(`${what} serde of store '${store}' returned null for a non-null ${what}`, { place: { store } })
      return b
    },
    decode(b) {
      let v: T | null
      try {
        v = get().deserialize(topic, b)
      } catch (e) {
        if (e instanceof SerializationError) throw e
        throw new SerializationError(`failed to deserialize ${what} of store '${store}'`, { cause: e, place: { store } })
      }
      return v as T
    },
  }
}

function timestampedCodec<V>(inner: Codec<V>): Codec<ValueAndTimestamp<V>> {
  return {
    encode(vt) {
      const v = inner.encode(vt.value)
      const out = Buffer.allocUnsafe(8 + v.length)
      out.writeBigInt64BE(BigInt(Math.trunc(vt.timestamp)), 0)
      v.copy(out, 8)
      return out
    },
    decode(b) {
      return { timestamp: Number(b.readBigInt64BE(0)), value: inner.decode(b.subarray(8)) }
    },
  }
}

function codecsFor(def: StoreDef, ctx: TypedStoreContext): { key: Codec<any>; value: Codec<any> } {
  const topic = changelogTopicFor(ctx.applicationId, def.name)
  const defaults = {
    ...(ctx.defaultKeySerde !== undefined ? { keySerde: ctx.defaultKeySerde } : {}),
    ...(ctx.defaultValueSerde !== undefined ? { valueSerde: ctx.defaultValueSerde } : {}),
  }
  const key = serdeCodec(resolveSerde(def.keySerde, ctx.defaultKeySerde, defaults), topic, 'key', def.name)
  const plain = serdeCodec(resolveSerde(def.valueSerde, ctx.defaultValueSerde, defaults), topic, 'value', def.name)
  return { key, value: def.timestamped ? timestampedCodec(plain) : plain }
}

/** Typed key-value facade over a {@link KeyValueBytesStore}. */
export class KeyValueStoreFacade<K, V> implements KeyValueStore<K, V> {
  readonly name: string
  readonly persistent: boolean
  constructor(
    readonly bytes: KeyValueBytesStore,
    private readonly keyCodec: Codec<K>,
    private readonly valueCodec: Codec<V>,
  ) {
    this.name = bytes.name
    this.persistent = bytes.persistent
  }
  async get(key: K): Promise<V | undefined> {
    const b = await this.bytes.get(this.keyCodec.encode(key))
    return decodeIfPresent(this.valueCodec, b)
  }
  async *range(from?: K, to?: K): AsyncIterable<KeyValue<K, V>> {
    const f = from === undefined ? undefined : this.keyCodec.encode(from)
    const t = to === undefined ? undefined : this.keyCodec.encode(to)
    for await (const [k, v] of this.bytes.range(f, t)) yield { key: this.keyCodec.decode(k), value: this.valueCodec.decode(v) }
  }
  all(): AsyncIterable<KeyValue<K, V>> {
    return this.range()
  }
  /**
   * Entries whose key bytes start with `prefix` (already serialized), in key-byte order (Kafka
   * Streams: `prefixScan`, KIP-614): one range read from the prefix, stopped at the first key past it.
   */
  async *prefixScanBytes(prefix: Buffer): AsyncIterable<KeyValue<K, V>> {
    for await (const [k, v] of this.bytes.range(prefix, undefined)) {
      if (k.length < prefix.length || k.compare(prefix, 0, prefix.length, 0, prefix.length) !== 0) return
      yield { key: this.keyCodec.decode(k), value: this.valueCodec.decode(v) }
    }
  }
  approximateNumEntries(): Promise<number> {
    return this.bytes.approximateNumEntries()
  }
  put(key: K, value: V | null): Promise<void> {
    return this.bytes.put(this.keyCodec.encode(key), encodeOrTombstone(this.valueCodec, value))
  }
  async putIfAbsent(key: K, value: V): Promise<V | undefined> {
    const k = this.keyCodec.encode(key)
    const old = await this.bytes.get(k)
    if (old !== undefined) return this.valueCodec.decode(old)
    await this.bytes.put(k, this.valueCodec.encode(value))
    return undefined
  }
  putAll(entries: ReadonlyArray<KeyValue<K, V | null>>): Promise<void> {
    return this.bytes.putAll(entries.map((e) => [this.keyCodec.encode(e.key), encodeOrTombstone(this.valueCodec, e.value)] as const))
  }
  async delete(key: K): Promise<V | undefined> {
    const k = this.keyCodec.encode(key)
    const old = await this.bytes.get(k)
    if (old !== undefined) await this.bytes.put(k, null)
    return decodeIfPresent(this.valueCodec, old)
  }
  /**
   * Registers the listener of this store's record cache (Kafka Streams:
   * `CachedStateStore#setFlushListener`, KIP-63): with caching on, writes stay in the cache and the
   * listener forwards the latest value of each key when the cache is flushed (commit, eviction).
   * @returns true when the store caches (the listener forwards, the processor must not); false
   *   when caching is off for this store (the processor forwards each update itself)
   */
  setFlushListener(listener: FlushListener<K, V>, sendOldValues: boolean): boolean {
    if (!isFlushListenerTarget(this.bytes)) return false
    return this.bytes.setFlushListener(
      (f) =>
        listener({
          key: this.keyCodec.decode(f.key),
          newValue: f.newValue === null ? null : this.valueCodec.decode(f.newValue),
          oldValue: f.oldValue === null ? null : this.valueCodec.decode(f.oldValue),
          timestamp: f.context.timestamp,
          headers: f.context.headers,
          context: f.context,
        }),
      sendOldValues,
    )
  }
}

/** Typed window facade over a {@link WindowBytesStore}. */
export class WindowStoreFacade<K, V> implements WindowStore<K, V> {
  readonly name: string
  readonly persistent: boolean
  readonly windowSizeMs: number
  constructor(
    readonly bytes: WindowBytesStore,
    private readonly keyCodec: Codec<K>,
    private readonly valueCodec: Codec<V>,
  ) {
    this.name = bytes.name
    this.persistent = bytes.persistent
    this.windowSizeMs = bytes.windowSizeMs
  }
  async fetch(key: K, windowStartMs: number): Promise<V | undefined> {
    const b = await this.bytes.fetch(this.keyCodec.encode(key), windowStartMs)
    return decodeIfPresent(this.valueCodec, b)
  }
  async *fetchRange(key: K, timeFrom: number, timeTo: number): AsyncIterable<KeyValue<number, V>> {
    for await (const e of this.bytes.fetchRange(this.keyCodec.encode(key), timeFrom, timeTo))
      yield { key: e.windowStartMs, value: this.valueCodec.decode(e.value) }
  }
  async *fetchAll(timeFrom: number, timeTo: number): AsyncIterable<KeyValue<Windowed<K>, V>> {
    for await (const e of this.bytes.fetchAll(timeFrom, timeTo)) {
      yield {
        key: { key: this.keyCodec.decode(e.key), window: { startMs: e.windowStartMs, endMs: e.windowStartMs + this.windowSizeMs } },
        value: this.valueCodec.decode(e.value),
      }
    }
  }
  all(): AsyncIterable<KeyValue<Windowed<K>, V>> {
    return this.fetchAll(MIN_TIME, MAX_TIME)
  }
  put(key: K, value: V | null, windowStartMs: number): Promise<void> {
    return this.bytes.put(this.keyCodec.encode(key), windowStartMs, encodeOrTombstone(this.valueCodec, value))
  }
  /**
   * Registers the listener of this store's record cache (Kafka Streams: `CachingWindowStore`'s
   * flush listener, KIP-63); flushed entries are keyed by `Windowed<K>` (`[start, start + windowSizeMs]`).
   * @returns true when the store caches (the listener forwards), false when caching is off
   */
  setFlushListener(listener: FlushListener<Windowed<K>, V>, sendOldValues: boolean): boolean {
    return setWindowedFlushListener(this.bytes, this.keyCodec, this.valueCodec, listener, sendOldValues)
  }
}

/** Typed session facade over a {@link SessionBytesStore}. */
export class SessionStoreFacade<K, AGG> implements SessionStore<K, AGG> {
  readonly name: string
  readonly persistent: boolean
  constructor(
    readonly bytes: SessionBytesStore,
    private readonly keyCodec: Codec<K>,
    private readonly valueCodec: Codec<AGG>,
  ) {
    this.name = bytes.name
    this.persistent = bytes.persistent
  }
  private async *iterate(key: Buffer | undefined, earliestEnd: number, latestStart: number): AsyncIterable<KeyValue<Windowed<K>, AGG>> {
    for await (const e of this.bytes.findSessions(key, earliestEnd, latestStart)) {
      yield {
        key: { key: this.keyCodec.decode(e.key), window: { startMs: e.startMs, endMs: e.endMs } },
        value: this.valueCodec.decode(e.value),
      }
    }
  }
  findSessions(key: K, earliestSessionEndTime: number, latestSessionStartTime: number): AsyncIterable<KeyValue<Windowed<K>, AGG>> {
    return this.iterate(this.keyCodec.encode(key), earliestSessionEndTime, latestSessionStartTime)
  }
  /**
   * All keys' sessions whose end is in `[earliestSessionEndTime, latestSessionEndTime]`, ascending
   * by end (Kafka Streams: `SessionStore#findSessions(earliestEnd, latestEnd)`; used by
   * emit-on-window-close session aggregations).
   */
  async *findSessionsByEndTime(earliestSessionEndTime: number, latestSessionEndTime: number): AsyncIterable<KeyValue<Windowed<K>, AGG>> {
    for await (const kv of this.iterate(undefined, earliestSessionEndTime, latestSessionEndTime)) {
      if (kv.key.window.endMs > latestSessionEndTime) break
      yield kv
    }
  }
  async fetchSession(key: K, sessionStartTime: number, sessionEndTime: number): Promise<AGG | undefined> {
    const b = await this.bytes.fetchSession(this.keyCodec.encode(key), sessionStartTime, sessionEndTime)
    return decodeIfPresent(this.valueCodec, b)
  }
  fetch(key: K): AsyncIterable<KeyValue<Windowed<K>, AGG>> {
    return this.iterate(this.keyCodec.encode(key), MIN_TIME, MAX_TIME)
  }
  all(): AsyncIterable<KeyValue<Windowed<K>, AGG>> {
    return this.iterate(undefined, MIN_TIME, MAX_TIME)
  }
  put(sessionKey: Windowed<K>, aggregate: AGG | null): Promise<void> {
    return this.bytes.put(
      this.keyCodec.encode(sessionKey.key),
      sessionKey.window.startMs,
      sessionKey.window.endMs,
      encodeOrTombstone(this.valueCodec, aggregate),
    )
  }
  remove(sessionKey: Windowed<K>): Promise<void> {
    return this.bytes.put(this.keyCodec.encode(sessionKey.key), sessionKey.window.startMs, sessionKey.window.endMs, null)
  }
  /**
   * Registers the listener of this store's record cache (Kafka Streams: `CachingSessionStore`'s
   * flush listener, KIP-63); flushed entries are keyed by the session's `Windowed<K>`.
   * @returns true when the store caches (the listener forwards), false when caching is off
   */
  setFlushListener(listener: FlushListener<Windowed<K>, AGG>, sendOldValues: boolean): boolean {
    return setWindowedFlushListener(this.bytes, this.keyCodec, this.valueCodec, listener, sendOldValues)
  }
}

/** Registers `listener` on a window or session caching layer, decoding keys into `Windowed<K>`. */
function setWindowedFlushListener<K, V>(
  bytes: BytesStoreBase,
  keyCodec: Codec<K>,
  valueCodec: Codec<V>,
  listener: FlushListener<Windowed<K>, V>,
  sendOldValues: boolean,
): boolean {
  if (!isFlushListenerTarget(bytes)) return false
  return bytes.setFlushListener(
    (f) =>
      listener({
        key: { key: keyCodec.decode(f.key), window: Object.freeze({ startMs: f.window!.startMs, endMs: f.window!.endMs }) },
        newValue: f.newValue === null ? null : valueCodec.decode(f.newValue),
        oldValue: f.oldValue === null ? null : valueCodec.decode(f.oldValue),
        timestamp: f.context.timestamp,
        headers: f.context.headers,
        context: f.context,
      }),
    sendOldValues,
  )
}

/**
 * Wraps a bytes store in the typed facade matching its StoreDef (`keyValue` → {@link KeyValueStoreFacade},
 * `window` → {@link WindowStoreFacade}, `session` → {@link SessionStoreFacade}; timestamped defs
 * hold `ValueAndTimestamp` values).
 */
export function createTypedStore(def: StoreDef, bytes: BytesStoreBase, ctx: TypedStoreContext): StateStore {
  if (def.versioned !== undefined) {
    const defaults = { keySerde: ctx.defaultKeySerde, valueSerde: ctx.defaultValueSerde }
    return new VersionedKeyValueStoreFacade(
      bytes as KeyValueBytesStore,
      def.versioned,
      resolveSerde(def.keySerde, ctx.defaultKeySerde, defaults),
      resolveSerde(def.valueSerde, ctx.defaultValueSerde, defaults),
      changelogTopicFor(ctx.applicationId, def.name),
    )
  }
  const { key, value } = codecsFor(def, ctx)
  switch (def.type) {
    case 'keyValue':
      return new KeyValueStoreFacade(bytes as KeyValueBytesStore, key, value)
    case 'window':
      return new WindowStoreFacade(bytes as WindowBytesStore, key, value)
    case 'session':
      return new SessionStoreFacade(bytes as SessionBytesStore, key, value)
  }
}

/**
 * A plain-value view of a timestamped key-value store (Kafka Streams' test driver `KeyValueStoreFacade`):
 * reads return `V`, writes use timestamp `timestampForWrites` (default: now).
 */
export function plainKeyValueView<K, V>(
  store: TimestampedKeyValueStore<K, V>,
  timestampForWrites: () => number = () => Date.now(),
): KeyValueStore<K, V> {
  const strip = async function* (it: AsyncIterable<KeyValue<K, ValueAndTimestamp<V>>>): AsyncIterable<KeyValue<K, V>> {
    for await (const e of it) yield { key: e.key, value: e.value.value }
  }
  return {
    name: store.name,
    persistent: store.persistent,
    get: async (key) => (await store.get(key))?.value,
    range: (from, to) => strip(store.range(from, to)),
    all: () => strip(store.all()),
    approximateNumEntries: () => store.approximateNumEntries(),
    put: (key, value) => store.put(key, valueAndTimestamp(value, timestampForWrites())),
    putIfAbsent: async (key, value) => (await store.putIfAbsent(key, { value, timestamp: timestampForWrites() }))?.value,
    putAll: (entries) => store.putAll(entries.map((e) => ({ key: e.key, value: valueAndTimestamp(e.value, timestampForWrites()) }))),
    delete: async (key) => (await store.delete(key))?.value,
  }
}

/** A plain-value view of a timestamped window store. */
export function plainWindowView<K, V>(
  store: TimestampedWindowStore<K, V>,
  timestampForWrites: () => number = () => Date.now(),
): WindowStore<K, V> {
  return {
    name: store.name,
    persistent: store.persistent,
    windowSizeMs: store.windowSizeMs,
    fetch: async (key, start) => (await store.fetch(key, start))?.value,
    fetchRange: async function* (key, from, to) {
      for await (const e of store.fetchRange(key, from, to)) yield { key: e.key, value: e.value.value }
    },
    fetchAll: async function* (from, to) {
      for await (const e of store.fetchAll(from, to)) yield { key: e.key, value: e.value.value }
    },
    all: async function* () {
      for await (const e of store.all()) yield { key: e.key, value: e.value.value }
    },
    put: (key, value, start) => store.put(key, valueAndTimestamp(value, timestampForWrites()), start),
  }
}
