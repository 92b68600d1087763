import { describe, expect, it } from 'vitest'
import avsc from 'avsc'
import { SerializationError } from '../../topology/errors.js'
import { avroSerde } from '../../lib/serdes/index.js'

interface ClickV1 {
  clickId: string
  impressionId: string
  clickTime: number
}

const clickV1 = {
  type: 'record',
  name: 'Click',
  namespace: 'test',
  fields: [
    { name: 'clickId', type: 'string' },
    { name: 'impressionId', type: 'string' },
    { name: 'clickTime', type: { type: 'long', logicalType: 'timestamp-millis' } },
  ],
} as const

const clickV2 = {
  ...clickV1,
  fields: [...clickV1.fields, { name: 'device', type: ['null', 'string'], default: null }],
}

describe('avroSerde', () => {
  const serde = avroSerde<ClickV1>(clickV1)
  const click: ClickV1 = { clickId: 'c1', impressionId: 'i1', clickTime: 1_700_000_000_123 }

  it('round-trips a record and encodes it as plain avsc binary', () => {
    const bytes = serde.serialize('clicks', click)
    expect(bytes).not.toBeNull()
    // Independent encoding with avsc: the serde adds no header.
    expect(bytes!.equals(avsc.Type.forSchema(clickV1 as unknown as avsc.Schema).toBuffer(click))).toBe(true)
    const back = serde.deserialize('clicks', bytes)
    expect(back).toEqual(click)
    // timestamp-millis without a logical type implementation stays a number of milliseconds
    expect(typeof back!.clickTime).toBe('number')
  })

  it('passes null and undefined through as null', () => {
    expect(serde.serialize('clicks', null)).toBeNull()
    expect(serde.serialize('clicks', undefined)).toBeNull()
    expect(serde.deserialize('clicks', null)).toBeNull()
  })

  it('accepts the schema as a JSON string', () => {
    const fromString = avroSerde<ClickV1>(JSON.stringify(clickV1))
    expect(fromString.deserialize('t', serde.serialize('t', click))).toEqual(click)
  })

  it('names the invalid field when a value does not match the schema', () => {
    const bad = { clickId: 'c1', impressionId: 42, clickTime: 1 } as unknown as ClickV1
    expect(() => serde.serialize('clicks', bad)).toThrow(SerializationError)
    expect(() => serde.serialize('clicks', bad)).toThrow(/invalid field\(s\): impressionId.*\(topic clicks\)/)
  })

  it('throws SerializationError with the topic for truncated and trailing bytes', () => {
    const bytes = serde.serialize('clicks', click)!
    const truncated = bytes.subarray(0, bytes.length - 2)
    expect(() => serde.deserialize('clicks', truncated)).toThrow(SerializationError)
    expect(() => serde.deserialize('clicks', truncated)).toThrow(/cannot decode \d+ bytes as Avro test\.Click.*\(topic clicks\)/)
    const trailing = Buffer.concat([bytes, Buffer.from([1, 2, 3])])
    expect(() => serde.deserialize('clicks', trailing)).toThrow(/trailing/)
  })

  it('rejects an invalid schema at construction', () => {
    expect(() => avroSerde({ type: 'record', name: 'X', fields: [{ name: 'a', type: 'nope' }] } as never)).toThrow(/invalid Avro schema/)
  })

  it('resolves a v2 writer into the v1 reader and back (schema evolution)', () => {
    // v1 reader of v2 data: the added field is skipped
    const v1ReadsV2 = avroSerde<ClickV1>(clickV1, { writerSchema: clickV2 })
    const v2Bytes = avsc.Type.forSchema(clickV2 as unknown as avsc.Schema).toBuffer({ ...click, device: 'ios' })
    expect(v1ReadsV2.deserialize('t', v2Bytes)).toEqual(click)
    // v2 reader of v1 data: the added field takes its default
    const v2ReadsV1 = avroSerde<ClickV1 & { device: string | null }>(clickV2, { writerSchema: clickV1 })
    const v1Bytes = serde.serialize('t', click)
    expect(v2ReadsV1.deserialize('t', v1Bytes)).toEqual({ ...click, device: null })
  })

  it('rejects a writer schema that cannot be resolved into the reader schema', () => {
    const incompatible = { type: 'record', name: 'Click', namespace: 'test', fields: [{ name: 'clickId', type: 'int' }] }
    expect(() => avroSerde(clickV1, { writerSchema: incompatible })).toThrow(/cannot be resolved into reader schema test\.Click/)
  })
})
