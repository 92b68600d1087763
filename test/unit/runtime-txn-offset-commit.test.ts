/**
 * The exactly-once v2 adapter over kafkajs (lib/app/client/txn-offset-commit.ts): the TxnOffsetCommit
 * v3 and OffsetFetch v7 wire format, errors by protocol code, and the per-client kafkajs view that
 * sends v3 with the group metadata (kafkajs' own request lacks it) and reports JoinGroup's generation.
 */
import { Kafka } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { classifyError } from '../../lib/app/error-policy.js'
import {
  decodeOffsetFetchV7,
  decodeTxnOffsetCommitV3,
  encodeOffsetFetchV7,
  encodeTxnOffsetCommitV3,
  kafkaWithGroupMetadata,
  protocolError,
  txnOffsetCommitV3Request,
} from '../../lib/app/client/txn-offset-commit.js'

/** A reader of the flexible encoding, written separately from the module's own. */
function reader(b: Buffer) {
  let o = 0
  const uvarint = () => {
    let r = 0
    let s = 0
    for (;;) {
      const x = b[o++]!
      r += (x & 0x7f) * 2 ** s
      if (!(x & 0x80)) return r
      s += 7
    }
  }
  return {
    uvarint,
    str: () => {
      const n = uvarint()
      if (n === 0) return null
      const s = b.toString('utf8', o, o + n - 1)
      o += n - 1
      return s
    },
    i16: () => ((o += 2), b.readInt16BE(o - 2)),
    i32: () => ((o += 4), b.readInt32BE(o - 4)),
    i64: () => ((o += 8), b.readBigInt64BE(o - 8)),
    bool: () => b[o++] === 1,
    done: () => o === b.length,
  }
}

const GROUP = { groupId: 'app', generationId: 7, memberId: 'm-1', groupInstanceId: null }

describe('TxnOffsetCommit v3 (KIP-447)', () => {
  it('encodes the group generation, member id and instance id with the offsets (flexible: compact strings, tagged fields)', () => {
    const b = encodeTxnOffsetCommitV3({
      transactionalId: 'app-p-1',
      producerId: '4242',
      producerEpoch: 3,
      group: GROUP,
      topics: [{ topic: 'in', partitions: [{ partition: 2, offset: '17', metadata: 'st=5' }] }],
    })
    const r = reader(b)
    expect(r.uvarint()).toBe(0) // request header v2's tagged fields
    expect(r.str()).toBe('app-p-1')
    expect(r.str()).toBe('app')
    expect(r.i64()).toBe(4242n)
    expect(r.i16()).toBe(3)
    expect(r.i32()).toBe(7)
    expect(r.str()).toBe('m-1')
    expect(r.str()).toBeNull()
    expect(r.uvarint()).toBe(2) // one topic
    expect(r.str()).toBe('in')
    expect(r.uvarint()).toBe(2) // one partition
    expect(r.i32()).toBe(2)
    expect(r.i64()).toBe(17n)
    expect(r.i32()).toBe(-1) // leader epoch unknown
    expect(r.str()).toBe('st=5') // metadata (the task's stream-time)
    expect([r.uvarint(), r.uvarint(), r.uvarint()]).toEqual([0, 0, 0]) // partition, topic, request tags
    expect(r.done()).toBe(true)
  })

  /** A v3 response: header tags, throttle, topics [name, partitions [index, error, tags], tags], tags. */
  function response(errors: Array<[number, number]>): Buffer {
    const parts: number[] = [0, 0, 0, 0, 5, 2, 3, ...Buffer.from('in'), errors.length + 1]
    for (const [p, code] of errors) parts.push(0, 0, 0, p, (code >> 8) & 0xff, code & 0xff, 0)
    parts.push(0, 0)
    return Buffer.from(parts)
  }

  it('decodes a response and throws a refused partition as its kafkajs protocol error, classified by code', async () => {
    expect(decodeTxnOffsetCommitV3(response([[1, 0]]))).toEqual({ throttleTimeMs: 5, errors: [] })
    const req = txnOffsetCommitV3Request({ transactionalId: 't', producerId: 1, producerEpoch: 0, group: GROUP, topics: [] })
    for (const [code, type] of [
      [22, 'ILLEGAL_GENERATION'],
      [25, 'UNKNOWN_MEMBER_ID'],
      [82, 'FENCED_INSTANCE_ID'],
      [47, 'INVALID_PRODUCER_EPOCH'],
      [90, 'PRODUCER_FENCED'],
    ] as const) {
      const data = await req.response.decode(response([[0, code]]))
      const e = await req.response.parse(data).then(
        () => undefined,
        (x: unknown) => x as Error & { type: string; code: number },
      )
      expect(e).toMatchObject({ name: 'KafkaJSProtocolError', type, code })
      expect(classifyError(e)).toBe('task-migrated')
    }
    expect(classifyError(protocolError(16))).toBe('retriable') // NOT_COORDINATOR
  })
})

describe('OffsetFetch v7 with require_stable', () => {
  it('asks for stable offsets and reads them back; UNSTABLE_OFFSET_COMMIT is retriable', () => {
    const r = reader(encodeOffsetFetchV7('app', [{ topic: 'in', partition: 1 }], true))
    expect([r.uvarint(), r.str(), r.uvarint(), r.str(), r.uvarint(), r.i32(), r.uvarint(), r.bool(), r.uvarint()]).toEqual([
      0,
      'app',
      2,
      'in',
      2,
      1,
      0,
      true,
      0,
    ])
    expect(r.done()).toBe(true)
    const off = Buffer.alloc(8)
    off.writeBigInt64BE(41n)
    const none = Buffer.alloc(8)
    none.writeBigInt64BE(-1n)
    const partition = (p: number, o: Buffer) => [0, 0, 0, p, ...o, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0]
    const payload = Buffer.from([0, 0, 0, 0, 0, 2, 3, ...Buffer.from('in'), 3, ...partition(0, off), ...partition(1, none), 0, 0, 0, 0])
    const d = decodeOffsetFetchV7(payload)
    expect([...d.offsets]).toEqual([['in:0', 41n]])
    expect(d.errorCode).toBe(0)
    expect(classifyError(protocolError(88))).toBe('retriable')
  })
})

describe('the kafkajs view (no process-wide patch)', () => {
  it("finds kafkajs 2.2.4's private cluster factory (fails loudly if its internals change shape)", () => {
    const kafka = new Kafka({ brokers: ['127.0.0.1:1'], logLevel: 0 })
    expect(Object.getOwnPropertySymbols(kafka).map((s) => s.description)).toContain('private:Kafka:createCluster')
    expect(() => kafkaWithGroupMetadata(kafka, {})).not.toThrow()
  })

  it("sends the group coordinator's TxnOffsetCommit as v3 with the current group metadata and reports JoinGroup's generation", async () => {
    const sent: Array<{ apiKey: number; apiVersion: number }> = []
    const joins: number[] = []
    const broker = {
      versions: { 28: { minVersion: 0, maxVersion: 3 } },
      connectionPool: {
        send: async (r: { request: { apiKey: number; apiVersion: number } }) => void sent.push(r.request),
      },
      joinGroup: async () => ({ generationId: 9, memberId: 'm-9' }),
      txnOffsetCommit: async (_args: unknown) => void sent.push({ apiKey: 28, apiVersion: 1 }),
    }
    const sym = Symbol('private:Kafka:createCluster')
    const fakeKafka = { [sym]: () => ({ findGroupCoordinator: async () => broker }) }
    let group: typeof GROUP | undefined = GROUP
    const view = kafkaWithGroupMetadata(fakeKafka as never, {
      groupMetadata: () => group,
      onJoinGroup: (g) => joins.push(g),
    }) as unknown as Record<
      symbol,
      () => { findGroupCoordinator(a: { groupId: string; coordinatorType?: number }): Promise<typeof broker> }
    >
    const cluster = view[sym]!()
    const coordinator = await cluster.findGroupCoordinator({ groupId: 'app' })
    const args = { transactionalId: 't', groupId: 'app', producerId: 1, producerEpoch: 0, topics: [] }
    await coordinator.txnOffsetCommit(args as never)
    group = undefined
    await coordinator.txnOffsetCommit(args as never)
    expect(sent).toEqual([expect.objectContaining({ apiKey: 28, apiVersion: 3 }), { apiKey: 28, apiVersion: 1 }])
    await coordinator.joinGroup()
    expect(joins).toEqual([9])
    // the transaction coordinator (type 1) is kafkajs' own
    expect(await cluster.findGroupCoordinator({ groupId: 't', coordinatorType: 1 })).toBe(broker)
    // a broker older than Kafka 2.5 (no v3): a clear error
    broker.versions[28].maxVersion = 2
    group = GROUP
    await expect(coordinator.txnOffsetCommit(args as never)).rejects.toThrow(/needs TxnOffsetCommit v3 \(Kafka ≥ 2\.5\)/)
  })

  it('sends an OffsetCommit that reached a former group coordinator to the current one, and keeps doing so until the next JoinGroup', async () => {
    // kafkajs' offset manager keeps the coordinator of its last SyncGroup; after a coordinator move
    // without a rebalance every commit would get NOT_COORDINATOR until the session ends
    const calls: string[] = []
    const notCoordinator = Object.assign(new Error('not the coordinator'), { type: 'NOT_COORDINATOR_FOR_GROUP' })
    const makeBroker = (name: string, fail: () => unknown) => ({
      nodeId: name,
      joinGroup: async () => ({ generationId: 3, memberId: 'm' }),
      offsetCommit: async (_args: { groupId: string }) => {
        calls.push(name)
        const e = fail()
        if (e) throw e
        return name
      },
    })
    let oldIsCoordinator = true
    const oldBroker = makeBroker('old', () => (oldIsCoordinator ? undefined : notCoordinator))
    let newFails: unknown
    const newBroker = makeBroker('new', () => newFails)
    const userError = Object.assign(new Error('fenced by epoch'), { type: 'ILLEGAL_GENERATION' })
    const sym = Symbol('private:Kafka:createCluster')
    const fakeKafka = {
      [sym]: () => ({
        findGroupCoordinator: async () => (oldIsCoordinator ? oldBroker : newBroker),
        findBroker: async ({ nodeId }: { nodeId: string }) => (nodeId === 'old' ? oldBroker : newBroker),
      }),
    }
    const view = kafkaWithGroupMetadata(fakeKafka as never, {}) as unknown as Record<
      symbol,
      () => {
        findGroupCoordinator(a: { groupId: string }): Promise<typeof oldBroker>
        findBroker(a: { nodeId: string }): Promise<typeof oldBroker>
      }
    >
    const cluster = view[sym]!()
    const held = await cluster.findGroupCoordinator({ groupId: 'app' }) // what the offset manager keeps
    expect(await held.offsetCommit({ groupId: 'app' })).toBe('old')
    oldIsCoordinator = false // the coordinator moves; no rebalance
    expect(await held.offsetCommit({ groupId: 'app' })).toBe('new')
    expect(await held.offsetCommit({ groupId: 'app' })).toBe('new')
    // a reconnect re-resolves the held broker by node id: still redirected
    expect(await (await cluster.findBroker({ nodeId: 'old' })).offsetCommit({ groupId: 'app' })).toBe('new')
    expect(calls).toEqual(['old', 'old', 'new', 'new', 'new'])
    // other errors are the caller's (classified as before), not redirected
    newFails = userError
    await expect(held.offsetCommit({ groupId: 'app' })).rejects.toBe(userError)
    newFails = undefined
    // after a JoinGroup the offset manager is new: commits go where it sends them again
    await held.joinGroup()
    calls.length = 0
    await expect(held.offsetCommit({ groupId: 'app' })).resolves.toBe('new')
    expect(calls).toEqual(['old', 'new'])
  })
})
