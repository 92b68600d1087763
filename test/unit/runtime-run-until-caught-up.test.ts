/**
 * A run until caught up (lib/app/runtime/run-until-caught-up.ts) in the stream thread's loop over
 * the in-memory broker (helpers/fake-kafka.ts): the end offsets read at the start bound what is
 * processed, the task advances stream-time and commits at its end, and the run is done only with
 * an applied assignment; plus the repartition levels, on the tracker alone.
 */
import { EventEmitter } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import { resolveStreamsConfig } from '../../lib/app/options.js'
import { RunUntilCaughtUp } from '../../lib/app/runtime/run-until-caught-up.js'
import { StreamThread } from '../../lib/app/stream-thread.js'
import type { TopologyDef } from '../../topology/engine/types.js'
import { IllegalStateError, StreamsConfigError } from '../../topology/errors.js'
import { KafkaStreams, Serdes, StreamsBuilder } from '../../lib/index.js'
import type { TaskStateManager } from '../../lib/state/types.js'
import { FakeBroker, FakeClient } from './helpers/fake-kafka.js'
import { INPUT, MemoryTaskState, OUTPUT, TOPOLOGY, countingEngine } from './helpers/runtime-harness.js'

const quiet = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined }
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

function setup(advanceTo: number | undefined) {
  const broker = new FakeBroker()
  const client = new FakeClient(broker)
  const disk = { data: new Map<string, number>(), position: undefined as string | undefined }
  const advanced: number[] = []
  const config = resolveStreamsConfig({
    applicationId: 'app',
    bootstrapServers: 'fake:9092',
    stateDir: '/nonexistent',
    processingGuarantee: 'exactly_once',
    // far away: only the run's own commit request commits
    commitIntervalMs: 60_000,
    logger: quiet,
  })
  const run = new RunUntilCaughtUp({
    topology: TOPOLOGY,
    groupId: 'app',
    kafka: () => ({ admin: client.admin, reader: client.reader }),
    advanceTo: () => advanceTo,
    resetOf: () => 'earliest',
    logger: quiet,
  })
  const thread = new StreamThread({
    config,
    topology: TOPOLOGY,
    client,
    engine: {
      createTaskEngine: (o) => {
        const e = countingEngine(o.stores as unknown as MemoryTaskState, o.collector)
        return Object.assign(e, {
          advanceStreamTime: async (t: number) => {
            advanced.push(t)
            return true
          },
        })
      },
    },
    state: {
      createTaskStateManager: (o): TaskStateManager => {
        const sm = new MemoryTaskState(disk, o.changelogPartition, [])
        ;(sm as { provider: unknown }).provider = sm
        return sm
      },
    },
    emitter: new EventEmitter(),
    partitionsFor: () => 1,
    onFatal: () => undefined,
    onStateHint: () => undefined,
    onShutdownRequested: () => undefined,
    runUntilCaughtUp: run,
  })
  threads.push(thread)
  let resolved: ReadonlyArray<string> | undefined
  void run.done.then((ids) => (resolved = ids))
  return { broker, client, disk, thread, run, advanced, resolved: () => resolved }
}

describe('run until caught up (stream thread)', () => {
  it('processes up to the end offsets read at the start, advances stream-time, commits, and is done', async () => {
    const s = setup(5_000)
    s.broker.produce(INPUT, 0, [
      ['a', '1'],
      ['b', '1'],
      ['a', '2'],
    ])
    await s.thread.start()
    // no assignment yet: not done, whatever the (absent) tasks say
    await new Promise((r) => setTimeout(r, 300))
    expect(s.resolved()).toBeUndefined()
    await until(() => s.run.target(INPUT, 0) === 3n, 'the target offsets to be read')
    s.client.consumer.listener!.onJoin({ memberId: 'm1', isLeader: true, assignment: { [INPUT]: [0] } })
    await until(() => s.thread.tasks.get('0_0')?.state === 'RUNNING', 'the task to run')
    // produced after the start: beyond the target, fetched in the same batch, not processed
    s.broker.produce(INPUT, 0, [
      ['c', '1'],
      ['a', '3'],
    ])
    const records = s.broker.records(INPUT, 0, 0n)
    expect(records).toHaveLength(5)
    const taken = await s.client.consumer.listener!.onBatch(
      { topic: INPUT, partition: 0, records, lastOffset: '4', highWatermark: '5' },
      async () => undefined,
    )
    expect(taken).toBe(true)
    await until(() => s.resolved() !== undefined, 'the run to be done')
    expect(s.resolved()).toEqual(['0_0'])
    expect(s.broker.groupOffset(INPUT, 0)).toBe(3)
    expect(s.broker.committed(OUTPUT, 0)).toEqual(['a=1', 'b=1', 'a=2'])
    expect(s.advanced).toEqual([5_000])
    // a batch entirely beyond the target is dropped; the task stays done, nothing more committed
    expect(
      await s.client.consumer.listener!.onBatch(
        { topic: INPUT, partition: 0, records: s.broker.records(INPUT, 0, 3n), lastOffset: '4', highWatermark: '5' },
        async () => undefined,
      ),
    ).toBe(true)
    await new Promise((r) => setTimeout(r, 100))
    expect(s.broker.groupOffset(INPUT, 0)).toBe(3)
    expect(s.disk.data.get('c')).toBeUndefined()
  })

  it('is done at once with an applied assignment of no task; a partition committed at its end needs no fetch', async () => {
    const empty = setup(undefined)
    await empty.thread.start()
    empty.client.consumer.listener!.onJoin({ memberId: 'm1', isLeader: true, assignment: {} })
    await until(() => empty.resolved() !== undefined, 'the run without tasks to be done')
    expect(empty.resolved()).toEqual([])

    const s = setup(undefined)
    s.broker.produce(INPUT, 0, [['a', '1']])
    s.broker.groupOffsets.set(`${INPUT}:0`, 1n)
    await s.thread.start()
    await until(() => s.run.target(INPUT, 0) === 1n, 'the target offsets to be read')
    s.client.consumer.listener!.onJoin({ memberId: 'm1', isLeader: true, assignment: { [INPUT]: [0] } })
    await until(() => s.resolved() !== undefined, 'the run to be done')
    expect(s.resolved()).toEqual(['0_0'])
    // without advanceTimeTo stream-time stays where the records put it
    expect(s.advanced).toEqual([])
    expect(s.disk.data.size).toBe(0)
  })
})

describe('run until caught up: repartition levels', () => {
  it("reads a repartition topic's targets only once the group committed the upstream topics to their targets", async () => {
    const sub = (id: number, sources: string[], sinks: string[]) => ({
      id,
      nodes: [],
      sourceTopics: sources,
      sinkTopics: sinks,
      stores: [],
    })
    const topology = {
      subtopologies: [
        sub(0, ['in'], ['app-r1-repartition']),
        sub(1, ['app-r1-repartition'], ['app-r2-repartition']),
        sub(2, ['app-r2-repartition'], ['out']),
      ],
      repartitionTopics: [{ name: 'app-r1-repartition' }, { name: 'app-r2-repartition' }],
      stores: new Map(),
      globalStores: [],
    } as unknown as TopologyDef
    const ends = new Map([
      ['in:0', 10n],
      ['app-r1-repartition:0', 4n],
      ['app-r2-repartition:0', 2n],
    ])
    const committed = new Map<string, bigint>()
    const read: string[] = []
    const run = new RunUntilCaughtUp({
      topology,
      groupId: 'app',
      groupPollMs: 0,
      kafka: () => ({
        admin: {
          topicOffsets: async (topic: string) => {
            read.push(topic)
            return new Map([[`${topic}:0`, { high: String(ends.get(`${topic}:0`)), low: '0' }]])
          },
          committedOffsets: async (_g: string, ps: ReadonlyArray<{ topic: string; partition: number }>) =>
            new Map(
              ps.flatMap((p) =>
                committed.has(`${p.topic}:${p.partition}`)
                  ? [[`${p.topic}:${p.partition}`, committed.get(`${p.topic}:${p.partition}`)!] as const]
                  : [],
              ),
            ),
        },
        reader: {
          endOffsets: async (ps) => new Map(ps.map((p) => [`${p.topic}:${p.partition}`, String(ends.get(`${p.topic}:${p.partition}`))])),
        },
      }),
      advanceTo: () => undefined,
      resetOf: () => 'earliest',
      logger: quiet,
    })
    const tick = async () => {
      run.advances([], Date.now())
      await new Promise((r) => setTimeout(r, 10))
    }
    await tick()
    expect(run.target('in', 0)).toBe(10n)
    expect(run.target('app-r1-repartition', 0)).toBeUndefined()
    // upstream not committed to its target yet: the repartition topic may still grow
    committed.set('in:0', 9n)
    ends.set('app-r1-repartition:0', 6n)
    await tick()
    await tick()
    expect(run.target('app-r1-repartition', 0)).toBeUndefined()
    committed.set('in:0', 10n)
    await tick()
    expect(run.target('app-r1-repartition', 0)).toBe(6n)
    expect(run.target('app-r2-repartition', 0)).toBeUndefined()
    committed.set('app-r1-repartition:0', 6n)
    await tick()
    expect(run.target('app-r2-repartition', 0)).toBe(2n)
    expect(read).toEqual(['in', 'app-r1-repartition', 'app-r2-repartition'])
  })
})

describe('KafkaStreams.runUntilCaughtUp arguments', () => {
  it('rejects an invalid advanceTimeTo and a client that is not CREATED, at once', async () => {
    const b = new StreamsBuilder()
    b.stream<string, string>('in', { keySerde: Serdes.String(), valueSerde: Serdes.String() }).to('out')
    const streams = new KafkaStreams(b.build(), { applicationId: 'app', bootstrapServers: 'localhost:1', logger: quiet })
    expect(() => streams.runUntilCaughtUp({ advanceTimeTo: -1 })).toThrow(StreamsConfigError)
    expect(() => streams.runUntilCaughtUp({ advanceTimeTo: 'now' as never })).toThrow(
      "runUntilCaughtUp: advanceTimeTo must be 'wallClock' or an event time >= 0 (ms), got now",
    )
    await streams.close()
    expect(() => streams.runUntilCaughtUp()).toThrow(IllegalStateError)
  })
})
