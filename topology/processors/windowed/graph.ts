/**
 * Build-time bookkeeping of windowed aggregations, and lookups into their stores.
 *
 * - A per-builder registry of the nodes that produce windowed tables and the time after a
 *   window's end at which suppression emits it (its grace; for session windows gap + grace). `suppress(
 *   untilWindowCloses)` walks up from its parent to the windowed aggregation to find it (Kafka
 *   Streams: `GraphGraceSearchUtil.findAndVerifyWindowGrace`).
 * - Value getters (Kafka Streams: `KTableValueGetter`) reading a windowed table by `Windowed<K>`.
 * @internal
 */
import { TopologyError } from '../../errors.js'
import type { InternalTopologyBuilder } from '../../internals/internal-topology-builder.js'
import type { SessionStore, ValueAndTimestamp, WindowStore, Windowed } from '../../state/types.js'
import type { KTableValueGetterSupplier } from '../table.js'

const windowCloseRegistry = new WeakMap<object, Map<string, number>>()

/** Records that `nodeName` emits a windowed table whose windows close `closeAfterEndMs` after their end. */
export function registerWindowedNode(builder: InternalTopologyBuilder, nodeName: string, closeAfterEndMs: number): void {
  let m = windowCloseRegistry.get(builder)
  if (!m) windowCloseRegistry.set(builder, (m = new Map()))
  m.set(nodeName, closeAfterEndMs)
}

/**
 * The grace (ms after window end) of the windowed aggregation feeding `nodeName`, following
 * parents through stateless table operations. With several windowed parents, the largest
 * (Kafka Streams: `GraphGraceSearchUtil` takes the max of the parents' graces).
 * @throws TopologyError when `nodeName` does not derive from a windowed aggregation
 */
export function findWindowGrace(builder: InternalTopologyBuilder, nodeName: string, method = 'suppress'): number {
  const registry = windowCloseRegistry.get(builder)
  const visit = (name: string, seen: Set<string>): number | undefined => {
    if (seen.has(name)) return undefined
    seen.add(name)
    const own = registry?.get(name)
    if (own !== undefined) return own
    const node = builder.nodes.get(name)
    // Sources and stateful non-windowed processors end the search (Kafka Streams does the same).
    if (!node || node.type !== 'processor' || node.stores.size > 0) return undefined
    let best: number | undefined
    for (const p of node.parents) {
      const g = visit(p, seen)
      if (g === undefined) return undefined
      best = best === undefined ? g : Math.max(best, g)
    }
    return best
  }
  const grace = visit(nodeName, new Set())
  if (grace === undefined) {
    throw new TopologyError(
      `${method}: untilWindowCloses is only defined for windowed computations (a table from windowedBy(...) aggregations); '${nodeName}' is not one`,
    )
  }
  return grace
}

/** Lookups into a time-windowed aggregation's `WindowStore<K, ValueAndTimestamp<V>>`. */
export function windowStoreValueGetterSupplier<K, V>(storeName: string): KTableValueGetterSupplier<Windowed<K>, V> {
  return {
    storeNames: () => [storeName],
    get: () => {
      let store: WindowStore<K, ValueAndTimestamp<V>>
      return {
        init(context) {
          store = context.getStateStore<WindowStore<K, ValueAndTimestamp<V>>>(storeName)
        },
        async get(key) {
          return (await store.fetch(key.key, key.window.startMs)) ?? null
        },
      }
    },
  }
}

/** Lookups into a session aggregation's `SessionStore<K, V>`; the timestamp is the session end. */
export function sessionStoreValueGetterSupplier<K, V>(storeName: string): KTableValueGetterSupplier<Windowed<K>, V> {
  return {
    storeNames: () => [storeName],
    get: () => {
      let store: SessionStore<K, V>
      return {
        init(context) {
          store = context.getStateStore<SessionStore<K, V>>(storeName)
        },
        async get(key) {
          const v = await store.fetchSession(key.key, key.window.startMs, key.window.endMs)
          return v === undefined || v === null ? null : { value: v, timestamp: key.window.endMs }
        },
      }
    },
  }
}
