/**
 * Produces a collector batch as ONE kafkajs send per topic-partition.
 *
 * kafkajs 2.2.4's `sendMessages` turns one send into one Produce request per partition leader,
 * runs them concurrently, and retries with per-BROKER bookkeeping. On a cluster of several brokers
 * that loses and duplicates records:
 * - when one leader's request fails while another's is still in flight, the retry sends the
 *   in-flight broker's records again with the next sequence numbers: both copies are appended
 *   (and committed, inside one transaction);
 * - when a partition's leader moved to a broker that already answered in an earlier attempt, the
 *   retry leaves that partition out and the send resolves without it.
 * With a single partition per send there is one request per attempt: a failed attempt had no other
 * request in flight, its sequence numbers are rolled back and re-sent (the broker de-duplicates a
 * request that was written but not answered), and a retry always goes to the partition's current
 * leader. Records without an explicit partition are partitioned here, with kafkajs' default
 * (Java-compatible murmur2) partitioner, exactly as the producer itself would.
 *
 * Under a transaction each send also registers its partition with the coordinator
 * (AddPartitionsToTxn), and concurrent registrations of one transaction are refused with
 * CONCURRENT_TRANSACTIONS; so partitions not yet in the transaction are sent one after another,
 * and partitions already registered concurrently.
 */
import kafkajs from 'kafkajs'
import type { Message, RecordMetadata, TopicMessages } from 'kafkajs'
import { singlePartitionMessages } from './kafkajs-produce.js'

const { Partitioners } = kafkajs

const keyPartitioner = Partitioners.DefaultPartitioner()

/**
 * The partition the producer's default partitioner gives a key (murmur2 of the key bytes, as Java's
 * and kafkajs' producers): where a keyed record and so its task's state live (interactive queries).
 * @param key the serialized key; null gives a round-robin choice (no key, no fixed partition)
 */
export function defaultPartition(key: Buffer | null, numPartitions: number): number {
  return keyPartitioner({
    topic: '',
    partitionMetadata: Array.from({ length: numPartitions }, (_, i) => ({
      partitionId: i,
      leader: 0,
      partitionErrorCode: 0,
      replicas: [],
      isr: [],
    })),
    message: { key, value: null },
  })
}

/** Sends one batch through kafkajs (the producer's or the transaction's `sendBatch`). */
export type SendBatch = (topicMessages: TopicMessages[]) => Promise<RecordMetadata[]>

export interface PartitionSenderOptions {
  /** Partition count of a topic (sink and internal topics are known at start); undefined = unknown. */
  readonly partitionsFor: (topic: string) => number | undefined
  /** Whether sends belong to a transaction (partitions are registered with the coordinator). */
  readonly transactional: boolean
  /**
   * Hand kafkajs each partition's messages so that its per-partition grouping takes them as they
   * are (./kafkajs-produce.ts, {@link singlePartitionMessages}) instead of rebuilding the array
   * per message. @defaultValue false
   */
  readonly linearGrouping?: boolean
}

/**
 * A per-task sender that splits every batch by topic-partition. For a transactional producer,
 * call {@link PartitionSender.endTransaction} when its transaction ends (commit or abort), so the
 * next transaction registers its partitions again.
 */
export class PartitionSender {
  readonly #partitioner = Partitioners.DefaultPartitioner()
  readonly #registered = new Set<string>()

  constructor(private readonly options: PartitionSenderOptions) {}

  /** The transaction ended: its partitions must be registered again by the next one. */
  endTransaction(): void {
    this.#registered.clear()
  }

  /**
   * Sends `topicMessages` with `send`, one call per topic-partition; resolves with every call's
   * results once all succeeded. A message without a partition gets the one computed here, set on
   * the message object (it is not copied).
   * @throws the first failure, after every call has settled (none is left in flight)
   */
  async send(send: SendBatch, topicMessages: ReadonlyArray<TopicMessages>): Promise<RecordMetadata[]> {
    const groups = this.#split(topicMessages)
    const fresh: Array<{ key: string; batch: TopicMessages }> = []
    const known: Array<{ key: string; batch: TopicMessages }> = []
    for (const g of groups) (this.options.transactional && !this.#registered.has(g.key) ? fresh : known).push(g)
    const results: RecordMetadata[] = []
    let failure: unknown
    for (const g of fresh) {
      try {
        results.push(...(await send([g.batch])))
        this.#registered.add(g.key)
      } catch (e) {
        failure = e
        break
      }
    }
    const settled = await Promise.allSettled(known.map((g) => send([g.batch])))
    for (const s of settled) {
      if (s.status === 'fulfilled') results.push(...s.value)
      else failure ??= s.reason
    }
    if (failure !== undefined) throw failure
    return results
  }

  /** One `TopicMessages` per topic-partition, messages in their original order. */
  #split(topicMessages: ReadonlyArray<TopicMessages>): Array<{ key: string; batch: TopicMessages }> {
    const groups: Array<{ key: string; batch: TopicMessages }> = []
    for (const { topic, messages } of topicMessages) {
      const n = this.options.partitionsFor(topic)
      const metadata = n === undefined ? undefined : partitionMetadata(n)
      // per partition of this topic, in order of first appearance (an array lookup per message, no string keys)
      const byPartition: Message[][] = []
      const order: number[] = []
      let unknown: Message[] | undefined
      for (const m of messages) {
        let p = m.partition
        if (p === undefined || p === null) {
          if (!metadata) {
            // unknown partition count: leave partitioning to kafkajs for this topic (one send)
            ;(unknown ??= []).push(m)
            continue
          }
          // set on the message itself (the caller's batch is built for this send): kafkajs then
          // takes the partition as given instead of hashing the key again
          p = this.#partitioner({ topic, partitionMetadata: metadata, message: m })
          m.partition = p
        }
        let list = byPartition[p]
        if (!list) {
          byPartition[p] = list = []
          order.push(p)
        }
        list.push(m)
      }
      for (const p of order) {
        const list = byPartition[p]!
        if (this.options.linearGrouping) singlePartitionMessages(list, p)
        groups.push({ key: `${topic}\u0000${p}`, batch: { topic, messages: list } })
      }
      if (unknown) groups.push({ key: `${topic}\u0000*`, batch: { topic, messages: unknown } })
    }
    return groups
  }
}

const metadataCache = new Map<
  number,
  Array<{ partitionId: number; leader: number; partitionErrorCode: number; replicas: number[]; isr: number[] }>
>()

/** Partition metadata as the partitioner reads it: every partition available (round robin for null keys over all of them). */
function partitionMetadata(
  n: number,
): Array<{ partitionId: number; leader: number; partitionErrorCode: number; replicas: number[]; isr: number[] }> {
  let m = metadataCache.get(n)
  if (!m) {
    m = Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: 0, partitionErrorCode: 0, replicas: [], isr: [] }))
    metadataCache.set(n, m)
  }
  return m
}
