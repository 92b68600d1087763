/**
 * The metered store layer (Kafka Streams: `MeteredKeyValueStore`, `MeteredWindowStore`,
 * `MeteredSessionStore`): state-level latency and rate of each store operation
 * (`stream-state-metrics`, `put-latency-avg/-max`, `put-rate`, `get-*`, `fetch-*`, `range-*`,
 * `delete-*`, `remove-*`, `put-all-*`, `flush-*`), tag `<store-type>-state-id` = store name.
 *
 * These sensors are DEBUG (KIP-444): at INFO the runtime does not wrap the stores at all, so the
 * hot path reads no clock. Differences from Kafka Streams, on purpose:
 * - a put of a null value (our delete / session remove) records `delete` / `remove`, not `put`;
 * - range and fetch iterators are timed from the call to the end of the iteration (Kafka times
 *   the iterator until it is closed: the same when a caller drains it);
 * - `getMany` (the batch prefetch before processing) is not an operation of Kafka's stores and is
 *   not metered; the per-record `get`s that follow it are.
 *
 * `record-e2e-latency-avg/-min/-max` (TRACE, KIP-613): at each write, the wall clock minus the
 * timestamp of the input record the task is processing (Kafka Streams uses the timestamp of the
 * record the writing processor received; the two differ only below a processor that changed the
 * timestamp). Writes outside record processing (punctuators) record nothing.
 */
import type { KeyValueBytesStore, SessionBytesStore, StoreDef, StoreProvider, WindowBytesStore } from '../../topology/state/types.js'
import type { StoreType } from '../metrics/names.js'
import type { RuntimeTaskMetrics, StoreMetrics } from '../metrics/streams-metrics.js'
import type { ValueRecorder } from '../metrics/types.js'

type Kind = 'keyValue' | 'window' | 'session'

/** The state-level store type tag of a store (`leveldb-window` → `leveldb-window-state-id`). */
function storeType(def: StoreDef, kind: Kind): StoreType {
  const base = def.persistent ? 'leveldb' : 'in-memory'
  return kind === 'keyValue' ? base : `${base}-${kind}`
}

/** Times an async operation (resolved or rejected). */
function timed<T>(sensor: ValueRecorder, run: () => Promise<T>): Promise<T> {
  const t0 = performance.now()
  return run().finally(() => sensor.record(performance.now() - t0))
}

/** Times an async iterable from the call to the end of its iteration (drained, broken off or failed). */
function timedIterable<T>(sensor: ValueRecorder, make: () => AsyncIterable<T>): AsyncIterable<T> {
  const t0 = performance.now()
  const inner = make()
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      const it = inner[Symbol.asyncIterator]()
      let done = false
      const finish = () => {
        if (done) return
        done = true
        sensor.record(performance.now() - t0)
      }
      return {
        async next() {
          try {
            const r = await it.next()
            if (r.done) finish()
            return r
          } catch (e) {
            finish()
            throw e
          }
        },
        async return(value?: unknown) {
          finish()
          return (await it.return?.(value)) ?? { done: true, value: undefined }
        },
      }
    },
  }
}

/** Where a store write reads the current input record's timestamp (undefined: none). */
export type RecordTimestampSource = () => number | undefined

/** Which method of which store kind records which sensor (see the module comment). */
function meteredMethods(
  kind: Kind,
  s: StoreMetrics,
  store: object,
  recordTs: RecordTimestampSource,
): Record<string, (...args: never[]) => unknown> {
  const flush = { flush: () => timed(s.flush, () => (store as KeyValueBytesStore).flush()) }
  const e2e = () => {
    const ts = recordTs()
    if (ts !== undefined) s.recordE2eLatency.record(Date.now() - ts)
  }
  if (kind === 'keyValue') {
    const kv = store as KeyValueBytesStore
    return {
      ...flush,
      get: (key: Buffer) => timed(s.get, () => kv.get(key)),
      put: (key: Buffer, value: Buffer | null) => (e2e(), timed(value === null ? s.delete : s.put, () => kv.put(key, value))),
      putAll: (entries: ReadonlyArray<readonly [Buffer, Buffer | null]>) => (e2e(), timed(s.putAll, () => kv.putAll(entries))),
      range: (from?: Buffer, to?: Buffer) => timedIterable(s.range, () => kv.range(from, to)),
    }
  }
  if (kind === 'window') {
    const w = store as WindowBytesStore
    return {
      ...flush,
      put: (key: Buffer, start: number, value: Buffer | null) => (e2e(), timed(s.put, () => w.put(key, start, value))),
      fetch: (key: Buffer, start: number) => timed(s.fetch, () => w.fetch(key, start)),
      fetchRange: (key: Buffer, from: number, to: number) => timedIterable(s.fetch, () => w.fetchRange(key, from, to)),
      fetchAll: (from: number, to: number) => timedIterable(s.fetch, () => w.fetchAll(from, to)),
    }
  }
  const ss = store as SessionBytesStore
  return {
    ...flush,
    put: (key: Buffer, start: number, end: number, value: Buffer | null) => (
      e2e(),
      timed(value === null ? s.remove : s.put, () => ss.put(key, start, end, value))
    ),
    fetchSession: (key: Buffer, start: number, end: number) => timed(s.fetch, () => ss.fetchSession(key, start, end)),
    findSessions: (key: Buffer | undefined, earliestEnd: number, latestStart: number) =>
      timedIterable(s.fetch, () => ss.findSessions(key, earliestEnd, latestStart)),
  }
}

/**
 * A store whose operations record `metrics`' state-level sensors; everything else (properties,
 * unmetered methods) reaches the store itself.
 */
function metered<S extends object>(store: S, kind: Kind, def: StoreDef, metrics: RuntimeTaskMetrics, recordTs: RecordTimestampSource): S {
  const methods = meteredMethods(kind, metrics.store(def.name, storeType(def, kind)), store, recordTs)
  return new Proxy(store, {
    get(target, prop) {
      if (typeof prop === 'string' && Object.hasOwn(methods, prop)) return methods[prop]
      const v = Reflect.get(target, prop, target) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
}

/**
 * The task's store provider with the metered layer on top: use it only when DEBUG metrics record
 * (`metrics.debugEnabled`); at INFO pass the provider itself. `recordTs` gives the timestamp of
 * the input record being processed (the task engine's `currentRecordTimestamp`), for the TRACE
 * `record-e2e-latency`.
 */
export function meteredStoreProvider(
  provider: StoreProvider,
  metrics: RuntimeTaskMetrics,
  recordTs: RecordTimestampSource = () => undefined,
): StoreProvider {
  const wrap = async <S extends object>(store: S | Promise<S>, kind: Kind, def: StoreDef): Promise<S> =>
    metered(await store, kind, def, metrics, recordTs)
  return {
    keyValue: (def) => wrap(provider.keyValue(def), 'keyValue', def),
    window: (def) => wrap(provider.window(def), 'window', def),
    session: (def) => wrap(provider.session(def), 'session', def),
  }
}
