/**
 * The emission policy of unmatched records in left/outer stream-stream joins
 * (`StreamJoined.withEmitUnmatched`), in a module of its own so that the join processors can use
 * it without importing the DSL.
 */

/**
 * When a left or outer stream-stream join emits a record that has no match (yet), with `null` for
 * the other side (a kstreams option; inner joins ignore it):
 *
 * - `'onWindowClose'` (the default; Kafka Streams since 3.1, KIP-633 / KAFKA-10847, which fixed
 *   the "spurious" left/outer results): the record waits in the outer-join store and is emitted
 *   with `null` only if its join window plus grace closes without a match. Each input record
 *   yields either its matches or one unmatched result, never both; the cost is latency (window
 *   size + grace) and the store.
 * - `'eager'` (Kafka Streams before 3.1): a record that finds no match when it arrives is emitted
 *   with `null` at once; a record of the other side arriving later within the window still joins
 *   it, so the same record yields `A+null` and then `A+B`. No outer-join store.
 * - `'eagerWithRetraction'`: like `'eager'`, and when a record emitted with `null` is matched
 *   later, a RETRACTION is emitted right before the first match: a tombstone (value `null`) with
 *   the record's key, the match's timestamp and the headers {@link JOIN_RETRACTION_HEADERS}
 *   (`kstreams.join.retraction` = `this` or `other`, the side of the retracted record, and
 *   `kstreams.join.retracted-timestamp` = its timestamp). Downstream a `toTable()` deletes the
 *   `A+null` row before `A+B` arrives. The result stream is typed `KStream<K, VR | null>`.
 *   Late records (after their join window plus grace) are dropped under this policy (the
 *   `'drop'` policy of `StreamJoined.withLateRecords` is implied; `'join'` is rejected), because
 *   then a record emitted with `null` can be matched only until stream-time passes
 *   `t + before + after + grace`: it waits that long in the outer-join store
 *   (`...-shared-join-store`) and is then forgotten (nothing more is emitted), so the store stays
 *   bounded and every later match is preceded by its retraction, out-of-order records included.
 */
export type EmitUnmatched = 'onWindowClose' | 'eager' | 'eagerWithRetraction'

/** Header names of an `'eagerWithRetraction'` retraction (values are strings). */
export const JOIN_RETRACTION_HEADERS = Object.freeze({
  /** The side of the retracted unmatched record: `this` (the stream the join was called on) or `other`. */
  retraction: 'kstreams.join.retraction',
  /** Timestamp (ms) of the retracted unmatched result (the unmatched record's timestamp). */
  retractedTimestamp: 'kstreams.join.retracted-timestamp',
} as const)
