/**
 * The runtime's logger: a tiny structured-logging interface and a default stderr implementation
 * (lib/app/client/kafkajs-log.ts routes kafkajs' own log lines through it).
 */

/** Log levels, most severe first. `'nothing'` silences everything. */
export type LogLevel = 'nothing' | 'error' | 'warn' | 'info' | 'debug'

/**
 * Structured logger used by the runtime: a message plus structured fields (`extra`), winston's
 * call order (`logger.info(message, fields)`). A winston logger fits as is; a pino logger (which
 * takes `logger.info(fields, message)`) is adapted by {@link filterLogger} (so `logger: pino()` in
 * the config works) or explicitly with {@link pinoLogger}. Fields arrive as fields either way.
 */
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

/** The part of a pino logger we call: `(fields, message)`. */
export interface PinoLike {
  error(fields: object, message: string): void
  warn(fields: object, message: string): void
  info(fields: object, message: string): void
  debug(fields: object, message: string): void
}

/** True for a pino logger (its `levels` has `values` and `labels` maps; winston's has neither). */
function isPino(logger: unknown): logger is PinoLike {
  const levels = (logger as { levels?: { values?: unknown; labels?: unknown } } | null)?.levels
  return typeof levels === 'object' && levels !== null && typeof levels.values === 'object' && typeof levels.labels === 'object'
}

/**
 * Adapts a pino logger to {@link Logger}: `info(message, fields)` becomes pino's
 * `info(fields, message)`, so the fields are top-level JSON fields of the line. Errors among the
 * fields become `{ name, message, stack }` (pino serializes only its `err` key).
 */
export function pinoLogger(pino: PinoLike): Logger {
  const call =
    (fn: (fields: object, message: string) => void) =>
    (message: string, extra?: Record<string, unknown>): void =>
      fn(sanitize(extra) ?? {}, message)
  return {
    error: call(pino.error.bind(pino)),
    warn: call(pino.warn.bind(pino)),
    info: call(pino.info.bind(pino)),
    debug: call(pino.debug.bind(pino)),
  }
}

/**
 * Wraps a user logger so that entries below `level` are dropped before reaching it. A pino logger
 * is adapted with {@link pinoLogger} first.
 */
export function filterLogger(user: Logger | PinoLike, level: LogLevel): Logger {
  const logger: Logger = isPino(user) ? pinoLogger(user) : (user as Logger)
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
