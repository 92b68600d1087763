/**
 * Stream-table and stream-GlobalKTable joins (Kafka Streams: `KStreamKTableJoin`,
 * `KStreamGlobalKTableJoin`, `KStreamKTableJoinProcessor`).
 *
 * Only stream records trigger output: each looks up the table's current value for its key (or,
 * for a GlobalKTable, for the key its `keySelector` returns) and is joined with it. The result
 * keeps the stream record's key, timestamp and headers. Table updates change what later stream
 * records see, and emit nothing.
 *
 * - inner join: a stream record whose lookup finds nothing is dropped (not counted: this is the
 *   join's answer, not bad data);
 * - left join: it is joined with `null`;
 * - a stream record with a `null` value, or whose lookup key is `null`, is dropped and counted
 *   (`context.recordDropped`); except that a left join joins a `null`-key stream record with `null`
 *   when its value is not `null` (KIP-962, Kafka Streams ≥ 3.7; for a GlobalKTable the key
 *   selector still runs and may find a row).
 */
import type { Processor, ProcessorContext, ProcessorSupplier, StreamRecord } from '../../processor/types.js'
import type { KTableValueGetter, KTableValueGetterSupplier } from '../table.js'
import { StreamsConfigError, TopologyError } from '../../errors.js'
import { resolveSerde, type Serde } from '../../serde.js'
import type { KeyValueStore } from '../../state/types.js'
import { TimeOrderedRecordBuffer } from './stream-table-buffer.js'

/** Options of {@link streamTableJoinProcessorSupplier}. */
export interface StreamTableJoinProcessorSpec<K, V, KT, VT, VOut> {
  /** The table's value getter (for a GlobalKTable: reads the global store). */
  readonly valueGetter: KTableValueGetterSupplier<KT, VT>
  /** Maps a stream record to the table key; identity for KTable joins. */
  readonly keyMapper: (key: K, value: V) => KT | null | undefined
  /** Called as `(streamKey, streamValue, tableValue)`; `tableValue` is `null` only in left joins. */
  readonly joiner: (key: K, value: V, tableValue: VT | null) => VOut
  readonly leftJoin: boolean
  /** Word used in drop reasons: 'stream-table' or 'stream-globalTable'. */
  readonly kind: string
  /**
   * `Joined.withGracePeriod` (KIP-923): stream records wait this long (ms of stream-time) in the
   * buffer store `bufferStoreName` and are joined in timestamp order. The table must be versioned.
   */
  readonly grace?: {
    readonly gracePeriodMs: number
    readonly bufferStoreName: string
    /** Serdes of the stream's keys and values in the buffer (undefined: the defaults). */
    readonly keySerde: Serde<K> | undefined
    readonly valueSerde: Serde<V> | undefined
    /** The join processor's name (errors). */
    readonly processorName: string
  }
}

/** `KSTREAM-JOIN-…` / `KSTREAM-LEFTJOIN-…` of a stream with a KTable or GlobalKTable. */
export function streamTableJoinProcessorSupplier<K, V, KT, VT, VOut>(
  spec: StreamTableJoinProcessorSpec<K, V, KT, VT, VOut>,
): ProcessorSupplier<K, V, K, VOut> {
  return () => new StreamTableJoinProcessor<K, V, KT, VT, VOut>(spec)
}

class StreamTableJoinProcessor<K, V, KT, VT, VOut> implements Processor<K, V, K, VOut> {
  private ctx!: ProcessorContext<K, VOut>
  private readonly getter: KTableValueGetter<KT, VT>
  private versioned = false
  private buffer: TimeOrderedRecordBuffer<K, V> | undefined

  constructor(private readonly spec: StreamTableJoinProcessorSpec<K, V, KT, VT, VOut>) {
    this.getter = spec.valueGetter.get()
  }

  init(context: ProcessorContext<K, VOut>): void {
    this.ctx = context
    this.getter.init(context)
    this.versioned = this.getter.isVersioned?.() ?? false
    const grace = this.spec.grace
    if (grace !== undefined) {
      if (!this.versioned)
        throw new TopologyError('KTable must be versioned to use a grace period in a stream table join', {
          place: { processor: grace.processorName },
        })
      const defaults = { keySerde: context.keySerde?.(), valueSerde: context.valueSerde?.() }
      const keySerde = resolveSerde(grace.keySerde, defaults.keySerde, defaults)
      const valueSerde = resolveSerde(grace.valueSerde, defaults.valueSerde, defaults)
      if (keySerde === undefined || valueSerde === undefined)
        throw new StreamsConfigError(
          `the grace-period buffer of a stream-table join needs the stream's ${keySerde ? 'value' : 'key'} serde: give it in Joined or configure a default serde`,
          { place: { processor: grace.processorName, store: grace.bufferStoreName } },
        )
      this.buffer = new TimeOrderedRecordBuffer<K, V>(
        context.getStateStore<KeyValueStore<Buffer, Buffer>>(grace.bufferStoreName),
        grace.gracePeriodMs,
        keySerde,
        valueSerde,
        `${context.applicationId}-${grace.bufferStoreName}-changelog`,
      )
    }
  }

  async process(record: StreamRecord<K, V>): Promise<void> {
    const { key, value } = record
    if (value === null || value === undefined) {
      this.ctx.recordDropped(`${this.spec.kind} join: stream record with null value`)
      return
    }
    const nullKeyLeft = this.spec.leftJoin && (key === null || key === undefined)
    const lookupKey = this.spec.keyMapper(key, value)
    if ((lookupKey === null || lookupKey === undefined) && !nullKeyLeft) {
      this.ctx.recordDropped(`${this.spec.kind} join: stream record with null join key`)
      return
    }
    if (this.buffer === undefined || nullKeyLeft || !(await this.buffer.put(record))) return this.join(record, lookupKey)
    await this.buffer.evict((r) => this.join(r, this.spec.keyMapper(r.key, r.value)))
  }

  private async join(record: StreamRecord<K, V>, lookupKey: KT | null | undefined): Promise<void> {
    const { key, value } = record
    let tableValue: VT | null = null
    if (lookupKey !== null && lookupKey !== undefined) {
      // A versioned table is read as of the stream record's time (KIP-914).
      const found =
        this.versioned && this.getter.getAsOf ? await this.getter.getAsOf(lookupKey, record.timestamp) : await this.getter.get(lookupKey)
      tableValue = found === null || found === undefined ? null : found.value
      if (tableValue === undefined) tableValue = null
    }
    if (tableValue === null && !this.spec.leftJoin) return
    await this.ctx.forward({ ...record, value: this.spec.joiner(key, value, tableValue) })
  }
}
