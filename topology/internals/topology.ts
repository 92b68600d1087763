/**
 * `Topology`: the built processor graph (Kafka Streams: `Topology`). Made by
 * `StreamsBuilder.build()`, or by hand with the Processor API methods below.
 */
import { TopologyError } from '../errors.js'
import type { Serde } from '../serde.js'
import type { ProcessorSupplier, StreamPartitioner, TimestampExtractor, TopicNameExtractor } from '../processor/types.js'
import type { StoreDef } from '../state/types.js'
import type {
  GlobalStoreDef,
  InternalTopicDef,
  NodeDef,
  ProcessorNodeDef,
  SinkNodeDef,
  SourceNodeDef,
  SubtopologyDef,
  TopologyDef,
} from '../engine/types.js'
import { CHANGELOG_TOPIC_SUFFIX, InternalTopologyBuilder, type BuilderNode } from './internal-topology-builder.js'
import { describeTopology, type MermaidOptions, type TopologyDescription } from './describe.js'

/** Something that yields a {@link StoreDef} (`Stores.keyValueStoreBuilder(...)` etc.), or a StoreDef itself. */
export type StoreDefSource = StoreDef | { build(): StoreDef }

/** Resolves a {@link StoreDefSource} to its StoreDef. */
export function toStoreDef(source: StoreDefSource, parameter = 'storeBuilder'): StoreDef {
  if (source === null || source === undefined || typeof source !== 'object') {
    throw new TopologyError(`parameter '${parameter}' must be a StoreBuilder or a StoreDef`)
  }
  return 'build' in source && typeof source.build === 'function' ? source.build() : (source as StoreDef)
}

/** Additional changelog retention of window/session stores (Kafka Streams: `windowstore.changelog.additional.retention.ms`, 1 day). */
export const WINDOW_CHANGELOG_ADDITIONAL_RETENTION_MS = 24 * 60 * 60 * 1000

/** Options of {@link Topology.addSource}. */
export interface TopologySourceOptions<K = unknown, V = unknown> {
  readonly keySerde?: Serde<K>
  readonly valueSerde?: Serde<V>
  readonly timestampExtractor?: TimestampExtractor<K, V>
  readonly offsetReset?: 'earliest' | 'latest'
}

/** Options of {@link Topology.addSink}. */
export interface TopologySinkOptions<K = unknown, V = unknown> {
  readonly keySerde?: Serde<K>
  readonly valueSerde?: Serde<V>
  readonly partitioner?: StreamPartitioner<K, V>
}

/**
 * A processor topology. `describe()` prints Kafka Streams' description, `toMermaid()` a
 * flowchart, and `resolve(applicationId)` yields the {@link TopologyDef} that the runtime and
 * the `TopologyTestDriver` run.
 *
 * @example Processor API
 * ```ts
 * const topology = new Topology()
 *   .addSource('in', 'input-topic', { keySerde: Serdes.String(), valueSerde: Serdes.String() })
 *   .addProcessor('upper', () => new UpperCaser(), 'in')
 *   .addSink('out', 'output-topic', 'upper')
 * ```
 */
export class Topology {
  /** @internal the graph; shared with the StreamsBuilder that built it. */
  readonly internalBuilder: InternalTopologyBuilder

  /** An empty topology, for the Processor API (`addSource`, `addProcessor`, `addSink`). */
  constructor()
  /** @internal the topology of a StreamsBuilder's graph. */
  constructor(internalBuilder: InternalTopologyBuilder)
  constructor(internalBuilder?: InternalTopologyBuilder) {
    this.internalBuilder = internalBuilder ?? new InternalTopologyBuilder()
  }

  /**
   * Adds a source node reading `topics` (one name, several, or a RegExp subscription).
   * Throws `TopologyError` when the name is taken or a topic is already read by another source.
   */
  addSource<K = unknown, V = unknown>(
    name: string,
    topics: string | ReadonlyArray<string> | RegExp,
    options: TopologySourceOptions<K, V> = {},
  ): this {
    if (topics instanceof RegExp) this.internalBuilder.addSource({ name, pattern: topics, ...options })
    else this.internalBuilder.addSource({ name, topics: typeof topics === 'string' ? [topics] : [...(topics ?? [])], ...options })
    return this
  }

  /** Adds a processor node under `parentNames`. */
  addProcessor<KIn = any, VIn = any, KOut = any, VOut = any>(
    name: string,
    supplier: ProcessorSupplier<KIn, VIn, KOut, VOut>,
    ...parentNames: string[]
  ): this {
    this.internalBuilder.addProcessor(name, supplier, parentNames)
    return this
  }

  /**
   * Adds a sink writing to `topic` (or a topic chosen per record) under `parentNames`. The third
   * argument may be a {@link TopologySinkOptions} object (serdes, partitioner).
   */
  addSink<K = unknown, V = unknown>(
    name: string,
    topic: string | TopicNameExtractor<K, V>,
    ...rest: Array<string | TopologySinkOptions<K, V>>
  ): this {
    let options: TopologySinkOptions<K, V> = {}
    const parents: string[] = []
    for (const r of rest) {
      if (typeof r === 'string') parents.push(r)
      else if (r && typeof r === 'object') options = r
    }
    this.internalBuilder.addSink({ name, topic, parents, ...options })
    return this
  }

  /** Adds a store and connects it to `processorNames`. Throws `TopologyError` if the name is taken. */
  addStateStore(storeBuilder: StoreDefSource, ...processorNames: string[]): this {
    this.internalBuilder.addStateStore(toStoreDef(storeBuilder), { processorNames })
    return this
  }

  /** Lets `processorName` use the named stores. */
  connectProcessorAndStateStores(processorName: string, ...storeNames: string[]): this {
    this.internalBuilder.connectProcessorAndStores(processorName, storeNames)
    return this
  }

  /**
   * Adds a global store: every instance reads all partitions of `topic` and `stateUpdateSupplier`'s
   * processor applies each record to the store (logging disabled: the topic is the changelog).
   */
  addGlobalStore<K = unknown, V = unknown>(
    storeBuilder: StoreDefSource,
    sourceName: string,
    topic: string,
    options: TopologySourceOptions<K, V>,
    processorName: string,
    stateUpdateSupplier: ProcessorSupplier<K, V, never, never>,
  ): this {
    this.internalBuilder.addGlobalStore(
      toStoreDef(storeBuilder),
      { name: sourceName, topic, ...options },
      processorName,
      stateUpdateSupplier,
    )
    return this
  }

  /** Kafka Streams' topology description; `String(topology.describe())` prints the text format. */
  describe(): TopologyDescription {
    this.internalBuilder.validate()
    return describeTopology(this.internalBuilder)
  }

  /**
   * Mermaid flowchart of the topology (same as `describe().toMermaid(options)`); `annotations`
   * add a line of text under named topics, stores and nodes (see `liveTopology` for live values).
   */
  toMermaid(options?: MermaidOptions): string {
    return this.describe().toMermaid(options)
  }

  /**
   * Resolves the topology for an application: internal topic names get the `<applicationId>-`
   * prefix; lists repartition topics (`cleanup.policy=delete`) and changelog topics
   * (`compact` for key-value stores, `compact,delete` + `retention.ms` for window/session stores).
   * Throws `TopologyError` for an invalid application id or an inconsistent graph.
   */
  resolve(applicationId: string): TopologyDef {
    if (typeof applicationId !== 'string' || applicationId.length === 0) {
      throw new TopologyError(`resolve: parameter 'applicationId' must be a non-empty string`)
    }
    const b = this.internalBuilder
    b.validate()
    const prefix = (topic: string): string => (b.isInternalTopic(topic) ? `${applicationId}-${topic}` : topic)
    const children = b.childrenMap()
    const toDef = (node: BuilderNode): NodeDef => {
      const kids = children.get(node.name) ?? []
      if (node.type === 'source') {
        const def: SourceNodeDef = {
          type: 'source',
          name: node.name,
          topics: node.topics.map(prefix),
          children: kids,
          ...(node.pattern !== undefined ? { pattern: node.pattern } : {}),
          ...(node.keySerde !== undefined ? { keySerde: node.keySerde } : {}),
          ...(node.valueSerde !== undefined ? { valueSerde: node.valueSerde } : {}),
          ...(node.timestampExtractor !== undefined ? { timestampExtractor: node.timestampExtractor } : {}),
          ...(node.offsetReset !== undefined ? { offsetReset: node.offsetReset } : {}),
        }
        return def
      }
      if (node.type === 'processor') {
        const def: ProcessorNodeDef = {
          type: 'processor',
          name: node.name,
          supplier: node.supplier,
          stores: b.effectiveStores(node),
          children: kids,
        }
        return def
      }
      const def: SinkNodeDef = {
        type: 'sink',
        name: node.name,
        topic: typeof node.topic === 'string' ? prefix(node.topic) : node.topic,
        children: kids,
        ...(node.keySerde !== undefined ? { keySerde: node.keySerde } : {}),
        ...(node.valueSerde !== undefined ? { valueSerde: node.valueSerde } : {}),
        ...(node.partitioner !== undefined ? { partitioner: node.partitioner } : {}),
        ...(node.sideOutput === true ? { sideOutput: true } : {}),
      }
      return def
    }

    const subtopologies: SubtopologyDef[] = []
    const globalStores: GlobalStoreDef[] = []
    for (const group of b.nodeGroups()) {
      const nodes = group.nodes.map((n) => b.nodes.get(n)!)
      if (group.global) {
        const source = nodes.find((n) => n.type === 'source')!
        const processor = nodes.find((n) => n.type === 'processor')!
        const global = b.globalStores().find((g) => g.processorName === processor.name)!
        globalStores.push({ store: global.store, source: toDef(source) as SourceNodeDef, processor: toDef(processor) as ProcessorNodeDef })
        continue
      }
      const ordered = [...nodes.filter((n) => n.type === 'source'), ...nodes.filter((n) => n.type !== 'source')]
      const defs = ordered.map(toDef)
      const sourceTopics: string[] = []
      const sinkTopics: string[] = []
      const stores = new Set<string>()
      for (const d of defs) {
        if (d.type === 'source') sourceTopics.push(...d.topics)
        else if (d.type === 'sink' && typeof d.topic === 'string' && !sinkTopics.includes(d.topic)) sinkTopics.push(d.topic)
        else if (d.type === 'processor') for (const s of d.stores) stores.add(s)
      }
      subtopologies.push({ id: group.id, nodes: defs, sourceTopics, sinkTopics, stores: [...stores] })
    }

    const storeMap = new Map<string, StoreDef>()
    for (const s of b.stores()) storeMap.set(s.name, s)

    const repartitionTopics: InternalTopicDef[] = b.repartitionTopicSpecs().map((spec) => ({
      name: `${applicationId}-${spec.name}`,
      kind: 'repartition' as const,
      ...(spec.numPartitions !== undefined ? { numPartitions: spec.numPartitions } : {}),
      config: { 'cleanup.policy': 'delete', 'segment.bytes': '52428800', ...(spec.config ?? {}) },
    }))

    const changelogTopics: InternalTopicDef[] = []
    for (const s of storeMap.values()) {
      if (!s.loggingEnabled || s.sourceChangelogTopic !== undefined || b.isGlobalStore(s.name)) continue
      const base: Record<string, string> =
        s.type === 'keyValue'
          ? { 'cleanup.policy': 'compact' }
          : { 'cleanup.policy': 'compact,delete', 'retention.ms': String((s.retentionMs ?? 0) + WINDOW_CHANGELOG_ADDITIONAL_RETENTION_MS) }
      changelogTopics.push({
        name: `${applicationId}-${s.name}${CHANGELOG_TOPIC_SUFFIX}`,
        kind: 'changelog',
        config: { ...base, ...s.logConfig },
      })
    }

    const copartitionGroups = this.copartitionGroups(applicationId).map((g) => [...g])
    return { applicationId, subtopologies, stores: storeMap, globalStores, repartitionTopics, changelogTopics, copartitionGroups }
  }

  /** @internal Co-partition groups (fully qualified topic names for `applicationId`); part of {@link Topology.resolve}. */
  copartitionGroups(applicationId: string): ReadonlyArray<ReadonlySet<string>> {
    const b = this.internalBuilder
    return b.copartitionGroups().map((g) => new Set([...g].map((t) => (b.isInternalTopic(t) ? `${applicationId}-${t}` : t))))
  }
}
