import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import avsc from 'avsc'
import { CTR_WINDOW_MS, DEFAULT_TIMING, JOIN_WINDOW_MS, LIVE_TIMING, isHeartbeat } from '../../examples/impression-click/config.js'
import {
  defaultGeneratorOptions,
  heartbeatCampaigns,
  heartbeatTimes,
  heartbeats,
  liveGeneratorOptions,
  parseGeneratorArgs,
  plan,
  replaySpanMs,
  replayStartTime,
  type GeneratorOptions,
} from '../../examples/impression-click/generator.js'
import { verify } from '../../examples/impression-click/verify.js'
import { generateTypes, readSchemas, TYPES_FILE } from '../../examples/impression-click/schemas/generate-types.js'
import { AdEventSchema, CampaignCtrSchema, ClickSchema, ImpressionSchema } from '../../examples/impression-click/schemas/types.js'
import type { AdEvent, CampaignCtr } from '../../examples/impression-click/schemas/types.js'

const options = (over: Partial<GeneratorOptions> = {}): GeneratorOptions => ({
  ...defaultGeneratorOptions(),
  count: 3_000,
  startTime: Date.UTC(2025, 0, 1),
  speedup: 600, // 3000 impressions span 30 minutes of event time
  tooLateShare: 0.03,
  ...over,
})

describe('impression-click schemas and types', () => {
  it('types.ts is generated from the current .avsc files', () => {
    expect(readFileSync(TYPES_FILE, 'utf8')).toBe(generateTypes(readSchemas()))
  })

  it('the generated schema constants are the .avsc files and valid Avro', () => {
    const byName = Object.fromEntries(readSchemas().map((s) => [s.schema.name as string, s.schema]))
    for (const schema of [ImpressionSchema, ClickSchema, AdEventSchema, CampaignCtrSchema]) {
      expect(schema).toEqual(byName[schema.name])
      expect(() => avsc.Type.forSchema(schema as unknown as avsc.Schema)).not.toThrow()
    }
  })

  it('values typed with the generated interfaces are valid for the schemas (and nullable fields are unions)', () => {
    const adEvent: AdEvent = {
      impressionId: 'i',
      userId: 'u',
      adId: 'a',
      campaignId: 'c',
      impressionTime: 1,
      clicked: false,
      clickId: null,
      clickTime: null,
    }
    const ctr: CampaignCtr = { campaignId: 'c', windowStart: 0, windowEnd: 60_000, impressions: 4, clicks: 1, ctr: 0.25 }
    expect(avsc.Type.forSchema(AdEventSchema as unknown as avsc.Schema).isValid(adEvent)).toBe(true)
    expect(
      avsc.Type.forSchema(AdEventSchema as unknown as avsc.Schema).isValid({ ...adEvent, clicked: true, clickId: 'k', clickTime: 5 }),
    ).toBe(true)
    expect(avsc.Type.forSchema(CampaignCtrSchema as unknown as avsc.Schema).isValid(ctr)).toBe(true)
  })

  it('the --check mode of the generator script passes', () => {
    expect(() =>
      execFileSync(process.execPath, ['--import', 'tsx', 'examples/impression-click/schemas/generate-types.ts', '--check']),
    ).not.toThrow()
  })
})

describe('impression-click generator plan', () => {
  it('is deterministic for a seed', () => {
    expect(plan(options()).truth).toEqual(plan(options()).truth)
    expect(plan(options({ seed: 7 })).truth.expectedClicked).not.toEqual(plan(options()).truth.expectedClicked)
  })

  it('computes the truth from the planned records (recomputed independently here)', () => {
    const { records, truth } = plan(options())
    const impressions = new Map<string, { campaignId: string; time: number; sendAt: number }>()
    const clicks = new Map<string, { clickId: string; time: number }>()
    for (const r of records) {
      if (r.kind === 'impression')
        impressions.set(r.key, { campaignId: r.value.campaignId, time: r.value.impressionTime, sendAt: r.sendAt })
      else clicks.set(r.key, { clickId: r.value.clickId, time: r.value.clickTime })
    }
    expect(impressions.size).toBe(3_000)
    const late = new Set(
      [...impressions].filter(([, i]) => i.sendAt - i.time > JOIN_WINDOW_MS + DEFAULT_TIMING.joinGraceMs).map(([id]) => id),
    )
    expect(new Set(truth.tooLateIds)).toEqual(late)
    expect(late.size).toBeGreaterThan(5)
    const windows = new Map<string, { impressions: number; clicks: number }>()
    const clicked: Record<string, string> = {}
    for (const [id, imp] of impressions) {
      if (late.has(id)) continue
      const c = clicks.get(id)
      const match = c !== undefined && c.time >= imp.time && c.time <= imp.time + JOIN_WINDOW_MS
      if (match) clicked[id] = c.clickId
      const key = `${imp.campaignId}@${imp.time - (imp.time % CTR_WINDOW_MS)}`
      const w = windows.get(key) ?? { impressions: 0, clicks: 0 }
      w.impressions++
      if (match) w.clicks++
      windows.set(key, w)
    }
    expect(truth.expectedClicked).toEqual(clicked)
    expect(truth.expectedNotClicked).toBe(3_000 - late.size - Object.keys(clicked).length)
    expect(
      Object.fromEntries(truth.windows.map((w) => [`${w.campaignId}@${w.windowStart}`, { impressions: w.impressions, clicks: w.clicks }])),
    ).toEqual(Object.fromEntries(windows))
    // every kind of click the join must get right is present
    const delays = [...clicks].filter(([id]) => impressions.has(id)).map(([id, c]) => c.time - impressions.get(id)!.time)
    expect(delays.some((d) => d < 0)).toBe(true)
    expect(delays.some((d) => d > JOIN_WINDOW_MS)).toBe(true)
    expect([...clicks.keys()].some((id) => !impressions.has(id))).toBe(true)
  })

  it('live plan (the demo): short windows, nothing sent before its event time, lateness within grace except the too-late impressions', () => {
    const o: GeneratorOptions = { ...liveGeneratorOptions(), count: 18_000, startTime: Date.UTC(2026, 0, 1), tooLateShare: 0.01 }
    expect(o.timing).toEqual(LIVE_TIMING)
    const { records, truth } = plan(o)
    const { joinWindowMs, joinGraceMs, ctrWindowMs } = LIVE_TIMING
    const tooLate = new Set(truth.tooLateIds)
    expect(tooLate.size).toBeGreaterThan(5)
    const impressions = new Map<string, { campaignId: string; time: number }>()
    const clicks = new Map<string, { clickId: string; time: number }>()
    for (const r of records) {
      const time = r.kind === 'impression' ? r.value.impressionTime : r.value.clickTime
      // event time at or before the wall-clock moment of sending: never stamped in the future
      expect(r.sendAt).toBeGreaterThanOrEqual(time)
      if (r.kind === 'impression' && tooLate.has(r.key)) expect(r.sendAt - time).toBeGreaterThan(joinWindowMs + joinGraceMs)
      // every other record trails the wall clock by less than the join grace (and the demo's idle advance delay, 3 s)
      else expect(r.sendAt - time).toBeLessThan(Math.min(joinGraceMs, 3_000))
      if (r.kind === 'impression') impressions.set(r.key, { campaignId: r.value.campaignId, time })
      else clicks.set(r.key, { clickId: r.value.clickId, time })
    }
    // the truth's windows are the live CTR windows of the on-time impressions
    const windows = new Map<string, { impressions: number; clicks: number }>()
    for (const [id, imp] of impressions) {
      if (tooLate.has(id)) continue
      const c = clicks.get(id)
      const match = c !== undefined && c.time >= imp.time && c.time <= imp.time + joinWindowMs
      const key = `${imp.campaignId}@${imp.time - (imp.time % ctrWindowMs)}`
      const w = windows.get(key) ?? { impressions: 0, clicks: 0 }
      w.impressions++
      if (match) w.clicks++
      windows.set(key, w)
    }
    expect(
      Object.fromEntries(truth.windows.map((w) => [`${w.campaignId}@${w.windowStart}`, { impressions: w.impressions, clicks: w.clicks }])),
    ).toEqual(Object.fromEntries(windows))
    expect(truth.windows.every((w) => w.windowEnd - w.windowStart === ctrWindowMs)).toBe(true)
    // clicks inside, after and before the join window all occur
    const delays = [...clicks].filter(([id]) => impressions.has(id)).map(([id, c]) => c.time - impressions.get(id)!.time)
    expect(delays.some((d) => d < 0)).toBe(true)
    expect(delays.some((d) => d > joinWindowMs)).toBe(true)
    expect(delays.some((d) => d >= 0 && d <= joinWindowMs)).toBe(true)
    // the CLI's --live: no heartbeats, the live options
    const args = parseGeneratorArgs(['--live', '--count', '100'])
    expect(args.heartbeats).toBe(false)
    expect(args.options).toMatchObject({ live: true, speedup: 1, count: 100, timing: LIVE_TIMING })
  })

  it('sends records in send-time order with bounded out-of-order delays', () => {
    const { records } = plan(options({ tooLateShare: 0 }))
    for (let i = 1; i < records.length; i++) expect(records[i]!.sendAt).toBeGreaterThanOrEqual(records[i - 1]!.sendAt)
    const delays = records.map((r) => r.sendAt - (r.kind === 'impression' ? r.value.impressionTime : r.value.clickTime))
    expect(Math.max(...delays)).toBeLessThan(20_000)
    expect(delays.filter((d) => d > 0).length).toBeGreaterThan(0)
  })

  it('heartbeats reach every CTR partition and close every window', () => {
    const campaigns = heartbeatCampaigns(4)
    expect(campaigns).toHaveLength(4)
    expect(campaigns.every(isHeartbeat)).toBe(true)
    const hb = heartbeats(1_000_000, 4, 4, DEFAULT_TIMING)
    expect(hb.waves[0]).toHaveLength(16)
    expect(new Set(hb.waves[0]!.map((h) => h.partition))).toEqual(new Set([0, 1, 2, 3]))
    const [t1, t2] = hb.times as [number, number]
    expect(t1).toBeGreaterThan(1_000_000 + JOIN_WINDOW_MS + DEFAULT_TIMING.joinGraceMs + DEFAULT_TIMING.ctrGraceMs + CTR_WINDOW_MS)
    expect(t2).toBeGreaterThan(t1 + JOIN_WINDOW_MS + DEFAULT_TIMING.joinGraceMs)
  })
})

describe('impression-click generator replay (event time at or behind the wall clock)', () => {
  const now = Date.UTC(2026, 11, 4, 15, 47, 12, 345)
  const lastStamp = (o: GeneratorOptions) => {
    const { records } = plan(o)
    const lastEvent = Math.max(...records.map((r) => (r.kind === 'impression' ? r.value.impressionTime : r.value.clickTime)))
    return { records, lastEvent, lastHeartbeat: heartbeatTimes(lastEvent, o.timing)[1] }
  }

  it('ends every record and heartbeat at or before now, within a minute plus the replay slack of it', () => {
    for (const over of [{}, { count: 20_000, rate: 300, speedup: 60 }, { count: 500, rate: 50, speedup: 1 }]) {
      const base = options(over)
      const o = { ...base, startTime: replayStartTime(base, now) }
      expect(o.startTime % 60_000).toBe(0)
      const { records, lastHeartbeat } = lastStamp(o)
      expect(records.every((r) => (r.kind === 'impression' ? r.value.impressionTime : r.value.clickTime) <= now)).toBe(true)
      expect(lastHeartbeat).toBeLessThanOrEqual(now)
      expect(o.startTime + replaySpanMs(o)).toBeLessThanOrEqual(now)
      // replaySpanMs is an upper bound, not a loose one: the last click lands at most 5 min + 1 ms after its window
      expect(now - lastHeartbeat).toBeLessThan(60_000 + 5 * 60_000)
    }
  })

  it('replays the past: the span of 20000 impressions at 300/s and 60x covers the events and both heartbeat waves', () => {
    const o = options({ count: 20_000, rate: 300, speedup: 60 })
    const spacing = (1000 * o.speedup) / o.rate
    const [, t2] = heartbeatTimes((o.count - 1) * spacing + JOIN_WINDOW_MS + 5 * 60_000, o.timing)
    expect(replaySpanMs(o)).toBe(Math.ceil(t2))
    // ~67 minutes of impressions, their clicks, and the heartbeats closing the join and CTR windows
    expect(replaySpanMs(o) / 60_000).toBeGreaterThan(67 + 15 + 82 + 21)
    expect(replaySpanMs(o) / 60_000).toBeLessThan(67 + 20 + 82 + 21 + 1)
  })

  it('keeps the windows and truth of a plan: only the time origin moves', () => {
    const a = plan(options({ startTime: Date.UTC(2025, 0, 1) }))
    const shift = 7 * 24 * 3_600_000 + 60_000
    const b = plan(options({ startTime: Date.UTC(2025, 0, 1) + shift }))
    expect(b.truth.expectedClicked).toEqual(a.truth.expectedClicked)
    expect(b.truth.tooLateIds).toEqual(a.truth.tooLateIds)
    expect(b.truth.windows).toEqual(
      a.truth.windows.map((w) => ({ ...w, windowStart: w.windowStart + shift, windowEnd: w.windowEnd + shift })),
    )
  })

  it('defaults and CLI flags start the replay so that it ends before now; --start-time is kept as given', () => {
    const before = Date.now()
    const d = defaultGeneratorOptions()
    expect(d.startTime + replaySpanMs(d)).toBeLessThanOrEqual(before + 1)
    const cli = parseGeneratorArgs(['--count', '20000', '--rate', '300', '--speedup', '60']).options
    expect(cli.startTime + replaySpanMs(cli)).toBeLessThanOrEqual(Date.now())
    expect(cli.startTime + replaySpanMs(cli)).toBeGreaterThan(before - 120_000)
    expect(parseGeneratorArgs(['--start-time', '1735689600000']).options.startTime).toBe(1_735_689_600_000)
  })
})

describe('impression-click verify', () => {
  const { truth } = plan(options({ count: 500 }))
  const exactOutputs = () => {
    const adEvents: AdEvent[] = []
    const late = new Set(truth.tooLateIds)
    for (let i = 0; i < truth.impressions; i++) {
      const id = `imp-${String(i).padStart(8, '0')}`
      if (late.has(id)) continue
      const clickId = truth.expectedClicked[id] ?? null
      adEvents.push({
        impressionId: id,
        userId: 'u',
        adId: 'a',
        campaignId: 'c',
        impressionTime: 0,
        clicked: clickId !== null,
        clickId,
        clickTime: clickId ? 1 : null,
      })
    }
    const ctr: CampaignCtr[] = truth.windows.map((w) => ({ ...w, ctr: w.clicks / w.impressions }))
    return { adEvents, ctr, undecodable: 0 }
  }

  it('accepts the exact output', () => {
    const r = verify(truth, exactOutputs())
    expect(r.problems).toEqual([])
    expect(r.exact).toBe(true)
  })

  it('reports duplicates, missing, wrong and unexpected records', () => {
    const o = exactOutputs()
    o.adEvents.push({ ...o.adEvents[0]! })
    const dup = verify(truth, o)
    expect(dup.exact).toBe(false)
    expect(dup.duplicates.adEvents).toBe(1)

    const o2 = exactOutputs()
    const removed = o2.adEvents.pop()!
    o2.ctr[0] = { ...o2.ctr[0]!, clicks: o2.ctr[0]!.clicks + 1 }
    const r2 = verify(truth, o2)
    expect(r2.missing.adEvents).toBe(1)
    expect(r2.problems.join('\n')).toContain(`missing AdEvent for ${removed.impressionId}`)
    expect(r2.wrong.ctr).toBe(1)

    const o3 = exactOutputs()
    o3.adEvents.push({ ...o3.adEvents[0]!, impressionId: truth.tooLateIds[0]! })
    o3.ctr.push({ ...o3.ctr[0]!, campaignId: 'nope' })
    const r3 = verify(truth, o3)
    expect(r3.unexpected).toEqual({ adEvents: 1, ctr: 1 })
  })
})
