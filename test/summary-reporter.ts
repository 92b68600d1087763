/**
 * A vitest reporter that ends the run with one plain line, `vitest: N passed, N failed, N skipped`,
 * after the default reporter's summary, preceded by one `vitest FAILED: …` line per failed test
 * (project, file, test name, the error's first line). CI keeps only the end of a long log, so the
 * names of the failures must be there, not only in the middle of the default reporter's output.
 * Failed test files (errors outside tests) and unhandled errors count as failures.
 */
import { relative } from 'node:path'
import type { Reporter, TestModule } from 'vitest/node'

/** The first line of an error's message, cut to a readable length. */
function firstLine(error: { message?: string; name?: string } | undefined): string {
  const line = (error?.message ?? error?.name ?? 'unknown error').split('\n')[0] ?? ''
  return line.length > 300 ? `${line.slice(0, 300)}…` : line
}

export default class SummaryReporter implements Reporter {
  async onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): Promise<void> {
    let passed = 0
    let failed = 0
    let skipped = 0
    const failures: string[] = []
    for (const module of testModules) {
      const where = `[${module.project.name}] ${relative(process.cwd(), module.moduleId)}`
      for (const test of module.children.allTests()) {
        const result = test.result()
        if (result.state === 'passed') passed++
        else if (result.state === 'failed') {
          failed++
          failures.push(`${where} > ${test.fullName}: ${firstLine(result.errors?.[0])}`)
        } else skipped++
      }
      // A file that failed to load, or whose hooks failed, has no failed test to count.
      if (module.state() === 'failed' && ![...module.children.allTests('failed')].length) {
        failed++
        failures.push(`${where} (file or hook): ${firstLine(module.errors()[0])}`)
      }
    }
    for (const error of unhandledErrors) {
      failures.push(`unhandled error: ${firstLine(error as { message?: string })}`)
    }
    failed += unhandledErrors.length
    // The default reporter prints its summary in the same tick; come after it.
    await new Promise((resolve) => setTimeout(resolve, 0))
    const lines = failures.map((failure) => `vitest FAILED: ${failure}\n`).join('')
    process.stdout.write(`\n${lines}vitest: ${passed} passed, ${failed} failed, ${skipped} skipped\n`)
  }
}
