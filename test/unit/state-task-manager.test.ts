import { mkdtemp, readFile, rm, writeFile, readdir } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ProcessorStateError } from '../../topology/errors.js'
import type { OutputRecord, RawRecord } from '../../topology/engine/types.js'
import type { StoreDef } from '../../topology/state/types.js'
import { createTaskStateManager, type CreateTaskStateManagerOptions } from '../../lib/state/task-state-manager.js'
import type { TaskStateManager } from '../../lib/state/types.js'
import { readCheckpoint, writeCheckpoint } from '../../lib/state/checkpoint.js'
import { POSITION_KEY } from '../../lib/state/stores.js'
import { ClassicLevel } from 'classic-level'

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

const B = (s: string) => Buffer.from(s)

/** Writes straight into a (closed) store's LevelDB, as earlier versions or damage leave it. */
async function writeRaw(location: string, ops: Array<[Buffer, Buffer | null]>): Promise<void> {
  const db = new ClassicLevel<Buffer, Buffer>(location, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  await db.open()
  try {
    await db.batch(ops.map(([key, value]) => (value === null ? { type: 'del' as const, key } : { type: 'put' as const, key, value })))
  } finally {
    await db.close()
  }
}

async function readRaw(location: string, key: Buffer): Promise<Buffer | undefined> {
  const db = new ClassicLevel<Buffer, Buffer>(location, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  await db.open()
  try {
    return await db.get(key)
  } finally {
    await db.close()
  }
}

function kvDef(name: string, extra: Partial<StoreDef> = {}): StoreDef {
  return { name, type: 'keyValue', loggingEnabled: true, logConfig: {}, cachingEnabled: true, persistent: true, ...extra }
}
const windowDef: StoreDef = {
  name: 'win',
  type: 'window',
  loggingEnabled: true,
  logConfig: {},
  cachingEnabled: true,
  persistent: true,
  retentionMs: 10_000,
  windowSizeMs: 100,
}

async function stateDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'kstreams-tsm-'))
  dirs.push(d)
  return d
}

function tsm(dir: string, stores: StoreDef[], extra: Partial<CreateTaskStateManagerOptions> = {}) {
  const m = createTaskStateManager({
    applicationId: 'app',
    taskId: '0_1',
    stateDir: dir,
    stores,
    changelogTopicFor: (s) => (s.loggingEnabled ? `app-${s.name}-changelog` : undefined),
    changelogPartition: 1,
    cacheMaxBytes: 1 << 20,
    exactlyOnce: true,
    lockWaitMs: 0,
    ...extra,
  })
  managers.push(m)
  return m
}

class Collector {
  records: OutputRecord[] = []
  send(r: OutputRecord) {
    this.records.push(r)
  }
}

/** Turns collected changelog records into consumed records at offsets from `base`. */
function asConsumed(records: OutputRecord[], base = 0): RawRecord[] {
  return records.map((r, i) => ({
    topic: r.topic,
    partition: r.partition!,
    offset: String(base + i),
    key: r.key,
    value: r.value,
    timestamp: r.timestamp,
    headers: {},
  }))
}

describe('TaskStateManager', () => {
  it('commit protocol: changelog records at prepareCommit, LevelDB data + position at commitLocal', async () => {
    const dir = await stateDir()
    const m = tsm(dir, [kvDef('counts'), windowDef])
    await m.open()
    expect(m.changelogPartitions()).toEqual([
      { store: 'counts', topic: 'app-counts-changelog', partition: 1 },
      { store: 'win', topic: 'app-win-changelog', partition: 1 },
    ])
    expect([...m.checkpointedOffsets()]).toEqual([
      ['app-counts-changelog', undefined],
      ['app-win-changelog', undefined],
    ])
    const kv = await m.provider.keyValue(kvDef('counts'))
    const w = await m.provider.window(windowDef)
    await kv.put(B('a'), B('1'))
    await kv.put(B('a'), B('2')) // deduplicated in the changelog
    await kv.put(B('b'), null)
    await w.put(B('k'), 500, B('w'))
    const c = new Collector()
    expect(await m.prepareCommit(c)).toBe(3)
    expect(c.records.every((r) => r.partition === 1)).toBe(true)
    const kvRecs = c.records.filter((r) => r.topic === 'app-counts-changelog')
    expect(kvRecs.map((r) => [r.key?.toString(), r.value?.toString() ?? null])).toEqual([
      ['a', '2'],
      ['b', null],
    ])
    const winRec = c.records.find((r) => r.topic === 'app-win-changelog')!
    expect(winRec.key).toEqual(Buffer.concat([B('k'), Buffer.from('00000000000001f400000000', 'hex')]))
    await m.commitLocal(
      new Map([
        ['app-counts-changelog', '2'],
        ['app-win-changelog', '1'],
      ]),
    )
    expect([...m.checkpointedOffsets()]).toEqual([
      ['app-counts-changelog', '2'],
      ['app-win-changelog', '1'],
    ])
    // the position lives in the store, not in a checkpoint file
    expect(existsSync(path.join(dir, 'app', '0_1', '.checkpoint'))).toBe(false)
    await m.close({ clean: true })
    expect(JSON.parse((await readRaw(path.join(dir, 'app', '0_1', 'counts'), POSITION_KEY))!.toString())).toEqual({
      v: 1,
      offsets: { 'app-counts-changelog': '2' },
      clean: true,
    })
    const m2 = tsm(dir, [kvDef('counts'), windowDef])
    await m2.open()
    expect(m2.checkpointedOffsets().get('app-counts-changelog')).toBe('2')
    const kv2 = await m2.provider.keyValue(kvDef('counts'))
    expect((await kv2.get(B('a')))?.toString()).toBe('2')
    const w2 = await m2.provider.window(windowDef)
    expect((await w2.fetch(B('k'), 500))?.toString()).toBe('w')
  })

  it('abortUncommitted and an unclean close never let uncommitted writes reach LevelDB', async () => {
    const dir = await stateDir()
    const m = tsm(dir, [kvDef('s')])
    await m.open()
    const kv = await m.provider.keyValue(kvDef('s'))
    await kv.put(B('committed'), B('1'))
    await m.prepareCommit(new Collector())
    await m.commitLocal(new Map([['app-s-changelog', '1']]))
    await kv.put(B('aborted'), B('x'))
    await m.prepareCommit(new Collector())
    await m.abortUncommitted()
    expect(await kv.get(B('aborted'))).toBeUndefined()
    await kv.put(B('lost'), B('y'))
    await m.close({ clean: false })
    const m2 = tsm(dir, [kvDef('s')])
    await m2.open()
    const kv2 = await m2.provider.keyValue(kvDef('s'))
    expect((await kv2.getMany([B('committed'), B('aborted'), B('lost')])).map((v) => v?.toString())).toEqual(['1', undefined, undefined])
    expect(m2.checkpointedOffsets().get('app-s-changelog')).toBe('1')
  })

  it('restores from changelog records; replaying from an older checkpoint is idempotent', async () => {
    const dir = await stateDir()
    const src = tsm(dir, [kvDef('s'), windowDef], { taskId: '0_0' })
    await src.open()
    const kv = await src.provider.keyValue(kvDef('s'))
    const w = await src.provider.window(windowDef)
    for (let i = 0; i < 20; i++) await kv.put(B(`k${i % 7}`), B(String(i)))
    await kv.put(B('k3'), null)
    for (let i = 0; i < 5; i++) await w.put(B('w'), i * 100, B(String(i)))
    const c = new Collector()
    await src.prepareCommit(c)
    await src.close({ clean: false })
    const kvLog = asConsumed(c.records.filter((r) => r.topic === 'app-s-changelog'))
    const wLog = asConsumed(c.records.filter((r) => r.topic === 'app-win-changelog'))

    const dst = tsm(dir, [kvDef('s'), windowDef])
    await dst.open()
    await dst.restoreBatch('app-s-changelog', kvLog.slice(0, 3))
    await dst.markRestored('app-s-changelog', '3')
    // "crash" after a later batch was applied but before its checkpoint: replay from 3 again
    await dst.restoreBatch('app-s-changelog', kvLog.slice(3))
    await dst.restoreBatch('app-s-changelog', kvLog.slice(3))
    await dst.markRestored('app-s-changelog', String(kvLog.length))
    await dst.restoreBatch('app-win-changelog', wLog)
    await dst.markRestored('app-win-changelog', String(wLog.length))
    const kvR = await dst.provider.keyValue(kvDef('s'))
    const all: string[] = []
    for await (const [k, v] of kvR.range()) all.push(`${k}=${v}`)
    // expected from the writes above, computed independently
    const expected = new Map<string, string>()
    for (let i = 0; i < 20; i++) expected.set(`k${i % 7}`, String(i))
    expected.delete('k3')
    expect(all).toEqual([...expected].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`))
    const wR = await dst.provider.window(windowDef)
    const ws: string[] = []
    for await (const e of wR.fetchRange(B('w'), 0, 1000)) ws.push(`${e.windowStartMs}=${e.value}`)
    expect(ws).toEqual(['0=0', '100=1', '200=2', '300=3', '400=4'])
  })

  it('migration: a store without a position takes the offset of the old checkpoint file into the store, and the file is deleted', async () => {
    const dir = await stateDir()
    const taskDir = path.join(dir, 'app', '0_1')
    // a store as earlier versions left it: data, no position key, offsets in the checkpoint file
    await writeRaw(path.join(taskDir, 's'), [[B('a'), B('1')]])
    await writeRaw(path.join(taskDir, 't'), [[B('b'), B('2')]])
    await writeCheckpoint(path.join(taskDir, '.checkpoint'), new Map([['app-s-changelog', '5']]))
    const m = tsm(dir, [kvDef('s'), kvDef('t')])
    await m.open()
    // s migrated; t had data but no offset anywhere: unknown position, emptied for a full restore
    expect([...m.checkpointedOffsets()]).toEqual([
      ['app-s-changelog', '5'],
      ['app-t-changelog', undefined],
    ])
    expect((await (await m.provider.keyValue(kvDef('s'))).get(B('a')))?.toString()).toBe('1')
    expect(await (await m.provider.keyValue(kvDef('t'))).get(B('b'))).toBeUndefined()
    expect(existsSync(path.join(taskDir, '.checkpoint'))).toBe(false)
    await m.close({ clean: true })
    const m2 = tsm(dir, [kvDef('s'), kvDef('t')])
    await m2.open()
    expect(m2.checkpointedOffsets().get('app-s-changelog')).toBe('5')
  })

  it('an unreadable old checkpoint file is ignored: data without a position of its own is emptied', async () => {
    const dir = await stateDir()
    const taskDir = path.join(dir, 'app', '0_1')
    await writeRaw(path.join(taskDir, 's'), [[B('a'), B('1')]])
    await writeFile(path.join(taskDir, '.checkpoint'), '{"version":1,"offsets":{"app-s-changelog":')
    const wiped: unknown[] = []
    const m = tsm(dir, [kvDef('s')], { onStoreWiped: (e) => wiped.push(e) })
    await m.open()
    expect(m.checkpointedOffsets().get('app-s-changelog')).toBeUndefined()
    expect(await (await m.provider.keyValue(kvDef('s'))).get(B('a'))).toBeUndefined()
    expect(wiped).toEqual([{ taskId: '0_1', store: 's', reason: 'unknown-position' }])
  })

  it('a store whose position key is gone is emptied; a missing DB starts from the beginning; a stale checkpoint file never overrides a store position', async () => {
    const dir = await stateDir()
    const m = tsm(dir, [kvDef('s'), kvDef('t'), kvDef('u')])
    await m.open()
    for (const n of ['s', 't', 'u']) await (await m.provider.keyValue(kvDef(n))).put(B('a'), B(n))
    await m.prepareCommit(new Collector())
    await m.commitLocal(
      new Map([
        ['app-s-changelog', '1'],
        ['app-t-changelog', '1'],
        ['app-u-changelog', '1'],
      ]),
    )
    await m.close({ clean: true })
    const taskDir = path.join(dir, 'app', '0_1')
    await writeRaw(path.join(taskDir, 's'), [[POSITION_KEY, null]])
    await rm(path.join(taskDir, 't'), { recursive: true })
    await writeCheckpoint(
      path.join(taskDir, '.checkpoint'),
      new Map([
        ['app-t-changelog', '9'],
        ['app-u-changelog', '9'],
      ]),
    )
    const m2 = tsm(dir, [kvDef('s'), kvDef('t'), kvDef('u')])
    await m2.open()
    expect([...m2.checkpointedOffsets()]).toEqual([
      ['app-s-changelog', undefined],
      ['app-t-changelog', undefined],
      ['app-u-changelog', '1'],
    ])
    expect(await (await m2.provider.keyValue(kvDef('s'))).get(B('a'))).toBeUndefined()
    expect((await (await m2.provider.keyValue(kvDef('u'))).get(B('a')))?.toString()).toBe('u')
  })

  it('the position key is reserved in persistent key-value stores: puts fail, reads and scans never show it', async () => {
    const dir = await stateDir()
    const m = tsm(dir, [kvDef('s')])
    await m.open()
    const kv = await m.provider.keyValue(kvDef('s'))
    await kv.put(B('a'), B('1'))
    await m.prepareCommit(new Collector())
    await m.commitLocal(new Map([['app-s-changelog', '1']]))
    await expect(kv.put(POSITION_KEY, B('x'))).rejects.toThrow(/is reserved in persistent store s/)
    await expect(kv.put(POSITION_KEY, B('x'))).rejects.toBeInstanceOf(ProcessorStateError)
    expect(await kv.get(POSITION_KEY)).toBeUndefined()
    expect(await kv.getMany([B('a'), POSITION_KEY])).toEqual([B('1'), undefined])
    const all: string[] = []
    for await (const [k] of kv.range()) all.push(k.toString('hex'))
    expect(all).toEqual([B('a').toString('hex')])
    expect(await kv.approximateNumEntries()).toBe(1)
    await expect(
      m.restoreBatch('app-s-changelog', [
        { topic: 'app-s-changelog', partition: 1, offset: '1', key: POSITION_KEY, value: B('x'), timestamp: 0, headers: {} },
      ]),
    ).rejects.toThrow(/reserved position key/)
  })

  it('checkpoint writes are atomic: a leftover temp file never replaces the checkpoint', async () => {
    const dir = await stateDir()
    const file = path.join(dir, '.checkpoint')
    await writeCheckpoint(file, new Map([['t', '10']]))
    await writeFile(`${file}.999.1.tmp`, 'garbage from a crash mid-write')
    const r = await readCheckpoint(file)
    expect(r.status === 'ok' && r.offsets.get('t')).toBe('10')
    await writeCheckpoint(file, new Map([['t', '11']]))
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ version: 1, offsets: { t: '11' } })
    // no temp file of ours is left behind (only the crash leftover we planted)
    expect((await readdir(dir)).sort()).toEqual(['.checkpoint', '.checkpoint.999.1.tmp'])
    expect((await readCheckpoint(path.join(dir, 'nope'))).status).toBe('missing')
    await writeFile(file, JSON.stringify({ version: 1, offsets: { t: -1 } }))
    expect((await readCheckpoint(file)).status).toBe('corrupt')
  })

  it('a second manager for the same task fails with a retriable ProcessorStateError until the first closes', async () => {
    const dir = await stateDir()
    const a = tsm(dir, [kvDef('s')])
    await a.open()
    const b = tsm(dir, [kvDef('s')], { lockWaitMs: 200 })
    const err = await b.open().then(
      () => null,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(ProcessorStateError)
    expect((err as ProcessorStateError).retriable).toBe(true)
    expect((err as Error).message).toMatch(/in use by another task state manager|is locked/)
    expect((err as Error).message).toContain('task 0_1')
    await a.close({ clean: true })
    await b.open()
    await (await b.provider.keyValue(kvDef('s'))).put(B('x'), B('1'))
  })

  it('the LevelDB LOCK held by another holder becomes a retriable ProcessorStateError', async () => {
    const dir = await stateDir()
    const { LevelDbBackend } = await import('../../lib/state/backend.js')
    const other = await LevelDbBackend.open(path.join(dir, 'app', '0_1', 's'))
    try {
      const m = tsm(dir, [kvDef('s')], { lockWaitMs: 150 })
      const err = await m.open().then(
        () => null,
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(ProcessorStateError)
      expect((err as ProcessorStateError).retriable).toBe(true)
      expect((err as Error).message).toMatch(/is locked: another instance/)
      expect((err as Error).message).toContain('store s')
    } finally {
      await other.close()
    }
  })

  it('in-memory stores are restored from the changelog and never checkpointed', async () => {
    const dir = await stateDir()
    const mem = kvDef('mem', { persistent: false })
    const m = tsm(dir, [mem])
    await m.open()
    expect(existsSync(path.join(dir, 'app', '0_1'))).toBe(false)
    await m.restoreBatch('app-mem-changelog', [
      { topic: 'app-mem-changelog', partition: 1, offset: '0', key: B('a'), value: B('1'), timestamp: 0, headers: {} },
    ])
    await m.markRestored('app-mem-changelog', '1')
    const kv = await m.provider.keyValue(mem)
    expect((await kv.get(B('a')))?.toString()).toBe('1')
    expect(kv.persistent).toBe(false)
    await kv.put(B('b'), B('2'))
    const c = new Collector()
    expect(await m.prepareCommit(c)).toBe(1)
    await m.commitLocal(new Map([['app-mem-changelog', '2']]))
    expect(existsSync(path.join(dir, 'app', '0_1', '.checkpoint'))).toBe(false)
  })

  it('source-topic changelog stores restore but do not log', async () => {
    const dir = await stateDir()
    const src = kvDef('tbl', { sourceChangelogTopic: 'input' })
    const m = tsm(dir, [src], { changelogTopicFor: (s) => s.sourceChangelogTopic })
    await m.open()
    await (await m.provider.keyValue(src)).put(B('a'), B('1'))
    expect(await m.prepareCommit(new Collector())).toBe(0)
    await m.commitLocal(new Map([['input', '7']]))
    expect(m.checkpointedOffsets().get('input')).toBe('7')
  })

  it('requests a commit when buffered bytes exceed cacheMaxBytes', async () => {
    const dir = await stateDir()
    let calls = 0
    const m = tsm(dir, [kvDef('s')], { cacheMaxBytes: 10_000, onCommitNeeded: () => calls++ })
    await m.open()
    const kv = await m.provider.keyValue(kvDef('s'))
    for (let i = 0; i < 50; i++) await kv.put(B(`k${i}`), Buffer.alloc(100))
    expect(calls).toBe(0)
    for (let i = 50; i < 100; i++) await kv.put(B(`k${i}`), Buffer.alloc(100))
    expect(calls).toBe(1)
    await m.prepareCommit(new Collector())
    await m.commitLocal(new Map())
    for (let i = 0; i < 100; i++) await kv.put(B(`z${i}`), Buffer.alloc(100))
    expect(calls).toBe(2)
  })

  it('the provider rejects unknown stores and type mismatches', async () => {
    const m = tsm(await stateDir(), [kvDef('s')])
    expect(() => m.provider.keyValue(kvDef('s'))).toThrow(/while its state manager is created/)
    await m.open()
    expect(() => m.provider.keyValue(kvDef('nope'))).toThrow(/Store nope is not registered/)
    expect(() => m.provider.window({ ...windowDef, name: 's' })).toThrow(/is a keyValue store, not a window store/)
  })
})
