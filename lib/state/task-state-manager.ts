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
 */
import { existsSync, writeFileSync } from 'node:fs'
import { mkdir, readdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
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
import { isCorruptionError, isLockError, LevelDbBackend, MemoryBackend, type OrderedBytesBackend } from './backend.js'
import { CacheBudget } from './cache.js'
import { readCheckpoint } from './checkpoint.js'
import { createRuntimeStore, type RuntimeStore } from './stores.js'
import type { ChangelogPartition, TaskStateManager, TaskStateManagerOptions } from './types.js'

/** Structured logger (same shape as the app runtime's `Logger`). */
export interface StateLogger {
  error(message: string, extra?: Record<string, unknown>): void
  warn(message: string, extra?: Record<string, unknown>): void
  info(message: string, extra?: Record<string, unknown>): void
  debug(message: string, extra?: Record<string, unknown>): void
}

const silent: StateLogger = { error() {}, warn() {}, info() {}, debug() {} }

/** Options of {@link createTaskStateManager}: the contract's options plus runtime tuning. */
export interface CreateTaskStateManagerOptions extends TaskStateManagerOptions {
  /**
   * How long `open()` keeps retrying while another instance holds a store's LevelDB LOCK (a task
   * moving between two instances on one host), milliseconds. Then a retriable
   * ProcessorStateError is thrown. @defaultValue 2000
   */
  readonly lockWaitMs?: number
  /**
   * fsync every LevelDB batch (commit, restore, position) before it counts as written. The
   * position travels in the same batch as its data either way; syncing is what keeps a machine
   * crash from dropping an earlier batch while keeping a later one. @defaultValue true
   */
  readonly syncWrites?: boolean
  /**
   * When to read every table of a persistent store once at open, so a damaged table is found
   * (and the store wiped and restored) before the task processes: `'unclean'` when the store was
   * not closed cleanly last time (crash, kill, power loss), `'always'`, or `'never'`. Costs one
   * scan of the store (about 2.5 s per million entries on this machine kind).
   * @defaultValue 'unclean'
   */
  readonly verifyOnOpen?: 'unclean' | 'always' | 'never'
  /**
   * Called when a persistent store's local data is dropped at open, to be restored from its
   * changelog: `corruption` (LevelDB reported a damaged file, now or during an earlier run) or
   * `unknown-position` (data without a readable position).
   */
  readonly onStoreWiped?: (event: StoreWipedEvent) => void
  /** Segment width of window/session stores, ms. @defaultValue max(retentionMs / 2, 60000) */
  readonly segmentIntervalMs?: (store: StoreDef) => number | undefined
  /**
   * In-memory ordered bytes store backing `persistent: false` store defs (window and session
   * stores are laid out on it with the same composite keys as on LevelDB).
   * @defaultValue topology's `InMemoryKeyValueBytesStore`
   */
  readonly inMemoryStore?: (store: StoreDef) => KeyValueBytesStore
  /**
   * Bytes the key indexes of the task's window and session stores may hold (lib/state/key-index.ts),
   * counted within `cacheMaxBytes`: dirty and clean entries get the rest. Beyond it, indexes give
   * up their oldest times (reads there scan LevelDB). @defaultValue max(cacheMaxBytes / 2, 2 MiB)
   */
  readonly keyIndexMaxBytes?: number
  /** Timestamp of changelog records, ms. @defaultValue Date.now */
  readonly clock?: () => number
  readonly logger?: StateLogger
}

/** A persistent store's local data was dropped at open (see `onStoreWiped`). */
export interface StoreWipedEvent {
  readonly taskId: string
  readonly store: string
  readonly reason: 'corruption' | 'unknown-position'
  /** The LevelDB error (corruption found at this open), if any. */
  readonly error?: unknown
}

/** Task directories held by task state managers of this process. */
const heldDirs = new Set<string>()

/** Task checkpoint file of earlier versions: read once to migrate, then deleted. */
const CHECKPOINT_FILE = '.checkpoint'
/** Suffix of the marker file left next to a store in which corruption was found while running. */
const CORRUPTED_SUFFIX = '.corrupted'

interface StoreSlot {
  readonly def: StoreDef
  readonly store: RuntimeStore
  /** Changelog topic (restore source), undefined when not logged. */
  readonly topic: string | undefined
  /** Whether prepareCommit produces changelog records (false for source-topic changelogs). */
  readonly logs: boolean
}

type State = 'created' | 'open' | 'closed'

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
  private holdsDir = false
  private readonly log: StateLogger
  private readonly clock: () => number

  constructor(private readonly options: CreateTaskStateManagerOptions) {
    this.taskDir = path.join(options.stateDir, options.applicationId, options.taskId)
    this.budget = new CacheBudget(options.cacheMaxBytes, options.onCommitNeeded, options.keyIndexMaxBytes)
    this.log = options.logger ?? silent
    this.clock = options.clock ?? Date.now
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
        await this.acquireDir()
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
      this.releaseDir()
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

  private storeDir(name: string): string {
    return path.join(this.taskDir, name)
  }

  private corruptedMarker(name: string): string {
    return path.join(this.taskDir, `${name}${CORRUPTED_SUFFIX}`)
  }

  /**
   * Opens a LevelDB store and settles its position: the position stored with its data; else the
   * old checkpoint file's offset (migration); else none, and data without a position is deleted.
   * A store found corrupted (now, or by an earlier run's marker) is deleted and opened empty.
   */
  private async openPersistentStore(def: StoreDef, topic: string | undefined): Promise<RuntimeStore> {
    const dir = this.storeDir(def.name)
    const marker = this.corruptedMarker(def.name)
    if (existsSync(marker)) await this.wipeStoreDir(def.name, undefined)
    for (let attempt = 0; ; attempt++) {
      const existed = existsSync(path.join(dir, 'CURRENT'))
      let backend: LevelDbBackend | undefined
      let store: RuntimeStore | undefined
      try {
        backend = await this.openLevelDb(dir, def.name)
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
        await this.wipeStoreDir(def.name, err)
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

  /** Deletes a store's directory and corruption marker (the store is closed). */
  private async wipeStoreDir(name: string, error: unknown): Promise<void> {
    const found =
      error !== undefined
        ? `LevelDB reports corruption (${(error as { code?: string }).code ?? 'LEVEL_CORRUPTION'}: ${(error as Error).message})`
        : 'an earlier run found it corrupted'
    this.log.warn(`Store ${name} of task ${this.options.taskId}: ${found}; deleting its local data for a full restore from the changelog`, {
      taskId: this.options.taskId,
      store: name,
    })
    this.options.onStoreWiped?.({
      taskId: this.options.taskId,
      store: name,
      reason: 'corruption',
      ...(error !== undefined ? { error } : {}),
    })
    await rm(this.storeDir(name), { recursive: true, force: true })
    await rm(this.corruptedMarker(name), { force: true })
  }

  /** Corruption found while the store is open: leave a marker so the next open wipes it. */
  private markCorrupted(name: string, error: unknown): void {
    this.log.error(
      `Store ${name} of task ${this.options.taskId} is corrupted (${(error as Error).message}); it is wiped and restored from its changelog when the task is opened again`,
      { taskId: this.options.taskId, store: name },
    )
    try {
      writeFileSync(this.corruptedMarker(name), `${(error as Error).message}\n`)
    } catch (err) {
      this.log.error(`Failed to leave the corruption marker of store ${name}: ${(err as Error).message}`, {
        taskId: this.options.taskId,
        store: name,
      })
    }
  }

  private async openLevelDb(dir: string, store: string): Promise<LevelDbBackend> {
    const deadline = Date.now() + (this.options.lockWaitMs ?? 2000)
    for (;;) {
      try {
        return await LevelDbBackend.open(dir, {
          place: { taskId: this.options.taskId, store },
          onCorruption: (e) => this.markCorrupted(store, e),
        })
      } catch (err) {
        if (!(err instanceof ProcessorStateError && isLockError(err.cause)) || Date.now() >= deadline) throw err
        await sleep(100)
      }
    }
  }

  private async acquireDir(): Promise<void> {
    const deadline = Date.now() + (this.options.lockWaitMs ?? 2000)
    while (heldDirs.has(this.taskDir)) {
      if (Date.now() >= deadline) {
        throw new ProcessorStateError(
          `State directory ${this.taskDir} is in use by another task state manager in this process; retry once it has closed`,
          { retriable: true, place: this.place() },
        )
      }
      await sleep(50)
    }
    heldDirs.add(this.taskDir)
    this.holdsDir = true
  }

  private releaseDir(): void {
    if (this.holdsDir) heldDirs.delete(this.taskDir)
    this.holdsDir = false
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
    this.releaseDir()
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
