/**
 * The state runtime (Kafka Streams: `org.apache.kafka.streams.state.internals` +
 * `processor.internals.ProcessorStateManager`/`StoreChangelogReader`): LevelDB stores with a
 * write buffer and clean cache, changelogs, checkpoints, restoration, standby replicas and
 * global stores. Used by the app runtime (lib/app); not part of the public API.
 */
import type { Kafka } from 'kafkajs'
import { createChangelogReader, type ReaderLogger } from './changelog-reader.js'
import { createGlobalStateManager, type GlobalStateManager, type GlobalStateManagerOptions } from './global-state.js'
import { createTaskStateManager } from './task-state-manager.js'
import type { ChangelogReader, TaskStateManager, TaskStateManagerOptions } from './types.js'

export type * from './types.js'
export { createTaskStateManager, type CreateTaskStateManagerOptions, type TaskStateManagerExtras, type StateLogger } from './task-state-manager.js'
export { createChangelogReader, topicPartitionKey, type ChangelogReaderOptions, type ReaderLogger } from './changelog-reader.js'
export { restoreTask, StandbyTask, type RestoreOptions, type RestoreProgress, type RestoreResult, type StandbyTaskOptions } from './restore.js'
export { createGlobalStateManager, GlobalStoreUpdater, type GlobalStateManager, type GlobalStateManagerOptions, type GlobalStoreUpdaterOptions } from './global-state.js'
export { RuntimeKeyValueStore, RuntimeWindowStore, RuntimeSessionStore, createRuntimeStore, defaultSegmentInterval, type RuntimeStore } from './stores.js'
export { LevelDbBackend, MemoryBackend, type OrderedBytesBackend } from './backend.js'
export { CacheBudget } from './cache.js'

/**
 * The state runtime in the shape lib/app/state-runtime.ts (`StateRuntime`) expects.
 * `createChangelogReader` reuses the app's kafkajs client (brokers, TLS, SASL).
 */
export const stateRuntime = {
  createTaskStateManager: (options: TaskStateManagerOptions): TaskStateManager => createTaskStateManager(options),
  createChangelogReader: (kafka: Kafka, logger?: ReaderLogger): ChangelogReader => createChangelogReader({ kafka, ...(logger ? { logger } : {}) }),
  createGlobalStateManager: (options: GlobalStateManagerOptions): GlobalStateManager => createGlobalStateManager(options),
}
