/**
 * What the app runtime needs from the state runtime (lib/state) and the DSL engine
 * (topology/engine), gathered behind one interface so KafkaStreams can be tested with stand-ins
 * and the wiring lives in one file.
 */
import type { Kafka } from 'kafkajs'
import type { GlobalStoreDef, TaskEngine, TaskEngineOptions, TopologyDef } from '../../topology/engine/types.js'
import type { ChangelogReader, TaskStateManager, TaskStateManagerOptions } from '../state/types.js'
import type { StoreProvider } from '../../topology/state/types.js'
import type { Logger } from './logger.js'

/** State of one global store (one LevelDB per global store under `<stateDir>/<applicationId>/global/`). */
export interface GlobalStateManager {
  /** Bytes stores for the global store's TaskEngine. */
  readonly provider: StoreProvider
  open(): Promise<void>
  /** Next offset per source partition (`partition → offset`), undefined = from the beginning. */
  checkpointedOffsets(): ReadonlyMap<number, string | undefined>
  /** Makes the applied records durable with the next offset of each partition. */
  commit(offsets: ReadonlyMap<number, string>): Promise<void>
  close(): Promise<void>
}

export interface GlobalStateManagerOptions {
  readonly applicationId: string
  readonly stateDir: string
  readonly def: GlobalStoreDef
  readonly cacheMaxBytes: number
}

export interface StateRuntime {
  createTaskStateManager(options: TaskStateManagerOptions): TaskStateManager
  createChangelogReader(kafka: Kafka, logger: Logger): ChangelogReader
  /** Optional: a global store's state; without it GlobalKTables are not supported. */
  createGlobalStateManager?(options: GlobalStateManagerOptions): GlobalStateManager
}

export interface EngineRuntime {
  createTaskEngine(options: TaskEngineOptions): TaskEngine
  /** Optional: the sub-topology that maintains a global store (topology/engine's `globalSubtopologyDef`). */
  globalSubtopology?(topology: TopologyDef, def: GlobalStoreDef): import('../../topology/engine/types.js').SubtopologyDef
}
