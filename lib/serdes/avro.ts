/**
 * Plain Avro serde (no schema registry): values are avsc binary encodings of one schema.
 *
 * Use it for topics where both sides agree on the schema out of band (internal repartition topics,
 * state stores, tests). For topics shared with other services use
 * {@link schemaRegistryAvroSerde}, which writes the Confluent wire format.
 */
import avsc from 'avsc'
import type { Resolver, Schema, Type } from 'avsc'
import { SerializationError } from '../../topology/errors.js'
import type { Serde } from '../../topology/serde.js'

/**
 * An Avro schema: a JSON object (e.g. an imported `.avsc` file, possibly `as const`), its JSON
 * text, or an already-built avsc `Type`. Validated by avsc at run time.
 */
export type AvroSchemaInput = Schema | string | Type | object

/** avsc options for building types (e.g. `logicalTypes`); see avsc's `Type.forSchema`. */
export type AvroTypeOptions = Parameters<typeof avsc.Type.forSchema>[1]

/** Options of {@link avroSerde}. */
export interface AvroSerdeOptions {
  /**
   * The schema of the bytes on the topic, when it differs from the reader schema passed to
   * {@link avroSerde}: `deserialize` resolves writer data into the reader schema (Avro schema
   * resolution: added fields take their defaults, removed fields are skipped) and `serialize`
   * encodes with the writer schema, so the serde round-trips. Must be resolvable into the reader
   * schema, else {@link avroSerde} throws.
   * @defaultValue the reader schema
   */
  writerSchema?: AvroSchemaInput
  /** avsc options used for both schemas (e.g. `logicalTypes`). @defaultValue avsc defaults */
  typeOptions?: AvroTypeOptions
}

/**
 * Builds an avsc `Type` from a schema object, a JSON string or a `Type` (returned as is).
 * @throws SerializationError when the schema is not valid Avro
 */
export function toAvroType(schema: AvroSchemaInput, typeOptions?: AvroTypeOptions): Type {
  if (avsc.Type.isType(schema)) return schema as Type
  try {
    const parsed = (typeof schema === 'string' ? JSON.parse(schema) : schema) as Schema
    return avsc.Type.forSchema(parsed, typeOptions)
  } catch (err) {
    throw new SerializationError(`invalid Avro schema: ${errorMessage(err)}`, { cause: err })
  }
}

/** The message of an unknown thrown value. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** The field paths of `value` that do not match `type` (e.g. `["campaignId"]`), joined with dots. */
export function invalidAvroPaths(type: Type, value: unknown): string[] {
  const paths: string[] = []
  type.isValid(value, { errorHook: (path: string[]) => paths.push(path.join('.') || '<root>') })
  return paths
}

/**
 * Encodes `value` with `type`, turning avsc's terse errors into a {@link SerializationError} that
 * names the invalid fields.
 * @internal shared by the Avro serdes
 */
export function encodeAvro(type: Type, value: unknown, topic: string): Buffer {
  try {
    return type.toBuffer(value)
  } catch (err) {
    const paths = invalidAvroPaths(type, value)
    const where = paths.length ? `; invalid field(s): ${paths.join(', ')}` : ''
    throw new SerializationError(`cannot encode value as Avro ${typeName(type)}: ${errorMessage(err)}${where}`, {
      cause: err,
      place: { topic },
    })
  }
}

/**
 * Decodes `payload` with `type` (through `resolver` when the writer schema differs).
 * @throws SerializationError on truncated, trailing or otherwise invalid data
 * @internal shared by the Avro serdes
 */
export function decodeAvro<T>(type: Type, payload: Buffer, topic: string, resolver?: Resolver, context = ''): T {
  try {
    return type.fromBuffer(payload, resolver) as T
  } catch (err) {
    throw new SerializationError(`cannot decode ${payload.length} bytes as Avro ${typeName(type)}${context}: ${errorMessage(err)}`, {
      cause: err,
      place: { topic },
    })
  }
}

/** A record type's full name, or the type's kind. */
export function typeName(type: Type): string {
  return type.name ?? type.typeName
}

/**
 * A serde for Avro binary encoding WITHOUT a schema registry (Kafka Streams users know it as a
 * "specific" or "generic" Avro serde with a fixed schema).
 *
 * `T` is the TypeScript shape of the schema's values; it is not checked against the schema at
 * compile time (avsc validates at run time: invalid values throw). Logical types decode to their
 * underlying type (`timestamp-millis` → `number` of milliseconds) unless `typeOptions.logicalTypes`
 * says otherwise.
 *
 * @param schema the reader (and by default also writer) schema
 * @param options writer schema for schema evolution, avsc type options
 * @returns a synchronous serde; `null` passes through as `null`
 * @throws SerializationError at construction for an invalid schema or a writer schema that cannot
 *   be resolved into the reader schema; from `serialize` for values that do not match the schema;
 *   from `deserialize` for truncated or malformed bytes
 *
 * @example
 * ```ts
 * interface Click { clickId: string; impressionId: string; clickTime: number }
 * const clickSerde = avroSerde<Click>({
 *   type: 'record', name: 'Click',
 *   fields: [{ name: 'clickId', type: 'string' }, { name: 'impressionId', type: 'string' }, { name: 'clickTime', type: 'long' }],
 * })
 * ```
 */
export function avroSerde<T>(schema: AvroSchemaInput, options: AvroSerdeOptions = {}): Serde<T> {
  const readerType = toAvroType(schema, options.typeOptions)
  const writerType = options.writerSchema !== undefined ? toAvroType(options.writerSchema, options.typeOptions) : readerType
  let resolver: Resolver | undefined
  if (writerType !== readerType && !writerType.equals(readerType)) {
    try {
      resolver = readerType.createResolver(writerType)
    } catch (err) {
      throw new SerializationError(
        `writer schema ${typeName(writerType)} cannot be resolved into reader schema ${typeName(readerType)}: ${errorMessage(err)}`,
        { cause: err },
      )
    }
  }
  return {
    serialize(topic, data) {
      if (data === null || data === undefined) return null
      return encodeAvro(writerType, data, topic)
    },
    deserialize(topic, data) {
      if (data === null) return null
      return decodeAvro<T>(readerType, data, topic, resolver)
    },
  }
}
