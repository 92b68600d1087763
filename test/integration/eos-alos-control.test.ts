/**
 * Negative control of the exactly-once verifier on a REAL run (issue 5): the same application
 * under at-least-once, with a crash injected after the output was sent but before the offsets were
 * committed. The restarted instance processes those records again, so the output must contain
 * duplicates and aggregates that counted a record twice — and the verifier must say so. This
 * shows the harness can see what exactly-once prevents, and what at-least-once does differently.
 */
import { describe, expect, it } from 'vitest'
import { committedOffsets, createScenario, finishAndVerify, InputProducer, Instance, report, waitForProgress } from '../eos/harness.js'

describe('exactly-once verifier, negative control: at-least-once', () => {
  it(
    'at-least-once with a crash after the sends: the verifier reports the duplicated echo and the double-counted aggregates',
    { timeout: 180_000 },
    async () => {
      const s = await createScenario({ partitions: 3 })
      const a = await Instance.create('a', s, { GUARANTEE: 'at_least_once' })
      const input = await new InputProducer(s, { perTick: 10 }).start()
      a.start({ KSTREAMS_CRASH_AT: 'after-send', KSTREAMS_CRASH_AFTER_COMMITS: '4' })
      expect(await a.waitExit(120_000)).toBe(137)
      const since = await committedOffsets(s, s.input)
      a.start()
      await a.waitRunning(90_000)
      await waitForProgress(s, since, 90_000, 'progress after the restart')
      await input.produceAtLeast(100)
      const r = await finishAndVerify(s, [a], input)
      expect(r.exitCodes).toEqual([0])
      // nothing lost: every input record was echoed at least once
      expect(r.echoRead).toBeGreaterThan(r.produced)
      const text = r.problems.join('\n')
      expect(text).toMatch(/echo p\d.*duplicate of input/)
      expect(text).toMatch(/aggregates p\d/)
      report('at-least-once control', { produced: r.produced, echoRead: r.echoRead, aggRead: r.aggRead, problems: r.problems.slice(0, 3) })
    },
  )
})
