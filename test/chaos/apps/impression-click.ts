/**
 * The impression/click example (examples/impression-click) as a child-process instance of the
 * fault harness: the example's own settings (environment as examples/impression-click/app.ts:
 * KAFKA_BROKERS, SCHEMA_REGISTRY_URL, TOPIC_PREFIX, APPLICATION_ID, PROCESSING_GUARANTEE,
 * STATE_DIR, INSTANCE_ID, DEAD_LETTER_TOPIC, COMMIT_INTERVAL_MS, SESSION_TIMEOUT_MS, LOG_LEVEL),
 * plus test/eos/app.ts' observability: one JSON event per line on stdout (`state`, `assignment`,
 * `migrated`, `closed`, `error`, `exit`), the library's log on stderr. Unlike the example's CLI it
 * does NOT exit when the client reaches ERROR (the harness counts that as a death and decides).
 * SIGTERM closes the client (exit 0, or 3 when the close fails).
 */
import { StreamsEvents, type Logger } from '../../../lib/index.js'
import { appSettings, startApp } from '../../../examples/impression-click/app.js'

const emit = (o: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify({ t: Date.now(), ...o }) + '\n')
}

const logger: Logger = {
  error: (m, e) =>
    process.stderr.write(
      `[error] ${m} ${e?.error instanceof Error ? e.error.message : ''}${e?.taskId ? ` {task=${String(e.taskId)}}` : ''}\n`,
    ),
  warn: (m, e) => process.stderr.write(`[warn] ${m}${e?.taskId ? ` {task=${String(e.taskId)}}` : ''}\n`),
  info: (m, e) => process.stderr.write(`[info] ${m}${e?.taskId ? ` {task=${String(e.taskId)}}` : ''}\n`),
  debug: () => {},
}

const settings = appSettings(process.env)
settings.streams = { ...settings.streams, logger, logLevel: (process.env.LOG_LEVEL as 'info' | undefined) ?? 'info' }

startApp(settings).then(
  (streams) => {
    emit({ ev: 'state', now: streams.state, old: 'CREATED' })
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
    streams.on(StreamsEvents.ERROR, (p: { error: Error; taskId?: string }) =>
      emit({ ev: 'error', message: p.error?.message, taskId: p.taskId }),
    )
    let closing = false
    process.on('SIGTERM', () => {
      if (closing) return
      closing = true
      void streams.close({ timeoutMs: 30_000 }).then(
        (ok) => {
          emit({ ev: 'exit', clean: ok })
          process.exit(ok ? 0 : 3)
        },
        (e: unknown) => {
          emit({ ev: 'exit', clean: false, error: String(e) })
          process.exit(3)
        },
      )
    })
  },
  (e: unknown) => {
    emit({ ev: 'error', message: `start failed: ${String(e)}` })
    emit({ ev: 'state', now: 'ERROR', old: 'CREATED' })
    process.exit(1)
  },
)
