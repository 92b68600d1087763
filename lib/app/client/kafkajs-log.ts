/** The bridge that routes kafkajs' own log lines through the runtime's {@link Logger}. */
import kafkajs from 'kafkajs'
import type { logCreator as KafkaLogCreator } from 'kafkajs'
import type { LogLevel, Logger } from '../logger.js'

const { logLevel: KafkaLogLevel } = kafkajs

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
  return () =>
    ({ namespace, level, log }) => {
      // kafkajs logs every protocol error response (e.g. "the group is rebalancing") at ERROR even
      // when it handles it; keep those for verbose levels only
      if (!verbose && namespace === 'Connection') return
      const { message, ...extra } = log as { message: string } & Record<string, unknown>
      const msg = `[kafkajs ${namespace}] ${message}`
      // an entry with `retryCount` is kafkajs' retrier announcing another attempt (e.g. the broker's
      // CONCURRENT_TRANSACTIONS while the previous transaction completes): a warning; if the
      // retries run out, the error reaches the runtime, which reports it
      if (level <= KafkaLogLevel.ERROR && typeof extra.retryCount === 'number') logger.warn(msg, extra)
      else if (level <= KafkaLogLevel.ERROR) logger.error(msg, extra)
      else if (level === KafkaLogLevel.WARN) logger.warn(msg, extra)
      else if (level === KafkaLogLevel.INFO) logger.info(msg, extra)
      else logger.debug(msg, extra)
    }
}
