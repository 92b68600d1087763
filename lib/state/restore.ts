/**
 * Restoration drivers (Kafka Streams: `StoreChangelogReader` in its ACTIVE and STANDBY modes).
 *
 * - {@link restoreTask}: before an active task processes, reads each changelog partition from
 *   the store's position (or the beginning) to its last stable offset, in batches, applying each
 *   batch with one LevelDB write that also moves the store's position, so an interrupted
 *   restoration resumes where it stopped.
 * - {@link StandbyTask}: keeps applying a task's changelogs continuously (numStandbyReplicas),
 *   each batch with its position, so a failover restores only the tail.
 */
import { ProcessorStateError } from '../../topology/errors.js'
import type { ChangelogPartition, ChangelogReader, TaskStateManager } from './types.js'
import { tpKey } from '../app/client/types.js'

/** Progress of one changelog partition's restoration. */
export interface RestoreProgress {
  readonly store: string
  readonly topic: string
  readonly partition: number
  /** Records applied so far. */
  readonly restored: number
  /** Offsets to cover (end − start); markers and compacted gaps make the record count smaller. */
  readonly total: number
  /** Next offset to read. */
  readonly position: string
  readonly done: boolean
}

export interface RestoreOptions {
  /** Called after every applied batch and once per partition when it is done. */
  readonly onProgress?: (progress: RestoreProgress) => void
  /** Aborts the restoration (the checkpoint keeps what was reached). */
  readonly signal?: AbortSignal
  /**
   * Call `markRestored` every this many restored records. Each batch already moves the store's
   * position (`restoreBatch` with its next offset); this only matters for a state manager that
   * ignores that argument. @defaultValue 100000
   */
  readonly checkpointEveryRecords?: number
}

/** Summary of a {@link restoreTask} run. */
export interface RestoreResult {
  /** Records applied, all partitions. */
  readonly restored: number
  /** Per changelog topic: records applied, and the offset range read. */
  readonly partitions: ReadonlyArray<{ readonly topic: string; readonly from: string; readonly to: string; readonly restored: number }>
  readonly durationMs: number
}

interface Start {
  readonly cp: ChangelogPartition
  readonly from: string | undefined
  readonly end: string
}

async function startPositions(sm: TaskStateManager, reader: ChangelogReader, parts: ReadonlyArray<ChangelogPartition>): Promise<Start[]> {
  const ends = await reader.endOffsets(parts)
  const cps = sm.checkpointedOffsets()
  const out: Start[] = []
  for (const cp of parts) {
    const end = ends.get(tpKey(cp.topic, cp.partition))
    if (end === undefined)
      throw new ProcessorStateError(`No end offset for changelog ${cp.topic}-${cp.partition}`, {
        place: { topic: cp.topic, partition: cp.partition, store: cp.store },
      })
    let from = cps.get(cp.topic)
    if (from !== undefined && BigInt(from) > BigInt(end)) {
      // The changelog is shorter than our checkpoint: recreated topic or lost data.
      if (!sm.reinitializeStore) {
        throw new ProcessorStateError(`Checkpoint ${from} is beyond the changelog end ${end}`, {
          place: { topic: cp.topic, partition: cp.partition, store: cp.store },
        })
      }
      await sm.reinitializeStore(cp.topic)
      from = undefined
    }
    out.push({ cp, from, end })
  }
  return out
}

/**
 * Restores a task's stores from their changelogs up to the current last stable offsets.
 * The state manager must be open. Partitions are read concurrently; the reader yields to the
 * event loop between batches so the group membership of the app's consumer is not starved.
 * @throws ProcessorStateError when a changelog cannot be read or applied.
 */
export async function restoreTask(sm: TaskStateManager, reader: ChangelogReader, options: RestoreOptions = {}): Promise<RestoreResult> {
  const t0 = performance.now()
  const parts = sm.changelogPartitions()
  if (parts.length === 0) return { restored: 0, partitions: [], durationMs: 0 }
  const starts = await startPositions(sm, reader, parts)
  const every = options.checkpointEveryRecords ?? 100_000
  const results = await Promise.all(
    starts.map(async ({ cp, from, end }) => {
      const fromN = from !== undefined ? BigInt(from) : 0n
      const total = Number(BigInt(end) - fromN)
      let restored = 0
      let sinceCheckpoint = 0
      let position = from ?? '0'
      const progress = (done: boolean) =>
        options.onProgress?.({ store: cp.store, topic: cp.topic, partition: cp.partition, restored, total, position, done })
      if (fromN < BigInt(end)) {
        await reader.read(
          cp.topic,
          cp.partition,
          from,
          end,
          async (records, next) => {
            // the position moves with the batch; markRestored below is then a no-op for it
            await sm.restoreBatch(cp.topic, records, next)
            restored += records.length
            sinceCheckpoint += records.length
            position = next
            if (sinceCheckpoint >= every) {
              await sm.markRestored(cp.topic, next)
              sinceCheckpoint = 0
            }
            progress(false)
          },
          options.signal,
        )
      }
      if (options.signal?.aborted) {
        if (position !== (from ?? '0')) await sm.markRestored(cp.topic, position)
        return { topic: cp.topic, from: from ?? '0', to: position, restored }
      }
      position = end
      if (from !== end) await sm.markRestored(cp.topic, end)
      progress(true)
      return { topic: cp.topic, from: from ?? '0', to: end, restored }
    }),
  )
  return { restored: results.reduce((n, r) => n + r.restored, 0), partitions: results, durationMs: performance.now() - t0 }
}

/** Options of a {@link StandbyTask}. */
export interface StandbyTaskOptions {
  /** Checkpoint at most this often, ms. @defaultValue 5000 */
  readonly checkpointIntervalMs?: number
  /** Called after every applied batch. */
  readonly onBatch?: (topic: string, records: number, nextOffset: string) => void
  /** Called when a read loop fails (the standby stops; the owner may recreate it). */
  readonly onError?: (error: unknown) => void
}

/**
 * A standby replica of a task (Kafka Streams: `StandbyTask`): applies the task's changelogs
 * continuously to its own local stores, checkpointing periodically, so that when the task fails
 * over to this instance only the tail since the last checkpoint has to be restored.
 * Give it an opened TaskStateManager; `stop()` writes a final checkpoint and leaves the state
 * manager open for the caller to close (or to promote: run {@link restoreTask} and process).
 */
export class StandbyTask {
  private readonly controller = new AbortController()
  private readonly positions = new Map<string, string>()
  private readonly checkpointed = new Map<string, string>()
  private loops: Promise<void> | undefined
  private timer: NodeJS.Timeout | undefined
  private failure: unknown
  private applied = 0

  constructor(
    private readonly sm: TaskStateManager,
    private readonly reader: ChangelogReader,
    private readonly options: StandbyTaskOptions = {},
  ) {}

  /** Records applied since start. */
  get recordsApplied(): number {
    return this.applied
  }

  /** Next offset per changelog topic that the standby has applied up to. */
  get currentPositions(): ReadonlyMap<string, string> {
    return this.positions
  }

  /** Starts the read loops (returns immediately). */
  start(): void {
    if (this.loops) return
    const cps = this.sm.checkpointedOffsets()
    const parts = this.sm.changelogPartitions()
    for (const cp of parts) {
      const from = cps.get(cp.topic)
      if (from !== undefined) this.positions.set(cp.topic, from)
    }
    this.loops = Promise.all(
      parts.map((cp) =>
        this.reader.read(
          cp.topic,
          cp.partition,
          cps.get(cp.topic),
          undefined,
          async (records, next) => {
            await this.sm.restoreBatch(cp.topic, records, next)
            this.applied += records.length
            this.positions.set(cp.topic, next)
            this.options.onBatch?.(cp.topic, records.length, next)
          },
          this.controller.signal,
        ),
      ),
    ).then(
      () => undefined,
      (err: unknown) => {
        this.failure = err
        this.controller.abort()
        this.options.onError?.(err)
      },
    )
    const interval = this.options.checkpointIntervalMs ?? 5000
    this.timer = setInterval(() => {
      this.checkpoint().catch((err: unknown) => this.options.onError?.(err))
    }, interval)
    this.timer.unref()
  }

  /** Writes the checkpoint for every position that moved since the last one. */
  async checkpoint(): Promise<void> {
    for (const [topic, off] of this.positions) {
      if (this.checkpointed.get(topic) === off) continue
      await this.sm.markRestored(topic, off)
      this.checkpointed.set(topic, off)
    }
  }

  /** Stops reading and writes a final checkpoint. Rethrows a read-loop failure. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.controller.abort()
    await this.loops
    await this.checkpoint()
    if (this.failure) throw this.failure
  }
}
