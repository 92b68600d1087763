/**
 * Shared types of the windowed aggregation processors (Kafka Streams: `Initializer`,
 * `Aggregator`, `Reducer`, `Merger`, `Change`).
 */

/** A table update `{ newValue, oldValue }` (Kafka Streams: `Change<V>`); `newValue === null` is a tombstone. */
export type { Change } from '../change.js'

/** Creates the initial aggregate of a new window or session (Kafka Streams: `Initializer`). */
export type Initializer<VA> = () => VA

/** Adds one record to an aggregate and returns the new aggregate (Kafka Streams: `Aggregator`). */
export type Aggregator<K, V, VA> = (key: K, value: V, aggregate: VA) => VA

/** Combines two values of the same type (Kafka Streams: `Reducer`). */
export type Reducer<V> = (aggregate: V, value: V) => V

/** Merges the aggregates of two sessions being merged into one (Kafka Streams: `Merger`). */
export type Merger<K, VA> = (key: K, aggregate1: VA, aggregate2: VA) => VA

/** Reason passed to `context.recordDropped` for a record that arrived after its window closed. */
export const LATE_RECORD_DROP_REASON = 'late'
/** Reason passed to `context.recordDropped` for a record with a null key. */
export const NULL_KEY_DROP_REASON = 'null-key'
/** Reason passed to `context.recordDropped` for a record with a null value. */
export const NULL_VALUE_DROP_REASON = 'null-value'
