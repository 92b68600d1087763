/**
 * KIP-695 task idling against the real broker: a task with two inputs does not process one input
 * ahead while the other has records on the broker that are not fetched yet (a catching-up join
 * would otherwise drop them as late), and an input that is simply empty does not hold the other
 * back (its lag is read with ListOffsets: kafkajs reports nothing for an empty partition).
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KafkaStreams } from '../../lib/app/kafka-streams.js'
import type { StreamsConfig } from '../../lib/app/options.js'
import { JoinWindows, Serdes, StreamsBuilder, type Topology } from '../../lib/index.js'
import { brokers, connectedProducer, consumeUntil, createTopics, randomTopic } from './helpers.js'

const S = Serdes.String()
const clients: KafkaStreams[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close({ timeoutMs: 30_000 })))
})

async function app(topology: Topology, extra: Partial<StreamsConfig>): Promise<KafkaStreams> {
  const s = new KafkaStreams(topology, {
    applicationId: randomTopic('idle'),
    bootstrapServers: brokers(),
    stateDir: await fs.mkdtemp(path.join(os.tmpdir(), 'kstreams-idle-')),
    commitIntervalMs: 200,
    logLevel: 'error',
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1000,
    ...extra,
  })
  clients.push(s)
  return s
}

describe('task idling (maxTaskIdleMs, KIP-695)', () => {
  it('a join catching up on a backlog waits for the input that fetches slowly instead of dropping its records as late', async () => {
    const left = randomTopic('idle-left')
    const right = randomTopic('idle-right')
    const out = randomTopic('idle-out')
    await createTopics(left, right, out)
    // N pairs, one per second of event time; the right values are 200 KB, so one fetch (1 MB per
    // partition) brings ~5 of them while it brings all of the left ones
    const N = 40
    const base = 1_700_000_000_000
    const producer = await connectedProducer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.send({
      topic: left,
      messages: Array.from({ length: N }, (_, i) => ({ key: `k${i}`, value: `L${i}`, timestamp: String(base + i * 1000) })),
    })
    const pad = 'x'.repeat(200_000)
    for (let i = 0; i < N; i += 4) {
      await producer.send({
        topic: right,
        messages: Array.from({ length: Math.min(4, N - i) }, (_, j) => ({
          key: `k${i + j}`,
          value: `R${i + j}|${pad}`,
          timestamp: String(base + (i + j) * 1000),
        })),
      })
    }
    const b = new StreamsBuilder()
    b.stream<string, string>(left, { keySerde: S, valueSerde: S })
      .join(
        b.stream<string, string>(right, { keySerde: S, valueSerde: S }),
        (l: string, r: string) => `${l}+${r.split('|')[0]}`,
        JoinWindows.ofTimeDifferenceWithNoGrace(100),
      )
      .to(out, { keySerde: S, valueSerde: S })
    // maxTaskIdleMs 0 (the default): no idling on caught-up partitions, but records known to be on
    // the broker are waited for
    const s = await app(b.build(), { maxTaskIdleMs: 0 })
    await s.start()
    const joined = await consumeUntil({ topics: [out], timeoutMs: 60_000, until: (rs) => rs.length >= N })
    expect(joined.map((r) => `${r.key}=${r.value}`).sort()).toEqual(Array.from({ length: N }, (_, i) => `k${i}=L${i}+R${i}`).sort())
  })

  for (const maxTaskIdleMs of [0, 300]) {
    it(`an empty input does not hold the other back (maxTaskIdleMs ${maxTaskIdleMs})`, async () => {
      const a = randomTopic('idle-a')
      const bTopic = randomTopic('idle-b')
      const out = randomTopic('idle-out')
      await createTopics(a, bTopic, out)
      const b = new StreamsBuilder()
      b.stream<string, string>(a, { keySerde: S, valueSerde: S })
        .merge(b.stream<string, string>(bTopic, { keySerde: S, valueSerde: S }))
        .to(out, { keySerde: S, valueSerde: S })
      const s = await app(b.build(), { maxTaskIdleMs })
      await s.start()
      await s.waitForState('RUNNING')
      const producer = await connectedProducer({ idempotent: true, maxInFlightRequests: 1 })
      await producer.send({ topic: a, messages: Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })) })
      const rs = await consumeUntil({ topics: [out], timeoutMs: 30_000, until: (x) => x.length >= 20 })
      expect(rs.map((r) => r.value)).toEqual(Array.from({ length: 20 }, (_, i) => `v${i}`))
    })
  }
})
