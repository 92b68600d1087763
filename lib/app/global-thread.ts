/**
 * Global stores (Kafka Streams: `GlobalStreamThread` + `GlobalStateManagerImpl`): every instance
 * keeps a full copy of each global store's source topic (all partitions) in a local store.
 *
 * kafkajs has no manual partition assignment, so the source partitions are read with the state
 * runtime's {@link ChangelogReader} (direct Fetch requests, read_committed, outside the group).
 * `start()` bootstraps: it reads every partition from the local checkpoint to the end offset read
 * at start, applying records through the store's processor (a TaskEngine over the global
 * sub-topology: deserialize, then the materializer writes the store), and returns only then, so
 * stream tasks never see a half-loaded table. Afterwards the same readers keep following the topic
 * in the background (R1's `GlobalStoreUpdater`). Commits write the store to LevelDB and THEN the
 * per-partition checkpoint — a crash leaves the checkpoint at or behind the data, and replaying
 * the tail is idempotent.
 */
import { EventEmitter } from 'node:events'
import type { Kafka } from 'kafkajs'
import type { RawRecord, SubtopologyDef, TaskEngine, TopologyDef } from '../../topology/engine/types.js'
import { StreamsError } from '../../topology/errors.js'
import type { StateStore } from '../../topology/state/types.js'
import { GlobalStoreUpdater } from '../state/global-state.js'
import type { ChangelogReader } from '../state/types.js'
import { emitEvent, StreamsEvents } from './events.js'
import type { ResolvedStreamsConfig } from './options.js'
import type { EngineRuntime, GlobalStateManager, StateRuntime } from './state-runtime.js'

export interface GlobalStreamThreadOptions {
  readonly config: ResolvedStreamsConfig
  readonly topology: TopologyDef
  readonly kafka: Kafka
  readonly engine: EngineRuntime
  readonly state: StateRuntime
  readonly emitter: EventEmitter
  readonly onFatal: (error: Error) => void
}

interface GlobalStoreState {
  readonly name: string
  readonly manager: GlobalStateManager
  readonly engine: TaskEngine
  readonly updater: GlobalStoreUpdater
}

const NOOP_COLLECTOR = { send: () => undefined }

export class GlobalStreamThread {
  readonly #o: GlobalStreamThreadOptions
  readonly #stores = new Map<string, GlobalStoreState>()
  #reader: ChangelogReader | undefined

  constructor(options: GlobalStreamThreadOptions) {
    this.#o = options
  }

  /** Typed store facade by name (for tasks' `getStateStore` and interactive queries). */
  store(name: string): StateStore | undefined {
    return this.#stores.get(name)?.engine.getStateStore(name)
  }

  /** Opens the global stores, bootstraps them to the end of their topics, then keeps them current. */
  async start(): Promise<void> {
    const { config: c, topology, kafka } = this.#o
    const create = this.#o.state.createGlobalStateManager
    if (!create) throw new StreamsError('this state runtime does not support global stores')
    const reader = (this.#reader = this.#o.state.createChangelogReader(kafka, c.logger))
    for (const g of topology.globalStores) {
      const topic = g.source.topics[0]
      if (!topic) continue
      const manager = create({ applicationId: c.applicationId, stateDir: c.stateDir, def: g, cacheMaxBytes: Math.max(1024 * 1024, Math.floor(c.statestoreCacheMaxBytes / 4)) })
      await manager.open()
      const sub: SubtopologyDef = this.#o.engine.globalSubtopology
        ? this.#o.engine.globalSubtopology(topology, g)
        : { id: -1, nodes: [{ ...g.source, children: [g.processor.name] }, { ...g.processor, children: [] }], sourceTopics: [...g.source.topics], sinkTopics: [], stores: [g.store.name] }
      const stores = new Map(topology.stores)
      stores.set(g.store.name, g.store)
      const engine = this.#o.engine.createTaskEngine({
        topology: { ...topology, stores },
        subtopology: sub,
        taskId: { subtopology: sub.id, partition: 0 },
        stores: manager.provider,
        collector: NOOP_COLLECTOR,
        clock: Date.now,
        defaultKeySerde: c.defaultKeySerde,
        defaultValueSerde: c.defaultValueSerde,
        defaultTimestampExtractor: c.defaultTimestampExtractor,
      })
      await engine.init()
      // one engine, several partitions read concurrently: apply batches one at a time
      let chain: Promise<void> = Promise.resolve()
      const apply = (records: ReadonlyArray<RawRecord>): Promise<void> => {
        const run = chain.then(async () => {
          await engine.prepareBatch(records)
          for (const r of records) await engine.process(r)
        })
        chain = run.catch(() => undefined)
        return run
      }
      const updater = new GlobalStoreUpdater({
        manager,
        reader,
        topic,
        apply,
        commitIntervalMs: Math.min(c.commitIntervalMs, 1000),
        onError: (e) => this.#o.onFatal(e instanceof Error ? e : new Error(String(e))),
      })
      this.#stores.set(g.store.name, { name: g.store.name, manager, engine, updater })
      const started = Date.now()
      const restored = await updater.bootstrap()
      emitEvent(this.#o.emitter, StreamsEvents.RESTORE_END, { taskId: 'global', topic, partition: -1, restored, durationMs: Date.now() - started })
      c.logger.info(`global store ${g.store.name} bootstrapped from ${topic}: ${restored} record(s) in ${Date.now() - started} ms`)
      await updater.start()
    }
  }

  async stop(): Promise<void> {
    for (const st of this.#stores.values()) {
      await st.updater.stop().catch((e: unknown) => this.#o.config.logger.warn(`global store ${st.name}: ${(e as Error).message}`))
      await st.engine.close().catch(() => undefined)
      await st.manager.close().catch(() => undefined)
    }
    this.#stores.clear()
    await this.#reader?.close().catch(() => undefined)
  }
}
