/**
 * A local Apache Kafka broker on demand, for tests, demos and benchmarks on machines without
 * Docker: resolves the broker jars from Maven Central into `.cache/` once, formats KRaft storage
 * and runs ONE combined broker+controller JVM on 127.0.0.1.
 *
 * CLI (`npm run kafka:start` / `kafka:stop`):
 * ```
 * tsx scripts/local-kafka.ts start     # start (or reuse) and leave it running
 * tsx scripts/local-kafka.ts status
 * tsx scripts/local-kafka.ts stop [--force]
 * ```
 * Environment: `KAFKA_PORT` (default 9092), `KAFKA_CONTROLLER_PORT` (default port + 1),
 * `KAFKA_HEAP_OPTS` (default `-Xms256m -Xmx768m`), `KSTREAMS_KAFKA_VERSION` (default 3.9.2),
 * `KSTREAMS_CACHE_DIR`, `KSTREAMS_MAVEN_REPO`, `JAVA_HOME`.
 *
 * Programmatic use: {@link ensureKafka}.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import path from 'node:path';
import kafkajs from 'kafkajs';
import {
  DEPENDENCY_PLUGIN,
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
} from './local-common.js';

const { Kafka, logLevel } = kafkajs;

/** The broker version the project is tested against. */
export const KAFKA_VERSION = process.env.KSTREAMS_KAFKA_VERSION ?? '3.9.2';
const SCALA_VERSION = '2.13';
/** The slf4j binding Kafka 3.9's own distribution ships (slf4j 1.7 + reload4j). */
const SLF4J_VERSION = '1.7.36';

/** Options of {@link ensureKafka}. Every field is optional. */
export interface EnsureKafkaOptions {
  /**
   * Client port of the local broker (PLAINTEXT listener on 127.0.0.1).
   * @defaultValue `KAFKA_PORT` from the environment, else 9092
   */
  port?: number;
  /**
   * Port of the KRaft controller listener.
   * @defaultValue `KAFKA_CONTROLLER_PORT` from the environment, else `port + 1`
   */
  controllerPort?: number;
  /**
   * When true and `KAFKA_BROKERS` is set, use that cluster instead of a local broker (after
   * checking that it answers); nothing is started or stopped.
   * @defaultValue true
   */
  useEnv?: boolean;
  /**
   * `auto`: the broker is stopped by the last `stop()` of a process that leased it.
   * `pinned`: it keeps running until `npm run kafka:stop` (what `kafka:start` uses).
   * @defaultValue `'auto'`
   */
  mode?: 'auto' | 'pinned';
  /**
   * Milliseconds to wait for a newly launched broker to answer.
   * @defaultValue 180000
   */
  startTimeoutMs?: number;
  /**
   * Where progress lines go.
   * @defaultValue one `[local-kafka] ...` line per message on stderr
   */
  log?: (message: string) => void;
}

/** A broker that answers, as returned by {@link ensureKafka}. */
export interface LocalKafka {
  /** Comma-separated `host:port` list for kafkajs: `brokers.split(',')`. */
  brokers: string;
  /** True if this call launched the broker process. */
  started: boolean;
  /** Milliseconds from launch until the broker answered (only when `started`). */
  startMs?: number;
  /** Pid of the broker JVM when these scripts started it. */
  pid?: number;
  /**
   * Releases this process's lease on the broker. The broker is stopped when it was started in
   * `auto` mode and no other live process still leases it; a broker from `KAFKA_BROKERS`, from
   * `npm run kafka:start` or from someone else is never stopped. Idempotent.
   */
  stop(): Promise<void>;
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
  const log: Log = options.log ?? stderrLog('local-kafka');
  const fromEnv = process.env.KAFKA_BROKERS;
  if ((options.useEnv ?? true) && fromEnv) {
    const deadline = Date.now() + 30_000;
    while (!(await kafkaAnswers(fromEnv))) {
      if (Date.now() > deadline) throw new Error(`KAFKA_BROKERS=${fromEnv} does not answer (admin describeCluster)`);
      await new Promise((r) => setTimeout(r, 500));
    }
    return { brokers: fromEnv, started: false, stop: async () => {} };
  }

  const port = options.port ?? envPort('KAFKA_PORT', 9092);
  const controllerPort = options.controllerPort ?? envPort('KAFKA_CONTROLLER_PORT', port + 1);
  const spec = kafkaSpec(port, controllerPort, options.startTimeoutMs ?? 180_000, log);
  const handle = await ensureService(spec, options.mode ?? 'auto');
  if (handle.started) log(`${spec.name} started at ${spec.address} in ${seconds(handle.startMs ?? 0)} (pid ${handle.pid})`);
  else log(`${spec.name} already answering at ${spec.address}${handle.pid ? ` (pid ${handle.pid})` : ''}: reusing it`);
  return {
    brokers: spec.address,
    started: handle.started,
    ...(handle.startMs !== undefined ? { startMs: handle.startMs } : {}),
    ...(handle.pid !== undefined ? { pid: handle.pid } : {}),
    stop: () => handle.stop(),
  };
}

/**
 * True if a Kafka cluster answers an admin describeCluster at `brokers` (comma-separated)
 * within `timeoutMs`. Never throws.
 */
export async function kafkaAnswers(brokers: string, timeoutMs = 5_000): Promise<boolean> {
  const admin = new Kafka({
    clientId: 'kstreams-local-probe',
    brokers: brokers.split(','),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/**
 * The broker's `server.properties` for one combined broker+controller node. Kept in sync with
 * `docker/docker-compose.yml`.
 */
export function brokerProperties(opts: { port: number; controllerPort: number; dataDir: string }): string {
  const props: Record<string, string | number> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@127.0.0.1:${opts.controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${opts.port},CONTROLLER://127.0.0.1:${opts.controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${opts.port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'log.dirs': opts.dataDir,
    'num.partitions': 1,
    'default.replication.factor': 1,
    'auto.create.topics.enable': 'false',
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 10,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 10,
    'group.initial.rebalance.delay.ms': 0,
    'num.network.threads': 2,
    'num.io.threads': 4,
    'log.retention.hours': 24,
  };
  return Object.entries(props)
    .map(([key, value]) => `${key}=${value}`)
    .join('\n')
    .concat('\n');
}

function log4jProperties(logsDir: string): string {
  const file = path.join(logsDir, 'server.log').replaceAll('\\', '/');
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
  ].join('\n');
}

/** A random KRaft cluster id (16 random bytes, base64url, not starting with '-'). */
export function randomClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function kafkaSpec(port: number, controllerPort: number, startTimeoutMs: number, log: Log): ServiceSpec {
  const runDir = path.join(cacheDir(), 'kafka', `run-${port}`);
  const configFile = path.join(runDir, 'server.properties');
  const logsDir = path.join(runDir, 'logs');
  const stdoutFile = path.join(logsDir, 'stdout.log');
  return {
    name: `Kafka ${KAFKA_VERSION} broker`,
    runDir,
    address: `127.0.0.1:${port}`,
    port,
    marker: configFile,
    probe: () => kafkaAnswers(`127.0.0.1:${port}`),
    logFile: path.join(logsDir, 'server.log'),
    startTimeoutMs,
    log,
    async launch() {
      const classpath = await resolveKafkaClasspath(log);
      const dataDir = path.join(runDir, 'data');
      await rm(dataDir, { recursive: true, force: true });
      await rm(logsDir, { recursive: true, force: true });
      await mkdir(dataDir, { recursive: true });
      await mkdir(logsDir, { recursive: true });
      await writeFile(configFile, brokerProperties({ port, controllerPort, dataDir }));
      const log4jFile = path.join(runDir, 'log4j.properties');
      await writeFile(log4jFile, log4jProperties(logsDir));
      const jvmLogging = [`-Dlog4j.configuration=file:${log4jFile}`, `-Dkafka.logs.dir=${logsDir}`];

      const formatStarted = Date.now();
      await run(
        javaBin(),
        [...jvmLogging, '-Xmx256m', '-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', randomClusterId(), '-c', configFile],
        { missingHint: JAVA_HINT },
      );
      log(`formatted KRaft storage in ${seconds(Date.now() - formatStarted)}; launching the broker on 127.0.0.1:${port} (controller :${controllerPort})`);

      const heap = (process.env.KAFKA_HEAP_OPTS ?? '-Xms256m -Xmx768m').split(/\s+/).filter(Boolean);
      const out = openSync(stdoutFile, 'a');
      try {
        const child = spawn(
          javaBin(),
          [
            ...heap,
            '-XX:+UseG1GC',
            '-XX:MaxGCPauseMillis=20',
            '-XX:InitiatingHeapOccupancyPercent=35',
            '-XX:+ExplicitGCInvokesConcurrent',
            '-Djava.awt.headless=true',
            ...jvmLogging,
            '-cp',
            classpath,
            'kafka.Kafka',
            configFile,
          ],
          { cwd: runDir, detached: true, stdio: ['ignore', out, out] },
        );
        child.unref();
        if (child.pid === undefined) throw new Error(`could not launch ${javaBin()}. ${JAVA_HINT}`);
        return child.pid;
      } finally {
        closeSync(out);
      }
    },
  };
}

/**
 * Resolves `kafka_2.13` and an slf4j binding with Maven (once) and returns the runtime classpath.
 * The classpath is cached in `.cache/kafka/<version>/classpath.txt`; it is re-resolved if any jar
 * in it has gone missing.
 */
export async function resolveKafkaClasspath(log: Log = stderrLog('local-kafka')): Promise<string> {
  const dir = path.join(cacheDir(), 'kafka', KAFKA_VERSION);
  const classpathFile = path.join(dir, 'classpath.txt');
  const cached = await readClasspath(classpathFile);
  if (cached) return cached;
  await mkdir(dir, { recursive: true });
  return withLock(path.join(dir, 'resolve.lock'), async () => {
    const again = await readClasspath(classpathFile);
    if (again) return again;
    log(`resolving org.apache.kafka:kafka_${SCALA_VERSION}:${KAFKA_VERSION} with Maven into ${cacheDir()} (first run only)`);
    const started = Date.now();
    const pom = path.join(dir, 'pom.xml');
    await writeFile(pom, kafkaPom());
    const tmp = `${classpathFile}.tmp`;
    await runMaven(['-f', pom, `${DEPENDENCY_PLUGIN}:build-classpath`, `-Dmdep.outputFile=${tmp}`, '-Dmdep.includeScope=runtime']);
    await rename(tmp, classpathFile);
    const classpath = await readClasspath(classpathFile);
    if (!classpath) throw new Error(`Maven wrote an empty or invalid classpath to ${classpathFile}`);
    log(`resolved ${classpath.split(path.delimiter).length} jars in ${seconds(Date.now() - started)}`);
    return classpath;
  });
}

async function readClasspath(file: string): Promise<string | undefined> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const entries = text.trim().split(path.delimiter).filter(Boolean);
  if (entries.length === 0 || !entries.every((jar) => existsSync(jar))) return undefined;
  if (!entries.some((jar) => path.basename(jar) === `kafka_${SCALA_VERSION}-${KAFKA_VERSION}.jar`)) return undefined;
  return entries.join(path.delimiter);
}

function kafkaPom(): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/local-kafka.ts: the jars of a Kafka ${KAFKA_VERSION} broker. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>kstreams.local</groupId>
  <artifactId>kafka-broker-runtime</artifactId>
  <version>${KAFKA_VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_${SCALA_VERSION}</artifactId>
      <version>${KAFKA_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>${SLF4J_VERSION}</version>
    </dependency>
  </dependencies>
</project>
`;
}

async function main(): Promise<void> {
  const command = cliCommand(process.argv, 'usage: tsx scripts/local-kafka.ts start|status|stop [--force]');
  const port = envPort('KAFKA_PORT', 9092);
  const runDir = path.join(cacheDir(), 'kafka', `run-${port}`);
  const marker = path.join(runDir, 'server.properties');
  const name = `Kafka ${KAFKA_VERSION} broker`;
  if (command === 'start') {
    const kafka = await ensureKafka({ useEnv: false, mode: 'pinned', log: stderrLog('local-kafka') });
    await kafka.stop(); // releases this CLI's lease; a pinned broker keeps running
    console.log(
      `Kafka broker ready at ${kafka.brokers}` +
        (kafka.started ? ` (pid ${kafka.pid}, cold start ${seconds(kafka.startMs ?? 0)})` : ' (already running)') +
        `. Logs: ${path.join(runDir, 'logs')}. Stop with: npm run kafka:stop`,
    );
  } else if (command === 'stop') {
    console.log(await stopService({ runDir, marker, name }, process.argv.includes('--force')));
  } else {
    const status = await serviceStatus({ runDir, marker });
    const answers = await kafkaAnswers(`127.0.0.1:${port}`);
    console.log(
      `127.0.0.1:${port}: ${answers ? 'answers' : 'does not answer'}; ` +
        (status.pid ? `started by this script (pid ${status.pid}, mode ${status.mode}, leased by ${status.leases.join(', ') || 'nobody'})` : 'no process started by this script'),
    );
  }
}

if (isMain(import.meta.url)) {
  main().catch((err: Error) => {
    process.stderr.write(`[local-kafka] ${err.message}\n`);
    process.exit(1);
  });
}
