/**
 * The kafkajs implementation of {@link StreamsClient}. lib/app/client/ is the only part of kstreams
 * that imports kafkajs: this module (the client, producers, admin), kafkajs-consumer.ts (the group
 * consumer), kafkajs-assignor.ts (the task assignor as a kafkajs `PartitionAssigner`),
 * kafkajs-changelog-reader.ts (the fetch-based partition reader), kafkajs-log.ts (kafkajs' log
 * lines), partition-send.ts, kafkajs-produce.ts (the fast produce path: our Produce request
 * encoding and linear per-partition grouping), kafkajs-rejoin.ts (`enforceRebalance`) and
 * kafkajs-internals.ts (every use of kafkajs' private modules; the read_committed fix and the
 * rejoin hook, applied to kstreams' own `Kafka` instance only).
 */
import kafkajs from 'kafkajs'
import type { Admin, Kafka, KafkaConfig, Producer, Transaction } from 'kafkajs'
import type { ChangelogReader } from '../../state/types.js'
import type { LogLevel, Logger } from '../logger.js'
import { createChangelogReader } from './kafkajs-changelog-reader.js'
import { checkKafkajsInternals, fixKafkajs } from './kafkajs-internals.js'
import { kafkajsLogCreator, kafkajsLogLevel } from './kafkajs-log.js'
import { fastProduceEnabled, withFastProduce } from './kafkajs-produce.js'
import { PartitionSender } from './partition-send.js'
import { KafkajsGroupConsumer } from './kafkajs-consumer.js'
import { kafkaWithGroupMetadata, type ConsumerGroupMetadata } from './txn-offset-commit.js'
import {
  tpKey,
  type GroupConsumer,
  type GroupConsumerOptions,
  type NewTopic,
  type PartitionEnds,
  type SendResult,
  type StreamsAdmin,
  type StreamsClient,
  type TaskProducer,
  type ThreadProducer,
  type TopicDescription,
  type TopicMessages,
  type TopicPartition,
  type TopicPartitionOffset,
  type TransactionalProducer,
} from './types.js'

/** The kafkajs client configuration `StreamsConfig.kafka` takes (brokers, TLS, SASL, retries, socket factory). */
export type { KafkaConfig } from 'kafkajs'

/** `transaction.timeout.ms` of a thread producer (Kafka Streams' default under exactly-once). */
const THREAD_TRANSACTION_TIMEOUT_MS = 10_000

export interface KafkajsClientOptions {
  /** The kafkajs configuration; its `logLevel` / `logCreator` default to the runtime's logger. */
  readonly config: KafkaConfig
  readonly logger: Logger
  readonly logLevel: LogLevel
  /** Partition count of a topic (sink and internal topics are known at start); undefined = unknown. */
  readonly partitionsFor: (topic: string) => number | undefined
}

export class KafkajsClient implements StreamsClient {
  readonly admin: StreamsAdmin
  /** kstreams' own kafkajs instance: every client it creates has kstreams' fixes (kafkajs-internals.ts). */
  readonly #kafka: Kafka
  readonly #admin: Admin
  /** The fast produce path (./kafkajs-produce.ts); off only with `KSTREAMS_PRODUCE_PATH=kafkajs`. */
  readonly #fastProduce: boolean

  /** @throws Error when kafkajs' internals are not those of the pinned version (see kafkajs-internals.ts). */
  constructor(private readonly options: KafkajsClientOptions) {
    const kafka = new kafkajs.Kafka({
      logLevel: kafkajsLogLevel(options.logLevel),
      logCreator: kafkajsLogCreator(options.logger, options.logLevel),
      ...options.config,
    })
    checkKafkajsInternals(kafka)
    this.#fastProduce = fastProduceEnabled()
    this.#kafka = fixKafkajs(kafka)
    if (this.#fastProduce) withFastProduce(this.#kafka)
    this.#admin = this.#kafka.admin()
    this.admin = new KafkajsAdmin(this.#admin)
  }

  connect(): Promise<void> {
    return this.#admin.connect()
  }

  async close(): Promise<void> {
    await this.#admin.disconnect().catch(() => undefined)
  }

  groupConsumer(options: GroupConsumerOptions): GroupConsumer {
    return new KafkajsGroupConsumer(this.#kafka, options)
  }

  async taskProducer(): Promise<TaskProducer> {
    const producer = this.#kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
    await producer.connect()
    return new KafkajsTaskProducer(
      producer,
      new PartitionSender({ partitionsFor: this.options.partitionsFor, transactional: false, linearGrouping: this.#fastProduce }),
    )
  }

  async transactionalProducer(transactionalId: string): Promise<TransactionalProducer> {
    const producer = this.#kafka.producer({
      transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
    })
    await producer.connect()
    return new KafkajsTransactionalProducer(
      producer,
      new PartitionSender({ partitionsFor: this.options.partitionsFor, transactional: true, linearGrouping: this.#fastProduce }),
    )
  }

  async threadProducer(transactionalId: string): Promise<ThreadProducer> {
    let group: ConsumerGroupMetadata | undefined
    const kafka = kafkaWithGroupMetadata(this.#kafka, { groupMetadata: () => group })
    const producer = kafka.producer({
      transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // Kafka Streams' `transaction.timeout.ms` under exactly-once: a crashed thread's open
      // transaction holds the partitions' last stable offset back for at most this long
      transactionTimeout: THREAD_TRANSACTION_TIMEOUT_MS,
    })
    await producer.connect()
    return new KafkajsThreadProducer(
      producer,
      new PartitionSender({ partitionsFor: this.options.partitionsFor, transactional: true, linearGrouping: this.#fastProduce }),
      (g) => (group = g),
    )
  }

  changelogReader(): ChangelogReader {
    return createChangelogReader({ kafka: this.#kafka, logger: this.options.logger })
  }
}

class KafkajsAdmin implements StreamsAdmin {
  constructor(private readonly admin: Admin) {}

  listTopics(): Promise<string[]> {
    return this.admin.listTopics()
  }

  async describeTopics(topics: ReadonlyArray<string>): Promise<TopicDescription[]> {
    const md = await this.admin.fetchTopicMetadata({ topics: [...topics] })
    return md.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partition: p.partitionId, leader: p.leader })) }))
  }

  async createTopics(topics: ReadonlyArray<NewTopic>): Promise<void> {
    await this.admin.createTopics({
      topics: topics.map((t) => ({
        topic: t.topic,
        numPartitions: t.numPartitions,
        replicationFactor: t.replicationFactor,
        configEntries: Object.entries(t.configs).map(([name, value]) => ({ name, value })),
      })),
      waitForLeaders: true,
    })
  }

  async committedOffsets(groupId: string, partitions: ReadonlyArray<TopicPartition>): Promise<Map<string, bigint>> {
    const out = new Map<string, bigint>()
    for (const p of await this.#fetchOffsets(groupId, partitions))
      if (p.offset !== '-1' && p.offset !== '') out.set(p.key, BigInt(p.offset))
    return out
  }

  async committedMetadata(groupId: string, partitions: ReadonlyArray<TopicPartition>): Promise<Map<string, string>> {
    const out = new Map<string, string>()
    for (const p of await this.#fetchOffsets(groupId, partitions)) if (p.offset !== '-1' && p.metadata) out.set(p.key, p.metadata)
    return out
  }

  async #fetchOffsets(groupId: string, partitions: ReadonlyArray<TopicPartition>) {
    const out: Array<{ key: string; offset: string; metadata: string | null }> = []
    const topics = [...new Set(partitions.map((p) => p.topic))]
    if (topics.length === 0) return out
    const wanted = new Set(partitions.map((p) => tpKey(p.topic, p.partition)))
    for (const t of await this.admin.fetchOffsets({ groupId, topics })) {
      for (const p of t.partitions) {
        const key = tpKey(t.topic, p.partition)
        if (wanted.has(key)) out.push({ key, offset: p.offset, metadata: p.metadata })
      }
    }
    return out
  }

  async topicOffsets(topic: string): Promise<Map<string, PartitionEnds>> {
    const out = new Map<string, PartitionEnds>()
    for (const o of await this.admin.fetchTopicOffsets(topic)) out.set(tpKey(topic, o.partition), { high: o.high, low: o.low })
    return out
  }
}

class KafkajsTaskProducer implements TaskProducer {
  constructor(
    protected readonly producer: Producer,
    protected readonly sender: PartitionSender,
  ) {}

  send(batch: ReadonlyArray<TopicMessages>): Promise<SendResult[]> {
    return this.sender.send((tm) => this.producer.sendBatch({ topicMessages: tm, acks: -1 }), batch as never)
  }

  async close(): Promise<void> {
    await this.producer.disconnect().catch(() => undefined)
  }
}

class KafkajsTransactionalProducer extends KafkajsTaskProducer implements TransactionalProducer {
  #txn: Promise<Transaction> | undefined

  get inTransaction(): boolean {
    return this.#txn !== undefined
  }

  async init(): Promise<void> {
    // kafkajs has no separate InitProducerId: the first transaction() sends it (fencing the
    // previous owner); an abort with nothing registered sends no request
    const txn = await this.producer.transaction()
    await txn.abort()
  }

  #transaction(): Promise<Transaction> {
    this.#txn ??= this.producer.transaction()
    return this.#txn
  }

  override async send(batch: ReadonlyArray<TopicMessages>): Promise<SendResult[]> {
    const txn = await this.#transaction()
    return this.sender.send((tm) => txn.sendBatch({ topicMessages: tm, acks: -1 }), batch as never)
  }

  async sendOffsets(groupId: string, offsets: ReadonlyArray<TopicPartitionOffset>): Promise<void> {
    const byTopic = new Map<string, Array<{ partition: number; offset: string; metadata?: string }>>()
    for (const o of offsets) {
      let l = byTopic.get(o.topic)
      if (!l) byTopic.set(o.topic, (l = []))
      l.push({ partition: o.partition, offset: o.offset, ...(o.metadata !== undefined ? { metadata: o.metadata } : {}) })
    }
    const txn = await this.#transaction()
    await txn.sendOffsets({ consumerGroupId: groupId, topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })) })
  }

  async commit(): Promise<void> {
    const txn = this.#txn
    if (!txn) return
    await (await txn).commit()
    // a failed commit leaves the transaction open for abort()
    this.#ended()
  }

  async abort(): Promise<void> {
    const txn = this.#txn
    if (!txn) return
    try {
      await (await txn).abort()
    } finally {
      this.#ended()
    }
  }

  #ended(): void {
    this.#txn = undefined
    this.sender.endTransaction()
  }
}

/** A thread's transactional producer: kafkajs' transaction, its TxnOffsetCommit sent as v3 with the group metadata. */
class KafkajsThreadProducer extends KafkajsTransactionalProducer implements ThreadProducer {
  constructor(
    producer: Producer,
    sender: PartitionSender,
    private readonly setGroup: (g: ConsumerGroupMetadata | undefined) => void,
  ) {
    super(producer, sender)
  }

  async sendOffsetsWithGroupMetadata(group: ConsumerGroupMetadata, offsets: ReadonlyArray<TopicPartitionOffset>): Promise<void> {
    this.setGroup(group)
    try {
      await this.sendOffsets(group.groupId, offsets)
    } finally {
      this.setGroup(undefined)
    }
  }
}
