/**
 * Global stores (Kafka Streams: `GlobalStreamThread` + `GlobalStateManagerImpl`): every instance
 * keeps a full copy of each global store's source topic (all partitions) in a local store.
 *
 * The source partitions are read with the client's {@link ChangelogReader} (direct Fetch requests, read_committed, outside the group).
 * `start()` bootstraps: it reads every partition from the local checkpoint to the end offset read
 * at start, applying records through the store's processor (a TaskEngine over the global
 * sub-topology: deserialize, then the materializer writes the store), and returns only then, so
 * stream tasks never see a half-loaded table. Afterwards the same readers keep following the topic
 * in the background (lib/state's `GlobalStoreUpdater`). Commits write the store to LevelDB and THEN the
 * per-partition checkpoint — a crash leaves the checkpoint at or behind the data, and replaying
 * the tail is idempotent.
 */
import { EventEmitter } from 'node:events'
import type { RawRecord, SubtopologyDef, TaskEngine, TopologyDef } from '../../topology/engine/types.js'
import { StreamsError } from '../../topology/errors.js'
import { backoffMs, classifyError } from './error-policy.js'
import type { StateStore } from '../../topology/state/types.js'
import { GlobalStoreUpdater } from '../state/global-state.js'
import type { ChangelogReader } from '../state/types.js'
import type { StreamsClient } from './client/types.js'
import { emitEvent, StreamsEvents } from './events.js'
import type { ResolvedStreamsConfig } from './options.js'
import type { EngineRuntime, GlobalStateManager, StateRuntime } from './state-runtime.js'

export interface GlobalStreamThreadOptions {
  readonly config: ResolvedStreamsConfig
  readonly topology: TopologyDef
  /** The client whose changelog reader reads the global topics. */
  readonly client: Pick<StreamsClient, 'changelogReader'>
  readonly engine: EngineRuntime
  readonly state: StateRuntime
  readonly emitter: EventEmitter
  readonly onFatal: (error: Error) => void
}

interface GlobalStoreState {
  readonly name: string
  readonly manager: GlobalStateManager
  readonly engine: TaskEngine
  updater: GlobalStoreUpdater
  /** Makes a new updater (the first one, and after a retriable failure). */
  readonly newUpdater: () => GlobalStoreUpdater
  /** Retriable failures in a row (KIP-572): since when, how many, the last one's time. */
  retry: { since: number; attempts: number; lastAt: number } | undefined
  retryTimer: NodeJS.Timeout | undefined
}

const NOOP_COLLECTOR = { send: () => undefined }

export class GlobalStreamThread {
  readonly #o: GlobalStreamThreadOptions
  readonly #stores = new Map<string, GlobalStoreState>()
  #reader: ChangelogReader | undefined
  #stopping = false

  constructor(options: GlobalStreamThreadOptions) {
    this.#o = options
  }

  /** Typed store facade by name (for tasks' `getStateStore` and interactive queries). */
  store(name: string): StateStore | undefined {
    return this.#stores.get(name)?.engine.getStateStore(name)
  }

  /** Opens the global stores, bootstraps them to the end of their topics, then keeps them current. */
  async start(): Promise<void> {
    const { config: c, topology, client } = this.#o
    const create = this.#o.state.createGlobalStateManager
    if (!create) throw new StreamsError('this state runtime does not support global stores')
    const reader = (this.#reader = client.changelogReader())
    for (const g of topology.globalStores) {
      const topic = g.source.topics[0]
      if (!topic) continue
      const manager = create({
        applicationId: c.applicationId,
        stateDir: c.stateDir,
        def: g,
        cacheMaxBytes: Math.max(1024 * 1024, Math.floor(c.statestoreCacheMaxBytes / 4)),
      })
      await manager.open()
      const sub: SubtopologyDef = this.#o.engine.globalSubtopology
        ? this.#o.engine.globalSubtopology(topology, g)
        : {
            id: -1,
            nodes: [
              { ...g.source, children: [g.processor.name] },
              { ...g.processor, children: [] },
            ],
            sourceTopics: [...g.source.topics],
            sinkTopics: [],
            stores: [g.store.name],
          }
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
      const name = g.store.name
      const newUpdater = (): GlobalStoreUpdater =>
        new GlobalStoreUpdater({
          manager,
          reader,
          topic,
          apply,
          commitIntervalMs: Math.min(c.commitIntervalMs, 1000),
          onError: (e) => this.#onUpdaterError(name, e),
        })
      const st: GlobalStoreState = { name, manager, engine, updater: newUpdater(), newUpdater, retry: undefined, retryTimer: undefined }
      this.#stores.set(name, st)
      const started = Date.now()
      const restored = await this.#bootstrap(st)
      emitEvent(this.#o.emitter, StreamsEvents.RESTORE_END, {
        taskId: 'global',
        topic,
        partition: -1,
        restored,
        durationMs: Date.now() - started,
      })
      c.logger.info(`global store ${g.store.name} bootstrapped from ${topic}: ${restored} record(s) in ${Date.now() - started} ms`)
      await st.updater.start()
    }
  }

  /** Bootstraps one store, retrying retriable errors (a broker restarting) with backoff for up to taskTimeoutMs. */
  async #bootstrap(st: GlobalStoreState): Promise<number> {
    const c = this.#o.config
    const since = Date.now()
    for (let attempt = 0; ; attempt++) {
      try {
        return await st.updater.bootstrap()
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e))
        const waited = Date.now() - since
        if (this.#stopping || classifyError(err) !== 'retriable' || waited >= c.taskTimeoutMs) throw err
        const delay = backoffMs(attempt, c.retryBackoffMs, c.retryBackoffMaxMs)
        c.logger.warn(
          `global store ${st.name}: bootstrap hit a retriable error (${err.message}); retrying in ${delay} ms (retrying for ${Math.round(waited / 1000)} s, taskTimeoutMs ${c.taskTimeoutMs})`,
        )
        await st.updater.stop().catch(() => undefined)
        st.updater = st.newUpdater()
        await new Promise((r) => setTimeout(r, delay))
      }
    }
  }

  /**
   * A global store's background reader failed. Retriable (a broker restarting, a leader moving):
   * a new reader starts from the store's committed position after a backoff, for up to
   * taskTimeoutMs of failures in a row; anything else is fatal for the client.
   */
  #onUpdaterError(name: string, e: unknown): void {
    const c = this.#o.config
    const err = e instanceof Error ? e : new Error(String(e))
    const st = this.#stores.get(name)
    if (this.#stopping || !st) return
    if (classifyError(err) !== 'retriable') {
      this.#o.onFatal(err)
      return
    }
    const now = Date.now()
    // a failure long after the previous one starts a new series
    if (!st.retry || now - st.retry.lastAt > 3 * c.retryBackoffMaxMs + c.taskTimeoutMs / 10)
      st.retry = { since: now, attempts: 0, lastAt: now }
    st.retry.attempts++
    st.retry.lastAt = now
    const waited = now - st.retry.since
    if (waited >= c.taskTimeoutMs) {
      this.#o.onFatal(
        new StreamsError(
          `global store ${name} failed with retriable errors for ${waited} ms, longer than taskTimeoutMs (${c.taskTimeoutMs} ms): ${err.message}`,
          { cause: err },
        ),
      )
      return
    }
    const delay = backoffMs(st.retry.attempts - 1, c.retryBackoffMs, c.retryBackoffMaxMs)
    c.logger.warn(
      `global store ${name}: retriable error (${err.message}); reading again in ${delay} ms (attempt ${st.retry.attempts}, retrying for ${Math.round(waited / 1000)} s)`,
    )
    clearTimeout(st.retryTimer)
    st.retryTimer = setTimeout(() => {
      st.retryTimer = undefined
      void (async () => {
        await st.updater.stop().catch(() => undefined)
        if (this.#stopping) return
        st.updater = st.newUpdater()
        await st.updater.start()
      })().catch((e2: unknown) => this.#onUpdaterError(name, e2))
    }, delay)
  }

  async stop(): Promise<void> {
    this.#stopping = true
    for (const st of this.#stores.values()) {
      clearTimeout(st.retryTimer)
      await st.updater.stop().catch((e: unknown) => this.#o.config.logger.warn(`global store ${st.name}: ${(e as Error).message}`))
      await st.engine.close().catch(() => undefined)
      await st.manager.close().catch(() => undefined)
    }
    this.#stores.clear()
    await this.#reader?.close().catch(() => undefined)
  }
}
