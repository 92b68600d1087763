/**
 * Health of a client, for liveness and readiness probes (Kubernetes) and dashboards: its state,
 * each active task's state (running, restoring with progress, waiting on a retriable error), the
 * largest consumer lag and the age of the last commit. Kafka Streams has no such call; it is built
 * from what Kafka Streams exposes as state, `StateRestoreListener` progress, KIP-572 task timeouts
 * and the consumer's `records-lag`.
 */
import type { KafkaStreamsState } from './state.js'
import type { StreamTask } from './stream-task.js'

/** Progress of a restoring task (KIP-869), records, summed over its changelog partitions. */
export interface TaskRestoreProgress {
  /** Records applied so far. */
  readonly restored: number
  /** Records still to apply (end offset − position; transaction markers count as records). */
  readonly remaining: number
  /** Records to apply when the restoration started. */
  readonly total: number
}

/** Why a task is not processing and waits to be re-created. */
export interface TaskWaiting {
  /**
   * `'retriable-error'`: a retriable error (KIP-572) sent it back to its last commit; it is
   * re-created after a backoff, until `taskTimeoutMs`. `'task-migrated'`: it was fenced or the
   * group moved on; it comes back with the next assignment.
   */
  readonly reason: 'retriable-error' | 'task-migrated'
  /** The error's stable code (`StreamsError.code`, or kafkajs' error type), when it has one. */
  readonly errorCode?: string
  /** The last error's message. */
  readonly message?: string
  /** How long the task has been waiting, milliseconds. */
  readonly sinceMs: number
  /** Retries so far (retriable errors only). */
  readonly attempts?: number
}

/** One active task of this client. */
export interface TaskHealth {
  /** `<subtopology>_<partition>` */
  readonly taskId: string
  /**
   * `'created'`: assigned, initialization not started; `'restoring'`: restoring its stores (or
   * initializing its producer and offsets); `'running'`: processing; `'waiting'`: closed after an
   * error, waiting to be re-created (see {@link TaskWaiting}).
   */
  readonly state: 'created' | 'restoring' | 'running' | 'waiting'
  /** Restoration progress while `'restoring'` and a changelog has records to restore. */
  readonly restore?: TaskRestoreProgress
  /** Why it waits, while `'waiting'`. */
  readonly waiting?: TaskWaiting
}

/** What {@link KafkaStreams.health} returns. */
export interface StreamsHealth {
  readonly state: KafkaStreamsState
  /**
   * Liveness: the client is not in ERROR, PENDING_ERROR or NOT_RUNNING, and its processing loop
   * iterated within the last `loopStallMs` (it iterates at least every 100 ms when idle). A
   * Kubernetes liveness probe restarts the pod when this stays false.
   */
  readonly live: boolean
  /**
   * Readiness: RUNNING and no active task restoring or waiting to start. Use it for a readiness
   * probe (interactive queries answer from complete state only then).
   */
  readonly ready: boolean
  /** Active tasks, sorted by id. */
  readonly tasks: ReadonlyArray<TaskHealth>
  /**
   * The largest consumer lag over this client's input partitions (high watermark − fetch
   * position, records; transaction markers past the last record do not count); 0 without
   * partitions or while unknown.
   */
  readonly maxLag: number
  /** Milliseconds since the last successful commit, or null before the first one. */
  readonly lastCommitAgeMs: number | null
  /** Milliseconds since the processing loop last iterated, or null when no loop runs. */
  readonly loopAgeMs: number | null
}

/** What a stream thread reports for {@link StreamsHealth}. */
export interface ThreadHealth {
  readonly tasks: ReadonlyArray<TaskHealth>
  readonly maxLag: number
  /** When the last commit succeeded (ms epoch), or undefined. */
  readonly lastCommitAt: number | undefined
  /** When the processing loop last iterated (ms epoch), or undefined. */
  readonly loopAt: number | undefined
}

/** Options of {@link KafkaStreams.health}. */
export interface HealthOptions {
  /** How long the processing loop may go without iterating before the client counts as not live, ms. @defaultValue 60000 */
  readonly loopStallMs?: number
}

/** Builds {@link StreamsHealth} from the client's state and its thread's report. */
export function streamsHealth(
  state: KafkaStreamsState,
  thread: ThreadHealth | undefined,
  now: number,
  options: HealthOptions = {},
): StreamsHealth {
  const loopStallMs = options.loopStallMs ?? 60_000
  const loopAgeMs = thread?.loopAt === undefined ? null : Math.max(0, now - thread.loopAt)
  const down = state === 'ERROR' || state === 'PENDING_ERROR' || state === 'NOT_RUNNING'
  const live = !down && (loopAgeMs === null || loopAgeMs <= loopStallMs)
  const tasks = thread?.tasks ?? []
  const ready = state === 'RUNNING' && tasks.every((t) => t.state === 'running')
  return {
    state,
    live,
    ready,
    tasks,
    maxLag: thread?.maxLag ?? 0,
    lastCommitAgeMs: thread?.lastCommitAt === undefined ? null : Math.max(0, now - thread.lastCommitAt),
    loopAgeMs,
  }
}

/**
 * What a stream thread reports: its active tasks (closed ones left out, waiting ones added), the
 * largest fetched lag of its running tasks' partitions, its last commit and loop iteration.
 */
export function threadHealth(
  active: Iterable<StreamTask>,
  waiting: ReadonlyMap<string, TaskWaiting>,
  lastCommitAt: number | undefined,
  loopAt: number | undefined,
): ThreadHealth {
  const tasks: TaskHealth[] = []
  let maxLag = 0
  for (const t of active) {
    if (t.state === 'CLOSED') continue
    if (t.state === 'RUNNING') {
      tasks.push({ taskId: t.id, state: 'running' })
      for (const q of t.group.queues) {
        const lag = q.fetchedLag()
        if (lag !== undefined && Number(lag) > maxLag) maxLag = Number(lag)
      }
    } else if (t.state === 'RESTORING') {
      const p = t.restoreProgress
      tasks.push({ taskId: t.id, state: 'restoring', ...(p && p.total > 0 ? { restore: { ...p } } : {}) })
    } else tasks.push({ taskId: t.id, state: 'created' })
  }
  for (const [id, w] of waiting) tasks.push({ taskId: id, state: 'waiting', waiting: w })
  tasks.sort((a, b) => (a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0))
  return { tasks, maxLag, lastCommitAt, loopAt }
}
