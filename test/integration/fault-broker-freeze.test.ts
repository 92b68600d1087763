/**
 * Fast fault test (issue 10, fast version of `npm run chaos`'s freeze scenarios): three instances
 * of the echo + running-aggregate app (test/eos/app.ts, child processes) on a PRIVATE broker
 * (its own port; the shared broker is never frozen), input flowing, the broker frozen (SIGSTOP)
 * for 9 s and resumed. Pass = no instance exited or went to ERROR, and the independent verifier
 * is exact: under exactly-once the echo equals the input and every running aggregate update is
 * exact and in order, no transaction left open; under at-least-once nothing is lost.
 *
 * Logs of each run (every instance's timestamped output) stay in `.cache/chaos/fast/`.
 * `CHAOS_CODE=<commit>` runs the instances on a committed runtime instead of the working tree
 * (test/chaos/snapshot.ts), e.g. to watch an older runtime fail it.
 */
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startPrivateBroker, type Cluster } from '../chaos/cluster.js'
import { ROOT } from '../chaos/instances.js'
import { freePorts } from '../chaos/ports.js'
import { runOnce, type Guarantee } from '../chaos/scenario.js'
import { clusterFreeze } from '../chaos/scenarios.js'
import { codeVersion, type CodeVersion } from '../chaos/snapshot.js'
import { selfCheck } from '../chaos/verify.js'

const FREEZE_S = 9

describe('fault: the broker frozen while three instances process', () => {
  let cluster: Cluster | undefined
  let code: CodeVersion | undefined
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')

  beforeAll(async () => {
    // FAULT_BROKER_PORT: where to look for free ports (e.g. when a chaos run owns the 29xxx range)
    cluster = await startPrivateBroker({ port: await freePorts(Number(process.env.FAULT_BROKER_PORT ?? 29192), 2) })
    if (process.env.CHAOS_CODE) code = await codeVersion(process.env.CHAOS_CODE)
  })
  afterAll(async () => {
    await cluster?.stop()
  })

  it('the verifier can fail (negative control on synthetic loss, duplicates and skipped aggregate updates)', () => {
    expect(selfCheck()).toEqual([])
  })

  for (const guarantee of ['exactly_once', 'exactly_once_v2', 'at_least_once'] as Guarantee[]) {
    it(
      `${guarantee}: a ${FREEZE_S} s freeze kills no instance and loses nothing${guarantee !== 'at_least_once' ? ', duplicates nothing, aggregates exact' : ''}`,
      { timeout: 300_000 },
      async () => {
        const r = await runOnce(`fast-freeze-${FREEZE_S}`, clusterFreeze(FREEZE_S, 6), cluster!, 1, {
          guarantee,
          ratePerSec: 100,
          inputSeconds: 20,
          drainTimeoutMs: 120_000,
          ...(code ? { code } : {}),
          logDir: path.join(ROOT, '.cache/chaos/fast', `${stamp}-${guarantee}`),
        })
        const where = `logs: ${r.logDir}`
        expect(r.error, where).toBeUndefined()
        expect(
          r.deaths.map((d) => `${d.instance} ${d.kind}: ${d.detail}`),
          where,
        ).toEqual([])
        expect(r.verdict?.openTransactions, where).toEqual([])
        expect(r.verdict?.problems, where).toEqual([])
        expect(
          r.verdict?.anomalies.filter((a) => a.kind.startsWith('lost')).map((a) => a.value),
          where,
        ).toEqual([])
        if (guarantee !== 'at_least_once')
          expect(
            r.verdict?.anomalies.map((a) => `${a.kind} ${a.value}`),
            where,
          ).toEqual([])
        expect(r.verdict?.inputRead).toBe(r.verdict?.produced)
        expect(r.pass, where).toBe(true)
      },
    )
  }
})
