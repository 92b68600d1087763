/**
 * Reading transactional input against the real broker: records of aborted transactions are never
 * processed, also when the broker lists the aborted transactions out of offset order (it lists them
 * in completion order; kafkajs 2.2.4 assumed offset order and let such records through, see
 * lib/app/client/kafkajs-internals.ts).
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KafkaStreams } from '../../lib/app/kafka-streams.js'
import { Serdes, StreamsBuilder } from '../../lib/index.js'
import { brokers, connectedProducer, consumeUntil, createTopics, randomTopic } from './helpers.js'

const S = Serdes.String()
const clients: KafkaStreams[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close({ timeoutMs: 30_000 })))
})

/**
 * Writes, in this order: a0 (transaction A), b0 (B), a1 (A), b1 (B), B aborts, A aborts, c0 and c1
 * (plain producer), d0 (transaction D, committed). A started first but B ended first, so the broker
 * lists B's aborted transaction before A's.
 */
async function writeInput(topic: string): Promise<void> {
  const [a, b, d] = await Promise.all(
    ['a', 'b', 'd'].map((id) => connectedProducer({ transactionalId: randomTopic(`txn-${id}`), idempotent: true, maxInFlightRequests: 1 })),
  )
  const plain = await connectedProducer({ idempotent: true, maxInFlightRequests: 1 })
  const ta = await a!.transaction()
  const tb = await b!.transaction()
  await ta.send({ topic, messages: [{ key: 'k', value: 'a0' }] })
  await tb.send({ topic, messages: [{ key: 'k', value: 'b0' }] })
  await ta.send({ topic, messages: [{ key: 'k', value: 'a1' }] })
  await tb.send({ topic, messages: [{ key: 'k', value: 'b1' }] })
  await tb.abort()
  await ta.abort()
  await plain.send({
    topic,
    messages: [
      { key: 'k', value: 'c0' },
      { key: 'k', value: 'c1' },
    ],
  })
  const td = await d!.transaction()
  await td.send({ topic, messages: [{ key: 'k', value: 'd0' }] })
  await td.commit()
}

describe('read_committed input with interleaved aborted transactions', () => {
  it('a kafkajs consumer with fixKafkajs applied to its Kafka instance sees only committed records', async () => {
    const topic = randomTopic('rc-in')
    await createTopics(topic)
    await writeInput(topic)
    const rs = await consumeUntil({ topics: [topic], until: (x) => x.some((r) => r.value === 'd0') })
    await new Promise((r) => setTimeout(r, 500))
    expect(rs.map((r) => r.value)).toEqual(['c0', 'c1', 'd0'])
  })

  for (const processingGuarantee of ['exactly_once', 'at_least_once'] as const) {
    it(`the app processes only committed records (${processingGuarantee})`, async () => {
      const input = randomTopic('rc-in')
      const output = randomTopic('rc-out')
      await createTopics(input, output)
      await writeInput(input)
      const b = new StreamsBuilder()
      b.stream<string, string>(input, { keySerde: S, valueSerde: S })
        .mapValues((v) => `seen:${v}`)
        .to(output, { keySerde: S, valueSerde: S })
      const s = new KafkaStreams(b.build(), {
        applicationId: randomTopic('rc-app'),
        bootstrapServers: brokers(),
        stateDir: await fs.mkdtemp(path.join(os.tmpdir(), 'kstreams-rc-')),
        processingGuarantee,
        commitIntervalMs: 100,
        logLevel: 'error',
      })
      clients.push(s)
      await s.start()
      const rs = await consumeUntil({ topics: [output], until: (x) => x.some((r) => r.value === 'seen:d0') })
      await new Promise((r) => setTimeout(r, 500))
      expect(rs.map((r) => r.value)).toEqual(['seen:c0', 'seen:c1', 'seen:d0'])
    })
  }
})
