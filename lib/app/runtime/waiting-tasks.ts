/**
 * The tasks a {@link TaskManager} closed after an error and will re-create (Kafka Streams: the
 * task timeouts of KIP-572 and the tasks `handleLostAll` / `TaskMigratedException` leave behind):
 * - migrated (fenced, or the group moved on): re-created after a session timeout without a
 *   rebalance, and only once the group confirmed our membership since;
 * - retrying a retriable error: re-created after a backoff, once the group confirmed our
 *   membership since the failure; the entry lives until the task commits again, so the attempts
 *   and the time spent retrying (bounded by `taskTimeoutMs`) carry across re-creations.
 * It also reports them for health ({@link TaskWaiting}).
 */
import type { TaskWaiting } from '../health.js'

/** A task retrying a retriable error. */
export interface RetryState {
  /** When the first error of this run of failures happened, ms epoch. */
  readonly since: number
  attempts: number
  /** When to re-create the task, ms epoch; undefined while it runs (or before its backoff is set). */
  nextAt: number | undefined
  /** When the last error happened, ms epoch. */
  lastAt: number
  error?: Error
}

export class WaitingTasks {
  /** Tasks closed as migrated, and when. */
  readonly #migrated = new Map<string, number>()
  readonly #retrying = new Map<string, RetryState>()

  /** A task was closed as migrated at `at`. */
  migrated(id: string, at: number): void {
    this.#migrated.set(id, at)
  }

  /** A task failed with a retriable error at `now`: its retry state, with this attempt counted. */
  failed(id: string, error: Error, now: number): RetryState {
    const r = this.#retrying.get(id) ?? { since: now, attempts: 0, nextAt: undefined, lastAt: now }
    r.attempts++
    r.lastAt = now
    r.error = error
    this.#retrying.set(id, r)
    return r
  }

  /** The task committed, or its retrying was given up: its retry state goes. */
  settled(id: string): void {
    this.#retrying.delete(id)
  }

  /**
   * A new assignment: it supersedes every migrated task (ours are created by it, the others are
   * not ours), and retries of tasks it does not give us are dropped.
   */
  assigned(active: ReadonlySet<string>): void {
    this.#migrated.clear()
    for (const id of this.#retrying.keys()) if (!active.has(id)) this.#retrying.delete(id)
  }

  /**
   * Migrated tasks due for re-creation at `now` (a session timeout without a rebalance, and the
   * group confirmed us since); they are forgotten here, whether or not `isActive` already.
   */
  dueMigrated(now: number, confirmedAt: number, sessionTimeoutMs: number, isActive: (id: string) => boolean): string[] {
    const due: string[] = []
    for (const [id, at] of this.#migrated) {
      if (now - at < sessionTimeoutMs || confirmedAt <= at) continue
      this.#migrated.delete(id)
      if (!isActive(id)) due.push(id)
    }
    return due
  }

  /** Retrying tasks whose backoff is over at `now` (and the group confirmed us since their failure); marked as running. */
  dueRetries(now: number, confirmedAt: number, isActive: (id: string) => boolean): Array<{ id: string; attempts: number }> {
    const due: Array<{ id: string; attempts: number }> = []
    for (const [id, r] of this.#retrying) {
      if (r.nextAt === undefined || now < r.nextAt || isActive(id) || confirmedAt <= r.lastAt) continue
      r.nextAt = undefined
      due.push({ id, attempts: r.attempts })
    }
    return due
  }

  get anyRetrying(): boolean {
    return this.#retrying.size > 0
  }

  /** The tasks waiting to be re-created (not active now), by task id, for health. */
  waiting(now: number, isActive: (id: string) => boolean): Map<string, TaskWaiting> {
    const out = new Map<string, TaskWaiting>()
    for (const [id, at] of this.#migrated) if (!isActive(id)) out.set(id, { reason: 'task-migrated', sinceMs: now - at })
    for (const [id, r] of this.#retrying) {
      if (isActive(id)) continue
      const code = errorCode(r.error)
      out.set(id, {
        reason: 'retriable-error',
        ...(typeof code === 'string' ? { errorCode: code } : {}),
        ...(r.error ? { message: r.error.message } : {}),
        sinceMs: now - r.since,
        attempts: r.attempts,
      })
    }
    return out
  }
}

/** The code of an error for health: the Kafka error type of its root cause (kafkajs' `type`), else its own `code`. */
function errorCode(error: Error | undefined): string | undefined {
  let own: string | undefined
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const { type, code } = e as { type?: unknown; code?: unknown }
    if (typeof type === 'string') return type
    if (own === undefined && typeof code === 'string') own = code
  }
  return own
}
