/**
 * The probing rebalance (KIP-441) on the member side: the leader rejoins at the time of the
 * assignment it computed, every member at the `nextRebalanceMs` of its assignment info; a join
 * that does not change the assignment does not repeat it. And the heartbeat of kstreams' own
 * kafkajs brokers that makes a member rejoin (kafkajs has no `enforceRebalance`).
 */
import { EventEmitter } from 'node:events'
import { createRequire } from 'node:module'
import kafkajs from 'kafkajs'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { encodeAssignmentInfo } from '../../lib/app/assignor.js'
import { readCommittedCluster } from '../../lib/app/client/kafkajs-internals.js'
import { clearRejoin, rejoinRequested, requestRejoin } from '../../lib/app/client/kafkajs-rejoin.js'
import { resolveStreamsConfig } from '../../lib/app/options.js'
import { GroupMembership } from '../../lib/app/runtime/group-membership.js'
import { FakeBroker, FakeClient } from './helpers/fake-kafka.js'
import { TOPOLOGY } from './helpers/runtime-harness.js'

const require = createRequire(import.meta.url)

afterEach(() => {
  vi.useRealTimers()
})

function setup() {
  const client = new FakeClient(new FakeBroker())
  const config = resolveStreamsConfig({
    applicationId: 'app',
    bootstrapServers: 'fake:9092',
    probingRebalanceIntervalMs: 5_000,
    logger: { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined },
  })
  const membership = new GroupMembership({
    config,
    topology: TOPOLOGY,
    client,
    emitter: new EventEmitter(),
    activeTasks: () => [],
    standbyTasks: () => [],
    taskOffsetSums: () => ({ '0_0': 7 }),
    onStandbyAssignment: () => undefined,
    onShutdownRequested: () => undefined,
    onConsumerRestart: () => undefined,
    fail: (e) => {
      throw e
    },
    stopping: () => false,
  })
  return { client, membership, hooks: client.groupOptions!.assignor }
}

/** The group as DescribeGroups shows it: this member with assignment info `info`. */
function describeAs(client: FakeClient, memberId: string, nextRebalanceMs: number | undefined) {
  client.consumer.description = {
    state: 'Stable',
    members: [
      {
        memberId,
        assignment: {},
        assignmentUserData: encodeAssignmentInfo({
          version: 2,
          active: [],
          standby: ['0_0'],
          ...(nextRebalanceMs ? { nextRebalanceMs } : {}),
        }),
        subscriptionUserData: undefined,
      },
    ],
  }
}

describe('probing rebalance scheduling', () => {
  it('subscribes with the offset sums and the assignment configs', () => {
    const { hooks } = setup()
    expect(hooks.subscriptionInfo().taskOffsetSums).toEqual({ '0_0': 7 })
    expect(hooks.assignmentConfigs()).toEqual({
      numStandbyReplicas: 0,
      acceptableRecoveryLag: 10_000,
      maxWarmupReplicas: 2,
      probingRebalanceIntervalMs: 5_000,
    })
  })

  it('the leader rejoins at the time of the assignment it computed, once; a new generation without probing cancels it', async () => {
    vi.useFakeTimers({ now: 1_000_000 })
    const { client, membership, hooks } = setup()
    const computed = { active: new Map(), standby: new Map(), warmup: new Map(), probingRebalanceNeeded: true }
    hooks.onAssignmentComputed!({ ...computed, nextRebalanceMs: 1_005_000 })
    membership.onJoin({ memberId: 'm1', isLeader: true, assignment: {} })
    await vi.advanceTimersByTimeAsync(4_999)
    expect(client.consumer.rebalancesEnforced).toBe(0)
    await vi.advanceTimersByTimeAsync(1)
    expect(client.consumer.rebalancesEnforced).toBe(1)

    // the probing rebalance computes another one; then a generation that needs none
    hooks.onAssignmentComputed!({ ...computed, nextRebalanceMs: 1_010_000 })
    membership.onJoin({ memberId: 'm1', isLeader: true, assignment: {} })
    hooks.onAssignmentComputed!({ ...computed, probingRebalanceNeeded: false, nextRebalanceMs: undefined })
    membership.onJoin({ memberId: 'm1', isLeader: true, assignment: {} })
    await vi.advanceTimersByTimeAsync(60_000)
    expect(client.consumer.rebalancesEnforced).toBe(1)
  })

  it("a member rejoins at its assignment info's nextRebalanceMs, and not again for a join that repeats it", async () => {
    vi.useFakeTimers({ now: 2_000_000 })
    const { client, membership } = setup()
    describeAs(client, 'm2', 2_003_000)
    membership.onJoin({ memberId: 'm2', isLeader: false, assignment: {} })
    await vi.advanceTimersByTimeAsync(2_999)
    expect(client.consumer.rebalancesEnforced).toBe(0)
    await vi.advanceTimersByTimeAsync(1)
    expect(client.consumer.rebalancesEnforced).toBe(1)
    // the rejoin did not start a rebalance: the same assignment comes back
    membership.onJoin({ memberId: 'm2', isLeader: false, assignment: {} })
    await vi.advanceTimersByTimeAsync(10_000)
    expect(client.consumer.rebalancesEnforced).toBe(1)
    // a later assignment asks again
    describeAs(client, 'm2', 2_020_000)
    membership.onJoin({ memberId: 'm2', isLeader: false, assignment: {} })
    await vi.advanceTimersByTimeAsync(10_000)
    expect(client.consumer.rebalancesEnforced).toBe(2)
  })
})

describe('kafkajs rejoin (enforceRebalance)', () => {
  it("fails the member's next heartbeat with kafkajs' REBALANCE_IN_PROGRESS, once, and only that member's", async () => {
    const Broker = require('kafkajs/src/broker/index.js') as { prototype: { heartbeat(r: object): Promise<unknown> } }
    // a broker of a cluster kstreams made (not connected), and a plain kafkajs broker
    const cluster = readCommittedCluster(
      new kafkajs.Kafka({ brokers: ['127.0.0.1:1'], logLevel: kafkajs.logLevel.NOTHING }),
    ) as unknown as {
      brokerPool: { createBroker(o: object): { heartbeat(r: object): Promise<unknown> } }
    }
    const fakeBroker = cluster.brokerPool.createBroker({
      connectionPool: { connectionTimeout: 1000, host: '127.0.0.1', port: 1 },
      logger: { namespace: () => ({}) },
      nodeId: 0,
    })
    const plainBroker = Object.create(Broker.prototype) as { heartbeat(r: object): Promise<unknown> }
    requestRejoin('g', 'm1')
    expect(rejoinRequested('g', 'm1')).toBe(true)
    // a user's kafkajs client is not affected (kafkajs' classes are not patched), and leaves the request pending
    const user = await plainBroker.heartbeat({ groupId: 'g', memberId: 'm1', groupGenerationId: 1 }).catch((e: unknown) => e)
    expect((user as { type?: string }).type).not.toBe('REBALANCE_IN_PROGRESS')
    expect(rejoinRequested('g', 'm1')).toBe(true)
    // another member's heartbeat goes to the real request (which fails here: no connection)
    const other = await fakeBroker.heartbeat({ groupId: 'g', memberId: 'm2', groupGenerationId: 1 }).catch((e: unknown) => e)
    expect((other as { type?: string }).type).not.toBe('REBALANCE_IN_PROGRESS')
    const mine = await fakeBroker.heartbeat({ groupId: 'g', memberId: 'm1', groupGenerationId: 1 }).catch((e: unknown) => e)
    expect(mine).toBeInstanceOf(kafkajs.KafkaJSProtocolError)
    expect((mine as { type: string }).type).toBe('REBALANCE_IN_PROGRESS')
    expect(rejoinRequested('g', 'm1')).toBe(false)
    const again = await fakeBroker.heartbeat({ groupId: 'g', memberId: 'm1', groupGenerationId: 1 }).catch((e: unknown) => e)
    expect((again as { type?: string }).type).not.toBe('REBALANCE_IN_PROGRESS')
    // a join satisfies a pending request
    requestRejoin('g', 'm1')
    clearRejoin('g', 'm1')
    expect(rejoinRequested('g', 'm1')).toBe(false)
  })
})
