/**
 * Runtime bytes stores (Kafka Streams: `RocksDBStore`, `RocksDBWindowStore`,
 * `RocksDBSessionStore` with `CachingKeyValueStore` and `ChangeLoggingKeyValueBytesStore` on
 * top): the key-value store and {@link createRuntimeStore} here; the shared base with the design
 * (write buffer, clean cache, commit/restore protocol, position) in runtime-store.ts, the
 * time-segmented window and session stores in segmented-store.ts and window-session-stores.ts.
 * This module re-exports them all.
 */
import { ProcessorStateError } from '../../topology/errors.js'
import type { KeyValueBytesStore, StoreDef } from '../../topology/state/types.js'
import type { RawRecord } from '../../topology/engine/types.js'
import type { BackendOp, BackendRange, OrderedBytesBackend } from './backend.js'
import type { OverlayEntry } from './cache.js'
import { POSITION_KEY, isPositionKey } from './store-position.js'
import { RuntimeStore, type RuntimeStoreOptions, type ChangelogEntry } from './runtime-store.js'
import { RuntimeWindowStore, RuntimeSessionStore } from './window-session-stores.js'

export { POSITION_KEY, isPositionKey, decodePosition, type StorePosition } from './store-position.js'
export { RuntimeStore, type RuntimeStoreOptions, type ChangelogEntry } from './runtime-store.js'
export { defaultSegmentInterval } from './segmented-store.js'
export { RuntimeWindowStore, RuntimeSessionStore, type WindowStoreOptions } from './window-session-stores.js'

/** Key-value bytes store (Kafka Streams: `RocksDBStore` + caching + change-logging). */
export class RuntimeKeyValueStore extends RuntimeStore implements KeyValueBytesStore {
  get(key: Buffer): Promise<Buffer | undefined> {
    if (this.persistent && isPositionKey(key)) return Promise.resolve(undefined)
    return this.getPoint(key)
  }

  getMany(keys: ReadonlyArray<Buffer>): Promise<Array<Buffer | undefined>> {
    if (this.persistent && keys.some(isPositionKey)) {
      return this.getPoints(keys).then((vals) => vals.map((v, i) => (isPositionKey(keys[i]!) ? undefined : v)))
    }
    return this.getPoints(keys)
  }

  private checkKey(key: Buffer): void {
    if (this.persistent && isPositionKey(key)) {
      throw new ProcessorStateError(
        `Key ${key.toString('hex')} is reserved in persistent store ${this.name} (it holds the store's changelog position)`,
        { place: this.place() },
      )
    }
  }

  async put(key: Buffer, value: Buffer | null): Promise<void> {
    this.checkKey(key)
    this.putEntry(key, value)
  }

  async putAll(entries: ReadonlyArray<readonly [Buffer, Buffer | null]>): Promise<void> {
    for (const [k] of entries) this.checkKey(k)
    for (const [k, v] of entries) this.putEntry(k, v)
  }

  range(from?: Buffer, to?: Buffer): AsyncIterable<readonly [Buffer, Buffer]> {
    const r: BackendRange = { ...(from ? { gte: from } : {}), ...(to ? { lte: to } : {}) }
    if (from && to && Buffer.compare(from, to) > 0) return (async function* () {})()
    const it = this.scan([r], this.buffer.rangeEntries(r))
    if (!this.persistent || (to && Buffer.compare(to, POSITION_KEY) < 0) || (from && Buffer.compare(from, POSITION_KEY) > 0)) return it
    return (async function* () {
      for await (const e of it) if (!isPositionKey(e[0])) yield e
    })()
  }

  async approximateNumEntries(): Promise<number> {
    return Math.max(0, (await this.backend.count()) - (this.position !== undefined ? 1 : 0)) + this.buffer.size
  }

  protected toChangelog(e: OverlayEntry): ChangelogEntry {
    return { key: e.key, value: e.value }
  }

  protected restoreOps(records: ReadonlyArray<RawRecord>): BackendOp[] {
    const ops: BackendOp[] = []
    for (const r of records) {
      if (!r.key) continue
      if (this.persistent && isPositionKey(r.key)) {
        throw new ProcessorStateError(`Changelog record with the reserved position key of store ${this.name}`, {
          place: { ...this.place(), topic: r.topic, partition: r.partition, offset: r.offset },
        })
      }
      ops.push([r.key, r.value])
    }
    return ops
  }
}

/** Builds the runtime store for a {@link StoreDef} on `backend` (caller calls `init()`). */
export function createRuntimeStore(
  def: StoreDef,
  backend: OrderedBytesBackend,
  options: Omit<RuntimeStoreOptions, 'name' | 'backend'> & { segmentIntervalMs?: number } = {},
): RuntimeStore {
  const base = { ...options, name: def.name, backend, cachingEnabled: options.cachingEnabled ?? def.cachingEnabled }
  switch (def.type) {
    case 'keyValue':
      return new RuntimeKeyValueStore(base)
    case 'window':
      if (def.windowSizeMs === undefined || def.retentionMs === undefined) {
        throw new ProcessorStateError(`Window store ${def.name} needs windowSizeMs and retentionMs`, { place: { store: def.name } })
      }
      return new RuntimeWindowStore({
        ...base,
        retentionMs: def.retentionMs,
        windowSizeMs: def.windowSizeMs,
        retainDuplicates: def.retainDuplicates ?? false,
        ...(options.segmentIntervalMs !== undefined ? { segmentIntervalMs: options.segmentIntervalMs } : {}),
      })
    case 'session':
      if (def.retentionMs === undefined) {
        throw new ProcessorStateError(`Session store ${def.name} needs retentionMs`, { place: { store: def.name } })
      }
      return new RuntimeSessionStore({
        ...base,
        retentionMs: def.retentionMs,
        ...(options.segmentIntervalMs !== undefined ? { segmentIntervalMs: options.segmentIntervalMs } : {}),
      })
  }
}
