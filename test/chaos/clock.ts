/** Time helpers of the fault harness: sleeping, polling with a deadline, and log timestamps. */

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** `HH:MM:SS.mmm` (UTC) of `t` (ms since the epoch): the prefix of every captured log line. */
export function stamp(t = Date.now()): string {
  return new Date(t).toISOString().slice(11, 23)
}

/**
 * Polls `cond` every `intervalMs` until it returns true.
 * @throws Error naming `what` (and `detail()` when given) after `timeoutMs`.
 */
export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  detail?: () => string | Promise<string>,
  intervalMs = 250,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await cond()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail ? `: ${await detail()}` : ''}`)
    await sleep(intervalMs)
  }
}
