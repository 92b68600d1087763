/**
 * Standby tasks (Kafka Streams: `StandbyTask`, KIP-441 warm-up): a replica of an active task's
 * logged stores on another instance, kept current by applying the changelogs continuously, so a
 * failover restores only the tail. A standby that fails with a retriable error is re-created after
 * a backoff for as long as it is assigned; a fatal one is given up (a standby only ever lags).
 */
import type { EventEmitter } from 'node:events'
import { parseTaskId } from '../../../topology/processor/types.js'
import type { TaskStateManager } from '../../state/types.js'
import { backoffMs, classifyError } from '../error-policy.js'
import { emitEvent, StreamsEvents } from '../events.js'
import type { StandbyTaskMetrics } from '../../metrics/streams-metrics.js'
import type { ResolvedStreamsConfig } from '../options.js'
import type { RestoreCoordinator } from './restore.js'
import type { TaskStateFactory } from './task-initializer.js'

interface StandbyTask {
  readonly id: string
  readonly stateManager: TaskStateManager
  readonly abort: AbortController
  readonly metrics: StandbyTaskMetrics | undefined
  running: Promise<void>
}

export interface StandbyManagerOptions {
  readonly config: ResolvedStreamsConfig
  readonly stateFactory: TaskStateFactory
  readonly restore: RestoreCoordinator
  readonly emitter: EventEmitter
  /** Whether the task is active here (an active task takes precedence over its standby). */
  readonly isActive: (id: string) => boolean
  /** The sensors of a standby task (`update-rate/-total`); none: no metrics. */
  readonly metrics?: (taskId: string) => StandbyTaskMetrics
}

export class StandbyManager {
  readonly #standbys = new Map<string, StandbyTask>()
  /** Standby tasks of the current assignment. */
  #wanted = new Set<string>()
  /** When a failed standby is created again. */
  readonly #retryAt = new Map<string, { at: number; attempts: number }>()

  constructor(private readonly o: StandbyManagerOptions) {}

  ids(): string[] {
    return [...this.#standbys.keys()]
  }

  has(id: string): boolean {
    return this.#standbys.has(id)
  }

  /** Applies a new standby assignment: closes what is no longer wanted (or now active), creates the rest. */
  async assign(want: ReadonlySet<string>): Promise<void> {
    this.#wanted = new Set(want)
    this.#retryAt.clear()
    for (const s of [...this.#standbys.values()]) if (!want.has(s.id) || this.o.isActive(s.id)) await this.#close(s)
    for (const id of want) if (!this.#standbys.has(id) && !this.o.isActive(id)) this.#create(id)
  }

  /** Closes the standby of `id`, if any (its state is about to be opened by the active task). */
  async release(id: string): Promise<void> {
    const sb = this.#standbys.get(id)
    if (sb) await this.#close(sb)
  }

  /** Re-creates standbys that failed with a retriable error once their backoff has passed. */
  revive(now: number): void {
    for (const [id, r] of this.#retryAt) {
      if (now < r.at || this.#standbys.has(id) || this.o.isActive(id)) continue
      if (!this.#wanted.has(id)) {
        this.#retryAt.delete(id)
        continue
      }
      r.at = Number.POSITIVE_INFINITY
      this.#create(id)
    }
  }

  async closeAll(): Promise<void> {
    for (const s of [...this.#standbys.values()]) await this.#close(s)
  }

  #create(id: string): void {
    const c = this.o.config
    const sm = this.o.stateFactory(parseTaskId(id), { standby: true })
    if (!sm) return
    const abort = new AbortController()
    const metrics = this.o.metrics?.(id)
    const sb: StandbyTask = { id, stateManager: sm, abort, metrics, running: Promise.resolve() }
    this.#standbys.set(id, sb)
    emitEvent(this.o.emitter, StreamsEvents.TASK_CREATED, { taskId: id, standby: true })
    sb.running = (async () => {
      await sm.open()
      await this.o.restore.follow(sm, abort.signal, metrics?.update)
    })().catch((e: unknown) => {
      if (abort.signal.aborted) return
      const err = e instanceof Error ? e : new Error(String(e))
      if (classifyError(err) === 'fatal') {
        c.logger.warn(`standby task ${id} failed: ${err.message}`, { taskId: id })
        return
      }
      const prev = this.#retryAt.get(id)
      const attempts = (prev?.attempts ?? 0) + 1
      const delay = backoffMs(attempts - 1, c.retryBackoffMs, c.retryBackoffMaxMs)
      this.#retryAt.set(id, { at: Date.now() + delay, attempts })
      c.logger.warn(`standby task ${id}: retriable error (${err.message}); retrying in ${delay} ms`, { taskId: id })
      void this.#close(sb)
    })
  }

  async #close(sb: StandbyTask): Promise<void> {
    sb.abort.abort()
    await sb.running
    if (this.#standbys.get(sb.id) === sb) this.#standbys.delete(sb.id)
    sb.metrics?.close()
    await sb.stateManager.close({ clean: true }).catch(() => undefined)
    emitEvent(this.o.emitter, StreamsEvents.TASK_CLOSED, { taskId: sb.id, standby: true, clean: true })
  }
}
