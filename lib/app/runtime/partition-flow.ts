/**
 * Fetch flow control of the group consumer (Kafka Streams: the pause/resume part of
 * `StreamThread` + `PartitionGroup`): a partition whose task queue is over
 * `bufferedRecordsPerPartition` is paused and resumed once it drained below half, so memory stays
 * bounded whatever the input rate; a task that is initializing pauses the partitions it is fetched
 * for, and resumes them after seeking to its committed offsets.
 */
import type { EventEmitter } from 'node:events'
import { splitTpKey, type GroupConsumer, type TopicPartition } from '../client/types.js'
import { emitEvent, StreamsEvents } from '../events.js'
import { StreamTask } from '../stream-task.js'

export class PartitionFlow {
  constructor(
    private readonly consumer: GroupConsumer,
    private readonly emitter: EventEmitter,
    private readonly bufferedRecordsPerPartition: number,
  ) {}

  /** Pauses one of a task's partitions (remembered in `task.paused`). */
  pauseForTask(task: StreamTask, topic: string, partition: number): void {
    const k = StreamTask.key(topic, partition)
    if (task.paused.has(k)) return
    task.paused.add(k)
    this.consumer.pause([{ topic, partition }])
  }

  /** After enqueueing a fetched batch: pauses the partition when its queue is full. */
  afterEnqueue(task: StreamTask, topic: string, partition: number, size: number): void {
    if (size < this.bufferedRecordsPerPartition || task.paused.has(StreamTask.key(topic, partition))) return
    this.pauseForTask(task, topic, partition)
    emitEvent(this.emitter, StreamsEvents.PAUSE, { topic, partition, buffered: size })
  }

  /** Resumes every partition the task paused. */
  resumeAll(task: StreamTask): void {
    for (const k of [...task.paused]) {
      task.paused.delete(k)
      this.consumer.resume([splitTpKey(k)])
    }
  }

  /** Resumes the task's paused partitions whose queue drained below half (or that it no longer has). */
  maybeResume(task: StreamTask): void {
    if (task.paused.size === 0) return
    for (const k of [...task.paused]) {
      const { topic, partition } = splitTpKey(k)
      const q = task.group.queue(topic, partition)
      if (!q || q.size <= this.bufferedRecordsPerPartition / 2) {
        task.paused.delete(k)
        this.consumer.resume([{ topic, partition }])
        emitEvent(this.emitter, StreamsEvents.RESUME, { topic, partition, buffered: q?.size ?? 0 })
      }
    }
  }

  /** Pauses partitions of a task that is closed but may come back (migrated, retrying). */
  pause(partitions: ReadonlyArray<TopicPartition>): void {
    this.consumer.pause(partitions)
  }

  resume(partitions: ReadonlyArray<TopicPartition>): void {
    this.consumer.resume(partitions)
  }

  /** Releases a closed task's partitions that it had paused. */
  release(task: StreamTask): void {
    for (const k of task.paused) this.consumer.resume([splitTpKey(k)])
  }

  seek(p: TopicPartition, offset: string): void {
    this.consumer.seek(p, offset)
  }

  isPaused(p: TopicPartition): boolean {
    return this.consumer.isPaused(p)
  }
}
