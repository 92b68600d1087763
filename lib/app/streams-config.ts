/**
 * The configuration keys of a {@link KafkaStreams} instance with their documentation and defaults
 * (Kafka Streams: `StreamsConfig`'s key definitions), and the resolved form the runtime reads.
 * Defaults are applied and values validated by `resolveStreamsConfig` (./options.ts).
 */
import type { KafkaConfig } from './client/kafkajs.js'
import type { Serde } from '../../topology/serde.js'
import type { TimestampExtractor } from '../../topology/processor/types.js'
import type { OutputRecord, RawRecord } from '../../topology/engine/types.js'
import type { LogLevel, Logger } from './logger.js'
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
   * so a restart neither repeats nor loses it. A task that has not seen a record yet (no stream-time,
   * none committed) is not advanced: it has nothing to close.
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
   * `statestore.cache.max.bytes`, KIP-63), shared by all its tasks. Stores with caching enabled
   * (`Materialized.withCachingEnabled()`, the default of DSL tables and aggregations, windowed and
   * session ones included) forward only the latest update of each key (window, session), at commit
   * or when the caches overflow (then the store written to flushes); 0 disables caching everywhere
   * (every update is forwarded at once).
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
