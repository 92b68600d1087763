/**
 * Exactly-once v2 (KIP-447) over the in-memory broker: one thread producer (`app-p1-1`) and one
 * transaction per commit for all the thread's tasks; offsets carry the group generation and the
 * coordinator refuses a zombie's. Each path ends with what a read_committed reader sees agreeing
 * with the committed offsets and the local state.
 */
import { describe, expect, it } from 'vitest'
import { StreamsEvents } from '../../lib/app/events.js'
import { protocolError } from './helpers/fake-kafka.js'
import { CHANGELOG, INPUT, OUTPUT, createHarness } from './helpers/runtime-harness.js'

type Harness = ReturnType<typeof createHarness>

const TXN = 'app-p1-1'
const rows = (...kv: Array<[string, string]>) => kv.map(([k, v]) => `${k}=${v}`)

/** Exactly-once invariants of partition `p` once everything consumed is committed. */
function expectExactlyOnce(h: Harness, p: number, input: string[]): void {
  expect(h.broker.groupOffset(INPUT, p)).toBe(input.length)
  expect(h.broker.committed(OUTPUT, p)).toEqual(input)
  const counts = new Map<string, number>()
  for (const r of input) {
    const k = r.split('=')[0]!
    counts.set(k, (counts.get(k) ?? 0) + 1)
  }
  const last = new Map<string, number>()
  for (const r of h.broker.committed(CHANGELOG, p)) {
    const [k, v] = r.split('=')
    last.set(k!, Number(v))
  }
  expect(last).toEqual(counts)
  expect(h.disks.get(`0_${p}`)!.data).toEqual(counts)
  expect(h.broker.openTransactions()).toEqual([])
}

/** Two tasks with one committed record each, then one more record each, processed, not committed. */
async function twoTasksWithPendingWork(): Promise<Harness> {
  const h = createHarness({ v2: true })
  h.broker.produce(INPUT, 0, [['a', '1']])
  h.broker.produce(INPUT, 1, [['b', '1']])
  await h.assign('0_0', '0_1')
  await h.feed('0_0')
  await h.feed('0_1')
  await h.commit()
  h.broker.produce(INPUT, 0, [['a', '2']])
  h.broker.produce(INPUT, 1, [['b', '2']])
  await h.feed('0_0')
  await h.feed('0_1')
  return h
}

describe('exactly-once v2 commit', () => {
  it('commits all tasks of the thread in ONE transaction of ONE producer: sends, offsets, commit, then local state', async () => {
    const h = createHarness({ v2: true })
    h.broker.produce(INPUT, 0, [
      ['a', '1'],
      ['b', '2'],
    ])
    h.broker.produce(INPUT, 1, [['c', '3']])
    await h.assign('0_0', '0_1')
    h.broker.ops.length = 0
    await h.feed('0_0')
    await h.feed('0_1')
    await h.commit()
    // the producer is initialised once, on first use; both tasks' output goes into its transaction
    expect(h.broker.ops).toEqual([
      `init ${TXN}`,
      `send ${TXN}`,
      `send ${TXN}`,
      `sendOffsets ${TXN}`,
      `commit ${TXN}`,
      'commitLocal',
      'commitLocal',
    ])
    expect(h.points).toEqual(['after-send', 'after-send-offsets', 'after-commit'])
    // no per-task producers
    expect(h.client.producers.map((p) => (p as { txnId?: string }).txnId)).toEqual([TXN])
    expectExactlyOnce(h, 0, rows(['a', '1'], ['b', '2']))
    expectExactlyOnce(h, 1, rows(['c', '3']))
  })

  it('a zombie whose generation is gone is fenced by the group coordinator: nothing of its transaction is visible', async () => {
    const h = await twoTasksWithPendingWork()
    // the group moved on without us (session timeout): a new generation, we are no longer a member
    h.broker.rebalance(['member-2'])
    await h.commit()
    expect(h.broker.ops).toContain('refused member-1@1')
    const migrated = h.events.filter((e) => e.name === StreamsEvents.TASK_MIGRATED).map((e) => e.payload.taskId)
    expect(migrated.sort()).toEqual(['0_0', '0_1'])
    expect(h.fatal).toEqual([])
    expect(h.manager.tasks.size).toBe(0)
    // the second records' output and offsets were aborted, the first commit stands
    expect(h.broker.committed(OUTPUT, 0)).toEqual(rows(['a', '1']))
    expect(h.broker.committed(OUTPUT, 1)).toEqual(rows(['b', '1']))
    expect(h.broker.groupOffset(INPUT, 0)).toBe(1)
    expect(h.broker.groupOffset(INPUT, 1)).toBe(1)
    expect(h.broker.openTransactions()).toEqual([])
    expect(h.disks.get('0_0')!.data.get('a')).toBe(1)
    // rejoined in the next generation, the tasks start again from the committed offsets
    h.broker.rebalance(['member-1'])
    await h.assign('0_0', '0_1')
    await h.feed('0_0')
    await h.feed('0_1')
    await h.commit()
    expectExactlyOnce(h, 0, rows(['a', '1'], ['a', '2']))
    expectExactlyOnce(h, 1, rows(['b', '1'], ['b', '2']))
  })

  it('a failed send aborts the thread transaction and rewinds EVERY task in it', async () => {
    const h = await twoTasksWithPendingWork()
    h.broker.fail('send', () => protocolError('NOT_LEADER_FOR_PARTITION'))
    await h.commit()
    const retried = h.events.filter((e) => e.name === StreamsEvents.TASK_RETRY).map((e) => e.payload.taskId)
    expect(retried.sort()).toEqual(['0_0', '0_1'])
    expect(h.manager.tasks.size).toBe(0)
    // neither task's second record is committed anywhere: output, offsets, local state
    expect(h.broker.committed(OUTPUT, 0)).toEqual(rows(['a', '1']))
    expect(h.broker.committed(OUTPUT, 1)).toEqual(rows(['b', '1']))
    expect(h.broker.groupOffset(INPUT, 0)).toBe(1)
    expect(h.broker.groupOffset(INPUT, 1)).toBe(1)
    expect(h.disks.get('0_1')!.data.get('b')).toBe(1)
    expect(h.broker.openTransactions()).toEqual([])
    await h.revive()
    await h.feed('0_0')
    await h.feed('0_1')
    await h.commit()
    expectExactlyOnce(h, 0, rows(['a', '1'], ['a', '2']))
    expectExactlyOnce(h, 1, rows(['b', '1'], ['b', '2']))
  })

  it("a task closed dirty while its output is in the open transaction aborts it and rewinds the other tasks' work", async () => {
    const h = await twoTasksWithPendingWork()
    // the output is sent (in the open transaction), not committed
    await h.task('0_0').collector!.flush()
    await h.task('0_1').collector!.flush()
    expect(h.threadProducer!.inTransaction).toBe(true)
    await h.manager.onTaskError(h.task('0_0'), protocolError('NOT_LEADER_FOR_PARTITION'))
    expect(h.broker.openTransactions()).toEqual([])
    // 0_1 was rewound (its output was aborted with the transaction) and is re-created at once
    expect(h.manager.tasks.has('0_1')).toBe(false)
    await h.revive()
    for (const id of ['0_0', '0_1']) await h.feed(id)
    await h.commit()
    expectExactlyOnce(h, 0, rows(['a', '1'], ['a', '2']))
    expectExactlyOnce(h, 1, rows(['b', '1'], ['b', '2']))
  })

  it('a task migrated while its output is in the open transaction (epoch bumped: the coordinator expired it) migrates every task in it; none is re-created before an assignment', async () => {
    const h = await twoTasksWithPendingWork()
    await h.task('0_0').collector!.flush()
    await h.task('0_1').collector!.flush()
    expect(h.threadProducer!.inTransaction).toBe(true)
    // a process frozen past the transaction timeout: its next send finds its epoch bumped
    await h.manager.onTaskError(h.task('0_0'), protocolError('INVALID_PRODUCER_EPOCH'))
    expect(h.broker.openTransactions()).toEqual([])
    const migrated = h.events.filter((e) => e.name === StreamsEvents.TASK_MIGRATED).map((e) => e.payload.taskId)
    expect(migrated.sort()).toEqual(['0_0', '0_1'])
    // the group may have given either task to another member meanwhile: neither comes back on its own
    await h.revive()
    expect(h.manager.tasks.size).toBe(0)
    expect(h.events.filter((e) => e.name === StreamsEvents.TASK_CREATED).length).toBe(2)
    // the next assignment brings them back from their last commit
    await h.assign('0_0', '0_1')
    for (const id of ['0_0', '0_1']) await h.feed(id)
    await h.commit()
    expectExactlyOnce(h, 0, rows(['a', '1'], ['a', '2']))
    expectExactlyOnce(h, 1, rows(['b', '1'], ['b', '2']))
  })

  it("revocation commits the revoked task's pending output, with the other tasks' (one transaction), before it is closed", async () => {
    const h = await twoTasksWithPendingWork()
    h.broker.ops.length = 0
    await h.assign('0_1') // 0_0 revoked
    expect(h.events.find((e) => e.name === StreamsEvents.TASK_CLOSED)?.payload).toMatchObject({ taskId: '0_0', clean: true })
    expect(h.broker.ops.slice(0, 3)).toEqual([`send ${TXN}`, `send ${TXN}`, `sendOffsets ${TXN}`])
    expect(h.broker.ops).toContain(`commit ${TXN}`)
    expectExactlyOnce(h, 0, rows(['a', '1'], ['a', '2']))
    expectExactlyOnce(h, 1, rows(['b', '1'], ['b', '2']))
    expect(h.task('0_1').needsCommit()).toBe(false)
  })

  it('a fenced thread producer: every task closed dirty as migrated, a NEW producer (epoch bumped) for the next transaction', async () => {
    const h = await twoTasksWithPendingWork()
    h.broker.fence(TXN) // another process initialised our transactional id
    await h.commit()
    const migrated = h.events.filter((e) => e.name === StreamsEvents.TASK_MIGRATED).map((e) => e.payload.taskId)
    expect(migrated.sort()).toEqual(['0_0', '0_1'])
    expect(h.broker.groupOffset(INPUT, 0)).toBe(1)
    expect(h.broker.committed(OUTPUT, 1)).toEqual(rows(['b', '1']))
    expect(h.threadProducer!.current).toBeUndefined()
    h.broker.ops.length = 0
    await h.assign('0_0', '0_1')
    await h.feed('0_0')
    await h.feed('0_1')
    await h.commit()
    expect(h.broker.ops.filter((o) => o.startsWith('init'))).toEqual([`init ${TXN}`])
    expect(h.client.producers.length).toBe(2)
    expectExactlyOnce(h, 0, rows(['a', '1'], ['a', '2']))
    expectExactlyOnce(h, 1, rows(['b', '1'], ['b', '2']))
  })

  it('a new owner reads committed offsets only once no transaction holds offsets of its partitions (require_stable)', async () => {
    const h = createHarness({ v2: true })
    h.broker.produce(INPUT, 0, [['a', '1']])
    // a previous owner's transaction with offsets of partition 0 is still open
    const prev = await h.client.threadProducer('app-other-1')
    await prev.init()
    await prev.sendOffsetsWithGroupMetadata({ groupId: 'app', generationId: 1, memberId: 'member-1', groupInstanceId: null }, [
      { topic: INPUT, partition: 0, offset: '1' },
    ])
    await h.assign('0_0')
    expect(h.manager.tasks.has('0_0')).toBe(false)
    expect(h.events.filter((e) => e.name === StreamsEvents.TASK_RETRY).map((e) => e.payload.taskId)).toEqual(['0_0'])
    // its commit ends the wait: the task starts after the record the previous owner processed
    await prev.commit()
    await h.revive()
    expect(h.task('0_0').state).toBe('RUNNING')
    expect(h.client.consumer.seeks.at(-1)).toEqual({ topic: INPUT, partition: 0, offset: '1' })
  })

  it('a task closed dirty before its first commit and re-created by the next assignment starts again from the reset position', async () => {
    const h = createHarness({ v2: true })
    h.broker.produce(INPUT, 0, [
      ['a', '1'],
      ['a', '2'],
    ])
    await h.assign('0_0')
    await h.feed('0_0') // fetched and processed: the consumer's position is past both records
    // the group moved on: the commit is refused, the task closed dirty (nothing ever committed)
    h.broker.rebalance(['member-1'])
    await h.commit()
    expect(h.manager.tasks.has('0_0')).toBe(false)
    // the new generation gives the task back: it must not continue from the consumer's position
    await h.assign('0_0')
    expect(h.client.consumer.seeks.at(-1)).toEqual({ topic: INPUT, partition: 0, offset: '-2' })
    await h.feed('0_0')
    await h.commit()
    expectExactlyOnce(h, 0, rows(['a', '1'], ['a', '2']))
  })
})
