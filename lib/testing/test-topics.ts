/** The driver's input and output topics (Kafka Streams: `TestInputTopic`, `TestOutputTopic`, `TestRecord`). */
import { IllegalStateError, type Headers, type KeyValue, type Serde } from '../../topology/index.js'
import type { TopologyTestDriver } from './driver.js'

/** A record read from an output topic. */
export interface TestRecord<K, V> {
  readonly key: K | null
  readonly value: V | null
  readonly timestamp: number
  readonly headers: Headers
  readonly topic: string
}

/** Options of {@link TopologyTestDriver.createInputTopic}. */
export interface InputTopicOptions {
  /** Timestamp of the first record piped without one. @defaultValue the driver's initial wall-clock time */
  readonly startTimestampMs?: number
  /** Added to the timestamp after each record piped without one. @defaultValue 0 */
  readonly autoAdvanceMs?: number
}

/** Pipes records into one input topic (Kafka Streams: `TestInputTopic`). */
export class TestInputTopic<K, V> {
  private currentTime: number
  private readonly autoAdvance: number

  /** Made by `driver.createInputTopic`; not for tests to call. */
  constructor(
    private readonly driver: TopologyTestDriver,
    readonly topic: string,
    private readonly keySerde: Serde<K>,
    private readonly valueSerde: Serde<V>,
    options: InputTopicOptions,
    defaultStart: number,
  ) {
    this.currentTime = options.startTimestampMs ?? defaultStart
    this.autoAdvance = options.autoAdvanceMs ?? 0
    if (!Number.isFinite(this.autoAdvance) || this.autoAdvance < 0)
      throw new IllegalStateError(`createInputTopic: 'autoAdvanceMs' must be >= 0`)
  }

  private nextTimestamp(given: number | undefined): number {
    if (given !== undefined) return given
    const t = this.currentTime
    this.currentTime += this.autoAdvance
    return t
  }

  /** Advances the auto timestamp by `ms`. */
  advanceTime(ms: number): void {
    if (ms < 0) throw new IllegalStateError('advanceTime: ms must be >= 0')
    this.currentTime += ms
  }

  /**
   * Pipes one record and processes it (and everything it causes) to completion. Without a
   * timestamp, uses the topic's current time and advances it by `autoAdvanceMs`.
   */
  pipeInput(key: K | null, value: V | null, timestamp?: number, headers: Headers = {}): Promise<void> {
    const ts = this.nextTimestamp(timestamp)
    return this.driver.pipeRaw(
      this.topic,
      this.keySerde.serialize(this.topic, key, headers),
      this.valueSerde.serialize(this.topic, value, headers),
      ts,
      headers,
    )
  }

  /** Pipes `{ key, value, timestamp?, headers? }`. */
  pipeRecord(record: { key: K | null; value: V | null; timestamp?: number; headers?: Headers }): Promise<void> {
    return this.pipeInput(record.key, record.value, record.timestamp, record.headers ?? {})
  }

  /** Pipes values with null keys, in order. */
  async pipeValueList(values: Iterable<V | null>): Promise<void> {
    for (const v of values) await this.pipeInput(null, v)
  }

  /** Pipes `{ key, value }` objects or `[key, value]` tuples, in order. */
  async pipeKeyValueList(list: Iterable<KeyValue<K | null, V | null> | readonly [K | null, V | null]>): Promise<void> {
    for (const kv of list) {
      if (Array.isArray(kv)) await this.pipeInput(kv[0] as K | null, kv[1] as V | null)
      else await this.pipeInput((kv as KeyValue<K | null, V | null>).key, (kv as KeyValue<K | null, V | null>).value)
    }
  }
}

/** Reads what the topology wrote to one topic (Kafka Streams: `TestOutputTopic`). Reading consumes. */
export class TestOutputTopic<K, V> {
  /** Made by `driver.createOutputTopic`; not for tests to call. */
  constructor(
    private readonly driver: TopologyTestDriver,
    readonly topic: string,
    private readonly keySerde: Serde<K>,
    private readonly valueSerde: Serde<V>,
  ) {}

  private next(): TestRecord<K, V> {
    const raw = this.driver.takeOutput(this.topic)
    if (!raw) throw new IllegalStateError(`output topic '${this.topic}' is empty`)
    return {
      topic: raw.topic,
      key: raw.key === null ? null : this.keySerde.deserialize(raw.topic, raw.key, raw.headers),
      value: raw.value === null ? null : this.valueSerde.deserialize(raw.topic, raw.value, raw.headers),
      timestamp: raw.timestamp,
      headers: raw.headers,
    }
  }

  /** The next record. Throws `IllegalStateError` when empty. */
  readRecord(): TestRecord<K, V> {
    return this.next()
  }
  /** The next value. */
  readValue(): V | null {
    return this.next().value
  }
  /** The next key and value. */
  readKeyValue(): KeyValue<K | null, V | null> {
    const r = this.next()
    return { key: r.key, value: r.value }
  }
  /** All remaining values. */
  readValuesToList(): Array<V | null> {
    const out: Array<V | null> = []
    while (!this.isEmpty()) out.push(this.readValue())
    return out
  }
  /** All remaining key-values. */
  readKeyValuesToList(): Array<KeyValue<K | null, V | null>> {
    const out: Array<KeyValue<K | null, V | null>> = []
    while (!this.isEmpty()) out.push(this.readKeyValue())
    return out
  }
  /** All remaining records with timestamps and headers. */
  readRecordsToList(): Array<TestRecord<K, V>> {
    const out: Array<TestRecord<K, V>> = []
    while (!this.isEmpty()) out.push(this.readRecord())
    return out
  }
  /** The last value per key of all remaining records (null values are kept). Null keys throw. */
  readKeyValuesToMap(): Map<K, V | null> {
    const out = new Map<K, V | null>()
    while (!this.isEmpty()) {
      const r = this.readRecord()
      if (r.key === null) throw new IllegalStateError(`readKeyValuesToMap: null keys are not allowed (topic '${this.topic}')`)
      out.set(r.key, r.value)
    }
    return out
  }
  /** No unread records. */
  isEmpty(): boolean {
    return this.driver.outputSize(this.topic) === 0
  }
  /** Number of unread records. */
  getQueueSize(): number {
    return this.driver.outputSize(this.topic)
  }
}
