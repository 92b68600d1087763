/**
 * Durability of local state against what a machine crash and a damaged disk do to LevelDB
 * (ARCHITECTURE.md, "Durability order"). No broker: a fake changelog records what each commit
 * produced, and restoration reads it back through {@link restoreTask}.
 *
 * - Power loss: LevelDB acknowledges a batch once it is in its write-ahead log (`*.log`); writes
 *   that never reached the disk are gone after a power loss. Cutting every `*.log` to half its
 *   length (or deleting the newest one) reproduces that. The store's recorded position must then
 *   be exactly as far as the data it still holds, so restoring from it replays the lost tail.
 * - A damaged table file (`*.ldb` bytes overwritten, or the file gone): found at open or at a
 *   read (classic-level `LEVEL_CORRUPTION`), the store is deleted and restored from offset 0.
 */
import { mkdtemp, readdir, rm, stat, truncate, open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { OutputRecord, RawRecord } from '../../topology/engine/types.js'
import type { KeyValueBytesStore, SessionBytesStore, StoreDef, WindowBytesStore } from '../../topology/state/types.js'
import { createTaskStateManager, type CreateTaskStateManagerOptions, type StoreWipedEvent } from '../../lib/state/task-state-manager.js'
import type { ChangelogReader, TaskStateManager } from '../../lib/state/types.js'
import { restoreTask } from '../../lib/state/restore.js'
import { createGlobalStateManager } from '../../lib/state/global-state.js'
import type { GlobalStoreDef } from '../../topology/engine/types.js'
import { isCorruptionError } from '../../lib/state/backend.js'
import { decodeSessionChangelogKey, decodeWindowChangelogKey } from '../../lib/state/keys.js'

const dirs: string[] = []
const managers: TaskStateManager[] = []
afterEach(async () => {
  while (managers.length)
    await managers
      .pop()!
      .close({ clean: true })
      .catch(() => {})
  while (dirs.length) await rm(dirs.pop()!, { recursive: true, force: true })
})

const MIN = Number.MIN_SAFE_INTEGER
const MAX = Number.MAX_SAFE_INTEGER
const B = (s: string) => Buffer.from(s)

const kvDef: StoreDef = { name: 'counts', type: 'keyValue', loggingEnabled: true, logConfig: {}, cachingEnabled: true, persistent: true }
const winDef: StoreDef = {
  name: 'win',
  type: 'window',
  loggingEnabled: true,
  logConfig: {},
  cachingEnabled: true,
  persistent: true,
  retentionMs: 1_000_000,
  windowSizeMs: 100,
}
const sesDef: StoreDef = {
  name: 'ses',
  type: 'session',
  loggingEnabled: true,
  logConfig: {},
  cachingEnabled: true,
  persistent: true,
  retentionMs: 1_000_000,
}
const topicOf = (d: StoreDef) => `app-${d.name}-changelog`

async function stateDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'kstreams-durability-'))
  dirs.push(d)
  return d
}

function tsm(dir: string, stores: StoreDef[], extra: Partial<CreateTaskStateManagerOptions> = {}) {
  const m = createTaskStateManager({
    applicationId: 'app',
    taskId: '0_0',
    stateDir: dir,
    stores,
    changelogTopicFor: topicOf,
    changelogPartition: 0,
    cacheMaxBytes: 64 << 20,
    exactlyOnce: true,
    lockWaitMs: 0,
    ...extra,
  })
  managers.push(m)
  return m
}

/**
 * The changelog topics as the broker would hold them: each commit appends the collected records
 * and a transaction marker (which takes an offset, as under exactly-once).
 */
class FakeChangelog implements ChangelogReader {
  readonly topics = new Map<string, RawRecord[]>()
  readonly ends = new Map<string, number>()

  /** Appends a commit's collected records; returns the changelog end offsets to commit locally. */
  append(collected: ReadonlyArray<OutputRecord>): Map<string, string> {
    const touched = new Set<string>()
    for (const r of collected) {
      const recs = this.topics.get(r.topic) ?? []
      this.topics.set(r.topic, recs)
      const offset = this.ends.get(r.topic) ?? 0
      recs.push({ topic: r.topic, partition: 0, offset: String(offset), key: r.key, value: r.value, timestamp: r.timestamp, headers: {} })
      this.ends.set(r.topic, offset + 1)
      touched.add(r.topic)
    }
    for (const t of touched) this.ends.set(t, this.ends.get(t)! + 1) // commit marker
    return new Map([...touched].map((t) => [t, String(this.ends.get(t))]))
  }

  /** Compacted content of a topic's records below `until` (key hex → value, tombstones delete). */
  compacted(topic: string, until = Number.POSITIVE_INFINITY): Map<string, Buffer> {
    const out = new Map<string, Buffer>()
    for (const r of this.topics.get(topic) ?? []) {
      if (Number(r.offset) >= until) break
      if (r.value === null) out.delete(r.key!.toString('hex'))
      else out.set(r.key!.toString('hex'), r.value)
    }
    return out
  }

  async endOffsets(partitions: ReadonlyArray<{ topic: string; partition: number }>): Promise<Map<string, string>> {
    return new Map(partitions.map((p) => [`${p.topic}:${p.partition}`, String(this.ends.get(p.topic) ?? 0)]))
  }

  async read(
    topic: string,
    _partition: number,
    fromOffset: string | undefined,
    untilOffset: string | undefined,
    onBatch: (records: ReadonlyArray<RawRecord>, nextOffset: string) => Promise<void>,
  ): Promise<void> {
    const from = Number(fromOffset ?? 0)
    const until = Number(untilOffset ?? this.ends.get(topic) ?? 0)
    const recs = (this.topics.get(topic) ?? []).filter((r) => Number(r.offset) >= from && Number(r.offset) < until)
    for (let i = 0; i < recs.length; i += 7) {
      const chunk = recs.slice(i, i + 7)
      await onBatch(chunk, i + 7 >= recs.length ? String(until) : String(Number(chunk[chunk.length - 1]!.offset) + 1))
    }
    if (recs.length === 0 && from < until) await onBatch([], String(until))
  }

  async close(): Promise<void> {}
}

class Collector {
  records: OutputRecord[] = []
  send(r: OutputRecord) {
    this.records.push(r)
  }
}

/** A store's content in its changelog's terms: changelog key hex → value. */
async function dump(m: TaskStateManager, def: StoreDef): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>()
  if (def.type === 'keyValue') {
    for await (const [k, v] of (m.provider.keyValue(def) as KeyValueBytesStore).range()) out.set(k.toString('hex'), v)
  } else if (def.type === 'window') {
    for await (const e of (m.provider.window(def) as WindowBytesStore).fetchAll(MIN, MAX)) {
      const ck = Buffer.alloc(e.key.length + 12)
      e.key.copy(ck)
      ck.writeBigInt64BE(BigInt(e.windowStartMs), e.key.length)
      out.set(ck.toString('hex'), e.value)
    }
  } else {
    for await (const e of (m.provider.session(def) as SessionBytesStore).findSessions(undefined, MIN, MAX)) {
      const ck = Buffer.alloc(e.key.length + 16)
      e.key.copy(ck)
      ck.writeBigInt64BE(BigInt(e.endMs), e.key.length)
      ck.writeBigInt64BE(BigInt(e.startMs), e.key.length + 8)
      out.set(ck.toString('hex'), e.value)
    }
  }
  return out
}

/** Changelog keys of window stores carry a sequence number the store does not return: drop it. */
function comparable(def: StoreDef, m: Map<string, Buffer>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of m) {
    let key = k
    if (def.type === 'window') {
      const p = decodeWindowChangelogKey(Buffer.from(k, 'hex'))
      const ck = Buffer.alloc(p.key.length + 12)
      Buffer.from(p.key).copy(ck)
      ck.writeBigInt64BE(BigInt(p.windowStartMs), p.key.length)
      key = ck.toString('hex')
    } else if (def.type === 'session') {
      const p = decodeSessionChangelogKey(Buffer.from(k, 'hex'))
      const ck = Buffer.alloc(p.key.length + 16)
      Buffer.from(p.key).copy(ck)
      ck.writeBigInt64BE(BigInt(p.endMs), p.key.length)
      ck.writeBigInt64BE(BigInt(p.startMs), p.key.length + 8)
      key = ck.toString('hex')
    }
    out[key] = v.toString('hex')
  }
  return out
}

/**
 * Runs `commits` commits of running aggregates (each commit changes every key's value) through a
 * task state manager: the changelog gets each commit's records, then `commitLocal` writes LevelDB.
 */
async function runAggregation(
  m: TaskStateManager,
  log: FakeChangelog,
  stores: StoreDef[],
  commits: number,
  options: { keys?: number; valueBytes?: number } = {},
): Promise<void> {
  const keys = options.keys ?? 30
  const pad = Buffer.alloc(options.valueBytes ?? 0, 0x61)
  for (let c = 1; c <= commits; c++) {
    for (let k = 0; k < keys; k++) {
      const key = B(`key-${k}`)
      const value = Buffer.concat([B(`sum=${c * (k + 1)};`), pad])
      for (const def of stores) {
        if (def.type === 'keyValue')
          await (m.provider.keyValue(def) as KeyValueBytesStore).put(key, k % 10 === 9 && c % 3 === 0 ? null : value)
        else if (def.type === 'window') await (m.provider.window(def) as WindowBytesStore).put(key, Math.floor(c / 4) * 100, value)
        else await (m.provider.session(def) as SessionBytesStore).put(key, 0, c * 10, value)
      }
    }
    const col = new Collector()
    await m.prepareCommit(col)
    await m.commitLocal(log.append(col.records))
  }
}

async function filesOf(dir: string, ext: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.endsWith(ext)).map((f) => path.join(dir, f))
}

/**
 * Waits until LevelDB has installed the table its write-buffer flush writes: the flush runs in the
 * background, and a close that comes first skips it, leaving an orphaned table file (not part of
 * the database; its data still in the older log). Installed = the older log deleted, one left.
 * Without this, a busy machine closes first and the tests damage or rely on a table LevelDB
 * never reads.
 */
async function untilTablesInstalled(storeDir: string): Promise<void> {
  const deadline = Date.now() + 60_000
  while ((await filesOf(storeDir, '.log')).length !== 1 || (await filesOf(storeDir, '.ldb')).length === 0) {
    if (Date.now() > deadline) throw new Error(`LevelDB in ${storeDir} did not install a flushed table within 60 s`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** Cuts each of a store's write-ahead logs to half its length (unsynced writes lost). */
async function cutLogsToHalf(storeDir: string): Promise<number> {
  let cut = 0
  for (const f of await filesOf(storeDir, '.log')) {
    const size = (await stat(f)).size
    await truncate(f, Math.floor(size / 2))
    cut += size - Math.floor(size / 2)
  }
  return cut
}

/** Overwrites the middle half of a file with garbage. */
async function scribble(file: string): Promise<void> {
  const size = (await stat(file)).size
  const fh = await open(file, 'r+')
  try {
    await fh.write(Buffer.alloc(Math.floor(size / 2), 0x5a), 0, Math.floor(size / 2), Math.floor(size / 4))
  } finally {
    await fh.close()
  }
}

describe('state durability: the recorded position never runs ahead of the data', () => {
  it('power loss (every *.log cut to half): each store holds exactly the changelog up to its own position, and restoring from it yields the full state', async () => {
    const dir = await stateDir()
    const stores = [kvDef, winDef, sesDef]
    const log = new FakeChangelog()
    const m = tsm(dir, stores)
    await m.open()
    await runAggregation(m, log, stores, 40)
    await m.close({ clean: true })

    for (const def of stores) expect(await cutLogsToHalf(path.join(dir, 'app', '0_0', def.name))).toBeGreaterThan(0)

    const m2 = tsm(dir, stores)
    await m2.open()
    const positions = m2.checkpointedOffsets()
    for (const def of stores) {
      const pos = positions.get(topicOf(def))
      // the cut lost commits, but not all of them
      expect(pos).toBeDefined()
      expect(Number(pos)).toBeGreaterThan(0)
      expect(Number(pos)).toBeLessThan(log.ends.get(topicOf(def))!)
      // the data is exactly the committed changelog below the position: nothing missing, nothing newer
      expect(comparable(def, await dump(m2, def)), def.name).toEqual(comparable(def, log.compacted(topicOf(def), Number(pos))))
    }
    const r = await restoreTask(m2, log)
    expect(r.restored).toBeGreaterThan(0)
    for (const def of stores) {
      expect(m2.checkpointedOffsets().get(topicOf(def))).toBe(String(log.ends.get(topicOf(def))))
      expect(comparable(def, await dump(m2, def)), def.name).toEqual(comparable(def, log.compacted(topicOf(def))))
    }
  })

  it('power loss after an unclean stop (no close): the same holds', async () => {
    const dir = await stateDir()
    const log = new FakeChangelog()
    const m = tsm(dir, [kvDef])
    await m.open()
    await runAggregation(m, log, [kvDef], 40)
    // the process dies: LevelDB is never closed (its LOCK is left to the dead process's handles)
    const storeDir = path.join(dir, 'app', '0_0', kvDef.name)
    const copy = path.join(dir, 'copy')
    await import('node:fs/promises').then((fs) => fs.cp(storeDir, path.join(copy, 'app', '0_0', kvDef.name), { recursive: true }))
    await rm(path.join(copy, 'app', '0_0', kvDef.name, 'LOCK'), { force: true })
    await m.close({ clean: false })
    expect(await cutLogsToHalf(path.join(copy, 'app', '0_0', kvDef.name))).toBeGreaterThan(0)
    const m2 = tsm(copy, [kvDef])
    await m2.open()
    const pos = Number(m2.checkpointedOffsets().get(topicOf(kvDef)))
    expect(pos).toBeGreaterThan(0)
    expect(pos).toBeLessThan(log.ends.get(topicOf(kvDef))!)
    expect(comparable(kvDef, await dump(m2, kvDef))).toEqual(comparable(kvDef, log.compacted(topicOf(kvDef), pos)))
    await restoreTask(m2, log)
    expect(comparable(kvDef, await dump(m2, kvDef))).toEqual(comparable(kvDef, log.compacted(topicOf(kvDef))))
  })

  it('the newest data lost entirely (the newest *.log deleted after tables were written): position and data go back together', async () => {
    const dir = await stateDir()
    const log = new FakeChangelog()
    const m = tsm(dir, [kvDef])
    await m.open()
    // ~7 MB of values: LevelDB flushes its 4 MB write buffer to a table and starts a new log
    await runAggregation(m, log, [kvDef], 40, { keys: 60, valueBytes: 3000 })
    const storeDir = path.join(dir, 'app', '0_0', kvDef.name)
    await untilTablesInstalled(storeDir)
    await m.close({ clean: true })
    expect((await filesOf(storeDir, '.ldb')).length).toBeGreaterThan(0)
    const logs = (await filesOf(storeDir, '.log')).sort()
    expect(logs.length).toBeGreaterThan(0)
    await rm(logs[logs.length - 1]!)

    const m2 = tsm(dir, [kvDef])
    await m2.open()
    const pos = Number(m2.checkpointedOffsets().get(topicOf(kvDef)))
    expect(pos).toBeGreaterThan(0)
    expect(pos).toBeLessThan(log.ends.get(topicOf(kvDef))!)
    expect(comparable(kvDef, await dump(m2, kvDef))).toEqual(comparable(kvDef, log.compacted(topicOf(kvDef), pos)))
    await restoreTask(m2, log)
    expect(comparable(kvDef, await dump(m2, kvDef))).toEqual(comparable(kvDef, log.compacted(topicOf(kvDef))))
  })
})

describe('state durability: restoration and global stores carry their position with their data', () => {
  it('a power loss in the middle of a restoration: the restored prefix and its position go back together, the next restoration resumes exactly', async () => {
    const dir = await stateDir()
    const log = new FakeChangelog()
    // the changelog, produced by a task elsewhere
    const src = tsm(dir, [kvDef], { taskId: '9_9' })
    await src.open()
    await runAggregation(src, log, [kvDef], 60)
    await src.close({ clean: true })

    const m = tsm(dir, [kvDef])
    await m.open()
    await restoreTask(m, log)
    await m.close({ clean: true })
    const storeDir = path.join(dir, 'app', '0_0', kvDef.name)
    expect(await cutLogsToHalf(storeDir)).toBeGreaterThan(0)

    const m2 = tsm(dir, [kvDef])
    await m2.open()
    const pos = Number(m2.checkpointedOffsets().get(topicOf(kvDef)))
    expect(pos).toBeGreaterThan(0)
    expect(pos).toBeLessThan(log.ends.get(topicOf(kvDef))!)
    expect(comparable(kvDef, await dump(m2, kvDef))).toEqual(comparable(kvDef, log.compacted(topicOf(kvDef), pos)))
    const r = await restoreTask(m2, log)
    expect(r.partitions[0]!.from).toBe(String(pos))
    expect(comparable(kvDef, await dump(m2, kvDef))).toEqual(comparable(kvDef, log.compacted(topicOf(kvDef))))
  })

  it('a global store: a power loss takes its per-partition positions back with its data', async () => {
    const dir = await stateDir()
    const store: StoreDef = {
      name: 'gstore',
      type: 'keyValue',
      loggingEnabled: false,
      logConfig: {},
      cachingEnabled: true,
      persistent: true,
    }
    const def = { store, source: { topics: ['gtopic'] } } as unknown as GlobalStoreDef
    const m = createGlobalStateManager({ applicationId: 'app', stateDir: dir, def, cacheMaxBytes: 1 << 20 })
    await m.open()
    const kv = m.provider.keyValue(store) as KeyValueBytesStore
    // per commit: 30 keys on partitions 0 and 1, the source offsets move by 30 + 1 each
    const value = (c: number, k: number) => B(`v${c}-${k}`)
    for (let c = 1; c <= 40; c++) {
      for (let k = 0; k < 30; k++) await kv.put(B(`p${k % 2}-key-${k}`), value(c, k))
      await m.commit(
        new Map([
          [0, String(c * 31)],
          [1, String(c * 31)],
        ]),
      )
    }
    await m.close()
    expect(await cutLogsToHalf(path.join(dir, 'app', 'global', 'gstore'))).toBeGreaterThan(0)

    const m2 = createGlobalStateManager({ applicationId: 'app', stateDir: dir, def, cacheMaxBytes: 1 << 20 })
    await m2.open()
    const offsets = m2.checkpointedOffsets()
    const c0 = Number(offsets.get(0)) / 31
    expect(Number.isInteger(c0)).toBe(true)
    expect(c0).toBeGreaterThan(0)
    expect(c0).toBeLessThan(40)
    expect(offsets.get(1)).toBe(offsets.get(0))
    // the data is exactly commit c0's
    const kv2 = m2.provider.keyValue(store) as KeyValueBytesStore
    const got: Record<string, string> = {}
    for await (const [k, v] of kv2.range()) got[k.toString()] = v.toString()
    const want: Record<string, string> = {}
    for (let k = 0; k < 30; k++) want[`p${k % 2}-key-${k}`] = value(c0, k).toString()
    expect(got).toEqual(want)
    await m2.close()
  })
})

describe('state durability: a damaged table file is detected, the store deleted and restored from offset 0', () => {
  /** A task whose key-value store has tables on disk (values large enough to flush the write buffer). */
  async function storeWithTables(): Promise<{ dir: string; log: FakeChangelog; storeDir: string }> {
    const dir = await stateDir()
    const log = new FakeChangelog()
    const m = tsm(dir, [kvDef])
    await m.open()
    await runAggregation(m, log, [kvDef], 40, { keys: 60, valueBytes: 3000 })
    const storeDir = path.join(dir, 'app', '0_0', kvDef.name)
    await untilTablesInstalled(storeDir)
    await m.close({ clean: true })
    expect((await filesOf(storeDir, '.ldb')).length).toBeGreaterThan(0)
    return { dir, log, storeDir }
  }

  it('found by the open-time verification (verifyOnOpen: always): wiped at open, restored from 0', async () => {
    const { dir, log, storeDir } = await storeWithTables()
    for (const f of await filesOf(storeDir, '.ldb')) await scribble(f)
    const wiped: StoreWipedEvent[] = []
    const m = tsm(dir, [kvDef], { verifyOnOpen: 'always', onStoreWiped: (e) => wiped.push(e) })
    await m.open()
    expect(wiped.map((e) => [e.store, e.reason, isCorruptionError(e.error)])).toEqual([['counts', 'corruption', true]])
    expect(m.checkpointedOffsets().get(topicOf(kvDef))).toBeUndefined()
    expect((await dump(m, kvDef)).size).toBe(0)
    const r = await restoreTask(m, log)
    expect(r.partitions[0]!.from).toBe('0')
    expect(comparable(kvDef, await dump(m, kvDef))).toEqual(comparable(kvDef, log.compacted(topicOf(kvDef))))
  })

  it('after an unclean stop the tables are verified at open by default', async () => {
    const { dir, log, storeDir } = await storeWithTables()
    for (const f of await filesOf(storeDir, '.ldb')) await scribble(f)
    await cutLogsToHalf(storeDir) // also drops the clean-close flag written last
    const wiped: StoreWipedEvent[] = []
    const m = tsm(dir, [kvDef], { onStoreWiped: (e) => wiped.push(e) })
    await m.open()
    expect(wiped.map((e) => e.reason)).toEqual(['corruption'])
    await restoreTask(m, log)
    expect(comparable(kvDef, await dump(m, kvDef))).toEqual(comparable(kvDef, log.compacted(topicOf(kvDef))))
  })

  it('found by a read while running (clean close, no verification): the read fails with LEVEL_CORRUPTION, the next open wipes and restores from 0', async () => {
    const { dir, log, storeDir } = await storeWithTables()
    for (const f of await filesOf(storeDir, '.ldb')) await scribble(f)
    const m = tsm(dir, [kvDef])
    await m.open() // closed cleanly: not verified, the damage is not seen yet
    expect(m.checkpointedOffsets().get(topicOf(kvDef))).toBe(String(log.ends.get(topicOf(kvDef))))
    const err = await dump(m, kvDef).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(isCorruptionError(err)).toBe(true)
    expect((await readdir(path.dirname(storeDir))).sort()).toEqual(['counts', 'counts.corrupted'])
    await m.close({ clean: false })

    const wiped: StoreWipedEvent[] = []
    const m2 = tsm(dir, [kvDef], { onStoreWiped: (e) => wiped.push(e) })
    await m2.open()
    expect(wiped.map((e) => [e.store, e.reason])).toEqual([['counts', 'corruption']])
    expect(m2.checkpointedOffsets().get(topicOf(kvDef))).toBeUndefined()
    await restoreTask(m2, log)
    expect(comparable(kvDef, await dump(m2, kvDef))).toEqual(comparable(kvDef, log.compacted(topicOf(kvDef))))
    expect((await readdir(path.dirname(storeDir))).sort()).toEqual(['counts'])
  })

  it('a table file gone (LevelDB refuses to open: missing files): wiped at open, restored from 0', async () => {
    const { dir, log, storeDir } = await storeWithTables()
    await rm((await filesOf(storeDir, '.ldb'))[0]!)
    const wiped: StoreWipedEvent[] = []
    const m = tsm(dir, [kvDef], { onStoreWiped: (e) => wiped.push(e) })
    await m.open()
    expect(wiped.map((e) => [e.reason, isCorruptionError(e.error)])).toEqual([['corruption', true]])
    expect(m.checkpointedOffsets().get(topicOf(kvDef))).toBeUndefined()
    await restoreTask(m, log)
    expect(comparable(kvDef, await dump(m, kvDef))).toEqual(comparable(kvDef, log.compacted(topicOf(kvDef))))
  })
})
