/**
 * Error handlers (Kafka Streams: `DeserializationExceptionHandler`, `ProcessingExceptionHandler`,
 * `ProductionExceptionHandler`) built from the config, and the runtime's error checks
 * (`isFencingError`, `isGroupMovedError`, `isUnknownOutcomeError`) built on the error policy
 * (error-policy.ts: by error type and code, never by message).
 */
import type {
  DeserializationExceptionHandler,
  OutputRecord,
  ProcessingExceptionHandler,
  RawRecord,
  RecordCollector,
} from '../../topology/engine/types.js'
import { taskIdString, type TaskId } from '../../topology/processor/types.js'
import type { DeserializationHandlerConfig, ProcessingHandlerConfig, ProductionHandlerConfig } from './options.js'
import type { Logger } from './logger.js'
import { classifyError, errorChain } from './error-policy.js'

/** Header names added to dead-letter records. */
export const DLQ_HEADERS = {
  MESSAGE: '__kstreams.error.message',
  CLASS: '__kstreams.error.class',
  TOPIC: '__kstreams.error.topic',
  PARTITION: '__kstreams.error.partition',
  OFFSET: '__kstreams.error.offset',
  TASK: '__kstreams.error.task',
} as const

/**
 * Builds the engine's deserialization handler for one task. A retriable error (see
 * {@link classifyError}) fails without asking the configured handler. For a dead-letter topic the original
 * bytes go to the task's collector, so they are produced with the task's next commit (inside its
 * transaction under exactly-once).
 */
export function deserializationHandler(
  config: DeserializationHandlerConfig,
  collector: () => RecordCollector,
  logger: Logger,
  onSkipped: (record: RawRecord, error: Error) => void,
): DeserializationExceptionHandler {
  return (error: Error, record: RawRecord, taskId: TaskId) => {
    // A retriable failure (e.g. the schema registry is down) says nothing about the record: it is
    // retried with the task, never skipped or sent to the dead-letter topic.
    if (classifyError(error) !== 'fatal') return 'fail'
    const task = taskIdString(taskId)
    const place = { taskId: task, topic: record.topic, partition: record.partition, offset: record.offset }
    if (config === 'fail') return 'fail'
    if (config === 'logAndContinue') {
      logger.warn(`skipping record that failed to deserialize: ${error.message}`, place)
      onSkipped(record, error)
      return 'continue'
    }
    if (typeof config === 'function') {
      const r = config(error, record, task)
      if (r === 'continue') onSkipped(record, error)
      return r
    }
    const headers = { ...record.headers }
    headers[DLQ_HEADERS.MESSAGE] = error.message
    headers[DLQ_HEADERS.CLASS] = error.name
    headers[DLQ_HEADERS.TOPIC] = record.topic
    headers[DLQ_HEADERS.PARTITION] = String(record.partition)
    headers[DLQ_HEADERS.OFFSET] = record.offset
    headers[DLQ_HEADERS.TASK] = task
    collector().send({ topic: config.deadLetterTopic, key: record.key, value: record.value, timestamp: record.timestamp, headers })
    logger.warn(`sent record that failed to deserialize to dead-letter topic '${config.deadLetterTopic}': ${error.message}`, place)
    onSkipped(record, error)
    return 'continue'
  }
}

/**
 * Builds the engine's processing-error handler. Retriable errors and task migrations (e.g. a
 * retriable `SerializationError` from a sink's serde) are not the handler's: they fail the task
 * so the runtime retries it.
 */
export function processingHandler(config: ProcessingHandlerConfig, logger: Logger): ProcessingExceptionHandler {
  return (error, place) => {
    // retriable and migration errors are the runtime's (KIP-572), not the handler's
    if (config === 'fail' || classifyError(error) !== 'fatal') return 'fail'
    const p = {
      taskId: taskIdString(place.taskId),
      processor: place.processor,
      topic: place.record?.topic,
      partition: place.record?.partition,
      offset: place.record?.offset,
    }
    if (config === 'logAndContinue') {
      logger.warn(`skipping record whose processing failed: ${error.message}`, p)
      return 'continue'
    }
    return config(error, { taskId: p.taskId, processor: place.processor, record: place.record })
  }
}

/** Decides for one failed output record; a retriable error or a migration always fails (the runtime retries). */
export function productionDecision(
  config: ProductionHandlerConfig,
  error: Error,
  record: OutputRecord,
  taskId: string,
): 'continue' | 'fail' {
  // Kafka Streams asks the ProductionExceptionHandler about non-retriable errors only
  if (config === 'fail' || classifyError(error) !== 'fatal') return 'fail'
  if (config === 'logAndContinue') return 'continue'
  return config(error, record, taskId)
}

/** All errors of a chain (see {@link errorChain} in error-policy.ts). */
export { errorChain }

/** Protocol errors (kafkajs `type`) of a group that moved on without this member (KIP-572 task migration). */
const GROUP_MOVED: ReadonlySet<string> = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID'])

/**
 * A task migrated away: a producer fenced by the task's new owner (INVALID_PRODUCER_EPOCH,
 * PRODUCER_FENCED, …), a group that moved on, or a `TaskMigratedError`. Same as
 * `classifyError(e) === 'task-migrated'`; decided by error type and code only, so a user error whose
 * message says "fenced" or "epoch" is not one.
 */
export function isFencingError(e: unknown): boolean {
  return classifyError(e) === 'task-migrated'
}

/** An offset commit rejected because the group moved on (task migrated under at-least-once). */
export function isGroupMovedError(e: unknown): boolean {
  return errorChain(e).some(
    (x) => typeof x.type === 'string' && typeof x.name === 'string' && x.name.startsWith('KafkaJS') && GROUP_MOVED.has(x.type),
  )
}

/**
 * An error after which a transactional commit's outcome is unknown or the transaction is lost
 * (request timeout, connection lost, coordinator moving or loading, concurrent transactions): every
 * retriable error. The transaction is aborted if possible and the task re-created from its last
 * committed state. Same as `classifyError(e) === 'retriable'`.
 */
export function isUnknownOutcomeError(e: unknown): boolean {
  return classifyError(e) === 'retriable'
}
