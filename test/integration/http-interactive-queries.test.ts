/**
 * kstreams/http across instances (real broker): 3 word-count instances (examples/word-count), each
 * with its HTTP server on 127.0.0.1 and a random port as its applicationServer. A key lookup on ANY
 * instance returns the count held by the key's owner (answered there or forwarded once), also after
 * the owner stops and its tasks move: lookups issued all through the move answer the owner's count or
 * 503 + Retry-After, never a missing or partial value. `/metrics` on each instance: process-total
 * adds up to the records processed, records-lag reaches 0; a new instance's restore metrics (KIP-869)
 * match what it restored, and its `/health/ready` goes from 503 to 200 only once that is done.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KafkaStreams, Serdes, StreamsEvents } from '../../lib/index.js'
import { FORWARDED_HEADER, StreamsHttpServer } from '../../lib/http/index.js'
import { startWordCount } from '../../examples/word-count/app.js'
import { wordCountTopology } from '../../examples/word-count/topology.js'
import { brokers, connectedProducer, createTopics, randomTopic } from './helpers.js'

type Instance = { streams: KafkaStreams; server?: StreamsHttpServer }
const running: Instance[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map(async (i) => Promise.all([i.server?.close(), i.streams.close({ timeoutMs: 30_000 })])))
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function get(port: number, p: string, headers: Record<string, string> = {}) {
  const r = await fetch(`http://127.0.0.1:${port}${p}`, { headers })
  const text = await r.text()
  return { status: r.status, headers: r.headers, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : text }
}

/** GETs the word's count on `port`, retrying 503 answers (rebalance, restore) until `deadline`. */
async function countOn(port: number, word: string, deadline: number) {
  for (;;) {
    const r = await get(port, `/stores/counts/keys/${encodeURIComponent(word)}`)
    if (r.status !== 503 || Date.now() > deadline) return r
    expect(r.headers.get('retry-after')).toBe('1')
    await sleep(200)
  }
}

describe('kstreams/http: interactive queries across 3 instances', () => {
  it('answers a key on any instance with its owner value, through a task move, and flips readiness', async () => {
    const input = randomTopic('http-in')
    const output = randomTopic('http-out')
    await createTopics({ topic: input, numPartitions: 3 }, { topic: output, numPartitions: 3 })
    const applicationId = randomTopic('http-wc')
    const start = async (i: number) => {
      const inst = await startWordCount({
        instanceId: `i${i}`,
        port: 0,
        brokers: brokers(),
        applicationId,
        input,
        output,
        stateDir: await fs.mkdtemp(path.join(os.tmpdir(), 'kstreams-http-')),
        commitIntervalMs: 200,
      })
      running.push(inst)
      return inst
    }
    const instances = await Promise.all([0, 1, 2].map(start))
    const ports = instances.map((i) => i.server!.address().port)
    await Promise.all(instances.map((i) => i.streams.waitForState('RUNNING', 90_000)))

    const lines = Array.from({ length: 120 }, (_, i) => `alpha beta w${i % 13} gamma${i % 5}`)
    const expected = new Map<string, number>()
    for (const l of lines) for (const w of l.split(' ')) expected.set(w, (expected.get(w) ?? 0) + 1)
    const producer = await connectedProducer()
    await producer.send({ topic: input, messages: lines.map((value, i) => ({ key: String(i), value })) })

    // every instance answers every word with the owner's count; some answers were forwarded
    const checkAll = async (live: number[]) => {
      const deadline = Date.now() + 60_000
      let forwarded = 0
      for (const [word, n] of expected) {
        for (const port of live) {
          let r = await countOn(port, word, deadline)
          // counts still arriving: the owner's value grows to the final count
          while (r.status === 404 || (r.status === 200 && r.body && (r.body as { value: number }).value < n)) {
            if (Date.now() > deadline) break
            await sleep(200)
            r = await countOn(port, word, deadline)
          }
          expect({ port, word, status: r.status, body: r.body }).toEqual({
            port,
            word,
            status: 200,
            body: { store: 'counts', key: word, value: n },
          })
          if (r.headers.get('x-kstreams-served-by')) forwarded++
        }
      }
      return forwarded
    }
    expect(await checkAll(ports)).toBeGreaterThan(0)

    // /metrics on each instance: Prometheus text with Kafka Streams' names. Every line went through
    // sub-topology 0 and every word through sub-topology 1 exactly once (no failure so far), so the
    // threads' process-total summed over the instances is lines + words; the consumer lag drains to 0.
    const words = [...expected.values()].reduce((a, b) => a + b, 0)
    const series = (text: string, name: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
        .map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)))
    const scrape = async () => Promise.all(ports.map(async (p) => (await get(p, '/metrics')).body as string))
    const metricsDeadline = Date.now() + 30_000
    let texts = await scrape()
    const processed = (ts: string[]) => ts.flatMap((t) => series(t, 'kafka_streams_thread_process_total')).reduce((a, b) => a + b, 0)
    const lags = (ts: string[]) => ts.flatMap((t) => series(t, 'kafka_consumer_fetch_manager_records_lag'))
    while ((processed(texts) !== lines.length + words || lags(texts).some((l) => l !== 0)) && Date.now() < metricsDeadline) {
      await sleep(500)
      texts = await scrape()
    }
    for (const t of texts) expect(t).toMatch(/^kafka_streams_thread_process_total\{.*thread_id=/m)
    expect(processed(texts)).toBe(lines.length + words)
    expect(lags(texts).length).toBeGreaterThan(0)
    expect(lags(texts).every((l) => l === 0)).toBe(true)

    // the owner a key's metadata names answers it locally; another instance forwards it there
    const meta = instances[0]!.streams.queryMetadataForKey('counts', 'alpha', Serdes.String())
    expect(meta.partition).toBeGreaterThanOrEqual(0)
    expect(ports).toContain(meta.activeHost!.port)
    const owner = ports.indexOf(meta.activeHost!.port)
    expect(instances[owner]!.streams.activeTaskIds()).toContain(meta.taskId)
    const local = await get(ports[owner]!, '/stores/counts/keys/alpha')
    expect(local.headers.get('x-kstreams-served-by')).toBeNull()
    const other = ports[(owner + 1) % 3]!
    const viaOther = await get(other, '/stores/counts/keys/alpha')
    expect(viaOther.headers.get('x-kstreams-served-by')).toBe(`127.0.0.1:${ports[owner]}`)
    expect(viaOther.body).toEqual(local.body)
    // a forwarded query is never forwarded again
    const loop = await get(other, '/stores/counts/keys/alpha', { [FORWARDED_HEADER]: 'test' })
    expect(loop.status).toBe(503)
    expect(loop.headers.get('retry-after')).toBe('1')
    expect(
      instances[0]!.streams
        .streamsMetadataForStore('counts')
        .map((m) => m.port)
        .sort(),
    ).toEqual([...ports].sort())

    // clear errors
    const unknownStore = await get(other, '/stores/nope/keys/alpha')
    expect(unknownStore).toMatchObject({ status: 404, body: { error: "unknown store 'nope'" } })
    const unknownKey = await get(other, '/stores/counts/keys/never-written')
    expect(unknownKey).toMatchObject({ status: 404, body: { error: "key 'never-written' not found in store 'counts'" } })
    const wrongKind = await get(other, '/stores/counts/keys/alpha/windows')
    expect(wrongKind.status).toBe(404)
    expect((await get(other, '/health/live')).status).toBe(200)
    expect((await get(other, '/health/ready')).status).toBe(200)

    // Lookups while tasks move: every answer is the owner's (final) count or 503 + Retry-After
    // (owner unknown, restoring, or unreachable): never a missing, partial or stale value.
    const watchLookups = (live: () => number[]) => {
      const seen = { ok: 0, unavailable: 0, wrong: [] as string[] }
      const words = [...expected.keys()]
      let stop = false
      const done = (async () => {
        for (let i = 0; !stop; i++) {
          const ports = live()
          const port = ports[i % ports.length]!
          const word = words[Math.floor(i / ports.length) % words.length]!
          const r = await get(port, `/stores/counts/keys/${encodeURIComponent(word)}`).catch((e: unknown) => ({
            status: -1,
            headers: new Headers(),
            body: String(e),
          }))
          if (r.status === 200 && (r.body as { value?: number }).value === expected.get(word)) seen.ok++
          else if (r.status === 503 && r.headers.get('retry-after') === '1') seen.unavailable++
          else seen.wrong.push(`${port} ${word}: ${r.status} ${JSON.stringify(r.body)}`)
        }
      })()
      return {
        seen,
        stop: async () => {
          stop = true
          await done
        },
      }
    }

    // the owner of 'alpha' stops: its tasks move, lookups on the others reach the new owner
    const gone = instances[owner]!
    const rest = ports.filter((_, i) => i !== owner)
    const duringStop = watchLookups(() => rest)
    running.splice(running.indexOf(gone), 1)
    await gone.server!.close()
    await gone.streams.close({ timeoutMs: 30_000 })
    expect(await checkAll(rest).then(() => true)).toBe(true)
    await duringStop.stop()
    expect(duringStop.seen.wrong).toEqual([])
    expect(duringStop.seen.ok).toBeGreaterThan(0)
    const moved = instances[(owner + 1) % 3]!.streams.queryMetadataForKey('counts', 'alpha', Serdes.String())
    expect(moved.activeHost!.port).not.toBe(ports[owner])

    // A new instance (empty state directory) takes over one counts task: its /health/ready is 503
    // until it runs with that task restored, then 200; its /metrics shows the restoration (KIP-869).
    // Lookups on the other two go on while the task moves to it.
    const ref: { streams?: KafkaStreams } = {}
    const freshServer = new StreamsHttpServer(() => ref.streams, { port: 0, stores: { counts: { encodeValue: (n: number) => n } } })
    const { port: freshPort } = await freshServer.listen()
    const fresh = (ref.streams = new KafkaStreams(wordCountTopology({ input, output }), {
      applicationId,
      bootstrapServers: brokers(),
      clientId: `${applicationId}-i3`,
      stateDir: await fs.mkdtemp(path.join(os.tmpdir(), 'kstreams-http-')),
      commitIntervalMs: 200,
      applicationServer: `127.0.0.1:${freshPort}`,
      logLevel: 'warn',
    }))
    running.push({ streams: fresh, server: freshServer })
    let restoring = 0
    let restoredByEvents = 0
    fresh.on(StreamsEvents.RESTORE_START, () => void restoring++)
    fresh.on(StreamsEvents.RESTORE_END, (e: { restored: number }) => {
      restoring--
      restoredByEvents += e.restored
    })
    expect((await get(freshPort, '/health/ready')).status).toBe(503) // created, not started
    const duringJoin = watchLookups(() => rest)
    await fresh.start()
    // readiness over HTTP, polled until the first 200 after its restoration
    const readiness: string[] = []
    const readyDeadline = Date.now() + 90_000
    for (;;) {
      const r = await get(freshPort, '/health/ready')
      readiness.push(`${r.status}${restoring > 0 ? ' (restoring)' : ''}`)
      if ((r.status === 200 && restoredByEvents > 0) || Date.now() > readyDeadline) break
      await sleep(50)
    }
    // 503 all along until the first 200 (which the loop above stops at once it follows a restoration)
    expect(
      readiness.slice(0, -1).every((x) => x.startsWith('503')),
      readiness.join(', '),
    ).toBe(true)
    expect(readiness.at(-1), readiness.join(', ')).toBe('200')
    expect(readiness[0]).toBe('503')
    expect(restoredByEvents).toBeGreaterThan(0)
    await checkAll([...rest, freshPort])
    await duringJoin.stop()
    expect(duringJoin.seen.wrong).toEqual([])
    expect(duringJoin.seen.ok).toBeGreaterThan(0)
    expect(fresh.activeTaskIds().some((t) => t.startsWith('1_'))).toBe(true) // a counts task moved here
    const freshMetrics = (await get(freshPort, '/metrics')).body as string
    const restoreTotal = series(freshMetrics, 'kafka_streams_task_restore_total')
    expect(restoreTotal.reduce((a, b) => a + b, 0)).toBe(restoredByEvents)
    const remaining = series(freshMetrics, 'kafka_streams_task_restore_remaining_records_total')
    expect(remaining.length).toBeGreaterThan(0)
    expect(remaining.every((n) => n === 0)).toBe(true)
  }, 240_000)
})
