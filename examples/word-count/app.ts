/**
 * Word count, run as 1..N instances of one application:
 *
 *   npx tsx examples/word-count/app.ts <instance-id> [port]
 *
 * Each instance has its own state directory (`<tmp>/kstreams-word-count/<instance-id>`) and, when a
 * port is given, runs kstreams' HTTP server there: `GET /stores/counts/keys/<word>` on any instance
 * answers with the word's count from the instance that owns it (interactive queries routed by
 * `queryMetadataForKey`), `GET /health/ready` and `GET /metrics` serve probes and Prometheus.
 * Environment: KAFKA_BROKERS (default 127.0.0.1:9092), INPUT_TOPIC (default `word-count-input`),
 * OUTPUT_TOPIC (default `word-count-output`), APPLICATION_ID (default `word-count`),
 * PROCESSING_GUARANTEE (`at_least_once` default, or `exactly_once`).
 */
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import kafkajs from 'kafkajs'
import { KafkaStreams, type StreamsConfig } from '../../lib/index.js'
import { StreamsHttpServer } from '../../lib/http/index.js'
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

/**
 * Starts one instance, and when `port` is set its HTTP server (`kstreams/http`) on 127.0.0.1:`port`,
 * which is also the instance's `applicationServer`: `GET /stores/counts/keys/<word>` answers from
 * whichever instance owns the word (forwarded there when it is not this one), plus `/health/live`,
 * `/health/ready` and `/metrics`. Port 0 picks a free port (see `server.address()`).
 */
export async function startWordCount(o: WordCountOptions): Promise<{ streams: KafkaStreams; server?: StreamsHttpServer }> {
  const ref: { streams?: KafkaStreams } = {}
  let server: StreamsHttpServer | undefined
  let applicationServer: string | undefined
  if (o.port !== undefined) {
    // listen first: the bound port goes into applicationServer, which the group learns at the join
    server = new StreamsHttpServer(() => ref.streams, { port: o.port, stores: { counts: { encodeValue: (n: number) => n } } })
    const { host, port } = await server.listen()
    applicationServer = `${host}:${port}`
  }
  const streams = (ref.streams = new KafkaStreams(wordCountTopology({ input: o.input, output: o.output }), {
    applicationId: o.applicationId,
    bootstrapServers: o.brokers,
    clientId: `${o.applicationId}-${o.instanceId}`,
    stateDir: o.stateDir ?? path.join(os.tmpdir(), 'kstreams-word-count', o.instanceId),
    processingGuarantee: o.processingGuarantee ?? 'at_least_once',
    commitIntervalMs: o.commitIntervalMs ?? 1000,
    applicationServer,
    logLevel: 'warn',
  }))
  try {
    await streams.start()
  } catch (e) {
    await server?.close()
    throw e
  }
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
      log(`started${server ? `, queries on http://127.0.0.1:${server.address().port}/stores/counts/keys/<word>` : ''}`)
      let closing = false
      const stop = (signal: string) => {
        if (closing) return
        closing = true
        log(`${signal}: committing and leaving the group`)
        void server?.close()
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
