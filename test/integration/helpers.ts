/**
 * Helpers for integration tests against the real broker and registry that
 * `test/integration/global-setup.ts` provides.
 *
 * Everything that creates something (topics, connected clients) registers its own teardown:
 * inside a test (or beforeEach) it runs when that test finishes; inside beforeAll or at file
 * level it runs after the file's tests. So tests never call disconnect/delete themselves.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, inject, onTestFinished } from 'vitest'
import kafkajs from 'kafkajs'
// kafkajs 2.2.4's read_committed returns records of aborted transactions when the broker lists them
// out of offset order: every test-side client (consumeUntil, the EOS verifiers) reads with kstreams' fix.
import { fixKafkajs } from '../../lib/app/client/kafkajs-internals.js'
import type {
  Admin,
  Consumer,
  ConsumerConfig,
  IHeaders,
  ITopicConfig,
  Kafka as KafkaClient,
  KafkaConfig,
  Producer,
  ProducerConfig,
} from 'kafkajs'

const { Kafka, logLevel } = kafkajs

/** Bootstrap brokers of the cluster under test, e.g. `['127.0.0.1:9092']`. */
export function brokers(): string[] {
  const list = inject('kafkaBrokers') ?? process.env.KAFKA_BROKERS
  if (!list) throw new Error('No Kafka brokers: run integration tests through vitest (the `integration` project)')
  return list.split(',')
}

/** Base URL of the Confluent-compatible schema registry API under test. */
export function registryUrl(): string {
  const url = inject('schemaRegistryUrl') ?? process.env.SCHEMA_REGISTRY_URL
  if (!url) throw new Error('No schema registry: run integration tests through vitest (the `integration` project)')
  return url
}

/** A topic (or group, or transactional id) name no other test run uses: `<prefix>-<time>-<random>`. */
export function randomTopic(prefix = 'test'): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`
}

const fileCleanups: Array<() => Promise<void>> = []

afterAll(async () => {
  const errors: unknown[] = []
  while (fileCleanups.length > 0) {
    await fileCleanups.pop()!().catch((err: unknown) => errors.push(err))
  }
  if (errors.length > 0) throw errors[0]
})

/**
 * Registers `cleanup` to run when the current test finishes, or (outside a test, e.g. in
 * beforeAll) after the current file. Cleanups run in reverse order of registration.
 */
export function onCleanup(cleanup: () => Promise<void>): void {
  try {
    onTestFinished(cleanup)
  } catch {
    fileCleanups.push(cleanup)
  }
}

function clientLogLevel(): kafkajs.logLevel {
  switch ((process.env.KAFKAJS_LOG_LEVEL ?? '').toLowerCase()) {
    case 'error':
      return logLevel.ERROR
    case 'warn':
      return logLevel.WARN
    case 'info':
      return logLevel.INFO
    case 'debug':
      return logLevel.DEBUG
    default:
      return logLevel.NOTHING
  }
}

/**
 * A kafkajs client for the cluster under test. Silent unless `KAFKAJS_LOG_LEVEL`
 * (error|warn|info|debug) is set.
 */
export function kafkaClient(config: Partial<KafkaConfig> = {}): KafkaClient {
  return fixKafkajs(
    new Kafka({
      clientId: 'kstreams-test',
      brokers: brokers(),
      logLevel: clientLogLevel(),
      ...config,
    }),
  )
}

/** A connected admin client, disconnected at teardown. */
export async function connectedAdmin(client: KafkaClient = kafkaClient()): Promise<Admin> {
  const admin = client.admin()
  await admin.connect()
  onCleanup(() => admin.disconnect())
  return admin
}

/**
 * A connected producer (idempotent unless `config` says otherwise), disconnected at teardown.
 * Idempotent because kafkajs retries a whole send when one partition fails (e.g. "not the leader"
 * just after the topic was created): a plain producer writes the partitions that had succeeded
 * twice, and tests count their input exactly.
 */
export async function connectedProducer(config: ProducerConfig = {}, client: KafkaClient = kafkaClient()): Promise<Producer> {
  const producer = client.producer({ idempotent: true, maxInFlightRequests: 1, ...config })
  await producer.connect()
  onCleanup(() => producer.disconnect())
  return producer
}

/** A connected consumer (random group id unless given), disconnected at teardown. */
export async function connectedConsumer(config: Partial<ConsumerConfig> = {}, client: KafkaClient = kafkaClient()): Promise<Consumer> {
  const consumer = client.consumer({ groupId: randomTopic('group'), ...config })
  await consumer.connect()
  onCleanup(() => consumer.disconnect())
  return consumer
}

/**
 * Creates topics (a name, or a full kafkajs topic config; 1 partition by default) and waits for
 * their leaders; deletes them at teardown.
 * @returns the topic names, in order.
 */
export async function createTopics(...topics: Array<string | ITopicConfig>): Promise<string[]> {
  const configs: ITopicConfig[] = topics.map((t) =>
    typeof t === 'string' ? { topic: t, numPartitions: 1, replicationFactor: 1 } : { replicationFactor: 1, ...t },
  )
  const names = configs.map((c) => c.topic)
  const admin = kafkaClient().admin()
  await admin.connect()
  try {
    await admin.createTopics({ topics: configs, waitForLeaders: false, timeout: 30_000 })
    await waitForLeaders(admin, names, 30_000)
  } finally {
    await admin.disconnect()
  }
  onCleanup(async () => {
    const deleter = kafkaClient().admin()
    await deleter.connect()
    try {
      await deleter.deleteTopics({ topics: names, timeout: 30_000 })
    } catch (err) {
      // Already gone is fine; anything else is a real failure of the test's cleanup.
      if (!/does not host this topic-partition|UNKNOWN_TOPIC_OR_PARTITION/i.test(String((err as Error).message))) throw err
    } finally {
      await deleter.disconnect()
    }
  })
  return names
}

/**
 * Waits until every partition of `topics` has a leader in the broker's metadata.
 * kafkajs' own `waitForLeaders` gives up on UNKNOWN_TOPIC_OR_PARTITION, which a KRaft broker
 * answers for a moment after CreateTopics returned (its metadata lags the controller).
 */
async function waitForLeaders(admin: Admin, topics: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      const { topics: metadata } = await admin.fetchTopicMetadata({ topics })
      if (metadata.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return
    } catch (err) {
      if (Date.now() >= deadline) throw err
    }
    if (Date.now() >= deadline) throw new Error(`createTopics: no leader for ${topics.join(', ')} after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** One consumed record, with key and value decoded as UTF-8 strings. */
export interface ConsumedRecord {
  topic: string
  partition: number
  offset: string
  key: string | null
  value: string | null
  /** Raw value bytes (for binary formats such as Avro). */
  rawValue: Buffer | null
  timestamp: string
  headers: IHeaders | undefined
}

/**
 * Consumes `topics` from the beginning with a fresh consumer group until `until(records)` is
 * true, then disconnects and returns everything read.
 * @throws Error listing what was read when `until` is still false after `timeoutMs`.
 */
export async function consumeUntil(options: {
  topics: string[]
  until: (records: ConsumedRecord[]) => boolean
  /** @defaultValue true (read_committed, as kstreams reads) */
  readCommitted?: boolean
  /** @defaultValue 30000 */
  timeoutMs?: number
}): Promise<ConsumedRecord[]> {
  const consumer = kafkaClient().consumer({
    groupId: randomTopic('group'),
    readUncommitted: !(options.readCommitted ?? true),
    maxWaitTimeInMs: 100,
  })
  const records: ConsumedRecord[] = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: options.topics, fromBeginning: true })
    const timeoutMs = options.timeoutMs ?? 30_000
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `consumeUntil: condition not met after ${timeoutMs} ms; read ${records.length} record(s): ` +
                JSON.stringify(records.map((r) => [r.topic, r.partition, r.offset, r.key, r.value])),
            ),
          ),
        timeoutMs,
      )
      consumer
        .run({
          eachMessage: async ({ topic, partition, message }) => {
            records.push({
              topic,
              partition,
              offset: message.offset,
              key: message.key?.toString('utf8') ?? null,
              value: message.value?.toString('utf8') ?? null,
              rawValue: message.value,
              timestamp: message.timestamp,
              headers: message.headers,
            })
            if (options.until(records)) {
              clearTimeout(timer)
              resolve()
            }
          },
        })
        .catch((err: unknown) => {
          clearTimeout(timer)
          reject(err)
        })
    })
    return records
  } finally {
    await consumer.disconnect()
  }
}
