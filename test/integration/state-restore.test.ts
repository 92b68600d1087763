/**
 * State runtime against a real broker: changelog write → wipe → full restore, restart from a
 * checkpoint restores only the tail, read_committed restoration over aborted/open transactions,
 * standby replicas, and the changelog reader's end-of-log handling.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Producer } from 'kafkajs'
import type { OutputRecord } from '../../topology/engine/types.js'
import type { StoreDef } from '../../topology/state/types.js'
import { createChangelogReader } from '../../lib/app/client/kafkajs-changelog-reader.js'
import { restoreTask, StandbyTask } from '../../lib/state/restore.js'
import { createTaskStateManager } from '../../lib/state/task-state-manager.js'
import type { ChangelogReader, TaskStateManager } from '../../lib/state/types.js'
import { connectedProducer, createTopics, kafkaClient, onCleanup, randomTopic } from './helpers.js'

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
  windowSizeMs: 1000,
}

async function stateDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'kstreams-it-state-'))
  onCleanup(() => rm(d, { recursive: true, force: true }))
  return d
}

function reader(): ChangelogReader {
  const r = createChangelogReader({ kafka: kafkaClient() })
  onCleanup(() => r.close())
  return r
}

function manager(app: string, dir: string, stores: StoreDef[] = [kvDef, winDef], partition = 0): TaskStateManager {
  const m = createTaskStateManager({
    applicationId: app,
    taskId: `0_${partition}`,
    stateDir: dir,
    stores,
    changelogTopicFor: (s) => `${app}-${s.name}-changelog`,
    changelogPartition: partition,
    cacheMaxBytes: 10 * 1024 * 1024,
    exactlyOnce: false,
  })
  onCleanup(() => m.close({ clean: true }))
  return m
}

class Collector {
  records: OutputRecord[] = []
  send(r: OutputRecord) {
    this.records.push(r)
  }
}

/** Produces collected changelog records (as the app's commit path does); returns end offsets per topic. */
async function produce(producer: Producer, records: OutputRecord[]): Promise<Map<string, string>> {
  const byTopic = new Map<string, OutputRecord[]>()
  for (const r of records) {
    let l = byTopic.get(r.topic)
    if (!l) byTopic.set(r.topic, (l = []))
    l.push(r)
  }
  const ends = new Map<string, string>()
  for (const [topic, recs] of byTopic) {
    for (let i = 0; i < recs.length; i += 5000) {
      const chunk = recs.slice(i, i + 5000)
      const res = await producer.send({
        topic,
        messages: chunk.map((r) => ({ key: r.key, value: r.value, partition: r.partition!, timestamp: String(r.timestamp) })),
      })
      ends.set(topic, String(BigInt(res[0]!.baseOffset!) + BigInt(chunk.length)))
    }
  }
  return ends
}

async function commit(m: TaskStateManager, producer: Producer): Promise<number> {
  const c = new Collector()
  const n = await m.prepareCommit(c)
  const ends = await produce(producer, c.records)
  await m.commitLocal(ends)
  return n
}

async function dump(m: TaskStateManager): Promise<{ kv: string[]; win: string[] }> {
  const kv: string[] = []
  for await (const [k, v] of (await m.provider.keyValue(kvDef)).range()) kv.push(`${k}=${v}`)
  const win: string[] = []
  for await (const e of (await m.provider.window(winDef)).fetchAll(0, Number.MAX_SAFE_INTEGER))
    win.push(`${e.key}@${e.windowStartMs}=${e.value}`)
  return { kv, win: win.sort() }
}

async function changelogTopics(app: string, partitions = 1): Promise<void> {
  await createTopics(
    { topic: `${app}-counts-changelog`, numPartitions: partitions, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
    { topic: `${app}-win-changelog`, numPartitions: partitions, configEntries: [{ name: 'cleanup.policy', value: 'compact,delete' }] },
  )
}

/** Applies `n` updates: counts per key and a per-key window per second; returns the expected contents. */
async function applyUpdates(m: TaskStateManager, from: number, n: number, expected: { kv: Map<string, number>; win: Map<string, string> }) {
  const kv = await m.provider.keyValue(kvDef)
  const win = await m.provider.window(winDef)
  for (let i = from; i < from + n; i++) {
    const key = `k${i % 97}`
    const prev = await kv.get(B(key))
    const next = (prev ? Number(prev.toString()) : 0) + 1
    await kv.put(B(key), B(String(next)))
    expected.kv.set(key, (expected.kv.get(key) ?? 0) + 1)
    const ws = Math.floor(i / 50) * 1000
    await win.put(B(key), ws, B(String(i)))
    expected.win.set(`${key}@${ws}`, String(i))
  }
}

function expectedDump(expected: { kv: Map<string, number>; win: Map<string, string> }) {
  return {
    kv: [...expected.kv].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`),
    win: [...expected.win].map(([k, v]) => `${k}=${v}`).sort(),
  }
}

describe('state restoration from changelogs (real broker)', () => {
  it('changelog write → wipe → full restore equals; restart from the checkpoint restores only the tail', async () => {
    const app = randomTopic('r1app')
    await changelogTopics(app)
    const producer = await connectedProducer({ idempotent: true, maxInFlightRequests: 1 })
    const dirA = await stateDir()
    const expected = { kv: new Map<string, number>(), win: new Map<string, string>() }

    const a = manager(app, dirA)
    await a.open()
    await applyUpdates(a, 0, 3000, expected)
    const firstCommit = await commit(a, producer)
    await applyUpdates(a, 3000, 2000, expected)
    const secondCommit = await commit(a, producer)
    expect(await dump(a)).toEqual(expectedDump(expected))
    await a.close({ clean: true })
    await a.wipe()

    // full restore on a wiped directory
    const b = manager(app, dirA)
    await b.open()
    expect([...b.checkpointedOffsets().values()]).toEqual([undefined, undefined])
    const progress: number[] = []
    const full = await restoreTask(b, reader(), { onProgress: (p) => progress.push(p.restored) })
    expect(full.restored).toBe(firstCommit + secondCommit)
    expect(progress.length).toBeGreaterThan(0)
    expect(await dump(b)).toEqual(expectedDump(expected))
    await b.close({ clean: true })

    // another instance (own state dir) continues the task and writes a tail of 300 updates
    const other = manager(app, await stateDir())
    await other.open()
    await restoreTask(other, reader())
    await applyUpdates(other, 5000, 300, expected)
    const tail = await commit(other, producer)
    await other.close({ clean: true })

    // the first instance reopens with its checkpoint: only the tail is restored
    const c = manager(app, dirA)
    await c.open()
    expect([...c.checkpointedOffsets().values()].every((o) => o !== undefined)).toBe(true)
    const partial = await restoreTask(c, reader())
    expect(partial.restored).toBe(tail)
    expect(await dump(c)).toEqual(expectedDump(expected))
  })

  it('read_committed restoration skips aborted transactions, stops before an open one and terminates', async () => {
    const app = randomTopic('r1txn')
    await changelogTopics(app)
    const topic = `${app}-counts-changelog`
    const txProducer = await connectedProducer({ transactionalId: randomTopic('tx'), idempotent: true, maxInFlightRequests: 1 })
    const send = async (entries: Array<[string, string | null]>, outcome: 'commit' | 'abort' | 'open') => {
      const tx = await txProducer.transaction()
      await tx.send({ topic, messages: entries.map(([k, v]) => ({ key: k, value: v, partition: 0 })) })
      if (outcome === 'commit') await tx.commit()
      else if (outcome === 'abort') await tx.abort()
      return tx
    }
    await send(
      [
        ['a', '1'],
        ['b', '1'],
      ],
      'commit',
    )
    await send(
      [
        ['a', 'ABORTED'],
        ['c', 'ABORTED'],
      ],
      'abort',
    )
    await send(
      [
        ['b', '2'],
        ['d', '1'],
      ],
      'commit',
    )
    await send([['d', null]], 'commit')
    await send([['a', 'ABORTED-AGAIN']], 'abort')
    // a transaction left open at the end: the LSO stays before it
    const open = await send([['e', 'OPEN']], 'open')
    let openAborted = false
    onCleanup(async () => {
      if (!openAborted) await open.abort()
    })

    const r = reader()
    const ends = await r.endOffsets([{ topic, partition: 0 }])
    // offsets: 5 finished transactions of 2,2,2,1,1 records each followed by a marker = 0..12;
    // the open transaction's record sits at 13, so the last stable offset is 13 (the high
    // watermark is 14)
    expect(ends.get(`${topic}:0`)).toBe('13')

    const m = manager(app, await stateDir(), [kvDef])
    await m.open()
    const t0 = Date.now()
    const res = await restoreTask(m, r)
    expect(Date.now() - t0).toBeLessThan(10_000)
    expect(res.restored).toBe(5) // a=1 b=1 b=2 d=1 d=null
    const kv: string[] = []
    for await (const [k, v] of (await m.provider.keyValue(kvDef)).range()) kv.push(`${k}=${v}`)
    expect(kv).toEqual(['a=1', 'b=2'])
    expect(m.checkpointedOffsets().get(topic)).toBe(ends.get(`${topic}:0`))

    // once the open transaction aborts, a further restore also terminates with no new record
    await open.abort()
    openAborted = true
    // the abort marker is written asynchronously by the coordinator: wait for the LSO to pass it
    const deadline = Date.now() + 10_000
    while (BigInt((await r.endOffsets([{ topic, partition: 0 }])).get(`${topic}:0`)!) <= 13n && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 50))
    }
    const again = await restoreTask(m, r)
    expect(again.restored).toBe(0)
    expect(BigInt(m.checkpointedOffsets().get(topic)!)).toBeGreaterThan(BigInt(ends.get(`${topic}:0`)!))
  })

  it('a standby replica follows the changelog so that failover restores only the tail', async () => {
    const app = randomTopic('r1sb')
    await changelogTopics(app)
    const producer = await connectedProducer({ idempotent: true, maxInFlightRequests: 1 })
    const expected = { kv: new Map<string, number>(), win: new Map<string, string>() }
    const active = manager(app, await stateDir())
    await active.open()
    const standbyDir = await stateDir()
    const sbm = manager(app, standbyDir)
    await sbm.open()
    const sb = new StandbyTask(sbm, reader(), { checkpointIntervalMs: 200 })
    sb.start()
    let produced = 0
    for (let round = 0; round < 3; round++) {
      await applyUpdates(active, round * 500, 500, expected)
      produced += await commit(active, producer)
    }
    const deadline = Date.now() + 20_000
    while (sb.recordsApplied < produced && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    expect(sb.recordsApplied).toBe(produced)
    await sb.stop()
    // the active instance writes a tail the standby does not see, then "dies"
    await applyUpdates(active, 1500, 100, expected)
    const tail = await commit(active, producer)
    await active.close({ clean: false })
    // failover: the standby's state manager is promoted
    const res = await restoreTask(sbm, reader())
    expect(res.restored).toBe(tail)
    expect(await dump(sbm)).toEqual(expectedDump(expected))
  })
})
