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
 * - JOIN_GRACE_MS, CTR_GRACE_MS (event-time ms; defaults in config.ts), COMMIT_INTERVAL_MS
 *   (default 100), MAX_TASK_IDLE_MS (default 2000: how long a task waits for an empty input
 *   partition before processing the other, which keeps impressions and clicks in time order
 *   while catching up), DEAD_LETTER_TOPIC (default
 *   `<prefix>impression-click-dlq`), SESSION_TIMEOUT_MS (default 10000: a killed instance's
 *   tasks move after 10 s), HEARTBEAT_INTERVAL_MS (default 1000), LOG_LEVEL (default warn)
 * - CREATE_TOPICS (default true: create missing input/output/dead-letter topics with PARTITIONS
 *   partitions, default 4)
 */
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import kafkajs from 'kafkajs'
import { KafkaStreams, StreamsError, type LogLevel, type StreamsConfig } from '../../lib/index.js'
import { DEFAULT_TIMING, envInt, topicNames, type ImpressionClickTiming, type ImpressionClickTopics } from './config.js'
import { registrySerdes } from './serdes.js'

const { Kafka, logLevel: kafkaLogLevel } = kafkajs
import { buildTopology } from './topology.js'

/** Everything an instance needs, resolved from the environment. */
export interface AppSettings {
  streams: StreamsConfig
  registryUrl: string
  topics: ImpressionClickTopics
  timing: ImpressionClickTiming
  deadLetterTopic: string
}

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
    registryUrl: env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7',
    topics: topicNames(prefix),
    timing: {
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
    },
  }
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

/** Builds the topology and starts one instance. Resolves once it is started (RUNNING or REBALANCING). */
export async function startApp(settings: AppSettings = appSettings()): Promise<KafkaStreams> {
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
  const streams = new KafkaStreams(topology, settings.streams)
  await streams.start()
  return streams
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const settings = appSettings()
  const log = (msg: string) => process.stderr.write(`[app ${settings.streams.clientId}] ${msg}\n`)
  const createTopics = (process.env.CREATE_TOPICS ?? 'true') !== 'false'
  ;(createTopics ? ensureTopics(settings, envInt('PARTITIONS', 4)) : Promise.resolve())
    .then(() => startApp(settings))
    .then(
      (streams) => {
        streams.onStateChange((next, prev) => {
          log(`state ${prev} -> ${next}`)
          if (next === 'ERROR') {
            log('the client failed (see the errors above): exiting with code 1')
            setTimeout(() => process.exit(1), 100)
          }
        })
        log(`started (${settings.streams.processingGuarantee}, state in ${settings.streams.stateDir})`)
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
