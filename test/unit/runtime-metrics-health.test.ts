/**
 * Metrics and health of the runtime (the stream thread over the in-memory broker of
 * helpers/fake-kafka.ts): thread, task and consumer-lag metrics with Kafka Streams' names, KIP-869
 * restore metrics, and what health() reports for running, restoring and waiting tasks.
 */
import { EventEmitter } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import { StreamsEvents, type StreamsEventPayloads } from '../../lib/app/events.js'
import { streamsHealth } from '../../lib/app/health.js'
import { resolveStreamsConfig } from '../../lib/app/options.js'
import { StreamThread } from '../../lib/app/stream-thread.js'
import { RestoreCoordinator } from '../../lib/app/runtime/restore.js'
import { StandbyManager } from '../../lib/app/runtime/standby-manager.js'
import { StreamsMetrics } from '../../lib/metrics/streams-metrics.js'
import { metricValue } from '../../lib/metrics/registry.js'
import type { TaskStateManager } from '../../lib/state/types.js'
import { FakeBroker, FakeClient, protocolError } from './helpers/fake-kafka.js'
import { CHANGELOG, INPUT, MemoryTaskState, OUTPUT, TOPOLOGY, countingEngine } from './helpers/runtime-harness.js'

const threads: StreamThread[] = []
afterEach(async () => {
  for (const t of threads.splice(0)) await t.stop({ clean: false })
})

async function until(cond: () => boolean, what: string, ms = 3_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

const THREAD = 'app-StreamThread-1'

function setup(options: { exactlyOnce: boolean; level?: 'INFO' | 'DEBUG' }) {
  const broker = new FakeBroker()
  const client = new FakeClient(broker)
  const disk = { data: new Map<string, number>(), position: undefined as string | undefined }
  const fatal: Error[] = []
  const config = resolveStreamsConfig({
    applicationId: 'app',
    bootstrapServers: 'fake:9092',
    stateDir: '/nonexistent',
    processingGuarantee: options.exactlyOnce ? 'exactly_once' : 'at_least_once',
    commitIntervalMs: 20,
    retryBackoffMs: 60_000,
    retryBackoffMaxMs: 60_000,
    logger: { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined },
  })
  const metrics = new StreamsMetrics({ clientId: 'app', recordingLevel: options.level ?? 'INFO' })
  const emitter = new EventEmitter()
  const commits: Array<StreamsEventPayloads['kstreams:commit']> = []
  emitter.on(StreamsEvents.COMMIT, (e: StreamsEventPayloads['kstreams:commit']) => void commits.push(e))
  const thread = new StreamThread({
    config,
    topology: TOPOLOGY,
    client,
    engine: { createTaskEngine: (o) => countingEngine(o.stores as unknown as MemoryTaskState, o.collector) },
    state: {
      createTaskStateManager: (o): TaskStateManager => {
        const sm = new MemoryTaskState(disk, o.changelogPartition, [])
        ;(sm as { provider: unknown }).provider = sm
        return sm
      },
    },
    emitter,
    partitionsFor: () => 1,
    onFatal: (e) => void fatal.push(e),
    onStateHint: () => undefined,
    onShutdownRequested: () => undefined,
    metrics,
    threadId: THREAD,
  })
  threads.push(thread)
  const join = (partitions = [0]) =>
    client.consumer.listener!.onJoin({ memberId: 'm1', isLeader: true, assignment: { [INPUT]: partitions } })
  const value = (name: string, tags: Record<string, string> = {}) => metricValue(metrics.metrics(), name, tags)
  return { broker, client, disk, fatal, thread, metrics, join, value, commits }
}

describe('runtime metrics', () => {
  it('counts processed records, commits, polls and tasks on the thread; records-lag per partition', async () => {
    const s = setup({ exactlyOnce: false })
    s.broker.produce(INPUT, 0, [
      ['a', '1'],
      ['b', '1'],
      ['a', '2'],
      ['c', '1'],
    ])
    await s.thread.start()
    s.join()
    await until(() => s.thread.tasks.get('0_0')?.state === 'RUNNING', 'the task to run')
    expect(s.value('task-created-total', { 'thread-id': THREAD })).toBe(1)
    // the first fetch stops short of the end: lag 1
    const records = s.broker.records(INPUT, 0, 0n)
    await s.client.consumer.listener!.onBatch(
      { topic: INPUT, partition: 0, records: records.slice(0, 3), lastOffset: '2', highWatermark: '4' },
      async () => undefined,
    )
    expect(s.value('records-lag', { topic: INPUT, partition: '0' })).toBe(1)
    await s.client.consumer.listener!.onBatch(
      { topic: INPUT, partition: 0, records: records.slice(3), lastOffset: '3', highWatermark: '4' },
      async () => undefined,
    )
    expect(s.value('records-lag', { topic: INPUT, partition: '0' })).toBe(0)
    expect(s.value('records-lag-max', { topic: INPUT, partition: '0' })).toBe(1)
    await until(() => s.broker.groupOffset(INPUT, 0) === 4, 'the offsets to be committed')
    expect(s.value('process-total', { 'thread-id': THREAD })).toBe(4)
    expect(s.value('poll-total', { 'thread-id': THREAD })).toBe(2)
    expect(s.value('commit-total', { 'thread-id': THREAD })).toBeGreaterThanOrEqual(1)
    expect(s.value('commit-latency-max', { 'thread-id': THREAD })).toBeGreaterThanOrEqual(0)
    // the task's metrics carry its tags; process-* at task level is DEBUG (absent at INFO)
    expect(s.value('dropped-records-total', { 'task-id': '0_0' })).toBe(0)
    expect(s.value('process-total', { 'task-id': '0_0' })).toBeUndefined()
    const h = s.thread.health(Date.now())
    expect(h.tasks).toEqual([{ taskId: '0_0', state: 'running' }])
    expect(h.maxLag).toBe(0)
    expect(h.lastCommitAt).toBeGreaterThan(0)
    await s.thread.stop({ clean: true })
    expect(s.value('task-closed-total', { 'thread-id': THREAD })).toBeUndefined() // the thread's metrics are gone with it
    expect(s.value('records-lag', { topic: INPUT, partition: '0' })).toBeUndefined()
    expect(s.fatal).toEqual([])
  })

  it('exactly-once: a trailing commit marker does not leave the lag at 1', async () => {
    const s = setup({ exactlyOnce: true })
    s.broker.produce(INPUT, 0, [
      ['a', '1'],
      ['b', '1'],
    ])
    await s.thread.start()
    s.join()
    await until(() => s.thread.tasks.get('0_0')?.state === 'RUNNING', 'the task to run')
    // the two records of a transaction at offsets 0, 1, its commit marker at 2: high watermark 3
    const records = s.broker.records(INPUT, 0, 0n)
    await s.client.consumer.listener!.onBatch(
      { topic: INPUT, partition: 0, records, lastOffset: '1', highWatermark: '3' },
      async () => undefined,
    )
    expect(s.value('records-lag', { topic: INPUT, partition: '0' })).toBe(1)
    expect(s.thread.health(Date.now()).maxLag).toBe(1)
    // the marker comes as a batch without deliverable records
    s.client.consumer.listener!.onSkipped({ topic: INPUT, partition: 0, firstOffset: '2', lastOffset: '2', highWatermark: '3' })
    expect(s.value('records-lag', { topic: INPUT, partition: '0' })).toBe(0)
    expect(s.thread.health(Date.now()).maxLag).toBe(0)
  })

  it('restoration: health shows progress, restore-total and restore-remaining-records-total (KIP-869) follow it', async () => {
    const s = setup({ exactlyOnce: false })
    s.broker.produce(
      CHANGELOG,
      0,
      Array.from({ length: 25 }, (_, i) => [`k${i}`, '1'] as [string, string]),
    )
    const gates: Array<() => void> = []
    s.client.reader.beforeBatch = (n) => (n === 0 ? undefined : new Promise<void>((r) => gates.push(r)))
    await s.thread.start()
    s.join()
    // first batch (10 records) applied, the second waits
    await until(() => gates.length === 1, 'the second restore batch')
    const h = s.thread.health(Date.now())
    expect(h.tasks).toEqual([{ taskId: '0_0', state: 'restoring', restore: { restored: 10, remaining: 15, total: 25 } }])
    expect(streamsHealth('REBALANCING', h, Date.now()).ready).toBe(false)
    expect(s.value('restore-total', { 'task-id': '0_0' })).toBe(10)
    expect(s.value('restore-remaining-records-total', { 'task-id': '0_0' })).toBe(15)
    gates.shift()!()
    await until(() => gates.length === 1, 'the third restore batch')
    gates.shift()!()
    await until(() => s.thread.tasks.get('0_0')?.state === 'RUNNING', 'the task to run')
    expect(s.value('restore-total', { 'task-id': '0_0' })).toBe(25)
    expect(s.value('restore-remaining-records-total', { 'task-id': '0_0' })).toBe(0)
    const after = s.thread.health(Date.now())
    expect(after.tasks).toEqual([{ taskId: '0_0', state: 'running' }])
    expect(streamsHealth('RUNNING', after, Date.now()).ready).toBe(true)
  })

  it('a task waiting on a retriable error shows up as waiting, with the error code', async () => {
    const s = setup({ exactlyOnce: true })
    s.broker.produce(INPUT, 0, [['a', '1']])
    // the commit fails once with a retriable error: the task goes back to its last commit and waits (backoff 60 s)
    s.broker.fail('commit', () => protocolError('GROUP_LOAD_IN_PROGRESS'))
    await s.thread.start()
    s.join()
    await until(() => s.thread.tasks.get('0_0')?.state === 'RUNNING', 'the task to run')
    await s.client.consumer.listener!.onBatch(
      { topic: INPUT, partition: 0, records: s.broker.records(INPUT, 0, 0n), lastOffset: '0', highWatermark: '1' },
      async () => undefined,
    )
    await until(() => s.thread.health(Date.now()).tasks[0]?.state === 'waiting', 'the task to wait')
    const [t] = s.thread.health(Date.now()).tasks
    expect(t!.waiting).toMatchObject({ reason: 'retriable-error', errorCode: 'GROUP_LOAD_IN_PROGRESS', attempts: 1 })
    expect(t!.waiting!.sinceMs).toBeGreaterThanOrEqual(0)
    expect(streamsHealth('RUNNING', s.thread.health(Date.now()), Date.now()).ready).toBe(false)
    expect(s.value('task-closed-total', { 'thread-id': THREAD })).toBe(1)
    expect(s.fatal).toEqual([])
  })
})

describe('runtime metrics: processing share, enforced processing, standby updates', () => {
  it('active-process-ratio: the share of each task in the processing time of the thread; the shares add up to 1', async () => {
    const s = setup({ exactlyOnce: false })
    s.broker.produce(INPUT, 0, [
      ['a', '1'],
      ['b', '1'],
    ])
    s.broker.produce(INPUT, 1, [['c', '1']])
    await s.thread.start()
    s.join([0, 1])
    await until(() => ['0_0', '0_1'].every((id) => s.thread.tasks.get(id)?.state === 'RUNNING'), 'both tasks to run')
    // registered with the task, 0 before it processed anything
    expect(s.value('active-process-ratio', { 'task-id': '0_0' })).toBe(0)
    for (const p of [0, 1]) {
      const records = s.broker.records(INPUT, p, 0n)
      await s.client.consumer.listener!.onBatch(
        { topic: INPUT, partition: p, records, lastOffset: records.at(-1)!.offset, highWatermark: String(records.length) },
        async () => undefined,
      )
    }
    await until(() => s.value('process-total', { 'thread-id': THREAD }) === 3, 'the records to be processed')
    const shares = ['0_0', '0_1'].map((id) => s.value('active-process-ratio', { 'task-id': id }) as number)
    for (const r of shares) expect(r).toBeGreaterThanOrEqual(0)
    expect(shares[0]! + shares[1]!).toBeCloseTo(1, 6)
    expect(s.fatal).toEqual([])
  })

  it('enforced-processing-rate/-total are registered per task at DEBUG and recorded by its partition group; absent at INFO', async () => {
    for (const level of ['DEBUG', 'INFO'] as const) {
      const s = setup({ exactlyOnce: false, level })
      await s.thread.start()
      s.join()
      await until(() => s.thread.tasks.get('0_0')?.state === 'RUNNING', 'the task to run')
      const task = s.thread.tasks.get('0_0')!
      if (level === 'INFO') {
        expect(task.group.enforcedProcessing).toBeUndefined()
        expect(s.value('enforced-processing-total', { 'task-id': '0_0' })).toBeUndefined()
      } else {
        expect(s.value('enforced-processing-total', { 'task-id': '0_0' })).toBe(0)
        task.group.enforcedProcessing!.record(3)
        expect(s.value('enforced-processing-total', { 'task-id': '0_0' })).toBe(3)
        expect(s.value('enforced-processing-rate', { 'task-id': '0_0' })).toBeGreaterThan(0)
      }
      await s.thread.stop({ clean: true })
    }
  })

  it('standby tasks: update-rate/-total (KIP-869) count the changelog records applied; closing the standby removes them', async () => {
    const broker = new FakeBroker()
    const client = new FakeClient(broker)
    broker.produce(
      CHANGELOG,
      0,
      Array.from({ length: 25 }, (_, i) => [`k${i}`, String(i)] as [string, string]),
    )
    const config = resolveStreamsConfig({
      applicationId: 'app',
      bootstrapServers: 'fake:9092',
      stateDir: '/nonexistent',
      logger: { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined },
    })
    const metrics = new StreamsMetrics({ clientId: 'app', recordingLevel: 'INFO' })
    const emitter = new EventEmitter()
    const disk = { data: new Map<string, number>(), position: undefined as string | undefined }
    // the active task of 0_0 on this thread has task metrics of its own: closing the standby leaves them
    const active = metrics.task(THREAD, '0_0')
    const standbys = new StandbyManager({
      config,
      stateFactory: () => new MemoryTaskState(disk, 0, []),
      restore: new RestoreCoordinator({ reader: client.reader, emitter, logger: config.logger }),
      emitter,
      isActive: () => false,
      metrics: (id) => metrics.standbyTask(THREAD, id),
    })
    const value = (name: string) => metricValue(metrics.metrics(), name, { 'thread-id': THREAD, 'task-id': '0_0' })
    await standbys.assign(new Set(['0_0']))
    await until(() => disk.position === '25', 'the standby to catch up')
    expect(disk.data.size).toBe(25)
    expect(value('update-total')).toBe(25)
    expect(value('update-rate')).toBeGreaterThan(0)
    expect(value('dropped-records-total')).toBe(0)
    await standbys.assign(new Set())
    expect(value('update-total')).toBeUndefined()
    expect(value('dropped-records-total')).toBe(0)
    active.close()
  })
})

describe('commit event', () => {
  it('exactly-once: reports the records (output and changelog) and offsets each transaction committed', async () => {
    const s = setup({ exactlyOnce: true })
    s.broker.produce(INPUT, 0, [
      ['a', '1'],
      ['b', '1'],
      ['a', '2'],
    ])
    await s.thread.start()
    s.join()
    await until(() => s.thread.tasks.get('0_0')?.state === 'RUNNING', 'the task to run')
    await s.client.consumer.listener!.onBatch(
      { topic: INPUT, partition: 0, records: s.broker.records(INPUT, 0, 0n), lastOffset: '2', highWatermark: '3' },
      async () => undefined,
    )
    await until(() => s.broker.groupOffset(INPUT, 0) === 3, 'the offsets to be committed')
    await s.thread.stop({ clean: true })
    const produced = s.broker.committed(OUTPUT, 0).length + s.broker.committed(CHANGELOG, 0).length
    expect(produced).toBeGreaterThanOrEqual(5)
    expect(s.commits.every((c) => c.transactional)).toBe(true)
    expect(s.commits.reduce((n, c) => n + c.records, 0)).toBe(produced)
    expect(s.commits.reduce((n, c) => n + c.offsets, 0)).toBeGreaterThanOrEqual(1)
  })
})

describe('streamsHealth', () => {
  const thread = { tasks: [], maxLag: 3, lastCommitAt: 1_000, loopAt: 1_500 }
  it('is live while the loop iterates and the client is up; ready only when RUNNING', () => {
    expect(streamsHealth('RUNNING', thread, 2_000)).toEqual({
      state: 'RUNNING',
      live: true,
      ready: true,
      tasks: [],
      maxLag: 3,
      lastCommitAgeMs: 1_000,
      loopAgeMs: 500,
    })
    expect(streamsHealth('REBALANCING', thread, 2_000).ready).toBe(false)
    expect(streamsHealth('RUNNING', thread, 100_000).live).toBe(false)
    expect(streamsHealth('RUNNING', thread, 100_000, { loopStallMs: 200_000 }).live).toBe(true)
    for (const down of ['ERROR', 'PENDING_ERROR', 'NOT_RUNNING'] as const) expect(streamsHealth(down, thread, 2_000).live).toBe(false)
    expect(streamsHealth('CREATED', undefined, 2_000)).toMatchObject({ live: true, ready: false, lastCommitAgeMs: null, loopAgeMs: null })
  })
})
