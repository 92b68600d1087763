/**
 * The benchmark harness's own logic (no broker): the deterministic data, the expected results,
 * the output verifiers (a benchmark must never report speed on wrong output), the command line
 * and the report. Speed itself is never asserted.
 */
import { describe, expect, it } from 'vitest'
import {
  expectedW1Count,
  expectedW2Counts,
  expectedW3Counts,
  expectedW4Count,
  expectedW5Count,
  expectedW6Counts,
  groupIndex,
  groupName,
  keyName,
  orderedTs,
  seqOf,
  shuffledTs,
  valueOf,
  w1Keeps,
  w4TableHas,
  W3_GRACE_MS,
  W3_JITTER_MS,
  W3_WINDOW_MS,
  W5_RIGHT_OFFSET_MS,
  W5_WINDOW_MS,
  type DatasetShape,
} from '../../bench/lib/data.js'
import { verifierFor } from '../../bench/lib/verify.js'
import type { ReadRecord } from '../../bench/lib/kafka.js'
import { buildCases, parseOptions } from '../../bench/lib/plan.js'
import { chartSvg, markdown, median, summarize, svgToPng, type BenchReport, type CaseResult } from '../../bench/lib/report.js'

const shape: DatasetShape = { records: 2_000, keys: 150, baseTs: 1_700_000_000_000 }

const rec = (key: string | null, value: string | Buffer | null, timestamp = 1): ReadRecord => ({
  key: key === null ? null : Buffer.from(key),
  value: value === null ? null : typeof value === 'string' ? Buffer.from(value) : value,
  timestamp,
  partition: 0,
})
const long = (n: number) => {
  const b = Buffer.alloc(8)
  b.writeBigInt64BE(BigInt(n))
  return b
}

describe('bench data', () => {
  it('makes 8-byte keys and 100-byte values that carry their index and group', () => {
    for (const i of [0, 1, 37, 999, 12_345, 1_999_999]) {
      const v = valueOf(i, 1_000_000)
      expect(Buffer.byteLength(v)).toBe(100)
      expect(seqOf(v)).toBe(i)
      expect(v.slice(11, 19)).toBe(groupName(groupIndex(i, 1_000_000)))
    }
    expect(keyName(42)).toBe('k0000042')
    expect(Buffer.byteLength(keyName(999_999))).toBe(8)
  })

  it('keeps W3 disorder within the grace period, so no record is late', () => {
    let maxSeen = Number.NEGATIVE_INFINITY
    let worstLateness = 0
    for (let i = 0; i < shape.records; i++) {
      const ts = shuffledTs(shape, i)
      expect(Math.abs(ts - orderedTs(shape, i))).toBeLessThanOrEqual(W3_JITTER_MS)
      maxSeen = Math.max(maxSeen, ts)
      worstLateness = Math.max(worstLateness, maxSeen - ts)
    }
    expect(worstLateness).toBeGreaterThan(0) // it really is shuffled
    expect(worstLateness).toBeLessThan(W3_GRACE_MS)
  })

  it('computes the W5 pair count the same way as a brute-force nested loop', () => {
    const small: DatasetShape = { records: 600, keys: 7, baseTs: 0 }
    let brute = 0
    for (let i = 0; i < small.records; i++) {
      for (let j = 0; j < small.records; j++) {
        if (i % small.keys !== j % small.keys) continue
        const d = orderedTs(small, i) - (orderedTs(small, j) + W5_RIGHT_OFFSET_MS)
        if (Math.abs(d) <= W5_WINDOW_MS) brute++
      }
    }
    expect(expectedW5Count(small)).toBe(brute)
    expect(brute).toBeGreaterThan(small.records) // several matches per record with 7 keys
  })

  it('sums the expected counts to the input size', () => {
    const sum = (xs: Iterable<number>) => [...xs].reduce((a, b) => a + b, 0)
    expect(sum(expectedW2Counts(shape))).toBe(shape.records)
    expect(sum(expectedW6Counts(shape))).toBe(shape.records)
    const w3 = expectedW3Counts(shape)
    expect(sum(w3.values())).toBe(shape.records)
    for (const k of w3.keys()) expect(Number(k.split('@')[1]) % W3_WINDOW_MS).toBe(0)
    let kept = 0
    for (let i = 0; i < shape.records; i++) if (w1Keeps(i)) kept++
    expect(expectedW1Count(shape.records)).toBe(kept)
    let matched = 0
    for (let i = 0; i < shape.records; i++) if (w4TableHas(i % shape.keys)) matched++
    expect(expectedW4Count(shape)).toBe(matched)
  })
})

describe('bench verifiers', () => {
  /** The exact W1 output. */
  const w1Output = () => {
    const out: ReadRecord[] = []
    for (let i = 0; i < shape.records; i++)
      if (w1Keeps(i)) out.push(rec(keyName(i % shape.keys), valueOf(i, shape.keys).toUpperCase(), 1000 + i))
    return out
  }

  it('accepts the exact W1 output and reports the last timestamp', () => {
    const v = verifierFor('W1', shape)
    for (const r of w1Output()) v.add(r)
    expect(v.verdict()).toEqual({ status: 'ok', records: expectedW1Count(shape.records) })
    expect(v.lastTimestamp).toBe(1000 + shape.records - 1)
  })

  it('calls W1 output with a missing record incomplete, and with a duplicate or a wrong value wrong', () => {
    const missing = verifierFor('W1', shape)
    w1Output()
      .slice(1)
      .forEach((r) => missing.add(r))
    expect(missing.verdict().status).toBe('incomplete')

    const duplicate = verifierFor('W1', shape)
    const out = w1Output()
    ;[...out, out[3]!].forEach((r) => duplicate.add(r))
    expect(duplicate.verdict().status).toBe('wrong')

    const unmapped = verifierFor('W1', shape)
    out.forEach((r, n) => unmapped.add(n === 10 ? rec(null, r.value!.toString().toLowerCase()) : r))
    expect(unmapped.verdict()).toMatchObject({ status: 'wrong', message: expect.stringContaining('not mapped') })

    const unfiltered = verifierFor('W1', shape)
    ;[...out.slice(1), rec(keyName(0), valueOf(4, shape.keys).toUpperCase())].forEach((r) => unfiltered.add(r))
    expect(unfiltered.verdict()).toMatchObject({ status: 'wrong', message: expect.stringContaining('filtered out') })
  })

  it('judges W2 by the last update per key: intermediate updates are fine, over-counting is wrong', () => {
    const expected = expectedW2Counts(shape)
    const ok = verifierFor('W2', shape)
    const running = new Uint32Array(shape.keys)
    for (let i = 0; i < shape.records; i++) {
      const k = i % shape.keys
      running[k]!++
      if (i % 3 === 0 || running[k] === expected[k]) ok.add(rec(keyName(k), long(running[k]!)))
    }
    expect(ok.verdict().status).toBe('ok')

    const short = verifierFor('W2', shape)
    for (let k = 0; k < shape.keys; k++) short.add(rec(keyName(k), long(expected[k]! - (k === 5 ? 1 : 0))))
    expect(short.verdict()).toMatchObject({ status: 'incomplete', message: expect.stringContaining('1 keys') })

    const over = verifierFor('W2', shape)
    for (let k = 0; k < shape.keys; k++) over.add(rec(keyName(k), long(expected[k]! + (k === 7 ? 1 : 0))))
    expect(over.verdict()).toMatchObject({ status: 'wrong', message: expect.stringContaining(keyName(7)) })

    const badValue = verifierFor('W2', shape)
    badValue.add(rec(keyName(1), Buffer.from('1234')))
    expect(badValue.verdict().status).toBe('wrong')
  })

  it('checks W6 per group and W3 per window', () => {
    const w6 = verifierFor('W6', shape)
    expectedW6Counts(shape).forEach((n, g) => w6.add(rec(groupName(g), long(n))))
    expect(w6.verdict().status).toBe('ok')

    const w3 = verifierFor('W3', shape)
    const windows = [...expectedW3Counts(shape)]
    windows.forEach(([k, n]) => w3.add(rec(k, long(n))))
    expect(w3.verdict().status).toBe('ok')
    const w3short = verifierFor('W3', shape)
    windows.slice(1).forEach(([k, n]) => w3short.add(rec(k, long(n))))
    expect(w3short.verdict().status).toBe('incomplete')
    const w3stranger = verifierFor('W3', shape)
    w3stranger.add(rec(`${keyName(0)}@123`, long(1)))
    expect(w3stranger.verdict().status).toBe('wrong')
  })

  it('checks join output: W4 table half must belong to the key, W5 halves must share the key', () => {
    const w4 = verifierFor('W4', shape)
    for (let i = 0; i < shape.records; i++) {
      const k = i % shape.keys
      if (w4TableHas(k)) w4.add(rec(keyName(k), valueOf(i, shape.keys).slice(0, 50) + valueOf(k, shape.keys).slice(0, 50)))
    }
    expect(w4.verdict().status).toBe('ok')
    const w4bad = verifierFor('W4', shape)
    w4bad.add(rec(keyName(1), valueOf(1, shape.keys).slice(0, 50) + valueOf(2, shape.keys).slice(0, 50)))
    expect(w4bad.verdict().status).toBe('wrong')

    const w5bad = verifierFor('W5', shape)
    w5bad.add(rec(keyName(1), valueOf(1, shape.keys).slice(0, 50) + valueOf(2, shape.keys).slice(0, 50)))
    expect(w5bad.verdict().status).toBe('wrong')
  })

  it('checks the raw pipe by count and by the sum of record indexes', () => {
    const ok = verifierFor('W0b', shape)
    for (let i = 0; i < shape.records; i++) ok.add(rec(keyName(i % shape.keys), valueOf(i, shape.keys)))
    expect(ok.verdict().status).toBe('ok')
    const swapped = verifierFor('W0b', shape)
    for (let i = 0; i < shape.records; i++) swapped.add(rec(null, valueOf(i === 0 ? 1 : i, shape.keys)))
    expect(swapped.verdict().status).toBe('wrong')
  })
})

describe('bench command line and report', () => {
  it('expands workloads and builds the matrix', () => {
    const o = parseOptions(['W0,W2', '--runs', '2', '--impl', 'raw,java', '--large-records', '0'])
    expect(o.runs).toBe(2)
    expect(buildCases(o).map((c) => c.id)).toEqual([
      'w0a-raw',
      'w0b-raw',
      'w0c-raw-100ms',
      'w0c-raw-1000ms',
      'w0d-raw',
      'w2-java-alos',
      'w2-java-eos',
    ])
    const all = buildCases(parseOptions(['all']))
    expect(all.filter((c) => c.workload === 'W7').map((c) => c.id)).toEqual(['w7-kstreams-alos-large', 'w7-kstreams-eos-large'])
    expect(all.some((c) => c.id === 'w2-kstreams-eos-large')).toBe(true)
  })

  it('runs kstreams cases once per metrics recording level (Java keeps its default)', () => {
    const o = parseOptions([
      'W1,W2',
      '--impl',
      'kstreams,java',
      '--guarantee',
      'alos',
      '--large-records',
      '0',
      '--metrics-level',
      'info,DEBUG',
    ])
    expect(o.metricsLevels).toEqual(['INFO', 'DEBUG'])
    const cases = buildCases(o)
    expect(cases.map((c) => c.id)).toEqual([
      'w1-kstreams-alos',
      'w1-kstreams-alos-debug',
      'w1-java-alos',
      'w2-kstreams-alos',
      'w2-kstreams-alos-debug',
      'w2-java-alos',
    ])
    expect(cases.find((c) => c.id === 'w2-kstreams-alos-debug')).toMatchObject({
      metricsLevel: 'DEBUG',
      label: 'W2 · kstreams · alos · metrics DEBUG',
    })
    expect(cases.find((c) => c.id === 'w1-java-alos')?.metricsLevel).toBeUndefined()
    // The default keeps the ids of earlier runs.
    expect(buildCases(parseOptions(['W1', '--impl', 'kstreams', '--guarantee', 'eos'])).map((c) => [c.id, c.metricsLevel])).toEqual([
      ['w1-kstreams-eos', 'INFO'],
    ])
    expect(() => parseOptions(['W1', '--metrics-level', 'OFF'])).toThrow(/--metrics-level: unknown "OFF"/)
  })

  it('rejects unknown workloads and bad numbers', () => {
    expect(() => parseOptions(['W9'])).toThrow(/unknown workload "W9"/)
    expect(() => parseOptions(['W1', '--runs', '0'])).toThrow(/--runs needs an integer/)
    expect(() => parseOptions(['W1', '--impl', 'python'])).toThrow(/unknown "python"/)
    expect(() => parseOptions([])).toThrow(/usage/)
  })

  it('takes medians over verified runs only and marks missed targets', async () => {
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 2, 3])).toBe(2.5)
    expect(median([])).toBeUndefined()
    const c: CaseResult = {
      id: 'w1-kstreams-alos',
      workload: 'W1',
      impl: 'kstreams',
      guarantee: 'alos',
      dataset: 'small',
      keys: 10,
      label: 'W1 · kstreams · alos',
      runs: [
        { run: 1, ok: true, inputRecords: 10, recordsPerSec: 100 },
        { run: 2, ok: false, inputRecords: 10, recordsPerSec: 1e9, error: 'wrong output: x' },
        { run: 3, ok: true, inputRecords: 10, recordsPerSec: 300 },
      ],
    }
    summarize(c)
    expect(c.median?.recordsPerSec).toBe(200)
    const report: BenchReport = {
      startedAt: '2025-01-01T00:00:00.000Z',
      finishedAt: '2025-01-01T00:01:00.000Z',
      durationMs: 60_000,
      machine: { cpus: 2 },
      config: { runs: 3 },
      preload: [],
      cases: [c],
      latency: [{ id: c.id, label: c.label, offeredRate: 100, achievedRate: 99, received: 500, p50Ms: 3, p99Ms: 9, p999Ms: 12, maxMs: 15 }],
      ratios: [{ name: 'W1/W0b (kstreams alos)', value: 0.5, target: 0.9 }],
    }
    const md = markdown(report)
    expect(md).toContain('| W1 · kstreams · alos | 2/3 (wrong output: x) | 200 |')
    expect(md).toContain('| W1/W0b (kstreams alos) | 0.50 | ≥ 0.9 | **missed** |')
    const svg = await chartSvg(report)
    expect(svg.startsWith('<svg')).toBe(true)
    expect(svg).toContain('W1')
    expect(svgToPng(svg).subarray(0, 4)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47]))
  })
})
