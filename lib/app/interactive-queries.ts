/**
 * Interactive queries on local state (Kafka Streams: `KafkaStreams#store` +
 * `CompositeReadOnlyKeyValueStore` & co.): a read-only view over one store name across this
 * instance's active tasks (or one task, `StoreQueryParameters#withPartition`), or the global store
 * of that name. The view's kind (key-value, window, session) comes from the store's definition in
 * the topology, so a handle taken before the client is RUNNING already has the right methods.
 *
 * A key lives in exactly one task, so `get`/`fetch` ask each task's store until one answers.
 * Key-value `range`/`all`/`prefixScan` merge the tasks' ordered iterators into one sequence ordered
 * by the serialized key bytes (each task's store order); Kafka Streams' composite store
 * concatenates the tasks instead. Window and session `fetchAll`/`all` concatenate the tasks' results
 * (each in its store's order), as Kafka Streams does.
 * Backward reads (`reverseRange`, `reverseAll`, window `backwardFetch`/`backwardFetchAll`) read the
 * forward sequence and reverse it in memory: the bytes stores iterate forward only, so these hold
 * the whole range in memory (bound them with a range when the store is large).
 *
 * Other instances' stores are found with `queryMetadataForKey` / `streamsMetadataForStore` (the
 * host:port each instance advertises as `applicationServer`).
 */
import { InvalidStateStoreError } from '../../topology/errors.js'
import type { Serde } from '../../topology/serde.js'
import type {
  KeyValue,
  ReadOnlyKeyValueStore,
  ReadOnlySessionStore,
  ReadOnlyWindowStore,
  StateStore,
  StoreType,
  Windowed,
} from '../../topology/state/types.js'
import type { VersionedKeyValueStore, VersionedRecord } from '../../topology/state/versioned.js'

/**
 * A read-only key-value view for interactive queries (Kafka Streams: `ReadOnlyKeyValueStore`, with
 * `prefixScan` (KIP-614) and the reverse iterators (KIP-617)).
 */
export interface QueryableKeyValueStore<K, V> extends ReadOnlyKeyValueStore<K, V> {
  /**
   * Entries whose serialized key starts with the serialized `prefix`, in key-byte order
   * (Kafka Streams: `prefixScan(prefix, prefixKeySerializer)`, KIP-614).
   * @param prefixKeySerializer serializes the prefix; for string keys, `Serdes.String()`.
   */
  prefixScan<P>(prefix: P, prefixKeySerializer: Pick<Serde<P>, 'serialize'>): AsyncIterable<KeyValue<K, V>>
  /** `range(from, to)` in descending key order (KIP-617). Holds the range in memory. */
  reverseRange(from?: K, to?: K): AsyncIterable<KeyValue<K, V>>
  /** `all()` in descending key order (KIP-617). Holds the whole store in memory. */
  reverseAll(): AsyncIterable<KeyValue<K, V>>
}

/** A read-only window view for interactive queries, with KIP-617's backward fetches. */
export interface QueryableWindowStore<K, V> extends ReadOnlyWindowStore<K, V> {
  /** `fetchRange(key, timeFrom, timeTo)` from the latest window start to the earliest. */
  backwardFetch(key: K, timeFrom: number, timeTo: number): AsyncIterable<KeyValue<number, V>>
  /** `fetchAll(timeFrom, timeTo)` in reverse order. Holds the result in memory. */
  backwardFetchAll(timeFrom: number, timeTo: number): AsyncIterable<KeyValue<Windowed<K>, V>>
}

/** A read-only session view for interactive queries (Kafka Streams: `ReadOnlySessionStore`). */
export interface QueryableSessionStore<K, AGG> extends ReadOnlySessionStore<K, AGG> {
  /** `fetch(key)` from the latest session to the earliest (KIP-617). */
  backwardFetch(key: K): AsyncIterable<KeyValue<Windowed<K>, AGG>>
}

/** The read side of a versioned store (KIP-889): the latest version, or the version valid as of a timestamp. */
export type ReadOnlyVersionedKeyValueStore<K, V> = Pick<VersionedKeyValueStore<K, V>, 'name' | 'persistent' | 'historyRetentionMs' | 'get'>

/** Any read-only store view. */
export type QueryableStore =
  | QueryableKeyValueStore<any, any>
  | QueryableWindowStore<any, any>
  | QueryableSessionStore<any, any>
  | ReadOnlyVersionedKeyValueStore<any, any>

/** The view of a versioned store across this instance's tasks: `get` asks each until one answers. */
export function compositeVersionedStore(
  name: string,
  historyRetentionMs: number,
  stores: () => StateStore[],
): ReadOnlyVersionedKeyValueStore<any, any> {
  const current = (): VersionedKeyValueStore<any, any>[] => {
    const list = stores()
    if (list.length === 0)
      throw new InvalidStateStoreError(
        `store '${name}' is not available on this instance (no local task holds it, or the client is not RUNNING)`,
        { place: { store: name } },
      )
    return list as unknown as VersionedKeyValueStore<any, any>[]
  }
  async function get(key: unknown, asOfTimestamp?: number): Promise<VersionedRecord<any> | null> {
    for (const s of current()) {
      const r = asOfTimestamp === undefined ? await s.get(key) : await s.get(key, asOfTimestamp)
      if (r !== null) return r
    }
    return null
  }
  return { name, persistent: true, historyRetentionMs, get: get as ReadOnlyVersionedKeyValueStore<any, any>['get'] }
}

/** What a composite view needs to know about the store (from its definition in the topology). */
export interface CompositeStoreSpec {
  readonly name: string
  readonly type: StoreType
  /** Serializes keys to order the merged iterators by key bytes; without it, tasks are concatenated. */
  readonly keySerde?: Pick<Serde<any>, 'serialize'>
  /** Topic passed to the key serde (the store's changelog topic). */
  readonly serdeTopic?: string
  /** Values of timestamped stores (`{ value, timestamp }`) are returned as plain values. */
  readonly unwrapTimestamps?: boolean
  readonly persistent?: boolean
  readonly windowSizeMs?: number
}

async function* chain<T>(sources: ReadonlyArray<() => AsyncIterable<T>>): AsyncIterable<T> {
  for (const s of sources) yield* s()
}

/**
 * Merges iterators that are each ordered by `keyOf` bytes into one ordered sequence (a k-way merge
 * that pulls one entry ahead from each source).
 */
export async function* mergeByKeyBytes<T>(sources: ReadonlyArray<AsyncIterable<T>>, keyOf: (t: T) => Buffer): AsyncIterable<T> {
  const its = sources.map((s) => s[Symbol.asyncIterator]())
  const heads: Array<{ item: T; key: Buffer } | undefined> = await Promise.all(
    its.map(async (it) => {
      const r = await it.next()
      return r.done ? undefined : { item: r.value, key: keyOf(r.value) }
    }),
  )
  try {
    for (;;) {
      let best = -1
      for (let i = 0; i < heads.length; i++) {
        const h = heads[i]
        if (h && (best < 0 || Buffer.compare(h.key, heads[best]!.key) < 0)) best = i
      }
      if (best < 0) return
      yield heads[best]!.item
      const r = await its[best]!.next()
      heads[best] = r.done ? undefined : { item: r.value, key: keyOf(r.value) }
    }
  } finally {
    for (let i = 0; i < its.length; i++) if (heads[i]) await its[i]!.return?.()
  }
}

async function* reversed<T>(it: AsyncIterable<T>): AsyncIterable<T> {
  const all: T[] = []
  for await (const x of it) all.push(x)
  for (let i = all.length - 1; i >= 0; i--) yield all[i]!
}

function isTimestamped(v: unknown): v is { value: unknown; timestamp: number } {
  return v !== undefined && v !== null && typeof v === 'object' && 'value' in v && 'timestamp' in v
}

/**
 * Builds the composite read-only view of kind `spec.type`; `stores()` is evaluated at each call
 * (tasks move), and the view throws {@link InvalidStateStoreError} when it returns none.
 */
export function compositeStore(spec: CompositeStoreSpec, stores: () => StateStore[]): QueryableStore {
  const { name } = spec
  const u = (v: any): any => (spec.unwrapTimestamps && isTimestamped(v) ? v.value : v)
  const uKv = <T extends { key: unknown; value: unknown }>(it: AsyncIterable<T>): AsyncIterable<T> =>
    spec.unwrapTimestamps
      ? (async function* () {
          for await (const kv of it) yield { ...kv, value: u(kv.value) }
        })()
      : it
  const current = (): StateStore[] => {
    const list = stores()
    if (list.length === 0) {
      throw new InvalidStateStoreError(
        `store '${name}' is not available on this instance (no local task holds it, or the client is not RUNNING); ` +
          `find its owner with queryMetadataForKey('${name}', key, keySerializer)`,
        { place: { store: name } },
      )
    }
    return list
  }
  const keyBytes = (k: unknown): Buffer => spec.keySerde!.serialize(spec.serdeTopic ?? '', k) ?? Buffer.alloc(0)
  /** Merges per-task iterators by key bytes (or concatenates them without a key serde). */
  const merge = <T>(parts: Array<() => AsyncIterable<T>>, keyOf: (t: T) => unknown): AsyncIterable<T> => {
    if (parts.length === 1) return parts[0]!()
    if (!spec.keySerde) return chain(parts)
    return (async function* () {
      yield* mergeByKeyBytes(
        parts.map((p) => p()),
        (t) => keyBytes(keyOf(t)),
      )
    })()
  }
  const base = { name, persistent: spec.persistent ?? true }

  if (spec.type === 'window') {
    const win = (): ReadOnlyWindowStore<any, any>[] => current() as unknown as ReadOnlyWindowStore<any, any>[]
    const fetchAll = (from: number, to: number): AsyncIterable<KeyValue<Windowed<any>, any>> =>
      uKv(chain(win().map((s) => () => s.fetchAll(from, to))))
    const fetchRange = (key: any, from: number, to: number): AsyncIterable<KeyValue<number, any>> =>
      uKv(chain(win().map((s) => () => s.fetchRange(key, from, to))))
    const view: QueryableWindowStore<any, any> = {
      ...base,
      windowSizeMs: spec.windowSizeMs ?? (stores()[0] as ReadOnlyWindowStore<any, any> | undefined)?.windowSizeMs ?? 0,
      async fetch(key, windowStartMs) {
        for (const s of win()) {
          const v = await s.fetch(key, windowStartMs)
          if (v !== undefined) return u(v)
        }
        return undefined
      },
      fetchRange,
      fetchAll,
      all: () => uKv(chain(win().map((s) => () => s.all()))),
      backwardFetch: (key, from, to) => reversed(fetchRange(key, from, to)),
      backwardFetchAll: (from, to) => reversed(fetchAll(from, to)),
    }
    return view
  }
  if (spec.type === 'session') {
    const ses = (): ReadOnlySessionStore<any, any>[] => current() as unknown as ReadOnlySessionStore<any, any>[]
    const fetch = (key: any): AsyncIterable<KeyValue<Windowed<any>, any>> => chain(ses().map((s) => () => s.fetch(key)))
    const view: QueryableSessionStore<any, any> = {
      ...base,
      findSessions: (key, e, l) => chain(ses().map((s) => () => s.findSessions(key, e, l))),
      async fetchSession(key, start, end) {
        for (const s of ses()) {
          const v = await s.fetchSession(key, start, end)
          if (v !== undefined) return v
        }
        return undefined
      },
      fetch,
      all: () => chain(ses().map((s) => () => s.all())),
      backwardFetch: (key) => reversed(fetch(key)),
    }
    return view
  }
  const kv = (): ReadOnlyKeyValueStore<any, any>[] => current() as unknown as ReadOnlyKeyValueStore<any, any>[]
  const range = (from?: any, to?: any): AsyncIterable<KeyValue<any, any>> =>
    uKv(
      merge(
        kv().map((s) => () => s.range(from, to)),
        (e) => e.key,
      ),
    )
  const view: QueryableKeyValueStore<any, any> = {
    ...base,
    async get(key) {
      for (const s of kv()) {
        const v = await s.get(key)
        if (v !== undefined && v !== null) return u(v)
      }
      return undefined
    },
    range,
    all: () => range(),
    prefixScan(prefix, prefixKeySerializer) {
      const p = prefixKeySerializer.serialize(spec.serdeTopic ?? '', prefix) ?? Buffer.alloc(0)
      const parts = kv().map((s) => (): AsyncIterable<KeyValue<any, any>> => {
        // typed facades: one range read from the prefix; other stores: a scan filtered by key bytes
        const direct = (s as { prefixScanBytes?: (p: Buffer) => AsyncIterable<KeyValue<any, any>> }).prefixScanBytes
        if (typeof direct === 'function') return direct.call(s, p)
        if (!spec.keySerde) {
          throw new InvalidStateStoreError(
            `prefixScan on store '${name}' needs its key serde (set it on the store or a default key serde)`,
            {
              place: { store: name },
            },
          )
        }
        return (async function* () {
          for await (const e of s.range()) {
            const b = keyBytes(e.key)
            if (b.length >= p.length && b.compare(p, 0, p.length, 0, p.length) === 0) yield e
          }
        })()
      })
      return uKv(merge(parts, (e) => e.key))
    },
    reverseRange: (from, to) => reversed(range(from, to)),
    reverseAll: () => reversed(range()),
    async approximateNumEntries() {
      let n = 0
      for (const s of kv()) n += await s.approximateNumEntries()
      return n
    },
  }
  return view
}
