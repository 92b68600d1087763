/**
 * Pattern subscriptions (`StreamsBuilder.stream(/regex/)`, `Topology.addSource(name, /regex/)`):
 * resolves each source pattern against the cluster's topic list once, at start, and rewrites the
 * {@link TopologyDef} so the pattern source reads the matched topics by name. Everything after
 * that (co-partitioning checks, internal topic sizing, task computation, the assignor and the
 * consumer subscription) sees ordinary named sources; the engine still routes by the record's
 * real topic.
 *
 * Differences from Kafka Streams (documented on purpose):
 * - Kafka Streams subscribes with the regex and re-evaluates it on every metadata refresh, so a
 *   topic created later joins at the next rebalance. Here the pattern is resolved only when the
 *   client starts: **topics created after `start()` are picked up at the next restart**.
 * - Kafka Streams waits (with no tasks) while no topic matches. Here `start()` fails with a
 *   {@link StreamsConfigError} naming the pattern.
 */
import { StreamsConfigError, TopologyError } from '../../topology/errors.js'
import type { NodeDef, SourceNodeDef, SubtopologyDef, TopologyDef } from '../../topology/engine/types.js'
import type { StreamsAdmin } from './client/types.js'

/** Whether `topology` has any pattern source (global stores never do). */
export function hasPatternSources(topology: TopologyDef): boolean {
  return topology.subtopologies.some((s) => s.nodes.some((n) => n.type === 'source' && n.pattern !== undefined))
}

/** Full-match test, as Java's `Pattern.matcher(topic).matches()` (the engine routes the same way). */
function fullMatch(pattern: RegExp, topic: string): boolean {
  pattern.lastIndex = 0
  const m = pattern.exec(topic)
  return m !== null && m.index === 0 && m[0].length === topic.length
}

/**
 * Rewrites the pattern sources of `topology` to the topics of `allTopics` they match (sorted).
 * Excluded from matching: broker-internal topics (`__consumer_offsets`, `__transaction_state`, any
 * `__`-prefixed name) and this application's own internal topics (repartition and changelog).
 * Pure: no I/O.
 * @returns `topology` itself when it has no pattern source, else a new {@link TopologyDef}.
 * @throws StreamsConfigError naming the pattern when it matches no topic.
 * @throws TopologyError when a matched topic is also a named source, or matches two patterns
 *   (Kafka Streams: `TopologyException`, a topic may feed only one source node).
 */
export function resolvePatternSources(topology: TopologyDef, allTopics: ReadonlyArray<string>): TopologyDef {
  if (!hasPatternSources(topology)) return topology
  const own = new Set([...topology.repartitionTopics, ...topology.changelogTopics].map((t) => t.name))
  const candidates = [...new Set(allTopics)].filter((t) => !t.startsWith('__') && !own.has(t)).sort()
  const named = new Map<string, string>() // topic -> source node
  for (const s of topology.subtopologies) for (const n of s.nodes) if (n.type === 'source') for (const t of n.topics) named.set(t, n.name)
  for (const g of topology.globalStores) for (const t of g.source.topics) named.set(t, g.source.name)

  const claimed = new Map<string, string>() // topic -> pattern source node
  const subtopologies: SubtopologyDef[] = topology.subtopologies.map((s) => {
    if (!s.nodes.some((n) => n.type === 'source' && n.pattern !== undefined)) return s
    const added: string[] = []
    const nodes: NodeDef[] = s.nodes.map((n) => {
      if (n.type !== 'source' || n.pattern === undefined) return n
      const pattern = n.pattern
      const matched = candidates.filter((t) => fullMatch(pattern, t) && !n.topics.includes(t))
      for (const t of matched) {
        const other = named.get(t) ?? claimed.get(t)
        if (other !== undefined) {
          throw new TopologyError(
            `topic '${t}' matches the pattern /${pattern.source}/ of source '${n.name}' but is already read by source '${other}'; a topic may feed only one source`,
          )
        }
        claimed.set(t, n.name)
      }
      if (matched.length === 0 && n.topics.length === 0) {
        throw new StreamsConfigError(
          `source '${n.name}': pattern /${pattern.source}/ matches no topic in the cluster; create a matching topic before starting the application (kstreams resolves patterns at start and does not wait as Kafka Streams does)`,
        )
      }
      added.push(...matched)
      const def: SourceNodeDef = { ...n, topics: [...n.topics, ...matched] }
      return def
    })
    return { ...s, nodes, sourceTopics: [...s.sourceTopics, ...added.filter((t) => !s.sourceTopics.includes(t))] }
  })
  return { ...topology, subtopologies }
}

/**
 * Lists the cluster's topics with `admin` and applies {@link resolvePatternSources}.
 * @throws as {@link resolvePatternSources}; the client's errors from `listTopics`.
 */
export async function resolvePatternSourcesWithAdmin(admin: Pick<StreamsAdmin, 'listTopics'>, topology: TopologyDef): Promise<TopologyDef> {
  if (!hasPatternSources(topology)) return topology
  return resolvePatternSources(topology, await admin.listTopics())
}
