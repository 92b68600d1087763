/** Options and events of the runtime's task state manager (task-state-manager.ts). */
import type { KeyValueBytesStore, StoreDef } from '../../topology/state/types.js'
import type { TaskStateManagerOptions } from './types.js'

/** Structured logger (same shape as the app runtime's `Logger`). */
export interface StateLogger {
  error(message: string, extra?: Record<string, unknown>): void
  warn(message: string, extra?: Record<string, unknown>): void
  info(message: string, extra?: Record<string, unknown>): void
  debug(message: string, extra?: Record<string, unknown>): void
}

export const silentLogger: StateLogger = { error() {}, warn() {}, info() {}, debug() {} }

/** Options of {@link createTaskStateManager}: the contract's options plus runtime tuning. */
export interface CreateTaskStateManagerOptions extends TaskStateManagerOptions {
  /**
   * How long `open()` keeps retrying while another instance holds a store's LevelDB LOCK (a task
   * moving between two instances on one host), milliseconds. Then a retriable
   * ProcessorStateError is thrown. @defaultValue 2000
   */
  readonly lockWaitMs?: number
  /**
   * fsync every LevelDB batch (commit, restore, position) before it counts as written. The
   * position travels in the same batch as its data either way; syncing is what keeps a machine
   * crash from dropping an earlier batch while keeping a later one. @defaultValue true
   */
  readonly syncWrites?: boolean
  /**
   * When to read every table of a persistent store once at open, so a damaged table is found
   * (and the store wiped and restored) before the task processes: `'unclean'` when the store was
   * not closed cleanly last time (crash, kill, power loss), `'always'`, or `'never'`. Costs one
   * scan of the store (about 2.5 s per million entries on this machine kind).
   * @defaultValue 'unclean'
   */
  readonly verifyOnOpen?: 'unclean' | 'always' | 'never'
  /**
   * Called when a persistent store's local data is dropped at open, to be restored from its
   * changelog: `corruption` (LevelDB reported a damaged file, now or during an earlier run) or
   * `unknown-position` (data without a readable position).
   */
  readonly onStoreWiped?: (event: StoreWipedEvent) => void
  /** Segment width of window/session stores, ms. @defaultValue max(retentionMs / 2, 60000) */
  readonly segmentIntervalMs?: (store: StoreDef) => number | undefined
  /**
   * In-memory ordered bytes store backing `persistent: false` store defs (window and session
   * stores are laid out on it with the same composite keys as on LevelDB).
   * @defaultValue topology's `InMemoryKeyValueBytesStore`
   */
  readonly inMemoryStore?: (store: StoreDef) => KeyValueBytesStore
  /**
   * Bytes the key indexes of the task's window and session stores may hold (lib/state/key-index.ts),
   * counted within `cacheMaxBytes`: dirty and clean entries get the rest. Beyond it, indexes give
   * up their oldest times (reads there scan LevelDB). @defaultValue max(cacheMaxBytes / 2, 2 MiB)
   */
  readonly keyIndexMaxBytes?: number
  /** Timestamp of changelog records, ms. @defaultValue Date.now */
  readonly clock?: () => number
  readonly logger?: StateLogger
}

/** A persistent store's local data was dropped at open (see `onStoreWiped`). */
export interface StoreWipedEvent {
  readonly taskId: string
  readonly store: string
  readonly reason: 'corruption' | 'unknown-position'
  /** The LevelDB error (corruption found at this open), if any. */
  readonly error?: unknown
}
