/**
 * `liveTopology`: the topology description annotated with what a running client measures (consumer
 * lag and processing rate per source topic, restore progress per store, process rate per node),
 * rendered as Mermaid (`toMermaid()`) or as a terminal table (`toTable()`).
 *
 * Everything is read from Kafka Streams' metrics (`streams.metrics()`), so any
 * {@link MetricsSource} works: a `KafkaStreams` client, or a test double. Metric names used:
 * `records-lag` (consumer-fetch-manager-metrics, tags topic, partition), `process-rate`
 * (stream-task-metrics per task, DEBUG; stream-thread-metrics, INFO; stream-processor-node-metrics
 * per node where recorded), `restore-total` and `restore-remaining-records-total`
 * (stream-task-metrics, KIP-869).
 */
import type { MermaidOptions, TopologyAnnotations, TopologyDescription } from '../../topology/internals/describe.js'
import type { Metric, MetricName, MetricsSource } from '../metrics/types.js'

/** What {@link liveTopology} reads: Kafka Streams' `metrics()` and the application id (`KafkaStreams` fits). */
export interface LiveTopologyClient extends MetricsSource {
  /** Internal topics (repartition) are named `<applicationId>-<name>` in the metrics. */
  readonly config: { readonly applicationId: string }
}

/** Live values of one source topic of a sub-topology. */
export interface LiveSource {
  readonly topic: string
  readonly subtopology: number
  /**
   * Consumer lag in records: the maximum over the topic's partitions assigned to this client
   * (`records-lag`); undefined before the first fetch or when no partition is assigned here.
   */
  readonly lag: number | undefined
  /**
   * Records processed per second by the sub-topology's tasks on this client: the sum of their
   * task-level `process-rate` (recorded at `metricsRecordingLevel: 'DEBUG'`), or the thread-level
   * `process-rate` when the topology has a single sub-topology; otherwise undefined.
   */
  readonly rate: number | undefined
}

/** Restore progress of one state store (KIP-869), summed over this client's tasks holding it. */
export interface LiveStore {
  readonly store: string
  readonly subtopology: number
  /** Changelog records restored so far (`restore-total`); undefined before any task holding the store started here. */
  readonly restored: number | undefined
  /** Records still to restore (`restore-remaining-records-total`); 0 once restored. */
  readonly remaining: number | undefined
}

/** Live values of one processor node (only nodes with a recorded `process-rate`). */
export interface LiveProcessor {
  readonly name: string
  readonly subtopology: number
  /** Records per second through the node (`process-rate` with tag `processor-node-id`). */
  readonly rate: number
}

/** A snapshot of a running topology. Plain data: serializable with `JSON.stringify`. */
export interface LiveTopologySnapshot {
  /** When it was taken, ms since the epoch. */
  readonly takenAt: number
  readonly sources: ReadonlyArray<LiveSource>
  readonly stores: ReadonlyArray<LiveStore>
  readonly processors: ReadonlyArray<LiveProcessor>
}

/** {@link liveTopology}'s result: the snapshot and its renderings. */
export interface LiveTopology extends LiveTopologySnapshot {
  /** The snapshot as text per topic, store and node (what `toMermaid()` shows). */
  readonly annotations: TopologyAnnotations
  /** The topology's Mermaid flowchart with the live values under topics, stores and nodes (same node ids as `topology.toMermaid()`). */
  toMermaid(): string
  /** A compact table (sub-topology, node, lag, rate, restore) for a terminal. */
  toTable(): string
}

interface Tagged {
  readonly name: MetricName
  readonly value: number
}

function numeric(metrics: ReadonlyMap<MetricName, Metric>, name: string): Tagged[] {
  const out: Tagged[] = []
  for (const [n, m] of metrics) {
    if (n.name !== name) continue
    const v = m.metricValue()
    if (typeof v === 'number' && !Number.isNaN(v)) out.push({ name: n, value: v })
  }
  return out
}

function subtopologyOfTask(taskId: string | undefined): number | undefined {
  if (taskId === undefined) return undefined
  const sub = Number(taskId.slice(0, taskId.indexOf('_')))
  return Number.isInteger(sub) ? sub : undefined
}

/**
 * Collects live values for each source topic, store and processor of `topology` from a running
 * client's metrics, and renders them. Values cover this client's tasks only (one instance of the
 * application); call it on each instance, or merge snapshots, for the whole group. Cheap: reads the
 * in-memory metrics, no broker request.
 *
 * Processing rates come from task-level `process-rate`, which Kafka Streams records at the DEBUG
 * level: set `metricsRecordingLevel: 'DEBUG'` for per-sub-topology rates when the topology has more
 * than one sub-topology.
 *
 * @param topology the topology the client runs (anything with `describe()`, e.g. `builder.build()`)
 * @param streams the running client (`KafkaStreams`), read through its `metrics()`
 * @example
 * ```ts
 * const view = liveTopology(topology, streams)
 * console.log(view.toTable())
 * fs.writeFileSync('topology.mmd', view.toMermaid())
 * ```
 */
export function liveTopology(topology: { describe(): TopologyDescription }, streams: LiveTopologyClient): LiveTopology {
  const description = topology.describe()
  const snapshot = collectLiveTopology(description, streams.metrics(), streams.config.applicationId)
  const annotations = liveAnnotations(snapshot)
  const options: MermaidOptions = { annotations }
  return {
    ...snapshot,
    annotations,
    toMermaid: () => description.toMermaid(options),
    toTable: () => liveTopologyTable(snapshot),
  }
}

/** The snapshot behind {@link liveTopology}, from a description and a metrics map. */
export function collectLiveTopology(
  description: TopologyDescription,
  metrics: ReadonlyMap<MetricName, Metric>,
  applicationId: string,
  now: number = Date.now(),
): LiveTopologySnapshot {
  // a topic in the metrics is the description's name, or `<applicationId>-<name>` for internal topics
  const describedTopic = (topic: string): string => (topic.startsWith(`${applicationId}-`) ? topic.slice(applicationId.length + 1) : topic)
  const lagByTopic = new Map<string, number>()
  for (const { name, value } of numeric(metrics, 'records-lag')) {
    const topic = name.tags['topic']
    if (topic === undefined || name.tags['partition'] === undefined) continue
    for (const t of new Set([topic, describedTopic(topic)])) lagByTopic.set(t, Math.max(lagByTopic.get(t) ?? 0, value))
  }

  const sumByTask = (metricName: string, group: string): Map<number, number> => {
    const out = new Map<number, number>()
    for (const { name, value } of numeric(metrics, metricName)) {
      if (name.group !== group) continue
      const sub = subtopologyOfTask(name.tags['task-id'])
      if (sub !== undefined) out.set(sub, (out.get(sub) ?? 0) + value)
    }
    return out
  }
  const taskRate = sumByTask('process-rate', 'stream-task-metrics')
  const restored = sumByTask('restore-total', 'stream-task-metrics')
  const remaining = sumByTask('restore-remaining-records-total', 'stream-task-metrics')
  const threadRates = numeric(metrics, 'process-rate').filter((m) => m.name.group === 'stream-thread-metrics')
  const clientRate = threadRates.length > 0 ? threadRates.reduce((n, m) => n + m.value, 0) : undefined
  const single = description.subtopologies.length === 1
  const rateOf = (sub: number): number | undefined => taskRate.get(sub) ?? (single ? clientRate : undefined)

  const nodeRate = new Map<string, number>()
  for (const { name, value } of numeric(metrics, 'process-rate')) {
    const node = name.tags['processor-node-id']
    if (name.group === 'stream-processor-node-metrics' && node !== undefined) nodeRate.set(node, (nodeRate.get(node) ?? 0) + value)
  }

  const sources: LiveSource[] = []
  const stores: LiveStore[] = []
  const processors: LiveProcessor[] = []
  for (const sub of [...description.subtopologies].sort((a, b) => a.id - b.id)) {
    const seenStores = new Set<string>()
    for (const node of sub.nodes) {
      if (node.kind === 'source') {
        const topics = node.topics ?? []
        for (const topic of topics) sources.push({ topic, subtopology: sub.id, lag: lagByTopic.get(topic), rate: rateOf(sub.id) })
      }
      for (const store of node.stores ?? []) {
        if (seenStores.has(store)) continue
        seenStores.add(store)
        stores.push({ store, subtopology: sub.id, restored: restored.get(sub.id), remaining: remaining.get(sub.id) })
      }
      const rate = nodeRate.get(node.name)
      if (rate !== undefined) processors.push({ name: node.name, subtopology: sub.id, rate })
    }
  }
  return { takenAt: now, sources, stores, processors }
}

function formatRate(rate: number | undefined): string {
  if (rate === undefined) return '-'
  return rate >= 100 ? `${Math.round(rate)}/s` : `${rate.toFixed(1)}/s`
}

function formatRestore(s: LiveStore): string {
  if (s.restored === undefined && s.remaining === undefined) return '-'
  const done = s.restored ?? 0
  const total = done + (s.remaining ?? 0)
  if ((s.remaining ?? 0) === 0) return `restored ${done}/${total}`
  return `restoring ${done}/${total} (${Math.floor((100 * done) / total)}%)`
}

/** The snapshot as Mermaid annotations: `lag N · R/s` per topic (`-` when unknown, the rate only when known), restore progress per store, rate per node. */
export function liveAnnotations(snapshot: LiveTopologySnapshot): TopologyAnnotations {
  const sources: Record<string, string> = {}
  for (const s of snapshot.sources) sources[s.topic] = `lag ${s.lag ?? '-'}` + (s.rate === undefined ? '' : ` · ${formatRate(s.rate)}`)
  const stores: Record<string, string> = {}
  for (const s of snapshot.stores) stores[s.store] = formatRestore(s)
  const processors: Record<string, string> = {}
  for (const p of snapshot.processors) processors[p.name] = formatRate(p.rate)
  return { sources, stores, processors }
}

/** The snapshot as a fixed-width table: sub-topology, node, lag, rate, restore. */
export function liveTopologyTable(snapshot: LiveTopologySnapshot): string {
  const rows: string[][] = [['sub', 'node', 'lag', 'rate', 'restore']]
  const subs = [...new Set([...snapshot.sources, ...snapshot.stores, ...snapshot.processors].map((x) => x.subtopology))].sort(
    (a, b) => a - b,
  )
  for (const sub of subs) {
    for (const s of snapshot.sources.filter((x) => x.subtopology === sub))
      rows.push([String(sub), `topic ${s.topic}`, s.lag === undefined ? '-' : String(s.lag), formatRate(s.rate), ''])
    for (const p of snapshot.processors.filter((x) => x.subtopology === sub)) rows.push([String(sub), p.name, '', formatRate(p.rate), ''])
    for (const s of snapshot.stores.filter((x) => x.subtopology === sub))
      rows.push([String(sub), `store ${s.store}`, '', '', formatRestore(s)])
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  const right = new Set([2, 3])
  return (
    rows
      .map((r) =>
        r
          .map((cell, c) => (right.has(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  )
}
