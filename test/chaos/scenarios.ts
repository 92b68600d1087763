/**
 * The fault scenarios, one function each (see test/chaos/scenario.ts for what surrounds them).
 * Each returns when its last fault has ended, with that time.
 */
import { sleep } from './clock.js'
import type { RunContext, ScenarioFn } from './scenario.js'

/** Freezes every node of the cluster (SIGSTOP) for `ms`, then resumes them. Returns the resume time. */
export async function freezeCluster(ctx: RunContext, ms: number): Promise<number> {
  ctx.note(
    `FAULT: freezing ${ctx.cluster.nodes.length} broker(s) (SIGSTOP pid ${ctx.cluster.nodes.map((n) => n.pid()).join(',')}) for ${ms / 1000} s`,
  )
  for (const n of ctx.cluster.nodes) n.freeze()
  try {
    await sleep(ms)
  } finally {
    for (const n of ctx.cluster.nodes) n.resume()
  }
  ctx.note('FAULT END: broker(s) resumed (SIGCONT)')
  return Date.now()
}

/** Waits until `records` input records were produced (so the fault hits a running pipeline). */
async function afterInput(ctx: RunContext, records: number): Promise<void> {
  while (ctx.input.produced < records && ctx.input.error === undefined) await sleep(100)
}

/**
 * Issue 16's operator run: after 8 s of input the broker is frozen 20 s, resumed, 10 s later frozen
 * 45 s, resumed.
 */
export const issue16: ScenarioFn = async (ctx) => {
  const rate = ctx.options.ratePerSec ?? 400
  await afterInput(ctx, rate * 8)
  await freezeCluster(ctx, 20_000)
  await sleep(10_000)
  return { faultEnd: await freezeCluster(ctx, 45_000) }
}

/** (a) The whole cluster frozen (SIGSTOP every node) for `seconds`, after `afterSeconds` of input. */
export function clusterFreeze(seconds: number, afterSeconds = 10): ScenarioFn {
  return async (ctx) => {
    await afterInput(ctx, (ctx.options.ratePerSec ?? 400) * afterSeconds)
    return { faultEnd: await freezeCluster(ctx, seconds * 1000) }
  }
}

/** A node of a cluster from scripts/local-cluster.ts: also stops, kills and restarts. */
interface ControllableNode {
  readonly id: number
  stop(): Promise<void>
  kill(): Promise<void>
  restart(): Promise<void>
}

/** The cluster of scripts/local-cluster.ts (3 nodes), or an error naming what the scenario needs. */
function multiNode(ctx: RunContext): {
  nodes: ReadonlyArray<ControllableNode>
  groupCoordinator(id: string): Promise<number>
  transactionCoordinator(id: string): Promise<number>
} {
  const c = ctx.cluster as unknown as {
    nodes: ReadonlyArray<Partial<ControllableNode>>
    groupCoordinator?: unknown
    transactionCoordinator?: unknown
  }
  if (c.nodes.length < 3 || typeof c.groupCoordinator !== 'function' || c.nodes.some((n) => typeof n.restart !== 'function')) {
    throw new Error('this scenario needs a 3-node cluster from scripts/local-cluster.ts (startLocalCluster)')
  }
  return c as unknown as ReturnType<typeof multiNode>
}

/**
 * (b) The upgrade case: every broker restarted, one at a time (clean stop, 5 s down, restart on
 * its data, 10 s for the replicas to catch up), while input flows.
 */
export const rollingRestart: ScenarioFn = async (ctx) => {
  const cluster = multiNode(ctx)
  await afterInput(ctx, (ctx.options.ratePerSec ?? 400) * 8)
  for (const node of cluster.nodes) {
    ctx.note(`FAULT: stopping broker ${node.id} (rolling restart)`)
    await node.stop()
    await sleep(5000)
    await node.restart()
    ctx.note(`broker ${node.id} back`)
    await sleep(10_000)
  }
  ctx.note('FAULT END: every broker restarted')
  return { faultEnd: Date.now() }
}

/** kill -9 of node `id`, 15 s down, restart on its data. */
async function killAndRestart(ctx: RunContext, node: ControllableNode, role: string): Promise<void> {
  ctx.note(`FAULT: kill -9 of broker ${node.id} (${role})`)
  await node.kill()
  await sleep(15_000)
  await node.restart()
  ctx.note(`broker ${node.id} restarted`)
}

/**
 * (c) kill -9 of the application group's coordinator node, restart; then kill -9 of the node that
 * coordinates the transactions of task 0_0 (`<applicationId>-0_0`), restart.
 */
export const coordinatorKills: ScenarioFn = async (ctx) => {
  const cluster = multiNode(ctx)
  await afterInput(ctx, (ctx.options.ratePerSec ?? 400) * 8)
  const group = await cluster.groupCoordinator(ctx.appId)
  await killAndRestart(ctx, cluster.nodes[group - 1]!, `group coordinator of ${ctx.appId}`)
  await sleep(10_000)
  const txnId = `${ctx.appId}-0_0`
  const txn = await cluster.transactionCoordinator(txnId)
  await killAndRestart(ctx, cluster.nodes[txn - 1]!, `transaction coordinator of ${txnId}`)
  ctx.note('FAULT END: coordinators restarted')
  return { faultEnd: Date.now() }
}

/**
 * (e) One instance (the one started with the namespace's prefix) cut off from the cluster for
 * `ms` (default 2 × the session timeout): its tasks move to the others; when the link returns it
 * is fenced and must rejoin.
 */
export function partitionOne(ns: { name: string; link(up: boolean): Promise<void> }, ms?: number): ScenarioFn {
  return async (ctx) => {
    const cut = ms ?? 2 * (ctx.options.sessionTimeoutMs ?? 6000)
    await afterInput(ctx, (ctx.options.ratePerSec ?? 400) * 10)
    ctx.note(`FAULT: link of network namespace ${ns.name} down for ${cut / 1000} s`)
    await ns.link(false)
    try {
      await sleep(cut)
    } finally {
      await ns.link(true)
    }
    ctx.note(`FAULT END: link of ${ns.name} up`)
    return { faultEnd: Date.now() }
  }
}

/**
 * (f) The state directory's filesystem full: `fill()` takes every free byte of the instance's
 * tmpfs while commits go on, for `ms`; then `free()` gives the space back.
 */
export function diskFull(disk: { fill(): Promise<number>; free(): Promise<void> }, ms = 15_000): ScenarioFn {
  return async (ctx) => {
    await afterInput(ctx, (ctx.options.ratePerSec ?? 400) * 10)
    const bytes = await disk.fill()
    ctx.note(`FAULT: state directory's filesystem full (${bytes} bytes of filler) for ${ms / 1000} s`)
    try {
      await sleep(ms)
    } finally {
      await disk.free()
    }
    ctx.note('FAULT END: filler removed, space free again')
    return { faultEnd: Date.now() }
  }
}
