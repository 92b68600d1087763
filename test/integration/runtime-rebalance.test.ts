/**
 * Tasks that change hands or restart while their input has a backlog: a two-sub-topology count
 * (input → re-key → repartition topic → count, no cache) under exactly-once must process every
 * record exactly once and bring the group's lag on every source partition (input and repartition)
 * to 0.
 *
 * Also guards the pause/resume hand-off at task creation: a task created while records are already
 * waiting fills its queue during initialization (EOS producer init, restore), so its partition is
 * paused for backpressure; initialization then clears the queue and seeks to the committed
 * offset, and must lift that pause itself (an empty queue is never processed, so resuming after
 * processing would never come): otherwise the task stays RUNNING at its committed offset forever,
 * with no error.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { KafkaStreams } from '../../lib/app/kafka-streams.js'
import { Serdes, StreamsBuilder, type Topology } from '../../lib/index.js'
import { brokers, connectedAdmin, connectedProducer, createTopics, kafkaClient, randomTopic } from './helpers.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const FIXTURE = path.join(ROOT, 'test/integration/fixtures/rebalance-app.ts')
const S = Serdes.String()
const GROUPS = 8
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Ctx {
  appId: string
  input: string
  output: string
  repartition: string
}

async function setup(partitions = 4): Promise<Ctx> {
  const appId = randomTopic('rb')
  const ctx = { appId, input: randomTopic('rb-in'), output: randomTopic('rb-out'), repartition: `${appId}-regroup-repartition` }
  await createTopics({ topic: ctx.input, numPartitions: partitions }, { topic: ctx.output, numPartitions: partitions })
  return ctx
}

/** The fixture's topology, in process. */
function topology(ctx: Ctx): Topology {
  const b = new StreamsBuilder()
  b.stream<string, string>(ctx.input, { keySerde: S, valueSerde: S })
    .selectKey((_k, v) => `g${Number(v.split(':')[1]) % GROUPS}`)
    .groupByKey({ keySerde: S, valueSerde: S, name: 'regroup' })
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

function inProcess(ctx: Ctx, stateDir: string): KafkaStreams {
  const s = new KafkaStreams(topology(ctx), {
    applicationId: ctx.appId,
    bootstrapServers: brokers(),
    stateDir,
    processingGuarantee: 'exactly_once',
    bufferedRecordsPerPartition: 50,
    commitIntervalMs: 100,
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1000,
    logLevel: 'error',
  })
  clients.push(s)
  return s
}

/** Produces records `k<i>` = `k<i>:<seq>` for seq in [from, from + count), in `bursts` sends spaced by `gapMs`. */
async function produce(ctx: Ctx, from: number, count: number, bursts = 1, gapMs = 0): Promise<void> {
  const producer = await connectedProducer({ idempotent: true, maxInFlightRequests: 1 })
  const all = Array.from({ length: count }, (_, j) => ({ key: `k${(from + j) % 20}`, value: `k${(from + j) % 20}:${from + j}` }))
  const size = Math.ceil(count / bursts)
  for (let i = 0; i < all.length; i += size) {
    await producer.send({ topic: ctx.input, messages: all.slice(i, i + size) })
    if (gapMs) await sleep(gapMs)
  }
}

/** Group `g<n>` → how many of the first `total` sequence numbers belong to it. */
function expectedCounts(total: number): Map<string, number> {
  const m = new Map<string, number>()
  for (let seq = 0; seq < total; seq++) m.set(`g${seq % GROUPS}`, (m.get(`g${seq % GROUPS}`) ?? 0) + 1)
  return m
}

/**
 * Reads the output (read_committed) until every group's last count reached the expected one and
 * nothing new arrived for `quietMs`; returns each group's sequence of counts.
 * @throws Error with the last counts when they do not get there within `timeoutMs`.
 */
async function readCounts(ctx: Ctx, expected: Map<string, number>, timeoutMs = 120_000, quietMs = 2000): Promise<Map<string, number[]>> {
  const consumer = kafkaClient().consumer({ groupId: randomTopic('verifier'), readUncommitted: false, maxWaitTimeInMs: 200 })
  await consumer.connect()
  const seqs = new Map<string, number[]>()
  let last = Date.now()
  try {
    await consumer.subscribe({ topics: [ctx.output], fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ message }) => {
        const k = message.key!.toString()
        ;(seqs.get(k) ?? seqs.set(k, []).get(k)!).push(Number(message.value!.toString()))
        last = Date.now()
      },
    })
    const reached = () => [...expected].every(([k, n]) => (seqs.get(k)?.at(-1) ?? 0) >= n)
    const deadline = Date.now() + timeoutMs
    while (!(reached() && Date.now() - last >= quietMs)) {
      if (Date.now() > deadline) {
        const got = [...expected.keys()].map((k) => `${k}: ${seqs.get(k)?.at(-1) ?? 0}/${expected.get(k)}`).join(', ')
        throw new Error(`output incomplete after ${timeoutMs} ms: ${got}`)
      }
      await sleep(200)
    }
    return seqs
  } finally {
    await consumer.disconnect()
  }
}

/** Under exactly-once every group's counts are exactly 1..n: no record lost, none counted twice. */
function expectExact(seqs: Map<string, number[]>, expected: Map<string, number>): void {
  for (const [k, n] of expected) expect(seqs.get(k), k).toEqual(Array.from({ length: n }, (_, i) => i + 1))
  expect([...seqs.keys()].sort()).toEqual([...expected.keys()].sort())
}

/** The group's lag per source partition (end offset − committed offset) of `topics`, polled until all are 0. */
async function expectZeroLag(ctx: Ctx, topics: string[], timeoutMs = 30_000): Promise<void> {
  const admin = await connectedAdmin()
  const lagOf = async (): Promise<Record<string, number>> => {
    const out: Record<string, number> = {}
    for (const topic of topics) {
      const ends = await admin.fetchTopicOffsets(topic)
      const committed = (await admin.fetchOffsets({ groupId: ctx.appId, topics: [topic] }))[0]!.partitions
      for (const e of ends) {
        const c = committed.find((p) => p.partition === e.partition)?.offset ?? '-1'
        out[`${topic === ctx.input ? 'input' : 'repartition'}[${e.partition}]`] = Number(e.high) - Math.max(0, Number(c))
      }
    }
    return out
  }
  const zero = (l: Record<string, number>) => Object.values(l).every((n) => n === 0)
  const deadline = Date.now() + timeoutMs
  let lag = await lagOf()
  while (!zero(lag) && Date.now() < deadline) {
    await sleep(500)
    lag = await lagOf()
  }
  expect(lag).toEqual(Object.fromEntries(Object.keys(lag).map((k) => [k, 0])))
}

describe('tasks created while their input has a backlog', () => {
  it('a restarted instance processes the backlog that built up while it was down (queues overflow during task initialization)', async () => {
    const ctx = await setup()
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kstreams-rb-'))
    const first = inProcess(ctx, dir)
    await first.start()
    await first.waitForState('RUNNING')
    await produce(ctx, 0, 400)
    await readCounts(ctx, expectedCounts(400))
    await first.close()
    // ~500 records per input partition wait while nobody runs: 10x bufferedRecordsPerPartition
    await produce(ctx, 400, 2000)
    const second = inProcess(ctx, dir)
    await second.start()
    expectExact(await readCounts(ctx, expectedCounts(2400), 60_000), expectedCounts(2400))
    await expectZeroLag(ctx, [ctx.input, ctx.repartition])
  })
})

class Instance {
  proc: ChildProcess | undefined
  exit: Promise<number | null> = Promise.resolve(null)
  running: Promise<void> = Promise.resolve()
  stderr = ''
  constructor(
    readonly ctx: Ctx,
    readonly stateDir: string,
  ) {}
  start(): this {
    const proc = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
      cwd: ROOT,
      env: {
        ...process.env,
        BROKERS: brokers().join(','),
        APP_ID: this.ctx.appId,
        INPUT: this.ctx.input,
        OUTPUT: this.ctx.output,
        STATE_DIR: this.stateDir,
        GROUPS: String(GROUPS),
        BUFFERED: '50',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.running = new Promise((resolve) => {
      proc.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('STATE RUNNING')) resolve()
      })
    })
    proc.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)))
    this.proc = proc
    this.exit = new Promise((r) => proc.once('exit', (code, signal) => r(code ?? (signal ? 128 : null))))
    return this
  }
  async stop(): Promise<void> {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return
    this.proc.kill('SIGTERM')
    const t = setTimeout(() => this.proc?.kill('SIGKILL'), 25_000)
    await this.exit
    clearTimeout(t)
  }
}

const children: Instance[] = []
afterEach(async () => {
  await Promise.all(children.splice(0).map((i) => i.stop()))
})

describe('three instances, one killed and restarted mid-stream', () => {
  it('every record is counted exactly once and the group lag on input and repartition partitions reaches 0', async () => {
    const ctx = await setup()
    const inst = await Promise.all(
      [0, 1, 2].map(async () => {
        const i = new Instance(ctx, await fs.mkdtemp(path.join(os.tmpdir(), 'kstreams-rb-')))
        children.push(i)
        return i.start()
      }),
    )
    await Promise.all(inst.map((i) => i.running))
    const total = 12_000
    // bursts of 500 (125 per partition, > bufferedRecordsPerPartition 50) every 400 ms
    const producing = produce(ctx, 0, total, 24, 400)
    await sleep(3000)
    const victim = inst[1]!
    victim.proc!.kill('SIGKILL')
    await victim.exit
    victim.start()
    await producing
    const seqs = await readCounts(ctx, expectedCounts(total)).catch((e: Error) => {
      throw new Error(`${e.message}\n${inst.map((i, n) => `instance ${n} stderr: ${i.stderr}`).join('\n')}`)
    })
    expectExact(seqs, expectedCounts(total))
    await expectZeroLag(ctx, [ctx.input, ctx.repartition])
  }, 240_000)
})
