/**
 * Wall-clock idle advance (`idleAdvanceMs`) against the real broker, exactly-once: once the inputs
 * are caught up and idle, the last window's final count and the unmatched left-join row come
 * without a later record (one input partition stays empty: its lag is probed), and a restart on a
 * fresh state directory (state restored from the changelogs, stream-time from the committed offsets'
 * metadata) neither repeats them nor accepts a record behind the advanced stream-time.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KafkaStreams } from '../../lib/app/kafka-streams.js'
import type { StreamsConfig } from '../../lib/app/options.js'
import { StreamsEvents } from '../../lib/app/events.js'
import {
  EmitStrategy,
  JoinWindows,
  Materialized,
  Serdes,
  StreamJoined,
  StreamsBuilder,
  TimeWindows,
  type Topology,
} from '../../lib/index.js'
import { brokers, connectedProducer, consumeUntil, createTopics, randomTopic } from './helpers.js'

const S = Serdes.String()
const L = Serdes.Long()
const clients: KafkaStreams[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close({ timeoutMs: 30_000 })))
})

async function app(topology: Topology, applicationId: string, extra: Partial<StreamsConfig> = {}): Promise<KafkaStreams> {
  const s = new KafkaStreams(topology, {
    applicationId,
    bootstrapServers: brokers(),
    stateDir: await fs.mkdtemp(path.join(os.tmpdir(), 'kstreams-idle-advance-')),
    processingGuarantee: 'exactly_once',
    commitIntervalMs: 200,
    idleAdvanceMs: 1000,
    idleAdvanceDelayMs: 500,
    logLevel: 'error',
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1000,
    ...extra,
  })
  clients.push(s)
  return s
}

describe('wall-clock idle advance (idleAdvanceMs)', () => {
  it('emits final windows and unmatched join rows once idle, exactly once across a restart', async () => {
    const input = randomTopic('ia-in')
    const left = randomTopic('ia-left')
    const right = randomTopic('ia-right')
    const counts = randomTopic('ia-counts')
    const joined = randomTopic('ia-joined')
    await createTopics(
      { topic: input, numPartitions: 2 },
      { topic: left, numPartitions: 2 },
      { topic: right, numPartitions: 2 },
      counts,
      joined,
    )
    const b = new StreamsBuilder()
    b.stream<string, string>(input, { keySerde: S, valueSerde: S })
      .groupByKey()
      .windowedBy(TimeWindows.ofSizeWithNoGrace(2000))
      .emitStrategy(EmitStrategy.onWindowClose())
      .count(Materialized.with(S, L))
      .toStream()
      .map((w, n) => ({ key: `${w.key}@${w.window.startMs}`, value: String(n) }))
      .to(counts, { keySerde: S, valueSerde: S })
    b.stream<string, string>(left, { keySerde: S, valueSerde: S })
      .leftJoin(
        b.stream<string, string>(right, { keySerde: S, valueSerde: S }),
        (l: string, r: string | null) => `${l}+${r}`,
        JoinWindows.ofTimeDifferenceWithNoGrace(1000),
        StreamJoined.with(S, S, S),
      )
      .to(joined, { keySerde: S, valueSerde: S })
    const topology = b.build()
    const applicationId = randomTopic('idle-advance')

    // event time a little behind the wall clock, aligned to a 2 s window
    const t = Math.floor((Date.now() - 20_000) / 2000) * 2000
    const producer = await connectedProducer({ idempotent: true, maxInFlightRequests: 1 })
    // every key to partition 0: partition 1 of each input stays empty (its lag is probed)
    const p0 = (key: string, value: string, ts: number) => ({ key, value, timestamp: String(ts), partition: 0 })
    await producer.send({ topic: input, messages: [p0('a', '1', t), p0('a', '2', t + 100), p0('b', '3', t + 200)] })
    await producer.send({ topic: left, messages: [p0('x', 'X', t), p0('y', 'Y', t)] })
    await producer.send({ topic: right, messages: [p0('y', 'y', t + 10)] })

    const s1 = await app(topology, applicationId)
    await s1.start()
    const expectedCounts = [`a@${t}=2`, `b@${t}=1`]
    const expectedJoined = ['x=X+null', 'y=Y+y']
    const first = await consumeUntil({ topics: [counts, joined], timeoutMs: 60_000, until: (rs) => rs.length >= 4 })
    expect(first.filter((r) => r.topic === counts).map((r) => `${r.key}=${r.value}`)).toEqual(expectedCounts)
    expect(
      first
        .filter((r) => r.topic === joined)
        .map((r) => `${r.key}=${r.value}`)
        .sort(),
    ).toEqual(expectedJoined)

    // restart on a fresh state directory: the stores come back from their changelogs and the idle
    // advance repeats; nothing is emitted twice
    await s1.close({ timeoutMs: 30_000 })
    // waiting when the restarted task starts: behind the advanced stream-time, so late
    await producer.send({ topic: input, messages: [p0('late', '5', t + 10_000)] })
    const s2 = await app(topology, applicationId)
    const dropped: string[] = []
    s2.on(StreamsEvents.RECORD_DROPPED, (e: { reason: string; offset?: string }) => void dropped.push(e.reason))
    await s2.start()
    await s2.waitForState('RUNNING')
    await new Promise((r) => setTimeout(r, 4000))
    // a record at the wall clock opens a window the idle advance closes again
    const t2 = Date.now()
    const w2 = Math.floor(t2 / 2000) * 2000
    await producer.send({ topic: input, messages: [p0('c', '4', t2)] })
    await producer.send({ topic: left, messages: [p0('z', 'Z', t2)] })
    const all = await consumeUntil({
      topics: [counts, joined],
      timeoutMs: 60_000,
      until: (rs) => rs.some((r) => r.key === `c@${w2}`) && rs.some((r) => r.key === 'z'),
    })
    expect(all.filter((r) => r.topic === counts).map((r) => `${r.key}=${r.value}`)).toEqual([...expectedCounts, `c@${w2}=1`])
    expect(
      all
        .filter((r) => r.topic === joined)
        .map((r) => `${r.key}=${r.value}`)
        .sort(),
    ).toEqual([...expectedJoined, 'z=Z+null'])
    // the restarted task resumed from the committed (advanced) stream-time: the windowed count
    // dropped the record behind it as late
    expect(dropped).toEqual(['late'])
    await producer.disconnect()
  }, 120_000)
})
