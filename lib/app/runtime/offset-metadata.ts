/**
 * The task's stream-time in the metadata of its committed offsets (Kafka Streams keeps each
 * partition's time there too, `StreamTask#encodeTimestamp`; ours is a text format of our own).
 * Committed with the offsets (in the same transaction under exactly-once), it is part of the
 * task's committed state: a restarted task starts from it, so the wall-clock idle advance
 * (`idleAdvanceMs`) is neither lost nor repeated, and records behind it stay late after a restart.
 */

const PREFIX = 'kstreams/1 st='

/** Encodes a task's stream-time (ms) as offset metadata. */
export function encodeStreamTime(streamTimeMs: number): string {
  return PREFIX + String(streamTimeMs)
}

/** The stream-time in offset metadata written by {@link encodeStreamTime}, or undefined (none, or another writer's). */
export function decodeStreamTime(metadata: string | null | undefined): number | undefined {
  if (typeof metadata !== 'string' || !metadata.startsWith(PREFIX)) return undefined
  const v = Number(metadata.slice(PREFIX.length))
  return Number.isSafeInteger(v) && v >= 0 ? v : undefined
}
