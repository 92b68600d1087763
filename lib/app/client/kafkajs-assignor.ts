/**
 * The task assignor (lib/app/assignor.ts) as a kafkajs `PartitionAssigner`, and the consumer
 * protocol's subscription / assignment encoding (kafkajs' `AssignerProtocol`) that carries our
 * userData.
 */
import kafkajs from 'kafkajs'
import type { Assigner, Cluster, GroupMember, GroupMemberAssignment, PartitionAssigner } from 'kafkajs'
import { parseTaskId } from '../../../topology/processor/types.js'
import {
  ASSIGNOR_NAME,
  ASSIGNOR_VERSION,
  computeTasks,
  coPartitioningError,
  decodeSubscriptionInfo,
  encodeAssignmentInfo,
  encodeSubscriptionInfo,
  partitionsOfTasks,
  type AssignorHooks,
  type AssignorMember,
} from '../assignor.js'
import { assignTasks } from '../task-assignor.js'

const { AssignerProtocol } = kafkajs

/**
 * Decodes a member's assignment (consumer protocol): its partitions and the assignor's userData.
 * @returns undefined for an empty or undecodable buffer.
 */
export function decodeMemberAssignment(
  buf: Buffer | null | undefined,
): { assignment: Record<string, number[]>; userData: Buffer | undefined } | undefined {
  if (!buf || buf.length === 0) return undefined
  try {
    const decoded = AssignerProtocol.MemberAssignment.decode(buf)
    return decoded ? { assignment: decoded.assignment, userData: decoded.userData ?? undefined } : undefined
  } catch {
    return undefined
  }
}

/**
 * Decodes a member's subscription metadata (consumer protocol): its topics and the assignor's userData.
 * @returns undefined for an empty or undecodable buffer.
 */
export function decodeMemberMetadata(buf: Buffer | null | undefined): { topics: string[]; userData: Buffer | undefined } | undefined {
  if (!buf || buf.length === 0) return undefined
  try {
    const decoded = AssignerProtocol.MemberMetadata.decode(buf)
    return decoded ? { topics: decoded.topics, userData: decoded.userData ?? undefined } : undefined
  } catch {
    return undefined
  }
}

/**
 * Builds the kafkajs `PartitionAssigner` (pass it as `partitionAssigners: [createTaskAssignor(hooks)]`).
 */
export function createTaskAssignor(hooks: AssignorHooks): PartitionAssigner {
  return ({ cluster }: { cluster: Cluster }): Assigner => ({
    name: ASSIGNOR_NAME,
    version: ASSIGNOR_VERSION,
    async assign({ members }: { members: GroupMember[]; topics: string[] }): Promise<GroupMemberAssignment[]> {
      const subs = hooks.subtopologies()
      const partitionsOfTopic = (topic: string): number | undefined => {
        try {
          return cluster.findTopicPartitionMetadata(topic).length
        } catch {
          return undefined
        }
      }
      const decoded: AssignorMember[] = members.map((m) => ({
        memberId: m.memberId,
        info: decodeSubscriptionInfo(decodeMemberMetadata(m.memberMetadata)?.userData),
      }))
      const shutdown = decoded.find((m) => m.info.shutdownRequested)?.info.shutdownRequested
      const error = coPartitioningError(subs, partitionsOfTopic)
      if (error || shutdown) {
        hooks.onAssignmentComputed?.({ active: new Map(), standby: new Map(), warmup: new Map(), probingRebalanceNeeded: false }, error)
        return members.map((m) => ({
          memberId: m.memberId,
          memberAssignment: AssignerProtocol.MemberAssignment.encode({
            version: ASSIGNOR_VERSION,
            assignment: {},
            userData: encodeAssignmentInfo({ version: ASSIGNOR_VERSION, active: [], standby: [], error, shutdown }),
          }),
        }))
      }
      const tasks = computeTasks(subs, (s) => partitionsOfTopic(s.sourceTopics[0]!) ?? 0)
      const statefulSubs = new Set(subs.filter((s) => s.stateful).map((s) => s.id))
      const stateful = tasks.filter((t) => statefulSubs.has(parseTaskId(t).subtopology))
      let endOffsetSums: ReadonlyMap<string, number> | undefined
      try {
        endOffsetSums = stateful.length > 0 ? await hooks.changelogEndOffsets(stateful) : new Map()
      } catch (e) {
        hooks.onEndOffsetsFailed?.(e instanceof Error ? e : new Error(String(e)))
      }
      const configs = hooks.assignmentConfigs()
      const assignment = assignTasks(
        tasks,
        decoded.map((m) => ({ memberId: m.memberId, ...m.info })),
        new Set(stateful),
        configs,
        endOffsetSums,
      )
      // Kafka Streams' FallbackPriorTaskAssignor: without end offsets, probe again later
      const probing = assignment.probingRebalanceNeeded || endOffsetSums === undefined
      const nextRebalanceMs = probing ? Date.now() + configs.probingRebalanceIntervalMs : undefined
      hooks.onAssignmentComputed?.({ ...assignment, nextRebalanceMs })
      return members.map((m) => {
        const act = assignment.active.get(m.memberId) ?? []
        const sb = assignment.standby.get(m.memberId) ?? []
        return {
          memberId: m.memberId,
          memberAssignment: AssignerProtocol.MemberAssignment.encode({
            version: ASSIGNOR_VERSION,
            assignment: partitionsOfTasks(act, subs),
            userData: encodeAssignmentInfo({
              version: ASSIGNOR_VERSION,
              active: act,
              standby: sb,
              ...(nextRebalanceMs !== undefined ? { nextRebalanceMs } : {}),
            }),
          }),
        }
      })
    },
    protocol({ topics }: { topics: string[] }) {
      return {
        name: ASSIGNOR_NAME,
        metadata: AssignerProtocol.MemberMetadata.encode({
          version: ASSIGNOR_VERSION,
          topics,
          userData: encodeSubscriptionInfo(hooks.subscriptionInfo()),
        }),
      }
    },
  })
}
