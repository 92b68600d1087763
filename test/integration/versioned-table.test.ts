/**
 * A versioned KTable (KIP-889) on the real broker: the versioned store lives in LevelDB behind the
 * usual changelog; interactive queries answer as of a timestamp; after the local state is wiped,
 * the store is restored from its changelog with its history and its observed stream-time; and a
 * stream-table join with a grace period (KIP-923) sees an out-of-order table update.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KafkaStreams } from '../../lib/app/kafka-streams.js'
import { Consumed, Joined, Materialized, Serdes, Stores, StreamsBuilder, type ReadOnlyVersionedKeyValueStore } from '../../lib/index.js'
import { brokers, connectedProducer, consumeUntil, createTopics, randomTopic } from './helpers.js'

const clients: KafkaStreams[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close({ timeoutMs: 30_000 })))
})

const S = Serdes.String()

describe('versioned table on the broker', () => {
  it('keeps history in LevelDB, restores it from the changelog, and delays a stream-table join by the grace', async () => {
    const prices = randomTopic('v-prices')
    const orders = randomTopic('v-orders')
    const output = randomTopic('v-out')
    await createTopics(...[prices, orders, output].map((topic) => ({ topic, numPartitions: 2 })))
    const b = new StreamsBuilder()
    const table = b.table(
      prices,
      Consumed.with(S, S),
      Materialized.as<string, string>(Stores.persistentVersionedKeyValueStore('prices', 3_600_000)),
    )
    b.stream(orders, Consumed.with(S, S))
      .join(table, (order: string, price: string) => `${order}@${price}`, Joined.with(S, S, S).withGracePeriod(1_000))
      .to(output, { keySerde: S, valueSerde: S })
    const topology = b.build()
    const appId = randomTopic('v-app')
    const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'kstreams-versioned-'))
    const start = async () => {
      const s = new KafkaStreams(topology, {
        applicationId: appId,
        bootstrapServers: brokers(),
        stateDir,
        commitIntervalMs: 200,
        logLevel: 'error',
        sessionTimeoutMs: 10_000,
        heartbeatIntervalMs: 1000,
      })
      clients.push(s)
      await s.start()
      await s.waitForState('RUNNING')
      return s
    }
    let streams = await start()
    const producer = await connectedProducer()
    const t0 = Date.now() - 60_000
    const send = (topic: string, key: string, value: string, dt: number) =>
      producer.send({ topic, messages: [{ key, value, timestamp: String(t0 + dt) }] })
    await send(prices, 'apple', 'p100', 100)
    await send(orders, 'apple', 'o1', 150) // buffered for 1 s of stream-time
    await send(prices, 'apple', 'p120', 120) // out of order, before the order: the delayed join sees it
    await send(prices, 'apple', 'p200', 200)
    // o2 only once the table has applied p120 and p200: the task processes whatever has arrived
    // (maxTaskIdleMs 0), so an o2 fetched before them would close o1's grace first
    await expect
      .poll(async () => (await streams.store<ReadOnlyVersionedKeyValueStore<string, string>>('prices').get('apple'))?.value, {
        timeout: 30_000,
      })
      .toBe('p200')
    await send(orders, 'apple', 'o2', 5_000) // stream-time passes o1 + grace: o1 is joined as of 150
    const out = await consumeUntil({ topics: [output], timeoutMs: 60_000, until: (rs) => rs.some((r) => r.value?.startsWith('o1@')) })
    expect(out.filter((r) => r.value?.startsWith('o1@')).map((r) => r.value)).toEqual(['o1@p120'])

    const query = async (s: KafkaStreams) => {
      const store = s.store<ReadOnlyVersionedKeyValueStore<string, string>>('prices')
      return [
        await store.get('apple'),
        await store.get('apple', t0 + 110),
        await store.get('apple', t0 + 150),
        await store.get('apple', t0 + 50),
      ]
    }
    const expected = [
      { value: 'p200', timestamp: t0 + 200 },
      { value: 'p100', timestamp: t0 + 100, validTo: t0 + 120 },
      { value: 'p120', timestamp: t0 + 120, validTo: t0 + 200 },
      null,
    ]
    await expect.poll(() => query(streams), { timeout: 30_000 }).toEqual(expected)

    // wipe the local state: the versioned store comes back from its changelog, history included
    await streams.close({ timeoutMs: 30_000 })
    clients.splice(clients.indexOf(streams), 1)
    await streams.cleanUp()
    streams = await start()
    await expect.poll(() => query(streams), { timeout: 30_000 }).toEqual(expected)
  }, 120_000)
})
