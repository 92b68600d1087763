/**
 * The processing unit of a client (Kafka Streams: `StreamThread` + `TaskManager`): ONE kafkajs
 * consumer (group = applicationId, our task assignor, auto-commit off, read_committed), the active
 * and standby tasks, the processing loop and THE commit path.
 *
 * ## How records flow (design)
 * kafkajs' run loop calls `eachBatch` once per fetched partition batch, and fetches again only when
 * every batch of the previous fetch was handled. Processing inside `eachBatch` would serialize
 * fetching and processing and could not order records ACROSS partitions of a task (each call sees
 * one partition). So:
 * - `eachBatch` only converts the batch and appends it to the owning task's partition queue, then
 *   resolves the batch's last offset (= advances the fetch position; nothing is committed) and
 *   returns. A queue over `bufferedRecordsPerPartition` pauses its partition (kafkajs drops paused
 *   partitions' fetched data at once), so memory stays bounded whatever the input rate; it resumes
 *   when the queue drains below half.
 * - a processing loop (this class) repeatedly takes, per RUNNING task, up to {@link BATCH} records
 *   in timestamp order across the task's queues (`maxTaskIdleMs` semantics), awaits the engine's
 *   `prepareBatch` once, processes them, runs wall-clock punctuators, and commits every
 *   `commitIntervalMs` (or when a store or processor asks). It yields to the event loop after every
 *   task batch so kafkajs keeps fetching and heartbeating while we process.
 *
 * ## Commit path (one for both guarantees)
 * per task: `stateManager.prepareCommit(collector)` (cache → changelog records) → produce the task's
 * collected sink + changelog + dead-letter records (batched `sendBatch`, acks=-1, idempotent) →
 * commit the consumed offsets (last processed + 1) → `stateManager.commitLocal(changelog end
 * offsets)` (LevelDB batch + checkpoint). At-least-once: an idempotent producer per task and one
 * `commitOffsets` for all tasks. Exactly-once (EOS-alpha): each task has a transactional producer
 * (`<applicationId>-<taskId>`); produce + `sendOffsets` + `commit` form one transaction, and local
 * state is written only after the commit, so it never reflects an aborted transaction.
 *
 * ## Rebalances
 * kafkajs has no revocation callback. On `consumer.rebalancing` the loop commits everything at once
 * (the group still accepts commits of the old generation while it prepares the rebalance); on
 * `consumer.group_join` the loop closes revoked tasks (committing what is left, releasing LevelDB
 * locks) BEFORE it creates new ones. A new task, before it processes: (EOS) initialises its
 * transactional producer — fencing a zombie owner and waiting for its open transaction to finish —
 * then reads the group's committed offsets, restores its stores from the checkpoint to the end of
 * the changelogs (in the background: the consumer keeps heartbeating), and drops buffered records
 * below the committed offsets.
 */
import { EventEmitter } from 'node:events'
import fs from 'node:fs'
import path from 'node:path'
import { setImmediate as yieldImmediate } from 'node:timers/promises'
import type { Admin, Consumer, EachBatchPayload, Kafka, Producer, Transaction } from 'kafkajs'
import type { RawRecord, SubtopologyDef, TopologyDef } from '../../topology/engine/types.js'
import { ProcessorStateError, ProductionError, StreamsError, TaskMigratedError } from '../../topology/errors.js'
import { parseTaskId } from '../../topology/processor/types.js'
import type { StateStore } from '../../topology/state/types.js'
import type { ChangelogReader, TaskStateManager } from '../state/types.js'
import { decodeMemberAssignment, decodeMemberMetadata, type AssignmentInfo, type AssignorSubtopology, type SubscriptionInfo, createTaskAssignor } from './assignor.js'
import { maybeCrash } from './crash.js'
import './kafkajs-fixes.js' // kafkajs read_committed fix (aborted transactions), applied on import
import { deserializationHandler, processingHandler, productionDecision } from './error-handlers.js'
import { backoffMs, classifyError, isStateLockedError } from './error-policy.js'
import { emitEvent, StreamsEvents } from './events.js'
import { changelogTopicName, type TopicLayout } from './internal-topics.js'
import type { ResolvedStreamsConfig } from './options.js'
import { PartitionSender } from './partition-send.js'
import { TaskRecordCollector, type BatchSender } from './record-collector.js'
import type { EngineRuntime, StateRuntime } from './state-runtime.js'
import type { RecordQueue } from './partition-group.js'
import { StreamTask, type TopicPartition } from './stream-task.js'

/** Records taken from one task per loop iteration. */
const BATCH = 500
/** Collector batches in flight per task before the loop waits for the producer. */
const MAX_PENDING_BATCHES = 4
/**
 * How long (ms) a task's collected output may wait before it is sent although the batch is not
 * full (Kafka Streams sets the producer's `linger.ms` to 100). Without it, output at low input
 * rates would wait for the next commit (`commitIntervalMs`, 30 s under at-least-once).
 */
const PRODUCER_LINGER_MS = 20
/** A positive lag learned from a fetch is trusted this long (ms) before the last stable offset is read (an open transaction keeps the high watermark above what read_committed can fetch). */
const LAG_TRUST_MS = 500
/** At most one ListOffsets round for empty partitions' lags per this many ms. */
const LAG_PROBE_INTERVAL_MS = 200
/** A task held back this long (ms) by an empty partition with records to fetch gets a warning (repeated at this interval). */
const LAG_WAIT_WARN_MS = 30_000

export interface StreamThreadOptions {
  readonly config: ResolvedStreamsConfig
  readonly topology: TopologyDef
  readonly layout: TopicLayout
  readonly kafka: Kafka
  readonly admin: Admin
  readonly engine: EngineRuntime
  readonly state: StateRuntime
  readonly emitter: EventEmitter
  readonly globalStores?: (name: string) => StateStore | undefined
  readonly partitionsFor: (topic: string) => number | undefined
  /** A fatal error: the client's uncaught-exception handler decides. */
  readonly onFatal: (error: Error) => void
  /** The thread's view: 'REBALANCING' (joining/restoring) or 'RUNNING' (all tasks running). */
  readonly onStateHint: (state: 'REBALANCING' | 'RUNNING') => void
  /** The leader relayed an application shutdown request or a fatal assignment error. */
  readonly onShutdownRequested: (reason: string) => void
  /** Set when this thread should ask the whole application to shut down (SHUTDOWN_APPLICATION). */
  readonly shutdownRequest?: string
}

interface StandbyTask {
  readonly id: string
  readonly stateManager: TaskStateManager
  readonly abort: AbortController
  running: Promise<void>
}

interface EosProducer {
  producer: Producer
  txn: Promise<Transaction> | undefined
  /** Sends each batch one topic-partition at a time (see partition-send.ts). */
  readonly sender: PartitionSender
}

/** Group membership view of the last assignment (for interactive-query metadata). */
export interface GroupView {
  readonly memberId: string
  readonly members: ReadonlyArray<{ memberId: string; host?: string; active: string[]; standby: string[] }>
}

export class StreamThread {
  readonly tasks = new Map<string, StreamTask>()
  readonly standbys = new Map<string, StandbyTask>()
  readonly #byPartition = new Map<string, StreamTask>()
  readonly #eos = new Map<string, EosProducer>()
  readonly #subByTopic = new Map<string, SubtopologyDef>()
  readonly #o: StreamThreadOptions
  readonly #c: ResolvedStreamsConfig
  #consumer: Consumer | undefined
  #reader: ChangelogReader | undefined
  #loop: Promise<void> | undefined
  #stopping = false
  #stopped = false
  #wake: (() => void) | undefined
  #pendingAssignment: { memberId: string; active: Set<string>; isLeader: boolean } | undefined
  #pendingStandby: Set<string> | undefined
  #commitSoon = false
  /** Standby tasks of the current assignment, and when a failed one is created again. */
  #standbyWanted = new Set<string>()
  readonly #standbyRetryAt = new Map<string, { at: number; attempts: number }>()
  #lastCommit = Date.now()
  #migrated = new Map<string, number>()
  /**
   * Tasks that hit a retriable error (KIP-572): since when they have been retrying, how often, and
   * when they are re-created next. An entry lives until the task commits again.
   */
  readonly #retrying = new Map<string, { since: number; attempts: number; nextAt: number | undefined; error: Error; lastAt: number }>()
  /**
   * When the group last confirmed our membership (a heartbeat or a join). A task that failed is
   * re-created only after a confirmation newer than its failure: an instance cut off from the
   * cluster must not revive tasks the group has meanwhile given to others (its producer's
   * initialisation would fence their real owners').
   */
  #memberConfirmedAt = 0
  /** Consumer restarts after a crash kafkajs does not recover from by itself. */
  #consumerRetry: { since: number; attempts: number } | undefined
  #consumerRestart: NodeJS.Timeout | undefined
  /** The kafkajs consumer crashed and is not running until it joins again (kafkajs' own restart or ours). */
  #consumerDown = false
  #memberId = ''
  #groupView: GroupView | undefined
  #lastStateHint: 'REBALANCING' | 'RUNNING' | undefined
  #fatal = false
  /** ListOffsets round in flight for empty partitions whose lag is unknown or stale (KIP-695). */
  #lagProbe: Promise<void> | undefined
  #lastLagProbe = 0
  /** Task id → since when (ms) it has been waiting for records of an empty partition. */
  readonly #waitingSince = new Map<string, number>()
  /** Active tasks in the current assignment (the store cache budget is split among them). */
  #assignedTasks = 1

  constructor(options: StreamThreadOptions) {
    this.#o = options
    this.#c = options.config
    for (const s of options.topology.subtopologies) for (const t of s.sourceTopics) this.#subByTopic.set(t, s)
  }

  get memberId(): string {
    return this.#memberId
  }

  get groupView(): GroupView | undefined {
    return this.#groupView
  }

  // ---------------------------------------------------------------------------------------------
  // start / stop
  // ---------------------------------------------------------------------------------------------

  /** Connects producer and consumer, subscribes and joins. Resolves after the first join. */
  async start(): Promise<void> {
    const { kafka, topology } = this.#o
    this.#reader = this.#o.state.createChangelogReader(kafka, this.#c.logger)
    const subs: AssignorSubtopology[] = topology.subtopologies
      .filter((s) => s.sourceTopics.length > 0)
      .map((s) => ({ id: s.id, sourceTopics: s.sourceTopics, stateful: s.stores.some((n) => topology.stores.get(n)?.loggingEnabled) }))
    const consumer = kafka.consumer({
      groupId: this.#c.applicationId,
      partitionAssigners: [
        createTaskAssignor({
          subtopologies: () => subs,
          numStandbyReplicas: () => this.#c.numStandbyReplicas,
          subscriptionInfo: () => this.#subscriptionInfo(),
        }),
      ],
      sessionTimeout: this.#c.sessionTimeoutMs,
      heartbeatInterval: this.#c.heartbeatIntervalMs,
      rebalanceTimeout: this.#c.rebalanceTimeoutMs,
      readUncommitted: false,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 250,
    })
    this.#consumer = consumer
    consumer.on(consumer.events.GROUP_JOIN, (e) => this.#onGroupJoin(e.payload))
    consumer.on(consumer.events.HEARTBEAT, () => {
      this.#memberConfirmedAt = Date.now()
    })
    consumer.on(consumer.events.REBALANCING, () => {
      emitEvent(this.#o.emitter, StreamsEvents.REBALANCE_START, { memberId: this.#memberId })
      this.#commitSoon = true
      this.#hint('REBALANCING')
      this.#wakeUp()
    })
    // kafkajs skips a fetched batch that holds only transaction markers / aborted records without
    // calling eachBatch; its offsets still move the fetch position (lag, consumed offsets)
    consumer.on(consumer.events.START_BATCH_PROCESS, (e) => {
      const b = e.payload
      if (b.batchSize !== 0 || b.firstOffset == null || b.lastOffset == null) return
      const task = this.#byPartition.get(StreamTask.key(b.topic, b.partition))
      if (!task || task.state !== 'RUNNING') return
      const q = task.group.queue(b.topic, b.partition)
      if (q?.onSkipped(BigInt(b.firstOffset), BigInt(b.lastOffset), b.highWatermark == null ? undefined : BigInt(b.highWatermark), Date.now())) {
        task.advanceDrained()
        this.#wakeUp()
      }
    })
    consumer.on(consumer.events.CRASH, (e) => {
      const { error, restart } = e.payload as unknown as { error: Error; restart: boolean }
      const err = error instanceof Error ? error : new Error(String(error))
      if (this.#stopping) return
      this.#consumerDown = true
      // kafkajs restarts its consumer after errors IT deems retriable; others (e.g. no group
      // coordinator found while the brokers are down) leave it disconnected: a retriable one by
      // our policy restarts it here, with backoff, for up to taskTimeoutMs
      if (restart) {
        this.#c.logger.warn(`consumer stopped (${err.name}: ${err.message}); kafkajs restarts it`, { error: err })
        this.#clearPausedMarks()
      } else if (classifyError(err) === 'retriable') this.#scheduleConsumerRestart(err)
      else {
        this.#c.logger.error(`consumer crashed: ${err.message}`, { error: err })
        this.#fail(err)
      }
    })
    await consumer.connect()
    const earliest: string[] = []
    const latest: string[] = []
    for (const s of topology.subtopologies) {
      for (const n of s.nodes) {
        if (n.type !== 'source') continue
        for (const t of n.topics) (n.offsetReset === 'latest' ? latest : earliest).push(t)
      }
    }
    if (earliest.length) await consumer.subscribe({ topics: [...new Set(earliest)], fromBeginning: true })
    if (latest.length) await consumer.subscribe({ topics: [...new Set(latest)], fromBeginning: false })
    this.#loop = this.#runLoop()
    await this.#runConsumer()
  }

  #runConsumer(): Promise<void> {
    return this.#consumer!.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.#eachBatch(payload),
    })
  }

  /** A restarted kafkajs consumer starts with nothing paused: forget our pause marks. */
  #clearPausedMarks(): void {
    for (const t of this.tasks.values()) t.paused.clear()
  }

  /** Starts the consumer again after a retriable crash kafkajs did not recover from (backoff, bounded by taskTimeoutMs). */
  #scheduleConsumerRestart(error: Error): void {
    const now = Date.now()
    const r = (this.#consumerRetry ??= { since: now, attempts: 0 })
    r.attempts++
    const waitedMs = now - r.since
    if (waitedMs >= this.#c.taskTimeoutMs) {
      this.#c.logger.error(`consumer failed with retriable errors for ${waitedMs} ms (taskTimeoutMs ${this.#c.taskTimeoutMs}): ${error.message}`, { error })
      this.#fail(new StreamsError(`the group consumer could not recover within taskTimeoutMs (${this.#c.taskTimeoutMs} ms): ${error.message}`, { cause: error }))
      return
    }
    const delay = backoffMs(r.attempts - 1, this.#c.retryBackoffMs, this.#c.retryBackoffMaxMs)
    this.#c.logger.warn(`consumer stopped on a retriable error (${error.name}: ${error.message}); restarting it in ${delay} ms (retrying for ${Math.round(waitedMs / 1000)} s, taskTimeoutMs ${this.#c.taskTimeoutMs})`, { error })
    emitEvent(this.#o.emitter, StreamsEvents.CONSUMER_RESTART, { error, attempt: r.attempts, waitedMs, backoffMs: delay })
    this.#clearPausedMarks()
    this.#hint('REBALANCING')
    clearTimeout(this.#consumerRestart)
    this.#consumerRestart = setTimeout(() => {
      this.#consumerRestart = undefined
      if (this.#stopping) return
      void (async () => {
        await this.#consumer!.connect()
        await this.#runConsumer()
      })().catch((e) => {
        const err = e instanceof Error ? e : new Error(String(e))
        if (this.#stopping) return
        if (classifyError(err) === 'retriable') this.#scheduleConsumerRestart(err)
        else this.#fail(err)
      })
    }, delay)
  }

  /** Stops processing, commits, closes tasks (releasing state locks), leaves the group. */
  async stop(options: { clean: boolean }): Promise<void> {
    if (this.#stopped) return
    this.#stopping = true
    clearTimeout(this.#consumerRestart)
    this.#wakeUp()
    await this.#loop?.catch(() => undefined)
    if (options.clean && !this.#fatal) {
      try {
        await this.#commitAll('close')
      } catch (e) {
        this.#c.logger.warn(`final commit failed: ${(e as Error).message}`, { error: e })
      }
    }
    for (const t of [...this.tasks.values()]) await this.#closeTask(t, { clean: options.clean && !this.#fatal, commit: false })
    for (const s of [...this.standbys.values()]) await this.#closeStandby(s)
    try {
      await this.#consumer?.disconnect()
    } catch (e) {
      this.#c.logger.warn(`consumer disconnect failed: ${(e as Error).message}`)
    }
    await this.#reader?.close().catch(() => undefined)
    this.#stopped = true
  }

  // ---------------------------------------------------------------------------------------------
  // consumer callbacks
  // ---------------------------------------------------------------------------------------------

  async #eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (!isRunning() || isStale() || batch.messages.length === 0) return
    const { topic, partition } = batch
    const task = this.#byPartition.get(StreamTask.key(topic, partition))
    if (!task || task.state === 'CLOSED') return // not ours (any more): leave unresolved
    if (task.state !== 'RUNNING') {
      // initializing (EOS producer, restore): whatever we buffered now would be dropped when the
      // task seeks to its committed offsets, so leave it unresolved and stop fetching until then
      // (the end of #initTask resumes; fix by R3: see #resumeAll)
      this.#pauseForTask(task, topic, partition)
      return
    }
    const headers = (h: unknown) => (h ?? {}) as RawRecord['headers']
    const records: RawRecord[] = new Array(batch.messages.length)
    for (let i = 0; i < batch.messages.length; i++) {
      const m = batch.messages[i]!
      records[i] = { topic, partition, offset: m.offset, key: m.key ?? null, value: m.value ?? null, timestamp: Number(m.timestamp), headers: headers(m.headers) }
    }
    const size = task.enqueue(topic, partition, records)
    // the position after this batch (its trailing markers included) and the partition's end: its lag
    task.group.queue(topic, partition)?.onFetched(BigInt(batch.lastOffset()), BigInt(batch.highWatermark), Date.now())
    resolveOffset(batch.messages[batch.messages.length - 1]!.offset)
    const k = StreamTask.key(topic, partition)
    if (size >= this.#c.bufferedRecordsPerPartition && !task.paused.has(k)) {
      this.#pauseForTask(task, topic, partition)
      emitEvent(this.#o.emitter, StreamsEvents.PAUSE, { topic, partition, buffered: size })
    }
    this.#wakeUp()
    await heartbeat()
  }

  #onGroupJoin(payload: { memberId: string; isLeader: boolean; memberAssignment: Record<string, number[]> }): void {
    this.#memberId = payload.memberId
    this.#consumerRetry = undefined
    this.#consumerDown = false
    this.#memberConfirmedAt = Date.now()
    const active = new Set<string>()
    for (const [topic, partitions] of Object.entries(payload.memberAssignment ?? {})) {
      const s = this.#subByTopic.get(topic)
      if (!s) continue
      for (const p of partitions) active.add(`${s.id}_${p}`)
    }
    this.#pendingAssignment = { memberId: payload.memberId, active, isLeader: payload.isLeader }
    this.#hint('REBALANCING')
    this.#wakeUp()
    void this.#refreshGroupInfo(payload.memberAssignment ?? {})
  }

  /** Reads our assignment userData (standby tasks, errors, shutdown) and everyone's host through DescribeGroups. */
  async #refreshGroupInfo(expected: Record<string, number[]>): Promise<void> {
    try {
      const d = await this.#consumer!.describeGroup()
      if (d.state !== 'Stable') return
      const members = d.members.map((m) => {
        const a = decodeMemberAssignment(m.memberAssignment)
        let host: string | undefined
        try {
          host = decodeMemberMetadata(m.memberMetadata)?.info.host
        } catch {
          host = undefined
        }
        return { memberId: m.memberId, host, active: [...(a?.info?.active ?? [])], standby: [...(a?.info?.standby ?? [])], partitions: a?.partitions, info: a?.info }
      })
      const me = members.find((m) => m.memberId === this.#memberId)
      if (!me || !samePartitions(me.partitions ?? {}, expected)) return
      this.#groupView = { memberId: this.#memberId, members: members.map(({ memberId, host, active, standby }) => ({ memberId, host, active, standby })) }
      const info: AssignmentInfo | undefined = me.info
      if (info?.error) {
        this.#fail(new StreamsError(`assignment failed: ${info.error}`))
        return
      }
      if (info?.shutdown) {
        this.#o.onShutdownRequested(info.shutdown)
        return
      }
      this.#pendingStandby = new Set(info?.standby ?? [])
      this.#wakeUp()
    } catch (e) {
      this.#c.logger.debug(`describeGroup failed: ${(e as Error).message}`)
    }
  }

  #subscriptionInfo(): SubscriptionInfo {
    const taskOffsets: Record<string, number> = {}
    try {
      const dir = path.join(this.#c.stateDir, this.#c.applicationId)
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory() && /^\d+_\d+$/.test(e.name)) taskOffsets[e.name] = 0
      }
    } catch {
      // no state directory yet
    }
    return {
      version: 1,
      host: this.#c.applicationServer ? `${this.#c.applicationServer.host}:${this.#c.applicationServer.port}` : undefined,
      prevActive: [...this.tasks.keys()],
      prevStandby: [...this.standbys.keys()],
      taskOffsets,
      shutdownRequested: this.#o.shutdownRequest,
    }
  }

  // ---------------------------------------------------------------------------------------------
  // the processing loop
  // ---------------------------------------------------------------------------------------------

  #wakeUp(): void {
    const w = this.#wake
    this.#wake = undefined
    w?.()
  }

  #hint(state: 'REBALANCING' | 'RUNNING'): void {
    if (this.#lastStateHint === state && state === 'RUNNING') return
    this.#lastStateHint = state
    this.#o.onStateHint(state)
  }

  async #runLoop(): Promise<void> {
    let current: StreamTask | undefined
    while (!this.#stopping) {
      try {
        if (this.#commitSoon) {
          this.#commitSoon = false
          await this.#commitAll('rebalance')
        }
        if (this.#pendingAssignment) await this.#applyAssignment()
        if (this.#pendingStandby) await this.#applyStandby()
        this.#reviveMigrated()
        const now = Date.now()
        this.#reviveRetrying(now)
        this.#reviveStandbys(now)
        let processed = 0
        for (const task of this.tasks.values()) {
          if (this.#stopping) break
          if (!task.processable(now)) continue
          current = task
          const collector = task.collector!
          if (collector.error !== undefined) await collector.flush()
          if (collector.pendingBatches >= MAX_PENDING_BATCHES) await collector.flush()
          processed += await task.process(BATCH, now)
          this.#maybeResume(task)
          current = undefined
          await yieldImmediate()
        }
        const after = Date.now()
        for (const task of this.tasks.values()) task.collector?.maybeLinger(after, PRODUCER_LINGER_MS)
        // a paused partition whose queue drained without this loop processing it (cleared on seek,
        // never processable) must be resumed here, or the task waits forever (fix by R3)
        for (const task of this.tasks.values()) if (task.state === 'RUNNING') this.#maybeResume(task)
        this.#checkLags(after)
        for (const task of this.tasks.values()) {
          if (task.state !== 'RUNNING' || after - task.lastWallClockPunctuation < 10) continue
          task.lastWallClockPunctuation = after
          current = task
          await task.engine!.punctuateWallClock(after)
          current = undefined
        }
        let requested = false
        for (const t of this.tasks.values()) if (t.commitRequested) requested = true
        if (requested || after - this.#lastCommit >= this.#c.commitIntervalMs) await this.#commitAll(requested ? 'requested' : 'interval')
        if (this.#allRunning()) this.#hint('RUNNING')
        if (processed === 0) await this.#waitForWork()
      } catch (e) {
        await this.#handleLoopError(e, current)
        current = undefined
      }
    }
  }

  /**
   * KIP-695 support: finds empty partitions that hold a task with buffered records back because
   * their lag is unknown (nothing fetched since the task started or sought) or positive but stale,
   * and reads their last stable offsets (one ListOffsets round at a time, in the background); warns
   * about tasks waiting for records to be fetched for a long time.
   */
  #checkLags(now: number): void {
    if (this.#c.maxTaskIdleMs < 0) return
    const wanted: Array<{ task: StreamTask; q: RecordQueue; version: number }> = []
    for (const task of this.tasks.values()) {
      if (task.state !== 'RUNNING' || task.group.queues.length < 2 || task.group.size === 0) {
        this.#waitingSince.delete(task.id)
        continue
      }
      const blocker = task.group.blockedBy(now)
      if (blocker?.reason !== 'lag') {
        this.#waitingSince.delete(task.id)
        continue
      }
      const since = this.#waitingSince.get(task.id)
      if (since === undefined) this.#waitingSince.set(task.id, now)
      else if (now - since >= LAG_WAIT_WARN_MS) {
        const q = blocker.queue
        this.#c.logger.warn(
          `task ${task.id} has waited ${Math.round((now - since) / 1000)} s for records of ${q.topic}[${q.partition}] (position ${q.position ?? 'unknown'}, end ${q.endOffset ?? 'unknown'}, paused ${this.#consumer?.paused().some((t) => t.topic === q.topic && t.partitions.includes(q.partition)) ?? false}) before processing its other partitions`,
          { taskId: task.id, topic: q.topic, partition: q.partition },
        )
        this.#waitingSince.set(task.id, now)
      }
      for (const q of task.group.queues) {
        if (q.size > 0) continue
        const lag = q.fetchedLag()
        if (lag === 0n || (lag !== undefined && now - q.endKnownAt < LAG_TRUST_MS)) continue
        wanted.push({ task, q, version: q.version })
      }
    }
    if (wanted.length === 0 || this.#lagProbe || now - this.#lastLagProbe < LAG_PROBE_INTERVAL_MS) return
    this.#lastLagProbe = now
    const admin = this.#o.admin
    const topics = [...new Set(wanted.map((w) => w.q.topic))]
    this.#lagProbe = (async () => {
      // ListOffsets (read_committed: `high` is the last stable offset) of every partition of those topics
      const offsets = new Map<string, { high: string; low: string }>()
      for (const topic of topics) for (const o of await admin.fetchTopicOffsets(topic)) offsets.set(StreamTask.key(topic, o.partition), o)
      const t = Date.now()
      for (const w of wanted) {
        if (w.task.state !== 'RUNNING' || this.tasks.get(w.task.id) !== w.task) continue
        const o = offsets.get(StreamTask.key(w.q.topic, w.q.partition))
        if (!o) continue
        // no position yet (no committed offset, nothing fetched), or one below the log start: the
        // consumer starts at the reset position
        const reset = BigInt(this.#resetOf(w.q.topic) === 'latest' ? o.high : o.low)
        w.q.onEndOffset(BigInt(o.high), w.version, t, reset, BigInt(o.low))
      }
      this.#wakeUp()
    })()
      .catch((e) => this.#c.logger.debug(`reading end offsets for task idling failed: ${(e as Error).message}`))
      .finally(() => {
        this.#lagProbe = undefined
      })
  }

  #allRunning(): boolean {
    if (this.#pendingAssignment) return false
    for (const t of this.tasks.values()) if (t.state !== 'RUNNING') return false
    return true
  }

  async #waitForWork(): Promise<void> {
    const now = Date.now()
    let timeout = Math.min(100, Math.max(1, this.#lastCommit + this.#c.commitIntervalMs - now))
    for (const t of this.tasks.values()) {
      const d = t.group.idleDeadline()
      if (d !== undefined) timeout = Math.max(1, Math.min(timeout, d - now))
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined
        resolve()
      }, timeout)
      this.#wake = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }

  /** Pauses fetching from one of a task's partitions (remembered in `task.paused`, resumed by {@link #maybeResume} / {@link #resumeAll}). */
  #pauseForTask(task: StreamTask, topic: string, partition: number): void {
    const k = StreamTask.key(topic, partition)
    if (task.paused.has(k)) return
    task.paused.add(k)
    this.#pausePartitions([{ topic, partition }])
  }

  /** Resumes every partition the task paused. */
  #resumeAll(task: StreamTask): void {
    for (const k of [...task.paused]) {
      const [topic, p] = splitKey(k)
      task.paused.delete(k)
      this.#resumePartition(topic, p)
    }
  }

  /** Resumes one partition; a consumer that is down (restarting) has nothing paused. */
  #resumePartition(topic: string, partition: number): void {
    try {
      this.#consumer?.resume([{ topic, partitions: [partition] }])
    } catch {
      // not running or not assigned: nothing to resume
    }
  }

  /** Seeks one partition; a consumer that is down (restarting) starts from the committed offsets anyway. */
  #seek(topic: string, partition: number, offset: string): void {
    try {
      this.#consumer?.seek({ topic, partition, offset })
    } catch (e) {
      this.#c.logger.debug(`seek of ${topic}[${partition}] to ${offset} not applied: ${(e as Error).message}`)
    }
  }

  #maybeResume(task: StreamTask): void {
    if (task.paused.size === 0) return
    for (const k of [...task.paused]) {
      const [topic, p] = splitKey(k)
      const q = task.group.queue(topic, p)
      if (!q || q.size <= this.#c.bufferedRecordsPerPartition / 2) {
        task.paused.delete(k)
        this.#resumePartition(topic, p)
        emitEvent(this.#o.emitter, StreamsEvents.RESUME, { topic, partition: p, buffered: q?.size ?? 0 })
      }
    }
  }

  /**
   * An error that reached the loop. With a task (the error's place, or the task being processed):
   * that task is handled by {@link #onTaskError}. Without one: a retriable error is logged and the
   * loop goes on (whatever failed is attempted again in a later round); anything else is fatal.
   */
  async #handleLoopError(e: unknown, task: StreamTask | undefined): Promise<void> {
    const err = e instanceof Error ? e : new Error(String(e))
    const taskId = (err as StreamsError).place?.taskId ?? task?.id
    const t = taskId ? this.tasks.get(taskId) : undefined
    try {
      if (t) await this.#onTaskError(t, err)
      else if (classifyError(err) === 'fatal') throw err
      else this.#c.logger.warn(`retriable error, retrying: ${err.message}`, { error: err })
    } catch (fatal) {
      await this.#onFatal(fatal instanceof Error ? fatal : new Error(String(fatal)), taskId)
    }
  }

  /**
   * THE error policy of a task (one place for consume, process, serde, produce, commit, restore):
   * - task migrated (fenced producer, the group moved on): close it dirty, pause its partitions; it
   *   comes back with the next assignment (or after a session timeout without one);
   * - retriable (KIP-572): close it dirty — its open transaction aborted, uncommitted state and
   *   buffered output dropped, so it is back at its last commit — and re-create it after a backoff;
   *   past `taskTimeoutMs` of retrying the error is rethrown as fatal;
   * - anything else: close it dirty under exactly-once (its state may hold part of the failed
   *   work) and rethrow for the uncaught exception handler.
   * A task is never left running after a failed commit: whatever it processed since its last
   * commit is either committed with its offsets or rolled back with them.
   */
  async #onTaskError(t: StreamTask, err: Error): Promise<void> {
    const kind = classifyError(err)
    if (kind === 'task-migrated') {
      this.#c.logger.warn(`task ${t.id} migrated: ${err.message}; closing it dirty`, { taskId: t.id })
      emitEvent(this.#o.emitter, StreamsEvents.TASK_MIGRATED, { taskId: t.id, reason: err.message })
      await this.#closeTask(t, { clean: false, commit: false })
      this.#pausePartitions(t.partitions)
      this.#migrated.set(t.id, Date.now())
      return
    }
    if (kind === 'retriable') {
      const now = Date.now()
      const r = this.#retrying.get(t.id) ?? { since: now, attempts: 0, nextAt: undefined, error: err, lastAt: now }
      r.attempts++
      r.error = err
      r.lastAt = now
      this.#retrying.set(t.id, r)
      const waitedMs = now - r.since
      await this.#closeTask(t, { clean: false, commit: false })
      this.#pausePartitions(t.partitions)
      if (waitedMs >= this.#c.taskTimeoutMs) {
        this.#retrying.delete(t.id)
        throw new StreamsError(`task ${t.id} failed with retriable errors for ${waitedMs} ms, longer than taskTimeoutMs (${this.#c.taskTimeoutMs} ms); last error: ${err.message}`, { cause: err, place: { taskId: t.id } })
      }
      const delay = backoffMs(r.attempts - 1, this.#c.retryBackoffMs, this.#c.retryBackoffMaxMs)
      r.nextAt = now + delay
      this.#c.logger.warn(`task ${t.id}: retriable error (${err.name}: ${err.message}); back at its last commit, retrying in ${delay} ms (attempt ${r.attempts}, retrying for ${Math.round(waitedMs / 1000)} s of taskTimeoutMs ${Math.round(this.#c.taskTimeoutMs / 1000)} s)`, { taskId: t.id })
      emitEvent(this.#o.emitter, StreamsEvents.TASK_RETRY, { taskId: t.id, error: err, attempt: r.attempts, waitedMs, backoffMs: delay, taskTimeoutMs: this.#c.taskTimeoutMs })
      return
    }
    if (this.#c.exactlyOnce) await this.#closeTask(t, { clean: false, commit: false })
    throw err
  }

  /**
   * Fatal: commit what the healthy tasks processed (a failed task was closed dirty already under
   * exactly-once; under at-least-once the failing record's offset is not consumed), then hand the
   * error to the client's uncaught exception handler.
   */
  async #onFatal(err: Error, taskId: string | undefined): Promise<void> {
    if (this.#fatal) return
    this.#c.logger.error(`fatal error${taskId ? ` in task ${taskId}` : ''}: ${err.message}`, { error: err })
    emitEvent(this.#o.emitter, StreamsEvents.ERROR, { error: err, taskId })
    try {
      const healthy = [...this.tasks.values()].filter((x) => !(this.#c.exactlyOnce && x.id === taskId))
      await this.#commitTasks(healthy, { onError: 'close' })
    } catch (ce) {
      this.#c.logger.warn(`commit after fatal error failed: ${(ce as Error).message}`)
    }
    this.#fail(err)
  }

  /** Re-creates standby tasks that failed with a retriable error once their backoff has passed. */
  #reviveStandbys(now: number): void {
    for (const [id, r] of this.#standbyRetryAt) {
      if (now < r.at || this.standbys.has(id) || this.tasks.has(id)) continue
      if (!this.#standbyWanted.has(id)) {
        this.#standbyRetryAt.delete(id)
        continue
      }
      r.at = Number.POSITIVE_INFINITY
      this.#createStandby(id)
    }
  }

  /** Re-creates tasks whose retry backoff has passed (unless an assignment took them away or they exist again). */
  #reviveRetrying(now: number): void {
    if (this.#retrying.size === 0 || this.#consumerRestart !== undefined) return
    for (const [id, r] of this.#retrying) {
      if (r.nextAt === undefined || now < r.nextAt || this.tasks.has(id) || this.#memberConfirmedAt <= r.lastAt) continue
      r.nextAt = undefined
      this.#c.logger.info(`re-creating task ${id} after a retriable error (attempt ${r.attempts + 1})`, { taskId: id })
      this.#createTask(id, true)
    }
  }

  #fail(err: Error): void {
    if (this.#fatal) return
    this.#fatal = true
    this.#stopping = true
    this.#wakeUp()
    queueMicrotask(() => this.#o.onFatal(err))
  }

  // ---------------------------------------------------------------------------------------------
  // assignment: create / close tasks
  // ---------------------------------------------------------------------------------------------

  async #applyAssignment(): Promise<void> {
    const a = this.#pendingAssignment!
    this.#pendingAssignment = undefined
    this.#assignedTasks = Math.max(1, a.active.size)
    const revoked = [...this.tasks.values()].filter((t) => !a.active.has(t.id))
    for (const t of revoked) await this.#closeTask(t, { clean: true, commit: true })
    // a new assignment supersedes every migrated task: ours are created below, the others are not ours
    // (reviving one later would fence its real owner's producer)
    this.#migrated.clear()
    for (const id of this.#retrying.keys()) if (!a.active.has(id)) this.#retrying.delete(id)
    const created: string[] = []
    for (const id of a.active) {
      if (this.tasks.has(id)) continue
      const sb = this.standbys.get(id)
      if (sb) await this.#closeStandby(sb) // release its state for the active task
      this.#createTask(id)
      created.push(id)
    }
    emitEvent(this.#o.emitter, StreamsEvents.ASSIGNMENT, { memberId: a.memberId, active: [...a.active], standby: [...this.standbys.keys()], isLeader: a.isLeader })
    this.#c.logger.info('assignment', { memberId: a.memberId, active: [...a.active], created, revoked: revoked.map((t) => t.id) })
  }

  #createTask(id: string, revived = false): StreamTask {
    const taskId = parseTaskId(id)
    const sub = this.#o.topology.subtopologies.find((s) => s.id === taskId.subtopology)
    if (!sub) throw new StreamsError(`assigned unknown task ${id}`)
    const partitions: TopicPartition[] = sub.sourceTopics.map((topic) => ({ topic, partition: taskId.partition }))
    const task = new StreamTask({ id, taskId, subtopology: sub, partitions, maxTaskIdleMs: this.#c.maxTaskIdleMs, now: Date.now() })
    this.tasks.set(id, task)
    for (const p of partitions) this.#byPartition.set(StreamTask.key(p.topic, p.partition), task)
    try {
      this.#consumer?.resume(partitions.map((p) => ({ topic: p.topic, partitions: [p.partition] })))
    } catch {
      // not assigned (yet)
    }
    emitEvent(this.#o.emitter, StreamsEvents.TASK_CREATED, { taskId: id, standby: false })
    const init = this.#initTask(task, revived)
    // settles with the initialization itself (closing the task awaits it, also from the failure path below)
    task.initPromise = init.then(
      () => undefined,
      () => undefined,
    )
    void init.then(
      () => this.#wakeUp(),
      async (e) => {
        if (task.state === 'CLOSED') return
        const err = e instanceof Error ? e : new Error(String(e))
        this.#c.logger.warn(`task ${id} failed to initialize: ${err.message}`, { error: err, taskId: id })
        await this.#handleLoopError(err, task)
      },
    )
    return task
  }

  async #initTask(task: StreamTask, revived: boolean): Promise<void> {
    const c = this.#c
    const { topology, admin, kafka } = this.#o
    task.state = 'RESTORING'
    // 1. EOS: a transactional producer per task; InitProducerId fences the previous owner and
    //    waits for its open transaction to complete, so the offsets we read next are final.
    //    At-least-once: an idempotent producer per task as well — kafkajs sends an idempotent
    //    producer's requests to a broker one at a time, so per-task producers are what lets the
    //    tasks' outputs flow in parallel (measured: about 2x on a 4-partition stateless pipe).
    if (c.exactlyOnce) {
      const producer = kafka.producer({
        transactionalId: `${c.applicationId}-${task.id}`,
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
      })
      await producer.connect()
      this.#eos.set(task.id, { producer, txn: undefined, sender: new PartitionSender({ partitionsFor: this.#o.partitionsFor, transactional: true }) })
      const txn = await producer.transaction() // InitProducerId (fencing) + begin
      await txn.abort() // nothing registered: no request
      if (task.abort.signal.aborted) return
    } else {
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
      await producer.connect()
      this.#eos.set(task.id, { producer, txn: undefined, sender: new PartitionSender({ partitionsFor: this.#o.partitionsFor, transactional: false }) })
      if (task.abort.signal.aborted) return
    }
    // 2. committed offsets of the task's input partitions
    const committed = await fetchCommitted(admin, c.applicationId, task.partitions)
    // 3. state: open (retrying while another local owner still holds the lock), restore
    const sm = this.#o.state.createTaskStateManager({
      applicationId: c.applicationId,
      taskId: task.id,
      stateDir: c.stateDir,
      stores: task.subtopology.stores.map((n) => topology.stores.get(n)!).filter(Boolean),
      changelogTopicFor: (store) => (store.loggingEnabled ? (store.sourceChangelogTopic ?? changelogTopicName(c.applicationId, store.name)) : undefined),
      changelogPartition: task.taskId.partition,
      cacheMaxBytes: Math.floor(c.statestoreCacheMaxBytes / this.#assignedTasks),
      exactlyOnce: c.exactlyOnce,
      onCommitNeeded: () => {
        task.commitRequested = true
        this.#wakeUp()
      },
    })
    task.stateManager = sm
    await openWithRetry(sm, task.abort.signal, c.sessionTimeoutMs)
    await this.#restore(task.id, sm, task.abort.signal, (topic) => {
      const s = task.partitions.find((p) => p.topic === topic)
      return s ? committed.get(StreamTask.key(s.topic, s.partition)) : undefined
    })
    if (task.abort.signal.aborted) return
    // 4. engine
    const collector = new TaskRecordCollector({
      taskId: task.id,
      sender: () => this.#senderFor(task),
      onSendError: (e, records) => this.#onSendError(task, e, records),
    })
    task.collector = collector
    task.engine = this.#o.engine.createTaskEngine({
      topology,
      subtopology: task.subtopology,
      taskId: task.taskId,
      stores: sm.provider,
      collector,
      clock: Date.now,
      defaultKeySerde: c.defaultKeySerde,
      defaultValueSerde: c.defaultValueSerde,
      defaultTimestampExtractor: c.defaultTimestampExtractor,
      partitionsFor: this.#o.partitionsFor,
      deserializationExceptionHandler: deserializationHandler(c.deserializationExceptionHandler, () => collector, c.logger, (r, e) =>
        emitEvent(this.#o.emitter, StreamsEvents.RECORD_DROPPED, { reason: `deserialization: ${e.message}`, taskId: task.id, topic: r.topic, partition: r.partition, offset: r.offset }),
      ),
      processingExceptionHandler: processingHandler(c.processingExceptionHandler, c.logger),
      onDropped: (reason, place) => emitEvent(this.#o.emitter, StreamsEvents.RECORD_DROPPED, { reason, ...place }),
      onCommitRequested: () => {
        task.commitRequested = true
        this.#wakeUp()
      },
      globalStores: this.#o.globalStores,
    })
    await task.engine.init()
    if (task.abort.signal.aborted) return
    // 5. position: seek to the committed offsets, dropping whatever was buffered meanwhile (it
    //    may predate a zombie's last commit, or be ahead of it after a revival)
    for (const p of task.partitions) {
      const k = StreamTask.key(p.topic, p.partition)
      const off = committed.get(k)
      const q = task.group.queue(p.topic, p.partition)!
      if (off === undefined) {
        if (!revived) continue
        q.clear()
        q.onSeek(undefined)
        task.floor.delete(k)
        this.#seek(p.topic, p.partition, this.#resetOf(p.topic) === 'latest' ? '-1' : '-2')
        continue
      }
      task.committed.set(k, off)
      task.consumed.set(k, off)
      q.clear()
      q.onSeek(off)
      task.floor.set(k, off)
      this.#seek(p.topic, p.partition, off.toString())
    }
    // Partitions paused while initializing (see #eachBatch) fetch again, from the positions just
    // sought. Bug fixed by R3: a queue that overflowed during initialization paused its partition,
    // the queue was then cleared here, and nothing resumed the partition (resuming only happened
    // after processing, and an empty queue is never processed): the task stayed RUNNING at its
    // committed offset forever, silently (seen in the demo after a kill -9 and restart).
    this.#resumeAll(task)
    task.state = 'RUNNING'
    this.#c.logger.info(`task ${task.id} running`, { taskId: task.id })
  }

  /** Restores every changelog partition of a state manager from its checkpoint to the end. */
  async #restore(taskId: string, sm: TaskStateManager, signal: AbortSignal, sourceLimit: (topic: string) => bigint | undefined): Promise<void> {
    const parts = sm.changelogPartitions()
    if (parts.length === 0) return
    const reader = this.#reader!
    const ends = await reader.endOffsets(parts.map((p) => ({ topic: p.topic, partition: p.partition })))
    const checkpoints = sm.checkpointedOffsets()
    for (const p of parts) {
      if (signal.aborted) return
      let end = lookupOffset(ends, p.topic, p.partition)
      const limit = sourceLimit(p.topic)
      if (limit !== undefined && end !== undefined && limit < BigInt(end)) end = limit.toString()
      if (end === undefined) continue
      const from = checkpoints.get(p.topic)
      const fromN = from === undefined ? 0n : BigInt(from)
      if (fromN >= BigInt(end)) continue
      const total = Number(BigInt(end) - fromN)
      const started = Date.now()
      let restored = 0
      emitEvent(this.#o.emitter, StreamsEvents.RESTORE_START, { taskId, store: p.store, topic: p.topic, partition: p.partition, fromOffset: from, endOffset: end, total })
      this.#c.logger.info(`restoring ${p.topic}[${p.partition}] from ${from ?? 'beginning'} to ${end}`, { taskId })
      await reader.read(
        p.topic,
        p.partition,
        from,
        end,
        async (records, nextOffset) => {
          if (records.length) await sm.restoreBatch(p.topic, records)
          await sm.markRestored(p.topic, nextOffset)
          restored += records.length
          emitEvent(this.#o.emitter, StreamsEvents.RESTORE_PROGRESS, { taskId, topic: p.topic, partition: p.partition, restored, total })
        },
        signal,
      )
      emitEvent(this.#o.emitter, StreamsEvents.RESTORE_END, { taskId, topic: p.topic, partition: p.partition, restored, durationMs: Date.now() - started })
    }
  }

  /**
   * Closes a task. `commit`: commit what it processed first (revocation, clean close). `clean`:
   * close state with a checkpoint; otherwise drop uncommitted state.
   */
  async #closeTask(task: StreamTask, options: { clean: boolean; commit: boolean }): Promise<void> {
    if (task.state === 'CLOSED' && !this.tasks.has(task.id)) return
    let clean = options.clean
    const wasRunning = task.state === 'RUNNING'
    task.abort.abort()
    if (options.commit && wasRunning) {
      try {
        await this.#commitTasks([task], { onError: 'throw' })
      } catch (e) {
        this.#c.logger.warn(`commit of task ${task.id} on close failed: ${(e as Error).message}`, { taskId: task.id })
        clean = false
      }
    }
    task.state = 'CLOSED'
    await task.initPromise?.catch(() => undefined)
    this.tasks.delete(task.id)
    for (const p of task.partitions) {
      const k = StreamTask.key(p.topic, p.partition)
      if (this.#byPartition.get(k) === task) this.#byPartition.delete(k)
      if (task.paused.has(k)) this.#resumePartition(p.topic, p.partition)
    }
    const eos = this.#eos.get(task.id)
    if (!clean) {
      task.collector?.discard()
      if (eos?.txn) {
        try {
          await (await eos.txn).abort()
        } catch {
          // fenced or already ended
        }
        eos.txn = undefined
        eos.sender.endTransaction()
      }
      await task.stateManager?.abortUncommitted().catch(() => undefined)
    }
    try {
      await task.engine?.close()
    } catch (e) {
      this.#c.logger.warn(`closing processors of task ${task.id} failed: ${(e as Error).message}`)
    }
    try {
      await task.stateManager?.close({ clean })
    } catch (e) {
      this.#c.logger.warn(`closing state of task ${task.id} failed: ${(e as Error).message}`)
    }
    if (eos) {
      this.#eos.delete(task.id)
      await eos.producer.disconnect().catch(() => undefined)
    }
    emitEvent(this.#o.emitter, StreamsEvents.TASK_CLOSED, { taskId: task.id, standby: false, clean })
  }

  /** Tasks closed as migrated come back when the group still gives them to us (next join), or after a session timeout without rebalance. */
  #reviveMigrated(): void {
    if (this.#migrated.size === 0 || !this.#consumer) return
    const now = Date.now()
    for (const [id, at] of this.#migrated) {
      if (now - at < this.#c.sessionTimeoutMs || this.#memberConfirmedAt <= at) continue
      this.#migrated.delete(id)
      if (this.tasks.has(id)) continue
      this.#c.logger.info(`re-creating task ${id} (no rebalance moved it)`, { taskId: id })
      this.#createTask(id, true)
    }
  }

  #pausePartitions(partitions: ReadonlyArray<TopicPartition>): void {
    try {
      this.#consumer?.pause(partitions.map((p) => ({ topic: p.topic, partitions: [p.partition] })))
    } catch {
      // not assigned any more
    }
  }

  #resetOf(topic: string): 'earliest' | 'latest' {
    for (const s of this.#o.topology.subtopologies) for (const n of s.nodes) if (n.type === 'source' && n.topics.includes(topic)) return n.offsetReset ?? 'earliest'
    return 'earliest'
  }

  // ---------------------------------------------------------------------------------------------
  // standby tasks
  // ---------------------------------------------------------------------------------------------

  async #applyStandby(): Promise<void> {
    const want = this.#pendingStandby!
    this.#pendingStandby = undefined
    this.#standbyWanted = want
    this.#standbyRetryAt.clear()
    for (const s of [...this.standbys.values()]) if (!want.has(s.id) || this.tasks.has(s.id)) await this.#closeStandby(s)
    for (const id of want) {
      if (this.standbys.has(id) || this.tasks.has(id)) continue
      this.#createStandby(id)
    }
  }

  #createStandby(id: string): void {
    const c = this.#c
    const { topology } = this.#o
    const taskId = parseTaskId(id)
    const sub = topology.subtopologies.find((s) => s.id === taskId.subtopology)
    if (!sub) return
    const sm = this.#o.state.createTaskStateManager({
      applicationId: c.applicationId,
      taskId: id,
      stateDir: c.stateDir,
      stores: sub.stores.map((n) => topology.stores.get(n)!).filter((d) => d && d.loggingEnabled),
      changelogTopicFor: (store) => (store.loggingEnabled ? (store.sourceChangelogTopic ?? changelogTopicName(c.applicationId, store.name)) : undefined),
      changelogPartition: taskId.partition,
      cacheMaxBytes: 1024 * 1024,
      exactlyOnce: c.exactlyOnce,
    })
    const abort = new AbortController()
    const sb: StandbyTask = { id, stateManager: sm, abort, running: Promise.resolve() }
    this.standbys.set(id, sb)
    emitEvent(this.#o.emitter, StreamsEvents.TASK_CREATED, { taskId: id, standby: true })
    sb.running = (async () => {
      await openWithRetry(sm, abort.signal, c.sessionTimeoutMs)
      const reader = this.#reader!
      const checkpoints = sm.checkpointedOffsets()
      await Promise.all(
        sm.changelogPartitions().map((p) =>
          reader.read(
            p.topic,
            p.partition,
            checkpoints.get(p.topic),
            undefined,
            async (records, next) => {
              if (records.length) await sm.restoreBatch(p.topic, records)
              await sm.markRestored(p.topic, next)
            },
            abort.signal,
          ),
        ),
      )
    })().catch((e) => {
      if (abort.signal.aborted) return
      const err = asError(e)
      if (classifyError(err) === 'fatal') {
        c.logger.warn(`standby task ${id} failed: ${err.message}`, { taskId: id })
        return
      }
      // a standby only ever lags: retry it (backoff) for as long as it is assigned
      const prev = this.#standbyRetryAt.get(id)
      const attempts = (prev?.attempts ?? 0) + 1
      const delay = backoffMs(attempts - 1, c.retryBackoffMs, c.retryBackoffMaxMs)
      this.#standbyRetryAt.set(id, { at: Date.now() + delay, attempts })
      c.logger.warn(`standby task ${id}: retriable error (${err.message}); retrying in ${delay} ms`, { taskId: id })
      void this.#closeStandby(sb)
    })
  }

  async #closeStandby(sb: StandbyTask): Promise<void> {
    sb.abort.abort()
    await sb.running
    this.standbys.delete(sb.id)
    await sb.stateManager.close({ clean: true }).catch(() => undefined)
    emitEvent(this.#o.emitter, StreamsEvents.TASK_CLOSED, { taskId: sb.id, standby: true, clean: true })
  }

  // ---------------------------------------------------------------------------------------------
  // THE commit path
  // ---------------------------------------------------------------------------------------------

  #senderFor(task: StreamTask): BatchSender {
    const eos = this.#eos.get(task.id)
    if (!eos) return () => Promise.reject(new TaskMigratedError('no producer (task closed)', { place: { taskId: task.id } }))
    if (!this.#c.exactlyOnce) return (topicMessages) => eos.sender.send((tm) => eos.producer.sendBatch({ topicMessages: tm, acks: -1 }), topicMessages)
    return async (topicMessages) => {
      const txn = await this.#transaction(task)
      return eos.sender.send((tm) => txn.sendBatch({ topicMessages: tm, acks: -1 }), topicMessages)
    }
  }

  #transaction(task: StreamTask): Promise<Transaction> {
    const eos = this.#eos.get(task.id)
    if (!eos) return Promise.reject(new TaskMigratedError('no transactional producer (task closed)', { place: { taskId: task.id } }))
    eos.txn ??= eos.producer.transaction()
    return eos.txn
  }

  async #onSendError(task: StreamTask, e: unknown, records: ReadonlyArray<import('../../topology/engine/types.js').OutputRecord>): Promise<void> {
    // retriable and migration errors go to the task's error policy (it re-sends by re-processing);
    // the production exception handler decides only about records Kafka refused for good
    if (this.#c.exactlyOnce || classifyError(e) !== 'fatal') throw e
    const err = e instanceof Error ? e : new Error(String(e))
    if (this.#c.productionExceptionHandler === 'fail') {
      throw new ProductionError(`producing ${records.length} record(s) failed: ${err.message}`, { cause: e, place: { taskId: task.id, topic: records[0]?.topic } })
    }
    // per-record retry so the handler can skip only the bad ones
    const producer = this.#eos.get(task.id)?.producer
    if (!producer) throw e
    for (const r of records) {
      try {
        await producer.send({ topic: r.topic, acks: -1, messages: [{ key: r.key, value: r.value, timestamp: String(r.timestamp), headers: r.headers as never, partition: r.partition }] })
      } catch (re) {
        const rerr = re instanceof Error ? re : new Error(String(re))
        if (classifyError(rerr) !== 'fatal') throw re
        if (productionDecision(this.#c.productionExceptionHandler, rerr, r, task.id) === 'fail') {
          throw new ProductionError(`producing a record failed: ${rerr.message}`, { cause: re, place: { taskId: task.id, topic: r.topic, partition: r.partition } })
        }
        this.#c.logger.warn(`dropping output record that failed to produce: ${rerr.message}`, { taskId: task.id, topic: r.topic })
      }
    }
  }

  /** Commits every running task. */
  async #commitAll(reason: string): Promise<void> {
    this.#lastCommit = Date.now()
    const tasks = [...this.tasks.values()].filter((t) => t.state === 'RUNNING')
    if (tasks.length === 0) return
    this.#c.logger.debug(`commit (${reason})`, { tasks: tasks.map((t) => t.id) })
    await this.#commitTasks(tasks)
  }

  /**
   * Commits the given tasks: one transaction per task under exactly-once, one offset commit for all
   * under at-least-once. Every task's outcome is its own, and a task whose commit failed is dealt
   * with before this returns (`onError`):
   * - `'handle'` (default): {@link #onTaskError} — rolled back (migrated / retriable) or closed
   *   dirty and the first fatal error rethrown after every failed task was handled;
   * - `'close'`: closed dirty, nothing thrown (the fatal path, the client is going down anyway);
   * - `'throw'`: nothing handled, the first error thrown (the caller closes the task dirty).
   * So no later commit can carry offsets past records whose output did not commit.
   */
  async #commitTasks(all: ReadonlyArray<StreamTask>, options: { onError?: 'handle' | 'close' | 'throw' } = {}): Promise<void> {
    const tasks = all.filter((t) => t.state === 'RUNNING' && t.needsCommit())
    if (tasks.length === 0) return
    const started = Date.now()
    let failed: Array<{ t: StreamTask; e: Error }>
    let committed: StreamTask[]
    let records = 0
    let offsets = 0
    if (this.#c.exactlyOnce) {
      for (const t of tasks) records += t.collector!.sentSinceCommit
      const results = await Promise.allSettled(tasks.map((t) => this.#commitTaskEos(t)))
      failed = []
      committed = []
      results.forEach((r, i) => {
        if (r.status === 'rejected') failed.push({ t: tasks[i]!, e: asError(r.reason) })
        else {
          committed.push(tasks[i]!)
          offsets += r.value
        }
      })
    } else {
      ;({ failed, committed, records, offsets } = await this.#commitAtLeastOnce(tasks))
    }
    for (const t of committed) this.#retrying.delete(t.id)
    if (committed.length) emitEvent(this.#o.emitter, StreamsEvents.COMMIT, { taskIds: committed.map((t) => t.id), records, offsets, durationMs: Date.now() - started, transactional: this.#c.exactlyOnce })
    if (failed.length === 0) return
    const mode = options.onError ?? 'handle'
    if (mode === 'throw') throw failed[0]!.e
    let fatal: unknown
    for (const { t, e } of failed) {
      if (mode === 'close') {
        this.#c.logger.warn(`commit of task ${t.id} failed: ${e.message}; closing it dirty`, { taskId: t.id })
        await this.#closeTask(t, { clean: false, commit: false })
        continue
      }
      try {
        await this.#onTaskError(t, e)
      } catch (fe) {
        fatal ??= fe
      }
    }
    if (fatal !== undefined) throw fatal
  }

  /**
   * At-least-once: flush every task (store caches → changelog records, all output acknowledged),
   * then ONE offset commit for the tasks whose output is out, then their local state. A task whose
   * flush failed is reported as failed (its offsets are not committed). An offset commit refused
   * because the group is rebalancing or by a retriable error leaves the tasks dirty: the commit is
   * attempted again next time (the output is already out; re-processing would only duplicate it).
   */
  async #commitAtLeastOnce(tasks: ReadonlyArray<StreamTask>): Promise<{ failed: Array<{ t: StreamTask; e: Error }>; committed: StreamTask[]; records: number; offsets: number }> {
    const failed: Array<{ t: StreamTask; e: Error }> = []
    const flushed: StreamTask[] = []
    let records = 0
    const results = await Promise.allSettled(
      tasks.map(async (t) => {
        await t.stateManager!.prepareCommit(t.collector!)
        const n = t.collector!.sentSinceCommit
        await t.collector!.flush()
        return n
      }),
    )
    results.forEach((r, i) => {
      if (r.status === 'rejected') failed.push({ t: tasks[i]!, e: asError(r.reason) })
      else {
        flushed.push(tasks[i]!)
        records += r.value
      }
    })
    maybeCrash('after-send')
    const perTask = flushed.map((t) => ({ t, offsets: t.offsetsToCommit() }))
    const offsets = perTask.flatMap((x) => x.offsets)
    if (offsets.length && this.#consumerDown) {
      // the consumer is restarting: the output is out, the offsets are committed after it rejoined
      this.#c.logger.info('offset commit deferred: the consumer is restarting')
      return { failed, committed: [], records, offsets: 0 }
    }
    if (offsets.length) {
      try {
        await this.#consumer!.commitOffsets(offsets)
      } catch (e) {
        // the consumer crashed while the commit was on its way: as above
        const kind = this.#consumerDown ? 'retriable' : classifyError(e)
        if (kind === 'fatal') throw new StreamsError(`offset commit failed: ${(e as Error).message}`, { cause: e })
        // the group is rebalancing, or the coordinator is unavailable: keep the state dirty and
        // commit again later (after the join / next interval)
        this.#c.logger.info(`offset commit deferred (${kind}): ${(e as Error).message}`)
        return { failed, committed: [], records, offsets: 0 }
      }
    }
    maybeCrash('after-send-offsets')
    maybeCrash('after-commit')
    const committed: StreamTask[] = []
    for (const { t, offsets: o } of perTask) {
      t.markCommitted(o)
      try {
        await this.#commitLocal(t)
        committed.push(t)
      } catch (e) {
        failed.push({ t, e: asError(e) })
      }
    }
    return { failed, committed, records, offsets: offsets.length }
  }

  /**
   * Exactly-once commit of one task: its output and changelog records, its consumed offsets and
   * the commit in ONE transaction, then its local state. On any failure the open transaction is
   * aborted (when the producer still can) and the error is thrown for the task's error policy,
   * which rolls the task back: nothing of this attempt stays in memory or on disk.
   * @returns the number of offsets committed
   */
  async #commitTaskEos(t: StreamTask): Promise<number> {
    const place = { taskId: t.id }
    const eos = this.#eos.get(t.id)
    if (!eos) throw new TaskMigratedError('task has no producer', { place })
    try {
      await t.stateManager!.prepareCommit(t.collector!)
      const offsets = t.offsetsToCommit()
      if (t.collector!.sentSinceCommit === 0 && offsets.length === 0 && eos.txn === undefined) {
        // empty commit: no transaction
        t.markCommitted([])
        return 0
      }
      const txn = await this.#transaction(t)
      await t.collector!.flush()
      maybeCrash('after-send')
      if (offsets.length) {
        const byTopic = new Map<string, Array<{ partition: number; offset: string }>>()
        for (const o of offsets) {
          let l = byTopic.get(o.topic)
          if (!l) byTopic.set(o.topic, (l = []))
          l.push({ partition: o.partition, offset: o.offset })
        }
        await txn.sendOffsets({ consumerGroupId: this.#c.applicationId, topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })) })
      }
      maybeCrash('after-send-offsets')
      await txn.commit()
      eos.txn = undefined
      eos.sender.endTransaction()
      maybeCrash('after-commit')
      t.markCommitted(offsets)
      await this.#commitLocal(t)
      return offsets.length
    } catch (e) {
      if (eos.txn) {
        try {
          await (await eos.txn).abort()
        } catch {
          // fenced, or the outcome is unknown: the producer is discarded with the task, and the
          // next owner's InitProducerId aborts whatever is still open
        }
      }
      eos.txn = undefined
      eos.sender.endTransaction()
      if (e instanceof StreamsError) throw e
      throw new ProductionError(`transactional commit of task ${t.id} failed: ${(e as Error)?.message ?? e}`, { cause: e, place, retriable: classifyError(e) === 'retriable' })
    }
  }

  async #commitLocal(t: StreamTask): Promise<void> {
    const sm = t.stateManager!
    const ends = t.collector!.endOffsets(sm.changelogPartitions())
    // source-topic changelogs: the store reflects the input up to the consumed offset
    for (const p of sm.changelogPartitions()) {
      const consumed = t.consumed.get(StreamTask.key(p.topic, p.partition))
      if (consumed !== undefined && t.subtopology.sourceTopics.includes(p.topic)) ends.set(p.topic, consumed.toString())
    }
    if (process.env.KSTREAMS_CRASH_AT === 'during-local-write') {
      // crash injection (tests): exit while the LevelDB batch / checkpoint write is in flight
      const p = sm.commitLocal(ends)
      setImmediate(() => maybeCrash('during-local-write'))
      await p
    } else {
      await sm.commitLocal(ends)
    }
    t.collector!.resetCommitState()
  }
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e))
}

function splitKey(k: string): [string, number] {
  const i = k.lastIndexOf(':')
  return [k.slice(0, i), Number(k.slice(i + 1))]
}

function samePartitions(a: Record<string, number[]>, b: Record<string, number[]>): boolean {
  const norm = (x: Record<string, number[]>) =>
    Object.keys(x)
      .filter((k) => x[k]!.length > 0)
      .sort()
      .map((k) => `${k}:${[...x[k]!].sort((m, n) => m - n).join(',')}`)
      .join('|')
  return norm(a) === norm(b)
}


/** The ChangelogReader's endOffsets map may be keyed `topic:partition` or by topic. */
function lookupOffset(map: ReadonlyMap<string, string>, topic: string, partition: number): string | undefined {
  return map.get(`${topic}:${partition}`) ?? map.get(`${topic}-${partition}`) ?? map.get(topic)
}

/** Committed offsets of the group for the given partitions (`topic:partition → offset`). */
export async function fetchCommitted(admin: Admin, groupId: string, partitions: ReadonlyArray<TopicPartition>): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>()
  const topics = [...new Set(partitions.map((p) => p.topic))]
  if (topics.length === 0) return out
  const res = await admin.fetchOffsets({ groupId, topics })
  for (const t of res) {
    for (const p of t.partitions) {
      if (!partitions.some((x) => x.topic === t.topic && x.partition === p.partition)) continue
      if (p.offset !== '-1' && p.offset !== '') out.set(StreamTask.key(t.topic, p.partition), BigInt(p.offset))
    }
  }
  return out
}

async function openWithRetry(sm: TaskStateManager, signal: AbortSignal, maxWaitMs: number): Promise<void> {
  const deadline = Date.now() + maxWaitMs
  for (let attempt = 0; ; attempt++) {
    try {
      await sm.open()
      return
    } catch (e) {
      // LEVEL_LOCKED: another instance on this host; a retriable ProcessorStateError: a task of
      // this process still closing the same directory
      if (!(isStateLockedError(e) || classifyError(e) === 'retriable') || signal.aborted) throw e
      // still locked by a task of this process that is closing: retried by the task's error
      // policy (backoff, taskTimeoutMs) past this short wait
      if (Date.now() > deadline) throw new ProcessorStateError(`state directory still locked by another owner after ${maxWaitMs} ms`, { cause: e, retriable: true })
      await new Promise((r) => setTimeout(r, backoffMs(attempt, 50, 1000)))
    }
  }
}
