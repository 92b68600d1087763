/**
 * The task engine: runs one sub-topology for one partition (Kafka Streams: the processing half of
 * `StreamTask` + `ProcessorNode` + `SourceNode`/`SinkNode` + `PunctuationQueue`).
 *
 * Per record: find the source node by topic → deserialize with the source's serdes (or the
 * defaults) → extract the timestamp → advance stream-time → push the record depth-first through
 * the processors → sinks serialize and hand records to the collector → run due stream-time
 * punctuators. Processors that return nothing (synchronous) are not awaited, so a chain of
 * synchronous stateless processors costs no microtask per node.
 */
import {
  IllegalStateError,
  InvalidStateStoreError,
  InvalidTimestampError,
  ProcessingError,
  SerializationError,
  StreamsError,
  TaskMigratedError,
  TopologyError,
  type ErrorPlace,
} from '../errors.js'
import { resolveSerde, type Serde } from '../serde.js'
import type {
  Cancellable,
  Processor,
  ProcessorContext,
  PunctuationType,
  Punctuator,
  StreamRecord,
  RecordMetadata,
  TaskId,
  TimestampExtractor,
  TopicNameExtractor,
  StreamPartitioner,
} from '../processor/types.js'
import { taskIdString } from '../processor/types.js'
import type { BytesStoreBase, StateStore, StoreDef } from '../state/types.js'
import { createTypedStore } from '../state/typed.js'
import { CachingKeyValueBytesStore, type CacheHost, type CacheRecordContext, type FlushableCache } from '../state/caching.js'
import { CachingSessionBytesStore, CachingWindowBytesStore } from '../state/caching-windowed.js'
import type { KeyValueBytesStore, SessionBytesStore, WindowBytesStore } from '../state/types.js'
import type { NodeDef, RawRecord, SubtopologyDef, TaskEngine, TaskEngineOptions } from './types.js'
import { NOOP_TASK_METRICS, type TaskMetrics, type ValueRecorder } from './metrics.js'

type MaybePromise = Promise<void> | void | undefined

const RESOLVED: Promise<void> = Promise.resolve()

function isPromise(v: unknown): v is Promise<void> {
  return v !== undefined && v !== null && typeof (v as Promise<void>).then === 'function'
}

interface RuntimeNode {
  readonly def: NodeDef
  readonly name: string
  readonly kind: NodeDef['type']
  children: RuntimeNode[]
  childByName: Map<string, RuntimeNode>
  /** Stores the node may use. */
  readonly stores: ReadonlySet<string>
  processor?: Processor<any, any, any, any>
  context?: ProcessorContext<any, any>
  // sources
  keySerde?: Serde<any> | undefined
  valueSerde?: Serde<any> | undefined
  timestampExtractor?: TimestampExtractor<any, any> | undefined
  // sinks
  topic?: string | TopicNameExtractor<any, any>
  partitioner?: StreamPartitioner<any, any> | undefined
  /** `record-e2e-latency` of a source or terminal node (KIP-613); set only when metrics are collected. */
  e2e?: ValueRecorder
}

interface Schedule {
  readonly node: RuntimeNode
  readonly intervalMs: number
  readonly callback: Punctuator
  readonly seq: number
  next: number
  cancelled: boolean
}

/** Orders schedules by next time, then creation. */
function scheduleOrder(a: Schedule, b: Schedule): number {
  return a.next - b.next || a.seq - b.seq
}

/** Kafka Streams' `PunctuationSchedule.next`: skips missed punctuations instead of bursting. */
function nextPunctuation(s: Schedule, now: number): number {
  let next = s.next + s.intervalMs
  if (now >= next) {
    const missed = Math.floor((now - s.next) / s.intervalMs)
    next = s.next + (missed + 1) * s.intervalMs
  }
  return next
}

/** Implementation of {@link TaskEngine}; create with `createTaskEngine`. */
export class DefaultTaskEngine implements TaskEngine {
  readonly taskId: TaskId
  private readonly taskIdStr: string
  private readonly opts: TaskEngineOptions
  private readonly sub: SubtopologyDef
  private readonly nodes = new Map<string, RuntimeNode>()
  private readonly order: RuntimeNode[] = []
  private readonly sourceByTopic = new Map<string, RuntimeNode>()
  private readonly patternSources: RuntimeNode[] = []
  private readonly typedStores = new Map<string, StateStore>()
  private readonly bytes = new Map<string, BytesStoreBase>()
  /** Record caches of the stores that cache (KIP-63), in store order. */
  private readonly caches: Array<FlushableCache & { close(): Promise<void> }> = []
  /**
   * The record each processor invocation is processing (innermost first), for the record context
   * of cached writes; tracked only when the task has a record cache.
   */
  private contextRecord: StreamRecord<any, any> | undefined
  private trackContext = false
  private readonly partitionTimes = new Map<string, number>()
  private readonly streamSchedules: Schedule[] = []
  private readonly wallSchedules: Schedule[] = []
  private readonly handled = new WeakSet<object>()
  private readonly defaults: { keySerde?: Serde<any>; valueSerde?: Serde<any> }
  private readonly metrics: TaskMetrics
  /** Wall-clock time read once per record for its end-to-end latencies (Kafka Streams caches it per record too). */
  private recordWallClockMs = 0
  private scheduleSeq = 0
  private streamTimeMs = -1
  private currentMeta: RecordMetadata | undefined
  private currentRaw: RawRecord | undefined
  /** The timestamp of the input record being processed (see {@link currentRecordTimestamp}). */
  private currentRecordTs: number | undefined
  private initialized = false
  private closed = false

  constructor(options: TaskEngineOptions) {
    if (!options || !options.topology || !options.subtopology)
      throw new TopologyError("createTaskEngine: parameters 'topology' and 'subtopology' are required")
    this.opts = options
    this.sub = options.subtopology
    this.taskId = options.taskId
    this.taskIdStr = taskIdString(options.taskId)
    this.metrics = options.metrics ?? NOOP_TASK_METRICS
    this.defaults = {
      ...(options.defaultKeySerde !== undefined ? { keySerde: options.defaultKeySerde } : {}),
      ...(options.defaultValueSerde !== undefined ? { valueSerde: options.defaultValueSerde } : {}),
    }
  }

  private place(node?: RuntimeNode, extra: ErrorPlace = {}): ErrorPlace {
    const meta = this.currentMeta
    return {
      taskId: this.taskIdStr,
      ...(node !== undefined ? { processor: node.name } : {}),
      ...(meta !== undefined ? { topic: meta.topic, partition: meta.partition, offset: meta.offset } : {}),
      ...extra,
    }
  }

  async init(): Promise<void> {
    if (this.initialized) throw new IllegalStateError(`task ${this.taskIdStr} is already initialized`)
    this.initialized = true
    const { topology, stores: provider } = this.opts
    // stores
    for (const name of this.sub.stores) {
      const def: StoreDef | undefined = topology.stores.get(name)
      if (!def) throw new TopologyError(`task ${this.taskIdStr}: store '${name}' is not defined in the topology`)
      let bytes: BytesStoreBase
      switch (def.type) {
        case 'keyValue':
          bytes = await provider.keyValue(def)
          break
        case 'window':
          bytes = await provider.window(def)
          break
        case 'session':
          bytes = await provider.session(def)
          break
      }
      this.bytes.set(name, bytes)
      const cache = this.opts.recordCache
      let view: BytesStoreBase = bytes
      if (
        cache !== undefined &&
        cache.enabled &&
        def.cachingEnabled &&
        def.versioned === undefined &&
        !(bytes as Partial<WindowBytesStore>).retainDuplicates
      ) {
        const host = this.cacheHost()
        const hitRatio = this.metrics.recordCache(def.name)
        const cached =
          def.type === 'keyValue'
            ? new CachingKeyValueBytesStore(bytes as KeyValueBytesStore, cache, host, hitRatio)
            : def.type === 'window'
              ? new CachingWindowBytesStore(bytes as WindowBytesStore, cache, host, hitRatio)
              : new CachingSessionBytesStore(bytes as SessionBytesStore, cache, host, hitRatio)
        this.caches.push(cached)
        this.trackContext = true
        view = cached
      }
      this.typedStores.set(
        name,
        createTypedStore(def, view, {
          applicationId: topology.applicationId,
          ...(this.opts.defaultKeySerde !== undefined ? { defaultKeySerde: this.opts.defaultKeySerde } : {}),
          ...(this.opts.defaultValueSerde !== undefined ? { defaultValueSerde: this.opts.defaultValueSerde } : {}),
        }),
      )
    }
    // nodes
    for (const def of this.sub.nodes) {
      const node: RuntimeNode = {
        def,
        name: def.name,
        kind: def.type,
        children: [],
        childByName: new Map(),
        stores: new Set(def.type === 'processor' ? def.stores : []),
      }
      if (def.type === 'source') {
        node.keySerde = resolveSerde(def.keySerde, this.opts.defaultKeySerde, this.defaults)
        node.valueSerde = resolveSerde(def.valueSerde, this.opts.defaultValueSerde, this.defaults)
        node.timestampExtractor = def.timestampExtractor ?? this.opts.defaultTimestampExtractor
        for (const t of def.topics) this.sourceByTopic.set(t, node)
        if (def.pattern !== undefined) this.patternSources.push(node)
      } else if (def.type === 'sink') {
        node.keySerde = resolveSerde(def.keySerde, this.opts.defaultKeySerde, this.defaults)
        node.valueSerde = resolveSerde(def.valueSerde, this.opts.defaultValueSerde, this.defaults)
        node.topic = def.topic
        node.partitioner = def.partitioner
      }
      this.nodes.set(def.name, node)
      this.order.push(node)
    }
    for (const node of this.order) {
      for (const c of node.def.children) {
        const child = this.nodes.get(c)
        if (!child) throw new TopologyError(`task ${this.taskIdStr}: child '${c}' of '${node.name}' is not in the sub-topology`)
        // A side output is reached only by `forward(record, childName)`.
        if (!(child.def.type === 'sink' && child.def.sideOutput === true)) node.children.push(child)
        node.childByName.set(c, child)
      }
    }
    // KIP-613: end-to-end latency at source and terminal nodes (no clock reads without metrics)
    if (this.opts.metrics !== undefined) {
      for (const node of this.order) {
        if (node.kind === 'source' || node.children.length === 0) node.e2e = this.metrics.node(node.name).recordE2eLatency
      }
    }
    // sink serdes that need I/O before the first serialize
    for (const node of this.order) {
      if (node.kind !== 'sink' || typeof node.topic !== 'string') continue
      for (const s of [node.keySerde, node.valueSerde]) if (s?.prepareSerialize) await s.prepareSerialize(node.topic)
    }
    // processors, parents before children
    for (const node of this.order) {
      if (node.def.type !== 'processor') continue
      const processor = node.def.supplier()
      if (!processor || typeof processor.process !== 'function') {
        throw new TopologyError(`task ${this.taskIdStr}: the supplier of processor '${node.name}' did not return a Processor`)
      }
      node.processor = processor
      node.context = this.contextFor(node)
    }
    for (const node of this.order) {
      if (!node.processor?.init) continue
      try {
        await node.processor.init(node.context!)
      } catch (e) {
        if (e instanceof StreamsError) throw e
        throw new ProcessingError(`processor '${node.name}' failed to initialize: ${(e as Error)?.message ?? e}`, {
          cause: e,
          place: this.place(node),
        })
      }
    }
  }

  private cacheHost(): CacheHost {
    return {
      recordContext: (): CacheRecordContext => {
        const r = this.contextRecord
        return r !== undefined
          ? { timestamp: r.timestamp, headers: r.headers, metadata: this.currentMeta }
          : { timestamp: this.streamTimeMs, headers: {}, metadata: this.currentMeta }
      },
      withRecordContext: async (context, fn) => {
        const meta = this.currentMeta
        this.currentMeta = context.metadata
        try {
          await fn()
        } finally {
          this.currentMeta = meta
        }
      },
    }
  }

  async flushCaches(): Promise<void> {
    if (this.caches.length === 0 || !this.initialized || this.closed) return
    // a flush forwards into downstream stores' caches: flush again until all are empty
    for (let pass = 0; pass <= this.caches.length; pass++) {
      let any = false
      for (const c of this.caches) {
        if (c.size === 0) continue
        any = true
        await c.flushCache()
      }
      if (!any) return
    }
  }

  private contextFor(node: RuntimeNode): ProcessorContext<any, any> {
    const engine = this
    const opts = this.opts
    return {
      applicationId: opts.topology.applicationId,
      taskId: this.taskId,
      recordMetadata: () => engine.currentMeta,
      currentStreamTimeMs: () => engine.streamTimeMs,
      currentSystemTimeMs: () => opts.clock(),
      forward: (record: StreamRecord<any, any>, childName?: string) => engine.forward(node, record, childName),
      getStateStore: <S extends StateStore = StateStore>(name: string): S => engine.storeFor(node, name) as S,
      schedule: (intervalMs: number, type: PunctuationType, callback: Punctuator) => engine.schedule(node, intervalMs, type, callback),
      commit: () => opts.onCommitRequested?.(),
      recordDropped: (reason: string) => engine.dropped(reason, node),
      keySerde: () => opts.defaultKeySerde,
      valueSerde: () => opts.defaultValueSerde,
      metrics: () => engine.metrics.node(node.name),
    }
  }

  private dropped(reason: string, node?: RuntimeNode): void {
    const meta = this.currentMeta
    this.metrics.droppedRecords.record()
    this.opts.onDropped?.(reason, {
      taskId: this.taskIdStr,
      ...(node !== undefined ? { processor: node.name } : {}),
      ...(meta !== undefined ? { topic: meta.topic, partition: meta.partition, offset: meta.offset } : {}),
    })
  }

  private storeFor(node: RuntimeNode, name: string): StateStore {
    if (node.stores.has(name)) {
      const s = this.typedStores.get(name)
      if (s) return s
    }
    const global = this.opts.globalStores?.(name)
    if (global) return global
    throw new InvalidStateStoreError(
      `processor '${node.name}' has no access to state store '${name}'; connect the store to the processor (addStateStore(..., '${node.name}') or process(supplier, { stores: ['${name}'] }))`,
      { place: this.place(node, { store: name }) },
    )
  }

  private schedule(node: RuntimeNode, intervalMs: number, type: PunctuationType, callback: Punctuator): Cancellable {
    if (typeof intervalMs !== 'number' || !Number.isFinite(intervalMs) || intervalMs < 1) {
      throw new TopologyError(`schedule: parameter 'intervalMs' must be >= 1 millisecond (processor '${node.name}')`)
    }
    if (typeof callback !== 'function')
      throw new TopologyError(`schedule: parameter 'callback' must be a function (processor '${node.name}')`)
    let queue: Schedule[]
    let next: number
    if (type === 'STREAM_TIME') {
      queue = this.streamSchedules
      next = 0 // aligned to 0: punctuates as soon as there is data (Kafka Streams)
    } else if (type === 'WALL_CLOCK_TIME') {
      queue = this.wallSchedules
      next = this.opts.clock() + intervalMs
    } else {
      throw new TopologyError(`schedule: parameter 'type' must be 'STREAM_TIME' or 'WALL_CLOCK_TIME' (processor '${node.name}')`)
    }
    const s: Schedule = { node, intervalMs, callback, seq: this.scheduleSeq++, next, cancelled: false }
    queue.push(s)
    queue.sort(scheduleOrder)
    return {
      cancel: () => {
        s.cancelled = true
        const i = queue.indexOf(s)
        if (i >= 0) queue.splice(i, 1)
      },
    }
  }

  async prepareBatch(records: ReadonlyArray<RawRecord>): Promise<void> {
    const byTopic = new Map<string, RawRecord[]>()
    for (const r of records) {
      let list = byTopic.get(r.topic)
      if (!list) byTopic.set(r.topic, (list = []))
      list.push(r)
    }
    for (const [topic, list] of byTopic) {
      const source = this.sourceFor(topic)
      if (!source) continue
      if (source.keySerde?.prepareDeserialize)
        await source.keySerde.prepareDeserialize(
          topic,
          list.map((r) => r.key),
        )
      if (source.valueSerde?.prepareDeserialize)
        await source.valueSerde.prepareDeserialize(
          topic,
          list.map((r) => r.value),
        )
    }
  }

  private sourceFor(topic: string): RuntimeNode | undefined {
    const s = this.sourceByTopic.get(topic)
    if (s !== undefined) return s
    for (const p of this.patternSources) {
      const def = p.def as { pattern?: RegExp }
      if (def.pattern) {
        def.pattern.lastIndex = 0
        const m = def.pattern.exec(topic)
        if (m !== null && m.index === 0 && m[0].length === topic.length) {
          this.sourceByTopic.set(topic, p)
          return p
        }
      }
    }
    return undefined
  }

  async process(raw: RawRecord): Promise<void> {
    if (!this.initialized || this.closed)
      throw new IllegalStateError(`task ${this.taskIdStr} is not running (init() first, not after close())`)
    const source = this.sourceFor(raw.topic)
    if (!source)
      throw new IllegalStateError(`task ${this.taskIdStr} has no source node for topic '${raw.topic}'`, {
        place: { taskId: this.taskIdStr, topic: raw.topic, partition: raw.partition, offset: raw.offset },
      })
    const meta: RecordMetadata = { topic: raw.topic, partition: raw.partition, offset: raw.offset }
    const startMs = this.metrics.debugEnabled ? performance.now() : 0
    this.currentMeta = meta
    this.currentRaw = raw
    try {
      let key: unknown
      let value: unknown
      try {
        key = raw.key === null ? null : this.deserialize(source.keySerde, 'key', raw.topic, raw.key, raw)
        value = raw.value === null ? null : this.deserialize(source.valueSerde, 'value', raw.topic, raw.value, raw)
      } catch (e) {
        const err =
          e instanceof SerializationError
            ? e
            : new SerializationError(`failed to deserialize record: ${(e as Error)?.message ?? e}`, { cause: e, place: this.place(source) })
        // a retriable failure (e.g. the schema registry is unreachable) says nothing about the
        // record: it is retried by the runtime, never skipped or sent to a dead-letter topic
        const handler = this.opts.deserializationExceptionHandler
        const response = handler && !err.retriable ? handler(err, raw, this.taskId) : 'fail'
        if (response === 'continue') {
          this.dropped('deserialization-error', source)
          return
        }
        throw err
      }
      const partitionKey = raw.topic + '\u0000' + raw.partition
      const partitionTime = this.partitionTimes.get(partitionKey) ?? -1
      let ts = raw.timestamp
      const extractor = source.timestampExtractor
      if (extractor) {
        try {
          ts = extractor.extract(
            { topic: raw.topic, partition: raw.partition, offset: raw.offset, key, value, timestamp: raw.timestamp, headers: raw.headers },
            partitionTime,
          )
        } catch (e) {
          if (e instanceof StreamsError) throw e
          throw new ProcessingError(`timestamp extractor failed: ${(e as Error)?.message ?? e}`, { cause: e, place: this.place(source) })
        }
      }
      if (typeof ts !== 'number' || !(ts >= 0)) {
        if ((this.opts.invalidTimestampPolicy ?? 'fail') === 'fail') {
          throw new InvalidTimestampError(
            `record has invalid timestamp ${ts}; use a TimestampExtractor that returns a non-negative timestamp, or set the invalid timestamp policy to 'log-and-skip'`,
            { place: this.place(source) },
          )
        }
        this.dropped('invalid-timestamp', source)
        return
      }
      if (ts > partitionTime) this.partitionTimes.set(partitionKey, ts)
      // record-lateness (DEBUG): how far behind stream-time the record is; 0 when in order
      this.metrics.recordLateness.record(ts < this.streamTimeMs ? this.streamTimeMs - ts : 0)
      if (ts > this.streamTimeMs) this.streamTimeMs = ts
      const record: StreamRecord<unknown, unknown> = { key, value, timestamp: ts, headers: raw.headers }
      if (source.e2e !== undefined) {
        this.recordWallClockMs = this.opts.clock()
        source.e2e.record(this.recordWallClockMs - ts)
      }
      this.currentRecordTs = ts
      const r = this.forward(source, record)
      if (isPromise(r)) await r
      this.metrics.process.record(this.metrics.debugEnabled ? performance.now() - startMs : 0)
    } finally {
      this.currentMeta = undefined
      this.currentRaw = undefined
      this.currentRecordTs = undefined
    }
    if (this.streamSchedules.length > 0 && this.streamSchedules[0]!.next <= this.streamTimeMs)
      await this.punctuate(this.streamSchedules, this.streamTimeMs)
  }

  headTimestamp(raw: RawRecord): number {
    const source = this.sourceFor(raw.topic)
    const extractor = source?.timestampExtractor
    if (source === undefined || extractor === undefined) return raw.timestamp
    let key: unknown, value: unknown
    try {
      key = raw.key === null ? null : this.deserialize(source.keySerde, 'key', raw.topic, raw.key, raw)
      value = raw.value === null ? null : this.deserialize(source.valueSerde, 'value', raw.topic, raw.value, raw)
    } catch (e) {
      // A transient failure (e.g. a writer schema not fetched yet) says nothing about the record.
      if (e instanceof StreamsError && e.retriable) return raw.timestamp
      // Taken first: process() hands it to the deserialization exception handler at once (Kafka
      // Streams' RecordQueue deals with such a head before ordering), so a bad payload never holds
      // its partition back behind a broker timestamp that says nothing about event time.
      return -Infinity
    }
    try {
      const partitionTime = this.partitionTimes.get(raw.topic + '\u0000' + raw.partition) ?? -1
      const ts = extractor.extract(
        { topic: raw.topic, partition: raw.partition, offset: raw.offset, key, value, timestamp: raw.timestamp, headers: raw.headers },
        partitionTime,
      )
      return typeof ts === 'number' && ts >= 0 ? ts : raw.timestamp
    } catch {
      // process() reports it (deserialization handler, extractor error) when the record's turn comes
      return raw.timestamp
    }
  }

  private deserialize(serde: Serde<any> | undefined, what: 'key' | 'value', topic: string, data: Buffer, raw: RawRecord): unknown {
    if (!serde)
      throw new SerializationError(
        `no ${what} serde for topic '${topic}': set it on the source (Consumed) or configure a default ${what} serde`,
        { place: { taskId: this.taskIdStr, topic, partition: raw.partition, offset: raw.offset } },
      )
    try {
      return serde.deserialize(topic, data, raw.headers)
    } catch (e) {
      throw new SerializationError(`failed to deserialize ${what} from topic '${topic}': ${(e as Error)?.message ?? e}`, {
        cause: e,
        retriable: e instanceof StreamsError && e.retriable,
        place: { taskId: this.taskIdStr, topic, partition: raw.partition, offset: raw.offset },
      })
    }
  }

  /** Sends `record` to the children of `from` (or to `childName` only), depth-first. */
  private forward(from: RuntimeNode, record: StreamRecord<any, any>, childName?: string): Promise<void> {
    if (childName !== undefined) {
      const child = from.childByName.get(childName)
      if (!child) throw new IllegalStateError(`processor '${from.name}' has no child named '${childName}'`, { place: this.place(from) })
      const r = this.invoke(child, record)
      return isPromise(r) ? r : RESOLVED
    }
    const children = from.children
    for (let i = 0; i < children.length; i++) {
      const r = this.invoke(children[i]!, record)
      if (isPromise(r)) return i + 1 < children.length ? r.then(() => this.forwardFrom(children, i + 1, record)) : r
    }
    return RESOLVED
  }

  private async forwardFrom(children: RuntimeNode[], start: number, record: StreamRecord<any, any>): Promise<void> {
    for (let i = start; i < children.length; i++) {
      const r = this.invoke(children[i]!, record)
      if (isPromise(r)) await r
    }
  }

  private invoke(node: RuntimeNode, record: StreamRecord<any, any>): MaybePromise {
    // inside process() the source read the clock for this record; punctuators read it here
    if (node.e2e !== undefined)
      node.e2e.record((this.currentMeta !== undefined ? this.recordWallClockMs : this.opts.clock()) - record.timestamp)
    if (this.trackContext) return this.invokeInContext(node, record)
    try {
      const r = node.kind === 'sink' ? this.sink(node, record) : node.processor!.process(record)
      if (isPromise(r)) return r.then(undefined, (e) => this.handleError(node, e))
      return undefined
    } catch (e) {
      return this.handleError(node, e)
    }
  }

  /** {@link invoke} keeping `contextRecord` on `record` while the node runs (record caches need it). */
  private invokeInContext(node: RuntimeNode, record: StreamRecord<any, any>): MaybePromise {
    const outer = this.contextRecord
    this.contextRecord = record
    try {
      const r = node.kind === 'sink' ? this.sink(node, record) : node.processor!.process(record)
      if (isPromise(r))
        return r.then(
          () => {
            this.contextRecord = outer
          },
          (e) => {
            this.contextRecord = outer
            return this.handleError(node, e)
          },
        )
      this.contextRecord = outer
      return undefined
    } catch (e) {
      this.contextRecord = outer
      return this.handleError(node, e)
    }
  }

  private handleError(node: RuntimeNode, e: unknown): void {
    if (e !== null && typeof e === 'object' && this.handled.has(e)) throw e
    if (e instanceof TaskMigratedError) throw e
    const err =
      e instanceof StreamsError
        ? e
        : new ProcessingError(`processor '${node.name}' failed: ${(e as Error)?.message ?? String(e)}`, {
            cause: e,
            place: this.place(node),
          })
    const handler = this.opts.processingExceptionHandler
    const response = handler
      ? handler(err, { taskId: this.taskId, processor: node.name, ...(this.currentRaw !== undefined ? { record: this.currentRaw } : {}) })
      : 'fail'
    if (response === 'continue') {
      this.dropped('processing-error', node)
      return
    }
    this.handled.add(err)
    throw err
  }

  private sink(node: RuntimeNode, record: StreamRecord<any, any>): void {
    const meta = this.currentMeta
    let topic: string
    if (typeof node.topic === 'string') topic = node.topic
    else {
      topic = node.topic!(record.key, record.value, {
        ...(meta !== undefined ? { topic: meta.topic, partition: meta.partition } : {}),
        timestamp: record.timestamp,
      })
      if (typeof topic !== 'string' || topic.length === 0)
        throw new ProcessingError(`topic name extractor of sink '${node.name}' returned an invalid topic: ${String(topic)}`, {
          place: this.place(node),
        })
    }
    const key = this.serialize(node, node.keySerde, 'key', topic, record)
    const value = this.serialize(node, node.valueSerde, 'value', topic, record)
    let partition: number | undefined
    if (node.partitioner) {
      const n = this.opts.partitionsFor?.(topic) ?? 1
      partition = node.partitioner(topic, record.key, record.value, n)
      if (partition !== undefined && (!Number.isInteger(partition) || partition < 0 || partition >= n)) {
        throw new ProcessingError(
          `partitioner of sink '${node.name}' returned partition ${partition} for topic '${topic}' with ${n} partitions`,
          { place: this.place(node) },
        )
      }
    }
    this.opts.collector.send({
      topic,
      key,
      value,
      timestamp: record.timestamp,
      headers: record.headers,
      ...(partition !== undefined ? { partition } : {}),
    })
  }

  private serialize(
    node: RuntimeNode,
    serde: Serde<any> | undefined,
    what: 'key' | 'value',
    topic: string,
    record: StreamRecord<any, any>,
  ): Buffer | null {
    const data = what === 'key' ? record.key : record.value
    if (data === null || data === undefined) return null
    if (!serde)
      throw new SerializationError(
        `no ${what} serde for sink '${node.name}' (topic '${topic}'): set it with Produced/Grouped/Repartitioned (a key change drops the key serde) or configure a default ${what} serde`,
        { place: this.place(node, { topic }) },
      )
    try {
      return serde.serialize(topic, data, record.headers)
    } catch (e) {
      throw new SerializationError(`failed to serialize ${what} for topic '${topic}': ${(e as Error)?.message ?? e}`, {
        cause: e,
        place: this.place(node, { topic }),
      })
    }
  }

  private async punctuate(queue: Schedule[], now: number): Promise<boolean> {
    let ran = false
    while (queue.length > 0 && queue[0]!.next <= now) {
      const s = queue.shift()!
      if (s.cancelled) continue
      ran = true
      try {
        const r = s.callback(now)
        if (isPromise(r)) await r
      } catch (e) {
        this.handleError(s.node, e)
      }
      if (!s.cancelled) {
        s.next = nextPunctuation(s, now)
        queue.push(s)
        queue.sort(scheduleOrder)
      }
    }
    return ran
  }

  streamTime(): number {
    return this.streamTimeMs
  }

  currentRecordTimestamp(): number | undefined {
    return this.currentRecordTs
  }

  async advanceStreamTime(streamTimeMs: number): Promise<boolean> {
    if (!this.initialized || this.closed) return false
    if (!Number.isFinite(streamTimeMs) || streamTimeMs <= this.streamTimeMs) return false
    this.streamTimeMs = streamTimeMs
    for (const node of this.order) {
      const p = node.processor
      if (p?.advanceStreamTime === undefined) continue
      try {
        const r = p.advanceStreamTime(streamTimeMs)
        if (isPromise(r)) await r
      } catch (e) {
        this.handleError(node, e)
      }
    }
    if (this.streamSchedules.length > 0 && this.streamSchedules[0]!.next <= streamTimeMs)
      await this.punctuate(this.streamSchedules, streamTimeMs)
    return true
  }

  async punctuateWallClock(nowMs: number): Promise<boolean> {
    if (!this.initialized || this.closed) return false
    if (this.wallSchedules.length === 0 || this.wallSchedules[0]!.next > nowMs) return false
    return this.punctuate(this.wallSchedules, nowMs)
  }

  getStateStore(name: string): StateStore | undefined {
    return this.typedStores.get(name)
  }

  bytesStores(): ReadonlyMap<string, BytesStoreBase> {
    return this.bytes
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    // entries not flushed by a commit belong to no committed state (a dirty close, a rewind to the
    // last commit): dropped, and their bytes go back to the instance's shared budget, which the
    // task's next incarnation and the other tasks keep using
    for (const c of this.caches) await c.close()
    let first: unknown
    for (const node of this.order) {
      try {
        await node.processor?.close?.()
      } catch (e) {
        first ??=
          e instanceof StreamsError
            ? e
            : new ProcessingError(`processor '${node.name}' failed to close: ${(e as Error)?.message ?? e}`, {
                cause: e,
                place: { taskId: this.taskIdStr, processor: node.name },
              })
      }
    }
    this.streamSchedules.length = 0
    this.wallSchedules.length = 0
    if (first !== undefined) throw first
  }
}
