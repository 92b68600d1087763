/**
 * kafkajs' private internals as lib/app/client/kafkajs-internals.ts uses them: their shape (a
 * kafkajs change that moves them fails here, by name), the read_committed fix (records of aborted
 * transactions are dropped whatever the order of the fetch response's aborted-transaction list),
 * and that the fix reaches kstreams' own clients only, never a user's kafkajs clients in the same
 * process.
 */
import { createRequire } from 'node:module'
import kafkajs from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { KafkajsClient } from '../../lib/app/client/kafkajs.js'
import {
  checkKafkajsInternals,
  fixKafkajs,
  markAbortedRecords,
  readCommittedCluster,
  type FetchedPartitionData,
  type KafkajsFetchResponse,
} from '../../lib/app/client/kafkajs-internals.js'

const require = createRequire(import.meta.url)
const Batch = require('kafkajs/src/consumer/batch.js') as new (
  topic: string,
  fetchedOffset: string,
  pd: unknown,
) => { messages: Array<{ offset: string }>; lastOffset(): string }
const Broker = require('kafkajs/src/broker/index.js') as { prototype: { fetch: (request: unknown) => Promise<unknown> } }

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

/** A kafkajs client that never connects (nothing here opens a socket). */
function offlineKafka(): InstanceType<typeof kafkajs.Kafka> {
  return new kafkajs.Kafka({ brokers: ['127.0.0.1:1'], logLevel: kafkajs.logLevel.NOTHING })
}

const CREATE_CLUSTER = 'private:Kafka:createCluster'
type Cluster = { brokerPool: { createBroker(o: object): { fetch(r: object): Promise<KafkajsFetchResponse> } } }

/** Wraps `kafka`'s private cluster factory to hand every cluster it makes (for a consumer, producer, admin) to `seen`. */
function spyClusters(kafka: object, seen: Cluster[]): void {
  const sym = Object.getOwnPropertySymbols(kafka).find((s) => s.description === CREATE_CLUSTER)!
  const holder = kafka as Record<symbol, (o: object) => Cluster>
  const create = holder[sym]!
  holder[sym] = (o) => {
    const c = create(o)
    seen.push(c)
    return c
  }
}

/** A broker of `cluster` (not connected) and what its `fetch` returns for the unsorted layout above. */
async function fetchThrough(cluster: Cluster): Promise<string[]> {
  const broker = cluster.brokerPool.createBroker({
    connectionPool: { connectionTimeout: 1000, host: '127.0.0.1', port: 1 },
    logger: { namespace: () => ({}) },
    nodeId: 0,
  })
  const response = await broker.fetch({ topics: [] })
  const pd = response.responses[0]!.partitions[0]!
  return new Batch('t', '136', pd).messages.map((m) => m.offset)
}

/** Runs `fn` with kafkajs' `Broker.prototype.fetch` answering the unsorted aborted-transaction layout (no network). */
async function withCannedFetch<T>(fn: () => Promise<T>): Promise<T> {
  const original = Broker.prototype.fetch
  Broker.prototype.fetch = async () => ({
    responses: [
      {
        topicName: 't',
        partitions: [
          partitionData(layout, [
            ['5963', 142],
            ['5968', 138],
          ]),
        ],
      },
    ],
  })
  try {
    return await fn()
  } finally {
    Broker.prototype.fetch = original
  }
}

describe('kafkajs internals', () => {
  it('have the shape kstreams relies on (fails by name when a kafkajs upgrade moves them)', () => {
    expect(() => checkKafkajsInternals(offlineKafka())).not.toThrow()
    expect(typeof Broker.prototype.fetch).toBe('function')
  })

  it('a Kafka instance without the private cluster factory is reported loudly', () => {
    const stripped = Object.create(offlineKafka()) as object
    const kafka = offlineKafka()
    const sym = Object.getOwnPropertySymbols(kafka).find((s) => s.description === CREATE_CLUSTER)!
    Object.defineProperty(stripped, sym, { value: undefined })
    expect(() => checkKafkajsInternals(stripped as never)).toThrow(/kafkajs internals changed shape.*private:Kafka:createCluster/)
    expect(() => fixKafkajs(stripped as never)).toThrow(/kafkajs internals changed shape/)
  })

  it("kstreams' own consumer gets the read_committed fix; a user's kafkajs consumer in the same process does not", async () => {
    const protoFetch = Broker.prototype.fetch
    const ours: Cluster[] = []
    const theirs: Cluster[] = []
    const ourKafka = fixKafkajs(offlineKafka())
    spyClusters(ourKafka, ours)
    const userKafka = offlineKafka()
    spyClusters(userKafka, theirs)
    // kstreams' adapter, created in the same process, must not change the user's clients either
    new KafkajsClient({
      config: { brokers: ['127.0.0.1:1'] },
      logger: { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined },
      logLevel: 'nothing',
      partitionsFor: () => undefined,
    })
    ourKafka.consumer({ groupId: 'kstreams-app' })
    userKafka.consumer({ groupId: 'user-app' })
    expect(ours).toHaveLength(1)
    expect(theirs).toHaveLength(1)
    await withCannedFetch(async () => {
      expect(await fetchThrough(ours[0]!)).toEqual(committed)
      // kafkajs' own behaviour (the bug included) for the user's consumer
      expect(await fetchThrough(theirs[0]!)).toEqual(['136', '138', '139', '140', '141', '146', '148', '150'])
    })
    expect(Broker.prototype.fetch).toBe(protoFetch)
  })

  it("the changelog reader's cluster has the fix even on a Kafka instance kstreams did not create", async () => {
    await withCannedFetch(async () => {
      expect(await fetchThrough(readCommittedCluster(offlineKafka()) as unknown as Cluster)).toEqual(committed)
    })
  })
})
