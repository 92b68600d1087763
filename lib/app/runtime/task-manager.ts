/**
 * The active tasks of a thread (Kafka Streams: `TaskManager`): tasks by id and by input
 * partition; a new assignment closes the revoked tasks (committing them) before it creates the new
 * ones; commits go through the {@link CommitCoordinator}'s strategy; and THE error policy of a task
 * (one place for consume, process, serde, produce, commit, restore):
 * - task migrated (fenced producer, the group moved on): closed dirty, its partitions paused; it
 *   comes back with the next assignment, or after a session timeout without one;
 * - retriable (KIP-572): closed dirty — its open transaction aborted, uncommitted state and
 *   buffered output dropped, so it is back at its last commit — and re-created after a backoff;
 *   past `taskTimeoutMs` of retrying the error becomes fatal;
 * - anything else (fatal): closed dirty under exactly-once (its state may hold part of the failed
 *   work), and the error goes to the client's uncaught exception handler after the healthy tasks
 *   committed.
 * A task is never left running after a failed commit, and every failed task of a commit round is
 * handled before anything else commits.
 *
 * Under exactly-once v2 the tasks share the thread's transaction: a commit commits all of them (a
 * revoked task's commit carries the others' work too), a failed commit fails all of them, and a task
 * closed dirty while its output is in the open transaction aborts it and rewinds every other task
 * with work in it (closed dirty and re-created at once from its last commit), unless the task was
 * migrated: then what fenced it (the thread producer's epoch, the group's generation) fenced the
 * whole transaction, and every task with work in it is migrated too.
 *
 * Over 400 lines on purpose: task creation and close, commit outcomes and the error policy act on
 * the same task maps and call each other (a failed commit runs the policy, which closes tasks, whose
 * close commits); the bookkeeping of tasks waiting to be re-created is in ./waiting-tasks.ts.
 */
import type { EventEmitter } from 'node:events'
import type { TopologyDef } from '../../../topology/engine/types.js'
import { StreamsError } from '../../../topology/errors.js'
import { parseTaskId } from '../../../topology/processor/types.js'
import type { TopicPartition } from '../client/types.js'
import { backoffMs, classifyError } from '../error-policy.js'
import { emitEvent, StreamsEvents } from '../events.js'
import type { ResolvedStreamsConfig } from '../options.js'
import { StreamTask } from '../stream-task.js'
import type { CommitStrategy, TaskCommitFailure } from './commit.js'
import type { PartitionFlow } from './partition-flow.js'
import type { StandbyManager } from './standby-manager.js'
import type { TaskInitializer } from './task-initializer.js'
import type { ThreadProducerHolder } from './thread-producer.js'
import { WaitingTasks } from './waiting-tasks.js'
import type { RuntimeTaskMetrics, ThreadMetrics } from '../../metrics/streams-metrics.js'
import type { TaskWaiting } from '../health.js'

export interface TaskManagerOptions {
  readonly config: ResolvedStreamsConfig
  readonly topology: TopologyDef
  readonly initializer: TaskInitializer
  readonly commit: CommitStrategy
  readonly flow: PartitionFlow
  readonly standbys: StandbyManager
  readonly emitter: EventEmitter
  /** A task became RUNNING or asks for attention. */
  readonly wakeUp: () => void
  /** A fatal error: the thread stops and the client's handler decides. */
  readonly fail: (error: Error) => void
  /** Whether the thread already failed (another fatal error is then only logged). */
  readonly failed: () => boolean
  /** Whether the group consumer is down and being restarted (failed tasks wait for it). */
  readonly consumerDown: () => boolean
  /** When the group last confirmed our membership (heartbeat or join), ms. */
  readonly memberConfirmedAt: () => number
  /** Exactly-once v2: the thread's transactional producer, shared by all tasks. */
  readonly threadProducer?: ThreadProducerHolder
  /** The thread's sensors and the factory of a task's sensors; none: no metrics. */
  readonly metrics?: TaskManagerMetrics
}

/** Metrics of the task manager (see lib/metrics/streams-metrics.ts' wiring guide). */
export interface TaskManagerMetrics {
  readonly thread: ThreadMetrics
  task(taskId: string): RuntimeTaskMetrics
  /** A task's partitions are no longer consumed here (its lag metrics go). */
  partitionsReleased(partitions: ReadonlyArray<TopicPartition>): void
}

/** What to do with the tasks whose commit failed (see {@link TaskManager.commitTasks}). */
export type CommitFailureMode = 'handle' | 'close' | 'throw'

export class TaskManager {
  readonly tasks = new Map<string, StreamTask>()
  readonly #byPartition = new Map<string, StreamTask>()
  /** Tasks closed after an error (migrated, retrying KIP-572) that are re-created later. */
  readonly #waiting = new WaitingTasks()
  /** When the last commit succeeded (ms epoch). */
  lastCommitAt: number | undefined
  /** Active tasks in the current assignment (the store cache budget is split among them). */
  #assigned = 1
  #fatal = false
  /**
   * Tasks this manager closed dirty. Re-created, even by a new assignment, they go back to their
   * partitions' reset position when nothing is committed: the consumer may already have fetched
   * (and moved past) records the dirty-closed task took but never committed, e.g. batches of the
   * new generation delivered to the old task object before the assignment was applied.
   */
  readonly #closedDirty = new Set<string>()
  /** Exactly-once v2: tasks rolled back with an aborted thread transaction, re-created by the next {@link revive}. */
  readonly #rewind = new Set<string>()

  constructor(private readonly o: TaskManagerOptions) {}

  /** The store cache budget of one task. */
  cacheMaxBytes(): number {
    return Math.floor(this.o.config.statestoreCacheMaxBytes / this.#assigned)
  }

  byPartition(topic: string, partition: number): StreamTask | undefined {
    return this.#byPartition.get(StreamTask.key(topic, partition))
  }

  allRunning(): boolean {
    for (const t of this.tasks.values()) if (t.state !== 'RUNNING') return false
    return true
  }

  /** Closes revoked tasks (committing them first), then creates the newly assigned ones. */
  async applyAssignment(memberId: string, active: ReadonlySet<string>, isLeader: boolean): Promise<void> {
    this.#assigned = Math.max(1, active.size)
    const revoked = [...this.tasks.values()].filter((t) => !active.has(t.id))
    for (const t of revoked) await this.closeTask(t, { clean: true, commit: true })
    // a new assignment supersedes every migrated task: ours are created below, the others are not
    // ours (reviving one later would fence its real owner's producer)
    this.#waiting.assigned(active)
    for (const id of this.#rewind) if (!active.has(id)) this.#rewind.delete(id)
    const created: string[] = []
    for (const id of active) {
      if (this.tasks.has(id)) continue
      await this.o.standbys.release(id)
      this.createTask(id)
      created.push(id)
    }
    emitEvent(this.o.emitter, StreamsEvents.ASSIGNMENT, { memberId, active: [...active], standby: this.o.standbys.ids(), isLeader })
    this.o.config.logger.info('assignment', { memberId, active: [...active], created, revoked: revoked.map((t) => t.id) })
  }

  /** Creates a task and starts its initialization in the background (the consumer keeps heartbeating). */
  createTask(id: string, revived = this.#closedDirty.has(id)): StreamTask {
    const taskId = parseTaskId(id)
    const sub = this.o.topology.subtopologies.find((s) => s.id === taskId.subtopology)
    if (!sub) throw new StreamsError(`assigned unknown task ${id}`)
    const partitions: TopicPartition[] = sub.sourceTopics.map((topic) => ({ topic, partition: taskId.partition }))
    const task = new StreamTask({ id, taskId, subtopology: sub, partitions, maxTaskIdleMs: this.o.config.maxTaskIdleMs, now: Date.now() })
    const m = (task.metrics = this.o.metrics?.task(id))
    if (m) {
      m.activeProcessRatio(() => task.processRatio)
      if (m.debugEnabled) task.group.enforcedProcessing = m.enforcedProcessing
    }
    this.o.metrics?.thread.taskCreated.record()
    this.tasks.set(id, task)
    for (const p of partitions) this.#byPartition.set(StreamTask.key(p.topic, p.partition), task)
    this.o.flow.resume(partitions)
    emitEvent(this.o.emitter, StreamsEvents.TASK_CREATED, { taskId: id, standby: false })
    const init = this.o.initializer.init(task, revived)
    // settles with the initialization itself (closing the task awaits it, also from the failure path below)
    task.initPromise = init.then(
      () => undefined,
      () => undefined,
    )
    void init.then(
      () => this.o.wakeUp(),
      async (e: unknown) => {
        if (task.state === 'CLOSED') return
        const err = e instanceof Error ? e : new Error(String(e))
        this.o.config.logger.warn(`task ${id} failed to initialize: ${err.message}`, { error: err, taskId: id })
        await this.handleError(err, task)
      },
    )
    return task
  }

  /**
   * Closes a task. `commit`: commit what it processed first (revocation, clean close); a failed
   * commit makes the close dirty. `clean`: keep its state; otherwise drop uncommitted state, abort
   * its open transaction and buffered output.
   */
  async closeTask(task: StreamTask, options: { clean: boolean; commit: boolean; migrated?: string }): Promise<void> {
    if (task.state === 'CLOSED' && !this.tasks.has(task.id)) return
    let clean = options.clean
    const wasRunning = task.state === 'RUNNING'
    task.abort.abort()
    if (options.commit && wasRunning) {
      try {
        await this.commitTasks([task], 'throw')
      } catch (e) {
        this.o.config.logger.warn(`commit of task ${task.id} on close failed: ${(e as Error).message}`, { taskId: task.id })
        clean = false
      }
    }
    task.markClosed()
    if (!clean) this.#closedDirty.add(task.id)
    await task.initPromise
    this.tasks.delete(task.id)
    for (const p of task.partitions) {
      const k = StreamTask.key(p.topic, p.partition)
      if (this.#byPartition.get(k) === task) this.#byPartition.delete(k)
    }
    this.o.flow.release(task)
    const r = task.resources
    if (r && !clean && this.o.threadProducer && r.collector.sentSinceCommit > 0) await this.#abortThreadTransaction(task, options.migrated)
    if (r) {
      if (!clean) {
        r.collector.discard()
        await r.transactional?.abort().catch(() => undefined)
        await r.stateManager.abortUncommitted().catch(() => undefined)
      }
      try {
        await r.engine.close()
      } catch (e) {
        this.o.config.logger.warn(`closing processors of task ${task.id} failed: ${(e as Error).message}`)
      }
      try {
        await r.stateManager.close({ clean })
      } catch (e) {
        this.o.config.logger.warn(`closing state of task ${task.id} failed: ${(e as Error).message}`)
      }
      await r.producer.close()
    }
    task.metrics?.close()
    this.o.metrics?.thread.taskClosed.record()
    this.o.metrics?.partitionsReleased(task.partitions)
    emitEvent(this.o.emitter, StreamsEvents.TASK_CLOSED, { taskId: task.id, standby: false, clean })
  }

  /**
   * The group consumer crashed and left the group (Kafka Streams: `handleLostAll` when the
   * consumer's partitions are lost): every active task is closed dirty, without a commit. While
   * this member was out, the group gave its tasks to others, which processed and committed them
   * further; a task kept across the rejoin would commit its older offsets over theirs (the group's
   * position going backwards, the records in between never fetched again) and go on from a store
   * without their changes. The assignment of the rejoin re-creates the tasks it gives us, from the
   * committed offsets and the changelogs.
   */
  async closeLost(reason: string): Promise<void> {
    const lost = [...this.tasks.values()]
    if (lost.length === 0) return
    this.o.config.logger.warn(`${reason}: closing tasks ${lost.map((t) => t.id).join(', ')} dirty until the group assigns them again`)
    for (const t of lost) {
      emitEvent(this.o.emitter, StreamsEvents.TASK_MIGRATED, { taskId: t.id, reason })
      await this.closeTask(t, { clean: false, commit: false })
    }
  }

  /**
   * Exactly-once v2: `failed`'s output is in the thread's open transaction, so the transaction is
   * aborted, and every other running task with work since its last commit is closed dirty (back at
   * its last commit) and re-created by the next {@link revive}.
   *
   * When `failed` was migrated (`migratedReason`), the others are migrated too, not re-created at
   * once: the fencing belongs to the thread (its producer's epoch was bumped, e.g. the coordinator
   * expired a transaction that a frozen process held open, or its generation is gone), so they may
   * well belong to another member by now. Re-created here they would process partitions the group
   * gave away; as migrated tasks they wait for the next assignment (or a session timeout with our
   * membership confirmed), like `failed`.
   */
  async #abortThreadTransaction(failed: StreamTask, migratedReason?: string): Promise<void> {
    const holder = this.o.threadProducer!
    if (!holder.inTransaction) return
    await holder.abort()
    for (const t of [...this.tasks.values()]) {
      if (t === failed || t.state !== 'RUNNING' || !t.needsCommit()) continue
      if (migratedReason !== undefined) {
        await this.#migrate(t, `the thread transaction was aborted (task ${failed.id} migrated: ${migratedReason})`)
        continue
      }
      this.o.config.logger.info(
        `task ${t.id}: the thread transaction was aborted (task ${failed.id} failed); rewinding it to its last commit`,
        {
          taskId: t.id,
        },
      )
      await this.closeTask(t, { clean: false, commit: false })
      this.#rewind.add(t.id)
    }
  }

  async closeAll(clean: boolean): Promise<void> {
    for (const t of [...this.tasks.values()]) await this.closeTask(t, { clean: clean && !this.#fatal, commit: false })
  }

  /**
   * Re-creates failed tasks whose time has come: migrated ones after a session timeout without a
   * rebalance, retrying ones after their backoff; both only after the group confirmed our
   * membership since the failure (an instance cut off from the cluster must not revive tasks the
   * group has meanwhile given to others: its producer's initialisation would fence their owners).
   */
  /**
   * Ends one processing iteration of the thread that took `totalMs` over all tasks: each task's
   * `active-process-ratio` becomes its share of that time (Kafka Streams records it per iteration
   * in `TaskManager#recordTaskProcessRatio`). An iteration that processed nothing leaves the ratios.
   */
  endProcessIteration(totalMs: number): void {
    if (totalMs <= 0) return
    for (const task of this.tasks.values()) {
      task.processRatio = task.iterationProcessMs / totalMs
      task.iterationProcessMs = 0
    }
  }

  revive(now: number): void {
    for (const id of this.#rewind) {
      this.#rewind.delete(id)
      if (!this.tasks.has(id)) this.createTask(id, true)
    }
    const confirmed = this.o.memberConfirmedAt()
    const isActive = (id: string) => this.tasks.has(id)
    for (const id of this.#waiting.dueMigrated(now, confirmed, this.o.config.sessionTimeoutMs, isActive)) {
      this.o.config.logger.info(`re-creating task ${id} (no rebalance moved it)`, { taskId: id })
      this.createTask(id, true)
    }
    if (!this.#waiting.anyRetrying || this.o.consumerDown()) return
    for (const { id, attempts } of this.#waiting.dueRetries(now, confirmed, isActive)) {
      this.o.config.logger.info(`re-creating task ${id} after a retriable error (attempt ${attempts + 1})`, { taskId: id })
      this.createTask(id, true)
    }
  }

  /** Commits every running task. */
  async commitAll(reason: string): Promise<void> {
    const tasks = [...this.tasks.values()].filter((t) => t.state === 'RUNNING')
    if (tasks.length === 0) return
    this.o.config.logger.debug(`commit (${reason})`, { tasks: tasks.map((t) => t.id) })
    await this.commitTasks(tasks)
  }

  /**
   * Commits the given tasks through the strategy of the processing guarantee; every task whose
   * commit failed is dealt with before this returns (`mode`):
   * - `'handle'`: the error policy ({@link onTaskError}); after every failed task was handled, the
   *   first fatal error stops the thread (healthy tasks committed, the client's handler decides);
   * - `'close'`: closed dirty, nothing thrown (the fatal path: the client is going down);
   * - `'throw'`: nothing handled, the first error thrown (the caller closes the task dirty).
   */
  async commitTasks(all: ReadonlyArray<StreamTask>, mode: CommitFailureMode = 'handle'): Promise<void> {
    const tasks = all.filter((t) => t.state === 'RUNNING' && t.needsCommit())
    if (tasks.length === 0) return
    const started = Date.now()
    const { committed, failed, records, offsets } = await this.o.commit.commit(tasks)
    for (const t of committed) this.#waiting.settled(t.id)
    if (committed.length) {
      const now = Date.now()
      this.lastCommitAt = now
      this.o.metrics?.thread.commit.record(now - started)
      for (const t of committed) t.metrics?.commit.record()
    }
    if (committed.length)
      emitEvent(this.o.emitter, StreamsEvents.COMMIT, {
        taskIds: committed.map((t) => t.id),
        records,
        offsets,
        durationMs: Date.now() - started,
        transactional: this.o.commit.transactional,
      })
    if (failed.length === 0) return
    let handle = failed
    if (mode === 'throw') {
      // exactly-once v2: a failed thread transaction also fails tasks that were not asked for; those
      // are handled here, the asked-for ones by the caller
      const asked = new Set(tasks)
      const own = failed.find((f) => asked.has(f.task))
      handle = failed.filter((f) => !asked.has(f.task))
      if (handle.length === 0) throw own!.error
      mode = 'handle'
      if (own) {
        await this.#handleFailures(handle, mode)
        throw own.error
      }
    }
    await this.#handleFailures(handle, mode)
  }

  async #handleFailures(failed: ReadonlyArray<TaskCommitFailure>, mode: CommitFailureMode): Promise<void> {
    let fatal: { error: Error; taskId: string } | undefined
    for (const { task, error } of failed) {
      if (mode === 'close') {
        this.o.config.logger.warn(`commit of task ${task.id} failed: ${error.message}; closing it dirty`, { taskId: task.id })
        await this.closeTask(task, { clean: false, commit: false })
        continue
      }
      try {
        await this.onTaskError(task, error)
      } catch (fe) {
        fatal ??= { error: fe instanceof Error ? fe : new Error(String(fe)), taskId: task.id }
      }
    }
    // handled here, not rethrown: the failed task is closed by now, and an escalated retriable
    // error still has its retriable cause, so the caller could not tell it is fatal
    if (fatal) await this.#onFatal(fatal.error, fatal.taskId)
  }

  /**
   * An error in the loop or a task's initialization. With a task (the error's place, or the task
   * at hand): that task's error policy. Without one: a retriable error is logged (whatever failed
   * is attempted again later); anything else is fatal.
   */
  async handleError(e: unknown, task: StreamTask | undefined): Promise<void> {
    const err = e instanceof Error ? e : new Error(String(e))
    const taskId = (err as StreamsError).place?.taskId ?? task?.id
    const t = taskId ? this.tasks.get(taskId) : undefined
    try {
      if (t) await this.onTaskError(t, err)
      else if (classifyError(err) === 'fatal') throw err
      else this.o.config.logger.warn(`retriable error, retrying: ${err.message}`, { error: err })
    } catch (fatal) {
      await this.#onFatal(fatal instanceof Error ? fatal : new Error(String(fatal)), taskId)
    }
  }

  /** THE error policy of one task (see the module comment). Throws when the error is fatal. */
  async onTaskError(t: StreamTask, err: Error): Promise<void> {
    const c = this.o.config
    const kind = classifyError(err)
    if (kind === 'task-migrated') {
      await this.#migrate(t, err.message)
      return
    }
    if (kind === 'retriable') {
      const now = Date.now()
      const r = this.#waiting.failed(t.id, err, now)
      const waitedMs = now - r.since
      await this.closeTask(t, { clean: false, commit: false })
      this.o.flow.pause(t.partitions)
      if (waitedMs >= c.taskTimeoutMs) {
        this.#waiting.settled(t.id)
        throw new StreamsError(
          `task ${t.id} failed with retriable errors for ${waitedMs} ms, longer than taskTimeoutMs (${c.taskTimeoutMs} ms); last error: ${err.message}`,
          { cause: err, place: { taskId: t.id } },
        )
      }
      const delay = backoffMs(r.attempts - 1, c.retryBackoffMs, c.retryBackoffMaxMs)
      r.nextAt = now + delay
      c.logger.warn(
        `task ${t.id}: retriable error (${err.name}: ${err.message}); back at its last commit, retrying in ${delay} ms (attempt ${r.attempts}, retrying for ${Math.round(waitedMs / 1000)} s of taskTimeoutMs ${Math.round(c.taskTimeoutMs / 1000)} s)`,
        { taskId: t.id },
      )
      emitEvent(this.o.emitter, StreamsEvents.TASK_RETRY, {
        taskId: t.id,
        error: err,
        attempt: r.attempts,
        waitedMs,
        backoffMs: delay,
        taskTimeoutMs: c.taskTimeoutMs,
      })
      return
    }
    if (c.exactlyOnce) await this.closeTask(t, { clean: false, commit: false })
    throw err
  }

  /** Closes a task that belongs to someone else now (dirty, partitions paused) until an assignment or {@link revive} brings it back. */
  async #migrate(t: StreamTask, reason: string): Promise<void> {
    this.o.config.logger.warn(`task ${t.id} migrated: ${reason}; closing it dirty`, { taskId: t.id })
    emitEvent(this.o.emitter, StreamsEvents.TASK_MIGRATED, { taskId: t.id, reason })
    await this.closeTask(t, { clean: false, commit: false, migrated: reason })
    this.o.flow.pause(t.partitions)
    this.#waiting.migrated(t.id, Date.now())
  }

  /**
   * Fatal: commit what the healthy tasks processed (the failed task was closed dirty already under
   * exactly-once; under at-least-once the failing record's offset is not consumed), then stop.
   */
  async #onFatal(err: Error, taskId: string | undefined): Promise<void> {
    if (this.#fatal || this.o.failed()) {
      this.o.config.logger.warn(`error after a fatal error${taskId ? ` in task ${taskId}` : ''}: ${err.message}`)
      return
    }
    this.#fatal = true
    const c = this.o.config
    c.logger.error(`fatal error${taskId ? ` in task ${taskId}` : ''}: ${err.message}`, { error: err })
    emitEvent(this.o.emitter, StreamsEvents.ERROR, { error: err, taskId })
    try {
      const healthy = [...this.tasks.values()].filter((x) => !(c.exactlyOnce && x.id === taskId))
      await this.commitTasks(healthy, 'close')
    } catch (ce) {
      c.logger.warn(`commit after fatal error failed: ${(ce as Error).message}`)
    }
    this.o.fail(err)
  }

  /** Tasks closed after an error and waiting to be re-created (for health), by task id. */
  waiting(now: number): Map<string, TaskWaiting> {
    return this.#waiting.waiting(now, (id) => this.tasks.has(id))
  }

  /** Whether a fatal error stopped this manager (no clean close then). */
  get failed(): boolean {
    return this.#fatal
  }
}
