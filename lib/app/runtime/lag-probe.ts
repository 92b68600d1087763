/**
 * KIP-695 support for task idling (`maxTaskIdleMs`): a task with buffered records waits for an
 * empty partition only while that partition may still have records to fetch. Its lag is learned
 * from fetches; when it is unknown (nothing fetched since the task started or sought) or positive
 * but stale, this probe reads the partition's last stable offset (ListOffsets, read_committed),
 * one round at a time in the background. It also warns about tasks held back for a long time.
 */
import type { StreamsAdmin } from '../client/types.js'
import type { Logger } from '../logger.js'
import type { RecordQueue } from '../partition-group.js'
import { StreamTask } from '../stream-task.js'
import type { PartitionFlow } from './partition-flow.js'

/** A positive lag learned from a fetch is trusted this long (ms) before the last stable offset is read (an open transaction keeps the high watermark above what read_committed can fetch). */
const LAG_TRUST_MS = 500
/** At most one ListOffsets round for empty partitions' lags per this many ms. */
const LAG_PROBE_INTERVAL_MS = 200
/** A task held back this long (ms) by an empty partition with records to fetch gets a warning (repeated at this interval). */
const LAG_WAIT_WARN_MS = 30_000

export interface LagProbeOptions {
  readonly admin: StreamsAdmin
  readonly flow: PartitionFlow
  readonly logger: Logger
  readonly maxTaskIdleMs: number
  /** Wall-clock idle advance is on: idle tasks (nothing buffered) need their partitions' lags too. */
  readonly idleAdvance?: boolean
  /** The current task of an id (a probe's answer is dropped for a task closed meanwhile). */
  readonly taskOf: (id: string) => StreamTask | undefined
  readonly resetOf: (topic: string) => 'earliest' | 'latest'
  /** Lags were learned: the loop should look again. */
  readonly wakeUp: () => void
}

export class LagProbe {
  #probe: Promise<void> | undefined
  #lastProbe = 0
  /** Task id → since when (ms) it has been waiting for records of an empty partition. */
  readonly #waitingSince = new Map<string, number>()

  constructor(private readonly o: LagProbeOptions) {}

  /** Looks at every task; starts a ListOffsets round when some empty partition's lag is wanted. */
  check(tasks: Iterable<StreamTask>, now: number): void {
    if (this.o.maxTaskIdleMs < 0 && this.o.idleAdvance !== true) return
    const wanted: Array<{ task: StreamTask; q: RecordQueue; version: number }> = []
    for (const task of tasks) {
      if (this.o.idleAdvance === true && task.state === 'RUNNING' && task.group.size === 0) {
        // an idle task may move its stream-time only once every input is known to be caught up
        for (const q of task.group.queues) {
          const lag = q.fetchedLag()
          if (lag === 0n || (lag !== undefined && now - q.endKnownAt < LAG_TRUST_MS)) continue
          wanted.push({ task, q, version: q.version })
        }
      }
      if (this.o.maxTaskIdleMs < 0) continue
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
        this.o.logger.warn(
          `task ${task.id} has waited ${Math.round((now - since) / 1000)} s for records of ${q.topic}[${q.partition}] (position ${q.position ?? 'unknown'}, end ${q.endOffset ?? 'unknown'}, paused ${this.o.flow.isPaused(q)}) before processing its other partitions`,
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
    if (wanted.length === 0 || this.#probe || now - this.#lastProbe < LAG_PROBE_INTERVAL_MS) return
    this.#lastProbe = now
    const topics = [...new Set(wanted.map((w) => w.q.topic))]
    this.#probe = (async () => {
      const offsets = new Map<string, { high: string; low: string }>()
      for (const topic of topics) for (const [k, o] of await this.o.admin.topicOffsets(topic)) offsets.set(k, o)
      const t = Date.now()
      for (const w of wanted) {
        if (w.task.state !== 'RUNNING' || this.o.taskOf(w.task.id) !== w.task) continue
        const o = offsets.get(StreamTask.key(w.q.topic, w.q.partition))
        if (!o) continue
        // no position yet (no committed offset, nothing fetched), or one below the log start: the
        // consumer starts at the reset position
        const reset = BigInt(this.o.resetOf(w.q.topic) === 'latest' ? o.high : o.low)
        w.q.onEndOffset(BigInt(o.high), w.version, t, reset, BigInt(o.low))
      }
      this.o.wakeUp()
    })()
      .catch((e: unknown) => this.o.logger.debug(`reading end offsets for task idling failed: ${(e as Error).message}`))
      .finally(() => {
        this.#probe = undefined
      })
  }
}
