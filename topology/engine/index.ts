/**
 * Task engine entry points: `createTaskEngine(options)` runs one sub-topology for one partition;
 * `globalSubtopologyDef(globalStore)` turns a global store into a sub-topology that a TaskEngine
 * can run (the global "task" that keeps a global store up to date).
 */
import type { GlobalStoreDef, SubtopologyDef, TaskEngine, TaskEngineOptions } from './types.js'
import { DefaultTaskEngine } from './task-engine.js'

/**
 * Creates a {@link TaskEngine} (see topology/engine/types.ts for the contract). Call `init()`
 * before `process()`.
 * @throws TopologyError when `topology`/`subtopology` are missing
 */
export function createTaskEngine(options: TaskEngineOptions): TaskEngine {
  return new DefaultTaskEngine(options)
}

/** Id used for sub-topologies made by {@link globalSubtopologyDef}. */
export const GLOBAL_SUBTOPOLOGY_ID = -1

/**
 * A sub-topology running a global store's source and update processor, so a TaskEngine can keep
 * the global store current (records of every partition of the global topic go through it).
 */
export function globalSubtopologyDef(global: GlobalStoreDef): SubtopologyDef {
  return {
    id: GLOBAL_SUBTOPOLOGY_ID,
    nodes: [
      { ...global.source, children: [global.processor.name] },
      { ...global.processor, children: [] },
    ],
    sourceTopics: [...global.source.topics],
    sinkTopics: [],
    stores: [global.store.name],
  }
}

export { DefaultTaskEngine } from './task-engine.js'
