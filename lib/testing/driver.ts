/**
 * `TopologyTestDriver` (Kafka Streams: `org.apache.kafka.streams.TopologyTestDriver`): runs a
 * topology's real processors and stores without a broker, on one partition per topic, with a
 * virtual wall clock.
 *
 * - one {@link TaskEngine} per sub-topology (task `<id>_0`) and one per global store;
 * - in-memory stores;
 * - everything a sink writes is captured per topic; records written to a topic the topology
 *   reads (repartition topics, or a user topic that is also a source) are fed back in, in order,
 *   after the record that produced them, as Kafka Streams' driver does;
 * - stream-time punctuators run as records advance stream-time; wall-clock punctuators run on
 *   {@link TopologyTestDriver.advanceWallClockTime}.
 *
 * - metrics: `driver.metrics()` returns Kafka Streams' task and processor-node metrics by name and
 *   tags (thread-id {@link DRIVER_THREAD_ID}, task-id `<subtopology>_0`), recorded at
 *   `metricsRecordingLevel`, with rates over the virtual wall clock.
 *
 * @example
 * ```ts
 * const driver = new TopologyTestDriver(builder.build(), { defaultKeySerde: Serdes.String() })
 * const input = driver.createInputTopic('words', Serdes.String(), Serdes.String())
 * const output = driver.createOutputTopic('counts', Serdes.String(), Serdes.Long())
 * await input.pipeInput('k', 'hello world', 1000)
 * expect(output.readKeyValuesToList()).toEqual([{ key: 'hello', value: 1 }, { key: 'world', value: 1 }])
 * await driver.close()
 * ```
 *
 * The input/output topics are in test-topics.ts. The driver class stays whole (a little over ~400
 * lines): piping, punctuation, stores and metrics share its private state.
 */
import type { VersionedKeyValueStore } from '../../topology/state/versioned.js'
import {
  IllegalStateError,
  InvalidStateStoreError,
  createTaskEngine,
  globalSubtopologyDef,
  InMemoryStoreProvider,
  plainKeyValueView,
  plainWindowView,
  type DeserializationExceptionHandler,
  type Headers,
  type InvalidTimestampPolicy,
  type KeyValueStore,
  type OutputRecord,
  type ProcessingExceptionHandler,
  type RawRecord,
  type Serde,
  type SessionStore,
  type StateStore,
  type StoreDef,
  type TaskEngine,
  type TimestampExtractor,
  type TimestampedKeyValueStore,
  type TimestampedWindowStore,
  type Topology,
  type TopologyDef,
  type WindowStore,
} from '../../topology/index.js'
import { taskIdString } from '../../topology/processor/types.js'
import { RecordCache } from '../../topology/state/caching.js'
import { StreamsMetrics } from '../metrics/streams-metrics.js'
import { isRecordingLevel } from '../metrics/registry.js'
import type { Metric, MetricName, RecordingLevel } from '../metrics/types.js'

import { TestInputTopic, TestOutputTopic, type InputTopicOptions } from './test-topics.js'

export { TestInputTopic, TestOutputTopic, type InputTopicOptions, type TestRecord } from './test-topics.js'
export { findMetrics, metricValue } from '../metrics/registry.js'
export type { Metric, MetricName, RecordingLevel } from '../metrics/types.js'

/** Driver configuration (the subset of StreamsConfig the driver uses). */
export interface TopologyTestDriverConfig {
  /** Prefix of internal topics (`<applicationId>-<name>-repartition`). @defaultValue 'topology-test-driver' */
  readonly applicationId?: string
  readonly defaultKeySerde?: Serde<any>
  readonly defaultValueSerde?: Serde<any>
  readonly defaultTimestampExtractor?: TimestampExtractor<any, any>
  /** @defaultValue 'fail' (throw) */
  readonly deserializationExceptionHandler?: DeserializationExceptionHandler
  /** @defaultValue 'fail' (throw) */
  readonly processingExceptionHandler?: ProcessingExceptionHandler
  /** @defaultValue 'fail' */
  readonly invalidTimestampPolicy?: InvalidTimestampPolicy
  /**
   * Which sensors record (Kafka Streams: `metrics.recording.level`, KIP-444): 'DEBUG' adds e.g.
   * `record-lateness-*`, `process-*` per task and `window-aggregate-final-emit-*`.
   * @defaultValue 'INFO'
   */
  readonly metricsRecordingLevel?: RecordingLevel
  /**
   * Wall-clock idle advance (as the application config `idleAdvanceMs`, beyond Kafka Streams):
   * when no record was piped for this many milliseconds of the virtual wall clock,
   * {@link TopologyTestDriver.advanceWallClockTime} moves every task's stream-time to
   * `wallClockTimeMs() - idleAdvanceDelayMs`, so windows, suppression and left/outer join rows
   * close (a task without stream-time, i.e. no record piped yet, is left alone). The driver is
   * always caught up (every piped record is processed at once).
   * @defaultValue -1 (off)
   */
  readonly idleAdvanceMs?: number
  /** How far (ms) the idle advance keeps stream-time behind the wall clock. @defaultValue 0 */
  readonly idleAdvanceDelayMs?: number
  /**
   * Bytes of the record caches (KIP-63; Kafka Streams `statestore.cache.max.bytes`). As in Kafka
   * Streams' driver, the driver commits after every record it processes (and after wall-clock
   * punctuation), which flushes the caches: caching then only merges the updates of one key made
   * while one input record is processed, and forwards them after that record's processing (and
   * its stream-time punctuation). 0 disables caching: every update is forwarded at once.
   * @defaultValue 10485760 (10 MiB)
   */
  readonly statestoreCacheMaxBytes?: number
}

/** Default of {@link TopologyTestDriverConfig.statestoreCacheMaxBytes}: 10 MiB, as Kafka Streams. */
const DEFAULT_CACHE_MAX_BYTES = 10 * 1024 * 1024

/** The `thread-id` tag of the driver's metrics. */
export const DRIVER_THREAD_ID = 'topology-test-driver'

interface Route {
  readonly engines: TaskEngine[]
}

/**
 * The driver's metrics: Kafka Streams' metrics keyed by {@link MetricName} (find them with
 * `findMetrics` / `metricValue` from `kstreams`' metrics module, or iterate), plus dropped-record
 * counts by reason.
 */
export interface DriverMetrics extends ReadonlyMap<MetricName, Metric> {
  /** Records dropped on purpose, all tasks (the sum of `dropped-records-total`). */
  readonly droppedRecords: number
  /** Records dropped on purpose by reason (`late`, `null-key`, `invalid-timestamp`, ...). */
  readonly droppedRecordsByReason: Readonly<Record<string, number>>
}

/** Runs a topology without a broker. See the module comment. */
export class TopologyTestDriver {
  /** @internal The resolved topology (internal topics prefixed with the application id). */
  readonly topologyDef: TopologyDef
  private readonly config: TopologyTestDriverConfig
  private wallClockMs: number
  /** Virtual wall-clock time of the last piped record (idle advance). */
  private lastInputMs: number
  private readonly engines: TaskEngine[] = []
  private readonly globalEngines: TaskEngine[] = []
  private readonly routes = new Map<string, Route>()
  private readonly patternRoutes: Array<{ pattern: RegExp; engine: TaskEngine }> = []
  private readonly offsets = new Map<string, number>()
  private readonly outputs = new Map<string, OutputRecord[]>()
  private readonly produced = new Set<string>()
  private readonly collected: OutputRecord[] = []
  private readonly dropped = new Map<string, number>()
  private readonly storeDefs: ReadonlyMap<string, StoreDef>
  private readonly readyPromise: Promise<void>
  private initialized = false
  private closed = false
  private busy: Promise<void> = Promise.resolve()
  private readonly streamsMetrics: StreamsMetrics
  private readonly recordCache: RecordCache

  constructor(topology: Topology, config: TopologyTestDriverConfig = {}, initialWallClockTimeMs: number = Date.now()) {
    this.config = config
    this.wallClockMs = initialWallClockTimeMs
    this.lastInputMs = initialWallClockTimeMs
    const cacheBytes = config.statestoreCacheMaxBytes
    if (cacheBytes !== undefined && (typeof cacheBytes !== 'number' || !Number.isInteger(cacheBytes) || cacheBytes < 0))
      throw new TypeError(`TopologyTestDriver: statestoreCacheMaxBytes must be an integer >= 0, got ${String(cacheBytes)}`)
    this.recordCache = new RecordCache(cacheBytes ?? DEFAULT_CACHE_MAX_BYTES)
    for (const k of ['idleAdvanceMs', 'idleAdvanceDelayMs'] as const) {
      const v = config[k]
      if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < (k === 'idleAdvanceMs' ? -1 : 0)))
        throw new TypeError(`TopologyTestDriver: ${k} must be an integer >= ${k === 'idleAdvanceMs' ? -1 : 0}, got ${String(v)}`)
    }
    this.topologyDef = topology.resolve(config.applicationId ?? 'topology-test-driver')
    const recordingLevel = config.metricsRecordingLevel ?? 'INFO'
    if (!isRecordingLevel(recordingLevel))
      throw new TypeError(
        `TopologyTestDriver: metricsRecordingLevel must be 'INFO' | 'DEBUG' | 'TRACE', got ${JSON.stringify(recordingLevel)}`,
      )
    this.streamsMetrics = new StreamsMetrics({ clientId: this.topologyDef.applicationId, recordingLevel, clock: () => this.wallClockMs })
    this.storeDefs = this.topologyDef.stores
    this.readyPromise = this.init()
    this.readyPromise.catch(() => undefined)
  }

  private async init(): Promise<void> {
    const def = this.topologyDef
    const provider = new InMemoryStoreProvider()
    const collector = { send: (r: OutputRecord) => void this.collected.push(r) }
    const base = {
      topology: def,
      stores: provider,
      collector,
      clock: () => this.wallClockMs,
      partitionsFor: () => 1,
      onDropped: (reason: string) => void this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1),
      ...(this.config.defaultKeySerde !== undefined ? { defaultKeySerde: this.config.defaultKeySerde } : {}),
      ...(this.config.defaultValueSerde !== undefined ? { defaultValueSerde: this.config.defaultValueSerde } : {}),
      ...(this.config.defaultTimestampExtractor !== undefined ? { defaultTimestampExtractor: this.config.defaultTimestampExtractor } : {}),
      ...(this.config.deserializationExceptionHandler !== undefined
        ? { deserializationExceptionHandler: this.config.deserializationExceptionHandler }
        : {}),
      ...(this.config.processingExceptionHandler !== undefined
        ? { processingExceptionHandler: this.config.processingExceptionHandler }
        : {}),
      ...(this.config.invalidTimestampPolicy !== undefined ? { invalidTimestampPolicy: this.config.invalidTimestampPolicy } : {}),
    }
    const globalByStore = new Map<string, TaskEngine>()
    for (const g of def.globalStores) {
      const sub = globalSubtopologyDef(g)
      const engine = createTaskEngine({ ...base, subtopology: sub, taskId: { subtopology: sub.id, partition: 0 } })
      await engine.init()
      this.globalEngines.push(engine)
      globalByStore.set(g.store.name, engine)
      for (const t of g.source.topics) this.route(t).engines.push(engine)
    }
    const globalStores = (name: string): StateStore | undefined => globalByStore.get(name)?.getStateStore(name)
    for (const sub of def.subtopologies) {
      const taskId = { subtopology: sub.id, partition: 0 }
      const metrics = this.streamsMetrics.task(DRIVER_THREAD_ID, taskIdString(taskId))
      const engine = createTaskEngine({ ...base, subtopology: sub, taskId, globalStores, metrics, recordCache: this.recordCache })
      await engine.init()
      this.engines.push(engine)
      for (const n of sub.nodes) {
        if (n.type !== 'source') continue
        for (const t of n.topics) this.route(t).engines.push(engine)
        if (n.pattern !== undefined) this.patternRoutes.push({ pattern: n.pattern, engine })
      }
    }
    this.initialized = true
  }

  private route(topic: string): Route {
    let r = this.routes.get(topic)
    if (!r) this.routes.set(topic, (r = { engines: [] }))
    return r
  }

  private routeFor(topic: string): Route | undefined {
    const r = this.routes.get(topic)
    if (r) return r
    const engines = this.patternRoutes
      .filter((p) => {
        p.pattern.lastIndex = 0
        const m = p.pattern.exec(topic)
        return m !== null && m.index === 0 && m[0].length === topic.length
      })
      .map((p) => p.engine)
    if (engines.length === 0) return undefined
    const route = { engines }
    this.routes.set(topic, route)
    return route
  }

  /** Resolves once stores and processors are initialized (every async driver method awaits it). */
  ready(): Promise<void> {
    return this.readyPromise
  }

  private checkOpen(): void {
    if (this.closed) throw new IllegalStateError('the TopologyTestDriver is closed')
  }

  private checkReady(method: string): void {
    this.checkOpen()
    if (!this.initialized)
      throw new IllegalStateError(`${method}: the driver is still initializing; await driver.ready() (or pipe a record) first`)
  }

  /** Serializes calls so concurrent pipes process one at a time, in call order. */
  private exclusive(fn: () => Promise<void>): Promise<void> {
    const run = this.busy.then(async () => {
      await this.readyPromise
      this.checkOpen()
      await fn()
    })
    this.busy = run.catch(() => undefined)
    return run
  }

  /**
   * @internal Pipes raw bytes into `topic` and processes everything it causes.
   * Throws `IllegalStateError` when the topology does not read `topic`.
   */
  pipeRaw(topic: string, key: Buffer | null, value: Buffer | null, timestamp: number, headers: Headers): Promise<void> {
    return this.exclusive(async () => {
      if (!this.routeFor(topic)) throw new IllegalStateError(`unknown input topic '${topic}': the topology does not read it`)
      this.lastInputMs = this.wallClockMs
      await this.drain([this.rawRecord(topic, key, value, timestamp, headers)])
    })
  }

  private rawRecord(topic: string, key: Buffer | null, value: Buffer | null, timestamp: number, headers: Headers): RawRecord {
    const offset = this.offsets.get(topic) ?? 0
    this.offsets.set(topic, offset + 1)
    return { topic, partition: 0, offset: String(offset), key, value, timestamp, headers }
  }

  private async drain(queue: RawRecord[]): Promise<void> {
    while (queue.length > 0) {
      const raw = queue.shift()!
      const route = this.routeFor(raw.topic)
      if (route) {
        for (const engine of route.engines) {
          await engine.prepareBatch([raw])
          await engine.process(raw)
          // Kafka Streams' driver commits after each record: the record caches flush
          await engine.flushCaches?.()
          this.capture(queue)
        }
      }
    }
  }

  private capture(queue: RawRecord[]): void {
    if (this.collected.length === 0) return
    const out = this.collected.splice(0)
    for (const r of out) {
      this.produced.add(r.topic)
      let list = this.outputs.get(r.topic)
      if (!list) this.outputs.set(r.topic, (list = []))
      list.push(r)
      if (this.routeFor(r.topic)) queue.push(this.rawRecord(r.topic, r.key, r.value, r.timestamp, r.headers))
    }
  }

  /** Creates an input topic handle. Records are serialized with these serdes. */
  createInputTopic<K, V>(topic: string, keySerde: Serde<K>, valueSerde: Serde<V>, options: InputTopicOptions = {}): TestInputTopic<K, V> {
    this.checkOpen()
    if (typeof topic !== 'string' || topic.length === 0)
      throw new IllegalStateError(`createInputTopic: parameter 'topic' must be a non-empty string`)
    if (!keySerde || !valueSerde) throw new IllegalStateError(`createInputTopic: parameters 'keySerde' and 'valueSerde' are required`)
    return new TestInputTopic<K, V>(this, topic, keySerde, valueSerde, options, this.wallClockMs)
  }

  /** Creates an output topic handle. Records are deserialized with these serdes. */
  createOutputTopic<K, V>(topic: string, keySerde: Serde<K>, valueSerde: Serde<V>): TestOutputTopic<K, V> {
    this.checkOpen()
    if (typeof topic !== 'string' || topic.length === 0)
      throw new IllegalStateError(`createOutputTopic: parameter 'topic' must be a non-empty string`)
    if (!keySerde || !valueSerde) throw new IllegalStateError(`createOutputTopic: parameters 'keySerde' and 'valueSerde' are required`)
    return new TestOutputTopic<K, V>(this, topic, keySerde, valueSerde)
  }

  /** @internal */
  takeOutput(topic: string): OutputRecord | undefined {
    return this.outputs.get(topic)?.shift()
  }

  /** @internal */
  outputSize(topic: string): number {
    return this.outputs.get(topic)?.length ?? 0
  }

  /** Every topic the topology wrote to so far (internal ones with the application id prefix). */
  producedTopicNames(): Set<string> {
    return new Set(this.produced)
  }

  /**
   * Advances the virtual wall clock by `ms` and runs due wall-clock punctuators; with
   * `idleAdvanceMs` configured and no record piped for that long, then moves stream-time to the
   * wall clock minus `idleAdvanceDelayMs` (see {@link TopologyTestDriverConfig.idleAdvanceMs}).
   */
  advanceWallClockTime(ms: number): Promise<void> {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0)
      throw new IllegalStateError(`advanceWallClockTime: parameter 'ms' must be >= 0`)
    return this.exclusive(async () => {
      this.wallClockMs += ms
      const queue: RawRecord[] = []
      for (const engine of [...this.globalEngines, ...this.engines]) {
        await engine.punctuateWallClock(this.wallClockMs)
        await engine.flushCaches?.()
        this.capture(queue)
      }
      await this.drain(queue)
      const idleMs = this.config.idleAdvanceMs ?? -1
      if (idleMs >= 0 && this.wallClockMs - this.lastInputMs >= idleMs) {
        const to = this.wallClockMs - (this.config.idleAdvanceDelayMs ?? 0)
        for (const engine of this.engines) {
          // as the runtime: a task without stream-time (no record yet) is not advanced
          if (engine.streamTime() < 0) continue
          await engine.advanceStreamTime(to)
          await engine.flushCaches?.()
          this.capture(queue)
          await this.drain(queue)
        }
      }
    })
  }

  /** The virtual wall-clock time, milliseconds. */
  wallClockTimeMs(): number {
    return this.wallClockMs
  }

  /**
   * A snapshot of the metrics (Kafka Streams: `TopologyTestDriver#metrics()`): task metrics
   * (`dropped-records-*`; DEBUG: `process-*`, `record-lateness-*`), processor-node metrics
   * (`record-e2e-latency-*` at source and terminal nodes; DEBUG: `window-aggregate-final-emit-*`,
   * `window-aggregate-final-emit-latency-*`, `suppression-emit-*`) and suppression-buffer metrics, plus dropped-record
   * counts by reason.
   * @example
   * ```ts
   * const d = new TopologyTestDriver(topology, { metricsRecordingLevel: 'DEBUG' })
   * // ... pipe records
   * expect(metricValue(d.metrics(), 'record-lateness-max', { 'task-id': '0_0' })).toBe(5000)
   * ```
   */
  metrics(): DriverMetrics {
    let total = 0
    const byReason: Record<string, number> = {}
    for (const [reason, n] of this.dropped) {
      byReason[reason] = n
      total += n
    }
    const map = new Map(this.streamsMetrics.metrics()) as Map<MetricName, Metric> & {
      droppedRecords: number
      droppedRecordsByReason: Record<string, number>
    }
    map.droppedRecords = total
    map.droppedRecordsByReason = byReason
    return map
  }

  /** The configured metrics recording level (read by the metrics exporters). */
  get recordingLevel(): RecordingLevel {
    return this.streamsMetrics.recordingLevel
  }

  /** Number of records dropped for `reason`, or in total. */
  droppedRecords(reason?: string): number {
    if (reason !== undefined) return this.dropped.get(reason) ?? 0
    let n = 0
    for (const v of this.dropped.values()) n += v
    return n
  }

  private findStore(name: string): StateStore | undefined {
    for (const e of [...this.engines, ...this.globalEngines]) {
      const s = e.getStateStore(name)
      if (s) return s
    }
    return undefined
  }

  private defOf(name: string, method: string): StoreDef {
    this.checkReady(method)
    const def = this.storeDefs.get(name)
    if (!def) throw new InvalidStateStoreError(`${method}: no state store named '${name}' in the topology`)
    return def
  }

  /** Any store by name (typed facade as processors see it), or undefined. */
  getStateStore(name: string): StateStore | undefined {
    this.checkReady('getStateStore')
    return this.findStore(name)
  }

  /**
   * A key-value store with plain values (timestamped DSL stores are unwrapped, as in Kafka
   * Streams' driver). Throws `InvalidStateStoreError` for unknown names or other store types.
   */
  getKeyValueStore<K, V>(name: string): KeyValueStore<K, V> {
    const def = this.defOf(name, 'getKeyValueStore')
    if (def.type !== 'keyValue') throw new InvalidStateStoreError(`getKeyValueStore: store '${name}' is a ${def.type} store`)
    if (def.versioned !== undefined)
      throw new InvalidStateStoreError(`getKeyValueStore: store '${name}' is versioned; use getVersionedKeyValueStore`)
    const s = this.findStore(name)!
    return def.timestamped ? plainKeyValueView(s as TimestampedKeyValueStore<K, V>, () => this.wallClockMs) : (s as KeyValueStore<K, V>)
  }

  /** A versioned key-value store (KIP-889: `Stores.persistentVersionedKeyValueStore`, versioned tables). */
  getVersionedKeyValueStore<K, V>(name: string): VersionedKeyValueStore<K, V> {
    const def = this.defOf(name, 'getVersionedKeyValueStore')
    if (def.versioned === undefined)
      throw new InvalidStateStoreError(`getVersionedKeyValueStore: store '${name}' is not a versioned key-value store`)
    return this.findStore(name) as VersionedKeyValueStore<K, V>
  }

  /** A timestamped key-value store (DSL tables and aggregates). */
  getTimestampedKeyValueStore<K, V>(name: string): TimestampedKeyValueStore<K, V> {
    const def = this.defOf(name, 'getTimestampedKeyValueStore')
    if (def.type !== 'keyValue' || !def.timestamped)
      throw new InvalidStateStoreError(`getTimestampedKeyValueStore: store '${name}' is not a timestamped key-value store`)
    return this.findStore(name) as TimestampedKeyValueStore<K, V>
  }

  /** A window store with plain values (timestamped stores unwrapped). */
  getWindowStore<K, V>(name: string): WindowStore<K, V> {
    const def = this.defOf(name, 'getWindowStore')
    if (def.type !== 'window') throw new InvalidStateStoreError(`getWindowStore: store '${name}' is a ${def.type} store`)
    const s = this.findStore(name)!
    return def.timestamped ? plainWindowView(s as TimestampedWindowStore<K, V>, () => this.wallClockMs) : (s as WindowStore<K, V>)
  }

  /** A timestamped window store. */
  getTimestampedWindowStore<K, V>(name: string): TimestampedWindowStore<K, V> {
    const def = this.defOf(name, 'getTimestampedWindowStore')
    if (def.type !== 'window' || !def.timestamped)
      throw new InvalidStateStoreError(`getTimestampedWindowStore: store '${name}' is not a timestamped window store`)
    return this.findStore(name) as TimestampedWindowStore<K, V>
  }

  /** A session store. */
  getSessionStore<K, V>(name: string): SessionStore<K, V> {
    const def = this.defOf(name, 'getSessionStore')
    if (def.type !== 'session') throw new InvalidStateStoreError(`getSessionStore: store '${name}' is a ${def.type} store`)
    return this.findStore(name) as SessionStore<K, V>
  }

  /** Closes processors and stores. */
  async close(): Promise<void> {
    if (this.closed) return
    await this.busy
    this.closed = true
    try {
      await this.readyPromise
    } catch {
      return
    }
    for (const e of [...this.engines, ...this.globalEngines]) {
      await e.close()
      for (const s of e.bytesStores().values()) await s.close()
    }
  }
}
