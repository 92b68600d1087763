/**
 * What the group consumer's callbacks report about the group, applied by the processing loop at
 * the top of its next iteration (Kafka Streams: `StreamThread`'s `onPartitionsRevoked` /
 * `onPartitionsAssigned` / `onPartitionsLost`, run inside `poll`). The callbacks only record and
 * wake the loop; the loop applies, in this order:
 * 1. a consumer that crashed left the group: its tasks are closed dirty (lost) at once, so none of
 *    them processes or commits again; the assignment of its rejoin creates them afresh. The same
 *    when a join shows that the member was out of the group meanwhile (Kafka Streams'
 *    `onPartitionsLost`): it joined under a new member id (the coordinator had dropped the old one,
 *    UNKNOWN_MEMBER_ID) or skipped a generation (ILLEGAL_GENERATION, or a join whose sync failed).
 *    In the generations it missed, its tasks may have been another member's, which processed and
 *    committed them, so a task kept across the gap would go on from the group's newer offsets with
 *    local state that lacks the other member's updates;
 * 2. a rebalance started: everything is committed (the group still accepts commits of the old
 *    generation while it prepares the rebalance; the consumer has no revocation callback);
 * 3. a join: revoked tasks are closed (committing what is left, releasing state locks) BEFORE the
 *    new ones are created; from then on the new generation's group metadata is used;
 * 4. the standby tasks of the assignment.
 */
import type { ConsumerGroupMetadata, GroupJoin } from '../client/types.js'

/** The parts of the task and standby managers a rebalance acts on. */
export interface RebalanceTargets {
  closeLost(reason: string): Promise<void>
  commitAll(reason: string): Promise<void>
  applyAssignment(memberId: string, active: ReadonlySet<string>, isLeader: boolean): Promise<void>
  assignStandbys(ids: ReadonlySet<string>): Promise<void>
}

export interface RebalancesOptions {
  /** The consumer group id (`applicationId`). */
  readonly groupId: string
  readonly targets: RebalanceTargets
  /** Tells the client the thread is rebalancing. */
  readonly rebalancing: () => void
  /** Wakes the loop so it applies what was recorded. */
  readonly wakeUp: () => void
  /** The rebalance commit is about to run (the loop's commit interval restarts). */
  readonly committing: () => void
}

export class Rebalances {
  #lost = false
  #commitSoon = false
  #assignment: { memberId: string; generationId: number; active: ReadonlySet<string>; isLeader: boolean } | undefined
  /** The member id and generation of the assignment applied last. */
  #applied: { memberId: string; generationId: number } | undefined
  #standby: ReadonlySet<string> | undefined
  #group: ConsumerGroupMetadata | undefined
  /** No assignment applied since the start, the last rebalance start or the last lost membership. */
  #awaiting = true

  constructor(private readonly o: RebalancesOptions) {}

  /** Exactly-once v2: the group metadata of the assignment applied last (the offsets of a transaction carry it). */
  get group(): ConsumerGroupMetadata | undefined {
    return this.#group
  }

  /**
   * A join's assignment is waiting to be applied, or none was applied since the thread started, a
   * rebalance started or the membership was lost: the thread is not RUNNING meanwhile, even with
   * every task it still has running (Kafka Streams' thread reaches RUNNING only after an
   * assignment), so a member that has not joined yet never claims readiness.
   */
  get pending(): boolean {
    return this.#awaiting || this.#assignment !== undefined
  }

  /**
   * The consumer stopped and is restarted (by the client or by us): it left the group, and what it
   * had paused or sought is gone with it.
   */
  lost(): void {
    this.#lost = true
    this.#awaiting = true
    this.#record()
  }

  /** A rebalance started: commit everything while the old generation is still accepted. */
  started(): void {
    this.#commitSoon = true
    this.#awaiting = true
    this.#record()
  }

  /** A join completed with these active tasks. */
  joined(join: GroupJoin, active: ReadonlySet<string>): void {
    this.#assignment = { memberId: join.memberId, generationId: join.generationId ?? -1, active, isLeader: join.isLeader }
    this.#record()
  }

  /** The standby tasks of the current assignment are known. */
  standbysAssigned(ids: ReadonlySet<string>): void {
    this.#standby = ids
    this.o.wakeUp()
  }

  /** Applies what was recorded since the last call (see the module comment for the order). */
  async apply(): Promise<void> {
    const t = this.o.targets
    if (this.#lost) {
      this.#lost = false
      await t.closeLost('the group consumer stopped and left the group')
    }
    const missed = this.#assignment && this.#missedGenerations(this.#assignment)
    if (missed) {
      // nothing of the tasks is committed first: the group refuses the old membership's commits
      this.#commitSoon = false
      await t.closeLost(missed)
    }
    if (this.#commitSoon) {
      this.#commitSoon = false
      this.o.committing()
      await t.commitAll('rebalance')
    }
    const a = this.#assignment
    if (a) {
      this.#assignment = undefined
      // before the await: a rebalance starting meanwhile sets it again
      this.#awaiting = false
      await t.applyAssignment(a.memberId, a.active, a.isLeader)
      this.#applied = { memberId: a.memberId, generationId: a.generationId }
      // revoked tasks committed above with the previous generation; from now on, this one
      this.#group = { groupId: this.o.groupId, generationId: a.generationId, memberId: a.memberId, groupInstanceId: null }
    }
    const standby = this.#standby
    if (standby) {
      this.#standby = undefined
      await t.assignStandbys(standby)
    }
  }

  /** Why this join's member was out of the group since the assignment applied last, if it was. */
  #missedGenerations(a: { memberId: string; generationId: number }): string | undefined {
    const prev = this.#applied
    if (!prev) return undefined
    if (a.memberId !== prev.memberId)
      return `the member rejoined the group under a new member id (was ${prev.memberId}, generation ${prev.generationId})`
    if (a.generationId >= 0 && prev.generationId >= 0 && a.generationId > prev.generationId + 1)
      return `the member joined generation ${a.generationId}; the last it was assigned tasks in is ${prev.generationId}`
    return undefined
  }

  #record(): void {
    this.o.rebalancing()
    this.o.wakeUp()
  }
}
