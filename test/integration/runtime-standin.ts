/**
 * A tiny stand-in TaskEngine + TopologyDef (a per-key counter over a logged key-value store) so the
 * runtime can be exercised against the real broker independently of the DSL engine. Only for the
 * runtime's own tests.
 */
import type { EngineRuntime } from '../../lib/app/state-runtime.js'
import type { OutputRecord, RawRecord, TaskEngine, TaskEngineOptions, TopologyDef } from '../../topology/engine/types.js'
import { SerializationError } from '../../topology/errors.js'
import type { KeyValueBytesStore, StoreDef } from '../../topology/state/types.js'

export function countTopology(applicationId: string, input: string, output: string, store = 'counts'): TopologyDef {
  const storeDef: StoreDef = { name: store, type: 'keyValue', loggingEnabled: true, logConfig: {}, cachingEnabled: true, persistent: true }
  return {
    applicationId,
    subtopologies: [
      {
        id: 0,
        nodes: [{ type: 'source', name: 'SRC', topics: [input], children: ['COUNT'] }],
        sourceTopics: [input],
        sinkTopics: [output],
        stores: [store],
      },
    ],
    stores: new Map([[store, storeDef]]),
    globalStores: [],
    repartitionTopics: [],
    changelogTopics: [{ name: `${applicationId}-${store}-changelog`, kind: 'changelog', config: { 'cleanup.policy': 'compact' } }],
  }
}

/** Counts records per key; values must be UTF-8 strings not starting with '!' (else a SerializationError through the handler). */
export const countEngineRuntime: EngineRuntime = {
  createTaskEngine(o: TaskEngineOptions): TaskEngine {
    let kv: KeyValueBytesStore
    let streamTime = -1
    const storeName = o.subtopology.stores[0]!
    return {
      taskId: o.taskId,
      async init() {
        kv = await o.stores.keyValue(o.topology.stores.get(storeName)!)
      },
      async prepareBatch() {},
      async process(r: RawRecord) {
        if (r.value && r.value[0] === 0x21) {
          const err = new SerializationError('bad value', { place: { taskId: `${o.taskId.subtopology}_${o.taskId.partition}`, topic: r.topic, partition: r.partition, offset: r.offset } })
          const decision = o.deserializationExceptionHandler?.(err, r, o.taskId) ?? 'fail'
          if (decision === 'fail') throw err
          return
        }
        streamTime = Math.max(streamTime, r.timestamp)
        const key = r.key ?? Buffer.alloc(0)
        const cur = await kv.get(key)
        const n = (cur ? cur.readInt32BE(0) : 0) + 1
        const b = Buffer.alloc(4)
        b.writeInt32BE(n)
        await kv.put(key, b)
        const out: OutputRecord = { topic: o.subtopology.sinkTopics[0]!, key, value: Buffer.from(String(n)), timestamp: r.timestamp, headers: {} }
        o.collector.send(out)
      },
      streamTime: () => streamTime,
      async punctuateWallClock() {
        return false
      },
      getStateStore: () => undefined,
      bytesStores: () => new Map(),
      async close() {},
    }
  },
}
