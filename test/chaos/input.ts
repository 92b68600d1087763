/**
 * The input of the fault scenarios: topics, keys and a paced producer.
 *
 * Values are `<key>:<seq>:<amount>` (the format test/eos/app.ts and test/eos/verifier.ts expect):
 * per key the sequence numbers are consecutive from 0. The producer is idempotent with one
 * request in flight and retries for minutes, so a frozen or restarting broker delays the input but
 * never duplicates, loses or reorders it (the verifier's `checkInput` would say so).
 */
import { PartitionSender } from '../../lib/app/client/partition-send.js'
import type { Admin, Kafka, Producer } from 'kafkajs'
import kafkajs from 'kafkajs'
import { sleep, waitFor } from './clock.js'

const { Partitioners } = kafkajs

/** Partition of a string key under kafkajs' default (Java-compatible murmur2) partitioner. */
export function partitionOf(key: string, partitions: number): number {
  const partitioner = Partitioners.DefaultPartitioner()
  return partitioner({
    topic: 'x',
    partitionMetadata: Array.from({ length: partitions }, (_, i) => ({
      partitionId: i,
      leader: 1,
      replicas: [1],
      isr: [1],
      partitionErrorCode: 0,
    })),
    message: { key, value: null },
  })
}

/** `perPartition` keys `k<i>` for each of `partitions` partitions, so every partition gets input. */
export function chooseKeys(partitions: number, perPartition: number): string[] {
  const byPartition: string[][] = Array.from({ length: partitions }, () => [])
  for (let i = 0; byPartition.some((l) => l.length < perPartition); i++) {
    const k = `k${i}`
    const l = byPartition[partitionOf(k, partitions)]!
    if (l.length < perPartition) l.push(k)
  }
  return byPartition.flat()
}

/**
 * Creates topics (replication factor `replicationFactor`) and waits until every partition has a
 * leader (a KRaft broker's metadata lags CreateTopics for a moment).
 */
export async function createTopics(admin: Admin, topics: ReadonlyArray<string>, partitions: number, replicationFactor = 1): Promise<void> {
  await admin.createTopics({
    topics: topics.map((topic) => ({ topic, numPartitions: partitions, replicationFactor })),
    waitForLeaders: false,
    timeout: 30_000,
  })
  await waitFor(
    `leaders of ${topics.join(', ')}`,
    async () => {
      try {
        const md = await admin.fetchTopicMetadata({ topics: [...topics] })
        return md.topics.every((t) => t.partitions.length === partitions && t.partitions.every((p) => p.leader >= 0))
      } catch {
        return false
      }
    },
    30_000,
  )
}

/** Deterministic amount in 1..97 of a key's `seq`-th record. */
export function amount(keyIndex: number, seq: number): number {
  return ((seq * 31 + keyIndex * 17) % 97) + 1
}

/** Options of {@link PacedInput}. */
export interface PacedInputOptions {
  readonly topic: string
  readonly keys: ReadonlyArray<string>
  /** Records per second. */
  readonly ratePerSec: number
  /** Records in all (the input ends there). */
  readonly total: number
  /** @defaultValue 100 */
  readonly tickMs?: number
  /** Partitions of the input topic: each tick is sent one request per partition (see below). */
  readonly partitions: number
}

/** Produces the input at a steady pace until `total` records were acknowledged. */
export class PacedInput {
  produced = 0
  /** Wall-clock ms of the first and last acknowledged send. */
  firstAt = 0
  lastAt = 0
  error: Error | undefined
  #seq = new Map<string, number>()
  #cursor = 0
  #stop = false
  #loop: Promise<void> | undefined
  #producer: Producer

  readonly #sender: PartitionSender

  constructor(
    kafka: Kafka,
    readonly options: PacedInputOptions,
  ) {
    this.#sender = new PartitionSender({ partitionsFor: () => options.partitions, transactional: false })
    this.#producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      retry: { retries: 1000, initialRetryTime: 300, maxRetryTime: 3000 },
    })
  }

  async start(): Promise<this> {
    await this.#producer.connect()
    this.#loop = this.#run().catch((e: unknown) => {
      this.error = e instanceof Error ? e : new Error(String(e))
    })
    return this
  }

  async #run(): Promise<void> {
    const { keys, topic, total } = this.options
    const tick = this.options.tickMs ?? 100
    const perTick = Math.max(1, Math.round((this.options.ratePerSec * tick) / 1000))
    let next = Date.now()
    while (!this.#stop && this.produced < total) {
      const messages: Array<{ key: string; value: string }> = []
      for (let i = 0; i < perTick && this.produced + messages.length < total; i++) {
        const ki = this.#cursor++ % keys.length
        const key = keys[ki]!
        const seq = this.#seq.get(key) ?? 0
        this.#seq.set(key, seq + 1)
        messages.push({ key, value: `${key}:${seq}:${amount(ki, seq)}` })
      }
      // one send per partition: kafkajs' multi-leader send duplicates and drops records when a
      // leader fails during a send (lib/app/client/partition-send.ts), which would corrupt the input
      await this.#sender.send((tm) => this.#producer.sendBatch({ topicMessages: tm, acks: -1 }), [{ topic, messages }])
      this.produced += messages.length
      this.lastAt = Date.now()
      if (!this.firstAt) this.firstAt = this.lastAt
      // keep the pace, but do not burst to catch up after a stall (the rate stays the rate)
      next = Math.max(next + tick, Date.now())
      await sleep(Math.max(0, next - Date.now()))
    }
  }

  /** Resolves when all `total` records were produced (or the producer failed). */
  async finished(timeoutMs: number): Promise<void> {
    await waitFor(
      `${this.options.total} input records`,
      () => this.produced >= this.options.total || this.error !== undefined,
      timeoutMs,
      () => `${this.produced} produced`,
      200,
    )
    if (this.error) throw new Error(`input producer failed after ${this.produced} records: ${this.error.message}`)
  }

  /** Stops producing and disconnects. */
  async stop(): Promise<number> {
    this.#stop = true
    await this.#loop
    await this.#producer.disconnect().catch(() => undefined)
    return this.produced
  }
}
