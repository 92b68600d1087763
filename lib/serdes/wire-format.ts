/**
 * Confluent wire format: `[magic byte 0][schema id: int32 big-endian][payload]`.
 *
 * Used by Confluent's serializers for Avro, Protobuf and JSON Schema, and by every registry with a
 * Confluent-compatible API (Apicurio's `/apis/ccompat/v7`, Redpanda, Karapace).
 */
import { SerializationError } from '../../topology/errors.js'

/** The only magic byte defined by the Confluent wire format. */
export const WIRE_MAGIC_BYTE = 0

/** Length of the header in bytes (magic byte + schema id). */
export const WIRE_HEADER_LENGTH = 5

/** A parsed wire-format record: the writer's schema id and the encoded body (a view, not a copy). */
export interface WireRecord {
  schemaId: number
  payload: Buffer
}

/**
 * Prefixes `payload` with the wire-format header.
 * @param schemaId the registry's schema id (a non-negative int32)
 * @throws SerializationError when `schemaId` is not a non-negative 32-bit integer
 */
export function encodeWireFormat(schemaId: number, payload: Buffer): Buffer {
  if (!Number.isInteger(schemaId) || schemaId < 0 || schemaId > 0x7fffffff) {
    throw new SerializationError(`schema id must be a non-negative 32-bit integer, got ${schemaId}`)
  }
  const out = Buffer.allocUnsafe(WIRE_HEADER_LENGTH + payload.length)
  out[0] = WIRE_MAGIC_BYTE
  out.writeInt32BE(schemaId, 1)
  payload.copy(out, WIRE_HEADER_LENGTH)
  return out
}

/**
 * Splits a wire-format record into schema id and payload.
 * @param topic named in the error message
 * @throws SerializationError when the buffer is shorter than the 5-byte header or the magic byte is not 0
 */
export function decodeWireFormat(data: Buffer, topic?: string): WireRecord {
  const place = topic !== undefined ? { topic } : undefined
  if (data.length < WIRE_HEADER_LENGTH) {
    throw new SerializationError(
      `not in Confluent wire format: ${data.length} byte(s), the header alone needs ${WIRE_HEADER_LENGTH} (magic byte + 4-byte schema id)`,
      { place },
    )
  }
  if (data[0] !== WIRE_MAGIC_BYTE) {
    throw new SerializationError(`not in Confluent wire format: unknown magic byte ${data[0]} (expected ${WIRE_MAGIC_BYTE})`, { place })
  }
  return { schemaId: data.readInt32BE(1), payload: data.subarray(WIRE_HEADER_LENGTH) }
}

/**
 * The schema id of a wire-format record, or `undefined` when the bytes are not in wire format
 * (never throws: used to collect ids before a batch is decoded).
 */
export function peekSchemaId(data: Buffer | null): number | undefined {
  if (data === null || data.length < WIRE_HEADER_LENGTH || data[0] !== WIRE_MAGIC_BYTE) return undefined
  return data.readInt32BE(1)
}
