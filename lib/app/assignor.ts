/**
 * Task assignment (Kafka Streams: `StreamsPartitionAssignor`), the client-independent part:
 * lib/app/client/kafkajs-assignor.ts plugs it into kafkajs as a partition assigner; the algorithm
 * itself is ./task-assignor.ts (`HighAvailabilityTaskAssignor`, KIP-441).
 *
 * The group leader alone runs `assign()`. It turns the group into TASKS: task
 * `<subtopology>_<p>` = partition p of every source topic of that sub-topology (co-partitioned
 * topics land on the same instance), reads the end offsets of the stateful tasks' changelogs, and
 * places active, standby and warm-up tasks by each member's lag (see ./task-assignor.ts).
 *
 * Members tell the leader what they own through the subscription `userData` ({@link SubscriptionInfo}:
 * previous active/standby tasks, each task's offset sum, host:port). The leader returns each
 * member's partitions plus {@link AssignmentInfo} in the assignment `userData` (active and standby
 * tasks, when to rebalance again, an error or a shutdown request for the whole application).
 */
import { parseTaskId } from '../../topology/processor/types.js'
import { LATEST_OFFSET, type AssignmentConfigs, type TaskAssignment } from './task-assignor.js'

/** Protocol name registered with the group coordinator. */
export const ASSIGNOR_NAME = 'kstreams'
/** Version of the userData encoding (2: offset sums, `nextRebalanceMs`). */
export const ASSIGNOR_VERSION = 2

/** What a member tells the leader when it joins (encoded as JSON in the subscription userData). */
export interface SubscriptionInfo {
  readonly version: number
  /** `host:port` for interactive queries (`applicationServer`). */
  readonly host?: string
  /** Tasks this member ran as active in the previous generation. */
  readonly prevActive: ReadonlyArray<string>
  /** Tasks this member ran as standby in the previous generation. */
  readonly prevStandby: ReadonlyArray<string>
  /**
   * Kafka Streams' `taskOffsetSums`: task → sum over its changelog partitions of the offsets its
   * local state reflects, for active and standby tasks and for task directories left on disk;
   * {@link LATEST_OFFSET} (-2) for an active task this member is running. Tasks without local
   * state are absent.
   */
  readonly taskOffsetSums: Readonly<Record<string, number>>
  /** Set when this member asks the whole application to shut down (uncaught handler `SHUTDOWN_APPLICATION`). */
  readonly shutdownRequested?: string
}

/** What the leader tells each member (JSON in the assignment userData). */
export interface AssignmentInfo {
  readonly version: number
  readonly active: ReadonlyArray<string>
  readonly standby: ReadonlyArray<string>
  /** A fatal assignment error (e.g. co-partitioned topics with different partition counts). */
  readonly error?: string
  /** The application is asked to shut down (a member requested it). */
  readonly shutdown?: string
  /**
   * When (epoch ms) the member should rejoin the group for a probing rebalance (KIP-441): warm-up
   * replicas are catching up. Absent: no followup rebalance.
   */
  readonly nextRebalanceMs?: number
}

/** One sub-topology as the assignor sees it. */
export interface AssignorSubtopology {
  readonly id: number
  readonly sourceTopics: ReadonlyArray<string>
  /** Whether its tasks have state (logged stores): only those get standby replicas. */
  readonly stateful: boolean
}

export interface AssignorMember {
  readonly memberId: string
  readonly info: SubscriptionInfo
}

/** What the leader computed (diagnostics): the assignment and the probing rebalance time, if any. */
export interface AssignmentResult extends TaskAssignment {
  readonly nextRebalanceMs?: number
}

/** Encodes subscription info. */
export function encodeSubscriptionInfo(info: SubscriptionInfo): Buffer {
  return Buffer.from(JSON.stringify(info), 'utf8')
}

/** Decodes subscription info; malformed or foreign userData yields an empty (stateless) member. */
export function decodeSubscriptionInfo(buf: Buffer | null | undefined): SubscriptionInfo {
  const empty: SubscriptionInfo = { version: ASSIGNOR_VERSION, prevActive: [], prevStandby: [], taskOffsetSums: {} }
  if (!buf || buf.length === 0) return empty
  try {
    const v = JSON.parse(buf.toString('utf8')) as Partial<SubscriptionInfo>
    return {
      version: typeof v.version === 'number' ? v.version : ASSIGNOR_VERSION,
      host: typeof v.host === 'string' ? v.host : undefined,
      prevActive: Array.isArray(v.prevActive) ? v.prevActive.filter((t) => typeof t === 'string') : [],
      prevStandby: Array.isArray(v.prevStandby) ? v.prevStandby.filter((t) => typeof t === 'string') : [],
      taskOffsetSums: offsetSums(v.taskOffsetSums),
      shutdownRequested: typeof v.shutdownRequested === 'string' ? v.shutdownRequested : undefined,
    }
  } catch {
    return empty
  }
}

/** Keeps the well-formed entries of a decoded offset-sum map (integers ≥ 0, or LATEST_OFFSET). */
function offsetSums(v: unknown): Record<string, number> {
  const out: Record<string, number> = {}
  if (!v || typeof v !== 'object') return out
  for (const [t, n] of Object.entries(v as Record<string, unknown>)) {
    if (typeof n === 'number' && Number.isSafeInteger(n) && (n >= 0 || n === LATEST_OFFSET)) out[t] = n
  }
  return out
}

export function encodeAssignmentInfo(info: AssignmentInfo): Buffer {
  return Buffer.from(JSON.stringify(info), 'utf8')
}

export function decodeAssignmentInfo(buf: Buffer | null | undefined): AssignmentInfo | undefined {
  if (!buf || buf.length === 0) return undefined
  try {
    const v = JSON.parse(buf.toString('utf8')) as AssignmentInfo
    if (!Array.isArray(v.active) || !Array.isArray(v.standby)) return undefined
    return v
  } catch {
    return undefined
  }
}

/** Task ids of all sub-topologies given partition counts, ordered partition-major so that a fresh assignment spreads each sub-topology across members. */
export function computeTasks(
  subtopologies: ReadonlyArray<AssignorSubtopology>,
  partitionsOf: (subtopology: AssignorSubtopology) => number,
): string[] {
  const counts = subtopologies.map((s) => ({ s, n: partitionsOf(s) }))
  const max = Math.max(0, ...counts.map((c) => c.n))
  const tasks: string[] = []
  for (let p = 0; p < max; p++) {
    for (const { s, n } of counts) if (p < n) tasks.push(`${s.id}_${p}`)
  }
  return tasks
}

/** Partitions (topic → partitions) of a set of active tasks. */
export function partitionsOfTasks(
  tasks: ReadonlyArray<string>,
  subtopologies: ReadonlyArray<AssignorSubtopology>,
): Record<string, number[]> {
  const byId = new Map(subtopologies.map((s) => [s.id, s]))
  const out: Record<string, number[]> = {}
  for (const t of tasks) {
    const { subtopology, partition } = parseTaskId(t)
    const s = byId.get(subtopology)
    if (!s) continue
    for (const topic of s.sourceTopics) (out[topic] ??= []).push(partition)
  }
  for (const list of Object.values(out)) list.sort((a, b) => a - b)
  return out
}

/** Checks that every sub-topology's source topics have the same partition count; returns a message naming topics and counts, or undefined. */
export function coPartitioningError(
  subtopologies: ReadonlyArray<AssignorSubtopology>,
  partitionsOfTopic: (topic: string) => number | undefined,
): string | undefined {
  const problems: string[] = []
  for (const s of subtopologies) {
    const counts = s.sourceTopics.map((t) => [t, partitionsOfTopic(t)] as const)
    const missing = counts.filter(([, n]) => n === undefined || n === 0)
    if (missing.length) {
      problems.push(`sub-topology ${s.id}: source topic(s) ${missing.map(([t]) => `'${t}'`).join(', ')} not found`)
      continue
    }
    const distinct = new Set(counts.map(([, n]) => n))
    if (distinct.size > 1) {
      problems.push(
        `sub-topology ${s.id}: co-partitioned topics have different partition counts: ${counts.map(([t, n]) => `'${t}' (${n})`).join(', ')}`,
      )
    }
  }
  return problems.length ? problems.join('; ') : undefined
}

/** What the group consumer's assignor needs from the running client. */
export interface AssignorHooks {
  subtopologies(): ReadonlyArray<AssignorSubtopology>
  /** Standbys, acceptable recovery lag, warm-ups, and the probing rebalance interval (ms). */
  assignmentConfigs(): AssignmentConfigs & { readonly probingRebalanceIntervalMs: number }
  /**
   * Sum of the changelog end offsets of each of `tasks` (stateful tasks), read by the leader at
   * every assignment. A rejection leaves the lags to the members' offset sums alone (and asks for
   * a probing rebalance to try again).
   */
  changelogEndOffsets(tasks: ReadonlyArray<string>): Promise<ReadonlyMap<string, number>>
  /** Current subscription info of this member (called at every join). */
  subscriptionInfo(): SubscriptionInfo
  /** Called on the leader with the computed assignment. */
  onAssignmentComputed?(result: AssignmentResult, error?: string): void
  /** Called on the leader when the changelog end offsets could not be read. */
  onEndOffsetsFailed?(error: Error): void
}
