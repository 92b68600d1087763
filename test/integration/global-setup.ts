/**
 * Global setup of the `integration` vitest project: makes sure a Kafka broker and a schema
 * registry answer before any integration test file runs, and hands their addresses to the tests.
 *
 * - `KAFKA_BROKERS` / `SCHEMA_REGISTRY_URL` set: those are used (a compose stack, a user's
 *   cluster); nothing is started or stopped.
 * - Otherwise the local broker / registry is reused when one already answers, or started
 *   (scripts/local-kafka.ts, scripts/local-registry.ts) and stopped again in the teardown.
 *
 * Tests read the addresses with `brokers()` / `registryUrl()` from ./helpers.ts (vitest's
 * `inject('kafkaBrokers')` / `inject('schemaRegistryUrl')`; also exported to `process.env`).
 */
import type { TestProject } from 'vitest/node'
import { ensureKafka, type LocalKafka } from '../../scripts/local-kafka.js'
import { ensureRegistry, type LocalRegistry } from '../../scripts/local-registry.js'

declare module 'vitest' {
  export interface ProvidedContext {
    /** Comma-separated bootstrap brokers of the cluster under test. */
    kafkaBrokers: string
    /** Base URL of the Confluent-compatible schema registry API under test. */
    schemaRegistryUrl: string
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now()
  // Start both at once: each JVM is mostly single-threaded while booting.
  const [kafka, registry] = await Promise.allSettled([ensureKafka(), ensureRegistry()])
  if (kafka.status === 'rejected' || registry.status === 'rejected') {
    if (kafka.status === 'fulfilled') await kafka.value.stop()
    if (registry.status === 'fulfilled') await registry.value.stop()
    throw kafka.status === 'rejected' ? kafka.reason : (registry as PromiseRejectedResult).reason
  }
  const broker: LocalKafka = kafka.value
  const schemaRegistry: LocalRegistry = registry.value
  process.stderr.write(
    `[integration] Kafka ${broker.brokers}${broker.started ? ' (started)' : ''}, ` +
      `schema registry ${schemaRegistry.url}${schemaRegistry.started ? ' (started)' : ''}, ` +
      `ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
  )

  project.provide('kafkaBrokers', broker.brokers)
  project.provide('schemaRegistryUrl', schemaRegistry.url)
  process.env.KAFKA_BROKERS = broker.brokers
  process.env.SCHEMA_REGISTRY_URL = schemaRegistry.url

  return async () => {
    await Promise.all([broker.stop(), schemaRegistry.stop()])
  }
}
