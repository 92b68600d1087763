/**
 * `KafkaStreams#store`: resolves a store name to its read-only view (Kafka Streams:
 * `QueryableStoreProvider` with `StoreQueryParameters`). The view's kind and key serde come from
 * the store's definition in the topology; the stores behind it (the global store of that name, or
 * this instance's RUNNING tasks holding it, optionally only one partition's) are looked up at each
 * call, since tasks move.
 */
import { InvalidStateStoreError } from '../../topology/errors.js'
import type { TopologyDef } from '../../topology/engine/types.js'
import { resolveSerde, type Serde } from '../../topology/serde.js'
import { changelogTopicFor } from '../../topology/state/typed.js'
import type { StateStore } from '../../topology/state/types.js'
import { compositeStore, compositeVersionedStore, type QueryableStore } from './interactive-queries.js'
import type { ResolvedStreamsConfig } from './options.js'
import type { StreamTask } from './stream-task.js'

/** Options of `KafkaStreams.store` (Kafka Streams: `StoreQueryParameters`). */
export interface StoreQueryParameters {
  /** Return values of timestamped stores as `{ value, timestamp }`. @defaultValue false */
  readonly withTimestamps?: boolean
  /** Query only the task of this partition (Kafka Streams: `withPartition`, KIP-562). @defaultValue all local tasks */
  readonly partition?: number
}

/** Where the stores behind a view are found, read at each query. */
export interface LocalStoreSources {
  /** The global store of a name, if any. */
  readonly global: (name: string) => StateStore | undefined
  /** This instance's active tasks, or undefined while the client is not RUNNING / REBALANCING. */
  readonly tasks: () => ReadonlyMap<string, StreamTask> | undefined
}

type StoreConfig = Pick<ResolvedStreamsConfig, 'applicationId' | 'defaultKeySerde' | 'defaultValueSerde'>

/** See `KafkaStreams.store`. @throws InvalidStateStoreError at once for a store name the topology does not have. */
export function storeView(
  def: TopologyDef | undefined,
  config: StoreConfig,
  sources: LocalStoreSources,
  name: string,
  options: StoreQueryParameters,
): QueryableStore {
  const globalDef = def?.globalStores.find((g) => g.store.name === name)?.store
  const storeDef = def?.stores.get(name) ?? globalDef
  if (!storeDef) {
    throw new InvalidStateStoreError(`the topology has no state store named '${name}'`, { place: { store: name } })
  }
  const local = () => localStores(sources, name, options.partition)
  if (storeDef.versioned !== undefined) return compositeVersionedStore(name, storeDef.versioned.historyRetentionMs, local)
  return compositeStore(
    {
      name,
      type: storeDef.type,
      keySerde: storeKeySerde(storeDef.keySerde, config),
      serdeTopic: changelogTopicFor(config.applicationId, name),
      unwrapTimestamps: storeDef.timestamped === true && !options.withTimestamps,
      persistent: storeDef.persistent,
      windowSizeMs: storeDef.windowSizeMs,
    },
    local,
  )
}

/** The key serde of a store: its own, else the application's default key serde. */
function storeKeySerde(own: Serde<any> | undefined, c: StoreConfig): Serde<any> | undefined {
  return resolveSerde(own, c.defaultKeySerde, {
    ...(c.defaultKeySerde ? { keySerde: c.defaultKeySerde } : {}),
    ...(c.defaultValueSerde ? { valueSerde: c.defaultValueSerde } : {}),
  })
}

function localStores(sources: LocalStoreSources, name: string, partition?: number): StateStore[] {
  const out: StateStore[] = []
  const g = sources.global(name)
  if (g) return [g]
  const tasks = sources.tasks()
  if (!tasks) return out
  for (const [id, t] of tasks) {
    if (t.state !== 'RUNNING') continue
    if (partition !== undefined && Number(id.slice(id.indexOf('_') + 1)) !== partition) continue
    const s = t.engine?.getStateStore(name)
    if (s) out.push(s)
  }
  return out
}
