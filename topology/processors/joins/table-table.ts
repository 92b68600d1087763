/**
 * Table-table joins (Kafka Streams: `KTableKTableInnerJoin`, `KTableKTableLeftJoin`,
 * `KTableKTableRightJoin`, `KTableKTableOuterJoin`, `KTableKTableJoinMerger`).
 *
 * Both tables are materialized (or readable through value getters). An update on either side is a
 * `Change { newValue, oldValue }`; the processor of that side looks up the other side's current
 * value through its value getter and forwards `Change { newValue: join(new, other), oldValue:
 * join(old, other) }` with the later of the two timestamps. Where the join type says there is no
 * result (inner: a side is missing; left: the left side is missing), the joined value is `null`,
 * so deletes propagate as tombstones: an inner join forwards a tombstone when one side is deleted
 * while the other exists.
 *
 * | kind  | result for (left, right)                         |
 * |-------|--------------------------------------------------|
 * | inner | `joiner(l, r)` if both present, else none        |
 * | left  | `joiner(l, r ?? null)` if `l` present, else none |
 * | outer | `joiner(l ?? null, r ?? null)` if either present |
 */
import type { Processor, ProcessorContext, ProcessorSupplier, StreamRecord } from '../../processor/types.js'
import type { Change } from '../change.js'
import type { TimestampedKeyValueStore } from '../../state/typed.js'
import type { JoinSide } from './outer-join-store.js'
import { OUT_OF_ORDER_VERSIONED_DROP_REASON, putTableValue, type KTableValueGetter, type KTableValueGetterSupplier } from '../table.js'

/** The three table-table join kinds. */
export type TableJoinKind = 'inner' | 'left' | 'outer'

/**
 * The joined value for `left`/`right` (`null` = absent), or `null` when the join type yields no
 * row for them.
 */
export function tableJoinResult<VL, VR, VOut>(
  kind: TableJoinKind,
  joiner: (left: VL | null, right: VR | null) => VOut,
  left: VL | null,
  right: VR | null,
): VOut | null {
  switch (kind) {
    case 'inner':
      return left !== null && right !== null ? joiner(left, right) : null
    case 'left':
      return left !== null ? joiner(left, right) : null
    case 'outer':
      return left !== null || right !== null ? joiner(left, right) : null
  }
}

function orNull<T>(v: T | null | undefined): T | null {
  return v === undefined ? null : v
}

/** Options of {@link tableTableJoinProcessorSupplier}. */
export interface TableTableJoinProcessorSpec<K, VL, VR, VOut> {
  readonly kind: TableJoinKind
  /** The input this processor handles. */
  readonly side: JoinSide
  /** Value getter of the other table. */
  readonly otherValueGetter: KTableValueGetterSupplier<K, unknown>
  /** Called as `(leftValue, rightValue)`; `null` marks a missing side (left/outer joins). */
  readonly joiner: (left: VL | null, right: VR | null) => VOut
  /**
   * Build-time flags: `sendOldValues` tells whether downstream needs old values (Kafka Streams:
   * `enableSendingOldValues`); it is read per record, so it can be switched on after the node was
   * added. When false, `oldValue` is always `null`.
   */
  readonly flags: { readonly sendOldValues: boolean }
}

/**
 * `KTABLE-JOINTHIS/JOINOTHER-…`, `KTABLE-LEFTTHIS/LEFTOTHER-…`, `KTABLE-OUTERTHIS/OUTEROTHER-…`:
 * joins an update of one side with the other side's current value.
 */
export function tableTableJoinProcessorSupplier<K, VL, VR, VOut>(
  spec: TableTableJoinProcessorSpec<K, VL, VR, VOut>,
): ProcessorSupplier<K, Change<unknown>, K, Change<VOut>> {
  return () => new TableTableJoinProcessor<K, VL, VR, VOut>(spec)
}

class TableTableJoinProcessor<K, VL, VR, VOut> implements Processor<K, Change<unknown>, K, Change<VOut>> {
  private ctx!: ProcessorContext<K, Change<VOut>>
  private readonly getter: KTableValueGetter<K, unknown>

  constructor(private readonly spec: TableTableJoinProcessorSpec<K, VL, VR, VOut>) {
    this.getter = spec.otherValueGetter.get()
  }

  init(context: ProcessorContext<K, Change<VOut>>): void {
    this.ctx = context
    this.getter.init(context)
  }

  private result(thisValue: unknown, otherValue: unknown): VOut | null {
    const { kind, joiner, side } = this.spec
    return side === 'left'
      ? tableJoinResult(kind, joiner, thisValue as VL | null, otherValue as VR | null)
      : tableJoinResult(kind, joiner, otherValue as VL | null, thisValue as VR | null)
  }

  async process(record: StreamRecord<K, Change<unknown>>): Promise<void> {
    const { key } = record
    if (key === null || key === undefined) {
      this.ctx.recordDropped('table-table join: update with null key')
      return
    }
    // Versioned tables (KIP-914): an out-of-order update changes no join result.
    if (record.value?.isLatest === false) {
      this.ctx.recordDropped(OUT_OF_ORDER_VERSIONED_DROP_REASON)
      return
    }
    const newThis = orNull(record.value?.newValue)
    const oldThis = orNull(record.value?.oldValue)
    const other = await this.getter.get(key)
    const otherValue = other === null || other === undefined ? null : orNull(other.value)

    const { kind, side } = this.spec
    // The other side must be present when the join type requires it (inner; the right side of a left join).
    const otherRequired = kind === 'inner' || (kind === 'left' && side === 'right')
    if (otherValue === null && (otherRequired || (newThis === null && oldThis === null))) return

    const timestamp = otherValue !== null && other ? Math.max(record.timestamp, other.timestamp) : record.timestamp
    const newValue = this.result(newThis, otherValue)
    const oldValue = this.spec.flags.sendOldValues ? this.result(oldThis, otherValue) : null
    // Forwarded even when both are null (a delete of a key the other side has): a tombstone.
    await this.ctx.forward({ key, value: { newValue, oldValue }, timestamp, headers: record.headers })
  }
}

/**
 * Value getter of the join result (Kafka Streams: `KTableKTableAbstractJoinValueGetterSupplier`):
 * looks up both sides and joins them; the timestamp is the later of the two present sides.
 */
export function tableTableJoinValueGetterSupplier<K, VL, VR, VOut>(
  kind: TableJoinKind,
  leftGetter: KTableValueGetterSupplier<K, VL>,
  rightGetter: KTableValueGetterSupplier<K, VR>,
  joiner: (left: VL | null, right: VR | null) => VOut,
): KTableValueGetterSupplier<K, VOut> {
  return {
    storeNames: () => [...new Set([...leftGetter.storeNames(), ...rightGetter.storeNames()])],
    get: () => {
      const left = leftGetter.get()
      const right = rightGetter.get()
      return {
        init(context) {
          left.init(context)
          right.init(context)
        },
        async get(key) {
          const l = await left.get(key)
          const r = await right.get(key)
          const lv = l === null || l === undefined ? null : orNull(l.value)
          const rv = r === null || r === undefined ? null : orNull(r.value)
          const value = tableJoinResult(kind, joiner, lv, rv)
          if (value === null) return null
          const timestamp = Math.max(lv !== null && l ? l.timestamp : -1, rv !== null && r ? r.timestamp : -1)
          return { value, timestamp }
        },
      }
    },
  }
}

/** Build-time flags of the join's merge node (the result table). */
export interface TableJoinMergeFlags {
  /** Forward old values (downstream needs them). */
  sendOldValues: boolean
  /** The result's store when the join was given `Materialized`. */
  storeName: string | undefined
}

/**
 * `KTABLE-MERGE-…` (Kafka Streams: `KTableKTableJoinMerger`): merges both sides' results, writes
 * them to the result store when materialized, and strips old values unless downstream needs them.
 */
export function tableJoinMergeSupplier<K, V>(flags: TableJoinMergeFlags): ProcessorSupplier<K, Change<V>, K, Change<V>> {
  return () => {
    let ctx: ProcessorContext<K, Change<V>>
    let store: TimestampedKeyValueStore<K, V> | undefined
    return {
      init(context) {
        ctx = context
        store = flags.storeName === undefined ? undefined : context.getStateStore<TimestampedKeyValueStore<K, V>>(flags.storeName)
      },
      async process(record) {
        const newValue = record.value.newValue
        if (store !== undefined) {
          await putTableValue(store, record.key, newValue, record.timestamp)
        }
        const oldValue = flags.sendOldValues ? record.value.oldValue : null
        await ctx.forward({ ...record, value: { newValue, oldValue } })
      },
    }
  }
}
