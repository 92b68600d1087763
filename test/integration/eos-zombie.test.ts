/**
 * Exactly-once, scenario 4 (issue 5): a zombie. Instance `z` freezes itself (SIGSTOP, from inside
 * the topology, right after processing its N-th record, so it holds processed but uncommitted
 * work) and stays frozen past its session timeout (6 s): the group moves its tasks to `b`, whose
 * transactional producers fence z's (EOS-alpha), or whose new generation makes the group coordinator
 * refuse z's transactional offsets (exactly_once_v2, KIP-447). Then SIGCONT: z's late commit must be fenced (its tasks are
 * closed as migrated) and nothing it produced after the move may become visible; the independent
 * verifier's scenario 1 checks must hold over the whole run.
 */
import { describe, expect, it } from 'vitest'
import {
  committedOffsets,
  createScenario,
  finishAndVerify,
  InputProducer,
  Instance,
  report,
  waitFor,
  waitForProgress,
  eosGuarantees,
} from '../eos/harness.js'

describe.each(eosGuarantees(['exactly_once', 'exactly_once_v2']))('exactly-once, scenario 4: a zombie instance (%s)', (guarantee) => {
  it(
    'SIGSTOP past the session timeout, tasks move, SIGCONT: the late commit is fenced and the output stays exact',
    { timeout: 240_000 },
    async () => {
      const s = await createScenario({ guarantee, partitions: 4 })
      const z = await Instance.create('z', s, { SELF_STOP_AFTER: '400' })
      const b = await Instance.create('b', s)
      z.start()
      b.start()
      await Promise.all([z.waitRunning(), b.waitRunning()])
      const input = await new InputProducer(s, { perTick: 10 }).start()

      const stopped = await z.waitForEvent('self-stop after 400 records', (e) => e.ev === 'self-stop', 120_000)
      await waitFor('z frozen (state T)', () => z.isStopped(), 5000)
      const zTasks = z.currentRun.filter((e) => e.ev === 'assignment' && e.t <= stopped.t).at(-1)?.active as string[] | undefined
      expect(zTasks?.length ?? 0).toBeGreaterThan(0)

      // past the session timeout the group hands z's tasks to b, which processes z's partitions
      const since = await committedOffsets(s, s.input)
      await b.waitForEvent(
        'b owns all 4 tasks',
        (e) => e.ev === 'assignment' && (e.active as string[]).length === 4 && e.t > stopped.t,
        60_000,
      )
      await waitForProgress(s, since, 60_000, "b processing the zombie's partitions")
      expect(z.isStopped()).toBe(true)

      z.signal('SIGCONT')
      const resumed = await z.waitForEvent('continued', (e) => e.ev === 'continued', 10_000)
      // the zombie's late commit is fenced: its tasks are closed as migrated, not committed
      const fenced = await z.waitForEvent('a task migrated after SIGCONT', (e) => e.ev === 'migrated' && e.t >= resumed.t, 60_000)
      // EOS-alpha: the new owner's InitProducerId fenced z's task producer; v2 (KIP-447): the group
      // coordinator refuses z's offsets, which carry a member / generation the group no longer has
      expect(String(fenced.reason)).toMatch(guarantee === 'exactly_once' ? /fenced|epoch/i : /not aware of this member|generation/i)
      expect(zTasks).toContain(fenced.taskId)

      // z rejoins as a fresh owner and the group goes on
      await z.waitForEvent(
        'rejoined with tasks',
        (e) => e.ev === 'assignment' && e.t > resumed.t && (e.active as string[]).length > 0,
        90_000,
      )
      await waitForProgress(s, await committedOffsets(s, s.input), 90_000, 'progress after the zombie rejoined')
      // keep the stream going past another session timeout after the fencing (a wrongly revived task would show up)
      await waitFor('9 s of processing after the fencing', () => Date.now() - fenced.t > 9000, 30_000)
      await waitForProgress(s, await committedOffsets(s, s.input), 90_000, 'progress 9 s after the fencing')

      const r = await finishAndVerify(s, [z, b], input)
      expect(r.exitCodes).toEqual([0, 0])
      expect(r.openTransactions).toEqual([])
      expect(r.problems).toEqual([])
      expect(r.inputRead).toBe(r.produced)
      expect(r.echoRead).toBe(r.produced)
      expect(r.aggRead).toBe(r.produced)
      // after SIGCONT the zombie creates only tasks of its current assignment: no "revived" task the
      // group gave to b (re-creating one would fence b's producer). `created` events of an assignment
      // come right before its `assignment` event; a revival has none.
      const after = z.currentRun.filter((x) => x.t >= resumed.t)
      const phantom: string[] = []
      after.forEach((e, i) => {
        if (e.ev !== 'created' || e.standby) return
        const prev = after
          .slice(0, i)
          .filter((x) => x.ev === 'assignment')
          .at(-1)
        const next = after.slice(i).find((x) => x.ev === 'assignment')
        const owned =
          (prev?.active as string[] | undefined)?.includes(e.taskId as string) ||
          (next !== undefined && next.t - e.t < 1000 && (next.active as string[]).includes(e.taskId as string))
        if (!owned) phantom.push(`${e.taskId} at +${e.t - resumed.t} ms`)
      })
      expect(phantom).toEqual([])
      report('zombie', {
        bMigrated: b.events.filter((e) => e.ev === 'migrated').map((e) => e.taskId),
        produced: r.produced,
        abortedRecords: r.abortedRecords,
        zombieTasks: zTasks,
        fenced: z.events.filter((e) => e.ev === 'migrated').map((e) => `${e.taskId}: ${e.reason}`),
      })
    },
  )
})
