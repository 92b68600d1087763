/**
 * The grace-period buffer of a stream-table join against a versioned table (Kafka Streams KIP-923:
 * `Joined.withGracePeriod`, `RocksDBTimeOrderedKeyValueBuffer`).
 *
 * Stream records wait here until the buffer's stream-time (the largest timestamp put) has passed
 * their timestamp by the grace period, then leave in timestamp order (ties: serialized key, then
 * arrival), so the join looks the table up as of each record's time once the table's out-of-order
 * updates within the grace have arrived. A record already older than `stream-time - grace` is not
 * buffered (the caller joins it at once).
 *
 * Layout in a `KeyValueStore<Buffer, Buffer>` (changelogged like every store): key
 * `0x01 ‖ timestamp (int64, sign bit flipped) ‖ key bytes ‖ sequence (int64)` → `int32 length of
 * the headers JSON ‖ headers JSON ‖ value bytes`; key `0x00` → `[stream-time int64][next sequence int64]`.
 * @internal
 */
import type { Headers, Serde } from '../../serde.js'
import type { StreamRecord } from '../../processor/types.js'
import type { KeyValueStore } from '../../state/types.js'

const META_KEY = Buffer.from([0x00])
const PREFIX = 0x01
const NO_TIMESTAMP = Number.MIN_SAFE_INTEGER

function timeBytes(ts: number): Buffer {
  const b = Buffer.allocUnsafe(8)
  b.writeBigInt64BE(BigInt(ts))
  b[0]! ^= 0x80
  return b
}

function encodeHeaders(headers: Headers): Buffer {
  if (Object.keys(headers).length === 0) return Buffer.alloc(0)
  const plain: Record<string, Array<{ b?: string; s?: string }>> = {}
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue
    plain[k] = (Array.isArray(v) ? v : [v]).map((x) => (Buffer.isBuffer(x) ? { b: x.toString('base64') } : { s: x }))
  }
  return Buffer.from(JSON.stringify(plain), 'utf8')
}

function decodeHeaders(b: Buffer): Headers {
  if (b.length === 0) return {}
  const plain = JSON.parse(b.toString('utf8')) as Record<string, Array<{ b?: string; s?: string }>>
  const out: Headers = {}
  for (const [k, list] of Object.entries(plain)) {
    const vs = list.map((x) => (x.b !== undefined ? Buffer.from(x.b, 'base64') : x.s!))
    out[k] = vs.length === 1 ? vs[0]! : vs
  }
  return out
}

/** A time-ordered buffer of stream records (see the module comment). */
export class TimeOrderedRecordBuffer<K, V> {
  private streamTime = NO_TIMESTAMP
  private seq = 0
  private loaded = false

  constructor(
    private readonly store: KeyValueStore<Buffer, Buffer>,
    private readonly graceMs: number,
    private readonly keySerde: Serde<K>,
    private readonly valueSerde: Serde<V>,
    private readonly topic: string,
  ) {}

  private async load(): Promise<void> {
    if (this.loaded) return
    const meta = await this.store.get(META_KEY)
    if (meta !== undefined) {
      this.streamTime = Number(meta.readBigInt64BE(0))
      this.seq = Number(meta.readBigInt64BE(8))
    }
    this.loaded = true
  }

  /** Buffers `record`; `false` (not buffered) when it is already older than `stream-time - grace`. */
  async put(record: StreamRecord<K, V>): Promise<boolean> {
    await this.load()
    if (this.streamTime - this.graceMs > record.timestamp) return false
    const keyBytes = this.keySerde.serialize(this.topic, record.key, record.headers) ?? Buffer.alloc(0)
    const valueBytes = this.valueSerde.serialize(this.topic, record.value, record.headers) ?? Buffer.alloc(0)
    const seq = Buffer.allocUnsafe(8)
    seq.writeBigInt64BE(BigInt(this.seq++))
    const key = Buffer.concat([Buffer.from([PREFIX]), timeBytes(record.timestamp), keyBytes, seq])
    const headers = encodeHeaders(record.headers)
    const len = Buffer.allocUnsafe(4)
    len.writeInt32BE(headers.length)
    await this.store.put(key, Buffer.concat([len, headers, valueBytes]))
    this.streamTime = Math.max(this.streamTime, record.timestamp)
    const meta = Buffer.allocUnsafe(16)
    meta.writeBigInt64BE(BigInt(this.streamTime), 0)
    meta.writeBigInt64BE(BigInt(this.seq), 8)
    await this.store.put(META_KEY, meta)
    return true
  }

  /** Removes and hands over, in order, every record with `timestamp <= stream-time - grace`. */
  async evict(emit: (record: StreamRecord<K, V>) => Promise<void>): Promise<void> {
    await this.load()
    const deadline = this.streamTime - this.graceMs
    const due: Array<{ key: Buffer; value: Buffer }> = []
    // Keys of timestamp `deadline + 1` are longer than its 9-byte prefix, so this inclusive bound ends at `deadline`.
    for await (const kv of this.store.range(Buffer.from([PREFIX]), Buffer.concat([Buffer.from([PREFIX]), timeBytes(deadline + 1)])))
      due.push(kv)
    for (const { key, value } of due) {
      const tb = Buffer.from(key.subarray(1, 9))
      tb[0]! ^= 0x80
      const timestamp = Number(tb.readBigInt64BE(0))
      const headersLen = value.readInt32BE(0)
      const headers = decodeHeaders(value.subarray(4, 4 + headersLen))
      const record: StreamRecord<K, V> = {
        key: this.keySerde.deserialize(this.topic, key.subarray(9, key.length - 8), headers) as K,
        value: this.valueSerde.deserialize(this.topic, value.subarray(4 + headersLen), headers) as V,
        timestamp,
        headers,
      }
      await this.store.delete(key)
      await emit(record)
    }
  }
}
