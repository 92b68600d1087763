/**
 * Observability: every event the runtime emits, declared in one place (kafkajs style:
 * `instrumentationEvents`). Each event is emitted on the {@link KafkaStreams} instance (an
 * EventEmitter) AND published on a `node:diagnostics_channel` channel of the same name, so APMs
 * can subscribe without a reference to the instance.
 */
import diagnostics from 'node:diagnostics_channel'
import type { EventEmitter } from 'node:events'

/** Event names. Payloads are documented on {@link StreamsEventPayloads}. */
export const StreamsEvents = {
  STATE_CHANGE: 'kstreams:state_change',
  REBALANCE_START: 'kstreams:rebalance_start',
  ASSIGNMENT: 'kstreams:assignment',
  TASK_CREATED: 'kstreams:task_created',
  TASK_CLOSED: 'kstreams:task_closed',
  RESTORE_START: 'kstreams:restore_start',
  RESTORE_PROGRESS: 'kstreams:restore_progress',
  RESTORE_END: 'kstreams:restore_end',
  COMMIT: 'kstreams:commit',
  RECORD_DROPPED: 'kstreams:record_dropped',
  PAUSE: 'kstreams:pause',
  RESUME: 'kstreams:resume',
  TASK_MIGRATED: 'kstreams:task_migrated',
  TASK_RETRY: 'kstreams:task_retry',
  CONSUMER_RESTART: 'kstreams:consumer_restart',
  ERROR: 'kstreams:error',
} as const
export type StreamsEventName = (typeof StreamsEvents)[keyof typeof StreamsEvents]

/** Payload of each event. */
export interface StreamsEventPayloads {
  'kstreams:state_change': { newState: string; oldState: string }
  'kstreams:rebalance_start': { memberId?: string }
  'kstreams:assignment': { memberId: string; generation?: number; active: string[]; standby: string[]; isLeader: boolean }
  'kstreams:task_created': { taskId: string; standby: boolean }
  'kstreams:task_closed': { taskId: string; standby: boolean; clean: boolean }
  'kstreams:restore_start': {
    taskId: string
    store?: string
    topic: string
    partition: number
    fromOffset: string | undefined
    endOffset: string
    total: number
  }
  'kstreams:restore_progress': { taskId: string; topic: string; partition: number; restored: number; total: number }
  'kstreams:restore_end': { taskId: string; topic: string; partition: number; restored: number; durationMs: number }
  'kstreams:commit': { taskIds: string[]; records: number; offsets: number; durationMs: number; transactional: boolean }
  'kstreams:record_dropped': { reason: string; taskId: string; processor?: string; topic?: string; partition?: number; offset?: string }
  'kstreams:pause': { topic: string; partition: number; buffered: number }
  'kstreams:resume': { topic: string; partition: number; buffered: number }
  'kstreams:task_migrated': { taskId: string; reason: string }
  /**
   * A task hit a retriable error (KIP-572): it went back to its last commit and retries after
   * `backoffMs`. `waitedMs` is how long it has been retrying; past `taskTimeoutMs` the error is
   * escalated to the uncaught exception handler.
   */
  'kstreams:task_retry': { taskId: string; error: Error; attempt: number; waitedMs: number; backoffMs: number; taskTimeoutMs: number }
  /** The group consumer stopped on a retriable error and is started again after `backoffMs`. */
  'kstreams:consumer_restart': { error: Error; attempt: number; waitedMs: number; backoffMs: number }
  'kstreams:error': { error: Error; taskId?: string }
}

const channels = new Map<string, diagnostics.Channel>()
function channel(name: string): diagnostics.Channel {
  let c = channels.get(name)
  if (!c) {
    c = diagnostics.channel(name)
    channels.set(name, c)
  }
  return c
}

/** Emits `name` on `emitter` (if it has listeners) and publishes it on its diagnostics channel. */
export function emitEvent<N extends StreamsEventName>(emitter: EventEmitter, name: N, payload: StreamsEventPayloads[N]): void {
  const c = channel(name)
  if (c.hasSubscribers) c.publish(payload)
  if (emitter.listenerCount(name) > 0) {
    try {
      emitter.emit(name, payload)
    } catch {
      // a listener's error must not break processing
    }
  }
}
