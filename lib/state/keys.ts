/**
 * Byte layouts of the LevelDB keys and changelog keys of the window and session stores.
 *
 * LevelDB keys (internal, ordered by unsigned byte order):
 * - window:  `segmentId(8B) | keyLen(4B BE) | key | windowStart(8B) | seq(4B BE)`
 * - session: `segmentId(8B) | keyLen(4B BE) | key | sessionEnd(8B) | sessionStart(8B)`
 *
 * The 8-byte numbers in LevelDB keys are "order-preserving longs": the two's-complement
 * big-endian encoding with the sign bit flipped, so negative values sort before positive ones.
 * `keyLen` keeps keys that are prefixes of each other apart (`"a"` and `"ab"` never interleave).
 * Segments are time buckets (`floor(time / segmentIntervalMs)`, window start for window stores,
 * session end for session stores) so that expired data is dropped with one range delete.
 *
 * Changelog keys (what `<applicationId>-<store>-changelog` holds; Kafka Streams' formats, so a
 * Java tool reading our changelogs sees the same bytes):
 * - key-value: the store key itself;
 * - window:  `key | windowStart(8B two's complement BE) | seq(4B BE)` (Kafka Streams'
 *   `WindowKeySchema.toStoreKeyBinary`; `seq` is 0 unless the store retains duplicates);
 * - session: `key | sessionEnd(8B BE) | sessionStart(8B BE)` (Kafka Streams' `SessionKeySchema`).
 *
 * @internal
 */

const TWO_32 = 4294967296

/** Writes `value` (an integer within ±2^53) as an order-preserving 8-byte long at `offset`. */
export function writeOrderedLong(buf: Buffer, value: number, offset: number): void {
  const hi = Math.floor(value / TWO_32)
  const lo = value - hi * TWO_32
  buf.writeUInt32BE((hi ^ 0x80000000) >>> 0, offset)
  buf.writeUInt32BE(lo >>> 0, offset + 4)
}

/** Reads an order-preserving 8-byte long written by {@link writeOrderedLong}. */
export function readOrderedLong(buf: Buffer, offset: number): number {
  const hi = (buf.readUInt32BE(offset) ^ 0x80000000) | 0
  const lo = buf.readUInt32BE(offset + 4)
  return hi * TWO_32 + lo
}

/** Writes `value` as Kafka's big-endian two's-complement long (Java `long`). */
export function writeKafkaLong(buf: Buffer, value: number, offset: number): void {
  const hi = Math.floor(value / TWO_32)
  const lo = value - hi * TWO_32
  buf.writeInt32BE(hi | 0, offset)
  buf.writeUInt32BE(lo >>> 0, offset + 4)
}

/** Reads Kafka's big-endian two's-complement long as a JS number. */
export function readKafkaLong(buf: Buffer, offset: number): number {
  return buf.readInt32BE(offset) * TWO_32 + buf.readUInt32BE(offset + 4)
}

/** The 8-byte segment prefix of `segmentId`. */
export function segmentPrefix(segmentId: number): Buffer {
  const b = Buffer.allocUnsafe(8)
  writeOrderedLong(b, segmentId, 0)
  return b
}

/** `segmentId | keyLen | key` — the common prefix of all entries of `key` in one segment. */
export function segmentKeyPrefix(segmentId: number, key: Buffer): Buffer {
  const b = Buffer.allocUnsafe(12 + key.length)
  writeOrderedLong(b, segmentId, 0)
  b.writeUInt32BE(key.length, 8)
  key.copy(b, 12)
  return b
}

/**
 * Builds `segmentId | keyLen | key | t1 | tail` where `t1` is an ordered long and `tail` is
 * either a 4-byte unsigned (window seq) or an 8-byte ordered long (session start).
 */
function composite(segmentId: number, key: Buffer, t1: number, tailBytes: 4 | 8, tail: number): Buffer {
  const b = Buffer.allocUnsafe(20 + key.length + tailBytes)
  writeOrderedLong(b, segmentId, 0)
  b.writeUInt32BE(key.length, 8)
  key.copy(b, 12)
  writeOrderedLong(b, t1, 12 + key.length)
  if (tailBytes === 4) b.writeUInt32BE(tail >>> 0, 20 + key.length)
  else writeOrderedLong(b, tail, 20 + key.length)
  return b
}

/** A decoded window-store LevelDB key. */
export interface WindowKeyParts {
  readonly segmentId: number
  readonly key: Buffer
  readonly windowStartMs: number
  readonly seq: number
}

/** A decoded session-store LevelDB key. */
export interface SessionKeyParts {
  readonly segmentId: number
  readonly key: Buffer
  readonly startMs: number
  readonly endMs: number
}

/** Window store LevelDB key. */
export function windowStoreKey(segmentId: number, key: Buffer, windowStartMs: number, seq: number): Buffer {
  return composite(segmentId, key, windowStartMs, 4, seq)
}

/** Decodes a {@link windowStoreKey}. */
export function decodeWindowStoreKey(b: Buffer): WindowKeyParts {
  const len = b.readUInt32BE(8)
  return {
    segmentId: readOrderedLong(b, 0),
    key: b.subarray(12, 12 + len),
    windowStartMs: readOrderedLong(b, 12 + len),
    seq: b.readUInt32BE(20 + len),
  }
}

/** Session store LevelDB key. */
export function sessionStoreKey(segmentId: number, key: Buffer, startMs: number, endMs: number): Buffer {
  return composite(segmentId, key, endMs, 8, startMs)
}

/** Decodes a {@link sessionStoreKey}. */
export function decodeSessionStoreKey(b: Buffer): SessionKeyParts {
  const len = b.readUInt32BE(8)
  return {
    segmentId: readOrderedLong(b, 0),
    key: b.subarray(12, 12 + len),
    endMs: readOrderedLong(b, 12 + len),
    startMs: readOrderedLong(b, 20 + len),
  }
}

/** Window changelog key: `key | windowStart(8B) | seq(4B)`. */
export function windowChangelogKey(key: Buffer, windowStartMs: number, seq: number): Buffer {
  const b = Buffer.allocUnsafe(key.length + 12)
  key.copy(b, 0)
  writeKafkaLong(b, windowStartMs, key.length)
  b.writeUInt32BE(seq >>> 0, key.length + 8)
  return b
}

/** Decodes a {@link windowChangelogKey}. Throws a RangeError when shorter than 12 bytes. */
export function decodeWindowChangelogKey(b: Buffer): { key: Buffer; windowStartMs: number; seq: number } {
  if (b.length < 12) throw new RangeError(`window changelog key has ${b.length} bytes, expected at least 12`)
  const n = b.length - 12
  return { key: b.subarray(0, n), windowStartMs: readKafkaLong(b, n), seq: b.readUInt32BE(n + 8) }
}

/** Session changelog key: `key | end(8B) | start(8B)`. */
export function sessionChangelogKey(key: Buffer, startMs: number, endMs: number): Buffer {
  const b = Buffer.allocUnsafe(key.length + 16)
  key.copy(b, 0)
  writeKafkaLong(b, endMs, key.length)
  writeKafkaLong(b, startMs, key.length + 8)
  return b
}

/** Decodes a {@link sessionChangelogKey}. Throws a RangeError when shorter than 16 bytes. */
export function decodeSessionChangelogKey(b: Buffer): { key: Buffer; startMs: number; endMs: number } {
  if (b.length < 16) throw new RangeError(`session changelog key has ${b.length} bytes, expected at least 16`)
  const n = b.length - 16
  return { key: b.subarray(0, n), endMs: readKafkaLong(b, n), startMs: readKafkaLong(b, n + 8) }
}

/** The smallest key strictly greater than every key starting with `prefix` (undefined: none). */
export function prefixUpperBound(prefix: Buffer): Buffer | undefined {
  const b = Buffer.from(prefix)
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i] !== 0xff) {
      b[i]!++
      return b.subarray(0, i + 1)
    }
  }
  return undefined
}

/** Map key of a Buffer: latin1 strings compare like unsigned bytes (`<` on strings). */
export function bkey(b: Buffer): string {
  return b.toString('latin1')
}
