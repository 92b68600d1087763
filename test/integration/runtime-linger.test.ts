/**
 * At-least-once output is sent as it is produced (after the producer linger), not held until the
 * next commit: with a 120 s commit interval, a stateless pipe's output is readable long before
 * any commit could have happened (Kafka Streams: the producer's linger.ms, records sent by the
 * RecordCollector as they are forwarded).
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KafkaStreams } from '../../lib/app/kafka-streams.js'
import { Consumed, Produced, Serdes, StreamsBuilder } from '../../lib/index.js'
import { brokers, connectedProducer, consumeUntil, createTopics, randomTopic } from './helpers.js'

const clients: KafkaStreams[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close({ timeoutMs: 30_000 })))
})

describe('output linger', () => {
  it('sends at-least-once output before the commit interval elapses', async () => {
    const input = randomTopic('linger-in')
    const output = randomTopic('linger-out')
    await createTopics({ topic: input, numPartitions: 1 }, { topic: output, numPartitions: 1 })
    const builder = new StreamsBuilder()
    builder
      .stream(input, Consumed.with(Serdes.String(), Serdes.String()))
      .mapValues((v) => v.toUpperCase())
      .to(output, Produced.with(Serdes.String(), Serdes.String()))
    const streams = new KafkaStreams(builder.build(), {
      applicationId: randomTopic('linger'),
      bootstrapServers: brokers(),
      stateDir: await fs.mkdtemp(path.join(os.tmpdir(), 'kstreams-linger-')),
      commitIntervalMs: 120_000,
      logLevel: 'error',
    })
    clients.push(streams)
    await streams.start()
    await streams.waitForState('RUNNING')
    const producer = await connectedProducer()
    await producer.send({
      topic: input,
      messages: [
        { key: 'k', value: 'hello' },
        { key: 'k', value: 'world' },
      ],
    })
    // the consumer waits at most 60 s: half the commit interval, so only a linger-driven send can satisfy it
    const records = await consumeUntil({ topics: [output], timeoutMs: 60_000, until: (rs) => rs.length >= 2 })
    expect(records.map((r) => r.rawValue?.toString())).toEqual(['HELLO', 'WORLD'])
  })
})
