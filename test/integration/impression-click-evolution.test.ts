/**
 * Schema evolution through the running app: Impression v2 (a new optional field) is read by the
 * v1 app, and the app built with the v2 reader schema reads v1 records (the field takes its
 * default). Both with the registry, in Confluent wire format, under one subject.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry'
import { KafkaStreams, Serdes } from '../../lib/index.js'
import { schemaRegistryAvroSerde, type Serde } from '../../lib/index.js'
import { appSettings, startApp } from '../../examples/impression-click/app.js'
import { topicNames } from '../../examples/impression-click/config.js'
import { registrySerdes } from '../../examples/impression-click/serdes.js'
import { buildTopology } from '../../examples/impression-click/topology.js'
import { ImpressionSchema, type AdEvent, type Impression } from '../../examples/impression-click/schemas/types.js'
import { brokers, connectedProducer, consumeUntil, createTopics, onCleanup, randomTopic, registryUrl } from './helpers.js'

interface ImpressionV2 extends Impression {
  placement: string | null
}
const ImpressionV2Schema = {
  ...ImpressionSchema,
  fields: [...ImpressionSchema.fields, { name: 'placement', type: ['null', 'string'], default: null }],
}

describe('impression-click schema evolution (real broker + registry)', () => {
  it('the v1 app reads v2 impressions and a v2 app reads v1 impressions', async () => {
    const prefix = `${randomTopic('ic-evo')}-`
    const topics = topicNames(prefix)
    const v2AdEvents = `${prefix}ad-events-v2app`
    const dlq = `${prefix}dlq`
    await createTopics(
      ...[topics.impressions, topics.clicks, topics.adEvents, topics.campaignCtr, v2AdEvents].map((topic) => ({ topic, numPartitions: 2 })),
      dlq,
    )
    const stateRoot = mkdtempSync(path.join(os.tmpdir(), 'ic-evo-'))
    onCleanup(async () => rmSync(stateRoot, { recursive: true, force: true }))

    const registry = new SchemaRegistry({ host: registryUrl() })
    const v1 = registrySerdes(registry)
    const v2Impression = schemaRegistryAvroSerde<ImpressionV2>({ registry, schema: ImpressionV2Schema })
    await v1.impression.prepareSerialize!(topics.impressions)
    await v2Impression.prepareSerialize!(topics.impressions) // version 2 of <prefix>impressions-value
    await v1.click.prepareSerialize!(topics.clicks)
    expect(v2Impression.schemaIdFor(topics.impressions)).not.toBe(v1.impression.schemaIdFor(topics.impressions))

    const t = Date.now()
    // idempotent: a plain producer re-sends every partition of a request when one partition of the
    // just-created topics answers with a retriable error, duplicating input (two 'old' AdEvents
    // from one duplicated click)
    const producer = await connectedProducer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.send({
      topic: topics.impressions,
      messages: [
        {
          key: 'old',
          value: v1.impression.serialize(topics.impressions, {
            impressionId: 'old',
            userId: 'u1',
            adId: 'a1',
            campaignId: 'c1',
            impressionTime: t,
          }),
        },
        {
          key: 'new',
          value: v2Impression.serialize(topics.impressions, {
            impressionId: 'new',
            userId: 'u2',
            adId: 'a2',
            campaignId: 'c2',
            impressionTime: t,
            placement: 'top',
          }),
        },
      ],
    })
    await producer.send({
      topic: topics.clicks,
      messages: ['old', 'new'].map((id) => ({
        key: id,
        value: v1.click.serialize(topics.clicks, { clickId: `click-${id}`, impressionId: id, clickTime: t + 1_000 }),
      })),
    })

    // The v1 app (the example as is).
    const env = {
      ...process.env,
      KAFKA_BROKERS: brokers().join(','),
      SCHEMA_REGISTRY_URL: registryUrl(),
      TOPIC_PREFIX: prefix,
      DEAD_LETTER_TOPIC: dlq,
    }
    const v1App = await startApp(appSettings({ ...env, INSTANCE_ID: 'v1', STATE_DIR: path.join(stateRoot, 'v1') }))
    onCleanup(async () => void (await v1App.close()))

    // An app whose impression reader schema is v2.
    const v2Settings = appSettings({ ...env, INSTANCE_ID: 'v2', STATE_DIR: path.join(stateRoot, 'v2'), APPLICATION_ID: `${prefix}v2-app` })
    const v2Topology = buildTopology({
      topics: { ...topics, adEvents: v2AdEvents, campaignCtr: `${prefix}unused-ctr` },
      serdes: { ...registrySerdes(registry), impression: v2Impression as Serde<Impression> },
    })
    const v2App = new KafkaStreams(v2Topology, v2Settings.streams)
    await v2App.start()
    onCleanup(async () => void (await v2App.close()))

    const decode = async (topic: string) => {
      const records = await consumeUntil({ topics: [topic], until: (rs) => rs.length >= 2, timeoutMs: 60_000 })
      await v1.adEvent.prepareDeserialize!(
        topic,
        records.map((r) => r.rawValue),
      )
      return records.map((r) => v1.adEvent.deserialize(topic, r.rawValue)!).sort((a, b) => a.impressionId.localeCompare(b.impressionId))
    }
    const expected = (id: string, user: string, ad: string, campaign: string): AdEvent => ({
      impressionId: id,
      userId: user,
      adId: ad,
      campaignId: campaign,
      impressionTime: t,
      clicked: true,
      clickId: `click-${id}`,
      clickTime: t + 1_000,
    })
    const want = [expected('new', 'u2', 'a2', 'c2'), expected('old', 'u1', 'a1', 'c1')]
    expect(await decode(topics.adEvents)).toEqual(want)
    expect(await decode(v2AdEvents)).toEqual(want)
    // Nothing was dead-lettered.
    await expect(consumeUntil({ topics: [dlq], until: (rs) => rs.length > 0, timeoutMs: 3_000 })).rejects.toThrow(/condition not met/)
    void Serdes
  })
})
