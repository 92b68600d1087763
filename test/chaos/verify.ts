/**
 * The end of every fault scenario: group lag, drain, graceful stop, and the INDEPENDENT verdict.
 *
 * The checks are test/eos/verifier.ts'. What they judge is read by Kafka's OWN Java consumer
 * (read_committed, test/chaos/tools/java-reader.ts), so the verdict does not rely on kstreams'
 * kafkajs read_committed patch; the kafkajs view (read_committed up to markers appended after the
 * application stopped, and read_uncommitted for the loss report) must agree with it record for
 * record, and Kafka's admin must list no open transaction on the app's topics. Under exactly-once the echo must equal the input record for record and
 * every running aggregate update must be exact and in order, with no transaction left open; under
 * at-least-once nothing may be lost (every input record echoed and aggregated at least once),
 * duplicates are allowed. On top, {@link lossReport} names each lost or duplicated record, where it
 * was in the input (partition, offset, time produced) and whether an ABORTED transaction carried
 * it (read_uncommitted sees it) or it was never sent at all.
 */
import type { Admin, Kafka } from 'kafkajs'
import {
  checkEcho,
  checkInput,
  checkRunningAggregates,
  expectNoOpenTransactions,
  MARKER_KEY,
  readUntilMarkers,
  writeMarkers,
  type Partitioned,
  type Rec,
} from '../eos/verifier.js'
import { openTransactions, readCommittedJava, type JavaRecord } from './tools/java-reader.js'
import { sleep, stamp, waitFor } from './clock.js'

/** Committed offsets of `groupId` on `topic`, per partition (-1 = none). */
export async function committedOffsets(admin: Admin, groupId: string, topic: string): Promise<number[]> {
  const res = await admin.fetchOffsets({ groupId, topics: [topic] })
  const out: number[] = []
  for (const p of res.find((t) => t.topic === topic)?.partitions ?? []) out[p.partition] = Number(p.offset)
  return out
}

/** Last stable offsets of `topic` per partition. */
export async function endOffsets(admin: Admin, topic: string): Promise<number[]> {
  const out: number[] = []
  for (const p of await admin.fetchTopicOffsets(topic)) out[p.partition] = Number(p.offset)
  return out
}

/** The group's lag on `topic`: records between its committed offsets and the end, summed over partitions. */
export async function groupLag(admin: Admin, groupId: string, topic: string): Promise<number> {
  const [ends, committed] = await Promise.all([endOffsets(admin, topic), committedOffsets(admin, groupId, topic)])
  return ends.reduce((n, e, p) => n + Math.max(0, e - Math.max(0, committed[p] ?? 0)), 0)
}

/**
 * Samples the group lag every `intervalMs` in the background (errors, e.g. while the broker is
 * frozen, are samples without a value), to tell when processing caught up after a fault.
 */
export class LagWatch {
  readonly samples: Array<{ t: number; lag: number | undefined }> = []
  #stop = false
  #loop: Promise<void>

  constructor(admin: Admin, groupId: string, topic: string, intervalMs = 500) {
    this.#loop = (async () => {
      while (!this.#stop) {
        const t = Date.now()
        let lag: number | undefined
        try {
          lag = await Promise.race([groupLag(admin, groupId, topic), sleep(5000).then(() => undefined)])
        } catch {
          lag = undefined
        }
        this.samples.push({ t, lag })
        await sleep(Math.max(0, intervalMs - (Date.now() - t)))
      }
    })()
  }

  /**
   * Milliseconds from `since` until the first sample with lag ≤ `threshold` (caught up with live
   * input: at most `threshold` records behind); undefined if never.
   */
  caughtUpAfter(since: number, threshold: number): number | undefined {
    const s = this.samples.find((x) => x.t >= since && x.lag !== undefined && x.lag <= threshold)
    return s ? s.t - since : undefined
  }

  /** Adds a sample known from elsewhere (e.g. lag 0 when the group was seen drained). */
  record(t: number, lag: number): void {
    this.samples.push({ t, lag })
    this.samples.sort((a, b) => a.t - b.t)
  }

  async stop(): Promise<void> {
    this.#stop = true
    await this.#loop
  }
}

/** Waits until the group committed the whole input (lag 0 on every partition). */
export async function waitDrained(admin: Admin, groupId: string, topic: string, timeoutMs: number): Promise<void> {
  let ends: number[] = []
  let committed: number[] = []
  await waitFor(
    'the group to consume all input (lag 0)',
    async () => {
      try {
        ;[ends, committed] = await Promise.all([endOffsets(admin, topic), committedOffsets(admin, groupId, topic)])
        return ends.every((e, p) => committed[p] === e)
      } catch {
        return false
      }
    },
    timeoutMs,
    () => `input end ${JSON.stringify(ends)}, committed ${JSON.stringify(committed)}`,
    500,
  )
}

/** One record the verifier found lost or duplicated, with where it came from. */
export interface Anomaly {
  readonly kind: 'lost-echo' | 'dup-echo' | 'lost-agg' | 'dup-agg'
  readonly value: string
  readonly partition: number
  /** Offset of the input record. */
  readonly inputOffset: number
  /** When the input record was produced (its timestamp), `HH:MM:SS.mmm` UTC. */
  readonly produced: string
  /** Copies of it only read_uncommitted sees (written by aborted transactions). */
  readonly inAborted: number
}

/** Every lost / duplicated record of the echo and of the aggregates' `last` field. */
export function lossReport(input: Partitioned, echo: Partitioned, agg: Partitioned, echoAll: Partitioned, aggAll: Partitioned): Anomaly[] {
  const out: Anomaly[] = []
  const count = (parts: Partitioned, field: (r: Rec) => string | undefined): Map<string, number> => {
    const m = new Map<string, number>()
    for (const recs of parts)
      for (const r of recs) {
        const v = field(r)
        if (v !== undefined) m.set(v, (m.get(v) ?? 0) + 1)
      }
    return m
  }
  const lastOf = (r: Rec): string | undefined => {
    try {
      return (JSON.parse(r.value) as { last?: string }).last
    } catch {
      return undefined
    }
  }
  const echoN = count(echo, (r) => r.value)
  const echoAllN = count(echoAll, (r) => r.value)
  const aggN = count(agg, lastOf)
  const aggAllN = count(aggAll, lastOf)
  for (const recs of input)
    for (const r of recs) {
      const base = { value: r.value, partition: r.partition, inputOffset: r.offset, produced: stamp(Number(r.timestamp)) }
      const e = echoN.get(r.value) ?? 0
      const a = aggN.get(r.value) ?? 0
      if (e === 0) out.push({ kind: 'lost-echo', ...base, inAborted: (echoAllN.get(r.value) ?? 0) - e })
      if (e > 1) out.push({ kind: 'dup-echo', ...base, inAborted: (echoAllN.get(r.value) ?? 0) - e })
      if (a === 0) out.push({ kind: 'lost-agg', ...base, inAborted: (aggAllN.get(r.value) ?? 0) - a })
      if (a > 1) out.push({ kind: 'dup-agg', ...base, inAborted: (aggAllN.get(r.value) ?? 0) - a })
    }
  return out
}

/** The verdict of one run. */
export interface Verdict {
  readonly guarantee: string
  readonly produced: number
  readonly inputRead: number
  readonly echoRead: number
  readonly aggRead: number
  /** Records of aborted transactions in echo + aggregates (only read_uncommitted sees them). */
  readonly abortedRecords: number
  readonly openTransactions: string[]
  /** Exactness problems of the outputs (exactly-once only; at-least-once is judged by loss alone), and reader disagreements. */
  readonly problems: string[]
  /**
   * The input log differs from what the harness' producer had acknowledged (a gap or duplicate in a
   * key's sequence): a fault of the producer client or the cluster, not of the app (the outputs are
   * judged against the input as it is in the log). Reported, not part of `ok`.
   */
  readonly inputProblems?: string[]
  readonly anomalies: Anomaly[]
  readonly lost: number
  readonly duplicated: number
  /** No loss, no open transaction; under exactly-once also no duplicate and exact aggregates. */
  readonly ok: boolean
}

/**
 * Appends markers to `topics` (input, outputs, and the application's internal topics), checks no
 * transaction stayed open, reads input/echo/aggregates read_committed (and read_uncommitted, for
 * the loss report) up to the markers, and judges them under `guarantee`.
 * Call after every instance stopped.
 */
export async function verify(
  kafka: Kafka,
  admin: Admin,
  t: { brokers: string; appId: string; input: string; echo: string; agg: string; internal: ReadonlyArray<string> },
  guarantee: 'exactly_once' | 'exactly_once_v2' | 'at_least_once',
  produced: number,
): Promise<Verdict> {
  const markers = await writeMarkers(kafka, admin, [t.input, t.echo, t.agg, ...t.internal])
  const openTransactionsKafkajs = await expectNoOpenTransactions(admin, markers, 10_000)
  const viaKafkajs = await readUntilMarkers(kafka, admin, [t.input, t.echo, t.agg], { timeoutMs: 120_000 })
  const all = await readUntilMarkers(kafka, admin, [t.echo, t.agg], { readUncommitted: true, timeoutMs: 120_000 })
  const problems: string[] = []
  // the independent view: Kafka's Java consumer, read_committed
  const java = new Map<string, Partitioned>()
  for (const topic of [t.input, t.echo, t.agg]) {
    try {
      java.set(topic, fromJava(await readCommittedJava(t.brokers, topic, { timeoutMs: 120_000 }), viaKafkajs.get(topic)!.length))
    } catch (e) {
      problems.push(`Java reader of ${topic}: ${(e as Error).message.slice(0, 300)}`)
      java.set(topic, viaKafkajs.get(topic)!)
    }
  }
  for (const topic of [t.input, t.echo, t.agg]) problems.push(...sameRecords(topic, java.get(topic)!, viaKafkajs.get(topic)!))
  const open = [...openTransactionsKafkajs]
  try {
    const o = await openTransactions(t.brokers, { topics: [t.input, t.echo, t.agg, ...t.internal] })
    for (const x of o.transactions)
      if (
        x.transactionalId.startsWith(`${t.appId}-`) ||
        x.partitions.some((p) => [t.echo, t.agg, ...t.internal].some((tp) => p.startsWith(`${tp}-`)))
      )
        open.push(`open transaction (Java admin): ${x.transactionalId} ${x.state} on ${x.partitions.join(',')}`)
    for (const p of o.partitions)
      open.push(`open transaction (Java admin) on ${p.topic}-${p.partition} from offset ${p.startOffset}, producer ${p.producerId}`)
  } catch (e) {
    problems.push(`Java admin (open transactions): ${(e as Error).message.slice(0, 300)}`)
  }
  const input = java.get(t.input)!
  const echo = java.get(t.echo)!
  const agg = java.get(t.agg)!
  const n = (p: Partitioned) => p.reduce((s, l) => s + l.length, 0)
  const anomalies = lossReport(input, echo, agg, all.get(t.echo)!, all.get(t.agg)!)
  const exact = guarantee !== 'at_least_once'
  if (exact) problems.push(...checkEcho(input, echo), ...checkRunningAggregates(input, agg))
  const lost = anomalies.filter((a) => a.kind.startsWith('lost')).length
  const duplicated = anomalies.filter((a) => a.kind.startsWith('dup')).length
  const inputRead = n(input)
  // the input as it is in the log is what the app consumed and what the outputs are judged against;
  // a gap or duplicate in it is the input producer's (kafkajs) or the cluster's fault, reported apart
  const inputProblems = checkInput(input)
  if (inputRead !== produced) inputProblems.unshift(`input: ${inputRead} records in the log, ${produced} acknowledged to the producer`)
  return {
    guarantee,
    produced,
    inputRead,
    echoRead: n(echo),
    aggRead: n(agg),
    abortedRecords: n(all.get(t.echo)!) + n(all.get(t.agg)!) - n(viaKafkajs.get(t.echo)!) - n(viaKafkajs.get(t.agg)!),
    openTransactions: open,
    problems,
    inputProblems,
    anomalies,
    lost,
    duplicated,
    ok: problems.length === 0 && open.length === 0 && lost === 0 && (!exact || duplicated === 0),
  }
}

/** The Java reader's records as {@link Partitioned} (markers dropped). */
function fromJava(records: ReadonlyArray<JavaRecord>, partitions: number): Partitioned {
  const out: Partitioned = Array.from({ length: partitions }, () => [])
  for (const r of records) {
    if (r.key === MARKER_KEY) continue
    const key = r.key ?? ''
    const value = r.value ?? ''
    ;(out[r.partition] ??= []).push({
      partition: r.partition,
      offset: r.offset,
      key,
      value,
      timestamp: String(r.timestamp),
      keyHex: Buffer.from(key).toString('hex'),
      valueHex: r.value === null ? null : Buffer.from(value).toString('hex'),
    })
  }
  return out
}

/** Problems where two readers' views of `topic` differ (offsets, keys, values). */
export function sameRecords(topic: string, a: Partitioned, b: Partitioned): string[] {
  const problems: string[] = []
  for (let p = 0; p < Math.max(a.length, b.length); p++) {
    const x = a[p] ?? []
    const y = b[p] ?? []
    const i = x.findIndex((r, j) => y[j] === undefined || r.offset !== y[j]!.offset || r.key !== y[j]!.key || r.value !== y[j]!.value)
    if (i >= 0 || x.length !== y.length) {
      problems.push(
        `readers disagree on ${topic}[${p}]: Java ${x.length} records, kafkajs ${y.length}${i >= 0 ? `, first difference at index ${i}: Java ${x[i]?.offset}:${x[i]?.value} vs kafkajs ${y[i]?.offset}:${y[i]?.value}` : ''}`,
      )
    }
  }
  return problems
}

/**
 * Negative control of the checks, on synthetic data: a faithful copy passes; a dropped record, a
 * duplicated record and an aggregate update that skipped one input are each reported. Returns
 * what went wrong (empty = the checks can fail and do pass).
 */
export function selfCheck(): string[] {
  const rec = (partition: number, offset: number, key: string, value: string): Rec => ({
    partition,
    offset,
    key,
    value,
    timestamp: String(1_700_000_000_000 + offset),
    keyHex: Buffer.from(key).toString('hex'),
    valueHex: Buffer.from(value).toString('hex'),
  })
  const input: Partitioned = [[0, 1, 2, 3].map((i) => rec(0, i, 'k1', `k1:${i}:${i + 1}`))]
  const aggOf = (recs: Rec[]): Rec[] => {
    let count = 0
    let sum = 0
    return recs.map((r, j) =>
      rec(0, j, r.key, JSON.stringify({ count: ++count, sum: (sum += Number(r.value.split(':')[2])), last: r.value })),
    )
  }
  const agg: Partitioned = [aggOf(input[0]!)]
  const failures: string[] = []
  const expectClean = (what: string, problems: unknown[]) =>
    problems.length && failures.push(`${what}: a faithful copy was reported: ${problems[0]}`)
  const expectCaught = (what: string, problems: unknown[]) => problems.length || failures.push(`${what} was not reported`)
  expectClean('echo', checkEcho(input, input))
  expectClean('aggregates', checkRunningAggregates(input, agg))
  expectClean('loss report', lossReport(input, input, agg, input, agg))
  const dropped: Partitioned = [input[0]!.filter((_, i) => i !== 2)]
  expectCaught('a lost echo record', checkEcho(input, dropped))
  expectCaught(
    'a lost echo record (loss report)',
    lossReport(input, dropped, agg, dropped, agg).filter((a) => a.kind === 'lost-echo'),
  )
  const duplicated: Partitioned = [[...input[0]!.slice(0, 3), input[0]![2]!, input[0]![3]!]]
  expectCaught('a duplicated echo record', checkEcho(input, duplicated))
  expectCaught(
    'a duplicated echo record (loss report)',
    lossReport(input, duplicated, agg, duplicated, agg).filter((a) => a.kind === 'dup-echo'),
  )
  // the update of input[2] missing, later counts computed as if it had been applied (issue 16's signature)
  const skipped: Partitioned = [agg[0]!.filter((_, i) => i !== 2)]
  expectCaught('an aggregate update that skipped an input record', checkRunningAggregates(input, skipped))
  expectCaught(
    'a lost aggregate update (loss report)',
    lossReport(input, input, skipped, input, skipped).filter((a) => a.kind === 'lost-agg'),
  )
  expectCaught('two readers that disagree', sameRecords('t', input, dropped))
  expectClean('two readers that agree', sameRecords('t', input, input))
  return failures
}
