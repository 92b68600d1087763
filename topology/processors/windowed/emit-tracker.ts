/**
 * Remembers, per task, up to which window-close time an emit-on-window-close aggregation has
 * already emitted its final results (Kafka Streams keeps this in the committed offset's processor
 * metadata; we keep it in a small logged key-value store so it survives restarts and failover).
 */
import type { ProcessorContext } from '../../processor/types.js'
import type { KeyValueStore } from '../../state/types.js'

/** Sentinel: nothing emitted yet. */
export const NO_TIMESTAMP = -1

export class EmitCloseTimeTracker {
  private lastEmit = NO_TIMESTAMP
  private store: KeyValueStore<string, number> | undefined

  /**
   * @param storeName name of the `KeyValueStore<string, number>` holding the close time, or
   *   undefined to keep it in memory only
   * @param key key under which this aggregation's close time is stored (its window store name)
   */
  constructor(
    private readonly storeName: string | undefined,
    private readonly key: string,
  ) {}

  async init(context: ProcessorContext<any, any>): Promise<void> {
    if (this.storeName === undefined) return
    this.store = context.getStateStore<KeyValueStore<string, number>>(this.storeName)
    const stored = await this.store.get(this.key)
    if (typeof stored === 'number') this.lastEmit = stored
  }

  /** Window-close time of the last emit, or {@link NO_TIMESTAMP}. */
  get lastEmitCloseTime(): number {
    return this.lastEmit
  }

  /** True when `closeTime` is later than the last emit's (so new windows may have closed). */
  progressed(closeTime: number): boolean {
    return this.lastEmit === NO_TIMESTAMP || this.lastEmit < closeTime
  }

  async update(closeTime: number): Promise<void> {
    this.lastEmit = closeTime
    if (this.store) await this.store.put(this.key, closeTime)
  }
}
