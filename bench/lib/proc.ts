/**
 * Runs one measured workload in its own process (Node worker or the Java reference) and watches
 * it from outside: CPU time and RSS sampled from /proc every 200 ms, events read from stdout.
 *
 * Worker protocol (both languages): the worker prints lines `@@bench {json}` on stdout —
 * `{"type":"ready","t":ms}` when it is running (group joined / state RUNNING),
 * `{"type":"first","t":ms}` when the first input record reaches its processing code,
 * `{"type":"done",...}` when a self-terminating workload finishes,
 * `{"type":"stats",...}` (heap peak, event-loop delay) right before it exits after a `stop` line
 * on stdin (or stdin closing). Any other output goes to the run's log file.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { createWriteStream, readFileSync, readdirSync, type WriteStream } from 'node:fs'
import { createInterface } from 'node:readline'

/** Line prefix of protocol messages. */
export const PROTOCOL_PREFIX = '@@bench '

/** Writes one protocol message (used by Node workers). */
export function emit(message: Record<string, unknown>): void {
  process.stdout.write(PROTOCOL_PREFIX + JSON.stringify(message) + '\n')
}

let clockTicks: number | undefined
/** Kernel clock ticks per second (`getconf CLK_TCK`, normally 100). */
export function clkTck(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  return clockTicks
}

/** One /proc sample of a process. */
export interface ProcSample {
  t: number
  /** utime + stime, clock ticks. */
  cpuTicks: number
  rssBytes: number
}

/** Reads CPU ticks and RSS of `pid` from /proc; undefined once it is gone (or off Linux). */
export function sampleProc(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the parenthesised command name: state is field 3; utime 14, stime 15, rss 24.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const utime = Number(rest[11])
    const stime = Number(rest[12])
    const rssPages = Number(rest[21])
    return { t: Date.now(), cpuTicks: utime + stime, rssBytes: rssPages * 4096 }
  } catch {
    return undefined
  }
}

/** Samples a process every `intervalMs` until stopped. */
export class ProcSampler {
  readonly samples: ProcSample[] = []
  private timer: NodeJS.Timeout | undefined

  constructor(
    readonly pid: number,
    intervalMs = 200,
  ) {
    const take = () => {
      const s = sampleProc(pid)
      if (s) this.samples.push(s)
    }
    take()
    this.timer = setInterval(take, intervalMs)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }

  /** CPU use between two instants as % of one core (100 = one core busy), from the nearest samples. */
  cpuPercent(from: number, to: number): number | undefined {
    const inside = this.samples.filter((s) => s.t >= from - 100 && s.t <= to + 100)
    if (inside.length < 2) return undefined
    const a = inside[0]!
    const b = inside[inside.length - 1]!
    if (b.t <= a.t) return undefined
    return (((b.cpuTicks - a.cpuTicks) / clkTck()) * 1000 * 100) / (b.t - a.t)
  }

  /** Peak RSS over the samples taken in [from, to] (all samples when omitted). */
  peakRss(from = 0, to = Number.POSITIVE_INFINITY): number | undefined {
    let peak: number | undefined
    for (const s of this.samples) if (s.t >= from && s.t <= to && (peak === undefined || s.rssBytes > peak)) peak = s.rssBytes
    return peak
  }
}

/** Finds the pid of a local process with `arg` as one of its arguments (e.g. `kafka.Kafka`, the broker's main class). */
export function findPid(arg: string): number | undefined {
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue
      try {
        const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0')
        if (cmd.includes(arg)) return Number(entry)
      } catch {
        /* gone */
      }
    }
  } catch {
    /* no /proc */
  }
  return undefined
}

/** A protocol message from a worker, with the harness's receive time. */
export interface WorkerMessage {
  type: string
  t?: number
  [field: string]: unknown
}

/** A running worker process. */
export class Worker {
  readonly messages: WorkerMessage[] = []
  readonly sampler: ProcSampler
  readonly exited: Promise<number | null>
  private waiters: Array<() => void> = []
  private log: WriteStream
  private exitCode: number | null | undefined

  private constructor(
    readonly child: ChildProcess,
    logFile: string,
    readonly label: string,
  ) {
    this.log = createWriteStream(logFile, { flags: 'a' })
    this.sampler = new ProcSampler(child.pid!)
    const lines = createInterface({ input: child.stdout! })
    lines.on('line', (line) => {
      if (line.startsWith(PROTOCOL_PREFIX)) {
        try {
          this.messages.push(JSON.parse(line.slice(PROTOCOL_PREFIX.length)) as WorkerMessage)
        } catch {
          this.log.write(`(bad protocol line) ${line}\n`)
        }
        this.wake()
      } else {
        this.log.write(line + '\n')
      }
    })
    child.stderr!.on('data', (chunk: Buffer) => this.log.write(chunk))
    this.exited = new Promise((resolve) => {
      child.on('exit', (code) => {
        this.exitCode = code
        this.sampler.stop()
        this.wake()
        resolve(code)
      })
    })
  }

  /** Spawns `command args`, logging its non-protocol output to `logFile`. */
  static spawn(command: string, args: string[], logFile: string, label: string, env?: NodeJS.ProcessEnv): Worker {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env })
    if (child.pid === undefined) throw new Error(`could not start ${command}`)
    child.stdin!.on('error', () => {})
    return new Worker(child, logFile, label)
  }

  get pid(): number {
    return this.child.pid!
  }

  /** True once the process has exited. */
  get hasExited(): boolean {
    return this.exitCode !== undefined
  }

  /** The first message of a type, if received. */
  message(type: string): WorkerMessage | undefined {
    return this.messages.find((m) => m.type === type)
  }

  /**
   * Waits for a message of `type`.
   * @throws Error when the worker exits first (with its exit code) or after `timeoutMs`.
   */
  async waitFor(type: string, timeoutMs: number): Promise<WorkerMessage> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = this.message(type)
      if (found) return found
      const failed = this.message('error')
      if (failed) throw new Error(`${this.label} failed: ${String(failed.message)}`)
      if (this.hasExited) throw new Error(`${this.label} exited (code ${this.exitCode}) before '${type}'`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`${this.label}: no '${type}' within ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1000))
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** Asks the worker to stop (stdin `stop`), waits up to `graceMs`, then kills it. */
  async stop(graceMs = 60_000): Promise<void> {
    if (this.hasExited) return
    this.child.stdin!.write('stop\n')
    this.child.stdin!.end()
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs)
    await this.exited
    clearTimeout(timer)
    this.log.end()
  }

  /** Kills the worker at once. */
  async kill(): Promise<void> {
    if (!this.hasExited) this.child.kill('SIGKILL')
    await this.exited
    this.log.end()
  }

  private wake(): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }
}

/** Resolves when the harness's stdin says `stop` or closes (for Node workers). */
export function onStopRequest(handler: () => void): void {
  let fired = false
  const fire = () => {
    if (!fired) {
      fired = true
      handler()
    }
  }
  process.stdin.setEncoding('utf8')
  process.stdin.on('data', (chunk: string) => {
    if (chunk.includes('stop')) fire()
  })
  process.stdin.on('end', fire)
  process.stdin.on('error', fire)
}
