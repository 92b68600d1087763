/**
 * Sensors: the hot-path half of the metrics. Recording touches plain number fields only (no clock
 * read, no allocation); rates and windowed avg/max/min are computed when a metric is READ, from
 * samples that roll at read time.
 *
 * Windowing approximates Kafka's `SampledStat` (`metrics.sample.window.ms` = 30 s,
 * `metrics.num.samples` = 2): the current sample collects records until a read finds it older
 * than one sample window; it is then closed and a new one starts. A read combines the current
 * sample with the closed samples younger than `numSamples` windows. Rates divide the windowed
 * count by the time the samples span, padded as Kafka pads it while fewer than `numSamples - 1`
 * samples are complete (so a fresh sensor does not report a burst as a huge rate).
 * A sensor nobody reads keeps one growing sample: memory stays bounded either way.
 */
import type { CountRecorder, ValueRecorder } from './types.js'

/** Window settings shared by the sensors of one registry. */
export interface SampleConfig {
  readonly sampleWindowMs: number
  readonly numSamples: number
  readonly clock: () => number
}

interface ClosedSample {
  readonly start: number
  readonly count: number
  readonly sum: number
  readonly max: number
  readonly min: number
}

/** Shared windowing of {@link CountSensor} and {@link ValueSensor}. */
abstract class WindowedSensor {
  /** Cumulative count since creation (`-total`). */
  total = 0
  // the current sample (plain fields: the hot path only touches these)
  protected count = 0
  protected sum = 0
  protected max = -Infinity
  protected min = Infinity
  private sampleStart: number
  private readonly closed: ClosedSample[] = []

  constructor(protected readonly config: SampleConfig) {
    this.sampleStart = config.clock()
  }

  /** Closes the current sample when it is a window old, and forgets samples out of the window. */
  private roll(now: number): void {
    const { sampleWindowMs, numSamples } = this.config
    if (now - this.sampleStart >= sampleWindowMs) {
      this.closed.push({ start: this.sampleStart, count: this.count, sum: this.sum, max: this.max, min: this.min })
      this.count = 0
      this.sum = 0
      this.max = -Infinity
      this.min = Infinity
      this.sampleStart = now
    }
    const oldest = now - numSamples * sampleWindowMs
    while (this.closed.length > 0 && (this.closed.length > numSamples - 1 || this.closed[0]!.start < oldest)) this.closed.shift()
  }

  /** Count, sum, max and min over the window ending now. */
  protected window(): { count: number; sum: number; max: number; min: number; spanMs: number } {
    const now = this.config.clock()
    this.roll(now)
    let { count, sum, max, min } = this
    for (const s of this.closed) {
      count += s.count
      sum += s.sum
      if (s.max > max) max = s.max
      if (s.min < min) min = s.min
    }
    const { sampleWindowMs, numSamples } = this.config
    const start = this.closed.length > 0 ? this.closed[0]!.start : this.sampleStart
    // Kafka's Rate#windowSize: pad with the missing full windows
    const spanMs = now - start + Math.max(0, numSamples - 1 - this.closed.length) * sampleWindowMs
    return { count, sum, max, min, spanMs }
  }

  /** Windowed count per second (`-rate`); 0 for an empty window. */
  rate(): number {
    const w = this.window()
    return w.spanMs > 0 ? (w.count * 1000) / w.spanMs : 0
  }
}

/** Counts occurrences (`-rate`, `-total`). */
export class CountSensor extends WindowedSensor implements CountRecorder {
  record(count = 1): void {
    this.total += count
    this.count += count
  }
}

/** Records values (`-avg`, `-max`, `-min`, and the rate/total of recordings). */
export class ValueSensor extends WindowedSensor implements ValueRecorder {
  record(value: number): void {
    this.total++
    this.count++
    this.sum += value
    if (value > this.max) this.max = value
    if (value < this.min) this.min = value
  }

  /** Records `count` values that averaged `value` (e.g. per-record latency of a batch). */
  recordMany(value: number, count: number): void {
    this.total += count
    this.count += count
    this.sum += value * count
    if (value > this.max) this.max = value
    if (value < this.min) this.min = value
  }

  /** Windowed average, `NaN` without samples (as Kafka's `Avg`). */
  avg(): number {
    const w = this.window()
    return w.count > 0 ? w.sum / w.count : NaN
  }

  /** Windowed maximum, `NaN` without samples (as Kafka's `Max`). */
  maxValue(): number {
    const w = this.window()
    return w.count > 0 ? w.max : NaN
  }

  /** Windowed minimum, `NaN` without samples (as Kafka's `Min`). */
  minValue(): number {
    const w = this.window()
    return w.count > 0 ? w.min : NaN
  }
}

/** Records the latest value only (a gauge fed by pushes, e.g. `records-lag`). */
export class LastValueSensor extends ValueSensor {
  last = NaN
  override record(value: number): void {
    this.last = value
    super.record(value)
  }
}
