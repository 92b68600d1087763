/**
 * Verifier of the impression/click example: reads the two output topics with read_committed and
 * compares them with the generator's truth. Exact or not: every expected AdEvent exactly once
 * with the right click, nothing unexpected, and one final CTR result per campaign and window with
 * the exact counts.
 *
 *   npx tsx examples/impression-click/verify.ts --truth truth.json   # exit 0 only if exact
 *
 * Environment: KAFKA_BROKERS, SCHEMA_REGISTRY_URL, TOPIC_PREFIX (as for the generator).
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { randomBytes } from 'node:crypto'
import kafkajs from 'kafkajs'
// read_committed without records of aborted transactions (a kafkajs 2.2.4 bug after a kill -9; see the module)
import { fixKafkajs } from '../../lib/app/client/kafkajs-internals.js'
import { isHeartbeat, topicNames, type ImpressionClickTopics } from './config.js'
import { registrySerdes } from './serdes.js'
import type { AdEvent, CampaignCtr } from './schemas/types.js'
import type { Truth } from './generator.js'

const { Kafka, logLevel } = kafkajs

/** What was read from the output topics (heartbeats removed). */
export interface Outputs {
  adEvents: AdEvent[]
  ctr: CampaignCtr[]
  /** Records that could not be decoded. */
  undecodable: number
}

/** One mismatch between truth and output (at most a few of each kind are listed). */
export interface Report {
  exact: boolean
  impressionsGenerated: number
  clicksGenerated: number
  tooLate: number
  expected: { clicked: number; notClicked: number; ctrWindows: number }
  actual: { clicked: number; notClicked: number; ctrWindows: number }
  /** AdEvents for an impression seen more than once, and CTR results for a window seen more than once. */
  duplicates: { adEvents: number; ctr: number }
  missing: { adEvents: number; ctr: number }
  unexpected: { adEvents: number; ctr: number }
  wrong: { adEvents: number; ctr: number }
  undecodable: number
  /** Up to 10 human-readable examples of what is wrong. */
  problems: string[]
}

/** Compares outputs with the truth. Pure. */
export function verify(truth: Truth, outputs: Outputs): Report {
  const problems: string[] = []
  const note = (s: string) => {
    if (problems.length < 10) problems.push(s)
  }
  const tooLate = new Set(truth.tooLateIds)
  const seen = new Map<string, number>()
  let clicked = 0
  let notClicked = 0
  let wrongAd = 0
  let unexpectedAd = 0
  let dupAd = 0
  for (const e of outputs.adEvents) {
    const n = (seen.get(e.impressionId) ?? 0) + 1
    seen.set(e.impressionId, n)
    if (n > 1) {
      dupAd++
      note(`duplicate AdEvent for ${e.impressionId}`)
      continue
    }
    if (e.clicked) clicked++
    else notClicked++
    if (tooLate.has(e.impressionId) || !/^imp-\d+$/.test(e.impressionId) || Number(e.impressionId.slice(4)) >= truth.impressions) {
      unexpectedAd++
      note(`unexpected AdEvent for ${e.impressionId}${tooLate.has(e.impressionId) ? ' (a too-late impression the join must drop)' : ''}`)
      continue
    }
    const expectedClick = truth.expectedClicked[e.impressionId]
    if ((expectedClick ?? null) !== (e.clicked ? e.clickId : null) || e.clicked !== (expectedClick !== undefined)) {
      wrongAd++
      note(
        `AdEvent ${e.impressionId}: clicked=${e.clicked} clickId=${e.clickId}, expected ${expectedClick ? `click ${expectedClick}` : 'no click'}`,
      )
    }
  }
  const expectedTotal = truth.impressions - truth.tooLate
  let missingAd = 0
  for (let i = 0; i < truth.impressions; i++) {
    const id = `imp-${String(i).padStart(8, '0')}`
    if (!tooLate.has(id) && !seen.has(id)) {
      missingAd++
      note(`missing AdEvent for ${id}${truth.expectedClicked[id] ? ' (clicked)' : ''}`)
    }
  }

  const ctrSeen = new Map<string, CampaignCtr>()
  let dupCtr = 0
  let wrongCtr = 0
  let unexpectedCtr = 0
  const truthWindows = new Map(truth.windows.map((w) => [`${w.campaignId}@${w.windowStart}`, w]))
  for (const c of outputs.ctr) {
    const key = `${c.campaignId}@${c.windowStart}`
    if (ctrSeen.has(key)) {
      dupCtr++
      note(`duplicate CTR result for ${c.campaignId} window ${new Date(c.windowStart).toISOString()}`)
      continue
    }
    ctrSeen.set(key, c)
    const w = truthWindows.get(key)
    if (!w) {
      unexpectedCtr++
      note(`unexpected CTR result ${JSON.stringify(c)}`)
      continue
    }
    const ctr = w.impressions === 0 ? 0 : w.clicks / w.impressions
    if (c.impressions !== w.impressions || c.clicks !== w.clicks || c.windowEnd !== w.windowEnd || Math.abs(c.ctr - ctr) > 1e-12) {
      wrongCtr++
      note(
        `CTR ${c.campaignId} @ ${new Date(c.windowStart).toISOString()}: ${c.clicks}/${c.impressions}, expected ${w.clicks}/${w.impressions}`,
      )
    }
  }
  let missingCtr = 0
  for (const [key, w] of truthWindows) {
    if (!ctrSeen.has(key)) {
      missingCtr++
      note(`missing CTR result for ${w.campaignId} window ${new Date(w.windowStart).toISOString()}`)
    }
  }
  const expected = {
    clicked: Object.keys(truth.expectedClicked).length,
    notClicked: truth.expectedNotClicked,
    ctrWindows: truth.windows.length,
  }
  const report: Report = {
    exact: false,
    impressionsGenerated: truth.impressions,
    clicksGenerated: truth.clicks,
    tooLate: truth.tooLate,
    expected,
    actual: { clicked, notClicked, ctrWindows: ctrSeen.size },
    duplicates: { adEvents: dupAd, ctr: dupCtr },
    missing: { adEvents: missingAd, ctr: missingCtr },
    unexpected: { adEvents: unexpectedAd, ctr: unexpectedCtr },
    wrong: { adEvents: wrongAd, ctr: wrongCtr },
    undecodable: outputs.undecodable,
    problems,
  }
  report.exact =
    expectedTotal === clicked + notClicked &&
    dupAd + dupCtr + missingAd + missingCtr + unexpectedAd + unexpectedCtr + wrongAd + wrongCtr + outputs.undecodable === 0
  return report
}

/** The report as a few lines of text. */
export function formatReport(r: Report): string {
  const lines = [
    `impressions generated   ${r.impressionsGenerated} (${r.tooLate} sent too late, dropped by the join as expected)`,
    `clicks generated        ${r.clicksGenerated}`,
    `AdEvents clicked        ${r.actual.clicked} (expected ${r.expected.clicked})`,
    `AdEvents not clicked    ${r.actual.notClicked} (expected ${r.expected.notClicked})`,
    `CTR windows (final)     ${r.actual.ctrWindows} (expected ${r.expected.ctrWindows})`,
    `duplicates              ${r.duplicates.adEvents + r.duplicates.ctr} (AdEvents ${r.duplicates.adEvents}, CTR ${r.duplicates.ctr})`,
    `missing                 ${r.missing.adEvents + r.missing.ctr} (AdEvents ${r.missing.adEvents}, CTR ${r.missing.ctr})`,
    `unexpected / wrong      ${r.unexpected.adEvents + r.unexpected.ctr} / ${r.wrong.adEvents + r.wrong.ctr}`,
    `undecodable records     ${r.undecodable}`,
    `result                  ${r.exact ? 'EXACT' : 'NOT EXACT'}`,
  ]
  if (r.problems.length) lines.push('problems:', ...r.problems.map((p) => `  - ${p}`))
  return lines.join('\n')
}

/** Settings of {@link readOutputs}. */
export interface ReadOutputsOptions {
  brokers: string[]
  registryUrl: string
  topics: ImpressionClickTopics
  /** Stop once this many non-heartbeat AdEvents and CTR results were read and nothing new came for `settleMs`. */
  expectedAdEvents?: number
  expectedCtr?: number
  /** @defaultValue 3000 */
  settleMs?: number
  /** Give up waiting for more after this long without any new record. @defaultValue 20000 */
  idleTimeoutMs?: number
  /** Hard limit. @defaultValue 300000 */
  timeoutMs?: number
}

/** Reads both output topics from the beginning with read_committed (a fresh consumer group). */
export async function readOutputs(o: ReadOutputsOptions): Promise<Outputs> {
  const kafka = fixKafkajs(new Kafka({ clientId: 'impression-click-verifier', brokers: o.brokers, logLevel: logLevel.NOTHING }))
  const consumer = kafka.consumer({
    groupId: `impression-click-verify-${randomBytes(6).toString('hex')}`,
    readUncommitted: false,
    maxWaitTimeInMs: 200,
  })
  const serdes = registrySerdes({ host: o.registryUrl })
  const out: Outputs = { adEvents: [], ctr: [], undecodable: 0 }
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [o.topics.adEvents, o.topics.campaignCtr], fromBeginning: true })
    let last = Date.now()
    const start = Date.now()
    await consumer.run({
      eachBatch: async ({ batch }) => {
        const isAd = batch.topic === o.topics.adEvents
        const serde = isAd ? serdes.adEvent : serdes.campaignCtr
        await serde.prepareDeserialize!(
          batch.topic,
          batch.messages.map((m) => m.value),
        )
        for (const m of batch.messages) {
          try {
            const v = serde.deserialize(batch.topic, m.value)
            if (v === null) continue
            if (isAd) {
              const e = v as AdEvent
              if (!isHeartbeat(e.impressionId)) out.adEvents.push(e)
            } else {
              const c = v as CampaignCtr
              if (!isHeartbeat(c.campaignId)) out.ctr.push(c)
            }
          } catch {
            out.undecodable++
          }
        }
        if (batch.messages.length) last = Date.now()
      },
    })
    const settle = o.settleMs ?? 3_000
    for (;;) {
      await new Promise((r) => setTimeout(r, 250))
      const idle = Date.now() - last
      const complete =
        (o.expectedAdEvents === undefined || out.adEvents.length >= o.expectedAdEvents) &&
        (o.expectedCtr === undefined || out.ctr.length >= o.expectedCtr)
      if (complete && idle >= settle) break
      if (idle >= (o.idleTimeoutMs ?? 20_000)) break
      if (Date.now() - start >= (o.timeoutMs ?? 300_000)) break
    }
    return out
  } finally {
    await consumer.disconnect()
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ args: process.argv.slice(2), options: { truth: { type: 'string' }, json: { type: 'boolean' } } })
  const truth = JSON.parse(readFileSync(values.truth ?? 'impression-click-truth.json', 'utf8')) as Truth
  readOutputs({
    brokers: (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
    registryUrl: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7',
    topics: topicNames(process.env.TOPIC_PREFIX ?? ''),
    expectedAdEvents: truth.impressions - truth.tooLate,
    expectedCtr: truth.windows.length,
  }).then(
    (outputs) => {
      const report = verify(truth, outputs)
      process.stdout.write((values.json ? JSON.stringify(report, null, 2) : formatReport(report)) + '\n')
      process.exit(report.exact ? 0 : 1)
    },
    (err: unknown) => {
      process.stderr.write(`[verify] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
      process.exit(2)
    },
  )
}
