/**
 * Takes the group consumer's fetched batches into the tasks' partition queues (Kafka Streams:
 * `StreamThread#pollPhase` → `TaskManager#addRecordsToTasks`). kafkajs fetches in its own loop, so
 * a "poll" here is the hand-over of one fetched batch: it is appended to the owning task's queue
 * and its offsets resolved (the fetch position moves; nothing is committed), the partition's lag
 * recorded (`records-lag`) and the partition paused when its queue is full (see
 * {@link PartitionFlow}). A batch of a task that is not running yet is left unresolved and its
 * partition paused: whatever we buffered now would be dropped when the task seeks to its committed
 * offsets.
 */
import type { FetchedBatch, SkippedBatch } from '../client/types.js'
import type { StreamTask } from '../stream-task.js'
import type { ConsumerLagMetrics, ThreadMetrics } from '../../metrics/streams-metrics.js'
import type { PartitionFlow } from './partition-flow.js'

export interface FetchIntakeOptions {
  /** The active task consuming a partition, if any. */
  readonly taskOf: (topic: string, partition: number) => StreamTask | undefined
  readonly flow: Pick<PartitionFlow, 'pauseForTask' | 'afterEnqueue'>
  readonly metrics: { readonly thread: Pick<ThreadMetrics, 'poll' | 'pollRecords'>; readonly lag: Pick<ConsumerLagMetrics, 'record'> }
  /** Wakes the processing loop (records arrived, or a partition is known to be drained). */
  readonly wakeUp: () => void
  /**
   * A run until caught up: the batch without its records at or beyond the partition's target, or
   * undefined to drop it whole (see run-until-caught-up.ts). @defaultValue every batch taken whole
   */
  readonly clip?: (task: StreamTask, batch: FetchedBatch) => FetchedBatch | undefined
}

export class FetchIntake {
  constructor(private readonly o: FetchIntakeOptions) {}

  /** The consumer's `onBatch`: whether the batch was taken (its offsets resolved). */
  async onBatch(batch: FetchedBatch, heartbeat: () => Promise<void>): Promise<boolean> {
    const started = performance.now()
    const taken = await this.#take(batch, heartbeat)
    const m = this.o.metrics.thread
    m.poll.record(performance.now() - started)
    m.pollRecords.record(taken ? batch.records.length : 0)
    return taken
  }

  /** The consumer's `onSkipped`: a fetched range without records (transaction markers, compacted away). */
  onSkipped(b: SkippedBatch): void {
    const task = this.o.taskOf(b.topic, b.partition)
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
      this.o.wakeUp()
    }
    // a batch of markers only (e.g. the commit marker after the last record): the lag drops to 0
    this.#recordLag(b.topic, b.partition, q?.fetchedLag())
  }

  async #take(fetched: FetchedBatch, heartbeat: () => Promise<void>): Promise<boolean> {
    const { topic, partition } = fetched
    const task = this.o.taskOf(topic, partition)
    if (!task || task.state === 'CLOSED') return false // not ours (any more)
    if (task.state !== 'RUNNING') {
      this.o.flow.pauseForTask(task, topic, partition)
      return false
    }
    const batch = this.o.clip ? this.o.clip(task, fetched) : fetched
    if (!batch) return true
    const size = task.enqueue(topic, partition, batch.records)
    // the position after this batch (its trailing markers included) and the partition's end: its lag
    const q = task.group.queue(topic, partition)
    q?.onFetched(BigInt(batch.lastOffset), BigInt(batch.highWatermark), Date.now())
    this.#recordLag(topic, partition, q?.fetchedLag())
    this.o.flow.afterEnqueue(task, topic, partition, size)
    this.o.wakeUp()
    await heartbeat()
    return true
  }

  /** `records-lag` of a partition: high watermark − fetch position, markers included. */
  #recordLag(topic: string, partition: number, lag: bigint | undefined): void {
    if (lag !== undefined) this.o.metrics.lag.record(topic, partition, Number(lag))
  }
}
