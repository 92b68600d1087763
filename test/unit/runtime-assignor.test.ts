import { describe, expect, it } from 'vitest'
import kafkajs from 'kafkajs'
import {
  coPartitioningError,
  decodeAssignmentInfo,
  decodeSubscriptionInfo,
  encodeSubscriptionInfo,
  partitionsOfTasks,
  type AssignmentResult,
  type AssignorHooks,
  type SubscriptionInfo,
} from '../../lib/app/assignor.js'
import { createTaskAssignor, decodeMemberAssignment } from '../../lib/app/client/kafkajs-assignor.js'

const { AssignerProtocol } = kafkajs

/** A member's assignment as the consumer protocol carries it: partitions and our AssignmentInfo. */
function assignmentOf(buf: Buffer): { partitions: Record<string, number[]>; info: ReturnType<typeof decodeAssignmentInfo> } {
  const a = decodeMemberAssignment(buf)!
  return { partitions: a.assignment, info: decodeAssignmentInfo(a.userData) }
}

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

describe('subscription info', () => {
  it('round-trips the offset sums and drops malformed entries', () => {
    const info: SubscriptionInfo = {
      version: 2,
      prevActive: ['0_0'],
      prevStandby: ['0_1'],
      taskOffsetSums: { '0_0': -2, '0_1': 1234 },
    }
    expect(decodeSubscriptionInfo(encodeSubscriptionInfo(info))).toEqual({ ...info, host: undefined, shutdownRequested: undefined })
    const bad = Buffer.from(
      JSON.stringify({ version: 2, prevActive: [], prevStandby: [], taskOffsetSums: { a: -7, b: 'x', c: 1.5, d: 3 } }),
    )
    expect(decodeSubscriptionInfo(bad).taskOffsetSums).toEqual({ d: 3 })
  })
})

describe('createTaskAssignor (kafkajs protocol)', () => {
  const subs = [{ id: 0, sourceTopics: ['in'], stateful: true }]
  const cluster = { findTopicPartitionMetadata: () => [0, 1, 2, 3].map((partitionId) => ({ partitionId })) } as never
  const meta = (host: string, info: Partial<SubscriptionInfo> = {}) =>
    AssignerProtocol.MemberMetadata.encode({
      version: 2,
      topics: ['in'],
      userData: encodeSubscriptionInfo({ version: 2, host, prevActive: [], prevStandby: [], taskOffsetSums: {}, ...info }),
    })
  function assigner(hooks: Partial<AssignorHooks>) {
    return createTaskAssignor({
      subtopologies: () => subs,
      assignmentConfigs: () => ({
        numStandbyReplicas: 1,
        acceptableRecoveryLag: 100,
        maxWarmupReplicas: 2,
        probingRebalanceIntervalMs: 5_000,
      }),
      changelogEndOffsets: async (tasks) => new Map(tasks.map((t) => [t, 0])),
      subscriptionInfo: () => ({ version: 2, prevActive: [], prevStandby: [], taskOffsetSums: {} }),
      ...hooks,
    })({ cluster, groupId: 'g', logger: {} as never })
  }

  it('round-trips subscription and assignment userData through the kafkajs encoders', async () => {
    const out = await assigner({}).assign({
      members: [
        { memberId: 'x', memberMetadata: meta('h1:1') },
        { memberId: 'y', memberMetadata: meta('h2:2') },
      ],
      topics: ['in'],
    })
    const decoded = out.map((o) => assignmentOf(o.memberAssignment))
    const partitions = decoded.flatMap((d) => d.partitions['in'] ?? []).sort()
    expect(partitions).toEqual([0, 1, 2, 3])
    expect(decoded.map((d) => d.info!.active.length)).toEqual([2, 2])
    expect(decoded.flatMap((d) => d.info!.standby).sort()).toEqual(['0_0', '0_1', '0_2', '0_3'])
    expect(decoded.map((d) => d.info!.nextRebalanceMs)).toEqual([undefined, undefined])
  })

  it('reads the end offsets of the stateful tasks, warms up instead of moving, and asks every member for a probing rebalance', async () => {
    const tasks = ['0_0', '0_1', '0_2', '0_3']
    let asked: ReadonlyArray<string> = []
    let computed: AssignmentResult | undefined
    const before = Date.now()
    const out = await assigner({
      assignmentConfigs: () => ({
        numStandbyReplicas: 0,
        acceptableRecoveryLag: 100,
        maxWarmupReplicas: 1,
        probingRebalanceIntervalMs: 5_000,
      }),
      changelogEndOffsets: async (ts) => {
        asked = ts
        return new Map(ts.map((t) => [t, 50_000]))
      },
      onAssignmentComputed: (r) => (computed = r),
    }).assign({
      members: [
        {
          memberId: 'x',
          memberMetadata: meta('h1:1', { prevActive: tasks, taskOffsetSums: Object.fromEntries(tasks.map((t) => [t, -2])) }),
        },
        { memberId: 'y', memberMetadata: meta('h2:2') },
      ],
      topics: ['in'],
    })
    expect([...asked].sort()).toEqual(tasks)
    const [x, y] = out.map((o) => assignmentOf(o.memberAssignment))
    expect(x!.partitions['in']).toEqual([0, 1, 2, 3])
    expect(y!.info!.active).toEqual([])
    expect(y!.info!.standby).toHaveLength(1)
    expect(computed!.warmup.get('y')).toEqual(y!.info!.standby)
    for (const d of [x!, y!]) {
      expect(d.info!.nextRebalanceMs).toBeGreaterThanOrEqual(before + 5_000)
      expect(d.info!.nextRebalanceMs).toBe(computed!.nextRebalanceMs)
    }
  })

  it('falls back to the offset sums and probes again when the end offsets cannot be read', async () => {
    let failed: Error | undefined
    const out = await assigner({
      changelogEndOffsets: async () => {
        throw new Error('no leader')
      },
      onEndOffsetsFailed: (e) => (failed = e),
    }).assign({
      members: [
        { memberId: 'x', memberMetadata: meta('h1:1', { prevActive: ['0_0', '0_1'], taskOffsetSums: { '0_0': -2, '0_1': -2 } }) },
        { memberId: 'y', memberMetadata: meta('h2:2', { prevActive: ['0_2', '0_3'], taskOffsetSums: { '0_2': -2, '0_3': -2 } }) },
      ],
      topics: ['in'],
    })
    expect(failed?.message).toBe('no leader')
    const [x, y] = out.map((o) => assignmentOf(o.memberAssignment))
    expect(x!.info!.active).toEqual(['0_0', '0_1'])
    expect(y!.info!.active).toEqual(['0_2', '0_3'])
    expect(x!.info!.nextRebalanceMs).toBeGreaterThan(Date.now())
  })
})
