/**
 * Output checks: a benchmark never reports speed on wrong results. Each verifier is fed every
 * output record (read back with read_committed) and says whether the output is exactly what the
 * workload must produce, still incomplete (the run may not have finished: read again), or wrong.
 */
import {
  expectedW1Count,
  expectedW2Counts,
  expectedW3Counts,
  expectedW4Count,
  expectedW5Count,
  expectedW6Counts,
  groupName,
  keyName,
  seqOf,
  valueOf,
  w1Keeps,
  type DatasetShape,
} from './data.js'
import type { ReadRecord } from './kafka.js'

export type Verdict = { status: 'ok'; records: number } | { status: 'incomplete' | 'wrong'; records: number; message: string }

export interface Verifier {
  add(r: ReadRecord): void
  verdict(): Verdict
  /** Largest record timestamp seen (LogAppendTime of the last result), ms. */
  lastTimestamp: number
}

export type VerifiedWorkload = 'W0b' | 'W0c' | 'W1' | 'W2' | 'W3' | 'W4' | 'W5' | 'W6'

/** Builds the verifier of a workload over a data set. */
export function verifierFor(workload: VerifiedWorkload, shape: DatasetShape): Verifier {
  switch (workload) {
    case 'W0b':
    case 'W0c':
      return new PipeVerifier(shape)
    case 'W1':
      return new W1Verifier(shape)
    case 'W2':
      return new FinalCountVerifier('W2', expectedW2Counts(shape), keyName)
    case 'W3':
      return new W3Verifier(shape)
    case 'W4':
      return new W4Verifier(shape)
    case 'W5':
      return new W5Verifier(shape)
    case 'W6':
      return new FinalCountVerifier('W6', expectedW6Counts(shape), groupName)
  }
}

abstract class Base implements Verifier {
  lastTimestamp = 0
  records = 0
  problem: string | undefined
  add(r: ReadRecord): void {
    this.records++
    if (r.timestamp > this.lastTimestamp) this.lastTimestamp = r.timestamp
    if (this.problem === undefined) this.check(r)
  }
  protected fail(message: string): void {
    if (this.problem === undefined) this.problem = message
  }
  protected abstract check(r: ReadRecord): void
  abstract verdict(): Verdict
  /** A verdict from a record count with an exact expectation. */
  protected byCount(expected: number, what: string): Verdict {
    if (this.problem !== undefined) return { status: 'wrong', records: this.records, message: this.problem }
    if (this.records < expected) return { status: 'incomplete', records: this.records, message: `${this.records}/${expected} ${what}` }
    if (this.records > expected) return { status: 'wrong', records: this.records, message: `${this.records} ${what}, expected ${expected}` }
    return { status: 'ok', records: this.records }
  }
}

/** W0b/W0c: every input record exactly once (count and sum of record indexes). */
class PipeVerifier extends Base {
  private seqSum = 0
  constructor(private readonly shape: DatasetShape) {
    super()
  }
  protected check(r: ReadRecord): void {
    this.seqSum += seqOf(r.value!.toString('latin1'))
  }
  verdict(): Verdict {
    const v = this.byCount(this.shape.records, 'records piped')
    const n = this.shape.records
    if (v.status === 'ok' && this.seqSum !== (n * (n - 1)) / 2) {
      return { status: 'wrong', records: this.records, message: 'piped records are not the input records (index sum differs)' }
    }
    return v
  }
}

/** W1: the kept records, upper-cased, each once. */
class W1Verifier extends Base {
  private seqSum = 0
  private expectedSum = 0
  constructor(private readonly shape: DatasetShape) {
    super()
    for (let i = 0; i < shape.records; i++) if (w1Keeps(i)) this.expectedSum += i
  }
  protected check(r: ReadRecord): void {
    const value = r.value?.toString('latin1') ?? ''
    const seq = seqOf(value)
    if (!w1Keeps(seq)) return this.fail(`record ${seq} should have been filtered out`)
    if (value !== valueOf(seq, this.shape.keys).toUpperCase()) return this.fail(`record ${seq}: value not mapped as expected`)
    this.seqSum += seq
  }
  verdict(): Verdict {
    const v = this.byCount(expectedW1Count(this.shape.records), 'records out of the filter')
    if (v.status === 'ok' && this.seqSum !== this.expectedSum) {
      return { status: 'wrong', records: this.records, message: 'output records are not the kept input records' }
    }
    return v
  }
}

/** Decodes Kafka's 8-byte big-endian long. */
function longOf(value: Buffer | null): number {
  if (!value || value.length !== 8) return Number.NaN
  return Number(value.readBigInt64BE(0))
}

/** W2/W6: the last update of every key equals its expected final count. */
class FinalCountVerifier extends Base {
  private readonly last: Float64Array
  constructor(
    private readonly name: string,
    private readonly expected: Uint32Array,
    private readonly keyOf: (n: number) => string,
  ) {
    super()
    this.last = new Float64Array(expected.length)
  }
  protected check(r: ReadRecord): void {
    const key = r.key?.toString('latin1') ?? ''
    const index = Number.parseInt(key.slice(1), 10)
    if (!(index >= 0 && index < this.expected.length) || this.keyOf(index) !== key)
      return this.fail(`unexpected key ${JSON.stringify(key)}`)
    const count = longOf(r.value)
    if (!Number.isFinite(count)) return this.fail(`key ${key}: value is not an 8-byte long`)
    this.last[index] = count
  }
  verdict(): Verdict {
    if (this.problem !== undefined) return { status: 'wrong', records: this.records, message: this.problem }
    let missing = 0
    let firstMissing = ''
    for (let i = 0; i < this.expected.length; i++) {
      const want = this.expected[i]!
      const got = this.last[i]!
      if (got > want)
        return { status: 'wrong', records: this.records, message: `${this.name}: ${this.keyOf(i)} counted ${got}, expected ${want}` }
      if (got < want) {
        if (missing === 0) firstMissing = `${this.keyOf(i)} at ${got}/${want}`
        missing++
      }
    }
    if (missing > 0)
      return { status: 'incomplete', records: this.records, message: `${missing} keys short of their final count (e.g. ${firstMissing})` }
    return { status: 'ok', records: this.records }
  }
}

/** W3: the last update of every (key, window) equals its expected count. */
class W3Verifier extends Base {
  private readonly last = new Map<string, number>()
  private readonly expected: Map<string, number>
  constructor(shape: DatasetShape) {
    super()
    this.expected = expectedW3Counts(shape)
  }
  protected check(r: ReadRecord): void {
    const key = r.key?.toString('latin1') ?? ''
    if (!this.expected.has(key)) return this.fail(`unexpected window key ${JSON.stringify(key)}`)
    const count = longOf(r.value)
    if (!Number.isFinite(count)) return this.fail(`${key}: value is not an 8-byte long`)
    this.last.set(key, count)
  }
  verdict(): Verdict {
    if (this.problem !== undefined) return { status: 'wrong', records: this.records, message: this.problem }
    let missing = 0
    for (const [key, want] of this.expected) {
      const got = this.last.get(key) ?? 0
      if (got > want) return { status: 'wrong', records: this.records, message: `W3: ${key} counted ${got}, expected ${want}` }
      if (got < want) missing++
    }
    if (missing > 0) return { status: 'incomplete', records: this.records, message: `${missing} windows short of their final count` }
    return { status: 'ok', records: this.records }
  }
}

/** W4: one joined record per stream record whose key is in the table; value = stream half + table half. */
class W4Verifier extends Base {
  constructor(private readonly shape: DatasetShape) {
    super()
  }
  protected check(r: ReadRecord): void {
    const key = r.key?.toString('latin1') ?? ''
    const value = r.value?.toString('latin1') ?? ''
    const seq = seqOf(value)
    const keyIndex = seq % this.shape.keys
    if (key !== keyName(keyIndex)) return this.fail(`joined record ${seq} has key ${key}`)
    if (value.length !== 100 || seqOf(value.slice(50)) !== keyIndex)
      return this.fail(`joined record ${seq}: table half does not belong to ${key}`)
  }
  verdict(): Verdict {
    return this.byCount(expectedW4Count(this.shape), 'joined records')
  }
}

/** W5: one joined record per (left, right) pair within the window; both halves of the same index. */
class W5Verifier extends Base {
  constructor(private readonly shape: DatasetShape) {
    super()
  }
  protected check(r: ReadRecord): void {
    const value = r.value?.toString('latin1') ?? ''
    const left = seqOf(value)
    const right = seqOf(value.slice(50))
    if (value.length !== 100 || left % this.shape.keys !== right % this.shape.keys)
      return this.fail(`joined ${left} with ${right}: keys differ`)
  }
  verdict(): Verdict {
    return this.byCount(expectedW5Count(this.shape), 'joined pairs')
  }
}
