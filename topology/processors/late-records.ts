/**
 * Forwarding a late record to its operator's side-output sink (see `LateRecords` in
 * dsl/late-records.ts for the option and {@link LATE_RECORD_HEADERS} for the headers).
 * @internal
 */
import type { ProcessorContext, StreamRecord } from '../processor/types.js'
import { LATE_RECORD_HEADERS, type LateRecordsTarget } from '../dsl/late-records.js'

/** The window a late record missed and the operator's stream-time at the drop. */
export interface LateRecordPlace {
  readonly windowStartMs: number
  readonly windowEndMs: number
  readonly streamTimeMs: number
  /** Stream-stream joins: the side the record came in on. */
  readonly joinSide?: 'this' | 'other'
}

/**
 * Sends `record` (key, value, timestamp and headers unchanged, plus the late-record headers) to
 * the side-output sink of `target`. Headers of the record with the same names are replaced.
 */
export function forwardLateRecord(
  context: ProcessorContext<any, any>,
  target: LateRecordsTarget,
  record: StreamRecord<unknown, unknown>,
  place: LateRecordPlace,
): Promise<void> {
  const headers = {
    ...record.headers,
    [LATE_RECORD_HEADERS.processor]: target.processorName,
    [LATE_RECORD_HEADERS.windowStart]: String(place.windowStartMs),
    [LATE_RECORD_HEADERS.windowEnd]: String(place.windowEndMs),
    [LATE_RECORD_HEADERS.streamTime]: String(place.streamTimeMs),
    [LATE_RECORD_HEADERS.lateness]: String(place.streamTimeMs - record.timestamp),
    ...(place.joinSide !== undefined ? { [LATE_RECORD_HEADERS.joinSide]: place.joinSide } : {}),
  }
  return context.forward({ key: record.key, value: record.value, timestamp: record.timestamp, headers }, target.sinkName)
}
