/**
 * Word count, run as 1..N instances of one application:
 *
 *   npx tsx examples/word-count/app.ts <instance-id> [port]
 *
 * Each instance has its own state directory (`<tmp>/kstreams-word-count/<instance-id>`) and, when a
 * port is given, answers `GET /count/<word>` from its local `counts` store (interactive queries),
 * asking the other instances (found through `metadataForAllStreamsClients()`) when the word is not
 * local; `GET /instances` lists them.
 * Environment: KAFKA_BROKERS (default 127.0.0.1:9092), INPUT_TOPIC (default `word-count-input`),
 * OUTPUT_TOPIC (default `word-count-output`), APPLICATION_ID (default `word-count`),
 * PROCESSING_GUARANTEE (`at_least_once` default, or `exactly_once`).
 */
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import kafkajs from 'kafkajs'
import { KafkaStreams, type ReadOnlyKeyValueStore, type StreamsConfig } from '../../lib/index.js'
import { wordCountTopology } from './topology.js'

export interface WordCountOptions {
  readonly instanceId: string
  readonly port?: number
  readonly brokers: string[]
  readonly applicationId: string
  readonly input: string
  readonly output: string
  readonly stateDir?: string
  readonly processingGuarantee?: StreamsConfig['processingGuarantee']
  readonly commitIntervalMs?: number
}

/** Creates the input/output topics when missing (3 partitions each). */
export async function ensureTopics(brokers: string[], topics: string[], numPartitions = 3): Promise<void> {
  const admin = new kafkajs.Kafka({ brokers, logLevel: kafkajs.logLevel.NOTHING }).admin()
  await admin.connect()
  try {
    const existing = new Set(await admin.listTopics())
    const missing = topics.filter((t) => !existing.has(t))
    if (missing.length) await admin.createTopics({ topics: missing.map((topic) => ({ topic, numPartitions })), waitForLeaders: true })
  } finally {
    await admin.disconnect()
  }
}

/** Starts one instance (and its HTTP query endpoint when `port` is set). */
export async function startWordCount(o: WordCountOptions): Promise<{ streams: KafkaStreams; server?: http.Server }> {
  const streams = new KafkaStreams(wordCountTopology({ input: o.input, output: o.output }), {
    applicationId: o.applicationId,
    bootstrapServers: o.brokers,
    clientId: `${o.applicationId}-${o.instanceId}`,
    stateDir: o.stateDir ?? path.join(os.tmpdir(), 'kstreams-word-count', o.instanceId),
    processingGuarantee: o.processingGuarantee ?? 'at_least_once',
    commitIntervalMs: o.commitIntervalMs ?? 1000,
    applicationServer: o.port ? `127.0.0.1:${o.port}` : undefined,
    logLevel: 'warn',
  })
  await streams.start()
  if (!o.port) return { streams }
  const server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x')
      if (url.pathname === '/instances') {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify(streams.metadataForAllStreamsClients()))
        return
      }
      const m = /^\/count\/(.+)$/.exec(url.pathname)
      if (!m) {
        res.statusCode = 404
        res.end()
        return
      }
      const word = decodeURIComponent(m[1]!)
      let count = await streams
        .store<ReadOnlyKeyValueStore<string, number>>('counts')
        .get(word)
        .catch(() => undefined)
      let instance = o.instanceId
      if (count === undefined && url.searchParams.get('local') !== '1') {
        // not here: ask the other instances (their host:port comes from the group metadata)
        const self = `127.0.0.1:${o.port}`
        for (const meta of streams.metadataForAllStreamsClients()) {
          if (!meta.hostInfo || meta.hostInfo === self) continue
          const answer = (await fetch(`http://${meta.hostInfo}/count/${encodeURIComponent(word)}?local=1`)
            .then((r) => r.json())
            .catch(() => undefined)) as { count: number | null; instance: string } | undefined
          if (answer?.count != null) {
            count = answer.count
            instance = answer.instance
            break
          }
        }
      }
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ word, count: count ?? null, instance }))
    })().catch((e: unknown) => {
      res.statusCode = 500
      res.end(String(e))
    })
  })
  await new Promise<void>((r) => server.listen(o.port, '127.0.0.1', r))
  return { streams, server }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const instanceId = process.argv[2] ?? String(process.pid)
  const port = process.argv[3] ? Number(process.argv[3]) : undefined
  const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',')
  const input = process.env.INPUT_TOPIC ?? 'word-count-input'
  const output = process.env.OUTPUT_TOPIC ?? 'word-count-output'
  const log = (msg: string) => process.stderr.write(`[word-count ${instanceId}] ${msg}\n`)
  ensureTopics(brokers, [input, output])
    .then(() =>
      startWordCount({
        instanceId,
        port,
        brokers,
        input,
        output,
        applicationId: process.env.APPLICATION_ID ?? 'word-count',
        processingGuarantee: process.env.PROCESSING_GUARANTEE === 'exactly_once' ? 'exactly_once' : 'at_least_once',
      }),
    )
    .then(({ streams, server }) => {
      streams.onStateChange((now, before) => log(`${before} -> ${now}`))
      log(`started${port ? `, queries on http://127.0.0.1:${port}/count/<word>` : ''}`)
      let closing = false
      const stop = (signal: string) => {
        if (closing) return
        closing = true
        log(`${signal}: committing and leaving the group`)
        server?.close()
        void streams.close({ timeoutMs: 30_000 }).then((ok) => process.exit(ok ? 0 : 1))
      }
      process.once('SIGTERM', () => stop('SIGTERM'))
      process.once('SIGINT', () => stop('SIGINT'))
    })
    .catch((e: unknown) => {
      log(`failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`)
      process.exit(1)
    })
}
