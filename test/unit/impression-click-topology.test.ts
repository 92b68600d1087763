/**
 * The impression/click topology under the TopologyTestDriver (plain Avro serdes, no registry):
 * join timing, duplicate and orphan clicks, when unmatched impressions are emitted, and the final
 * CTR results per campaign window.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { Serdes } from '../../lib/index.js'
import { TopologyTestDriver } from '../../lib/testing/index.js'
import { CTR_WINDOW_MS, HEARTBEAT_PREFIX, JOIN_WINDOW_MS, topicNames } from '../../examples/impression-click/config.js'
import { plainAvroSerdes } from '../../examples/impression-click/serdes.js'
import { buildTopology } from '../../examples/impression-click/topology.js'
import type { AdEvent, CampaignCtr, Click, Impression } from '../../examples/impression-click/schemas/types.js'

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0)
const GRACE = 60_000
const CTR_GRACE = 20 * 60_000
const topics = topicNames()
const serdes = plainAvroSerdes()
const MIN = 60_000

let driver: TopologyTestDriver | undefined
afterEach(async () => {
  await driver?.close()
  driver = undefined
})

function setup() {
  driver = new TopologyTestDriver(buildTopology({ topics, serdes, timing: { joinGraceMs: GRACE, ctrGraceMs: CTR_GRACE } }))
  const impressions = driver.createInputTopic(topics.impressions, Serdes.String(), serdes.impression)
  const clicks = driver.createInputTopic(topics.clicks, Serdes.String(), serdes.click)
  const adEvents = driver.createOutputTopic(topics.adEvents, Serdes.String(), serdes.adEvent)
  const ctr = driver.createOutputTopic(topics.campaignCtr, Serdes.String(), serdes.campaignCtr)
  // The record timestamp (Kafka's) is deliberately wrong: event time must come from the Avro fields.
  const impression = (id: string, time: number, campaignId = 'campaign-1') =>
    impressions.pipeInput(
      id,
      { impressionId: id, userId: `user-${id}`, adId: 'ad-1', campaignId, impressionTime: time } satisfies Impression,
      0,
    )
  const click = (impressionId: string, time: number, clickId = `click-${impressionId}`) =>
    clicks.pipeInput(impressionId, { clickId, impressionId, clickTime: time } satisfies Click, 0)
  /** Moves stream-time of the join to `time` with an unrelated impression (which itself stays pending). */
  const advanceTo = (time: number) => impression(`tick-${time}`, time, 'campaign-tick')
  const realEvents = () => adEvents.readValuesToList().filter((e): e is AdEvent => e !== null && !e.impressionId.startsWith('tick-'))
  return { impression, click, advanceTo, adEvents, realEvents, ctr }
}

describe('impression-click topology: join timing', () => {
  it('matches a click at +0 and emits the AdEvent at once', async () => {
    const t = setup()
    await t.impression('i1', T0)
    await t.click('i1', T0)
    expect(t.adEvents.readKeyValuesToList()).toEqual([
      {
        key: 'i1',
        value: {
          impressionId: 'i1',
          userId: 'user-i1',
          adId: 'ad-1',
          campaignId: 'campaign-1',
          impressionTime: T0,
          clicked: true,
          clickId: 'click-i1',
          clickTime: T0,
        },
      },
    ])
  })

  it('matches a click at exactly +15 min', async () => {
    const t = setup()
    await t.impression('i1', T0)
    await t.click('i1', T0 + JOIN_WINDOW_MS)
    const events = t.realEvents()
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ clicked: true, clickTime: T0 + JOIN_WINDOW_MS })
  })

  it('does not match a click at +15 min + 1 ms: the impression is emitted unclicked later', async () => {
    const t = setup()
    await t.impression('i1', T0)
    await t.click('i1', T0 + JOIN_WINDOW_MS + 1)
    expect(t.realEvents()).toEqual([])
    await t.advanceTo(T0 + JOIN_WINDOW_MS + GRACE + 1)
    expect(t.realEvents()).toEqual([expect.objectContaining({ impressionId: 'i1', clicked: false, clickId: null, clickTime: null })])
  })

  it('does not match a click before the impression, whichever arrives first', async () => {
    const t = setup()
    await t.click('i1', T0 - 1) // click first
    await t.impression('i1', T0)
    await t.impression('i2', T0)
    await t.click('i2', T0 - 1) // click after, but timestamped before the impression
    expect(t.realEvents()).toEqual([])
    await t.advanceTo(T0 + JOIN_WINDOW_MS + GRACE + 1)
    const events = t.realEvents()
    expect(events.map((e) => [e.impressionId, e.clicked]).sort()).toEqual([
      ['i1', false],
      ['i2', false],
    ])
  })

  it('matches an out-of-order click up to the grace period behind stream-time, and drops older ones', async () => {
    const t = setup()
    await t.impression('i1', T0)
    await t.impression('i2', T0)
    await t.advanceTo(T0 + 10 * MIN)
    await t.click('i1', T0 + 10 * MIN - GRACE) // exactly grace behind stream-time: joined
    expect(t.realEvents()).toEqual([expect.objectContaining({ impressionId: 'i1', clicked: true, clickTime: T0 + 10 * MIN - GRACE })])
    // More than grace behind: the click's own window (clickTime + before(0) + grace) has closed,
    // so the join drops it (lateRecords: 'drop'; Kafka Streams' default would still join it).
    await t.click('i2', T0 + 10 * MIN - GRACE - 1)
    expect(t.realEvents()).toEqual([])
    await t.advanceTo(T0 + 2 * JOIN_WINDOW_MS)
    // i1 never gets a clicked=false AdEvent on top; i2 gets exactly that one.
    expect(t.realEvents()).toEqual([expect.objectContaining({ impressionId: 'i2', clicked: false })])
  })

  it('emits one AdEvent per click for duplicate clicks, and no unclicked one', async () => {
    const t = setup()
    await t.impression('i1', T0)
    await t.click('i1', T0 + MIN, 'c-a')
    await t.click('i1', T0 + MIN, 'c-a') // the same click delivered twice
    await t.click('i1', T0 + 2 * MIN, 'c-b')
    expect(t.realEvents().map((e) => [e.clicked, e.clickId])).toEqual([
      [true, 'c-a'],
      [true, 'c-a'],
      [true, 'c-b'],
    ])
    await t.advanceTo(T0 + 3 * JOIN_WINDOW_MS)
    expect(t.realEvents()).toEqual([])
  })

  it('emits nothing for a click without an impression', async () => {
    const t = setup()
    await t.click('ghost', T0)
    await t.advanceTo(T0 + 3 * JOIN_WINDOW_MS)
    await t.advanceTo(T0 + 6 * JOIN_WINDOW_MS)
    expect(t.realEvents()).toEqual([])
  })

  it('emits an unmatched impression only after window + grace, and exactly once', async () => {
    const t = setup()
    await t.impression('i1', T0)
    await t.advanceTo(T0 + JOIN_WINDOW_MS) // window end
    await t.advanceTo(T0 + JOIN_WINDOW_MS + GRACE) // window end + grace: not passed yet
    expect(t.realEvents()).toEqual([])
    await t.advanceTo(T0 + JOIN_WINDOW_MS + GRACE + 1)
    expect(t.realEvents()).toEqual([expect.objectContaining({ impressionId: 'i1', clicked: false })])
    await t.advanceTo(T0 + 4 * JOIN_WINDOW_MS)
    await t.click('i1', T0 + 2 * MIN) // far too late: dropped, no second AdEvent
    await t.advanceTo(T0 + 8 * JOIN_WINDOW_MS)
    expect(t.realEvents()).toEqual([])
  })

  it('keeps heartbeat records out of the ad-events topic', async () => {
    const t = setup()
    await t.impression(`${HEARTBEAT_PREFIX}-1`, T0)
    await t.click(`${HEARTBEAT_PREFIX}-1`, T0)
    expect(t.adEvents.readValuesToList()).toEqual([])
  })
})

describe('impression-click topology: CTR per campaign window', () => {
  it('emits exactly one final result per campaign and 1-minute window of impression time, after the grace', async () => {
    const t = setup()
    // window [T0, T0+1m): campaign-1: 3 impressions, 1 clicked; campaign-2: 1 impression, clicked
    await t.impression('a1', T0 + 1_000, 'campaign-1')
    await t.impression('a2', T0 + 2_000, 'campaign-1')
    await t.impression('a3', T0 + 59_999, 'campaign-1')
    await t.impression('b1', T0 + 30_000, 'campaign-2')
    await t.click('b1', T0 + 31_000)
    await t.click('a2', T0 + 10 * MIN) // clicked 10 min later: counts in the impression's window
    // window [T0+1m, T0+2m): campaign-1: 1 impression, not clicked
    await t.impression('a4', T0 + MIN, 'campaign-1')
    await t.click('a4', T0 + MIN + JOIN_WINDOW_MS + 1) // outside the join window

    // Everything unmatched is emitted once the join window closes; the CTR windows are still open.
    await t.advanceTo(T0 + 2 * MIN + JOIN_WINDOW_MS + GRACE + 1)
    expect(t.ctr.readValuesToList()).toEqual([])

    // A clicked impression far enough ahead moves CTR stream-time past both windows' end + grace.
    const far = T0 + 2 * MIN + CTR_GRACE
    await t.impression('z', far, 'campaign-3')
    await t.click('z', far)
    const results = t.ctr.readKeyValuesToList() as Array<{ key: string; value: CampaignCtr }>
    expect(results.sort((x, y) => x.key.localeCompare(y.key) || x.value.windowStart - y.value.windowStart)).toEqual([
      {
        key: 'campaign-1',
        value: { campaignId: 'campaign-1', windowStart: T0, windowEnd: T0 + CTR_WINDOW_MS, impressions: 3, clicks: 1, ctr: 1 / 3 },
      },
      {
        key: 'campaign-1',
        value: { campaignId: 'campaign-1', windowStart: T0 + MIN, windowEnd: T0 + 2 * MIN, impressions: 1, clicks: 0, ctr: 0 },
      },
      {
        key: 'campaign-2',
        value: { campaignId: 'campaign-2', windowStart: T0, windowEnd: T0 + CTR_WINDOW_MS, impressions: 1, clicks: 1, ctr: 1 },
      },
    ])

    // Nothing is emitted twice, whatever comes later.
    await t.impression('y', far + 10 * CTR_GRACE, 'campaign-3')
    await t.click('y', far + 10 * CTR_GRACE)
    const later = t.ctr.readValuesToList().filter((c) => c!.campaignId !== 'campaign-3' && c!.campaignId !== 'campaign-tick')
    expect(later).toEqual([])
  })

  it('does not emit a window before stream-time passes its end + grace', async () => {
    const t = setup()
    await t.impression('a1', T0, 'campaign-1')
    await t.click('a1', T0)
    const justBefore = T0 + CTR_WINDOW_MS + CTR_GRACE - 1
    await t.impression('z', justBefore, 'campaign-9')
    await t.click('z', justBefore)
    expect(t.ctr.readValuesToList()).toEqual([])
    await t.impression('y', justBefore + 1, 'campaign-9')
    await t.click('y', justBefore + 1)
    expect(t.ctr.readValuesToList()).toEqual([expect.objectContaining({ campaignId: 'campaign-1', impressions: 1, clicks: 1, ctr: 1 })])
  })
})
