/**
 * Metrics and health of running clients against the real broker: three instances of a count
 * (exactly-once) over a transactionally written input, so every partition ends with a commit
 * marker. The sum of `process-total` over the clients equals the records processed, every
 * partition's `records-lag` reaches 0 (the trailing markers do not leave it at 1), and an
 * instance restarted on an empty state directory restores its tasks (KIP-869 `restore-total`,
 * `restore-remaining-records-total`) with `health().ready` false until restoration is done.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KafkaStreams } from '../../lib/app/kafka-streams.js'
import type { StreamsHealth } from '../../lib/app/health.js'
import { StreamsEvents } from '../../lib/app/events.js'
import { createPrometheusScraper, findMetrics, Serdes, StreamsBuilder, type Topology } from '../../lib/index.js'
import { brokers, connectedProducer, createTopics, onCleanup, randomTopic } from './helpers.js'

const S = Serdes.String()
const PARTITIONS = 6
const N = 3_000

const clients: KafkaStreams[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close({ timeoutMs: 30_000 })))
})

async function stateDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'kstreams-it-metrics-'))
  onCleanup(() => rm(d, { recursive: true, force: true }))
  return d
}

function topology(input: string, output: string): Topology {
  const b = new StreamsBuilder()
  b.stream<string, string>(input, { keySerde: S, valueSerde: S })
    .groupByKey()
    .count({ storeName: 'counts' })
    .toStream()
    .mapValues((n) => String(n))
    .to(output, { keySerde: S, valueSerde: S })
  return b.build()
}

async function until(cond: () => boolean, what: () => string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what()}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Sum of a metric's values over clients (and over its tags). */
function sum(cs: ReadonlyArray<KafkaStreams>, name: string, tags: Record<string, string> = {}, group?: string): number {
  let n = 0
  for (const c of cs) for (const m of findMetrics(c.metrics(), name, tags, group)) n += Number(m.metricValue())
  return n
}

describe('runtime metrics and health (3 instances, exactly-once)', () => {
  it('process-total adds up, records-lag reaches 0, restore metrics and readiness after a restart', async () => {
    const appId = randomTopic('metrics')
    const input = randomTopic('metrics-in')
    const output = randomTopic('metrics-out')
    await createTopics({ topic: input, numPartitions: PARTITIONS }, { topic: output, numPartitions: PARTITIONS })
    const start = async (): Promise<KafkaStreams> => {
      const s = new KafkaStreams(topology(input, output), {
        applicationId: appId,
        bootstrapServers: brokers(),
        stateDir: await stateDir(),
        processingGuarantee: 'exactly_once',
        commitIntervalMs: 200,
        sessionTimeoutMs: 10_000,
        heartbeatIntervalMs: 1_000,
        logLevel: 'error',
        // DEBUG: task-level process-*, the metered store layer
        metricsRecordingLevel: 'DEBUG',
      })
      clients.push(s)
      return s
    }
    const [a, b, c] = [await start(), await start(), await start()]
    await Promise.all([a, b, c].map((s) => s.start()))
    await until(
      () => [a, b, c].every((s) => s.state === 'RUNNING' && s.activeTaskIds().length > 0),
      () => `every client RUNNING with tasks: ${[a, b, c].map((s) => `${s.state} ${s.activeTaskIds()}`).join('; ')}`,
    )
    expect([a, b, c].flatMap((s) => s.activeTaskIds()).sort()).toEqual(Array.from({ length: PARTITIONS }, (_, p) => `0_${p}`))
    for (const s of [a, b, c]) expect(s.health()).toMatchObject({ state: 'RUNNING', live: true, ready: true })

    // input in transactions: every partition's log ends with a commit marker
    const producer = await connectedProducer({ transactionalId: randomTopic('metrics-txn'), idempotent: true, maxInFlightRequests: 1 })
    for (let i = 0; i < N; i += 500) {
      const txn = await producer.transaction()
      await txn.send({
        topic: input,
        messages: Array.from({ length: 500 }, (_, j) => ({ key: `k${i + j}`, value: 'v', partition: (i + j) % PARTITIONS })),
      })
      await txn.commit()
    }
    const all = [a, b, c]
    await until(
      () => sum(all, 'process-total', { 'thread-id': `${appId}-StreamThread-1` }, 'stream-thread-metrics') >= N,
      () => `process-total ${sum(all, 'process-total')} of ${N}`,
    )
    await new Promise((r) => setTimeout(r, 1_000))
    expect(sum(all, 'process-total', { 'thread-id': `${appId}-StreamThread-1` }, 'stream-thread-metrics')).toBe(N)
    // DEBUG task-level process-total adds up too, and the metered store layer saw the count's puts
    expect(
      all.reduce(
        (n, s) =>
          n +
          findMetrics(s.metrics(), 'process-total')
            .filter((m) => 'task-id' in m.metricName.tags)
            .reduce((x, m) => x + Number(m.metricValue()), 0),
        0,
      ),
    ).toBe(N)
    for (const s of all) expect(findMetrics(s.metrics(), 'put-rate', { 'leveldb-state-id': 'counts' }).length).toBeGreaterThan(0)
    // every input partition is reported by the client that consumes it, and its lag reaches 0
    const lags = () => all.flatMap((s) => findMetrics(s.metrics(), 'records-lag', { topic: input }).map((m) => Number(m.metricValue())))
    await until(
      () => lags().length === PARTITIONS && lags().every((l) => l === 0),
      () => `records-lag per partition: ${JSON.stringify(lags())}`,
    )
    for (const s of all) {
      const h = s.health()
      expect(h).toMatchObject({ state: 'RUNNING', live: true, ready: true, maxLag: 0 })
      expect(h.lastCommitAgeMs).not.toBeNull()
      expect(h.tasks.every((t) => t.state === 'running')).toBe(true)
      expect(findMetrics(s.metrics(), 'commit-total', {}, 'stream-thread-metrics').length).toBe(1)
      expect(sum([s], 'commit-total', {}, 'stream-thread-metrics')).toBeGreaterThan(0)
      expect(findMetrics(s.metrics(), 'state')[0]!.metricValue()).toBe('RUNNING')
      expect(sum([s], 'alive-stream-threads')).toBe(1)
    }

    // the client is a MetricsSource: its Prometheus text carries the same numbers
    const scraper = await createPrometheusScraper(a)
    onCleanup(() => scraper.shutdown())
    const text = await scraper.scrape()
    if (process.env.KSTREAMS_SCRAPE_OUT) await writeFile(process.env.KSTREAMS_SCRAPE_OUT, text)
    const processTotal = text.match(/^kafka_streams_thread_process_total\{[^}]*\} (\d+)/m)
    expect(Number(processTotal?.[1])).toBe(sum([a], 'process-total', { 'thread-id': `${appId}-StreamThread-1` }, 'stream-thread-metrics'))
    expect(text).toMatch(new RegExp(`^kafka_consumer_fetch_manager_records_lag\\{[^}]*topic="${input}"[^}]*\\} 0$`, 'm'))

    // restart c on an empty state directory: its tasks come back restoring from the changelog
    await c.close()
    clients.splice(clients.indexOf(c), 1)
    const c2 = await start()
    const duringRestore: StreamsHealth[] = []
    let restoredByEvents = 0
    c2.on(StreamsEvents.RESTORE_START, () => void duringRestore.push(c2.health()))
    c2.on(StreamsEvents.RESTORE_END, (e: { restored: number }) => void (restoredByEvents += e.restored))
    await c2.start()
    const restart = [a, b, c2]
    await until(
      () => restart.every((s) => s.state === 'RUNNING') && c2.activeTaskIds().length > 0 && c2.health().ready,
      () => `c2 ready: ${JSON.stringify(c2.health())}`,
    )
    expect(duringRestore.length).toBeGreaterThan(0)
    for (const h of duringRestore) {
      expect(h.ready).toBe(false)
      expect(h.live).toBe(true)
      const restoring = h.tasks.filter((t) => t.state === 'restoring')
      expect(restoring.length).toBeGreaterThan(0)
      for (const t of restoring) if (t.restore) expect(t.restore.restored + t.restore.remaining).toBeLessThanOrEqual(t.restore.total)
    }
    expect(duringRestore.some((h) => h.tasks.some((t) => (t.restore?.total ?? 0) > 0))).toBe(true)
    expect(restoredByEvents).toBeGreaterThan(0)
    expect(sum([c2], 'restore-total')).toBe(restoredByEvents)
    expect(sum([c2], 'restore-remaining-records-total')).toBe(0)
    const h = c2.health()
    expect(h).toMatchObject({ state: 'RUNNING', live: true, ready: true })
    expect(h.tasks.map((t) => t.taskId)).toEqual(c2.activeTaskIds())
  })
})
