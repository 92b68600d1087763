/**
 * Exactly-once (issue 5), with instances as child processes so SIGKILL/SIGSTOP are real, and an
 * independent verifier reading the outputs with read_committed:
 * - echo: per key, the echoed values are exactly the input sequence (no loss, duplicate, reordering);
 * - running aggregates: the i-th `{count,sum}` of a key equals the aggregate of the key's first i
 *   inputs (with re-keying: counts 1..n without gaps, and the sum increments are exactly the
 *   inputs of that group, each once).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { brokers, connectedProducer, createTopics, kafkaClient, randomTopic } from './helpers.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const FIXTURE = path.join(ROOT, 'test/integration/fixtures/eos-app.ts')

interface Ctx {
  appId: string
  input: string
  echo: string
  agg: string
  repartition: boolean
}

class Instance {
  proc: ChildProcess | undefined
  exit: Promise<number | null> = Promise.resolve(null)
  /** Resolves when the instance first reports RUNNING. */
  running: Promise<void> = Promise.resolve()
  constructor(
    readonly ctx: Ctx,
    readonly stateDir: string,
  ) {}
  start(env: Record<string, string> = {}): this {
    // node itself with tsx as a loader (not the tsx CLI, which would stand between us and the
    // process and neither relay SIGKILL nor SIGSTOP)
    const proc = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
      cwd: ROOT,
      env: {
        ...process.env,
        BROKERS: brokers().join(','),
        APP_ID: this.ctx.appId,
        INPUT: this.ctx.input,
        ECHO: this.ctx.echo,
        AGG: this.ctx.agg,
        STATE_DIR: this.stateDir,
        REPARTITION: this.ctx.repartition ? '1' : '0',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.running = new Promise((resolve) => {
      proc.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('STATE RUNNING')) resolve()
      })
    })
    let err = ''
    proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)))
    this.proc = proc
    this.exit = new Promise((r) => proc.once('exit', (code, signal) => r(code ?? (signal ? 128 : null))))
    void this.exit.then((code) => {
      if (code !== 0 && code !== 137 && code !== 128 && process.env.EOS_TEST_DEBUG)
        process.stderr.write(`instance exited ${code}: ${err}\n`)
      if (process.env.EOS_TEST_DEBUG)
        void fs
          .appendFile(path.join(ROOT, '.kstreams', 'eos-test.log'), `--- ${this.ctx.appId} exit ${code}\n${err}\n`)
          .catch(() => undefined)
    })
    return this
  }
  signal(sig: NodeJS.Signals): void {
    this.proc?.kill(sig)
  }
  async stop(): Promise<void> {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return
    this.proc.kill('SIGCONT')
    this.proc.kill('SIGTERM')
    const t = setTimeout(() => this.proc?.kill('SIGKILL'), 25_000)
    await this.exit
    clearTimeout(t)
  }
}

const running: Instance[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((i) => i.stop()))
})

async function setup(repartition = false, partitions = 4): Promise<Ctx> {
  const ctx = {
    appId: randomTopic('eos'),
    input: randomTopic('eos-in'),
    echo: randomTopic('eos-echo'),
    agg: randomTopic('eos-agg'),
    repartition,
  }
  await createTopics(...[ctx.input, ctx.echo, ctx.agg].map((topic) => ({ topic, numPartitions: partitions })))
  return ctx
}

async function instance(ctx: Ctx): Promise<Instance> {
  const i = new Instance(ctx, await fs.mkdtemp(path.join(os.tmpdir(), 'kstreams-eos-')))
  running.push(i)
  return i
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Produces `perKey` records for each of `keys` keys (`k<i>:<seq>`), in `batches` batches spaced by `gapMs`. */
async function produceInput(ctx: Ctx, keys: number, perKey: number, batches: number, gapMs: number): Promise<number> {
  // idempotent: a retried produce request must not duplicate input (the verifier would blame the app)
  const producer = await connectedProducer({ idempotent: true, maxInFlightRequests: 1 })
  const all: Array<{ key: string; value: string }> = []
  for (let seq = 0; seq < perKey; seq++) for (let k = 0; k < keys; k++) all.push({ key: `k${k}`, value: `k${k}:${seq}` })
  const size = Math.ceil(all.length / batches)
  for (let i = 0; i < all.length; i += size) {
    await producer.send({ topic: ctx.input, messages: all.slice(i, i + size) })
    if (gapMs) await sleep(gapMs)
  }
  return all.length
}

interface Rec {
  key: string
  value: string
  partition: number
}

/** Reads topics with read_committed until `min` records arrived and nothing new came for `quietMs`. */
async function readCommitted(topics: string[], min: number, timeoutMs = 150_000, quietMs = 3000): Promise<Map<string, Rec[]>> {
  const consumer = kafkaClient().consumer({ groupId: randomTopic('verifier'), readUncommitted: false, maxWaitTimeInMs: 200 })
  await consumer.connect()
  const out = new Map<string, Rec[]>(topics.map((t) => [t, []]))
  let total = 0
  let last = Date.now()
  try {
    await consumer.subscribe({ topics, fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        out.get(topic)!.push({ key: message.key!.toString(), value: message.value!.toString(), partition })
        total++
        last = Date.now()
      },
    })
    const deadline = Date.now() + timeoutMs
    while (!(total >= min && Date.now() - last >= quietMs)) {
      if (Date.now() > deadline) throw new Error(`verifier: only ${total} of ${min} committed records after ${timeoutMs} ms`)
      await sleep(200)
    }
    return out
  } finally {
    await consumer.disconnect()
  }
}

function verify(ctx: Ctx, keys: number, perKey: number, data: Map<string, Rec[]>): void {
  const input = data.get(ctx.input)!
  const echo = data.get(ctx.echo)!
  const agg = data.get(ctx.agg)!
  // the input itself is what the test meant to send (no producer retry duplicated it)
  expect(input.length).toBe(keys * perKey)
  // echo: per partition, record for record the input (no loss, no duplicate, no reordering)
  const perPartition = (rs: Rec[]) => {
    const m = new Map<number, string[]>()
    for (const r of rs) (m.get(r.partition) ?? m.set(r.partition, []).get(r.partition)!).push(`${r.key}=${r.value}`)
    return m
  }
  expect(perPartition(echo)).toEqual(perPartition(input))
  // running aggregates recomputed from the input, position by position
  const aggs = new Map<string, Array<{ count: number; sum: number }>>()
  for (const r of agg) (aggs.get(r.key) ?? aggs.set(r.key, []).get(r.key)!).push(JSON.parse(r.value))
  expect(agg.length).toBe(input.length)
  const seqOf = (r: Rec) => Number(r.value.split(':')[1])
  if (!ctx.repartition) {
    const expected = new Map<string, Array<{ count: number; sum: number }>>()
    for (const r of input) {
      const list = expected.get(r.key) ?? expected.set(r.key, []).get(r.key)!
      const prev = list[list.length - 1] ?? { count: 0, sum: 0 }
      list.push({ count: prev.count + 1, sum: prev.sum + seqOf(r) })
    }
    expect(aggs).toEqual(expected)
    return
  }
  // re-keyed to g<seq % 3>: counts 1..n without gaps, and the sum increments are exactly that
  // group's inputs, each once (their interleaving across input partitions is not determined)
  for (let g = 0; g < 3; g++) {
    const list = aggs.get(`g${g}`) ?? []
    const seqs = input.map(seqOf).filter((s) => s % 3 === g)
    expect(list.map((a) => a.count)).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1))
    const increments = list.map((a, i) => a.sum - (i === 0 ? 0 : list[i - 1]!.sum))
    expect([...increments].sort((a, b) => a - b)).toEqual([...seqs].sort((a, b) => a - b))
  }
}

/** A plain producer's marker per output partition must be the next thing read_committed sees: no transaction left open. */
async function expectNoOpenTransaction(ctx: Ctx, partitions: number, already: number): Promise<void> {
  const producer = await connectedProducer()
  await producer.send({
    topic: ctx.echo,
    messages: Array.from({ length: partitions }, (_, p) => ({ key: 'marker', value: `marker:${p}`, partition: p })),
  })
  const data = await readCommitted([ctx.echo], already + partitions, 20_000, 500)
  const markers = data.get(ctx.echo)!.filter((r) => r.key === 'marker')
  expect(markers.map((m) => m.partition).sort()).toEqual(Array.from({ length: partitions }, (_, p) => p))
}

describe('exactly-once with real process crashes', () => {
  it('three instances, kill -9 one mid-stream three times, then a rolling clean restart', async () => {
    const ctx = await setup()
    const inst = await Promise.all([0, 1, 2].map(() => instance(ctx)))
    inst.forEach((i) => i.start())
    const keys = 12
    const perKey = 150
    const producing = produceInput(ctx, keys, perKey, 30, 400)
    for (const victim of [1, 2, 0]) {
      await sleep(3000)
      inst[victim]!.signal('SIGKILL')
      await inst[victim]!.exit
      inst[victim]!.start()
    }
    for (const i of inst) {
      await sleep(1500)
      await i.stop()
      i.start()
    }
    await producing
    const data = await readCommitted([ctx.input, ctx.echo, ctx.agg], 3 * keys * perKey)
    verify(ctx, keys, perKey, data)
    await expectNoOpenTransaction(ctx, 4, keys * perKey)
  })

  for (const point of ['after-send', 'after-send-offsets', 'after-commit', 'during-local-write'] as const) {
    it(`crash injected ${point}: the restarted instance resumes from committed state`, async () => {
      const ctx = await setup(false, 2)
      const keys = 6
      const perKey = 80
      const i = await instance(ctx)
      i.start({ KSTREAMS_CRASH_AT: point, KSTREAMS_CRASH_AFTER_COMMITS: '2' })
      await i.running
      // input arrives in waves so that several commits happen before the crash
      const producing = produceInput(ctx, keys, perKey, 16, 400)
      expect(await i.exit).toBe(137)
      i.start()
      await producing
      const data = await readCommitted([ctx.input, ctx.echo, ctx.agg], 3 * keys * perKey)
      verify(ctx, keys, perKey, data)
    })
  }

  it('a zombie (SIGSTOP past the session timeout, then SIGCONT) is fenced: nothing it produced after the move is visible', async () => {
    const ctx = await setup()
    const [a, b] = await Promise.all([instance(ctx), instance(ctx)])
    a.start()
    b.start()
    const keys = 10
    const perKey = 120
    const producing = produceInput(ctx, keys, perKey, 24, 400)
    await sleep(3000)
    a.signal('SIGSTOP')
    await sleep(12_000) // > sessionTimeoutMs (6 s): the group moves a's tasks to b
    a.signal('SIGCONT')
    await producing
    const data = await readCommitted([ctx.input, ctx.echo, ctx.agg], 3 * keys * perKey)
    verify(ctx, keys, perKey, data)
  })

  it('a re-keying aggregation through a repartition topic stays exact across a kill -9', async () => {
    const ctx = await setup(true)
    const [a, b] = await Promise.all([instance(ctx), instance(ctx)])
    a.start()
    b.start()
    const keys = 9
    const perKey = 90
    const producing = produceInput(ctx, keys, perKey, 18, 400)
    await sleep(3500)
    a.signal('SIGKILL')
    await a.exit
    a.start()
    await producing
    const data = await readCommitted([ctx.input, ctx.echo, ctx.agg], 3 * keys * perKey)
    verify(ctx, keys, perKey, data)
  })
})
