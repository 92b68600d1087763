/**
 * Application instances of the fault scenarios: each one a child PROCESS of an app under test
 * (test/eos/app.ts by default, or any script taking the same environment), as on separate hosts:
 * its own state directory, its own log file.
 *
 * Every line the child prints (JSON events on stdout, the library's warnings and errors on
 * stderr) is written to `<logDir>/<name>.log` prefixed with the wall-clock time it arrived
 * (`HH:MM:SS.mmm`, UTC), so a loss found by the verifier can be traced to the commit, error and
 * rebalance that caused it.
 *
 * A DEATH is an exit the harness did not ask for, or the client reaching state ERROR (the process
 * stays alive then; kstreams' default uncaught-exception response closes the client). The pass
 * criterion of the fault matrix is zero deaths. With `supervise`, a dead instance is restarted
 * (SIGTERM/SIGKILL, then a new process on the same state directory), as an operator's supervisor
 * would: that is how issue 16 was seen, and it lets a run go on to the verifier.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { stamp, waitFor } from './clock.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const EOS_APP = path.join(ROOT, 'test/eos/app.ts')

/** One JSON line the child printed on stdout (see test/eos/app.ts). */
export interface AppEvent {
  readonly ev: string
  readonly t: number
  readonly run: number
  readonly [k: string]: unknown
}

/** An instance death: an unrequested exit, or the client in ERROR. */
export interface Death {
  readonly instance: string
  readonly t: number
  readonly kind: 'exit' | 'error-state'
  /** Exit code (128 + signal) or the last error the instance reported. */
  readonly detail: string
}

/** Options of an {@link AppInstance}. */
export interface InstanceOptions {
  /** The script to run with `node --import tsx`. @defaultValue test/eos/app.ts */
  readonly script?: string
  /** Working directory of the child (the root of the code version it runs). @defaultValue the repository */
  readonly cwd?: string
  /** Environment of the app (BROKERS, APP_ID, topics, GUARANTEE, ...); STATE_DIR is added. */
  readonly env: Record<string, string>
  /** Directory of the log file. */
  readonly logDir: string
  /** State directory; a fresh temporary one when absent (removed by {@link AppInstance.dispose}). */
  readonly stateDir?: string
  /** Command prefix, e.g. `['ip', 'netns', 'exec', 'ns1']` to run the instance in a network namespace. */
  readonly prefix?: ReadonlyArray<string>
  /** Restart the instance after a death (an operator's supervisor). @defaultValue false */
  readonly supervise?: boolean
  /** Milliseconds between a death and the supervisor's restart. @defaultValue 1000 */
  readonly restartDelayMs?: number
}

/** Instances not disposed yet (for an interrupted run's cleanup). */
export const liveInstances = new Set<AppInstance>()

/** A restartable child-process instance. */
export class AppInstance {
  readonly events: AppEvent[] = []
  readonly deaths: Death[] = []
  readonly exits: number[] = []
  #proc: ChildProcess | undefined
  #exit: Promise<number> = Promise.resolve(0)
  #runs = 0
  #log: WriteStream
  #stopping = false
  #lastError = ''
  #restartTimer: NodeJS.Timeout | undefined
  /** A process the supervisor is ending (its exit is no new death). */
  #replacing: ChildProcess | undefined
  /** The run that died last (its later exit is the same death). */
  #deadRun = 0
  #ownsStateDir: boolean

  private constructor(
    readonly name: string,
    readonly stateDir: string,
    readonly options: InstanceOptions,
    ownsStateDir: boolean,
  ) {
    this.#ownsStateDir = ownsStateDir
    this.#log = createWriteStream(path.join(options.logDir, `${name}.log`), { flags: 'a' })
    liveInstances.add(this)
  }

  /** Creates (does not start) an instance. */
  static async create(name: string, options: InstanceOptions): Promise<AppInstance> {
    await fs.mkdir(options.logDir, { recursive: true })
    const stateDir = options.stateDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), `kstreams-chaos-${name}-`)))
    return new AppInstance(name, stateDir, options, options.stateDir === undefined)
  }

  get logFile(): string {
    return path.join(this.options.logDir, `${this.name}.log`)
  }

  get pid(): number | undefined {
    return this.#proc?.pid
  }

  get running(): boolean {
    return this.#proc !== undefined && this.#proc.exitCode === null && this.#proc.signalCode === null
  }

  /** Events of the current run. */
  get currentRun(): AppEvent[] {
    return this.events.filter((e) => e.run === this.#runs)
  }

  /** The client's last state in the current run (from `state` events). */
  get state(): string | undefined {
    const s = this.currentRun.filter((e) => e.ev === 'state')
    return s.length ? String(s[s.length - 1]!.now) : undefined
  }

  /** Writes a line of the harness itself (fault start/end, restarts) into this instance's log. */
  note(line: string): void {
    this.#log.write(`${stamp()} [harness] ${line}\n`)
  }

  /** Starts a new run. */
  start(): this {
    if (this.running) throw new Error(`${this.name} is already running`)
    this.#stopping = false
    const run = ++this.#runs
    const script = this.options.script ?? EOS_APP
    const argv = [...(this.options.prefix ?? []), process.execPath, '--import', 'tsx', script]
    const proc = spawn(argv[0]!, argv.slice(1), {
      cwd: this.options.cwd ?? ROOT,
      env: { ...process.env, KSTREAMS_CRASH_AT: '', ...this.options.env, STATE_DIR: this.stateDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.#proc = proc
    this.note(`run ${run} started (pid ${proc.pid})`)
    const lines = (stream: NodeJS.ReadableStream, onLine: (line: string) => void): void => {
      let buf = ''
      stream.setEncoding('utf8')
      stream.on('data', (d: string) => {
        buf += d
        let nl: number
        while ((nl = buf.indexOf('\n')) >= 0) {
          onLine(buf.slice(0, nl))
          buf = buf.slice(nl + 1)
        }
      })
    }
    lines(proc.stdout!, (line) => {
      this.#log.write(`${stamp()} ${line}\n`)
      let e: AppEvent
      try {
        e = { ...(JSON.parse(line) as AppEvent), run }
      } catch {
        return
      }
      this.events.push(e)
      if (e.ev === 'error' && typeof e.message === 'string') this.#lastError = e.message
      if (e.ev === 'state' && e.now === 'ERROR' && !this.#stopping) this.#died('error-state', this.#lastError)
    })
    lines(proc.stderr!, (line) => {
      this.#log.write(`${stamp()} ${line}\n`)
      // the runtime's own errors; kafkajs' protocol-level lines are context, not the cause
      if (line.startsWith('[error]') && !line.startsWith('[error] [kafkajs')) this.#lastError = line.slice(0, 300)
    })
    this.#exit = new Promise<number>((resolve) =>
      proc.once('exit', (code, sig) => {
        const c = code ?? 128 + (sig ? os.constants.signals[sig] : 0)
        this.exits.push(c)
        this.note(`run ${run} exited (${code ?? sig})`)
        // a client in ERROR leaves nothing on the event loop, so node exits (0) by itself: one death, not two
        if (!this.#stopping && this.#proc === proc && this.#replacing !== proc && this.#deadRun !== run)
          this.#died('exit', `exit ${c}; last error: ${this.#lastError}`)
        resolve(c)
      }),
    )
    return this
  }

  #died(kind: Death['kind'], detail: string): void {
    this.#deadRun = this.#runs
    this.deaths.push({ instance: this.name, t: Date.now(), kind, detail })
    this.note(`DEATH (${kind}): ${detail}`)
    if (!this.options.supervise || this.#restartTimer) return
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined
      void this.#replace()
    }, this.options.restartDelayMs ?? 1000)
  }

  /** The supervisor's restart: ends a process left in ERROR (SIGTERM, SIGKILL after 10 s), starts a new run. */
  async #replace(): Promise<void> {
    if (this.#stopping) return
    if (this.running) {
      const proc = this.#proc!
      this.#replacing = proc
      proc.kill('SIGTERM')
      await this.waitExit(10_000).catch(async () => {
        proc.kill('SIGKILL')
        await this.waitExit(10_000).catch(() => undefined)
      })
    }
    if (this.#stopping) return
    this.note('supervisor: restarting')
    this.start()
  }

  /** Sends a signal to the current process. */
  signal(sig: NodeJS.Signals): void {
    if (this.running) this.#proc!.kill(sig)
  }

  /** Waits for the current run to exit. */
  async waitExit(timeoutMs: number): Promise<number> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name} did not exit within ${timeoutMs} ms`)), timeoutMs)
    })
    try {
      return await Promise.race([this.#exit, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Graceful stop (SIGTERM; SIGKILL after `timeoutMs`); no supervisor restart. Returns the exit code. */
  async stop(timeoutMs = 45_000): Promise<number> {
    this.#stopping = true
    clearTimeout(this.#restartTimer)
    this.#restartTimer = undefined
    if (!this.running) return this.exits.at(-1) ?? 0
    this.signal('SIGCONT')
    this.signal('SIGTERM')
    try {
      return await this.waitExit(timeoutMs)
    } catch {
      this.note(`no exit ${timeoutMs} ms after SIGTERM: SIGKILL`)
      await this.kill()
      return this.exits.at(-1) ?? 137
    }
  }

  /** SIGCONT + SIGKILL; no supervisor restart. */
  async kill(): Promise<void> {
    this.#stopping = true
    clearTimeout(this.#restartTimer)
    this.#restartTimer = undefined
    if (!this.running) return
    this.signal('SIGCONT')
    this.signal('SIGKILL')
    await this.waitExit(10_000).catch(() => undefined)
  }

  /** Waits until the current run reached RUNNING. */
  async waitRunning(timeoutMs = 90_000): Promise<void> {
    await waitFor(
      `${this.name} RUNNING`,
      () => this.state === 'RUNNING',
      timeoutMs,
      () => `state ${this.state}; see ${this.logFile}`,
      100,
    )
  }

  /** Kills the process, closes the log and removes a temporary state directory. */
  async dispose(): Promise<void> {
    liveInstances.delete(this)
    await this.kill()
    await new Promise<void>((r) => this.#log.end(r))
    if (this.#ownsStateDir) await fs.rm(this.stateDir, { recursive: true, force: true })
  }
}

/** Every death of `instances`, by time. */
export function allDeaths(instances: ReadonlyArray<AppInstance>): Death[] {
  return instances.flatMap((i) => i.deaths).sort((a, b) => a.t - b.t)
}
