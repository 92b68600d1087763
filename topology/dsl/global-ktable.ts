/**
 * `GlobalKTable<K, V>`: a table fully replicated to every instance (Kafka Streams: `GlobalKTable`).
 * Streams join it by a key derived from each record, without co-partitioning.
 */
import type { Serde } from '../serde.js'
import type { InternalTopologyBuilder } from '../internals/internal-topology-builder.js'
import { storeValueGetterSupplier, type KTableValueGetterSupplier } from '../processors/table.js'

/** A global table. Create with `StreamsBuilder.globalTable`. */
export class GlobalKTable<K, V> {
  /** @internal */ readonly builder: InternalTopologyBuilder
  /** Name of the global store (the Materialized store name, or a generated `<topic>-STATE-STORE-<n>`). */
  readonly queryableStoreName: string
  /** @internal */ readonly keySerde: Serde<K> | undefined
  /** @internal */ readonly valueSerde: Serde<V> | undefined

  /** Made by `StreamsBuilder.globalTable`; not for applications. */
  constructor(init: {
    builder: InternalTopologyBuilder
    storeName: string
    keySerde?: Serde<K> | undefined
    valueSerde?: Serde<V> | undefined
  }) {
    this.builder = init.builder
    this.queryableStoreName = init.storeName
    this.keySerde = init.keySerde
    this.valueSerde = init.valueSerde
    Object.freeze(this)
  }

  /**
   * @internal Lookups by key in the global store (timestamped values). Global stores are readable
   * from every processor, so `storeNames()` need not (and cannot) be connected.
   */
  valueGetterSupplier(): KTableValueGetterSupplier<K, V> {
    return storeValueGetterSupplier<K, V>(this.queryableStoreName)
  }
}
