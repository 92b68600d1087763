/**
 * Emit control for windowed aggregations and KTables: {@link EmitStrategy} (KIP-825) and
 * {@link Suppressed} with its {@link BufferConfig} (KIP-328).
 *
 * All durations are milliseconds; all objects are immutable (modifiers return new objects).
 */
import { TopologyError } from '../errors.js'
import { Serdes } from '../serde.js'
import type { Windowed } from '../state/types.js'
import { KTable as KTableClass, type KTable } from './ktable.js'
import type { TableNodeFlags } from '../processors/table.js'
import { suppressProcessorSupplier, suppressedValueGetterSupplier } from '../processors/suppress.js'
import { findWindowGrace, registerWindowedNode } from '../processors/windowed/graph.js'

// ---------------------------------------------------------------------------------------------
// EmitStrategy (KIP-825)
// ---------------------------------------------------------------------------------------------

/** `'ON_WINDOW_UPDATE'` (every update, Spark "update" mode) or `'ON_WINDOW_CLOSE'` (final results only, Spark "append" mode). */
export type EmitStrategyType = 'ON_WINDOW_UPDATE' | 'ON_WINDOW_CLOSE'

/**
 * When a windowed aggregation emits its results (Kafka Streams: `EmitStrategy`, KIP-825).
 *
 * - {@link EmitStrategy.onWindowUpdate} (the default): every update of a window is forwarded
 *   downstream as a table update.
 * - {@link EmitStrategy.onWindowClose}: nothing is forwarded while a window is open; once
 *   stream-time reaches `windowEnd + grace` the window's final aggregate is forwarded exactly
 *   once. Unlike `suppress(untilWindowCloses)`, no extra buffer is needed: the final values are
 *   read from the aggregation's own window store.
 */
export interface EmitStrategy {
  readonly type: EmitStrategyType
}

const ON_WINDOW_UPDATE: EmitStrategy = Object.freeze({ type: 'ON_WINDOW_UPDATE' as const })
const ON_WINDOW_CLOSE: EmitStrategy = Object.freeze({ type: 'ON_WINDOW_CLOSE' as const })

/** Factories of {@link EmitStrategy}. */
export const EmitStrategy = {
  /** Emit every update of a window (the default). */
  onWindowUpdate: (): EmitStrategy => ON_WINDOW_UPDATE,
  /** Emit one final result per window, once stream-time reaches `windowEnd + grace`. */
  onWindowClose: (): EmitStrategy => ON_WINDOW_CLOSE,
} as const

// ---------------------------------------------------------------------------------------------
// BufferConfig
// ---------------------------------------------------------------------------------------------

/** What a full suppression buffer does: emit its oldest records early, or stop the application. */
export type BufferFullStrategy = 'EMIT' | 'SHUT_DOWN'

/**
 * Bounds of a suppression buffer (Kafka Streams: `Suppressed.BufferConfig`).
 *
 * A buffer is full when it holds more than `maxRecords` keys or more than `maxBytes` bytes
 * (serialized keys and values plus a small per-entry overhead). `Infinity` means unbounded.
 */
export class BufferConfig<Strict extends boolean = boolean> {
  /** Maximum number of buffered keys. @defaultValue Infinity */
  readonly maxRecords: number
  /** Maximum buffered size in bytes. @defaultValue Infinity */
  readonly maxBytes: number
  /** What to do when full. */
  readonly bufferFullStrategy: BufferFullStrategy
  /** Whether the buffer store is backed by a changelog topic. @defaultValue true */
  readonly loggingEnabled: boolean
  /** Extra changelog topic configs. */
  readonly logConfig: Readonly<Record<string, string>>
  /** Type-level marker: `true` for configs that never emit early (required by `untilWindowCloses`). */
  declare readonly __strict?: Strict

  private constructor(
    maxRecords: number,
    maxBytes: number,
    strategy: BufferFullStrategy,
    loggingEnabled: boolean,
    logConfig: Readonly<Record<string, string>>,
  ) {
    this.maxRecords = maxRecords
    this.maxBytes = maxBytes
    this.bufferFullStrategy = strategy
    this.loggingEnabled = loggingEnabled
    this.logConfig = Object.freeze({ ...logConfig })
    Object.freeze(this)
  }

  /** An unbounded buffer: never emits early (a "strict" config; it can run out of memory/disk instead). */
  static unbounded(): BufferConfig<true> {
    return new BufferConfig<true>(Infinity, Infinity, 'SHUT_DOWN', true, {})
  }

  /**
   * A buffer of at most `maxRecords` keys that emits its oldest records early when full
   * (call `shutDownWhenFull()` to fail instead).
   * @throws TopologyError naming `maxRecords` if it is not a non-negative integer
   */
  static maxRecords(maxRecords: number): BufferConfig<false> {
    checkLimit('maxRecords', maxRecords)
    return new BufferConfig<false>(maxRecords, Infinity, 'EMIT', true, {})
  }

  /**
   * A buffer of at most `maxBytes` bytes that emits its oldest records early when full
   * (call `shutDownWhenFull()` to fail instead).
   * @throws TopologyError naming `maxBytes` if it is not a non-negative integer
   */
  static maxBytes(maxBytes: number): BufferConfig<false> {
    checkLimit('maxBytes', maxBytes)
    return new BufferConfig<false>(Infinity, maxBytes, 'EMIT', true, {})
  }

  /** Copy with a record limit. @throws TopologyError naming `maxRecords` */
  withMaxRecords(maxRecords: number): BufferConfig<Strict> {
    checkLimit('maxRecords', maxRecords)
    return new BufferConfig<Strict>(maxRecords, this.maxBytes, this.bufferFullStrategy, this.loggingEnabled, this.logConfig)
  }

  /** Copy with a byte limit. @throws TopologyError naming `maxBytes` */
  withMaxBytes(maxBytes: number): BufferConfig<Strict> {
    checkLimit('maxBytes', maxBytes)
    return new BufferConfig<Strict>(this.maxRecords, maxBytes, this.bufferFullStrategy, this.loggingEnabled, this.logConfig)
  }

  /** Copy without limits (strict). */
  withNoBound(): BufferConfig<true> {
    return new BufferConfig<true>(Infinity, Infinity, 'SHUT_DOWN', this.loggingEnabled, this.logConfig)
  }

  /**
   * Copy that stops the application with a `StreamsError` when the buffer exceeds its limits
   * (strict: results are never emitted early).
   */
  shutDownWhenFull(): BufferConfig<true> {
    return new BufferConfig<true>(this.maxRecords, this.maxBytes, 'SHUT_DOWN', this.loggingEnabled, this.logConfig)
  }

  /** Copy that emits the oldest buffered records early when the buffer exceeds its limits. */
  emitEarlyWhenFull(): BufferConfig<false> {
    return new BufferConfig<false>(this.maxRecords, this.maxBytes, 'EMIT', this.loggingEnabled, this.logConfig)
  }

  /** Copy whose buffer store has no changelog (its contents are lost on failover). */
  withLoggingDisabled(): BufferConfig<Strict> {
    return new BufferConfig<Strict>(this.maxRecords, this.maxBytes, this.bufferFullStrategy, false, {})
  }

  /** Copy whose buffer store is logged with these extra changelog topic configs. */
  withLoggingEnabled(config: Readonly<Record<string, string>> = {}): BufferConfig<Strict> {
    return new BufferConfig<Strict>(this.maxRecords, this.maxBytes, this.bufferFullStrategy, true, config)
  }

  /** True when the buffer never emits early. */
  isStrict(): boolean {
    return this.bufferFullStrategy === 'SHUT_DOWN'
  }
}

function checkLimit(name: string, value: number): void {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0 || (Number.isFinite(value) && !Number.isInteger(value))) {
    throw new TopologyError(`${name} must be a non-negative integer (or Infinity), got ${String(value)}`)
  }
}

// ---------------------------------------------------------------------------------------------
// Suppressed (KIP-328)
// ---------------------------------------------------------------------------------------------

/** How the suppression buffer times a buffered key. */
export type SuppressTimeDefinition = 'RECORD_TIME' | 'WINDOW_END_TIME'

/**
 * How `KTable.suppress` holds back updates (Kafka Streams: `Suppressed`, KIP-328).
 *
 * The buffer keeps the latest update per key. A key is emitted once stream-time (as observed by
 * the suppress processor: the largest timestamp of the table updates it received) reaches
 * `bufferTime + timeToWaitMs`, where `bufferTime` is the window end for
 * {@link Suppressed.untilWindowCloses} (and `timeToWaitMs` the window's grace period) or the
 * time of the key's first buffered update for {@link Suppressed.untilTimeLimit}. Wall-clock time
 * never emits anything.
 */
export class Suppressed<K> {
  /** Processor name (store name is `<name>-store`), or undefined for a generated one. */
  readonly name: string | undefined
  readonly kind: 'untilWindowCloses' | 'untilTimeLimit'
  /** For `untilTimeLimit`: how long (stream-time) to wait for more updates of a key. */
  readonly timeToWaitMs: number | undefined
  readonly bufferConfig: BufferConfig
  /**
   * Never set at run time: carries `K` so that a `Suppressed<string>` does not fit a table of
   * other keys (a method type, so the check is bivariant).
   */
  declare readonly __keyType?: { check(key: K): void }['check']

  private constructor(
    kind: 'untilWindowCloses' | 'untilTimeLimit',
    timeToWaitMs: number | undefined,
    bufferConfig: BufferConfig,
    name: string | undefined,
  ) {
    this.kind = kind
    this.timeToWaitMs = timeToWaitMs
    this.bufferConfig = bufferConfig
    this.name = name
    Object.freeze(this)
  }

  /**
   * Emits exactly one final result per window: the window's last value, once stream-time reaches
   * `windowEnd + grace` (the grace of the upstream windowed aggregation). Only for windowed
   * KTables; needs a strict buffer (`BufferConfig.unbounded()` or `...shutDownWhenFull()`).
   * Tombstones of windows that never emitted are dropped.
   */
  static untilWindowCloses<K = unknown>(bufferConfig: BufferConfig<true>): Suppressed<Windowed<K>> {
    if (!(bufferConfig instanceof BufferConfig)) throw new TopologyError('bufferConfig must be a BufferConfig')
    if (!bufferConfig.isStrict()) {
      throw new TopologyError(
        'bufferConfig of untilWindowCloses must be strict (BufferConfig.unbounded() or shutDownWhenFull()): final results are never emitted early',
      )
    }
    return new Suppressed<Windowed<K>>('untilWindowCloses', undefined, bufferConfig, undefined)
  }

  /**
   * Rate-limits updates: the first update of a key starts a timer of `timeToWaitMs` milliseconds
   * of stream-time; when it expires the key's latest value is emitted (one record per key per
   * period).
   * @param timeToWaitMs milliseconds of stream-time, >= 0
   * @throws TopologyError naming `timeToWaitMs` if negative or not an integer
   */
  static untilTimeLimit<K = unknown>(timeToWaitMs: number, bufferConfig: BufferConfig): Suppressed<K> {
    if (typeof timeToWaitMs !== 'number' || !Number.isInteger(timeToWaitMs) || timeToWaitMs < 0) {
      throw new TopologyError(`timeToWaitMs must be a non-negative integer number of milliseconds, got ${String(timeToWaitMs)}`)
    }
    if (!(bufferConfig instanceof BufferConfig)) throw new TopologyError('bufferConfig must be a BufferConfig')
    return new Suppressed<K>('untilTimeLimit', timeToWaitMs, bufferConfig, undefined)
  }

  /** Copy with a processor name (the buffer store is then `<name>-store`). */
  withName(name: string): Suppressed<K> {
    if (typeof name !== 'string' || name.length === 0) throw new TopologyError('name must be a non-empty string')
    return new Suppressed<K>(this.kind, this.timeToWaitMs, this.bufferConfig, name)
  }
}

// ---------------------------------------------------------------------------------------------
// KTable.suppress wiring
// ---------------------------------------------------------------------------------------------

/** Prefix of suppression processor names (Kafka Streams: `KTableImpl.SUPPRESS_NAME`). */
export const SUPPRESS_NAME = 'KTABLE-SUPPRESS-'

/**
 * Adds a suppression after `table` (Kafka Streams: `KTableImpl#suppress`) and returns the
 * suppressed table. Used by `KTable.suppress`.
 *
 * Names: the processor is `suppressed.name` or `KTABLE-SUPPRESS-<n>`; its buffer store is
 * `<name>-store` when named, else `KTABLE-SUPPRESS-STATE-STORE-<n>`. The buffer store is a
 * key-value store of bytes, logged unless `bufferConfig.withLoggingDisabled()`.
 *
 * @throws TopologyError for `untilWindowCloses` on a table that does not come from a windowed
 *   aggregation (its grace period is needed), or for a non-`Suppressed` argument
 */
export function buildSuppress<K, V>(table: KTable<K, V>, suppressed: Suppressed<K>): KTable<K, V> {
  if (!(suppressed instanceof Suppressed)) {
    throw new TopologyError(
      `suppress: parameter 'suppressed' must be created with Suppressed.untilWindowCloses or Suppressed.untilTimeLimit`,
    )
  }
  const builder = table.builder
  const name = suppressed.name ?? builder.newProcessorName(SUPPRESS_NAME)
  const windowGraceMs = suppressed.kind === 'untilWindowCloses' ? findWindowGrace(builder, table.name, 'suppress') : undefined
  const storeName = suppressed.name !== undefined ? `${suppressed.name}-store` : builder.newStoreName(SUPPRESS_NAME)
  // The buffer remembers what downstream saw last: the parent must send old values.
  table.enableSendingOldValues(true)
  const supplier = suppressProcessorSupplier<K, V>({
    processorName: name,
    storeName,
    suppressed,
    ...(windowGraceMs !== undefined ? { windowGraceMs } : {}),
    ...(table.keySerde !== undefined ? { keySerde: table.keySerde } : {}),
    ...(table.valueSerde !== undefined ? { valueSerde: table.valueSerde } : {}),
  })
  builder.addProcessor(name, supplier, [table.name])
  const bytes = Serdes.Bytes()
  builder.addStateStore(
    {
      name: storeName,
      type: 'keyValue',
      keySerde: bytes,
      valueSerde: bytes,
      loggingEnabled: suppressed.bufferConfig.loggingEnabled,
      logConfig: suppressed.bufferConfig.logConfig,
      cachingEnabled: true,
      persistent: true,
      timestamped: false,
    },
    { processorNames: [name] },
  )
  if (windowGraceMs !== undefined) registerWindowedNode(builder, name, windowGraceMs)
  const flags: TableNodeFlags = { sendOldValues: true, storeName: undefined }
  const parent = table
  return new KTableClass<K, V>({
    builder,
    name,
    keySerde: table.keySerde,
    valueSerde: table.valueSerde,
    sourceNodes: table.sourceNodes,
    queryableStoreName: undefined,
    flags,
    origin: {
      enableSendingOldValues: () => true,
      // Lookups (joins) see what the suppression emitted: the pre-buffer value of a buffered key.
      valueGetterSupplier: () =>
        suppressedValueGetterSupplier<K, V>(parent.valueGetterSupplier(), {
          processorName: name,
          storeName,
          ...(table.keySerde !== undefined ? { keySerde: table.keySerde } : {}),
          ...(table.valueSerde !== undefined ? { valueSerde: table.valueSerde } : {}),
        }),
    },
  })
}
