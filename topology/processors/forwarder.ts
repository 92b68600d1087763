/**
 * Forwarding of table updates through a store's record cache (Kafka Streams:
 * `TimestampedTupleForwarder` + `TimestampedCacheFlushListener`, KIP-63).
 *
 * A table processor (aggregation, materialized source/filter/mapValues) writes its store and then
 * calls {@link TimestampedTupleForwarder.maybeForward}. When the store caches, that forwards
 * nothing: the cache forwards the latest value of each key when it is flushed (commit, eviction),
 * as `Change(new, old)` with the old value read below the cache (only when old values are sent),
 * the timestamp of the new value (the deleting record's timestamp for a delete) and the headers of
 * the latest write. Otherwise every update is forwarded at once.
 */
import type { ProcessorContext, StreamRecord } from '../processor/types.js'
import type { ValueAndTimestamp, Windowed } from '../state/types.js'
import type { FlushListener } from '../state/typed.js'
import { change, type Change } from './change.js'

interface CachedStore<K, V> {
  setFlushListener(listener: FlushListener<K, V>, sendOldValues: boolean): boolean
}

function cachedStore<K, V>(store: unknown): CachedStore<K, V> | undefined {
  return typeof (store as Partial<CachedStore<K, V>> | null | undefined)?.setFlushListener === 'function'
    ? (store as CachedStore<K, V>)
    : undefined
}

/** Forwards a table update at once unless the store caches it (then the cache's flush forwards). */
abstract class CacheAwareForwarder<K, V> {
  /**
   * @param cached whether the store caches (it took the flush listener): then the cache forwards,
   *   not the processor
   */
  protected constructor(
    private readonly ctx: ProcessorContext<K, Change<V>>,
    readonly cached: boolean,
  ) {}

  /** Forwards `record` unless the store caches (then its flush forwards the latest value). */
  maybeForward(record: StreamRecord<K, Change<V>>): Promise<void> | undefined {
    return this.cached ? undefined : this.ctx.forward(record)
  }
}

export class TimestampedTupleForwarder<K, V> extends CacheAwareForwarder<K, V> {
  /**
   * @param store the processor's timestamped key-value or window store (undefined: not materialized)
   * @param sendOldValues whether forwarded changes carry the old value
   */
  constructor(store: unknown, ctx: ProcessorContext<K, Change<V>>, sendOldValues: boolean) {
    super(
      ctx,
      cachedStore<K, ValueAndTimestamp<V>>(store)?.setFlushListener(
        (e) =>
          ctx.forward({
            key: e.key,
            value: change(e.newValue === null ? null : e.newValue.value, e.oldValue === null ? null : e.oldValue.value),
            timestamp: e.newValue !== null ? e.newValue.timestamp : e.timestamp,
            headers: e.headers,
          }),
        sendOldValues,
      ) ?? false,
    )
  }
}

/**
 * The session-window counterpart of {@link TimestampedTupleForwarder} (Kafka Streams:
 * `SessionTupleForwarder` + `SessionCacheFlushListener`): a flushed session is forwarded with its
 * end as the timestamp.
 */
export class SessionTupleForwarder<K, V> extends CacheAwareForwarder<Windowed<K>, V> {
  constructor(store: unknown, ctx: ProcessorContext<Windowed<K>, Change<V>>, sendOldValues: boolean) {
    super(
      ctx,
      cachedStore<Windowed<K>, V>(store)?.setFlushListener(
        (e) => ctx.forward({ key: e.key, value: change(e.newValue, e.oldValue), timestamp: e.key.window.endMs, headers: e.headers }),
        sendOldValues,
      ) ?? false,
    )
  }
}
