/**
 * Stateless KStream processors (Kafka Streams: `KStreamFilter`, `KStreamMap`, `KStreamMapValues`,
 * `KStreamFlatMap`, `KStreamFlatMapValues`, `KStreamPeek`, `KStreamBranch`, `KStreamPrint`,
 * `PassThrough`). Each is a {@link ProcessorSupplier}; user functions run synchronously and the
 * processors return the `forward` promise directly, without an extra `await`.
 */
import type { KeyValue } from '../state/types.js'
import type { Processor, ProcessorContext, ProcessorSupplier, StreamRecord } from '../processor/types.js'

/** A mapper result: a `{ key, value }` object or a `[key, value]` tuple. */
export type KeyValueLike<K, V> = KeyValue<K, V> | readonly [K, V]

/** Normalizes a {@link KeyValueLike}. */
export function toKeyValue<K, V>(kv: KeyValueLike<K, V>): KeyValue<K, V> {
  if (Array.isArray(kv)) return { key: kv[0] as K, value: kv[1] as V }
  return kv as KeyValue<K, V>
}

abstract class Base<KIn, VIn, KOut, VOut> implements Processor<KIn, VIn, KOut, VOut> {
  protected ctx!: ProcessorContext<KOut, VOut>
  init(context: ProcessorContext<KOut, VOut>): void {
    this.ctx = context
  }
  abstract process(record: StreamRecord<KIn, VIn>): void | Promise<void>
}

/** Forwards records for which `predicate(key, value) !== not`. */
export function filterSupplier<K, V>(predicate: (key: K, value: V) => boolean, not: boolean): ProcessorSupplier<K, V, K, V> {
  return () =>
    new (class extends Base<K, V, K, V> {
      process(r: StreamRecord<K, V>) {
        if (predicate(r.key, r.value) !== not) return this.ctx.forward(r)
      }
    })()
}

/** Replaces key and value (`map`, `selectKey`). */
export function mapSupplier<K, V, KR, VR>(mapper: (key: K, value: V) => KeyValueLike<KR, VR>): ProcessorSupplier<K, V, KR, VR> {
  return () =>
    new (class extends Base<K, V, KR, VR> {
      process(r: StreamRecord<K, V>) {
        const kv = toKeyValue(mapper(r.key, r.value))
        return this.ctx.forward({ key: kv.key, value: kv.value, timestamp: r.timestamp, headers: r.headers })
      }
    })()
}

/** Replaces the key only (`selectKey`). */
export function selectKeySupplier<K, V, KR>(mapper: (key: K, value: V) => KR): ProcessorSupplier<K, V, KR, V> {
  return () =>
    new (class extends Base<K, V, KR, V> {
      process(r: StreamRecord<K, V>) {
        return this.ctx.forward({ key: mapper(r.key, r.value), value: r.value, timestamp: r.timestamp, headers: r.headers })
      }
    })()
}

/** Replaces the value only (`mapValues`); the mapper gets `(value, key)`. */
export function mapValuesSupplier<K, V, VR>(mapper: (value: V, key: K) => VR): ProcessorSupplier<K, V, K, VR> {
  return () =>
    new (class extends Base<K, V, K, VR> {
      process(r: StreamRecord<K, V>) {
        return this.ctx.forward({ key: r.key, value: mapper(r.value, r.key), timestamp: r.timestamp, headers: r.headers })
      }
    })()
}

/** Zero or more records per input (`flatMap`). */
export function flatMapSupplier<K, V, KR, VR>(
  mapper: (key: K, value: V) => Iterable<KeyValueLike<KR, VR>>,
): ProcessorSupplier<K, V, KR, VR> {
  return () =>
    new (class extends Base<K, V, KR, VR> {
      async process(r: StreamRecord<K, V>) {
        for (const out of mapper(r.key, r.value)) {
          const kv = toKeyValue(out)
          await this.ctx.forward({ key: kv.key, value: kv.value, timestamp: r.timestamp, headers: r.headers })
        }
      }
    })()
}

/** Zero or more values per input, same key (`flatMapValues`); the mapper gets `(value, key)`. */
export function flatMapValuesSupplier<K, V, VR>(mapper: (value: V, key: K) => Iterable<VR>): ProcessorSupplier<K, V, K, VR> {
  return () =>
    new (class extends Base<K, V, K, VR> {
      async process(r: StreamRecord<K, V>) {
        for (const v of mapper(r.value, r.key)) await this.ctx.forward({ key: r.key, value: v, timestamp: r.timestamp, headers: r.headers })
      }
    })()
}

/** Calls `action` and forwards unchanged (`peek`), or only calls it (`foreach`, `forward = false`). */
export function peekSupplier<K, V>(action: (key: K, value: V) => void, forward: boolean): ProcessorSupplier<K, V, K, V> {
  return () =>
    new (class extends Base<K, V, K, V> {
      process(r: StreamRecord<K, V>) {
        action(r.key, r.value)
        if (forward) return this.ctx.forward(r)
      }
    })()
}

/** Forwards unchanged (branch children, merge, repartition filter). */
export function passThroughSupplier<K, V>(): ProcessorSupplier<K, V, K, V> {
  return () =>
    new (class extends Base<K, V, K, V> {
      process(r: StreamRecord<K, V>) {
        return this.ctx.forward(r)
      }
    })()
}

/**
 * Sends each record to the child of the first matching predicate (`split().branch(...)`);
 * unmatched records go to `defaultChild` when set, else are dropped. `predicates` and
 * `childNames` are read at init, so branches added after the splitter node still count.
 */
export function branchSupplier<K, V>(
  predicates: ReadonlyArray<(key: K, value: V) => boolean>,
  childNames: ReadonlyArray<string>,
  defaultChild: () => string | undefined,
): ProcessorSupplier<K, V, K, V> {
  return () =>
    new (class extends Base<K, V, K, V> {
      private def: string | undefined
      override init(context: ProcessorContext<K, V>): void {
        super.init(context)
        this.def = defaultChild()
      }
      process(r: StreamRecord<K, V>) {
        for (let i = 0; i < predicates.length; i++) {
          if (predicates[i]!(r.key, r.value)) return this.ctx.forward(r, childNames[i])
        }
        if (this.def !== undefined) return this.ctx.forward(r, this.def)
      }
    })()
}

/** Prints each record (`print`). */
export function printSupplier<K, V>(
  label: string,
  writer: (line: string) => void,
  mapper: (key: K, value: V) => string,
): ProcessorSupplier<K, V, never, never> {
  return () => ({
    process(r: StreamRecord<K, V>) {
      writer(`[${label}]: ${mapper(r.key, r.value)}`)
    },
  })
}
