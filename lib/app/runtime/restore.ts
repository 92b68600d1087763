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
  ): Promise<boolean> {
    const parts = sm.changelogPartitions()
    if (parts.length === 0) return !signal.aborted
    const reader = this.o.reader
    const ends = await reader.endOffsets(parts.map((p) => ({ topic: p.topic, partition: p.partition })))
    const checkpoints = sm.checkpointedOffsets()
    for (const p of parts) {
      if (signal.aborted) return false
      let end = ends.get(tpKey(p.topic, p.partition))
      const limit = sourceLimit(p.topic)
      if (limit !== undefined && end !== undefined && limit < BigInt(end)) end = limit.toString()
      if (end === undefined) continue
      const from = checkpoints.get(p.topic)
      const fromN = from === undefined ? 0n : BigInt(from)
      if (fromN >= BigInt(end)) continue
      const total = Number(BigInt(end) - fromN)
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
          emitEvent(this.o.emitter, StreamsEvents.RESTORE_PROGRESS, { taskId, topic: p.topic, partition: p.partition, restored, total })
        },
        signal,
      )
      if (signal.aborted) return false
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

  /** Applies the changelogs of a standby's state continuously, until `signal` aborts. */
  async follow(sm: TaskStateManager, signal: AbortSignal): Promise<void> {
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
          },
          signal,
        ),
      ),
    )
  }
}
