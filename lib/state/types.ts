/**
 * Contract between the state runtime (lib/state) and the app runtime (lib/app).
 *
 * Commit protocol (one path for at-least-once and exactly-once):
 *   1. `prepareCommit(collector)`: every store's dirty entries since the last commit become
 *      changelog records handed to the task's collector (nothing is written to LevelDB yet).
 *   2. the app produces the collected sink + changelog records and commits the consumed offsets
 *      (under EOS: all inside one transaction, then commitTransaction).
 *   3. `commitLocal(changelogEndOffsets)`: only after step 2 succeeded, the dirty entries are
 *      written to LevelDB in one atomic batch per store that also holds the store's position
 *      (the next changelog offset the store reflects). Under EOS local state therefore never
 *      holds effects of an aborted transaction; a crash that loses local writes loses their
 *      position with them, and restore resumes from the position the store actually reached
 *      (read_committed), so state is never behind its recorded position.
 *   On abort / task migrated: `abortUncommitted()` drops the dirty entries.
 */
import type { RawRecord, RecordCollector } from '../../topology/engine/types.js'
import type { StoreDef, StoreProvider } from '../../topology/state/types.js'

/** A changelog topic-partition the task's stores are backed by. */
export interface ChangelogPartition {
  readonly store: string
  readonly topic: string
  readonly partition: number
}

export interface TaskStateManagerOptions {
  readonly applicationId: string
  /** `<subtopology>_<partition>` */
  readonly taskId: string
  /** Root state directory; the task's stores live under `<stateDir>/<applicationId>/<taskId>/`. */
  readonly stateDir: string
  readonly stores: ReadonlyArray<StoreDef>
  /** Changelog topic of a store, or undefined when logging is disabled. */
  readonly changelogTopicFor: (store: StoreDef) => string | undefined
  /** Partition of the changelog topics (= the task's partition). */
  readonly changelogPartition: number
  /** Upper bound of cached bytes across the task's stores; exceeding it requests a commit. */
  readonly cacheMaxBytes: number
  readonly exactlyOnce: boolean
  /** Called when the cache is over its bound and a commit should happen soon. */
  readonly onCommitNeeded?: () => void
}

export interface TaskStateManager {
  /** Bytes stores for the TaskEngine (caching → change-logging → LevelDB, or in-memory). */
  readonly provider: StoreProvider
  /** Changelog partitions of this task's logged stores. */
  changelogPartitions(): ReadonlyArray<ChangelogPartition>
  /**
   * Takes the directory lock, opens LevelDB and reads each store's position (stored with its
   * data). A store LevelDB reports corrupted, or holding data without a readable position, is
   * emptied for a full restore.
   */
  open(): Promise<void>
  /**
   * Next changelog offset to restore from per changelog topic (undefined = from the beginning):
   * each store's own position, never ahead of the data it holds.
   */
  checkpointedOffsets(): ReadonlyMap<string, string | undefined>
  /**
   * Applies committed changelog records (restore, standby). Writes straight to LevelDB in one
   * batch. With `nextOffset` (the offset after `records`, as the changelog reader reports it) the
   * store's position moves to it in that same batch, which makes a following `markRestored` for
   * the same offset free; without it, call `markRestored` after the batch.
   */
  restoreBatch(topic: string, records: ReadonlyArray<RawRecord>, nextOffset?: string): Promise<void>
  /** Records that restoration of `topic` reached `nextOffset` (the store's position, one write after the data). */
  markRestored(topic: string, nextOffset: string): Promise<void>
  /** Step 1 of a commit. Returns the number of changelog records handed to the collector. */
  prepareCommit(collector: RecordCollector): Promise<number>
  /** Step 3 of a commit: `changelogEndOffsets` maps changelog topic → next offset after what was produced. */
  commitLocal(changelogEndOffsets: ReadonlyMap<string, string>): Promise<void>
  /** Drops dirty (uncommitted) entries. */
  abortUncommitted(): Promise<void>
  /**
   * Closes the stores and releases the lock; uncommitted entries are dropped. The positions are
   * kept in both cases: LevelDB only ever receives committed writes, each with its position in the
   * same batch, so restoring from it (read_committed) is safe even after an unclean EOS stop.
   */
  close(options: { clean: boolean }): Promise<void>
  /** Deletes the task directory (state must be closed). */
  wipe(): Promise<void>
  /**
   * Optional: deletes one store's local data and position so it is restored from the
   * beginning (used when the position is beyond the changelog's end, e.g. a recreated topic).
   */
  reinitializeStore?(topic: string): Promise<void>
}

/**
 * Reads given topic-partitions from given offsets with read_committed, outside the consumer group
 * (kafkajs has no manual assignment). Used for restoration, standby replicas and global stores.
 */
export interface ChangelogReader {
  /**
   * Last stable end offset (read_committed: the LSO, not the high watermark) of each partition,
   * keyed by `"<topic>:<partition>"` (`tpKey` in lib/app/client/types.ts).
   */
  endOffsets(partitions: ReadonlyArray<{ topic: string; partition: number }>): Promise<Map<string, string>>
  /**
   * Reads from `fromOffset` (undefined = beginning) until `untilOffset` (exclusive; undefined =
   * keep reading), calling `onBatch` per fetched batch. Resolves when the end is reached or `signal` aborts.
   */
  read(
    topic: string,
    partition: number,
    fromOffset: string | undefined,
    untilOffset: string | undefined,
    onBatch: (records: ReadonlyArray<RawRecord>, nextOffset: string) => Promise<void>,
    signal?: AbortSignal,
  ): Promise<void>
  /** Optional: partition numbers of `topic` (global stores read every partition). */
  partitionsFor?(topic: string): Promise<number[]>
  close(): Promise<void>
}
