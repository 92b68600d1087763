import { defineConfig } from 'vitest/config'

/**
 * Two projects:
 * - `unit`: test/unit, no broker, runs in parallel.
 * - `integration`: test/integration against a real Kafka broker and schema registry. The global
 *   setup uses KAFKA_BROKERS / SCHEMA_REGISTRY_URL when set, otherwise starts the local ones
 *   (scripts/local-kafka.ts, scripts/local-registry.ts) and stops what it started. Files run one
 *   at a time: the broker and the tests share 2 cores.
 *
 * `npm test` runs both; `vitest run --project unit` runs one.
 */
export default defineConfig({
  test: {
    // The default summary, then one plain `vitest: N passed, N failed, N skipped` line.
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          // CPU-bound cases (seeded assignor convergence, property runs) must not fail for a busy
          // 2-core machine; a hang still fails.
          testTimeout: 30_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/integration/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
          // One file at a time, in one child process (fileParallelism is a root-only option).
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
          // After the unit tests, so the two do not compete for the 2 cores.
          sequence: { groupOrder: 1 },
          env: { KAFKAJS_NO_PARTITIONER_WARNING: '1' },
        },
      },
    ],
  },
})
