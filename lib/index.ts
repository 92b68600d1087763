/**
 * kstreams: Kafka Streams for TypeScript. The public API (`import { ... } from 'kstreams'`).
 *
 * Every name is listed on purpose: what a Kafka Streams user needs to build a topology, run it,
 * handle its errors and query its stores. The test driver is in `kstreams/testing`. Runtime and
 * graph internals (the topology builder, the task engine, store implementations) are in
 * `kstreams/internals`, with no compatibility promise. `npm run api:check` compares this surface
 * with etc/kstreams.api.md, so a change here shows in review.
 *
 * @packageDocumentation
 */

// DSL (Kafka Streams: org.apache.kafka.streams.kstream)
export { StreamsBuilder } from '../topology/dsl/streams-builder.js'
export { Topology } from '../topology/internals/topology.js'
export type { StoreDefSource, TopologySinkOptions, TopologySourceOptions } from '../topology/internals/topology.js'
export type {
  DescribedGlobalStore,
  DescribedNode,
  DescribedSubtopology,
  MermaidOptions,
  TopologyAnnotations,
  TopologyDescription,
} from '../topology/internals/describe.js'
export { KStream } from '../topology/dsl/kstream.js'
export type { ProcessOptions, StreamConsumed } from '../topology/dsl/kstream.js'
export { KTable } from '../topology/dsl/ktable.js'
export { GlobalKTable } from '../topology/dsl/global-ktable.js'
export { KGroupedStream } from '../topology/dsl/kgrouped-stream.js'
export { KGroupedTable } from '../topology/dsl/kgrouped-table.js'
export type { TimeWindowedKStream } from '../topology/dsl/time-windowed-kstream.js'
export { SlidingWindowedKStream } from '../topology/dsl/sliding-windowed-kstream.js'
export { SessionWindowedKStream } from '../topology/dsl/session-windowed-kstream.js'
export { CogroupedKStream, SessionWindowedCogroupedKStream, TimeWindowedCogroupedKStream } from '../topology/dsl/cogrouped-kstream.js'
export { Branched, BranchedKStream } from '../topology/dsl/branched.js'
export type { BranchedConfig } from '../topology/dsl/branched.js'
export { Consumed, Grouped, Materialized, Named, Printed, Produced, Repartitioned } from '../topology/dsl/options.js'
export type {
  ConsumedConfig,
  GroupedConfig,
  MaterializedConfig,
  NamedConfig,
  PartitionerOption,
  PrintedConfig,
  ProducedConfig,
  RepartitionedConfig,
} from '../topology/dsl/options.js'
export { Joined, StreamJoined, withKey } from '../topology/dsl/joins.js'
export { TableJoined } from '../topology/dsl/foreign-key-join.js'
export type { TableJoinedConfig } from '../topology/dsl/foreign-key-join.js'
export type {
  AnyValueJoiner,
  JoinedConfig,
  KeyValueMapper,
  StreamJoinedConfig,
  ValueJoiner,
  ValueJoinerWithKey,
} from '../topology/dsl/joins.js'
export type { KeyValueLike } from '../topology/processors/stateless.js'
export type { Aggregator, Initializer, Merger, Reducer } from '../topology/processors/windowed/types.js'

// Windows and suppression
export { JoinWindows, MAX_WINDOW_TIME_MS, SessionWindows, SlidingWindows, TimeWindows } from '../topology/dsl/windows.js'
export type { FixedSizeWindows } from '../topology/dsl/windows.js'
export { BufferConfig, EmitStrategy, Suppressed } from '../topology/dsl/suppressed.js'
export type { BufferFullStrategy, EmitStrategyType, SuppressTimeDefinition } from '../topology/dsl/suppressed.js'
export { WindowedSerdes, sessionWindowedSerde, timeWindowedSerde } from '../topology/processors/windowed/windowed-serdes.js'

// Processor API (Kafka Streams: org.apache.kafka.streams.processor.api)
export { record } from '../topology/processor/types.js'
export type {
  Cancellable,
  FixedKeyProcessor,
  FixedKeyProcessorSupplier,
  Processor,
  ProcessorContext,
  ProcessorSupplier,
  PunctuationType,
  Punctuator,
  RecordMetadata,
  StreamPartitioner,
  StreamRecord,
  TaskId,
  TimestampExtractor,
  TopicNameExtractor,
} from '../topology/processor/types.js'

// State stores (Kafka Streams: org.apache.kafka.streams.state)
export { DEFAULT_RETENTION_MS, StoreBuilder, Stores } from '../topology/state/stores.js'
export { valueAndTimestamp } from '../topology/state/typed.js'
export { PUT_RETURN_CODE_NOT_PUT, PUT_RETURN_CODE_VALID_TO_UNDEFINED } from '../topology/state/versioned.js'
export type {
  VersionedBytesStoreSupplier,
  VersionedKeyValueStore,
  VersionedRecord,
  VersionedStoreOptions,
} from '../topology/state/versioned.js'
export type { TimestampedKeyValueStore, TimestampedWindowStore } from '../topology/state/typed.js'
export type {
  KeyValue,
  KeyValueStore,
  ReadOnlyKeyValueStore,
  ReadOnlySessionStore,
  ReadOnlyWindowStore,
  SessionStore,
  StateStore,
  StoreDef,
  StoreType,
  ValueAndTimestamp,
  Window,
  WindowStore,
  Windowed,
} from '../topology/state/types.js'
export type {
  QueryableKeyValueStore,
  QueryableSessionStore,
  QueryableStore,
  QueryableWindowStore,
  ReadOnlyVersionedKeyValueStore,
} from './app/interactive-queries.js'

// Serdes
export { Serdes, serdeFrom } from '../topology/serde.js'
export type { Headers, Serde } from '../topology/serde.js'
export { avroSerde, toAvroType } from './serdes/avro.js'
export type { AvroSchemaInput, AvroSerdeOptions, AvroTypeOptions } from './serdes/avro.js'
export { RecordNameStrategy, schemaRegistryAvroSerde, TopicNameStrategy, TopicRecordNameStrategy } from './serdes/schema-registry-avro.js'
export type {
  SchemaRegistryAvroSerde,
  SchemaRegistryAvroSerdeOptions,
  SchemaRegistryConfig,
  SubjectNameStrategy,
} from './serdes/schema-registry-avro.js'
export { RegistryTimeoutError } from './serdes/index.js'
export { COMPATIBILITY, SchemaRegistry } from '@kafkajs/confluent-schema-registry'

// Metrics (Kafka Streams' names, KIP-444 levels) and their exporters
export type { Metric, MetricGroup, MetricKind, MetricName, MetricsSource, RecordingLevel } from './metrics/index.js'
export { createPrometheusScraper, findMetrics, metricValue, registerOpenTelemetry } from './metrics/index.js'
export type { OpenTelemetryExportOptions, OpenTelemetryRegistration, PrometheusScraper, PrometheusScraperOptions } from './metrics/index.js'

// Errors and error handlers
export {
  ErrorCodes,
  IllegalStateError,
  InvalidStateStoreError,
  InvalidTimestampError,
  ProcessingError,
  ProcessorStateError,
  ProductionError,
  SerializationError,
  StreamsConfigError,
  StreamsError,
  TaskMigratedError,
  TopologyError,
} from '../topology/errors.js'
export type { ErrorCode, ErrorPlace, StreamsErrorOptions } from '../topology/errors.js'
export type {
  DeserializationExceptionHandler,
  DeserializationHandlerResponse,
  InvalidTimestampPolicy,
  OutputRecord,
  ProcessingExceptionHandler,
  RawRecord,
} from '../topology/engine/types.js'
export { DLQ_HEADERS } from './app/index.js'

// The application (Kafka Streams: KafkaStreams, StreamsConfig)
export { KafkaStreams, StreamsEvents } from './app/index.js'
export { collectLiveTopology, liveAnnotations, liveTopology, liveTopologyTable } from './app/live-topology.js'
export type { LiveProcessor, LiveSource, LiveStore, LiveTopology, LiveTopologyClient, LiveTopologySnapshot } from './app/live-topology.js'
export type {
  DeserializationHandlerConfig,
  HealthOptions,
  HostInfo,
  KafkaStreamsState,
  KeyQueryMetadata,
  Logger,
  LogLevel,
  ProcessingGuarantee,
  ProcessingHandlerConfig,
  ProductionHandlerConfig,
  ResolvedStreamsConfig,
  RunUntilCaughtUpOptions,
  RunUntilCaughtUpResult,
  StateListener,
  StoreQueryParameters,
  StreamsConfig,
  StreamsEventName,
  StreamsEventPayloads,
  StreamsHealth,
  StreamsMetadata,
  StreamsUncaughtExceptionHandler,
  StreamThreadExceptionResponse,
  TaskHealth,
  TaskRestoreProgress,
  TaskWaiting,
  TopologyLike,
} from './app/index.js'
