/**
 * Error handlers (Kafka Streams: `DeserializationExceptionHandler`, `ProcessingExceptionHandler`,
 * `ProductionExceptionHandler`) built from the config, and classification of kafkajs errors.
 */
import type { DeserializationExceptionHandler, OutputRecord, ProcessingExceptionHandler, RawRecord, RecordCollector } from '../../topology/engine/types.js'
import { taskIdString, type TaskId } from '../../topology/processor/types.js'
import type { DeserializationHandlerConfig, ProcessingHandlerConfig, ProductionHandlerConfig } from './options.js'
import type { Logger } from './logger.js'

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
 * Builds the engine's deserialization handler for one task. For a dead-letter topic the original
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

/** Builds the engine's processing-error handler. */
export function processingHandler(config: ProcessingHandlerConfig, logger: Logger): ProcessingExceptionHandler {
  return (error, place) => {
    if (config === 'fail') return 'fail'
    const p = { taskId: taskIdString(place.taskId), processor: place.processor, topic: place.record?.topic, partition: place.record?.partition, offset: place.record?.offset }
    if (config === 'logAndContinue') {
      logger.warn(`skipping record whose processing failed: ${error.message}`, p)
      return 'continue'
    }
    return config(error, { taskId: p.taskId, processor: place.processor, record: place.record })
  }
}

/** Decides for one failed output record. */
export function productionDecision(config: ProductionHandlerConfig, error: Error, record: OutputRecord, taskId: string): 'continue' | 'fail' {
  if (config === 'fail') return 'fail'
  if (config === 'logAndContinue') return 'continue'
  return config(error, record, taskId)
}

type KafkaErrorLike = Error & { type?: string; retriable?: boolean; originalError?: unknown; cause?: unknown; errors?: unknown[] }

/** All errors in a kafkajs error chain (the error, `originalError`, `cause`, `errors[]`). */
export function errorChain(e: unknown): KafkaErrorLike[] {
  const out: KafkaErrorLike[] = []
  const seen = new Set<unknown>()
  const visit = (x: unknown, depth: number): void => {
    if (!x || typeof x !== 'object' || seen.has(x) || depth > 8) return
    seen.add(x)
    out.push(x as KafkaErrorLike)
    const k = x as KafkaErrorLike
    visit(k.originalError, depth + 1)
    visit(k.cause, depth + 1)
    if (Array.isArray(k.errors)) for (const c of k.errors) visit(c, depth + 1)
  }
  visit(e, 0)
  return out
}

const FENCING = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED', 'INVALID_PRODUCER_ID_MAPPING', 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED', 'INVALID_TXN_STATE', 'UNKNOWN_PRODUCER_ID', 'OUT_OF_ORDER_SEQUENCE_NUMBER'])
const GROUP_MOVED = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID'])

/** A producer fenced by a newer epoch (the task's new owner initialised its producer). */
export function isFencingError(e: unknown): boolean {
  return errorChain(e).some((x) => (x.type !== undefined && FENCING.has(x.type)) || /fenced|epoch/i.test(x.message ?? ''))
}

/** An offset commit rejected because the group moved on (task migrated under at-least-once). */
export function isGroupMovedError(e: unknown): boolean {
  return errorChain(e).some((x) => x.type !== undefined && GROUP_MOVED.has(x.type))
}

/** An error whose outcome is unknown (request timeout, connection lost mid-request). */
export function isUnknownOutcomeError(e: unknown): boolean {
  return errorChain(e).some(
    (x) =>
      x.name === 'KafkaJSRequestTimeoutError' ||
      x.name === 'KafkaJSConnectionClosedError' ||
      x.name === 'KafkaJSConnectionError' ||
      x.name === 'KafkaJSNumberOfRetriesExceeded' ||
      x.type === 'REQUEST_TIMED_OUT' ||
      x.type === 'COORDINATOR_NOT_AVAILABLE' ||
      x.type === 'NOT_COORDINATOR',
  )
}
