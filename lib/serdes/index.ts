/**
 * Avro serdes: plain avsc binary ({@link avroSerde}) and Schema Registry Avro in Confluent wire
 * format ({@link schemaRegistryAvroSerde}).
 */
export { avroSerde, toAvroType } from './avro.js'
export type { AvroSchemaInput, AvroSerdeOptions, AvroTypeOptions } from './avro.js'
export { RecordNameStrategy, schemaRegistryAvroSerde, TopicNameStrategy, TopicRecordNameStrategy } from './schema-registry-avro.js'
export type {
  SchemaRegistryAvroSerde,
  SchemaRegistryAvroSerdeOptions,
  SchemaRegistryConfig,
  SubjectNameStrategy,
} from './schema-registry-avro.js'
export { RegistryTimeoutError } from './registry-call.js'
export { decodeWireFormat, encodeWireFormat, WIRE_HEADER_LENGTH, WIRE_MAGIC_BYTE } from './wire-format.js'
export type { WireRecord } from './wire-format.js'
export { COMPATIBILITY, SchemaRegistry } from '@kafkajs/confluent-schema-registry'
