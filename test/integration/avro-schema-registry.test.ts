/**
 * schemaRegistryAvroSerde against the real (Apicurio, Confluent-compatible) registry and broker:
 * registration under TopicNameStrategy, wire format on the topic, schema evolution both ways,
 * unknown schema ids.
 */
import { describe, expect, it } from 'vitest'
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry'
import { SerializationError } from '../../topology/errors.js'
import { encodeWireFormat, schemaRegistryAvroSerde } from '../../lib/serdes/index.js'
import { connectedProducer, consumeUntil, createTopics, randomTopic, registryUrl } from './helpers.js'

interface ImpressionV1 {
  impressionId: string
  campaignId: string
  impressionTime: number
}
interface ImpressionV2 extends ImpressionV1 {
  country: string | null
}

const v1 = {
  type: 'record',
  name: 'Impression',
  namespace: 'io.kstreams.test',
  fields: [
    { name: 'impressionId', type: 'string' },
    { name: 'campaignId', type: 'string' },
    { name: 'impressionTime', type: { type: 'long', logicalType: 'timestamp-millis' } },
  ],
}
const v2 = { ...v1, fields: [...v1.fields, { name: 'country', type: ['null', 'string'], default: null }] }

describe('schemaRegistryAvroSerde (real registry)', () => {
  it('registers <topic>-value, writes the wire format and reads it back through Kafka', async () => {
    const topic = randomTopic('avro-sr')
    await createTopics(topic)
    const registry = new SchemaRegistry({ host: registryUrl() })
    const serde = schemaRegistryAvroSerde<ImpressionV1>({ registry: { host: registryUrl() }, schema: v1 })
    await serde.prepareSerialize(topic)
    const id = serde.schemaIdFor(topic)!
    // The registry knows the subject and the id independently of the serde.
    expect(await registry.getLatestSchemaId(`${topic}-value`)).toBe(id)

    const values: ImpressionV1[] = [
      { impressionId: 'i1', campaignId: 'c1', impressionTime: 1_700_000_000_000 },
      { impressionId: 'i2', campaignId: 'c2', impressionTime: 1_700_000_000_500 },
    ]
    const producer = await connectedProducer()
    await producer.send({ topic, messages: values.map((v) => ({ key: v.impressionId, value: serde.serialize(topic, v) })) })

    const records = await consumeUntil({ topics: [topic], until: (rs) => rs.length >= 2 })
    const payloads = records.map((r) => r.rawValue as Buffer)
    expect(payloads.every((p) => p[0] === 0 && p.readInt32BE(1) === id)).toBe(true)
    // The library's own decoder (independent of our serde) understands our bytes.
    expect(await registry.decode(payloads[0]!)).toEqual(values[0])
    // A fresh reader that never registered anything fetches the writer schema by id.
    const reader = schemaRegistryAvroSerde<ImpressionV1>({ registry: { host: registryUrl() }, schema: v1 })
    await reader.prepareDeserialize(topic, payloads)
    expect(payloads.map((p) => reader.deserialize(topic, p))).toEqual(values)
  })

  it('reads v2 records with the v1 reader and v1 records with the v2 reader (schema evolution)', async () => {
    const topic = randomTopic('avro-evolution')
    const v1Serde = schemaRegistryAvroSerde<ImpressionV1>({ registry: { host: registryUrl() }, schema: v1 })
    const v2Serde = schemaRegistryAvroSerde<ImpressionV2>({ registry: { host: registryUrl() }, schema: v2 })
    await v1Serde.prepareSerialize(topic)
    await v2Serde.prepareSerialize(topic) // a new, backward-compatible version of the same subject
    const v1Id = v1Serde.schemaIdFor(topic)!
    const v2Id = v2Serde.schemaIdFor(topic)!
    expect(v2Id).not.toBe(v1Id)

    const oldRecord: ImpressionV1 = { impressionId: 'old', campaignId: 'c1', impressionTime: 1 }
    const newRecord: ImpressionV2 = { impressionId: 'new', campaignId: 'c2', impressionTime: 2, country: 'NL' }
    const oldBytes = v1Serde.serialize(topic, oldRecord)!
    const newBytes = v2Serde.serialize(topic, newRecord)!

    const v1Reader = schemaRegistryAvroSerde<ImpressionV1>({ registry: { host: registryUrl() }, schema: v1 })
    await v1Reader.prepareDeserialize(topic, [oldBytes, newBytes])
    expect(v1Reader.deserialize(topic, oldBytes)).toEqual(oldRecord)
    expect(v1Reader.deserialize(topic, newBytes)).toEqual({ impressionId: 'new', campaignId: 'c2', impressionTime: 2 })

    const v2Reader = schemaRegistryAvroSerde<ImpressionV2>({ registry: { host: registryUrl() }, schema: v2 })
    await v2Reader.prepareDeserialize(topic, [oldBytes, newBytes])
    expect(v2Reader.deserialize(topic, oldBytes)).toEqual({ ...oldRecord, country: null })
    expect(v2Reader.deserialize(topic, newBytes)).toEqual(newRecord)
  })

  it('fails only the records with an unknown schema id', async () => {
    const topic = randomTopic('avro-unknown')
    const serde = schemaRegistryAvroSerde<ImpressionV1>({ registry: { host: registryUrl() }, schema: v1 })
    await serde.prepareSerialize(topic)
    const good = serde.serialize(topic, { impressionId: 'i', campaignId: 'c', impressionTime: 3 })!
    const unknown = encodeWireFormat(2_000_000_000, good.subarray(5))
    const reader = schemaRegistryAvroSerde<ImpressionV1>({ registry: { host: registryUrl() }, schema: v1 })
    await reader.prepareDeserialize(topic, [good, unknown])
    expect(reader.deserialize(topic, good)).toEqual({ impressionId: 'i', campaignId: 'c', impressionTime: 3 })
    expect(() => reader.deserialize(topic, unknown)).toThrow(SerializationError)
    expect(() => reader.deserialize(topic, unknown)).toThrow(
      new RegExp(`unknown schema id 2000000000: the schema registry has no schema with this id \\(topic ${topic}\\)`),
    )
  })

  it('with autoRegister false, finds a registered schema and rejects an unregistered one', async () => {
    const topic = randomTopic('avro-noauto')
    await schemaRegistryAvroSerde({ registry: { host: registryUrl() }, schema: v1 }).prepareSerialize(topic)
    const lookupOnly = schemaRegistryAvroSerde({ registry: { host: registryUrl() }, schema: v1, autoRegister: false })
    await lookupOnly.prepareSerialize(topic)
    expect(lookupOnly.schemaIdFor(topic)).toBeGreaterThan(0)
    const missing = schemaRegistryAvroSerde({ registry: { host: registryUrl() }, schema: v2, autoRegister: false })
    await expect(missing.prepareSerialize(topic)).rejects.toThrow(/is not registered under subject .*-value and autoRegister is false/)
  })
})
