/**
 * What the app runtime needs from the state runtime (lib/state) and the DSL engine
 * (topology/engine), gathered behind one interface so KafkaStreams can be tested with stand-ins
 * and the wiring lives in one file.
 */
import type { GlobalStoreDef, TaskEngine, TaskEngineOptions, TopologyDef } from '../../topology/engine/types.js'
import type { TaskStateManager, TaskStateManagerOptions } from '../state/types.js'
import type { GlobalStateManager, GlobalStateManagerOptions } from '../state/global-state.js'

export type { GlobalStateManager, GlobalStateManagerOptions } from '../state/global-state.js'

export interface StateRuntime {
  createTaskStateManager(options: TaskStateManagerOptions): TaskStateManager
  /**
   * Optional: the changelog positions (topic → next offset) of the task directories under
   * `<stateDir>/<applicationId>/`, except `skip` (Kafka Streams reads their checkpoint files), so
   * the assignor can place tasks where their state is. Without it only open tasks are reported.
   */
  readTaskDirectoryPositions?(stateDir: string, applicationId: string, skip: ReadonlySet<string>): Promise<Map<string, Map<string, bigint>>>
  /** Optional: a global store's state; without it GlobalKTables are not supported. */
  createGlobalStateManager?(options: GlobalStateManagerOptions): GlobalStateManager
}

export interface EngineRuntime {
  createTaskEngine(options: TaskEngineOptions): TaskEngine
  /** Optional: the sub-topology that maintains a global store (topology/engine's `globalSubtopologyDef`). */
  globalSubtopology?(topology: TopologyDef, def: GlobalStoreDef): import('../../topology/engine/types.js').SubtopologyDef
}
