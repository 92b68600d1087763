/**
 * `KafkaStreams`: runs a topology inside this process, as one member of the application's group
 * (Kafka Streams: `KafkaStreams`). The class holds the client's lifecycle (start, the uncaught
 * exception handler's response, close) and its public TSDoc; the rest lives in its own modules:
 * topic preparation (internal-topics.ts), the state machine (state.ts), store views
 * (store-query.ts), query metadata (query-metadata.ts), the process id (process-id.ts) and the
 * processing loop (stream-thread.ts). Over 400 lines because the public class carries the TSDoc of
 * every method where it is declared; the methods mostly delegate.
 *
 * @example Graceful shutdown on SIGTERM (commits, closes stores with a checkpoint, leaves the group):
 * ```ts
 * const streams = new KafkaStreams(builder.build(), { applicationId: 'word-count', bootstrapServers: 'localhost:9092' })
 * streams.onStateChange((now, before) => console.log(`${before} -> ${now}`))
 * await streams.start()
 * for (const signal of ['SIGTERM', 'SIGINT'] as const) {
 *   process.once(signal, () => void streams.close({ timeoutMs: 30_000 }).then(() => process.exit(0)))
 * }
 * ```
 */
import { EventEmitter } from 'node:events'
import fs from 'node:fs/promises'
import path from 'node:path'
import { IllegalStateError, StreamsConfigError } from '../../topology/errors.js'
import type { ChangelogReader } from '../state/types.js'
import type { TopologyDef } from '../../topology/engine/types.js'
import type { Serde } from '../../topology/serde.js'
import type { StateStore } from '../../topology/state/types.js'
import { emitEvent, StreamsEvents } from './events.js'
import { GlobalStreamThread } from './global-thread.js'
import type { QueryableStore } from './interactive-queries.js'
import { prepareTopics } from './internal-topics.js'
import { internalTopicOverrides, resolveStreamsConfig, type ResolvedStreamsConfig, type StreamsConfig } from './options.js'
import { defaultEngineRuntime, defaultStateRuntime } from './runtime-wiring.js'
import { processIdOf } from './process-id.js'
import {
  allStreamsMetadata,
  keyQueryMetadata,
  storeStreamsMetadata,
  type KeyQueryMetadata,
  type StreamsMetadata,
} from './query-metadata.js'
import { StateMachine, type KafkaStreamsState, type StateListener } from './state.js'
import type { EngineRuntime, StateRuntime } from './state-runtime.js'
import { storeView, type StoreQueryParameters } from './store-query.js'
import { StreamThread } from './stream-thread.js'
import { KafkajsClient } from './client/kafkajs.js'
import type { StreamsClient } from './client/types.js'
import type { RuntimeTestHooks } from './runtime/commit.js'
import {
  RunUntilCaughtUp,
  runClientUntilCaughtUp,
  type RunUntilCaughtUpOptions,
  type RunUntilCaughtUpResult,
} from './runtime/run-until-caught-up.js'
import { StreamsMetrics, type ClientMetrics } from '../metrics/streams-metrics.js'
import type { Metric, MetricName, MetricsSource } from '../metrics/types.js'
import { streamsHealth, type HealthOptions, type StreamsHealth } from './health.js'

/** What the uncaught exception handler answers (Kafka Streams: `StreamThreadExceptionResponse`). */
export type StreamThreadExceptionResponse = 'REPLACE_THREAD' | 'SHUTDOWN_CLIENT' | 'SHUTDOWN_APPLICATION'

/** Decides what happens after a fatal processing error (Kafka Streams: `StreamsUncaughtExceptionHandler`). */
export type StreamsUncaughtExceptionHandler = (error: Error) => StreamThreadExceptionResponse

/** Anything that resolves to a {@link TopologyDef} (the DSL's `Topology`). */
export interface TopologyLike {
  resolve(applicationId: string): TopologyDef
}

export type { HostInfo, KeyQueryMetadata, StreamsMetadata } from './query-metadata.js'
export type { StoreQueryParameters } from './store-query.js'

/** Test seams and advanced wiring (not needed by applications). */
export interface KafkaStreamsInternals {
  readonly engine?: EngineRuntime
  readonly state?: StateRuntime
  /** Hooks for tests (crash injection at the commit points); production code never sets them. */
  readonly testHooks?: RuntimeTestHooks
}

export class KafkaStreams extends EventEmitter implements MetricsSource {
  readonly config: ResolvedStreamsConfig
  readonly #topology: TopologyLike
  readonly #internals: KafkaStreamsInternals
  readonly #sm: StateMachine
  #def: TopologyDef | undefined
  #client: StreamsClient | undefined
  #thread: StreamThread | undefined
  #global: GlobalStreamThread | undefined
  #handler: StreamsUncaughtExceptionHandler | undefined
  #closing: Promise<void> | undefined
  #partitionCounts = new Map<string, number>()
  #engine: EngineRuntime | undefined
  #state: StateRuntime | undefined
  /** This instance's process id (Kafka Streams: `processId`), kept in the state directory across restarts. */
  #processId: string | undefined
  readonly #metrics: StreamsMetrics
  readonly #clientMetrics: ClientMetrics
  /** Stream threads started so far (names `<clientId>-StreamThread-<n>`, as Kafka Streams). */
  #threadCount = 0
  /** Set by {@link runUntilCaughtUp}: the run's targets and progress, shared by replaced threads. */
  #run: RunUntilCaughtUp | undefined
  #runReader: ChangelogReader | undefined

  /**
   * @param topology the built topology (`builder.build()`)
   * @param config see {@link StreamsConfig}
   * @throws StreamsConfigError for an invalid config (naming the key)
   */
  constructor(topology: TopologyLike, config: StreamsConfig, internals: KafkaStreamsInternals = {}) {
    super()
    this.config = resolveStreamsConfig(config)
    this.#topology = topology
    this.#internals = internals
    this.#sm = new StateMachine((n, o) => {
      this.config.logger.info(`state ${o} -> ${n}`)
      emitEvent(this, StreamsEvents.STATE_CHANGE, { newState: n, oldState: o })
    })
    // resolve early: topology errors surface in the constructor, as in Kafka Streams
    this.#def = topology.resolve(this.config.applicationId)
    this.#metrics = new StreamsMetrics({ clientId: this.config.clientId, recordingLevel: this.config.metricsRecordingLevel })
    this.#clientMetrics = this.#metrics.client({
      state: () => this.state,
      aliveStreamThreads: () => (this.#thread !== undefined && (this.state === 'RUNNING' || this.state === 'REBALANCING') ? 1 : 0),
    })
  }

  /**
   * A snapshot of this client's metrics (Kafka Streams: `KafkaStreams#metrics()`): client, thread,
   * task, processor-node and state-store metrics plus consumer lag, keyed by {@link MetricName}
   * (name, group, tags), with Kafka Streams' names and KIP-444 recording levels
   * (`metricsRecordingLevel`). Rates are per second, latencies in milliseconds. The client is a
   * {@link MetricsSource}: pass it to `createPrometheusScraper` or `registerOpenTelemetry`.
   * Find one metric with `metricValue(streams.metrics(), 'process-total', { 'thread-id': ... })`.
   */
  metrics(): ReadonlyMap<MetricName, Metric> {
    return this.#metrics.metrics()
  }

  /** The configured metrics recording level (read by the metrics exporters). */
  get recordingLevel(): StreamsMetrics['recordingLevel'] {
    return this.#metrics.recordingLevel
  }

  /**
   * Health for probes and dashboards: state, liveness (the processing loop iterates and the client
   * is not ERROR / PENDING_ERROR / NOT_RUNNING), readiness (RUNNING and every active task running,
   * i.e. restoration done), active tasks (running, restoring with progress, waiting on a retriable
   * error or a migration), the largest consumer lag and the age of the last commit. See
   * {@link StreamsHealth}. Cheap: reads in-memory state only.
   */
  health(options: HealthOptions = {}): StreamsHealth {
    const now = Date.now()
    return streamsHealth(this.state, this.#thread?.health(now), now, options)
  }

  /** The current lifecycle state. */
  get state(): KafkaStreamsState {
    return this.#sm.state
  }

  /** The resolved topology this client runs. */
  get topologyDef(): TopologyDef {
    return this.#def!
  }

  /** Registers a state listener; returns a function that removes it. */
  onStateChange(listener: StateListener): () => void {
    return this.#sm.addListener(listener)
  }

  /** Kafka Streams' name for {@link onStateChange} (replaces nothing; listeners accumulate). */
  setStateListener(listener: StateListener): void {
    this.#sm.addListener(listener)
  }

  /**
   * Sets what happens after a fatal error (a record failing with the `'fail'` handlers, a consumer
   * that cannot recover): `'REPLACE_THREAD'` restarts processing from the committed offsets,
   * `'SHUTDOWN_CLIENT'` (default) closes this client into ERROR, `'SHUTDOWN_APPLICATION'` asks
   * every instance of the application (through the group assignment) to shut down into ERROR.
   * @throws IllegalStateError unless the client is CREATED.
   */
  setUncaughtExceptionHandler(handler: StreamsUncaughtExceptionHandler): void {
    if (this.state !== 'CREATED') throw new IllegalStateError(`setUncaughtExceptionHandler is only allowed in CREATED, not ${this.state}`)
    this.#handler = handler
  }

  /** Resolves when the client reaches `state` (or rejects after `timeoutMs`, or when it reaches ERROR / NOT_RUNNING instead). */
  waitForState(state: KafkaStreamsState, timeoutMs = 60_000): Promise<void> {
    return this.#sm.waitFor(state, timeoutMs)
  }

  /**
   * Starts: creates internal topics (checking co-partitioning and existing partition counts),
   * bootstraps global stores, joins the group. Resolves once the consumer has joined; the client
   * is RUNNING when every assigned task has restored (see {@link waitForState}).
   * Pattern sources (`builder.stream(/regex/)`) read the topics matching when `start()` runs
   * (broker-internal `__` topics and this application's internal topics excluded); unlike Kafka
   * Streams, topics created later are picked up only at the next restart, and a pattern matching
   * no topic fails the start instead of waiting.
   * @throws IllegalStateError unless CREATED; StreamsConfigError / TopologyError for topic problems
   *   (the client then goes to ERROR), e.g. a StreamsConfigError naming a pattern that matches no topic.
   */
  async start(): Promise<void> {
    if (this.state !== 'CREATED') throw new IllegalStateError(`start() is only allowed in CREATED, not ${this.state}`)
    this.#sm.transition('REBALANCING')
    try {
      this.#engine = this.#internals.engine ?? (await defaultEngineRuntime())
      this.#state = this.#internals.state ?? defaultStateRuntime(this.config)
      const c = this.config
      const client = (this.#client = new KafkajsClient({
        config: c.kafka,
        logger: c.logger,
        logLevel: c.logLevel,
        partitionsFor: (topic) => this.#partitionCounts.get(topic),
      }))
      await client.connect()
      this.#def = await prepareTopics({
        admin: client.admin,
        topology: this.#def!,
        replicationFactor: c.replicationFactor,
        overrides: (kind) => internalTopicOverrides(c, kind),
        logger: c.logger,
        partitionCounts: this.#partitionCounts,
      })
      const def = this.#def
      if (def.globalStores.length) {
        this.#global = new GlobalStreamThread({
          config: c,
          topology: def,
          client,
          engine: this.#engine,
          state: this.#state,
          emitter: this,
          onFatal: (e) => this.#onFatal(e),
        })
        await this.#global.start()
      }
      await this.#startThread(undefined)
    } catch (e) {
      this.config.logger.error(`start failed: ${(e as Error).message}`, { error: e })
      if (this.#sm.tryTransition('PENDING_ERROR')) {
        await this.#shutdown(false)
        this.#sm.tryTransition('ERROR')
      }
      throw e
    }
  }

  /**
   * Runs until caught up, like Spark Structured Streaming's `Trigger.AvailableNow` (Kafka Streams
   * has no such mode): starts the client, reads the end offsets of the input topics' partitions
   * (the last stable offsets, read_committed), processes every record below them (records produced
   * later stay for the next run), optionally advances stream-time so windows close
   * (`advanceTimeTo`), commits, and closes the client once every task of this instance reached its
   * end. Repartition topics are drained level by level (see lib/app/runtime/run-until-caught-up.ts).
   *
   * Several instances can run at once: each resolves when the tasks it holds are done; tasks that
   * move in a rebalance are finished by their new owner (from the committed offsets), and an
   * instance leaving does not end the others' runs. For a CLI backfill: `await
   * streams.runUntilCaughtUp(); process.exit(0)`.
   *
   * @param options see {@link RunUntilCaughtUpOptions} (`advanceTimeTo`, `timeoutMs`, ms)
   * @returns the tasks this instance brought to their end and the run's duration (ms), once the
   *   client is NOT_RUNNING.
   * @throws IllegalStateError unless CREATED (at once); StreamsError when the client goes to ERROR,
   *   is closed from outside, or `timeoutMs` passes before the end (the client is closed then);
   *   the errors of {@link start}.
   * @example
   * ```ts
   * const streams = new KafkaStreams(builder.build(), { applicationId: 'nightly-backfill', bootstrapServers: 'localhost:9092' })
   * const { tasks, durationMs } = await streams.runUntilCaughtUp({ advanceTimeTo: 'wallClock' })
   * console.log(`${tasks.length} tasks caught up in ${durationMs} ms`)
   * ```
   */
  runUntilCaughtUp(options: RunUntilCaughtUpOptions = {}): Promise<RunUntilCaughtUpResult> {
    if (this.state !== 'CREATED') throw new IllegalStateError(`runUntilCaughtUp() is only allowed in CREATED, not ${this.state}`)
    const to = options.advanceTimeTo
    if (to !== undefined && to !== 'wallClock' && !(typeof to === 'number' && Number.isFinite(to) && to >= 0))
      throw new StreamsConfigError(`runUntilCaughtUp: advanceTimeTo must be 'wallClock' or an event time >= 0 (ms), got ${String(to)}`)
    const def = this.#def!
    const latest = new Set(
      def.subtopologies.flatMap((s) => s.nodes.flatMap((n) => (n.type === 'source' && n.offsetReset === 'latest' ? n.topics : []))),
    )
    this.#run = new RunUntilCaughtUp({
      topology: def,
      groupId: this.config.applicationId,
      kafka: () => {
        const c = this.#client
        if (!c) return undefined
        return { admin: c.admin, reader: (this.#runReader ??= c.changelogReader()) }
      },
      advanceTo: (now) => (to === 'wallClock' ? now - this.config.idleAdvanceDelayMs : to),
      resetOf: (topic) => (latest.has(topic) ? 'latest' : 'earliest'),
      logger: this.config.logger,
    })
    return runClientUntilCaughtUp(this, this.#run, options).finally(() => {
      void this.#runReader?.close().catch(() => undefined)
      this.#runReader = undefined
    })
  }

  async #startThread(shutdownRequest: string | undefined): Promise<void> {
    this.#processId ??= await processIdOf(this.config.stateDir, this.config.applicationId)
    const threadIdx = ++this.#threadCount
    const thread = new StreamThread({
      config: this.config,
      topology: this.#def!,
      client: this.#client!,
      testHooks: this.#internals.testHooks,
      transactionalId: `${this.config.applicationId}-${this.#processId}-${threadIdx}`,
      engine: this.#engine!,
      state: this.#state!,
      emitter: this,
      globalStores: this.#global ? (name) => this.#global!.store(name) : undefined,
      partitionsFor: (topic) => this.#partitionCounts.get(topic),
      onFatal: (e) => this.#onFatal(e),
      onStateHint: (s) => {
        if (this.state === 'RUNNING' || this.state === 'REBALANCING') this.#sm.tryTransition(s)
      },
      onShutdownRequested: (reason) => {
        this.config.logger.error(`application shutdown requested: ${reason}`)
        void this.#errorShutdown()
      },
      shutdownRequest,
      metrics: this.#metrics,
      threadId: `${this.config.clientId}-StreamThread-${threadIdx}`,
      runUntilCaughtUp: this.#run,
    })
    this.#thread = thread
    await thread.start()
  }

  #onFatal(error: Error): void {
    if (this.state !== 'RUNNING' && this.state !== 'REBALANCING') return
    this.#clientMetrics.failedStreamThreads.record()
    let response: StreamThreadExceptionResponse = 'SHUTDOWN_CLIENT'
    try {
      if (this.#handler) response = this.#handler(error)
    } catch (e) {
      this.config.logger.error(`uncaught exception handler threw: ${(e as Error).message}`)
    }
    this.config.logger.error(`fatal error, ${response}: ${error.message}`, { error })
    if (response === 'REPLACE_THREAD') {
      void (async () => {
        const old = this.#thread
        await old?.stop({ clean: false })
        if (this.state !== 'RUNNING' && this.state !== 'REBALANCING') return
        this.#sm.tryTransition('REBALANCING')
        await this.#startThread(undefined)
      })().catch((e) => {
        this.config.logger.error(`replacing the thread failed: ${(e as Error).message}`)
        void this.#errorShutdown()
      })
    } else if (response === 'SHUTDOWN_APPLICATION') {
      void (async () => {
        await this.#thread?.stop({ clean: false })
        // rejoin with a shutdown request: the leader relays it to every member
        await this.#startThread(`${this.config.clientId}: ${error.message}`)
      })().catch(() => void this.#errorShutdown())
    } else {
      void this.#errorShutdown()
    }
  }

  async #errorShutdown(): Promise<void> {
    if (!this.#sm.tryTransition('PENDING_ERROR')) return
    await this.#shutdown(false)
    this.#sm.tryTransition('ERROR')
  }

  async #shutdown(clean: boolean): Promise<void> {
    try {
      await this.#thread?.stop({ clean })
    } catch (e) {
      this.config.logger.warn(`stopping the stream thread failed: ${(e as Error).message}`)
    }
    this.#thread = undefined
    await this.#global?.stop().catch(() => undefined)
    this.#global = undefined
    await this.#client?.close().catch(() => undefined)
    this.#client = undefined
  }

  /**
   * Closes the client: commits, closes stores (with a checkpoint), leaves the group. Idempotent.
   * @param options.timeoutMs how long to wait for a graceful close; past it the method resolves
   *   `false` while the shutdown goes on in the background. @defaultValue no limit
   * @returns whether the client reached NOT_RUNNING within the timeout.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<boolean> {
    if (!this.#closing) {
      const from = this.state
      if (from === 'NOT_RUNNING') return true
      this.#closing = (async () => {
        if (this.state === 'PENDING_ERROR') await this.waitForState('ERROR').catch(() => undefined)
        this.#sm.transition('PENDING_SHUTDOWN')
        await this.#shutdown(from !== 'ERROR')
        this.#sm.transition('NOT_RUNNING')
      })()
    }
    if (options.timeoutMs === undefined) {
      await this.#closing
      return true
    }
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), options.timeoutMs)))
    const done = await Promise.race([this.#closing.then(() => true), timedOut])
    clearTimeout(timer)
    return done
  }

  /**
   * Deletes this application's local state directory (`<stateDir>/<applicationId>`), as Kafka
   * Streams' `cleanUp()`: the next start restores everything from the changelogs.
   * @throws IllegalStateError while the client is running (only CREATED, NOT_RUNNING or ERROR).
   */
  async cleanUp(): Promise<void> {
    if (this.state !== 'CREATED' && this.state !== 'NOT_RUNNING' && this.state !== 'ERROR') {
      throw new IllegalStateError(`cleanUp() is only allowed while not running, not in ${this.state}`)
    }
    await fs.rm(path.join(this.config.stateDir, this.config.applicationId), { recursive: true, force: true })
  }

  /**
   * A read-only view of a local state store for interactive queries (all of this instance's active
   * tasks holding it, one task with `partition`, or the global store of that name). Its kind
   * (key-value, window, session, versioned) comes from the store's definition in the topology; cast
   * it to `QueryableKeyValueStore`, `QueryableWindowStore`, `QueryableSessionStore` or
   * `ReadOnlyVersionedKeyValueStore`. Values of timestamped stores (DSL tables and aggregates) come
   * back plain unless `withTimestamps` is set (then as `{ value, timestamp }`). Key-value ranges are
   * merged across tasks in key-byte order.
   * @throws InvalidStateStoreError at once for a store name the topology does not have; when
   *   queried, if no local RUNNING task holds the store (or the partition's task).
   */
  store<S extends StateStore = QueryableStore>(name: string, options: StoreQueryParameters = {}): S {
    const sources = {
      global: (n: string) => this.#global?.store(n),
      tasks: () => (this.#thread && (this.state === 'RUNNING' || this.state === 'REBALANCING') ? this.#thread.tasks : undefined),
    }
    return storeView(this.#def, this.config, sources, name, options) as unknown as S
  }

  /**
   * Finds the instance that holds `key` of store `storeName` (Kafka Streams:
   * `queryMetadataForKey(storeName, key, keySerializer[, partitioner])`, KIP-535): the key's
   * partition is computed as the producer's default partitioner does (murmur2 of the serialized
   * key; pass `partitioner` when the store's input was written with a custom one), and its task's
   * active and standby instances come from the last assignment. For a global store every instance
   * holds the key: `activeHost` is this instance's `applicationServer`.
   * @param keySerializer serializes the key as the store's input topic was keyed (usually the store's key serde)
   * @returns the metadata; `activeHost` is undefined while it is not known (before the first
   *   assignment, during a rebalance), so callers retry later.
   * @throws InvalidStateStoreError for a store name the topology does not have.
   */
  queryMetadataForKey<K>(
    storeName: string,
    key: K,
    keySerializer: Pick<Serde<K>, 'serialize'>,
    partitioner?: (key: K, numPartitions: number) => number,
  ): KeyQueryMetadata {
    const ctx = {
      def: this.#def,
      applicationServer: this.config.applicationServer,
      partitionsFor: (topic: string) => this.#partitionCounts.get(topic),
      all: () => this.metadataForAllStreamsClients(),
    }
    return keyQueryMetadata(ctx, storeName, key, keySerializer, partitioner)
  }

  /**
   * The clients holding store `storeName` in an active or standby task (Kafka Streams:
   * `streamsMetadataForStore`); for a global store, every client.
   * @throws InvalidStateStoreError for a store name the topology does not have.
   */
  streamsMetadataForStore(storeName: string): StreamsMetadata[] {
    return storeStreamsMetadata(this.#def, () => this.metadataForAllStreamsClients(), storeName)
  }

  /**
   * Every client of the application with its `applicationServer` host:port and the tasks, stores
   * and partitions it holds, from the last assignment (Kafka Streams: `metadataForAllStreamsClients`).
   */
  metadataForAllStreamsClients(): StreamsMetadata[] {
    return allStreamsMetadata(this.#thread?.groupView, this.#def)
  }

  /** Same as {@link metadataForAllStreamsClients}. */
  get allMetadata(): StreamsMetadata[] {
    return this.metadataForAllStreamsClients()
  }

  /** Active task ids on this instance (RUNNING or restoring). */
  activeTaskIds(): string[] {
    return [...(this.#thread?.tasks.keys() ?? [])].sort()
  }

  /** Standby task ids on this instance. */
  standbyTaskIds(): string[] {
    return [...(this.#thread?.standbyIds() ?? [])].sort()
  }
}
