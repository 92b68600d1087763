/**
 * kafkajs clients of the fault harness, WITHOUT vitest (the chaos runner is a plain `tsx`
 * program; test/integration/helpers.ts needs a vitest run).
 *
 * The test-side consumers read with kstreams' kafkajs read_committed fix applied (kafkajs 2.2.4
 * lets records of aborted transactions through when the broker lists them out of offset order);
 * the independent Java reader (test/chaos/tools/java-reader.ts, when present) cross-checks it.
 */
import { randomBytes } from 'node:crypto'
import kafkajs from 'kafkajs'
import type { Kafka, KafkaConfig } from 'kafkajs'
import { fixKafkajs } from '../../lib/app/client/kafkajs-internals.js'

const { Kafka: KafkaClient, logLevel } = kafkajs

/** A name no other run uses: `<prefix>-<time>-<random>`. */
export function randomName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`
}

/** A silent kafkajs client for `brokers` (comma-separated or a list). */
export function kafkaFor(brokers: string | ReadonlyArray<string>, config: Partial<KafkaConfig> = {}): Kafka {
  return fixKafkajs(
    new KafkaClient({
      clientId: 'kstreams-chaos',
      brokers: typeof brokers === 'string' ? brokers.split(',') : [...brokers],
      logLevel: logLevel.NOTHING,
      ...config,
    }),
  )
}
