/**
 * The kafkajs group consumer adapter while its consumer is down: a consumer that cannot reach any
 * broker (127.0.0.1:1 refuses at once; no retries, no restart) crashes, and the adapter then answers
 * the partition-flow calls without throwing.
 */
import { describe, expect, it } from 'vitest'
import { KafkajsClient } from '../../lib/app/client/kafkajs.js'
import type { GroupConsumerListener } from '../../lib/app/client/types.js'

const quiet = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined }

describe('KafkajsGroupConsumer while down', () => {
  it('after a crash it reports down, nothing paused, and ignores pause / resume / seek', async () => {
    const client = new KafkajsClient({
      config: { brokers: ['127.0.0.1:1'], connectionTimeout: 200, retry: { retries: 0, restartOnFailure: async () => false } },
      logger: quiet,
      logLevel: 'nothing',
      partitionsFor: () => undefined,
    })
    const consumer = client.groupConsumer({
      groupId: 'down-test',
      assignor: {} as never, // never consulted: the consumer never reaches a coordinator
      sessionTimeoutMs: 6_000,
      heartbeatIntervalMs: 1_000,
      rebalanceTimeoutMs: 6_000,
    })
    const crashes: Array<{ name: string; restarting: boolean }> = []
    const listener: GroupConsumerListener = {
      onBatch: async () => false,
      onSkipped: () => undefined,
      onJoin: () => undefined,
      onRebalancing: () => undefined,
      onHeartbeat: () => undefined,
      onCrash: (error, restarting) => crashes.push({ name: error.name, restarting }),
    }
    const p = { topic: 'input', partition: 0 }
    expect(consumer.isPaused(p)).toBe(false)
    await consumer.run(listener)
    const end = Date.now() + 5_000
    while (crashes.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
    expect(crashes).toEqual([{ name: 'KafkaJSNumberOfRetriesExceeded', restarting: false }])
    expect(consumer.isDown()).toBe(true)
    expect(() => consumer.pause([p])).not.toThrow()
    expect(consumer.isPaused(p)).toBe(false)
    expect(() => consumer.resume([p])).not.toThrow()
    expect(() => consumer.seek(p, '5')).not.toThrow()
    await consumer.disconnect()
    await client.close()
  })
})
