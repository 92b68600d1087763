/**
 * `KafkaStreams`: runs a topology inside this process, as one member of the application's group
 * (Kafka Streams: `KafkaStreams`).
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
import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import fs from 'node:fs/promises'
import path from 'node:path'
import { IllegalStateError, InvalidStateStoreError, StreamsConfigError, StreamsError } from '../../topology/errors.js'
import type { ChangelogReader } from '../state/types.js'
import type { TopologyDef } from '../../topology/engine/types.js'
import type { StateStore } from '../../topology/state/types.js'
import { emitEvent, StreamsEvents } from './events.js'
import { GlobalStreamThread } from './global-thread.js'
import { compositeStore, compositeVersionedStore, type QueryableStore } from './interactive-queries.js'
import { changelogTopicFor } from '../../topology/state/typed.js'
import { resolveSerde, type Serde } from '../../topology/serde.js'
import { defaultPartition } from './client/partition-send.js'
import { fetchPartitionCounts, prepareInternalTopics } from './internal-topics.js'
import { internalTopicOverrides, resolveStreamsConfig, type ResolvedStreamsConfig, type StreamsConfig } from './options.js'
import { defaultEngineRuntime, defaultStateRuntime } from './runtime-wiring.js'
import { resolvePatternSourcesWithAdmin } from './pattern-sources.js'
import { StateMachine, type KafkaStreamsState, type StateListener } from './state.js'
import type { EngineRuntime, StateRuntime } from './state-runtime.js'
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

/** Where a client runs and what it holds (Kafka Streams: `StreamsMetadata`). */
export interface StreamsMetadata {
  /** `host:port` from the member's `applicationServer`, or undefined if it has none. */
  readonly hostInfo: string | undefined
  readonly host: string | undefined
  readonly port: number | undefined
  readonly memberId: string
  /** Stores of the sub-topologies of its active tasks. */
  readonly stateStoreNames: ReadonlyArray<string>
  /** Stores of the sub-topologies of its standby tasks (Kafka Streams: `standbyStateStoreNames`). */
  readonly standbyStateStoreNames: ReadonlyArray<string>
  readonly activeTasks: ReadonlyArray<string>
  readonly standbyTasks: ReadonlyArray<string>
  readonly topicPartitions: ReadonlyArray<{ topic: string; partition: number }>
}

/** An instance's interactive-query endpoint, from its `applicationServer` config (Kafka Streams: `HostInfo`). */
export interface HostInfo {
  readonly host: string
  readonly port: number
}

/**
 * Where one key of a store lives (Kafka Streams: `KeyQueryMetadata`, KIP-535): the instance running
 * its active task, the instances holding standby replicas, and the partition.
 */
export interface KeyQueryMetadata {
  /**
   * The active task's instance; undefined when unknown: no assignment yet, a rebalance in progress,
   * or the owner has no `applicationServer` (Kafka Streams answers `KeyQueryMetadata.NOT_AVAILABLE`).
   */
  readonly activeHost: HostInfo | undefined
  /** Instances with a standby replica of the key's task (may serve stale reads). */
  readonly standbyHosts: ReadonlyArray<HostInfo>
  /** The key's partition (of the store's source topics), or -1 when the partition count is not known yet. */
  readonly partition: number
  /** The key's task id (`<subtopology>_<partition>`), or undefined for a global store or an unknown partition. */
  readonly taskId: string | undefined
}

/** Options of {@link KafkaStreams.store} (Kafka Streams: `StoreQueryParameters`). */
export interface StoreQueryParameters {
  /** Return values of timestamped stores as `{ value, timestamp }`. @defaultValue false */
  readonly withTimestamps?: boolean
  /** Query only the task of this partition (Kafka Streams: `withPartition`, KIP-562). @defaultValue all local tasks */
  readonly partition?: number
}

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
    if (this.state === state) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off()
        reject(new StreamsError(`timed out after ${timeoutMs} ms waiting for state ${state} (now ${this.state})`))
      }, timeoutMs)
      const off = this.onStateChange((n) => {
        if (n === state) {
          clearTimeout(timer)
          off()
          resolve()
        } else if ((n === 'ERROR' || n === 'NOT_RUNNING') && state !== 'ERROR' && state !== 'NOT_RUNNING') {
          clearTimeout(timer)
          off()
          reject(new StreamsError(`client went to ${n} while waiting for ${state}`))
        }
      })
    })
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
      // pattern sources read the topics matching at start (see pattern-sources.ts)
      this.#def = await resolvePatternSourcesWithAdmin(client.admin, this.#def!)
      const def = this.#def
      const layout = await prepareInternalTopics({
        admin: client.admin,
        topology: def,
        replicationFactor: c.replicationFactor,
        overrides: (kind) => internalTopicOverrides(c, kind),
        logger: c.logger,
      })
      for (const [t, n] of layout.partitions) this.#partitionCounts.set(t, n)
      const sinks = [...new Set(def.subtopologies.flatMap((s) => s.sinkTopics))].filter((t) => !this.#partitionCounts.has(t))
      for (const [t, n] of await fetchPartitionCounts(client.admin, sinks)) if (n !== undefined) this.#partitionCounts.set(t, n)
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
    const globalDef = this.#def?.globalStores.find((g) => g.store.name === name)?.store
    const def = this.#def?.stores.get(name) ?? globalDef
    if (!def) {
      throw new InvalidStateStoreError(`the topology has no state store named '${name}'`, { place: { store: name } })
    }
    const local = () => this.#localStores(name, options.partition)
    if (def.versioned !== undefined) return compositeVersionedStore(name, def.versioned.historyRetentionMs, local) as unknown as S
    return compositeStore(
      {
        name,
        type: def.type,
        keySerde: this.#storeKeySerde(name),
        serdeTopic: changelogTopicFor(this.config.applicationId, name),
        unwrapTimestamps: def.timestamped === true && !options.withTimestamps,
        persistent: def.persistent,
        windowSizeMs: def.windowSizeMs,
      },
      local,
    ) as unknown as S
  }

  /** The key serde of a store: its own, else the application's default key serde. */
  #storeKeySerde(name: string): Serde<any> | undefined {
    const def = this.#def?.stores.get(name) ?? this.#def?.globalStores.find((g) => g.store.name === name)?.store
    const c = this.config
    return resolveSerde(def?.keySerde, c.defaultKeySerde, {
      ...(c.defaultKeySerde ? { keySerde: c.defaultKeySerde } : {}),
      ...(c.defaultValueSerde ? { valueSerde: c.defaultValueSerde } : {}),
    })
  }

  #localStores(name: string, partition?: number): StateStore[] {
    const out: StateStore[] = []
    const g = this.#global?.store(name)
    if (g) return [g]
    if (!this.#thread || (this.state !== 'RUNNING' && this.state !== 'REBALANCING')) return out
    for (const [id, t] of this.#thread.tasks) {
      if (t.state !== 'RUNNING') continue
      if (partition !== undefined && Number(id.slice(id.indexOf('_') + 1)) !== partition) continue
      const s = t.engine?.getStateStore(name)
      if (s) out.push(s)
    }
    return out
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
    const def = this.#def
    if (def?.globalStores.some((g) => g.store.name === storeName)) {
      const me = this.config.applicationServer
      return { activeHost: me ? { host: me.host, port: me.port } : undefined, standbyHosts: [], partition: -1, taskId: undefined }
    }
    const sub = def?.subtopologies.find((s) => s.stores.includes(storeName))
    if (!def || !def.stores.has(storeName) || !sub) {
      throw new InvalidStateStoreError(`the topology has no state store named '${storeName}'`, { place: { store: storeName } })
    }
    const topic = sub.sourceTopics[0]
    const n = topic === undefined ? undefined : this.#partitionCounts.get(topic)
    if (!n) return { activeHost: undefined, standbyHosts: [], partition: -1, taskId: undefined }
    let partition: number
    if (partitioner) {
      partition = partitioner(key, n)
    } else {
      partition = defaultPartition(keySerializer.serialize(topic!, key), n)
    }
    const taskId = `${sub.id}_${partition}`
    let activeHost: HostInfo | undefined
    const standbyHosts: HostInfo[] = []
    for (const m of this.metadataForAllStreamsClients()) {
      if (m.host === undefined || m.port === undefined) continue
      if (m.activeTasks.includes(taskId)) activeHost = { host: m.host, port: m.port }
      else if (m.standbyTasks.includes(taskId)) standbyHosts.push({ host: m.host, port: m.port })
    }
    return { activeHost, standbyHosts, partition, taskId }
  }

  /**
   * The clients holding store `storeName` in an active or standby task (Kafka Streams:
   * `streamsMetadataForStore`); for a global store, every client.
   * @throws InvalidStateStoreError for a store name the topology does not have.
   */
  streamsMetadataForStore(storeName: string): StreamsMetadata[] {
    const def = this.#def
    const global = def?.globalStores.some((g) => g.store.name === storeName) === true
    if (!global && !def?.stores.has(storeName)) {
      throw new InvalidStateStoreError(`the topology has no state store named '${storeName}'`, { place: { store: storeName } })
    }
    const all = this.metadataForAllStreamsClients()
    return global ? all : all.filter((m) => m.stateStoreNames.includes(storeName) || m.standbyStateStoreNames.includes(storeName))
  }

  /**
   * Every client of the application with its `applicationServer` host:port and the tasks, stores
   * and partitions it holds, from the last assignment (Kafka Streams: `metadataForAllStreamsClients`).
   */
  metadataForAllStreamsClients(): StreamsMetadata[] {
    const view = this.#thread?.groupView
    const def = this.#def
    if (!view || !def) return []
    return view.members.map((m) => {
      const [host, port] = m.host
        ? [m.host.slice(0, m.host.lastIndexOf(':')), Number(m.host.slice(m.host.lastIndexOf(':') + 1))]
        : [undefined, undefined]
      const stores = new Set<string>()
      const standbyStores = new Set<string>()
      const tps: Array<{ topic: string; partition: number }> = []
      for (const t of m.active) {
        const [sid, p] = t.split('_').map(Number)
        const s = def.subtopologies.find((x) => x.id === sid)
        if (!s) continue
        for (const n of s.stores) stores.add(n)
        for (const topic of s.sourceTopics) tps.push({ topic, partition: p! })
      }
      for (const t of m.standby) {
        const s = def.subtopologies.find((x) => x.id === Number(t.split('_')[0]))
        for (const n of s?.stores ?? []) standbyStores.add(n)
      }
      return {
        hostInfo: m.host,
        host,
        port,
        memberId: m.memberId,
        stateStoreNames: [...stores],
        standbyStateStoreNames: [...standbyStores],
        activeTasks: m.active,
        standbyTasks: m.standby,
        topicPartitions: tps,
      }
    })
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

/**
 * The process id of the instance owning `<stateDir>/<applicationId>` (Kafka Streams keeps it in
 * the state directory's `kafka-streams-process-metadata`): the same across restarts, so a restarted
 * instance's thread producers (exactly-once v2: `<applicationId>-<processId>-<threadIdx>`) fence
 * those of its killed predecessor and abort their open transactions at once instead of after the
 * transaction timeout.
 */
async function processIdOf(stateDir: string, applicationId: string): Promise<string> {
  const dir = path.join(stateDir, applicationId)
  const file = path.join(dir, 'kafka-streams-process-metadata')
  try {
    const id = (JSON.parse(await fs.readFile(file, 'utf8')) as { processId?: unknown }).processId
    if (typeof id === 'string' && /^[0-9a-f-]{36}$/.test(id)) return id
  } catch {
    // none yet, or unreadable: a new one
  }
  const id = randomUUID()
  try {
    await fs.mkdir(dir, { recursive: true })
    await fs.writeFile(file, JSON.stringify({ processId: id }))
  } catch {
    // a read-only state directory: the id lives as long as the process
  }
  return id
}
