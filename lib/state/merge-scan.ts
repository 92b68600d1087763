/** Range reads of a runtime store: buffered entries merged over the backend's. @internal */
import type { BackendRange, OrderedBytesBackend } from './backend.js'
import type { OverlayEntry } from './cache.js'

/**
 * Merges `overlay` (sorted by key; `null` values hide backend entries) over the backend's
 * entries in `ranges` (ascending, disjoint). Yields live entries in key order.
 */
export async function* mergeScan(
  backend: OrderedBytesBackend,
  ranges: ReadonlyArray<BackendRange>,
  overlay: ReadonlyArray<OverlayEntry>,
  chunk = 1000,
): AsyncGenerator<readonly [Buffer, Buffer]> {
  let i = 0
  for (const r of ranges) {
    while (i < overlay.length && r.gte && Buffer.compare(overlay[i]!.key, r.gte) < 0) i++
    for await (const entries of backend.iterate(r, chunk)) {
      for (const be of entries) {
        while (i < overlay.length) {
          const c = Buffer.compare(overlay[i]!.key, be[0])
          if (c > 0) break
          const o = overlay[i++]!
          if (c < 0) {
            if (o.value) yield [o.key, o.value]
          } else {
            if (o.value) yield [o.key, o.value]
            // backend entry superseded
            continue
          }
        }
        if (i > 0 && Buffer.compare(overlay[i - 1]!.key, be[0]) === 0) continue
        yield be
      }
    }
    while (i < overlay.length && inUpper(overlay[i]!.key, r)) {
      const o = overlay[i++]!
      if (o.value) yield [o.key, o.value]
    }
  }
}

function inUpper(k: Buffer, r: BackendRange): boolean {
  if (r.lt && Buffer.compare(k, r.lt) >= 0) return false
  if (r.lte && Buffer.compare(k, r.lte) > 0) return false
  return true
}
