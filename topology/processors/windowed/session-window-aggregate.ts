/**
 * Session window aggregation (Kafka Streams: `KStreamSessionWindowAggregate`).
 *
 * A record at `t` looks up the key's sessions that end at or after `t - gap` and start at or
 * before `t + gap`. It joins them: the sessions found are merged (aggregates combined with the
 * `Merger`) into one session `[min start, max end]` (both ends inclusive) together with the new
 * record. For every session replaced by a merge a tombstone is forwarded first
 * (`Change { newValue: null, oldValue: <its aggregate> }`, timestamp = its end), then the merged
 * session (`Change { newValue: <aggregate>, oldValue: null }`, timestamp = its end).
 *
 * A session is closed once `sessionEnd + gap + grace < observedStreamTime`; a closed session is
 * never merged into again, and a record whose (merged) session would be closed is dropped and
 * counted with `context.recordDropped('late')`. The session store also expires sessions by its own
 * stream-time (the largest session end put): with the minimum retention `gap + grace`, a session
 * ending at `storeStreamTime - gap - grace` is no longer found, so a record exactly `gap` after it
 * starts a new session once another key moved the store's stream-time there (Kafka Streams' rule).
 * With `onWindowClose` nothing is forwarded until sessions close, then each closed session is
 * forwarded once.
 */
import type { ProcessorSupplier, StreamRecord } from '../../processor/types.js'
import type { KeyValue, SessionStore, Windowed } from '../../state/types.js'
import type { SessionWindows } from '../../dsl/windows.js'
import { windowOf as makeWindow } from '../../dsl/windows.js'
import { WindowAggregateProcessorBase, recordFinalEmit, type WindowAggregateCommonOptions } from './window-aggregate-base.js'
import type { Aggregator, Change, Initializer, Merger } from './types.js'
import { SessionTupleForwarder } from '../forwarder.js'

/** `storeName`: the `SessionStore<K, VA>`. */
export interface SessionWindowAggregateOptions<K, V, VA> extends WindowAggregateCommonOptions {
  readonly windows: SessionWindows
  readonly initializer: Initializer<VA>
  readonly aggregator: Aggregator<K, V, VA>
  readonly merger: Merger<K, VA>
}

/**
 * Optional capability of a session store: all keys' sessions whose end is in
 * `[earliestSessionEndTime, latestSessionEndTime]`, ascending by end (Kafka Streams:
 * `SessionStore#findSessions(earliestSessionEndTime, latestSessionEndTime)`). Used by
 * emit-on-window-close; without it the processor scans `all()`.
 */
export interface SessionStoreWithEndTimeIndex<K, AGG> extends SessionStore<K, AGG> {
  findSessionsByEndTime(earliestSessionEndTime: number, latestSessionEndTime: number): AsyncIterable<KeyValue<Windowed<K>, AGG>>
}

/** Supplier of the session window aggregation processor. */
export function sessionWindowAggregateSupplier<K, V, VA>(
  options: SessionWindowAggregateOptions<K, V, VA>,
): ProcessorSupplier<K, V, Windowed<K>, Change<VA>> {
  return () => new SessionWindowAggregateProcessor(options)
}

class SessionWindowAggregateProcessor<K, V, VA> extends WindowAggregateProcessorBase<K, V, VA, SessionStore<K, VA>> {
  constructor(private readonly options: SessionWindowAggregateOptions<K, V, VA>) {
    super(options)
  }

  protected async processRecord(record: StreamRecord<K, V>): Promise<void> {
    const { windows, initializer, aggregator, merger } = this.options
    const gap = windows.inactivityGap()
    const t = record.timestamp
    const closeTime = this.observedStreamTime - windows.gracePeriodMs() - gap

    // Final results first: sessions closed by this record's stream-time cannot change any more.
    if (this.emitFinal) await this.maybeEmitFinal(record, closeTime)

    const merged: Array<KeyValue<Windowed<K>, VA>> = []
    let start = t
    let end = t
    let agg = initializer()
    for await (const session of this.store.findSessions(record.key, t - gap, t + gap)) {
      // A closed session is final (its result may be out): never merge into it, whether or not
      // the store has expired it yet.
      if (session.key.window.endMs < closeTime) continue
      merged.push(session)
      agg = merger(record.key, agg, session.value)
      start = Math.min(start, session.key.window.startMs)
      end = Math.max(end, session.key.window.endMs)
    }

    if (end < closeTime) {
      await this.dropLate(record, makeWindow(start, end))
    } else {
      const newSession = start !== t || end !== t
      if (newSession) {
        for (const session of merged) {
          await this.store.remove(session.key)
          await this.forwardSession(session.key, null, session.value, record)
        }
      }
      agg = aggregator(record.key, record.value, agg)
      const sessionKey: Windowed<K> = { key: record.key, window: makeWindow(start, end) }
      await this.store.put(sessionKey, agg)
      await this.forwardSession(sessionKey, agg, null, record)
    }
  }

  /** Sessions are forwarded with their end as the timestamp, from the cache's flush too. */
  protected override createForwarder(sendOldValues: boolean): SessionTupleForwarder<K, VA> {
    return new SessionTupleForwarder<K, VA>(this.store, this.context, sendOldValues)
  }

  private async forwardSession(key: Windowed<K>, newValue: VA | null, oldValue: VA | null, record: StreamRecord<K, V>): Promise<void> {
    await this.forwardUpdate({ key, value: { newValue, oldValue }, timestamp: key.window.endMs, headers: record.headers })
  }

  protected emitClosed(cause: Pick<StreamRecord<K, V>, 'headers'>): Promise<void> {
    return this.maybeEmitFinal(cause, this.observedStreamTime - this.options.windows.gracePeriodMs() - this.options.windows.inactivityGap())
  }

  private async maybeEmitFinal(record: Pick<StreamRecord<K, V>, 'headers'>, closeTime: number): Promise<void> {
    if (!this.tracker.progressed(closeTime)) return
    // Inclusive ends: sessions with end < closeTime are closed.
    const upper = closeTime - 1
    if (upper < 0) return
    const lower = Math.max(0, this.tracker.lastEmitCloseTime)
    if (upper < lower) return
    const startMs = performance.now()
    const closed: Array<KeyValue<Windowed<K>, VA>> = []
    const indexed = this.store as Partial<SessionStoreWithEndTimeIndex<K, VA>>
    const source = typeof indexed.findSessionsByEndTime === 'function' ? indexed.findSessionsByEndTime(lower, upper) : this.store.all()
    for await (const kv of source) {
      const endMs = kv.key.window.endMs
      if (endMs >= lower && endMs <= upper) closed.push(kv)
    }
    closed.sort((a, b) => a.key.window.endMs - b.key.window.endMs || a.key.window.startMs - b.key.window.startMs)
    for (const kv of closed) {
      await this.context.forward({
        key: kv.key,
        value: { newValue: kv.value, oldValue: null },
        timestamp: kv.key.window.endMs,
        headers: record.headers,
      })
    }
    recordFinalEmit(this.context, closed.length, startMs)
    await this.tracker.update(closeTime)
  }
}
