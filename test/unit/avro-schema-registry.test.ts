import { describe, expect, it } from 'vitest'
import avsc from 'avsc'
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry'
import { SerializationError } from '../../topology/errors.js'
import { decodeWireFormat, encodeWireFormat, RecordNameStrategy, schemaRegistryAvroSerde } from '../../lib/serdes/index.js'

interface Impression {
  impressionId: string
  campaignId: string
}

const impressionV1 = {
  type: 'record',
  name: 'Impression',
  namespace: 'test',
  fields: [
    { name: 'impressionId', type: 'string' },
    { name: 'campaignId', type: 'string' },
  ],
}
const impressionV2 = {
  ...impressionV1,
  fields: [...impressionV1.fields, { name: 'country', type: ['null', 'string'], default: null }],
}
const incompatible = { type: 'record', name: 'Impression', namespace: 'test', fields: [{ name: 'impressionId', type: 'long' }] }

class NotFound extends Error {
  status = 404
}

/** An in-memory registry: the real client class with its HTTP calls replaced, counting calls. */
class FakeRegistry extends SchemaRegistry {
  readonly schemas = new Map<number, string>()
  readonly subjects = new Map<string, number[]>()
  calls = { register: 0, lookup: 0, getSchema: 0 }
  nextId = 1
  failNext: Error | undefined
  constructor() {
    super({ host: 'http://registry.invalid' })
  }
  add(subject: string, schema: object): number {
    const id = this.nextId++
    this.schemas.set(id, JSON.stringify(schema))
    this.subjects.set(subject, [...(this.subjects.get(subject) ?? []), id])
    return id
  }
  override async register(schema: any, opts?: any): Promise<{ id: number }> {
    this.calls.register++
    return { id: this.add(opts.subject, JSON.parse(schema.schema)) }
  }
  override async getRegistryIdBySchema(subject: string, schema: any): Promise<number> {
    this.calls.lookup++
    const text = JSON.stringify(JSON.parse(schema.schema))
    const id = (this.subjects.get(subject) ?? []).find((i) => this.schemas.get(i) === text)
    if (id === undefined) throw Object.assign(new Error('Schema not found'), { name: 'ConfluentSchemaRegistryError' })
    return id
  }
  override async getSchema(id: number): Promise<any> {
    this.calls.getSchema++
    if (this.failNext) {
      const err = this.failNext
      this.failNext = undefined
      throw err
    }
    const text = this.schemas.get(id)
    if (text === undefined) throw new NotFound(`Schema ${id} not found`)
    return avsc.Type.forSchema(JSON.parse(text))
  }
}

describe('Confluent wire format', () => {
  it('writes magic byte 0 and the schema id big-endian before the payload', () => {
    const out = encodeWireFormat(0x01020304, Buffer.from([9, 8]))
    expect([...out]).toEqual([0, 1, 2, 3, 4, 9, 8])
    const { schemaId, payload } = decodeWireFormat(out)
    expect(schemaId).toBe(0x01020304)
    expect([...payload]).toEqual([9, 8])
  })

  it('rejects buffers shorter than the header', () => {
    expect(() => decodeWireFormat(Buffer.from([0, 0, 1]), 'impressions')).toThrow(SerializationError)
    expect(() => decodeWireFormat(Buffer.from([0, 0, 1]), 'impressions')).toThrow(
      /not in Confluent wire format: 3 byte\(s\), the header alone needs 5.*\(topic impressions\)/,
    )
  })

  it('rejects an unknown magic byte', () => {
    expect(() => decodeWireFormat(Buffer.from([1, 0, 0, 0, 1, 2]), 't')).toThrow(/unknown magic byte 1 \(expected 0\)/)
  })

  it('rejects ids outside int32', () => {
    expect(() => encodeWireFormat(-1, Buffer.alloc(0))).toThrow(/non-negative 32-bit integer/)
  })
})

describe('schemaRegistryAvroSerde', () => {
  const imp: Impression = { impressionId: 'i1', campaignId: 'c1' }

  it('registers under <topic>-value once and writes the wire format', async () => {
    const registry = new FakeRegistry()
    const serde = schemaRegistryAvroSerde<Impression>({ registry, schema: impressionV1 })
    await Promise.all([serde.prepareSerialize('impressions'), serde.prepareSerialize('impressions')])
    await serde.prepareSerialize('impressions')
    expect(registry.calls.register).toBe(1)
    expect([...registry.subjects.keys()]).toEqual(['impressions-value'])
    const id = serde.schemaIdFor('impressions')!
    const bytes = serde.serialize('impressions', imp)!
    expect(bytes[0]).toBe(0)
    expect(bytes.readInt32BE(1)).toBe(id)
    expect(bytes.subarray(5).equals(avsc.Type.forSchema(impressionV1 as avsc.Schema).toBuffer(imp))).toBe(true)
    // Our own id is known without a registry round trip.
    expect(serde.deserialize('impressions', bytes)).toEqual(imp)
    expect(registry.calls.getSchema).toBe(0)
  })

  it('uses <topic>-key for key serdes, a fixed subject, or a strategy', async () => {
    const registry = new FakeRegistry()
    const keySerde = schemaRegistryAvroSerde<Impression>({ registry, schema: impressionV1, isKey: true })
    expect(keySerde.subjectFor('t')).toBe('t-key')
    expect(schemaRegistryAvroSerde({ registry, schema: impressionV1, subject: 'fixed' }).subjectFor('t')).toBe('fixed')
    expect(schemaRegistryAvroSerde({ registry, schema: impressionV1, subject: RecordNameStrategy }).subjectFor('t')).toBe('test.Impression')
  })

  it('looks an existing registration up instead of registering again', async () => {
    const registry = new FakeRegistry()
    const existing = registry.add('impressions-value', impressionV1)
    const serde = schemaRegistryAvroSerde<Impression>({ registry, schema: impressionV1 })
    await serde.prepareSerialize('impressions')
    expect(serde.schemaIdFor('impressions')).toBe(existing)
    expect(registry.calls.register).toBe(0)
  })

  it('fails prepareSerialize when the schema is missing and autoRegister is false', async () => {
    const serde = schemaRegistryAvroSerde<Impression>({ registry: new FakeRegistry(), schema: impressionV1, autoRegister: false })
    await expect(serde.prepareSerialize('impressions')).rejects.toThrow(
      /schema test\.Impression is not registered under subject impressions-value and autoRegister is false/,
    )
  })

  it('writes an unprepared topic (a store changelog) with the known id and registers its subject in the background', async () => {
    const registry = new FakeRegistry()
    const serde = schemaRegistryAvroSerde<Impression>({ registry, schema: impressionV1 })
    await serde.prepareSerialize('impressions')
    const id = serde.schemaIdFor('impressions')!
    const bytes = serde.serialize('app-store-changelog', imp)!
    expect(bytes.readInt32BE(1)).toBe(id)
    expect(serde.deserialize('app-store-changelog', bytes)).toEqual(imp)
    await new Promise((r) => setTimeout(r, 10))
    expect([...registry.subjects.keys()].sort()).toEqual(['app-store-changelog-value', 'impressions-value'])
  })

  it('learns its own id from an equal writer schema fetched while reading', async () => {
    const registry = new FakeRegistry()
    const id = registry.add('impressions-value', impressionV1)
    const serde = schemaRegistryAvroSerde<Impression>({ registry, schema: impressionV1, autoRegister: false })
    const input = encodeWireFormat(id, avsc.Type.forSchema(impressionV1 as avsc.Schema).toBuffer(imp))
    await serde.prepareDeserialize('impressions', [input])
    expect(serde.serialize('store-changelog', imp)!.equals(input)).toBe(true)
    expect(registry.calls.register).toBe(0)
  })

  it('refuses to serialize before prepareSerialize', () => {
    const serde = schemaRegistryAvroSerde<Impression>({ registry: new FakeRegistry(), schema: impressionV1 })
    expect(() => serde.serialize('impressions', imp)).toThrow(/await prepareSerialize\(topic\) before serialize/)
  })

  it('decodes by writer schema id with evolution in both directions, fetching each id once', async () => {
    const registry = new FakeRegistry()
    const v1Id = registry.add('impressions-value', impressionV1)
    const v2Id = registry.add('impressions-value', impressionV2)
    const v1Bytes = encodeWireFormat(v1Id, avsc.Type.forSchema(impressionV1 as avsc.Schema).toBuffer(imp))
    const v2Bytes = encodeWireFormat(v2Id, avsc.Type.forSchema(impressionV2 as avsc.Schema).toBuffer({ ...imp, country: 'NL' }))

    const v1Reader = schemaRegistryAvroSerde<Impression>({ registry, schema: impressionV1 })
    await v1Reader.prepareDeserialize('impressions', [v1Bytes, v2Bytes, null, v2Bytes])
    expect(registry.calls.getSchema).toBe(2)
    expect(v1Reader.deserialize('impressions', v1Bytes)).toEqual(imp)
    expect(v1Reader.deserialize('impressions', v2Bytes)).toEqual(imp)
    await v1Reader.prepareDeserialize('impressions', [v1Bytes, v2Bytes])
    expect(registry.calls.getSchema).toBe(2)

    const v2Reader = schemaRegistryAvroSerde<Impression & { country: string | null }>({ registry, schema: impressionV2 })
    await v2Reader.prepareDeserialize('impressions', [v1Bytes, v2Bytes])
    expect(v2Reader.deserialize('impressions', v1Bytes)).toEqual({ ...imp, country: null })
    expect(v2Reader.deserialize('impressions', v2Bytes)).toEqual({ ...imp, country: 'NL' })
  })

  it('throws SerializationError per record for unknown ids without failing the batch', async () => {
    const registry = new FakeRegistry()
    const serde = schemaRegistryAvroSerde<Impression>({ registry, schema: impressionV1 })
    await serde.prepareSerialize('impressions')
    const good = serde.serialize('impressions', imp)!
    const unknown = encodeWireFormat(999, good.subarray(5))
    await serde.prepareDeserialize('impressions', [good, unknown])
    expect(serde.deserialize('impressions', good)).toEqual(imp)
    expect(() => serde.deserialize('impressions', unknown)).toThrow(SerializationError)
    expect(() => serde.deserialize('impressions', unknown)).toThrow(
      /unknown schema id 999: the schema registry has no schema with this id \(topic impressions\)/,
    )
    // remembered as unknown: the next batch does not ask again
    const calls = registry.calls.getSchema
    await serde.prepareDeserialize('impressions', [unknown])
    expect(registry.calls.getSchema).toBe(calls)
  })

  it('reports an id that was never fetched', () => {
    const serde = schemaRegistryAvroSerde<Impression>({ registry: new FakeRegistry(), schema: impressionV1 })
    expect(() => serde.deserialize('t', encodeWireFormat(7, Buffer.from([2, 0x61])))).toThrow(/writer schema id 7 has not been fetched/)
  })

  it('throws SerializationError for an incompatible writer schema', async () => {
    const registry = new FakeRegistry()
    const badId = registry.add('impressions-value', incompatible)
    const bytes = encodeWireFormat(badId, avsc.Type.forSchema(incompatible as avsc.Schema).toBuffer({ impressionId: 5 }))
    const serde = schemaRegistryAvroSerde<Impression>({ registry, schema: impressionV1 })
    await serde.prepareDeserialize('impressions', [bytes])
    expect(() => serde.deserialize('impressions', bytes)).toThrow(
      new RegExp(`writer schema id ${badId} \\(test\\.Impression\\) is incompatible with reader schema test\\.Impression`),
    )
  })

  it('throws SerializationError for wrong magic byte and truncated bodies', async () => {
    const registry = new FakeRegistry()
    const serde = schemaRegistryAvroSerde<Impression>({ registry, schema: impressionV1 })
    await serde.prepareSerialize('impressions')
    const good = serde.serialize('impressions', imp)!
    const wrongMagic = Buffer.from(good)
    wrongMagic[0] = 7
    await serde.prepareDeserialize('impressions', [wrongMagic])
    expect(() => serde.deserialize('impressions', wrongMagic)).toThrow(/unknown magic byte 7/)
    const truncated = good.subarray(0, good.length - 3)
    expect(() => serde.deserialize('impressions', truncated)).toThrow(
      /cannot decode \d+ bytes as Avro test\.Impression \(writer schema id \d+\)/,
    )
    expect(() => serde.deserialize('impressions', Buffer.from('{"json":true}'))).toThrow(SerializationError)
  })

  it('rethrows registry outages from prepareDeserialize as retriable and recovers', async () => {
    const registry = new FakeRegistry()
    const id = registry.add('impressions-value', impressionV1)
    const bytes = encodeWireFormat(id, avsc.Type.forSchema(impressionV1 as avsc.Schema).toBuffer(imp))
    const serde = schemaRegistryAvroSerde<Impression>({ registry, schema: impressionV1 })
    registry.failNext = Object.assign(new Error('socket hang up'), { status: 503 })
    const err = await serde.prepareDeserialize('impressions', [bytes]).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(SerializationError)
    expect((err as SerializationError).retriable).toBe(true)
    expect((err as Error).message).toMatch(/fetching schema id \d+ from the schema registry failed: socket hang up/)
    await serde.prepareDeserialize('impressions', [bytes])
    expect(serde.deserialize('impressions', bytes)).toEqual(imp)
  })

  it('names invalid fields on serialize', async () => {
    const serde = schemaRegistryAvroSerde<Impression>({ registry: new FakeRegistry(), schema: impressionV1 })
    await serde.prepareSerialize('impressions')
    expect(() => serde.serialize('impressions', { impressionId: 'x' } as Impression)).toThrow(/invalid field\(s\): campaignId/)
  })
})
