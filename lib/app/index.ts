/**
 * The app runtime (Kafka Streams' `KafkaStreams` and its machinery): public exports.
 */
export { KafkaStreams } from './kafka-streams.js'
export type {
  HostInfo,
  KafkaStreamsInternals,
  KeyQueryMetadata,
  StoreQueryParameters,
  StreamThreadExceptionResponse,
  StreamsMetadata,
  StreamsUncaughtExceptionHandler,
  TopologyLike,
} from './kafka-streams.js'
export { resolveStreamsConfig } from './options.js'
export type {
  DeserializationHandlerConfig,
  ProcessingGuarantee,
  ProcessingHandlerConfig,
  ProductionHandlerConfig,
  ResolvedStreamsConfig,
  StreamsConfig,
} from './options.js'
export { STATE_TRANSITIONS } from './state.js'
export type { KafkaStreamsState, StateListener } from './state.js'
export { StreamsEvents } from './events.js'
export type { StreamsEventName, StreamsEventPayloads } from './events.js'
export { DLQ_HEADERS } from './error-handlers.js'
export type { Logger, LogLevel } from './logger.js'
export type { QueryableKeyValueStore, QueryableSessionStore, QueryableStore, QueryableWindowStore } from './interactive-queries.js'
export type { HealthOptions, StreamsHealth, TaskHealth, TaskRestoreProgress, TaskWaiting } from './health.js'
export type { RunUntilCaughtUpOptions, RunUntilCaughtUpResult } from './runtime/run-until-caught-up.js'
