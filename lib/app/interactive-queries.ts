/**
 * Interactive queries on local state (Kafka Streams: `KafkaStreams#store` +
 * `CompositeReadOnlyKeyValueStore` & co.): a read-only view over one store name across all of this
 * instance's active tasks (and the global store of that name). A key lives in exactly one task, so
 * `get` asks each task's store until one answers; `range`/`all` concatenate the tasks' results
 * (each task's part is ordered; the whole is not merged). Other instances' stores are found with
 * `metadataForAllStreamsClients()` (the host:port each instance advertises as `applicationServer`).
 */
import { InvalidStateStoreError } from '../../topology/errors.js'
import type {
  KeyValue,
  ReadOnlyKeyValueStore,
  ReadOnlySessionStore,
  ReadOnlyWindowStore,
  StateStore,
  Windowed,
} from '../../topology/state/types.js'

import type { VersionedKeyValueStore, VersionedRecord } from '../../topology/state/versioned.js'

/** The read side of a versioned store (KIP-889): the latest version, or the version valid as of a timestamp. */
export type ReadOnlyVersionedKeyValueStore<K, V> = Pick<VersionedKeyValueStore<K, V>, 'name' | 'persistent' | 'historyRetentionMs' | 'get'>

/** Any read-only store view. */
export type QueryableStore =
  | ReadOnlyKeyValueStore<any, any>
  | ReadOnlyWindowStore<any, any>
  | ReadOnlySessionStore<any, any>
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
        `store '${name}' is not available on this instance (unknown name, no local task holds it, or the client is not RUNNING)`,
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

async function* chain<T>(sources: ReadonlyArray<() => AsyncIterable<T>>): AsyncIterable<T> {
  for (const s of sources) yield* s()
}

/**
 * Builds the composite read-only view; `stores()` is evaluated at each call (tasks move).
 * `unwrap`: values of timestamped stores (`{ value, timestamp }`) are returned as plain values,
 * as Kafka Streams' `QueryableStoreTypes.keyValueStore()` does over a timestamped store.
 */
export function compositeStore(name: string, stores: () => StateStore[], unwrap = false): QueryableStore {
  const u = (v: any): any =>
    unwrap && v !== undefined && v !== null && typeof v === 'object' && 'value' in v && 'timestamp' in v ? v.value : v
  const uKv = <T extends { key: unknown; value: unknown }>(it: AsyncIterable<T>): AsyncIterable<T> =>
    unwrap
      ? (async function* () {
          for await (const kv of it) yield { ...kv, value: u(kv.value) }
        })()
      : it
  const current = (): StateStore[] => {
    const list = stores()
    if (list.length === 0) {
      throw new InvalidStateStoreError(
        `store '${name}' is not available on this instance (unknown name, no local task holds it, or the client is not RUNNING)`,
        { place: { store: name } },
      )
    }
    return list
  }
  const sample = stores()[0] as unknown as Record<string, unknown> | undefined
  const base = { name, persistent: (sample?.persistent as boolean | undefined) ?? true }
  if (sample && typeof sample.fetchRange === 'function') {
    const win = (): ReadOnlyWindowStore<any, any>[] => current() as unknown as ReadOnlyWindowStore<any, any>[]
    const view: ReadOnlyWindowStore<any, any> = {
      ...base,
      windowSizeMs: (sample.windowSizeMs as number) ?? 0,
      async fetch(key, windowStartMs) {
        for (const s of win()) {
          const v = await s.fetch(key, windowStartMs)
          if (v !== undefined) return u(v)
        }
        return undefined
      },
      fetchRange: (key, from, to) =>
        uKv(chain(win().map((s) => () => s.fetchRange(key, from, to) as AsyncIterable<KeyValue<number, any>>))),
      fetchAll: (from, to) => uKv(chain(win().map((s) => () => s.fetchAll(from, to) as AsyncIterable<KeyValue<Windowed<any>, any>>))),
      all: () => uKv(chain(win().map((s) => () => s.all() as AsyncIterable<KeyValue<Windowed<any>, any>>))),
    }
    return view
  }
  if (sample && typeof sample.findSessions === 'function') {
    const ses = (): ReadOnlySessionStore<any, any>[] => current() as unknown as ReadOnlySessionStore<any, any>[]
    const view: ReadOnlySessionStore<any, any> = {
      ...base,
      findSessions: (key, e, l) => chain(ses().map((s) => () => s.findSessions(key, e, l))),
      async fetchSession(key, start, end) {
        for (const s of ses()) {
          const v = await s.fetchSession(key, start, end)
          if (v !== undefined) return v
        }
        return undefined
      },
      fetch: (key) => chain(ses().map((s) => () => s.fetch(key))),
      all: () => chain(ses().map((s) => () => s.all())),
    }
    return view
  }
  const kv = (): ReadOnlyKeyValueStore<any, any>[] => current() as unknown as ReadOnlyKeyValueStore<any, any>[]
  const view: ReadOnlyKeyValueStore<any, any> = {
    ...base,
    async get(key) {
      for (const s of kv()) {
        const v = await s.get(key)
        if (v !== undefined && v !== null) return u(v)
      }
      return undefined
    },
    range: (from, to) => uKv(chain(kv().map((s) => () => s.range(from, to)))),
    all: () => uKv(chain(kv().map((s) => () => s.all()))),
    async approximateNumEntries() {
      let n = 0
      for (const s of kv()) n += await s.approximateNumEntries()
      return n
    },
  }
  return view
}
