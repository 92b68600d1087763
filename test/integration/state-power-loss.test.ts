/**
 * A machine crash that loses the unsynced tail of every store (issue 10, ARCHITECTURE.md
 * "Durability order"), tried as an operator would: three exactly-once instances of the running
 * aggregation (test/eos/app.ts) process flowing input and are all killed at once; then every
 * store's LevelDB write-ahead log (`*.log`) is cut to half its length, which is what a power loss
 * does to writes the disk never got. The instances restart on their state directories while the
 * input keeps flowing, and the independent verifier checks every running aggregate.
 *
 * A store whose recorded position survives while its data does not would resume from the later
 * position and aggregate on top of stale values: wrong sums and counts. With the position written
 * in the same LevelDB batch as the data, the cut takes both back together and the store restores
 * the lost tail from its changelog.
 */
import { readdir, stat, truncate } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { committedOffsets, createScenario, finishAndVerify, InputProducer, Instance, report, waitForProgress } from '../eos/harness.js'

const SIGKILLED = 128 + 9

/** Cuts every `*.log` of every task store under the instance's state directory to half. */
async function cutStoreLogsToHalf(stateDir: string, appId: string): Promise<{ stores: number; bytesCut: number }> {
  const root = path.join(stateDir, appId)
  let stores = 0
  let bytesCut = 0
  let tasks: string[] = []
  try {
    tasks = (await readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory() && /^\d+_\d+$/.test(d.name)).map((d) => d.name)
  } catch {
    return { stores, bytesCut }
  }
  for (const task of tasks) {
    for (const d of await readdir(path.join(root, task), { withFileTypes: true })) {
      if (!d.isDirectory()) continue
      stores++
      const dir = path.join(root, task, d.name)
      for (const f of (await readdir(dir)).filter((n) => n.endsWith('.log'))) {
        const size = (await stat(path.join(dir, f))).size
        await truncate(path.join(dir, f), Math.floor(size / 2))
        bytesCut += size - Math.floor(size / 2)
      }
    }
  }
  return { stores, bytesCut }
}

describe('state durability against a power loss (real broker, child processes)', () => {
  it(
    'three exactly-once instances killed, every store log cut to half, restarted: the running aggregates stay exact',
    { timeout: 300_000 },
    async () => {
      const s = await createScenario({ partitions: 3, keysPerPartition: 4 })
      const inst = await Promise.all(['a', 'b', 'c'].map((n) => Instance.create(n, s)))
      inst.forEach((i) => i.start())
      await Promise.all(inst.map((i) => i.waitRunning()))
      const input = await new InputProducer(s, { perTick: 10 }).start()
      await waitForProgress(s, [-1, -1, -1], 60_000, 'first commits')
      // many commits per store (commit interval 100 ms), so half a log holds many of them
      await input.produceAtLeast(1500)
      await waitForProgress(s, await committedOffsets(s, s.input), 60_000, 'commits after 1500 records')

      // the machine goes down: every instance at once, then the disk loses the logs' tails
      await Promise.all(inst.map((i) => i.kill9()))
      for (const i of inst) expect(i.exits.at(-1)).toBe(SIGKILLED)
      const cuts = await Promise.all(inst.map((i) => cutStoreLogsToHalf(i.stateDir, s.appId)))
      const stores = cuts.reduce((n, c) => n + c.stores, 0)
      const bytesCut = cuts.reduce((n, c) => n + c.bytesCut, 0)
      expect(stores).toBeGreaterThanOrEqual(3)
      expect(bytesCut).toBeGreaterThan(0)

      const since = await committedOffsets(s, s.input)
      inst.forEach((i) => i.start())
      await Promise.all(inst.map((i) => i.waitRunning(90_000)))
      await waitForProgress(s, since, 90_000, 'progress after the restart')
      await input.produceAtLeast(600)

      const r = await finishAndVerify(s, inst, input)
      report('power loss: logs cut to half', {
        produced: r.produced,
        stores,
        bytesCut,
        problems: r.problems.length,
        firstProblems: r.problems.slice(0, 3),
      })
      expect(r.exitCodes).toEqual([0, 0, 0])
      expect(r.openTransactions).toEqual([])
      expect(r.problems).toEqual([])
      expect(r.inputRead).toBe(r.produced)
      expect(r.aggRead).toBe(r.produced)
    },
  )
})
