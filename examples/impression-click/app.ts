/**
 * The impression/click service: one instance of the Kafka Streams application. Start several
 * (with different INSTANCE_ID / STATE_DIR) to scale out; tasks move between them on rebalance.
 *
 *   KAFKA_BROKERS=127.0.0.1:9092 SCHEMA_REGISTRY_URL=http://127.0.0.1:8081/apis/ccompat/v7 \
 *     INSTANCE_ID=1 npx tsx examples/impression-click/app.ts
 *
 * Environment (all optional):
 * - KAFKA_BROKERS (default 127.0.0.1:9092), SCHEMA_REGISTRY_URL (default http://127.0.0.1:8081/apis/ccompat/v7)
 * - APPLICATION_ID (default `impression-click`), INSTANCE_ID (default the pid), STATE_DIR
 *   (default `<tmp>/kstreams-impression-click/<INSTANCE_ID>`), TOPIC_PREFIX (default none)
 * - PROCESSING_GUARANTEE: `exactly_once` (default), `exactly_once_v2` or `at_least_once`
 * - JOIN_WINDOW_MS, CTR_WINDOW_MS, JOIN_GRACE_MS, CTR_GRACE_MS (event-time ms; defaults in
 *   config.ts, DEFAULT_TIMING; the demo sets LIVE_TIMING's), COMMIT_INTERVAL_MS
 *   (default 100), MAX_TASK_IDLE_MS (default 2000: how long a task waits for an empty input
 *   partition before processing the other, which keeps impressions and clicks in time order
 *   while catching up), DEAD_LETTER_TOPIC (default
 *   `<prefix>impression-click-dlq`), SESSION_TIMEOUT_MS (default 10000: a killed instance's
 *   tasks move after 10 s), HEARTBEAT_INTERVAL_MS (default 1000), LOG_LEVEL (default warn)
 * - IDLE_ADVANCE_MS (default -1: off), IDLE_ADVANCE_DELAY_MS (default 0): the wall-clock idle
 *   advance (`idleAdvanceMs` / `idleAdvanceDelayMs`): once the inputs are caught up and idle that
 *   long, stream-time moves to the wall clock minus the delay, so the last join windows and CTR
 *   windows close without later records. For live input, whose event time follows the wall
 *   clock (the demo's generator with `--live`); a replay of past event time faster than the wall
 *   clock needs heartbeat records instead
 * - CREATE_TOPICS (default true: create missing input/output/dead-letter topics with PARTITIONS
 *   partitions, default 4)
 * - HTTP_PORT (default none: no HTTP server; 0 picks a free port): serve kstreams' HTTP server
 *   (`kstreams/http`) there: `/health/live`, `/health/ready`, `/metrics` (Prometheus), `/topology`
 *   (the live topology: lag, processing rate, restore progress; `?format=mermaid|table`) and
 *   `/stores/ctr-counts/keys/<campaignId>/windows?from=&to=` (the CTR counts of a campaign's windows,
 *   answered by whichever instance owns the campaign). HTTP_HOST (default 127.0.0.1) is the address
 *   it binds; ADVERTISED_HOST (default HTTP_HOST, or the host name when HTTP_HOST is 0.0.0.0 / ::)
 *   is how the other instances reach it (the `applicationServer` host).
 * - METRICS_RECORDING_LEVEL (default INFO): DEBUG records the per-task processing rates that
 *   `/topology` shows per sub-topology
 */
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import kafkajs from 'kafkajs'
import { KafkaStreams, StreamsError, type LogLevel, type StreamsConfig } from '../../lib/index.js'
import { StreamsHttpServer } from '../../lib/http/index.js'
import { DEFAULT_TIMING, envInt, topicNames, type ImpressionClickTiming, type ImpressionClickTopics } from './config.js'
import { registrySerdes } from './serdes.js'

const { Kafka, logLevel: kafkaLogLevel } = kafkajs
import { buildTopology } from './topology.js'

/** Where an instance serves kstreams' HTTP server (probes, metrics, interactive queries). */
export interface HttpSettings {
  /** Address to bind. */
  host: string
  /** Port to bind; 0 picks a free one. */
  port: number
  /** Host the other instances use to reach this one (with the bound port: the `applicationServer`). */
  advertisedHost: string
}

/** Everything an instance needs, resolved from the environment. */
export interface AppSettings {
  streams: StreamsConfig
  registryUrl: string
  topics: ImpressionClickTopics
  timing: ImpressionClickTiming
  deadLetterTopic: string
  /** The HTTP server; undefined: none. */
  http?: HttpSettings
}

/** The name of the example's queryable store: CTR counts per campaign and 1-minute window. */
export const CTR_STORE = 'ctr-counts'

/** Reads {@link AppSettings} from `env`. */
export function appSettings(env: NodeJS.ProcessEnv = process.env): AppSettings {
  const prefix = env.TOPIC_PREFIX ?? ''
  const instanceId = env.INSTANCE_ID ?? String(process.pid)
  const applicationId = env.APPLICATION_ID ?? `${prefix}impression-click`
  const deadLetterTopic = env.DEAD_LETTER_TOPIC ?? `${prefix}impression-click-dlq`
  const guarantee = env.PROCESSING_GUARANTEE ?? 'exactly_once'
  if (guarantee !== 'exactly_once' && guarantee !== 'exactly_once_v2' && guarantee !== 'at_least_once') {
    throw new Error(`PROCESSING_GUARANTEE must be exactly_once, exactly_once_v2 or at_least_once, got ${guarantee}`)
  }
  return {
    ...httpSettings(env),
    registryUrl: env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7',
    topics: topicNames(prefix),
    timing: {
      joinWindowMs: envInt('JOIN_WINDOW_MS', DEFAULT_TIMING.joinWindowMs),
      ctrWindowMs: envInt('CTR_WINDOW_MS', DEFAULT_TIMING.ctrWindowMs),
      joinGraceMs: envInt('JOIN_GRACE_MS', DEFAULT_TIMING.joinGraceMs),
      ctrGraceMs: envInt('CTR_GRACE_MS', DEFAULT_TIMING.ctrGraceMs),
    },
    deadLetterTopic,
    streams: {
      applicationId,
      bootstrapServers: (env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
      clientId: `${applicationId}-${instanceId}`,
      processingGuarantee: guarantee,
      stateDir: env.STATE_DIR ?? path.join(os.tmpdir(), 'kstreams-impression-click', instanceId),
      commitIntervalMs: envInt('COMMIT_INTERVAL_MS', 100),
      maxTaskIdleMs: envInt('MAX_TASK_IDLE_MS', 2_000),
      deserializationExceptionHandler: { deadLetterTopic },
      sessionTimeoutMs: envInt('SESSION_TIMEOUT_MS', 10_000),
      heartbeatIntervalMs: envInt('HEARTBEAT_INTERVAL_MS', 1_000),
      logLevel: logLevelFrom(env.LOG_LEVEL),
      idleAdvanceMs: envInt('IDLE_ADVANCE_MS', -1),
      idleAdvanceDelayMs: envInt('IDLE_ADVANCE_DELAY_MS', 0),
      metricsRecordingLevel: recordingLevelFrom(env.METRICS_RECORDING_LEVEL),
    },
  }
}

function httpSettings(env: NodeJS.ProcessEnv): { http?: HttpSettings } {
  const raw = env.HTTP_PORT
  if (raw === undefined || raw === '') return {}
  const port = Number(raw)
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new Error(`HTTP_PORT must be a port number (0 = any free one), got ${raw}`)
  const host = env.HTTP_HOST || '127.0.0.1'
  const wildcard = host === '0.0.0.0' || host === '::'
  return { http: { host, port, advertisedHost: env.ADVERTISED_HOST || (wildcard ? os.hostname() : host) } }
}

function recordingLevelFrom(raw: string | undefined): 'INFO' | 'DEBUG' | 'TRACE' {
  const level = (raw ?? 'INFO').toUpperCase()
  if (level !== 'INFO' && level !== 'DEBUG' && level !== 'TRACE')
    throw new Error(`METRICS_RECORDING_LEVEL must be INFO|DEBUG|TRACE, got ${raw}`)
  return level
}

function logLevelFrom(raw: string | undefined): LogLevel {
  const level = (raw ?? 'warn').toLowerCase()
  if (!['nothing', 'error', 'warn', 'info', 'debug'].includes(level))
    throw new Error(`LOG_LEVEL must be nothing|error|warn|info|debug, got ${raw}`)
  return level as LogLevel
}

/**
 * Creates the example's input, output and dead-letter topics when missing (`partitions` each;
 * the dead-letter topic 1). Kafka Streams itself only creates its internal topics; the example
 * does this so that `app.ts` runs against an empty cluster (e.g. the Docker compose stack).
 */
export async function ensureTopics(settings: AppSettings, partitions: number): Promise<void> {
  const brokers = settings.streams.bootstrapServers
  const kafka = new Kafka({
    clientId: `${settings.streams.applicationId}-setup`,
    brokers: typeof brokers === 'string' ? brokers.split(',') : [...(brokers ?? [])],
    logLevel: kafkaLogLevel.NOTHING,
  })
  const admin = kafka.admin()
  await admin.connect()
  try {
    const existing = new Set(await admin.listTopics())
    const { impressions, clicks, adEvents, campaignCtr } = settings.topics
    const wanted = [
      ...[impressions, clicks, adEvents, campaignCtr].map((topic) => ({ topic, numPartitions: partitions })),
      { topic: settings.deadLetterTopic, numPartitions: 1 },
    ].filter((t) => !existing.has(t.topic))
    if (wanted.length) {
      // Several instances may race: an "already exists" answer is fine.
      await admin.createTopics({ topics: wanted, waitForLeaders: true }).catch((err: unknown) => {
        if (!/already exists/i.test(String((err as Error)?.message ?? err))) throw err
      })
    }
  } finally {
    await admin.disconnect()
  }
}

/** A running instance: the client, and its HTTP server when `settings.http` asked for one. */
export interface ImpressionClickService {
  readonly streams: KafkaStreams
  /** Closed when the client is closed (state NOT_RUNNING). */
  readonly server?: StreamsHttpServer
}

/**
 * Builds the topology and starts one instance (see {@link startService}); resolves with the client
 * once it is started (RUNNING or REBALANCING).
 */
export async function startApp(settings: AppSettings = appSettings()): Promise<KafkaStreams> {
  return (await startService(settings)).streams
}

/**
 * Builds the topology and starts one instance, with kstreams' HTTP server when `settings.http` is
 * set: it listens before the client starts, so its bound address is the client's
 * `applicationServer` from the first group join on (the other instances forward queries there).
 * Resolves once the client is started (RUNNING or REBALANCING).
 */
export async function startService(settings: AppSettings = appSettings()): Promise<ImpressionClickService> {
  const serdes = registrySerdes({ host: settings.registryUrl })
  // Resolve every schema's id before the first record: state stores write these values to their
  // changelogs (with the same ids) and read them back, possibly before a record of that type
  // arrived in this process (after a restart).
  // A registry outage (SerializationError with `retriable: true`) is waited out, as the runtime
  // does for its tasks (taskTimeoutMs); a definite answer (unknown subject, bad schema) fails.
  const { topics } = settings
  const deadline = Date.now() + (settings.streams.taskTimeoutMs ?? 300_000)
  for (let attempt = 0; ; attempt++) {
    try {
      await Promise.all([
        serdes.impression.prepareSerialize!(topics.impressions),
        serdes.click.prepareSerialize!(topics.clicks),
        serdes.adEvent.prepareSerialize!(topics.adEvents),
        serdes.campaignCtr.prepareSerialize!(topics.campaignCtr),
      ])
      break
    } catch (e) {
      if (!(e instanceof StreamsError && e.retriable) || Date.now() > deadline) throw e
      await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** attempt)))
    }
  }
  const topology = buildTopology({ topics, serdes, timing: settings.timing })
  const ref: { streams?: KafkaStreams } = {}
  let server: StreamsHttpServer | undefined
  let applicationServer = settings.streams.applicationServer
  if (settings.http) {
    // the store's keys are campaign ids (strings, the store's key serde): the defaults route them
    server = new StreamsHttpServer(() => ref.streams, { host: settings.http.host, port: settings.http.port, topology })
    const { port } = await server.listen()
    applicationServer = `${settings.http.advertisedHost}:${port}`
  }
  const streams = (ref.streams = new KafkaStreams(topology, { ...settings.streams, ...(applicationServer ? { applicationServer } : {}) }))
  if (server) {
    const s = server
    streams.onStateChange((next) => {
      if (next === 'NOT_RUNNING') void s.close()
    })
  }
  try {
    await streams.start()
  } catch (e) {
    await server?.close()
    throw e
  }
  return { streams, ...(server ? { server } : {}) }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const settings = appSettings()
  const log = (msg: string) => process.stderr.write(`[app ${settings.streams.clientId}] ${msg}\n`)
  const createTopics = (process.env.CREATE_TOPICS ?? 'true') !== 'false'
  ;(createTopics ? ensureTopics(settings, envInt('PARTITIONS', 4)) : Promise.resolve())
    .then(() => startService(settings))
    .then(
      ({ streams, server }) => {
        streams.onStateChange((next, prev) => {
          log(`state ${prev} -> ${next}`)
          if (next === 'ERROR') {
            log('the client failed (see the errors above): exiting with code 1')
            setTimeout(() => process.exit(1), 100)
          }
        })
        log(`started (${settings.streams.processingGuarantee}, state in ${settings.streams.stateDir})`)
        if (server) {
          const { host, port } = server.address()
          log(`HTTP on ${host}:${port}: /health/ready, /metrics, /stores/${CTR_STORE}/keys/<campaignId>/windows`)
        }
        let closing = false
        const stop = (signal: string) => {
          if (closing) return
          closing = true
          log(`${signal}: closing`)
          streams.close().then(
            () => process.exit(0),
            (err: unknown) => {
              log(`close failed: ${String(err)}`)
              process.exit(1)
            },
          )
        }
        process.on('SIGTERM', () => stop('SIGTERM'))
        process.on('SIGINT', () => stop('SIGINT'))
      },
      (err: unknown) => {
        log(`failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
        process.exit(1)
      },
    )
}
