/**
 * Window specifications (Kafka Streams: `TimeWindows`, `SlidingWindows`, `SessionWindows`,
 * `JoinWindows`).
 *
 * All durations are milliseconds. All objects are immutable: every "modifier" (`advanceBy`,
 * `before`, `after`) returns a new object. Grace periods follow the explicit API of KIP-633
 * (`ofSizeWithNoGrace` / `ofSizeAndGrace`): there is no hidden 24-hour default grace as with Kafka
 * Streams' deprecated `of()` methods.
 *
 * Invalid arguments throw {@link TopologyError} naming the parameter.
 */
import { TopologyError } from '../errors.js'
import type { Window } from '../state/types.js'

export type { Window, Windowed } from '../state/types.js'

/** Largest safe millisecond duration; used where Kafka Streams uses `Long.MAX_VALUE`. */
export const MAX_WINDOW_TIME_MS = Number.MAX_SAFE_INTEGER

function checkDuration(name: string, value: number, opts: { allowZero: boolean; allowNegative?: boolean }): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || !Number.isInteger(value)) {
    throw new TopologyError(`${name} must be a finite integer number of milliseconds, got ${String(value)}`)
  }
  if (opts.allowNegative) return
  if (value < 0) throw new TopologyError(`${name} must not be negative, got ${value}`)
  if (!opts.allowZero && value === 0) throw new TopologyError(`${name} must be larger than zero, got ${value}`)
}

/** Creates a window `[startMs, endMs)` (or inclusive, for sliding/session windows) as a frozen object. */
export function windowOf(startMs: number, endMs: number): Window {
  return Object.freeze({ startMs, endMs })
}

/**
 * Fixed-size windows aligned to the epoch (Kafka Streams: `Windows<W>`): the common surface of
 * {@link TimeWindows}. A window covers `[start, start + size)`: start inclusive, end exclusive.
 */
export interface FixedSizeWindows {
  /** Window size in milliseconds. */
  size(): number
  /** Grace period in milliseconds: how long after a window's end out-of-order records are still accepted. */
  gracePeriodMs(): number
  /**
   * The windows a record with this timestamp falls into, keyed and sorted by window start.
   * @param timestamp event time in milliseconds (>= 0)
   */
  windowsFor(timestamp: number): Map<number, Window>
}

/**
 * Tumbling (`advance == size`) or hopping (`advance < size`) time windows
 * (Kafka Streams: `TimeWindows`; grace per KIP-633).
 *
 * Windows are aligned to the epoch: window starts are multiples of the advance, and are never
 * negative. A window `[start, start + size)` includes its start and excludes its end. A window is
 * closed, and later records for it are dropped (and counted), once
 * `start + size + grace <= streamTime`.
 *
 * @example
 * ```ts
 * const tumbling = TimeWindows.ofSizeWithNoGrace(60_000)
 * const hopping = TimeWindows.ofSizeAndGrace(300_000, 30_000).advanceBy(60_000)
 * ```
 */
export class TimeWindows implements FixedSizeWindows {
  /** Window size in milliseconds. */
  readonly sizeMs: number
  /** Advance (hop) in milliseconds; equals `sizeMs` for tumbling windows. */
  readonly advanceMs: number
  /** Grace period in milliseconds. */
  readonly graceMs: number

  private constructor(sizeMs: number, advanceMs: number, graceMs: number) {
    this.sizeMs = sizeMs
    this.advanceMs = advanceMs
    this.graceMs = graceMs
    Object.freeze(this)
  }

  /**
   * Tumbling windows of `sizeMs` with no grace period: a record is late as soon as stream-time has
   * reached its window's end.
   * @param sizeMs window size in milliseconds, > 0
   * @throws TopologyError if `sizeMs` is not a positive integer
   */
  static ofSizeWithNoGrace(sizeMs: number): TimeWindows {
    return TimeWindows.ofSizeAndGrace(sizeMs, 0)
  }

  /**
   * Tumbling windows of `sizeMs` that accept out-of-order records until stream-time passes
   * `windowEnd + graceMs` (KIP-633).
   * @param sizeMs window size in milliseconds, > 0
   * @param graceMs grace period in milliseconds, >= 0
   * @throws TopologyError naming `sizeMs` or `graceMs` when invalid
   */
  static ofSizeAndGrace(sizeMs: number, graceMs: number): TimeWindows {
    checkDuration('sizeMs', sizeMs, { allowZero: false })
    checkDuration('graceMs', graceMs, { allowZero: true })
    return new TimeWindows(sizeMs, sizeMs, graceMs)
  }

  /**
   * Hopping windows: a new window starts every `advanceMs` (a record then falls into
   * `size / advance` windows, fewer near the epoch).
   * @param advanceMs hop in milliseconds, `0 < advanceMs <= sizeMs`
   * @throws TopologyError naming `advanceMs` when not in `(0, sizeMs]`
   */
  advanceBy(advanceMs: number): TimeWindows {
    checkDuration('advanceMs', advanceMs, { allowZero: false })
    if (advanceMs > this.sizeMs) {
      throw new TopologyError(`advanceMs must be in (0, sizeMs=${this.sizeMs}], got ${advanceMs}`)
    }
    return new TimeWindows(this.sizeMs, advanceMs, this.graceMs)
  }

  /** Window size in milliseconds. */
  size(): number {
    return this.sizeMs
  }

  /** Grace period in milliseconds. */
  gracePeriodMs(): number {
    return this.graceMs
  }

  /** True when `advance == size`. */
  isTumbling(): boolean {
    return this.advanceMs === this.sizeMs
  }

  /**
   * Windows containing `timestamp`, i.e. every epoch-aligned `[start, start + size)` with
   * `start <= timestamp < start + size` and `start >= 0`, keyed by start in ascending order.
   * @param timestamp event time in milliseconds
   */
  windowsFor(timestamp: number): Map<number, Window> {
    const out = new Map<number, Window>()
    const first = Math.floor(Math.max(0, timestamp - this.sizeMs + this.advanceMs) / this.advanceMs) * this.advanceMs
    for (let start = first; start <= timestamp; start += this.advanceMs) {
      out.set(start, windowOf(start, start + this.sizeMs))
    }
    return out
  }

  /** Human-readable form, e.g. `TimeWindows{size=60000, advance=60000, grace=0}`. */
  toString(): string {
    return `TimeWindows{size=${this.sizeMs}, advance=${this.advanceMs}, grace=${this.graceMs}}`
  }
}

/**
 * Sliding windows (Kafka Streams: `SlidingWindows`, KIP-450): windows of a fixed time difference
 * that move with the records. Two records are in a common window when their timestamps differ by
 * at most `timeDifferenceMs`. Windows are inclusive of BOTH ends: `[start, start + timeDifference]`.
 *
 * Each record creates (at most) a "left" window `[t - d, t]` ending at it, and a "right" window
 * `[t + 1, t + 1 + d]` once a later record falls within `d` of it; only windows that contain at
 * least one record exist, so aggregates never contain empty windows.
 *
 * @example
 * ```ts
 * SlidingWindows.ofTimeDifferenceAndGrace(10_000, 5_000)
 * ```
 */
export class SlidingWindows {
  /** Maximum time difference between two records of one window, in milliseconds (the window size). */
  readonly timeDifferenceMs: number
  /** Grace period in milliseconds. */
  readonly graceMs: number

  private constructor(timeDifferenceMs: number, graceMs: number) {
    this.timeDifferenceMs = timeDifferenceMs
    this.graceMs = graceMs
    Object.freeze(this)
  }

  /**
   * Sliding windows with no grace period.
   * @param timeDifferenceMs maximum time difference in milliseconds, >= 0
   * @throws TopologyError naming `timeDifferenceMs` when invalid
   */
  static ofTimeDifferenceWithNoGrace(timeDifferenceMs: number): SlidingWindows {
    return SlidingWindows.ofTimeDifferenceAndGrace(timeDifferenceMs, 0)
  }

  /**
   * Sliding windows accepting out-of-order records until stream-time passes `windowEnd + graceMs`
   * (KIP-450, KIP-633).
   * @param timeDifferenceMs maximum time difference in milliseconds, >= 0
   * @param graceMs grace period in milliseconds, >= 0
   * @throws TopologyError naming `timeDifferenceMs` or `graceMs` when invalid
   */
  static ofTimeDifferenceAndGrace(timeDifferenceMs: number, graceMs: number): SlidingWindows {
    checkDuration('timeDifferenceMs', timeDifferenceMs, { allowZero: true })
    checkDuration('graceMs', graceMs, { allowZero: true })
    return new SlidingWindows(timeDifferenceMs, graceMs)
  }

  /** The time difference in milliseconds (windows span `timeDifferenceMs + 1` milliseconds, both ends included). */
  timeDifference(): number {
    return this.timeDifferenceMs
  }

  /** Grace period in milliseconds. */
  gracePeriodMs(): number {
    return this.graceMs
  }

  toString(): string {
    return `SlidingWindows{timeDifference=${this.timeDifferenceMs}, grace=${this.graceMs}}`
  }
}

/**
 * Session windows (Kafka Streams: `SessionWindows`): per-key windows of activity separated by at
 * least `inactivityGapMs` of inactivity. A session `[firstRecord, lastRecord]` is inclusive of both
 * ends; a record within `inactivityGapMs` of a session (on either side) joins it, and a record that
 * bridges two sessions merges them.
 *
 * @example
 * ```ts
 * SessionWindows.ofInactivityGapAndGrace(5 * 60_000, 60_000)
 * ```
 */
export class SessionWindows {
  /** Inactivity gap in milliseconds. */
  readonly gapMs: number
  /** Grace period in milliseconds. */
  readonly graceMs: number

  private constructor(gapMs: number, graceMs: number) {
    this.gapMs = gapMs
    this.graceMs = graceMs
    Object.freeze(this)
  }

  /**
   * Session windows with no grace period.
   * @param inactivityGapMs gap in milliseconds, > 0
   * @throws TopologyError naming `inactivityGapMs` when invalid
   */
  static ofInactivityGapWithNoGrace(inactivityGapMs: number): SessionWindows {
    return SessionWindows.ofInactivityGapAndGrace(inactivityGapMs, 0)
  }

  /**
   * Session windows accepting out-of-order records until stream-time passes
   * `sessionEnd + graceMs` (KIP-633).
   * @param inactivityGapMs gap in milliseconds, > 0
   * @param graceMs grace period in milliseconds, >= 0
   * @throws TopologyError naming `inactivityGapMs` or `graceMs` when invalid
   */
  static ofInactivityGapAndGrace(inactivityGapMs: number, graceMs: number): SessionWindows {
    checkDuration('inactivityGapMs', inactivityGapMs, { allowZero: false })
    checkDuration('graceMs', graceMs, { allowZero: true })
    return new SessionWindows(inactivityGapMs, graceMs)
  }

  /** Inactivity gap in milliseconds. */
  inactivityGap(): number {
    return this.gapMs
  }

  /** Grace period in milliseconds. */
  gracePeriodMs(): number {
    return this.graceMs
  }

  toString(): string {
    return `SessionWindows{gap=${this.gapMs}, grace=${this.graceMs}}`
  }
}

/**
 * Join windows for stream-stream joins (Kafka Streams: `JoinWindows`, grace per KIP-633).
 *
 * A record of the left stream with timestamp `t` joins right records with timestamps in
 * `[t - beforeMs, t + afterMs]` (both ends inclusive). `ofTimeDifference*` sets both to the same
 * value; `before()` / `after()` make the window asymmetric (either may be negative as long as
 * `before + after >= 0`). Out-of-order records are joined until stream-time passes the window
 * plus `graceMs`; left/outer joins emit unmatched records only after that.
 *
 * Kafka Streams' deprecated `JoinWindows.of(timeDifference)` (replaced by KIP-633 in 3.0) is not
 * provided: its grace (24 h minus twice the time difference) is easy to spell as
 * `ofTimeDifferenceAndGrace(ms, Math.max(86_400_000 - 2 * ms, 0))`, but it also switches left/outer
 * joins to the old eager results (an unmatched record is emitted at once, then again when matched;
 * `enableSpuriousResultFix = false`), a second emission mode the join does not have. Use
 * `ofTimeDifferenceAndGrace` or `ofTimeDifferenceWithNoGrace`.
 *
 * @example
 * ```ts
 * JoinWindows.ofTimeDifferenceAndGrace(60_000, 10_000).after(0) // right record up to 60s before
 * ```
 */
export class JoinWindows {
  /** How far before the left record's timestamp a right record may be, in milliseconds. */
  readonly beforeMs: number
  /** How far after the left record's timestamp a right record may be, in milliseconds. */
  readonly afterMs: number
  /** Grace period in milliseconds. */
  readonly graceMs: number

  private constructor(beforeMs: number, afterMs: number, graceMs: number) {
    if (beforeMs + afterMs < 0) {
      throw new TopologyError(
        `join window interval (beforeMs + afterMs) must not be negative, got beforeMs=${beforeMs}, afterMs=${afterMs}`,
      )
    }
    this.beforeMs = beforeMs
    this.afterMs = afterMs
    this.graceMs = graceMs
    Object.freeze(this)
  }

  /**
   * Symmetric join window `[t - timeDifferenceMs, t + timeDifferenceMs]` with no grace period.
   * @param timeDifferenceMs milliseconds, >= 0
   * @throws TopologyError naming `timeDifferenceMs` when invalid
   */
  static ofTimeDifferenceWithNoGrace(timeDifferenceMs: number): JoinWindows {
    return JoinWindows.ofTimeDifferenceAndGrace(timeDifferenceMs, 0)
  }

  /**
   * Symmetric join window `[t - timeDifferenceMs, t + timeDifferenceMs]` with a grace period.
   * @param timeDifferenceMs milliseconds, >= 0
   * @param graceMs grace period in milliseconds, >= 0
   * @throws TopologyError naming `timeDifferenceMs` or `graceMs` when invalid
   */
  static ofTimeDifferenceAndGrace(timeDifferenceMs: number, graceMs: number): JoinWindows {
    checkDuration('timeDifferenceMs', timeDifferenceMs, { allowZero: true })
    checkDuration('graceMs', graceMs, { allowZero: true })
    return new JoinWindows(timeDifferenceMs, timeDifferenceMs, graceMs)
  }

  /**
   * Returns a copy with the lower bound `t - beforeMs` (may be negative: the window then starts after `t`).
   * @throws TopologyError naming `beforeMs` when not an integer, or when `beforeMs + afterMs < 0`
   */
  before(beforeMs: number): JoinWindows {
    checkDuration('beforeMs', beforeMs, { allowZero: true, allowNegative: true })
    return new JoinWindows(beforeMs, this.afterMs, this.graceMs)
  }

  /**
   * Returns a copy with the upper bound `t + afterMs` (may be negative: the window then ends before `t`).
   * @throws TopologyError naming `afterMs` when not an integer, or when `beforeMs + afterMs < 0`
   */
  after(afterMs: number): JoinWindows {
    checkDuration('afterMs', afterMs, { allowZero: true, allowNegative: true })
    return new JoinWindows(this.beforeMs, afterMs, this.graceMs)
  }

  /** Window size `beforeMs + afterMs` in milliseconds. */
  size(): number {
    return this.beforeMs + this.afterMs
  }

  /** Grace period in milliseconds. */
  gracePeriodMs(): number {
    return this.graceMs
  }

  /**
   * The inclusive range `[timestamp - beforeMs, timestamp + afterMs]` of other-side timestamps that
   * join a left-side record at `timestamp` (for the right side, swap: `[t - afterMs, t + beforeMs]`).
   */
  joinRangeFor(timestamp: number, side: 'left' | 'right' = 'left'): { readonly fromMs: number; readonly toMs: number } {
    return side === 'left'
      ? { fromMs: timestamp - this.beforeMs, toMs: timestamp + this.afterMs }
      : { fromMs: timestamp - this.afterMs, toMs: timestamp + this.beforeMs }
  }

  toString(): string {
    return `JoinWindows{before=${this.beforeMs}, after=${this.afterMs}, grace=${this.graceMs}}`
  }
}
