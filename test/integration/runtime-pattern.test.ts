/**
 * Pattern sources on the real runtime: `builder.stream(/regex/)` reads every topic matching at
 * start (two matching topics with equal partition counts, one non-matching topic), a keyed count
 * over the pattern source spans both topics, and a pattern matching nothing fails the start.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KafkaStreams } from '../../lib/app/kafka-streams.js'
import { Serdes, StreamsBuilder, StreamsConfigError, type Topology } from '../../lib/index.js'
import { brokers, connectedAdmin, connectedProducer, consumeUntil, createTopics, randomTopic } from './helpers.js'

const clients: KafkaStreams[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close({ timeoutMs: 30_000 })))
})

const S = Serdes.String()

async function app(topology: Topology, appId: string): Promise<KafkaStreams> {
  const s = new KafkaStreams(topology, {
    applicationId: appId,
    bootstrapServers: brokers(),
    stateDir: await fs.mkdtemp(path.join(os.tmpdir(), 'kstreams-pattern-')),
    commitIntervalMs: 200,
    logLevel: 'error',
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1000,
  })
  clients.push(s)
  return s
}

describe('pattern sources on the runtime', () => {
  it('reads every matching topic (not the others) and counts keys across them', async () => {
    const prefix = randomTopic('pat')
    const inA = `${prefix}-in-a`
    const inB = `${prefix}-in-b`
    const other = `${prefix}-other`
    const passthrough = `${prefix}-out`
    const counts = `${prefix}-counts`
    await createTopics(
      { topic: inA, numPartitions: 3 },
      { topic: inB, numPartitions: 3 },
      { topic: other, numPartitions: 3 },
      { topic: passthrough, numPartitions: 1 },
      { topic: counts, numPartitions: 1 },
    )
    const b = new StreamsBuilder()
    const src = b.stream<string, string>(new RegExp(`${prefix}-in-.*`), { keySerde: S, valueSerde: S })
    src.to(passthrough, { keySerde: S, valueSerde: S })
    src
      .groupByKey()
      .count()
      .toStream()
      .mapValues((n) => String(n))
      .to(counts, { keySerde: S, valueSerde: S })
    const s = await app(b.build(), randomTopic('pat-app'))
    await s.start()
    await s.waitForState('RUNNING', 60_000)

    const producer = await connectedProducer()
    const msgs = (tag: string, n: number) => Array.from({ length: n }, (_, i) => ({ key: `k${i % 5}`, value: `${tag}-${i}` }))
    await producer.send({ topic: inA, messages: msgs('a', 30) })
    await producer.send({ topic: inB, messages: msgs('b', 20) })
    await producer.send({ topic: other, messages: msgs('x', 25) })

    const expectedCounts = new Map<string, number>()
    for (const m of [...msgs('a', 30), ...msgs('b', 20)]) expectedCounts.set(m.key, (expectedCounts.get(m.key) ?? 0) + 1)
    const last = (rs: Array<{ key: string | null; value: string | null }>) => new Map(rs.map((r) => [r.key!, Number(r.value)]))
    const countOut = await consumeUntil({
      topics: [counts],
      timeoutMs: 60_000,
      until: (rs) => [...expectedCounts].every(([k, n]) => last(rs).get(k) === n),
    })
    expect(last(countOut)).toEqual(expectedCounts)

    // every matching record was counted; after a few more commit intervals, read the whole
    // passthrough topic (high watermark: at-least-once writes no transaction markers)
    await new Promise((r) => setTimeout(r, 2000))
    const admin = await connectedAdmin()
    const end = (await admin.fetchTopicOffsets(passthrough)).reduce((n, p) => n + Number(p.high), 0)
    const again = await consumeUntil({ topics: [passthrough], timeoutMs: 30_000, until: (rs) => rs.length >= Math.max(end, 50) })
    expect(again).toHaveLength(50)
    expect(again.filter((r) => r.value!.startsWith('a-'))).toHaveLength(30)
    expect(again.filter((r) => r.value!.startsWith('b-'))).toHaveLength(20)
    expect(again.some((r) => r.value!.startsWith('x-'))).toBe(false)
    const countEnd = (await admin.fetchTopicOffsets(counts)).reduce((n, p) => n + Number(p.high), 0)
    const allCounts = await consumeUntil({ topics: [counts], timeoutMs: 30_000, until: (rs) => rs.length >= countEnd })
    expect(last(allCounts)).toEqual(expectedCounts)
    // one sub-topology over 3-partition topics: tasks 0_0..0_2 on this single instance
    expect(s.activeTaskIds()).toEqual(['0_0', '0_1', '0_2'])
  })

  it('fails the start with a StreamsConfigError naming a pattern that matches no topic', async () => {
    const prefix = randomTopic('pat-none')
    const b = new StreamsBuilder()
    b.stream<string, string>(new RegExp(`${prefix}-nothing-.*`), { keySerde: S, valueSerde: S }).to(`${prefix}-out`, {
      keySerde: S,
      valueSerde: S,
    })
    const s = await app(b.build(), randomTopic('pat-none-app'))
    const err = await s.start().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(StreamsConfigError)
    expect((err as Error).message).toContain(`/${prefix}-nothing-.*/`)
    expect(s.state).toBe('ERROR')
  })
})
