import { describe, expect, it } from 'vitest'
import kafkajs from 'kafkajs'
import {
  assignTasks,
  computeTasks,
  coPartitioningError,
  decodeAssignmentInfo,
  encodeSubscriptionInfo,
  partitionsOfTasks,
  type AssignorMember,
  type SubscriptionInfo,
} from '../../lib/app/assignor.js'
import { createTaskAssignor, decodeMemberAssignment } from '../../lib/app/client/kafkajs-assignor.js'

const { AssignerProtocol } = kafkajs

function member(memberId: string, info: Partial<SubscriptionInfo> = {}): AssignorMember {
  return { memberId, info: { version: 1, prevActive: [], prevStandby: [], taskOffsets: {}, ...info } }
}

function tasksOf(n: number, subs = 1): string[] {
  return computeTasks(
    Array.from({ length: subs }, (_, id) => ({ id, sourceTopics: [`t${id}`], stateful: true })),
    () => n,
  )
}

function loads(result: ReturnType<typeof assignTasks>): number[] {
  return [...result.active.values()].map((l) => l.length)
}

describe('assignTasks', () => {
  it('assigns every task exactly once and balances within one', () => {
    for (const [n, m] of [
      [4, 3],
      [8, 3],
      [1, 2],
      [12, 5],
      [3, 3],
    ] as const) {
      const tasks = tasksOf(n, 2)
      const members = Array.from({ length: m }, (_, i) => member(`m${i}`))
      const r = assignTasks(tasks, members, new Set(), 0)
      const all = [...r.active.values()].flat().sort()
      expect(all).toEqual([...tasks].sort())
      const l = loads(r)
      expect(Math.max(...l) - Math.min(...l)).toBeLessThanOrEqual(1)
    }
  })

  it('is sticky: previous owners keep their tasks when balance allows', () => {
    const tasks = tasksOf(4)
    const r = assignTasks(tasks, [member('a', { prevActive: ['0_0', '0_3'] }), member('b', { prevActive: ['0_1', '0_2'] })], new Set(), 0)
    expect(r.active.get('a')!.sort()).toEqual(['0_0', '0_3'])
    expect(r.active.get('b')!.sort()).toEqual(['0_1', '0_2'])
  })

  it('rebalances when a member joins, moving only what it must', () => {
    const tasks = tasksOf(6)
    const r = assignTasks(
      tasks,
      [member('a', { prevActive: tasks.slice(0, 3) }), member('b', { prevActive: tasks.slice(3) }), member('c')],
      new Set(),
      0,
    )
    expect(loads(r)).toEqual([2, 2, 2])
    const kept =
      r.active.get('a')!.filter((t) => tasks.slice(0, 3).includes(t)).length +
      r.active.get('b')!.filter((t) => tasks.slice(3).includes(t)).length
    expect(kept).toBe(4)
  })

  it('prefers the member holding state (e.g. the former standby) for an orphaned task', () => {
    const tasks = tasksOf(2)
    const r = assignTasks(
      tasks,
      [member('a', { prevActive: ['0_0'] }), member('b', { prevStandby: ['0_1'], taskOffsets: { '0_1': 500 } })],
      new Set(tasks),
      0,
    )
    expect(r.active.get('b')).toEqual(['0_1'])
  })

  it('places standbys on other members than the active owner', () => {
    const tasks = tasksOf(4)
    const r = assignTasks(tasks, [member('a'), member('b'), member('c')], new Set(tasks), 1)
    for (const t of tasks) {
      const activeOwner = [...r.active].find(([, l]) => l.includes(t))![0]
      const standbyOwners = [...r.standby].filter(([, l]) => l.includes(t)).map(([m]) => m)
      expect(standbyOwners).toHaveLength(1)
      expect(standbyOwners[0]).not.toBe(activeOwner)
    }
  })

  it('gives no standby when there is a single member or the task is stateless', () => {
    const tasks = tasksOf(2)
    expect([...assignTasks(tasks, [member('a')], new Set(tasks), 2).standby.values()].flat()).toEqual([])
    expect([...assignTasks(tasks, [member('a'), member('b')], new Set(), 1).standby.values()].flat()).toEqual([])
  })
})

describe('co-partitioning and partitions', () => {
  it('names the topics and counts when co-partitioned topics differ', () => {
    const msg = coPartitioningError([{ id: 0, sourceTopics: ['clicks', 'views'], stateful: false }], (t) => (t === 'clicks' ? 4 : 3))
    expect(msg).toBe("sub-topology 0: co-partitioned topics have different partition counts: 'clicks' (4), 'views' (3)")
  })
  it('maps a task to partition p of every source topic of its sub-topology', () => {
    const subs = [
      { id: 0, sourceTopics: ['a', 'b'], stateful: false },
      { id: 1, sourceTopics: ['c'], stateful: false },
    ]
    expect(partitionsOfTasks(['0_2', '1_0', '0_1'], subs)).toEqual({ a: [1, 2], b: [1, 2], c: [0] })
  })
})

describe('createTaskAssignor (kafkajs protocol)', () => {
  it('round-trips subscription and assignment userData through the kafkajs encoders', async () => {
    const subs = [{ id: 0, sourceTopics: ['in'], stateful: true }]
    const cluster = { findTopicPartitionMetadata: () => [0, 1, 2, 3].map((partitionId) => ({ partitionId })) } as never
    const assigner = createTaskAssignor({
      subtopologies: () => subs,
      numStandbyReplicas: () => 1,
      subscriptionInfo: () => ({ version: 1, prevActive: [], prevStandby: [], taskOffsets: {} }),
    })({
      cluster,
      groupId: 'g',
      logger: {} as never,
    })
    const meta = (host: string) =>
      AssignerProtocol.MemberMetadata.encode({
        version: 1,
        topics: ['in'],
        userData: encodeSubscriptionInfo({ version: 1, host, prevActive: [], prevStandby: [], taskOffsets: {} }),
      })
    const out = await assigner.assign({
      members: [
        { memberId: 'x', memberMetadata: meta('h1:1') },
        { memberId: 'y', memberMetadata: meta('h2:2') },
      ],
      topics: ['in'],
    })
    const decoded = out.map((o) => {
      const a = decodeMemberAssignment(o.memberAssignment)!
      return { partitions: a.assignment, info: decodeAssignmentInfo(a.userData) }
    })
    const partitions = decoded.flatMap((d) => d.partitions['in'] ?? []).sort()
    expect(partitions).toEqual([0, 1, 2, 3])
    expect(decoded.map((d) => d.info!.active.length)).toEqual([2, 2])
    expect(decoded.flatMap((d) => d.info!.standby).sort()).toEqual(['0_0', '0_1', '0_2', '0_3'])
  })
})
