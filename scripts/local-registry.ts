/**
 * A local Confluent-compatible schema registry on demand: Apicurio Registry from Maven Central
 * (`io.apicurio:apicurio-registry-app:<version>:tar.gz:all`, a Quarkus application), unpacked into
 * `.cache/` once and run with in-memory (H2) storage on 127.0.0.1. The Confluent API lives under
 * `/apis/ccompat/v7`, which is what @kafkajs/confluent-schema-registry talks to.
 *
 * Version: Apicurio 3.0.9 by default. 3.3.3 (the newest served) is compiled for Java 21
 * (class file 65) and fails on Java 17; set `KSTREAMS_APICURIO_VERSION=3.3.3` where Java 21 is
 * installed. 2.6.13.Final works too.
 *
 * CLI (`npm run registry:start` / `registry:stop`):
 * ```
 * tsx scripts/local-registry.ts start|status|stop [--force]
 * ```
 * Environment: `REGISTRY_PORT` (default 8081), `REGISTRY_HEAP_OPTS` (default `-Xms64m -Xmx512m`),
 * `KSTREAMS_APICURIO_VERSION`, `KSTREAMS_CACHE_DIR`, `KSTREAMS_MAVEN_REPO`, `JAVA_HOME`.
 *
 * Programmatic use: {@link ensureRegistry}.
 */
import { spawn } from 'node:child_process'
import { closeSync, existsSync, openSync } from 'node:fs'
import { mkdir, readdir, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import {
  JAVA_HINT,
  cacheDir,
  cliCommand,
  ensureService,
  envPort,
  isMain,
  javaBin,
  mavenRepo,
  run,
  runMaven,
  seconds,
  serviceStatus,
  stderrLog,
  stopService,
  withLock,
  type Log,
  type ServiceSpec,
} from './local-common.js'

/** The Apicurio Registry release run locally. */
export const APICURIO_VERSION = process.env.KSTREAMS_APICURIO_VERSION ?? '3.0.9'

/** Dependency plugin whose `get` goal does not need the artifact's parent POM (see resolveApicurio). */
const LENIENT_DEPENDENCY_PLUGIN = 'org.apache.maven.plugins:maven-dependency-plugin:2.8'

/** Path of the Confluent-compatible API inside an Apicurio Registry. */
export const CCOMPAT_PATH = '/apis/ccompat/v7'

/** Options of {@link ensureRegistry}. Every field is optional. */
export interface EnsureRegistryOptions {
  /**
   * HTTP port of the local registry (on 127.0.0.1).
   * @defaultValue `REGISTRY_PORT` from the environment, else 8081
   */
  port?: number
  /**
   * When true and `SCHEMA_REGISTRY_URL` is set, use that registry instead (after checking that it
   * answers); nothing is started or stopped.
   * @defaultValue true
   */
  useEnv?: boolean
  /**
   * `auto`: stopped by the last `stop()` of a process that leased it. `pinned`: runs until
   * `npm run registry:stop` (what `registry:start` uses).
   * @defaultValue `'auto'`
   */
  mode?: 'auto' | 'pinned'
  /**
   * Milliseconds to wait for a newly launched registry to answer.
   * @defaultValue 180000
   */
  startTimeoutMs?: number
  /**
   * Where progress lines go.
   * @defaultValue one `[local-registry] ...` line per message on stderr
   */
  log?: (message: string) => void
}

/** A schema registry that answers, as returned by {@link ensureRegistry}. */
export interface LocalRegistry {
  /**
   * Base URL of the Confluent-compatible API, ready for
   * `new SchemaRegistry({ host: url })`, e.g. `http://127.0.0.1:8081/apis/ccompat/v7`.
   */
  url: string
  /** True if this call launched the registry process. */
  started: boolean
  /** Milliseconds from launch until it answered (only when `started`). */
  startMs?: number
  /** Pid of the registry JVM when these scripts started it. */
  pid?: number
  /**
   * Releases this process's lease. The registry is stopped when it was started in `auto` mode
   * and no other live process leases it. Idempotent.
   */
  stop(): Promise<void>
}

/**
 * Makes sure a Confluent-compatible schema registry answers and tells its URL.
 *
 * - `SCHEMA_REGISTRY_URL` set (and `useEnv` not false): checks that `GET <url>/subjects` answers
 *   and returns it.
 * - Otherwise a registry already answering on 127.0.0.1:`port` is reused.
 * - Otherwise Apicurio Registry {@link APICURIO_VERSION} is fetched with Maven and unpacked into
 *   `.cache/` (first time only: a 109 MB download, 115 MB unpacked) and launched with in-memory storage: every new
 *   registry starts EMPTY, and schema ids restart at 1.
 *
 * Stale pid files, dead or unresponsive earlier processes and concurrent callers are handled as
 * in `ensureKafka()`.
 *
 * @throws Error when Java/Maven is missing, the port is taken by something that is not a schema
 *   registry, the registry exits during start-up or does not answer within `startTimeoutMs`, or
 *   `SCHEMA_REGISTRY_URL` does not answer within 30 s.
 */
export async function ensureRegistry(options: EnsureRegistryOptions = {}): Promise<LocalRegistry> {
  const log: Log = options.log ?? stderrLog('local-registry')
  const fromEnv = process.env.SCHEMA_REGISTRY_URL
  if ((options.useEnv ?? true) && fromEnv) {
    const url = fromEnv.replace(/\/+$/, '')
    const deadline = Date.now() + 30_000
    while (!(await registryAnswers(url))) {
      if (Date.now() > deadline) throw new Error(`SCHEMA_REGISTRY_URL=${fromEnv} does not answer (GET ${url}/subjects)`)
      await new Promise((r) => setTimeout(r, 500))
    }
    return { url, started: false, stop: async () => {} }
  }

  const port = options.port ?? envPort('REGISTRY_PORT', 8081)
  const spec = registrySpec(port, options.startTimeoutMs ?? 180_000, log)
  const handle = await ensureService(spec, options.mode ?? 'auto')
  if (handle.started) log(`${spec.name} started at ${spec.address} in ${seconds(handle.startMs ?? 0)} (pid ${handle.pid})`)
  else log(`${spec.name} already answering at ${spec.address}${handle.pid ? ` (pid ${handle.pid})` : ''}: reusing it`)
  return {
    url: spec.address,
    started: handle.started,
    ...(handle.startMs !== undefined ? { startMs: handle.startMs } : {}),
    ...(handle.pid !== undefined ? { pid: handle.pid } : {}),
    stop: () => handle.stop(),
  }
}

/**
 * True if `GET <url>/subjects` answers 200 with a JSON array within `timeoutMs`, i.e. `url` is a
 * Confluent-compatible registry API. Never throws.
 */
export async function registryAnswers(url: string, timeoutMs = 3_000): Promise<boolean> {
  try {
    const response = await fetch(`${url}/subjects`, { signal: AbortSignal.timeout(timeoutMs) })
    if (!response.ok) return false
    return Array.isArray(await response.json())
  } catch {
    return false
  }
}

function registrySpec(port: number, startTimeoutMs: number, log: Log): ServiceSpec {
  const runDir = path.join(cacheDir(), 'registry', `run-${port}`)
  const logFile = path.join(runDir, 'registry.log')
  const url = `http://127.0.0.1:${port}${CCOMPAT_PATH}`
  const portFlag = `-Dquarkus.http.port=${port}`
  return {
    name: `Apicurio Registry ${APICURIO_VERSION}`,
    runDir,
    address: url,
    port,
    marker: `-Dkstreams.registry.run=${runDir}`,
    probe: () => registryAnswers(url),
    logFile,
    startTimeoutMs,
    log,
    async launch() {
      const jar = await resolveApicurio(log)
      await mkdir(runDir, { recursive: true })
      await rm(logFile, { force: true })
      const heap = (process.env.REGISTRY_HEAP_OPTS ?? '-Xms64m -Xmx512m').split(/\s+/).filter(Boolean)
      const out = openSync(logFile, 'a')
      try {
        const child = spawn(
          javaBin(),
          [
            ...heap,
            '-XX:+UseSerialGC',
            '-XX:TieredStopAtLevel=1',
            '-Djava.awt.headless=true',
            `-Dkstreams.registry.run=${runDir}`,
            '-Dquarkus.http.host=127.0.0.1',
            portFlag,
            '-Dapicurio.storage.kind=sql',
            '-Dapicurio.storage.sql.kind=h2',
            '-Dquarkus.log.level=WARN',
            '-Dquarkus.http.access-log.enabled=false',
            '-Dquarkus.log.category."io.apicurio".level=INFO',
            '-jar',
            jar,
          ],
          { cwd: path.dirname(jar), detached: true, stdio: ['ignore', out, out] },
        )
        child.unref()
        if (child.pid === undefined) throw new Error(`could not launch ${javaBin()}. ${JAVA_HINT}`)
        return child.pid
      } finally {
        closeSync(out)
      }
    },
  }
}

/**
 * Fetches and unpacks Apicurio Registry (once) and returns the path of its runnable jar
 * (`*-runner.jar` in 2.x/3.0, `quarkus-run.jar` in later 3.x).
 */
export async function resolveApicurio(log: Log = stderrLog('local-registry')): Promise<string> {
  const dir = path.join(cacheDir(), 'registry', APICURIO_VERSION)
  const appDir = path.join(dir, 'app')
  const found = await findRunnableJar(appDir)
  if (found) return found
  await mkdir(dir, { recursive: true })
  return withLock(path.join(dir, 'resolve.lock'), async () => {
    const again = await findRunnableJar(appDir)
    if (again) return again
    const artifact = `io.apicurio:apicurio-registry-app:${APICURIO_VERSION}:tar.gz:all`
    log(`fetching ${artifact} with Maven into ${cacheDir()} (first run only)`)
    const started = Date.now()
    const tmp = path.join(dir, 'app.tmp')
    await rm(tmp, { recursive: true, force: true })
    // Apicurio's parent POM is not on Maven Central for every release (3.0.9's is missing), and
    // dependency plugin 3.x (get, unpack, copy) and project resolution all insist on reading it.
    // The 2.8 `get` goal with transitive=false fetches the tarball alone.
    await runMaven([`${LENIENT_DEPENDENCY_PLUGIN}:get`, `-Dartifact=${artifact}`, '-Dtransitive=false'])
    const artifactDir = path.join(mavenRepo(), 'io', 'apicurio', 'apicurio-registry-app', APICURIO_VERSION)
    const tarball = path.join(artifactDir, `apicurio-registry-app-${APICURIO_VERSION}-all.tar.gz`)
    await mkdir(tmp, { recursive: true })
    await run('tar', ['-xzf', tarball, '-C', tmp], { missingHint: 'tar is needed to unpack Apicurio Registry.' })
    await rm(appDir, { recursive: true, force: true })
    await rename(tmp, appDir)
    // The unpacked app is all we use: drop the tarball from the local Maven repository.
    await rm(artifactDir, { recursive: true, force: true })
    const jar = await findRunnableJar(appDir)
    if (!jar) throw new Error(`${artifact} unpacked into ${appDir} but holds no runnable jar`)
    log(`fetched and unpacked Apicurio Registry ${APICURIO_VERSION} in ${seconds(Date.now() - started)}`)
    return jar
  })
}

async function findRunnableJar(appDir: string): Promise<string | undefined> {
  const names = await readdir(appDir).catch(() => [] as string[])
  const runner = names.find((name) => name.endsWith('-runner.jar')) ?? names.find((name) => name === 'quarkus-run.jar')
  if (!runner || !existsSync(path.join(appDir, 'lib'))) return undefined
  return path.join(appDir, runner)
}

async function main(): Promise<void> {
  const command = cliCommand(process.argv, 'usage: tsx scripts/local-registry.ts start|status|stop [--force]')
  const port = envPort('REGISTRY_PORT', 8081)
  const runDir = path.join(cacheDir(), 'registry', `run-${port}`)
  const marker = `-Dkstreams.registry.run=${runDir}`
  const name = `Apicurio Registry ${APICURIO_VERSION}`
  if (command === 'start') {
    const registry = await ensureRegistry({ useEnv: false, mode: 'pinned' })
    await registry.stop() // releases this CLI's lease; a pinned registry keeps running
    console.log(
      `Schema registry ready at ${registry.url}` +
        (registry.started ? ` (pid ${registry.pid}, start ${seconds(registry.startMs ?? 0)})` : ' (already running)') +
        `. Log: ${path.join(runDir, 'registry.log')}. Stop with: npm run registry:stop`,
    )
  } else if (command === 'stop') {
    console.log(await stopService({ runDir, marker, name }, process.argv.includes('--force')))
  } else {
    const status = await serviceStatus({ runDir, marker })
    const url = `http://127.0.0.1:${port}${CCOMPAT_PATH}`
    console.log(
      `${url}: ${(await registryAnswers(url)) ? 'answers' : 'does not answer'}; ` +
        (status.pid
          ? `started by this script (pid ${status.pid}, mode ${status.mode}, leased by ${status.leases.join(', ') || 'nobody'})`
          : 'no process started by this script'),
    )
  }
}

if (isMain(import.meta.url)) {
  main().catch((err: Error) => {
    process.stderr.write(`[local-registry] ${err.message}\n`)
    process.exit(1)
  })
}
