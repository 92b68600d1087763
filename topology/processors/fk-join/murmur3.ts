/**
 * MurmurHash3 x64 128-bit (Austin Appleby's `MurmurHash3_x64_128`), as Kafka Streams'
 * `org.apache.kafka.streams.state.internals.Murmur3.hash128` computes it: the foreign-key join
 * (KIP-213) hashes the serialized left value with it to recognise stale subscription responses.
 * @internal
 */

const MASK = (1n << 64n) - 1n
const C1 = 0x87c37b91114253d5n
const C2 = 0x4cf5ad432745937fn
/** Kafka Streams' `Murmur3.DEFAULT_SEED`. */
export const MURMUR3_DEFAULT_SEED = 104729

const rotl = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (64n - r))) & MASK
const mul = (a: bigint, b: bigint): bigint => (a * b) & MASK

function fmix64(k: bigint): bigint {
  k ^= k >> 33n
  k = mul(k, 0xff51afd7ed558ccdn)
  k ^= k >> 33n
  k = mul(k, 0xc4ceb9fe1a85ec53n)
  k ^= k >> 33n
  return k
}

/** Reads `n` (≤ 8) bytes at `offset` as a little-endian unsigned 64-bit value. */
function readLE(data: Uint8Array, offset: number, n: number): bigint {
  let v = 0n
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[offset + i]!)
  return v
}

/**
 * The 128-bit hash of `data` as two unsigned 64-bit halves `[h1, h2]` (Java's `long[2]`, read
 * as unsigned). `seed` defaults to Kafka Streams' 104729.
 */
export function murmur3Hash128(data: Uint8Array, seed: number = MURMUR3_DEFAULT_SEED): [bigint, bigint] {
  const length = data.length
  const nblocks = length >> 4
  let h1 = BigInt.asUintN(64, BigInt(seed))
  let h2 = h1
  for (let i = 0; i < nblocks; i++) {
    let k1 = readLE(data, i * 16, 8)
    let k2 = readLE(data, i * 16 + 8, 8)
    k1 = mul(rotl(mul(k1, C1), 31n), C2)
    h1 ^= k1
    h1 = (mul(rotl(h1, 27n) + h2, 5n) + 0x52dce729n) & MASK
    k2 = mul(rotl(mul(k2, C2), 33n), C1)
    h2 ^= k2
    h2 = (mul(rotl(h2, 31n) + h1, 5n) + 0x38495ab5n) & MASK
  }
  const tail = nblocks * 16
  const rest = length - tail
  if (rest > 8) {
    let k2 = readLE(data, tail + 8, rest - 8)
    k2 = mul(rotl(mul(k2, C2), 33n), C1)
    h2 ^= k2
  }
  if (rest > 0) {
    let k1 = readLE(data, tail, Math.min(rest, 8))
    k1 = mul(rotl(mul(k1, C1), 31n), C2)
    h1 ^= k1
  }
  const len = BigInt(length)
  h1 ^= len
  h2 ^= len
  h1 = (h1 + h2) & MASK
  h2 = (h2 + h1) & MASK
  h1 = fmix64(h1)
  h2 = fmix64(h2)
  h1 = (h1 + h2) & MASK
  h2 = (h2 + h1) & MASK
  return [h1, h2]
}

/** The hash as 16 bytes (`h1` then `h2`, big-endian: the wire layout of Kafka Streams' wrappers). */
export function murmur3Hash128Bytes(data: Uint8Array, seed?: number): Buffer {
  const [h1, h2] = murmur3Hash128(data, seed)
  const out = Buffer.allocUnsafe(16)
  out.writeBigUInt64BE(h1, 0)
  out.writeBigUInt64BE(h2, 8)
  return out
}
