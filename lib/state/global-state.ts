/**
 * Global stores (Kafka Streams: `GlobalStateManagerImpl` + `GlobalStreamThread`): every instance
 * keeps a full copy of all partitions of a topic in one LevelDB store under
 * `<stateDir>/<applicationId>/global/<store>/`. The source topic is the store's changelog, so
 * nothing is logged; writes reach LevelDB at `commit(offsets)` in one atomic batch that also holds
 * the store's position (the next offset per source partition, under the store's reserved position
 * key, see stores.ts), so a crash that loses writes loses their position with them. The
 * `global/<store>.checkpoint` file of earlier versions is read once to migrate, then deleted. A
 * store LevelDB reports corrupted (at open) is deleted and bootstrapped again from the beginning.
 *
 * {@link createGlobalStateManager} is the state half (the app runtime runs the global store's
 * processor through it); {@link GlobalStoreUpdater} is an optional driver that bootstraps the
 * store to the end of the topic (read_committed) and then keeps it current.
 */
import { existsSync, writeFileSync } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { IllegalStateError, InvalidStateStoreError, ProcessorStateError } from '../../topology/errors.js'
import type { GlobalStoreDef, RawRecord } from '../../topology/engine/types.js'
import type { KeyValueBytesStore, SessionBytesStore, StoreDef, StoreProvider, WindowBytesStore } from '../../topology/state/types.js'
import { InMemoryKeyValueBytesStore } from '../../topology/state/memory.js'
import { isCorruptionError, LevelDbBackend, MemoryBackend } from './backend.js'
import { CacheBudget } from './cache.js'
import { readCheckpoint } from './checkpoint.js'
import { createRuntimeStore, type RuntimeStore } from './stores.js'
import type { ChangelogReader } from './types.js'
import { tpKey } from '../app/client/types.js'

/** Options of {@link createGlobalStateManager} (matches the app runtime's GlobalStateManagerOptions). */
export interface GlobalStateManagerOptions {
  readonly applicationId: string
  readonly stateDir: string
  readonly def: GlobalStoreDef
  readonly cacheMaxBytes: number
  /** Warnings (a corrupted store deleted, data of unknown position dropped). */
  readonly logger?: { warn(message: string, extra?: Record<string, unknown>): void }
}

/** State of one global store (matches the app runtime's GlobalStateManager). */
export interface GlobalStateManager {
  /** Bytes stores for the global store's processor. */
  readonly provider: StoreProvider
  open(): Promise<void>
  /** Next offset per source partition, undefined = from the beginning. */
  checkpointedOffsets(): ReadonlyMap<number, string | undefined>
  /** Writes the applied records to LevelDB with the position `offsets` reach, in one atomic batch. */
  commit(offsets: ReadonlyMap<number, string>): Promise<void>
  close(): Promise<void>
}

/** Creates the state manager of a global store. */
export function createGlobalStateManager(options: GlobalStateManagerOptions): GlobalStateManager & { store(): RuntimeStore } {
  return new GlobalStore(options)
}

class GlobalStore implements GlobalStateManager {
  readonly provider: StoreProvider
  private runtime: RuntimeStore | undefined
  private readonly offsets = new Map<number, string>()
  private readonly dir: string
  private readonly checkpointFile: string
  private readonly def: StoreDef

  constructor(private readonly options: GlobalStateManagerOptions) {
    this.def = options.def.store
    const globalDir = path.join(options.stateDir, options.applicationId, 'global')
    this.dir = path.join(globalDir, this.def.name)
    this.checkpointFile = path.join(globalDir, `${this.def.name}.checkpoint`)
    const get = (def: StoreDef) => {
      if (!this.runtime) throw new IllegalStateError(`Global store ${this.def.name} is not open`, { place: { store: def.name } })
      if (def.name !== this.def.name || def.type !== this.def.type) {
        throw new InvalidStateStoreError(`Global state manager of ${this.def.name} cannot provide ${def.type} store ${def.name}`, {
          place: { store: def.name },
        })
      }
      return this.runtime
    }
    this.provider = {
      keyValue: (def) => get(def) as unknown as KeyValueBytesStore,
      window: (def) => get(def) as unknown as WindowBytesStore,
      session: (def) => get(def) as unknown as SessionBytesStore,
    }
  }

  store(): RuntimeStore {
    if (!this.runtime) throw new IllegalStateError(`Global store ${this.def.name} is not open`, { place: { store: this.def.name } })
    return this.runtime
  }

  async open(): Promise<void> {
    if (this.runtime) return
    const budget = new CacheBudget(this.options.cacheMaxBytes)
    if (!this.def.persistent) {
      this.runtime = createRuntimeStore(this.def, new MemoryBackend(new InMemoryKeyValueBytesStore(this.def.name)), {
        budget,
        mode: 'managed',
      })
      await this.runtime.init()
      return
    }
    await mkdir(path.dirname(this.dir), { recursive: true })
    const cp = await readCheckpoint(this.checkpointFile)
    const prefix = `${this.options.def.source.topics[0] ?? ''}:`
    const marker = `${this.dir}.corrupted`
    if (existsSync(marker)) {
      this.options.logger?.warn(
        `Global store ${this.def.name}: an earlier run found it corrupted; deleting its local data to bootstrap from the beginning`,
        { store: this.def.name },
      )
      await rm(this.dir, { recursive: true, force: true })
      await rm(marker, { force: true })
    }
    const onCorruption = (err: unknown) => {
      this.options.logger?.warn(
        `Global store ${this.def.name} is corrupted (${(err as Error).message}); it is deleted and bootstrapped again at the next open`,
        { store: this.def.name },
      )
      try {
        writeFileSync(marker, `${(err as Error).message}\n`)
      } catch {
        // the next read fails the same way and tries again
      }
    }
    for (let attempt = 0; ; attempt++) {
      const existed = existsSync(path.join(this.dir, 'CURRENT'))
      let store: RuntimeStore | undefined
      try {
        const backend = await LevelDbBackend.open(this.dir, { place: { store: this.def.name }, onCorruption })
        store = createRuntimeStore(this.def, backend, { budget, mode: 'managed', syncWrites: true })
        await store.init()
        let position: ReadonlyMap<string, string> | undefined
        try {
          position = existed ? (await store.readPosition())?.offsets : undefined
        } catch (err) {
          if (isCorruptionError(err)) throw err
          position = undefined // unreadable: unknown position
        }
        if (position === undefined && existed && cp.status === 'ok') {
          // migration: earlier versions fsynced the batch before writing this file
          const legacy = new Map([...cp.offsets].filter(([k]) => k.startsWith(prefix)))
          if (legacy.size) {
            await store.writePosition(legacy)
            position = legacy
          }
        }
        if (position === undefined && existed) {
          this.options.logger?.warn(
            `Global store ${this.def.name} holds data of unknown position: emptying it to bootstrap from the beginning`,
            { store: this.def.name },
          )
          await store.reset()
        }
        for (const [k, off] of position ?? []) if (k.startsWith(prefix)) this.offsets.set(Number(k.slice(prefix.length)), off)
        this.runtime = store
        break
      } catch (err) {
        await store?.close({ markClean: false }).catch(() => undefined)
        if (attempt > 0 || !isCorruptionError(err)) throw err
        this.options.logger?.warn(
          `Global store ${this.def.name}: LevelDB reports corruption (${(err as Error).message}); deleting its local data to bootstrap from the beginning`,
          { store: this.def.name },
        )
        await rm(this.dir, { recursive: true, force: true })
      }
    }
    await rm(this.checkpointFile, { force: true })
  }

  checkpointedOffsets(): ReadonlyMap<number, string | undefined> {
    return this.offsets
  }

  async commit(offsets: ReadonlyMap<number, string>): Promise<void> {
    const store = this.store()
    store.prepareCommit()
    const topic = this.options.def.source.topics[0] ?? ''
    await store.commitLocal(new Map([...offsets].map(([p, o]) => [tpKey(topic, p), o])))
    for (const [p, o] of offsets) this.offsets.set(p, o)
  }

  async close(): Promise<void> {
    const s = this.runtime
    this.runtime = undefined
    if (s) {
      s.abort()
      await s.close()
    }
  }
}

/** Options of a {@link GlobalStoreUpdater}. */
export interface GlobalStoreUpdaterOptions {
  readonly manager: GlobalStateManager
  readonly reader: ChangelogReader
  readonly topic: string
  /** Partitions of `topic`; read from the reader's metadata when omitted. */
  readonly partitions?: ReadonlyArray<number>
  /**
   * Applies consumed records to the store (the global processor). Default: raw key/value into
   * the key-value store (`null` value deletes), Kafka Streams' GlobalKTable materialization.
   */
  readonly apply?: (records: ReadonlyArray<RawRecord>) => Promise<void>
  /** While tailing, commit at most this often, ms. @defaultValue 1000 */
  readonly commitIntervalMs?: number
  readonly onError?: (error: unknown) => void
}

/**
 * Bootstraps a global store to the end of its topic (the last stable offsets when `bootstrap`
 * starts), then keeps it current with `start()` until `stop()`.
 */
export class GlobalStoreUpdater {
  private readonly controller = new AbortController()
  private readonly positions = new Map<number, string>()
  private loops: Promise<void> | undefined
  private timer: NodeJS.Timeout | undefined
  private dirty = false
  private committing: Promise<void> = Promise.resolve()
  private failure: unknown
  applied = 0

  constructor(private readonly options: GlobalStoreUpdaterOptions) {}

  private async partitions(): Promise<ReadonlyArray<number>> {
    if (this.options.partitions) return this.options.partitions
    if (!this.options.reader.partitionsFor)
      throw new ProcessorStateError('GlobalStoreUpdater needs `partitions` (the reader cannot list them)')
    return this.options.reader.partitionsFor(this.options.topic)
  }

  private async applyBatch(partition: number, records: ReadonlyArray<RawRecord>, next: string): Promise<void> {
    if (records.length) {
      if (this.options.apply) await this.options.apply(records)
      else {
        const m = this.options.manager as Partial<{ store(): RuntimeStore }>
        const kv = m.store?.() as unknown as KeyValueBytesStore | undefined
        if (!kv || typeof kv.putAll !== 'function')
          throw new ProcessorStateError(
            'GlobalStoreUpdater needs `apply` unless the manager comes from createGlobalStateManager with a key-value store',
          )
        await kv.putAll(records.filter((r) => r.key).map((r) => [r.key!, r.value] as const))
      }
    }
    this.applied += records.length
    this.positions.set(partition, next)
    this.dirty = true
  }

  /** Commits applied records and positions (serialized). */
  commit(): Promise<void> {
    const run = this.committing.then(async () => {
      if (!this.dirty) return
      this.dirty = false
      await this.options.manager.commit(new Map(this.positions))
    })
    this.committing = run.catch(() => {})
    return run
  }

  /** Reads every partition from its checkpoint to the current end, applying and committing. Returns records applied. */
  async bootstrap(): Promise<number> {
    const parts = await this.partitions()
    const ends = await this.options.reader.endOffsets(parts.map((partition) => ({ topic: this.options.topic, partition })))
    const cps = this.options.manager.checkpointedOffsets()
    const before = this.applied
    await Promise.all(
      parts.map(async (p) => {
        const from = cps.get(p)
        const end = ends.get(tpKey(this.options.topic, p))!
        if (from !== undefined) this.positions.set(p, from)
        if (from !== undefined && BigInt(from) >= BigInt(end)) return
        await this.options.reader.read(
          this.options.topic,
          p,
          from,
          end,
          (records, next) => this.applyBatch(p, records, next),
          this.controller.signal,
        )
        this.positions.set(p, end)
        this.dirty = true
      }),
    )
    await this.commit()
    return this.applied - before
  }

  /** Keeps reading every partition from the current positions until `stop()`. */
  async start(): Promise<void> {
    if (this.loops) return
    const parts = await this.partitions()
    const cps = this.options.manager.checkpointedOffsets()
    this.loops = Promise.all(
      parts.map((p) =>
        this.options.reader.read(
          this.options.topic,
          p,
          this.positions.get(p) ?? cps.get(p),
          undefined,
          (records, next) => this.applyBatch(p, records, next),
          this.controller.signal,
        ),
      ),
    ).then(
      () => undefined,
      (err: unknown) => {
        this.failure = err
        this.options.onError?.(err)
      },
    )
    this.timer = setInterval(
      () => void this.commit().catch((e: unknown) => this.options.onError?.(e)),
      this.options.commitIntervalMs ?? 1000,
    )
    this.timer.unref()
  }

  /** Stops tailing and commits what was applied. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.controller.abort()
    await this.loops
    await this.commit()
    if (this.failure) throw this.failure
  }
}
