/**
 * KIP-441 on the real broker: instance A runs a count over two partitions with a large state;
 * instance B joins. B must not take a stateful task as active at once (it would have to restore
 * the whole changelog while the task stands still): A keeps both tasks and B warms one up as a
 * warm-up replica (a standby). At the probing rebalance (`probingRebalanceIntervalMs` after the
 * assignment) B is caught up and takes that task over, restoring only the last few records. Under
 * exactly-once, with input flowing all along, every key's counts are exactly 1..n (nothing lost or
 * counted twice).
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KafkaStreams } from '../../lib/app/kafka-streams.js'
import { StreamsEvents, type StreamsEventPayloads } from '../../lib/app/events.js'
import { Serdes, StreamsBuilder, type Topology } from '../../lib/index.js'
import { brokers, connectedAdmin, connectedProducer, createTopics, kafkaClient, randomTopic } from './helpers.js'

const S = Serdes.String()
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** Distinct keys of the initial state (one count each): the changelogs hold this many records. */
const STATE_KEYS = 8_000
/** Keys that keep receiving records while the task changes hands. */
const LIVE_KEYS = 40
const ACCEPTABLE_RECOVERY_LAG = 500

interface Ctx {
  appId: string
  input: string
  output: string
}

function topology(ctx: Ctx): Topology {
  const b = new StreamsBuilder()
  b.stream<string, string>(ctx.input, { keySerde: S, valueSerde: S })
    .groupByKey({ keySerde: S, valueSerde: S })
    .count({ storeName: 'counts', cachingEnabled: false })
    .toStream()
    .mapValues((n) => String(n))
    .to(ctx.output, { keySerde: S, valueSerde: S })
  return b.build()
}

const clients: KafkaStreams[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close({ timeoutMs: 30_000 })))
})

async function instance(ctx: Ctx): Promise<KafkaStreams> {
  const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'kstreams-warmup-'))
  const s = new KafkaStreams(topology(ctx), {
    applicationId: ctx.appId,
    bootstrapServers: brokers(),
    stateDir,
    processingGuarantee: 'exactly_once',
    commitIntervalMs: 100,
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 500,
    acceptableRecoveryLag: ACCEPTABLE_RECOVERY_LAG,
    maxWarmupReplicas: 2,
    probingRebalanceIntervalMs: 4_000,
    logLevel: 'error',
  })
  clients.push(s)
  return s
}

/** Reads the output (read_committed) until every key's last count reached the expected one; returns each key's counts. */
async function readCounts(ctx: Ctx, expected: Map<string, number>, timeoutMs = 120_000): Promise<Map<string, number[]>> {
  const consumer = kafkaClient().consumer({ groupId: randomTopic('verifier'), readUncommitted: false, maxWaitTimeInMs: 200 })
  await consumer.connect()
  const seqs = new Map<string, number[]>()
  try {
    await consumer.subscribe({ topics: [ctx.output], fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ message }) => {
        const k = message.key!.toString()
        ;(seqs.get(k) ?? seqs.set(k, []).get(k)!).push(Number(message.value!.toString()))
      },
    })
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const missing = [...expected].filter(([k, n]) => (seqs.get(k)?.at(-1) ?? 0) < n)
      if (missing.length === 0) break
      if (Date.now() > deadline)
        throw new Error(`output incomplete after ${timeoutMs} ms: ${missing.length} keys behind, e.g. ${missing[0]![0]}`)
      await sleep(200)
    }
    await sleep(1_000) // anything counted twice would show up after the expected value
    return seqs
  } finally {
    await consumer.disconnect()
  }
}

type Event<N extends keyof StreamsEventPayloads> = StreamsEventPayloads[N] & { at: number }

function record<N extends keyof StreamsEventPayloads>(s: KafkaStreams, name: N): Array<Event<N>> {
  const out: Array<Event<N>> = []
  s.on(name, (p: StreamsEventPayloads[N]) => out.push({ ...p, at: Date.now() }))
  return out
}

describe('KIP-441 warm-up replicas and probing rebalances', () => {
  it('a joining instance warms a stateful task up before it takes it over, restoring only the tail', async () => {
    const ctx: Ctx = { appId: randomTopic('warmup'), input: randomTopic('warmup-in'), output: randomTopic('warmup-out') }
    await createTopics({ topic: ctx.input, numPartitions: 2 }, { topic: ctx.output, numPartitions: 2 })
    const expected = new Map<string, number>()
    const producer = await connectedProducer({ idempotent: true, maxInFlightRequests: 1 })
    const send = async (keys: string[]) => {
      for (const k of keys) expected.set(k, (expected.get(k) ?? 0) + 1)
      await producer.send({ topic: ctx.input, messages: keys.map((k) => ({ key: k, value: 'x' })) })
    }

    const a = await instance(ctx)
    await a.start()
    await a.waitForState('RUNNING')
    for (let i = 0; i < STATE_KEYS; i += 1_000) await send(Array.from({ length: 1_000 }, (_, j) => `s${i + j}`))
    await readCounts(ctx, expected)

    const b = await instance(ctx)
    const assignments = record(b, StreamsEvents.ASSIGNMENT)
    const created = record(b, StreamsEvents.TASK_CREATED)
    const restores = record(b, StreamsEvents.RESTORE_START)
    const joinedAt = Date.now()
    await b.start()

    // input keeps flowing while the task changes hands
    let flowing = true
    const flow = (async () => {
      for (let round = 0; flowing || round < 20; round++) {
        await send(Array.from({ length: LIVE_KEYS }, (_, j) => `live${j}`))
        await sleep(150)
      }
    })()
    const deadline = Date.now() + 90_000
    while (!assignments.some((e) => e.active.length > 0) && Date.now() < deadline) await sleep(200)
    flowing = false
    await flow

    // B's first assignment: no active task, a warm-up (standby) of one of A's stateful tasks instead
    expect(assignments.length).toBeGreaterThanOrEqual(2)
    expect(assignments[0]!.active).toEqual([])
    const warmups = created.filter((e) => e.standby)
    expect(warmups.length).toBeGreaterThanOrEqual(1)
    // the probing rebalance hands it the task it warmed up, not before probingRebalanceIntervalMs
    const takeover = assignments.find((e) => e.active.length > 0)!
    expect(takeover.active).toHaveLength(1)
    const task = takeover.active[0]!
    expect(warmups.map((e) => e.taskId)).toContain(task)
    expect(warmups.find((e) => e.taskId === task)!.at).toBeLessThan(takeover.at)
    expect(takeover.at - joinedAt).toBeGreaterThanOrEqual(4_000 - 1_000)
    // as active, B restores at most the tail the warm-up had not applied yet (nothing when it was
    // at the end), out of a changelog many times larger
    const activeRestore = restores.filter((e) => e.taskId === task && e.at >= takeover.at)
    expect(activeRestore.length).toBeLessThanOrEqual(1)
    const restored = activeRestore.reduce((n, e) => n + e.total, 0)
    expect(restored).toBeLessThanOrEqual(ACCEPTABLE_RECOVERY_LAG)
    const admin = await connectedAdmin()
    try {
      const changelog = await admin.fetchTopicOffsets(`${ctx.appId}-counts-changelog`)
      const end = Number(changelog.find((p) => p.partition === Number(task.split('_')[1]))!.high)
      expect(end).toBeGreaterThan(STATE_KEYS / 4)
      expect(end).toBeGreaterThan(4 * ACCEPTABLE_RECOVERY_LAG)
    } finally {
      await admin.disconnect()
    }

    // nothing lost, nothing counted twice
    const seqs = await readCounts(ctx, expected)
    for (const [k, n] of expected) expect(seqs.get(k), k).toEqual(Array.from({ length: n }, (_, i) => i + 1))
    await producer.disconnect()
  }, 180_000)
})
