/**
 * The processing loop of a client (Kafka Streams: `StreamThread#runLoop`). It owns the group
 * consumer's callbacks and the loop; everything else is delegated:
 * - {@link TaskManager}: tasks, assignment, task creation/close/revival, THE error policy, commits
 *   through the {@link CommitStrategy} of the processing guarantee;
 * - {@link TaskInitializer} / {@link RestoreCoordinator}: a task's producer, offsets, state restore;
 * - {@link StandbyManager}: standby replicas; {@link GroupMembership}: the group consumer, what this
 *   member tells the group and reads back from it, consumer restarts;
 * - {@link PartitionFlow}: pause / resume / seek (backpressure); {@link LagProbe}: KIP-695 lags.
 * All Kafka access goes through the {@link StreamsClient} adapter.
 *
 * ## How records flow
 * The consumer hands over each fetched partition batch; it is appended to the owning task's
 * partition queue and its offset resolved (the fetch position moves; nothing is committed). The
 * loop repeatedly takes, per RUNNING task, up to {@link BATCH} records in timestamp order across
 * the task's queues (`maxTaskIdleMs` semantics), processes them, runs wall-clock punctuators, and
 * commits every `commitIntervalMs` (or when a store or processor asks). It yields to the event loop
 * after every task batch so the consumer keeps fetching and heartbeating while we process.
 *
 * ## Rebalances
 * The consumer has no revocation callback: when a rebalance starts the loop commits everything
 * (the group still accepts commits of the old generation while it prepares the rebalance); after
 * the join it closes revoked tasks (committing what is left, releasing state locks) BEFORE it
 * creates new ones. A consumer that crashed left the group: its tasks are closed dirty (lost) at
 * once, and the assignment of its rejoin creates them afresh from the committed offsets.
 */
import { randomUUID } from 'node:crypto'
import type { EventEmitter } from 'node:events'
import { setImmediate as yieldImmediate } from 'node:timers/promises'
import type { TopologyDef } from '../../topology/engine/types.js'
import type { StateStore } from '../../topology/state/types.js'
import type { ChangelogReader } from '../state/types.js'
import type {
  ConsumerGroupMetadata,
  FetchedBatch,
  GroupConsumer,
  GroupConsumerListener,
  GroupJoin,
  SkippedBatch,
  StreamsClient,
} from './client/types.js'
import { classifyError } from './error-policy.js'
import { emitEvent, StreamsEvents } from './events.js'
import type { ResolvedStreamsConfig } from './options.js'
import { AtLeastOnceCommit, ExactlyOnceCommit, ExactlyOnceV2Commit, type RuntimeTestHooks } from './runtime/commit.js'
import { GroupMembership, type GroupView } from './runtime/group-membership.js'
import { LagProbe } from './runtime/lag-probe.js'
import { PartitionFlow } from './runtime/partition-flow.js'
import { RestoreCoordinator } from './runtime/restore.js'
import type { RunUntilCaughtUp } from './runtime/run-until-caught-up.js'
import { StandbyManager } from './runtime/standby-manager.js'
import { changelogsBySubtopology } from './runtime/task-changelogs.js'
import { TaskInitializer, taskStateFactory } from './runtime/task-initializer.js'
import { TaskOffsetSums } from './runtime/task-offset-sums.js'
import { TaskManager } from './runtime/task-manager.js'
import { ThreadProducerHolder } from './runtime/thread-producer.js'
import type { EngineRuntime, StateRuntime } from './state-runtime.js'
import type { StreamTask } from './stream-task.js'
import { parseTaskId } from '../../topology/processor/types.js'
import { StreamsMetrics, type ConsumerLagMetrics, type ThreadMetrics } from '../metrics/streams-metrics.js'
import type { TaskHealth, ThreadHealth } from './health.js'

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

export interface StreamThreadOptions {
  readonly config: ResolvedStreamsConfig
  readonly topology: TopologyDef
  readonly client: StreamsClient
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
  /** Internal: hooks for tests (crash injection in the commit path). */
  readonly testHooks?: RuntimeTestHooks
  /**
   * Exactly-once v2: this thread's transactional id, `<applicationId>-<processId>-<threadIdx>` as in
   * Kafka Streams. @defaultValue `<applicationId>-<random UUID>-1`
   */
  readonly transactionalId?: string
  /** The client's metrics. @defaultValue metrics of this thread alone (client id, `metricsRecordingLevel`) */
  readonly metrics?: StreamsMetrics
  /** The `thread-id` tag (Kafka Streams: `<clientId>-StreamThread-<n>`). @defaultValue `<clientId>-StreamThread-1` */
  readonly threadId?: string
  /** A run until caught up (`KafkaStreams.runUntilCaughtUp`): bounds the input and tells when the tasks reached their end. */
  readonly runUntilCaughtUp?: RunUntilCaughtUp
}

export type { GroupView } from './runtime/group-membership.js'

export class StreamThread {
  readonly #o: StreamThreadOptions
  readonly #c: ResolvedStreamsConfig
  readonly #membership: GroupMembership
  readonly #consumer: GroupConsumer
  readonly #reader: ChangelogReader
  readonly #flow: PartitionFlow
  readonly #manager: TaskManager
  readonly #standbys: StandbyManager
  readonly #lags: LagProbe
  readonly #offsetSums: TaskOffsetSums
  #loop: Promise<void> | undefined
  #stopping = false
  #stopped = false
  #fatal = false
  #wake: (() => void) | undefined
  #pendingAssignment: { memberId: string; generationId: number; active: Set<string>; isLeader: boolean } | undefined
  /** Exactly-once v2: the thread's producer, and the group metadata of the assignment applied last. */
  readonly #threadProducer: ThreadProducerHolder | undefined
  #group: ConsumerGroupMetadata | undefined
  #pendingStandby: Set<string> | undefined
  #commitSoon = false
  #lastCommit = Date.now()
  #lastStateHint: 'REBALANCING' | 'RUNNING' | undefined
  /** The consumer crashed and left the group: the loop closes the active tasks (see TaskManager.closeLost). */
  #lost = false
  readonly #metrics: ThreadMetrics
  readonly #lag: ConsumerLagMetrics
  /** When the loop last iterated (ms epoch), for liveness. */
  #loopAt: number | undefined

  constructor(options: StreamThreadOptions) {
    this.#o = options
    const c = (this.#c = options.config)
    const { topology, client, emitter } = options
    const streamsMetrics = options.metrics ?? new StreamsMetrics({ clientId: c.clientId, recordingLevel: c.metricsRecordingLevel })
    const threadId = options.threadId ?? `${c.clientId}-StreamThread-1`
    this.#metrics = streamsMetrics.thread(threadId)
    this.#lag = streamsMetrics.consumerLag()
    const changelogs = changelogsBySubtopology(topology, c.applicationId)
    this.#offsetSums = new TaskOffsetSums({
      running: (id) => this.#manager.tasks.get(id)?.state === 'RUNNING',
      persistentChangelogs: (id) =>
        new Set((changelogs.get(parseTaskId(id).subtopology) ?? []).filter((l) => l.persistent).map((l) => l.topic)),
    })
    this.#membership = new GroupMembership({
      config: c,
      topology,
      client,
      emitter,
      activeTasks: () => [...this.#manager.tasks.keys()],
      standbyTasks: () => this.#standbys.ids(),
      taskOffsetSums: () => this.#offsetSums.sums(),
      shutdownRequest: options.shutdownRequest,
      onStandbyAssignment: (ids) => {
        this.#pendingStandby = ids
        this.#wakeUp()
      },
      onShutdownRequested: (reason) => options.onShutdownRequested(reason),
      onConsumerRestart: () => this.#membershipLost(),
      fail: (e) => this.#fail(e),
      stopping: () => this.#stopping,
    })
    this.#consumer = this.#membership.consumer
    this.#reader = client.changelogReader()
    const wakeUp = () => this.#wakeUp()
    this.#flow = new PartitionFlow(this.#consumer, emitter, c.bufferedRecordsPerPartition)
    const restore = new RestoreCoordinator({ reader: this.#reader, emitter, logger: c.logger })
    const stateFactory = this.#offsetSums.track(taskStateFactory(c, topology, options.state))
    this.#standbys = new StandbyManager({ config: c, stateFactory, restore, emitter, isActive: (id) => this.#manager.tasks.has(id) })
    this.#threadProducer = c.exactlyOnceV2
      ? new ThreadProducerHolder(client, options.transactionalId ?? `${c.applicationId}-${randomUUID()}-1`, c.logger)
      : undefined
    const initializer = new TaskInitializer({
      eosV2: this.#threadProducer ? { producer: this.#threadProducer, consumer: this.#consumer } : undefined,
      config: c,
      topology,
      client,
      engine: options.engine,
      stateFactory,
      restore,
      flow: this.#flow,
      emitter,
      partitionsFor: options.partitionsFor,
      globalStores: options.globalStores,
      cacheMaxBytes: () => this.#manager.cacheMaxBytes(),
      wakeUp,
    })
    const hooks = options.testHooks
    const threadProducer = this.#threadProducer
    this.#manager = new TaskManager({
      config: c,
      topology,
      initializer,
      commit: threadProducer
        ? new ExactlyOnceV2Commit({
            producer: threadProducer,
            groupMetadata: () => this.#group,
            tasks: () => [...this.#manager.tasks.values()].filter((t) => t.state === 'RUNNING'),
            hooks,
          })
        : c.exactlyOnce
          ? new ExactlyOnceCommit({ groupId: c.applicationId, hooks })
          : new AtLeastOnceCommit({ consumer: this.#consumer, logger: c.logger, hooks }),
      threadProducer,
      flow: this.#flow,
      standbys: this.#standbys,
      emitter,
      wakeUp,
      fail: (e) => this.#fail(e),
      failed: () => this.#fatal,
      consumerDown: () => this.#membership.restarting,
      memberConfirmedAt: () => this.#membership.confirmedAt,
      metrics: {
        thread: this.#metrics,
        task: (id) => streamsMetrics.task(threadId, id),
        partitionsReleased: (ps) => {
          for (const p of ps) this.#lag.remove(p.topic, p.partition)
        },
      },
    })
    this.#lags = new LagProbe({
      admin: client.admin,
      flow: this.#flow,
      logger: c.logger,
      maxTaskIdleMs: c.maxTaskIdleMs,
      idleAdvance: c.idleAdvanceMs >= 0,
      taskOf: (id) => this.#manager.tasks.get(id),
      resetOf: (topic) => initializer.resetOf(topic),
      wakeUp,
    })
  }

  get memberId(): string {
    return this.#membership.memberId
  }

  get groupView(): GroupView | undefined {
    return this.#membership.view
  }

  /** Active tasks by id. */
  get tasks(): ReadonlyMap<string, StreamTask> {
    return this.#manager.tasks
  }

  standbyIds(): string[] {
    return this.#standbys.ids()
  }

  /** Tasks, lag, last commit and loop activity for {@link KafkaStreams.health}. */
  health(now: number): ThreadHealth {
    const tasks: TaskHealth[] = []
    let maxLag = 0
    for (const t of this.#manager.tasks.values()) {
      if (t.state === 'CLOSED') continue
      if (t.state === 'RUNNING') {
        tasks.push({ taskId: t.id, state: 'running' })
        for (const q of t.group.queues) {
          const lag = q.fetchedLag()
          if (lag !== undefined && Number(lag) > maxLag) maxLag = Number(lag)
        }
      } else if (t.state === 'RESTORING') {
        const p = t.restoreProgress
        tasks.push({ taskId: t.id, state: 'restoring', ...(p && p.total > 0 ? { restore: { ...p } } : {}) })
      } else tasks.push({ taskId: t.id, state: 'created' })
    }
    for (const [id, waiting] of this.#manager.waiting(now)) tasks.push({ taskId: id, state: 'waiting', waiting })
    tasks.sort((a, b) => (a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0))
    return { tasks, maxLag, lastCommitAt: this.#manager.lastCommitAt, loopAt: this.#stopped ? undefined : this.#loopAt }
  }

  /** Connects, subscribes and joins. Resolves after the first join. */
  async start(): Promise<void> {
    const consumer = this.#consumer
    // the state left on disk, reported to the assignor from the first join on
    const read = this.#o.state.readTaskDirectoryPositions
    if (read) {
      try {
        this.#offsetSums.addDiskPositions(await read(this.#c.stateDir, this.#c.applicationId, this.#offsetSums.openTasks()))
      } catch (e) {
        this.#c.logger.warn(`reading the task directories' positions failed: ${(e as Error).message}`, { error: e })
      }
    }
    await consumer.connect()
    const earliest: string[] = []
    const latest: string[] = []
    for (const s of this.#o.topology.subtopologies) {
      for (const n of s.nodes) {
        if (n.type !== 'source') continue
        for (const t of n.topics) (n.offsetReset === 'latest' ? latest : earliest).push(t)
      }
    }
    if (earliest.length) await consumer.subscribe([...new Set(earliest)], true)
    if (latest.length) await consumer.subscribe([...new Set(latest)], false)
    this.#loop = this.#runLoop()
    await consumer.run(this.#listener)
  }

  /** Stops processing, commits, closes tasks (releasing state locks), leaves the group. */
  async stop(options: { clean: boolean }): Promise<void> {
    if (this.#stopped) return
    this.#stopping = true
    this.#membership.cancelRestart()
    this.#membership.cancelFollowup()
    this.#wakeUp()
    await this.#loop?.catch(() => undefined)
    const clean = options.clean && !this.#fatal && !this.#manager.failed
    if (clean) {
      try {
        await this.#manager.commitAll('close')
      } catch (e) {
        this.#c.logger.warn(`final commit failed: ${(e as Error).message}`, { error: e })
      }
    }
    await this.#manager.closeAll(clean)
    await this.#threadProducer?.close()
    await this.#standbys.closeAll()
    try {
      await this.#consumer.disconnect()
    } catch (e) {
      this.#c.logger.warn(`consumer disconnect failed: ${(e as Error).message}`)
    }
    await this.#reader.close().catch(() => undefined)
    this.#metrics.close()
    this.#stopped = true
  }

  // ---------------------------------------------------------------------------------------------
  // consumer callbacks
  // ---------------------------------------------------------------------------------------------

  readonly #listener: GroupConsumerListener = {
    onBatch: (batch, heartbeat) => this.#onBatch(batch, heartbeat),
    onSkipped: (b) => this.#onSkipped(b),
    onJoin: (j) => this.#onJoin(j),
    onRebalancing: () => {
      emitEvent(this.#o.emitter, StreamsEvents.REBALANCE_START, { memberId: this.#membership.memberId })
      this.#commitSoon = true
      this.#hint('REBALANCING')
      this.#wakeUp()
    },
    onHeartbeat: () => this.#membership.confirmed(),
    onCrash: (error, restarting) => {
      if (this.#stopping) return
      // the client restarts its consumer after errors IT deems retriable; others (e.g. no group
      // coordinator found while the brokers are down) leave it stopped: a retriable one by our
      // policy restarts it here, with backoff, for up to taskTimeoutMs
      if (restarting) {
        this.#c.logger.warn(`consumer stopped (${error.name}: ${error.message}); the client restarts it`, { error })
        this.#membershipLost()
      } else if (classifyError(error) === 'retriable') this.#membership.scheduleRestart(error)
      else {
        this.#c.logger.error(`consumer crashed: ${error.message}`, { error })
        this.#fail(error)
      }
    },
  }

  async #onBatch(batch: FetchedBatch, heartbeat: () => Promise<void>): Promise<boolean> {
    const started = performance.now()
    const taken = await this.#takeBatch(batch, heartbeat)
    // kafkajs fetches in its own loop: a "poll" is the hand-over of one fetched batch
    this.#metrics.poll.record(performance.now() - started)
    this.#metrics.pollRecords.record(taken ? batch.records.length : 0)
    return taken
  }

  async #takeBatch(fetched: FetchedBatch, heartbeat: () => Promise<void>): Promise<boolean> {
    const { topic, partition } = fetched
    const task = this.#manager.byPartition(topic, partition)
    if (!task || task.state === 'CLOSED') return false // not ours (any more)
    if (task.state !== 'RUNNING') {
      // initializing: whatever we buffered now would be dropped when the task seeks to its
      // committed offsets, so leave it unresolved and stop fetching until then
      this.#flow.pauseForTask(task, topic, partition)
      return false
    }
    // a run until caught up processes nothing at or beyond its target offsets
    const batch = this.#o.runUntilCaughtUp ? this.#o.runUntilCaughtUp.clip(task, fetched) : fetched
    if (!batch) return true
    const size = task.enqueue(topic, partition, batch.records)
    // the position after this batch (its trailing markers included) and the partition's end: its lag
    const q = task.group.queue(topic, partition)
    q?.onFetched(BigInt(batch.lastOffset), BigInt(batch.highWatermark), Date.now())
    this.#recordLag(topic, partition, q?.fetchedLag())
    this.#flow.afterEnqueue(task, topic, partition, size)
    this.#wakeUp()
    await heartbeat()
    return true
  }

  #onSkipped(b: SkippedBatch): void {
    const task = this.#manager.byPartition(b.topic, b.partition)
    if (!task || task.state !== 'RUNNING') return
    const q = task.group.queue(b.topic, b.partition)
    if (
      q?.onSkipped(
        BigInt(b.firstOffset),
        BigInt(b.lastOffset),
        b.highWatermark === undefined ? undefined : BigInt(b.highWatermark),
        Date.now(),
      )
    ) {
      task.advanceDrained()
      this.#wakeUp()
    }
    // a batch of markers only (e.g. the commit marker after the last record): the lag drops to 0
    this.#recordLag(b.topic, b.partition, q?.fetchedLag())
  }

  /** `records-lag` of a partition: high watermark − fetch position, markers included. */
  #recordLag(topic: string, partition: number, lag: bigint | undefined): void {
    if (lag !== undefined) this.#lag.record(topic, partition, Number(lag))
  }

  #onJoin(join: GroupJoin): void {
    const active = this.#membership.onJoin(join)
    this.#pendingAssignment = { memberId: join.memberId, generationId: join.generationId ?? -1, active, isLeader: join.isLeader }
    this.#hint('REBALANCING')
    this.#wakeUp()
  }

  // ---------------------------------------------------------------------------------------------
  // the loop
  // ---------------------------------------------------------------------------------------------

  #wakeUp(): void {
    const w = this.#wake
    this.#wake = undefined
    w?.()
  }

  /**
   * The consumer stopped and is restarted (by the client or by us): it left the group, and what it
   * had paused or sought is gone with it. Its tasks are lost; the loop closes them before anything
   * else, so none of them processes or commits again, and the rejoin's assignment re-creates them.
   */
  #membershipLost(): void {
    this.#lost = true
    this.#hint('REBALANCING')
    this.#wakeUp()
  }

  #hint(state: 'REBALANCING' | 'RUNNING'): void {
    if (this.#lastStateHint === state && state === 'RUNNING') return
    this.#lastStateHint = state
    this.#o.onStateHint(state)
  }

  #fail(err: Error): void {
    if (this.#fatal) return
    this.#fatal = true
    this.#stopping = true
    this.#wakeUp()
    queueMicrotask(() => this.#o.onFatal(err))
  }

  async #runLoop(): Promise<void> {
    const m = this.#manager
    let current: StreamTask | undefined
    while (!this.#stopping) {
      this.#loopAt = Date.now()
      try {
        if (this.#lost) {
          this.#lost = false
          await m.closeLost('the group consumer stopped and left the group')
        }
        if (this.#commitSoon) {
          this.#commitSoon = false
          this.#lastCommit = Date.now()
          await m.commitAll('rebalance')
        }
        const a = this.#pendingAssignment
        if (a) {
          this.#pendingAssignment = undefined
          await m.applyAssignment(a.memberId, a.active, a.isLeader)
          // revoked tasks committed above with the previous generation; from now on, this one
          this.#group = { groupId: this.#c.applicationId, generationId: a.generationId, memberId: a.memberId, groupInstanceId: null }
        }
        const standby = this.#pendingStandby
        if (standby) {
          this.#pendingStandby = undefined
          await this.#standbys.assign(standby)
        }
        const now = Date.now()
        m.revive(now)
        this.#standbys.revive(now)
        let processed = 0
        let processMs = 0
        for (const task of m.tasks.values()) {
          if (this.#stopping) break
          if (!task.processable(now)) continue
          current = task
          const collector = task.collector!
          if (collector.error !== undefined || collector.pendingBatches >= MAX_PENDING_BATCHES) await collector.flush()
          const t0 = performance.now()
          processed += await task.process(BATCH, now)
          processMs += performance.now() - t0
          this.#flow.maybeResume(task)
          current = undefined
          await yieldImmediate()
        }
        this.#metrics.recordProcess(processed, processMs)
        const after = Date.now()
        for (const task of m.tasks.values()) task.collector?.maybeLinger(after, PRODUCER_LINGER_MS)
        // a paused partition whose queue drained without being processed (cleared by a seek) is resumed here
        for (const task of m.tasks.values()) if (task.state === 'RUNNING') this.#flow.maybeResume(task)
        this.#lags.check(m.tasks.values(), after)
        for (const task of m.tasks.values()) {
          if (task.state !== 'RUNNING' || after - task.lastWallClockPunctuation < 10) continue
          task.lastWallClockPunctuation = after
          current = task
          const t0 = performance.now()
          if (await task.engine!.punctuateWallClock(after)) {
            const ms = performance.now() - t0
            this.#metrics.punctuate.record(ms)
            task.metrics?.punctuate.record(ms)
          }
          current = undefined
        }
        if (this.#c.idleAdvanceMs >= 0) {
          for (const task of m.tasks.values()) {
            if (!task.idleAdvanceDue(after, this.#c.idleAdvanceMs)) continue
            current = task
            await task.engine!.advanceStreamTime(after - this.#c.idleAdvanceDelayMs)
            current = undefined
          }
        }
        const run = this.#o.runUntilCaughtUp
        if (run) {
          for (const { task, to } of run.advances(m.tasks.values(), after)) {
            current = task
            if (to !== undefined) await task.engine!.advanceStreamTime(to)
            current = undefined
          }
        }
        let requested = false
        for (const t of m.tasks.values()) if (t.commitRequested) requested = true
        if (requested || after - this.#lastCommit >= this.#c.commitIntervalMs) {
          this.#lastCommit = after
          await m.commitAll(requested ? 'requested' : 'interval')
        }
        if (!this.#pendingAssignment && m.allRunning()) this.#hint('RUNNING')
        // settled: an assignment applied, none pending, every task running, none waiting to be revived
        run?.check(
          m.tasks.values(),
          !this.#pendingAssignment && this.#group !== undefined && !this.#lost && m.allRunning() && m.waiting(after).size === 0,
        )
        if (processed === 0) await this.#waitForWork()
      } catch (e) {
        await m.handleError(e, current)
        current = undefined
      }
    }
  }

  async #waitForWork(): Promise<void> {
    const now = Date.now()
    let timeout = Math.min(100, Math.max(1, this.#lastCommit + this.#c.commitIntervalMs - now))
    for (const t of this.#manager.tasks.values()) {
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
}
