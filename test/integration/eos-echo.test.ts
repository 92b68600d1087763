/**
 * Exactly-once, scenario 1 (issue 5): echo + running aggregates across two child-process
 * instances, checked by the independent verifier (test/eos/verifier.ts). The verifier's own
 * checks are exercised first on hand-made data, so a verifier that passes everything would fail here.
 */
import { describe, expect, it } from 'vitest'
import { createScenario, finishAndVerify, InputProducer, Instance, report, waitForProgress, eosGuarantees } from '../eos/harness.js'
import {
  checkEcho,
  checkInput,
  checkRegroupedAggregates,
  checkRunningAggregates,
  checkStoreIsCommittedPrefix,
  checkStoreMatchesChangelog,
  type Partitioned,
  type Rec,
} from '../eos/verifier.js'

const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex')
let offset = 0
const rec = (partition: number, key: string, value: string, ts = '1000'): Rec => ({
  partition,
  offset: offset++,
  key,
  value,
  timestamp: ts,
  keyHex: hex(key),
  valueHex: hex(value),
})
const inputOf = (...values: string[][]): Partitioned => values.map((vs, p) => vs.map((v) => rec(p, v.split(':')[0]!, v)))
const aggsOf = (input: Partitioned): Partitioned =>
  input.map((recs, p) => {
    const run = new Map<string, { count: number; sum: number }>()
    return recs.map((r) => {
      const prev = run.get(r.key) ?? { count: 0, sum: 0 }
      const next = { count: prev.count + 1, sum: prev.sum + Number(r.value.split(':')[2]) }
      run.set(r.key, next)
      return rec(p, r.key, JSON.stringify({ ...next, last: r.value }))
    })
  })

describe('exactly-once verifier (hand-made data, no broker)', () => {
  const input = inputOf(['a:0:5', 'b:0:1', 'a:1:7', 'a:2:2'], ['c:0:3', 'c:1:4'])

  it('accepts an exact echo and exact running aggregates', () => {
    expect(checkInput(input)).toEqual([])
    expect(
      checkEcho(
        input,
        input.map((l) => l.map((r) => ({ ...r }))),
      ),
    ).toEqual([])
    expect(checkRunningAggregates(input, aggsOf(input))).toEqual([])
  })

  it('reports input with a gap in a key sequence', () => {
    expect(checkInput(inputOf(['a:0:1', 'a:2:1']))).toEqual([expect.stringContaining('expected 1')])
  })

  it('reports a lost, a duplicated and a reordered echo record', () => {
    const lost = [input[0]!.filter((_, i) => i !== 1), input[1]!]
    expect(checkEcho(input, lost).join('\n')).toMatch(/p0.*3 records for 4/)
    const dup = [[...input[0]!.slice(0, 3), input[0]![2]!, input[0]![3]!], input[1]!]
    expect(checkEcho(input, dup).join('\n')).toMatch(/duplicate of input\[2\]/)
    const reordered = [[input[0]![1]!, input[0]![0]!, ...input[0]!.slice(2)], input[1]!]
    expect(checkEcho(input, reordered).join('\n')).toMatch(/missing or reordered/)
    const retimed = [input[0]!.map((r, i) => (i === 3 ? { ...r, timestamp: '2000' } : r)), input[1]!]
    expect(checkEcho(input, retimed)).not.toEqual([])
  })

  it('reports an aggregate that counted a record twice or skipped one', () => {
    const aggs = aggsOf(input)
    const twice = [aggs[0]!.map((r, i) => (i === 2 ? { ...r, value: JSON.stringify({ count: 3, sum: 19, last: 'a:1:7' }) } : r)), aggs[1]!]
    expect(checkRunningAggregates(input, twice).join('\n')).toMatch(/p0\[2\]/)
    const skipped = [aggs[0]!, aggs[1]!.slice(1)]
    expect(checkRunningAggregates(input, skipped)).not.toEqual([])
  })

  it('reports a re-keyed aggregation with a duplicate, a loss or a reordering', () => {
    // groups by seq % 2: g0 = {a:0, b:0, a:2, c:0}, g1 = {a:1, c:1}
    const g = (key: string, lasts: string[]) => {
      let sum = 0
      return lasts.map((l, i) => rec(0, key, JSON.stringify({ count: i + 1, sum: (sum += Number(l.split(':')[2])), last: l })))
    }
    const ok: Partitioned = [[...g('g0', ['a:0:5', 'c:0:3', 'b:0:1', 'a:2:2']), ...g('g1', ['c:1:4', 'a:1:7'])]]
    expect(checkRegroupedAggregates(input, ok, 2)).toEqual([])
    expect(
      checkRegroupedAggregates(
        input,
        [[...g('g0', ['a:0:5', 'c:0:3', 'b:0:1', 'a:2:2', 'a:2:2']), ...g('g1', ['c:1:4', 'a:1:7'])]],
        2,
      ).join('\n'),
    ).toMatch(/twice/)
    expect(
      checkRegroupedAggregates(input, [[...g('g0', ['a:0:5', 'c:0:3', 'b:0:1']), ...g('g1', ['c:1:4', 'a:1:7'])]], 2).join('\n'),
    ).toMatch(/never aggregated/)
    expect(
      checkRegroupedAggregates(input, [[...g('g0', ['a:2:2', 'c:0:3', 'b:0:1', 'a:0:5']), ...g('g1', ['c:1:4', 'a:1:7'])]], 2).join('\n'),
    ).toMatch(/reordered/)
  })

  it('compares a store with the committed changelog, and a crashed store with its committed prefixes', () => {
    const cl = [rec(0, 'a', 'v1'), rec(0, 'b', 'w1'), rec(0, 'a', 'v2'), rec(0, 'b', 'w2')]
    const store = (entries: Array<[string, string]>) => new Map(entries.map(([k, v]) => [hex(k), hex(v)]))
    expect(
      checkStoreMatchesChangelog(
        's',
        store([
          ['a', 'v2'],
          ['b', 'w2'],
        ]),
        cl,
      ),
    ).toEqual([])
    expect(
      checkStoreMatchesChangelog(
        's',
        store([
          ['a', 'v2'],
          ['b', 'w1'],
        ]),
        cl,
      ),
    ).not.toEqual([])
    const cp = cl[2]!.offset // checkpoint: next offset after a=v1, b=w1
    expect(
      checkStoreIsCommittedPrefix(
        's',
        store([
          ['a', 'v1'],
          ['b', 'w1'],
        ]),
        cl,
        cp,
      ),
    ).toEqual({ problems: [], behind: true })
    expect(
      checkStoreIsCommittedPrefix(
        's',
        store([
          ['a', 'v2'],
          ['b', 'w1'],
        ]),
        cl,
        cp,
      ),
    ).toEqual({ problems: [], behind: true })
    expect(
      checkStoreIsCommittedPrefix(
        's',
        store([
          ['a', 'v2'],
          ['b', 'w2'],
        ]),
        cl,
        cp,
      ),
    ).toEqual({ problems: [], behind: false })
    // a value no committed changelog record has (an aborted transaction's write)
    expect(
      checkStoreIsCommittedPrefix(
        's',
        store([
          ['a', 'v3'],
          ['b', 'w2'],
        ]),
        cl,
        cp,
      ).problems,
    ).not.toEqual([])
    // older than the checkpoint claims
    expect(checkStoreIsCommittedPrefix('s', store([['a', 'v1']]), cl, cp).problems).not.toEqual([])
  })
})

describe.each(eosGuarantees())('exactly-once, scenario 1: echo + running aggregates (%s)', (guarantee) => {
  it(
    'two instances, 4 partitions: the echo equals the input per partition and every aggregate equals the recomputed running aggregate',
    { timeout: 180_000 },
    async () => {
      const s = await createScenario({ guarantee, partitions: 4 })
      const a = await Instance.create('a', s)
      const b = await Instance.create('b', s)
      a.start()
      b.start()
      await Promise.all([a.waitRunning(), b.waitRunning()])
      const input = await new InputProducer(s, { perTick: 12, maxRecords: 2400 }).start()
      await waitForProgress(s, [-1, -1, -1, -1], 60_000)
      await input.finished()
      const r = await finishAndVerify(s, [a, b], input)
      expect(r.exitCodes).toEqual([0, 0])
      expect(r.openTransactions).toEqual([])
      expect(r.problems).toEqual([])
      expect(r.inputRead).toBe(r.produced)
      expect(r.produced).toBe(2400)
      expect(r.echoRead).toBe(2400)
      expect(r.aggRead).toBe(2400)
      expect(r.changelogs).toEqual([`${s.appId}-agg-changelog`])
      report('echo + aggregates', { produced: r.produced, abortedRecords: r.abortedRecords })
    },
  )
})
