/**
 * In-process metrics of a Node worker: V8 heap peak (sampled every 200 ms) and event-loop delay
 * (`perf_hooks.monitorEventLoopDelay`, 10 ms resolution), both from the first input record on.
 */
import { writeFileSync, mkdirSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import path from 'node:path'
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import { emit } from './proc.js'

/**
 * When set (by `npm run bench -- ... --cpu-prof`), the V8 CPU profile of the measured phase only
 * (first record → stop) is written to this file, without start-up and module loading.
 */
const PROFILE_FILE = process.env.KBENCH_CPU_PROFILE

/** What a Node worker reports in its `stats` message. */
export interface WorkerStats {
  heapPeakBytes: number
  /** Event-loop delay p99 over the measured phase, ms. */
  eldP99Ms: number
  eldMaxMs: number
}

export class WorkerMetrics {
  private eld: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 })
  private heapPeak = 0
  private timer: NodeJS.Timeout | undefined
  private firstAt = 0
  private profiler: Session | undefined

  /** Marks the first input record: emits `first` once and starts measuring. */
  first(): void {
    if (this.firstAt !== 0) return
    this.firstAt = Date.now()
    emit({ type: 'first', t: this.firstAt })
    if (PROFILE_FILE) {
      const session = new Session()
      session.connect()
      this.profiler = session
      void session.post('Profiler.enable').then(() => session.post('Profiler.start'))
    }
    this.eld.enable()
    const sample = () => {
      const used = process.memoryUsage().heapUsed
      if (used > this.heapPeak) this.heapPeak = used
    }
    sample()
    this.timer = setInterval(sample, 200)
    this.timer.unref()
  }

  get started(): boolean {
    return this.firstAt !== 0
  }

  /** Writes the measured phase's CPU profile, if one is being taken. */
  async writeProfile(): Promise<void> {
    const session = this.profiler
    if (!session || !PROFILE_FILE) return
    this.profiler = undefined
    const { profile } = await session.post('Profiler.stop')
    mkdirSync(path.dirname(PROFILE_FILE), { recursive: true })
    writeFileSync(PROFILE_FILE, JSON.stringify(profile))
    session.disconnect()
  }

  /** Stops measuring and returns the numbers. */
  stats(): WorkerStats {
    if (this.timer) clearInterval(this.timer)
    this.eld.disable()
    const ms = (ns: number) => (Number.isFinite(ns) ? ns / 1e6 : 0)
    return {
      heapPeakBytes: this.heapPeak,
      eldP99Ms: this.eld.count > 0 ? ms(this.eld.percentile(99)) : 0,
      eldMaxMs: this.eld.count > 0 ? ms(this.eld.max) : 0,
    }
  }
}
