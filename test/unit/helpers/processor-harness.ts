/**
 * A minimal harness to run ONE processor without a topology: a fake ProcessorContext that
 * records forwards and drops, with simple in-memory typed stores. Stores are plain maps with the
 * semantics of the store interfaces (no serdes), so tests exercise the processors' algorithms.
 */
import type { Headers, Serde } from '../../../topology/serde.js'
import type {
  Cancellable,
  Processor,
  ProcessorContext,
  ProcessorSupplier,
  StreamRecord,
  RecordMetadata,
} from '../../../topology/processor/types.js'
import type { KeyValue, KeyValueStore, SessionStore, StateStore, WindowStore, Windowed } from '../../../topology/state/types.js'

export interface Forwarded<K, V> {
  key: K
  value: V
  timestamp: number
  headers: Headers
}

/** Stable string identity for keys (JSON; Buffers as hex). */
function id(key: unknown): string {
  if (Buffer.isBuffer(key)) return 'b:' + key.toString('hex')
  return JSON.stringify(key)
}

export class MemoryKeyValueStore<K, V> implements KeyValueStore<K, V> {
  readonly persistent = false
  readonly map = new Map<string, { key: K; value: V }>()
  constructor(readonly name: string) {}
  async get(key: K): Promise<V | undefined> {
    return this.map.get(id(key))?.value
  }
  async *range(): AsyncIterable<KeyValue<K, V>> {
    const entries = [...this.map.values()]
    entries.sort((a, b) =>
      Buffer.isBuffer(a.key) && Buffer.isBuffer(b.key) ? Buffer.compare(a.key, b.key) : id(a.key) < id(b.key) ? -1 : 1,
    )
    for (const e of entries) yield { key: e.key, value: e.value }
  }
  all(): AsyncIterable<KeyValue<K, V>> {
    return this.range()
  }
  async approximateNumEntries(): Promise<number> {
    return this.map.size
  }
  async put(key: K, value: V | null): Promise<void> {
    if (value === null) this.map.delete(id(key))
    else this.map.set(id(key), { key, value })
  }
  async putIfAbsent(key: K, value: V): Promise<V | undefined> {
    const old = await this.get(key)
    if (old === undefined) await this.put(key, value)
    return old
  }
  async putAll(entries: ReadonlyArray<KeyValue<K, V | null>>): Promise<void> {
    for (const e of entries) await this.put(e.key, e.value)
  }
  async delete(key: K): Promise<V | undefined> {
    const old = await this.get(key)
    this.map.delete(id(key))
    return old
  }
}

export class MemoryWindowStore<K, V> implements WindowStore<K, V> {
  readonly persistent = false
  /** id(key) -> start -> value */
  readonly map = new Map<string, { key: K; windows: Map<number, V> }>()
  constructor(
    readonly name: string,
    readonly windowSizeMs: number,
  ) {}
  async fetch(key: K, windowStartMs: number): Promise<V | undefined> {
    return this.map.get(id(key))?.windows.get(windowStartMs)
  }
  async *fetchRange(key: K, timeFrom: number, timeTo: number): AsyncIterable<KeyValue<number, V>> {
    const e = this.map.get(id(key))
    if (!e) return
    const starts = [...e.windows.keys()].filter((s) => s >= timeFrom && s <= timeTo).sort((a, b) => a - b)
    for (const s of starts) yield { key: s, value: e.windows.get(s)! }
  }
  async *fetchAll(timeFrom: number, timeTo: number): AsyncIterable<KeyValue<Windowed<K>, V>> {
    for (const e of this.map.values()) {
      for (const [s, v] of [...e.windows.entries()].sort((a, b) => a[0] - b[0])) {
        if (s >= timeFrom && s <= timeTo) yield { key: { key: e.key, window: { startMs: s, endMs: s + this.windowSizeMs } }, value: v }
      }
    }
  }
  all(): AsyncIterable<KeyValue<Windowed<K>, V>> {
    return this.fetchAll(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)
  }
  async put(key: K, value: V | null, windowStartMs: number): Promise<void> {
    let e = this.map.get(id(key))
    if (!e) this.map.set(id(key), (e = { key, windows: new Map() }))
    if (value === null) e.windows.delete(windowStartMs)
    else e.windows.set(windowStartMs, value)
  }
}

export class MemorySessionStore<K, V> implements SessionStore<K, V> {
  readonly persistent = false
  readonly sessions: Array<{ key: K; startMs: number; endMs: number; value: V }> = []
  constructor(readonly name: string) {}
  private sorted() {
    return [...this.sessions].sort((a, b) => a.endMs - b.endMs || a.startMs - b.startMs)
  }
  async *findSessions(key: K, earliestSessionEndTime: number, latestSessionStartTime: number): AsyncIterable<KeyValue<Windowed<K>, V>> {
    for (const s of this.sorted()) {
      if (id(s.key) === id(key) && s.endMs >= earliestSessionEndTime && s.startMs <= latestSessionStartTime) {
        yield { key: { key: s.key, window: { startMs: s.startMs, endMs: s.endMs } }, value: s.value }
      }
    }
  }
  async fetchSession(key: K, startMs: number, endMs: number): Promise<V | undefined> {
    return this.sessions.find((s) => id(s.key) === id(key) && s.startMs === startMs && s.endMs === endMs)?.value
  }
  async *fetch(key: K): AsyncIterable<KeyValue<Windowed<K>, V>> {
    yield* this.findSessions(key, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)
  }
  async *all(): AsyncIterable<KeyValue<Windowed<K>, V>> {
    for (const s of this.sorted()) yield { key: { key: s.key, window: { startMs: s.startMs, endMs: s.endMs } }, value: s.value }
  }
  async put(sessionKey: Windowed<K>, aggregate: V | null): Promise<void> {
    await this.remove(sessionKey)
    if (aggregate !== null)
      this.sessions.push({ key: sessionKey.key, startMs: sessionKey.window.startMs, endMs: sessionKey.window.endMs, value: aggregate })
  }
  async remove(sessionKey: Windowed<K>): Promise<void> {
    const i = this.sessions.findIndex(
      (s) => id(s.key) === id(sessionKey.key) && s.startMs === sessionKey.window.startMs && s.endMs === sessionKey.window.endMs,
    )
    if (i >= 0) this.sessions.splice(i, 1)
  }
}

/** Runs one processor with a fake context. Stores are shared across `restart()`s. */
export class ProcessorHarness<KIn, VIn, KOut, VOut> {
  readonly forwarded: Array<Forwarded<KOut, VOut>> = []
  readonly dropped: string[] = []
  private processor!: Processor<KIn, VIn, KOut, VOut>
  private streamTime = -1
  wallClockMs = 0

  constructor(
    private readonly supplier: ProcessorSupplier<KIn, VIn, KOut, VOut>,
    readonly stores: Map<string, StateStore>,
    private readonly defaults: { keySerde?: Serde<any>; valueSerde?: Serde<any> } = {},
  ) {}

  private context(): ProcessorContext<KOut, VOut> {
    const self = this
    return {
      applicationId: 'app',
      taskId: { subtopology: 0, partition: 0 },
      recordMetadata(): RecordMetadata | undefined {
        return { topic: 'in', partition: 0, offset: '0' }
      },
      currentStreamTimeMs: () => self.streamTime,
      currentSystemTimeMs: () => self.wallClockMs,
      async forward(record: StreamRecord<any, any>) {
        self.forwarded.push({ key: record.key, value: record.value, timestamp: record.timestamp, headers: record.headers })
      },
      getStateStore<S extends StateStore>(name: string): S {
        const s = self.stores.get(name)
        if (!s) throw new Error(`store ${name} not connected`)
        return s as S
      },
      schedule(): Cancellable {
        return { cancel() {} }
      },
      commit() {},
      recordDropped(reason: string) {
        self.dropped.push(reason)
      },
      keySerde: () => self.defaults.keySerde,
      valueSerde: () => self.defaults.valueSerde,
    }
  }

  async init(): Promise<this> {
    this.processor = this.supplier()
    await this.processor.init?.(this.context())
    return this
  }

  /** Simulates a restart: a fresh processor instance over the same stores. */
  async restart(): Promise<this> {
    await this.processor.close?.()
    return this.init()
  }

  async process(key: KIn, value: VIn, timestamp: number, headers: Headers = {}): Promise<void> {
    this.streamTime = Math.max(this.streamTime, timestamp)
    await this.processor.process({ key, value, timestamp, headers })
  }

  /** Returns and clears the forwarded records. */
  drain(): Array<Forwarded<KOut, VOut>> {
    return this.forwarded.splice(0, this.forwarded.length)
  }
}
