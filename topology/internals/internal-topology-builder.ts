/**
 * The logical processor graph every DSL call writes into (Kafka Streams: `InternalTopologyBuilder`
 * plus the naming half of `InternalStreamsBuilder`).
 *
 * DSL engineers use this small API:
 * - {@link InternalTopologyBuilder.newProcessorName} / {@link InternalTopologyBuilder.newStoreName}:
 *   `KSTREAM-FILTER-0000000003`, `KSTREAM-AGGREGATE-STATE-STORE-0000000004` (ONE counter per
 *   builder, shared by processors and stores, exactly as Kafka Streams numbers them);
 * - {@link InternalTopologyBuilder.addSource}, {@link InternalTopologyBuilder.addProcessor},
 *   {@link InternalTopologyBuilder.addSink}: nodes and parent → child edges;
 * - {@link InternalTopologyBuilder.addStateStore} + {@link InternalTopologyBuilder.connectProcessorAndStores}:
 *   stores and which processors use them (processors sharing a store end up in one sub-topology);
 * - {@link InternalTopologyBuilder.addRepartitionTopic}: an internal topic, prefixed with the
 *   application id at `resolve()` time; {@link InternalTopologyBuilder.addRepartition} wires the
 *   standard sink → topic → source pair;
 * - {@link InternalTopologyBuilder.copartition}: source nodes whose topics must be co-partitioned (joins);
 * - {@link InternalTopologyBuilder.addGlobalStore}: a global store (GlobalKTable, `addGlobalStore`).
 *
 * The builder is the only mutable object of the DSL: DSL objects (KStream, KTable, ...) are
 * immutable handles naming a node of this graph.
 */
import { TopologyError } from '../errors.js'
import type { Serde } from '../serde.js'
import type { ProcessorSupplier, StreamPartitioner, TopicNameExtractor } from '../processor/types.js'
import type { StoreDef } from '../state/types.js'
import type { SourceNodeDef } from '../engine/types.js'
import { passThroughSupplier } from '../processors/stateless.js'

/** Suffix of repartition topics (Kafka Streams: `KStreamImpl.REPARTITION_TOPIC_SUFFIX`). */
export const REPARTITION_TOPIC_SUFFIX = '-repartition'
/** Suffix of changelog topics. */
export const CHANGELOG_TOPIC_SUFFIX = '-changelog'

/**
 * A source node as registered in the builder: the {@link SourceNodeDef} it becomes at build, with
 * raw topic names (internal ones not yet prefixed) and no children yet.
 */
export interface BuilderSourceNode extends Omit<SourceNodeDef, 'children'> {
  /** True for the source of a global store. */
  readonly global: boolean
}

/** A processor node as registered in the builder. */
export interface BuilderProcessorNode {
  readonly type: 'processor'
  readonly name: string
  readonly supplier: ProcessorSupplier<any, any, any, any>
  readonly parents: ReadonlyArray<string>
  /** Connected store names (mutable until build: stores may be connected later). */
  readonly stores: Set<string>
  readonly global: boolean
}

/** A sink node as registered in the builder. */
export interface BuilderSinkNode {
  readonly type: 'sink'
  readonly name: string
  readonly topic: string | TopicNameExtractor<any, any>
  readonly parents: ReadonlyArray<string>
  readonly keySerde?: Serde<any>
  readonly valueSerde?: Serde<any>
  readonly partitioner?: StreamPartitioner<any, any>
  /**
   * A side output: the sink receives only the records its parent forwards to it by name
   * (`context.forward(record, sinkName)`), never the parent's plain `forward` (late records of a
   * windowed aggregation or join go to one this way). @defaultValue false
   */
  readonly sideOutput?: boolean
  readonly global: false
}

export type BuilderNode = BuilderSourceNode | BuilderProcessorNode | BuilderSinkNode

/** A repartition topic registered by the DSL (raw name, e.g. `KSTREAM-AGGREGATE-STATE-STORE-0000000002-repartition`). */
export interface RepartitionTopicSpec {
  readonly name: string
  /** Fixed partition count (Repartitioned.numberOfPartitions); undefined = as the upstream sources. */
  readonly numPartitions?: number
  /** Extra topic configs. */
  readonly config?: Readonly<Record<string, string>>
}

/** Options of {@link InternalTopologyBuilder.addSource}: the source node's fields. */
export interface AddSourceOptions extends Omit<BuilderSourceNode, 'type' | 'topics' | 'global'> {
  /** Topic names (mutually exclusive with `pattern`). */
  readonly topics?: ReadonlyArray<string>
}

/** Options of {@link InternalTopologyBuilder.addSink}: the sink node's fields. */
export type AddSinkOptions = Omit<BuilderSinkNode, 'type' | 'global'>

/** Options of {@link InternalTopologyBuilder.addRepartition}. */
export interface AddRepartitionOptions {
  /** Parent node of the repartition sink. */
  readonly parent: string
  /** Topic name without the application id; `-repartition` is appended if missing. */
  readonly topicPrefix: string
  readonly keySerde?: Serde<any>
  readonly valueSerde?: Serde<any>
  readonly partitioner?: StreamPartitioner<any, any>
  readonly numPartitions?: number
  /**
   * Insert the pass-through `KSTREAM-FILTER-` node between parent and sink, as Kafka Streams does
   * for KStream repartitions. KGroupedTable repartitions have none. @defaultValue true
   */
  readonly withFilter?: boolean
  /** Explicit sink/source names (KGroupedTable with `Named`). */
  readonly sinkName?: string
  readonly sourceName?: string
}

/** What {@link InternalTopologyBuilder.addRepartition} created. */
export interface RepartitionNodes {
  readonly topic: string
  readonly sinkName: string
  readonly filterName?: string
  /** The new source node: the parent of whatever consumes the repartitioned records. */
  readonly sourceName: string
}

/** A global store registration. */
export interface BuilderGlobalStore {
  readonly store: StoreDef
  readonly sourceName: string
  readonly processorName: string
  readonly topic: string
}

interface StoreEntry {
  def: StoreDef
  /** Lazily materialized stores (KTable sources) are only part of the topology once `materialize`d. */
  lazy: { materialized: boolean } | undefined
  global: boolean
}

function pad10(n: number): string {
  return String(n).padStart(10, '0')
}

function requireName(value: unknown, parameter: string, method: string): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TopologyError(`${method}: parameter '${parameter}' must be a non-empty string`)
  }
}

/**
 * The logical graph (see the module comment). Build it through the DSL (`StreamsBuilder`), or
 * directly for hand-written Processor API topologies via `Topology`.
 */
export class InternalTopologyBuilder {
  private index = 0
  /** Nodes in insertion order (this order numbers the sub-topologies). */
  readonly nodes = new Map<string, BuilderNode>()
  private readonly storeEntries = new Map<string, StoreEntry>()
  private readonly topicToSource = new Map<string, string>()
  private readonly repartitionTopics = new Map<string, RepartitionTopicSpec>()
  private readonly globalStoreList: BuilderGlobalStore[] = []
  private readonly copartitionSourceGroups: Array<ReadonlySet<string>> = []

  /** Generates the next processor name: `prefix` + 10-digit counter (`KSTREAM-MAP-0000000002`). */
  newProcessorName(prefix: string): string {
    return prefix + pad10(this.index++)
  }

  /** Generates the next store name: `prefix` + `STATE-STORE-` + 10-digit counter. */
  newStoreName(prefix: string): string {
    return prefix + 'STATE-STORE-' + pad10(this.index++)
  }

  /** Whether a node with this name exists. */
  hasNode(name: string): boolean {
    return this.nodes.has(name)
  }

  private checkNewNode(name: string, method: string): void {
    requireName(name, 'name', method)
    if (this.nodes.has(name)) throw new TopologyError(`${method}: processor '${name}' is already added`)
  }

  private checkParents(name: string, parents: ReadonlyArray<string>, method: string): void {
    if (!Array.isArray(parents) || parents.length === 0) {
      throw new TopologyError(`${method}: parameter 'parentNames' must name at least one parent of '${name}'`)
    }
    for (const p of parents) {
      const node = this.nodes.get(p)
      if (!node) throw new TopologyError(`${method}: parent processor '${p}' of '${name}' is not added yet`)
      if (node.type === 'sink') throw new TopologyError(`${method}: sink '${p}' cannot be used as a parent of '${name}'`)
      if (p === name) throw new TopologyError(`${method}: processor '${name}' cannot be its own parent`)
    }
  }

  /**
   * Adds a source node reading `topics` (or `pattern`). Throws `TopologyError` if the name is
   * taken, no topic is given, or a topic is already read by another source.
   */
  addSource(options: AddSourceOptions, global = false): void {
    this.checkNewNode(options.name, 'addSource')
    const topics = options.topics ?? []
    if (options.pattern === undefined) {
      if (!Array.isArray(topics) || topics.length === 0) {
        throw new TopologyError(`addSource: parameter 'topics' must name at least one topic for source '${options.name}'`)
      }
    } else if (!(options.pattern instanceof RegExp)) {
      throw new TopologyError(`addSource: parameter 'pattern' must be a RegExp for source '${options.name}'`)
    } else if (topics.length > 0) {
      throw new TopologyError(`addSource: source '${options.name}' takes either 'topics' or 'pattern', not both`)
    }
    for (const t of topics) {
      requireName(t, 'topics', 'addSource')
      const other = this.topicToSource.get(t)
      if (other !== undefined) {
        throw new TopologyError(`addSource: topic '${t}' has already been registered by source '${other}'`)
      }
    }
    for (const t of topics) this.topicToSource.set(t, options.name)
    this.nodes.set(options.name, {
      type: 'source',
      name: options.name,
      topics: [...topics],
      global,
      ...(options.pattern !== undefined ? { pattern: options.pattern } : {}),
      ...(options.keySerde !== undefined ? { keySerde: options.keySerde } : {}),
      ...(options.valueSerde !== undefined ? { valueSerde: options.valueSerde } : {}),
      ...(options.timestampExtractor !== undefined ? { timestampExtractor: options.timestampExtractor } : {}),
      ...(options.offsetReset !== undefined ? { offsetReset: options.offsetReset } : {}),
    })
  }

  /**
   * Adds a processor node with the given parents and connects it to `storeNames` (stores may also
   * be added and connected later, before `build()`).
   */
  addProcessor(
    name: string,
    supplier: ProcessorSupplier<any, any, any, any>,
    parentNames: ReadonlyArray<string>,
    storeNames: ReadonlyArray<string> = [],
  ): void {
    this.checkNewNode(name, 'addProcessor')
    if (typeof supplier !== 'function') {
      throw new TopologyError(`addProcessor: parameter 'supplier' of '${name}' must be a function returning a Processor`)
    }
    this.checkParents(name, parentNames, 'addProcessor')
    this.nodes.set(name, { type: 'processor', name, supplier, parents: [...parentNames], stores: new Set(), global: false })
    if (storeNames.length) this.connectProcessorAndStores(name, storeNames)
  }

  /** Adds a sink node writing to a fixed topic or a per-record topic. */
  addSink(options: AddSinkOptions): void {
    this.checkNewNode(options.name, 'addSink')
    const { topic } = options
    if (typeof topic === 'string') {
      if (topic.length === 0)
        throw new TopologyError(`addSink: parameter 'topic' of sink '${options.name}' must be a non-empty string or a TopicNameExtractor`)
    } else if (typeof topic !== 'function') {
      throw new TopologyError(`addSink: parameter 'topic' of sink '${options.name}' must be a non-empty string or a TopicNameExtractor`)
    }
    this.checkParents(options.name, options.parents, 'addSink')
    this.nodes.set(options.name, {
      type: 'sink',
      name: options.name,
      topic,
      parents: [...options.parents],
      global: false,
      ...(options.keySerde !== undefined ? { keySerde: options.keySerde } : {}),
      ...(options.valueSerde !== undefined ? { valueSerde: options.valueSerde } : {}),
      ...(options.partitioner !== undefined ? { partitioner: options.partitioner } : {}),
      ...(options.sideOutput === true ? { sideOutput: true } : {}),
    })
  }

  /**
   * Registers a store. With `lazy`, the store only becomes part of the topology once
   * {@link materializeStore} is called (KTable sources materialize on demand, as in Kafka Streams).
   * Throws `TopologyError` if the name is already used.
   */
  addStateStore(def: StoreDef, options: { lazy?: boolean; processorNames?: ReadonlyArray<string> } = {}): void {
    if (def === null || typeof def !== 'object') throw new TopologyError(`addStateStore: parameter 'storeDef' must be a StoreDef`)
    requireName(def.name, 'storeDef.name', 'addStateStore')
    if (this.storeEntries.has(def.name)) {
      throw new TopologyError(`addStateStore: a state store named '${def.name}' has already been added`)
    }
    this.storeEntries.set(def.name, { def, lazy: options.lazy ? { materialized: false } : undefined, global: false })
    for (const p of options.processorNames ?? []) this.connectProcessorAndStores(p, [def.name])
  }

  /** Marks a lazy store as materialized (no-op for eager stores). */
  materializeStore(storeName: string): void {
    const entry = this.storeEntries.get(storeName)
    if (!entry) throw new TopologyError(`materializeStore: state store '${storeName}' is not added yet`)
    if (entry.lazy) entry.lazy.materialized = true
  }

  /** Whether a store is (or will be) part of the topology: registered and, if lazy, materialized. */
  isMaterialized(storeName: string): boolean {
    const entry = this.storeEntries.get(storeName)
    return entry !== undefined && (entry.lazy === undefined || entry.lazy.materialized)
  }

  /** The StoreDef registered under `name`, if any. */
  storeDef(name: string): StoreDef | undefined {
    return this.storeEntries.get(name)?.def
  }

  /** Replaces a registered store's definition (e.g. a DSL operation refines serdes). */
  updateStoreDef(def: StoreDef): void {
    const entry = this.storeEntries.get(def.name)
    if (!entry) throw new TopologyError(`updateStoreDef: state store '${def.name}' is not added yet`)
    entry.def = def
  }

  /**
   * Lets `processorName` use `storeNames` (Kafka Streams: `connectProcessorAndStateStores`).
   * Global store names are accepted and ignored (every processor can read global stores).
   */
  connectProcessorAndStores(processorName: string, storeNames: ReadonlyArray<string>): void {
    const node = this.nodes.get(processorName)
    if (!node) throw new TopologyError(`connectProcessorAndStores: processor '${processorName}' is not added yet`)
    if (node.type !== 'processor')
      throw new TopologyError(`connectProcessorAndStores: '${processorName}' is a ${node.type}, only processors can use stores`)
    for (const s of storeNames) {
      requireName(s, 'storeNames', 'connectProcessorAndStores')
      const entry = this.storeEntries.get(s)
      if (!entry) throw new TopologyError(`connectProcessorAndStores: state store '${s}' is not added yet (processor '${processorName}')`)
      if (entry.global) continue // global stores are readable from every processor; nothing to connect
      node.stores.add(s)
    }
  }

  /**
   * Registers a repartition topic (raw name; the application id is prefixed at `resolve()`).
   * Registering the same name twice keeps the first registration.
   */
  addRepartitionTopic(spec: RepartitionTopicSpec): void {
    requireName(spec.name, 'name', 'addRepartitionTopic')
    if (spec.numPartitions !== undefined && (!Number.isInteger(spec.numPartitions) || spec.numPartitions < 1)) {
      throw new TopologyError(`addRepartitionTopic: parameter 'numPartitions' of '${spec.name}' must be a positive integer`)
    }
    if (!this.repartitionTopics.has(spec.name)) this.repartitionTopics.set(spec.name, spec)
  }

  /** Whether `topic` (raw name) is an internal topic. */
  isInternalTopic(topic: string): boolean {
    return this.repartitionTopics.has(topic)
  }

  /**
   * Wires a repartition exactly as Kafka Streams' `createRepartitionedSource` does: burns three
   * names (sink, filter, source) from the counter; if `topicPrefix` is itself a generated name
   * (`KSTREAM...-0123456789`) the nodes take the generated names, otherwise they are called
   * `<topic>-sink`, `<topic>-filter`, `<topic>-source`. Returns the new source to hang the
   * downstream processor on.
   */
  addRepartition(options: AddRepartitionOptions): RepartitionNodes {
    const topic = options.topicPrefix.endsWith(REPARTITION_TOPIC_SUFFIX)
      ? options.topicPrefix
      : options.topicPrefix + REPARTITION_TOPIC_SUFFIX
    const withFilter = options.withFilter ?? true
    let sinkName: string
    let filterName: string | undefined
    let sourceName: string
    if (withFilter) {
      const genSink = this.newProcessorName('KSTREAM-SINK-')
      const genFilter = this.newProcessorName('KSTREAM-FILTER-')
      const genSource = this.newProcessorName('KSTREAM-SOURCE-')
      if (/^KSTREAM.*-[0-9]{10}$/.test(options.topicPrefix)) {
        sinkName = genSink
        filterName = genFilter
        sourceName = genSource
      } else {
        sinkName = topic + '-sink'
        filterName = topic + '-filter'
        sourceName = topic + '-source'
      }
    } else {
      sinkName = options.sinkName ?? this.newProcessorName('KSTREAM-SINK-')
      sourceName = options.sourceName ?? this.newProcessorName('KSTREAM-SOURCE-')
    }
    this.addRepartitionTopic({ name: topic, ...(options.numPartitions !== undefined ? { numPartitions: options.numPartitions } : {}) })
    let sinkParent = options.parent
    if (filterName !== undefined) {
      this.addProcessor(filterName, passThroughSupplier(), [options.parent])
      sinkParent = filterName
    }
    this.addSink({
      name: sinkName,
      topic,
      parents: [sinkParent],
      ...(options.keySerde !== undefined ? { keySerde: options.keySerde } : {}),
      ...(options.valueSerde !== undefined ? { valueSerde: options.valueSerde } : {}),
      ...(options.partitioner !== undefined ? { partitioner: options.partitioner } : {}),
    })
    this.addSource({
      name: sourceName,
      topics: [topic],
      ...(options.keySerde !== undefined ? { keySerde: options.keySerde } : {}),
      ...(options.valueSerde !== undefined ? { valueSerde: options.valueSerde } : {}),
    })
    return { topic, sinkName, sourceName, ...(filterName !== undefined ? { filterName } : {}) }
  }

  /**
   * Declares that the topics of these source nodes must be co-partitioned (joins). Names may be
   * any nodes; only source nodes count.
   */
  copartition(sourceNodeNames: Iterable<string>): void {
    const set = new Set<string>()
    for (const n of sourceNodeNames) if (this.nodes.get(n)?.type === 'source') set.add(n)
    if (set.size > 1) this.copartitionSourceGroups.push(set)
  }

  /** Co-partition groups as sets of raw topic names. */
  copartitionGroups(): ReadonlyArray<ReadonlySet<string>> {
    return this.copartitionSourceGroups.map((group) => {
      const topics = new Set<string>()
      for (const n of group) {
        const node = this.nodes.get(n)
        if (node?.type === 'source') for (const t of node.topics) topics.add(t)
      }
      return topics
    })
  }

  /**
   * Adds a global store: a source reading all partitions of `topic` and a processor that applies
   * each record to `store` (logging is always disabled: the topic is the changelog).
   */
  addGlobalStore(
    store: StoreDef,
    source: Omit<AddSourceOptions, 'topics' | 'pattern'> & { topic: string },
    processorName: string,
    supplier: ProcessorSupplier<any, any, never, never>,
  ): void {
    if (store === null || typeof store !== 'object') throw new TopologyError(`addGlobalStore: parameter 'storeDef' must be a StoreDef`)
    requireName(store.name, 'storeDef.name', 'addGlobalStore')
    requireName(source.topic, 'topic', 'addGlobalStore')
    if (this.storeEntries.has(store.name)) {
      throw new TopologyError(`addGlobalStore: a state store named '${store.name}' has already been added`)
    }
    this.checkNewNode(processorName, 'addGlobalStore')
    if (typeof supplier !== 'function')
      throw new TopologyError(`addGlobalStore: parameter 'stateUpdateSupplier' must be a function returning a Processor`)
    const { topic, ...rest } = source
    this.addSource({ ...rest, topics: [topic] }, true)
    const def: StoreDef = { ...store, loggingEnabled: false }
    this.storeEntries.set(store.name, { def, lazy: undefined, global: true })
    this.nodes.set(processorName, {
      type: 'processor',
      name: processorName,
      supplier,
      parents: [source.name],
      stores: new Set([store.name]),
      global: true,
    })
    this.globalStoreList.push({ store: def, sourceName: source.name, processorName, topic })
  }

  /** Registered global stores. */
  globalStores(): ReadonlyArray<BuilderGlobalStore> {
    return this.globalStoreList
  }

  /** Whether `name` is a global store. */
  isGlobalStore(name: string): boolean {
    return this.storeEntries.get(name)?.global === true
  }

  /** Stores that are part of the topology (eager, or lazy and materialized), in registration order. */
  stores(): ReadonlyArray<StoreDef> {
    const out: StoreDef[] = []
    for (const e of this.storeEntries.values()) if (e.lazy === undefined || e.lazy.materialized) out.push(e.def)
    return out
  }

  /** Repartition topics, raw names. */
  repartitionTopicSpecs(): ReadonlyArray<RepartitionTopicSpec> {
    return [...this.repartitionTopics.values()]
  }

  /** Store names connected to a processor, restricted to materialized stores. */
  effectiveStores(node: BuilderProcessorNode): string[] {
    return [...node.stores].filter((s) => this.isMaterialized(s))
  }

  /**
   * Children of every node, in the order children were added.
   */
  childrenMap(): Map<string, string[]> {
    const children = new Map<string, string[]>()
    for (const n of this.nodes.values()) children.set(n.name, [])
    for (const n of this.nodes.values()) {
      if (n.type === 'source') continue
      for (const p of n.parents) children.get(p)!.push(n.name)
    }
    return children
  }

  /**
   * Node groups (Kafka Streams: `makeNodeGroups`): connected components of the graph, where
   * processors sharing a store are connected. Ids follow the insertion order of each group's
   * first node; global store groups take ids too (Kafka Streams numbers them alike).
   */
  nodeGroups(): Array<{ id: number; nodes: string[]; global: boolean }> {
    const parent = new Map<string, string>()
    const find = (x: string): string => {
      let r = x
      while (parent.get(r) !== r) r = parent.get(r)!
      let c = x
      while (parent.get(c) !== r) {
        const next = parent.get(c)!
        parent.set(c, r)
        c = next
      }
      return r
    }
    const union = (a: string, b: string): void => {
      const ra = find(a)
      const rb = find(b)
      if (ra !== rb) parent.set(rb, ra)
    }
    for (const n of this.nodes.keys()) parent.set(n, n)
    const storeUser = new Map<string, string>()
    for (const n of this.nodes.values()) {
      if (n.type !== 'source') for (const p of n.parents) union(n.name, p)
      if (n.type === 'processor') {
        for (const s of n.stores) {
          if (!this.isMaterialized(s)) continue
          const first = storeUser.get(s)
          if (first === undefined) storeUser.set(s, n.name)
          else union(first, n.name)
        }
      }
    }
    const groups = new Map<string, { id: number; nodes: string[]; global: boolean }>()
    let id = 0
    for (const n of this.nodes.values()) {
      const root = find(n.name)
      let g = groups.get(root)
      if (!g) {
        g = { id: id++, nodes: [], global: false }
        groups.set(root, g)
      }
      g.nodes.push(n.name)
      if (n.global) g.global = true
    }
    return [...groups.values()]
  }

  /** Checks the graph before building: every connected store exists. */
  validate(): void {
    for (const n of this.nodes.values()) {
      if (n.type !== 'processor') continue
      for (const s of n.stores) {
        if (!this.storeEntries.has(s)) throw new TopologyError(`build: processor '${n.name}' uses state store '${s}' which is not added`)
      }
    }
  }
}
