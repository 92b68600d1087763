/**
 * What a member reports to the assignor (Kafka Streams' `taskOffsetSums`): the positions of the
 * task directories left on disk (read from each store's LevelDB), and of its open active and
 * standby tasks, with LATEST_OFFSET (-2) for a running active task.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { RawRecord } from '../../topology/engine/types.js'
import type { StoreDef } from '../../topology/state/types.js'
import { createTaskStateManager } from '../../lib/state/task-state-manager.js'
import { readTaskDirectoryPositions } from '../../lib/state/task-directories.js'
import { TaskOffsetSums } from '../../lib/app/runtime/task-offset-sums.js'
import { LATEST_OFFSET } from '../../lib/app/task-assignor.js'
import type { TaskStateFactory } from '../../lib/app/runtime/task-initializer.js'

const dirs: string[] = []
afterEach(async () => {
  while (dirs.length) await rm(dirs.pop()!, { recursive: true, force: true })
})

async function stateDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'kstreams-sums-'))
  dirs.push(d)
  return d
}

function kvDef(name: string, extra: Partial<StoreDef> = {}): StoreDef {
  return { name, type: 'keyValue', loggingEnabled: true, logConfig: {}, cachingEnabled: true, persistent: true, ...extra }
}

const topicOf = (s: StoreDef) => (s.loggingEnabled ? `app-${s.name}-changelog` : undefined)

function factory(dir: string, stores: StoreDef[]): TaskStateFactory {
  return (taskId) =>
    createTaskStateManager({
      applicationId: 'app',
      taskId: `${taskId.subtopology}_${taskId.partition}`,
      stateDir: dir,
      stores,
      changelogTopicFor: topicOf,
      changelogPartition: taskId.partition,
      cacheMaxBytes: 1 << 20,
      exactlyOnce: false,
      lockWaitMs: 0,
      syncWrites: false,
    })
}

function records(topic: string, from: number, n: number): RawRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    topic,
    partition: 0,
    offset: String(from + i),
    key: Buffer.from(`k${from + i}`),
    value: Buffer.from('v'),
    timestamp: 0,
    headers: {},
  }))
}

describe('readTaskDirectoryPositions', () => {
  it("reads each task directory's store positions, skipping open tasks, damaged stores and other directories", async () => {
    const dir = await stateDir()
    const stores = [kvDef('a'), kvDef('b')]
    for (const [task, [a, b]] of [
      ['0_1', [42, 7]],
      ['1_0', [5, 0]],
    ] as const) {
      const sm = factory(dir, stores)({ subtopology: Number(task[0]), partition: Number(task[2]) }, { standby: false })!
      await sm.open()
      await sm.restoreBatch('app-a-changelog', records('app-a-changelog', 0, 3), String(a))
      if (b > 0) await sm.restoreBatch('app-b-changelog', records('app-b-changelog', 0, 2), String(b))
      await sm.close({ clean: true })
    }
    await mkdir(path.join(dir, 'app', 'not-a-task'), { recursive: true })
    await mkdir(path.join(dir, 'app', '2_0', 'empty-store'), { recursive: true })

    const all = await readTaskDirectoryPositions(dir, 'app')
    expect(
      Object.fromEntries([...all].map(([t, p]) => [t, Object.fromEntries([...p].map(([topic, o]) => [topic, o.toString()]))])),
    ).toEqual({
      '0_1': { 'app-a-changelog': '42', 'app-b-changelog': '7' },
      '1_0': { 'app-a-changelog': '5' },
    })
    expect([...(await readTaskDirectoryPositions(dir, 'app', new Set(['0_1']))).keys()]).toEqual(['1_0'])
    // a store marked corrupted is wiped at its next open: it has no state to offer
    await writeFile(path.join(dir, 'app', '1_0', 'a.corrupted'), 'damaged\n')
    expect([...(await readTaskDirectoryPositions(dir, 'app')).keys()]).toEqual(['0_1'])
    expect((await readTaskDirectoryPositions(path.join(dir, 'missing'), 'app')).size).toBe(0)
  })

  it('does not open a store another manager holds open (its LOCK): that store counts as no state', async () => {
    const dir = await stateDir()
    const sm = factory(dir, [kvDef('a')])({ subtopology: 0, partition: 0 }, { standby: false })!
    await sm.open()
    await sm.restoreBatch('app-a-changelog', records('app-a-changelog', 0, 1), '10')
    try {
      expect((await readTaskDirectoryPositions(dir, 'app')).size).toBe(0)
    } finally {
      await sm.close({ clean: true })
    }
    expect((await readTaskDirectoryPositions(dir, 'app')).get('0_0')?.get('app-a-changelog')).toBe(10n)
  })
})

describe('TaskOffsetSums', () => {
  it('reports open tasks by their positions, running active tasks as LATEST_OFFSET, and remembers what a closed task left on disk', async () => {
    const dir = await stateDir()
    const running = new Set<string>()
    const sums = new TaskOffsetSums({
      running: (id) => running.has(id),
      persistentChangelogs: () => new Set(['app-p-changelog']),
    })
    sums.addDiskPositions(new Map([['3_3', new Map([['app-p-changelog', 99n]])]]))
    const make = sums.track(factory(dir, [kvDef('p'), kvDef('m', { persistent: false })]))

    const sm = make({ subtopology: 0, partition: 0 }, { standby: false })!
    expect(sums.sums()).toEqual({ '3_3': 99 }) // not open yet: nothing to say about 0_0
    await sm.open()
    expect(sums.sums()).toEqual({ '3_3': 99, '0_0': 0 })
    await sm.restoreBatch('app-p-changelog', records('app-p-changelog', 0, 2), '30')
    await sm.restoreBatch('app-m-changelog', records('app-m-changelog', 0, 2), '12')
    expect(sums.sums()['0_0']).toBe(42)
    running.add('0_0')
    expect(sums.sums()['0_0']).toBe(LATEST_OFFSET)
    expect([...sums.openTasks()]).toEqual(['0_0'])

    // closed: the persistent store's position stays on disk, the in-memory one is gone
    await sm.close({ clean: true })
    running.delete('0_0')
    expect(sums.sums()).toEqual({ '3_3': 99, '0_0': 30 })
    expect((await readTaskDirectoryPositions(dir, 'app')).get('0_0')?.get('app-p-changelog')).toBe(30n)

    await sm.wipe()
    expect(sums.sums()).toEqual({ '3_3': 99 })
  })

  it('reports no sum for a task without logged stores', async () => {
    const dir = await stateDir()
    const sums = new TaskOffsetSums({ running: () => true, persistentChangelogs: () => new Set() })
    const sm = sums.track(factory(dir, [kvDef('u', { loggingEnabled: false })]))({ subtopology: 0, partition: 0 }, { standby: false })!
    await sm.open()
    expect(sums.sums()).toEqual({})
    await sm.close({ clean: true })
    expect(sums.sums()).toEqual({})
  })
})
