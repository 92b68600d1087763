/**
 * A persistent store's changelog position, kept under a reserved key in the same LevelDB batch as
 * the data it describes (see stores.ts for why).
 */
/** Metadata key (sorts after every segment prefix in use): stream-time and sequence number. */
export const META_KEY = Buffer.from('ffffffffffffffffff', 'hex')

/**
 * Reserved key of a persistent store's position: JSON `{"v":1,"offsets":{...},"clean":bool}`.
 * It sorts after every window/session key layout and their metadata key (segment ids never reach
 * `0xff…`), so segment scans and range deletes never touch it. Key-value stores hold user keys in
 * the same key space: a user key equal to it is rejected (puts and restored records fail with a
 * {@link ProcessorStateError}) and reads and scans never return it.
 */
export const POSITION_KEY = Buffer.concat([META_KEY, Buffer.from('kstreams.position', 'latin1')])

/** True when `k` is {@link POSITION_KEY}. */
export function isPositionKey(k: Buffer): boolean {
  return k.length === POSITION_KEY.length && k[0] === 0xff && k.equals(POSITION_KEY)
}

/** A persistent store's position as stored under {@link POSITION_KEY}. */
export interface StorePosition {
  /**
   * Next changelog offset the store's data reflects, per changelog source: the changelog topic
   * for a task's store, `<topic>:<partition>` for a global store.
   */
  readonly offsets: ReadonlyMap<string, string>
  /**
   * The store was closed in order after its last write (`close()`), not left by a crash. A store
   * that was not closed cleanly has its tables verified at the next open.
   */
  readonly clean: boolean
}

export function encodePosition(offsets: ReadonlyMap<string, string>, clean: boolean): Buffer {
  const o: Record<string, string> = {}
  for (const [k, v] of [...offsets].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) o[k] = v
  return Buffer.from(JSON.stringify({ v: 1, offsets: o, clean }), 'utf8')
}

const OFFSET_RE = /^\d+$/

/** Decodes a stored position; undefined when the bytes are not a valid position. */
export function decodePosition(b: Buffer): StorePosition | undefined {
  let p: { v?: unknown; offsets?: unknown; clean?: unknown }
  try {
    p = JSON.parse(b.toString('utf8')) as typeof p
  } catch {
    return undefined
  }
  if (typeof p !== 'object' || p === null || p.v !== 1 || typeof p.offsets !== 'object' || p.offsets === null) return undefined
  const offsets = new Map<string, string>()
  for (const [k, v] of Object.entries(p.offsets as Record<string, unknown>)) {
    if (typeof v !== 'string' || !OFFSET_RE.test(v)) return undefined
    offsets.set(k, v)
  }
  return { offsets, clean: p.clean === true }
}
