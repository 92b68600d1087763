/**
 * The commit of a set of tasks, one strategy per processing guarantee (Kafka Streams:
 * `TaskExecutor#commitTasksAndMaybeUpdateCommittableOffsets` + `StreamsProducer`):
 *
 * - {@link AtLeastOnceCommit}: flush every task (store caches → changelog records, all output
 *   acknowledged) → ONE offset commit for the tasks whose output is out → their local state.
 * - {@link ExactlyOnceCommit}: per task ONE transaction (EOS-alpha): prepareCommit → flush the
 *   output into the transaction → sendOffsets → commit → local state. Any failure aborts the
 *   transaction (when the producer still can) and is that task's outcome.
 * - {@link ExactlyOnceV2Commit}: ONE transaction for all active tasks of the thread (KIP-447), the
 *   offsets carrying the consumer group's generation; a failure is the outcome of every task in it.
 *
 * Both only REPORT per-task outcomes; they never decide what happens to a failed task. The caller
 * (the task manager) rolls back or closes every failed task before anything else commits, so no
 * later commit can carry offsets past records whose output did not commit.
 *
 * Local state (`commitLocal`) is written only after the output and offsets are committed, so under
 * exactly-once it never reflects an aborted transaction.
 */
import { ProductionError, StreamsError, TaskMigratedError } from '../../../topology/errors.js'
import type { ConsumerGroupMetadata, GroupConsumer, TopicPartitionOffset } from '../client/types.js'
import { classifyError, isUnknownServerError } from '../error-policy.js'
import type { Logger } from '../logger.js'
import { StreamTask } from '../stream-task.js'
import type { ThreadProducerHolder } from './thread-producer.js'

/**
 * Points of the commit path a test can hook (crash injection):
 * - `after-send`: output and changelog records sent, offsets not yet added / committed;
 * - `after-send-offsets`: offsets added to the transaction (at-least-once: committed), not yet committed;
 * - `after-commit`: transaction committed, local state not yet written;
 * - `during-local-write`: called on the next event-loop turn after the local write started, while it is in flight.
 */
export type CommitPoint = 'after-send' | 'after-send-offsets' | 'after-commit' | 'during-local-write'

/** Internal hooks for tests; production code never sets them. */
export interface RuntimeTestHooks {
  /** Called at every commit point of every commit (see {@link CommitPoint}). */
  onCommitPoint?(point: CommitPoint): void
}

export interface TaskCommitFailure {
  readonly task: StreamTask
  readonly error: Error
}

/** What one commit round did, per task. */
export interface CommitOutcome {
  readonly committed: StreamTask[]
  readonly failed: TaskCommitFailure[]
  /** Output records committed. */
  readonly records: number
  /** Offsets committed. */
  readonly offsets: number
}

export interface CommitStrategy {
  readonly transactional: boolean
  /** Commits the given RUNNING tasks that need it; never throws for a task's failure (reported in the outcome). */
  commit(tasks: ReadonlyArray<StreamTask>): Promise<CommitOutcome>
}

/**
 * Step 1 of every commit: flushes the task's record caches (KIP-63: the latest update of each
 * cached key is forwarded, its output and store write join this commit), then snapshots the
 * stores' dirty entries as changelog records.
 */
async function prepareCommit(t: StreamTask): Promise<void> {
  const { engine, stateManager, collector } = t.resources!
  await engine.flushCaches?.()
  await stateManager.prepareCommit(collector)
}

/** Step 3 of every commit: the task's local state, with the changelog positions its output reached. */
async function commitLocal(t: StreamTask, hooks: RuntimeTestHooks | undefined): Promise<void> {
  const { stateManager: sm, collector } = t.resources!
  const ends = collector.endOffsets(sm.changelogPartitions())
  // source-topic changelogs: the store reflects the input up to the consumed offset
  for (const p of sm.changelogPartitions()) {
    const consumed = t.consumed.get(StreamTask.key(p.topic, p.partition))
    if (consumed !== undefined && t.subtopology.sourceTopics.includes(p.topic)) ends.set(p.topic, consumed.toString())
  }
  const write = sm.commitLocal(ends)
  const hook = hooks?.onCommitPoint
  if (hook) setImmediate(() => hook('during-local-write'))
  await write
  collector.resetCommitState()
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e))
}

export interface AtLeastOnceCommitOptions {
  /** Commits the group's offsets. */
  readonly consumer: Pick<GroupConsumer, 'commitOffsets' | 'isDown'>
  readonly logger: Logger
  readonly hooks?: RuntimeTestHooks
}

/**
 * At-least-once. A task whose flush failed is reported failed (its offsets are not committed). An
 * offset commit refused because the group is rebalancing or by a retriable error leaves every task
 * dirty (nothing committed, nothing failed): the next commit commits their offsets (the output is
 * already out; re-processing would only duplicate it). A consumer that is down (crashed, being
 * restarted) commits nothing: it left the group, so its tasks are lost and closed dirty by the loop
 * (see ./rebalances.ts), and the tasks its rejoin is assigned start from the last committed offsets
 * (their records since then are processed again: at-least-once duplicates, never a gap). A fatal
 * offset commit error is thrown.
 */
export class AtLeastOnceCommit implements CommitStrategy {
  readonly transactional = false
  constructor(private readonly o: AtLeastOnceCommitOptions) {}

  async commit(all: ReadonlyArray<StreamTask>): Promise<CommitOutcome> {
    const tasks = all.filter((t) => t.needsCommit())
    const failed: TaskCommitFailure[] = []
    const flushed: StreamTask[] = []
    let records = 0
    const results = await Promise.allSettled(
      tasks.map(async (t) => {
        const { collector } = t.resources!
        await prepareCommit(t)
        const n = collector.sentSinceCommit
        await collector.flush()
        return n
      }),
    )
    results.forEach((r, i) => {
      if (r.status === 'rejected') failed.push({ task: tasks[i]!, error: asError(r.reason) })
      else {
        flushed.push(tasks[i]!)
        records += r.value
      }
    })
    this.o.hooks?.onCommitPoint?.('after-send')
    const perTask = flushed.map((t) => ({ t, offsets: t.offsetsToCommit() }))
    const offsets: TopicPartitionOffset[] = perTask.flatMap((x) => x.offsets)
    if (offsets.length && this.o.consumer.isDown()) {
      // the consumer left the group: these tasks are lost (closed dirty next) and their offsets
      // are never committed; the rejoin's tasks re-process from the last committed offsets
      this.o.logger.info('offset commit skipped: the consumer is down and its tasks are lost')
      return { failed, committed: [], records, offsets: 0 }
    }
    if (offsets.length) {
      try {
        await this.o.consumer.commitOffsets(offsets)
      } catch (e) {
        // a consumer that crashed while the commit was on its way refuses it as non-retriable
        const kind = this.o.consumer.isDown() ? 'retriable' : classifyError(e)
        if (kind === 'fatal') throw new StreamsError(`offset commit failed: ${asError(e).message}`, { cause: e })
        // the group is rebalancing, or the coordinator is unavailable: the tasks stay dirty and
        // their offsets are committed by a later commit (after the join / next interval)
        this.o.logger.info(`offset commit deferred (${kind}): ${asError(e).message}`)
        return { failed, committed: [], records, offsets: 0 }
      }
    }
    this.o.hooks?.onCommitPoint?.('after-send-offsets')
    this.o.hooks?.onCommitPoint?.('after-commit')
    const committed: StreamTask[] = []
    for (const { t, offsets: o } of perTask) {
      t.markCommitted(o)
      try {
        await commitLocal(t, this.o.hooks)
        committed.push(t)
      } catch (e) {
        failed.push({ task: t, error: asError(e) })
      }
    }
    return { failed, committed, records, offsets: offsets.length }
  }
}

export interface ExactlyOnceCommitOptions {
  /** The consumer group whose offsets the transactions commit (the application id). */
  readonly groupId: string
  readonly hooks?: RuntimeTestHooks
}

/** Exactly-once (EOS-alpha): one transaction per task, committed concurrently, outcomes per task. */
export class ExactlyOnceCommit implements CommitStrategy {
  readonly transactional = true
  constructor(private readonly o: ExactlyOnceCommitOptions) {}

  async commit(all: ReadonlyArray<StreamTask>): Promise<CommitOutcome> {
    const tasks = all.filter((t) => t.needsCommit())
    let records = 0
    const results = await Promise.allSettled(tasks.map((t) => this.#commitTask(t)))
    const failed: TaskCommitFailure[] = []
    const committed: StreamTask[] = []
    let offsets = 0
    results.forEach((r, i) => {
      if (r.status === 'rejected') failed.push({ task: tasks[i]!, error: asError(r.reason) })
      else {
        committed.push(tasks[i]!)
        records += r.value.records
        offsets += r.value.offsets
      }
    })
    return { committed, failed, records, offsets }
  }

  /**
   * One task's transaction, then its local state. On any failure the open transaction is aborted
   * (when the producer still can) and the error thrown, wrapped with the task as its place.
   * @returns the records (output and changelog) and offsets the transaction committed
   */
  async #commitTask(t: StreamTask): Promise<{ records: number; offsets: number }> {
    const place = { taskId: t.id }
    const producer = t.resources?.transactional
    if (!producer) throw new TaskMigratedError('task has no transactional producer', { place })
    const { collector } = t.resources!
    const hook = this.o.hooks?.onCommitPoint
    try {
      await prepareCommit(t)
      const offsets = t.offsetsToCommit()
      // after prepareCommit: the changelog records of the store caches count too
      const records = collector.sentSinceCommit
      if (records === 0 && offsets.length === 0 && !producer.inTransaction) {
        // empty commit: no transaction
        t.markCommitted([])
        return { records: 0, offsets: 0 }
      }
      await collector.flush()
      hook?.('after-send')
      if (offsets.length) await producer.sendOffsets(this.o.groupId, offsets)
      hook?.('after-send-offsets')
      await producer.commit()
      hook?.('after-commit')
      t.markCommitted(offsets)
      await commitLocal(t, this.o.hooks)
      return { records, offsets: offsets.length }
    } catch (e) {
      try {
        await producer.abort()
      } catch {
        // fenced, or the outcome is unknown: the producer is discarded with the task, and the
        // next owner's InitProducerId aborts whatever is still open
      }
      if (e instanceof StreamsError) throw e
      throw new ProductionError(`transactional commit of task ${t.id} failed: ${asError(e).message}`, {
        cause: e,
        place,
        retriable: classifyError(e) === 'retriable' || isUnknownServerError(e),
      })
    }
  }
}

export interface ExactlyOnceV2CommitOptions {
  /** The thread's transactional producer. */
  readonly producer: ThreadProducerHolder
  /** The consumer group metadata of the assignment the tasks belong to; undefined before the first join. */
  readonly groupMetadata: () => ConsumerGroupMetadata | undefined
  /** Every active task of the thread (all of them share the transaction). */
  readonly tasks: () => Iterable<StreamTask>
  readonly hooks?: RuntimeTestHooks
}

/**
 * Exactly-once v2 (KIP-447): ONE transaction for every active task of the thread with work, whichever
 * tasks were asked for (they share the transaction: committing one commits all): prepareCommit
 * and flush every task → the offsets of all of them with the group metadata (TxnOffsetCommit v3,
 * the group coordinator fences a zombie whose generation is gone) → commit → each task's local
 * state. Any failure before the commit completed aborts the whole transaction, throws the
 * producer away (fenced or unknown outcome: the next one's InitProducerId ends what is left), and
 * fails EVERY task of the transaction with the same error, so each is rolled back to its last commit.
 */
export class ExactlyOnceV2Commit implements CommitStrategy {
  readonly transactional = true
  constructor(private readonly o: ExactlyOnceV2CommitOptions) {}

  async commit(requested: ReadonlyArray<StreamTask>): Promise<CommitOutcome> {
    const set = new Set<StreamTask>(requested)
    for (const t of this.o.tasks()) set.add(t)
    const tasks = [...set].filter((t) => t.needsCommit())
    const hook = this.o.hooks?.onCommitPoint
    const holder = this.o.producer
    let records = 0
    const perTask: Array<{ t: StreamTask; offsets: TopicPartitionOffset[] }> = []
    try {
      await Promise.all(tasks.map((t) => prepareCommit(t)))
      for (const t of tasks) {
        records += t.collector!.sentSinceCommit
        perTask.push({ t, offsets: t.offsetsToCommit() })
      }
      const offsets = perTask.flatMap((x) => x.offsets)
      if (offsets.length === 0 && records === 0 && !holder.inTransaction) {
        // nothing produced (sent or buffered), nothing consumed: no transaction
        for (const t of tasks) t.markCommitted([])
        return { committed: tasks, failed: [], records: 0, offsets: 0 }
      }
      await Promise.all(tasks.map((t) => t.collector!.flush()))
      records = tasks.reduce((n, t) => n + t.collector!.sentSinceCommit, 0)
      hook?.('after-send')
      if (offsets.length) {
        const group = this.o.groupMetadata()
        if (!group) throw new TaskMigratedError('no consumer group generation to commit offsets with (not joined yet)')
        const producer = await holder.get()
        await producer.sendOffsetsWithGroupMetadata(group, offsets)
      }
      hook?.('after-send-offsets')
      await holder.current?.commit()
      hook?.('after-commit')
    } catch (e) {
      await holder.abort()
      // fenced, or the outcome is unknown: a new producer (its InitProducerId aborts what is left)
      await holder.reset()
      const error =
        e instanceof StreamsError
          ? e
          : new ProductionError(`transactional commit of tasks ${tasks.map((t) => t.id).join(', ')} failed: ${asError(e).message}`, {
              cause: e,
              retriable: classifyError(e) === 'retriable' || isUnknownServerError(e),
            })
      return { committed: [], failed: tasks.map((task) => ({ task, error })), records: 0, offsets: 0 }
    }
    const committed: StreamTask[] = []
    const failed: TaskCommitFailure[] = []
    let n = 0
    for (const { t, offsets } of perTask) {
      t.markCommitted(offsets)
      n += offsets.length
      try {
        await commitLocal(t, this.o.hooks)
        committed.push(t)
      } catch (e) {
        failed.push({ task: t, error: asError(e) })
      }
    }
    return { committed, failed, records, offsets: n }
  }
}
