import { createRequire } from 'node:module'
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { crc32c, encodeProduceRequest, fastProduceProblems, singlePartitionMessages } from '../../lib/app/client/kafkajs-produce.js'
import type { ProduceRequestArgs } from '../../lib/app/client/kafkajs-produce.js'

const require = createRequire(import.meta.url)
const kafkajsCrc32C = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (b: Buffer) => number
const ProduceV3 = require('kafkajs/src/protocol/requests/produce/v3/request.js') as (a: object) => {
  encode(): Promise<{ buffer: Buffer }>
}
const groupMessagesPerPartition = require('kafkajs/src/producer/groupMessagesPerPartition.js') as (a: {
  topic: string
  partitionMetadata: unknown[]
  messages: unknown[]
  partitioner: (a: { message: { partition?: number } }) => number
}) => Record<string, unknown[]>

/** kafkajs' own encoding of the same request body (Produce v3; v4–v7 share it). */
async function kafkajsBody(a: ProduceRequestArgs): Promise<Buffer> {
  const e = await ProduceV3({ compression: 0, ...a }).encode()
  return e.buffer
}

describe('kafkajs-produce: the fast produce path writes what kafkajs writes', () => {
  it('crc32c equals kafkajs’ CRC32C on buffers of every alignment', () => {
    for (let n = 0; n < 70; n++) {
      const b = randomBytes(n * 7 + (n % 5))
      expect(crc32c(b)).toBe(kafkajsCrc32C(b))
    }
    const big = randomBytes(100_003)
    expect(crc32c(big, 13, 90_000)).toBe(kafkajsCrc32C(big.subarray(13, 90_000)))
  })

  it('encodes a transactional request byte for byte like kafkajs (keys, null values, headers, several topics and partitions)', async () => {
    const base = 1_733_000_000_000
    const messages = (n: number, p: number) =>
      Array.from({ length: n }, (_, i) => ({
        key: i % 7 === 3 ? null : Buffer.from(`key-${p}-${i}`),
        value: i % 11 === 5 ? null : Buffer.from('v'.repeat((i * 37) % 300) + `ü${i}`),
        timestamp: String(base + ((i * 7919) % 5000)),
        headers: i % 3 === 0 ? { h1: Buffer.from(`x${i}`), 'hé-2': [`a${i}`, Buffer.alloc(0)] } : {},
        partition: p,
      }))
    const args: ProduceRequestArgs = {
      transactionalId: 'app-1_0',
      producerId: '4242',
      producerEpoch: 7,
      acks: -1,
      timeout: 30_000,
      topicData: [
        {
          topic: 'out',
          partitions: [
            { partition: 0, firstSequence: 0, messages: messages(300, 0) },
            { partition: 3, firstSequence: 1_000_000, messages: messages(1, 3) },
          ],
        },
        { topic: 'app-store-changelog', partitions: [{ partition: 1, firstSequence: 12, messages: messages(2_000, 1) }] },
      ],
    }
    expect(encodeProduceRequest(args).equals(await kafkajsBody(args))).toBe(true)
  })

  it('encodes an idempotent (non-transactional) request like kafkajs, including large timestamp deltas', async () => {
    const args: ProduceRequestArgs = {
      producerId: '9007199254740',
      producerEpoch: 0,
      acks: -1,
      timeout: 5_000,
      topicData: [
        {
          topic: 't',
          partitions: [
            {
              partition: 2,
              firstSequence: 5,
              messages: [
                { key: Buffer.from('a'), value: Buffer.from('1'), timestamp: '1000000000000' },
                { key: Buffer.from('b'), value: Buffer.from('2'), timestamp: '1999999999999' },
              ],
            },
          ],
        },
      ],
    }
    expect(encodeProduceRequest(args).equals(await kafkajsBody(args))).toBe(true)
  })

  it('a single-partition array is grouped by kafkajs in one step, and kafkajs’ result is unchanged', () => {
    const make = () => Array.from({ length: 500 }, (_, i) => ({ key: null, value: `v${i}`, partition: 4 }))
    let calls = 0
    const partitioner = ({ message }: { message: { partition?: number } }) => {
      calls++
      return message.partition!
    }
    const plain = groupMessagesPerPartition({ topic: 't', partitionMetadata: [{}], messages: make(), partitioner })
    const plainCalls = calls
    calls = 0
    const fast = groupMessagesPerPartition({
      topic: 't',
      partitionMetadata: [{}],
      messages: singlePartitionMessages(make(), 4),
      partitioner,
    })
    expect(plainCalls).toBe(500)
    expect(calls).toBe(1) // kafkajs still calls reduce on the array it is given
    expect(fast).toEqual(plain)
    expect(Object.keys(fast)).toEqual(['4'])
  })

  it('falls back to the plain reduce when the array is not one partition or the call is not kafkajs’ grouping', () => {
    const mixed = singlePartitionMessages(
      [
        { value: 'a', partition: 1 },
        { value: 'b', partition: 2 },
      ],
      1,
    )
    expect(mixed.reduce((n, m) => n + m.value, '')).toBe('ab')
    const grouped = groupMessagesPerPartition({
      topic: 't',
      partitionMetadata: [{}],
      messages: mixed,
      partitioner: ({ message }) => message.partition!,
    })
    expect(Object.fromEntries(Object.entries(grouped).map(([k, v]) => [k, v.length]))).toEqual({ 1: 1, 2: 1 })
    const same = singlePartitionMessages([{ partition: 0 }, { partition: 0 }], 0)
    expect(same.reduce((n) => n + 1, 0)).toBe(2)
  })

  it('kafkajs’ internals used by the produce path are there', () => {
    expect(fastProduceProblems()).toEqual([])
  })
})
