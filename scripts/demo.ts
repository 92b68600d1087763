/**
 * `npm run demo`: the impression/click example end to end, on this machine.
 *
 * 1. Kafka and the schema registry: KAFKA_BROKERS / SCHEMA_REGISTRY_URL when set, otherwise the
 *    local ones (started on demand, see scripts/local-kafka.ts and scripts/local-registry.ts).
 * 2. Fresh topics for this run (4 partitions each): impressions, clicks, ad-events, campaign-ctr.
 * 3. Three app instances (examples/impression-click/app.ts) as separate processes, exactly-once.
 * 4. The generator (examples/impression-click/generator.ts) as a separate process.
 * 5. Midway, one instance is killed with SIGKILL and restarted.
 * 6. A live per-campaign CTR table with progress, from the committed output.
 * 7. The verifier's summary against the generator's ground truth; throughput and the end-to-end
 *    latency (p50/p99) from the later input of a clicked impression to its AdEvent being readable.
 *
 * Exit code 0 only if the output is exact (no duplicate, missing, unexpected or wrong record).
 *
 * Flags: --count N (impressions, default 18000), --rate N (impressions/s, default 300),
 * --instances N (default 3), --no-kill, --dashboard (per-instance live numbers from each
 * instance's kstreams/http server).
 * Event time follows the wall clock (the generator's `--live` mode: records are stamped at or
 * shortly before the moment they are sent, so Kafka 4.x accepts them too) with short windows
 * (LIVE_TIMING: 10 s join window + 5 s grace, 5 s CTR windows + 60 s grace), and the app
 * instances close the last windows with the wall-clock idle advance (`idleAdvanceMs` 1000,
 * `idleAdvanceDelayMs` 3000: the generator's out-of-order records trail the wall clock by at most
 * 2 s), so no heartbeat records are needed.
 * Logs of the app instances and the generator go to .cache/demo/<run>/.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { parseArgs } from 'node:util'
import Table from 'cli-table3'
import { createLogUpdate } from 'log-update'
import hdr from 'hdr-histogram-js'
import kafkajs from 'kafkajs'
import { ensureKafka } from './local-kafka.js'
import { ensureRegistry } from './local-registry.js'
import { REPO_ROOT, cacheDir } from './local-common.js'
import { LIVE_TIMING, topicNames } from '../examples/impression-click/config.js'
import { registrySerdes } from '../examples/impression-click/serdes.js'
import { dashboardLine, pollInstances, renderDashboard, type InstanceView } from './demo-dashboard.js'
import { formatReport, readOutputs, verify } from '../examples/impression-click/verify.js'
import type { Truth } from '../examples/impression-click/generator.js'
import type { AdEvent, CampaignCtr } from '../examples/impression-click/schemas/types.js'

const { Kafka, logLevel } = kafkajs

const { values: flags } = parseArgs({
  options: {
    count: { type: 'string', default: '18000' },
    rate: { type: 'string', default: '300' },
    instances: { type: 'string', default: '3' },
    'no-kill': { type: 'boolean', default: false },
    dashboard: { type: 'boolean', default: false },
  },
})
const COUNT = Number(flags.count)
const RATE = Number(flags.rate)
const INSTANCES = Number(flags.instances)
/** The app's wall-clock idle advance: after 1 s without input, stream-time = wall clock - 3 s. */
const IDLE_ADVANCE_MS = 1_000
const IDLE_ADVANCE_DELAY_MS = 3_000
const PARTITIONS = 4

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const tty = process.stdout.isTTY === true
const out = (line: string) => process.stdout.write(line + '\n')

/** Live view state, fed by the output consumer. */
interface CampaignView {
  impressions: number
  clicks: number
  finalWindows: number
  finalImpressions: number
  finalClicks: number
}

async function main(): Promise<number> {
  const runId = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14)
  const prefix = `demo-${runId}-`
  const runDir = path.join(cacheDir(), 'demo', runId)
  mkdirSync(runDir, { recursive: true })
  const truthFile = path.join(runDir, 'truth.json')

  out(`kstreams demo: impression/click join + CTR per campaign (run ${runId})`)
  const [kafka, registry] = await Promise.all([ensureKafka({ log: () => {} }), ensureRegistry({ log: () => {} })])
  out(
    `  Kafka ${kafka.brokers}${kafka.started ? ' (started locally)' : ''}, schema registry ${registry.url}${registry.started ? ' (started locally)' : ''}`,
  )
  const topics = topicNames(prefix)
  const applicationId = `${prefix}impression-click`
  const deadLetterTopic = `${prefix}impression-click-dlq`

  const client = new Kafka({ clientId: 'kstreams-demo', brokers: kafka.brokers.split(','), logLevel: logLevel.NOTHING })
  const admin = client.admin()
  await admin.connect()
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      ...[topics.impressions, topics.clicks, topics.adEvents, topics.campaignCtr].map((topic) => ({
        topic,
        numPartitions: PARTITIONS,
        replicationFactor: 1,
      })),
      { topic: deadLetterTopic, numPartitions: 1, replicationFactor: 1 },
    ],
  })
  out(
    `  topics ${prefix}{impressions,clicks,ad-events,campaign-ctr} with ${PARTITIONS} partitions; logs in ${path.relative(REPO_ROOT, runDir)}/`,
  )

  const env = {
    ...process.env,
    KAFKA_BROKERS: kafka.brokers,
    SCHEMA_REGISTRY_URL: registry.url,
    TOPIC_PREFIX: prefix,
    APPLICATION_ID: applicationId,
    DEAD_LETTER_TOPIC: deadLetterTopic,
    KAFKAJS_NO_PARTITIONER_WARNING: '1',
    JOIN_WINDOW_MS: String(LIVE_TIMING.joinWindowMs),
    CTR_WINDOW_MS: String(LIVE_TIMING.ctrWindowMs),
    JOIN_GRACE_MS: String(LIVE_TIMING.joinGraceMs),
    CTR_GRACE_MS: String(LIVE_TIMING.ctrGraceMs),
    IDLE_ADVANCE_MS: String(IDLE_ADVANCE_MS),
    IDLE_ADVANCE_DELAY_MS: String(IDLE_ADVANCE_DELAY_MS),
  }
  const tsx = (script: string, args: string[], extraEnv: Record<string, string>, logName: string): ChildProcess => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, script), ...args], {
      cwd: REPO_ROOT,
      env: { ...env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const log = createWriteStream(path.join(runDir, logName), { flags: 'a' })
    child.stdout!.pipe(log, { end: false })
    child.stderr!.pipe(log, { end: false })
    return child
  }

  let generatorChild: ChildProcess | undefined
  // App instances.
  const apps: Array<ChildProcess | undefined> = []
  const failures: string[] = []
  let stopping = false
  // --dashboard: each instance serves kstreams/http on its own port (kept across its restart)
  const httpPorts = flags.dashboard ? await Promise.all(Array.from({ length: INSTANCES }, () => freePort())) : []
  let dashboard: InstanceView[] = httpPorts.map((port, i) => ({ name: `instance ${i + 1}`, url: `http://127.0.0.1:${port}` }))
  const startInstance = (i: number) => {
    const child = tsx(
      'examples/impression-click/app.ts',
      [],
      {
        INSTANCE_ID: String(i + 1),
        STATE_DIR: path.join(runDir, `state-${i + 1}`),
        ...(flags.dashboard ? { HTTP_PORT: String(httpPorts[i]), METRICS_RECORDING_LEVEL: 'DEBUG' } : {}),
      },
      `app-${i + 1}.log`,
    )
    apps[i] = child
    child.once('exit', (code, signal) => {
      if (stopping || signal === 'SIGKILL') return
      failures.push(
        `instance ${i + 1} exited (${signal ?? `code ${code}`}); see ${path.relative(REPO_ROOT, path.join(runDir, `app-${i + 1}.log`))}`,
      )
    })
  }
  for (let i = 0; i < INSTANCES; i++) startInstance(i)
  const onSignal = (signal: NodeJS.Signals) => {
    out(`\n${signal}: stopping the app instances and the generator`)
    generatorChild?.kill('SIGTERM')
    void stopApps().then(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const stopApps = async () => {
    stopping = true
    await Promise.all(
      apps.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (!child || child.exitCode !== null || child.signalCode !== null) return resolve()
            const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
            child.once('exit', () => {
              clearTimeout(timer)
              resolve()
            })
            child.kill('SIGTERM')
          }),
      ),
    )
  }

  // Output consumer for the live view and latency.
  const campaigns = new Map<string, CampaignView>()
  const clickedSeenAt = new Map<string, number>()
  let adEventsRead = 0
  let ctrRead = 0
  let lastOutputAt = Date.now()
  const perSecond = new Map<number, number>()
  const serdes = registrySerdes({ host: registry.url })
  const consumer = client.consumer({ groupId: `${prefix}demo-monitor`, readUncommitted: false, maxWaitTimeInMs: 100 })
  await consumer.connect()
  await consumer.subscribe({ topics: [topics.adEvents, topics.campaignCtr], fromBeginning: true })
  const view = (c: string): CampaignView => {
    let v = campaigns.get(c)
    if (!v) campaigns.set(c, (v = { impressions: 0, clicks: 0, finalWindows: 0, finalImpressions: 0, finalClicks: 0 }))
    return v
  }
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const now = Date.now()
      const isAd = batch.topic === topics.adEvents
      const serde = isAd ? serdes.adEvent : serdes.campaignCtr
      await serde.prepareDeserialize!(
        batch.topic,
        batch.messages.map((m) => m.value),
      )
      for (const m of batch.messages) {
        const value = serde.deserialize(batch.topic, m.value)
        if (value === null) continue
        if (isAd) {
          const e = value as AdEvent
          adEventsRead++
          const sec = Math.floor(now / 1000)
          perSecond.set(sec, (perSecond.get(sec) ?? 0) + 1)
          const v = view(e.campaignId)
          v.impressions++
          if (e.clicked) {
            v.clicks++
            if (!clickedSeenAt.has(e.impressionId)) clickedSeenAt.set(e.impressionId, now)
          }
        } else {
          const c = value as CampaignCtr
          ctrRead++
          const v = view(c.campaignId)
          v.finalWindows++
          v.finalImpressions += c.impressions
          v.finalClicks += c.clicks
        }
      }
      if (batch.messages.length) lastOutputAt = now
    },
  })

  // Wait until the instances have joined before generating.
  await waitForGroup(admin, applicationId, INSTANCES, 120_000)

  // Generator.
  const started = Date.now()
  const generator = (generatorChild = tsx(
    'examples/impression-click/generator.ts',
    ['--live', '--count', String(COUNT), '--rate', String(RATE), '--truth', truthFile],
    {},
    'generator.log',
  ))
  let generatorDone = false
  const generatorExit = new Promise<number>((resolve) =>
    generator.once('exit', (code) => {
      generatorDone = true
      resolve(code ?? 1)
    }),
  )

  let killed = false
  let restarted = false
  const events: string[] = []
  const logUpdate = createLogUpdate(process.stdout)
  let lastPlain = 0
  const inputTotal = () => admin.fetchTopicOffsets(topics.impressions).then((ps) => ps.reduce((s, p) => s + Number(p.high), 0))
  const render = (produced: number, final = false) => {
    const table = new Table({
      head: ['campaign', 'AdEvents', 'clicked', 'CTR so far', 'final windows', 'final CTR'],
      colAligns: ['left', 'right', 'right', 'right', 'right', 'right'],
      // compact with the dashboard below it, so both fit a terminal's height (log-update keeps the bottom)
      style: { head: [], border: [], compact: flags.dashboard === true },
    })
    for (const [c, v] of [...campaigns].sort((a, b) => a[0].localeCompare(b[0]))) {
      table.push([
        c,
        v.impressions,
        v.clicks,
        v.impressions ? `${((100 * v.clicks) / v.impressions).toFixed(2)}%` : '-',
        v.finalWindows,
        v.finalImpressions ? `${((100 * v.finalClicks) / v.finalImpressions).toFixed(2)}%` : '-',
      ])
    }
    const pct = Math.min(100, (100 * produced) / COUNT)
    const bar = '#'.repeat(Math.round(pct / 4)).padEnd(25, '.')
    const elapsed = ((Date.now() - started) / 1000).toFixed(0)
    const lines = [
      `[${bar}] ${produced}/${COUNT} impressions produced, ${adEventsRead} AdEvents and ${ctrRead} final CTR windows read (${elapsed} s)`,
      ...events.map((e) => `  ${e}`),
      table.toString(),
    ]
    if (flags.dashboard && tty) lines.push('app instances (kstreams/http /topology):', renderDashboard(dashboard))
    if (tty) {
      logUpdate(lines.join('\n'))
      if (final) logUpdate.done()
    } else if (final || Date.now() - lastPlain >= 5_000) {
      lastPlain = Date.now()
      out(final ? lines.join('\n') : lines[0]!)
      if (flags.dashboard) out(`  instances: ${dashboardLine(dashboard)}`)
    }
  }

  // Input records the app has consumed and committed, sampled over time (throughput).
  const consumedSamples: Array<{ at: number; consumed: number }> = []
  const sampleConsumed = async () => {
    const offsets = await admin.fetchOffsets({ groupId: applicationId, topics: [topics.impressions, topics.clicks] })
    const consumed = offsets.flatMap((t) => t.partitions).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0)
    consumedSamples.push({ at: Date.now(), consumed })
  }

  let produced = 0
  let expectedAdEvents = Number.POSITIVE_INFINITY
  let expectedCtr = Number.POSITIVE_INFINITY
  let truth: Truth | undefined
  const deadline = Date.now() + 30 * 60_000
  for (;;) {
    await sleep(500)
    produced = Math.min(COUNT, await inputTotal().catch(() => produced))
    await sampleConsumed().catch(() => undefined)
    if (flags.dashboard) dashboard = await pollInstances(dashboard)
    if (!killed && !flags['no-kill'] && produced >= COUNT / 2 && apps[1]) {
      killed = true
      apps[1].kill('SIGKILL')
      events.push(`${new Date().toISOString().slice(11, 19)} killed instance 2 with SIGKILL at ${produced} impressions`)
      setTimeout(() => {
        startInstance(1)
        restarted = true
        events.push(`${new Date().toISOString().slice(11, 19)} restarted instance 2 (same state dir)`)
      }, 3_000)
    }
    if (failures.length) {
      render(produced, true)
      for (const f of failures) out(`FAILED: ${f}`)
      generatorChild?.kill('SIGTERM')
      await shutdown()
      return 1
    }
    if (generatorDone && !truth) {
      if ((await generatorExit) !== 0) {
        render(produced, true)
        out(`generator failed: see ${path.join(runDir, 'generator.log')}`)
        await shutdown()
        return 1
      }
      truth = JSON.parse(readFileSync(truthFile, 'utf8')) as Truth
      expectedAdEvents = truth.impressions - truth.tooLate
      expectedCtr = truth.windows.length
    }
    render(produced)
    if (truth && adEventsRead >= expectedAdEvents && ctrRead >= expectedCtr && Date.now() - lastOutputAt > 2_000) break
    if (truth && Date.now() - lastOutputAt > 120_000) {
      events.push('no new output for 120 s: giving up waiting')
      break
    }
    if (Date.now() > deadline) break
  }
  const finishedAt = lastOutputAt
  render(produced, true)

  async function shutdown() {
    await consumer.disconnect().catch(() => {})
    await stopApps()
    await admin.disconnect().catch(() => {})
    await Promise.all([kafka.stop(), registry.stop()])
  }

  if (!truth) {
    out('the generator did not finish in time')
    await shutdown()
    return 1
  }
  void restarted

  // Verification from scratch (a fresh read_committed consumer), independent of the live view.
  out('\nverifier (a fresh read_committed consumer of ad-events and campaign-ctr vs the generator truth):')
  const outputs = await readOutputs({
    brokers: kafka.brokers.split(','),
    registryUrl: registry.url,
    topics,
    expectedAdEvents,
    expectedCtr,
    settleMs: 1_000,
  })
  const report = verify(truth, outputs)
  out(formatReport(report).replace(/^/gm, '  '))

  // Throughput and latency.
  const inputs = truth.impressions + truth.clicks
  const seconds = (finishedAt - (truth.wallStart ?? started)) / 1000
  const peak = Math.max(0, ...perSecond.values())
  // Consumption rate: until the app had committed every generated input record, and the best
  // 3-second stretch (typically the catch-up after the restart).
  const allIn = consumedSamples.find((s) => s.consumed >= inputs)
  const first = consumedSamples[0]
  const sustained = allIn && first ? (allIn.consumed - first.consumed) / ((allIn.at - first.at) / 1000) : NaN
  let peakConsumed = 0
  for (let i = 0, j = 0; i < consumedSamples.length; i++) {
    while (consumedSamples[i]!.at - consumedSamples[j]!.at > 3_000) j++
    const dt = (consumedSamples[i]!.at - consumedSamples[j]!.at) / 1000
    if (dt >= 1) peakConsumed = Math.max(peakConsumed, (consumedSamples[i]!.consumed - consumedSamples[j]!.consumed) / dt)
  }
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000, numberOfSignificantValueDigits: 3 })
  let measured = 0
  for (const [id, seenAt] of clickedSeenAt) {
    const sentAt = truth.sentAt[id]
    if (sentAt === undefined) continue
    histogram.recordValue(Math.max(1, seenAt - sentAt))
    measured++
  }
  const dlq = (await admin.fetchTopicOffsets(deadLetterTopic)).reduce((s, p) => s + Number(p.high), 0)
  out('\nperformance:')
  out(`  input: ${inputs} records (${truth.impressions} impressions + ${truth.clicks} clicks) at a generator rate of ${RATE} impressions/s`)
  out(
    `  throughput: ${Math.round(sustained)} input records/s consumed and committed by the ${INSTANCES} instances on average ` +
      `(peak ${Math.round(peakConsumed)} records/s over 3 s); ${seconds.toFixed(1)} s from first input to last output; peak ${peak} AdEvents/s read`,
  )
  out(
    `  latency (input sent -> clicked AdEvent readable with read_committed, ${measured} AdEvents): ` +
      `p50 ${histogram.getValueAtPercentile(50)} ms, p99 ${histogram.getValueAtPercentile(99)} ms, max ${histogram.maxValue} ms`,
  )
  out(`  dead-letter records: ${dlq}; instance 2 was ${flags['no-kill'] ? 'not killed' : 'killed (SIGKILL) and restarted midway'}`)
  const t = truth.options.timing
  out(
    `  timing: join window ${t.joinWindowMs / 1000} s + grace ${t.joinGraceMs / 1000} s, CTR windows ${t.ctrWindowMs / 1000} s + grace ${t.ctrGraceMs / 1000} s ` +
      `(event time = wall clock); last windows closed by the idle advance (${IDLE_ADVANCE_MS} ms idle, ${IDLE_ADVANCE_DELAY_MS} ms delay), no heartbeat records`,
  )
  if (!report.exact) await printLag(admin, applicationId, [topics.impressions, topics.clicks])
  out(report.exact ? '\nRESULT: EXACT' : '\nRESULT: NOT EXACT')
  await shutdown()
  return report.exact ? 0 : 1
}

/** Prints, per source partition (inputs and repartition topics), how far the app group lags: where a stuck task is. */
async function printLag(admin: kafkajs.Admin, groupId: string, inputs: string[]): Promise<void> {
  const repartition = (await admin.listTopics()).filter((t) => t.startsWith(`${groupId}-`) && t.endsWith('-repartition'))
  const topicsToCheck = [...inputs, ...repartition]
  const committed = await admin.fetchOffsets({ groupId, topics: topicsToCheck })
  const lines: string[] = []
  for (const t of committed) {
    const ends = new Map((await admin.fetchTopicOffsets(t.topic)).map((p) => [p.partition, Number(p.high)]))
    for (const p of [...t.partitions].sort((a, b) => a.partition - b.partition)) {
      const lag = (ends.get(p.partition) ?? 0) - Math.max(0, Number(p.offset))
      if (lag > 0) lines.push(`  ${t.topic}[${p.partition}]: committed ${p.offset}, end ${ends.get(p.partition)}, lag ${lag}`)
    }
  }
  out(
    lines.length
      ? `\napp consumer group lag (a task that stopped consuming):\n${lines.join('\n')}`
      : '\napp consumer group: no lag on any source partition',
  )
}

/** A free TCP port on 127.0.0.1 (bound and released), for an instance's HTTP server. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** Waits until consumer group `groupId` is Stable with `members` members. */
async function waitForGroup(admin: kafkajs.Admin, groupId: string, members: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const { groups } = await admin.describeGroups([groupId])
    const g = groups[0]
    if (g && g.state === 'Stable' && g.members.length >= members) return
    if (Date.now() > deadline)
      throw new Error(
        `app instances did not form a stable group of ${members} in ${timeoutMs} ms (state ${g?.state}, ${g?.members.length} members)`,
      )
    await sleep(500)
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exit(1)
  },
)
