/**
 * The Kafka the fault scenarios break: a PRIVATE broker (or cluster) that the harness starts, owns
 * and stops, never the shared one on 9092 that other test runs use.
 *
 * {@link Cluster} is the one shape the scenarios see: bootstrap brokers plus nodes that can be
 * frozen (SIGSTOP: the process stays, its sockets stay open, nothing answers — what a GC pause,
 * a stuck disk or a paused VM looks like to clients) and resumed.
 */
import { ensureKafka } from '../../scripts/local-kafka.js'

/** One broker process of a {@link Cluster}. */
export interface ClusterNode {
  readonly id: number
  readonly port: number
  pid(): number | undefined
  freeze(): void
  resume(): void
}

/** A running Kafka the harness owns. */
export interface Cluster {
  /** Comma-separated bootstrap list. */
  readonly brokers: string
  readonly nodes: ReadonlyArray<ClusterNode>
  /** Stops every node (resuming a frozen one first). Idempotent. */
  stop(): Promise<void>
}

/** Sends `sig` to `pid`, ignoring a process that is already gone. */
export function signal(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return
  try {
    process.kill(pid, sig)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e
  }
}

/**
 * Starts (or reuses, if this harness left one running) a single combined broker+controller on
 * 127.0.0.1:`port` (controller `port + 1`), with its own data directory under
 * `.cache/kafka/run-<port>`. The default port 29092 keeps it apart from the shared 9092.
 * @throws Error when `port` is 9092 (the shared broker must never be frozen by a fault test).
 */
export async function startPrivateBroker(options: { port?: number; log?: (m: string) => void } = {}): Promise<Cluster> {
  const port = options.port ?? 29092
  if (port === 9092) throw new Error('the fault harness never uses the shared broker on 9092')
  const kafka = await ensureKafka({ port, controllerPort: port + 1, useEnv: false, mode: 'auto', log: options.log ?? (() => {}) })
  if (kafka.pid === undefined) throw new Error(`a broker answers on ${port} but was not started by these scripts: refusing to freeze it`)
  const pid = kafka.pid
  const node: ClusterNode = {
    id: 1,
    port,
    pid: () => pid,
    freeze: () => signal(pid, 'SIGSTOP'),
    resume: () => signal(pid, 'SIGCONT'),
  }
  let stopped = false
  return {
    brokers: kafka.brokers,
    nodes: [node],
    async stop() {
      if (stopped) return
      stopped = true
      node.resume()
      await kafka.stop()
    },
  }
}
