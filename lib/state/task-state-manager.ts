/**
 * The state of one task on this instance (Kafka Streams: `ProcessorStateManager` +
 * `StateDirectory`): opens the task's stores under `<stateDir>/<applicationId>/<taskId>/<store>/`,
 * holds the directory lock, keeps each store's changelog position, restores from changelog records
 * and runs the two local halves of the commit protocol described in ./types.ts.
 *
 * Durability (at-least-once and exactly-once alike): dirty writes live only in memory until
 * `commitLocal`, which runs after the Kafka commit (transaction) succeeded; it writes one LevelDB
 * batch per store holding the data AND the store's new changelog position (the reserved key of
 * stores.ts), fsynced by default. Restore batches carry their position the same way. The position
 * is therefore never ahead of the data it describes, whatever a crash drops: a killed process
 * loses nothing LevelDB acknowledged, and a machine crash that loses the log's unsynced tail loses
 * the position with it, so the store restores exactly the missing tail from the changelog
 * (read_committed; replaying is idempotent). Nothing else records positions: the task
 * checkpoint file of earlier versions (`.checkpoint`, written after the batches) could survive a
 * power loss that the data did not, and is only read once to migrate stores that have no position.
 * Every write is fsynced (`syncWrites`) because LevelDB does not guarantee that an unsynced write
 * lost in a crash takes only later writes with it (a lost page in the middle of the log, or the
 * unsynced tail of a log it already switched away from, is skipped at recovery).
 *
 * Damaged files: LevelDB reports a damaged table, log or manifest with the `LEVEL_CORRUPTION` code
 * (at open, or at a read). At open such a store's directory is deleted and the store restored
 * from the changelog's beginning; a store not closed cleanly last time has its tables read once at
 * open (`verifyOnOpen`) so damage surfaces there rather than mid-processing. Corruption found while
 * the task runs fails the operation with a {@link ProcessorStateError} (the `LEVEL_CORRUPTION`
 * error in its cause chain) and leaves a `<store>.corrupted` marker, so the next open wipes and
 * restores the store. A store without a readable position is never kept: it is emptied and
 * restored from the beginning.
 *
 * The directory (paths, lock, LevelDB open, corruption marker) is in store-directory.ts, the
 * options in task-state-options.ts; the rest is one class whose steps share its state (hence over
 * 400 lines).
 */
import { existsSync } from 'node:fs'
import { mkdir, readdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { IllegalStateError, InvalidStateStoreError, ProcessorStateError } from '../../topology/errors.js'
import type { RawRecord, RecordCollector } from '../../topology/engine/types.js'
import type {
  KeyValueBytesStore,
  SessionBytesStore,
  StoreDef,
  StoreProvider,
  StoreType,
  WindowBytesStore,
} from '../../topology/state/types.js'
import { InMemoryKeyValueBytesStore } from '../../topology/state/memory.js'
import { isCorruptionError, MemoryBackend, type LevelDbBackend, type OrderedBytesBackend } from './backend.js'
import { CacheBudget } from './cache.js'
import { StoreDirectory } from './store-directory.js'
import { silentLogger, type CreateTaskStateManagerOptions, type StateLogger } from './task-state-options.js'
import { readCheckpoint } from './checkpoint.js'
import { createRuntimeStore, type RuntimeStore } from './stores.js'
import type { ChangelogPartition, TaskStateManager } from './types.js'

/** Task checkpoint file of earlier versions: read once to migrate, then deleted. */
const CHECKPOINT_FILE = '.checkpoint'

interface StoreSlot {
  readonly def: StoreDef
  readonly store: RuntimeStore
  /** Changelog topic (restore source), undefined when not logged. */
  readonly topic: string | undefined
  /** Whether prepareCommit produces changelog records (false for source-topic changelogs). */
  readonly logs: boolean
}

type State = 'created' | 'open' | 'closed'

export type { CreateTaskStateManagerOptions, StateLogger, StoreWipedEvent } from './task-state-options.js'

/** Creates the {@link TaskStateManager} of one task. Nothing happens until `open()`. */
export function createTaskStateManager(options: CreateTaskStateManagerOptions): TaskStateManager & TaskStateManagerExtras {
  return new LevelDbTaskStateManager(options)
}

/** Extra surface of the runtime's task state manager (beyond the contract). */
export interface TaskStateManagerExtras {
  /** The task's directory. */
  readonly taskDir: string
  /** Runtime bytes store by name (open state only). */
  store(name: string): RuntimeStore | undefined
  /** Deletes a store's local data and position (position beyond the changelog's end). */
  reinitializeStore(topic: string): Promise<void>
  /** Uncommitted (buffered) entries across the task's stores. */
  bufferedEntries(): number
}

class LevelDbTaskStateManager implements TaskStateManager, TaskStateManagerExtras {
  readonly taskDir: string
  readonly provider: StoreProvider
  private state: State = 'created'
  private readonly slots = new Map<string, StoreSlot>()
  private readonly byTopic = new Map<string, StoreSlot>()
  /** Offsets of the earlier versions' checkpoint file, read at open to migrate stores without a position. */
  private readonly legacyCheckpoint = new Map<string, string>()
  /** Positions of restored in-memory stores (never persisted). */
  private readonly memoryPositions = new Map<string, string>()
  private readonly budget: CacheBudget
  private readonly log: StateLogger
  private readonly clock: () => number
  private readonly dirs: StoreDirectory

  constructor(private readonly options: CreateTaskStateManagerOptions) {
    this.taskDir = path.join(options.stateDir, options.applicationId, options.taskId)
    this.budget = new CacheBudget(options.cacheMaxBytes, options.onCommitNeeded, options.keyIndexMaxBytes)
    this.log = options.logger ?? silentLogger
    this.clock = options.clock ?? Date.now
    this.dirs = new StoreDirectory(this.taskDir, options, this.log)
    const get = (def: StoreDef, type: StoreType) => this.storeFor(def, type)
    this.provider = {
      keyValue: (def) => get(def, 'keyValue') as unknown as KeyValueBytesStore,
      window: (def) => get(def, 'window') as unknown as WindowBytesStore,
      session: (def) => get(def, 'session') as unknown as SessionBytesStore,
    }
  }

  private place(extra: { store?: string; topic?: string } = {}) {
    return { taskId: this.options.taskId, ...extra }
  }

  private storeFor(def: StoreDef, type: StoreType): RuntimeStore {
    if (this.state !== 'open') {
      throw new IllegalStateError(`Stores of task ${this.options.taskId} requested while its state manager is ${this.state}`, {
        place: this.place({ store: def.name }),
      })
    }
    const slot = this.slots.get(def.name)
    if (!slot)
      throw new InvalidStateStoreError(`Store ${def.name} is not registered with this task`, { place: this.place({ store: def.name }) })
    if (slot.def.type !== type) {
      throw new InvalidStateStoreError(`Store ${def.name} is a ${slot.def.type} store, not a ${type} store`, {
        place: this.place({ store: def.name }),
      })
    }
    return slot.store
  }

  store(name: string): RuntimeStore | undefined {
    return this.slots.get(name)?.store
  }

  changelogPartitions(): ReadonlyArray<ChangelogPartition> {
    const out: ChangelogPartition[] = []
    for (const slot of this.slots.size ? this.slots.values() : this.plannedSlots()) {
      if (slot.topic) out.push({ store: slot.def.name, topic: slot.topic, partition: this.options.changelogPartition })
    }
    return out
  }

  private *plannedSlots(): Iterable<{ def: StoreDef; topic: string | undefined }> {
    for (const def of this.options.stores) yield { def, topic: this.options.changelogTopicFor(def) }
  }

  private get checkpointFile(): string {
    return path.join(this.taskDir, CHECKPOINT_FILE)
  }

  async open(): Promise<void> {
    if (this.state !== 'created')
      throw new IllegalStateError(`Task state manager of ${this.options.taskId} cannot open when ${this.state}`, { place: this.place() })
    const persistentDefs = this.options.stores.filter((d) => d.persistent)
    try {
      if (persistentDefs.length > 0) {
        await this.dirs.acquire()
        await mkdir(this.taskDir, { recursive: true })
        for (const f of await readdir(this.taskDir)) {
          if (f.startsWith(`${CHECKPOINT_FILE}.`) && f.endsWith('.tmp')) await rm(path.join(this.taskDir, f), { force: true })
        }
        const cp = await readCheckpoint(this.checkpointFile)
        if (cp.status === 'ok') for (const [t, o] of cp.offsets) this.legacyCheckpoint.set(t, o)
        else if (cp.status === 'corrupt') {
          this.log.warn(
            `Unreadable checkpoint file of task ${this.options.taskId} (${cp.reason}): ignored; stores without a position of their own are restored from the beginning`,
            { taskId: this.options.taskId },
          )
        }
      }
      for (const def of this.options.stores) await this.openStore(def)
      // every store that needed it has migrated the old checkpoint into its own position
      if (persistentDefs.length > 0) await rm(this.checkpointFile, { force: true })
      this.legacyCheckpoint.clear()
      this.state = 'open'
    } catch (err) {
      await this.closeStores().catch(() => undefined)
      this.dirs.release()
      this.legacyCheckpoint.clear()
      this.state = 'created'
      throw err
    }
  }

  private async openStore(def: StoreDef): Promise<void> {
    const topic = this.options.changelogTopicFor(def)
    if (topic && this.byTopic.has(topic)) {
      throw new ProcessorStateError(`Stores ${this.byTopic.get(topic)!.def.name} and ${def.name} share changelog topic ${topic}`, {
        place: this.place({ store: def.name, topic }),
      })
    }
    let store: RuntimeStore
    if (def.persistent) {
      store = await this.openPersistentStore(def, topic)
    } else {
      store = this.createStore(
        def,
        new MemoryBackend(this.options.inMemoryStore ? this.options.inMemoryStore(def) : new InMemoryKeyValueBytesStore(def.name)),
      )
      await store.init()
    }
    const slot: StoreSlot = {
      def,
      store,
      topic,
      logs: topic !== undefined && def.loggingEnabled !== false && def.sourceChangelogTopic === undefined,
    }
    this.slots.set(def.name, slot)
    if (topic) this.byTopic.set(topic, slot)
  }

  private createStore(def: StoreDef, backend: OrderedBytesBackend): RuntimeStore {
    const seg = this.options.segmentIntervalMs?.(def)
    return createRuntimeStore(def, backend, {
      budget: this.budget,
      mode: 'managed',
      syncWrites: this.options.syncWrites ?? true,
      taskId: this.options.taskId,
      ...(seg !== undefined ? { segmentIntervalMs: seg } : {}),
    })
  }

  /**
   * Opens a LevelDB store and settles its position: the position stored with its data; else the
   * old checkpoint file's offset (migration); else none, and data without a position is deleted.
   * A store found corrupted (now, or by an earlier run's marker) is deleted and opened empty.
   */
  private async openPersistentStore(def: StoreDef, topic: string | undefined): Promise<RuntimeStore> {
    const dir = this.dirs.storeDir(def.name)
    const marker = this.dirs.corruptedMarker(def.name)
    if (existsSync(marker)) await this.dirs.wipe(def.name, undefined)
    for (let attempt = 0; ; attempt++) {
      const existed = existsSync(path.join(dir, 'CURRENT'))
      let backend: LevelDbBackend | undefined
      let store: RuntimeStore | undefined
      try {
        backend = await this.dirs.openLevelDb(dir, def.name)
        store = this.createStore(def, backend)
        await store.init()
        let unreadable: unknown
        let clean = false
        try {
          if (existed) clean = (await store.readPosition())?.clean ?? false
        } catch (err) {
          if (isCorruptionError(err)) throw err
          unreadable = err
        }
        const verify = this.options.verifyOnOpen ?? 'unclean'
        if (existed && (verify === 'always' || (verify === 'unclean' && !clean))) await backend.verify()
        await this.settlePosition(def, store, topic, existed, unreadable)
        return store
      } catch (err) {
        if (store) await store.close({ markClean: false }).catch(() => undefined)
        else await backend?.close().catch(() => undefined)
        if (attempt > 0 || !isCorruptionError(err)) throw err
        await this.dirs.wipe(def.name, err)
      }
    }
  }

  private async settlePosition(
    def: StoreDef,
    store: RuntimeStore,
    topic: string | undefined,
    existed: boolean,
    unreadable: unknown,
  ): Promise<void> {
    if (!topic || !existed) return // not logged: kept as is; new: restored from the beginning
    if (unreadable === undefined && store.position?.has(topic)) return
    const legacy = unreadable === undefined ? this.legacyCheckpoint.get(topic) : undefined
    if (legacy !== undefined) {
      // Earlier versions fsynced each batch before writing the checkpoint file, so the file is at
      // or behind the data; from now on the position travels with the data.
      await store.writePosition(new Map([[topic, legacy]]))
      this.log.info(
        `Store ${def.name} of task ${this.options.taskId}: position ${legacy} migrated from the checkpoint file into the store`,
        { taskId: this.options.taskId, store: def.name },
      )
      return
    }
    // Data of unknown position: never served, start over from the changelog.
    const why = unreadable !== undefined ? `an unreadable position (${(unreadable as Error).message})` : 'no position'
    this.log.warn(`Store ${def.name} of task ${this.options.taskId} has ${why}: emptying it for a full restore from ${topic}`, {
      taskId: this.options.taskId,
      store: def.name,
    })
    this.options.onStoreWiped?.({ taskId: this.options.taskId, store: def.name, reason: 'unknown-position' })
    await store.reset()
  }

  private requireOpen(op: string): void {
    if (this.state !== 'open')
      throw new IllegalStateError(`${op} on task state manager of ${this.options.taskId} while ${this.state}`, { place: this.place() })
  }

  /** Positions: a persistent store's is the one stored with its data; in-memory stores' are kept here. */
  checkpointedOffsets(): ReadonlyMap<string, string | undefined> {
    const out = new Map<string, string | undefined>()
    for (const [topic, slot] of this.byTopic) {
      out.set(topic, slot.store.persistent ? slot.store.position?.get(topic) : this.memoryPositions.get(topic))
    }
    return out
  }

  private slotOf(topic: string): StoreSlot {
    const slot = this.byTopic.get(topic)
    if (!slot)
      throw new IllegalStateError(`No store of task ${this.options.taskId} is backed by changelog ${topic}`, {
        place: this.place({ topic }),
      })
    return slot
  }

  async restoreBatch(topic: string, records: ReadonlyArray<RawRecord>, nextOffset?: string): Promise<void> {
    this.requireOpen('restoreBatch')
    const slot = this.slotOf(topic)
    if (nextOffset === undefined) {
      if (records.length) await slot.store.restore(records)
      return
    }
    if (!slot.store.persistent) {
      if (records.length) await slot.store.restore(records)
      this.memoryPositions.set(topic, nextOffset)
      return
    }
    const position = new Map([[topic, nextOffset]])
    if (records.length) await slot.store.restore(records, position)
    else await slot.store.writePosition(position)
  }

  async markRestored(topic: string, nextOffset: string): Promise<void> {
    this.requireOpen('markRestored')
    const slot = this.slotOf(topic)
    if (!slot.store.persistent) {
      this.memoryPositions.set(topic, nextOffset)
      return
    }
    // after restoreBatch's data writes, which were written (and fsynced) first
    await slot.store.writePosition(new Map([[topic, nextOffset]]))
  }

  async prepareCommit(collector: RecordCollector): Promise<number> {
    this.requireOpen('prepareCommit')
    let n = 0
    const now = this.clock()
    for (const slot of this.slots.values()) {
      const entries = slot.store.prepareCommit()
      if (!slot.logs) continue
      for (const e of entries) {
        collector.send({
          topic: slot.topic!,
          partition: this.options.changelogPartition,
          key: e.key,
          value: e.value,
          timestamp: now,
          headers: {},
        })
        n++
      }
    }
    return n
  }

  async commitLocal(changelogEndOffsets: ReadonlyMap<string, string>): Promise<void> {
    this.requireOpen('commitLocal')
    await Promise.all(
      [...this.slots.values()].map((s) => {
        const off = s.topic !== undefined ? changelogEndOffsets.get(s.topic) : undefined
        // the position goes into the same LevelDB batch as the data it reaches
        return s.store.commitLocal(off !== undefined && s.store.persistent ? new Map([[s.topic!, off]]) : undefined)
      }),
    )
    for (const [topic, off] of changelogEndOffsets) {
      const slot = this.byTopic.get(topic)
      if (slot && !slot.store.persistent) this.memoryPositions.set(topic, off)
    }
    this.budget.resetRequest()
  }

  async abortUncommitted(): Promise<void> {
    for (const slot of this.slots.values()) slot.store.abort()
    this.budget.resetRequest()
  }

  bufferedEntries(): number {
    let n = 0
    for (const slot of this.slots.values()) n += slot.store.bufferedEntries
    return n
  }

  async reinitializeStore(topic: string): Promise<void> {
    this.requireOpen('reinitializeStore')
    const slot = this.slotOf(topic)
    await slot.store.reset()
    this.memoryPositions.delete(topic)
  }

  /**
   * Closes the stores and releases the directory. Uncommitted entries are dropped in both cases
   * (a clean close is preceded by a commit). The stores keep their positions even when `clean`
   * is false: a position never runs ahead of its data (see the module comment), so it is safe to
   * resume from.
   */
  async close(_options: { clean: boolean }): Promise<void> {
    if (this.state === 'closed') return
    for (const slot of this.slots.values()) slot.store.abort()
    await this.closeStores()
    this.dirs.release()
    this.state = 'closed'
  }

  private async closeStores(): Promise<void> {
    const errors: unknown[] = []
    for (const slot of this.slots.values()) await slot.store.close().catch((e: unknown) => errors.push(e))
    this.slots.clear()
    this.byTopic.clear()
    if (errors.length)
      throw new ProcessorStateError(`Closing stores of task ${this.options.taskId} failed`, { cause: errors[0], place: this.place() })
  }

  async wipe(): Promise<void> {
    if (this.state === 'open')
      throw new IllegalStateError(`Cannot wipe task ${this.options.taskId} while its state is open`, { place: this.place() })
    await rm(this.taskDir, { recursive: true, force: true })
    this.memoryPositions.clear()
  }
}
