/**
 * Record caching (KIP-63) on the real broker: the same count() over the same input, once with the
 * store's cache on (the default) and once off, under exactly-once v2. With caching the count store
 * forwards only the latest count of each key per commit, so it emits fewer records; the final
 * count of every key is the same, and (read_committed) each key's counts only go up.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KafkaStreams } from '../../lib/app/kafka-streams.js'
import type { StreamsConfig } from '../../lib/app/options.js'
import { Consumed, Materialized, Produced, Serdes, SessionWindows, StreamsBuilder, TimeWindows, type Topology } from '../../lib/index.js'
import { brokers, connectedAdmin, connectedProducer, consumeUntil, createTopics, randomTopic, type ConsumedRecord } from './helpers.js'

const clients: KafkaStreams[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close({ timeoutMs: 30_000 })))
})

const S = Serdes.String()

async function app(topology: Topology, extra: Partial<StreamsConfig> = {}): Promise<KafkaStreams> {
  const s = new KafkaStreams(topology, {
    applicationId: randomTopic('cache'),
    bootstrapServers: brokers(),
    stateDir: await fs.mkdtemp(path.join(os.tmpdir(), 'kstreams-cache-')),
    processingGuarantee: 'exactly_once_v2',
    commitIntervalMs: 500,
    logLevel: 'error',
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1000,
    ...extra,
  })
  clients.push(s)
  return s
}

function countTopology(input: string, output: string, caching: boolean): Topology {
  const b = new StreamsBuilder()
  const m = Materialized.as<string, number>('counts')
  b.stream(input, Consumed.with(S, S))
    .groupByKey()
    .count(caching ? m.withCachingEnabled() : m.withCachingDisabled())
    .toStream()
    .mapValues((n) => String(n))
    .to(output, Produced.with(S, S))
  return b.build()
}

const KEYS = 20
const RECORDS = 3000

/** Records in `topic` (the sum of its partitions' end offsets). */
async function recordsIn(topic: string): Promise<number> {
  const offsets = await (await connectedAdmin()).fetchTopicOffsets(topic)
  return offsets.reduce((n, p) => n + Number(p.high), 0)
}

function lastByKey(rs: ConsumedRecord[]): Map<string, number> {
  return new Map(rs.map((r) => [r.key!, Number(r.value)]))
}

describe('record caching on the broker', () => {
  // consumeUntil gives up (saying what it read) well before the test's own timeout
  it('count() with caching emits fewer updates than without, with equal final counts (exactly-once v2)', { timeout: 150_000 }, async () => {
    const input = randomTopic('cache-in')
    const outOn = randomTopic('cache-out-on')
    const outOff = randomTopic('cache-out-off')
    await createTopics({ topic: input, numPartitions: 2 }, { topic: outOn, numPartitions: 2 }, { topic: outOff, numPartitions: 2 })
    // the input is there before the apps start: each fetched batch holds many updates per key
    const expected = new Map<string, number>()
    const producer = await connectedProducer()
    for (let start = 0; start < RECORDS; start += 500) {
      const messages = Array.from({ length: 500 }, (_, i) => {
        const key = `k${(start + i) % KEYS}`
        expected.set(key, (expected.get(key) ?? 0) + 1)
        return { key, value: 'x' }
      })
      await producer.send({ topic: input, messages })
    }
    expect(await recordsIn(input)).toBe(RECORDS)
    const on = await app(countTopology(input, outOn, true))
    const off = await app(countTopology(input, outOff, false))
    await Promise.all([on.start(), off.start()])
    const done = (rs: ConsumedRecord[]) => [...expected].every(([k, n]) => lastByKey(rs).get(k) === n)
    const [recordsOn, recordsOff] = await Promise.all([
      consumeUntil({ topics: [outOn], timeoutMs: 90_000, until: done }),
      consumeUntil({ topics: [outOff], timeoutMs: 90_000, until: done }),
    ])
    expect(lastByKey(recordsOn)).toEqual(expected)
    expect(lastByKey(recordsOff)).toEqual(expected)
    // without caching every input record yields its own update
    expect(recordsOff.length).toBe(RECORDS)
    expect(recordsOn.length).toBeLessThan(recordsOff.length / 2)
    // with caching each key's counts still only go up (one partition per key, in order)
    const seen = new Map<string, number>()
    for (const r of recordsOn) {
      const n = Number(r.value)
      expect(n).toBeGreaterThan(seen.get(r.key!) ?? 0)
      seen.set(r.key!, n)
    }
  })

  // windowed and session stores cache too: per window (session) the latest count per commit
  it.each(['time', 'session'] as const)(
    '%s-windowed count() with caching emits fewer updates than without, with equal final counts per window (exactly-once v2)',
    { timeout: 150_000 },
    async (kind) => {
      const input = randomTopic(`wcache-${kind}-in`)
      const outOn = randomTopic(`wcache-${kind}-on`)
      const outOff = randomTopic(`wcache-${kind}-off`)
      await createTopics({ topic: input, numPartitions: 2 }, { topic: outOn, numPartitions: 2 }, { topic: outOff, numPartitions: 2 })
      // record i at base + i ms: 1 s tumbling windows hold ~50 records per key; with a 100 ms gap
      // each key's records (20 ms apart) form one session
      const base = Date.now()
      const expected = new Map<string, number>()
      const sessions = new Map<string, { first: number; last: number; count: number }>()
      const producer = await connectedProducer()
      for (let start = 0; start < RECORDS; start += 500) {
        const messages = Array.from({ length: 500 }, (_, j) => {
          const key = `k${(start + j) % KEYS}`
          const ts = base + start + j
          const w = `${key}@${ts - (ts % 1000)}`
          expected.set(w, (expected.get(w) ?? 0) + 1)
          const s = sessions.get(key) ?? { first: ts, last: ts, count: 0 }
          sessions.set(key, { first: s.first, last: ts, count: s.count + 1 })
          return { key, value: 'x', timestamp: String(ts) }
        })
        await producer.send({ topic: input, messages })
      }
      expect(await recordsIn(input)).toBe(RECORDS)
      if (kind === 'session') {
        expected.clear()
        for (const [key, s] of sessions) expected.set(`${key}@${s.first}-${s.last}`, s.count)
      }
      const topology = (caching: boolean, output: string) => {
        const b = new StreamsBuilder()
        const m = Materialized.as<string, number>('counts')
        const grouped = b.stream(input, Consumed.with(S, S)).groupByKey()
        const windowed =
          kind === 'time'
            ? grouped.windowedBy(TimeWindows.ofSizeAndGrace(1000, 60_000))
            : grouped.windowedBy(SessionWindows.ofInactivityGapAndGrace(100, 60_000))
        windowed
          .count(caching ? m.withCachingEnabled() : m.withCachingDisabled())
          .toStream()
          .map((w, n) => [
            kind === 'time' ? `${w.key}@${w.window.startMs}` : `${w.key}@${w.window.startMs}-${w.window.endMs}`,
            n === null ? null : String(n),
          ])
          .to(output, Produced.with(S, S))
        return b.build()
      }
      const live = (rs: ConsumedRecord[]) => {
        const m = new Map<string, number>()
        for (const r of rs) {
          if (r.value === null) m.delete(r.key!)
          else m.set(r.key!, Number(r.value))
        }
        return m
      }
      const on = await app(topology(true, outOn))
      const off = await app(topology(false, outOff))
      await Promise.all([on.start(), off.start()])
      const done = (rs: ConsumedRecord[]) => {
        const m = live(rs)
        return m.size === expected.size && [...expected].every(([k, n]) => m.get(k) === n)
      }
      const [recordsOn, recordsOff] = await Promise.all([
        consumeUntil({ topics: [outOn], timeoutMs: 90_000, until: done }),
        consumeUntil({ topics: [outOff], timeoutMs: 90_000, until: done }),
      ])
      expect(live(recordsOn)).toEqual(expected)
      expect(live(recordsOff)).toEqual(expected)
      // without caching every input record yields its own update (sessions: and a tombstone of the
      // session it extends)
      expect(recordsOff.length).toBe(kind === 'time' ? RECORDS : 2 * RECORDS - KEYS)
      expect(recordsOn.length).toBeLessThan(recordsOff.length / 2)
    },
  )

  it('statestoreCacheMaxBytes 0 forwards every update', async () => {
    const input = randomTopic('cache0-in')
    const output = randomTopic('cache0-out')
    await createTopics({ topic: input, numPartitions: 1 }, { topic: output, numPartitions: 1 })
    const messages = Array.from({ length: 200 }, (_, i) => ({ key: `k${i % 5}`, value: 'x' }))
    await (await connectedProducer()).send({ topic: input, messages })
    const s = await app(countTopology(input, output, true), { statestoreCacheMaxBytes: 0, processingGuarantee: 'at_least_once' })
    await s.start()
    const out = await consumeUntil({ topics: [output], timeoutMs: 60_000, until: (rs) => rs.length >= 200 })
    expect(out.length).toBe(200)
    expect(lastByKey(out)).toEqual(new Map(Array.from({ length: 5 }, (_, i) => [`k${i}`, 40])))
  })
})
