/**
 * Crash injection for exactly-once tests (test builds only): when the environment variable
 * `KSTREAMS_CRASH_AT` names a point of the commit path, the process exits with code 137 (as if
 * SIGKILLed) the first time a commit reaches it. Points:
 * - `after-send`: output and changelog records sent, offsets not yet added;
 * - `after-send-offsets`: offsets added to the transaction (at-least-once: committed), not yet committed;
 * - `after-commit`: transaction committed, local state (LevelDB + checkpoint) not yet written;
 * - `during-local-write`: while the local LevelDB batch is being written.
 * `KSTREAMS_CRASH_AFTER_COMMITS=n` delays the crash until the (n+1)-th commit that reaches the point.
 * Inert unless the variable is set; a production deployment never sets it.
 */
export type CrashPoint = 'after-send' | 'after-send-offsets' | 'after-commit' | 'during-local-write'

let passes = 0

/** Exits the process (code 137) if `KSTREAMS_CRASH_AT` is `point`. */
export function maybeCrash(point: CrashPoint): void {
  const at = process.env.KSTREAMS_CRASH_AT
  if (at !== point) return
  const skip = Number(process.env.KSTREAMS_CRASH_AFTER_COMMITS ?? '0')
  if (passes++ < skip) return
  process.stderr.write(`[kstreams] crash injection at ${point}\n`)
  process.exit(137)
}

/** Whether a crash at `point` is armed (so the caller can arrange "during" crashes). */
export function crashArmed(point: CrashPoint): boolean {
  if (process.env.KSTREAMS_CRASH_AT !== point) return false
  const skip = Number(process.env.KSTREAMS_CRASH_AFTER_COMMITS ?? '0')
  return passes >= skip
}
