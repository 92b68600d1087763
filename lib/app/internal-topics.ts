/**
 * Internal topic management (Kafka Streams: `InternalTopicManager` + `RepartitionTopics`).
 *
 * Before the consumer subscribes, the app:
 * 1. reads the partition counts of every user source topic and checks co-partitioning;
 * 2. derives each repartition topic's partition count (fixed, or from the sub-topology that reads
 *    it / writes it — iterated to a fixed point) and each changelog topic's (= the partition count
 *    of the sub-topology that owns the store);
 * 3. creates missing internal topics idempotently (TOPIC_ALREADY_EXISTS from a racing instance is
 *    fine) and checks existing ones: a wrong partition count is a {@link StreamsConfigError};
 * 4. waits until metadata shows every internal topic with all its partitions led.
 */
import { StreamsConfigError, TopologyError } from '../../topology/errors.js'
import type { InternalTopicDef, SubtopologyDef, TopologyDef } from '../../topology/engine/types.js'
import { coPartitioningError } from './assignor.js'
import type { NewTopic, StreamsAdmin } from './client/types.js'
import type { Logger } from './logger.js'
import { resolvePatternSourcesWithAdmin } from './pattern-sources.js'

/** Partition counts of all source, repartition and changelog topics of a topology. */
export interface TopicLayout {
  /** topic → partition count, for every source (user and internal) and changelog topic. */
  readonly partitions: ReadonlyMap<string, number>
  /** sub-topology id → its partition count (= number of tasks). */
  readonly subtopologyPartitions: ReadonlyMap<number, number>
}

export interface InternalTopicManagerOptions {
  readonly admin: StreamsAdmin
  readonly topology: TopologyDef
  readonly replicationFactor: number
  readonly overrides: (kind: 'changelog' | 'repartition') => Record<string, string>
  readonly logger: Logger
  /** How long to wait for created topics to appear in metadata, ms. @defaultValue 30000 */
  readonly metadataTimeoutMs?: number
}

/** Reads the partition counts of `topics`; a missing topic maps to undefined. */
export async function fetchPartitionCounts(admin: StreamsAdmin, topics: ReadonlyArray<string>): Promise<Map<string, number | undefined>> {
  const out = new Map<string, number | undefined>()
  if (topics.length === 0) return out
  for (let attempt = 0; ; attempt++) {
    try {
      const existing = new Set(await admin.listTopics())
      const present = topics.filter((t) => existing.has(t))
      for (const t of topics) out.set(t, undefined)
      if (present.length) {
        for (const t of await admin.describeTopics([...new Set(present)])) out.set(t.name, t.partitions.length)
      }
      return out
    } catch (e) {
      // a topic another instance is creating right now may be listed before its metadata is ready
      if (attempt >= 20) throw e
      await new Promise((r) => setTimeout(r, 250))
    }
  }
}

/**
 * Computes partition counts for repartition topics and changelogs from the user topics' counts.
 * @throws TopologyError when a repartition topic's count cannot be derived, or co-partitioned
 *   topics disagree (naming the topics and their counts).
 */
export function computeTopicLayout(topology: TopologyDef, userCounts: ReadonlyMap<string, number | undefined>): TopicLayout {
  const partitions = new Map<string, number>()
  for (const [t, n] of userCounts) if (n !== undefined) partitions.set(t, n)
  const repartition = new Map(topology.repartitionTopics.map((r) => [r.name, r]))
  for (const r of topology.repartitionTopics) if (r.numPartitions !== undefined) partitions.set(r.name, r.numPartitions)

  // fixed point: a repartition topic takes the count of the other sources of the sub-topology that
  // reads it, else the max source count of the sub-topology that writes it.
  let changed = true
  for (let round = 0; changed && round < 100; round++) {
    changed = false
    for (const r of topology.repartitionTopics) {
      if (partitions.has(r.name)) continue
      let n: number | undefined
      for (const s of topology.subtopologies) {
        if (!s.sourceTopics.includes(r.name)) continue
        const others = s.sourceTopics.filter((t) => t !== r.name && partitions.has(t)).map((t) => partitions.get(t)!)
        if (others.length) n = Math.max(...others)
      }
      if (n === undefined) {
        for (const s of topology.subtopologies) {
          if (!s.sinkTopics.includes(r.name)) continue
          const srcs = s.sourceTopics.filter((t) => partitions.has(t)).map((t) => partitions.get(t)!)
          if (srcs.length && srcs.length === s.sourceTopics.length) n = Math.max(n ?? 0, ...srcs)
        }
      }
      if (n !== undefined) {
        partitions.set(r.name, n)
        changed = true
      }
    }
  }
  for (const r of repartition.values()) {
    if (!partitions.has(r.name))
      throw new TopologyError(
        `cannot derive the partition count of repartition topic '${r.name}'; give it one with Repartitioned.withNumberOfPartitions`,
      )
  }
  const missing = topology.subtopologies.flatMap((s) => s.sourceTopics).filter((t) => !partitions.has(t))
  if (missing.length)
    throw new StreamsConfigError(
      `source topic(s) not found: ${[...new Set(missing)].map((t) => `'${t}'`).join(', ')}; create them before starting the application`,
    )

  const subs = topology.subtopologies.map((s) => ({ id: s.id, sourceTopics: s.sourceTopics, stateful: false }))
  const groups = (topology.copartitionGroups ?? []).map((g, i) => ({ id: -(i + 1), sourceTopics: g, stateful: false }))
  const err = coPartitioningError([...subs, ...groups], (t) => partitions.get(t))
  if (err) throw new TopologyError(err.replace(/sub-topology -(\d+)/g, (_, n) => `co-partition group ${Number(n) - 1}`))

  const subtopologyPartitions = new Map<number, number>()
  for (const s of topology.subtopologies) {
    if (s.sourceTopics.length) subtopologyPartitions.set(s.id, partitions.get(s.sourceTopics[0]!)!)
  }
  for (const c of topology.changelogTopics) {
    if (c.numPartitions !== undefined) {
      partitions.set(c.name, c.numPartitions)
      continue
    }
    const owner = subtopologyOfChangelog(topology, c)
    const n = owner ? subtopologyPartitions.get(owner.id) : undefined
    if (n === undefined)
      throw new TopologyError(`cannot derive the partition count of changelog topic '${c.name}' (no sub-topology owns its store)`)
    partitions.set(c.name, n)
  }
  return { partitions, subtopologyPartitions }
}

/** The changelog topic of a store (`<applicationId>-<store>-changelog` unless it is a source-topic changelog). */
export function changelogTopicName(applicationId: string, store: string): string {
  return `${applicationId}-${store}-changelog`
}

function subtopologyOfChangelog(topology: TopologyDef, c: InternalTopicDef): SubtopologyDef | undefined {
  for (const s of topology.subtopologies) {
    for (const store of s.stores) {
      const def = topology.stores.get(store)
      if (def && def.loggingEnabled && !def.sourceChangelogTopic && changelogTopicName(topology.applicationId, store) === c.name) return s
    }
  }
  return undefined
}

/** Creates and validates internal topics. Returns the full layout. */
export async function prepareInternalTopics(options: InternalTopicManagerOptions): Promise<TopicLayout> {
  const { admin, topology, logger } = options
  const internal = new Set([...topology.repartitionTopics, ...topology.changelogTopics].map((t) => t.name))
  const userTopics = [...new Set(topology.subtopologies.flatMap((s) => s.sourceTopics).filter((t) => !internal.has(t)))]
  const userCounts = await fetchPartitionCounts(admin, userTopics)
  const layout = computeTopicLayout(topology, userCounts)

  const defs = [...topology.repartitionTopics, ...topology.changelogTopics]
  const existing = await fetchPartitionCounts(
    admin,
    defs.map((d) => d.name),
  )
  const wrong: string[] = []
  const toCreate: NewTopic[] = []
  for (const d of defs) {
    const want = layout.partitions.get(d.name)!
    const have = existing.get(d.name)
    if (have === undefined) {
      const configs = { ...defaultConfig(d), ...d.config, ...options.overrides(d.kind) }
      toCreate.push({ topic: d.name, numPartitions: want, replicationFactor: options.replicationFactor, configs })
    } else if (have !== want) {
      wrong.push(`'${d.name}' has ${have} partitions, expected ${want}`)
    }
  }
  if (wrong.length) {
    throw new StreamsConfigError(
      `existing internal topic(s) with the wrong partition count: ${wrong.join('; ')}. Delete them (application reset) or fix the source topics`,
    )
  }
  if (toCreate.length) {
    let createError: unknown
    logger.info('creating internal topics', { topics: toCreate.map((t) => `${t.topic}(${t.numPartitions})`) })
    try {
      await admin.createTopics(toCreate)
    } catch (e) {
      // another instance may have created them concurrently (TOPIC_ALREADY_EXISTS, or metadata
      // not ready yet): what counts is that they show up below with the right partition counts
      logger.debug(`createTopics: ${(e as Error).message}; checking metadata`)
      createError = e
    }
    try {
      await waitForTopics(
        admin,
        toCreate.map((t) => ({ topic: t.topic, partitions: t.numPartitions })),
        options.metadataTimeoutMs ?? 30_000,
      )
    } catch (e) {
      throw new StreamsConfigError(
        `could not create internal topics ${toCreate.map((t) => `'${t.topic}'`).join(', ')}: ${((createError ?? e) as Error).message}`,
        { cause: createError ?? e },
      )
    }
  }
  return layout
}

function defaultConfig(d: InternalTopicDef): Record<string, string> {
  if (d.kind === 'changelog') return { 'cleanup.policy': 'compact' }
  return { 'cleanup.policy': 'delete' }
}

/** Waits until every topic shows the expected partitions with a leader. */
export async function waitForTopics(
  admin: StreamsAdmin,
  topics: ReadonlyArray<{ topic: string; partitions: number }>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const md = await admin.describeTopics(topics.map((t) => t.topic))
      const ok = topics.every((t) => {
        const m = md.find((x) => x.name === t.topic)
        return m !== undefined && m.partitions.length === t.partitions && m.partitions.every((p) => p.leader >= 0)
      })
      if (ok) return
    } catch (e) {
      lastError = e
    }
    if (Date.now() > deadline) {
      throw new StreamsConfigError(
        `internal topics ${topics.map((t) => `'${t.topic}'`).join(', ')} did not appear in metadata within ${timeoutMs} ms`,
        { cause: lastError },
      )
    }
    await new Promise((r) => setTimeout(r, 200))
  }
}

/**
 * A client's topic preparation before its threads start (Kafka Streams: `KafkaStreams#start` →
 * `InternalTopicManager`): pattern sources resolved against the topics existing now, internal
 * topics created or checked, and the partition counts of every source, internal and sink topic
 * recorded in `partitionCounts`.
 * @returns the topology with its pattern sources resolved.
 */
export async function prepareTopics(options: {
  readonly admin: StreamsAdmin
  readonly topology: TopologyDef
  readonly replicationFactor: number
  readonly overrides: (kind: 'changelog' | 'repartition') => Record<string, string>
  readonly logger: Logger
  readonly partitionCounts: Map<string, number>
}): Promise<TopologyDef> {
  const { admin, partitionCounts } = options
  // pattern sources read the topics matching at start (see pattern-sources.ts)
  const def = await resolvePatternSourcesWithAdmin(admin, options.topology)
  const layout = await prepareInternalTopics({ ...options, topology: def })
  for (const [t, n] of layout.partitions) partitionCounts.set(t, n)
  const sinks = [...new Set(def.subtopologies.flatMap((s) => s.sinkTopics))].filter((t) => !partitionCounts.has(t))
  for (const [t, n] of await fetchPartitionCounts(admin, sinks)) if (n !== undefined) partitionCounts.set(t, n)
  return def
}
