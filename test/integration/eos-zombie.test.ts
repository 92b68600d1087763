/**
 * Exactly-once, scenario 4 (issue 5): a zombie. Instance `z` freezes itself (SIGSTOP, from inside
 * the topology, right after processing its N-th record, so it holds processed but uncommitted
 * work) and stays frozen past its session timeout (6 s): the group moves its tasks to `b`, whose
 * transactional producers fence z's (EOS-alpha), or whose new generation makes the group coordinator
 * refuse z's transactional offsets (exactly_once_v2, KIP-447). Then SIGCONT: z's late commit must be fenced (its tasks are
 * closed as migrated) and nothing it produced after the move may become visible; the independent
 * verifier's scenario 1 checks must hold over the whole run.
 *
 * Scenario 4b: the same zombie, frozen with its output already sent into its open transaction and
 * kept frozen past the transaction timeout (10 s, plus up to the coordinator's 10 s check
 * interval): the transaction coordinator expires that transaction and bumps the producer's epoch,
 * so whatever the zombie sends next is refused as fenced before any offset reaches the group
 * coordinator. Every task of the fenced transaction must be closed as migrated, none re-created
 * on the zombie before the group assigns it again, and the output stays exact.
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
  type EosGuarantee,
} from '../eos/harness.js'

/** The thread producer's transaction timeout (lib/app/client/kafkajs.ts) and the broker's default expiry check interval. */
const TRANSACTION_TIMEOUT_MS = 10_000
const EXPIRY_CHECK_INTERVAL_MS = 10_000

/**
 * `longFreeze`: the zombie stops 200 ms after its 400th record (its output sent, not committed;
 * commits every 5 s) and stays frozen until its transaction has surely expired.
 */
async function zombie(guarantee: EosGuarantee, longFreeze: boolean): Promise<void> {
  const s = await createScenario({ guarantee, partitions: 4 })
  const z = await Instance.create(
    'z',
    s,
    longFreeze ? { SELF_STOP_AFTER: '400', SELF_STOP_DEFER_MS: '200', COMMIT_INTERVAL_MS: '5000' } : { SELF_STOP_AFTER: '400' },
  )
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
  await b.waitForEvent('b owns all 4 tasks', (e) => e.ev === 'assignment' && (e.active as string[]).length === 4 && e.t > stopped.t, 60_000)
  await waitForProgress(s, since, 60_000, "b processing the zombie's partitions")
  if (longFreeze) {
    const expired = TRANSACTION_TIMEOUT_MS + EXPIRY_CHECK_INTERVAL_MS + 2000
    await waitFor("the coordinator expired z's transaction", () => Date.now() - stopped.t > expired, expired + 1000)
  }
  expect(z.isStopped()).toBe(true)

  z.signal('SIGCONT')
  const resumed = await z.waitForEvent('continued', (e) => e.ev === 'continued', 10_000)
  const frozenMs = resumed.t - stopped.t
  // the zombie's late commit is fenced: its tasks are closed as migrated, not committed
  const fenced = await z.waitForEvent('a task migrated after SIGCONT', (e) => e.ev === 'migrated' && e.t >= resumed.t, 60_000)
  const reason = String(fenced.reason)
  if (longFreeze || guarantee === 'exactly_once') {
    // the transaction coordinator fenced z's producer: EOS-alpha, the new owner's InitProducerId of
    // the task's transactional id; a long freeze, the expiry of z's open transaction (epoch bumped)
    expect(reason).toMatch(/fenced|epoch/i)
  } else if (frozenMs < TRANSACTION_TIMEOUT_MS - 1000) {
    // v2 (KIP-447), z's transaction still open: the group coordinator refuses z's offsets, which
    // carry a member / generation the group no longer has
    expect(reason).toMatch(/not aware of this member|generation/i)
  } else {
    // frozen about as long as the transaction timeout: whichever coordinator got there first
    expect(reason).toMatch(/not aware of this member|generation|fenced|epoch/i)
  }
  expect(zTasks).toContain(fenced.taskId)

  // z rejoins as a fresh owner and the group goes on
  await z.waitForEvent('rejoined with tasks', (e) => e.ev === 'assignment' && e.t > resumed.t && (e.active as string[]).length > 0, 90_000)
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
  // group gave to b (re-creating one would fence b's producer under EOS-alpha and process b's
  // partitions under both). `created` events of an assignment come right before its `assignment`
  // event; a revival has none.
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
  report(longFreeze ? 'zombie past the transaction timeout' : 'zombie', {
    frozenMs,
    bMigrated: b.events.filter((e) => e.ev === 'migrated').map((e) => e.taskId),
    produced: r.produced,
    abortedRecords: r.abortedRecords,
    zombieTasks: zTasks,
    fenced: z.events.filter((e) => e.ev === 'migrated').map((e) => `${e.taskId}: ${e.reason}`),
  })
}

describe.each(eosGuarantees(['exactly_once', 'exactly_once_v2']))('exactly-once, scenario 4: a zombie instance (%s)', (guarantee) => {
  it(
    'SIGSTOP past the session timeout, tasks move, SIGCONT: the late commit is fenced and the output stays exact',
    { timeout: 240_000 },
    () => zombie(guarantee, false),
  )
})

describe.each(eosGuarantees(['exactly_once_v2']))(
  'exactly-once, scenario 4b: a zombie frozen past the transaction timeout (%s)',
  (guarantee) => {
    it(
      'output sent into the open transaction, SIGSTOP until the coordinator expired it, SIGCONT: every task of it migrated, none revived, output exact',
      { timeout: 240_000 },
      () => zombie(guarantee, true),
    )
  },
)
