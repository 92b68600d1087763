/**
 * Where the application's state lives, for interactive queries across instances (Kafka Streams:
 * `StreamsMetadataState`, KIP-535): every member with its `applicationServer` host:port and the
 * tasks, stores and partitions of its last assignment; the instance holding one key of a store.
 * Read from the group view the membership keeps (the assignment's userData of every member).
 */
import { InvalidStateStoreError } from '../../topology/errors.js'
import type { TopologyDef } from '../../topology/engine/types.js'
import type { Serde } from '../../topology/serde.js'
import { defaultPartition } from './client/partition-send.js'
import type { GroupView } from './runtime/group-membership.js'

/** Where a client runs and what it holds (Kafka Streams: `StreamsMetadata`). */
export interface StreamsMetadata {
  /** `host:port` from the member's `applicationServer`, or undefined if it has none. */
  readonly hostInfo: string | undefined
  readonly host: string | undefined
  readonly port: number | undefined
  readonly memberId: string
  /** Stores of the sub-topologies of its active tasks. */
  readonly stateStoreNames: ReadonlyArray<string>
  /** Stores of the sub-topologies of its standby tasks (Kafka Streams: `standbyStateStoreNames`). */
  readonly standbyStateStoreNames: ReadonlyArray<string>
  readonly activeTasks: ReadonlyArray<string>
  readonly standbyTasks: ReadonlyArray<string>
  readonly topicPartitions: ReadonlyArray<{ topic: string; partition: number }>
}

/** An instance's interactive-query endpoint, from its `applicationServer` config (Kafka Streams: `HostInfo`). */
export interface HostInfo {
  readonly host: string
  readonly port: number
}

/**
 * Where one key of a store lives (Kafka Streams: `KeyQueryMetadata`, KIP-535): the instance running
 * its active task, the instances holding standby replicas, and the partition.
 */
export interface KeyQueryMetadata {
  /**
   * The active task's instance; undefined when unknown: no assignment yet, a rebalance in progress,
   * or the owner has no `applicationServer` (Kafka Streams answers `KeyQueryMetadata.NOT_AVAILABLE`).
   */
  readonly activeHost: HostInfo | undefined
  /** Instances with a standby replica of the key's task (may serve stale reads). */
  readonly standbyHosts: ReadonlyArray<HostInfo>
  /** The key's partition (of the store's source topics), or -1 when the partition count is not known yet. */
  readonly partition: number
  /** The key's task id (`<subtopology>_<partition>`), or undefined for a global store or an unknown partition. */
  readonly taskId: string | undefined
}

/** Every member of the last assignment, with what it holds (see `KafkaStreams.metadataForAllStreamsClients`). */
export function allStreamsMetadata(view: GroupView | undefined, def: TopologyDef | undefined): StreamsMetadata[] {
  if (!view || !def) return []
  return view.members.map((m) => {
    const [host, port] = m.host
      ? [m.host.slice(0, m.host.lastIndexOf(':')), Number(m.host.slice(m.host.lastIndexOf(':') + 1))]
      : [undefined, undefined]
    const stores = new Set<string>()
    const standbyStores = new Set<string>()
    const tps: Array<{ topic: string; partition: number }> = []
    for (const t of m.active) {
      const [sid, p] = t.split('_').map(Number)
      const s = def.subtopologies.find((x) => x.id === sid)
      if (!s) continue
      for (const n of s.stores) stores.add(n)
      for (const topic of s.sourceTopics) tps.push({ topic, partition: p! })
    }
    for (const t of m.standby) {
      const s = def.subtopologies.find((x) => x.id === Number(t.split('_')[0]))
      for (const n of s?.stores ?? []) standbyStores.add(n)
    }
    return {
      hostInfo: m.host,
      host,
      port,
      memberId: m.memberId,
      stateStoreNames: [...stores],
      standbyStateStoreNames: [...standbyStores],
      activeTasks: m.active,
      standbyTasks: m.standby,
      topicPartitions: tps,
    }
  })
}

/** What {@link keyQueryMetadata} reads from the client. */
export interface KeyQueryContext {
  readonly def: TopologyDef | undefined
  /** This instance's `applicationServer`. */
  readonly applicationServer: HostInfo | undefined
  readonly partitionsFor: (topic: string) => number | undefined
  readonly all: () => StreamsMetadata[]
}

/** See `KafkaStreams.queryMetadataForKey`. @throws InvalidStateStoreError for a store name the topology does not have. */
export function keyQueryMetadata<K>(
  ctx: KeyQueryContext,
  storeName: string,
  key: K,
  keySerializer: Pick<Serde<K>, 'serialize'>,
  partitioner?: (key: K, numPartitions: number) => number,
): KeyQueryMetadata {
  const def = ctx.def
  if (def?.globalStores.some((g) => g.store.name === storeName)) {
    const me = ctx.applicationServer
    return { activeHost: me ? { host: me.host, port: me.port } : undefined, standbyHosts: [], partition: -1, taskId: undefined }
  }
  const sub = def?.subtopologies.find((s) => s.stores.includes(storeName))
  if (!def || !def.stores.has(storeName) || !sub) {
    throw new InvalidStateStoreError(`the topology has no state store named '${storeName}'`, { place: { store: storeName } })
  }
  const topic = sub.sourceTopics[0]
  const n = topic === undefined ? undefined : ctx.partitionsFor(topic)
  if (!n) return { activeHost: undefined, standbyHosts: [], partition: -1, taskId: undefined }
  let partition: number
  if (partitioner) {
    partition = partitioner(key, n)
  } else {
    partition = defaultPartition(keySerializer.serialize(topic!, key), n)
  }
  const taskId = `${sub.id}_${partition}`
  let activeHost: HostInfo | undefined
  const standbyHosts: HostInfo[] = []
  for (const m of ctx.all()) {
    if (m.host === undefined || m.port === undefined) continue
    if (m.activeTasks.includes(taskId)) activeHost = { host: m.host, port: m.port }
    else if (m.standbyTasks.includes(taskId)) standbyHosts.push({ host: m.host, port: m.port })
  }
  return { activeHost, standbyHosts, partition, taskId }
}

/** See `KafkaStreams.streamsMetadataForStore`. @throws InvalidStateStoreError for a store name the topology does not have. */
export function storeStreamsMetadata(def: TopologyDef | undefined, all: () => StreamsMetadata[], storeName: string): StreamsMetadata[] {
  const global = def?.globalStores.some((g) => g.store.name === storeName) === true
  if (!global && !def?.stores.has(storeName)) {
    throw new InvalidStateStoreError(`the topology has no state store named '${storeName}'`, { place: { store: storeName } })
  }
  const members = all()
  return global ? members : members.filter((m) => m.stateStoreNames.includes(storeName) || m.standbyStateStoreNames.includes(storeName))
}
