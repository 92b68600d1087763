/**
 * The KTable suppression processor (Kafka Streams: `KTableSuppressProcessorSupplier` over an
 * `InMemoryTimeOrderedKeyValueChangeBuffer`), KIP-328.
 *
 * The buffer keeps the latest update per key. Each buffered key has a buffer time: the window end
 * (`untilWindowCloses`) or the timestamp of the key's FIRST buffered update (`untilTimeLimit`; a
 * later update of the same key keeps its place, "non-resetting"). Whenever a record arrives, every
 * key with `bufferTime <= observedStreamTime - timeToWait` is emitted in buffer-time order, where
 * `observedStreamTime` is the largest timestamp this processor has received and `timeToWait` is
 * the window grace (`untilWindowCloses`) or the time limit. Wall-clock time never emits.
 *
 * Emitted records carry the latest update's timestamp and headers and
 * `Change { newValue: latest value, oldValue: the value before the first buffered update }` (what
 * downstream saw last). `untilWindowCloses` drops tombstones (a window deleted before it closed,
 * e.g. a session merged away).
 *
 * Persistence: the buffer lives in a key-value bytes store (`KeyValueStore<Buffer, Buffer>`,
 * logged by default) keyed by the serialized key; an in-memory index (map + min-heap by buffer
 * time) is rebuilt from the store in `init`, so the buffer survives restarts and failover. Reads
 * come from memory; each update/eviction is one store write (absorbed by the store cache).
 */
import { StreamsConfigError, StreamsError } from '../errors.js'
import { resolveSerde, type Headers, type Serde } from '../serde.js'
import type { Processor, ProcessorContext, ProcessorSupplier, StreamRecord } from '../processor/types.js'
import type { KeyValueStore, Windowed } from '../state/types.js'
import type { Suppressed } from '../dsl/suppressed.js'
import type { Change } from './windowed/types.js'
import type { KTableValueGetterSupplier } from './table.js'
import { NOOP_NODE_METRICS, type ProcessorNodeMetrics, type SuppressionBufferMetrics } from '../engine/metrics.js'

export interface SuppressProcessorOptions<K, V> {
  /** Processor name (for error messages). */
  readonly processorName: string
  /** Name of the buffer's `KeyValueStore<Buffer, Buffer>` (bytes serdes). */
  readonly storeName: string
  readonly suppressed: Suppressed<K>
  /** `untilWindowCloses`: the upstream windows' grace (sessions: gap + grace), milliseconds. */
  readonly windowGraceMs?: number
  /**
   * Serde of the table's keys (windowed tables: a windowed serde, possibly a `DefaultingSerde`
   * completed with the default key serde); undefined = the application's default key serde, taken
   * from `context.keySerde()`.
   */
  readonly keySerde?: Serde<K>
  /** Serde of the table's values; undefined = the application's default value serde. */
  readonly valueSerde?: Serde<V>
}

/** Supplier of the suppression processor. */
export function suppressProcessorSupplier<K, V>(options: SuppressProcessorOptions<K, V>): ProcessorSupplier<K, Change<V>, K, Change<V>> {
  if (options.suppressed.kind === 'untilWindowCloses' && options.windowGraceMs === undefined) {
    throw new StreamsConfigError('suppress(untilWindowCloses) needs the grace period of the upstream windows')
  }
  return () => new SuppressProcessor(options)
}

/**
 * Lookups into a suppressed table (Kafka Streams: `KTableSuppressProcessorSupplier#view` with
 * `TimeOrderedKeyValueBuffer#priorValueForBuffered`): what downstream of the suppression has seen.
 * A key with a buffered update yields the value from before its first buffered update (the
 * buffer's prior value; `null` when the key was absent), with timestamp -1 (unknown, Kafka
 * Streams' `RecordQueue.UNKNOWN`); a key not in the buffer yields the parent table's value.
 * Reads the buffer store (connected to the reading processor through `storeNames`), so it needs the
 * same serdes as the suppression processor.
 */
export function suppressedValueGetterSupplier<K, V>(
  parent: KTableValueGetterSupplier<K, V>,
  options: Pick<SuppressProcessorOptions<K, V>, 'processorName' | 'storeName' | 'keySerde' | 'valueSerde'>,
): KTableValueGetterSupplier<K, V> {
  return {
    storeNames: () => [options.storeName, ...parent.storeNames()],
    get: () => {
      const parentGetter = parent.get()
      let store: KeyValueStore<Buffer, Buffer>
      let keySerde: Serde<K> | undefined
      let valueSerde: Serde<V> | undefined
      let topic = ''
      return {
        init(context) {
          parentGetter.init(context)
          store = context.getStateStore<KeyValueStore<Buffer, Buffer>>(options.storeName)
          const defaults = { keySerde: context.keySerde?.(), valueSerde: context.valueSerde?.() }
          keySerde = resolveSerde(options.keySerde, defaults.keySerde, defaults)
          valueSerde = resolveSerde(options.valueSerde, defaults.valueSerde, defaults)
          topic = `${context.applicationId}-${options.storeName}-changelog`
        },
        async get(key) {
          if (keySerde === undefined || valueSerde === undefined) {
            throw new StreamsConfigError(
              `lookup into suppressed table needs a ${keySerde ? 'value' : 'key'} serde: set it on the upstream table or configure a default serde`,
              {
                place: { processor: options.processorName, store: options.storeName },
              },
            )
          }
          const keyBytes = keySerde.serialize(topic, key)
          const encoded = keyBytes === null ? undefined : await store.get(keyBytes)
          if (keyBytes === null || encoded === undefined || encoded === null) return parentGetter.get(key)
          const prior = decodeBufferEntry(keyBytes, encoded).priorValue
          const value = valueSerde.deserialize(topic, prior)
          return value === null || value === undefined ? null : { value, timestamp: -1 }
        },
      }
    },
  }
}

// ---------------------------------------------------------------------------------------------
// Buffer entries and their byte format
// ---------------------------------------------------------------------------------------------

interface BufferEntry {
  readonly keyBytes: Buffer
  /** Position in the buffer: window end or first-update time. Never changes while buffered. */
  readonly bufferTime: number
  recordTimestamp: number
  headers: Headers
  /** Serialized value before the first buffered update (what downstream saw last). */
  priorValue: Buffer | null
  /** Serialized latest new value (null: tombstone). */
  newValue: Buffer | null
  /** Encoded size, for `maxBytes`. */
  size: number
}

const FORMAT_VERSION = 1

function blobSize(b: Buffer | null): number {
  return 4 + (b === null ? 0 : b.length)
}

function headerEntries(headers: Headers): Array<[string, Buffer | string]> {
  const out: Array<[string, Buffer | string]> = []
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (v === undefined) continue
    if (Array.isArray(v)) for (const item of v) out.push([k, item])
    else out.push([k, v])
  }
  return out
}

/** Encodes an entry: version, bufferTime, timestamp, prior, new, headers. */
export function encodeBufferEntry(e: Omit<BufferEntry, 'keyBytes' | 'size'>): Buffer {
  const hs = headerEntries(e.headers).map(
    ([k, v]) => [Buffer.from(k, 'utf8'), typeof v === 'string' ? 0 : 1, typeof v === 'string' ? Buffer.from(v, 'utf8') : v] as const,
  )
  let size = 1 + 8 + 8 + blobSize(e.priorValue) + blobSize(e.newValue) + 4
  for (const [k, , v] of hs) size += 2 + k.length + 1 + 4 + v.length
  const buf = Buffer.allocUnsafe(size)
  let o = 0
  buf.writeUInt8(FORMAT_VERSION, o)
  o += 1
  buf.writeBigInt64BE(BigInt(e.bufferTime), o)
  o += 8
  buf.writeBigInt64BE(BigInt(e.recordTimestamp), o)
  o += 8
  for (const b of [e.priorValue, e.newValue]) {
    if (b === null) {
      buf.writeInt32BE(-1, o)
      o += 4
    } else {
      buf.writeInt32BE(b.length, o)
      o += 4
      b.copy(buf, o)
      o += b.length
    }
  }
  buf.writeInt32BE(hs.length, o)
  o += 4
  for (const [k, type, v] of hs) {
    buf.writeUInt16BE(k.length, o)
    o += 2
    k.copy(buf, o)
    o += k.length
    buf.writeUInt8(type, o)
    o += 1
    buf.writeInt32BE(v.length, o)
    o += 4
    v.copy(buf, o)
    o += v.length
  }
  return buf
}

/** Decodes {@link encodeBufferEntry}'s format. */
export function decodeBufferEntry(keyBytes: Buffer, buf: Buffer): BufferEntry {
  let o = 0
  const version = buf.readUInt8(o)
  o += 1
  if (version !== FORMAT_VERSION) throw new StreamsError(`unknown suppression buffer entry format version ${version}`)
  const bufferTime = Number(buf.readBigInt64BE(o))
  o += 8
  const recordTimestamp = Number(buf.readBigInt64BE(o))
  o += 8
  const blobs: Array<Buffer | null> = []
  for (let i = 0; i < 2; i++) {
    const len = buf.readInt32BE(o)
    o += 4
    if (len < 0) blobs.push(null)
    else {
      blobs.push(Buffer.from(buf.subarray(o, o + len)))
      o += len
    }
  }
  const count = buf.readInt32BE(o)
  o += 4
  const headers: { [k: string]: Buffer | string | Array<Buffer | string> } = {}
  for (let i = 0; i < count; i++) {
    const kl = buf.readUInt16BE(o)
    o += 2
    const k = buf.toString('utf8', o, o + kl)
    o += kl
    const type = buf.readUInt8(o)
    o += 1
    const vl = buf.readInt32BE(o)
    o += 4
    const v: Buffer | string = type === 0 ? buf.toString('utf8', o, o + vl) : Buffer.from(buf.subarray(o, o + vl))
    o += vl
    const prev = headers[k]
    headers[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
  }
  return {
    keyBytes,
    bufferTime,
    recordTimestamp,
    headers,
    priorValue: blobs[0]!,
    newValue: blobs[1]!,
    size: 8 + keyBytes.length + buf.length,
  }
}

function compareEntries(a: BufferEntry, b: BufferEntry): number {
  return a.bufferTime - b.bufferTime || Buffer.compare(a.keyBytes, b.keyBytes)
}

/** Binary min-heap of buffer entries ordered by (bufferTime, key bytes). */
class EntryHeap {
  private readonly items: BufferEntry[] = []
  get size(): number {
    return this.items.length
  }
  peek(): BufferEntry | undefined {
    return this.items[0]
  }
  push(e: BufferEntry): void {
    const a = this.items
    a.push(e)
    let i = a.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (compareEntries(a[i]!, a[p]!) >= 0) break
      ;[a[i], a[p]] = [a[p]!, a[i]!]
      i = p
    }
  }
  pop(): BufferEntry | undefined {
    const a = this.items
    const top = a[0]
    const last = a.pop()
    if (a.length > 0 && last !== undefined) {
      a[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < a.length && compareEntries(a[l]!, a[m]!) < 0) m = l
        if (r < a.length && compareEntries(a[r]!, a[m]!) < 0) m = r
        if (m === i) break
        ;[a[i], a[m]] = [a[m]!, a[i]!]
        i = m
      }
    }
    return top
  }
}

// ---------------------------------------------------------------------------------------------
// The processor
// ---------------------------------------------------------------------------------------------

class SuppressProcessor<K, V> implements Processor<K, Change<V>, K, Change<V>> {
  private context!: ProcessorContext<K, Change<V>>
  private store!: KeyValueStore<Buffer, Buffer>
  private keySerde!: Serde<K>
  private valueSerde!: Serde<V>
  private topic = ''
  private readonly index = new Map<string, BufferEntry>()
  private readonly heap = new EntryHeap()
  private bufferBytes = 0
  private observedStreamTime = -1
  private readonly timeToWaitMs: number
  private readonly windowed: boolean
  /** `suppression-emit` (node) and `suppression-buffer-size/-count` (store) sensors. */
  private nodeMetrics: ProcessorNodeMetrics = NOOP_NODE_METRICS
  private bufferMetrics!: SuppressionBufferMetrics

  constructor(private readonly options: SuppressProcessorOptions<K, V>) {
    this.windowed = options.suppressed.kind === 'untilWindowCloses'
    this.timeToWaitMs = this.windowed ? options.windowGraceMs! : options.suppressed.timeToWaitMs!
  }

  async init(context: ProcessorContext<K, Change<V>>): Promise<void> {
    this.context = context
    const defaults = { keySerde: context.keySerde?.(), valueSerde: context.valueSerde?.() }
    const keySerde = resolveSerde(this.options.keySerde, defaults.keySerde, defaults)
    const valueSerde = resolveSerde(this.options.valueSerde, defaults.valueSerde, defaults)
    if (!keySerde || !valueSerde) {
      throw new StreamsConfigError(
        `suppression buffer needs a ${keySerde ? 'value' : 'key'} serde: set it on the upstream table (Materialized/Consumed) or configure a default serde`,
        { place: { processor: this.options.processorName, store: this.options.storeName } },
      )
    }
    this.keySerde = keySerde
    this.valueSerde = valueSerde
    this.topic = `${context.applicationId}-${this.options.storeName}-changelog`
    this.store = context.getStateStore<KeyValueStore<Buffer, Buffer>>(this.options.storeName)
    this.nodeMetrics = context.metrics?.() ?? NOOP_NODE_METRICS
    this.bufferMetrics = this.nodeMetrics.suppressionBuffer(this.options.storeName)
    for await (const kv of this.store.all()) {
      const entry = decodeBufferEntry(Buffer.from(kv.key), kv.value)
      this.add(entry)
    }
  }

  private add(entry: BufferEntry): void {
    this.index.set(entry.keyBytes.toString('latin1'), entry)
    this.heap.push(entry)
    this.bufferBytes += entry.size
  }

  async process(record: StreamRecord<K, Change<V>>): Promise<void> {
    this.observedStreamTime = Math.max(this.observedStreamTime, record.timestamp)
    await this.buffer(record)
    await this.enforceConstraints()
    this.bufferMetrics.size.record(this.bufferBytes)
    this.bufferMetrics.count.record(this.index.size)
  }

  /** Stream-time moved without a record (wall-clock idle advance): emits what expired by it. */
  async advanceStreamTime(streamTimeMs: number): Promise<void> {
    if (streamTimeMs <= this.observedStreamTime) return
    this.observedStreamTime = streamTimeMs
    await this.enforceConstraints()
    this.bufferMetrics.size.record(this.bufferBytes)
    this.bufferMetrics.count.record(this.index.size)
  }

  private async buffer(record: StreamRecord<K, Change<V>>): Promise<void> {
    const keyBytes = this.keySerde.serialize(this.topic, record.key)
    if (keyBytes === null)
      throw new StreamsError('suppression buffer key serialized to null', { place: { processor: this.options.processorName } })
    const id = keyBytes.toString('latin1')
    const change = record.value
    const newValue = this.valueSerde.serialize(this.topic, change.newValue)
    const existing = this.index.get(id)
    let entry: BufferEntry
    if (existing) {
      existing.recordTimestamp = record.timestamp
      existing.headers = record.headers
      existing.newValue = newValue
      entry = existing
    } else {
      const bufferTime = this.windowed ? (record.key as unknown as Windowed<unknown>).window.endMs : record.timestamp
      entry = {
        keyBytes: Buffer.from(keyBytes),
        bufferTime,
        recordTimestamp: record.timestamp,
        headers: record.headers,
        priorValue: this.valueSerde.serialize(this.topic, change.oldValue),
        newValue,
        size: 0,
      }
    }
    const encoded = encodeBufferEntry(entry)
    const size = 8 + entry.keyBytes.length + encoded.length
    if (existing) {
      this.bufferBytes += size - existing.size
      existing.size = size
    } else {
      entry.size = size
      this.add(entry)
    }
    await this.store.put(entry.keyBytes, encoded)
  }

  private overCapacity(): boolean {
    const { maxRecords, maxBytes } = this.options.suppressed.bufferConfig
    return this.index.size > maxRecords || this.bufferBytes > maxBytes
  }

  private async enforceConstraints(): Promise<void> {
    const expiryTime = this.observedStreamTime - this.timeToWaitMs
    for (let top = this.heap.peek(); top !== undefined && top.bufferTime <= expiryTime; top = this.heap.peek()) {
      await this.evictTop()
    }
    if (this.overCapacity()) {
      const config = this.options.suppressed.bufferConfig
      if (config.bufferFullStrategy === 'EMIT') {
        while (this.overCapacity() && this.heap.size > 0) await this.evictTop()
      } else {
        throw new StreamsError(
          `${this.options.processorName} buffer exceeded its max capacity. Currently [${this.index.size}/${config.maxRecords}] records and [${this.bufferBytes}/${config.maxBytes}] bytes.`,
          { place: { processor: this.options.processorName, store: this.options.storeName } },
        )
      }
    }
  }

  private async evictTop(): Promise<void> {
    const entry = this.heap.pop()!
    this.index.delete(entry.keyBytes.toString('latin1'))
    this.bufferBytes -= entry.size
    await this.store.put(entry.keyBytes, null)
    // untilWindowCloses: a window deleted before it closed never needs a final result.
    if (entry.newValue === null && this.windowed) return
    const key = this.keySerde.deserialize(this.topic, entry.keyBytes) as K
    const newValue = this.valueSerde.deserialize(this.topic, entry.newValue)
    const oldValue = this.valueSerde.deserialize(this.topic, entry.priorValue)
    this.nodeMetrics.suppressionEmit.record()
    await this.context.forward({ key, value: { newValue, oldValue }, timestamp: entry.recordTimestamp, headers: entry.headers })
  }
}
