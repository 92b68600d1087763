/**
 * Initialization of an active task, CREATED → RUNNING (Kafka Streams: `StreamTask#initializeIfNeeded`
 * + `completeRestoration`):
 * 1. its producer: under exactly-once v2 the thread's transactional producer (shared by all tasks;
 *    the previous owner is fenced by the group generation instead); under exactly-once a
 *    transactional producer (`<applicationId>-<taskId>`) whose InitProducerId fences a previous
 *    owner and waits for its open transaction to end; under both, step 2 reads the offsets with
 *    `require_stable`, waiting for a pending transaction's offsets, so they are final; under at-least-once an idempotent producer per task (kafkajs
 *    sends an idempotent producer's requests one at a time, so per-task producers let the tasks'
 *    outputs flow in parallel);
 * 2. the group's committed offsets of its input partitions;
 * 3. its state: open, restore from each store's position to the end of its changelog;
 * 4. its collector and engine;
 * 5. its position: seek to the committed offsets, dropping whatever was buffered meanwhile.
 * Whatever this created is closed again when it fails or is aborted (the task was closed meanwhile).
 */
import type { EventEmitter } from 'node:events'
import type { OutputRecord, TopologyDef } from '../../../topology/engine/types.js'
import { ProductionError } from '../../../topology/errors.js'
import type { TaskId } from '../../../topology/processor/types.js'
import type { StateStore } from '../../../topology/state/types.js'
import { RecordCache } from '../../../topology/state/caching.js'
import { meteredStoreProvider } from '../../state/metered.js'
import type { TaskStateManager } from '../../state/types.js'
import type { GroupConsumer, ProduceHeaders, StreamsClient, TaskProducer, TransactionalProducer } from '../client/types.js'
import { deserializationHandler, processingHandler, productionDecision } from '../error-handlers.js'
import { classifyError } from '../error-policy.js'
import { emitEvent, StreamsEvents } from '../events.js'
import { changelogTopicName } from '../internal-topics.js'
import type { ResolvedStreamsConfig } from '../options.js'
import { TaskRecordCollector } from '../record-collector.js'
import type { EngineRuntime, StateRuntime } from '../state-runtime.js'
import { StreamTask } from '../stream-task.js'
import { decodeStreamTime } from './offset-metadata.js'
import type { PartitionFlow } from './partition-flow.js'
import type { RestoreCoordinator, RestoreObserver } from './restore.js'
import type { ThreadProducerHolder } from './thread-producer.js'

/** Creates the state manager of a task (active or standby); undefined for an unknown sub-topology. */
export type TaskStateFactory = (
  taskId: TaskId,
  options: { standby: boolean; cacheMaxBytes?: number; onCommitNeeded?: () => void },
) => TaskStateManager | undefined

/** The {@link TaskStateFactory} of a topology on a state runtime. */
export function taskStateFactory(c: ResolvedStreamsConfig, topology: TopologyDef, state: StateRuntime): TaskStateFactory {
  return (taskId, options) => {
    const sub = topology.subtopologies.find((s) => s.id === taskId.subtopology)
    if (!sub) return undefined
    const defs = sub.stores.map((n) => topology.stores.get(n)!).filter(Boolean)
    return state.createTaskStateManager({
      applicationId: c.applicationId,
      taskId: `${taskId.subtopology}_${taskId.partition}`,
      stateDir: c.stateDir,
      stores: options.standby ? defs.filter((d) => d.loggingEnabled) : defs,
      changelogTopicFor: (store) =>
        store.loggingEnabled ? (store.sourceChangelogTopic ?? changelogTopicName(c.applicationId, store.name)) : undefined,
      changelogPartition: taskId.partition,
      cacheMaxBytes: options.cacheMaxBytes ?? 1024 * 1024,
      exactlyOnce: c.exactlyOnce,
      onCommitNeeded: options.onCommitNeeded,
    })
  }
}

/**
 * The record cache budget (KIP-63) of an application instance: one per resolved config, which all
 * stream threads of an instance share, so all its tasks share `statestoreCacheMaxBytes`.
 */
const recordCaches = new WeakMap<ResolvedStreamsConfig, RecordCache>()

/** The record cache of the instance that `config` belongs to. */
export function recordCacheOf(config: ResolvedStreamsConfig): RecordCache {
  let cache = recordCaches.get(config)
  if (cache === undefined) recordCaches.set(config, (cache = new RecordCache(config.statestoreCacheMaxBytes)))
  return cache
}

export interface TaskInitializerOptions {
  readonly config: ResolvedStreamsConfig
  readonly topology: TopologyDef
  readonly client: StreamsClient
  readonly engine: EngineRuntime
  readonly stateFactory: TaskStateFactory
  readonly restore: RestoreCoordinator
  readonly flow: PartitionFlow
  readonly emitter: EventEmitter
  readonly partitionsFor: (topic: string) => number | undefined
  readonly globalStores?: (name: string) => StateStore | undefined
  /** The store cache budget of one task (the total split among the assigned tasks). */
  readonly cacheMaxBytes: () => number
  /** The task asked for a commit, or has become RUNNING: the loop should look at it. */
  readonly wakeUp: () => void
  /** Exactly-once v2: the thread's producer. */
  readonly eosV2?: { readonly producer: ThreadProducerHolder }
  /** The group consumer: under exactly-once the committed offsets are read through it with require_stable. */
  readonly consumer: Pick<GroupConsumer, 'committedOffsetsStable'>
}

export class TaskInitializer {
  constructor(private readonly o: TaskInitializerOptions) {}

  /** Where a source topic starts without a committed offset. */
  resetOf(topic: string): 'earliest' | 'latest' {
    for (const s of this.o.topology.subtopologies)
      for (const n of s.nodes) if (n.type === 'source' && n.topics.includes(topic)) return n.offsetReset ?? 'earliest'
    return 'earliest'
  }

  /**
   * Initializes `task` (RESTORING → RUNNING). Resolves without running it when `task.abort` fired.
   * @param revived re-created after a failure: a partition without a committed offset goes back to its reset position
   */
  async init(task: StreamTask, revived: boolean): Promise<void> {
    const { config: c, client } = this.o
    const signal = task.abort.signal
    task.markRestoring()
    let producer: TaskProducer | undefined
    let sm: TaskStateManager | undefined
    try {
      let transactional: TransactionalProducer | undefined
      const v2 = this.o.eosV2
      if (v2) {
        producer = v2.producer.taskProducer
      } else if (c.exactlyOnce) {
        producer = transactional = await client.transactionalProducer(`${c.applicationId}-${task.id}`)
        await transactional.init()
      } else {
        producer = await client.taskProducer()
      }
      if (signal.aborted) return await this.#discard(producer, sm)
      // exactly-once: offsets a transaction committed may still be pending in the group coordinator
      // after the transaction ended (Kafka 4's coordinator applies the marker asynchronously), and a
      // plain OffsetFetch answers the older offset meanwhile (Kafka Streams' read_committed consumer
      // fetches with require_stable too)
      const committed = c.exactlyOnce
        ? await this.o.consumer.committedOffsetsStable(task.partitions)
        : await client.admin.committedOffsets(c.applicationId, task.partitions)
      let committedStreamTime = -1
      for (const m of (await client.admin.committedMetadata?.(c.applicationId, task.partitions))?.values() ?? []) {
        committedStreamTime = Math.max(committedStreamTime, decodeStreamTime(m) ?? -1)
      }
      sm = this.o.stateFactory(task.taskId, {
        standby: false,
        cacheMaxBytes: this.o.cacheMaxBytes(),
        onCommitNeeded: () => {
          task.commitRequested = true
          this.o.wakeUp()
        },
      })!
      await sm.open()
      const restored = await this.o.restore.restore(
        task.id,
        sm,
        signal,
        (topic) => {
          const s = task.partitions.find((p) => p.topic === topic)
          return s ? committed.get(StreamTask.key(s.topic, s.partition)) : undefined
        },
        this.#restoreObserver(task),
      )
      task.restoreProgress = undefined
      if (!restored || signal.aborted) return await this.#discard(producer, sm)
      const taskProducer = producer
      const collector = new TaskRecordCollector({
        taskId: task.id,
        sender: () => (batch) => taskProducer.send(batch),
        onSendError: (e, records) => this.#onSendError(task, taskProducer, e, records),
      })
      // the metered stores are created before the engine that answers their question
      const engineRef: { current?: { currentRecordTimestamp?(): number | undefined } } = {}
      const engine = this.o.engine.createTaskEngine({
        topology: this.o.topology,
        subtopology: task.subtopology,
        taskId: task.taskId,
        // the metered store layer records DEBUG sensors only: at INFO the stores are not wrapped
        stores: task.metrics?.debugEnabled
          ? meteredStoreProvider(sm.provider, task.metrics, () => engineRef.current?.currentRecordTimestamp?.())
          : sm.provider,
        collector,
        clock: Date.now,
        defaultKeySerde: c.defaultKeySerde,
        defaultValueSerde: c.defaultValueSerde,
        defaultTimestampExtractor: c.defaultTimestampExtractor,
        partitionsFor: this.o.partitionsFor,
        deserializationExceptionHandler: deserializationHandler(
          c.deserializationExceptionHandler,
          () => collector,
          c.logger,
          (r, e) =>
            emitEvent(this.o.emitter, StreamsEvents.RECORD_DROPPED, {
              reason: `deserialization: ${e.message}`,
              taskId: task.id,
              topic: r.topic,
              partition: r.partition,
              offset: r.offset,
            }),
        ),
        processingExceptionHandler: processingHandler(c.processingExceptionHandler, c.logger),
        onDropped: (reason, place) => emitEvent(this.o.emitter, StreamsEvents.RECORD_DROPPED, { reason, ...place }),
        onCommitRequested: () => {
          task.commitRequested = true
          this.o.wakeUp()
        },
        globalStores: this.o.globalStores,
        metrics: task.metrics,
        recordCache: recordCacheOf(c),
      })
      engineRef.current = engine
      task.metrics?.activeBufferCount(() => task.group.size)
      try {
        await engine.init()
        // the committed stream-time (it may have moved without records: idle advance) is where the
        // task resumes; what it closed was emitted and committed with it, so this emits nothing
        // under exactly-once, and what a crash left unsent under at-least-once
        if (committedStreamTime >= 0) await engine.advanceStreamTime(committedStreamTime)
        task.committedStreamTime = committedStreamTime
      } catch (e) {
        await engine.close().catch(() => undefined)
        throw e
      }
      if (signal.aborted) {
        await engine.close().catch(() => undefined)
        return await this.#discard(producer, sm)
      }
      this.#seekCommitted(task, committed, revived)
      task.initialize({ engine, stateManager: sm, collector, producer, transactional })
    } catch (e) {
      await this.#discard(producer, sm)
      throw e
    }
    // partitions paused while initializing fetch again, from the positions just sought (a queue
    // cleared by the seek is never processed, so nothing else would resume them)
    this.o.flow.resumeAll(task)
    c.logger.info(`task ${task.id} running`, { taskId: task.id })
  }

  /** Restoration progress goes to the task (for health) and its KIP-869 metrics. */
  #restoreObserver(task: StreamTask): RestoreObserver {
    const m = task.metrics
    const progress = { restored: 0, remaining: 0, total: 0 }
    task.restoreProgress = progress
    const observer: RestoreObserver = {
      restored: m?.restore,
      remainingGauge: m ? (remaining) => m.restoreRemainingRecords(remaining) : undefined,
      progress,
    }
    return observer
  }

  /** Position: the committed offsets; buffered records may predate a zombie's last commit, or be ahead of it after a revival. */
  #seekCommitted(task: StreamTask, committed: ReadonlyMap<string, bigint>, revived: boolean): void {
    for (const p of task.partitions) {
      const k = StreamTask.key(p.topic, p.partition)
      const off = committed.get(k)
      const q = task.group.queue(p.topic, p.partition)!
      if (off === undefined) {
        if (!revived) continue
        q.clear()
        q.onSeek(undefined)
        task.floor.delete(k)
        this.o.flow.seek(p, this.resetOf(p.topic) === 'latest' ? '-1' : '-2')
        continue
      }
      task.committed.set(k, off)
      task.consumed.set(k, off)
      q.clear()
      q.onSeek(off)
      task.floor.set(k, off)
      this.o.flow.seek(p, off.toString())
    }
  }

  async #discard(producer: TaskProducer | undefined, sm: TaskStateManager | undefined): Promise<void> {
    if (sm) {
      await sm.abortUncommitted().catch(() => undefined)
      await sm.close({ clean: false }).catch(() => undefined)
    }
    if (producer) {
      await (producer as Partial<TransactionalProducer>).abort?.().catch(() => undefined)
      await producer.close()
    }
  }

  /**
   * A collector batch failed. Retriable and migration errors (and every error under exactly-once)
   * go to the task's error policy, which re-sends by re-processing; the production exception
   * handler decides only about records Kafka refused for good (at-least-once), record by record.
   */
  async #onSendError(task: StreamTask, producer: TaskProducer, e: unknown, records: ReadonlyArray<OutputRecord>): Promise<void> {
    const c = this.o.config
    if (c.exactlyOnce || classifyError(e) !== 'fatal') throw e
    const err = e instanceof Error ? e : new Error(String(e))
    if (c.productionExceptionHandler === 'fail') {
      throw new ProductionError(`producing ${records.length} record(s) failed: ${err.message}`, {
        cause: e,
        place: { taskId: task.id, topic: records[0]?.topic },
      })
    }
    for (const r of records) {
      try {
        await producer.send([
          {
            topic: r.topic,
            messages: [
              { key: r.key, value: r.value, timestamp: String(r.timestamp), headers: r.headers as ProduceHeaders, partition: r.partition },
            ],
          },
        ])
      } catch (re) {
        const rerr = re instanceof Error ? re : new Error(String(re))
        if (classifyError(rerr) !== 'fatal') throw re
        if (productionDecision(c.productionExceptionHandler, rerr, r, task.id) === 'fail') {
          throw new ProductionError(`producing a record failed: ${rerr.message}`, {
            cause: re,
            place: { taskId: task.id, topic: r.topic, partition: r.partition },
          })
        }
        c.logger.warn(`dropping output record that failed to produce: ${rerr.message}`, { taskId: task.id, topic: r.topic })
      }
    }
  }
}
