/**
 * The fault scenarios, one function each (see test/chaos/scenario.ts for what surrounds them).
 * Each returns when its last fault has ended, with that time.
 */
import { sleep } from './clock.js'
import type { RunContext, ScenarioFn } from './scenario.js'

/** Freezes every node of the cluster (SIGSTOP) for `ms`, then resumes them. Returns the resume time. */
export async function freezeCluster(ctx: RunContext, ms: number): Promise<number> {
  ctx.note(`FAULT: freezing ${ctx.cluster.nodes.length} broker(s) (SIGSTOP pid ${ctx.cluster.nodes.map((n) => n.pid()).join(',')}) for ${ms / 1000} s`)
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

/** (a) The whole cluster frozen (SIGSTOP every node) for `seconds`, after 10 s of input. */
export function clusterFreeze(seconds: number): ScenarioFn {
  return async (ctx) => {
    await afterInput(ctx, (ctx.options.ratePerSec ?? 400) * 10)
    return { faultEnd: await freezeCluster(ctx, seconds * 1000) }
  }
}
