/**
 * The README's "Quickstart: a topology" code, run through the TopologyTestDriver so the README
 * cannot drift from the API: if this file stops compiling or passing, the README is wrong.
 */
import { describe, expect, it } from 'vitest'
import { Consumed, Grouped, JoinWindows, Produced, Serdes, StreamsBuilder, TimeWindows } from '../../lib/index.js'
import { TopologyTestDriver } from '../../lib/testing/index.js'

interface Impression {
  campaignId: string
}
interface Click {
  clickId: string
}

// --- README snippet start ---
function buildTopology() {
  const builder = new StreamsBuilder()
  const impressions = builder.stream('impressions', Consumed.with(Serdes.String(), Serdes.Json<Impression>()))
  const clicks = builder.stream('clicks', Consumed.with(Serdes.String(), Serdes.Json<Click>()))

  impressions
    // an impression and its click (keyed by impressionId) within 15 minutes after it
    .leftJoin(
      clicks,
      (imp, click) => ({ campaignId: imp.campaignId, clicked: click !== null }),
      JoinWindows.ofTimeDifferenceWithNoGrace(15 * 60_000).before(0),
    )
    .selectKey((_impressionId, ev) => ev.campaignId) // re-key: a repartition topic follows
    .groupByKey(Grouped.with(Serdes.String(), Serdes.Json<{ campaignId: string; clicked: boolean }>()))
    .windowedBy(TimeWindows.ofSizeWithNoGrace(60_000)) // 1-minute tumbling windows
    .count()
    .toStream()
    .map((w, n) => [`${w.key}@${new Date(w.window.startMs).toISOString()}`, n])
    .to('impressions-per-minute', Produced.with(Serdes.String(), Serdes.Long()))
  return builder.build()
}
// --- README snippet end ---

describe('README quickstart', () => {
  it('counts impressions per campaign and minute, the unmatched ones once the join window closes', async () => {
    const topology = buildTopology()
    expect(topology.describe().toString()).toContain('Sub-topology: 1')
    const driver = new TopologyTestDriver(topology)
    const imps = driver.createInputTopic('impressions', Serdes.String(), Serdes.Json<Impression>())
    const clicks = driver.createInputTopic('clicks', Serdes.String(), Serdes.Json<Click>())
    const out = driver.createOutputTopic('impressions-per-minute', Serdes.String(), Serdes.Long())

    await imps.pipeInput('i1', { campaignId: 'c1' }, 0)
    await clicks.pipeInput('i1', { clickId: 'k1' }, 30_000) // matched: counted at once
    await imps.pipeInput('i2', { campaignId: 'c1' }, 40_000) // unmatched until 40s + 15 min
    expect(out.readKeyValuesToList()).toEqual([{ key: 'c1@1970-01-01T00:00:00.000Z', value: 1 }])

    await imps.pipeInput('i3', { campaignId: 'c2' }, 40_000 + 15 * 60_000 + 1) // closes i2's join window
    expect(out.readKeyValuesToList()).toEqual([{ key: 'c1@1970-01-01T00:00:00.000Z', value: 2 }])
    await driver.close()
  })
})
