import os from 'node:os'
import path from 'node:path'
import fs from 'node:fs/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { KafkaStreams } from '../../lib/app/kafka-streams.js'
import { brokers, connectedProducer, consumeUntil, createTopics, randomTopic } from './helpers.js'
import { countEngineRuntime, countTopology } from './runtime-standin.js'

const clients: KafkaStreams[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close({ timeoutMs: 30_000 })))
})

async function tmpDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'kstreams-rt-'))
}

function client(appId: string, input: string, output: string, stateDir: string, extra: Record<string, unknown> = {}): KafkaStreams {
  const s = new KafkaStreams(
    { resolve: (id) => countTopology(id, input, output) },
    { applicationId: appId, bootstrapServers: brokers(), stateDir, commitIntervalMs: 200, logLevel: 'warn', sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1000, ...extra },
    { engine: countEngineRuntime },
  )
  clients.push(s)
  return s
}

function lastCounts(records: Array<{ key: string | null; value: string | null }>): Map<string, number> {
  const m = new Map<string, number>()
  for (const r of records) m.set(r.key!, Math.max(m.get(r.key!) ?? 0, Number(r.value)))
  return m
}

describe('runtime with a stand-in engine', () => {
  for (const guarantee of ['at_least_once', 'exactly_once'] as const) {
    it(`counts per key across 2 instances (${guarantee})`, async () => {
      const input = randomTopic('rt-in')
      const output = randomTopic('rt-out')
      await createTopics({ topic: input, numPartitions: 4 }, { topic: output, numPartitions: 4 })
      const appId = randomTopic('rt-app')
      const a = client(appId, input, output, await tmpDir(), { processingGuarantee: guarantee })
      const b = client(appId, input, output, await tmpDir(), { processingGuarantee: guarantee })
      await Promise.all([a.start(), b.start()])
      const producer = await connectedProducer()
      const expected = new Map<string, number>()
      const messages = Array.from({ length: 2000 }, (_, i) => {
        const key = `k${i % 37}`
        expected.set(key, (expected.get(key) ?? 0) + 1)
        return { key, value: `v${i}` }
      })
      await producer.send({ topic: input, messages })
      const records = await consumeUntil({
        topics: [output],
        timeoutMs: 60_000,
        until: (rs) => {
          const m = lastCounts(rs)
          return [...expected].every(([k, n]) => m.get(k) === n)
        },
      })
      const m = lastCounts(records)
      expect(m).toEqual(expected)
      if (guarantee === 'exactly_once') expect(records.length).toBe(2000)
      const tasks = [...a.activeTaskIds(), ...b.activeTaskIds()].sort()
      expect(tasks).toEqual(['0_0', '0_1', '0_2', '0_3'])
    })
  }
})
