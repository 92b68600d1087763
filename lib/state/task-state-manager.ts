/**
 * The state of one task on this instance (Kafka Streams: `ProcessorStateManager` +
 * `StateDirectory`): opens the task's stores under `<stateDir>/<applicationId>/<taskId>/<store>/`,
 * holds the directory lock, reads and writes the checkpoint, restores from changelog records and
 * runs the two local halves of the commit protocol described in ./types.ts.
 *
 * Crash safety (at-least-once and exactly-once alike): dirty writes live only in memory until
 * `commitLocal`, which runs after the Kafka commit (transaction) succeeded; it writes one LevelDB
 * batch per store (fsynced by default) and THEN the checkpoint. A crash at any point leaves a
 * checkpoint that is at or behind the LevelDB data; restoring from it with read_committed
 * replays committed changelog records, and replaying is idempotent (puts of the same keys).
 * So an unclean shutdown keeps the checkpoint and recovers from it instead of wiping.
 */
import { existsSync } from 'node:fs'
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
import { isLockError, LevelDbBackend, MemoryBackend, type OrderedBytesBackend } from './backend.js'
import { CacheBudget } from './cache.js'
import { readCheckpoint, writeCheckpoint } from './checkpoint.js'
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
  /** fsync each commit's LevelDB batches before the checkpoint is written. @defaultValue true */
  readonly syncWrites?: boolean
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

/** Task directories held by task state managers of this process. */
const heldDirs = new Set<string>()

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
  /** Deletes a store's local data and checkpoint entry (checkpoint ahead of the changelog). */
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
  private readonly checkpoint = new Map<string, string>()
  /** Positions of restored in-memory stores (never persisted). */
  private readonly memoryPositions = new Map<string, string>()
  private readonly budget: CacheBudget
  private holdsDir = false
  private readonly log: StateLogger
  private readonly clock: () => number
  /** Serializes checkpoint writes (restoration of several partitions checkpoints concurrently). */
  private checkpointWrite: Promise<void> = Promise.resolve()

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
      throw new IllegalStateError(`Stores of task ${this.options.taskId} requested while its state manager is ${this.state}`, { place: this.place({ store: def.name }) })
    }
    const slot = this.slots.get(def.name)
    if (!slot) throw new InvalidStateStoreError(`Store ${def.name} is not registered with this task`, { place: this.place({ store: def.name }) })
    if (slot.def.type !== type) {
      throw new InvalidStateStoreError(`Store ${def.name} is a ${slot.def.type} store, not a ${type} store`, { place: this.place({ store: def.name }) })
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
    if (this.state !== 'created') throw new IllegalStateError(`Task state manager of ${this.options.taskId} cannot open when ${this.state}`, { place: this.place() })
    const persistentDefs = this.options.stores.filter((d) => d.persistent)
    try {
      if (persistentDefs.length > 0) {
        await this.acquireDir()
        await mkdir(this.taskDir, { recursive: true })
        for (const f of await readdir(this.taskDir)) {
          if (f.startsWith(`${CHECKPOINT_FILE}.`) && f.endsWith('.tmp')) await rm(path.join(this.taskDir, f), { force: true })
        }
        const cp = await readCheckpoint(this.checkpointFile)
        if (cp.status === 'ok') for (const [t, o] of cp.offsets) this.checkpoint.set(t, o)
        else if (cp.status === 'corrupt') {
          this.log.warn(`Corrupt checkpoint of task ${this.options.taskId} (${cp.reason}): wiping local state for a full restore`, { taskId: this.options.taskId })
          for (const def of persistentDefs) await rm(path.join(this.taskDir, def.name), { recursive: true, force: true })
          await rm(this.checkpointFile, { force: true })
        }
      }
      for (const def of this.options.stores) await this.openStore(def)
      // keep only checkpoint entries of logged persistent stores
      for (const t of [...this.checkpoint.keys()]) {
        const slot = this.byTopic.get(t)
        if (!slot || !slot.store.persistent) this.checkpoint.delete(t)
      }
      this.state = 'open'
    } catch (err) {
      await this.closeStores()
      this.releaseDir()
      this.checkpoint.clear()
      this.state = 'created'
      throw err
    }
  }

  private async openStore(def: StoreDef): Promise<void> {
    const topic = this.options.changelogTopicFor(def)
    let backend: OrderedBytesBackend
    let existed = false
    if (def.persistent) {
      const dir = path.join(this.taskDir, def.name)
      existed = existsSync(path.join(dir, 'CURRENT'))
      backend = await this.openLevelDb(dir, def.name)
    } else {
      backend = new MemoryBackend(this.options.inMemoryStore ? this.options.inMemoryStore(def) : new InMemoryKeyValueBytesStore(def.name))
    }
    const seg = this.options.segmentIntervalMs?.(def)
    const store = createRuntimeStore(def, backend, {
      budget: this.budget,
      mode: 'managed',
      syncWrites: this.options.syncWrites ?? true,
      taskId: this.options.taskId,
      ...(seg !== undefined ? { segmentIntervalMs: seg } : {}),
    })
    const slot: StoreSlot = { def, store, topic, logs: topic !== undefined && def.loggingEnabled !== false && def.sourceChangelogTopic === undefined }
    this.slots.set(def.name, slot)
    if (topic) {
      if (this.byTopic.has(topic)) throw new ProcessorStateError(`Stores ${this.byTopic.get(topic)!.def.name} and ${def.name} share changelog topic ${topic}`, { place: this.place({ store: def.name, topic }) })
      this.byTopic.set(topic, slot)
    }
    await store.init()
    if (def.persistent && topic) {
      if (!existed) this.checkpoint.delete(topic)
      else if (!this.checkpoint.has(topic)) {
        // Data without a checkpoint: unknown position, start over from the changelog.
        this.log.info(`Store ${def.name} of task ${this.options.taskId} has no checkpoint: wiping it for a full restore`, { taskId: this.options.taskId, store: def.name })
        await store.reset()
      }
    }
  }

  private async openLevelDb(dir: string, store: string): Promise<LevelDbBackend> {
    const deadline = Date.now() + (this.options.lockWaitMs ?? 2000)
    for (;;) {
      try {
        return await LevelDbBackend.open(dir, { taskId: this.options.taskId, store })
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
    if (this.state !== 'open') throw new IllegalStateError(`${op} on task state manager of ${this.options.taskId} while ${this.state}`, { place: this.place() })
  }

  checkpointedOffsets(): ReadonlyMap<string, string | undefined> {
    const out = new Map<string, string | undefined>()
    for (const [topic, slot] of this.byTopic) {
      out.set(topic, slot.store.persistent ? this.checkpoint.get(topic) : this.memoryPositions.get(topic))
    }
    return out
  }

  async restoreBatch(topic: string, records: ReadonlyArray<RawRecord>): Promise<void> {
    this.requireOpen('restoreBatch')
    const slot = this.byTopic.get(topic)
    if (!slot) throw new IllegalStateError(`No store of task ${this.options.taskId} is backed by changelog ${topic}`, { place: this.place({ topic }) })
    if (records.length) await slot.store.restore(records)
  }

  async markRestored(topic: string, nextOffset: string): Promise<void> {
    this.requireOpen('markRestored')
    const slot = this.byTopic.get(topic)
    if (!slot) throw new IllegalStateError(`No store of task ${this.options.taskId} is backed by changelog ${topic}`, { place: this.place({ topic }) })
    if (!slot.store.persistent) {
      this.memoryPositions.set(topic, nextOffset)
      return
    }
    if (this.checkpoint.get(topic) === nextOffset) return
    this.checkpoint.set(topic, nextOffset)
    await this.persistCheckpoint()
  }

  /** Writes the current checkpoint map; writes are chained so the newest map always lands last. */
  private persistCheckpoint(): Promise<void> {
    const run = this.checkpointWrite.then(
      () => writeCheckpoint(this.checkpointFile, this.checkpoint, { taskId: this.options.taskId }),
      () => writeCheckpoint(this.checkpointFile, this.checkpoint, { taskId: this.options.taskId }),
    )
    this.checkpointWrite = run.catch(() => {})
    return run
  }

  async prepareCommit(collector: RecordCollector): Promise<number> {
    this.requireOpen('prepareCommit')
    let n = 0
    const now = this.clock()
    for (const slot of this.slots.values()) {
      const entries = slot.store.prepareCommit()
      if (!slot.logs) continue
      for (const e of entries) {
        collector.send({ topic: slot.topic!, partition: this.options.changelogPartition, key: e.key, value: e.value, timestamp: now, headers: {} })
        n++
      }
    }
    return n
  }

  async commitLocal(changelogEndOffsets: ReadonlyMap<string, string>): Promise<void> {
    this.requireOpen('commitLocal')
    await Promise.all([...this.slots.values()].map((s) => s.store.commitLocal()))
    let changed = false
    for (const [topic, off] of changelogEndOffsets) {
      const slot = this.byTopic.get(topic)
      if (!slot) continue
      if (!slot.store.persistent) {
        this.memoryPositions.set(topic, off)
        continue
      }
      if (this.checkpoint.get(topic) !== off) {
        this.checkpoint.set(topic, off)
        changed = true
      }
    }
    if (changed) await this.persistCheckpoint()
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
    const slot = this.byTopic.get(topic)
    if (!slot) throw new IllegalStateError(`No store of task ${this.options.taskId} is backed by changelog ${topic}`, { place: this.place({ topic }) })
    await slot.store.reset()
    this.memoryPositions.delete(topic)
    if (this.checkpoint.delete(topic) && slot.store.persistent) await this.persistCheckpoint()
  }

  /**
   * Closes the stores and releases the directory. Uncommitted entries are dropped in both cases
   * (a clean close is preceded by a commit). The checkpoint is kept even when `clean` is false:
   * it never runs ahead of LevelDB (see the module comment), so it is safe to resume from.
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
    if (errors.length) throw new ProcessorStateError(`Closing stores of task ${this.options.taskId} failed`, { cause: errors[0], place: this.place() })
  }

  async wipe(): Promise<void> {
    if (this.state === 'open') throw new IllegalStateError(`Cannot wipe task ${this.options.taskId} while its state is open`, { place: this.place() })
    await rm(this.taskDir, { recursive: true, force: true })
    this.checkpoint.clear()
    this.memoryPositions.clear()
  }
}
