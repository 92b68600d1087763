/**
 * kstreams topology: the DSL, the Processor API, store interfaces, serdes and errors
 * (everything that is pure: no I/O).
 */
export * from './errors.js'
export * from './serde.js'
export * from './processor/types.js'
export * from './state/types.js'
export * from './state/typed.js'
export * from './state/stores.js'
export * from './state/versioned.js'
export { RecordCache, CACHE_ENTRY_OVERHEAD, CachingKeyValueBytesStore } from './state/caching.js'
export { CachingSessionBytesStore, CachingWindowBytesStore } from './state/caching-windowed.js'
export type {
  CacheHost,
  CacheRecordContext,
  FlushedBytes,
  BytesFlushListener,
  FlushListenerTarget,
  FlushableCache,
} from './state/caching.js'
export * from './engine/types.js'
export * from './internals/topology.js'
export * from './internals/describe.js'
export { InternalTopologyBuilder, REPARTITION_TOPIC_SUFFIX, CHANGELOG_TOPIC_SUFFIX } from './internals/internal-topology-builder.js'
export * from './processors/change.js'
export type { KTableValueGetter, KTableValueGetterSupplier } from './processors/table.js'
export type { KeyValueLike } from './processors/stateless.js'
export * from './dsl/options.js'
export * from './dsl/branched.js'
export * from './dsl/streams-builder.js'
export * from './dsl/kstream.js'
export * from './dsl/ktable.js'
export * from './dsl/kgrouped-stream.js'
export * from './dsl/kgrouped-table.js'
export * from './dsl/global-ktable.js'
export * from './dsl/windows.js'
export * from './dsl/suppressed.js'
export * from './dsl/time-windowed-kstream.js'
export * from './dsl/sliding-windowed-kstream.js'
export * from './dsl/session-windowed-kstream.js'
export * from './dsl/cogrouped-kstream.js'
export { LateRecords, LATE_RECORD_HEADERS } from './dsl/late-records.js'
export type { LateRecordsConfig } from './dsl/late-records.js'
export { TableJoined } from './dsl/foreign-key-join.js'
export type { TableJoinedConfig } from './dsl/foreign-key-join.js'
export { WindowedSerdes, timeWindowedSerde, sessionWindowedSerde } from './processors/windowed/windowed-serdes.js'
export type { Initializer, Aggregator, Reducer, Merger } from './processors/windowed/types.js'
export * from './state/memory.js'
export * from './engine/index.js'
export { Joined, StreamJoined, withKey, isValueJoinerWithKey, JOIN_RETRACTION_HEADERS } from './dsl/joins.js'
export type {
  JoinedConfig,
  StreamJoinedConfig,
  StreamJoinedLateRecords,
  RetractingStreamJoinedConfig,
  EmitUnmatched,
  ValueJoiner,
  ValueJoinerWithKey,
  AnyValueJoiner,
  KeyValueMapper,
  JoinKind,
} from './dsl/joins.js'
