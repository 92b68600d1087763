/**
 * `StreamsConfig`: the configuration of a {@link KafkaStreams} instance (Kafka Streams:
 * `StreamsConfig`), with keys in camelCase of Kafka Streams' config names. Resolved once, by
 * {@link resolveStreamsConfig}, into a frozen {@link ResolvedStreamsConfig}; an invalid value
 * throws {@link StreamsConfigError} naming the key.
 */
import os from 'node:os'
import path from 'node:path'
import type { KafkaConfig } from './client/kafkajs.js'
import { StreamsConfigError } from '../../topology/errors.js'
import type { Serde } from '../../topology/serde.js'
import type { TimestampExtractor } from '../../topology/processor/types.js'
import type { OutputRecord, RawRecord } from '../../topology/engine/types.js'
import { createDefaultLogger, filterLogger, type LogLevel, type Logger } from './logger.js'
import { isRecordingLevel } from '../metrics/registry.js'
import type { RecordingLevel } from '../metrics/types.js'

/**
 * Processing guarantee (Kafka Streams: `processing.guarantee`):
 * - `'at_least_once'`: output and offsets committed separately; a crash may re-process (duplicates).
 * - `'exactly_once_v2'` (KIP-447, Kafka ≥ 2.5): one transactional producer per stream thread
 *   (`transactional.id = <applicationId>-<processId>-<threadIdx>`) and one transaction per commit
 *   covering all the thread's tasks; the offsets carry the consumer group's generation and member
 *   id (TxnOffsetCommit v3), so the group coordinator fences a zombie; a task's new owner reads the
 *   committed offsets with `require_stable` (OffsetFetch v7). Producers and transactions do not grow
 *   with the number of tasks. Kafka Streams' recommended exactly-once mode.
 * - `'exactly_once'` (EOS-alpha, KIP-98/KIP-129): a transactional producer per task
 *   (`<applicationId>-<taskId>`) and a transaction per task per commit; works on any Kafka with
 *   transactions. Kafka Streams deprecated it (3.0) in favour of v2 and removed it in 4.0; kept
 *   here for brokers older than 2.5.
 */
export type ProcessingGuarantee = 'at_least_once' | 'exactly_once' | 'exactly_once_v2'

/**
 * What to do with a record whose key or value cannot be deserialized
 * (Kafka Streams: `default.deserialization.exception.handler`):
 * - `'fail'`: stop processing; the bad record's offset is never committed; the client goes to ERROR
 *   (or whatever the uncaught exception handler says).
 * - `'logAndContinue'`: log it (with task, topic, partition, offset) and skip it.
 * - `{ deadLetterTopic }`: produce the original key/value bytes and headers to `deadLetterTopic`,
 *   adding the headers `__kstreams.error.message`, `__kstreams.error.class`,
 *   `__kstreams.error.topic`, `__kstreams.error.partition`, `__kstreams.error.offset`,
 *   `__kstreams.error.task`, then skip it. The dead-letter record is produced in the same commit
 *   (the same transaction under exactly-once) as the task's other output.
 * - a function deciding per record.
 */
export type DeserializationHandlerConfig =
  | 'fail'
  | 'logAndContinue'
  | { readonly deadLetterTopic: string }
  | ((error: Error, record: RawRecord, taskId: string) => 'continue' | 'fail')

/**
 * What to do when a processor throws (Kafka Streams KIP-1033: `processing.exception.handler`):
 * `'fail'` (default), `'logAndContinue'` (skip the record), or a function deciding per error.
 */
export type ProcessingHandlerConfig =
  'fail' | 'logAndContinue' | ((error: Error, place: { taskId: string; processor: string; record?: RawRecord }) => 'continue' | 'fail')

/**
 * What to do when producing an output record fails with a non-retriable error (Kafka Streams:
 * `default.production.exception.handler`): `'fail'` (default), `'logAndContinue'` (drop the record
 * and go on; at-least-once only — under exactly-once a failed send aborts the transaction and
 * always fails), or a function deciding per record.
 */
export type ProductionHandlerConfig =
  'fail' | 'logAndContinue' | ((error: Error, record: OutputRecord, taskId: string) => 'continue' | 'fail')

/** The user-facing configuration. Only `applicationId` and one of `bootstrapServers`/`kafka` are required. */
export interface StreamsConfig {
  /**
   * Identifies the application: the consumer group id, the prefix of internal topics
   * (`<applicationId>-<name>-changelog` / `-repartition`), the state directory name, and the
   * prefix of transactional ids. Letters, digits, `.`, `_`, `-`.
   */
  applicationId: string
  /**
   * Kafka brokers, `host:port` or a list of them. Ignored when `kafka.brokers` is given.
   * @defaultValue none (either this or `kafka` is required)
   */
  bootstrapServers?: string | ReadonlyArray<string>
  /**
   * A kafkajs client configuration, for SSL, SASL, retries, socket factories. Its `clientId`
   * defaults to `applicationId`; `logLevel`/`logCreator` default to ours.
   * @defaultValue built from `bootstrapServers`
   */
  kafka?: KafkaConfig
  /**
   * Client id prefix for the consumer and producers.
   * @defaultValue `applicationId`
   */
  clientId?: string
  /** @defaultValue `'at_least_once'` */
  processingGuarantee?: ProcessingGuarantee
  /**
   * How often tasks commit (produce collected output, commit offsets, write local state and the
   * checkpoint), in milliseconds.
   * @defaultValue 30000 at-least-once, 100 under exactly-once (as Kafka Streams)
   */
  commitIntervalMs?: number
  /**
   * Root of local state; task stores live in `<stateDir>/<applicationId>/<taskId>/`.
   * @defaultValue `os.tmpdir()/kstreams`
   */
  stateDir?: string
  /** Warm copies of each stateful task kept on other instances. @defaultValue 0 */
  numStandbyReplicas?: number
  /**
   * The most changelog records (summed over a task's changelog partitions) an instance may lag
   * behind and still count as caught up for a stateful task, so the assignor may give it the task as
   * active (Kafka Streams: `acceptable.recovery.lag`, KIP-441). A task only moves to an instance
   * that is caught up; otherwise it stays where its state is and the new owner first warms up a
   * replica. It should correspond to well under a minute of restoration. 0 or more.
   * @defaultValue 10000
   */
  acceptableRecoveryLag?: number
  /**
   * Warm-up replicas the group may hold at once (Kafka Streams: `max.warmup.replicas`, KIP-441): a
   * warm-up is a standby beyond `numStandbyReplicas` that an instance restores for a task it is
   * meant to take over; it takes the task at a probing rebalance once caught up. Bounds the extra
   * broker traffic and local state of a scale-out. 1 or more.
   * @defaultValue 2
   */
  maxWarmupReplicas?: number
  /**
   * How long after an assignment with warm-up replicas the group rebalances again to let caught-up
   * warm-ups take their tasks over, milliseconds (Kafka Streams: `probing.rebalance.interval.ms`,
   * KIP-441). Probing rebalances repeat until no task waits for a warm-up. Kafka Streams requires at
   * least 60000; kstreams accepts 1000 or more (tests, small state).
   * @defaultValue 600000
   */
  probingRebalanceIntervalMs?: number
  /** Serde for keys when a source/sink/store has none. @defaultValue none (a missing serde is an error) */
  defaultKeySerde?: Serde<any>
  /** Serde for values when a source/sink/store has none. @defaultValue none */
  defaultValueSerde?: Serde<any>
  /** Timestamp extractor for sources without one. @defaultValue the record timestamp */
  defaultTimestampExtractor?: TimestampExtractor<any, any>
  /**
   * Task idling (Kafka Streams `max.task.idle.ms`, KIP-695), in milliseconds: how a task with
   * several input partitions treats an EMPTY one, to keep cross-partition timestamp order (a join
   * that runs ahead on one input drops the other's records as late).
   * - Whatever the value (except -1), while the empty partition has records on the broker that are
   *   not fetched yet (or its lag is not known yet), the task waits for them.
   * - Once it is fetched to its end, the task waits this long for new records, then processes the
   *   other partitions anyway ("enforced processing"). 0 = go ahead at once.
   * - -1 = never wait, not even for records known to be on the broker.
   * @defaultValue 0
   */
  maxTaskIdleMs?: number
  /**
   * Wall-clock idle advance, in milliseconds (beyond Kafka Streams; -1 = off). When every input
   * partition of a task is fetched to its end (zero lag), its queues are empty and no record
   * arrived for this long, the task's stream-time moves to the wall clock minus
   * {@link StreamsConfig.idleAdvanceDelayMs}, and again every `idleAdvanceMs` while it stays idle.
   * Windows (`onWindowClose`), `suppress(untilWindowCloses)` and left/outer stream-stream join rows
   * then close and emit without waiting for a later record. Records that arrive afterwards with an
   * event time behind the advanced stream-time are late (dropped after grace, as usual): choose
   * the delay to cover how far event time trails the wall clock. What an advance emits is committed
   * like any record's output (in the same transaction as the state it changes under exactly-once),
   * so a restart neither repeats nor loses it.
   * @defaultValue -1
   */
  idleAdvanceMs?: number
  /**
   * How far (ms) the wall-clock idle advance keeps stream-time behind the wall clock: the largest
   * delay expected between a record's event time and its arrival. @defaultValue 0
   */
  idleAdvanceDelayMs?: number
  /**
   * Upper bound of bytes held by the record caches of all of an instance's stores (Kafka Streams
   * `statestore.cache.max.bytes`, KIP-63), shared by all its tasks. Key-value stores with caching
   * enabled (`Materialized.withCachingEnabled()`, the default of DSL tables and aggregations)
   * forward only the latest update of each key, at commit or when the caches overflow (then the
   * store written to flushes); 0 disables caching everywhere (every update is forwarded at once).
   * The same amount bounds the stores' buffers of uncommitted writes, per task its share; over it a
   * commit is requested.
   * @defaultValue 10485760 (10 MiB)
   */
  statestoreCacheMaxBytes?: number
  /**
   * Records buffered per input partition before fetching from it is paused (resumed when the
   * queue drains below half). Bounds memory whatever the input rate.
   * @defaultValue 1000
   */
  bufferedRecordsPerPartition?: number
  /**
   * Topic configs applied to every internal topic the app creates (changelog and repartition), on
   * top of the topology's (e.g. `{ 'min.insync.replicas': '2' }`). Keys prefixed `changelog.` or
   * `repartition.` apply to that kind only, with the prefix removed.
   * @defaultValue `{}`
   */
  topicConfig?: Readonly<Record<string, string>>
  /**
   * Replication factor of internal topics; -1 = the broker's `default.replication.factor`.
   * @defaultValue -1
   */
  replicationFactor?: number
  /** @defaultValue `'fail'` */
  deserializationExceptionHandler?: DeserializationHandlerConfig
  /** @defaultValue `'fail'` */
  processingExceptionHandler?: ProcessingHandlerConfig
  /** @defaultValue `'fail'` */
  productionExceptionHandler?: ProductionHandlerConfig
  /**
   * `host:port` where this instance serves interactive queries; shared with the group through the
   * assignment metadata and returned by `metadataForAllStreamsClients()`.
   * @defaultValue none
   */
  applicationServer?: string
  /**
   * How long (milliseconds) a task may keep failing with retriable errors (a broker restarting, a
   * coordinator moving, a request timing out, a schema registry outage) before the error is
   * escalated to the uncaught exception handler (Kafka Streams' `task.timeout.ms`, KIP-572).
   * Inside this time the task backs off and retries: under exactly-once it aborts its open
   * transaction and goes back to its last committed state and offsets before it processes again;
   * the client stays RUNNING or REBALANCING. `0` escalates the first retriable error.
   * @defaultValue 300000
   */
  taskTimeoutMs?: number
  /**
   * First backoff (milliseconds) before a task retries after a retriable error; it doubles with
   * every further attempt (with jitter) up to `retryBackoffMaxMs` (Kafka's `retry.backoff.ms` /
   * `retry.backoff.max.ms`, KIP-580).
   * @defaultValue 500
   */
  retryBackoffMs?: number
  /** Upper bound of the retry backoff, milliseconds. @defaultValue 10000 */
  retryBackoffMaxMs?: number
  /** Consumer group session timeout, milliseconds. @defaultValue 45000 */
  sessionTimeoutMs?: number
  /** Consumer group heartbeat interval, milliseconds. @defaultValue 3000 */
  heartbeatIntervalMs?: number
  /** How long the group waits for members to rejoin during a rebalance, milliseconds. @defaultValue 60000 */
  rebalanceTimeoutMs?: number
  /** @defaultValue `'warn'` */
  logLevel?: LogLevel
  /** Where log entries go. @defaultValue JSON lines on stderr */
  logger?: Logger
  /**
   * Which metric sensors record (Kafka Streams: `metrics.recording.level`, KIP-444): 'INFO' keeps
   * the hot path to a few counters; 'DEBUG' adds per-task process/lateness, per-store and emit
   * metrics; 'TRACE' adds per-store end-to-end latency. See lib/metrics/names.ts.
   * @defaultValue `'INFO'`
   */
  metricsRecordingLevel?: RecordingLevel
}

/** The configuration after defaults and validation. Frozen. */
export interface ResolvedStreamsConfig {
  readonly applicationId: string
  readonly clientId: string
  readonly kafka: KafkaConfig
  readonly processingGuarantee: ProcessingGuarantee
  /** Either exactly-once mode. */
  readonly exactlyOnce: boolean
  /** `processingGuarantee === 'exactly_once_v2'` (one transactional producer per thread). */
  readonly exactlyOnceV2: boolean
  readonly commitIntervalMs: number
  readonly stateDir: string
  readonly numStandbyReplicas: number
  readonly acceptableRecoveryLag: number
  readonly maxWarmupReplicas: number
  readonly probingRebalanceIntervalMs: number
  readonly defaultKeySerde: Serde<any> | undefined
  readonly defaultValueSerde: Serde<any> | undefined
  readonly defaultTimestampExtractor: TimestampExtractor<any, any> | undefined
  readonly maxTaskIdleMs: number
  readonly idleAdvanceMs: number
  readonly idleAdvanceDelayMs: number
  readonly statestoreCacheMaxBytes: number
  readonly bufferedRecordsPerPartition: number
  readonly topicConfig: Readonly<Record<string, string>>
  readonly replicationFactor: number
  readonly deserializationExceptionHandler: DeserializationHandlerConfig
  readonly processingExceptionHandler: ProcessingHandlerConfig
  readonly productionExceptionHandler: ProductionHandlerConfig
  readonly applicationServer: { readonly host: string; readonly port: number } | undefined
  readonly taskTimeoutMs: number
  readonly retryBackoffMs: number
  readonly retryBackoffMaxMs: number
  readonly sessionTimeoutMs: number
  readonly heartbeatIntervalMs: number
  readonly rebalanceTimeoutMs: number
  readonly logLevel: LogLevel
  readonly logger: Logger
  readonly metricsRecordingLevel: RecordingLevel
}

const KNOWN_KEYS = new Set<string>([
  'applicationId',
  'bootstrapServers',
  'kafka',
  'clientId',
  'processingGuarantee',
  'commitIntervalMs',
  'stateDir',
  'numStandbyReplicas',
  'acceptableRecoveryLag',
  'maxWarmupReplicas',
  'probingRebalanceIntervalMs',
  'defaultKeySerde',
  'defaultValueSerde',
  'defaultTimestampExtractor',
  'maxTaskIdleMs',
  'idleAdvanceMs',
  'idleAdvanceDelayMs',
  'statestoreCacheMaxBytes',
  'bufferedRecordsPerPartition',
  'topicConfig',
  'replicationFactor',
  'deserializationExceptionHandler',
  'processingExceptionHandler',
  'productionExceptionHandler',
  'applicationServer',
  'taskTimeoutMs',
  'retryBackoffMs',
  'retryBackoffMaxMs',
  'sessionTimeoutMs',
  'heartbeatIntervalMs',
  'rebalanceTimeoutMs',
  'logLevel',
  'logger',
  'metricsRecordingLevel',
])

function fail(key: string, message: string): never {
  throw new StreamsConfigError(`invalid config '${key}': ${message}`)
}

function int(config: StreamsConfig, key: keyof StreamsConfig, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = config[key]
  if (v === undefined) return def
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(key, `expected an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? '∞' : max}], got ${JSON.stringify(v)}`)
  }
  return v
}

function isSerde(v: unknown): v is Serde<unknown> {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as Serde<unknown>).serialize === 'function' &&
    typeof (v as Serde<unknown>).deserialize === 'function'
  )
}

function handler(key: string, v: unknown, allowed: ReadonlyArray<string>, allowDlq: boolean): void {
  if (v === undefined || typeof v === 'function') return
  if (typeof v === 'string' && allowed.includes(v)) return
  if (
    allowDlq &&
    typeof v === 'object' &&
    v !== null &&
    typeof (v as { deadLetterTopic?: unknown }).deadLetterTopic === 'string' &&
    (v as { deadLetterTopic: string }).deadLetterTopic.length > 0
  )
    return
  fail(
    key,
    `expected ${allowed.map((a) => `'${a}'`).join(' | ')}${allowDlq ? ' | { deadLetterTopic: string }' : ''} | a function, got ${JSON.stringify(v)}`,
  )
}

/**
 * Applies defaults and validates. Unknown keys are rejected (a typo should not silently fall back
 * to a default).
 * @throws StreamsConfigError naming the offending key.
 */
export function resolveStreamsConfig(config: StreamsConfig): ResolvedStreamsConfig {
  if (typeof config !== 'object' || config === null) throw new StreamsConfigError('invalid config: expected an object')
  for (const key of Object.keys(config)) {
    if (!KNOWN_KEYS.has(key)) fail(key, 'unknown config key')
  }
  const applicationId = config.applicationId
  if (typeof applicationId !== 'string' || !/^[a-zA-Z0-9._-]+$/.test(applicationId)) {
    fail('applicationId', `required; letters, digits, '.', '_', '-' only, got ${JSON.stringify(applicationId)}`)
  }
  const processingGuarantee = config.processingGuarantee ?? 'at_least_once'
  if (!['at_least_once', 'exactly_once', 'exactly_once_v2'].includes(processingGuarantee)) {
    fail('processingGuarantee', `expected 'at_least_once' | 'exactly_once' | 'exactly_once_v2', got ${JSON.stringify(processingGuarantee)}`)
  }
  const exactlyOnceV2 = processingGuarantee === 'exactly_once_v2'
  const exactlyOnce = processingGuarantee === 'exactly_once' || exactlyOnceV2

  const logLevel = config.logLevel ?? 'warn'
  if (!['nothing', 'error', 'warn', 'info', 'debug'].includes(logLevel)) {
    fail('logLevel', `expected 'nothing' | 'error' | 'warn' | 'info' | 'debug', got ${JSON.stringify(logLevel)}`)
  }
  if (config.logger !== undefined && (typeof config.logger !== 'object' || typeof config.logger.error !== 'function')) {
    fail('logger', 'expected an object with error/warn/info/debug methods')
  }
  const logger = config.logger ? filterLogger(config.logger, logLevel) : createDefaultLogger(logLevel, `kstreams:${applicationId}`)

  const metricsRecordingLevel = config.metricsRecordingLevel ?? 'INFO'
  if (!isRecordingLevel(metricsRecordingLevel))
    fail('metricsRecordingLevel', `expected 'INFO' | 'DEBUG' | 'TRACE', got ${JSON.stringify(metricsRecordingLevel)}`)

  const clientId = config.clientId ?? applicationId
  if (typeof clientId !== 'string' || clientId.length === 0) fail('clientId', 'expected a non-empty string')

  let kafka: KafkaConfig
  if (config.kafka !== undefined) {
    if (typeof config.kafka !== 'object' || config.kafka === null) fail('kafka', 'expected a kafkajs KafkaConfig object')
    const brokers = config.kafka.brokers ?? (config.bootstrapServers !== undefined ? brokersOf(config.bootstrapServers) : undefined)
    if (brokers === undefined || (Array.isArray(brokers) && brokers.length === 0))
      fail('kafka', 'kafka.brokers (or bootstrapServers) is required')
    kafka = { ...config.kafka, brokers, clientId: config.kafka.clientId ?? clientId }
  } else {
    if (config.bootstrapServers === undefined) fail('bootstrapServers', 'required (or give a kafkajs config as `kafka`)')
    kafka = { brokers: brokersOf(config.bootstrapServers), clientId }
  }

  const commitIntervalMs = int(config, 'commitIntervalMs', exactlyOnce ? 100 : 30_000, 1)
  const stateDir = config.stateDir ?? path.join(os.tmpdir(), 'kstreams')
  if (typeof stateDir !== 'string' || stateDir.length === 0) fail('stateDir', 'expected a non-empty path')

  if (config.defaultKeySerde !== undefined && !isSerde(config.defaultKeySerde))
    fail('defaultKeySerde', 'expected a Serde (serialize/deserialize)')
  if (config.defaultValueSerde !== undefined && !isSerde(config.defaultValueSerde))
    fail('defaultValueSerde', 'expected a Serde (serialize/deserialize)')
  if (config.defaultTimestampExtractor !== undefined && typeof config.defaultTimestampExtractor?.extract !== 'function') {
    fail('defaultTimestampExtractor', 'expected a TimestampExtractor (extract)')
  }

  const topicConfig = config.topicConfig ?? {}
  if (typeof topicConfig !== 'object' || topicConfig === null) fail('topicConfig', 'expected a record of string values')
  for (const [k, v] of Object.entries(topicConfig)) {
    if (typeof v !== 'string') fail('topicConfig', `value of '${k}' must be a string, got ${JSON.stringify(v)}`)
  }
  const replicationFactor = config.replicationFactor ?? -1
  if (!Number.isInteger(replicationFactor) || (replicationFactor < 1 && replicationFactor !== -1)) {
    fail('replicationFactor', `expected -1 or a positive integer, got ${JSON.stringify(replicationFactor)}`)
  }

  handler('deserializationExceptionHandler', config.deserializationExceptionHandler, ['fail', 'logAndContinue'], true)
  handler('processingExceptionHandler', config.processingExceptionHandler, ['fail', 'logAndContinue'], false)
  handler('productionExceptionHandler', config.productionExceptionHandler, ['fail', 'logAndContinue'], false)

  let applicationServer: ResolvedStreamsConfig['applicationServer']
  if (config.applicationServer !== undefined) {
    const m = typeof config.applicationServer === 'string' ? /^(.+):(\d{1,5})$/.exec(config.applicationServer) : null
    const port = m ? Number(m[2]) : NaN
    if (!m || port < 1 || port > 65535) fail('applicationServer', `expected 'host:port', got ${JSON.stringify(config.applicationServer)}`)
    applicationServer = Object.freeze({ host: m[1]!, port })
  }

  const retryBackoffMs = int(config, 'retryBackoffMs', 500, 1)
  const retryBackoffMaxMs = int(config, 'retryBackoffMaxMs', 10_000, 1)
  if (retryBackoffMaxMs < retryBackoffMs)
    fail('retryBackoffMaxMs', `must be at least retryBackoffMs (${retryBackoffMs}), got ${retryBackoffMaxMs}`)
  const sessionTimeoutMs = int(config, 'sessionTimeoutMs', 45_000, 1_000)
  const heartbeatIntervalMs = int(config, 'heartbeatIntervalMs', 3_000, 100)
  if (heartbeatIntervalMs >= sessionTimeoutMs)
    fail('heartbeatIntervalMs', `must be lower than sessionTimeoutMs (${sessionTimeoutMs}), got ${heartbeatIntervalMs}`)

  return Object.freeze({
    applicationId,
    clientId,
    kafka: Object.freeze(kafka),
    processingGuarantee,
    exactlyOnce,
    exactlyOnceV2,
    commitIntervalMs,
    stateDir: path.resolve(stateDir),
    numStandbyReplicas: int(config, 'numStandbyReplicas', 0, 0, 100),
    acceptableRecoveryLag: int(config, 'acceptableRecoveryLag', 10_000, 0),
    maxWarmupReplicas: int(config, 'maxWarmupReplicas', 2, 1),
    probingRebalanceIntervalMs: int(config, 'probingRebalanceIntervalMs', 600_000, 1_000),
    defaultKeySerde: config.defaultKeySerde,
    defaultValueSerde: config.defaultValueSerde,
    defaultTimestampExtractor: config.defaultTimestampExtractor,
    maxTaskIdleMs: int(config, 'maxTaskIdleMs', 0, -1),
    idleAdvanceMs: int(config, 'idleAdvanceMs', -1, -1),
    idleAdvanceDelayMs: int(config, 'idleAdvanceDelayMs', 0, 0),
    statestoreCacheMaxBytes: int(config, 'statestoreCacheMaxBytes', 10 * 1024 * 1024, 0),
    bufferedRecordsPerPartition: int(config, 'bufferedRecordsPerPartition', 1000, 1),
    topicConfig: Object.freeze({ ...topicConfig }),
    replicationFactor,
    deserializationExceptionHandler: config.deserializationExceptionHandler ?? 'fail',
    processingExceptionHandler: config.processingExceptionHandler ?? 'fail',
    productionExceptionHandler: config.productionExceptionHandler ?? 'fail',
    applicationServer,
    taskTimeoutMs: int(config, 'taskTimeoutMs', 300_000, 0),
    retryBackoffMs,
    retryBackoffMaxMs,
    sessionTimeoutMs,
    heartbeatIntervalMs,
    rebalanceTimeoutMs: int(config, 'rebalanceTimeoutMs', 60_000, 1_000),
    logLevel,
    logger,
    metricsRecordingLevel,
  })
}

function brokersOf(v: string | ReadonlyArray<string>): string[] {
  const list =
    typeof v === 'string'
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : [...v]
  if (list.length === 0 || list.some((b) => typeof b !== 'string' || !/^.+:\d+$/.test(b))) {
    fail('bootstrapServers', `expected 'host:port' or a list of them, got ${JSON.stringify(v)}`)
  }
  return list
}

/** Topic configs from `topicConfig` that apply to internal topics of `kind`. */
export function internalTopicOverrides(config: ResolvedStreamsConfig, kind: 'changelog' | 'repartition'): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(config.topicConfig)) {
    if (k.startsWith('changelog.')) {
      if (kind === 'changelog') out[k.slice('changelog.'.length)] = v
    } else if (k.startsWith('repartition.')) {
      if (kind === 'repartition') out[k.slice('repartition.'.length)] = v
    } else out[k] = v
  }
  return out
}
