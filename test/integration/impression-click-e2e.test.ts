/**
 * The impression/click example end to end at small scale against the real broker and registry:
 * two app instances (exactly-once), the generator, and the verifier's exact check; bad payloads
 * on both input topics go to the dead-letter topic and nothing else is lost. Each instance serves
 * kstreams' HTTP server: both are ready, and a campaign's CTR counts read through either instance
 * are the owner's (answered by one, forwarded by the other).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { encodeWireFormat } from '../../lib/serdes/index.js'
import { appSettings, CTR_STORE, startService } from '../../examples/impression-click/app.js'
import { topicNames } from '../../examples/impression-click/config.js'
import { CTR_WINDOW_MS } from '../../examples/impression-click/config.js'
import { defaultGeneratorOptions, heartbeatCampaigns, replayStartTime, runGenerator } from '../../examples/impression-click/generator.js'
import { registrySerdes } from '../../examples/impression-click/serdes.js'
import { formatReport, readOutputs, verify } from '../../examples/impression-click/verify.js'
import { brokers, connectedProducer, consumeUntil, createTopics, onCleanup, randomTopic, registryUrl } from './helpers.js'

describe('impression-click example (real broker + registry)', () => {
  // Bad payloads' broker timestamps: just before the replayed interval, or the wall clock (later
  // than every good record's event time). A task chooses its next record by the extracted timestamp
  // and takes an undeserializable head first, so neither holds a partition back and moves the other
  // input ahead (which would drop its records as too late).
  it.each([
    { stamp: 'before the replayed interval', badTimestamp: (startTime: number) => startTime - 60_000 },
    { stamp: 'at the wall clock', badTimestamp: () => Date.now() },
  ])('produces the exact AdEvents and final CTR windows, and dead-letters every bad payload (stamped $stamp)', async (c) => {
    const prefix = `${randomTopic('ic')}-`
    const topics = topicNames(prefix)
    const dlq = `${prefix}dlq`
    await createTopics(
      ...[topics.impressions, topics.clicks, topics.adEvents, topics.campaignCtr].map((topic) => ({ topic, numPartitions: 4 })),
      dlq,
    )
    const stateRoot = mkdtempSync(path.join(os.tmpdir(), 'ic-e2e-'))
    onCleanup(async () => rmSync(stateRoot, { recursive: true, force: true }))

    // A past interval replayed 600x faster than real time, ending (heartbeats included) before now.
    const replay = { ...defaultGeneratorOptions(), count: 3_000, rate: 1_000, speedup: 600, campaigns: 4, seed: 7, tooLateShare: 0.05 }
    const options = { ...replay, startTime: replayStartTime(replay) }

    // Bad payloads, written before any good record (they must not move stream-time either).
    const badTimestamp = String(c.badTimestamp(options.startTime))
    const serdes = registrySerdes({ host: registryUrl() })
    await serdes.impression.prepareSerialize!(topics.impressions)
    const good = serdes.impression.serialize(topics.impressions, {
      impressionId: 'bad-base',
      userId: 'u',
      adId: 'a',
      campaignId: 'campaign-01',
      impressionTime: options.startTime - 60_000,
    })!
    const wrongMagic = Buffer.from(good)
    wrongMagic[0] = 1
    const bad: Array<{ topic: string; key: string; value: Buffer }> = [
      { topic: topics.impressions, key: 'bad-magic', value: wrongMagic },
      { topic: topics.impressions, key: 'bad-unknown-id', value: encodeWireFormat(1_999_999_999, good.subarray(5)) },
      { topic: topics.impressions, key: 'bad-truncated', value: good.subarray(0, good.length - 4) },
      { topic: topics.clicks, key: 'bad-json', value: Buffer.from('{"clickId":"c","impressionId":"i"}') },
      { topic: topics.clicks, key: 'bad-short', value: Buffer.from([0, 0]) },
    ]
    // idempotent: a plain producer's retry (e.g. a partition error on the just-created topic) wrote
    // some bad payloads twice, at two source offsets, and each copy was rightly dead-lettered
    const producer = await connectedProducer({ idempotent: true, maxInFlightRequests: 1 })
    const stamped = (topic: string) => bad.filter((b) => b.topic === topic).map((b) => ({ ...b, timestamp: badTimestamp }))
    await producer.send({ topic: topics.impressions, messages: stamped(topics.impressions) })
    await producer.send({ topic: topics.clicks, messages: stamped(topics.clicks) })

    const env = {
      ...process.env,
      KAFKA_BROKERS: brokers().join(','),
      SCHEMA_REGISTRY_URL: registryUrl(),
      TOPIC_PREFIX: prefix,
      DEAD_LETTER_TOPIC: dlq,
      COMMIT_INTERVAL_MS: '100',
      HTTP_PORT: '0',
    }
    const settings = [1, 2].map((i) => appSettings({ ...env, INSTANCE_ID: String(i), STATE_DIR: path.join(stateRoot, String(i)) }))
    const services = await Promise.all(settings.map((s) => startService(s)))
    const apps = services.map((s) => s.streams)
    onCleanup(async () => {
      await Promise.all(apps.map((a) => a.close()))
    })
    const urls = services.map((s) => {
      const { host, port } = s.server!.address()
      return `http://${host}:${port}`
    })

    const truth = await runGenerator(options, {
      brokers: brokers(),
      registryUrl: registryUrl(),
      topics,
      waitForGroup: settings[0]!.streams.applicationId,
    })
    // Every kind of input is exercised.
    expect(truth.tooLate).toBeGreaterThan(0)
    expect(Object.keys(truth.expectedClicked).length).toBeGreaterThan(100)
    expect(truth.expectedNotClicked).toBeGreaterThan(100)

    const outputs = await readOutputs({
      brokers: brokers(),
      registryUrl: registryUrl(),
      topics,
      expectedAdEvents: truth.impressions - truth.tooLate,
      expectedCtr: truth.windows.length,
      settleMs: 1_000,
      timeoutMs: 90_000,
    })
    const report = verify(truth, outputs)
    expect(report.exact, formatReport(report)).toBe(true)
    expect(report.problems).toEqual([])
    expect(report.exact).toBe(true)
    expect(report.actual.clicked).toBe(Object.keys(truth.expectedClicked).length)

    // kstreams/http on both instances: ready, and the CTR store answers for any campaign on either.
    for (const url of urls) {
      const ready = await fetch(`${url}/health/ready`)
      expect(ready.status, `${url}/health/ready`).toBe(200)
      expect(((await ready.json()) as { state: string }).state).toBe('RUNNING')
    }
    // The heartbeat campaigns (one per CTR partition, so both instances own some) end with one
    // window at the first heartbeat wave's time: one clicked = false AdEvent per input partition.
    const t1 = truth.heartbeatTimes![0]!
    const expected = [
      { start: t1 - (t1 % CTR_WINDOW_MS), end: t1 - (t1 % CTR_WINDOW_MS) + CTR_WINDOW_MS, value: { impressions: 4, clicks: 0 } },
    ]
    for (const campaign of heartbeatCampaigns(4)) {
      const servedBy: Array<string | null> = []
      for (const url of urls) {
        const route = `${url}/stores/${CTR_STORE}/keys/${encodeURIComponent(campaign)}/windows`
        // the wave's last AdEvents may still be on their way to the CTR task: poll until counted
        let last = ''
        const deadline = Date.now() + 30_000
        for (;;) {
          const r = await fetch(route)
          const body = await r.text()
          last = `${r.status} ${body}`
          if (r.status === 200 && JSON.stringify((JSON.parse(body) as { windows: unknown }).windows) === JSON.stringify(expected)) {
            servedBy.push(r.headers.get('x-kstreams-served-by'))
            break
          }
          expect(Date.now() < deadline, `${route}: last answer ${last}`).toBe(true)
          await new Promise((res) => setTimeout(res, 250))
        }
      }
      // one instance owns the campaign and answers itself; the other forwards to it
      expect(
        servedBy.filter((h) => h === null),
        `${campaign}: served by ${JSON.stringify(servedBy)}`,
      ).toHaveLength(1)
      expect(
        servedBy.filter((h) => h !== null),
        `${campaign}: served by ${JSON.stringify(servedBy)}`,
      ).toHaveLength(1)
    }

    // Each bad payload is on the dead-letter topic once, bytes unchanged, with where it came from.
    const allKeys = (rs: Array<{ key: string | null }>) => bad.every((b) => rs.some((r) => r.key === b.key))
    const dead = await consumeUntil({ topics: [dlq], until: allKeys, timeoutMs: 30_000 })
    await new Promise((r) => setTimeout(r, 1_000))
    const listing = (await consumeUntil({ topics: [dlq], until: (rs) => rs.length >= dead.length, timeoutMs: 10_000 })).map(
      (r) =>
        `${r.key} at ${r.partition}@${r.offset} from ${String(r.headers?.['__kstreams.error.topic'])}[${String(r.headers?.['__kstreams.error.partition'])}]@${String(r.headers?.['__kstreams.error.offset'])} task ${String(r.headers?.['__kstreams.error.task'])}`,
    )
    expect(dead.map((d) => d.key).sort(), `dead-letter topic:\n${listing.join('\n')}`).toEqual(bad.map((b) => b.key).sort())
    // no input record dead-lettered twice (the app's guarantee, whatever the input holds)
    const sources = dead.map(
      (r) =>
        `${String(r.headers?.['__kstreams.error.topic'])}[${String(r.headers?.['__kstreams.error.partition'])}]@${String(r.headers?.['__kstreams.error.offset'])}`,
    )
    expect(new Set(sources).size).toBe(sources.length)
    for (const b of bad) {
      const d = dead.find((r) => r.key === b.key)
      expect(d, b.key).toBeDefined()
      expect(d!.rawValue!.equals(b.value)).toBe(true)
      expect(String(d!.headers?.['__kstreams.error.topic'])).toBe(b.topic)
      expect(String(d!.headers?.['__kstreams.error.message'])).toMatch(/wire format|schema id|decode/)
    }
  })
})
