/**
 * An independent read_committed reader for verifiers: Kafka's own Java consumer and admin client
 * (from the jars scripts/local-kafka.ts already resolves into `.cache/`), not kafkajs. kafkajs
 * 2.2.4 needs kstreams' own patch to read_committed correctly (lib/app/client/kafkajs-internals.ts), so a
 * verifier built on kafkajs would share the bug it should catch.
 *
 * The Java side is test/chaos/tools/ReadCommitted.java, compiled with `javac` on first use into
 * `.cache/kafka/<version>/java-reader-<hash>/` (about 2 s once; each call then starts one JVM,
 * about 1 s). Needs a JDK (javac) besides the JRE the local broker needs.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { cacheDir, javaBin, run, withLock, JAVA_HINT } from '../../../scripts/local-common.js'
import { KAFKA_VERSION, resolveKafkaClasspath } from '../../../scripts/local-kafka.js'

const SOURCE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'ReadCommitted.java')
const MAIN_CLASS = 'ReadCommitted'

/** One record as Kafka's Java consumer returned it; key and value decoded as UTF-8. */
export interface JavaRecord {
  topic: string
  partition: number
  offset: number
  key: string | null
  value: string | null
  /** Record timestamp, ms since the epoch. */
  timestamp: number
}

/** Options of {@link readCommittedJava}. */
export interface ReadCommittedJavaOptions {
  /**
   * Milliseconds the whole read may take (JVM start, waiting for open transactions, reading).
   * @defaultValue 120000
   */
  timeoutMs?: number
  /**
   * Milliseconds to wait for a transaction that is open on the topic at call time to end (its
   * producer commits or aborts it, or the coordinator aborts it at its transaction timeout)
   * before failing with "open transaction on <topic>-<p>".
   * @defaultValue 10000
   */
  openTransactionWaitMs?: number
}

/**
 * Reads every committed record of `topic` (all partitions) from the beginning up to the end
 * offsets at call time (read_committed), with Kafka's Java consumer. Under read_committed the end
 * is the last stable offset; the read waits up to `openTransactionWaitMs` until no transaction is
 * open on the topic (last stable offset = high watermark), so that the result is the whole
 * committed content, and never hangs on a transaction that stays open.
 *
 * @param brokers comma-separated `host:port` list.
 * @returns the records in partition order, then offset order (records of aborted transactions
 *   and transaction markers are not there).
 * @throws Error "open transaction on <topic>-<p> (last stable offset L, high watermark H) after
 *   waiting N ms" when a transaction stays open; "unknown topic <topic>"; "timed out after N ms
 *   reading <topic>: ..."; or the JVM's output when it fails otherwise (no Java, no broker).
 */
export async function readCommittedJava(brokers: string, topic: string, options: ReadCommittedJavaOptions = {}): Promise<JavaRecord[]> {
  const timeoutMs = options.timeoutMs ?? 120_000
  const openWait = options.openTransactionWaitMs ?? 10_000
  const lines = await runTool(['read', brokers, topic, String(timeoutMs), String(openWait)], timeoutMs + 30_000)
  const records: JavaRecord[] = []
  let done = false
  for (const line of lines) {
    const f = line.split('\t')
    if (f[0] === 'R') {
      records.push({
        topic,
        partition: Number(f[1]),
        offset: Number(f[2]),
        timestamp: Number(f[3]),
        key: decode(f[4]!),
        value: decode(f[5]!),
      })
    } else if (f[0] === 'D') {
      done = true
      if (Number(f[1]) !== records.length) throw new Error(`Java reader of ${topic} reported ${f[1]} records but printed ${records.length}`)
    }
  }
  if (!done) throw new Error(`Java reader of ${topic} ended without its completion line`)
  return records.sort((a, b) => a.partition - b.partition || a.offset - b.offset)
}

/** A transaction that its coordinator holds open (state ONGOING or PREPARE_*). */
export interface OpenTransaction {
  transactionalId: string
  producerId: number
  producerEpoch: number
  state: string
  /** When the transaction started, ms since the epoch; -1 when the coordinator does not say. */
  startTimeMs: number
  /** The producer's transaction timeout, ms. */
  transactionTimeoutMs: number
  /** `<topic>-<partition>` of every partition in the transaction. */
  partitions: string[]
}

/** A partition-level open transaction (Kafka's `kafka-transactions.sh find-hanging` looks at these). */
export interface PartitionOpenTransaction {
  topic: string
  partition: number
  producerId: number
  producerEpoch: number
  /** First offset of the open transaction on this partition. */
  startOffset: number
  /** Timestamp of the producer's last write, ms since the epoch. */
  lastTimestamp: number
}

/**
 * The transactions open right now: every transaction a coordinator holds in ONGOING or
 * PREPARE_COMMIT / PREPARE_ABORT / PREPARE_EPOCH_FENCE (Admin listTransactions +
 * describeTransactions), and, for each partition of `topics`, every producer whose transaction is
 * open there (Admin describeProducers). A partition entry without a coordinator entry for the same
 * producer id is a hanging transaction.
 *
 * @throws Error with the JVM's output when the admin calls fail (after 30 000 ms per call).
 */
export async function openTransactions(
  brokers: string,
  options: { topics?: string[]; timeoutMs?: number } = {},
): Promise<{ transactions: OpenTransaction[]; partitions: PartitionOpenTransaction[] }> {
  const lines = await runTool(['open-transactions', brokers, ...(options.topics ?? [])], options.timeoutMs ?? 90_000)
  const transactions: OpenTransaction[] = []
  const partitions: PartitionOpenTransaction[] = []
  for (const line of lines) {
    const f = line.split('\t')
    if (f[0] === 'T') {
      transactions.push({
        transactionalId: f[1]!,
        producerId: Number(f[2]),
        producerEpoch: Number(f[3]),
        state: f[4]!,
        startTimeMs: Number(f[5]),
        transactionTimeoutMs: Number(f[6]),
        partitions: f[7] ? f[7].split(',') : [],
      })
    } else if (f[0] === 'H') {
      partitions.push({
        topic: f[1]!,
        partition: Number(f[2]),
        producerId: Number(f[3]),
        producerEpoch: Number(f[4]),
        startOffset: Number(f[5]),
        lastTimestamp: Number(f[6]),
      })
    }
  }
  return { transactions, partitions }
}

function decode(field: string): string | null {
  return field === '-' ? null : Buffer.from(field, 'base64').toString('utf8')
}

/** Runs the Java tool; resolves with its stdout lines, rejects with its `E` line or output tail. */
async function runTool(args: string[], killAfterMs: number): Promise<string[]> {
  const { classDir, classpath } = await compiledTool()
  return new Promise((resolve, reject) => {
    const child = spawn(
      javaBin(),
      [
        '-Xmx256m',
        '-XX:+UseSerialGC',
        '-XX:TieredStopAtLevel=1',
        `-Dlog4j.configuration=file:${path.join(classDir, 'log4j.properties')}`,
        '-cp',
        [classDir, classpath].join(path.delimiter),
        MAIN_CLASS,
        ...args,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    const out: Buffer[] = []
    let err = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs)
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => {
      err = (err + chunk.toString()).slice(-8_000)
    })
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      reject(e.code === 'ENOENT' ? new Error(`'${javaBin()}' was not found. ${JAVA_HINT}`) : e)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const lines = Buffer.concat(out).toString('utf8').split('\n').filter(Boolean)
      const failure = lines.find((l) => l.startsWith('E\t'))
      if (code === 0 && failure === undefined) resolve(lines)
      else if (failure !== undefined) reject(new Error(failure.slice(2)))
      else
        reject(
          new Error(`Java reader ${args[0]} failed (${signal ?? `exit ${code}`}):\n${err.trimEnd().split('\n').slice(-20).join('\n')}`),
        )
    })
  })
}

/** Compiles ReadCommitted.java against kafka-clients once per source and Kafka version. */
async function compiledTool(): Promise<{ classDir: string; classpath: string }> {
  const classpath = await resolveKafkaClasspath(() => {}, KAFKA_VERSION)
  const source = await readFile(SOURCE)
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 12)
  const classDir = path.join(cacheDir(), 'kafka', KAFKA_VERSION, `java-reader-${hash}`)
  if (existsSync(path.join(classDir, `${MAIN_CLASS}.class`))) return { classDir, classpath }
  await withLock(`${classDir}.lock`, async () => {
    if (existsSync(path.join(classDir, `${MAIN_CLASS}.class`))) return
    const tmp = `${classDir}.tmp-${process.pid}`
    await rm(tmp, { recursive: true, force: true })
    await mkdir(tmp, { recursive: true })
    const javac = javaBin().replace(/java$/, 'javac')
    await run(javac, ['-nowarn', '-d', tmp, '-cp', classpath, SOURCE], {
      missingHint: `javac (a JDK) is needed for the Java reader. ${JAVA_HINT}`,
    })
    await writeFile(
      path.join(tmp, 'log4j.properties'),
      [
        'log4j.rootLogger=WARN, stderr',
        'log4j.appender.stderr=org.apache.log4j.ConsoleAppender',
        'log4j.appender.stderr.Target=System.err',
        'log4j.appender.stderr.layout=org.apache.log4j.PatternLayout',
        'log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n',
        '',
      ].join('\n'),
    )
    await rm(classDir, { recursive: true, force: true })
    await rename(tmp, classDir)
  })
  return { classDir, classpath }
}
