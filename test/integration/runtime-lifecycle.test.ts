/**
 * Runtime lifecycle with a per-key count (DSL `groupByKey().count()` over a logged LevelDB store):
 * restore from checkpoint (tail only), full restore after the state directory is deleted, standby
 * replicas, and scale-out/in while input flows.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KafkaStreams } from '../../lib/app/kafka-streams.js'
import { StreamsEvents } from '../../lib/app/events.js'
import { findMetrics, Serdes, StreamsBuilder, type Topology } from '../../lib/index.js'
import { brokers, connectedAdmin, connectedProducer, consumeUntil, createTopics, randomTopic } from './helpers.js'

const S = Serdes.String()

/** `key → number of records so far` as a string; the store is `counts`. */
function countTopology(input: string, output: string, cachingEnabled = true): Topology {
  const b = new StreamsBuilder()
  b.stream<string, string>(input, { keySerde: S, valueSerde: S })
    .groupByKey()
    .count({ storeName: 'counts', cachingEnabled })
    .toStream()
    .mapValues((n) => String(n))
    .to(output, { keySerde: S, valueSerde: S })
  return b.build()
}

const clients: KafkaStreams[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close({ timeoutMs: 30_000 })))
})

async function tmpDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'kstreams-rt-'))
}

interface Restore {
  taskId: string
  restored: number
}

function client(appId: string, input: string, output: string, stateDir: string, extra: Record<string, unknown> = {}, caching = true) {
  const s = new KafkaStreams(countTopology(input, output, caching), {
    applicationId: appId,
    bootstrapServers: brokers(),
    stateDir,
    commitIntervalMs: 200,
    logLevel: 'error',
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1000,
    ...extra,
  })
  const restores: Restore[] = []
  s.on(StreamsEvents.RESTORE_END, (e: Restore) => restores.push(e))
  clients.push(s)
  return { s, restores }
}

function lastCounts(records: Array<{ key: string | null; value: string | null }>): Map<string, number> {
  const m = new Map<string, number>()
  for (const r of records) m.set(r.key!, Math.max(m.get(r.key!) ?? 0, Number(r.value)))
  return m
}

async function produce(topic: string, from: number, count: number, keys: number, expected: Map<string, number>): Promise<void> {
  const producer = await connectedProducer()
  const messages = Array.from({ length: count }, (_, j) => {
    const key = `k${(from + j) % keys}`
    expected.set(key, (expected.get(key) ?? 0) + 1)
    return { key, value: `v${from + j}` }
  })
  await producer.send({ topic, messages })
}

async function waitForCounts(output: string, expected: Map<string, number>, timeoutMs = 60_000): Promise<Map<string, number>> {
  const records = await consumeUntil({
    topics: [output],
    timeoutMs,
    until: (rs) => {
      const m = lastCounts(rs)
      return [...expected].every(([k, n]) => (m.get(k) ?? 0) >= n)
    },
  })
  return lastCounts(records)
}

async function changelogEnd(appId: string): Promise<number> {
  const admin = await connectedAdmin()
  const offs = await admin.fetchTopicOffsets(`${appId}-counts-changelog`)
  return offs.reduce((n, p) => n + Number(p.high), 0)
}

async function setup(partitions = 2) {
  const input = randomTopic('rt-in')
  const output = randomTopic('rt-out')
  await createTopics({ topic: input, numPartitions: partitions }, { topic: output, numPartitions: partitions })
  return { input, output, appId: randomTopic('rt-app') }
}

describe('restoration', () => {
  it('restarts from the checkpoint and restores only the changelog tail written meanwhile', async () => {
    const { input, output, appId } = await setup()
    const expected = new Map<string, number>()
    const dirA = await tmpDir()
    const a1 = client(appId, input, output, dirA)
    await a1.s.start()
    await produce(input, 0, 500, 20, expected)
    await waitForCounts(output, expected)
    await a1.s.close()
    const endAfterA = await changelogEnd(appId)
    // another instance (empty state dir) processes more input meanwhile
    const b = client(appId, input, output, await tmpDir())
    await b.s.start()
    await produce(input, 500, 300, 20, expected)
    await waitForCounts(output, expected)
    await b.s.close()
    const endAfterB = await changelogEnd(appId)
    expect(b.restores.reduce((n, r) => n + r.restored, 0)).toBe(endAfterA) // B had no state: full restore
    // A comes back with its directory intact: only what B appended is restored
    const a2 = client(appId, input, output, dirA)
    await a2.s.start()
    await a2.s.waitForState('RUNNING')
    const tail = a2.restores.reduce((n, r) => n + r.restored, 0)
    expect(tail).toBe(endAfterB - endAfterA)
    expect(tail).toBeGreaterThan(0)
    await produce(input, 800, 100, 20, expected)
    expect(await waitForCounts(output, expected)).toEqual(expected)
  })

  it('restores everything from the changelog when the state directory was deleted', async () => {
    const { input, output, appId } = await setup()
    const expected = new Map<string, number>()
    const dir = await tmpDir()
    const a1 = client(appId, input, output, dir)
    await a1.s.start()
    await produce(input, 0, 400, 15, expected)
    await waitForCounts(output, expected)
    await a1.s.close()
    await a1.s.cleanUp()
    const end = await changelogEnd(appId)
    const a2 = client(appId, input, output, dir)
    await a2.s.start()
    await a2.s.waitForState('RUNNING')
    expect(a2.restores.reduce((n, r) => n + r.restored, 0)).toBe(end)
    await produce(input, 400, 100, 15, expected)
    expect(await waitForCounts(output, expected)).toEqual(expected)
  })

  it('with numStandbyReplicas 1, the survivor of two instances takes over restoring only the tail', async () => {
    const { input, output, appId } = await setup(2)
    const expected = new Map<string, number>()
    const a = client(appId, input, output, await tmpDir(), { numStandbyReplicas: 1 })
    const b = client(appId, input, output, await tmpDir(), { numStandbyReplicas: 1 })
    await a.s.start()
    await b.s.start()
    await produce(input, 0, 1000, 30, expected)
    await waitForCounts(output, expected)
    // both instances hold one active and one standby task
    await expect.poll(() => [...a.s.standbyTaskIds(), ...b.s.standbyTaskIds()].sort(), { timeout: 30_000 }).toEqual(['0_0', '0_1'])
    const end = await changelogEnd(appId)
    await new Promise((r) => setTimeout(r, 1500)) // let the standbys catch up with the last commit
    // KIP-869: each standby counts the changelog records it applied (update-rate/-total)
    for (const x of [a, b]) {
      const [standby] = x.s.standbyTaskIds()
      const updated = findMetrics(x.s.metrics(), 'update-total', { 'task-id': standby! }, 'stream-task-metrics')
      expect(updated).toHaveLength(1)
      expect(Number(updated[0]!.metricValue())).toBeGreaterThan(0)
    }
    const moving = a.s.activeTaskIds()
    const before = b.restores.length
    await a.s.close()
    await expect.poll(() => b.s.activeTaskIds(), { timeout: 30_000 }).toEqual(['0_0', '0_1'])
    await b.s.waitForState('RUNNING')
    const tail = b.restores
      .slice(before)
      .filter((r) => moving.includes(r.taskId))
      .reduce((n, r) => n + r.restored, 0)
    expect(tail).toBeLessThan(end / 4)
    await produce(input, 1000, 200, 30, expected)
    expect(await waitForCounts(output, expected)).toEqual(expected)
  })
})

describe('scaling while input flows', () => {
  it('1 -> 3 -> 1 instances under exactly-once: every task owned once, exact final counts', async () => {
    const { input, output, appId } = await setup(6)
    const expected = new Map<string, number>()
    const cfg = { processingGuarantee: 'exactly_once', commitIntervalMs: 100 }
    const a = client(appId, input, output, await tmpDir(), cfg, false)
    await a.s.start()
    let sent = 0
    let producing = true
    const pump = (async () => {
      while (producing) {
        await produce(input, sent, 50, 40, expected)
        sent += 50
        await new Promise((r) => setTimeout(r, 50))
      }
    })()
    await new Promise((r) => setTimeout(r, 1500))
    const b = client(appId, input, output, await tmpDir(), cfg, false)
    const c = client(appId, input, output, await tmpDir(), cfg, false)
    await Promise.all([b.s.start(), c.s.start()])
    await Promise.all([a, b, c].map((x) => x.s.waitForState('RUNNING', 60_000)))
    await expect.poll(() => [a, b, c].map((x) => x.s.activeTaskIds().length), { timeout: 60_000 }).toEqual([2, 2, 2])
    const all = [a, b, c].flatMap((x) => x.s.activeTaskIds()).sort()
    expect(all).toEqual(['0_0', '0_1', '0_2', '0_3', '0_4', '0_5'])
    await new Promise((r) => setTimeout(r, 1500))
    await Promise.all([b.s.close(), c.s.close()])
    await expect.poll(() => a.s.activeTaskIds(), { timeout: 60_000 }).toEqual(['0_0', '0_1', '0_2', '0_3', '0_4', '0_5'])
    producing = false
    await pump
    expect(sent).toBeGreaterThan(500)
    const records = await consumeUntil({
      topics: [output],
      timeoutMs: 60_000,
      until: (rs) => rs.length >= sent,
    })
    expect(lastCounts(records)).toEqual(expected)
    expect(records.length).toBe(sent) // exactly once, no cache: one output per input, none twice
  })
})
