/**
 * An in-memory broker model behind the runtime's client adapter (lib/app/client/types.ts), for
 * unit tests of the task manager, commit strategies and restore without a broker:
 * - per topic-partition logs; a transactional write is visible to read_committed readers only
 *   once its transaction committed (an open transaction holds the last stable offset back);
 * - transactional ids with epochs: `init` bumps the epoch and aborts the previous owner's open
 *   transaction; a producer with an old epoch gets kafkajs' INVALID_PRODUCER_EPOCH;
 * - committed group offsets (by transactions' sendOffsets on commit, or commitOffsets);
 * - injectable errors per call (`broker.fail(op, error)`), as real kafkajs error objects, so the
 *   runtime's real error policy classifies them;
 * - an operation log (`broker.ops`) to check the order of a commit's steps;
 * - the group's generation and members (KIP-447): `rebalance()` starts a new generation; offsets a
 *   thread producer adds with group metadata (TxnOffsetCommit v3) are refused with ILLEGAL_GENERATION
 *   / UNKNOWN_MEMBER_ID when they name a generation or member the group no longer has; committed
 *   offsets read with `require_stable` are refused (UNSTABLE_OFFSET_COMMIT) while an open
 *   transaction holds offsets of the partitions;
 * - `offsetMarkersDelayed`: a committed transaction's offsets stay pending until
 *   `writeOffsetMarkers()` (Kafka 4's group coordinator applies the commit marker asynchronously:
 *   a plain OffsetFetch answers the older offset meanwhile, a `require_stable` one is refused).
 */
import { createRequire } from 'node:module'
import type { RawRecord } from '../../../topology/engine/types.js'
import type { ChangelogReader } from '../../../lib/state/types.js'
import {
  tpKey,
  type GroupConsumer,
  type GroupConsumerListener,
  type GroupConsumerOptions,
  type GroupDescription,
  type GroupJoin,
  type NewTopic,
  type PartitionEnds,
  type SendResult,
  type StreamsAdmin,
  type StreamsClient,
  type TaskProducer,
  type TopicDescription,
  type TopicMessages,
  type TopicPartition,
  type TopicPartitionOffset,
  type TransactionalProducer,
  type ThreadProducer,
  type ConsumerGroupMetadata,
} from '../../../lib/app/client/types.js'

const require = createRequire(import.meta.url)
const { createErrorFromCode, errorCodes } = require('kafkajs/src/protocol/error.js') as {
  createErrorFromCode(code: number): Error & { type: string; code: number; retriable: boolean }
  errorCodes: Array<{ type: string; code: number }>
}
const kjs = require('kafkajs/src/errors.js') as Record<string, new (...args: any[]) => Error>

/** The real kafkajs protocol error of a protocol error name (e.g. `INVALID_PRODUCER_EPOCH`). */
export function protocolError(type: string): Error {
  const entry = errorCodes.find((e) => e.type === type)
  if (!entry) throw new Error(`kafkajs has no protocol error ${type}`)
  return createErrorFromCode(entry.code)
}

/** kafkajs' request timeout (the outcome of the request is unknown). */
export function requestTimeout(): Error {
  return new kjs.KafkaJSRequestTimeoutError!('Request Produce(key: 26, version: 1) timed out', {
    broker: 'b:9092',
    correlationId: 7,
    createdAt: 0,
    sentAt: 0,
    pendingDuration: 0,
  })
}

/** What kafkajs' consumer crashes with when a broker stays unreachable (its retries exhausted). */
export function retriesExceeded(): Error {
  const cause = new kjs.KafkaJSConnectionError!('Connection error: connect ECONNREFUSED 127.0.0.1:9092', {
    broker: 'b:9092',
    code: 'ECONNREFUSED',
  })
  return new kjs.KafkaJSNumberOfRetriesExceeded!(cause, { retryCount: 5, retryTime: 1000 })
}

export type FaultOp = 'send' | 'sendOffsets' | 'commit' | 'abort' | 'init' | 'commitOffsets' | 'fetchStable'

interface Txn {
  readonly txnId: string
  readonly epoch: number
  status: 'open' | 'committed' | 'aborted'
  readonly offsets: TopicPartitionOffset[]
}

interface Entry {
  readonly offset: bigint
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly timestamp: number
  readonly txn: Txn | undefined
}

export class FakeBroker {
  readonly logs = new Map<string, Entry[]>()
  /** Topics created through the admin: name → partition count and configs. */
  readonly topics = new Map<string, { partitions: number; configs: Readonly<Record<string, string>> }>()
  /** Committed offsets of the (one) consumer group. */
  readonly groupOffsets = new Map<string, bigint>()
  readonly #epochs = new Map<string, number>()
  readonly #open = new Map<string, Txn>()
  readonly #faults: Array<{ op: FaultOp; error: () => Error; times: number; match?: (txnId: string | undefined) => boolean }> = []
  /** Every successful or failed call, in order: `op` or `op!` (failed), with the transactional id. */
  readonly ops: string[] = []
  /** The group's current generation and its members. */
  generationId = 1
  readonly members = new Set<string>(['member-1'])

  /** A rebalance: a new generation with the given members. */
  rebalance(members: ReadonlyArray<string> = [...this.members]): number {
    this.generationId++
    this.members.clear()
    for (const m of members) this.members.add(m)
    this.ops.push(`rebalance ${this.generationId}`)
    return this.generationId
  }

  /** The group coordinator's check of a TxnOffsetCommit v3 (KIP-447). */
  checkGroup(g: ConsumerGroupMetadata): void {
    if (!this.members.has(g.memberId)) {
      this.ops.push(`refused ${g.memberId}@${g.generationId}`)
      throw protocolError('UNKNOWN_MEMBER_ID')
    }
    if (g.generationId !== this.generationId) {
      this.ops.push(`refused ${g.memberId}@${g.generationId}`)
      throw protocolError('ILLEGAL_GENERATION')
    }
  }

  /** Whether an open transaction holds offsets of the partition (OffsetFetch require_stable). */
  pendingOffsets(topic: string, partition: number): boolean {
    if (this.#unmarked.some((o) => o.topic === topic && o.partition === partition)) return true
    for (const t of this.#open.values())
      if (t.status === 'open' && t.offsets.some((o) => o.topic === topic && o.partition === partition)) return true
    return false
  }

  /** The next `times` calls of `op` (optionally only for matching transactional ids) throw `error()`. */
  fail(op: FaultOp, error: () => Error, options: { times?: number; txnId?: string } = {}): void {
    this.#faults.push({
      op,
      error,
      times: options.times ?? 1,
      match: options.txnId === undefined ? undefined : (id) => id === options.txnId,
    })
  }

  check(op: FaultOp, txnId?: string): void {
    const f = this.#faults.find((x) => x.op === op && x.times > 0 && (!x.match || x.match(txnId)))
    if (f) {
      f.times--
      this.ops.push(`${op}!${txnId ? ` ${txnId}` : ''}`)
      throw f.error()
    }
    this.ops.push(`${op}${txnId ? ` ${txnId}` : ''}`)
  }

  log(topic: string, partition: number): Entry[] {
    const k = tpKey(topic, partition)
    let l = this.logs.get(k)
    if (!l) this.logs.set(k, (l = []))
    return l
  }

  append(topic: string, partition: number, key: Buffer | null, value: Buffer | null, timestamp: number, txn?: Txn): bigint {
    const l = this.log(topic, partition)
    const offset = BigInt(l.length)
    l.push({ offset, key, value, timestamp, txn })
    return offset
  }

  /** Non-transactional input records. */
  produce(topic: string, partition: number, records: Array<[string, string]>, timestamp = 1_000): void {
    for (const [k, v] of records) this.append(topic, partition, Buffer.from(k), Buffer.from(v), timestamp)
  }

  #visible(e: Entry): boolean {
    return e.txn === undefined || e.txn.status === 'committed'
  }

  /** What a read_committed consumer reads, as `key=value` strings. */
  committed(topic: string, partition: number): string[] {
    return this.log(topic, partition)
      .filter((e) => this.#visible(e))
      .map((e) => `${e.key?.toString()}=${e.value?.toString()}`)
  }

  /** Read_committed records from `from` (inclusive). */
  records(topic: string, partition: number, from = 0n): RawRecord[] {
    return this.log(topic, partition)
      .filter((e) => e.offset >= from && this.#visible(e))
      .map((e) => ({ topic, partition, offset: e.offset.toString(), key: e.key, value: e.value, timestamp: e.timestamp, headers: {} }))
  }

  /** Last stable offset: the first offset of an open transaction, else the log end. */
  lastStable(topic: string, partition: number): bigint {
    const l = this.log(topic, partition)
    const open = l.find((e) => e.txn?.status === 'open')
    return open ? open.offset : BigInt(l.length)
  }

  /** Whether any transaction is still open. */
  openTransactions(): string[] {
    return [...this.#open.values()].filter((t) => t.status === 'open').map((t) => t.txnId)
  }

  initProducer(txnId: string): number {
    this.check('init', txnId)
    const epoch = (this.#epochs.get(txnId) ?? -1) + 1
    this.#epochs.set(txnId, epoch)
    const open = this.#open.get(txnId)
    if (open?.status === 'open') open.status = 'aborted' // the epoch bump aborts the previous owner's transaction
    this.#open.delete(txnId)
    return epoch
  }

  /** Fences the current owner of `txnId` (another instance initialised the same transactional id). */
  fence(txnId: string): void {
    this.initProducer(txnId)
  }

  checkEpoch(txnId: string, epoch: number): void {
    if (this.#epochs.get(txnId) !== epoch) {
      this.ops.push(`fenced ${txnId}`)
      throw protocolError('INVALID_PRODUCER_EPOCH')
    }
  }

  transaction(txnId: string, epoch: number): Txn {
    let t = this.#open.get(txnId)
    if (!t || t.status !== 'open') this.#open.set(txnId, (t = { txnId, epoch, status: 'open', offsets: [] }))
    return t
  }

  endTransaction(t: Txn, commit: boolean): void {
    t.status = commit ? 'committed' : 'aborted'
    if (commit && this.offsetMarkersDelayed) this.#unmarked.push(...t.offsets)
    else if (commit) for (const o of t.offsets) this.groupOffsets.set(tpKey(o.topic, o.partition), BigInt(o.offset))
    this.#open.delete(t.txnId)
  }

  /** Committed transactions' offsets stay pending until {@link writeOffsetMarkers}. */
  offsetMarkersDelayed = false
  readonly #unmarked: TopicPartitionOffset[] = []

  /** The group coordinator applies the commit markers of the pending offsets. */
  writeOffsetMarkers(): void {
    for (const o of this.#unmarked.splice(0)) this.groupOffsets.set(tpKey(o.topic, o.partition), BigInt(o.offset))
  }

  /** Committed group offset of a partition, as a number (-1 = none). */
  groupOffset(topic: string, partition: number): number {
    const o = this.groupOffsets.get(tpKey(topic, partition))
    return o === undefined ? -1 : Number(o)
  }
}

function write(broker: FakeBroker, batch: ReadonlyArray<TopicMessages>, txn: Txn | undefined): SendResult[] {
  // one result per topic-partition with the offset of its first record, as Kafka answers a Produce
  const out = new Map<string, SendResult>()
  for (const { topic, messages } of batch) {
    for (const m of messages) {
      const p = m.partition ?? 0
      const offset = broker.append(topic, p, m.key, m.value, Number(m.timestamp), txn)
      const k = tpKey(topic, p)
      if (!out.has(k)) out.set(k, { topicName: topic, partition: p, baseOffset: offset.toString() })
    }
  }
  return [...out.values()]
}

class FakeTaskProducer implements TaskProducer {
  closed = false
  constructor(protected readonly broker: FakeBroker) {}
  async send(batch: ReadonlyArray<TopicMessages>): Promise<SendResult[]> {
    await Promise.resolve()
    this.broker.check('send')
    return write(this.broker, batch, undefined)
  }
  async close(): Promise<void> {
    this.closed = true
  }
}

class FakeTransactionalProducer extends FakeTaskProducer implements TransactionalProducer {
  #epoch = -1
  #txn: Txn | undefined
  constructor(
    broker: FakeBroker,
    readonly txnId: string,
  ) {
    super(broker)
  }
  get inTransaction(): boolean {
    return this.#txn !== undefined
  }
  async init(): Promise<void> {
    await Promise.resolve()
    this.#epoch = this.broker.initProducer(this.txnId)
  }
  #begin(): Txn {
    this.broker.checkEpoch(this.txnId, this.#epoch)
    this.#txn ??= this.broker.transaction(this.txnId, this.#epoch)
    return this.#txn
  }
  override async send(batch: ReadonlyArray<TopicMessages>): Promise<SendResult[]> {
    await Promise.resolve()
    const txn = this.#begin()
    this.broker.check('send', this.txnId)
    return write(this.broker, batch, txn)
  }
  async sendOffsets(_groupId: string, offsets: ReadonlyArray<TopicPartitionOffset>): Promise<void> {
    await Promise.resolve()
    const txn = this.#begin()
    this.broker.check('sendOffsets', this.txnId)
    txn.offsets.push(...offsets)
  }
  async commit(): Promise<void> {
    await Promise.resolve()
    const txn = this.#txn
    if (!txn) return
    this.broker.checkEpoch(this.txnId, this.#epoch)
    this.broker.check('commit', this.txnId) // a failure leaves the transaction open (unknown outcome)
    this.broker.endTransaction(txn, true)
    this.#txn = undefined
  }
  async abort(): Promise<void> {
    await Promise.resolve()
    const txn = this.#txn
    if (!txn) return
    this.#txn = undefined
    this.broker.checkEpoch(this.txnId, this.#epoch)
    this.broker.check('abort', this.txnId)
    if (txn.status === 'open') this.broker.endTransaction(txn, false)
  }
}

class FakeThreadProducer extends FakeTransactionalProducer implements ThreadProducer {
  async sendOffsetsWithGroupMetadata(group: ConsumerGroupMetadata, offsets: ReadonlyArray<TopicPartitionOffset>): Promise<void> {
    await Promise.resolve()
    this.broker.checkGroup(group)
    await this.sendOffsets(group.groupId, offsets)
  }
}

export class FakeGroupConsumer implements GroupConsumer {
  readonly paused = new Set<string>()
  readonly seeks: Array<{ topic: string; partition: number; offset: string }> = []
  /** Fetch positions set by seeks since the last join (kafkajs' seek offsets of one incarnation). */
  readonly #sought = new Map<string, bigint>()
  down = false
  listener: GroupConsumerListener | undefined
  constructor(private readonly broker: FakeBroker) {}
  async connect(): Promise<void> {}
  async subscribe(): Promise<void> {}
  async run(listener: GroupConsumerListener): Promise<void> {
    this.listener = listener
  }
  async restart(): Promise<void> {}
  /**
   * kafkajs' consumer stopped by an error (`restarting`: kafkajs restarts it by itself): it left
   * the group, and its pauses and seeks are gone with it (the next incarnation starts with nothing
   * paused, from the committed offsets); until it joins again pause/resume/seek do nothing.
   */
  crash(error: Error, restarting: boolean): void {
    this.down = true
    this.paused.clear()
    this.#sought.clear()
    this.listener!.onCrash(error, restarting)
  }
  /** The restarted consumer joined the group again. */
  rejoin(join: GroupJoin): void {
    this.down = false
    this.listener!.onJoin(join)
  }
  /** Where this incarnation fetches a partition from: its last seek, else the committed offset, else 0. */
  position(topic: string, partition: number): bigint {
    const k = tpKey(topic, partition)
    return this.#sought.get(k) ?? this.broker.groupOffsets.get(k) ?? 0n
  }
  pause(ps: ReadonlyArray<TopicPartition>): void {
    if (this.down) return
    for (const p of ps) this.paused.add(tpKey(p.topic, p.partition))
  }
  resume(ps: ReadonlyArray<TopicPartition>): void {
    if (this.down) return
    for (const p of ps) this.paused.delete(tpKey(p.topic, p.partition))
  }
  seek(p: TopicPartition, offset: string): void {
    if (this.down) return
    this.seeks.push({ topic: p.topic, partition: p.partition, offset })
    if (BigInt(offset) >= 0n) this.#sought.set(tpKey(p.topic, p.partition), BigInt(offset))
  }
  isPaused(p: TopicPartition): boolean {
    return this.paused.has(tpKey(p.topic, p.partition))
  }
  isDown(): boolean {
    return this.down
  }
  async committedOffsetsStable(partitions: ReadonlyArray<TopicPartition>): Promise<Map<string, bigint>> {
    await Promise.resolve()
    this.broker.check('fetchStable')
    const out = new Map<string, bigint>()
    for (const p of partitions) {
      if (this.broker.pendingOffsets(p.topic, p.partition)) throw protocolError('UNSTABLE_OFFSET_COMMIT')
      const o = this.broker.groupOffsets.get(tpKey(p.topic, p.partition))
      if (o !== undefined) out.set(tpKey(p.topic, p.partition), o)
    }
    return out
  }
  async commitOffsets(offsets: ReadonlyArray<TopicPartitionOffset>): Promise<void> {
    await Promise.resolve()
    this.broker.check('commitOffsets')
    for (const o of offsets) this.broker.groupOffsets.set(tpKey(o.topic, o.partition), BigInt(o.offset))
  }
  /** What `describeGroup` answers. */
  description: GroupDescription = { state: 'Empty', members: [] }
  async describeGroup(): Promise<GroupDescription> {
    return this.description
  }
  /** How often a rebalance was asked for. */
  rebalancesEnforced = 0
  enforceRebalance(): void {
    this.rebalancesEnforced++
  }
  async disconnect(): Promise<void> {}
}

/**
 * Reads changelogs from the fake broker, `batchSize` records per batch; `beforeBatch` runs before
 * each batch is handed over (a test can abort there).
 */
export class FakeChangelogReader implements ChangelogReader {
  batchSize = 10
  beforeBatch: ((n: number) => void | Promise<void>) | undefined
  constructor(private readonly broker: FakeBroker) {}
  async endOffsets(partitions: ReadonlyArray<{ topic: string; partition: number }>): Promise<Map<string, string>> {
    return new Map(partitions.map((p) => [tpKey(p.topic, p.partition), this.broker.lastStable(p.topic, p.partition).toString()]))
  }
  async read(
    topic: string,
    partition: number,
    fromOffset: string | undefined,
    untilOffset: string | undefined,
    onBatch: (records: ReadonlyArray<RawRecord>, nextOffset: string) => Promise<void>,
    signal?: AbortSignal,
  ): Promise<void> {
    let from = BigInt(fromOffset ?? '0')
    const until = BigInt(untilOffset ?? this.broker.lastStable(topic, partition).toString())
    let n = 0
    while (from < until && !signal?.aborted) {
      await this.beforeBatch?.(n++)
      if (signal?.aborted) return
      const next = from + BigInt(this.batchSize) < until ? from + BigInt(this.batchSize) : until
      const records = this.broker.records(topic, partition, from).filter((r) => BigInt(r.offset) < next)
      await onBatch(records, next.toString())
      from = next
    }
  }
  async close(): Promise<void> {}
}

class FakeAdmin implements StreamsAdmin {
  constructor(private readonly broker: FakeBroker) {}
  /** Partition count of a created topic, or one more than the highest partition with a log. */
  #partitions(topic: string): number | undefined {
    const created = this.broker.topics.get(topic)
    if (created) return created.partitions
    let n: number | undefined
    for (const k of this.broker.logs.keys()) {
      const i = k.lastIndexOf(':')
      if (k.slice(0, i) === topic) n = Math.max(n ?? 0, Number(k.slice(i + 1)) + 1)
    }
    return n
  }
  async listTopics(): Promise<string[]> {
    const names = new Set(this.broker.topics.keys())
    for (const k of this.broker.logs.keys()) names.add(k.slice(0, k.lastIndexOf(':')))
    return [...names].sort()
  }
  async describeTopics(topics: ReadonlyArray<string>): Promise<TopicDescription[]> {
    return topics.map((name) => {
      const n = this.#partitions(name)
      if (n === undefined) throw protocolError('UNKNOWN_TOPIC_OR_PARTITION')
      return { name, partitions: Array.from({ length: n }, (_, partition) => ({ partition, leader: 0 })) }
    })
  }
  async createTopics(topics: ReadonlyArray<NewTopic>): Promise<void> {
    const existing = topics.find((t) => this.#partitions(t.topic) !== undefined)
    for (const t of topics)
      if (this.#partitions(t.topic) === undefined) this.broker.topics.set(t.topic, { partitions: t.numPartitions, configs: t.configs })
    if (existing) throw protocolError('TOPIC_ALREADY_EXISTS')
  }
  async committedOffsets(_groupId: string, partitions: ReadonlyArray<TopicPartition>): Promise<Map<string, bigint>> {
    const out = new Map<string, bigint>()
    for (const p of partitions) {
      const o = this.broker.groupOffsets.get(tpKey(p.topic, p.partition))
      if (o !== undefined) out.set(tpKey(p.topic, p.partition), o)
    }
    return out
  }
  async topicOffsets(topic: string): Promise<Map<string, PartitionEnds>> {
    const out = new Map<string, PartitionEnds>()
    for (const k of this.broker.logs.keys()) {
      const i = k.lastIndexOf(':')
      if (k.slice(0, i) !== topic) continue
      const p = Number(k.slice(i + 1))
      out.set(k, { high: this.broker.lastStable(topic, p).toString(), low: '0' })
    }
    return out
  }
}

/** The client adapter over a {@link FakeBroker}. */
export class FakeClient implements StreamsClient {
  readonly admin: StreamsAdmin
  readonly consumer: FakeGroupConsumer
  readonly reader: FakeChangelogReader
  readonly producers: FakeTaskProducer[] = []
  constructor(readonly broker: FakeBroker) {
    this.admin = new FakeAdmin(broker)
    this.consumer = new FakeGroupConsumer(broker)
    this.reader = new FakeChangelogReader(broker)
  }
  /** The options of the last group consumer asked for (its assignor hooks). */
  groupOptions: GroupConsumerOptions | undefined
  groupConsumer(options: GroupConsumerOptions): GroupConsumer {
    this.groupOptions = options
    return this.consumer
  }
  async taskProducer(): Promise<TaskProducer> {
    const p = new FakeTaskProducer(this.broker)
    this.producers.push(p)
    return p
  }
  async transactionalProducer(transactionalId: string): Promise<TransactionalProducer> {
    const p = new FakeTransactionalProducer(this.broker, transactionalId)
    this.producers.push(p)
    return p
  }
  async threadProducer(transactionalId: string): Promise<ThreadProducer> {
    const p = new FakeThreadProducer(this.broker, transactionalId)
    this.producers.push(p)
    return p
  }
  async connect(): Promise<void> {}
  async close(): Promise<void> {}
  changelogReader(): ChangelogReader {
    return this.reader
  }
}
