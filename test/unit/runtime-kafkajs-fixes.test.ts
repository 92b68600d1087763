/**
 * The kafkajs read_committed fix (lib/app/kafkajs-fixes.ts): records of aborted transactions are
 * dropped whatever the order of the fetch response's aborted-transaction list.
 */
import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import { markAbortedRecords, type FetchedPartitionData } from '../../lib/app/kafkajs-fixes.js'

const require = createRequire(import.meta.url)
const Batch = require('kafkajs/src/consumer/batch.js') as new (
  topic: string,
  fetchedOffset: string,
  pd: unknown,
) => { messages: Array<{ offset: string }>; lastOffset(): string }

const COMMIT = Buffer.from([0, 0, 0, 1])
const ABORT = Buffer.from([0, 0, 0, 0])

/** Records `[offset, producerId, kind]`: 'd' transactional data, 'p' plain data, 'A'/'C' abort/commit marker. */
function partitionData(
  records: Array<[number, string, 'd' | 'p' | 'A' | 'C']>,
  aborted: Array<[string, number]>,
): FetchedPartitionData & Record<string, unknown> {
  return {
    partition: 0,
    highWatermark: String(records.length),
    abortedTransactions: aborted.map(([producerId, first]) => ({ producerId, firstOffset: String(first) })),
    messages: records.map(([offset, producerId, kind]) => ({
      offset: String(offset),
      key: kind === 'A' ? ABORT : kind === 'C' ? COMMIT : Buffer.from(`k${offset}`),
      value: Buffer.from(`v${offset}`),
      isControlRecord: kind === 'A' || kind === 'C',
      batchContext: { producerId: kind === 'p' ? '-1' : producerId, inTransaction: kind !== 'p' },
    })),
  }
}

// The layout seen on a repartition topic after a kill -9: producer 5968's transaction starts at
// 138 and 5963's at 142, 5963's is aborted first, so the broker lists 5963@142 before 5968@138.
const layout: Array<[number, string, 'd' | 'p' | 'A' | 'C']> = [
  [136, '7', 'd'],
  [137, '7', 'C'],
  [138, '5968', 'd'],
  [139, '5968', 'd'],
  [140, '5968', 'd'],
  [141, '5968', 'd'],
  [142, '5963', 'd'],
  [143, '5963', 'd'],
  [144, '5963', 'A'],
  [145, '5968', 'A'],
  [146, '8', 'd'],
  [147, '8', 'C'],
  [148, '5968', 'd'], // a later, committed transaction of the same producer (new epoch)
  [149, '5968', 'C'],
  [150, '-1', 'p'],
]
const committed = ['136', '146', '148', '150']

describe('read_committed with an unsorted aborted-transaction list', () => {
  it('kafkajs alone returns records of an aborted transaction (the bug)', () => {
    const b = new Batch(
      't',
      '136',
      partitionData(layout, [
        ['5963', 142],
        ['5968', 138],
      ]),
    )
    expect(b.messages.map((m) => m.offset)).toEqual(['136', '138', '139', '140', '141', '146', '148', '150'])
  })

  it('after markAbortedRecords only committed records remain, and the batch still ends at its last offset', () => {
    const pd = partitionData(layout, [
      ['5963', 142],
      ['5968', 138],
    ])
    expect(markAbortedRecords(pd)).toBe(6)
    const b = new Batch('t', '136', pd)
    expect(b.messages.map((m) => m.offset)).toEqual(committed)
    expect(b.lastOffset()).toBe('150')
  })

  it('handles a fetch starting inside aborted transactions, and a response cut before the abort markers', () => {
    const from140 = partitionData(
      layout.filter(([o]) => o >= 140),
      [
        ['5963', 142],
        ['5968', 138],
      ],
    )
    markAbortedRecords(from140)
    expect(new Batch('t', '140', from140).messages.map((m) => m.offset)).toEqual(['146', '148', '150'])
    const cut = partitionData(
      layout.filter(([o]) => o <= 143),
      [
        ['5968', 138],
        ['5963', 142],
      ],
    )
    markAbortedRecords(cut)
    const b = new Batch('t', '136', cut)
    expect(b.messages.map((m) => m.offset)).toEqual(['136'])
    expect(b.lastOffset()).toBe('143')
  })

  it('leaves data without aborted transactions alone', () => {
    const pd = partitionData(
      layout.filter(([, p]) => p !== '5963' && p !== '5968'),
      [],
    )
    expect(markAbortedRecords(pd)).toBe(0)
    expect(new Batch('t', '136', pd).messages.map((m) => m.offset)).toEqual(['136', '146', '150'])
  })
})
