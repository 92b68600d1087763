/**
 * Task assignment (Kafka Streams: `StreamsPartitionAssignor` + `HighAvailabilityTaskAssignor`,
 * simplified): the client-independent part; lib/app/client/kafkajs-assignor.ts plugs it into
 * kafkajs as a partition assigner.
 *
 * The group leader alone runs `assign()`. It turns the group into TASKS: task
 * `<subtopology>_<p>` = partition p of every source topic of that sub-topology (co-partitioned
 * topics land on the same instance), then:
 * 1. **active tasks**, balanced (every member gets ⌊T/M⌋ or ⌈T/M⌉ tasks) and sticky: a task stays
 *    with its previous owner, else goes to a member holding its state (largest checkpointed
 *    offsets), else to the least-loaded member;
 * 2. **standby tasks** (`numStandbyReplicas` per stateful task) on members other than the active
 *    owner, preferring members that already hold the task's state, then the least loaded.
 *
 * Members tell the leader what they own through the subscription `userData` ({@link SubscriptionInfo}:
 * previous active/standby tasks, task directories with their checkpointed offsets, host:port). The
 * leader returns each member's partitions plus {@link AssignmentInfo} in the assignment `userData`
 * (active and standby tasks, an error or a shutdown request for the whole application).
 */
import { parseTaskId } from '../../topology/processor/types.js'

/** Protocol name registered with the group coordinator. */
export const ASSIGNOR_NAME = 'kstreams'
/** Version of the userData encoding. */
export const ASSIGNOR_VERSION = 1

/** What a member tells the leader when it joins (encoded as JSON in the subscription userData). */
export interface SubscriptionInfo {
  readonly version: number
  /** `host:port` for interactive queries (`applicationServer`). */
  readonly host?: string
  /** Tasks this member ran as active in the previous generation. */
  readonly prevActive: ReadonlyArray<string>
  /** Tasks this member ran as standby in the previous generation. */
  readonly prevStandby: ReadonlyArray<string>
  /** Task directories found locally → sum of their checkpointed changelog offsets (-1 = unknown). */
  readonly taskOffsets: Readonly<Record<string, number>>
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

export interface AssignmentResult {
  readonly active: ReadonlyMap<string, string[]>
  readonly standby: ReadonlyMap<string, string[]>
}

/** Encodes subscription info. */
export function encodeSubscriptionInfo(info: SubscriptionInfo): Buffer {
  return Buffer.from(JSON.stringify(info), 'utf8')
}

/** Decodes subscription info; malformed or foreign userData yields an empty (stateless) member. */
export function decodeSubscriptionInfo(buf: Buffer | null | undefined): SubscriptionInfo {
  const empty: SubscriptionInfo = { version: ASSIGNOR_VERSION, prevActive: [], prevStandby: [], taskOffsets: {} }
  if (!buf || buf.length === 0) return empty
  try {
    const v = JSON.parse(buf.toString('utf8')) as Partial<SubscriptionInfo>
    return {
      version: typeof v.version === 'number' ? v.version : ASSIGNOR_VERSION,
      host: typeof v.host === 'string' ? v.host : undefined,
      prevActive: Array.isArray(v.prevActive) ? v.prevActive.filter((t) => typeof t === 'string') : [],
      prevStandby: Array.isArray(v.prevStandby) ? v.prevStandby.filter((t) => typeof t === 'string') : [],
      taskOffsets: v.taskOffsets && typeof v.taskOffsets === 'object' ? v.taskOffsets : {},
      shutdownRequested: typeof v.shutdownRequested === 'string' ? v.shutdownRequested : undefined,
    }
  } catch {
    return empty
  }
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

/**
 * The assignment algorithm (pure, deterministic for a given input).
 * @param tasks all task ids
 * @param members group members with their subscription info
 * @param statefulTasks tasks that get standby replicas
 * @param numStandbyReplicas replicas per stateful task (capped at members − 1)
 */
export function assignTasks(
  tasks: ReadonlyArray<string>,
  members: ReadonlyArray<AssignorMember>,
  statefulTasks: ReadonlySet<string>,
  numStandbyReplicas: number,
): AssignmentResult {
  const sorted = [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0))
  const active = new Map<string, string[]>(sorted.map((m) => [m.memberId, []]))
  const standby = new Map<string, string[]>(sorted.map((m) => [m.memberId, []]))
  if (sorted.length === 0) return { active, standby }

  const M = sorted.length
  const base = Math.floor(tasks.length / M)
  let extrasLeft = tasks.length % M
  const load = new Map<string, number>(sorted.map((m) => [m.memberId, 0]))
  const canTake = (id: string): boolean => {
    const l = load.get(id)!
    return l < base || (l === base && extrasLeft > 0)
  }
  const give = (id: string, task: string): void => {
    const l = load.get(id)!
    if (l === base) extrasLeft--
    load.set(id, l + 1)
    active.get(id)!.push(task)
  }
  const owner = new Map<string, string>()
  const prevOwner = new Map<string, string>()
  for (const m of sorted) for (const t of m.info.prevActive) if (!prevOwner.has(t)) prevOwner.set(t, m.memberId)
  const stateOf = (m: AssignorMember, t: string): number => {
    const v = m.info.taskOffsets[t]
    if (typeof v === 'number') return v
    return m.info.prevStandby.includes(t) ? 0 : -Infinity
  }

  // 1. previous owners keep their tasks (within their quota)
  for (const t of tasks) {
    const p = prevOwner.get(t)
    if (p !== undefined && load.has(p) && canTake(p)) {
      give(p, t)
      owner.set(t, p)
    }
  }
  // 2. members holding the task's state (most caught-up first), 3. least loaded
  for (const t of tasks) {
    if (owner.has(t)) continue
    let best: string | undefined
    let bestState = -Infinity
    for (const m of sorted) {
      if (!canTake(m.memberId)) continue
      const s = stateOf(m, t)
      if (s > bestState) {
        best = m.memberId
        bestState = s
      }
    }
    if (best === undefined || bestState === -Infinity) {
      best = undefined
      for (const m of sorted) {
        if (!canTake(m.memberId)) continue
        if (best === undefined || load.get(m.memberId)! < load.get(best)!) best = m.memberId
      }
    }
    if (best === undefined) throw new Error(`assignTasks: no member can take task ${t} (bug)`)
    give(best, t)
    owner.set(t, best)
  }

  // standby replicas
  const replicas = Math.min(numStandbyReplicas, M - 1)
  if (replicas > 0) {
    const sload = new Map<string, number>(sorted.map((m) => [m.memberId, 0]))
    for (const t of tasks) {
      if (!statefulTasks.has(t)) continue
      const taken = new Set<string>([owner.get(t)!])
      for (let r = 0; r < replicas; r++) {
        let best: string | undefined
        let bestKey: [number, number] | undefined
        for (const m of sorted) {
          if (taken.has(m.memberId)) continue
          // prefer state holders (higher offsets), then lower standby load, then lower active load
          const s = stateOf(m, t)
          const key: [number, number] = [s === -Infinity ? 0 : 1, -(sload.get(m.memberId)! * 1000 + load.get(m.memberId)!)]
          if (!bestKey || key[0] > bestKey[0] || (key[0] === bestKey[0] && key[1] > bestKey[1])) {
            best = m.memberId
            bestKey = key
          }
        }
        if (best === undefined) break
        taken.add(best)
        sload.set(best, sload.get(best)! + 1)
        standby.get(best)!.push(t)
      }
    }
  }
  return { active, standby }
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
  numStandbyReplicas(): number
  /** Current subscription info of this member (called at every join). */
  subscriptionInfo(): SubscriptionInfo
  /** Called on the leader with the computed assignment (diagnostics). */
  onAssignmentComputed?(result: AssignmentResult, error?: string): void
}
