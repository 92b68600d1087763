/**
 * End to end through the DSL and the real engine: word count (re-keying through a repartition
 * topic) on 2 instances at-least-once, with interactive queries.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KafkaStreams } from '../../lib/app/kafka-streams.js'
import type { ReadOnlyKeyValueStore } from '../../topology/state/types.js'
import { wordCountTopology } from '../../examples/word-count/topology.js'
import { brokers, connectedAdmin, connectedProducer, consumeUntil, createTopics, randomTopic } from './helpers.js'

const clients: KafkaStreams[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close({ timeoutMs: 30_000 })))
})

const tmp = () => fs.mkdtemp(path.join(os.tmpdir(), 'kstreams-wc-'))

describe('word count', () => {
  it('counts words across 2 instances through a repartition topic with the right partition count', async () => {
    const input = randomTopic('wc-in')
    const output = randomTopic('wc-out')
    await createTopics({ topic: input, numPartitions: 3 }, { topic: output, numPartitions: 3 })
    const appId = randomTopic('wc')
    const make = async (i: number) => {
      const s = new KafkaStreams(wordCountTopology({ input, output }), {
        applicationId: appId,
        bootstrapServers: brokers(),
        stateDir: await tmp(),
        commitIntervalMs: 300,
        applicationServer: `127.0.0.1:${7000 + i}`,
        logLevel: 'error',
        sessionTimeoutMs: 10_000,
        heartbeatIntervalMs: 1000,
      })
      clients.push(s)
      return s
    }
    const a = await make(1)
    const b = await make(2)
    await Promise.all([a.start(), b.start()])
    const lines = Array.from({ length: 300 }, (_, i) => `the quick fox ${i % 7} jumps over the lazy dog number${i % 11}`)
    const expected = new Map<string, number>()
    for (const l of lines) for (const w of l.toLowerCase().split(/\W+/).filter(Boolean)) expected.set(w, (expected.get(w) ?? 0) + 1)
    const producer = await connectedProducer()
    await producer.send({ topic: input, messages: lines.map((value, i) => ({ key: String(i), value })) })
    const last = (rs: Array<{ key: string | null; rawValue: Buffer | null }>) => {
      const m = new Map<string, number>()
      for (const r of rs) if (r.rawValue) m.set(r.key!, Number(r.rawValue.readBigInt64BE(0)))
      return m
    }
    const records = await consumeUntil({
      topics: [output],
      timeoutMs: 60_000,
      until: (rs) => {
        const m = last(rs)
        return [...expected].every(([k, n]) => m.get(k) === n)
      },
    })
    expect(last(records)).toEqual(expected)
    // the repartition topic got the partition count of the input topic
    const admin = await connectedAdmin()
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(appId))
    const repartition = topics.find((t) => t.endsWith('-repartition'))!
    expect(repartition).toBe(`${appId}-words-repartition`)
    const md = await admin.fetchTopicMetadata({ topics: [repartition, `${appId}-counts-changelog`] })
    expect(md.topics.map((t) => t.partitions.length)).toEqual([3, 3])
    // interactive queries: each word is in exactly one instance's local store
    await Promise.all([a.waitForState('RUNNING'), b.waitForState('RUNNING')])
    for (const word of ['the', 'fox', 'number3']) {
      const found = (
        await Promise.all(
          [a, b].map((s) =>
            s
              .store<ReadOnlyKeyValueStore<string, number>>('counts')
              .get(word)
              .catch(() => undefined),
          ),
        )
      ).filter((v) => v !== undefined)
      expect(found).toEqual([expected.get(word)])
    }
    const meta = a.metadataForAllStreamsClients()
    expect(meta.map((m) => m.hostInfo).sort()).toEqual(['127.0.0.1:7001', '127.0.0.1:7002'])
    expect(meta.flatMap((m) => m.activeTasks).sort()).toEqual(['0_0', '0_1', '0_2', '1_0', '1_1', '1_2'])
  })
})
