/**
 * Restoration of a task's stores from their changelogs (Kafka Streams: `StoreChangelogReader`):
 * from each store's position (its checkpoint) to the changelog's last stable offset, read with
 * read_committed outside the group. Standby tasks follow the changelogs without an end.
 *
 * Every applied batch moves the store's position with its data, so an interrupted restore leaves
 * the store at the last batch it applied, never further; the task resumes from there next time.
 */
import type { EventEmitter } from 'node:events'
import type { ChangelogReader, TaskStateManager } from '../../state/types.js'
import { tpKey } from '../client/types.js'
import { emitEvent, StreamsEvents } from '../events.js'
import type { Logger } from '../logger.js'
import type { CountRecorder } from '../../metrics/types.js'

/**
 * What a restoration reports as it goes (KIP-869): `restore-rate/-total` per applied record,
 * `restore-remaining-records-total` from `progress.remaining`, and the progress {@link KafkaStreams.health} shows.
 */
export interface RestoreObserver {
  /** `restore-rate/-total` of the task (records). */
  readonly restored?: CountRecorder
  /** Registers the task's `restore-remaining-records-total` gauge. */
  readonly remainingGauge?: (remaining: () => number) => void
  /** Filled in when the restoration starts, updated per applied batch. */
  readonly progress?: { restored: number; remaining: number; total: number }
}

export interface RestoreCoordinatorOptions {
  readonly reader: ChangelogReader
  readonly emitter: EventEmitter
  readonly logger: Logger
}

export class RestoreCoordinator {
  constructor(private readonly o: RestoreCoordinatorOptions) {}

  /**
   * Restores every changelog partition of `sm` to its end. A changelog that is also a source
   * topic (a source KTable) is restored only up to `sourceLimit(topic)` (the committed input
   * offset): records past it are processed, not restored.
   * @returns false when `signal` aborted the restore (the task must not run), true when complete
   */
  async restore(
    taskId: string,
    sm: TaskStateManager,
    signal: AbortSignal,
    sourceLimit: (topic: string) => bigint | undefined,
    observer: RestoreObserver = {},
  ): Promise<boolean> {
    const parts = sm.changelogPartitions()
    if (parts.length === 0) return !signal.aborted
    const reader = this.o.reader
    const ends = await reader.endOffsets(parts.map((p) => ({ topic: p.topic, partition: p.partition })))
    const checkpoints = sm.checkpointedOffsets()
    const plan: Array<{ p: (typeof parts)[number]; from: string | undefined; fromN: bigint; end: string; total: number }> = []
    for (const p of parts) {
      let end = ends.get(tpKey(p.topic, p.partition))
      const limit = sourceLimit(p.topic)
      if (limit !== undefined && end !== undefined && limit < BigInt(end)) end = limit.toString()
      if (end === undefined) continue
      const from = checkpoints.get(p.topic)
      const fromN = from === undefined ? 0n : BigInt(from)
      if (fromN >= BigInt(end)) continue
      plan.push({ p, from, fromN, end, total: Number(BigInt(end) - fromN) })
    }
    const all = plan.reduce((n, x) => n + x.total, 0)
    const progress = observer.progress ?? { restored: 0, remaining: 0, total: 0 }
    progress.restored = 0
    progress.remaining = progress.total = all
    observer.remainingGauge?.(() => progress.remaining)
    // offsets of the changelog partitions already restored (markers and aborted records take offsets too)
    let behind = 0
    for (const { p, from, fromN, end, total } of plan) {
      if (signal.aborted) return false
      const started = Date.now()
      let restored = 0
      emitEvent(this.o.emitter, StreamsEvents.RESTORE_START, {
        taskId,
        store: p.store,
        topic: p.topic,
        partition: p.partition,
        fromOffset: from,
        endOffset: end,
        total,
      })
      this.o.logger.info(`restoring ${p.topic}[${p.partition}] from ${from ?? 'beginning'} to ${end}`, { taskId })
      await reader.read(
        p.topic,
        p.partition,
        from,
        end,
        async (records, nextOffset) => {
          if (signal.aborted) return
          // data and position in one batch (markRestored then writes nothing)
          if (records.length) await sm.restoreBatch(p.topic, records, nextOffset)
          await sm.markRestored(p.topic, nextOffset)
          restored += records.length
          progress.restored += records.length
          progress.remaining = Math.max(0, all - behind - Number(BigInt(nextOffset) - fromN))
          observer.restored?.record(records.length)
          emitEvent(this.o.emitter, StreamsEvents.RESTORE_PROGRESS, { taskId, topic: p.topic, partition: p.partition, restored, total })
        },
        signal,
      )
      if (signal.aborted) return false
      behind += total
      progress.remaining = all - behind
      emitEvent(this.o.emitter, StreamsEvents.RESTORE_END, {
        taskId,
        topic: p.topic,
        partition: p.partition,
        restored,
        durationMs: Date.now() - started,
      })
    }
    return !signal.aborted
  }

  /**
   * Applies the changelogs of a standby's state continuously, until `signal` aborts.
   * @param updated the standby's `update-rate/-total` sensor (KIP-869): records applied
   */
  async follow(sm: TaskStateManager, signal: AbortSignal, updated?: CountRecorder): Promise<void> {
    const checkpoints = sm.checkpointedOffsets()
    await Promise.all(
      sm.changelogPartitions().map((p) =>
        this.o.reader.read(
          p.topic,
          p.partition,
          checkpoints.get(p.topic),
          undefined,
          async (records, next) => {
            if (signal.aborted) return
            if (records.length) await sm.restoreBatch(p.topic, records, next)
            await sm.markRestored(p.topic, next)
            if (records.length) updated?.record(records.length)
          },
          signal,
        ),
      ),
    )
  }
}
