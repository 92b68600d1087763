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

  constructor(private readonly spec: StreamTableJoinProcessorSpec<K, V, KT, VT, VOut>) {
    this.getter = spec.valueGetter.get()
  }

  init(context: ProcessorContext<K, VOut>): void {
    this.ctx = context
    this.getter.init(context)
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
    let tableValue: VT | null = null
    if (lookupKey !== null && lookupKey !== undefined) {
      const found = await this.getter.get(lookupKey)
      tableValue = found === null || found === undefined ? null : found.value
      if (tableValue === undefined) tableValue = null
    }
    if (tableValue === null && !this.spec.leftJoin) return
    await this.ctx.forward({ ...record, value: this.spec.joiner(key, value, tableValue) })
  }
}
