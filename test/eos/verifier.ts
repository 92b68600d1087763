/**
 * The INDEPENDENT verifier of the exactly-once scenarios. It uses plain kafkajs clients and
 * classic-level, never the library: what the library wrote is read back the way any downstream
 * consumer would (read_committed), and compared with the input.
 *
 * Pure checks (each returns a list of human-readable problems, empty = pass):
 * - {@link checkInput}: the harness' input per key has consecutive sequence numbers 0..n-1;
 * - {@link checkEcho}: per partition, the echo equals the input record for record (key, value,
 *   timestamp; no loss, no duplicate, no reordering);
 * - {@link checkRunningAggregates}: per partition, the j-th aggregate update is for the key of the
 *   j-th input record and equals `{count, sum, last}` recomputed from the input up to position j;
 * - {@link checkRegroupedAggregates}: for a re-keyed aggregation (group `g<seq % groups>`), per
 *   group the updates have counts 1..n, each update's `last` names one input record of that group,
 *   every such input record exactly once, per source key in input order, and sums running;
 * - {@link checkStoreMatchesChangelog}, {@link checkStoreIsCommittedPrefix}: LevelDB contents vs
 *   the committed changelog compacted by key.
 *
 * Reading: {@link writeMarkers} + {@link readUntilMarkers} (a plain producer's marker is appended
 * to each partition after the application stopped; reading read_committed up to it gives exactly
 * the committed content), {@link expectNoOpenTransactions} (the marker is immediately stable: no
 * transaction is left open before it), {@link readToStableEnd} (read_committed up to the last
 * stable offset, for a moment where a transaction may still be open).
 */
import { cp, mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { ClassicLevel } from 'classic-level'
import type { Admin, Kafka } from 'kafkajs'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const randomTopic = (prefix: string): string => `${prefix}-${Date.now().toString(36)}-${Math.random().toString(16).slice(2, 10)}`

export const MARKER_KEY = '__eos-verifier-marker__'

/** One record as read back (strings; bytes of key/value kept as hex for exact comparisons). */
export interface Rec {
  readonly partition: number
  readonly offset: number
  readonly key: string
  readonly value: string
  readonly timestamp: string
  readonly keyHex: string
  /** null for a tombstone */
  readonly valueHex: string | null
}

/** Records per partition, in offset order. */
export type Partitioned = Rec[][]

const MAX_PROBLEMS = 12

function push(problems: string[], p: string): void {
  if (problems.length < MAX_PROBLEMS) problems.push(p)
  else if (problems.length === MAX_PROBLEMS) problems.push('... (more problems omitted)')
}

const show = (r: Rec | undefined): string => (r ? `${r.key}=${r.value}@${r.offset}` : '<none>')

// ---------------------------------------------------------------------------------------------
// pure checks
// ---------------------------------------------------------------------------------------------

/** Input sanity: per key, sequence numbers 0..n-1 in order, each key on one partition. */
export function checkInput(input: Partitioned): string[] {
  const problems: string[] = []
  const next = new Map<string, number>()
  const home = new Map<string, number>()
  input.forEach((recs, p) => {
    for (const r of recs) {
      const [k, seq] = r.value.split(':')
      if (k !== r.key) push(problems, `input p${p}: value ${r.value} under key ${r.key}`)
      if ((home.get(r.key) ?? p) !== p) push(problems, `input: key ${r.key} on partitions ${home.get(r.key)} and ${p}`)
      home.set(r.key, p)
      const want = next.get(r.key) ?? 0
      if (Number(seq) !== want) push(problems, `input p${p}: ${show(r)} has seq ${seq}, expected ${want}`)
      next.set(r.key, Number(seq) + 1)
    }
  })
  return problems
}

/** Echo equals the input per partition, record for record. */
export function checkEcho(input: Partitioned, echo: Partitioned): string[] {
  const problems: string[] = []
  const parts = Math.max(input.length, echo.length)
  for (let p = 0; p < parts; p++) {
    const a = input[p] ?? []
    const b = echo[p] ?? []
    if (a.length !== b.length) push(problems, `echo p${p}: ${b.length} records for ${a.length} input records`)
    const n = Math.min(a.length, b.length)
    for (let j = 0; j < n; j++) {
      const x = a[j]!
      const y = b[j]!
      if (x.key !== y.key || x.value !== y.value || x.timestamp !== y.timestamp) {
        push(
          problems,
          `echo p${p}[${j}]: ${show(y)} (ts ${y.timestamp}) where the input has ${show(x)} (ts ${x.timestamp})${describeDivergence(a, b, j)}`,
        )
        break
      }
    }
    if (b.length > a.length) push(problems, `echo p${p}: extra records from ${show(b[a.length])}`)
    if (a.length > b.length) push(problems, `echo p${p}: missing records from input ${show(a[b.length])}`)
  }
  return problems
}

/** Explains the first divergence: a duplicate (the echo repeats an earlier input), a loss, or a reordering. */
function describeDivergence(input: Rec[], echo: Rec[], j: number): string {
  const y = echo[j]!
  const earlier = input.slice(0, j).findIndex((r) => r.value === y.value)
  if (earlier >= 0) return ` — duplicate of input[${earlier}]`
  const later = input.findIndex((r, i) => i > j && r.value === y.value)
  if (later >= 0) return ` — input[${j}..${later - 1}] missing or reordered`
  return ' — not in the input'
}

interface AggValue {
  count: number
  sum: number
  last: string
}

function parseAgg(r: Rec): AggValue | undefined {
  try {
    return JSON.parse(r.value) as AggValue
  } catch {
    return undefined
  }
}

const amountOf = (v: string): number => Number(v.split(':')[2])

/**
 * Per partition, the j-th aggregate update belongs to the j-th input record: same key, and
 * `{count, sum, last}` equal to the running aggregate recomputed from the input up to j.
 */
export function checkRunningAggregates(input: Partitioned, agg: Partitioned): string[] {
  const problems: string[] = []
  const parts = Math.max(input.length, agg.length)
  for (let p = 0; p < parts; p++) {
    const a = input[p] ?? []
    const b = agg[p] ?? []
    if (a.length !== b.length) push(problems, `aggregates p${p}: ${b.length} updates for ${a.length} input records`)
    const running = new Map<string, { count: number; sum: number }>()
    const n = Math.min(a.length, b.length)
    for (let j = 0; j < n; j++) {
      const x = a[j]!
      const y = b[j]!
      const prev = running.get(x.key) ?? { count: 0, sum: 0 }
      const want = { count: prev.count + 1, sum: prev.sum + amountOf(x.value), last: x.value }
      running.set(x.key, want)
      const got = parseAgg(y)
      if (y.key !== x.key || !got || got.count !== want.count || got.sum !== want.sum || got.last !== want.last) {
        push(problems, `aggregates p${p}[${j}]: ${y.key}=${y.value}, expected ${x.key}=${JSON.stringify(want)} (input ${show(x)})`)
        break
      }
    }
  }
  return problems
}

/**
 * A re-keyed aggregation (group `g<seq % groups>`, through a repartition topic, so the arrival
 * order across source partitions is not fixed): per group, counts 1..n, sums running by the
 * amount of the record named in `last`, every input record of the group named exactly once, and
 * per source key in input order. Each group on one partition.
 */
export function checkRegroupedAggregates(input: Partitioned, agg: Partitioned, groups: number): string[] {
  const problems: string[] = []
  const expected = new Map<string, Set<string>>()
  for (const recs of input) {
    for (const r of recs) {
      const g = `g${Number(r.value.split(':')[1]) % groups}`
      let s = expected.get(g)
      if (!s) expected.set(g, (s = new Set()))
      s.add(r.value)
    }
  }
  const byGroup = new Map<string, Rec[]>()
  const home = new Map<string, number>()
  agg.forEach((recs, p) => {
    for (const r of recs) {
      if ((home.get(r.key) ?? p) !== p) push(problems, `regrouped: group ${r.key} on partitions ${home.get(r.key)} and ${p}`)
      home.set(r.key, p)
      let l = byGroup.get(r.key)
      if (!l) byGroup.set(r.key, (l = []))
      l.push(r)
    }
  })
  for (const g of new Set([...expected.keys(), ...byGroup.keys()])) {
    const want = expected.get(g) ?? new Set<string>()
    const list = byGroup.get(g) ?? []
    if (list.length !== want.size) push(problems, `regrouped ${g}: ${list.length} updates for ${want.size} input records`)
    const seen = new Set<string>()
    const lastSeqOfKey = new Map<string, number>()
    let sum = 0
    for (let i = 0; i < list.length; i++) {
      const r = list[i]!
      const a = parseAgg(r)
      if (!a) {
        push(problems, `regrouped ${g}[${i}]: unparsable ${r.value}`)
        break
      }
      const [key, seqS] = a.last.split(':')
      const seq = Number(seqS)
      if (!want.has(a.last)) push(problems, `regrouped ${g}[${i}]: ${r.value} names ${a.last}, not an input record of ${g}`)
      if (seen.has(a.last)) push(problems, `regrouped ${g}[${i}]: ${a.last} aggregated twice (duplicate)`)
      seen.add(a.last)
      if ((lastSeqOfKey.get(key!) ?? -1) >= seq)
        push(problems, `regrouped ${g}[${i}]: ${a.last} after seq ${lastSeqOfKey.get(key!)} of ${key} (reordered)`)
      lastSeqOfKey.set(key!, seq)
      sum += amountOf(a.last)
      if (a.count !== i + 1 || a.sum !== sum) {
        push(problems, `regrouped ${g}[${i}]: ${r.value}, expected count ${i + 1} sum ${sum}`)
        break
      }
    }
    for (const v of want) {
      if (!seen.has(v)) {
        push(problems, `regrouped ${g}: input ${v} never aggregated (lost)`)
        break
      }
    }
  }
  return problems
}

/** Changelog compacted by key (last value wins; a tombstone deletes): keyHex → valueHex. */
export function compact(records: ReadonlyArray<Rec>): Map<string, string> {
  const out = new Map<string, string>()
  for (const r of records) {
    if (r.key === MARKER_KEY) continue
    if (r.valueHex === null) out.delete(r.keyHex)
    else out.set(r.keyHex, r.valueHex)
  }
  return out
}

function diffMaps(label: string, store: ReadonlyMap<string, string>, want: ReadonlyMap<string, string>): string[] {
  const problems: string[] = []
  const dec = (h: string) =>
    Buffer.from(h, 'hex')
      .toString('utf8')
      .replace(/[^\x20-\x7e]/g, '.')
  for (const [k, v] of want) {
    const s = store.get(k)
    if (s === undefined) push(problems, `${label}: key ${dec(k)} missing from the store (changelog: ${dec(v)})`)
    else if (s !== v) push(problems, `${label}: key ${dec(k)} is ${dec(s)} in the store, ${dec(v)} in the committed changelog`)
  }
  for (const [k, s] of store)
    if (!want.has(k)) push(problems, `${label}: key ${dec(k)}=${dec(s)} in the store, not in the committed changelog`)
  return problems
}

/** The store equals the committed changelog compacted by key. */
export function checkStoreMatchesChangelog(label: string, store: ReadonlyMap<string, string>, changelog: ReadonlyArray<Rec>): string[] {
  return diffMaps(label, store, compact(changelog))
}

/**
 * After a crash: the store equals the committed changelog compacted up to SOME offset x with
 * `checkpoint <= x <= committed end` — it holds nothing uncommitted (no effect of an aborted or
 * still open transaction) and nothing older than its checkpoint claims.
 * @returns problems (empty = pass) and whether the store is behind the committed end.
 */
export function checkStoreIsCommittedPrefix(
  label: string,
  store: ReadonlyMap<string, string>,
  changelog: ReadonlyArray<Rec>,
  checkpoint: number | undefined,
): { problems: string[]; behind: boolean } {
  const cp = checkpoint ?? 0
  const state = compact(changelog.filter((r) => r.offset < cp))
  const equal = () => state.size === store.size && [...state].every(([k, v]) => store.get(k) === v)
  let matched = equal()
  for (const r of changelog) {
    if (r.offset < cp || r.key === MARKER_KEY) continue
    if (r.valueHex === null) state.delete(r.keyHex)
    else state.set(r.keyHex, r.valueHex)
    if (!matched && equal()) matched = true
  }
  if (!matched) {
    return {
      problems: [
        `${label}: the store is no committed prefix of the changelog at or after its checkpoint ${cp}`,
        ...diffMaps(`${label} vs committed end`, store, state).slice(0, 4),
      ],
      behind: false,
    }
  }
  return { problems: [], behind: !equal() }
}

// ---------------------------------------------------------------------------------------------
// reading Kafka (plain kafkajs)
// ---------------------------------------------------------------------------------------------

function toRec(partition: number, m: { offset: string; key: Buffer | null; value: Buffer | null; timestamp: string }): Rec {
  return {
    partition,
    offset: Number(m.offset),
    key: m.key?.toString('utf8') ?? '',
    value: m.value?.toString('utf8') ?? '',
    timestamp: m.timestamp,
    keyHex: m.key?.toString('hex') ?? '',
    valueHex: m.value === null ? null : m.value.toString('hex'),
  }
}

async function partitionCount(admin: Admin, topic: string): Promise<number> {
  const md = await admin.fetchTopicMetadata({ topics: [topic] })
  return md.topics[0]!.partitions.length
}

/** Appends one marker record (key {@link MARKER_KEY}) to every partition of `topics` with a plain producer. Returns topic → partition → marker offset. */
export async function writeMarkers(kafka: Kafka, admin: Admin, topics: ReadonlyArray<string>): Promise<Map<string, number[]>> {
  const producer = kafka.producer()
  await producer.connect()
  const out = new Map<string, number[]>()
  try {
    for (const topic of topics) {
      const n = await partitionCount(admin, topic)
      const res = await producer.send({
        topic,
        acks: -1,
        messages: Array.from({ length: n }, (_, p) => ({ key: MARKER_KEY, value: `marker-${p}`, partition: p })),
      })
      const offs: number[] = []
      for (const r of res) offs[r.partition] = Number(r.baseOffset)
      out.set(topic, offs)
    }
  } finally {
    await producer.disconnect()
  }
  return out
}

/**
 * No transaction is left open: right after the markers were written, the last stable offset
 * (read_committed ListOffsets) of every partition is the marker's offset + 1 (an open
 * transaction before the marker would hold it back until the transaction times out, 60 s by
 * default). Polls for up to `withinMs` (commit markers of just-finished transactions).
 */
export async function expectNoOpenTransactions(admin: Admin, markers: ReadonlyMap<string, number[]>, withinMs = 5000): Promise<string[]> {
  const deadline = Date.now() + withinMs
  for (;;) {
    const stuck: string[] = []
    for (const [topic, offs] of markers) {
      for (const p of await admin.fetchTopicOffsets(topic)) {
        const want = offs[p.partition]! + 1
        if (Number(p.offset) !== want) stuck.push(`${topic}[${p.partition}]: last stable offset ${p.offset}, marker at ${want - 1}`)
      }
    }
    if (stuck.length === 0) return []
    if (Date.now() > deadline) return stuck.map((s) => `open transaction: ${s}`)
    await sleep(200)
  }
}

/**
 * Reads `topics` from the beginning (read_committed unless `readUncommitted`) until the marker of
 * every partition; returns topic → records per partition BEFORE the marker.
 */
export async function readUntilMarkers(
  kafka: Kafka,
  admin: Admin,
  topics: ReadonlyArray<string>,
  options: { timeoutMs?: number; readUncommitted?: boolean } = {},
): Promise<Map<string, Partitioned>> {
  const out = new Map<string, Partitioned>()
  let pending = 0
  const done = new Set<string>()
  for (const t of topics) {
    const n = await partitionCount(admin, t)
    out.set(
      t,
      Array.from({ length: n }, () => []),
    )
    pending += n
  }
  const consumer = kafka.consumer({
    groupId: randomTopic('eos-verifier'),
    readUncommitted: options.readUncommitted ?? false,
    maxWaitTimeInMs: 100,
    maxBytesPerPartition: 4 * 1024 * 1024,
  })
  await consumer.connect()
  const timeoutMs = options.timeoutMs ?? 60_000
  try {
    await consumer.subscribe({ topics: [...topics], fromBeginning: true })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const missing = [...out].flatMap(([t, parts]) =>
          parts.map((recs, p) => (done.has(`${t}:${p}`) ? '' : `${t}[${p}] (${recs.length} read)`)).filter(Boolean),
        )
        reject(new Error(`verifier: no marker after ${timeoutMs} ms on ${missing.join(', ')}`))
      }, timeoutMs)
      consumer
        .run({
          eachBatchAutoResolve: true,
          eachBatch: async ({ batch }) => {
            const k = `${batch.topic}:${batch.partition}`
            if (done.has(k)) return
            const list = out.get(batch.topic)![batch.partition]!
            for (const m of batch.messages) {
              if (m.key?.toString('utf8') === MARKER_KEY) {
                done.add(k)
                if (--pending === 0) {
                  clearTimeout(timer)
                  resolve()
                }
                return
              }
              list.push(toRec(batch.partition, m))
            }
          },
        })
        .catch((e: unknown) => {
          clearTimeout(timer)
          reject(e)
        })
      if (pending === 0) {
        clearTimeout(timer)
        resolve()
      }
    })
  } finally {
    await consumer.disconnect()
  }
  return out
}

/**
 * Reads `topic` with read_committed up to its last stable offset (waiting until that offset is
 * unchanged for `settleMs`, so commit markers of a just-committed transaction are in): the
 * committed content at this moment, while a transaction may still be open after it.
 */
export async function readToStableEnd(
  kafka: Kafka,
  admin: Admin,
  topic: string,
  options: { timeoutMs?: number; settleMs?: number } = {},
): Promise<{ records: Partitioned; ends: number[] }> {
  const settleMs = options.settleMs ?? 1000
  const lso = async () => (await admin.fetchTopicOffsets(topic)).sort((a, b) => a.partition - b.partition).map((p) => Number(p.offset))
  let ends = await lso()
  for (;;) {
    await sleep(settleMs)
    const again = await lso()
    if (again.every((o, p) => o === ends[p])) break
    ends = again
  }
  const records: Partitioned = ends.map(() => [])
  const position = ends.map(() => 0)
  const lows = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.low)]))
  ends.forEach((_, p) => (position[p] = lows.get(p) ?? 0))
  const complete = () => position.every((pos, p) => pos >= ends[p]!)
  if (complete()) return { records, ends }
  const consumer = kafka.consumer({
    groupId: randomTopic('eos-verifier'),
    readUncommitted: false,
    maxWaitTimeInMs: 100,
    maxBytesPerPartition: 4 * 1024 * 1024,
  })
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
    const { partition, lastOffset } = e.payload as unknown as { partition: number; lastOffset: string }
    position[partition] = Math.max(position[partition]!, Number(lastOffset) + 1)
  })
  await consumer.connect()
  const timeoutMs = options.timeoutMs ?? 60_000
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const o = Number(m.offset)
          if (o < ends[batch.partition]!) records[batch.partition]!.push(toRec(batch.partition, m))
        }
      },
    })
    const deadline = Date.now() + timeoutMs
    while (!complete()) {
      if (Date.now() > deadline)
        throw new Error(
          `verifier: ${topic} read to ${JSON.stringify(position)} of stable end ${JSON.stringify(ends)} after ${timeoutMs} ms`,
        )
      await sleep(100)
    }
  } finally {
    await consumer.disconnect()
  }
  // a batch may have crossed the end we fixed: keep the records below it only (done above), de-duplicate nothing
  return { records, ends }
}

/** Offset of the last data record per partition (-1 when none) of `topic`, read_committed to its stable end. */
export async function lastDataOffsets(kafka: Kafka, admin: Admin, topic: string): Promise<number[]> {
  const { records } = await readToStableEnd(kafka, admin, topic, { settleMs: 300 })
  return records.map((recs) => (recs.length ? recs[recs.length - 1]!.offset : -1))
}

// ---------------------------------------------------------------------------------------------
// local state (classic-level, on a copy: the original directory is never opened)
// ---------------------------------------------------------------------------------------------

/**
 * The key under which kstreams keeps a persistent store's changelog position, in the same LevelDB
 * (lib/state/stores.ts `POSITION_KEY`, spelled out here so the verifier stays independent):
 * JSON `{"v":1,"offsets":{"<topic>":"<next offset>"},"clean":bool}`.
 */
const POSITION_KEY_HEX = Buffer.concat([Buffer.alloc(9, 0xff), Buffer.from('kstreams.position', 'latin1')]).toString('hex')

/**
 * Contents of one task's store: keyHex → valueHex (the position key excluded), and its position
 * (topic → next offset): the one stored in the store, else the task's `.checkpoint` file of
 * earlier versions.
 */
export interface StoreDump {
  readonly taskId: string
  readonly store: string
  readonly entries: Map<string, string>
  readonly checkpoint: Map<string, number>
}

/**
 * Dumps every LevelDB store under `<stateDir>/<appId>/<taskId>/<store>/` by opening a COPY of it
 * (the process that wrote it has exited; LevelDB recovers its log in the copy). The position is
 * read from the store's position key, or from the task's `.checkpoint` file of earlier versions
 * (`{"version":1,"offsets":{...}}`).
 */
export async function dumpStores(stateDir: string, appId: string): Promise<StoreDump[]> {
  const root = path.join(stateDir, appId)
  const out: StoreDump[] = []
  let tasks: string[] = []
  try {
    tasks = (await readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory() && /^\d+_\d+$/.test(d.name)).map((d) => d.name)
  } catch {
    return out
  }
  for (const taskId of tasks.sort()) {
    const taskDir = path.join(root, taskId)
    const checkpoint = new Map<string, number>()
    try {
      const cp = JSON.parse(await readFile(path.join(taskDir, '.checkpoint'), 'utf8')) as { offsets: Record<string, string> }
      for (const [t, o] of Object.entries(cp.offsets)) checkpoint.set(t, Number(o))
    } catch {
      // no checkpoint
    }
    for (const d of await readdir(taskDir, { withFileTypes: true })) {
      if (!d.isDirectory()) continue
      const copy = await mkdtemp(path.join(os.tmpdir(), 'kstreams-eos-dump-'))
      try {
        await cp(path.join(taskDir, d.name), copy, { recursive: true })
        await rm(path.join(copy, 'LOCK'), { force: true })
        const db = new ClassicLevel<Buffer, Buffer>(copy, { keyEncoding: 'buffer', valueEncoding: 'buffer', createIfMissing: false })
        await db.open()
        const entries = new Map<string, string>()
        let position: Map<string, number> | undefined
        try {
          for await (const [k, v] of db.iterator()) {
            const kh = k.toString('hex')
            if (kh === POSITION_KEY_HEX) {
              const p = JSON.parse(v.toString('utf8')) as { offsets: Record<string, string> }
              position = new Map(Object.entries(p.offsets).map(([t, o]) => [t, Number(o)]))
            } else entries.set(kh, v.toString('hex'))
          }
        } finally {
          await db.close()
        }
        out.push({ taskId, store: d.name, entries, checkpoint: position ?? checkpoint })
      } finally {
        await rm(copy, { recursive: true, force: true })
      }
    }
  }
  return out
}
