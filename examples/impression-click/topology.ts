/**
 * The impression/click topology.
 *
 * ```
 * impressions ─┐ LEFT JOIN on impressionId, impressionTime <= clickTime <= impressionTime + 15 min
 * clicks ──────┴─► AdEvent (clicked = true per matching click; clicked = false once the window closed)
 *                   ├─► ad-events
 *                   └─► re-key by campaignId ─► repartition ─► 1-minute tumbling windows of
 *                       impressionTime ─► count impressions and clicks ─► suppress until the
 *                       window closes ─► CampaignCtr ─► campaign-ctr
 * ```
 *
 * Event time comes from the Avro fields (TimestampExtractors), not from the Kafka timestamps.
 * The AdEvent is re-stamped with its impressionTime before the re-key, so each CTR window counts
 * the impressions SHOWN in it and how many of those were clicked.
 */
import {
  BufferConfig,
  JoinWindows,
  Serdes,
  StreamsBuilder,
  Suppressed,
  TimeWindows,
  type FixedKeyProcessor,
  type ProcessorContext,
  type StreamRecord,
  type Serde,
  type TimestampExtractor,
  type Topology,
  type Windowed,
} from '../../lib/index.js'
import { avroSerde } from '../../lib/serdes/index.js'
import { DEFAULT_TIMING, HEARTBEAT_PREFIX, isHeartbeat, type ImpressionClickTiming, type ImpressionClickTopics } from './config.js'
import type { ImpressionClickSerdes } from './serdes.js'
import type { AdEvent, CampaignCtr, Click, Impression } from './schemas/types.js'

/** Options of {@link buildTopology}. */
export interface ImpressionClickTopologyOptions {
  topics: ImpressionClickTopics
  /** Value serdes (Schema Registry Avro in production, plain Avro under the TopologyTestDriver). */
  serdes: ImpressionClickSerdes
  /** @defaultValue {@link DEFAULT_TIMING} */
  timing?: Partial<ImpressionClickTiming>
}

/** Event time of an impression: its `impressionTime` field. */
export const impressionTimeExtractor: TimestampExtractor<string, Impression> = {
  extract: (record) => (record.value ? record.value.impressionTime : -1),
}

/** Event time of a click: its `clickTime` field. */
export const clickTimeExtractor: TimestampExtractor<string, Click> = {
  extract: (record) => (record.value ? record.value.clickTime : -1),
}

/** The join's value joiner: the impression with its click, or alone (`click` is null for unmatched impressions). */
export function toAdEvent(impression: Impression, click: Click | null): AdEvent {
  return {
    impressionId: impression.impressionId,
    userId: impression.userId,
    adId: impression.adId,
    campaignId: impression.campaignId,
    impressionTime: impression.impressionTime,
    clicked: click !== null && click !== undefined,
    clickId: click?.clickId ?? null,
    clickTime: click?.clickTime ?? null,
  }
}

/** Running counts of one campaign window (the aggregate's state). */
export interface CtrCounts {
  impressions: number
  clicks: number
}

/** Avro schema of {@link CtrCounts} (state store and changelog). */
export const CtrCountsSchema = {
  type: 'record',
  name: 'CtrCounts',
  namespace: 'io.kstreams.examples.adtech',
  fields: [
    { name: 'impressions', type: 'long' },
    { name: 'clicks', type: 'long' },
  ],
} as const

/** Adds one AdEvent to the counts of its window. */
export function addToCounts(_campaignId: string, event: AdEvent, counts: CtrCounts): CtrCounts {
  return { impressions: counts.impressions + 1, clicks: counts.clicks + (event.clicked ? 1 : 0) }
}

/** The final result of one window. */
export function toCampaignCtr(key: Windowed<string>, counts: CtrCounts): CampaignCtr {
  return {
    campaignId: key.key,
    windowStart: key.window.startMs,
    windowEnd: key.window.endMs,
    impressions: counts.impressions,
    clicks: counts.clicks,
    ctr: counts.impressions === 0 ? 0 : counts.clicks / counts.impressions,
  }
}

/** Re-stamps each AdEvent with its impressionTime (Kafka Streams: `FixedKeyRecord#withTimestamp`). */
function stampWithImpressionTime(): FixedKeyProcessor<string, AdEvent, AdEvent> {
  let context: ProcessorContext<string, AdEvent>
  return {
    init(ctx) {
      context = ctx
    },
    process(record: StreamRecord<string, AdEvent>) {
      return context.forward({ ...record, timestamp: record.value.impressionTime })
    },
  }
}

/**
 * Builds the topology (see the module comment).
 *
 * Processor and store names are fixed (`impression-click-join`, `ctr-by-campaign`, `ctr-counts`,
 * `ctr-final`, ...), so internal topics and stores keep their names when the code changes.
 */
export function buildTopology(options: ImpressionClickTopologyOptions): Topology {
  const { topics, serdes } = options
  const timing: ImpressionClickTiming = { ...DEFAULT_TIMING, ...options.timing }
  const key: Serde<string> = Serdes.String()
  const builder = new StreamsBuilder()

  const impressions = builder.stream<string, Impression>(topics.impressions, {
    keySerde: key,
    valueSerde: serdes.impression,
    timestampExtractor: impressionTimeExtractor,
    name: 'impressions-source',
  })
  const clicks = builder.stream<string, Click>(topics.clicks, {
    keySerde: key,
    valueSerde: serdes.click,
    timestampExtractor: clickTimeExtractor,
    name: 'clicks-source',
  })

  // Clicks from impressionTime up to impressionTime + the join window (15 min by default) match: before(0) closes the window's
  // lower end at the impression, ofTimeDifference the upper end; grace admits late clicks.
  const joinWindows = JoinWindows.ofTimeDifferenceAndGrace(timing.joinWindowMs, timing.joinGraceMs).before(0)
  const adEvents = impressions.leftJoin(
    clicks,
    (impression: Impression, click: Click | null) => toAdEvent(impression, click),
    joinWindows,
    {
      keySerde: key,
      valueSerde: serdes.impression,
      otherValueSerde: serdes.click,
      name: 'impression-click-join',
      storeName: 'impression-click-join',
      // Records later than their window + grace are dropped (Kafka Streams would still join them
      // while the other side retains its records): one AdEvent per impression, too-late ones none.
      lateRecords: 'drop',
    },
  )

  adEvents
    .filterNot((id) => isHeartbeat(id), { name: 'drop-heartbeats' })
    .to(topics.adEvents, { keySerde: key, valueSerde: serdes.adEvent, name: 'ad-events-sink' })

  adEvents
    .processValues(stampWithImpressionTime, { name: 'stamp-impression-time' })
    .selectKey((_id, event) => event.campaignId, { name: 'by-campaign' })
    .groupByKey({ keySerde: key, valueSerde: serdes.adEvent, name: 'ctr-by-campaign' })
    .windowedBy(TimeWindows.ofSizeAndGrace(timing.ctrWindowMs, timing.ctrGraceMs))
    .aggregate(
      (): CtrCounts => ({ impressions: 0, clicks: 0 }),
      addToCounts,
      { storeName: 'ctr-counts', keySerde: key, valueSerde: avroSerde<CtrCounts>(CtrCountsSchema) },
      { name: 'ctr-aggregate' },
    )
    .suppress(Suppressed.untilWindowCloses<string>(BufferConfig.unbounded()).withName('ctr-final'))
    .toStream({ name: 'ctr-final-stream' })
    .filter((w, counts) => counts !== null && !w.key.startsWith(HEARTBEAT_PREFIX), { name: 'drop-heartbeat-campaigns' })
    .map((w, counts) => ({ key: w.key, value: toCampaignCtr(w, counts as CtrCounts) }), { name: 'to-campaign-ctr' })
    .to(topics.campaignCtr, { keySerde: key, valueSerde: serdes.campaignCtr, name: 'campaign-ctr-sink' })

  return builder.build()
}
