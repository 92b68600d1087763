/**
 * Foreign-key table-table join (KIP-213) on the real broker: the left table (4 partitions) and the
 * right table (2 partitions) need not be co-partitioned; the app creates the subscription and
 * response topics itself (partitioned like the right and the left table), and results follow
 * foreign-key changes and deletes on both sides.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KafkaStreams } from '../../lib/app/kafka-streams.js'
import { Consumed, Serdes, StreamsBuilder } from '../../lib/index.js'
import { brokers, connectedAdmin, connectedProducer, consumeUntil, createTopics, randomTopic, type ConsumedRecord } from './helpers.js'

const clients: KafkaStreams[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close({ timeoutMs: 30_000 })))
})

const S = Serdes.String()

describe('foreign-key join on the broker', () => {
  it('joins, re-keys and deletes across tables with different partition counts', async () => {
    const orders = randomTopic('fk-orders')
    const customers = randomTopic('fk-customers')
    const output = randomTopic('fk-out')
    await createTopics({ topic: orders, numPartitions: 4 }, { topic: customers, numPartitions: 2 }, { topic: output, numPartitions: 4 })
    const b = new StreamsBuilder()
    const orderTable = b.table(orders, Consumed.with(S, S))
    const customerTable = b.table(customers, Consumed.with(S, S))
    orderTable
      .leftJoin(
        customerTable,
        (order: string) => order.split('|')[1],
        (order: string, customer: string | null) => `${order.split('|')[0]} for ${customer ?? '?'}`,
      )
      .toStream()
      .to(output, { keySerde: S, valueSerde: S })
    const appId = randomTopic('fk-app')
    const streams = new KafkaStreams(b.build(), {
      applicationId: appId,
      bootstrapServers: brokers(),
      stateDir: await fs.mkdtemp(path.join(os.tmpdir(), 'kstreams-fk-')),
      commitIntervalMs: 200,
      logLevel: 'error',
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 1000,
    })
    clients.push(streams)
    await streams.start()
    await streams.waitForState('RUNNING')

    const admin = await connectedAdmin()
    const md = await admin.fetchTopicMetadata({
      topics: [
        `${appId}-KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic`,
        `${appId}-KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000014-topic`,
      ],
    })
    expect(new Map(md.topics.map((t) => [t.name.slice(appId.length + 1), t.partitions.length]))).toEqual(
      new Map([
        ['KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic', 2],
        ['KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000014-topic', 4],
      ]),
    )

    const producer = await connectedProducer()
    const now = Date.now()
    const send = (topic: string, key: string, value: string | null, dt: number) =>
      producer.send({ topic, messages: [{ key, value, timestamp: String(now + dt) }] })
    const N = 20
    await producer.send({
      topic: customers,
      messages: Array.from({ length: 5 }, (_, i) => ({ key: `c${i}`, value: `customer${i}`, timestamp: String(now) })),
    })
    await producer.send({
      topic: orders,
      messages: Array.from({ length: N }, (_, i) => ({ key: `o${i}`, value: `order${i}|c${i % 5}`, timestamp: String(now + 1) })),
    })
    const last = (rs: ConsumedRecord[]) => new Map(rs.map((r) => [r.key!, r.value]))
    const expected = new Map(Array.from({ length: N }, (_, i) => [`o${i}`, `order${i} for customer${i % 5}`] as [string, string | null]))
    let out = await consumeUntil({
      topics: [output],
      timeoutMs: 60_000,
      until: (rs) => [...expected].every(([k, v]) => last(rs).get(k) === v),
    })
    expect(last(out)).toEqual(expected)

    // o0 moves from c0 to c1; c2 is deleted (its orders join with null); o3 is deleted; c0 changes (no order references it any more but o5, o10, o15)
    await send(orders, 'o0', 'order0|c1', 2)
    await send(customers, 'c2', null, 3)
    await send(orders, 'o3', null, 4)
    await send(customers, 'c0', 'customer0-renamed', 5)
    expected.set('o0', 'order0 for customer1')
    for (const i of [2, 7, 12, 17]) expected.set(`o${i}`, `order${i} for ?`)
    expected.set('o3', null)
    for (const i of [5, 10, 15]) expected.set(`o${i}`, `order${i} for customer0-renamed`)
    out = await consumeUntil({ topics: [output], timeoutMs: 60_000, until: (rs) => [...expected].every(([k, v]) => last(rs).get(k) === v) })
    expect(last(out)).toEqual(expected)
    // o0 never joined with the renamed c0: it had unsubscribed
    expect(out.filter((r) => r.key === 'o0').map((r) => r.value)).not.toContain('order0 for customer0-renamed')
  }, 120_000)
})
