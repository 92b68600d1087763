/**
 * The application under test of the exactly-once scenarios, run as a CHILD PROCESS
 * (`node --import tsx test/eos/app.ts`: one process, so SIGKILL/SIGSTOP hit the app itself, not
 * a wrapper) by test/eos/harness.ts.
 *
 * Topologies (built with the DSL; the store is LevelDB, `cachingEnabled: false` so every input
 * record yields exactly one aggregate update):
 * - `echo-agg`: every input record is echoed unchanged to ECHO, and aggregated per key into
 *   `{count, sum, last}` (store `agg`): `count`/`sum` are the running count and sum of the
 *   records' amounts, `last` the input value that produced this update; each update goes to AGG.
 * - `repartition`: the echo as above, plus a re-keying aggregation: `groupBy(g<seq % GROUPS>)`
 *   through a repartition topic (`<APP_ID>-regroup-repartition`) into store `gagg`.
 *
 * Input values are `<key>:<seq>:<amount>` (see harness.ts).
 *
 * Environment: BROKERS, APP_ID, INPUT, ECHO, AGG, STATE_DIR, TOPOLOGY (`echo-agg` |
 * `repartition`), GROUPS (repartition groups, default 3), GUARANTEE (default `exactly_once`),
 * COMMIT_INTERVAL_MS (100), SESSION_TIMEOUT_MS (6000), HEARTBEAT_INTERVAL_MS (1000),
 * REBALANCE_TIMEOUT_MS (15000), LOG_LEVEL (`warn`), TRACE_COMMITS (`1`: a `commit` event per commit,
 * with its task ids; under exactly-once it is printed whether or not every transaction committed), SELF_STOP_AFTER (after processing that many input records, print
 * a `self-stop` event and SIGSTOP this process: a zombie frozen at a known point, with processed
 * but uncommitted records; with SELF_STOP_DEFER_MS the SIGSTOP comes that many ms later, from a
 * timer, so the output of those records has been sent into the open transaction by then), plus KSTREAMS_CRASH_AT / KSTREAMS_CRASH_AFTER_COMMITS
 * (crash injection through the runtime's test hooks, see crash-hooks.ts).
 *
 * Output: one JSON object per line on stdout (`{"ev":"state",...}`, `assignment`, `migrated`,
 * `closed`, `error`, `self-stop`, `exit`); the library's warnings and errors go to stderr.
 * SIGTERM closes the client gracefully (final commit, stores closed with a checkpoint) and exits 0;
 * a failed or timed-out close exits 3.
 */
import { KafkaStreams, Serdes, StreamsBuilder, StreamsEvents, type Logger } from '../../lib/index.js'
import { crashHooksFromEnv } from './crash-hooks.js'

const env = (k: string, fallback?: string): string => {
  const v = process.env[k] ?? fallback
  if (v === undefined || v === '') throw new Error(`test/eos/app.ts: missing ${k}`)
  return v
}
const num = (k: string, fallback: number): number => Number(process.env[k] ?? fallback)

/** Pipes are synchronous on Linux, so a line is out before a following SIGSTOP/exit. */
const emit = (o: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify({ t: Date.now(), ...o }) + '\n')
}

interface Agg {
  count: number
  sum: number
  last: string
}

const amountOf = (v: string): number => Number(v.split(':')[2])
const seqOf = (v: string): number => Number(v.split(':')[1])

const S = Serdes.String()
const topologyKind = env('TOPOLOGY', 'echo-agg')
const b = new StreamsBuilder()
const selfStopAfter = process.env.SELF_STOP_AFTER ? Number(process.env.SELF_STOP_AFTER) : undefined
const selfStopDeferMs = process.env.SELF_STOP_DEFER_MS ? Number(process.env.SELF_STOP_DEFER_MS) : undefined
let processed = 0

function selfStop(k: string, v: string): void {
  emit({ ev: 'self-stop', processed, key: k, value: v })
  process.kill(process.pid, 'SIGSTOP')
  emit({ ev: 'continued', processed })
}

const input = b.stream<string, string>(env('INPUT'), { keySerde: S, valueSerde: S }).peek((k, v) => {
  processed++
  if (selfStopAfter !== undefined && processed === selfStopAfter) {
    if (selfStopDeferMs === undefined) selfStop(k, v)
    else setTimeout(() => selfStop(k, v), selfStopDeferMs)
  }
})
input.to(env('ECHO'), { keySerde: S, valueSerde: S })

const aggregator = (_k: string, v: string, a: Agg): Agg => ({ count: a.count + 1, sum: a.sum + amountOf(v), last: v })
const aggSerde = Serdes.Json<Agg>()
if (topologyKind === 'echo-agg') {
  input
    .groupByKey({ keySerde: S, valueSerde: S })
    .aggregate(() => ({ count: 0, sum: 0, last: '' }), aggregator, { storeName: 'agg', cachingEnabled: false, valueSerde: aggSerde })
    .toStream()
    .mapValues((a) => JSON.stringify(a))
    .to(env('AGG'), { keySerde: S, valueSerde: S })
} else if (topologyKind === 'repartition') {
  const groups = num('GROUPS', 3)
  input
    .groupBy((_k, v) => `g${seqOf(v) % groups}`, { keySerde: S, valueSerde: S, name: 'regroup' })
    .aggregate(() => ({ count: 0, sum: 0, last: '' }), aggregator, { storeName: 'gagg', cachingEnabled: false, valueSerde: aggSerde })
    .toStream()
    .mapValues((a) => JSON.stringify(a))
    .to(env('AGG'), { keySerde: S, valueSerde: S })
} else {
  throw new Error(`unknown TOPOLOGY ${topologyKind}`)
}

/** The task id and the error chain (kafkajs `type`, cause) of a log entry, for fault analysis. */
const details = (e?: Record<string, unknown>): string => {
  if (!e) return ''
  const parts: string[] = []
  if (typeof e.taskId === 'string') parts.push(`task=${e.taskId}`)
  let err: unknown = e.error
  for (let depth = 0; err instanceof Error && depth < 4; depth++) {
    const type = (err as { type?: string }).type
    parts.push(`${err.name}${type ? `/${type}` : ''}: ${err.message}`)
    err = (err as { cause?: unknown; originalError?: unknown }).cause ?? (err as { originalError?: unknown }).originalError
  }
  // other scalar fields (kafkajs log entries: broker, groupId, error text, retry counts, ...)
  const scalars = Object.entries(e).filter(
    ([k, v]) => k !== 'taskId' && k !== 'error' && ['string', 'number', 'boolean'].includes(typeof v),
  )
  if (scalars.length) parts.push(scalars.map(([k, v]) => `${k}=${String(v).slice(0, 200)}`).join(' '))
  if (typeof e.error === 'string') parts.push(`error=${e.error}`)
  return parts.length ? ` {${parts.join(' <- ')}}` : ''
}
/** LOG_LEVEL (default `warn`): `info`/`debug` also print the runtime's info/debug lines (e.g. every commit's task list). */
const logLevel = env('LOG_LEVEL', 'warn') as 'error' | 'warn' | 'info' | 'debug'
const logger: Logger = {
  error: (m, e) => process.stderr.write(`[error] ${m} ${e?.error instanceof Error ? e.error.message : ''}${details(e)}\n`),
  warn: (m, e) => process.stderr.write(`[warn] ${m}${details(e)}\n`),
  info: (m, e) => process.stderr.write(`[info] ${m}${details(e)}\n`),
  debug: (m, e) =>
    process.stderr.write(`[debug] ${m}${e ? ` ${JSON.stringify(e, (_k, v: unknown) => (v instanceof Error ? v.message : v))}` : ''}\n`),
}

const streams = new KafkaStreams(
  b.build(),
  {
    applicationId: env('APP_ID'),
    bootstrapServers: env('BROKERS'),
    stateDir: env('STATE_DIR'),
    processingGuarantee: env('GUARANTEE', 'exactly_once') as 'exactly_once' | 'exactly_once_v2' | 'at_least_once',
    commitIntervalMs: num('COMMIT_INTERVAL_MS', 100),
    sessionTimeoutMs: num('SESSION_TIMEOUT_MS', 6000),
    heartbeatIntervalMs: num('HEARTBEAT_INTERVAL_MS', 1000),
    rebalanceTimeoutMs: num('REBALANCE_TIMEOUT_MS', 15000),
    logLevel,
    logger,
  },
  { testHooks: crashHooksFromEnv() },
)

streams.onStateChange((now, old) => emit({ ev: 'state', now, old }))
streams.on(StreamsEvents.ASSIGNMENT, (p: { active: string[]; standby: string[] }) =>
  emit({ ev: 'assignment', active: [...p.active].sort(), standby: p.standby }),
)
streams.on(StreamsEvents.TASK_MIGRATED, (p: { taskId: string; reason: string }) =>
  emit({ ev: 'migrated', taskId: p.taskId, reason: p.reason }),
)
streams.on(StreamsEvents.TASK_CLOSED, (p: { taskId: string; standby: boolean; clean: boolean }) =>
  emit({ ev: 'closed', taskId: p.taskId, standby: p.standby, clean: p.clean }),
)
streams.on(StreamsEvents.TASK_CREATED, (p: { taskId: string; standby: boolean }) =>
  emit({ ev: 'created', taskId: p.taskId, standby: p.standby }),
)
// retries of the resilient runtime (absent from older runtimes, hence the guard)
const events = StreamsEvents as Record<string, string | undefined>
if (events.TASK_RETRY) {
  streams.on(events.TASK_RETRY, (p: { taskId: string; error?: Error; attempt: number; waitedMs: number }) =>
    emit({ ev: 'retry', taskId: p.taskId, attempt: p.attempt, waitedMs: p.waitedMs, error: p.error?.message }),
  )
}
if (events.CONSUMER_RESTART) {
  streams.on(events.CONSUMER_RESTART, (p: { error?: Error; attempt: number; waitedMs: number }) =>
    emit({ ev: 'consumer-restart', attempt: p.attempt, waitedMs: p.waitedMs, error: p.error?.message }),
  )
}
if (process.env.TRACE_COMMITS === '1') {
  streams.on(StreamsEvents.COMMIT, (p: { taskIds: string[]; transactional: boolean; durationMs: number }) =>
    emit({ ev: 'commit', tasks: p.taskIds, ms: p.durationMs }),
  )
}
streams.on(StreamsEvents.ERROR, (p: { error: Error; taskId?: string }) =>
  emit({ ev: 'error', message: p.error?.message, taskId: p.taskId }),
)

let closing = false
process.on('SIGTERM', () => {
  if (closing) return
  closing = true
  void streams.close({ timeoutMs: 30_000 }).then(
    (ok) => {
      emit({ ev: 'exit', clean: ok, processed })
      process.exit(ok ? 0 : 3)
    },
    (e: unknown) => {
      emit({ ev: 'exit', clean: false, error: String(e) })
      process.exit(3)
    },
  )
})

streams.start().catch((e: unknown) => {
  emit({ ev: 'error', message: `start failed: ${String(e)}` })
  process.exit(1)
})
