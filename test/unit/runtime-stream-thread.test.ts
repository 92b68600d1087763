/**
 * The stream thread's loop over the in-memory broker (helpers/fake-kafka.ts): the consumer's
 * callbacks are driven by the test (join, fetched batches), the rest is the real runtime.
 */
import { EventEmitter } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import { resolveStreamsConfig } from '../../lib/app/options.js'
import { StreamThread } from '../../lib/app/stream-thread.js'
import type { TaskStateManager } from '../../lib/state/types.js'
import { FakeBroker, FakeClient } from './helpers/fake-kafka.js'
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

function setup(options: { exactlyOnce: boolean; buffered?: number }) {
  const broker = new FakeBroker()
  const client = new FakeClient(broker)
  const disk = { data: new Map<string, number>(), position: undefined as string | undefined }
  const fatal: Error[] = []
  const hints: string[] = []
  const config = resolveStreamsConfig({
    applicationId: 'app',
    bootstrapServers: 'fake:9092',
    stateDir: '/nonexistent',
    processingGuarantee: options.exactlyOnce ? 'exactly_once' : 'at_least_once',
    commitIntervalMs: 20,
    bufferedRecordsPerPartition: options.buffered ?? 1000,
    logger: { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined },
  })
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
    emitter: new EventEmitter(),
    partitionsFor: () => 1,
    onFatal: (e) => void fatal.push(e),
    onStateHint: (s) => void hints.push(s),
    onShutdownRequested: () => undefined,
  })
  threads.push(thread)
  /** What the consumer would hand over: the read_committed records of a partition from `from`. */
  const fetch = (from: bigint) => {
    const records = broker.records(INPUT, 0, from)
    const last = records.at(-1)!.offset
    return client.consumer.listener!.onBatch(
      { topic: INPUT, partition: 0, records, lastOffset: last, highWatermark: String(BigInt(last) + 1n) },
      async () => undefined,
    )
  }
  return { broker, client, disk, fatal, hints, thread, fetch }
}

describe('stream thread loop', () => {
  for (const exactlyOnce of [true, false]) {
    it(`processes fetched records and commits them on the interval (${exactlyOnce ? 'exactly-once' : 'at-least-once'})`, async () => {
      const s = setup({ exactlyOnce })
      s.broker.produce(INPUT, 0, [
        ['a', '1'],
        ['b', '1'],
        ['a', '2'],
      ])
      await s.thread.start()
      s.client.consumer.listener!.onJoin({ memberId: 'm1', isLeader: true, assignment: { [INPUT]: [0] } })
      await until(() => s.thread.tasks.get('0_0')?.state === 'RUNNING', 'the task to run')
      expect(await s.fetch(0n)).toBe(true)
      await until(() => s.broker.groupOffset(INPUT, 0) === 3, 'the offsets to be committed')
      expect(s.broker.committed(OUTPUT, 0)).toEqual(['a=1', 'b=1', 'a=2'])
      expect(s.broker.committed(CHANGELOG, 0).length).toBeGreaterThanOrEqual(2)
      await until(() => s.disk.data.get('a') === 2, 'the local state')
      expect(s.hints.at(-1)).toBe('RUNNING')
      await s.thread.stop({ clean: true })
      expect(s.fatal).toEqual([])
      expect(s.client.producers.every((p) => (p as unknown as { closed: boolean }).closed)).toBe(true)
    })
  }

  it('leaves batches of a task that is still initializing unresolved, and pauses a full partition', async () => {
    const s = setup({ exactlyOnce: true, buffered: 2 })
    s.broker.produce(INPUT, 0, [
      ['a', '1'],
      ['a', '2'],
      ['a', '3'],
    ])
    let release: () => void = () => undefined
    s.client.reader.beforeBatch = () => new Promise<void>((r) => (release = r))
    s.broker.produce(CHANGELOG, 0, [['a', '0']])
    await s.thread.start()
    s.client.consumer.listener!.onJoin({ memberId: 'm1', isLeader: true, assignment: { [INPUT]: [0] } })
    await until(() => s.thread.tasks.get('0_0')?.state === 'RESTORING', 'the task to restore')
    // restoring: not taken, the partition paused until the task runs
    expect(await s.fetch(0n)).toBe(false)
    expect(s.client.consumer.isPaused({ topic: INPUT, partition: 0 })).toBe(true)
    release()
    await until(() => s.thread.tasks.get('0_0')?.state === 'RUNNING', 'the task to run')
    expect(s.client.consumer.isPaused({ topic: INPUT, partition: 0 })).toBe(false)
    // 3 records over bufferedRecordsPerPartition (2): paused, then resumed once processed
    expect(await s.fetch(0n)).toBe(true)
    await until(() => s.broker.groupOffset(INPUT, 0) === 3, 'the offsets to be committed')
    expect(s.client.consumer.isPaused({ topic: INPUT, partition: 0 })).toBe(false)
    expect(s.disk.data.get('a')).toBe(3)
  })
})
