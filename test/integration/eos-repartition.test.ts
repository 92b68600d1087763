/**
 * Exactly-once, scenario 5 (issue 5): a re-keying aggregation. The echo as in scenario 1, and an
 * aggregation grouped by `g<seq % 3>` through a repartition topic (written and read inside the
 * transactional flow: the upstream task's transaction carries the repartition records with its
 * input offsets, the downstream task's transaction its aggregate updates, changelog and
 * repartition offsets). Two instances, one killed with SIGKILL mid-stream and restarted.
 */
import { describe, expect, it } from 'vitest'
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

describe.each(eosGuarantees())('exactly-once, scenario 5: repartitioning aggregation (%s)', (guarantee) => {
  it(
    'groupBy through a repartition topic, kill -9 mid-stream: every group aggregates every input record exactly once, in order',
    { timeout: 240_000 },
    async () => {
      const s = await createScenario({ guarantee, topology: 'repartition', partitions: 4 })
      const a = await Instance.create('a', s)
      const b = await Instance.create('b', s)
      a.start()
      b.start()
      await Promise.all([a.waitRunning(), b.waitRunning()])
      const input = await new InputProducer(s, { perTick: 8 }).start()
      let since = await waitForProgress(s, [-1, -1, -1, -1], 60_000, 'first commits')

      await a.waitForEvent('an assignment with active tasks', (e) => e.ev === 'assignment' && (e.active as string[]).length > 0, 60_000)
      await input.produceAtLeast(200)
      since = await committedOffsets(s, s.input)
      await a.kill9()
      a.start()
      await waitForProgress(s, since, 90_000, 'progress after the kill')
      await a.waitRunning(90_000)
      await input.produceAtLeast(200)

      const r = await finishAndVerify(s, [a, b], input, { groups: 3 })
      expect(r.repartitions).toEqual([`${s.appId}-regroup-repartition`])
      expect(r.changelogs).toEqual([`${s.appId}-gagg-changelog`])
      expect(r.exitCodes).toEqual([0, 0])
      expect(r.openTransactions).toEqual([])
      expect(r.problems).toEqual([])
      expect(r.inputRead).toBe(r.produced)
      expect(r.echoRead).toBe(r.produced)
      expect(r.aggRead).toBe(r.produced)
      report('repartition', { produced: r.produced, abortedRecords: r.abortedRecords })
    },
  )
})
