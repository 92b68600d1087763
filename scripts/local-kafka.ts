/**
 * A local Apache Kafka broker on demand, for tests, demos and benchmarks on machines without
 * Docker: resolves the broker jars from Maven Central into `.cache/` once, formats KRaft storage
 * and runs ONE combined broker+controller JVM on 127.0.0.1 — or, with `KAFKA_CLUSTER_SIZE=3`,
 * a cluster of 3 such nodes (3 KRaft voters) on consecutive ports (see scripts/local-cluster.ts
 * for stopping, killing, freezing and restarting one node).
 *
 * CLI (`npm run kafka:start` / `kafka:stop`):
 * ```
 * tsx scripts/local-kafka.ts start     # start (or reuse) and leave it running
 * tsx scripts/local-kafka.ts status
 * tsx scripts/local-kafka.ts stop [--force]
 * ```
 * Environment: `KAFKA_PORT` (default 9092; a cluster's first node), `KAFKA_CONTROLLER_PORT`
 * (default port + 1; for a cluster port + 100), `KAFKA_CLUSTER_SIZE` (default 1),
 * `KAFKA_HEAP_OPTS` (default `-Xms256m -Xmx768m`, per node of a cluster `-Xms128m -Xmx512m`),
 * `KSTREAMS_KAFKA_VERSION` (default 3.9.2), `KSTREAMS_CACHE_DIR`, `KSTREAMS_MAVEN_REPO`, `JAVA_HOME`.
 *
 * Programmatic use: {@link ensureKafka}.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, openSync, closeSync } from 'node:fs'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { spawn } from 'node:child_process'
import path from 'node:path'
import kafkajs from 'kafkajs'
import type { Admin } from 'kafkajs'
import {
  DEPENDENCY_PLUGIN,
  terminateAll,
  cacheDir,
  cliCommand,
  envPort,
  ensureService,
  isMain,
  javaBin,
  run,
  runMaven,
  seconds,
  serviceStatus,
  stderrLog,
  stopService,
  withLock,
  JAVA_HINT,
  type Log,
  type ServiceSpec,
} from './local-common.js'

const { Kafka, logLevel } = kafkajs

/** The broker version the project is tested against. */
export const KAFKA_VERSION = process.env.KSTREAMS_KAFKA_VERSION ?? '3.9.2'
/**
 * The newest Kafka 4.x on Maven Central: CI runs the integration suite against it as well
 * (`.ci/run` reads it from here and sets `KSTREAMS_KAFKA_VERSION` to it).
 */
export const KAFKA_4_VERSION = '4.4.0'
const SCALA_VERSION = '2.13'
/** The slf4j binding Kafka 3.9's own distribution ships (slf4j 1.7 + reload4j). */
const SLF4J_VERSION = '1.7.36'

/** Options of {@link ensureKafka}. Every field is optional. */
export interface EnsureKafkaOptions {
  /**
   * Client port of the local broker (PLAINTEXT listener on 127.0.0.1).
   * @defaultValue `KAFKA_PORT` from the environment, else 9092
   */
  port?: number
  /**
   * Port of the KRaft controller listener (of a cluster: of its first node; node i listens on
   * `controllerPort + i - 1`).
   * @defaultValue `KAFKA_CONTROLLER_PORT` from the environment, else `port + 1` for one node and
   *   `port + 100` for a cluster
   */
  controllerPort?: number
  /**
   * Number of nodes. 1: one combined broker+controller (`port`). N > 1: N combined
   * broker+controller nodes, all KRaft voters, on ports `port` … `port + N - 1`, with replication
   * factor min(3, N) and min ISR min(2, N) for `__consumer_offsets`, `__transaction_state` and
   * new topics (see {@link brokerProperties}).
   * @defaultValue `KAFKA_CLUSTER_SIZE` from the environment, else 1
   */
  clusterSize?: number
  /**
   * When true and `KAFKA_BROKERS` is set, use that cluster instead of a local broker (after
   * checking that it answers); nothing is started or stopped.
   * @defaultValue true
   */
  useEnv?: boolean
  /**
   * `auto`: the broker is stopped by the last `stop()` of a process that leased it.
   * `pinned`: it keeps running until `npm run kafka:stop` (what `kafka:start` uses).
   * @defaultValue `'auto'`
   */
  mode?: 'auto' | 'pinned'
  /**
   * Milliseconds to wait for a newly launched broker to answer.
   * @defaultValue 180000
   */
  startTimeoutMs?: number
  /**
   * Where progress lines go.
   * @defaultValue one `[local-kafka] ...` line per message on stderr
   */
  log?: (message: string) => void
}

/** A broker that answers, as returned by {@link ensureKafka}. */
export interface LocalKafka {
  /** Comma-separated `host:port` list for kafkajs: `brokers.split(',')`. */
  brokers: string
  /** True if this call launched the broker process. */
  started: boolean
  /** Milliseconds from launch until the broker answered (only when `started`). */
  startMs?: number
  /** Pid of the broker JVM when these scripts started it (of a cluster: of node 1). */
  pid?: number
  /** Pids of every node's JVM when these scripts started them (node i at index i - 1). */
  pids?: number[]
  /**
   * Releases this process's lease on the broker. The broker is stopped when it was started in
   * `auto` mode and no other live process still leases it; a broker from `KAFKA_BROKERS`, from
   * `npm run kafka:start` or from someone else is never stopped. Idempotent.
   */
  stop(): Promise<void>
}

/**
 * Makes sure a Kafka broker answers and tells where it is.
 *
 * - `KAFKA_BROKERS` set (and `useEnv` not false): checks it answers (admin describeCluster)
 *   and returns it; nothing is started.
 * - Otherwise a broker already answering on 127.0.0.1:`port` is reused, whoever started it.
 * - Otherwise Kafka {@link KAFKA_VERSION} is resolved with Maven into `.cache/` (first time only:
 *   46 MB of broker jars, 80 MB with Maven's own plugins), KRaft storage is formatted afresh (a
 *   new broker starts EMPTY), and one combined broker+controller JVM is launched with single-node
 *   settings that make transactions work (replication factor 1 for the offsets and transaction
 *   logs, min ISR 1, no initial rebalance delay, no topic auto-creation, 1 partition by default). It waits until the broker answers:
 *   about 4 s with the jars cached, 13 s on the first run (idle 2-core machine).
 * - With `clusterSize` N > 1 (or `KAFKA_CLUSTER_SIZE`): N such nodes on `port` … `port + N - 1`,
 *   all KRaft voters, formatted afresh with one cluster id, replication factor min(3, N) and min
 *   ISR min(2, N) (see {@link brokerProperties}); it answers when every node is registered (about
 *   7 s for 3 nodes on an idle 2-core machine, 15–30 s on a busy one). A cluster already
 *   answering there with all N nodes is reused. `brokers` lists every node, `pids` every JVM.
 *   Per-node control: scripts/local-cluster.ts.
 *
 * Note for callers creating topics right after: a KRaft broker's metadata lags its controller
 * for a moment, so kafkajs' `createTopics({ waitForLeaders: true })` can fail with
 * UNKNOWN_TOPIC_OR_PARTITION; poll `fetchTopicMetadata` instead (see test/integration/helpers.ts).
 *
 * A stale pid file is cleaned up; a broker process started earlier that stops answering is
 * replaced. Concurrent calls from several processes are serialised by a lock file and share one
 * broker. Java 17+ and Maven must be on PATH for the local broker.
 *
 * @throws Error when Java/Maven is missing, the port is taken by something that is not Kafka,
 *   the broker exits during start-up (the message carries its log's tail) or does not answer in
 *   `startTimeoutMs`, or `KAFKA_BROKERS` does not answer within 30 s.
 * @example
 * ```ts
 * const kafka = await ensureKafka();
 * const client = new Kafka({ brokers: kafka.brokers.split(',') });
 * // ...
 * await kafka.stop();
 * ```
 */
export async function ensureKafka(options: EnsureKafkaOptions = {}): Promise<LocalKafka> {
  const log: Log = options.log ?? stderrLog('local-kafka')
  const fromEnv = process.env.KAFKA_BROKERS
  if ((options.useEnv ?? true) && fromEnv) {
    const deadline = Date.now() + 30_000
    while (!(await kafkaAnswers(fromEnv))) {
      if (Date.now() > deadline) throw new Error(`KAFKA_BROKERS=${fromEnv} does not answer (admin describeCluster)`)
      await new Promise((r) => setTimeout(r, 500))
    }
    return { brokers: fromEnv, started: false, stop: async () => {} }
  }

  const port = options.port ?? envPort('KAFKA_PORT', 9092)
  const size = options.clusterSize ?? envClusterSize()
  const controllerPort = options.controllerPort ?? envPort('KAFKA_CONTROLLER_PORT', size > 1 ? port + 100 : port + 1)
  const spec =
    size > 1
      ? kafkaClusterSpec({
          size,
          basePort: port,
          controllerBasePort: controllerPort,
          startTimeoutMs: options.startTimeoutMs ?? 180_000,
          log,
        })
      : kafkaSpec(port, controllerPort, options.startTimeoutMs ?? 180_000, log)
  const handle = await ensureService(spec, options.mode ?? 'auto')
  if (handle.started) log(`${spec.name} started at ${spec.address} in ${seconds(handle.startMs ?? 0)} (pid ${handle.pids.join(', ')})`)
  else log(`${spec.name} already answering at ${spec.address}${handle.pid ? ` (pid ${handle.pid})` : ''}: reusing it`)
  return {
    brokers: spec.address,
    started: handle.started,
    ...(handle.startMs !== undefined ? { startMs: handle.startMs } : {}),
    ...(handle.pid !== undefined ? { pid: handle.pid, pids: handle.pids } : {}),
    stop: () => handle.stop(),
  }
}

/**
 * `KAFKA_CLUSTER_SIZE` from the environment, else 1.
 * @throws Error when it is not an integer from 1 to 9.
 */
export function envClusterSize(): number {
  const raw = process.env.KAFKA_CLUSTER_SIZE
  if (raw === undefined || raw === '') return 1
  const size = Number(raw)
  if (!Number.isInteger(size) || size < 1 || size > 9) {
    throw new Error(`KAFKA_CLUSTER_SIZE=${JSON.stringify(raw)} is not a node count (1..9)`)
  }
  return size
}

/** A kafkajs admin for one quick liveness probe: no retries, no logging, short connection timeout. */
export function probeAdmin(brokers: string[], timeoutMs: number): Admin {
  return new Kafka({
    clientId: 'kstreams-local-probe',
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
  }).admin()
}

/**
 * True if a Kafka cluster answers an admin describeCluster at `brokers` (comma-separated)
 * within `timeoutMs`. Never throws.
 */
export async function kafkaAnswers(brokers: string, timeoutMs = 5_000): Promise<boolean> {
  return clusterAnswers(brokers, 1, timeoutMs)
}

/** Where one node of a local KRaft cluster listens. */
export interface NodeAddress {
  /** KRaft node id, 1-based. */
  id: number
  /** PLAINTEXT client port on 127.0.0.1. */
  port: number
  /** CONTROLLER listener port on 127.0.0.1. */
  controllerPort: number
}

/**
 * The nodes of a local cluster of `size` nodes: node i (1-based) on `basePort + i - 1`, its
 * controller on `controllerBasePort + i - 1`.
 * @throws Error when a port would leave 1..65535 or the two ranges overlap.
 */
export function clusterNodes(size: number, basePort: number, controllerBasePort: number): NodeAddress[] {
  if (!Number.isInteger(size) || size < 1) throw new Error(`cluster size must be a positive integer, got ${size}`)
  const nodes = Array.from({ length: size }, (_, i) => ({ id: i + 1, port: basePort + i, controllerPort: controllerBasePort + i }))
  const ports = nodes.flatMap((n) => [n.port, n.controllerPort])
  if (ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) throw new Error(`cluster ports ${ports.join(', ')} leave 1..65535`)
  if (new Set(ports).size !== ports.length) {
    throw new Error(
      `client ports ${basePort}..${basePort + size - 1} overlap controller ports ${controllerBasePort}..${controllerBasePort + size - 1}`,
    )
  }
  return nodes
}

/**
 * The broker's `server.properties` for one combined broker+controller node. Kept in sync with
 * `docker/docker-compose.yml`.
 *
 * Without `nodes` (the default local broker): node 1 alone, replication factor 1 and min ISR 1.
 * With `nodes` (a local cluster; `nodeId` picks this node): every node is a KRaft voter
 * (`controller.quorum.voters`); replication factor min(3, N) for `__consumer_offsets`,
 * `__transaction_state` and new topics, min ISR min(2, N) (`min.insync.replicas`,
 * `transaction.state.log.min.isr`), so one node of three may be down while acks=all writes and
 * transactions go on. A dead node is fenced after 6 s (`broker.session.timeout.ms`, Kafka's
 * default 9 s) so that fault tests wait less for leaders to move.
 */
export function brokerProperties(opts: {
  port: number
  controllerPort: number
  dataDir: string
  nodeId?: number
  nodes?: ReadonlyArray<NodeAddress>
}): string {
  const nodes = opts.nodes ?? [{ id: 1, port: opts.port, controllerPort: opts.controllerPort }]
  const size = nodes.length
  const replication = Math.min(3, size)
  const minIsr = Math.min(2, size)
  const props: Record<string, string | number> = {
    'process.roles': 'broker,controller',
    'node.id': opts.nodeId ?? 1,
    'controller.quorum.voters': nodes.map((n) => `${n.id}@127.0.0.1:${n.controllerPort}`).join(','),
    listeners: `PLAINTEXT://127.0.0.1:${opts.port},CONTROLLER://127.0.0.1:${opts.controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${opts.port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'log.dirs': opts.dataDir,
    'num.partitions': 1,
    'default.replication.factor': replication,
    ...(opts.nodes ? { 'min.insync.replicas': minIsr } : {}),
    'auto.create.topics.enable': 'false',
    'offsets.topic.replication.factor': replication,
    'offsets.topic.num.partitions': 10,
    'transaction.state.log.replication.factor': replication,
    'transaction.state.log.min.isr': minIsr,
    'transaction.state.log.num.partitions': 10,
    'group.initial.rebalance.delay.ms': 0,
    ...(opts.nodes ? { 'broker.session.timeout.ms': 6_000, 'broker.heartbeat.interval.ms': 1_000 } : {}),
    'num.network.threads': 2,
    'num.io.threads': opts.nodes ? 2 : 4,
    'log.retention.hours': 24,
  }
  return Object.entries(props)
    .map(([key, value]) => `${key}=${value}`)
    .join('\n')
    .concat('\n')
}

function log4jProperties(logsDir: string): string {
  const file = path.join(logsDir, 'server.log').replaceAll('\\', '/')
  return [
    'log4j.rootLogger=INFO, file',
    'log4j.appender.file=org.apache.log4j.RollingFileAppender',
    `log4j.appender.file.File=${file}`,
    'log4j.appender.file.MaxFileSize=20MB',
    'log4j.appender.file.MaxBackupIndex=2',
    'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
    'log4j.logger.kafka.request.logger=WARN',
    'log4j.logger.state.change.logger=WARN',
    'log4j.logger.kafka.log.LogCleaner=WARN',
    'log4j.logger.org.apache.kafka.clients=WARN',
    '',
  ].join('\n')
}

/** A random KRaft cluster id (16 random bytes, base64url, not starting with '-'). */
export function randomClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url')
    if (!id.startsWith('-')) return id
  }
}

/** The files of one broker node under its folder: config, log4j config, data and logs. */
export interface NodeFiles {
  dir: string
  configFile: string
  log4jFile: string
  dataDir: string
  logsDir: string
  /** The JVM's stdout/stderr (start-up failures land here). */
  stdoutFile: string
  /** Kafka's own log. */
  serverLog: string
}

/** The layout of a node folder (see {@link NodeFiles}). */
export function nodeFiles(dir: string): NodeFiles {
  const logsDir = path.join(dir, 'logs')
  return {
    dir,
    configFile: path.join(dir, 'server.properties'),
    log4jFile: path.join(dir, 'log4j.properties'),
    dataDir: path.join(dir, 'data'),
    logsDir,
    stdoutFile: path.join(logsDir, 'stdout.log'),
    serverLog: path.join(logsDir, 'server.log'),
  }
}

function jvmLogging(files: NodeFiles): string[] {
  return [`-Dlog4j.configuration=file:${files.log4jFile}`, `-Dkafka.logs.dir=${files.logsDir}`]
}

/**
 * Wipes a node folder's data and logs, writes its `server.properties` and log4j config, and
 * formats its KRaft storage with `clusterId` (`kafka.tools.StorageTool format -t <id> -c <config>`;
 * the voters come from `controller.quorum.voters`, which Kafka 3.9 and 4.x both accept).
 * @throws Error with the tool's output when formatting fails.
 */
export async function formatNode(files: NodeFiles, properties: string, clusterId: string, classpath: string): Promise<void> {
  await rm(files.dataDir, { recursive: true, force: true })
  await rm(files.logsDir, { recursive: true, force: true })
  await mkdir(files.dataDir, { recursive: true })
  await mkdir(files.logsDir, { recursive: true })
  await writeFile(files.configFile, properties)
  await writeFile(files.log4jFile, log4jProperties(files.logsDir))
  await run(
    javaBin(),
    [...jvmLogging(files), '-Xmx256m', '-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', files.configFile],
    { missingHint: JAVA_HINT },
  )
}

/**
 * Spawns the broker JVM of a formatted node folder, detached (it outlives this process), output
 * appended to `logs/stdout.log`. Returns its pid at once; it answers a few seconds later.
 * @param heap JVM heap flags. @defaultValue `KAFKA_HEAP_OPTS`, else `-Xms256m -Xmx768m`
 * @throws Error when the JVM cannot be launched.
 */
export async function spawnNode(files: NodeFiles, classpath: string, heap?: string): Promise<number> {
  await mkdir(files.logsDir, { recursive: true })
  const heapFlags = (heap ?? process.env.KAFKA_HEAP_OPTS ?? '-Xms256m -Xmx768m').split(/\s+/).filter(Boolean)
  const out = openSync(files.stdoutFile, 'a')
  try {
    const child = spawn(
      javaBin(),
      [
        ...heapFlags,
        '-XX:+UseG1GC',
        '-XX:MaxGCPauseMillis=20',
        '-XX:InitiatingHeapOccupancyPercent=35',
        '-XX:+ExplicitGCInvokesConcurrent',
        '-Djava.awt.headless=true',
        ...jvmLogging(files),
        '-cp',
        classpath,
        'kafka.Kafka',
        files.configFile,
      ],
      { cwd: files.dir, detached: true, stdio: ['ignore', out, out] },
    )
    child.unref()
    if (child.pid === undefined) throw new Error(`could not launch ${javaBin()}. ${JAVA_HINT}`)
    return child.pid
  } finally {
    closeSync(out)
  }
}

function kafkaSpec(port: number, controllerPort: number, startTimeoutMs: number, log: Log): ServiceSpec {
  const runDir = path.join(cacheDir(), 'kafka', `run-${port}`)
  const files = nodeFiles(runDir)
  return {
    name: `Kafka ${KAFKA_VERSION} broker`,
    runDir,
    address: `127.0.0.1:${port}`,
    port,
    marker: files.configFile,
    probe: () => kafkaAnswers(`127.0.0.1:${port}`),
    logFile: files.serverLog,
    startTimeoutMs,
    log,
    async launch() {
      const classpath = await resolveKafkaClasspath(log)
      const formatStarted = Date.now()
      await formatNode(files, brokerProperties({ port, controllerPort, dataDir: files.dataDir }), randomClusterId(), classpath)
      log(
        `formatted KRaft storage in ${seconds(Date.now() - formatStarted)}; launching the broker on 127.0.0.1:${port} (controller :${controllerPort})`,
      )
      return spawnNode(files, classpath)
    },
  }
}

/** Options of {@link kafkaClusterSpec}. */
export interface ClusterSpecOptions {
  /** Number of nodes (each a combined broker+controller and KRaft voter). */
  size: number
  /** Client port of node 1; node i listens on `basePort + i - 1`. */
  basePort: number
  /** Controller port of node 1. @defaultValue `basePort + 100` */
  controllerBasePort?: number
  /** Folder of the cluster's bookkeeping and node folders. @defaultValue `.cache/kafka/cluster-<basePort>-x<size>` */
  runDir?: string
  /** Kafka version to run. @defaultValue {@link KAFKA_VERSION} */
  version?: string
  /** Heap flags of each node's JVM. @defaultValue `KAFKA_HEAP_OPTS`, else `-Xms128m -Xmx512m` */
  heap?: string
  /** Milliseconds between SIGTERM and SIGKILL when the cluster is stopped. @defaultValue 15000 */
  stopGraceMs?: number
  startTimeoutMs: number
  log: Log
}

/** Where a local cluster keeps its files, and what its nodes are (see {@link kafkaClusterSpec}). */
export interface ClusterLayout {
  runDir: string
  version: string
  heap: string
  nodes: Array<NodeAddress & { files: NodeFiles }>
  /** Comma-separated client addresses of every node. */
  brokers: string
  /** What every node's command line contains (the node folders' common prefix). */
  marker: string
}

/** The layout of a local cluster (pure: nothing is written). */
export function clusterLayout(options: Omit<ClusterSpecOptions, 'startTimeoutMs' | 'log'>): ClusterLayout {
  const runDir = path.resolve(options.runDir ?? path.join(cacheDir(), 'kafka', `cluster-${options.basePort}-x${options.size}`))
  const nodes = clusterNodes(options.size, options.basePort, options.controllerBasePort ?? options.basePort + 100).map((n) => ({
    ...n,
    files: nodeFiles(path.join(runDir, `node-${n.id}`)),
  }))
  return {
    runDir,
    version: options.version ?? KAFKA_VERSION,
    heap: options.heap ?? process.env.KAFKA_HEAP_OPTS ?? '-Xms128m -Xmx512m',
    nodes,
    brokers: nodes.map((n) => `127.0.0.1:${n.port}`).join(','),
    marker: path.join(runDir, 'node-'),
  }
}

/**
 * True if the cluster at `brokers` answers and has at least `size` live brokers (every node has
 * registered, so topics with replication factor `size` can be created). Never throws.
 */
export async function clusterAnswers(brokers: string, size: number, timeoutMs = 5_000): Promise<boolean> {
  const admin = probeAdmin(brokers.split(','), timeoutMs)
  try {
    await admin.connect()
    const cluster = await admin.describeCluster()
    return cluster.brokers.length >= size
  } catch {
    return false
  } finally {
    await admin.disconnect().catch(() => {})
  }
}

/**
 * The service spec of a local KRaft cluster of `size` combined broker+controller nodes: `launch`
 * formats every node afresh with one new cluster id (in parallel) and spawns every node's JVM;
 * the cluster answers when all nodes are registered. The pid file holds node i's pid on line i.
 */
export function kafkaClusterSpec(options: ClusterSpecOptions): ServiceSpec & { layout: ClusterLayout } {
  const layout = clusterLayout(options)
  const { log } = options
  const first = layout.nodes[0]!
  return {
    layout,
    name: `Kafka ${layout.version} cluster`,
    runDir: layout.runDir,
    address: layout.brokers,
    port: first.port,
    ports: layout.nodes.flatMap((n) => [n.port, n.controllerPort]),
    marker: layout.marker,
    probe: () => clusterAnswers(layout.brokers, layout.nodes.length),
    logFile: first.files.serverLog,
    startTimeoutMs: options.startTimeoutMs,
    stopGraceMs: options.stopGraceMs ?? 15_000,
    log,
    async launch() {
      const classpath = await resolveKafkaClasspath(log, layout.version)
      const clusterId = randomClusterId()
      const formatStarted = Date.now()
      await Promise.all(
        layout.nodes.map((n) =>
          formatNode(
            n.files,
            brokerProperties({
              port: n.port,
              controllerPort: n.controllerPort,
              dataDir: n.files.dataDir,
              nodeId: n.id,
              nodes: layout.nodes,
            }),
            clusterId,
            classpath,
          ),
        ),
      )
      log(
        `formatted ${layout.nodes.length} nodes' KRaft storage in ${seconds(Date.now() - formatStarted)}; launching nodes on ` +
          layout.nodes.map((n) => `127.0.0.1:${n.port} (controller :${n.controllerPort})`).join(', '),
      )
      const pids: number[] = []
      try {
        for (const n of layout.nodes) pids.push(await spawnNode(n.files, classpath, layout.heap))
      } catch (err) {
        await terminateAll(pids, 5_000)
        throw err
      }
      return pids
    },
  }
}

/**
 * Resolves `kafka_2.13` and an slf4j binding with Maven (once) and returns the runtime classpath.
 * The classpath is cached in `.cache/kafka/<version>/classpath.txt`; it is re-resolved if any jar
 * in it has gone missing.
 */
export async function resolveKafkaClasspath(log: Log = stderrLog('local-kafka'), version: string = KAFKA_VERSION): Promise<string> {
  const dir = path.join(cacheDir(), 'kafka', version)
  const classpathFile = path.join(dir, 'classpath.txt')
  const cached = await readClasspath(classpathFile, version)
  if (cached) return cached
  await mkdir(dir, { recursive: true })
  return withLock(path.join(dir, 'resolve.lock'), async () => {
    const again = await readClasspath(classpathFile, version)
    if (again) return again
    log(`resolving org.apache.kafka:kafka_${SCALA_VERSION}:${version} with Maven into ${cacheDir()} (first run only)`)
    const started = Date.now()
    const pom = path.join(dir, 'pom.xml')
    await writeFile(pom, kafkaPom(version))
    const tmp = `${classpathFile}.tmp`
    await runMaven(['-f', pom, `${DEPENDENCY_PLUGIN}:build-classpath`, `-Dmdep.outputFile=${tmp}`, '-Dmdep.includeScope=runtime'])
    await rename(tmp, classpathFile)
    const classpath = await readClasspath(classpathFile, version)
    if (!classpath) throw new Error(`Maven wrote an empty or invalid classpath to ${classpathFile}`)
    log(`resolved ${classpath.split(path.delimiter).length} jars in ${seconds(Date.now() - started)}`)
    return classpath
  })
}

async function readClasspath(file: string, version: string): Promise<string | undefined> {
  const text = await readFile(file, 'utf8').catch(() => '')
  const entries = text.trim().split(path.delimiter).filter(Boolean)
  if (entries.length === 0 || !entries.every((jar) => existsSync(jar))) return undefined
  if (!entries.some((jar) => path.basename(jar) === `kafka_${SCALA_VERSION}-${version}.jar`)) return undefined
  return entries.join(path.delimiter)
}

function kafkaPom(version: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/local-kafka.ts: the jars of a Kafka ${version} broker. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>kstreams.local</groupId>
  <artifactId>kafka-broker-runtime</artifactId>
  <version>${version}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_${SCALA_VERSION}</artifactId>
      <version>${version}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>${SLF4J_VERSION}</version>
    </dependency>
  </dependencies>
</project>
`
}

async function main(): Promise<void> {
  const command = cliCommand(process.argv, 'usage: [KAFKA_CLUSTER_SIZE=3] tsx scripts/local-kafka.ts start|status|stop [--force]')
  const port = envPort('KAFKA_PORT', 9092)
  const size = envClusterSize()
  const layout =
    size > 1 ? clusterLayout({ size, basePort: port, controllerBasePort: envPort('KAFKA_CONTROLLER_PORT', port + 100) }) : undefined
  const runDir = layout?.runDir ?? path.join(cacheDir(), 'kafka', `run-${port}`)
  const marker = layout?.marker ?? path.join(runDir, 'server.properties')
  const name = layout ? `Kafka ${KAFKA_VERSION} cluster` : `Kafka ${KAFKA_VERSION} broker`
  const address = layout?.brokers ?? `127.0.0.1:${port}`
  if (command === 'start') {
    const kafka = await ensureKafka({ useEnv: false, mode: 'pinned', log: stderrLog('local-kafka') })
    await kafka.stop() // releases this CLI's lease; a pinned broker keeps running
    console.log(
      `Kafka ${layout ? `cluster of ${size} nodes` : 'broker'} ready at ${kafka.brokers}` +
        (kafka.started
          ? ` (pid ${kafka.pids?.join(', ') ?? kafka.pid}, cold start ${seconds(kafka.startMs ?? 0)})`
          : ' (already running)') +
        `. Logs: ${layout ? path.join(runDir, 'node-*', 'logs') : path.join(runDir, 'logs')}. Stop with: ${layout ? `KAFKA_CLUSTER_SIZE=${size} ` : ''}npm run kafka:stop`,
    )
  } else if (command === 'stop') {
    console.log(await stopService({ runDir, marker, name, stopGraceMs: layout ? 15_000 : 30_000 }, process.argv.includes('--force')))
  } else {
    const status = await serviceStatus({ runDir, marker })
    const answers = layout ? await clusterAnswers(address, size) : await kafkaAnswers(address)
    console.log(
      `${address}: ${answers ? 'answers' : 'does not answer'}; ` +
        (status.pid
          ? `started by this script (pid ${status.pids.join(', ')}, mode ${status.mode}, leased by ${status.leases.join(', ') || 'nobody'})`
          : 'no process started by this script'),
    )
  }
}

if (isMain(import.meta.url)) {
  main().catch((err: Error) => {
    process.stderr.write(`[local-kafka] ${err.message}\n`)
    process.exit(1)
  })
}
