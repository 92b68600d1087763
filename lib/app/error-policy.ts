/**
 * The error policy: what the runtime does with an error, decided from what the error IS (its
 * kafkajs protocol error `type`, class name, `retriable` flag, Node `code`, registry HTTP status,
 * kstreams `code`), never from what its message SAYS. Messages lie: a user's
 * `new Error('invalid epoch')` is not a fenced producer.
 *
 * The three outcomes follow Kafka Streams:
 * - `retriable`: the infrastructure is briefly unavailable (leader or coordinator moving, broker
 *   restarting, connection lost, schema registry down). The task backs off ({@link backoffMs}) and
 *   retries from its last committed state until `task.timeout.ms` (KIP-572, default 300 000 ms)
 *   has passed, and only then escalates.
 * - `task-migrated`: the task now belongs to someone else (Kafka Streams' `TaskMigratedException`):
 *   our transactional producer was fenced by the new owner's InitProducerId, or the group moved on
 *   without us. Drop the task's uncommitted state and rejoin.
 * - `fatal`: everything else; it goes to the configured exception handlers.
 *
 * Codes in comments are Kafka protocol error codes (kafka.apache.org/protocol#protocol_error_codes);
 * names are those of kafkajs 2.2.4 (`src/protocol/error.js`), which still uses the pre-KIP-599
 * names for three of them (`NOT_COORDINATOR_FOR_GROUP` is NOT_COORDINATOR, and so on).
 */
import { ErrorCodes, ProcessingError, StreamsError } from '../../topology/errors.js'

/** What the runtime does with an error (KIP-572 retriable / task migrated / everything else). */
export type ErrorKind = 'retriable' | 'task-migrated' | 'fatal'

/**
 * Protocol errors meaning "this task is no longer ours" (kafkajs `type`). Kafka Streams turns the
 * producer ones into `TaskMigratedException` (`StreamsProducer`, `RecordCollectorImpl`) and the group
 * ones into it on commit (`CommitFailedException`).
 */
const MIGRATED_TYPES: ReadonlySet<string> = new Set([
  // producer fenced by a newer epoch of the same transactional id
  'INVALID_PRODUCER_EPOCH', // 47: what brokers answer clients older than KIP-588, kafkajs included
  'PRODUCER_FENCED', // 90: not in kafkajs' table; the exactly_once_v2 adapter (client/txn-offset-commit.ts) reports it by this type
  'INVALID_PRODUCER_ID_MAPPING', // 49: the transactional id no longer maps to our producer id
  'UNKNOWN_PRODUCER_ID', // 59: the broker dropped our producer state
  'OUT_OF_ORDER_SEQUENCE_NUMBER', // 45: idempotence broken; Kafka Streams treats it as migrated
  'INVALID_TXN_STATE', // 48: the coordinator ended our transaction (e.g. it timed out): re-init the producer
  // group moved on without us
  'UNKNOWN_MEMBER_ID', // 25
  'ILLEGAL_GENERATION', // 22
  'REBALANCE_IN_PROGRESS', // 27
  'FENCED_INSTANCE_ID', // 82: static membership, another instance took our group.instance.id
])

/**
 * Protocol errors that go away by themselves (kafkajs `type`). Listed explicitly, although kafkajs
 * flags most of them `retriable`, because a kafkajs wrapper (`KafkaJSNumberOfRetriesExceeded`,
 * `KafkaJSNonRetriableError`) hides that flag; any other protocol error that kafkajs flags
 * `retriable` (e.g. 56 KAFKA_STORAGE_ERROR, 74 FENCED_LEADER_EPOCH, 88 UNSTABLE_OFFSET_COMMIT) is
 * retriable too.
 */
const RETRIABLE_TYPES: ReadonlySet<string> = new Set([
  'NOT_COORDINATOR_FOR_GROUP', // 16 NOT_COORDINATOR
  'GROUP_COORDINATOR_NOT_AVAILABLE', // 15 COORDINATOR_NOT_AVAILABLE
  'GROUP_LOAD_IN_PROGRESS', // 14 COORDINATOR_LOAD_IN_PROGRESS
  'NOT_LEADER_FOR_PARTITION', // 6 NOT_LEADER_OR_FOLLOWER
  'LEADER_NOT_AVAILABLE', // 5
  'REQUEST_TIMED_OUT', // 7
  'NETWORK_EXCEPTION', // 13
  'CONCURRENT_TRANSACTIONS', // 51: the previous transaction of this id is still being completed
  // 3: retriable in Kafka (metadata not propagated yet, e.g. right after topic creation); a topic
  // that really is missing escalates once task.timeout.ms has passed
  'UNKNOWN_TOPIC_OR_PARTITION',
  'NOT_ENOUGH_REPLICAS', // 19
  'NOT_ENOUGH_REPLICAS_AFTER_APPEND', // 20
  'REPLICA_NOT_AVAILABLE', // 9
  'THROTTLING_QUOTA_EXCEEDED', // 89: not in kafkajs' table
])

/** kafkajs error classes (by `name`) for a broker or connection that is briefly unavailable. */
const RETRIABLE_KAFKAJS_CLASSES: ReadonlySet<string> = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSStaleTopicMetadataAssignment',
  // flagged non-retriable by kafkajs, but it means "no coordinator answered" (broker frozen or
  // restarting): the 45 s broker freeze ended every instance with it
  'KafkaJSGroupCoordinatorNotFound',
  // a kafkajs-internal lock (metadata refresh, producer) not released in time: a request hung on a
  // slow or frozen broker. kafkajs itself retries it when refreshing metadata.
  'KafkaJSLockTimeout',
])

/** Node / libuv error codes of a network that is briefly unavailable. */
const RETRIABLE_NODE_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN', // DNS temporarily failed (ENOTFOUND, a name that does not exist, is not retriable)
  'UND_ERR_SOCKET', // undici (fetch): the socket closed under the request
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  // a full disk (the state directory's filesystem): retried until space returns or taskTimeoutMs;
  // classic-level reports every failed LevelDB read/write/open of the OS as LEVEL_IO_ERROR (after
  // which the database refuses writes until it is reopened, which the task's rewind does)
  'ENOSPC',
  'EDQUOT',
  'LEVEL_IO_ERROR',
  // a state directory still locked by its previous owner (another instance on this host): the
  // task is retried with backoff until the owner has closed it
  'LEVEL_LOCKED',
  // a damaged LevelDB file found while running: the task rewinds, and reopening its state wipes
  // the damaged store (lib/state leaves a marker) and restores it from the changelog
  'LEVEL_CORRUPTION',
])

/** How deep the cause chain is followed (a guard against pathological chains). */
const MAX_CHAIN_DEPTH = 16

interface ErrorFields {
  name?: unknown
  code?: unknown
  type?: unknown
  status?: unknown
  retriable?: unknown
  cause?: unknown
  originalError?: unknown
  errors?: unknown
}

/**
 * The errors of a chain, outermost first: the error, its `cause` (ES2022 and kafkajs), kafkajs'
 * `originalError`, and the members of `errors[]` (kafkajs `KafkaJSAggregateError`, Node's
 * `AggregateError`), each once. The chain stops at a {@link ProcessingError}: what it wraps was
 * thrown by user code, and user code cannot migrate a task or ask for a retry by what it throws
 * (Kafka Streams gives it to the `ProcessingExceptionHandler`, KIP-1033).
 */
export function errorChain(e: unknown): Array<Error & ErrorFields> {
  const out: Array<Error & ErrorFields> = []
  const seen = new Set<unknown>()
  const visit = (x: unknown, depth: number): void => {
    if (x === null || typeof x !== 'object' || seen.has(x) || depth > MAX_CHAIN_DEPTH) return
    seen.add(x)
    const f = x as Error & ErrorFields
    out.push(f)
    if (x instanceof ProcessingError) return
    visit(f.cause, depth + 1)
    visit(f.originalError, depth + 1)
    if (Array.isArray(f.errors)) for (const c of f.errors) visit(c, depth + 1)
  }
  visit(e, 0)
  return out
}

/** Whether `x` is an error object made by kafkajs (all its classes are named `KafkaJS…`). */
function isKafkaJs(x: ErrorFields): boolean {
  return typeof x.name === 'string' && x.name.startsWith('KafkaJS')
}

/** The kind one error of a chain stands for by itself, or undefined when it says nothing. */
function ownKind(x: Error & ErrorFields): Exclude<ErrorKind, 'fatal'> | undefined {
  if (x instanceof StreamsError) {
    if (x.code === ErrorCodes.TASK_MIGRATED) return 'task-migrated'
    return x.retriable ? 'retriable' : undefined
  }
  if (isKafkaJs(x)) {
    if (typeof x.type === 'string') {
      // a protocol error (KafkaJSProtocolError and its subclasses): `type` names the code
      if (MIGRATED_TYPES.has(x.type)) return 'task-migrated'
      if (RETRIABLE_TYPES.has(x.type)) return 'retriable'
    }
    if (typeof x.name === 'string' && RETRIABLE_KAFKAJS_CLASSES.has(x.name)) return 'retriable'
    // KafkaJSNumberOfRetriesExceeded and KafkaJSNonRetriableError say nothing by themselves: what
    // they wrap decides. Other kafkajs errors carry kafkajs' own verdict (the protocol table's
    // `retriable` column for protocol errors).
    if (x.name === 'KafkaJSNumberOfRetriesExceeded') return undefined
    return x.retriable === true ? 'retriable' : undefined
  }
  if (typeof x.code === 'string' && RETRIABLE_NODE_CODES.has(x.code)) return 'retriable'
  // @kafkajs/confluent-schema-registry's ResponseError: the registry's HTTP status
  if (x.name === 'ResponseError' && typeof x.status === 'number') {
    const s = x.status
    return s >= 500 || s === 408 || s === 429 ? 'retriable' : undefined
  }
  // any other error that says it is retriable (kafkajs' convention, e.g. a custom serde's outage)
  return x.retriable === true ? 'retriable' : undefined
}

/**
 * Classifies an error for the runtime (KIP-572): `'retriable'` (back off and retry until
 * `taskTimeoutMs`), `'task-migrated'` (close the task dirty and rejoin) or `'fatal'` (the
 * configured exception handlers).
 *
 * Every error of the chain is looked at ({@link errorChain}: `cause`, kafkajs `originalError`,
 * `errors[]`, but nothing below a {@link ProcessingError}). A migration anywhere in the chain wins
 * (a fenced producer stays fenced however often the request is retried); otherwise one retriable
 * error anywhere makes the whole retriable (a wrapper such as `KafkaJSNumberOfRetriesExceeded` or
 * a `SerializationError` around a registry outage); otherwise the error is fatal.
 *
 * What counts, error by error:
 * - a kstreams {@link StreamsError}: `code` KSTREAMS_TASK_MIGRATED → task-migrated; `retriable: true`
 *   → retriable;
 * - a kafkajs protocol error: its `type` (INVALID_PRODUCER_EPOCH, UNKNOWN_MEMBER_ID, … →
 *   task-migrated; NOT_COORDINATOR_FOR_GROUP, CONCURRENT_TRANSACTIONS, … → retriable; others by
 *   kafkajs' `retriable` flag);
 * - a kafkajs class (`KafkaJSConnectionError`, `KafkaJSRequestTimeoutError`,
 *   `KafkaJSGroupCoordinatorNotFound`, …) → retriable; other kafkajs errors by their `retriable` flag;
 * - a Node error `code` (ECONNREFUSED, ECONNRESET, ETIMEDOUT, EPIPE, EHOSTUNREACH, ENETUNREACH,
 *   EAI_AGAIN, …) → retriable;
 * - a classic-level `code` LEVEL_LOCKED (a state directory its previous owner still holds),
 *   LEVEL_IO_ERROR (full disk), LEVEL_CORRUPTION → retriable;
 * - the schema registry client's `ResponseError` with HTTP status 5xx, 408 or 429 → retriable;
 * - any other error with `retriable: true` → retriable.
 *
 * The message is never read.
 *
 * @param e anything thrown
 * @returns what the runtime should do with it
 */
export function classifyError(e: unknown): ErrorKind {
  let retriable = false
  for (const x of errorChain(e)) {
    const k = ownKind(x)
    if (k === 'task-migrated') return k
    if (k === 'retriable') retriable = true
  }
  return retriable ? 'retriable' : 'fatal'
}

/**
 * Exponential backoff with jitter (kafkajs `retry`, Kafka's `retry.backoff.ms` /
 * `retry.backoff.max.ms` of KIP-580): attempt 0 waits about `retryBackoffMs`, each attempt doubles,
 * never more than `maxMs`. The jitter (±20 %) keeps instances that failed together from retrying
 * together.
 *
 * @param attempt 0 for the first retry (negative counts as 0)
 * @param retryBackoffMs the first wait, in milliseconds (negative counts as 0)
 * @param maxMs the cap, in milliseconds @defaultValue 1000 (Kafka's `retry.backoff.max.ms`)
 * @returns milliseconds to wait, in `[0, maxMs]`
 */
export function backoffMs(attempt: number, retryBackoffMs: number, maxMs = 1000): number {
  const base = Math.max(0, retryBackoffMs)
  const cap = Math.max(0, maxMs)
  // 2^52 ms is past any cap; NaN counts as the first attempt
  const n = Math.max(0, Math.min(Number.isNaN(attempt) ? 0 : Math.floor(attempt), 52))
  const exp = Math.min(base * 2 ** n, cap)
  const jittered = exp * (0.8 + Math.random() * 0.4)
  return Math.round(Math.min(jittered, cap))
}

/**
 * Whether a failed transactional commit step (AddPartitionsToTxn, TxnOffsetCommit, EndTxn) failed
 * with the broker's UNKNOWN_SERVER_ERROR (-1). Fatal elsewhere, it is retriable there: the
 * transaction's outcome is unknown, as after a request timeout, so the task rewinds to its last
 * commit with a new producer, whose InitProducerId completes or aborts what the broker holds (the
 * committed offsets are then read with require_stable). Kafka 4.4's transaction coordinator
 * answered EndTxn so right after a 9 s broker stall. A persistent one escalates after
 * `taskTimeoutMs`.
 */
export function isUnknownServerError(e: unknown): boolean {
  return errorChain(e).some((x) => isKafkaJs(x) && x.type === 'UNKNOWN')
}
