/**
 * Late records to a side topic (a kstreams extension; Kafka Streams only drops them and counts
 * them in `dropped-records`).
 *
 * A windowed aggregation (time, sliding or session windows) or a stream-stream join given a
 * {@link LateRecords} writes every record it drops for arriving after its window plus grace closed
 * to that topic, through an ordinary sink node: the task's record collector produces it, so under
 * exactly-once it is part of the same transaction as the operator's other output. The record keeps
 * its key, value, timestamp and headers, and gets the headers of {@link LATE_RECORD_HEADERS}.
 * It is still counted in `dropped-records` (reason `late`).
 */
import { TopologyError } from '../errors.js'
import type { InternalTopologyBuilder } from '../internals/internal-topology-builder.js'
import type { Serde } from '../serde.js'
import type { ProducedConfig } from './options.js'
import { checkOptionalName } from './options.js'

/**
 * Header names of a late record (values are decimal strings; times in milliseconds since the
 * epoch, durations in milliseconds).
 */
export const LATE_RECORD_HEADERS = Object.freeze({
  /** Name of the processor that dropped the record (`KSTREAM-AGGREGATE-0000000003`, `<name>-this-join`, ...). */
  processor: 'kstreams.late.processor',
  /**
   * Start of the window the record missed: the time window, the sliding window, the session the
   * record would have joined (or started), or for a join the record's join window `t - before`.
   */
  windowStart: 'kstreams.late.window.start',
  /**
   * End of that window, as `Windowed.window.endMs` gives it: exclusive for time windows
   * (`start + size`), inclusive for sliding and session windows and for join windows (`t + after`).
   */
  windowEnd: 'kstreams.late.window.end',
  /** The operator's stream-time when it dropped the record. */
  streamTime: 'kstreams.late.stream-time',
  /**
   * How late the record was: stream-time minus the record's timestamp (the definition of Kafka
   * Streams' `record-lateness` metric).
   */
  lateness: 'kstreams.late.lateness',
  /** Stream-stream joins only: `this` (the stream the join was called on) or `other`. */
  joinSide: 'kstreams.late.join-side',
} as const)

/** Fields of {@link LateRecords}. */
export interface LateRecordsConfig<K, V> {
  /** The side topic (must exist, like any topic of `KStream.to`). */
  readonly topic: string
  /**
   * Serdes, partitioner and sink name (`<operator>-late-records` by default). Serdes default to
   * the operator's input serdes, then the application's defaults.
   */
  readonly produced?: ProducedConfig<K, V>
}

/**
 * Where an operator sends the records it drops as late (see the module comment).
 *
 * @example
 * ```ts
 * clicks
 *   .groupByKey()
 *   .windowedBy(TimeWindows.ofSizeAndGrace(60_000, 5_000))
 *   .withLateRecords(LateRecords.to('late-clicks', Produced.with(Serdes.String(), clickSerde)))
 *   .count()
 * ```
 */
export class LateRecords<K, V> implements LateRecordsConfig<K, V> {
  readonly topic: string
  readonly produced?: ProducedConfig<K, V>

  private constructor(config: LateRecordsConfig<K, V>) {
    this.topic = config.topic
    if (config.produced !== undefined) this.produced = config.produced
    Object.freeze(this)
  }

  /**
   * Late records go to `topic`, written with `produced` (serdes, partitioner, sink name).
   * @throws TopologyError when `topic` is not a non-empty string or `produced` not an object
   */
  static to<K, V>(topic: string, produced?: ProducedConfig<K, V>): LateRecords<K, V> {
    return new LateRecords<K, V>(checkLateRecords({ topic, ...(produced !== undefined ? { produced } : {}) }, 'LateRecords.to'))
  }
}

/** Checks a {@link LateRecordsConfig} (a {@link LateRecords} or a plain object). */
export function checkLateRecords<K, V>(config: LateRecordsConfig<K, V>, method: string): LateRecordsConfig<K, V> {
  if (config === null || typeof config !== 'object')
    throw new TopologyError(`${method}: parameter 'lateRecords' must be LateRecords.to(topic, produced)`)
  if (typeof config.topic !== 'string' || config.topic.length === 0)
    throw new TopologyError(`${method}: parameter 'topic' of the late records must be a non-empty string`)
  if (config.produced !== undefined && (config.produced === null || typeof config.produced !== 'object'))
    throw new TopologyError(`${method}: parameter 'produced' of the late records must be a Produced`)
  checkOptionalName(method, config.produced?.name)
  return config
}

/** What a late-record-sending processor needs: where to forward and what to call itself. */
export interface LateRecordsTarget {
  /** The side-output sink, child of the operator's processor. */
  readonly sinkName: string
  /** The operator's processor name (header {@link LATE_RECORD_HEADERS}.processor). */
  readonly processorName: string
}

/**
 * The target a processor named `processorName` forwards late records to: the sink
 * `produced.name`, or `<processorName>-late-records`.
 * @throws TopologyError when `lateRecords` is invalid
 */
export function lateRecordsTarget<K, V>(processorName: string, lateRecords: LateRecordsConfig<K, V>, method: string): LateRecordsTarget {
  checkLateRecords(lateRecords, method)
  return { sinkName: lateRecords.produced?.name ?? `${processorName}-late-records`, processorName }
}

/**
 * Adds the side-output sink of `target` (from {@link lateRecordsTarget}) below its processor,
 * which must already be in the graph. Serdes: `produced`'s, else `serdes` (the operator's input).
 */
export function addLateRecordsSink<K, V>(
  builder: InternalTopologyBuilder,
  target: LateRecordsTarget,
  lateRecords: LateRecordsConfig<K, V>,
  serdes: { readonly keySerde?: Serde<K> | undefined; readonly valueSerde?: Serde<V> | undefined },
): void {
  const produced = lateRecords.produced ?? {}
  const keySerde = produced.keySerde ?? serdes.keySerde
  const valueSerde = produced.valueSerde ?? serdes.valueSerde
  builder.addSink({
    name: target.sinkName,
    topic: lateRecords.topic,
    parents: [target.processorName],
    sideOutput: true,
    ...(keySerde !== undefined ? { keySerde } : {}),
    ...(valueSerde !== undefined ? { valueSerde } : {}),
    ...(produced.partitioner !== undefined ? { partitioner: produced.partitioner } : {}),
  })
}
