/**
 * Broker plumbing for the benchmarks: topic creation, the untimed preload phase, and reading an
 * output topic back (read_committed) for verification.
 */
import kafkajs from 'kafkajs'
import type { Admin, Kafka as KafkaClient, Message } from 'kafkajs'

const { Kafka, logLevel } = kafkajs

/** A kafkajs client with quiet logs, for the harness and the raw workers. */
export function kafkaClient(brokers: string, clientId: string): KafkaClient {
  return new Kafka({
    clientId,
    brokers: brokers.split(','),
    logLevel: logLevel.ERROR,
    retry: { retries: 8, initialRetryTime: 100 },
  })
}

/** Topic-level options for {@link createTopics}. */
export interface TopicSpec {
  topic: string
  partitions: number
  /**
   * `LogAppendTime` stamps every record with the broker's clock on append: output topics of the
   * throughput runs use it, so that "when was the last result written" is read from the log,
   * the same way for every implementation.
   */
  logAppendTime?: boolean
  compact?: boolean
}

/** Creates topics (deleting any leftover of the same name first) and waits for their leaders. */
export async function createTopics(admin: Admin, specs: TopicSpec[]): Promise<void> {
  if (specs.length === 0) return
  const existing = new Set(await admin.listTopics())
  const stale = specs.map((s) => s.topic).filter((t) => existing.has(t))
  if (stale.length > 0) {
    await admin.deleteTopics({ topics: stale, timeout: 30_000 })
    await waitFor(
      async () => {
        const now = new Set(await admin.listTopics())
        return stale.every((t) => !now.has(t))
      },
      30_000,
      `topics ${stale.join(', ')} to be deleted`,
    )
  }
  specs.forEach((s) => deleted.delete(s.topic))
  await admin.createTopics({
    waitForLeaders: true,
    timeout: 30_000,
    topics: specs.map((s) => ({
      topic: s.topic,
      numPartitions: s.partitions,
      replicationFactor: 1,
      configEntries: [
        // The data carries timestamps hours old; never let time-based retention touch it.
        { name: 'retention.ms', value: '-1' },
        { name: 'cleanup.policy', value: s.compact ? 'compact' : 'delete' },
        ...(s.logAppendTime ? [{ name: 'message.timestamp.type', value: 'LogAppendTime' }] : []),
      ],
    })),
  })
}

/**
 * Topics this process already asked the broker to delete. A topic being deleted can still be
 * listed for a moment, and deleting it again makes kafkajs retry UNKNOWN_TOPIC_OR_PARTITION
 * with back-off for many seconds: never ask twice.
 */
const deleted = new Set<string>()

/** Deletes topics, ignoring the ones already gone. */
export async function deleteTopics(admin: Admin, topics: string[]): Promise<void> {
  const existing = new Set(await admin.listTopics())
  const present = topics.filter((t) => existing.has(t) && !deleted.has(t))
  if (present.length === 0) return
  present.forEach((t) => deleted.add(t))
  await admin.deleteTopics({ topics: present, timeout: 60_000 }).catch(() => {})
}

/** Deletes every topic whose name starts with `prefix` (internal topics of finished runs). */
export async function deleteTopicsWithPrefix(admin: Admin, prefix: string): Promise<number> {
  const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix))
  await deleteTopics(admin, topics)
  return topics.length
}

/** Polls until `probe` is true. @throws Error naming `what` after `timeoutMs`. */
export async function waitFor(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

/**
 * Produces `count` records built by `make(i)` as fast as the broker takes them (several batches in
 * flight, acks=all, no compression). This is the untimed preload phase.
 * @returns milliseconds it took.
 */
export async function produceAll(
  kafka: KafkaClient,
  topic: string,
  count: number,
  make: (i: number) => Message,
  options: { batch?: number; inFlight?: number } = {},
): Promise<number> {
  const batch = options.batch ?? 5_000
  const inFlight = options.inFlight ?? 4
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  const started = Date.now()
  try {
    let next = 0
    const lane = async () => {
      while (next < count) {
        const from = next
        const to = Math.min(count, from + batch)
        next = to
        const messages = new Array<Message>(to - from)
        for (let i = from; i < to; i++) messages[i - from] = make(i)
        await producer.send({ topic, messages, acks: -1 })
      }
    }
    await Promise.all(Array.from({ length: inFlight }, lane))
  } finally {
    await producer.disconnect()
  }
  return Date.now() - started
}

/** Sum of the end offsets (high watermarks) of a topic's partitions. */
export async function endOffsetSum(admin: Admin, topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic)
  return offsets.reduce((sum, p) => sum + Number(p.high), 0)
}

/** One record read back from an output topic. */
export interface ReadRecord {
  key: Buffer | null
  value: Buffer | null
  /** Record timestamp (LogAppendTime on the throughput output topics), ms. */
  timestamp: number
  partition: number
}

/**
 * Reads a topic from the beginning up to the end offsets taken when called, with
 * read_committed, calling `onRecord` for each record in partition order.
 * @returns the number of records read.
 */
export async function readTopic(
  kafka: KafkaClient,
  topic: string,
  onRecord: (r: ReadRecord) => void,
  timeoutMs = 300_000,
): Promise<number> {
  const admin = kafka.admin()
  await admin.connect()
  let ends: Map<number, bigint>
  try {
    const offsets = await admin.fetchTopicOffsets(topic)
    ends = new Map(offsets.map((p) => [p.partition, BigInt(p.high)]))
  } finally {
    await admin.disconnect()
  }
  const remaining = new Set([...ends].filter(([, high]) => high > 0n).map(([p]) => p))
  if (remaining.size === 0) return 0

  const consumer = kafka.consumer({
    groupId: `kbench-verify-${process.pid}-${Math.random().toString(36).slice(2)}`,
    readUncommitted: false,
    maxBytes: 50 * 1024 * 1024,
    maxBytesPerPartition: 10 * 1024 * 1024,
    maxWaitTimeInMs: 200,
  })
  await consumer.connect()
  let read = 0
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`reading ${topic} timed out after ${timeoutMs} ms (${read} records read)`)),
        timeoutMs,
      )
      // A transactional partition ends with commit markers that are never handed to eachBatch;
      // the batch-end event carries the last offset INCLUDING control records, so a partition
      // is done once that reaches the end offset taken at the start.
      consumer.on(consumer.events.END_BATCH_PROCESS, (event) => {
        const { partition, lastOffset } = event.payload as { partition: number; lastOffset: string }
        if (remaining.has(partition) && BigInt(lastOffset) + 1n >= (ends.get(partition) ?? 0n)) {
          remaining.delete(partition)
          if (remaining.size === 0) {
            clearTimeout(timer)
            resolve()
          }
        }
      })
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            const end = ends.get(batch.partition) ?? 0n
            for (const m of batch.messages) {
              if (BigInt(m.offset) >= end) break
              read++
              onRecord({ key: m.key, value: m.value, timestamp: Number(m.timestamp), partition: batch.partition })
            }
          },
        })
        .catch(reject)
    })
  } finally {
    await consumer.disconnect()
  }
  return read
}
