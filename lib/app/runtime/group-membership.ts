/**
 * This thread's membership of the application's consumer group (Kafka Streams: the consumer side
 * of `StreamThread` + `StreamsPartitionAssignor`'s member metadata): the group consumer with our
 * task assignor and what this member tells it at every join (previous tasks, each task's offset
 * sum, `applicationServer`, a shutdown request); on the leader, the changelog end offsets the
 * assignor computes lags with; turning a join's partitions into active tasks; the assignment's
 * userData (standby tasks, an assignment error, a relayed shutdown, the next probing rebalance) and
 * every member's host read back through DescribeGroups; the probing rebalance (KIP-441: this member
 * rejoins at `nextRebalanceMs`); when the group last confirmed us; subscribing to the source
 * topics; and a consumer crash: one the client restarts itself, or restarting a consumer the client
 * left stopped after a retriable error (backoff, bounded by `taskTimeoutMs`).
 */
import type { EventEmitter } from 'node:events'
import type { TopologyDef } from '../../../topology/engine/types.js'
import { StreamsError } from '../../../topology/errors.js'
import {
  ASSIGNOR_VERSION,
  decodeAssignmentInfo,
  decodeSubscriptionInfo,
  type AssignorSubtopology,
  type SubscriptionInfo,
} from '../assignor.js'
import type { GroupConsumer, GroupJoin, StreamsClient } from '../client/types.js'
import { backoffMs, classifyError } from '../error-policy.js'
import { emitEvent, StreamsEvents } from '../events.js'
import type { ResolvedStreamsConfig } from '../options.js'
import { changelogEndOffsetSums, changelogsBySubtopology } from './task-changelogs.js'

/** Group membership view of the last assignment (for interactive-query metadata). */
export interface GroupView {
  readonly memberId: string
  readonly members: ReadonlyArray<{ memberId: string; host?: string; active: string[]; standby: string[] }>
}

export interface GroupMembershipOptions {
  readonly config: ResolvedStreamsConfig
  readonly topology: TopologyDef
  readonly client: StreamsClient
  readonly emitter: EventEmitter
  /** Active and standby task ids held now (sticky assignment). */
  readonly activeTasks: () => string[]
  readonly standbyTasks: () => string[]
  /** Kafka Streams' `taskOffsetSums` of this member (see ./task-offset-sums.ts). */
  readonly taskOffsetSums: () => Record<string, number>
  /** Set when this member asks the whole application to shut down (SHUTDOWN_APPLICATION). */
  readonly shutdownRequest?: string
  /** The standby tasks of the current assignment are known. */
  readonly onStandbyAssignment: (ids: Set<string>) => void
  readonly onShutdownRequested: (reason: string) => void
  /** The consumer stopped and is (about to be) restarted: it left the group, so its tasks are lost. */
  readonly onConsumerRestart: () => void
  readonly fail: (error: Error) => void
  readonly stopping: () => boolean
}

export class GroupMembership {
  readonly consumer: GroupConsumer
  #memberId = ''
  #view: GroupView | undefined
  #confirmedAt = 0
  #retry: { since: number; attempts: number } | undefined
  #restart: NodeJS.Timeout | undefined
  /** The probing rebalance: when this member rejoins. */
  #followup: { at: number; timer: NodeJS.Timeout } | undefined
  /** On the leader: the probing rebalance time of the assignment it has just computed. */
  #computedFollowup: number | undefined
  /** The last probing rebalance time acted on (a join that did not change the assignment repeats it). */
  #followupDone = 0
  readonly #subByTopic = new Map<string, number>()

  constructor(private readonly o: GroupMembershipOptions) {
    const { config: c, topology } = o
    for (const s of topology.subtopologies) for (const t of s.sourceTopics) this.#subByTopic.set(t, s.id)
    const subs: AssignorSubtopology[] = topology.subtopologies
      .filter((s) => s.sourceTopics.length > 0)
      .map((s) => ({ id: s.id, sourceTopics: s.sourceTopics, stateful: s.stores.some((n) => topology.stores.get(n)?.loggingEnabled) }))
    const changelogs = changelogsBySubtopology(topology, c.applicationId)
    this.consumer = o.client.groupConsumer({
      groupId: c.applicationId,
      assignor: {
        subtopologies: () => subs,
        assignmentConfigs: () => ({
          numStandbyReplicas: c.numStandbyReplicas,
          acceptableRecoveryLag: c.acceptableRecoveryLag,
          maxWarmupReplicas: c.maxWarmupReplicas,
          probingRebalanceIntervalMs: c.probingRebalanceIntervalMs,
        }),
        changelogEndOffsets: (tasks) => changelogEndOffsetSums(o.client.admin, c.applicationId, changelogs, tasks),
        subscriptionInfo: () => this.#subscriptionInfo(),
        onAssignmentComputed: (result) => {
          this.#computedFollowup = result.nextRebalanceMs
          const warmups = [...result.warmup].filter(([, l]) => l.length > 0)
          c.logger.info('assignment computed', {
            active: Object.fromEntries(result.active),
            standby: Object.fromEntries(result.standby),
            warmup: Object.fromEntries(warmups),
            nextRebalanceMs: result.nextRebalanceMs,
          })
        },
        onEndOffsetsFailed: (error) => {
          const message = `reading the changelog end offsets for the assignment failed (${error.message}); placing tasks by offset sums alone`
          c.logger.warn(message, { error })
        },
      },
      sessionTimeoutMs: c.sessionTimeoutMs,
      heartbeatIntervalMs: c.heartbeatIntervalMs,
      rebalanceTimeoutMs: c.rebalanceTimeoutMs,
    })
  }

  get memberId(): string {
    return this.#memberId
  }

  get view(): GroupView | undefined {
    return this.#view
  }

  /** When the group last confirmed our membership (a heartbeat or a join), ms. */
  get confirmedAt(): number {
    return this.#confirmedAt
  }

  /** Whether a restart of the consumer is pending. */
  get restarting(): boolean {
    return this.#restart !== undefined
  }

  confirmed(): void {
    this.#confirmedAt = Date.now()
  }

  /** A join: the active tasks it gives us; the rest of the assignment is read in the background. */
  onJoin(join: GroupJoin): Set<string> {
    this.#memberId = join.memberId
    this.#retry = undefined
    this.#confirmedAt = Date.now()
    // a new generation: its own assignment says whether (and when) to probe again
    this.cancelFollowup()
    if (join.isLeader && this.#computedFollowup !== undefined) this.#scheduleFollowup(this.#computedFollowup)
    this.#computedFollowup = undefined
    const active = new Set<string>()
    for (const [topic, partitions] of Object.entries(join.assignment)) {
      const s = this.#subByTopic.get(topic)
      if (s === undefined) continue
      for (const p of partitions) active.add(`${s}_${p}`)
    }
    void this.#refresh(join.assignment)
    return active
  }

  cancelRestart(): void {
    clearTimeout(this.#restart)
    this.#restart = undefined
  }

  cancelFollowup(): void {
    if (this.#followup) clearTimeout(this.#followup.timer)
    this.#followup = undefined
  }

  /** Rejoins the group at `at` (epoch ms) for a probing rebalance (Kafka Streams: `nextScheduledRebalanceMs`). */
  #scheduleFollowup(at: number): void {
    if (this.#followup?.at === at || at <= this.#followupDone) return
    this.cancelFollowup()
    const timer = setTimeout(
      () => {
        this.#followup = undefined
        this.#followupDone = at
        if (this.o.stopping()) return
        this.o.config.logger.info('probing rebalance: rejoining the group so that caught-up warm-up replicas can take their tasks')
        this.consumer.enforceRebalance()
      },
      Math.max(0, at - Date.now()),
    )
    timer.unref?.()
    this.#followup = { at, timer }
  }

  /**
   * Connects the consumer and subscribes it to the topology's source topics, each with the offset
   * reset of its source (`'latest'` or, by default, earliest).
   */
  async subscribe(): Promise<void> {
    await this.consumer.connect()
    const earliest: string[] = []
    const latest: string[] = []
    for (const s of this.o.topology.subtopologies) {
      for (const n of s.nodes) {
        if (n.type !== 'source') continue
        for (const t of n.topics) (n.offsetReset === 'latest' ? latest : earliest).push(t)
      }
    }
    if (earliest.length) await this.consumer.subscribe([...new Set(earliest)], true)
    if (latest.length) await this.consumer.subscribe([...new Set(latest)], false)
  }

  /**
   * The consumer crashed. The client restarts its consumer after errors IT deems retriable; others
   * (e.g. no group coordinator found while the brokers are down) leave it stopped: a retriable one
   * by our policy restarts it here, with backoff, for up to taskTimeoutMs; anything else is fatal.
   * @param restarting whether the client is restarting the consumer itself
   */
  onCrash(error: Error, restarting: boolean): void {
    if (this.o.stopping()) return
    const logger = this.o.config.logger
    if (restarting) {
      logger.warn(`consumer stopped (${error.name}: ${error.message}); the client restarts it`, { error })
      this.o.onConsumerRestart()
    } else if (classifyError(error) === 'retriable') this.scheduleRestart(error)
    else {
      logger.error(`consumer crashed: ${error.message}`, { error })
      this.o.fail(error)
    }
  }

  /** Starts the consumer again after a retriable crash it did not recover from (backoff, bounded by taskTimeoutMs). */
  scheduleRestart(error: Error): void {
    const now = Date.now()
    const r = (this.#retry ??= { since: now, attempts: 0 })
    r.attempts++
    const waitedMs = now - r.since
    const c = this.o.config
    if (waitedMs >= c.taskTimeoutMs) {
      c.logger.error(`consumer failed with retriable errors for ${waitedMs} ms (taskTimeoutMs ${c.taskTimeoutMs}): ${error.message}`, {
        error,
      })
      this.o.fail(
        new StreamsError(`the group consumer could not recover within taskTimeoutMs (${c.taskTimeoutMs} ms): ${error.message}`, {
          cause: error,
        }),
      )
      return
    }
    const delay = backoffMs(r.attempts - 1, c.retryBackoffMs, c.retryBackoffMaxMs)
    c.logger.warn(
      `consumer stopped on a retriable error (${error.name}: ${error.message}); restarting it in ${delay} ms (retrying for ${Math.round(waitedMs / 1000)} s, taskTimeoutMs ${c.taskTimeoutMs})`,
      { error },
    )
    emitEvent(this.o.emitter, StreamsEvents.CONSUMER_RESTART, { error, attempt: r.attempts, waitedMs, backoffMs: delay })
    this.o.onConsumerRestart()
    clearTimeout(this.#restart)
    this.#restart = setTimeout(() => {
      this.#restart = undefined
      if (this.o.stopping()) return
      this.consumer.restart().catch((e: unknown) => {
        const err = e instanceof Error ? e : new Error(String(e))
        if (this.o.stopping()) return
        if (classifyError(err) === 'retriable') this.scheduleRestart(err)
        else this.o.fail(err)
      })
    }, delay)
  }

  /** Reads our assignment userData (standby tasks, errors, shutdown) and everyone's host through DescribeGroups. */
  async #refresh(expected: Record<string, number[]>): Promise<void> {
    try {
      const d = await this.consumer.describeGroup()
      if (d.state !== 'Stable') return
      const members = d.members.map((m) => {
        const info = decodeAssignmentInfo(m.assignmentUserData)
        return {
          memberId: m.memberId,
          host: decodeSubscriptionInfo(m.subscriptionUserData).host,
          active: [...(info?.active ?? [])],
          standby: [...(info?.standby ?? [])],
          partitions: m.assignment,
          info,
        }
      })
      const me = members.find((m) => m.memberId === this.#memberId)
      if (!me || !samePartitions(me.partitions ?? {}, expected)) return
      this.#view = {
        memberId: this.#memberId,
        members: members.map(({ memberId, host, active, standby }) => ({ memberId, host, active, standby })),
      }
      if (me.info?.error) {
        this.o.fail(new StreamsError(`assignment failed: ${me.info.error}`))
        return
      }
      if (me.info?.shutdown) {
        this.o.onShutdownRequested(me.info.shutdown)
        return
      }
      if (me.info?.nextRebalanceMs !== undefined) this.#scheduleFollowup(me.info.nextRebalanceMs)
      this.o.onStandbyAssignment(new Set(me.info?.standby ?? []))
    } catch (e) {
      this.o.config.logger.debug(`describeGroup failed: ${(e as Error).message}`)
    }
  }

  #subscriptionInfo(): SubscriptionInfo {
    const c = this.o.config
    return {
      version: ASSIGNOR_VERSION,
      host: c.applicationServer ? `${c.applicationServer.host}:${c.applicationServer.port}` : undefined,
      prevActive: this.o.activeTasks(),
      prevStandby: this.o.standbyTasks(),
      taskOffsetSums: this.o.taskOffsetSums(),
      shutdownRequested: this.o.shutdownRequest,
    }
  }
}

function samePartitions(a: Record<string, number[]>, b: Record<string, number[]>): boolean {
  const norm = (x: Record<string, number[]>) =>
    Object.keys(x)
      .filter((k) => x[k]!.length > 0)
      .sort()
      .map((k) => `${k}:${[...x[k]!].sort((m, n) => m - n).join(',')}`)
      .join('|')
  return norm(a) === norm(b)
}
