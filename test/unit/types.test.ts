/**
 * Type-level tests: every `@ts-expect-error` line must be a compile error (checked by
 * `npm run typecheck`, which compiles this file); the runtime assertions check the inferred
 * types flow where the compiler accepts them.
 */
import { describe, expect, expectTypeOf, it } from 'vitest'
import {
  Consumed,
  Grouped,
  type KStream,
  type KTable,
  Materialized,
  Produced,
  Serdes,
  StreamsBuilder,
  TopologyError,
  Stores,
  type KGroupedStream,
} from '../../lib/index.js'

interface Order {
  id: string
  amount: number
}

const S = Serdes.String()
const orderSerde = Serdes.Json<Order>()

describe('types flow through the DSL', () => {
  it('infers key and value types from Consumed and through each operation', () => {
    const b = new StreamsBuilder()
    const orders = b.stream('orders', Consumed.with(S, orderSerde))
    expectTypeOf(orders).toEqualTypeOf<KStream<string, Order>>()
    const amounts = orders.mapValues((o) => o.amount)
    expectTypeOf(amounts).toEqualTypeOf<KStream<string, number>>()
    const byAmount = orders.map((k, o) => ({ key: o.amount, value: k }))
    expectTypeOf(byAmount).toEqualTypeOf<KStream<number, string>>()
    const tupled = orders.map((k, o) => [o.id, k.length] as const)
    expectTypeOf(tupled).toEqualTypeOf<KStream<string, number>>()
    const grouped = orders.groupBy((_k, o) => o.id, Grouped.with(S, orderSerde))
    expectTypeOf(grouped).toEqualTypeOf<KGroupedStream<string, Order>>()
    const totals = grouped.aggregate(
      () => 0,
      (_k, o, sum) => sum + o.amount,
    )
    expectTypeOf(totals).toEqualTypeOf<KTable<string, number>>()
    expectTypeOf(grouped.count()).toEqualTypeOf<KTable<string, number>>()
    expectTypeOf(totals.toStream()).toEqualTypeOf<KStream<string, number | null>>()
    expect(totals.name).toMatch(/^KSTREAM-AGGREGATE-\d{10}$/)
  })

  it('rejects wrong types at compile time', () => {
    const b = new StreamsBuilder()
    const orders = b.stream('orders', Consumed.with(S, orderSerde))
    const grouped = orders.groupByKey()

    // prettier-ignore
    // @ts-expect-error the aggregator must return the aggregate type (number), not a string
    grouped.aggregate(() => 0, (_k, o, sum) => `${sum}${o.id}`)

    // prettier-ignore
    // @ts-expect-error the aggregator's value parameter is an Order, it has no 'price'
    grouped.aggregate(() => 0, (_k, o, sum) => sum + o.price)

    // prettier-ignore
    // @ts-expect-error a reducer combines Orders, not numbers
    grouped.reduce((a: number, v: number) => a + v)

    const amounts = orders.mapValues((o) => o.amount)
    // prettier-ignore
    // @ts-expect-error mapValues produced numbers: a string serde cannot write them
    amounts.to('amounts', Produced.with(S, S))

    // prettier-ignore
    // @ts-expect-error a Materialized for string values cannot hold the numeric count
    grouped.count(Materialized.as<string, string>('counts'))

    // prettier-ignore
    // @ts-expect-error the key serde must match the key type
    orders.to('out', Produced.with(Serdes.Integer(), orderSerde))

    // prettier-ignore
    // @ts-expect-error filter predicates return booleans over (key, value)
    orders.filter((_k, o) => o.amount)

    const table = b.table('t', Consumed.with(S, Serdes.Long()))
    // prettier-ignore
    // @ts-expect-error a table-table joiner gets the two table values (number | null for a left join)
    table.leftJoin(table, (l: number, r: number) => l + r)

    const other = b.stream('other', Consumed.with(Serdes.Integer(), S))
    // prettier-ignore
    // @ts-expect-error merged streams must have the same key and value types
    orders.merge(other)

    // prettier-ignore
    // @ts-expect-error processors must accept the stream's record types
    orders.process<string, string>(() => ({ process: (r: { key: number; value: Order; timestamp: number; headers: Record<string, never> }) => void r }))

    expect(() => grouped.aggregate(() => 0, undefined as never)).toThrow(TopologyError)
  })

  it('a typed Processor API store and StoreBuilder', () => {
    const storeBuilder = Stores.keyValueStoreBuilder('s', S, Serdes.Long())
    expectTypeOf(storeBuilder.build().name).toEqualTypeOf<string>()
    expect(storeBuilder.withLoggingDisabled().build()).toMatchObject({ name: 's', type: 'keyValue', loggingEnabled: false })
    expect(storeBuilder.build().loggingEnabled).toBe(true)
  })
})
