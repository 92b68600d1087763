/**
 * The task assignment algorithm (Kafka Streams: `HighAvailabilityTaskAssignor` + `TaskMovement`,
 * KIP-441), as pure functions: the group leader calls {@link assignTasks} with every member's
 * subscription and the changelog end offsets; nothing here does I/O.
 *
 * **Lags.** A member reports, per task whose state it has (active, standby, or a task directory left
 * on its disk), the sum of the changelog offsets its local state reflects, or {@link LATEST_OFFSET}
 * for an active task it is running. The leader sums each task's changelog end offsets; a member's
 * lag for a task is end − offset sum (the whole end sum when it has no state; the end sum too when
 * its state claims to be ahead of the changelog, i.e. is unusable). A member is *caught up* on a
 * task when it runs it, or its lag is at most `acceptableRecoveryLag`.
 *
 * **Steps.**
 * 1. *Target*: a balanced assignment of the stateful tasks (every member gets ⌊S/M⌋ or ⌈S/M⌉),
 *    sticky: the previous owner keeps a task within its quota; other tasks go first to caught-up
 *    members, then to the member with the least lag.
 * 2. *Standbys*: `numStandbyReplicas` per stateful task on members other than the active's, the
 *    least lagging first (caught-up members count as equal), then the least loaded.
 * 3. *Movements*: when a task's target member is not caught up while another member is (or lags
 *    less), the task stays on (goes to) that member — its previous owner if caught up, else a
 *    caught-up member holding a standby (active and standby swap), else the least loaded caught-up
 *    member; with none caught up, the least lagging member — and the target gets a *warm-up
 *    replica*: a standby beyond `numStandbyReplicas`, at most `maxWarmupReplicas` in the group.
 * 4. *Stateless tasks* even out the active task counts (a member that keeps extra stateful tasks
 *    gets fewer stateless ones), sticky within that balance.
 *
 * When a movement was needed, the assignment asks for a *probing rebalance* after
 * `probingRebalanceIntervalMs`: by then the warm-ups have caught up and the target takes the task.
 *
 * Differences from Kafka Streams: its target is a plain round robin, so previous ownership only
 * counts through lag; ours is sticky and lag-aware, which moves fewer tasks and needs fewer
 * warm-ups (a task whose least-lagging member can take it goes there at once). Standbys are placed
 * by lag directly, so there are no separate standby movements. One member = one client (one
 * stream thread per instance).
 */

/** Kafka Streams' `Task.LATEST_OFFSET`: the offset sum of an active task its member is running (caught up by definition). */
export const LATEST_OFFSET = -2

/** The assignment configs (Kafka Streams: `AssignorConfiguration.AssignmentConfigs`). */
export interface AssignmentConfigs {
  /** Standby replicas per stateful task (capped at members − 1). */
  readonly numStandbyReplicas: number
  /** A member whose lag on a task is at most this is caught up (may take it as active). */
  readonly acceptableRecoveryLag: number
  /** Warm-up replicas (standbys beyond `numStandbyReplicas`) in the whole group at once. */
  readonly maxWarmupReplicas: number
}

/** What the algorithm needs from a member's subscription. */
export interface TaskAssignorMember {
  readonly memberId: string
  /** Tasks it ran as active in the previous generation. */
  readonly prevActive: ReadonlyArray<string>
  /** Tasks it ran as standby in the previous generation. */
  readonly prevStandby: ReadonlyArray<string>
  /** Task → offset sum of its local state, or {@link LATEST_OFFSET}; absent: no state. */
  readonly taskOffsetSums: Readonly<Record<string, number>>
}

export interface TaskAssignment {
  /** Member → active tasks. */
  readonly active: ReadonlyMap<string, string[]>
  /** Member → standby tasks, warm-ups included (a member runs a warm-up as a standby). */
  readonly standby: ReadonlyMap<string, string[]>
  /** Member → the standby tasks that are warm-up replicas. */
  readonly warmup: ReadonlyMap<string, string[]>
  /** A movement was planned: rebalance again after `probingRebalanceIntervalMs`. */
  readonly probingRebalanceNeeded: boolean
}

/**
 * A member's lag on a task (Kafka Streams: `ClientState#computeTaskLags`).
 * @param offsetSum the member's reported offset sum (undefined: no state)
 * @param endOffsetSum the task's changelog end offset sum
 * @returns {@link LATEST_OFFSET} for a running active task, else a lag ≥ 0
 */
export function taskLag(offsetSum: number | undefined, endOffsetSum: number): number {
  if (offsetSum === LATEST_OFFSET) return LATEST_OFFSET
  const sum = offsetSum === undefined || offsetSum < 0 ? 0 : offsetSum
  // state ahead of the changelog (truncated or recreated topic): it restores from scratch
  if (endOffsetSum < sum) return endOffsetSum
  return endOffsetSum - sum
}

/** Whether a lag counts as caught up. */
export function isCaughtUp(lag: number, acceptableRecoveryLag: number): boolean {
  return lag === LATEST_OFFSET || (lag >= 0 && lag <= acceptableRecoveryLag)
}

const byId = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/**
 * Computes the assignment (deterministic for a given input).
 * @param tasks all task ids, in the order to consider them (partition-major, see `computeTasks`)
 * @param members the group's members
 * @param statefulTasks tasks with logged state: lag-aware placement, standbys, warm-ups
 * @param configs standbys, acceptable lag, warm-ups
 * @param endOffsetSums stateful task → sum of its changelogs' end offsets. A task missing here (the
 *   end offsets could not be read) is judged by the members' offset sums alone: the highest one
 *   counts as the end.
 */
export function assignTasks(
  tasks: ReadonlyArray<string>,
  members: ReadonlyArray<TaskAssignorMember>,
  statefulTasks: ReadonlySet<string>,
  configs: AssignmentConfigs,
  endOffsetSums: ReadonlyMap<string, number> = new Map(),
): TaskAssignment {
  const ids = members.map((m) => m.memberId).sort(byId)
  const byMember = new Map(members.map((m) => [m.memberId, m]))
  const active = new Map<string, string[]>(ids.map((id) => [id, []]))
  const standby = new Map<string, Set<string>>(ids.map((id) => [id, new Set()]))
  const warmup = new Map<string, string[]>(ids.map((id) => [id, []]))
  const result = (probing: boolean): TaskAssignment => ({
    active,
    standby: new Map([...standby].map(([id, s]) => [id, [...s]])),
    warmup,
    probingRebalanceNeeded: probing,
  })
  if (ids.length === 0) return result(false)
  const order = new Map(ids.map((id, i) => [id, i]))
  const stateful = tasks.filter((t) => statefulTasks.has(t))
  const stateless = tasks.filter((t) => !statefulTasks.has(t))

  const prevOwner = new Map<string, string>()
  for (const id of ids) for (const t of byMember.get(id)!.prevActive) if (!prevOwner.has(t)) prevOwner.set(t, id)

  // lags of every member on every stateful task
  const lags = new Map<string, Map<string, number>>()
  for (const t of stateful) {
    let end = endOffsetSums.get(t)
    if (end === undefined) {
      end = 0
      for (const id of ids) end = Math.max(end, byMember.get(id)!.taskOffsetSums[t] ?? 0)
    }
    const l = new Map<string, number>()
    for (const id of ids) l.set(id, taskLag(byMember.get(id)!.taskOffsetSums[t], end))
    lags.set(t, l)
  }
  const lagOf = (id: string, t: string): number => lags.get(t)!.get(id)!
  const caughtUp = (id: string, t: string): boolean => isCaughtUp(lagOf(id, t), configs.acceptableRecoveryLag)

  // assigned load (active + standby) and active load per member
  const load = new Map<string, number>(ids.map((id) => [id, 0]))
  const activeLoad = new Map<string, number>(ids.map((id) => [id, 0]))
  const owner = new Map<string, string>()
  const addActive = (id: string, t: string): void => {
    active.get(id)!.push(t)
    owner.set(t, id)
    load.set(id, load.get(id)! + 1)
    activeLoad.set(id, activeLoad.get(id)! + 1)
  }
  const removeActive = (id: string, t: string): void => {
    const l = active.get(id)!
    l.splice(l.indexOf(t), 1)
    owner.delete(t)
    load.set(id, load.get(id)! - 1)
    activeLoad.set(id, activeLoad.get(id)! - 1)
  }
  const addStandby = (id: string, t: string): void => {
    standby.get(id)!.add(t)
    load.set(id, load.get(id)! + 1)
  }
  const removeStandby = (id: string, t: string): void => {
    standby.get(id)!.delete(t)
    load.set(id, load.get(id)! - 1)
  }
  const holds = (id: string, t: string): boolean => owner.get(t) === id || standby.get(id)!.has(t)
  const pick = (candidates: Iterable<string>, key: (id: string) => number[]): string | undefined => {
    let best: string | undefined
    let bestKey: number[] | undefined
    for (const id of candidates) {
      const k = [...key(id), order.get(id)!]
      if (!bestKey || compareKeys(k, bestKey) < 0) {
        best = id
        bestKey = k
      }
    }
    return best
  }

  // 1. the target: balanced over the stateful tasks, sticky, lag-aware
  const statefulQuota = new Quota(ids, (id) => activeLoad.get(id)!, stateful.length)
  const canTake = (id: string): boolean => statefulQuota.canTake(id)
  const take = (id: string, t: string): void => {
    statefulQuota.took(id)
    addActive(id, t)
  }
  for (const t of stateful) {
    const p = prevOwner.get(t)
    if (p !== undefined && active.has(p) && canTake(p)) take(p, t)
  }
  for (const t of stateful) {
    if (owner.has(t)) continue
    const c = pick(
      ids.filter((id) => canTake(id) && caughtUp(id, t)),
      (id) => [activeLoad.get(id)!],
    )
    if (c !== undefined) take(c, t)
  }
  for (const t of stateful) {
    if (owner.has(t)) continue
    const c = pick(
      ids.filter((id) => canTake(id)),
      (id) => [lagOf(id, t), activeLoad.get(id)!],
    )
    if (c === undefined) throw new Error(`assignTasks: no member can take task ${t} (bug)`)
    take(c, t)
  }

  // 2. standbys, against the target
  const replicas = Math.min(configs.numStandbyReplicas, ids.length - 1)
  for (const t of stateful) {
    for (let r = 0; r < replicas; r++) {
      const c = pick(
        ids.filter((id) => !holds(id, t)),
        (id) => {
          const lag = lagOf(id, t)
          const up = isCaughtUp(lag, configs.acceptableRecoveryLag)
          return [up ? 0 : 1, up ? 0 : lag, load.get(id)!]
        },
      )
      if (c === undefined) break
      addStandby(c, t)
    }
  }

  // 3. movements: a target that is not caught up waits (warms up) while a caught-up or less
  //    lagging member runs the task
  const movements: Array<{ task: string; dest: string; caughtUpCount: number; index: number }> = []
  stateful.forEach((t, index) => {
    const dest = owner.get(t)!
    if (caughtUp(dest, t)) return
    const destLag = lagOf(dest, t)
    if (!ids.some((id) => lagOf(id, t) < destLag)) return
    movements.push({ task: t, dest, caughtUpCount: ids.filter((id) => caughtUp(id, t)).length, index })
  })
  movements.sort((a, b) => a.caughtUpCount - b.caughtUpCount || a.index - b.index)
  let warmupsLeft = configs.maxWarmupReplicas
  for (const { task: t, dest } of movements) {
    const upMembers = ids.filter((id) => id !== dest && caughtUp(id, t))
    let source: string | undefined
    if (upMembers.length > 0) {
      const p = prevOwner.get(t)
      source = p !== undefined && upMembers.includes(p) ? p : pick(upMembers, (id) => [standby.get(id)!.has(t) ? 0 : 1, load.get(id)!])
    } else {
      source = pick(
        ids.filter((id) => id !== dest && lagOf(id, t) < lagOf(dest, t)),
        (id) => [lagOf(id, t), standby.get(id)!.has(t) ? 0 : 1],
      )
    }
    if (source === undefined) throw new Error(`assignTasks: no member to move task ${t} to (bug)`)
    removeActive(dest, t)
    if (standby.get(source)!.has(t)) {
      // active and standby swap: the target keeps a copy as one of the numStandbyReplicas
      removeStandby(source, t)
      addActive(source, t)
      addStandby(dest, t)
    } else {
      addActive(source, t)
      if (warmupsLeft > 0) {
        warmupsLeft--
        addStandby(dest, t)
        warmup.get(dest)!.push(t)
      }
    }
  }

  // 4. stateless tasks: balancing the active load, sticky within the balance
  const statelessQuota = new Quota(ids, (id) => activeLoad.get(id)!, stateless.length)
  const placed = new Set<string>()
  for (const t of stateless) {
    const p = prevOwner.get(t)
    if (p === undefined || !statelessQuota.canTake(p)) continue
    statelessQuota.took(p)
    addActive(p, t)
    placed.add(t)
  }
  for (const t of stateless) {
    if (placed.has(t)) continue
    const c = pick(
      ids.filter((id) => statelessQuota.canTake(id)),
      (id) => [activeLoad.get(id)!],
    )
    if (c === undefined) throw new Error(`assignTasks: no member can take task ${t} (bug)`)
    statelessQuota.took(c)
    addActive(c, t)
  }
  return result(movements.length > 0)
}

/**
 * How many of `count` tasks each member may still take so that the members' final loads are as
 * even as possible: the lowest level h that the count fills; every member may reach h − 1, and as
 * many as the count allows may reach h. A member already at h or above takes nothing.
 */
class Quota {
  readonly #base: number
  #extras: number
  constructor(
    ids: ReadonlyArray<string>,
    private readonly load: (id: string) => number,
    count: number,
  ) {
    const loads = ids.map((id) => load(id))
    const room = (h: number) => loads.reduce((n, l) => n + Math.max(0, h - l), 0)
    let h = Math.min(...loads)
    if (count > 0) while (room(h) < count) h++
    this.#base = h - 1
    this.#extras = count > 0 ? count - room(h - 1) : 0
  }

  canTake(id: string): boolean {
    const l = this.load(id)
    return l < this.#base || (l === this.#base && this.#extras > 0)
  }

  /** Call BEFORE the member's load grows. */
  took(id: string): void {
    if (this.load(id) === this.#base) this.#extras--
  }
}

function compareKeys(a: ReadonlyArray<number>, b: ReadonlyArray<number>): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return 0
}
