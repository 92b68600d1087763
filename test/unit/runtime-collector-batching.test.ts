/**
 * TaskRecordCollector batch sizes: a batch never grows past `flushBytes` because of the record that
 * closes it (kafkajs writes a batch's records for one partition as ONE record batch, which the
 * broker refuses over `message.max.bytes`, default 1048588 bytes).
 */
import { describe, expect, it } from 'vitest'
import type { TopicMessages } from 'kafkajs'
import { TaskRecordCollector } from '../../lib/app/record-collector.js'

function collector(flushBytes?: number) {
  const batches: TopicMessages[][] = []
  const c = new TaskRecordCollector({
    taskId: '0_0',
    flushBytes,
    sender: () => async (tms) => {
      batches.push(tms)
      return []
    },
    onSendError: async (e) => {
      throw e
    },
  })
  const valueBytes = (b: TopicMessages[]) => b.flatMap((t) => t.messages).reduce((n, m) => n + (m.value as Buffer).length, 0)
  const values = (b: TopicMessages[]) => b.flatMap((t) => t.messages).map((m) => (m.value as Buffer).toString('utf8', 0, 4))
  return { c, batches, valueBytes, values }
}

describe('TaskRecordCollector batch size', () => {
  it('starts a batch before a record would push it over flushBytes, keeping the order', async () => {
    const { c, batches, values } = collector(1000)
    for (let i = 0; i < 7; i++)
      c.send({ topic: 'cl', partition: 0, key: null, value: Buffer.from(`v${i}`.padEnd(300, '.')), timestamp: 0, headers: {} })
    await c.flush()
    // 300 bytes + overhead each: two fit in 1000, a third would not
    expect(batches.map(values)).toEqual([['v0..', 'v1..'], ['v2..', 'v3..'], ['v4..', 'v5..'], ['v6..']])
  })

  it('header bytes count', async () => {
    const { c, batches } = collector(1000)
    for (let i = 0; i < 4; i++) c.send({ topic: 'cl', key: null, value: Buffer.alloc(100), timestamp: 0, headers: { h: 'x'.repeat(300) } })
    await c.flush()
    expect(batches.map((b) => b[0]!.messages.length)).toEqual([2, 2])
  })

  it('a record larger than flushBytes goes alone', async () => {
    const { c, batches, valueBytes } = collector(1000)
    c.send({ topic: 'cl', key: null, value: Buffer.alloc(10), timestamp: 0, headers: {} })
    c.send({ topic: 'cl', key: null, value: Buffer.alloc(5000), timestamp: 0, headers: {} })
    c.send({ topic: 'cl', key: null, value: Buffer.alloc(10), timestamp: 0, headers: {} })
    await c.flush()
    expect(batches.map(valueBytes)).toEqual([10, 5000, 10])
  })

  it('by default, batches of 10 KB records into one partition stay well under the broker default message.max.bytes (1048588)', async () => {
    const { c, batches, valueBytes } = collector()
    for (let i = 0; i < 300; i++)
      c.send({ topic: 'cl', partition: 0, key: Buffer.from(`k${i}`), value: Buffer.alloc(10_000), timestamp: 0, headers: {} })
    await c.flush()
    expect(batches.reduce((n, b) => n + b[0]!.messages.length, 0)).toBe(300)
    for (const b of batches) expect(valueBytes(b)).toBeLessThanOrEqual(512 * 1024)
    expect(batches.length).toBeGreaterThan(5)
  })
})
