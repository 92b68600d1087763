import { createRequire } from 'node:module'
import kafkajs from 'kafkajs'
import type { RecordMetadata, TopicMessages } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { PartitionSender } from '../../lib/app/client/partition-send.js'

const { Partitioners } = kafkajs
const require = createRequire(import.meta.url)

/** A fake kafkajs send: records every call, answers after `delayMs`, fails calls `failIf` picks. */
function fakeSend(options: { delayMs?: number; failIf?: (tm: TopicMessages) => boolean } = {}) {
  const calls: Array<{ topic: string; partitions: number[]; values: string[]; start: number; end: number }> = []
  let inFlight = 0
  let maxInFlight = 0
  let clock = 0
  const send = async (topicMessages: TopicMessages[]): Promise<RecordMetadata[]> => {
    expect(topicMessages).toHaveLength(1)
    const tm = topicMessages[0]!
    const call = {
      topic: tm.topic,
      partitions: [...new Set(tm.messages.map((m) => m.partition as number))],
      values: tm.messages.map((m) => String(m.value)),
      start: clock++,
      end: -1,
    }
    calls.push(call)
    inFlight++
    maxInFlight = Math.max(maxInFlight, inFlight)
    await new Promise((r) => setTimeout(r, options.delayMs ?? 2))
    inFlight--
    call.end = clock++
    if (options.failIf?.(tm))
      throw Object.assign(new Error('leader moved'), { name: 'KafkaJSProtocolError', type: 'NOT_LEADER_FOR_PARTITION', retriable: true })
    return [{ topicName: tm.topic, partition: call.partitions[0]!, errorCode: 0, baseOffset: '0' }]
  }
  return { send, calls, inFlight: () => inFlight, maxInFlight: () => maxInFlight }
}

const msgs = (topic: string, list: Array<{ key?: string; value: string; partition?: number }>): TopicMessages => ({
  topic,
  messages: list.map((m) => ({ key: m.key ?? null, value: m.value, partition: m.partition })),
})

describe('PartitionSender: one kafkajs send per topic-partition', () => {
  it('splits a batch by topic-partition, keeps each partition in order, and partitions keyed records as kafkajs would', async () => {
    const f = fakeSend()
    const sender = new PartitionSender({ partitionsFor: () => 6, transactional: false })
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`)
    const batch = [
      msgs(
        'out',
        keys.map((k, i) => ({ key: k, value: `${k}:${i}` })),
      ),
      msgs('app-store-changelog', [
        { key: 'a', value: 'c1', partition: 2 },
        { key: 'b', value: 'c2', partition: 2 },
      ]),
    ]
    const results = await sender.send(f.send, batch)

    const expected = Partitioners.DefaultPartitioner()
    const meta = Array.from({ length: 6 }, (_, partitionId) => ({ partitionId, leader: 0, partitionErrorCode: 0, replicas: [], isr: [] }))
    for (const c of f.calls) expect(c.partitions).toHaveLength(1)
    for (const k of keys) {
      const p = expected({ topic: 'out', partitionMetadata: meta, message: { key: k, value: '' } })
      const call = f.calls.find((c) => c.topic === 'out' && c.values.some((v) => v.startsWith(`${k}:`)))!
      expect(call.partitions).toEqual([p])
    }
    // order inside a partition is the batch's order
    for (const c of f.calls.filter((x) => x.topic === 'out')) {
      const seq = c.values.map((v) => Number(v.split(':')[1]))
      expect(seq).toEqual([...seq].sort((a, b) => a - b))
    }
    expect(f.calls.find((c) => c.topic === 'app-store-changelog')!.values).toEqual(['c1', 'c2'])
    expect(results).toHaveLength(f.calls.length)
    // not transactional: the partitions go out concurrently
    expect(f.maxInFlight()).toBeGreaterThan(1)
  })

  it('in a transaction, sends partitions new to the transaction one at a time, then known ones concurrently; again one at a time after endTransaction', async () => {
    const f = fakeSend()
    const sender = new PartitionSender({ partitionsFor: () => 4, transactional: true })
    const batch = [
      msgs(
        't',
        [0, 1, 2, 3].map((p) => ({ value: `v${p}`, partition: p })),
      ),
    ]
    await sender.send(f.send, batch)
    expect(f.maxInFlight()).toBe(1)
    const first = f.calls.splice(0)
    for (let i = 1; i < first.length; i++) expect(first[i]!.start).toBeGreaterThan(first[i - 1]!.end)

    await sender.send(f.send, batch)
    expect(f.maxInFlight()).toBeGreaterThan(1)

    sender.endTransaction()
    const g = fakeSend()
    await sender.send(g.send, batch)
    expect(g.maxInFlight()).toBe(1)
  })

  it('a failed partition fails the whole send only after every other send settled, and nothing is sent twice', async () => {
    const f = fakeSend({ delayMs: 5, failIf: (tm) => tm.messages[0]!.partition === 1 })
    const sender = new PartitionSender({ partitionsFor: () => 3, transactional: false })
    const batch = [
      msgs(
        't',
        [0, 1, 2].map((p) => ({ value: `v${p}`, partition: p })),
      ),
    ]
    await expect(sender.send(f.send, batch)).rejects.toMatchObject({ type: 'NOT_LEADER_FOR_PARTITION' })
    expect(f.inFlight()).toBe(0)
    expect(f.calls.map((c) => c.partitions[0]).sort()).toEqual([0, 1, 2])
  })

  it('a topic whose partition count is unknown is left to kafkajs in one send', async () => {
    const f = fakeSend()
    const sender = new PartitionSender({ partitionsFor: () => undefined, transactional: false })
    await sender.send(f.send, [
      msgs('dyn', [
        { key: 'a', value: '1' },
        { key: 'b', value: '2' },
      ]),
    ])
    expect(f.calls).toHaveLength(1)
    expect(f.calls[0]!.values).toEqual(['1', '2'])
  })

  it('with linearGrouping, kafkajs groups each sent partition in one partitioner call and gets the same groups', async () => {
    const groupMessagesPerPartition = require('kafkajs/src/producer/groupMessagesPerPartition.js') as (
      a: object,
    ) => Record<string, unknown[]>
    const partitioner = Partitioners.DefaultPartitioner()
    const meta = Array.from({ length: 4 }, (_, partitionId) => ({ partitionId, leader: 0, partitionErrorCode: 0, replicas: [], isr: [] }))
    const grouped: Array<{ calls: number; groups: Record<string, number> }> = []
    const send = async (topicMessages: TopicMessages[]): Promise<RecordMetadata[]> => {
      const tm = topicMessages[0]!
      let calls = 0
      const counting = (a: Parameters<typeof partitioner>[0]) => {
        calls++
        return partitioner(a)
      }
      const g = groupMessagesPerPartition({ topic: tm.topic, partitionMetadata: meta, messages: tm.messages, partitioner: counting })
      grouped.push({ calls, groups: Object.fromEntries(Object.entries(g).map(([p, l]) => [p, l.length])) })
      return [{ topicName: tm.topic, partition: Number(Object.keys(g)[0]), errorCode: 0, baseOffset: '0' }]
    }
    const sender = new PartitionSender({ partitionsFor: () => 4, transactional: false, linearGrouping: true })
    const keys = Array.from({ length: 200 }, (_, i) => `key-${i}`)
    await sender.send(send, [
      msgs(
        'out',
        keys.map((k) => ({ key: k, value: k })),
      ),
    ])
    const expected: Record<string, number> = {}
    for (const k of keys) {
      const p = partitioner({ topic: 'out', partitionMetadata: meta, message: { key: Buffer.from(k), value: null } })
      expected[p] = (expected[p] ?? 0) + 1
    }
    expect(grouped.every((g) => g.calls === 1)).toBe(true)
    expect(Object.assign({}, ...grouped.map((g) => g.groups))).toEqual(expected)
  })
})
