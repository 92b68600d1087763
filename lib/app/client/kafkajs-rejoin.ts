/**
 * `enforceRebalance` for kafkajs 2.2.4 (pinned), which has none: the Java consumer's
 * `enforceRebalance()` makes the member rejoin the group, which Kafka Streams uses for probing
 * rebalances (KIP-441). A kafkajs consumer rejoins when a heartbeat answers REBALANCE_IN_PROGRESS
 * (its runner then sends JoinGroup + SyncGroup with the same member id, as for any rebalance). So
 * a requested rejoin is delivered through the heartbeat of kstreams' own brokers (wrapped per
 * instance in ./kafkajs-internals.ts, never `Broker.prototype`): the member's next heartbeat is not
 * sent but fails with the real kafkajs REBALANCE_IN_PROGRESS protocol error.
 *
 * The rejoin starts a rebalance of the whole group when the member is the group's leader or its
 * subscription metadata changed (both hold for a probing rebalance: the leader asks, and the
 * warm-ups' offset sums have moved); a follower with unchanged metadata just gets its assignment
 * again.
 */
/** `<groupId>\0<memberId>` of the members whose next heartbeat makes them rejoin. */
const requested = new Set<string>()

const key = (groupId: string, memberId: string): string => `${groupId}\0${memberId}`

/** The member rejoins at its next heartbeat. */
export function requestRejoin(groupId: string, memberId: string): void {
  requested.add(key(groupId, memberId))
}

/** Drops a pending request (the member has just joined: the request is satisfied). */
export function clearRejoin(groupId: string, memberId: string): void {
  requested.delete(key(groupId, memberId))
}

/** Whether a rejoin is pending for the member. */
export function rejoinRequested(groupId: string, memberId: string): boolean {
  return requested.has(key(groupId, memberId))
}

/** Whether a rejoin is pending for the member; a pending request is consumed (its heartbeat fails instead of being sent). */
export function takeRejoin(groupId: string, memberId: string): boolean {
  return requested.delete(key(groupId, memberId))
}
