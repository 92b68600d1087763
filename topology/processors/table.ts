/**
 * KTable processors and value getters (Kafka Streams: `KTableSource`, `KTableFilter`,
 * `KTableMapValues`, `KTableRepartitionMap`, `KTableValueGetter`).
 *
 * Table processors exchange `StreamRecord<K, Change<V>>`. Whether a processor sends old values and
 * whether its store exists is decided while the topology is built (downstream operations call
 * `enableSendingOldValues`), so each processor reads its {@link TableNodeFlags} at `init`.
 */
import type { Processor, ProcessorContext, ProcessorSupplier, StreamRecord } from '../processor/types.js'
import type { ValueAndTimestamp } from '../state/types.js'
import type { TimestampedKeyValueStore } from '../state/typed.js'
import { valueAndTimestamp } from '../state/typed.js'
import { change, type Change } from './change.js'
import { toKeyValue, type KeyValueLike } from './stateless.js'
import { TimestampedTupleForwarder } from './forwarder.js'
import {
  isVersionedStore,
  PUT_RETURN_CODE_NOT_PUT,
  PUT_RETURN_CODE_VALID_TO_UNDEFINED,
  type VersionedKeyValueStore,
} from '../state/versioned.js'

/** Reason given to `recordDropped` for an out-of-order update of a versioned table that a join or re-grouping ignores. */
export const OUT_OF_ORDER_VERSIONED_DROP_REASON = 'out-of-order-versioned-update'

/** Build-time decisions of a table node, read by its processor at init. */
export interface TableNodeFlags {
  /** Forward `oldValue` in each Change (downstream needs it: aggregations, joins). */
  sendOldValues: boolean
  /** The node's own store when materialized (undefined = not materialized). */
  storeName: string | undefined
}

/** Reads the current value of a table by key (Kafka Streams: `KTableValueGetter`). */
export interface KTableValueGetter<K, V> {
  /** Called from the owning processor's `init`. */
  init(context: ProcessorContext<any, any>): void
  /** The current value and its timestamp, or `null` when absent. */
  get(key: K): Promise<ValueAndTimestamp<V> | null>
  /** Whether the table is versioned (KIP-914); then {@link KTableValueGetter.getAsOf} answers. Valid after `init`. */
  isVersioned?(): boolean
  /** Versioned tables: the value valid at `asOfTimestamp` (inclusive), or `null`. */
  getAsOf?(key: K, asOfTimestamp: number): Promise<ValueAndTimestamp<V> | null>
}

/** Creates value getters and names the stores they read (connect those to the reading processor). */
export interface KTableValueGetterSupplier<K, V> {
  get(): KTableValueGetter<K, V>
  storeNames(): string[]
}

/** Value getter over a (timestamped) table store. */
export function storeValueGetterSupplier<K, V>(storeName: string): KTableValueGetterSupplier<K, V> {
  return {
    storeNames: () => [storeName],
    get: () => {
      let store: TimestampedKeyValueStore<K, V>
      let versioned: VersionedKeyValueStore<K, V> | undefined
      return {
        init(context) {
          store = context.getStateStore<TimestampedKeyValueStore<K, V>>(storeName)
          versioned = isVersionedStore(store) ? (store as unknown as VersionedKeyValueStore<K, V>) : undefined
        },
        async get(key) {
          return (await store.get(key)) ?? null
        },
        isVersioned: () => versioned !== undefined,
        async getAsOf(key, asOfTimestamp) {
          return versioned !== undefined ? versioned.get(key, asOfTimestamp) : ((await store.get(key)) ?? null)
        },
      }
    },
  }
}

/** Value getter of a filtered table computed from the parent's getter. */
export function filterValueGetterSupplier<K, V>(
  parent: KTableValueGetterSupplier<K, V>,
  predicate: (key: K, value: V) => boolean,
  not: boolean,
): KTableValueGetterSupplier<K, V> {
  return derivedValueGetterSupplier(parent, (key, vt) => (vt !== null && predicate(key, vt.value) !== not ? vt : null))
}

/** Value getter of a mapped table computed from the parent's getter. */
export function mapValuesValueGetterSupplier<K, V, VR>(
  parent: KTableValueGetterSupplier<K, V>,
  mapper: (value: V, key: K) => VR,
): KTableValueGetterSupplier<K, VR> {
  return derivedValueGetterSupplier(parent, (key, vt) => (vt === null ? null : valueAndTimestamp(mapper(vt.value, key), vt.timestamp)))
}

/** Value getter computing each value from the parent getter's value (`null`: none) with `derive`. */
function derivedValueGetterSupplier<K, V, VR>(
  parent: KTableValueGetterSupplier<K, V>,
  derive: (key: K, parentValue: ValueAndTimestamp<V> | null) => ValueAndTimestamp<VR> | null,
): KTableValueGetterSupplier<K, VR> {
  return {
    storeNames: () => parent.storeNames(),
    get: () => {
      const p = parent.get()
      return {
        init: (c) => p.init(c),
        async get(key) {
          return derive(key, await p.get(key))
        },
        isVersioned: () => p.isVersioned?.() ?? false,
        async getAsOf(key, asOfTimestamp) {
          return derive(key, p.getAsOf ? await p.getAsOf(key, asOfTimestamp) : await p.get(key))
        },
      }
    },
  }
}

/**
 * Writes a table node's own store: a versioned store (KIP-914) gets the value as a version at
 * `timestamp`, any other a `ValueAndTimestamp` (`null` deletes).
 */
export async function putTableValue<K, V>(
  store: TimestampedKeyValueStore<K, V>,
  key: K,
  value: V | null,
  timestamp: number,
): Promise<void> {
  if (isVersionedStore(store)) await (store as unknown as VersionedKeyValueStore<K, V>).put(key, value, timestamp)
  else await store.put(key, valueAndTimestamp(value, timestamp))
}

abstract class TableProcessor<K, VIn, KOut, VOut> implements Processor<K, VIn, KOut, VOut> {
  protected ctx!: ProcessorContext<KOut, VOut>
  protected store: TimestampedKeyValueStore<K, any> | undefined
  protected sendOldValues = false
  /** Forwards the node's updates, through its store's record cache when it caches (KIP-63). */
  protected forwarder!: TimestampedTupleForwarder<any, any>
  constructor(protected readonly flags: TableNodeFlags) {}
  init(context: ProcessorContext<KOut, VOut>): void {
    this.ctx = context
    this.sendOldValues = this.flags.sendOldValues
    this.store =
      this.flags.storeName === undefined ? undefined : context.getStateStore<TimestampedKeyValueStore<K, any>>(this.flags.storeName)
    this.forwarder = new TimestampedTupleForwarder(this.store, context as ProcessorContext<any, any>, this.sendOldValues)
  }
  abstract process(record: StreamRecord<K, VIn>): void | Promise<void>
}

/**
 * Turns a stream of upserts into a table (`builder.table`, `KStream.toTable`): null keys are
 * dropped; null values are tombstones. With a store, the old value comes from the store.
 */
export function tableSourceSupplier<K, V>(flags: TableNodeFlags): ProcessorSupplier<K, V, K, Change<V>> {
  return () =>
    new (class extends TableProcessor<K, V, K, Change<V>> {
      async process(r: StreamRecord<K, V>) {
        if (r.key === null || r.key === undefined) {
          this.ctx.recordDropped('null-key')
          return
        }
        const value = r.value === undefined ? null : r.value
        if (this.store && isVersionedStore(this.store)) {
          // A versioned table (KIP-914): an out-of-order update goes into the history only and is
          // forwarded with isLatest=false; one older than the history retention is not forwarded.
          const store = this.store as VersionedKeyValueStore<K, V>
          const old = await store.get(r.key)
          const code = await store.put(r.key, value, r.timestamp)
          if (code === PUT_RETURN_CODE_NOT_PUT) return
          return this.ctx.forward({
            key: r.key,
            value: change(value, this.sendOldValues ? (old?.value ?? null) : null, code === PUT_RETURN_CODE_VALID_TO_UNDEFINED),
            timestamp: r.timestamp,
            headers: r.headers,
          })
        }
        if (this.store) {
          const old = await this.store.get(r.key)
          await this.store.put(r.key, valueAndTimestamp(value, r.timestamp))
          return this.forwarder.maybeForward({
            key: r.key,
            value: change(value, this.sendOldValues ? (old?.value ?? null) : null),
            timestamp: r.timestamp,
            headers: r.headers,
          })
        }
        return this.ctx.forward({ key: r.key, value: change(value, null), timestamp: r.timestamp, headers: r.headers })
      }
    })(flags)
}

/**
 * `KTable.filter` / `filterNot`: a value failing the predicate becomes a tombstone (forwarded, so
 * downstream deletes it); when old values are sent and both sides are null nothing is forwarded.
 */
export function tableFilterSupplier<K, V>(
  flags: TableNodeFlags,
  predicate: (key: K, value: V) => boolean,
  not: boolean,
): ProcessorSupplier<K, Change<V>, K, Change<V>> {
  const compute = (key: K, v: V | null): V | null => (v !== null && predicate(key, v) !== not ? v : null)
  return () =>
    new (class extends TableProcessor<K, Change<V>, K, Change<V>> {
      async process(r: StreamRecord<K, Change<V>>) {
        const newValue = compute(r.key, r.value.newValue)
        const oldValue = this.sendOldValues ? compute(r.key, r.value.oldValue) : null
        if (this.sendOldValues && oldValue === null && newValue === null) return
        if (this.store) await putTableValue(this.store, r.key, newValue, r.timestamp)
        return this.forwarder.maybeForward({
          key: r.key,
          value: change(newValue, oldValue, r.value.isLatest !== false),
          timestamp: r.timestamp,
          headers: r.headers,
        })
      }
    })(flags)
}

/** `KTable.mapValues`: maps new (and, if sent, old) values; tombstones stay tombstones. */
export function tableMapValuesSupplier<K, V, VR>(
  flags: TableNodeFlags,
  mapper: (value: V, key: K) => VR,
): ProcessorSupplier<K, Change<V>, K, Change<VR>> {
  return () =>
    new (class extends TableProcessor<K, Change<V>, K, Change<VR>> {
      async process(r: StreamRecord<K, Change<V>>) {
        const newValue = r.value.newValue === null ? null : mapper(r.value.newValue, r.key)
        const oldValue = this.sendOldValues && r.value.oldValue !== null ? mapper(r.value.oldValue, r.key) : null
        if (this.store) await putTableValue(this.store, r.key, newValue, r.timestamp)
        return this.forwarder.maybeForward({
          key: r.key,
          value: change(newValue, oldValue, r.value.isLatest !== false),
          timestamp: r.timestamp,
          headers: r.headers,
        })
      }
    })(flags)
}

/** `KTable.toStream`: forwards the new value of each change (tombstones as `null`). */
export function tableToStreamSupplier<K, V>(): ProcessorSupplier<K, Change<V>, K, V | null> {
  return () =>
    new (class extends TableProcessor<K, Change<V>, K, V | null> {
      process(r: StreamRecord<K, Change<V>>) {
        return this.ctx.forward({ key: r.key, value: r.value.newValue, timestamp: r.timestamp, headers: r.headers })
      }
    })({ sendOldValues: false, storeName: undefined })
}

/**
 * `KTable.groupBy` (Kafka Streams: `KTableRepartitionMap`): selects a new key/value for the old
 * and the new value; sends `Change(null, old)` to the old group and `Change(new, null)` to the new
 * group (one `Change(new, old)` when the group did not change). Null selections are skipped.
 */
export function tableRepartitionMapSupplier<K, V, KR, VR>(
  selector: (key: K, value: V) => KeyValueLike<KR, VR>,
): ProcessorSupplier<K, Change<V>, KR, Change<VR>> {
  return () =>
    new (class extends TableProcessor<K, Change<V>, KR, Change<VR>> {
      async process(r: StreamRecord<K, Change<V>>) {
        if (r.key === null || r.key === undefined) {
          this.ctx.recordDropped('null-key')
          return
        }
        if (r.value.isLatest === false) {
          // Kafka Streams (KIP-914) re-groups only the latest versions of a versioned table.
          this.ctx.recordDropped(OUT_OF_ORDER_VERSIONED_DROP_REASON)
          return
        }
        const newPair = r.value.newValue === null ? null : toKeyValue(selector(r.key, r.value.newValue))
        const oldPair = r.value.oldValue === null ? null : toKeyValue(selector(r.key, r.value.oldValue))
        const oldOk =
          oldPair !== null && oldPair.key !== null && oldPair.key !== undefined && oldPair.value !== null && oldPair.value !== undefined
        const newOk =
          newPair !== null && newPair.key !== null && newPair.key !== undefined && newPair.value !== null && newPair.value !== undefined
        if (oldOk && newOk && sameKey(oldPair!.key, newPair!.key)) {
          return this.ctx.forward({
            key: newPair!.key,
            value: change(newPair!.value, oldPair!.value),
            timestamp: r.timestamp,
            headers: r.headers,
          })
        }
        if (oldOk)
          await this.ctx.forward({ key: oldPair!.key, value: change<VR>(null, oldPair!.value), timestamp: r.timestamp, headers: r.headers })
        if (newOk)
          await this.ctx.forward({ key: newPair!.key, value: change<VR>(newPair!.value, null), timestamp: r.timestamp, headers: r.headers })
      }
    })({ sendOldValues: true, storeName: undefined })
}

/** Key equality for re-grouping: primitives by value, objects structurally via JSON. */
function sameKey(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b)
  try {
    return JSON.stringify(a) === JSON.stringify(b)
  } catch {
    return false
  }
}
