/**
 * The live topology view of a running client against the real broker: while a backlog is
 * processed the input topic's lag is above 0 and reaches 0 when everything is processed; the
 * sub-topology behind the repartition topic shows its store, and a restart on an empty state
 * directory shows the store restored from its changelog (KIP-869 restore-total).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KafkaStreams, Serdes, StreamsBuilder, liveTopology, type LiveTopology, type Topology } from '../../lib/index.js'
import { brokers, connectedProducer, createTopics, onCleanup, randomTopic } from './helpers.js'

const S = Serdes.String()
const N = 20_000
const KEYS = 500

const clients: KafkaStreams[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close({ timeoutMs: 30_000 })))
})

function topology(input: string, output: string): Topology {
  const b = new StreamsBuilder()
  b.stream<string, string>(input, { keySerde: S, valueSerde: S })
    .groupBy((k) => k, { keySerde: S, valueSerde: S, name: 'by-key' })
    .count({ storeName: 'counts' })
    .toStream()
    .mapValues((n) => String(n))
    .to(output, { keySerde: S, valueSerde: S })
  return b.build()
}

async function until(cond: () => boolean, what: () => string, ms = 90_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what()}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe('liveTopology on a running client', () => {
  it('shows the source lag falling to 0 after processing and the store restored after a restart', async () => {
    const appId = randomTopic('live')
    const input = randomTopic('live-in')
    const output = randomTopic('live-out')
    await createTopics({ topic: input, numPartitions: 1 }, { topic: output, numPartitions: 1 })
    // a backlog larger than one fetch (kafkajs: 1 MiB per partition), so the first fetches leave a lag
    const producer = await connectedProducer()
    const value = 'v'.repeat(200)
    for (let i = 0; i < N; i += 2_000)
      await producer.send({ topic: input, messages: Array.from({ length: 2_000 }, (_, j) => ({ key: `k${(i + j) % KEYS}`, value })) })

    const start = async (): Promise<KafkaStreams> => {
      const dir = await mkdtemp(path.join(tmpdir(), 'kstreams-it-live-'))
      onCleanup(() => rm(dir, { recursive: true, force: true }))
      const s = new KafkaStreams(topology(input, output), {
        applicationId: appId,
        bootstrapServers: brokers(),
        stateDir: dir,
        commitIntervalMs: 200,
        bufferedRecordsPerPartition: 200,
        metricsRecordingLevel: 'DEBUG',
        logLevel: 'error',
      })
      clients.push(s)
      return s
    }
    const streams = await start()
    const topo = topology(input, output)
    let maxLagSeen = 0
    let view: LiveTopology = liveTopology(topo, streams)
    const inputLag = (v: LiveTopology) => v.sources.find((s) => s.topic === input)?.lag
    await streams.start()
    await until(
      () => {
        view = liveTopology(topo, streams)
        maxLagSeen = Math.max(maxLagSeen, inputLag(view) ?? 0)
        return inputLag(view) === 0 && view.sources.every((s) => s.lag === 0)
      },
      () => `lag 0 on every source: ${JSON.stringify(view.sources)}`,
    )
    expect(maxLagSeen).toBeGreaterThan(0)
    expect(view.sources.map((s) => [s.topic, s.subtopology])).toEqual([
      [input, 0],
      ['by-key-repartition', 1],
    ])
    expect(view.annotations.sources![input]).toMatch(/^lag 0 · \d+(\.\d)?\/s$/)
    expect(view.toMermaid()).toContain(`{{"${input}<br/>lag 0 · `)
    expect(view.stores.map((s) => [s.store, s.subtopology])).toEqual([['counts', 1]])
    expect(view.toTable()).toMatch(new RegExp(`^0\\s+topic ${input}\\s+0\\s+\\S+/s$`, 'm'))

    // restart on an empty state directory: the store comes back from its changelog
    await streams.close({ timeoutMs: 30_000 })
    clients.splice(clients.indexOf(streams), 1)
    const again = await start()
    await again.start()
    await until(
      () => again.state === 'RUNNING' && again.health().ready && (liveTopology(topo, again).stores[0]?.restored ?? 0) > 0,
      () => `restored: ${JSON.stringify(liveTopology(topo, again).stores)} ${JSON.stringify(again.health())}`,
    )
    const after = liveTopology(topo, again)
    const store = after.stores[0]!
    expect(store.remaining).toBe(0)
    expect(store.restored).toBeGreaterThanOrEqual(KEYS)
    expect(after.annotations.stores).toEqual({ counts: `restored ${store.restored}/${store.restored}` })
    expect(after.toMermaid()).toContain(`store_counts[("counts<br/>restored ${store.restored}/${store.restored}")]`)
    expect(after.toTable()).toMatch(new RegExp(`^1\\s+store counts\\s+restored ${store.restored}/${store.restored}$`, 'm'))
  })
})
