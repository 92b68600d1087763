/**
 * The runtime's task manager wired as the stream thread wires it (real TaskManager,
 * TaskInitializer, RestoreCoordinator, StandbyManager, PartitionFlow, commit strategies, StreamTask,
 * TaskRecordCollector, error policy) over the in-memory broker of fake-kafka.ts, with an in-memory
 * task state (a count per key, changelogged to `app-counts-changelog`) and a small engine: every
 * input record `k=v` increments count(k) and is echoed to `out` as `k=v`.
 *
 * The test drives what the loop would: `feed` (fetch + process), `commit`, `revive`.
 */
import { EventEmitter } from 'node:events'
import type { OutputRecord, RawRecord, RecordCollector, SubtopologyDef, TaskEngine, TopologyDef } from '../../../topology/engine/types.js'
import type { StoreProvider } from '../../../topology/state/types.js'
import type { ChangelogPartition, TaskStateManager } from '../../../lib/state/types.js'
import { resolveStreamsConfig, type ResolvedStreamsConfig } from '../../../lib/app/options.js'
import { AtLeastOnceCommit, ExactlyOnceCommit, ExactlyOnceV2Commit, type CommitPoint } from '../../../lib/app/runtime/commit.js'
import { ThreadProducerHolder } from '../../../lib/app/runtime/thread-producer.js'
import type { ConsumerGroupMetadata } from '../../../lib/app/client/types.js'
import { PartitionFlow } from '../../../lib/app/runtime/partition-flow.js'
import { RestoreCoordinator } from '../../../lib/app/runtime/restore.js'
import { StandbyManager } from '../../../lib/app/runtime/standby-manager.js'
import { TaskInitializer, type TaskStateFactory } from '../../../lib/app/runtime/task-initializer.js'
import { TaskManager } from '../../../lib/app/runtime/task-manager.js'
import { StreamsEvents } from '../../../lib/app/events.js'
import type { StreamTask } from '../../../lib/app/stream-task.js'
import { FakeBroker, FakeClient } from './fake-kafka.js'

export const APP = 'app'
export const INPUT = 'in'
export const OUTPUT = 'out'
export const CHANGELOG = 'app-counts-changelog'

/** What survives a task's close: the "disk" of a task's state (committed counts and changelog position). */
interface Disk {
  readonly data: Map<string, number>
  position: string | undefined
}

/** An in-memory TaskStateManager: dirty counts until commitLocal, then on its "disk". */
export class MemoryTaskState implements TaskStateManager {
  readonly dirty = new Map<string, number>()
  readonly provider = {} as StoreProvider
  readonly calls: string[]
  constructor(
    readonly disk: Disk,
    readonly partition: number,
    calls: string[],
  ) {
    this.calls = calls
  }
  get(k: string): number {
    return this.dirty.get(k) ?? this.disk.data.get(k) ?? 0
  }
  put(k: string, n: number): void {
    this.dirty.set(k, n)
  }
  changelogPartitions(): ReadonlyArray<ChangelogPartition> {
    return [{ store: 'counts', topic: CHANGELOG, partition: this.partition }]
  }
  async open(): Promise<void> {}
  checkpointedOffsets(): ReadonlyMap<string, string | undefined> {
    return new Map([[CHANGELOG, this.disk.position]])
  }
  async restoreBatch(_topic: string, records: ReadonlyArray<RawRecord>): Promise<void> {
    for (const r of records) this.disk.data.set(r.key!.toString(), Number(r.value!.toString()))
  }
  async markRestored(_topic: string, nextOffset: string): Promise<void> {
    this.disk.position = nextOffset
  }
  async prepareCommit(collector: RecordCollector): Promise<number> {
    for (const [k, n] of this.dirty)
      collector.send({
        topic: CHANGELOG,
        partition: this.partition,
        key: Buffer.from(k),
        value: Buffer.from(String(n)),
        timestamp: 0,
        headers: {},
      })
    return this.dirty.size
  }
  async commitLocal(ends: ReadonlyMap<string, string>): Promise<void> {
    this.calls.push('commitLocal')
    for (const [k, n] of this.dirty) this.disk.data.set(k, n)
    this.dirty.clear()
    const end = ends.get(CHANGELOG)
    if (end !== undefined) this.disk.position = end
  }
  async abortUncommitted(): Promise<void> {
    this.dirty.clear()
  }
  async close(): Promise<void> {
    this.dirty.clear()
  }
  async wipe(): Promise<void> {
    this.disk.data.clear()
    this.disk.position = undefined
  }
}

/** Counts per key and echoes; a value starting with `throw:` throws an Error with the rest as its message. */
export function countingEngine(sm: MemoryTaskState, collector: RecordCollector): TaskEngine {
  return {
    async init() {},
    async prepareBatch() {},
    async process(r: RawRecord) {
      const k = r.key!.toString()
      const v = r.value!.toString()
      if (v.startsWith('throw:')) throw new Error(v.slice(6))
      sm.put(k, sm.get(k) + 1)
      const out: OutputRecord = { topic: OUTPUT, partition: r.partition, key: r.key, value: r.value, timestamp: r.timestamp, headers: {} }
      collector.send(out)
    },
    async punctuateWallClock() {},
    streamTime: () => -1,
    async advanceStreamTime() {
      return false
    },
    async close() {},
    getStateStore: () => undefined,
  } as unknown as TaskEngine
}

const SUB: SubtopologyDef = {
  id: 0,
  nodes: [{ type: 'source', name: 'src', topics: [INPUT] } as never],
  sourceTopics: [INPUT],
  sinkTopics: [OUTPUT],
  stores: ['counts'],
}
export const TOPOLOGY = { subtopologies: [SUB], stores: new Map(), globalStores: [] } as unknown as TopologyDef

export interface HarnessOptions {
  readonly exactlyOnce?: boolean
  /** Exactly-once v2: one thread producer (`app-p1-1`), offsets with the group generation of the last `assign`. */
  readonly v2?: boolean
  readonly taskTimeoutMs?: number
}

export function createHarness(options: HarnessOptions = {}) {
  const broker = new FakeBroker()
  const client = new FakeClient(broker)
  const emitter = new EventEmitter()
  const events: Array<{ name: string; payload: Record<string, unknown> }> = []
  for (const name of Object.values(StreamsEvents)) emitter.on(name, (payload: Record<string, unknown>) => events.push({ name, payload }))
  const config: ResolvedStreamsConfig = resolveStreamsConfig({
    applicationId: APP,
    bootstrapServers: 'fake:9092',
    stateDir: '/nonexistent',
    processingGuarantee: options.exactlyOnce === false ? 'at_least_once' : options.v2 ? 'exactly_once_v2' : 'exactly_once',
    taskTimeoutMs: options.taskTimeoutMs ?? 60_000,
    retryBackoffMs: 1,
    retryBackoffMaxMs: 2,
    logger: { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined },
  })
  const disks = new Map<string, Disk>()
  const states = new Map<string, MemoryTaskState>()
  const calls = broker.ops
  const stateFactory: TaskStateFactory = (taskId) => {
    const id = `${taskId.subtopology}_${taskId.partition}`
    let disk = disks.get(id)
    if (!disk) disks.set(id, (disk = { data: new Map(), position: undefined }))
    const sm = new MemoryTaskState(disk, taskId.partition, calls)
    states.set(id, sm)
    return sm
  }
  const points: CommitPoint[] = []
  const hooks = { onCommitPoint: (p: CommitPoint) => void points.push(p) }
  const fatal: Error[] = []
  let confirmedAt = 0
  const flow = new PartitionFlow(client.consumer, emitter, 1000)
  const restore = new RestoreCoordinator({ reader: client.reader, emitter, logger: config.logger })
  // eslint-disable-next-line prefer-const
  let manager: TaskManager
  const threadProducer = options.v2 ? new ThreadProducerHolder(client, `${APP}-p1-1`, config.logger) : undefined
  /** The group metadata of the applied assignment (as the stream thread keeps it). */
  let group: ConsumerGroupMetadata | undefined
  const standbys = new StandbyManager({ config, stateFactory, restore, emitter, isActive: (id) => manager.tasks.has(id) })
  const initializer = new TaskInitializer({
    config,
    topology: TOPOLOGY,
    client,
    engine: { createTaskEngine: (o) => countingEngine(o.stores as unknown as MemoryTaskState, o.collector) },
    stateFactory: (taskId, o) => {
      const sm = stateFactory(taskId, o)!
      // the engine reaches its state through the provider
      ;(sm as { provider: unknown }).provider = sm
      return sm
    },
    restore,
    flow,
    emitter,
    partitionsFor: () => 4,
    cacheMaxBytes: () => 1 << 20,
    wakeUp: () => undefined,
    eosV2: threadProducer ? { producer: threadProducer } : undefined,
    consumer: client.consumer,
  })
  manager = new TaskManager({
    config,
    topology: TOPOLOGY,
    initializer,
    commit: threadProducer
      ? new ExactlyOnceV2Commit({
          producer: threadProducer,
          groupMetadata: () => group,
          tasks: () => [...manager.tasks.values()].filter((t) => t.state === 'RUNNING'),
          hooks,
        })
      : config.exactlyOnce
        ? new ExactlyOnceCommit({ groupId: APP, hooks })
        : new AtLeastOnceCommit({ consumer: client.consumer, logger: config.logger, hooks }),
    threadProducer,
    flow,
    standbys,
    emitter,
    wakeUp: () => undefined,
    fail: (e) => void fatal.push(e),
    failed: () => fatal.length > 0,
    consumerDown: () => false,
    memberConfirmedAt: () => confirmedAt,
  })

  /** Assigns tasks (closing revoked ones) and waits until every task finished initializing. */
  async function assign(...ids: string[]): Promise<void> {
    await manager.applyAssignment('member-1', new Set(ids), true)
    group = { groupId: APP, generationId: broker.generationId, memberId: 'member-1', groupInstanceId: null }
    await settle()
  }

  async function settle(): Promise<void> {
    for (let i = 0; i < 5; i++) {
      await Promise.all([...manager.tasks.values()].map((t) => t.initPromise ?? Promise.resolve()))
      await new Promise((r) => setImmediate(r))
    }
  }

  /** Fetches a task's input from its position and processes it, as the loop does; errors go to the error policy. */
  async function feed(id: string): Promise<number> {
    const t = task(id)
    let n = 0
    for (const p of t.partitions) {
      const records = broker.records(p.topic, p.partition)
      if (records.length) t.enqueue(p.topic, p.partition, records)
    }
    try {
      while (t.processable(Number.MAX_SAFE_INTEGER)) n += await t.process(500, Number.MAX_SAFE_INTEGER)
    } catch (e) {
      await manager.handleError(e, t)
    }
    return n
  }

  /** The loop's interval commit. */
  async function commit(): Promise<void> {
    try {
      await manager.commitAll('interval')
    } catch (e) {
      await manager.handleError(e, undefined)
    }
  }

  /** The group confirms our membership, the backoff passes, failed tasks are re-created. */
  async function revive(): Promise<void> {
    await new Promise((r) => setTimeout(r, 5))
    confirmedAt = Date.now()
    manager.revive(Date.now() + 1)
    await settle()
  }

  function task(id: string): StreamTask {
    const t = manager.tasks.get(id)
    if (!t) throw new Error(`no task ${id}`)
    return t
  }

  const eventNames = () => events.map((e) => e.name)
  return {
    threadProducer,
    broker,
    client,
    config,
    manager,
    events,
    eventNames,
    points,
    fatal,
    states,
    disks,
    assign,
    settle,
    feed,
    commit,
    revive,
    task,
  }
}
