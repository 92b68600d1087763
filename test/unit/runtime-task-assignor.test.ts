/**
 * The lag-aware task assignment (KIP-441) as pure functions, from the facts of Kafka Streams'
 * HighAvailabilityTaskAssignorTest and TaskAssignorConvergenceTest: tasks go to caught-up clients,
 * warm-ups are bounded by maxWarmupReplicas, no task is lost or duplicated, the assignment
 * balances when everyone is caught up, and probing rebalances converge.
 */
import { describe, expect, it } from 'vitest'
import {
  assignTasks,
  isCaughtUp,
  LATEST_OFFSET,
  taskLag,
  type AssignmentConfigs,
  type TaskAssignment,
  type TaskAssignorMember,
} from '../../lib/app/task-assignor.js'

function cfg(o: Partial<AssignmentConfigs> = {}): AssignmentConfigs {
  return { numStandbyReplicas: 0, acceptableRecoveryLag: 100, maxWarmupReplicas: 2, ...o }
}

function client(memberId: string, o: { active?: string[]; standby?: string[]; sums?: Record<string, number> } = {}): TaskAssignorMember {
  return { memberId, prevActive: o.active ?? [], prevStandby: o.standby ?? [], taskOffsetSums: o.sums ?? {} }
}

/** Task ids `<sub>_<p>` for `subs` sub-topologies of `n` partitions, partition-major. */
function taskIds(n: number, subs = 1): string[] {
  const out: string[] = []
  for (let p = 0; p < n; p++) for (let s = 0; s < subs; s++) out.push(`${s}_${p}`)
  return out
}

const sums = (tasks: string[], v: number | ((t: string) => number)) =>
  Object.fromEntries(tasks.map((t) => [t, typeof v === 'number' ? v : v(t)]))
const ends = (tasks: string[], v: number) => new Map(tasks.map((t) => [t, v]))

function activeOf(r: TaskAssignment, id: string): string[] {
  return [...(r.active.get(id) ?? [])].sort()
}
function standbyOf(r: TaskAssignment, id: string): string[] {
  return [...(r.standby.get(id) ?? [])].sort()
}
function warmupCount(r: TaskAssignment): number {
  return [...r.warmup.values()].reduce((n, l) => n + l.length, 0)
}

/**
 * Every task exactly one active; no member holds a task twice; every stateful task has
 * min(numStandbyReplicas, members − 1) standbys plus at most the group's warm-ups, which are
 * standbys and at most maxWarmupReplicas in all; stateless tasks have none.
 */
function expectValid(r: TaskAssignment, tasks: string[], stateful: Set<string>, members: number, c: AssignmentConfigs): void {
  const actives = [...r.active.values()].flat()
  expect([...actives].sort()).toEqual([...tasks].sort())
  for (const [id, sb] of r.standby) {
    expect(new Set(sb).size).toBe(sb.length)
    for (const t of sb) expect(r.active.get(id)).not.toContain(t)
    for (const t of r.warmup.get(id) ?? []) expect(sb).toContain(t)
  }
  const warmups = warmupCount(r)
  expect(warmups).toBeLessThanOrEqual(c.maxWarmupReplicas)
  const replicas = Math.min(c.numStandbyReplicas, members - 1)
  let extra = 0
  for (const t of tasks) {
    const n = [...r.standby.values()].filter((l) => l.includes(t)).length
    if (!stateful.has(t)) expect(n).toBe(0)
    else {
      expect(n).toBeGreaterThanOrEqual(replicas)
      extra += n - replicas
    }
  }
  expect(extra).toBe(warmups)
}

function spread(counts: number[]): number {
  return Math.max(...counts) - Math.min(...counts)
}

describe('lags', () => {
  it('is end − offset sum; the whole end without state or with state ahead of the changelog; LATEST for a running task', () => {
    expect(taskLag(900, 1000)).toBe(100)
    expect(taskLag(undefined, 1000)).toBe(1000)
    expect(taskLag(1500, 1000)).toBe(1000)
    expect(taskLag(LATEST_OFFSET, 1000)).toBe(LATEST_OFFSET)
    expect(isCaughtUp(LATEST_OFFSET, 0)).toBe(true)
    expect(isCaughtUp(100, 100)).toBe(true)
    expect(isCaughtUp(101, 100)).toBe(false)
  })
})

describe('assignTasks (KIP-441)', () => {
  it('gives a stateful task to the caught-up client and warms it up on its previous, lagging owner', () => {
    // 0_0 stateful, 0_1 stateless; c1 ran 0_0 but lags 500; c2 is caught up on 0_0
    const tasks = ['0_0', '0_1']
    const r = assignTasks(
      tasks,
      [client('c1', { active: ['0_0'], sums: { '0_0': 500 } }), client('c2', { active: ['0_1'], sums: { '0_0': 1000 } })],
      new Set(['0_0']),
      cfg(),
      ends(['0_0'], 1000),
    )
    expect(activeOf(r, 'c2')).toEqual(['0_0'])
    expect(activeOf(r, 'c1')).toEqual(['0_1'])
    expect(r.warmup.get('c1')).toEqual(['0_0'])
    expect(r.probingRebalanceNeeded).toBe(true)
    expectValid(r, tasks, new Set(['0_0']), 2, cfg())
  })

  it('keeps the tasks on their running owner while a new client warms up at most maxWarmupReplicas of them', () => {
    const tasks = taskIds(4)
    const members = [client('c1', { active: tasks, sums: sums(tasks, LATEST_OFFSET) }), client('c2')]
    for (const maxWarmupReplicas of [1, 2]) {
      const c = cfg({ maxWarmupReplicas })
      const r = assignTasks(tasks, members, new Set(tasks), c, ends(tasks, 50_000))
      expect(activeOf(r, 'c1')).toEqual(tasks)
      expect(activeOf(r, 'c2')).toEqual([])
      expect(standbyOf(r, 'c2')).toHaveLength(maxWarmupReplicas)
      expect(r.warmup.get('c2')).toHaveLength(maxWarmupReplicas)
      expect(standbyOf(r, 'c1')).toEqual([])
      expect(r.probingRebalanceNeeded).toBe(true)
      expectValid(r, tasks, new Set(tasks), 2, c)
    }
  })

  it('moves a task at once when its new owner is caught up (a standby): no warm-up, no probing rebalance', () => {
    const tasks = taskIds(4)
    const r = assignTasks(
      tasks,
      [client('c1', { active: tasks, sums: sums(tasks, LATEST_OFFSET) }), client('c2', { standby: tasks, sums: sums(tasks, 49_950) })],
      new Set(tasks),
      cfg({ numStandbyReplicas: 1 }),
      ends(tasks, 50_000),
    )
    expect(activeOf(r, 'c1')).toHaveLength(2)
    expect(activeOf(r, 'c2')).toHaveLength(2)
    // each keeps a standby of the other's tasks
    expect(standbyOf(r, 'c1')).toEqual(activeOf(r, 'c2'))
    expect(standbyOf(r, 'c2')).toEqual(activeOf(r, 'c1'))
    expect(warmupCount(r)).toBe(0)
    expect(r.probingRebalanceNeeded).toBe(false)
  })

  it('does not give a warm-up where a standby already warms the task up (shouldNotAssignWarmupAndStandbyToTheSameClient)', () => {
    const tasks = taskIds(4)
    const c = cfg({ numStandbyReplicas: 1, maxWarmupReplicas: 1 })
    const r = assignTasks(
      tasks,
      [client('c1', { active: tasks, sums: sums(tasks, LATEST_OFFSET) }), client('c2')],
      new Set(tasks),
      c,
      ends(tasks, 10_000),
    )
    expect(activeOf(r, 'c1')).toEqual(tasks)
    expect(standbyOf(r, 'c2')).toEqual(tasks)
    expect(standbyOf(r, 'c1')).toEqual([])
    expect(warmupCount(r)).toBe(0)
    expect(r.probingRebalanceNeeded).toBe(true)
    expectValid(r, tasks, new Set(tasks), 2, c)
  })

  it('with nobody caught up, gives the task to the least lagging client and a standby to the next (stickiness)', () => {
    const r = assignTasks(
      ['0_0'],
      [client('c1'), client('c2', { sums: { '0_0': 9_000 } }), client('c3', { sums: { '0_0': 9_500 } })],
      new Set(['0_0']),
      cfg({ numStandbyReplicas: 1 }),
      ends(['0_0'], 10_000),
    )
    expect(activeOf(r, 'c3')).toEqual(['0_0'])
    expect(standbyOf(r, 'c2')).toEqual(['0_0'])
    expect(standbyOf(r, 'c1')).toEqual([])
    expect(r.probingRebalanceNeeded).toBe(false)
  })

  it('moves an active task away from a lagging target to a less lagging client, warming the target up', () => {
    // c1 ran 0_0 and 0_1 (quota 1 each): 0_1's target is c2, which lags more than c3
    const tasks = ['0_0', '0_1']
    const r = assignTasks(
      tasks,
      [client('c1', { active: tasks, sums: sums(tasks, LATEST_OFFSET) }), client('c2'), client('c3', { sums: { '0_1': 5_000 } })],
      new Set(tasks),
      cfg(),
      ends(tasks, 10_000),
    )
    expect(activeOf(r, 'c1')).toContain('0_0')
    // the previous, caught-up owner keeps it while the target warms up
    expect(activeOf(r, 'c1')).toContain('0_1')
    expect(warmupCount(r)).toBe(1)
    expect(r.probingRebalanceNeeded).toBe(true)
  })

  it('gives a single client everything, without standbys or probing (no state anywhere)', () => {
    const tasks = taskIds(2)
    const r = assignTasks(tasks, [client('c1')], new Set(tasks), cfg({ numStandbyReplicas: 1 }), ends(tasks, 1_000))
    expect(activeOf(r, 'c1')).toEqual(tasks)
    expect(standbyOf(r, 'c1')).toEqual([])
    expect(r.probingRebalanceNeeded).toBe(false)
  })

  it('balances without warm-ups when every client counts as caught up (acceptableRecoveryLag unbounded)', () => {
    const tasks = taskIds(3, 3)
    const c = cfg({ numStandbyReplicas: 1, maxWarmupReplicas: 1, acceptableRecoveryLag: Number.MAX_SAFE_INTEGER })
    const r = assignTasks(
      tasks,
      [client('c1', { active: tasks, sums: sums(tasks, 1_000) }), client('c2'), client('c3')],
      new Set(tasks),
      c,
      ends(tasks, 1_000_000),
    )
    for (const id of ['c1', 'c2', 'c3']) {
      expect(activeOf(r, id)).toHaveLength(3)
      expect(standbyOf(r, id)).toHaveLength(3)
    }
    expect(r.probingRebalanceNeeded).toBe(false)
    expectValid(r, tasks, new Set(tasks), 3, c)
  })

  it('is sticky when everyone is caught up: previous owners keep their tasks', () => {
    const tasks = taskIds(6)
    const a = ['0_0', '0_2', '0_4']
    const b = ['0_1', '0_3', '0_5']
    const r = assignTasks(
      tasks,
      [
        client('a', { active: a, standby: b, sums: sums(tasks, LATEST_OFFSET) }),
        client('b', { active: b, standby: a, sums: sums(tasks, 100) }),
      ],
      new Set(tasks),
      cfg({ numStandbyReplicas: 1 }),
      ends(tasks, 100),
    )
    expect(activeOf(r, 'a')).toEqual(a)
    expect(activeOf(r, 'b')).toEqual(b)
    expect(standbyOf(r, 'a')).toEqual(b)
    expect(standbyOf(r, 'b')).toEqual(a)
    expect(r.probingRebalanceNeeded).toBe(false)
  })

  it('treats state ahead of the changelog as no state (it restores from scratch)', () => {
    const r = assignTasks(
      ['0_0'],
      [client('c1', { sums: { '0_0': 5_000 } }), client('c2', { sums: { '0_0': 900 } })],
      new Set(['0_0']),
      cfg(),
      ends(['0_0'], 1_000),
    )
    expect(activeOf(r, 'c2')).toEqual(['0_0'])
  })

  it('judges by the offset sums alone when the end offsets are unknown', () => {
    const r = assignTasks(
      ['0_0'],
      [client('c1', { sums: { '0_0': 10 } }), client('c2', { sums: { '0_0': 5_000 } })],
      new Set(['0_0']),
      cfg(),
    )
    expect(activeOf(r, 'c2')).toEqual(['0_0'])
  })

  it('distributes stateless tasks to balance the total active load', () => {
    // 4 stateful tasks caught up only on c1 (warm-ups pending) + 4 stateless tasks
    const stateful = ['0_0', '0_1', '0_2', '0_3']
    const stateless = ['1_0', '1_1', '1_2', '1_3']
    const tasks = [...stateful, ...stateless]
    const r = assignTasks(
      tasks,
      [client('c1', { active: stateful, sums: sums(stateful, LATEST_OFFSET) }), client('c2')],
      new Set(stateful),
      cfg(),
      ends(stateful, 10_000),
    )
    expect(activeOf(r, 'c1')).toEqual(stateful)
    expect(activeOf(r, 'c2')).toEqual(stateless)
  })

  it('keeps stateless tasks on their previous owner when that keeps the balance', () => {
    const tasks = taskIds(4)
    const r = assignTasks(tasks, [client('a', { active: ['0_1', '0_2'] }), client('b', { active: ['0_0', '0_3'] })], new Set(), cfg())
    expect(activeOf(r, 'a')).toEqual(['0_1', '0_2'])
    expect(activeOf(r, 'b')).toEqual(['0_0', '0_3'])
  })

  it('moves only what it must when a client joins', () => {
    const tasks = taskIds(6)
    const r = assignTasks(
      tasks,
      [client('a', { active: tasks.slice(0, 3) }), client('b', { active: tasks.slice(3) }), client('c')],
      new Set(),
      cfg(),
    )
    expect([...r.active.values()].map((l) => l.length)).toEqual([2, 2, 2])
    const kept =
      activeOf(r, 'a').filter((t) => tasks.slice(0, 3).includes(t)).length +
      activeOf(r, 'b').filter((t) => tasks.slice(3).includes(t)).length
    expect(kept).toBe(4)
  })

  it('assigns every task exactly once and balances within one for many shapes (no state)', () => {
    for (const [n, subs, m, standbys] of [
      [4, 2, 3, 0],
      [8, 1, 3, 1],
      [1, 2, 2, 1],
      [12, 3, 5, 2],
      [3, 1, 7, 2],
    ] as const) {
      const tasks = taskIds(n, subs)
      const stateful = new Set(tasks.filter((t) => t.startsWith('0_')))
      const members = Array.from({ length: m }, (_, i) => client(`m${i}`))
      const c = cfg({ numStandbyReplicas: standbys })
      const r = assignTasks(tasks, members, stateful, c, ends([...stateful], 0))
      expectValid(r, tasks, stateful, m, c)
      expect(spread([...r.active.values()].map((l) => l.length))).toBeLessThanOrEqual(1)
      expect(spread([...r.active.values()].map((l) => l.filter((t) => stateful.has(t)).length))).toBeLessThanOrEqual(1)
      expect(r.probingRebalanceNeeded).toBe(false)
    }
  })
})

// ---------------------------------------------------------------------------------------------
// convergence (TaskAssignorConvergenceTest): between two rebalances every active and standby
// (warm-ups included) catches up; probing rebalances repeat until none is needed
// ---------------------------------------------------------------------------------------------

/** A seeded PRNG (mulberry32): the same seed reproduces a scenario. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

class Cluster {
  readonly clients = new Map<string, TaskAssignorMember>()
  readonly tasks: string[]
  readonly stateful: Set<string>
  readonly ends: Map<string, number>
  #next = 0
  last: TaskAssignment | undefined

  constructor(statelessTasks: number, statefulTasks: number, clients: number) {
    const stateful = Array.from({ length: statefulTasks }, (_, p) => `0_${p}`)
    const stateless = Array.from({ length: statelessTasks }, (_, p) => `1_${p}`)
    this.tasks = [...stateful, ...stateless]
    this.stateful = new Set(stateful)
    this.ends = new Map(stateful.map((t, i) => [t, 1_000 * (i + 1)]))
    for (let i = 0; i < clients; i++) this.addClient()
  }

  addClient(): string {
    const id = `c${String(this.#next++).padStart(3, '0')}`
    this.clients.set(id, client(id))
    return id
  }

  drop(id: string): void {
    this.clients.delete(id)
  }

  /** The members as they subscribe after the last assignment: caught up on everything they held. */
  #prepare(): void {
    if (!this.last) return
    for (const [id] of this.clients) {
      const active = this.last.active.get(id) ?? []
      const standby = this.last.standby.get(id) ?? []
      const s: Record<string, number> = {}
      for (const t of active) if (this.stateful.has(t)) s[t] = LATEST_OFFSET
      for (const t of standby) s[t] = this.ends.get(t)!
      this.clients.set(id, { memberId: id, prevActive: active, prevStandby: standby, taskOffsetSums: s })
    }
  }

  /** Rebalances until no probing rebalance is needed; returns how many rebalances it took. */
  converge(c: AssignmentConfigs, limit: number): number {
    for (let i = 1; i <= limit; i++) {
      this.#prepare()
      this.last = assignTasks(this.tasks, [...this.clients.values()], this.stateful, c, this.ends)
      expectValid(this.last, this.tasks, this.stateful, this.clients.size, c)
      if (!this.last.probingRebalanceNeeded) return i
    }
    throw new Error(`no convergence within ${limit} rebalances`)
  }

  expectBalanced(): void {
    const r = this.last!
    expect(spread([...r.active.values()].map((l) => l.length))).toBeLessThanOrEqual(1)
    expect(spread([...r.active.values()].map((l) => l.filter((t) => this.stateful.has(t)).length))).toBeLessThanOrEqual(1)
    expect(warmupCount(r)).toBe(0)
  }
}

describe('convergence of probing rebalances', () => {
  it('a static group converges with the first assignment', () => {
    const cl = new Cluster(1, 1, 1)
    expect(cl.converge(cfg(), 1)).toBe(1)
    cl.expectBalanced()
  })

  it('converges after adding a client, moving at most maxWarmupReplicas tasks per rebalance', () => {
    const c = cfg({ maxWarmupReplicas: 2 })
    const cl = new Cluster(7, 11, 1)
    cl.converge(c, 1)
    cl.addClient()
    const n = cl.converge(c, Math.floor(11 / 2) + 1)
    expect(n).toBeGreaterThan(1)
    cl.expectBalanced()
  })

  it('converges after dropping a client', () => {
    const c = cfg({ maxWarmupReplicas: 2 })
    const cl = new Cluster(11, 13, 7)
    cl.converge(c, 1)
    cl.drop([...cl.clients.keys()][0]!)
    cl.converge(c, Math.floor(13 / 2) + 2)
    cl.expectBalanced()
  })

  it('converges under random perturbations (seeded), with standbys, never losing or duplicating a task', () => {
    for (let seed = 1; seed <= 150; seed++) {
      const rnd = prng(seed)
      const int = (n: number) => Math.floor(rnd() * n)
      const initial = int(10) + 1
      const statefulTasks = int(10) + 1
      const c = cfg({ maxWarmupReplicas: int(statefulTasks) + 1, numStandbyReplicas: int(initial + 1) })
      const cl = new Cluster(int(10) + 1, statefulTasks, initial)
      const limit = 2 * (statefulTasks + statefulTasks * c.numStandbyReplicas)
      try {
        cl.converge(c, 1)
        cl.expectBalanced()
        for (let e = int(10) + 1; e > 0; e--) {
          if (int(2) === 0) {
            for (let k = int(initial); k > 0 && cl.clients.size > 0; k--) cl.drop([...cl.clients.keys()][int(cl.clients.size)]!)
          } else {
            for (let k = int(initial) + 1; k > 0; k--) cl.addClient()
          }
          if (cl.clients.size === 0) cl.addClient()
          cl.converge(c, limit)
          cl.expectBalanced()
        }
      } catch (e) {
        throw new Error(`seed ${seed}: ${(e as Error).message}`, { cause: e })
      }
    }
  })
})
