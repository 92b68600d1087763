/**
 * The changelogs of each task, as the assignor needs them (Kafka Streams: `ChangelogTopics`):
 * which topics a sub-topology's logged stores write (or, for a source table whose source topic
 * serves as its changelog, read), and the end offset sums the leader compares the members' offset
 * sums with (KIP-441 lags).
 */
import type { TopologyDef } from '../../../topology/engine/types.js'
import { parseTaskId } from '../../../topology/processor/types.js'
import type { StreamsAdmin } from '../client/types.js'
import { tpKey } from '../client/types.js'
import { changelogTopicName } from '../internal-topics.js'

export interface TaskChangelog {
  readonly topic: string
  /** The store's source topic serves as its changelog: its end is the group's committed offset. */
  readonly source: boolean
  /** The store is persistent (its local data outlives the task's close). */
  readonly persistent: boolean
}

/** Sub-topology id → the changelogs of its logged stores. */
export function changelogsBySubtopology(topology: TopologyDef, applicationId: string): Map<number, TaskChangelog[]> {
  const out = new Map<number, TaskChangelog[]>()
  for (const s of topology.subtopologies) {
    const list: TaskChangelog[] = []
    for (const name of s.stores) {
      const def = topology.stores.get(name)
      if (!def?.loggingEnabled) continue
      list.push({
        topic: def.sourceChangelogTopic ?? changelogTopicName(applicationId, def.name),
        source: def.sourceChangelogTopic !== undefined,
        persistent: def.persistent,
      })
    }
    out.set(s.id, list)
  }
  return out
}

/**
 * Sum of the end offsets of each task's changelog partitions (Kafka Streams:
 * `StreamsPartitionAssignor#computeEndOffsetSumsByTask`): the last stable offset of a changelog
 * partition, the group's committed offset of a source-topic changelog (0 when none).
 * @throws whatever the admin calls throw (the assignor then judges by offset sums alone)
 */
export async function changelogEndOffsetSums(
  admin: StreamsAdmin,
  groupId: string,
  changelogs: ReadonlyMap<number, ReadonlyArray<TaskChangelog>>,
  tasks: ReadonlyArray<string>,
): Promise<Map<string, number>> {
  const ids = tasks.map((t) => ({ id: t, ...parseTaskId(t) }))
  const topics = new Set<string>()
  const sourcePartitions: Array<{ topic: string; partition: number }> = []
  for (const t of ids) {
    for (const c of changelogs.get(t.subtopology) ?? []) {
      if (c.source) sourcePartitions.push({ topic: c.topic, partition: t.partition })
      else topics.add(c.topic)
    }
  }
  const ends = new Map<string, bigint>()
  await Promise.all(
    [...topics].map(async (topic) => {
      for (const [k, o] of await admin.topicOffsets(topic)) ends.set(k, BigInt(o.high))
    }),
  )
  const committed = sourcePartitions.length > 0 ? await admin.committedOffsets(groupId, sourcePartitions) : new Map<string, bigint>()
  const out = new Map<string, number>()
  for (const t of ids) {
    let sum = 0n
    for (const c of changelogs.get(t.subtopology) ?? []) {
      const k = tpKey(c.topic, t.partition)
      const end = c.source ? (committed.get(k) ?? 0n) : ends.get(k)
      if (end === undefined) throw new Error(`no end offset for changelog partition ${c.topic}[${t.partition}] of task ${t.id}`)
      sum += end
    }
    out.set(t.id, sum > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(sum))
  }
  return out
}
