/**
 * A local multi-node Kafka cluster (KRaft, every node a combined broker+controller and voter) on
 * 127.0.0.1, with control over each node for fault tests: stop, kill -9, freeze (SIGSTOP),
 * resume and restart one node keeping its data.
 *
 * CLI (`npm run kafka:cluster -- <command>`):
 * ```
 * tsx scripts/local-cluster.ts start          # start (or reuse) a pinned cluster and leave it running
 * tsx scripts/local-cluster.ts status         # every node: port, pid, running / frozen / down
 * tsx scripts/local-cluster.ts stop [--force]
 * tsx scripts/local-cluster.ts kill <id>      # kill -9 node <id> (data kept)
 * tsx scripts/local-cluster.ts freeze <id>    # SIGSTOP
 * tsx scripts/local-cluster.ts resume <id>    # SIGCONT
 * tsx scripts/local-cluster.ts restart <id>   # start node <id> again on its data, wait until it answers
 * ```
 * Environment: `KAFKA_CLUSTER_SIZE` (2..9, default 3 here), `KAFKA_PORT` (node 1's port, default 9092;
 * node i listens on port + i - 1), `KAFKA_CONTROLLER_PORT` (default port + 100), and those of
 * scripts/local-kafka.ts. `start` is `KAFKA_CLUSTER_SIZE=3 npm run kafka:start`; tests and the
 * demo reuse the running cluster when `KAFKA_CLUSTER_SIZE` is set the same way.
 *
 * Programmatic use: {@link startLocalCluster} (a private cluster a test owns).
 */
import { readFileSync } from 'node:fs'
import kafkajs from 'kafkajs'
import {
  ensureService,
  envPort,
  isAlive,
  isMain,
  isOurProcess,
  readPidLines,
  seconds,
  serviceStatus,
  setPidLine,
  sleep,
  stderrLog,
  stopService,
  tailOf,
  terminate,
  waitUntil,
  type Log,
} from './local-common.js'
import {
  clusterLayout,
  ensureKafka,
  KAFKA_VERSION,
  kafkaClusterSpec,
  resolveKafkaClasspath,
  spawnNode,
  type ClusterLayout,
  type NodeAddress,
  type NodeFiles,
  probeAdmin,
} from './local-kafka.js'

const { Kafka, logLevel } = kafkajs

/** One node (a broker+controller JVM) of a {@link LocalCluster}. */
export interface ClusterNode {
  /** KRaft node id (1-based; node i is `nodes[i - 1]`). */
  readonly id: number
  /** Client (PLAINTEXT) port on 127.0.0.1. */
  readonly port: number
  /** Pid of the node's JVM, undefined while it is down (stopped or killed). */
  pid(): number | undefined
  /**
   * SIGTERM (a frozen node is continued first) and waits for the JVM to exit: a clean shutdown,
   * data kept. After 30 000 ms it is killed. No-op when the node is down.
   */
  stop(): Promise<void>
  /** kill -9 and waits for the JVM to be gone (data kept: what a crash leaves). No-op when down. */
  kill(): Promise<void>
  /**
   * SIGSTOP: the process stays, its sockets stay open, nothing answers (what a GC pause, a stuck
   * disk or a paused VM looks like to clients).
   * @throws Error when the node is down.
   */
  freeze(): void
  /** SIGCONT, undoing {@link freeze}. @throws Error when the node is down. */
  resume(): void
  /**
   * Starts the node again on the SAME data folder (stopping it first if it runs) and waits until it
   * answers as a registered broker of the cluster.
   * @throws Error when the JVM exits during start-up (with its log's tail) or does not answer
   *   within the cluster's `startTimeoutMs`.
   */
  restart(): Promise<void>
}

/** A running local cluster, as returned by {@link startLocalCluster}. */
export interface LocalCluster {
  /** Comma-separated `host:port` of every node, for kafkajs: `brokers.split(',')`. */
  readonly brokers: string
  /** Node i at index i - 1. */
  readonly nodes: ReadonlyArray<ClusterNode>
  /**
   * Node id of the group coordinator of `groupId` (FindCoordinator, key type GROUP), as the
   * cluster answers now. Retries retriable answers (coordinator not available, a node down) for
   * up to 30 000 ms.
   * @throws Error when no node answers within that time.
   */
  groupCoordinator(groupId: string): Promise<number>
  /**
   * Node id of the transaction coordinator of `transactionalId` (FindCoordinator, key type
   * TRANSACTION); same retries as {@link LocalCluster.groupCoordinator}.
   */
  transactionCoordinator(transactionalId: string): Promise<number>
  /**
   * Stops every node: SIGTERM (frozen nodes are continued first), SIGKILL after 5 000 ms. The
   * data stays until the next start formats it afresh. Idempotent.
   */
  stop(): Promise<void>
}

/** Options of {@link startLocalCluster}. */
export interface StartLocalClusterOptions {
  /** Number of nodes, 1 to 9. Each is a combined broker+controller and KRaft voter. */
  size: number
  /**
   * Client port of node 1; node i listens on `basePort + i - 1`.
   * @defaultValue 19092 (apart from the shared broker on 9092)
   */
  basePort?: number
  /** Controller port of node 1; node i on `controllerBasePort + i - 1`. @defaultValue `basePort + 100` */
  controllerBasePort?: number
  /**
   * Folder for the nodes' data, logs and the cluster's pid file.
   * @defaultValue `.cache/kafka/cluster-<basePort>-x<size>`
   */
  dataDir?: string
  /**
   * Kafka version (resolved with Maven into `.cache/` on first use).
   * @defaultValue `KSTREAMS_KAFKA_VERSION`, else 3.9.2
   */
  version?: string
  /** Milliseconds to wait for the cluster (and later a restarted node) to answer. @defaultValue 180000 */
  startTimeoutMs?: number
  /** Where progress lines go. @defaultValue nowhere */
  log?: (message: string) => void
}

/**
 * Starts a FRESH local cluster that the caller owns (formatted anew: it starts empty), and waits
 * until every node is registered. Settings: see `brokerProperties` in scripts/local-kafka.ts
 * (replication factor min(3, size), min ISR min(2, size) for internal and new topics).
 *
 * A cluster left running on these ports by an earlier process that is gone (a crashed test run)
 * is stopped first; a cluster started with `kafka:cluster start` is never touched (an error). With `size: 1` it is one node, like the default local broker but private,
 * so a test may freeze or kill it.
 *
 * @throws Error when a port is taken by something else, a cluster on these ports is in use by
 *   another live process, or the cluster does not come up within `startTimeoutMs`.
 * @example
 * ```ts
 * const cluster = await startLocalCluster({ size: 3, basePort: 19092 });
 * await cluster.nodes[(await cluster.groupCoordinator('my-app')) - 1]!.kill();
 * await cluster.nodes[0]!.restart();
 * await cluster.stop();
 * ```
 */
export async function startLocalCluster(options: StartLocalClusterOptions): Promise<LocalCluster> {
  const log: Log = options.log ?? (() => {})
  const startTimeoutMs = options.startTimeoutMs ?? 180_000
  const basePort = options.basePort ?? 19092
  const spec = kafkaClusterSpec({
    size: options.size,
    basePort,
    ...(options.controllerBasePort !== undefined ? { controllerBasePort: options.controllerBasePort } : {}),
    ...(options.dataDir !== undefined ? { runDir: options.dataDir } : {}),
    ...(options.version !== undefined ? { version: options.version } : {}),
    // The data is formatted afresh on the next start: no need to wait long for a clean shutdown.
    stopGraceMs: 5_000,
    startTimeoutMs,
    log,
  })
  const earlier = await serviceStatus(spec)
  if (earlier.pids.length > 0 && earlier.mode === 'pinned') {
    throw new Error(
      `a ${spec.name} started with kafka:cluster / kafka:start runs at ${spec.layout.brokers} (pids ${earlier.pids.join(', ')}); ` +
        `stop it (npm run kafka:cluster -- stop) or choose other ports (basePort)`,
    )
  }
  // Left by a process that is gone (a crashed test run): stopped unless a live process leases it.
  const leftover = await stopService(spec, false)
  if (!leftover.startsWith('no ')) log(`earlier cluster at ${spec.layout.runDir}: ${leftover}`)
  const handle = await ensureService(spec, 'auto')
  if (!handle.started) {
    await handle.stop()
    throw new Error(`a ${spec.name} already runs at ${spec.layout.brokers} and is in use by another process; choose other ports (basePort)`)
  }
  log(
    `${spec.name} of ${options.size} node(s) started at ${spec.layout.brokers} in ${seconds(handle.startMs ?? 0)} (pids ${handle.pids.join(', ')})`,
  )
  const nodes = spec.layout.nodes.map((n, i) => new LocalClusterNode(spec.layout, n, handle.pids[i], startTimeoutMs, log))
  let stopped = false
  return {
    brokers: spec.layout.brokers,
    nodes,
    groupCoordinator: (groupId) => findCoordinator(spec.layout.brokers, groupId, COORDINATOR_GROUP),
    transactionCoordinator: (transactionalId) => findCoordinator(spec.layout.brokers, transactionalId, COORDINATOR_TRANSACTION),
    async stop() {
      if (stopped) return
      stopped = true
      for (const node of nodes) node.continueIfFrozen()
      await handle.stop()
    },
  }
}

/** {@link ClusterNode} over one node folder of a cluster; keeps line `id` of the pid file current. */
class LocalClusterNode implements ClusterNode {
  readonly id: number
  readonly port: number
  readonly #layout: ClusterLayout
  readonly #files: NodeFiles
  readonly #startTimeoutMs: number
  readonly #log: Log
  #pid: number | undefined

  constructor(layout: ClusterLayout, node: NodeAddress & { files: NodeFiles }, pid: number | undefined, startTimeoutMs: number, log: Log) {
    this.id = node.id
    this.port = node.port
    this.#layout = layout
    this.#files = node.files
    this.#startTimeoutMs = startTimeoutMs
    this.#log = log
    this.#pid = pid !== undefined && pid > 0 && isOurProcess(pid, layout.marker) ? pid : undefined
  }

  pid(): number | undefined {
    if (this.#pid !== undefined && !isAlive(this.#pid)) this.#pid = undefined
    return this.#pid
  }

  async stop(): Promise<void> {
    const pid = this.pid()
    if (pid === undefined) return
    const outcome = await terminate(pid, 30_000)
    await this.#down(`stopped (${outcome})`)
  }

  async kill(): Promise<void> {
    const pid = this.pid()
    if (pid === undefined) return
    try {
      process.kill(pid, 'SIGKILL')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
    }
    while (isAlive(pid)) await sleep(20)
    await this.#down('killed (-9)')
  }

  freeze(): void {
    process.kill(this.#running('freeze'), 'SIGSTOP')
    this.#log(`node ${this.id} frozen (SIGSTOP)`)
  }

  resume(): void {
    process.kill(this.#running('resume'), 'SIGCONT')
    this.#log(`node ${this.id} resumed (SIGCONT)`)
  }

  /** SIGCONT when running; never throws (used before stopping the cluster). */
  continueIfFrozen(): void {
    const pid = this.pid()
    if (pid === undefined) return
    try {
      process.kill(pid, 'SIGCONT')
    } catch {
      /* exited meanwhile */
    }
  }

  async restart(): Promise<void> {
    await this.stop()
    const started = Date.now()
    const classpath = await resolveKafkaClasspath(this.#log, this.#layout.version)
    const pid = await spawnNode(this.#files, classpath, this.#layout.heap)
    this.#pid = pid
    await setPidLine(this.#layout.runDir, this.id - 1, pid)
    const answered = await waitUntil(() => nodeRegistered(this.port, this.id), {
      timeoutMs: this.#startTimeoutMs,
      intervalMs: 250,
      abort: () =>
        isAlive(pid)
          ? undefined
          : `node ${this.id} (pid ${pid}) exited during restart. Last lines of ${this.#files.stdoutFile}:\n${tailOf(this.#files.stdoutFile)}\n${tailOf(this.#files.serverLog)}`,
    })
    if (!answered) {
      throw new Error(
        `node ${this.id} (pid ${pid}) did not answer within ${seconds(this.#startTimeoutMs)} of its restart. Last lines of ${this.#files.serverLog}:\n${tailOf(this.#files.serverLog)}`,
      )
    }
    this.#log(`node ${this.id} restarted on its data in ${seconds(Date.now() - started)} (pid ${pid})`)
  }

  #running(what: string): number {
    const pid = this.pid()
    if (pid === undefined) throw new Error(`cannot ${what} node ${this.id} (127.0.0.1:${this.port}): it is not running`)
    return pid
  }

  async #down(what: string): Promise<void> {
    this.#pid = undefined
    await setPidLine(this.#layout.runDir, this.id - 1, 0)
    this.#log(`node ${this.id} ${what}`)
  }
}

/**
 * True if the node on 127.0.0.1:`port` answers and lists itself among the live brokers (KRaft
 * serves clients only once the node has caught up with the metadata log and is unfenced).
 * Never throws.
 */
export async function nodeRegistered(port: number, id: number, timeoutMs = 5_000): Promise<boolean> {
  const admin = probeAdmin([`127.0.0.1:${port}`], timeoutMs)
  try {
    await admin.connect()
    const cluster = await admin.describeCluster()
    return cluster.brokers.some((b) => b.nodeId === id)
  } catch {
    return false
  } finally {
    await admin.disconnect().catch(() => {})
  }
}

/** FindCoordinator key types (Kafka protocol). */
const COORDINATOR_GROUP = 0
const COORDINATOR_TRANSACTION = 1

interface KafkajsCluster {
  connect(): Promise<void>
  disconnect(): Promise<void>
  refreshMetadata(): Promise<void>
  findGroupCoordinatorMetadata(args: { groupId: string; coordinatorType: number }): Promise<{ coordinator: { nodeId: number } }>
}

/**
 * Asks the cluster at `brokers` which node coordinates `key` (a group id or a transactional id),
 * through kafkajs' FindCoordinator (its internal cluster object: the admin client does not
 * expose FindCoordinator). Retries for up to `timeoutMs`.
 */
async function findCoordinator(brokers: string, key: string, coordinatorType: number, timeoutMs = 30_000): Promise<number> {
  const kafka = new Kafka({
    clientId: 'kstreams-local-cluster',
    brokers: brokers.split(','),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: 5_000,
    retry: { retries: 2, initialRetryTime: 200 },
  })
  const createSymbol = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster')
  if (!createSymbol) throw new Error('this kafkajs version has no private cluster factory (kafkajs 2.2.4 is required)')
  const create = (kafka as unknown as Record<symbol, (o: object) => KafkajsCluster>)[createSymbol]!
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < deadline) {
    const cluster = create({ allowAutoTopicCreation: false, maxInFlightRequests: null })
    try {
      await cluster.connect()
      await cluster.refreshMetadata()
      const { coordinator } = await cluster.findGroupCoordinatorMetadata({ groupId: key, coordinatorType })
      return coordinator.nodeId
    } catch (err) {
      lastError = err
      await sleep(500)
    } finally {
      await cluster.disconnect().catch(() => {})
    }
  }
  const kind = coordinatorType === COORDINATOR_GROUP ? 'group' : 'transaction'
  throw new Error(
    `no ${kind} coordinator found for '${key}' at ${brokers} within ${seconds(timeoutMs)}: ${(lastError as Error | undefined)?.message ?? 'no answer'}`,
    {
      cause: lastError,
    },
  )
}

/** A node's process state from /proc: `running`, `frozen` (stopped by a signal) or `down`. */
export function processState(pid: number | undefined): 'running' | 'frozen' | 'down' {
  if (pid === undefined || pid <= 0 || !isAlive(pid)) return 'down'
  try {
    // /proc/<pid>/stat: "pid (comm) S ..."; the state letter follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return state === 'T' ? 'frozen' : 'running'
  } catch {
    return 'running'
  }
}

/** A parsed command line of the CLI. */
export type ClusterCommand =
  | { command: 'start' }
  | { command: 'status' }
  | { command: 'stop'; force: boolean }
  | { command: 'kill' | 'freeze' | 'resume' | 'restart'; node: number }

/** The CLI's usage line. */
export const CLUSTER_USAGE =
  'usage: tsx scripts/local-cluster.ts start|stop [--force]|status|kill <id>|freeze <id>|resume <id>|restart <id>'

/**
 * Parses the CLI arguments (after `tsx scripts/local-cluster.ts`).
 * @param size number of nodes, to check `<id>` against.
 * @throws Error with the usage line when the command or node id is not valid.
 */
export function parseClusterArgs(args: ReadonlyArray<string>, size: number): ClusterCommand {
  const [command = 'start', ...rest] = args
  if (command === 'start') return { command }
  if (command === 'status') return { command }
  if (command === 'stop') return { command, force: rest.includes('--force') }
  if (command === 'kill' || command === 'freeze' || command === 'resume' || command === 'restart') {
    const raw = rest[0]
    const node = Number(raw)
    if (raw === undefined || !Number.isInteger(node) || node < 1 || node > size) {
      throw new Error(
        `${command} needs a node id from 1 to ${size}, got ${raw === undefined ? 'none' : JSON.stringify(raw)}\n${CLUSTER_USAGE}`,
      )
    }
    return { command, node }
  }
  throw new Error(`unknown command ${JSON.stringify(command)}\n${CLUSTER_USAGE}`)
}

async function main(): Promise<void> {
  const log = stderrLog('local-cluster')
  const sizeRaw = process.env.KAFKA_CLUSTER_SIZE
  const size = sizeRaw === undefined || sizeRaw === '' ? 3 : Number(sizeRaw)
  if (!Number.isInteger(size) || size < 2 || size > 9) {
    throw new Error(`KAFKA_CLUSTER_SIZE=${JSON.stringify(sizeRaw)} is not a cluster size (2..9); one broker: npm run kafka:start`)
  }
  const parsed = parseClusterArgs(process.argv.slice(2), size)
  const basePort = envPort('KAFKA_PORT', 9092)
  const layout = clusterLayout({ size, basePort, controllerBasePort: envPort('KAFKA_CONTROLLER_PORT', basePort + 100) })
  const name = `Kafka ${KAFKA_VERSION} cluster`

  if (parsed.command === 'start') {
    const kafka = await ensureKafka({
      useEnv: false,
      mode: 'pinned',
      clusterSize: size,
      port: basePort,
      controllerPort: layout.nodes[0]!.controllerPort,
      log,
    })
    await kafka.stop() // releases this CLI's lease; a pinned cluster keeps running
    console.log(
      `Kafka cluster of ${size} nodes ready at ${kafka.brokers}` +
        (kafka.started ? ` (pids ${kafka.pids?.join(', ')}, cold start ${seconds(kafka.startMs ?? 0)})` : ' (already running)') +
        `. Data and logs: ${layout.runDir}/node-<id>. Stop with: npm run kafka:cluster -- stop`,
    )
    return
  }
  if (parsed.command === 'stop') {
    console.log(await stopService({ runDir: layout.runDir, marker: layout.marker, name, stopGraceMs: 15_000 }, parsed.force))
    return
  }
  const pids = await readPidLines(`${layout.runDir}/pid`)
  if (parsed.command === 'status') {
    const status = await serviceStatus({ runDir: layout.runDir, marker: layout.marker })
    console.log(
      `${name} at ${layout.brokers}: ${status.pids.length > 0 ? `mode ${status.mode}, leased by ${status.leases.join(', ') || 'nobody'}` : 'not started by these scripts'}`,
    )
    for (const n of layout.nodes) {
      const pid = pids[n.id - 1]
      const ours = pid !== undefined && pid > 0 && isOurProcess(pid, layout.marker)
      const state = ours ? processState(pid) : 'down'
      const answers = state === 'running' ? await nodeRegistered(n.port, n.id) : false
      console.log(
        `  node ${n.id} 127.0.0.1:${n.port} (controller :${n.controllerPort}): ${state}${ours ? ` pid ${pid}` : ''}${state === 'running' ? (answers ? ', answers' : ', does not answer') : ''}`,
      )
    }
    return
  }
  const address = layout.nodes[parsed.node - 1]!
  const node = new LocalClusterNode(layout, address, pids[parsed.node - 1], 180_000, log)
  if (parsed.command === 'kill') await node.kill()
  else if (parsed.command === 'freeze') node.freeze()
  else if (parsed.command === 'resume') node.resume()
  else await node.restart()
  console.log(`node ${node.id} (127.0.0.1:${node.port}): ${processState(node.pid())}${node.pid() ? ` pid ${node.pid()}` : ''}`)
}

if (isMain(import.meta.url)) {
  main().catch((err: Error) => {
    process.stderr.write(`[local-cluster] ${err.message}\n`)
    process.exit(1)
  })
}
