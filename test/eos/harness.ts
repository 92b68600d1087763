/**
 * Harness of the exactly-once scenarios (test/integration/eos-*.test.ts): topics, the child-process
 * instances of test/eos/app.ts, a paced input producer, and conditions to wait on (group offsets,
 * events printed by the children). Everything that waits has a timeout and says what it waited for.
 *
 * Each instance is ONE node process (`node --import tsx`), so `SIGKILL`/`SIGSTOP` reach the app
 * itself (a `tsx` CLI wrapper would forward only some signals and leave the app running as an
 * orphan after a SIGKILL). Each instance has its own state directory (as on separate hosts).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Admin, Producer } from 'kafkajs'
import { onTestFailed } from 'vitest'
import { brokers, createTopics, kafkaClient, onCleanup, randomTopic } from '../integration/helpers.js'
import { chooseKeys, partitionOf } from '../chaos/input.js'
import {
  checkEcho,
  checkInput,
  checkRegroupedAggregates,
  checkRunningAggregates,
  expectNoOpenTransactions,
  lastDataOffsets,
  readUntilMarkers,
  writeMarkers,
  type Partitioned,
} from './verifier.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const APP = path.join(ROOT, 'test/eos/app.ts')

export type TopologyKind = 'echo-agg' | 'repartition'

/** One scenario's topics and application id. */
/** The exactly-once modes the suites run under. */
export type EosGuarantee = 'exactly_once' | 'exactly_once_v2'

/**
 * The guarantees an EOS suite runs under: `EOS_GUARANTEES` (comma-separated) when set, else
 * `defaults` (every suite runs EOS-alpha; the strongest ones also v2, to keep `npm test` short).
 */
export function eosGuarantees(defaults: ReadonlyArray<EosGuarantee> = ['exactly_once']): EosGuarantee[] {
  const env = process.env.EOS_GUARANTEES
  if (!env) return [...defaults]
  return env.split(',').map((g) => {
    if (g !== 'exactly_once' && g !== 'exactly_once_v2') throw new Error(`EOS_GUARANTEES: unknown guarantee ${g}`)
    return g
  })
}

export interface Scenario {
  readonly appId: string
  readonly guarantee: EosGuarantee
  readonly input: string
  readonly echo: string
  readonly agg: string
  readonly partitions: number
  readonly topology: TopologyKind
  /** Keys of the input, `keysPerPartition` per partition (by the default murmur2 partitioner). */
  readonly keys: ReadonlyArray<string>
  readonly admin: Admin
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/**
 * Polls `cond` every `intervalMs` until it returns true.
 * @throws Error naming `what` (and `detail()` when given) after `timeoutMs`.
 */
export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  detail?: () => string | Promise<string>,
  intervalMs = 200,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await cond()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail ? `: ${await detail()}` : ''}`)
    await sleep(intervalMs)
  }
}

export { chooseKeys, partitionOf }

/** Creates the input/echo/aggregate topics of a scenario; its internal topics are deleted at teardown. */
export async function createScenario(
  options: { topology?: TopologyKind; partitions?: number; keysPerPartition?: number; guarantee?: EosGuarantee } = {},
): Promise<Scenario> {
  const partitions = options.partitions ?? 4
  const appId = randomTopic('eos-app')
  const [input, echo, agg] = await createTopics(
    ...['eos-in', 'eos-echo', 'eos-agg'].map((p) => ({ topic: randomTopic(p), numPartitions: partitions })),
  )
  const admin = kafkaClient().admin()
  await admin.connect()
  onCleanup(async () => {
    try {
      const internal = (await admin.listTopics()).filter((t) => t.startsWith(`${appId}-`))
      if (internal.length) await admin.deleteTopics({ topics: internal, timeout: 30_000 }).catch(() => undefined)
    } finally {
      await admin.disconnect()
    }
  })
  return {
    appId,
    guarantee: options.guarantee ?? 'exactly_once',
    input: input!,
    echo: echo!,
    agg: agg!,
    partitions,
    topology: options.topology ?? 'echo-agg',
    keys: chooseKeys(partitions, options.keysPerPartition ?? 3),
    admin,
  }
}

/** Internal topics the application created (`<appId>-...-changelog`, `<appId>-...-repartition`). */
export async function internalTopics(s: Scenario): Promise<{ changelogs: string[]; repartitions: string[] }> {
  const all = (await s.admin.listTopics()).filter((t) => t.startsWith(`${s.appId}-`)).sort()
  return { changelogs: all.filter((t) => t.endsWith('-changelog')), repartitions: all.filter((t) => t.endsWith('-repartition')) }
}

// ---------------------------------------------------------------------------------------------
// instances
// ---------------------------------------------------------------------------------------------

/** One line the child printed on stdout (see test/eos/app.ts). */
export interface AppEvent {
  readonly ev: string
  readonly t: number
  readonly [k: string]: unknown
}

const live = new Set<Instance>()
/** How much of a child's stderr is kept (the tail), characters. */
const STDERR_KEPT = 400_000

/** A child-process instance of test/eos/app.ts. Restartable; keeps its state directory across restarts. */
export class Instance {
  readonly events: AppEvent[] = []
  /** Exit codes of every run so far (128 + signal number for a signal). */
  readonly exits: number[] = []
  stderr = ''
  #proc: ChildProcess | undefined
  #exit: Promise<number> = Promise.resolve(0)
  #runs = 0

  private constructor(
    readonly name: string,
    readonly scenario: Scenario,
    readonly stateDir: string,
    private readonly baseEnv: Record<string, string>,
  ) {}

  /** Creates (not starts) an instance with a fresh state directory; killed and removed at teardown. */
  static async create(name: string, s: Scenario, env: Record<string, string> = {}): Promise<Instance> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), `kstreams-eos-${name}-`))
    const i = new Instance(name, s, dir, env)
    // a failed scenario leaves every instance's events and stderr behind (a rare failure is only
    // explainable from them): .cache/eos-failures/<appId>/<name>.log
    onTestFailed(async () => {
      const out = path.join(ROOT, '.cache/eos-failures', s.appId)
      await fs.mkdir(out, { recursive: true })
      const events = i.events.map((e) => JSON.stringify(e)).join('\n')
      await fs.writeFile(path.join(out, `${name}.log`), `${events}\n--- stderr (tail) ---\n${i.stderr}`)
      process.stderr.write(`[eos] ${s.guarantee} ${s.appId}: events and stderr of ${name} in ${out}\n`)
    })
    onCleanup(async () => {
      await i.kill()
      await fs.rm(dir, { recursive: true, force: true })
    })
    return i
  }

  get pid(): number | undefined {
    return this.#proc?.pid
  }

  get running(): boolean {
    return this.#proc !== undefined && this.#proc.exitCode === null && this.#proc.signalCode === null
  }

  /** Events of the current run only. */
  get currentRun(): AppEvent[] {
    return this.events.filter((e) => e.run === this.#runs)
  }

  /** Starts the app (a new run); `env` adds to the instance's environment for this run only. */
  start(env: Record<string, string> = {}): this {
    if (this.running) throw new Error(`${this.name} is already running`)
    const s = this.scenario
    const run = ++this.#runs
    const proc = spawn(process.execPath, ['--import', 'tsx', APP], {
      cwd: ROOT,
      env: {
        ...process.env,
        BROKERS: brokers().join(','),
        APP_ID: s.appId,
        INPUT: s.input,
        ECHO: s.echo,
        AGG: s.agg,
        TOPOLOGY: s.topology,
        GUARANTEE: s.guarantee,
        STATE_DIR: this.stateDir,
        KSTREAMS_CRASH_AT: '',
        ...this.baseEnv,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.#proc = proc
    live.add(this)
    let buf = ''
    proc.stdout!.setEncoding('utf8')
    proc.stdout!.on('data', (d: string) => {
      buf += d
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        try {
          this.events.push({ ...(JSON.parse(line) as AppEvent), run })
        } catch {
          this.stderr = (this.stderr + `[stdout] ${line}\n`).slice(-STDERR_KEPT)
        }
      }
    })
    proc.stderr!.setEncoding('utf8')
    proc.stderr!.on('data', (d: string) => {
      const at = Date.now()
      this.stderr = (this.stderr + d.replace(/^(?=.)/gm, `${at} `)).slice(-STDERR_KEPT)
    })
    this.#exit = new Promise<number>((resolve) =>
      proc.once('exit', (code, signal) => {
        live.delete(this)
        const c = code ?? 128 + (signal ? os.constants.signals[signal] : 0)
        this.exits.push(c)
        resolve(c)
      }),
    )
    return this
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.running) throw new Error(`${this.name} is not running (cannot send ${sig})`)
    this.#proc!.kill(sig)
  }

  /** Whether the process is stopped (SIGSTOP), from /proc. */
  isStopped(): boolean {
    if (!this.running) return false
    try {
      const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8')
      return stat.slice(stat.lastIndexOf(')') + 2).startsWith('T')
    } catch {
      return false
    }
  }

  /** Waits for the current run to exit; returns its exit code. */
  async waitExit(timeoutMs: number): Promise<number> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.name} did not exit within ${timeoutMs} ms; stderr:\n${this.stderrTail()}`)),
        timeoutMs,
      )
    })
    try {
      return await Promise.race([this.#exit, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** SIGKILL (the test's "kill -9"); resolves when the process is gone. */
  async kill9(): Promise<void> {
    this.signal('SIGKILL')
    await this.waitExit(10_000)
  }

  /** Graceful stop (SIGTERM). Returns the exit code (0 = the app closed cleanly). */
  async stop(timeoutMs = 45_000): Promise<number> {
    if (!this.running) return this.exits[this.exits.length - 1] ?? 0
    this.signal('SIGTERM')
    return this.waitExit(timeoutMs)
  }

  /** Teardown: SIGCONT + SIGKILL whatever still runs. */
  async kill(): Promise<void> {
    if (!this.running) return
    this.#proc!.kill('SIGCONT')
    this.#proc!.kill('SIGKILL')
    await this.waitExit(10_000).catch(() => undefined)
  }

  /** Waits until the current run printed an event matching `pred`; returns it. */
  async waitForEvent(what: string, pred: (e: AppEvent) => boolean, timeoutMs: number): Promise<AppEvent> {
    let found: AppEvent | undefined
    await waitFor(
      `${this.name}: ${what}`,
      () => {
        found = this.currentRun.find(pred)
        if (!found && !this.running)
          throw new Error(`${this.name} exited (${this.exits.at(-1)}) while waiting for ${what}; stderr:\n${this.stderrTail()}`)
        return found !== undefined
      },
      timeoutMs,
      () => `events: ${JSON.stringify(this.currentRun.slice(-8))}; stderr:\n${this.stderrTail()}`,
      50,
    )
    return found!
  }

  /** Waits until the current run reached state RUNNING. */
  waitRunning(timeoutMs = 60_000): Promise<AppEvent> {
    return this.waitForEvent('state RUNNING', (e) => e.ev === 'state' && e.now === 'RUNNING', timeoutMs)
  }

  stderrTail(chars = 3000): string {
    return this.stderr.slice(-chars)
  }
}

/** Stops every instance gracefully (in parallel) and expects clean exits. */
export async function stopAll(instances: ReadonlyArray<Instance>): Promise<number[]> {
  return Promise.all(instances.map((i) => i.stop()))
}

// ---------------------------------------------------------------------------------------------
// input
// ---------------------------------------------------------------------------------------------

/**
 * Produces the input at a paced rate until stopped: every `tickMs`, `perTick` records, cycling
 * through the keys; per key the sequence numbers are consecutive from 0. Value:
 * `<key>:<seq>:<amount>` with a deterministic amount in 1..97. Idempotent producer, acks=all,
 * one request in flight: the input itself has no duplicates and keeps its order.
 */
export class InputProducer {
  produced = 0
  #seq = new Map<string, number>()
  #stop = false
  #loop: Promise<void> | undefined
  #producer: Producer | undefined
  #cursor = 0

  constructor(
    readonly scenario: Scenario,
    readonly options: { perTick: number; tickMs?: number; maxRecords?: number },
  ) {}

  static amount(keyIndex: number, seq: number): number {
    return ((seq * 31 + keyIndex * 17) % 97) + 1
  }

  async start(): Promise<this> {
    const producer = kafkaClient().producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    this.#producer = producer
    onCleanup(async () => {
      this.#stop = true
      await this.#loop?.catch(() => undefined)
      await producer.disconnect()
    })
    this.#loop = this.#run()
    return this
  }

  async #run(): Promise<void> {
    const { keys, input } = this.scenario
    const tick = this.options.tickMs ?? 100
    const max = this.options.maxRecords ?? 50_000
    while (!this.#stop && this.produced < max) {
      const started = Date.now()
      const messages: Array<{ key: string; value: string }> = []
      for (let i = 0; i < this.options.perTick && this.produced + messages.length < max; i++) {
        const ki = this.#cursor++ % keys.length
        const key = keys[ki]!
        const seq = this.#seq.get(key) ?? 0
        this.#seq.set(key, seq + 1)
        messages.push({ key, value: `${key}:${seq}:${InputProducer.amount(ki, seq)}` })
      }
      await this.#producer!.send({ topic: input, acks: -1, messages })
      this.produced += messages.length
      await sleep(Math.max(0, tick - (Date.now() - started)))
    }
  }

  /** Produces `records` more records (at the same pace) and waits for them. */
  async produceAtLeast(records: number, timeoutMs = 120_000): Promise<void> {
    const target = this.produced + records
    await waitFor(`${records} more input records`, () => this.produced >= target, timeoutMs)
  }

  /** Waits until `maxRecords` were produced. */
  async finished(timeoutMs = 120_000): Promise<void> {
    const max = this.options.maxRecords
    if (max === undefined) throw new Error('finished() needs maxRecords')
    await waitFor(`${max} input records produced`, () => this.produced >= max, timeoutMs)
  }

  /** Stops producing; resolves with the number of records produced. */
  async stop(): Promise<number> {
    this.#stop = true
    await this.#loop
    return this.produced
  }
}

// ---------------------------------------------------------------------------------------------
// group offsets
// ---------------------------------------------------------------------------------------------

/** Committed offsets of the application's group on `topic`, per partition (-1 = none). */
export async function committedOffsets(s: Scenario, topic: string): Promise<number[]> {
  const res = await s.admin.fetchOffsets({ groupId: s.appId, topics: [topic] })
  const out: number[] = []
  for (const p of res.find((t) => t.topic === topic)?.partitions ?? []) out[p.partition] = Number(p.offset)
  return out
}

/** End offsets of `topic` (kafkajs admin ListOffsets is read_committed: the last stable offset). */
export async function stableEndOffsets(s: Scenario, topic: string): Promise<number[]> {
  const out: number[] = []
  for (const p of await s.admin.fetchTopicOffsets(topic)) out[p.partition] = Number(p.offset)
  return out
}

/** Waits until the group's committed input offset grew past `since` on EVERY input partition (all tasks progress). */
export async function waitForProgress(
  s: Scenario,
  since: number[],
  timeoutMs: number,
  what = 'progress on every input partition',
): Promise<number[]> {
  let now: number[] = []
  await waitFor(
    what,
    async () => {
      now = await committedOffsets(s, s.input)
      return since.every((o, p) => (now[p] ?? -1) > o) && now.length === s.partitions
    },
    timeoutMs,
    () => `committed ${JSON.stringify(now)}, since ${JSON.stringify(since)}`,
    250,
  )
  return now
}

/**
 * Waits until the application consumed and committed ALL input (committed offset = end offset on
 * every input partition) and, for a repartitioning topology, every committed record of its
 * repartition topics (read independently with read_committed).
 */
export async function waitForAllConsumed(
  s: Scenario,
  timeoutMs: number,
  readLastDataOffsets: (topic: string) => Promise<number[]>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  const ends = await stableEndOffsets(s, s.input)
  let committed: number[] = []
  await waitFor(
    'all input consumed',
    async () => {
      committed = await committedOffsets(s, s.input)
      return ends.every((e, p) => committed[p] === e)
    },
    timeoutMs,
    () => `input end ${JSON.stringify(ends)}, committed ${JSON.stringify(committed)}`,
    250,
  )
  for (const topic of (await internalTopics(s)).repartitions) {
    const last = await readLastDataOffsets(topic)
    await waitFor(
      `${topic} consumed`,
      async () => {
        committed = await committedOffsets(s, topic)
        return last.every((l, p) => l < 0 || (committed[p] ?? -1) >= l + 1)
      },
      Math.max(1000, deadline - Date.now()),
      () => `last data offsets ${JSON.stringify(last)}, committed ${JSON.stringify(committed)}`,
      250,
    )
  }
}

// ---------------------------------------------------------------------------------------------
// the end of every scenario
// ---------------------------------------------------------------------------------------------

/** What {@link finishAndVerify} found. Every list is empty when the run was exactly-once. */
export interface RunResult {
  /** Exit codes of the final graceful stops (0 = closed cleanly). */
  readonly exitCodes: number[]
  /** Partitions where a transaction was left open. */
  readonly openTransactions: string[]
  /** Problems found by the verifier (input sanity, echo, aggregates). */
  readonly problems: string[]
  /** Input records produced by the harness / read back by the verifier. */
  readonly produced: number
  readonly inputRead: number
  /** Committed records per output topic. */
  readonly echoRead: number
  readonly aggRead: number
  /**
   * Records in echo + aggregates that only read_uncommitted sees (written by transactions that
   * were aborted: a crash, a fenced zombie). Informative; 0 when no transaction was interrupted
   * after it had sent output.
   */
  readonly abortedRecords: number
  readonly changelogs: string[]
  readonly repartitions: string[]
  readonly input: Partitioned
}

/**
 * Ends a scenario: stops the input, waits until the application consumed all of it, stops every
 * instance gracefully, appends a marker to every partition of every topic the application wrote
 * (outputs, changelogs, repartition topics) and checks that no transaction is left open before
 * it, then reads input/echo/aggregates read_committed up to the markers and verifies them.
 */
export async function finishAndVerify(
  s: Scenario,
  instances: ReadonlyArray<Instance>,
  producer: InputProducer,
  options: { groups?: number; timeoutMs?: number } = {},
): Promise<RunResult> {
  const kafka = kafkaClient()
  const produced = await producer.stop()
  await waitForAllConsumed(s, options.timeoutMs ?? 120_000, (topic) => lastDataOffsets(kafka, s.admin, topic))
  const exitCodes = await stopAll(instances)
  const { changelogs, repartitions } = await internalTopics(s)
  const markers = await writeMarkers(kafka, s.admin, [s.input, s.echo, s.agg, ...changelogs, ...repartitions])
  const openTransactions = await expectNoOpenTransactions(s.admin, markers)
  const data = await readUntilMarkers(kafka, s.admin, [s.input, s.echo, s.agg])
  const input = data.get(s.input)!
  const echo = data.get(s.echo)!
  const agg = data.get(s.agg)!
  const problems = [
    ...checkInput(input),
    ...checkEcho(input, echo),
    ...(s.topology === 'echo-agg' ? checkRunningAggregates(input, agg) : checkRegroupedAggregates(input, agg, options.groups ?? 3)),
  ]
  const count = (p: Partitioned) => p.reduce((n, l) => n + l.length, 0)
  const all = await readUntilMarkers(kafka, s.admin, [s.echo, s.agg], { readUncommitted: true })
  const abortedRecords = count(all.get(s.echo)!) + count(all.get(s.agg)!) - count(echo) - count(agg)
  return {
    exitCodes,
    openTransactions,
    problems,
    produced,
    inputRead: count(input),
    echoRead: count(echo),
    aggRead: count(agg),
    abortedRecords,
    changelogs,
    repartitions,
    input,
  }
}

/** With `EOS_VERBOSE=1`, prints one summary line per scenario (for reports and the loop script). */
export function report(name: string, facts: Record<string, unknown>): void {
  if (process.env.EOS_VERBOSE) process.stderr.write(`[eos] ${name}: ${JSON.stringify(facts)}\n`)
}
