/**
 * The stream thread's loop over the in-memory broker (helpers/fake-kafka.ts): the consumer's
 * callbacks are driven by the test (join, fetched batches), the rest is the real runtime.
 */
import { EventEmitter } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import { resolveStreamsConfig } from '../../lib/app/options.js'
import { StreamThread } from '../../lib/app/stream-thread.js'
import type { TaskStateManager } from '../../lib/state/types.js'
import { FakeBroker, FakeClient, retriesExceeded } from './helpers/fake-kafka.js'
import { CHANGELOG, INPUT, MemoryTaskState, OUTPUT, TOPOLOGY, countingEngine } from './helpers/runtime-harness.js'

const threads: StreamThread[] = []
afterEach(async () => {
  for (const t of threads.splice(0)) await t.stop({ clean: false })
})

async function until(cond: () => boolean, what: string | (() => string), ms = 3_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

function setup(options: { exactlyOnce: boolean; buffered?: number }) {
  const broker = new FakeBroker()
  const client = new FakeClient(broker)
  /** The local state of each task, by partition (it survives the task's close, as a state directory does). */
  const disks = new Map<number, { data: Map<string, number>; position: string | undefined }>()
  const diskOf = (partition: number) => {
    let d = disks.get(partition)
    if (!d) disks.set(partition, (d = { data: new Map<string, number>(), position: undefined }))
    return d
  }
  const disk = diskOf(0)
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
        const sm = new MemoryTaskState(diskOf(o.changelogPartition), o.changelogPartition, [])
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
  /**
   * One fetch of the consumer's current incarnation: the records of `partition` from its position
   * (last seek or committed offset) as one batch, unless the partition is paused; a batch the
   * thread took moves the position on (kafkajs' resolveOffset). Returns the records handed over.
   */
  const position = new Map<number, bigint>()
  const poll = async (partition: number): Promise<number> => {
    const c = client.consumer
    if (c.down || c.isPaused({ topic: INPUT, partition })) return 0
    const from = position.get(partition) ?? c.position(INPUT, partition)
    const records = broker.records(INPUT, partition, from)
    if (records.length === 0) return 0
    const last = records.at(-1)!.offset
    const taken = await c.listener!.onBatch(
      { topic: INPUT, partition, records, lastOffset: last, highWatermark: String(BigInt(last) + 1n) },
      async () => undefined,
    )
    if (taken) position.set(partition, BigInt(last) + 1n)
    return records.length
  }
  /** The consumer crashed (its fetch positions are gone with it) and is restarted. */
  const crash = (restarting: boolean) => {
    position.clear()
    client.consumer.crash(retriesExceeded(), restarting)
  }
  /** The consumer rejoined: it fetches its partitions from the group's committed offsets again. */
  const refetch = () => position.clear()
  return { broker, client, disk, diskOf, fatal, hints, thread, fetch, poll, crash, refetch }
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

  for (const exactlyOnce of [false, true]) {
    for (const restarting of [true, false]) {
      it(`closes the tasks of a consumer that crashed and left the group; the rejoin's assignment starts them from the group's committed offsets (${exactlyOnce ? 'exactly-once' : 'at-least-once'}, restarted by ${restarting ? 'kafkajs' : 'kstreams'})`, async () => {
        // the chaos matrix's coordinator-kill: the consumer crashed while task 0_0 had a full,
        // paused partition and task 0_1 was initializing; while it was out of the group another
        // member processed and committed partition 0 to its end; the restarted consumer got both
        // tasks back. A task kept across the crash committed its older offset over the other
        // member's (the group's position went backwards, to records never fetched again).
        const s = setup({ exactlyOnce, buffered: 2 })
        const a = (n: number) => Array.from({ length: n }, (_, i) => ['a', String(i)] as [string, string])
        const b = (n: number) => Array.from({ length: n }, (_, i) => ['b', String(i)] as [string, string])
        s.broker.produce(INPUT, 0, a(4))
        s.broker.produce(INPUT, 1, b(3))
        s.broker.produce(CHANGELOG, 1, [['b', '0']])
        let release: () => void = () => undefined
        const blocked = new Promise<void>((r) => (release = r))
        s.client.reader.beforeBatch = () => blocked
        await s.thread.start()
        s.client.consumer.rejoin({ memberId: 'm1', isLeader: true, assignment: { [INPUT]: [0, 1] } })
        await until(
          () => s.thread.tasks.get('0_0')?.state === 'RUNNING' && s.thread.tasks.get('0_1')?.state === 'RESTORING',
          'one task to run, one to restore',
        )
        expect(await s.poll(1)).toBe(3) // not taken: 0_1 is initializing, its partition paused
        expect(s.client.consumer.isPaused({ topic: INPUT, partition: 1 })).toBe(true)
        const fetched = s.poll(0) // 4 records over bufferedRecordsPerPartition (2): paused
        expect(s.client.consumer.isPaused({ topic: INPUT, partition: 0 })).toBe(true)
        s.crash(restarting)
        await fetched
        release()
        // meanwhile another member processed partition 0 (its state in the changelog) and committed it
        s.broker.produce(INPUT, 0, a(3))
        s.broker.produce(CHANGELOG, 0, [['a', '7']])
        if (exactlyOnce) s.broker.fence('app-0_0')
        s.broker.groupOffsets.set(`${INPUT}:0`, 7n)
        await new Promise((r) => setTimeout(r, 50))
        s.client.consumer.rejoin({ memberId: 'm2', isLeader: true, assignment: { [INPUT]: [0, 1] } })
        await until(() => [...s.thread.tasks.values()].filter((t) => t.state === 'RUNNING').length === 2, 'both tasks to run')
        await new Promise((r) => setTimeout(r, 100)) // a few commit intervals
        expect(s.broker.groupOffset(INPUT, 0)).toBe(7)
        // every partition of the running tasks is fetched by the new consumer, from the committed offsets
        expect(s.client.consumer.isPaused({ topic: INPUT, partition: 0 })).toBe(false)
        expect(s.client.consumer.isPaused({ topic: INPUT, partition: 1 })).toBe(false)
        s.broker.produce(INPUT, 0, a(2))
        await until(
          () => {
            void s.poll(0)
            void s.poll(1)
            return s.broker.groupOffset(INPUT, 0) === 9 && s.broker.groupOffset(INPUT, 1) === 3
          },
          () =>
            `every record to be processed and committed (${s.broker.groupOffset(INPUT, 0)}, ${s.broker.groupOffset(INPUT, 1)}, ${[...s.thread.tasks.values()].map((t) => t.id + t.state)}, paused ${[...s.client.consumer.paused]})`,
        )
        await until(() => s.diskOf(0).data.get('a') === 9 && s.diskOf(1).data.get('b') === 3, 'the counts to be committed locally')
        expect(s.fatal).toEqual([])
      })
    }
  }
})

describe('a join after the member was out of the group (Kafka Streams: onPartitionsLost)', () => {
  for (const exactlyOnce of [true, false]) {
    for (const how of ['a new member id', 'a skipped generation'] as const) {
      it(`closes the tasks it kept and restores them from the changelog when the join shows ${how} (${exactlyOnce ? 'exactly-once' : 'at-least-once'})`, async () => {
        // a broker froze: the coordinator dropped this member, another member was assigned its
        // task, processed partition 0 further and committed it; then this member rejoined and got
        // the task back. Kept open across the gap, the task went on from the other member's
        // committed offsets with local state that lacked its updates (counts too low).
        const s = setup({ exactlyOnce })
        const a = (n: number) => Array.from({ length: n }, (_, i) => ['a', String(i)] as [string, string])
        s.broker.produce(INPUT, 0, a(3))
        await s.thread.start()
        s.client.consumer.listener!.onJoin({ memberId: 'm1', generationId: 1, isLeader: true, assignment: { [INPUT]: [0] } })
        await until(() => s.thread.tasks.get('0_0')?.state === 'RUNNING', 'the task to run')
        expect(await s.poll(0)).toBe(3)
        await until(() => s.broker.groupOffset(INPUT, 0) === 3 && s.disk.data.get('a') === 3, 'the first records to be committed')
        // the other member's generation: 4 more records of key a processed, its count in the changelog
        s.broker.produce(INPUT, 0, a(4))
        s.broker.produce(CHANGELOG, 0, [['a', '7']])
        if (exactlyOnce) s.broker.fence('app-0_0')
        s.broker.groupOffsets.set(`${INPUT}:0`, 7n)
        s.client.consumer.listener!.onRebalancing()
        const join =
          how === 'a new member id'
            ? { memberId: 'm1-b', generationId: 3, isLeader: true, assignment: { [INPUT]: [0] } }
            : { memberId: 'm1', generationId: 3, isLeader: true, assignment: { [INPUT]: [0] } }
        s.refetch()
        s.client.consumer.listener!.onJoin(join)
        await new Promise((r) => setTimeout(r, 50))
        await until(() => s.thread.tasks.get('0_0')?.state === 'RUNNING', 'the task to run')
        // the consumer fetches from the group's committed offset (7) on
        s.broker.produce(INPUT, 0, a(2))
        await until(
          () => {
            void s.poll(0)
            return s.broker.groupOffset(INPUT, 0) === 9
          },
          () => `the last records to be committed (offset ${s.broker.groupOffset(INPUT, 0)})`,
        )
        await until(
          () => s.disk.data.get('a') === 9,
          () => `the count to include the other member's updates (a=${s.disk.data.get('a')})`,
        )
        expect(s.fatal).toEqual([])
      })
    }
  }
})
