/**
 * `Topology.describe()`: Kafka Streams' `TopologyDescription` and its exact `toString()` text,
 * plus a Mermaid flowchart rendering.
 *
 * Kafka Streams prints nodes of a sub-topology ordered by the size of the sub-graph they root
 * (number of paths starting at the node, descending), ties by name; successors/predecessors in
 * the same order. Topic and store lists are Java `HashSet`s, so their order is Java's hash order,
 * which {@link javaHashSetOrder} reproduces so descriptions match Kafka Streams byte for byte.
 */
import type { InternalTopologyBuilder } from './internal-topology-builder.js'

/** A node of a topology description. */
export interface DescribedNode {
  readonly kind: 'source' | 'processor' | 'sink'
  readonly name: string
  /** Names of successor nodes, in description order. */
  readonly successors: ReadonlyArray<string>
  /** Names of predecessor nodes, in description order. */
  readonly predecessors: ReadonlyArray<string>
  /** Source: topic names (Java hash order); undefined for pattern sources. */
  readonly topics?: ReadonlyArray<string>
  /** Source: the subscription pattern. */
  readonly pattern?: RegExp
  /** Processor: connected store names (Java hash order). */
  readonly stores?: ReadonlyArray<string>
  /** Sink: the fixed topic, undefined when chosen per record. */
  readonly topic?: string
  /** Sink: description of the topic name extractor. */
  readonly extractor?: string
}

export interface DescribedSubtopology {
  readonly id: number
  /** Nodes in Kafka Streams' description order. */
  readonly nodes: ReadonlyArray<DescribedNode>
}

export interface DescribedGlobalStore {
  readonly id: number
  readonly source: DescribedNode
  readonly processor: DescribedNode
}

/** Kafka Streams' `TopologyDescription`. `toString()` prints Kafka Streams' exact format. */
export interface TopologyDescription {
  readonly subtopologies: ReadonlyArray<DescribedSubtopology>
  readonly globalStores: ReadonlyArray<DescribedGlobalStore>
  /** Kafka Streams' text format ("Topologies:\n   Sub-topology: 0\n    Source: ..."). */
  toString(): string
  /**
   * A Mermaid `flowchart TD` of the same graph (sub-topologies as subgraphs, topics and stores as
   * shapes). With `annotations`, the named topics, stores and nodes get a second label line; node
   * ids stay the same as without.
   */
  toMermaid(options?: MermaidOptions): string
}

/**
 * Text shown under a node of the Mermaid rendering, as plain data (for example consumer lag or
 * restore progress collected from a running application by `liveTopology` in the runtime).
 * Entries naming no topic, store or node of the topology are ignored.
 */
export interface TopologyAnnotations {
  /** By topic name (source and sink topics as the description names them; patterns as `/regex/`). */
  readonly sources?: Readonly<Record<string, string>>
  /** By state store name. */
  readonly stores?: Readonly<Record<string, string>>
  /** By node name (sources, processors and sinks). */
  readonly processors?: Readonly<Record<string, string>>
}

/** Options of {@link TopologyDescription.toMermaid}. */
export interface MermaidOptions {
  readonly annotations?: TopologyAnnotations
}

/** Java's `String.hashCode()` (UTF-16 code units, 32-bit overflow). */
export function javaStringHash(s: string): number {
  let h = 0
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0
  return h
}

/**
 * Iteration order of a `java.util.HashSet<String>` holding `items` (inserted in array order):
 * by bucket index `(h ^ (h >>> 16)) & (capacity - 1)`, ties in insertion order.
 */
export function javaHashSetOrder(items: Iterable<string>): string[] {
  const unique = [...new Set(items)]
  let capacity = 16
  while (unique.length > capacity * 0.75) capacity *= 2
  const bucket = (s: string): number => {
    const h = javaStringHash(s)
    return (h ^ (h >>> 16)) & (capacity - 1)
  }
  return unique
    .map((s, i) => ({ s, i, b: bucket(s) }))
    .sort((a, b) => a.b - b.b || a.i - b.i)
    .map((x) => x.s)
}

function extractorName(fn: unknown): string {
  const name = typeof fn === 'function' ? fn.name : ''
  return name && name.length > 0 ? name : 'anonymous topic name extractor'
}

/** Builds the description of a builder's graph. */
export function describeTopology(builder: InternalTopologyBuilder): TopologyDescription {
  const subtopologies: DescribedSubtopology[] = []
  const globalStores: DescribedGlobalStore[] = []

  for (const group of builder.nodeGroups()) {
    const inGroup = new Set(group.nodes)
    const { size, successorsOf, predecessorsOf } = simulateKafkaDescription(builder, group.nodes, inGroup)
    const cmp = (a: string, b: string): number => {
      const d = size.get(b)! - size.get(a)!
      if (d !== 0) return d
      return a < b ? -1 : a > b ? 1 : 0
    }
    const describeNode = (name: string): DescribedNode => {
      const node = builder.nodes.get(name)!
      const successors = successorsOf(name)
      const predecessors = predecessorsOf(name)
      if (node.type === 'source') {
        return node.pattern !== undefined && node.topics.length === 0
          ? { kind: 'source', name, successors, predecessors, pattern: node.pattern }
          : { kind: 'source', name, successors, predecessors, topics: javaHashSetOrder(node.topics) }
      }
      if (node.type === 'processor') {
        return { kind: 'processor', name, successors, predecessors, stores: javaHashSetOrder(builder.effectiveStores(node)) }
      }
      return typeof node.topic === 'string'
        ? { kind: 'sink', name, successors, predecessors, topic: node.topic }
        : { kind: 'sink', name, successors, predecessors, extractor: extractorName(node.topic) }
    }
    if (group.global) {
      const sourceName = group.nodes.find((n) => builder.nodes.get(n)?.type === 'source')!
      const processorName = group.nodes.find((n) => n !== sourceName)!
      globalStores.push({ id: group.id, source: describeNode(sourceName), processor: describeNode(processorName) })
    } else {
      subtopologies.push({ id: group.id, nodes: [...group.nodes].sort(cmp).map(describeNode) })
    }
  }

  return {
    subtopologies,
    globalStores,
    toString: () => descriptionToString(subtopologies, globalStores),
    toMermaid: (options?: MermaidOptions) => descriptionToMermaid(subtopologies, globalStores, options?.annotations ?? {}),
  }
}

/**
 * Replays Kafka Streams' `describeSubtopology`: nodes are visited in Java `HashMap` order; for
 * each node and each of its predecessors (in declaration order) the edge is inserted into the
 * predecessor's successor `TreeSet` and the node's predecessor `TreeSet`, then sizes are
 * propagated upwards. The TreeSets compare by the sizes AT INSERTION TIME, so their final order
 * depends on this replay; {@link JavaTreeSet} reproduces `java.util.TreeMap`'s red-black tree.
 */
function simulateKafkaDescription(builder: InternalTopologyBuilder, groupNodes: ReadonlyArray<string>, inGroup: ReadonlySet<string>) {
  const size = new Map<string, number>()
  for (const n of groupNodes) size.set(n, 1)
  const cmp = (a: string, b: string): number => {
    if (a === b) return 0
    const d = size.get(b)! - size.get(a)!
    if (d !== 0) return d
    return a < b ? -1 : a > b ? 1 : 0
  }
  const succ = new Map<string, JavaTreeSet>()
  const pred = new Map<string, JavaTreeSet>()
  for (const n of groupNodes) {
    succ.set(n, new JavaTreeSet(cmp))
    pred.set(n, new JavaTreeSet(cmp))
  }
  const parentsOf = (n: string): ReadonlyArray<string> => {
    const node = builder.nodes.get(n)!
    return node.type === 'source' ? [] : node.parents.filter((p) => inGroup.has(p))
  }
  const updateSize = (n: string, delta: number, seen: Set<string>): void => {
    size.set(n, size.get(n)! + delta)
    for (const p of pred.get(n)!.values()) updateSize(p, delta, seen)
  }
  for (const n of javaHashSetOrder(groupNodes)) {
    for (const p of parentsOf(n)) {
      pred.get(n)!.add(p)
      succ.get(p)!.add(n)
      updateSize(p, size.get(n)!, new Set())
    }
  }
  return {
    size,
    successorsOf: (n: string): string[] => succ.get(n)!.values(),
    predecessorsOf: (n: string): string[] => pred.get(n)!.values(),
  }
}

interface TreeNode {
  key: string
  left: TreeNode | null
  right: TreeNode | null
  parent: TreeNode | null
  black: boolean
}

/**
 * `java.util.TreeSet<String>` with a comparator: the same descent and red-black rebalancing as
 * `TreeMap.put`/`fixAfterInsertion`, so that a comparator whose results change between
 * insertions yields the same iteration order as in Java.
 */
export class JavaTreeSet {
  private root: TreeNode | null = null
  constructor(private readonly compare: (a: string, b: string) => number) {}

  add(key: string): boolean {
    let t = this.root
    if (t === null) {
      this.root = { key, left: null, right: null, parent: null, black: true }
      return true
    }
    let parent: TreeNode
    let c: number
    do {
      parent = t
      c = this.compare(key, t.key)
      if (c < 0) t = t.left
      else if (c > 0) t = t.right
      else return false
    } while (t !== null)
    const e: TreeNode = { key, left: null, right: null, parent, black: false }
    if (c < 0) parent.left = e
    else parent.right = e
    this.fixAfterInsertion(e)
    return true
  }

  values(): string[] {
    const out: string[] = []
    const walk = (n: TreeNode | null): void => {
      if (n === null) return
      walk(n.left)
      out.push(n.key)
      walk(n.right)
    }
    walk(this.root)
    return out
  }

  private static isBlack(n: TreeNode | null): boolean {
    return n === null ? true : n.black
  }

  private rotateLeft(p: TreeNode | null): void {
    if (p === null) return
    const r = p.right!
    p.right = r.left
    if (r.left !== null) r.left.parent = p
    r.parent = p.parent
    if (p.parent === null) this.root = r
    else if (p.parent.left === p) p.parent.left = r
    else p.parent.right = r
    r.left = p
    p.parent = r
  }

  private rotateRight(p: TreeNode | null): void {
    if (p === null) return
    const l = p.left!
    p.left = l.right
    if (l.right !== null) l.right.parent = p
    l.parent = p.parent
    if (p.parent === null) this.root = l
    else if (p.parent.right === p) p.parent.right = l
    else p.parent.left = l
    l.right = p
    p.parent = l
  }

  private fixAfterInsertion(x: TreeNode): void {
    const parentOf = (n: TreeNode | null): TreeNode | null => (n === null ? null : n.parent)
    const leftOf = (n: TreeNode | null): TreeNode | null => (n === null ? null : n.left)
    const rightOf = (n: TreeNode | null): TreeNode | null => (n === null ? null : n.right)
    const setBlack = (n: TreeNode | null, black: boolean): void => {
      if (n !== null) n.black = black
    }
    let cur: TreeNode | null = x
    cur.black = false
    while (cur !== null && cur !== this.root && !cur.parent!.black) {
      if (parentOf(cur) === leftOf(parentOf(parentOf(cur)))) {
        const y = rightOf(parentOf(parentOf(cur)))
        if (!JavaTreeSet.isBlack(y)) {
          setBlack(parentOf(cur), true)
          setBlack(y, true)
          setBlack(parentOf(parentOf(cur)), false)
          cur = parentOf(parentOf(cur))
        } else {
          if (cur === rightOf(parentOf(cur))) {
            cur = parentOf(cur)
            this.rotateLeft(cur)
          }
          setBlack(parentOf(cur), true)
          setBlack(parentOf(parentOf(cur)), false)
          this.rotateRight(parentOf(parentOf(cur)))
        }
      } else {
        const y = leftOf(parentOf(parentOf(cur)))
        if (!JavaTreeSet.isBlack(y)) {
          setBlack(parentOf(cur), true)
          setBlack(y, true)
          setBlack(parentOf(parentOf(cur)), false)
          cur = parentOf(parentOf(cur))
        } else {
          if (cur === leftOf(parentOf(cur))) {
            cur = parentOf(cur)
            this.rotateRight(cur)
          }
          setBlack(parentOf(cur), true)
          setBlack(parentOf(parentOf(cur)), false)
          this.rotateLeft(parentOf(parentOf(cur)))
        }
      }
    }
    this.root!.black = true
  }
}

function names(list: ReadonlyArray<string>): string {
  return list.length === 0 ? 'none' : list.join(', ')
}

function nodeToString(n: DescribedNode): string {
  switch (n.kind) {
    case 'source': {
      const topics = n.topics !== undefined ? `[${n.topics.join(', ')}]` : n.pattern!.source
      return `Source: ${n.name} (topics: ${topics})\n      --> ${names(n.successors)}`
    }
    case 'processor':
      return `Processor: ${n.name} (stores: [${(n.stores ?? []).join(', ')}])\n      --> ${names(n.successors)}\n      <-- ${names(n.predecessors)}`
    case 'sink':
      return n.topic !== undefined
        ? `Sink: ${n.name} (topic: ${n.topic})\n      <-- ${names(n.predecessors)}`
        : `Sink: ${n.name} (extractor class: ${n.extractor})\n      <-- ${names(n.predecessors)}`
  }
}

function subtopologyToString(s: DescribedSubtopology): string {
  let out = `Sub-topology: ${s.id}\n`
  for (const n of s.nodes) out += `    ${nodeToString(n)}\n`
  return out + '\n'
}

function globalStoreToString(g: DescribedGlobalStore): string {
  return `Sub-topology: ${g.id} for global store (will not generate tasks)\n    ${nodeToString(g.source)}\n    ${nodeToString(g.processor)}\n`
}

function descriptionToString(
  subtopologies: ReadonlyArray<DescribedSubtopology>,
  globalStores: ReadonlyArray<DescribedGlobalStore>,
): string {
  // Kafka Streams interleaves sub-topologies and global stores by id.
  let out = 'Topologies:\n '
  const subs = [...subtopologies].sort((a, b) => a.id - b.id)
  const globals = [...globalStores].sort((a, b) => a.id - b.id)
  let si = 0
  let gi = 0
  let expectedId = 0
  while (si < subs.length && gi < globals.length) {
    out += '  '
    if (subs[si]!.id === expectedId) out += subtopologyToString(subs[si++]!)
    else out += globalStoreToString(globals[gi++]!)
    expectedId++
  }
  while (si < subs.length) out += '  ' + subtopologyToString(subs[si++]!)
  while (gi < globals.length) out += '  ' + globalStoreToString(globals[gi++]!)
  return out
}

function mermaidId(name: string): string {
  return name.replace(/[^A-Za-z0-9_]/g, '_')
}

function mermaidLabel(text: string): string {
  return text.replace(/"/g, '#quot;')
}

/** The quoted label text of a node: its name, then the annotation (if any) on a second line. */
function annotated(name: string, annotation: string | undefined): string {
  const head = mermaidLabel(name)
  if (annotation === undefined || annotation === '') return head
  const body = mermaidLabel(annotation)
    .replace(/[<>]/g, (c) => (c === '<' ? '#lt;' : '#gt;'))
    .replace(/\r?\n/g, '<br/>')
  return `${head}<br/>${body}`
}

function own(record: Readonly<Record<string, string>> | undefined, key: string): string | undefined {
  return record !== undefined && Object.prototype.hasOwnProperty.call(record, key) ? record[key] : undefined
}

function descriptionToMermaid(
  subtopologies: ReadonlyArray<DescribedSubtopology>,
  globalStores: ReadonlyArray<DescribedGlobalStore>,
  annotations: TopologyAnnotations,
): string {
  const lines: string[] = ['flowchart TD']
  const nodeLabel = (name: string): string => annotated(name, own(annotations.processors, name))
  const topics = new Set<string>()
  const stores = new Set<string>()
  const edges: string[] = []
  const emitNodes = (nodes: ReadonlyArray<DescribedNode>, indent: string): void => {
    for (const n of nodes) {
      const id = mermaidId(n.name)
      if (n.kind === 'source') {
        lines.push(`${indent}${id}[/"${nodeLabel(n.name)}"/]`)
        if (n.topics) {
          for (const t of n.topics) {
            topics.add(t)
            edges.push(`  topic_${mermaidId(t)} --> ${id}`)
          }
        } else if (n.pattern) {
          const t = `/${n.pattern.source}/`
          topics.add(t)
          edges.push(`  topic_${mermaidId(t)} --> ${id}`)
        }
      } else if (n.kind === 'processor') {
        lines.push(`${indent}${id}["${nodeLabel(n.name)}"]`)
        for (const s of n.stores ?? []) {
          stores.add(s)
          edges.push(`  ${id} <-.-> store_${mermaidId(s)}`)
        }
      } else {
        lines.push(`${indent}${id}[\\"${nodeLabel(n.name)}"\\]`)
        if (n.topic !== undefined) {
          topics.add(n.topic)
          edges.push(`  ${id} --> topic_${mermaidId(n.topic)}`)
        } else {
          const t = `(${n.extractor})`
          topics.add(t)
          edges.push(`  ${id} --> topic_${mermaidId(t)}`)
        }
      }
      for (const s of n.successors) edges.push(`  ${id} --> ${mermaidId(s)}`)
    }
  }
  for (const s of [...subtopologies].sort((a, b) => a.id - b.id)) {
    lines.push(`  subgraph sub_${s.id}["Sub-topology: ${s.id}"]`)
    emitNodes(s.nodes, '    ')
    lines.push('  end')
  }
  for (const g of [...globalStores].sort((a, b) => a.id - b.id)) {
    lines.push(`  subgraph sub_${g.id}["Sub-topology: ${g.id} (global store)"]`)
    emitNodes([g.source, g.processor], '    ')
    lines.push('  end')
  }
  for (const t of topics) lines.push(`  topic_${mermaidId(t)}{{"${annotated(t, own(annotations.sources, t))}"}}`)
  for (const s of stores) lines.push(`  store_${mermaidId(s)}[("${annotated(s, own(annotations.stores, s))}")]`)
  lines.push(...edges)
  return lines.join('\n') + '\n'
}
