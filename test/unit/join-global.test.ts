import { afterEach, describe, expect, it } from 'vitest'
import { Serdes, StreamsBuilder, TopologyError, type KStream } from '../../topology/index.js'
import { withKey } from '../../topology/index.js'
import { TopologyTestDriver } from '../../lib/testing/index.js'

const S = Serdes.String()
const J = Serdes.Json<{ productId: string; qty: number }>()

const drivers: TopologyTestDriver[] = []
afterEach(async () => {
  while (drivers.length) await drivers.pop()!.close()
})

/** Orders keyed by order id join products (a global table keyed by product id) through `order.productId`. */
function setup(leftJoin: boolean) {
  const b = new StreamsBuilder()
  const orders = b.stream<string, { productId: string; qty: number }>('orders', { keySerde: S, valueSerde: J })
  const products = b.globalTable<string, string>('products', { keySerde: S, valueSerde: S }, { storeName: 'products-store' })
  const joined: KStream<string, string> = leftJoin
    ? orders.leftJoin(
        products,
        (_orderId, o) => o.productId,
        (o, name) => `${o.qty}x${name}`,
      )
    : orders.join(
        products,
        (_orderId, o) => o.productId,
        (o, name) => `${o.qty}x${name}`,
      )
  joined.to('out', { keySerde: S, valueSerde: S })
  const driver = new TopologyTestDriver(b.build())
  drivers.push(driver)
  const out = driver.createOutputTopic('out', S, S)
  return {
    driver,
    b,
    orders: driver.createInputTopic('orders', S, J),
    products: driver.createInputTopic('products', S, S),
    read: () => out.readRecordsToList().map((x) => `${x.key}:${x.value}@${x.timestamp}`),
  }
}

describe('stream-GlobalKTable join', () => {
  it('looks up the key chosen by the key selector; the result keeps the stream key and timestamp', async () => {
    const h = setup(false)
    await h.products.pipeInput('p1', 'apple', 100)
    await h.products.pipeInput('p2', 'pear', 100)
    await h.orders.pipeInput('o1', { productId: 'p2', qty: 3 }, 7)
    await h.orders.pipeInput('o2', { productId: 'p1', qty: 1 }, 8)
    await h.orders.pipeInput('o3', { productId: 'p9', qty: 1 }, 9) // no such product: inner join drops it
    expect(h.read()).toEqual(['o1:3xpear@7', 'o2:1xapple@8'])
    expect(h.driver.droppedRecords()).toBe(0)
  })

  it('global table updates emit nothing; later stream records see them; a tombstone removes the row', async () => {
    const h = setup(false)
    await h.products.pipeInput('p1', 'apple', 1)
    await h.products.pipeInput('p1', 'green apple', 2)
    expect(h.read()).toEqual([])
    await h.orders.pipeInput('o1', { productId: 'p1', qty: 2 }, 3)
    await h.products.pipeInput('p1', null, 4)
    await h.orders.pipeInput('o2', { productId: 'p1', qty: 2 }, 5)
    expect(h.read()).toEqual(['o1:2xgreen apple@3'])
  })

  it('left join: a missing row joins with null', async () => {
    const h = setup(true)
    await h.orders.pipeInput('o1', { productId: 'p1', qty: 2 }, 3)
    await h.products.pipeInput('p1', 'apple', 4)
    await h.orders.pipeInput('o2', { productId: 'p1', qty: 5 }, 5)
    expect(h.read()).toEqual(['o1:2xnull@3', 'o2:5xapple@5'])
  })

  it('drops and counts records whose selected key is null, and records with a null value', async () => {
    const b = new StreamsBuilder()
    const orders = b.stream<string, string>('orders', { keySerde: S, valueSerde: S })
    const products = b.globalTable<string, string>('products', { keySerde: S, valueSerde: S })
    orders
      .join(
        products,
        (_k, v) => (v === 'none' ? null : v),
        (v, p: string) => `${v}=${p}`,
      )
      .to('out', { keySerde: S, valueSerde: S })
    const d = new TopologyTestDriver(b.build())
    drivers.push(d)
    await d.createInputTopic('products', S, S).pipeInput('p', 'P', 0)
    const o = d.createInputTopic('orders', S, S)
    await o.pipeInput('a', 'none', 1)
    await o.pipeInput('b', null, 2)
    await o.pipeInput('c', 'p', 3)
    expect(d.createOutputTopic('out', S, S).readKeyValuesToList()).toEqual([{ key: 'c', value: 'p=P' }])
    expect(d.droppedRecords()).toBe(2)
  })

  it('needs neither repartitioning nor co-partitioning, even after a key change', () => {
    const b = new StreamsBuilder()
    const orders = b.stream<string, string>('orders').selectKey((_k, v) => v)
    const products = b.globalTable<string, string>('products')
    orders
      .join(
        products,
        (k) => k,
        withKey((k: string, v: string, p: string) => `${k}${v}${p}`),
      )
      .to('out')
    const def = b.build().resolve('app')
    expect(def.repartitionTopics).toEqual([])
    expect(def.copartitionGroups ?? []).toEqual([])
    // the global store is not connected to the join processor (global stores are readable everywhere)
    expect(b.build().describe().toString()).toContain('Processor: KSTREAM-LEFTJOIN-0000000005 (stores: [])')
  })

  it('rejects a missing key selector, naming it', () => {
    const b = new StreamsBuilder()
    const orders = b.stream<string, string>('orders')
    const products = b.globalTable<string, string>('products')
    expect(() => (orders.join as any)(products, undefined, (a: string) => a)).toThrow(TopologyError)
    expect(() => (orders.join as any)(products, undefined, (a: string) => a)).toThrow(/keySelector/)
  })

  it('types: key selector and joiner see the stream and global table types', () => {
    const b = new StreamsBuilder()
    const orders = b.stream<string, number>('orders')
    const products = b.globalTable<number, string>('products')
    const ok: KStream<string, string> = orders.join(
      products,
      (_k: string, v: number) => v,
      (v: number, p: string) => `${v}${p}`,
    )
    // prettier-ignore
    // @ts-expect-error the global table's key is a number, the selector returns a string
    orders.join(products, (k: string) => k, (v: number, p: string) => `${v}${p}`)
    // prettier-ignore
    // @ts-expect-error the global value is a string, not a number
    orders.join(products, (_k: string, v: number) => v, (v: number, p: number) => v + p)
    expect(ok.name).toMatch(/^KSTREAM-LEFTJOIN-/)
  })
})
