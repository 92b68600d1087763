/**
 * The foundation every other integration test stands on: the broker from the global setup
 * serves produce/consume with read_committed, commits and aborts kafkajs transactions, and the
 * schema registry speaks the Confluent API that @kafkajs/confluent-schema-registry uses.
 */
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry'
import { describe, expect, inject, it } from 'vitest'
import { brokers, connectedProducer, consumeUntil, createTopics, randomTopic, registryUrl } from './helpers.js'

describe('global setup', () => {
  it('provides the broker and registry addresses through inject() and process.env', () => {
    expect(inject('kafkaBrokers')).toMatch(/^[^,\s]+:\d+(,[^,\s]+:\d+)*$/)
    expect(inject('schemaRegistryUrl')).toMatch(/^https?:\/\//)
    expect(process.env.KAFKA_BROKERS).toBe(inject('kafkaBrokers'))
    expect(process.env.SCHEMA_REGISTRY_URL).toBe(inject('schemaRegistryUrl'))
    expect(brokers().length).toBeGreaterThan(0)
  })
})

describe('kafkajs against the broker', () => {
  it('produces and consumes keyed records in order with read_committed', async () => {
    const [topic] = await createTopics(randomTopic('produce-consume'))
    const producer = await connectedProducer()
    await producer.send({
      topic: topic!,
      messages: [
        { key: 'k1', value: 'one' },
        { key: 'k2', value: 'two' },
        { key: 'k1', value: 'three', headers: { origin: 'test' } },
      ],
    })

    const records = await consumeUntil({ topics: [topic!], readCommitted: true, until: (r) => r.length >= 3 })

    expect(records.map((r) => [r.offset, r.key, r.value])).toEqual([
      ['0', 'k1', 'one'],
      ['1', 'k2', 'two'],
      ['2', 'k1', 'three'],
    ])
    expect(records[2]!.headers?.origin?.toString()).toBe('test')
  })

  it('hides an open transaction from read_committed and shows it once committed', async () => {
    const [topic] = await createTopics(randomTopic('txn-commit'))
    const producer = await connectedProducer({
      transactionalId: randomTopic('txn'),
      idempotent: true,
      maxInFlightRequests: 1,
    })

    const transaction = await producer.transaction()
    await transaction.send({
      topic: topic!,
      messages: [
        { key: 'a', value: 'in-txn-1' },
        { key: 'b', value: 'in-txn-2' },
      ],
    })

    // While open: written (read_uncommitted sees it) but not visible to read_committed.
    const uncommitted = await consumeUntil({ topics: [topic!], readCommitted: false, until: (r) => r.length >= 2 })
    expect(uncommitted.map((r) => r.value)).toEqual(['in-txn-1', 'in-txn-2'])
    await expect(consumeUntil({ topics: [topic!], readCommitted: true, until: (r) => r.length > 0, timeoutMs: 3_000 })).rejects.toThrow(
      /condition not met after 3000 ms; read 0 record/,
    )

    await transaction.commit()

    const committed = await consumeUntil({ topics: [topic!], readCommitted: true, until: (r) => r.length >= 2 })
    expect(committed.map((r) => [r.key, r.value])).toEqual([
      ['a', 'in-txn-1'],
      ['b', 'in-txn-2'],
    ])
  })

  it('never shows an aborted transaction to read_committed', async () => {
    const [topic] = await createTopics(randomTopic('txn-abort'))
    const producer = await connectedProducer({
      transactionalId: randomTopic('txn'),
      idempotent: true,
      maxInFlightRequests: 1,
    })

    const aborted = await producer.transaction()
    await aborted.send({ topic: topic!, messages: [{ value: 'aborted-1' }, { value: 'aborted-2' }] })
    await aborted.abort()

    const committed = await producer.transaction()
    await committed.send({ topic: topic!, messages: [{ value: 'committed-after' }] })
    await committed.commit()

    // read_committed stops at the committed record having skipped the aborted ones...
    const visible = await consumeUntil({
      topics: [topic!],
      readCommitted: true,
      until: (r) => r.some((x) => x.value === 'committed-after'),
    })
    expect(visible.map((r) => r.value)).toEqual(['committed-after'])
    // ...which were really written: read_uncommitted sees all three (offsets 0,1 then 3: the
    // abort marker takes offset 2).
    const everything = await consumeUntil({
      topics: [topic!],
      readCommitted: false,
      until: (r) => r.some((x) => x.value === 'committed-after'),
    })
    expect(everything.map((r) => [r.offset, r.value])).toEqual([
      ['0', 'aborted-1'],
      ['1', 'aborted-2'],
      ['3', 'committed-after'],
    ])
  })
})

describe('schema registry (Confluent API)', () => {
  const impressionSchema = {
    type: 'record',
    name: 'Impression',
    namespace: 'kstreams.test',
    fields: [
      { name: 'impressionId', type: 'string' },
      { name: 'userId', type: 'string' },
      { name: 'ts', type: 'long' },
      { name: 'campaign', type: ['null', 'string'], default: null },
    ],
  }

  it('registers an Avro schema and round-trips a record through Kafka in Confluent wire format', async () => {
    const registry = new SchemaRegistry({ host: registryUrl() })
    const [topic] = await createTopics(randomTopic('avro'))
    const { id } = await registry.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(impressionSchema) },
      { subject: `${topic}-value` },
    )
    expect(id).toBeGreaterThan(0)
    // Registering the same schema again under the same subject returns the same id.
    const again = await registry.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(impressionSchema) },
      { subject: `${topic}-value` },
    )
    expect(again.id).toBe(id)
    expect(await registry.getLatestSchemaId(`${topic}-value`)).toBe(id)

    const impression = { impressionId: 'imp-1', userId: 'u-7', ts: 1_700_000_000_000, campaign: 'spring' }
    const encoded = await registry.encode(id, impression)
    expect(encoded.readUInt8(0)).toBe(0) // magic byte
    expect(encoded.readInt32BE(1)).toBe(id) // schema id, big-endian

    const producer = await connectedProducer()
    await producer.send({ topic: topic!, messages: [{ key: 'u-7', value: encoded }] })
    const [record] = await consumeUntil({ topics: [topic!], until: (r) => r.length >= 1 })

    expect(Buffer.compare(record!.rawValue!, encoded)).toBe(0)
    expect(await registry.decode(record!.rawValue!)).toEqual(impression)
  })

  it('fails with a clear error when decoding a record whose schema id the registry does not know', async () => {
    const registry = new SchemaRegistry({ host: registryUrl() })
    const unknownId = 2_000_000_000 + Math.floor(Math.random() * 100_000_000)
    const forged = Buffer.alloc(5 + 4)
    forged.writeUInt8(0, 0)
    forged.writeInt32BE(unknownId, 1)

    const failure = await registry.decode(forged).then(
      () => undefined,
      (err: unknown) => err as Error & { status?: number },
    )

    expect(failure).toBeInstanceOf(Error)
    expect(failure!.name).toBe('ResponseError')
    expect(failure!.status).toBe(404)
    expect(failure!.message).toContain(String(unknownId))
  })
})
