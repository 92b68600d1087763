/**
 * Exactly-once v2 (KIP-447) over kafkajs 2.2.4, which speaks TxnOffsetCommit v0/v1 only (no
 * consumer group metadata) and OffsetFetch without `require_stable`:
 *
 * - **TxnOffsetCommit v3** (flexible, Kafka ≥ 2.5): the consumer group's generation id, member id
 *   and group instance id travel with the transaction's offsets, so the group coordinator refuses
 *   a zombie's offsets (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID) instead of the
 *   per-task transactional ids of EOS-alpha doing the fencing;
 * - **OffsetFetch v7 with `require_stable`**: a task's new owner reads its committed offsets only
 *   once no transaction holding offsets of those partitions is pending (the broker answers
 *   UNSTABLE_OFFSET_COMMIT, retriable, until the previous owner's transaction ended);
 * - the **generation** of the group consumer, which kafkajs keeps to itself, read from its
 *   JoinGroup response.
 *
 * All three go through a per-client view of the `Kafka` object ({@link kafkaWithGroupMetadata})
 * whose clusters hand out group coordinators that answer `txnOffsetCommit` with v3 and report
 * `joinGroup`'s generation: nothing of kafkajs is patched process-wide. AddOffsetsToTxn stays at
 * kafkajs' version (KIP-447 did not change it). The request bodies are our own encoders over
 * kafkajs' `Encoder`; the responses are decoded here (flexible versions: compact strings and
 * arrays, tagged fields).
 *
 * Protocol reference: kafka.apache.org/protocol (TxnOffsetCommit API key 28, OffsetFetch API key 9).
 *
 * Over 400 lines: one protocol module (the codecs of two requests and the group coordinator
 * wrapping that sends them and follows a moved coordinator); split, a request's wire format would
 * sit apart from its only use.
 */
import { createRequire } from 'node:module'
import kafkajs, { type Kafka } from 'kafkajs'
import { StreamsError } from '../../../topology/errors.js'
import type { TopicPartition } from './types.js'

const require = createRequire(import.meta.url)

/** The consumer group metadata a transaction's offsets carry (Kafka: `ConsumerGroupMetadata`). */
export interface ConsumerGroupMetadata {
  readonly groupId: string
  /** The generation of the group this member joined; -1 = none (the coordinator then checks nothing). */
  readonly generationId: number
  readonly memberId: string
  /** Static membership (KIP-345); kafkajs has none, so null. */
  readonly groupInstanceId: string | null
}

const API_TXN_OFFSET_COMMIT = 28
const API_OFFSET_FETCH = 9
const TXN_OFFSET_COMMIT_VERSION = 3
const OFFSET_FETCH_VERSION = 7

interface KafkajsEncoder {
  buf: Buffer
  writeInt8(v: number): KafkajsEncoder
  writeInt16(v: number): KafkajsEncoder
  writeInt32(v: number): KafkajsEncoder
  writeInt64(v: string | number | bigint): KafkajsEncoder
  writeUVarInt(v: number): KafkajsEncoder
  writeUVarIntString(v: string | null): KafkajsEncoder
  writeBoolean(v: boolean): KafkajsEncoder
}
const Encoder = require('kafkajs/src/protocol/encoder.js') as new () => KafkajsEncoder
const { createErrorFromCode } = require('kafkajs/src/protocol/error.js') as { createErrorFromCode(code: number): Error }

/** The request shape kafkajs' connection sends (`protocolRequest`). */
export interface ProtocolRequest<T> {
  readonly request: { apiKey: number; apiVersion: number; apiName: string; encode(): Promise<unknown> }
  readonly response: { decode(payload: Buffer): Promise<T>; parse(data: T): Promise<T> }
}

export interface TxnOffsetCommitArgs {
  readonly transactionalId: string
  readonly producerId: string | number
  readonly producerEpoch: number
  readonly group: ConsumerGroupMetadata
  readonly topics: ReadonlyArray<{
    topic: string
    partitions: ReadonlyArray<{ partition: number; offset: string | number; metadata?: string | null }>
  }>
}

export interface PartitionError {
  readonly topic: string
  readonly partition: number
  readonly errorCode: number
}

/** Flexible request header v2 = header v1 (written by kafkajs) + an empty tagged-field section. */
function flexibleBody(): KafkajsEncoder {
  return new Encoder().writeUVarInt(0)
}

function compactArray<T>(e: KafkajsEncoder, items: ReadonlyArray<T>, write: (e: KafkajsEncoder, x: T) => void): void {
  e.writeUVarInt(items.length + 1)
  for (const x of items) write(e, x)
}

/** TxnOffsetCommit v3 request body (after the header's tagged fields). */
export function encodeTxnOffsetCommitV3(a: TxnOffsetCommitArgs): Buffer {
  const e = flexibleBody()
    .writeUVarIntString(a.transactionalId)
    .writeUVarIntString(a.group.groupId)
    .writeInt64(String(a.producerId))
    .writeInt16(a.producerEpoch)
    .writeInt32(a.group.generationId)
    .writeUVarIntString(a.group.memberId)
    .writeUVarIntString(a.group.groupInstanceId)
  compactArray(e, a.topics, (e, t) => {
    e.writeUVarIntString(t.topic)
    compactArray(e, t.partitions, (e, p) => {
      e.writeInt32(p.partition)
        .writeInt64(String(p.offset))
        .writeInt32(-1)
        .writeUVarIntString(p.metadata ?? null)
        .writeUVarInt(0)
    })
    e.writeUVarInt(0)
  })
  e.writeUVarInt(0)
  return Buffer.from(e.buf.subarray(0, (e as unknown as { offset: number }).offset))
}

/** A reader of flexible-version responses. */
class Reader {
  #o = 0
  constructor(private readonly b: Buffer) {}
  int16(): number {
    const v = this.b.readInt16BE(this.#o)
    this.#o += 2
    return v
  }
  int32(): number {
    const v = this.b.readInt32BE(this.#o)
    this.#o += 4
    return v
  }
  int64(): bigint {
    const v = this.b.readBigInt64BE(this.#o)
    this.#o += 8
    return v
  }
  uvarint(): number {
    let result = 0
    let shift = 0
    for (;;) {
      const byte = this.b[this.#o++]
      if (byte === undefined) throw new RangeError('truncated varint')
      result += (byte & 0x7f) * 2 ** shift
      if ((byte & 0x80) === 0) return result
      shift += 7
    }
  }
  compactString(): string | null {
    const n = this.uvarint()
    if (n === 0) return null
    const s = this.b.toString('utf8', this.#o, this.#o + n - 1)
    this.#o += n - 1
    return s
  }
  compactArray<T>(read: () => T): T[] {
    const n = this.uvarint()
    const out: T[] = []
    for (let i = 0; i < n - 1; i++) out.push(read())
    return out
  }
  tags(): void {
    const n = this.uvarint()
    for (let i = 0; i < n; i++) {
      this.uvarint()
      this.#o += this.uvarint()
    }
  }
}

/** TxnOffsetCommit v3 response (payload after the correlation id: header tags, then the body). */
export function decodeTxnOffsetCommitV3(payload: Buffer): { throttleTimeMs: number; errors: PartitionError[] } {
  const r = new Reader(payload)
  r.tags()
  const throttleTimeMs = r.int32()
  const errors: PartitionError[] = []
  r.compactArray(() => {
    const topic = r.compactString() ?? ''
    r.compactArray(() => {
      const partition = r.int32()
      const errorCode = r.int16()
      r.tags()
      if (errorCode !== 0) errors.push({ topic, partition, errorCode })
    })
    r.tags()
  })
  r.tags()
  return { throttleTimeMs, errors }
}

/** Protocol codes kafkajs 2.2.4's table lacks (it reports them as KAFKAJS_UNKNOWN_ERROR_CODE, code -99). */
const MISSING_CODES: Readonly<Record<number, { type: string; retriable: boolean; message: string }>> = {
  90: {
    type: 'PRODUCER_FENCED',
    retriable: false,
    message: 'There is a newer producer with the same transactionalId which fences the current one',
  },
  89: { type: 'THROTTLING_QUOTA_EXCEEDED', retriable: true, message: 'The throttling quota has been exceeded' },
}

/** The kafkajs protocol error of a code (type, code and retriable as kafkajs reports them), also for codes kafkajs does not know. */
export function protocolError(code: number): Error {
  const missing = MISSING_CODES[code]
  if (missing) return new kafkajs.KafkaJSProtocolError({ ...missing, code } as never)
  return createErrorFromCode(code)
}

/** The TxnOffsetCommit v3 request for kafkajs' connection; a partition error is thrown as its protocol error. */
export function txnOffsetCommitV3Request(a: TxnOffsetCommitArgs): ProtocolRequest<{ errors: PartitionError[] }> {
  return {
    request: {
      apiKey: API_TXN_OFFSET_COMMIT,
      apiVersion: TXN_OFFSET_COMMIT_VERSION,
      apiName: 'TxnOffsetCommit',
      encode: async () => rawEncoder(encodeTxnOffsetCommitV3(a)),
    },
    response: {
      decode: async (payload) => decodeTxnOffsetCommitV3(payload),
      parse: async (data) => {
        const first = data.errors[0]
        if (first) throw protocolError(first.errorCode)
        return data
      },
    },
  }
}

export interface OffsetFetchResult {
  /** Committed offsets by `<topic>:<partition>`; partitions without one are absent. */
  readonly offsets: Map<string, bigint>
}

/** OffsetFetch v7 request body with `require_stable` (after the header's tagged fields). */
export function encodeOffsetFetchV7(groupId: string, partitions: ReadonlyArray<TopicPartition>, requireStable: boolean): Buffer {
  const byTopic = new Map<string, number[]>()
  for (const p of partitions) {
    let l = byTopic.get(p.topic)
    if (!l) byTopic.set(p.topic, (l = []))
    l.push(p.partition)
  }
  const e = flexibleBody().writeUVarIntString(groupId)
  compactArray(e, [...byTopic], (e, [topic, ps]) => {
    e.writeUVarIntString(topic)
    compactArray(e, ps, (e, p) => e.writeInt32(p))
    e.writeUVarInt(0)
  })
  e.writeBoolean(requireStable).writeUVarInt(0)
  return Buffer.from(e.buf.subarray(0, (e as unknown as { offset: number }).offset))
}

/** OffsetFetch v7 response; the first error (group-level or a partition's) is thrown as its protocol error. */
export function decodeOffsetFetchV7(payload: Buffer): OffsetFetchResult & { errorCode: number } {
  const r = new Reader(payload)
  r.tags()
  r.int32() // throttle
  const offsets = new Map<string, bigint>()
  let errorCode = 0
  r.compactArray(() => {
    const topic = r.compactString() ?? ''
    r.compactArray(() => {
      const partition = r.int32()
      const offset = r.int64()
      r.int32() // leader epoch
      r.compactString() // metadata
      const code = r.int16()
      r.tags()
      if (code !== 0 && errorCode === 0) errorCode = code
      if (offset >= 0n) offsets.set(`${topic}:${partition}`, offset)
    })
    r.tags()
  })
  const groupCode = r.int16()
  r.tags()
  return { offsets, errorCode: groupCode !== 0 ? groupCode : errorCode }
}

export function offsetFetchV7Request(
  groupId: string,
  partitions: ReadonlyArray<TopicPartition>,
): ProtocolRequest<OffsetFetchResult & { errorCode: number }> {
  return {
    request: {
      apiKey: API_OFFSET_FETCH,
      apiVersion: OFFSET_FETCH_VERSION,
      apiName: 'OffsetFetch',
      encode: async () => rawEncoder(encodeOffsetFetchV7(groupId, partitions, true)),
    },
    response: {
      decode: async (payload) => decodeOffsetFetchV7(payload),
      parse: async (data) => {
        if (data.errorCode !== 0) throw protocolError(data.errorCode)
        return data
      },
    },
  }
}

function rawEncoder(b: Buffer): KafkajsEncoder {
  const e = new Encoder()
  ;(e as unknown as { writeBufferInternal(b: Buffer): void }).writeBufferInternal(b)
  return e
}

// -------------------------------------------------------------------------------------------------
// the kafkajs view
// -------------------------------------------------------------------------------------------------

/** The part of kafkajs' Broker used here. */
interface KafkajsBroker {
  versions?: Record<number, { minVersion: number; maxVersion: number }> | null
  connectionPool: { send<T>(r: ProtocolRequest<T>): Promise<T> }
  joinGroup(args: object): Promise<{ generationId: number; memberId: string }>
  txnOffsetCommit(args: {
    transactionalId: string
    groupId: string
    producerId: number
    producerEpoch: number
    topics: TxnOffsetCommitArgs['topics']
  }): Promise<unknown>
}

interface KafkajsCluster {
  findGroupCoordinator(args: { groupId: string; coordinatorType?: number }): Promise<KafkajsBroker>
  findBroker(args: { nodeId: string | number }): Promise<KafkajsBroker>
}

/** The OffsetCommit arguments kafkajs' offset manager passes to its coordinator broker. */
interface OffsetCommitArgs {
  groupId: string
}

/**
 * Whether an OffsetCommit failed because the broker it went to is no longer the group's
 * coordinator (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE) or is gone (not in the metadata, its
 * connection refused or closed): the commit belongs at the current coordinator. By kafkajs' error
 * type and class name, never by message.
 */
export function isCoordinatorMoved(e: unknown): boolean {
  const err = e as { type?: unknown; name?: unknown } | undefined
  return (
    err?.type === 'NOT_COORDINATOR_FOR_GROUP' ||
    err?.type === 'GROUP_COORDINATOR_NOT_AVAILABLE' ||
    err?.name === 'KafkaJSBrokerNotFound' ||
    err?.name === 'KafkaJSConnectionError' ||
    err?.name === 'KafkaJSConnectionClosedError'
  )
}

export interface GroupMetadataHooks {
  /** The group metadata a TxnOffsetCommit of this client sends; undefined = kafkajs' own v0/v1 request. */
  readonly groupMetadata?: () => ConsumerGroupMetadata | undefined
  /** A JoinGroup of this client's consumer succeeded. */
  readonly onJoinGroup?: (generationId: number, memberId: string) => void
  /** A cluster this client created (the consumer's: for OffsetFetch). */
  readonly onCluster?: (cluster: KafkajsCluster) => void
}

/** Sends a request to a broker that must support `apiKey` at `version` (a clear error otherwise). */
export async function sendFlexible<T>(broker: KafkajsBroker, r: ProtocolRequest<T>): Promise<T> {
  const v = broker.versions?.[r.request.apiKey]
  if (v && v.maxVersion < r.request.apiVersion) {
    throw new StreamsError(
      `processingGuarantee 'exactly_once_v2' needs ${r.request.apiName} v${r.request.apiVersion} (Kafka ≥ 2.5); the broker supports up to v${v.maxVersion}`,
    )
  }
  return broker.connectionPool.send(r)
}

/**
 * kafkajs' offset manager keeps the coordinator broker it was created with (at the group's last
 * SyncGroup) until the next rebalance: on NOT_COORDINATOR it refreshes metadata but sends every
 * later OffsetCommit to the same broker, so after a coordinator move without a rebalance (a
 * rolling broker restart) at-least-once commits fail until the session ends. The view sends such
 * a commit to the group's current coordinator instead, and keeps doing so for that group until its
 * next JoinGroup.
 */
class CoordinatorRedirects {
  readonly #current = new Map<string, KafkajsBroker>()

  constructor(private readonly cluster: KafkajsCluster) {}

  async offsetCommit(target: KafkajsBroker & { offsetCommit(a: OffsetCommitArgs): Promise<unknown> }, args: OffsetCommitArgs) {
    const redirected = this.#current.get(args.groupId) as typeof target | undefined
    if (redirected) {
      try {
        return await redirected.offsetCommit(args)
      } catch (e) {
        if (!isCoordinatorMoved(e)) throw e
        this.#current.delete(args.groupId)
        return this.#commitAtCurrent(args, e)
      }
    }
    try {
      return await target.offsetCommit(args)
    } catch (e) {
      if (!isCoordinatorMoved(e)) throw e
      return this.#commitAtCurrent(args, e)
    }
  }

  /** After a JoinGroup the offset manager is new and knows the coordinator again. */
  forget(): void {
    this.#current.clear()
  }

  async #commitAtCurrent(args: OffsetCommitArgs, original: unknown): Promise<unknown> {
    let coordinator: KafkajsBroker & { offsetCommit(a: OffsetCommitArgs): Promise<unknown> }
    try {
      coordinator = (await this.cluster.findGroupCoordinator({ groupId: args.groupId })) as typeof coordinator
    } catch {
      throw original // no coordinator now: the commit is deferred and retried as before
    }
    const result = await coordinator.offsetCommit(args)
    this.#current.set(args.groupId, coordinator)
    return result
  }
}

function wrapBroker(broker: KafkajsBroker, hooks: GroupMetadataHooks, redirects?: CoordinatorRedirects): KafkajsBroker {
  return new Proxy(broker, {
    get(target, prop, receiver) {
      if (prop === 'offsetCommit' && redirects) {
        return (args: OffsetCommitArgs) =>
          redirects.offsetCommit(target as KafkajsBroker & { offsetCommit(a: OffsetCommitArgs): Promise<unknown> }, args)
      }
      if (prop === 'txnOffsetCommit' && hooks.groupMetadata) {
        return async (args: Parameters<KafkajsBroker['txnOffsetCommit']>[0]) => {
          const group = hooks.groupMetadata?.()
          if (!group || group.groupId !== args.groupId) return target.txnOffsetCommit(args)
          return sendFlexible(
            target,
            txnOffsetCommitV3Request({
              transactionalId: args.transactionalId,
              producerId: args.producerId,
              producerEpoch: args.producerEpoch,
              group,
              topics: args.topics,
            }),
          )
        }
      }
      if (prop === 'joinGroup' && (hooks.onJoinGroup || redirects)) {
        return async (args: object) => {
          const res = await target.joinGroup(args)
          redirects?.forget()
          hooks.onJoinGroup?.(res.generationId, res.memberId)
          return res
        }
      }
      const v = Reflect.get(target, prop, receiver) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
}

function wrapCluster(cluster: KafkajsCluster, hooks: GroupMetadataHooks): KafkajsCluster {
  const redirects = new CoordinatorRedirects(cluster)
  return new Proxy(cluster, {
    get(target, prop, receiver) {
      if (prop === 'findGroupCoordinator') {
        return async (args: { groupId: string; coordinatorType?: number }) => {
          const b = await target.findGroupCoordinator(args)
          // coordinator type 0 = GROUP (1 = TRANSACTION: AddOffsetsToTxn, EndTxn stay as they are)
          return (args.coordinatorType ?? 0) === 0 ? wrapBroker(b, hooks, redirects) : b
        }
      }
      if (prop === 'findBroker') {
        // kafkajs' offset manager re-resolves its coordinator by node id after a reconnect
        return async (args: { nodeId: string | number }) => wrapBroker(await target.findBroker(args), hooks, redirects)
      }
      const v = Reflect.get(target, prop, receiver) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
}

/**
 * A view of `kafka` whose producers and consumers (created from the view) use clusters that send
 * TxnOffsetCommit v3 with {@link GroupMetadataHooks.groupMetadata} and report JoinGroup results.
 * Other clients of `kafka` are untouched. Throws when kafkajs' private cluster factory is missing
 * (kafkajs 2.2.4 is required; test/unit/runtime-txn-offset-commit.test.ts checks its shape).
 */
export function kafkaWithGroupMetadata(kafka: Kafka, hooks: GroupMetadataHooks): Kafka {
  const sym = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster')
  if (!sym) throw new StreamsError(`processingGuarantee 'exactly_once_v2' needs kafkajs 2.2.4 (no private cluster factory found)`)
  const create = (kafka as unknown as Record<symbol, (o: object) => KafkajsCluster>)[sym]!.bind(kafka)
  const view = Object.create(kafka) as Record<symbol, unknown>
  view[sym] = (options: object) => {
    const c = wrapCluster(create(options), hooks)
    hooks.onCluster?.(c)
    return c
  }
  return view as unknown as Kafka
}

/** Committed offsets of `groupId` read with `require_stable` through `cluster`'s group coordinator (OffsetFetch v7). */
export async function fetchStableOffsets(
  cluster: KafkajsCluster,
  groupId: string,
  partitions: ReadonlyArray<TopicPartition>,
): Promise<Map<string, bigint>> {
  if (partitions.length === 0) return new Map()
  const coordinator = await cluster.findGroupCoordinator({ groupId })
  const res = await sendFlexible(coordinator, offsetFetchV7Request(groupId, partitions))
  return res.offsets
}
