/**
 * The runtime with the real DSL and engine: windowed count, co-partitioned joins across two
 * instances, a stream-GlobalKTable join whose table has a different partition count, poison pills
 * under each deserialization handler, and the co-partitioning check at start.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KafkaStreams } from '../../lib/app/kafka-streams.js'
import type { StreamsConfig } from '../../lib/app/options.js'
import { DLQ_HEADERS } from '../../lib/app/error-handlers.js'
import {
  JoinWindows,
  Serdes,
  StreamsBuilder,
  TimeWindows,
  TopologyError,
  type ReadOnlyKeyValueStore,
  type Topology,
} from '../../lib/index.js'
import { brokers, connectedAdmin, connectedProducer, consumeUntil, createTopics, randomTopic } from './helpers.js'

const clients: KafkaStreams[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close({ timeoutMs: 30_000 })))
})

const S = Serdes.String()

async function app(topology: Topology, appId: string, extra: Partial<StreamsConfig> = {}): Promise<KafkaStreams> {
  const s = new KafkaStreams(topology, {
    applicationId: appId,
    bootstrapServers: brokers(),
    stateDir: await fs.mkdtemp(path.join(os.tmpdir(), 'kstreams-dsl-')),
    commitIntervalMs: 200,
    logLevel: 'error',
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1000,
    ...extra,
  })
  clients.push(s)
  return s
}

describe('DSL end to end', () => {
  it('windowed count (tumbling 10 s windows) at-least-once', async () => {
    const input = randomTopic('win-in')
    const output = randomTopic('win-out')
    await createTopics({ topic: input, numPartitions: 2 }, { topic: output, numPartitions: 2 })
    const b = new StreamsBuilder()
    b.stream<string, string>(input, { keySerde: S, valueSerde: S })
      .groupByKey()
      .windowedBy(TimeWindows.ofSizeWithNoGrace(10_000))
      .count()
      .toStream()
      .map((wk, n) => ({ key: `${wk.key}@${wk.window.startMs}`, value: String(n) }))
      .to(output, { keySerde: S, valueSerde: S })
    const s = await app(b.build(), randomTopic('win'))
    await s.start()
    const base = 1_700_000_000_000
    const expected = new Map<string, number>()
    const messages = Array.from({ length: 120 }, (_, i) => {
      const key = `u${i % 4}`
      const ts = base + i * 500 // 60 s of event time: 6 windows
      const k = `${key}@${ts - (ts % 10_000)}`
      expected.set(k, (expected.get(k) ?? 0) + 1)
      return { key, value: 'x', timestamp: String(ts) }
    })
    await (await connectedProducer()).send({ topic: input, messages })
    const last = (rs: Array<{ key: string | null; value: string | null }>) => new Map(rs.map((r) => [r.key!, Number(r.value)]))
    const out = await consumeUntil({
      topics: [output],
      timeoutMs: 60_000,
      until: (rs) => [...expected].every(([k, n]) => last(rs).get(k) === n),
    })
    expect(last(out)).toEqual(expected)
  })

  it('co-partitioned stream-table and stream-stream joins across 2 instances with 4 partitions', async () => {
    const users = randomTopic('users')
    const clicks = randomTopic('clicks')
    const views = randomTopic('views')
    const enriched = randomTopic('enriched')
    const paired = randomTopic('paired')
    await createTopics(...[users, clicks, views, enriched, paired].map((topic) => ({ topic, numPartitions: 4 })))
    const b = new StreamsBuilder()
    const table = b.table<string, string>(users, { keySerde: S, valueSerde: S }, { storeName: 'users' })
    const clickStream = b.stream<string, string>(clicks, { keySerde: S, valueSerde: S })
    clickStream.join(table, (page: string, name: string) => `${page} by ${name}`).to(enriched, { keySerde: S, valueSerde: S })
    clickStream
      .join(
        b.stream<string, string>(views, { keySerde: S, valueSerde: S }),
        (c: string, v: string) => `${c}+${v}`,
        JoinWindows.ofTimeDifferenceWithNoGrace(5_000),
      )
      .to(paired, { keySerde: S, valueSerde: S })
    const topology = b.build()
    const appId = randomTopic('join')
    const a1 = await app(topology, appId)
    const a2 = await app(topology, appId)
    await Promise.all([a1.start(), a2.start()])
    await Promise.all([a1.waitForState('RUNNING'), a2.waitForState('RUNNING')])
    const producer = await connectedProducer()
    const N = 40
    const base = Date.now()
    await producer.send({
      topic: users,
      messages: Array.from({ length: N }, (_, i) => ({ key: `user${i}`, value: `name${i}`, timestamp: String(base) })),
    })
    // wait until every user is in one of the two instances' table stores
    await expect
      .poll(
        async () => {
          let n = 0
          for (let i = 0; i < N; i++) {
            for (const s of [a1, a2]) {
              const v = await s
                .store<ReadOnlyKeyValueStore<string, string>>('users')
                .get(`user${i}`)
                .catch(() => undefined)
              if (v !== undefined) n++
            }
          }
          return n
        },
        { timeout: 30_000, interval: 500 },
      )
      .toBe(N)
    await producer.send({
      topic: clicks,
      messages: Array.from({ length: N }, (_, i) => ({ key: `user${i}`, value: `page${i}`, timestamp: String(base + 1000) })),
    })
    await producer.send({
      topic: views,
      messages: Array.from({ length: N }, (_, i) => ({ key: `user${i}`, value: `view${i}`, timestamp: String(base + 2000) })),
    })
    const out1 = await consumeUntil({ topics: [enriched], timeoutMs: 60_000, until: (rs) => rs.length >= N })
    expect(new Map(out1.map((r) => [r.key, r.value]))).toEqual(
      new Map(Array.from({ length: N }, (_, i) => [`user${i}`, `page${i} by name${i}`])),
    )
    const out2 = await consumeUntil({ topics: [paired], timeoutMs: 60_000, until: (rs) => rs.length >= N })
    expect(out2.map((r) => `${r.key}=${r.value}`).sort()).toEqual(Array.from({ length: N }, (_, i) => `user${i}=page${i}+view${i}`).sort())
    expect([...a1.activeTaskIds(), ...a2.activeTaskIds()].sort()).toEqual(['0_0', '0_1', '0_2', '0_3'])
  })

  it('stream-GlobalKTable join where the table topic has a different partition count', async () => {
    const countries = randomTopic('countries')
    const orders = randomTopic('orders')
    const out = randomTopic('orders-out')
    await createTopics({ topic: countries, numPartitions: 1 }, { topic: orders, numPartitions: 3 }, { topic: out, numPartitions: 3 })
    const producer = await connectedProducer()
    await producer.send({
      topic: countries,
      messages: ['fr:France', 'de:Germany', 'jp:Japan'].map((kv) => ({ key: kv.split(':')[0]!, value: kv.split(':')[1]! })),
    })
    const b = new StreamsBuilder()
    const g = b.globalTable<string, string>(countries, { keySerde: S, valueSerde: S }, { storeName: 'countries' })
    b.stream<string, string>(orders, { keySerde: S, valueSerde: S })
      .join(
        g,
        (_k: string, v: string) => v.split('|')[1]!,
        (v: string, country: string) => `${v.split('|')[0]} to ${country}`,
      )
      .to(out, { keySerde: S, valueSerde: S })
    const s = await app(b.build(), randomTopic('glob'))
    await s.start()
    const codes = ['fr', 'de', 'jp']
    await producer.send({
      topic: orders,
      messages: Array.from({ length: 30 }, (_, i) => ({ key: `o${i}`, value: `order${i}|${codes[i % 3]}` })),
    })
    const names: Record<string, string> = { fr: 'France', de: 'Germany', jp: 'Japan' }
    const records = await consumeUntil({ topics: [out], timeoutMs: 60_000, until: (rs) => rs.length >= 30 })
    expect(new Map(records.map((r) => [r.key, r.value]))).toEqual(
      new Map(Array.from({ length: 30 }, (_, i) => [`o${i}`, `order${i} to ${names[codes[i % 3]!]}`])),
    )
    // kept current while running
    await producer.send({ topic: countries, messages: [{ key: 'fr', value: 'République française' }] })
    await expect
      .poll(() => s.store<ReadOnlyKeyValueStore<string, string>>('countries').get('fr'), { timeout: 20_000 })
      .toBe('République française')
  })

  it('refuses to start when co-partitioned topics have different partition counts, naming them', async () => {
    const left = randomTopic('left')
    const right = randomTopic('right')
    await createTopics({ topic: left, numPartitions: 2 }, { topic: right, numPartitions: 3 })
    const b = new StreamsBuilder()
    b.stream<string, string>(left, { keySerde: S, valueSerde: S })
      .join(b.table<string, string>(right, { keySerde: S, valueSerde: S }), (l: string, r: string) => l + r)
      .to(randomTopic('never'), { keySerde: S, valueSerde: S })
    const s = await app(b.build(), randomTopic('copart'))
    const err = await s.start().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TopologyError)
    expect((err as Error).message).toContain(`'${left}' (2)`)
    expect((err as Error).message).toContain(`'${right}' (3)`)
    expect(s.state).toBe('ERROR')
  })
})

describe('poison pills (random bytes, truncated JSON) under each deserialization handler', () => {
  const pills = [Buffer.from([0xff, 0x00, 0x13, 0x37, 0x80]), Buffer.from('{"amount": 1')]
  async function run(handler: StreamsConfig['deserializationExceptionHandler'], extraTopic?: string) {
    const input = randomTopic('pp-in')
    const output = randomTopic('pp-out')
    await createTopics(input, output, ...(extraTopic ? [extraTopic] : []))
    const b = new StreamsBuilder()
    b.stream<string, { amount: number }>(input, { keySerde: S, valueSerde: Serdes.Json<{ amount: number }>() })
      .mapValues((v) => String(v.amount * 2))
      .to(output, { keySerde: S, valueSerde: S })
    const appId = randomTopic('pp')
    const s = await app(b.build(), appId, { deserializationExceptionHandler: handler })
    await s.start()
    const good = (n: number) => ({ key: `k${n}`, value: JSON.stringify({ amount: n }) })
    await (
      await connectedProducer()
    ).send({
      topic: input,
      messages: [good(1), { key: 'bad1', value: pills[0]! }, good(2), { key: 'bad2', value: pills[1]! }, good(3)],
    })
    return { s, input, output, appId }
  }

  it("'logAndContinue' skips them and processes the rest", async () => {
    const { output } = await run('logAndContinue')
    const out = await consumeUntil({ topics: [output], until: (rs) => rs.length >= 3 })
    expect(out.map((r) => r.value)).toEqual(['2', '4', '6'])
  })

  it('a dead-letter topic receives the original bytes with the error in headers', async () => {
    const dlq = randomTopic('pp-dlq')
    const { output, input } = await run({ deadLetterTopic: dlq }, dlq)
    const out = await consumeUntil({ topics: [output], until: (rs) => rs.length >= 3 })
    expect(out.map((r) => r.value)).toEqual(['2', '4', '6'])
    const dead = await consumeUntil({ topics: [dlq], until: (rs) => rs.length >= 2 })
    expect(dead.map((r) => r.key)).toEqual(['bad1', 'bad2'])
    expect(dead.map((r) => r.rawValue)).toEqual(pills)
    expect(dead.map((r) => String(r.headers?.[DLQ_HEADERS.OFFSET]))).toEqual(['1', '3'])
    expect(dead.map((r) => String(r.headers?.[DLQ_HEADERS.TOPIC]))).toEqual([input, input])
    expect(String(dead[1]!.headers?.[DLQ_HEADERS.MESSAGE]).length).toBeGreaterThan(0)
  })

  it("'fail' stops in ERROR; the bad record's offset is never committed", async () => {
    const { s, output, appId, input } = await run('fail')
    await s.waitForState('ERROR', 30_000)
    const out = await consumeUntil({ topics: [output], until: (rs) => rs.length >= 1 })
    expect(out.map((r) => r.value)).toEqual(['2'])
    const admin = await connectedAdmin()
    const offsets = await admin.fetchOffsets({ groupId: appId, topics: [input] })
    expect(offsets[0]!.partitions[0]!.offset).toBe('1')
  })
})

describe('uncaught exception handler', () => {
  async function failingOnce(appId: string, input: string, output: string, state: { failed: boolean }) {
    const b = new StreamsBuilder()
    b.stream<string, string>(input, { keySerde: S, valueSerde: S })
      .mapValues((v) => {
        if (v === 'boom' && !state.failed) {
          state.failed = true
          throw new Error('transient failure')
        }
        return v.toUpperCase()
      })
      .to(output, { keySerde: S, valueSerde: S })
    return app(b.build(), appId)
  }

  it('REPLACE_THREAD restarts processing from the committed offsets', async () => {
    const input = randomTopic('ue-in')
    const output = randomTopic('ue-out')
    await createTopics(input, output)
    const state = { failed: false }
    const s = await failingOnce(randomTopic('ue'), input, output, state)
    const errors: string[] = []
    s.setUncaughtExceptionHandler((e) => {
      errors.push(e.message)
      return 'REPLACE_THREAD'
    })
    await s.start()
    await (await connectedProducer()).send({ topic: input, messages: ['a', 'boom', 'c'].map((value) => ({ key: 'k', value })) })
    const out = await consumeUntil({ topics: [output], timeoutMs: 60_000, until: (rs) => rs.some((r) => r.value === 'C') })
    expect(out.map((r) => r.value).filter((v) => v !== 'A')).toEqual(['BOOM', 'C'])
    expect(out.map((r) => r.value)).toContain('A')
    expect(errors).toHaveLength(1)
    expect(errors[0]).toContain('transient failure')
    await s.waitForState('RUNNING')
  })

  it('SHUTDOWN_APPLICATION stops every instance of the application into ERROR', async () => {
    const input = randomTopic('ue-in')
    const output = randomTopic('ue-out')
    await createTopics({ topic: input, numPartitions: 2 }, output)
    const appId = randomTopic('ue')
    const state = { failed: false }
    const a = await failingOnce(appId, input, output, state)
    const b = await failingOnce(appId, input, output, state)
    for (const s of [a, b]) s.setUncaughtExceptionHandler(() => 'SHUTDOWN_APPLICATION')
    await Promise.all([a.start(), b.start()])
    await Promise.all([a.waitForState('RUNNING'), b.waitForState('RUNNING')])
    await (await connectedProducer()).send({ topic: input, messages: [{ key: 'k', value: 'boom' }] })
    await Promise.all([a.waitForState('ERROR', 60_000), b.waitForState('ERROR', 60_000)])
    expect([a.state, b.state]).toEqual(['ERROR', 'ERROR'])
  })
})
