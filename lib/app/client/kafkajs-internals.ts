/**
 * Every use of kafkajs' PRIVATE modules and fields, in one place (kafkajs is pinned at exactly
 * 2.2.4 in package.json). {@link checkKafkajsInternals} verifies their shape; the adapter calls it
 * when it is created and a unit test calls it, so a kafkajs upgrade that moves them fails loudly
 * instead of silently changing behaviour.
 *
 * What we reach for, and why:
 * - `private:Kafka:createCluster` (a symbol-keyed factory on each `Kafka` instance): the changelog
 *   reader needs a `Cluster` with the app's brokers, TLS, SASL and retry settings to send Fetch
 *   and ListOffsets for exactly the partitions it wants (kafkajs has no manual assignment); and
 *   wrapping it on kstreams' OWN `Kafka` instance is how the read_committed fix below reaches
 *   every client kstreams creates and nothing else.
 * - `cluster.brokerPool.createBroker` (an instance field): wrapped per cluster, so every broker
 *   connection of that cluster gets the fixed `fetch` and the rejoin-aware `heartbeat` as own
 *   properties; `Broker.prototype` is never touched, so a user's own kafkajs clients in the same
 *   process keep kafkajs' behaviour.
 * - `kafkajs/src/broker/index.js` (the `Broker` class): only its prototype's `fetch` and
 *   `heartbeat`, called by the wrappers and checked for shape.
 * - `kafkajs/src/protocol/error.js` (`createErrorFromCode`): the real REBALANCE_IN_PROGRESS error
 *   a requested rejoin answers (./kafkajs-rejoin.ts).
 * - `kafkajs/src/consumer/batch.js` (`Batch`): decodes a fetched partition (drops control records,
 *   records before the fetch offset) for the changelog reader, exactly as kafkajs' consumer does.
 *
 * ## The read_committed fix (aborted transactions)
 * A read_committed Fetch response lists the aborted transactions overlapping the fetched range
 * (`producerId`, `firstOffset`); the consumer must drop every transactional record of such a
 * producer from `firstOffset` up to that producer's ABORT marker. kafkajs'
 * `filterAbortedMessages` assumes the list is sorted by `firstOffset` and activates at most one
 * aborted transaction per record. Brokers list them in completion order instead (seen: `5963@142`
 * before `5968@138`), so records of an aborted transaction reached `eachBatch` as if committed
 * (test/integration/runtime-eos.test.ts, re-keying scenario). {@link markAbortedRecords} drops
 * them the way the Java consumer does (all aborted transactions starting at or before a record are
 * active; a producer's ABORT marker ends its) by flagging them as control records: kafkajs'
 * `Batch` then filters them out like transaction markers, while their offsets still count for the
 * batch's last offset. The list is emptied so kafkajs' own filter does nothing.
 */
import { createRequire } from 'node:module'
import type { Kafka } from 'kafkajs'
import { takeRejoin } from './kafkajs-rejoin.js'

const require = createRequire(import.meta.url)

/** The kafkajs version whose internals this module was written against. */
export const KAFKAJS_VERSION = '2.2.4'
/** Kafka's isolation level READ_COMMITTED in Fetch and ListOffsets. */
export const READ_COMMITTED = 1

/** One record of kafkajs' decoded fetch response (the fields we read and write). */
export interface KafkajsFetchedMessage {
  offset: string
  key: Buffer | null
  value: Buffer | null
  timestamp: string
  headers: Record<string, Buffer | Buffer[] | undefined>
  isControlRecord?: boolean
  batchContext?: { producerId?: string; inTransaction?: boolean }
}

/** One partition of kafkajs' decoded fetch response. */
export interface KafkajsPartitionData {
  partition: number
  errorCode: number
  highWatermark: string
  lastStableOffset: string
  abortedTransactions: Array<{ producerId: string; firstOffset: string }>
  messages: KafkajsFetchedMessage[]
}

/** The fields of one partition's fetch data that {@link markAbortedRecords} reads and writes. */
export interface FetchedPartitionData {
  abortedTransactions?: Array<{ producerId: string; firstOffset: string }>
  messages?: Array<Pick<KafkajsFetchedMessage, 'offset' | 'key' | 'isControlRecord' | 'batchContext'>>
}

export interface KafkajsFetchRequest {
  replicaId: number
  isolationLevel: number
  maxWaitTime: number
  minBytes: number
  maxBytes: number
  topics: Array<{ topic: string; partitions: Array<{ partition: number; fetchOffset: string; maxBytes: number }> }>
}

export interface KafkajsFetchResponse {
  responses: Array<{ topicName: string; partitions: KafkajsPartitionData[] }>
}

/** kafkajs' `Broker` (one connection pool to one broker), the part we call. */
export interface KafkajsBroker {
  fetch(request: KafkajsFetchRequest): Promise<KafkajsFetchResponse>
  heartbeat(request: { groupId: string; memberId: string; groupGenerationId: number }): Promise<unknown>
}

/** kafkajs' `Cluster`, the part we call. */
export interface KafkajsCluster {
  connect(): Promise<void>
  disconnect(): Promise<void>
  refreshMetadata(): Promise<void>
  addMultipleTargetTopics(topics: string[]): Promise<void>
  findTopicPartitionMetadata(topic: string): Array<{ partitionId: number; leader: number }>
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>
  findBroker(args: { nodeId: string }): Promise<KafkajsBroker>
  fetchTopicsOffset(
    topics: Array<{ topic: string; fromBeginning: boolean; partitions: Array<{ partition: number }> }>,
  ): Promise<Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }>>
}

/** A fetched partition decoded by kafkajs' `Batch`. */
export interface KafkajsBatch {
  /** Deliverable records: at or after the fetch offset, no control records, no aborted records. */
  readonly messages: KafkajsFetchedMessage[]
  /** Every entry at or after the fetch offset, control records included. */
  readonly messagesWithinOffset: KafkajsFetchedMessage[]
}

type ClusterFactory = (options: object) => KafkajsCluster
interface BrokerPoolLike {
  createBroker: (options: object) => KafkajsBroker
}

const CREATE_CLUSTER = 'private:Kafka:createCluster'
const FIXED = Symbol('kstreams.kafkajs.readCommittedFix')
const ABORT_MARKER_KEY = Buffer.from([0, 0, 0, 0]) // control record key: version 0, type 0 (ABORT)

const BrokerClass = require('kafkajs/src/broker/index.js') as { prototype: { fetch?: unknown; heartbeat?: unknown } }
const { createErrorFromCode } = require('kafkajs/src/protocol/error.js') as { createErrorFromCode?: (code: number) => Error }
/** Kafka's REBALANCE_IN_PROGRESS error code. */
const REBALANCE_IN_PROGRESS = 27
const BatchClass = require('kafkajs/src/consumer/batch.js') as new (
  topic: string,
  fetchedOffset: string,
  pd: KafkajsPartitionData,
) => KafkajsBatch

/**
 * Throws an error naming what moved when kafkajs' internals are not what this module uses
 * (version, the private cluster factory, the broker pool's `createBroker`, `Broker.prototype.fetch`,
 * `Batch`, the cluster methods the changelog reader calls).
 * @param kafka a `Kafka` instance to inspect (its cluster factory and a cluster it makes).
 */
export function checkKafkajsInternals(kafka: Kafka): void {
  const problems: string[] = []
  const version = (require('kafkajs/package.json') as { version: string }).version
  if (version !== KAFKAJS_VERSION) problems.push(`kafkajs ${version} is installed, kstreams needs exactly ${KAFKAJS_VERSION}`)
  if (typeof BrokerClass?.prototype?.fetch !== 'function') problems.push('kafkajs/src/broker Broker.prototype.fetch is not a function')
  if (typeof BrokerClass?.prototype?.heartbeat !== 'function')
    problems.push('kafkajs/src/broker Broker.prototype.heartbeat is not a function')
  if (typeof createErrorFromCode !== 'function') problems.push('kafkajs/src/protocol/error.js has no createErrorFromCode')
  else if ((createErrorFromCode(REBALANCE_IN_PROGRESS) as { type?: string }).type !== 'REBALANCE_IN_PROGRESS')
    problems.push(`kafkajs' error code ${REBALANCE_IN_PROGRESS} is not REBALANCE_IN_PROGRESS`)
  if (typeof BatchClass !== 'function') problems.push('kafkajs/src/consumer/batch.js does not export a class')
  const factory = clusterFactoryOf(kafka)
  if (!factory) problems.push(`a Kafka instance has no ${CREATE_CLUSTER} factory`)
  else {
    const cluster = factory({ allowAutoTopicCreation: false, maxInFlightRequests: null, isolationLevel: READ_COMMITTED }) as unknown as {
      brokerPool?: Partial<BrokerPoolLike>
    } & Record<string, unknown>
    if (typeof cluster.brokerPool?.createBroker !== 'function') problems.push('cluster.brokerPool.createBroker is not a function')
    for (const m of [
      'connect',
      'disconnect',
      'refreshMetadata',
      'addMultipleTargetTopics',
      'findTopicPartitionMetadata',
      'findLeaderForPartitions',
      'findBroker',
      'fetchTopicsOffset',
    ]) {
      if (typeof cluster[m] !== 'function') problems.push(`cluster.${m} is not a function`)
    }
  }
  if (problems.length) throw new Error(`kafkajs internals changed shape (kstreams relies on them): ${problems.join('; ')}`)
}

function clusterFactoryOf(kafka: Kafka): ClusterFactory | undefined {
  const sym = Object.getOwnPropertySymbols(kafka).find((s) => s.description === CREATE_CLUSTER)
  if (!sym) return undefined
  const f = (kafka as unknown as Record<symbol, unknown>)[sym]
  return typeof f === 'function' ? (f as ClusterFactory) : undefined
}

/**
 * Flags the records of aborted transactions in one partition's fetch data as control records and
 * empties its aborted-transaction list (see the module comment).
 * @returns how many records were flagged.
 */
export function markAbortedRecords(pd: FetchedPartitionData): number {
  const list = pd.abortedTransactions
  if (!Array.isArray(list) || list.length === 0 || !Array.isArray(pd.messages)) return 0
  const pending = [...list].sort((a, b) => {
    const x = BigInt(a.firstOffset)
    const y = BigInt(b.firstOffset)
    return x < y ? -1 : x > y ? 1 : 0
  })
  const active = new Set<string>()
  let marked = 0
  for (const m of pd.messages) {
    const offset = BigInt(m.offset)
    while (pending.length > 0 && BigInt(pending[0]!.firstOffset) <= offset) active.add(String(pending.shift()!.producerId))
    const producerId = String(m.batchContext?.producerId)
    if (m.isControlRecord) {
      if (m.key && Buffer.from(m.key).equals(ABORT_MARKER_KEY)) active.delete(producerId)
      continue
    }
    if (m.batchContext?.inTransaction && active.has(producerId)) {
      m.isControlRecord = true
      marked++
    }
  }
  pd.abortedTransactions = []
  return marked
}

/**
 * Gives one broker (connection pool) the fixed `fetch` and a `heartbeat` that answers a requested
 * rejoin (./kafkajs-rejoin.ts) with kafkajs' own REBALANCE_IN_PROGRESS error instead of sending,
 * as own properties.
 */
function fixBroker(broker: KafkajsBroker): KafkajsBroker {
  const target = broker as KafkajsBroker & { [FIXED]?: true }
  if (target[FIXED]) return broker
  const fetch = target.fetch
  target.fetch = async function fixedFetch(request: KafkajsFetchRequest) {
    const response = await fetch.call(broker, request)
    for (const t of response?.responses ?? []) for (const pd of t.partitions ?? []) markAbortedRecords(pd)
    return response
  }
  const heartbeat = target.heartbeat
  target.heartbeat = async function rejoiningHeartbeat(request) {
    if (takeRejoin(request.groupId, request.memberId)) throw createErrorFromCode!(REBALANCE_IN_PROGRESS)
    return heartbeat.call(broker, request)
  }
  target[FIXED] = true
  return broker
}

/** Makes every broker `cluster` creates from now on (it has none before `connect`) use the fixed `fetch`. */
function fixCluster<C>(cluster: C): C {
  const pool = (cluster as { brokerPool?: BrokerPoolLike & { [FIXED]?: true } }).brokerPool
  if (!pool || typeof pool.createBroker !== 'function') throw new Error('kafkajs internals changed shape: cluster.brokerPool.createBroker')
  if (pool[FIXED]) return cluster
  const create = pool.createBroker
  pool.createBroker = (options: object) => fixBroker(create(options))
  pool[FIXED] = true
  return cluster
}

/**
 * Applies kstreams' kafkajs fixes (the read_committed fix, the rejoin hook of `enforceRebalance`)
 * to every client (consumer, producer, admin) that `kafka` creates from now on, and to nothing
 * else: the instance's own cluster factory is wrapped, kafkajs' classes are left alone. Idempotent.
 * @returns `kafka`.
 * @throws Error when kafkajs' internals changed shape.
 */
export function fixKafkajs<K extends Kafka>(kafka: K): K {
  const sym = Object.getOwnPropertySymbols(kafka).find((s) => s.description === CREATE_CLUSTER)
  const holder = kafka as unknown as Record<symbol, unknown> & { [FIXED]?: true }
  if (holder[FIXED]) return kafka
  const factory = sym ? holder[sym] : undefined
  if (!sym || typeof factory !== 'function') throw new Error(`kafkajs internals changed shape: a Kafka instance has no ${CREATE_CLUSTER}`)
  holder[sym] = (options: object) => fixCluster((factory as ClusterFactory)(options))
  holder[FIXED] = true
  return kafka
}

/**
 * A read_committed `Cluster` of `kafka` (its brokers, TLS, SASL and retry settings) with kstreams'
 * fixes, for reading partitions outside a consumer group.
 */
export function readCommittedCluster(kafka: Kafka): KafkajsCluster {
  const factory = clusterFactoryOf(kafka)
  if (!factory) throw new Error(`kafkajs internals changed shape: a Kafka instance has no ${CREATE_CLUSTER}`)
  return fixCluster(factory({ isolationLevel: READ_COMMITTED, allowAutoTopicCreation: false, maxInFlightRequests: null }))
}

/** Decodes one fetched partition with kafkajs' consumer `Batch` (records from `fetchedOffset` on, control records dropped). */
export function decodeFetchedPartition(topic: string, fetchedOffset: string, pd: KafkajsPartitionData): KafkajsBatch {
  return new BatchClass(topic, fetchedOffset, pd)
}
