/**
 * The commit and failure paths of the runtime's task manager, over the in-memory broker
 * (helpers/fake-kafka.ts) with the real StreamTask, collector, commit strategies and error policy.
 * Each failure path ends with the same check: what a read_committed reader sees (output and
 * changelog) agrees with the group's committed offsets and with the local state, so nothing is
 * lost or duplicated under exactly-once.
 */
import { describe, expect, it } from 'vitest'
import { StreamsError } from '../../topology/errors.js'
import { StreamsEvents } from '../../lib/app/events.js'
import { protocolError, requestTimeout } from './helpers/fake-kafka.js'
import { CHANGELOG, INPUT, OUTPUT, createHarness } from './helpers/runtime-harness.js'

type Harness = ReturnType<typeof createHarness>

/** Exactly-once invariants of partition `p` once everything consumed is committed. */
function expectExactlyOnce(h: Harness, p: number, input: string[]): void {
  expect(h.broker.groupOffset(INPUT, p)).toBe(input.length)
  expect(h.broker.committed(OUTPUT, p)).toEqual(input)
  const counts = new Map<string, number>()
  for (const r of input) {
    const k = r.split('=')[0]!
    counts.set(k, (counts.get(k) ?? 0) + 1)
  }
  // the changelog's last committed value per key and the local state both equal the true counts
  const last = new Map<string, number>()
  for (const r of h.broker.committed(CHANGELOG, p)) {
    const [k, v] = r.split('=')
    last.set(k!, Number(v))
  }
  expect(last).toEqual(counts)
  expect(h.disks.get(`0_${p}`)!.data).toEqual(counts)
  expect(h.broker.openTransactions()).toEqual([])
}

const rows = (...kv: Array<[string, string]>) => kv.map(([k, v]) => `${k}=${v}`)

describe('exactly-once commit', () => {
  it('orders a commit: produce, then offsets, then the transaction commit, then local state', async () => {
    const h = createHarness()
    h.broker.produce(INPUT, 0, [
      ['a', '1'],
      ['b', '2'],
      ['a', '3'],
    ])
    await h.assign('0_0')
    h.broker.ops.length = 0
    expect(await h.feed('0_0')).toBe(3)
    await h.commit()
    // output and changelog sends, then the offsets, then EndTxn, and only then the local write
    // (the collector sends the output and the changelog records in one batch)
    expect(h.broker.ops).toEqual(['send app-0_0', 'sendOffsets app-0_0', 'commit app-0_0', 'commitLocal'])
    expect(h.points).toEqual(['after-send', 'after-send-offsets', 'after-commit'])
    await new Promise((r) => setImmediate(r))
    expect(h.points.at(-1)).toBe('during-local-write')
    expect(h.task('0_0').state).toBe('RUNNING')
    expectExactlyOnce(h, 0, rows(['a', '1'], ['b', '2'], ['a', '3']))
    expect(h.disks.get('0_0')!.position).toBe('2') // the changelog offset after its two records
  })

  it('a failed send rolls the task back to its last commit and retries it: nothing lost, nothing twice', async () => {
    const h = createHarness()
    h.broker.produce(INPUT, 0, [['a', '1']])
    await h.assign('0_0')
    await h.feed('0_0')
    await h.commit()
    h.broker.produce(INPUT, 0, [
      ['a', '2'],
      ['b', '3'],
    ])
    await h.feed('0_0')
    h.broker.fail('send', () => protocolError('NOT_LEADER_FOR_PARTITION'))
    await h.commit()
    // retriable: closed dirty, transaction aborted, nothing of the attempt kept
    expect(h.manager.tasks.has('0_0')).toBe(false)
    expect(h.events.filter((e) => e.name === StreamsEvents.TASK_RETRY).map((e) => e.payload.taskId)).toEqual(['0_0'])
    expect(h.events.find((e) => e.name === StreamsEvents.TASK_CLOSED)?.payload).toMatchObject({ taskId: '0_0', clean: false })
    expect(h.broker.groupOffset(INPUT, 0)).toBe(1)
    expect(h.disks.get('0_0')!.data.get('a')).toBe(1)
    expect(h.client.consumer.isPaused({ topic: INPUT, partition: 0 })).toBe(true)
    await h.revive()
    expect(h.task('0_0').state).toBe('RUNNING')
    expect(h.client.consumer.seeks.at(-1)).toEqual({ topic: INPUT, partition: 0, offset: '1' })
    await h.feed('0_0')
    await h.commit()
    expectExactlyOnce(h, 0, rows(['a', '1'], ['a', '2'], ['b', '3']))
  })

  it('a fenced producer means the task migrated: closed dirty, no offsets committed, its output aborted', async () => {
    const h = createHarness()
    h.broker.produce(INPUT, 0, [
      ['a', '1'],
      ['a', '2'],
    ])
    await h.assign('0_0')
    await h.feed('0_0')
    h.broker.fence('app-0_0') // another instance initialised the task's transactional id
    await h.commit()
    expect(h.eventNames()).toContain(StreamsEvents.TASK_MIGRATED)
    expect(h.eventNames()).not.toContain(StreamsEvents.TASK_RETRY)
    expect(h.fatal).toEqual([])
    expect(h.manager.tasks.has('0_0')).toBe(false)
    expect(h.broker.groupOffset(INPUT, 0)).toBe(-1)
    expect(h.broker.committed(OUTPUT, 0)).toEqual([])
    expect(h.disks.get('0_0')!.data.size).toBe(0)
    // a migrated task comes back with the next assignment, from the committed offsets
    await h.assign('0_0')
    await h.feed('0_0')
    await h.commit()
    expectExactlyOnce(h, 0, rows(['a', '1'], ['a', '2']))
  })

  it('a retriable commit failure of TWO tasks in one round rolls both back before anything else commits', async () => {
    const h = createHarness()
    h.broker.produce(INPUT, 0, [['a', '1']])
    h.broker.produce(INPUT, 1, [['b', '1']])
    h.broker.produce(INPUT, 2, [['c', '1']])
    await h.assign('0_0', '0_1', '0_2')
    for (const id of ['0_0', '0_1', '0_2']) await h.feed(id)
    await h.commit()
    h.broker.produce(INPUT, 0, [
      ['a', '2'],
      ['a', '3'],
    ])
    h.broker.produce(INPUT, 1, [['b', '2']])
    h.broker.produce(INPUT, 2, [['c', '2']])
    for (const id of ['0_0', '0_1', '0_2']) await h.feed(id)
    // the coordinator is loading: AddOffsetsToTxn of 0_0 and 0_1 fail, 0_2 commits
    h.broker.fail('sendOffsets', () => protocolError('GROUP_LOAD_IN_PROGRESS'), { txnId: 'app-0_0' })
    h.broker.fail('sendOffsets', () => protocolError('GROUP_LOAD_IN_PROGRESS'), { txnId: 'app-0_1' })
    await h.commit()
    expect(
      h.events
        .filter((e) => e.name === StreamsEvents.TASK_RETRY)
        .map((e) => e.payload.taskId)
        .sort(),
    ).toEqual(['0_0', '0_1'])
    expect([...h.manager.tasks.keys()]).toEqual(['0_2'])
    // neither failed task's offsets moved past its aborted output, nor its local state
    expect(h.broker.groupOffset(INPUT, 0)).toBe(1)
    expect(h.broker.groupOffset(INPUT, 1)).toBe(1)
    expect(h.broker.committed(OUTPUT, 0)).toEqual(rows(['a', '1']))
    expect(h.disks.get('0_0')!.data.get('a')).toBe(1)
    expect(h.disks.get('0_1')!.data.get('b')).toBe(1)
    // the healthy task's next commit does not carry them either
    h.broker.produce(INPUT, 2, [['c', '3']])
    await h.feed('0_2')
    await h.commit()
    expect(h.broker.groupOffset(INPUT, 0)).toBe(1)
    await h.revive()
    for (const id of ['0_0', '0_1']) await h.feed(id)
    await h.commit()
    expectExactlyOnce(h, 0, rows(['a', '1'], ['a', '2'], ['a', '3']))
    expectExactlyOnce(h, 1, rows(['b', '1'], ['b', '2']))
    expectExactlyOnce(h, 2, rows(['c', '1'], ['c', '2'], ['c', '3']))
  })

  it('an EndTxn with unknown outcome (request timeout) rolls back and re-initialises from the committed offsets', async () => {
    const h = createHarness()
    h.broker.produce(INPUT, 0, [['a', '1']])
    await h.assign('0_0')
    await h.feed('0_0')
    await h.commit()
    h.broker.produce(INPUT, 0, [['a', '2']])
    await h.feed('0_0')
    h.broker.fail('commit', requestTimeout)
    h.broker.fail('abort', requestTimeout) // the abort cannot tell either
    await h.commit()
    expect(h.eventNames()).toContain(StreamsEvents.TASK_RETRY)
    expect(h.broker.openTransactions()).toEqual(['app-0_0']) // still open at the broker
    expect(h.broker.groupOffset(INPUT, 0)).toBe(1)
    expect(h.disks.get('0_0')!.data.get('a')).toBe(1)
    await h.revive()
    // the new producer's InitProducerId aborted the open transaction; the task restarts at offset 1
    expect(h.broker.openTransactions()).toEqual([])
    expect(h.client.consumer.seeks.at(-1)).toEqual({ topic: INPUT, partition: 0, offset: '1' })
    await h.feed('0_0')
    await h.commit()
    expectExactlyOnce(h, 0, rows(['a', '1'], ['a', '2']))
  })

  it('an EndTxn answered with UNKNOWN_SERVER_ERROR (outcome unknown) rolls back and retries, it is not fatal', async () => {
    const h = createHarness()
    h.broker.produce(INPUT, 0, [['a', '1']])
    await h.assign('0_0')
    await h.feed('0_0')
    await h.commit()
    h.broker.produce(INPUT, 0, [['a', '2']])
    await h.feed('0_0')
    h.broker.fail('commit', () => protocolError('UNKNOWN'))
    await h.commit()
    expect(h.fatal).toEqual([])
    expect(h.eventNames()).toContain(StreamsEvents.TASK_RETRY)
    expect(h.broker.groupOffset(INPUT, 0)).toBe(1)
    await h.revive()
    expect(h.client.consumer.seeks.at(-1)).toEqual({ topic: INPUT, partition: 0, offset: '1' })
    await h.feed('0_0')
    await h.commit()
    expectExactlyOnce(h, 0, rows(['a', '1'], ['a', '2']))
  })

  it('a revoked task with pending output is committed on revocation', async () => {
    const h = createHarness()
    h.broker.produce(INPUT, 0, [
      ['a', '1'],
      ['b', '1'],
    ])
    await h.assign('0_0')
    await h.feed('0_0')
    await h.assign() // revoked before any interval commit
    expect(h.manager.tasks.size).toBe(0)
    expect(h.events.find((e) => e.name === StreamsEvents.TASK_CLOSED)?.payload).toMatchObject({ taskId: '0_0', clean: true })
    expectExactlyOnce(h, 0, rows(['a', '1'], ['b', '1']))
  })

  it("a new owner reads the committed offsets with require_stable: a committed transaction's offsets still pending are waited for", async () => {
    // Kafka 4's group coordinator applies a transaction's commit marker asynchronously: right after
    // EndTxn (and after InitProducerId fenced the old producer) a plain OffsetFetch still answered
    // the older offset, so a task re-created at once processed its last records again
    const h = createHarness()
    h.broker.produce(INPUT, 0, [
      ['a', '1'],
      ['a', '2'],
    ])
    await h.assign('0_0')
    await h.feed('0_0')
    h.broker.offsetMarkersDelayed = true
    await h.commit()
    await h.manager.closeLost('the member rejoined the group under a new member id')
    await h.assign('0_0')
    expect(h.manager.tasks.has('0_0')).toBe(false)
    expect(h.events.filter((e) => e.name === StreamsEvents.TASK_RETRY).map((e) => e.payload.taskId)).toEqual(['0_0'])
    h.broker.writeOffsetMarkers()
    await h.revive()
    expect(h.task('0_0').state).toBe('RUNNING')
    expect(h.client.consumer.seeks.at(-1)).toEqual({ topic: INPUT, partition: 0, offset: '2' })
    expect(await h.feed('0_0')).toBe(0)
    await h.commit()
    expectExactlyOnce(h, 0, rows(['a', '1'], ['a', '2']))
  })

  it('a revoked task whose commit fails is rolled back: its output aborted, its offsets not committed', async () => {
    const h = createHarness()
    h.broker.produce(INPUT, 0, [
      ['a', '1'],
      ['b', '1'],
    ])
    await h.assign('0_0')
    await h.feed('0_0')
    h.broker.fail('commit', () => protocolError('NOT_COORDINATOR_FOR_GROUP'))
    await h.assign()
    expect(h.events.find((e) => e.name === StreamsEvents.TASK_CLOSED)?.payload).toMatchObject({ taskId: '0_0', clean: false })
    expect(h.broker.groupOffset(INPUT, 0)).toBe(-1)
    expect(h.broker.committed(OUTPUT, 0)).toEqual([])
    expect(h.disks.get('0_0')!.data.size).toBe(0)
    expect(h.broker.openTransactions()).toEqual([])
    // whoever gets the task next starts from scratch and produces everything once
    await h.assign('0_0')
    await h.feed('0_0')
    await h.commit()
    expectExactlyOnce(h, 0, rows(['a', '1'], ['b', '1']))
  })

  it('escalates a task that keeps failing with retriable errors past taskTimeoutMs', async () => {
    const h = createHarness({ taskTimeoutMs: 30 })
    h.broker.produce(INPUT, 0, [['a', '1']])
    await h.assign('0_0')
    h.broker.fail('commit', () => protocolError('GROUP_LOAD_IN_PROGRESS'), { times: 1000 })
    const started = Date.now()
    while (h.fatal.length === 0 && Date.now() - started < 5_000) {
      if (h.manager.tasks.has('0_0')) {
        await h.feed('0_0')
        await h.commit()
      }
      await h.revive()
    }
    expect(Date.now() - started).toBeGreaterThanOrEqual(30)
    expect(h.fatal).toHaveLength(1)
    expect(h.fatal[0]).toBeInstanceOf(StreamsError)
    expect(h.fatal[0]!.message).toMatch(
      /^task 0_0 failed with retriable errors for \d+ ms, longer than taskTimeoutMs \(30 ms\); last error: /,
    )
    expect(h.events.filter((e) => e.name === StreamsEvents.TASK_RETRY).length).toBeGreaterThanOrEqual(1)
    expect(h.events.find((e) => e.name === StreamsEvents.ERROR)?.payload).toMatchObject({ taskId: '0_0' })
    expect(h.broker.groupOffset(INPUT, 0)).toBe(-1)
  })

  it("a user error that says 'fenced' and 'epoch' is fatal (uncaught exception handler), not a migration", async () => {
    const h = createHarness()
    h.broker.produce(INPUT, 0, [
      ['a', '1'],
      ['a', 'throw:producer fenced: invalid producer epoch'],
    ])
    await h.assign('0_0')
    await h.feed('0_0')
    expect(h.eventNames()).not.toContain(StreamsEvents.TASK_MIGRATED)
    expect(h.eventNames()).not.toContain(StreamsEvents.TASK_RETRY)
    expect(h.fatal).toHaveLength(1)
    expect(h.fatal[0]!.message).toContain('producer fenced: invalid producer epoch')
    // exactly-once: the failed task was closed dirty, nothing of it committed
    expect(h.manager.tasks.size).toBe(0)
    expect(h.broker.groupOffset(INPUT, 0)).toBe(-1)
    expect(h.broker.committed(OUTPUT, 0)).toEqual([])
  })
})

describe('at-least-once commit', () => {
  it('orders a commit: produce, then one offset commit, then local state', async () => {
    const h = createHarness({ exactlyOnce: false })
    h.broker.produce(INPUT, 0, [['a', '1']])
    h.broker.produce(INPUT, 1, [['b', '1']])
    await h.assign('0_0', '0_1')
    h.broker.ops.length = 0
    await h.feed('0_0')
    await h.feed('0_1')
    await h.commit()
    // each task's output and changelog records in one send, then one offset commit for both tasks
    expect(h.broker.ops).toEqual(['send', 'send', 'commitOffsets', 'commitLocal', 'commitLocal'])
    expect(h.points.slice(0, 3)).toEqual(['after-send', 'after-send-offsets', 'after-commit'])
    expect(h.broker.groupOffset(INPUT, 0)).toBe(1)
    expect(h.broker.groupOffset(INPUT, 1)).toBe(1)
  })

  it('a retriable offset commit failure keeps the offsets for the next commit: nothing lost', async () => {
    const h = createHarness({ exactlyOnce: false })
    h.broker.produce(INPUT, 0, [
      ['a', '1'],
      ['a', '2'],
    ])
    await h.assign('0_0')
    await h.feed('0_0')
    h.broker.fail('commitOffsets', () => protocolError('NOT_COORDINATOR_FOR_GROUP'))
    await h.commit()
    // deferred: the task keeps running with its output out and its offsets pending
    expect(h.task('0_0').state).toBe('RUNNING')
    expect(h.eventNames()).not.toContain(StreamsEvents.TASK_RETRY)
    expect(h.broker.committed(OUTPUT, 0)).toEqual(rows(['a', '1'], ['a', '2']))
    expect(h.broker.groupOffset(INPUT, 0)).toBe(-1)
    expect(h.disks.get('0_0')!.data.size).toBe(0)
    h.broker.produce(INPUT, 0, [['a', '3']])
    await h.feed('0_0')
    await h.commit()
    expect(h.broker.groupOffset(INPUT, 0)).toBe(3)
    expect(h.broker.committed(OUTPUT, 0)).toEqual(rows(['a', '1'], ['a', '2'], ['a', '3']))
    expect(h.disks.get('0_0')!.data.get('a')).toBe(3)
  })

  it('a failed send fails only that task: its offsets are not committed, the other task commits', async () => {
    const h = createHarness({ exactlyOnce: false })
    h.broker.produce(INPUT, 0, [['a', '1']])
    h.broker.produce(INPUT, 1, [['b', '1']])
    await h.assign('0_0', '0_1')
    await h.feed('0_0')
    await h.feed('0_1')
    h.broker.fail('send', () => protocolError('NOT_LEADER_FOR_PARTITION'))
    await h.commit()
    const retried = h.events.filter((e) => e.name === StreamsEvents.TASK_RETRY).map((e) => e.payload.taskId)
    expect(retried).toHaveLength(1)
    const failedP = retried[0] === '0_0' ? 0 : 1
    expect(h.broker.groupOffset(INPUT, failedP)).toBe(-1)
    expect(h.broker.groupOffset(INPUT, 1 - failedP)).toBe(1)
    await h.revive()
    await h.feed(`0_${failedP}`)
    await h.commit()
    expect(h.broker.groupOffset(INPUT, failedP)).toBe(1)
    expect(h.broker.committed(OUTPUT, failedP).length).toBeGreaterThanOrEqual(1)
  })
})
