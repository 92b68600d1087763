/**
 * Load generator of the impression/click example: writes Impression and Click records (Schema
 * Registry Avro, keyed by impressionId) to the two input topics at a given rate, and the ground
 * truth of what the app must output to a JSON file.
 *
 * With `--live` ({@link liveGeneratorOptions}, what `npm run demo` uses) event time follows the wall
 * clock, with the short {@link LIVE_TIMING} windows, and no heartbeats are sent: the app closes
 * the last windows with the wall-clock idle advance. Otherwise event time replays a past interval
 * `speedup` times faster than the wall clock, so the 15-minute join window closes in
 * 15 min / speedup of wall time. By default the interval, including the
 * closing heartbeats, ends at or before the moment the generator starts ({@link replayStartTime}):
 * no record is stamped in the future (Kafka 4.x rejects records more than 1 h ahead of the broker's
 * clock, `log.message.timestamp.after.max.ms`). Records are sent in the order of their "send time"
 * (event time, plus a delay for out-of-order records), paced to the wall clock.
 *
 *   npx tsx examples/impression-click/generator.ts --count 20000 --rate 1000 --truth truth.json
 *   npx tsx examples/impression-click/generator.ts --live --truth truth.json   # event time = now (the demo)
 *
 * Environment: KAFKA_BROKERS (default 127.0.0.1:9092), SCHEMA_REGISTRY_URL
 * (default http://127.0.0.1:8081/apis/ccompat/v7), TOPIC_PREFIX.
 */
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import kafkajs from 'kafkajs'
import type { Admin, Message, Producer, TopicMessages } from 'kafkajs'
import {
  DEFAULT_TIMING,
  HEARTBEAT_PREFIX,
  LIVE_TIMING,
  topicNames,
  type ImpressionClickTiming,
  type ImpressionClickTopics,
} from './config.js'
import { registrySerdes, type ImpressionClickSerdes } from './serdes.js'
import type { Click, Impression } from './schemas/types.js'

const { Kafka, logLevel, Partitioners } = kafkajs

/** Options of the generator. Event-time durations in ms of event time. */
export interface GeneratorOptions {
  /** Number of impressions. @defaultValue 20000 */
  count: number
  /** Impressions per second of wall time. @defaultValue 1000 */
  rate: number
  /** Number of campaigns (`campaign-01` ...). @defaultValue 8 */
  campaigns: number
  /** Share of impressions that get a click (inside or outside the join window). @defaultValue 0.2 */
  clickRatio: number
  /** Mean of the exponential delay from impression to click, event ms (capped at the join window). @defaultValue 180000 */
  clickDelayMeanMs: number
  /** Share of clicks placed after the join window (window + 1 ms .. window + a third of it): no match. @defaultValue 0.05 */
  outsideWindowShare: number
  /** Share of clicks placed before their impression (1 ms .. a fifteenth of the join window earlier): no match. @defaultValue 0.02 */
  earlyClickShare: number
  /** Extra clicks whose impression does not exist, as a share of `count`. @defaultValue 0.01 */
  orphanClickShare: number
  /** Share of records sent out of order, up to `maxOutOfOrderMs` after their event time. @defaultValue 0.05 */
  outOfOrderShare: number
  /** Largest out-of-order delay, event ms; keep it below the join grace. @defaultValue 20000 */
  maxOutOfOrderMs: number
  /**
   * Share of impressions sent later than the join window and grace allow: the join drops them
   * (Kafka Streams' late-record drop), so they have no AdEvent and count in no CTR window.
   * @defaultValue 0.002
   */
  tooLateShare: number
  /** Event time per wall time. @defaultValue 20 */
  speedup: number
  /**
   * Event time of the first impression, ms.
   * @defaultValue the latest minute from which the whole replay, heartbeats included, ends at or
   *   before now ({@link replayStartTime})
   */
  startTime: number
  /** PRNG seed. @defaultValue 42 */
  seed: number
  /**
   * Live event time: the first impression is stamped with the wall clock at the moment the
   * generator starts sending and `speedup` is 1, so event time follows the wall clock (records are
   * stamped at or before the moment they are sent; out-of-order and too-late ones trail it) and an
   * app can close its windows with the wall-clock idle advance instead of heartbeats.
   * `startTime` is ignored. @defaultValue false
   */
  live?: boolean
  /** Partitions of the input topics (decides which impressions are certainly too late). @defaultValue 4 */
  partitions: number
  /** The app's timing (join grace, CTR grace): decides the heartbeats and what is "too late". */
  timing: ImpressionClickTiming
}

/**
 * The default {@link GeneratorOptions}. `startTime` is computed at call time for these defaults:
 * after changing `count`, `rate`, `speedup` or `timing`, recompute it with {@link replayStartTime}.
 */
export function defaultGeneratorOptions(): GeneratorOptions {
  const options: GeneratorOptions = {
    count: 20_000,
    rate: 1_000,
    campaigns: 8,
    clickRatio: 0.2,
    clickDelayMeanMs: 180_000,
    outsideWindowShare: 0.05,
    earlyClickShare: 0.02,
    orphanClickShare: 0.01,
    outOfOrderShare: 0.05,
    maxOutOfOrderMs: 20_000,
    tooLateShare: 0.002,
    speedup: 20,
    startTime: 0,
    seed: 42,
    partitions: 4,
    timing: DEFAULT_TIMING,
  }
  return { ...options, startTime: replayStartTime(options) }
}

/**
 * The options of a live run (`npm run demo`): {@link LIVE_TIMING}, event time at the wall clock
 * (`live`, speedup 1), click delays and out-of-order delays scaled to the 10-second join window
 * (out-of-order records trail by at most 2 s, within the 5 s join grace).
 */
export function liveGeneratorOptions(): GeneratorOptions {
  return {
    ...defaultGeneratorOptions(),
    timing: LIVE_TIMING,
    live: true,
    speedup: 1,
    rate: 300,
    count: 18_000,
    clickDelayMeanMs: 2_000,
    maxOutOfOrderMs: 2_000,
  }
}

/** How much later than its join window and grace a deliberately too-late impression is sent. */
const tooLateMarginMs = (t: ImpressionClickTiming) => t.joinWindowMs / 3

/**
 * Event time (ms) from the first impression to the last heartbeat of a run with these options:
 * an upper bound of every timestamp the generator writes, minus `startTime`.
 */
export function replaySpanMs(options: Pick<GeneratorOptions, 'count' | 'rate' | 'speedup' | 'timing'>): number {
  const spacing = (1000 * options.speedup) / options.rate
  // The latest click: the last impression's, placed at most a third of the join window after it;
  // orphan clicks stay before count * spacing.
  const lastEvent = Math.max((options.count - 1) * spacing + (4 * options.timing.joinWindowMs) / 3, options.count * spacing)
  return Math.ceil(heartbeatTimes(lastEvent, options.timing)[1])
}

/**
 * The `startTime` of a replay that ends (last heartbeat included) at or before `now`: `now` minus
 * {@link replaySpanMs}, rounded down to the minute. Event time then stays behind the wall clock
 * for the whole run, as with real data replayed faster than real time.
 */
export function replayStartTime(options: Pick<GeneratorOptions, 'count' | 'rate' | 'speedup' | 'timing'>, now = Date.now()): number {
  return Math.floor((now - replaySpanMs(options)) / 60_000) * 60_000
}

/** One planned input record. */
export type PlannedRecord =
  { kind: 'impression'; key: string; value: Impression; sendAt: number } | { kind: 'click'; key: string; value: Click; sendAt: number }

/** What the app must output for one campaign and CTR window. */
export interface TruthWindow {
  campaignId: string
  windowStart: number
  windowEnd: number
  impressions: number
  clicks: number
}

/** The ground truth of one generator run. */
export interface Truth {
  options: GeneratorOptions
  /** Impressions generated (including the dropped too-late ones; no heartbeats). */
  impressions: number
  /** Clicks generated (including orphans and clicks outside the window). */
  clicks: number
  /** Impressions the join drops as too late (no AdEvent). */
  tooLate: number
  /** Expected AdEvents with clicked = true, and their clickId by impressionId. */
  expectedClicked: Record<string, string>
  /** Expected AdEvents with clicked = false (count). */
  expectedNotClicked: number
  /** Impression ids dropped as too late (must not appear in the output). */
  tooLateIds: string[]
  /** Final CTR results, sorted by campaign then window. */
  windows: TruthWindow[]
  /**
   * Wall-clock time (ms) at which the later of the two inputs of each clicked AdEvent was sent:
   * the start of its end-to-end latency. Filled by {@link runGenerator}.
   */
  sentAt: Record<string, number>
  /** Wall-clock time the generator started and finished sending, ms. */
  wallStart?: number
  wallEnd?: number
  /** Event time of the heartbeat waves. */
  heartbeatTimes?: number[]
}

/** mulberry32: a small, fast, seedable PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0')

/**
 * Plans every record and computes the truth, without any I/O (deterministic for a seed).
 * Records are returned sorted by send time.
 */
export function plan(options: GeneratorOptions): { records: PlannedRecord[]; truth: Truth } {
  const o = options
  const rnd = prng(o.seed)
  const spacing = (1000 * o.speedup) / o.rate
  const records: PlannedRecord[] = []
  const expectedClicked: Record<string, string> = {}
  const tooLateIds: string[] = []
  const tooLateSet = new Set<string>()
  const windows = new Map<string, TruthWindow>()
  let expectedNotClicked = 0
  let clicks = 0
  const joinWindowMs = o.timing.joinWindowMs
  const lateDelay = joinWindowMs + o.timing.joinGraceMs + tooLateMarginMs(o.timing)
  // Too-late impressions only where enough in-order traffic follows them on their partition.
  const lastImpressionTime = o.startTime + (o.count - 1) * spacing
  const lateCandidate = (t: number) => t + lateDelay + (2 * joinWindowMs) / 15 <= lastImpressionTime
  const sendDelay = (): number => (rnd() < o.outOfOrderShare ? Math.floor(rnd() * o.maxOutOfOrderMs) : 0)

  for (let i = 0; i < o.count; i++) {
    const impressionId = `imp-${pad(i, 8)}`
    const campaignId = `campaign-${pad(1 + Math.floor(rnd() * o.campaigns), 2)}`
    const impressionTime = Math.floor(o.startTime + i * spacing)
    const impression: Impression = {
      impressionId,
      userId: `user-${Math.floor(rnd() * 100_000)}`,
      adId: `${campaignId}-ad-${Math.floor(rnd() * 5)}`,
      campaignId,
      impressionTime,
    }
    const tooLate = rnd() < o.tooLateShare && lateCandidate(impressionTime)
    records.push({ kind: 'impression', key: impressionId, value: impression, sendAt: impressionTime + (tooLate ? lateDelay : sendDelay()) })

    let clickId: string | undefined
    if (rnd() < o.clickRatio) {
      const r = rnd()
      let delay: number
      if (r < o.outsideWindowShare) delay = joinWindowMs + 1 + Math.floor((rnd() * joinWindowMs) / 3)
      else if (r < o.outsideWindowShare + o.earlyClickShare) delay = -1 - Math.floor((rnd() * joinWindowMs) / 15)
      else delay = Math.min(joinWindowMs, Math.floor(-Math.log(1 - rnd()) * o.clickDelayMeanMs))
      const clickTime = impressionTime + delay
      const id = `click-${pad(i, 8)}`
      records.push({ kind: 'click', key: impressionId, value: { clickId: id, impressionId, clickTime }, sendAt: clickTime + sendDelay() })
      clicks++
      if (delay >= 0 && delay <= joinWindowMs) clickId = id
    }

    if (tooLate) {
      tooLateIds.push(impressionId)
      tooLateSet.add(impressionId)
      continue
    }
    const ctrWindowMs = o.timing.ctrWindowMs
    const windowStart = Math.floor(impressionTime / ctrWindowMs) * ctrWindowMs
    const wkey = `${campaignId}@${windowStart}`
    let w = windows.get(wkey)
    if (!w) {
      w = { campaignId, windowStart, windowEnd: windowStart + ctrWindowMs, impressions: 0, clicks: 0 }
      windows.set(wkey, w)
    }
    w.impressions++
    if (clickId !== undefined) {
      w.clicks++
      expectedClicked[impressionId] = clickId
    } else {
      expectedNotClicked++
    }
  }

  const orphans = Math.floor(o.count * o.orphanClickShare)
  const lastTime = o.startTime + o.count * spacing
  for (let j = 0; j < orphans; j++) {
    const impressionId = `orphan-${pad(j, 8)}`
    const clickTime = Math.floor(o.startTime + rnd() * (lastTime - o.startTime))
    records.push({
      kind: 'click',
      key: impressionId,
      value: { clickId: `orphan-click-${pad(j, 8)}`, impressionId, clickTime },
      sendAt: clickTime,
    })
    clicks++
  }

  records.sort((a, b) => a.sendAt - b.sendAt)
  // A too-late impression is dropped by the join for sure when an impression with a time past its
  // join window and grace was sent before it on the same partition (so processed before it).
  const partitionOf = keyPartitioner(o.partitions)
  const newest = new Map<number, number>()
  for (const r of records) {
    if (r.kind !== 'impression') continue
    const p = partitionOf(r.key)
    const t = r.value.impressionTime
    if (tooLateSet.has(r.key) && !((newest.get(p) ?? -Infinity) > t + joinWindowMs + o.timing.joinGraceMs)) {
      throw new Error(`generator: too-late impression ${r.key} is not certainly late on partition ${p}; lower tooLateShare or raise count`)
    }
    newest.set(p, Math.max(newest.get(p) ?? -Infinity, t))
  }
  const truth: Truth = {
    options: o,
    impressions: o.count,
    clicks,
    tooLate: tooLateIds.length,
    expectedClicked,
    expectedNotClicked,
    tooLateIds,
    windows: [...windows.values()].sort((a, b) => a.campaignId.localeCompare(b.campaignId) || a.windowStart - b.windowStart),
    sentAt: {},
  }
  return { records, truth }
}

/** The partition of a string key under the Java-compatible murmur2 partitioner (kafkajs' DefaultPartitioner). */
export function keyPartitioner(partitions: number): (key: string) => number {
  const partitioner = Partitioners.DefaultPartitioner()
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
    partitionId,
    leader: 0,
    replicas: [0],
    isr: [0],
    partitionErrorCode: 0,
    offlineReplicas: [] as number[],
  }))
  return (key) => partitioner({ topic: 'x', partitionMetadata, message: { key, value: null } })
}

/**
 * Campaign ids of heartbeat records, one per partition of the CTR repartition topic (chosen with
 * the Java-compatible murmur2 partitioner the runtime uses), so every CTR task sees one.
 */
export function heartbeatCampaigns(partitions: number): string[] {
  const partitionOf = keyPartitioner(partitions)
  const found = new Map<number, string>()
  for (let n = 0; found.size < partitions && n < 10_000; n++) {
    const name = `${HEARTBEAT_PREFIX}-campaign-${n}`
    const p = partitionOf(name)
    if (!found.has(p)) found.set(p, name)
  }
  return [...found.entries()].sort((a, b) => a[0] - b[0]).map(([, name]) => name)
}

/**
 * The two waves of heartbeat impressions that close every window after the last real record
 * (Kafka Streams' stream-time only advances with records, so without them the final join
 * results and CTR windows would wait forever):
 * wave 1 (one per input partition and CTR partition) moves every join task past the last join
 * window; wave 2 makes the join emit wave 1 as `clicked = false` AdEvents whose time moves every
 * CTR task past the last CTR window.
 */
export function heartbeats(lastEventTime: number, inputPartitions: number, ctrPartitions: number, timing: ImpressionClickTiming) {
  const [t1, t2] = heartbeatTimes(lastEventTime, timing)
  const campaigns = heartbeatCampaigns(ctrPartitions)
  const wave = (n: number, t: number, ctrs: string[]) =>
    Array.from({ length: inputPartitions }, (_, partition) =>
      ctrs.map((campaignId, q) => {
        const impressionId = `${HEARTBEAT_PREFIX}-${n}-${partition}-${q}`
        const value: Impression = { impressionId, userId: HEARTBEAT_PREFIX, adId: HEARTBEAT_PREFIX, campaignId, impressionTime: t }
        return { partition, key: impressionId, value }
      }),
    ).flat()
  return { times: [t1, t2], waves: [wave(1, t1, campaigns), wave(2, t2, [`${HEARTBEAT_PREFIX}-campaign`])] }
}

/** Event times of the two heartbeat waves after `lastEventTime` (see {@link heartbeats}). */
export function heartbeatTimes(lastEventTime: number, timing: ImpressionClickTiming): [number, number] {
  const t1 = lastEventTime + timing.joinWindowMs + timing.joinGraceMs + timing.ctrGraceMs + 2 * timing.ctrWindowMs
  return [t1, t1 + timing.joinWindowMs + timing.joinGraceMs + timing.ctrWindowMs]
}

/** Connection and topic settings of {@link runGenerator}. */
export interface GeneratorIo {
  brokers: string[]
  registryUrl: string
  topics: ImpressionClickTopics
  /** Where to write the truth JSON (also written when the run ends early). */
  truthFile?: string
  /** Called about every second with the number of records sent so far. */
  onProgress?: (sent: number, total: number) => void
  /** Send the heartbeats at the end (see {@link heartbeats}). @defaultValue true, false for a `live` run */
  sendHeartbeats?: boolean
  /** Awaited before the heartbeats are sent, e.g. until the app has consumed every record. */
  beforeHeartbeats?: () => Promise<void>
  /**
   * The app's consumer group (its applicationId): before each wave of heartbeats, wait until it
   * has committed every input record, so a heartbeat never overtakes a record still in flight.
   * Without it, exact results need the app to have caught up by the time the run ends.
   */
  waitForGroup?: string
}

/**
 * Resolves once consumer group `groupId` has committed offsets at the end of every partition of
 * `topics` (the inputs are written without transactions, so the end is the high watermark).
 */
export async function waitForGroupCaughtUp(admin: Admin, groupId: string, topics: string[], timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ends = new Map<string, string>()
    for (const topic of topics) {
      for (const p of await admin.fetchTopicOffsets(topic)) ends.set(`${topic}/${p.partition}`, p.high)
    }
    const committed = await admin.fetchOffsets({ groupId, topics })
    const behind = committed.flatMap((t) =>
      t.partitions.filter((p) => BigInt(p.offset === '-1' ? '0' : p.offset) < BigInt(ends.get(`${t.topic}/${p.partition}`) ?? '0')),
    )
    if (behind.length === 0) return
    if (Date.now() > deadline) throw new Error(`group ${groupId} did not catch up with ${topics.join(', ')} in ${timeoutMs} ms`)
    await sleep(500)
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function sendHeartbeats(
  producer: Producer,
  serdes: ImpressionClickSerdes,
  topics: ImpressionClickTopics,
  truth: Truth,
  lastEventTime: number,
  inputPartitions: number,
  betweenWaves: () => Promise<void>,
): Promise<void> {
  const hb = heartbeats(lastEventTime, inputPartitions, inputPartitions, truth.options.timing)
  truth.heartbeatTimes = hb.times
  for (const [n, wave] of hb.waves.entries()) {
    // Wave 2 closes the CTR windows: every join task must have emitted its last AdEvents (on
    // wave 1) before any CTR task sees a heartbeat, or those AdEvents would arrive too late.
    if (n > 0) await betweenWaves()
    await producer.send({
      topic: topics.impressions,
      messages: wave.map((h) => ({
        partition: h.partition,
        key: h.key,
        value: serdes.impression.serialize(topics.impressions, h.value),
        timestamp: String(h.value.impressionTime),
      })),
    })
  }
}

/**
 * Plans, sends and records the truth. Resolves with the truth once every record (and the
 * heartbeats) is acknowledged by the broker.
 */
export async function runGenerator(options: GeneratorOptions, io: GeneratorIo): Promise<Truth> {
  const kafka = new Kafka({ clientId: 'impression-click-generator', brokers: io.brokers, logLevel: logLevel.ERROR })
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner })
  const serdes = registrySerdes({ host: io.registryUrl })
  await Promise.all([serdes.impression.prepareSerialize!(io.topics.impressions), serdes.click.prepareSerialize!(io.topics.clicks)])
  const admin = kafka.admin()
  await admin.connect()
  const meta = await admin.fetchTopicMetadata({ topics: [io.topics.impressions] })
  const inputPartitions = meta.topics[0]!.partitions.length
  await producer.connect()
  // Live: event time starts now and follows the wall clock (every record is sent at or after
  // its event time, so none is stamped in the future).
  const planned: GeneratorOptions = options.live
    ? { ...options, speedup: 1, startTime: Date.now(), partitions: inputPartitions }
    : { ...options, partitions: inputPartitions }
  const { records, truth } = plan(planned)
  const sendHeartbeatRecords = io.sendHeartbeats ?? !options.live
  const lastEventTime = records.reduce((m, r) => Math.max(m, r.kind === 'impression' ? r.value.impressionTime : r.value.clickTime), 0)
  const lastStamp = sendHeartbeatRecords ? heartbeatTimes(lastEventTime, options.timing)[1] : lastEventTime
  if (!options.live && lastStamp > Date.now()) {
    await producer.disconnect()
    await admin.disconnect()
    throw new Error(
      `generator: the replay would stamp records up to ${new Date(lastStamp).toISOString()}, after the wall clock ` +
        `(Kafka 4.x rejects records more than 1 h in the future, log.message.timestamp.after.max.ms); ` +
        `start it at or before ${new Date(replayStartTime(options)).toISOString()} (replayStartTime)`,
    )
  }

  const clickSentAt = new Map<string, number>()
  const impressionSentAt = new Map<string, number>()
  const wallStart = options.live ? planned.startTime : Date.now()
  truth.wallStart = wallStart
  const eventStart = planned.startTime
  const speedup = planned.speedup
  let i = 0
  let lastProgress = 0
  try {
    while (i < records.length) {
      const now = Date.now()
      const dueEventTime = eventStart + (now - wallStart) * speedup
      const batch: PlannedRecord[] = []
      while (i < records.length && records[i]!.sendAt <= dueEventTime && batch.length < 5_000) batch.push(records[i++]!)
      if (batch.length === 0) {
        const next = records[i]!.sendAt
        await sleep(Math.max(1, Math.min(50, (next - dueEventTime) / speedup)))
        continue
      }
      const impressions: Message[] = []
      const clicks: Message[] = []
      for (const r of batch) {
        if (r.kind === 'impression') {
          impressions.push({
            key: r.key,
            value: serdes.impression.serialize(io.topics.impressions, r.value),
            timestamp: String(r.value.impressionTime),
          })
          impressionSentAt.set(r.key, now)
        } else {
          clicks.push({ key: r.key, value: serdes.click.serialize(io.topics.clicks, r.value), timestamp: String(r.value.clickTime) })
          clickSentAt.set(r.key, now)
        }
      }
      const topicMessages: TopicMessages[] = []
      if (impressions.length) topicMessages.push({ topic: io.topics.impressions, messages: impressions })
      if (clicks.length) topicMessages.push({ topic: io.topics.clicks, messages: clicks })
      await producer.sendBatch({ topicMessages })
      if (io.onProgress && now - lastProgress >= 1_000) {
        lastProgress = now
        io.onProgress(i, records.length)
      }
    }
    io.onProgress?.(i, records.length)
    for (const id of Object.keys(truth.expectedClicked)) {
      truth.sentAt[id] = Math.max(impressionSentAt.get(id) ?? 0, clickSentAt.get(id) ?? 0)
    }
    if (sendHeartbeatRecords) {
      await io.beforeHeartbeats?.()
      if (io.waitForGroup) await waitForGroupCaughtUp(admin, io.waitForGroup, [io.topics.impressions, io.topics.clicks])
      const caughtUp = async () => {
        if (io.waitForGroup) await waitForGroupCaughtUp(admin, io.waitForGroup, [io.topics.impressions, io.topics.clicks])
      }
      await sendHeartbeats(producer, serdes, io.topics, truth, lastEventTime, inputPartitions, caughtUp)
    }
    truth.wallEnd = Date.now()
    return truth
  } finally {
    await producer.disconnect()
    await admin.disconnect()
    if (io.truthFile) writeFileSync(io.truthFile, JSON.stringify(truth))
  }
}

/** Parses the CLI flags into options (flags named as the options, e.g. `--click-ratio 0.3`). */
export function parseGeneratorArgs(argv: string[]): {
  options: GeneratorOptions
  truthFile: string
  heartbeats: boolean
  waitForGroup?: string
} {
  const live = argv.includes('--live')
  const defaults = live ? liveGeneratorOptions() : defaultGeneratorOptions()
  const numeric = [
    'count',
    'rate',
    'campaigns',
    'click-ratio',
    'click-delay-mean-ms',
    'outside-window-share',
    'early-click-share',
    'orphan-click-share',
    'out-of-order-share',
    'max-out-of-order-ms',
    'too-late-share',
    'speedup',
    'start-time',
    'seed',
    'duration-ms',
    'join-grace-ms',
    'ctr-grace-ms',
  ] as const
  const { values } = parseArgs({
    args: argv,
    options: {
      ...Object.fromEntries(numeric.map((n) => [n, { type: 'string' as const }])),
      truth: { type: 'string' },
      'no-heartbeats': { type: 'boolean' },
      live: { type: 'boolean' },
      'wait-for-group': { type: 'string' },
    },
  })
  const num = (name: (typeof numeric)[number]): number | undefined => {
    const v = (values as Record<string, unknown>)[name] as string | undefined
    if (v === undefined) return undefined
    const n = Number(v)
    if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${v}`)
    return n
  }
  const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
  const options: GeneratorOptions = { ...defaults, timing: { ...defaults.timing } }
  for (const name of numeric) {
    const v = num(name)
    if (v === undefined) continue
    if (name === 'duration-ms') continue
    if (name === 'join-grace-ms') options.timing.joinGraceMs = v
    else if (name === 'ctr-grace-ms') options.timing.ctrGraceMs = v
    else (options as unknown as Record<string, number>)[camel(name)] = v
  }
  const duration = num('duration-ms')
  if (duration !== undefined) options.count = Math.max(1, Math.round((options.rate * duration) / 1000))
  if (num('start-time') === undefined && !live) options.startTime = replayStartTime(options)
  const waitForGroup = values['wait-for-group'] as string | undefined
  return {
    options,
    truthFile: (values.truth as string | undefined) ?? 'impression-click-truth.json',
    heartbeats: !values['no-heartbeats'] && !live,
    ...(waitForGroup ? { waitForGroup } : {}),
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { options, truthFile, heartbeats: withHeartbeats, waitForGroup } = parseGeneratorArgs(process.argv.slice(2))
  const topics = topicNames(process.env.TOPIC_PREFIX ?? '')
  runGenerator(options, {
    brokers: (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
    registryUrl: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7',
    topics,
    truthFile,
    sendHeartbeats: withHeartbeats,
    ...(waitForGroup ? { waitForGroup } : {}),
    onProgress: (sent, total) => process.stderr.write(`[generator] ${sent}/${total} records sent\n`),
  }).then(
    (truth) => {
      process.stderr.write(
        `[generator] done: ${truth.impressions} impressions, ${truth.clicks} clicks, ` +
          `${Object.keys(truth.expectedClicked).length} expected clicked, ${truth.expectedNotClicked} not clicked, ${truth.tooLate} too late; truth in ${truthFile}\n`,
      )
    },
    (err: unknown) => {
      process.stderr.write(`[generator] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
      process.exit(1)
    },
  )
}
