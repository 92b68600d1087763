/**
 * The runtime's logger: a tiny structured-logging interface, a default stderr implementation and
 * the bridge that routes kafkajs' own log lines through it.
 */
import kafkajs from 'kafkajs'
import type { logCreator as KafkaLogCreator } from 'kafkajs'

const { logLevel: KafkaLogLevel } = kafkajs

/** Log levels, most severe first. `'nothing'` silences everything. */
export type LogLevel = 'nothing' | 'error' | 'warn' | 'info' | 'debug'

/** Structured logger used by the runtime (compatible with pino/console style objects). */
export interface Logger {
  error(message: string, extra?: Record<string, unknown>): void
  warn(message: string, extra?: Record<string, unknown>): void
  info(message: string, extra?: Record<string, unknown>): void
  debug(message: string, extra?: Record<string, unknown>): void
}

const RANK: Record<LogLevel, number> = { nothing: 0, error: 1, warn: 2, info: 3, debug: 4 }

/** Whether `level` passes the threshold `threshold`. */
export function levelEnabled(threshold: LogLevel, level: Exclude<LogLevel, 'nothing'>): boolean {
  return RANK[level] <= RANK[threshold]
}

/** A logger writing one JSON line per entry to stderr, filtered by `level`. */
export function createDefaultLogger(level: LogLevel, namespace = 'kstreams'): Logger {
  const write = (lvl: Exclude<LogLevel, 'nothing'>, message: string, extra?: Record<string, unknown>): void => {
    if (!levelEnabled(level, lvl)) return
    const entry = { level: lvl, time: new Date().toISOString(), ns: namespace, message, ...sanitize(extra) }
    process.stderr.write(JSON.stringify(entry) + '\n')
  }
  return {
    error: (m, e) => write('error', m, e),
    warn: (m, e) => write('warn', m, e),
    info: (m, e) => write('info', m, e),
    debug: (m, e) => write('debug', m, e),
  }
}

/** Wraps a user logger so that entries below `level` are dropped before reaching it. */
export function filterLogger(logger: Logger, level: LogLevel): Logger {
  return {
    error: (m, e) => levelEnabled(level, 'error') && logger.error(m, e),
    warn: (m, e) => levelEnabled(level, 'warn') && logger.warn(m, e),
    info: (m, e) => levelEnabled(level, 'info') && logger.info(m, e),
    debug: (m, e) => levelEnabled(level, 'debug') && logger.debug(m, e),
  }
}

function sanitize(extra?: Record<string, unknown>): Record<string, unknown> | undefined {
  if (!extra) return undefined
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(extra)) {
    out[k] = v instanceof Error ? { name: v.name, message: v.message, stack: v.stack } : v
  }
  return out
}

/** Maps our level to kafkajs' numeric level. kafkajs is one step quieter than the app (it is chatty). */
export function kafkajsLogLevel(level: LogLevel): number {
  switch (level) {
    case 'nothing':
      return KafkaLogLevel.NOTHING
    case 'error':
    case 'warn':
      return KafkaLogLevel.ERROR
    case 'info':
      return KafkaLogLevel.WARN
    case 'debug':
      return KafkaLogLevel.INFO
  }
}

/** A kafkajs `logCreator` that forwards kafkajs log entries to `logger`. */
export function kafkajsLogCreator(logger: Logger, appLevel: LogLevel = 'warn'): KafkaLogCreator {
  const verbose = appLevel === 'info' || appLevel === 'debug'
  return () => ({ namespace, level, log }) => {
    // kafkajs logs every protocol error response (e.g. "the group is rebalancing") at ERROR even
    // when it handles it; keep those for verbose levels only
    if (!verbose && namespace === 'Connection') return
    const { message, ...extra } = log as { message: string } & Record<string, unknown>
    const msg = `[kafkajs ${namespace}] ${message}`
    if (level <= KafkaLogLevel.ERROR) logger.error(msg, extra)
    else if (level === KafkaLogLevel.WARN) logger.warn(msg, extra)
    else if (level === KafkaLogLevel.INFO) logger.info(msg, extra)
    else logger.debug(msg, extra)
  }
}
