/**
 * Default wiring of the app runtime to the state runtime (lib/state) and the task engine
 * (topology/engine).
 */
import { createTaskStateManager } from '../state/task-state-manager.js'
import { createGlobalStateManager } from '../state/global-state.js'
import { readTaskDirectoryPositions } from '../state/task-directories.js'
import { StreamsError } from '../../topology/errors.js'
import type { ResolvedStreamsConfig } from './options.js'
import type { EngineRuntime, StateRuntime } from './state-runtime.js'

/** The LevelDB task state (lib/state), logging through the app's logger. */
export function defaultStateRuntime(config: ResolvedStreamsConfig): StateRuntime {
  const log = config.logger
  return {
    createTaskStateManager: (options) =>
      createTaskStateManager({
        ...options,
        lockWaitMs: 2_000,
        logger: log,
      }),
    readTaskDirectoryPositions,
    createGlobalStateManager: (options) => createGlobalStateManager({ ...options, logger: log }),
  }
}

/** The task engine of topology/engine, which runs the DSL's processors. */
export async function defaultEngineRuntime(): Promise<EngineRuntime> {
  const spec = '../../topology/engine/index.js'
  let mod: Record<string, unknown>
  try {
    mod = (await import(spec)) as Record<string, unknown>
  } catch (e) {
    throw new StreamsError(`the task engine (topology/engine/index.js) is not available: ${(e as Error).message}`, { cause: e })
  }
  const createTaskEngine = mod.createTaskEngine as EngineRuntime['createTaskEngine'] | undefined
  if (typeof createTaskEngine !== 'function') throw new StreamsError('topology/engine/index.js does not export createTaskEngine')
  const globalSubtopologyDef = mod.globalSubtopologyDef as
    ((def: import('../../topology/engine/types.js').GlobalStoreDef) => import('../../topology/engine/types.js').SubtopologyDef) | undefined
  return { createTaskEngine, globalSubtopology: globalSubtopologyDef ? (_topology, def) => globalSubtopologyDef(def) : undefined }
}
