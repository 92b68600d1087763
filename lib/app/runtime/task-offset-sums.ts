/**
 * What this member tells the assignor about its local state (Kafka Streams:
 * `TaskManager#taskOffsetSums`): per task, the sum over its changelog partitions of the offsets its
 * local stores reflect, so the leader can compute every member's lag and place tasks where their
 * state is (KIP-441). Reported for
 * - active tasks: {@link LATEST_OFFSET} once RUNNING (caught up by definition), the stores'
 *   positions while restoring;
 * - standby tasks (warm-ups included): their stores' positions, which move as they restore;
 * - task directories on disk that are not open: read once at start
 *   (`StateRuntime.readTaskDirectoryPositions`), then kept up to date from the positions a task
 *   or standby had when it closed.
 * A position that is unknown (a store restoring from the beginning) counts as 0; tasks without
 * logged state are not reported.
 *
 * Sums are computed synchronously at every join (kafkajs asks for the subscription synchronously).
 */
import type { TaskStateManager } from '../../state/types.js'
import { LATEST_OFFSET } from '../task-assignor.js'
import type { TaskStateFactory } from './task-initializer.js'

export interface TaskOffsetSumsOptions {
  /** Whether the active task `id` of this member is RUNNING. */
  readonly running: (id: string) => boolean
  /**
   * Changelog topics of the task's stores whose data outlives a close (persistent stores): only
   * their positions are remembered for a closed task.
   */
  readonly persistentChangelogs: (taskId: string) => ReadonlySet<string>
}

export class TaskOffsetSums {
  /** Offset sums of task directories whose state is not open (read at start, or left by a close). */
  readonly #onDisk = new Map<string, number>()
  /** Open state managers (active and standby) by task id. */
  readonly #open = new Map<string, TaskStateManager>()

  constructor(private readonly o: TaskOffsetSumsOptions) {}

  /** Task ids whose state is open in this member. */
  openTasks(): ReadonlySet<string> {
    return new Set(this.#open.keys())
  }

  /** Adds the positions read from task directories on disk (tasks opened meanwhile are left alone). */
  addDiskPositions(positions: ReadonlyMap<string, ReadonlyMap<string, bigint>>): void {
    for (const [id, p] of positions) {
      if (this.#open.has(id)) continue
      this.#onDisk.set(id, sumOf(p.values()))
    }
  }

  /** The state factory whose managers report their positions here while open and when closed. */
  track(factory: TaskStateFactory): TaskStateFactory {
    return (taskId, options) => {
      const sm = factory(taskId, options)
      if (!sm) return sm
      const id = `${taskId.subtopology}_${taskId.partition}`
      return this.#wrap(id, sm)
    }
  }

  /** Kafka Streams' `taskOffsetSums` of this member now. */
  sums(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [id, sum] of this.#onDisk) out[id] = sum
    for (const [id, sm] of this.#open) {
      const positions = sm.checkpointedOffsets()
      if (positions.size === 0) continue // no logged store
      out[id] = this.o.running(id) ? LATEST_OFFSET : sumOf(positions.values())
    }
    return out
  }

  #wrap(id: string, sm: TaskStateManager): TaskStateManager {
    const open = async (): Promise<void> => {
      await sm.open()
      this.#open.set(id, sm)
    }
    const close = async (options: { clean: boolean }): Promise<void> => {
      if (this.#open.get(id) === sm) {
        this.#open.delete(id)
        const persistent = this.o.persistentChangelogs(id)
        const kept = [...sm.checkpointedOffsets()].filter(([topic]) => persistent.has(topic)).map(([, offset]) => offset)
        if (kept.some((o) => o !== undefined)) this.#onDisk.set(id, sumOf(kept))
        else this.#onDisk.delete(id)
      }
      await sm.close(options)
    }
    const wipe = async (): Promise<void> => {
      await sm.wipe()
      this.#onDisk.delete(id)
    }
    return new Proxy(sm, {
      get(target, prop) {
        if (prop === 'open') return open
        if (prop === 'close') return close
        if (prop === 'wipe') return wipe
        const v = Reflect.get(target, prop, target) as unknown
        return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(target) : v
      },
    })
  }
}

function sumOf(offsets: Iterable<string | bigint | undefined>): number {
  let sum = 0n
  for (const o of offsets) if (o !== undefined) sum += BigInt(o)
  return sum > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(sum)
}
