/**
 * `runUntilCaughtUp` (Spark's AvailableNow trigger) against the real broker: one instance processes
 * the backlog through a repartition topic and a windowed aggregation, advances stream-time so the
 * last windows close, commits and resolves with the client closed; a second run processes only
 * what came since. Two instances started together split the tasks, each resolves, and the result
 * is complete (exactly-once v2, so every count is exact).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  EmitStrategy,
  KafkaStreams,
  Materialized,
  Serdes,
  StreamsBuilder,
  TimeWindows,
  type ProcessingGuarantee,
  type Topology,
} from '../../lib/index.js'
import { brokers, connectedProducer, consumeUntil, createTopics, onCleanup, randomTopic, type ConsumedRecord } from './helpers.js'

const S = Serdes.String()
const L = Serdes.Long()
const WINDOW_MS = 10_000

const clients: KafkaStreams[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close({ timeoutMs: 30_000 })))
})

function topology(input: string, byValue: string, windowed: string): Topology {
  const b = new StreamsBuilder()
  const s = b.stream<string, string>(input, { keySerde: S, valueSerde: S })
  s.groupBy((_k, v) => v, { keySerde: S, valueSerde: S, name: 'by-value' })
    .count({ storeName: 'by-value-counts' })
    .toStream()
    .mapValues((n) => String(n))
    .to(byValue, { keySerde: S, valueSerde: S })
  s.groupByKey()
    .windowedBy(TimeWindows.ofSizeWithNoGrace(WINDOW_MS))
    .emitStrategy(EmitStrategy.onWindowClose())
    .count(Materialized.with(S, L))
    .toStream()
    .map((w, n) => ({ key: `${w.key}@${w.window.startMs}`, value: String(n) }))
    .to(windowed, { keySerde: S, valueSerde: S })
  return b.build()
}

async function client(t: Topology, applicationId: string, processingGuarantee: ProcessingGuarantee): Promise<KafkaStreams> {
  const dir = await mkdtemp(path.join(tmpdir(), 'kstreams-it-available-now-'))
  onCleanup(() => rm(dir, { recursive: true, force: true }))
  const s = new KafkaStreams(t, {
    applicationId,
    bootstrapServers: brokers(),
    stateDir: dir,
    processingGuarantee,
    logLevel: 'error',
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1000,
  })
  clients.push(s)
  return s
}

interface Rec {
  key: string
  value: string
  timestamp: number
}

/** `count` records numbered from `from`: keys k0..k5, values v0..v3, event time from `t0` on every `stepMs`. */
function records(count: number, from: number, t0: number, stepMs = 500): Rec[] {
  return Array.from({ length: count }, (_, j) => {
    const i = from + j
    return { key: `k${i % 6}`, value: `v${i % 4}`, timestamp: t0 + j * stepMs }
  })
}

function expectedByValue(rs: ReadonlyArray<Rec>): Map<string, string> {
  const m = new Map<string, number>()
  for (const r of rs) m.set(r.value, (m.get(r.value) ?? 0) + 1)
  return new Map([...m].map(([k, n]) => [k, String(n)]))
}

function expectedWindows(rs: ReadonlyArray<Rec>): string[] {
  const m = new Map<string, number>()
  for (const r of rs) {
    const k = `${r.key}@${r.timestamp - (r.timestamp % WINDOW_MS)}`
    m.set(k, (m.get(k) ?? 0) + 1)
  }
  return [...m].map(([k, n]) => `${k}=${n}`).sort()
}

/** The latest value per key of a changelog-like output. */
function latest(rs: ReadonlyArray<ConsumedRecord>, topic: string): Map<string, string> {
  const m = new Map<string, string>()
  for (const r of rs) if (r.topic === topic) m.set(r.key!, r.value!)
  return m
}

function sameMap(a: Map<string, string>, b: Map<string, string>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v)
}

describe('runUntilCaughtUp', () => {
  it('processes the backlog, closes the last windows, commits and stops; the next run takes only the new records', async () => {
    const input = randomTopic('an-in')
    const byValue = randomTopic('an-by-value')
    const windowed = randomTopic('an-windowed')
    await createTopics({ topic: input, numPartitions: 3 }, byValue, windowed)
    const t0 = Math.floor((Date.now() - 120_000) / WINDOW_MS) * WINDOW_MS
    const first = records(90, 0, t0)
    const producer = await connectedProducer({ idempotent: true, maxInFlightRequests: 1 })
    onCleanup(() => producer.disconnect())
    await producer.send({ topic: input, messages: first.map((r) => ({ ...r, timestamp: String(r.timestamp) })) })
    const applicationId = randomTopic('available-now')
    const t = topology(input, byValue, windowed)

    const s1 = await client(t, applicationId, 'exactly_once')
    const r1 = await s1.runUntilCaughtUp({ advanceTimeTo: 'wallClock', timeoutMs: 90_000 })
    expect(s1.state).toBe('NOT_RUNNING')
    // every input partition's task (sub-topology 0) and the repartitioned count's (sub-topology 1)
    expect(r1.tasks).toEqual(['0_0', '0_1', '0_2', '1_0', '1_1', '1_2'])
    // committed before resolving: the complete result is there already
    const out1 = await consumeUntil({
      topics: [byValue, windowed],
      timeoutMs: 10_000,
      until: (rs) =>
        sameMap(latest(rs, byValue), expectedByValue(first)) &&
        rs.filter((r) => r.topic === windowed).length >= expectedWindows(first).length,
    })
    expect(
      out1
        .filter((r) => r.topic === windowed)
        .map((r) => `${r.key}=${r.value}`)
        .sort(),
    ).toEqual(expectedWindows(first))

    // the next run starts from the committed offsets: only the new records. One is behind the
    // stream-time the first run advanced to and committed (late: dropped by the windowed count);
    // the others open windows that an event time given as a number closes.
    const late = records(1, 90, t0 + 60_000)
    const second = records(29, 91, Date.now(), 10)
    await producer.send({ topic: input, messages: [...late, ...second].map((r) => ({ ...r, timestamp: String(r.timestamp) })) })
    const s2 = await client(t, applicationId, 'exactly_once')
    await s2.runUntilCaughtUp({ advanceTimeTo: Date.now() + 2 * WINDOW_MS, timeoutMs: 90_000 })
    const all = [...first, ...late, ...second]
    const windows = [...expectedWindows(first), ...expectedWindows(second)].sort()
    const out2 = await consumeUntil({
      topics: [byValue, windowed],
      timeoutMs: 10_000,
      until: (rs) => sameMap(latest(rs, byValue), expectedByValue(all)) && rs.filter((r) => r.topic === windowed).length >= windows.length,
    })
    // each window's final count once; the windows the first run closed are not emitted again
    expect(
      out2
        .filter((r) => r.topic === windowed)
        .map((r) => `${r.key}=${r.value}`)
        .sort(),
    ).toEqual(windows)
  }, 180_000)

  it('two instances started together: each resolves when its tasks are done, the result is complete', async () => {
    const input = randomTopic('an2-in')
    const byValue = randomTopic('an2-by-value')
    const windowed = randomTopic('an2-windowed')
    await createTopics({ topic: input, numPartitions: 4 }, byValue, windowed)
    const t0 = Math.floor((Date.now() - 600_000) / WINDOW_MS) * WINDOW_MS
    const all = records(1000, 0, t0)
    const producer = await connectedProducer({ idempotent: true, maxInFlightRequests: 1 })
    onCleanup(() => producer.disconnect())
    await producer.send({ topic: input, messages: all.map((r) => ({ ...r, timestamp: String(r.timestamp) })) })
    const applicationId = randomTopic('available-now-2')
    const t = topology(input, byValue, windowed)
    const a = await client(t, applicationId, 'exactly_once_v2')
    const b = await client(t, applicationId, 'exactly_once_v2')
    const [ra, rb] = await Promise.all([
      a.runUntilCaughtUp({ advanceTimeTo: 'wallClock', timeoutMs: 120_000 }),
      b.runUntilCaughtUp({ advanceTimeTo: 'wallClock', timeoutMs: 120_000 }),
    ])
    expect(a.state).toBe('NOT_RUNNING')
    expect(b.state).toBe('NOT_RUNNING')
    // between them, every task reached its end (a task may be finished by both after a rebalance)
    expect([...new Set([...ra.tasks, ...rb.tasks])].sort()).toEqual(['0_0', '0_1', '0_2', '0_3', '1_0', '1_1', '1_2', '1_3'])
    const out = await consumeUntil({
      topics: [byValue, windowed],
      timeoutMs: 10_000,
      until: (rs) =>
        sameMap(latest(rs, byValue), expectedByValue(all)) && rs.filter((r) => r.topic === windowed).length >= expectedWindows(all).length,
    })
    expect(
      out
        .filter((r) => r.topic === windowed)
        .map((r) => `${r.key}=${r.value}`)
        .sort(),
    ).toEqual(expectedWindows(all))
  }, 240_000)
})
