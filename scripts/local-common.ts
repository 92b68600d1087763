/**
 * Shared plumbing for the local Kafka broker and schema registry scripts
 * (`scripts/local-kafka.ts`, `scripts/local-registry.ts`): where the cache lives, resolving
 * artifacts with Maven, pid files, a cross-process start lock, port probes and waiting.
 *
 * Nothing here is part of the kstreams package; it only serves tests, demos and benchmarks.
 */
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root (the folder holding package.json). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/**
 * The git-ignored cache folder for jars, extracted apps, broker data and logs.
 * @defaultValue `KSTREAMS_CACHE_DIR`, else `<repo>/.cache`
 */
export function cacheDir(): string {
  return path.resolve(process.env.KSTREAMS_CACHE_DIR ?? path.join(REPO_ROOT, '.cache'))
}

/**
 * The Maven local repository the scripts resolve into (kept inside the cache so that
 * deleting `.cache/` gives a truly cold start).
 * @defaultValue `KSTREAMS_MAVEN_REPO`, else `<cache>/m2`
 */
export function mavenRepo(): string {
  return path.resolve(process.env.KSTREAMS_MAVEN_REPO ?? path.join(cacheDir(), 'm2'))
}

/** The java executable: `$JAVA_HOME/bin/java` when JAVA_HOME is set, else `java` from PATH. */
export function javaBin(): string {
  const home = process.env.JAVA_HOME
  if (home && existsSync(path.join(home, 'bin', 'java'))) return path.join(home, 'bin', 'java')
  return 'java'
}

/** A logger that writes one prefixed line to stderr. */
export type Log = (message: string) => void

/** Builds the default logger of a script: `[prefix] message` on stderr. */
export function stderrLog(prefix: string): Log {
  return (message) => process.stderr.write(`[${prefix}] ${message}\n`)
}

/** Milliseconds as seconds with one decimal, e.g. `4.2 s`. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`
}

/** Reads a positive integer port from an environment variable. */
export function envPort(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const port = Number(raw)
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`${name}=${JSON.stringify(raw)} is not a TCP port (1..65535)`)
  }
  return port
}

/**
 * Runs a command to completion, capturing its output.
 * @throws Error with the command, exit code and the last 40 lines of output when it fails, or a
 *   clear "not found" message when the executable is missing.
 */
export function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; missingHint?: string } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        reject(new Error(`'${command}' was not found on PATH.${options.missingHint ? ` ${options.missingHint}` : ''}`))
      } else {
        reject(err)
      }
    })
    child.on('close', (code, signal) => {
      if (code === 0) resolve(output)
      else {
        const lastLines = output.trimEnd().split('\n').slice(-40).join('\n')
        reject(new Error(`'${command} ${args.join(' ')}' failed (${signal ?? `exit ${code}`}):\n${lastLines}`))
      }
    })
  })
}

/** Hint added to errors when Java or Maven is missing. */
export const JAVA_HINT =
  'The embedded broker and registry need Java 17+ and Maven 3 (apt-get install openjdk-17-jdk-headless maven); ' +
  'or point kstreams at a running cluster with KAFKA_BROKERS / SCHEMA_REGISTRY_URL (see docker/docker-compose.yml).'

/**
 * Runs Maven in batch/quiet mode against the cache's local repository.
 * @param args goals and `-D` properties.
 */
export function runMaven(args: string[], cwd?: string): Promise<string> {
  return run('mvn', ['-B', '-q', `-Dmaven.repo.local=${mavenRepo()}`, ...args], {
    cwd,
    missingHint: JAVA_HINT,
  })
}

/** The Maven dependency plugin, pinned so the goals and their parameters do not drift. */
export const DEPENDENCY_PLUGIN = 'org.apache.maven.plugins:maven-dependency-plugin:3.8.1'

/** True while a process with this pid exists (EPERM counts as existing). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * The command line of a live process, or undefined where /proc is not available
 * (then callers trust the pid file alone).
 */
export function commandLineOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ')
  } catch {
    return undefined
  }
}

/**
 * True if `pid` is alive AND (where /proc exists) its command line contains `marker`,
 * which guards against a stale pid file whose number the OS has handed to another process.
 */
export function isOurProcess(pid: number, marker: string): boolean {
  if (!isAlive(pid)) return false
  const cmdline = commandLineOf(pid)
  if (cmdline === undefined) return existsSync('/proc') ? false : true
  return cmdline.includes(marker)
}

/** Reads a pid file; undefined when it is missing or does not hold a number. */
export async function readPidFile(file: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(file, 'utf8')).trim())
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

/**
 * Reads a pid file that holds one pid per line (a cluster of processes: line i is node i + 1;
 * `0` marks a node that is down). Returns the line values in order, `0` for a line that is not a
 * pid; `[]` when the file is missing. A single-process service's file is one line.
 */
export async function readPidLines(file: string): Promise<number[]> {
  const text = await readFile(file, 'utf8').catch(() => undefined)
  if (text === undefined) return []
  return text
    .trim()
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const pid = Number(line.trim())
      return Number.isInteger(pid) && pid > 0 ? pid : 0
    })
}

/**
 * Sets line `index` (0-based) of the pid file of the service in `runDir` to `pid` (`0`: that
 * process is down), under the service's lock; used when one node of a cluster is stopped or
 * restarted so that stopping the service still finds every live node.
 */
export async function setPidLine(runDir: string, index: number, pid: number): Promise<void> {
  const files = runFiles(runDir)
  await withLock(files.lock, async () => {
    const lines = await readPidLines(files.pid)
    while (lines.length <= index) lines.push(0)
    lines[index] = pid
    await writeFile(files.pid, lines.join('\n'))
  })
}

/** The live pids of `file` ({@link readPidLines}) whose command line contains `marker`. */
export async function ourLivePids(file: string, marker: string): Promise<number[]> {
  return (await readPidLines(file)).filter((pid) => pid > 0 && isOurProcess(pid, marker))
}

/** {@link terminate} for several processes at once; returns one outcome per pid. */
export function terminateAll(pids: number[], graceMs = 30_000): Promise<Array<'terminated' | 'killed' | 'not-running'>> {
  return Promise.all(pids.map((pid) => terminate(pid, graceMs)))
}

/** Sends SIGTERM, waits up to `graceMs` for the process to exit, then SIGKILLs it. */
export async function terminate(pid: number, graceMs = 30_000): Promise<'terminated' | 'killed' | 'not-running'> {
  if (!isAlive(pid)) return 'not-running'
  try {
    process.kill(pid, 'SIGTERM')
    // A frozen (SIGSTOPped) process only acts on the SIGTERM once continued.
    process.kill(pid, 'SIGCONT')
  } catch {
    return 'not-running'
  }
  const deadline = Date.now() + graceMs
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return 'terminated'
    await sleep(100)
  }
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    /* exited meanwhile */
  }
  while (isAlive(pid)) await sleep(50)
  return 'killed'
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** True if something accepts TCP connections on host:port. */
export function portOpen(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host })
    const done = (open: boolean) => {
      socket.destroy()
      resolve(open)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

/**
 * Polls `probe` every `intervalMs` until it returns true or `timeoutMs` passes.
 * `abort` is checked on each round; when it returns a message, waiting stops with that error.
 * @returns true if the probe succeeded in time.
 */
export async function waitUntil(
  probe: () => Promise<boolean>,
  options: { timeoutMs: number; intervalMs?: number; abort?: () => string | undefined },
): Promise<boolean> {
  const deadline = Date.now() + options.timeoutMs
  for (;;) {
    const reason = options.abort?.()
    if (reason !== undefined) throw new Error(reason)
    if (await probe()) return true
    if (Date.now() >= deadline) return false
    await sleep(options.intervalMs ?? 250)
  }
}

/**
 * Runs `fn` while holding a cross-process lock (a directory created atomically, holding the
 * owner's pid). A lock whose owner process is gone is taken over. Waits up to `timeoutMs`.
 */
export async function withLock<T>(lockDir: string, fn: () => Promise<T>, timeoutMs = 600_000): Promise<T> {
  await mkdir(path.dirname(lockDir), { recursive: true })
  const ownerFile = path.join(lockDir, 'owner')
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      await mkdir(lockDir)
      await writeFile(ownerFile, String(process.pid))
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const owner = await readPidFile(ownerFile)
      // No owner file yet: the owner is between mkdir and writeFile, or it died there.
      const stale = owner === undefined ? await olderThan(lockDir, 10_000) : !isAlive(owner)
      if (stale) {
        await rm(lockDir, { recursive: true, force: true })
        continue
      }
      if (Date.now() >= deadline) throw new Error(`Timed out waiting for lock ${lockDir} held by pid ${owner}`)
      await sleep(200)
    }
  }
  try {
    return await fn()
  } finally {
    await rm(lockDir, { recursive: true, force: true })
  }
}

async function olderThan(file: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(file)).mtimeMs > ms
  } catch {
    return true
  }
}

/** The last `lines` lines of a text file ('' if it cannot be read). */
export function tailOf(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return ''
  }
}

/** The command word of a script's CLI (`start`, `stop`, `status`), checked. */
export function cliCommand(argv: string[], usage: string): 'start' | 'stop' | 'status' {
  const command = argv[2] ?? 'start'
  if (command === 'start' || command === 'stop' || command === 'status') return command
  process.stderr.write(`${usage}\n`)
  process.exit(2)
}

/** True when the module at `metaUrl` is the process's entry point (run via `tsx file.ts`). */
export function isMain(metaUrl: string): boolean {
  const entry = process.argv[1]
  return entry !== undefined && path.resolve(entry) === fileURLToPath(metaUrl)
}

/**
 * How a locally started service is owned:
 * - `auto`: started by `ensureKafka()` / `ensureRegistry()` for a test run or demo; stopped when the
 *   last process that leased it calls `stop()`;
 * - `pinned`: started (or adopted) by `npm run kafka:start` / `registry:start`; runs until the
 *   matching `:stop` command.
 */
export type ServiceMode = 'auto' | 'pinned'

/** What `ensureService` needs to know about one kind of local service. */
export interface ServiceSpec {
  /** Human name for messages, e.g. `Kafka 3.9.2 broker`. */
  name: string
  /** Folder for the pid file, mode, leases and the start lock of this instance (one per port). */
  runDir: string
  /** The address users connect to, for messages. */
  address: string
  /** The TCP port that must be free before starting. */
  port: number
  /** Every TCP port that must be free before starting, when there are several. @defaultValue `[port]` */
  ports?: number[]
  /** Text that the process's command line contains (guards against recycled pids). */
  marker: string
  /** True if the service answers at `address`. Must not throw. */
  probe(): Promise<boolean>
  /**
   * Prepares (resolving artifacts if needed) and spawns the process; returns its pid at once, or
   * the pids of all its processes (a cluster: one per node, in node order). When it throws after
   * spawning some processes, it stops them first.
   */
  launch(): Promise<number | number[]>
  /** A log file whose tail explains a failed start. */
  logFile: string
  /** How long to wait for the launched process to answer. */
  startTimeoutMs: number
  /** Milliseconds between SIGTERM and SIGKILL when stopping. @defaultValue 30000 */
  stopGraceMs?: number
  log: Log
}

/** A lease on a running local service, returned by `ensureService`. */
export interface ServiceHandle {
  /** True if this call launched the process. */
  started: boolean
  /** Pid of the process when it was started by these scripts (this call or an earlier one). */
  pid: number | undefined
  /** Every live pid of the service (one per node of a cluster); `[]` when not started by these scripts. */
  pids: number[]
  /** Milliseconds from launch until it answered (only when `started`). */
  startMs: number | undefined
  /**
   * Releases this lease. Stops the process if it was started in `auto` mode and no other live
   * process holds a lease on it. Idempotent.
   */
  stop(): Promise<void>
}

let leaseCounter = 0

/**
 * Makes sure one local service answers: reuses a running one (whoever started it), cleans up a
 * stale pid file, waits for or replaces an unresponsive process it started earlier, and otherwise
 * launches a new one. Serialised across processes by a lock in `spec.runDir`.
 *
 * A service may be several processes (a Kafka cluster: one JVM per node). Its pid file then holds
 * one pid per line; it counts as running while any of them is alive, and stopping it stops all.
 */
export async function ensureService(spec: ServiceSpec, mode: ServiceMode): Promise<ServiceHandle> {
  const files = runFiles(spec.runDir)
  await mkdir(files.leases, { recursive: true })
  return withLock(files.lock, async () => {
    let pids = await ourLivePids(files.pid, spec.marker)
    const recorded = (await readPidLines(files.pid)).filter((pid) => pid > 0)
    if (recorded.length > 0 && pids.length === 0) {
      spec.log(`removing stale pid file ${files.pid} (pid ${recorded.join(', ')} ${recorded.length === 1 ? 'is' : 'are'} gone)`)
      await rm(files.pid, { force: true })
      await rm(files.mode, { force: true })
    }

    if (await spec.probe()) {
      if (pids.length > 0 && mode === 'pinned') await writeFile(files.mode, mode)
      return lease(spec, files, { started: false, pids, startMs: undefined })
    }

    if (pids.length > 0) {
      const livePids = pids
      spec.log(`pid ${livePids.join(', ')} (started earlier) does not answer yet; waiting up to 30 s`)
      const answered = await waitUntil(spec.probe, {
        timeoutMs: 30_000,
        intervalMs: 500,
        abort: () => (livePids.some(isAlive) ? undefined : ''),
      }).catch(() => false)
      if (answered) return lease(spec, files, { started: false, pids: livePids.filter(isAlive), startMs: undefined })
      spec.log(`pid ${livePids.join(', ')} does not answer: stopping ${livePids.length === 1 ? 'it' : 'them'} and starting afresh`)
      await terminateAll(livePids, 10_000)
      await rm(files.pid, { force: true })
      await rm(files.mode, { force: true })
      pids = []
    }

    for (const port of spec.ports ?? [spec.port]) {
      if (await portOpen(port)) {
        throw new Error(
          `Port ${port} is in use by a process that does not answer as a ${spec.name}. ` +
            `Stop it, or choose another port (see README: KAFKA_PORT / REGISTRY_PORT).`,
        )
      }
    }

    const started = Date.now()
    const launched = await spec.launch()
    const newPids = Array.isArray(launched) ? launched : [launched]
    await writeFile(files.pid, newPids.join('\n'))
    await writeFile(files.mode, mode)
    const answered = await waitUntil(spec.probe, {
      timeoutMs: spec.startTimeoutMs,
      intervalMs: 250,
      abort: () => {
        const dead = newPids.find((pid) => !isAlive(pid))
        if (dead === undefined) return undefined
        return `${spec.name} (pid ${dead}) exited during start-up. Last lines of ${spec.logFile}:\n${tailOf(spec.logFile)}`
      },
    }).catch(async (err: Error) => {
      if (newPids.length > 1) await terminateAll(newPids, 5_000)
      await rm(files.pid, { force: true })
      throw err
    })
    if (!answered) {
      await terminateAll(newPids, 5_000)
      await rm(files.pid, { force: true })
      throw new Error(
        `${spec.name} did not answer at ${spec.address} within ${seconds(spec.startTimeoutMs)}. ` +
          `Last lines of ${spec.logFile}:\n${tailOf(spec.logFile)}`,
      )
    }
    return lease(spec, files, { started: true, pids: newPids, startMs: Date.now() - started })
  })
}

/** `<name> (pid 12) terminated`, or `<name> (pids 12, 13) terminated` for several processes. */
function stopOutcome(name: string, pids: number[], outcomes: string[]): string {
  const what = [...new Set(outcomes)].join('/')
  return pids.length === 1 ? `${name} (pid ${pids[0]}) ${what}` : `${name} (pids ${pids.join(', ')}) ${what}`
}

/**
 * Stops the service started in `runDir` by these scripts, whatever its mode, unless other live
 * processes hold leases on it and `force` is false.
 * @returns what happened, for the CLI to print.
 */
export async function stopService(spec: Pick<ServiceSpec, 'runDir' | 'marker' | 'name' | 'stopGraceMs'>, force: boolean): Promise<string> {
  const files = runFiles(spec.runDir)
  return withLock(files.lock, async () => {
    const pids = await ourLivePids(files.pid, spec.marker)
    if (pids.length === 0) {
      await rm(files.pid, { force: true })
      return `no ${spec.name} started by this script is running (nothing stopped)`
    }
    const holders = await liveLeases(files.leases)
    if (holders.length > 0 && !force) {
      return (
        `${spec.name} (pid ${pids.join(', ')}) is in use by running process(es) ${holders.join(', ')}; ` +
        `not stopped (add --force to stop it anyway)`
      )
    }
    const outcomes = await terminateAll(pids, spec.stopGraceMs)
    await rm(files.pid, { force: true })
    await rm(files.mode, { force: true })
    return stopOutcome(spec.name, pids, outcomes)
  })
}

/** Pid of the process started in `runDir`, if it is alive, and its mode (`pids`: all live ones). */
export async function serviceStatus(
  spec: Pick<ServiceSpec, 'runDir' | 'marker'>,
): Promise<{ pid: number | undefined; pids: number[]; mode: string | undefined; leases: number[] }> {
  const files = runFiles(spec.runDir)
  const pids = await ourLivePids(files.pid, spec.marker)
  const mode = await readFile(files.mode, 'utf8').catch(() => undefined)
  return { pid: pids[0], pids, mode, leases: await liveLeases(files.leases) }
}

function runFiles(runDir: string) {
  return {
    pid: path.join(runDir, 'pid'),
    mode: path.join(runDir, 'mode'),
    leases: path.join(runDir, 'leases'),
    lock: path.join(runDir, 'lock'),
  }
}

async function liveLeases(leasesDir: string): Promise<number[]> {
  const names = await readdir(leasesDir).catch(() => [] as string[])
  const live: number[] = []
  for (const name of names) {
    const pid = Number(name.split('-')[0])
    if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) live.push(pid)
    else await rm(path.join(leasesDir, name), { force: true })
  }
  return [...new Set(live)]
}

async function lease(
  spec: ServiceSpec,
  files: ReturnType<typeof runFiles>,
  state: { started: boolean; pids: number[]; startMs: number | undefined },
): Promise<ServiceHandle> {
  const leaseFile = path.join(files.leases, `${process.pid}-${++leaseCounter}`)
  await writeFile(leaseFile, '')
  let stopped = false
  return {
    started: state.started,
    pid: state.pids[0],
    pids: state.pids,
    startMs: state.startMs,
    async stop() {
      if (stopped) return
      stopped = true
      await withLock(files.lock, async () => {
        await rm(leaseFile, { force: true })
        const pids = await ourLivePids(files.pid, spec.marker)
        if (pids.length === 0) return
        const mode = await readFile(files.mode, 'utf8').catch(() => 'pinned')
        if (mode !== 'auto') return
        const holders = await liveLeases(files.leases)
        if (holders.length > 0) {
          spec.log(`leaving ${spec.name} (pid ${pids.join(', ')}) running: still used by pid(s) ${holders.join(', ')}`)
          return
        }
        const outcomes = await terminateAll(pids, spec.stopGraceMs)
        await rm(files.pid, { force: true })
        await rm(files.mode, { force: true })
        spec.log(stopOutcome(spec.name, pids, outcomes))
      })
    },
  }
}
