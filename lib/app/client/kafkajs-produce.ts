/**
 * The fast produce path over kafkajs 2.2.4: kstreams' producers keep kafkajs' producer (its
 * idempotence and transaction state, sequence numbers, retries, broker locks), but the two
 * costliest steps of a send are done here.
 *
 * - **Encoding**: kafkajs builds a Produce request record by record (a zeroed 512-byte `Encoder`
 *   per record that grows and is copied into the batch, the request and the frame; a spread of
 *   every message; timestamps as `Long`s; a byte-at-a-time CRC32C). {@link encodeProduceRequest}
 *   measures the request first and writes it into ONE buffer (record sizes, varints, timestamp
 *   deltas as numbers, a slice-by-8 CRC32C). Every broker of kstreams' own `Kafka` instance gets a
 *   `produce` own property that sends it with kafkajs' response decoder for the version it
 *   negotiated ({@link withFastProduce}); compressed sends and brokers below Produce v3 keep
 *   kafkajs' encoder.
 * - **Grouping**: kafkajs' `groupMessagesPerPartition` rebuilds a partition's array with a spread
 *   for every message (quadratic in the messages of one partition per send). The partition sender
 *   (./partition-send.ts) already sends one partition at a time; {@link singlePartitionMessages}
 *   gives such an array a `reduce` that hands kafkajs the whole array as that partition's group
 *   after one call of kafkajs' own reducer (which also runs kafkajs' partitioner on it).
 *
 * Both only change how the same bytes are made: the record batches are byte for byte the ones
 * kafkajs writes (test/unit/runtime-kafkajs-produce.test.ts compares them), and if kafkajs stops
 * calling these hooks its own code path runs unchanged. `KSTREAMS_PRODUCE_PATH=kafkajs` in the
 * environment turns both off (the benchmark measures the two paths side by side with it).
 *
 * Protocol reference: kafka.apache.org/protocol (Produce API key 0, versions 3–8 share one body)
 * and the record batch format v2 (magic 2) in Kafka's `DefaultRecordBatch` / `DefaultRecord` docs.
 *
 * Over 400 lines: one wire-format encoder (Produce v3–v8 record batches) and the broker hook that
 * installs it; splitting it would scatter the format.
 */
import { createRequire } from 'node:module'
import type { Kafka } from 'kafkajs'

const require = createRequire(import.meta.url)

/** `KSTREAMS_PRODUCE_PATH=kafkajs`: kafkajs' own encoding and grouping (benchmark comparison only). */
export function fastProduceEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.KSTREAMS_PRODUCE_PATH !== 'kafkajs'
}

// -------------------------------------------------------------------------------------------------
// CRC32C (Castagnoli), slice-by-8
// -------------------------------------------------------------------------------------------------

const CRC_TABLES: Int32Array[] = (() => {
  const t0 = new Int32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
    t0[n] = c
  }
  const tables = [t0]
  for (let k = 1; k < 8; k++) {
    const prev = tables[k - 1]!
    const t = new Int32Array(256)
    for (let n = 0; n < 256; n++) t[n] = (prev[n]! >>> 8) ^ t0[prev[n]! & 0xff]!
    tables.push(t)
  }
  return tables
})()

/** CRC32C of `buf[start, end)` as an unsigned 32-bit number (what a record batch carries). */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = CRC_TABLES as [
    Int32Array,
    Int32Array,
    Int32Array,
    Int32Array,
    Int32Array,
    Int32Array,
    Int32Array,
    Int32Array,
  ]
  let crc = -1
  let i = start
  for (; i + 8 <= end; i += 8) {
    const a = crc ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24))
    crc =
      t7[a & 0xff]! ^
      t6[(a >>> 8) & 0xff]! ^
      t5[(a >>> 16) & 0xff]! ^
      t4[a >>> 24]! ^
      t3[buf[i + 4]!]! ^
      t2[buf[i + 5]!]! ^
      t1[buf[i + 6]!]! ^
      t0[buf[i + 7]!]!
  }
  for (; i < end; i++) crc = t0[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8)
  return (crc ^ -1) >>> 0
}

// -------------------------------------------------------------------------------------------------
// Produce request encoding
// -------------------------------------------------------------------------------------------------

/** A message as kafkajs' producer hands it to `broker.produce` (the fields encoded). */
export interface ProduceRequestMessage {
  readonly key?: Buffer | Uint8Array | string | null
  readonly value: Buffer | Uint8Array | string | null
  /** Milliseconds (kafkajs: a decimal string); absent = the time of encoding. */
  readonly timestamp?: string | number | null
  readonly headers?: { [key: string]: Buffer | Uint8Array | string | null | undefined | Array<Buffer | Uint8Array | string | null> }
}

/** The arguments kafkajs' `sendMessages` passes to `broker.produce`. */
export interface ProduceRequestArgs {
  readonly transactionalId?: string | null
  /** kafkajs: a decimal string, a number or a `Long` (its `toString()` is decimal). */
  readonly producerId?: unknown
  readonly producerEpoch?: number
  readonly acks: number
  readonly timeout: number
  readonly topicData: ReadonlyArray<{
    readonly topic: string
    readonly partitions: ReadonlyArray<{
      readonly partition: number
      readonly firstSequence?: number
      readonly messages: ReadonlyArray<ProduceRequestMessage>
    }>
  }>
}

const RECORD_BATCH_OVERHEAD = 61 // baseOffset 8, length 4, leader epoch 4, magic 1, crc 4, attributes 2, lastOffsetDelta 4, timestamps 16, producer id 8, epoch 2, sequence 4, count 4
const TRANSACTIONAL_ATTRIBUTE = 0x10

function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1
}

/** Bytes of an unsigned varint (values up to 2^53). */
function uvarintSize(z: number): number {
  let size = 1
  while (z >= 0x80) {
    z = Math.floor(z / 0x80)
    size++
  }
  return size
}

function writeUVarint(buf: Buffer, offset: number, z: number): number {
  while (z >= 0x80) {
    buf[offset++] = (z % 0x80) | 0x80
    z = Math.floor(z / 0x80)
  }
  buf[offset++] = z
  return offset
}

type Bytes = Buffer | Uint8Array | string | null | undefined

/** The bytes of a key, value or header value (strings as UTF-8, as kafkajs writes them); null stays null. */
function bytesOf(v: Bytes): Uint8Array | null {
  if (v === null || v === undefined) return null
  if (v instanceof Uint8Array) return v
  return Buffer.from(String(v), 'utf8')
}

function fieldSize(b: Uint8Array | null): number {
  return b === null ? 1 : uvarintSize(zigzag(b.length)) + b.length
}

function writeField(buf: Buffer, offset: number, b: Uint8Array | null): number {
  if (b === null) return writeUVarint(buf, offset, 1) // zigzag(-1)
  offset = writeUVarint(buf, offset, zigzag(b.length))
  buf.set(b, offset)
  return offset + b.length
}

/** One record, measured: its encoded parts and the size of its body (after the length varint). */
interface MeasuredRecord {
  key: Uint8Array | null
  value: Uint8Array | null
  tsDelta: number
  headers: Array<[Uint8Array, Uint8Array | null]> | null
  bodySize: number
}

function measureRecord(m: ProduceRequestMessage, tsDelta: number, offsetDelta: number): MeasuredRecord {
  const key = bytesOf(m.key)
  const value = bytesOf(m.value)
  let headers: Array<[Uint8Array, Uint8Array | null]> | null = null
  let headersSize = 1
  const h = m.headers
  if (h) {
    for (const k in h) {
      const hv = h[k]
      const values = Array.isArray(hv) ? hv : [hv]
      for (const one of values) {
        const hk = Buffer.from(k, 'utf8')
        const bv = bytesOf(one)
        ;(headers ??= []).push([hk, bv])
        headersSize += fieldSize(hk) + fieldSize(bv)
      }
    }
    if (headers) headersSize = uvarintSize(zigzag(headers.length)) + headersSize - 1
  }
  const bodySize = 1 + uvarintSize(zigzag(tsDelta)) + uvarintSize(zigzag(offsetDelta)) + fieldSize(key) + fieldSize(value) + headersSize
  return { key, value, tsDelta, headers, bodySize }
}

function int64(v: unknown): bigint {
  if (v === undefined || v === null) return -1n
  return BigInt(String(v))
}

/**
 * The body of a Produce request v3–v8 (uncompressed record batches, magic 2), as ONE buffer:
 * transactional id, acks, timeout, then per topic and partition one record batch with the
 * producer id, epoch and first sequence kafkajs' producer assigned.
 */
export function encodeProduceRequest(a: ProduceRequestArgs, now: number = Date.now()): Buffer {
  const txnId = a.transactionalId === undefined || a.transactionalId === null ? null : Buffer.from(a.transactionalId, 'utf8')
  const producerId = int64(a.producerId)
  const producerEpoch = a.producerEpoch ?? 0
  const attributes = txnId === null ? 0 : TRANSACTIONAL_ATTRIBUTE
  let size = 2 + (txnId?.length ?? 0) + 2 + 4 + 4
  const topics = a.topicData.map((t) => {
    const name = Buffer.from(t.topic, 'utf8')
    size += 2 + name.length + 4
    const partitions = t.partitions.map((p) => {
      const messages = p.messages
      // first and max timestamp over the messages that have one (kafkajs: the time of encoding if none has)
      let first = Number.POSITIVE_INFINITY
      let max = Number.NEGATIVE_INFINITY
      const ts = new Array<number>(messages.length)
      for (let i = 0; i < messages.length; i++) {
        const raw = messages[i]!.timestamp
        const t = raw === null || raw === undefined || raw === '' ? Number.NaN : Number(raw)
        ts[i] = t
        if (t === t) {
          if (t < first) first = t
          if (t > max) max = t
        }
      }
      if (first === Number.POSITIVE_INFINITY) first = max = now
      let recordsSize = 0
      const records = new Array<MeasuredRecord>(messages.length)
      for (let i = 0; i < messages.length; i++) {
        const t = ts[i]!
        const r = measureRecord(messages[i]!, (t === t ? t : now) - first, i)
        records[i] = r
        recordsSize += uvarintSize(zigzag(r.bodySize)) + r.bodySize
      }
      size += 4 + 4 + RECORD_BATCH_OVERHEAD + recordsSize
      return { partition: p.partition, firstSequence: p.firstSequence ?? 0, first, max, records, recordsSize }
    })
    return { name, partitions }
  })

  const buf = Buffer.allocUnsafe(size)
  let o = 0
  if (txnId === null) o = buf.writeInt16BE(-1, o)
  else {
    o = buf.writeInt16BE(txnId.length, o)
    buf.set(txnId, o)
    o += txnId.length
  }
  o = buf.writeInt16BE(a.acks, o)
  o = buf.writeInt32BE(a.timeout, o)
  o = buf.writeInt32BE(topics.length, o)
  for (const t of topics) {
    o = buf.writeInt16BE(t.name.length, o)
    buf.set(t.name, o)
    o += t.name.length
    o = buf.writeInt32BE(t.partitions.length, o)
    for (const p of t.partitions) {
      o = buf.writeInt32BE(p.partition, o)
      o = buf.writeInt32BE(RECORD_BATCH_OVERHEAD + p.recordsSize, o) // record set bytes
      const batchStart = o
      o = buf.writeBigInt64BE(0n, o) // base offset
      o = buf.writeInt32BE(RECORD_BATCH_OVERHEAD - 12 + p.recordsSize, o) // batch length: after this field
      o = buf.writeInt32BE(0, o) // partition leader epoch (kafkajs writes 0; the broker sets it)
      o = buf.writeInt8(2, o) // magic
      const crcAt = o
      o += 4
      const crcFrom = o
      o = buf.writeInt16BE(attributes, o)
      o = buf.writeInt32BE(p.records.length - 1, o) // last offset delta
      o = buf.writeBigInt64BE(BigInt(p.first), o)
      o = buf.writeBigInt64BE(BigInt(p.max), o)
      o = buf.writeBigInt64BE(producerId, o)
      o = buf.writeInt16BE(producerEpoch, o)
      o = buf.writeInt32BE(p.firstSequence, o)
      o = buf.writeInt32BE(p.records.length, o)
      for (let i = 0; i < p.records.length; i++) {
        const r = p.records[i]!
        o = writeUVarint(buf, o, zigzag(r.bodySize))
        buf[o++] = 0 // record attributes
        o = writeUVarint(buf, o, zigzag(r.tsDelta))
        o = writeUVarint(buf, o, zigzag(i))
        o = writeField(buf, o, r.key)
        o = writeField(buf, o, r.value)
        const headers = r.headers
        if (headers === null) buf[o++] = 0
        else {
          o = writeUVarint(buf, o, zigzag(headers.length))
          for (const [hk, hv] of headers) {
            o = writeField(buf, o, hk)
            o = writeField(buf, o, hv)
          }
        }
      }
      buf.writeUInt32BE(crc32c(buf, crcFrom, o), crcAt)
      if (o - batchStart !== RECORD_BATCH_OVERHEAD + p.recordsSize) throw new Error('produce request: record batch size mismatch')
    }
  }
  if (o !== size) throw new Error(`produce request: wrote ${o} bytes, measured ${size}`)
  return buf
}

// -------------------------------------------------------------------------------------------------
// kafkajs hooks
// -------------------------------------------------------------------------------------------------

interface KafkajsEncoderLike {
  buf: Buffer
  offset: number
}
const Encoder = require('kafkajs/src/protocol/encoder.js') as { prototype: object }
const { requests } = require('kafkajs/src/protocol/requests/index.js') as { requests: { Produce?: unknown } }
const BrokerClass = require('kafkajs/src/broker/index.js') as { prototype: object }
const SEND_REQUEST = Object.getOwnPropertySymbols(BrokerClass.prototype).find((s) => s.description === 'private:Broker:sendRequest')
const PRODUCE_API_KEY = 0
/** kafkajs' `Types.None` (no compression). */
const COMPRESSION_NONE = 0
const FAST = Symbol('kstreams.kafkajs.fastProduce')
const CREATE_CLUSTER = 'private:Kafka:createCluster'

/** An `Encoder` of kafkajs that holds `buf` as written (no copy). */
function encoderOf(buf: Buffer): KafkajsEncoderLike {
  const e = Object.create(Encoder.prototype) as KafkajsEncoderLike
  e.buf = buf
  e.offset = buf.length
  return e
}

type ProtocolRequest = { request: { apiVersion: number; encode: () => Promise<unknown> } & Record<string, unknown> } & Record<
  string,
  unknown
>
interface ProducingBroker {
  produce(args: ProduceRequestArgs & { compression?: number }): Promise<unknown>
  lookupRequest?: (apiKey: number, definitions: unknown) => (args: object) => ProtocolRequest
  [FAST]?: true
}

/** What {@link withFastProduce} needs of kafkajs' internals; empty when all is there. */
export function fastProduceProblems(): string[] {
  const problems: string[] = []
  if (!SEND_REQUEST) problems.push('kafkajs/src/broker Broker has no private:Broker:sendRequest method')
  if (typeof requests.Produce !== 'object' || requests.Produce === null) problems.push('kafkajs/src/protocol/requests has no Produce')
  if (typeof (Encoder.prototype as { writeEncoder?: unknown }).writeEncoder !== 'function')
    problems.push('kafkajs/src/protocol/encoder.js has no writeEncoder')
  return problems
}

function fastBroker(broker: ProducingBroker): ProducingBroker {
  if (broker[FAST]) return broker
  const original = broker.produce
  broker.produce = async function fastProduce(args) {
    const lookup = broker.lookupRequest
    if ((args.compression ?? COMPRESSION_NONE) !== COMPRESSION_NONE || typeof lookup !== 'function') return original.call(broker, args)
    const protocolRequest = lookup.call(broker, PRODUCE_API_KEY, requests.Produce)({ compression: COMPRESSION_NONE, ...args })
    if (protocolRequest.request.apiVersion < 3) return original.call(broker, args)
    const body = encodeProduceRequest(args)
    const request = { ...protocolRequest, request: { ...protocolRequest.request, encode: async () => encoderOf(body) } }
    return (broker as unknown as Record<symbol, (r: unknown) => Promise<unknown>>)[SEND_REQUEST!]!.call(broker, request)
  }
  broker[FAST] = true
  return broker
}

/**
 * Gives every broker the clusters of `kafka` create from now on the fast `produce` (see the module
 * comment). Applies to this `Kafka` instance only (kstreams' own); idempotent.
 * @returns `kafka`
 * @throws Error when kafkajs' internals changed shape
 */
export function withFastProduce<K extends Kafka>(kafka: K): K {
  const problems = fastProduceProblems()
  if (problems.length) throw new Error(`kafkajs internals changed shape (kstreams' produce path relies on them): ${problems.join('; ')}`)
  const holder = kafka as unknown as Record<symbol, unknown> & { [FAST]?: true }
  if (holder[FAST]) return kafka
  const sym = Object.getOwnPropertySymbols(kafka).find((s) => s.description === CREATE_CLUSTER)
  const factory = sym ? holder[sym] : undefined
  if (!sym || typeof factory !== 'function') throw new Error(`kafkajs internals changed shape: a Kafka instance has no ${CREATE_CLUSTER}`)
  holder[sym] = (options: object) => {
    const cluster = (factory as (o: object) => { brokerPool?: { createBroker?: (o: object) => ProducingBroker } })(options)
    const pool = cluster.brokerPool
    const create = pool?.createBroker
    if (!pool || typeof create !== 'function') throw new Error('kafkajs internals changed shape: cluster.brokerPool.createBroker')
    pool.createBroker = (o: object) => fastBroker(create.call(pool, o))
    return cluster
  }
  holder[FAST] = true
  return kafka
}

/**
 * Marks `messages` (all with `partition` set to the same partition) so that kafkajs' per-partition
 * grouping takes the array as it is instead of rebuilding it message by message: its `reduce`
 * runs kafkajs' reducer on the first message only and, when that put it in the expected
 * partition, returns the whole array as that partition's group. Any other use of `reduce` behaves
 * as `Array.prototype.reduce`.
 * @returns `messages`
 */
export function singlePartitionMessages<M extends { partition?: number }>(messages: M[], partition: number): M[] {
  Object.defineProperty(messages, 'reduce', {
    value: function reduceOnePartition(this: M[], ...args: unknown[]): unknown {
      const [fn, init] = args as [(acc: unknown, m: M, i: number, arr: M[]) => unknown, unknown]
      if (args.length === 2 && this.length > 0 && isEmptyPlainObject(init) && this.every((m) => m.partition === partition)) {
        const acc = fn(init, this[0]!, 0, this) as Record<string, unknown>
        const group = acc?.[String(partition)]
        if (Object.keys(acc ?? {}).length === 1 && Array.isArray(group) && group.length === 1 && group[0] === this[0]) {
          acc[String(partition)] = Array.prototype.slice.call(this)
          return acc
        }
        let out: unknown = acc
        for (let i = 1; i < this.length; i++) out = fn(out, this[i]!, i, this)
        return out
      }
      return (Array.prototype.reduce as (...a: unknown[]) => unknown).apply(this, args)
    },
    enumerable: false,
    configurable: true,
    writable: true,
  })
  return messages
}

function isEmptyPlainObject(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  for (const _k in v) return false
  return true
}
