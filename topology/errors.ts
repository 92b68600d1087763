/**
 * The kstreams error family (Kafka Streams' `StreamsException` hierarchy, kafkajs-style `retriable`).
 *
 * Every error has a stable `code`, a `retriable` flag and an optional `cause`. Runtime errors carry
 * where they happened ({@link ErrorPlace}: task, processor, topic, partition, offset).
 */

/** Stable error codes. */
export const ErrorCodes = {
  STREAMS: 'KSTREAMS_ERROR',
  TOPOLOGY: 'KSTREAMS_TOPOLOGY',
  CONFIG: 'KSTREAMS_CONFIG',
  TASK_MIGRATED: 'KSTREAMS_TASK_MIGRATED',
  PROCESSOR_STATE: 'KSTREAMS_PROCESSOR_STATE',
  SERIALIZATION: 'KSTREAMS_SERIALIZATION',
  PROCESSING: 'KSTREAMS_PROCESSING',
  PRODUCTION: 'KSTREAMS_PRODUCTION',
  INVALID_STATE_STORE: 'KSTREAMS_INVALID_STATE_STORE',
  TIMESTAMP: 'KSTREAMS_TIMESTAMP',
  ILLEGAL_STATE: 'KSTREAMS_ILLEGAL_STATE',
} as const
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

/** Where a runtime error happened. Every field is optional; messages include those present. */
export interface ErrorPlace {
  taskId?: string
  processor?: string
  topic?: string
  partition?: number
  offset?: string | number
  store?: string
}

export interface StreamsErrorOptions {
  cause?: unknown
  retriable?: boolean
  place?: ErrorPlace
}

/** Formats an {@link ErrorPlace} as ` (task 0_1, processor X, topic t, partition 0, offset 5)`. */
export function formatPlace(place?: ErrorPlace): string {
  if (!place) return ''
  const parts: string[] = []
  if (place.taskId !== undefined) parts.push(`task ${place.taskId}`)
  if (place.processor !== undefined) parts.push(`processor ${place.processor}`)
  if (place.store !== undefined) parts.push(`store ${place.store}`)
  if (place.topic !== undefined) parts.push(`topic ${place.topic}`)
  if (place.partition !== undefined) parts.push(`partition ${place.partition}`)
  if (place.offset !== undefined) parts.push(`offset ${place.offset}`)
  return parts.length ? ` (${parts.join(', ')})` : ''
}

/** Base class of every kstreams error (Kafka Streams: `StreamsException`). */
export class StreamsError extends Error {
  readonly code: ErrorCode
  readonly retriable: boolean
  readonly place: ErrorPlace | undefined
  constructor(message: string, options: StreamsErrorOptions = {}, code: ErrorCode = ErrorCodes.STREAMS) {
    super(message + formatPlace(options.place), options.cause !== undefined ? { cause: options.cause } : undefined)
    this.name = new.target.name
    this.code = code
    this.retriable = options.retriable ?? false
    this.place = options.place
  }
}

/** Invalid topology or DSL argument (Kafka Streams: `TopologyException`). Names the parameter. */
export class TopologyError extends StreamsError {
  constructor(message: string, options: StreamsErrorOptions = {}) {
    super(message, options, ErrorCodes.TOPOLOGY)
  }
}

/** Invalid configuration (Kafka Streams: `ConfigException`). */
export class StreamsConfigError extends StreamsError {
  constructor(message: string, options: StreamsErrorOptions = {}) {
    super(message, options, ErrorCodes.CONFIG)
  }
}

/** A task was migrated to another instance (fenced producer, lost partition). Retriable: rejoin. */
export class TaskMigratedError extends StreamsError {
  constructor(message: string, options: StreamsErrorOptions = {}) {
    super(message, { retriable: true, ...options }, ErrorCodes.TASK_MIGRATED)
  }
}

/** A state store failed (LevelDB error, corrupt checkpoint). */
export class ProcessorStateError extends StreamsError {
  constructor(message: string, options: StreamsErrorOptions = {}) {
    super(message, options, ErrorCodes.PROCESSOR_STATE)
  }
}

/** A serde failed to (de)serialize a key or value. */
export class SerializationError extends StreamsError {
  constructor(message: string, options: StreamsErrorOptions = {}) {
    super(message, options, ErrorCodes.SERIALIZATION)
  }
}

/** User code in a processor threw. */
export class ProcessingError extends StreamsError {
  constructor(message: string, options: StreamsErrorOptions = {}) {
    super(message, options, ErrorCodes.PROCESSING)
  }
}

/** Producing an output record failed. */
export class ProductionError extends StreamsError {
  constructor(message: string, options: StreamsErrorOptions = {}) {
    super(message, options, ErrorCodes.PRODUCTION)
  }
}

/** A store was asked for that is not connected to the processor, or is closed. */
export class InvalidStateStoreError extends StreamsError {
  constructor(message: string, options: StreamsErrorOptions = {}) {
    super(message, options, ErrorCodes.INVALID_STATE_STORE)
  }
}

/** A record had an invalid (negative) timestamp and the policy is to fail. */
export class InvalidTimestampError extends StreamsError {
  constructor(message: string, options: StreamsErrorOptions = {}) {
    super(message, options, ErrorCodes.TIMESTAMP)
  }
}

/** An operation was called in a lifecycle state that does not allow it. */
export class IllegalStateError extends StreamsError {
  constructor(message: string, options: StreamsErrorOptions = {}) {
    super(message, options, ErrorCodes.ILLEGAL_STATE)
  }
}
