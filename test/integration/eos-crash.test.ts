/**
 * Exactly-once, scenario 3 (issue 5): a crash injected at each point of the commit path
 * (`KSTREAMS_CRASH_AT`, test/eos/crash-hooks.ts: the process exits with 137 as if SIGKILLed):
 * - `after-send`: output and changelog records sent, offsets not added;
 * - `after-send-offsets`: offsets added to the transaction, not committed;
 * - `after-commit`: transaction committed, LevelDB and checkpoint not written;
 * - `during-local-write`: while the LevelDB batch / checkpoint is being written.
 *
 * One instance, three tasks, input flowing. After the crash, before anything restarts, the
 * verifier opens a copy of every task's LevelDB store and checks that it equals the committed
 * changelog (read_committed, compacted by key) up to some offset at or after the task's
 * checkpoint: no effect of the aborted (or still open) transaction, nothing older than the
 * checkpoint claims. The instance is restarted on the same state directory; when all input is
 * processed and it closed cleanly, every store must EQUAL the committed changelog and the outputs
 * pass scenario 1's checks.
 */
import { describe, expect, it } from 'vitest'
import { kafkaClient } from './helpers.js'
import {
  committedOffsets,
  createScenario,
  finishAndVerify,
  InputProducer,
  Instance,
  report,
  waitForProgress,
  eosGuarantees,
} from '../eos/harness.js'
import { checkStoreIsCommittedPrefix, checkStoreMatchesChangelog, dumpStores, readToStableEnd, readUntilMarkers } from '../eos/verifier.js'

const POINTS = ['after-send', 'after-send-offsets', 'after-commit', 'during-local-write'] as const
const PARTITIONS = 3

describe.each(eosGuarantees())('exactly-once, scenario 3: crash injection on the commit path (%s)', (guarantee) => {
  for (const point of POINTS) {
    it(
      `crash ${point}: local state holds only committed changelog data, and after the restart it equals the committed changelog`,
      { timeout: 180_000 },
      async () => {
        const kafka = kafkaClient()
        const s = await createScenario({ guarantee, partitions: PARTITIONS })
        const changelog = `${s.appId}-agg-changelog`
        const a = await Instance.create('a', s)
        const input = await new InputProducer(s, { perTick: 10 }).start()
        // a few commits of every task first, so the stores and checkpoints hold something
        a.start({ KSTREAMS_CRASH_AT: point, KSTREAMS_CRASH_AFTER_COMMITS: String(4 * PARTITIONS) })
        expect(await a.waitExit(120_000)).toBe(137)
        expect(a.stderr).toContain(`crash injection at ${point}`)

        // 1. right after the crash: every store is a committed prefix of its changelog
        const committed = await readToStableEnd(kafka, s.admin, changelog)
        const crashed = await dumpStores(a.stateDir, s.appId)
        expect(crashed.map((d) => `${d.taskId}/${d.store}`)).toEqual(['0_0/agg', '0_1/agg', '0_2/agg'])
        const prefix = crashed.map((d) =>
          checkStoreIsCommittedPrefix(
            `after crash, task ${d.taskId}`,
            d.entries,
            committed.records[Number(d.taskId.split('_')[1])]!,
            d.checkpoint.get(changelog),
          ),
        )
        expect(prefix.flatMap((x) => x.problems)).toEqual([])
        expect(crashed.every((d) => d.checkpoint.has(changelog))).toBe(true)
        // the crash left the crashing task's committed transaction out of LevelDB
        if (point === 'after-commit') expect(prefix.some((x) => x.behind)).toBe(true)

        // 2. restart on the same state directory, finish, verify outputs
        const since = await committedOffsets(s, s.input)
        a.start()
        await a.waitRunning(90_000)
        await waitForProgress(s, since, 90_000, 'progress after the restart')
        await input.produceAtLeast(100)
        const r = await finishAndVerify(s, [a], input)
        expect(r.exitCodes).toEqual([0])
        expect(r.openTransactions).toEqual([])
        expect(r.problems).toEqual([])
        expect(r.inputRead).toBe(r.produced)
        expect(r.echoRead).toBe(r.produced)
        expect(r.aggRead).toBe(r.produced)
        // a crash before the commit left an aborted transaction with output behind: read_uncommitted sees more
        if (point === 'after-send' || point === 'after-send-offsets') expect(r.abortedRecords).toBeGreaterThan(0)

        // 3. the restarted instance's stores equal the committed changelog (read up to the markers finishAndVerify wrote)
        const final = (await readUntilMarkers(kafka, s.admin, [changelog])).get(changelog)!
        const dumps = await dumpStores(a.stateDir, s.appId)
        expect(dumps.map((d) => `${d.taskId}/${d.store}`)).toEqual(['0_0/agg', '0_1/agg', '0_2/agg'])
        const problems = dumps.flatMap((d) =>
          checkStoreMatchesChangelog(`task ${d.taskId}`, d.entries, final[Number(d.taskId.split('_')[1])]!),
        )
        expect(problems).toEqual([])
        // the stores hold every key of the input (one aggregate per key)
        expect(dumps.reduce((n, d) => n + d.entries.size, 0)).toBe(s.keys.length)
        report(`crash ${point}`, {
          produced: r.produced,
          abortedRecords: r.abortedRecords,
          afterCrash: crashed.map((d, i) => ({
            task: d.taskId,
            keys: d.entries.size,
            checkpoint: d.checkpoint.get(changelog),
            committedEnd: committed.ends[i],
            behind: prefix[i]!.behind,
          })),
        })
      },
    )
  }
})
