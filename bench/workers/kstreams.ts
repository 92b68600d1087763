/**
 * The kstreams workloads W1–W7, one `KafkaStreams` instance per process, with the same
 * topologies as the Java reference (bench/reference/…/Reference.java): string serdes, Kafka's
 * big-endian longs for counts, one `peek` at each source that marks the first input record.
 *
 * Invoked by bench/run.ts as `node --import tsx bench/workers/kstreams.ts '<json KstreamsArgs>'`.
 * W7 runs twice per measurement: `mode: 'load'` materialises the input into the store
 * `w7-store` (filling its changelog); `mode: 'restore'` starts on an empty state directory and
 * reports `starting` (just before `start()`) and `ready` (RUNNING) with the records restored.
 */
import {
  Consumed,
  Grouped,
  JoinWindows,
  Materialized,
  Produced,
  Serdes,
  StreamsBuilder,
  TimeWindows,
  type KStream,
  type Serde,
} from '../../lib/index.js'
import { KafkaStreams, StreamsEvents } from '../../lib/index.js'
import { emit, onStopRequest } from '../lib/proc.js'
import { WorkerMetrics } from '../lib/worker-metrics.js'
import { seqOf, w1Keeps, W3_GRACE_MS, W3_WINDOW_MS, W5_GRACE_MS, W5_WINDOW_MS } from '../lib/data.js'

export interface KstreamsArgs {
  workload: 'W1' | 'W2' | 'W3' | 'W4' | 'W5' | 'W6' | 'W7'
  brokers: string
  applicationId: string
  guarantee: 'alos' | 'eos'
  commitIntervalMs: number
  cacheBytes: number
  /** `metricsRecordingLevel` (default INFO). */
  metricsRecordingLevel?: 'INFO' | 'DEBUG' | 'TRACE'
  stateDir: string
  in: string
  in2?: string
  out: string
  /** W7 only. */
  mode?: 'load' | 'restore'
}

const args = JSON.parse(process.argv[2] ?? '{}') as KstreamsArgs
const metrics = new WorkerMetrics()
const str = Serdes.String()
/** Counts arrive as `number | null` (tombstones pass through the serde as null). */
const lng = Serdes.Long() as unknown as Serde<number | null>
const strings = Consumed.with(str, str).withOffsetResetPolicy('earliest')
const first = () => metrics.first()

function source(builder: StreamsBuilder, topic: string): KStream<string, string> {
  return builder.stream(topic, strings).peek(first)
}

/** The topology of a workload (mirrors Reference.java). */
export function buildTopology(a: KstreamsArgs): StreamsBuilder {
  const b = new StreamsBuilder()
  switch (a.workload) {
    case 'W1':
      source(b, a.in)
        .filter((_k, v) => w1Keeps(seqOf(v)))
        .mapValues((v) => v.toUpperCase())
        .to(a.out, Produced.with(str, str))
      break
    case 'W2':
      source(b, a.in).groupByKey().count(Materialized.as<string, number>('counts')).toStream().to(a.out, Produced.with(str, lng))
      break
    case 'W3':
      source(b, a.in)
        .groupByKey()
        .windowedBy(TimeWindows.ofSizeAndGrace(W3_WINDOW_MS, W3_GRACE_MS))
        .count(Materialized.as('wcounts'))
        .toStream()
        .map((wk, v) => ({ key: `${wk.key}@${wk.window.startMs}`, value: v }))
        .to(a.out, Produced.with(str, lng))
      break
    case 'W4': {
      const table = b.table(a.in2!, strings, Materialized.as<string, string>('table'))
      source(b, a.in)
        .join<string, string>(table, (v: string, tv: string) => v.slice(0, 50) + tv.slice(0, 50))
        .to(a.out, Produced.with(str, str))
      break
    }
    case 'W5': {
      const right = source(b, a.in2!)
      source(b, a.in)
        .join<string, string>(
          right,
          (l: string, r: string) => l.slice(0, 50) + r.slice(0, 50),
          JoinWindows.ofTimeDifferenceAndGrace(W5_WINDOW_MS, W5_GRACE_MS),
          { keySerde: str, valueSerde: str, otherValueSerde: str, storeName: 'join' },
        )
        .to(a.out, Produced.with(str, str))
      break
    }
    case 'W6':
      source(b, a.in)
        .selectKey((_k, v) => v.slice(11, 19))
        .groupByKey(Grouped.as('rekey'))
        .count(Materialized.as<string, number>('gcounts'))
        .toStream()
        .to(a.out, Produced.with(str, lng))
      break
    case 'W7':
      b.table(a.in, strings, Materialized.as<string, string>('w7-store')).toStream().peek(first)
      break
  }
  return b
}

async function main(): Promise<void> {
  const streams = new KafkaStreams(buildTopology(args).build(), {
    applicationId: args.applicationId,
    bootstrapServers: args.brokers,
    processingGuarantee: args.guarantee === 'eos' ? 'exactly_once' : 'at_least_once',
    commitIntervalMs: args.commitIntervalMs,
    statestoreCacheMaxBytes: args.cacheBytes,
    metricsRecordingLevel: args.metricsRecordingLevel ?? 'INFO',
    stateDir: args.stateDir,
    defaultKeySerde: str,
    defaultValueSerde: str,
    logLevel: process.env.KBENCH_LOG_LEVEL === 'info' ? 'info' : 'warn',
  })
  let restored = 0
  // The restore phase alone (first RESTORE_START to last RESTORE_END), next to the time to RUNNING.
  let restoreFrom = 0
  let restoreTo = 0
  streams.on(StreamsEvents.RESTORE_START, (p: unknown) => {
    if (restoreFrom === 0) restoreFrom = Date.now()
    process.stderr.write(`restore start ${JSON.stringify(p)}\n`)
  })
  streams.on(StreamsEvents.RESTORE_END, (p: { restored: number }) => {
    restoreTo = Date.now()
    process.stderr.write(`restore end ${JSON.stringify(p)}\n`)
    restored += p.restored
  })
  streams.setUncaughtExceptionHandler((error) => {
    emit({ type: 'error', message: error.stack ?? error.message })
    return 'SHUTDOWN_CLIENT'
  })
  // RUNNING counts only after this member got its tasks: the client can pass through RUNNING
  // before the group assignment (no tasks yet = "all tasks running").
  let assigned = false
  streams.on(StreamsEvents.ASSIGNMENT, (p: { active: string[] }) => {
    if (p.active.length > 0) assigned = true
  })
  let announced = false
  streams.onStateChange((now) => {
    if (now === 'RUNNING' && assigned && !announced) {
      announced = true
      const t = Date.now()
      if (args.workload === 'W7' && args.mode === 'restore') {
        const restoreMs = restoreTo - restoreFrom
        void countStore(streams, 'w7-store').then(
          (storeEntries) => emit({ type: 'ready', t, restored, restoreMs, storeEntries }),
          (err: unknown) => emit({ type: 'ready', t, restored, restoreMs, storeError: String(err) }),
        )
      } else {
        emit({ type: 'ready', t, restored })
      }
    }
    if (now === 'ERROR') emit({ type: 'error', message: 'KafkaStreams went to ERROR' })
  })
  onStopRequest(() => {
    void metrics
      .writeProfile()
      .catch(() => {})
      .then(() => streams.close({ timeoutMs: 30_000 }))
      .catch(() => false)
      .finally(() => {
        emit({ type: 'stats', ...metrics.stats() })
        process.exit(0)
      })
  })
  emit({ type: 'starting', t: Date.now() })
  if (args.workload === 'W7' && args.mode === 'restore') metrics.first()
  await streams.start()
}

/** Counts a key-value store's entries through interactive queries (untimed verification). */
async function countStore(streams: KafkaStreams, name: string): Promise<number> {
  const store = streams.store(name) as unknown as { all(): AsyncIterable<unknown> }
  let n = 0
  for await (const _entry of store.all()) n++
  return n
}

main().catch((err: unknown) => {
  emit({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) })
  process.exit(1)
})
