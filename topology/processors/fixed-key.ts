/**
 * Fixed-key processors (`KStream#processValues`; Kafka Streams: `FixedKeyProcessor`,
 * `FixedKeyRecord`, KIP-820).
 *
 * In Kafka Streams a fixed-key processor forwards `FixedKeyRecord`s, which can only be made from
 * the input record and have no `withKey`: changing the key is impossible by construction, so the
 * stream keeps its partitioning and needs no repartition. Our processors forward plain
 * `StreamRecord`s, so this wrapper enforces the same rule at run time: while a record is being
 * processed, every forwarded record must carry that record's key (the same value: `Object.is`, or
 * equal bytes for a `Buffer`). A different key fails the task with an {@link IllegalStateError}
 * naming the processor and both keys. Records forwarded from punctuators are not checked (there is
 * no input key to compare with; in Kafka Streams they too carry a key taken from some input).
 * @internal
 */
import { IllegalStateError } from '../errors.js'
import type { FixedKeyProcessorSupplier, ProcessorContext, ProcessorSupplier, StreamRecord } from '../processor/types.js'

function sameKey(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true
  return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b)
}

function describeKey(k: unknown): string {
  if (Buffer.isBuffer(k)) return `<${k.length} bytes>`
  if (typeof k === 'string') return `'${k}'`
  try {
    return JSON.stringify(k) ?? String(k)
  } catch {
    return String(k)
  }
}

/** Wraps a fixed-key processor supplier so that forwarding another key than the input's fails. */
export function fixedKeyProcessorSupplier<K, V, VOut>(
  supplier: FixedKeyProcessorSupplier<K, V, VOut>,
  processorName: string,
): ProcessorSupplier<K, V, K, VOut> {
  return () => {
    const inner = supplier()
    /** The key of the record being processed; `inside` tells whether one is. */
    let inside = false
    let inputKey: unknown
    const check = (record: StreamRecord<unknown, unknown>): void => {
      if (inside && !sameKey(record.key, inputKey)) {
        throw new IllegalStateError(
          `processValues: processor '${processorName}' forwarded key ${describeKey(record.key)} for an input record with key ${describeKey(inputKey)}; a fixed-key processor cannot change the key (Kafka Streams' FixedKeyRecord has no withKey): use process() to change keys`,
          { place: { processor: processorName } },
        )
      }
    }
    return {
      init(context: ProcessorContext<K, VOut>) {
        if (inner.init === undefined) return
        const forward = (record: StreamRecord<any, any>, childName?: string): Promise<void> => {
          check(record)
          return context.forward(record, childName)
        }
        // Everything but forward goes to the engine's context itself (methods keep their `this`).
        const guarded = new Proxy(context, {
          get(target, prop) {
            if (prop === 'forward') return forward
            const v = Reflect.get(target, prop, target) as unknown
            return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
          },
        })
        return inner.init(guarded)
      },
      process(record: StreamRecord<K, V>) {
        inside = true
        inputKey = record.key
        let r: void | Promise<void>
        try {
          r = inner.process(record)
        } catch (e) {
          inside = false
          throw e
        }
        if (r === undefined || typeof (r as Promise<void>).then !== 'function') {
          inside = false
          return r
        }
        return (r as Promise<void>).finally(() => {
          inside = false
        })
      },
      ...(inner.close !== undefined ? { close: () => inner.close!() } : {}),
    }
  }
}
