/**
 * A vitest reporter that ends the run with one plain line, `vitest: N passed, N failed, N skipped`,
 * after the default reporter's summary. CI logs and scripts can read it without knowing vitest.
 * Failed test files (errors outside tests) and unhandled errors count as failures.
 */
import type { Reporter, TestModule } from 'vitest/node'

export default class SummaryReporter implements Reporter {
  async onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): Promise<void> {
    let passed = 0
    let failed = 0
    let skipped = 0
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state
        if (state === 'passed') passed++
        else if (state === 'failed') failed++
        else skipped++
      }
      // A file that failed to load, or whose hooks failed, has no failed test to count.
      if (module.state() === 'failed' && ![...module.children.allTests('failed')].length) failed++
    }
    failed += unhandledErrors.length
    // The default reporter prints its summary in the same tick; come after it.
    await new Promise((resolve) => setTimeout(resolve, 0))
    process.stdout.write(`\nvitest: ${passed} passed, ${failed} failed, ${skipped} skipped\n`)
  }
}
