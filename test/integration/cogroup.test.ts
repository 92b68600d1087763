/**
 * Cogroup (KIP-150) on the real broker: a re-keyed input goes through its repartition topic (created
 * by the app), a plain input does not, and both fold into one shared store per key.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KafkaStreams } from '../../lib/app/kafka-streams.js'
import { Consumed, Grouped, Materialized, Serdes, StreamsBuilder, type ReadOnlyKeyValueStore } from '../../lib/index.js'
import { brokers, connectedProducer, consumeUntil, createTopics, randomTopic, type ConsumedRecord } from './helpers.js'

const clients: KafkaStreams[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close({ timeoutMs: 30_000 })))
})

const S = Serdes.String()

describe('cogroup on the broker', () => {
  it('aggregates a re-keyed and a plain stream into one store', async () => {
    const clicks = randomTopic('cg-clicks')
    const buys = randomTopic('cg-buys')
    const output = randomTopic('cg-out')
    await createTopics(...[clicks, buys, output].map((topic) => ({ topic, numPartitions: 3 })))
    const b = new StreamsBuilder()
    // clicks are keyed by page with the user as value: re-keyed by user
    const byUser = b
      .stream(clicks, Consumed.with(S, S))
      .map((page, user) => [user, page] as [string, string])
      .groupByKey(Grouped.with<string, string>(S, S).withName('clicks-by-user'))
    const purchases = b.stream(buys, Consumed.with(S, S)).groupByKey()
    byUser
      .cogroup<string>((_user, page, agg) => `${agg}c:${page};`)
      .cogroup(purchases, (_user, item, agg) => `${agg}b:${item};`)
      .aggregate(() => '', Materialized.as<string, string>('activity').withValueSerde(S))
      .toStream()
      .to(output, { keySerde: S, valueSerde: S })
    const appId = randomTopic('cg-app')
    const streams = new KafkaStreams(b.build(), {
      applicationId: appId,
      bootstrapServers: brokers(),
      stateDir: await fs.mkdtemp(path.join(os.tmpdir(), 'kstreams-cogroup-')),
      commitIntervalMs: 200,
      logLevel: 'error',
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 1000,
    })
    clients.push(streams)
    await streams.start()
    await streams.waitForState('RUNNING')
    const producer = await connectedProducer()
    const now = Date.now()
    await producer.send({ topic: clicks, messages: [{ key: 'home', value: 'u1', timestamp: String(now) }] })
    await consumeUntil({ topics: [output], timeoutMs: 60_000, until: (rs) => rs.some((r) => r.key === 'u1') })
    await producer.send({ topic: buys, messages: [{ key: 'u1', value: 'book', timestamp: String(now + 1) }] })
    await consumeUntil({ topics: [output], timeoutMs: 60_000, until: (rs) => rs.some((r) => r.value === 'c:home;b:book;') })
    await producer.send({ topic: clicks, messages: [{ key: 'cart', value: 'u1', timestamp: String(now + 2) }] })
    const last = (rs: ConsumedRecord[]) => new Map(rs.map((r) => [r.key!, r.value]))
    const out = await consumeUntil({ topics: [output], timeoutMs: 60_000, until: (rs) => last(rs).get('u1') === 'c:home;b:book;c:cart;' })
    expect(out.filter((r) => r.key === 'u1').map((r) => r.value)).toEqual(['c:home;', 'c:home;b:book;', 'c:home;b:book;c:cart;'])
    expect(await streams.store<ReadOnlyKeyValueStore<string, string>>('activity').get('u1')).toBe('c:home;b:book;c:cart;')
  }, 120_000)
})
