/**
 * Exactly-once, scenario 2 (issue 5): three child-process instances; one is killed with SIGKILL
 * mid-stream and restarted (same state directory), three times (a different victim each time),
 * then every instance is restarted cleanly one after the other. The independent verifier then
 * checks scenario 1's properties, and that no transaction is left open: a marker a plain producer
 * appends to every partition of every topic the application wrote is at once the next record a
 * read_committed consumer sees.
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

const SIGKILLED = 128 + 9

describe.each(eosGuarantees(['exactly_once', 'exactly_once_v2']))(
  'exactly-once, scenario 2: kill -9 and rolling restarts (%s)',
  (guarantee) => {
    it(
      'three instances: kill -9 one mid-stream three times, then a rolling clean restart; exact output, no open transaction',
      { timeout: 300_000 },
      async () => {
        const s = await createScenario({ guarantee, partitions: 4 })
        const inst = await Promise.all(['a', 'b', 'c'].map((n) => Instance.create(n, s)))
        inst.forEach((i) => i.start())
        await Promise.all(inst.map((i) => i.waitRunning()))
        const input = await new InputProducer(s, { perTick: 6 }).start()
        let since = await waitForProgress(s, [-1, -1, -1, -1], 60_000, 'first commits')

        for (const victim of inst) {
          // mid-stream: the victim owns at least one task and input keeps flowing
          await victim.waitForEvent(
            'an assignment with active tasks',
            (e) => e.ev === 'assignment' && (e.active as string[]).length > 0,
            60_000,
          )
          await input.produceAtLeast(60)
          since = await committedOffsets(s, s.input)
          await victim.kill9()
          expect(victim.exits.at(-1)).toBe(SIGKILLED)
          victim.start()
          // every partition moves on: the victim's tasks were taken over (fencing its producers)
          since = await waitForProgress(s, since, 90_000, `progress after killing ${victim.name}`)
          await victim.waitRunning(90_000)
        }

        for (const i of inst) {
          since = await committedOffsets(s, s.input)
          expect(await i.stop()).toBe(0)
          i.start()
          await i.waitRunning(90_000)
          since = await waitForProgress(s, since, 90_000, `progress after restarting ${i.name}`)
        }

        const r = await finishAndVerify(s, inst, input)
        expect(r.exitCodes).toEqual([0, 0, 0])
        expect(r.openTransactions).toEqual([])
        expect(r.problems).toEqual([])
        expect(r.inputRead).toBe(r.produced)
        expect(r.echoRead).toBe(r.produced)
        expect(r.aggRead).toBe(r.produced)
        // each kill really interrupted a member that held tasks
        for (const i of inst) expect(i.exits).toEqual([SIGKILLED, 0, 0])
        report('kill -9 x3 + rolling restart', {
          produced: r.produced,
          abortedRecords: r.abortedRecords,
          migrated: inst.map((i) => i.events.filter((e) => e.ev === 'migrated').length),
        })
      },
    )
  },
)
