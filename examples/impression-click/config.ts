/**
 * Settings shared by the impression/click app, generator, verifier and demo: topic names, the
 * join and CTR windows, and how environment variables map onto them.
 *
 * All durations are milliseconds of EVENT time (the Avro `impressionTime` / `clickTime`).
 */

/** The join bound: a click matches an impression when `impressionTime <= clickTime <= impressionTime + JOIN_WINDOW_MS`. */
export const JOIN_WINDOW_MS = 15 * 60_000

/** Size of the tumbling CTR windows. */
export const CTR_WINDOW_MS = 60_000

/** Topic names of one deployment of the example. */
export interface ImpressionClickTopics {
  /** Input: Impression values keyed by impressionId. */
  impressions: string
  /** Input: Click values keyed by impressionId. */
  clicks: string
  /** Output: AdEvent values keyed by impressionId (one per impression, or one per matching click). */
  adEvents: string
  /** Output: CampaignCtr values keyed by campaignId (one final result per campaign and window). */
  campaignCtr: string
}

/** Topic names with a common prefix: `impressions`, `clicks`, `ad-events`, `campaign-ctr`. */
export function topicNames(prefix = ''): ImpressionClickTopics {
  return {
    impressions: `${prefix}impressions`,
    clicks: `${prefix}clicks`,
    adEvents: `${prefix}ad-events`,
    campaignCtr: `${prefix}campaign-ctr`,
  }
}

/** Timing of the topology (event time, ms). */
export interface ImpressionClickTiming {
  /**
   * The join bound: a click matches an impression when
   * `impressionTime <= clickTime <= impressionTime + joinWindowMs`.
   * @defaultValue {@link JOIN_WINDOW_MS} (15 minutes)
   */
  joinWindowMs: number
  /** Size of the tumbling CTR windows. @defaultValue {@link CTR_WINDOW_MS} (1 minute) */
  ctrWindowMs: number
  /**
   * Join grace: how far behind stream-time a click (or impression) may arrive and still be
   * joined (Kafka Streams drops a click once `clickTime + grace < stream-time`); also delays the
   * `clicked = false` AdEvent by as much. Besides real out-of-order data it must absorb how far a
   * task's two input partitions drift apart while it catches up on a backlog.
   * @defaultValue 300000 (5 minutes)
   */
  joinGraceMs: number
  /**
   * Grace of the CTR windows. A window's impressions only all have their AdEvent once the join
   * window and grace of its last impression have passed, and AdEvents from different join tasks
   * reach a CTR task at different speeds (e.g. while a killed instance's tasks move), so this must
   * exceed `joinWindowMs + joinGraceMs` by the largest such skew.
   * @defaultValue 60 minutes
   */
  ctrGraceMs: number
}

/** The default {@link ImpressionClickTiming}. */
export const DEFAULT_TIMING: ImpressionClickTiming = Object.freeze({
  joinWindowMs: JOIN_WINDOW_MS,
  ctrWindowMs: CTR_WINDOW_MS,
  joinGraceMs: 5 * 60_000,
  ctrGraceMs: 60 * 60_000,
})

/**
 * The timing of the live demo (`npm run demo`), whose event time follows the wall clock and which
 * runs about a minute: 10-second join window with 5 s grace, 5-second CTR windows with 60 s grace.
 * The CTR grace covers the join window and grace (an unclicked impression's AdEvent comes only
 * once they passed, 15 s) plus how long a killed instance's join tasks stall before they run
 * again and catch up (the 10 s session timeout and the rebalance).
 */
export const LIVE_TIMING: ImpressionClickTiming = Object.freeze({
  joinWindowMs: 10_000,
  ctrWindowMs: 5_000,
  joinGraceMs: 5_000,
  ctrGraceMs: 60_000,
})

/**
 * Ids starting with this prefix are heartbeat records of the generator: they only move
 * stream-time forward so the last windows close (stream-time advances only with records) and are
 * ignored by the verifier and the live view.
 */
export const HEARTBEAT_PREFIX = '__heartbeat'

/** True for generator heartbeat ids (impression, click or campaign). */
export function isHeartbeat(id: string): boolean {
  return id.startsWith(HEARTBEAT_PREFIX)
}

/** Reads a positive integer from the environment. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, got ${raw}`)
  return n
}
