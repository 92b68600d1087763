/**
 * `kstreams/internals`: the graph builder, the task engine, the typed store facades and the other
 * pieces the runtime, the test driver and the benchmarks are built from (Kafka Streams:
 * `kstream.internals`, `processor.internals`, `state.internals`).
 *
 * No compatibility promise: names and shapes here change without a major version. Applications
 * import from `kstreams` (and `kstreams/testing`); everything they need is there.
 *
 * @packageDocumentation
 */
export type { KafkaStreamsInternals } from './app/kafka-streams.js'
export { resolveStreamsConfig } from './app/options.js'
export { STATE_TRANSITIONS } from './app/state.js'
export { WIRE_HEADER_LENGTH, WIRE_MAGIC_BYTE, decodeWireFormat, encodeWireFormat } from './serdes/wire-format.js'
export type { WireRecord } from './serdes/wire-format.js'
export { isValueJoinerWithKey } from '../topology/dsl/joins.js'
export type { JoinKind } from '../topology/dsl/joins.js'
export type { GroupedAggregateSpec, KGroupedStreamInit } from '../topology/dsl/kgrouped-stream.js'
export type { KGroupedTableInit } from '../topology/dsl/kgrouped-table.js'
export type { KStreamInit } from '../topology/dsl/kstream.js'
export { derivedTableOrigin, sourceTableOrigin, storeTableOrigin } from '../topology/dsl/ktable.js'
export type { KTableInit, TableOrigin } from '../topology/dsl/ktable.js'
export { checkOptionalName } from '../topology/dsl/options.js'
export { SUPPRESS_NAME, buildSuppress } from '../topology/dsl/suppressed.js'
export { TimeWindowedKStreamImpl, checkEmitStrategy, windowedBy } from '../topology/dsl/time-windowed-kstream.js'
export { windowOf } from '../topology/dsl/windows.js'
export { GLOBAL_SUBTOPOLOGY_ID, createTaskEngine, globalSubtopologyDef } from '../topology/engine/index.js'
export { DefaultTaskEngine } from '../topology/engine/task-engine.js'
export type {
  GlobalStoreDef,
  InternalTopicDef,
  NodeDef,
  ProcessorNodeDef,
  RecordCollector,
  SinkNodeDef,
  SourceNodeDef,
  SubtopologyDef,
  TaskEngine,
  TaskEngineOptions,
  TopologyDef,
} from '../topology/engine/types.js'
export { formatPlace } from '../topology/errors.js'
export { JavaTreeSet, describeTopology, javaHashSetOrder, javaStringHash } from '../topology/internals/describe.js'
export {
  CHANGELOG_TOPIC_SUFFIX,
  InternalTopologyBuilder,
  REPARTITION_TOPIC_SUFFIX,
} from '../topology/internals/internal-topology-builder.js'
export { WINDOW_CHANGELOG_ADDITIONAL_RETENTION_MS, toStoreDef } from '../topology/internals/topology.js'
export { parseTaskId, taskIdString } from '../topology/processor/types.js'
export { change, changeSerde } from '../topology/processors/change.js'
export type { Change } from '../topology/processors/change.js'
export type { KTableValueGetter, KTableValueGetterSupplier } from '../topology/processors/table.js'
export { isDefaultingSerde, resolveSerde } from '../topology/serde.js'
export type { DefaultingSerde } from '../topology/serde.js'
export {
  InMemoryKeyValueBytesStore,
  InMemorySessionBytesStore,
  InMemoryStoreProvider,
  InMemoryWindowBytesStore,
} from '../topology/state/memory.js'
export {
  KeyValueStoreFacade,
  SessionStoreFacade,
  WindowStoreFacade,
  changelogTopicFor,
  createTypedStore,
  plainKeyValueView,
  plainWindowView,
} from '../topology/state/typed.js'
export type { FlushedEntry, FlushListener, TypedStoreContext } from '../topology/state/typed.js'
export { CACHE_ENTRY_OVERHEAD, CachingKeyValueBytesStore, RecordCache } from '../topology/state/caching.js'
export { CachingSessionBytesStore, CachingWindowBytesStore } from '../topology/state/caching-windowed.js'
export type {
  BytesFlushListener,
  CacheHost,
  CacheRecordContext,
  FlushableCache,
  FlushedBytes,
  FlushListenerTarget,
} from '../topology/state/caching.js'
export type { BytesStoreBase, KeyValueBytesStore, SessionBytesStore, StoreProvider, WindowBytesStore } from '../topology/state/types.js'
export { MetricsRegistry, StreamsMetrics } from './metrics/index.js'
export type {
  ClientMetrics,
  ConsumerLagMetrics,
  RuntimeTaskMetrics,
  StoreMetrics,
  StreamsMetricsOptions,
  ThreadMetrics,
} from './metrics/index.js'
