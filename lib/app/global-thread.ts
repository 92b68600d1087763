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
 * in the background. After each applied batch the store is written to LevelDB and THEN the
 * per-partition checkpoint (`<stateDir>/<applicationId>/global/<store>.offsets.json`) — a crash
 * leaves the checkpoint at or behind the data, and replaying the tail is idempotent.
 */
import { EventEmitter } from 'node:events'
import fs from 'node:fs/promises'
import path from 'node:path'
import type { Kafka } from 'kafkajs'
import type { GlobalStoreDef, RawRecord, SubtopologyDef, TaskEngine, TopologyDef } from '../../topology/engine/types.js'
import type { StateStore, StoreDef } from '../../topology/state/types.js'
import type { ChangelogReader, TaskStateManager } from '../state/types.js'
import { emitEvent, StreamsEvents } from './events.js'
import type { ResolvedStreamsConfig } from './options.js'
import type { EngineRuntime, StateRuntime } from './state-runtime.js'

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
  readonly def: GlobalStoreDef
  readonly topic: string
  sm: TaskStateManager
  engine: TaskEngine
  offsets: Map<number, string>
  chain: Promise<void>
  readonly checkpointFile: string
}

const NOOP_COLLECTOR = { send: () => undefined }

export class GlobalStreamThread {
  readonly #o: GlobalStreamThreadOptions
  readonly #stores = new Map<string, GlobalStoreState>()
  readonly #abort = new AbortController()
  #reader: ChangelogReader | undefined
  #running: Promise<unknown> | undefined

  constructor(options: GlobalStreamThreadOptions) {
    this.#o = options
  }

  /** Typed store facade by name (for tasks' `getStateStore` and interactive queries). */
  store(name: string): StateStore | undefined {
    return this.#stores.get(name)?.engine.getStateStore(name)
  }

  /** Opens the global stores and bootstraps them to the end of their topics. */
  async start(): Promise<void> {
    const { config: c, topology, kafka } = this.#o
    const reader = (this.#reader = this.#o.state.createChangelogReader(kafka, c.logger))
    const dir = path.join(c.stateDir, c.applicationId, 'global')
    await fs.mkdir(dir, { recursive: true })
    for (const g of topology.globalStores) {
      const topic = g.source.topics[0]
      if (!topic) continue
      const storeDef: StoreDef = { ...g.store, loggingEnabled: false }
      const sm = this.#o.state.createTaskStateManager({
        applicationId: c.applicationId,
        taskId: `global-${g.store.name}`,
        stateDir: c.stateDir,
        stores: [storeDef],
        changelogTopicFor: () => undefined,
        changelogPartition: 0,
        cacheMaxBytes: Math.max(1024 * 1024, Math.floor(c.statestoreCacheMaxBytes / 4)),
        exactlyOnce: c.exactlyOnce,
      })
      await sm.open()
      const sub: SubtopologyDef = this.#o.engine.globalSubtopology
        ? this.#o.engine.globalSubtopology(topology, g)
        : { id: -1 - this.#stores.size, nodes: [g.source, g.processor], sourceTopics: g.source.topics, sinkTopics: [], stores: [g.store.name] }
      const stores = new Map(topology.stores)
      stores.set(g.store.name, storeDef)
      const engine = this.#o.engine.createTaskEngine({
        topology: { ...topology, stores },
        subtopology: sub,
        taskId: { subtopology: sub.id, partition: 0 },
        stores: sm.provider,
        collector: NOOP_COLLECTOR,
        clock: Date.now,
        defaultKeySerde: c.defaultKeySerde,
        defaultValueSerde: c.defaultValueSerde,
        defaultTimestampExtractor: c.defaultTimestampExtractor,
      })
      await engine.init()
      const checkpointFile = path.join(dir, `${g.store.name}.offsets.json`)
      const offsets = await readOffsets(checkpointFile)
      this.#stores.set(g.store.name, { def: g, topic, sm, engine, offsets, chain: Promise.resolve(), checkpointFile })
    }
    // bootstrap: every partition to its end offset
    for (const st of this.#stores.values()) {
      const partitions = reader.partitionsFor ? await reader.partitionsFor(st.topic) : await this.#partitionsViaAdmin(st.topic)
      const ends = await reader.endOffsets(partitions.map((partition) => ({ topic: st.topic, partition })))
      await Promise.all(
        partitions.map(async (p) => {
          const end = ends.get(`${st.topic}:${p}`) ?? ends.get(st.topic)
          const from = st.offsets.get(p)
          if (end === undefined || (from !== undefined && BigInt(from) >= BigInt(end))) return
          const started = Date.now()
          let restored = 0
          emitEvent(this.#o.emitter, StreamsEvents.RESTORE_START, { taskId: 'global', store: st.def.store.name, topic: st.topic, partition: p, fromOffset: from, endOffset: end, total: Number(BigInt(end) - BigInt(from ?? '0')) })
          await reader.read(st.topic, p, from, end, async (records, next) => {
            restored += records.length
            await this.#apply(st, p, records, next)
          }, this.#abort.signal)
          emitEvent(this.#o.emitter, StreamsEvents.RESTORE_END, { taskId: 'global', topic: st.topic, partition: p, restored, durationMs: Date.now() - started })
        }),
      )
      // keep following
      const follow = partitions.map((p) =>
        reader.read(st.topic, p, st.offsets.get(p), undefined, (records, next) => this.#apply(st, p, records, next), this.#abort.signal).catch((e) => {
          if (!this.#abort.signal.aborted) this.#o.onFatal(e instanceof Error ? e : new Error(String(e)))
        }),
      )
      this.#running = Promise.all([this.#running, ...follow])
    }
  }

  async #partitionsViaAdmin(topic: string): Promise<number[]> {
    const admin = this.#o.kafka.admin()
    await admin.connect()
    try {
      const md = await admin.fetchTopicMetadata({ topics: [topic] })
      return md.topics[0]!.partitions.map((p) => p.partitionId).sort((a, b) => a - b)
    } finally {
      await admin.disconnect()
    }
  }

  /** Applies a batch (serialized per store), then makes it durable with the next offset. */
  #apply(st: GlobalStoreState, partition: number, records: ReadonlyArray<RawRecord>, next: string): Promise<void> {
    st.chain = st.chain.then(async () => {
      if (records.length) {
        await st.engine.prepareBatch(records)
        for (const r of records) await st.engine.process(r)
      }
      await st.sm.prepareCommit(NOOP_COLLECTOR)
      await st.sm.commitLocal(new Map())
      st.offsets.set(partition, next)
      await writeOffsets(st.checkpointFile, st.offsets)
    })
    return st.chain
  }

  async stop(): Promise<void> {
    this.#abort.abort()
    await this.#running?.catch(() => undefined)
    for (const st of this.#stores.values()) {
      await st.chain.catch(() => undefined)
      await st.engine.close().catch(() => undefined)
      await st.sm.close({ clean: true }).catch(() => undefined)
    }
    this.#stores.clear()
    await this.#reader?.close().catch(() => undefined)
  }
}

async function readOffsets(file: string): Promise<Map<number, string>> {
  try {
    const obj = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, string>
    return new Map(Object.entries(obj).map(([p, o]) => [Number(p), String(o)]))
  } catch {
    return new Map()
  }
}

async function writeOffsets(file: string, offsets: ReadonlyMap<number, string>): Promise<void> {
  const tmp = `${file}.tmp`
  await fs.writeFile(tmp, JSON.stringify(Object.fromEntries(offsets)))
  await fs.rename(tmp, file)
}
