/**
 * The kafkajs group consumer behind {@link GroupConsumer}: kstreams' task assignor, read_committed,
 * no auto-commit, one fetched partition batch at a time handed to the thread (offsets resolved only
 * when the thread took the batch), batches of markers only reported as skipped ranges, the
 * group generation read from JoinGroup (KIP-447 offsets carry it), committed offsets read with
 * `require_stable`, and a requested rejoin (`enforceRebalance`). While the consumer is down
 * (crashed, until it joins again) pause / resume / seek are ignored and nothing counts as paused.
 */
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs'
import type { RawRecord } from '../../../topology/engine/types.js'
import { createTaskAssignor, decodeMemberAssignment, decodeMemberMetadata } from './kafkajs-assignor.js'
import { clearRejoin, requestRejoin } from './kafkajs-rejoin.js'
import { fetchStableOffsets, kafkaWithGroupMetadata } from './txn-offset-commit.js'
import type {
  GroupConsumer,
  GroupConsumerListener,
  GroupConsumerOptions,
  GroupDescription,
  TopicPartition,
  TopicPartitionOffset,
} from './types.js'

export class KafkajsGroupConsumer implements GroupConsumer {
  readonly #consumer: Consumer
  #listener: GroupConsumerListener | undefined
  /** Crashed, until it joins again (kafkajs' own restart or ours). */
  #down = false
  readonly #groupId: string
  /** Member id of the last join. */
  #memberId: string | undefined
  /** The generation of the last JoinGroup (KIP-447 offsets carry it). */
  #generationId = -1
  #cluster: Parameters<typeof fetchStableOffsets>[0] | undefined

  constructor(kafka: Kafka, options: GroupConsumerOptions) {
    this.#groupId = options.groupId
    const view = kafkaWithGroupMetadata(kafka, {
      onJoinGroup: (generationId) => (this.#generationId = generationId),
      onCluster: (c) => (this.#cluster = c),
    })
    const consumer = view.consumer({
      groupId: options.groupId,
      partitionAssigners: [createTaskAssignor(options.assignor)],
      sessionTimeout: options.sessionTimeoutMs,
      heartbeatInterval: options.heartbeatIntervalMs,
      rebalanceTimeout: options.rebalanceTimeoutMs,
      readUncommitted: false,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 250,
    })
    this.#consumer = consumer
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      const p = e.payload
      this.#down = false
      this.#memberId = p.memberId
      clearRejoin(this.#groupId, p.memberId)
      this.#listener?.onJoin({
        memberId: p.memberId,
        generationId: this.#generationId,
        isLeader: p.isLeader,
        assignment: (p.memberAssignment ?? {}) as Record<string, number[]>,
      })
    })
    consumer.on(consumer.events.HEARTBEAT, () => this.#listener?.onHeartbeat())
    consumer.on(consumer.events.REBALANCING, () => this.#listener?.onRebalancing())
    // kafkajs skips a fetched batch that holds only transaction markers / aborted records without
    // calling eachBatch; its offsets still move the fetch position (lag, consumed offsets)
    consumer.on(consumer.events.START_BATCH_PROCESS, (e) => {
      const b = e.payload
      if (b.batchSize !== 0 || b.firstOffset == null || b.lastOffset == null) return
      this.#listener?.onSkipped({
        topic: b.topic,
        partition: b.partition,
        firstOffset: String(b.firstOffset),
        lastOffset: String(b.lastOffset),
        highWatermark: b.highWatermark == null ? undefined : String(b.highWatermark),
      })
    })
    consumer.on(consumer.events.CRASH, (e) => {
      const { error, restart } = e.payload as unknown as { error: unknown; restart: boolean }
      this.#down = true
      this.#listener?.onCrash(error instanceof Error ? error : new Error(String(error)), restart)
    })
  }

  connect(): Promise<void> {
    return this.#consumer.connect()
  }

  subscribe(topics: ReadonlyArray<string>, fromBeginning: boolean): Promise<void> {
    return this.#consumer.subscribe({ topics: [...topics], fromBeginning })
  }

  run(listener: GroupConsumerListener): Promise<void> {
    this.#listener = listener
    return this.#consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.#eachBatch(payload),
    })
  }

  async restart(): Promise<void> {
    if (!this.#listener) throw new Error('restart() before run()')
    await this.#consumer.connect()
    await this.run(this.#listener)
  }

  async #eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (!isRunning() || isStale() || batch.messages.length === 0 || !this.#listener) return
    const { topic, partition } = batch
    const records: RawRecord[] = new Array(batch.messages.length)
    for (let i = 0; i < batch.messages.length; i++) {
      const m = batch.messages[i]!
      records[i] = {
        topic,
        partition,
        offset: m.offset,
        key: m.key ?? null,
        value: m.value ?? null,
        timestamp: Number(m.timestamp),
        headers: (m.headers ?? {}) as RawRecord['headers'],
      }
    }
    const taken = await this.#listener.onBatch(
      { topic, partition, records, lastOffset: batch.lastOffset(), highWatermark: batch.highWatermark },
      heartbeat,
    )
    if (taken) resolveOffset(batch.messages[batch.messages.length - 1]!.offset)
  }

  pause(partitions: ReadonlyArray<TopicPartition>): void {
    try {
      this.#consumer.pause(partitions.map((p) => ({ topic: p.topic, partitions: [p.partition] })))
    } catch {
      // not running or not assigned
    }
  }

  resume(partitions: ReadonlyArray<TopicPartition>): void {
    try {
      this.#consumer.resume(partitions.map((p) => ({ topic: p.topic, partitions: [p.partition] })))
    } catch {
      // not running or not assigned
    }
  }

  seek(p: TopicPartition, offset: string): void {
    try {
      this.#consumer.seek({ topic: p.topic, partition: p.partition, offset })
    } catch {
      // down (restarting): it starts from the committed offsets anyway
    }
  }

  isPaused(p: TopicPartition): boolean {
    // a consumer that is down has nothing paused that outlives its restart
    if (this.#down) return false
    try {
      return this.#consumer.paused().some((t) => t.topic === p.topic && t.partitions.includes(p.partition))
    } catch {
      return false
    }
  }

  isDown(): boolean {
    return this.#down
  }

  committedOffsetsStable(partitions: ReadonlyArray<TopicPartition>): Promise<Map<string, bigint>> {
    if (!this.#cluster) throw new Error('committedOffsetsStable() before the consumer was created')
    return fetchStableOffsets(this.#cluster, this.#groupId, partitions)
  }

  commitOffsets(offsets: ReadonlyArray<TopicPartitionOffset>): Promise<void> {
    return this.#consumer.commitOffsets(
      offsets.map((o) => ({
        topic: o.topic,
        partition: o.partition,
        offset: o.offset,
        ...(o.metadata !== undefined ? { metadata: o.metadata } : {}),
      })),
    )
  }

  async describeGroup(): Promise<GroupDescription> {
    const d = await this.#consumer.describeGroup()
    return {
      state: d.state,
      members: d.members.map((m) => {
        const a = decodeMemberAssignment(m.memberAssignment)
        return {
          memberId: m.memberId,
          assignment: a?.assignment,
          assignmentUserData: a?.userData,
          subscriptionUserData: decodeMemberMetadata(m.memberMetadata)?.userData,
        }
      }),
    }
  }

  enforceRebalance(): void {
    if (this.#memberId !== undefined && !this.#down) requestRejoin(this.#groupId, this.#memberId)
  }

  disconnect(): Promise<void> {
    if (this.#memberId !== undefined) clearRejoin(this.#groupId, this.#memberId)
    return this.#consumer.disconnect()
  }
}
