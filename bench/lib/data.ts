/**
 * Deterministic benchmark data: every record is a pure function of its index, so the preloader,
 * the verifier and the Java reference agree on what each workload must output without storing
 * the data anywhere but Kafka.
 *
 * Record layout (all ASCII, UTF-8 = bytes):
 * - key   `k0001234` (8 bytes): `k` + the key index (record index mod key count), 7 digits.
 * - value 100 bytes: `SSSSSSSSSS|gGGGGGGG|` + 80 filler letters, where S is the record index
 *   (10 digits) and gGGGGGGG the W6 group (`(index * 37) mod groups`, 7 digits).
 *
 * The same rules are written once more in Java (bench/reference, `Reference.java`): keep them in
 * step.
 */

/** Bytes of every value. */
export const VALUE_BYTES = 100
/** Bytes of every key (`k` + 7 digits). */
export const KEY_BYTES = 8

/** 2,000 pseudo-random lowercase letters (fixed LCG seed), sliced for value filler. */
const FILLER = (() => {
  let x = 0x2545f491
  let s = ''
  for (let i = 0; i < 2000; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    s += String.fromCharCode(97 + ((x >>> 16) % 26))
  }
  return s
})()

/** The key string of key index `n` (`k0001234`). */
export function keyName(n: number): string {
  return 'k' + String(n).padStart(7, '0')
}

/** The W6 group of record `i` when there are `groups` groups (a permutation of the key index). */
export function groupIndex(i: number, groups: number): number {
  return (i * 37) % groups
}

/** The group string of group index `g` (`g0001234`). */
export function groupName(g: number): string {
  return 'g' + String(g).padStart(7, '0')
}

/** The 100-byte value of record `i`. */
export function valueOf(i: number, groups: number): string {
  const head = String(i).padStart(10, '0') + '|' + groupName(groupIndex(i, groups)) + '|'
  const start = i % 1000
  return head + FILLER.slice(start, start + (VALUE_BYTES - head.length))
}

/** The record index written in the first 10 characters of a value. */
export function seqOf(value: string): number {
  return Number.parseInt(value.slice(0, 10), 10)
}

/** W1's filter: keeps three records in four. */
export function w1Keeps(seq: number): boolean {
  return seq % 4 !== 0
}

/** The shape of one input data set (one or two topics). */
export interface DatasetShape {
  /** Records per topic. */
  records: number
  /** Distinct keys. */
  keys: number
  /** Timestamp of record 0, ms. */
  baseTs: number
}

/** Timestamp of record `i` of an ordered stream: one record per millisecond. */
export function orderedTs(shape: DatasetShape, i: number): number {
  return shape.baseTs + i
}

/** Half-width of W3's timestamp jitter (records arrive up to 2× this out of order), ms. */
export const W3_JITTER_MS = 5_000
/** W3 window size, ms (1-minute tumbling windows). */
export const W3_WINDOW_MS = 60_000
/** W3 grace, ms (larger than the disorder, so no record is late and the counts are exact). */
export const W3_GRACE_MS = 30_000

/** Timestamp of record `i` of W3's shuffled stream: ordered plus a deterministic ±5 s jitter. */
export function shuffledTs(shape: DatasetShape, i: number): number {
  const h = (Math.imul(i + 1, 2654435761) >>> 0) % (2 * W3_JITTER_MS + 1)
  return shape.baseTs + i + h - W3_JITTER_MS
}

/** W5 join window (time difference), ms. */
export const W5_WINDOW_MS = 1_000
/** W5 grace, ms: generous so that no record is ever dropped as late. */
export const W5_GRACE_MS = 3_600_000
/** Offset of the right stream's timestamps relative to the left, ms. */
export const W5_RIGHT_OFFSET_MS = 50

/** W4: the table holds the keys whose index is not 4 mod 5 (80 % of the key space). */
export function w4TableHas(keyIndex: number): boolean {
  return keyIndex % 5 !== 4
}

/** Timestamp of every W4 table record: an hour before the stream, so the table loads first. */
export function tableTs(shape: DatasetShape): number {
  return shape.baseTs - 3_600_000
}

// ---------------------------------------------------------------------------------------------
// Expected results

/** W1: how many records pass the filter. */
export function expectedW1Count(records: number): number {
  return records - Math.ceil(records / 4)
}

/** W2: final count per key index. */
export function expectedW2Counts(shape: DatasetShape): Uint32Array {
  const counts = new Uint32Array(shape.keys)
  for (let i = 0; i < shape.records; i++) counts[i % shape.keys]!++
  return counts
}

/** W3: final count per `key@windowStart`. */
export function expectedW3Counts(shape: DatasetShape): Map<string, number> {
  const counts = new Map<string, number>()
  for (let i = 0; i < shape.records; i++) {
    const ts = shuffledTs(shape, i)
    const start = ts - (((ts % W3_WINDOW_MS) + W3_WINDOW_MS) % W3_WINDOW_MS)
    const k = keyName(i % shape.keys) + '@' + start
    counts.set(k, (counts.get(k) ?? 0) + 1)
  }
  return counts
}

/** W4: how many stream records find their key in the table (inner join). */
export function expectedW4Count(shape: DatasetShape): number {
  let n = 0
  for (let i = 0; i < shape.records; i++) if (w4TableHas(i % shape.keys)) n++
  return n
}

/** W5: how many (left, right) pairs share a key and lie within the join window. */
export function expectedW5Count(shape: DatasetShape): number {
  // Both sides are sorted by index; per key, timestamps grow with the index.
  const left = new Map<number, number[]>()
  const right = new Map<number, number[]>()
  for (let i = 0; i < shape.records; i++) {
    const k = i % shape.keys
    let l = left.get(k)
    if (!l) left.set(k, (l = []))
    l.push(orderedTs(shape, i))
    let r = right.get(k)
    if (!r) right.set(k, (r = []))
    r.push(orderedTs(shape, i) + W5_RIGHT_OFFSET_MS)
  }
  let pairs = 0
  for (const [k, ls] of left) {
    const rs = right.get(k) ?? []
    let lo = 0
    for (const t of ls) {
      while (lo < rs.length && rs[lo]! < t - W5_WINDOW_MS) lo++
      for (let j = lo; j < rs.length && rs[j]! <= t + W5_WINDOW_MS; j++) pairs++
    }
  }
  return pairs
}

/** W6: final count per group index. */
export function expectedW6Counts(shape: DatasetShape): Uint32Array {
  const counts = new Uint32Array(shape.keys)
  for (let i = 0; i < shape.records; i++) counts[groupIndex(i, shape.keys)]!++
  return counts
}
