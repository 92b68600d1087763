/**
 * Branching (Kafka Streams KIP-418: `Branched`, `BranchedKStream`).
 *
 * `stream.split(Named.as('p-'))` adds the splitter `KSTREAM-BRANCH-<n>` (or `p-`); each
 * `branch(predicate, Branched.as('x'))` adds a pass-through child named `<splitter><x>`
 * (or `<splitter><branch index>`, the default branch being index 0), exactly as Kafka Streams names
 * them. `defaultBranch()` / `noDefaultBranch()` return the branches by name.
 */
import { TopologyError } from '../errors.js'
import { branchSupplier, passThroughSupplier } from '../processors/stateless.js'
import type { KStream } from './kstream.js'

/** Fields of {@link Branched}. */
export interface BranchedConfig<K, V> {
  /** Branch name suffix (the branch is `<splitter name><name>`). */
  readonly name?: string
  /** Transforms the branch; its result is returned in the branch map (unless undefined). */
  readonly chainFunction?: (branch: KStream<K, V>) => KStream<K, V> | undefined | void
  /** Consumes the branch; the branch is then not in the branch map. */
  readonly chainConsumer?: (branch: KStream<K, V>) => void
}

/** How a branch is named and processed (Kafka Streams: `Branched`). */
export class Branched<K, V> implements BranchedConfig<K, V> {
  readonly name?: string
  readonly chainFunction?: (branch: KStream<K, V>) => KStream<K, V> | undefined | void
  readonly chainConsumer?: (branch: KStream<K, V>) => void
  private constructor(c: BranchedConfig<K, V>) {
    if (c.name !== undefined) this.name = c.name
    if (c.chainFunction !== undefined) this.chainFunction = c.chainFunction
    if (c.chainConsumer !== undefined) this.chainConsumer = c.chainConsumer
    Object.freeze(this)
  }
  /** Names the branch. */
  static as<K, V>(name: string): Branched<K, V> {
    if (typeof name !== 'string' || name.length === 0) throw new TopologyError(`Branched.as: parameter 'name' must be a non-empty string`)
    return new Branched<K, V>({ name })
  }
  /** Transforms the branch with `chain`; the result goes into the branch map. */
  static withFunction<K, V>(chain: (branch: KStream<K, V>) => KStream<K, V> | undefined | void, name?: string): Branched<K, V> {
    if (typeof chain !== 'function') throw new TopologyError(`Branched.withFunction: parameter 'chain' must be a function`)
    return new Branched<K, V>({ chainFunction: chain, ...(name !== undefined ? { name } : {}) })
  }
  /** Consumes the branch with `chain` (e.g. `s => s.to('topic')`). */
  static withConsumer<K, V>(chain: (branch: KStream<K, V>) => void, name?: string): Branched<K, V> {
    if (typeof chain !== 'function') throw new TopologyError(`Branched.withConsumer: parameter 'chain' must be a function`)
    return new Branched<K, V>({ chainConsumer: chain, ...(name !== undefined ? { name } : {}) })
  }
}

/** Shared graph state of one splitter (the builder's mutable part). */
interface SplitterState<K, V> {
  readonly predicates: Array<(key: K, value: V) => boolean>
  readonly childNames: string[]
  defaultChild: string | undefined
  finished: boolean
}

/** The result of `KStream.split()`: add branches, then finish with `defaultBranch` or `noDefaultBranch`. */
export class BranchedKStream<K, V> {
  private constructor(
    private readonly source: KStream<K, V>,
    private readonly splitterName: string,
    private readonly state: SplitterState<K, V>,
    private readonly outputs: ReadonlyMap<string, KStream<K, V>>,
  ) {
    Object.freeze(this)
  }

  /** @internal adds the splitter node. */
  static create<K, V>(source: KStream<K, V>, splitterName: string): BranchedKStream<K, V> {
    const state: SplitterState<K, V> = { predicates: [], childNames: [], defaultChild: undefined, finished: false }
    source.builder.addProcessor(
      splitterName,
      branchSupplier(state.predicates, state.childNames, () => state.defaultChild),
      [source.name],
    )
    return new BranchedKStream(source, splitterName, state, new Map())
  }

  /** Adds a branch for records matching `predicate` (and no earlier predicate). */
  branch(predicate: (key: K, value: V) => boolean, branched: BranchedConfig<K, V> = {}): BranchedKStream<K, V> {
    if (typeof predicate !== 'function') throw new TopologyError(`branch: parameter 'predicate' must be a function`)
    this.checkOpen('branch')
    this.state.predicates.push(predicate)
    const { name, outputs } = this.createBranch(branched, this.state.predicates.length)
    this.state.childNames.push(name)
    return new BranchedKStream(this.source, this.splitterName, this.state, outputs)
  }

  /** Adds the branch for records matching no predicate and returns all branches by name. */
  defaultBranch(branched: BranchedConfig<K, V> = {}): Map<string, KStream<K, V>> {
    this.checkOpen('defaultBranch')
    const { name, outputs } = this.createBranch(branched, 0)
    this.state.defaultChild = name
    this.state.finished = true
    return new Map(outputs)
  }

  /** Returns all branches by name; records matching no predicate are dropped. */
  noDefaultBranch(): Map<string, KStream<K, V>> {
    this.checkOpen('noDefaultBranch')
    this.state.finished = true
    return new Map(this.outputs)
  }

  private checkOpen(method: string): void {
    if (this.state.finished)
      throw new TopologyError(`${method}: the split '${this.splitterName}' is already finished by defaultBranch()/noDefaultBranch()`)
  }

  private createBranch(branched: BranchedConfig<K, V>, index: number): { name: string; outputs: Map<string, KStream<K, V>> } {
    if (branched === null || typeof branched !== 'object') throw new TopologyError(`branch: parameter 'branched' must be a Branched object`)
    const builder = this.source.builder
    const name = this.splitterName + (branched.name ?? String(index))
    builder.newProcessorName(name) // burns a counter value, as Kafka Streams does
    builder.addProcessor(name, passThroughSupplier(), [this.splitterName])
    const branch = this.source.derive<K, V>(name)
    const outputs = new Map(this.outputs)
    if (branched.chainFunction) {
      const result = branched.chainFunction(branch)
      if (result) outputs.set(name, result)
    } else if (branched.chainConsumer) {
      branched.chainConsumer(branch)
    } else {
      outputs.set(name, branch)
    }
    return { name, outputs }
  }
}
