/**
 * Run until caught up (Spark Structured Streaming's `Trigger.AvailableNow`; Kafka Streams has no
 * such mode): process what the input topics hold when the run starts, commit, and stop.
 *
 * ## Targets
 * At the first loop iteration the end offsets of every partition of the topology's external source
 * topics are read: the last stable offsets (read_committed; an open transaction's records are not
 * "available"). A partition's records at or beyond its target are not processed in this run: a
 * fetched batch is clipped at the target ({@link RunUntilCaughtUp.clip}), so the committed offset
 * never passes it and the next run starts there.
 *
 * Repartition topics fill while the run goes on, so their targets are read later, level by level:
 * a repartition topic written by sub-topologies reading topics of level ≤ k is of level k + 1, and
 * its targets are read once the application's committed offsets (the whole group's, read with
 * OffsetFetch, every instance included) of every partition of the levels ≤ k reached their
 * targets: everything the upstream sub-topologies will ever write in this run is then on the
 * broker.
 *
 * ## When a task, an instance, a run is done
 * A RUNNING task is at its end when every input partition has nothing buffered and its position
 * reached the target (or the partition had nothing to read from the start). Then, once per task
 * object, stream-time is advanced (option `advanceTimeTo`, the idle advance's mechanism, so
 * windows and suppression close and left/outer join rows are emitted) and a commit is requested;
 * the task counts as done when that commit went through and nothing is left to commit. The
 * instance is done when it holds an applied assignment, no rebalance result is pending, and every
 * active task is RUNNING and done (an instance with no task is done at once). A task that moves
 * away in a rebalance stops counting; one that moves in is created from the committed offsets and
 * must reach its end here. The targets stay those read at this instance's start.
 */
import type { TopologyDef } from '../../../topology/engine/types.js'
import { StreamsError } from '../../../topology/errors.js'
import type { ChangelogReader } from '../../state/types.js'
import type { FetchedBatch, StreamsAdmin, TopicPartition } from '../client/types.js'
import { tpKey } from '../client/types.js'
import type { Logger } from '../logger.js'
import type { StreamTask } from '../stream-task.js'

/** Options of `KafkaStreams.runUntilCaughtUp`. */
export interface RunUntilCaughtUpOptions {
  /**
   * Where stream-time moves once a task processed everything up to its targets, so windows,
   * suppressed results and left/outer join rows close and are emitted (the wall-clock idle
   * advance's mechanism):
   * - `'wallClock'`: to the wall clock minus `idleAdvanceDelayMs` (ms epoch, at that moment);
   * - a number: to that event time (ms epoch);
   * - undefined: stream-time stays at the largest timestamp processed (Kafka Streams' behaviour;
   *   windows still open stay open, their final results come in a later run).
   * Stream-time never moves backwards: a value behind a task's stream-time does nothing.
   * @defaultValue undefined
   */
  readonly advanceTimeTo?: 'wallClock' | number
  /**
   * Give up after this many ms: the client is closed and the promise rejects with a StreamsError.
   * @defaultValue no limit
   */
  readonly timeoutMs?: number
}

/** What `KafkaStreams.runUntilCaughtUp` resolves with. */
export interface RunUntilCaughtUpResult {
  /** Ids of the tasks this instance brought to their end (sorted); other instances did the rest. */
  readonly tasks: ReadonlyArray<string>
  /** Wall-clock duration of the run, ms. */
  readonly durationMs: number
}

/** What the tracker needs from Kafka. */
export interface RunUntilCaughtUpKafka {
  readonly admin: Pick<StreamsAdmin, 'topicOffsets' | 'committedOffsets'>
  /** Last stable offsets (read_committed). */
  readonly reader: Pick<ChangelogReader, 'endOffsets'>
}

export interface RunUntilCaughtUpTrackerOptions {
  readonly topology: TopologyDef
  readonly groupId: string
  /** The Kafka access, once the client is connected (undefined before). */
  readonly kafka: () => RunUntilCaughtUpKafka | undefined
  /** Where stream-time moves when a task is at its end, given the wall clock (ms); undefined = nowhere. */
  readonly advanceTo: (now: number) => number | undefined
  /** The reset policy of a source topic: a partition without committed offset and a `latest` reset has nothing to read. */
  readonly resetOf: (topic: string) => 'earliest' | 'latest'
  readonly logger: Logger
  /** How often (ms) the group's committed offsets are read while a repartition level waits. @defaultValue 250 */
  readonly groupPollMs?: number
}

/** A partition's target: records at offsets below `offset` belong to the run. */
interface Target {
  readonly offset: bigint
  /** Nothing to read from the start (empty, or committed at/after the target, or a `latest` reset without committed offset). */
  readonly trivial: boolean
}

/**
 * The per-instance state of a run until caught up (see the module comment). The stream thread
 * calls {@link clip} for every fetched batch and {@link advances} / {@link check} once per loop
 * iteration; {@link done} resolves when this instance's tasks reached their end.
 */
export class RunUntilCaughtUp {
  readonly #o: RunUntilCaughtUpTrackerOptions
  /** Topic → its level (0 = external source topic; repartition topics above). */
  readonly #levels = new Map<string, number>()
  readonly #maxLevel: number
  /** tpKey → target; a partition of a level whose targets are not read yet is absent. */
  readonly #targets = new Map<string, Target>()
  /** Levels whose targets are read. */
  #levelsRead = 0
  #loading: Promise<void> | undefined
  #lastLoad = 0
  /** Tasks (objects) whose consumer went past a partition's target: tpKeys. */
  readonly #beyond = new WeakMap<StreamTask, Set<string>>()
  /** Tasks (objects) at their end whose stream-time was advanced and commit requested. */
  readonly #finishing = new WeakSet<StreamTask>()
  readonly #finished = new Set<string>()
  #resolve!: (r: ReadonlyArray<string>) => void
  /** Resolves with the ids of the tasks this instance finished, once every task it holds is done. */
  readonly done: Promise<ReadonlyArray<string>>
  #resolved = false

  constructor(options: RunUntilCaughtUpTrackerOptions) {
    this.#o = options
    this.done = new Promise((r) => (this.#resolve = r))
    const subs = options.topology.subtopologies
    const repartition = new Set((options.topology.repartitionTopics ?? []).map((t) => t.name))
    for (const s of subs) for (const t of s.sourceTopics) if (!repartition.has(t)) this.#levels.set(t, 0)
    // a repartition topic is one level above the highest input of the sub-topologies writing it
    for (let changed = true, rounds = 0; changed && rounds <= subs.length + 1; rounds++) {
      changed = false
      for (const s of subs) {
        let inLevel = -1
        for (const t of s.sourceTopics) {
          const l = this.#levels.get(t)
          if (l === undefined) {
            inLevel = -1
            break
          }
          inLevel = Math.max(inLevel, l)
        }
        if (inLevel < 0) continue
        for (const t of s.sinkTopics) {
          if (!repartition.has(t)) continue
          const l = inLevel + 1
          if ((this.#levels.get(t) ?? -1) < l) {
            this.#levels.set(t, l)
            changed = true
          }
        }
      }
    }
    this.#maxLevel = Math.max(0, ...this.#levels.values())
  }

  /** The target offset of a partition, or undefined while not known. */
  target(topic: string, partition: number): bigint | undefined {
    return this.#targets.get(tpKey(topic, partition))?.offset
  }

  /**
   * A fetched batch without its records at or beyond the partition's target, and with its last
   * offset moved back to just before the target (so the queue's position, hence the committed
   * offset, stops at the target); undefined when the batch lies entirely beyond it (to be dropped:
   * the consumer's position is past the target).
   */
  clip(task: StreamTask, batch: FetchedBatch): FetchedBatch | undefined {
    const t = this.target(batch.topic, batch.partition)
    if (t === undefined || BigInt(batch.lastOffset) < t) return batch
    const first = batch.records[0]
    if (first !== undefined && BigInt(first.offset) >= t) {
      this.#markBeyond(task, batch.topic, batch.partition)
      return undefined
    }
    this.#markBeyond(task, batch.topic, batch.partition)
    return { ...batch, records: batch.records.filter((r) => BigInt(r.offset) < t), lastOffset: (t - 1n).toString() }
  }

  #markBeyond(task: StreamTask, topic: string, partition: number): void {
    let s = this.#beyond.get(task)
    if (!s) this.#beyond.set(task, (s = new Set()))
    s.add(tpKey(topic, partition))
  }

  /** Whether every input partition of a RUNNING task is processed up to its target. */
  atEnd(task: StreamTask): boolean {
    if (task.state !== 'RUNNING') return false
    const beyond = this.#beyond.get(task)
    for (const q of task.group.queues) {
      if (q.size > 0) return false
      const k = tpKey(q.topic, q.partition)
      const t = this.#targets.get(k)
      if (t === undefined) return false
      if (t.trivial || beyond?.has(k) === true) continue
      if (q.position === undefined || q.position < t.offset) return false
    }
    return true
  }

  /**
   * The tasks that just reached their end, with the stream-time to advance them to (once per task
   * object); the caller advances them (`engine.advanceStreamTime`). Marks them for a commit.
   */
  advances(tasks: Iterable<StreamTask>, now: number): Array<{ task: StreamTask; to: number | undefined }> {
    this.#load(now)
    const out: Array<{ task: StreamTask; to: number | undefined }> = []
    for (const task of tasks) {
      if (this.#finishing.has(task) || !this.atEnd(task)) continue
      this.#finishing.add(task)
      task.commitRequested = true
      out.push({ task, to: this.#o.advanceTo(now) })
    }
    return out
  }

  /**
   * Resolves {@link done} when `settled` (an assignment applied, none pending, every task RUNNING)
   * and every task reached its end and committed.
   */
  check(tasks: Iterable<StreamTask>, settled: boolean): void {
    if (this.#resolved || !settled) return
    const ids: string[] = []
    let pending = false
    for (const task of tasks) {
      if (!this.#finishing.has(task) || !this.atEnd(task)) return
      // e.g. transaction markers past the target moved the consumed offset after the commit
      if (task.needsCommit()) {
        task.commitRequested = true
        pending = true
      }
      ids.push(task.id)
    }
    if (pending) return
    for (const id of ids) this.#finished.add(id)
    this.#resolved = true
    this.#resolve([...this.#finished].sort())
  }

  /** Reads the next level's targets when due (in the background; errors are retried at the next poll). */
  #load(now: number): void {
    if (this.#loading || this.#levelsRead > this.#maxLevel || now - this.#lastLoad < (this.#o.groupPollMs ?? 250)) return
    const kafka = this.#o.kafka()
    if (!kafka) return
    this.#lastLoad = now
    this.#loading = this.#loadLevel(kafka, this.#levelsRead)
      .catch((e: unknown) =>
        this.#o.logger.warn(`reading the run's target offsets failed (retrying): ${(e as Error).message}`, { error: e }),
      )
      .finally(() => {
        this.#loading = undefined
      })
  }

  async #loadLevel(kafka: RunUntilCaughtUpKafka, level: number): Promise<void> {
    const topics = [...this.#levels].filter(([, l]) => l === level).map(([t]) => t)
    if (level > 0) {
      // every lower level's partitions committed up to their targets, by whichever instance
      const lower = [...this.#targets].filter(([k]) => (this.#levels.get(splitKey(k).topic) ?? 0) < level)
      const committed = await kafka.admin.committedOffsets(
        this.#o.groupId,
        lower.map(([k]) => splitKey(k)),
      )
      for (const [k, t] of lower) {
        if (t.trivial) continue
        const c = committed.get(k)
        if (c === undefined || c < t.offset) return
      }
    }
    const partitions: TopicPartition[] = []
    const low = new Map<string, bigint>()
    for (const topic of topics) {
      for (const [k, o] of await kafka.admin.topicOffsets(topic)) {
        partitions.push(splitKey(k))
        low.set(k, BigInt(o.low))
      }
    }
    const ends = partitions.length ? await kafka.reader.endOffsets(partitions) : new Map<string, string>()
    const committed = partitions.length ? await kafka.admin.committedOffsets(this.#o.groupId, partitions) : new Map<string, bigint>()
    for (const p of partitions) {
      const k = tpKey(p.topic, p.partition)
      const end = ends.get(k)
      if (end === undefined) throw new StreamsError(`no end offset for ${p.topic}[${p.partition}]`, { place: p })
      const offset = BigInt(end)
      const c = committed.get(k)
      const trivial =
        offset <= (low.get(k) ?? 0n) || (c !== undefined && c >= offset) || (c === undefined && this.#o.resetOf(p.topic) === 'latest')
      this.#targets.set(k, { offset, trivial })
    }
    this.#o.logger.info(`run until caught up: targets of level ${level} read`, {
      targets: Object.fromEntries(
        partitions.map((p) => [tpKey(p.topic, p.partition), this.#targets.get(tpKey(p.topic, p.partition))!.offset.toString()]),
      ),
    })
    this.#levelsRead = level + 1
  }
}

function splitKey(k: string): TopicPartition {
  const i = k.lastIndexOf(':')
  return { topic: k.slice(0, i), partition: Number(k.slice(i + 1)) }
}

/** The part of `KafkaStreams` a run drives. */
export interface RunnableClient {
  readonly state: string
  start(): Promise<void>
  close(): Promise<boolean>
  onStateChange(listener: (newState: string, oldState: string) => void): () => void
}

/**
 * Starts `client`, waits until `tracker` says this instance's tasks reached their end, closes the
 * client and resolves; on ERROR, an outside close or the timeout, closes and rejects.
 */
export async function runClientUntilCaughtUp(
  client: RunnableClient,
  tracker: RunUntilCaughtUp,
  options: RunUntilCaughtUpOptions,
): Promise<RunUntilCaughtUpResult> {
  const started = Date.now()
  let off: (() => void) | undefined
  let timer: NodeJS.Timeout | undefined
  const stopped = new Promise<never>((_, reject) => {
    off = client.onStateChange((n) => {
      if (n === 'PENDING_ERROR' || n === 'ERROR') reject(new StreamsError(`run until caught up failed: the client went to ${n}`))
      else if (n === 'PENDING_SHUTDOWN' || n === 'NOT_RUNNING')
        reject(new StreamsError(`run until caught up: the client was closed (${n}) before its tasks reached their end`))
    })
    if (options.timeoutMs !== undefined) {
      timer = setTimeout(
        () => reject(new StreamsError(`run until caught up: timed out after ${options.timeoutMs} ms before the tasks reached their end`)),
        options.timeoutMs,
      )
    }
  })
  stopped.catch(() => undefined)
  try {
    await Promise.race([client.start(), stopped])
    const tasks = await Promise.race([tracker.done, stopped])
    off?.()
    off = undefined
    await client.close()
    // the final commit happened before `done`; a close that ends in ERROR still fails the run
    if (client.state !== 'NOT_RUNNING') throw new StreamsError(`run until caught up: the client closed into ${client.state}`)
    return { tasks, durationMs: Date.now() - started }
  } catch (e) {
    off?.()
    await client.close().catch(() => undefined)
    throw e
  } finally {
    clearTimeout(timer)
  }
}
