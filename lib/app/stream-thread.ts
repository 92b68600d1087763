/**
 * The processing loop of a client (Kafka Streams: `StreamThread#runLoop`): poll (take what the
 * consumer fetched), process, punctuate, commit. Everything else is delegated to units built by
 * {@link createThreadUnits}:
 * - {@link TaskManager}: tasks, assignment, task creation/close/revival, THE error policy, commits
 *   through the {@link CommitStrategy} of the processing guarantee;
 * - {@link TaskInitializer} / {@link RestoreCoordinator}: a task's producer, offsets, state restore;
 * - {@link StandbyManager}: standby replicas; {@link GroupMembership}: the group consumer, what this
 *   member tells the group and reads back from it, consumer crashes and restarts;
 * - {@link Rebalances}: what the consumer's callbacks report about the group, applied at the top of
 *   the next iteration; {@link FetchIntake}: fetched batches into the tasks' queues;
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
 * The consumer's callbacks only record a rebalance (see ./runtime/rebalances.ts); the loop applies
 * it first thing in its next iteration: lost tasks closed, everything committed when a rebalance
 * starts, revoked tasks closed before new ones are created, then the standbys.
 */
import type { EventEmitter } from 'node:events'
import { setImmediate as yieldImmediate } from 'node:timers/promises'
import type { TopologyDef } from '../../topology/engine/types.js'
import type { StateStore } from '../../topology/state/types.js'
import type { GroupConsumerListener, StreamsClient } from './client/types.js'
import { emitEvent, StreamsEvents } from './events.js'
import { threadHealth, type ThreadHealth } from './health.js'
import type { ResolvedStreamsConfig } from './options.js'
import type { RuntimeTestHooks } from './runtime/commit.js'
import type { GroupView } from './runtime/group-membership.js'
import type { RunUntilCaughtUp } from './runtime/run-until-caught-up.js'
import { createThreadUnits, type ThreadUnits } from './runtime/thread-units.js'
import type { EngineRuntime, StateRuntime } from './state-runtime.js'
import type { StreamTask } from './stream-task.js'
import type { StreamsMetrics } from '../metrics/streams-metrics.js'

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
  readonly #u: ThreadUnits
  #loop: Promise<void> | undefined
  #stopping = false
  #stopped = false
  #fatal = false
  #wake: (() => void) | undefined
  #lastCommit = Date.now()
  #lastStateHint: 'REBALANCING' | 'RUNNING' | undefined
  /** When the loop last iterated (ms epoch), for liveness. */
  #loopAt: number | undefined

  constructor(options: StreamThreadOptions) {
    this.#o = options
    this.#c = options.config
    this.#u = createThreadUnits(options, {
      wakeUp: () => this.#wakeUp(),
      fail: (e) => this.#fail(e),
      failed: () => this.#fatal,
      stopping: () => this.#stopping,
      rebalancing: () => this.#hint('REBALANCING'),
      committing: () => (this.#lastCommit = Date.now()),
    })
  }

  get memberId(): string {
    return this.#u.membership.memberId
  }

  get groupView(): GroupView | undefined {
    return this.#u.membership.view
  }

  /** Active tasks by id. */
  get tasks(): ReadonlyMap<string, StreamTask> {
    return this.#u.manager.tasks
  }

  standbyIds(): string[] {
    return this.#u.standbys.ids()
  }

  /** Tasks, lag, last commit and loop activity for {@link KafkaStreams.health}. */
  health(now: number): ThreadHealth {
    const m = this.#u.manager
    return threadHealth(m.tasks.values(), m.waiting(now), m.lastCommitAt, this.#stopped ? undefined : this.#loopAt)
  }

  /** Connects, subscribes and joins. Resolves after the first join. */
  async start(): Promise<void> {
    const { offsetSums, membership } = this.#u
    // the state left on disk, reported to the assignor from the first join on
    const read = this.#o.state.readTaskDirectoryPositions
    if (read) {
      try {
        offsetSums.addDiskPositions(await read(this.#c.stateDir, this.#c.applicationId, offsetSums.openTasks()))
      } catch (e) {
        this.#c.logger.warn(`reading the task directories' positions failed: ${(e as Error).message}`, { error: e })
      }
    }
    await membership.subscribe()
    this.#loop = this.#runLoop()
    await this.#u.consumer.run(this.#listener)
  }

  /** Stops processing, commits, closes tasks (releasing state locks), leaves the group. */
  async stop(options: { clean: boolean }): Promise<void> {
    if (this.#stopped) return
    const u = this.#u
    this.#stopping = true
    u.membership.cancelRestart()
    u.membership.cancelFollowup()
    this.#wakeUp()
    await this.#loop?.catch(() => undefined)
    const clean = options.clean && !this.#fatal && !u.manager.failed
    if (clean) {
      try {
        await u.manager.commitAll('close')
      } catch (e) {
        this.#c.logger.warn(`final commit failed: ${(e as Error).message}`, { error: e })
      }
    }
    await u.manager.closeAll(clean)
    await u.threadProducer?.close()
    await u.standbys.closeAll()
    try {
      await u.consumer.disconnect()
    } catch (e) {
      this.#c.logger.warn(`consumer disconnect failed: ${(e as Error).message}`)
    }
    await u.reader.close().catch(() => undefined)
    u.metrics.close()
    this.#stopped = true
  }

  /** The group consumer's callbacks: each records what happened and wakes the loop. */
  readonly #listener: GroupConsumerListener = {
    onBatch: (batch, heartbeat) => this.#u.intake.onBatch(batch, heartbeat),
    onSkipped: (b) => this.#u.intake.onSkipped(b),
    onJoin: (j) => this.#u.rebalances.joined(j, this.#u.membership.onJoin(j)),
    onRebalancing: () => {
      emitEvent(this.#o.emitter, StreamsEvents.REBALANCE_START, { memberId: this.#u.membership.memberId })
      this.#u.rebalances.started()
    },
    onHeartbeat: () => this.#u.membership.confirmed(),
    onCrash: (error, restarting) => this.#u.membership.onCrash(error, restarting),
  }

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

  #fail(err: Error): void {
    if (this.#fatal) return
    this.#fatal = true
    this.#stopping = true
    this.#wakeUp()
    queueMicrotask(() => this.#o.onFatal(err))
  }

  async #runLoop(): Promise<void> {
    const { manager: m, rebalances, standbys, flow } = this.#u
    let current: StreamTask | undefined
    while (!this.#stopping) {
      this.#loopAt = Date.now()
      try {
        await rebalances.apply()
        const now = Date.now()
        m.revive(now)
        standbys.revive(now)
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
          const ms = performance.now() - t0
          processMs += ms
          task.iterationProcessMs += ms
          flow.maybeResume(task)
          current = undefined
          await yieldImmediate()
        }
        this.#u.metrics.recordProcess(processed, processMs)
        m.endProcessIteration(processMs)
        const after = Date.now()
        for (const task of m.tasks.values()) task.collector?.maybeLinger(after, PRODUCER_LINGER_MS)
        // a paused partition whose queue drained without being processed (cleared by a seek) is resumed here
        for (const task of m.tasks.values()) if (task.state === 'RUNNING') flow.maybeResume(task)
        this.#u.lags.check(m.tasks.values(), after)
        for (const task of m.tasks.values()) {
          if (task.state !== 'RUNNING' || after - task.lastWallClockPunctuation < 10) continue
          task.lastWallClockPunctuation = after
          current = task
          const t0 = performance.now()
          if (await task.engine!.punctuateWallClock(after)) {
            task.punctuatedSinceCommit = true
            const ms = performance.now() - t0
            this.#u.metrics.punctuate.record(ms)
            task.metrics?.punctuate.record(ms)
          }
          current = undefined
        }
        if (this.#c.idleAdvanceMs >= 0) {
          for (const task of m.tasks.values()) {
            if (!task.idleAdvanceDue(after, this.#c.idleAdvanceMs)) continue
            current = task
            if (await task.engine!.advanceStreamTime(after - this.#c.idleAdvanceDelayMs)) task.punctuatedSinceCommit = true
            current = undefined
          }
        }
        const run = this.#o.runUntilCaughtUp
        if (run) {
          for (const { task, to } of run.advances(m.tasks.values(), after)) {
            current = task
            if (to !== undefined && (await task.engine!.advanceStreamTime(to))) task.punctuatedSinceCommit = true
            current = undefined
          }
        }
        let requested = false
        for (const t of m.tasks.values()) if (t.commitRequested) requested = true
        if (requested || after - this.#lastCommit >= this.#c.commitIntervalMs) {
          this.#lastCommit = after
          await m.commitAll(requested ? 'requested' : 'interval')
        }
        if (!rebalances.pending && m.allRunning()) this.#hint('RUNNING')
        // settled: an assignment applied, none pending, every task running, none waiting to be revived
        run?.check(m.tasks.values(), !rebalances.pending && rebalances.group !== undefined && m.allRunning() && m.waiting(after).size === 0)
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
    for (const t of this.#u.manager.tasks.values()) {
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
