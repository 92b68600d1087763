/**
 * Logging (issue 11 item 7): with a real pino instance, the runtime's structured fields arrive as
 * top-level JSON fields, whether pino is given as the config's `logger` or adapted explicitly.
 */
import { describe, expect, it } from 'vitest'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { filterLogger, pinoLogger } from '../../lib/app/logger.js'
import { kafkajsLogCreator } from '../../lib/app/client/kafkajs-log.js'
import { resolveStreamsConfig } from '../../lib/app/options.js'

/** A real pino logger writing JSON lines into an array. */
function capture(): { logger: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = []
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk))
      cb()
    },
  })
  const logger = pino({ level: 'debug', base: undefined, timestamp: false }, stream)
  return {
    logger,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  }
}

describe('Logger with a real pino instance', () => {
  it('pino called in our (message, fields) order loses the fields: the reason for the adapter', () => {
    const { logger, lines } = capture()
    // pino's own types reject this order; the runtime's Logger interface calls it this way
    ;(logger.info as (message: string, fields: object) => void)('committed', { taskId: '0_1' })
    expect(lines()).toEqual([{ level: 30, msg: 'committed' }])
  })

  it('given as the config logger, pino receives the fields as fields (filtered by logLevel)', () => {
    const { logger, lines } = capture()
    const config = resolveStreamsConfig({ applicationId: 'app', bootstrapServers: 'localhost:9092', logger, logLevel: 'info' })
    config.logger.info('commit', { taskId: '0_1', records: 120, offsets: { 'in-0': '42' } })
    config.logger.debug('dropped by logLevel', { taskId: '0_1' })
    config.logger.error('task failed', { taskId: '0_2', error: new TypeError('boom') })
    const out = lines()
    expect(out).toHaveLength(2)
    expect(out[0]).toEqual({ level: 30, msg: 'commit', taskId: '0_1', records: 120, offsets: { 'in-0': '42' } })
    expect(out[1]).toMatchObject({ level: 50, msg: 'task failed', taskId: '0_2', error: { name: 'TypeError', message: 'boom' } })
    expect((out[1]!.error as { stack: string }).stack).toContain('TypeError: boom')
  })

  it('pinoLogger() adapts explicitly; a call without fields logs the message only', () => {
    const { logger, lines } = capture()
    const log = pinoLogger(logger)
    log.warn('rebalance', { generation: 7 })
    log.debug('tick')
    expect(lines()).toEqual([
      { level: 40, msg: 'rebalance', generation: 7 },
      { level: 20, msg: 'tick' },
    ])
  })

  it("kafkajs' log entries reach pino with their fields", () => {
    const { logger, lines } = capture()
    const create = kafkajsLogCreator(filterLogger(logger, 'debug'), 'debug')
    create(0)({
      namespace: 'Consumer',
      level: 2 /* WARN */,
      label: 'WARN',
      log: { message: 'Restarting the consumer', groupId: 'app', retryCount: 2, timestamp: 'x' },
    })
    expect(lines()).toEqual([
      { level: 40, msg: '[kafkajs Consumer] Restarting the consumer', groupId: 'app', retryCount: 2, timestamp: 'x' },
    ])
  })

  it("kafkajs' ERROR entries announcing a retry are warnings; other ERROR entries stay errors", () => {
    const { logger, lines } = capture()
    const create = kafkajsLogCreator(filterLogger(logger, 'warn'), 'warn')
    const log = create(0)
    log({
      namespace: 'Producer',
      level: 1 /* ERROR */,
      label: 'ERROR',
      log: { message: 'Failed to send messages: concurrent transactions', retryCount: 0, retryTime: 334, timestamp: 'x' },
    })
    log({ namespace: 'Producer', level: 1 /* ERROR */, label: 'ERROR', log: { message: 'Crash: fenced', timestamp: 'y' } })
    expect(lines().map((l) => [l.level, l.msg])).toEqual([
      [40, '[kafkajs Producer] Failed to send messages: concurrent transactions'],
      [50, '[kafkajs Producer] Crash: fenced'],
    ])
  })
})
