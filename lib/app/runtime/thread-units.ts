/**
 * Builds the units a {@link StreamThread} delegates to, from its options and the few callbacks of
 * its loop (Kafka Streams: `StreamThread.create`): the group membership and its consumer, the
 * partition flow, the restore coordinator, the standby manager, the task initializer, the task
 * manager with the commit strategy of the processing guarantee, the lag probe, the fetch intake and
 * the rebalance handling. Each unit is constructed from interfaces; the units that refer to each
 * other (the task manager and the standby manager, the offset sums and the task manager) do so
 * through closures, so construction order does not matter to them.
 */
import { randomUUID } from 'node:crypto'
import { parseTaskId } from '../../../topology/processor/types.js'
import type { ChangelogReader } from '../../state/types.js'
import type { GroupConsumer } from '../client/types.js'
import type { StreamTask } from '../stream-task.js'
import type { StreamThreadOptions } from '../stream-thread.js'
import { StreamsMetrics, type ThreadMetrics } from '../../metrics/streams-metrics.js'
import { AtLeastOnceCommit, ExactlyOnceCommit, ExactlyOnceV2Commit, type CommitStrategy } from './commit.js'
import { FetchIntake } from './fetch-intake.js'
import { GroupMembership } from './group-membership.js'
import { LagProbe } from './lag-probe.js'
import { PartitionFlow } from './partition-flow.js'
import { Rebalances } from './rebalances.js'
import { RestoreCoordinator } from './restore.js'
import { StandbyManager } from './standby-manager.js'
import { changelogsBySubtopology } from './task-changelogs.js'
import { TaskInitializer, taskStateFactory } from './task-initializer.js'
import { TaskManager } from './task-manager.js'
import { TaskOffsetSums } from './task-offset-sums.js'
import { ThreadProducerHolder } from './thread-producer.js'

/** What the units call back into the thread's loop. */
export interface ThreadLoopCallbacks {
  /** Wakes the loop (work arrived, a task became RUNNING, a rebalance needs applying). */
  readonly wakeUp: () => void
  /** A fatal error: the loop stops and the client's handler decides. */
  readonly fail: (error: Error) => void
  readonly failed: () => boolean
  readonly stopping: () => boolean
  /** The thread rebalances (joining, restoring, a consumer restart). */
  readonly rebalancing: () => void
  /** A rebalance commit is about to run (the commit interval restarts). */
  readonly committing: () => void
}

export interface ThreadUnits {
  readonly metrics: ThreadMetrics
  readonly membership: GroupMembership
  readonly consumer: GroupConsumer
  readonly reader: ChangelogReader
  readonly flow: PartitionFlow
  readonly manager: TaskManager
  readonly standbys: StandbyManager
  readonly lags: LagProbe
  readonly offsetSums: TaskOffsetSums
  /** Exactly-once v2: the thread's transactional producer. */
  readonly threadProducer: ThreadProducerHolder | undefined
  readonly rebalances: Rebalances
  readonly intake: FetchIntake
}

export function createThreadUnits(options: StreamThreadOptions, loop: ThreadLoopCallbacks): ThreadUnits {
  const { config: c, topology, client, emitter, testHooks: hooks } = options
  const { wakeUp } = loop
  const streamsMetrics = options.metrics ?? new StreamsMetrics({ clientId: c.clientId, recordingLevel: c.metricsRecordingLevel })
  const threadId = options.threadId ?? `${c.clientId}-StreamThread-1`
  const metrics = streamsMetrics.thread(threadId)
  const lag = streamsMetrics.consumerLag()
  // the task and standby managers are declared below; the closures referring to them run only after that
  const activeTasks = (): ReadonlyMap<string, StreamTask> => manager.tasks
  const changelogs = changelogsBySubtopology(topology, c.applicationId)
  const offsetSums = new TaskOffsetSums({
    running: (id) => activeTasks().get(id)?.state === 'RUNNING',
    persistentChangelogs: (id) =>
      new Set((changelogs.get(parseTaskId(id).subtopology) ?? []).filter((l) => l.persistent).map((l) => l.topic)),
  })
  const rebalances = new Rebalances({
    groupId: c.applicationId,
    targets: {
      closeLost: (reason) => manager.closeLost(reason),
      commitAll: (reason) => manager.commitAll(reason),
      applyAssignment: (memberId, active, isLeader) => manager.applyAssignment(memberId, active, isLeader),
      assignStandbys: (ids) => standbys.assign(ids),
    },
    rebalancing: loop.rebalancing,
    wakeUp,
    committing: loop.committing,
  })
  const membership = new GroupMembership({
    config: c,
    topology,
    client,
    emitter,
    activeTasks: () => [...activeTasks().keys()],
    standbyTasks: () => standbys.ids(),
    taskOffsetSums: () => offsetSums.sums(),
    shutdownRequest: options.shutdownRequest,
    onStandbyAssignment: (ids) => rebalances.standbysAssigned(ids),
    onShutdownRequested: (reason) => options.onShutdownRequested(reason),
    onConsumerRestart: () => rebalances.lost(),
    fail: loop.fail,
    stopping: loop.stopping,
  })
  const consumer = membership.consumer
  const reader = client.changelogReader()
  const flow = new PartitionFlow(consumer, emitter, c.bufferedRecordsPerPartition)
  const restore = new RestoreCoordinator({ reader, emitter, logger: c.logger })
  const stateFactory = offsetSums.track(taskStateFactory(c, topology, options.state))
  const standbys: StandbyManager = new StandbyManager({
    config: c,
    stateFactory,
    restore,
    emitter,
    isActive: (id) => activeTasks().has(id),
    metrics: (id) => streamsMetrics.standbyTask(threadId, id),
  })
  const threadProducer = c.exactlyOnceV2
    ? new ThreadProducerHolder(client, options.transactionalId ?? `${c.applicationId}-${randomUUID()}-1`, c.logger)
    : undefined
  const initializer = new TaskInitializer({
    eosV2: threadProducer ? { producer: threadProducer } : undefined,
    consumer,
    config: c,
    topology,
    client,
    engine: options.engine,
    stateFactory,
    restore,
    flow,
    emitter,
    partitionsFor: options.partitionsFor,
    globalStores: options.globalStores,
    cacheMaxBytes: () => manager.cacheMaxBytes(),
    wakeUp,
  })
  const commit: CommitStrategy = threadProducer
    ? new ExactlyOnceV2Commit({
        producer: threadProducer,
        groupMetadata: () => rebalances.group,
        tasks: () => [...activeTasks().values()].filter((t) => t.state === 'RUNNING'),
        hooks,
      })
    : c.exactlyOnce
      ? new ExactlyOnceCommit({ groupId: c.applicationId, hooks })
      : new AtLeastOnceCommit({ consumer, logger: c.logger, hooks })
  const manager: TaskManager = new TaskManager({
    config: c,
    topology,
    initializer,
    commit,
    threadProducer,
    flow,
    standbys,
    emitter,
    wakeUp,
    fail: loop.fail,
    failed: loop.failed,
    consumerDown: () => membership.restarting,
    memberConfirmedAt: () => membership.confirmedAt,
    metrics: {
      thread: metrics,
      task: (id) => streamsMetrics.task(threadId, id),
      partitionsReleased: (ps) => {
        for (const p of ps) lag.remove(p.topic, p.partition)
      },
    },
  })
  const lags = new LagProbe({
    admin: client.admin,
    flow,
    logger: c.logger,
    maxTaskIdleMs: c.maxTaskIdleMs,
    idleAdvance: c.idleAdvanceMs >= 0,
    taskOf: (id) => activeTasks().get(id),
    resetOf: (topic) => initializer.resetOf(topic),
    wakeUp,
  })
  const intake = new FetchIntake({
    taskOf: (topic, partition) => manager.byPartition(topic, partition),
    flow,
    metrics: { thread: metrics, lag },
    wakeUp,
    clip: options.runUntilCaughtUp ? (task, batch) => options.runUntilCaughtUp!.clip(task, batch) : undefined,
  })
  return { metrics, membership, consumer, reader, flow, manager, standbys, lags, offsetSums, threadProducer, rebalances, intake }
}
