/**
 * Key-value aggregations (Kafka Streams: `KStreamAggregate`, `KStreamReduce`, `KTableAggregate`,
 * `KTableReduce`). Results live in a timestamped store and are forwarded as `Change<VAgg>`
 * (old value only when a downstream asked for it). The result timestamp is the largest input
 * timestamp folded into the aggregate.
 */
import type { Processor, ProcessorContext, ProcessorSupplier, StreamRecord } from '../processor/types.js'
import type { TimestampedKeyValueStore } from '../state/typed.js'
import { valueAndTimestamp } from '../state/typed.js'
import { change, type Change } from './change.js'
import type { TableNodeFlags } from './table.js'
import { TimestampedTupleForwarder } from './forwarder.js'

abstract class AggProcessor<K, VIn, VAgg> implements Processor<K, VIn, K, Change<VAgg>> {
  protected ctx!: ProcessorContext<K, Change<VAgg>>
  protected store!: TimestampedKeyValueStore<K, VAgg>
  protected sendOldValues = false
  private forwarder!: TimestampedTupleForwarder<K, VAgg>
  constructor(protected readonly flags: TableNodeFlags) {}
  init(context: ProcessorContext<K, Change<VAgg>>): void {
    this.ctx = context
    this.sendOldValues = this.flags.sendOldValues
    this.store = context.getStateStore<TimestampedKeyValueStore<K, VAgg>>(this.flags.storeName!)
    this.forwarder = new TimestampedTupleForwarder(this.store, context, this.sendOldValues)
  }
  abstract process(record: StreamRecord<K, VIn>): void | Promise<void>
  /** Drops and counts a record with a null key (or, with `checkValue`, a null value); true when dropped. */
  protected droppedForNull(r: StreamRecord<K, unknown>, checkValue: boolean): boolean {
    if (isNullish(r.key)) {
      this.ctx.recordDropped('null-key')
      return true
    }
    if (checkValue && isNullish(r.value)) {
      this.ctx.recordDropped('null-value')
      return true
    }
    return false
  }
  protected async emit(r: StreamRecord<K, unknown>, newAgg: VAgg | null, oldAgg: VAgg | null, ts: number): Promise<void> {
    await this.store.put(r.key, valueAndTimestamp(newAgg, ts))
    // with caching the store's flush forwards the key's latest aggregate (KIP-63)
    return this.forwarder.maybeForward({
      key: r.key,
      value: change(newAgg, this.sendOldValues ? oldAgg : null),
      timestamp: ts,
      headers: r.headers,
    })
  }
}

function isNullish(v: unknown): v is null | undefined {
  return v === null || v === undefined
}

/** `KGroupedStream.aggregate` / `count`: records with a null key or value are dropped and counted. */
export function streamAggregateSupplier<K, V, VAgg>(
  flags: TableNodeFlags,
  initializer: () => VAgg,
  aggregator: (key: K, value: V, aggregate: VAgg) => VAgg,
): ProcessorSupplier<K, V, K, Change<VAgg>> {
  return () =>
    new (class extends AggProcessor<K, V, VAgg> {
      async process(r: StreamRecord<K, V>) {
        if (this.droppedForNull(r, true)) return
        const old = await this.store.get(r.key)
        const oldAgg = old === undefined ? null : old.value
        const base = oldAgg === null ? initializer() : oldAgg
        const ts = old === undefined ? r.timestamp : Math.max(r.timestamp, old.timestamp)
        return this.emit(r, aggregator(r.key, r.value, base), oldAgg, ts)
      }
    })(flags)
}

/** `KGroupedStream.reduce`: the first value starts the aggregate. */
export function streamReduceSupplier<K, V>(
  flags: TableNodeFlags,
  reducer: (aggregate: V, value: V) => V,
): ProcessorSupplier<K, V, K, Change<V>> {
  return () =>
    new (class extends AggProcessor<K, V, V> {
      async process(r: StreamRecord<K, V>) {
        if (this.droppedForNull(r, true)) return
        const old = await this.store.get(r.key)
        if (old === undefined) return this.emit(r, r.value, null, r.timestamp)
        return this.emit(r, reducer(old.value, r.value), old.value, Math.max(r.timestamp, old.timestamp))
      }
    })(flags)
}

/** `KGroupedTable.aggregate` / `count`: subtract the old value, then add the new one. */
export function tableAggregateSupplier<K, V, VAgg>(
  flags: TableNodeFlags,
  initializer: () => VAgg,
  adder: (key: K, value: V, aggregate: VAgg) => VAgg,
  subtractor: (key: K, value: V, aggregate: VAgg) => VAgg,
): ProcessorSupplier<K, Change<V>, K, Change<VAgg>> {
  return () =>
    new (class extends AggProcessor<K, Change<V>, VAgg> {
      async process(r: StreamRecord<K, Change<V>>) {
        if (this.droppedForNull(r, false)) return
        const old = await this.store.get(r.key)
        const oldAgg = old === undefined ? null : old.value
        let ts = r.timestamp
        let intermediate: VAgg | null = oldAgg
        if (r.value.oldValue !== null && oldAgg !== null) {
          intermediate = subtractor(r.key, r.value.oldValue, oldAgg)
          ts = Math.max(r.timestamp, old!.timestamp)
        }
        let newAgg: VAgg | null = intermediate
        if (r.value.newValue !== null) {
          newAgg = adder(r.key, r.value.newValue, intermediate === null ? initializer() : intermediate)
          if (old !== undefined) ts = Math.max(r.timestamp, old.timestamp)
        }
        return this.emit(r, newAgg, oldAgg, ts)
      }
    })(flags)
}

/** `KGroupedTable.reduce`: subtract the old value, then add the new one (first value starts the aggregate). */
export function tableReduceSupplier<K, V>(
  flags: TableNodeFlags,
  adder: (aggregate: V, value: V) => V,
  subtractor: (aggregate: V, value: V) => V,
): ProcessorSupplier<K, Change<V>, K, Change<V>> {
  return () =>
    new (class extends AggProcessor<K, Change<V>, V> {
      async process(r: StreamRecord<K, Change<V>>) {
        if (this.droppedForNull(r, false)) return
        const old = await this.store.get(r.key)
        const oldAgg = old === undefined ? null : old.value
        let ts = r.timestamp
        let intermediate: V | null = oldAgg
        if (r.value.oldValue !== null && oldAgg !== null) {
          intermediate = subtractor(oldAgg, r.value.oldValue)
          ts = Math.max(r.timestamp, old!.timestamp)
        }
        let newAgg: V | null = intermediate
        if (r.value.newValue !== null) {
          if (intermediate === null) newAgg = r.value.newValue
          else {
            newAgg = adder(intermediate, r.value.newValue)
            ts = Math.max(r.timestamp, old!.timestamp)
          }
        }
        return this.emit(r, newAgg, oldAgg, ts)
      }
    })(flags)
}
