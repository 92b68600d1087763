/**
 * Crash injection for the exactly-once test applications (test/eos/app.ts,
 * test/integration/fixtures/eos-app.ts), passed to the runtime as its internal `testHooks`:
 * when `KSTREAMS_CRASH_AT` names a commit point, the process exits with code 137 (as if SIGKILLed)
 * the first time a commit reaches it; `KSTREAMS_CRASH_AFTER_COMMITS=n` lets n commits pass that
 * point first. Points (lib/app/runtime/commit.ts, `CommitPoint`):
 * - `after-send`: output and changelog records sent, offsets not yet added;
 * - `after-send-offsets`: offsets added to the transaction (at-least-once: committed), not yet committed;
 * - `after-commit`: transaction committed, local state not yet written;
 * - `during-local-write`: while the local LevelDB batch is being written.
 */
import type { CommitPoint, RuntimeTestHooks } from '../../lib/app/runtime/commit.js'

export function crashHooksFromEnv(env: NodeJS.ProcessEnv = process.env): RuntimeTestHooks | undefined {
  const at = env.KSTREAMS_CRASH_AT as CommitPoint | '' | undefined
  if (!at) return undefined
  const skip = Number(env.KSTREAMS_CRASH_AFTER_COMMITS ?? '0')
  let passes = 0
  return {
    onCommitPoint(point) {
      if (point !== at) return
      if (passes++ < skip) return
      process.stderr.write(`[kstreams] crash injection at ${point}\n`)
      process.exit(137)
    },
  }
}
