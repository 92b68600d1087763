/**
 * The Kafka client as the runtime sees it: ONE adapter interface that every runtime unit uses
 * (Kafka Streams' `KafkaClientSupplier`, narrowed to what we call). The kafkajs implementation is
 * lib/app/client/kafkajs.ts; unit tests use an in-memory broker model (test/unit/helpers).
 *
 * Errors are passed through as the client throws them (kafkajs error objects): the runtime
 * classifies them with lib/app/error-policy.ts, by type and code.
 */
import type { RawRecord } from '../../../topology/engine/types.js'
import type { ChangelogReader } from '../../state/types.js'
import type { AssignorHooks } from '../assignor.js'
import type { ConsumerGroupMetadata } from './txn-offset-commit.js'

export type { ConsumerGroupMetadata } from './txn-offset-commit.js'

export interface TopicPartition {
  readonly topic: string
  readonly partition: number
}

export interface TopicPartitionOffset extends TopicPartition {
  /** The next offset to consume (last processed + 1), as a decimal string. */
  readonly offset: string
  /** Offset metadata committed with it (the task's stream-time, see runtime/offset-metadata.ts). */
  readonly metadata?: string
}

/** Record headers as the producer takes them. */
export type ProduceHeaders = { [key: string]: Buffer | string | Array<Buffer | string> | undefined }

/** One record to produce (the shape kafkajs' `Message` has). */
export interface ProduceMessage {
  readonly key: Buffer | null
  readonly value: Buffer | null
  /** Milliseconds, as a decimal string. */
  readonly timestamp: string
  readonly headers?: ProduceHeaders
  partition?: number
}

/** Records for one topic, in order. */
export interface TopicMessages {
  readonly topic: string
  readonly messages: ProduceMessage[]
}

/** What the broker answered for one topic-partition of a produce request. */
export interface SendResult {
  readonly topicName: string
  readonly partition: number
  /** Offset of the first record written by this request to that partition. */
  readonly baseOffset?: string
}

/** An idempotent producer of one task (acks = all). */
export interface TaskProducer {
  /** Produces the records (one request per topic-partition); resolves when all are acknowledged. */
  send(batch: ReadonlyArray<TopicMessages>): Promise<SendResult[]>
  close(): Promise<void>
}

/**
 * A transactional producer of one task (EOS-alpha: `transactionalId = <applicationId>-<taskId>`).
 * The first `send` or `sendOffsets` after `init`, `commit` or `abort` begins a transaction.
 */
export interface TransactionalProducer extends TaskProducer {
  /** InitProducerId: fences the previous owner of the transactional id and waits for its open transaction to end. */
  init(): Promise<void>
  /** Whether a transaction is open (something was sent or added since the last commit / abort). */
  readonly inTransaction: boolean
  /** Adds consumed offsets of `groupId` to the open transaction (TxnOffsetCommit). */
  sendOffsets(groupId: string, offsets: ReadonlyArray<TopicPartitionOffset>): Promise<void>
  commit(): Promise<void>
  /** Aborts the open transaction; nothing open: no request. */
  abort(): Promise<void>
}

/**
 * The transactional producer of one stream thread under exactly-once v2 (KIP-447:
 * `transactionalId = <applicationId>-<processId>-<threadIdx>`): one transaction covers every
 * active task of the thread.
 */
export interface ThreadProducer extends TransactionalProducer {
  /**
   * Adds consumed offsets to the open transaction with the consumer group's metadata
   * (TxnOffsetCommit v3+): the group coordinator refuses them with ILLEGAL_GENERATION,
   * UNKNOWN_MEMBER_ID or FENCED_INSTANCE_ID when the group has moved on without this member.
   */
  sendOffsetsWithGroupMetadata(group: ConsumerGroupMetadata, offsets: ReadonlyArray<TopicPartitionOffset>): Promise<void>
}

/** A fetched batch of one partition, converted. */
export interface FetchedBatch extends TopicPartition {
  readonly records: RawRecord[]
  /** Offset of the batch's last entry (transaction markers included). */
  readonly lastOffset: string
  readonly highWatermark: string
}

/** A fetched batch that held no deliverable record (only markers / aborted records). */
export interface SkippedBatch extends TopicPartition {
  readonly firstOffset: string
  readonly lastOffset: string
  readonly highWatermark: string | undefined
}

export interface GroupJoin {
  readonly memberId: string
  /** The generation this join created (JoinGroup response); undefined when the client does not tell. */
  readonly generationId?: number
  readonly isLeader: boolean
  /** topic → partitions assigned to this member. */
  readonly assignment: Record<string, number[]>
}

/** One member of a group as DescribeGroups reports it, its consumer-protocol fields decoded. */
export interface GroupMemberDescription {
  readonly memberId: string
  /** topic → partitions of the member's assignment; undefined when it has none or it is not ours. */
  readonly assignment: Record<string, number[]> | undefined
  /** The userData of the member's assignment (the assignor's `AssignmentInfo`). */
  readonly assignmentUserData: Buffer | undefined
  /** The userData of the member's subscription (the assignor's `SubscriptionInfo`). */
  readonly subscriptionUserData: Buffer | undefined
}

export interface GroupDescription {
  readonly state: string
  readonly members: ReadonlyArray<GroupMemberDescription>
}

/** Callbacks of a running group consumer. */
export interface GroupConsumerListener {
  /**
   * A fetched batch. Resolve `true` when it was taken (the fetch position moves past it), `false`
   * to leave it unresolved (fetched again after a seek / resume).
   */
  onBatch(batch: FetchedBatch, heartbeat: () => Promise<void>): Promise<boolean>
  onSkipped(batch: SkippedBatch): void
  onJoin(join: GroupJoin): void
  onRebalancing(): void
  /** The group confirmed our membership (a heartbeat succeeded). */
  onHeartbeat(): void
  /** The consumer stopped; `restarting`: the client restarts it by itself. */
  onCrash(error: Error, restarting: boolean): void
}

export interface GroupConsumerOptions {
  readonly groupId: string
  readonly assignor: AssignorHooks
  readonly sessionTimeoutMs: number
  readonly heartbeatIntervalMs: number
  readonly rebalanceTimeoutMs: number
}

/** The group member (one per thread): read_committed, no auto-commit, our task assignor. */
export interface GroupConsumer {
  connect(): Promise<void>
  subscribe(topics: ReadonlyArray<string>, fromBeginning: boolean): Promise<void>
  /** Starts fetching; `listener` receives every callback from now on. Resolves after the first join. */
  run(listener: GroupConsumerListener): Promise<void>
  /** Connects and runs again (after a crash the client does not recover from by itself). */
  restart(): Promise<void>
  /** Pause / resume / seek: ignored for partitions not assigned or while the consumer is down. */
  pause(partitions: ReadonlyArray<TopicPartition>): void
  resume(partitions: ReadonlyArray<TopicPartition>): void
  seek(partition: TopicPartition, offset: string): void
  /** Whether fetching from the partition is paused; false while the consumer is down (a restart resumes everything). */
  isPaused(partition: TopicPartition): boolean
  /** Whether the consumer crashed and is not running until it joins the group again. */
  isDown(): boolean
  /**
   * Committed offsets of the group read with `require_stable` (OffsetFetch v7, KIP-447): refused
   * with UNSTABLE_OFFSET_COMMIT (retriable) while a transaction holding offsets of these partitions
   * is pending. Keyed {@link tpKey}; partitions without one are absent.
   */
  committedOffsetsStable(partitions: ReadonlyArray<TopicPartition>): Promise<Map<string, bigint>>
  /** Commits offsets of the group (at-least-once). */
  commitOffsets(offsets: ReadonlyArray<TopicPartitionOffset>): Promise<void>
  describeGroup(): Promise<GroupDescription>
  /**
   * Asks the group for a rebalance (Java consumer: `enforceRebalance`): this member rejoins at its
   * next heartbeat. Kafka Streams uses it for probing rebalances (KIP-441). A join that happens
   * meanwhile (for any reason) satisfies the request. Ignored while the consumer is not a member.
   */
  enforceRebalance(): void
  disconnect(): Promise<void>
}

/** End offsets as ListOffsets answers them (read_committed: `high` is the last stable offset). */
export interface PartitionEnds {
  readonly high: string
  readonly low: string
}

/** A topic to create (Kafka Streams: `NewTopic`). */
export interface NewTopic {
  readonly topic: string
  readonly numPartitions: number
  readonly replicationFactor: number
  /** Topic configs, e.g. `{ 'cleanup.policy': 'compact' }`. */
  readonly configs: Readonly<Record<string, string>>
}

/** A topic's partitions as metadata shows them. */
export interface TopicDescription {
  readonly name: string
  /** One entry per partition; `leader` is the leader's node id, negative when it has none. */
  readonly partitions: ReadonlyArray<{ readonly partition: number; readonly leader: number }>
}

/** Admin calls of the runtime. */
export interface StreamsAdmin {
  /** Names of every topic of the cluster. */
  listTopics(): Promise<string[]>
  /**
   * Metadata of existing topics.
   * @throws the client's error when one of them does not exist (UNKNOWN_TOPIC_OR_PARTITION)
   */
  describeTopics(topics: ReadonlyArray<string>): Promise<TopicDescription[]>
  /**
   * Creates topics and waits for their leaders.
   * @throws the client's error, e.g. TOPIC_ALREADY_EXISTS when another instance created one first
   */
  createTopics(topics: ReadonlyArray<NewTopic>): Promise<void>
  /** Committed offsets of `groupId` for the given partitions, keyed {@link tpKey}; partitions without one are absent. */
  committedOffsets(groupId: string, partitions: ReadonlyArray<TopicPartition>): Promise<Map<string, bigint>>
  /** The metadata committed with those offsets, keyed {@link tpKey}; partitions without any are absent. Optional: without it, no stream-time is restored. */
  committedMetadata?(groupId: string, partitions: ReadonlyArray<TopicPartition>): Promise<Map<string, string>>
  /** Start and end offsets of every partition of `topic`, keyed {@link tpKey}. */
  topicOffsets(topic: string): Promise<Map<string, PartitionEnds>>
}

/** Everything the runtime needs from Kafka (one per KafkaStreams instance). */
export interface StreamsClient {
  /** Connects the admin client (before any admin call). */
  connect(): Promise<void>
  /** Disconnects the admin client; consumers, producers and readers are closed by their owners. */
  close(): Promise<void>
  groupConsumer(options: GroupConsumerOptions): GroupConsumer
  /** An idempotent producer for one task, connected. */
  taskProducer(): Promise<TaskProducer>
  /** A transactional producer for one task, connected (call `init` before use). */
  transactionalProducer(transactionalId: string): Promise<TransactionalProducer>
  /** The transactional producer of a stream thread (exactly-once v2), connected (call `init` before use). */
  threadProducer(transactionalId: string): Promise<ThreadProducer>
  readonly admin: StreamsAdmin
  /** A reader of changelog partitions outside the group (restore, standbys, global stores); the caller closes it. */
  changelogReader(): ChangelogReader
}

/** THE key of a topic-partition in every runtime map: `<topic>:<partition>`. */
export function tpKey(topic: string, partition: number): string {
  return `${topic}:${partition}`
}

/** Inverse of {@link tpKey}. */
export function splitTpKey(key: string): TopicPartition {
  const i = key.lastIndexOf(':')
  return { topic: key.slice(0, i), partition: Number(key.slice(i + 1)) }
}
